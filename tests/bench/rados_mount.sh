#!/bin/sh
# A snapfs mount of a store in Ceph RADOS against one of a directory
# store, on a throwaway single-node cluster (tests/lib/ceph.sh).
#
#   sh tests/bench/rados_mount.sh [-n RUNS] [-m MIB] [-p PERCENT] [-r READS]
#
# On this machine (root, /dev/fuse), in a new directory under $TMPDIR
# (default /var/tmp), removed at exit with the cluster: a snapshot SNAP
# made by $BUILD/tests/mksnap --mem MIB MiB (default 256), whose
# memory.bin is then replaced by a memory-like image of the same size
# (build/bench/pagefill image: random runs of 64 KiB to 4 MiB covering
# PERCENT%, default 30, the rest a hole; mksnap's own memory, one page in
# 16 of one repeated byte, compresses to almost nothing). The same bytes stay beside as IMG, a plain
# sparse file, to check what the mount reads. The cluster is one monitor
# and one memstore OSD on 127.0.0.1 (ceph_start; RADOS_MOUNT_OSD=bluestore
# puts the OSD's objects in a sparse file instead); the pool's namespaces
# are the RADOS stores. Every mount is `$BUILD/snapfs STORE MNT -f` in
# the background, stopped with `fusermount3 -u MNT` and waited for by its
# pid (SIGTERM after 10 s, SIGKILL after 10 more); the EXIT trap unmounts
# and stops the cluster, also on failure.
#
#   import  `snapctl import SNAP STORE s` into a new directory store on
#           TMPDIR's disk and into a new RADOS store (rados:POOL/NS), each
#           removed after its run; SNAP's files read once before (page
#           cache): seconds from the fork to the exit (build/bench/runtime,
#           tests/bench/runtime.c: store open, copy, close) and GB/s
#           (10^9 bytes of memory.bin a second) of that. The warm-up run's
#           stores are kept: DSTORE and RSTORE, which the steps below read.
#   clone   a new daemon, read-write, on each store (page cache dropped
#           first): ms of `cp -r MNT/s MNT/cN` (a clone: copy_file_range,
#           docs/snapfs.md), then of `cp -r MNT/cN` to a directory on
#           TMPDIR's disk: every byte of the clone read out cold (an empty
#           chunk cache) and written to the page cache there. The warm-up
#           run also sets user.snapfs.workingset off on MNT/s/memory.bin,
#           so no cold read below is helped by a pushed working set.
#   seq     `dd if=MNT/s/memory.bin of=/dev/null bs=1M`, MiB/s, cold: a
#           new read-only daemon (`-o ro`: an empty in-memory chunk cache)
#           after sync and drop_caches, in four kinds, in this order each
#           run: DSTORE; RSTORE; RSTORE with `-o chunk_cache=CC` (CC a new
#           empty directory on TMPDIR's disk, filled by this read); RSTORE
#           with the same CC again (warm: every chunk in it, none fetched
#           from the cluster).
#   rand    build/bench/randread (tests/bench/randread.c): READS (default
#           500) 4 KiB preads, one at a time, at random pages holding data
#           (a seed per run: the same pages for every kind of a run), each
#           checked against IMG; cold as above, the same four kinds: the
#           empty cache a new directory again, the warm one the CC the seq
#           step filled. IMG is read into the page cache after the drop,
#           so that its pages, read after each timed one, cost little.
#           Median and p99 µs of each run's reads, and IOPS: READS over
#           the seconds from randread's fork to its exit.
#
# Each case gets a warm-up run 0, not counted (it also checks the bytes
# read with cmp), then RUNS (default 5; -n or BENCH_RUNS) runs; the table
# shows the median with min and max over the runs, and each figure's
# median against the directory store's (x dir). The machine's other load
# moves every figure from one invocation to the next; quote the ratios of
# one. With a memstore OSD the cluster holds its objects in its RAM:
# "cold" is snapfs' and the kernel's caches, never the OSD's, and every
# RADOS call is a round trip over loopback, not a network. Every run's
# numbers are in $BUILD/bench/rados_mount.log ("BENCH ..." lines). About
# 30 s on a 2-core machine with the defaults (40 s with bluestore); each
# cold run drops the whole machine's page cache, which slows whatever
# else runs.
#
# Variables: BUILD (build), CC (gcc), TMPDIR (/var/tmp), BENCH_RUNS (5),
# RADOS_MOUNT_OSD (memstore), CEPH_TIMEOUT (60, tests/lib/ceph.sh).
#
# Exit status: 0; 1 when a run failed (a command, different bytes, a
# daemon that did not mount, reported an error or did not stop cleanly);
# 2 when something is missing (the Ceph packages: sh tools/deps.sh; the
# programs: make all build/tests/mksnap), or not root, or no FUSE, or a
# usage error.
set -u
. tests/bench/lib.sh
. tests/lib/ceph.sh
OUT=$BUILD/bench
LOG=$OUT/rados_mount.log
RUNS=${BENCH_RUNS:-5}
# shellcheck disable=SC2034 # bench_table (lib.sh) reads it
outer=
MIB=256
PCT=30
READS=500
OSD=${RADOS_MOUNT_OSD:-memstore}
usage() {
	echo "usage: rados_mount.sh [-n RUNS] [-m MIB] [-p PERCENT] [-r READS]" >&2
	exit 2
}
while getopts n:m:p:r: c; do
	case $c in
	n) RUNS=$OPTARG ;;
	m) MIB=$OPTARG ;;
	p) PCT=$OPTARG ;;
	r) READS=$OPTARG ;;
	*) usage ;;
	esac
