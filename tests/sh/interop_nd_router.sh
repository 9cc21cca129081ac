#!/usr/bin/env bash
# Issue 16 points 2 and 4 interop: ustcp as an IPv6 host on a veth (AF_PACKET)
# whose default router is the Linux kernel, named by its link-local address
# (--gateway fe80::...), with a lower MTU behind the router.
#
#   ns A: ustcp on vA, fd00::2/64     ns B (router, forwarding): vB fd00::1/64,
#   rB fd10::1/64 with MTU 1400        ns C (host): rC fd10::2/64, default via fd10::1
#
#   - ustcp learns the router's link-local address (its NS, or NS/NA, RFC
#     4861 §7.2) and sends everything off its prefix there; the router
#     resolves ustcp (its neighbour table holds ustcp's MAC)
#   - curl -6 from C downloads 3 MB byte-exact from `ustcp serve --http` on
#     [fd00::2]: ustcp's 1500-byte packets do not fit rB, the router answers
#     Packet Too Big and ustcp lowers its path MTU (RFC 8201; icmp6_ptb >= 1)
#   - ping -6 from C answers; `ustcp get` from a kernel server in C through the
#     router, byte-exact
# The kernel's addresses are used once out of DAD's "tentative" (waited for).
# Needs root, curl, python3, ping; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init ndr curl python3 ping sha256sum
nsb=""
nsc=""
cleanup_bc() {
  local n
  for n in "$nsb" "$nsc"; do
    [ -n "$n" ] || continue
    ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$n" 2>/dev/null
  done
  cleanup
}
trap cleanup_bc EXIT
nsb=ustcp-ndrb-$$-$RANDOM
nsc=ustcp-ndrc-$$-$RANDOM
ip netns add "$nsb" || skip "cannot create a second namespace"
ip netns add "$nsc" || skip "cannot create a third namespace"
nsbx() { ip netns exec "$nsb" "$@"; }
nscx() { ip netns exec "$nsc" "$@"; }
for n in nsx nsbx nscx; do
  $n ip link set lo up
  $n sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
  $n sysctl -qw net.ipv6.conf.default.disable_ipv6=0 2>/dev/null
done
nsx ip link add vA type veth peer name vB netns "$nsb" || skip "no veth"
nsbx ip link add rB type veth peer name rC netns "$nsc" || skip "no veth"
# ustcp owns vA's MAC: the kernel there stays out of IPv6 (the same link-local)
nsx sysctl -qw net.ipv6.conf.vA.disable_ipv6=1 || skip "cannot turn IPv6 off on vA"
nsx ip link set vA up
nsbx sysctl -qw net.ipv6.conf.all.forwarding=1
nsbx ip -6 addr add fd00::1/64 dev vB
nsbx ip -6 addr add fd10::1/64 dev rB
nsbx ip link set rB mtu 1400
nsbx ip link set vB up
nsbx ip link set rB up
nscx ip -6 addr add fd10::2/64 dev rC
nscx ip link set rC up
nscx ip -6 route add default via fd10::1

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
check "the kernel's DAD ended on vB, rB, rC" \
  bash -c "$(declare -f wait_dad); nsbx() { ip netns exec $nsb \"\$@\"; }; nscx() { ip netns exec $nsc \"\$@\"; };
           wait_dad nsbx vB && wait_dad nsbx rB && wait_dad nscx rC"
gw=$(nsbx ip -6 addr show dev vB scope link | awk '/inet6/ { sub("/.*", "", $2); print $2; exit }')
vamac=$(nsx cat /sys/class/net/vA/address)
echo "router's link-local on vB: $gw; ustcp's MAC: $vamac"

www=$tmp/www
mkdir -p "$www"
head -c 3000000 /dev/urandom > "$www/big.bin"
chmod -R a+rX "$www"
ctl=$tmp/ctl.sock
ustcp_bg serve serve --http "$www" --packet vA --addr 10.10.0.2 --addr fd00::2/64 \
  --gateway "$gw" --ctl "$ctl"
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }

check "ping -6 fd00::2 from behind the router answers" nscx ping -6 -c 3 -i 0.2 -W 2 -q fd00::2
nscx curl -6 -sS --max-time 60 -o "$tmp/got.bin" "http://[fd00::2]/big.bin"
rc=$?
check "curl -6 3 MB through the router (MTU 1400 behind it): exit 0 (got $rc), byte-exact" \
  bash -c "[ $rc = 0 ] && cmp -s '$www/big.bin' '$tmp/got.bin'"
timeout 5 "$U" stat --ctl "$ctl" -s > "$tmp/stat.txt" 2>&1
grep -E "^(icmp6_ptb|eth_rx_na|eth_tx_ns|eth_nd_entries|eth_no_route)" "$tmp/stat.txt"
check "ustcp lowered its path MTU on the router's Packet Too Big (icmp6_ptb >= 1)" \
  awk '$1 == "icmp6_ptb" && $2 >= 1 { ok = 1 } END { exit !ok }' "$tmp/stat.txt"
# (the router's own NS for fd00::2, from its link-local address with an SLLAO,
# may teach ustcp the router's MAC before ustcp asks: §7.2.3)
check "ustcp holds a neighbour entry (the router), no datagram without a route" \
  awk '$1 == "eth_nd_entries" && $2 >= 1 { a = 1 } $1 == "eth_no_route" && $2 == 0 { b = 1 } END { exit !(a && b) }' "$tmp/stat.txt"
nsbx ip -6 neigh show dev vB > "$tmp/neigh.txt"
cat "$tmp/neigh.txt"
check "the router's neighbour table: fd00::2 at ustcp's MAC" \
  grep -Eq "^fd00::2 lladdr $vamac (REACHABLE|STALE|DELAY|PROBE)" "$tmp/neigh.txt"
kill "${PIDS[0]}" 2>/dev/null
wait "${PIDS[0]}" 2>/dev/null

nscx timeout 60 python3 -m http.server 8000 --bind :: --directory "$www" > /dev/null 2>&1 &
PIDS+=($!)
for i in $(seq 1 50); do nscx ss -ltn | grep -q ":8000 " && break; sleep 0.1; done
nsx timeout 30 "$U" get "http://[fd10::2]:8000/big.bin" --packet vA --addr fd00::3/64 \
  --gateway "$gw" --no-ctl -o "$tmp/get.bin" 2> "$tmp/get.err"
rc=$?
cat "$tmp/get.err"
check "ustcp get through the router from the kernel's http.server: exit 0 (got $rc), byte-exact" \
  bash -c "[ $rc = 0 ] && cmp -s '$www/big.bin' '$tmp/get.bin'"
finish
