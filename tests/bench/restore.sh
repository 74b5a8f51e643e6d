#!/bin/sh
# A lazy restore from the snapfs mount against a plain file on the same
# disk: random page faults on a mapped memory.bin, with and without the
# daemon's recorded working set.
#
#   sh tests/bench/restore.sh [-n RUNS]
#
# On this machine (needs root and /dev/fuse), in a new directory under
# $TMPDIR (default /var/tmp), removed at exit: a new store ($BUILD/snapctl
# store init, the default chunk size) mounted with `$BUILD/snapfs STORE
# MNT -f`; a daemon is always stopped by its pid with SIGTERM (SIGKILL
# after 10 s) and its mount checked gone (else umount -l), also on
# failure. MNT/s is a snapshot: manifest.bin and state.bin from
# $BUILD/tests/mksnap, memory.bin a 256 MiB memory-like image (pagefill
# image: random runs of 64 KiB to 4 MiB covering 30% of it, holes
# elsewhere) copied in with `dd bs=1M conv=fsync`. The plain reference is
# that image, IMG, a sparse file of the same bytes beside the store.
#
# The reader is build/bench/lazytouch (tests/bench/lazytouch.c), what a
# lazily restored guest does to its memory: it maps the file (MAP_PRIVATE,
# PROT_READ) and reads one byte of each of PERCENT% of its 4 KiB pages,
# distinct, in a random order (seed 1, the same pages every run): ms from
# the first touch to the last, and a checksum of the bytes, which must be
# the same from the mount and from IMG. Every run is cold: for the mount a
# new daemon (unmount, mount again: an empty chunk cache), then for both
# sync and drop_caches. Mount and plain alternate run by run.
#
#   touch   2% and 10% with no working set (setfattr -n
#           user.snapfs.workingset -v off on the mount's memory.bin after
#           each mount): ms, mount/plain.
#   ws      2% and 10% with a recorded working set: `on`, then `clear`,
#           one cold recording run (not counted), then getfattr polled
#           until it says "recorded N" (at most WS_WAIT s, default 45: the
#           daemon's ws_window is 30 s by default); then the measured cold
#           runs, the daemon pushing those chunks into the page cache while
#           lazytouch runs: ms, mount/plain, and the READs the daemon
#           answered against the runs with no working set.
#   procs   4 lazytouch processes at once (PROCS 4: the same pages), 2%,
#           no working set: the slowest one's ms, mount/plain; READs
#           against one reader's (the page cache is shared: about equal).
#   seq     `dd if=FILE of=/dev/null bs=1M`, no working set: cold and warm
#           (the same read again), GB/s (10^9 bytes/s).
#
# The daemon's counters, read with getfattr on memory.bin before and after
# each run of the mount: user.snapfs.reads (READ requests answered since
# it loaded the file; after minus before), user.snapfs.fetched (chunks
# loaded from the store) and user.snapfs.prefetched (chunks pushed from
# the working set). An attribute the daemon does not have is "n/a" in the
# tables, not a failure; so is the ws step when the daemon has no
# user.snapfs.workingset. The header gives the mount's read_ahead_kb (its
# bdi, from its major:minor in /proc/self/mountinfo) and the disk's.
#
# Each figure is the median of RUNS (default 5; -n or BENCH_RUNS) runs,
# with min and max; ratios are of medians. Every run's numbers are in
# $BUILD/bench/restore.log ("BENCH ..." lines). Under a minute on a
# 2-core machine with RUNS 5, plus the waits for the two recordings; 1 GiB
# free on TMPDIR's disk; every run drops the whole machine's page cache
# (drop_caches), which slows whatever else runs.
#
# Variables: BUILD (build), CC (gcc), TMPDIR (/var/tmp), BENCH_RUNS (5),
# WS_WAIT (45).
#
# Exit status: 0; 1 when a run failed (an I/O error, different bytes, a
# working set that was never recorded, a daemon that reported an error or
# did not stop cleanly); 2 when something is missing (make; getfattr and
# setfattr, Debian's attr), or not root, or no FUSE. Targets missed are
# not failures: the tables say MISSED.
set -u
bench=restore
. tests/bench/lib.sh
OUT=$BUILD/bench
LOG=$OUT/restore.log
RUNS=${BENCH_RUNS:-5}
WS_WAIT=${WS_WAIT:-45}
# shellcheck disable=SC2034 # bench_table (lib.sh) reads it
outer=
MIB=256
SEED=1
PROCS=4
while getopts n: c; do
	case $c in
	n) RUNS=$OPTARG ;;
	*) echo "usage: restore.sh [-n RUNS]" >&2; exit 2 ;;
	esac
