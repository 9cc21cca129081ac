#!/usr/bin/env bash
# bench/kernel_loss.sh: the loss curve of bench/RESULTS.md for the Linux kernel, the
# third column beside ustcp's simulator run and smoltcp's published netsim figures
# (issue 14 point 4).
#
# For each loss rate N (%) it runs RUNS transfers at once, each over its own pair of
# fresh network namespaces joined by a veth:
#   - random loss per packet made by nftables on both ends, on the ingress of each
#     veth end: `numgen random mod 100 < N drop` (netdev family), so each direction
#     loses N % of its packets, independently (as smoltcp's netsim, one draw per
#     packet per direction); nothing is dropped at N = 0;
#   - 50 ms one-way delay each way (100 ms RTT): `tc qdisc add dev VETH root netem
#     delay 50ms limit 10000` on each end's egress; netem's own loss is not used.
#     Where the kernel has no sch_netem (the kernel of the machine these figures
#     were measured on is built without it, and without nft's queue statement)
#     the two namespaces are instead joined through a third one: A -veth- R -veth- B,
#     where bench/kernel_loss.py relay passes every frame from one veth to the other
#     50 ms after it arrived, in order (AF_PACKET; R has no addresses, its own stack
#     drops the frames it also sees). The loss rules stay on A's and B's veth
#     ingress. KLOSS_DELAY=netem|relay forces one; the report says which was used
#     (the netem branch was not run on that machine);
#   - segmentation and receive offloads off on both veth ends (ethtool -K tso off
#     gso off gro off), so that every packet the loss rule sees is one segment of at
#     most one MSS, as on a wire; static neighbour entries (no ARP);
#   - SO_RCVBUF and SO_SNDBUF fixed to BUF (32768) on both sockets before
#     listen/connect (bench/kernel_loss.py); Linux doubles the value it is given and
#     counts its bookkeeping in the buffer (see bench/RESULTS.md for what this
#     means for the window); congestion control CUBIC (Linux's default; KLOSS_CC
#     to change it), the kernel's defaults otherwise (SACK, timestamps), which the
#     report prints;
#   - the receiver checks every byte against the stream pattern and measures the
#     time; the figure is bytes / (last byte received - just before connect()), the
#     same interval as smoltcp's netsim and ustcp_bench loss (virtual time from
#     before the SYN to the last byte). Both ends read CLOCK_MONOTONIC.
# "10 seeds" here are 10 runs: numgen random cannot be seeded. The key of the
# results is loss<N>.kernel, or loss<N>.kernel_<cc> when KLOSS_CC is not cubic, or
# loss<N>.$KLOSS_KEY. BUF=27500 gives the kernel the window ustcp has with 32 KiB:
# its largest advertised window is then 31,856 B = 22 segments of 1,448 B (with
# BUF=32768 it is 39,096-40,544 B, 27-28 segments).
#
# The transfer is shorter than the simulators' 10 MiB (it runs in real time); the
# bytes per loss rate are KLOSS_BYTES_<N> (defaults below), printed with the result.
# At 30 % a fixed size is no measure for the kernel: its exponential RTO backoff
# left 7 of 10 transfers of 128 KiB unfinished after 60 s (the finished ones
# would be a survivors' median). So a rate given KLOSS_SECS_<N> (default: 60 for
# 30 %) runs in duration mode instead: the sender sends without end, the
# receiver counts the verified bytes that arrive in the SECS seconds after the
# accept, and the figure is those bytes over the time since just before connect();
# ustcp_bench loss --vtime SECS measures the same in the simulator.
#
# Output: "R loss<N>.kernel <B/s>" per verified run on stdout (bench/run.sh collects
# them), then "R loss<N>.kernel_bytes B" or "R loss<N>.kernel_secs S" (what each run
# moved), and a summary per run on stderr. A run that misses its time limit or
# whose payload does not verify prints "R loss<N>.kernel_failed 1" instead.
#
# usage: bench/kernel_loss.sh [-n RUNS (10)] [-l "0 1 10 30"] [-t SECONDS per run (60)]
# Needs root, ip (iproute2), nft (nftables), ethtool, python3; tc with sch_netem
# optional. Every loop is bounded in count and time; everything is removed on exit.
set -euo pipefail

