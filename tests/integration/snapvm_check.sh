#!/bin/sh
# snapvm check: the host's KVM and its capabilities, and the error lines
# when there is no usable KVM. Prints TAP.
set -u
BUILD=${BUILD:-build}
SNAPVM=$BUILD/snapvm
tmp=$(mktemp -d)
out=$tmp/out err=$tmp/err
trap 'rm -rf "$tmp"' EXIT
. tests/lib/tap.sh
. tests/lib/where.sh
need_built "$SNAPVM"

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

# The real thing: this host's KVM (any, PVM's too), or the rig's (a real
# SVM KVM in QEMU).
where="the rig"
kvm_here --any && where="this host"
cat >"$tmp/check_kvm.sh" <<KVM
. "\$(dirname "\$0")/kvm.sh"
"\$SNAPVM" check >"\$T/out" 2>"\$T/err"; rc=\$?
check "KVM of $where has every required capability" \\
	'[ \$rc -eq 0 ] && grep -q "IRQCHIP *yes" "\$T/out" && grep -q "^ok:" "\$T/out"'
rm -rf "\$T"
res "# end"
KVM
kvm_or_rig --any --mem 512 "KVM of $where" "$tmp/check_kvm.sh" "$tmp/kvm.log"
rig_results "$tmp/kvm.log"
tap_end
