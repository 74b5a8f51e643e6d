#!/bin/sh
# A file's three times on a real FUSE mount, as pjdfstest checks them
# (link/00, unlink/00, rename/23, utimensat/00 to 09): creation sets all
# three; utimensat sets atime and mtime as asked (UTIME_NOW and UTIME_OMIT
# for each alone) and ctime to now, never to the time given; write and
# truncate move mtime and ctime; reads leave atime (snapfs is noatime);
# link, unlink of another name, rename, and a rename replacing a file
# that keeps another name move the ctime of the file they touch; a chmod
# to the same mode moves ctime, as on ext4; a failing truncate moves
# nothing; every time survives an unmount and a remount.
# Prints TAP.
#
# Needs $BUILD/snapfs and $BUILD/snapctl (BUILD defaults to build),
# /dev/fuse and fusermount3 (skipped without them), python3 and coreutils
# touch; builds nothing. Run from the top of the tree. The daemon runs
# with -f in the background, is stopped by its pid and its mount cleaned
# up on exit, even when a check fails. With a sanitizer build its stderr
# must carry no report.
# shellcheck disable=SC2015	# "A && B || fail" is meant
set -u
BUILD=${BUILD:-build}
SNAPFS=$BUILD/snapfs
SNAPCTL=$BUILD/snapctl

. tests/lib/tap.sh
. tests/lib/mount.sh
fuse_setup snapfs-times
need_built "$SNAPFS" "$SNAPCTL" python3 touch
err=$work/case.log	# what not_ok shows under a failed case

# The checks, one python function per case: each prints what it found
# and exits 1 when a time is not what a local filesystem would show.
cat >"$work/times.py" <<'PY'
import os, subprocess, sys, time

d = sys.argv[2]

def times(path):
    st = os.stat(path)
    return st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns

def fail(what, *args):
    print(what % args)
    sys.exit(1)

def moved(what, before, path):
    """path's ctime moved past before's, and is not in the future."""
    c = times(path)[2]
    if not before[2] < c <= time.time_ns():
        fail("%s: ctime %d, before %d, now %d", what, c, before[2],
             time.time_ns())

def run(*argv):
    subprocess.run(argv, check=True)

def create():
    t0 = time.time_ns()
    open(d + "/new", "w").close()
    a, m, c = times(d + "/new")
    if not (a == m == c and t0 <= c <= time.time_ns()):
        fail("a new file: atime %d mtime %d ctime %d, created after %d",
             a, m, c, t0)

def utimens():
    f = d + "/u"
    open(f, "w").close()
    was = times(f)
    t0 = time.time_ns()
    os.utime(f, ns=(1234567890123456789, 1111111111222222222))
    a, m, c = times(f)
    if (a, m) != (1234567890123456789, 1111111111222222222):
        fail("utimensat: atime %d mtime %d, not as set", a, m)
    if c == m or not (t0 <= c <= time.time_ns()) or c <= was[2]:
        fail("utimensat: ctime %d: not now (%d..), the mtime given or "
             "before %d", c, t0, was[2])
    # UTIME_NOW for both
    t0 = time.time_ns()
    os.utime(f)
    a, m, c = times(f)
    if not (t0 <= a == m <= c <= time.time_ns()):
        fail("utimensat(NULL): atime %d mtime %d ctime %d, now %d..", a, m,
             c, t0)

def omit():
    f = d + "/o"
    open(f, "w").close()
    os.utime(f, ns=(1000000000000000001, 1000000000000000002))
    # touch -a and -m set one time, UTIME_OMIT the other
    was = times(f)
    run("touch", "-a", "-d", "@1500000000.000000003", f)
    a, m, c = times(f)
    if (a, m) != (1500000000000000003, was[1]):
        fail("touch -a -d: atime %d mtime %d, expected %d %d", a, m,
             1500000000000000003, was[1])
    moved("touch -a -d", was, f)
    was = times(f)
    run("touch", "-m", "-d", "@1600000000.000000004", f)
    a, m, c = times(f)
    if (a, m) != (was[0], 1600000000000000004):
        fail("touch -m -d: atime %d mtime %d, expected %d %d", a, m, was[0],
             1600000000000000004)
    moved("touch -m -d", was, f)
    # UTIME_NOW for atime alone
    was = times(f)
    t0 = time.time_ns()
    run("touch", "-a", f)
    a, m, c = times(f)
    if m != was[1] or not t0 <= a <= c:
        fail("touch -a: atime %d mtime %d ctime %d; mtime was %d, now %d..",
             a, m, c, was[1], t0)

