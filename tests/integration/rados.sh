#!/bin/sh
# The memory store's chunks in Ceph RADOS, on a throwaway single-node
# cluster this script starts (tests/lib/ceph.sh) and stops: test_store's
# cases over snap_backend_rados (SNAP_TEST_RADOS), bare and behind the
# cache tier; then two clients (chunkctl) on one namespace, a bare and
# one behind a cache tier: a puts chunks and writes an image into a
# memory store over its backend, both read the chunks, the OSD stops
# (a's read fails with ETIMEDOUT within a bound, it does not hang, and
# the store's read with EIO naming image, offset and chunk; b reads
# everything from its cache) and returns (a reads every chunk and the
# store its image again, in the same process). The cluster's start and stop times, and chunk reads against
# the directory backend, as notes. Prints TAP.
#
# Needs ceph-mon, ceph-osd, ceph and rados (sh tools/deps.sh installs
# them; without them the whole script is a loud skip), python3,
# $BUILD/tests/test_store* and $BUILD/tests/chunkctl (BUILD defaults to
# build); builds nothing. Run from the top of the tree. The daemons are
# stopped by their pids, and the cluster's directory removed, on exit,
# even when a check fails.
set -u
BUILD=${BUILD:-build}
# The memory store's unit tests (their cases share tests/lib/store_fx.c).
TEST_STORES="test_store test_store_faults test_store_gc test_store_copy
test_store_patch test_store_limits"
CHUNKCTL=$BUILD/tests/chunkctl
N=256		# chunks of 64 KiB each client puts and reads
FAIL_MS=20000	# a read without its OSD fails within this (librados: 10 s)

. tests/lib/tap.sh
. tests/lib/ceph.sh
why=$(ceph_have) || skip_rest "RADOS tests" "$why"
need_built $(for t in $TEST_STORES; do echo "$BUILD/tests/$t"; done) "$CHUNKCTL"

