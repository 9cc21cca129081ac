#!/usr/bin/env bash
# Issue 5 interop: `ustcp get` against python3's http.server on the kernel side.
#   - 20 MB downloaded byte-exact (sha256), exit 0 (kernel -> ustcp bulk data)
#   - 404 -> exit 1; a body shorter than its Content-Length -> exit 1
#   - nobody listening -> exit 1, ECONNREFUSED
#   - bad usage -> one line, exit 2
# Needs root, /dev/net/tun, python3; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init get python3 sha256sum

mkdir -p "$tmp/www"
head -c 20000000 /dev/urandom > "$tmp/www/big.bin"
chmod -R a+rX "$tmp/www"
cat > "$tmp/short.py" <<'PY'
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', 8001)); s.listen(4)
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n' + b'x' * 5000)
    c.close()
PY
( cd "$tmp/www" && exec ip netns exec "$ns" timeout 120 python3 -m http.server 8000 ) > "$tmp/http.log" 2>&1 &
PIDS+=($!)
nsx timeout 120 python3 "$tmp/short.py" > /dev/null 2>&1 &
PIDS+=($!)
wait_listen 8000 && wait_listen 8001 || exit 1

t0=$(date +%s.%N)
nsx timeout 60 "$U" get --tun t0 --no-ctl http://10.7.0.1:8000/big.bin -o "$tmp/got.bin"
rc=$?
t1=$(date +%s.%N)
check "ustcp get 20 MB: exit 0 (got $rc)" [ "$rc" = 0 ]
check "ustcp get 20 MB: sha256 matches" [ "$(sha "$tmp/got.bin")" = "$(sha "$tmp/www/big.bin")" ]
echo "throughput kernel -> ustcp (ustcp get, 20 MB): $(rate 20000000 "$(python3 -c "print($t1-$t0)")") MB/s"

nsx timeout 20 "$U" get --tun t0 --no-ctl http://10.7.0.1:8000/missing -o "$tmp/m.bin" 2> "$tmp/m.err"
rc=$?
cat "$tmp/m.err"
check "404: exit 1 (got $rc)" bash -c "[ $rc = 1 ] && grep -q 404 '$tmp/m.err'"

nsx timeout 20 "$U" get --tun t0 --no-ctl http://10.7.0.1:8001/ -o "$tmp/s.bin" 2> "$tmp/s.err"
rc=$?
cat "$tmp/s.err"
check "short body: exit 1 (got $rc), reported" bash -c "[ $rc = 1 ] && grep -q 'short body: 5000 of 100000' '$tmp/s.err'"

nsx timeout 20 "$U" get --tun t0 --no-ctl http://10.7.0.1:8999/ 2> "$tmp/r.err"
rc=$?
cat "$tmp/r.err"
check "no listener: exit 1 (got $rc), ECONNREFUSED" bash -c "[ $rc = 1 ] && grep -q ECONNREFUSED '$tmp/r.err'"

for bad in "--bogus" "ftp://10.7.0.1/" "http://example.com/" "--timeout x http://10.7.0.1/"; do
  # shellcheck disable=SC2086
  timeout 5 "$U" get $bad > /dev/null 2> "$tmp/u.err"
  rc=$?
  check "usage error '$bad': exit 2, one line" bash -c "[ $rc = 2 ] && [ \$(wc -l < '$tmp/u.err') = 1 ]"
done
finish