def noatime():
    f = d + "/r"
    with open(f, "w") as w:
        w.write("x" * 100000)
    os.utime(f, ns=(1000000000000000007, 1000000000000000008))
    was = times(f)
    with open(f, "rb", buffering=0) as r:
        r.read()
    time.sleep(1.2)	# what the kernel cached of the attributes expires
    if times(f) != was:
        fail("a read: times %s, before %s", times(f), was)

def data():
    f = d + "/w"
    open(f, "w").close()
    os.utime(f, ns=(1000000000000000009, 1000000000000000010))
    was = times(f)
    with open(f, "r+b", buffering=0) as w:
        w.write(b"data")
    a, m, c = times(f)
    if a != was[0] or m <= was[1] or c != m:
        fail("a write: atime %d mtime %d ctime %d; before %s", a, m, c, was)
    was = times(f)
    os.truncate(f, 1)
    a, m, c = times(f)
    if a != was[0] or m <= was[1] or c <= was[2]:
        fail("a truncate: atime %d mtime %d ctime %d; before %s", a, m, c,
             was)

def names():
    f, g = d + "/n1", d + "/n2"
    open(f, "w").close()
    was = times(f)
    os.link(f, g)
    moved("link", was, f)
    was = times(f)
    os.unlink(g)
    moved("unlink of another name", was, f)
    was = times(f)
    os.rename(f, d + "/n3")
    moved("rename", was, d + "/n3")
    # a destination that keeps another name: its ctime moves too
    t, k = d + "/t", d + "/t.keep"
    open(t, "w").close()
    os.link(t, k)
    was = times(k)
    os.rename(d + "/n3", t)
    moved("rename over a file with another name", was, k)

def chmod_same():
    f = d + "/m"
    open(f, "w").close()
    was = times(f)
    os.chmod(f, os.stat(f).st_mode & 0o7777)
    moved("chmod to the same mode", was, f)
    a, m, c = times(f)
    if (a, m) != was[:2]:
        fail("chmod: atime %d mtime %d, before %s", a, m, was)

def failed_truncate():
    f = d + "/big"
    open(f, "w").close()
    os.utime(f, ns=(1000000000000000011, 1000000000000000012))
    was = times(f)
    try:
        os.truncate(f, 1 << 60)
        fail("a truncate to 2^60 bytes succeeded")
    except OSError:
        pass
    time.sleep(1.2)
    if times(f) != was:
        fail("a failed truncate: times %s, before %s", times(f), was)

def save():
    with open(sys.argv[3], "w") as out:
        for n in sorted(os.listdir(d)):
            print(n, *times(d + "/" + n), file=out)

def same():
    with open(sys.argv[3]) as saved:
        for line in saved:
            n, *t = line.split()
            if tuple(map(int, t)) != times(d + "/" + n):
                fail("%s: times %s after the remount, before %s", n,
                     times(d + "/" + n), t)

globals()[sys.argv[1]]()
PY

PY=$(python3 -c "import sys; print(sys.executable)") || PY=python3
mkdir "$MNT" || exit 1
"$SNAPCTL" store init "$STORE" >/dev/null || exit 1
if ! mount_snapfs >"$err" 2>&1 || ! mkdir "$MNT/s" 2>>"$err"; then
	not_ok "mount the store"
	tap_end
fi

CASES="
create		a new file: atime, mtime and ctime are its creation time
utimens		utimensat: atime and mtime as given, ctime now; NULL: all now
omit		touch -a / -m (UTIME_OMIT for the other), touch -a (UTIME_NOW)
noatime		a read leaves every time (noatime)
data		write: mtime and ctime; truncate: both, atime kept
names		link, unlink, rename move the file's ctime, and a replaced file's
chmod_same	chmod to the same mode moves ctime only, as on ext4
failed_truncate	a failing truncate moves no time
"
tab=$(printf '\t')
while IFS="$tab" read -r fn desc; do
	[ -n "$fn" ] || continue
	desc=$(echo "$desc" | sed 's/^[[:space:]]*//')
	check "$desc" '"$PY" "$work/times.py" "$fn" "$MNT/s" >"$err" 2>&1'
done <<EOF
$CASES
EOF

"$PY" "$work/times.py" save "$MNT/s" "$work/saved" >"$err" 2>&1 &&
umount_snapfs >>"$err" 2>&1 && mount_snapfs >>"$err" 2>&1 &&
"$PY" "$work/times.py" same "$MNT/s" "$work/saved" >>"$err" 2>&1
rc=$?
check "every file's three times survive an unmount and a remount" '[ $rc -eq 0 ]'

umount_snapfs >"$err" 2>&1
rc=$?
check "unmount: the daemon exits 0 with no sanitizer report" '[ $rc -eq 0 ]'
"$SNAPCTL" store verify "$STORE" >"$err" 2>&1
rc=$?
check "the store verifies" '[ $rc -eq 0 ]'
tap_end