done
[ $OPTIND -gt $# ] || usage
case $RUNS$MIB$PCT$READS in
*[!0-9]*) echo "rados_mount: -n, -m, -p and -r take numbers" >&2; exit 2 ;;
esac
if [ "$RUNS" -lt 1 ] || [ "$MIB" -lt 1 ] || [ "$READS" -lt 1 ] ||
   [ "$PCT" -lt 1 ] || [ "$PCT" -gt 100 ]; then
	echo "rados_mount: -n, -m and -r take at least 1, -p 1 to 100" >&2
	exit 2
fi
# The OSD holds 1 GiB (memstore) or 2 GiB (bluestore): the kept store and
# one import beside it, with room to spare.
[ $((MIB * PCT / 100)) -le 384 ] ||
	{ echo "rados_mount: -m MIB x -p PERCENT is at most 384 MiB of data (the OSD holds 1 GiB)" >&2; exit 2; }
case $OSD in
memstore | bluestore) ;;
*) echo "rados_mount: RADOS_MOUNT_OSD is memstore or bluestore" >&2; exit 2 ;;
esac

die2() { echo "rados_mount: $*" >&2; exit 2; }
if ! why=$(ceph_have); then
	die2 "$why"
fi
for f in "$BUILD/snapfs" "$BUILD/snapctl" "$BUILD/tests/mksnap"; do
	[ -x "$f" ] || die2 "$f missing (make all build/tests/mksnap)"
done
[ "$(id -u)" -eq 0 ] || die2 "needs root (drop_caches, the cold reads)"
[ -c /dev/fuse ] || die2 "no /dev/fuse"
for p in fusermount3 setfattr getfattr python3 dd cmp; do
	command -v $p >/dev/null || die2 "$p missing"
done
mkdir -p "$OUT" || exit 2
for p in randread pagefill runtime; do
	"$CC" -std=gnu11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror \
		-o "$OUT/$p" tests/bench/$p.c || die2 "tests/bench/$p.c did not build"
