#!/usr/bin/env bash
# Issue 15 point 4: the TUN fast path (`--offload`: IFF_VNET_HDR with
# TUNSETOFFLOAD TUN_F_CSUM|TUN_F_TSO4|TUN_F_TSO6, src/link/tun.c and loop.c).
#   a) the kernel (socat) sends 20 MB to `ustcp serve --echo --offload` and reads
#      them back: byte-exact (sha256) both ways
#   b) the offload path was used: `ustcp stat` shows GSO frames received whole
#      (link_rx_gso_frames > 0, each more than one MSS: link_rx_bytes per
#      link_rx_packets above 1500) and checksums left to the stack by the kernel
#      (link_rx_csum_offloaded > 0), and not one bad TCP checksum counted
#   c) the same without --offload: no GSO frame, no offloaded checksum (the
#      counters mean what they say)
#   g) plain TUN: segments left through the gather output (issue 12 point 6:
#      headers + send-ring slices to writev, no staging copy): the stack copied
#      each echoed byte once on the way out (ustcp_send into the ring,
#      tx_bytes_copied = 20 MB; the flat output would add a copy per byte sent)
#      (with --offload the GSO frames go through the copying output: one copy
#      into the ring and one into the frame, 40 MB)
#   d) send-side offload: with --offload ustcp sends frames of several MSS
#      (link_tx_gso_frames > 0, mean written frame above 1500 bytes) and leaves
#      its TCP checksums to the kernel (link_tx_csum_offloaded > 0); without it
#      neither
#   e) the kernel's segmentation of those frames is valid on the wire: a client
#      in a second namespace reaches ustcp through the first one, which
#      forwards (veth without TSO nor checksum offload, so the kernel cuts each
#      GSO frame in software, skb_gso_segment, and completes its checksums);
#      tshark on the client's side sees no frame above the MTU, no bad IPv4 or
#      TCP checksum (lost or retransmitted segments are only reported: a busy
#      machine may drop at the veth's backlog), and the 20 MB come back
#      byte-exact
#   f) the capture (--pcap) shows ustcp's frames as the segments on the wire,
#      with complete checksums
#   i) batched I/O (issue 15 point 4): with --offload the loop writes the
#      frames one event sends in one io_uring_enter: link_tx_batches counts
#      the calls, and more frames were written than calls made (some call
#      wrote several), no read batched (link_rx_batches 0); with
#      --batch-reads the reads go through io_uring too (link_rx_batches > 0);
#      with --no-batch (one writev per frame) both stay 0; the 20 MB echo is
#      byte-exact in every mode. SKIP where the kernel refuses io_uring
#      (kernel.io_uring_disabled).
#   j) where io_uring is refused, --offload --batch-reads falls back to plain
#      reads and writes
#   h) IPv6 (TSO6: TUN_F_TSO6, VIRTIO_NET_HDR_GSO_TCPV6): socat -6 echoes 20 MB
#      through `ustcp serve --echo --offload` with an IPv6 address, byte-exact;
#      GSO frames went both ways (link_rx_gso_frames, link_tx_gso_frames > 0),
#      no bad checksum; the capture shows IPv6 segments within the MTU, every
#      TCP checksum good
# Needs root, /dev/net/tun, socat; otherwise SKIP (e: also ethtool, tshark).
. "$(dirname "$0")/interop_lib.bash"
interop_init offload socat sha256sum

head -c 20000000 /dev/urandom > "$tmp/in.bin"
want=$(sha "$tmp/in.bin")
stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

