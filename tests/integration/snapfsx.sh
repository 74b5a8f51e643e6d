#!/bin/sh
# snapfsx (tests/fsx) over real snapfs mounts, briefly: a few thousand
# random operations for each of three seeds and chunk sizes, one with a
# chunk cache of a few chunks and one with a background gc every 256 KiB
# written: writes, reads, truncates, mapped reads and writes (private and
# shared), copy_file_range, whole-file and cp -r clones, links, renames,
# unlinks, fsyncs, gc, remounts and kill -9 of the daemon, each checked
# against snapfsx's model; and the same seed giving the same operations
# twice. make soak-fsx is the long run.
# Prints TAP.
#
# Needs $BUILD/tests/snapfsx, $BUILD/snapfs and $BUILD/snapctl (BUILD
# defaults to build), /dev/fuse and fusermount3 (skipped without them);
# builds nothing. Run from the top of the tree. snapfsx starts and stops
# its daemons itself, by their pids, and unmounts even when it fails; with
# a sanitizer build it fails on a report in the daemon's log.
#
# The two snapfs bugs snapfsx found (tests/fsx/README.md) are fixed: no
# run steps around them (snapfsx's --avoid is kept for bisecting).
set -u
BUILD=${BUILD:-build}
FSX=$BUILD/tests/snapfsx
export BUILD

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
	echo "snapfsx.sh: /dev/fuse or fusermount3 missing: FUSE tests not run" >&2
	echo "1..0 # SKIP /dev/fuse or fusermount3 missing: FUSE tests not run"
	exit 0
fi
for prog in "$FSX" "$BUILD/snapfs" "$BUILD/snapctl"; do
	if [ ! -x "$prog" ]; then
		echo "1..1"
		echo "not ok 1 - $prog exists (build it first)"
		exit 1
	fi
done

work=$(mktemp -d /tmp/snapfsx-test.XXXXXX) || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM
. tests/lib/tap.sh
err=$work/out	# what not_ok shows under a failed case

# One run: its arguments after the seed; the summary's first line on
# success, snapfsx's output on failure.
fsx() {
	seed=$1
	shift
	# shellcheck disable=SC2086
	if timeout -s TERM 600 "$FSX" --seed "$seed" "$@" \
	   >"$work/out" 2>&1; then
		ok "seed $seed $*: $(grep -o '[0-9]* operations in .*ops/s' \
		    "$work/out")"
	else
		not_ok "seed $seed $*"
	fi
}

fsx 1 --ops 3000 --chunk-size 4K --cache-size 64K --maxlen 256K
fsx 2 --ops 3000 --chunk-size 64K --maxlen 1M
fsx 3 --ops 3000 --chunk-size 16K --cache-size 128K --maxlen 512K \
	--gc-bytes 256K

# Replayable: the same seed and options print the same operations.
for i in 1 2; do
	# shellcheck disable=SC2086
	"$FSX" --seed 42 --ops 400 -v --maxlen 128K \
		>"$work/replay.$i" 2>&1
	grep -E '^[0-9]+ ' "$work/replay.$i" >"$work/ops.$i"
done
{ diff "$work/ops.1" "$work/ops.2" && tail -n 3 "$work/replay.1"; } \
	>"$work/out" 2>&1
# shellcheck disable=SC2016	# check evaluates its test
check "seed 42 twice: the same 400 operations" \
	'[ "$(wc -l <"$work/ops.1")" -ge 400 ] &&
	 cmp -s "$work/ops.1" "$work/ops.2"'

tap_end
