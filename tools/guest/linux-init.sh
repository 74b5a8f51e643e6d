#!/bin/busybox sh
# /init of the Linux guest's initrd (tools/guest/mkinitrd.sh puts it there,
# beside a static busybox): the Linux counterpart of the test guest's
# console protocol (tools/guest/README.md), for snapvm's Linux tests.
#
# On the console, one whole line each and nothing else:
#
#   snapfs-guest ready cpus=N    once userland runs (N = online CPUs)
#   tick N                       every 100 ms from ready, N = 0, 1, 2, ...
#   snapfs-guest poweroff        after ticks 0..TICKS-1 with halt_after=TICKS
#
# Ticks follow the clock (/proc/uptime, 10 ms steps), so the period does not
# drift; after a stop longer than a period (a paused VM) the schedule starts
# again from now instead of printing the missed ticks in a burst.
#
# halt_after ends the machine with `reboot -f`: snapvm has no ACPI, and the
# kernel's restart then falls back to the i8042 reset (port 0x64, 0xfe),
# which ends snapvm with status 0. `poweroff -f` would find no way to power
# off, return to init, and the kernel would panic on init's exit.
/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
# The kernel opened /dev/console (from its built-in initramfs) for us; open
# it again from devtmpfs in case that one was missing.
exec </dev/console >/dev/console 2>&1

halt_after=
read -r cmdline </proc/cmdline
for word in $cmdline; do
	case $word in
	halt_after=*) halt_after=${word#halt_after=} ;;
	esac
done
case $halt_after in
*[!0-9]*) halt_after= ;;
esac

# The uptime in hundredths of a second, in $now, without a fork.
uptime_cs() {
	read -r up _ </proc/uptime
	frac=${up#*.}
	now=$((${up%.*} * 100 + ${frac#0}))
}

poweroff_now() {
	echo "snapfs-guest poweroff"
	reboot -f
	sleep 10
	echo "snapfs-guest reboot -f did not end the machine"
	exit 1
}

echo "snapfs-guest ready cpus=$(grep -c '^processor' /proc/cpuinfo)"
uptime_cs
base=$now k=0 n=0
while :; do
	[ "$n" = "$halt_after" ] && poweroff_now
	echo "tick $n"
	n=$((n + 1)) k=$((k + 1))
	uptime_cs
	if [ $((now - base - k * 10)) -gt 10 ]; then
		base=$now k=1		# stopped for more than a period
	fi
	wait_cs=$((base + k * 10 - now))
	[ "$wait_cs" -gt 0 ] && usleep $((wait_cs * 10000))
done
