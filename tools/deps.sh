#!/bin/sh
# Install the Debian packages snapfs needs, only those that are missing.
# Quiet when nothing is needed; idempotent. clang and libclang-rt-dev
# (libFuzzer and the sanitizers' runtimes, which clang only recommends)
# build the fuzz targets of tests/fuzz. ceph-mon and ceph-osd run the
# throwaway single-node cluster of tests/lib/ceph.sh; librados-dev builds
# the RADOS chunk backend.
set -eu

PACKAGES="build-essential pkg-config libfuse3-dev fuse3 protobuf-c-compiler
libprotobuf-c-dev libzstd-dev libssl-dev libcmocka-dev
qemu-system-x86 busybox-static cpio xz-utils attr e2fsprogs
clang libclang-rt-dev
ceph-mon ceph-osd librados-dev"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing (run 'make deps' as root)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
