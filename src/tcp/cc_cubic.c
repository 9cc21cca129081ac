/* CUBIC congestion control (RFC 9438) with HyStart++ (RFC 9406), Linux's
 * default ("cubic", net/ipv4/tcp_cubic.c) with its choices: beta 717/1024
 * (about 0.7), C 0.4, fast convergence on, the Reno-friendly region, growth
 * only while cwnd-limited (RFC 7661, tcp_is_cwnd_limited), and on an idle
 * restart the epoch moves by the idle time (bictcp_cwnd_event TX_START).
 * Unlike Linux, slow start exits with HyStart++ (RFC 9406) rather than
 * Linux's HyStart (ACK train / delay). Integer arithmetic only: windows in
 * bytes, time in milliseconds for the cubic function. */
#include <string.h>
#include "tcp/tcp.h"

#define BETA_NUM 717u                 /* beta_cubic = 717/1024 (Linux's beta) */
#define BETA_DEN 1024u
/* RFC 9438 §4.3: alpha_cubic = 3 (1 - beta) / (1 + beta) = 921/1741 ~ 0.53 */
#define ALPHA_NUM (3u * (BETA_DEN - BETA_NUM))
#define ALPHA_DEN (BETA_DEN + BETA_NUM)
#define SS_INITIAL (UINT32_MAX / 2)   /* ssthresh before any loss (cc.c) */

/* RFC 9406 §4.3 constants. */
#define HSPP_MIN_RTT_THRESH_US 4000u
#define HSPP_MAX_RTT_THRESH_US 16000u
#define HSPP_MIN_RTT_DIVISOR 8u
#define HSPP_N_RTT_SAMPLE 8u
#define HSPP_CSS_GROWTH_DIVISOR 4u
#define HSPP_CSS_ROUNDS 5u

struct cubic {
  uint64_t epoch_start_us;        /* 0 = no congestion-avoidance epoch yet */
  uint32_t w_max;                 /* bytes: cwnd before the last reduction (fast-converged) */
  uint32_t cwnd_prior;            /* bytes: cwnd when ssthresh was last set (RFC 9438 §4.3) */
  uint32_t origin;                /* bytes: the plateau of this epoch's curve */
  uint32_t k_ms;                  /* ms from the epoch start to the plateau */
  uint32_t w_est;                 /* bytes: Reno-friendly estimate (RFC 9438 §4.3) */
  uint64_t ca_accum;              /* fractional growth, in bytes * cwnd */
  uint64_t est_accum;             /* fractional growth of w_est */
  uint32_t min_rtt_us;            /* smallest RTT seen (Linux's delay_min) */
  /* HyStart++ (RFC 9406 §4.2) */
  uint32_t window_end;            /* the round ends when this is acknowledged */
  uint32_t last_round_min_rtt, cur_round_min_rtt, css_baseline_min_rtt;   /* us */
  uint32_t css_accum;             /* fractional CSS growth, in bytes */
  uint8_t rtt_sample_count;       /* saturates at N_RTT_SAMPLE */
  uint8_t css_rounds;
  bool hs_done;                   /* left the initial slow start */
  bool hs_round_set;
  bool css;                       /* in Conservative Slow Start */
};
_Static_assert(sizeof(struct cubic) <= CC_PRIV_BYTES, "cubic state too big");

static struct cubic *C(struct tcb *t) { return (struct cubic *)(void *)t->cc.priv; }

/* Integer cube root (bit by bit). */
static uint64_t icbrt(uint64_t x)
{
  uint64_t r = 0;
  for (int s = 63; s >= 0; s -= 3) {
    r <<= 1;
    uint64_t b = 3 * r * (r + 1) + 1;
    if ((x >> s) >= b) {
      x -= b << s;
      r++;
    }
  }
  return r;
}

static void cubic_init(struct tcb *t)
{
  struct cubic *c = C(t);
  memset(c, 0, sizeof *c);
  c->last_round_min_rtt = c->cur_round_min_rtt = c->css_baseline_min_rtt = UINT32_MAX;
  c->min_rtt_us = UINT32_MAX;
}

/* RFC 9406 §4.2: a round begins; windowEnd = SND.NXT. */
static void hspp_new_round(struct tcb *t, struct cubic *c)
{
  c->hs_round_set = true;
  c->window_end = t->snd_max;
  c->last_round_min_rtt = c->cur_round_min_rtt;
  c->cur_round_min_rtt = UINT32_MAX;
  c->rtt_sample_count = 0;
}

