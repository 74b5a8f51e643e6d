#!/bin/sh
# A thousand hosts on one RADOS store: cache hit rates, cluster load,
# metadata load and gc cost, from a model (tests/bench/scale_sim.py,
# python3, standard library only); docs/scale.md reads the numbers.
#
#   sh tests/bench/scale.sh                 # 10 and 100 hosts; ~20 s CPU
#   SCALE_FULL=1 sh tests/bench/scale.sh    # and 1000 hosts; ~60 s CPU
#   SCALE_ARGS="--seed 2 --zipf 0.8" sh tests/bench/scale.sh
#   SCALE_CEPH=1 sh tests/bench/scale.sh    # also measure a real names
#                                           # object (below)
#
# The model replays a trace of restores over many hosts, each with an LRU
# cache of chunk objects (the cache tier) in front of the shared store,
# for several chunk sizes, cache sizes, restore rates and host counts;
# simulates the version-asserted changes of the one "names" object; and
# counts what one gc lists and reads. It runs nothing of the store, and
# the same seed gives the same tables on any machine (the cpu s columns
# aside).
#
# With SCALE_CEPH=1 it also starts a throwaway single-node cluster
# (tests/lib/ceph.sh: memstore, in a temporary directory, stopped by its
# pids) and runs namesprobe (tests/bench/namesprobe.c, built into
# $BUILD/bench/; needs librados-dev) with 1, 2 and 4 clients: the rate of
# names changes one object took here, attempts per change, and lookups.
#
# Exit status: 0; 1 when a run failed; 2 when python3 (or, for
# SCALE_CEPH, ceph or a compiler) is missing.
set -u
BUILD=${BUILD:-build}
CC=${CC:-gcc}
command -v python3 >/dev/null || {
	echo "scale: python3 missing" >&2
	exit 2
}
here=$(dirname "$0")
quick=--quick
[ "${SCALE_FULL:-0}" = 1 ] && quick=
echo "scale: model, python $(python3 -c 'import platform; print(platform.python_version())')," \
	"$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
python3 "$here/scale_sim.py" $quick ${SCALE_ARGS:-} || {
	echo "scale: scale_sim.py failed" >&2
	exit 1
}
[ "${SCALE_CEPH:-0}" = 1 ] || exit 0

. "$here/../lib/ceph.sh"
ceph_have >&2 || exit 2
mkdir -p "$BUILD/bench" || exit 2
"$CC" -std=gnu11 -O2 -Wall -Wextra -Werror -o "$BUILD/bench/namesprobe" \
	"$here/namesprobe.c" -lrados || {
	echo "scale: tests/bench/namesprobe.c did not build" >&2
	exit 2
}
tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/scale.XXXXXX") || exit 2
trap 'ceph_stop; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
ceph_start "$tmp/ceph" || exit 1
echo
echo "A names object on this machine's single-node cluster (memstore," \
	"load $(cut -d' ' -f1-3 /proc/loadavg)): changes as" \
	"meta_rados_names.c makes them (omap read, then a write asserting" \
	"the version), from clients at once, 5 s each; then lookups"
echo
echo "| what | clients | ops/s | attempts per change | p50 ms | p99 ms |"
echo "|---|---|---|---|---|---|"
rc=0
for n in 1 2 4; do
	"$BUILD/bench/namesprobe" "$CEPH_CONF" "$CEPH_POOL" "$n" 5 \
		>>"$tmp/probe.out" || { rc=1; break; }
done
awk '$1 == "NAMES" {
	for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	row = sprintf("| %s | %s | %s | %s | %s | %s |", $2, v["clients"],
		v["ops_s"], ($2 == "change" ? v["attempts"] : "-"),
		v["p50_ms"], v["p99_ms"])
	if ($2 == "change") print row
	else if (!lookup) lookup = row
}
END { if (lookup) print lookup }' "$tmp/probe.out"
[ $rc = 0 ] || echo "scale: namesprobe failed" >&2
exit $rc
