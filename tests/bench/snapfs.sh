#!/bin/sh
# snapfs, the FUSE mount, against plain files on the same disk.
#
#   sh tests/bench/snapfs.sh [-n RUNS] [-r READS] [-R]
#
# On this machine (needs root and /dev/fuse), in a new directory under
# $TMPDIR (default /var/tmp), removed at exit: a new store ($BUILD/snapctl
# store init, the default chunk size) mounted with `$BUILD/snapfs STORE
# MNT -f`; a daemon is always stopped by its pid with SIGTERM (SIGKILL
# after 10 s) and its mount checked gone (else umount -l), also on
# failure. The plain reference is IMG, a sparse 1 GiB file of the same
# bytes (pagefill image: random runs of 64 KiB to 4 MiB covering 30% of
# it, holes elsewhere), beside the store on the same disk.
#
#   import  MNT/s gets a mksnap snapshot's manifest.bin and state.bin, and
#           IMG as memory.bin with `dd bs=1M conv=fsync` (one run: time,
#           stored bytes); then cmp checks it, after a remount.
#   seq     `dd if=FILE of=/dev/null bs=1M`: cold (for snapfs a new daemon,
#           so an empty chunk cache and no page cache of the file; then
#           sync and drop_caches for both) and warm (the same read again):
#           GB/s (10^9 bytes/s). The kernel caps a FUSE mount's read-ahead
#           at its default (read_ahead_kb 128); when the disk under
#           TMPDIR has another, one more cold read of snapfs is made with
#           the mount's /sys/class/bdi/.../read_ahead_kb set to the disk's.
#   rand    build/bench/randread (tests/bench/randread.c): READS (default
#           2000) 4 KiB preads at random pages, of any page or of pages
#           holding data only, each page compared with IMG's; cold (new
#           daemon, drop_caches) and warm (the same offsets again):
#           median and p99 microseconds of each run.
#   cp      `cp -r` of MNT/s (1 GiB) and of MNT/big (16 GiB: 4 MiB of
#           random bytes at 0, 4, 8 and 12 GiB, truncated to 16 GiB, with
#           the same manifest.bin and state.bin) into a new name in the
#           mount, one warm-up each, then RUNS + 2 runs (at least 5),
#           alternating, timed by build/bench/runtime (tests/bench/
#           runtime.c: fork of cp to its exit); beside them, cp -r of the
#           mksnap snapshot (1 MiB memory.bin) on TMPDIR, what a process
#           and 3 small files cost. strace -c counts cp's copy_file_range
#           calls once, on the 16 GiB one.
#   space   10 `cp -r` clones of MNT/s, each with 1% of its memory.bin's
#           pages rewritten (build/bench/pagefill dirty: scattered pages
#           of new random bytes, then fsync); `snapctl store stats`'s
#           stored bytes (after an unmount) before and after the clones:
#           (base + what the clones added) / base. The cp clones of the
#           step before add nothing but the 16 GiB snapshot's chunks; the
#           difference does not count them. The rewritten pages alone,
#           10 x 1% of 1 GiB, are 0.33x of this base: no chunk size can
#           get under 1.33x here.
#
# Then, unless -R, in the rig (tests/rig/rig.sh: Debian's kernel under
# QEMU TCG with nested SVM, which has /dev/kvm and /dev/fuse; 2 CPUs,
# 2 GiB): two guests, each snapshotted once into a plain directory (the
# rig's tmpfs) and once into a snapfs mount (its store on the same tmpfs)
# with `snapvm ctl SOCK snapshot`, then restored with `snapvm restore DIR
# --debug` as in snapshot.sh (stamp: ms from the fork to "first KVM_RUN"
# and to the guest's next "tick" line, the first it prints after the
# restore), in three kinds: the plain dir; the mount with no working set
# (STORE/images/*.ws removed, the daemon stopped, so this run records
# one); the mount with the working set that run recorded (the daemon
# pushes it into the page cache while the guest starts). One warm-up each
# and RIG_RUNS (default 10) runs, kinds alternating run by run; before
# each the page cache is dropped, and for the mount the daemon restarted
# (cold chunk cache). The guests:
#   the test guest   256 MiB, 2 vCPUs, touch=16 rate=1000, snapshotted
#                    after its first pass; the tick is its "tick" line.
#   Linux            build/guest/vmlinuz (Debian's) with the guest initrd,
#                    booted as tests/integration/linux_rig.sh boots it
#                    (its command line, noxsave), 256 MiB but 1 vCPU
#                    (SMP Linux guests hang in a rig of 2 CPUs; a boot
#                    not ready in 60 s is made again, once), snapshotted
#                    once it is ready and has printed 3 ticks; the tick
#                    is its init's "tick N" line, every 100 ms, which
#                    goes on after a restore (stamp gives up after 30 s;
#                    the test guest's after 60).
# Rows: median, min and max; ratios of each snapfs kind to the plain dir
# against the target, <= 1.2x for both times. Also given: the working
# set's files and size, the daemon's user.snapfs.reads, fetched and
# prefetched of memory.bin after each snapfs run (when the host has
# getfattr, which the rig is given), and kernel warnings (clocksource)
# of the restored Linux, counted, not failures (a BUG, Call Trace or
# panic is one). About 4 minutes in the rig with RIG_RUNS 10 on an idle
# 2-core machine, 7 at worst (a Linux boot again, 3 stuck restores); a
# restore that fails is "-" and the runs go on, up to 3 failures a
# guest. The rig's console is kept in $BUILD/bench/snapfs-rig.log.
#
# Each figure is the median of RUNS (default 3; -n or BENCH_RUNS) runs,
# with min and max; ratios are of medians. Every run's numbers are in
# $BUILD/bench/snapfs.log ("BENCH ..." lines). About 2 minutes here and
# 4 in the rig on a 2-core machine; 3 GiB free on TMPDIR's disk; the
# cold reads drop the whole machine's page cache (drop_caches) several
# times, which slows whatever else runs.
#
# Variables: BUILD (build), CC (gcc), TMPDIR (/var/tmp), BENCH_RUNS (3),
# RIG_RUNS (10), RIG_TIMEOUT (900), RIG_SMP (2).
#
# Exit status: 0; 1 when a run failed (an I/O error, wrong bytes, a
# daemon that reported an error or did not stop cleanly, the rig); 2 when
# something is missing (make; make guest for the rig part), or not root,
# or no FUSE. Targets missed are not failures: the tables say MISSED.
set -u
bench=snapfs
. tests/bench/lib.sh
OUT=$BUILD/bench
LOG=$OUT/snapfs.log
RIGLOG=$OUT/snapfs-rig.log
RUNS=${BENCH_RUNS:-3}
RIG_RUNS=${RIG_RUNS:-10}
# shellcheck disable=SC2034 # bench_table (lib.sh) reads it
outer=
READS=2000
MIB=1024
BIG_GIB=16
NCLONES=10
rig=1
while getopts n:r:R c; do
	case $c in
	n) RUNS=$OPTARG ;;
	r) READS=$OPTARG ;;
	R) rig=0 ;;
	*) echo "usage: snapfs.sh [-n RUNS] [-r READS] [-R]" >&2; exit 2 ;;
	esac
