#!/usr/bin/env bash
# Issue 16 (stretch of point 4): IPv6 in the LD_PRELOAD shim. With USTCP_ADDR6
# the program's AF_INET6 sockets go to ustcp as well, with sockaddr_in6 both
# ways and Linux's v4-mapped behaviour; against the kernel over TUN in a
# namespace this test creates and removes:
#   - tests/sh/preload_ipv6.py on ustcp: SO_DOMAIN, getsockname/getpeername as
#     sockaddr_in6, IPv6 echo, connect to ::ffff:a.b.c.d (IPv4 from an AF_INET6
#     socket), IPV6_V6ONLY connect refused with ENETUNREACH, a dual-stack [::]
#     listener accepting the kernel over IPv6 and IPv4 (peer ::ffff:a.b.c.d), a
#     V6ONLY listener (listen() without bind) taking IPv6 and refusing IPv4
#   - curl -6 on ustcp downloads 20 MB byte-exact from the kernel's http.server
#     on [::]
#   - python3 -m http.server --bind :: on ustcp: the kernel's curl -6 and
#     curl -4 download 20 MB byte-exact
#   - without USTCP_ADDR6, AF_INET6 sockets stay with the kernel (as before)
# Needs root, /dev/net/tun, python3, curl; skipped under ASan (the preload
# library cannot load into uninstrumented programs; the plain run tests it).
. "$(dirname "$0")/interop_lib.bash"
[ "${USTCP_SANITIZED:-0}" = 1 ] && skip "sanitized build: the plain run of the suite tests the preload library"
PRE=${USTCP_BUILD_DIR:-$(dirname "$U")}/libustcp_preload.so
[ -f "$PRE" ] || skip "$PRE not built"
interop_init preload6 curl python3 sha256sum
nsx sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
nsx sysctl -qw net.ipv6.conf.default.disable_ipv6=0 2>/dev/null

head -c 20000000 /dev/urandom > "$tmp/big.bin"
chmod -R a+rX "$tmp"
want=$(sha "$tmp/big.bin")

# preloaded PROGRAM on TUN device tN: ustcp 10.7.N.2 / fd00:N::2, kernel .1 / ::1
pre() {
  local n=$1; shift
  nsx env LD_PRELOAD="$PRE" USTCP_TUN=t$n USTCP_ADDR=10.7.$n.2 USTCP_PEER=10.7.$n.1 \
    USTCP_ADDR6=fd00:$n::2 USTCP_PEER6=fd00:$n::1 "$@"
}
kpy() {   # the kernel connects: kpy v6|v4 ADDR PORT -> prints the line read, or "refused"
  nsx timeout 10 python3 -c '
import socket, sys
fam = socket.AF_INET6 if sys.argv[1] == "v6" else socket.AF_INET
s = socket.socket(fam); s.settimeout(5)
try:
    s.connect((sys.argv[2], int(sys.argv[3]))); print(s.makefile().readline().strip())
except ConnectionRefusedError:
    print("refused")
except Exception as e:
    print(repr(e))
' "$@"
}

