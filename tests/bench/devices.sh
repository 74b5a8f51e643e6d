#!/bin/sh
# snapvm's devices with Linux: boot, virtio-blk throughput, snapshots and
# restores of a VM with a disk.
#
#   sh tests/bench/devices.sh
#
# Everything runs in one boot of the rig (tests/rig/rig.sh: Debian's kernel
# under QEMU TCG with nested SVM; RIG_SMP CPUs, default 1, and RIG_MEM MiB,
# default 7168, for the disks and snapshots on its tmpfs). The guest is
# Debian's kernel (build/guest/vmlinuz, 256 MiB, 1 vCPU) with an initrd
# built here: static busybox, blkbench (tests/bench/blkbench.c, static,
# into $BUILD/bench/), the virtio modules of build/guest/modules/guest.order
# (virtio*.ko, in that order: virtio-pci, virtio-blk, virtio-rng) and an
# /init written below, which loads them when a virtio device is on PCI,
# then prints "devices-guest ready" and, by its bench= word, ticks every
# 100 ms ("tick N", the console protocol of tests/guest/linux-init.sh) or
# serves blkbench commands read from the console.
#
#   boot     ms from snapvm run's fork (stamp, tests/bench/stamp.c) to
#            init's first line and to its ready line, with
#              today    TODAY_CMDLINE, the command line the Linux tests
#                       and benchmarks use (tests/integration/linux_rig.sh)
#              plain    PLAIN_CMDLINE: no acpi=off, pci=off or initcall
#                       blacklist (a machine with a CMOS RTC and an i8042
#                       that answers needs none)
#              devices  DEV_CMDLINE (today's without pci=off) with --disk
#                       (the 1 GiB file below) and --rng: the modules
#                       loaded and /dev/vda there before ready
#            The three alternate run by run. A boot with no ready line in
#            90 s is a failure ("-").
#   io       one VM (DEV_CMDLINE, --disk DISK: a sparse 1 GiB file on the
#            rig's tmpfs) runs blkbench -d (O_DIRECT) on /dev/vda: seqw
#            and seqr, SEQ_MIB (default 1024) MiB in 1 MiB blocks, then
#            randr and randw, RAND_OPS (default 5000) 4 KiB requests at
#            random pages (seed = the run); after each, the rig runs the
#            same blkbench on DISK while the guest waits for its next
#            command (O_DIRECT when the tmpfs takes it; else buffered,
#            writes ending with fdatasync, and the table says so). The
#            first seqw fills DISK with data, so the snapshots below copy
#            1 GiB. Then a 4 MiB region read by both must hash the same.
#            KVM's exits, MMIO exits, interrupts injected and halts
#            (debugfs) are counted around each guest run.
#   snap     `snapvm ctl SOCK snapshot DIR`, ms from the fork of ctl to
#            its ok line (stamp) and the paused_ms it prints, of four VMs
#            (DEV_CMDLINE, each ready and 3 ticks in): no disk, snapshots
#            on tmpfs; no disk, snapshots in a snapfs mount (a store on
#            the tmpfs, $BUILD/snapfs STORE MNT -f, stopped by its pid);
#            DISK (now full) on tmpfs, snapshots beside it; a copy of DISK
#            in the mount (coreutils cp, timed), snapshots beside it. The
#            VMs with a disk write a 1 MiB region of new bytes
#            (blkbench -d fill, its hash printed) before their first tick
#            and, after each tick, print the region's hash as read back
#            with O_DIRECT. Each VM's first snapshot is a full one, the
#            warm-up; the BENCH_RUNS after it (DISK_RUNS, default 2, for
#            the VMs with a disk: each takes the SHA-256 of its 1 GiB
#            copy) copy the one before and write the pages dirtied since.
#   restore  `snapvm restore DIR --debug [--disk-dir D]` of each VM's last
#            snapshot, D a new directory beside DIR (on tmpfs or in the
#            mount), kinds alternating run by run, the page cache dropped
#            before each: ms from the fork to "first KVM_RUN", to the
#            guest's next "tick" line and to its next region hash, which
#            must be the one written before the snapshot, as must the
#            hash of D's disk0.img read by the rig. When snapvm has
#            --trust-disks, both disks are restored with it too. The
#            restores that check the disk's digest (reading it whole) run
#            DISK_RUNS times with no warm-up of their own, the others
#            BENCH_RUNS after one.
#
# Each figure is the median of BENCH_RUNS (default 5) runs after one
# warm-up, with min and max; ratios are of medians. Targets: the
# mount's snapshot and restore of the VM with a 1 GiB disk within 1.2x of
# the diskless VM's in the mount (wall ms; restore to the next tick).
# About 15 minutes on an idle 2-core machine, most of it SHA-256 of the
# 1 GiB disk under TCG (RIG_TIMEOUT, default 1800 s, bounds the rig). The
# rig's console, with every run's raw numbers ("BENCH ..." lines), is
# kept in $BUILD/bench/devices.log.
#
# The command lines are variables (TODAY_CMDLINE, PLAIN_CMDLINE,
# DEV_CMDLINE; noxsave is the rig's, see linux_rig.sh) so that the script
# can be run again as snapvm's machine changes.
#
# Variables: BUILD (build), CC (gcc), BENCH_RUNS (5), DISK_RUNS (2),
# SEQ_MIB (1024), RAND_OPS (5000), RIG_SMP (1), RIG_MEM (7168),
# RIG_TIMEOUT (1800), RIG, and the three command lines.
#
# Exit status: 0; 1 when a run failed (no ready line, an I/O error, a hash
# that differs, a daemon that failed); 2 when something is not built (it
# says what to make); 125 when the rig failed. Missed targets are not
# failures: the table says MISSED.
set -u
RIG_SMP=${RIG_SMP:-1}
. tests/bench/lib.sh
RUNS=${BENCH_RUNS:-5}
SEQ_MIB=${SEQ_MIB:-1024}
RAND_OPS=${RAND_OPS:-5000}
DISK_RUNS=${DISK_RUNS:-2}
RIG_MEM=${RIG_MEM:-7168}
DISK_MIB=1024
TODAY_CMDLINE=${TODAY_CMDLINE:-"console=ttyS0 loglevel=5 panic=-1 acpi=off pci=off initcall_blacklist=i8042_init,cmos_init noxsave"}
PLAIN_CMDLINE=${PLAIN_CMDLINE:-"console=ttyS0 loglevel=5 panic=-1 noxsave"}
DEV_CMDLINE=${DEV_CMDLINE:-"console=ttyS0 loglevel=5 panic=-1 acpi=off initcall_blacklist=i8042_init,cmos_init noxsave"}
OUT=$BUILD/bench
LOG=$OUT/devices.log
MODS=build/guest/modules

