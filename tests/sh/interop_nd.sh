#!/usr/bin/env bash
# Issue 16 points 2, 4, 5 interop: ustcp as an IPv6 host on Ethernet, with
# neighbour discovery (RFC 4861) and DAD (RFC 4862) from src/link/nd.c,
# against the Linux kernel.
#   AF_PACKET on a veth (ustcp on vA in one namespace, the kernel on vB in a
#   second one, fd00::/64):
#   - ustcp runs DAD before it serves (its NS from :: for fd00::2 captured);
#     started with the kernel's own address it stops: duplicate detected
#   - the kernel resolves ustcp by NS/NA: ping -6 answers, curl -6 downloads
#     3 MB byte-exact from `ustcp serve --http` on [fd00::2]:80, and the
#     kernel's neighbour table holds ustcp's MAC (vA's) for fd00::2
#   - ustcp resolves the kernel: `ustcp get` from `python3 -m http.server
#     --bind ::` on the kernel side, byte-exact
#   - tshark on vB: NS and NA both ways, no expert warnings on them
#   TAP (the kernel on tp6, fd01::/64; ustcp configures the kernel side):
#   - ping -6, curl -6 byte-exact, `ip -6 neigh` holds ustcp's MAC; and a
#     `ustcp get` over a second TAP device (fd02::/64) from a kernel server
# The kernel runs DAD on vB and on the TAP devices: the test waits for its
# addresses to leave "tentative" (a tentative address neither answers NS nor
# takes packets) rather than using nodad, so DAD is exercised on both sides.
# On vA the kernel's IPv6 is off: ustcp owns vA's MAC there, and the kernel
# would otherwise claim the same link-local address (fe80:: from that MAC).
# Needs root, curl, python3, ping, tshark; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init nd curl python3 ping tshark sha256sum
nsb=""
cleanup_b() {
  if [ -n "$nsb" ]; then
    ip netns pids "$nsb" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$nsb" 2>/dev/null
  fi
  cleanup
}
trap cleanup_b EXIT
nsb=ustcp-ndb-$$-$RANDOM
ip netns add "$nsb" || skip "cannot create a second namespace"
ip -n "$nsb" link set lo up
nsbx() { ip netns exec "$nsb" "$@"; }
for n in nsx nsbx; do
  $n sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
  $n sysctl -qw net.ipv6.conf.default.disable_ipv6=0 2>/dev/null
done
nsx ip link add vA type veth peer name vB netns "$nsb" || skip "no veth"
nsx sysctl -qw net.ipv6.conf.vA.disable_ipv6=1 || skip "cannot turn IPv6 off on vA"
nsx ip link set vA up
nsbx ip -6 addr add fd00::1/64 dev vB
nsbx ip link set vB up
vamac=$(nsx cat /sys/class/net/vA/address)

# Waits (max 5 s) until the kernel's addresses on a device are not tentative.
wait_dad() {
  local x=$1 dev=$2 i
  for i in $(seq 1 50); do
    $x ip -6 addr show dev "$dev" 2>/dev/null | grep -q "inet6" &&
      ! $x ip -6 addr show dev "$dev" | grep -q tentative && return 0
    sleep 0.1
  done
  $x ip -6 addr show dev "$dev"
  return 1
}
check "the kernel's DAD on vB ended (fd00::1 usable)" wait_dad nsbx vB

www=$tmp/www
mkdir -p "$www"
head -c 3000000 /dev/urandom > "$www/big.bin"
chmod -R a+rX "$www"
ctl=$tmp/ctl.sock

nsbx timeout 120 tshark -q -F pcap -i vB -f icmp6 -w "$tmp/cap.pcap" > "$tmp/tshark.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do grep -q "Capturing" "$tmp/tshark.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5

