/* The engine's side of the congestion-control interface (cc.h): module
 * selection (TCP_CONGESTION, ustcp_config.congestion_control), the RFC 7661
 * verdict passed to on_ack (tcp_output.c keeps Linux's tcp_cwnd_validate), and
 * the restart after idle (RFC 5681 §4.1). */
#include <string.h>
#include "tcp/tcp.h"

const struct cc_ops *cc_find(const char *name)
{
  static const struct cc_ops *const all[] = {&cc_cubic_ops, &cc_newreno_ops};
  if (!name) return NULL;
  for (unsigned i = 0; i < sizeof all / sizeof all[0]; i++)
    if (strncmp(name, all[i]->name, CC_NAME_MAX) == 0) return all[i];
  return NULL;
}

static const struct cc_ops *cc_default(const struct tcp_engine *e)
{
  const struct cc_ops *o = cc_find(e->cfg->congestion_control);
  return o ? o : &cc_cubic_ops;
}

void cc_init_conn(struct tcp_engine *e, struct tcb *t)
{
  if (!t->cc.ops) t->cc.ops = cc_default(e);
  t->cc.cwnd = e->cfg->init_cwnd * (uint32_t)t->snd_mss;
  t->cc.ssthresh = UINT32_MAX / 2;
  memset(t->cc.priv, 0, sizeof t->cc.priv);
  t->cc.ops->init(t);
}

/* TCP_CONGESTION. Linux (tcp_set_congestion_control) switches a live
 * connection too, keeping cwnd and ssthresh and starting the new module's
 * state afresh (tcp_reinit_congestion_control). */
int cc_select(struct tcp_engine *e, struct tcb *t, const char *name)
{
  (void)e;
  const struct cc_ops *o = cc_find(name);
  if (!o) return -ENOENT;
  if (o == t->cc.ops) return 0;
  t->cc.ops = o;
  if (t->cc.cwnd) {   /* the connection is set up already */
    memset(t->cc.priv, 0, sizeof t->cc.priv);
    o->init(t);
  }
  return 0;
}

void cc_ack(struct tcp_engine *e, struct tcb *t, uint32_t acked, uint64_t rtt_us)
{
  uint32_t mss = t->snd_mss ? t->snd_mss : 536;
  struct cc_ack a = {
    .acked = acked,
    .acked_segs = (acked + mss - 1) / mss,
    .rtt_us = rtt_us,
    .now_us = e->now_us,
    .cwnd_limited = tcp_is_cwnd_limited(t),   /* tcp_output.c: tcp_cwnd_validate */
  };
  t->cc.ops->on_ack(t, &a);
}

void cc_congestion_event(struct tcp_engine *e, struct tcb *t, uint32_t flight)
{
  t->cc.ops->on_congestion_event(t, flight, e->now_us);
}

/* Linux's tcp_enter_loss: ssthresh is taken anew only by the first timeout
 * outside a recovery; a timeout during fast recovery keeps the recovery's
 * ssthresh, and a backed-off repeat keeps the first timeout's (cwnd is 1 SMSS
 * then by now), instead of dwindling to 2 SMSS. */
void cc_rto(struct tcp_engine *e, struct tcb *t, uint32_t flight)
{
  /* (likewise during an ECN reduction, RFC 3168: Linux's CWR state) */
  if (t->rec.in_recovery || t->rec.in_cwr || t->backoff > 1) {
    t->cc.cwnd = t->snd_mss;
    return;
  }
  t->cc.ops->on_rto(t, flight, e->now_us);
}

/* RFC 5681 §4.1 (RFC 7661 leaves it to the sender; Linux's
 * tcp_slow_start_after_idle = 1): data sent with nothing in flight after more
 * than one RTO of silence restarts from the restart window. */
void cc_before_output(struct tcp_engine *e, struct tcb *t)
{
  if (!e->cfg->slow_start_after_idle || t->snd_una != t->snd_max || !t->cc.last_send_us)
    return;
  uint32_t off = t->snd_nxt - t->snd_buf_seq;
  if (t->sndbuf.len <= off) return;   /* nothing new to send */
  uint64_t idle = e->now_us - t->cc.last_send_us;
  if (idle <= t->rtt.rto_us) return;
  uint32_t restart = e->cfg->init_cwnd * (uint32_t)t->snd_mss;
  t->cc.ops->on_idle_restart(t, idle, t->rtt.rto_us, restart);
  t->cc.last_send_us = e->now_us;
}

/* Linux's lsndtime: when data was last sent (the idle clock of the restart). */
void cc_after_output(struct tcp_engine *e, struct tcb *t, bool sent)
{
  if (sent) t->cc.last_send_us = e->now_us;
}

uint32_t cc_slow_start(struct tcb *t, uint32_t acked)
{
  uint32_t room = t->cc.ssthresh > t->cc.cwnd ? t->cc.ssthresh - t->cc.cwnd : 0;
  uint32_t used = acked < room ? acked : room;
  t->cc.cwnd += used;
  return acked - used;
}

void cc_restart_window(struct tcb *t, uint64_t idle_us, uint64_t rto_us, uint32_t restart_cwnd)
{
  /* tcp_cwnd_restart: ssthresh keeps 3/4 of cwnd (tcp_current_ssthresh), and
   * cwnd halves for every RTO of idleness, down to the restart window. */
  uint32_t cwnd = t->cc.cwnd;
  uint32_t cur = (cwnd >> 1) + (cwnd >> 2);
  if (cur > t->cc.ssthresh) t->cc.ssthresh = cur;
  if (restart_cwnd > cwnd) restart_cwnd = cwnd;
  uint64_t left = idle_us;
  while (rto_us && left > rto_us && cwnd > restart_cwnd) {
    left -= rto_us;
    cwnd >>= 1;
  }
  t->cc.cwnd = cwnd > restart_cwnd ? cwnd : restart_cwnd;
}

void cc_undo(struct tcp_engine *e, struct tcb *t, uint32_t prior_cwnd, uint32_t prior_ssthresh,
             const unsigned char *prior_priv)
{
  if (t->cc.ops->undo) t->cc.ops->undo(t, prior_priv, e->now_us);
  else memcpy(t->cc.priv, prior_priv, sizeof t->cc.priv);
  if (prior_cwnd > t->cc.cwnd) t->cc.cwnd = prior_cwnd;
  if (prior_ssthresh > t->cc.ssthresh) t->cc.ssthresh = prior_ssthresh;
}
