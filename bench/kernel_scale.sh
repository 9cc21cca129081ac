#!/usr/bin/env bash
# bench/kernel_scale.sh: the Linux kernel measured as `ustcp_bench scale` and
# `ustcp_bench flows` measure ustcp (issue 15 point 3), each measurement in a
# fresh network namespace of its own (loopback only, MTU 1500 as ustcp's
# in-memory link, ephemeral ports 10000-65535; deleted afterwards, so no
# TIME_WAIT or socket is inherited). Needs root.
#
#   kernel_scale.sh mem N STATE     N connections, STATE never | 64 | 1m
#                                   (bench/kernel_scale.c mem: Slab, SUnreclaim,
#                                   sockstat TCP mem and worker RSS per end)
#   kernel_scale.sh flows K BYTES   K bulk flows of BYTES at once, client and
#                                   server processes pinned to CPU $KSCALE_CPU
#   kernel_scale.sh                 the sweep: for N in 10k, 100k (and 1M with
#                                   KSCALE_1M=1) and each state, ustcp then the
#                                   kernel; then 1, 100 and 10,000 flows, ustcp
#                                   then the kernel; prints "R key value" lines
#                                   and a table.
#
# Environment: BUILD (build dir, default build), KSCALE_CPU (0), KSCALE_WALL
# (seconds per measurement, 240), KSCALE_1M=1 (also 1,000,000 connections:
# about 10 GB of kernel memory and several minutes; never/64 only),
# KSCALE_BIG=1 (the 1 MiB state at 100k too: 200 GiB copied, ~15 min; by
# default that state runs at 10k only), KSCALE_FLOW_BYTES (1048576).
# Every measurement runs under `timeout`; every loop here has a fixed count.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
KS=$BUILD/bench/kernel_scale
UB=$BUILD/bench/ustcp_bench
CPU=${KSCALE_CPU:-0}
WALL=${KSCALE_WALL:-240}
FLOW_BYTES=${KSCALE_FLOW_BYTES:-1048576}

if [ "$(id -u)" != 0 ]; then
  echo "kernel_scale: needs root (network namespaces); skipped" >&2
  exit 77
fi
[ -x "$KS" ] || { echo "kernel_scale: $KS missing; run 'make build' first" >&2; exit 1; }

NS=
cleanup() {
  set +e
  [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
  NS=
  true
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# A fresh namespace with a unique name (PID, random tag, counter).
SEQ=0
ns_up() {
  cleanup
  SEQ=$((SEQ + 1))
  NS=kscale-$$-$(printf '%04x' $((RANDOM % 65536)))-$SEQ
  ip netns add "$NS"
  ip -n "$NS" link set lo mtu 1500 up
  ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="10000 65535"
}

k_mem() {
  ns_up
  local rc=0
  timeout -k 5 "$((WALL + 30))" ip netns exec "$NS" "$KS" mem --conns "$1" --state "$2" --wall "$WALL" || rc=$?
  cleanup
  return "$rc"
}

k_flows() {
  ns_up
  local rc=0
  timeout -k 5 "$((WALL + 30))" ip netns exec "$NS" taskset -c "$CPU" "$KS" flows --conns "$1" --bytes "$2" \
    --wall "$WALL" || rc=$?
  cleanup
  return "$rc"
}

case "${1:-}" in
  mem) k_mem "$2" "$3"; exit ;;
  flows) k_flows "$2" "$3"; exit ;;
  "") ;;
  *) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac

# ---- the sweep ----
[ -x "$UB" ] || { echo "kernel_scale: $UB missing" >&2; exit 1; }
OUT=$(mktemp)
trap 'rm -f "$OUT"; cleanup' EXIT
echo "kernel_scale: load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
NS_LIST="10000 100000"
[ "${KSCALE_1M:-0}" = 1 ] && NS_LIST="$NS_LIST 1000000"
for n in $NS_LIST; do
  for st in never 64 1m; do
    if [ "$st" = 1m ] && [ "$n" != 10000 ] && [ "${KSCALE_BIG:-0}" != 1 ]; then continue; fi
    [ "$st" = 1m ] && [ "$n" = 1000000 ] && continue
    timeout -k 5 "$((WALL + 30))" taskset -c "$CPU" "$UB" scale --conns "$n" --state "$st" --reps 1 \
      --wall "$WALL" | grep "^R scale\.$st\." | tee -a "$OUT" || echo "kernel_scale: ustcp scale $n $st FAILED" >&2
    k_mem "$n" "$st" | tee -a "$OUT" || echo "kernel_scale: kernel mem $n $st FAILED" >&2
  done
done
for k in 1 100 10000; do
  timeout -k 5 "$((WALL + 30))" taskset -c "$CPU" "$UB" flows --conns "$k" --bytes "$FLOW_BYTES" --reps 1 \
    --wall "$WALL" | tee -a "$OUT" || echo "kernel_scale: ustcp flows $k FAILED" >&2
  k_flows "$k" "$FLOW_BYTES" | tee -a "$OUT" || echo "kernel_scale: kernel flows $k FAILED" >&2
done
echo "kernel_scale: load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

v() { awk -v k="$1" '$1 == "R" && $2 == k { x = $3 } END { if (x == "") print "-"; else if (x + 0 >= 100 || x + 0 <= -100) printf "%.0f\n", x; else printf "%.3g\n", x }' "$OUT"; }
echo
echo "| connections | state | ustcp engine B/end | ustcp RSS B/end | ustcp RSS after malloc_trim B/end | kernel Slab B/end | kernel SUnreclaim B/end | kernel sockstat mem B/end | kernel workers' RSS B/end |"
echo "|---|---|---|---|---|---|---|---|---|"
for n in $NS_LIST; do
  for st in never 64 1m; do
    [ "$(v "kscale.$st.$n.slab")" = - ] && [ "$(v "scale.$st.$n.engine_per_end")" = - ] && continue
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$n" "$st" "$(v "scale.$st.$n.engine_per_end")" \
      "$(v "scale.$st.$n.rss_per_end")" "$(v "scale.$st.$n.rss_trimmed_per_end")" "$(v "kscale.$st.$n.slab")" "$(v "kscale.$st.$n.sunreclaim")" \
      "$(v "kscale.$st.$n.sockmem")" "$(v "kscale.$st.$n.rss")"
  done
done
echo
echo "| flows of $FLOW_BYTES B | ustcp Gbit/s | ustcp Jain | kernel Gbit/s | kernel Jain |"
echo "|---|---|---|---|---|"
for k in 1 100 10000; do
  printf '| %s | %s | %s | %s | %s |\n' "$k" "$(v "flows$k.gbps")" "$(v "flows$k.jain")" "$(v "kflows$k.gbps")" \
    "$(v "kflows$k.jain")"
done
