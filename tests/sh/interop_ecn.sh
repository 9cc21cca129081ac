#!/usr/bin/env bash
# Issue 14 point 5: ECN (RFC 3168) between ustcp and the Linux kernel, checked
# with tshark on the kernel's side of the TUN device. In the test's namespace
# the kernel runs with net.ipv4.tcp_ecn=1 (asks for ECN and accepts it).
#   a) curl (kernel) -> `ustcp serve --http` (ustcp's default tcp_ecn=2): the
#      kernel's SYN asks (ECE|CWR), ustcp's SYN-ACK agrees (ECE, no CWR); data
#      ECT(0) both ways (the request from the kernel, the file from ustcp);
#      ustcp's pure ACKs and SYN-ACK Not-ECT.
#   b) `ustcp get --ecn 1` -> python3's http.server: ustcp asks, the kernel
#      agrees; ECT(0) data both ways.
#   c) CE marks, made by nftables playing the congested router: `ip ecn set ce`
#      on some of the ECT(0) packets (c1: every 25th frame the kernel sends;
#      c2: a random 2 % of ustcp's), as an AQM marks instead of dropping. A
#      marking qdisc (`fq_codel ce_threshold`, `red ... ecn`) would do on the
#      kernel's egress only and this machine's kernel has neither
#      (sch_fq_codel, sch_red: "Specified qdisc kind is unknown"); the test
#      says so in a SKIP line when it cannot add one, and uses nftables anyway.
#      c1) kernel -> ustcp (ustcp get): ustcp echoes ECE, the kernel answers
#          with CWR; the file arrives byte-exact.
#      c2) ustcp -> kernel (curl from ustcp serve): the kernel echoes ECE and
#          ustcp reduces and sets CWR on its next new data; byte-exact.
#   d) `ustcp get --ecn 0`: the SYN asks nothing and nothing is ECT.
# Needs root, /dev/net/tun, curl, python3, tshark, nft; otherwise SKIP.
. "$(dirname "$0")/interop_lib.bash"
interop_init ecn curl python3 tshark nft sha256sum

nsx sysctl -q -w net.ipv4.tcp_ecn=1 || skip "cannot set net.ipv4.tcp_ecn in a namespace"
mkdir -p "$tmp/www"
head -c 4000000 /dev/urandom > "$tmp/www/f.bin"
chmod -R a+rX "$tmp/www"
want=$(sha "$tmp/www/f.bin")

# t0 for `ustcp serve` (10.7.0.2), t1 for the `ustcp get` runs (10.8.0.2-4)
nsx ip tuntap add dev t0 mode tun || exit 1
nsx ip addr add 10.7.0.1 peer 10.7.0.2 dev t0
nsx ip link set t0 up
nsx ip tuntap add dev t1 mode tun || exit 1
nsx ip addr add 10.8.0.1 peer 10.8.0.2 dev t1
nsx ip link set t1 up
nsx ip route add 10.8.0.3 dev t1
nsx ip route add 10.8.0.4 dev t1

# tshark on the kernel's side for the whole session; headers are enough
nsx timeout 150 tshark -q -B 64 -s 128 -i t0 -i t1 -w "$tmp/cap.pcapng" > "$tmp/tshark.log" 2>&1 &
tshark_pid=$!
PIDS+=($tshark_pid)
for i in $(seq 1 100); do grep -q "Capturing" "$tmp/tshark.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5   # tshark announces before its capture is live

( cd "$tmp/www" && exec ip netns exec "$ns" timeout 140 python3 -m http.server 8000 ) > "$tmp/http.log" 2>&1 &
PIDS+=($!)
wait_listen 8000 || exit 1
ctl=$tmp/ctl.sock
ustcp_bg serve serve --http "$tmp/www" --tun t0 --no-configure --ctl "$ctl"
wait_ctl "$ctl" || { cat "$tmp/serve.log"; exit 1; }