done
case $RUNS$WS_WAIT in
*[!0-9]*) echo "restore: -n and WS_WAIT take numbers" >&2; exit 2 ;;
esac
[ "$RUNS" -ge 1 ] || { echo "restore: -n takes at least 1" >&2; exit 2; }

die2() { echo "restore: $*" >&2; exit 2; }
for f in "$BUILD/snapfs:make" "$BUILD/snapctl:make" \
	 "$BUILD/tests/mksnap:make all build/tests/mksnap"; do
	[ -x "${f%%:*}" ] || die2 "${f%%:*} missing (run ${f#*:})"
done
[ "$(id -u)" -eq 0 ] || die2 "needs root (drop_caches, the cold runs)"
[ -c /dev/fuse ] || die2 "no /dev/fuse"
for p in dd getfattr setfattr; do
	command -v $p >/dev/null || die2 "$p missing (getfattr and setfattr: apt-get install attr)"
done
mkdir -p "$OUT" || exit 2
for p in lazytouch pagefill; do
	"$CC" -std=gnu11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror \
		-o "$OUT/$p" tests/bench/$p.c || die2 "tests/bench/$p.c did not build"
done

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/restore-bench.XXXXXX") || exit 2
M=$tmp/mnt
IMG=$tmp/img
F=$M/s/memory.bin
fspid=
failed=0
cleanup() { bench_unmount; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
note() { echo "BENCH # $*" >>"$LOG"; }
fail() { failed=$((failed + 1)); note "$*"; echo "restore: $*" >&2; }
cold_mount() { bench_unmount; bench_drop; bench_mount; }
xa() {	# NAME: memory.bin's user.snapfs.NAME, "-" when it has none
	getfattr --absolute-names --only-values -n "user.snapfs.$1" "$F" \
		2>/dev/null || echo -
}
ws_state() { xa workingset | tr ' ' ':'; }
ws_set() {	# VALUE: setfattr user.snapfs.workingset; a failure when the
		# daemon has the attribute but refuses
	setfattr -n user.snapfs.workingset -v "$1" "$F" 2>"$tmp/sf" && return 0
	if [ "$(xa workingset)" != - ]; then
		fail "setfattr user.snapfs.workingset $1: $(tail -1 "$tmp/sf")"
	fi
	return 1
}
isnum() { case $1 in ''|*[!0-9]*) return 1 ;; esac; }
sums=
check_sum() {	# PERCENT SUM WHAT: the bytes touched must be the same
	_k=$(echo "$sums" | sed -n "s/^$1 //p")
	if [ -z "$_k" ]; then
		sums="$sums
$1 $2"
	elif [ "$_k" != "$2" ]; then
		fail "$3: checksum $2, another run read $_k: different bytes"
	fi
}
touch_run() {	# CASE KIND PERCENT PROCS I: one cold run, a "BENCH touch" line
	if [ "$2" = snapfs ]; then
		cold_mount
		[ "$1" = ws ] || ws_set off
		_file=$F _r0=$(xa reads)
	else
		bench_drop
		_file=$IMG _r0=-
	fi
	_st=-
	[ "$2" = snapfs ] && _st=$(ws_state)
	if "$OUT/lazytouch" "$_file" "$3" $SEED "$4" >"$tmp/lt" 2>"$tmp/lte"; then
		read -r _ms _sum <"$tmp/lt"
		check_sum "$3" "$_sum" "$1 $2 $3% x$4, run $5"
	else
		_ms=- _sum=-
		fail "lazytouch $1 $2 $3% x$4, run $5: $(tail -1 "$tmp/lte")"
	fi
	_reads=- _fetched=- _pre=-
	if [ "$2" = snapfs ]; then
		_reads=$(xa reads) _fetched=$(xa fetched) _pre=$(xa prefetched)
		# Nothing before: the daemon had not loaded the file yet.
		isnum "$_r0" && isnum "$_reads" && _reads=$((_reads - _r0))
	fi
	echo "BENCH touch $1 $2 $3 $4 $5 $_ms $_reads $_fetched $_pre $_st" >>"$LOG"
}
bdi() {		# PATH: MAJ:MIN of the file system holding it
	stat -c '%Hd:%Ld' "$1" 2>/dev/null
}

