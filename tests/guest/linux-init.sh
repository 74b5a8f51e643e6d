#!/bin/busybox sh
# /init of the Linux guest's initrd (tests/guest/mkinitrd.sh puts it there,
# beside a static busybox, the agent, the guest's modules and
# /lib/snapfs/guest.sh, from linux-lib.sh, which says what the console
# shows).
#
# With a virtio device on PCI, the modules are loaded first, in dependency
# order (/lib/modules/guest/order, from tools/fetch-linux.sh); without one
# (pci=off, no PCI bus) nothing needs them and the boot is as it was.
#
# root=DEV on the command line: waits up to 5 s for DEV, mounts it (ext4,
# read-write) and switch_root's to its /sbin/init (the root disk's, from
# tests/guest/rootfs-init.sh). A root that does not come is one line,
# "snapfs-guest error: root DEV: ...", and init's exit (a kernel panic).
# Without root=, the initrd goes on by itself: the agent when there is a
# vsock device, then ready and the ticks.
/bin/busybox --install -s /bin
export PATH=/bin
. /lib/snapfs/guest.sh

guest_mounts
# The kernel opened /dev/console (from its built-in initramfs) for us; open
# it again from devtmpfs in case that one was missing.
exec </dev/console >/dev/console 2>&1
guest_cmdline

load_modules() {
	grep -qs '^0x1af4$' /sys/bus/pci/devices/*/vendor || return 0
	while read -r m; do
		[ -f "/lib/modules/guest/$m" ] && insmod "/lib/modules/guest/$m"
	done </lib/modules/guest/order
}

root_failed() {
	echo "snapfs-guest error: root $root: $*"
	exit 1
}

switch_to_root() {
	i=0
	while [ ! -b "$root" ] && [ $i -lt 50 ]; do
		usleep 100000
		i=$((i + 1))
	done
	[ -b "$root" ] || root_failed "no such block device after 5 s"
	mkdir -p /newroot
	mount -t ext4 -o rw "$root" /newroot || root_failed "mount (ext4) failed"
	[ -x /newroot/sbin/init ] || root_failed "no /sbin/init on it"
	for d in dev proc sys; do
		mkdir -p "/newroot/$d"
		mount --move "/$d" "/newroot/$d"
	done
	exec switch_root /newroot /sbin/init
}

load_modules
[ -n "$root" ] && switch_to_root
guest_agent
guest_ticks
