#!/usr/bin/env bash
# bench/tun_impair.sh: ustcp and the Linux kernel as senders on the same bad path
# (issue 14 point 3), over TUN, in one run, interleaved.
#
# The path: one network namespace, a TUN device t0 (kernel side 10.7.0.1, ustcp
# 10.7.0.2). The impairment is ustcp's own `--impair SPEC` (src/link/loop.c),
# which acts on BOTH directions of ustcp's link: every packet ustcp writes to
# the device and every packet it reads from it is dropped, reordered or delayed
# by the same rules, from one generator seeded by --seed. So the two transfers
# cross the same impaired link in opposite directions:
#   ustcp as sender:  `ustcp serve --http` sends the file, the kernel receives
#                     (curl); the data segments are impaired on their way out of
#                     ustcp, the kernel's ACKs on their way in;
#   kernel as sender: the kernel sends the file (a Python HTTP server in the
#                     namespace, CUBIC set on its socket with TCP_CONGESTION, as
#                     Linux's default; this machine's kernel defaults to BBR),
#                     ustcp receives (`ustcp get`); the kernel's data segments are
#                     impaired on their way into ustcp, ustcp's ACKs on their way out.
# Both directions see the same loss/reorder/delay probabilities on data and on
# ACKs; what differs is the sender AND the receiver (each side's ACK policy,
# SACK/DSACK, window). "ustcp/kernel as sender" is the ratio of the two transfer
# rates in the same run. The kernel's socket buffers are its defaults
# (autotuning), ustcp's are `ustcp serve`/`ustcp get`'s (1 MiB).
#
# Note on reordering: --impair reorders as netem does: a reordered packet skips
# the delay line and overtakes the packets being delayed, so "reorder" only
# exists with a delay; the reorder-only run is reorder=5%,delay=5ms without loss.
# In that run nothing is lost, so every retransmission is spurious: the script
# reports ustcp's (its connection's retrans_segs, fast_retrans and RTO count
# from `ustcp serve -v`, the TCP_INFO equivalent) and the kernel's (RetransSegs
# of the namespace's /proc/net/snmp, over its transfer). Issue 14 wants ustcp's
# to be zero.
#
# Each transfer is byte-exact (sha256 of what the receiver wrote) and timed by the
# wall clock around the receiving client (curl, ustcp get): process start, the
# handshake and the whole transfer. Repetitions alternate which side goes first.
#
# usage: bench/tun_impair.sh   (environment:)
#   TUNIMP_REPS   repetitions of each side per spec (3)
#   TUNIMP_BYTES  transfer size (20000000)
#   TUNIMP_LIMIT  seconds per transfer before it counts as failed (120)
#   TUNIMP_SPECS  space-separated --impair specs (default: loss=1% loss=2%
#                 loss=1%,reorder=5%,delay=5ms loss=2%,reorder=5%,delay=5ms
#                 reorder=5%,delay=5ms)
#   TUNIMP_CC     the kernel sender's congestion control (cubic; the namespace's
#                 default is the host's, bbr on the machine of bench/RESULTS.md)
#   USTCP         the ustcp binary (build/ustcp)
#   TUNIMP_VERBOSE  set: print ustcp's connection line (RACK, D-SACK, undo counts)
# Output: "R tunimp.<spec>.<what> <value>" lines on stdout (what: ustcp_send,
# kernel_send in MB/s; ustcp_retrans, ustcp_fast, ustcp_rto, kernel_retrans), a
# summary table on stderr. Needs root, /dev/net/tun, curl, python3, sha256sum.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
U=${USTCP:-$ROOT/build/ustcp}
REPS=${TUNIMP_REPS:-3}
BYTES=${TUNIMP_BYTES:-20000000}
LIMIT=${TUNIMP_LIMIT:-120}
CC=${TUNIMP_CC:-cubic}
SPECS=${TUNIMP_SPECS:-"loss=1% loss=2% loss=1%,reorder=5%,delay=5ms loss=2%,reorder=5%,delay=5ms reorder=5%,delay=5ms"}
[ "$REPS" -ge 1 ] && [ "$REPS" -le 20 ] || { echo "tun_impair: 1 <= TUNIMP_REPS <= 20" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "tun_impair: needs root (namespace, TUN)" >&2; exit 1; }
[ -c /dev/net/tun ] || { echo "tun_impair: /dev/net/tun missing" >&2; exit 1; }
[ -x "$U" ] || { echo "tun_impair: $U missing (make build)" >&2; exit 1; }
for c in ip curl python3 sha256sum timeout; do
  command -v $c >/dev/null || { echo "tun_impair: $c missing" >&2; exit 1; }