free=$(df -Pk "$tmp" | awk 'NR == 2 { print int($4 / 1024) }')
[ -n "$free" ] && [ "$free" -lt 1024 ] &&
	die2 "$free MiB free on $tmp's disk; about 1024 needed"
fstype=$(df -PT "$tmp" | awk 'NR == 2 { print $2 " (" $1 ")" }')
: >"$LOG"
echo "BENCH host $(nproc) ${TMPDIR:-/var/tmp} $fstype" >>"$LOG"
echo "BENCH kernel $(uname -r)" >>"$LOG"

# ---- the store, the snapshot ------------------------------------------
"$BUILD/snapctl" store init "$tmp/store" >/dev/null || die2 "snapctl store init failed"
"$BUILD/tests/mksnap" "$tmp/small" --mem 1048576 || die2 "mksnap failed"
"$OUT/pagefill" image "$IMG" $MIB 30 1 || die2 "pagefill image failed"
chunk=$("$BUILD/snapctl" store stats --json "$tmp/store" |
	sed -n 's/^ *"chunk_size": *\([0-9]*\).*/\1/p')
echo "BENCH chunk ${chunk:--}" >>"$LOG"
mkdir "$M"
bench_mount
mkdir "$M/s" && cp "$tmp/small/manifest.bin" "$tmp/small/state.bin" "$M/s/" ||
	fail "mkdir or cp of the small files into the mount failed"
dd if="$IMG" of="$F" bs=1M conv=fsync status=none 2>"$tmp/dd" ||
	fail "import: dd: $(tail -1 "$tmp/dd")"
bench_unmount
bench_mount
# The mount's read-ahead: its bdi is its major:minor in mountinfo (field
# 3, the mount point field 5); the disk's, of the file system of $tmp.
mm=$(awk -v m="$M" '$5 == m { print $3 }' /proc/self/mountinfo | tail -1)
ra_fuse=$(cat "/sys/class/bdi/$mm/read_ahead_kb" 2>/dev/null)
ra_disk=
for f in "/sys/dev/block/$(bdi "$tmp")/queue/read_ahead_kb" \
	 "/sys/dev/block/$(bdi "$tmp")/../queue/read_ahead_kb"; do
	[ -r "$f" ] && { ra_disk=$(cat "$f"); break; }
done
echo "BENCH ra ${ra_fuse:--} ${ra_disk:--}" >>"$LOG"
ws_set off
cmp "$IMG" "$F" || fail "memory.bin read back differs from its file"
have=
for a in reads fetched prefetched workingset; do
	[ "$(xa $a)" = - ] || have="$have $a"
done
echo "BENCH attrs${have:- none}" >>"$LOG"

# ---- no working set: 2% and 10% ---------------------------------------
i=1
while [ $i -le "$RUNS" ]; do
	for pct in 2 10; do
		touch_run touch snapfs $pct 1 $i
		touch_run touch plain $pct 1 $i
	done
	i=$((i + 1))
done

# ---- a recorded working set: 2% and 10% -------------------------------
for pct in 2 10; do
	if [ "$(xa workingset)" = - ]; then
		echo "BENCH wsrec $pct na - -" >>"$LOG"
		continue
	fi
	cold_mount
	ws_set on
	ws_set clear
	"$OUT/lazytouch" "$F" $pct $SEED >"$tmp/lt" 2>"$tmp/lte" ||
		fail "lazytouch, the $pct% recording run: $(tail -1 "$tmp/lte")"
	read -r rec_ms _ <"$tmp/lt" || rec_ms=-
	j=0
	state=$(ws_state)
	while [ "${state%%:*}" != recorded ] && [ $j -lt $((WS_WAIT * 10)) ]; do
		sleep 0.1; j=$((j + 1))
		state=$(ws_state)
	done
	echo "BENCH wsrec $pct $state $((j / 10)).$((j % 10)) $rec_ms" >>"$LOG"
	if [ "${state%%:*}" != recorded ]; then
		fail "the $pct% working set not recorded $WS_WAIT s after the reader exited (getfattr: $state)"
		continue
	fi
	i=1
	while [ $i -le "$RUNS" ]; do
		touch_run ws snapfs $pct 1 $i
		touch_run ws plain $pct 1 $i
		i=$((i + 1))
	done
done

# ---- 4 readers at once, 2% --------------------------------------------
i=1
while [ $i -le "$RUNS" ]; do
	touch_run procs snapfs 2 $PROCS $i
	touch_run procs plain 2 $PROCS $i
	i=$((i + 1))
