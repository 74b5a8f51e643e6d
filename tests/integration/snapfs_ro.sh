#!/bin/sh
# snapfs_ro: the read-only snapfs daemon over a store of sample snapshots.
#
# Makes a store with two snapshots written by $BUILD/tests/mksnap (and a
# hidden temporary of an unfinished save that must never show), mounts it
# with `$BUILD/snapfs STORE MNT -f` and checks listings, contents, sizes,
# stable inode numbers across remounts, xattrs (against `snapctl inspect
# --json` when $BUILD/snapctl exists), EROFS on every change, mmap of
# memory.bin, a corrupted snapshot, and a clean exit on fusermount3 -u and
# on SIGTERM. The daemon's stderr must stay empty: under SAN=1 that is
# where ASan and UBSan report.
#
# Builds nothing: run `make build/snapfs build/tests/mksnap` (or SAN=1)
# first. Skips everything when /dev/fuse or fusermount3 is missing. Prints
# TAP; exits non-zero when a case failed.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
SNAPFS=$BUILD/snapfs
SNAPCTL=$BUILD/snapctl
MKSNAP=$BUILD/tests/mksnap

if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
	echo "1..0 # SKIP /dev/fuse missing: FUSE tests not run"
	echo "snapfs_ro: SKIPPED: /dev/fuse or fusermount3 missing:" \
	     "FUSE tests not run" >&2
	exit 0
fi
if [ ! -x "$SNAPFS" ] || [ ! -x "$MKSNAP" ]; then
	echo "1..1"
	echo "not ok 1 - $SNAPFS and $MKSNAP exist" \
	     "(run make $SNAPFS $MKSNAP)"
	exit 1
fi
have_python=0
command -v python3 >/dev/null 2>&1 && have_python=1

tmp=$(mktemp -d) || exit 1
store=$tmp/store
mnt=$tmp/mnt
err=$tmp/daemon.err	# every daemon's stderr
pid=

is_mounted() {
	if command -v mountpoint >/dev/null 2>&1; then
		mountpoint -q "$mnt"
	else
		grep -q " $mnt fuse" /proc/mounts
	fi
}

cleanup() {
	if is_mounted; then
		fusermount3 -u "$mnt" 2>/dev/null ||
			fusermount3 -uz "$mnt" 2>/dev/null
	fi
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

n=0 failed=0

ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}

skip() {
	n=$((n + 1))
	echo "ok $n - $1 # SKIP $2"
}

# not_ok DESC [LINE...]: the lines and $tmp/out go out as TAP comments.
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n - $1"
	shift
	for line in "$@"; do
		echo "# $line"
	done
	[ -s "$tmp/out" ] && sed 's/^/#   /' "$tmp/out"
	: >"$tmp/out"
}

# check DESC COMMAND...: one case, ok when COMMAND succeeds.
check() {
	desc=$1
	shift
	: >"$tmp/out"
	if "$@" >>"$tmp/out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
	fi
}

# Start the daemon in the foreground and wait (10 s at most) for the mount.
mount_fs() {
	"$SNAPFS" "$store" "$mnt" -f >>"$err" 2>&1 &
	pid=$!
	i=0
	while ! is_mounted; do
		if ! kill -0 "$pid" 2>/dev/null || [ $i -ge 100 ]; then
			echo "snapfs did not mount $mnt"
			return 1
		fi
		i=$((i + 1))
		sleep 0.1
	done
}

