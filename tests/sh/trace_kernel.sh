#!/usr/bin/env bash
# Issue 4: `ustcp trace` on a capture of the Linux kernel's own TCP. Inside a
# network namespace this test creates (and removes on exit), python3's HTTP server
# and curl talk over the namespace's loopback while tshark captures; ustcp trace
# must find the connection and label its handshake and waves. Needs root, ip,
# tshark, curl and python3; otherwise SKIP (exit 77).
set -u
U=${USTCP:?}
for c in ip tshark curl python3; do
  command -v $c > /dev/null || { echo "SKIP: $c not installed"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a network namespace"; exit 77; }
ns=ustcp-trace-$$-$RANDOM
tmp=$(mktemp -d)
cleanup() {
  ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns" || { echo "SKIP: cannot create a network namespace"; exit 77; }
ip -n "$ns" link set lo up
echo hello > "$tmp/index.html"
chmod 755 "$tmp"; chmod 644 "$tmp/index.html"
ip netns exec "$ns" tshark -q -i lo -f "tcp port 8123" -w "$tmp/k.pcapng" > "$tmp/tshark.log" 2>&1 &
( cd "$tmp" && exec ip netns exec "$ns" timeout 60 python3 -m http.server 8123 --bind 127.0.0.1 ) > /dev/null 2>&1 &
# wait for tshark and the server (bounded)
for i in $(seq 1 100); do
  grep -q "Capturing" "$tmp/tshark.log" 2>/dev/null && break
  sleep 0.1
done
for i in $(seq 1 100); do
  ip netns exec "$ns" ss -ltn 2>/dev/null | grep -q ':8123' && break
  sleep 0.1
done
sleep 0.5   # tshark announces before its capture is live
ip netns exec "$ns" curl -s -o "$tmp/got" http://127.0.0.1:8123/index.html || { echo "FAIL: curl"; exit 1; }
sleep 1
ip netns pids "$ns" | xargs -r kill -INT 2>/dev/null
sleep 1
pass=0 fail=0
cmp -s "$tmp/got" "$tmp/index.html" && pass=$((pass+1)) || { fail=$((fail+1)); echo "FAIL: curl body differs"; }
[ -s "$tmp/k.pcapng" ] || { echo "FAIL: no capture"; exit 1; }
"$U" trace --list "$tmp/k.pcapng"
n=$("$U" trace --list "$tmp/k.pcapng" | wc -l)
"$U" trace --no-color --conn "$n" "$tmp/k.pcapng" > "$tmp/trace.txt" || { echo "FAIL: ustcp trace"; exit 1; }
cat "$tmp/trace.txt"
for w in "first handshake" "second handshake" "third handshake" "first wave" ESTABLISHED TIME_WAIT; do
  if grep -q "$w" "$tmp/trace.txt"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: trace lacks '$w'"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
