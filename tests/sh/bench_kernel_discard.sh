#!/usr/bin/env bash
# Issue 15 points 2 and 5: kernel_bench serve's discard port (5003, recv with
# MSG_TRUNC: the reference beside `ustcp serve --discard` in bench/apps.sh)
# takes a bulk flow to its end and closes, and kernel_bench bulk --stack-pid
# reports the CPU cost keys bench/run.sh's [p] rows read (the process's and the
# pinned CPU's busy time per byte). The checking sink (5001) takes the same
# flow with the same keys.
set -u
BUILD=${USTCP_BUILD_DIR:?}
KB=$BUILD/bench/kernel_bench
[ -x "$KB" ] || { echo "SKIP: $KB not built"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (a network namespace)"; exit 77; }
NS=ustcpt-kd-$$
ip netns add "$NS" || { echo "SKIP: cannot create a namespace"; exit 77; }
SRV=
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; ip netns del "$NS" 2>/dev/null; }
trap cleanup EXIT
ip -n "$NS" link set lo up
taskset -c 0 "$KB" serve --ns "$NS" --addr 127.0.0.1 2>/dev/null &
SRV=$!
fail=0
bytes=$((256 << 20))
for port in 5003 5001; do
  out=$(timeout 60 taskset -c 0 "$KB" bulk --ns "$NS" --addr 127.0.0.1 --port $port --bytes $bytes --reps 1 \
          --label p$port --stack-pid "$SRV" --cpu 0 2>&1)
  echo "$out"
  rate=$(awk -v k="bulk1500.p$port" '$1 == "R" && $2 == k { print $3 }' <<<"$out")
  busy=$(awk -v k="cpu1500.p$port.busy_nsB" '$1 == "R" && $2 == k { print $3 }' <<<"$out")
  stack=$(awk -v k="cpu1500.p$port.stack_nsB" '$1 == "R" && $2 == k { print $3 }' <<<"$out")
  if [ -z "$rate" ] || awk -v r="$rate" 'BEGIN { exit !(r <= 0) }'; then
    echo "FAIL: port $port: the flow did not complete"; fail=1
  fi
  # 256 MiB takes well over one 10 ms tick of CPU 0; the server's own share may round to 0
  if [ -z "$busy" ] || awk -v b="$busy" 'BEGIN { exit !(b <= 0) }' || [ -z "$stack" ]; then
    echo "FAIL: port $port: CPU cost keys missing (busy ${busy:-none}, stack ${stack:-none})"; fail=1
  fi
done
[ "$fail" = 0 ] && echo "ok: discard port and sink complete a flow; CPU cost keys present"
exit $fail
