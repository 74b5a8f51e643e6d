#!/bin/sh
# The Linux guest's agent (tests/guest/agent), both ends on this host: the
# agent serves on a unix socket (serve --unix, which also answers the
# VMM's "CONNECT PORT" handshake) instead of vsock, and the client talks
# to it as it would to a VM's vsock socket. Checked: exec's output, error
# output and status (a signal's too), stdin /dev/null; put and get of a
# binary file with its mode, from stdin and to stdout; the errors of each
# (one line, the exit status, no file left behind); raw bad requests get
# one error frame and the agent goes on; a client that hangs up kills its
# command; commands run side by side; a command's background child does
# not hold the reply; --wait waits for an agent that starts late. Prints TAP.
set -u
BUILD=${BUILD:-build}
AGENT=$BUILD/guest/snapfs-agent
tmp=$(mktemp -d)
err=$tmp/err
spid=
cleanup() {
	[ -n "$spid" ] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
. tests/lib/tap.sh

need_built --skip "the guest agent" "$AGENT"
S=$tmp/agent.sock
A() { "$AGENT" "$@" 2>"$err"; }
x() { A exec --unix "$S" -- "$@"; }
one_line() { [ "$(wc -l <"$err")" -eq 1 ] && grep -q "^snapfs-agent: $1" "$err"; }
serve() {
	"$AGENT" serve --unix "$S" & spid=$!
	"$AGENT" ping --unix "$S" --wait 10 2>"$err"
}
# raw BYTES...: the agent's answer to these bytes (a backslash escape is
# its byte), as python's repr shows it without the quotes ("\n" for a
# newline: a backslash and an n). SHUT=1: our side ends its output after
# them; otherwise it stays open until the agent closes.
raw() {
	python3 - "$S" "$@" <<'PY'
import os, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"".join(a.encode().decode("unicode_escape").encode("latin-1")
                   for a in sys.argv[2:]))
if os.environ.get("SHUT") == "1":
    s.shutdown(socket.SHUT_WR)
got = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    got += c
print(repr(got)[2:-1])
PY
}

check "serve --unix: the agent answers ping" 'serve'
check "ping through the VMM's handshake (--socket: CONNECT 52, OK)" \
	'A ping --socket "$S"'

# ---- exec ------------------------------------------------------------------
out=$(x 'echo out; echo err >&2; exit 3'); rc=$?
check "exec: stdout, stderr apart, the command's status (3)" \
	'[ "$out" = out ] && [ "$rc" -eq 3 ] && [ "$(cat "$err")" = err ]'
out=$(x 'echo "$0" "$#"; cat; echo "[$PWD]"'); rc=$?
check "exec: /bin/sh -c, stdin /dev/null, cwd /" \
	'[ "$rc" -eq 0 ] && [ "$out" = "sh 0
[/]" ]'
x 'kill -9 $$'; rc=$?
check "exec: killed by signal 9 is status 137" '[ "$rc" -eq 137 ]'
out=$(A exec --unix "$S" -- echo a '  b'); rc=$?
check "exec: the words are joined by spaces into one command" \
	'[ "$rc" -eq 0 ] && [ "$out" = "a b" ]'
head -c 3000000 /dev/urandom >"$tmp/big"
x "cat $tmp/big; cat $tmp/big >&2" >"$tmp/big.out"; rc=$?
mv "$err" "$tmp/big.err"
check "exec: 3 MB on stdout and on stderr, byte for byte" \
	'[ "$rc" -eq 0 ] && cmp -s "$tmp/big" "$tmp/big.out" &&
	 cmp -s "$tmp/big" "$tmp/big.err"'
A exec --socket "$S" --port 53 -- true; rc=$?
check "exec: no agent on the port: status 255, one line" \
	'[ "$rc" -eq 255 ] && one_line "exec: .*CONNECT 53: closed"'
A exec --unix "$tmp/none" -- true; rc=$?
check "exec: no socket: status 255, one line" \
	'[ "$rc" -eq 255 ] && one_line "exec: $tmp/none: No such file"'
A exec --unix "$S"; rc=$?
check "exec without a command: status 2, one line" \
	'[ "$rc" -eq 2 ] && one_line "exec: no command"'

# ---- put, get --------------------------------------------------------------
chmod 0751 "$tmp/big"
check "put: a binary file" 'A put --unix "$S" "$tmp/big" "$tmp/put"'
check "put: the same bytes, the same mode (0751)" \
	'cmp -s "$tmp/big" "$tmp/put" && [ "$(stat -c %a "$tmp/put")" = 751 ]'
