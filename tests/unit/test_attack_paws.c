/* RFC 7323 §5 (PAWS) under attack. A peer (or anyone who can guess the
 * 4-tuple and a sequence number in the window) sends segments with a TSval
 * it chooses. Proves:
 *   - a flood of pure ACKs older than TS.Recent is dropped and counted
 *     (stats.paws_dropped), and draws at most one duplicate ACK per
 *     invalid_ratelimit_us (500 ms) per connection, as Linux's
 *     tcp_oow_rate_limited for LINUX_MIB_TCPACKSKIPPEDPAWS;
 *   - old segments with data are never delivered; each draws one ACK at most
 *     (exempt from the limit, as in Linux: no amplification, 1:1);
 *   - TSvals on segments that fail the sequence check never reach TS.Recent,
 *     so a blind flood of "future" TSvals cannot make the real peer's
 *     segments fail PAWS; any TSval costs O(1) work (no loop depends on it);
 *   - the connection still carries data afterwards. */
#include "check.h"
#include "rawpeer.h"

static uint64_t rng = 0x7a75;
static uint32_t rnd32(void)
{
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)(z ^ (z >> 31));
}

#define PEER_TS0 1000000u

static struct tcp_opts ts_opt(uint32_t val, uint32_t ecr)
{
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_TS;
  o.ts_val = val;
  o.ts_ecr = ecr;
  return o;
}

/* An established connection with timestamps; the peer's TS.Recent is PEER_TS0
 * + 10. Returns the accepted fd; *stack_ts is the stack's latest TSval. */
static int setup(struct rp *r, struct rp_conn *c, uint32_t *stack_ts)
{
  rp_init(r, NULL, 7);
  int l = rp_listen(r, 80, 16);
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_TS;
  o.mss = 1460;
  o.ts_val = PEER_TS0;
  memset(c, 0, sizeof *c);
  c->peer_ip = RP_PEER_IP;
  c->peer_port = 33333;
  c->local_port = 80;
  c->peer_isn = 0x40000000u;
  rp_clear(r);
  rp_send_from(r, c->peer_ip, c->peer_port, 80, c->peer_isn, 0, TCP_SYN, 65535, &o, NULL, 0);
  struct tcp_packet p;
  CHECK(rp_last(r, &p));
  CHECK(p.tcp.opts.present & TCP_OPT_HAS_TS);
  CHECK_EQ(p.tcp.opts.ts_ecr, PEER_TS0);
  *stack_ts = p.tcp.opts.ts_val;
  c->stack_isn = p.tcp.seq;
  c->rcv_nxt = p.tcp.seq + 1;
  c->snd_nxt = c->peer_isn + 1;
  rp_advance(r, 10 * USTCP_MSEC);
  struct tcp_opts a = ts_opt(PEER_TS0 + 10, *stack_ts);
  rp_send_from(r, c->peer_ip, c->peer_port, 80, c->snd_nxt, c->rcv_nxt, TCP_ACK, 65535, &a, NULL, 0);
  c->fd = ustcp_accept(r->s, l, NULL);
  CHECK(c->fd >= 0);
  rp_clear(r);
  return c->fd;
}