# 1. the calls
nsx timeout 100 python3 -c '
import socket, threading
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 7000)); s.listen(8)
def serve(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
' > "$tmp/echo.log" 2>&1 &
PIDS+=($!)
wait_listen 7000
mkfifo "$tmp/in"
pre 1 timeout 60 python3 "$SRC/tests/sh/preload_ipv6.py" fd00:1::1 10.7.1.1 fd00:1::2 7000 \
  < "$tmp/in" > "$tmp/py.log" 2>&1 &
pypid=$!
PIDS+=($pypid)
exec 3> "$tmp/in"
for i in $(seq 1 150); do grep -q "^LISTEN" "$tmp/py.log" && break; sleep 0.1; done
read -r _ dport oport < <(grep "^LISTEN" "$tmp/py.log")
r6=$(kpy v6 fd00:1::2 "$dport"); r4=$(kpy v4 10.7.1.2 "$dport"); ro=$(kpy v6 fd00:1::2 "$oport")
for i in $(seq 1 100); do grep -q "^DONE" "$tmp/py.log" && break; sleep 0.1; done
rref=$(kpy v4 10.7.1.2 "$oport")
exec 3>&-
wait "$pypid"
rc=$?
cat "$tmp/py.log"
check "preload_ipv6.py: every check (exit $rc)" [ "$rc" = 0 ]
check "kernel -> [::] listener over IPv6: served, the program saw fd00:1::1 ($r6)" [ "$r6" = "hi fd00:1::1" ]
check "kernel -> [::] listener over IPv4: served, the program saw ::ffff:10.7.1.1 ($r4)" [ "$r4" = "hi ::ffff:10.7.1.1" ]
check "kernel -> V6ONLY listener over IPv4: refused ($rref)" [ "$rref" = refused ]

# 2. a client on ustcp: curl -6 from the kernel's http.server on [::]
(cd "$tmp" && exec ip netns exec "$ns" timeout 120 python3 -m http.server 8000 --bind ::) > "$tmp/kpy.log" 2>&1 &
PIDS+=($!)
wait_listen 8000
pre 2 timeout 60 curl -6 -sS -o "$tmp/curl.bin" "http://[fd00:2::1]:8000/big.bin" 2> "$tmp/curl.log"
rc=$?
cat "$tmp/curl.log"
check "curl -6 on ustcp: 20 MB from the kernel byte-exact (exit $rc)" \
  bash -c "[ $rc = 0 ] && [ \"\$(sha256sum '$tmp/curl.bin' | cut -d' ' -f1)\" = '$want' ]"
rm -f "$tmp/curl.bin"

# 3. a server on ustcp: python3 -m http.server --bind :: (dual-stack)
(cd "$tmp" && exec env LD_PRELOAD="$PRE" USTCP_TUN=t3 USTCP_ADDR=10.7.3.2 USTCP_PEER=10.7.3.1 \
  USTCP_ADDR6=fd00:3::2 USTCP_PEER6=fd00:3::1 ip netns exec "$ns" timeout 120 \
  python3 -m http.server 8080 --bind ::) > "$tmp/upy.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 100); do
  nsx timeout 1 bash -c "exec 3<>/dev/tcp/fd00:3::2/8080" 2>/dev/null && break
  sleep 0.1
done
for fam in 6 4; do
  host=$([ $fam = 6 ] && echo "[fd00:3::2]" || echo 10.7.3.2)
  nsx timeout 60 curl -$fam -sS -o "$tmp/c$fam.bin" "http://$host:8080/big.bin" 2> "$tmp/c$fam.log"
  rc=$?
  cat "$tmp/c$fam.log"
  check "kernel curl -$fam from python3 -m http.server --bind :: on ustcp: 20 MB byte-exact (exit $rc)" \
    bash -c "[ $rc = 0 ] && [ \"\$(sha256sum '$tmp/c$fam.bin' | cut -d' ' -f1)\" = '$want' ]"
  rm -f "$tmp/c$fam.bin"
done
grep -q '"GET /big.bin HTTP/1.1" 200' "$tmp/upy.log" &&
  check "the server logged its IPv4 client as ::ffff:10.7.3.1" grep -q "^::ffff:10.7.3.1 " "$tmp/upy.log"

# 4. without USTCP_ADDR6 an AF_INET6 socket is the kernel's (::1 works, no TUN)
out=$(nsx env LD_PRELOAD="$PRE" USTCP_TUN=t4 USTCP_ADDR=10.7.4.2 USTCP_PEER=10.7.4.1 timeout 10 python3 -c '
import socket
s = socket.socket(socket.AF_INET6); s.settimeout(5); s.connect(("::1", 7000)); s.sendall(b"k\n")
print(s.recv(10).decode().strip())')
check "without USTCP_ADDR6: AF_INET6 stays with the kernel (echo over ::1: $out)" [ "$out" = k ]
finish
