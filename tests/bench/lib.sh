# What the benchmarks in tests/bench share (sourced by boot.sh,
# snapshot.sh, devices.sh, restore.sh, snapfs.sh and rados_mount.sh;
# POSIX sh, run from the top of the tree).
#
#   bench_init NAME   NAME names the benchmark in messages and in $LOG.
#                     Checks what every benchmark needs ($BUILD/snapvm, the
#                     test guest, the rig's kernel, QEMU and the firmware it
#                     needs to boot a PVH ELF) and exits 2 saying what to
#                     make; builds the timer, tests/bench/stamp.c, static
#                     into $OUT. Sets $OUT, $LOG ($OUT/NAME.log), $fw (the
#                     firmware's paths), $outer (the host QEMU's version)
#                     and $tmp, a directory removed at exit.
#   bench_rig SCRIPT [RIG OPTION...]
#                     runs SCRIPT in one boot of the rig (tests/rig/rig.sh
#                     --smp $RIG_SMP, then the options given: --mem MIB),
#                     from /rig, which holds snapvm, testguest.elf, stamp,
#                     QEMU and its firmware (-L /rig). SCRIPT starts with
#                     $qemu set to QEMU there, after a prelude that prints
#                     "BENCH kernel K" and "BENCH qemu V"; its last line
#                     must be "BENCH end". The rig's console goes to $LOG.
#                     When that line is missing, says so with the end of
#                     $LOG and exits with the rig's status (125 if it had
#                     none).
#   bench_table PROGRAM [AWK OPTION...]
#                     runs awk PROGRAM over $LOG after these, and with
#                     outer, smp, runs and logfile set:
#       $1 == "BENCH" lines "kernel K", "qemu V" and "# NOTE" set kernel,
#                     inner and notes[1..nnotes]
#       where()       "in the rig (QEMU X TCG, N vCPUs, nested SVM), Linux
#                     K kvm-amd, QEMU V -enable-kvm inside"
#       stats(key, col)  med[col], lo[col], hi[col]: median, min and max of
#                     val[key, i, col] over the counted runs i = 1..runs
#                     (val[key, i] set: run i exists; "-": not measured),
#                     or "-" when there is none
#       ratio(a, b)   a / b to 2 places, "-" when either is "-" or b is 0
#
# And for restore.sh and snapfs.sh, snapfs on this machine: bench_mount,
# bench_unmount, bench_drop, bench_ddread (below).
#
# Variables: BUILD (build), CC (gcc), RIG (tests/rig/rig.sh), QEMU
# (qemu-system-x86_64), RIG_SMP (2), RIG_TIMEOUT (seconds for the whole
# rig run; bench_rig's default is 900).
BUILD=${BUILD:-build}
CC=${CC:-gcc}
RIG=${RIG:-tests/rig/rig.sh}
QEMU=${QEMU:-qemu-system-x86_64}
RIG_SMP=${RIG_SMP:-2}

bench_init() {
	bench=$1
	OUT=$BUILD/bench
	LOG=$OUT/$bench.log
	for _f in "$BUILD/snapvm:make" "$BUILD/guest/testguest.elf:make guest" \
		  "build/guest/vmlinuz:make guest"; do
		[ -f "${_f%%:*}" ] || {
			echo "$bench: ${_f%%:*} missing (run ${_f#*:})" >&2
			exit 2
		}
	done
	command -v "$QEMU" >/dev/null || {
		echo "$bench: $QEMU missing (make deps installs it)" >&2
		exit 2
	}
	outer=$("$QEMU" --version | sed -n 's/.*version \([^ ]*\).*/\1/p')

	# The firmware QEMU needs for -kernel of a PVH ELF, from its own
	# search path: SeaBIOS, the option ROM that enters the PVH entry, and
	# the APIC's kvmvapic ROM (QEMU warns without it).
	fw=
	for _f in bios-256k.bin pvh.bin kvmvapic.bin; do
		_p=
		for _d in $("$QEMU" -L help); do
			[ -f "$_d/$_f" ] && { _p=$_d/$_f; break; }
		done
		[ -n "$_p" ] || {
			echo "$bench: QEMU firmware $_f not found" >&2
			exit 2
		}
		fw="$fw $_p"
	done

	mkdir -p "$OUT"
	"$CC" -std=gnu11 -O2 -static -D_GNU_SOURCE -Wall -Wextra -Werror \
		-o "$OUT/stamp" tests/bench/stamp.c || exit 2

	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
}

