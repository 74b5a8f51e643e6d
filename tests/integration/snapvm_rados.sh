#!/bin/sh
# A VM saved through one host and restored through another, over one
# store in Ceph RADOS (a throwaway single-node cluster this script starts,
# tests/lib/ceph.sh, and stops by its pids). Host A mounts the store,
# runs the test guest and saves it into the mount while it runs, then
# goes away; host B mounts the same store read-only with a local chunk
# cache, finds the snapshot's files byte for byte as A wrote them, and
# restores the guest straight from its mount: it goes on from the saved
# tick and every CPU's checks of its own memory pass. Prints TAP.
#
# Where a hardware KVM and /dev/fuse are, A and B are two runs here, and
# the cluster is on 127.0.0.1. Otherwise A and B are two boots of the rig
# (tests/rig/rig.sh --net: each its own kernel, reaching the cluster
# through QEMU's user network); the cluster then binds CEPH_ADDR
# (192.0.2.1, a documentation address this script puts on lo and removes
# after), which both the rigs and this host reach. Skipped loudly without
# the Ceph packages, or when that address cannot be added.
set -u
BUILD=${BUILD:-build}
GUEST=$BUILD/guest/testguest.elf
tmp=$(mktemp -d)
. tests/lib/tap.sh
. tests/lib/where.sh
. tests/lib/ceph.sh
added=
cleanup() {
	ceph_stop
	[ -z "$added" ] || ip addr del "$CEPH_ADDR/32" dev lo 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

what="a VM across two hosts over RADOS"
why=$(ceph_have) || skip_rest "$what" "$why"
need_built --skip "$what" "$BUILD/snapvm" "$BUILD/snapfs" "$BUILD/snapctl" \
	"$GUEST"
if ! kvm_here --fuse; then
	CEPH_ADDR=192.0.2.1
	if ! ip -o addr show dev lo | grep -q " $CEPH_ADDR/"; then
		ip addr add "$CEPH_ADDR/32" dev lo 2>"$tmp/ip.err" ||
			skip_rest "$what" "cannot add $CEPH_ADDR to lo for the rig to reach the cluster: $(cat "$tmp/ip.err")"
		added=1
	fi
fi
err=$tmp/ceph.err
if ! ceph_start "$tmp/ceph" >"$err" 2>&1; then
	not_ok "a single-node cluster starts on $CEPH_ADDR"
	tap_end
fi
ok "a single-node cluster starts on $CEPH_ADDR"
STORE=rados:$CEPH_POOL/vm$$
"$BUILD/snapctl" store init "$STORE" >"$err" 2>&1
check "snapctl store init $STORE" '[ $? -eq 0 ]'
ceph_client_conf "$tmp/client.conf"
echo "$STORE" >"$tmp/store.name"

# What both hosts share: the store, the cluster, the tick helpers.
cat >"$tmp/common.sh" <<'COMMON'
. "$(dirname "$0")/kvm.sh"
GUEST=./testguest.elf
CEPH_CONF=$PWD/client.conf
export CEPH_CONF
STORE=$(cat store.name)
S=$T/vm.sock
M=$T/mnt
cleanup() { [ -n "$pid" ] && stop; fs_unmount; }
trap cleanup EXIT
mkdir -p "$M"
COMMON

# Host A: run the guest, save it into the mount while it runs.
cat >"$tmp/host_a.sh" <<'HOSTA'
. "$(dirname "$0")/common.sh"
fs_mount "$STORE" "$M"
check "host A mounts the store" '[ $? -eq 0 ]'
t0=$(date +%s)
start run --kernel "$GUEST" --mem 128M --cpus 2 --control "$S" \
	--cmdline "touch=8 rate=1000"
wait_for "$T/out" "^snapfs-guest pass 1 " 2 180
res "# the guest's first passes: $(($(date +%s) - t0)) s"
wait_for "$T/out" '^tick ' 3 60
b1=$(last_tick "$T/out")
r=$(timeout 120 "$SNAPVM" ctl "$S" snapshot "$M/s1"); crc=$?
a1=$(last_tick "$T/out")
res "# $r"
check "host A saves the running guest into its mount" \
	'[ $crc -eq 0 ] && echo "$r" | grep -q "^ok snapshot "'
res "# saved between ticks $b1 $a1"
quit_vm
(cd "$M/s1" && sha256sum manifest.bin state.bin memory.bin) >"$T/sums"
while read -r l; do res "# sum $l"; done <"$T/sums"
fs_unmount
check "host A's daemon stops cleanly" '[ "$fsrc" -eq 0 ] && [ ! -s "$T/fs.err" ]'
show "$T/fs.err"
res "# end"
HOSTA

# Host B: the same store, read-only, through a local chunk cache.
cat >"$tmp/host_b.sh" <<'HOSTB'
. "$(dirname "$0")/common.sh"
read -r b1 a1 <ticks
fs_mount "$STORE" "$M" -o "ro,chunk_cache=$T/cache"
check "host B mounts the store read-only, with a local chunk cache" '[ $? -eq 0 ]'
(cd "$M/s1" && sha256sum manifest.bin state.bin memory.bin) >"$T/sums"
check "host B reads the snapshot's files as host A wrote them" \
	'cmp -s "$T/sums" ./sums.a'
t0=$(date +%s)
start restore "$M/s1"
ok=1
wait_for "$T/out" '^tick ' 3 120 || ok=0
for c in 0 1; do
	wait_for "$T/out" "^snapfs-guest pass .* cpu=$c .*mismatches=0" 1 120 || ok=0
done
ft=$(first_tick "$T/out")
res "# restored: ticks and a pass of each CPU in $(($(date +%s) - t0)) s"
check "host B restores it from its mount: on from tick $ft (saved between $b1 and $a1), every CPU passes its checks" \
	'[ $ok -eq 1 ] && [ "$ft" -gt "$b1" ] && [ "$ft" -le $((a1 + 2)) ] && clean "$T/out"'
grep "^snapfs-guest" "$T/out" | tail -3 | while read -r l; do res "# $l"; done
stop
n=$(find "$T/cache" -type f | wc -l)
check "host B's chunk cache holds the chunks it read ($n files)" '[ "$n" -gt 0 ]'
fs_unmount
check "host B's daemon stops cleanly" '[ "$fsrc" -eq 0 ] && [ ! -s "$T/fs.err" ]'
show "$T/fs.err"
res "# end"
HOSTB

kvm_or_rig --fuse --net --smp 2 --mem 2048 --timeout 600 \
	--progs "$BUILD/snapfs" "$what (host A)" "$tmp/host_a.sh" \
	"$tmp/a.log" "$tmp/common.sh" "$tmp/client.conf" "$tmp/store.name"
rig_results "$tmp/a.log"
sed -n 's/^RESULT # saved between ticks //p' "$tmp/a.log" >"$tmp/ticks"
sed -n 's/^RESULT # sum //p' "$tmp/a.log" >"$tmp/sums.a"
if [ ! -s "$tmp/ticks" ] || [ "$(wc -l <"$tmp/sums.a")" -ne 3 ]; then
	not_ok "host A left a snapshot for host B"
	tap_end
fi
kvm_or_rig --fuse --net --smp 2 --mem 2048 --timeout 600 \
	--progs "$BUILD/snapfs" "$what (host B)" "$tmp/host_b.sh" \
	"$tmp/b.log" "$tmp/common.sh" "$tmp/client.conf" "$tmp/store.name" \
	"$tmp/ticks" "$tmp/sums.a"
rig_results "$tmp/b.log"
"$BUILD/snapctl" store verify "$STORE" >"$err" 2>&1
check "the store verifies after both hosts" '[ $? -eq 0 ]'
tap_end