done

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/snapfs-bench-rados-mount.XXXXXX") || exit 2
M=$tmp/mnt
SNAP=$tmp/snap
IMG=$tmp/img
DSTORE=$tmp/dstore
fspid=
failed=0
cleanup() {
	umount_fs
	ceph_stop
	if grep -q " $tmp/" /proc/mounts; then
		echo "rados_mount: a mount under $tmp is left: $tmp is kept" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
note() { echo "BENCH # $*" >>"$LOG"; }
fail() { failed=$((failed + 1)); note "$*"; echo "rados_mount: $*" >&2; }
timed() {	# COMMAND...: $us, its microseconds (runtime.c); its status
	"$OUT/runtime" "$@" 2>"$tmp/rt"
	_rc=$?
	us=$(sed -n 's/^runtime: \([0-9]*\)$/\1/p' "$tmp/rt")
	us=${us:--}
	return $_rc
}
mounted() { grep -q " $M fuse" /proc/mounts; }

# snapfs STORE on $M with the mount options $2 (none when empty), in the
# background ($fspid); a failure when it is not mounted in 10 s.
mount_fs() {
	if [ -n "$2" ]; then
		"$BUILD/snapfs" "$1" "$M" -f -o "$2" 2>>"$tmp/fs.err" &
	else
		"$BUILD/snapfs" "$1" "$M" -f 2>>"$tmp/fs.err" &
	fi
	fspid=$!
	_j=0
	until mounted; do
		if [ $_j -ge 200 ] || ! kill -0 "$fspid" 2>/dev/null; then
			fail "snapfs $1 did not mount: $(tail -1 "$tmp/fs.err")"
			umount_fs
			return 1
		fi
		sleep 0.05
		_j=$((_j + 1))
	done
}

# fusermount3 -u, then wait for the daemon: SIGTERM after 10 s, SIGKILL
# after 10 more. A failure when it needed a signal, exited non-zero or
# left its mount (then umount -l).
umount_fs() {
	[ -n "$fspid" ] || return 0
	mounted && { fusermount3 -u "$M" 2>>"$tmp/fs.err" ||
		fail "fusermount3 -u $M: $(tail -1 "$tmp/fs.err")"; }
	for _sig in TERM KILL; do
		_j=0
		while kill -0 "$fspid" 2>/dev/null && [ $_j -lt 100 ]; do
			sleep 0.1
			_j=$((_j + 1))
		done
		kill -0 "$fspid" 2>/dev/null || break
		fail "the daemon still runs 10 s after the unmount: SIG$_sig"
		kill -$_sig "$fspid" 2>/dev/null
	done
	wait "$fspid" 2>/dev/null
	_rc=$?
	fspid=
	[ $_rc -eq 0 ] || fail "the daemon exited with status $_rc"
	if mounted; then
		umount -l "$M" 2>/dev/null
		fail "the mount outlived its daemon (umount -l)"
	fi
	return 0
}

# dd's stderr: MiB per second
mibps() {
	LC_ALL=C awk '/copied/ { for (i = 1; i < NF; i++) if ($(i + 1) == "s,")
		printf "%.1f\n", $1 / $i / 1048576 }' "$1"
}

# Remove every object of RADOS namespace $1 (a store the run made).
rados_purge() {
	if ! rados -p "$CEPH_POOL" -N "$1" ls >"$tmp/objs" 2>>"$tmp/rados.err"; then
		fail "rados ls of namespace $1: $(tail -1 "$tmp/rados.err")"
	elif [ -s "$tmp/objs" ] && ! xargs rados -p "$CEPH_POOL" -N "$1" rm \
			<"$tmp/objs" 2>>"$tmp/rados.err"; then
		fail "rados rm in namespace $1: $(tail -1 "$tmp/rados.err")"
	fi
}

stored() {	# the store $1's stored bytes
	"$BUILD/snapctl" store stats --json "$1" |
		sed -n 's/^ *"stored_bytes": *\([0-9]*\).*/\1/p'
}

