#!/usr/bin/env bash
# bench/apps.sh (`make bench`, or alone): programs nobody here wrote, on ustcp
# through LD_PRELOAD, beside the same programs on the kernel, in one run.
#
#   ustcp side : nginx / redis-server with LD_PRELOAD=libustcp_preload.so on a
#                TUN device in namespace U; the client (ab, wrk, curl,
#                redis-benchmark) is the kernel's, in the same namespace, so its
#                packets cross the TUN device into ustcp (user-space TCP,
#                software checksums, one read/write syscall per packet, the stack
#                on its own thread beside the server's).
#   kernel side: the same server binaries and config on the kernel's TCP in
#                namespace K, the same client in namespace C, joined by a veth
#                pair (checksum offload and GSO/GRO as veth has them by default).
# Both servers: one process (nginx master_process off, 1 worker). Same machine,
# same cores (no pinning on either side), runs interleaved ustcp, kernel,
# ustcp, kernel ... APPS_REPS times each (default 5) after one discarded warm-up;
# median and interquartile range per row, the load average before and after,
# and a warning when the machine was busy. Payloads are checked: ab counts
# length mismatches as failures (a row with any failure is marked), the bulk
# row compares sha256 of every download.
#
# `ustcp serve` (what a user runs, issue 15 point 5), with TUN offloads:
#   --http  beside nginx on the kernel (ab -k, ab, wrk, curl; APPS_SERVE_ROWS)
#   --discard  beside kernel_bench serve's discard port on the kernel (5003:
#           recv(MSG_TRUNC), the bytes dropped in the kernel without a copy or
#           a check, as ustcp serve --discard drops them where they lie without
#           a check); the client is kernel_bench bulk (the kernel's TCP: one
#           write() of 256 KiB at a time from the pattern, shutdown, then it
#           waits for the server's close, so every byte was taken in) sending
#           APPS_DISCARD_BYTES (1 GiB; 256 MiB with BENCH_QUICK=1) per
#           repetition (APPS_DISCARD_ROWS="" for none). Neither server checks
#           the payload here: the checked transfers are bench/run.sh's TUN rows.
# Needs root, nginx, redis-server, redis-tools, apache2-utils, wrk, curl
# (and $BUILD/bench/kernel_bench for the discard rows).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
PRE=$BUILD/libustcp_preload.so
REPS=${APPS_REPS:-5}
# Bounded time: every measurement has its own timeout; no repetition starts
# after APPS_WALL seconds (default 1800; the table then says how many ran), and
# the servers live APPS_WALL + 600 s at most (bench/run.sh bounds the whole
# script as well).
APPS_WALL=${APPS_WALL:-1800}
SRV_WALL=$((APPS_WALL + 600))
for c in nginx redis-server redis-benchmark ab wrk curl ip python3; do
  command -v $c >/dev/null || { echo "apps bench: $c missing (apt-get install nginx-light redis-server redis-tools apache2-utils wrk curl)" >&2; exit 1; }
done
[ -f "$PRE" ] || { echo "apps bench: $PRE missing; build first" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "apps bench: needs root" >&2; exit 1; }

TAG=$$$(printf '%04x' $((RANDOM % 65536)))
NU=ustcpa-$TAG-u; NC=ustcpa-$TAG-c; NK=ustcpa-$TAG-k
tmp=$(mktemp -d); chmod 755 "$tmp"
cleanup() {
  for n in "$NU" "$NC" "$NK"; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  sleep 0.3
  for n in "$NU" "$NC" "$NK"; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$n" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
for n in "$NU" "$NC" "$NK"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add va$TAG netns "$NC" type veth peer name vb$TAG netns "$NK"
ip -n "$NC" addr add 10.78.0.1/24 dev va$TAG; ip -n "$NC" link set va$TAG up
ip -n "$NK" addr add 10.78.0.2/24 dev vb$TAG; ip -n "$NK" link set vb$TAG up

head -c 100000000 /dev/urandom > "$tmp/big.bin"
head -c 612 /dev/urandom | base64 > "$tmp/index.html"
want=$(sha256sum "$tmp/big.bin" | cut -d' ' -f1)
mk_conf() {  # DIR
  mkdir -p "$1"
  cat > "$1/nginx.conf" <<NGX
daemon off;
master_process off;
worker_processes 1;
error_log $1/error.log error;
pid $1/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  client_body_temp_path $1; proxy_temp_path $1; fastcgi_temp_path $1; uwsgi_temp_path $1; scgi_temp_path $1;
  server { listen 80; root $tmp; }
}
NGX
}
mk_conf "$tmp/nu"; mk_conf "$tmp/nk"
ip netns exec "$NU" env LD_PRELOAD="$PRE" USTCP_TUN=t0 timeout "$SRV_WALL" nginx -c "$tmp/nu/nginx.conf" -p "$tmp/nu" >"$tmp/nu.log" 2>&1 &
ip netns exec "$NK" timeout "$SRV_WALL" nginx -c "$tmp/nk/nginx.conf" -p "$tmp/nk" >"$tmp/nk.log" 2>&1 &
wait_up() {  # NS ADDR PORT
  for i in $(seq 1 100); do
    ip netns exec "$1" timeout 1 bash -c "exec 3<>/dev/tcp/$2/$3" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "apps bench: $2:$3 did not come up" >&2; exit 1
}
wait_up "$NU" 10.7.0.2 80; wait_up "$NC" 10.78.0.2 80
# redis: the ustcp one on a second device (t1, 10.7.1.x)
ip netns exec "$NU" env LD_PRELOAD="$PRE" USTCP_TUN=t1 USTCP_ADDR=10.7.1.2 USTCP_PEER=10.7.1.1 timeout "$SRV_WALL" \
  redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save "" --appendonly no >"$tmp/ru.log" 2>&1 &
