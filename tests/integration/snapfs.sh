#!/bin/sh
# snapfs on real FUSE mounts of a store made by snapctl store init: browse
# (cp -r in, cmp, snapctl verify, stat, stable inode numbers, statfs); cp's
# copy_file_range and the constant-time clone (no new chunks); clone
# isolation both ways; hard links; renames; rm -r of a snapshot sharing
# chunks; the refusals (EPERM, long names, ENOTEMPTY, symlinks); EFBIG past
# the largest image, the file left as it was; data that survives a remount
# and a kill -9; eight concurrent readers; mmap private and shared; a
# corrupt chunk (EIO, named in the daemon's log); SIGTERM, SIGINT and
# fusermount3 -u; -o ro; snapctl store gc of a mounted store (done by its
# daemon); a second daemon refused.
# Prints TAP.
#
# Needs $BUILD/snapfs, $BUILD/snapctl and $BUILD/tests/mksnap (BUILD
# defaults to build), /dev/fuse and fusermount3 (skipped without them),
# python3, and strace for one case; builds nothing. Run from the top of the
# tree. Every daemon runs with -f in the background, is stopped by its pid
# and its mount cleaned up on exit, even when a check fails. With a
# sanitizer build (BUILD=build/san) a daemon's stderr must carry no report.
# SNAPFS_TEST_TIMES=1 adds each case's time as a comment.
# shellcheck disable=SC2015,SC2012	# "A && B || fail" is meant; ls of our names
set -u
BUILD=${BUILD:-build}
SNAPFS=$BUILD/snapfs
SNAPCTL=$BUILD/snapctl
MKSNAP=$BUILD/tests/mksnap
MIB=1048576
MEM=$((32 * MIB))	# the base snapshot
BIG=$((256 * MIB))	# the clone of a large, non-zero memory.bin
READ=$((64 * MIB))	# the file the concurrent readers share
FILES="manifest.bin state.bin memory.bin"

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
	echo "snapfs.sh: /dev/fuse or fusermount3 missing: FUSE tests not run" >&2
	echo "1..0 # SKIP /dev/fuse missing: FUSE tests not run"
	exit 0
fi
for prog in "$SNAPFS" "$SNAPCTL" "$MKSNAP"; do
	if [ ! -x "$prog" ]; then
		echo "1..1"
		echo "not ok 1 - $prog exists (build it first)"
		exit 1
	fi
done

# python3 itself, not a wrapper that takes a second to start
PY=$(python3 -c 'import sys; print(sys.executable)') || PY=python3

work=$(mktemp -d /tmp/snapfs-test.XXXXXX) || exit 1
STORE=$work/store
MNT=$work/mnt
MNT2=$work/mnt2
pids=		# daemons started and not yet waited for
pid=		# the daemon serving $MNT
derr=		# its stderr
dn=0		# daemons started

. tests/lib/tap.sh
. tests/lib/chunks.sh
err=$work/case.log	# what not_ok shows under a failed case

# ---- daemons -----------------------------------------------------------------

. tests/lib/daemon.sh

# A libfuse daemon only handles SIGINT when it is not ignored, and sh
# starts background jobs with SIGINT ignored: give the daemon the default.
if env --default-signal=INT true 2>/dev/null; then
	sigdfl="env --default-signal=INT"
else
	sigdfl=
fi

# Start a daemon on store $STORE at mount point $1 (more arguments go to
# snapfs) in the background with -f; its pid in $lastpid, its stderr in
# $lasterr. Does not wait for the mount.
spawn() {
	mp=$1
	shift
	dn=$((dn + 1))
	lasterr=$work/daemon.$dn.err
	# shellcheck disable=SC2086	# $sigdfl is a command or nothing
	$sigdfl "$SNAPFS" "$STORE" "$mp" -f "$@" </dev/null >"$lasterr" 2>&1 &
	lastpid=$!
	pids="$pids $lastpid"
}

# Mount $STORE on $MNT (arguments go to snapfs) and wait for the mount.
mount_fs() {
	if is_mounted "$MNT"; then
		echo "$MNT is already mounted"
		return 1
	fi
	spawn "$MNT" "$@"
	pid=$lastpid derr=$lasterr
	i=0
	until is_mounted "$MNT"; do
		if ! alive "$pid"; then
			wait "$pid"
			echo "snapfs $* exited with status $? before mounting"
			forget_pid "$pid"
			show_derr
			return 1
		fi
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then
			echo "snapfs $* did not mount in 10 s"
			show_derr
			return 1
		fi
		sleep 0.1
	done
}

# The daemon, after being told to go, exits 0, leaves no mount and no
# sanitizer report.
exits_clean() {
	wait_exit "$pid" || { show_derr; return 1; }
	if [ "$rc" -ne 0 ]; then
		echo "snapfs exited with status $rc, expected 0"
		show_derr
		return 1
	fi
	if is_mounted "$MNT"; then
		echo "$MNT is still mounted after the daemon exited"
		return 1
	fi
	no_reports "$derr"
}

