#!/bin/sh
# make demo, the real guest: a user's day with snapfs. Mount a store, boot
# the test guest with its RAM in the mount, snapshot it while it runs,
# browse and inspect the snapshot, clone it with cp -r, restore the clone
# (its ticks go on), take a diff snapshot, and show what each step took.
# Runs where a KVM is: called by demo.sh on this machine, or inside the
# rig (tests/rig/rig.sh), with its programs in the current directory or
# named by SNAPVM, SNAPCTL, SNAPFS and GUEST. Everything lives in a
# temporary directory; the daemon and the VMs are stopped by their pids
# and the mount removed, even on failure.
set -u
SNAPVM=${SNAPVM:-./snapvm} SNAPCTL=${SNAPCTL:-./snapctl}
SNAPFS=${SNAPFS:-./snapfs} GUEST=${GUEST:-./testguest.elf}
# coreutils' cp (the rig carries one in .): busybox cp has no
# copy_file_range, so it would copy every byte instead of cloning.
CP=${CP:-cp}
[ -x ./cp ] && CP=./cp
d=$(mktemp -d /tmp/snapfs-day.XXXXXX)
M=$d/snaps
pid= fspid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	if [ -n "$fspid" ]; then
		kill "$fspid" 2>/dev/null; wait "$fspid" 2>/dev/null
	fi
	grep -q " $M fuse" /proc/mounts &&
		{ fusermount3 -u "$M" 2>/dev/null || umount -l "$M"; }
	rm -rf "$d"
}
trap cleanup EXIT INT TERM
say() { printf '\n== %s\n' "$*"; }
# Milliseconds since boot, to 10 ms (busybox's date has no %N).
now() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
t0=0
begin() { printf '$ %s\n' "$*"; t0=$(now); }
took() {	# NAME: one row of the table
	printf '%-46s %8s ms\n' "$1" "$(( $(now) - t0 ))" >>"$d/table"
}
wait_line() {	# FILE PATTERN [COUNT]: up to 120 s
	i=0
	until [ "$(grep -c "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ] || [ $i -ge 1200 ]; do
		sleep 0.1; i=$((i + 1))
	done
}
last_tick() { sed -n 's/^tick \([0-9]*\)$/\1/p' "$1" | tail -1; }
fail() { echo "demo: $*" >&2; exit 1; }

say "mount a store"
"$SNAPCTL" store init "$d/store"
mkdir "$M"
begin "snapfs store $M"
"$SNAPFS" "$d/store" "$M" -f 2>"$d/snapfs.err" & fspid=$!
i=0
until grep -q " $M fuse" /proc/mounts || [ $i -ge 100 ]; do sleep 0.05; i=$((i + 1)); done
took "mount the store"
grep -q " $M fuse" /proc/mounts || fail "snapfs did not mount"

say "boot the test guest with its RAM in the mount (256 MiB, 2 vCPUs)"
mkdir "$M/vm1"
begin "snapvm run --kernel testguest.elf --mem 256M --cpus 2 --mem-file snaps/vm1/memory.bin --control vm.sock &"
"$SNAPVM" run --kernel "$GUEST" --mem 256M --cpus 2 --mem-file "$M/vm1/memory.bin" \
	--control "$d/vm.sock" --cmdline "touch=16 rate=1000" </dev/null >"$d/vm.out" 2>&1 &
pid=$!
wait_line "$d/vm.out" "^tick 5$"
took "boot to tick 5, RAM in the mount"
grep "^snapfs-guest ready" "$d/vm.out" || fail "the guest did not boot"

say "snapshot it while it runs"
begin "snapvm ctl vm.sock snapshot snaps/monday"
"$SNAPVM" ctl "$d/vm.sock" snapshot "$M/monday" || fail "snapshot failed"
took "snapshot into the mount (full)"
saved=$(last_tick "$d/vm.out")
echo "the guest goes on: tick $saved when the save returned"

say "browse and inspect"
begin "ls -l snaps snaps/monday"
ls -l "$M" "$M/monday"
took "ls -l"
begin "snapctl inspect snaps/monday"
"$SNAPCTL" inspect "$M/monday" | head -12
took "snapctl inspect"

say "clone it with cp -r (memory.bin's chunks are shared, not copied)"
begin "cp -r snaps/monday snaps/clone1"
"$CP" -r "$M/monday" "$M/clone1" || fail "cp -r failed"
took "cp -r clone of a 256 MiB snapshot"
ls -l "$M/clone1"

say "a diff snapshot a little later"
wait_line "$d/vm.out" "^tick " $((saved + 10))
begin "snapvm ctl vm.sock snapshot snaps/tuesday --parent snaps/monday"
"$SNAPVM" ctl "$d/vm.sock" snapshot "$M/tuesday" --parent "$M/monday" ||
	fail "diff snapshot failed"
took "diff snapshot into the mount"
"$SNAPVM" ctl "$d/vm.sock" quit >/dev/null
wait "$pid"; pid=

say "restore the clone straight from the mount: no boot, the ticks go on"
begin "snapvm restore snaps/clone1"
"$SNAPVM" restore "$M/clone1" </dev/null >"$d/r.out" 2>&1 &
pid=$!
wait_line "$d/r.out" "^tick "
took "restore from the mount to its next tick"
wait_line "$d/r.out" "^snapfs-guest pass .* cpu=1 " 1
kill "$pid"; wait "$pid" 2>/dev/null; pid=
echo "saved around tick $saved; first line after the restore: $(head -1 "$d/r.out")"
grep "snapfs-guest pass" "$d/r.out" | tail -2
if grep -q "MISMATCH\|FAULT" "$d/r.out"; then
	echo "the guest found a difference:"; grep "MISMATCH\|FAULT" "$d/r.out" | head
	exit 1
fi
echo "the guest checked its memory and registers after the restore: no mismatch"

say "what the store holds"
kill "$fspid"; wait "$fspid" 2>/dev/null; fspid=
"$SNAPCTL" store ls "$d/store"
"$SNAPCTL" store stats "$d/store" | grep -E "logical|stored|dedup|overall"
[ -s "$d/snapfs.err" ] && { echo "snapfs said:"; cat "$d/snapfs.err"; }

say "what each step of the day took"
cat "$d/table"