uring_ok=1
[ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0 ] || uring_ok=0
for mode in offload nobatch batchreads plain; do
  ctl=$tmp/ctl-$mode.sock
  extra=()
  [ "$mode" = offload ] && extra=(--offload --pcap "$tmp/cap-$mode.pcap")
  [ "$mode" = nobatch ] && extra=(--offload --no-batch)
  [ "$mode" = batchreads ] && extra=(--offload --batch-reads)
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
  tgso=$(stat_of "$tmp/stat-$mode.txt" link_tx_gso_frames)
  tcsum=$(stat_of "$tmp/stat-$mode.txt" link_tx_csum_offloaded)
  tpk=$(stat_of "$tmp/stat-$mode.txt" link_tx_packets)
  tby=$(stat_of "$tmp/stat-$mode.txt" link_tx_bytes)
  echo "   $mode: link_tx_packets $tpk, link_tx_bytes $tby, link_tx_gso_frames $tgso, link_tx_csum_offloaded $tcsum"
  rxb=$(stat_of "$tmp/stat-$mode.txt" link_rx_batches)
  txb=$(stat_of "$tmp/stat-$mode.txt" link_tx_batches)
  echo "   $mode: link_rx_batches $rxb, link_tx_batches $txb"
  if [ "$mode" = offload ] || [ "$mode" = batchreads ] && [ "$uring_ok" = 0 ]; then
    echo "SKIP: i) $mode: io_uring is disabled here (kernel.io_uring_disabled); the loop used plain calls"
  elif [ "$mode" = offload ] || [ "$mode" = batchreads ]; then
    check "i) $mode: writes batched, several frames in some call ($tpk frames in $txb calls)" \
      [ "${txb:-0}" -gt 0 -a "${tpk:-0}" -gt "${txb:-0}" ]
    if [ "$mode" = offload ]; then
      check "i) offload: reads one per call, none batched ($rxb)" [ "${rxb:-x}" = 0 ]
    else
      check "i) batchreads: reads batched through io_uring ($pk frames in $rxb calls)" [ "${rxb:-0}" -gt 0 ]
    fi
  else
    check "i) $mode: no batched call ($rxb, $txb)" [ "${rxb:-x}:${txb:-x}" = "0:0" ]
  fi
  if [ "$mode" != plain ]; then
    check "d) $mode: frames of several MSS sent for the kernel to cut" [ "${tgso:-0}" -gt 0 ]
    check "d) $mode: mean sent frame above 1500 bytes" [ "$(( ${tby:-0} / (${tpk:-0} + 1) ))" -gt 1500 ]
    check "d) $mode: TCP checksums left to the kernel" [ "${tcsum:-0}" -gt 0 ]
    check "b) $mode: GSO frames received whole" [ "${gso:-0}" -gt 0 ]
    check "b) $mode: mean frame above 1500 bytes" [ "$(( ${by:-0} / (${pk:-0} + 1) ))" -gt 1500 ]
    check "b) $mode: checksums left to the stack by the kernel" [ "${csum:-0}" -gt 0 ]
  else
    check "c) plain: no GSO frame, no offloaded checksum" [ "${gso:-x}:${csum:-x}" = "0:0" ]
    check "c) plain: none sent either" [ "${tgso:-x}:${tcsum:-x}" = "0:0" ]
  fi
  check "$mode: no bad TCP checksum" [ "${bad:-x}" = 0 ]
  txc=$(stat_of "$tmp/stat-$mode.txt" tx_bytes_copied)
  stale=$(stat_of "$tmp/stat-$mode.txt" out_iov_stale)
  echo "   $mode: tx_bytes_copied $txc, out_iov_stale $stale"
  if [ "$mode" = plain ]; then
    check "g) plain: gather output, one copy per byte sent (into the send ring)" [ "${txc:-x}" = 20000000 ]
  else
    check "g) $mode: GSO frames through the copying output (ring, then frame)" [ "${txc:-x}" = 40000000 ]
  fi
  stop_bg
  if [ "$mode" = offload ] && command -v tshark > /dev/null 2>&1; then
    # f) the capture (--pcap, the stack's capture callback) shows what goes on
    # the wire: ustcp's frames cut into segments with complete checksums, as
    # the kernel cuts them, not the 64 KiB frames written to the device
    tc() { tshark -r "$tmp/cap-$mode.pcap" -o tcp.check_checksum:TRUE -Y "ip.src == 10.7.0.2 && ($1)" 2>/dev/null | wc -l; }
    cout=$(tc "tcp.len > 0"); cbig=$(tc "ip.len > 1500"); cgood=$(tc "tcp.len > 0 && tcp.checksum.status == \"Good\"")
    echo "   capture: $cout data segments from ustcp, $cgood with a good TCP checksum, $cbig above 1500 bytes"
    check "f) capture: ustcp's data seen as segments (>= 13,800 for 20 MB)" [ "$cout" -ge 13800 ]
    check "f) capture: none above the MTU" [ "$cbig" = 0 ]
    check "f) capture: every TCP checksum complete and good" [ "$cgood" = "$cout" ]
  fi
  PIDS=()
done

