# Helpers of the scripts that run where a KVM is, here or in the rig
# (sourced; busybox sh). They report "RESULT ..." lines (tap.sh's
# rig_results numbers them) and keep the VM under test's output in $T.
#
#   res TEXT            one RESULT line
#   check NAME 'TEST'   RESULT ok/not ok, with the VM's last lines on failure
#   wait_for FILE PATTERN COUNT SECONDS
#   start ARGS...       snapvm ARGS in the background: $pid, $T/out, $T/err
#   stop                SIGTERM (SIGKILL after 10 s) and wait: $rc
#   finish              wait at most 120 s for the VM to end: $rc (124: it
#                       did not, and was stopped)
#   quit_vm             snapvm ctl $S quit and wait for the VM to end: $rc;
#                       one that does not in 120 s (or a ctl that does not
#                       answer in 60 s) is reported with where each of its
#                       threads waits, then stopped (rc 124)
#   stuck WHAT          report where $pid's threads are (wchan, kernel
#                       stack) and the end of its stderr
#   one_line PREFIX     exit status 1, one line on stderr starting with PREFIX
#   fs_mount STORE DIR [OPTION...]
#                       snapfs STORE DIR -f OPTION... in the background:
#                       $fspid, its stderr appended to $T/fs.err; waits up
#                       to 10 s for the mount, false without it
#   tick_list FILE      the test guest's tick numbers in FILE, one a line
#   first_tick FILE, last_tick FILE
#                       the first and last of them (0: none)
#   sound FILE          no MISMATCH or FAULT line of the guest's checks
#   clean FILE          sound, and no "ready" line: it did not boot again
#   fs_unmount          SIGTERM to $fspid (SIGKILL after 10 s) and wait:
#                       $fsrc; a mount it left is lazily unmounted
SNAPVM=${SNAPVM:-./snapvm}
SNAPFS=${SNAPFS:-./snapfs}
T=$(mktemp -d)
pid= fspid= fsdir=

res() { echo "RESULT $*"; }
show() {
	for f; do
		[ -s "$f" ] || continue
		tail -4 "$f" | while IFS= read -r l || [ -n "$l" ]; do
			echo "RESULT # $l"
		done
	done
}
check() {
	if eval "$2"; then res "ok - $1"; else res "not ok - $1"; show "$T/out" "$T/err"; fi
}
wait_for() {
	_i=0
	while [ $_i -lt $(($4 * 10)) ]; do
		[ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0
		grep -q "snapfs-guest FAULT" "$1" 2>/dev/null && return 1
		sleep 0.1; _i=$((_i + 1))
	done
	return 1
}
# The files are emptied first: the background shell truncates them only
# when it gets to run, and a wait_for before that would see the last VM's.
start() {
	: >"$T/out"; : >"$T/err"
	"$SNAPVM" "$@" </dev/null >"$T/out" 2>"$T/err" & pid=$!
}
stop() {
	kill -TERM "$pid" 2>/dev/null
	_i=0
	while kill -0 "$pid" 2>/dev/null && [ $_i -lt 100 ]; do
		sleep 0.1; _i=$((_i + 1))
	done
	kill -KILL "$pid" 2>/dev/null && res "# snapvm ignored SIGTERM"
	wait "$pid" 2>/dev/null; rc=$?; pid=
}
finish() {
	_i=0
	while kill -0 "$pid" 2>/dev/null && [ $_i -lt 1200 ]; do
		grep -q "snapfs-guest FAULT" "$T/out" && break
		sleep 0.1; _i=$((_i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		stop; rc=124
	else
		wait "$pid"; rc=$?; pid=
	fi
}
stuck() {
	res "# stuck: $1; snapvm $pid's threads:"
	for t in /proc/"$pid"/task/*; do
		[ -d "$t" ] || continue
		res "#   ${t##*/} $(cat "$t/comm" 2>/dev/null) wchan=$(cat "$t/wchan" 2>/dev/null) $(tr '\n' ' ' <"$t/stack" 2>/dev/null | cut -c1-300)"
	done
	show "$T/err"
}
quit_vm() {
	r=$(timeout 60 "$SNAPVM" ctl "$S" quit); crc=$?
	[ -n "$r" ] || stuck "snapvm ctl quit: no answer in 60 s (status $crc)"
	_i=0
	while kill -0 "$pid" 2>/dev/null && [ $_i -lt 1200 ]; do
		sleep 0.1; _i=$((_i + 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		stuck "snapvm did not end in 120 s after quit"
		stop; rc=124
	else
		wait "$pid"; rc=$?; pid=
	fi
}
one_line() {
	[ "$rc" -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^$1" "$T/err"
}
fs_mount() {
	_store=$1 fsdir=$2
	shift 2
	"$SNAPFS" "$_store" "$fsdir" -f "$@" 2>>"$T/fs.err" & fspid=$!
	_j=0
	until grep -q " $fsdir fuse" /proc/mounts || [ $_j -ge 100 ]; do
		sleep 0.1; _j=$((_j + 1))
	done
	grep -q " $fsdir fuse" /proc/mounts
}
fs_unmount() {
	[ -n "$fspid" ] || return 0
	kill -TERM "$fspid" 2>/dev/null
	_j=0
	while kill -0 "$fspid" 2>/dev/null && [ $_j -lt 100 ]; do
		sleep 0.1; _j=$((_j + 1))
	done
	kill -KILL "$fspid" 2>/dev/null
	wait "$fspid" 2>/dev/null; fsrc=$?; fspid=
	grep -q " $fsdir fuse" /proc/mounts && umount -l "$fsdir"
}

# The test guest's console (tests/guest).
tick_list() { sed -n 's/^tick \([0-9]*\)$/\1/p' "$1"; }
first_tick() { t=$(tick_list "$1" | head -1); echo "${t:-0}"; }
last_tick() { t=$(tick_list "$1" | tail -1); echo "${t:-0}"; }
sound() { ! grep -q "MISMATCH\|FAULT" "$1"; }
clean() { sound "$1" && ! grep -q "snapfs-guest ready" "$1"; }	# no reboot
