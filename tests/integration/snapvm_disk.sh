#!/bin/sh
# A Linux VM with a disk, saved, restored and cloned with it.
#
# Debian's kernel boots the guest initrd, which switches to the ext4 root
# disk (make guest: rootfs.ext4) on virtio-blk and starts the agent on
# vsock (tests/guest/agent); the host drives the guest with snapfs-agent.
# Checked:
#   - the root is /dev/vda, ext4, and the agent answers;
#   - a file written and fsync'ed by the guest is in the snapshot's
#     disk0.img, which is clean for e2fsck -fn once its journal is
#     replayed (a crash-consistent copy);
#   - a snapshot taken while the guest writes in a loop restores (disk
#     cloned into --disk-dir) with the loop going on, and its disk copy
#     checks clean;
#   - in a snapfs mount: cp -r of a snapshot, then base and clone restored
#     side by side (disks cloned into the mount), each writes its own file
#     and sees only its own; the snapshot's disk is unchanged;
#   - a snapshot of the restored clone restores again, with its file;
#   - a snapshot whose disk file is missing, of the wrong size or with a
#     flipped byte is refused with one line, before any vCPU runs, and
#     the copies a refused restore made are gone.
# Prints TAP. Runs where there is a hardware KVM, otherwise in the rig.
set -u
BUILD=${BUILD:-build}
KERNEL=${LINUX_KERNEL:-build/guest/vmlinuz}
INITRD=$BUILD/guest/initrd.cpio.gz
ROOTFS=$BUILD/guest/rootfs.ext4
AGENT=$BUILD/guest/snapfs-agent
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/lib/tap.sh
. tests/lib/where.sh

# In the rig only: noxsave (see linux_rig.sh).
CMDLINE="console=ttyS0 loglevel=5 panic=-1 root=/dev/vda"
kvm_here || CMDLINE="$CMDLINE noxsave"

cat >"$tmp/disk_kvm.sh" <<'KVM'
. "$(dirname "$0")/kvm.sh"
AGENTC=./snapfs-agent
CP=cp
[ -x ./cp ] && CP=./cp	# coreutils' (copy_file_range), not busybox's
M=$T/mnt
pid2=
ag() { "$AGENTC" exec --socket "$1" --wait 30 -- "$2"; }
stop2() {
	[ -n "$pid2" ] || return 0
	kill -TERM "$pid2" 2>/dev/null; wait "$pid2" 2>/dev/null; pid2=
}
cleanup() { [ -n "$pid" ] && stop; stop2; fs_unmount; }
trap cleanup EXIT
# fsck_copy IMG: e2fsck -fn of a copy after its journal is replayed.
fsck_copy() {
	cp "$1" "$T/fsck.img" &&
	{ ./e2fsck -fy "$T/fsck.img" >"$T/fsck.log" 2>&1; [ $? -le 1 ]; } &&
	./e2fsck -fn "$T/fsck.img" >>"$T/fsck.log" 2>&1
}
disk_cat() { ./debugfs -R "cat $2" "$1" 2>/dev/null; }
sum() { sha256sum "$1" | cut -d' ' -f1; }

# ---- boot with the root on virtio-blk --------------------------------------
cp ./rootfs.ext4 "$T/root.img"
start run --kernel ./vmlinuz --initrd ./initrd.cpio.gz --mem 256M \
	--cmdline "$CMDLINE" --disk "$T/root.img" --rng \
	--vsock "$T/v0" --control "$T/c0"
wait_for "$T/out" "^snapfs-guest ready" 1 120
check "Linux boots with its root on virtio-blk" \
	'[ "$(ag "$T/v0" "grep \" / \" /proc/mounts" | cut -d" " -f1-3)" = "/dev/vda / ext4" ]'
check "the agent answers on vsock with the command's status" \
	'ag "$T/v0" "exit 7"; [ $? -eq 7 ]'

# ---- an fsync'ed file is in the snapshot's disk ----------------------------
ag "$T/v0" "echo fsynced-1 >/one && sync /one" >/dev/null
r=$("$SNAPVM" ctl "$T/c0" snapshot "$T/s1")
check "snapshot with a disk: ok" 'echo "$r" | grep -q "^ok snapshot"'
check "the manifest needs virtio-blk" 'grep -q virtio-blk "$T/s1/manifest.bin"'
check "a file the guest fsync'ed is in disk0.img" \
	'fsck_copy "$T/s1/disk0.img" && [ "$(disk_cat "$T/fsck.img" /one)" = fsynced-1 ]'

# ---- a snapshot while the guest writes in a loop ---------------------------
ag "$T/v0" "(i=0; while [ ! -e /stop ]; do echo \$i >/loop.tmp; mv /loop.tmp /loop; i=\$((i+1)); done) >/dev/null 2>&1 &" >/dev/null
sleep 1
r=$("$SNAPVM" ctl "$T/c0" snapshot "$T/s2")
check "snapshot while the guest writes in a loop" 'echo "$r" | grep -q "^ok snapshot"'
check "its disk copy is clean for e2fsck -fn (journal replayed)" 'fsck_copy "$T/s2/disk0.img"'
s2sum=$(sum "$T/s2/disk0.img")
"$SNAPVM" ctl "$T/c0" quit >/dev/null; finish
mkdir "$T/d2"
start restore "$T/s2" --disk-dir "$T/d2" --vsock "$T/v2" --control "$T/c2"
a=$(ag "$T/v2" "cat /loop"); sleep 1; b=$(ag "$T/v2" "cat /loop")
check "restored: the loop goes on (/loop $a, then $b)" \
	'[ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ]'