done
case $RUNS$READS$RIG_RUNS in
*[!0-9]*) echo "snapfs: -n, -r and RIG_RUNS take numbers" >&2; exit 2 ;;
esac
[ "$RUNS" -ge 1 ] && [ "$READS" -ge 1 ] || { echo "snapfs: -n and -r take at least 1" >&2; exit 2; }
CP_RUNS=$((RUNS + 2))
[ $CP_RUNS -lt 5 ] && CP_RUNS=5

die2() { echo "snapfs: $*" >&2; exit 2; }
for f in "$BUILD/snapfs:make" "$BUILD/snapctl:make" \
	 "$BUILD/tests/mksnap:make"; do
	[ -x "${f%%:*}" ] || die2 "${f%%:*} missing (run ${f#*:})"
done
[ "$(id -u)" -eq 0 ] || die2 "needs root (drop_caches, the cold reads)"
[ -c /dev/fuse ] || die2 "no /dev/fuse"
for p in dd cmp cp strace truncate; do
	command -v $p >/dev/null || die2 "$p missing"
done
mkdir -p "$OUT" || exit 2
for p in randread pagefill runtime; do
	"$CC" -std=gnu11 -O2 -D_GNU_SOURCE -Wall -Wextra -Werror \
		-o "$OUT/$p" tests/bench/$p.c || die2 "tests/bench/$p.c did not build"
done

