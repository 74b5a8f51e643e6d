#!/bin/sh
# The two snapfs bugs snapfsx found (tests/fsx/README.md), each reproduced
# on a mount of a new store with nothing but the shell. Prints one line
# per bug, "present" or "not seen", and exits 1 while any is present. Not
# part of make test: run it by hand (sh tests/fsx/repro.sh) to see whether
# a change in fs/ or snapshot/ fixed them, then drop the --avoid that
# steps around it from tests/integration/snapfsx.sh and tests/fsx/soak.sh.
#
# Needs $BUILD/snapfs and $BUILD/snapctl (BUILD defaults to build),
# /dev/fuse and fusermount3. Each daemon runs with -f in the background
# and is stopped by its pid; the mount is cleaned up on exit.
set -u
BUILD=${BUILD:-build}
work=$(mktemp -d /tmp/snapfsx-repro.XXXXXX) || exit 1
M=$work/mnt
pid=

mnt() {
	"$BUILD/snapfs" "$work/store" "$M" -f 2>>"$work/log" &
	pid=$!
	i=0
	until mountpoint -q "$M"; do
		i=$((i + 1))
		[ "$i" -gt 200 ] && { echo "snapfs did not mount"; exit 1; }
		sleep 0.05
	done
}

umnt() {
	fusermount3 -u "$M" && wait "$pid"
	pid=
}

# shellcheck disable=SC2317	# run by the trap
cleanup() {
	exec 3<&- 2>/dev/null
	mountpoint -q "$M" && fusermount3 -u "$M"
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid"
	mountpoint -q "$M" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

fresh() {
	mountpoint -q "$M" && umnt
	rm -rf "$work/store" "$M"
	mkdir "$M"
	"$BUILD/snapctl" store init "$work/store" >/dev/null || exit 1
	mnt
}

rc=0

# A clone shows data a truncate removed: cut, remount, grow, clone,
# remount.
fresh
head -c 1M /dev/urandom >"$work/orig"
mkdir "$M/s"
cp "$work/orig" "$M/s/f"
cp "$M/s/f" "$M/s/f2"
truncate -s 0 "$M/s/f"
umnt; mnt
truncate -s 1M "$M/s/f"
cp "$M/s/f" "$M/s/g"
umnt; mnt
if cmp -s -n 1M "$M/s/g" /dev/zero; then
	echo "cutadopt: not seen (a clone of a cut and regrown file reads zeros)"
else
	echo "cutadopt: present (a clone of a cut and regrown file shows" \
	     "what the cut removed)"
	rc=1
fi

# A new snapshot handed the dead inode of a removed one.
fresh
mkdir "$M/a"
echo hello >"$M/a/f"
exec 3<"$M/a/f"
rm -r "$M/a"
mkdir "$M/b"
if touch "$M/b/x" 2>/dev/null; then
	echo "deadinode: not seen (a file can be made in a new snapshot)"
else
	echo "deadinode: present (touch in a new snapshot: ENOENT, the" \
	     "removed one's inode number reused)"
	rc=1
fi
exec 3<&-
exit $rc
