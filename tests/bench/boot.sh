#!/bin/sh
# Boot time of the test guest: snapvm beside QEMU.
#
#   sh tests/bench/boot.sh
#
# Milliseconds from the monitor's fork to the guest's "snapfs-guest ready
# cpus=N" line and to its first "tick 0" line, for `snapvm run` and for
# `qemu-system-x86_64 -enable-kvm` (SeaBIOS, PVH option ROM) booting the
# same $BUILD/guest/testguest.elf with the same RAM, for each vCPU count in
# BENCH_CPUS (default "2 1 4"). Each case has one warm-up run, not counted,
# then BENCH_RUNS (default 5) runs, snapvm and QEMU alternating; the table
# gives the median, min and max of those and the ratios of the medians.
#
# Both monitors run in one boot of the rig (tests/rig/rig.sh: Debian's
# kernel under QEMU TCG with nested SVM), since this project's hosts have no
# usable /dev/kvm. Every exit is emulated there, so the times are far above
# a real machine's: compare the ratios, and only numbers from the same run.
# The timing helper, tests/bench/stamp.c, is built here (static) into
# $BUILD/bench/. The rig's console is kept in $BUILD/bench/boot.log.
#
# Exit status: 0; 1 when a run did not reach ready; 2 when something is not
# built; 125 when the rig failed.
set -u
. tests/bench/lib.sh
RUNS=${BENCH_RUNS:-5}
CPUS=${BENCH_CPUS:-2 1 4}
MEM_MIB=256
bench_init boot

# Inside the rig, in /rig. Prints "BENCH run MONITOR CPUS I READY TICK"
# (I = 0 for the warm-up, "-" for a line never seen) and, for a failed run,
# "BENCH # " lines: stamp's message and the end of the guest's output.
cat >"$tmp/boot.sh" <<RIG
runs=$RUNS mem=$MEM_MIB cpu_counts="$CPUS"
RIG
cat >>"$tmp/boot.sh" <<'RIG'
failed=0
one() {
	mon=$1 cpus=$2 i=$3
	shift 3
	t=$(./stamp -t 60 -o /tmp/out "snapfs-guest ready cpus=$cpus " "tick 0" \
		-- "$@" </dev/null 2>/tmp/err)
	rc=$?
	echo "BENCH run $mon $cpus $i $t"
	if [ $rc -ne 0 ]; then
		failed=$((failed + 1))
		tr -d '\r\033' </tmp/out | tail -4 | cat /tmp/err - |
			sed "s/^/BENCH # $mon cpus=$cpus run $i: /"
	fi
}
for cpus in $cpu_counts; do
	i=0
	while [ $i -le $runs ]; do
		one snapvm $cpus $i ./snapvm run --kernel testguest.elf \
			--mem ${mem}M --cpus $cpus
		one qemu $cpus $i $qemu -enable-kvm -cpu host \
			-L /rig -nodefaults -no-user-config -display none \
			-serial stdio -no-reboot -m $mem -smp $cpus \
			-kernel testguest.elf
		i=$((i + 1))
	done
done
echo "BENCH end"
[ $failed -eq 0 ]
RIG

bench_rig "$tmp/boot.sh"

bench_table '
$1 == "BENCH" && $2 == "run" {
	key = $3 " " $4
	if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
	if (!($4 in cpuseen)) { cpuseen[$4] = 1; cpus[++ncpus] = $4 }
	if ($6 == "") $6 = "-"
	if ($7 == "") $7 = "-"
	val[key, $5] = 1; val[key, $5, 1] = $6; val[key, $5, 2] = $7
	if ($6 == "-") bad++
}
END {
	printf "boot: %s; ms from fork, %d runs after 1 warm-up\n", where(),
	       runs
	printf "%-8s %4s  %-18s %-18s %13s\n", "", "", "---- ready ms ----",
	       "--- tick 0 ms ----", "snapvm/qemu"
	printf "%-8s %4s  %6s %5s %5s  %6s %5s %5s  %6s %6s\n", "monitor",
	       "cpus", "median", "min", "max", "median", "min", "max",
	       "ready", "tick 0"
	for (c = 1; c <= ncpus; c++) {
		for (m = 1; m <= 2; m++) {
			mon = m == 1 ? "snapvm" : "qemu"
			key = mon " " cpus[c]
			stats(key, 1); stats(key, 2)
			r[m, 1] = med[1]; r[m, 2] = med[2]
			line[m] = sprintf("%-8s %4s  %6s %5s %5s  %6s %5s %5s", mon,
					  cpus[c], med[1], lo[1], hi[1], med[2], lo[2], hi[2])
		}
		printf "%s  %6s %6s\n", line[1], ratio(r[1, 1], r[2, 1]),
		       ratio(r[1, 2], r[2, 2])
		printf "%s\n", line[2]
	}
	for (i = 1; i <= nnotes; i++)
		print "boot: " notes[i]
	if (bad)
		printf "boot: %d runs did not reach ready (rig console: %s)\n", bad, logfile
	exit bad ? 1 : 0
}'
