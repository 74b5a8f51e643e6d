# Where the KVM tests run: here on KVM, else in the rig, else a loud skip
# (sourced after tap.sh; POSIX sh, run from the top of the tree).
#
#   kvm_here [--any] [--fuse]
#       Whether KVM scripts run here: on a hardware KVM (kvm_intel,
#       kvm_amd); with --any on any /dev/kvm; with --fuse only where
#       /dev/fuse is too.
#   kvm_or_rig [OPTION...] WHAT SCRIPT LOG [FILE...]
#       Runs SCRIPT (which sources kvm.sh from its own directory and
#       prints RESULT lines) in a directory holding what the rig's /rig
#       holds: kvm.sh, SCRIPT, each FILE, $BUILD/snapvm, $BUILD/snapctl
#       and $BUILD/guest/testguest.elf when built, and the programs of
#       RIG_PROGS and --progs. Here when kvm_here (a temporary directory),
#       otherwise in the rig (tests/rig/rig.sh, $RIG). Its output goes to
#       LOG; read it with rig_results LOG. The environment reaches neither:
#       SCRIPT finds its files beside it; write what else it needs into it.
#       When it can run nowhere (no KVM here and no rig, or the rig lacks
#       QEMU, its kernel or a KVM), skip_rest WHAT says why and the script
#       ends: a loud skip, never a silent pass.
#       Options:
#         --smp N        the rig's CPUs (1)
#         --mem MIB      the rig's memory (2048)
#         --timeout S    the rig's whole run (600; $RIG_TIMEOUT wins)
#         --progs LIST   programs for the rig's /rig, besides $RIG_PROGS
#         --net          the rig has a network to this host (rig.sh)
#         --any, --fuse  as kvm_here
#
# "Here" means a hardware KVM. A PVM-based /dev/kvm (kvm_pvm, as on this
# project's machines) passes snapvm check but runs neither guest
# (measured 2026-12-06: the test guest prints nothing, and Debian's kernel
# nothing in 150 s), so the rig takes the scripts there.
kvm_here() {
	_any= _fuse=
	for _o; do
		case $_o in
		--any) _any=1 ;;
		--fuse) _fuse=1 ;;
		esac
	done
	[ -c /dev/kvm ] || return 1
	[ -z "$_fuse" ] || [ -c /dev/fuse ] || return 1
	[ -n "$_any" ] || [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]
}

kvm_or_rig() {
	_smp=1 _mem=2048 _timeout=600 _progs=${RIG_PROGS:-} _here= _net=
	while [ $# -gt 0 ]; do
		case $1 in
		--smp) _smp=$2; shift 2 ;;
		--mem) _mem=$2; shift 2 ;;
		--timeout) _timeout=$2; shift 2 ;;
		--progs) _progs="$_progs $2"; shift 2 ;;
		--net) _net=--net; shift ;;
		--any|--fuse) _here="$_here $1"; shift ;;
		*) break ;;
		esac
	done
	_what=$1 _script=$2 _log=$3
	shift 3
	_build=${BUILD:-build}
	_rig=${RIG:-tests/rig/rig.sh}
	# shellcheck disable=SC2086	# the options, split
	if kvm_here $_here; then
		_dir=$(mktemp -d)
		cp tests/lib/kvm.sh "$_script" "$_build/snapvm" "$_dir/"
		[ -x "$_build/snapctl" ] && cp "$_build/snapctl" "$_dir/"
		[ -f "$_build/guest/testguest.elf" ] &&
			cp "$_build/guest/testguest.elf" "$_dir/"
		for _f; do cp "$_f" "$_dir/"; done
		for _p in $_progs; do cp "$(command -v "$_p")" "$_dir/"; done
		(cd "$_dir" && sh "./$(basename "$_script")") >"$_log" 2>&1
		rm -rf "$_dir"
		return 0
	fi
	[ -f "$_rig" ] || skip_rest "$_what" "no hardware KVM and no rig ($_rig)"
	# shellcheck disable=SC2086	# $_net: the option, or nothing
	RIG_PROGS=$_progs RIG_TIMEOUT=${RIG_TIMEOUT:-$_timeout} \
		sh "$_rig" --smp "$_smp" --mem "$_mem" $_net "$_script" \
		tests/lib/kvm.sh "$@" >"$_log" 2>&1
	# 125 without a result: the rig could not run (or crashed, or timed out).
	if [ $? -eq 125 ] && ! grep -q '^RESULT ' "$_log"; then
		_why=$(grep -m1 '^rig: .* missing' "$_log")
		grep -q '^RIG-NO-KVM' "$_log" &&
			_why="the rig has no KVM (its QEMU gives no nested SVM)"
		[ -z "$_why" ] || skip_rest "$_what" "$_why"
	fi
	return 0
}