bench_rig() {
	_script=$1
	shift
	{
		echo "qemu=./$(basename "$QEMU")"
		cat <<'PRELUDE'
echo "BENCH kernel $(uname -r)"
echo "BENCH qemu $($qemu --version | sed -n 's/.*version \([^ ]*\).*/\1/p')"
PRELUDE
		cat "$_script"
	} >"$tmp/${bench}_rig.sh"
	# shellcheck disable=SC2086
	BUILD=$BUILD RIG_PROGS="$QEMU $OUT/stamp" \
		RIG_TIMEOUT=${RIG_TIMEOUT:-900} \
		sh "$RIG" --smp "$RIG_SMP" "$@" "$tmp/${bench}_rig.sh" $fw \
		>"$LOG" 2>&1
	_rc=$?
	if ! grep -q '^BENCH end$' "$LOG"; then
		echo "$bench: the rig did not finish (status $_rc); the end of" \
		     "$LOG:" >&2
		tail -20 "$LOG" >&2
		[ $_rc -eq 0 ] && _rc=125
		exit $_rc
	fi
}

BENCH_AWK='
$1 == "BENCH" && $2 == "kernel" { kernel = $3 }
$1 == "BENCH" && $2 == "qemu" { inner = $3 }
$1 == "BENCH" && $2 == "#" { sub(/^BENCH # /, ""); notes[++nnotes] = $0 }
function where() {
	return sprintf("in the rig (QEMU %s TCG, %d vCPUs, nested SVM), " \
		       "Linux %s kvm-amd, QEMU %s -enable-kvm inside",
		       outer, smp, kernel, inner)
}
function sort(a, n,    i, j, t) {
	for (i = 2; i <= n; i++)
		for (j = i; j > 1 && a[j - 1] > a[j]; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
}
function median(a, n) {
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function stats(key, col,    a, n, i) {
	n = 0
	for (i = 1; i <= runs; i++)
		if ((key, i) in val && val[key, i, col] != "-")
			a[++n] = val[key, i, col] + 0
	if (n == 0) { med[col] = lo[col] = hi[col] = "-"; return }
	sort(a, n)
	med[col] = median(a, n); lo[col] = a[1]; hi[col] = a[n]
}
function ratio(a, b) {
	return a == "-" || b == "-" || b == 0 ? "-" : sprintf("%.2f", a / b)
}
'

bench_table() {
	_prog=$1
	shift
	awk -v outer="$outer" -v smp="$RIG_SMP" -v runs="$RUNS" \
	    -v logfile="$LOG" "$@" "$BENCH_AWK$_prog" "$LOG"
}

# ---- snapfs on this machine (restore.sh, snapfs.sh) --------------------------
#
# For a benchmark that sets bench (its name), tmp (its directory, with the
# store in tmp/store), M (the mount point), LOG, fspid (empty) and has a
# fail function that counts a failure:
#
#   bench_mount        snapfs $tmp/store on $M in the background ($fspid, its
#                      stderr appended to $tmp/fs.err); exits 2 when it does
#                      not mount in 10 s
#   bench_unmount      SIGTERM to the daemon and wait; a failure when it
#                      needed SIGKILL, exited non-zero or left its mount
#   bench_drop         sync, then drop the page cache (root)
#   bench_ddread FILE WHAT
#                      $g: GB/s of dd reading FILE, or "-" and a failure
bench_unmount() {
	[ -n "$fspid" ] || return 0
	kill -TERM "$fspid" 2>/dev/null
	_j=0
	while kill -0 "$fspid" 2>/dev/null && [ $_j -lt 100 ]; do
		sleep 0.1; _j=$((_j + 1))
	done
	if kill -KILL "$fspid" 2>/dev/null; then
		fail "the daemon did not stop on SIGTERM in 10 s: killed"
	fi
	wait "$fspid" 2>/dev/null; _rc=$?; fspid=
	[ $_rc -eq 0 ] || fail "the daemon exited with status $_rc"
	if grep -q " $M fuse" /proc/mounts; then
		umount -l "$M" 2>/dev/null
		fail "the mount outlived its daemon (umount -l)"
	fi
	return 0
}

bench_mount() {
	"$BUILD/snapfs" "$tmp/store" "$M" -f 2>>"$tmp/fs.err" & fspid=$!
	_j=0
	until grep -q " $M fuse" /proc/mounts; do
		if [ $_j -ge 100 ] || ! kill -0 "$fspid" 2>/dev/null; then
			echo "$bench: the daemon did not mount $M:" >&2
			tail -5 "$tmp/fs.err" >&2
			bench_unmount
			exit 2
		fi
		sleep 0.1; _j=$((_j + 1))
	done
}

bench_drop() { sync; echo 3 >/proc/sys/vm/drop_caches; }

# dd's stderr: 10^9 bytes per second
bench_gbps() {
	LC_ALL=C awk '/copied/ { for (i = 1; i < NF; i++) if ($(i + 1) == "s,")
		printf "%.3f\n", $1 / $i / 1e9 }' "$1"
}

bench_ddread() {
	if LC_ALL=C dd if="$1" of=/dev/null bs=1M 2>"$tmp/dd"; then
		g=$(bench_gbps "$tmp/dd")
	else
		g=-; fail "$2: dd: $(tail -1 "$tmp/dd")"
	fi
}
