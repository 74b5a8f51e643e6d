#!/bin/sh
# Snapshot save and restore of the test guest: snapvm beside QEMU.
#
#   sh tests/bench/snapshot.sh
#
# Save: a 1 GiB test guest with 2 vCPUs (`snapvm run ... --cmdline
# "touch=T rate=0"`: its workers rewrite T MiB as fast as they can, so
# the pages dirtied between two snapshots are those T MiB), for T = 10 and
# 102 (1% and 10% of RAM). Once both workers have made a pass, snapvm
# takes a full snapshot (`snapvm ctl SOCK snapshot DIR`), then, once
# each CPU has printed two more pass lines (the last of them began after
# the full snapshot, so all T MiB were written again), a diff snapshot
# (`snapshot DIR2 --parent DIR`). Each is timed as the wall time of the
# ctl command, fork to its `ok` line; the response gives paused_ms and
# the bytes written and copied. QEMU saves the same guest, booted the same
# way under -enable-kvm, by a non-live migration to a file through its
# HMP monitor (a pair of fifos, -monitor pipe:): `stop`, `migrate -d
# "exec:cat > FILE"` with no bandwidth limit, then `info migrate` every
# 10 ms; the time is from the fork of the shell sending these to the
# first "Migration status: completed". The VM is stopped for all of it,
# so QEMU's paused time is its wall time; what it wrote is FILE's size.
# QEMU has no diff: both of snapvm's saves are compared with its one.
#
# Restore: the same guest with 256 MiB and 2 GiB of RAM and touch=16 (the
# default rate, 1000 pages/s) is saved once by each monitor, untimed; then
# `snapvm restore DIR --debug` is timed from its fork to its stderr line
# "snapvm: vcpu 0: first KVM_RUN" (the guest runs) and to the guest's
# next "tick N" line, and QEMU's `-incoming "exec:cat FILE"` (the same
# command line as the saved VM) from its fork to that tick line. QEMU's
# file is made with migration.store-global-state=off, so that the
# incoming VM starts by itself although it was stopped when saved.
# snapvm maps memory.bin MAP_PRIVATE: its restore should not grow with
# RAM, which the 2G/256M ratio shows.
#
# Each case has one warm-up run, not counted (a warm-up restore runs on to
# the guest's next pass line, which reports its memory checks), then
# BENCH_RUNS (default 10) runs, snapvm and QEMU alternating; the tables
# give medians (min and max) and ratios of medians. A guest MISMATCH or
# FAULT line fails the run. Snapshots are removed after each run.
#
# Everything runs in one boot of the rig (tests/rig/rig.sh: Debian's kernel
# under QEMU TCG with nested SVM; --mem RIG_MEM, default 4096 MiB), as in
# boot.sh: compare the ratios, and only numbers from the same run. The
# rig's console is kept in $BUILD/bench/snapshot.log.
#
# Exit status: 0; 1 when a save or restore failed or a guest reported a
# mismatch; 2 when something is not built; 125 when the rig failed.
set -u
. tests/bench/lib.sh
RUNS=${BENCH_RUNS:-10}
SAVE_MIB=1024
SAVE_TOUCH="10 102"
RESTORE_MIB="256 2048"
RESTORE_TOUCH=16
bench_init snapshot

# Inside the rig, in /rig. Prints
#   BENCH save MONITOR KIND TOUCH I WALL PAUSED WRITTEN COPIED
#   BENCH restore MONITOR MIB I RUN TICK
# (I = 0 for the warm-up; times in ms, sizes in bytes; "-" for what was
# not measured or never seen), "BENCH # " lines saying what went wrong
# and, last but one, "BENCH failed N".
cat >"$tmp/snapshot.sh" <<RIG
runs=$RUNS save_mib=$SAVE_MIB save_touch="$SAVE_TOUCH"
restore_mib="$RESTORE_MIB" restore_touch=$RESTORE_TOUCH
RIG
cat >>"$tmp/snapshot.sh" <<'RIG'
S=/tmp/vm.sock M=/tmp/mon
failed=0

# qsave.sh MON FILE: QEMU's save through the monitor fifos MON.in and
# MON.out; prints the monitor's output until stamp stops it.
cat >/tmp/qsave.sh <<'QSAVE'
cat "$1.out" &
reader=$!
trap 'kill $reader; exit 0' TERM
echo stop >"$1.in"
echo "migrate -d \"exec:cat > $2\"" >"$1.in"
while :; do
	echo "info migrate" >"$1.in"
	sleep 0.01
done
QSAVE

