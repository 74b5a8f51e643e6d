#!/bin/sh
# snapfs on real FUSE mounts of a store made by snapctl store init, the
# daemon: what was written survives a remount and, once fsync'ed, a kill -9
# of the daemon; eight concurrent readers; mmap private and shared; a
# corrupt chunk (EIO, named in the daemon's log); SIGTERM, SIGINT and
# fusermount3 -u end it cleanly; -o ro; snapctl store gc of a mounted
# store (done by its daemon); a second daemon, a directory that is not a
# store and a bad option refused in one line. snapfs.sh has names and
# clones. Prints TAP.
#
# Needs $BUILD/snapfs, $BUILD/snapctl and $BUILD/tests/mksnap (BUILD
# defaults to build), /dev/fuse and fusermount3 (skipped without them) and
# python3; builds nothing. Run from the top of the tree. Every daemon runs
# with -f in the background, is stopped by its pid and its mount cleaned
# up on exit, even when a check fails. With a sanitizer build
# (BUILD=build/san) a daemon's stderr must carry no report. TAP_TIMES=1
# adds each case's time as a comment.
# shellcheck disable=SC2015	# "A && B || fail" is meant
. tests/lib/snapfs_cases.sh
READ=$((64 * MIB))	# the file the concurrent readers share

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
	mount_snapfs || return 1
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
	umount_snapfs || return 1
	chunk=$(stat_of chunk_size) || return 1
	# The key of chunk 2 is the SHA-256 of its bytes.
	key=$(dd if="$work/bad.data" bs="$chunk" skip=2 count=1 2>/dev/null |
		sha256sum | cut -d' ' -f1)
	where=$(chunk_where "$STORE" "$key") ||
		{ echo "chunk $key is not stored"; ls "$STORE/chunks"; return 1; }
	set -- $where
	cfile=$1 coff=$(($2 + $3 / 2))
	flip "$cfile" "$coff" || return 1
	mount_snapfs || return 1
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
	umount_snapfs || return 1
	flip "$cfile" "$coff" || return 1
	store_verify || return 1
	mount_snapfs || return 1
	cmp "$work/bad.data" "$MNT/bad/memory.bin" && rm -r "$MNT/bad"
}

stop_by() {
	ensure_mounted || return 1
	cp -r "$MNT/base" "$MNT/sig$1" || return 1
	ours "$pid" && kill -"$1" "$pid" || return 1
	exits_clean || return 1
	mount_snapfs || return 1
	same_files "$work/src" "$MNT/sig$1" && rm -r "$MNT/sig$1"
}

stop_by_TERM() { stop_by TERM; }
stop_by_INT() {
	[ -n "$sigdfl" ] ||
		{ echo "cannot start a daemon with SIGINT handled"; return 77; }
	stop_by INT
}

stop_by_fusermount() {
	ensure_mounted || return 1
	umount_snapfs
}

read_only() {
	if is_mounted "$MNT"; then
		umount_snapfs || return 1
	fi
	mount_snapfs -o ro || return 1
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
	umount_snapfs
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
	snapfs_spawn "$MNT2" "$@"
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

# ---- driver ------------------------------------------------------------------

CASES="
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

make_sources() {
	snapfs_sources && mount_snapfs && cp -r "$work/src" "$MNT/base"
}
snapfs_main "$CASES"