ustcp_bg serve serve --http "$www" --packet vA --addr 10.10.0.2 --addr fd00::2/64 --ctl "$ctl"
serve_pid=${PIDS[-1]}
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }
check "ping -6 fd00::2 (ustcp on AF_PACKET) answers" nsbx ping -6 -c 3 -i 0.2 -W 2 -q fd00::2
nsbx curl -6 -sS --max-time 60 -o "$tmp/got.bin" "http://[fd00::2]:80/big.bin"
rc=$?
check "curl -6 3 MB from [fd00::2]:80 on the veth: exit 0 (got $rc), sha256 matches" \
  bash -c "[ $rc = 0 ] && [ \"\$(sha256sum < '$tmp/got.bin')\" = \"\$(sha256sum < '$www/big.bin')\" ]"
nsbx ip -6 neigh show dev vB > "$tmp/neigh.txt"
cat "$tmp/neigh.txt"
check "the kernel's neighbour table: fd00::2 at ustcp's MAC ($vamac)" \
  grep -Eq "^fd00::2 lladdr $vamac (REACHABLE|STALE|DELAY|PROBE)" "$tmp/neigh.txt"
timeout 5 "$U" stat --ctl "$ctl" -s > "$tmp/stat.txt" 2>&1
grep -E "^eth_(rx_ns|rx_na|tx_ns|tx_na|rx_nd|dad|nd_)" "$tmp/stat.txt"
check "ustcp answered NS (eth_tx_na >= 1), refused none as malformed (eth_rx_nd_bad 0), no DAD conflict" \
  awk '$1 == "eth_tx_na" && $2 >= 1 { a = 1 } $1 == "eth_rx_nd_bad" && $2 == 0 { b = 1 }
       $1 == "eth_dad_duplicates" && $2 == 0 { c = 1 } END { exit !(a && b && c) }' "$tmp/stat.txt"
kill "$serve_pid" 2>/dev/null
wait "$serve_pid" 2>/dev/null

# DAD against the kernel: fd00::1 is the kernel's; ustcp must find it in use
# (the kernel defends it with an NA to all-nodes) and refuse to start
nsx timeout 20 "$U" get "http://[fd00::9]/" --packet vA --addr fd00::1/64 --no-ctl \
  -o /dev/null 2> "$tmp/dup.err"
rc=$?
cat "$tmp/dup.err"
check "ustcp with the kernel's address fd00::1: DAD fails, exit != 0 (got $rc), says so" \
  bash -c "[ $rc != 0 ] && [ $rc != 124 ] && grep -q 'duplicate address detected' '$tmp/dup.err'"

# ustcp as the client: it resolves fd00::1 itself
nsbx timeout 60 python3 -m http.server 8000 --bind :: --directory "$www" > /dev/null 2>&1 &
PIDS+=($!)
for i in $(seq 1 50); do nsbx ss -ltn | grep -q ":8000 " && break; sleep 0.1; done
nsx timeout 30 "$U" get "http://[fd00::1]:8000/big.bin" --packet vA --addr fd00::3/64 --no-ctl \
  -o "$tmp/get.bin" --pcap "$tmp/client.pcap" 2> "$tmp/get.err"
rc=$?
cat "$tmp/get.err"
check "ustcp get from the kernel's http.server --bind :: on AF_PACKET: exit 0 (got $rc), byte-exact" \
  bash -c "[ $rc = 0 ] && cmp -s '$www/big.bin' '$tmp/get.bin'"
sleep 1
kill "${PIDS[0]}" 2>/dev/null
sleep 1
tshark -r "$tmp/cap.pcap" -Y "icmpv6.type == 135 || icmpv6.type == 136" 2>/dev/null > "$tmp/nd.txt"
head -20 "$tmp/nd.txt"
ndcount() { tshark -r "$tmp/cap.pcap" -Y "$1" 2>/dev/null | wc -l; }
check "capture: the kernel defended fd00::1 against ustcp's DAD (NA to ff02::1)" \
  [ "$(ndcount 'icmpv6.type == 136 && ipv6.src == fd00::1 && ipv6.dst == ff02::1')" -ge 1 ]
