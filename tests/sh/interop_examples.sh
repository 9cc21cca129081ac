#!/usr/bin/env bash
# Issue 5: the two example programs on a TUN device, with the kernel's socat and
# python3 as clients (A1: blocking and event-driven use).
#   examples/echo_blocking  the seeds' shape (socket, bind, listen, accept, read,
#                           write, close in one thread): 1 MB echoed byte-exact
#   examples/echo_events    ready callback: 20 clients at once, each line back in
#                           upper case
# Needs root, /dev/net/tun, socat, python3 and the built examples; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
B=${USTCP_BUILD_DIR:-$(dirname "$U")}
[ -x "$B/examples/echo_blocking" ] && [ -x "$B/examples/echo_events" ] || skip "examples not built in $B/examples"
interop_init examples socat python3

head -c 1000000 /dev/urandom > "$tmp/in.bin"
nsx timeout 60 "$B/examples/echo_blocking" --once t0 10.7.0.2 10.7.0.1 7 > "$tmp/blocking.log" 2>&1 &
bpid=$!
PIDS+=($bpid)
for i in $(seq 1 50); do nsx ping -c 1 -W 1 -q 10.7.0.2 > /dev/null 2>&1 && break; sleep 0.1; done
nsx timeout 20 socat -t 5 - TCP:10.7.0.2:7 < "$tmp/in.bin" > "$tmp/out.bin"
check "echo_blocking: 1 MB echoed byte-exact" cmp -s "$tmp/in.bin" "$tmp/out.bin"
for i in $(seq 1 50); do kill -0 "$bpid" 2>/dev/null || break; sleep 0.1; done
check "echo_blocking --once: exits after its client" bash -c "! kill -0 $bpid 2>/dev/null"

nsx timeout 60 "$B/examples/echo_events" t1 10.7.0.2 10.7.0.1 7 > "$tmp/events.log" 2>&1 &
PIDS+=($!)
for i in $(seq 1 50); do nsx ping -c 1 -W 1 -q 10.7.0.2 > /dev/null 2>&1 && break; sleep 0.1; done
nsx timeout 30 python3 - > "$tmp/events.out" 2>&1 <<'PY'
import socket, threading
ok = []
def client(i):
    s = socket.create_connection(('10.7.0.2', 7), timeout=10)
    lines = [('client %d line %d\n' % (i, k)) for k in range(200)]
    s.sendall(''.join(lines).encode())
    s.shutdown(socket.SHUT_WR)
    got = b''
    while True:
        d = s.recv(65536)
        if not d: break
        got += d
    s.close()
    ok.append(got.decode() == ''.join(lines).upper())
ts = [threading.Thread(target=client, args=(i,)) for i in range(20)]
for t in ts: t.start()
for t in ts: t.join()
print('%d of %d clients ok' % (sum(ok), len(ts)))
PY
cat "$tmp/events.out"
check "echo_events: 20 concurrent clients served" grep -q "^20 of 20 clients ok" "$tmp/events.out"
finish
