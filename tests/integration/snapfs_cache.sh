#!/bin/sh
# snapfs and the page cache, on real FUSE mounts: the mount's read-ahead;
# a second open and concurrent readers served from the page cache; no
# stale page after a write, a truncate or a cp onto a file, also while a
# working set is being pushed; working sets recorded (user.snapfs.*
# attributes, STORE/images/<id>.ws), kept across a remount, carried by
# cp -r and ln, turned off and on; the push cutting READs; a corrupt
# chunk inside a working set; the daemon's memory bounded by cache_size
# while a push runs. Prints TAP.
#
# Needs $BUILD/snapfs, $BUILD/snapctl and $BUILD/tests/mksnap (BUILD
# defaults to build), /dev/fuse and fusermount3 (skipped without them),
# getfattr and setfattr, python3, and root for drop_caches; builds
# nothing. Run from the top of the tree. Every daemon runs with -f in the
# background, is stopped by its pid and its mount cleaned up on exit, even
# when a check fails. With a sanitizer build (BUILD=build/san) a daemon's
# stderr must carry no report.
# shellcheck disable=SC2015	# "A && B || fail" is meant
set -u
BUILD=${BUILD:-build}
SNAPFS=$BUILD/snapfs
SNAPCTL=$BUILD/snapctl
MKSNAP=$BUILD/tests/mksnap
MIB=1048576
MEM=$((64 * MIB))	# memory.bin of random bytes
TOUCH=48		# pages a reader touches
THINK=0.003		# seconds a reader works between two touches (a guest)

. tests/lib/tap.sh
. tests/lib/chunks.sh
. tests/lib/mount.sh
fuse_setup snapfs-cache
need_built "$SNAPFS" "$SNAPCTL" "$MKSNAP" getfattr setfattr python3
err=$work/case.log	# what not_ok shows under a failed case

# python3 itself, not a wrapper that takes a second to start
PY=$(python3 -c 'import sys; print(sys.executable)') || PY=python3

# A fresh mount (options "$@") on a cold page cache.
fresh() {
	umount_snapfs && mount_snapfs "$@" || return 1
	sync
	echo 3 >/proc/sys/vm/drop_caches ||
		{ echo "cannot drop the page cache (not root?)"; return 1; }
}

# ---- helpers -----------------------------------------------------------------

# user.snapfs.$2 of file $1.
xa() { getfattr --absolute-names --only-values -n "user.snapfs.$2" "$1"; }

# Set user.snapfs.workingset of $1 to $2, and it reads $3.
ws_set() {
	setfattr -n user.snapfs.workingset -v "$2" "$1" ||
		{ echo "setfattr workingset=$2 $1 failed"; return 1; }
	ws_is "$1" "$3"
}

ws_is() {
	got=$(xa "$1" workingset)
	[ "$got" = "$2" ] && return 0
	echo "$1: workingset '$got', expected '$2'"
	return 1
}

# Poll (RELEASE reaches the daemon after close) until the working set of
# $1 is recorded, for 5 s; "recorded N" in $ws.
wait_recorded() {
	i=0
	while ws=$(xa "$1" workingset); do
		case $ws in "recorded "*) return 0 ;; esac
		i=$((i + 1))
		[ "$i" -le 50 ] || break
		sleep 0.1
	done
	echo "$1: workingset '$ws' 5 s after its reader closed, expected 'recorded N'"
	return 1
}

# touch_pages PATH SEED COUNT NPROC THINK [random]: see TOUCH_PY.
touch_pages() { "$PY" -c "$TOUCH_PY" "$@"; }

# The chunk size of the store.
chunk_size() {
	"$SNAPCTL" store stats --json "$STORE" |
		"$PY" -c 'import json, sys; print(json.load(sys.stdin)["chunk_size"])'
}

ws_files() { find "$STORE/images" -name '*.ws' | wc -l; }

