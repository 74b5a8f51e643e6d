#!/bin/sh
# A store in Ceph RADOS, served to two "hosts" (two snapfs daemons, two
# mount points) by a throwaway single-node cluster this script starts
# (tests/lib/ceph.sh) and stops by its pids: the metadata contract over
# RADOS (test_meta) and two opens of one store (test_store_hosts), a
# snapshot imported and cloned with cp -r through host A read byte for
# byte through host B (through B's local chunk cache, which stays within
# its bound), a snapshot made on A listed by B at once; a third host C
# writing beside A, one writer per image (EBUSY while A holds an image's
# changes, C's own files free, C takes up A's change once A closed, and
# B reads it at its next open), gc
# refused beside two writers; gc by A's daemon beside reader B, B still
# reading what A removed, freed once B is gone; verify clean after; then a host killed -9 (what it fsync'ed is there for the next
# daemon, once its locks' lease ran out), and the OSD stopped under a
# reading mount (EIO within the bound, the daemon lives on, the read
# works again once the OSD is back). Prints TAP.
#
# Needs $BUILD/snapfs, $BUILD/snapctl, $BUILD/tests/mksnap and
# $BUILD/tests/test_meta, $BUILD/tests/test_store_hosts, /dev/fuse and the Ceph packages (skipped loudly
# without them). Run from the top of the tree.
# shellcheck disable=SC2015	# "A && B || fail" is meant
set -u
BUILD=${BUILD:-build}
SNAPFS=$BUILD/snapfs
SNAPCTL=$BUILD/snapctl

. tests/lib/tap.sh
. tests/lib/ceph.sh
. tests/lib/mount.sh
fuse_setup snapfs-rados
why=$(ceph_have) || skip_rest "RADOS tests" "$why: RADOS tests not run"
need_built "$SNAPFS" "$SNAPCTL" "$BUILD/tests/mksnap" "$BUILD/tests/test_meta" \
	"$BUILD/tests/test_store_hosts"
err=$work/case.log
# The cluster goes after the daemons that use it, before $work.
cleanup_more() { ceph_stop; }

# Mount the store on $1 (more options follow): the daemon's pid in
# $lastpid, its stderr in $lasterr.
mount_at() {
	mkdir -p "$1"
	mount_snapfs_at "$@"
}

t0=$(date +%s.%N)
if ! ceph_start "$work/ceph" >"$err" 2>&1; then
	not_ok "a single-node cluster starts"
	tap_end
fi
ok "a single-node cluster starts ($(awk -v a="$t0" -v b="$(date +%s.%N)" \
	'BEGIN { printf "%.1f", b - a }') s)"
STORE=rados:$CEPH_POOL/hosts$$	# unique: mounts are found by this name

# Cmocka program $1 over this cluster: $2 cases pass, none fails ($3 says
# what they check).
cmocka_over_rados() {
	tap=$work/$1.tap cases=$2
	SNAP_TEST_RADOS_POOL=$CEPH_POOL CMOCKA_MESSAGE_OUTPUT=TAP \
		"$BUILD/tests/$1" >"$tap" 2>&1
	rc=$?
	cp "$tap" "$err"
	check "$1: $3: $2 cases pass" \
		'[ "$rc" -eq 0 ] && [ "$(grep -c "^ok" "$tap")" -eq "$cases" ] &&
		 ! grep -q "^not ok" "$tap"'
}
cmocka_over_rados test_meta 15 "the metadata's contract over RADOS, as over a directory"
cmocka_over_rados test_store_hosts 4 \
	"two opens as two hosts: one writer per image, refresh, gc beside a reader"

"$BUILD/tests/mksnap" "$work/snap" --mem $((32 << 20)) >/dev/null 2>&1
check "store init and import into $STORE" \
	'"$SNAPCTL" store init "$STORE" >"$err" 2>&1 &&
	 "$SNAPCTL" import "$work/snap" "$STORE" s1 >>"$err" 2>&1'

mount_at "$MNT" >"$err" 2>&1 && a=$lastpid aerr=$lasterr
check "host A mounts the store read-write" '[ -n "${a:-}" ]'
CACHE_B=1048576	# B's chunk cache: 1 MiB, less than what B reads
mount_at "$MNT2" -o "ro,cache_size=1M,chunk_cache=$work/cacheB,chunk_cache_size=$CACHE_B" \
	>"$err" 2>&1 && b=$lastpid berr=$lasterr
check "host B mounts it read-only beside A, with a local chunk cache" \
	'[ -n "${b:-}" ]'

check "A clones s1 with cp -r" 'cp -r "$MNT/s1" "$MNT/s2" 2>"$err"'
dd if=/dev/urandom of="$work/s2.part" bs=4096 count=16 2>/dev/null
dd if="$work/s2.part" of="$MNT/s2/memory.bin" bs=4096 seek=100 \
	conv=notrunc,fsync 2>/dev/null
