#!/bin/sh
# snapvm snapshots: save a running test guest (full and diff), restore it
# (its ticks go on, its own memory and register checks find nothing
# wrong), five restores deep, eight restores of one snapshot at once, 1, 2
# and 4 vCPUs, 256 MiB and 2 GiB of RAM, --shared; no restore changes its
# snapshot; every hostile snapshot is one line and exit 1 before any vCPU
# runs. Prints TAP.
#
# Refusals that need no KVM run here; the rest where there is a KVM: here
# on a hardware KVM, otherwise inside the rig (tests/rig/rig.sh).
set -u
BUILD=${BUILD:-build}
SNAPVM=$BUILD/snapvm
GUEST=$BUILD/guest/testguest.elf
tmp=$(mktemp -d)
out=$tmp/out err=$tmp/err
trap 'rm -rf "$tmp"' EXIT
. tests/lib/tap.sh
. tests/lib/where.sh

# ---- here: snapshots refused before KVM is needed ---------------------

restore() {
	SNAPVM_KVM=/nonexistent/kvm "$SNAPVM" restore "$@" </dev/null \
		>"$out" 2>"$err"
	rc=$?
}
one_line() {
	[ "$rc" -eq 1 ] && [ "$(wc -l <"$err")" -eq 1 ] && [ ! -s "$out" ] &&
		grep -q "^$1" "$err"
}
# A fresh copy of a sample snapshot, hostile in one way: $s
sample() {
	s=$tmp/s$n
	rm -rf "$s"
	"$BUILD/tests/mksnap" "$s" --vcpus 2 --mem 67108864 >/dev/null || return 1
	[ $# -eq 0 ] || "$BUILD/tests/snapedit" "$s" "$@"
}
flip() {	# flip a byte of FILE at OFFSET
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "$(printf '\\%03o' $((b ^ 0x40)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}

restore
check "restore without DIR: usage, exit 2" \
	'[ $rc -eq 2 ] && grep -q "^snapvm restore: DIR: required$" "$err"'
restore "$tmp/none"
check "missing snapshot: one line" \
	'one_line "snapvm: $tmp/none: manifest.bin: No such file or directory$"'
sample
restore "$s"
check "a sound snapshot gets as far as KVM" \
	'one_line "snapvm: /nonexistent/kvm: No such file or directory"'
sample; flip "$s/manifest.bin" 20
restore "$s"
check "corrupt manifest.bin: one line" 'one_line "snapvm: $s: manifest.bin: "'
sample; flip "$s/state.bin" 100
restore "$s"
check "state.bin not matching its digest: one line" \
	'one_line "snapvm: $s: state.bin: .*digest"'
sample; truncate -s 32M "$s/memory.bin"
restore "$s"
check "memory.bin shorter than the manifest says: one line" \
	'one_line "snapvm: $s: memory.bin: 33554432 bytes, the manifest says 67108864$"'
sample --memory-size 134217728
restore "$s"
check "manifest promising more RAM than memory.bin holds: one line" \
	'one_line "snapvm: $s: memory.bin: 67108864 bytes, the manifest says 134217728$"'
sample --require teleportation
restore "$s"
check "unknown required feature: one line naming it" \
	'one_line "snapvm: $s: .*teleportation"'
sample --manifest-vcpus 3
restore "$s"
check "vCPU count of manifest and state disagree: one line" \
	'one_line "snapvm: $s: .*vcpu"'
sample; rm "$s/memory.bin"
restore "$s"
check "memory.bin missing: one line" \
	'one_line "snapvm: $s: memory.bin: No such file or directory$"'
sample; rm "$s/state.bin"
restore "$s"
check "state.bin missing: one line" \
	'one_line "snapvm: $s: state.bin: No such file or directory$"'

# ---- with KVM: here or in the rig --------------------------------------

cat >"$tmp/snapshot_kvm.sh" <<'KVM'
. "$(dirname "$0")/kvm.sh"
GUEST=${GUEST:-./testguest.elf}
PATCHECK=${PATCHECK:-./patcheck}
SNAPEDIT=${SNAPEDIT:-./snapedit}
SNAPCTL=${SNAPCTL:-./snapctl}
S=$T/vm.sock
ticks() { grep -c '^tick ' "$1"; }
ctl() {
	r=$(timeout 120 "$SNAPVM" ctl "$S" "$@"); crc=$?
	[ -n "$r" ] || stuck "snapvm ctl $1: no answer in 120 s (status $crc)"
}
sums() { (cd "$1" && sha256sum manifest.bin state.bin memory.bin); }

# A restore that goes on where its snapshot was: no boot, ticks from
# after the saved one, and within 90 s a pass of every CPU's worker over
# its memory with no mismatch. Leaves the VM running ($pid).
restored() {	# NAME SNAPSHOT CPUS [restore options]
	name=$1 snap=$2 cpus=$3; shift 3
	start restore "$snap" "$@"
	ok=1
	wait_for "$T/out" '^tick ' 3 60 || ok=0
	for c in $(seq 0 $((cpus - 1))); do
		wait_for "$T/out" "^snapfs-guest pass .* cpu=$c .*mismatches=0" 1 90 || ok=0
	done
	check "$name: ticks go on from tick $(first_tick "$T/out"), every CPU passes its checks" \
		'[ $ok -eq 1 ] && [ "$(first_tick "$T/out")" -gt 0 ] && clean "$T/out"'
}

# ---- save while running; full and diff --------------------------------
# 250 pages a second: the guest dirties 1 MB a second between the two
# saves, and the diff stays under half the 16 MiB full save unless they
# are 8 s apart (1 MB measured here: they were 1 s apart). At 1000
# pages a second that margin was 2 s, which a loaded machine under ASan
# can take. A pass of each CPU over its 8 MiB takes 16 s.
start run --kernel "$GUEST" --mem 256M --cpus 2 --control "$S" \
	--cmdline "touch=16 rate=250"
wait_for "$T/out" "^snapfs-guest pass 1 " 2 120
wait_for "$T/out" '^tick ' 3 60
ctl snapshot "$T/s1"
before=$(last_tick "$T/out")
check "snapshot of a running VM: ok, full" \
	'[ $crc -eq 0 ] && echo "$r" | grep -q "^ok snapshot $T/s1 id=[0-9a-f]\{32\} kind=full "'
res "# $r"
full_written=$(echo "$r" | sed -n 's/.* written=\([0-9]*\).*/\1/p')
check "the VM goes on after the save" 'wait_for "$T/out" "^tick " $((before + 3)) 30'
ctl snapshot "$T/s2" --parent "$T/s1"
check "diff snapshot: ok, kind=diff" \
	'[ $crc -eq 0 ] && echo "$r" | grep -q "^ok snapshot $T/s2 .*kind=diff "'
res "# $r"
diff_written=$(echo "$r" | sed -n 's/.* written=\([0-9]*\).*/\1/p')
check "the diff wrote what the guest dirtied, under half the full save's ($diff_written, $full_written bytes)" \
	'[ -n "$diff_written" ] && [ "$diff_written" -lt $((full_written / 2)) ]'
"$PATCHECK" "$T/s1/memory.bin" 2 16 >"$T/pc" 2>&1; vrc=$?
check "s1's memory.bin holds the guest's pattern" '[ $vrc -eq 0 ]'
show "$T/pc"
"$PATCHECK" "$T/s2/memory.bin" 2 16 >"$T/pc" 2>&1; vrc=$?
check "so does s2's, its parent's with the dirty pages over it" '[ $vrc -eq 0 ]'
show "$T/pc"
"$SNAPCTL" verify "$T/s1" >"$T/v" 2>&1 && "$SNAPCTL" verify "$T/s2" >>"$T/v" 2>&1
vrc=$?
check "snapctl verify passes on both" '[ $vrc -eq 0 ]'
ctl snapshot "$T/s3" --parent "$T/s1"
check "a diff against an older snapshot: refused, nothing made" \
	'[ $crc -eq 1 ] && echo "$r" | grep -q "not this VM.s last snapshot" && [ ! -e "$T/s3" ]'
ctl snapshot "$T/s2"
check "a snapshot over an existing one: refused, the old one intact" \
	'[ $crc -eq 1 ] && "$SNAPCTL" verify "$T/s2" >/dev/null'
ctl snapshot
check "snapshot without DIR: error usage" \
	'[ $crc -eq 1 ] && echo "$r" | grep -q "^error usage: snapshot DIR"'
ctl snapshot "$T/s5" --parent
check "--parent without a value: error usage, nothing made" \
	'[ $crc -eq 1 ] && echo "$r" | grep -q "^error usage: " && [ ! -e "$T/s5" ]'
ctl pause
ctl snapshot "$T/s4"
check "a snapshot of a paused VM keeps it paused" \
	'[ $crc -eq 0 ] && [ "$("$SNAPVM" ctl "$S" status | cut -d" " -f2)" = paused ]'
ctl quit
wait "$pid"; pid=
check "the original guest saw no mismatch" 'sound "$T/out"'
sums "$T/s1" >"$T/s1.sums"

# ---- restore ----------------------------------------------------------
restored "restore of the full snapshot" "$T/s1" 2 --control "$S"
stop
restored "restore of the diff snapshot" "$T/s2" 2 --control "$S"
stop
check "restores never changed the snapshot" 'sums "$T/s1" | cmp -s - "$T/s1.sums"'

# ---- five deep: restore, run, snapshot, restore ... --------------------
cur=$T/s2 prev=0 deep=1
for i in 1 2 3 4 5; do
	start restore "$cur" --control "$S"
	wait_for "$T/out" '^tick ' 3 60 || deep=0
	ft=$(first_tick "$T/out")
	[ "$ft" -gt "$prev" ] && clean "$T/out" || deep=0
	prev=$ft
	ctl snapshot "$T/d$i"
	[ $crc -eq 0 ] || { deep=0; res "# $r"; }
	stop
	cur=$T/d$i
done
check "five restores deep, each going on from the last (tick $prev)" '[ $deep -eq 1 ]'
restored "the fifth snapshot" "$cur" 2
stop

# ---- one snapshot, eight restores at once -----------------------------
pids=
for k in 1 2 3 4 5 6 7 8; do
	"$SNAPVM" restore "$T/s1" </dev/null >"$T/out$k" 2>"$T/err$k" &
	pids="$pids $!"
done
all=1
for k in 1 2 3 4 5 6 7 8; do
	wait_for "$T/out$k" '^tick ' 3 120 && clean "$T/out$k" || all=0
done
for p in $pids; do kill -TERM "$p" 2>/dev/null; done
for p in $pids; do wait "$p" 2>/dev/null; done
check "eight restores of one snapshot at once all tick" '[ $all -eq 1 ]'
check "and the snapshot is unchanged" 'sums "$T/s1" | cmp -s - "$T/s1.sums"'

# ---- 1 and 4 vCPUs -------------------------------------------------------
for cpus in 1 4; do
	start run --kernel "$GUEST" --mem 128M --cpus $cpus --control "$S" \
		--cmdline "touch=8 rate=2000"
	wait_for "$T/out" "^snapfs-guest pass 1 " $cpus 120
	ctl snapshot "$T/c$cpus"
	quit_vm
	restored "--cpus $cpus: restore" "$T/c$cpus" $cpus
	stop
done

# ---- RAM in a file: the first snapshot copies its data extents ----------
start run --kernel "$GUEST" --mem 128M --mem-file "$T/ram.bin" --control "$S" \
	--cmdline "touch=8 rate=0"
wait_for "$T/out" "^snapfs-guest pass 1 " 1 120
ctl snapshot "$T/f1"
res "# $r"
check "--mem-file: the snapshot is a copy of the RAM file (copied, nothing written)" \
	'[ $crc -eq 0 ] && echo "$r" | grep -q " copied=[1-9][0-9]* written=0 "'
quit_vm
"$PATCHECK" "$T/f1/memory.bin" 1 8 >"$T/pc" 2>&1; vrc=$?
check "--mem-file: its memory.bin holds the guest's pattern" '[ $vrc -eq 0 ]'
restored "--mem-file: restore" "$T/f1" 1
stop
rm -rf "$T/f1" "$T/ram.bin"

# ---- --shared: the VM runs in memory.bin itself --------------------------
start run --kernel "$GUEST" --mem 128M --control "$S" --cmdline "touch=4"
wait_for "$T/out" '^tick ' 2 60
ctl snapshot "$T/sh"
quit_vm
sha_before=$(sha256sum <"$T/sh/memory.bin")
restored "--shared restore" "$T/sh" 1 --shared
stop
check "--shared: the guest's writes are in memory.bin" \
	'[ "$(sha256sum <"$T/sh/memory.bin")" != "$sha_before" ]'
rm -rf "$T/sh" "$T/c1" "$T/c4" "$T"/d[1-4] "$T/s4"

# ---- hostile state: refused before any vCPU runs -------------------------
refused() {	# NAME PATTERN SNAPEDIT-ARGS...
	name=$1 pat=$2; shift 2
	rm -rf "$T/bad"; cp -r "$T/s1" "$T/bad"
	"$SNAPEDIT" "$T/bad" "$@"
	start restore "$T/bad"; finish
	check "$name: one line, exit 1, the guest never ran" \
		'one_line "snapvm: $pat" && [ ! -s "$T/out" ]'
}
refused "an XSAVE area larger than this host's" \
	"$T/bad: state.bin: vcpu 0: xsave: 65536 bytes, this host's KVM takes at most" \
	--xsave-size 65536
refused "XSAVE features this host lacks" \
	"$T/bad: state.bin: vcpu 0: xsave: features 0x60000 (XSTATE_BV) not supported" \
	--xstate-bv 0x60000
refused "an MSR this host does not know" \
	"$T/bad: state.bin: vcpu 0: MSR 0xdeadbeef is not supported" --msr 0xdeadbeef
rm -rf "$T/bad"

# ---- 2 GiB ---------------------------------------------------------------
rm -rf "$T/s2" "$T/d5"
start run --kernel "$GUEST" --mem 2G --cpus 2 --control "$S" \
	--cmdline "touch=128 rate=0"
wait_for "$T/out" "^snapfs-guest pass 1 " 2 240
ctl snapshot "$T/big"
res "# $r"
quit_vm
"$PATCHECK" "$T/big/memory.bin" 2 128 >"$T/pc" 2>&1; vrc=$?
check "2 GiB: memory.bin holds the guest's 128 MiB pattern" '[ $vrc -eq 0 ]'
show "$T/pc"
restored "2 GiB: restore" "$T/big" 2
stop
rm -rf "$T"
res "# end"
KVM

need_built --skip "snapshots with KVM" "$GUEST" "$BUILD/guest/patcheck" \
	"$BUILD/tests/snapedit"
# About 5 minutes in the rig, more under the sanitizers.
kvm_or_rig --smp 2 --mem 4096 --timeout 1200 --progs "$BUILD/tests/snapedit" \
	"snapshots with KVM" "$tmp/snapshot_kvm.sh" "$tmp/kvm.log" \
	"$BUILD/guest/patcheck"
rig_results "$tmp/kvm.log"
tap_end