# PATH SEED COUNT NPROC THINK [random]: NPROC processes open PATH, map it
# MAP_PRIVATE read-only and, released at once, each reads the same COUNT
# random pages (chosen by SEED) in the same order, sleeping THINK seconds
# after each; prints the SHA-256 of the pages read (all agree).
# "random": madvise(MADV_RANDOM), so a fault reads its page alone.
TOUCH_PY='
import hashlib, mmap, os, random, sys, time
path, seed, count, nproc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
think = float(sys.argv[5])
rnd = len(sys.argv) > 6 and sys.argv[6] == "random"
size = os.stat(path).st_size
order = random.Random(seed).sample(range(size // 4096), count)
go_r, go_w = os.pipe()
kids = []
for _ in range(nproc):
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(go_w); os.close(rd)
        fd = os.open(path, os.O_RDONLY)
        m = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
        if rnd:
            m.madvise(mmap.MADV_RANDOM)
        os.read(go_r, 1)
        h = hashlib.sha256()
        for p in order:
            h.update(m[p * 4096:(p + 1) * 4096])
            if think:
                time.sleep(think)
        m.close(); os.close(fd)
        os.write(wr, h.hexdigest().encode())
        os._exit(0)
    os.close(wr)
    kids.append((pid, rd))
os.close(go_r)
os.write(go_w, b"x" * nproc)
sums = set()
for pid, rd in kids:
    sums.add(os.read(rd, 64).decode())
    if os.waitpid(pid, 0)[1]:
        sys.exit("a reader failed")
if len(sums) != 1:
    sys.exit("the readers read different bytes: %s" % sorted(sums))
print(sums.pop())
'

# ---- cases -------------------------------------------------------------------

# MAJ:MIN of the mount at $MNT (its bdi), from mountinfo.
bdi_ra() {
	dev=$(awk -v m="$MNT" '$5 == m { d = $3 } END { print d }' /proc/self/mountinfo)
	[ -n "$dev" ] || { echo "$MNT not in /proc/self/mountinfo"; return 1; }
	cat "/sys/class/bdi/$dev/read_ahead_kb"
}

readahead() {
	fresh || return 1
	got=$(bdi_ra) || return 1
	[ "$got" = 1024 ] || { echo "read_ahead_kb $got by default, expected 1024"; return 1; }
	fresh -o readahead_kb=512 || return 1
	got=$(bdi_ra) || return 1
	[ "$got" = 512 ] || { echo "read_ahead_kb $got with -o readahead_kb=512"; return 1; }
	note "read_ahead_kb: 1024 by default, $got with -o readahead_kb=512"
}

second_open() {
	f=$MNT/a/memory.bin
	ws_set "$f" off off && fresh || return 1
	cat "$f" >/dev/null || return 1
	r1=$(xa "$f" reads)
	cmp "$f" "$work/mem" || return 1
	r2=$(xa "$f" reads)
	note "READs: $r1 for the first read of the file, $r2 after the second"
	[ "$r1" -gt 0 ] || { echo "no READ for the first read"; return 1; }
	[ "$r2" = "$r1" ] ||
		{ echo "the second open read the file again: READs $r1, then $r2"; return 1; }
}

# Concurrent faults on the same read-around window split it into more,
# smaller READs (the kernel's readahead stops at each page another reader
# added), though no byte is read twice: with 4 readers 2-3x the READs of
# one, for the same bytes. MADV_RANDOM makes a fault read its own page
# only, so the READs count the page cache's misses.
concurrent_share() {
	f=$MNT/a/memory.bin
	want=$(touch_pages "$work/mem" 7 256 1 0) || return 1
	fresh && ws_is "$f" off || return 1
	got=$(touch_pages "$f" 7 256 1 0 random) || return 1
	one=$(xa "$f" reads)
	[ "$got" = "$want" ] || { echo "one reader read wrong bytes"; return 1; }
	fresh || return 1
	got=$(touch_pages "$f" 7 256 4 0 random) || return 1
	four=$(xa "$f" reads)
	[ "$got" = "$want" ] || { echo "four readers read wrong bytes"; return 1; }
	note "READs: $one for one reader of 256 random pages, $four for four at once"
	[ "$one" -gt 0 ] && [ $((four * 4)) -le $((one * 5)) ] ||
		{ echo "READs: $one for one reader, $four for four: more than 1.25x"; return 1; }
}

# MODE FILE [ARGS]: a reader keeps FILE (in the mount) open and mapped
# MAP_SHARED while it is changed through another fd or process, and must
# see each change at once. write; truncate; cp SRC WANT (cp SRC onto
# FILE, WANT holds its bytes); push EXPECT SEED (writes while the push of
# a working set runs, also applied to the file EXPECT; prints how many
# chunks were pushed when the writer opened and once it was in).
STALE_PY='
import mmap, os, random, subprocess, sys, time
mode, path = sys.argv[1], sys.argv[2]
def same(what, got, want):
    if got != want:
        d = [k for k in range(min(len(got), len(want))) if got[k] != want[k]]
        sys.exit("%s: %d bytes, expected %d; %d differ, the first at +%d"
                 % (what, len(got), len(want), len(d), d[0] if d else -1))
rfd = os.open(path, os.O_RDONLY)
size = os.fstat(rfd).st_size
m = mmap.mmap(rfd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
if mode == "write":
    off = size // 2 + 1000
    old = m[off:off + 8192]		# now in the page cache
    new = bytes(b ^ 0x5a for b in old)
    wfd = os.open(path, os.O_WRONLY)
    os.pwrite(wfd, new, off); os.close(wfd)
    same("the mapping after a write by another fd", m[off:off + 8192], new)
    same("pread after a write by another fd", os.pread(rfd, 8192, off), new)
elif mode == "truncate":
    cut = size // 2 + 123
    before = os.pread(rfd, 4096, cut - 2048)
    if m[cut:cut + 65536] == bytes(65536):	# cached, and not zeros
        sys.exit("zeros past the cut before the truncate")
    m.close()
    os.truncate(path, cut); os.truncate(path, size)
    m = mmap.mmap(rfd, size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
    got = os.pread(rfd, 4096, cut - 2048)
    same("pread across the cut after truncate and extend", got, before[:2048] + bytes(2048))
    same("the mapping past the cut", m[cut:cut + 65536], bytes(65536))
elif mode == "cp":
    src = sys.argv[3]
    os.pread(rfd, size, 0)		# all in the page cache
    subprocess.run(["cp", src, path], check=True)
    want = open(sys.argv[4], "rb").read()
    same("pread of the destination after cp onto it", os.pread(rfd, size + 1, 0), want)
elif mode == "push":
    expect, seed = sys.argv[3], int(sys.argv[4])
    os.pread(rfd, 1, 0)		# the first READ starts the push
    for _ in range(500):
        p0 = int(os.getxattr(path, "user.snapfs.prefetched"))
        if p0:
            break
        time.sleep(0.002)
    wfd = os.open(path, os.O_WRONLY)
    p1 = int(os.getxattr(path, "user.snapfs.prefetched"))
    r = random.Random(seed)
    with open(expect, "r+b") as e:
        for k in range(32):
            data = r.randbytes(r.choice([100, 4096, 65536 + 77]))
            off = r.randrange(size - len(data)) if k else size - len(data)
            os.pwrite(wfd, data, off)
            e.seek(off); e.write(data)
            same("pread by the reader after a write during the push",
                 os.pread(rfd, len(data), off), data)
    os.close(wfd)
    print(p0, p1)
m.close()
os.close(rfd)
'

no_stale() {
	mkdir -p "$MNT/s" || return 1
	f=$MNT/s/memory.bin
	cp "$MNT/a/memory.bin" "$f" || return 1
	"$PY" -c "$STALE_PY" write "$f" || return 1
	"$PY" -c "$STALE_PY" truncate "$f" || return 1
	head -c $((2 * MIB)) /dev/urandom >"$work/src2" &&
	head -c $((2 * MIB)) /dev/urandom >"$work/dst2" &&
	cp "$work/src2" "$MNT/s/src" && cp "$work/dst2" "$MNT/s/dst" || return 1
	"$PY" -c "$STALE_PY" cp "$MNT/s/dst" "$MNT/s/src" "$work/src2" || return 1
	# while a push runs: a working set of most of the file (random
	# touches: a sweep such as cat's is not kept), a cold start
	f=$MNT/s/push.bin
	cp "$MNT/a/memory.bin" "$f" && ws_set "$f" clear none || return 1
	touch_pages "$f" 7 400 1 0 >/dev/null && wait_recorded "$f" && fresh ||
		return 1
	cp "$work/mem" "$work/expect" || return 1
	p=$("$PY" -c "$STALE_PY" push "$f" "$work/expect" 11) || return 1
	# shellcheck disable=SC2086	# two numbers
	set -- $p
	note "the push had pushed $1 of ${ws#recorded } chunks when the writer opened, $2 when it was in"
	[ "$1" -gt 0 ] || { echo "no push ran"; return 1; }
	cmp "$f" "$work/expect" ||
		{ echo "the page cache differs from what was written during the push"; return 1; }
	umount_snapfs && mount_snapfs || return 1
	cmp "$f" "$work/expect" || { echo "after a remount"; return 1; }
	rm -r "$MNT/s"
}

recording() {
	mkdir "$MNT/w" || return 1
	f=$MNT/w/memory.bin
	cp "$MNT/a/memory.bin" "$f" && ws_set "$f" clear none || return 1
	nws=$(ws_files)
	fresh || return 1
	touch_pages "$f" 3 16 1 0 >/dev/null || return 1
	wait_recorded "$f" || return 1
	nrec=${ws#recorded }
	chunks=$((MEM / $(chunk_size)))
	note "16 pages touched: $ws of $chunks chunks"
	[ "$nrec" -gt 0 ] && [ "$nrec" -le "$chunks" ] ||
		{ echo "$ws: not between 1 and $chunks chunks"; return 1; }
	[ "$(ws_files)" -eq $((nws + 1)) ] ||
		{ echo "$(ws_files) STORE/images/*.ws after the recording, $nws before"; return 1; }
	umount_snapfs && mount_snapfs || return 1
	ws_is "$f" "$ws" || { echo "(after a remount)"; return 1; }
	cp -r "$MNT/w" "$MNT/w2" && ws_is "$MNT/w2/memory.bin" "$ws" ||
		{ echo "(cp -r)"; return 1; }
	ln "$f" "$MNT/w/mem2" && ws_is "$MNT/w/mem2" "$ws" || { echo "(ln)"; return 1; }
	ws_set "$f" off off && fresh || return 1
	touch_pages "$f" 3 16 1 0 >/dev/null || return 1
	sleep 0.5	# what a RELEASE would record
	ws_is "$f" off || { echo "(after a cold read with workingset off)"; return 1; }
	[ "$(xa "$f" reads)" -gt 0 ] && [ "$(xa "$f" prefetched)" = 0 ] ||
		{ echo "workingset off: READs $(xa "$f" reads), prefetched $(xa "$f" prefetched)"; return 1; }
	ws_set "$f" on none || return 1
	# A sweep over the whole file (cat, cp out, verify) is no guest's
	# working set: nothing is kept, and the next open records again.
	fresh && cat "$f" >/dev/null && sleep 0.5 && ws_is "$f" none ||
		{ echo "(after cat of the whole file)"; return 1; }
	# Nor is there one of a file one READ reads whole (1 MiB).
	head -c $((MIB / 2)) /dev/urandom >"$MNT/w/small" && fresh &&
		touch_pages "$MNT/w/small" 3 8 1 0 >/dev/null && sleep 0.5 &&
		ws_is "$MNT/w/small" none || { echo "(a file of 512 KiB)"; return 1; }
}

# The only attribute that can be set is user.snapfs.workingset, to
# clear, off or on; removing it clears; -o ro refuses, and records none.
settings() {
	f=$MNT/w2/memory.bin
	case $(xa "$f" workingset) in "recorded "*) ;; *) echo "w2 has no working set"; return 1 ;; esac
	setfattr -n user.snapfs.reads -v 0 "$f" 2>"$work/err" &&
		{ echo "setting user.snapfs.reads worked"; return 1; }
	grep -q 'Operation not permitted' "$work/err" || { cat "$work/err"; return 1; }
	setfattr -n user.snapfs.workingset -v maybe "$f" 2>"$work/err" &&
		{ echo "workingset=maybe worked"; return 1; }
	grep -q 'Invalid argument' "$work/err" || { cat "$work/err"; return 1; }
	setfattr -x user.snapfs.workingset "$f" && ws_is "$f" none ||
		{ echo "(setfattr -x)"; return 1; }
	fresh -o ro || return 1
	setfattr -n user.snapfs.workingset -v off "$f" 2>"$work/err" &&
		{ echo "setfattr worked on -o ro"; return 1; }
	grep -q 'Read-only file system' "$work/err" || { cat "$work/err"; return 1; }
	cat "$f" >/dev/null && sleep 0.5 && ws_is "$f" none ||
		{ echo "(a read on -o ro)"; return 1; }
	fresh
}

push_cuts_reads() {
	f=$MNT/a/memory.bin
	want=$(touch_pages "$work/mem" 5 $TOUCH 1 0) || return 1
	ws_set "$f" off off && fresh || return 1
	got=$(touch_pages "$f" 5 $TOUCH 1 $THINK) || return 1
	off=$(xa "$f" reads)
	[ "$got" = "$want" ] || { echo "workingset off: wrong bytes read"; return 1; }
	ws_set "$f" on none && fresh || return 1
	touch_pages "$f" 5 $TOUCH 1 $THINK >/dev/null && wait_recorded "$f" && fresh ||
		return 1
	got=$(touch_pages "$f" 5 $TOUCH 1 $THINK) || return 1
	on=$(xa "$f" reads) pre=$(xa "$f" prefetched)
	note "$TOUCH pages, $THINK s apart: $off READs with workingset off, $on with $ws ($pre chunks prefetched)"
	[ "$got" = "$want" ] || { echo "with a working set: wrong bytes read"; return 1; }
	[ "$pre" -gt 0 ] || { echo "nothing prefetched"; return 1; }
	[ $((on * 3)) -le "$off" ] ||
		{ echo "READs: $off with workingset off, $on with $ws: not 3x fewer"; return 1; }
}

# One chunk of a/memory.bin that its working set holds (the first page
# push_cuts_reads touched) turned bad.
CORRUPT_PY='
import errno, os, sys, time
path, bad, good, src = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fd = os.open(path, os.O_RDONLY)		# arms the push
os.pread(fd, 1, good)			# the first READ starts it
for _ in range(500):
    if int(os.getxattr(path, "user.snapfs.prefetched")):
        break
    time.sleep(0.01)
else:
    sys.exit("no push ran in 5 s")
try:
    os.pread(fd, 4096, bad)
    sys.exit("pread of the corrupt chunk at %d worked" % bad)
except OSError as e:
    if e.errno != errno.EIO:
        sys.exit("pread of the corrupt chunk: %s, expected EIO" % e)
with open(src, "rb") as s:
    s.seek(good); want = s.read(65536)
if os.pread(fd, 65536, good) != want:
    sys.exit("a good chunk at %d reads other bytes" % good)
'

corrupt_chunk() {
	f=$MNT/a/memory.bin
	case $(xa "$f" workingset) in "recorded "*) ;; *) echo "a has no working set"; return 1 ;; esac
	cs=$(chunk_size) || return 1
	page=$("$PY" -c 'import random, sys; print(random.Random(5).sample(range(int(sys.argv[1]) // 4096), int(sys.argv[2]))[0])' $MEM $TOUCH)
	bad=$((page * 4096 / cs * cs))
	good=$((bad + 4 * MIB))
	[ "$good" -lt "$MEM" ] || good=$((bad - 4 * MIB))
	key=$(dd if="$work/mem" bs="$cs" skip=$((bad / cs)) count=1 2>/dev/null |
		sha256sum | cut -d' ' -f1)
	where=$(chunk_where "$STORE" "$key") ||
		{ echo "chunk $key is not stored"; return 1; }
	set -- $where
	cfile=$1 coff=$(($2 + $3 / 2))
	umount_snapfs || return 1
	chmod u+w "$cfile" && flip "$cfile" "$coff" || return 1
	fresh || return 1
	"$PY" -c "$CORRUPT_PY" "$f" $((bad + 1000)) "$good" "$work/mem" || return 1
	short=$(echo "$key" | cut -c1-16)
	grep -q "chunk $short" "$derr" ||
		{ echo "the daemon's log does not name chunk $short"; show_derr; return 1; }
	note "the daemon said: $(grep "chunk $short" "$derr" | head -1)"
	alive "$pid" && ls "$MNT/a" >/dev/null || { echo "the daemon is gone"; return 1; }
	umount_snapfs || return 1
	flip "$cfile" "$coff" && fresh
}

memory_bound() {
	mkdir "$MNT/m" || return 1
	f=$MNT/m/memory.bin
	cp "$MNT/a/memory.bin" "$f" && ws_set "$f" clear none || return 1
	fresh -o cache_size=8M || return 1
	touch_pages "$f" 7 400 1 0 >/dev/null && wait_recorded "$f" || return 1
	fresh -o cache_size=8M || return 1
	before=$(rss_kib "$pid")
	exec 3<"$f"	# arms the push (the cat starts it)
	cat "$f" >/dev/null || { exec 3<&-; return 1; }
	i=0	# until the push is through
	while [ "$(xa "$f" prefetched)" -lt "${ws#recorded }" ] && [ "$i" -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	after=$(rss_kib "$pid") pre=$(xa "$f" prefetched)
	exec 3<&-
	note "daemon VmRSS: $before KiB after the mount, $after KiB after a push of $pre chunks and a read of 64 MiB with cache_size=8M"
	[ "$pre" -gt 0 ] || { echo "no push ran"; return 1; }
	[ $((after - before)) -lt $(((8 + 40) * 1024)) ] ||
		{ echo "VmRSS grew by $((after - before)) KiB, more than 48 MiB"; return 1; }
}

all_clean() {
	umount_snapfs || return 1
	"$SNAPCTL" store verify "$STORE" >"$work/out" 2>&1 ||
		{ echo "store verify:"; cat "$work/out"; return 1; }
	for e in "$work"/daemon.*.err; do
		no_reports "$e" || return 1
	done
}

# ---- driver ------------------------------------------------------------------

CASES="
readahead		the mount's read_ahead_kb: 1024 by default, N with -o readahead_kb=N
second_open		a second open of an unchanged file sends no READ
concurrent_share	four concurrent mmap readers share the page cache: at most 1.25x the READs of one
no_stale		no stale page after a write, a truncate, a cp onto the file, nor a write during a push
recording		a working set recorded on a cold read, kept across a remount, carried by cp -r and ln; off and on; none from a cat or of a small file
settings		workingset: other names EPERM, a bad value EINVAL, removexattr clears, -o ro refuses and records none
push_cuts_reads		the push of a working set cuts READs 3x, the bytes right
corrupt_chunk		a corrupt chunk in a working set: EIO for its reader, named in the log, other chunks read
memory_bound		cache_size=8M bounds the daemon's memory during a push and a read of 64 MiB
all_clean		after everything: store verify clean, no sanitizer report
"

make_sources() {
	"$MKSNAP" "$work/src" --vcpus 1 --mem "$MEM" &&
	"$SNAPCTL" store init "$STORE" &&
	head -c "$MEM" /dev/urandom >"$work/mem" &&
	mkdir "$MNT" && mount_snapfs && mkdir "$MNT/a" &&
	cp "$work/src/manifest.bin" "$work/src/state.bin" "$MNT/a/" &&
	dd if="$work/mem" of="$MNT/a/memory.bin" bs=$MIB conv=fsync 2>&1 &&
	cmp "$work/mem" "$MNT/a/memory.bin"
}
t_start=$(date +%s)
if ! make_sources >"$err" 2>&1; then
	not_ok "make the sample snapshot and the store"
	tap_end
fi

case_failed() { show_derr; }
# The next case starts from a mount.
case_done() {
	if ! is_mounted "$MNT" && [ "$1" != all_clean ]; then
		drop_snapfs >/dev/null 2>&1
		mount_snapfs >/dev/null 2>&1
	fi
}
run_cases "$CASES"
echo "# $(($(date +%s) - t_start)) s"

tap_end
