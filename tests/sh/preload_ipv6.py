#!/usr/bin/env python3
"""AF_INET6 sockets of an unmodified program on ustcp (libustcp_preload.so with
USTCP_ADDR6; issue 16), against the kernel. Run by interop_preload6.sh as
    preload_ipv6.py KERNEL6 KERNEL4 OURS6 ECHO_PORT
where the kernel runs an echo server on [::]:ECHO_PORT (IPv4 too) and connects
back to the listeners this program opens when told on stdout ("LISTEN port").
Each check prints PASS/FAIL; the exit status is the number of failures."""
import errno
import socket
import sys

k6, k4, ours6, eport = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
fails = 0


def check(desc, ok, detail=""):
    global fails
    print(("PASS: " if ok else "FAIL: ") + desc + (" (%s)" % detail if detail else ""), flush=True)
    if not ok:
        fails += 1


def echo(s, msg):
    s.sendall(msg)
    got = b""
    while len(got) < len(msg):
        d = s.recv(65536)
        if not d:
            break
        got += d
    return got


# 1. an unbound AF_INET6 socket
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
check("SO_DOMAIN is AF_INET6", s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET6)
check("unbound getsockname is ('::', 0)", s.getsockname()[:2] == ("::", 0), repr(s.getsockname()))

# 2. IPv6 to the kernel's echo server
s.settimeout(10)
s.connect((k6, eport))
check("connect [%s]:%d over IPv6" % (k6, eport), True)
check("getsockname is ours (%s)" % ours6, s.getsockname()[0] == ours6, repr(s.getsockname()))
check("getpeername is the kernel's", s.getpeername()[:2] == (k6, eport), repr(s.getpeername()))
msg = bytes(range(256)) * 400
check("100 kB echoed byte-exact over IPv6", echo(s, msg) == msg)
s.close()

# 3. v4-mapped: an AF_INET6 socket connecting to ::ffff:a.b.c.d speaks IPv4
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.settimeout(10)
s.connect(("::ffff:" + k4, eport))
check("getpeername of a v4-mapped connection is ::ffff:%s" % k4,
      s.getpeername()[:2] == ("::ffff:" + k4, eport), repr(s.getpeername()))
check("its getsockname is v4-mapped too", s.getsockname()[0].startswith("::ffff:"), repr(s.getsockname()))
check("echoed over IPv4 from an AF_INET6 socket", echo(s, b"mapped\n") == b"mapped\n")
s.close()

# 4. IPV6_V6ONLY: connect() to a v4-mapped address fails as on Linux (ENETUNREACH)
s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
check("IPV6_V6ONLY reads back 1", s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 1)
try:
    s.connect(("::ffff:" + k4, eport))
    check("V6ONLY connect to ::ffff:%s fails" % k4, False, "connected")
except OSError as e:
    check("V6ONLY connect to ::ffff:%s fails with ENETUNREACH" % k4, e.errno == errno.ENETUNREACH, e.strerror)
s.close()

# 5. listeners: [::] dual-stack, and [::] V6ONLY; the kernel connects to both
dual = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
dual.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
dual.bind(("::", 0))
dual.listen(8)
dport = dual.getsockname()[1]
check("a [::] listener's getsockname is ('::', port)", dual.getsockname()[0] == "::" and dport > 0,
      repr(dual.getsockname()))
v6o = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
v6o.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
v6o.listen(8)   # no bind: an ephemeral port on [::]
oport = v6o.getsockname()[1]
check("listen() without bind on AF_INET6 binds [::]:ephemeral", v6o.getsockname()[0] == "::" and oport > 0,
      repr(v6o.getsockname()))
print("LISTEN %d %d" % (dport, oport), flush=True)
dual.settimeout(15)
peers = set()
for _ in range(2):
    c, a = dual.accept()
    peers.add(a[0])
    check("accepted a connection, its peer %s" % a[0], c.getpeername()[0] == a[0])
    c.sendall(b"hi " + a[0].encode() + b"\n")
    c.close()
check("the dual-stack listener saw the kernel over IPv6 (%s)" % k6, k6 in peers, repr(peers))
check("and over IPv4 as ::ffff:%s" % k4, "::ffff:" + k4 in peers, repr(peers))
v6o.settimeout(15)
c, a = v6o.accept()
check("the V6ONLY listener accepted IPv6 (%s)" % a[0], a[0] == k6, repr(a))
c.close()
print("DONE", flush=True)
sys.stdin.readline()   # the kernel's IPv4 attempt at the V6ONLY port is made now
dual.close()
v6o.close()
sys.exit(fails)
