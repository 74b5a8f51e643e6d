#!/bin/sh
# Fetch Debian's stock x86-64 kernel for guests and for the test rig,
# without installing it: apt-get download + dpkg -x into OUTDIR.
#
#   OUTDIR/vmlinuz              the bzImage
#   OUTDIR/modules/*.ko         irqbypass ccp kvm kvm-amd fuse, and
#                               failover net_failover virtio_net (its
#                               network, rig.sh --net), for the rig; and
#                               the Linux guest's modules (below)
#   OUTDIR/modules/guest.order  the guest's modules, one file name a line,
#                               in load order (each after its dependencies)
#   OUTDIR/version              the package it came from
#
# The guest's modules drive virtio-pci, virtio-blk, ext4, virtio-vsock and
# virtio-rng (tests/guest/README.md). Their dependencies come from the
# modules themselves (the depends= of .modinfo; the package has no
# modules.dep) and join the list; one that the kernel has built in is left
# out. crc32c_generic is named because ext4 and jbd2 only ask for it by
# alias (softdep crypto-crc32c), which insmod does not follow.
#
# Idempotent: does nothing when OUTDIR is complete (every module that
# guest.order names is there).
set -eu
out=${1:?usage: fetch-linux.sh OUTDIR}
GUEST_MODULES="virtio_pci virtio_blk crc32c_generic ext4
vmw_vsock_virtio_transport virtio-rng"

complete() {
	[ -f "$out/vmlinuz" ] && [ -f "$out/modules/kvm-amd.ko" ] &&
		[ -f "$out/modules/virtio_net.ko" ] &&
		[ -f "$out/modules/guest.order" ] || return 1
	while read -r m; do
		[ -f "$out/modules/$m" ] || return 1
	done <"$out/modules/guest.order"
}
complete && exit 0

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
command -v objcopy >/dev/null ||
	{ echo "fetch-linux: objcopy missing (make deps installs build-essential)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-linux: $name (apt-get download, unpacked with dpkg -x; not installed)"
(cd "$tmp" && apt-get download -q "$name" >/dev/null 2>&1) ||
	{ echo "fetch-linux: apt-get download $name failed" >&2; exit 1; }
dpkg -x "$tmp"/*.deb "$tmp/x"
mkdir -p "$out/modules" "$tmp/mod"
kdir=$(echo "$tmp"/x/lib/modules/*/kernel)

# Module files by module name (dashes in file names are underscores in
# module names), unpacked into $tmp/mod by `unpack NAME`, which prints the
# file's name there; false when the package has no such module file.
find "$kdir" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' | awk '{
	n = $0; sub(/.*\//, "", n); sub(/\.ko(\.[a-z]+)?$/, "", n)
	gsub("-", "_", n); print n, $0 }' >"$tmp/index"
sed 's|.*/||; s|\.ko$||' "$kdir/../modules.builtin" | tr - _ >"$tmp/builtin"
unpack() {
	src=$(awk -v n="$(echo "$1" | tr - _)" '$1 == n { print $2; exit }' "$tmp/index")
	[ -n "$src" ] || return 1
	base=$(basename "$src")
	case $src in
	*.xz) base=${base%.xz}; xz -dc "$src" >"$tmp/mod/$base" || return 1 ;;
	*.zst) base=${base%.zst}; zstd -qdc "$src" >"$tmp/mod/$base" || return 1 ;;
	*) cp "$src" "$tmp/mod/$base" ;;
	esac
	echo "$base"
}
depends() {
	objcopy -O binary --only-section=.modinfo "$tmp/mod/$1" "$tmp/modinfo" &&
		tr '\0' '\n' <"$tmp/modinfo" | sed -n 's/^depends=//p' | tr , ' '
}
# Depth first, each visit in a subshell (its own variables): a module's
# dependencies are written to $tmp/order before it.
: >"$tmp/order"
: >"$tmp/seen"
visit() (
	n=$(echo "$1" | tr - _)
	grep -qx "$n" "$tmp/seen" && return 0
	echo "$n" >>"$tmp/seen"
	if ! f=$(unpack "$n"); then
		grep -qx "$n" "$tmp/builtin" && return 0
		echo "fetch-linux: module $1 is not in $name" >&2
		return 1
	fi
	deps=$(depends "$f") || return 1
	for d in $deps; do
		visit "$d" || return 1
	done
	echo "$f" >>"$tmp/order"
)
for m in $GUEST_MODULES; do
	visit "$m" || exit 1
done

for m in irqbypass ccp kvm kvm-amd fuse failover net_failover virtio_net; do
	f=$(unpack "$m") && mv "$tmp/mod/$f" "$out/modules/"
done
while read -r f; do
	mv "$tmp/mod/$f" "$out/modules/"
done <"$tmp/order"
# Written last: a run that stopped before this one is done again.
echo "$name" >"$out/version"
cp "$tmp"/x/boot/vmlinuz-* "$out/vmlinuz.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
cp "$tmp/order" "$out/modules/guest.order.tmp"
mv "$out/modules/guest.order.tmp" "$out/modules/guest.order"
