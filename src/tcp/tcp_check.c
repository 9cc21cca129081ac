/* Invariant checks of control blocks (see tcp_check.h). Tests call these; the
 * engine itself asserts only tcp_check_cheap, after every segment.
 * Each check names the rule it enforces; a failure message carries the numbers
 * needed to understand it (relative to iss/irs where that helps). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include "tcp/tcp_check.h"

static const char *fail(char *buf, size_t cap, const struct tcb *t, const char *fmt, ...)
{
  int n = snprintf(buf, cap, "conn %llu %s: ", (unsigned long long)t->conn_id,
                   ustcp_state_name(t->state));
  if (n < 0) n = 0;
  if ((size_t)n < cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return buf;
}
#define FAIL(...) return fail(buf, cap, t, __VA_ARGS__)

static const char *check_ring(const struct ring *r, const char *name, char *buf, size_t cap,
                              const struct tcb *t)
{
  /* A receive ring may hold up to tcp_rcv_overcommit past its size. */
  uint32_t lim = r->cap + (r == &t->rcvbuf ? tcp_rcv_overcommit(t) : 0);
  if (r->len > lim) FAIL("%s holds %u bytes over its capacity %u", name, r->len, r->cap);
  if (!r->data && r->len) FAIL("%s holds %u bytes without storage", name, r->len);
  if (r->data && r->head >= r->size) FAIL("%s head %u outside its storage %u", name, r->head, r->size);
  if (r->size > 2ull * lim) FAIL("%s storage %u over twice its capacity %u", name, r->size, r->cap);
  if (!r->data != !r->size) FAIL("%s storage size %u does not match its pointer", name, r->size);
  if (r->data && r->len > r->size) FAIL("%s holds %u bytes in %u of storage", name, r->len, r->size);
  return NULL;
}

uint64_t tcp_tcb_mem(const struct tcb *t)
{
  uint64_t m = sizeof *t;
  if (t->lst) m += sizeof *t->lst;
  m += t->sndbuf.size;
  m += t->rcvbuf.size;
  m += ooo_mem(t);
  m += rack_mem(t);
  return m;
}

static uint64_t earliest(const struct tcb *t)
{
  uint64_t d[6] = {t->rto_at_us, t->persist_at_us, t->delack_at_us, t->keepalive_at_us,
                   t->close_at_us, t->tlp_at_us};
  uint64_t m = 0;
  for (int i = 0; i < 6; i++)
    if (d[i] && (!m || d[i] < m)) m = d[i];
  return m;
}

static const char *check_listener(const struct tcp_engine *e, const struct tcb *t, char *buf,
                                  size_t cap)
{
  const struct listen_state *ls = t->lst;
  if (!ls) FAIL("LISTEN without listener state");
  uint32_t n = 0;
  for (const struct tcb *c = ls->syn_head; c; c = c->q_next) {
    if (++n > ls->syn_q_len) FAIL("SYN queue longer than its count %u", ls->syn_q_len);
    if (c->parent != t || c->queue != TCB_Q_SYN) FAIL("SYN queue child %llu not linked to it", (unsigned long long)c->conn_id);
    if (c->state != USTCP_SYN_RCVD) FAIL("SYN queue child %llu in %s", (unsigned long long)c->conn_id, ustcp_state_name(c->state));
  }
  if (n != ls->syn_q_len) FAIL("SYN queue holds %u, count says %u", n, ls->syn_q_len);
  if (ls->syn_q_len > e->cfg->max_syn_backlog) FAIL("SYN queue %u over max_syn_backlog %u", ls->syn_q_len, e->cfg->max_syn_backlog);
  n = 0;
  const struct tcb *prev = NULL;
  for (const struct tcb *c = ls->accept_head; c; c = c->q_next) {
    if (++n > ls->accept_q_len) FAIL("accept queue longer than its count %u", ls->accept_q_len);
    if (c->parent != t || c->queue != TCB_Q_ACCEPT || c->q_prev != prev)
      FAIL("accept queue child %llu not linked to it", (unsigned long long)c->conn_id);
    if (c->state == USTCP_SYN_RCVD || !tcb_has_conn_state(c->state))
      FAIL("accept queue child %llu in %s", (unsigned long long)c->conn_id, ustcp_state_name(c->state));
    prev = c;
  }
  if (prev != ls->accept_tail) FAIL("accept queue tail is not its last child");
  if (n != ls->accept_q_len) FAIL("accept queue holds %u, count says %u", n, ls->accept_q_len);
  /* Linux counts the queue full when it holds more than the backlog (H6); a
   * listen() again with a smaller backlog keeps what is queued, so the hard
   * bound is somaxconn. */
  if (ls->accept_q_len > e->cfg->somaxconn + 1)
    FAIL("accept queue %u over somaxconn %u + 1", ls->accept_q_len, e->cfg->somaxconn);
  return NULL;
}

