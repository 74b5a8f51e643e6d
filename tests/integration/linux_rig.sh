#!/bin/sh
# snapvm boots Linux: Debian's bzImage (build/guest/vmlinuz) with the guest
# initrd (tests/guest/mkinitrd.sh, its /init is tests/guest/linux-init.sh)
# is ready and ticks with 1, 2 and 4 vCPUs; pause stops the ticks and
# resume restarts them without a burst of the missed ones; a snapshot of the
# running kernel restores in a new snapvm with its ticks going on; halt_after
# ends snapvm with status 0; and the kernel complains of nothing (no BUG,
# WARNING, soft lockup, clocksource, RCU stall, Call Trace or panic line on
# its console). The clock guest (the same kernel, an initrd of its own made
# here) sets its clock from the RTC at boot to this machine's time, runs
# hwclock -r, -w and -s, and restored 8 s after its snapshot reads the time
# of the restore (--clock now) or of the snapshot (--clock continue), its
# RTC the time of the restore either way. Prints TAP, with each boot's time
# to ready.
#
# Runs where there is a hardware KVM: here when there is one, otherwise inside
# the rig (tests/rig/rig.sh; $RIG overrides it), all boots in one rig run.
# LINUX_KERNEL overrides the kernel (an ELF vmlinux boots through PVH).
set -u
BUILD=${BUILD:-build}
SNAPVM=$BUILD/snapvm
KERNEL=${LINUX_KERNEL:-build/guest/vmlinuz}
INITRD=$BUILD/guest/initrd.cpio.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/lib/tap.sh
. tests/lib/where.sh

# The guest's command line: console=ttyS0 and nothing to spare probes.
# Linux finds no ACPI tables and goes on with the MP table, probes PCI bus
# 0 (a host bridge and no device here), and snapvm's RTC and i8042 (no
# keyboard, no mouse port) answer its probes at once. loglevel=5 prints
# KERN_WARNING and worse (a WARN() splat, soft lockups, RCU stalls,
# clocksource trouble) and nothing chattier; panic=-1 resets at once on a
# panic, which the checks see.
CMDLINE="console=ttyS0 loglevel=5 panic=-1"
# In the rig only: QEMU's TCG runs a nested guest's XSETBV without the SVM
# intercept, so the KVM below never learns the guest's XCR0 and puts back
# its own idea of it (x87 only) at every VM entry: XSAVE state is lost and
# XRSTOR of a signal frame fails (init dies of "bad frame in rt_sigreturn").
# A kernel that enables PKRU notices (CPUID 0xD.0 EBX is stale), WARNs
# "XSAVE consistency problem" and falls back to FXSAVE; noxsave does that
# quietly.
RIG_CMDLINE="noxsave"

# ---- the script that runs with KVM ---------------------------------------
#
# It prints "RESULT ok - NAME", "RESULT not ok - NAME" and "RESULT # text";
# rig_results (tests/lib/tap.sh) numbers them.

cat >"$tmp/linux_kvm.sh" <<'KVM'
. "$(dirname "$0")/kvm.sh"
KERNEL=${KERNEL:-./vmlinuz}
INITRD=${INITRD:-./initrd.cpio.gz}
CLOCK_INITRD=${CLOCK_INITRD:-./clock-initrd.cpio.gz}
MEM=268435456
COMPLAINTS='BUG|WARNING|soft lockup|clocksource|rcu.*stall|Call Trace|Kernel panic'
# Not a complaint, though shown: the clocksource watchdog saying it skipped
# a check because its timer ran a second or more late, which is the host
# stalling the guest (the rig shares a busy machine), not its clocks.
STALLED='clocksource: Long readout interval, skipping watchdog check'