# j) io_uring refused (kernel.io_uring_disabled = 2, as a hardened host or a
# seccomp filter would): --offload falls back to one writev per frame, and
# the echo is byte-exact. The sysctl is machine-wide, so it is put back on
# every exit (the trap) and right after ustcp has started.
uring_sysctl=/proc/sys/kernel/io_uring_disabled
if [ -w "$uring_sysctl" ] && [ "$(cat "$uring_sysctl")" = 0 ]; then
  trap '__rc=$?; echo 0 > '"$uring_sysctl"' 2>/dev/null; (exit $__rc); cleanup' EXIT
  echo 2 > "$uring_sysctl"
  ctl=$tmp/ctl-nouring.sock
  # --batch-reads too: both batched paths must fall back, reads and writes
  ustcp_bg serve-nouring serve --echo --tun t-nouring --addr 10.7.0.2 --peer 10.7.0.1 --ctl "$ctl" \
    --offload --batch-reads
  wait_ctl "$ctl"; started=$?
  echo 0 > "$uring_sysctl"
  [ "$started" = 0 ] || { cat "$tmp/serve-nouring.log"; exit 1; }
  nsx timeout 60 socat -t 10 -b 262144 - TCP:10.7.0.2:7 < "$tmp/in.bin" > "$tmp/out-nouring.bin"
  check "j) io_uring refused: 20 MB echoed byte-exact with --offload" [ "$(sha "$tmp/out-nouring.bin")" = "$want" ]
  timeout 10 "$U" stat --ctl "$ctl" -s > "$tmp/stat-nouring.txt"
  txb=$(stat_of "$tmp/stat-nouring.txt" link_tx_batches)
  rxb=$(stat_of "$tmp/stat-nouring.txt" link_rx_batches)
  tgso=$(stat_of "$tmp/stat-nouring.txt" link_tx_gso_frames)
  check "j) io_uring refused: plain writes ($txb batched calls), GSO frames still sent ($tgso)" \
    [ "${txb:-x}" = 0 -a "${tgso:-0}" -gt 0 ]
  check "j) io_uring refused: plain reads with --batch-reads ($rxb batched calls)" [ "${rxb:-x}" = 0 ]
  stop_bg
  PIDS=()
else
  echo "SKIP: j) cannot refuse io_uring here ($uring_sysctl missing, read-only or not 0)"
fi

# h) IPv6 with offloads both ways (TSO6)
ctl=$tmp/ctl-v6.sock
ustcp_bg serve-v6 serve --echo --tun t-v6 --addr 10.7.6.2 --peer 10.7.6.1 --addr fd00::2 \
  --peer fd00::1 --ctl "$ctl" --offload --pcap "$tmp/cap-v6.pcap"
wait_ctl "$ctl" || { cat "$tmp/serve-v6.log"; exit 1; }
nsx timeout 60 socat -t 10 -b 262144 - 'TCP6:[fd00::2]:7' < "$tmp/in.bin" > "$tmp/out-v6.bin"
check "h) IPv6, offload: 20 MB echoed byte-exact (sha256)" [ "$(sha "$tmp/out-v6.bin")" = "$want" ]
timeout 10 "$U" stat --ctl "$ctl" -s > "$tmp/stat-v6.txt"
gso=$(stat_of "$tmp/stat-v6.txt" link_rx_gso_frames)
tgso=$(stat_of "$tmp/stat-v6.txt" link_tx_gso_frames)
tcsum=$(stat_of "$tmp/stat-v6.txt" link_tx_csum_offloaded)
bad=$(stat_of "$tmp/stat-v6.txt" tcp_bad_checksum)
echo "   IPv6: link_rx_gso_frames $gso, link_tx_gso_frames $tgso, link_tx_csum_offloaded $tcsum, tcp_bad_checksum $bad"
check "h) IPv6: GSO frames received whole (the kernel's TSO6)" [ "${gso:-0}" -gt 0 ]
check "h) IPv6: frames of several MSS sent for the kernel to cut (GSO_TCPV6)" [ "${tgso:-0}" -gt 0 ]
check "h) IPv6: TCP checksums left to the kernel" [ "${tcsum:-0}" -gt 0 ]
check "h) IPv6: no bad TCP checksum" [ "${bad:-x}" = 0 ]
stop_bg
PIDS=()
if command -v tshark > /dev/null 2>&1; then
  tc6() { tshark -r "$tmp/cap-v6.pcap" -o tcp.check_checksum:TRUE -Y "ipv6.src == fd00::2 && ($1)" 2>/dev/null | wc -l; }
  cout=$(tc6 "tcp.len > 0"); cbig=$(tc6 "ipv6.plen > 1460"); cgood=$(tc6 "tcp.len > 0 && tcp.checksum.status == \"Good\"")
  echo "   IPv6 capture: $cout data segments from ustcp, $cgood with a good TCP checksum, $cbig above the MTU"
  check "h) IPv6 capture: ustcp's data seen as segments (>= 13,900 for 20 MB)" [ "$cout" -ge 13900 ]
  check "h) IPv6 capture: none above the MTU" [ "$cbig" = 0 ]
  check "h) IPv6 capture: every TCP checksum complete and good" [ "$cgood" = "$cout" ]