done
PY=$(python3 -c 'import sys; print(sys.executable)')

ns=ustcp-tunimp-$$-$RANDOM
tmp=$(mktemp -d)
chmod 755 "$tmp"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
  sleep 0.2
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
nsx() { ip netns exec "$ns" "$@"; }
now() { date +%s.%N; }

ip netns add "$ns"
nsx ip link set lo up
nsx ip tuntap add dev t0 mode tun
nsx ip addr add 10.7.0.1 peer 10.7.0.2 dev t0
nsx ip link set t0 up
mkdir -p "$tmp/www"
head -c "$BYTES" /dev/urandom >"$tmp/www/big.bin"
chmod -R a+rX "$tmp/www"
want=$(sha256sum "$tmp/www/big.bin" | cut -d' ' -f1)

# The kernel's sender: an HTTP file server whose listening socket has $CC (the
# accepted sockets inherit it).
cat >"$tmp/ksrv.py" <<'EOF'
import functools, http.server, socket, sys
class S(http.server.ThreadingHTTPServer):
    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, sys.argv[2].encode())
        super().server_bind()
h = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
h.log_message = lambda *a: None
S(("10.7.0.1", 8000), h).serve_forever()
EOF
timeout $((LIMIT * 40 + 600)) ip netns exec "$ns" "$PY" "$tmp/ksrv.py" "$tmp/www" "$CC" >"$tmp/ksrv.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do nsx ss -ltn 2>/dev/null | grep -q "10.7.0.1:8000 " && break; sleep 0.1; done
nsx ss -ltn | grep -q "10.7.0.1:8000 " || { echo "tun_impair: the kernel's HTTP server did not start" >&2; cat "$tmp/ksrv.log" >&2; exit 1; }

kretrans() { nsx awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) c[$i] = i; h = 1 } else print $c["RetransSegs"] }' /proc/net/snmp; }
mbps() { awk -v b="$1" -v t0="$2" -v t1="$3" 'BEGIN { printf "%.3f", b / (t1 - t0) / 1e6 }'; }
label() { echo "$1" | tr -d '%' | tr ',=' '_-'; }