get() {   # get NAME ADDR ECN: ustcp get from the kernel's http.server, over t1
  nsx timeout 60 "$U" get --tun t1 --no-configure --no-ctl --timeout 40 --ecn "$3" \
    --addr "$2" --peer 10.8.0.1 --pcap "$tmp/$1.pcap" http://10.8.0.1:8000/f.bin -o "$tmp/$1.bin" \
    > "$tmp/$1.log" 2>&1
}

# a) the kernel asks, ustcp (default) accepts
nsx curl -sS --max-time 40 --local-port 41001 -o "$tmp/a.bin" http://10.7.0.2/f.bin
check "a) curl 4 MB from ustcp serve: sha256 matches" [ "$(sha "$tmp/a.bin")" = "$want" ]
# b) ustcp asks
get b 10.8.0.2 1
check "b) ustcp get --ecn 1 4 MB from the kernel: sha256 matches" [ "$(sha "$tmp/b.bin")" = "$want" ]

# c) CE marks by nftables on some of the ECT(0) packets, each direction in turn
if nsx tc qdisc add dev t0 root fq_codel ce_threshold 1ms ecn 2> "$tmp/tc.err"; then
  nsx tc qdisc del dev t0 root
  echo "note: fq_codel ce_threshold is available here; the test marks with nftables all the same"
else
  echo "SKIP: CE marking by a qdisc: $(head -1 "$tmp/tc.err") (fq_codel); marking with nftables"
fi
# nftables sees a GSO super-packet before it is cut into segments, and the
# kernel's TCP builds them whatever the device's TSO/GSO settings (it has
# forced software GSO on every route since Linux 4.13, sk_setup_caps; the
# frame is cut after POSTROUTING), so turning offloads off with ethtool, as
# this test used to, changes nothing here: a run had 1 rule match and 48 CE
# segments on t1. A 4 MB transfer is ~90 such frames, so 2 % random marks
# gave none at all in about one run of six (0.98^90; CI of 2026-12-03, and
# "nftables marked 0" on 2026-12-04). c1 therefore marks deterministically, every 25th ECT(0) frame
# from the kernel (numgen inc), ~3 frames of ~45 segments each. c2 marks what
# ustcp writes (one segment per write without --offload) at random, 2 %.
nsx nft add table ip ecnt
nsx nft add chain ip ecnt post '{ type filter hook postrouting priority 0; }'
nsx nft add chain ip ecnt pre '{ type filter hook prerouting priority 0; }'
nsx nft add rule ip ecnt post ip daddr 10.8.0.3 ip ecn ect0 numgen inc mod 25 12 counter ip ecn set ce
get c1 10.8.0.3 1
# how many packets (frames) nftables marked: the rule's counter
marked_c1=$(nsx nft list chain ip ecnt post 2>/dev/null | grep -oE 'counter packets [0-9]+' | awk '{print $3}')
check "c1) CE on kernel -> ustcp: 4 MB byte-exact" [ "$(sha "$tmp/c1.bin")" = "$want" ]
nsx nft flush chain ip ecnt post
nsx nft add rule ip ecnt pre ip saddr 10.7.0.2 ip ecn ect0 numgen random mod 100 '<' 2 ip ecn set ce
nsx curl -sS --max-time 40 --local-port 41002 -o "$tmp/c2.bin" http://10.7.0.2/f.bin
check "c2) CE on ustcp -> kernel: 4 MB byte-exact" [ "$(sha "$tmp/c2.bin")" = "$want" ]
nsx nft delete table ip ecnt

# d) ECN off in ustcp
get d 10.8.0.4 0
check "d) ustcp get --ecn 0: sha256 matches" [ "$(sha "$tmp/d.bin")" = "$want" ]

