/* Attack: forged SYN-cookie ACKs (issue 10 point 5, H7). A listener that checks
 * every bare ACK as a possible cookie lets an attacker try 2^24 hashes' worth of
 * guesses with no SYN at all, and each wrong guess costs a keyed hash. Linux
 * checks an ACK as a cookie only while the listener sent cookies recently
 * (cookie_v4_check -> tcp_synq_no_recent_overflow: within TCP_SYNCOOKIE_VALID,
 * two cookie periods, of the last overflow); otherwise it is an ACK for no
 * connection: RST (RFC 9293 §3.10.7.2), and nothing is counted as a failed
 * cookie. Linux sends cookies once the SYN queue holds as many requests as the
 * listener's backlog (inet_csk_reqsk_queue_is_full), not only at
 * max_syn_backlog. Proves:
 *   - with no overflow ever, forged ACKs (any ack number) draw RST, create
 *     nothing, and are not checked (syncookies_failed stays 0);
 *   - a genuine cookie is accepted shortly after it was sent, but the same
 *     cookie 129 s later (still young enough by its own age) is answered with
 *     RST and creates nothing, unless another overflow happened in between
 *     (same secret: a second stack with the same seed);
 *   - cookies start when the SYN queue reaches the backlog (4 here).
 */
#include "check.h"
#include "rawpeer.h"

static void forged_acks_without_overflow(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct rp r;
  rp_init(&r, &cfg, 701);
  rp_listen(&r, 80, 16);
  uint64_t x = 12345;
  int rsts = 0;
  for (int i = 0; i < 2000; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    rp_clear(&r);
    rp_send_from(&r, 0x0a000000u | (uint32_t)(x >> 40 & 0xffff), (uint16_t)(1024 + (x >> 20) % 60000),
                 80, (uint32_t)(x >> 7), (uint32_t)(x >> 29), TCP_ACK, 65535, NULL, NULL, 0);
    struct tcp_packet p;
    memset(&p, 0, sizeof p);
    if (rp_last(&r, &p) && (p.tcp.flags & TCP_RST)) rsts++;
  }
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(rsts, 2000);
  CHECK_EQ(st.syncookies_failed, 0);
  CHECK_EQ(st.syncookies_recv, 0);
  CHECK_EQ(st.conns_alive, 1);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* A listener with backlog 1: SYN A takes the SYN queue's place, SYN B gets a
 * cookie. Returns B's cookie (the SYN-ACK's seq). */
static uint32_t overflow_once(struct rp *r, uint16_t port_a, uint16_t port_b)
{
  rp_send_from(r, RP_PEER_IP, port_a, 80, 1000, 0, TCP_SYN, 65535, NULL, NULL, 0);
  rp_clear(r);
  rp_send_from(r, RP_PEER_IP, port_b, 80, 2000, 0, TCP_SYN, 65535, NULL, NULL, 0);
  struct tcp_packet p;
  memset(&p, 0, sizeof p);
  CHECK(rp_last(r, &p) && p.tcp.flags == (TCP_SYN | TCP_ACK));
  return p.tcp.seq;
}

static void cookie_checked_only_after_recent_overflow(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct ustcp_stats st;
  struct tcp_packet p;

  /* Shortly after the overflow: the cookie makes a connection. */
  struct rp r;
  rp_init(&r, &cfg, 702);
  int l = rp_listen(&r, 80, 1);
  uint32_t cookie = overflow_once(&r, 5001, 5002);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.syncookies_sent, 1);
  rp_advance(&r, 10 * USTCP_SEC);
  rp_clear(&r);
  rp_send_from(&r, RP_PEER_IP, 5002, 80, 2001, cookie + 1, TCP_ACK, 65535, NULL, NULL, 0);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.syncookies_recv, 1);
  CHECK(ustcp_accept(r.s, l, NULL) >= 0);
  rp_free(&r);

  /* 129 s after the only overflow: RST, nothing made, nothing checked. */
  rp_init(&r, &cfg, 702);
  l = rp_listen(&r, 80, 1);
  CHECK_EQ(overflow_once(&r, 5001, 5002), cookie);   /* same seed, same time: same cookie */
  rp_advance(&r, 129 * USTCP_SEC);
  rp_clear(&r);
  rp_send_from(&r, RP_PEER_IP, 5002, 80, 2001, cookie + 1, TCP_ACK, 65535, NULL, NULL, 0);
  memset(&p, 0, sizeof p);
  CHECK(rp_last(&r, &p) && (p.tcp.flags & TCP_RST) && p.tcp.seq == cookie + 1);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.syncookies_recv, 0);
  CHECK_EQ(st.syncookies_failed, 0);
  CHECK_EQ(st.conns_alive, 1);
  CHECK_EQ(ustcp_accept(r.s, l, NULL), -EAGAIN);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);

  /* The same, with another overflow at 120 s: the old cookie is still good
   * (its own age is within two periods), so the gate above was the recency. */
  rp_init(&r, &cfg, 702);
  l = rp_listen(&r, 80, 1);
  CHECK_EQ(overflow_once(&r, 5001, 5002), cookie);
  rp_advance(&r, 120 * USTCP_SEC);
  overflow_once(&r, 5003, 5004);
  rp_advance(&r, 9 * USTCP_SEC);
  rp_send_from(&r, RP_PEER_IP, 5002, 80, 2001, cookie + 1, TCP_ACK, 65535, NULL, NULL, 0);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.syncookies_recv, 1);
  CHECK(ustcp_accept(r.s, l, NULL) >= 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void cookies_start_at_the_backlog(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct rp r;
  rp_init(&r, &cfg, 703);
  rp_listen(&r, 80, 4);
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_WSCALE;
  o.mss = 1460;
  o.wscale = 7;
  for (int k = 0; k < 6; k++) {
    rp_clear(&r);
    rp_send_from(&r, RP_PEER_IP, (uint16_t)(6000 + k), 80, 100u * (uint32_t)k, 0, TCP_SYN,
                 65535, &o, NULL, 0);
    struct tcp_packet p;
    memset(&p, 0, sizeof p);
    CHECK(rp_last(&r, &p) && p.tcp.flags == (TCP_SYN | TCP_ACK));
    /* A queued request offers window scaling back; a cookie cannot. */
    CHECK_EQ((p.tcp.opts.present & TCP_OPT_HAS_WSCALE) != 0, k < 4);
  }
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.syncookies_sent, 2);
  CHECK_EQ(st.conns_alive, 1 + 4);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(forged_acks_without_overflow);
  RUN(cookie_checked_only_after_recent_overflow);
  RUN(cookies_start_at_the_backlog);
  return check_report();
}