# ustcp_send SPEC SEED LABEL
ustcp_send() {
  local spec=$1 seed=$2 lb=$3 ctl=$tmp/ctl.sock pid t0 t1 rc line
  rm -f "$ctl" "$tmp/got1.bin"
  timeout $((LIMIT + 30)) ip netns exec "$ns" "$U" serve --http "$tmp/www" --tun t0 --no-configure \
    --ctl "$ctl" --impair "$spec" --seed "$seed" -v >"$tmp/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 50); do timeout 5 "$U" stat --ctl "$ctl" >/dev/null 2>&1 && break; sleep 0.1; done
  t0=$(now)
  nsx curl -sS --max-time "$LIMIT" -o "$tmp/got1.bin" http://10.7.0.2/big.bin 2>>"$tmp/curl.err"
  rc=$?
  t1=$(now)
  # the connection's counters, logged by serve -v when it closes (after curl's FIN)
  for _ in $(seq 1 50); do grep -q " closed (" "$tmp/serve.log" && break; sleep 0.1; done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  line=$(grep " closed (" "$tmp/serve.log" | tail -1)
  [ -n "${TUNIMP_VERBOSE:-}" ] && echo "tun_impair: $spec seed $seed: $line" >&2
  if [ "$rc" = 0 ] && [ "$(sha256sum <"$tmp/got1.bin" | cut -d' ' -f1)" = "$want" ]; then
    echo "R tunimp.$lb.ustcp_send $(mbps "$BYTES" "$t0" "$t1")"
    set -- $(echo "$line" | sed -n 's/.*retransmitted \([0-9]*\) segments: \([0-9]*\) fast retransmits, \([0-9]*\) timeouts.*/\1 \2 \3/p')
    if [ $# = 3 ]; then
      echo "R tunimp.$lb.ustcp_retrans $1"
      echo "R tunimp.$lb.ustcp_fast $2"
      echo "R tunimp.$lb.ustcp_rto $3"
    fi
  else
    echo "R tunimp.$lb.ustcp_send_failed 1"
    echo "tun_impair: $spec: ustcp -> kernel FAILED (curl rc $rc or sha256 mismatch); $(tail -2 "$tmp/serve.log")" >&2
  fi
}

# kernel_send SPEC SEED LABEL
kernel_send() {
  local spec=$1 seed=$2 lb=$3 r0 r1 t0 t1 rc
  rm -f "$tmp/got2.bin"
  r0=$(kretrans)
  t0=$(now)
  nsx timeout $((LIMIT + 10)) "$U" get --tun t0 --no-configure --no-ctl --timeout "$LIMIT" \
    --impair "$spec" --seed "$seed" http://10.7.0.1:8000/big.bin -o "$tmp/got2.bin" >"$tmp/get.log" 2>&1
  rc=$?
  t1=$(now)
  r1=$(kretrans)
  if [ "$rc" = 0 ] && [ "$(sha256sum <"$tmp/got2.bin" | cut -d' ' -f1)" = "$want" ]; then
    echo "R tunimp.$lb.kernel_send $(mbps "$BYTES" "$t0" "$t1")"
    echo "R tunimp.$lb.kernel_retrans $((r1 - r0))"
  else
    echo "R tunimp.$lb.kernel_send_failed 1"
    echo "tun_impair: $spec: kernel -> ustcp FAILED (ustcp get rc $rc or sha256 mismatch); $(tail -2 "$tmp/get.log")" >&2
  fi
}

echo "tun_impair: $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); $BYTES bytes, $REPS reps per side per spec; the kernel sends with $CC" >&2
RAW=$tmp/raw
: >"$RAW"
for spec in $SPECS; do
  lb=$(label "$spec")
  for r in $(seq 1 "$REPS"); do
    seed=$((1000 + r))
    if [ $((r % 2)) = 1 ]; then
      ustcp_send "$spec" "$seed" "$lb" | tee -a "$RAW"
      kernel_send "$spec" "$seed" "$lb" | tee -a "$RAW"
    else
      kernel_send "$spec" "$seed" "$lb" | tee -a "$RAW"
      ustcp_send "$spec" "$seed" "$lb" | tee -a "$RAW"
    fi
  done
done

med() {  # key -> "median [min-max] (n)" or "-"
  awk -v k="$1" '$1 == "R" && $2 == k { print $3 }' "$RAW" | sort -g |
    awk '{ v[NR] = $1 } END { if (!NR) { print "-"; exit }
      m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
      printf "%g [%g-%g] (%d)\n", m, v[1], v[NR], NR }'
}
medv() { med "$1" | cut -d' ' -f1; }
{
  echo "tun_impair: load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
  echo "| --impair (both directions) | ustcp → kernel, MB/s | kernel → ustcp, MB/s | ustcp/kernel as sender | ustcp's retransmissions (fast, RTO) | kernel's retransmissions |"
  echo "|---|---|---|---|---|---|"
  for spec in $SPECS; do
    lb=$(label "$spec")
    u=$(medv "tunimp.$lb.ustcp_send"); k=$(medv "tunimp.$lb.kernel_send")
    ratio=$(awk -v a="$u" -v b="$k" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.3g", a / b }')
    echo "| $spec | $(med "tunimp.$lb.ustcp_send") | $(med "tunimp.$lb.kernel_send") | $ratio | $(medv "tunimp.$lb.ustcp_retrans") ($(medv "tunimp.$lb.ustcp_fast"), $(medv "tunimp.$lb.ustcp_rto")) | $(medv "tunimp.$lb.kernel_retrans") |"
  done
  fails=$(grep -c "_failed" "$RAW")
  [ "$fails" = 0 ] || echo "$fails transfers FAILED (see above)"
} >&2
