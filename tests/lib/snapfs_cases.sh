# What the snapfs scripts of tests/integration share: snapfs.sh (names
# and clones) and snapfs_daemon.sh (the daemon and its data).
# Sourced first; POSIX sh, run from the top of the tree.
#
# Sets BUILD, SNAPFS, SNAPCTL, MKSNAP, MIB, MEM (the sample's memory),
# FILES (a snapshot's three) and PY, sources tap.sh, run.sh, chunks.sh
# and mount.sh, and makes $work (fuse_setup: skipped loudly without
# FUSE); fails without the programs. Then:
#
#   answers             the daemon of $MNT still runs and answers
#   hash_of FILE        its SHA-256 (in the mount read with O_DIRECT)
#   hash_is FILE SUM, same_files DIR DIR, size_of FILE
#   poke FILE OFF LEN   LEN random bytes written at OFF
#   stat_of KEY         KEY of `snapctl store stats --json $STORE`
#   store_verify        snapctl store verify $STORE succeeds
#   all_clean           the last case of each script: store verify and gc
#                       clean, no sanitizer report in any daemon's stderr
#   snapfs_main CASES   make_sources (the script's, with its output in a
#                       failure), then run_cases CASES, a failed case
#                       showing the daemon's stderr; ends the script
#   snapfs_sources      the sample snapshot $work/src (2 vCPUs, $MEM, a
#                       digest), the store, and $MNT made
set -u
BUILD=${BUILD:-build}
SNAPFS=$BUILD/snapfs
SNAPCTL=$BUILD/snapctl
MKSNAP=$BUILD/tests/mksnap
MIB=1048576
MEM=$((32 * MIB))	# the sample snapshot
FILES="manifest.bin state.bin memory.bin"

. tests/lib/tap.sh
. tests/lib/run.sh
. tests/lib/chunks.sh
. tests/lib/mount.sh
fuse_setup "$(basename "$0" .sh)"
need_built "$SNAPFS" "$SNAPCTL" "$MKSNAP" python3
err=$work/case.log	# what not_ok shows under a failed case

# python3 itself, not a wrapper that takes a second to start
PY=$(python3 -c 'import sys; print(sys.executable)') || PY=python3

# The daemon of $MNT still runs and answers.
answers() {
	if ! alive "$pid"; then
		echo "the daemon is gone"
		show_derr
		return 1
	fi
	ls "$MNT" >/dev/null || { echo "ls $MNT fails"; return 1; }
}

# SHA-256 of file $1; in the mount, read with O_DIRECT: what the daemon
# serves now, not what the page cache kept.
hash_of() {
	case $1 in
	"$MNT"/*)
		dd if="$1" bs=$MIB iflag=direct 2>/dev/null | sha256sum |
			cut -d' ' -f1 ;;
	*)
		sha256sum "$1" | cut -d' ' -f1 ;;
	esac
}

# File $1 has SHA-256 $2.
hash_is() {
	got=$(hash_of "$1")
	[ "$got" = "$2" ] && return 0
	echo "$1: sha256 $got, expected $2"
	return 1
}

# Files of snapshot directories $1 and $2 are the same.
same_files() {
	for f in $FILES; do
		cmp "$1/$f" "$2/$f" || return 1
	done
}

size_of() { stat -c %s "$1"; }

# Write $3 random bytes into file $1 at byte offset $2, without truncating.
poke() {
	dd if=/dev/urandom of="$1" bs="$3" count=1 seek="$2" \
		oflag=seek_bytes conv=notrunc 2>"$work/dd.err" ||
		{ echo "writing $3 bytes at $2 of $1 failed:"; cat "$work/dd.err"; return 1; }
}

# The value of key $2 in `snapctl store stats --json STORE`.
stat_of() {
	"$SNAPCTL" store stats --json "$STORE" >"$work/stats.json" ||
		{ echo "snapctl store stats failed"; return 1; }
	"$PY" -c '
import json, sys
print(json.load(open(sys.argv[1]))[sys.argv[2]])
' "$work/stats.json" "$1"
}

store_verify() {
	run "$SNAPCTL" store verify "$STORE"
	succeeded
}

all_clean() {
	if is_mounted "$MNT"; then
		umount_snapfs || return 1
	fi
	store_verify || return 1
	run "$SNAPCTL" store gc "$STORE"
	succeeded || return 1
	store_verify || return 1
	for f in "$work"/daemon.*.err; do
		no_reports "$f" || return 1
	done
}

snapfs_sources() {
	"$MKSNAP" "$work/src" --vcpus 2 --mem "$MEM" --digest &&
	"$SNAPCTL" store init "$STORE" &&
	mkdir "$MNT"
}

case_failed() { show_derr; }

snapfs_main() {
	if ! make_sources >"$err" 2>&1; then
		not_ok "make the sample snapshots and the store"
		tap_end
	fi
	run_cases "$1"
	tap_end
}
