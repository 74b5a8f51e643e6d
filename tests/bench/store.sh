#!/bin/sh
# The memory store (snapshot/store/store.h) against a plain file on one disk.
#
#   sh tests/bench/store.sh [STOREBENCH OPTION...]
#
# Builds tests/bench/storebench.c with $BUILD/libsnap.a into $BUILD/bench/
# and runs it on a new directory under $TMPDIR (default /var/tmp), removed
# at exit: import of a 1 GiB image (30% random, then 100% random) through
# snap_image_write + snap_image_sync beside write + fsync of a file;
# sequential and 4 KiB random reads, cold and warm, beside the same reads
# of the file; snap_image_clone of a 1 GiB and a 16 GiB image; stored
# bytes of 10 clones with 1% of their pages rewritten; "aged": the 30%
# image cloned AGED_ROUNDS times, newest from newest, with 0.1% of its
# pages rewritten each time, read (open, sequential, random, cold and
# warm) and counted (stored bytes) beside a flat image of the same final
# bytes. The comment at the top of storebench.c says how each is measured.
#
# Variables: BUILD (build), CC (gcc), BENCH_RUNS (5), STORE_MB (1024, the
# images' size), STORE_CHUNK (the store's default, SNAP_CHUNK_DEFAULT),
# STORE_ZSTD (the store's default level), AGED_ROUNDS (200; 0 skips the
# aged case). Options after the script's name go to storebench (the
# comment at its top lists them). 3 to 6 minutes on a 2-core machine,
# depending on what else runs there (the aged case adds about half a
# minute at the defaults), and 4 x STORE_MB
# MiB of memory; the store dir's disk needs about 6 x STORE_MB MiB. Cold
# reads need root to write /proc/sys/vm/drop_caches; without, the files
# are dropped one by one with posix_fadvise.
#
# Every run's numbers: $BUILD/bench/store.log ("BENCH ..." lines).
#
# Exit status: 0; 1 when a run failed; 2 when something is missing
# ($BUILD/libsnap.a: run make; a compiler or the libraries: make deps).
set -u
BUILD=${BUILD:-build}
CC=${CC:-gcc}
OUT=$BUILD/bench
MB=${STORE_MB:-1024}
PKGS="libprotobuf-c libzstd libcrypto"

[ -f "$BUILD/libsnap.a" ] || {
	echo "store: $BUILD/libsnap.a missing (run make)" >&2
	exit 2
}
command -v "$CC" >/dev/null || {
	echo "store: $CC missing (make deps installs build-essential)" >&2
	exit 2
}
# shellcheck disable=SC2086
libs=$(pkg-config --libs $PKGS 2>/dev/null) || {
	echo "store: pkg-config knows not all of $PKGS (make deps)" >&2
	exit 2
}
case $MB in
''|*[!0-9]*) echo "store: STORE_MB=$MB: not a number of MiB" >&2; exit 2 ;;
esac
AGED=${AGED_ROUNDS:-200}
case $AGED in
''|*[!0-9]*) echo "store: AGED_ROUNDS=$AGED: not a number" >&2; exit 2 ;;
esac
avail=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
if [ -n "$avail" ] && [ "$avail" -lt $((MB * 4 + 256)) ]; then
	echo "store: ${avail} MiB of memory available; STORE_MB=$MB needs" \
		"about $((MB * 4 + 256))" >&2
	exit 2
fi

mkdir -p "$OUT" || exit 2
# shellcheck disable=SC2086
cflags=$(pkg-config --cflags $PKGS)
# shellcheck disable=SC2086
"$CC" -std=gnu11 -O2 -g -D_GNU_SOURCE -Wall -Wextra -Werror \
	-I. -I"$BUILD" $cflags \
	-o "$OUT/storebench" tests/bench/storebench.c "$BUILD/libsnap.a" \
	$libs -lpthread || {
	echo "store: tests/bench/storebench.c did not build" >&2
	exit 2
}

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/store.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
free=$(df -Pk "$tmp" | awk 'NR == 2 { print int($4 / 1024) }')
if [ -n "$free" ] && [ "$free" -lt $((MB * 6)) ]; then
	echo "store: $free MiB free on $tmp's disk; STORE_MB=$MB needs" \
		"about $((MB * 6))" >&2
	exit 2
fi

set -- -d "$tmp" -f "$(stat -f -c %T "$tmp")" -s "$MB" \
	-n "${BENCH_RUNS:-5}" -a "$AGED" -l "$OUT/store.log" "$@"
[ -n "${STORE_CHUNK:-}" ] && set -- -c "$STORE_CHUNK" "$@"
if [ -n "${STORE_ZSTD:-}" ]; then
	set -- -z "$STORE_ZSTD" "$@"
else	# the level the store picks, for the first line
	z=$(sed -n 's/^#define ZSTD_DEFAULT[[:space:]]*\([0-9-]*\).*/\1/p' \
		snapshot/store/store.c)
	[ -n "$z" ] && set -- -Z "$z" "$@"
fi
"$OUT/storebench" "$@"
rc=$?
case $rc in
0) exit 0 ;;
2) echo "store: storebench could not start (above)" >&2; exit 2 ;;
*) echo "store: storebench failed (status $rc)" >&2; exit 1 ;;
esac