done

# ---- sequential reads -------------------------------------------------
i=1
while [ $i -le "$RUNS" ]; do
	cold_mount
	ws_set off
	bench_ddread "$F" "snapfs cold read, run $i"; c=$g
	bench_ddread "$F" "snapfs warm read, run $i"
	echo "BENCH seq snapfs $i $c $g" >>"$LOG"
	bench_drop
	bench_ddread "$IMG" "plain cold read, run $i"; c=$g
	bench_ddread "$IMG" "plain warm read, run $i"
	echo "BENCH seq plain $i $c $g" >>"$LOG"
	i=$((i + 1))
done
bench_unmount
if [ -s "$tmp/fs.err" ]; then
	fail "the daemon reported:"
	tail -5 "$tmp/fs.err" | sed 's/^/BENCH # /' >>"$LOG"
fi
echo "BENCH failed $failed" >>"$LOG"

bench_table '
function f(v, p) { return v == "-" ? "-" : sprintf("%." p "f", v) }
function na(v, p) { return v == "-" ? "n/a" : sprintf("%." p "f", v) }
function yes(ok) { return ok ? "met" : "MISSED" }
$2 == "host" { nproc = $3; tdir = $4; fst = $5 " " $6 }
$2 == "chunk" { chunk = $3 }
$2 == "ra" { ra_fuse = $3; ra_disk = $4 }
$2 == "attrs" { attrs = $0; sub(/^BENCH attrs /, "", attrs) }
$2 == "touch" {
	k = $3 " " $4 " " $5; val[k, $7] = 1
	for (c = 1; c <= 4; c++) val[k, $7, c] = $(7 + c)
	if ($4 == "snapfs") { state[$3 " " $5] = $12; gsub(/:/, " ", state[$3 " " $5]) }
}
$2 == "wsrec" { rec[$3] = $4; gsub(/:/, " ", rec[$3]); rec_s[$3] = $5
		rec_ms[$3] = $6 }
$2 == "seq" { val["seq " $3, $4] = 1; val["seq " $3, $4, 1] = $5
	      val["seq " $3, $4, 2] = $6 }