tmp=$(mktemp -d "${TMPDIR:-/var/tmp}/snapfs-bench.XXXXXX") || exit 2
M=$tmp/mnt
IMG=$tmp/img
fspid=
failed=0
cleanup() { bench_unmount; rm -rf "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
note() { echo "BENCH # $*" >>"$LOG"; }
fail() { failed=$((failed + 1)); note "$*"; echo "snapfs: $*" >&2; }
timed() {	# COMMAND...: $us, its microseconds (runtime.c); its status
	"$OUT/runtime" "$@" 2>"$tmp/rt"
	_rc=$?
	us=$(sed -n 's/^runtime: \([0-9]*\)$/\1/p' "$tmp/rt")
	us=${us:--}
	return $_rc
}
stored() {	# the store's stored bytes
	"$BUILD/snapctl" store stats --json "$tmp/store" |
		sed -n 's/^ *"stored_bytes": *\([0-9]*\).*/\1/p'
}

free=$(df -Pk "$tmp" | awk 'NR == 2 { print int($4 / 1024) }')
[ -n "$free" ] && [ "$free" -lt 3072 ] &&
	die2 "$free MiB free on $tmp's disk; about 3072 needed"
fstype=$(df -PT "$tmp" | awk 'NR == 2 { print $2 " (" $1 ")" }')
: >"$LOG"
echo "BENCH host $(nproc) ${TMPDIR:-/var/tmp} $fstype" >>"$LOG"
echo "BENCH kernel $(uname -r)" >>"$LOG"

# ---- the store, the base snapshot -------------------------------------
"$BUILD/snapctl" store init "$tmp/store" >/dev/null || die2 "snapctl store init failed"
"$BUILD/tests/mksnap" "$tmp/small" --mem 1048576 || die2 "mksnap failed"
"$OUT/pagefill" image "$IMG" $MIB 30 1 || die2 "pagefill image failed"
chunk=$("$BUILD/snapctl" store stats --json "$tmp/store" |
	sed -n 's/^ *"chunk_size": *\([0-9]*\).*/\1/p')
echo "BENCH chunk $chunk" >>"$LOG"
mkdir "$M"
bench_mount
mkdir "$M/s" && cp "$tmp/small/manifest.bin" "$tmp/small/state.bin" "$M/s/" ||
	fail "mkdir or cp of the small files into the mount failed"
bench_drop
timed dd if="$IMG" of="$M/s/memory.bin" bs=1M conv=fsync status=none ||
	fail "import: dd: $(grep -v '^runtime:' "$tmp/rt" | tail -1)"
bench_unmount
echo "BENCH import $us $(stored)" >>"$LOG"
bench_mount
# The read-ahead of the mount (the kernel caps FUSE's at its default) and
# of the disk under TMPDIR, for the cold read with the disk's.
bdi() { stat -c '%Hd:%Ld' "$1" 2>/dev/null; }
ra_fuse=$(cat "/sys/class/bdi/$(bdi "$M")/read_ahead_kb" 2>/dev/null)
ra_disk=
for f in "/sys/dev/block/$(bdi "$tmp")/queue/read_ahead_kb" \
	 "/sys/dev/block/$(bdi "$tmp")/../queue/read_ahead_kb"; do
	[ -r "$f" ] && { ra_disk=$(cat "$f"); break; }
done
echo "BENCH ra ${ra_fuse:--} ${ra_disk:--}" >>"$LOG"
[ -n "$ra_fuse" ] && [ "$ra_fuse" = "$ra_disk" ] && ra_disk=
cmp "$IMG" "$M/s/memory.bin" || fail "memory.bin read back differs from its file"

# ---- sequential and random reads --------------------------------------
i=1
while [ $i -le "$RUNS" ]; do
	bench_unmount; bench_drop; bench_mount
	bench_ddread "$M/s/memory.bin" "snapfs cold read, run $i"; c=$g
	bench_ddread "$M/s/memory.bin" "snapfs warm read, run $i"
	echo "BENCH seq snapfs $i $c $g" >>"$LOG"
	if [ -n "$ra_disk" ]; then
		bench_unmount; bench_drop; bench_mount
		echo "$ra_disk" >"/sys/class/bdi/$(bdi "$M")/read_ahead_kb"
		bench_ddread "$M/s/memory.bin" "snapfs cold read, read-ahead, run $i"
		echo "BENCH seq snapfs_ra $i $g -" >>"$LOG"
	fi
	bench_drop
	bench_ddread "$IMG" "plain cold read, run $i"; c=$g
	bench_ddread "$IMG" "plain warm read, run $i"
	echo "BENCH seq plain $i $c $g" >>"$LOG"
	i=$((i + 1))
done
rand_run() {	# KIND FILE WHICH I
	for _m in cold warm; do
		if [ $_m = cold ]; then
			[ "$1" = snapfs ] && bench_unmount
			bench_drop
			[ "$1" = snapfs ] && bench_mount
		fi
		# shellcheck disable=SC2046
		if "$OUT/randread" -n "$READS" -s "$4" -m "$IMG" \
			$([ "$3" = data ] && echo -d) "$2" >"$tmp/rr" 2>"$tmp/rre"; then
			echo "BENCH rand $1 $_m $3 $4 $(cat "$tmp/rr")" >>"$LOG"
		else
			fail "randread $1 $_m $3 run $4: $(tail -1 "$tmp/rre")"
		fi
	done
}
i=1
while [ $i -le "$RUNS" ]; do
	for which in any data; do
		rand_run snapfs "$M/s/memory.bin" $which $i
		rand_run plain "$IMG" $which $i
	done
	i=$((i + 1))
done

# ---- cp -r: 1 GiB and 16 GiB ------------------------------------------
mkdir "$M/big" && cp "$tmp/small/manifest.bin" "$tmp/small/state.bin" "$M/big/" ||
	fail "mkdir or cp into $M/big failed"
k=0
while [ $k -lt 4 ]; do
	dd if=/dev/urandom of="$M/big/memory.bin" bs=1M count=4 \
		seek=$((k * 4096)) conv=notrunc 2>"$tmp/dd" ||
		fail "big: dd: $(tail -1 "$tmp/dd")"
	k=$((k + 1))
done
truncate -s ${BIG_GIB}G "$M/big/memory.bin" && sync "$M/big/memory.bin" ||
	fail "big: truncate or sync failed"
strace -f -c -e trace=copy_file_range -o "$tmp/strace" \
	cp -r "$M/big" "$M/big.strace" || fail "cp -r under strace failed"
echo "BENCH cfr $(awk '$NF == "copy_file_range" { print $4 }' "$tmp/strace")" \
	"$(stat -c %s "$M/big.strace/memory.bin" 2>/dev/null)" >>"$LOG"
i=0
while [ $i -le $CP_RUNS ]; do
	for src in s big; do
		timed cp -r "$M/$src" "$M/$src.cp$i" ||
			fail "cp -r $src, run $i failed"
		echo "BENCH cp $src $i $us" >>"$LOG"
	done
	timed cp -r "$tmp/small" "$tmp/small.cp$i" ||
		fail "cp -r of the small plain snapshot, run $i failed"
	echo "BENCH cp floor $i $us" >>"$LOG"
	i=$((i + 1))
done
cmp "$M/s/memory.bin" "$M/s.cp1/memory.bin" ||
	fail "a cp -r clone's memory.bin differs from its source's"

# ---- stored bytes: 10 clones with 1% rewritten ------------------------
bench_unmount
echo "BENCH space before $(stored)" >>"$LOG"
bench_mount
i=1
while [ $i -le $NCLONES ]; do
	cp -r "$M/s" "$M/k$i" || fail "cp -r s k$i failed"
	timed "$OUT/pagefill" dirty "$M/k$i/memory.bin" 1 $((100 + i)) ||
		fail "pagefill dirty k$i failed"
	echo "BENCH dirty $i $us" >>"$LOG"
	i=$((i + 1))
done
bench_unmount
echo "BENCH space after $(stored)" >>"$LOG"
"$BUILD/snapctl" store stats "$tmp/store" | sed 's/^/BENCH stats /' >>"$LOG"
if [ -s "$tmp/fs.err" ]; then
	fail "the daemon reported:"
	tail -5 "$tmp/fs.err" | sed 's/^/BENCH # /' >>"$LOG"
fi
echo "BENCH failed $failed" >>"$LOG"

bench_table '
function f(v, p) { return v == "-" ? "-" : sprintf("%." p "f", v) }
function mib(b) { return sprintf("%.1f", b / 1048576) }
function yes(ok) { return ok ? "met" : "MISSED" }
function ms(v) { return v == "-" ? "-" : sprintf("%.1f", v / 1000) }
$2 == "host" { nproc = $3; tdir = $4; fst = $5 " " $6 }
$2 == "chunk" { chunk = $3 }
$2 == "ra" { ra_fuse = $3; ra_disk = $4 }
$2 == "import" { imp_s = $3 / 1e6; base = $4 }
$2 == "seq" { val["seq " $3, $4] = 1; val["seq " $3, $4, 1] = $5
	      val["seq " $3, $4, 2] = $6 }
$2 == "rand" { k = "rand " $3 " " $4 " " $5; val[k, $6] = 1
	       val[k, $6, 1] = $8; val[k, $6, 2] = $9 }
$2 == "cp" && $4 > 0 { val["cp " $3, $4] = 1
		       val["cp " $3, $4, 1] = $5 == "-" ? "-" : $5 / 1000 }
$2 == "cfr" { cfr = $3; cfr_size = $4 }
$2 == "space" { space[$3] = $4 }
$2 == "dirty" { val["dirty", $3] = 1
		val["dirty", $3, 1] = $4 == "-" ? "-" : $4 / 1e6 }
$2 == "failed" { failed = $3 }
function seqrow(name, key, c, tg,    sm, sl, sh, r) {
	stats(key, c); sm = med[c]; sl = lo[c]; sh = hi[c]
	stats("seq plain", c); r = ratio(sm, med[c])
	printf "%-26s  %6s %6s %6s  %6s %6s %6s  %6s  %s\n", name, f(sm, 2),
	       f(sl, 2), f(sh, 2), f(med[c], 2), f(lo[c], 2), f(hi[c], 2), r,
	       tg == 1 ? ">= 2 GB/s: " yes(sm != "-" && sm >= 2) : \
	       tg == 2 ? ">= 0.8x plain: " yes(r != "-" && r >= 0.8) : ""
}
END {
	printf "snapfs: %d cores, %s on %s, Linux %s; store chunk size %d " \
	       "KiB, daemon chunk cache 256 MiB (default), mount read_ahead_kb " \
	       "%s (the disk: %s); medians of %d runs\n", nproc, tdir, fst,
	       kernel, chunk / 1024, ra_fuse, ra_disk, runs
	printf "memory.bin: %d MiB, 30%% random (runs of 64 KiB-4 MiB), the " \
	       "rest zero; written through the mount in %.1f s (%.2f GB/s, dd " \
	       "bs=1M conv=fsync), stored %s MiB; plain: the same bytes in a " \
	       "sparse file on the same disk\n\n", mibsz, imp_s,
	       mibsz * 1048576 / imp_s / 1e9, mib(base)
	printf "%-26s  %-20s  %-20s  %6s  %s\n", "sequential read, 1 GiB",
	       "--- snapfs GB/s ---", "--- plain GB/s ----", "snapfs", "target"
	printf "%-26s  %6s %6s %6s  %6s %6s %6s  %6s\n", "dd bs=1M", "median",
	       "min", "max", "median", "min", "max", "/plain"
	seqrow("cold", "seq snapfs", 1, 1)
	if (("seq snapfs_ra", 1) in val)
		seqrow("cold, read_ahead_kb " ra_disk, "seq snapfs_ra", 1, 0)
	seqrow("warm", "seq snapfs", 2, 2)

	printf "\n%-26s  %-15s  %-15s  %-13s\n", sprintf("4 KiB random reads, " \
	       "%d", reads), "---- snapfs ---", "---- plain ----", "snapfs/plain"
	printf "%-26s  %7s %7s  %7s %7s  %6s %6s\n", "preads, microseconds",
	       "median", "p99", "median", "p99", "median", "p99"
	split("cold any,cold data,warm any,warm data", rk, ",")
	for (j = 1; j <= 4; j++) {
		split(rk[j], w, " ")
		stats("rand snapfs " rk[j], 1); a1 = med[1]
		stats("rand snapfs " rk[j], 2); a2 = med[2]
		stats("rand plain " rk[j], 1); b1 = med[1]
		stats("rand plain " rk[j], 2); b2 = med[2]
		printf "%-26s  %7s %7s  %7s %7s  %6s %6s\n",
		       w[1] ", " (w[2] == "any" ? "any page" : "pages with data"),
		       f(a1, 1), f(a2, 1), f(b1, 1), f(b2, 1), ratio(a1, b1),
		       ratio(a2, b2)
	}
	printf "(median and p99 of each run, then the median of those over " \
	       "the runs)\n"

	runs = cp_runs
	printf "\n%-26s  %6s %6s %6s  %6s  %s\n", "cp -r in the mount, ms",
	       "median", "min", "max", "/1 GiB", "target"
	stats("cp s", 1); one = med[1]
	printf "%-26s  %6s %6s %6s  %6s  %s\n", "1 GiB snapshot", f(med[1], 1),
	       f(lo[1], 1), f(hi[1], 1), "", "<= 20 ms: " \
	       yes(med[1] != "-" && med[1] <= 20)
	stats("cp big", 1); r = ratio(med[1], one)
	printf "%-26s  %6s %6s %6s  %6s  %s\n", big " GiB snapshot",
	       f(med[1], 1), f(lo[1], 1), f(hi[1], 1), r,
	       "<= 1.2x 1 GiB: " yes(r != "-" && r <= 1.2)
	stats("cp floor", 1)
	printf "%-26s  %6s %6s %6s\n", "plain 1 MiB snapshot (*)",
	       f(med[1], 1), f(lo[1], 1), f(hi[1], 1)
	printf "(*: cp -r of a plain directory on %s, mksnap'"'"'s 3 files " \
	       "with a 1 MiB memory.bin: what fork, exec and 3 small files " \
	       "cost here)\n", tdir
	printf "(%d runs after a warm-up, fork of cp to its exit; strace -c: " \
	       "cp -r of the %d GiB snapshot made %s copy_file_range calls for " \
	       "its 3 files, its memory.bin copy is %s bytes)\n", runs, big, cfr == "" ? "no" : cfr,
	       cfr_size

	runs = nclones
	stats("dirty", 1)
	added = space["after"] - space["before"]
	r = base > 0 ? (base + added) / base : 0
	printf "\n%-44s  %8s  %6s  %s\n", "stored bytes (snapctl store stats)",
	       "MiB", "x base", "target"
	printf "%-44s  %8s  %6s\n", "base: the 1 GiB memory.bin", mib(base),
	       "1.00"
	printf "%-44s  %8s  %6.2f  %s\n", "base + 10 clones, 1% of pages " \
	       "rewritten", mib(base + added), r, "<= 1.5x: " yes(r <= 1.5)
	low = nclones * int(mibsz * 256 / 100) * 4096
	printf "(each clone added %.1f MiB; the rewritten pages alone are " \
	       "%.1f MiB a clone, %.2fx base for the 11; rewriting 1%% of a " \
	       "clone'"'"'s pages took %.1f s, median)\n",
	       added / nclones / 1048576, low / nclones / 1048576,
	       (base > 0 ? (base + low) / base : 0), med[1]
	for (i = 1; i <= nnotes; i++)
		print "snapfs: " notes[i]
	if (failed)
		printf "snapfs: %d failures (%s)\n", failed, logfile
}' -v reads="$READS" -v mibsz=$MIB -v big=$BIG_GIB -v cp_runs=$CP_RUNS \
	-v nclones=$NCLONES