check "B reads A's clone byte for byte, and s1 as imported" \
	'cmp "$MNT/s2/memory.bin" "$MNT2/s2/memory.bin" 2>"$err" &&
	 cmp "$work/snap/memory.bin" "$MNT2/s1/memory.bin" 2>>"$err" &&
	 cmp "$work/snap/state.bin" "$MNT2/s2/state.bin" 2>>"$err"'
# What B read went through its cache tier: copies kept, within the bound.
cached=$(find "$work/cacheB" -path "$work/cacheB/tmp" -prune -o -type f \
	-printf '%s\n' |
	awk '{ n++; b += $1 } END { print n + 0, b + 0 }')
check "B's chunk cache holds copies (${cached% *}, ${cached#* } bytes), within $CACHE_B" \
	'[ "${cached% *}" -gt 0 ] && [ "${cached#* }" -le "$CACHE_B" ]'
mkdir "$MNT/s3" && cp "$work/snap/manifest.bin" "$MNT/s3/" 2>"$err"
check "a snapshot A makes is in B's listing at once" \
	'[ "$(ls "$MNT2" | tr "\n" " ")" = "s1 s2 s3 " ]'

# s4: a file of A's own bytes, which B reads whole.
mkdir "$MNT/s4" && dd if=/dev/urandom of="$work/s4.bin" bs=1M count=4 \
	2>/dev/null && cp "$work/s4.bin" "$MNT/s4/memory.bin" &&
	sync "$MNT/s4/memory.bin"
check "B reads a file A wrote in a new snapshot, byte for byte" \
	'cmp "$work/s4.bin" "$MNT2/s4/memory.bin" >"$err" 2>&1'
exec 7<"$MNT2/s4/memory.bin"	# B holds it open (nothing cached)

# A third host mounts read-write beside A: one writer per image.
MNT3=$work/mnt3
mount_at "$MNT3" >"$err" 2>&1 && c=$lastpid cerr=$lasterr
check "host C mounts the store read-write beside A" '[ -n "${c:-}" ]'
# A writes a page of s2's memory.bin and keeps the file open (dd reads
# the page from a fifo, then waits for more): A holds s2's image.
dd if=/dev/urandom of="$work/a.part" bs=4096 count=1 2>/dev/null
mkfifo "$work/fifo"
dd if="$work/fifo" of="$MNT/s2/memory.bin" bs=4096 seek=300 conv=notrunc \
	2>/dev/null &
ddpid=$!
exec 6>"$work/fifo"
cat "$work/a.part" >&6
t0=$(date +%s)
until dd if="$MNT/s2/memory.bin" bs=4096 skip=300 count=1 2>/dev/null |
      cmp -s - "$work/a.part"; do
	[ $(($(date +%s) - t0)) -lt 10 ] || break
	sleep 0.1
done
dd if=/dev/zero of="$MNT3/s2/memory.bin" bs=4096 seek=301 count=1 \
	conv=notrunc >"$work/dd.err" 2>&1
rc=$?
cp "$work/dd.err" "$err"
check "C's write to the image A is writing fails with EBUSY" \
	'[ "$rc" -ne 0 ] && grep -q "Device or resource busy" "$work/dd.err"'
cp "$cerr" "$err"
check "and C's daemon says in one line that another host writes it" \
	'[ "$(grep -c "being written by another host" "$cerr")" -eq 1 ]'
check "C writes a file of its own meanwhile, and A reads it" \
	'cp "$work/snap/state.bin" "$MNT3/s3/c.bin" 2>"$err" &&
	 cmp "$work/snap/state.bin" "$MNT/s3/c.bin" >"$err" 2>&1'
exec 6>&-	# dd ends: A's close stores the page and lets go
wait "$ddpid"
check "once A closed it, C writes that image and reads A's change in it" \
	'dd if=/dev/zero of="$MNT3/s2/memory.bin" bs=4096 seek=301 count=1 \
	    conv=notrunc,fsync 2>"$err" &&
	 dd if="$MNT3/s2/memory.bin" bs=4096 skip=300 count=1 2>/dev/null |
	 cmp - "$work/a.part" >"$err" 2>&1'
check "B, read-only, reads A's closed change at its next open" \
	'dd if="$MNT2/s2/memory.bin" bs=4096 skip=300 count=1 2>/dev/null |
	 cmp - "$work/a.part" >"$err" 2>&1'
"$SNAPCTL" store gc "$STORE" >"$err" 2>&1
rc=$?
check "gc with two writers mounted is refused in one line, status 1" \
	'[ "$rc" -eq 1 ] && [ "$(wc -l <"$err")" -eq 1 ] &&
	 grep -q "open for writing" "$err"'
umount_snapfs_at "$MNT3" "$c" "$cerr" >"$err" 2>&1
check "C unmounts cleanly" '[ $? -eq 0 ]'

# gc beside a reader: B holds s4's file open, as of its open; A
# rewrites it and removes s4, and A's daemon collects while B is
# mounted. B still reads the file as it was, its chunks from the
# cluster (B's caches hold 1 MiB each of its 4).
dd if=/dev/urandom of="$MNT/s4/memory.bin" bs=1M count=4 conv=notrunc,fsync \
	2>"$err"