ip netns exec "$NK" timeout "$SRV_WALL" redis-server --port 6379 --bind 0.0.0.0 --protected-mode no --save "" \
  --appendonly no >"$tmp/rk.log" 2>&1 &
wait_up "$NU" 10.7.1.2 6379; wait_up "$NC" 10.78.0.2 6379
# `ustcp serve --http` (what a user runs, issue 15 point 5) on a third device
# (t2, 10.7.2.x, TUN offloads on), serving the same directory, beside nginx on
# the kernel; the same clients in namespace U as for the preload rows.
USTCP_BIN=$BUILD/ustcp
ip netns exec "$NU" timeout "$SRV_WALL" "$USTCP_BIN" serve --http "$tmp" --port 80 --tun t2 --addr 10.7.2.2 \
  --peer 10.7.2.1 --no-ctl --offload >"$tmp/su.log" 2>&1 &
wait_up "$NU" 10.7.2.2 80
# `ustcp serve --discard` on a fourth device (t3, 10.7.3.x, TUN offloads on),
# port 5003, beside kernel_bench serve (its port 5003 discards) in namespace K.
KB=$BUILD/bench/kernel_bench
DROWS=${APPS_DISCARD_ROWS-"disc"}
if [ "${BENCH_QUICK:-0}" = 1 ]; then DISC_BYTES=${APPS_DISCARD_BYTES:-$((256 << 20))}
else DISC_BYTES=${APPS_DISCARD_BYTES:-$((1 << 30))}; fi
if [ -n "$DROWS" ] && [ ! -x "$KB" ]; then
  echo "apps bench: $KB missing: no ustcp serve --discard rows" >&2; DROWS=
fi
if [ -n "$DROWS" ]; then
  ip netns exec "$NU" timeout "$SRV_WALL" "$USTCP_BIN" serve --discard --port 5003 --tun t3 --addr 10.7.3.2 \
    --peer 10.7.3.1 --no-ctl --offload >"$tmp/sd.log" 2>&1 &
  timeout "$SRV_WALL" "$KB" serve --ns "$NK" --addr 10.78.0.2 >"$tmp/kd.log" 2>&1 &
  wait_up "$NU" 10.7.3.2 5003; wait_up "$NC" 10.78.0.2 5003
fi