host_rc=0
[ "$failed" -eq 0 ] || host_rc=1

# ---- in the rig: restore from the mount against a plain directory -----
if [ $rig -eq 0 ]; then
	echo
	echo "snapfs: restore from the mount: not measured (-R)"
	exit $host_rc
fi
rig_skip() {
	echo
	echo "snapfs: restore from the mount: not measured: $*"
	[ $host_rc -ne 0 ] && exit $host_rc
	exit 2
}
for f in "$BUILD/snapvm:make" "$BUILD/guest/testguest.elf:make guest" \
	 "build/guest/vmlinuz:make guest" "$BUILD/guest/initrd.cpio.gz:make guest" \
	 "$RIG:the rig"; do
	[ -f "${f%%:*}" ] || rig_skip "${f%%:*} missing (run ${f#*:})"
done
"$CC" -std=gnu11 -O2 -static -D_GNU_SOURCE -Wall -Wextra -Werror \
	-o "$OUT/stamp" tests/bench/stamp.c || rig_skip "tests/bench/stamp.c did not build"

# The Linux guest's command line, as tests/integration/linux_rig.sh boots
# it in the rig (the reasons are there): no ACPI, PCI, i8042 or CMOS
# probes, warnings and worse on the console, noxsave for the rig's TCG.
LX_CMDLINE="console=ttyS0 loglevel=5 panic=-1 noxsave"

