#!/usr/bin/env bash
# Issue 16 point 4: Path MTU Discovery for IPv6 (RFC 8201) across a router,
# against the Linux kernel.
#
#   namespace A                    namespace R (router)            namespace B
#   ustcp --tun t0 fd00:a::2       r0 fd00:1::2   r1 fd00:2::1      b0 fd00:2::2
#   kernel t0 fd00:a::1, a0 fd00:1::1 ── veth ── r0 ... r1 ── veth ── b0
#
# A and R forward IPv6. Every link is 1500 bytes, but R's IPv6 MTU on both of
# its interfaces is 1300 (net.ipv6.conf.rX.mtu): R forwards nothing bigger and
# answers with ICMPv6 Packet Too Big (MTU 1300), as a router with a narrow link
# beyond it would (ip6_forward -> icmpv6_send ICMPV6_PKT_TOOBIG).
#   - download: `ustcp get` of 2 MB from python3's HTTP server in B; B's
#     1500-byte segments draw PTBs, the kernel lowers its path MTU and the body
#     arrives byte-exact
#   - upload: `ustcp connect` sends 3 MB to a kernel sink in B (sha256 of what
#     it read); ustcp's first full-size segments draw PTBs, ustcp lowers its
#     path MTU to 1300 (MSS 1240) and resends: the sink's digest matches;
#     `ustcp stat -s` counts the PTB (icmp6_ptb); on the wire (tshark in R) the
#     upload's segments that follow are at most 1300 bytes and reach 1300 (the
#     router's MTU, not the 1280 floor)
#   - tshark sees the PTBs toward both ends, and no malformed packet
# The upload runs first: after the download the kernel in B has the path MTU
# cached and would advertise MSS 1240 to ustcp, which would then never send a
# segment too big for R.
# Needs root, /dev/net/tun, python3, tshark, sha256sum, ethtool; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init pmtu6 python3 tshark sha256sum ethtool
nsR=$ns-r
nsB=$ns-b
trap 'cleanup; for n in "$nsR" "$nsB"; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$n" 2>/dev/null; done' EXIT
ip netns add "$nsR" 2>/dev/null || skip "cannot create a second namespace"
ip netns add "$nsB" 2>/dev/null || skip "cannot create a third namespace"
nsr() { ip netns exec "$nsR" "$@"; }
nsb() { ip netns exec "$nsB" "$@"; }
for n in "$ns" "$nsR" "$nsB"; do
  ip -n "$n" link set lo up
  ip netns exec "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
  ip netns exec "$n" sysctl -qw net.ipv6.conf.default.disable_ipv6=0 2>/dev/null
done
nsx sysctl -qw net.ipv6.conf.all.forwarding=1
nsr sysctl -qw net.ipv6.conf.all.forwarding=1
ip link add a0 netns "$ns" type veth peer name r0 netns "$nsR" || skip "cannot create a veth pair"
ip link add r1 netns "$nsR" type veth peer name b0 netns "$nsB" || skip "cannot create a veth pair"
for d in "$ns a0" "$nsR r0" "$nsR r1" "$nsB b0"; do
  set -- $d
  ip netns exec "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=0" 2>/dev/null
  ip -n "$1" link set "$2" up
  # segments as they are on the wire: no GSO/GRO frames of several MTUs in the
  # capture, complete checksums (veths offload both by default)
  ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off > /dev/null 2>&1
done
nsx ip -6 addr add fd00:1::1/64 dev a0 nodad
nsr ip -6 addr add fd00:1::2/64 dev r0 nodad
nsr ip -6 addr add fd00:2::1/64 dev r1 nodad
nsb ip -6 addr add fd00:2::2/64 dev b0 nodad
nsx ip -6 route add fd00:2::/64 via fd00:1::2
nsr ip -6 route add fd00:a::/64 via fd00:1::1
nsb ip -6 route add default via fd00:2::1
# the router's narrow path: IPv6 MTU 1300 on its interfaces, links still 1500
nsr sysctl -qw net.ipv6.conf.r0.mtu=1300
nsr sysctl -qw net.ipv6.conf.r1.mtu=1300
echo "R: r0 mtu6 $(nsr sysctl -n net.ipv6.conf.r0.mtu), r1 mtu6 $(nsr sysctl -n net.ipv6.conf.r1.mtu)"

