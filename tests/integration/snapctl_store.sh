#!/bin/sh
# snapctl's memory store commands against sample snapshots from mksnap:
# store init, import, store ls, export (byte for byte what was imported),
# store stats (dedup of a snapshot imported twice), store verify (clean,
# then a damaged chunk), store gc, and every refusal: an existing name or
# directory, a corrupt snapshot, a busy store, wrong arguments. Prints TAP.
#
# Needs $BUILD/snapctl and $BUILD/tests/mksnap (BUILD defaults to build),
# python3 for the JSON; builds nothing. Run from the top of the tree.
set -u
BUILD=${BUILD:-build}
SNAPCTL=$BUILD/snapctl
MKSNAP=$BUILD/tests/mksnap
MEM=6291456	# 6 MiB: a pattern on every 16th page, the rest holes
MEM_HUMAN="6 MiB"

. tests/lib/tap.sh
. tests/lib/run.sh
. tests/lib/chunks.sh
need_built "$SNAPCTL" "$MKSNAP"

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM
err=$work/case.log	# what not_ok shows under a failed case

STORE=$work/store
FILES="manifest.bin state.bin memory.bin"

# ---- helpers -----------------------------------------------------------------

# Run snapctl: stdout, stderr and the exit status go to $work/out,
# $work/err and $rc (run.sh).
run_snapctl() { run "$SNAPCTL" "$@"; }

# A failure: exit 1, one line "snapctl: ..." matching $1, nothing on stdout.
fails_with() {
	status_is 1 || return 1
	err_has "^snapctl: $1" || return 1
	err_lines 1 || return 1
	out_empty
}

# Wrong usage: exit 2, one line on stderr, nothing on stdout.
usage_fails() {
	run_snapctl "$@"
	status_is 2 || return 1
	err_lines 1 || return 1
	out_empty || return 1
	echo "ok: snapctl $*"
}

# Each of the three files of directories $1 and $2 is the same.
same_files() {
	for f in $FILES; do
		cmp "$1/$f" "$2/$f" || return 1
	done
}

# The value of key $2 in the JSON object in file $1.
json_get() {
	python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print("null" if v is None else v)
' "$1" "$2"
}

# store stats --json of store $1 into file $2.
stats_to() {
	run_snapctl store stats --json "$1"
	status_is 0 || return 1
	python3 -m json.tool "$work/out" >/dev/null ||
		{ echo "store stats --json is not JSON"; show; return 1; }
	cp "$work/out" "$2"
}

# Nothing hidden left by an import or an export: in store $1's listing
# and beside directory $2.
no_leftovers() {
	run_snapctl store ls "$1"
	if grep -q 'import-' "$work/out"; then
		echo "a temporary snapshot is left in the store"
		show
		return 1
	fi
	for left in "$2"/.*.export-*; do
		[ ! -e "$left" ] || { echo "left beside the export: $left"; return 1; }
	done
}

# ---- cases -------------------------------------------------------------------

init_makes_empty_store() {
	run_snapctl store init "$STORE"
	status_is 0 || return 1
	out_has "^$STORE: empty store, 64 KiB chunks\$" || return 1
	run_snapctl store ls "$STORE"
	status_is 0 || return 1
	out_empty || return 1
	run_snapctl store init "$STORE"
	fails_with "store init $STORE: "
}

init_chunk_size() {
	run_snapctl store init --chunk-size 64K "$work/s64"
	status_is 0 || return 1
	stats_to "$work/s64" "$work/s64.json" || return 1
	got=$(json_get "$work/s64.json" chunk_size)
	[ "$got" = 65536 ] ||
		{ echo "chunk_size $got, expected 65536"; return 1; }
	for bad in 3K 8M 0 abc 64Q 1M1; do
		run_snapctl store init --chunk-size "$bad" "$work/s-$bad"
		status_is 2 || return 1
		err_lines 1 || return 1
		[ ! -e "$work/s-$bad" ] ||
			{ echo "--chunk-size $bad made a store"; return 1; }
	done
}

import_prints_one_line() {
	run_snapctl import "$work/snap" "$STORE" base
	status_is 0 || return 1
	out_has "^imported base: [0-9]+ bytes \\(.*\\) in [0-9.]+ s, [0-9.]+ GB/s\$" ||
		return 1
	[ "$(wc -l <"$work/out")" -eq 1 ] ||
		{ echo "not one line"; show; return 1; }
	# Not a terminal: no progress bar.
	err_empty
}

ls_lists_snapshot() {
	run_snapctl store ls "$STORE"
	status_is 0 || return 1
	out_has "^base +$MEM_HUMAN +3\$" || return 1
	[ "$(grep -c . "$work/out")" -eq 2 ] ||
		{ echo "expected a header and one snapshot"; show; return 1; }
}

