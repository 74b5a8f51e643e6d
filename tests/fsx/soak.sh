#!/bin/sh
# make soak-fsx: snapfsx over real snapfs mounts for a long time. Runs
# SOAK_OPS operations in all (10^6 by default), shared among chunk sizes
# from 4 KiB to 1 MiB, each with a chunk cache of a few chunks and a
# background gc after every MiB of chunks written, one seed
# each (from SOAK_SEED, the clock by default), and prints a table: ops/s,
# remounts, kills, what the kills lost, and each run's result. A failed
# run leaves its store and the daemon's log in /tmp/snapfsx.* (the run's
# output says where) and its output in the table's directory; it does not
# stop the others. Exit status 1 when a run failed.
#
# Needs $BUILD/tests/snapfsx, $BUILD/snapfs, $BUILD/snapctl (BUILD
# defaults to build), /dev/fuse and fusermount3. Run from the top of the
# tree. SOAK_ARGS adds snapfsx options to every run.
set -u
BUILD=${BUILD:-build}
FSX=$BUILD/tests/snapfsx
SOAK_OPS=${SOAK_OPS:-1000000}
SOAK_SEED=${SOAK_SEED:-$(date +%s)}
SOAK_ARGS=${SOAK_ARGS:-}
export BUILD

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
	echo "soak-fsx: /dev/fuse or fusermount3 missing: nothing run" >&2
	exit 1
fi

# chunk size, chunk cache, a file's largest size
CONFIGS="4K:64K:256K 16K:256K:1M 64K:512K:1M 256K:1M:2M 1M:4M:4M"
nconf=$(echo "$CONFIGS" | wc -w)
per=$(( (SOAK_OPS + nconf - 1) / nconf ))
out=$(mktemp -d /tmp/soak-fsx.XXXXXX) || exit 1

printf '%-12s %-6s %-6s %-6s %9s %8s %7s %8s %6s %11s  %s\n' seed chunk \
	cache maxlen ops seconds ops/s remounts kills "kill lost" result
rc=0 total=0 secs=0 seed=$SOAK_SEED
for conf in $CONFIGS; do
	chunk=${conf%%:*} rest=${conf#*:}
	cache=${rest%%:*} maxlen=${rest#*:}
	log=$out/seed-$seed.log
	# shellcheck disable=SC2086	# SOAK_ARGS is words
	if "$FSX" --seed "$seed" --ops "$per" --chunk-size "$chunk" \
	   --cache-size "$cache" --maxlen "$maxlen" --gc-bytes 1M \
	   $SOAK_ARGS >"$log" 2>&1; then
		result=ok
	else
		result="FAILED: $log"
		rc=1
	fi
	line=$(grep -o '[0-9]* operations in [0-9.]* s, [0-9]* ops/s' "$log")
	ops=$(echo "$line" | awk '{ print $1 }')
	[ -z "$ops" ] && ops=$(sed -n 's/.*FAIL: seed [0-9]*, operation \([0-9]*\).*/at \1/p' "$log")
	s=$(echo "$line" | awk '{ print $4 }')
	rate=$(echo "$line" | awk '{ print $6 }')
	remounts=$(awk '$1 == "remount" { print $2 }' "$log")
	kills=$(awk '$1 == "crash" { print $2 }' "$log")
	lost=$(sed -n 's/.*kill -9: \([0-9]*\) unsynced.* \([0-9]*\) kept.*/\1\/\2/p' "$log")
	printf '%-12s %-6s %-6s %-6s %9s %8s %7s %8s %6s %11s  %s\n' "$seed" \
		"$chunk" "$cache" "$maxlen" "${ops:--}" "${s:--}" "${rate:--}" \
		"${remounts:--}" "${kills:--}" "${lost:--}" "$result"
	[ -n "$line" ] && total=$((total + ${line%% *}))
	[ -n "$s" ] && secs=$(awk -v a="$secs" -v b="$s" 'BEGIN { print a + b }')
	seed=$((seed + 1))
done
echo "total: $total operations in $secs s (kill lost: unsynced files" \
	"whose changes a kill -9 lost / kept; both allowed)"
if [ "$rc" -eq 0 ]; then
	rm -rf "$out"
else
	echo "outputs of the runs: $out"
fi
exit $rc
