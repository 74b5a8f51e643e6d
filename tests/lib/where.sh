# Run a KVM script here or in the rig (sourced after tap.sh; POSIX sh).
#
#   kvm_script SCRIPT LOG [FILE...]
#
# Runs SCRIPT (which sources kvm.sh from its own directory and prints
# RESULT lines) with FILE... beside it: here when /dev/kvm exists (in a
# temporary directory holding copies of kvm.sh, SCRIPT, the FILEs,
# $BUILD/snapvm and snapctl and the RIG_PROGS, as the rig's /rig does),
# otherwise in the rig (tests/rig/rig.sh, $RIG), with RIG_PROGS, RIG_SMP
# (default 1), RIG_MEM (MiB, default 2048) and RIG_TIMEOUT (default 600).
# The environment does not reach the rig: put what SCRIPT needs in it.
# Its output goes to LOG. Returns 0 when there are results to read
# (rig_results LOG), 1 after printing the "1..0 # SKIP" line of a script
# that could not run anywhere.
#
# "Here" means a hardware KVM (kvm_intel, kvm_amd). A PVM-based /dev/kvm
# (kvm_pvm, as on this project's machines) passes snapvm check but runs
# neither guest (measured 2026-12-06: the test guest prints nothing, and
# Debian's kernel nothing in 150 s), so the rig takes the scripts there.
kvm_here() {
	[ -c /dev/kvm ] || return 1
	[ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]
}

kvm_script() {
	_script=$1 _log=$2
	shift 2
	if kvm_here; then
		_dir=$(mktemp -d)
		cp tests/lib/kvm.sh "$_script" "${BUILD:-build}/snapvm" "$_dir/"
		[ -x "${BUILD:-build}/snapctl" ] && cp "${BUILD:-build}/snapctl" "$_dir/"
		for _f; do cp "$_f" "$_dir/"; done
		for _p in ${RIG_PROGS:-}; do cp "$(command -v "$_p")" "$_dir/"; done
		(cd "$_dir" && SNAPVM=./snapvm sh "./$(basename "$_script")") \
			>"$_log" 2>&1
		rm -rf "$_dir"
		return 0
	fi
	if [ ! -f "${RIG:-tests/rig/rig.sh}" ]; then
		echo "1..0 # SKIP no /dev/kvm and no rig (${RIG:-tests/rig/rig.sh})"
		return 1
	fi
	RIG_TIMEOUT=${RIG_TIMEOUT:-600} sh "${RIG:-tests/rig/rig.sh}" \
		--smp "${RIG_SMP:-1}" --mem "${RIG_MEM:-2048}" "$_script" \
		tests/lib/kvm.sh "$@" >"$_log" 2>&1
	# 125 without a result: the rig could not run (or crashed, or timed out).
	if [ $? -eq 125 ] && ! grep -q '^RESULT ' "$_log"; then
		_why=$(grep -m1 '^rig: .* missing' "$_log")
		grep -q '^RIG-NO-KVM' "$_log" &&
			_why="the rig has no KVM (its QEMU gives no nested SVM)"
		if [ -n "$_why" ]; then
			echo "1..0 # SKIP $_why"
			return 1
		fi
	fi
	return 0
}