die2() { echo "devices: $*" >&2; exit 2; }
case $RUNS$DISK_RUNS$SEQ_MIB$RAND_OPS in
*[!0-9]*) die2 "BENCH_RUNS, DISK_RUNS, SEQ_MIB and RAND_OPS take numbers" ;;
esac
[ "$DISK_RUNS" -gt "$RUNS" ] && DISK_RUNS=$RUNS
[ "$RUNS" -ge 1 ] && [ "$DISK_RUNS" -ge 1 ] && [ "$SEQ_MIB" -ge 1 ] && [ "$SEQ_MIB" -le $DISK_MIB ] &&
	[ "$RAND_OPS" -ge 1 ] || die2 "BENCH_RUNS >= 1, 1 <= SEQ_MIB <= $DISK_MIB, RAND_OPS >= 1"
for f in "$BUILD/snapvm:make" "$BUILD/snapfs:make" "$BUILD/snapctl:make" \
	 "build/guest/vmlinuz:make guest" "$MODS/guest.order:make guest" \
	 "$RIG:the rig"; do
	[ -f "${f%%:*}" ] || die2 "${f%%:*} missing (run ${f#*:})"
done
for p in "$QEMU" cpio gzip busybox cp; do
	command -v "$p" >/dev/null || die2 "$p missing (make deps installs it)"
done
case $(file -bL "$(command -v busybox)" 2>/dev/null) in
*dynamically*) die2 "busybox is not static (busybox-static expected)" ;;
esac
# shellcheck disable=SC2034 # bench_table (lib.sh) reads it
outer=$("$QEMU" --version | sed -n 's/.*version \([^ ]*\).*/\1/p')
mkdir -p "$OUT" || exit 2
for p in stamp blkbench; do
	"$CC" -std=gnu11 -O2 -static -D_GNU_SOURCE -Wall -Wextra -Werror \
		-o "$OUT/$p" tests/bench/$p.c || die2 "tests/bench/$p.c did not build"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# ---- the guest's initrd -------------------------------------------------
root=$tmp/root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys" "$root/mod" \
	"$root/tmp"
cp "$(command -v busybox)" "$root/bin/busybox"
cp "$OUT/blkbench" "$root/bin/blkbench"
grep '^virtio' "$MODS/guest.order" >"$root/mod/order"
[ -s "$root/mod/order" ] || die2 "$MODS/guest.order names no virtio module (make guest)"
while read -r m; do
	cp "$MODS/$m" "$root/mod/" || die2 "$MODS/$m missing (make guest)"
done <"$root/mod/order"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# devices.sh's guest: see the top of tests/bench/devices.sh.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
echo "devices-guest init"
mode=tick region=
read -r cmdline </proc/cmdline
for w in $cmdline; do
	case $w in
	bench=*) mode=${w#bench=} ;;
	region=*) region=${w#region=} ;;
	esac
done
virtio=0
for v in /sys/bus/pci/devices/*/vendor; do
	[ -r "$v" ] && read -r id <"$v" && [ "$id" = 0x1af4 ] && virtio=1
done
if [ $virtio = 1 ]; then
	while read -r m; do
		insmod "/mod/$m" || echo "devices-guest insmod $m failed"
	done </mod/order
fi
disk=0 rng=none
[ -b /dev/vda ] && disk=1
[ -r /sys/class/misc/hw_random/rng_current ] &&
	read -r rng </sys/class/misc/hw_random/rng_current
echo "devices-guest ready disk=$disk rng=$rng"

uptime_cs() {
	read -r up _ </proc/uptime
	frac=${up#*.}
	now=$((${up%.*} * 100 + ${frac#0}))
}

if [ "$mode" = initcalls ]; then
	# with initcall_debug: when the first initcall began and /init ran
	# (s of uptime), all initcalls' time and the slowest (us)
	dmesg >/tmp/dmesg
	sed -n 's/^\[ *\([0-9.]*\)\] calling .*/devices-guest initcalls-from \1/p' /tmp/dmesg | head -1
	sed -n 's/^\[ *\([0-9.]*\)\] Run \/init as init process.*/devices-guest init-at \1/p' /tmp/dmesg
	sed -n 's/.*initcall \([^ ]*\) returned .* after \([0-9]*\) usecs.*/\2 \1/p' /tmp/dmesg >/tmp/ic
	awk '{ t += $1 } END { print "devices-guest initcalls-sum " t }' /tmp/ic
	sort -rn /tmp/ic | head -6 | sed 's/^/devices-guest slow /'
	# the longest silences in the log (ms), before the first initcall
	awk '/ calling / { exit } { t = substr($0, 2, 12) + 0
		if (NR > 1) printf "%.0f %s\n", (t - p) * 1000, substr($0, 16)
		p = t }' /tmp/dmesg | sort -rn | head -3 | sed 's/^/devices-guest gap /'
	echo "devices-guest initcalls done"
