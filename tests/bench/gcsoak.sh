#!/bin/sh
# Garbage while serving: a live VM's RAM kept in a snapfs mount
# (`snapvm run --mem-file MNT/vm/memory.bin`) is a shared mapping whose
# dirty pages the kernel writes back into the store, each write making the
# chunk it replaces garbage. This stands in for the guest with a process
# that maps a file of GCSOAK_MB MiB (default 1024) MAP_SHARED in the mount
# and rewrites GCSOAK_RATE percent (default 10) of its 4 KiB pages a second
# at random with random bytes, msync once a second, for GCSOAK_SECONDS
# (default 600); every GCSOAK_SNAP seconds (default 60) it takes a snapshot
# (`cp -r` of the VM's directory in the mount, a constant-time clone) and
# removes the one three before, as a user keeping the last three would.
# The daemon runs with its defaults (background gc after 64 MiB of chunks
# written, or an eighth of what the last gc kept, and after a snapshot
# is removed).
#
# Every 10 s it samples the bytes the store's chunks take on disk (`du
# --apparent-size` of STORE/chunks), what the snapshots and the live file
# reference for gc (the last gc's "kept" bytes, from user.snapfs.gc:
# every delta of a live image's chain counts, entries a newer delta
# shadows too), and what their maps hold (the sum of user.snapfs.
# stored_bytes over the live file and the snapshots' memory.bin: chunks
# two of them share count twice), and prints a table. The summary gives
# the median and largest ratio of on disk to kept once the first gc has
# run (target: <= 1.5x, issue 13, met or MISSED), and the last of kept to
# maps.
#
# Needs root and /dev/fuse, python3, and about 3 x GCSOAK_MB MiB free under
# $TMPDIR (default /var/tmp). Exit status 0, 1 when a step failed, 2 when
# something is missing.
set -u
BUILD=${BUILD:-build}
MB=${GCSOAK_MB:-1024}
SECONDS_=${GCSOAK_SECONDS:-600}
RATE=${GCSOAK_RATE:-10}
SNAP=${GCSOAK_SNAP:-60}
SNAPFS=$BUILD/snapfs
SNAPCTL=$BUILD/snapctl

for f in "$SNAPFS" "$SNAPCTL"; do
	[ -x "$f" ] || { echo "gcsoak: $f missing (make)" >&2; exit 2; }
done
[ -c /dev/fuse ] || { echo "gcsoak: no /dev/fuse" >&2; exit 2; }
command -v python3 >/dev/null || { echo "gcsoak: python3 missing" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/gcsoak.XXXXXX") || exit 2
STORE=$tmp/store MNT=$tmp/mnt
pid= wpid=
cleanup() {
	[ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null
	fusermount3 -u "$MNT" 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$MNT" && "$SNAPCTL" store init "$STORE" >/dev/null || exit 1
"$SNAPFS" "$STORE" "$MNT" -f 2>"$tmp/daemon.err" &
pid=$!
i=0
until grep -qs " $MNT fuse" /proc/self/mounts; do
	i=$((i + 1))
	[ $i -lt 100 ] && kill -0 "$pid" 2>/dev/null ||
		{ echo "gcsoak: snapfs did not mount" >&2; cat "$tmp/daemon.err" >&2; exit 1; }
	sleep 0.1
done
mkdir "$MNT/vm" || exit 1
head -c $((MB << 20)) /dev/urandom >"$MNT/vm/memory.bin" || exit 1

python3 - "$MNT/vm/memory.bin" "$RATE" "$SECONDS_" <<'PY' &
import mmap, os, random, sys, time
path, rate, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_RDWR)
size = os.fstat(fd).st_size
m = mmap.mmap(fd, size, mmap.MAP_SHARED)
pages = size // 4096
per_s = pages * rate // 100
r = random.Random(13)
end = time.time() + secs
while time.time() < end:
    t = time.time()
    data = os.urandom(per_s * 4096)
    for i in range(per_s):
        p = r.randrange(pages) * 4096
        m[p:p + 4096] = data[i * 4096:(i + 1) * 4096]
    m.flush()
    left = 1 - (time.time() - t)
    if left > 0:
        time.sleep(left)
m.close()
os.fsync(fd)
PY
wpid=$!

gc_line() { getfattr --only-values -n user.snapfs.gc "$MNT" 2>/dev/null; }
kept() { gc_line | sed -n 's/.*kept [0-9]* chunks (\([0-9]*\) bytes).*/\1/p'; }
maps() {
	for f in "$MNT"/vm/memory.bin "$MNT"/snap*/memory.bin; do
		getfattr --only-values -n user.snapfs.stored_bytes "$f" 2>/dev/null
		echo
	done | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

echo "gcsoak: ${MB} MiB file, ${RATE}% of its pages a second for ${SECONDS_} s, a snapshot every ${SNAP} s (the last 3 kept), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %14s %14s %7s %14s\n' "time s" "on disk B" "kept B" "ratio" "maps B"
t=0 n=0 rc=0
: >"$tmp/ratios"
while kill -0 "$wpid" 2>/dev/null; do
	sleep 10
	t=$((t + 10))
	if [ $((t % SNAP)) -eq 0 ]; then
		n=$((n + 1))
		cp -r "$MNT/vm" "$MNT/snap$n" || { echo "gcsoak: cp -r failed" >&2; rc=1; }
		[ $n -gt 3 ] && rm -r "$MNT/snap$((n - 3))"
	fi
	disk=$(du -sb --apparent-size "$STORE/chunks" | cut -f1)
	ref=$(kept)
	if [ -n "$ref" ] && [ "$ref" -gt 0 ]; then
		ratio=$(echo "$disk $ref" | awk '{ printf "%.2f", $1 / $2 }')
		echo "$ratio" >>"$tmp/ratios"
	else
		ref=- ratio=-
	fi
	held=$(maps)
	printf '%8s %14s %14s %7s %14s\n' "$t" "$disk" "$ref" "$ratio" "$held"
done
wait "$wpid" || { echo "gcsoak: the writer failed" >&2; rc=1; }
wpid=
echo "gcsoak: the daemon's last gc: $(gc_line)"
[ "$ref" != - ] && [ "${held:-0}" -gt 0 ] &&
	echo "$ref $held" | awk '{ printf "gcsoak: at the end, kept / maps %.2f\n", $1 / $2 }'
sort -n "$tmp/ratios" | awk '
	{ v[NR] = $1 }
	END {
		if (!NR) { print "gcsoak: no gc ran"; exit 1 }
		med = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "on disk / kept: median %.2f, max %.2f over %d samples; target <= 1.5x: %s\n",
		    med, v[NR], NR, v[NR] <= 1.5 ? "met" : "MISSED"
	}' || rc=1
exit $rc
