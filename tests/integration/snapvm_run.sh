#!/bin/sh
# snapvm run: the test guest boots and ticks with 1, 2 and 4 vCPUs; pause
# stops its output and resume restarts it (snapvm ctl); RAM in a file, where
# the guest's own memory pattern must be found (patcheck); a
# guest reset and SIGTERM end snapvm cleanly; every error is one line and
# a non-zero exit. Prints TAP.
#
# The errors that need no KVM are checked here, on any machine. The rest
# runs where there is a KVM: here on a hardware KVM, otherwise inside the
# rig (tests/rig/rig.sh, a QEMU TCG machine with nested SVM; $RIG overrides
# it). The guest is $BUILD/guest/testguest.elf (make guest).
set -u
BUILD=${BUILD:-build}
SNAPVM=$BUILD/snapvm
GUEST=$BUILD/guest/testguest.elf
tmp=$(mktemp -d)
out=$tmp/out err=$tmp/err
trap 'kill $lpid 2>/dev/null; rm -rf "$tmp"' EXIT
lpid=
. tests/lib/tap.sh
. tests/lib/where.sh

# One line on stderr starting with $1, nothing on stdout, exit status 1.
one_line() {
	[ "$rc" -eq 1 ] && [ "$(wc -l <"$err")" -eq 1 ] && [ ! -s "$out" ] &&
		grep -q "^$1" "$err"
}

# ---- here, without KVM ------------------------------------------------

nokvm() { SNAPVM_KVM=/nonexistent/kvm "$SNAPVM" "$@" </dev/null >"$out" 2>"$err"; rc=$?; }

nokvm run --kernel /nonexistent/kernel
check "missing kernel file: one line" \
	'one_line "snapvm: --kernel /nonexistent/kernel: No such file or directory$"'

printf 'MZ this is not a kernel\n' >"$tmp/garbage"
nokvm run --kernel "$tmp/garbage"
check "garbage kernel: one line" \
	'one_line "snapvm: --kernel $tmp/garbage: not a kernel snapvm can boot"'

head -c 100 "$SNAPVM" >"$tmp/truncated.elf"
nokvm run --kernel "$tmp/truncated.elf"
check "truncated ELF kernel: one line" \
	'one_line "snapvm: --kernel $tmp/truncated.elf: "'

nokvm run --kernel "$SNAPVM"
check "an ELF that is not a kernel: one line" \
	'one_line "snapvm: --kernel $SNAPVM: ELF type 3, an executable (2) expected$"'