# One measurement; prints the figure (or FAIL). SIDE is u or k.
measure() {
  local row=$1 side=$2 ns host rhost out
  case $side in
    u) ns=$NU; host=10.7.0.2; rhost=10.7.1.2 ;;
    s) ns=$NU; host=10.7.2.2; rhost=- ;;     # ustcp serve --http
    d) ns=$NU; host=10.7.3.2; rhost=- ;;     # ustcp serve --discard
    *) ns=$NC; host=10.78.0.2; rhost=10.78.0.2 ;;
  esac
  case $row in
    ab_k)  out=$(ip netns exec "$ns" timeout 60 ab -q -k -c 20 -n 50000 http://$host/index.html 2>&1)
           echo "$out" | awk '/Failed requests/ {f=$3} /Non-2xx/ {f+=$3} /Requests per second/ {r=$4} END {print (f==0 && r ? r : "FAIL")}' ;;
    ab)    out=$(ip netns exec "$ns" timeout 60 ab -q -c 20 -n 5000 http://$host/index.html 2>&1)
           echo "$out" | awk '/Failed requests/ {f=$3} /Non-2xx/ {f+=$3} /Requests per second/ {r=$4} END {print (f==0 && r ? r : "FAIL")}' ;;
    wrk)   out=$(ip netns exec "$ns" timeout 30 wrk -t1 -c100 -d3s http://$host/index.html 2>&1)
           echo "$out" | awk '/Non-2xx|Socket errors/ {bad=1} /Requests\/sec/ {r=$2} END {print (!bad && r ? r : "FAIL")}' ;;
    bulk)  local t0 t1
           t0=$(date +%s.%N)
           ip netns exec "$ns" timeout 60 curl -sS -o "$tmp/got.bin" http://$host/big.bin || { echo FAIL; return; }
           t1=$(date +%s.%N)
           [ "$(sha256sum "$tmp/got.bin" | cut -d' ' -f1)" = "$want" ] || { echo FAIL; return; }
           rm -f "$tmp/got.bin"
           python3 -c "print('%.1f' % (100.0 / ($t1 - $t0)))" ;;
    disc)  # Gbit/s of one kernel_bench bulk flow; 0 (a reset or the wall limit): FAIL
           out=$(timeout 90 "$KB" bulk --ns "$ns" --addr "$host" --port 5003 --bytes "$DISC_BYTES" --reps 1 \
                   --wall 80 --label disc 2>/dev/null)
           echo "$out" | awk '$1 == "R" && $2 == "bulk1500.disc" { v = $3 } END { print (v > 0 ? v : "FAIL") }' ;;
    rset|rget) local t=${row#r}
           out=$(ip netns exec "$ns" timeout 60 redis-benchmark -h $rhost -c 20 -n 50000 -q -t $t --csv 2>/dev/null)
           echo "$out" | awk -F'"' 'NR>1 && $4 {print $4; ok=1} END {if (!ok) print "FAIL"}' ;;
  esac
}
ROWS=${APPS_ROWS-"ab_k ab wrk bulk rset rget"}   # APPS_ROWS="" for none
# rows for `ustcp serve --http` (side s) against nginx on the kernel (side k)
SROWS=${APPS_SERVE_ROWS-"ab_k ab wrk bulk"}
declare -A WHAT=(
  [ab_k]="nginx, 612-byte file, ab -k -c 20 (keep-alive), req/s"
  [ab]="nginx, 612-byte file, ab -c 20 (a connection per request), req/s"
  [wrk]="nginx, 612-byte file, wrk -t1 -c100 keep-alive, req/s"
  [bulk]="nginx sendfile, 100 MB, curl, sha256 checked, MB/s"
  [rset]="redis-server SET, redis-benchmark -c 20, req/s"
  [rget]="redis-server GET, redis-benchmark -c 20, req/s"
  [disc]="kernel_bench bulk → discard server, 1 flow, $((DISC_BYTES >> 20)) MiB, MTU 1500, Gbit/s")
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for row in $ROWS; do measure $row u >/dev/null; measure $row k >/dev/null; done   # warm-up, discarded
for row in $SROWS; do measure $row s >/dev/null; done
for row in $DROWS; do measure $row d >/dev/null; measure $row k >/dev/null; done
declare -A V
done_reps=0
for rep in $(seq 1 "$REPS"); do
  if [ "$SECONDS" -gt "$APPS_WALL" ]; then
    echo "apps bench: APPS_WALL ($APPS_WALL s) reached after $done_reps repetitions" >&2
    break
  fi
  for row in $ROWS; do
    for side in u k; do V[$row,$side]="${V[$row,$side]:-} $(measure $row $side)"; done
  done
  for row in $SROWS; do
    V[$row,s]="${V[$row,s]:-} $(measure $row s)"
    # nginx on the kernel again, interleaved with this side (its own samples)
    V[$row,ks]="${V[$row,ks]:-} $(measure $row k)"
  done
  for row in $DROWS; do
    V[$row,d]="${V[$row,d]:-} $(measure $row d)"
    V[$row,kd]="${V[$row,kd]:-} $(measure $row k)"
  done
  done_reps=$rep
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
stats() {  # values... -> "median [q1-q3]" or FAIL
  python3 - "$@" <<'PY'
import sys, statistics
v = sys.argv[1:]
if not v or any(x == "FAIL" for x in v): print("FAIL"); sys.exit()
v = sorted(float(x) for x in v)
q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
print("%.0f [%.0f-%.0f]" % (statistics.median(v), q[0], q[2]) if v[-1] >= 100 else "%.1f [%.1f-%.1f]" % (statistics.median(v), q[0], q[2]))
PY
}
echo "### Programs on ustcp (LD_PRELOAD over TUN) vs the same programs on the kernel (veth)"
echo
echo "$done_reps interleaved reps each after a warm-up; median [interquartile range]. Load average before: $load_before; after: $load_after."
[ "$done_reps" -lt "$REPS" ] && echo "(**Stopped after $done_reps of $REPS repetitions: the time limit APPS_WALL=$APPS_WALL s was reached.**)"
# Run from bench/run.sh, APPS_MACHINE is the verdict of its pinned repetitions
# (how busy the CPUs it did not use were): the load average here would count
# those repetitions' own tasks. Alone, the load average before is all there is.
if [ -n "${APPS_MACHINE:-}" ]; then
  busy=$([ "$APPS_MACHINE" = busy ] && echo 1 || echo 0)
  echo "(The load average counts the benchmark's own processes; the machine was judged $APPS_MACHINE by bench/run.sh's repetitions before these rows.)"
