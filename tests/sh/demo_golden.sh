#!/usr/bin/env bash
# Issue 4: every `ustcp demo` scenario's diagram matches its golden file (virtual
# time makes the output stable); the English and Chinese labels both; the JSON
# parses; the SVG is well-formed XML (xmllint) and renders (rsvg-convert, when
# installed); the pcap decodes cleanly in tshark (when installed) and `ustcp trace`
# of it labels the handshake and the four waves; bad options exit 2 with one line.
# UPDATE_GOLDEN=1 rewrites the golden files (review the diff before committing).
set -u
U=${USTCP:?USTCP must name the ustcp binary}
SRC=${USTCP_SOURCE_DIR:?}
G=$SRC/tests/golden/demo
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

golden() {   # name, golden file, command...
  local name=$1 file=$2; shift 2
  "$@" > "$tmp/out.txt" 2>&1
  local rc=$?
  if [ "$rc" != 0 ]; then bad "$name: exit $rc"; cat "$tmp/out.txt" | tail -5; return; fi
  if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then cp "$tmp/out.txt" "$file"; ok; return; fi
  if [ ! -f "$file" ]; then bad "$name: no golden file $file"; return; fi
  if diff -u "$file" "$tmp/out.txt" > "$tmp/diff.txt"; then ok
  else bad "$name differs from $file"; head -40 "$tmp/diff.txt"; fi
}

scenarios=$("$U" demo --list | awk '{print $1}')
[ -n "$scenarios" ] && ok || bad "demo --list printed nothing"
for s in $scenarios; do
  golden "scenario $s" "$G/$s.txt" "$U" demo --scenario "$s" --no-color
done
golden "default demo (no arguments)" "$G/normal.txt" "$U" demo --no-color
golden "normal --lang zh" "$G/normal.zh.txt" "$U" demo --lang zh --no-color
golden "custom drop + delay" "$G/custom-drop.txt" "$U" demo --drop client:data#1 --delay 20 --no-color
golden "loss with a seed" "$G/loss-seed7.txt" "$U" demo --loss 0.2 --seed 7 --no-color

# Issue 16: --ipv6. Goldens of four scenarios over IPv6 (fd00::1, fd00::2: MSS
# 1440, segments of 1428 with timestamps, the flood from 2001:2::/48, the
# self-connect through the loopback queue); and every scenario's --ipv6 diagram
# is its IPv4 golden once addresses, the MSS option and the ephemeral ports
# (RFC 6056 hashes the address bytes) are written the IPv4 way and runs of
# spaces squeezed (column padding follows the names' lengths). data-loss is
# left out of that comparison: its segment sizes follow the MSS (its golden
# above covers it).
for s in normal self-connect syn-flood data-loss; do
  golden "scenario $s --ipv6" "$G/ipv6/$s.txt" "$U" demo --ipv6 --scenario "$s" --no-color
done
norm() {
  sed -E -e 's/\[fd00::1\]/10.0.0.1/g; s/\[fd00::2\]/10.0.0.2/g; s/fd00::1/10.0.0.1/g; s/fd00::2/10.0.0.2/g' \
         -e 's/mss 1440/mss 1460/g; s/:[45][0-9]{4}\b/:EPHEMERAL/g; s/ +/ /g' "$1"
}
for s in $scenarios; do
  [ "$s" = data-loss ] && continue
  "$U" demo --ipv6 --scenario "$s" --no-color > "$tmp/v6.txt" 2>&1 || { bad "$s --ipv6: exit $?"; continue; }
  grep -q "fd00::" "$tmp/v6.txt" && ! grep -q "10\.0\.0\." "$tmp/v6.txt" || { bad "$s --ipv6 does not name the IPv6 hosts alone"; continue; }
  if diff <(norm "$G/$s.txt") <(norm "$tmp/v6.txt") > "$tmp/diff.txt"; then ok
  else bad "$s --ipv6 differs from its IPv4 golden beyond addresses, MSS and ports"; head -20 "$tmp/diff.txt"; fi
done

# Every scenario's default diagram names every state it passes through.
for st in SYN_SENT SYN_RCVD ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 CLOSE_WAIT LAST_ACK TIME_WAIT CLOSED; do
  grep -q "$st" "$G/normal.txt" && ok || bad "normal diagram lacks $st"
done
for w in "first handshake" "second handshake" "third handshake" "first wave" "second wave" "third wave" "fourth wave"; do
  grep -q "$w" "$G/normal.txt" && ok || bad "normal diagram lacks '$w'"
done
grep -q "第一次握手" "$G/normal.zh.txt" && grep -q "第四次挥手" "$G/normal.zh.txt" && ok || bad "zh labels missing"

