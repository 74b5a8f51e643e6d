#!/bin/sh
# layers: every #include "..." names its module from the one include root
# (the top of the tree; generated headers from the build directory), and no
# layer reaches upward or sideways (README.md, "Layout"):
#
#   snapshot/format   the snapshot format: itself and proto/ only
#   snapshot/store    the memory store: the format, itself, proto/
#   vmm, fs           libsnap and themselves; never each other
#   tools/snapctl     libsnap and itself
#   tests/guest       itself only (it is freestanding)
#   tests             anything
#
# The store's internal headers stay inside the store (and tests/).
set -uf
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/tap.sh

INTERNAL="snapshot/store/store_int.h snapshot/store/store_image.h
snapshot/store/pack_int.h"

# What a file in $1's folder may include, as path prefixes.
allowed() {
	case $1 in
	snapshot/format/*) echo "snapshot/format/ proto/" ;;
	snapshot/store/*) echo "snapshot/format/ snapshot/store/ proto/" ;;
	vmm/*) echo "vmm/ snapshot/format/ snapshot/store/ proto/" ;;
	fs/*) echo "fs/ snapshot/format/ snapshot/store/ proto/" ;;
	tools/snapctl/*) echo "tools/snapctl/ snapshot/format/ snapshot/store/ proto/" ;;
	tools/*) echo "snapshot/format/ snapshot/store/ proto/" ;;
	tests/guest/*) echo "tests/guest/" ;;
	tests/*) echo "*" ;;
	*) echo "" ;;
	esac
}

# Whether include $1 names a file of the tree (or one generated from it).
exists() {
	case $1 in
	proto/*.pb-c.h) [ -f "proto/$(basename "$1" .pb-c.h).proto" ] ;;
	tproto/*.pb-c.h) [ -f "tests/proto/$(basename "$1" .pb-c.h).proto" ] ;;
	*) [ -f "$1" ] ;;
	esac
}

# One line "file include" per quoted include of every source file.
includes=$(mktemp)
trap 'rm -f "$includes"' EXIT
find snapshot vmm fs tools tests -name '*.[chS]' | sort | while read -r f; do
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' \
		"$f" | sed "s|^|$f |"
done >"$includes"

check "the tree has includes to check" '[ "$(wc -l <"$includes")" -gt 200 ]'

bad=
while read -r f inc; do
	why=
	case $inc in
	*..*) why="goes through .." ;;
	*/*) ;;
	*) why="is a bare name, not a path from the top of the tree" ;;
	esac
	if [ -z "$why" ] && ! exists "$inc"; then
		why="names no file of the tree"
	fi
	if [ -z "$why" ]; then
		ok_prefix=
		for p in $(allowed "$f"); do
			case $inc in
			$p*) ok_prefix=1 ;;
			esac
		done
		[ -n "$ok_prefix" ] || why="reaches outside its layer"
	fi
	if [ -z "$why" ]; then
		for h in $INTERNAL; do
			[ "$inc" = "$h" ] || continue
			case $f in
			snapshot/store/*|tests/*) ;;
			*) why="is internal to the store" ;;
			esac
		done
	fi
	[ -n "$why" ] && bad="$bad
# $f: \"$inc\" $why"
done <"$includes"

if [ -z "$bad" ]; then
	ok "every include names its module and stays in its layer"
else
	not_ok "every include names its module and stays in its layer"
	echo "$bad" | sed '/^$/d'
fi

# The check itself sees a violation: vmm reaching into fs.
probe=$(f=vmm/x.c; inc=fs/snapfs.h; for p in $(allowed "$f"); do
	case $inc in $p*) echo inside ;; esac; done)
check "a vmm file including fs/ is seen as outside its layer" '[ -z "$probe" ]'

tap_end