sleep 0.5
kill -INT "$tshark_pid" 2>/dev/null
for i in $(seq 1 100); do kill -0 "$tshark_pid" 2>/dev/null || break; sleep 0.1; done
drops=$(grep -oE '[0-9]+ packets? dropped' "$tmp/tshark.log" | awk '{s += $1} END {print s + 0}')
check "tshark dropped no packets ($drops)" [ "$drops" = 0 ]

# count FILTER: packets in the capture that match the display filter
count() { tshark -r "$tmp/cap.pcapng" -Y "$1" 2>/dev/null | wc -l; }
# the connections: a) kernel:41001 - ustcp:80, c2) kernel:41002 - ustcp:80,
# b) c1) d) ustcp 10.8.0.2 / .3 / .4 - kernel:8000
A='tcp.port == 41001'
ece_cwr='tcp.flags.ece == 1 && tcp.flags.cwr == 1'
n_syn=$(count "$A && tcp.flags.syn == 1 && tcp.flags.ack == 0 && $ece_cwr && ip.dsfield.ecn == 0")
check "a) the kernel's SYN is an ECN-setup SYN, Not-ECT ($n_syn)" [ "$n_syn" -ge 1 ]
n_sa=$(count "$A && tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.flags.ece == 1 && tcp.flags.cwr == 0 && ip.dsfield.ecn == 0")
check "a) ustcp's SYN-ACK is an ECN-setup SYN-ACK, Not-ECT ($n_sa)" [ "$n_sa" = 1 ]
# New data is ECT(0); a retransmission is Not-ECT (RFC 3168 §6.1.5, Linux's
# tcp_ecn_send): a run on a loaded machine may resend a segment or two (a CI run
# had 2448 ECT of 2449), so the two kinds are counted apart (tshark's analysis).
RTX='(tcp.analysis.retransmission || tcp.analysis.fast_retransmission || tcp.analysis.spurious_retransmission)'
data_u=$(count "$A && ip.src == 10.7.0.2 && tcp.len > 0 && !$RTX")
ect_u=$(count "$A && ip.src == 10.7.0.2 && tcp.len > 0 && !$RTX && ip.dsfield.ecn == 2")
check "a) ustcp's new data segments are ECT(0): $ect_u of $data_u" [ "$data_u" -gt 100 -a "$ect_u" = "$data_u" ]
rtx_ect=$(count "$A && ip.src == 10.7.0.2 && tcp.len > 0 && $RTX && ip.dsfield.ecn != 0")
rtx_n=$(count "$A && ip.src == 10.7.0.2 && tcp.len > 0 && $RTX")
check "a) ustcp's retransmissions are Not-ECT: $rtx_ect ECT of $rtx_n" [ "$rtx_ect" = 0 ]
ect_k=$(count "$A && ip.src == 10.7.0.1 && tcp.len > 0 && ip.dsfield.ecn == 2")
check "a) the kernel's data (the request) is ECT(0) ($ect_k)" [ "$ect_k" -ge 1 ]
ack_u=$(count "$A && ip.src == 10.7.0.2 && tcp.len == 0 && ip.dsfield.ecn != 0")
check "a) ustcp's segments without data are Not-ECT ($ack_u ECT)" [ "$ack_u" = 0 ]

Bc='ip.addr == 10.8.0.2'
C1='ip.addr == 10.8.0.3'
n_syn=$(count "$Bc && ip.src == 10.8.0.2 && tcp.flags.syn == 1 && $ece_cwr && ip.dsfield.ecn == 0")
check "b) ustcp --ecn 1 sends an ECN-setup SYN ($n_syn)" [ "$n_syn" = 1 ]
n_sa=$(count "$Bc && ip.src == 10.8.0.1 && tcp.flags.syn == 1 && tcp.flags.ece == 1 && tcp.flags.cwr == 0")
check "b) the kernel's SYN-ACK agrees ($n_sa)" [ "$n_sa" -ge 1 ]
data_k=$(count "$Bc && ip.src == 10.8.0.1 && tcp.len > 0")
ect_k=$(count "$Bc && ip.src == 10.8.0.1 && tcp.len > 0 && ip.dsfield.ecn == 2")
check "b) the kernel's data is ECT(0): $ect_k of $data_k" [ "$data_k" -gt 100 -a "$ect_k" -ge $((data_k * 9 / 10)) ]
ect_u=$(count "$Bc && ip.src == 10.8.0.2 && tcp.len > 0 && ip.dsfield.ecn == 2")
check "b) ustcp's data (the request) is ECT(0) ($ect_u)" [ "$ect_u" -ge 1 ]