# JSON parses and has the segments.
"$U" demo --json > "$tmp/d.json" && python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
segs=[e for e in d["events"] if e["kind"]=="segment"]
assert len(segs)>=10, len(segs)
assert segs[0]["flags"]=="S", segs[0]
' "$tmp/d.json" && ok || bad "demo --json does not parse or lacks segments"

# SVG: well-formed; rendered once when rsvg-convert is there.
"$U" demo --scenario lost-fin1 --svg "$tmp/d.svg" > /dev/null || bad "demo --svg failed"
if command -v xmllint > /dev/null; then
  xmllint --noout "$tmp/d.svg" && ok || bad "SVG is not well-formed XML"
else
  echo "SKIP: xmllint not installed"
fi
if command -v rsvg-convert > /dev/null; then
  rsvg-convert "$tmp/d.svg" -o "$tmp/d.png" && [ -s "$tmp/d.png" ] && ok || bad "rsvg-convert could not render the SVG"
else
  echo "SKIP: rsvg-convert not installed"
fi

# pcap: tshark decodes it; ustcp trace labels it like the demo.
"$U" demo --pcap "$tmp/d.pcap" > /dev/null || bad "demo --pcap failed"
if command -v tshark > /dev/null; then
  n=$(tshark -r "$tmp/d.pcap" -Y tcp 2>/dev/null | wc -l)
  [ "$n" -ge 10 ] && ok || bad "tshark saw $n TCP packets in the demo pcap"
  if tshark -r "$tmp/d.pcap" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE -V 2>&1 |
       grep -Eiq 'malformed|\[(TCP |IP )?checksum.*(bad|incorrect)|Bad checksum'; then
    bad "tshark reports malformed packets or bad checksums in the demo pcap"
  else ok; fi
else
  echo "SKIP: tshark not installed"
fi
"$U" trace --no-color "$tmp/d.pcap" > "$tmp/trace.txt" || bad "ustcp trace failed"
for w in "first handshake" "second handshake" "third handshake" "first wave" "second wave" "third wave" "fourth wave" TIME_WAIT CLOSE_WAIT LAST_ACK; do
  grep -q "$w" "$tmp/trace.txt" && ok || bad "ustcp trace of the demo pcap lacks '$w'"
done

# --ipv6 --pcap: IPv6 records that tshark decodes with good checksums, and
# ustcp trace finds the [fd00::1] -> [fd00::2]:80 connection and its waves.
"$U" demo --ipv6 --pcap "$tmp/d6.pcap" > /dev/null || bad "demo --ipv6 --pcap failed"
if command -v tshark > /dev/null; then
  n=$(tshark -r "$tmp/d6.pcap" -Y "ipv6 && tcp" 2>/dev/null | wc -l)
  [ "$n" -ge 10 ] && ok || bad "tshark saw $n IPv6 TCP packets in the --ipv6 pcap"
  if tshark -r "$tmp/d6.pcap" -o tcp.check_checksum:TRUE -V 2>&1 |
       grep -Eiq 'malformed|\[(TCP )?checksum.*(bad|incorrect)|Bad checksum'; then
    bad "tshark reports malformed packets or bad checksums in the --ipv6 pcap"
  else ok; fi
fi
"$U" trace --list "$tmp/d6.pcap" | grep -q "\[fd00::1\]:[0-9]* -> \[fd00::2\]:80" && ok ||
  bad "ustcp trace --list of the --ipv6 pcap lacks [fd00::1] -> [fd00::2]:80"
"$U" trace --no-color "$tmp/d6.pcap" > "$tmp/trace6.txt" || bad "ustcp trace of the --ipv6 pcap failed"
for w in "first handshake" "fourth wave" TIME_WAIT; do
  grep -q "$w" "$tmp/trace6.txt" && ok || bad "ustcp trace of the --ipv6 pcap lacks '$w'"
done

# Bad input: one line naming the problem, exit 2.
check_bad() {
  "$U" "$@" > "$tmp/o" 2> "$tmp/e"
  local rc=$?
  if [ "$rc" = 2 ] && [ "$(wc -l < "$tmp/e")" = 1 ]; then ok
  else bad "ustcp $* : exit $rc, stderr: $(cat "$tmp/e")"; fi
}
check_bad demo --scenario nope
check_bad demo --drop client:bogus
check_bad demo --drop nohost:fin
check_bad demo --loss 2
check_bad demo --delay abc
check_bad demo --lang fr
check_bad demo --frobnicate
check_bad demo --seed
check_bad trace
check_bad frobnicate
"$U" --help | grep -q "ustcp demo" && ok || bad "ustcp --help lacks demo"
"$U" demo --help | grep -q -- "--scenario" && ok || bad "demo --help lacks --scenario"
"$U" demo --help | grep -q -- "--ipv6" && ok || bad "demo --help lacks --ipv6"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