# Unmount with fusermount3 -u and check the daemon's exit.
umount_fs() {
	if ! fusermount3 -u "$MNT"; then
		echo "fusermount3 -u $MNT failed"
		show_derr
		return 1
	fi
	exits_clean
}

remount() {
	umount_fs || return 1
	mount_fs "$@"
}

# A mount for the next case: the current one when it still answers.
ensure_mounted() {
	if is_mounted "$MNT" && [ -n "$pid" ] && alive "$pid" &&
	   ls "$MNT" >/dev/null 2>&1; then
		return 0
	fi
	if [ -n "$pid" ] && ours "$pid"; then
		kill -TERM "$pid"
		wait_exit "$pid" 10 || { ours "$pid" && kill -KILL "$pid"; }
	fi
	if is_mounted "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	fi
	mount_fs
}

cleanup() {
	for p in $pids; do
		ours "$p" && kill -TERM "$p"
	done
	for p in $pids; do
		i=0
		while ours "$p" && [ "$i" -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		ours "$p" && kill -KILL "$p"
	done
	for m in "$MNT" "$MNT2"; do
		if is_mounted "$m"; then
			fusermount3 -u "$m" 2>/dev/null ||
				fusermount3 -uz "$m" 2>/dev/null
		fi
	done
	if is_mounted "$MNT" || is_mounted "$MNT2"; then
		echo "snapfs.sh: $work is left: still mounted" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# ---- helpers -----------------------------------------------------------------

note() { echo "$*" >>"$work/notes"; }

# Run a command: stdout and stderr to $work/out and $work/err, status in $rc.
run() {
	"$@" >"$work/out" 2>"$work/err"
	rc=$?
}

show() {
	echo "stdout:"
	sed 's/^/  /' "$work/out"
	echo "stderr:"
	sed 's/^/  /' "$work/err"
}

# The last command run failed, saying $1 (a regex) on stderr.
failed_saying() {
	if [ "$rc" -eq 0 ]; then
		echo "succeeded, expected a failure saying /$1/"
		show
		return 1
	fi
	grep -Eq -- "$1" "$work/err" && return 0
	echo "failed with status $rc, but stderr does not match /$1/"
	show
	return 1
}

succeeded() {
	[ "$rc" -eq 0 ] && return 0
	echo "exit status $rc, expected 0"
	show
	return 1
}

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

# Byte $2 of file $1 xor 255, in place (python: the chunk files are binary).
flip() {
	"$PY" -c '
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(1)
    f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))
' "$1" "$2"
}

# ---- cases -------------------------------------------------------------------

