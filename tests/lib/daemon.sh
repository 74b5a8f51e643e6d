# Daemons of the FUSE tests (sourced by mount.sh; POSIX sh): alive, ours,
# is_mounted, forget_pid, wait_exit, no_reports, show_derr, rss_kib.
#
# The caller sets work (its temporary directory, named in every daemon's
# arguments), pids (daemons started and not yet waited for) and derr (the
# stderr file of the daemon in question).

# Whether process $1 runs (a zombie does not).
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
	[ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Whether process $1 runs and is one of ours, to signal it: a daemon names
# $work in its arguments (or is still this script, before its exec), so a
# pid the system reused is left alone.
ours() {
	alive "$1" || return 1
	args=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)
	case $args in
	*"$work/"*|"$self") return 0 ;;
	esac
	return 1
}
self=$(tr '\0' ' ' <"/proc/$$/cmdline")

# Whether a FUSE file system is mounted on $1.
is_mounted() {
	awk -v m="$1" '$2 == m && $3 ~ /^fuse/ { f = 1 } END { exit !f }' \
		/proc/self/mounts
}

forget_pid() {
	rest=
	for p in $pids; do
		[ "$p" = "$1" ] || rest="$rest $p"
	done
	pids=$rest
}

# Wait up to $2 seconds (default 30) for daemon $1 to exit; its exit
# status in $rc. Fails when it does not exit.
wait_exit() {
	i=0
	while alive "$1"; do
		i=$((i + 1))
		if [ "$i" -gt $((${2:-30} * 10)) ]; then
			echo "daemon $1 still runs after ${2:-30} s"
			rc=timeout
			return 1
		fi
		sleep 0.1
	done
	wait "$1"
	rc=$?
	forget_pid "$1"
}

# Sanitizer reports in daemon stderr file $1.
no_reports() {
	if grep -Eq 'ERROR: [A-Za-z]*Sanitizer|runtime error' "$1"; then
		echo "sanitizer report in the daemon's stderr ($1):"
		sed 's/^/  /' "$1" | head -60
		return 1
	fi
}

# The end of daemon stderr file $1 (default $derr).
show_derr() {
	_e=${1:-$derr}
	if [ -n "$_e" ] && [ -s "$_e" ]; then
		echo "daemon stderr ($_e):"
		tail -30 "$_e" | sed 's/^/  /'
	fi
}

# Resident KiB of process $1.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
