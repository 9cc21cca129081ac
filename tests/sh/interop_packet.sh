#!/usr/bin/env bash
# Issue 16 point 2 interop: ustcp as a host on a veth through AF_PACKET
# (src/link/packet.c: TPACKET_V3 receive ring; src/link/eth.c: ARP), against
# the Linux kernel in a second namespace at the other end of the veth.
#   - the kernel resolves ustcp by ARP and pings it; curl downloads 3 MB
#     byte-exact (the kernel's TCP checksums left for offload on the veth are
#     taken as the ring reports them)
#   - ustcp as the client resolves the kernel and echoes 1 MB byte-exact
#   - tshark on the kernel's end sees the ARP exchanges, no ARP expert warnings
# Needs root, curl, python3, ping, tshark; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init packet curl python3 ping tshark sha256sum
nsb=""
cleanup_b() {
  if [ -n "$nsb" ]; then
    ip netns pids "$nsb" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$nsb" 2>/dev/null
  fi
  cleanup
}
trap cleanup_b EXIT
nsb=ustcp-packetb-$$-$RANDOM
ip netns add "$nsb" || skip "cannot create a second namespace"
ip -n "$nsb" link set lo up
nsx ip link add vA type veth peer name vB netns "$nsb" || skip "no veth"
nsx ip link set vA up                  # no address on ustcp's side: the kernel stays out
ip -n "$nsb" addr add 10.10.0.1/24 dev vB
ip -n "$nsb" link set vB up
nsbx() { ip netns exec "$nsb" "$@"; }

www=$tmp/www
mkdir -p "$www"
head -c 3000000 /dev/urandom > "$www/big.bin"
chmod -R a+rX "$www"
ctl=$tmp/ctl.sock

nsbx timeout 120 tshark -q -F pcap -i vB -f arp -w "$tmp/cap.pcap" > "$tmp/tshark.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do grep -q "Capturing" "$tmp/tshark.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5

ustcp_bg serve serve --http "$www" --packet vA --addr 10.10.0.2 --peer 10.10.0.1 --ctl "$ctl"
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }
check "ping 10.10.0.2 (ustcp on AF_PACKET) answers" nsbx ping -c 3 -i 0.2 -W 2 -q 10.10.0.2
nsbx curl -sS --max-time 60 -o "$tmp/got.bin" http://10.10.0.2/big.bin
rc=$?
check "curl 3 MB from ustcp on the veth: exit 0 (got $rc), sha256 matches" \
  bash -c "[ $rc = 0 ] && [ \"\$(sha256sum < '$tmp/got.bin')\" = \"\$(sha256sum < '$www/big.bin')\" ]"
timeout 5 "$U" stat --ctl "$ctl" -s > "$tmp/stat.txt" 2>&1
grep -E "^(link_rx_frames|link_rx_csum_offloaded|eth_rx_arp|eth_tx_arp)" "$tmp/stat.txt"
kill "${PIDS[1]}" 2>/dev/null
sleep 0.5

cat > "$tmp/echo.py" <<'PY'
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('10.10.0.1', 7300)); s.listen(1)
c, _ = s.accept()
while True:
    d = c.recv(65536)
    if not d: break
    c.sendall(d)
c.close()
PY
nsbx timeout 60 python3 "$tmp/echo.py" > /dev/null 2>&1 &
PIDS+=($!)
for i in $(seq 1 50); do nsbx ss -ltn | grep -q ":7300 " && break; sleep 0.1; done
head -c 1000000 /dev/urandom > "$tmp/in.bin"
# stdin arrives after 1.5 s of idling: the stack's clock must be current when the
# data is sent (a stale clock put the retransmission timer in the past)
nsx timeout 30 bash -c "sleep 1.5; cat '$tmp/in.bin'" | \
  nsx timeout 30 "$U" connect 10.10.0.1:7300 --packet vA --addr 10.10.0.3 --no-ctl \
  --pcap "$tmp/client.pcap" > "$tmp/out.bin" 2> "$tmp/connect.err"
rc=$?
cat "$tmp/connect.err"
check "ustcp client on AF_PACKET (it ARPs for the kernel): exit 0 (got $rc), 1 MB echoed byte-exact" \
  bash -c "[ $rc = 0 ] && cmp -s '$tmp/in.bin' '$tmp/out.bin'"
syns=$(tshark -r "$tmp/client.pcap" -Y "ip.src == 10.10.0.3 && tcp.flags.syn == 1" 2>/dev/null | wc -l)
rex=$(tshark -r "$tmp/client.pcap" -Y "ip.src == 10.10.0.3 && tcp.analysis.retransmission" 2>/dev/null | wc -l)
check "the client sent one SYN ($syns) and retransmitted nothing on a loss-free veth ($rex)" \
  bash -c "[ '$syns' = 1 ] && [ '$rex' = 0 ]"
sleep 1
kill "${PIDS[0]}" 2>/dev/null
sleep 1
tshark -r "$tmp/cap.pcap" 2>/dev/null > "$tmp/arp.txt"
cat "$tmp/arp.txt" | head
check "capture: the kernel asked for 10.10.0.2 and ustcp answered" \
  bash -c "grep -q 'Who has 10.10.0.2? Tell 10.10.0.1' '$tmp/arp.txt' && grep -q '10.10.0.2 is at' '$tmp/arp.txt'"
check "capture: ustcp (10.10.0.3) asked for 10.10.0.1 and the kernel answered" \
  bash -c "grep -q 'Who has 10.10.0.1? Tell 10.10.0.3' '$tmp/arp.txt' && grep -q '10.10.0.1 is at' '$tmp/arp.txt'"
tshark -r "$tmp/cap.pcap" -Y "_ws.expert.severity >= warning || _ws.malformed" 2>/dev/null > "$tmp/expert.txt"
check "capture: no ARP expert warnings ($(wc -l < "$tmp/expert.txt") flagged)" [ ! -s "$tmp/expert.txt" ]
finish
