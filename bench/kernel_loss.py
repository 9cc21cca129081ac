#!/usr/bin/env python3
"""bench/kernel_loss.py: the kernel's side of the loss curve (bench/kernel_loss.sh).

  recv PORT BYTES TIMEOUT   listen (SO_RCVBUF/SO_SNDBUF fixed before listen, so
                            the accepted socket has them), accept one connection,
                            read until BYTES or EOF or TIMEOUT seconds after the
                            accept, checking every byte against the stream
                            pattern; prints "bytes=N t_accept=T t_last=T
                            verified=0|1 rcv_wnd=W rcvbuf=B t_end=T"
                            (CLOCK_MONOTONIC seconds; W the largest window
                            advertised, B SO_RCVBUF read back, t_end when it
                            stopped reading). BYTES 0: duration mode, read for
                            TIMEOUT seconds; verified = every byte matched
  send ADDR PORT BYTES      SO_RCVBUF/SO_SNDBUF fixed before connect; prints
                            "t_connect=T" (taken just before connect()), then
                            writes BYTES of the pattern and closes (BYTES 0:
                            until the receiver closes)
  relay IF1 IF2 DELAY_MS    a wire with a delay, for kernels without sch_netem:
                            every frame that arrives on IF1 is sent on IF2
                            DELAY_MS milliseconds later and the other way round,
                            in arrival order (AF_PACKET; runs in a namespace of
                            its own between the two veth pairs)

SO_RCVBUF/SO_SNDBUF are given by the BUF environment variable (32768), the
congestion control (TCP_CONGESTION, on both sockets) by CC (the default). The
pattern: byte o of the stream is (o % 65521) % 251 -- a period prime to every
segment size, so a misplaced segment is caught.
"""
import heapq
import os
import select
import socket
import struct
import sys
import time

BUF = int(os.environ.get("BUF", "32768"))
CC = os.environ.get("CC", "")
PERIOD = 65521
PATTERN = bytes((i % PERIOD) % 251 for i in range(PERIOD)) * 2 + bytes(
    (i % PERIOD) % 251 for i in range(1 << 16))


def pattern_at(off, n):
    """n <= 65536 bytes of the pattern from stream offset off."""
    o = off % PERIOD
    return PATTERN[o:o + n]


def fix_buffers(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, BUF)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, BUF)
    if CC:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, CC.encode())


def rcv_wnd_of(s):
    """tcpi_rcv_wnd (struct tcp_info offset 232, Linux >= 6.8): the window this
    receiver last advertised, or -1."""
    try:
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
        if len(info) >= 236:
            return struct.unpack_from("I", info, 232)[0]
    except OSError:
        pass
    return -1


def recv(port, total, timeout):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    fix_buffers(ls)
    ls.bind(("0.0.0.0", port))
    ls.listen(1)
    print("listening", flush=True)
    deadline = time.monotonic() + timeout
    duration = total == 0
    if duration:
        total = 1 << 62
    ls.settimeout(timeout)
    try:
        c, _ = ls.accept()
    except socket.timeout:
        print("bytes=0 t_accept=0 t_last=0 verified=0 rcv_wnd=-1 rcvbuf=-1 t_end=0", flush=True)
        return 1
    t_accept = time.monotonic()
    if duration:
        deadline = t_accept + timeout
    got = 0
    ok = True
    t_last = t_accept
    max_wnd = -1
    while got < total:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        c.settimeout(left)
        try:
            d = c.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        if d != pattern_at(got, len(d)):
            ok = False
            break
        got += len(d)
        t_last = time.monotonic()
        w = rcv_wnd_of(c)
        if w > max_wnd:
            max_wnd = w
    t_end = min(time.monotonic(), deadline)
    rcvbuf = c.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    good = ok and (duration or got == total)
    print("bytes=%d t_accept=%.6f t_last=%.6f verified=%d rcv_wnd=%d rcvbuf=%d t_end=%.6f"
          % (got, t_accept, t_last, 1 if good else 0, max_wnd, rcvbuf, t_end),
          flush=True)
    return 0 if good else 1


def send(addr, port, total):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    fix_buffers(s)
    t0 = time.monotonic()
    print("t_connect=%.6f" % t0, flush=True)
    s.connect((addr, port))
    off = 0
    try:
        while total == 0 or off < total:
            n = 65536 if total == 0 else min(65536, total - off)
            off += s.send(pattern_at(off, n))
    except OSError:
        if total:   # in duration mode the receiver ends it
            raise
    s.close()
    return 0


PACKET_OUTGOING = 4
ETH_P_ALL = 3


def relay(if1, if2, ms):
    socks = []
    for name in (if1, if2):
        k = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        k.bind((name, 0))
        k.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        k.setblocking(False)
        socks.append(k)
    other = {socks[0].fileno(): socks[1], socks[1].fileno(): socks[0]}
    print("relaying", flush=True)
    held = []   # (release time, arrival order, out socket, frame)
    order = 0
    d = ms / 1000.0
    while True:
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, out, frame = heapq.heappop(held)
            try:
                out.send(frame)
            except OSError:
                pass   # ENOBUFS and the like: lost, as on a wire
        wait = max(0.0, held[0][0] - now) if held else 1.0
        r, _, _ = select.select(socks, [], [], wait)
        t = time.monotonic()
        for k in r:
            while True:
                try:
                    frame, addr = k.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:   # what this relay sent itself
                    continue
                heapq.heappush(held, (t + d, order, other[k.fileno()], frame))
                order += 1


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "recv":
        return recv(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    if len(sys.argv) >= 5 and sys.argv[1] == "send":
        return send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    if len(sys.argv) >= 5 and sys.argv[1] == "relay":
        return relay(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