work=$(mktemp -d /tmp/snapfs-rados.XXXXXX) || exit 1
ctl=		# the chunkctl clients' pids
cleanup() {
	exec 3>&- 4>&- 2>/dev/null
	for p in $ctl; do
		if kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p"
			wait "$p"
		fi
	done
	ceph_stop || echo "rados.sh: $work is left: a daemon still runs" >&2
	[ -n "$CEPH_DIR" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

err=$work/case.log	# what not_ok shows under a failed case

now_ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }
figure() { echo "# $*"; }	# a measured figure, as a TAP comment

# ---- the cluster -------------------------------------------------------------

t0=$(now_ms)
if ! ceph_start "$work/ceph" 2>"$err"; then
	not_ok "a single-node cluster starts (memstore OSD, pool $CEPH_POOL)"
	tap_end
fi
ok "a single-node cluster starts (memstore OSD, pool $CEPH_POOL)"
figure "cluster start to a working write: $(($(now_ms) - t0)) ms"

# ---- test_store over RADOS ---------------------------------------------------

# Every /rados and /rados+cache case passes, and there are as many of
# them as /mem and /cache cases (none was left out for want of a cluster).
rc=0
: >"$work/store.tap"
for t in $TEST_STORES; do
	SNAP_TEST_RADOS="$CEPH_CONF:$CEPH_POOL" CMOCKA_MESSAGE_OUTPUT=TAP \
		"$BUILD/tests/$t" >>"$work/store.tap" 2>&1 || rc=$?
done
nr=$(grep -c '^ok [0-9]* - .*/rados$' "$work/store.tap")
nc=$(grep -c '^ok [0-9]* - .*/rados+cache$' "$work/store.tap")
nm=$(grep -c '^ok [0-9]* - .*/mem$' "$work/store.tap")
nk=$(grep -c '^ok [0-9]* - .*/cache$' "$work/store.tap")
grep -E '^not ok|SKIP' "$work/store.tap" >"$err"
if [ "$rc" -eq 0 ] && [ "$nr" -gt 0 ] && [ "$nr" -eq "$nm" ] &&
   [ "$nc" -eq "$nk" ] && [ ! -s "$err" ]; then
	ok "test_store over RADOS: $nr cases passed, and $nc behind the cache tier"
else
	tail -40 "$work/store.tap" >>"$err"
	not_ok "test_store over RADOS: exit $rc, $nr of $nm and $nc of $nk (cache) cases passed"
fi

# ---- two clients through an OSD's stop and return -----------------------------

# Two hosts on one store: client a bare, client b behind a cache tier
# with room for every chunk; both in the same namespace.
NS=rados-sh.$$
mkfifo "$work/a.in" "$work/b.in" || exit 1
"$CHUNKCTL" rados "$CEPH_CONF" "$CEPH_POOL" "$NS" \
	<"$work/a.in" >"$work/a.out" 2>"$work/a.err" &
ctl_a=$!
"$CHUNKCTL" rados "$CEPH_CONF" "$CEPH_POOL" "$NS" "$work/cache" \
	$((N * 66000 + 4096)) <"$work/b.in" >"$work/b.out" 2>"$work/b.err" &
ctl_b=$!
ctl="$ctl_a $ctl_b"
exec 3>"$work/a.in" 4>"$work/b.in"
asked_a=0 asked_b=0

# ask CLIENT CMD SECONDS: send CMD to client a or b and wait (at most
# SECONDS) for its answer, in $ans; fails when none comes.
ask() {
	case $1 in
	a) echo "$2" >&3; asked_a=$((asked_a + 1)); _n=$asked_a _p=$ctl_a ;;
	b) echo "$2" >&4; asked_b=$((asked_b + 1)); _n=$asked_b _p=$ctl_b ;;
	esac
	_i=0
	while [ "$(wc -l <"$work/$1.out")" -lt "$_n" ]; do
		_i=$((_i + 1))
		if [ "$_i" -gt $(($3 * 10)) ] || ! kill -0 "$_p" 2>/dev/null; then
			ans="no answer from client $1 to '$2' in $3 s"
			{ echo "$ans"; cat "$work/$1.err"; } >"$err"
			return 1
		fi
		sleep 0.1
	done
	ans=$(sed -n "${_n}p" "$work/$1.out")
}

# "ok CMD N P50 MAX" in $ans: its median in $p50.
answered_ok() {
	# shellcheck disable=SC2086	# the answer's words
	set -- $ans
	[ "$1" = ok ] || { echo "$ans" >"$err"; return 1; }
	p50=$4
}

ask a "put $N" 60 && answered_ok
r=$?
check "client a puts $N chunks through librados" '[ $r -eq 0 ]'
ask a "get $N" 60 && answered_ok
r=$?
check "client a reads them back, byte for byte" '[ $r -eq 0 ]'
rados_get_us=${p50:-0}
ask a "store $work/store" 60
check "client a opens a memory store over its RADOS backend" '[ "$ans" = "ok store" ]'
ask a "swrite 64" 60 && answered_ok
r=$?
check "client a writes a 64-chunk image into the store" '[ $r -eq 0 ]'
ask b count 60
check "client b lists the $((N + 64)) chunks of the namespace" \
	'[ "${ans% *}" = "ok count $((N + 64))" ]'
figure "listing $((N + 64)) chunks with their sizes: ${ans##* } ms"
ask b "get $N" 60 && answered_ok
r=$?
check "client b reads them through its cache tier (cold)" '[ $r -eq 0 ]'
cold_us=${p50:-0}
ask b "get $N" 60 && answered_ok
r=$?
check "client b reads them again (warm)" '[ $r -eq 0 ]'
warm_us=${p50:-0}

t0=$(now_ms)
ceph_osd_stop 2>"$err"
r=$?
check "the OSD stops (and the osdmap says so)" '[ $r -eq 0 ]'
figure "OSD stop: $(($(now_ms) - t0)) ms"