$2 == "failed" { failed = $3 }
# The median of column c of the mount'"'"'s runs of case cs at pct.
function cnt(cs, pct, c) { stats(cs " snapfs " pct, c); return med[c] }
function timerow(name, cs, pct, tg, why,    sm, sl, sh, r) {
	stats(cs " snapfs " pct, 1); sm = med[1]; sl = lo[1]; sh = hi[1]
	stats(cs " plain " pct, 1); r = ratio(sm, med[1])
	ratios[cs " " pct] = r
	if (why != "") {
		printf "%-28s  %s\n", name, why
		return
	}
	printf "%-28s  %7s %7s %7s  %7s %7s %7s  %6s  %s\n", name, f(sm, 1),
	       f(sl, 1), f(sh, 1), f(med[1], 1), f(lo[1], 1), f(hi[1], 1), r,
	       sprintf("<= %.1fx plain: ", tg) yes(r != "-" && r <= tg)
}
function seqrow(name, c, tg,    sm, sl, sh, r) {
	stats("seq snapfs", c); sm = med[c]; sl = lo[c]; sh = hi[c]
	stats("seq plain", c); r = ratio(sm, med[c])
	printf "%-28s  %7s %7s %7s  %7s %7s %7s  %6s  %s\n", name, f(sm, 2),
	       f(sl, 2), f(sh, 2), f(med[c], 2), f(lo[c], 2), f(hi[c], 2), r,
	       sprintf(">= %.1fx plain: ", tg) yes(r != "-" && r >= tg)
}
function wswhy(pct) {
	if (!(pct in rec)) return "not measured"
	if (rec[pct] == "na") return "n/a: the daemon has no user.snapfs.workingset"
	if (rec[pct] !~ /^recorded/) return "not measured: no working set was recorded (getfattr: " rec[pct] ")"
	return ""
}
function ctrrow(name, cs, pct, what,    rd, fe, pf, base, x, tgt) {
	rd = cnt(cs, pct, 2); fe = cnt(cs, pct, 3); pf = cnt(cs, pct, 4)
	x = ""; tgt = ""
	if (what == "ws") {
		base = cnt("touch", pct, 2)
		x = ratio(base, rd)
		tgt = ">= 3x fewer READs: " (x == "-" ? "n/a" : yes(x >= 3))
		x = x == "-" ? "n/a" : x "x fewer"
	} else if (what == "procs") {
		base = cnt("touch", pct, 2)
		x = ratio(rd, base)
		tgt = "0.8-1.25x 1 reader'"'"'s: " \
		      (x == "-" ? "n/a" : yes(x >= 0.8 && x <= 1.25))
		x = x == "-" ? "n/a" : x "x 1 reader"
	}
	printf "%-28s  %7s %7s %10s  %-15s  %s\n", name, na(rd, 0), na(fe, 0),
	       na(pf, 0), x, tgt
}
END {
	printf "restore: %d cores, %s on %s, Linux %s; store chunk size %s " \
	       "KiB; mount read_ahead_kb %s (the disk: %s); medians of %d " \
	       "runs\n", nproc, tdir, fst, kernel,
	       chunk == "-" ? "?" : chunk / 1024, ra_fuse, ra_disk, runs
	printf "memory.bin: %d MiB, 30%% random (runs of 64 KiB-4 MiB), the " \
	       "rest zero, in the mount; plain: the same bytes in a sparse " \
	       "file on the same disk; user.snapfs.* counters the daemon has: " \
	       "%s\n", mibsz, attrs
	printf "lazytouch: mmap MAP_PRIVATE, 1 byte of each of PERCENT%% of " \
	       "the 4 KiB pages, distinct, random order, seed %d; every run " \
	       "cold (mount: a new daemon; both: drop_caches)\n\n", seed
	printf "%-28s  %-23s  %-23s  %6s  %s\n", "lazy restore, cold",
	       "------ snapfs ms ------", "------ plain ms -------", "snapfs",
	       "target"
	printf "%-28s  %7s %7s %7s  %7s %7s %7s  %6s\n", "", "median",
	       "min", "max", "median", "min", "max", "/plain"
	timerow("touch 2%, no working set", "touch", 2, 1.5, "")
	timerow("touch 10%, no working set", "touch", 10, 1.5, "")
	timerow("touch 2%, working set", "ws", 2, 1.0, wswhy(2))
	timerow("touch 10%, working set", "ws", 10, 1.0, wswhy(10))
	timerow("touch 2%, " procs " readers", "procs", 2, 1.5, "")

	printf "\n%-28s  %7s %7s %10s  %-15s  %s\n", "the daemon, per run",
	       "READs", "fetched", "prefetched", "READs against", "target"
	ctrrow("touch 2%, no working set", "touch", 2, "")
	ctrrow("touch 10%, no working set", "touch", 10, "")
	for (p = 2; p <= 10; p += 8)
		if (wswhy(p) == "")
			ctrrow("touch " p "%, working set", "ws", p, "ws")
		else
			printf "%-28s  %s\n", "touch " p "%, working set",
			       wswhy(p)
	ctrrow("touch 2%, " procs " readers", "procs", 2, "procs")
	printf "(READs: user.snapfs.reads after the run minus before; " \
	       "fetched, prefetched: chunks, as getfattr gives them after " \
	       "the run; medians)\n"
	for (p = 2; p <= 10; p += 8)
		if (rec[p] ~ /^recorded/)
			printf "(working set %d%%: the recording run took %s " \
			       "ms; getfattr said \"%s\" %s s after it; before " \
			       "the last measured run: \"%s\")\n", p, rec_ms[p],
			       rec[p], rec_s[p], state["ws " p]

	printf "\n%-28s  %-23s  %-23s  %6s  %s\n", "dd bs=1M of memory.bin",
	       "----- snapfs GB/s -----", "----- plain GB/s ------", "snapfs",
	       "target"
	printf "%-28s  %7s %7s %7s  %7s %7s %7s  %6s\n", "(no working set)",
	       "median", "min", "max", "median", "min", "max", "/plain"
	seqrow("cold", 1, 1.0)
	seqrow("warm", 2, 0.8)
	printf "(drop_caches empties this machine'"'"'s page cache, not a VM " \
	       "host'"'"'s: under a VM a cold read may come from the host'"'"'s " \
	       "memory; see min and max)\n"
	for (i = 1; i <= nnotes; i++)
		print "restore: " notes[i]
	if (failed)
		printf "restore: %d failures (%s)\n", failed, logfile
}' -v mibsz=$MIB -v seed=$SEED -v procs=$PROCS
[ "$failed" -eq 0 ] || exit 1
exit 0