fi
if [ "$mode" = io ]; then
	stty -echo 2>/dev/null
	while read -r cmd args; do
		case $cmd in
		run)
			# shellcheck disable=SC2086
			if r=$(blkbench $args); then
				echo "devices-guest result $r"
			else
				echo "devices-guest failed $?"
			fi ;;
		quit) break ;;
		esac
	done
	reboot -f
fi

# tick: with region=OFF:SEED and a disk, 1 MiB of new bytes at OFF first,
# and its hash read back after every tick.
off=
if [ -n "$region" ] && [ -b /dev/vda ]; then
	off=${region%%:*}
	if r=$(blkbench -d -s "${region#*:}" fill /dev/vda "$off" 1048576); then
		echo "devices-guest wrote $r"
	else
		echo "devices-guest failed fill"
	fi
fi
uptime_cs
base=$now k=0 n=0
while :; do
	echo "tick $n"
	[ -n "$off" ] && echo "devices-guest sum $n $(blkbench -d sum /dev/vda "$off" 1048576)"
	n=$((n + 1)) k=$((k + 1))
	uptime_cs
	[ $((now - base - k * 10)) -gt 10 ] && base=$now k=1
	wait_cs=$((base + k * 10 - now))
	[ "$wait_cs" -gt 0 ] && usleep $((wait_cs * 10000))
done
INIT
chmod 0755 "$root/init" "$root/bin/busybox" "$root/bin/blkbench"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
	cpio -o -H newc -R 0:0 --quiet) | gzip -6 -n >"$tmp/devices-initrd.gz" ||
	die2 "the initrd did not build"