/* Returns true when HyStart++ ended slow start (ssthresh = cwnd). */
static bool hspp_on_ack(struct tcb *t, struct cubic *c, const struct cc_ack *a)
{
  if (!c->hs_round_set) hspp_new_round(t, c);
  uint32_t rtt = a->rtt_us < UINT32_MAX ? (uint32_t)a->rtt_us : UINT32_MAX - 1;
  if (a->rtt_us) {
    if (rtt < c->cur_round_min_rtt) c->cur_round_min_rtt = rtt;
    if (c->rtt_sample_count < HSPP_N_RTT_SAMPLE) c->rtt_sample_count++;
  }
  bool enough = c->rtt_sample_count >= HSPP_N_RTT_SAMPLE &&
                c->cur_round_min_rtt != UINT32_MAX && c->last_round_min_rtt != UINT32_MAX;
  if (!c->css && enough) {
    uint32_t thresh = c->last_round_min_rtt / HSPP_MIN_RTT_DIVISOR;
    if (thresh < HSPP_MIN_RTT_THRESH_US) thresh = HSPP_MIN_RTT_THRESH_US;
    if (thresh > HSPP_MAX_RTT_THRESH_US) thresh = HSPP_MAX_RTT_THRESH_US;
    if ((uint64_t)c->cur_round_min_rtt >= (uint64_t)c->last_round_min_rtt + thresh) {
      c->css = true;                     /* the delay grew: Conservative Slow Start */
      c->css_baseline_min_rtt = c->cur_round_min_rtt;
      c->css_rounds = 0;
    }
  } else if (c->css && enough && c->cur_round_min_rtt < c->css_baseline_min_rtt) {
    c->css = false;                      /* the delay increase was spurious: back to SS */
    c->css_baseline_min_rtt = UINT32_MAX;
  }
  if (seq_geq(t->snd_una, c->window_end)) {   /* the round ended */
    if (c->css && ++c->css_rounds >= HSPP_CSS_ROUNDS) {
      t->cc.ssthresh = t->cc.cwnd;       /* RFC 9406 §4.2: enter congestion avoidance */
      c->css = false;
      c->hs_done = true;
      return true;
    }
    hspp_new_round(t, c);
  }
  return false;
}

/* RFC 9438 §4.2-4.4 for `acked` bytes in congestion avoidance. */
static void cubic_avoid(struct tcb *t, struct cubic *c, uint32_t acked, uint64_t now_us)
{
  uint32_t mss = t->snd_mss;
  uint32_t cwnd = t->cc.cwnd;
  if (!c->epoch_start_us) {
    c->epoch_start_us = now_us ? now_us : 1;
    c->ca_accum = c->est_accum = 0;
    c->w_est = cwnd;
    if (cwnd < c->w_max) {
      /* K = cbrt((W_max - cwnd_epoch) / C) s (RFC 9438 eq. 2), in ms:
       * cbrt(segments * 2.5e9). */
      uint64_t diff = c->w_max - cwnd;
      if (diff > (1u << 31)) diff = 1u << 31;
      c->k_ms = (uint32_t)icbrt(diff * 2500000000ull / mss);
      c->origin = c->w_max;
    } else {
      c->k_ms = 0;
      c->origin = cwnd;
    }
  }
  /* W_cubic(t + RTT) (RFC 9438 §4.2: the target one RTT ahead). */
  uint64_t rtt = c->min_rtt_us != UINT32_MAX ? c->min_rtt_us : t->rtt.srtt_us;
  int64_t t_ms = (int64_t)((now_us - c->epoch_start_us + rtt) / 1000);
  int64_t d = t_ms - (int64_t)c->k_ms;
  if (d > 100000) d = 100000;
  if (d < -100000) d = -100000;
  /* C * d^3 segments = 0.4 * d^3 / 1e9 with d in ms. */
  int64_t delta = d * d * d / 1000 * (int64_t)(4 * mss) / 10000000;
  int64_t target = (int64_t)c->origin + delta;
  if (target < (int64_t)mss) target = mss;
  uint64_t cap = (uint64_t)cwnd + cwnd / 2;   /* RFC 9438 §4.2: at most 1.5 cwnd */
  if ((uint64_t)target > cap) target = (int64_t)cap;

  /* Reno-friendly region (RFC 9438 §4.3): W_est grows by alpha segments per
   * window acknowledged, alpha = 1 once W_est reached cwnd_prior. */
  uint64_t anum = c->w_est >= c->cwnd_prior ? 1 : ALPHA_NUM, aden = c->w_est >= c->cwnd_prior ? 1 : ALPHA_DEN;
  c->est_accum += (uint64_t)acked * mss * anum;
  uint64_t unit = (uint64_t)cwnd * aden;
  if (c->est_accum >= unit) {
    c->w_est += (uint32_t)(c->est_accum / unit);
    c->est_accum %= unit;
  }
  if ((int64_t)c->w_est > target) target = c->w_est;

  if ((uint64_t)target > cwnd) {
    /* cwnd += (target - cwnd) / cwnd per SMSS acknowledged (RFC 9438 §4.4, 4.5). */
    c->ca_accum += ((uint64_t)target - cwnd) * acked;
  } else {
    /* Linux (bictcp_update): at or above the curve, one segment per 100 windows. */
    c->ca_accum += (uint64_t)acked * mss / 100;
  }
  if (c->ca_accum >= cwnd) {
    uint64_t inc = c->ca_accum / cwnd;
    c->ca_accum %= cwnd;
    if (inc > cwnd / 2) inc = cwnd / 2;
    t->cc.cwnd = cwnd + (uint32_t)inc;
  }
}