ce=$(count "$C1 && ip.src == 10.8.0.1 && ip.dsfield.ecn == 3")
# What ustcp itself received (its own capture, --pcap): tshark on t1 sees a
# packet before the TUN device's queue, which drops packets when a loaded
# ustcp reads late (a CI run: 1 CE mark on t1, none of it reached ustcp).
ce_rx=$(tshark -r "$tmp/c1.pcap" -Y "ip.src == 10.8.0.1 && ip.dsfield.ecn == 3" 2>/dev/null | wc -l)
ece=$(count "$C1 && ip.src == 10.8.0.3 && tcp.flags.syn == 0 && tcp.flags.ece == 1")
cwr=$(count "$C1 && ip.src == 10.8.0.1 && tcp.flags.syn == 0 && tcp.flags.cwr == 1")
syn_c1=$(count "$C1 && ip.src == 10.8.0.3 && tcp.flags.syn == 1")
ect_c1=$(count "$C1 && ip.src == 10.8.0.1 && tcp.len > 0 && ip.dsfield.ecn != 0")
# Which SYN the kernel answered decides ECN, not how many ustcp sent. ustcp's
# SYN is resent without ECE|CWR when the SYN-ACK is read after the 1 s timeout
# (RFC 3168 §6.1.1.1, Linux's tcp_ecn_clear_syn); if the kernel had already
# answered the first, ECN-setup SYN, its SYN-ACK carries ECE and the
# connection has ECN all the same (Linux's tcp_ecn_rcv_synack keeps it). The CI
# run of stop 21 had 2 SYNs and an ECE SYN-ACK, and the old check, which
# took 2 SYNs to mean "no ECN", failed on the kernel's ECT data.
synack_ece=$(count "$C1 && ip.src == 10.8.0.1 && tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.flags.ece == 1 && tcp.flags.cwr == 0")
if [ "$syn_c1" = 0 ]; then
  # A CI run (2026-12-04, ASan) had c1's data in tshark's capture but not its
  # handshake: no SYN, no SYN-ACK, with 0 packets dropped by tshark's count.
  # The cause is not known; ustcp's own capture (--pcap) has the same packets
  # as they crossed the device, so the handshake is read there instead.
  syn_c1=$(tshark -r "$tmp/c1.pcap" -Y "ip.src == 10.8.0.3 && tcp.flags.syn == 1" 2>/dev/null | wc -l)
  synack_ece=$(tshark -r "$tmp/c1.pcap" -Y "ip.src == 10.8.0.1 && tcp.flags.syn == 1 && tcp.flags.ack == 1 && tcp.flags.ece == 1 && tcp.flags.cwr == 0" 2>/dev/null | wc -l)
  echo "note: c1) tshark's capture has no handshake of c1; from ustcp's --pcap: $syn_c1 SYNs, $synack_ece ECE SYN-ACKs"
fi
if [ "$synack_ece" = 0 ] && [ "$syn_c1" -gt 1 ]; then
  echo "SKIP: c1) the kernel answered only ustcp's resent SYN ($syn_c1 SYNs), which asks for no ECN; the CE case did not run"
  check "c1) without ECN the kernel's data is Not-ECT ($ect_c1 ECT)" [ "$ect_c1" = 0 ]
elif [ "$synack_ece" = 0 ]; then
  check "c1) the kernel's SYN-ACK agrees to ECN (0 of them with ECE; ustcp SYNs $syn_c1)" false
