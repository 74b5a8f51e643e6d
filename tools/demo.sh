#!/bin/sh
# make demo: what snapfs does today, for real, on this machine.
# Everything happens in a temporary directory that is removed at the end;
# a mount made here is unmounted and its daemon stopped even on failure.
set -u
BUILD=${BUILD:-build}
work=$(mktemp -d /tmp/snapfs-demo.XXXXXX)
store=$work/store mnt=$work/mnt fs_pid=
timings=$work/timings
failed=0

cleanup() {
	if [ -n "$fs_pid" ]; then
		fusermount3 -u "$mnt" 2>/dev/null || fusermount3 -uz "$mnt" 2>/dev/null
		kill "$fs_pid" 2>/dev/null
		wait "$fs_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
. tests/lib/where.sh

now() { date +%s%N; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# step NAME CMD...: run, show its output, record how long it took
step() {
	name=$1
	shift
	printf '$ %s\n' "$*"
	t0=$(now)
	"$@"
	rc=$?
	t1=$(now)
	us=$(( (t1 - t0) / 1000 ))
	printf '%-44s %6d.%03d ms  %s\n' "$name" $((us / 1000)) $((us % 1000)) \
		"$([ $rc -eq 0 ] && echo ok || echo "exit $rc")" >>"$timings"
	[ $rc -eq 0 ] || failed=1
	return $rc
}
expect_fail() { ! "$@"; }

mkdir -p "$store" "$mnt"

say "1. does this host's KVM have what snapvm needs?"
# A host without KVM is not a failure of the demo: the rig stands in.
step "snapvm check" "$BUILD/snapvm" check || {
	echo "(no usable KVM here: saving and restoring guests needs one)"
	failed=0
}

say "2. a snapshot directory (a sample with every state field set)"
step "write a 2-vCPU, 256 MiB sample snapshot" \
	"$BUILD/tests/mksnap" "$store/base" --vcpus 2 --mem $((256 << 20)) --seed 7 --digest
ls -ls "$store/base"

say "3. inspect it"
step "snapctl inspect" "$BUILD/snapctl" inspect "$store/base"

say "4. verify it: every field, every digest (256 MiB of memory included)"
step "snapctl verify (with memory digest)" "$BUILD/snapctl" verify "$store/base"

say "5. damage a copy: one flipped byte in state.bin is caught"
cp -r "$store/base" "$store/damaged"
printf '\377' | dd of="$store/damaged/state.bin" bs=1 seek=1000 conv=notrunc status=none
step "snapctl verify of the damaged copy fails" expect_fail \
	"$BUILD/snapctl" verify "$store/damaged"
rm -rf "$store/damaged"

say "6. a snapshot written by an earlier revision still loads"
step "snapctl verify tests/compat/2026-11-v1-sample" \
	"$BUILD/snapctl" verify tests/compat/2026-11-v1-sample

say "7. a store: import, mount, browse, clone with cp -r"
if [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; then
	step "snapctl store init" "$BUILD/snapctl" store init "$work/mem"
	step "snapctl import (256 MiB sample)" \
		"$BUILD/snapctl" import "$store/base" "$work/mem" base
	"$BUILD/snapfs" "$work/mem" "$mnt" -f 2>"$work/snapfs.log" &
	fs_pid=$!
	i=0
	while ! mountpoint -q "$mnt" && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	step "ls -l through the mount" ls -l "$mnt" "$mnt/base"
	step "cp -r clone of a 256 MiB snapshot" cp -r "$mnt/base" "$mnt/clone"
	step "snapctl verify the clone (memory digest)" \
		"$BUILD/snapctl" verify "$mnt/clone"
	step "cmp memory.bin through the mount" \
		cmp "$mnt/clone/memory.bin" "$store/base/memory.bin"
	fusermount3 -u "$mnt" && wait "$fs_pid"
	fs_pid=
	step "snapctl store stats" "$BUILD/snapctl" store stats "$work/mem"
else
	echo "/dev/fuse or fusermount3 missing: snapfs mount NOT shown" >&2
fi

say "8. a real guest's day: RAM in the mount, snapshots, cp -r, restore"
# Only a hardware KVM runs the guests: a PVM-based one (kvm_pvm) does not
# (kvm_here, tests/lib/where.sh).
if kvm_here; then
	step "a user's day on the test guest (tools/demo-guest.sh)" \
		env SNAPVM="$BUILD/snapvm" SNAPCTL="$BUILD/snapctl" \
		SNAPFS="$BUILD/snapfs" GUEST="$BUILD/guest/testguest.elf" \
		sh tools/demo-guest.sh
elif [ -f "$BUILD/guest/vmlinuz" ]; then
	echo "(no hardware KVM here: in the rig, a QEMU TCG machine with a real"
	echo " nested KVM, where everything is many times slower than on hardware)"
	step "a user's day on the test guest, in the rig" \
		env RIG_PROGS="$BUILD/snapfs cp" sh tests/rig/rig.sh tools/demo-guest.sh
else
	echo "no /dev/kvm and no rig kernel (make guest): real guest NOT shown" >&2
fi

say "9. a Linux VM that does real work: root disk, host channel, cloned whole"
if kvm_here; then
	step "Linux with a disk, snapshot, cp -r, restore (tools/demo-linux.sh)" \
		env SNAPVM="$BUILD/snapvm" SNAPCTL="$BUILD/snapctl" \
		SNAPFS="$BUILD/snapfs" AGENT="$BUILD/guest/snapfs-agent" \
		KERNEL=build/guest/vmlinuz INITRD="$BUILD/guest/initrd.cpio.gz" \
		ROOTFS="$BUILD/guest/rootfs.ext4" sh tools/demo-linux.sh
elif [ -f build/guest/vmlinuz ] && [ -f "$BUILD/guest/rootfs.ext4" ]; then
	echo "(Debian's kernel needs a hardware KVM: in the rig, where it is many"
	echo " times slower than on hardware)"
	{ echo "CMDLINE_EXTRA=noxsave"; cat tools/demo-linux.sh; } >"$work/demo-linux.sh"
	step "Linux with a disk, snapshot, cp -r, restore, in the rig" \
		env RIG_PROGS="$BUILD/snapfs cp sha256sum" RIG_TIMEOUT=600 \
		sh tests/rig/rig.sh --smp 1 "$work/demo-linux.sh" build/guest/vmlinuz \
		"$BUILD/guest/initrd.cpio.gz" "$BUILD/guest/rootfs.ext4" \
		"$BUILD/guest/snapfs-agent"
else
	echo "no hardware KVM and no rig kernel (make guest): Linux NOT shown" >&2
fi

say "what each step took"
cat "$timings"
[ $failed -eq 0 ] || { echo "demo: a step failed (see above)" >&2; exit 1; }
