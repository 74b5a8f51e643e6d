# A throwaway single-node Ceph cluster for tests (sourced; POSIX sh), as
# shared/notes/ceph.md describes it: one monitor and one OSD, everything
# (data, logs, sockets, pid files) inside one directory, one address
# ($CEPH_ADDR, default 127.0.0.1), msgr2 only, no authentication, pool
# size one, no mgr.
#
#   ceph_have              0 when the packages are installed; else prints
#                          the missing ones to stdout and returns 1
#   ceph_start DIR [STORE] start a cluster in DIR (made; must not exist):
#                          STORE is memstore (default, in the OSD's RAM)
#                          or bluestore (a sparse file in DIR; its OSD
#                          takes 2.4 s instead of 0.4 s to come back
#                          up). Both keep the data across
#                          ceph_osd_stop / ceph_osd_start (below). Exports
#                          CEPH_CONF; sets CEPH_POOL (a pool for tests),
#                          CEPH_MON_PID, CEPH_OSD_PID. Returns when the OSD
#                          is up and a write to the pool went through.
#   ceph_stop              stop the OSD, then the monitor (TERM, KILL after
#                          10 s), each by its pid, and remove DIR. Safe to
#                          call twice, or after a failed ceph_start: call
#                          it from the caller's EXIT trap.
#   ceph_osd_stop          stop only the OSD (for failure tests)
#   ceph_osd_start         start it again; returns when it is up
#   ceph_client_conf FILE  write a ceph.conf for a client on another
#                          machine that reaches $CEPH_ADDR (the rig): the
#                          monitor and no more
#
# A memstore OSD keeps its objects only in RAM, and by default an OSD
# told to stop exits at once (osd fast shutdown): the restarted OSD had
# lost every placement group and reads hung (measured 2026-12-06). With
# "osd fast shutdown = false" it unmounts its store on TERM, and memstore
# then saves its objects in the OSD's directory and loads them at the
# next start: a stop costs 0.2-1 s and reads work again at once.
#
# Failures print one line to stderr and return 1. A daemon's log is
# DIR/log/<name>.log. CEPH_TIMEOUT (default 60) bounds every wait, in
# seconds.

CEPH_DIR= CEPH_MON_PID= CEPH_OSD_PID= CEPH_POOL=snaptest
CEPH_ADDR=${CEPH_ADDR:-127.0.0.1}

ceph_have() {
	_miss=
	for _c in ceph-mon ceph-osd monmaptool ceph rados; do
		command -v "$_c" >/dev/null 2>&1 || _miss="$_miss $_c"
	done
	[ -f /usr/include/rados/librados.h ] || _miss="$_miss librados-dev"
	[ -z "$_miss" ] && return 0
	echo "missing:$_miss (sh tools/deps.sh installs them)"
	return 1
}

ceph_say() { echo "ceph.sh: $*" >&2; }

# Whether pid $1 runs (a zombie does not).
ceph_alive() {
	[ -n "$1" ] && [ -r "/proc/$1/stat" ] || return 1
	_st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$_st" ] && [ "$_st" != Z ] && [ "$_st" != X ]
}

# Whether pid $1 runs and is a daemon of our cluster: its arguments name
# our ceph.conf, so a pid the system reused is left alone.
ceph_ours() {
	ceph_alive "$1" || return 1
	case $(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") in
	*"$CEPH_DIR/ceph.conf"*) return 0 ;;
	esac
	return 1
}

# Wait (5 s at most) until the daemon just started as pid $1 runs its
# program: until its exec, /proc shows this shell's arguments, and
# ceph_ours would take it for a pid reused by someone else.
ceph_exec_wait() {
	_i=0
	while ceph_alive "$1" && ! ceph_ours "$1" && [ "$_i" -lt 50 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
}

# TERM, then KILL after 10 s, then reap; pid $1. A pid that runs
# something else is left alone (and never waited for).
ceph_kill() {
	if ! ceph_ours "$1"; then
		ceph_alive "$1" || wait "$1" 2>/dev/null
		return 0
	fi
	kill -TERM "$1" 2>/dev/null
	_i=0
	while ceph_ours "$1" && [ "$_i" -lt 100 ]; do
		sleep 0.1
		_i=$((_i + 1))
	done
	if ceph_ours "$1"; then
		ceph_say "pid $1 still runs 10 s after TERM: KILL"
		kill -KILL "$1" 2>/dev/null
	fi
	wait "$1" 2>/dev/null
	return 0
}

# The ceph command, bounded.
ceph_cmd() { timeout 20 ceph --connect-timeout 15 "$@"; }

# A free TCP port on $CEPH_ADDR (the kernel's choice; taken again by the
# monitor at once, and ceph_start retries when another took it meanwhile).
ceph_free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("'"$CEPH_ADDR"'", 0)); print(s.getsockname()[1])'
}