RUNS=10
LOSSES="0 1 10 30"
LIMIT=60
while getopts "n:l:t:" o; do
  case $o in
    n) RUNS=$OPTARG ;;
    l) LOSSES=$OPTARG ;;
    t) LIMIT=$OPTARG ;;
    *) sed -n '/^# usage/,/^# optional/p' "$0" >&2; exit 2 ;;
  esac
done
[ "$RUNS" -ge 1 ] && [ "$RUNS" -le 50 ] || { echo "kernel_loss: 1 <= RUNS <= 50" >&2; exit 2; }
BUF=${BUF:-32768}
# CUBIC, Linux's default, set on both sockets with TCP_CONGESTION (a namespace's
# tcp_congestion_control only takes what tcp_allowed_congestion_control lists);
# this machine's kernel is built with BBR as its default, KLOSS_CC=bbr measures that.
CC=${KLOSS_CC:-cubic}
KEY=${KLOSS_KEY:-kernel$([ "$CC" = cubic ] || echo "_$CC")}
DELAY_MS=${DELAY_MS:-50}
HERE=$(cd "$(dirname "$0")" && pwd)
PYH=$HERE/kernel_loss.py
PY=$(python3 -c 'import sys; print(sys.executable)')

if [ "$(id -u)" != 0 ]; then echo "kernel_loss: needs root (network namespaces)" >&2; exit 1; fi
for c in ip nft ethtool timeout; do
  command -v $c >/dev/null || { echo "kernel_loss: $c missing (scripts/install-test-deps.sh: nftables, iproute2, ethtool)" >&2; exit 1; }
done

secs_for() {  # loss % -> seconds of duration mode, or nothing for a fixed size
  local v="KLOSS_SECS_$1"
  if [ -n "${!v+x}" ]; then echo "${!v}"; return; fi
  [ "$1" = 30 ] && echo 60
  return 0
}
bytes_for() {  # loss % -> bytes for one run (real time, 100 ms RTT: times as measured)
  local v="KLOSS_BYTES_$1"
  if [ -n "${!v:-}" ]; then echo "${!v}"; return; fi
  case $1 in
    0) echo $((2 << 20)) ;;      # ~6 s
    1) echo $((2 << 20)) ;;      # ~10 s
    10) echo $((512 << 10)) ;;   # ~15 s
    30) echo $((128 << 10)) ;;   # ~10-60 s
    *) echo $((256 << 10)) ;;
  esac
}

# Unique names: at most 6 hex digits of tag, so that veth names fit 15 bytes.
TAG=$(printf '%06x' $(( ($$ * 32768 + RANDOM) % 16777216 )))
NSS=()
PIDS=()
WORK=$(mktemp -d)
cleanup() {
  set +e
  local p n
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for n in "${NSS[@]}"; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null
  done
  sleep 0.2
  for n in "${NSS[@]}"; do
    ip netns pids "$n" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$n" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Does this kernel have sch_netem? (Probed once in a throwaway namespace.)
NETEM=0
case ${KLOSS_DELAY:-auto} in
  netem) NETEM=1 ;;
  relay) NETEM=0 ;;
  *)
    probe=kl-$TAG-probe
    ip netns add "$probe"; NSS+=("$probe")
    ip -n "$probe" link add kl${TAG}p0 type veth peer name kl${TAG}p1
    ip netns exec "$probe" tc qdisc add dev kl${TAG}p0 root netem delay 1ms 2>/dev/null && NETEM=1
    ip netns del "$probe" ;;
esac
if [ "$NETEM" = 1 ]; then
  DELAY_HOW="netem delay ${DELAY_MS}ms on each veth end's egress, one veth between the namespaces"
else
  DELAY_HOW="no sch_netem: a relay namespace between two veths, kernel_loss.py relay holding each frame ${DELAY_MS} ms each way, FIFO"
