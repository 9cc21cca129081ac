#!/usr/bin/env bash
# bench/run.sh (`make bench`): ustcp against the Linux kernel's TCP, in one run.
#
# Makes two network namespaces joined by a veth pair (unique names; removed on exit,
# even on failure), starts the kernel's epoll server in one, and runs every
# benchmark for ustcp (bench/ustcp_bench: two stacks in this process over an
# in-memory link, or the simulated network) and for the kernel (bench/kernel_bench
# over the veth), BENCH_REPS times each (default 5). Every run is bounded by
# `timeout`. Prints median, min and max of each figure and the ratio of ustcp to
# the reference measured in the same invocation, as a Markdown table, and keeps
# it in $BUILD/bench/last-run.md (raw values in $BUILD/bench/raw.txt).
#
# Environment: BUILD (build dir, default build), BENCH_REPS (5), BENCH_QUICK=1
# (small sizes, to try the script), BENCH_ONLY="bulk rr hs mem lat loss ooo tun apps" (subset).
# Needs root (namespaces), iproute2 and coreutils' timeout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
REPS=${BENCH_REPS:-5}
ONLY=${BENCH_ONLY:-"bulk rr hs mem lat loss ooo tun apps"}
UB=$BUILD/bench/ustcp_bench
KB=$BUILD/bench/kernel_bench

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  BULK_BYTES=$((64 << 20)); CONNS=3000; MEM_CONNS=10000; ITERS=2000; LOSS_BYTES=$((1 << 20))
  TUN_CONNS=500; OOO_SEGS=2000000
else
  BULK_BYTES=$((1 << 30)); CONNS=30000; MEM_CONNS=100000; ITERS=20000; LOSS_BYTES=$((10 << 20))
  TUN_CONNS=5000; OOO_SEGS=16777216   # the whole 32 MiB window: every odd byte
fi
CONC=32

if [ "$(id -u)" != 0 ]; then
  echo "bench: needs root (it creates network namespaces and a veth pair)" >&2
  exit 1
fi
if ! command -v ip >/dev/null; then
  if command -v apt-get >/dev/null; then
    apt-get install -y iproute2 >/dev/null
  else
    echo "bench: needs iproute2 (ip)" >&2
    exit 1
  fi
fi
for b in "$UB" "$KB"; do
  [ -x "$b" ] || { echo "bench: $b missing; run 'make build' first" >&2; exit 1; }
done

OUT=$BUILD/bench
mkdir -p "$OUT"
RAW=$OUT/raw.txt
LOG=$OUT/log.txt
REPORT=$OUT/last-run.md
: >"$RAW"
: >"$LOG"

# Unique names: the PID, and a short random tag in case of PID reuse.
TAG=$$$(printf '%04x' $((RANDOM % 65536)))
NSA=ustcpb-${TAG}-a            # client side
NSB=ustcpb-${TAG}-b            # server side
VA=ub${TAG}a                   # interface names are at most 15 bytes
VB=ub${TAG}b
IPA=10.77.0.1
IPB=10.77.0.2
SERVER_PID=
TUN_PIDS=
CHILD=

cleanup() {
  set +e
  [ -n "$CHILD" ] && kill "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
  for p in $TUN_PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  ip netns del "$NSA" 2>/dev/null
  ip netns del "$NSB" 2>/dev/null
  ip link del "$VA" 2>/dev/null
  true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ip netns add "$NSA"
ip netns add "$NSB"
ip link add "$VA" type veth peer name "$VB"
ip link set "$VA" netns "$NSA"
ip link set "$VB" netns "$NSB"
ip -n "$NSA" addr add "$IPA/24" dev "$VA"
ip -n "$NSB" addr add "$IPB/24" dev "$VB"
for ns in "$NSA" "$NSB"; do ip -n "$ns" link set lo up; done
ip -n "$NSA" link set "$VA" up
ip -n "$NSB" link set "$VB" up
# The client side gets the widest port range (ustcp_bench configures the same).
ip netns exec "$NSA" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"

set_mtu() {
  ip -n "$NSA" link set "$VA" mtu "$1"
  ip -n "$NSB" link set "$VB" mtu "$1"
}

note() { echo "bench: $*" >&2; echo "== $*" >>"$LOG"; }

# run SECONDS CMD...: one bounded invocation; its R lines go to $RAW.
run() {
  local limit=$1
  shift
  local rc=0
  # In the background and waited for, so that a signal to this script runs the
  # trap at once (bash defers traps while a foreground child runs).
  timeout -k 5 "$limit" "$@" >>"$RAW" 2>>"$LOG" &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=
  if [ "$rc" != 0 ]; then
    note "FAILED (rc $rc${rc/#124/, timed out}): $*"
  fi
}

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

# The kernel's server, for the whole run (bounded too).
timeout -k 5 7200 "$KB" serve --ns "$NSB" --addr "$IPB" 2>>"$LOG" &
SERVER_PID=$!

want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }

