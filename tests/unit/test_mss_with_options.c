/* A data segment carrying options must still fit the path: its payload is the
 * MSS less the option bytes it carries (Linux's tcp_current_mss subtracts the
 * length of the SACK blocks, and of timestamps, from the MSS). Before, a
 * segment sent while out-of-order data was queued carried SACK blocks on top
 * of a full MSS of payload: 12-36 bytes over the MTU. Found by interop_icmp:
 * after "fragmentation needed" had lowered the MSS to 1240 for a 1280-byte
 * path, the echo's SACK-carrying segments were 1292 bytes, dropped again by the
 * router, and its ICMP (MTU 1280, MSS 1240 = the current one) changed nothing:
 * the transfer stalled.
 * Proves: with 1..4 SACK blocks to report, every segment the stack sends is at
 * most the MTU (and the MSS the peer announced bounds the IP payload minus 40),
 * while the payload is still as large as that allows. */
#include "check.h"
#include "rawpeer.h"

static void segments_fit_with_sack_blocks(unsigned holes, bool ts)
{
  struct rp r;
  struct rp_conn c;
  rp_init(&r, NULL, 77);
  int l = rp_listen(&r, 80, 4);
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_SACK_PERM;
  o.mss = 1460;
  if (ts) {            /* RFC 7323: TS on every segment, 3 SACK blocks at most beside it */
    o.present |= TCP_OPT_HAS_TS;
    o.ts_val = 1;
  }
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 33001, 80, 0x9000, &o);
  CHECK(fd >= 0);
  /* Out-of-order data from the peer: `holes` islands beyond a gap, so the
   * stack's ACKs (and data segments) carry that many SACK blocks. */
  uint8_t d[100];
  memset(d, 'p', sizeof d);
  for (unsigned i = 0; i < holes; i++)
    rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt + 200 + 300 * i, c.rcv_nxt,
                 TCP_ACK, 65535, NULL, d, sizeof d);
  rp_clear(&r);
  /* Now the stack sends a bulk of data. */
  static uint8_t big[64 * 1024];
  memset(big, 's', sizeof big);
  CHECK(ustcp_send(r.s, fd, big, sizeof big, 0) > 0);
  rp_advance(&r, USTCP_MSEC);
  unsigned segs = 0, with_sack = 0, too_big = 0, full = 0, with_ts = 0, blocks = 0;
  struct tcp_packet p;
  for (size_t i = r.head; i < r.head + r.n; i++) {
    if (tcp_packet_decode(r.q[i].data, r.q[i].len, &p) != WIRE_OK || p.payload_len == 0) continue;
    segs++;
    if (p.tcp.opts.present & TCP_OPT_HAS_SACK) with_sack++;
    if (p.tcp.opts.present & TCP_OPT_HAS_TS) with_ts++;
    if (p.tcp.opts.sack_count > blocks) blocks = p.tcp.opts.sack_count;
    if (r.q[i].len > 1500) too_big++;
    if (r.q[i].len == 1500) full++;
  }
  CHECK(segs >= 5);
  CHECK_EQ(with_sack, holes ? segs : 0);
  CHECK_EQ(too_big, 0);
  CHECK_EQ(full, segs);                /* payload = 1460 - option bytes: exactly the MTU */
  CHECK_EQ(with_ts, ts ? segs : 0);
  CHECK_EQ(blocks, holes < (ts ? 3u : 4u) ? holes : (ts ? 3u : 4u));
  if (too_big) fprintf(stderr, "holes %u: %u of %u segments over the MTU\n", holes, too_big, segs);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void mss_minus_sack_1(void) { segments_fit_with_sack_blocks(1, false); }
static void mss_minus_sack_3(void) { segments_fit_with_sack_blocks(3, false); }
static void mss_minus_sack_4(void) { segments_fit_with_sack_blocks(4, false); }
static void mss_minus_ts(void) { segments_fit_with_sack_blocks(0, true); }
static void mss_minus_ts_sack_1(void) { segments_fit_with_sack_blocks(1, true); }
static void mss_minus_ts_sack_4(void) { segments_fit_with_sack_blocks(4, true); }

int main(void)
{
  RUN(mss_minus_sack_1);
  RUN(mss_minus_sack_3);
  RUN(mss_minus_sack_4);
  RUN(mss_minus_ts);
  RUN(mss_minus_ts_sack_1);
  RUN(mss_minus_ts_sack_4);
  return check_report();
}
