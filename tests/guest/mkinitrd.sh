#!/bin/sh
# Build the Linux guest's initrd: a gzip'd newc cpio holding Debian's static
# busybox, tests/guest/linux-init.sh as /init, linux-lib.sh as
# /lib/snapfs/guest.sh, the agent as /bin/snapfs-agent and the guest's
# modules in /lib/modules/guest (with their load order, as order).
#
#   sh tests/guest/mkinitrd.sh OUT AGENT MODDIR
#
# make guest: OUT build/guest/initrd.cpio.gz, AGENT build/guest/snapfs-agent,
# MODDIR build/guest/modules (tools/fetch-linux.sh: guest.order and the
# modules it names).
#
# Reproducible: the same inputs give the same bytes (owners 0:0, every
# mtime SOURCE_DATE_EPOCH or 0, sorted names, renumbered inodes, no name or
# time in the gzip header). OUT is replaced atomically. /dev/console is not
# in it (a device node needs root): the kernel's built-in initramfs has
# one, and /init opens the console again from devtmpfs.
set -eu
out=${1:?usage: mkinitrd.sh OUT AGENT MODDIR}
agent=${2:?usage: mkinitrd.sh OUT AGENT MODDIR}
moddir=${3:?usage: mkinitrd.sh OUT AGENT MODDIR}
here=$(dirname "$0")
busybox=${BUSYBOX:-/bin/busybox}
epoch=${SOURCE_DATE_EPOCH:-0}

for need in cpio gzip; do
	command -v "$need" >/dev/null ||
		{ echo "mkinitrd: $need missing (make deps installs it)" >&2; exit 1; }
done
for f in "$here/linux-init.sh" "$here/linux-lib.sh" "$agent" \
	 "$moddir/guest.order"; do
	[ -f "$f" ] || { echo "mkinitrd: $f missing" >&2; exit 1; }
done
[ -x "$busybox" ] ||
	{ echo "mkinitrd: $busybox missing (make deps installs busybox-static)" >&2; exit 1; }
case $(file -bL "$busybox" 2>/dev/null) in
*dynamically*) echo "mkinitrd: $busybox is not static (busybox-static expected)" >&2
	       exit 1 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" \
	 "$root/lib/snapfs" "$root/lib/modules/guest"
cp "$busybox" "$root/bin/busybox"
cp "$agent" "$root/bin/snapfs-agent"
cp "$here/linux-init.sh" "$root/init"
cp "$here/linux-lib.sh" "$root/lib/snapfs/guest.sh"
while read -r m; do
	cp "$moddir/$m" "$root/lib/modules/guest/"
done <"$moddir/guest.order"
cp "$moddir/guest.order" "$root/lib/modules/guest/order"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root/bin/busybox" "$root/bin/snapfs-agent" "$root/init"
find "$root" -exec touch -h -d "@$epoch" {} +

mkdir -p "$(dirname "$out")"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n >"$tmp/initrd"
mv "$tmp/initrd" "$out"
