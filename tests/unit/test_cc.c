/* Congestion control modules (cc.h): the interface, TCP_CONGESTION, the stack
 * default (Linux's: cubic, slow start after idle on), and each module's rules
 * driven directly: NewReno (RFC 5681 §3.1, slow start counting segments as
 * Linux's tcp_slow_start), CUBIC (RFC 9438: beta 0.7, the cubic curve through
 * W_max at K, fast convergence, the Reno-friendly region), HyStart++ (RFC 9406)
 * and RFC 7661 (no growth while not cwnd-limited), RFC 5681 §4.1 restart. */
#include "check.h"
#include "tcp/tcp.h"
#include "ustcp.h"

#define MSS 1000u

static void out_none(void *ctx, const uint8_t *p, size_t n) { (void)ctx; (void)p; (void)n; }

static void cc_defaults_and_sockopt(void)
{
  struct ustcp_config c;
  ustcp_config_default(&c);
  /* Linux's net.ipv4.tcp_congestion_control */
  CHECK_STR(c.congestion_control, "cubic");
  CHECK_EQ(c.slow_start_after_idle, 1);           /* net.ipv4.tcp_slow_start_after_idle */
  struct ustcp_stack *s = ustcp_stack_new(&c, 0x0a000001u, 1, out_none, NULL);
  CHECK(s != NULL);
  int fd = ustcp_socket(s);
  char name[CC_NAME_MAX + 4];
  size_t len = sizeof name;
  memset(name, 'x', sizeof name);
  CHECK_EQ(ustcp_getsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_CONGESTION, name, &len), 0);
  CHECK_EQ(len, CC_NAME_MAX);
  CHECK_STR(name, "cubic");
  CHECK_EQ(ustcp_setsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_CONGESTION, "cubic", 5), 0);
  len = sizeof name;
  CHECK_EQ(ustcp_getsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_CONGESTION, name, &len), 0);
  CHECK_STR(name, "cubic");
  CHECK_EQ(ustcp_setsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_CONGESTION, "reno", 4), 0);
  len = sizeof name;
  CHECK_EQ(ustcp_getsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_CONGESTION, name, &len), 0);
  CHECK_STR(name, "reno");
  CHECK_EQ(ustcp_setsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_CONGESTION, "vegas", 5), -ENOENT);
  CHECK_EQ(ustcp_setsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_CONGESTION, "cubic\0junk", 10), 0);
  len = sizeof name;
  CHECK_EQ(ustcp_getsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_CONGESTION, name, &len), 0);
  CHECK_STR(name, "cubic");
  /* A stack default of "reno" applies to new sockets. */
  ustcp_stack_free(s);
  memcpy(c.congestion_control, "reno", 5);
  s = ustcp_stack_new(&c, 0x0a000001u, 1, out_none, NULL);
  fd = ustcp_socket(s);
  len = sizeof name;
  CHECK_EQ(ustcp_getsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_CONGESTION, name, &len), 0);
  CHECK_STR(name, "reno");
  ustcp_stack_free(s);
}

static void tcb_setup(struct tcb *t, const struct cc_ops *ops, uint32_t cwnd_segs)
{
  memset(t, 0, sizeof *t);
  t->snd_mss = MSS;
  t->cc.ops = ops;
  t->cc.cwnd = cwnd_segs * MSS;
  t->cc.ssthresh = UINT32_MAX / 2;
  ops->init(t);
}

static struct cc_ack ack_of(uint32_t segs, uint64_t now, uint64_t rtt, bool limited)
{
  struct cc_ack a = {.acked = segs * MSS, .acked_segs = segs, .rtt_us = rtt, .now_us = now,
                     .cwnd_limited = limited};
  return a;
}