browse() {
	mount_fs || return 1
	mkdir "$MNT/empty" || return 1
	[ -d "$MNT/empty" ] && [ -z "$(ls -A "$MNT/empty")" ] ||
		{ echo "mkdir made no empty snapshot"; return 1; }
	cp -r "$work/src" "$MNT/base" || return 1
	ls "$MNT" >"$work/ls" || return 1
	grep -qx base "$work/ls" && grep -qx empty "$work/ls" ||
		{ echo "ls $MNT:"; cat "$work/ls"; return 1; }
	[ "$(ls "$MNT/base" | tr '\n' ' ')" = "manifest.bin memory.bin state.bin " ] ||
		{ echo "ls $MNT/base:"; ls -l "$MNT/base"; return 1; }
	same_files "$work/src" "$MNT/base" || return 1
	run "$SNAPCTL" verify "$MNT/base"
	succeeded || return 1
	grep -q ': ok (.*memory digest checked)' "$work/out" ||
		{ echo "verify did not check the memory digest"; show; return 1; }
	for f in $FILES; do
		a=$(size_of "$work/src/$f") b=$(size_of "$MNT/base/$f")
		[ "$a" = "$b" ] ||
			{ echo "$f: st_size $b in the mount, $a outside"; return 1; }
	done
	# shellcheck disable=SC2046	# the fields, split
	set -- $(stat -c '%b %B %s' "$MNT/base/memory.bin")
	[ $(($1 * $2)) -ge "$3" ] ||
		{ echo "memory.bin looks sparse: $1 blocks of $2 for $3 bytes"; return 1; }
	inos=$(stat -c '%n %i' "$MNT/base" "$MNT/base"/*) || return 1
	# statfs
	run stat -f -c '%l %b %S' "$MNT"
	succeeded || return 1
	# shellcheck disable=SC2046	# the fields, split
	set -- $(cat "$work/out")
	[ "$1" -eq 255 ] && [ "$2" -gt 0 ] && [ "$3" -gt 0 ] ||
		{ echo "stat -f: namelen $1, blocks $2, size $3"; return 1; }
	remount || return 1
	inos2=$(stat -c '%n %i' "$MNT/base" "$MNT/base"/*) || return 1
	[ "$inos" = "$inos2" ] ||
		{ echo "inode numbers before the remount:"; echo "$inos";
		  echo "after:"; echo "$inos2"; return 1; }
	same_files "$work/src" "$MNT/base"
}

# The sum of what copy_file_range returned in strace log $1.
cfr_total() {
	sed -n 's/.*copy_file_range(.*) = \([0-9][0-9]*\)$/\1/p' "$1" |
		awk '{ s += $1; n++ } END { if (n) print s; else print "none" }'
}

# Delta files in the store. A clone freezes its source's head delta and
# gives the source and the clone a new one each (docs/store.md): at least
# two new deltas a file, where a copy of its bytes makes one.
deltas() { ls "$STORE/deltas" | wc -l; }

clone_made_deltas() {
	[ $(($2 - $1)) -ge $((2 * $3)) ] && return 0
	echo "deltas: $1 before the copy, $2 after: $3 file(s) copied, not cloned"
	echo "(the kernel copies by itself when the daemon does not clone)"
	return 1
}

cp_uses_copy_file_range() {
	ensure_mounted || return 1
	mkdir "$MNT/cfr" || return 1
	d0=$(deltas)
	strace -f -o "$work/strace.log" -e trace=copy_file_range \
		cp "$MNT/base/memory.bin" "$MNT/cfr/memory.bin" || return 1
	total=$(cfr_total "$work/strace.log")
	[ "$total" = "$MEM" ] ||
		{ echo "copy_file_range returned $total in all, expected $MEM:";
		  cat "$work/strace.log"; return 1; }
	clone_made_deltas "$d0" "$(deltas)" 1 || return 1
	cmp "$MNT/base/memory.bin" "$MNT/cfr/memory.bin"
}

# A 256 MiB memory.bin of random bytes, cloned with cp -r: the same bytes,
# no new chunk until the clone is written.
clone_shares_chunks() {
	ensure_mounted || return 1
	cp -r "$work/srcbig" "$MNT/big" || return 1
	dd if=/dev/urandom of="$MNT/big/memory.bin" bs=$MIB \
		count=$((BIG / MIB)) conv=notrunc,fsync 2>"$work/dd.err" ||
		{ cat "$work/dd.err"; return 1; }
	[ "$(size_of "$MNT/big/memory.bin")" = "$BIG" ] || return 1
	sync "$MNT"/big/* || return 1
	before=$(stat_of unique_chunks) || return 1
	[ "$before" -ge $((BIG / 262144 / 2)) ] ||
		{ echo "only $before unique chunks after writing $BIG random bytes"; return 1; }
	d0=$(deltas) t0=$(date +%s.%N)
	cp -r "$MNT/big" "$MNT/bigclone" || return 1
	t1=$(date +%s.%N)
	clone_made_deltas "$d0" "$(deltas)" 3 || return 1
	note "cp -r of a 256 MiB snapshot in the mount took $(echo "$t0 $t1" | awk '{ printf "%.3f", $2 - $1 }') s"
	sync "$MNT"/bigclone/* || return 1
	after=$(stat_of unique_chunks) || return 1
	[ "$after" -eq "$before" ] ||
		{ echo "unique chunks: $before before the clone, $after after"; return 1; }
	same_files "$MNT/big" "$MNT/bigclone" || return 1
	poke "$MNT/bigclone/memory.bin" $((5 * MIB)) $MIB || return 1
	sync "$MNT/bigclone/memory.bin" || return 1
	written=$(stat_of unique_chunks) || return 1
	[ "$written" -gt "$after" ] ||
		{ echo "unique chunks: $after before writing 1 MiB into the clone, $written after"; return 1; }
	! cmp -s "$MNT/big/memory.bin" "$MNT/bigclone/memory.bin" ||
		{ echo "the write did not change the clone"; return 1; }
	rm -r "$MNT/big" "$MNT/bigclone"
}

# Writes at chunk 0, across a chunk boundary (unaligned) and at the end.
poke_three() {
	poke "$1" 0 4096 &&
	poke "$1" $((3 * 262144 - 1001)) 7777 &&
	poke "$1" $((MEM - 513)) 513
}

clone_isolation() {
	ensure_mounted || return 1
	cp -r "$MNT/base" "$MNT/iso_a" || return 1
	cp -r "$MNT/iso_a" "$MNT/iso_b" || return 1
	a0=$(hash_of "$MNT/iso_a/memory.bin") b0=$(hash_of "$MNT/iso_b/memory.bin")
	[ "$a0" = "$b0" ] && [ "$a0" = "$(hash_of "$work/src/memory.bin")" ] ||
		{ echo "the clones differ from the source"; return 1; }
	poke_three "$MNT/iso_b/memory.bin" || return 1
	b1=$(hash_of "$MNT/iso_b/memory.bin")
	[ "$b1" != "$b0" ] || { echo "writing B did not change B"; return 1; }
	hash_is "$MNT/iso_a/memory.bin" "$a0" ||
		{ echo "writing the clone changed its source"; return 1; }
	poke_three "$MNT/iso_a/memory.bin" || return 1
	a1=$(hash_of "$MNT/iso_a/memory.bin")
	[ "$a1" != "$a0" ] && [ "$a1" != "$b1" ] ||
		{ echo "writing A did not change A"; return 1; }
	hash_is "$MNT/iso_b/memory.bin" "$b1" ||
		{ echo "writing the source changed its clone"; return 1; }
	hash_is "$MNT/base/memory.bin" "$a0" ||
		{ echo "the clones' writes changed base"; return 1; }
	# and through the page cache, the way cmp sees them
	cmp "$MNT/base/memory.bin" "$work/src/memory.bin"
}

hard_link() {
	ensure_mounted || return 1
	mkdir "$MNT/lnk" || return 1
	ln "$MNT/iso_a/memory.bin" "$MNT/lnk/memory.bin" || return 1
	# shellcheck disable=SC2046	# the fields, split
	set -- $(stat -c '%i %h' "$MNT/iso_a/memory.bin" "$MNT/lnk/memory.bin")
	[ "$1" = "$3" ] && [ "$2" = 2 ] && [ "$4" = 2 ] ||
		{ echo "after ln: inode $1 links $2, inode $3 links $4"; return 1; }
	poke "$MNT/lnk/memory.bin" 12345 100000 || return 1
	h=$(hash_of "$MNT/lnk/memory.bin")
	hash_is "$MNT/iso_a/memory.bin" "$h" ||
		{ echo "a write through one name does not show through the other"; return 1; }
	cmp "$MNT/iso_a/memory.bin" "$MNT/lnk/memory.bin" || return 1
	rm "$MNT/lnk/memory.bin" || return 1
	[ ! -e "$MNT/lnk/memory.bin" ] || { echo "rm left the name"; return 1; }
	[ "$(stat -c %h "$MNT/iso_a/memory.bin")" = 1 ] ||
		{ echo "link count $(stat -c %h "$MNT/iso_a/memory.bin") after rm, expected 1"; return 1; }
	hash_is "$MNT/iso_a/memory.bin" "$h" || return 1
	# the other way round
	ln "$MNT/iso_a/memory.bin" "$MNT/lnk/m2" || return 1
	rm "$MNT/iso_a/memory.bin" || return 1
	hash_is "$MNT/lnk/m2" "$h" && rm -r "$MNT/lnk"
}

renames() {
	ensure_mounted || return 1
	cp -r "$MNT/base" "$MNT/r1" || return 1
	ino=$(stat -c %i "$MNT/r1")
	mv "$MNT/r1" "$MNT/r2" || return 1
	[ ! -e "$MNT/r1" ] && [ "$(stat -c %i "$MNT/r2")" = "$ino" ] ||
		{ echo "mv r1 r2: r1 still there or r2 is another inode"; return 1; }
	same_files "$work/src" "$MNT/r2" || return 1
	mv "$MNT/r2/state.bin" "$MNT/r2/s.bin" || return 1
	[ ! -e "$MNT/r2/state.bin" ] || { echo "mv of a file left it"; return 1; }
	cmp "$work/src/state.bin" "$MNT/r2/s.bin" || return 1
	# onto an existing file: replaced
	mv "$MNT/r2/s.bin" "$MNT/r2/manifest.bin" || return 1
	[ ! -e "$MNT/r2/s.bin" ] || { echo "mv onto a file left the source"; return 1; }
	cmp "$work/src/state.bin" "$MNT/r2/manifest.bin" || return 1
	[ "$(ls "$MNT/r2" | tr '\n' ' ')" = "manifest.bin memory.bin " ] ||
		{ echo "r2 holds:"; ls -l "$MNT/r2"; return 1; }
	# onto an existing snapshot: replaced when it is empty, else ENOTEMPTY
	mkdir "$MNT/r3" || return 1
	mv -T "$MNT/r2" "$MNT/r3" || return 1
	[ ! -e "$MNT/r2" ] && cmp "$work/src/memory.bin" "$MNT/r3/memory.bin" ||
		{ echo "mv -T onto an empty snapshot did not replace it"; return 1; }
	cp -r "$MNT/base" "$MNT/r4" || return 1
	run mv -T "$MNT/r4" "$MNT/r3"
	failed_saying 'Directory not empty' || return 1
	same_files "$work/src" "$MNT/r4" || return 1
	# mv -n keeps what is there
	mv -n "$MNT/r4/state.bin" "$MNT/r4/manifest.bin"
	cmp "$work/src/state.bin" "$MNT/r4/state.bin" &&
		cmp "$work/src/manifest.bin" "$MNT/r4/manifest.bin" ||
		{ echo "mv -n replaced a file"; return 1; }
	# a file into the root, a snapshot into a snapshot
	run mv "$MNT/r4/state.bin" "$MNT/state.bin"
	failed_saying 'not permitted' || return 1
	[ -f "$MNT/r4/state.bin" ] && [ ! -e "$MNT/state.bin" ] || return 1
	run mv "$MNT/r4" "$MNT/r3/"
	failed_saying 'not permitted' || return 1
	[ -d "$MNT/r4" ] && [ ! -e "$MNT/r3/r4" ] || return 1
	rm -r "$MNT/r3" "$MNT/r4" && [ ! -e "$MNT/r3" ] && [ ! -e "$MNT/r4" ]
}

rm_shared() {
	ensure_mounted || return 1
	cp -r "$MNT/base" "$MNT/sh1" || return 1
	poke "$MNT/sh1/memory.bin" $((7 * 262144)) 262144 || return 1
	cp -r "$MNT/sh1" "$MNT/sh2" || return 1
	h=$(hash_of "$MNT/sh2/memory.bin")
	sync "$MNT"/sh2/* || return 1
	rm -r "$MNT/sh1" || return 1
	[ ! -e "$MNT/sh1" ] || { echo "rm -r left sh1"; return 1; }
	hash_is "$MNT/sh2/memory.bin" "$h" || return 1
	store_verify || { echo "(while mounted)"; return 1; }
	umount_fs || return 1
	run "$SNAPCTL" store gc "$STORE"
	succeeded || return 1
	store_verify || { echo "(after gc)"; return 1; }
	mount_fs || return 1
	hash_is "$MNT/sh2/memory.bin" "$h" &&
		cmp "$work/src/state.bin" "$MNT/sh2/state.bin"
}

refusals() {
	ensure_mounted || return 1
	long=$(printf '%0256d' 0) max=$(printf '%0255d' 0)
	run mkdir "$MNT/base/sub"
	failed_saying 'Operation not permitted' && answers || return 1
	run touch "$MNT/file"
	failed_saying 'Operation not permitted' && answers || return 1
	run mkdir "$MNT/$long"
	failed_saying "File name too long" && answers || return 1
	run touch "$MNT/base/$long"
	failed_saying "File name too long" && answers || return 1
	[ "$(ls "$MNT/base" | wc -l)" -eq 3 ] || { ls -l "$MNT/base"; return 1; }
	# 255 bytes are fine
	mkdir "$MNT/$max" && touch "$MNT/$max/$max" &&
		[ -f "$MNT/$max/$max" ] && rm -r "${MNT:?}/$max" || return 1
	run rmdir "$MNT/base"
	failed_saying 'Directory not empty' && answers || return 1
	run ln -s memory.bin "$MNT/base/link"
	failed_saying 'symbolic link' && answers || return 1
	run ln -s base "$MNT/link"
	failed_saying 'symbolic link' && answers || return 1
	same_files "$work/src" "$MNT/base"
}

# Resident KiB of process $1.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

too_large() {
	ensure_mounted || return 1
	f=$MNT/big/f
	mkdir "$MNT/big" && echo hi >"$f" &&
		touch -d '2020-01-02 03:04:05' "$f" || return 1
	was=$(stat -c '%s %Y %Z' "$f") lines=$(wc -l <"$derr")
	run truncate -s 999999999999999 "$f"
	failed_saying 'File too large' && answers || return 1
	# past the largest image (64 TiB): a write there too
	run dd if=/dev/zero of="$f" bs=1 count=1 seek=70368744177664 \
		oflag=seek_bytes conv=notrunc
	failed_saying 'File too large' && answers || return 1
	sleep 1.2	# what the kernel cached of its attributes expires
	now=$(stat -c '%s %Y %Z' "$f")
	[ "$now" = "$was" ] ||
		{ echo "size, mtime, ctime: $now; before: $was"; return 1; }
	# The daemon said nothing of it, or clear lines: no stray bytes, no
	# prefix without a message.
	tail -n +$((lines + 1)) "$derr" >"$work/newlog"
	if LC_ALL=C grep -q '[^[:print:]	]' "$work/newlog" ||
	   grep -q ': *$' "$work/newlog"; then
		echo "the daemon's log:"
		cat -v "$work/newlog"
		return 1
	fi
	# Growing to 16 TiB costs the daemon what the file holds, not its size.
	# A gc first, so that no background one (after the cases before)
	# runs between the two readings.
	setfattr -n user.snapfs.gc -v now "$MNT" || return 1
	rss=$(rss_kib "$pid")
	truncate -s 1T "$f" && truncate -s 16T "$f" || return 1
	[ "$(size_of "$f")" -eq 17592186044416 ] ||
		{ echo "size $(size_of "$f") after truncate -s 16T"; return 1; }
	grown=$(rss_kib "$pid")
	note "daemon RSS $rss KiB, $grown KiB after truncate -s 1T, 16T"
	[ $((grown - rss)) -lt 16384 ] ||
		{ echo "daemon RSS $rss KiB -> $grown KiB"; return 1; }
	[ "$(head -c 3 "$f")" = hi ] ||
		{ echo "the file's bytes changed"; return 1; }
	rm -r "${MNT:?}/big"
}

remount_keeps_data() {
	ensure_mounted || return 1
	mkdir "$MNT/p" || return 1
	head -c $((3 * MIB + 5)) /dev/urandom >"$work/p.data"
	cp "$work/p.data" "$MNT/p/data" || return 1
	cp -r "$MNT/base/memory.bin" "$MNT/p/memory.bin" || return 1
	poke "$MNT/p/memory.bin" $((MIB + 3)) 70000 || return 1
	poke "$MNT/p/memory.bin" $((MEM - 4096)) 4096 || return 1
	h=$(hash_of "$MNT/p/memory.bin")
	sync "$MNT/p/data" "$MNT/p/memory.bin" || return 1
	remount || return 1
	cmp "$work/p.data" "$MNT/p/data" || return 1
	hash_is "$MNT/p/memory.bin" "$h" || return 1
	[ "$(size_of "$MNT/p/memory.bin")" = "$MEM" ]
}

kill9_keeps_synced_data() {
	ensure_mounted || return 1
	mkdir "$MNT/k" || return 1
	head -c $((8 * MIB)) /dev/urandom >"$work/k.data"
	h=$(hash_of "$work/k.data")
	dd if="$work/k.data" of="$MNT/k/data" bs=$MIB conv=fsync 2>"$work/dd.err" ||
		{ cat "$work/dd.err"; return 1; }
	ours "$pid" && kill -KILL "$pid" || return 1
	wait_exit "$pid" 10 || return 1
	[ "$rc" -eq 137 ] || { echo "kill -9: status $rc"; return 1; }
	fusermount3 -u "$MNT" || { echo "fusermount3 -u of the dead mount failed"; return 1; }
	store_verify || { echo "(after kill -9)"; return 1; }
	mount_fs || return 1
	[ "$(size_of "$MNT/k/data")" = $((8 * MIB)) ] ||
		{ echo "size $(size_of "$MNT/k/data") after kill -9"; return 1; }
	hash_is "$MNT/k/data" "$h" || return 1
	store_verify
}

concurrent_readers() {
	ensure_mounted || return 1
	mkdir "$MNT/rd" || return 1
	head -c "$READ" /dev/urandom >"$work/rd.data"
	h=$(hash_of "$work/rd.data")
	cp "$work/rd.data" "$MNT/rd/memory.bin" || return 1
	# cold page cache, and a chunk cache far smaller than the file
	remount -o cache_size=8M || return 1
	rpids=
	for i in 1 2 3 4 5 6 7 8; do
		if [ $((i % 2)) -eq 0 ]; then
			sha256sum "$MNT/rd/memory.bin" >"$work/rd.$i" 2>&1 &
		else	# O_DIRECT: every read reaches the daemon
			hash_of "$MNT/rd/memory.bin" >"$work/rd.$i" 2>&1 &
		fi
		rpids="$rpids $!"
	done
	for p in $rpids; do
		wait "$p"
	done
	bad=0
	for i in 1 2 3 4 5 6 7 8; do
		got=$(cut -d' ' -f1 "$work/rd.$i")
		[ "$got" = "$h" ] ||
			{ echo "reader $i: $(cat "$work/rd.$i"), expected $h"; bad=1; }
	done
	[ "$bad" -eq 0 ] && answers
}

MMAP_PY='
import mmap, os, sys
path, mode = sys.argv[1], sys.argv[2]
off1, off2 = 8192, 3 * 262144 + 777
if mode == "private":
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, 0, flags=mmap.MAP_PRIVATE,
                  prot=mmap.PROT_READ | mmap.PROT_WRITE)
    m[off1:off1 + 16] = b"P" * 16
    m[off2:off2 + 100] = b"Q" * 100
    assert m[off1:off1 + 16] == b"P" * 16, "the private mapping lost a write"
    m.close(); os.close(fd)
elif mode == "shared":
    fd = os.open(path, os.O_RDWR)
    m = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED,
                  prot=mmap.PROT_READ | mmap.PROT_WRITE)
    m[off1:off1 + 16] = b"S" * 16
    m[off2:off2 + 100] = b"T" * 100
    m.flush()
    m.close(); os.close(fd)
elif mode == "show":
    with open(path, "rb") as f:
        f.seek(off1); a = f.read(16)
        f.seek(off2); b = f.read(100)
    print(a.hex(), b.hex())
'

mmap_private_and_shared() {
	ensure_mounted || return 1
	cp -r "$MNT/base" "$MNT/mm" || return 1
	f=$MNT/mm/memory.bin
	h=$(hash_of "$f")
	[ "$h" = "$(hash_of "$work/src/memory.bin")" ] ||
		{ echo "the clone reads other bytes than its source"; return 1; }
	orig=$("$PY" -c "$MMAP_PY" "$f" show) || return 1
	"$PY" -c "$MMAP_PY" "$f" private || return 1
	got=$("$PY" -c "$MMAP_PY" "$f" show)
	[ "$got" = "$orig" ] ||
		{ echo "after a MAP_PRIVATE write the file holds $got, expected $orig"; return 1; }
	hash_is "$f" "$h" || return 1
	"$PY" -c "$MMAP_PY" "$f" shared || return 1
	want=$(awk 'BEGIN { for (i = 0; i < 16; i++) s = s "53"
			    for (i = 0; i < 100; i++) t = t "54"; print s, t }')
	got=$("$PY" -c "$MMAP_PY" "$f" show)
	[ "$got" = "$want" ] ||
		{ echo "after a MAP_SHARED write and msync, another process reads: $got"; return 1; }
	hash_of "$f" >"$work/mm.hash"
	[ "$(cat "$work/mm.hash")" != "$h" ] ||
		{ echo "the daemon does not have the MAP_SHARED write"; return 1; }
	hash_is "$MNT/base/memory.bin" "$(hash_of "$work/src/memory.bin")" ||
		{ echo "a write to the clone's mapping changed its source"; return 1; }
	remount || return 1
	got=$("$PY" -c "$MMAP_PY" "$f" show)
	[ "$got" = "$want" ] ||
		{ echo "after a remount: $got"; return 1; }
	hash_is "$f" "$(cat "$work/mm.hash")"
}

corrupt_chunk() {
	ensure_mounted || return 1
	mkdir "$MNT/bad" || return 1
	head -c $((4 * 262144)) /dev/urandom >"$work/bad.data"
	cp "$work/bad.data" "$MNT/bad/memory.bin" || return 1
	umount_fs || return 1
	chunk=$(stat_of chunk_size) || return 1
	# The key of chunk 2 is the SHA-256 of its bytes.
	key=$(dd if="$work/bad.data" bs="$chunk" skip=2 count=1 2>/dev/null |
		sha256sum | cut -d' ' -f1)
	where=$(chunk_where "$STORE" "$key") ||
		{ echo "chunk $key is not stored"; ls "$STORE/chunks"; return 1; }
	set -- $where
	cfile=$1 coff=$(($2 + $3 / 2))
	flip "$cfile" "$coff" || return 1
	mount_fs || return 1
	run cat "$MNT/bad/memory.bin"
	failed_saying 'Input/output error' || return 1
	got=$(size_of "$work/out")
	if [ "$got" -gt $((2 * chunk)) ]; then
		echo "cat gave $got bytes: more than the good chunks"
		return 1
	fi
	cmp -n "$got" "$work/out" "$work/bad.data" ||
		{ echo "the bytes before the bad chunk are wrong"; return 1; }
	grep -Eq "image [0-9a-f]{32}: offset $((2 * chunk)): chunk $(echo "$key" | cut -c1-16)" "$derr" ||
		{ echo "the daemon did not name the image, offset $((2 * chunk)) and chunk"; show_derr; return 1; }
	# a good chunk of the same file still reads
	dd if="$MNT/bad/memory.bin" of="$work/good0" bs="$chunk" count=1 \
		iflag=direct 2>/dev/null &&
		cmp -n "$chunk" "$work/good0" "$work/bad.data" ||
		{ echo "chunk 0 of the file does not read"; return 1; }
	answers || return 1
	run "$SNAPCTL" store verify "$STORE"
	if [ "$rc" -eq 0 ] ||
	   ! cat "$work/out" "$work/err" | grep -q "$(echo "$key" | cut -c1-16)"; then
		echo "store verify does not report the bad chunk"
		show
		return 1
	fi
	umount_fs || return 1
	flip "$cfile" "$coff" || return 1
	store_verify || return 1
	mount_fs || return 1
	cmp "$work/bad.data" "$MNT/bad/memory.bin" && rm -r "$MNT/bad"
}

stop_by() {
	ensure_mounted || return 1
	cp -r "$MNT/base" "$MNT/sig$1" || return 1
	ours "$pid" && kill -"$1" "$pid" || return 1
	exits_clean || return 1
	mount_fs || return 1
	same_files "$work/src" "$MNT/sig$1" && rm -r "$MNT/sig$1"
}

stop_by_fusermount() {
	ensure_mounted || return 1
	umount_fs
}

read_only() {
	if is_mounted "$MNT"; then
		umount_fs || return 1
	fi
	mount_fs -o ro || return 1
	same_files "$work/src" "$MNT/base" || return 1
	run "$SNAPCTL" verify "$MNT/base"
	succeeded || return 1
	run dd if=/dev/zero of="$MNT/base/memory.bin" bs=4096 count=1 conv=notrunc
	failed_saying 'Read-only file system' || return 1
	run mkdir "$MNT/ro"
	failed_saying 'Read-only file system' || return 1
	run touch "$MNT/base/new"
	failed_saying 'Read-only file system' || return 1
	run rm "$MNT/base/state.bin"
	failed_saying 'Read-only file system' || return 1
	answers && same_files "$work/src" "$MNT/base" || return 1
	umount_fs
}

gc_by_the_daemon() {
	ensure_mounted || return 1
	run "$SNAPCTL" store gc "$STORE"
	succeeded || return 1
	grep -q "by the snapfs mounted at $MNT: asked: freed" "$work/out" || {
		echo "snapctl store gc did not report the daemon's gc"; show
		return 1
	}
	answers && same_files "$work/src" "$MNT/base"
}

# A snapfs of $STORE at $MNT2 with options "$@" must exit non-zero
# without mounting, saying one line "snapfs: ..." that matches PATTERN.
start_refused() {
	pat=$1
	shift
	mkdir -p "$MNT2" || return 1
	spawn "$MNT2" "$@"
	wait_exit "$lastpid" 10 || { ours "$lastpid" && kill -TERM "$lastpid"; return 1; }
	if [ "$rc" -eq 0 ] || is_mounted "$MNT2"; then
		echo "snapfs $*: status $rc, mounted: $(is_mounted "$MNT2" && echo yes || echo no)"
		return 1
	fi
	lines=$(wc -l <"$lasterr")
	if [ "$lines" -ne 1 ] || ! grep -Eq "^snapfs: .*($pat)" "$lasterr"; then
		echo "snapfs $* said (status $rc), expected one line matching '$pat':"
		cat "$lasterr"
		return 1
	fi
	note "snapfs $*: $(cat "$lasterr")"
}

second_writer_refused() {
	ensure_mounted || return 1
	start_refused 'open for writing by another process' && answers
}

# A directory that is not a store, and a cache size that is not a size.
bad_starts() {
	start_refused 'cache_size=lots: not a size' -o cache_size=lots ||
		return 1
	real_store=$STORE
	STORE=$work/not-a-store
	mkdir -p "$STORE"
	start_refused 'not a store'
	r=$?
	STORE=$real_store
	return $r
}

all_clean() {
	if is_mounted "$MNT"; then
		umount_fs || return 1
	fi
	store_verify || return 1
	run "$SNAPCTL" store gc "$STORE"
	succeeded || return 1
	store_verify || return 1
	for f in "$work"/daemon.*.err; do
		no_reports "$f" || return 1
	done
}

# ---- driver ------------------------------------------------------------------

CASES="
browse			browse: cp -r in, ls, cmp, verify, stat, inode numbers across a remount, statfs
cp_uses_copy_file_range	cp within the mount uses copy_file_range for the whole file
clone_shares_chunks	cp -r of a 256 MiB snapshot: same bytes, no new chunk until written
clone_isolation		a clone and its source are isolated both ways
hard_link		ln: one inode, two links, writes shared, rm keeps the other name
renames			mv of snapshots and files, onto existing names, across levels refused
rm_shared		rm -r of a snapshot sharing chunks keeps the other whole, gc and verify clean
refusals		mkdir in a snapshot, files in the root, long names, rmdir non-empty, symlinks fail
too_large		past 64 TiB: EFBIG, file and log untouched; 16 TiB costs no memory
remount_keeps_data	synced data survives a remount
kill9_keeps_synced_data	fsync'ed data survives kill -9 of the daemon
concurrent_readers	8 concurrent readers of a 64 MiB file get its bytes
mmap_private_and_shared	mmap: MAP_PRIVATE writes stay private, MAP_SHARED writes reach the file
corrupt_chunk		a corrupt chunk reads as EIO, named in the daemon's log
stop_by_TERM		SIGTERM: the daemon exits 0 and unmounts
stop_by_INT		SIGINT: the daemon exits 0 and unmounts
stop_by_fusermount	fusermount3 -u: the daemon exits 0
read_only		-o ro: reads work, writes fail with EROFS
gc_by_the_daemon	snapctl store gc of a mounted store: the daemon collects, files intact
second_writer_refused	a second read-write snapfs on the store fails with one line
bad_starts		a directory that is not a store, a bad cache_size: one line each, no mount
all_clean		after everything: store verify and gc clean, no sanitizer report
"

stop_by_TERM() { stop_by TERM; }
stop_by_INT() { stop_by INT; }

make_sources() {
	"$MKSNAP" "$work/src" --vcpus 2 --mem "$MEM" --digest &&
	"$MKSNAP" "$work/srcbig" --vcpus 1 --mem "$BIG" &&
	"$SNAPCTL" store init "$STORE" &&
	mkdir "$MNT"
}
if ! make_sources >"$err" 2>&1; then
	not_ok "make the sample snapshots and the store"
	tap_end
fi

tab=$(printf '\t')
while IFS="$tab" read -r fn desc; do
	[ -n "$fn" ] || continue
	desc=$(echo "$desc" | sed 's/^[[:space:]]*//')
	: >"$work/notes"
	if [ "$fn" = cp_uses_copy_file_range ] &&
	   ! strace -o /dev/null true 2>/dev/null; then
		echo "snapfs.sh: strace missing or not allowed: copy_file_range not checked" >&2
		skip "$desc" "strace missing or cannot trace"
		continue
	fi
	if [ "$fn" = stop_by_INT ] && [ -z "$sigdfl" ]; then
		echo "snapfs.sh: env --default-signal missing: SIGINT not checked" >&2
		skip "$desc" "cannot start a daemon with SIGINT handled"
		continue
	fi
	t0=$(date +%s.%N)
	if "$fn" >"$err" 2>&1; then
		ok "$desc"
	else
		show_derr >>"$err"
		not_ok "$desc"
	fi
	if [ -n "${SNAPFS_TEST_TIMES:-}" ]; then
		note "$(echo "$t0 $(date +%s.%N)" | awk '{ printf "%.1f s", $2 - $1 }')"
	fi
	sed 's/^/# /' "$work/notes"
done <<EOF
$CASES
EOF

tap_end
