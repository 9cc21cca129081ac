#!/usr/bin/env bash
# Issue 5 interop: `ustcp serve --http` on a TUN device in a network namespace,
# against the Linux kernel's TCP (curl, python3, ping), with a tshark capture on
# the device.
#   - curl downloads 20 MB byte-exact (sha256), exit 0            (D4, D3)
#   - 50 small files on one keep-alive connection (curl globbing)
#   - HEAD, 404, no path traversal
#   - TIME_WAIT on the side that closed first: curl closes (kernel TIME-WAIT in
#     ss -tan), "Connection: close" makes ustcp close (TIME_WAIT in ustcp stat) (W10)
#   - a kernel connect to a ustcp port with no listener: "Connection refused" (H3)
#   - ping answers; UDP gets ICMP port unreachable (ECONNREFUSED on the socket)
#   - the capture: no malformed packets, no bad TCP/IP checksums, and every
#     connection's handshake and four-way close (H1, H2, W1, W2)
# Needs root, /dev/net/tun, curl, python3, ping, tshark; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init http curl python3 ping tshark sha256sum

www=$tmp/www
mkdir -p "$www/s" "$tmp/k"
head -c 20000000 /dev/urandom > "$www/big.bin"
for i in $(seq 1 50); do head -c $((i * 97 + 13)) /dev/urandom > "$www/s/f$i.bin"; done
echo "<h1>ustcp</h1>" > "$www/index.html"
echo secret > "$tmp/outside.txt"
chmod -R a+rX "$www"

ctl=$tmp/ctl.sock
ustcp_bg serve serve --http "$www" --tun t0 --addr 10.7.0.2 --peer 10.7.0.1 --ctl "$ctl"
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }

# tshark on the kernel's side of the device, for the whole session
# -B 64: the 20 MB download arrives at ~150 MB/s; with dumpcap's default 2 MiB
# buffer a busy CI machine dropped packets, among them stream 0's FINs (CI of
# 2026-12-03: "stream 0 ... FIN kernel 0, ustcp 0"). 64 MiB holds the whole
# download, so a check below fails only for what ustcp put on the wire.
nsx timeout 120 tshark -q -B 64 -F pcap -i t0 -w "$tmp/cap.pcap" > "$tmp/tshark.log" 2>&1 &
tshark_pid=$!
PIDS+=($tshark_pid)
for i in $(seq 1 100); do grep -q "Capturing" "$tmp/tshark.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5   # tshark announces before its capture is live

# ping
check "ping 10.7.0.2 answers" nsx ping -c 3 -i 0.2 -W 2 -q 10.7.0.2

# 20 MB download
t0=$(date +%s.%N)
nsx curl -sS --max-time 60 --local-port 40000 -o "$tmp/got.bin" http://10.7.0.2/big.bin
rc=$?
t1=$(date +%s.%N)
check "curl 20 MB: exit status 0 (got $rc)" [ "$rc" = 0 ]
check "curl 20 MB: sha256 matches" [ "$(sha "$tmp/got.bin")" = "$(sha "$www/big.bin")" ]
echo "throughput ustcp -> kernel (curl, 20 MB): $(rate 20000000 "$(python3 -c "print($t1-$t0)")") MB/s"

# keep-alive: 50 files, one connection
nsx curl -sS --max-time 30 --local-port 40001 -w '%{num_connects}\n' -o "$tmp/k/f#1.bin" \
  "http://10.7.0.2/s/f[1-50].bin" > "$tmp/connects.txt"
rc=$?
check "curl 50 files keep-alive: exit status 0" [ "$rc" = 0 ]
n=$(awk '{s += $1} END {print s + 0}' "$tmp/connects.txt")
check "curl 50 files keep-alive: one connection (connects: $n)" [ "$n" = 1 ]
check "curl 50 files keep-alive: all byte-exact" diff -r "$www/s" "$tmp/k"

# HEAD, 404, traversal
nsx curl -sS --max-time 10 -I http://10.7.0.2/big.bin > "$tmp/head.txt"
check "HEAD: 200 with Content-Length 20000000" \
  grep -qi "^content-length: 20000000" "$tmp/head.txt"
