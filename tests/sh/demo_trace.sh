#!/usr/bin/env bash
# Issue 11: `ustcp trace` infers states from what the peer answered, and prints
# windows scaled.
#   - a SYN answered by RST (nobody listens) leaves the receiver CLOSED, never
#     SYN_RCVD; an unanswered SYN leaves its state blank (unknown)
#   - a simultaneous open ends ESTABLISHED on both sides
#   - win= is in bytes, scaled by the shifts on the SYNs: equal to tshark's
#     tcp.window_size for every segment
# On demo captures, and (root, tshark) on a kernel capture of a connect to a
# port with no listener, the case the issue reported.
set -u
U=${USTCP:?USTCP must name the ustcp binary}
tmp=$(mktemp -d)
ns=""
cleanup() {
  if [ -n "$ns" ]; then
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

refused_ok() {   # trace text: the SYN's receiver is not SYN_RCVD; a reset follows
  ! grep -q SYN_RCVD "$1" && grep -q "reset" "$1" && grep "first handshake" "$1" | head -1 | grep -q "CLOSED"
}
wins_match() {   # pcap: trace --json win == tshark tcp.window_size, frame by frame
  command -v tshark > /dev/null || return 0
  "$U" trace --json "$1" > "$tmp/w.json" || return 1
  tshark -r "$1" -T fields -e tcp.window_size 2> /dev/null > "$tmp/w.tsv"
  python3 - "$tmp/w.json" "$tmp/w.tsv" <<'PY'
import json, sys
segs = [e for e in json.load(open(sys.argv[1]))["events"] if e["kind"] == "segment"]
ts = [int(l) for l in open(sys.argv[2]) if l.strip()]
if [e["win"] for e in segs] != ts:
    print("trace win", [e["win"] for e in segs][:12], "tshark", ts[:12]); sys.exit(1)
PY
}

"$U" demo --scenario refused --pcap "$tmp/r.pcap" > /dev/null
"$U" trace --no-color "$tmp/r.pcap" > "$tmp/r.txt" || bad "trace of refused"
refused_ok "$tmp/r.txt" && ok || { bad "refused: a SYN answered by RST is drawn reaching SYN_RCVD"; cat "$tmp/r.txt"; }

"$U" demo --scenario syn-timeout --pcap "$tmp/s.pcap" > /dev/null
"$U" trace --no-color "$tmp/s.pcap" > "$tmp/s.txt"
! grep -q "SYN_RCVD\|LISTEN" "$tmp/s.txt" && ok || { bad "syn-timeout: unanswered SYNs drawn reaching the server"; head -3 "$tmp/s.txt"; }

"$U" demo --scenario simultaneous-open --pcap "$tmp/o.pcap" > /dev/null
"$U" trace --no-color "$tmp/o.pcap" > "$tmp/o.txt"
grep "second handshake" "$tmp/o.txt" | tail -1 | grep -q "ESTABLISHED .*ESTABLISHED" && ok ||
  { bad "simultaneous open does not end ESTABLISHED on both sides"; cat "$tmp/o.txt"; }

for s in normal data-loss refused; do
  "$U" demo --scenario $s --pcap "$tmp/$s.pcap" > /dev/null
  wins_match "$tmp/$s.pcap" && ok || bad "$s: trace windows differ from tshark's"
done
"$U" trace --no-color "$tmp/normal.pcap" | grep -q "ACK seq=1 ack=1 win=131072 len=0" && ok ||
  bad "trace of normal: the third handshake's window is not 131072 (128 << 10)"

# A kernel capture: curl to a port nobody listens on.
if command -v tshark > /dev/null && command -v curl > /dev/null && [ "$(id -u)" = 0 ] &&
   ns=ustcp-trace-ux-$$-$RANDOM && ip netns add "$ns" 2> /dev/null; then
  ip -n "$ns" link set lo up
  ip netns exec "$ns" tshark -q -i lo -f "tcp port 8124" -w "$tmp/k.pcapng" > "$tmp/tshark.log" 2>&1 &
  for i in $(seq 1 100); do grep -q "Capturing" "$tmp/tshark.log" 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  ip netns exec "$ns" curl -s --max-time 3 http://127.0.0.1:8124/ > /dev/null 2>&1
  sleep 1
  ip netns pids "$ns" | xargs -r kill -INT 2>/dev/null
  sleep 1
  if [ -s "$tmp/k.pcapng" ]; then
    "$U" trace --no-color "$tmp/k.pcapng" > "$tmp/k.txt" || bad "trace of the kernel capture"
    refused_ok "$tmp/k.txt" && ok || { bad "kernel refused connect drawn reaching SYN_RCVD"; cat "$tmp/k.txt"; }
    wins_match "$tmp/k.pcapng" && ok || bad "kernel capture: trace windows differ from tshark's"
  else
    bad "no kernel capture"
  fi
else
  echo "SKIP: kernel capture (needs root, tshark, curl, a network namespace)"
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