if want bulk; then
  for mtu in 1500 65535; do
    set_mtu "$mtu"
    note "bulk, one flow, $((BULK_BYTES >> 20)) MiB, MTU $mtu: ustcp in memory"
    run 900 "$UB" bulk --mtu "$mtu" --bytes "$BULK_BYTES" --reps "$REPS"
    note "bulk, one flow, $((BULK_BYTES >> 20)) MiB, MTU $mtu: kernel over veth"
    run 900 "$KB" bulk --ns "$NSA" --addr "$IPB" --mtu "$mtu" --bytes "$BULK_BYTES" --reps "$REPS"
  done
  set_mtu 1500
  note "memcpy of the same bytes (ceiling)"
  run 300 "$UB" memcpy --bytes "$BULK_BYTES" --reps "$REPS"
fi
set_mtu 1500
for m in rr hs; do
  want $m || continue
  note "short connections ($m), $CONNS connections, $CONC at once: ustcp in memory"
  run 900 "$UB" $m --conns "$CONNS" --conc "$CONC" --reps "$REPS"
  note "short connections ($m), $CONNS connections, $CONC at once: kernel over veth"
  run 900 "$KB" $m --ns "$NSA" --addr "$IPB" --conns "$CONNS" --conc "$CONC" --reps "$REPS"
done
if want mem; then
  note "memory: $MEM_CONNS idle established connections: ustcp"
  # One process per repetition: RSS growth is only visible in a fresh process.
  for _ in $(seq "$REPS"); do run 300 "$UB" mem --conns "$MEM_CONNS" --reps 1; done
  note "memory: $MEM_CONNS idle established connections: kernel"
  run 1800 "$KB" mem --ns "$NSA" --server-ns "$NSB" --addr "$IPB" --conns "$MEM_CONNS" --reps "$REPS"
fi
if want lat; then
  note "latency, 64-byte request/response, $ITERS round trips: ustcp in memory"
  run 600 "$UB" lat --iters "$ITERS" --reps "$REPS"
  note "latency, 64-byte request/response, $ITERS round trips: kernel over veth"
  run 600 "$KB" lat --ns "$NSA" --addr "$IPB" --iters "$ITERS" --reps "$REPS"
fi
if want loss; then
  for loss in 0 0.01 0.1 0.3; do
    note "loss curve, sim network, 100 ms RTT, 32 KiB buffers, loss $loss: ustcp (virtual time)"
    run 1800 "$UB" loss --loss "$loss" --bytes "$LOSS_BYTES" --reps "$REPS"
  done
fi
if want ooo; then
  # Issue 10 point 5: the out-of-order attack pattern must cost at most 3x the CPU
  # per segment of an in-order stream (both in one process, interleaved per rep).
  note "out-of-order attack: 1-byte segments with 1-byte holes across a 32 MiB window vs in order, $OOO_SEGS segments each"
  run 1800 "$UB" ooo --segs "$OOO_SEGS" --reps "$REPS"
