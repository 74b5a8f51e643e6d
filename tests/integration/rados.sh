#!/bin/sh
# The memory store's chunks in Ceph RADOS, on a throwaway single-node
# cluster this script starts (tests/lib/ceph.sh) and stops: test_store's
# cases over snap_backend_rados (SNAP_TEST_RADOS), then one client
# (chunkctl) that puts and reads chunks, loses its OSD (a read fails with
# ETIMEDOUT within a bound, it does not hang) and reads every chunk again
# once the OSD is back; the cluster's start and stop times, and chunk
# reads against the directory backend, as notes. Prints TAP.
#
# Needs ceph-mon, ceph-osd, ceph and rados (sh tools/deps.sh installs
# them; without them the whole script is a loud skip), python3,
# $BUILD/tests/test_store and $BUILD/tests/chunkctl (BUILD defaults to
# build); builds nothing. Run from the top of the tree. The daemons are
# stopped by their pids, and the cluster's directory removed, on exit,
# even when a check fails.
set -u
BUILD=${BUILD:-build}
TEST_STORE=$BUILD/tests/test_store
CHUNKCTL=$BUILD/tests/chunkctl
N=256		# chunks of 64 KiB each client puts and reads
FAIL_MS=20000	# a read without its OSD fails within this (librados: 10 s)

. tests/lib/ceph.sh
if ! why=$(ceph_have); then
	echo "rados.sh: $why: RADOS tests not run" >&2
	echo "1..0 # SKIP $why: RADOS tests not run"
	exit 0
fi
for prog in "$TEST_STORE" "$CHUNKCTL"; do
	if [ ! -x "$prog" ]; then
		echo "1..1"
		echo "not ok 1 - $prog exists (build it first)"
		exit 1
	fi
done

