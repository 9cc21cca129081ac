#!/usr/bin/env bash
# bench/ustcp_bench tun-serve's bulk sink (port 5001, the bulk1500.tun* rows of
# bench/run.sh) checks every byte against its stream offset (bench_util.h)
# where it lies in ustcp's receive buffer (ustcp_recv_direct):
#   a) kernel_bench bulk sends 64 MiB through the TUN device with offloads
#      (--vnet, GSO frames): the sink takes it all (a rate is reported) and
#      logs no mismatch
#   b) 1 MB of zeros instead of the stream's bytes: the sink logs a PAYLOAD
#      MISMATCH and resets the connection, so no rate could be reported
# Needs root, /dev/net/tun, socat and the bench binaries; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init bsink socat
UB=${USTCP_BUILD_DIR:?}/bench/ustcp_bench
KB=$USTCP_BUILD_DIR/bench/kernel_bench
[ -x "$UB" ] && [ -x "$KB" ] || skip "bench binaries not built"

dev=tbs$$
timeout 170 "$UB" tun-serve --ns "$ns" --tun "$dev" --addr 10.79.0.2 --peer 10.79.0.1 \
  --mtu 1500 --vnet > "$tmp/serve.log" 2>&1 &
PIDS+=($!)
up=0
for _ in $(seq 50); do
  ip -n "$ns" addr show dev "$dev" 2>/dev/null | grep -q "inet 10.79.0.1 " && { up=1; break; }
  sleep 0.1
done
[ "$up" = 1 ] || { cat "$tmp/serve.log"; echo "FAIL: tun-serve never came up"; exit 1; }

out=$(timeout 120 "$KB" bulk --ns "$ns" --addr 10.79.0.2 --label sink --mtu 1500 \
  --bytes $((64 << 20)) --reps 1 2> "$tmp/kb.err")
echo "   kernel_bench: $out"
check "a) 64 MiB of the stream's bytes taken by the sink (a rate reported)" \
  grep -q "^R bulk1500.sink [0-9]" <<< "$out"
check "a) no mismatch logged" bash -c "! grep -q MISMATCH '$tmp/serve.log'"

head -c 1000000 /dev/zero | nsx timeout 20 socat -u - TCP:10.79.0.2:5001 2> "$tmp/socat.err"
for _ in $(seq 20); do grep -q "PAYLOAD MISMATCH" "$tmp/serve.log" && break; sleep 0.1; done
check "b) zeros instead of the stream: PAYLOAD MISMATCH logged" grep -q "PAYLOAD MISMATCH" "$tmp/serve.log"
finish