note() { echo "BENCH # $*"; }
fail() { failed=$((failed + 1)); note "$@"; }
tell() {	# WHAT FILE...: the end of a failed step's output
	_w=$1; shift
	cat "$@" 2>/dev/null | tr -d '\r\033' | tail -4 | sed "s/^/BENCH # $_w: /"
}
lines() { _c=$(grep -c "$2" "$1" 2>/dev/null); echo "${_c:-0}"; }
wait_for() {	# FILE PATTERN COUNT SECONDS
	_n=0
	while [ "$(lines "$1" "$2")" -lt "$3" ]; do
		[ $_n -ge $(($4 * 10)) ] && return 1
		grep -q "snapfs-guest FAULT" "$1" && return 1
		sleep 0.1; _n=$((_n + 1))
	done
}
sound() {	# OUT WHAT: the guest reported no mismatch and no fault
	grep -q "MISMATCH\|FAULT" "$1" || return 0
	fail "$2: the guest reported"
	grep "MISMATCH\|FAULT" "$1" | tr -d '\r' | head -4 | sed "s/^/BENCH # $2: /"
	return 1
}
end_vm() {	# WHAT: wait 30 s for $vm to end after a quit, then SIGKILL it
	_n=0
	while kill -0 $vm 2>/dev/null && [ $_n -lt 300 ]; do
		sleep 0.1; _n=$((_n + 1))
	done
	kill -KILL $vm 2>/dev/null && note "$1: did not quit, killed"
	wait $vm 2>/dev/null
}
snapvm_quit() { ./snapvm ctl $S quit >/dev/null 2>&1; end_vm "$1"; }
qemu_quit() { echo quit >$M.in; end_vm "$1"; }

# A guest with MIB of RAM, 2 vCPUs and "touch=TOUCH RATE": $vm; returns
# once both workers have made a pass.
snapvm_boot() {	# MIB TOUCH RATE
	rm -f $S
	./snapvm run --kernel testguest.elf --mem ${1}M --cpus 2 --control $S \
		--cmdline "touch=$2 $3" </dev/null >/tmp/out 2>/tmp/err &
	vm=$!
	wait_for /tmp/out "^snapfs-guest pass 1 " 2 300
}
qemu_cmd="$qemu -enable-kvm -cpu host -L /rig -nodefaults -no-user-config
	-display none -serial stdio -no-reboot -smp 2 -kernel testguest.elf"
qemu_boot() {	# MIB TOUCH RATE
	rm -f $M.in $M.out
	mkfifo $M.in $M.out
	$qemu_cmd -m $1 -append "touch=$2 $3" -monitor pipe:$M \
		-global migration.store-global-state=off \
		</dev/null >/tmp/out 2>/tmp/err &
	vm=$!
	wait_for /tmp/out "^snapfs-guest pass 1 " 2 300 || return 1
	echo "migrate_set_parameter max-bandwidth 100G" >$M.in
}

# snapvm's save: "BENCH save snapvm KIND ..."
ctl_save() {	# KIND TOUCH I DIR [--parent PDIR]
	_k=$1 _t=$2 _i=$3
	shift 3
	_ms=$(./stamp -t 300 -o /tmp/r "ok snapshot" -- \
		./snapvm ctl $S snapshot "$@" 2>/tmp/serr)
	_rc=$?
	_r=$(tr -d '\r' </tmp/r)
	set -- paused_ms written copied
	for _f; do
		_v=$(echo "$_r" | sed -n "s/.* $_f=\([0-9.]*\).*/\1/p")
		_ms="$_ms ${_v:--}"
	done
	echo "BENCH save snapvm $_k $_t $_i $_ms"
	[ $_rc -eq 0 ] && return 0
	fail "snapvm $_k save, touch=$_t run $_i: failed"
	tell "snapvm $_k save, touch=$_t run $_i" /tmp/serr /tmp/r
	return 1
}
# QEMU's save to FILE: $t (ms or -), $size (bytes or -)
qemu_mig() {	# FILE
	t=$(./stamp -t 120 -o /tmp/r "Migration status: completed" -- \
		sh /tmp/qsave.sh $M "$1" 2>/tmp/serr)
	_rc=$?
	size=$(wc -c <"$1" 2>/dev/null)
	size=${size:--}
	return $_rc
}

