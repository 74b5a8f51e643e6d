#!/bin/sh
# snapvm's virtio-vsock with a Linux guest: Debian's kernel and an initrd
# made here (static busybox, the vsock modules, tests/integration/
# vsock_peer.c built static, which serves echo, sink, source and dial
# ports in the guest and is the host's client too). Checked:
#   - bad --vsock and --cid values and an existing PATH are refused with
#     one line; PATH is a socket of mode 0600, removed when snapvm ends;
#   - the guest has the --cid it was given; host to guest: echo, a port
#     with no listener closes the client without "OK", a bad CONNECT line
#     too; guest to host: a connect to PATH_P, and one with no PATH_P or
#     to a CID that is not there fails at once (ECONNRESET), no hang;
#   - 100 MiB each way (host to guest, guest to host over the guest's
#     own connect) and 16 MiB from a guest source, intact (SHA-256), with
#     their throughput and the round-trip latency printed;
#   - a connection idle across a snapshot goes on in the running VM; the
#     snapshot restores only with --vsock (one line without), with a new
#     socket, and the guest's old connection is reset (its reader gets
#     ECONNRESET) while new ones work both ways;
#   - the kernel complains of nothing on its console;
#   - when make guest built them, the guest's own initrd and snapfs-agent
#     (tests/guest/agent) work through PATH: ping, exec, put and get.
# Prints TAP. Runs where there is a hardware KVM (kvm_intel or kvm_amd:
# PVM cannot run Debian's kernel), otherwise inside the rig.
set -u
BUILD=${BUILD:-build}
SNAPVM=$BUILD/snapvm
KERNEL=${LINUX_KERNEL:-build/guest/vmlinuz}
MODDIR=build/guest/modules
AGENT=$BUILD/guest/snapfs-agent		# and the initrd that runs it, if
AGENT_INITRD=$BUILD/guest/initrd.cpio.gz	# built (make guest)
CC=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/lib/tap.sh
. tests/lib/where.sh

# No ACPI (acpi=off spares its probe); the PCI bus is found by probing.
# noxsave in the rig only: see linux_rig.sh.
CMDLINE="console=ttyS0 loglevel=5 panic=-1 acpi=off"
RIG_CMDLINE="noxsave"

# ---- the script that runs with KVM -----------------------------------------

cat >"$tmp/vsock_kvm.sh" <<'KVM'
. "$(dirname "$0")/kvm.sh"
KERNEL=${KERNEL:-./vmlinuz}
INITRD=./vsock-initrd.cpio.gz
PEER=./vsock_peer
COMPLAINTS='BUG|WARNING|soft lockup|rcu.*stall|Call Trace|Kernel panic'
BIG=104857600			# 100 MiB
V=$T/v.sock S=$T/ctl.sock