static void cubic_on_ack(struct tcb *t, const struct cc_ack *a)
{
  struct cubic *c = C(t);
  if (a->rtt_us && a->rtt_us < c->min_rtt_us) c->min_rtt_us = (uint32_t)a->rtt_us;
  if (!a->cwnd_limited) return;          /* RFC 7661 */
  uint32_t acked = a->acked;
  if (t->cc.cwnd < t->cc.ssthresh) {
    /* HyStart++ only in the initial slow start (RFC 9406 §4.2). */
    bool hs = !c->hs_done && t->cc.ssthresh == SS_INITIAL;
    if (hs && hspp_on_ack(t, c, a)) return;
    if (hs && c->css) {
      c->css_accum += acked;
      uint32_t inc = (uint32_t)(c->css_accum / HSPP_CSS_GROWTH_DIVISOR);
      c->css_accum -= inc * HSPP_CSS_GROWTH_DIVISOR;
      t->cc.cwnd += inc;
      return;
    }
    acked = cc_slow_start(t, acked);
    if (!acked) return;
  }
  cubic_avoid(t, c, acked, a->now_us);
}

/* RFC 9438 §4.6-4.7: fast convergence on W_max (cwnd before the reduction),
 * then ssthresh = flight_size * beta (RFC 9438 §4.6 prefers the flight;
 * Linux's bictcp_recalc_ssthresh takes its packet-counted cwnd, which RFC
 * 7661 validation keeps close to the flight). Right after a timeout cwnd is
 * 1 SMSS while the flight is still the old window. */
static void cubic_on_congestion_event(struct tcb *t, uint32_t flight, uint64_t now_us)
{
  (void)now_us;
  struct cubic *c = C(t);
  uint32_t cwnd = t->cc.cwnd;
  c->epoch_start_us = 0;
  if (cwnd < c->w_max)
    c->w_max = (uint32_t)((uint64_t)cwnd * (BETA_DEN + BETA_NUM) / (2 * BETA_DEN));
  else
    c->w_max = cwnd;
  c->cwnd_prior = cwnd;
  uint32_t ss = (uint32_t)((uint64_t)flight * BETA_NUM / BETA_DEN);
  t->cc.ssthresh = ss > 2u * t->snd_mss ? ss : 2u * t->snd_mss;
  c->hs_done = true;                     /* RFC 9406: a loss ends HyStart++ */
  c->css = false;
}

/* RFC 9438 §4.8: ssthresh as for any congestion event; the first epoch after
 * the timeout starts with K = 0 and W_max = cwnd then (Linux: bictcp_reset in
 * TCP_CA_Loss). */
static void cubic_on_rto(struct tcb *t, uint32_t flight, uint64_t now_us)
{
  struct cubic *c = C(t);
  cubic_on_congestion_event(t, flight, now_us);
  c->w_max = 0;
  c->cwnd_prior = 0;
  t->cc.cwnd = t->snd_mss;
}

static void cubic_on_idle_restart(struct tcb *t, uint64_t idle_us, uint64_t rto_us,
                                  uint32_t restart_cwnd)
{
  struct cubic *c = C(t);
  /* bictcp_cwnd_event(CA_EVENT_TX_START): the idle time is not growth time. */
  if (c->epoch_start_us) c->epoch_start_us += idle_us;
  cc_restart_window(t, idle_us, rto_us, restart_cwnd);
}

const struct cc_ops cc_cubic_ops = {
  .name = "cubic",
  .init = cubic_init,
  .on_ack = cubic_on_ack,
  .on_congestion_event = cubic_on_congestion_event,
  .on_rto = cubic_on_rto,
  .on_idle_restart = cubic_on_idle_restart,
};
