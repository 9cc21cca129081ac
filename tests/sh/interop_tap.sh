#!/usr/bin/env bash
# Issue 16 point 2 interop: ustcp as a host on an Ethernet link (a TAP device,
# src/link/eth.c), against the Linux kernel in a network namespace.
#   - ARP both ways (RFC 826): the kernel resolves ustcp (ping, curl), ustcp
#     resolves the kernel (its own connect to a kernel server); `ip neigh` holds
#     ustcp's MAC as REACHABLE; ustcp announced itself with a gratuitous ARP
#   - curl downloads 5 MB byte-exact; a ustcp client echoes 1 MB through a
#     kernel server (python3) byte-exact
#   - frames ustcp must drop (VLAN-tagged, another host's MAC, IPv6, unknown
#     type, too short) sent raw from the kernel side (AF_PACKET): each counted
#     in `ustcp stat`, the stack still serving
#   - tshark on the kernel's side: ARP requests and replies both ways and the
#     announcement seen, no ARP expert warnings, nothing malformed
# Needs root, /dev/net/tun, curl, python3, ping, tshark; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init tap curl python3 ping tshark sha256sum

www=$tmp/www
mkdir -p "$www"
head -c 5000000 /dev/urandom > "$www/big.bin"
chmod -R a+rX "$www"
ctl=$tmp/ctl.sock

nsx timeout 120 tshark -q -F pcap -i any -f "arp or tcp or icmp" -w "$tmp/cap.pcap" > "$tmp/tshark.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do grep -q "Capturing" "$tmp/tshark.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5

ustcp_bg serve serve --http "$www" --tap tp0 --addr 10.9.0.2 --peer 10.9.0.1 --ctl "$ctl"
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }

check "ping 10.9.0.2 over the TAP link answers" nsx ping -c 3 -i 0.2 -W 2 -q 10.9.0.2
nsx curl -sS --max-time 60 -o "$tmp/got.bin" http://10.9.0.2/big.bin
rc=$?
check "curl 5 MB over Ethernet: exit 0 (got $rc), sha256 matches" \
  bash -c "[ $rc = 0 ] && [ \"\$(sha256sum < '$tmp/got.bin')\" = \"\$(sha256sum < '$www/big.bin')\" ]"
nsx ip neigh show dev tp0 > "$tmp/neigh.txt"
cat "$tmp/neigh.txt"
check "the kernel's neighbour table has ustcp's address, REACHABLE or STALE" \
  grep -Eq "^10\.9\.0\.2 lladdr [0-9a-f:]{17} (REACHABLE|STALE|DELAY)" "$tmp/neigh.txt"

# ustcp as the client, on a second TAP device: it must resolve the kernel's
# address itself (ARP request from ustcp, reply from the kernel).
cat > "$tmp/echo.py" <<'PY'
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 7201)); s.listen(1)
c, _ = s.accept()
while True:
    d = c.recv(65536)
    if not d: break
    c.sendall(d)
c.close()
PY
nsx timeout 60 python3 "$tmp/echo.py" > /dev/null 2>&1 &
PIDS+=($!)
wait_listen 7201
head -c 1000000 /dev/urandom > "$tmp/in.bin"
nsx timeout 30 "$U" connect 10.9.1.1:7201 --tap tp1 --addr 10.9.1.2 --peer 10.9.1.1 --no-ctl \
  < "$tmp/in.bin" > "$tmp/out.bin" 2> "$tmp/connect.err"
rc=$?
cat "$tmp/connect.err"
check "ustcp client over Ethernet (it ARPs for the kernel): exit 0 (got $rc), 1 MB echoed byte-exact" \
  bash -c "[ $rc = 0 ] && cmp -s '$tmp/in.bin' '$tmp/out.bin'"

# Frames ustcp must drop, sent raw on the kernel's side of tp0. The first
# frame's destination is ustcp's MAC (from the neighbour table).
mac=$(awk '/^10\.9\.0\.2 /{print $3}' "$tmp/neigh.txt")
cat > "$tmp/raw.py" <<PY
import socket, sys
mac = bytes.fromhex("$mac".replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("tp0", 0))
src = s.getsockname()[4]
ip = bytes([0x45, 0, 0, 40]) + bytes(36)
s.send(mac + src + b"\x81\x00" + b"\x00\x01\x08\x00" + ip)      # VLAN-tagged
s.send(bytes.fromhex("020000000099") + src + b"\x08\x00" + ip)   # another host's MAC
s.send(mac + src + b"\x86\xdd" + bytes(60))                      # IPv6
s.send(mac + src + b"\x88\xcc" + bytes(46))                      # LLDP: unknown here
s.send(mac + src + b"\x08\x00" + bytes(10))                      # IPv4, too short
PY
nsx python3 "$tmp/raw.py"
check "ping still answers after the bad frames" nsx ping -c 1 -W 2 -q 10.9.0.2
timeout 5 "$U" stat --ctl "$ctl" -s > "$tmp/stat.txt" 2>&1
grep "^eth_" "$tmp/stat.txt"
for c in rx_vlan rx_not_for_us rx_ipv6 rx_unknown_type rx_short; do
  check "ustcp counted the bad frame: eth_$c >= 1" \
    awk -v k="eth_$c" '$1 == k && $2 >= 1 { ok = 1 } END { exit !ok }' "$tmp/stat.txt"
done
check "ustcp answered ARP requests (eth_tx_arp_replies >= 1) and sent an announcement" \
  awk '$1 == "eth_tx_arp_replies" && $2 >= 1 { a = 1 } $1 == "eth_tx_arp_requests" && $2 >= 1 { b = 1 } END { exit !(a && b) }' "$tmp/stat.txt"

sleep 1
kill "${PIDS[0]}" 2>/dev/null
sleep 1
tshark -r "$tmp/cap.pcap" -Y arp 2>/dev/null > "$tmp/arp.txt"
cat "$tmp/arp.txt" | head -20
check "capture: the kernel asked for 10.9.0.2 and ustcp answered" \
  bash -c "grep -q 'Who has 10.9.0.2? Tell 10.9.0.1' '$tmp/arp.txt' && grep -q '10.9.0.2 is at' '$tmp/arp.txt'"
check "capture: ustcp asked for 10.9.1.1 and the kernel answered" \
  bash -c "grep -q 'Who has 10.9.1.1? Tell 10.9.1.2' '$tmp/arp.txt' && grep -q '10.9.1.1 is at' '$tmp/arp.txt'"
check "capture: ustcp's gratuitous ARP announcement" grep -q "ARP Announcement for 10.9.0.2" "$tmp/arp.txt"
# ARP and Ethernet only: TCP's expert analysis is interop_http's (a capture on
# "any" under load may miss segments, which tshark flags as TCP warnings).
tshark -r "$tmp/cap.pcap" -Y "(arp && _ws.expert.severity >= warning) || _ws.malformed" 2>/dev/null > "$tmp/expert.txt"
cat "$tmp/expert.txt" | head
check "capture: no ARP expert warnings, nothing malformed ($(wc -l < "$tmp/expert.txt") packets flagged)" \
  [ ! -s "$tmp/expert.txt" ]
finish
