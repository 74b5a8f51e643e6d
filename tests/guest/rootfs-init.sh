#!/bin/sh
# /sbin/init of the Linux guest's root disk (tests/guest/mkrootfs.sh),
# started by the initrd's /init (tests/guest/linux-init.sh) after it loaded
# the modules and switched to the disk: the agent when there is a vsock
# device, then ready and the ticks (/lib/snapfs/guest.sh, from
# linux-lib.sh, says what the console shows). It loads nothing and mounts
# only what the initrd did not bring along.
export PATH=/bin
. /lib/snapfs/guest.sh

guest_mounts
exec </dev/console >/dev/console 2>&1
guest_cmdline
guest_agent
guest_ticks