clock() { read -r up _ </proc/uptime; f=${up#*.}; now=$((${up%.*} * 100 + ${f#0})); }
secs() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }
# seen PATTERN COUNT SECONDS, on the console; false at once when snapvm ended.
seen() {
	_i=0
	while [ $_i -lt $(($3 * 10)) ]; do
		[ "$(tr -d '\r' <"$T/out" | grep -c "$1")" -ge "$2" ] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1; _i=$((_i + 1))
	done
	return 1
}
quiet() {
	tr -d '\r' <"$T/out" | grep -E "$COMPLAINTS" >"$T/bad"
	if [ -s "$T/bad" ]; then
		res "not ok - $1: the kernel complains of nothing"
		head -20 "$T/bad" | sed 's/^/RESULT #   /'
	else
		res "ok - $1: the kernel complains of nothing"
	fi
}
# timed CMD...: run it, its output in $out and its status in $rc, the
# hundredths of a second it took in $took.
timed() { clock; _t=$now; out=$("$@" 2>"$T/cmd.err"); rc=$?; clock; took=$((now - _t)); }
sha_of() { "$PEER" stream "$1" | sha256sum | cut -d' ' -f1; }
# words TEXT: its first three words in $w1 $w2 $w3 (check's test is run
# inside a function, where $1 is not ours).
words() { w1= w2= w3=; set -- $1; w1=${1:-} w2=${2:-} w3=${3:-}; }

# ---- refusals -----------------------------------------------------------------
: >"$T/file"
start run --kernel "$KERNEL" --initrd "$INITRD" --vsock "$T/file"
finish
check "--vsock at an existing path: one line, the file left alone" \
	'one_line "snapvm: --vsock $T/file: already exists" && [ -f "$T/file" ]'
start run --kernel "$KERNEL" --vsock "$V" --cid 2
finish
check "--cid 2: one line (3 to 4294967294)" \
	'one_line "snapvm: --cid 2: 3 to 4294967294 expected" && [ ! -e "$V" ]'
start run --kernel "$KERNEL" --cid 9
finish
check "--cid without --vsock: bad usage" \
	'[ "$rc" -eq 2 ] && grep -q "^snapvm run: --cid: only with --vsock" "$T/err"'
long=$T/$(printf '%0100d' 0)
start run --kernel "$KERNEL" --vsock "$long"
finish
check "--vsock PATH too long for PATH_PORT: one line" 'one_line "snapvm: --vsock $long: longer than"'

# ---- a guest with --cid 7 ---------------------------------------------------
clock; t0=$now
start run --kernel "$KERNEL" --initrd "$INITRD" --mem 256M --vsock "$V" \
	--cid 7 --control "$S" --cmdline "$CMDLINE"
if seen "^snapfs-vsock ready" 1 120; then
	clock
	res "# ready $(secs $((now - t0))) s after snapvm started"
else
	res "not ok - the guest is ready (not in 120 s)"
	tr -d '\r' <"$T/out" | tail -8 | sed 's/^/RESULT #   /'
	show "$T/err"
fi
check "the guest's CID is 7 (--cid)" 'tr -d "\r" <"$T/out" | grep -q "^snapfs-vsock ready cid=7\$"'
check "PATH is a socket of mode 0600" '[ -S "$V" ] && [ "$(stat -c %a "$V")" = 600 ]'

timed sh -c "printf 'hello vsock\n' | $PEER connect $V 5000"
check "host to guest: echo" '[ "$rc" -eq 0 ] && [ "$out" = "hello vsock" ]'
timed "$PEER" ping "$V" 5000 500
res "# round trip host-guest-host, one byte: median ${out% *} us, p99 ${out#* } us"
check "500 round trips" '[ "$rc" -eq 0 ]'

want=$(sha_of $BIG)
timed "$PEER" send "$V" 5001 $BIG
words "$out"
res "# host to guest, 100 MiB: ${w3:-?} MiB/s"
check "host to guest: 100 MiB intact" '[ "$w1" = "$want" ] && [ "$w2" = $BIG ]'

"$PEER" listen "${V}_7000" >"$T/listen" 2>&1 &
lpid=$!
wait_for "$T/listen" '^listening' 1 20
timed "$PEER" dial "$V" 2 7000 $BIG
wait "$lpid"
words "$(tail -1 "$T/listen")"
res "# guest to host over a connect to PATH_7000, 100 MiB: ${w3:-?} MiB/s"
check "guest to host: connect to PATH_7000, 100 MiB intact both ends" \
	'[ "$w1" = "$want" ] && [ "$w2" = $BIG ] && [ "$out" = "ok $want $BIG" ]'

want=$(sha_of 16777216)
timed "$PEER" recv "$V" 5002 16777216
words "$out"
res "# guest to host over a host connect, 16 MiB: ${w3:-?} MiB/s"
check "guest to host: 16 MiB from a guest source intact" \
	'[ "$w1" = "$want" ] && [ "$w2" = 16777216 ]'

timed "$PEER" connect "$V" 6000 </dev/null
check "host to guest, no listener: closed without OK, at once ($(secs $took) s)" \
	'[ "$rc" -eq 3 ] && [ "$took" -lt 500 ]'
timed "$PEER" connect "$V" 65536x </dev/null
check "host to guest, a bad CONNECT line: closed" '[ "$rc" -eq 3 ]'
timed "$PEER" dial "$V" 2 7001 10
check "guest to host, no PATH_7001: ECONNRESET at once ($(secs $took) s)" \
	'[ "$out" = "error ECONNRESET" ] && [ "$took" -lt 500 ]'
timed "$PEER" dial "$V" 5 7001 10
check "guest to CID 5 (none): ECONNRESET at once ($(secs $took) s)" \
	'[ "$out" = "error ECONNRESET" ] && [ "$took" -lt 500 ]'
i=0 pids=
while [ $i -lt 8 ]; do
	sh -c "printf 'x%d\n' $i | $PEER connect $V 5000 >$T/par$i" &
	pids="$pids $!" i=$((i + 1))
done
for p in $pids; do wait "$p"; done
check "8 connections at once, each its own echo" \
	'for i in 0 1 2 3 4 5 6 7; do [ "$(cat $T/par$i)" = "x$i" ] || exit 1; done'

# ---- a snapshot with an idle connection ---------------------------------------
"$PEER" hold "$V" 5000 "$T/go" >"$T/hold" 2>&1 &
hpid=$!
wait_for "$T/hold" '^held' 1 20
r=$("$SNAPVM" ctl "$S" snapshot "$T/snap")
res "# $r"
check "snapshot with a connection open" 'echo "$r" | grep -q "^ok snapshot $T/snap "'
: >"$T/go"
wait "$hpid"
check "the connection goes on in the running VM after the snapshot" \
	'tail -1 "$T/hold" | grep -qx ok'
timed sh -c "printf 'again\n' | $PEER connect $V 5000"
check "new connections too" '[ "$out" = again ]'
r=$("$SNAPVM" ctl "$S" quit)
wait "$pid"; rc=$?; pid=
check "quit: exit 0, PATH removed" '[ "$rc" -eq 0 ] && [ ! -e "$V" ]'
quiet "first boot"

start restore "$T/snap"
finish
check "restore without --vsock: one line naming it" 'one_line "snapvm: $T/snap: the VM has virtio-vsock: --vsock PATH"'
V2=$T/v2.sock
start restore "$T/snap" --vsock "$V2"
check "restored: the guest's old connection is reset" \
	'seen "vsock_peer: port 5000: read: Connection reset by peer" 1 60'
timed sh -c "printf 'clone\n' | $PEER connect $V2 5000"
check "restored: host to guest on the new socket" '[ "$rc" -eq 0 ] && [ "$out" = clone ]'
want=$(sha_of 1048576)
"$PEER" listen "${V2}_7002" >"$T/listen" 2>&1 &
lpid=$!
wait_for "$T/listen" '^listening' 1 20
timed "$PEER" dial "$V2" 2 7002 1048576
wait "$lpid"
check "restored: guest to host, 1 MiB intact" \
	'[ "$out" = "ok $want 1048576" ] && tail -1 "$T/listen" | grep -q "^$want 1048576 "'
stop
check "restored: PATH removed at the end" '[ ! -e "$V2" ]'
quiet "restored"

# ---- the guest agent (tests/guest/agent) on the guest's own initrd --------------
if [ -f ./initrd.cpio.gz ] && [ -x ./snapfs-agent ]; then
	V3=$T/v3.sock AG=./snapfs-agent
	start run --kernel "$KERNEL" --initrd ./initrd.cpio.gz --mem 256M \
		--vsock "$V3" --cmdline "$CMDLINE"
	timed "$AG" ping --socket "$V3" --wait 120
	check "snapfs-agent: ping through PATH ($(secs $took) s from the boot)" \
		'[ "$rc" -eq 0 ]'
	timed "$AG" exec --socket "$V3" -- cat /proc/sys/kernel/ostype
	check "snapfs-agent: exec" '[ "$rc" -eq 0 ] && [ "$out" = Linux ]'
	"$PEER" stream 4194304 >"$T/f4"
	check "snapfs-agent: put, then get, 4 MiB intact" \
		'"$AG" put --socket "$V3" "$T/f4" /f4 &&
		 "$AG" get --socket "$V3" /f4 "$T/f4b" && cmp -s "$T/f4" "$T/f4b"'
	stop
	quiet "agent"
else
	res "ok - snapfs-agent # SKIP not built (make guest)"
fi
rm -rf "$T"
res "# end"
KVM

# ---- build the guest side, then run here or in the rig ---------------------------

busybox=$(command -v busybox)
need_built --skip "virtio-vsock with a Linux guest" "$SNAPVM" "$KERNEL" \
	"$MODDIR/guest.order" busybox
case $(file -bL "$busybox" 2>/dev/null) in
*dynamically*) skip_rest "virtio-vsock with a Linux guest" \
	"$busybox is not static (busybox-static)" ;;
