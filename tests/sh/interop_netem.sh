#!/usr/bin/env bash
# Issue 5 interop under loss, reordering and delay, and (issue 10) corruption
# and duplication: 20 MB both ways, byte-exact.
#   ustcp -> kernel: curl downloads from `ustcp serve --http`
#   kernel -> ustcp: `ustcp get` downloads from python3's http.server
# With sch_netem: `tc qdisc add dev TUN root netem loss 2% reorder 5% delay 5ms
# corrupt 1% duplicate 1%`
# on the kernel's side of the device (the device is made beforehand with
# ip tuntap, so ustcp attaches with --no-configure). Without sch_netem that part
# is SKIPPED (a SKIP line says so) and the same transfers run with ustcp's own
# impairment on both directions (--impair loss=2%,reorder=5%,delay=5ms,
# corrupt=1%,duplicate=1%), which loses, reorders, corrupts (one bit flipped)
# and duplicates data and ACKs alike; then ustcp must have dropped the corrupted
# packets it got (checksums) and seen the duplicates. Prints the throughput of
# each.
# Needs root, /dev/net/tun, curl, python3; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init netem curl python3 sha256sum

mkdir -p "$tmp/www"
head -c 20000000 /dev/urandom > "$tmp/www/big.bin"
chmod -R a+rX "$tmp/www"
want=$(sha "$tmp/www/big.bin")

# The device, made and addressed the way a user without CAP_NET_ADMIN for ustcp
# would have root do it.
nsx ip tuntap add dev t0 mode tun || exit 1
nsx ip addr add 10.7.0.1 peer 10.7.0.2 dev t0
nsx ip link set t0 up

impair=()
spec=loss=2%,reorder=5%,delay=5ms,corrupt=1%,duplicate=1%
if command -v tc > /dev/null &&
   nsx tc qdisc add dev t0 root netem loss 2% reorder 5% delay 5ms corrupt 1% duplicate 1% 2> "$tmp/tc.err"; then
  mode="tc netem on the kernel side"
else
  seed=$((RANDOM + 1))
  echo "SKIP: sch_netem unavailable ($(head -1 "$tmp/tc.err" 2> /dev/null || echo 'no tc')): the tc netem part is skipped;"
  echo "      running the transfers with ustcp --impair $spec --seed $seed"
  echo "      (both directions) instead"
  impair=(--impair "$spec" --seed "$seed")
  mode="ustcp --impair on both directions"
fi

# ustcp -> kernel
ctl=$tmp/ctl.sock
ustcp_bg serve serve --http "$tmp/www" --tun t0 --no-configure --ctl "$ctl" "${impair[@]}"
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }
t0=$(date +%s.%N)
nsx curl -sS --max-time 80 -o "$tmp/got1.bin" http://10.7.0.2/big.bin
rc=$?
t1=$(date +%s.%N)
check "$mode: curl 20 MB from ustcp: exit 0 (got $rc)" [ "$rc" = 0 ]
check "$mode: curl 20 MB from ustcp: sha256 matches" [ "$(sha "$tmp/got1.bin")" = "$want" ]
echo "throughput ustcp -> kernel ($mode): $(rate 20000000 "$(python3 -c "print($t1-$t0)")") MB/s"
timeout 10 "$U" stat --ctl "$ctl" -s > "$tmp/stat1"
grep -E "^(retrans_segs|ooo_dropped|ip_bad|tcp_bad_checksum|tcp_malformed|link_impair_[a-z]+) " "$tmp/stat1"
if [ ${#impair[@]} -gt 0 ]; then
  n() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/stat1"; }
  corrupted=$(n link_impair_corrupted); duplicated=$(n link_impair_duplicated)
  bad=$(( $(n ip_bad) + $(n tcp_bad_checksum) + $(n tcp_malformed) ))
  check "$mode: packets were corrupted ($corrupted) and duplicated ($duplicated)" \
    [ "${corrupted:-0}" -gt 0 -a "${duplicated:-0}" -gt 0 ]
  # about half the corrupted packets went to the stack (the other half to the
  # kernel): every one of them must be dropped by a checksum (or as malformed)
  check "$mode: ustcp dropped corrupted packets by checksum ($bad of $corrupted corrupted both ways)" \
    [ "$bad" -gt 0 ]
fi
kill "${PIDS[-1]}" 2>/dev/null; wait "${PIDS[-1]}" 2>/dev/null

# kernel -> ustcp
( cd "$tmp/www" && exec ip netns exec "$ns" timeout 120 python3 -m http.server 8000 ) > "$tmp/http.log" 2>&1 &
PIDS+=($!)
wait_listen 8000 || exit 1
t0=$(date +%s.%N)
nsx timeout 90 "$U" get --tun t0 --no-configure --no-ctl --timeout 60 "${impair[@]}" \
  http://10.7.0.1:8000/big.bin -o "$tmp/got2.bin"
rc=$?
t1=$(date +%s.%N)
check "$mode: ustcp get 20 MB from the kernel: exit 0 (got $rc)" [ "$rc" = 0 ]
check "$mode: ustcp get 20 MB from the kernel: sha256 matches" [ "$(sha "$tmp/got2.bin")" = "$want" ]
echo "throughput kernel -> ustcp ($mode): $(rate 20000000 "$(python3 -c "print($t1-$t0)")") MB/s"
finish
