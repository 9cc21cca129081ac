#!/usr/bin/env bash
# Issue 17 points 1-2: unmodified programs on ustcp through LD_PRELOAD
# (libustcp_preload.so), each against the Linux kernel over TUN in a namespace
# this test creates and removes:
#   - a Python program exercising the calls and poll/select/epoll with kernel
#     descriptors mixed in (tests/sh/preload_mixed.py), against a socat echo;
#   - clients: curl and wget (on ustcp) download 100 MB byte-exact from the
#     kernel's python3 -m http.server;
#   - servers: python3 -m http.server, nginx and redis-server on ustcp, driven
#     by the kernel's curl (100 MB byte-exact), ab (keep-alive and not) and
#     redis-benchmark / redis-cli; the figures are printed.
# Needs root, /dev/net/tun and the programs (scripts/install-test-deps.sh
# installs them); otherwise SKIP. Skipped under ASan: an instrumented preload
# library cannot be loaded into uninstrumented programs (the plain run tests it).
. "$(dirname "$0")/interop_lib.bash"
[ "${USTCP_SANITIZED:-0}" = 1 ] && skip "sanitized build: the plain run of the suite tests the preload library"
PRE=${USTCP_BUILD_DIR:?}/libustcp_preload.so
[ -f "$PRE" ] || skip "$PRE not built"
interop_init preload curl wget python3 socat nginx redis-server redis-benchmark redis-cli ab sha256sum

head -c 100000000 /dev/urandom > "$tmp/big.bin"
echo hello > "$tmp/index.html"
chmod -R a+rX "$tmp"
want=$(sha "$tmp/big.bin")

# preloaded PROGRAM on TUN device DEV with ustcp address 10.7.N.2, kernel 10.7.N.1
pre() {
  local n=$1; shift
  nsx env LD_PRELOAD="$PRE" USTCP_TUN=t$n USTCP_ADDR=10.7.$n.2 USTCP_PEER=10.7.$n.1 "$@"
}
wait_dev() {
  local i
  for i in $(seq 1 100); do
    ip -n "$ns" -4 addr show "$1" 2>/dev/null | grep -q inet && return 0
    sleep 0.1
  done
  echo "device $1 did not come up"; return 1
}
wait_port() {   # ADDR PORT: until the kernel can connect (max 10 s)
  local i
  for i in $(seq 1 100); do
    nsx timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing answers on $1:$2"; return 1
}

# 1. the calls, mixed descriptor sets
nsx timeout 100 socat TCP-LISTEN:7000,fork,reuseaddr EXEC:cat > "$tmp/socat.log" 2>&1 &
PIDS+=($!)
wait_listen 7000
pre 1 timeout 60 python3 "$SRC/tests/sh/preload_mixed.py" 10.7.1.1 7000 > "$tmp/mixed.log" 2>&1
rc=$?
cat "$tmp/mixed.log"
check "preload_mixed.py: every call and readiness check (exit $rc)" [ "$rc" = 0 ]

# 2. clients on ustcp: curl and wget from the kernel's http.server
(cd "$tmp" && exec ip netns exec "$ns" timeout 150 python3 -m http.server 8000 --bind 0.0.0.0) > "$tmp/kpy.log" 2>&1 &
PIDS+=($!)
wait_listen 8000
t0=$(date +%s.%N)
pre 2 timeout 60 curl -sS -o "$tmp/curl.bin" http://10.7.2.1:8000/big.bin 2> "$tmp/curl.log"
rc=$?; t1=$(date +%s.%N)
check "curl on ustcp: 100 MB from the kernel, exit $rc" [ "$rc" = 0 ]
check "curl on ustcp: sha256 matches" [ "$(sha "$tmp/curl.bin")" = "$want" ]
echo "curl on ustcp <- kernel http.server: $(rate 100000000 "$(python3 -c "print($t1-$t0)")") MB/s"
rm -f "$tmp/curl.bin"
pre 3 timeout 60 wget -q -O "$tmp/wget.bin" http://10.7.3.1:8000/big.bin 2> "$tmp/wget.log"
rc=$?
check "wget on ustcp: 100 MB from the kernel, exit $rc" [ "$rc" = 0 ]
check "wget on ustcp: sha256 matches" [ "$(sha "$tmp/wget.bin")" = "$want" ]
rm -f "$tmp/wget.bin"