esac
if ! "$CC" -std=gnu11 -O2 -static -D_GNU_SOURCE -Wall -Wextra -Werror \
	-o "$tmp/vsock_peer" tests/integration/vsock_peer.c 2>"$tmp/cc.err"; then
	err=$tmp/cc.err
	not_ok "vsock_peer.c builds static"
	tap_end
fi

# The initrd: busybox, vsock_peer, the virtio-pci and vsock modules in
# their load order, and an /init that loads them and serves.
root=$tmp/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/mod"
cp "$busybox" "$tmp/vsock_peer" "$root/bin/"
while read -r m; do
	case $m in
	virtio_blk.ko|virtio-rng.ko) ;;
	virtio*|vsock*|vmw_vsock*) cp "$MODDIR/$m" "$root/mod/"; echo "$m" ;;
	esac
done <"$MODDIR/guest.order" >"$root/mod/order"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
while read -r m; do
	insmod "/mod/$m" || echo "snapfs-vsock error: insmod $m"
done </mod/order
vsock_peer serve &
sleep 0.2
echo "snapfs-vsock ready cid=$(vsock_peer cid)"
while :; do sleep 3600; done
INIT
chmod 0755 "$root/init"
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 \
	>"$tmp/vsock-initrd.cpio.gz"

agent=
[ -x "$AGENT" ] && [ -f "$AGENT_INITRD" ] && agent="$AGENT $AGENT_INITRD"
# The command line and the kernel go in the script: no environment
# reaches it (noxsave only in the rig).
kvm_here || CMDLINE="$CMDLINE $RIG_CMDLINE"
{ printf "CMDLINE='%s' KERNEL=./%s\n" "$CMDLINE" "$(basename "$KERNEL")"
  cat "$tmp/vsock_kvm.sh"; } >"$tmp/vsock_rig.sh"
clock0=$(date +%s)
# shellcheck disable=SC2086	# $agent: two files or none
kvm_or_rig "virtio-vsock with a Linux guest" "$tmp/vsock_rig.sh" \
	"$tmp/kvm.log" "$KERNEL" "$tmp/vsock-initrd.cpio.gz" "$tmp/vsock_peer" \
	$agent
rig_results "$tmp/kvm.log"
echo "# wall time: $(($(date +%s) - clock0)) s"
tap_end
