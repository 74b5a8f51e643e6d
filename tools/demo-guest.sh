#!/bin/sh
# make demo, the real guest: boot the test guest, snapshot it twice while
# it runs (full, then diff), restore the diff in a new process and watch
# its ticks go on. Runs where a KVM is: called by demo.sh on this machine,
# or inside the rig (tests/rig/rig.sh), with its programs in the current
# directory or named by SNAPVM, SNAPCTL and GUEST.
set -u
SNAPVM=${SNAPVM:-./snapvm} SNAPCTL=${SNAPCTL:-./snapctl}
GUEST=${GUEST:-./testguest.elf}
d=$(mktemp -d /tmp/snapvm-demo.XXXXXX)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$d"' EXIT
say() { printf '\n== %s\n' "$*"; }
wait_line() {	# FILE PATTERN: up to 60 s
	i=0
	until grep -q "$2" "$1" 2>/dev/null || [ $i -ge 600 ]; do
		sleep 0.1; i=$((i + 1))
	done
}

say "boot the test guest: 1 GiB, 2 vCPUs, writing 64 MiB of pattern it checks"
echo "\$ snapvm run --kernel testguest.elf --mem 1G --cpus 2 --control vm.sock --cmdline 'touch=64 rate=2000' &"
"$SNAPVM" run --kernel "$GUEST" --mem 1G --cpus 2 --control "$d/vm.sock" \
	--cmdline "touch=64 rate=2000" </dev/null >"$d/vm.out" 2>&1 &
pid=$!
wait_line "$d/vm.out" "^tick 10$"
grep "^snapfs-guest ready" "$d/vm.out"

say "snapshot it while it runs, then a diff a second later"
echo "\$ snapvm ctl vm.sock snapshot base"
"$SNAPVM" ctl "$d/vm.sock" snapshot "$d/base"
sleep 1
echo "\$ snapvm ctl vm.sock snapshot step2 --parent base"
"$SNAPVM" ctl "$d/vm.sock" snapshot "$d/step2" --parent "$d/base"
sleep 0.5
echo "the VM goes on: $(grep '^tick' "$d/vm.out" | tail -1)"
"$SNAPVM" ctl "$d/vm.sock" quit >/dev/null
wait "$pid"; pid=
echo "\$ ls -ls base step2   (memory.bin is sparse: blocks are what it holds)"
ls -ls "$d/base" "$d/step2"
echo "\$ snapctl inspect step2"
"$SNAPCTL" inspect "$d/step2" | head -20

say "restore step2 in a new process: no boot, the ticks go on"
echo "\$ snapvm restore step2"
"$SNAPVM" restore "$d/step2" </dev/null >"$d/r.out" 2>&1 &
pid=$!
wait_line "$d/r.out" "^tick "
sleep 6
kill "$pid"; wait "$pid" 2>/dev/null; pid=
echo "first line after the restore: $(head -1 "$d/r.out")"
grep "snapfs-guest pass" "$d/r.out" | tail -2
if grep -q "MISMATCH\|FAULT" "$d/r.out"; then
	echo "the guest found a difference:"; grep "MISMATCH\|FAULT" "$d/r.out" | head
	exit 1
fi
echo "the guest checked its memory and registers after the restore: no mismatch"
