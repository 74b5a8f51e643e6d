#!/bin/sh
# snapvm check: the host's KVM and its capabilities, and the error lines
# when there is no usable KVM. Prints TAP.
set -u
BUILD=${BUILD:-build}
SNAPVM=$BUILD/snapvm
n=0 failed=0
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; sed 's/^/# /' "$err"; }
check() { if eval "$2"; then ok "$1"; else not_ok "$1"; fi; }

echo "1..5"

SNAPVM_KVM=/nonexistent/kvm "$SNAPVM" check >"$out" 2>"$err"; rc=$?
check "missing KVM device: exit 1 with one line naming it" \
	'[ $rc -eq 1 ] && [ "$(wc -l <"$err")" -eq 1 ] && grep -q "^snapvm: /nonexistent/kvm: No such file" "$err"'

SNAPVM_KVM=/dev/null "$SNAPVM" check >"$out" 2>"$err"; rc=$?
check "a device that is not KVM: exit 1, 'not a KVM device'" \
	'[ $rc -eq 1 ] && grep -q "^snapvm: /dev/null: not a KVM device$" "$err"'

"$SNAPVM" >"$out" 2>"$err"; rc=$?
check "no command: usage, exit 2" '[ $rc -eq 2 ] && grep -q "^usage: snapvm" "$err"'

"$SNAPVM" frobnicate >"$out" 2>"$err"; rc=$?
check "unknown command: exit 2 naming it" \
	'[ $rc -eq 2 ] && grep -q "unknown command .frobnicate." "$err"'

# The real thing: this host's KVM, or the rig's (a real SVM KVM in QEMU).
if [ -c /dev/kvm ]; then
	where="this host"
	"$SNAPVM" check >"$out" 2>"$err"; rc=$?
else
	where="the rig"
	script=$(mktemp)
	printf './snapvm check\n' >"$script"
	sh tests/rig/rig.sh --smp 1 --mem 512 "$script" >"$out" 2>"$err"; rc=$?
	rm -f "$script"
fi
check "KVM of $where has every required capability" \
	'[ $rc -eq 0 ] && grep -q "IRQCHIP *yes" "$out" && grep -q "^ok:" "$out"'
exit $failed