fstype=$(df -PT "$tmp" | awk 'NR == 2 { print $2 " (" $1 ")" }')
{
	echo "BENCH host $(nproc) ${TMPDIR:-/var/tmp} $fstype"
	echo "BENCH load $(cut -d' ' -f1 /proc/loadavg)"
	echo "BENCH kernel $(uname -r)"
	echo "BENCH ceph $(ceph --version | awk '{ print $3 }') $OSD"
} >"$LOG"

# ---- the snapshot, the cluster ------------------------------------------
"$BUILD/tests/mksnap" "$SNAP" --mem $((MIB * 1048576)) >/dev/null ||
	die2 "mksnap failed"
"$OUT/pagefill" image "$IMG" "$MIB" "$PCT" 1 || die2 "pagefill image failed"
cp --sparse=always "$IMG" "$SNAP/memory.bin" || die2 "cp of the image failed"
"$BUILD/snapctl" verify "$SNAP" >/dev/null || die2 "snapctl verify $SNAP failed"
mkdir "$M" || exit 2
ceph_start "$tmp/ceph" "$OSD" || { echo "rados_mount: the cluster did not start" >&2; exit 1; }
RSTORE=rados:$CEPH_POOL/base

# ---- import ---------------------------------------------------------------
import_one() {	# KIND STORE RUN
	cat "$SNAP"/* >/dev/null
	"$BUILD/snapctl" store init "$2" >/dev/null 2>"$tmp/imp" ||
		{ fail "snapctl store init $2: $(tail -1 "$tmp/imp")"; return 1; }
	if timed "$BUILD/snapctl" import "$SNAP" "$2" s >"$tmp/imp" 2>&1; then
		echo "BENCH imp $1 $3 $us" >>"$LOG"
	else
		fail "import into $2, run $3: $(grep -v '^runtime:' "$tmp/rt" | tail -1)"
	fi
}
i=0
while [ $i -le "$RUNS" ]; do
	if [ $i -eq 0 ]; then
		import_one dir "$DSTORE" 0
		import_one rados "$RSTORE" 0
	else
		import_one dir "$tmp/imp$i" $i
		rm -rf "$tmp/imp$i"
		import_one rados "rados:$CEPH_POOL/imp$i" $i
		rados_purge "imp$i"
	fi
	i=$((i + 1))
done
echo "BENCH stored $(stored "$DSTORE") $(stored "$RSTORE")" >>"$LOG"
echo "BENCH chunk $("$BUILD/snapctl" store stats --json "$DSTORE" |
	sed -n 's/^ *"chunk_size": *\([0-9]*\).*/\1/p')" >>"$LOG"

# ---- cp -r: a clone in the mount, and every byte out of it ---------------
clone_one() {	# KIND STORE RUN
	bench_drop
	mount_fs "$2" "" || return 1
	if [ "$3" -eq 0 ] &&
	   ! setfattr -n user.snapfs.workingset -v off "$M/s/memory.bin"; then
		fail "setfattr user.snapfs.workingset off on $1's memory.bin"
	fi
	if timed cp -r "$M/s" "$M/c$3"; then
		c=$us
		if timed cp -r "$M/c$3" "$tmp/out"; then
			echo "BENCH clone $1 $3 $c $us" >>"$LOG"
			[ "$3" -eq 0 ] && { cmp "$IMG" "$tmp/out/memory.bin" ||
				fail "$1: the clone's memory.bin copied out differs"; }
		else
			fail "$1: cp -r of the clone out of the mount, run $3"
		fi
	else
		fail "$1: cp -r in the mount, run $3"
	fi
	rm -rf "$tmp/out"
	umount_fs
}
i=0
while [ $i -le "$RUNS" ]; do
	clone_one dir "$DSTORE" $i
	clone_one rados "$RSTORE" $i
	i=$((i + 1))
done

# ---- cold reads: sequential, then random -----------------------------------
# KIND: dir, rados (no chunk cache), rcold (an empty one), rwarm (full).
store_of() { case $1 in dir) echo "$DSTORE" ;; *) echo "$RSTORE" ;; esac; }
opts_of() {	# KIND CACHEDIR
	case $1 in
	dir | rados) echo ro ;;
	*) echo "ro,chunk_cache=$2,chunk_cache_size=$((MIB * 2))M" ;;
	esac
}
seq_one() {	# KIND CACHEDIR RUN
	bench_drop
	mount_fs "$(store_of "$1")" "$(opts_of "$1" "$2")" || return 1
	if LC_ALL=C dd if="$M/s/memory.bin" of=/dev/null bs=1M 2>"$tmp/dd"; then
		echo "BENCH seq $1 $3 $(mibps "$tmp/dd")" >>"$LOG"
		if [ "$3" -eq 0 ]; then
			cmp "$IMG" "$M/s/memory.bin" || fail "$1: memory.bin differs"
			echo "BENCH ws $1 $(getfattr --absolute-names --only-values -n \
				user.snapfs.workingset "$M/s/memory.bin" 2>&1)" >>"$LOG"
		fi
	else
		fail "$1: dd, run $3: $(tail -1 "$tmp/dd")"
	fi
	umount_fs
}
rand_one() {	# KIND CACHEDIR RUN
	bench_drop
	cat "$IMG" >/dev/null	# randread's reference, read after each timed read
	mount_fs "$(store_of "$1")" "$(opts_of "$1" "$2")" || return 1
	if timed "$OUT/randread" -n "$READS" -s $(($3 + 1)) -m "$IMG" -d \
		"$M/s/memory.bin" >"$tmp/rr"; then
		echo "BENCH rand $1 $3 $(cut -d' ' -f2,3 "$tmp/rr") $us" >>"$LOG"
	else
		fail "$1: randread, run $3: $(grep -v '^runtime:' "$tmp/rt" | tail -1)"
	fi
	umount_fs
}
i=0
while [ $i -le "$RUNS" ]; do
	rm -rf "$tmp/cc" "$tmp/cc2" && mkdir "$tmp/cc" "$tmp/cc2"
	seq_one dir - $i
	seq_one rados - $i
	seq_one rcold "$tmp/cc" $i
	echo "BENCH cache $i $(du -sk "$tmp/cc" | cut -f1)" >>"$LOG"
	seq_one rwarm "$tmp/cc" $i
	rand_one dir - $i
	rand_one rados - $i
	rand_one rcold "$tmp/cc2" $i
	rand_one rwarm "$tmp/cc" $i
	i=$((i + 1))