export_is_identical() {
	run_snapctl export "$STORE" base "$work/out1"
	status_is 0 || return 1
	out_has "^exported base to $work/out1: [0-9]+ bytes .* GB/s\$" ||
		return 1
	err_empty || return 1
	same_files "$work/snap" "$work/out1" || return 1
	run_snapctl verify "$work/out1"
	status_is 0 || return 1
	out_has "memory digest checked" || return 1
	no_leftovers "$STORE" "$work"
}

export_is_sparse() {
	size=$(stat -c %s "$work/out1/memory.bin") || return 1
	[ "$size" -eq "$MEM" ] || { echo "memory.bin is $size bytes"; return 1; }
	blocks=$(stat -c %b "$work/out1/memory.bin") || return 1
	alloc=$((blocks * $(stat -c %B "$work/out1/memory.bin")))
	# One page in 16 holds data: far below the size, whatever the
	# filesystem's block.
	[ "$alloc" -lt $((MEM / 2)) ] ||
		{ echo "memory.bin takes $alloc bytes of $MEM"; return 1; }
}

random_content_round_trip() {
	"$MKSNAP" "$work/rand" --vcpus 1 --mem "$MEM" --seed 7 || return 1
	# Incompressible bytes, across chunk boundaries, with no digest
	# recorded to contradict them.
	dd if=/dev/urandom of="$work/rand/memory.bin" bs=65536 count=20 \
		seek=5 conv=notrunc 2>/dev/null || return 1
	run_snapctl import "$work/rand" "$STORE" rand
	status_is 0 || return 1
	run_snapctl export "$STORE" rand "$work/rand.out"
	status_is 0 || return 1
	same_files "$work/rand" "$work/rand.out"
}

ls_sorted_and_aligned() {
	run_snapctl import "$work/snap" "$STORE" a-much-longer-name
	status_is 0 || return 1
	run_snapctl store ls "$STORE"
	status_is 0 || return 1
	sed 1d "$work/out" | awk '{ print $1 }' >"$work/names"
	printf '%s\n' a-much-longer-name base rand >"$work/expected"
	cmp -s "$work/names" "$work/expected" ||
		{ echo "names are not the sorted list"; show; return 1; }
	# The last column starts at one place on every line.
	starts=$(awk '{ print length($0) - length($NF) }' "$work/out" |
		 sort -u | wc -l)
	[ "$starts" -eq 1 ] || { echo "columns not aligned"; show; return 1; }
}

dedup_in_stats() {
	run_snapctl store init "$work/dd"
	status_is 0 || return 1
	run_snapctl import "$work/snap" "$work/dd" one
	status_is 0 || return 1
	stats_to "$work/dd" "$work/one.json" || return 1
	run_snapctl import "$work/snap" "$work/dd" two
	status_is 0 || return 1
	stats_to "$work/dd" "$work/two.json" || return 1
	python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))
b = json.load(open(sys.argv[2]))
assert a["snapshots"] == 1 and b["snapshots"] == 2, "snapshot counts"
assert a["unique_chunks"] > 0, "no chunk stored"
assert b["unique_chunks"] == a["unique_chunks"], \
    "chunks %d after the second import, %d before" % (b["unique_chunks"],
                                                       a["unique_chunks"])
assert b["mapped_bytes"] == 2 * a["mapped_bytes"], "mapped not doubled"
assert b["logical_bytes"] == 2 * a["logical_bytes"], "logical not doubled"
assert b["stored_bytes"] == a["stored_bytes"], "stored bytes grew"
assert abs(b["dedup_ratio"] - 2 * a["dedup_ratio"]) < 0.01, "dedup ratio"
print("ok: %d chunks, dedup %.2fx" % (b["unique_chunks"], b["dedup_ratio"]))
' "$work/one.json" "$work/two.json" || return 1
	run_snapctl store stats "$work/dd"
	status_is 0 || return 1
	out_has "^dedup: +[0-9.]+x \\(mapped/unique\\)\$" || return 1
	out_has "^snapshots: +2\$"
}

import_existing_name_fails() {
	"$MKSNAP" "$work/other" --vcpus 1 --mem "$MEM" --seed 9 --digest ||
		return 1
	run_snapctl store ls "$STORE"
	cp "$work/out" "$work/ls.before"
	stats_to "$STORE" "$work/stats.before" || return 1
	run_snapctl import "$work/other" "$STORE" base
	fails_with "import $STORE: .*base.*exists" || return 1
	run_snapctl store ls "$STORE"
	cmp -s "$work/ls.before" "$work/out" ||
		{ echo "store ls changed"; show; return 1; }
	stats_to "$STORE" "$work/stats.after" || return 1
	cmp -s "$work/stats.before" "$work/stats.after" ||
		{ echo "store stats changed"; cat "$work/stats.after"; return 1; }
	# base is still what it was.
	run_snapctl export "$STORE" base "$work/out2"
	status_is 0 || return 1
	same_files "$work/snap" "$work/out2" || return 1
	no_leftovers "$STORE" "$work"
}

