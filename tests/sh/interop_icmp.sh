#!/usr/bin/env bash
# Issue 5 interop: ICMP errors about ustcp's connections, from the Linux kernel.
#   - port unreachable for a SYN (nftables "reject with icmp type
#     port-unreachable"): connect fails at once with ECONNREFUSED (RFC 1122
#     4.2.3.9, Linux's behaviour), no SYN retransmission
#   - fragmentation needed (RFC 1191): the kernel routes ustcp's packets to a
#     second namespace over a route with MTU 1280; its ICMP "fragmentation needed"
#     lowers ustcp's MSS (RFC 5927 checks passed: the quoted 4-tuple and an
#     unacknowledged sequence number) and 3 MB still arrive byte-exact
#   - ping of the stack's address answers, payload echoed; a 4000-byte ping is
#     fragmented by the kernel, reassembled by ustcp, and answered in fragments
# Needs root, /dev/net/tun, python3, tshark, nft, ping; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init icmp python3 tshark nft ping sha256sum
ns2=""
cleanup2() {
  if [ -n "$ns2" ]; then
    ip netns pids "$ns2" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$ns2" 2>/dev/null
  fi
  cleanup
}
trap cleanup2 EXIT

# 1. ICMP port unreachable for our SYN
nsx nft add table inet ustcp_test || skip "nftables not usable in a namespace"
nsx nft 'add chain inet ustcp_test input { type filter hook input priority 0; }'
nsx nft add rule inet ustcp_test input tcp dport 7400 reject with icmp type port-unreachable
t0=$(date +%s%N)
nsx timeout 20 "$U" connect 10.7.0.1:7400 --tun t0 --no-ctl --pcap "$tmp/unreach.pcap" < /dev/null 2> "$tmp/u.err"
rc=$?
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
cat "$tmp/u.err"
check "ICMP port unreachable: connect fails with ECONNREFUSED (exit $rc)" \
  bash -c "[ $rc = 1 ] && grep -q ECONNREFUSED '$tmp/u.err'"
check "ICMP port unreachable: at once (${ms} ms), no SYN retransmission" [ "$ms" -lt 900 ]
tshark -r "$tmp/unreach.pcap" 2>/dev/null > "$tmp/unreach.txt"
cat "$tmp/unreach.txt"
check "capture: one SYN, then ICMP port unreachable" \
  bash -c "[ \$(grep -c '\[SYN\]' '$tmp/unreach.txt') = 1 ] && grep -qi 'port unreachable' '$tmp/unreach.txt'"

# 2. PMTU discovery through a router with a smaller MTU
ns2=ustcp-icmp2-$$-$RANDOM
ip netns add "$ns2" || skip "cannot create a second namespace"
ip -n "$ns2" link set lo up
nsx ip link add vA type veth peer name vB netns "$ns2"
nsx ip addr add 10.8.0.1/24 dev vA
nsx ip link set vA up
ip -n "$ns2" addr add 10.8.0.2/24 dev vB
ip -n "$ns2" link set vB up
# The server's side has MTU 1500 (its MSS option says 1460); only the router's
# route towards it is limited, so the router must say "fragmentation needed".
nsx ip route replace 10.8.0.0/24 dev vA mtu lock 1280
ip -n "$ns2" route add default via 10.8.0.1
nsx sysctl -qw net.ipv4.ip_forward=1
nsx sysctl -qw net.ipv4.conf.all.rp_filter=0
cat > "$tmp/echo.py" <<'PY'
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 7100)); s.listen(4)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
PY
ip netns exec "$ns2" timeout 60 python3 "$tmp/echo.py" > /dev/null 2>&1 &
PIDS+=($!)
for i in $(seq 1 50); do ip netns exec "$ns2" ss -ltn | grep -q ":7100 " && break; sleep 0.1; done
head -c 3000000 /dev/urandom > "$tmp/in.bin"
nsx timeout 30 "$U" connect 10.8.0.2:7100 --tun t0 --no-ctl --pcap "$tmp/pmtu.pcap" \
  < "$tmp/in.bin" > "$tmp/out.bin" 2> "$tmp/p.err"
rc=$?
cat "$tmp/p.err"
check "through a 1280-byte MTU: exit 0 (got $rc), 3 MB echoed byte-exact" \
  bash -c "[ $rc = 0 ] && cmp -s '$tmp/in.bin' '$tmp/out.bin'"
tshark -r "$tmp/pmtu.pcap" -Y "icmp.type == 3 && icmp.code == 4" -T fields -e icmp.mtu 2>/dev/null > "$tmp/fn.txt"
check "ICMP fragmentation needed (MTU $(head -1 "$tmp/fn.txt")) reached ustcp" grep -q 1280 "$tmp/fn.txt"
# after the first ICMP, no TCP segment from ustcp is larger than 1280 bytes
first=$(tshark -r "$tmp/pmtu.pcap" -Y "icmp.type == 3 && icmp.code == 4" -T fields -e frame.number 2>/dev/null | head -1)
big_after=$(tshark -r "$tmp/pmtu.pcap" -Y "frame.number > ${first:-0} && tcp && !icmp && ip.src == 10.7.0.2 && ip.len > 1280" 2>/dev/null | wc -l)
check "after it, every segment fits the 1280-byte path ($big_after larger)" [ "$big_after" = 0 ]

# 3. ping
nsx timeout 20 "$U" serve --discard --tun t0 --no-ctl > "$tmp/serve.log" 2>&1 &
PIDS+=($!)
ok=0
for i in $(seq 1 50); do nsx ping -c 1 -W 1 -q 10.7.0.2 > /dev/null 2>&1 && { ok=1; break; }; sleep 0.1; done
nsx ping -c 3 -i 0.2 -s 1400 -p 75737463 10.7.0.2 > "$tmp/ping.txt" 2>&1
cat "$tmp/ping.txt" | tail -3
check "ping -s 1400 answers, 0% loss" grep -q " 0% packet loss" "$tmp/ping.txt"
# 4. IPv4 fragments both ways (issue 16 point 3): the kernel fragments a 4000-byte
# echo request for the 1500-byte TUN; ustcp reassembles it, and fragments its
# reply, which the kernel reassembles (ping checks the pattern it gets back).
nsx ping -c 3 -i 0.2 -s 4000 -M dont -p 75737463 10.7.0.2 > "$tmp/ping4k.txt" 2>&1
tail -2 "$tmp/ping4k.txt"
check "ping -s 4000 (fragmented both ways) answers, 0% loss" grep -q " 0% packet loss" "$tmp/ping4k.txt"
finish