# Stop the daemon with fusermount3 -u (or kill -SIG with "unmount SIG") and
# wait for it; its exit status goes to $status.
unmount_fs() {
	if [ $# -gt 0 ]; then
		kill -"$1" "$pid"
	else
		fusermount3 -u "$mnt" || return 1
	fi
	wait "$pid"
	status=$?
	pid=
	if [ "$status" -ne 0 ]; then
		echo "snapfs exited with status $status"
		return 1
	fi
	if is_mounted; then
		echo "$mnt is still mounted"
		return 1
	fi
}

# xattr NAME PATH...: print NAME's value for each PATH, one a line, or the
# errno name where there is none (one python3 start for them all).
xattr() {
	python3 -c 'import errno, os, sys
for p in sys.argv[2:]:
	try:
		print(os.getxattr(p, sys.argv[1]).decode())
	except OSError as e:
		print(errno.errorcode[e.errno])' "$@"
}

# flip FILE OFFSET: invert one byte in place.
flip() {
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	# shellcheck disable=SC2059
	printf "\\$(printf %03o $((b ^ 255)))" |
		dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

snaps="vm1 vm2"
files="manifest.bin memory.bin state.bin"

# The hidden one is complete, as an unfinished save is just before its
# rename: only its name keeps it out.
mkdir "$store" "$mnt" || exit 1
"$MKSNAP" "$store/vm1" --vcpus 2 --mem $((64 << 20)) --seed 161 &&
"$MKSNAP" "$store/vm2" --vcpus 1 --mem $((16 << 20)) --seed 178 &&
"$MKSNAP" "$store/.x.tmp.1.abcd" --mem $((1 << 20)) --seed 3 || exit 1

echo "1..19"

# ---- startup errors: one line, non-zero exit ----

# bad_start DESC ARGS...: snapfs fails at once with one "snapfs: " line.
bad_start() {
	desc=$1
	shift
	"$SNAPFS" "$@" >"$tmp/out" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$(wc -l <"$tmp/out")" -eq 1 ] &&
	   grep -q '^snapfs: ' "$tmp/out"; then
		ok "$desc"
	else
		not_ok "$desc" "exit status $rc"
	fi
}
bad_start "a STORE that is not a directory is refused in one line" \
	"$store/vm1/manifest.bin" "$mnt" -f
bad_start "a missing MOUNTPOINT is refused in one line" \
	"$store" "$tmp/nowhere" -f

# ---- the mount ----

: >"$tmp/out"
if mount_fs >"$tmp/out" 2>&1; then
	ok "snapfs STORE MNT -f mounts"
	mounted=1
else
	not_ok "snapfs STORE MNT -f mounts"
	mounted=0
fi

list_root() {
	got=$(ls -A "$mnt" | tr '\n' ' ')
	[ "$got" = "vm1 vm2 " ] || { echo "listed: $got"; return 1; }
	! stat "$mnt/.x.tmp.1.abcd" 2>/dev/null ||
		{ echo "the hidden snapshot is found"; return 1; }
}
check "the root lists exactly the two snapshots, not the hidden one" list_root

list_snaps() {
	for s in $snaps; do
		got=$(ls -A "$mnt/$s" | tr '\n' ' ')
		[ "$got" = "manifest.bin memory.bin state.bin " ] ||
			{ echo "$s lists: $got"; return 1; }
	done
}
check "each snapshot lists exactly manifest.bin, memory.bin, state.bin" \
	list_snaps

cmp_all() {
	for s in $snaps; do
		for f in $files; do
			cmp "$mnt/$s/$f" "$store/$s/$f" || return 1
		done
	done
}
check "every file reads the same as its backing file" cmp_all

sizes() {
	for s in $snaps; do
		for f in $files; do
			a=$(stat -c %s "$mnt/$s/$f") &&
			b=$(stat -c %s "$store/$s/$f") || return 1
			[ "$a" = "$b" ] || { echo "$s/$f: $a, not $b"; return 1; }
		done
		set -- $(stat -c '%b %B %s' "$mnt/$s/memory.bin")
		[ $(($1 * $2)) -ge "$3" ] ||
			{ echo "$s/memory.bin: $1 blocks, $3 bytes"; return 1; }
		[ "$(stat -c %a "$mnt/$s/memory.bin")" = 444 ] &&
		[ "$(stat -c %a "$mnt/$s")" = 555 ] ||
			{ echo "$s: wrong modes"; return 1; }
	done
}
check "sizes match the store, memory.bin's st_blocks cover its size" sizes

# The xattrs, against snapctl's reading of the backing snapshot.
ids() {
	for s in $snaps; do
		if [ -x "$SNAPCTL" ]; then
			want=$("$SNAPCTL" inspect --json "$store/$s" |
			       sed -n 's/^  "id": "\([0-9a-f]*\)",*$/\1/p')
		else
			want=$(xattr user.snapfs.id "$mnt/$s")
		fi
		echo "$want" | grep -Eqx '[0-9a-f]{32}' ||
			{ echo "$s: id \"$want\""; return 1; }
		echo "$want $want $want $want" >>"$tmp/want"
		echo "ENODATA ENODATA ENODATA ENODATA" >>"$tmp/want"
		for x in id parent; do
			xattr user.snapfs.$x "$mnt/$s" "$mnt/$s"/* |
				tr '\n' ' ' | sed 's/ $//'
			echo
		done >>"$tmp/got"
	done
	diff "$tmp/want" "$tmp/got"
}
if [ "$have_python" -eq 0 ]; then
	skip "user.snapfs.id is the manifest id" "python3 missing"
elif [ -x "$SNAPCTL" ]; then
	check "user.snapfs.id is the id snapctl inspect --json shows" ids
else
	check "user.snapfs.id is 32 hex digits (no snapctl to compare)" ids
fi

inspect_mount() {
	for s in $snaps; do
		"$SNAPCTL" inspect --json "$mnt/$s" >"$tmp/a.json" &&
		"$SNAPCTL" inspect --json "$store/$s" >"$tmp/b.json" ||
			return 1
		# the same but for the path
		grep -v '"path"' "$tmp/a.json" >"$tmp/a"
		grep -v '"path"' "$tmp/b.json" >"$tmp/b"
		diff "$tmp/a" "$tmp/b" || return 1
	done
}
if [ -x "$SNAPCTL" ]; then
	check "snapctl inspect reads the snapshots through the mount" \
		inspect_mount
else
	skip "snapctl inspect reads the snapshots through the mount" \
		"$SNAPCTL not built"
fi

stored() {
	for s in $snaps; do
		got=$(xattr user.snapfs.stored_bytes "$mnt/$s/memory.bin")
		want=$(( $(stat -c '%b * %B' "$store/$s/memory.bin") ))
		[ "$got" = "$want" ] ||
			{ echo "$s: stored $got, not $want"; return 1; }
	done
	python3 -c 'import os, sys
got = sorted(os.listxattr(sys.argv[1]))
want = ["user.snapfs.id", "user.snapfs.stored_bytes"]
sys.exit(0 if got == want else "listxattr: %r" % got)' "$mnt/vm1/memory.bin"
}
if [ "$have_python" -eq 1 ]; then
	check "user.snapfs.stored_bytes is the allocation in the store" stored
else
	skip "user.snapfs.stored_bytes is the allocation" "python3 missing"
fi

# Every change fails with EROFS and leaves the store as it was.
erofs() {
	for try in "echo x >'$mnt/vm1/state.bin'" "echo x >'$mnt/vm1/new'" \
		   "mkdir '$mnt/vm3'" "rm -f '$mnt/vm1/memory.bin'" \
		   "mv '$mnt/vm1' '$mnt/vm4'" "touch '$mnt/vm1/state.bin'" \
		   "truncate -s 0 '$mnt/vm2/memory.bin'"; do
		if sh -c "$try" 2>"$tmp/e"; then
			echo "succeeded: $try"
			return 1
		fi
		grep -q "Read-only file system" "$tmp/e" ||
			{ echo "$try:"; cat "$tmp/e"; return 1; }
	done
	cmp_all && [ ! -e "$store/vm1/new" ] && [ ! -e "$store/vm3" ]
}
check "writing, creating, removing, renaming: Read-only file system" erofs

mmaps() {
	python3 -c 'import mmap, sys
with open(sys.argv[1], "rb") as f, open(sys.argv[2], "rb") as g:
	want = g.read()
	m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
	assert m[:] == want, "MAP_PRIVATE differs"
	m[0:4096] = b"x" * 4096		# private: never reaches the file
	m.close()
	m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED,
		      prot=mmap.PROT_READ)
	assert m[:] == want, "MAP_SHARED differs"
	m.close()' "$mnt/vm1/memory.bin" "$store/vm1/memory.bin" &&
	cmp "$mnt/vm1/memory.bin" "$store/vm1/memory.bin"
}
if [ "$have_python" -eq 1 ]; then
	check "memory.bin maps MAP_PRIVATE and MAP_SHARED with the same bytes" \
		mmaps
else
	skip "memory.bin maps with the same bytes" "python3 missing"
fi

# Inode numbers survive a remount.
inodes() {
	for s in $snaps; do
		stat -c '%i %n' "$mnt/$s" "$mnt/$s"/* || return 1
	done
}
: >"$tmp/out"
if [ "$mounted" -eq 1 ] && inodes >"$tmp/ino1" 2>>"$tmp/out" &&
   unmount_fs >>"$tmp/out" 2>&1; then
	ok "fusermount3 -u unmounts, the daemon exits 0"
else
	not_ok "fusermount3 -u unmounts, the daemon exits 0"
fi
: >"$tmp/out"
if mount_fs >>"$tmp/out" 2>&1 && inodes >"$tmp/ino2" 2>>"$tmp/out" &&
   diff "$tmp/ino1" "$tmp/ino2" >>"$tmp/out"; then
	ok "inode numbers are the same after a remount"
else
	not_ok "inode numbers are the same after a remount"
fi

# A snapshot saved while mounted shows at once; removed, it is gone.
appear() {
	"$MKSNAP" "$store/vm5" --mem $((1 << 20)) --seed 5 &&
	cmp "$mnt/vm5/state.bin" "$store/vm5/state.bin" || return 1
	rm -rf "$store/vm5"
	! ls -A "$mnt" | grep -qx vm5 || { echo "vm5 still listed"; return 1; }
	! cat "$mnt/vm5/state.bin" >/dev/null 2>&1 ||
		{ echo "vm5/state.bin still reads"; return 1; }
}
check "a snapshot saved after mounting shows up, and goes when removed" \
	appear

# A corrupted manifest: the snapshot goes, the daemon stays.
corrupt() {
	ls -l "$mnt/vm2" >/dev/null || return 1
	flip "$store/vm2/manifest.bin" 10
	got=$(ls -A "$mnt" | tr '\n' ' ')
	[ "$got" = "vm1 " ] || { echo "listed: $got"; return 1; }
	# the kernel may keep the entry up to its 1 s timeout
	i=0
	while stat "$mnt/vm2" >/dev/null 2>&1; do
		[ $i -ge 50 ] && { echo "vm2 still found"; return 1; }
		i=$((i + 1))
		sleep 0.1
	done
	! cat "$mnt/vm2/state.bin" >/dev/null 2>&1 ||
		{ echo "vm2/state.bin still reads"; return 1; }
	kill -0 "$pid" || { echo "the daemon died"; return 1; }
	cmp "$mnt/vm1/memory.bin" "$store/vm1/memory.bin"
}
check "a corrupted snapshot is not listed nor found, the daemon lives" \
	corrupt

if [ -n "$pid" ]; then
	check "SIGTERM unmounts, the daemon exits 0" unmount_fs TERM
else
	: >"$tmp/out"
	not_ok "SIGTERM unmounts, the daemon exits 0" "no daemon running"
fi

# As a daemon (no -f): mounted by the time snapfs returns. Its stderr is
# /dev/null by then, so its sanitizer reports are not seen here.
daemon() {
	"$SNAPFS" "$store" "$mnt" 2>>"$err" || return 1
	is_mounted || { echo "not mounted after snapfs returned"; return 1; }
	ls "$mnt/vm1" >/dev/null || return 1
	fusermount3 -u "$mnt"
}
check "without -f, snapfs mounts in the background and returns 0" daemon

: >"$tmp/out"
if [ -s "$err" ]; then
	cp "$err" "$tmp/out"
	not_ok "the daemon wrote nothing on stderr (no sanitizer report)"
else
	ok "the daemon wrote nothing on stderr (no sanitizer report)"
fi

[ "$failed" -eq 0 ]
