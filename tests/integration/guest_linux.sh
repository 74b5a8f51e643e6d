#!/bin/sh
# The Linux guest's images (make guest): the root disk is a clean ext4 with
# busybox, the agent, its init and the modules, every inode root's, sparse;
# the initrd holds the same pieces; both rebuild to the same bytes. Then
# Debian's kernel boots them in QEMU (TCG, with QEMU's virtio-pci devices,
# no KVM needed): the initrd alone as linux_rig.sh boots it (pci=off)
# ticks as before; with root=/dev/vda on virtio-blk (and virtio-rng) it
# switches to the disk, ticks, powers off, and the disk was mounted and is
# clean; root=/dev/vda without a disk fails with one line and a panic.
# Prints TAP.
set -u
BUILD=${BUILD:-build}
KERNEL=build/guest/vmlinuz
MODDIR=build/guest/modules
INITRD=$BUILD/guest/initrd.cpio.gz
ROOTFS=$BUILD/guest/rootfs.ext4
AGENT=$BUILD/guest/snapfs-agent
QEMU=${QEMU:-qemu-system-x86_64}
PATH=$PATH:/sbin:/usr/sbin
tmp=$(mktemp -d)
err=$tmp/err
trap 'rm -rf "$tmp"' EXIT
. tests/lib/tap.sh

need_built --skip "the Linux guest's images" "$KERNEL" "$MODDIR/guest.order" \
	"$INITRD" "$ROOTFS" "$AGENT"

# ---- the root disk ---------------------------------------------------------
dbg() { debugfs -R "$1" "$2" 2>/dev/null; }
check "rootfs.ext4: e2fsck -fn finds it clean" \
	'e2fsck -fn "$ROOTFS" >"$err" 2>&1'
dbg "stat /sbin/init" "$ROOTFS" >"$tmp/init.stat"
check "rootfs.ext4: /sbin/init is root's, mode 0755" \
	'grep -q "Type: regular *Mode: *0755" "$tmp/init.stat" &&
	 grep -q "User: *0 *Group: *0" "$tmp/init.stat"'
link=$(dbg "stat /bin/sh" "$ROOTFS" | sed -n 's/^Fast link dest: "\(.*\)"$/\1/p')
dbg "ls -l /bin" "$ROOTFS" >"$tmp/bin"
check "rootfs.ext4: /bin/sh is a link to busybox; busybox, snapfs-agent" \
	'[ "$link" = busybox ] && grep -q " busybox\$" "$tmp/bin" &&
	 grep -q " snapfs-agent\$" "$tmp/bin"'
dbg "cat /lib/modules/guest/order" "$ROOTFS" >"$tmp/order"
dbg "ls -l /lib/modules/guest" "$ROOTFS" >"$tmp/mods"
check "rootfs.ext4: the modules and their order" \
	'cmp -s "$tmp/order" "$MODDIR/guest.order" &&
	 (while read -r m; do grep -q " $m\$" "$tmp/mods" || exit 1; done) <"$tmp/order"'
for d in / /bin /sbin /lib /lib/snapfs /lib/modules/guest /etc; do
	dbg "ls -l $d" "$ROOTFS"
done | awk 'NF >= 6 && ($4 != 0 || $5 != 0)' >"$tmp/owners"
check "rootfs.ext4: every inode is owned by 0:0" \
	'[ ! -s "$tmp/owners" ] && [ "$(grep -c . "$tmp/mods")" -gt 10 ]'
kib=$(du -k "$ROOTFS" | cut -f1)
check "rootfs.ext4: 64 MiB, sparse ($kib KiB allocated)" \
	'[ "$(stat -c %s "$ROOTFS")" -eq 67108864 ] && [ "$kib" -lt 16384 ]'

# ---- the initrd --------------------------------------------------------------
gzip -dc "$INITRD" | cpio -it --quiet >"$tmp/list" 2>/dev/null
check "initrd: /init, busybox, the agent, guest.sh, the modules and order" \
	'(for f in init bin/busybox bin/snapfs-agent lib/snapfs/guest.sh \
		  lib/modules/guest/order $(sed "s|^|lib/modules/guest/|" "$MODDIR/guest.order"); do
		grep -qx "$f" "$tmp/list" || exit 1
	 done)'

# ---- reproducible ------------------------------------------------------------
check "the initrd and the root disk rebuild to the same bytes" \
	'sh tests/guest/mkinitrd.sh "$tmp/initrd" "$AGENT" "$MODDIR" 2>"$err" &&
	 sh tests/guest/mkrootfs.sh "$tmp/rootfs" "$AGENT" "$MODDIR" 2>>"$err" &&
	 cmp "$tmp/initrd" "$INITRD" >>"$err" 2>&1 &&
	 cmp "$tmp/rootfs" "$ROOTFS" >>"$err" 2>&1'

# ---- booted by QEMU ----------------------------------------------------------
need_built --skip "QEMU boots" "$QEMU"
# qemu OUT APPEND [ARGS...]: boot, console (without CRs) in OUT; 120 s at most.
qemu() {
	_out=$1 _append=$2
	shift 2
	timeout 120 "$QEMU" -accel tcg -cpu max -smp 1 -m 512 -nographic \
		-no-reboot -kernel "$KERNEL" -initrd "$INITRD" \
		-append "console=ttyS0 loglevel=5 panic=-1 $_append" "$@" \
		</dev/null 2>&1 | tr -d '\r' >"$_out"
}
ticks_then_poweroff() {
	grep -q "^snapfs-guest ready cpus=1\$" "$1" &&
		[ "$(grep -c '^tick [0-9]*$' "$1")" -eq "$2" ] &&
		grep -q "^snapfs-guest poweroff\$" "$1" &&
		! grep -Eq 'snapfs-guest error|Kernel panic|Call Trace' "$1"
}
show() { grep -a -v '^tick ' "$1" | tail -12 >"$err"; }

qemu "$tmp/c1" "acpi=off pci=off halt_after=5"
show "$tmp/c1"
check "QEMU, initrd only (pci=off): ready, ticks 0-4, poweroff" \
	'ticks_then_poweroff "$tmp/c1" 5'

cp "$ROOTFS" "$tmp/disk"
qemu "$tmp/c2" "root=/dev/vda halt_after=5" \
	-drive "file=$tmp/disk,if=virtio,format=raw" -device virtio-rng-pci
show "$tmp/c2"
check "QEMU, root=/dev/vda on virtio-blk: ready, ticks 0-4, poweroff" \
	'ticks_then_poweroff "$tmp/c2" 5'
dumpe2fs -h "$tmp/disk" 2>/dev/null >"$err"
check "the disk was mounted (mount count 1), and is clean after" \
	'grep -q "^Mount count: *1\$" "$err" && e2fsck -fn "$tmp/disk" >"$err" 2>&1'

qemu "$tmp/c3" "acpi=off pci=off root=/dev/vda"
show "$tmp/c3"
check "QEMU, root=/dev/vda and no disk: one error line, then a panic" \
	'grep -qx "snapfs-guest error: root /dev/vda: no such block device after 5 s" "$tmp/c3" &&
	 grep -q "Kernel panic" "$tmp/c3" && ! grep -q "^snapfs-guest ready" "$tmp/c3"'
tap_end