www=$tmp/www
mkdir -p "$www"
head -c 2000000 /dev/urandom > "$www/big.bin"
head -c 3000000 /dev/urandom > "$tmp/up.bin"
chmod -R a+rX "$www"

# B: the kernel's HTTP server and a sink that writes "BYTES SHA256" at EOF
(cd "$www" && exec ip netns exec "$nsB" timeout 120 python3 -c '
import http.server, socket
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
S(("::", 8080), http.server.SimpleHTTPRequestHandler).serve_forever()
') > "$tmp/http.err" 2>&1 &
PIDS+=($!)
nsb timeout 120 python3 -c '
import hashlib, socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 9000)); s.listen(1)
c, _ = s.accept()
h = hashlib.sha256(); n = 0
while True:
    d = c.recv(65536)
    if not d: break
    h.update(d); n += len(d)
open(sys.argv[1] + ".tmp", "w").write("%d %s\n" % (n, h.hexdigest()))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
c.close()
' "$tmp/sink.txt" > "$tmp/sink.err" 2>&1 &
PIDS+=($!)
for i in $(seq 1 50); do
  nsb ss -ltn 2>/dev/null | grep -q ":8080 " && nsb ss -ltn | grep -q ":9000 " && break
  sleep 0.1
done

nsr timeout 120 tshark -q -i r0 -i r1 -f "ip6" -w "$tmp/r.pcapng" > "$tmp/tshark.log" 2>&1 &
tshark_pid=$!
PIDS+=($tshark_pid)
for i in $(seq 1 100); do grep -q "Capturing" "$tmp/tshark.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5

dev="--tun t0 --addr 10.7.0.2 --peer 10.7.0.1 --addr fd00:a::2 --peer fd00:a::1"
# 1. upload: ustcp (A) -> kernel sink (B); --linger keeps the stack up for stat
ctl=$tmp/ctl.sock
nsx timeout 60 "$U" connect "[fd00:2::2]:9000" $dev --ctl "$ctl" --linger 8 < "$tmp/up.bin" \
  > "$tmp/connect.out" 2> "$tmp/connect.err" &
cpid=$!
PIDS+=($cpid)
for i in $(seq 1 300); do [ -s "$tmp/sink.txt" ] && break; sleep 0.1; done
cat "$tmp/sink.txt" 2>/dev/null
check "upload: the kernel sink read 3 MB byte-exact" \
  [ "$(cat "$tmp/sink.txt" 2>/dev/null)" = "3000000 $(sha "$tmp/up.bin")" ]
timeout 5 "$U" stat -s --ctl "$ctl" > "$tmp/stat.txt" 2>&1
grep -E "^icmp6_(in|ptb)|^tcp_retrans|^retrans" "$tmp/stat.txt"
ptb=$(awk '$1 == "icmp6_ptb" {print $2}' "$tmp/stat.txt")
check "upload: ustcp stat -s counts the Packet Too Big that lowered its path MTU (icmp6_ptb ${ptb:-?})" \
  [ "${ptb:-0}" -ge 1 ]
wait "$cpid"
rc=$?
cat "$tmp/connect.err"
check "upload: ustcp connect exits 0 ($rc)" [ "$rc" = 0 ]

# 2. download: kernel (B) -> ustcp (A) through R
nsb ip -6 route flush cache 2>/dev/null
nsx timeout 60 "$U" get "http://[fd00:2::2]:8080/big.bin" $dev --no-ctl -o "$tmp/get.out" \
  > "$tmp/get.log" 2>&1
rc=$?
tail -3 "$tmp/get.log"
check "download: ustcp get [fd00:2::2]:8080 through the 1300-byte router: 2 MB byte-exact (exit $rc)" \
  bash -c "[ $rc = 0 ] && [ '$(sha "$www/big.bin")' = \"\$(sha256sum '$tmp/get.out' | cut -d' ' -f1)\" ]"
