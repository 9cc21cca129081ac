/* Timers. Every connection keeps its timers as absolute deadlines (rto_at_us,
 * persist_at_us, delack_at_us, keepalive_at_us, close_at_us; 0 = unarmed). The
 * engine keeps ONE binary min-heap of connections keyed by their earliest
 * deadline: arming or moving a timer is O(log n), finding the next deadline O(1),
 * and a poll touches only connections whose deadline has come (no scan).
 *
 * Expiry handlers:
 *   rto        RFC 6298 §5: back off, go back to snd_una, resend (SYN, SYN-ACK,
 *              data or FIN); give up after syn_retries / synack_retries /
 *              retries2 / orphan_retries (H4, H5, W5, W8)
 *   persist    zero-window probe (D3, RFC 9293 §3.8.6.1)
 *   delack     the delayed ACK is due
 *   keepalive  RFC 9293 §3.8.4 / RFC 1122 4.2.3.6 probes
 *   close      TIME_WAIT's 2MSL (W1, W10) or an orphan's fin_timeout (W7)
 */
#include <stdlib.h>
#include "tcp/tcp.h"

/* 0 means unarmed: map it to the largest value so a plain minimum works,
 * without the unpredictable branches of "armed and smaller" (this runs on every
 * timer update, i.e. about once per segment). */
static inline uint64_t armed_or_max(uint64_t at) { return at - 1; }

static uint64_t tcb_earliest(const struct tcb *t)
{
  uint64_t m = armed_or_max(t->rto_at_us);
  uint64_t x = armed_or_max(t->persist_at_us);
  m = x < m ? x : m;
  x = armed_or_max(t->delack_at_us);
  m = x < m ? x : m;
  x = armed_or_max(t->keepalive_at_us);
  m = x < m ? x : m;
  x = armed_or_max(t->close_at_us);
  m = x < m ? x : m;
  x = armed_or_max(t->tlp_at_us);
  m = x < m ? x : m;
  return m + 1;   /* UINT64_MAX + 1 wraps back to 0: nothing armed */
}

static void heap_swap(struct timer_heap *h, size_t a, size_t b)
{
  struct timer_node *x = h->v[a];
  h->v[a] = h->v[b];
  h->v[b] = x;
  h->v[a]->idx = a;
  h->v[b]->idx = b;
}

static void heap_up(struct timer_heap *h, size_t i)
{
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (h->v[p]->at_us <= h->v[i]->at_us) break;
    heap_swap(h, p, i);
    i = p;
  }
}

static void heap_down(struct timer_heap *h, size_t i)
{
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    if (l < h->n && h->v[l]->at_us < h->v[m]->at_us) m = l;
    if (r < h->n && h->v[r]->at_us < h->v[m]->at_us) m = r;
    if (m == i) break;
    heap_swap(h, m, i);
    i = m;
  }
}

void timer_remove(struct tcp_engine *e, struct tcb *t)
{
  struct timer_heap *h = &e->timers;
  struct timer_node *node = &t->timer;
  if (!node->at_us) return;
  size_t i = node->idx;
  node->at_us = 0;
  h->n--;
  if (i != h->n) {
    h->v[i] = h->v[h->n];
    h->v[i]->idx = i;
    heap_down(h, i);
    heap_up(h, i);
  }
}

void timer_update(struct tcp_engine *e, struct tcb *t)
{
  struct timer_heap *h = &e->timers;
  uint64_t at = tcb_earliest(t);
  struct timer_node *node = &t->timer;
  if (!at) { timer_remove(e, t); return; }
  if (node->at_us) {
    node->at_us = at;
    heap_down(h, node->idx);
    heap_up(h, node->idx);
    return;
  }
  /* tcb_new made room for every block; a full heap here is a bug, and the
   * block would be left without its timers. */
  if (h->n == h->cap) abort();
  node->at_us = at;
  node->idx = h->n;
  h->v[h->n++] = node;
  heap_up(h, node->idx);
}

uint64_t tcp_next_deadline(const struct tcp_engine *e)
{
  return e->timers.n ? e->timers.v[0]->at_us : USTCP_NO_DEADLINE;
}

