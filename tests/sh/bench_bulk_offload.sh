#!/usr/bin/env bash
# Issue 15 point 2: the like-for-like bulk row [a2] (ustcp_bench bulk --offload)
# moves its bytes through the stacks' offload path: frames larger than the MTU
# cross the in-memory link whole, and the receiver checks every byte against
# its stream offset (a mismatch or an unfinished transfer reports 0). Also
# checks that the frames were large: far fewer packets than MSS-sized segments.
set -u
BUILD=${USTCP_BUILD_DIR:?}
UB=$BUILD/bench/ustcp_bench
[ -x "$UB" ] || { echo "SKIP: $UB not built"; exit 77; }
bytes=$((32 << 20))
out=$(timeout 120 "$UB" bulk --mtu 1500 --bytes $bytes --reps 1 --offload 2>&1)
echo "$out"
rate=$(awk '$1 == "R" && $2 == "bulk1500.ustcpgso" { print $3 }' <<<"$out")
pkts=$(sed -n 's/.* \([0-9][0-9]*\) packets on the link.*/\1/p' <<<"$out")
if [ -z "$rate" ] || awk -v r="$rate" 'BEGIN { exit !(r <= 0) }'; then
  echo "FAIL: no verified transfer with --offload"; exit 1
fi
segs=$((bytes / 1460))
# data frames plus ACKs: with 64 KiB frames, well under a third of the
# segment count; without offload it is above the segment count
if [ -z "$pkts" ] || [ "$pkts" -ge $((segs / 3)) ]; then
  echo "FAIL: ${pkts:-?} packets for $segs segments: frames were not cut large"; exit 1
fi
echo "ok: $rate Gbit/s, $pkts packets for $segs MSS-sized segments"