fi
# (6) Over TUN, MTU 1500: the kernel's clients (in the client namespace) to and
# from ustcp on a TUN device there (ustcp_bench tun-serve: src/link/loop + tun),
# vs kernel-to-kernel over the veth, and vs the TUN ceiling: a reflector that
# reads packets and writes them back (ustcp_bench tun-reflect) under a UDP load
# (kernel_bench udp-flood), in packets/s and Gbit/s at 1500 bytes a packet.
wait_addr() {  # wait_addr DEV ADDR: until the device has its address (5 s at most)
  for _ in $(seq 50); do
    ip -n "$NSA" addr show dev "$1" 2>/dev/null | grep -q "inet $2 " && return 0
    sleep 0.1
  done
  note "FAILED: $1 never got $2"
  return 1
}
TUN_PIDS=
if want tun; then
  if [ -e "$ROOT/src/link/tun.c" ] && [ -e "$ROOT/src/link/loop.c" ] && [ -c /dev/net/tun ]; then
    set_mtu 1500
    note "over TUN: kernel to kernel over veth, receiving (bulk-recv) for the baseline"
    run 900 "$KB" bulk-recv --ns "$NSA" --addr "$IPB" --mtu 1500 --bytes "$BULK_BYTES" --reps "$REPS"
    TS=ut${TAG}s
    TR=ut${TAG}r
    timeout -k 5 3600 "$UB" tun-serve --ns "$NSA" --tun "$TS" --addr 10.78.0.2 --peer 10.78.0.1 \
      --mtu 1500 2>>"$LOG" &
    TUN_PIDS="$TUN_PIDS $!"
    if wait_addr "$TS" 10.78.0.1; then
      note "over TUN: kernel client sending to ustcp, $((BULK_BYTES >> 20)) MiB"
      run 900 "$KB" bulk --ns "$NSA" --addr 10.78.0.2 --label tun --mtu 1500 --bytes "$BULK_BYTES" --reps "$REPS"
      note "over TUN: kernel client receiving from ustcp, $((BULK_BYTES >> 20)) MiB"
      run 900 "$KB" bulk-recv --ns "$NSA" --addr 10.78.0.2 --label tun --mtu 1500 --bytes "$BULK_BYTES" --reps "$REPS"
      for m in rr hs; do
        note "over TUN: short connections ($m), kernel client to ustcp"
        run 900 "$KB" $m --ns "$NSA" --addr 10.78.0.2 --label tun --conns "$TUN_CONNS" --conc "$CONC" --reps "$REPS"
      done
    fi
    timeout -k 5 3600 "$UB" tun-reflect --ns "$NSA" --tun "$TR" --addr 10.79.0.2 --peer 10.79.0.1 \
      --mtu 1500 2>>"$LOG" &
    TUN_PIDS="$TUN_PIDS $!"
    if wait_addr "$TR" 10.79.0.1; then
      note "over TUN: the ceiling (reflector, UDP load, 1500-byte packets)"
      run 300 "$KB" udp-flood --ns "$NSA" --addr 10.79.0.2 --mtu 1500 --conc 256 --secs 2 --reps "$REPS"
    fi
    for p in $TUN_PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    TUN_PIDS=
  else
    # TODO(TUN): needs the TUN driver (src/link/tun.*, src/link/loop.c) and /dev/net/tun.
    note "SKIP: TUN benchmark needs src/link/tun"
    echo "SKIP: TUN benchmark needs src/link/tun"
  fi
fi

# Published and computed references (single values).
{
  echo "R ideal.window_rtt 327680"   # 32 KiB window / 100 ms
  echo "R smoltcp.loss0 322945"      # smoltcp tests/netsim.rs, buffer 32768
  echo "R smoltcp.loss10 37775"
  echo "R smoltcp.loss30 1156"
} >>"$RAW"