static void reno_rules(void)
{
  struct tcb t;
  tcb_setup(&t, &cc_newreno_ops, 10);
  struct cc_ack a = ack_of(2, 1000, 0, true);   /* a delayed ACK of two segments */
  t.cc.ops->on_ack(&t, &a);
  CHECK_EQ(t.cc.cwnd, 12 * MSS);                /* every byte acked: + 2 segments */
  a = ack_of(2, 1000, 0, false);
  t.cc.ops->on_ack(&t, &a);
  CHECK_EQ(t.cc.cwnd, 12 * MSS);                /* RFC 7661: not cwnd-limited */
  t.cc.ops->on_congestion_event(&t, 12 * MSS, 2000);
  CHECK_EQ(t.cc.ssthresh, 6 * MSS);             /* RFC 5681 eq. 4 */
  t.cc.cwnd = t.cc.ssthresh;
  for (int i = 0; i < 6; i++) {                 /* one window: + 1 segment */
    a = ack_of(1, 3000, 0, true);
    t.cc.ops->on_ack(&t, &a);
  }
  CHECK_EQ(t.cc.cwnd, 7 * MSS);
  t.cc.ops->on_rto(&t, 7 * MSS, 4000);
  CHECK_EQ(t.cc.cwnd, MSS);
  CHECK_EQ(t.cc.ssthresh, 3500);
}

/* One window per RTT, acknowledged segment by segment; returns cwnd in segments. */
static double run_rtts(struct tcb *t, uint64_t *now, unsigned rtts, uint64_t rtt)
{
  for (unsigned r = 0; r < rtts; r++) {
    uint32_t segs = t->cc.cwnd / MSS;
    for (uint32_t i = 0; i < segs; i++) {
      struct cc_ack a = ack_of(1, *now + rtt * i / segs, i == 0 ? rtt : 0, true);
      t->cc.ops->on_ack(t, &a);
    }
    *now += rtt;
  }
  return (double)t->cc.cwnd / MSS;
}

static void cubic_rules(void)
{
  struct tcb t;
  tcb_setup(&t, &cc_cubic_ops, 100);
  t.cc.ssthresh = 50 * MSS;                     /* past slow start */
  uint64_t now = 1000000;
  t.cc.ops->on_congestion_event(&t, 100 * MSS, now);
  /* RFC 9438 §4.6: ssthresh = cwnd * beta_cubic (Linux: 717/1024). */
  CHECK_EQ(t.cc.ssthresh, 100 * MSS * 717 / 1024);
  t.cc.cwnd = t.cc.ssthresh;
  /* K = cbrt(W_max (1 - beta) / C) = cbrt(30 / 0.4) = 4.2 s: with a 100 ms
   * RTT the window is concave below W_max = 100 before, about W_max at K. */
  double w2 = run_rtts(&t, &now, 20, 100000);   /* t = 2 s */
  CHECK(w2 > 80 && w2 < 99);
  double wk = run_rtts(&t, &now, 21, 100000);   /* t = 4.1 s (K - 1 RTT: the target looks ahead) */
  CHECK(wk > 97 && wk < 103);
  double w6 = run_rtts(&t, &now, 20, 100000);   /* t = 6.1 s: convex, past W_max */
  CHECK(w6 > 103);
  /* Fast convergence (RFC 9438 §4.7): a loss below the previous W_max sets
   * W_max = cwnd (1 + beta) / 2, so the plateau is lower than this cwnd. */
  uint32_t cw = t.cc.cwnd;
  t.cc.ops->on_congestion_event(&t, cw, now);
  CHECK_EQ(t.cc.ssthresh, (uint32_t)((uint64_t)cw * 717 / 1024));
  t.cc.cwnd = t.cc.ssthresh;
  uint32_t cw2 = t.cc.cwnd;
  t.cc.ops->on_congestion_event(&t, cw2, now);  /* below W_max = cw now */
  t.cc.cwnd = t.cc.ssthresh;
  double plateau = (double)cw2 * (1024 + 717) / 2048 / MSS;
  run_rtts(&t, &now, 1, 100000);                /* starts the epoch */
  uint64_t kr = 30;                             /* well before K + a few RTTs */
  (void)kr;
  double w = run_rtts(&t, &now, 10, 100000);
  CHECK(w < plateau + 1);
  /* RFC 7661: acknowledgments while application-limited do not grow cwnd. */
  uint32_t before = t.cc.cwnd;
  for (int i = 0; i < 1000; i++) {
    struct cc_ack a = ack_of(1, now + (uint64_t)i * 1000, 0, false);
    t.cc.ops->on_ack(&t, &a);
  }
  CHECK_EQ(t.cc.cwnd, before);
  /* RFC 9438 §4.8: after a timeout, cwnd = 1 SMSS and the next epoch's
   * curve starts at cwnd (W_max forgotten, K = 0). */
  t.cc.ops->on_rto(&t, t.cc.cwnd, now);
  CHECK_EQ(t.cc.cwnd, MSS);
}