/* RFC 6298 §2: SRTT/RTTVAR from a sample; RTO = SRTT + max(G, K*RTTVAR) where
 * Linux's clock granularity term is tcp_rto_min: RTO = SRTT + max(4*RTTVAR,
 * rto_min) (tcp_rtt_estimator keeps rttvar_us >= tcp_rto_min_us, __tcp_set_rto
 * adds it to srtt), clamped to rto_max. RFC 6298 §2.4's 1 s floor is a SHOULD
 * that Linux and every deployed stack replace with this 200 ms one; adding it
 * to SRTT rather than clamping the sum keeps the RTO above the RTT on every
 * path, so the tail loss probe (2*SRTT, RFC 8985 §7.2) comes before it. */
void tcp_rtt_sample(struct tcp_engine *e, struct tcb *t, uint64_t r)
{
  if (r == 0) r = 1;
  if (!t->rtt.min_rtt_us || r < t->rtt.min_rtt_us) t->rtt.min_rtt_us = r;
  if (!t->rtt.have_sample) {
    t->rtt.srtt_us = r;
    t->rtt.rttvar_us = r / 2;
    t->rtt.have_sample = true;
  } else {
    uint64_t diff = t->rtt.srtt_us > r ? t->rtt.srtt_us - r : r - t->rtt.srtt_us;
    t->rtt.rttvar_us = (3 * t->rtt.rttvar_us + diff) / 4;
    t->rtt.srtt_us = (7 * t->rtt.srtt_us + r) / 8;
  }
  uint64_t var = 4 * t->rtt.rttvar_us;
  uint64_t rto = t->rtt.srtt_us + (var > e->cfg->rto_min_us ? var : e->cfg->rto_min_us);
  if (rto > e->cfg->rto_max_us) rto = e->cfg->rto_max_us;
  t->rtt.rto_us = rto;
}

void tcp_arm_rto(struct tcp_engine *e, struct tcb *t)
{
  t->rto_at_us = e->now_us + t->rtt.rto_us;
  timer_update(e, t);
}

/* Keepalive runs in every synchronized state but TIME_WAIT, as in Linux
 * (tcp_keepalive_timer): a socket half-closed with shutdown(SHUT_WR) waits in
 * FIN_WAIT_2 and must learn that its peer vanished too. */
static bool keepalive_state(enum ustcp_state s)
{
  return s == USTCP_ESTABLISHED || s == USTCP_CLOSE_WAIT || s == USTCP_FIN_WAIT_1 ||
         s == USTCP_FIN_WAIT_2 || s == USTCP_CLOSING || s == USTCP_LAST_ACK;
}

void tcp_arm_keepalive(struct tcp_engine *e, struct tcb *t)
{
  if (t->keepalive && keepalive_state(t->state)) {
    t->last_rcv_us = e->now_us;
    t->keepalive_probes = 0;
    t->keepalive_at_us = e->now_us + (uint64_t)t->keepidle_s * USTCP_SEC;
  } else {
    t->keepalive_at_us = 0;
  }
  timer_update(e, t);
}

static uint32_t retry_limit(const struct tcp_engine *e, const struct tcb *t)
{
  const struct ustcp_config *c = e->cfg;
  switch (t->state) {
  case USTCP_SYN_SENT: return c->syn_retries;
  case USTCP_SYN_RCVD: return c->synack_retries;
  default:
    /* Linux: orphan_retries 0 means 8 (tcp_orphan_retries()). */
    if (t->orphan) return c->orphan_retries ? c->orphan_retries : 8;
    return c->retries2;
  }
}

/* TCP_USER_TIMEOUT (RFC 5482) as Linux's retransmits_timed_out with a
 * timeout: after at least one retransmission, the time since the segment now
 * at snd_una was first sent reaches the user timeout. */
static bool user_timed_out(const struct tcp_engine *e, const struct tcb *t)
{
  return t->user_timeout_ms && t->backoff > 0 && t->retrans_stamp_us &&
         e->now_us - t->retrans_stamp_us >= (uint64_t)t->user_timeout_ms * USTCP_MSEC;
}