check "capture: ustcp's DAD NS for fd00::2 (from ::)" \
  [ "$(ndcount 'icmpv6.type == 135 && ipv6.src == :: && icmpv6.nd.ns.target_address == fd00::2')" -ge 1 ]
check "capture: the kernel asked for fd00::2 and ustcp answered (solicited NA from $vamac)" \
  bash -c "[ $(ndcount 'icmpv6.type == 135 && icmpv6.nd.ns.target_address == fd00::2 && ipv6.src == fd00::1') -ge 1 ] &&
           [ $(ndcount "icmpv6.type == 136 && ipv6.src == fd00::2 && icmpv6.nd.na.flag.s == 1 && eth.src == $vamac") -ge 1 ]"
check "capture: ustcp asked for fd00::1 and the kernel answered" \
  bash -c "[ $(ndcount 'icmpv6.type == 135 && icmpv6.nd.ns.target_address == fd00::1 && eth.src == '$vamac) -ge 1 ] &&
           [ $(ndcount 'icmpv6.type == 136 && ipv6.src == fd00::1') -ge 1 ]"
tshark -r "$tmp/cap.pcap" -Y "((icmpv6.type == 135 || icmpv6.type == 136) && _ws.expert.severity >= warning) || _ws.malformed" \
  2>/dev/null > "$tmp/expert.txt"
cat "$tmp/expert.txt" | head
check "capture: no ND expert warnings, nothing malformed ($(wc -l < "$tmp/expert.txt") flagged)" \
  [ ! -s "$tmp/expert.txt" ]

# ---- TAP: ustcp configures the kernel side (fd01::1/64) ----
ctl2=$tmp/ctl2.sock
ustcp_bg serve2 serve --http "$www" --tap tp6 --addr 10.11.0.2 --peer 10.11.0.1 \
  --addr fd01::2/64 --peer fd01::1 --ctl "$ctl2"
wait_ctl "$ctl2" || { cat "$tmp/serve2.log"; exit 1; }
check "the kernel's DAD on tp6 ended (fd01::1 usable)" wait_dad nsx tp6
check "ping -6 fd01::2 over TAP answers" nsx ping -6 -c 3 -i 0.2 -W 2 -q fd01::2
nsx curl -6 -sS --max-time 60 -o "$tmp/got2.bin" "http://[fd01::2]/big.bin"
rc=$?
check "curl -6 3 MB from [fd01::2] over TAP: exit 0 (got $rc), byte-exact" \
  bash -c "[ $rc = 0 ] && cmp -s '$www/big.bin' '$tmp/got2.bin'"
nsx ip -6 neigh show dev tp6 > "$tmp/neigh2.txt"
cat "$tmp/neigh2.txt"
tapmac=$(awk '/^fd01::2 /{print $3}' "$tmp/neigh2.txt")
check "the kernel's neighbour table on tp6 holds fd01::2 (MAC $tapmac, not tp6's own)" \
  bash -c "[ -n '$tapmac' ] && [ '$tapmac' != \"\$(ip netns exec $ns cat /sys/class/net/tp6/address)\" ] &&
           grep -Eq '^fd01::2 lladdr [0-9a-f:]{17} (REACHABLE|STALE|DELAY|PROBE)' '$tmp/neigh2.txt'"

nsx timeout 60 python3 -m http.server 8001 --bind :: --directory "$www" > /dev/null 2>&1 &
PIDS+=($!)
wait_listen 8001
nsx timeout 40 "$U" get "http://[fd02::1]:8001/big.bin" --tap tp7 --addr 10.12.0.2 --peer 10.12.0.1 \
  --addr fd02::2/64 --peer fd02::1 --no-ctl -o "$tmp/get2.bin" 2> "$tmp/get2.err"
rc=$?
cat "$tmp/get2.err"
check "ustcp get over TAP from the kernel's http.server --bind ::: exit 0 (got $rc), byte-exact" \
  bash -c "[ $rc = 0 ] && cmp -s '$www/big.bin' '$tmp/get2.bin'"
finish
