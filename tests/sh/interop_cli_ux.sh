#!/usr/bin/env bash
# Issue 11, small things a new user trips on:
#   - -vv is accepted as `--help` documents it ("twice: every state change");
#     -vx is still refused with one line
#   - `ustcp stat` against a control socket that accepts but never answers says
#     what happened (timeout, which path) after 5 s, exit 1
#   - `ustcp get -o FILE --progress` draws a progress meter on stderr (total, %,
#     rate) ending at 100%; without --progress and with stderr not a terminal, none
# The get part needs root and /dev/net/tun (interop); the rest runs anywhere.
. "$(dirname "$0")/interop_lib.bash"
U=${USTCP:?USTCP must name the ustcp binary}
PASS=0 FAIL=0

t=$(mktemp -d)
for cmd in serve connect get; do
  "$U" $cmd -vv --frobnicate > /dev/null 2> "$t/e"
  check "ustcp $cmd -vv is accepted (the error names the next option)" grep -q -- "--frobnicate" "$t/e"
done
"$U" get -vx > /dev/null 2> "$t/e"
check "ustcp get -vx is refused in one line" [ "$(wc -l < "$t/e")" = 1 ] && grep -q -- "-vx" "$t/e"

python3 -c "
import socket, os, sys, time
p = sys.argv[1]
s = socket.socket(socket.AF_UNIX); s.bind(p); s.listen(4)
open(p + '.ready', 'w').close()
time.sleep(12)" "$t/wedged.sock" &
wpid=$!
for i in $(seq 1 50); do [ -e "$t/wedged.sock.ready" ] && break; sleep 0.1; done
s0=$(date +%s)
"$U" stat --ctl "$t/wedged.sock" > /dev/null 2> "$t/stat.err"
rc=$?
s1=$(date +%s)
kill $wpid 2>/dev/null; wait $wpid 2>/dev/null
check "ustcp stat on a wedged socket: exit 1 (got $rc)" [ "$rc" = 1 ]
check "... says timeout and the path: $(cat "$t/stat.err")" grep -q "timeout: connected to $t/wedged.sock" "$t/stat.err"
check "... within 4-8 s (took $((s1 - s0)) s)" [ $((s1 - s0)) -ge 4 -a $((s1 - s0)) -le 8 ]
rm -rf "$t"

interop_init cliux python3
mkdir -p "$tmp/www"
head -c 8000000 /dev/urandom > "$tmp/www/big.bin"
chmod -R a+rX "$tmp/www"
( cd "$tmp/www" && exec ip netns exec "$ns" timeout 60 python3 -m http.server 8000 ) > "$tmp/http.log" 2>&1 &
PIDS+=($!)
wait_listen 8000 || exit 1
nsx timeout 60 "$U" get --tun t0 --no-ctl --progress http://10.7.0.1:8000/big.bin -o "$tmp/a.bin" 2> "$tmp/p.err"
rc=$?
check "ustcp get --progress: exit 0 (got $rc)" [ "$rc" = 0 ]
check "... the body is whole" cmp -s "$tmp/a.bin" "$tmp/www/big.bin"
check "... the meter shows the total and ends at 100%: $(tr '\r' '\n' < "$tmp/p.err" | tail -1)" \
  grep -q "of 7.6 MiB (100%)" "$tmp/p.err"
nsx timeout 60 "$U" get --tun t0 --no-ctl http://10.7.0.1:8000/big.bin -o "$tmp/b.bin" 2> "$tmp/q.err"
check "ustcp get -o FILE with stderr not a terminal: no meter" [ ! -s "$tmp/q.err" ]
finish
