#!/bin/sh
# Run every test and end with one line: "N passed, N failed, N skipped".
#
# Unit tests are the cmocka programs build/tests/test_*; integration tests
# are the scripts tests/integration/*.sh; the fuzz step replays the fuzz
# corpora and fuzzes each target briefly (tests/fuzz/run.sh test; skipped
# without clang's libFuzzer). All of them speak TAP ("ok N -
# name", "not ok N - name", "ok N - name # SKIP reason"); each case counts.
# A program that dies without reporting counts as one failure.
set -u
BUILD=${BUILD:-build}
export BUILD
log=$(mktemp)
trap 'rm -f "$log"' EXIT
pass=0 fail=0 skip=0

run_one() {
	name=$1
	shift
	printf '== %s\n' "$name"
	CMOCKA_MESSAGE_OUTPUT=TAP "$@" >"$log" 2>&1
	rc=$?
	cat "$log"
	p=$(grep -Ec '^ok [0-9]+' "$log")
	s=$(grep -Eci '^ok [0-9]+.*# *skip' "$log")
	f=$(grep -Ec '^not ok [0-9]+' "$log")
	p=$((p - s))
	# cmocka reports skip() as "not ok N # SKIP": a skip, not a failure.
	sf=$(grep -Eci '^not ok [0-9]+.*# *skip' "$log")
	s=$((s + sf)) f=$((f - sf))
	# A whole script skipped ("1..0 # SKIP reason") counts as one skip.
	if grep -Eqi '^1\.\.0 *# *skip' "$log"; then
		s=$((s + 1))
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $name exited with status $rc"
		f=1
	fi
	if [ "$rc" -eq 0 ] && [ $((p + s + f)) -eq 0 ]; then
		echo "not ok - $name reported no test"
		f=1
	fi
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] && run_one "$(basename "$t")" "$t"
done
run_one check-proto "$BUILD/protolock" check proto/schema.lock --tap
# shellcheck disable=SC2086
run_one fuzz sh tests/fuzz/run.sh test ${FUZZ_BINS:-}
for t in tests/integration/*.sh; do
	[ -f "$t" ] && run_one "$(basename "$t" .sh)" sh "$t"
done

echo
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