/* Linux's tcp_write_timeout: SYN_SENT gives up after syn_retries or the user
 * timeout, whichever comes first; a synchronized connection with a user timeout
 * gives up on the time alone (retries2 and orphan_retries no longer count);
 * without one, after retries2 (orphan_retries for an orphan). A half-open
 * child (SYN_RCVD) is a request socket in Linux: synack_retries only. */
static bool write_timed_out(const struct tcp_engine *e, const struct tcb *t)
{
  if (t->state == USTCP_SYN_RCVD) return t->backoff >= retry_limit(e, t);
  if (t->state == USTCP_SYN_SENT) return t->backoff >= retry_limit(e, t) || user_timed_out(e, t);
  if (t->user_timeout_ms) return user_timed_out(e, t);
  return t->backoff >= retry_limit(e, t);
}

/* Linux's tcp_clamp_rto_to_user_timeout: the next retransmission comes no later
 * than the user timeout (at once, 1 ms, if it has passed). */
static uint64_t clamp_rto_to_user_timeout(const struct tcp_engine *e, const struct tcb *t,
                                          uint64_t rto)
{
  if (!t->user_timeout_ms || !t->retrans_stamp_us) return rto;
  uint64_t end = t->retrans_stamp_us + (uint64_t)t->user_timeout_ms * USTCP_MSEC;
  if (end <= e->now_us) return USTCP_MSEC;
  return u64_min(rto, end - e->now_us);
}

/* RFC 8985 §7.2 conditions, as Linux's tcp_schedule_loss_probe: SACK in
 * use, data outstanding, the connection in the Open state (no recovery, no
 * timeout being recovered from, nothing SACKed or duplicate-ACKed yet), and
 * no earlier probe of this tail still unanswered (§7.3). */
static bool tlp_allowed(const struct tcb *t)
{
  if (!t->sack_ok || t->snd_una == t->snd_max || t->snd_nxt != t->snd_max) return false;
  /* Linux's tcp_schedule_loss_probe asks for the Open state: with SACK,
   * Disorder means something SACKed or retransmitted (tcp_try_keep_open's
   * tcp_left_out), not a duplicate ACK that SACKs nothing */
  if (t->rec.in_recovery || t->rec.in_cwr || t->backoff || t->nsacked || t->tlp_active)
    return false;
  return t->state == USTCP_ESTABLISHED || t->state == USTCP_CLOSE_WAIT ||
         t->state == USTCP_FIN_WAIT_1 || t->state == USTCP_CLOSING || t->state == USTCP_LAST_ACK;
}

void tcp_schedule_loss_probe(struct tcp_engine *e, struct tcb *t)
{
  if (t->reo_armed) return;   /* RACK's reordering timer holds the slot */
  uint64_t at = 0;
  if (tlp_allowed(t)) {
    /* PTO = 2 * SRTT; with one segment in flight, plus the worst-case
     * delayed ACK (Linux adds tcp_rto_min, RFC 8985 WCDelAckT), otherwise
     * Linux's TCP_TIMEOUT_MIN (2 ms); 1 s before any RTT sample. */
    uint64_t pto = USTCP_SEC;
    if (t->rtt.have_sample) {
      pto = 2 * t->rtt.srtt_us;
      pto += t->snd_max - t->snd_una <= t->snd_mss ? e->cfg->rto_min_us : 2000;
    }
    /* No later than the RTO would fire (Linux's tcp_schedule_loss_probe:
     * timeout = min(PTO, tcp_rto_delta_us)): the probe then goes at the RTO's
     * time instead of the RTO, without its backoff and cwnd reduction, and
     * the RTO is armed afresh from it (a lone FIN or segment at 100 ms RTT:
     * PTO 2*SRTT + 200 ms = 400 ms, RTO 300 ms, so the first resend is a
     * probe at 300 ms, then the RTOs at +300 and +600 ms). */
    at = e->now_us + pto;
    if (t->rto_at_us && t->rto_at_us < at) at = t->rto_at_us > e->now_us ? t->rto_at_us : e->now_us;
  }
  if (at != t->tlp_at_us) {
    t->tlp_at_us = at;
    timer_update(e, t);
  }
}

/* RFC 8985 §7.3, Linux's tcp_send_loss_probe: new data if any may go (one
 * segment, whatever cwnd), else the highest segment sent once more; then the
 * RTO restarts from now. */