elif [ "$ce_rx" = 0 ]; then
  # The frames nftables marked can all be dropped by the TUN queue before
  # ustcp reads them when a loaded (ASan) ustcp reads late; the SKIP line
  # says how many were marked. ustcp's CE -> ECE echo is proven in any
  # case by tests/scripts/RFC3168-6.1.3-ce-echo.pkt.
  echo "SKIP: c1) no CE-marked packet reached ustcp in this run (nftables marked ${marked_c1:-?}, $ce CE on t1, kernel ECT data $ect_c1, ustcp SYNs $syn_c1, ECE SYN-ACKs $synack_ece); the CE echo against the kernel did not run"
else
  check "c1) the kernel's data was CE-marked (${marked_c1:-?} frames marked, $ce CE segments on t1, $ce_rx read by ustcp), ustcp echoed ECE ($ece ACKs); ustcp SYNs $syn_c1, kernel ECT data $ect_c1" \
    [ "$ece" -gt 0 ]
fi
# The kernel's CWR is the kernel's business (0 or 1 in runs where ustcp echoed
# ECE 67-106 times: it reduces at most once a window, and in a 4 MB transfer
# over TUN its window ends a few times in all); ustcp's own CWR is checked in c2.
echo "note: c1) the kernel sent CWR on $cwr segments"
C2='tcp.port == 41002'
ece=$(count "$C2 && ip.src == 10.7.0.1 && tcp.flags.syn == 0 && tcp.flags.ece == 1")
cwr=$(count "$C2 && ip.src == 10.7.0.2 && tcp.flags.syn == 0 && tcp.flags.cwr == 1")
cwr_data=$(count "$C2 && ip.src == 10.7.0.2 && tcp.flags.syn == 0 && tcp.flags.cwr == 1 && tcp.len > 0 && ip.dsfield.ecn == 2")
check "c2) the kernel echoed CE as ECE ($ece ACKs), ustcp reduced and sent CWR ($cwr, on ECT(0) data: $cwr_data)" \
  [ "$ece" -gt 0 -a "$cwr" -gt 0 -a "$cwr" = "$cwr_data" ]
# RFC 3168 §6.1.2, once per window: CWR rides on the first new segment after a
# reduction began, so its seq is snd_max then; the next reduction may only come
# after an ACK beyond it (capture order is the kernel's order of sending)
tshark -r "$tmp/cap.pcapng" -Y "$C2 && (ip.src == 10.7.0.2 && tcp.flags.cwr == 1 || ip.src == 10.7.0.1)" \
  -T fields -e ip.src -e tcp.seq -e tcp.ack 2>/dev/null > "$tmp/c2.txt"
read -r nred early < <(python3 - "$tmp/c2.txt" <<'PY'
import sys
cwr, passed, n, early = None, True, 0, 0
for line in open(sys.argv[1]):
    src, seq, ack = line.split()
    if src == "10.7.0.2":
        if cwr is not None and not passed:
            early += 1
        cwr, passed, n = int(seq), False, n + 1
    elif cwr is not None and int(ack) > cwr:
        passed = True
print(n, early)
PY
)
check "c2) one reduction per window: $nred reductions, $early before the previous window was acknowledged" \
  [ "${nred:-0}" -gt 0 -a "${early:-1}" = 0 ]

D='ip.addr == 10.8.0.4'
n_syn=$(count "$D && ip.src == 10.8.0.4 && tcp.flags.syn == 1 && (tcp.flags.ece == 1 || tcp.flags.cwr == 1)")
ect=$(count "$D && ip.dsfield.ecn != 0")
all=$(count "$D && tcp")
check "d) --ecn 0: no ECN-setup SYN ($n_syn), nothing ECT ($ect of $all packets)" [ "$n_syn" = 0 -a "$ect" = 0 -a "$all" -gt 100 ]
finish