/* Reno-friendly region (RFC 9438 §4.3): at a short RTT, cubic's curve grows
 * slower than Reno would; cwnd follows W_est, about alpha = 0.53 segments per RTT. */
static void cubic_reno_friendly(void)
{
  struct tcb t;
  tcb_setup(&t, &cc_cubic_ops, 100);
  t.cc.ssthresh = 50 * MSS;
  uint64_t now = 1000000;
  t.cc.ops->on_congestion_event(&t, 100 * MSS, now);
  t.cc.cwnd = t.cc.ssthresh;
  double w0 = (double)t.cc.cwnd / MSS;
  double w = run_rtts(&t, &now, 50, 1000);      /* 50 RTTs of 1 ms = 0.05 s of the curve */
  CHECK(w - w0 > 22 && w - w0 < 32);            /* ~26.5: W_est's pace; the cubic's ~1 */
  /* Once W_est passes cwnd_prior (100), alpha = 1: one segment per RTT. */
  w0 = run_rtts(&t, &now, 40, 1000);
  w = run_rtts(&t, &now, 20, 1000);
  CHECK(w - w0 > 18 && w - w0 < 22);
}

/* HyStart++ (RFC 9406 §4.2): the round's minimum RTT rising by more than
 * clamp(minRTT/8, 4 ms, 16 ms) enters Conservative Slow Start; CSS_ROUNDS (5)
 * later slow start ends with ssthresh = cwnd, long before a loss. */
static void hystart_pp(void)
{
  struct tcb t;
  tcb_setup(&t, &cc_cubic_ops, 10);
  uint64_t now = 1000000;
  t.snd_una = 0;
  t.snd_max = t.cc.cwnd;
  /* Each ACK acknowledges one segment and the sender fills cwnd again; the
   * queue (RTT 50 ms -> 70 ms) builds once cwnd passes 40 segments. */
  for (int i = 0; i < 100000 && t.cc.cwnd < t.cc.ssthresh; i++) {
    uint64_t r = t.cc.cwnd > 40 * MSS ? 70000 : 50000;
    t.snd_una += MSS;
    struct cc_ack a = ack_of(1, now, r, true);  /* a sample on every ACK */
    t.cc.ops->on_ack(&t, &a);
    t.snd_max = t.snd_una + t.cc.cwnd;
    now += r / (t.cc.cwnd / MSS);
  }
  CHECK(t.cc.ssthresh != UINT32_MAX / 2);        /* slow start ended without a loss */
  CHECK_EQ(t.cc.ssthresh, t.cc.cwnd);
  /* The delay rise is seen in the round after cwnd passed 40 (about 80 then);
   * five CSS rounds grow by a quarter each (about 80 * 1.25^5 = 244), where
   * doubling would have reached 80 * 2^5 = 2560. */
  CHECK(t.cc.cwnd > 150 * MSS && t.cc.cwnd < 320 * MSS);
}

static void restart_after_idle(void)
{
  struct tcb t;
  tcb_setup(&t, &cc_newreno_ops, 80);
  /* Linux's tcp_cwnd_restart: 3.5 RTOs idle halves cwnd three times, not below IW. */
  t.cc.ops->on_idle_restart(&t, 3500000, 1000000, 10 * MSS);
  CHECK_EQ(t.cc.cwnd, 10 * MSS);
  CHECK_EQ(t.cc.ssthresh, UINT32_MAX / 2);       /* max(ssthresh, 3/4 cwnd) */
  tcb_setup(&t, &cc_newreno_ops, 80);
  t.cc.ssthresh = 40 * MSS;
  t.cc.ops->on_idle_restart(&t, 2500000, 1000000, 10 * MSS);
  CHECK_EQ(t.cc.cwnd, 20 * MSS);
  CHECK_EQ(t.cc.ssthresh, 60 * MSS);
}

int main(void)
{
  RUN(cc_defaults_and_sockopt);
  RUN(reno_rules);
  RUN(cubic_rules);
  RUN(cubic_reno_friendly);
  RUN(hystart_pp);
  RUN(restart_after_idle);
  return check_report();
}