const char *tcp_check_tcb(const struct tcp_engine *e, const struct tcb *t, char *buf, size_t cap)
{
  const struct ustcp_config *c = e->cfg;
  const char *r;
  if ((unsigned)t->state > USTCP_TIME_WAIT) FAIL("state %d out of range", (int)t->state);
  if ((r = check_ring(&t->sndbuf, "send buffer", buf, cap, t))) return r;
  if ((r = check_ring(&t->rcvbuf, "receive buffer", buf, cap, t))) return r;
  if (t->sndbuf.cap > u32_max(c->wmem_max, c->wmem_default)) FAIL("send buffer cap %u over wmem_max", t->sndbuf.cap);
  if (t->rcvbuf.cap > u32_max(c->rmem_max, c->rmem_default)) FAIL("receive buffer cap %u over rmem_max", t->rcvbuf.cap);
  if (t->orphan && t->fd >= 0) FAIL("orphan with descriptor %d", t->fd);
  if (t->orphan_counted && (!t->orphan || t->state == USTCP_TIME_WAIT || !tcb_has_conn_state(t->state)))
    FAIL("counted as an orphan (max_orphans) but is not one");

  /* Timers: the heap key is the earliest armed deadline. */
  uint64_t at = earliest(t);
  if (t->timer.at_us != at) FAIL("timer key %llu, earliest deadline %llu", (unsigned long long)t->timer.at_us, (unsigned long long)at);
  if (at && (t->timer.idx >= e->timers.n || e->timers.v[t->timer.idx] != &t->timer))
    FAIL("armed but not in the timer heap");

  /* The out-of-order intervals: a well-formed tree of disjoint, non-adjacent,
   * non-empty intervals, counted and bounded. */
  const char *tree = ooo_check_tree(t);
  if (tree) FAIL("%s", tree);
  uint32_t n = 0, l, rt, prev_r = 0;
  for (bool more = ooo_next(t, true, 0, &l, &rt); more; more = ooo_next(t, false, l, &l, &rt)) {
    if (!seq_lt(l, rt)) FAIL("empty out-of-order interval at %u", l - t->irs);
    if (n && !seq_gt(l, prev_r))
      FAIL("out-of-order intervals overlap or touch (%u, %u)", prev_r - t->irs, l - t->irs);
    prev_r = rt;
    n++;
  }
  if (n != t->ooo_count) FAIL("out-of-order intervals: %u, count says %u", n, t->ooo_count);
  if (n > tcp_ooo_limit(e, t)) FAIL("out-of-order intervals %u over their limit %u", n, tcp_ooo_limit(e, t));

  if (t->state == USTCP_LISTEN) {
    if (t->rto_at_us || t->persist_at_us || t->close_at_us || t->delack_at_us)
      FAIL("listener with a connection timer armed");
    return check_listener(e, t, buf, cap);
  }
  if (t->state == USTCP_CLOSED) {
    if (at) FAIL("CLOSED with a timer armed");
    if (t->in_hash) FAIL("CLOSED but still in the demux table");
    if (t->fd < 0) FAIL("CLOSED without descriptor (should have been freed)");
    if (t->ooo_count || t->ooo || t->ooo_fin) FAIL("CLOSED with out-of-order data");
    if (t->queue != TCB_Q_NONE) FAIL("CLOSED but queued on a listener");
    return NULL;
  }
  /* A connection. */
  if (!t->in_hash) FAIL("connection not in the demux table");
  if (t->fd < 0 && !t->orphan && (t->queue == TCB_Q_NONE || !t->parent))
    FAIL("no descriptor, not orphaned, not queued: unreachable");
  if (t->queue == TCB_Q_SYN && t->state != USTCP_SYN_RCVD) FAIL("in a SYN queue");
  if (t->queue != TCB_Q_NONE && t->fd >= 0) FAIL("queued on a listener but has descriptor %d", t->fd);
  if (t->rcv_mss == 0) FAIL("no receive MSS");

  /* Send sequence space (RFC 9293 §3.3.1): snd_una <= snd_nxt <= snd_max. */
  if (!seq_leq(t->snd_una, t->snd_nxt) || !seq_leq(t->snd_nxt, t->snd_max))
    FAIL("snd_una %u, snd_nxt %u, snd_max %u out of order (relative to iss)",
         t->snd_una - t->iss, t->snd_nxt - t->iss, t->snd_max - t->iss);
  if (!seq_leq(t->iss, t->snd_una)) FAIL("snd_una before iss");
  if (!t->rto_at_us && (t->state == USTCP_SYN_SENT || t->state == USTCP_SYN_RCVD))
    FAIL("synchronizing without a retransmission timer");
  if (t->state == USTCP_SYN_SENT) {
    if (t->snd_una != t->iss || t->snd_max != t->iss + 1) FAIL("SYN_SENT with snd_una/snd_max beyond the SYN");
    return NULL;
  }

  bool fin_acked = t->fin_sent && seq_gt(t->snd_una, t->fin_seq);
  bool syn_acked = seq_gt(t->snd_una, t->iss);
  if (t->state != USTCP_SYN_RCVD) {
    if (!syn_acked) FAIL("synchronized but our SYN is not acknowledged");
    /* The send buffer starts at snd_una: acknowledged bytes are dropped at once. */
    if (fin_acked) {
      if (t->snd_una != t->fin_seq + 1 || t->sndbuf.len || t->snd_buf_seq != t->fin_seq)
        FAIL("FIN acked but snd_una %u, buffer %u bytes from %u, fin_seq %u", t->snd_una - t->iss,
             t->sndbuf.len, t->snd_buf_seq - t->iss, t->fin_seq - t->iss);
    } else if (t->snd_buf_seq != t->snd_una) {
      FAIL("send buffer starts at %u, snd_una %u", t->snd_buf_seq - t->iss, t->snd_una - t->iss);
    }
    /* Never more than our own MTU allows (the peer's MSS only lowers it). */
    if (t->snd_mss == 0 || t->snd_mss > u32_max(c->mtu - 40u, 88u)) FAIL("snd_mss %u", t->snd_mss);
    if (t->cc.cwnd == 0) FAIL("zero congestion window");
  } else if (t->snd_una != t->iss) {
    FAIL("SYN_RCVD with snd_una past iss");
  }
  /* Nothing is ever sent beyond what the application gave (plus SYN/FIN). */
  uint32_t top = t->snd_buf_seq + t->sndbuf.len + (t->fin_sent ? 1u : 0u);
  if (seq_gt(t->snd_max, top))
    FAIL("snd_max %u beyond the send buffer's end %u", t->snd_max - t->iss, top - t->iss);
  if (t->snd_max - t->snd_una > t->sndbuf.len + 2)
    FAIL("%u bytes in flight with %u in the buffer", t->snd_max - t->snd_una, t->sndbuf.len);
  if (t->fin_queued && t->fin_seq != t->snd_buf_seq + t->sndbuf.len)
    FAIL("data after the FIN: fin_seq %u, buffer ends %u", t->fin_seq - t->iss, t->snd_buf_seq + t->sndbuf.len - t->iss);
  if (t->fin_sent && (!t->fin_queued || t->snd_max != t->fin_seq + 1))
    FAIL("FIN sent but snd_max %u, fin_seq %u", t->snd_max - t->iss, t->fin_seq - t->iss);

  /* What each state implies (RFC 9293 §3.3.2). */
  bool need_fin_q = false, need_rcv_fin = false;
  switch (t->state) {
  case USTCP_SYN_RCVD: case USTCP_ESTABLISHED: break;
  case USTCP_CLOSE_WAIT: need_rcv_fin = true; break;
  case USTCP_FIN_WAIT_1:
    need_fin_q = true;
    if (fin_acked) FAIL("FIN acknowledged but still FIN_WAIT_1");
    break;
  case USTCP_FIN_WAIT_2:
    need_fin_q = true;
    if (!fin_acked) FAIL("FIN_WAIT_2 but our FIN is not acknowledged");
    if (t->orphan && !t->close_at_us) FAIL("orphan in FIN_WAIT_2 without fin_timeout armed");
    break;
  case USTCP_CLOSING:
  case USTCP_LAST_ACK:
    need_fin_q = need_rcv_fin = true;
    if (fin_acked) FAIL("FIN acknowledged but still %s", ustcp_state_name(t->state));
    break;
  case USTCP_TIME_WAIT:
    need_fin_q = need_rcv_fin = true;
    if (!fin_acked) FAIL("TIME_WAIT but our FIN is not acknowledged");
    if (!t->close_at_us) FAIL("TIME_WAIT without its 2MSL deadline");
    if (t->rto_at_us || t->persist_at_us || t->keepalive_at_us) FAIL("TIME_WAIT with a sending timer armed");
    break;
  default: break;
  }
  if (need_fin_q != t->fin_queued) FAIL("fin_queued %d in this state", t->fin_queued);
  if (need_rcv_fin != t->rcv_fin) FAIL("rcv_fin %d in this state", t->rcv_fin);

  /* Timers the state needs: data or FIN in flight has a retransmission timer;
   * data or a FIN waiting with nothing in flight (zero window) has the persist
   * timer, or nothing guarantees progress. */
  bool can_send = t->state == USTCP_ESTABLISHED || t->state == USTCP_CLOSE_WAIT ||
                  t->state == USTCP_FIN_WAIT_1 || t->state == USTCP_CLOSING ||
                  t->state == USTCP_LAST_ACK;
  if (t->state != USTCP_SYN_RCVD && t->snd_una != t->snd_max && can_send && !t->rto_at_us)
    FAIL("%u bytes in flight without a retransmission timer", t->snd_max - t->snd_una);
  /* ...and not the other way round: a retransmission timer with nothing to
   * retransmit, or the persist timer with data in flight (RTO's job then). */
  if (t->rto_at_us && t->snd_una == t->snd_max && t->state != USTCP_SYN_RCVD)
    FAIL("retransmission timer armed with nothing in flight");
  if (t->persist_at_us && t->snd_una != t->snd_max)
    FAIL("persist timer armed with %u bytes in flight", t->snd_max - t->snd_una);
  bool waiting = seq_lt(t->snd_max, t->snd_buf_seq + t->sndbuf.len) ||
                 (t->fin_queued && !t->fin_sent);
  if (can_send && waiting && t->snd_una == t->snd_max && !t->rto_at_us && !t->persist_at_us)
    FAIL("data waiting (window %u), nothing in flight, no timer: stalled", t->snd_wnd);
  if (t->keepalive && t->state != USTCP_SYN_RCVD && t->state != USTCP_TIME_WAIT &&
      !t->keepalive_at_us)
    FAIL("keepalive on but not armed");

  /* Receive side: the advertised window is backed by buffer space, and nothing
   * beyond it is held (RFC 9293 §3.8.6.2.2). */
  uint32_t fin_adj = t->rcv_fin ? 1u : 0u;
  if (seq_gt(t->rcv_nxt, t->rcv_adv + fin_adj))
    FAIL("rcv_nxt %u beyond the advertised edge %u", t->rcv_nxt - t->irs, t->rcv_adv - t->irs);
  if (seq_gt(t->rcv_adv, tcp_rcv_room_end(t)))
    FAIL("advertised edge %u beyond buffer space (rcv_nxt %u, free %u + overcommit %u)",
         t->rcv_adv - t->irs, t->rcv_nxt - t->irs, ring_space(&t->rcvbuf), tcp_rcv_overcommit(t));
  uint32_t l2, r2;
  for (bool more = ooo_next(t, true, 0, &l2, &r2); more; more = ooo_next(t, false, l2, &l2, &r2)) {
    if (seq_gt(r2, t->rcv_adv))
      FAIL("out-of-order data %u..%u beyond the advertised edge %u", l2 - t->irs, r2 - t->irs, t->rcv_adv - t->irs);
    if (!seq_gt(l2, t->rcv_nxt))
      FAIL("out-of-order data %u..%u not above rcv_nxt %u", l2 - t->irs, r2 - t->irs, t->rcv_nxt - t->irs);
    /* Its bytes sit in the ring past the in-order ones. */
    if (seq_gt(r2, tcp_rcv_room_end(t)))
      FAIL("out-of-order data %u..%u has no place in the receive ring", l2 - t->irs, r2 - t->irs);
  }
  return NULL;
}