fi

# pair_up L I: namespaces a/b (and r for the relay) for run I of loss L, loss and
# delay both ways.
pair_up() {
  local l=$1 i=$2 a=kl-$TAG-$1-$2-a b=kl-$TAG-$1-$2-b r=kl-$TAG-$1-$2-r
  local va=kl${TAG}${i}a vb=kl${TAG}${i}b ra=kl${TAG}${i}c rb=kl${TAG}${i}d side ns dev ma mb
  ip netns add "$a"; NSS+=("$a")
  ip netns add "$b"; NSS+=("$b")
  if [ "$NETEM" = 1 ]; then
    ip link add "$va" netns "$a" type veth peer name "$vb" netns "$b"
  else
    ip netns add "$r"; NSS+=("$r")
    ip link add "$va" netns "$a" type veth peer name "$ra" netns "$r"
    ip link add "$vb" netns "$b" type veth peer name "$rb" netns "$r"
    for dev in "$ra" "$rb"; do
      ip netns exec "$r" ethtool -K "$dev" tso off gso off gro off >/dev/null 2>&1 || true
      ip -n "$r" link set "$dev" up
    done
    ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=0
    timeout -k 5 $((LIMIT + 200)) ip netns exec "$r" "$PY" "$PYH" relay "$ra" "$rb" "$DELAY_MS" \
      >"$WORK/relay-$l-$i.out" 2>&1 &
    PIDS+=($!)
  fi
  ip -n "$a" addr add 10.79.0.1/24 dev "$va"
  ip -n "$b" addr add 10.79.0.2/24 dev "$vb"
  for side in "$a:$va" "$b:$vb"; do
    ns=${side%%:*}; dev=${side#*:}
    ip -n "$ns" link set lo up
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off >/dev/null 2>&1 || true
    ip -n "$ns" link set "$dev" up
    if [ "$l" != 0 ]; then
      printf 'table netdev kloss {\n  chain in {\n    type filter hook ingress device "%s" priority 0; policy accept;\n    counter\n    numgen random mod 100 < %s counter drop\n  }\n}\n' \
        "$dev" "$l" | ip netns exec "$ns" nft -f -
    fi
    [ "$NETEM" = 1 ] && ip netns exec "$ns" tc qdisc add dev "$dev" root netem delay "${DELAY_MS}ms" limit 10000
  done
  ma=$(ip -n "$a" -o link show "$va" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  mb=$(ip -n "$b" -o link show "$vb" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p')
  ip -n "$a" neigh replace 10.79.0.2 lladdr "$mb" dev "$va" nud permanent
  ip -n "$b" neigh replace 10.79.0.1 lladdr "$ma" dev "$vb" nud permanent
}

# wait_for FILE WORD: at most 5 s until FILE holds WORD.
wait_for() {
  for _ in $(seq 1 50); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

echo "kernel_loss: $(uname -r); cc $CC (the host's default: $(sysctl -n net.ipv4.tcp_congestion_control)), sack $(sysctl -n net.ipv4.tcp_sack), timestamps $(sysctl -n net.ipv4.tcp_timestamps), SO_RCVBUF/SO_SNDBUF $BUF; delay: $DELAY_HOW" >&2
for l in $LOSSES; do
  total=$(bytes_for "$l")
  secs=$(secs_for "$l")
  tlimit=$LIMIT
  if [ -n "$secs" ]; then total=0; tlimit=$secs; fi
  PIDS=()
  for i in $(seq 1 "$RUNS"); do pair_up "$l" "$i"; done
  if [ "$NETEM" = 0 ]; then
    for i in $(seq 1 "$RUNS"); do
      wait_for "$WORK/relay-$l-$i.out" relaying ||
        { echo "kernel_loss: relay $i did not start:" >&2; cat "$WORK/relay-$l-$i.out" >&2; exit 1; }
    done
  fi
  # The path's RTT, once per loss rate (pings may be lost too: 5 of them).
  rtt=$(ip netns exec "kl-$TAG-$l-1-b" ping -n -q -c 5 -i 0.2 -W 2 10.79.0.1 2>/dev/null | sed -n 's|.*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
  echo "kernel_loss: loss $l %: ping RTT over the path (avg of those answered) ${rtt:-none answered} ms" >&2
  rpids=()
  for i in $(seq 1 "$RUNS"); do
    timeout -k 5 $((tlimit + 10)) ip netns exec "kl-$TAG-$l-$i-a" env BUF="$BUF" CC="$CC" "$PY" "$PYH" recv 5000 "$total" "$tlimit" \
      >"$WORK/recv-$l-$i.out" 2>&1 &
    rpids+=($!)
  done
  for i in $(seq 1 "$RUNS"); do
    wait_for "$WORK/recv-$l-$i.out" listening || { echo "kernel_loss: receiver $i did not listen" >&2; cat "$WORK/recv-$l-$i.out" >&2; exit 1; }
    timeout -k 5 $((tlimit + 10)) ip netns exec "kl-$TAG-$l-$i-b" env BUF="$BUF" CC="$CC" "$PY" "$PYH" send 10.79.0.1 5000 "$total" \
      >"$WORK/send-$l-$i.out" 2>&1 &
    rpids+=($!)
  done
  for p in "${rpids[@]}"; do wait "$p" || true; done
  for i in $(seq 1 "$RUNS"); do
    r=$(grep '^bytes=' "$WORK/recv-$l-$i.out" || true)
    t0=$(sed -n 's/^t_connect=//p' "$WORK/send-$l-$i.out")
    set -- $(echo "$r" | sed 's/[a-z_]*=//g')
    if [ "$#" -ge 7 ] && [ "$4" = 1 ] && [ -n "$t0" ]; then
      tend=$3; [ "$total" = 0 ] && tend=$7   # duration mode: the window's end
      v=$(awk -v b="$1" -v t1="$tend" -v t0="$t0" 'BEGIN { printf "%.1f", b / (t1 - t0) }')
      echo "R loss$l.$KEY $v"
      echo "kernel_loss: loss $l % run $i: $1 bytes verified in $(awk -v t1="$tend" -v t0="$t0" 'BEGIN { printf "%.2f", t1 - t0 }') s: $v B/s (largest window advertised ${5:-?}, SO_RCVBUF reads back ${6:-?})" >&2
    else
      echo "R loss$l.${KEY}_failed 1"
      echo "kernel_loss: loss $l % run $i FAILED (time limit $LIMIT s or payload): recv '${r:-nothing}' $(head -c 300 "$WORK/send-$l-$i.out")" >&2
    fi
  done
  # What the loss rules did, over all runs: packets seen and dropped on each end.
  if [ "$l" != 0 ]; then
    seen=0; dropped=0
    for i in $(seq 1 "$RUNS"); do
      for s in a b; do
        set -- $(ip netns exec "kl-$TAG-$l-$i-$s" nft list table netdev kloss 2>/dev/null |
          sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | tr '\n' ' ')
        [ $# = 2 ] && { seen=$((seen + $1)); dropped=$((dropped + $2)); }
      done
    done
    echo "kernel_loss: loss $l %: the nftables rules dropped $dropped of $seen packets ($(awk -v d="$dropped" -v n="$seen" 'BEGIN { printf "%.2f", n ? 100 * d / n : 0 }') %)" >&2
  fi
  # This loss rate's namespaces and helpers go before the next one's.
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  PIDS=()
  for i in $(seq 1 "$RUNS"); do
    ip netns del "kl-$TAG-$l-$i-a" 2>/dev/null || true
    ip netns del "kl-$TAG-$l-$i-b" 2>/dev/null || true
    ip netns del "kl-$TAG-$l-$i-r" 2>/dev/null || true
  done
  if [ "$total" = 0 ]; then echo "R loss$l.${KEY}_secs $secs"; else echo "R loss$l.${KEY}_bytes $total"; fi
done