fi

# e) through a forwarding namespace whose veth cuts the frames in software
if ! command -v tshark > /dev/null 2>&1 || ! command -v ethtool > /dev/null 2>&1; then
  echo "SKIP e): tshark or ethtool not installed"
  finish
  exit $?
fi
ns2=${ns}-c
ip netns add "$ns2" || { echo "cannot create $ns2"; finish; exit 1; }
trap 'ip netns pids "$ns2" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$ns2" 2>/dev/null; cleanup' EXIT
ip -n "$ns2" link set lo up
ip link add vfw netns "$ns" type veth peer name vcl netns "$ns2"
nsx ip addr add 10.8.0.1/24 dev vfw
nsx ip link set vfw up
ip -n "$ns2" addr add 10.8.0.2/24 dev vcl
ip -n "$ns2" link set vcl up
ip -n "$ns2" route add 10.7.0.0/24 via 10.8.0.1
nsx sysctl -qw net.ipv4.ip_forward=1
# no TSO and no checksum offload toward the client: the kernel segments (GSO in
# software) and computes every checksum before the frames enter the veth
nsx ethtool -K vfw tso off tx off > /dev/null 2>&1
ctl=$tmp/ctl-fw.sock
ustcp_bg serve-fw serve --echo --tun t-fw --addr 10.7.0.2 --peer 10.7.0.1 --ctl "$ctl" --offload
wait_ctl "$ctl" || { cat "$tmp/serve-fw.log"; exit 1; }
ip netns exec "$ns2" tshark -q -i vcl -B 64 -w "$tmp/fw.pcap" -f "tcp port 7" > "$tmp/tshark.log" 2>&1 &
tpid=$!
PIDS+=($tpid)
for i in $(seq 1 50); do grep -q "Capturing on" "$tmp/tshark.log" 2>/dev/null && break; sleep 0.1; done
sleep 1   # dumpcap may say so before its capture is live (under load it missed the first ~2,000 segments)
ip netns exec "$ns2" timeout 60 socat -t 10 -b 262144 - TCP:10.7.0.2:7 < "$tmp/in.bin" > "$tmp/out-fw.bin"
sleep 0.5
kill -INT "$tpid" 2>/dev/null
wait "$tpid" 2>/dev/null
check "e) forwarded: 20 MB echoed byte-exact (sha256)" [ "$(sha "$tmp/out-fw.bin")" = "$want" ]
timeout 10 "$U" stat --ctl "$ctl" -s > "$tmp/stat-fw.txt"
tgso=$(stat_of "$tmp/stat-fw.txt" link_tx_gso_frames)
echo "   forwarded: link_tx_gso_frames $tgso"
check "e) forwarded: ustcp sent GSO frames" [ "${tgso:-0}" -gt 0 ]
from='ip.src == 10.7.0.2'
tsh() { tshark -r "$tmp/fw.pcap" -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE -Y "$1" 2>/dev/null | wc -l; }
nall=$(tsh "$from && tcp.len > 0")
nbig=$(tsh "$from && ip.len > 1500")
nbad=$(tsh "$from && (tcp.checksum.status == \"Bad\" || ip.checksum.status == \"Bad\")")
ngood=$(tsh "$from && tcp.len > 0 && tcp.checksum.status == \"Good\"")
nlost=$(tsh "$from && (tcp.analysis.lost_segment || tcp.analysis.retransmission || tcp.analysis.out_of_order)")
drops=$(grep -o "Dropped ([0-9]*" "$tmp/tshark.log" | grep -o "[0-9]*$" || true)
echo "   forwarded, on the client's veth: $nall data segments from ustcp, $ngood with a verified good TCP checksum, $nbig above 1500 bytes, $nbad bad checksums, $nlost lost/retransmitted/out of order; tshark dropped ${drops:-?}"
# a sample, not all: the capture may start late on a busy machine (the sha256
# above proves the whole transfer)
check "e) kernel-cut segments seen (>= 5,000 of the ~13,800 for 20 MB)" [ "$nall" -ge 5000 ]
check "e) every segment within the MTU" [ "$nbig" = 0 ]
check "e) every data segment's TCP checksum verified good" [ "$ngood" = "$nall" ]
check "e) no bad IPv4 or TCP checksum" [ "$nbad" = 0 ]
# Not a check: under load the client's veth backlog may drop a segment, which
# ustcp then retransmits; that says nothing about the segmentation.
finish
