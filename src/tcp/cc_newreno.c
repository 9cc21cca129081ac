/* NewReno congestion control (RFC 5681 §3.1, RFC 6582), Linux's "reno":
 * slow start counting acknowledged segments (tcp_slow_start), congestion
 * avoidance adding one segment per window acknowledged (tcp_cong_avoid_ai),
 * and half the flight on loss. The recovery itself (RFC 6582's fast recovery)
 * is the engine's. */
#include <string.h>
#include "tcp/tcp.h"

struct reno {
  uint32_t acked_accum;           /* bytes acked toward one MSS of growth (CA) */
};
_Static_assert(sizeof(struct reno) <= CC_PRIV_BYTES, "reno state too big");

static struct reno *R(struct tcb *t) { return (struct reno *)(void *)t->cc.priv; }

static void reno_init(struct tcb *t) { R(t)->acked_accum = 0; }

static void reno_on_ack(struct tcb *t, const struct cc_ack *a)
{
  uint32_t mss = t->snd_mss;
  if (!a->cwnd_limited) return;        /* RFC 7661 (tcp_reno_cong_avoid) */
  uint32_t acked = a->acked;
  if (t->cc.cwnd < t->cc.ssthresh) {
    /* Slow start counting segments (Linux's tcp_slow_start; RFC 5681 eq. 2
     * with RFC 3465's L unbounded): what passes ssthresh goes on to CA. */
    acked = cc_slow_start(t, acked);
    if (!acked) return;
  }
  struct reno *r = R(t);
  r->acked_accum += acked;                           /* congestion avoidance, per RTT */
  if (r->acked_accum >= t->cc.cwnd) {
    r->acked_accum -= t->cc.cwnd;
    t->cc.cwnd += mss;
  }
}

/* RFC 5681 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS). */
static void reno_on_congestion_event(struct tcb *t, uint32_t flight, uint64_t now_us)
{
  (void)now_us;
  uint32_t two = 2u * t->snd_mss;
  t->cc.ssthresh = flight / 2 > two ? flight / 2 : two;
}

static void reno_on_rto(struct tcb *t, uint32_t flight, uint64_t now_us)
{
  reno_on_congestion_event(t, flight, now_us);
  t->cc.cwnd = t->snd_mss;                           /* RFC 5681 §3.1: LW = 1 SMSS */
  R(t)->acked_accum = 0;
}

static void reno_on_idle_restart(struct tcb *t, uint64_t idle_us, uint64_t rto_us,
                                 uint32_t restart_cwnd)
{
  cc_restart_window(t, idle_us, rto_us, restart_cwnd);
}

const struct cc_ops cc_newreno_ops = {
  .name = "reno",
  .init = reno_init,
  .on_ack = reno_on_ack,
  .on_congestion_event = reno_on_congestion_event,
  .on_rto = reno_on_rto,
  .on_idle_restart = reno_on_idle_restart,
};
