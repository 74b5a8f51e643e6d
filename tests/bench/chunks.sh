#!/bin/sh
# Chunk size and zstd level of the content-addressed memory store.
#
#   sh tests/bench/chunks.sh
#
# Builds tests/bench/chunkstudy.c into $BUILD/bench/ and runs it on a
# CHUNK_STUDY_MB MiB (default 1024) memory-like image it makes in RAM from
# zero pages, pages of this machine's ELF files and text files, and
# pseudo-random pages (the comment in chunkstudy.c says how). For chunks of
# 16 KiB, 64 KiB, 256 KiB and 1 MiB it prints: stored bytes and dedup;
# zstd levels -1, 1, 3, 6 (size, compress and decompress speed); the
# bytes each of 10 clones with 1% of its pages dirtied adds (scattered, or
# in runs of 16 pages); cold-chunk read latency for 4 KiB and 128 KiB; put
# and get throughput, per chunk and per image; per-chunk overheads.
# docs/store-chunks.md reads the numbers. It needs no /dev/kvm, no rig and
# nothing else built; about 2 minutes on an idle 2-core machine (more when
# it is shared) and 2.6 x CHUNK_STUDY_MB MiB of memory.
#
# Sizes are the same from run to run on one machine (fixed seed, same
# files); timings are single-threaded and move with the host's load. The
# zstd levels take turns chunk by chunk, and the whole-image table's chunk
# sizes region by region, so ratios within those tables hold under load;
# other timings of two chunk sizes were taken at different moments.
#
# Exit status: 0; 1 when the run failed; 2 when something is missing (a
# compiler, libzstd-dev or libssl-dev: `make deps`; or memory).
set -u
BUILD=${BUILD:-build}
CC=${CC:-gcc}
MB=${CHUNK_STUDY_MB:-1024}
OUT=$BUILD/bench

case $MB in
''|*[!0-9]*) echo "chunks: CHUNK_STUDY_MB=$MB: not a number of MiB" >&2
	exit 2 ;;
esac
command -v "$CC" >/dev/null || {
	echo "chunks: $CC missing (make deps installs build-essential)" >&2
	exit 2
}
printf '#include <zstd.h>\n#include <openssl/evp.h>\n' |
	"$CC" -E -x c - >/dev/null 2>&1 || {
	echo "chunks: zstd.h or openssl/evp.h missing (make deps installs" \
		"libzstd-dev and libssl-dev)" >&2
	exit 2
}
avail=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
need=$((MB * 3 + 256))
if [ -n "$avail" ] && [ "$avail" -lt $need ]; then
	echo "chunks: ${avail} MiB of memory available; a $MB MiB image" \
		"needs about $need (set CHUNK_STUDY_MB)" >&2
	exit 2
fi

mkdir -p "$OUT" || exit 2
"$CC" -std=gnu11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror \
	-o "$OUT/chunkstudy" tests/bench/chunkstudy.c -pthread -lzstd \
	-lcrypto || {
	echo "chunks: tests/bench/chunkstudy.c did not build" >&2
	exit 2
}

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
echo "chunks: $(nproc) cores ($cpu), Linux $(uname -r)," \
	"load $(cut -d' ' -f1-3 /proc/loadavg)"
"$OUT/chunkstudy" -m "$MB"
rc=$?
case $rc in
0) exit 0 ;;
2) echo "chunks: chunkstudy could not start (above)" >&2; exit 2 ;;
*) echo "chunks: chunkstudy failed (status $rc)" >&2; exit 1 ;;
esac