rm -r "$MNT/s4"
"$SNAPCTL" store gc "$STORE" >"$err" 2>&1
rc=$?
check "gc with reader B mounted is done by A's daemon" \
	'[ "$rc" -eq 0 ] && grep -q "by the snapfs mounted at $MNT" "$err"'
echo 1 >/proc/sys/vm/drop_caches	# B's page cache: snapfs reads it all
check "and B reads the file A rewrote and removed as it was at B's open" \
	'cmp "$work/s4.bin" - <&7 >"$err" 2>&1'
exec 7<&-
umount_snapfs_at "$MNT2" "$b" "$berr" >"$err" 2>&1
check "B unmounts cleanly" '[ $? -eq 0 ]'
"$SNAPCTL" store gc "$STORE" >"$err" 2>&1
rc=$?
freed=$(grep -o "freed [0-9]* chunks" "$err" | grep -o "[0-9]*")
check "with B gone, gc frees what only B held (${freed:-no} chunks)" \
	'[ "$rc" -eq 0 ] && [ "${freed:-0}" -ge 64 ]'
umount_snapfs_at "$MNT" "$a" "$aerr" >"$err" 2>&1
check "A unmounts cleanly" '[ $? -eq 0 ]'
"$SNAPCTL" store gc "$STORE" >"$err" 2>&1
check "gc runs once nothing has the store open" '[ $? -eq 0 ]'
"$SNAPCTL" store verify "$STORE" >"$err" 2>&1
check "the store verifies, every chunk read back" '[ $? -eq 0 ]'
"$SNAPCTL" export "$STORE" s2 "$work/out" >"$err" 2>&1
check "an export of s2 holds the bytes written through A" \
	'dd if="$work/out/memory.bin" bs=4096 skip=100 count=16 2>/dev/null |
	 cmp - "$work/s2.part" >"$err" 2>&1'


# ---- a dead host, and an OSD that goes away while a mount reads --------

# Host A writes and fsyncs, then dies (kill -9): its locks' lease runs
# out (SNAP_RADOS_LEASE_S=3 here, 30 s by default), and a new daemon
# finds every byte A fsync'ed.
export SNAP_RADOS_LEASE_S=3
mount_at "$MNT" >"$err" 2>&1 && a=$lastpid
dd if=/dev/urandom of="$work/dead.part" bs=65536 count=8 2>/dev/null
dd if="$work/dead.part" of="$MNT/s3/fsynced" bs=65536 conv=fsync \
	2>"$err"
kill -KILL "$a"
wait "$a" 2>/dev/null
forget_pid "$a"
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
t0=$(date +%s)
until mount_at "$MNT" >"$err" 2>&1; do
	[ $(($(date +%s) - t0)) -lt 20 ] || break
	sleep 1
done
a=$lastpid aerr=$lasterr
check "after kill -9 of host A, a new daemon mounts once the lease ran out" \
	'is_mounted "$MNT"'
check "and every byte A fsync'ed is there" \
	'cmp "$work/dead.part" "$MNT/s3/fsynced" >"$err" 2>&1'
umount_snapfs_at "$MNT" "$a" "$aerr" >"$err" 2>&1
check "that daemon unmounts cleanly" '[ $? -eq 0 ]'

# The OSD stops while a mount (nothing read yet, a small chunk cache)
# reads: a read that needs it fails with EIO within the bound, the daemon
# lives on, and once the OSD is back the same read returns the bytes.
mount_at "$MNT" -o ro,cache_size=1M >"$err" 2>&1 && a=$lastpid aerr=$lasterr
exec 5<"$MNT/s1/memory.bin"	# opened: the reads below need chunks only
ceph_osd_stop 2>"$err"
t0=$(date +%s)
dd of=/dev/null bs=1M count=4 <&5 >"$work/dd.err" 2>&1
rc=$? took=$(($(date +%s) - t0))
exec 5<&-
cp "$work/dd.err" "$err"
check "with the OSD down, a read of an open file fails: EIO in ${took} s" \
	'[ "$rc" -ne 0 ] && grep -q "Input/output error" "$work/dd.err" &&
	 [ "$took" -le 40 ]'
dd if="$MNT/s2/memory.bin" of=/dev/null bs=1M count=1 >"$work/dd.err" 2>&1
rc=$?
cp "$work/dd.err" "$err"
check "and an open that needs the cluster fails with EIO too" \
	'[ "$rc" -ne 0 ] && grep -q "Input/output error" "$work/dd.err"'
check "and the daemon carries on" 'alive "$a" && is_mounted "$MNT"'
ceph_osd_start 2>"$err"
check "with the OSD back, the same read returns the imported bytes" \
	'cmp -n $((4 << 20)) "$MNT/s1/memory.bin" "$work/snap/memory.bin" \
	 >"$err" 2>&1'
umount_snapfs_at "$MNT" "$a" "$aerr" >"$err" 2>&1
check "the daemon unmounts cleanly after it all" '[ $? -eq 0 ]'

tap_end