# ---- in the rig -----------------------------------------------------------
# Prints, besides "BENCH # " notes and "BENCH failed N" last but one:
#   BENCH boot KIND I INIT READY          ms; I = 0: the warm-up
#   BENCH io WHO OP I BYTES OPS USEC MBPS IOPS DIRECT   WHO guest or host
#   BENCH iocheck same|differ
#   BENCH import MS                       cp of DISK into the mount
#   BENCH snap VM I MS PAUSED_MS          VM floor_t floor_m disk_t disk_m
#   BENCH restore KIND I FIRST_RUN TICK SUM
#   BENCH check KIND I GUEST HOST         ok, bad or - (not seen)
#   BENCH trust 0|1                       snapvm restore has --trust-disks
cat >"$tmp/devices_rig.sh" <<RIG
runs=$RUNS disk_runs=$DISK_RUNS seq_mib=$SEQ_MIB rand_ops=$RAND_OPS disk_mib=$DISK_MIB
TODAY='$TODAY_CMDLINE'
PLAIN='$PLAIN_CMDLINE'
DEVCL='$DEV_CMDLINE'
RIG
cat >>"$tmp/devices_rig.sh" <<'RIG'
echo "BENCH kernel $(uname -r)"
S=/tmp/vm.sock M=/tmp/mnt DISK=/tmp/disk.img
REG_OFF=$((64 << 20)) REG_LEN=1048576
K="--kernel vmlinuz --initrd devices-initrd.gz --mem 256M --cpus 1"
failed=0 fspid= vm=
note() { echo "BENCH # $*"; }
fail() { failed=$((failed + 1)); note "$@"; }
tell() {	# WHAT FILE...: the end of a failed step's output
	_w=$1; shift
	cat "$@" 2>/dev/null | tr -d '\r\033' | tail -4 |
		awk -v w="$_w" '{ print "BENCH # " w ": " $0 }'
}
wait_for() {	# FILE PATTERN COUNT SECONDS
	_n=0
	while [ "$(grep -c "$2" "$1" 2>/dev/null)" -lt "$3" ]; do
		[ $_n -ge $(($4 * 10)) ] && return 1
		[ -n "$vm" ] && ! kill -0 "$vm" 2>/dev/null && return 1
		sleep 0.1; _n=$((_n + 1))
	done
}
# reap PID WHAT: wait for a process sent SIGKILL, at most 10 s (one stuck
# in the kernel cannot be waited for: its threads' stacks are shown).
reap() {
	_n=0
	while kill -0 "$1" 2>/dev/null && [ $_n -lt 100 ]; do sleep 0.1; _n=$((_n + 1)); done
	if kill -0 "$1" 2>/dev/null; then
		fail "$2 (pid $1) is stuck after SIGKILL:"
		for _t in /proc/"$1"/task/*; do
			sed "s/^/BENCH #   /" "$_t/stack" 2>/dev/null
		done
		return 1
	fi
	wait "$1" 2>/dev/null
}
# Every minute, a process in D state 5 minutes running is shown, once.
watchdog() {
	_seen= _shown=
	while sleep 60; do
		_now=
		for _st in /proc/[0-9]*/stat; do
			read -r _p _c _s _ <"$_st" 2>/dev/null || continue
			[ "$_s" = D ] || continue
			_k=0
			for _x in $_seen; do [ "${_x%:*}" = "$_p" ] && _k=${_x#*:}; done
			_k=$((_k + 1)); _now="$_now $_p:$_k"
			[ $_k -eq 5 ] || continue
			case " $_shown " in *" $_p "*) continue ;; esac
			_shown="$_shown $_p"
			echo "BENCH # stuck: pid $_p $_c in D state for 5 minutes:"
			for _t in /proc/"$_p"/task/*; do
				sed "s/^/BENCH #   /" "$_t/stack" 2>/dev/null
			done
		done
		_seen=$_now
	done
}
watchdog & wdpid=$!
ms() { read -r _up _ </proc/uptime; _f=${_up#*.}; now=$((${_up%.*} * 1000 + ${_f#0} * 10)); }
unmount() {
	[ -n "$fspid" ] || return 0
	kill -TERM $fspid 2>/dev/null
	_j=0
	while kill -0 $fspid 2>/dev/null && [ $_j -lt 100 ]; do
		sleep 0.1; _j=$((_j + 1))
	done
	kill -KILL $fspid 2>/dev/null && fail "the daemon ignored SIGTERM"
	reap $fspid "the daemon"
	_rc=$?
	[ $_rc -eq 0 ] || fail "the daemon exited with status $_rc"
	fspid=
	grep -q " $M fuse" /proc/mounts && { umount -l $M; fail "mount left"; }
}
mount_fs() {
	./snapfs /tmp/store $M -f 2>>/tmp/fs.err & fspid=$!
	_j=0
	until grep -q " $M fuse" /proc/mounts; do
		[ $_j -ge 300 ] && { fail "snapfs did not mount"; return 1; }
		sleep 0.1; _j=$((_j + 1))
	done
}
stop_vm() {	# WHAT: ask the VM on $S to quit, kill it after 30 s
	timeout 30 ./snapvm ctl $S quit >/dev/null 2>&1 ||
		note "$1: ctl quit failed or took more than 30 s"
	_n=0
	while kill -0 $vm 2>/dev/null && [ $_n -lt 300 ]; do sleep 0.1; _n=$((_n + 1)); done
	kill -KILL $vm 2>/dev/null && note "$1 did not quit, killed"
	reap $vm "$1"
	vm=
}
finish() {
	kill $wdpid 2>/dev/null
	unmount
	[ -s /tmp/fs.err ] && { fail "the daemon reported"; tell "snapfs" /tmp/fs.err; }
	echo "BENCH failed $failed"
	echo "BENCH end"
	exit $((failed > 0))
}
# Room on the tmpfs for the disk, the store and a snapshot with its disk.
mount -o remount,size=90% /tmp
truncate -s ${disk_mib}M $DISK

# ---- boot ----
i=0
while [ $i -le $runs ]; do
	for kind in today plain devices; do
		case $kind in
		today) cl=$TODAY dev= ;;
		plain) cl=$PLAIN dev= ;;
		devices) cl=$DEVCL dev="--disk $DISK --rng" ;;
		esac
		# shellcheck disable=SC2086
		t=$(./stamp -t 90 -o /tmp/out "devices-guest init" \
			"devices-guest ready" -- ./snapvm run $K --cmdline "$cl" \
			$dev </dev/null 2>/tmp/serr)
		rc=$?
		echo "BENCH boot $kind $i $t"
		[ $rc -eq 0 ] || { fail "boot $kind run $i failed"
			tell "boot $kind run $i" /tmp/serr /tmp/out; }
		grep -q "devices-guest insmod" /tmp/out &&
			fail "boot $kind run $i: $(grep -m1 'devices-guest insmod' /tmp/out)"
		[ $i -eq 0 ] && tr -d '\r' </tmp/out | grep '^\[' | head -12 |
			sed "s/^/BENCH con $kind /"
		[ $kind = devices ] && [ $rc -eq 0 ] &&
			! grep -q "ready disk=1 rng=virtio" /tmp/out &&
			fail "boot devices run $i: $(grep -m1 'devices-guest ready' /tmp/out)"
	done
	i=$((i + 1))
done

# Where the time goes: one boot of each with initcall_debug (in the log,
# not on the console at loglevel 5), the slowest initcalls and the uptime
# at which the kernel ran /init.
for kind in today plain devices; do
	case $kind in
	today) cl=$TODAY dev= ;;
	plain) cl=$PLAIN dev= ;;
	devices) cl=$DEVCL dev="--disk $DISK --rng" ;;
	esac
	# shellcheck disable=SC2086
	./stamp -t 90 -o /tmp/out "devices-guest initcalls done" -- ./snapvm run $K \
		--cmdline "$cl initcall_debug log_buf_len=4M bench=initcalls" $dev \
		</dev/null >/dev/null 2>&1
	tr -d '\r' </tmp/out | sed -n "s/^devices-guest \(slow\|gap\|init-at\|initcalls-[a-z]*\) /BENCH \1 $kind /p"
done

# ---- io ----
hd=-d
./blkbench -d sum $DISK 0 4096 >/dev/null 2>&1
[ $? -eq 3 ] && hd=
# KVM's counters of every VM (debugfs), read around each guest run.
grep -q " /sys/kernel/debug " /proc/mounts ||
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
kvmstat() {
	_s=
	for _x in exits mmio_exits irq_injections halt_exits; do
		_v=-
		[ -r /sys/kernel/debug/kvm/$_x ] && read -r _v </sys/kernel/debug/kvm/$_x
		_s="$_s $_v"
	done
	echo "$_s"
}
# snapvm's CPU time in clock ticks: user (guest time included), system,
# guest (/proc/PID/stat fields 14, 15 and 43).
cputime() {
	# shellcheck disable=SC2046
	set -- $(cat /proc/$vm/stat 2>/dev/null) 0
	[ $# -ge 43 ] && echo "${14} ${15} ${43}" || echo "- - -"
}
rm -f /tmp/in; mkfifo /tmp/in
# shellcheck disable=SC2086
./snapvm run $K --cmdline "$DEVCL bench=io" --disk $DISK \
	</tmp/in >/tmp/io.out 2>/tmp/io.err & vm=$!
exec 3>/tmp/in
gio() {	# ARGS: blkbench ARGS in the guest; its line in $r
	_c=$(grep -c '^devices-guest \(result\|failed\)' /tmp/io.out)
	echo "run $*" >&3
	r=
	wait_for /tmp/io.out '^devices-guest \(result\|failed\)' $((_c + 1)) 600 ||
		{ fail "guest: blkbench $*: no answer"; tell "io" /tmp/io.err /tmp/io.out; return 1; }
	r=$(tr -d '\r' </tmp/io.out | grep '^devices-guest \(result\|failed\)' | tail -1)
	case $r in
	"devices-guest result "*) r=${r#devices-guest result } ;;
	*) fail "guest: blkbench $*: $r"; r=; return 1 ;;
	esac
}
io_ok=0
if wait_for /tmp/io.out "^devices-guest ready disk=1" 1 120; then
	io_ok=1
else
	fail "the io VM was not ready with a disk"; tell "io" /tmp/io.err /tmp/io.out
fi
i=0
while [ $io_ok -eq 1 ] && [ $i -le $runs ]; do
	for op in seqw seqr randr randw; do
		n=$seq_mib
		case $op in rand*) n=$rand_ops ;; esac
		k0=$(kvmstat) c0=$(cputime)
		if gio -d -s $((i + 1)) $op /dev/vda $n; then
			echo "BENCH io guest $op $i ${r#* }"
			echo "BENCH kvm $op $i $k0 $(kvmstat)"
			echo "BENCH cpu $op $i $c0 $(cputime)"
		else
			io_ok=0; break
		fi
		if h=$(./blkbench $hd -s $((i + 1)) $op $DISK $n 2>/tmp/berr); then
			echo "BENCH io host $op $i ${h#* }"
		else
			fail "host: blkbench $op: $(cat /tmp/berr)"
		fi
	done
	i=$((i + 1))
done
if [ $io_ok -eq 1 ] && gio -d sum /dev/vda 0 4194304; then
	h=$(./blkbench sum $DISK 0 4194304)
	if [ "${r##* }" = "${h##* }" ]; then
		echo "BENCH iocheck same"
	else
		echo "BENCH iocheck differ"
		fail "the guest and the rig read different bytes: $r, $h"
	fi
fi
echo quit >&3
exec 3>&-
_n=0
while kill -0 $vm 2>/dev/null && [ $_n -lt 300 ]; do sleep 0.1; _n=$((_n + 1)); done
kill -KILL $vm 2>/dev/null && fail "the io VM did not end after quit"
reap $vm "the io VM"
vm=

# ---- snapshots ----
mkdir -p $M /tmp/snaps
./snapctl store init /tmp/store >/dev/null && mount_fs || { tell "snapfs" /tmp/fs.err; finish; }
mkdir $M/vm
ms; t0=$now
./cp $DISK $M/vm/disk.img || fail "cp of the disk into the mount failed"
ms; echo "BENCH import $((now - t0))"
# snaps VM PLACE RUNS [DISK SEED]: boot, ready, wrote, 3 ticks, RUNS + 1
# snapshots PLACE/VM-I; on tmpfs only the last is kept.
snaps() {
	_vm=$1 _pl=$2 _runs=$3 _disk=${4:-} _seed=${5:-}
	_cl="$DEVCL bench=tick" _dv=
	[ -n "$_disk" ] && { _cl="$_cl region=$REG_OFF:$_seed"; _dv="--disk $_disk"; }
	: >/tmp/vm.out
	# shellcheck disable=SC2086
	./snapvm run $K --control $S --cmdline "$_cl" $_dv \
		</dev/null >/tmp/vm.out 2>/tmp/vm.err & vm=$!
	if ! wait_for /tmp/vm.out "^tick " 3 180; then
		fail "$_vm: not ready and ticking"; tell "$_vm" /tmp/vm.err /tmp/vm.out
		stop_vm "$_vm"; return 1
	fi
	if [ -n "$_disk" ]; then
		_w=$(tr -d '\r' </tmp/vm.out | sed -n 's/^devices-guest wrote fill [0-9]* [0-9]* \([0-9a-f]*\)$/\1/p')
		[ -n "$_w" ] || { fail "$_vm: the guest wrote no region"; stop_vm "$_vm"; return 1; }
		eval "want_$_vm=$_w"
	fi
	_i=0
	while [ $_i -le $_runs ]; do
		_d=$_pl/$_vm-$_i
		# on tmpfs the one before goes first (its memory.bin stays open
		# as the base of this one)
		[ $_pl = /tmp/snaps ] && [ $_i -gt 0 ] && rm -rf $_pl/$_vm-$((_i - 1))
		_t=$(./stamp -t 600 -o /tmp/so "ok snapshot" -- ./snapvm ctl $S \
			snapshot $_d </dev/null 2>/tmp/serr)
		_p=$(sed -n 's/.* paused_ms=\([0-9.]*\).*/\1/p' /tmp/so)
		echo "BENCH snap $_vm $_i ${_t:--} ${_p:--}"
		[ -n "$_p" ] || { fail "$_vm: snapshot $_i failed"; tell "$_vm" /tmp/so /tmp/serr; }
		_i=$((_i + 1))
	done
	ln -s $_pl/$_vm-$_runs /tmp/last-$_vm
	stop_vm "$_vm"
	tr -d '\r' </tmp/vm.out | grep -q "devices-guest failed" &&
		fail "$_vm: $(tr -d '\r' </tmp/vm.out | grep -m1 'devices-guest failed')"
	return 0
}
snaps floor_t /tmp/snaps $runs
snaps floor_m $M $runs
snaps disk_t /tmp/snaps $disk_runs $DISK 11
rm -f $DISK	# its snapshot has its copy
snaps disk_m $M $disk_runs $M/vm/disk.img 12