export_existing_dir_fails() {
	mkdir "$work/exists" || return 1
	run_snapctl export "$STORE" base "$work/exists"
	fails_with "export $work/exists: .*exists" || return 1
	[ -z "$(ls -A "$work/exists")" ] ||
		{ echo "something was written into it"; return 1; }
	: >"$work/afile"
	run_snapctl export "$STORE" base "$work/afile"
	fails_with "export $work/afile: .*exists" || return 1
	[ ! -s "$work/afile" ] || { echo "the file was written"; return 1; }
	no_leftovers "$STORE" "$work"
}

export_missing_snapshot_fails() {
	run_snapctl export "$STORE" nosuch "$work/nosuch"
	fails_with "export $STORE: .*nosuch" || return 1
	[ ! -e "$work/nosuch" ] || { echo "$work/nosuch exists"; return 1; }
	no_leftovers "$STORE" "$work"
}

import_corrupt_state_fails() {
	cp -R "$work/snap" "$work/bad-state" || return 1
	size=$(wc -c <"$work/bad-state/state.bin")
	flip_byte "$work/bad-state/state.bin" $((size / 2)) || return 1
	run_snapctl store ls "$STORE"
	cp "$work/out" "$work/ls.before"
	run_snapctl import "$work/bad-state" "$STORE" corrupt
	fails_with "import $work/bad-state: state\\.bin: " || return 1
	run_snapctl store ls "$STORE"
	cmp -s "$work/ls.before" "$work/out" ||
		{ echo "store ls changed"; show; return 1; }
}

import_corrupt_memory_fails() {
	cp -R "$work/snap" "$work/bad-mem" || return 1
	flip_byte "$work/bad-mem/memory.bin" $((MEM / 2)) || return 1
	run_snapctl import "$work/bad-mem" "$STORE" corrupt
	fails_with "import $work/bad-mem: memory\\.bin: .*digest" || return 1
	no_leftovers "$STORE" "$work"
}

verify_clean_store() {
	run_snapctl store verify "$STORE"
	status_is 0 || return 1
	out_has "^[1-9][0-9]* chunks checked, 0 bad\$" || return 1
	[ "$(wc -l <"$work/out")" -eq 1 ] ||
		{ echo "more than the summary"; show; return 1; }
	err_empty
}

gc_keeps_live_data() {
	run_snapctl store gc "$STORE"
	status_is 0 || return 1
	freed="freed [0-9]+ chunks? \\(.*\\), [0-9]+ deltas?, [0-9]+ images?"
	out_has "^$STORE: $freed\$" || return 1
	run_snapctl store verify "$STORE"
	status_is 0 || return 1
	for name in base rand; do
		rm -rf "$work/gc.$name"
		run_snapctl export "$STORE" "$name" "$work/gc.$name"
		status_is 0 || return 1
	done
	same_files "$work/snap" "$work/gc.base" || return 1
	same_files "$work/rand" "$work/gc.rand"
}

# Hold a flock on file $1 ($2: -s shared, -x exclusive) in a background
# process, $holder, as a process with the store open would.
hold_lock() {
	# shellcheck disable=SC2094	# the lock is on the descriptor
	( exec 9>>"$1" && flock "$2" 9 && exec sleep 30 ) &
	holder=$!
	# Held once an exclusive try fails.
	i=0
	while flock -n -x "$1" true; do
		i=$((i + 1))
		if [ "$i" -ge 50 ]; then
			release_lock
			echo "$1: the lock was never taken"
			return 1
		fi
		sleep 0.1
	done
}

release_lock() {
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
}

gc_busy_fails() {
	command -v flock >/dev/null || { echo "no flock(1)"; return 77; }
	hold_lock "$STORE/lock" -s || return 1
	run_snapctl store gc "$STORE"
	release_lock
	fails_with "store gc $STORE: .*" || return 1
	# Alone again, gc runs.
	run_snapctl store gc "$STORE"
	status_is 0
}

import_busy_fails() {
	command -v flock >/dev/null || { echo "no flock(1)"; return 77; }
	hold_lock "$STORE/lock.write" -x || return 1
	run_snapctl import "$work/snap" "$STORE" busy
	release_lock
	fails_with "import $STORE: .*" || return 1
	run_snapctl store ls "$STORE"
	if grep -q '^busy ' "$work/out"; then
		echo "imported although the store was busy"
		return 1
	fi
}

