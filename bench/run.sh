#!/usr/bin/env bash
# bench/run.sh (`make bench`): ustcp against the Linux kernel's TCP, in one run.
#
# Discipline (issue 15):
# - Repetitions are interleaved: warm-up, then ustcp, reference, ustcp, reference
#   ... BENCH_REPS times each (default 5); the warm-up round is run and discarded
#   (its lines are kept in raw.txt as "W", not "R").
# - Cells are the median and the interquartile range [q1–q3] of the repetitions.
# - Per result: the 1-minute load average before the repetition and, over it,
#   the machine's steal time and how busy the CPUs the benchmark does not use
#   were (/proc/stat). The benchmark pins all its own work to BENCH_CPU, so the
#   other CPUs' use is other work on the machine; the load average counts the
#   benchmark's own runnable tasks (client, server, softirq: above 2 on a quiet
#   machine) and so cannot tell. A row is marked "busy" when the other CPUs were
#   more than 20 % busy or steal was above 5 % during any of its repetitions
#   (with no other CPU, when the load exceeded the CPU count).
# - Every bulk and request/response run checks the payload against its stream
#   offset (bench/bench_util.h) on the receiving side; a mismatch fails the run
#   (no number is reported for it).
# - Every kernel repetition (and every TUN repetition) gets fresh network
#   namespaces and a fresh server: no TIME_WAIT or other state is inherited.
# - Both sides are pinned to the same CPU (BENCH_CPU, default 0) with taskset:
#   ustcp's in-memory runs (both stacks, one thread), the kernel's client and
#   server processes (and so the veth softirq work they raise), ustcp's TUN
#   server and the kernel client that drives it. Each row's words and the legend
#   below the table say what each side does.
#
# Environment: BUILD (build dir, default build), BENCH_REPS (5), BENCH_QUICK=1
# (small sizes), BENCH_ONLY="bulk rr lat mem scale flows loss ooo zcopy tun apps" (subset), BENCH_CPU (0),
# BENCH_LOSS_SEEDS (10: seeds of the simulated loss curve, runs of the kernel's),
# BENCH_LOSS_MATCHED=1 (the kernel's loss curve again with ustcp's window),
# BENCH_LWIP_MEM=0 (no lwIP in-memory rows [r]), APPS_WALL (1800: no apps
# repetition starts after it; bench/apps.sh has its own knobs: APPS_ROWS,
# APPS_SERVE_ROWS, APPS_DISCARD_ROWS, APPS_DISCARD_BYTES).
# Needs root (namespaces), iproute2, ethtool (installed if missing), timeout, taskset.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
REPS=${BENCH_REPS:-5}
ONLY=${BENCH_ONLY:-"bulk rr lat mem scale flows loss ooo zcopy tun apps"}
CPU=${BENCH_CPU:-0}
UB=$BUILD/bench/ustcp_bench
KB=$BUILD/bench/kernel_bench
LB=$BUILD/bench/lwip_bench     # built only with liblwip-dev
NCPU=$(nproc)

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  BULK_BYTES=$((256 << 20)); CONNS=3000; MEM_CONNS=10000; ITERS=2000
  SCALE_CONNS=100000; FLOW_BYTES=$((100 << 10))
  TUN_CONNS=1000; TUN_BYTES=$((256 << 20)); OOO_SEGS=2000000; ZC_BYTES=$((64 << 20))
else
  BULK_BYTES=$((1 << 30)); CONNS=30000; MEM_CONNS=100000; ITERS=20000
  SCALE_CONNS=100000; FLOW_BYTES=$((100 << 10))0
  TUN_CONNS=5000; TUN_BYTES=$((1 << 30)); OOO_SEGS=16777216   # the whole 32 MiB window: every odd byte
  ZC_BYTES=$((256 << 20))
fi
CONC=32
# The loss curve: smoltcp's published run moved 10 MiB; in virtual time that costs
# ustcp about a second for all four rates and ten seeds, so even the quick run keeps
# it. The kernel's runs are real time (bench/kernel_loss.sh: fewer bytes, ~1.5 min).
LOSS_BYTES=$((10 << 20))
LOSS_SEEDS=${BENCH_LOSS_SEEDS:-10}
# What section 5 (TUN) runs: BENCH_TUN_WORK, a subset of these; BENCH_TUN_BYTES
# overrides the bulk size (a quick before/after of one path).
TUN_WORK=${BENCH_TUN_WORK:-"bulk bulk-recv rr hs lat"}
TUN_BYTES=${BENCH_TUN_BYTES:-$TUN_BYTES}

if [ "$(id -u)" != 0 ]; then
  echo "bench: needs root (it creates network namespaces and a veth pair)" >&2
  exit 1
fi
for tool in ip:iproute2 ethtool:ethtool taskset:util-linux; do
  if ! command -v "${tool%%:*}" >/dev/null; then
    if command -v apt-get >/dev/null; then
      apt-get install -y "${tool#*:}" >/dev/null
    else
      echo "bench: needs ${tool%%:*} (${tool#*:})" >&2
      exit 1
    fi
  fi
done
for b in "$UB" "$KB"; do
  [ -x "$b" ] || { echo "bench: $b missing; run 'make build' first" >&2; exit 1; }
done
PIN="taskset -c $CPU"

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
TUN_PID=
CHILD=
NET_UP=0

net_down() {
  set +e
  if [ -n "$TUN_PID" ]; then kill "$TUN_PID" 2>/dev/null; wait "$TUN_PID" 2>/dev/null; TUN_PID=; fi
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=; fi
  if [ "$NET_UP" = 1 ]; then
    ip netns del "$NSA" 2>/dev/null
    ip netns del "$NSB" 2>/dev/null
    ip link del "$VA" 2>/dev/null
    NET_UP=0
  fi
  set -e
}
cleanup() {
  set +e
  [ -n "$CHILD" ] && kill "$CHILD" 2>/dev/null && wait "$CHILD" 2>/dev/null
  net_down
  true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

note() { echo "bench: $*" >&2; echo "== $*" >>"$LOG"; }

# net_up MTU OFFLOADS(on|off): fresh namespaces, veth pair, the kernel's server
# (pinned to $CPU) in the server namespace.
net_up() {
  net_down
  local mtu=$1 offl=$2
  ip netns add "$NSA"
  ip netns add "$NSB"
  NET_UP=1
  ip link add "$VA" type veth peer name "$VB"
  ip link set "$VA" netns "$NSA"
  ip link set "$VB" netns "$NSB"
  ip -n "$NSA" addr add "$IPA/24" dev "$VA"
  ip -n "$NSB" addr add "$IPB/24" dev "$VB"
  for ns in "$NSA" "$NSB"; do ip -n "$ns" link set lo up; done
  ip -n "$NSA" link set "$VA" mtu "$mtu"
  ip -n "$NSB" link set "$VB" mtu "$mtu"
  if [ "$offl" = off ]; then
    # No segmentation or checksum offload either way: every segment is built,
    # checksummed and verified in software, as ustcp does.
    ip netns exec "$NSA" ethtool -K "$VA" tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
      note "ethtool -K $VA failed"
    ip netns exec "$NSB" ethtool -K "$VB" tso off gso off gro off tx off rx off >/dev/null 2>&1 ||
      note "ethtool -K $VB failed"
  fi
  ip -n "$NSA" link set "$VA" up
  ip -n "$NSB" link set "$VB" up
  # The client side gets the widest port range (ustcp_bench configures the same).
  ip netns exec "$NSA" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
  $PIN "$KB" serve --ns "$NSB" --addr "$IPB" 2>>"$LOG" &
  SERVER_PID=$!
}

# tun_up VARIANT: fresh namespaces (as net_up, MTU 1500, offloads on) plus
# a TUN server in the client namespace, pinned to $CPU: ustcp's, VARIANT "plain"
# (one packet per read/write) or "vnet" (IFF_VNET_HDR with offloads), or lwIP's
# ("lwip", one packet per read/write).
TUNIF=ut${TAG}s
TUN_ADDR=10.78.0.2
tun_up() {
  net_up 1500 on
  local extra=()
  [ "$1" = vnet ] && extra=(--vnet)
  [ "$1" = vnetrx ] && extra=(--vnet-rx-only)
  [ "$1" = vnetnb ] && extra=(--vnet --no-batch)
  [ "$1" = vnetbr ] && extra=(--vnet --batch-reads)
  local prog=$UB
  [ "$1" = lwip ] && prog=$LB
  timeout -k 5 3600 $PIN "$prog" tun-serve --ns "$NSA" --tun "$TUNIF" --addr "$TUN_ADDR" --peer 10.78.0.1 \
    --mtu 1500 "${extra[@]}" 2>>"$LOG" &
  TUN_PID=$!
  for _ in $(seq 50); do
    ip -n "$NSA" addr show dev "$TUNIF" 2>/dev/null | grep -q "inet 10.78.0.1 " && return 0
    sleep 0.1
  done
  note "FAILED: $TUNIF never got its address"
  return 1
}

steal_now() { awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit }' /proc/stat; }
# other_now: "busy total" jiffies summed over the CPUs not in BENCH_CPU (a
# comma-separated list), "0 0" when the benchmark uses them all. Busy is user,
# nice, system, irq and softirq time; steal is the hypervisor's and is
# reported on its own.
other_now() {
  awk -v pin=",$CPU," '$1 ~ /^cpu[0-9]+$/ {
      if (index(pin, "," substr($1, 4) ",")) next
      for (i = 2; i <= 9; i++) tot += $i; busy += $2 + $3 + $4 + $7 + $8 }
    END { print busy + 0, tot + 0 }' /proc/stat
}

