# snapfs on FUSE mounts for the tests (sourced after tap.sh; POSIX sh, run
# from the top of the tree). Sources daemon.sh.
#
#   fuse_setup NAME     skips the script loudly without /dev/fuse or
#                       fusermount3; else makes $work (/tmp/NAME.XXXXXX)
#                       with STORE=$work/store, MNT=$work/mnt and
#                       MNT2=$work/mnt2 named (not made), and sets the traps
#                       that run fuse_cleanup
#   snapfs_spawn DIR ARGS...
#                       snapfs $STORE DIR -f ARGS in the background, SIGINT
#                       at its default; its pid in $lastpid, its stderr in
#                       $lasterr; does not wait for the mount
#   mount_snapfs_at DIR ARGS...
#                       snapfs_spawn, then wait up to 10 s for the mount;
#                       fails saying why when the daemon exits first or
#                       does not mount (or DIR is mounted already)
#   mount_snapfs ARGS...
#                       mount_snapfs_at $MNT: the daemon in $pid, $derr
#   exits_clean         the daemon of $MNT, told to go, exits 0, leaves
#                       no mount and no sanitizer report
#   umount_snapfs       fusermount3 -u $MNT, then exits_clean; nothing to
#                       do when nothing is mounted there; a daemon gone
#                       by itself fails, and is cleaned up
#   umount_snapfs_at DIR PID ERR
#                       fusermount3 -u DIR; daemon PID exits 0 with no
#                       sanitizer report in its stderr ERR
#   drop_snapfs         the daemon of $MNT killed and its mount gone,
#                       unchecked (after a failed case)
#   remount ARGS...     umount_snapfs, then mount_snapfs ARGS
#   ensure_mounted      $MNT mounted and answering: the mount there, else
#                       a new one
#   fuse_cleanup        every daemon stopped by its pid (SIGTERM, SIGKILL
#                       after 10 s), $MNT and $MNT2 unmounted, then
#                       cleanup_more (when the script has one), and $work
#                       removed unless something stays mounted there
#
# Uses SNAPFS (the program) and sets pids (daemons started and not yet
# waited for), pid (the daemon serving $MNT), derr (its stderr) and dn
# (daemons started, which numbers $work/daemon.N.err).

. tests/lib/daemon.sh

pids= pid= derr= dn=0

# A libfuse daemon only handles SIGINT when it is not ignored, and sh
# starts background jobs with SIGINT ignored: give the daemon the default.
if env --default-signal=INT true 2>/dev/null; then
	sigdfl="env --default-signal=INT"
else
	sigdfl=
fi

fuse_setup() {
	if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null 2>&1; then
		skip_rest "FUSE tests" "/dev/fuse or fusermount3 missing: FUSE tests not run"
	fi
	work=$(mktemp -d "/tmp/$1.XXXXXX") || exit 1
	STORE=$work/store
	MNT=$work/mnt
	MNT2=$work/mnt2
	trap fuse_cleanup EXIT
	trap 'exit 1' HUP INT PIPE TERM	# PIPE: a reader like head went away
}

snapfs_spawn() {
	_mp=$1
	shift
	dn=$((dn + 1))
	lasterr=$work/daemon.$dn.err
	# shellcheck disable=SC2086	# $sigdfl is a command or nothing
	$sigdfl "$SNAPFS" "$STORE" "$_mp" -f "$@" </dev/null >"$lasterr" 2>&1 &
	lastpid=$!
	pids="$pids $lastpid"
}

mount_snapfs_at() {
	_at=$1
	shift
	if is_mounted "$_at"; then
		echo "$_at is already mounted"
		return 1
	fi
	snapfs_spawn "$_at" "$@"
	if [ "$_at" = "$MNT" ]; then
		pid=$lastpid derr=$lasterr
	fi
	_i=0
	until is_mounted "$_at"; do
		if ! alive "$lastpid"; then
			wait "$lastpid"
			echo "snapfs $* exited with status $? before mounting"
			forget_pid "$lastpid"
			show_derr "$lasterr"
			return 1
		fi
		_i=$((_i + 1))
		if [ "$_i" -gt 100 ]; then
			echo "snapfs $* did not mount in 10 s"
			show_derr "$lasterr"
			return 1
		fi
		sleep 0.1
	done
}

mount_snapfs() { mount_snapfs_at "$MNT" "$@"; }

exits_clean() {
	wait_exit "$pid" || { show_derr; return 1; }
	pid=
	if [ "$rc" -ne 0 ]; then
		echo "snapfs exited with status $rc, expected 0"
		show_derr
		return 1
	fi
	if is_mounted "$MNT"; then
		echo "$MNT is still mounted after the daemon exited"
		return 1
	fi
	no_reports "$derr"
}

umount_snapfs_at() {
	if ! fusermount3 -u "$1"; then
		echo "fusermount3 -u $1 failed"
		return 1
	fi
	wait_exit "$2" || { show_derr "$3"; return 1; }
	if [ "$rc" -ne 0 ]; then
		echo "snapfs exited with status $rc, expected 0"
		show_derr "$3"
		return 1
	fi
	no_reports "$3"
}

drop_snapfs() {
	[ -n "$pid" ] && ours "$pid" && kill -KILL "$pid"
	pid=
	if is_mounted "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	fi
}

umount_snapfs() {
	if [ -z "$pid" ] && ! is_mounted "$MNT"; then
		return 0
	fi
	if [ -z "$pid" ] || ! alive "$pid"; then
		echo "the daemon of $MNT is gone"
		show_derr
		drop_snapfs
		return 1
	fi
	if ! fusermount3 -u "$MNT"; then
		echo "fusermount3 -u $MNT failed"
		show_derr
		return 1
	fi
	exits_clean
}

remount() {
	umount_snapfs || return 1
	mount_snapfs "$@"
}

ensure_mounted() {
	if is_mounted "$MNT" && [ -n "$pid" ] && alive "$pid" &&
	   ls "$MNT" >/dev/null 2>&1; then
		return 0
	fi
	if [ -n "$pid" ] && ours "$pid"; then
		kill -TERM "$pid"
		wait_exit "$pid" 10 || { ours "$pid" && kill -KILL "$pid"; }
	fi
	if is_mounted "$MNT"; then
		fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	fi
	mount_snapfs
}

fuse_cleanup() {
	for _p in $pids; do
		ours "$_p" && kill -TERM "$_p"
	done
	for _p in $pids; do
		_i=0
		while ours "$_p" && [ "$_i" -lt 100 ]; do
			sleep 0.1
			_i=$((_i + 1))
		done
		ours "$_p" && kill -KILL "$_p"
	done
	for _m in "$MNT" "$MNT2"; do
		if is_mounted "$_m"; then
			fusermount3 -u "$_m" 2>/dev/null ||
				fusermount3 -uz "$_m" 2>/dev/null
		fi
	done
	if command -v cleanup_more >/dev/null 2>&1; then
		cleanup_more
	fi
	if is_mounted "$MNT" || is_mounted "$MNT2"; then
		echo "$(basename "$0"): $work is left: still mounted" >&2
	else
		rm -rf "$work"
	fi
}