# ---- restores ----
# Kinds: the VM's name, _trust for --trust-disks (when snapvm has it).
# Those that read the disk whole for its digest run disk_runs times, with
# no warm-up of their own (the --trust-disks kind before them restores the
# same snapshot).
trust=0
./snapvm restore --help 2>&1 | grep -q -- --trust-disks && trust=1
echo "BENCH trust $trust"
kinds="floor_t disk_t floor_m disk_m"
[ $trust -eq 1 ] && kinds="floor_t disk_t disk_t_trust floor_m disk_m disk_m_trust"
i=0
while [ $i -le $runs ]; do
	for kind in $kinds; do
		vmn=${kind%_trust}
		case $kind in
		disk_t|disk_m) [ $i -ge 1 ] && [ $i -le $disk_runs ] || continue ;;
		esac
		[ -d /tmp/last-$vmn ] || continue
		dir=$(readlink /tmp/last-$vmn)
		D=
		case $vmn in
		disk_t) D=/tmp/snaps/clone ;;
		disk_m) D=$M/clone-$kind-$i ;;
		esac
		set -- "tick "
		opt=
		if [ -n "$D" ]; then
			rm -rf $D; mkdir $D; opt="--disk-dir $D"
			set -- "tick " "devices-guest sum"
		fi
		[ $kind != $vmn ] && opt="$opt --trust-disks"
		# cold: the page cache dropped, for the mount a new daemon
		case $vmn in *_m) unmount ;; esac
		sync; echo 3 >/proc/sys/vm/drop_caches
		case $vmn in *_m) mount_fs ;; esac
		# shellcheck disable=SC2086
		t=$(./stamp -t 300 -o /tmp/out "first KVM_RUN" "$@" -- \
			./snapvm restore $dir --debug $opt </dev/null 2>/tmp/serr)
		rc=$?
		echo "BENCH restore $kind $i $t"
		[ $rc -eq 0 ] || { fail "$kind restore run $i failed"
			tell "$kind restore $i" /tmp/serr /tmp/out; }
		if [ -n "$D" ]; then
			eval "w=\$want_$vmn"
			g=$(tr -d '\r' </tmp/out | sed -n 's/^devices-guest sum [0-9]* sum [0-9]* [0-9]* \([0-9a-f]*\)$/\1/p' | head -1)
			h=$(./blkbench sum $D/disk0.img $REG_OFF $REG_LEN 2>/dev/null)
			h=${h##* }
			gs=- hs=bad
			[ -n "$g" ] && { gs=bad; [ "$g" = "$w" ] && gs=ok; }
			[ "$h" = "$w" ] && hs=ok
			echo "BENCH check $kind $i $gs $hs"
			[ $gs = bad ] || [ $hs = bad ] &&
				fail "$kind restore $i: region hash: wrote $w, guest read ${g:--}, rig read ${h:--}"
			rm -rf $D
		fi
		tr -d '\r' </tmp/out | grep -E 'BUG|Call Trace|Kernel panic' | head -2 |
			sed "s/^/BENCH # $kind restore $i: /"
	done
	i=$((i + 1))
done
finish
RIG

rig_t0=$(date +%s)
progs="$BUILD/snapfs $OUT/stamp $OUT/blkbench $(command -v cp)"
BUILD=$BUILD RIG_PROGS=$progs RIG_TIMEOUT=${RIG_TIMEOUT:-1800} \
	sh "$RIG" --smp "$RIG_SMP" --mem "$RIG_MEM" "$tmp/devices_rig.sh" \
	build/guest/vmlinuz "$tmp/devices-initrd.gz" >"$LOG" 2>&1
rc=$?
rig_secs=$(($(date +%s) - rig_t0))
if ! grep -q '^BENCH end$' "$LOG"; then
	echo "devices: the rig did not finish (status $rc); the end of $LOG:" >&2
	tail -20 "$LOG" >&2
	[ $rc -eq 0 ] && rc=125
	exit $rc
fi

bench_table '
function f(v, p) { return v == "-" ? "-" : sprintf("%." p "f", v) }
function yes(ok) { return ok ? "met" : "MISSED" }
# One median-min-max cell of key column col over n runs (p decimals).
function cell(key, col, n, p) {
	runs = n
	stats(key, col)
	return sprintf("%7s %7s %7s", f(med[col], p), f(lo[col], p),
		       f(hi[col], p))
}
function head(title, a, b, c) {
	printf "\n%-36s  %-23s  %-23s  %s\n", title, a, b, c
	printf "%-36s  %7s %7s %7s  %7s %7s %7s\n", "", "median", "min",
	       "max", "median", "min", "max"
}
function per(v, scale) { return v == "-" || v == 0 ? "-" : sprintf("%.0f", scale / v) }
$1 == "BENCH" && $2 == "boot" {
	k = "boot " $3; val[k, $4] = 1
	val[k, $4, 1] = $5 == "" ? "-" : $5
	val[k, $4, 2] = $6 == "" ? "-" : $6
}
$1 == "BENCH" && $2 == "io" {
	k = "io " $3 " " $4; val[k, $5] = 1
	val[k, $5, 1] = $9; val[k, $5, 2] = $10; val[k, $5, 3] = $8
	direct[$3] = $11
}
# BENCH kvm OP I EXITS MMIO IRQ HALT (before) EXITS MMIO IRQ HALT (after)
$1 == "BENCH" && $2 == "kvm" && $5 != "-" {
	k = "kvm " $3; val[k, $4] = 1
	for (c = 1; c <= 4; c++) val[k, $4, c] = $(8 + c) - $(4 + c)
}
# BENCH cpu OP I USER SYS GUEST (before) USER SYS GUEST (after), ticks
$1 == "BENCH" && $2 == "cpu" && $5 != "-" {
	k = "cpu " $3; val[k, $4] = 1
	for (c = 1; c <= 3; c++) val[k, $4, c] = $(7 + c) - $(4 + c)
}
$1 == "BENCH" && $2 == "slow" {
	if (nslow[$3] < 4) {
		sub(/\+0x.*/, "", $5)
		slow[$3] = slow[$3] sprintf("%s%s %.0f", nslow[$3] ? ", " : "",
					    $5, $4 / 1000)
	}
	nslow[$3]++
}
$1 == "BENCH" && $2 == "gap" {
	if (ngap[$3] < 2) {
		t = $0; sub(/^BENCH gap [^ ]* [^ ]* /, "", t)
		gap[$3] = gap[$3] sprintf("%s%s before \"%s\"",
					  ngap[$3] ? ", " : "", $4, t)
	}
	ngap[$3]++
}
$1 == "BENCH" && $2 == "init-at" { initat[$3] = $4 }
$1 == "BENCH" && $2 == "initcalls-from" { icfrom[$3] = $4 }
$1 == "BENCH" && $2 == "initcalls-sum" { icsum[$3] = $4 / 1e6 }
$1 == "BENCH" && $2 == "iocheck" { iocheck = $3 }
$1 == "BENCH" && $2 == "import" { import = $3 }
$1 == "BENCH" && $2 == "snap" {
	k = "snap " $3; val[k, $4] = 1; val[k, $4, 1] = $5; val[k, $4, 2] = $6
	val[k, $4, 3] = $5 == "-" || $6 == "-" ? "-" : $5 - $6
}
$1 == "BENCH" && $2 == "restore" {
	k = "restore " $3; val[k, $4] = 1
	val[k, $4, 1] = $5 == "" ? "-" : $5
	val[k, $4, 2] = $6 == "" ? "-" : $6
	val[k, $4, 3] = $7 == "" ? "-" : $7
	seenk[$3] = 1
}
$1 == "BENCH" && $2 == "check" {
	nchk[$3]++; if ($5 == "ok" && $6 == "ok") okchk[$3]++
}
$1 == "BENCH" && $2 == "trust" { trust = $3 }
$1 == "BENCH" && $2 == "failed" { failed = $3 }
END {
	printf "devices: in the rig (QEMU %s TCG, CPUs: %d, nested SVM, " \
	       "Linux %s kvm-amd); the guest: the same kernel, 256 MiB, 1 " \
	       "vCPU; %d runs after 1 warm-up (%d for the 1 GiB disk'"'"'s " \
	       "snapshots, after 1, and digest-checked restores, after none)\n", outer, smp, kernel,
	       nruns, druns

	head("boot, ms from fork", "------- init line -----",
	     "------- ready line ----", "ready x today")
	split("today plain devices", bk, " ")
	bn["today"] = "today: acpi=off pci=off blacklist"
	bn["plain"] = "plain"
	bn["devices"] = "--disk --rng, pci on, modules"
	runs = nruns; stats("boot today", 2); t = med[2]
	for (b = 1; b <= 3; b++) {
		c1 = cell("boot " bk[b], 1, nruns, 0)
		c2 = cell("boot " bk[b], 2, nruns, 0)
		printf "%-36s  %s  %s  %6s\n", bn[bk[b]], c1, c2, ratio(med[2], t)
	}
	printf "(today: %s\n plain: %s\n devices: %s)\n", today, plain, devcl
	for (b = 1; b <= 3; b++)
		if (bk[b] in initat)
			printf "(%s, one boot with initcall_debug: the first " \
			       "initcall at %.2f s of uptime, /init at %.2f s; " \
			       "initcalls took %.2f s in all, the slowest, ms: " \
			       "%s; the longest silences before them, ms: %s)\n",
			       bk[b], icfrom[bk[b]], initat[bk[b]], icsum[bk[b]],
			       slow[bk[b]], gap[bk[b]]

	head("virtio-blk, 1 GiB file on tmpfs", "------- guest --------",
	     "------- rig, file -----", "guest/rig")
	split("seqw seqr randr randw", ops, " ")
	on["seqw"] = sprintf("seq write %d MiB, 1 MiB, MB/s", seq)
	on["seqr"] = sprintf("seq read %d MiB, 1 MiB, MB/s", seq)
	on["randr"] = sprintf("rand read 4 KiB x %d, IOPS", rops)
	on["randw"] = sprintf("rand write 4 KiB x %d, IOPS", rops)
	for (o = 1; o <= 4; o++) {
		col = ops[o] ~ /^seq/ ? 1 : 2
		p = col == 1 ? 1 : 0
		c1 = cell("io guest " ops[o], col, nruns, p); g = med[col]
		c2 = cell("io host " ops[o], col, nruns, p); h = med[col]
		printf "%-36s  %s  %s  %6s\n", on[ops[o]], c1, c2, ratio(g, h)
		gm[ops[o]] = g; hm[ops[o]] = h
	}
	if (direct["host"] == 1)
		how = "O_DIRECT on the file"
	else
		how = "buffered (tmpfs refuses O_DIRECT), writes end with fdatasync"
	printf "(guest: blkbench -d, O_DIRECT on /dev/vda, writes end with " \
	       "fdatasync, a FLUSH; rig: %s; the guest and the rig read %s " \
	       "bytes back)\n", how, iocheck == "same" ? "the same" : "DIFFERENT"
	printf "(per request, median: 4 KiB read %s us in the guest, %s us " \
	       "in the rig; 1 MiB read %s us, %s us)\n",
	       per(gm["randr"], 1e6), per(hm["randr"], 1e6),
	       per(gm["seqr"], 1048576), per(hm["seqr"], 1048576)
	runs = nruns
	for (o = 1; o <= 4; o++) {
		stats("kvm " ops[o], 1); e = med[1]
		if (e == "-") continue
		stats("kvm " ops[o], 2); mm = med[2]
		stats("kvm " ops[o], 3); q = med[3]
		stats("kvm " ops[o], 4); hl = med[4]
		n = ops[o] ~ /^seq/ ? seq : rops
		printf "(KVM, %s: %.2f exits, %.2f MMIO exits to snapvm, %.2f " \
		       "interrupts injected, %.2f halts per %s)\n", ops[o],
		       e / n, mm / n, q / n, hl / n,
		       ops[o] ~ /^seq/ ? "MiB" : "4 KiB"
	}
	for (o = 1; o <= 4; o++) {
		stats("cpu " ops[o], 1); u = med[1]
		if (u == "-") continue
		stats("cpu " ops[o], 2); sy = med[2]
		stats("cpu " ops[o], 3); gu = med[3]
		stats("io guest " ops[o], 3); us = med[3]
		n = ops[o] ~ /^seq/ ? seq : rops
		# ticks of 10 ms: us per request = ticks * 1e4 / n
		# utime includes guest time; 10 ms ticks make small values noisy
		su = u - gu < 0 ? 0 : u - gu
		printf "(snapvm'"'"'s CPU time, %s, us per %s: %.0f in the guest, " \
		       "%.0f in snapvm'"'"'s user space, %.0f in the rig'"'"'s " \
		       "kernel (KVM, the file), of %.0f us wall; 10 ms " \
		       "ticks)\n", ops[o], ops[o] ~ /^seq/ ? "MiB" : "request",
		       gu * 1e4 / n, su * 1e4 / n, sy * 1e4 / n, us / n
	}

	head("snapshot (snapvm ctl snapshot)", "------- wall ms (ok) ---",
	     "------- paused_ms -----", "wall x floor  target")
	split("floor_t disk_t floor_m disk_m", sk, " ")
	sn["floor_t"] = "no disk, into tmpfs"
	sn["disk_t"] = "1 GiB disk on tmpfs, into tmpfs"
	sn["floor_m"] = "no disk, into the mount"
	sn["disk_m"] = "1 GiB disk in the mount, into it"
	for (s = 1; s <= 4; s++) {
		n = sk[s] ~ /^disk/ ? druns : nruns
		c1 = cell("snap " sk[s], 1, n, 0); w = med[1]
		c2 = cell("snap " sk[s], 2, n, 0); pz[sk[s]] = med[2]
		stats("snap " sk[s], 3); after[sk[s]] = med[3]
		printf "%-36s  %s  %s", sn[sk[s]], c1, c2
		if (sk[s] ~ /^floor/) { fl = w; printf "\n"; continue }
		r = ratio(w, fl)
		printf "  %6s", r
		if (sk[s] == "disk_m")
			printf "        <= 1.2x: %s", yes(r != "-" && r <= 1.2)
		printf "\n"
	}
	printf "(paused_ms with the disk x without: %s on tmpfs, %s in the " \
	       "mount)\n", ratio(pz["disk_t"], pz["floor_t"]),
	       ratio(pz["disk_m"], pz["floor_m"])
	printf "(after the VM resumed, until ok, median ms: %s and %s with " \
	       "the disk, %s and %s without: syncing, the disk'"'"'s SHA-256, " \
	       "publishing; the copy of the disk into the mount, coreutils " \
	       "cp: %s ms)\n", f(after["disk_t"], 0), f(after["disk_m"], 0),
	       f(after["floor_t"], 0), f(after["floor_m"], 0),
	       import == "" ? "-" : import

	head("restore (snapvm restore), cold", "--- first KVM_RUN ms --",
	     "--- next tick ms ------", "tick x floor  target")
	split("floor_t disk_t disk_t_trust floor_m disk_m disk_m_trust", rk, " ")
	rn["floor_t"] = "no disk, from tmpfs"
	rn["disk_t"] = "1 GiB disk, tmpfs, clone on tmpfs"
	rn["disk_t_trust"] = "  the same, --trust-disks"
	rn["floor_m"] = "no disk, from the mount"
	rn["disk_m"] = "1 GiB disk, mount, clone in it"
	rn["disk_m_trust"] = "  the same, --trust-disks"
	for (s = 1; s <= 6; s++) {
		if (!(rk[s] in seenk)) continue
		n = rk[s] == "disk_t" || rk[s] == "disk_m" ? druns : nruns
		c1 = cell("restore " rk[s], 1, n, 0)
		c2 = cell("restore " rk[s], 2, n, 0); w = med[2]
		printf "%-36s  %s  %s", rn[rk[s]], c1, c2
		if (rk[s] ~ /^floor/) { fl = w; printf "\n"; continue }
		r = ratio(w, fl)
		printf "  %6s", r
		if (rk[s] ~ /^disk_m/)
			printf "        <= 1.2x: %s", yes(r != "-" && r <= 1.2)
		printf "\n"
	}
	for (s = 1; s <= 6; s++) {
		if (!(rk[s] in nchk)) continue
		n = rk[s] == "disk_t" || rk[s] == "disk_m" ? druns : nruns
		runs = n; stats("restore " rk[s], 3)
		printf "(%s: the region written before the snapshot read back " \
		       "right by the guest and by the rig in %d of %d restores; " \
		       "the guest'"'"'s first read of it %s ms after the fork)\n",
		       rk[s], okchk[rk[s]], nchk[rk[s]], f(med[3], 0)
	}
	printf "(cold: the page cache dropped and, for the mount, a new " \
	       "snapfs daemon before each restore; the rig ran %d s)\n",
	       rigsecs
	for (i = 1; i <= nnotes; i++)
		print "devices: " notes[i]
	if (failed)
		printf "devices: %d failures (rig console: %s)\n", failed, logfile
	exit failed ? 1 : 0
}' -v rigsecs="$rig_secs" -v seq="$SEQ_MIB" -v rops="$RAND_OPS" \
	-v nruns="$RUNS" -v druns="$DISK_RUNS" -v today="$TODAY_CMDLINE" \
	-v plain="$PLAIN_CMDLINE" -v devcl="$DEV_CMDLINE"