kpmtu=$(nsb ip -6 route get fd00:a::2 2>/dev/null | grep -o "mtu [0-9]*")
echo "B's route to ustcp after the download: ${kpmtu:-no cached mtu}"
check "download: the kernel in B learned the path MTU 1300 ($kpmtu)" [ "$kpmtu" = "mtu 1300" ]

# 3. the wire, seen by R
sleep 0.5
kill "$tshark_pid" 2>/dev/null
wait "$tshark_pid" 2>/dev/null
# (-E occurrence=f: the outer header, not the one the PTB quotes)
tshark -r "$tmp/r.pcapng" -Y "icmpv6.type == 2" -T fields -E occurrence=f -e ipv6.src -e ipv6.dst -e icmpv6.mtu \
  2>/dev/null | sort | uniq -c > "$tmp/ptb.txt"
cat "$tmp/ptb.txt"
check "tshark: R sent Packet Too Big (MTU 1300) to ustcp" grep -qE " fd00:1::2\s+fd00:a::2\s+1300$" "$tmp/ptb.txt"
check "tshark: R sent Packet Too Big (MTU 1300) to the kernel in B" grep -qE " fd00:2::1\s+fd00:2::2\s+1300$" "$tmp/ptb.txt"
# ustcp's upload segments as they reach R (r0), in order, with the PTBs to it
tshark -r "$tmp/r.pcapng" -Y "(tcp.dstport == 9000 && tcp.len > 0 && frame.interface_name == \"r0\") || icmpv6.type == 2" \
  -T fields -E occurrence=f -e icmpv6.type -e ipv6.src -e ipv6.dst -e ipv6.plen 2>/dev/null > "$tmp/up.txt"
python3 - "$tmp/up.txt" > "$tmp/up.res" <<'PY'
import sys
# type, outer source, outer destination, payload length: the upload's segments
# (from ustcp) and the PTBs to ustcp, in the order R saw them
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
rows = [(r[0], int(r[3])) for r in rows
        if (r[0] == "2" and r[2] == "fd00:a::2") or (r[0] != "2" and r[1] == "fd00:a::2")]
first = next((i for i, r in enumerate(rows) if r[0] == "2"), None)
segs = [r[1] + 40 for r in rows if r[0] != "2"]
if first is None:
    print("no PTB to ustcp"); sys.exit(1)
before = [r[1] + 40 for r in rows[:first] if r[0] != "2"]
# what ustcp had in flight when R sent the first PTB may still arrive after it:
# skip a window's worth, then every segment must fit the router's MTU
after = [r[1] + 40 for r in rows[first:] if r[0] != "2"][64:]
print("segments %d; before the first PTB: %d, largest %d; after it (less 64 in flight): %d, largest %d, at 1300: %d"
      % (len(segs), len(before), max(before or [0]), len(after), max(after or [0]), sum(s == 1300 for s in after)))
ok = max(before or [0]) == 1500 and len(after) >= 1000 and max(after) == 1300 and sum(s == 1300 for s in after) >= len(after) // 2
sys.exit(0 if ok else 1)
PY
res=$?
cat "$tmp/up.res"
check "tshark: ustcp's upload went out at 1500 bytes, then at most 1300 (its path MTU = the router's)" [ "$res" = 0 ]
# (a PTB quotes as much of the packet as fits in 1280 bytes: the quoted TCP
# segment is cut short, so its checksum cannot verify; the PTBs are checked for
# being well formed only). The upload's bytes are random: decoded as data, so
# that no heuristic dissector (a CI run took one for THRIFT) calls them
# malformed.
tshark -r "$tmp/r.pcapng" -o tcp.check_checksum:TRUE -d tcp.port==9000,data \
  -Y "_ws.malformed || (_ws.expert.severity >= error && !icmpv6)" 2>/dev/null > "$tmp/bad.txt"
check "tshark: no malformed packets nor checksum errors" bash -c "[ ! -s '$tmp/bad.txt' ] || { head '$tmp/bad.txt'; false; }"
finish