# run WARM SECONDS CMD...: one bounded invocation (the caller pins it). Its
# result lines go to $RAW ("R", or "W" for the warm-up round), each followed by
# "L key load1 steal% other%" with the load average before, the steal over the
# run and the busy share of the CPUs not in BENCH_CPU over the run (-1: none).
run() {
  local warm=$1 limit=$2
  shift 2
  local rc=0 tmp load s0 s1 o0 o1 pinned=0
  # Only a command run under taskset keeps its work off the other CPUs; for
  # the rest (memory counts, virtual-time runs, the kernel's scale and loss
  # scripts, whose kernel threads run anywhere) the other CPUs' use is their own.
  [ "$1" = taskset ] && pinned=1
  tmp=$(mktemp)
  load=$(cut -d' ' -f1 /proc/loadavg)
  s0=$(steal_now)
  o0=$(other_now)
  # In the background and waited for, so that a signal to this script runs the
  # trap at once (bash defers traps while a foreground child runs).
  timeout -k 5 "$limit" "$@" >"$tmp" 2>>"$LOG" &
  CHILD=$!
  wait "$CHILD" || rc=$?
  CHILD=
  s1=$(steal_now)
  o1=$(other_now)
  if [ "$rc" != 0 ]; then
    note "FAILED (rc $rc${rc/#124/, timed out}): $*"
  fi
  awk -v w="$warm" -v load="$load" -v s0="$s0" -v s1="$s1" -v o0="$o0" -v o1="$o1" -v pinned="$pinned" '
    BEGIN { split(s0, a, " "); split(s1, b, " "); dt = b[2] - a[2]
            st = dt > 0 ? 100 * (b[1] - a[1]) / dt : 0
            split(o0, c, " "); split(o1, d, " "); ot = d[2] - c[2]
            # under 0.3 s of jiffies on the other CPUs is too short to tell: -1
            other = ot >= 30 ? 100 * (d[1] - c[1]) / ot : -1
            if (!pinned) other = -2 }
    $1 == "R" { print (w ? "W" : "R"), $2, $3; if (!w) printf "L %s %s %.1f %.1f\n", $2, load, st, other; next }
    { print }' "$tmp" >>"$RAW"
  rm -f "$tmp"
}

want() { case " $ONLY " in *" $1 "*) return 0 ;; esac; return 1; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
STEAL0=$(steal_now)
TUN_VARIANTS=plain
if { "$UB" 2>&1 || true; } | grep -q -- --vnet; then TUN_VARIANTS="plain vnet"; fi
if { "$UB" 2>&1 || true; } | grep -q -- --vnet-rx-only; then TUN_VARIANTS="plain vnetrx vnet"; fi
if { "$UB" 2>&1 || true; } | grep -q -- --no-batch; then TUN_VARIANTS="$TUN_VARIANTS vnetnb vnetbr"; fi
# lwIP (Debian's liblwip-dev) in the same TUN harness: installed and built here
# when missing, since only the benchmark needs it.
# Built (or brought up to date: `make bench` does not name it, since the target
# exists only with liblwip-dev) whenever the rows that use it run.
if want tun || want bulk; then
  if [ ! -e /usr/include/lwip/lwip/tcp.h ] && command -v apt-get >/dev/null; then
    apt-get install -y liblwip-dev >/dev/null 2>&1 || true
  fi
  if [ -e /usr/include/lwip/lwip/tcp.h ]; then
    { [ -x "$LB" ] || cmake -S "$ROOT" -B "$BUILD" >/dev/null; } 2>>"$LOG" || true
    cmake --build "$BUILD" --target lwip_bench >/dev/null 2>>"$LOG" || true
  fi
fi
[ -x "$LB" ] && TUN_VARIANTS="$TUN_VARIANTS lwip"
TUN_VARIANTS=${BENCH_TUN_VARIANTS:-$TUN_VARIANTS}   # e.g. "vnetrx vnet lwip" (the kernel over veth always runs)

# ---- (1) bulk: one flow, one CPU each side, offloads on and off, two MTUs ----
if want bulk; then
  for mtu in 1500 65535; do
    note "bulk, one flow, $((BULK_BYTES >> 20)) MiB, MTU $mtu: ustcp in memory / kernel over veth (offloads on, off), all on CPU $CPU"
    for r in $(seq 0 "$REPS"); do
      w=$([ "$r" = 0 ] && echo 1 || echo 0)
      run "$w" 900 $PIN "$UB" bulk --mtu "$mtu" --bytes "$BULK_BYTES" --reps 1
      # ustcp with the in-memory link's offloads (as the veth's for the kernel)
      run "$w" 900 $PIN "$UB" bulk --mtu "$mtu" --bytes "$BULK_BYTES" --reps 1 --offload
      for offl in on off; do
        net_up "$mtu" "$offl"
        lbl=$([ "$offl" = on ] && echo kernel || echo kerneloff)
        run "$w" 900 $PIN "$KB" bulk --ns "$NSA" --addr "$IPB" --mtu "$mtu" --bytes "$BULK_BYTES" \
          --label "$lbl" --server-pid "$SERVER_PID" --stack-pid "$SERVER_PID" --cpu "$CPU" --reps 1
        net_down
      done
      [ "$mtu" = 1500 ] && run "$w" 300 $PIN "$UB" memcpy --bytes "$BULK_BYTES" --reps 1
      # [r] lwIP in the same in-memory harness (MTU 1500 only: its TCP_MSS is
      # 1460): lwIP -> ustcp, ustcp -> lwIP and ustcp -> ustcp, each a fresh
      # process (lwIP is global), both threads pinned to CPU $CPU.
      if [ "$mtu" = 1500 ] && [ -x "$LB" ] && [ "${BENCH_LWIP_MEM:-1}" = 1 ]; then
        for pair in uu lu ul uu64; do
          buf=(); [ "$pair" = uu64 ] && buf=(--buf 65536)
          run "$w" 300 $PIN "$LB" mem --pair "${pair%64}" --bytes "$BULK_BYTES" "${buf[@]}"
        done
      fi
    done
  done
fi

# ---- (2) short connections and latency: ustcp in memory vs kernel over veth ----
# (not like for like: ustcp is function calls in one thread; the like-for-like
# rows are over TUN, section 5)
if want rr; then
  for m in rr hs; do
    note "short connections ($m), $CONNS connections, $CONC at once: ustcp in memory / kernel over veth"
    for r in $(seq 0 "$REPS"); do
      w=$([ "$r" = 0 ] && echo 1 || echo 0)
      run "$w" 900 $PIN "$UB" $m --conns "$CONNS" --conc "$CONC" --reps 1
      net_up 1500 on
      run "$w" 900 $PIN "$KB" $m --ns "$NSA" --addr "$IPB" --conns "$CONNS" --conc "$CONC" --reps 1
      net_down
    done
  done
fi
if want lat; then
  note "latency, 64-byte request/response, $ITERS round trips: ustcp in memory / kernel over veth"
  for r in $(seq 0 "$REPS"); do
    w=$([ "$r" = 0 ] && echo 1 || echo 0)
    run "$w" 600 $PIN "$UB" lat --iters "$ITERS" --reps 1
    net_up 1500 on
    run "$w" 600 $PIN "$KB" lat --ns "$NSA" --addr "$IPB" --iters "$ITERS" --reps 1
    net_down
  done
fi

# ---- (3) memory per idle connection ----
if want mem; then
  note "memory: $MEM_CONNS idle established connections: ustcp / kernel"
  for r in $(seq 0 "$REPS"); do
    w=$([ "$r" = 0 ] && echo 1 || echo 0)
    # One process per repetition: RSS growth is only visible in a fresh process.
    run "$w" 300 "$UB" mem --conns "$MEM_CONNS" --reps 1
    net_up 1500 on
    run "$w" 1800 "$KB" mem --ns "$NSA" --server-ns "$NSB" --addr "$IPB" --conns "$MEM_CONNS" --reps 1
    net_down
  done