check "restored: the fsync'ed file is there" '[ "$(ag "$T/v2" "cat /one")" = fsynced-1 ]'
ag "$T/v2" "touch /stop; sleep 1; sync" >/dev/null
"$SNAPVM" ctl "$T/c2" quit >/dev/null; finish
check "the restored VM's disk checks clean" 'fsck_copy "$T/d2/disk0.img"'
check "the snapshot's disk did not change" '[ "$(sum "$T/s2/disk0.img")" = "$s2sum" ]'

# ---- in the mount: cp -r, base and clone side by side ----------------------
mkdir -p "$T/store" "$M"
./snapctl store init "$T/store" >/dev/null
fs_mount "$T/store" "$M"
start restore "$T/s1" --disk-dir "$T/d1" --vsock "$T/v1" --control "$T/c1"
finish
check "restore without an existing --disk-dir is refused" 'one_line "snapvm: "'
mkdir "$T/d1"
start restore "$T/s1" --disk-dir "$T/d1" --vsock "$T/v1" --control "$T/c1"
ag "$T/v1" "true" >/dev/null
r=$("$SNAPVM" ctl "$T/c1" snapshot "$M/base")
check "snapshot into the mount" 'echo "$r" | grep -q "^ok snapshot"'
"$SNAPVM" ctl "$T/c1" quit >/dev/null; finish
before=$(sum "$M/base/disk0.img")
t0=$(date +%s%N 2>/dev/null)
check "cp -r of the snapshot in the mount" '"$CP" -r "$M/base" "$M/clone"'
mkdir "$M/base-disks" "$M/clone-disks"
start restore "$M/base" --disk-dir "$M/base-disks" --vsock "$T/vb" --control "$T/cb"
"$SNAPVM" restore "$M/clone" --disk-dir "$M/clone-disks" --vsock "$T/vc" \
	--control "$T/cc" </dev/null >"$T/out2" 2>"$T/err2" & pid2=$!
ag "$T/vb" "echo base >/who-base; sync" >/dev/null
ag "$T/vc" "echo clone >/who-clone; sync" >/dev/null
check "base sees its file and not the clone's" \
	'[ "$(ag "$T/vb" "cat /who-base; ls /who-clone 2>&1 >/dev/null | wc -l")" = "base
1" ]'
check "clone sees its file and not the base's" \
	'[ "$(ag "$T/vc" "cat /who-clone; ls /who-base 2>&1 >/dev/null | wc -l")" = "clone
1" ]'
r=$("$SNAPVM" ctl "$T/cc" snapshot "$M/clone2")
check "snapshot of the restored clone" 'echo "$r" | grep -q "^ok snapshot"'
"$SNAPVM" ctl "$T/cb" quit >/dev/null; finish
"$SNAPVM" ctl "$T/cc" quit >/dev/null; wait "$pid2"; pid2=
check "the snapshot's disk is unchanged by both" \
	'[ "$(sum "$M/base/disk0.img")" = "$before" ] && [ "$(sum "$M/clone/disk0.img")" = "$before" ]'
mkdir "$M/clone2-disks"
start restore "$M/clone2" --disk-dir "$M/clone2-disks" --vsock "$T/v3" --control "$T/c3"
check "the clone's snapshot restores again, with its file" \
	'[ "$(ag "$T/v3" "cat /who-clone; ls /who-base 2>/dev/null | wc -l")" = "clone
0" ]'
"$SNAPVM" ctl "$T/c3" quit >/dev/null; finish

# ---- broken disks are refused before any vCPU runs ------------------------
refused() {	# DIR WHAT: one line naming disk0.img, status 1, no copy left
	rm -rf "$T/dx"; mkdir "$T/dx"
	start restore "$1" --disk-dir "$T/dx" --vsock "$T/vx"; finish
	one_line "snapvm: " && grep -q "disk0.img" "$T/err" &&
		! grep -q "." "$T/out" && [ -z "$(ls "$T/dx")" ]
}
rm -rf "$T/s2" "$T/d2" "$T/d1"	# room in the rig's tmpfs
for what in missing size digest; do	# s1 with a bad disk: links, one copy
	mkdir "$T/bad-$what"
	ln "$T/s1/manifest.bin" "$T/s1/state.bin" "$T/s1/memory.bin" "$T/bad-$what/"
done
"$CP" "$T/s1/disk0.img" "$T/bad-size/"
sz=$(wc -c <"$T/s1/disk0.img")
truncate -s $((sz - 512)) "$T/bad-size/disk0.img"
"$CP" "$T/s1/disk0.img" "$T/bad-digest/"
printf 'X' | dd of="$T/bad-digest/disk0.img" bs=1 seek=70000 conv=notrunc 2>/dev/null
check "a missing disk file is refused in one line" 'refused "$T/bad-missing"'
check "a disk of the wrong size is refused in one line" 'refused "$T/bad-size"'
check "a disk with a flipped byte is refused in one line" 'refused "$T/bad-digest"'
fs_unmount
res "# end"
KVM

need_built --skip "a Linux VM with a disk" "$BUILD/snapvm" "$BUILD/snapfs" \
	"$BUILD/snapctl" "$KERNEL" "$INITRD" "$ROOTFS" "$AGENT"
{ printf "CMDLINE='%s'\n" "$CMDLINE"; cat "$tmp/disk_kvm.sh"; } >"$tmp/disk_rig.sh"
clock0=$(date +%s)
kvm_or_rig --progs "$BUILD/snapfs cp e2fsck debugfs sha256sum truncate" \
	"a Linux VM with a disk" "$tmp/disk_rig.sh" "$tmp/kvm.log" \
	"$KERNEL" "$INITRD" "$ROOTFS" "$AGENT"
rig_results "$tmp/kvm.log"
echo "# wall time: $(($(date +%s) - clock0)) s"
tap_end