work=$(mktemp -d /tmp/snapfs-rados.XXXXXX) || exit 1
ctl=		# the chunkctl client's pid
cleanup() {
	exec 3>&- 2>/dev/null
	if [ -n "$ctl" ] && kill -0 "$ctl" 2>/dev/null; then
		kill -TERM "$ctl"
		wait "$ctl"
	fi
	ceph_stop || echo "rados.sh: $work is left: a daemon still runs" >&2
	[ -n "$CEPH_DIR" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' HUP INT PIPE TERM

. tests/lib/tap.sh
err=$work/case.log	# what not_ok shows under a failed case

now_ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }
note() { echo "# $*"; }

# ---- the cluster -------------------------------------------------------------

t0=$(now_ms)
if ! ceph_start "$work/ceph" 2>"$err"; then
	not_ok "a single-node cluster starts (memstore OSD, pool $CEPH_POOL)"
	tap_end
fi
ok "a single-node cluster starts (memstore OSD, pool $CEPH_POOL)"
note "cluster start to a working write: $(($(now_ms) - t0)) ms"

# ---- test_store over RADOS ---------------------------------------------------

# Every /rados and /rados+cache case passes, and there are as many of
# each as /mem cases (none was left out for want of a cluster).
SNAP_TEST_RADOS="$CEPH_CONF:$CEPH_POOL" CMOCKA_MESSAGE_OUTPUT=TAP \
	"$TEST_STORE" >"$work/store.tap" 2>&1
rc=$?
nr=$(grep -c '^ok [0-9]* - .*/rados$' "$work/store.tap")
nc=$(grep -c '^ok [0-9]* - .*/rados+cache$' "$work/store.tap")
nm=$(grep -c '^ok [0-9]* - .*/mem$' "$work/store.tap")
grep -E '^not ok|SKIP' "$work/store.tap" >"$err"
if [ "$rc" -eq 0 ] && [ "$nr" -gt 0 ] && [ "$nr" -eq "$nm" ] &&
   [ "$nc" -eq "$nm" ] && [ ! -s "$err" ]; then
	ok "test_store over RADOS: $nr cases passed, and $nc behind the cache tier"
else
	tail -40 "$work/store.tap" >>"$err"
	not_ok "test_store over RADOS: exit $rc, $nr and $nc (cache) of $nm cases passed"
fi

# ---- one client through an OSD's stop and return -----------------------------

mkfifo "$work/in" || exit 1
"$CHUNKCTL" rados "$CEPH_CONF" "$CEPH_POOL" "rados-sh.$$" \
	<"$work/in" >"$work/out" 2>"$work/ctl.err" &
ctl=$!
exec 3>"$work/in"
asked=0

# Send command $1 to the client and wait (at most $2 s) for its answer,
# in $ans; fails when none comes.
ask() {
	echo "$1" >&3
	asked=$((asked + 1))
	_i=0
	while [ "$(wc -l <"$work/out")" -lt "$asked" ]; do
		_i=$((_i + 1))
		if [ "$_i" -gt $(($2 * 10)) ] || ! kill -0 "$ctl" 2>/dev/null; then
			ans="no answer to '$1' in $2 s"
			cat "$work/ctl.err" >"$err"
			return 1
		fi
		sleep 0.1
	done
	ans=$(sed -n "${asked}p" "$work/out")
}

# "ok CMD N P50 MAX" from $ans: its median in $p50.
answered_ok() {
	set -- $ans
	[ "$1" = ok ] || { echo "$ans" >"$err"; return 1; }
	p50=$4
}

ask "put $N" 60 && answered_ok
r=$?
check "$N chunks put through librados" '[ $r -eq 0 ]'
ask "get $N" 60 && answered_ok
r=$?
check "$N chunks read back, byte for byte" '[ $r -eq 0 ]'
rados_get_us=${p50:-0}

t0=$(now_ms)
ceph_osd_stop 2>"$err"
r=$?
check "the OSD stops (and the osdmap says so)" '[ $r -eq 0 ]'
note "OSD stop: $(($(now_ms) - t0)) ms"

# Without an OSD a read must fail, not hang: librados's op timeout.
if ask "get 1" 60; then
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

t0=$(now_ms)
ceph_osd_start 2>"$err"
r=$?
check "the OSD starts again" '[ $r -eq 0 ]'
note "OSD restart to up: $(($(now_ms) - t0)) ms"
t0=$(now_ms)
ask "get $N" 60 && answered_ok
r=$?
check "the same client reads all $N chunks again once the OSD is back" '[ $r -eq 0 ]'
note "first full read after the OSD's return: $(($(now_ms) - t0)) ms"

ask "empty" 60
check "the client removes its chunks" '[ "$ans" = "ok empty" ]'
echo quit >&3
exec 3>&-
wait "$ctl"
r=$?
check "the client exits 0" '[ $r -eq 0 ]'
ctl=

# ---- the directory backend, same chunks, same run ----------------------------

mkdir "$work/chunks"
printf 'put %s\nget %s\nquit\n' "$N" "$N" |
	"$CHUNKCTL" dir "$work/chunks" >"$work/dir.out" 2>"$err"
ans=$(sed -n 2p "$work/dir.out")
answered_ok && dir_get_us=$p50
check "the directory backend reads the same chunks back" '[ -n "${dir_get_us:-}" ]'
if [ -n "${dir_get_us:-}" ] && [ "$dir_get_us" -gt 0 ]; then
	note "64 KiB chunk read, p50: RADOS $rados_get_us us, directory" \
	     "$dir_get_us us ($(echo "$rados_get_us $dir_get_us" |
		awk '{ printf "%.1f", $1 / $2 }')x)"
fi

# ---- stop ----------------------------------------------------------------------

mon=$CEPH_MON_PID osd=$CEPH_OSD_PID dir=$CEPH_DIR
t0=$(now_ms)
ceph_stop 2>"$err"
r=$?
check "the cluster stops: no daemon left, its directory removed" \
	'[ $r -eq 0 ] && ! kill -0 "$mon" 2>/dev/null && ! kill -0 "$osd" 2>/dev/null && [ ! -e "$dir" ]'
note "cluster stop: $(($(now_ms) - t0)) ms"
tap_end