# Without an OSD a read must fail, not hang: librados's op timeout.
if ask a "get 1" 60; then
	# shellcheck disable=SC2086
	set -- $ans
	case "$1 $2 $3" in
	"err get ETIMEDOUT"|"err get EIO")
		if [ "$4" -le "$FAIL_MS" ]; then
			ok "a read without the OSD fails with $3 in $4 ms"
		else
			echo "$ans" >"$err"
			not_ok "a read without the OSD fails within $FAIL_MS ms (took $4)"
		fi ;;
	*)	echo "$ans" >"$err"
		not_ok "a read without the OSD fails with ETIMEDOUT or EIO" ;;
	esac
else
	not_ok "a read without the OSD answers at all"
fi
ask b "get $N" 60 && answered_ok
r=$?
check "client b still reads all $N chunks from its cache without the OSD" \
	'[ $r -eq 0 ]'
# The store's read: EIO naming the image, the offset and the chunk.
if ask a sread 60; then
	case $ans in
	"err sread EIO "[0-9]*" image "*": offset "*": chunk "*": Connection timed out")
		ms=${ans#err sread EIO }
		ms=${ms%% *}
		check "the store's read without the OSD is EIO within $FAIL_MS ms ($ms)" \
			'[ "$ms" -le "$FAIL_MS" ]'
		figure "the store said: ${ans#err sread EIO * }" ;;
	*)	echo "$ans" >"$err"
		not_ok "the store's read without the OSD is EIO naming image, offset and chunk" ;;
	esac
else
	not_ok "the store's read without the OSD answers at all"
fi

t0=$(now_ms)
ceph_osd_start 2>"$err"
r=$?
check "the OSD starts again" '[ $r -eq 0 ]'
figure "OSD restart to up: $(($(now_ms) - t0)) ms"
t0=$(now_ms)
ask a "get $N" 60 && answered_ok
r=$?
check "client a reads all $N chunks again once the OSD is back" '[ $r -eq 0 ]'
figure "first full read after the OSD's return: $(($(now_ms) - t0)) ms"
ask a sread 60 && answered_ok
r=$?
check "the same store reads its image whole again" '[ $r -eq 0 ]'

ask a "empty" 60
check "client a removes the chunks" '[ "$ans" = "ok empty" ]'
echo quit >&3
echo quit >&4
exec 3>&- 4>&-
wait "$ctl_a"
ra=$?
wait "$ctl_b"
rb=$?
check "both clients exit 0" '[ "$ra" -eq 0 ] && [ "$rb" -eq 0 ]'
ctl=

# ---- the directory backend, same chunks, same run ----------------------------

mkdir "$work/chunks"
printf 'put %s\nget %s\nquit\n' "$N" "$N" |
	"$CHUNKCTL" dir "$work/chunks" >"$work/dir.out" 2>"$err"
ans=$(sed -n 2p "$work/dir.out")
answered_ok && dir_get_us=$p50
check "the directory backend reads the same chunks back" '[ -n "${dir_get_us:-}" ]'
if [ -n "${dir_get_us:-}" ] && [ "$dir_get_us" -gt 0 ]; then
	figure "64 KiB chunk read, p50 (us): RADOS $rados_get_us, through" \
	     "the cache cold $cold_us, warm $warm_us; directory $dir_get_us;" \
	     "RADOS/directory $(echo "$rados_get_us $dir_get_us" |
		awk '{ printf "%.1f", $1 / $2 }')x, warm cache/directory" \
	     "$(echo "$warm_us $dir_get_us" | awk '{ printf "%.1f", $1 / $2 }')x"
fi

# ---- stop ----------------------------------------------------------------------

mon=$CEPH_MON_PID osd=$CEPH_OSD_PID dir=$CEPH_DIR
t0=$(now_ms)
ceph_stop 2>"$err"
r=$?
check "the cluster stops: no daemon left, its directory removed" \
	'[ $r -eq 0 ] && ! kill -0 "$mon" 2>/dev/null && ! kill -0 "$osd" 2>/dev/null && [ ! -e "$dir" ]'
figure "cluster stop: $(($(now_ms) - t0)) ms"
tap_end