static void tlp_expired(struct tcp_engine *e, struct tcb *t)
{
  t->tlp_at_us = 0;
  if (!tlp_allowed(t)) return;
  uint32_t mss = t->snd_mss;
  t->tlp_active = true;
  t->tlp_retrans = false;
  uint32_t before = t->snd_max;
  uint32_t off = t->snd_nxt - t->snd_buf_seq;
  if (t->sndbuf.len > off) {
    uint32_t inflight = t->snd_nxt - t->snd_una;
    uint32_t saved = t->rec.lt_extra;
    bool nodelay = t->nodelay;
    t->rec.lt_extra = inflight + mss > t->cc.cwnd ? inflight + mss - t->cc.cwnd : 0;
    t->nodelay = true;                     /* TCP_NAGLE_OFF */
    tcp_output(e, t);
    t->rec.lt_extra = saved;
    t->nodelay = nodelay;
  }
  if (t->snd_max == before) {
    uint32_t seq = seq_max(t->last_seg_seq, t->snd_una);
    if (!seq_lt(seq, t->snd_max)) seq = t->snd_una;
    uint64_t sent = t->info.retrans_segs;
    tcp_retransmit_at(e, t, seq, mss);
    /* not when the segment lay past a window the peer shrank (Linux's
     * tcp_send_loss_probe: the retransmission failed, the timer is rearmed) */
    t->tlp_retrans = t->info.retrans_segs != sent;
  }
  t->info.tlp_probes++;
  t->tlp_high_seq = t->snd_nxt;
  tcp_arm_rto(e, t);
}

void tcp_tlp_ack(struct tcp_engine *e, struct tcb *t, uint32_t ack)
{
  if (!t->tlp_active || seq_lt(ack, t->tlp_high_seq)) return;
  t->tlp_active = false;
  /* §7.4.2: a retransmitted probe acknowledged (no D-SACK is taken to say
   * both copies arrived) repaired a loss: reduce cwnd once, as Linux's
   * tcp_process_tlp_ack (CWR entered and left at once: cwnd = ssthresh). */
  if (t->tlp_retrans && !t->rec.in_recovery && !t->rec.in_cwr) {
    /* Linux's ssthresh hooks read cwnd here: the flight that was lost from
     * is gone by now (the ACK covers it) */
    cc_congestion_event(e, t, t->cc.cwnd);
    t->cc.cwnd = t->cc.ssthresh;
  }
}