ceph_client_conf() {
	cat >"$1" <<EOF
[global]
fsid = $CEPH_FSID
mon host = [v2:$CEPH_ADDR:$CEPH_PORT]
ms bind msgr1 = false
ms bind msgr2 = true
auth cluster required = none
auth service required = none
auth client required = none
admin socket =
log file =
EOF
}

ceph_write_conf() {
	_d=$CEPH_DIR
	cat >"$_d/ceph.conf" <<EOF
[global]
fsid = $CEPH_FSID
mon host = [v2:$CEPH_ADDR:$CEPH_PORT]
mon initial members = a
public addr = $CEPH_ADDR
cluster addr = $CEPH_ADDR
ms bind msgr1 = false
ms bind msgr2 = true
auth cluster required = none
auth service required = none
auth client required = none
run dir = $_d/run
admin socket = $_d/run/\$name.asok
pid file = $_d/run/\$name.pid
log file = $_d/log/\$name.log
crash dir = $_d/crash
mon data = $_d/mon/\$cluster-\$id
osd data = $_d/osd/\$cluster-\$id
keyring = $_d/keyring
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
paxos propose interval = 0.01
paxos min wait = 0.01
osd objectstore = $CEPH_STORE
memstore device bytes = 1073741824
bluestore block path = $_d/block
bluestore block create = true
bluestore block size = 2147483648
bluestore cache size = 67108864
osd memory target = 536870912
osd fast shutdown = false
EOF
}

ceph_mon_begin() {
	CEPH_PORT=$(ceph_free_port) || return 1
	ceph_write_conf
	rm -rf "$CEPH_DIR/mon" && mkdir -p "$CEPH_DIR/mon"
	monmaptool --create --clobber --fsid "$CEPH_FSID" \
		--addv a "[v2:$CEPH_ADDR:$CEPH_PORT]" "$CEPH_DIR/monmap" \
		>"$CEPH_DIR/log/monmaptool.log" 2>&1 ||
		{ ceph_say "monmaptool failed"; return 1; }
	ceph-mon -c "$CEPH_DIR/ceph.conf" --mkfs -i a \
		--monmap "$CEPH_DIR/monmap" >"$CEPH_DIR/log/mkfs.log" 2>&1 ||
		{ ceph_say "ceph-mon --mkfs failed (see $CEPH_DIR/log/mkfs.log)"; return 1; }
	ceph-mon -c "$CEPH_DIR/ceph.conf" -i a -f \
		</dev/null >>"$CEPH_DIR/log/mon.out" 2>&1 &
	CEPH_MON_PID=$!
	echo "$CEPH_MON_PID" >"$CEPH_DIR/mon.pid"
	ceph_exec_wait "$CEPH_MON_PID"
}

# Start the monitor and wait until it answers; a port another process
# took between ceph_free_port and the bind makes it exit: try again.
ceph_mon_up() {
	for _try in 1 2 3; do
		ceph_mon_begin || return 1
		_i=0
		while ceph_ours "$CEPH_MON_PID"; do
			ceph_cmd mon stat >/dev/null 2>&1 && return 0
			_i=$((_i + 1))
			[ "$_i" -lt "$CEPH_TIMEOUT" ] || break
			sleep 0.2
		done
		ceph_kill "$CEPH_MON_PID"
		CEPH_MON_PID=
	done
	ceph_say "the monitor did not answer (see $CEPH_DIR/log/)"
	return 1
}

ceph_osd_begin() {
	ceph-osd -c "$CEPH_DIR/ceph.conf" -i 0 -f \
		</dev/null >>"$CEPH_DIR/log/osd.out" 2>&1 &
	CEPH_OSD_PID=$!
	echo "$CEPH_OSD_PID" >"$CEPH_DIR/osd.pid"
	ceph_exec_wait "$CEPH_OSD_PID"
}