for bad in "--mem 0:at least 2 MiB expected" "--mem 1X:not a size" \
	   "--mem 4097K:not a multiple of 4 KiB" "--mem 2T:at most 1 TiB expected" \
	   "--cpus 0:at least 1 expected" "--cpus 300:at most 254 expected" \
	   "--cpus two:not a count"; do
	opt=${bad%%:*} msg=${bad#*:}
	# shellcheck disable=SC2086
	nokvm run --kernel "$GUEST" $opt
	check "$opt: one line" 'one_line "snapvm: $opt: $msg"'
done

# The checks below come after the kernel's: they need a bootable one.
if [ -f "$GUEST" ]; then
	nokvm run --kernel "$GUEST" --mem 64M
	check "no KVM device: one line naming it" \
		'one_line "snapvm: /nonexistent/kvm: No such file or directory (KVM is not available on this machine)$"'

	nokvm run --kernel "$GUEST" --mem 2M
	check "RAM too small for the image: one line" \
		'one_line "snapvm: --kernel $GUEST: segment .* outside RAM (2 MiB): RAM too small for the image$"'

	truncate -s 1M "$tmp/small.bin"
	nokvm run --kernel "$GUEST" --mem 64M --mem-file "$tmp/small.bin"
	check "--mem-file of the wrong size: one line, file unchanged" \
		'one_line "snapvm: --mem-file $tmp/small.bin: size 1 MiB, 64 MiB expected$" &&
		 [ "$(wc -c <"$tmp/small.bin")" -eq 1048576 ]'

	nokvm run --kernel "$GUEST" --mem 64M --mem-file "$tmp/new.bin"
	check "--mem-file created for a run that fails is removed" \
		'[ $rc -eq 1 ] && [ ! -e "$tmp/new.bin" ]'

	: >"$tmp/file.sock"
	nokvm run --kernel "$GUEST" --control "$tmp/file.sock"
	check "--control path that is a file: one line, file kept" \
		'one_line "snapvm: --control $tmp/file.sock: exists and is not a socket$" &&
		 [ -f "$tmp/file.sock" ]'

	if command -v python3 >/dev/null; then
		python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
print("up", flush=True); time.sleep(60)' "$tmp/busy.sock" >"$tmp/py" &
		lpid=$!
		i=0
		while [ ! -s "$tmp/py" ] && [ $i -lt 100 ]; do
			sleep 0.1; i=$((i + 1))
		done
		nokvm run --kernel "$GUEST" --control "$tmp/busy.sock"
		check "control socket in use: one line" \
			'one_line "snapvm: --control $tmp/busy.sock: in use (another process is listening)$"'
		kill $lpid; wait $lpid 2>/dev/null; lpid=
		# The listener is gone, its socket stays: stale, replaced, removed.
		nokvm run --kernel "$GUEST" --control "$tmp/busy.sock"
		check "stale control socket: replaced, removed at exit" \
			'one_line "snapvm: /nonexistent/kvm: " && [ ! -e "$tmp/busy.sock" ]'
	else
		skip "control socket in use" "python3 missing"
		skip "stale control socket" "python3 missing"
	fi
else
	for t in "no KVM device" "RAM too small" "--mem-file checks" \
		 "--control checks"; do
		skip "$t" "$GUEST missing (make guest)"
	done
fi

nokvm run --mem 64M
check "run without --kernel: usage, exit 2" \
	'[ $rc -eq 2 ] && grep -q "^snapvm run: --kernel: required$" "$err"'
nokvm run --kernel "$GUEST" --frob
check "run with an unknown option: usage, exit 2" \
	'[ $rc -eq 2 ] && grep -q "^snapvm run: --frob: unknown option$" "$err"'
nokvm ctl "$tmp/none.sock"
check "ctl without a command: usage, exit 2" '[ $rc -eq 2 ]'
nokvm ctl "$tmp/none.sock" status
check "ctl to a missing socket: one line, exit 1" \
	'one_line "snapvm: ctl $tmp/none.sock: No such file or directory$"'

# ---- with KVM: here or in the rig --------------------------------------
#
# The script below (with tests/lib/kvm.sh beside it) prints "RESULT ..."
# lines; rig_results (tests/lib/tap.sh) numbers them.

cat >"$tmp/snapvm_run_kvm.sh" <<'KVM'
. "$(dirname "$0")/kvm.sh"
GUEST=${GUEST:-./testguest.elf}
PATCHECK=${PATCHECK:-./patcheck}
# util-linux's: busybox's setpriv cannot change uids. In the rig it is
# beside the script (RIG_PROGS).
SETPRIV=setpriv
[ -x ./setpriv ] && SETPRIV=./setpriv
MEM=67108864
ticks() { grep -c '^tick ' "$T/out"; }
# Run to the end (finish): rc is its status.
run() { start run "$@"; finish; }

for cpus in 1 2 4; do
	start run --kernel "$GUEST" --mem 64M --cpus $cpus
	check "--cpus $cpus: the guest is ready with $cpus CPUs and ticks" \
		'wait_for "$T/out" "^snapfs-guest ready cpus=$cpus " 1 60 &&
		 wait_for "$T/out" "^tick " 3 30 && ! grep -q MISMATCH "$T/out"'
	stop
done
grep -q "snapfs-guest FAULT" "$T/out" &&
	res "# the guest faulted: in the rig, check that its CPU has no AVX"

S=$T/vm.sock
umask 000
start run --kernel "$GUEST" --mem 64M --cpus 2 --control "$S"
umask 022
wait_for "$T/out" "^tick " 2 60
check "--control under umask 000: the socket is 0600" \
	'[ "$(stat -c %a "$S")" = 600 ]'
r=$("$SNAPVM" ctl "$S" status); rc=$?
check "ctl status: running, cpus and mem" \
	'[ $rc -eq 0 ] && [ "$r" = "ok running cpus=2 mem=$MEM" ]'
r=$("$SNAPVM" ctl "$S" pause); rc=$?
check "ctl pause: ok paused" '[ $rc -eq 0 ] && [ "$r" = "ok paused" ]'
a=$(ticks); sleep 2; b=$(ticks)
check "paused: no output for 2 s (ticks $a, then $b)" '[ "$a" -eq "$b" ]'
r=$("$SNAPVM" ctl "$S" status)
check "ctl status while paused" '[ "$r" = "ok paused cpus=2 mem=$MEM" ]'
r=$("$SNAPVM" ctl "$S" resume); rc=$?
check "ctl resume: ok running" '[ $rc -eq 0 ] && [ "$r" = "ok running" ]'
check "resumed: ticks again" 'wait_for "$T/out" "^tick " $((b + 3)) 30'
# Another user: kept out by the socket's mode, and refused by its uid
# (SO_PEERCRED) once that mode is widened; the VM runs on for root.
chmod 711 "$T"
nobody() { "$SETPRIV" --reuid=65534 --regid=65534 --clear-groups "$@"; }
r=$(nobody "$SNAPVM" ctl "$S" status 2>"$T/ctlerr"); rc=$?
check "ctl as uid 65534: the socket's mode refuses it" \
	'[ $rc -eq 1 ] && [ -z "$r" ] &&
	 grep -q "^snapvm: ctl $S: Permission denied$" "$T/ctlerr"'
chmod 666 "$S"
r=$(nobody "$SNAPVM" ctl "$S" pause); rc=$?
check "ctl as uid 65534 on a widened socket: refused, one line each way" \
	'[ $rc -eq 1 ] &&
	 [ "$r" = "error permission denied: uid 65534 is neither snapvm'"'"'s user nor root" ] &&
	 [ "$(grep -c "^snapvm: --control $S: refused a client of uid 65534 (pid [0-9]*)$" "$T/err")" -eq 1 ]'
r=$("$SNAPVM" ctl "$S" status); rc=$?
a=$(ticks)
check "after the refusal: root is served, the VM runs" \
	'[ $rc -eq 0 ] && [ "$r" = "ok running cpus=2 mem=$MEM" ] &&
	 wait_for "$T/out" "^tick " $((a + 2)) 30'
"$SNAPVM" run --kernel "$GUEST" --control "$S" </dev/null >"$T/out2" 2>"$T/err2"; rc=$?
check "a second snapvm on the same socket: one line, exit 1" \
	'[ $rc -eq 1 ] && [ "$(wc -l <"$T/err2")" -eq 1 ] &&
	 grep -q "^snapvm: --control $S: in use" "$T/err2"'
r=$("$SNAPVM" ctl "$S" frobnicate); rc=$?
check "ctl unknown command: error line, exit 1" \
	'[ $rc -eq 1 ] && [ "$r" = "error unknown command '"'frobnicate'"'" ]'
r=$("$SNAPVM" ctl "$S" quit); rc=$?
wait "$pid"; vmrc=$?; pid=
check "ctl quit: ok quitting, snapvm exits 0, socket removed" \
	'[ $rc -eq 0 ] && [ "$r" = "ok quitting" ] && [ $vmrc -eq 0 ] && [ ! -e "$S" ]'

run --kernel "$GUEST" --mem 64M --cmdline "halt_after=2"
check "guest reset: exit 0, 'snapvm: guest reset'" \
	'[ $rc -eq 0 ] && grep -q "^snapfs-guest poweroff" "$T/out" &&
	 [ "$(cat "$T/err")" = "snapvm: guest reset" ]'

M=$T/memory.bin
run --kernel "$GUEST" --mem 64M --mem-file "$M" --cmdline "halt_after=2 touch=8"
dd if="$M" bs=4096 skip=256 count=1 2>/dev/null >"$T/ram"
dd if="$GUEST" bs=4096 skip=1 count=1 2>/dev/null >"$T/elf"
check "--mem-file: created with the RAM's size, the guest's RAM in it" \
	'[ $rc -eq 0 ] && [ "$(wc -c <"$M")" -eq $MEM ] && cmp -s "$T/ram" "$T/elf"'
run --kernel "$GUEST" --mem 64M --mem-file "$M" --cmdline "halt_after=1"
check "--mem-file: an existing file of the right size is used" '[ $rc -eq 0 ]'
run --kernel "$GUEST" --mem 32M --mem-file "$M"
check "--mem-file of the wrong size: one line, never resized" \
	'one_line "snapvm: --mem-file $M: size 64 MiB, 32 MiB expected$" &&
	 [ "$(wc -c <"$M")" -eq $MEM ]'

# The guest's own pattern, written through KVM into the file: paused after
# every CPU's first pass, the file must hold it (patcheck, pattern.h).
start run --kernel "$GUEST" --mem 256M --cpus 2 --mem-file "$T/pattern.bin" \
	--control "$S" --cmdline "touch=64 rate=0"
wait_for "$T/out" "^snapfs-guest pass 1 " 2 120
r=$("$SNAPVM" ctl "$S" pause)
"$PATCHECK" "$T/pattern.bin" 2 64 >"$T/pc" 2>&1; rc=$?
check "--mem-file, touch=64: the file holds the guest's pattern" \
	'[ "$r" = "ok paused" ] && [ $rc -eq 0 ] && ! grep -q MISMATCH "$T/out"'
show "$T/pc"
# A flipped byte in each of two pages of CPU 0's share must be seen
# (patcheck lets one page per CPU be torn: the one being written).
cp "$T/pattern.bin" "$T/flipped.bin"
for page in 100 200; do
	off=$((64 * 1048576 + 4096 * page + 64))
	b=$(od -An -tu1 -j $off -N1 "$T/flipped.bin" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 1)))" |
		dd of="$T/flipped.bin" bs=1 seek=$off conv=notrunc 2>/dev/null
