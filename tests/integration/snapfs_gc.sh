#!/bin/sh
# Garbage collection while mounted, on real FUSE mounts: the daemon's
# background gc keeps the store near what its files hold while they are
# rewritten (through write(2) and through a shared mapping), gc on request
# (setfattr user.snapfs.gc on the root) and by `snapctl store gc` of the
# mounted store; a gc beside another process's open refused in one line;
# files being created while gc runs survive it; a daemon killed -9 while
# it collects loses nothing fsync'ed and leaves a store that verifies.
# Prints TAP.
#
# Needs $BUILD/snapfs and $BUILD/snapctl (BUILD defaults to build),
# /dev/fuse and fusermount3 (skipped without them), getfattr, setfattr
# and python3; builds nothing. Run from the top of the tree. Every daemon
# runs with -f in the background, is stopped by its pid and its mount
# cleaned up on exit, even when a check fails. With a sanitizer build a
# daemon's stderr must carry no report.
# shellcheck disable=SC2015	# "A && B || fail" is meant
set -u
BUILD=${BUILD:-build}
SNAPFS=$BUILD/snapfs
SNAPCTL=$BUILD/snapctl
MIB=1048576

. tests/lib/tap.sh
. tests/lib/mount.sh
fuse_setup snapfs-gc
need_built "$SNAPFS" "$SNAPCTL" getfattr setfattr python3
err=$work/case.log	# what not_ok shows under a failed case

# Bytes of the store's chunk files.
chunk_bytes() { du -sb --apparent-size "$STORE/chunks" | cut -f1; }

gc_said() { getfattr --absolute-names --only-values -n user.snapfs.gc "$MNT"; }

# Wait up to $1 seconds for the root's user.snapfs.gc to start with $2.
wait_gc() {
	i=0
	while [ "$i" -lt $(($1 * 10)) ]; do
		case $(gc_said) in "$2"*) return 0 ;; esac
		sleep 0.1
		i=$((i + 1))
	done
	echo "user.snapfs.gc after $1 s: $(gc_said)"
	return 1
}

# ---- cases -------------------------------------------------------------------

PY=$(python3 -c "import sys; print(sys.executable)") || PY=python3
mkdir "$MNT" "$MNT2" || exit 1
"$SNAPCTL" store init "$STORE" >/dev/null || exit 1

# 1. Rewrites through write(2): the background gc (floor 16 MiB) frees
#    the old chunks while the daemon serves.
mount_snapfs -o gc_bytes=16M >"$err" 2>&1 &&
mkdir "$MNT/w" &&
dd if=/dev/urandom of="$MNT/w/f" bs=1M count=32 conv=fsync 2>>"$err" &&
for k in 1 2 3 4; do
	dd if=/dev/urandom of="$MNT/w/f" bs=1M count=32 conv=notrunc,fsync 2>>"$err" || break
done &&
sha_w=$(sha256sum <"$MNT/w/f") &&
wait_gc 20 "background: freed" >>"$err" 2>&1 &&
setfattr -n user.snapfs.gc -v now "$MNT" 2>>"$err" &&
b=$(chunk_bytes) &&
echo "# stored $b bytes for a 32 MiB file" | tee -a "$err" &&
[ "$b" -le $((32 * MIB * 3 / 2)) ]
rc=$?
check "background gc while serving: 5 x 32 MiB written, the store holds <= 1.5x the file" '[ $rc -eq 0 ]'

# 2. The request, and what it says.
: >"$err"
case $(gc_said) in
"asked: freed "*" kept "*) ok "setfattr user.snapfs.gc runs one; getfattr says what it freed and kept" ;;
*) echo "user.snapfs.gc: $(gc_said)" >"$err"; not_ok "setfattr user.snapfs.gc runs one; getfattr says what it freed and kept" ;;
esac

# 3. snapctl store gc of the mounted store asks the daemon.
"$SNAPCTL" store gc "$STORE" >"$err" 2>&1
rc=$?
check "snapctl store gc of a mounted store: done by the daemon, status 0" \
	'[ $rc -eq 0 ] && grep -q "by the snapfs mounted at $MNT: asked: freed" "$err"'