save_snapvm() {	# TOUCH I
	what="snapvm save, touch=$1 run $2"
	if snapvm_boot $save_mib $1 rate=0; then
		if ctl_save full $1 $2 /tmp/s1; then
			n0=$(lines /tmp/out "^snapfs-guest pass [0-9]* cpu=0 ")
			n1=$(lines /tmp/out "^snapfs-guest pass [0-9]* cpu=1 ")
			wait_for /tmp/out "^snapfs-guest pass [0-9]* cpu=0 " \
				$((n0 + 2)) 120 &&
			wait_for /tmp/out "^snapfs-guest pass [0-9]* cpu=1 " \
				$((n1 + 2)) 120 ||
				fail "$what: no two more passes after the full save"
			ctl_save diff $1 $2 /tmp/s2 --parent /tmp/s1
		fi
	else
		fail "$what: the guest made no first pass"
		tell "$what" /tmp/err /tmp/out
	fi
	snapvm_quit "$what"
	sound /tmp/out "$what"
	rm -rf /tmp/s1 /tmp/s2
}
save_qemu() {	# TOUCH I
	what="qemu save, touch=$1 run $2"
	t=- size=-
	if qemu_boot $save_mib $1 rate=0; then
		qemu_mig /tmp/q.mig || {
			fail "$what: no completed migration"
			tell "$what" /tmp/serr /tmp/r
		}
	else
		fail "$what: the guest made no first pass"
		tell "$what" /tmp/err /tmp/out
	fi
	echo "BENCH save qemu migrate $1 $2 $t $t $size -"
	qemu_quit "$what"
	sound /tmp/out "$what"
	rm -f /tmp/q.mig
}

# The snapshots to restore: /tmp/rMIB (snapvm) and /tmp/rMIB.mig (QEMU).
make_restorable() {	# MIB
	what="snapvm ${1}M snapshot to restore"
	if snapvm_boot $1 $restore_touch rate=1000; then
		./snapvm ctl $S snapshot /tmp/r$1 >/tmp/r 2>&1 ||
			{ fail "$what: failed"; tell "$what" /tmp/r; }
		echo "BENCH info $what: $(cat /tmp/r)"
	else
		fail "$what: the guest made no first pass"
		tell "$what" /tmp/err /tmp/out
	fi
	snapvm_quit "$what"
	what="qemu ${1}M migration to restore"
	if qemu_boot $1 $restore_touch rate=1000; then
		qemu_mig /tmp/r$1.mig ||
			{ fail "$what: failed"; tell "$what" /tmp/serr /tmp/r; }
		echo "BENCH info $what: $t ms, $size bytes"
	else
		fail "$what: the guest made no first pass"
		tell "$what" /tmp/err /tmp/out
	fi
	qemu_quit "$what"
}
restore_one() {	# MONITOR MIB I
	mon=$1 mib=$2 run=$3
	what="$mon restore, ${mib}M run $run"
	extra=
	[ $run -eq 0 ] && extra="snapfs-guest pass "
	if [ $mon = snapvm ]; then
		t=$(./stamp -t 120 -o /tmp/out "first KVM_RUN" "tick " \
			${extra:+"$extra"} -- ./snapvm restore /tmp/r$mib --debug \
			</dev/null 2>/tmp/serr)
		rc=$?
	else
		t=$(./stamp -t 120 -o /tmp/out "tick " ${extra:+"$extra"} -- \
			$qemu_cmd -m $mib -append "touch=$restore_touch rate=1000" \
			-incoming "exec:cat /tmp/r$mib.mig" </dev/null 2>/tmp/serr)
		rc=$?
		t="- $t"
	fi
	set -- $t
	echo "BENCH restore $mon $mib $run $1 $2"
	if [ $rc -ne 0 ]; then
		fail "$what: failed"
		tell "$what" /tmp/serr /tmp/out
	fi
	sound /tmp/out "$what"
}

for touch in $save_touch; do
	i=0
	while [ $i -le $runs ]; do
		save_snapvm $touch $i
		save_qemu $touch $i
		i=$((i + 1))
	done
done
for mib in $restore_mib; do
	make_restorable $mib
done
i=0
while [ $i -le $runs ]; do
	for mib in $restore_mib; do
		restore_one snapvm $mib $i
		restore_one qemu $mib $i
	done
	i=$((i + 1))
done
rm -rf /tmp/r[0-9]*
echo "BENCH failed $failed"
echo "BENCH end"
[ $failed -eq 0 ]
RIG

RIG_TIMEOUT=${RIG_TIMEOUT:-3600} bench_rig "$tmp/snapshot.sh" \
	--mem "${RIG_MEM:-4096}"