fi

# ---- (3b) scale: up to a million connections that carried 64 B each way ----
if want scale; then
  note "scale: $SCALE_CONNS connections, 64 B each way, in one process (three stacks)"
  # A warm-up and $REPS repetitions, a fresh process each: the per-packet CPU
  # at 1,000 and at $SCALE_CONNS connections (a target row) is a timing, and
  # both sizes are measured inside each run, so the two sides are interleaved.
  for r in $(seq 0 "$REPS"); do
    w=$([ "$r" = 0 ] && echo 1 || echo 0)
    run "$w" 1800 $PIN "$UB" scale --conns "$SCALE_CONNS" --reps 1 --wall 1700
  done
  # The three states of issue 15 point 3 on both stacks, ustcp then the kernel
  # (bench/kernel_scale.sh: a fresh namespace per measurement, loopback MTU
  # 1500). One repetition each: memory, not time. The 1 MiB state only at
  # 10,000 (2 x 10 GiB copied per side); BENCH_KSCALE_BIG=1 adds it at 100,000.
  if [ ! -x "$BUILD/bench/kernel_scale" ]; then
    note "kernel scale rows skipped: $BUILD/bench/kernel_scale missing"
  else
    note "scale, three states: ustcp (one process, three stacks in memory) / kernel (bench/kernel_scale.sh)"
    for n in 10000 100000; do
      for st in never 64 1m; do
        [ "$st" = 1m ] && [ "$n" != 10000 ] && [ "${BENCH_KSCALE_BIG:-0}" != 1 ] && continue
        # An explicit state: no per-packet probes (their traffic), own keys.
        run 0 900 $PIN "$UB" scale --conns "$n" --state "$st" --reps 1 --wall 800
        run 0 900 env BUILD="$BUILD" KSCALE_CPU="$CPU" KSCALE_WALL=800 "$ROOT/bench/kernel_scale.sh" mem "$n" "$st"
      done
    done
  fi
fi

# ---- (3c) concurrent flows: 1, 100, 10,000 bulk flows at once ----
if want flows; then
  note "flows: 1, 100 and 10,000 flows of $FLOW_BYTES bytes at once, ustcp in memory (default, autotuned buffers)"
  for r in $(seq 0 "$REPS"); do
    w=$([ "$r" = 0 ] && echo 1 || echo 0)
    for k in 1 100 10000; do
      run "$w" 900 $PIN "$UB" flows --conns "$k" --bytes "$FLOW_BYTES" --reps 1 --wall 800
      # The kernel: client and server processes on loopback in a fresh
      # namespace, both pinned to the same CPU (bench/kernel_scale.sh).
      if [ -x "$BUILD/bench/kernel_scale" ]; then
        run "$w" 900 env BUILD="$BUILD" KSCALE_CPU="$CPU" KSCALE_WALL=800 "$ROOT/bench/kernel_scale.sh" flows "$k" "$FLOW_BYTES"
      fi
    done
  done
fi

# ---- (4) loss curve, issue 14 point 4: ustcp in the simulator with smoltcp's
# netsim model and parameters (virtual time, deterministic, seeds 0..LOSS_SEEDS-1),
# then the kernel over veths with nftables loss (real time, LOSS_SEEDS runs per
# rate at once), then ustcp again with the kernel's byte counts ----
if want loss; then
  for loss in 0 0.01 0.1 0.3; do
    note "loss curve, sim network (smoltcp's netsim model), 100 ms RTT, 32 KiB buffers, loss $loss: ustcp (virtual time), $LOSS_SEEDS seeds"
    run 0 600 "$UB" loss --loss "$loss" --bytes "$LOSS_BYTES" --reps "$LOSS_SEEDS"
  done
  note "loss curve, the kernel: bench/kernel_loss.sh -n $LOSS_SEEDS"
  run 0 900 bash "$ROOT/bench/kernel_loss.sh" -n "$LOSS_SEEDS"
  if [ "${BENCH_LOSS_MATCHED:-0}" = 1 ]; then
    # SO_RCVBUF 27500: the kernel's window is then ustcp's (22 segments), see kernel_loss.sh.
    note "loss curve, the kernel with ustcp's window: BUF=27500 KLOSS_KEY=kernel_w22 bench/kernel_loss.sh -n $LOSS_SEEDS"
    run 0 900 env BUF=27500 KLOSS_KEY=kernel_w22 bash "$ROOT/bench/kernel_loss.sh" -n "$LOSS_SEEDS"
  fi
  for l in 0 1 10 30; do
    kb=$(awk -v k="loss$l.kernel_bytes" '$1 == "R" && $2 == k { print $3; exit }' "$RAW")
    ks=$(awk -v k="loss$l.kernel_secs" '$1 == "R" && $2 == k { print $3; exit }' "$RAW")
    size=()
    if [ -n "$kb" ]; then size=(--bytes "$kb"); elif [ -n "$ks" ]; then size=(--vtime "$ks"); else continue; fi
    note "loss curve, sim network, loss $l %: ustcp with the kernel run's size (${size[*]})"
    run 0 600 "$UB" loss --loss "$(awk -v l="$l" 'BEGIN { print l / 100 }')" "${size[@]}" --reps "$LOSS_SEEDS" --label ksize
  done
fi

if want ooo; then
  # Issue 10 point 5: the out-of-order attack pattern must cost at most 3x the CPU
  # per segment of an in-order stream (both in one process, interleaved per rep).
  note "out-of-order attack: 1-byte segments with 1-byte holes across a 32 MiB window vs in order, $OOO_SEGS segments each"
  run 0 1800 $PIN "$UB" ooo --segs "$OOO_SEGS" --reps "$REPS"
fi

if want zcopy; then
  # Issue 12 point 6: payload copies per byte, classic API vs zero-copy API
  # (both in one process, interleaved per repetition, payload verified).
  note "copies per byte: bulk in memory, MTU 1500, classic send/recv + flat output vs send_direct/recv_direct + gather output, $ZC_BYTES bytes each"
  run 0 1800 $PIN "$UB" zcopy --bytes "$ZC_BYTES" --reps "$REPS"
fi

# ---- (5) over TUN, MTU 1500, the same kernel client: ustcp on a TUN device
# vs the kernel's server over the veth ----
if want tun; then
  if [ -c /dev/net/tun ]; then
    note "over TUN: kernel client (bulk, bulk-recv, rr, hs, lat) to ustcp on TUN ($TUN_VARIANTS) / to the kernel over veth, all on CPU $CPU"
    for r in $(seq 0 "$REPS"); do
      w=$([ "$r" = 0 ] && echo 1 || echo 0)
      for v in $TUN_VARIANTS kernel; do
        if [ "$v" = kernel ]; then
          net_up 1500 on; dst=$IPB; lbl=kernel; spid=$SERVER_PID
        else
          tun_up "$v" || { net_down; continue; }
          dst=$TUN_ADDR; lbl=tun$([ "$v" = plain ] || echo "$v")
          [ "$v" = lwip ] && lbl=lwip
          # The stack's own process: TUN_PID is timeout's; its child is the
          # server (taskset execs it).
          spid=$(pgrep -P "$TUN_PID" | head -1)
        fi
        # CPU cost of the bulk rows (kernel_bench --stack-pid): the server
        # process's user+system time and CPU $CPU's busy time per payload byte.
        cpuopt=()
        [ -n "$spid" ] && cpuopt=(--stack-pid "$spid" --cpu "$CPU")
        # The kernel's bulk keys are bulk1500.kernel already (section 1, offloads on):
        # these are labelled veth so that both sets stay apart.
        [ "$v" = kernel ] && lbl=veth
        case " $TUN_WORK " in *" bulk "*)
          run "$w" 900 $PIN "$KB" bulk --ns "$NSA" --addr "$dst" --label "$lbl" --mtu 1500 --bytes "$TUN_BYTES" \
            --reps 1 "${cpuopt[@]}" ;; esac
        case " $TUN_WORK " in *" bulk-recv "*)
          run "$w" 900 $PIN "$KB" bulk-recv --ns "$NSA" --addr "$dst" --label "$lbl" --mtu 1500 --bytes "$TUN_BYTES" \
            --reps 1 "${cpuopt[@]}" ;; esac
        case " $TUN_WORK " in *" rr "*)
          run "$w" 900 $PIN "$KB" rr --ns "$NSA" --addr "$dst" --label "$lbl" --conns "$TUN_CONNS" --conc "$CONC" --reps 1 ;; esac
        case " $TUN_WORK " in *" hs "*)
          run "$w" 900 $PIN "$KB" hs --ns "$NSA" --addr "$dst" --label "$lbl" --conns "$TUN_CONNS" --conc "$CONC" --reps 1 ;; esac
        case " $TUN_WORK " in *" lat "*)
          run "$w" 600 $PIN "$KB" lat --ns "$NSA" --addr "$dst" --label "$lbl" --iters "$ITERS" --reps 1 ;; esac
        net_down
      done
    done
  else
    note "SKIP: TUN benchmark needs /dev/net/tun"
  fi