# Wait (CEPH_TIMEOUT s) until the osdmap shows $1 OSDs up.
ceph_osd_wait() {
	_i=0
	while [ "$_i" -lt $((CEPH_TIMEOUT * 5)) ]; do
		_up=$(ceph_cmd osd stat -f json 2>/dev/null |
			sed -n 's/.*"num_up_osds":\([0-9]*\).*/\1/p')
		[ "$_up" = "$1" ] && return 0
		[ "$1" = 0 ] || ceph_ours "$CEPH_OSD_PID" ||
			{ ceph_say "the OSD exited (see $CEPH_DIR/log/)"; return 1; }
		_i=$((_i + 1))
		sleep 0.2
	done
	ceph_say "no $1 OSD up after $CEPH_TIMEOUT s (see $CEPH_DIR/log/)"
	return 1
}

# One write to the pool, so that its placement groups are active.
ceph_probe() {
	echo probe >"$CEPH_DIR/probe"
	timeout "$CEPH_TIMEOUT" rados -p "$CEPH_POOL" put ceph-sh-probe \
		"$CEPH_DIR/probe" >/dev/null 2>&1 &&
	timeout "$CEPH_TIMEOUT" rados -p "$CEPH_POOL" rm ceph-sh-probe \
		>/dev/null 2>&1 ||
		{ ceph_say "a write to pool $CEPH_POOL failed"; return 1; }
}

ceph_start() {
	[ -n "${1:-}" ] || { ceph_say "ceph_start: no directory"; return 1; }
	[ -e "$1" ] && { ceph_say "$1 exists"; return 1; }
	CEPH_TIMEOUT=${CEPH_TIMEOUT:-60}
	CEPH_DIR=$1 CEPH_STORE=${2:-memstore}
	CEPH_FSID=$(cat /proc/sys/kernel/random/uuid)
	CEPH_OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
	mkdir -p "$CEPH_DIR/run" "$CEPH_DIR/log" "$CEPH_DIR/crash" \
		"$CEPH_DIR/osd/ceph-0" || return 1
	CEPH_CONF=$CEPH_DIR/ceph.conf
	export CEPH_CONF
	ceph_mon_up || return 1
	_id=$(ceph_cmd osd new "$CEPH_OSD_UUID" 2>>"$CEPH_DIR/log/cmd.log")
	[ "$_id" = 0 ] || { ceph_say "ceph osd new gave '$_id', expected 0"; return 1; }
	ceph_cmd osd pool create "$CEPH_POOL" 8 8 >>"$CEPH_DIR/log/cmd.log" 2>&1 ||
		{ ceph_say "ceph osd pool create $CEPH_POOL failed"; return 1; }
	ceph-osd -c "$CEPH_CONF" -i 0 --mkfs --osd-uuid "$CEPH_OSD_UUID" \
		>"$CEPH_DIR/log/osd-mkfs.log" 2>&1 ||
		{ ceph_say "ceph-osd --mkfs failed (see $CEPH_DIR/log/osd-mkfs.log)"; return 1; }
	ceph_osd_begin
	ceph_osd_wait 1 && ceph_probe
}

ceph_osd_stop() {
	ceph_kill "$CEPH_OSD_PID"
	CEPH_OSD_PID=
	# A TERMed OSD tells the monitor it goes down; wait until the
	# osdmap says so, so that a client's next op finds no OSD.
	ceph_osd_wait 0
}

ceph_osd_start() {
	ceph_ours "$CEPH_OSD_PID" && { ceph_say "the OSD runs"; return 1; }
	ceph_osd_begin
	ceph_osd_wait 1
}

ceph_stop() {
	[ -n "$CEPH_DIR" ] || return 0
	# The OSD first: one that outlives the monitor waits for it.
	ceph_kill "$CEPH_OSD_PID"
	ceph_kill "$CEPH_MON_PID"
	CEPH_OSD_PID= CEPH_MON_PID=
	if ceph_ours "$(cat "$CEPH_DIR/osd.pid" 2>/dev/null)" ||
	   ceph_ours "$(cat "$CEPH_DIR/mon.pid" 2>/dev/null)"; then
		ceph_say "a daemon of $CEPH_DIR still runs: the directory is left"
		return 1
	fi
	rm -rf "$CEPH_DIR"
	CEPH_DIR=
}
