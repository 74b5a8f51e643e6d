#!/bin/sh
# snapfs on real FUSE mounts of a store made by snapctl store init, names
# and clones: browse (cp -r in, cmp, snapctl verify, stat, stable inode
# numbers, statfs); cp's copy_file_range and the constant-time clone (no
# new chunks); clone isolation both ways; hard links; renames; rm -r of a
# snapshot sharing chunks; the refusals (EPERM, long names, ENOTEMPTY,
# symlinks); EFBIG past the largest image, the file left as it was.
# snapfs_daemon.sh has the daemon and its data. Prints TAP.
#
# Needs $BUILD/snapfs, $BUILD/snapctl and $BUILD/tests/mksnap (BUILD
# defaults to build), /dev/fuse and fusermount3 (skipped without them),
# python3, and strace for one case; builds nothing. Run from the top of the
# tree. Every daemon runs with -f in the background, is stopped by its pid
# and its mount cleaned up on exit, even when a check fails. With a
# sanitizer build (BUILD=build/san) a daemon's stderr must carry no report.
# TAP_TIMES=1 adds each case's time as a comment.
# shellcheck disable=SC2015,SC2012	# "A && B || fail" is meant; ls of our names
. tests/lib/snapfs_cases.sh
BIG=$((256 * MIB))	# the clone of a large, non-zero memory.bin

browse() {
	mount_snapfs || return 1
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
	strace -o /dev/null true 2>/dev/null ||
		{ echo "strace missing or cannot trace"; return 77; }
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
	umount_snapfs || return 1
	run "$SNAPCTL" store gc "$STORE"
	succeeded || return 1
	store_verify || { echo "(after gc)"; return 1; }
	mount_snapfs || return 1
	hash_is "$MNT/sh2/memory.bin" "$h" &&
		cmp "$work/src/state.bin" "$MNT/sh2/state.bin"
}

# A snapshot removed while the kernel still holds its directory (a file
# open through it), then a new one the store's filesystem may give the
# same inode number: the new one takes files (it got the dead node, and
# ENOENT, before).
rm_held_snapshot() {
	ensure_mounted || return 1
	i=0
	while [ "$i" -lt 20 ]; do
		mkdir "$MNT/held" && echo hello >"$MNT/held/f" || return 1
		exec 3<"$MNT/held/f"
		rm -r "$MNT/held" || { exec 3<&-; return 1; }
		mkdir "$MNT/new$i" || { exec 3<&-; return 1; }
		touch "$MNT/new$i/x" 2>"$work/touch.err"
		rc=$?
		exec 3<&-
		[ "$rc" -eq 0 ] ||
			{ echo "round $i: a file in a new snapshot:"; cat "$work/touch.err"; return 1; }
		rm -r "$MNT/new$i" || return 1
		i=$((i + 1))
	done
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

# ---- driver ------------------------------------------------------------------

CASES="
browse			browse: cp -r in, ls, cmp, verify, stat, inode numbers across a remount, statfs
cp_uses_copy_file_range	cp within the mount uses copy_file_range for the whole file
clone_shares_chunks	cp -r of a 256 MiB snapshot: same bytes, no new chunk until written
clone_isolation		a clone and its source are isolated both ways
hard_link		ln: one inode, two links, writes shared, rm keeps the other name
renames			mv of snapshots and files, onto existing names, across levels refused
rm_shared		rm -r of a snapshot sharing chunks keeps the other whole, gc and verify clean
rm_held_snapshot	a snapshot removed while held, then new ones: files can be made in them
refusals		mkdir in a snapshot, files in the root, long names, rmdir non-empty, symlinks fail
too_large		past 64 TiB: EFBIG, file and log untouched; 16 TiB costs no memory
all_clean		after everything: store verify and gc clean, no sanitizer report
"

make_sources() {
	snapfs_sources &&
	"$MKSNAP" "$work/srcbig" --vcpus 1 --mem "$BIG"
}
snapfs_main "$CASES"