done
rm -rf "$tmp/cc" "$tmp/cc2"

if [ -s "$tmp/fs.err" ]; then
	fail "the daemons reported:"
	tail -5 "$tmp/fs.err" | sed 's/^/BENCH # /' >>"$LOG"
fi
echo "BENCH failed $failed" >>"$LOG"

# Run 0 is the warm-up: stats() counts runs 1..RUNS only.
bench_table '
function f(v, p) { return v == "-" ? "-" : sprintf("%." p "f", v) }
function cell(key, col, p) {
	stats(key, col)
	return med[col] == "-" ? "-" : \
	       sprintf("%s (%s-%s)", f(med[col], p), f(lo[col], p), f(hi[col], p))
}
function x(key, col, base,    a) {
	stats(key, col); a = med[col]; stats(base, col)
	return ratio(a, med[col]) == "-" ? "-" : ratio(a, med[col]) "x"
}
$2 == "host" { nproc = $3; tdir = $4; fst = $5 " " $6 }
$2 == "load" { load = $3 }
$2 == "ceph" { cver = $3; osd = $4 }
$2 == "stored" { dstored = $3; rstored = $4 }
$2 == "chunk" { chunk = $3 }
$2 == "cache" && $3 > 0 { cache[$3] = $4 }
$2 == "imp" { val["imp " $3, $4] = 1; val["imp " $3, $4, 1] = $5 / 1e6
	      val["imp " $3, $4, 2] = mib * 1048576 / ($5 / 1e6) / 1e9 }
