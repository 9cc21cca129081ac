#!/usr/bin/env bash
# Issue 5 interop: echo, closes and half-close between ustcp and the Linux kernel.
#   a) kernel client (socat) -> `ustcp serve --echo`: 3 MB echoed byte-exact; the
#      kernel closes first and is the one in TIME-WAIT (ss -tan), not ustcp (W10)
#   b) `ustcp connect` -> kernel echo server (python3): 3 MB byte-exact; ustcp
#      closes first (end of stdin) and is the one in TIME_WAIT (ustcp stat)
#   c) the kernel server sends and closes first while ustcp's stdin stays open:
#      ustcp gets EOF, closes (LAST_ACK), the kernel is in TIME-WAIT (W2)
#   d) half-close: ustcp shuts down writing at the end of stdin and keeps
#      receiving the kernel's answer until the kernel's EOF (W7)
#   e) connect to a kernel port with no listener: ECONNREFUSED (H3)
# Needs root, /dev/net/tun, socat, python3; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init echo socat python3 sha256sum

head -c 3000000 /dev/urandom > "$tmp/in.bin"
cat > "$tmp/servers.py" <<'PY'
import socket, sys, threading, hashlib
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', port)); s.listen(16)
def echo(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
def talk_first(c):                 # sends, then closes first
    c.sendall(open(sys.argv[3], 'rb').read()); c.close()
def half_close(c):                 # reads to EOF, then answers, then closes
    h = hashlib.sha256(); n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        h.update(d); n += len(d)
    c.sendall(('%d %s\n' % (n, h.hexdigest())).encode())
    c.sendall(open(sys.argv[3], 'rb').read()); c.close()
fn = {'echo': echo, 'talk': talk_first, 'half': half_close}[mode]
while True:
    c, _ = s.accept()
    threading.Thread(target=fn, args=(c,), daemon=True).start()
PY

ctl=$tmp/ctl.sock
ustcp_bg serve serve --echo --tun t0 --ctl "$ctl"
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }

# a) kernel client, kernel closes first
nsx timeout 30 socat -t 10 - TCP:10.7.0.2:7,sourceport=41000 < "$tmp/in.bin" > "$tmp/a.out"
check "a) socat -> ustcp echo: exit 0, 3 MB byte-exact" cmp -s "$tmp/in.bin" "$tmp/a.out"
sleep 0.2
nsx ss -tan > "$tmp/ss.txt"
timeout 10 "$U" stat --ctl "$ctl" > "$tmp/stat.txt"
check "a) kernel closed first: kernel TIME-WAIT for :41000" grep -q "TIME-WAIT.*10.7.0.1:41000 " "$tmp/ss.txt"
check "a) kernel closed first: ustcp has no TIME_WAIT" bash -c "! grep -q 'TIME_WAIT' '$tmp/stat.txt'"
kill "${PIDS[0]}" 2>/dev/null; wait "${PIDS[0]}" 2>/dev/null

# b) ustcp client, ustcp closes first (stdin ends: FIN), kernel echo server
nsx timeout 60 python3 "$tmp/servers.py" echo 7100 > /dev/null 2>&1 &
PIDS+=($!)
nsx timeout 60 python3 "$tmp/servers.py" talk 7200 "$tmp/in.bin" > /dev/null 2>&1 &
PIDS+=($!)
nsx timeout 60 python3 "$tmp/servers.py" half 7300 "$tmp/in.bin" > /dev/null 2>&1 &
PIDS+=($!)
wait_listen 7100 && wait_listen 7200 && wait_listen 7300 || exit 1
ctl2=$tmp/ctl2.sock
nsx timeout 30 "$U" connect 10.7.0.1:7100 --tun t1 --ctl "$ctl2" --port-local 42000 --linger 10 \
  < "$tmp/in.bin" > "$tmp/b.out" 2> "$tmp/b.err" &
cpid=$!
# while it lingers after the close: who is in TIME_WAIT?
for i in $(seq 1 100); do
  [ -s "$tmp/b.out" ] && [ "$(stat -c %s "$tmp/b.out")" = 3000000 ] && break
  sleep 0.1
done
# The close handshake ends when the kernel's echo server has sent everything
# back and closed: poll (a fixed sleep lost this race on a loaded machine).
for i in $(seq 1 80); do
  timeout 10 "$U" stat --ctl "$ctl2" > "$tmp/stat_b.txt" 2>&1
  grep -q "TIME_WAIT.*10.7.0.2:42000" "$tmp/stat_b.txt" && break
  sleep 0.1
done
nsx ss -tan > "$tmp/ss_b.txt"
wait $cpid
rc=$?
cat "$tmp/b.err"
check "b) ustcp connect -> kernel echo: exit 0 (got $rc)" [ "$rc" = 0 ]
check "b) 3 MB echoed byte-exact" cmp -s "$tmp/in.bin" "$tmp/b.out"
cat "$tmp/stat_b.txt"
check "b) ustcp closed first: ustcp TIME_WAIT with 10.7.0.1:7100" \
  grep -q "TIME_WAIT.*10.7.0.2:42000.*10.7.0.1:7100 " "$tmp/stat_b.txt"
check "b) ustcp closed first: no kernel TIME-WAIT for it" bash -c "! grep -q 'TIME-WAIT.*10.7.0.2:42000' '$tmp/ss_b.txt'"

# c) the kernel server talks and closes first; ustcp's stdin stays open (a FIFO
# this script holds), so only the peer's FIN ends the session
mkfifo "$tmp/fifo"
exec 9<> "$tmp/fifo"
nsx timeout 30 "$U" connect 10.7.0.1:7200 --tun t1 --no-ctl --port-local 43000 \
  < "$tmp/fifo" > "$tmp/c.out" 2> "$tmp/c.err"
rc=$?
exec 9>&-
cat "$tmp/c.err"
check "c) kernel sends and closes first: exit 0 (got $rc), 3 MB byte-exact" \
  bash -c "[ $rc = 0 ] && cmp -s '$tmp/in.bin' '$tmp/c.out'"
nsx ss -tan > "$tmp/ss_c.txt"
check "c) kernel closed first: kernel TIME-WAIT for 10.7.0.1:7200" \
  grep -q "TIME-WAIT.*10.7.0.1:7200 *10.7.0.2:43000" "$tmp/ss_c.txt"

# d) half-close: our FIN first, then the kernel's whole answer, then its FIN
nsx timeout 30 "$U" connect 10.7.0.1:7300 --tun t1 --no-ctl < "$tmp/in.bin" > "$tmp/d.out" 2> "$tmp/d.err"
rc=$?
cat "$tmp/d.err"
want="3000000 $(sha "$tmp/in.bin")"
check "d) half-close: the kernel got all 3 MB before our FIN" [ "$(head -1 "$tmp/d.out")" = "$want" ]
tail -c +$(( ${#want} + 2 )) "$tmp/d.out" > "$tmp/d.body"
check "d) half-close: ustcp kept receiving after its FIN (3 MB byte-exact), exit $rc" \
  bash -c "[ $rc = 0 ] && cmp -s '$tmp/in.bin' '$tmp/d.body'"

# e) no listener on the kernel side
nsx timeout 10 "$U" connect 10.7.0.1:7999 --tun t1 --no-ctl < /dev/null > /dev/null 2> "$tmp/e.err"
rc=$?
cat "$tmp/e.err"
check "e) connect to a closed kernel port: exit 1 with ECONNREFUSED" \
  bash -c "[ $rc = 1 ] && grep -q ECONNREFUSED '$tmp/e.err'"
finish
