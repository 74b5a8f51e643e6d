# TAP output for the integration tests (sourced; POSIX sh).
#
#   ok NAME, not_ok NAME, skip NAME WHY, check NAME 'SHELL TEST'
#   rig_results LOG    number the RESULT lines a KVM script (kvm.sh) printed
#   tap_end            print the plan, exit 0 when nothing failed
#
# not_ok shows $err (a file) as diagnostics when it is set and not empty.
n=0 failed=0 err=${err:-}

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
	n=$((n + 1)); failed=1; echo "not ok $n - $1"
	if [ -n "$err" ] && [ -s "$err" ]; then sed 's/^/# /' "$err"; fi
}
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }

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