$2 == "clone" { val["clone " $3, $4] = 1; val["clone " $3, $4, 1] = $5 / 1e3
		val["clone " $3, $4, 2] = $6 / 1e3 }
$2 == "seq" { val["seq " $3, $4] = 1; val["seq " $3, $4, 1] = $5 }
$2 == "rand" { val["rand " $3, $4] = 1; val["rand " $3, $4, 1] = $5
	       val["rand " $3, $4, 2] = $6
	       val["rand " $3, $4, 3] = reads / ($7 / 1e6) }
$2 == "ws" && $4 != "off" { wson = wson " " $3 ": " $4 }
$2 == "failed" { failed = $3 }
function row2(name, key, col, p) {
	printf "| %s | %s | %s | %s |\n", name, cell(key " dir", col, p),
	       cell(key " rados", col, p), x(key " rados", col, key " dir")
}
function row4(name, key, col, p,    k, s, i) {
	split("dir rados rcold rwarm", k, " ")
	s = "| " name
	for (i = 1; i <= 4; i++) s = s " | " cell(key " " k[i], col, p)
	print s " |"
	s = "| x dir"
	for (i = 1; i <= 4; i++) s = s " | " x(key " " k[i], col, key " dir")
	print s " |"
}
END {
	n = 0
	for (i in cache) { c[++n] = cache[i] }
	sort(c, n)
	printf "snapfs over RADOS against the directory store: %d cores, load " \
	       "%s, %s on %s, Linux %s; Ceph %s, one %s OSD on 127.0.0.1; " \
	       "%d KiB chunks; median (min-max) of %d runs after a warm-up\n",
	       nproc, load, tdir, fst, kernel, cver, osd, chunk / 1024, runs
	printf "memory.bin: %d MiB, %d%% random (runs of 64 KiB-4 MiB), the " \
	       "rest zero; stored %.1f MiB (directory), %.1f MiB (RADOS)\n\n",
	       mib, pct, dstored / 1048576, rstored / 1048576
	printf "| figure | directory | RADOS | RADOS / directory |\n"
	printf "|---|---|---|---|\n"
	row2("snapctl import, s (fork to exit)", "imp", 1, 3)
	row2("snapctl import, GB/s of memory.bin", "imp", 2, 2)
	row2("cp -r of the snapshot in the mount (a clone), ms", "clone", 1, 1)
	row2("cp -r of the clone out of the mount, cold, ms", "clone", 2, 0)
	printf "\n| cold read of memory.bin | directory | RADOS | RADOS, empty " \
	       "chunk cache | RADOS, warm chunk cache |\n"
	printf "|---|---|---|---|---|\n"
	row4("dd bs=1M, MiB/s", "seq", 1, 0)
	row4(sprintf("%d 4 KiB preads, median µs", reads), "rand", 1, 0)
	row4(sprintf("%d 4 KiB preads, p99 µs", reads), "rand", 2, 0)
	row4(sprintf("%d 4 KiB preads, IOPS (one at a time)", reads), "rand", 3, 0)
	printf "\n(a new read-only daemon and the page cache dropped before " \
	       "each cold read; the warm chunk cache is the directory the empty " \
	       "one became in that run'"'"'s dd, %s KiB)\n",
	       n ? c[int((n + 1) / 2)] : "-"
	if (wson != "")
		printf "rados_mount: user.snapfs.workingset is not off:%s\n", wson
	for (i = 1; i <= nnotes; i++)
		print "rados_mount: " notes[i]
	if (failed)
		printf "rados_mount: %d failures (%s)\n", failed, logfile
}' -v mib="$MIB" -v pct="$PCT" -v reads="$READS"
[ "$failed" -eq 0 ]
