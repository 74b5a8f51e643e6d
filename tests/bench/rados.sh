#!/bin/sh
# Chunks in Ceph RADOS against the directory backend, on throwaway
# single-node clusters (tests/lib/ceph.sh, memstore OSD).
#
#   sh tests/bench/rados.sh [-n RUNS]      (default 5)
#
# Each run starts a cluster (ms from ceph_start to a working write), then
# $BUILD/tests/chunkctl puts 1024 chunks of 64 KiB (random bytes) and
# reads them back: bare RADOS, RADOS behind the cache tier (cold: every
# read a fetch and a local copy; warm: every read local) and the
# directory backend (pack files) in a directory beside; then stops the
# cluster (ms). The table shows medians, min and max over the runs of
# each run's median call (µs), and ratios of the medians. The machine's
# other load moves every figure; compare ratios within one run of the
# script.
#
# Exit status: 0; 1 when a run failed; 2 when something is missing (the
# Ceph packages: sh tools/deps.sh; chunkctl: make build/tests/chunkctl).
set -u
BUILD=${BUILD:-build}
CHUNKCTL=$BUILD/tests/chunkctl
RUNS=5
N=1024
[ "${1:-}" = -n ] && RUNS=${2:-5}

. tests/lib/ceph.sh
if ! why=$(ceph_have); then
	echo "rados: $why" >&2
	exit 2
fi
[ -x "$CHUNKCTL" ] || { echo "rados: $CHUNKCTL missing (make $CHUNKCTL)" >&2; exit 2; }

tmp=$(mktemp -d /tmp/snapfs-bench-rados.XXXXXX) || exit 1
trap 'ceph_stop; rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM

now_ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }

# The p50 of "ok CMD N P50 MAX" on line $2 of file $1, or fail.
p50_of() {
	sed -n "$2p" "$1" | awk '$1 == "ok" { print $4; ok = 1 } END { exit !ok }'
}

one_run() {
	t0=$(now_ms)
	ceph_start "$tmp/ceph" || return 1
	start=$(($(now_ms) - t0))
	printf 'put %s\nget %s\nquit\n' $N $N |
		"$CHUNKCTL" rados "$CEPH_CONF" "$CEPH_POOL" bench >"$tmp/r" &&
	printf 'get %s\nget %s\nempty\nquit\n' $N $N |
		"$CHUNKCTL" rados "$CEPH_CONF" "$CEPH_POOL" bench \
		"$tmp/cache" $((N * 66000)) >"$tmp/c" || return 1
	rm -rf "$tmp/cache" "$tmp/dir" && mkdir "$tmp/dir"
	printf 'put %s\nget %s\nquit\n' $N $N |
		"$CHUNKCTL" dir "$tmp/dir" >"$tmp/d" || return 1
	t0=$(now_ms)
	ceph_stop || return 1
	stop=$(($(now_ms) - t0))
	echo "RUN $1 start $start stop $stop" \
	     "put $(p50_of "$tmp/r" 1) get $(p50_of "$tmp/r" 2)" \
	     "cold $(p50_of "$tmp/c" 1) warm $(p50_of "$tmp/c" 2)" \
	     "dirput $(p50_of "$tmp/d" 1) dirget $(p50_of "$tmp/d" 2)"
}

: >"$tmp/log"
for i in $(seq 1 "$RUNS"); do
	one_run "$i" >>"$tmp/log" || { echo "rados: run $i failed" >&2; exit 1; }
	rm -rf "$tmp/dir"
done

awk -v runs="$RUNS" -v n=$N '
function med(k,   a, i, j, t, m) {
	m = 0
	for (i = 1; i <= runs; i++) a[++m] = v[k, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++)
		if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	lo[k] = a[1]; hi[k] = a[m]
	return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
}
$1 == "RUN" { for (f = 3; f < NF; f += 2) v[$f, $2] = $(f + 1) }
END {
	printf "RADOS chunks, %d runs, %d chunks of 64 KiB a run (memstore OSD, 127.0.0.1)\n\n", runs, n
	printf "| figure | median | min | max |\n|---|---|---|---|\n"
	split("start stop put get cold warm dirput dirget", keys, " ")
	name["start"] = "cluster start to a working write, ms"
	name["stop"] = "cluster stop, ms"
	name["put"] = "RADOS put, µs"
	name["get"] = "RADOS get, µs"
	name["cold"] = "cache tier get, cold (fetch + copy), µs"
	name["warm"] = "cache tier get, warm (local copy), µs"
	name["dirput"] = "directory put (packs), µs"
	name["dirget"] = "directory get (packs), µs"
	for (i = 1; i <= 8; i++) {
		k = keys[i]; m[k] = med(k)
		printf "| %s | %s | %s | %s |\n", name[k], m[k], lo[k], hi[k]
	}
	printf "\nratios of medians: RADOS get / directory get %.2fx; warm cache / directory %.2fx; " \
	       "cold cache / RADOS get %.2fx; RADOS get / warm cache %.2fx\n",
	       m["get"] / m["dirget"], m["warm"] / m["dirget"],
	       m["cold"] / m["get"], m["get"] / m["warm"]
}' "$tmp/log"
