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
BUILD=${BUILD:-build}
CC=${CC:-gcc}
RIG=${RIG:-tests/rig/rig.sh}
QEMU=${QEMU:-qemu-system-x86_64}
RUNS=${BENCH_RUNS:-5}
CPUS=${BENCH_CPUS:-2 1 4}
MEM_MIB=256
RIG_SMP=2
FIRMWARE="bios-256k.bin pvh.bin kvmvapic.bin"
OUT=$BUILD/bench
LOG=$OUT/boot.log

for f in "$BUILD/snapvm:make" "$BUILD/guest/testguest.elf:make guest" \
	 "build/guest/vmlinuz:make guest"; do
	[ -f "${f%%:*}" ] ||
		{ echo "boot: ${f%%:*} missing (run ${f#*:})" >&2; exit 2; }
done
command -v "$QEMU" >/dev/null ||
	{ echo "boot: $QEMU missing (make deps installs it)" >&2; exit 2; }

# The firmware QEMU needs for -kernel of a PVH ELF, from its own search
# path: SeaBIOS, the option ROM that enters the PVH entry, and the APIC's
# kvmvapic ROM (QEMU warns without it). The rig puts them in /rig.
fw=
for f in $FIRMWARE; do
	p=
	for d in $("$QEMU" -L help); do
		[ -f "$d/$f" ] && { p=$d/$f; break; }
	done
	[ -n "$p" ] || { echo "boot: QEMU firmware $f not found" >&2; exit 2; }
	fw="$fw $p"
done

mkdir -p "$OUT"
"$CC" -std=gnu11 -O2 -static -D_GNU_SOURCE -Wall -Wextra -Werror \
	-o "$OUT/stamp" tests/bench/stamp.c || exit 2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Inside the rig, in /rig. Prints "BENCH run MONITOR CPUS I READY TICK"
# (I = 0 for the warm-up, "-" for a line never seen) and, for a failed run,
# "BENCH # " lines: stamp's message and the end of the guest's output.
cat >"$tmp/boot_rig.sh" <<RIG
runs=$RUNS mem=$MEM_MIB cpu_counts="$CPUS" qemu=./$(basename "$QEMU")
RIG
cat >>"$tmp/boot_rig.sh" <<'RIG'
echo "BENCH kernel $(uname -r)"
echo "BENCH qemu $($qemu --version | sed -n 's/.*version \([^ ]*\).*/\1/p')"
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

# shellcheck disable=SC2086
BUILD=$BUILD RIG_PROGS="$QEMU $OUT/stamp" RIG_TIMEOUT=${RIG_TIMEOUT:-900} \
	sh "$RIG" --smp $RIG_SMP "$tmp/boot_rig.sh" $fw >"$LOG" 2>&1
rc=$?
if ! grep -q '^BENCH end$' "$LOG"; then
	echo "boot: the rig did not finish (status $rc); the end of $LOG:" >&2
	tail -20 "$LOG" >&2
	[ $rc -eq 0 ] && rc=125
	exit $rc
fi

outer=$("$QEMU" --version | sed -n 's/.*version \([^ ]*\).*/\1/p')
awk -v outer="$outer" -v smp=$RIG_SMP -v runs="$RUNS" -v logfile="$LOG" '
function sort(a, n,    i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
}
function median(a, n) {
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# stats KEY: med[], lo[], hi[] of the counted runs of KEY, or "-".
function stats(key, col,    a, n, i) {
	n = 0
	for (i = 1; i <= runs; i++)
		if ((key, i) in val && val[key, i, col] != "-")
			a[++n] = val[key, i, col]
	if (n == 0) { med[col] = lo[col] = hi[col] = "-"; return }
	sort(a, n)
	med[col] = median(a, n); lo[col] = a[1]; hi[col] = a[n]
}
function ratio(a, b) { return a == "-" || b == "-" || b == 0 ? "-" : sprintf("%.2f", a / b) }
$1 == "BENCH" && $2 == "kernel" { kernel = $3 }
$1 == "BENCH" && $2 == "qemu" { inner = $3 }
$1 == "BENCH" && $2 == "run" {
	key = $3 " " $4
	if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key }
	if (!($4 in cpuseen)) { cpuseen[$4] = 1; cpus[++ncpus] = $4 }
	if ($6 == "") $6 = "-"
	if ($7 == "") $7 = "-"
	val[key, $5] = 1; val[key, $5, 1] = $6; val[key, $5, 2] = $7
	if ($6 == "-") bad++
}
$1 == "BENCH" && $2 == "#" { sub(/^BENCH # /, ""); notes[++nnotes] = $0 }
END {
	printf "boot: in the rig (QEMU %s TCG, %d vCPUs, nested SVM), Linux %s " \
	       "kvm-amd, QEMU %s -enable-kvm inside; ms from fork, %d runs " \
	       "after 1 warm-up\n", outer, smp, kernel, inner, runs
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
}' "$LOG"