done
"$PATCHECK" "$T/flipped.bin" 2 64 >"$T/pc" 2>&1; rc=$?
check "patcheck sees flipped bytes in two pages of a share" \
	'[ $rc -eq 1 ] && grep -q "cpu 0: " "$T/pc"'
rm -f "$T/flipped.bin"
"$SNAPVM" ctl "$S" quit >/dev/null
wait "$pid"; pid=

run --kernel "$GUEST" --mem 64M --debug --cmdline "halt_after=1"
check "--debug: the boot described on stderr" \
	'[ $rc -eq 0 ] && grep -q "^snapvm: .*: pvh entry 0x[0-9a-f]*, 1 vCPUs, 64 MiB$" "$T/err"'

start run --kernel "$GUEST" --mem 64M --control "$S"
wait_for "$T/out" "^snapfs-guest ready" 1 60
stop
check "SIGTERM: exit 143, one line, socket removed" \
	'[ $rc -eq 143 ] && [ "$(cat "$T/err")" = "snapvm: ended by SIGTERM" ] && [ ! -e "$S" ]'

run --kernel /nonexistent/kernel
check "with KVM: missing kernel file: one line" 'one_line "snapvm: --kernel /nonexistent/kernel: "'
printf 'garbage' >"$T/garbage"
run --kernel "$T/garbage"
check "with KVM: garbage kernel: one line" 'one_line "snapvm: --kernel $T/garbage: not a kernel"'
run --kernel "$GUEST" --cpus 0
check "with KVM: --cpus 0: one line" 'one_line "snapvm: --cpus 0: at least 1 expected$"'
rm -rf "$T"
res "# end"
KVM

need_built --skip "snapvm run with KVM" "$GUEST" "$BUILD/guest/patcheck"
kvm_or_rig --smp 2 --timeout 300 --progs setpriv "snapvm run with KVM" \
	"$tmp/snapvm_run_kvm.sh" "$tmp/kvm.log" "$BUILD/guest/patcheck"
rig_results "$tmp/kvm.log"
tap_end
