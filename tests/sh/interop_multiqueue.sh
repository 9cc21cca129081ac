#!/usr/bin/env bash
# Issue 15 point 4 (multi-queue TUN): `ustcp serve --queues N` opens N queues of
# one IFF_MULTI_QUEUE device, a thread and a stack each; the kernel steers each
# flow to one queue by its hash (drivers/net/tun.c, tun_automq_select_queue).
#   - the device has N receive and N transmit queues (sysfs)
#   - 24 parallel curl downloads, each of its own file (2 MB, different bytes
#     and names, so that queues that shared a path buffer would serve the
#     wrong one), byte-exact, with 3 queues (plain TUN) and with 2 queues and
#     --offload (IFF_VNET_HDR, GSO both ways)
#   - at SIGTERM each queue reports its connections: every queue took some
#     (24 flows all on one of 3 queues by chance: 3 * (1/3)^24), and they add
#     up to 24
#   - `ustcp stat` answers on queue 0's control socket
#   - bad usage: --queues 0, 17, or with --tap: exit 2 and one line
# Needs root, /dev/net/tun, curl; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init multiqueue curl sha256sum

mkdir -p "$tmp/www"
for i in $(seq 1 24); do head -c 2000000 /dev/urandom > "$tmp/www/f$i.bin"; done

run_case() {   # NAME QUEUES [OPTIONS...]
  local name=$1 q=$2 dev=mq$2 i ok=0 sum=0 each_ok=1 n
  shift 2
  PIDS=()
  ustcp_bg "$name" serve --http "$tmp/www" --queues "$q" --tun "$dev" --ctl "$tmp/$name.sock" "$@"
  wait_ctl "$tmp/$name.sock" || { cat "$tmp/$name.log"; check "$name: serve came up" false; return; }
  check "$name: the device has $q receive and $q transmit queues" \
    [ "$(nsx ls "/sys/class/net/$dev/queues" | grep -c '^rx-')" = "$q" -a \
      "$(nsx ls "/sys/class/net/$dev/queues" | grep -c '^tx-')" = "$q" ]
  check "$name: ustcp stat answers on queue 0's control socket" \
    bash -c "timeout 5 '$U' stat --ctl '$tmp/$name.sock' | grep -q ':80 '"
  local pids=()
  for i in $(seq 1 24); do
    nsx curl -sS --max-time 60 -o "$tmp/$name.$i" "http://10.7.0.2/f$i.bin" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
  for i in $(seq 1 24); do cmp -s "$tmp/$name.$i" "$tmp/www/f$i.bin" && ok=$((ok + 1)); done
  check "$name: 24 parallel downloads of 2 MB byte-exact ($ok of 24)" [ "$ok" = 24 ]
  stop_bg
  grep "queue" "$tmp/$name.log"
  for i in $(seq 0 $((q - 1))); do
    n=$(sed -n "s/^ustcp serve: queue $i: \([0-9]*\) connections.*/\1/p" "$tmp/$name.log")
    [ -n "$n" ] && [ "$n" -gt 0 ] || each_ok=0
    sum=$((sum + ${n:-0}))
  done
  check "$name: every one of the $q queues took connections" [ "$each_ok" = 1 ]
  check "$name: the queues' connections add up to 24 ($sum)" [ "$sum" = 24 ]
  mv "$tmp/$name.log" "$tmp/$name.err"   # finish() still scans it for sanitizer reports
}

run_case plain 3
run_case offload 2 --offload

for bad in "--queues 0" "--queues 17" "--queues 2 --tap"; do
  # shellcheck disable=SC2086
  timeout 5 "$U" serve --http "$tmp/www" $bad > /dev/null 2> "$tmp/u.out"
  rc=$?
  check "usage error '$bad': exit 2, one line" bash -c "[ $rc = 2 ] && [ \$(wc -l < '$tmp/u.out') = 1 ]"
done
finish