fi

# Published and computed references (single values).
{
  echo "R ideal.window_rtt 327680"   # 32 KiB window / 100 ms
  # smoltcp tests/netsim.rs (fn netsim), the 32768 row of its snapshot
  # tests/snapshots/netsim__netsim.snap at commit 24f83e97 (2026-06-16, "accept new
  # netsim results"; the snapshot before it, 671827b1, had 266,384 / 74,126 / 2,112 at
  # 1 / 10 / 30 %): one run, seeds 0 (listener -> connector) and 1 (data direction),
  # no congestion control (ci.sh enables neither socket-tcp-reno nor -cubic).
  echo "R smoltcp.loss0 322945"
  echo "R smoltcp.loss1 219671"
  echo "R smoltcp.loss10 37775"
  echo "R smoltcp.loss30 1156"
} >>"$RAW"

# ---- the table ----
# stats KEY -> "median q1 q3 n" (quartiles by linear interpolation)
stats() {
  awk -v k="$1" '$1 == "R" && $2 == k { print $3 }' "$RAW" | sort -g |
    awk 'function q(p,  h, i) { h = 1 + (NR - 1) * p; i = int(h); return v[i] + (h - i) * (v[i + 1] - v[i]) }
      { v[NR] = $1 } END {
      if (NR == 0) { print "- - - 0"; exit }
      v[NR + 1] = v[NR]
      printf "%s %s %s %d\n", q(0.5), q(0.25), q(0.75), NR }'
}
# busy KEY... -> "quiet (...)" or "busy (...)": over the repetitions of these
# keys, the busiest the other CPUs were, the largest steal and load average.
busy() {
  local keys="$*"
  awk -v keys=" $keys " -v ncpu="$NCPU" '$1 == "L" && index(keys, " " $2 " ") {
      if ($3 > l) l = $3; if ($4 > s) s = $4; if ($5 != "" && $5 >= 0 && (!no || $5 > o)) { o = $5; no++ }
      if ($5 == -2) up++; n++ }
    END { if (!n) exit
      if (up == n) {
        # not pinned: the benchmark itself may use every CPU; only steal tells
        printf "%s (not pinned; steal ≤ %.1f %%, load ≤ %s)", (s > 5 ? "busy" : "quiet"), s + 0, l
      } else if (no) {
        b = o > 20 || s > 5
        printf "%s (other CPUs ≤ %.0f %% busy, steal ≤ %.1f %%, load ≤ %s)", b ? "busy" : "quiet", o, s + 0, l
      } else {
        b = l > ncpu || s > 5
        printf "%s (load ≤ %s, steal ≤ %.1f %%)", b ? "busy" : "quiet", l, s + 0
      } }' "$RAW"
}
fmt() {  # value -> 3 significant digits, thousands separated when large
  awk -v x="$1" 'BEGIN {
    if (x == "-") { print "-"; exit }
    if (x >= 1000) { s = sprintf("%.0f", x); o = ""
      while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
      print s o; exit }
    if (x >= 100) printf "%.0f\n", x; else if (x >= 10) printf "%.1f\n", x; else printf "%.3g\n", x }'
}
cell() {  # "median q1 q3 n" -> "median [q1–q3]"
  set -- $1
  if [ "$4" = 0 ]; then echo "no result"; return; fi
  if [ "$4" = 1 ]; then fmt "$1"; return; fi
  echo "$(fmt "$1") [$(fmt "$2")–$(fmt "$3")]"
}
# row LABEL UNIT UKEY REFLABEL REFKEY TARGET OP
#   TARGET/OP: the ratio ustcp/ref must be OP ("ge"/"le") TARGET; "-" for none.
row() {
  local label=$1 unit=$2 ukey=$3 rlabel=$4 rkey=$5 target=$6 op=${7:-ge}
  local us rs um rm ratio verdict rcell
  us=$(stats "$ukey")
  rs=$(stats "$rkey")
  um=$(echo "$us" | cut -d' ' -f1)
  rm=$(echo "$rs" | cut -d' ' -f1)
  ratio=$(awk -v a="$um" -v b="$rm" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3g", a / b }')
  [ "$target" = noratio ] && ratio="-"   # side by side: the two sides do different work
  verdict=""
  if [ "$target" != "-" ] && [ "$target" != noratio ]; then
    if [ "$ratio" = "-" ]; then
      verdict="no result"
    else
      verdict=$(awk -v r="$ratio" -v t="$target" -v op="$op" 'BEGIN {
        ok = (op == "ge") ? (r >= t) : (r <= t)
        printf "%s %s: %s", (op == "ge" ? "≥" : "≤"), t, (ok ? "met" : "MISSED") }')
    fi
  fi
  if [ "$rkey" = none ]; then rcell="-"; else rcell=$(cell "$rs"); fi
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$unit" "$(cell "$us")" "$rlabel" \
    "$rcell" "$ratio" "$verdict" "$(busy "$ukey" "$rkey")"
}
has() { grep -q "^R $1 " "$RAW"; }

# Whether softirq ticks are also in the processes' system time (kernel/sched/
# cputime.c: without CONFIG_IRQ_TIME_ACCOUNTING a tick in softirq is charged to
# the task it interrupted as well as to the CPU's softirq count).
IRQACCT=
if [ -r /proc/config.gz ] && ! zcat /proc/config.gz 2>/dev/null | grep -q '^CONFIG_IRQ_TIME_ACCOUNTING=y'; then
  IRQACCT=" (this kernel has no CONFIG_IRQ_TIME_ACCOUNTING: softirq ticks that landed while the two processes ran are in their system time too, so they are counted twice, an overestimate of the kernel's cost; the rows marked \"CPU $CPU busy\" count each tick once, see [p])"
fi
{
  S1=$(steal_now)
  echo "Date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $NCPU CPUs; kernel $(uname -r)"
  echo "Command: \`make bench\` (bench/run.sh; BENCH_REPS=$REPS${BENCH_QUICK:+, BENCH_QUICK=$BENCH_QUICK}${BENCH_ONLY:+, BENCH_ONLY=\"$BENCH_ONLY\"}); everything pinned to CPU $CPU"
  echo "Repetitions: one discarded warm-up, then $REPS of each side, interleaved; cells are median [interquartile range]."
  echo "Load average (1, 5, 15 min) at the start: $LOAD0; at the end: $(cut -d' ' -f1-3 /proc/loadavg). Steal over the whole run: $(awk -v a="$STEAL0" -v b="$S1" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; printf "%.1f %%", (d > 0 ? 100 * (y[1] - x[1]) / d : 0) }')."
  # Other work on the machine: the CPUs outside BENCH_CPU over every repetition.
  OTHER=$(awk '$1 == "L" && $5 != "" && $5 >= 0 { n++; if ($5 > m) m = $5; t += $5 } END { if (n) printf "%.0f %.0f", t / n, m }' "$RAW")
  if [ -n "$OTHER" ]; then
    echo "CPUs other than $CPU (none of the benchmark's work runs there): ${OTHER% *} % busy on average over the repetitions, ${OTHER#* } % in the busiest."
  fi
  if { [ -n "$OTHER" ] && [ "${OTHER#* }" -gt 20 ]; } ||
     { [ -z "$OTHER" ] && awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v l0="${LOAD0%% *}" -v n="$NCPU" 'BEGIN { exit !(l > n || l0 > n) }'; }; then
    echo
    echo "**WARNING: the machine was busy (other work ran beside the benchmark): absolute figures are low and noisy; only ratios of interleaved repetitions mean anything, and rows marked busy less so.**"
  fi
  echo
  echo "| benchmark | unit | ustcp | reference | reference value | ratio ustcp/ref | target | other work on the machine |"
  echo "|---|---|---|---|---|---|---|---|"
  if has bulk1500.ustcp; then
    for mtu in 1500 65535; do
      if has "bulk$mtu.ustcpgso"; then
        row "[a2] bulk, 1 flow, MTU $mtu, 1 CPU, offloads on both sides" "Gbit/s" bulk$mtu.ustcpgso "[b] kernel, veth, 1 CPU, TSO/GSO/GRO/csum offload on" bulk$mtu.kernel 1.0
        row "[a2] CPU per payload byte, MTU $mtu, offloads on both sides" "ns/B" cpu$mtu.ustcpgso.nsB "[b] kernel, offloads on (incl. softirq)" cpu$mtu.kernel.nsB - le
      fi
      row "[a] bulk, 1 flow, MTU $mtu, 1 CPU, offloads off both sides" "Gbit/s" bulk$mtu.ustcp "[c] kernel, veth, 1 CPU, all offloads off" bulk$mtu.kerneloff 1.0
      row "[a] bulk, MTU $mtu, ustcp without offloads vs the kernel with them (unlike work)" "Gbit/s" bulk$mtu.ustcp "[b] kernel, veth, 1 CPU, offloads on" bulk$mtu.kernel -
      row "[a] CPU per payload byte, MTU $mtu" "ns/B" cpu$mtu.ustcp.nsB "[b] kernel, offloads on (incl. softirq)" cpu$mtu.kernel.nsB - le
      row "[a] CPU per payload byte, MTU $mtu" "ns/B" cpu$mtu.ustcp.nsB "[c] kernel, offloads off (incl. softirq)" cpu$mtu.kerneloff.nsB - le
      row "[a] CPU per $((mtu - 40))-byte segment of payload, MTU $mtu" "ns" cpu$mtu.ustcp.nsSeg "[c] kernel, offloads off" cpu$mtu.kerneloff.nsSeg - le
      if has cpu$mtu.kernel.busy_nsB; then
        has "cpu$mtu.ustcpgso.nsB" &&
          row "[a2] CPU per payload byte, MTU $mtu, offloads on both sides" "ns/B" cpu$mtu.ustcpgso.nsB "[b] kernel, offloads on, CPU $CPU busy (each tick once, see [p])" cpu$mtu.kernel.busy_nsB - le
        row "[a] CPU per payload byte, MTU $mtu" "ns/B" cpu$mtu.ustcp.nsB "[c] kernel, offloads off, CPU $CPU busy (see [p])" cpu$mtu.kerneloff.busy_nsB - le
      fi
    done
    row "[a] bulk, MTU 1500, vs the copy" "Gbit/s" bulk1500.ustcp "memcpy of the same bytes" bulk.memcpy -
  fi
  if has membulk1500.uu; then
    row "[r] lwIP → ustcp, in memory, MTU 1500, 1 CPU" "Gbit/s" membulk1500.lu "[r] ustcp → ustcp, same link and loop" membulk1500.uu -
    row "[r] ustcp → lwIP, in memory, MTU 1500, 1 CPU" "Gbit/s" membulk1500.ul "[r] ustcp → ustcp, same link and loop" membulk1500.uu -
    row "[r] lwIP → ustcp: CPU per payload byte, both ends (process, both threads)" "ns/B" memcpu1500.lu.nsB "[r] ustcp → ustcp" memcpu1500.uu.nsB - le
    row "[r] ustcp → lwIP: CPU per payload byte, both ends" "ns/B" memcpu1500.ul.nsB "[r] ustcp → ustcp" memcpu1500.uu.nsB - le
    row "[r] lwIP → ustcp: CPU per 1460 B of payload, both ends" "ns/segment" memcpu1500.lu.nsSeg "[r] ustcp → ustcp" memcpu1500.uu.nsSeg - le
    row "[r] ustcp → lwIP: CPU per 1460 B of payload, both ends" "ns/segment" memcpu1500.ul.nsSeg "[r] ustcp → ustcp" memcpu1500.uu.nsSeg - le
    row "[r] lwIP → ustcp: CPU per payload byte, both ends" "ns/B" memcpu1500.lu.nsB "[r] ustcp → ustcp, buffers fixed at 64 KiB (lwIP's window and send buffer)" memcpu1500.uu64.nsB - le
    row "[r] ustcp → lwIP: CPU per payload byte, both ends" "ns/B" memcpu1500.ul.nsB "[r] ustcp → ustcp, buffers fixed at 64 KiB" memcpu1500.uu64.nsB - le
    row "[r] lwIP → ustcp, in memory" "Gbit/s" membulk1500.lu "[r] ustcp → ustcp, buffers fixed at 64 KiB" membulk1500.uu64 -
    row "[r] ustcp → lwIP, in memory" "Gbit/s" membulk1500.ul "[r] ustcp → ustcp, buffers fixed at 64 KiB" membulk1500.uu64 -
    row "[r] ustcp → ustcp in lwip_bench's loop (gather output, ustcp_recv_direct)" "Gbit/s" membulk1500.uu "[a] ustcp_bench bulk, MTU 1500 (classic API)" bulk1500.ustcp -
  fi
  if has bulk1500.tun || has bulk1500.tunvnet || has bulk1500.tunvnetrx; then
    for v in tun tunvnetrx tunvnetnb tunvnetbr tunvnet; do
      has bulk1500.$v || continue
      case $v in
        tun) d="[d] ustcp on TUN, 1 read/write per packet" ;;
        tunvnetrx) d="[e0] ustcp on TUN, IFF_VNET_HDR, receive offloads only (sends 1 checksummed segment per write)" ;;
        tunvnetnb) d="[e1] ustcp on TUN, offloads as [e], one writev() per frame (no io_uring batches)" ;;
        tunvnetbr) d="[e2] ustcp on TUN, offloads and batched writes as [e], reads batched too (io_uring, up to 16 frames per call)" ;;
        *) d="[e] ustcp on TUN, IFF_VNET_HDR + offloads both ways (sends GSO frames up to 64 KiB, checksums left to the kernel)" ;;
      esac
      row "$d: kernel client → ustcp, MTU 1500" "Gbit/s" bulk1500.$v "[f] kernel → kernel, veth, offloads on" bulk1500.veth -
      row "$d: ustcp → kernel client, MTU 1500" "Gbit/s" bulkrecv1500.$v "[f] kernel → kernel, veth" bulkrecv1500.veth -
      row "$d: short conns (connect, 64 B each way, close)" "conn/s" rr.$v "[f] kernel server, veth" rr.veth -
      row "$d: handshake only" "conn/s" hs.$v "[f] kernel server, veth" hs.veth -
      row "$d: 64 B round trip, median" "µs" lat.$v.p50 "[f] kernel server, veth" lat.veth.p50 - le
      row "$d: 64 B round trip, p99" "µs" lat.$v.p99 "[f] kernel server, veth" lat.veth.p99 - le
      if has cpu1500.$v.busy_nsB; then
        # [p] CPU cost of the bulk transfers above
        row "$d: [p] CPU $CPU busy per payload byte, kernel client → ustcp" "ns/B" cpu1500.$v.busy_nsB \
          "[f] kernel → kernel, veth, CPU $CPU busy" cpu1500.veth.busy_nsB - le
        row "$d: [p] CPU $CPU busy per 1460 B of payload, kernel client → ustcp" "ns/segment" cpu1500.$v.busy_nsSeg \
          "[f] kernel → kernel, veth" cpu1500.veth.busy_nsSeg - le
        row "$d: [p] CPU $CPU busy per payload byte, ustcp → kernel client" "ns/B" cpurecv1500.$v.busy_nsB \
          "[f] kernel → kernel, veth, CPU $CPU busy" cpurecv1500.veth.busy_nsB - le
        row "$d: [p] ustcp's process (user+system) per payload byte, kernel client → ustcp" "ns/B" cpu1500.$v.stack_nsB \
          "[f] kernel_bench serve's process (not the kernel's TCP: see [p])" cpu1500.veth.stack_nsB noratio
        row "$d: [p] ustcp's process per 1460 B of payload, kernel client → ustcp" "ns/segment" cpu1500.$v.stack_nsSeg "-" none -
        row "$d: [p] ustcp's process (user+system) per payload byte, ustcp → kernel client" "ns/B" cpurecv1500.$v.stack_nsB \
          "[f] kernel_bench serve's process (see [p])" cpurecv1500.veth.stack_nsB noratio
      fi
    done
    if has bulk1500.tunvnetrx; then
      row "[e] vs [e0], send GSO on/off: kernel client → ustcp" "Gbit/s" bulk1500.tunvnet "[e0] receive offloads only" bulk1500.tunvnetrx -
      row "[e] vs [e0], send GSO on/off: ustcp → kernel client" "Gbit/s" bulkrecv1500.tunvnet "[e0] receive offloads only" bulkrecv1500.tunvnetrx -
    fi
    # each_way TITLE UNIT KIND A REFLABEL B [SUFFIX [le]]: A against B, kernel client →
    # ustcp (KIND1500.A.SUFFIX) and ustcp → kernel client (KINDrecv1500.A.SUFFIX)
    each_way() {
      local sfx=${7:-} op=${8:-ge}
      row "$1: kernel client → ustcp" "$2" "${3}1500.$4$sfx" "$5" "${3}1500.$6$sfx" - "$op"
      row "$1: ustcp → kernel client" "$2" "${3}recv1500.$4$sfx" "$5" "${3}recv1500.$6$sfx" - "$op"
    }
    if has bulk1500.tunvnetnb; then
      each_way "[e] vs [e1], batched TUN writes on/off" "Gbit/s" bulk tunvnet "[e1] one writev per frame" tunvnetnb
      if has cpu1500.tunvnetnb.stack_nsB; then
        each_way "[e] vs [e1], batched on/off: [p] ustcp's process per payload byte" "ns/B" cpu tunvnet "[e1]" tunvnetnb .stack_nsB le
        each_way "[e] vs [e1], batched on/off: [p] CPU $CPU busy per payload byte" "ns/B" cpu tunvnet "[e1]" tunvnetnb .busy_nsB le
      fi
    fi
    if has bulk1500.tunvnetbr; then
      each_way "[e2] vs [e], batched reads on/off" "Gbit/s" bulk tunvnetbr "[e] one read per frame" tunvnet
      if has cpu1500.tunvnetbr.busy_nsB; then
        each_way "[e2] vs [e], batched reads on/off: [p] CPU $CPU busy per payload byte" "ns/B" cpu tunvnetbr "[e]" tunvnet .busy_nsB le
      fi
    fi
    if has bulk1500.tunvnet; then
      row "[e] vs [d]: kernel client → ustcp" "Gbit/s" bulk1500.tunvnet "[d] plain TUN" bulk1500.tun -
      row "[e] vs [d]: ustcp → kernel client" "Gbit/s" bulkrecv1500.tunvnet "[d] plain TUN" bulkrecv1500.tun -
    fi
    if has bulk1500.lwip; then
      row "[d] ustcp, plain TUN: kernel client → stack" "Gbit/s" bulk1500.tun "[i] lwIP, plain TUN" bulk1500.lwip -
      row "[d] ustcp, plain TUN: stack → kernel client" "Gbit/s" bulkrecv1500.tun "[i] lwIP, plain TUN" bulkrecv1500.lwip -
      row "[e] ustcp, TUN offloads: kernel client → stack" "Gbit/s" bulk1500.tunvnet "[i] lwIP, plain TUN" bulk1500.lwip 2.5
      row "[e] ustcp, TUN offloads: stack → kernel client" "Gbit/s" bulkrecv1500.tunvnet "[i] lwIP, plain TUN" bulkrecv1500.lwip 2.5
      row "[d] ustcp, plain TUN: short conns" "conn/s" rr.tun "[i] lwIP, plain TUN" rr.lwip -
      row "[d] ustcp, plain TUN: handshake only" "conn/s" hs.tun "[i] lwIP, plain TUN" hs.lwip -
      row "[d] ustcp, plain TUN: 64 B round trip, median" "µs" lat.tun.p50 "[i] lwIP, plain TUN" lat.lwip.p50 - le
      row "[i] lwIP, plain TUN: kernel client → stack" "Gbit/s" bulk1500.lwip "[f] kernel → kernel, veth" bulk1500.veth -
      if has cpu1500.lwip.busy_nsB; then
        # [p] CPU cost: the stack's process alone (like for like between the
        # two user-space stacks: same client, same TUN device, same checks) and
        # the whole CPU (client, stack, TUN, softirq).
        for u in tun tunvnet; do
          has cpu1500.$u.stack_nsB || continue
          du=$([ "$u" = tun ] && echo "[d] ustcp, plain TUN" || echo "[e] ustcp, TUN offloads")
          row "$du: [p] the stack's process (user+system) per payload byte, kernel client → stack" "ns/B" \
            cpu1500.$u.stack_nsB "[i] lwIP's process (both threads), plain TUN" cpu1500.lwip.stack_nsB - le
          row "$du: [p] the stack's process per 1460 B of payload, kernel client → stack" "ns/segment" \
            cpu1500.$u.stack_nsSeg "[i] lwIP's process, plain TUN" cpu1500.lwip.stack_nsSeg - le
          row "$du: [p] the stack's process per payload byte, stack → kernel client" "ns/B" \
            cpurecv1500.$u.stack_nsB "[i] lwIP's process, plain TUN" cpurecv1500.lwip.stack_nsB - le
          row "$du: [p] CPU $CPU busy per payload byte, kernel client → stack" "ns/B" \
            cpu1500.$u.busy_nsB "[i] lwIP, plain TUN, CPU $CPU busy" cpu1500.lwip.busy_nsB - le
          row "$du: [p] CPU $CPU busy per payload byte, stack → kernel client" "ns/B" \
            cpurecv1500.$u.busy_nsB "[i] lwIP, plain TUN, CPU $CPU busy" cpurecv1500.lwip.busy_nsB - le
        done
        row "[i] lwIP, plain TUN: [p] CPU $CPU busy per payload byte, kernel client → lwIP" "ns/B" cpu1500.lwip.busy_nsB \
          "[f] kernel → kernel, veth, CPU $CPU busy" cpu1500.veth.busy_nsB - le
        row "[i] lwIP, plain TUN: [p] CPU $CPU busy per 1460 B of payload, kernel client → lwIP" "ns/segment" cpu1500.lwip.busy_nsSeg \
          "[f] kernel → kernel, veth" cpu1500.veth.busy_nsSeg - le
        row "[i] lwIP, plain TUN: [p] CPU $CPU busy per payload byte, lwIP → kernel client" "ns/B" cpurecv1500.lwip.busy_nsB \
          "[f] kernel → kernel, veth, CPU $CPU busy" cpurecv1500.veth.busy_nsB - le
      fi
    fi
  fi
  if has rr.ustcp; then
    row "[g] short conns, in memory (NOT like for like)" "conn/s" rr.ustcp "[h] kernel, veth, epoll" rr.kernel -
    row "[g] handshake only, in memory (NOT like for like)" "conn/s" hs.ustcp "[h] kernel, veth, epoll" hs.kernel -
  fi
  if has lat.ustcp.p50; then
    row "[g] 64 B round trip, in memory, median (NOT like for like)" "µs" lat.ustcp.p50 "[h] kernel, veth" lat.kernel.p50 - le
  fi
  if has mem.ustcp.engine; then
    row "memory per idle conn end, engine accounting" "bytes" mem.ustcp.engine "kernel slab" mem.kernel.slab 0.25 le
    row "memory per idle conn end, process RSS growth" "bytes" mem.ustcp.rss "kernel slab" mem.kernel.slab 0.25 le
  fi
  if has scale.open_s; then
    row "$SCALE_CONNS connections (64 B each way): engine memory per end" "bytes" scale.engine_per_end "-" none -
    row "$SCALE_CONNS connections: process RSS growth per end" "bytes" scale.rss_per_end "-" none -
    row "time to open $SCALE_CONNS connections (connect + 64 B each way)" "s" scale.open_s "-" none -
    row "per-packet CPU, 64 B request/response on random connections, $SCALE_CONNS open" "ns/packet" \
      "scale.pkt_ns.$SCALE_CONNS" "same, 1,000 open" scale.pkt_ns.1000 1.5 le
    if has scale.pkt_ns.100000 && [ "$SCALE_CONNS" != 100000 ]; then
      row "per-packet CPU, 100,000 open" "ns/packet" scale.pkt_ns.100000 "same, 1,000 open" scale.pkt_ns.1000 1.5 le
    fi
  fi
  if has flows1.gbps; then
    for k in 1 100 10000; do
      row "$k flows at once, $FLOW_BYTES B each, in memory: aggregate" "Gbit/s" "flows$k.gbps" "-" none -
      row "$k flows at once: Jain's fairness index of the flows' rates" "index" "flows$k.jain" "-" none -
      row "$k flows at once: peak engine memory, both stacks" "bytes" "flows$k.engine_peak" "-" none -
    done
  fi
  if has kscale.never.10000.slab; then
    # [n] the kernel, bench/kernel_scale.sh: fresh namespace, loopback MTU 1500.
    for n in 10000 100000 1000000; do
      for st in never 64 1m; do
        has "kscale.$st.$n.slab" || continue
        d=$(case $st in never) echo "never used" ;; 64) echo "after 64 B each way" ;; *) echo "idle after 1 MiB each way" ;; esac)
        row "$n conns, $d: ustcp engine memory per end" "bytes" "scale.$st.$n.engine_per_end" "[n] kernel Slab growth per end" "kscale.$st.$n.slab" -
        row "$n conns, $d: ustcp process RSS growth per end" "bytes" "scale.$st.$n.rss_per_end" "[n] kernel Slab growth per end" "kscale.$st.$n.slab" -
        # After malloc_trim(0): heap glibc keeps from freed buffers (the 1 MiB
        # state's) is returned; what is left is what the stacks hold.
        has "scale.$st.$n.rss_trimmed_per_end" &&
          row "$n conns, $d: ustcp process RSS growth per end after malloc_trim" "bytes" "scale.$st.$n.rss_trimmed_per_end" "[n] kernel Slab growth per end" "kscale.$st.$n.slab" -
        row "$n conns, $d: ustcp engine memory per end" "bytes" "scale.$st.$n.engine_per_end" "[n] kernel SUnreclaim per end" "kscale.$st.$n.sunreclaim" noratio
        row "$n conns, $d: ustcp engine memory per end" "bytes" "scale.$st.$n.engine_per_end" "[n] kernel sockstat TCP mem per end" "kscale.$st.$n.sockmem" noratio
      done
    done
  fi
  if has kflows1.gbps; then
    for k in 1 100 10000; do
      row "$k flows of $FLOW_BYTES B at once, aggregate (ustcp: one thread, in memory, no syscalls)" "Gbit/s" "flows$k.gbps" \
        "[o] kernel, loopback, 2 processes on 1 CPU, syscalls, GSO on lo" "kflows$k.gbps" noratio
      row "$k flows at once: Jain's index" "index" "flows$k.jain" "[o] kernel, same" "kflows$k.jain" noratio
    done
  fi
  if has loss0.ustcp; then
    row "loss 0 %, 100 ms RTT, 32 KiB, 10 MiB, sim ($LOSS_SEEDS seeds)" "B/s (virtual)" loss0.ustcp "window/RTT" ideal.window_rtt 0.95
    # Issue 14 point 4: >= 1.0x smoltcp at every rate, >= 2x at 10 % and 30 %.
    for l in 0 1 10 30; do
      t=1.0; [ "$l" -ge 10 ] && t=2
      row "loss $l %, sim with smoltcp's netsim model ($LOSS_SEEDS seeds)" "B/s (virtual)" loss$l.ustcp "smoltcp netsim, published (1 run)" smoltcp.loss$l $t
    done
    for l in 0 1 10 30; do
      has loss$l.kernel || continue
      kb=$(awk -v k="loss$l.kernel_bytes" '$1 == "R" && $2 == k { print $3; exit }' "$RAW")
      ks=$(awk -v k="loss$l.kernel_secs" '$1 == "R" && $2 == k { print $3; exit }' "$RAW")
      what="$kb B"; [ -n "$ks" ] && what="bytes received in the $ks s after the accept"
      row "loss $l %, ustcp sim, $what (as the kernel run)" "B/s" loss$l.ustcp_ksize "[l] kernel, veth + nftables, $what ($LOSS_SEEDS runs)" loss$l.kernel -
      has loss$l.kernel_w22 &&
        row "loss $l %, ustcp sim, $what (as the kernel run)" "B/s" loss$l.ustcp_ksize "[l] kernel with SO_RCVBUF 27500 (window 22 segments, as ustcp's), $what" loss$l.kernel_w22 -
    done
  fi
  if has ooo.holes.ns; then
    row "1-byte segments with 1-byte holes, 32 MiB window" "CPU ns/segment" ooo.holes.ns "same, in order" ooo.inorder.ns 3 le
  fi
  if has zcopy.direct.copies_per_B; then
    row "[j] payload copies by the stacks per byte, send + receive, zero-copy API" "copies/B" zcopy.direct.copies_per_B "[k] classic API" zcopy.classic.copies_per_B - le
    row "[j] of which on the send path" "copies/B" zcopy.direct.tx_copies_per_B "[k] classic API" zcopy.classic.tx_copies_per_B - le
    row "[j] of which on the receive path" "copies/B" zcopy.direct.rx_copies_per_B "[k] classic API" zcopy.classic.rx_copies_per_B - le
    row "[j] CPU per payload byte, both stacks" "ns/B" zcopy.direct.cpu_nsB "[k] classic API" zcopy.classic.cpu_nsB - le
  fi
  echo
  echo "What each side does (every process pinned to CPU $CPU with taskset; payload checked against its stream offset by the receiver in every bulk and request/response run):"
  echo
  echo "- [a2] ustcp_bench bulk --offload: as [a], but the in-memory link has what the veth gives the kernel in [b]: the sender builds frames of up to 64 KiB (TSO/GSO, Linux's tcp_tso_autosize) that cross the link whole, one memcpy per frame into the FIFO slot, and the receiving stack takes each as one packet (as GRO gives the kernel's TCP one large skb); no TCP checksum is computed or verified (CHECKSUM_PARTIAL on send, USTCP_IN_CSUM_VERIFIED on receive, as veth's skbs are marked). Copies: application → send ring, ring → frame, frame → link slot, payload → receive ring, ring → application."
  echo "- [a] ustcp_bench bulk: two ustcp stacks in one process and one thread, joined by an in-memory link (one memcpy per packet into a FIFO slot). No syscalls per packet. Copies: application → send ring, ring → packet (fused with the checksum), packet → link slot, payload → receive ring, ring → application. Checksums: computed on send and verified on receive in software for every segment of MTU−40 bytes. No offloads: the in-memory link has none."
  echo "- [b] kernel_bench bulk → kernel_bench serve: two processes (client, epoll server) on the same CPU, one write()/read() per 256 KiB, over a veth pair between two namespaces with the veth defaults: TSO/GSO (segments of up to 64 KiB cross the veth as one skb), GRO, and checksum offload (no checksum computed or verified). CPU cost = both processes' user+system time + CPU $CPU's softirq time$IRQACCT"
  echo "- [c] as [b] with \`ethtool -K tso off gso off gro off tx off rx off\` on both veth ends: every MTU-sized segment is built, checksummed and verified in software, as ustcp does."
  echo "- [d] ustcp_bench tun-serve: one ustcp stack on a TUN device in the client's namespace (src/link/loop.c, epoll + timerfd, one read() per received packet and one write() per sent packet, software checksums both ways); the client is kernel_bench (the kernel's TCP, its own process) sending through the TUN device. ustcp's sink checks every byte where it lies in the receive buffer (ustcp_recv_direct, what \`ustcp serve --discard\` uses; lwIP's sink [i] checks its pbufs in place too); the kernel's server [f] read()s into a 256 KiB buffer and memcmps it. So each side's application reads every byte once; the copies before it are the kernel's read() into its buffer [f], against TUN read() into the loop's buffer then into the receive ring (ustcp)."
  echo "- [e] as [d] with IFF_VNET_HDR and TUNSETOFFLOAD(TUN_F_CSUM|TUN_F_TSO4): the kernel hands ustcp its unsegmented GSO frames (up to 64 KiB per read, checksum left to the receiver as CHECKSUM_PARTIAL, accepted by ustcp_input_flags(USTCP_IN_CSUM_VERIFIED)); and ustcp sends each TSO frame (Linux's tcp_tso_autosize, up to 64 KiB) as one write with a virtio_net_hdr asking for GSO_TCPV4 at the MSS and NEEDS_CSUM: no TCP checksum computed by ustcp on send, the kernel delivers the frame whole to its TCP (as a GRO packet). Batched writes: TUN has no multi-frame write of its own (no sendmmsg on a character device), so the frames one event of the stack sends go in one io_uring_enter ([e1] is the same without); one read() per frame ([e2]: batched reads); one queue."
  echo "- [e1] as [e] with batched writes off (ustcp_bench tun-serve --vnet --no-batch): one writev() per sent frame, where [e] queues the frames one event of the stack sends and writes them in one io_uring_enter at the stack's flush (src/link/uring.c; loop.c's loop_flush). Everything else as [e]."
  echo "- [e2] as [e] with reads batched too (--vnet --batch-reads): up to 16 read requests per io_uring_enter (RWF_NOWAIT, each into its own 64 KiB buffer; as many as the device has frames, the count following what the last call found), where [e] read()s one frame at a time into one buffer."
  echo "- [e0] as [e] with the send side as before (ustcp_bench tun-serve --vnet-rx-only): one MSS-sized packet per write with its checksum computed by ustcp, marked DATA_VALID."
  echo "- [f] the same kernel_bench client and modes against kernel_bench serve over the veth pair (two processes, offloads on), fresh namespaces per repetition."
  echo "- [g] two ustcp stacks in one thread over the in-memory link: function calls, no syscalls, no wake-ups. Not comparable with [h]; the like-for-like rows are [d]/[e] against [f]."
  echo "- [i] bench/lwip_bench tun-serve: lwIP 2.1.3 (Debian liblwip-dev, the GNU Hurd's build: TCP_MSS 1460, 64 KiB window and send buffer, software checksums) on a TUN device as [d] (one read()/write() per packet), the same services and payload checks, its tcpip thread running the timers; the same kernel client."
  echo "- [j] ustcp_bench zcopy, zero-copy side: as [a] (same in-memory link, one memcpy per packet into a FIFO slot, here from the gather list), the sender writes its data into the send ring with ustcp_send_direct (a memcpy from the pattern: the application producing its bytes), packets leave through the gather output (headers + slices of the send ring, no staging copy), the receiver checks the bytes where they lie with ustcp_recv_direct. Copies counted by the stacks (ustcp_stats tx/rx_bytes_copied; not counted: the link's one copy per packet, the same on both sides, and buffer growth, buf_grow_copied, 0.015 copies/B classic and 0 direct in the published run): the receive buffer fill only. On the send side the application's memcpy into the ring does the work ustcp_send's copy does on the classic side, so the CPU row differs by the staging and application-side receive copies only."
  echo "- [k] the same transfer in the same repetition (order alternating) with ustcp_send from the application's buffer, the flat output (ring → packet) and ustcp_recv into a 256 KiB buffer then checked: application → send ring, ring → packet, packet → receive ring, ring → application."
  echo "- [r] bench/lwip_bench mem: one bulk flow in one process over the in-memory link of [a] (a FIFO of 1500-byte packet slots per receiving end, one memcpy per packet into the slot; ustcp reads the slot in place, lwIP gets a PBUF_RAM copy of it, as on TUN), one thread driving both ends (the main thread holds lwIP's core lock; when nothing moves it releases it so lwIP's tcpip thread can run its timers), pinned to CPU $CPU: lwIP 2.1.3 (Debian's liblwip-dev, the GNU Hurd's configuration: TCP_MSS 1460, 64 KiB window and send buffer, software checksums, checksum on copy) as the sender to a ustcp receiver and as the receiver from a ustcp sender, beside two ustcp stacks (libustcp.so, Linux's defaults with autotuning up to 6 MiB receive / 4 MiB send, as [a]) over the same link and loop. Copies per packet on both stacks alike: the sender's application → send buffer (ustcp_send; lwIP's tcp_write copies into its segment pbuf, checksum on copy) and packet → slot (ustcp's gather output, headers + slices of the send ring, as [j]; lwIP's pbuf), the receiver's slot → receive buffer (ustcp's receive ring; lwIP's PBUF_RAM pbuf); the receiver checks every byte against its stream offset where it lies (ustcp_recv_direct; lwIP's recv callback, in its pbufs): no copy to the application on either. CPU = the process's user+system time (getrusage, both threads) per payload byte. \"buffers fixed at 64 KiB\": the same ustcp → ustcp run with ustcp's send and receive buffers at lwIP's 64 KiB (no autotuning), so that both stacks work within the same window."
  echo "- [p] CPU cost of a bulk transfer over TUN (and of [b]/[c] where a row says \"CPU $CPU busy\"), measured by kernel_bench bulk/bulk-recv --stack-pid P --cpu $CPU from before the connect to the server's close (to the stack) or the last byte read (from the stack), divided by the payload bytes; per 1460 B = per byte × 1460 (one MSS at MTU 1500, whatever the frame size: with offloads ustcp reads and writes frames of up to 64 KiB). Two figures: (1) the stack's process: utime+stime of the server process P from /proc/P/stat, all its threads (ustcp_bench tun-serve: one thread; lwip_bench: its main thread, which reads the TUN device and runs lwIP's input under the core lock, and lwIP's tcpip thread, timers) = the stack's own work, its payload check and its TUN read()/write() syscalls, including the kernel work done inside them: the TUN driver hands each packet written to the kernel's IP and TCP receive path in the writer's context (tun_get_user → netif_receive_skb with bottom halves disabled), so P's system time holds the kernel client's receive processing of what the stack sends (its ACKs in \"kernel client → stack\", all the data in \"stack → kernel client\"), plus any softirq tick that landed while P ran; for the kernel over veth this is kernel_bench serve's process only (its read() copies and checks, not the kernel's TCP receive work, which runs mostly in softirq in the client's context), so that row has no ratio. (2) CPU $CPU busy: the user, nice, system, irq and softirq jiffies of cpu$CPU in /proc/stat over the transfer: the kernel client, the stack (or the kernel server), the TUN or veth driver and every softirq, each tick once (all the benchmark's processes are pinned to CPU $CPU; anything else that ran there in that interval is counted too). Idle time is not counted: a CPU waiting on wake-ups costs nothing. Both are tick-sampled (10 ms): a transfer of a few hundred ms has a few per cent of quantisation."
  if want apps; then
    echo "- apps rows (bench/apps.sh, below; not pinned, both CPUs): programs on ustcp through LD_PRELOAD and \`ustcp serve\` (what a user runs) on TUN devices in one namespace, the kernel's servers across a veth, the same clients. [q] \`ustcp serve --discard --offload\` (one thread; TUN offloads both ways; the bytes consumed in place by ustcp_recv_direct, not copied, not checked) vs kernel_bench serve's port 5003 on the kernel over the veth (one epoll process; recv(MSG_TRUNC): the kernel drops the bytes without copying them out, not checked), the same client kernel_bench bulk (the kernel's TCP, one 256 KiB write() at a time from the pattern, then shutdown and a wait for the server's close): Gbit/s of payload, median [IQR] of interleaved repetitions. The payload is not checked on this pair; the checked transfers are [d]/[e]/[i] against [f]."
  fi
  echo "- [h] kernel_bench rr/hs/lat client against the epoll server over the veth, two processes on one CPU, syscalls and wake-ups per message."
  echo "- loss rows: ustcp_bench loss, two ustcp stacks in src/link/sim with smoltcp's tests/netsim.rs model: per direction its own random stream (seed s: ACK direction 2s, data 2s+1), loss per packet per direction, 50 ms each way, unlimited rate and queue, 32 KiB send and receive buffers, 10 MiB, payload verified; B/s = bytes / virtual time from before the SYN to the last byte. smoltcp's figure is its one published run (seeds 0/1, ChaCha20). [l] bench/kernel_loss.sh: the kernel (CUBIC per socket, SO_RCVBUF/SO_SNDBUF 32768, which Linux doubles) over veths with numgen random mod 100 < N drop (nftables) on each end's ingress and 50 ms each way, payload verified, same time interval, fewer bytes (real time)."
  echo "- [n] bench/kernel_scale.sh mem: a fresh namespace, loopback MTU 1500, N connections opened in batches of 1000 (as ustcp_bench scale), both ends in worker processes of at most ~9,900 connections (the hard RLIMIT_NOFILE here) that open theirs one after another (one batch carries data at a time, as in ustcp_bench), states as ustcp's: never used / 64 B each way / 1 MiB each way verified and drained; after a 1 s settle, the growth of the machine's /proc/meminfo Slab (sockets, request socks, the socket inode, dentry and struct file of each descriptor: what an application holding a kernel connection costs; SUnreclaim is its unreclaimable part) and of /proc/net/sockstat TCP mem (skb and forward-alloc pages) per end (2N ends). Slab is machine-wide: other processes' churn is in it (memory figures are less load-sensitive than rates, not immune). ustcp's side: engine memory (mem_bytes, both stacks) and process RSS growth per end."
  echo "- [o] bench/kernel_scale.sh flows: a fresh namespace, loopback MTU 1500 with lo's default offloads (GSO/TSO: a 64 KB skb crosses lo whole, so far fewer packets than ustcp's MTU-sized segments), a client process (connect, send) and a server process (accept, read, check every byte) with epoll, both pinned to the same CPU (loopback delivers in the sender's softirq there); ustcp's flows are two stacks in one thread over the in-memory link, no syscalls. Same bytes, same clock (from before the first connect to the last flow's end), same Jain index; different work, so no ratio."
} >"$REPORT"
if want apps; then
  # The application rows use both CPUs, so the other-CPU measure cannot judge
  # them; they inherit the verdict of the repetitions before them.
  machine=quiet
  if [ -n "${OTHER:-}" ] && [ "${OTHER#* }" -gt 20 ]; then machine=busy; fi
  # Bounded: apps.sh starts no repetition after APPS_WALL s (default 1800) and
  # every measurement in it has its own timeout; this timeout is the backstop.
  aw=${APPS_WALL:-1800}
  { echo; timeout -k 120 $((aw + 900)) env BUILD="$BUILD" APPS_REPS="$REPS" APPS_MACHINE="$machine" APPS_WALL="$aw" \
      bash "$ROOT/bench/apps.sh" 2>>"$LOG" || echo "apps: FAILED (see $LOG)"; } >>"$REPORT"
fi
echo
cat "$REPORT"
if grep -q FAILED "$LOG"; then
  echo
  echo "Some runs failed; see $LOG:"
  grep FAILED "$LOG"
fi