else
  busy=$(python3 -c "print(1 if float('$load_before'.split()[0]) > $(nproc) * 0.75 else 0)")
fi
[ "$busy" = 1 ] && echo && echo "**Warning: the machine was busy during this run (other work beside the benchmark); ratios are noisy.**"
echo
echo "| row | ustcp (preload, TUN) | kernel (veth) | ratio |"
echo "|---|---|---|---|"
for row in $ROWS; do
  u=$(stats ${V[$row,u]:-}); k=$(stats ${V[$row,k]:-})
  ratio=$(python3 -c "
import statistics,sys
u='${V[$row,u]:-}'.split(); k='${V[$row,k]:-}'.split()
print('-' if 'FAIL' in u+k or not u or not k else '%.2f' % (statistics.median(map(float,u))/statistics.median(map(float,k))))")
  echo "| ${WHAT[$row]} | $u | $k | $ratio |"
done
if [ -n "$SROWS" ]; then
  echo
  echo "\`ustcp serve --http DIR --offload\` (ustcp's own file server on a TUN device, one thread, TUN offloads both ways) vs nginx on the kernel (veth), the same client in the same set-up, the same 612-byte file; reps interleaved with nginx's (its own samples):"
  echo
  echo "| row | ustcp serve --http (TUN) | nginx, kernel (veth) | ratio | target |"
  echo "|---|---|---|---|---|"
  for row in $SROWS; do
    u=$(stats ${V[$row,s]:-}); k=$(stats ${V[$row,ks]:-})
    ratio=$(python3 -c "
import statistics,sys
u='${V[$row,s]:-}'.split(); k='${V[$row,ks]:-}'.split()
print('-' if 'FAIL' in u+k or not u or not k else '%.2f' % (statistics.median(map(float,u))/statistics.median(map(float,k))))")
    tgt=-
    case $row in ab_k|wrk) tgt=$(python3 -c "print('-' if '$ratio' == '-' else ('>= 0.8: met' if float('$ratio') >= 0.8 else '>= 0.8: MISSED'))") ;; esac
    echo "| ${WHAT[$row]/nginx, /} | $u | $k | $ratio | $tgt |"
  done
fi
if [ -n "$DROWS" ]; then
  echo
  echo "\`ustcp serve --discard --offload\` (ustcp's own discard server on a TUN device, one thread, TUN offloads both ways: the kernel's GSO frames of up to 64 KiB per read, their checksums not computed by the kernel (CHECKSUM_PARTIAL, a local sender) and accepted by ustcp without verification, as bench/run.sh's [e]; the bytes consumed in the receive buffer by ustcp_recv_direct, no copy, no check) vs kernel_bench serve's discard port on the kernel (veth, offloads on; one epoll process, recv(MSG_TRUNC): the kernel drops the bytes without copying them to user space, no check); the same client, kernel_bench bulk (the kernel's TCP, one 256 KiB write() at a time, then shutdown and a wait for the server's close), in the set-up above, unpinned; reps interleaved:"
  echo
  echo "| row | ustcp serve --discard (TUN) | kernel discard (veth) | ratio |"
  echo "|---|---|---|---|"
  for row in $DROWS; do
    u=$(stats ${V[$row,d]:-}); k=$(stats ${V[$row,kd]:-})
    ratio=$(python3 -c "
import statistics,sys
u='${V[$row,d]:-}'.split(); k='${V[$row,kd]:-}'.split()
print('-' if 'FAIL' in u+k or not u or not k else '%.2f' % (statistics.median(map(float,u))/statistics.median(map(float,k))))")
    echo "| ${WHAT[$row]} | $u | $k | $ratio |"
  done
fi
