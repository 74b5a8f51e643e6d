#!/bin/sh
# snapctl inspect and verify against sample snapshots from mksnap, intact
# and with one byte flipped or a file cut short. Prints TAP.
#
# Needs $BUILD/snapctl and $BUILD/tests/mksnap (BUILD defaults to build);
# builds nothing.
set -u
BUILD=${BUILD:-build}
SNAPCTL=$BUILD/snapctl
MKSNAP=$BUILD/tests/mksnap
VCPUS=3
MEM=8388608	# 8 MiB, one region

. tests/lib/tap.sh
. tests/lib/run.sh
need_built "$SNAPCTL" "$MKSNAP"

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM
err=$work/case.log	# what not_ok shows under a failed case

# ---- helpers -----------------------------------------------------------------

# Run snapctl: stdout, stderr and the exit status go to $work/out,
# $work/err and $rc (run.sh).
run_snapctl() { run "$SNAPCTL" "$@"; }

# A fresh snapshot named $1 (further arguments go to mksnap).
make_snap() {
	name=$1
	shift
	"$MKSNAP" "$work/$name" --vcpus "$VCPUS" --mem "$MEM" "$@"
}

# A copy of the intact snapshot, to damage.
copy_good() {
	cp -R "$work/good" "$work/$1"
}

# Flip the byte in the middle of file $1.
flip_middle() {
	size=$(wc -c <"$1")
	flip_byte "$1" $((size / 2))
}

# ---- cases -------------------------------------------------------------------

inspect_shows_vcpus_and_region() {
	run_snapctl inspect "$work/good"
	status_is 0 || return 1
	out_has "^vcpus: +$VCPUS\$" || return 1
	out_has "^ +0 +0x0{16} +0x0000000000800000 +0x0{16} +8 MiB\$" ||
		return 1
	sections=$(grep -c '^vcpu [0-9]' "$work/out")
	[ "$sections" -eq "$VCPUS" ] ||
		{ echo "$sections vcpu sections, expected $VCPUS"; return 1; }
}

inspect_json_is_valid() {
	run_snapctl inspect --json "$work/good"
	status_is 0 || return 1
	python3 -m json.tool "$work/out" >/dev/null ||
		{ echo "python3 -m json.tool rejects it"; show; return 1; }
	got=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["vcpu_count"] == len(d["vcpus"]), "vcpu_count and vcpus differ"
assert d["memory_size"] == sum(r["size"] for r in d["regions"])
print(len(d["vcpus"]))
' "$work/out") || return 1
	[ "$got" = "$VCPUS" ] ||
		{ echo "$got vcpus, expected $VCPUS"; return 1; }
}

verify_good_is_ok() {
	run_snapctl verify "$work/good"
	status_is 0 || return 1
	out_has "^$work/good: ok \\($VCPUS vcpus, 8 MiB memory, memory digest checked\\)\$" ||
		return 1
	err_lines 0
}

# verify DIR must fail with one line naming file $2 (a regex).
verify_fails_naming() {
	run_snapctl verify "$work/$1"
	status_is 1 || return 1
	err_has "^snapctl: verify $work/$1: $2" || return 1
	err_lines 1
}

verify_state_flip_fails() {
	copy_good state || return 1
	flip_middle "$work/state/state.bin" || return 1
	verify_fails_naming state 'state\.bin: '
}

verify_manifest_flip_fails() {
	copy_good manifest || return 1
	flip_middle "$work/manifest/manifest.bin" || return 1
	verify_fails_naming manifest 'manifest\.bin: '
}

verify_memory_truncated_fails() {
	copy_good short || return 1
	dd if=/dev/null of="$work/short/memory.bin" bs=1 seek=$((MEM / 2)) \
		2>/dev/null
	size=$(wc -c <"$work/short/memory.bin")
	[ "$size" -eq $((MEM / 2)) ] ||
		{ echo "memory.bin is $size bytes after truncation"; return 1; }
	verify_fails_naming short 'memory\.bin: '
}

verify_memory_digest() {
	make_snap digest --digest || return 1
	flip_middle "$work/digest/memory.bin" || return 1
	verify_fails_naming digest 'memory\.bin: .*digest' || return 1
	run_snapctl verify --quick "$work/digest"
	status_is 0 || return 1
	out_has ": ok \\(.*memory digest skipped\\)\$"
}

verify_digest_not_recorded() {
	make_snap nodigest || return 1
	flip_middle "$work/nodigest/memory.bin" || return 1
	run_snapctl verify "$work/nodigest"
	status_is 0 || return 1
	out_has ": ok \\(.*memory digest not recorded\\)\$" || return 1
	run_snapctl inspect "$work/nodigest"
	out_has "not recorded"
}

inspect_corrupt_fails() {
	copy_good icorrupt || return 1
	flip_middle "$work/icorrupt/state.bin" || return 1
	run_snapctl inspect "$work/icorrupt"
	status_is 1 || return 1
	err_has "^snapctl: inspect $work/icorrupt: state\\.bin: " || return 1
	err_lines 1 || return 1
	[ ! -s "$work/out" ] || { echo "output despite the error"; show; return 1; }
}

missing_directory_fails() {
	verify_fails_naming nonexistent '' || return 1
	run_snapctl inspect "$work/nonexistent"
	status_is 1 || return 1
	err_lines 1
}

no_arguments_is_usage() {
	run_snapctl
	status_is 2 || return 1
	err_has "^usage: snapctl " || return 1
	[ ! -s "$work/out" ] || { echo "usage on stdout"; show; return 1; }
}

wrong_arguments_are_one_line() {
	run_snapctl inspect --bogus "$work/good"
	status_is 2 || return 1
	err_has "^snapctl: inspect: unknown option '--bogus'" || return 1
	err_lines 1 || return 1
	run_snapctl verify
	status_is 2 || return 1
	err_lines 1 || return 1
	run_snapctl verify "$work/good" "$work/good"
	status_is 2 || return 1
	err_lines 1 || return 1
	run_snapctl frobnicate
	status_is 2 || return 1
	err_has "^snapctl: 'frobnicate' is not a command"
}

# ---- driver ------------------------------------------------------------------

CASES="
inspect_shows_vcpus_and_region	inspect of a good snapshot shows its vcpus and region
inspect_json_is_valid		inspect --json is valid JSON with the right vcpu count
verify_good_is_ok		verify of a good snapshot says ok
verify_state_flip_fails		verify fails on a flipped byte in state.bin
verify_manifest_flip_fails	verify fails on a flipped byte in manifest.bin
verify_memory_truncated_fails	verify fails on a truncated memory.bin
verify_memory_digest		verify checks memory.bin's digest, --quick skips it
verify_digest_not_recorded	without a recorded digest, verify says so and passes
inspect_corrupt_fails		inspect of a corrupt snapshot fails with one line
missing_directory_fails		a missing directory fails with one line
no_arguments_is_usage		no arguments prints the usage and exits 2
wrong_arguments_are_one_line	wrong arguments exit 2 with one line
"

if ! make_snap good --digest >"$work/mksnap.log" 2>&1; then
	echo "# mksnap failed:"
	sed 's/^/# /' "$work/mksnap.log"
fi

run_cases --subshell "$CASES"
tap_end
