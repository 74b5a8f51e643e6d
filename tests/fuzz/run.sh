#!/bin/sh
# Run the fuzz targets of build/fuzz (tests/fuzz/README.md).
#
#   run.sh check CC               0 when CC links a libFuzzer target
#   run.sh fuzz SECONDS RUNS BIN...   fuzz each target in turn for SECONDS
#                                 (or RUNS inputs), keeping what it finds in
#                                 build/fuzz/corpus/BIN; print a table
#   run.sh test [BIN...]          replay the committed corpus of each
#                                 target (default: every one built) and
#                                 fuzz it briefly, as TAP
#
# A target reads tests/fuzz/corpus/NAME, NAME being its name without
# "fuzz_" and "_fix" (a target and its FUZZ_FIX variant share a corpus).
# Any crash, leak, sanitizer report or timeout fails the target; its
# input is left in build/fuzz/crash/.
set -u
FUZZ_BUILD=${FUZZ_BUILD:-build/fuzz}
FUZZ_CC=${FUZZ_CC:-clang}
# make test: a few seconds each, in all well under two minutes.
TEST_SECONDS=${FUZZ_TEST_SECONDS:-4}
TEST_RUNS=${FUZZ_TEST_RUNS:-20000}
TIMEOUT=10	# seconds one input may take

# Can CC build and link a libFuzzer target with the sanitizers we use?
can_fuzz() {
	dir=$(mktemp -d) || return 1
	printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
		'{ return (int)(n & 0) + (d == NULL); }' >"$dir/t.c"
	"$1" -fsanitize=fuzzer,address,undefined -o "$dir/t" "$dir/t.c" \
		>"$dir/log" 2>&1
	rc=$?
	[ $rc -ne 0 ] && cat "$dir/log" >&2
	rm -rf "$dir"
	return $rc
}

corpus_of() {
	_n=${1#fuzz_}
	echo "tests/fuzz/corpus/${_n%_fix}"
}

# One libFuzzer run of target $1 for $2 seconds, $3 runs (may be empty),
# new inputs into $4; output in $FUZZ_BUILD/logs/$1.log. Sets rc.
run_target() {
	bin=$FUZZ_BUILD/$1
	log=$FUZZ_BUILD/logs/$1.log
	mkdir -p "$FUZZ_BUILD/logs" "$FUZZ_BUILD/crash" "$4"
	runs=
	[ -n "$3" ] && runs="-runs=$3"
	start=$(date +%s.%N)
	# shellcheck disable=SC2086
	"$bin" -print_final_stats=1 -max_total_time="$2" $runs \
		-timeout=$TIMEOUT -artifact_prefix="$FUZZ_BUILD/crash/$1-" \
		"$4" "$(corpus_of "$1")" >"$log" 2>&1
	rc=$?
	end=$(date +%s.%N)
	if [ $rc -eq 0 ] && grep -Eq 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
		rc=1
	fi
}

# Figures of the last run of $1: execs, exec/s (over the whole run, corpus
# loading included: libFuzzer's own figure is in whole seconds), cov (the
# final stats line's), corpus size.
stats() {
	log=$FUZZ_BUILD/logs/$1.log
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	rate=$(awk -v n="${execs:-0}" -v a="$start" -v b="$end" \
		'BEGIN { t = b - a; printf "%d", (t > 0 ? n / t : 0) }')
	cov=$(grep -o ' cov: [0-9]*' "$log" | tail -n 1 | sed 's/ cov: //')
	corp=$(grep -o ' corp: [0-9]*' "$log" | tail -n 1 | sed 's/ corp: //')
	execs=${execs:--} rate=${rate:--} cov=${cov:--} corp=${corp:--}
}

fuzz() {
	seconds=$1 runs=$2
	shift 2
	fail=0
	for t in "$@"; do
		printf 'fuzzing %s for %s s%s\n' "$t" "$seconds" \
			"${runs:+ or $runs runs}" >&2
		run_target "$t" "$seconds" "$runs" "$FUZZ_BUILD/corpus/$t"
		stats "$t"
		if [ $rc -eq 0 ]; then
			result=ok
		else
			result="FAILED (exit $rc, $FUZZ_BUILD/logs/$t.log)"
			fail=1
			grep -E -A 12 'ERROR|runtime error' \
				"$FUZZ_BUILD/logs/$t.log" | head -n 30 >&2
		fi
		printf '%-20s %12s %9s %6s %7s  %s\n' "$t" "$execs" "$rate" \
			"$cov" "$corp" "$result" >>"$FUZZ_BUILD/table"
	done
}

case ${1:-} in
check)
	can_fuzz "${2:-$FUZZ_CC}"
	;;
fuzz)
	shift
	seconds=$1 runs=$2
	shift 2
	rm -f "$FUZZ_BUILD/table"
	fuzz "$seconds" "$runs" "$@"
	echo
	printf '%-20s %12s %9s %6s %7s  %s\n' target execs exec/s cov corpus \
		result
	cat "$FUZZ_BUILD/table"
	[ $fail -eq 0 ]
	;;
test)
	shift
	. tests/lib/tap.sh
	if ! can_fuzz "$FUZZ_CC" 2>/dev/null; then
		msg="$FUZZ_CC cannot link a libFuzzer target (install clang and libclang-rt-dev: make deps)"
		printf '\n*** FUZZ TARGETS SKIPPED: %s ***\n\n' "$msg" >&2
		skip_rest "the fuzz targets" "$msg"
	fi
	if [ $# -eq 0 ]; then
		for b in "$FUZZ_BUILD"/fuzz_*; do
			[ -x "$b" ] && set -- "$@" "$(basename "$b")"
		done
	fi
	[ $# -gt 0 ] || need_built "$FUZZ_BUILD/fuzz_*"
	scratch=$(mktemp -d)
	trap 'rm -rf "$scratch"' EXIT
	for t in "$@"; do
		if [ ! -x "$FUZZ_BUILD/$t" ]; then
			not_ok "$t: not built"
			continue
		fi
		seeds=$(ls "$(corpus_of "$t")" | wc -l)
		run_target "$t" "$TEST_SECONDS" "$TEST_RUNS" "$scratch/$t"
		stats "$t"
		if [ $rc -eq 0 ]; then
			ok "$t: $seeds seeds replayed, $execs execs ($rate/s), cov $cov"
		else
			not_ok "$t: exit $rc, $FUZZ_BUILD/logs/$t.log"
			grep -E -A 12 'ERROR|runtime error' \
				"$FUZZ_BUILD/logs/$t.log" | head -n 30 | sed 's/^/# /'
		fi
	done
	tap_end
	;;
*)
	echo "usage: run.sh check CC | fuzz SECONDS RUNS BIN... | test [BIN...]" >&2
	exit 2
	;;
esac
