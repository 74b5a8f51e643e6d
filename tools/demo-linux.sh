#!/bin/sh
# make demo, a Linux VM that does real work: Debian's kernel with its ext4
# root on virtio-blk, driven from the host through the agent on vsock;
# snapshotted into a snapfs mount with its disk, cloned whole with cp -r,
# and the clone restored beside the snapshot, which it never changes.
# Runs where a hardware KVM is, or inside the rig, with its programs and
# images in the current directory (the rig's /rig) or named by SNAPVM,
# SNAPCTL, SNAPFS, AGENT, KERNEL, INITRD, ROOTFS; CMDLINE_EXTRA adds to the
# kernel's command line. Everything lives in a temporary directory; the
# daemon and the VMs are stopped by their pids and the mount removed, even
# on failure.
set -u
SNAPVM=${SNAPVM:-./snapvm} SNAPCTL=${SNAPCTL:-./snapctl}
SNAPFS=${SNAPFS:-./snapfs} AGENT=${AGENT:-./snapfs-agent}
KERNEL=${KERNEL:-./vmlinuz} INITRD=${INITRD:-./initrd.cpio.gz}
ROOTFS=${ROOTFS:-./rootfs.ext4}
CP=${CP:-cp}
[ -x ./cp ] && CP=./cp	# coreutils' cp: copy_file_range, so cp -r clones
d=$(mktemp -d /tmp/snapfs-linux.XXXXXX)
M=$d/snaps
pid= fspid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	if [ -n "$fspid" ]; then
		kill "$fspid" 2>/dev/null; wait "$fspid" 2>/dev/null
	fi
	grep -q " $M fuse" /proc/mounts &&
		{ fusermount3 -u "$M" 2>/dev/null || umount -l "$M"; }
	rm -rf "$d"
}
trap cleanup EXIT INT TERM
say() { printf '\n== %s\n' "$*"; }
now() { awk '{ printf "%d", $1 * 1000 }' /proc/uptime; }
t0=0
begin() { printf '$ %s\n' "$*"; t0=$(now); }
took() { printf '%-46s %8s ms\n' "$1" "$(( $(now) - t0 ))" >>"$d/table"; }
fail() { echo "demo: $*" >&2; exit 1; }
in_vm() {	# SOCKET CMD: run CMD in the guest, show what it printed
	"$AGENT" exec --socket "$1" --wait 60 -- "$2"
}

say "mount a store"
"$SNAPCTL" store init "$d/store" >/dev/null
mkdir "$M"
"$SNAPFS" "$d/store" "$M" -f 2>"$d/snapfs.err" & fspid=$!
i=0
until grep -q " $M fuse" /proc/mounts || [ $i -ge 100 ]; do sleep 0.05; i=$((i + 1)); done
grep -q " $M fuse" /proc/mounts || fail "snapfs did not mount"

say "boot Linux with its root disk in the mount, a host channel and randomness"
mkdir "$M/vm1"
"$CP" "$ROOTFS" "$M/vm1/root.img"
begin "snapvm run --kernel vmlinuz --initrd initrd.cpio.gz --cmdline 'console=ttyS0 root=/dev/vda' --disk snaps/vm1/root.img --vsock vm1.vsock --rng --control vm1.sock &"
"$SNAPVM" run --kernel "$KERNEL" --initrd "$INITRD" --mem 256M \
	--cmdline "console=ttyS0 loglevel=3 root=/dev/vda ${CMDLINE_EXTRA:-}" \
	--disk "$M/vm1/root.img" --vsock "$d/vm1.vsock" --rng \
	--control "$d/vm1.sock" </dev/null >"$d/vm1.out" 2>&1 &
pid=$!
in_vm "$d/vm1.vsock" "true" || fail "the guest's agent did not answer"
took "boot to the agent answering"
begin "snapfs-agent exec --socket vm1.vsock -- 'uname -r; grep \" / \" /proc/mounts; date'"
in_vm "$d/vm1.vsock" 'uname -r; grep " / " /proc/mounts; date'
took "a command in the guest"
in_vm "$d/vm1.vsock" 'echo "written on the base VM at $(date)" >/hello; sync /hello'

say "snapshot it, disk and all, into the mount"
begin "snapvm ctl vm1.sock snapshot snaps/monday"
"$SNAPVM" ctl "$d/vm1.sock" snapshot "$M/monday" || fail "snapshot failed"
took "snapshot with its disk into the mount"
ls -l "$M/monday"
"$SNAPVM" ctl "$d/vm1.sock" quit >/dev/null
wait "$pid"; pid=

say "clone the whole VM with cp -r (memory and disk share their chunks)"
begin "cp -r snaps/monday snaps/clone1"
"$CP" -r "$M/monday" "$M/clone1" || fail "cp -r failed"
took "cp -r of a VM with a 64 MiB disk"

say "restore the clone; its disk writes go to its own copy in the mount"
mkdir "$M/clone1-disks"
begin "snapvm restore snaps/clone1 --disk-dir snaps/clone1-disks --vsock clone1.vsock &"
"$SNAPVM" restore "$M/clone1" --disk-dir "$M/clone1-disks" \
	--vsock "$d/clone1.vsock" --trust-disks </dev/null >"$d/clone1.out" 2>&1 &
pid=$!
in_vm "$d/clone1.vsock" "true" || fail "the clone's agent did not answer"
took "restore to the clone's agent answering"
in_vm "$d/clone1.vsock" 'cat /hello; echo "the clone was here" >/clone; sync /clone; ls /'
kill "$pid"; wait "$pid" 2>/dev/null; pid=
before=$(sha256sum "$M/monday/disk0.img" | cut -d' ' -f1)
after=$(sha256sum "$M/clone1/disk0.img" | cut -d' ' -f1)
[ "$before" = "$after" ] || fail "the snapshot's disk changed"
echo "monday's disk and clone1's are still the same bytes: the clone wrote into clone1-disks/disk0.img"

say "what the store holds"
kill "$fspid"; wait "$fspid" 2>/dev/null; fspid=
"$SNAPCTL" store ls "$d/store"
"$SNAPCTL" store stats "$d/store" | grep -E "logical|stored|dedup|overall"

say "what each step took"
cat "$d/table"