# 4. A shared mapping rewritten at random while the background gc runs:
#    the file holds exactly what was written, and the store stays bounded.
: >"$err"
"$PY" - "$MNT/w/m" "$work/m.sha" >>"$err" 2>&1 <<'PY' &
import hashlib, mmap, os, random, sys, time
size = 32 << 20
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(fd, size)
m = mmap.mmap(fd, size, mmap.MAP_SHARED)
model = bytearray(size)
r = random.Random(7)
end = time.time() + 8
while time.time() < end:
    for _ in range(256):
        p = r.randrange(size // 4096) * 4096
        b = os.urandom(4096)
        m[p:p + 4096] = b
        model[p:p + 4096] = b
    m.flush()
m.flush()
m.close()
os.fsync(fd)
os.close(fd)
open(sys.argv[2], "w").write(hashlib.sha256(model).hexdigest() + "\n")
PY
PY_PID=$!
wait "$PY_PID"
prc=$?
setfattr -n user.snapfs.gc -v now "$MNT" 2>>"$err"
got=$(sha256sum <"$MNT/w/m" | cut -d' ' -f1)
b=$(chunk_bytes)
echo "# mmap writer status $prc; stored $b bytes for 64 MiB of files; gc: $(gc_said)" | tee -a "$err"
check "a shared mapping rewritten for 8 s beside gc: every byte as written, the store <= 1.5x its files" \
	'[ $prc -eq 0 ] && [ "$got" = "$(cat "$work/m.sha")" ] && [ "$b" -le $((64 * MIB * 3 / 2)) ]'

# 5. Files created while gc runs in a loop survive it.
: >"$err"
( i=0; while [ "$i" -lt 40 ]; do setfattr -n user.snapfs.gc -v now "$MNT" 2>/dev/null; i=$((i + 1)); done ) &
gcl=$!
mkdir "$MNT/c" && i=0 && while [ "$i" -lt 60 ]; do
	head -c 70000 /dev/urandom >"$work/src.$i" && cp "$work/src.$i" "$MNT/c/f$i" || break
	i=$((i + 1))
done
wait "$gcl"
setfattr -n user.snapfs.gc -v now "$MNT" 2>>"$err"
bad=0 i=0
while [ "$i" -lt 60 ]; do
	cmp -s "$work/src.$i" "$MNT/c/f$i" || { bad=$((bad + 1)); echo "f$i differs or is gone" >>"$err"; }
	i=$((i + 1))
done
check "60 files created and written while gc runs in a loop: all there, all intact" '[ "$bad" -eq 0 ]'

# 6. Another process has the store open: gc refused, said in one line.
: >"$err"
mount_snapfs_at "$MNT2" -o ro >>"$err" 2>&1 && ropid=$lastpid && roerr=$lasterr
setfattr -n user.snapfs.gc -v now "$MNT" 2>>"$err"
src=$?
"$SNAPCTL" store gc "$STORE" >>"$err" 2>&1
crc=$?
check "gc beside another process's open: refused, and snapctl says so in one line" \
	'[ $src -ne 0 ] && [ $crc -eq 1 ] && grep -q "another process has the store open" "$err" && [ "$(grep -c "snapctl" "$err")" -eq 1 ]'
umount_snapfs_at "$MNT2" "$ropid" "$roerr" >>"$err"

# 7. kill -9 while writing and collecting: fsync'ed bytes there, clean.
: >"$err"
"$PY" - "$MNT/w/k" "$work/k.sha" "$work/k.done" >>"$err" 2>&1 <<'PY' &
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
h = hashlib.sha256()
for i in range(100000):
    b = os.urandom(65536 + 4096 * (i % 7))
    os.write(fd, b)
    os.fsync(fd)
    h.update(b)
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d %s\n" % (os.lseek(fd, 0, os.SEEK_CUR), h.hexdigest()))
    os.rename(sys.argv[2] + ".tmp", sys.argv[2])
PY
kpid=$!
( while :; do setfattr -n user.snapfs.gc -v now "$MNT" 2>/dev/null; sleep 0.05; done ) &
gcl=$!
sleep 3
[ -n "$pid" ] && kill -KILL "$pid"
kill "$gcl" 2>/dev/null
wait "$kpid" 2>/dev/null
wait "$gcl" 2>/dev/null
wait "$pid" 2>/dev/null
forget_pid "$pid"
pid=
fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null
read -r len want <"$work/k.sha"
"$SNAPCTL" store verify "$STORE" >>"$err" 2>&1
vrc=$?
mount_snapfs >>"$err" 2>&1 &&
got=$(head -c "$len" "$MNT/w/k" | sha256sum | cut -d' ' -f1)
echo "fsync'ed $len bytes; after the remount their sha256 $got, want $want" >>"$err"
check "daemon killed -9 while collecting: the store verifies, every fsync'ed byte is there" \
	'[ $vrc -eq 0 ] && [ "$got" = "$want" ] && [ "$(sha256sum <"$MNT/w/f")" = "$sha_w" ]'

umount_snapfs >"$err" 2>&1
rc=$?
check "unmount: the daemon exits 0 with no sanitizer report" '[ $rc -eq 0 ]'
"$SNAPCTL" store verify "$STORE" >"$err" 2>&1
rc=$?
check "the store verifies after all of it" '[ $rc -eq 0 ]'
tap_end
