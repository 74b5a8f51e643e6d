#!/bin/sh
# Build the Linux guest's initrd: a gzip'd newc cpio holding Debian's static
# busybox and tools/guest/linux-init.sh as /init.
#
#   sh tools/guest/mkinitrd.sh OUT        (make guest: build/guest/initrd.cpio.gz)
#
# Reproducible: the same busybox and init give the same bytes (owners 0:0,
# every mtime SOURCE_DATE_EPOCH or 0, sorted names, renumbered inodes, no
# name or time in the gzip header). OUT is replaced atomically. /dev/console
# is not in it (a device node needs root): the kernel's built-in initramfs
# has one, and /init opens the console again from devtmpfs.
set -eu
out=${1:?usage: mkinitrd.sh OUT}
here=$(dirname "$0")
init=$here/linux-init.sh
busybox=${BUSYBOX:-/bin/busybox}
epoch=${SOURCE_DATE_EPOCH:-0}

for need in cpio gzip; do
	command -v "$need" >/dev/null ||
		{ echo "mkinitrd: $need missing (make deps installs it)" >&2; exit 1; }
done
[ -f "$init" ] || { echo "mkinitrd: $init missing" >&2; exit 1; }
[ -x "$busybox" ] ||
	{ echo "mkinitrd: $busybox missing (make deps installs busybox-static)" >&2; exit 1; }
case $(file -bL "$busybox" 2>/dev/null) in
*dynamically*) echo "mkinitrd: $busybox is not static (busybox-static expected)" >&2
	       exit 1 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys"
cp "$busybox" "$root/bin/busybox"
cp "$init" "$root/init"
chmod 0755 "$root/bin/busybox" "$root/init" "$root" "$root"/*
find "$root" -exec touch -h -d "@$epoch" {} +

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n >"$tmp/initrd"
mv "$tmp/initrd" "$out"
