#!/bin/sh
# The manual pages (docs/man) and the programs' --help agree: every long
# option one shows, the other shows too (snapvm run, restore and ctl
# against snapvm.1; snapctl's commands and options against snapctl.1;
# snapfs's -o options against snapfs.8); each page renders without a
# warning; --help goes to stdout with status 0; and `make install
# DESTDIR=... PREFIX=/usr` puts the three programs and three pages where
# they belong, the programs runnable from there and the pages readable by
# man(1). Prints TAP.
set -u
BUILD=${BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. tests/lib/tap.sh
err=$tmp/err

need_built --skip "the manual pages" "$BUILD/snapvm" "$BUILD/snapctl" \
	"$BUILD/snapfs"

# The long options in a --help text (stdin), one per line, sorted.
help_opts() { grep -o -- '--[a-z][a-z-]*' | sort -u; }
# The long options in a manual page's source, written \-\-name there.
page_opts() {
	grep -o -- '\\-\\-[a-z]\([a-z]\|\\-\)*' "$1" | sed 's/\\//g' | sort -u
}
# same NAME A B: the two lists are equal; the difference is the diagnostic.
same() {
	if diff "$2" "$3" >"$err"; then ok "$1"; else not_ok "$1"; fi
}

# ---- snapvm ----------------------------------------------------------------
"$BUILD/snapvm" run --help >"$tmp/run" 2>"$err"
check "snapvm run --help: stdout, status 0" '[ $? -eq 0 ] && [ -s "$tmp/run" ] && [ ! -s "$err" ]'
"$BUILD/snapvm" restore --help >"$tmp/restore" 2>"$err"
check "snapvm restore --help: stdout, status 0" '[ $? -eq 0 ] && [ -s "$tmp/restore" ] && [ ! -s "$err" ]'
# snapvm ctl's usage (stderr, status 2) names --parent.
"$BUILD/snapvm" ctl 2>"$tmp/ctl"
cat "$tmp/run" "$tmp/restore" "$tmp/ctl" | help_opts >"$tmp/help"
page_opts docs/man/snapvm.1 >"$tmp/page"
same "snapvm.1 and snapvm's --help name the same options" "$tmp/help" "$tmp/page"
# Every option of run's is explained with its default, or is required.
missing=
for o in $(help_opts <"$tmp/run"); do
	case $o in --help|--debug|--kernel) continue ;; esac
	grep -A2 -- "^  $o" "$tmp/run" | grep -q 'default' || missing="$missing $o"
done
check "snapvm run --help gives each option's default (missing:${missing:- none})" '[ -z "$missing" ]'

# ---- snapctl ---------------------------------------------------------------
"$BUILD/snapctl" --help >"$tmp/snapctl" 2>"$err"
check "snapctl --help: stdout, status 0" '[ $? -eq 0 ] && [ -s "$tmp/snapctl" ] && [ ! -s "$err" ]'
{ help_opts <"$tmp/snapctl"; echo --help; echo --version; } | sort -u >"$tmp/help"
page_opts docs/man/snapctl.1 >"$tmp/page"
same "snapctl.1 and snapctl --help name the same options" "$tmp/help" "$tmp/page"
# The commands: "  inspect [--json] DIR   ..." gives "inspect"; "store gc".
sed -n 's/^  \([a-z][a-z]*\( [a-z][a-z]*\)\?\) .*/\1/p' "$tmp/snapctl" |
	sed 's/ \(DIR\|STORE\)$//; s/ [A-Z].*//' | sort -u >"$tmp/cmds"
: >"$tmp/absent"
while read -r c; do
	grep -Eq "^\.B[IR]? \"?$c[\" ]" docs/man/snapctl.1 || echo "$c" >>"$tmp/absent"
done <"$tmp/cmds"
cp "$tmp/absent" "$err"
check "snapctl.1 explains each of snapctl's $(wc -l <"$tmp/cmds") commands" '[ -s "$tmp/cmds" ] && [ ! -s "$tmp/absent" ]'

# ---- snapfs ----------------------------------------------------------------
"$BUILD/snapfs" --help >"$tmp/snapfs" 2>"$err"
check "snapfs --help: stdout, status 0, none of libfuse's internal knobs" \
	'[ $? -eq 0 ] && [ -s "$tmp/snapfs" ] && ! grep -q clone_fd "$tmp/snapfs"'
grep -o -- '-o [a-z_][a-z_]*' "$tmp/snapfs" | sort -u >"$tmp/help"
grep -o -- '\\-o [a-z_][a-z_]*' docs/man/snapfs.8 | sed 's/\\//g' | sort -u >"$tmp/page"
same "snapfs.8 and snapfs --help name the same -o options" "$tmp/help" "$tmp/page"

# ---- the pages render ------------------------------------------------------
for p in docs/man/*.[18]; do
	groff -man -ww -z -t "$p" >"$err" 2>&1
	check "$(basename "$p") renders without a warning" '[ $? -eq 0 ] && [ ! -s "$err" ]'
done

# ---- make install ----------------------------------------------------------
san=0
[ "$BUILD" = build/san ] && san=1
make -s install SAN=$san DESTDIR="$tmp/root" PREFIX=/usr >"$err" 2>&1
check "make install DESTDIR PREFIX=/usr: status 0" '[ $? -eq 0 ]'
: >"$tmp/absent"
for f in bin/snapvm bin/snapctl bin/snapfs; do
	[ -x "$tmp/root/usr/$f" ] || echo "$f" >>"$tmp/absent"
done
for f in man1/snapvm.1 man1/snapctl.1 man8/snapfs.8; do
	[ -f "$tmp/root/usr/share/man/$f" ] || echo "$f" >>"$tmp/absent"
done
cp "$tmp/absent" "$err"
check "make install: three programs in bin, three pages in share/man" '[ ! -s "$tmp/absent" ]'
v=$("$tmp/root/usr/bin/snapctl" --version 2>"$err")
check "the installed snapctl runs ($v)" 'echo "$v" | grep -q "^snapctl "'
MANPAGER=cat MANWIDTH=80 man -l "$tmp/root/usr/share/man/man8/snapfs.8" >"$tmp/man" 2>"$err"
check "man -l reads the installed snapfs.8" 'grep -q "user.snapfs.gc" "$tmp/man"'
make -s uninstall DESTDIR="$tmp/root" PREFIX=/usr >"$err" 2>&1
left=$(find "$tmp/root" -type f | wc -l)
check "make uninstall removes all six ($left left)" '[ "$left" -eq 0 ]'

tap_end