static void paws_ack_flood_rate_limited(void)
{
  struct rp r;
  struct rp_conn c;
  uint32_t sts;
  int fd = setup(&r, &c, &sts);
  struct ustcp_stats before, after;
  ustcp_get_stats(r.s, &before);
  r.keep = false;
  uint64_t sent0 = r.sent_total;
  /* 20000 pure ACKs over 2 s, each with a TSval older than TS.Recent by more
   * than an RTO (not a reordered duplicate ACK): any value in the older half
   * of the TSval space. */
  for (int i = 0; i < 20000; i++) {
    uint32_t age = 300 + rnd32() % (0x7fffffffu - 300);
    struct tcp_opts o = ts_opt(PEER_TS0 + 10 - age, sts);
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, c.rcv_nxt, TCP_ACK,
                 (uint16_t)(1000 + i % 2), &o, NULL, 0);
    r.now += 100;   /* 0.1 ms apart */
  }
  ustcp_get_stats(r.s, &after);
  uint64_t replies = r.sent_total - sent0;
  printf("PAWS: 20000 old ACKs in 2 s -> %llu ACKs sent, %llu counted in paws_dropped, "
         "%llu limited\n", (unsigned long long)replies,
         (unsigned long long)(after.paws_dropped - before.paws_dropped),
         (unsigned long long)(after.oow_acks_limited - before.oow_acks_limited));
  CHECK_EQ(after.paws_dropped - before.paws_dropped, 20000);
  CHECK(replies >= 1 && replies <= 5);   /* one per 500 ms */
  CHECK_EQ(after.oow_acks_limited - before.oow_acks_limited, 20000 - replies);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void paws_old_data_never_delivered(void)
{
  struct rp r;
  struct rp_conn c;
  uint32_t sts;
  int fd = setup(&r, &c, &sts);
  r.keep = false;
  uint64_t sent0 = r.sent_total;
  uint8_t d[100];
  memset(d, 0xee, sizeof d);
  for (int i = 0; i < 1000; i++) {
    struct tcp_opts o = ts_opt(PEER_TS0 - 2 - rnd32() % 0x7ffffff0u, sts);
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, c.rcv_nxt, TCP_ACK | TCP_PSH, 65535,
                 &o, d, sizeof d);
  }
  uint64_t replies = r.sent_total - sent0;
  CHECK(replies <= 1000);   /* at most one ACK per segment: never amplified */
  uint8_t b[200];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), -EAGAIN);
  /* The real peer's bytes, with its current TSval, are taken. */
  r.keep = true;
  struct tcp_opts o = ts_opt(PEER_TS0 + 20, sts);
  uint8_t g[100];
  memset(g, 0x11, sizeof g);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, c.rcv_nxt, TCP_ACK | TCP_PSH, 65535, &o,
               g, sizeof g);
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), 100);
  CHECK_MEM(b, g, 100);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void blind_future_tsvals_do_not_poison(void)
{
  struct rp r;
  struct rp_conn c;
  uint32_t sts;
  int fd = setup(&r, &c, &sts);
  r.keep = false;
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  /* Segments outside the receive window (the blind attacker's usual guess),
   * with TSvals far in the peer's future: each is unacceptable, so none may
   * set TS.Recent; data, ACKs, SYNs, RSTs, FINs alike. */
  static const uint8_t flags[] = {TCP_ACK, TCP_ACK | TCP_PSH, TCP_SYN, TCP_RST, TCP_ACK | TCP_FIN,
                                  TCP_RST | TCP_ACK};
  uint8_t d[64] = {0};
  for (int i = 0; i < 30000; i++) {
    uint32_t off = ti.rcv_wnd + 1 + rnd32() % 0x7fff0000u;   /* beyond the right edge */
    if (i & 1) off = 0u - 1 - rnd32() % 0x7fff0000u;          /* or below rcv_nxt */
    uint8_t f = flags[i % sizeof flags];
    struct tcp_opts o = ts_opt(PEER_TS0 + 20 + 1 + rnd32() % 0x7ffffff0u, rnd32());
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt + off, rnd32(), f, 65535, &o, d,
                 (f & TCP_PSH) ? sizeof d : 0);
    if (i % 64 == 0) r.now += USTCP_MSEC;
  }
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  /* The real peer, TSval just above its last: not rejected by PAWS. */
  struct ustcp_stats before, after;
  ustcp_get_stats(r.s, &before);
  struct tcp_opts o = ts_opt(PEER_TS0 + 20, sts);
  uint8_t g[100];
  memset(g, 0x22, sizeof g);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, c.rcv_nxt, TCP_ACK | TCP_PSH, 65535, &o,
               g, sizeof g);
  ustcp_get_stats(r.s, &after);
  CHECK_EQ(after.paws_dropped, before.paws_dropped);
  uint8_t b[200];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), 100);
  CHECK_MEM(b, g, 100);
  /* and data flows the other way, its ACK echoing the peer's TSval */
  r.keep = true;
  rp_clear(&r);
  CHECK_EQ(ustcp_send(r.s, fd, g, 10, 0), 10);
  rp_advance(&r, USTCP_MSEC);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.payload_len, 10);
  CHECK(p.tcp.opts.present & TCP_OPT_HAS_TS);
  CHECK_EQ(p.tcp.opts.ts_ecr, PEER_TS0 + 20);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(paws_ack_flood_rate_limited);
  RUN(paws_old_data_never_delivered);
  RUN(blind_future_tsvals_do_not_poison);
  return check_report();
}
