# The Linux guest's shared init code, sourced by the initrd's /init
# (tests/guest/linux-init.sh) and the root disk's /sbin/init
# (tests/guest/rootfs-init.sh); both images hold it as /lib/snapfs/guest.sh.
# It is the Linux counterpart of the test guest's console protocol
# (tests/guest/README.md), for snapvm's Linux tests.
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

# proc, sys and dev, each unless it is there already (switch_root brings
# the initrd's along). Debian's busybox has no mountpoint.
guest_mounts() {
	[ -e /proc/self ] || mount -t proc proc /proc
	grep -q '^[^ ]* /sys ' /proc/mounts || mount -t sysfs sys /sys
	grep -q '^[^ ]* /dev ' /proc/mounts || mount -t devtmpfs dev /dev
}

# The command line's words we use: $halt_after (digits, or empty) and
# $root (root=DEV, or empty).
guest_cmdline() {
	halt_after= root=
	read -r cmdline </proc/cmdline
	for word in $cmdline; do
		case $word in
		halt_after=*) halt_after=${word#halt_after=} ;;
		root=*) root=${word#root=} ;;
		esac
	done
	case $halt_after in
	*[!0-9]*) halt_after= ;;
	esac
}

# guest_virtio ID: is there a virtio device of that ID (0x0002 block,
# 0x0004 rng, 0x0013 vsock), with its driver loaded?
guest_virtio() {
	for d in /sys/bus/virtio/devices/*/device; do
		[ -f "$d" ] && [ "$(cat "$d")" = "$1" ] && return 0
	done
	return 1
}

# The agent (tests/guest/agent) on vsock port 52, in the background, when
# there is a vsock device for it.
guest_agent() {
	[ -x /bin/snapfs-agent ] && guest_virtio 0x0013 || return 0
	/bin/snapfs-agent serve </dev/null &
}

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

# Ready, then the ticks, for ever or until halt_after.
guest_ticks() {
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
}
