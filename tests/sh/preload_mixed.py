# Run under LD_PRELOAD=libustcp_preload.so (tests/sh/interop_preload.sh): the
# calls an unmodified program makes on a ustcp socket, with kernel descriptors
# (a pipe, a UDP socket, a loopback TCP pair) mixed into the same poll, select
# and epoll sets. Talks to an echo server on the kernel side (argv[1]:argv[2]).
# Prints one PASS/FAIL line per check and exits 1 on any failure.
import errno, fcntl, os, select, socket, struct, sys, termios, tempfile

host, port = sys.argv[1], int(sys.argv[2])
fails = 0
def check(desc, ok):
    global fails
    print(("PASS: " if ok else "FAIL: ") + desc, flush=True)
    if not ok:
        fails += 1

s = socket.create_connection((host, port), timeout=10)
check("connect: getpeername is the kernel's echo server", s.getpeername() == (host, port))
check("getsockname is the stack's address", s.getsockname()[0] == os.environ.get("USTCP_ADDR", "10.7.0.2"))
check("SO_TYPE is SOCK_STREAM", s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
check("TCP_NODELAY reads back", s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0)
# TCP_INFO in the kernel's layout (struct tcp_info: state, ca_state, ..., then
# rto, ato, snd_mss, rcv_mss as u32 from byte 8; snd_cwnd at byte 80): what
# ss-like code reads from the kernel, not ustcp's own struct
ti = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 232)
state, ca_state = ti[0], ti[1]
rto, ato, snd_mss = struct.unpack_from("=III", ti, 8)
snd_cwnd = struct.unpack_from("=I", ti, 80)[0]
check("TCP_INFO: Linux layout, %d bytes, ESTABLISHED (%d), ca Open (%d), rto %d us, mss %d, cwnd %d"
      % (len(ti), state, ca_state, rto, snd_mss, snd_cwnd),
      len(ti) == 232 and state == 1 and ca_state == 0 and 200000 <= rto <= 3000000
      and 500 <= snd_mss <= 1460 and snd_cwnd == 10)

# kernel descriptors in the same sets
r, w = os.pipe()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
lo = socket.socket(socket.AF_INET, socket.SOCK_STREAM)      # loopback: stays with the kernel
lo.bind(("127.0.0.1", 0)); lo.listen(1)
lo_c = socket.create_connection(lo.getsockname(), timeout=5)
lo_s, _ = lo.accept()
check("loopback TCP stays with the kernel (works, 127.0.0.1)", lo_c.getpeername() == lo.getsockname())

s.setblocking(False)
rd, _, _ = select.select([s, r, udp, lo_s], [], [], 0)
check("select: nothing readable at first", rd == [])
s.sendall(b"ping")
os.write(w, b"x")
rd, _, _ = select.select([s, r, udp, lo_s], [], [], 5)
check("select: pipe readable", r in rd)
os.read(r, 1)
for _ in range(50):
    if s in rd: break
    rd, _, _ = select.select([s, r, udp, lo_s], [], [], 0.1)
check("select: ustcp socket readable after the echo", s in rd)
buf = bytearray(4)
n = fcntl.ioctl(s.fileno(), termios.FIONREAD, struct.pack("i", 0))
check("ioctl FIONREAD counts the echo (%d)" % struct.unpack("i", n)[0], struct.unpack("i", n)[0] == 4)
check("recv gets the echo", s.recv(4) == b"ping")
try:
    s.recv(10); check("non-blocking recv with nothing there: EAGAIN", False)
except BlockingIOError:
    check("non-blocking recv with nothing there: EAGAIN", True)

p = select.poll()
for fd in (s, r, udp, lo_s):
    p.register(fd, select.POLLIN)
p.register(s, select.POLLIN | select.POLLOUT)
ev = dict(p.poll(1000))
check("poll: ustcp socket writable, not readable", ev.get(s.fileno(), 0) & select.POLLOUT and not ev.get(s.fileno(), 0) & select.POLLIN)
# Readable only from here on: a socket polled for POLLOUT too would end every
# poll at once, and the loop below would run out before the echo arrives.
p.modify(s, select.POLLIN)
udp.sendto(b"u", udp.getsockname())
lo_c.send(b"l")
s.send(b"again")
seen = set()
for _ in range(100):
    for fd, e in p.poll(100):
        if e & select.POLLIN:
            seen.add(fd)
            p.unregister(fd)   # seen once is enough; level-triggered it would end every poll
    if {s.fileno(), udp.fileno(), lo_s.fileno()} <= seen: break
check("poll: UDP, loopback TCP and ustcp all readable in one set", {s.fileno(), udp.fileno(), lo_s.fileno()} <= seen)
s.setblocking(True)
got = b""
while len(got) < 5: got += s.recv(5 - len(got))
check("blocking recv after poll", got == b"again")

# epoll, edge-triggered, mixed
ep = select.epoll()
ep.register(s.fileno(), select.EPOLLIN | select.EPOLLET)
ep.register(r, select.EPOLLIN)
s.send(b"edge")
evs = []
for _ in range(50):
    evs = ep.poll(0.1)
    if any(fd == s.fileno() for fd, _ in evs): break
check("epoll ET: an edge for the echo", any(fd == s.fileno() for fd, _ in evs))
got = b""
while len(got) < 4: got += s.recv(4 - len(got))
check("epoll ET: the data", got == b"edge")
check("epoll ET: no second edge without new data", ep.poll(0.2) == [])

# dup and fcntl flags
d = os.dup(s.fileno())
fl = fcntl.fcntl(d, fcntl.F_GETFL)
check("F_GETFL: blocking socket shows no O_NONBLOCK", not fl & os.O_NONBLOCK)
fcntl.fcntl(d, fcntl.F_SETFL, fl | os.O_NONBLOCK)
check("F_SETFL O_NONBLOCK is shared by the dup", fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK)
fcntl.fcntl(d, fcntl.F_SETFL, fl)
os.write(d, b"viadup")
got = b""
while len(got) < 6: got += s.recv(6 - len(got))
check("write on a dup, read on the original", got == b"viadup")
os.close(d)
s.send(b"stillopen")
got = b""
while len(got) < 9: got += s.recv(9 - len(got))
check("closing the dup keeps the socket open", got == b"stillopen")

# sendfile from a file (socket.sendfile uses os.sendfile)
with tempfile.TemporaryFile() as f:
    data = os.urandom(300000)
    f.write(data); f.flush(); f.seek(0)
    sender = s.sendfile(f)
    got = bytearray()
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk: break
        got += chunk
    check("sendfile 300 KB from a file, echoed byte-exact", sender == len(data) and bytes(got) == data)

# unsupported calls fail loudly
try:
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN_CONNECT if hasattr(socket, "TCP_FASTOPEN_CONNECT") else 30, 1)
    check("an unsupported option fails with an errno", False)
except OSError as e:
    check("an unsupported option fails with an errno (%s)" % errno.errorcode.get(e.errno), e.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP))

s.shutdown(socket.SHUT_WR)
check("shutdown(SHUT_WR): the peer closes, recv returns EOF", s.recv(10) == b"")
s.close()
# refused: nothing listens on the kernel side's port 9 (ECONNREFUSED, H3)
c = socket.socket()
c.settimeout(5)
try:
    c.connect((host, 9)); check("connect to a closed port is refused", False)
except ConnectionRefusedError:
    check("connect to a closed port is refused", True)
c.close()
print("%d failed" % fails)
sys.exit(1 if fails else 0)
