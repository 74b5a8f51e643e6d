#!/bin/sh
# check_proto: $BUILD/protolock catches every kind of schema change.
#
# Takes proto/schema.lock, makes mutated copies in a scratch directory (as
# if the schema had changed a field's type, number, label or name, removed
# a field or a message, or grown a field nobody locked) and expects
# `protolock check COPY` to exit 1 naming the change, and 0 on the real
# lock. Builds nothing: run `make build/protolock` (or SAN=1) first.
# Prints TAP; exits non-zero when a case failed.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
PROTOLOCK=$BUILD/protolock
LOCK=proto/schema.lock

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT PIPE TERM
. tests/lib/tap.sh
err=$tmp/out	# what not_ok shows under a failed case
need_built "$PROTOLOCK" "$LOCK"

# copy NAME FROM TO: the lock with line FROM replaced by TO (or deleted
# when TO is empty) into $tmp/NAME; FROM must be a line of the lock.
copy() {
	if ! grep -qxF "$2" "$LOCK"; then
		echo "check_proto: $LOCK has no line \"$2\"" >"$tmp/out"
		return 1
	fi
	awk -v from="$2" -v to="$3" '
		$0 == from { if (to != "") print to; next }
		{ print }' "$LOCK" >"$tmp/$1"
}

# expect DESCRIPTION STATUS TEXT ARGS...: protolock ARGS exits with STATUS
# and prints a line containing TEXT (no text check when TEXT is empty).
expect() {
	desc=$1 want=$2 text=$3
	shift 3
	"$PROTOLOCK" "$@" >"$tmp/out" 2>&1
	rc=$?
	if [ "$rc" -ne "$want" ]; then
		not_ok "$desc" "exit status $rc, $want expected"
	elif [ -n "$text" ] && ! grep -qF -- "$text" "$tmp/out"; then
		not_ok "$desc" "no line with \"$text\""
	else
		ok "$desc"
	fi
}

# case_mutated NAME DESCRIPTION FROM TO TEXT: copy NAME FROM TO, then
# expect check to exit 1 with TEXT.
case_mutated() {
	if copy "$1" "$3" "$4"; then
		expect "$2" 1 "$5" check "$tmp/$1"
	else
		not_ok "$2"
	fi
}

expect "the real lock passes" 0 "" check "$LOCK"
expect "the real lock passes in TAP" 0 "ok 1 - schema matches $LOCK (" \
	check "$LOCK" --tap

case_mutated type "a changed type is refused" \
	"snapfs.state.Regs 3 rcx none uint64" \
	"snapfs.state.Regs 3 rcx none sint64" \
	"check-proto: snapfs.state.Regs field 3 (rcx): type changed from sint64 to uint64"

case_mutated number "a changed number is refused" \
	"snapfs.state.Regs 3 rcx none uint64" \
	"snapfs.state.Regs 40 rcx none uint64" \
	"check-proto: snapfs.state.Regs rcx: number changed from 40 to 3"

case_mutated label "a changed label is refused" \
	"snapfs.state.Sregs 18 interrupt_bitmap repeated uint64" \
	"snapfs.state.Sregs 18 interrupt_bitmap none uint64" \
	"check-proto: snapfs.state.Sregs field 18 (interrupt_bitmap): label changed from none to repeated"

case_mutated name "a renamed field is refused" \
	"snapfs.state.Uart8250 7 scr none uint32" \
	"snapfs.state.Uart8250 7 spr none uint32" \
	"check-proto: snapfs.state.Uart8250 field 7: renamed from spr to scr"

case_mutated message_type "a changed message type is refused" \
	"snapfs.state.Vcpu 2 regs none message:snapfs.state.Regs" \
	"snapfs.state.Vcpu 2 regs none message:snapfs.state.OldRegs" \
	"type changed from message:snapfs.state.OldRegs to message:snapfs.state.Regs"

# A field or message in the lock but not in the schema was removed.
{ cat "$LOCK"; echo "snapfs.manifest.Producer 99 build_host none string"; } \
	>"$tmp/field_removed"
expect "a removed field is refused" 1 \
	"check-proto: snapfs.manifest.Producer field 99 (build_host): removed (fields are never removed)" \
	check "$tmp/field_removed"

{ cat "$LOCK"; echo "snapfs.state.Hpet 1 config none uint64"
  echo "snapfs.state.Hpet 2 counter none uint64"; } >"$tmp/message_removed"
expect "a removed message is refused" 1 \
	"check-proto: snapfs.state.Hpet: message removed (messages are never removed)" \
	check "$tmp/message_removed"

case_mutated new_field "a field missing from the lock fails" \
	"snapfs.state.Vcpu 13 tsc_khz none uint64" "" \
	"check-proto: snapfs.state.Vcpu field 13 (tsc_khz): not in $tmp/new_field yet: run make proto-lock"

expect "a violation in TAP says not ok and exits 1" 1 \
	"# check-proto: snapfs.state.Regs field 3 (rcx): type changed" \
	check "$tmp/type" --tap

# update refuses a lock whose committed fields changed and leaves it alone,
cp "$tmp/type" "$tmp/type.orig"
"$PROTOLOCK" update "$tmp/type" >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && cmp -s "$tmp/type" "$tmp/type.orig"; then
	ok "update refuses a changed field"
else
	not_ok "update refuses a changed field" "exit status $rc"
fi

# and records new fields, giving the real lock back.
"$PROTOLOCK" update "$tmp/new_field" >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && cmp -s "$tmp/new_field" "$LOCK"; then
	ok "update records a new field"
else
	not_ok "update records a new field" "exit status $rc"
fi

# Every message declared in proto/ is in protolock's descriptor table (a
# message without fields would have no line either: give it one).
"$PROTOLOCK" dump >"$tmp/dump" 2>"$tmp/out"
missing=""
for m in $(sed -n 's/^[[:space:]]*message[[:space:]]\{1,\}\([A-Za-z0-9_]\{1,\}\).*/\1/p' \
	   proto/*.proto); do
	grep -q "\\.$m " "$tmp/dump" || missing="$missing $m"
done
if [ -z "$missing" ] && [ -s "$tmp/dump" ]; then
	ok "every message of proto/ is listed"
else
	not_ok "every message of proto/ is listed" "missing:$missing"
fi

tap_end