# ---- the table ----
# stats KEY -> "median min max n" (median of n values; mean of the middle two if even)
stats() {
  awk -v k="$1" '$1 == "R" && $2 == k { print $3 }' "$RAW" | sort -g |
    awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "- - - 0"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%s %s %s %d\n", m, v[1], v[NR], NR }'
}
fmt() {  # value -> 3 significant digits, thousands separated when large
  awk -v x="$1" 'BEGIN {
    if (x == "-") { print "-"; exit }
    if (x >= 1000) { s = sprintf("%.0f", x); o = ""
      while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
      print s o; exit }
    if (x >= 100) printf "%.0f\n", x; else if (x >= 10) printf "%.1f\n", x; else printf "%.3g\n", x }'
}
cell() {  # "median min max n" -> "median (min–max)"
  set -- $1
  if [ "$4" = 0 ]; then echo "no result"; return; fi
  if [ "$4" = 1 ]; then fmt "$1"; return; fi
  echo "$(fmt "$1") ($(fmt "$2")–$(fmt "$3"))"
}
# row LABEL UNIT UKEY REFLABEL REFKEY TARGET OP
#   TARGET/OP: the ratio ustcp/ref must be OP ("ge"/"le") TARGET; "-" for none.
row() {
  local label=$1 unit=$2 ukey=$3 rlabel=$4 rkey=$5 target=$6 op=${7:-ge}
  local us rs
  us=$(stats "$ukey")
  rs=$(stats "$rkey")
  local um rm ratio verdict
  um=$(echo "$us" | cut -d' ' -f1)
  rm=$(echo "$rs" | cut -d' ' -f1)
  ratio=$(awk -v a="$um" -v b="$rm" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3g", a / b }')
  verdict=""
  if [ "$target" != "-" ]; then
    if [ "$ratio" = "-" ]; then
      verdict="no result"
    else
      verdict=$(awk -v r="$ratio" -v t="$target" -v op="$op" 'BEGIN {
        ok = (op == "ge") ? (r >= t) : (r <= t)
        printf "%s %s %s: %s", (op == "ge" ? "≥" : "≤"), t, "", (ok ? "met" : "MISSED") }' | sed 's/  :/:/')
    fi
  fi
  local rcell
  if [ "$rkey" = none ]; then rcell="-"; else rcell=$(cell "$rs"); fi
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$unit" "$(cell "$us")" "$rlabel" \
    "$rcell" "$ratio" "$verdict"
}

{
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) CPUs; kernel $(uname -r)"
  echo "Command: \`make bench\` (bench/run.sh; BENCH_REPS=$REPS${BENCH_QUICK:+, BENCH_QUICK=$BENCH_QUICK})"
  echo "Repetitions: $REPS each; cells are median (min–max). Load average (1, 5, 15 min) at the start: $LOAD0; at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| benchmark | unit | ustcp | reference | reference value | ratio ustcp/ref | target |"
  echo "|---|---|---|---|---|---|---|"
  row "bulk, 1 flow, $((BULK_BYTES >> 20)) MiB, MTU 1500" "Gbit/s" bulk1500.ustcp "kernel, veth, MTU 1500" bulk1500.kernel 1.0
  row "bulk, 1 flow, $((BULK_BYTES >> 20)) MiB, MTU 65535" "Gbit/s" bulk65535.ustcp "kernel, veth, MTU 65535" bulk65535.kernel 1.0
  row "bulk, MTU 1500, vs ceiling" "Gbit/s" bulk1500.ustcp "memcpy, same bytes" bulk.memcpy -
  row "bulk, MTU 65535, vs ceiling" "Gbit/s" bulk65535.ustcp "memcpy, same bytes" bulk.memcpy -
  row "short conns: connect, 64 B req/resp, close" "conn/s" rr.ustcp "kernel, veth, epoll" rr.kernel 5
  row "short conns: handshake only" "conn/s" hs.ustcp "kernel, veth, epoll" hs.kernel -
  row "memory per idle conn end, engine accounting" "bytes" mem.ustcp.engine "kernel slab" mem.kernel.slab 0.25 le
  row "memory per idle conn end, process RSS growth" "bytes" mem.ustcp.rss "kernel slab" mem.kernel.slab 0.25 le
  row "memory per idle conn end, data buffers" "bytes" mem.ustcp.buffers "kernel sockstat mem" mem.kernel.sockstat -
  row "latency, 64 B round trip, median" "µs" lat.ustcp.p50 "kernel, veth" lat.kernel.p50 -
  row "latency, 64 B round trip, p99" "µs" lat.ustcp.p99 "kernel, veth" lat.kernel.p99 -
  row "loss 0 %, 100 ms RTT, 32 KiB" "B/s (virtual)" loss0.ustcp "window/RTT" ideal.window_rtt 0.95
  row "loss 0 %" "B/s (virtual)" loss0.ustcp "smoltcp netsim" smoltcp.loss0 -
  row "loss 1 %" "B/s (virtual)" loss1.ustcp "window/RTT" ideal.window_rtt -
  row "loss 10 %" "B/s (virtual)" loss10.ustcp "smoltcp netsim" smoltcp.loss10 3
  row "loss 30 %" "B/s (virtual)" loss30.ustcp "smoltcp netsim" smoltcp.loss30 -
  row "1-byte segments with 1-byte holes, 32 MiB window" "CPU ns/segment" ooo.holes.ns "same, in order" ooo.inorder.ns 3 le
  if grep -q "^R tunceiling" "$RAW" || grep -q "^R bulk1500.tun" "$RAW"; then
    row "over TUN, MTU 1500: kernel client → ustcp" "Gbit/s" bulk1500.tun "kernel→kernel, veth" bulk1500.kernel -
    row "over TUN, MTU 1500: kernel client → ustcp" "Gbit/s" bulk1500.tun "TUN ceiling (reflector)" tunceiling1500.gbps 0.9
    row "over TUN, MTU 1500: ustcp → kernel client" "Gbit/s" bulkrecv1500.tun "kernel→kernel, veth" bulkrecv1500.kernel -
    row "over TUN, MTU 1500: ustcp → kernel client" "Gbit/s" bulkrecv1500.tun "TUN ceiling (reflector)" tunceiling1500.gbps 0.9
    row "over TUN: short conns, kernel client, ustcp server" "conn/s" rr.tun "kernel, veth, epoll" rr.kernel -
    row "over TUN: handshake only, kernel client, ustcp server" "conn/s" hs.tun "kernel, veth, epoll" hs.kernel -
    row "TUN ceiling: packets reflected" "packets/s" tunceiling.pps "-" none -
  else
    echo "| over TUN | | SKIP: TUN benchmark needs src/link/tun | | | | |"
  fi
} >"$REPORT"
if want apps; then
  { echo; BUILD=$BUILD APPS_REPS=$REPS bash "$ROOT/bench/apps.sh" 2>>"$LOG" || echo "apps: FAILED (see $LOG)"; } >>"$REPORT"
fi
echo
cat "$REPORT"
if grep -q FAILED "$LOG"; then
  echo
  echo "Some runs failed; see $LOG:"
  grep FAILED "$LOG"
fi