bench_table '
function mib(b) { return b == "-" ? "-" : sprintf("%.1f", b / 1048576) }
function ms(v) { return v == "-" ? "-" : sprintf("%.0f", v) }
function trimmed(line) { sub(/ +$/, "", line); print line }
function ram(m) { return m % 1024 ? (m "M") : (m / 1024 "G") }
$1 == "BENCH" && $2 == "save" {
	key = $3 " " $4 " " $5
	if (!($5 in tseen)) { tseen[$5] = 1; touches[++nt] = $5 }
	val[key, $6] = 1
	for (c = 1; c <= 4; c++)
		val[key, $6, c] = $(6 + c) == "" ? "-" : $(6 + c)
	if (val[key, $6, 1] == "-") bad++
}
$1 == "BENCH" && $2 == "restore" {
	key = $3 " " $4
	if (!($4 in mseen)) { mseen[$4] = 1; mibs[++nm] = $4 }
	val[key, $5] = 1
	val[key, $5, 1] = $6 == "" ? "-" : $6
	val[key, $5, 2] = $7 == "" ? "-" : $7
	if (val[key, $5, 2] == "-") bad++
}
$1 == "BENCH" && $2 == "failed" { failed = $3 }
END {
	printf "snapshot: %s; ms, %d runs after 1 warm-up\n", where(), runs
	printf "save of a %s guest, 2 vCPUs, touch=T rate=0; wall: fork of " \
	       "the save command to its end; qemu: stop, migrate to a file, " \
	       "stopped throughout (paused = wall), written = the file\n",
	       ram(save_mib)
	printf "%-12s %5s  %-20s  %6s  %8s %7s  %-11s  %-11s\n", "", "",
	       "------ wall ms -----", "paused", "written", "copied",
	       " diff/full", "snapvm/qemu"
	printf "%-12s %5s  %6s %6s %6s  %6s  %8s %7s  %5s %5s  %5s %5s\n",
	       "save", "touch", "median", "min", "max", "median", "MiB", "MiB",
	       "wall", "pause", "wall", "pause"
	n = split("snapvm full,snapvm diff,qemu migrate", kinds, ",")
	for (t = 1; t <= nt; t++) {
		for (k = 1; k <= n; k++) {
			key = kinds[k] " " touches[t]
			for (c = 1; c <= 4; c++) stats(key, c)
			w[k] = med[1]; p[k] = med[2]
			line = sprintf("%-12s %5s  %6s %6s %6s  %6s  %8s %7s",
				       kinds[k], touches[t], ms(med[1]), ms(lo[1]),
				       ms(hi[1]), ms(med[2]), mib(med[3]), mib(med[4]))
			if (k == 2)
				line = line sprintf("  %5s %5s", ratio(w[2], w[1]),
						    ratio(p[2], p[1]))
			else
				line = line sprintf("  %5s %5s", "", "")
			rows[k] = line
		}
		for (k = 1; k <= n; k++) {
			if (k < 3)
				rows[k] = rows[k] sprintf("  %5s %5s",
					ratio(w[k], w[3]), ratio(p[k], p[3]))
			trimmed(rows[k])
		}
	}
	big = ram(mibs[nm]) "/" ram(mibs[1])
	printf "\nrestore of a %s and a %s guest, 2 vCPUs, touch=%d; ms " \
	       "from fork\n", ram(mibs[1]), ram(mibs[nm]), restore_touch
	printf "%-8s %5s  %-20s  %-20s  %-12s  %s\n", "", "",
	       "- first KVM_RUN ms -", "------ tick ms -----",
	       sprintf("%12s", big), "snapvm/qemu"
	printf "%-8s %5s  %6s %6s %6s  %6s %6s %6s  %5s %6s  %6s\n",
	       "restore", "RAM", "median", "min", "max", "median", "min",
	       "max", "run", "tick", "tick"
	for (m = 1; m <= 2; m++) {
		mon = m == 1 ? "snapvm" : "qemu"
		for (r = 1; r <= nm; r++) {
			key = mon " " mibs[r]
			stats(key, 1); stats(key, 2)
			f[m, r] = med[1]; k2[m, r] = med[2]
			line = sprintf("%-8s %5s  %6s %6s %6s  %6s %6s %6s", mon,
				       ram(mibs[r]), ms(med[1]), ms(lo[1]),
				       ms(hi[1]), ms(med[2]), ms(lo[2]), ms(hi[2]))
			if (r == nm && nm > 1)
				line = line sprintf("  %5s %6s",
					ratio(f[m, r], f[m, 1]), ratio(k2[m, r], k2[m, 1]))
			else
				line = line sprintf("  %5s %6s", "", "")
			rowr[m, r] = line
		}
	}
	for (m = 1; m <= 2; m++)
		for (r = 1; r <= nm; r++)
			trimmed(rowr[m, r] (m == 1 ? sprintf("  %6s",
				ratio(k2[1, r], k2[2, r])) : ""))
	for (i = 1; i <= nnotes; i++)
		print "snapshot: " notes[i]
	if (bad || failed)
		printf "snapshot: %d runs not measured, %d failures (rig " \
		       "console: %s)\n", bad, failed, logfile
	exit bad || failed ? 1 : 0
}' -v save_mib=$SAVE_MIB -v restore_touch=$RESTORE_TOUCH