/* Returns true if t was freed. */
static bool rto_expired(struct tcp_engine *e, struct tcb *t)
{
  t->rto_at_us = 0;
  if (t->snd_una == t->snd_max && t->state != USTCP_SYN_SENT && t->state != USTCP_SYN_RCVD)
    return false;   /* everything was acked meanwhile */
  /* Linux's retrans_stamp: when the head segment was first sent, recorded at
   * its first retransmission. ustcp keeps no per-segment send times; the timer
   * that expires now was armed when it went out (or on the ACK before it), one
   * RTO ago, which is that time whenever the head was sent on an idle
   * connection (the case TCP_USER_TIMEOUT is about). */
  if (!t->retrans_stamp_us)
    t->retrans_stamp_us = e->now_us > t->rtt.rto_us ? e->now_us - t->rtt.rto_us : 1;
  if (write_timed_out(e, t)) {
    /* Giving up. A half-open child just disappears (H5); others fail with
     * ETIMEDOUT (H4, W5). */
    int err = (t->parent && t->state == USTCP_SYN_RCVD) ? 0 : -ETIMEDOUT;
    /* Linux (tcp_write_err): an ICMP soft error seen meanwhile is the better
     * reason, e.g. EHOSTUNREACH rather than ETIMEDOUT (RFC 1122 4.2.3.9). */
    if (err && t->soft_error) err = t->soft_error;
    return tcb_close(e, t, err, USTCP_CAUSE_TIMER);
  }
  t->backoff++;
  t->info.rto_expirations++;
  t->rtt.rto_us = t->rtt.rto_us * 2 > e->cfg->rto_max_us ? e->cfg->rto_max_us : t->rtt.rto_us * 2;
  t->rtt.timing = false;                  /* Karn: no sample from a retransmission */
  t->rtt.karn = true;
  if (t->state != USTCP_SYN_SENT && t->state != USTCP_SYN_RCVD) {
    /* RFC 5681 §3.1 eq. 4, and cwnd = one segment after a timeout. */
    uint32_t flight = t->snd_max - t->snd_una;
    /* before the cut: what an undo restores (F-RTO, RFC 5682) */
    rack_enter_loss(e, t, t->rec.in_recovery || t->rec.in_cwr);
    cc_rto(e, t, flight);                 /* the module: ssthresh, cwnd = 1 SMSS */
    t->rec.in_recovery = false;
    t->rec.in_cwr = false;                 /* the timeout takes over an ECN reduction */
    t->tlp_active = false;                 /* the RTO ends a probe episode */
    t->rec.dupacks = 0;
    t->rec.dup_bytes = 0;
    t->rec.lt_extra = 0;                   /* limited transmit ends: cwnd is 1 SMSS */
    t->rec.recover = t->snd_max;           /* RFC 6582 §4 (see dup_ack) */
  }
  /* Go back to snd_una: everything from there is sent again as the windows allow
   * (skipping what the peer SACKed). A second timeout in a row forgets the
   * SACK scoreboard, in case the receiver reneged (RFC 2018 §8). */
  if (t->backoff > 1) t->nsacked = 0;
  t->sack_rexmit = t->snd_una;
  uint32_t resend_from = t->snd_una;
  if (t->state == USTCP_SYN_SENT || t->state == USTCP_SYN_RCVD) {
    resend_from = t->iss;
    /* tcp_send_syn does not count; data and FIN resends are counted by
     * tcp_output (snd_nxt < snd_max), so counting them here too doubled them. */
    t->info.retrans_segs++;
    if (e->stats) e->stats->retrans_segs++;
  }
  t->snd_nxt = resend_from;
  tcp_output(e, t);
  /* RFC 9293 §3.8.6.1: keep retransmitting into a zero window. When the
   * window let nothing go, the segment at snd_una goes anyway (Linux,
   * __tcp_retransmit_skb): it is the probe whose answer reopens the window.
   * Without it the timer fired empty until retries2 ended a live connection
   * whose window update had been lost. */
  if (t->state != USTCP_SYN_SENT && t->state != USTCP_SYN_RCVD && t->snd_nxt == t->snd_una &&
      t->snd_max != t->snd_una)
    tcp_retransmit_una(e, t);
  if (!t->rto_at_us) tcp_arm_rto(e, t);
  if (t->user_timeout_ms && t->rto_at_us) {
    t->rto_at_us = e->now_us + clamp_rto_to_user_timeout(e, t, t->rto_at_us - e->now_us);
    timer_update(e, t);
  }
  return false;
}

