#!/bin/sh
# Build the Linux guest's root disk: an ext4 image holding Debian's static
# busybox (with its applets linked in /bin), the agent as /bin/snapfs-agent,
# tests/guest/rootfs-init.sh as /sbin/init, linux-lib.sh as
# /lib/snapfs/guest.sh and the guest's modules in /lib/modules/guest.
#
#   sh tests/guest/mkrootfs.sh OUT AGENT MODDIR [MIB]
#
# make guest: OUT build/guest/rootfs.ext4, AGENT build/guest/snapfs-agent,
# MODDIR build/guest/modules (tools/fetch-linux.sh), MIB 64. The initrd
# mounts it with root=/dev/vda (tests/guest/README.md).
#
# No root privileges: mke2fs -d copies the tree, debugfs then makes every
# inode root's and sets its times. Reproducible: the same inputs give the
# same bytes (fixed UUID and hash seed, every time SOURCE_DATE_EPOCH, or
# 1: libext2fs takes a fake time of 0 for none; mke2fs -d adds names in
# sorted order). Sparse: the file takes what mke2fs wrote (~6 MiB of
# metadata, journal and files). OUT is replaced atomically.
set -eu
usage="usage: mkrootfs.sh OUT AGENT MODDIR [MIB]"
out=${1:?$usage}
agent=${2:?$usage}
moddir=${3:?$usage}
mib=${4:-64}
here=$(dirname "$0")
busybox=${BUSYBOX:-/bin/busybox}
epoch=${SOURCE_DATE_EPOCH:-1}
[ "$epoch" -gt 0 ] || epoch=1
UUID=5e7f5000-0000-4000-8000-000000000001
HASH_SEED=5e7f5000-0000-4000-8000-000000000002

for need in mke2fs debugfs; do
	PATH=$PATH:/sbin:/usr/sbin command -v "$need" >/dev/null ||
		{ echo "mkrootfs: $need missing (make deps installs e2fsprogs)" >&2; exit 1; }
done
export PATH="$PATH:/sbin:/usr/sbin"
for f in "$here/rootfs-init.sh" "$here/linux-lib.sh" "$agent" \
	 "$moddir/guest.order"; do
	[ -f "$f" ] || { echo "mkrootfs: $f missing" >&2; exit 1; }
done
[ -x "$busybox" ] ||
	{ echo "mkrootfs: $busybox missing (make deps installs busybox-static)" >&2; exit 1; }
case $(file -bL "$busybox" 2>/dev/null) in
*dynamically*) echo "mkrootfs: $busybox is not static (busybox-static expected)" >&2
	       exit 1 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root
for d in bin sbin dev proc sys tmp run root mnt etc lib/snapfs lib/modules/guest; do
	mkdir -p "$root/$d"
done
cp "$busybox" "$root/bin/busybox"
for a in $("$busybox" --list); do
	[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
cp "$agent" "$root/bin/snapfs-agent"
cp "$here/rootfs-init.sh" "$root/sbin/init"
cp "$here/linux-lib.sh" "$root/lib/snapfs/guest.sh"
while read -r m; do
	cp "$moddir/$m" "$root/lib/modules/guest/"
done <"$moddir/guest.order"
cp "$moddir/guest.order" "$root/lib/modules/guest/order"
echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
echo "root:x:0:" >"$root/etc/group"
echo "snapfs-guest" >"$root/etc/hostname"
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root/bin/busybox" "$root/bin/snapfs-agent" "$root/sbin/init"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"
find "$root" -exec touch -h -d "@$epoch" {} +

# Owners and times: mke2fs -d copies the tree's (the builder's uid, the
# ctime of now), debugfs sets them, by path (the root is "/").
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort) | sed 's|^\.||' |
	while IFS= read -r p; do
		for field in uid gid; do
			echo "sif \"$p\" $field 0"
		done
		for field in atime ctime mtime crtime; do
			echo "sif \"$p\" $field @$epoch"
		done
	done >"$tmp/fix"
for field in atime ctime mtime crtime; do
	echo "sif / $field @$epoch"
	echo "sif /lost+found $field @$epoch"
done >>"$tmp/fix"

export E2FSPROGS_FAKE_TIME=$epoch LC_ALL=C
mke2fs -q -F -t ext4 -b 4096 -L snapfs-root -U "$UUID" \
	-O none,has_journal,ext_attr,dir_index,filetype,extent,flex_bg,sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum,64bit \
	-E root_owner=0:0,hash_seed=$HASH_SEED,lazy_itable_init=0 \
	-d "$root" "$tmp/img" "${mib}M" >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log" >&2; echo "mkrootfs: mke2fs failed" >&2; exit 1; }
debugfs -w -f "$tmp/fix" "$tmp/img" >"$tmp/log" 2>&1 ||
	{ cat "$tmp/log" >&2; echo "mkrootfs: debugfs failed" >&2; exit 1; }
if grep -v '^debugfs' "$tmp/log" | grep -q .; then
	grep -v '^debugfs' "$tmp/log" | head -5 >&2
	echo "mkrootfs: debugfs could not set owners and times" >&2
	exit 1
fi

mkdir -p "$(dirname "$out")"
cp --sparse=always "$tmp/img" "$out.tmp"
mv "$out.tmp" "$out"