code=$(nsx curl -sS --max-time 10 -o /dev/null -w '%{http_code}' http://10.7.0.2/nonexistent)
check "404 for a missing file (got $code)" [ "$code" = 404 ]
for path in "/../outside.txt" "/%2e%2e/outside.txt" "/s/../../outside.txt" "/..%2foutside.txt"; do
  nsx curl -sS --max-time 10 --path-as-is -o "$tmp/trav.txt" -w '%{http_code}' "http://10.7.0.2$path" > "$tmp/trav.code"
  code=$(cat "$tmp/trav.code")
  check "no path traversal: $path -> $code" bash -c "[ '$code' != 200 ] && ! grep -q secret '$tmp/trav.txt'"
done

# Who closed first is in TIME_WAIT. Port 40000/40001: curl closed (kernel first).
nsx ss -tan > "$tmp/ss1.txt"
check "curl closed first: kernel TIME-WAIT for :40001" grep -q "TIME-WAIT.*10.7.0.1:40001 " "$tmp/ss1.txt"
timeout 10 "$U" stat --ctl "$ctl" > "$tmp/stat1.txt"
check "curl closed first: no ustcp TIME_WAIT with :40001" bash -c "! grep -q 'TIME_WAIT.*10.7.0.1:40001 ' '$tmp/stat1.txt'"
# "Connection: close": ustcp closes first
# A client that reads to the end of the stream before it closes, so the order
# is certain: curl closes as soon as Content-Length is satisfied, and when
# ustcp's FIN came a moment after the body both sides closed at once (both in
# TIME_WAIT), which failed this check now and then on a loaded machine.
nsx timeout 20 python3 -c '
import socket, sys
s = socket.socket()
s.bind(("10.7.0.1", 40002))
s.settimeout(10)
s.connect(("10.7.0.2", 80))
s.sendall(b"GET / HTTP/1.1\r\nHost: 10.7.0.2\r\nConnection: close\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
s.close()
sys.stdout.buffer.write(data.split(b"\r\n\r\n", 1)[1])' > "$tmp/idx.html"
check "Connection: close: body" cmp -s "$tmp/idx.html" "$www/index.html"
sleep 0.3
timeout 10 "$U" stat --ctl "$ctl" > "$tmp/stat2.txt"
cat "$tmp/stat2.txt"
check "ustcp closed first: ustcp TIME_WAIT with :40002" grep -q "TIME_WAIT.*10.7.0.1:40002 " "$tmp/stat2.txt"
nsx ss -tan > "$tmp/ss2.txt"
check "ustcp closed first: no kernel TIME-WAIT for :40002" bash -c "! grep -q 'TIME-WAIT.*:40002 ' '$tmp/ss2.txt'"

# A port nobody listens on: the kernel's client sees "Connection refused" (RST).
nsx timeout 20 python3 -c "
import socket
try:
    socket.create_connection(('10.7.0.2', 81), timeout=5)
except OSError as e:
    print(e)
" > "$tmp/refused.txt" 2>&1
check "kernel connect to a closed ustcp port: Connection refused ($(cat "$tmp/refused.txt"))" \
  grep -q "Connection refused" "$tmp/refused.txt"

# UDP: ICMP port unreachable (the kernel reports ECONNREFUSED on the next call)
nsx timeout 20 python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('10.7.0.2', 9999))
s.send(b'hello')
time.sleep(0.3)
try:
    s.send(b'again'); s.settimeout(1); s.recv(10)
except OSError as e:
    print(e)
" > "$tmp/udp.txt" 2>&1
check "UDP to ustcp: ICMP port unreachable ($(cat "$tmp/udp.txt"))" grep -q "Connection refused" "$tmp/udp.txt"
timeout 10 "$U" stat --ctl "$ctl" -s > "$tmp/counters.txt"
check "counters: icmp_in and icmp_out counted" \
  awk '$1=="icmp_in" && $2>=3 {a=1} $1=="icmp_out" && $2>=4 {b=1} END {exit !(a && b)}' "$tmp/counters.txt"

# The capture
sleep 0.5
kill -INT "$tshark_pid" 2>/dev/null   # timeout passes it on to tshark
for i in $(seq 1 100); do kill -0 "$tshark_pid" 2>/dev/null || break; sleep 0.1; done
check "capture written" [ -s "$tmp/cap.pcap" ]
# dumpcap reports drops as "N packets dropped ..." on exit
drops=$(grep -oE '[0-9]+ packets? dropped' "$tmp/tshark.log" | awk '{s += $1} END {print s + 0}')
check "capture complete: the kernel dropped no packets ($drops dropped)" [ "$drops" = 0 ]
# One exception, the kernel's own: when a segment's checksum comes out 0, Linux
# writes 0xFFFF (skb_checksum_help's CSUM_MANGLED_0; equal in one's complement,
# and ustcp accepts both), which tshark calls bad. About 1 kernel segment in
# 65536, so a 20 MB run meets it now and then. ustcp's own segments get no pass.
tshark -r "$tmp/cap.pcap" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE \
  -o udp.check_checksum:TRUE -Y '_ws.malformed || _ws.expert.severity == "Error" ||
  (tcp.checksum.status == "Bad" && !(tcp.checksum == 0xffff && ip.src == 10.7.0.1)) ||
  ip.checksum.status == "Bad"' > "$tmp/bad.txt" 2> /dev/null
head -5 "$tmp/bad.txt"
check "tshark: no malformed packets, no checksum errors ($(wc -l < "$tmp/bad.txt") bad)" [ ! -s "$tmp/bad.txt" ]
tshark -r "$tmp/cap.pcap" -o tcp.check_checksum:TRUE -q -z expert,error 2>/dev/null | grep -v "^Running" > "$tmp/expert.txt"
check "tshark expert info: no errors" bash -c "! grep -qiE 'malformed|checksum' '$tmp/expert.txt'"
# Keep-alive responses (port 40001): the header never leaves alone. Sent as
# its own segment, Nagle held the body until the client's delayed ACK of the
# header (~40 ms a request). Every segment starting "HTTP/1.1" must carry body
# bytes after the blank line.
tshark -r "$tmp/cap.pcap" -Y 'tcp.srcport == 80 && tcp.dstport == 40001 && tcp.len > 0' \
  -T fields -e tcp.payload 2>/dev/null > "$tmp/ka.txt"
resp=$(grep -c '^485454502f312e31' "$tmp/ka.txt" || true)
alone=$(grep -c '^485454502f312e31.*0d0a0d0a$' "$tmp/ka.txt" || true)
check "keep-alive: $resp responses, $alone with the header alone in its segment" [ "$resp:$alone" = 50:0 ]
# every TCP connection in the capture: SYN, SYN-ACK, FIN both ways
tshark -r "$tmp/cap.pcap" -Y tcp -T fields -e tcp.stream -e ip.src -e tcp.flags.syn \
  -e tcp.flags.ack -e tcp.flags.fin -e tcp.flags.reset 2>/dev/null > "$tmp/flags.txt"
for s in $(cut -f1 "$tmp/flags.txt" | sort -un); do
  f=$(awk -v s="$s" '$1 == s' "$tmp/flags.txt")
  syn=$(echo "$f" | awk '$3==1 && $4==0' | wc -l)
  synack=$(echo "$f" | awk '$3==1 && $4==1' | wc -l)
  rst=$(echo "$f" | awk '$6==1' | wc -l)
  fin_k=$(echo "$f" | awk '$2=="10.7.0.1" && $5==1' | wc -l)
  fin_u=$(echo "$f" | awk '$2=="10.7.0.2" && $5==1' | wc -l)
  if [ "$rst" -gt 0 ]; then
    # the refused connect (port 81): SYN answered by RST|ACK (H3)
    check "stream $s: refused with RST" [ "$syn" -ge 1 -a "$synack" = 0 ]
  else
    check "stream $s: handshake (SYN $syn, SYN-ACK $synack) and close (FIN kernel $fin_k, ustcp $fin_u)" \
      [ "$syn" -ge 1 -a "$synack" -ge 1 -a "$fin_k" -ge 1 -a "$fin_u" -ge 1 ]
  fi
done
# and the seeds' labels for the Connection: close one
n=$("$U" trace --list "$tmp/cap.pcap" 2>/dev/null | grep -n ":40002" | head -1 | cut -d: -f1)
if [ -n "$n" ]; then
  "$U" trace --no-color --conn "$n" "$tmp/cap.pcap" > "$tmp/trace.txt" 2>&1
  # ustcp closes first; curl answers with FIN+ACK at once, so the second and
  # third waves ride one segment ("second+third wave", W3's three-segment close)
  for w in "first handshake" "second handshake" "third handshake" "first wave" "third wave" "fourth wave"; do
    check "ustcp trace of the capture labels '$w'" grep -q "$w" "$tmp/trace.txt"
  done
else
  check "ustcp trace lists the :40002 connection" false
fi
finish