static bool persist_expired(struct tcp_engine *e, struct tcb *t)
{
  t->persist_at_us = 0;
  if (t->snd_wnd > 0 || t->sndbuf.len <= t->snd_nxt - t->snd_buf_seq) {
    t->probes_stamp_us = 0;
    /* The window is open but data waits with nothing in flight: TCP_CORK or
     * MSG_MORE held it. Linux's probe timer sends one segment of it anyway,
     * with PSH (tcp_send_probe0 -> tcp_write_wakeup). */
    bool held = t->snd_wnd > 0 && t->snd_max == t->snd_una &&
                t->sndbuf.len > t->snd_nxt - t->snd_buf_seq;
    t->push_one = held;
    tcp_output(e, t);   /* the window opened or nothing is waiting */
    t->push_one = false;
    return false;
  }
  /* As Linux's tcp_probe_timer: a peer that answers the probes keeps the
   * connection (tcp_input clears probes on every acceptable segment); one
   * that stops answering loses it after retries2 probes, ETIMEDOUT (without
   * this a peer that closed its window and vanished pinned the connection
   * and its buffer forever); an orphan gives up after orphan_retries probes,
   * answered or not (backoff counts them all). */
  uint32_t limit = retry_limit(e, t);
  /* TCP_USER_TIMEOUT bounds the zero-window probing too, answered or not
   * (Linux's tcp_probe_timer: the time since the first probe, icsk_probes_tstamp,
   * cleared only when the window opens). */
  if (!t->probes_stamp_us) {
    t->probes_stamp_us = e->now_us;
  } else if (t->user_timeout_ms &&
             e->now_us - t->probes_stamp_us >= (uint64_t)t->user_timeout_ms * USTCP_MSEC) {
    return tcb_close(e, t, t->soft_error ? t->soft_error : -ETIMEDOUT, USTCP_CAUSE_TIMER);
  }
  if (t->probes >= limit || (t->orphan && t->backoff >= limit))
    return tcb_close(e, t, -ETIMEDOUT, USTCP_CAUSE_TIMER);
  /* Linux-style window probe: a zero-length segment at snd_una - 1, which the
   * peer must answer with an ACK carrying its current window. */
  struct tcp_hdr h = {0};
  h.src_port = t->local.port;
  h.dst_port = t->remote.port;
  h.seq = t->snd_una - 1;
  h.ack = t->rcv_nxt;
  h.flags = TCP_ACK;
  h.window = tcp_window_field(e, t);
  uint8_t tos = tcp_ecn_out(t, h.seq, 0, &h.flags);   /* Not-ECT; ECE if owed (tcp_ecn_send) */
  e->ops.output(e, t, t->local.v6, t->local.ip, t->remote.ip, tos, &h, NULL, 0, 0);
  t->info.segs_out++;
  t->info.zero_window_probes++;
  t->probes++;
  if (t->backoff < 64) t->backoff++;
  tcp_rearm_probe0(e, t);
  return false;
}

/* The next zero-window probe, one backed-off RTO from now (Linux's
 * tcp_probe0_when): after a probe, and again on every ACK that leaves the
 * window closed (tcp_ack_probe re-arms the timer from the ACK, so the peer's
 * answer, not the probe, starts the wait). */
void tcp_rearm_probe0(struct tcp_engine *e, struct tcb *t)
{
  uint64_t ival = t->rtt.rto_us << (t->backoff < 10 ? t->backoff : 10);
  if (ival > e->cfg->rto_max_us) ival = e->cfg->rto_max_us;
  if (t->user_timeout_ms && t->probes_stamp_us) {
    /* Linux's tcp_clamp_probe0_to_user_timeout: probe again no later than the
     * user timeout (at least TCP_TIMEOUT_MIN, 2 jiffies: 8 ms at HZ=250). */
    uint64_t end = t->probes_stamp_us + (uint64_t)t->user_timeout_ms * USTCP_MSEC;
    uint64_t left = end > e->now_us ? end - e->now_us : 0;
    ival = u64_min(ival, u64_max(left, 8 * USTCP_MSEC));
  }
  t->persist_at_us = e->now_us + ival;
  timer_update(e, t);
}

/* RFC 1122 4.2.3.6, as Linux's tcp_keepalive_timer: probe only after keepidle
 * without any segment received (tcp_input records last_rcv_us and clears the
 * probe count, so an answered probe keeps the connection), and not while data
 * or a FIN is in flight or waiting (retransmission and persist judge the peer
 * then). After keepcnt unanswered probes: RST (Linux) and ETIMEDOUT. */
