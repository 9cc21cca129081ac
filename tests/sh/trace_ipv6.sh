#!/usr/bin/env bash
# Issue 16 point 4: `ustcp trace` on IPv6 captures, each made by this test.
#   a) ustcp's own --pcap (LINKTYPE_RAW, IPv6 records) of `ustcp serve --http`
#      on a TUN device with fd00::2, fetched by curl -6 from the kernel
#   b) tshark on that TUN device (the kernel's view: raw IP, pcap)
#   c) dumpcap/tshark on "any" (Linux cooked SLL/SLL2, pcapng) of the same
#   d) the kernel alone: python3's HTTP server on [::1] and curl -6 over the
#      namespace's loopback (Ethernet link type, pcapng), as trace_kernel.sh
#      does for IPv4
# In each, `ustcp trace --list` must show the connection with its IPv6 4-tuple
# ([fd00::1]:PORT -> [fd00::2]:80), the diagram must label the handshake and
# the waves and reach ESTABLISHED and TIME_WAIT, and --json must carry the
# IPv6 endpoints. Needs root, /dev/net/tun, curl, python3, tshark.
. "$(dirname "$0")/interop_lib.bash"
interop_init trace6 curl python3 tshark
nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
nsx sysctl -qw net.ipv6.conf.default.disable_ipv6=0 2>/dev/null

www=$tmp/www
mkdir -p "$www"
head -c 300000 /dev/urandom > "$www/f.bin"
chmod -R a+rX "$www"

# Checks one capture: the connection to $2 (an endpoint as --list prints it).
check_trace() {
  local what=$1 cap=$2 server=$3 client_re=$4
  "$U" trace --list "$cap" > "$tmp/list.txt" 2>&1
  cat "$tmp/list.txt"
  local n
  n=$(grep -E "^ *[0-9]+  $client_re -> $server " "$tmp/list.txt" | head -1 | awk "{print \$1}")
  check "$what: --list shows $client_re -> $server" [ -n "$n" ]
  [ -n "$n" ] || return
  "$U" trace --no-color --conn "$n" "$cap" > "$tmp/trace.txt" 2>&1
  local rc=$?
  head -30 "$tmp/trace.txt"
  check "$what: ustcp trace --conn $n (exit $rc)" [ "$rc" = 0 ]
  local w miss=""
  for w in "first handshake" "second handshake" "third handshake" "first wave" "ESTABLISHED" "TIME_WAIT"; do
    grep -q "$w" "$tmp/trace.txt" || miss="$miss '$w'"
  done
  check "$what: handshake, waves, ESTABLISHED, TIME_WAIT labelled${miss:+ (missing$miss)}" [ -z "$miss" ]
  check "$what: the columns are the IPv6 endpoints" grep -q "\[.*\]:[0-9].*\[.*\]:[0-9]" "$tmp/trace.txt"
  "$U" trace --json --conn "$n" "$cap" > "$tmp/trace.json" 2>&1
  check "$what: --json: the connection's server is ${server//\\/}, segments listed" python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["connections"][0]["server"] == sys.argv[2], d["connections"]
assert d["columns"][1] == sys.argv[2], d["columns"]
assert sum(e["kind"] == "segment" for e in d["events"]) >= 10, "segments"
' "$tmp/trace.json" "${server//\\/}"
}

# a-c) ustcp serve over IPv6 on t0, three captures of one download
ctl=$tmp/ctl.sock
ustcp_bg serve serve --http "$www" --tun t0 --addr 10.7.0.2 --peer 10.7.0.1 \
  --addr fd00::2 --peer fd00::1 --ctl "$ctl" --pcap "$tmp/ustcp.pcap"
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }
for i in $(seq 1 50); do
  nsx ip -6 addr show dev t0 2>/dev/null | grep -q "fd00::1/64" &&
    ! nsx ip -6 addr show dev t0 | grep -q tentative && break
  sleep 0.1
done
nsx timeout 60 tshark -q -F pcap -i t0 -f "tcp port 80" -w "$tmp/tun.pcap" > "$tmp/tshark1.log" 2>&1 &
PIDS+=($!)
nsx timeout 60 tshark -q -i any -f "ip6 and tcp port 80" -w "$tmp/any.pcapng" > "$tmp/tshark2.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do
  grep -q "Capturing" "$tmp/tshark1.log" 2>/dev/null && grep -q "Capturing" "$tmp/tshark2.log" 2>/dev/null && break
  sleep 0.1
done
sleep 0.5    # tshark announces before its capture is live
nsx timeout 30 curl -6 -sS -o "$tmp/f.out" "http://[fd00::2]:80/f.bin"
rc=$?
check "curl -6 [fd00::2]: 300 kB byte-exact (exit $rc)" cmp -s "$tmp/f.out" "$www/f.bin"
sleep 1      # the last ACKs of the close
stop_bg      # ustcp flushes its pcap on exit; tshark finishes its files
PIDS=()

check_trace "a) ustcp --pcap" "$tmp/ustcp.pcap" "\[fd00::2\]:80" "\[fd00::1\]:[0-9]+"
check_trace "b) tshark on the TUN" "$tmp/tun.pcap" "\[fd00::2\]:80" "\[fd00::1\]:[0-9]+"
check_trace "c) tshark on any (cooked)" "$tmp/any.pcapng" "\[fd00::2\]:80" "\[fd00::1\]:[0-9]+"
lt=$(tshark -r "$tmp/any.pcapng" -T fields -e frame.encap_type -c 1 2>/dev/null)
echo "c) link encapsulation of the 'any' capture: $lt"

# d) the kernel with itself over the loopback
nsx timeout 60 tshark -q -i lo -f "tcp port 8123" -w "$tmp/lo.pcapng" > "$tmp/tshark3.log" 2>&1 &
PIDS+=($!)
( cd "$www" && exec ip netns exec "$ns" timeout 60 python3 -m http.server 8123 --bind ::1 ) > /dev/null 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do grep -q "Capturing" "$tmp/tshark3.log" 2>/dev/null && break; sleep 0.1; done
wait_listen 8123
sleep 0.5
nsx timeout 30 curl -6 -sS -o "$tmp/f2.out" "http://[::1]:8123/f.bin"
check "curl -6 [::1]:8123 from python3: byte-exact" cmp -s "$tmp/f2.out" "$www/f.bin"
sleep 1
stop_bg
PIDS=()
check_trace "d) kernel over lo" "$tmp/lo.pcapng" "\[::1\]:8123" "\[::1\]:[0-9]+"
finish