const char *tcp_check_timers(const struct tcp_engine *e, char *buf, size_t cap)
{
  const struct timer_heap *h = &e->timers;
  for (size_t i = 0; i < h->n; i++) {
    if (h->v[i]->idx != i) {
      snprintf(buf, cap, "timer heap node %zu has index %zu", i, h->v[i]->idx);
      return buf;
    }
    if (!h->v[i]->at_us) {
      snprintf(buf, cap, "timer heap node %zu unarmed", i);
      return buf;
    }
    if (i > 0 && h->v[(i - 1) / 2]->at_us > h->v[i]->at_us) {
      snprintf(buf, cap, "timer heap order broken at %zu", i);
      return buf;
    }
  }
  return NULL;
}

const char *tcp_check_cheap(const struct tcp_engine *e, const struct tcb *t, char *buf, size_t cap)
{
  if ((t->ooo == NULL) != (t->ooo_count == 0))
    FAIL("out-of-order tree %s but its count is %u", t->ooo ? "exists" : "absent", t->ooo_count);
#ifdef USTCP_CHECK_INVARIANTS
  const char *tree = ooo_check_tree(t);
  if (tree) FAIL("%s", tree);
#endif
  if (t->lst) {
    if (t->lst->syn_q_len > e->cfg->max_syn_backlog)
      FAIL("SYN queue %u over max_syn_backlog %u", t->lst->syn_q_len, e->cfg->max_syn_backlog);
    if (t->lst->accept_q_len > e->cfg->somaxconn + 1)
      FAIL("accept queue %u over somaxconn %u + 1", t->lst->accept_q_len, e->cfg->somaxconn);
  }
  if (!tcb_has_conn_state(t->state) || t->state == USTCP_SYN_SENT) return NULL;
  if (!seq_leq(t->snd_una, t->snd_nxt) || !seq_leq(t->snd_nxt, t->snd_max))
    FAIL("snd_una %u, snd_nxt %u, snd_max %u out of order (relative to iss)",
         t->snd_una - t->iss, t->snd_nxt - t->iss, t->snd_max - t->iss);
  if (seq_gt(t->rcv_nxt, t->rcv_adv + (t->rcv_fin ? 1u : 0u)))
    FAIL("rcv_nxt %u beyond the advertised edge %u", t->rcv_nxt - t->irs, t->rcv_adv - t->irs);
  return NULL;
}

void tcp_invariant_failed(const struct tcb *t, const char *why)
{
  fprintf(stderr, "ustcp: engine invariant broken: %s\n", why);
  (void)t;
  abort();
}
