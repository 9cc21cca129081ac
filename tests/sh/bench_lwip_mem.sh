#!/usr/bin/env bash
# Issue 15 point 2: lwIP in the same in-memory harness as ustcp (bench/lwip_bench
# mem, rows [r] of bench/run.sh). Each pair (lwIP -> ustcp, ustcp -> lwIP,
# ustcp -> ustcp, and ustcp -> ustcp with lwIP's 64 KiB buffers) must move
# every byte, checked against its stream offset by the receiver, and report a
# rate and a CPU cost; a sender that sends wrong bytes (--skew) must fail the
# run, so the check is proven to look.
set -u
BUILD=${USTCP_BUILD_DIR:?}
LB=$BUILD/bench/lwip_bench
[ -x "$LB" ] || { echo "SKIP: $LB not built (needs liblwip-dev)"; exit 77; }
bytes=$((8 << 20))
fail=0
for pair in lu ul uu uu64; do
  buf=(); [ "$pair" = uu64 ] && buf=(--buf 65536)
  out=$(timeout 120 "$LB" mem --pair "${pair%64}" --bytes $bytes "${buf[@]}" 2>&1)
  rc=$?
  echo "$out"
  rate=$(awk -v k="membulk1500.$pair" '$1 == "R" && $2 == k { print $3 }' <<<"$out")
  nsb=$(awk -v k="memcpu1500.$pair.nsB" '$1 == "R" && $2 == k { print $3 }' <<<"$out")
  if [ "$rc" != 0 ] || [ -z "$rate" ] || awk -v r="$rate" 'BEGIN { exit !(r <= 0) }' || [ -z "$nsb" ]; then
    echo "FAIL: $pair: no verified transfer (rc $rc, rate ${rate:-none}, ns/B ${nsb:-none})"; fail=1
  fi
done
# The receiver's check: lwIP's (lu: ustcp receives; ul: lwIP receives).
for pair in lu ul; do
  out=$(timeout 120 "$LB" mem --pair "$pair" --bytes $bytes --skew $((3 << 20)) 2>&1)
  rc=$?
  echo "$out"
  rate=$(awk -v k="membulk1500.$pair" '$1 == "R" && $2 == k { print $3 }' <<<"$out")
  if [ "$rc" = 0 ] || ! grep -q "PAYLOAD MISMATCH" <<<"$out" || [ "${rate:-0}" != 0 ]; then
    echo "FAIL: $pair: wrong bytes were not caught (rc $rc, rate ${rate:-none})"; fail=1
  fi
done
[ "$fail" = 0 ] && echo "ok: four pairs verified, wrong bytes caught on both receivers"
exit $fail
