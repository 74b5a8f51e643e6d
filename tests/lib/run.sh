# A command's outcome, for the tests of a program's output (sourced;
# POSIX sh). The caller sets work, its temporary directory.
#
#   run CMD...          stdout, stderr and exit status of CMD in
#                       $work/out, $work/err and $rc
#   show                both files, indented under "stdout:" and "stderr:"
#   status_is N         $rc is N
#   succeeded           $rc is 0
#   failed_saying RE    $rc is not 0 and stderr matches RE
#   out_has RE, err_has RE
#                       stdout (stderr) matches the extended regex RE
#   err_lines N         stderr has N lines
#   out_empty, err_empty
#   flip_byte FILE OFF  invert byte OFF of FILE in place, and check it
#
# Each check that fails says why and shows both files, and returns 1.

run() {
	"$@" >"$work/out" 2>"$work/err"
	rc=$?
}

show() {
	echo "stdout:"
	sed 's/^/  /' "$work/out"
	echo "stderr:"
	sed 's/^/  /' "$work/err"
}

status_is() {
	[ "$rc" -eq "$1" ] && return 0
	echo "exit status $rc, expected $1"
	show
	return 1
}

succeeded() { status_is 0; }

failed_saying() {
	if [ "$rc" -eq 0 ]; then
		echo "succeeded, expected a failure saying /$1/"
		show
		return 1
	fi
	grep -Eq -- "$1" "$work/err" && return 0
	echo "failed with status $rc, but stderr does not match /$1/"
	show
	return 1
}

out_has() {
	grep -Eq -- "$1" "$work/out" && return 0
	echo "stdout does not match /$1/"
	show
	return 1
}

err_has() {
	grep -Eq -- "$1" "$work/err" && return 0
	echo "stderr does not match /$1/"
	show
	return 1
}

err_lines() {
	lines=$(wc -l <"$work/err")
	[ "$lines" -eq "$1" ] && return 0
	echo "$lines lines on stderr, expected $1"
	show
	return 1
}

out_empty() {
	[ ! -s "$work/out" ] && return 0
	echo "stdout is not empty"
	show
	return 1
}

err_empty() {
	[ ! -s "$work/err" ] && return 0
	echo "stderr is not empty"
	show
	return 1
}

flip_byte() {
	old=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	if [ -z "$old" ]; then
		echo "$1: no byte at offset $2"
		return 1
	fi
	# shellcheck disable=SC2059	# the octal escape is the point
	printf "\\$(printf '%03o' $((old ^ 255)))" |
		dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
	new=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	if [ "$new" -ne $((old ^ 255)) ]; then
		echo "$1: byte $2 is $new after flipping $old"
		return 1
	fi
}