# Inside the rig, in /rig. Prints
#   BENCH restore GUEST KIND I RUN TICK
#                   GUEST tg (the test guest) or lx (Linux); KIND plain,
#                   nows (snapfs, no working set) or ws (snapfs, the one
#                   the nows run before recorded); I = 0: the warm-up
#   BENCH ws GUEST I N BYTES
#                   the working sets the nows run I left: N files, the
#                   largest (memory.bin's) BYTES
#   BENCH boot lx MS
#                   uptime hundredths from Linux's start to its ready line
# "BENCH # " lines saying what went wrong and, last but one, "BENCH failed N".
cat >"$tmp/snapfs_rig.sh" <<RIG
runs=$RIG_RUNS
LX_CMDLINE='$LX_CMDLINE'
RIG
cat >>"$tmp/snapfs_rig.sh" <<'RIG'
echo "BENCH kernel $(uname -r)"
S=/tmp/vm.sock M=/tmp/mnt
# A restored kernel's lines that fail a run, and the warnings that are
# only counted (the rig's slow clock makes the clocksource watchdog talk).
FATAL='BUG|Call Trace|Kernel panic'
COMPLAINTS='WARNING|soft lockup|clocksource|rcu.*stall'
failed=0 fspid=
note() { echo "BENCH # $*"; }
fail() { failed=$((failed + 1)); note "$@"; }
tell() {	# WHAT FILE...: the end of a failed step's output
	_w=$1; shift
	# awk ends the last line, which a killed guest may have left open
	cat "$@" 2>/dev/null | tr -d '\r\033' | tail -4 |
		awk -v w="$_w" '{ print "BENCH # " w ": " $0 }'
}
wait_for() {	# FILE PATTERN COUNT SECONDS
	_n=0
	while [ "$(grep -c "$2" "$1" 2>/dev/null)" -lt "$3" ]; do
		[ $_n -ge $(($4 * 10)) ] && return 1
		grep -q "snapfs-guest FAULT" "$1" && return 1
		sleep 0.1; _n=$((_n + 1))
	done
}
unmount() {
	[ -n "$fspid" ] || return 0
	kill -TERM $fspid 2>/dev/null
	_j=0
	while kill -0 $fspid 2>/dev/null && [ $_j -lt 100 ]; do
		sleep 0.1; _j=$((_j + 1))
	done
	kill -KILL $fspid 2>/dev/null && fail "the daemon ignored SIGTERM"
	wait $fspid 2>/dev/null; fspid=
	grep -q " $M fuse" /proc/mounts && { umount -l $M; fail "mount left"; }
}
mount_fs() {
	./snapfs /tmp/store $M -f 2>>/tmp/fs.err & fspid=$!
	_j=0
	until grep -q " $M fuse" /proc/mounts; do
		[ $_j -ge 300 ] && { fail "snapfs did not mount"; return 1; }
		sleep 0.1; _j=$((_j + 1))
	done
}
uptime_cs() { read -r _up _ </proc/uptime; _f=${_up#*.}; now=$((${_up%.*} * 100 + ${_f#0})); }
# snap NAME PLAIN MDIR: the VM on $S snapshotted into both.
snap() {
	for d in $2 $3; do
		./snapvm ctl $S snapshot $d >/tmp/r 2>&1 ||
			{ fail "$1: snapshot $d failed"; tell "snapshot $d" /tmp/r; }
		echo "BENCH info $1: snapshot $d: $(cat /tmp/r)"
	done
}
quit_vm() {
	./snapvm ctl $S quit >/dev/null 2>&1
	_n=0
	while kill -0 $vm 2>/dev/null && [ $_n -lt 300 ]; do sleep 0.1; _n=$((_n + 1)); done
	kill -KILL $vm 2>/dev/null && note "$1 did not quit, killed"
	wait $vm 2>/dev/null
}
mkdir -p $M
./snapctl store init /tmp/store >/dev/null && mount_fs || {
	tell "snapfs" /tmp/fs.err; echo "BENCH failed 1"; echo "BENCH end"; exit 1; }
echo "BENCH chunk $(./snapctl store stats --json /tmp/store |
	sed -n 's/^ *"chunk_size": *\([0-9]*\).*/\1/p')"

# The test guest, snapshotted once it has made its first pass; Linux once
# it is ready and has ticked 3 times.
tg=0 lx=0
./snapvm run --kernel testguest.elf --mem 256M --cpus 2 --control $S \
	--cmdline "touch=16 rate=1000" </dev/null >/tmp/out 2>/tmp/err &
vm=$!
if wait_for /tmp/out "^snapfs-guest pass 1 " 2 300; then
	f0=$failed; snap "the test guest" /tmp/plain $M/x
	[ $failed -eq $f0 ] && tg=1
else
	fail "the test guest made no first pass"; tell "run" /tmp/err /tmp/out
fi
quit_vm "the test guest"
# Linux in a rig of 2 CPUs now and then stops early in its boot (a UP
# guest too; tests/integration/linux_rig.sh runs it in a rig of 1): a
# boot not ready in 60 s (10 s, usually) is stopped and made again, once.
try=1
while [ $try -le 2 ] && [ $lx -eq 0 ]; do
	uptime_cs; t0=$now
	./snapvm run --kernel vmlinuz --initrd initrd.cpio.gz --mem 256M \
		--cpus 1 --control $S --cmdline "$LX_CMDLINE" \
		</dev/null >/tmp/out 2>/tmp/err &
	vm=$!
	if wait_for /tmp/out "^snapfs-guest ready" 1 60; then
		uptime_cs; echo "BENCH boot lx $((now - t0)) $try"
		if wait_for /tmp/out "^tick " 3 60; then
			f0=$failed; snap "Linux" /tmp/plainlx $M/lx
			[ $failed -eq $f0 ] && lx=1
		else
			fail "Linux made no 3 ticks"; tell "Linux" /tmp/err /tmp/out
		fi
		try=2
	elif [ $try -eq 2 ]; then
		fail "Linux was not ready in 60 s, twice"
		tell "Linux" /tmp/err /tmp/out
	else
		note "Linux was not ready in 60 s, booted again (its last line:" \
		     "$(tr -d '\r' </tmp/out | tail -1))"
	fi
	quit_vm "Linux"
	try=$((try + 1))
done
tr -d '\r' </tmp/out | grep -E "$COMPLAINTS" | head -1 | sed 's/^/BENCH kwarn boot /'

# restores GUEST PLAIN MDIR WARMUP SECONDS: the runs, kinds alternating;
# before each the page cache dropped, and for snapfs the daemon
# restarted, the working sets removed before a nows run (the daemon
# stopped) and kept for the ws run after it. WARMUP: one more pattern for
# the warm-up; SECONDS: stamp's timeout. A restore that fails is "-" and
# the runs go on, up to 3 failures. With getfattr (RIG_PROGS), the
# daemon's counters of memory.bin after each snapfs run:
#   BENCH attrs GUEST KIND I READS FETCHED PREFETCHED
restores() {
	g=$1 pdir=$2 mdir=$3 warm=$4 secs=$5 f0=$failed
	i=0
	while [ $i -le $runs ] && [ $((failed - f0)) -lt 3 ]; do
		for kind in plain nows ws; do
			dir=$pdir
			if [ $kind != plain ]; then
				dir=$mdir
				unmount
			fi
			if [ $kind = nows ]; then
				rm -f /tmp/store/images/*.ws
			elif [ $kind = ws ]; then
				n=0 b=0
				for w in /tmp/store/images/*.ws; do
					[ -f "$w" ] || continue
					n=$((n + 1)); s=$(wc -c <"$w")
					[ "$s" -gt $b ] && b=$s
				done
				echo "BENCH ws $g $i $n $b"
				[ $n -gt 0 ] || fail "$g run $i: no working set recorded"
			fi
			sync; echo 3 >/proc/sys/vm/drop_caches
			[ $kind != plain ] && mount_fs
			extra=
			[ $i -eq 0 ] && extra=$warm
			t=$(./stamp -t $secs -o /tmp/out "first KVM_RUN" "tick " \
				${extra:+"$extra"} -- ./snapvm restore $dir --debug \
				</dev/null 2>/tmp/serr)
			rc=$?
			echo "BENCH restore $g $kind $i $t"
			[ $rc -eq 0 ] || { fail "$g $kind restore run $i failed"
				tell "$g $kind restore run $i" /tmp/serr /tmp/out; }
			tr -d '\r' </tmp/out | grep -v '^snapvm' >/tmp/con
			grep -E "MISMATCH|FAULT|$FATAL" /tmp/con >/tmp/bad && {
				fail "$g $kind restore run $i: the guest reported"
				head -4 /tmp/bad | sed "s/^/BENCH # /"; }
			grep -E "$COMPLAINTS" /tmp/con | head -1 |
				sed "s/^/BENCH kwarn $g $kind $i /"
			if [ $kind != plain ] && [ -x ./getfattr ]; then
				a=
				for x in reads fetched prefetched; do
					v=$(./getfattr --absolute-names --only-values \
						-n user.snapfs.$x $dir/memory.bin 2>/dev/null)
					a="$a ${v:--}"
				done
				echo "BENCH attrs $g $kind $i$a"
			fi
		done
		i=$((i + 1))
	done
}
[ $tg -eq 1 ] && restores tg /tmp/plain $M/x "snapfs-guest pass " 60
[ $lx -eq 1 ] && restores lx /tmp/plainlx $M/lx "" 30
unmount
[ -s /tmp/fs.err ] && { fail "the daemon reported"; tell "snapfs" /tmp/fs.err; }
echo "BENCH failed $failed"
echo "BENCH end"
[ $failed -eq 0 ]
RIG

# getfattr, when here, reads the daemon's counters in the rig (busybox has
# none); the rig brings its shared libraries.
rig_t0=$(date +%s)
RIG_PROGS="$BUILD/snapfs $OUT/stamp $(command -v getfattr)" RIG_TIMEOUT=${RIG_TIMEOUT:-900} \
	sh "$RIG" --smp "$RIG_SMP" --mem 2048 "$tmp/snapfs_rig.sh" \
	build/guest/vmlinuz "$BUILD/guest/initrd.cpio.gz" >"$RIGLOG" 2>&1
rc=$?
rig_secs=$(($(date +%s) - rig_t0))
echo
if ! grep -q '^BENCH end$' "$RIGLOG"; then
	echo "snapfs: restore from the mount: the rig did not finish (status" \
	     "$rc); the end of $RIGLOG:" >&2
	tail -20 "$RIGLOG" >&2
	exit 1
fi
# shellcheck disable=SC2034 # bench_table reads it
outer=$("$QEMU" --version | sed -n 's/.*version \([^ ]*\).*/\1/p')
LOG=$RIGLOG
RUNS=$RIG_RUNS
bench_table '
$1 == "BENCH" && $2 == "restore" {
	k = $3 " " $4
	val[k, $5] = 1
	val[k, $5, 1] = $6 == "" ? "-" : $6
	val[k, $5, 2] = $7 == "" ? "-" : $7
	if (val[k, $5, 2] == "-") bad++
}
$1 == "BENCH" && $2 == "ws" && $4 > 0 { val["ws " $3, $4] = 1
	val["ws " $3, $4, 1] = $5; val["ws " $3, $4, 2] = $6 }
$1 == "BENCH" && $2 == "chunk" { chunk = $3 }
$1 == "BENCH" && $2 == "attrs" && $5 > 0 { k = "attrs " $3 " " $4
	val[k, $5] = 1; val[k, $5, 1] = $6; val[k, $5, 2] = $7
	val[k, $5, 3] = $8 }
$1 == "BENCH" && $2 == "boot" { boot[$3] = $4; boots[$3] = $5 }
$1 == "BENCH" && $2 == "kwarn" {
	g = $3; kw[g]++
	if (g == "boot") sub(/^BENCH kwarn boot /, "")
	else { sub(/^BENCH kwarn [^ ]* [^ ]* [^ ]* /, ""); nkw[g]++ }
	if (!(g in kwline)) kwline[g] = $0
}
$1 == "BENCH" && $2 == "failed" { failed = $3 }
function table(g, title,    k, kind, name, m1, m2, r1, r2) {
	printf "\n%s\n", title
	printf "%-28s  %-20s  %-20s\n", "snapvm restore DIR",
	       "- first KVM_RUN ms -", "--- next tick ms ---"
	printf "%-28s  %6s %6s %6s  %6s %6s %6s\n", "", "median", "min",
	       "max", "median", "min", "max"
	split("plain nows ws", kind, " ")
	name["plain"] = "plain dir (tmpfs)"
	name["nows"] = "snapfs, no working set"
	name["ws"] = "snapfs, working set"
	for (k = 1; k <= 3; k++) {
		stats(g " " kind[k], 1); stats(g " " kind[k], 2)
		m1[k] = med[1]; m2[k] = med[2]
		printf "%-28s  %6s %6s %6s  %6s %6s %6s\n", name[kind[k]],
		       med[1], lo[1], hi[1], med[2], lo[2], hi[2]
	}
	for (k = 2; k <= 3; k++) {
		r1 = ratio(m1[k], m1[1]); r2 = ratio(m2[k], m2[1])
		printf "%-28s  %6s %20s  %6s  target <= 1.2x plain: %s\n",
		       (k == 2 ? "no working set" : "working set") "/plain",
		       r1, "", r2, r1 != "-" && r1 <= 1.2 && r2 != "-" &&
		       r2 <= 1.2 ? "met" : "MISSED"
	}
	stats("ws " g, 1); n = med[1]; stats("ws " g, 2)
	printf "(the working set a no-working-set run recorded: %s files, " \
	       "memory.bin'"'"'s %s bytes, median)\n", n, med[2]
	for (k = 2; k <= 3; k++) {
		stats("attrs " g " " kind[k], 1)
		if (med[1] == "-") continue
		r1 = med[1]; stats("attrs " g " " kind[k], 2)
		r2 = med[2]; stats("attrs " g " " kind[k], 3)
		printf "(%s: the daemon answered %s READs of memory.bin, " \
		       "loaded %s chunks for them and pushed %s, median of " \
		       "user.snapfs.reads, fetched, prefetched)\n",
		       name[kind[k]], r1, r2, med[3]
	}
	if (nkw[g])
		printf "(%d of the %d restores printed a kernel warning, " \
		       "not counted as a failure; the first: %s)\n", nkw[g],
		       3 * (runs + 1), kwline[g]
}
END {
	printf "restore from the snapfs mount in the rig (QEMU %s TCG, %d " \
	       "vCPUs, nested SVM, Linux %s kvm-amd), store and plain dir on " \
	       "its tmpfs, chunk size %s KiB; ms from fork, %d runs after 1 " \
	       "warm-up, kinds alternating, the page cache dropped and the " \
	       "daemon restarted before each\n", outer, smp, kernel,
	       chunk == "" ? "?" : chunk / 1024, runs
	table("tg", "the test guest (256 MiB, 2 vCPUs, touch=16)")
	table("lx", sprintf("Linux (Debian %s + the guest initrd, 256 MiB, 1 " \
	      "vCPU; ready %s s after snapvm run began%s, snapshotted after " \
	      "3 ticks; the tick is its 100 ms \"tick N\" line)", kernel,
	      boot["lx"] == "" ? "?" : sprintf("%.1f", boot["lx"] / 100),
	      boots["lx"] > 1 ? " at its second boot" : ""))
	if ("boot" in kwline)
		printf "(Linux booting warned: %s)\n", kwline["boot"]
	printf "(the rig ran %d s, its boot, both guests'"'"' boots and " \
	       "snapshots and every restore)\n", rigsecs
	for (i = 1; i <= nnotes; i++)
		print "snapfs: " notes[i]
	if (bad || failed)
		printf "snapfs: %d restores not measured, %d failures (rig " \
		       "console: %s)\n", bad, failed, logfile
	exit bad || failed ? 1 : 0
}' -v rigsecs="$rig_secs"
rig_rc=$?
[ $host_rc -ne 0 ] && exit $host_rc
exit $rig_rc
