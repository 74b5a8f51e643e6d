# TAP output for the integration tests (sourced first by every one of
# them; POSIX sh, run from the top of the tree).
#
#   ok NAME, not_ok NAME [LINE...], skip NAME WHY, check NAME 'SHELL TEST'
#   skip_rest WHAT WHY the rest cannot run: "1..0 # SKIP WHY" when no case
#                      ran yet, else a SKIP line for WHAT and the plan; exits
#   need_built [--skip WHAT] THING...
#                      is it built? each THING with a / a file, a bare
#                      name a command on PATH; when some are missing, names
#                      them and ends the script: a failure (make test builds
#                      them), or with --skip a loud skip_rest of WHAT (for
#                      what make guest or an optional package brings)
#   run_cases [--subshell] CASES
#                      the cases of a table, one a line: a function, tabs,
#                      what it checks. Each function runs (in a subshell
#                      with --subshell) with its output in $err: ok when it
#                      returns 0, skip when it returns 77 (the last line it
#                      printed says why), else not_ok. A function case_failed
#                      (when the script has one) adds to $err before the
#                      not_ok; case_done FUNCTION runs after each case.
#                      TAP_TIMES=1 notes each case's time.
#   note TEXT          a comment shown under the case that runs
#   rig_results LOG    number the RESULT lines a KVM script (kvm.sh) printed
#   tap_end            print the plan, exit 0 when nothing failed
#
# not_ok shows each LINE, then $err (a file) when it is set and not empty,
# as diagnostics.
# A skip is never silent: it is a "# SKIP" line, counted as skipped.
n=0 failed=0 err=${err:-}

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=1; echo "not ok $n - $1"
	shift
	for _l; do echo "# $_l"; done
	if [ -n "$err" ] && [ -s "$err" ]; then sed 's/^/# /' "$err"; fi
}
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

skip_rest() {
	echo "$(basename "$0"): $1 not run: $2" >&2
	if [ "$n" -eq 0 ]; then
		echo "1..0 # SKIP $2"
		exit 0
	fi
	skip "$1" "$2"
	tap_end
}

need_built() {
	_skip=
	if [ "$1" = --skip ]; then
		_skip=$2
		shift 2
	fi
	_missing=
	for _t; do
		case $_t in
		*/*) [ -e "$_t" ] || _missing="$_missing $_t" ;;
		*) command -v "$_t" >/dev/null 2>&1 || _missing="$_missing $_t" ;;
		esac
	done
	[ -z "$_missing" ] && return 0
	[ -n "$_skip" ] && skip_rest "$_skip" "missing:$_missing (make; make guest; make deps)"
	n=$((n + 1))
	echo "not ok $n - built:$_missing (make; make guest; make deps)"
	echo "1..$n"
	exit 1
}

note() { echo "$*" >>"${err:?note needs err, a file}.notes"; }

run_cases() {
	: "${err:?run_cases needs err, a file}"
	_sub=
	if [ "$1" = --subshell ]; then
		_sub=1
		shift
	fi
	_tab=$(printf '\t')
	while IFS="$_tab" read -r _fn _desc; do
		[ -n "$_fn" ] || continue
		_desc=$(echo "$_desc" | sed 's/^[[:space:]]*//')
		: >"$err.notes"
		_t0=$(date +%s.%N)
		if [ -n "$_sub" ]; then
			( "$_fn" ) >"$err" 2>&1
		else
			"$_fn" >"$err" 2>&1
		fi
		_rc=$?
		if [ "$_rc" -eq 0 ]; then
			ok "$_desc"
		elif [ "$_rc" -eq 77 ]; then
			_why=$(tail -1 "$err")
			echo "$(basename "$0"): $_desc: not run: $_why" >&2
			skip "$_desc" "$_why"
		else
			if command -v case_failed >/dev/null 2>&1; then
				case_failed >>"$err" 2>&1
			fi
			not_ok "$_desc"
		fi
		if [ -n "${TAP_TIMES:-}" ]; then
			note "$(echo "$_t0 $(date +%s.%N)" | awk '{ printf "%.1f s", $2 - $1 }')"
		fi
		sed 's/^/# /' "$err.notes"
		if command -v case_done >/dev/null 2>&1; then
			case_done "$_fn"
		fi
	done <<EOF
$1
EOF
}

# A KVM script's "RESULT ok - NAME", "RESULT not ok - NAME" and
# "RESULT # text" lines, numbered here. It must end with "RESULT # end".
rig_results() {
	if ! grep -q '^RESULT ' "$1"; then
		n=$((n + 1)); failed=1
		echo "not ok $n - KVM tests: no result"
		tail -20 "$1" | sed 's/^/# /'
		return
	fi
	grep -q '^RESULT # end$' "$1" || {
		n=$((n + 1)); failed=1
		echo "not ok $n - KVM tests: did not finish"
		tail -20 "$1" | sed 's/^/# /'
	}
	# The rig repeats the console's end after a timeout: once each.
	grep '^RESULT ' "$1" | awk '!seen[$0]++' >"$1.results"
	while IFS= read -r line; do
		case $line in
		"RESULT ok - "*) n=$((n + 1)); echo "ok $n - ${line#RESULT ok - }" ;;
		"RESULT not ok - "*) n=$((n + 1)); failed=1
			echo "not ok $n - ${line#RESULT not ok - }" ;;
		"RESULT # end") ;;
		"RESULT # "*) echo "${line#RESULT }" ;;
		esac
	done <"$1.results"
}

tap_end() {
	echo "1..$n"
	exit $failed
}