verify_finds_damaged_chunk() {
	cp -R "$STORE" "$work/damaged" || return 1
	key=$(any_chunk "$work/damaged") || { echo "no chunk stored"; return 1; }
	where=$(chunk_where "$work/damaged" "$key") || return 1
	set -- $where
	chmod u+w "$1" && flip_byte "$1" $(($2 + $3 - 1)) || return 1
	run_snapctl store verify "$work/damaged"
	status_is 1 || return 1
	out_has "^[1-9][0-9]* chunks checked, [1-9][0-9]* bad\$" || return 1
	[ "$(wc -l <"$work/out")" -ge 2 ] ||
		{ echo "no problem line before the summary"; show; return 1; }
	err_has "^snapctl: store verify $work/damaged: " || return 1
	err_lines 1 || return 1
	# Some snapshot uses that chunk: its export fails and leaves nothing.
	failed=0
	for name in a-much-longer-name base rand; do
		run_snapctl export "$work/damaged" "$name" "$work/d.$name"
		if [ "$rc" -ne 0 ]; then
			fails_with "export $work/d.$name: " || return 1
			[ ! -e "$work/d.$name" ] ||
				{ echo "a damaged export is there"; return 1; }
			failed=$((failed + 1))
		fi
	done
	[ "$failed" -ge 1 ] ||
		{ echo "every export read the bad chunk"; return 1; }
	no_leftovers "$work/damaged" "$work"
}

missing_store_fails() {
	run_snapctl store ls "$work/nostore"
	fails_with "store ls " || return 1
	run_snapctl import "$work/snap" "$work/nostore" x
	fails_with "import " || return 1
	[ ! -e "$work/nostore" ] || { echo "import made a store"; return 1; }
}

usage_errors_exit_2() {
	run_snapctl store
	status_is 2 || return 1
	err_has "^snapctl: 'store' needs a subcommand\$" || return 1
	run_snapctl store frobnicate "$STORE"
	status_is 2 || return 1
	err_has "^snapctl: 'store frobnicate' is not a command\$" || return 1
	usage_fails store ls || return 1
	usage_fails store ls "$STORE" extra || return 1
	usage_fails store stats --bogus "$STORE" || return 1
	usage_fails store verify || return 1
	usage_fails store gc || return 1
	usage_fails store init || return 1
	usage_fails store init --chunk-size || return 1
	usage_fails import "$work/snap" "$STORE" || return 1
	usage_fails import "$work/snap" "$STORE" a/b || return 1
	usage_fails import "$work/snap" "$STORE" .. || return 1
	usage_fails import --bogus "$work/snap" "$STORE" x || return 1
	usage_fails export "$STORE" base || return 1
	usage_fails export "$STORE" base "$work/u1" "$work/u2" || return 1
	[ ! -e "$work/u1" ] ||
		{ echo "export with extra arguments wrote"; return 1; }
	run_snapctl
	status_is 2 || return 1
	err_has "^  store gc STORE " || return 1
	run_snapctl --help
	status_is 0 || return 1
	out_has "^  import DIR STORE NAME " || return 1
	out_has "^  export STORE NAME DIR "
}

# ---- driver ------------------------------------------------------------------

CASES="
init_makes_empty_store		store init makes an empty store, not twice
init_chunk_size			store init --chunk-size 64K; bad sizes exit 2
import_prints_one_line		import prints one line, no progress bar off a tty
ls_lists_snapshot		store ls lists the snapshot with its memory size
export_is_identical		export gives back the three files byte for byte
export_is_sparse		export writes memory.bin sparse
random_content_round_trip	incompressible memory round-trips
ls_sorted_and_aligned		store ls is sorted, its columns aligned
dedup_in_stats			a snapshot imported twice: chunks not doubled
import_existing_name_fails	import over an existing name: exit 1, store unchanged
export_existing_dir_fails	export to an existing directory or file: exit 1
export_missing_snapshot_fails	export of a missing snapshot: exit 1, nothing made
import_corrupt_state_fails	import of a corrupt state.bin: one line, exit 1
import_corrupt_memory_fails	import of a memory.bin against its digest: one line
verify_clean_store		store verify of a good store: 0 bad, exit 0
gc_keeps_live_data		store gc frees nothing any snapshot uses
gc_busy_fails			store gc while another process has the store: exit 1
import_busy_fails		import while another process writes the store: exit 1
verify_finds_damaged_chunk	store verify finds a flipped byte in a chunk
missing_store_fails		a missing store: one line, exit 1, nothing made
usage_errors_exit_2		wrong arguments exit 2 with one line
"

if ! "$MKSNAP" "$work/snap" --vcpus 2 --mem "$MEM" --digest \
	>"$work/mksnap.log" 2>&1; then
	echo "# mksnap failed:"
	sed 's/^/# /' "$work/mksnap.log"
fi

run_cases --subshell "$CASES"
tap_end
