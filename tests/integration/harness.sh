#!/bin/sh
# The test harness itself (tests/lib): what a script prints and its exit
# status when something is not built (need_built: a failure, or with
# --skip a loud skip), when the rest cannot run (skip_rest), for a table
# of cases that pass, skip (77) and fail (run_cases), and when a KVM
# script can run nowhere or the rig gives no result (kvm_or_rig): every
# skip a "# SKIP" line, never a silent pass. Prints TAP.
#
# Needs nothing built; run from the top of the tree.
set -u
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM
. tests/lib/tap.sh
err=$tmp/err

# tap SCRIPT: run the shell text SCRIPT after sourcing tap.sh and
# where.sh; its stdout in $tmp/out (and $err with its stderr), its
# status in $rc.
tap() {
	{ echo ". tests/lib/tap.sh"; echo ". tests/lib/where.sh"
	  echo "$1"; } >"$tmp/script.sh"
	sh "$tmp/script.sh" >"$tmp/out" 2>"$tmp/stderr"
	rc=$?
	{ echo "status $rc, stdout:"; cat "$tmp/out"
	  echo "stderr:"; cat "$tmp/stderr"; } >"$err"
}
# The output is exactly these lines.
out_is() { [ "$(cat "$tmp/out")" = "$(printf '%s\n' "$@")" ]; }

tap 'need_built /nonexistent/prog sh'
check "need_built: what is missing is a failure, named" \
	'[ $rc -eq 1 ] && out_is "not ok 1 - built: /nonexistent/prog (make; make guest; make deps)" "1..1"'

tap 'need_built --skip "the rest" /nonexistent/prog no-such-command; ok never'
check "need_built --skip before any case: the whole script skipped, loudly" \
	'[ $rc -eq 0 ] && out_is "1..0 # SKIP missing: /nonexistent/prog no-such-command (make; make guest; make deps)" &&
	 grep -q "the rest not run" "$tmp/stderr"'

tap 'ok first; need_built --skip "the rest" /nonexistent/prog; ok never'
check "need_built --skip after a case: a SKIP line, the plan, status 0" \
	'[ $rc -eq 0 ] && out_is "ok 1 - first" "ok 2 - the rest # SKIP missing: /nonexistent/prog (make; make guest; make deps)" "1..2"'

tap 'need_built sh tests/lib/tap.sh; ok built; tap_end'
check "need_built: what is there passes" '[ $rc -eq 0 ] && out_is "ok 1 - built" "1..1"'

tap 'err=$(mktemp)
a() { echo fine; }
b() { echo "no frob here"; return 77; }
c() { echo "it broke"; note "a note"; return 1; }
run_cases "$(printf "a\t\tthe a case\nb\tthe b case\nc\tthe c case\n")"
rm -f "$err" "$err.notes"
tap_end'
check "run_cases: 0 is ok, 77 a SKIP with its reason, else not ok with the output" \
	'[ $rc -eq 1 ] && out_is "ok 1 - the a case" "ok 2 - the b case # SKIP no frob here" "not ok 3 - the c case" "# it broke" "# a note" "1..3"'

tap "kvm_here() { return 1; }
ok first
RIG=/nonexistent/rig.sh kvm_or_rig 'the KVM part' /dev/null $tmp/log
ok never"
check "kvm_or_rig without KVM and rig: a SKIP line, the plan, status 0" \
	'[ $rc -eq 0 ] && out_is "ok 1 - first" "ok 2 - the KVM part # SKIP no hardware KVM and no rig (/nonexistent/rig.sh)" "1..2"'

printf 'echo "rig: qemu-system-x86_64 missing (make deps installs it)" >&2\nexit 125\n' \
	>"$tmp/norig.sh"
tap "kvm_here() { return 1; }
RIG=$tmp/norig.sh kvm_or_rig 'the KVM part' /dev/null $tmp/log
ok never"
check "kvm_or_rig when the rig cannot run: the whole script skipped, loudly" \
	'[ $rc -eq 0 ] && out_is "1..0 # SKIP rig: qemu-system-x86_64 missing (make deps installs it)"'

printf 'echo "the rig said nothing useful"\nexit 125\n' >"$tmp/badrig.sh"
tap "kvm_here() { return 1; }
RIG=$tmp/badrig.sh kvm_or_rig 'the KVM part' /dev/null $tmp/log
rig_results $tmp/log
tap_end"
check "kvm_or_rig when the rig gives no result: a failure, never a pass" \
	'[ $rc -eq 1 ] && grep -q "^not ok 1 - KVM tests: no result" "$tmp/out"'

printf '. "$(dirname "$0")/kvm.sh"\nres "ok - in $(basename "$PWD")"\nrm -rf "$T"\nres "# end"\n' \
	>"$tmp/here_kvm.sh"
tap "kvm_here() { return 0; }
kvm_or_rig 'the KVM part' $tmp/here_kvm.sh $tmp/log
rig_results $tmp/log
tap_end"
check "kvm_or_rig on a KVM here: the script's RESULT lines, numbered" \
	'[ $rc -eq 0 ] && grep -q "^ok 1 - in tmp\." "$tmp/out" && grep -q "^1\.\.1$" "$tmp/out"'

tap_end