static bool keepalive_expired(struct tcp_engine *e, struct tcb *t)
{
  t->keepalive_at_us = 0;
  if (!t->keepalive || !keepalive_state(t->state)) return false;
  uint64_t idle = (uint64_t)t->keepidle_s * USTCP_SEC;
  bool sending = t->snd_una != t->snd_max || t->sndbuf.len > t->snd_max - t->snd_buf_seq ||
                 (t->fin_queued && !t->fin_sent);
  if (sending) {
    t->keepalive_at_us = e->now_us + idle;
    return false;
  }
  uint64_t elapsed = e->now_us - t->last_rcv_us;
  if (elapsed < idle) {
    t->keepalive_at_us = t->last_rcv_us + idle;
    return false;
  }
  /* With TCP_USER_TIMEOUT the time since the last segment received decides,
   * once a probe went unanswered, instead of keepcnt (Linux's
   * tcp_keepalive_timer). */
  bool give_up = t->user_timeout_ms
                     ? t->keepalive_probes > 0 &&
                           elapsed >= (uint64_t)t->user_timeout_ms * USTCP_MSEC
                     : t->keepalive_probes >= t->keepcnt;
  if (give_up) {
    tcp_send_rst(e, t);
    return tcb_close(e, t, -ETIMEDOUT, USTCP_CAUSE_TIMER);
  }
  struct tcp_hdr h = {0};
  h.src_port = t->local.port;
  h.dst_port = t->remote.port;
  h.seq = t->snd_una - 1;     /* RFC 1122 4.2.3.6: a garbage octet's sequence number */
  h.ack = t->rcv_nxt;
  h.flags = TCP_ACK;
  h.window = tcp_window_field(e, t);
  uint8_t tos = tcp_ecn_out(t, h.seq, 0, &h.flags);   /* Not-ECT; ECE if owed (tcp_ecn_send) */
  e->ops.output(e, t, t->local.v6, t->local.ip, t->remote.ip, tos, &h, NULL, 0, 0);
  t->info.segs_out++;
  t->keepalive_probes++;
  t->keepalive_at_us = e->now_us + (uint64_t)t->keepintvl_s * USTCP_SEC;
  return false;
}

/* Runs what is due for one connection. Returns true if t was freed. */
static bool tcb_timers_fire(struct tcp_engine *e, struct tcb *t, uint64_t now)
{
  if (t->close_at_us && t->close_at_us <= now) {
    t->close_at_us = 0;
    if (t->state == USTCP_TIME_WAIT || t->state == USTCP_FIN_WAIT_2)
      return tcb_close(e, t, 0, USTCP_CAUSE_TIMER);
  }
  /* The probe first: one scheduled at the RTO's time replaces it (Linux has
   * one timer for both, ICSK_TIME_LOSS_PROBE or ICSK_TIME_RETRANS); the probe
   * re-arms the RTO, so the RTO does not fire with it. */
  if (t->tlp_at_us && t->tlp_at_us <= now) {
    if (t->reo_armed) tcp_rack_reo_timeout(e, t);   /* the slot is RACK's (RFC 8985 §6.3) */
    else tlp_expired(e, t);
  }
  if (t->rto_at_us && t->rto_at_us <= now && rto_expired(e, t)) return true;
  if (t->persist_at_us && t->persist_at_us <= now && persist_expired(e, t)) return true;
  if (t->keepalive_at_us && t->keepalive_at_us <= now && keepalive_expired(e, t)) return true;
  if (t->delack_at_us && t->delack_at_us <= now) {
    t->delack_at_us = 0;
    t->ack_now = true;
    t->pingpong = false;   /* a delayed ACK no reply carried: Linux's tcp_delack_timer_handler leaves pingpong mode */
    tcp_output(e, t);
  }
  return false;
}

void tcp_run_timers(struct tcp_engine *e, uint64_t now_us)
{
  if (now_us > e->now_us) e->now_us = now_us;
  while (e->timers.n && e->timers.v[0]->at_us <= now_us) {
    struct timer_node *node = e->timers.v[0];
    struct tcb *t = (struct tcb *)((char *)node - offsetof(struct tcb, timer));
    if (!tcb_timers_fire(e, t, now_us)) {
      /* A deadline that is still in the past would spin: handlers always move or
       * clear what fired, so this only guards against a logic error. */
      timer_update(e, t);
      if (t->timer.at_us && t->timer.at_us <= now_us) {
        if (t->rto_at_us && t->rto_at_us <= now_us) t->rto_at_us = now_us + 1;
        if (t->persist_at_us && t->persist_at_us <= now_us) t->persist_at_us = now_us + 1;
        if (t->keepalive_at_us && t->keepalive_at_us <= now_us) t->keepalive_at_us = now_us + 1;
        if (t->delack_at_us && t->delack_at_us <= now_us) t->delack_at_us = 0;
        if (t->close_at_us && t->close_at_us <= now_us) t->close_at_us = now_us + 1;
        if (t->tlp_at_us && t->tlp_at_us <= now_us) t->tlp_at_us = 0, t->reo_armed = false;
        timer_update(e, t);
      }
    }
  }
}