# 3. servers on ustcp
(cd "$tmp" && pre 4 timeout 100 python3 -m http.server 80 --bind 0.0.0.0) > "$tmp/upy.log" 2>&1 &
PIDS+=($!)
wait_dev t4 && wait_port 10.7.4.2 80
nsx timeout 60 curl -sS -o "$tmp/py.bin" http://10.7.4.2/big.bin
rc=$?
check "python3 http.server on ustcp: kernel curl 100 MB, exit $rc" [ "$rc" = 0 ]
check "python3 http.server on ustcp: sha256 matches" [ "$(sha "$tmp/py.bin")" = "$want" ]
rm -f "$tmp/py.bin"

mkdir -p "$tmp/ngx"
cat > "$tmp/ngx/nginx.conf" <<NGX
daemon off;
master_process off;
worker_processes 1;
error_log $tmp/ngx/error.log notice;
pid $tmp/ngx/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $tmp/ngx; proxy_temp_path $tmp/ngx; fastcgi_temp_path $tmp/ngx;
  uwsgi_temp_path $tmp/ngx; scgi_temp_path $tmp/ngx;
  server { listen 80; root $tmp; }
}
NGX
pre 5 timeout 100 nginx -c "$tmp/ngx/nginx.conf" -p "$tmp/ngx" > "$tmp/nginx.log" 2>&1 &
PIDS+=($!)
wait_dev t5 && wait_port 10.7.5.2 80
nsx timeout 60 curl -sS -o "$tmp/ngx.bin" http://10.7.5.2/big.bin
rc=$?
check "nginx on ustcp: kernel curl 100 MB (sendfile), exit $rc" [ "$rc" = 0 ]
check "nginx on ustcp: sha256 matches" [ "$(sha "$tmp/ngx.bin")" = "$want" ]
rm -f "$tmp/ngx.bin"
for k in "-k" ""; do
  nsx timeout 60 ab -q -n 5000 -c 20 $k http://10.7.5.2/index.html > "$tmp/ab.log" 2>&1
  rc=$?
  done_n=$(awk '/Complete requests/ {print $3}' "$tmp/ab.log")
  failed=$(awk '/Failed requests/ {print $3}' "$tmp/ab.log")
  non2xx=$(awk '/Non-2xx/ {print $3}' "$tmp/ab.log")
  check "nginx on ustcp: ab ${k:-(no keep-alive)} 5000 requests, all complete and 200 (rc $rc, $done_n done, $failed failed)" \
    [ "$rc" = 0 -a "$done_n" = 5000 -a "$failed" = 0 -a -z "$non2xx" ]
  echo "nginx on ustcp, ab -c 20 ${k:-(no keep-alive)}: $(awk '/Requests per second/ {print $4}' "$tmp/ab.log") req/s"
done

pre 6 timeout 100 redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save "" \
  --appendonly no --daemonize no > "$tmp/redis.log" 2>&1 &
PIDS+=($!)
wait_dev t6 && wait_port 10.7.6.2 6379
got=$(nsx timeout 10 redis-cli -h 10.7.6.2 set k ustcp-value >/dev/null && nsx timeout 10 redis-cli -h 10.7.6.2 get k)
check "redis-server on ustcp: SET then GET ($got)" [ "$got" = ustcp-value ]
nsx timeout 60 redis-benchmark -h 10.7.6.2 -n 20000 -c 20 -q -t set,get --csv > "$tmp/rb.csv" 2> "$tmp/rb.err"
rc=$?
nlines=$(grep -c '^"\(SET\|GET\)"' "$tmp/rb.csv")
check "redis-benchmark against redis on ustcp: SET and GET finished (rc $rc)" [ "$rc" = 0 -a "$nlines" = 2 ]
sed 's/^/redis on ustcp, redis-benchmark -c 20: /' "$tmp/rb.csv" | grep -v '"test"'
quiet() { ! grep -h "ustcp-preload:" "$tmp"/{curl,wget,upy,nginx,redis}*.log 2>/dev/null; }
check "no program reported an unsupported call" quiet
finish
