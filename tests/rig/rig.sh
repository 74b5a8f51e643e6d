#!/bin/sh
# The rig: a real KVM for tests on machines without one.
#
#   sh tests/rig/rig.sh [--smp N] [--mem MIB] [--net] SCRIPT [FILE...]
#
# Boots Debian's kernel (build/guest/vmlinuz, from tools/fetch-linux.sh) in
# QEMU under TCG with a CPU that has SVM; its init loads irqbypass, ccp, kvm
# and kvm-amd, which gives a real /dev/kvm with nested paging, then runs
# `sh /rig/SCRIPT` as root with these in /rig:
#
#   /rig/snapvm         $BUILD/snapvm (and the shared libraries it needs)
#   /rig/snapctl        $BUILD/snapctl, when built
#   /rig/testguest.elf  $BUILD/guest/testguest.elf, when built
#   /rig/<FILE>         each FILE given, by its base name
#   /rig/<PROG>         each program in RIG_PROGS (space-separated paths, or
#                       names found on PATH), with its shared libraries
#
# With --net the rig has a network: QEMU's user-mode one (a virtio-net
# device, eth0 10.0.2.15/24, the gateway 10.0.2.2), through which the
# rig reaches the host's own addresses (a Ceph cluster on the host,
# tests/lib/ceph.sh with CEPH_ADDR). Without, none.
#
# The rig's serial console goes to stdout; the script's exit status becomes
# ours (125 when the rig itself failed: no KVM, no marker, timeout).
# RIG_TIMEOUT (seconds, default 300) bounds the whole run.
set -eu
BUILD=${BUILD:-build}
smp=2 mem=2048 net=
while [ $# -gt 0 ]; do
	case $1 in
	--smp) smp=$2; shift 2 ;;
	--mem) mem=$2; shift 2 ;;
	--net) net=1; shift ;;
	*) break ;;
	esac
done
script=${1:?usage: rig.sh [--smp N] [--mem MIB] SCRIPT [FILE...]}
shift
kernel=build/guest/vmlinuz
mods=build/guest/modules

for need in qemu-system-x86_64 cpio busybox; do
	command -v "$need" >/dev/null ||
		{ echo "rig: $need missing (make deps installs it)" >&2; exit 125; }
done
[ -f "$kernel" ] && [ -f "$mods/kvm-amd.ko" ] ||
	{ echo "rig: $kernel missing (make guest fetches it)" >&2; exit 125; }

work=$(mktemp -d /tmp/rig.XXXXXX)
qemu_pid=
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null && wait "$qemu_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
root=$work/root
mkdir -p "$root/bin" "$root/rig" "$root/mod" "$root/dev" "$root/proc" \
	 "$root/sys" "$root/tmp" "$root/run"

cp "$(command -v busybox)" "$root/bin/busybox"
rigmods="irqbypass ccp kvm kvm-amd fuse"
netdev=
if [ -n "$net" ]; then
	[ -f "$mods/virtio_net.ko" ] ||
		{ echo "rig: $mods/virtio_net.ko missing (make guest fetches it)" >&2; exit 125; }
	for m in virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev \
		 virtio virtio_pci failover net_failover \
		 virtio_net; do
		rigmods="$rigmods $m"
	done
	netdev="-netdev user,id=n0 -device virtio-net-pci,netdev=n0"
fi
for m in $rigmods; do
	[ -f "$mods/$m.ko" ] && cp "$mods/$m.ko" "$root/mod/"
done

# A program and every shared library it loads, at the same paths.
add_prog() {
	cp "$1" "$root/rig/"
	ldd "$1" 2>/dev/null | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }' |
	while read -r lib; do
		mkdir -p "$root$(dirname "$lib")"
		cp -L "$lib" "$root$lib"
	done
}
add_prog "$BUILD/snapvm"
# glibc loads libgcc_s itself (pthread_cancel, unwinding): ldd misses it.
gcc_s=$(ldconfig -p 2>/dev/null | awk '/libgcc_s.so.1 .*x86-64/ { print $NF; exit }')
if [ -n "$gcc_s" ]; then
	mkdir -p "$root$(dirname "$gcc_s")"
	cp -L "$gcc_s" "$root$gcc_s"
fi
[ -x "$BUILD/snapctl" ] && add_prog "$BUILD/snapctl"
[ -f "$BUILD/guest/testguest.elf" ] && cp "$BUILD/guest/testguest.elf" "$root/rig/"
for p in ${RIG_PROGS:-}; do
	path=$(command -v "$p") ||
		{ echo "rig: RIG_PROGS: $p not found" >&2; exit 125; }
	add_prog "$path"
done
cp "$script" "$root/rig/"
for f in "$@"; do
	cp "$f" "$root/rig/"
done

cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
for m in $rigmods; do
	[ -f /mod/\$m.ko ] && insmod /mod/\$m.ko
done
ip link set lo up
if [ -n "$net" ]; then
	ip link set eth0 up &&
	ip addr add 10.0.2.15/24 dev eth0 &&
	ip route add default via 10.0.2.2 || echo "RIG-NO-NET"
fi
if [ -c /dev/kvm ]; then
	echo "RIG-KVM-READY"
	cd /rig && sh /rig/$(basename "$script")
	echo "RIG-EXIT \$?"
else
	echo "RIG-NO-KVM"
fi
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$work/initrd.gz"

# shellcheck disable=SC2086	# $netdev: its options, or none
timeout "${RIG_TIMEOUT:-300}" qemu-system-x86_64 -accel tcg,thread=single -cpu max,+svm,-avx,-avx2 \
	-smp "$smp" -m "$mem" -nographic -no-reboot -kernel "$kernel" \
	-initrd "$work/initrd.gz" $netdev \
	-append "console=ttyS0 quiet loglevel=3 panic=-1" \
	</dev/null >"$work/console" 2>&1 &
qemu_pid=$!
wait "$qemu_pid" || true
qemu_pid=
tr -d '\r' <"$work/console" | sed -n '/RIG-KVM-READY\|RIG-NO-KVM/,$p'
rc=$(tr -d '\r' <"$work/console" | sed -n 's/^RIG-EXIT \([0-9]*\)$/\1/p' | tail -1)
if [ -z "$rc" ]; then
	echo "rig: no result from the rig (no KVM, a crash or a timeout)" >&2
	tr -d '\r' <"$work/console" | tail -20 >&2
	exit 125
fi
exit "$rc"