check "put - --mode 600: from stdin, that mode" \
	'echo from-stdin | A put --unix "$S" --mode 600 - "$tmp/put2" &&
	 [ "$(cat "$tmp/put2")" = from-stdin ] &&
	 [ "$(stat -c %a "$tmp/put2")" = 600 ]'
check "get: into a file, the same bytes" \
	'A get --unix "$S" "$tmp/put" "$tmp/got" && cmp -s "$tmp/big" "$tmp/got"'
check "get: to stdout" '[ "$(A get --unix "$S" "$tmp/put2")" = from-stdin ]'
A put --unix "$S" "$tmp/big" "$tmp/no/dir/x"; rc=$?
check "put into a missing directory: status 1, one line, nothing left" \
	'[ "$rc" -eq 1 ] && one_line "put $tmp/no/dir/x: No such file" &&
	 [ ! -e "$tmp/no" ]'
A get --unix "$S" "$tmp/missing" "$tmp/got2"; rc=$?
check "get of a missing file: status 1, one line, no local file" \
	'[ "$rc" -eq 1 ] && one_line "get $tmp/missing: No such file" &&
	 [ -z "$(ls "$tmp" | grep got2)" ]'
A get --unix "$S" "$tmp"; rc=$?
check "get of a directory: status 1, one line" \
	'[ "$rc" -eq 1 ] && one_line "get $tmp: Is a directory"'
check "no temporary file left in the put directory" \
	'[ -z "$(ls -a "$tmp" | grep -e "\.agent-" -e "\.get-")" ]'
check "sync" 'A sync --unix "$S"'

# ---- bad requests ----------------------------------------------------------
r=$(raw "bogus x\n")
exp='error 33\nbad request: unknown verb "bogus"'
check "an unknown verb: one error frame" '[ "$r" = "$exp" ]'
r=$(raw "exec\n")
exp='error 16\nexec: no command'
check "exec without a command: one error frame" '[ "$r" = "$exp" ]'
r=$(raw "put 9 10 /x\n" "0123456789")
exp='error 28\nput: want put MODE SIZE PATH'
check "put with a bad header: one error frame" '[ "$r" = "$exp" ]'
r=$(SHUT=1 raw "put 644 10 $tmp/short\n" "0123")
exp="put $tmp/short: the body ended after 4 of 10 bytes"
check "put with a short body: one error frame, nothing left" \
	'[ "${r#error *\\n}" = "$exp" ] && [ -z "$(ls "$tmp" | grep short)" ]'
r=$(raw "$(head -c 70000 /dev/zero | tr '\0' x)")
exp='error 41\nbad request: no whole line in 65536 bytes'
check "a line longer than 64 KiB: one error frame" '[ "$r" = "$exp" ]'
r=$(SHUT=1 raw "")
check "no request at all: no answer" '[ -z "$r" ]'
check "the agent still answers after them" 'A ping --unix "$S"'

# ---- connections -----------------------------------------------------------
"$AGENT" exec --unix "$S" -- "sleep 57; echo done" >/dev/null 2>&1 & c=$!
sleep 0.5
kill "$c"; wait "$c" 2>/dev/null
sleep 0.5
check "a client that hangs up: its command is killed" \
	'! pgrep -f "sleep 57" >/dev/null'
t0=$(date +%s%N)
for i in 1 2 3; do
	"$AGENT" exec --unix "$S" -- "sleep 1" & eval "p$i=\$!"
done
wait "$p1" "$p2" "$p3"
ms=$((($(date +%s%N) - t0) / 1000000))
check "three 1 s commands side by side take less than 2.5 s ($ms ms)" \
	'[ "$ms" -lt 2500 ]'
t0=$(date +%s%N)
out=$(x 'sleep 5 & echo started'); rc=$?
ms=$((($(date +%s%N) - t0) / 1000000))
check "a background child does not hold the reply ($ms ms)" \
	'[ "$rc" -eq 0 ] && [ "$out" = started ] && [ "$ms" -lt 2000 ]'
kill "$spid"; wait "$spid" 2>/dev/null; spid=
(sleep 1; exec "$AGENT" serve --unix "$S") & spid=$!
check "--wait: retries until an agent that starts late answers" \
	'A exec --socket "$S" --wait 10 -- echo late >/dev/null'
check "usage: unknown command, status 2" \
	'"$AGENT" frob 2>"$err"; [ $? -eq 2 ] && one_line "unknown command frob"'
tap_end
