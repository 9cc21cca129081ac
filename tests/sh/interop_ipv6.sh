#!/usr/bin/env bash
# Issue 16 point 1 interop: ustcp over IPv6 on a TUN device, against the Linux
# kernel's TCP and ICMPv6 (RFC 8200, RFC 4443).
#   - `ustcp serve --http` with --addr fd00::2: curl -6 to [fd00::2]:80 downloads
#     2 MB byte-exact and a small page; HEAD; a port with no listener is refused
#   - the same server takes IPv4 too (listener on [::], v4-mapped): curl -4
#   - ping -6 answers, payload echoed
#   - `ustcp get http://[fd00:1::1]:PORT/` from ustcp to a kernel server (python3),
#     `ustcp connect '[fd00:2::1]:PORT'` to a kernel echo server
#   - `ustcp stat`: the IPv6 listener as [::]:80 and the ip6 counters
#   - the capture (tshark on the kernel's side): IPv6 TCP with valid checksums,
#     no malformed packets, ICMPv6 echo replies
# The kernel side gets fd00::1/64 from ustcp itself (--peer fd00::1; a TUN device
# is IFF_NOARP, so the kernel runs no DAD there: `nodad` is not needed).
# Needs root, /dev/net/tun, curl, python3, ping, tshark; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init ipv6 curl python3 ping tshark sha256sum
nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
nsx sysctl -qw net.ipv6.conf.default.disable_ipv6=0 2>/dev/null

www=$tmp/www
mkdir -p "$www"
head -c 2000000 /dev/urandom > "$www/big.bin"
echo "<h1>ustcp over IPv6</h1>" > "$www/index.html"
chmod -R a+rX "$www"

ctl=$tmp/ctl.sock
ustcp_bg serve serve --http "$www" --tun t0 --addr 10.7.0.2 --peer 10.7.0.1 \
  --addr fd00::2 --peer fd00::1 --ctl "$ctl" --pcap "$tmp/ustcp.pcap"
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }
# the kernel's IPv6 address must be usable (tentative addresses are not)
for i in $(seq 1 50); do
  nsx ip -6 addr show dev t0 2>/dev/null | grep -q "fd00::1/64" &&
    ! nsx ip -6 addr show dev t0 | grep -q tentative && break
  sleep 0.1
done
nsx ip -6 addr show dev t0

nsx timeout 60 tshark -q -F pcap -i t0 -w "$tmp/cap.pcap" > "$tmp/tshark.log" 2>&1 &
tshark_pid=$!
PIDS+=($tshark_pid)
for i in $(seq 1 100); do grep -q "Capturing" "$tmp/tshark.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5

# 1. curl -6: the big file and a page
nsx timeout 30 curl -6 -sS -o "$tmp/big.out" "http://[fd00::2]:80/big.bin" 2> "$tmp/curl.err"
rc=$?
cat "$tmp/curl.err"
check "curl -6 [fd00::2]:80: 2 MB byte-exact (exit $rc)" \
  bash -c "[ $rc = 0 ] && [ '$(sha "$www/big.bin")' = \"\$(sha256sum '$tmp/big.out' | cut -d' ' -f1)\" ]"
page=$(nsx timeout 10 curl -6 -sS "http://[fd00::2]/")
check "curl -6: index page" [ "$page" = "<h1>ustcp over IPv6</h1>" ]
hdr=$(nsx timeout 10 curl -6 -sS -I "http://[fd00::2]/big.bin" | tr -d '\r')
check "curl -6 HEAD: 200 and Content-Length" \
  bash -c "grep -q '^HTTP/1.1 200' <<< \"$hdr\" && grep -q '^Content-Length: 2000000' <<< \"$hdr\""
