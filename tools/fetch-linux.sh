#!/bin/sh
# Fetch Debian's stock x86-64 kernel for guests and for the test rig,
# without installing it: apt-get download + dpkg -x into OUTDIR.
#
#   OUTDIR/vmlinuz        the bzImage
#   OUTDIR/modules/*.ko   irqbypass ccp kvm kvm-amd fuse (for the rig)
#   OUTDIR/version        the package it came from
#
# Idempotent: does nothing when OUTDIR is complete.
set -eu
out=${1:?usage: fetch-linux.sh OUTDIR}
[ -f "$out/vmlinuz" ] && [ -f "$out/modules/kvm-amd.ko" ] && exit 0

pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
name=$(pkg)
if [ -z "$name" ]; then
	apt-get update -qq >/dev/null
	name=$(pkg)
fi
[ -n "$name" ] || { echo "fetch-linux: no linux-image-*-amd64 package found" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-linux: $name (apt-get download, unpacked with dpkg -x; not installed)"
(cd "$tmp" && apt-get download -q "$name" >/dev/null 2>&1) ||
	{ echo "fetch-linux: apt-get download $name failed" >&2; exit 1; }
dpkg -x "$tmp"/*.deb "$tmp/x"
mkdir -p "$out/modules"
cp "$tmp"/x/boot/vmlinuz-* "$out/vmlinuz.tmp"
kdir=$(echo "$tmp"/x/lib/modules/*/kernel)
for m in virt/lib/irqbypass.ko drivers/crypto/ccp/ccp.ko arch/x86/kvm/kvm.ko \
	 arch/x86/kvm/kvm-amd.ko fs/fuse/fuse.ko; do
	if [ -f "$kdir/$m" ]; then
		cp "$kdir/$m" "$out/modules/"
	elif [ -f "$kdir/$m.xz" ]; then
		xz -dc "$kdir/$m.xz" >"$out/modules/$(basename "$m")"
	fi
done
echo "$name" >"$out/version"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
