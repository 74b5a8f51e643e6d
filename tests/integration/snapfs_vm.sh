#!/bin/sh
# snapfs with a real guest: the test guest restored straight from the
# mount (its RAM mapped from memory.bin, page faults becoming reads of the
# chunks it touches) goes on from its saved tick; a live guest whose RAM
# file is in the mount is snapshotted twice into the mount and cloned with
# cp -r while it runs, and each snapshot (and the clone) restores to its
# own tick. Prints TAP.
#
# Runs where a KVM and FUSE are: here on a hardware KVM with /dev/fuse,
# otherwise inside the rig (tests/rig/rig.sh), which has both.
set -u
BUILD=${BUILD:-build}
GUEST=$BUILD/guest/testguest.elf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/lib/tap.sh
. tests/lib/where.sh

cat >"$tmp/snapfs_kvm.sh" <<'KVM'
. "$(dirname "$0")/kvm.sh"
GUEST=${GUEST:-./testguest.elf}
PATCHECK=${PATCHECK:-./patcheck}
SNAPCTL=${SNAPCTL:-./snapctl}
CP=${CP:-cp}
[ -x ./cp ] && CP=./cp	# coreutils' (copy_file_range), not busybox's
S=$T/vm.sock
M=$T/mnt
ctl() { r=$("$SNAPVM" ctl "$S" "$@"); crc=$?; }

# The daemon is ours: stopped by its pid, its mount gone, even on failure.
cleanup() { [ -n "$pid" ] && stop; fs_unmount; }
trap cleanup EXIT

# A restore that goes on from its snapshot: no boot, ticks from after
# SINCE and at most UNTIL + 2, every CPU's pass without a mismatch.
restored() {	# NAME SNAPSHOT CPUS SINCE UNTIL [restore options]
	name=$1 snap=$2 cpus=$3 since=$4 until=$5; shift 5
	start restore "$snap" "$@"
	ok=1
	wait_for "$T/out" '^tick ' 3 120 || ok=0
	for c in $(seq 0 $((cpus - 1))); do
		wait_for "$T/out" "^snapfs-guest pass .* cpu=$c .*mismatches=0" 1 60 || ok=0
	done
	ft=$(first_tick "$T/out")
	check "$name: goes on from tick $ft (saved between $since and $until), every CPU passes" \
		'[ $ok -eq 1 ] && [ "$ft" -gt "$since" ] && [ "$ft" -le $((until + 2)) ] && clean "$T/out"'
	stop
}

mkdir -p "$M"
"$SNAPCTL" store init "$T/store" >/dev/null
fs_mount "$T/store" "$M"
check "snapfs mounts the store" '[ $? -eq 0 ]'

# ---- a live VM whose RAM is a file in the mount ---------------------------
mkdir "$M/vm1"
start run --kernel "$GUEST" --mem 128M --cpus 2 --mem-file "$M/vm1/memory.bin" \
	--control "$S" --cmdline "touch=8 rate=1000"
wait_for "$T/out" "^snapfs-guest pass 1 " 2 180
wait_for "$T/out" '^tick ' 3 60
check "a guest runs with its RAM in the mount" \
	'kill -0 $pid && [ "$(stat -c %s "$M/vm1/memory.bin")" -eq 134217728 ]'
b1=$(last_tick "$T/out")
ctl snapshot "$M/s1"
a1=$(last_tick "$T/out")
res "# $r"
check "snapshot into the mount while running" \
	'[ $crc -eq 0 ] && "$SNAPCTL" verify "$M/s1" >/dev/null'
wait_for "$T/out" '^tick ' $((a1 + 5)) 60
b2=$(last_tick "$T/out")
ctl snapshot "$M/s2" --parent "$M/s1"
a2=$(last_tick "$T/out")
res "# $r"
check "a diff snapshot into the mount" \
	'[ $crc -eq 0 ] && echo "$r" | grep -q "kind=diff" && "$SNAPCTL" verify "$M/s2" >/dev/null'
"$CP" -r "$M/s1" "$M/c1"; cprc=$?
check "cp -r clone of s1 while the guest runs" \
	'[ $cprc -eq 0 ] && cmp -s "$M/s1/memory.bin" "$M/c1/memory.bin"'
wait_for "$T/out" '^tick ' $((a2 + 3)) 60
check "the guest kept running through both saves and the clone" \
	'kill -0 $pid && [ "$(last_tick "$T/out")" -gt "$a2" ] && sound "$T/out"'
ctl quit; wait "$pid"; pid=
"$PATCHECK" "$M/s1/memory.bin" 2 8 >"$T/pc" 2>&1; vrc=$?
check "s1's memory.bin, read through snapfs, holds the guest's pattern" '[ $vrc -eq 0 ]'
show "$T/pc"

# ---- restores straight from the mount ------------------------------------
restored "restore of s1 from the mount" "$M/s1" 2 "$b1" "$a1"
restored "restore of s2 (the diff) from the mount" "$M/s2" 2 "$b2" "$a2"
restored "restore of the clone c1" "$M/c1" 2 "$b1" "$a1"
res "# the store's unique chunks: $("$SNAPCTL" store stats "$T/store" 2>/dev/null |
	sed -n 's/^unique: *//p')"

# ---- the store behind it -------------------------------------------------
fs_unmount
check "snapfs exits 0 on SIGTERM" '[ "$fsrc" -eq 0 ]'
check "the daemon reported nothing" '[ ! -s "$T/fs.err" ]'
show "$T/fs.err"
"$SNAPCTL" store verify "$T/store" >"$T/v" 2>&1; vrc=$?
check "snapctl store verify: clean" '[ $vrc -eq 0 ]'
show "$T/v"
fs_mount "$T/store" "$M"
restored "after a remount, s2 still restores" "$M/s2" 2 "$b2" "$a2"
fs_unmount
res "# end"
KVM

need_built --skip "snapfs with a guest" "$BUILD/snapvm" "$BUILD/snapfs" \
	"$BUILD/snapctl" "$GUEST" "$BUILD/guest/patcheck"
kvm_or_rig --fuse --smp 2 --mem 2048 --timeout 900 --progs "$BUILD/snapfs cp" \
	"snapfs with a guest" "$tmp/snapfs_kvm.sh" "$tmp/kvm.log" \
	"$BUILD/guest/patcheck"
rig_results "$tmp/kvm.log"
tap_end