# The uptime in hundredths of a second, in $now.
clock() { read -r up _ </proc/uptime; f=${up#*.}; now=$((${up%.*} * 100 + ${f#0})); }
secs() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }
ticks() { grep -c '^tick ' "$T/out"; }
# seen PATTERN COUNT SECONDS: COUNT console lines match PATTERN in time;
# false at once when snapvm has ended without them.
seen() {
	_i=0
	while [ $_i -lt $(($3 * 10)) ]; do
		[ "$(grep -c "$1" "$T/out")" -ge "$2" ] && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1; _i=$((_i + 1))
	done
	return 1
}
boot() {
	clock; t0=$now
	start run --kernel "$KERNEL" --initrd "$INITRD" --mem 256M "$@"
}
# ready CPUS: ready with CPUS CPUs within 120 s, which takes the time from
# snapvm's start; a VM that is not is stopped, so the next checks fail fast.
ready() {
	want=$1
	if seen "^snapfs-guest ready" 1 120; then
		clock
		res "# --cpus $1: ready $(secs $((now - t0))) s after snapvm started"
		check "--cpus $1: ready with $1 CPUs" \
			'grep -q "^snapfs-guest ready cpus=$want[[:space:]]*\$" "$T/out"'
	else
		res "not ok - --cpus $1: ready with $1 CPUs (not in 120 s)"
		tr -d '\r' <"$T/out" | tail -8 | sed 's/^/RESULT #   /'
		stop
	fi
}
# The kernel's complaints fail; its other lines (warnings and worse, at
# loglevel=5) are shown.
quiet() {
	tr -d '\r' <"$T/out" | grep -E "$COMPLAINTS" | grep -v "$STALLED" >"$T/bad"
	if [ -s "$T/bad" ]; then
		res "not ok - $1: the kernel complains of nothing"
		head -40 "$T/bad" | sed 's/^/RESULT #   /'
	else
		res "ok - $1: the kernel complains of nothing"
	fi
	tr -d '\r' <"$T/out" | grep '^\[' |
		awk -v c="$COMPLAINTS" -v s="$STALLED" '$0 !~ c || index($0, s)' |
		head -20 | sed 's/^/RESULT # console: /'
}

read -r up _ </proc/uptime
res "# this machine has been up $up s"

# 1 vCPU, halt_after: ready, ticks at their period, then the reset.
boot --cpus 1 --cmdline "$CMDLINE halt_after=25"
ready 1
seen "^tick 5" 1 30; clock; a=$now
seen "^tick 20" 1 30; clock; b=$now
check "--cpus 1: ticks 5 to 20 take 1.5 s, 1.2 s at least ($(secs $((b - a))) s)" \
	'[ "$(grep -c "^tick 20" "$T/out")" -eq 1 ] && [ $((b - a)) -ge 120 ]'
finish
check "halt_after=25: ticks 0-24, snapfs-guest poweroff, exit 0 (a reset)" \
	'[ "$rc" -eq 0 ] && [ "$(ticks)" -eq 25 ] &&
	 grep -q "^snapfs-guest poweroff" "$T/out" &&
	 grep -qx "snapvm: guest reset" "$T/err"'
quiet "--cpus 1"

S=$T/vm.sock

# ---- the clock ------------------------------------------------------------
#
# The clock guest prints its clocks as seconds since 1970 ("date" its
# system clock, "rtc" the RTC's): at boot, after hwclock -w put the RTC an
# hour ahead of it and after hwclock -s set it back from there, then every
# second. What can go wrong beside the clocks themselves: a line is printed
# up to a second after its time was read, and this machine's time is read
# after that (a few seconds of slack); the line printed first after a
# restore may have been read before the snapshot (the last of two is
# taken); the rig is slow, so boots and restores take seconds of their own.
hour=3600
gap=8				# seconds between the snapshot and the restore
# within A B SLACK: |A - B| <= SLACK
within() { [ $(($1 - $2)) -le "$3" ] && [ $(($2 - $1)) -le "$3" ]; }
# clock_line KIND: the last whole "clock KIND" line's numbers, $d (date)
# and $r (rtc), and this machine's time now, $h; empty when there is none.
clock_line() {
	l=$(tr -d '\r' <"$T/out" |
		grep -E "^clock $1 date=[0-9]+( rtc=[0-9]+)?\$" | tail -1)
	h=$(date +%s)
	d=${l#clock $1 date=}; d=${d%% *}; r=
	case $l in *rtc=*) r=${l##*rtc=} ;; esac
	[ -n "$l" ] || d=
}
num() { case $1 in ''|*[!0-9]*) return 1 ;; esac; }

h0=$(date +%s)
clock; t0=$now
start run --kernel "$KERNEL" --initrd "$CLOCK_INITRD" --mem 256M --cpus 1 \
	--control "$S" --cmdline "$CMDLINE"
if seen "^clock ready" 1 120; then
	clock
	res "# clock guest: ready $(secs $((now - t0))) s after snapvm started"
else
	res "not ok - clock guest: ready (not in 120 s)"
	tr -d '\r' <"$T/out" | tail -8 | sed 's/^/RESULT #   /'
	stop
fi
k=$(tr -d '\r' <"$T/out" | sed -n 's/^clock kernel .*rtc_cmos.*setting system clock to .* (\([0-9]*\))$/\1/p' | head -1)
check "boot: the kernel set its clock from the RTC, at this machine's time ($k, $h0 when snapvm started)" \
	'num "$k" && [ "$k" -ge $((h0 - 2)) ] && [ "$k" -le "$(date +%s)" ]'
clock_line boot
# Two seconds of slack both ways: the RTC has whole seconds, and the
# guest's clock runs at its own rate from there (under the rig's TCG, not
# quite this machine's).
check "boot: the guest's clock and RTC read this machine's time (date $d, rtc $r, $h0 to $h here)" \
	'num "$d" && num "$r" && [ "$d" -ge $((h0 - 2)) ] && [ "$d" -le $((h + 2)) ] && within "$r" "$d" 1'
l=$(tr -d '\r' <"$T/out" | grep '^clock hwclock-r ' | head -1)
check "hwclock -r: exit 0, this year's date ($l)" \
	'echo "$l" | grep -q "^clock hwclock-r rc=0 .*$(date -u +%Y)"'
clock_line set
check "hwclock -w: the RTC is set from the clock, an hour ahead (date $d, rtc $r, here $h)" \
	'num "$d" && num "$r" && within "$r" "$d" 1 && within "$d" $((h + hour)) 3'
clock_line hctosys
check "hwclock -s: the clock is set from the RTC, an hour ahead (date $d, here $h)" \
	'num "$d" && within "$d" $((h + hour)) 3'
seen "^clock now " 2 10
clock_line now
check "the clock and the RTC go on, an hour ahead (date $d, rtc $r, here $h)" \
	'num "$d" && num "$r" && within "$d" $((h + hour)) 3 && within "$r" $((h + hour)) 3'
r=$("$SNAPVM" ctl "$S" snapshot "$T/ck")
check "clock guest: snapshot" 'echo "$r" | grep -q "^ok snapshot $T/ck "'
h1=$(date +%s)
r=$("$SNAPVM" ctl "$S" quit)
wait "$pid"; pid=
quiet "clock guest"
sleep $gap

# --clock now (the default): both clocks read the time of the restore.
start restore "$T/ck"
seen "^clock now " 2 60
clock_line now
check "restored $gap s later: the clock and the RTC read the time of the restore, an hour ahead (date $d, rtc $r, here $h)" \
	'num "$d" && num "$r" && within "$d" $((h + hour)) 3 && within "$r" $((h + hour)) 3'
stop
quiet "restored, --clock now"

# --clock continue: the clock goes on from the snapshot; the RTC cannot.
start restore "$T/ck" --clock continue
seen "^clock now " 2 60
clock_line now
check "--clock continue: the clock goes on from the snapshot's time, $((h - h1)) s back, the RTC does not (date $d, rtc $r, here $h)" \
	'num "$d" && num "$r" && [ "$d" -ge $((h1 + hour - 3)) ] &&
	 [ "$d" -le $((h + hour - gap + 3)) ] && within "$r" $((h + hour)) 3'
stop
quiet "restored, --clock continue"
rm -rf "$T/ck"

# 2 vCPUs: pause and resume through the control socket, a snapshot, quit.
boot --cpus 2 --control "$S" --cmdline "$CMDLINE"
ready 2
check "--cpus 2: ticks" 'seen "^tick " 3 30'
r=$("$SNAPVM" ctl "$S" status)
check "ctl status: running, cpus=2 mem=$MEM" '[ "$r" = "ok running cpus=2 mem=$MEM" ]'
r=$("$SNAPVM" ctl "$S" pause)
a=$(ticks); sleep 2; b=$(ticks)
check "pause: ok paused, then no tick for 2 s (ticks $a, then $b)" \
	'[ "$r" = "ok paused" ] && [ "$a" -eq "$b" ]'
r=$("$SNAPVM" ctl "$S" status)
check "ctl status while paused" '[ "$r" = "ok paused cpus=2 mem=$MEM" ]'
clock; c0=$now
r=$("$SNAPVM" ctl "$S" resume)
check "resume: ok running, ticks again" \
	'[ "$r" = "ok running" ] && seen "^tick " $((b + 3)) 30'
sleep 1
clock; c=$(ticks)
check "resumed: no burst of the missed ticks ($((c - b)) in $(secs $((now - c0))) s)" \
	'[ $((c - b)) -le $(((now - c0) / 10 + 5)) ]'
tick_list() { tr -d '\r' <"$T/out" | sed -n 's/^tick \([0-9]*\)$/\1/p'; }
# The guest resumes before the reply comes: the snapshot holds a tick
# between the last one printed before the request and the last one
# printed once the reply is in.
before=$(tick_list | tail -1)
r=$("$SNAPVM" ctl "$S" snapshot "$T/lx")
res "# $r"
check "snapshot of the running kernel" 'echo "$r" | grep -q "^ok snapshot $T/lx "'
saved=$(tick_list | tail -1)
r=$("$SNAPVM" ctl "$S" quit)
wait "$pid"; rc=$?; pid=
check "ctl quit: snapvm exits 0" '[ "$r" = "ok quitting" ] && [ "$rc" -eq 0 ]'
quiet "--cpus 2"

# The snapshot restored in a new snapvm: no boot, the ticks go on.
start restore "$T/lx"
seen "^tick " 10 60
first=$(tick_list | head -1)
check "restore: no boot, ticks go on from the save (tick ${before:-?} to ${saved:-?} saved, tick ${first:-?} first)" \
	'[ "$(ticks)" -ge 10 ] && ! grep -q "^snapfs-guest ready" "$T/out" &&
	 [ -n "$first" ] && [ -n "$before" ] && [ -n "$saved" ] &&
	 [ "$first" -ge "$before" ] && [ "$first" -le $((saved + 3)) ]'
stop
quiet "restored"
rm -rf "$T/lx"

# 4 vCPUs.
boot --cpus 4 --cmdline "$CMDLINE"
ready 4
check "--cpus 4: ticks" 'seen "^tick " 3 30'
stop
quiet "--cpus 4"

rm -rf "$T"
res "# end"
KVM

need_built --skip "Linux guests" "$SNAPVM" "$KERNEL" "$INITRD"

# The clock guest's initrd: a static busybox and this /init.
CLOCK_INITRD=$tmp/clock-initrd.cpio.gz
root=$tmp/clock-root
mkdir -p "$root/bin" "$root/dev" "$root/proc" "$root/sys"
cp "${BUSYBOX:-/bin/busybox}" "$root/bin/busybox" || exit 1
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# The clock guest: its clocks on the console in seconds since 1970, "date"
# the system clock's, "rtc" the RTC's; hwclock -w sets the RTC an hour
# ahead and hwclock -s brings the clock there.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
rtc() { cat /sys/class/rtc/rtc0/since_epoch; }
echo "clock kernel $(dmesg | grep -m1 'setting system clock')"
echo "clock boot date=$(date +%s) rtc=$(rtc)"
out=$(hwclock -r -u 2>&1)
echo "clock hwclock-r rc=$? $out"
date -s "@$(($(date +%s) + 3600))" >/dev/null
hwclock -w -u
echo "clock set date=$(date +%s) rtc=$(rtc)"
date -s @1000000000 >/dev/null
hwclock -s -u
echo "clock hctosys date=$(date +%s)"
echo "clock ready"
while :; do
	echo "clock now date=$(date +%s) rtc=$(rtc)"
	sleep 1
done
INIT
chmod 0755 "$root/init" "$root/bin/busybox"
(cd "$root" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 \
	>"$CLOCK_INITRD" || exit 1

# The command line and the kernel go in the script: no environment
# reaches it (noxsave only in the rig). One rig CPU: with two, SMP guests
# lose IPIs and hang (soft lockups in smp_call_function_many_cond, also
# under QEMU -enable-kvm in the rig), and its TCG runs one CPU at a time
# anyway (thread=single). Debian's kernel needs a hardware KVM: a
# PVM-based /dev/kvm (kvm_pvm, as on this project's machines) runs the
# test guest but not Linux, so kvm_or_rig takes it to the rig there.
kvm_here || CMDLINE="$CMDLINE $RIG_CMDLINE"
{ printf "CMDLINE='%s' KERNEL=./%s\n" "$CMDLINE" "$(basename "$KERNEL")"
  cat "$tmp/linux_kvm.sh"; } >"$tmp/linux_rig_kvm.sh"
clock0=$(date +%s)
kvm_or_rig --timeout 900 "Linux guests" "$tmp/linux_rig_kvm.sh" \
	"$tmp/kvm.log" "$KERNEL" "$INITRD" "$CLOCK_INITRD"
rig_results "$tmp/kvm.log"
echo "# wall time: $(($(date +%s) - clock0)) s"
tap_end
