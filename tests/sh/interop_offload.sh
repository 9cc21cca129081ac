#!/usr/bin/env bash
# Issue 15 point 4: the TUN fast path (`--offload`: IFF_VNET_HDR with
# TUNSETOFFLOAD TUN_F_CSUM|TUN_F_TSO4, src/link/tun.c and loop.c).
#   a) the kernel (socat) sends 20 MB to `ustcp serve --echo --offload` and reads
#      them back: byte-exact (sha256) both ways
#   b) the offload path was used: `ustcp stat` shows GSO frames received whole
#      (link_rx_gso_frames > 0, each more than one MSS: link_rx_bytes per
#      link_rx_packets above 1500) and checksums left to the stack by the kernel
#      (link_rx_csum_offloaded > 0), and not one bad TCP checksum counted
#   c) the same without --offload: no GSO frame, no offloaded checksum (the
#      counters mean what they say)
#   d) both ways, segments left through the gather output (issue 12 point 6:
#      headers + send-ring slices to writev, no staging copy): the stack copied
#      each echoed byte once on the way out (ustcp_send into the ring,
#      tx_bytes_copied = 20 MB; the flat output would add a copy per byte sent)
# Needs root, /dev/net/tun, socat; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init offload socat sha256sum

head -c 20000000 /dev/urandom > "$tmp/in.bin"
want=$(sha "$tmp/in.bin")
stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

for mode in offload plain; do
  ctl=$tmp/ctl-$mode.sock
  extra=()
  [ "$mode" = offload ] && extra=(--offload)
  ustcp_bg serve-$mode serve --echo --tun t-$mode --addr 10.7.0.2 --peer 10.7.0.1 --ctl "$ctl" "${extra[@]}"
  wait_ctl "$ctl" || { cat "$tmp/serve-$mode.log"; exit 1; }
  nsx timeout 60 socat -t 10 -b 262144 - TCP:10.7.0.2:7 < "$tmp/in.bin" > "$tmp/out-$mode.bin"
  check "a) $mode: 20 MB echoed through ustcp byte-exact (sha256)" [ "$(sha "$tmp/out-$mode.bin")" = "$want" ]
  timeout 10 "$U" stat --ctl "$ctl" -s > "$tmp/stat-$mode.txt"
  gso=$(stat_of "$tmp/stat-$mode.txt" link_rx_gso_frames)
  csum=$(stat_of "$tmp/stat-$mode.txt" link_rx_csum_offloaded)
  bad=$(stat_of "$tmp/stat-$mode.txt" tcp_bad_checksum)
  pk=$(stat_of "$tmp/stat-$mode.txt" link_rx_packets)
  by=$(stat_of "$tmp/stat-$mode.txt" link_rx_bytes)
  echo "   $mode: link_rx_packets $pk, link_rx_bytes $by, link_rx_gso_frames $gso, link_rx_csum_offloaded $csum, tcp_bad_checksum $bad"
  if [ "$mode" = offload ]; then
    check "b) offload: GSO frames received whole" [ "${gso:-0}" -gt 0 ]
    check "b) offload: mean frame above 1500 bytes" [ "$(( ${by:-0} / (${pk:-0} + 1) ))" -gt 1500 ]
    check "b) offload: checksums left to the stack by the kernel" [ "${csum:-0}" -gt 0 ]
  else
    check "c) plain: no GSO frame, no offloaded checksum" [ "${gso:-x}:${csum:-x}" = "0:0" ]
  fi
  check "$mode: no bad TCP checksum" [ "${bad:-x}" = 0 ]
  txc=$(stat_of "$tmp/stat-$mode.txt" tx_bytes_copied)
  stale=$(stat_of "$tmp/stat-$mode.txt" out_iov_stale)
  echo "   $mode: tx_bytes_copied $txc, out_iov_stale $stale"
  check "d) $mode: gather output, one copy per byte sent (into the send ring)" [ "${txc:-x}" = 20000000 ]
  stop_bg
  PIDS=()
done
finish
