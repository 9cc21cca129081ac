/* RFC 7323 §4 (RTTM) with RFC 3522's comparison: an ACK whose TSecr is older
 * than our latest retransmission does not time the round trip. Case: the peer
 * got our segment, its ACK was lost, our RTO resent the segment (a duplicate
 * for the peer, which answers without updating TS.Recent: RFC 7323 §5.3 R2
 * rejects it before R3), and that answer echoes the ORIGINAL segment's TSval.
 * Taken as a sample it measured the whole RTO wait: on the simulator at 30 %
 * loss, samples of 67-324 s pegged the RTO at 120 s and cut the rate tenfold
 * (ustcp_bench loss --loss 0.3: 61.9 B/s with timestamps against 615.6 without).
 * Proves: after several backed-off retransmissions answered by such an ACK,
 * SRTT stays at the path's RTT (not seconds) and the RTO is recomputed from it;
 * an ACK echoing the retransmission's own TSval is still a sample. */
#include "check.h"
#include "rawpeer.h"

#define PEER_TS0 5000u

static struct tcp_opts ts_opt(uint32_t val, uint32_t ecr)
{
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_TS;
  o.ts_val = val;
  o.ts_ecr = ecr;
  return o;
}

static int setup(struct rp *r, struct rp_conn *c)
{
  rp_init(r, NULL, 11);
  int l = rp_listen(r, 80, 16);
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_TS;
  o.mss = 1460;
  o.ts_val = PEER_TS0;
  memset(c, 0, sizeof *c);
  c->peer_ip = RP_PEER_IP;
  c->peer_port = 34444;
  c->local_port = 80;
  c->peer_isn = 0x50000000u;
  rp_clear(r);
  rp_send_from(r, c->peer_ip, c->peer_port, 80, c->peer_isn, 0, TCP_SYN, 65535, &o, NULL, 0);
  struct tcp_packet p;
  CHECK(rp_last(r, &p));
  c->stack_isn = p.tcp.seq;
  c->rcv_nxt = p.tcp.seq + 1;
  c->snd_nxt = c->peer_isn + 1;
  rp_advance(r, 100 * USTCP_MSEC);   /* a 100 ms path */
  struct tcp_opts a = ts_opt(PEER_TS0 + 100, p.tcp.opts.ts_val);
  rp_send_from(r, c->peer_ip, c->peer_port, 80, c->snd_nxt, c->rcv_nxt, TCP_ACK, 65535, &a, NULL, 0);
  c->fd = ustcp_accept(r->s, l, NULL);
  CHECK(c->fd >= 0);
  rp_clear(r);
  return c->fd;
}

static void rfc7323_4_stale_tsecr_is_no_sample(void)
{
  struct rp r;
  struct rp_conn c;
  int fd = setup(&r, &c);
  uint8_t d[100];
  memset(d, 'x', sizeof d);
  CHECK_EQ(ustcp_send(r.s, fd, d, sizeof d, 0), 100);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));
  uint32_t first_tsval = p.tcp.opts.ts_val;
  /* The peer's ACK is lost; the RTO fires three times (0.3 + 0.6 + 1.2 s ...). */
  rp_advance(&r, 3 * USTCP_SEC);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  CHECK(ti.retrans_segs >= 2);
  uint32_t last_tsval = 0;
  for (size_t i = r.head; i < r.head + r.n; i++)
    if (tcp_packet_decode(r.q[i].data, r.q[i].len, &p) == WIRE_OK && p.payload_len)
      last_tsval = p.tcp.opts.ts_val;
  CHECK(last_tsval > first_tsval + 1000);
  /* The peer answers the duplicate echoing the original TSval. */
  struct tcp_opts a = ts_opt(PEER_TS0 + 200, first_tsval);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, c.rcv_nxt + 100, TCP_ACK, 65535, &a,
               NULL, 0);
  ustcp_get_info(r.s, fd, &ti);
  CHECK_EQ(ti.unacked, 0);
  CHECK(ti.rtt_us < 200 * USTCP_MSEC);              /* a 3 s sample would make it ~460 ms */
  if (ti.rtt_us >= 200 * USTCP_MSEC) fprintf(stderr, "srtt %llu us\n", (unsigned long long)ti.rtt_us);
  /* Next: an ACK echoing the retransmission's own TSval is a sample. */
  CHECK_EQ(ustcp_send(r.s, fd, d, sizeof d, 0), 100);
  rp_advance(&r, 400 * USTCP_MSEC);                 /* the RTO fires once */
  uint32_t rex = 0;
  for (size_t i = r.head; i < r.head + r.n; i++)
    if (tcp_packet_decode(r.q[i].data, r.q[i].len, &p) == WIRE_OK && p.payload_len)
      rex = p.tcp.opts.ts_val;
  rp_advance(&r, 100 * USTCP_MSEC);
  uint64_t before = ti.rtt_us;
  a = ts_opt(PEER_TS0 + 900, rex);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, c.rcv_nxt + 200, TCP_ACK, 65535, &a,
               NULL, 0);
  ustcp_get_info(r.s, fd, &ti);
  CHECK_EQ(ti.unacked, 0);
  CHECK(ti.rtt_us != before);                        /* a sample was taken */
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(rfc7323_4_stale_tsecr_is_no_sample);
  return check_report();
}
