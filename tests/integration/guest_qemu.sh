#!/bin/sh
# The test guest (build/guest/testguest.elf, built by `make guest`) booted by
# QEMU under TCG through its PVH entry: the ELF note, ready and ticks with 1,
# 2 and 4 CPUs, a memory pass, poweroff, and the guest's own mismatch checks
# (selftest=1 corrupts a page and registers on purpose). Prints TAP.
#
# Builds nothing. Every case starts its own QEMU under `timeout 60` and stops
# it by its pid; an interrupted run kills the one still running.
set -u
BUILD=${BUILD:-build}
ELF=$BUILD/guest/testguest.elf
QEMU=${QEMU:-qemu-system-x86_64}
tmp=$(mktemp -d)
out=$tmp/out
qpid=

cleanup() {
	if [ -n "$qpid" ] && [ -f "$tmp/pid" ]; then
		kill "$(cat "$tmp/pid")" 2>/dev/null
		wait "$qpid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

. tests/lib/tap.sh
# A failure shows the end of QEMU's output.
not_ok() {
	n=$((n + 1)); failed=1; echo "not ok $n - $1"
	[ -f "$out" ] && tr -d '\033\r' <"$out" | grep -a . | tail -n 15 | sed 's/^/# /'
}

# start SMP APPEND: boot the guest in the background, output in $out.
start() {
	rm -f "$tmp/pid" "$tmp/rc"
	: >"$out"
	(
		timeout 60 "$QEMU" -accel tcg -cpu max -smp "$1" -m 256 -nographic \
			-no-reboot -kernel "$ELF" -append "$2" </dev/null >"$out" 2>&1 &
		echo $! >"$tmp/pid"
		wait $!
		echo $? >"$tmp/rc"
	) &
	qpid=$!
}

# finish [PATTERN]: wait until QEMU exits (or PATTERN is printed, then stop
# QEMU); rc = QEMU's exit status, or "killed".
finish() {
	while [ ! -f "$tmp/rc" ]; do
		if [ $# -gt 0 ] && grep -aq "$1" "$out"; then
			kill "$(cat "$tmp/pid")" 2>/dev/null
			break
		fi
		sleep 0.1
	done
	wait "$qpid" 2>/dev/null
	qpid=
	rc=killed
	if [ $# -eq 0 ] || ! grep -aq "$1" "$out"; then
		rc=$(cat "$tmp/rc" 2>/dev/null || echo none)
	fi
}

has() { grep -aq "$1" "$out"; }
clean() { ! grep -aq 'snapfs-guest MISMATCH\|snapfs-guest FAULT' "$out"; }

# The first five tick lines are "tick 0" .. "tick 4", in order.
ticks_in_order() {
	[ "$(grep -a '^tick [0-9]*$' "$out" | head -n 5 | tr '\n' ' ')" = \
	  "tick 0 tick 1 tick 2 tick 3 tick 4 " ]
}

need_built "$ELF"

# The note's descriptor is the entry point, little-endian.
entry=$(readelf -hW "$ELF" | awk '/Entry point address/ { print $4 }')
want=$(printf '%08x' "$((entry))" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4 \3 \2 \1/')
check "ELF has a Xen PHYS32_ENTRY (type 18) note holding the entry $entry" \
	'readelf -nW "$ELF" 2>&1 | grep -Eq "Xen[[:space:]]+0x00000004[[:space:]].*(0x00000012|PHYS32).*description data: $want[[:space:]]*\$"'

# Physical addresses of the PT_LOAD segments, all >= 1 MiB (and at least one).
loads_above_1m() {
	set -- $(readelf -lW "$ELF" | awk '$1 == "LOAD" { print $4 }')
	[ $# -gt 0 ] || return 1
	for a; do
		[ "$((a))" -ge 1048576 ] || return 1
	done
}
check "every PT_LOAD segment is at or above 1 MiB physical" loads_above_1m

if ! command -v "$QEMU" >/dev/null 2>&1; then
	echo "guest_qemu: $QEMU missing: the guest boot tests are NOT RUN" >&2
	for t in "-smp 1" "-smp 2" "-smp 4" "touch=16" "halt_after=5" "selftest=1"; do
		skip "$t" "$QEMU missing"
	done
	tap_end
fi

start 1 "halt_after=6"
finish
check "-smp 1: ready cpus=1, ticks 0-4 in order, no mismatch or fault" \
	'has "snapfs-guest ready cpus=1 " && ticks_in_order && clean'

start 2 "halt_after=3"
finish
check "-smp 2: ready cpus=2, ticks, no mismatch or fault" \
	'has "snapfs-guest ready cpus=2 " && has "^tick 2$" && clean'

start 4 "halt_after=3"
finish
check "-smp 4: ready cpus=4, ticks, no mismatch or fault" \
	'has "snapfs-guest ready cpus=4 " && has "^tick 2$" && clean'

start 2 "touch=16 rate=0 halt_after=300"
finish "snapfs-guest pass [0-9]* cpu=1 "
check "touch=16: both CPUs finish a pass over their 8 MiB, no mismatch" \
	'has "snapfs-guest ready cpus=2 touch=16 rate=0" && has "snapfs-guest pass 1 cpu=0 " && has "snapfs-guest pass 1 cpu=1 " && clean'

start 1 "halt_after=5"
finish
check "halt_after=5: QEMU exits by itself with status 0 after tick 4 (got $rc)" \
	'[ "$rc" = 0 ] && has "^tick 4$" && ! has "^tick 5$" && has "snapfs-guest poweroff"'

start 1 "touch=2 rate=0 selftest=1 halt_after=300"
finish "MISMATCH mem cpu=0 page=0 "
check "selftest=1: the guest reports its corrupted page, r13 and xmm9" \
	'has "snapfs-guest MISMATCH mem cpu=0 page=0 " && has "snapfs-guest MISMATCH reg=r13 cpu=0 " && has "snapfs-guest MISMATCH reg=xmm9 cpu=0 " && ! has "MISMATCH reg=r1[245]" && ! has "FAULT"'

tap_end