r=$(nsx timeout 10 python3 -c '
import socket
s = socket.socket(socket.AF_INET6); s.settimeout(5)
try:
    s.connect(("fd00::2", 81)); print("connected")
except ConnectionRefusedError:
    print("refused")
except Exception as e:
    print(repr(e))
')
check "kernel connect to [fd00::2]:81 (no listener): refused by RST ($r)" [ "$r" = refused ]

# 2. IPv4 to the same listener ([::]:80 takes IPv4 as v4-mapped)
page4=$(nsx timeout 10 curl -4 -sS "http://10.7.0.2/")
check "curl -4 to the [::] listener: index page" [ "$page4" = "<h1>ustcp over IPv6</h1>" ]

# 3. ping -6
nsx timeout 10 ping -6 -c 3 -i 0.2 -W 2 -p 75737463 fd00::2 > "$tmp/ping.txt" 2>&1
rc=$?
cat "$tmp/ping.txt"
check "ping -6 fd00::2: 3 replies (exit $rc)" \
  bash -c "[ $rc = 0 ] && grep -q '3 received' '$tmp/ping.txt'"

# 4. ustcp as the IPv6 client: a second ustcp on its own TUN device (t1,
#    fd00:1::2, the kernel side fd00:1::1) gets a file from a kernel HTTP server
#    listening on [::]
nsx python3 -c '
import http.server, socket, sys, functools
class S(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
srv = S(("::", 0), h)
print(srv.server_address[1], flush=True)
srv.serve_forever()
' "$www" > "$tmp/py.port" 2> "$tmp/py.err" &
PIDS+=($!)
for i in $(seq 1 50); do [ -s "$tmp/py.port" ] && break; sleep 0.1; done
pport=$(cat "$tmp/py.port")
nsx timeout 30 "$U" get "http://[fd00:1::1]:$pport/big.bin" --tun t1 --addr 10.9.0.2 \
  --peer 10.9.0.1 --addr fd00:1::2 --peer fd00:1::1 --no-ctl -o "$tmp/get.out" \
  > "$tmp/get.log" 2>&1
rc=$?
cat "$tmp/get.log"
check "ustcp get http://[fd00:1::1]:$pport/: 2 MB byte-exact from the kernel (exit $rc)" \
  bash -c "[ $rc = 0 ] && [ '$(sha "$www/big.bin")' = \"\$(sha256sum '$tmp/get.out' | cut -d' ' -f1)\" ]"

# 4b. ustcp connect '[fd00:2::1]:PORT' (a third device) to a kernel echo server on [::]
nsx python3 -c '
import socket, threading
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", 0)); s.listen(4); print(s.getsockname()[1], flush=True)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
' > "$tmp/echo.port" 2> "$tmp/echo.err" &
PIDS+=($!)
for i in $(seq 1 50); do [ -s "$tmp/echo.port" ] && break; sleep 0.1; done
eport=$(cat "$tmp/echo.port")
out=$(echo "hello over IPv6" | nsx timeout 20 "$U" connect "[fd00:2::1]:$eport" --tun t2 \
  --addr 10.11.0.2 --peer 10.11.0.1 --addr fd00:2::2 --peer fd00:2::1 --no-ctl 2> "$tmp/connect.err")
rc=$?
cat "$tmp/connect.err"
check "ustcp connect [fd00:2::1]:$eport: echoed (exit $rc)" \
  bash -c "[ $rc = 0 ] && [ '$out' = 'hello over IPv6' ]"

# 5. ustcp stat
timeout 5 "$U" stat -a --ctl "$ctl" > "$tmp/stat.txt" 2>&1
cat "$tmp/stat.txt"
check "ustcp stat: the listener on [::]:80, peer [::]:*" grep -q "LISTEN .*\[::\]:80 *\[::\]:\*" "$tmp/stat.txt"
check "ustcp stat: ip6 counters" bash -c "grep -q '^ip6_in [1-9]' '$tmp/stat.txt' && grep -q '^icmp6_out [1-9]' '$tmp/stat.txt'"

# 6. the capture
sleep 0.5
kill "$tshark_pid" 2>/dev/null
sleep 0.5
tshark -r "$tmp/cap.pcap" -o tcp.check_checksum:TRUE -Y "_ws.malformed || _ws.expert.severity >= error" \
  2>/dev/null > "$tmp/bad.txt"
check "capture: no malformed packets nor checksum errors" bash -c "[ ! -s '$tmp/bad.txt' ] || { cat '$tmp/bad.txt'; false; }"
n6=$(tshark -r "$tmp/cap.pcap" -Y "ipv6 && tcp" 2>/dev/null | wc -l)
check "capture: IPv6 TCP segments ($n6)" [ "$n6" -gt 100 ]
nr=$(tshark -r "$tmp/cap.pcap" -Y "icmpv6.type == 129" 2>/dev/null | wc -l)
check "capture: ICMPv6 echo replies ($nr)" [ "$nr" -ge 3 ]
finish
