/* LISTEN: the SYN queue, the accept queue and SYN cookies (H2, H6, H7).
 *
 *   tcp_listen_input      a segment for a listener (no connection matched):
 *                         SYN   -> accept queue full? drop (Linux)
 *                                  SYN queue full (as many requests as the
 *                                  backlog, or max_syn_backlog) or syncookies=2?
 *                                  cookie SYN-ACK (stateless, RFC 4987 §3.6) or drop
 *                                  else a SYN_RCVD child in the SYN queue + SYN-ACK
 *                         ACK   -> checked as a cookie only if cookies went out
 *                                  recently; a valid one makes an ESTABLISHED
 *                                  child in the accept queue; otherwise RST
 *                                  (§3.10.7.2)
 *                         SYN+FIN, SYN+RST -> dropped, counted (Linux)
 *                         RST   -> ignored
 *   tcp_listen_established a child's final ACK: SYN queue -> accept queue
 *   tcp_listen_accept     accept() takes the head of the accept queue
 *
 * Queue limits follow Linux: the accept queue is full when it holds MORE than
 * min(backlog, somaxconn) (so backlog 1 holds 2); the SYN queue is full when it
 * holds as many half-open children as that backlog (inet_csk_reqsk_queue_is_full),
 * and never holds more than max_syn_backlog.
 */
#include <string.h>
#include "tcp/tcp.h"
#include "tcp/tcp_check.h"

int tcp_listen_start(struct tcp_engine *e, struct tcb *t, int backlog)
{
  if (!t->lst) {
    t->lst = tcp_alloc(e, sizeof *t->lst);
    if (!t->lst) return -ENOMEM;
  }
  if (backlog < 0) backlog = 0;
  t->lst->backlog = u32_min((uint32_t)backlog, e->cfg->somaxconn);
  if (t->state != USTCP_LISTEN) tcb_set_state(e, t, USTCP_LISTEN, USTCP_CAUSE_CALL);
  return 0;
}

static bool accept_queue_full(const struct tcp_engine *e, const struct tcb *l)
{
  (void)e;
  return l->lst->accept_q_len > l->lst->backlog;
}

/* ---- SYN cookies (RFC 4987 §3.6) ----
 * The server ISN encodes, without state: a 5-bit counter of 64-second slots
 * (bits 3..7), an index into a table of MSS values (bits 0..2), and 24 bits of
 * keyed hash over the 4-tuple, the client's ISN and the slot (bits 8..31). A
 * cookie is accepted for two slots after its own (64-128 s), as in Linux. */
/* The first entry is the engine's floor for a peer's MSS (64, as for a SYN
 * queue child): with 216 there, a peer announcing less got segments larger than
 * its MSS. */
static const uint16_t cookie_mss_table[8] = {64, 256, 536, 1200, 1360, 1440, 1460, 8960};
#define COOKIE_SLOT_US (64ull * USTCP_SEC)
/* How long after the last cookie went out an ACK is still checked as one
 * (Linux's TCP_SYNCOOKIE_VALID: two cookie periods). */
#define COOKIE_RECENT_US (2 * COOKIE_SLOT_US)

static uint32_t cookie_hash(struct tcp_engine *e, const struct tcp_packet *p,
                            uint32_t peer_isn, uint64_t slot)
{
  /* over the address bytes (an IPv6 handle does not outlive the packet); IPv4
   * hashes the same 24 bytes as before IPv6 existed */
  uint8_t buf[48];
  size_t n = tcp_ep_key(e, p->v6, p->ip.src, buf);
  n += tcp_ep_key(e, p->v6, p->ip.dst, buf + n);
  memcpy(buf + n, &p->tcp.src_port, 2);
  memcpy(buf + n + 2, &p->tcp.dst_port, 2);
  memcpy(buf + n + 4, &peer_isn, 4);
  memcpy(buf + n + 8, &slot, 8);
  return (uint32_t)siphash24(e->secret, buf, n + 16);
}

static uint32_t cookie_make(struct tcp_engine *e, const struct tcp_packet *p, uint16_t mss)
{
  uint64_t slot = e->now_us / COOKIE_SLOT_US;
  uint32_t idx = 0;
  for (uint32_t i = 0; i < 8; i++)
    if (cookie_mss_table[i] <= mss) idx = i;
  return (cookie_hash(e, p, p->tcp.seq, slot) & 0xffffff00u) | (uint32_t)((slot & 31) << 3) | idx;
}

/* Returns the MSS encoded in a valid cookie, or 0. */
static uint16_t cookie_check(struct tcp_engine *e, const struct tcp_packet *p)
{
  uint32_t cookie = p->tcp.ack - 1;
  uint32_t peer_isn = p->tcp.seq - 1;
  uint64_t now_slot = e->now_us / COOKIE_SLOT_US;
  uint32_t slot_bits = (cookie >> 3) & 31;
  for (uint64_t age = 0; age <= 2 && age <= now_slot; age++) {
    uint64_t slot = now_slot - age;
    if ((slot & 31) != slot_bits) continue;
    if ((cookie_hash(e, p, peer_isn, slot) & 0xffffff00u) == (cookie & 0xffffff00u))
      return cookie_mss_table[cookie & 7];
  }
  return 0;
}

/* ---- options in the cookie's timestamp (Linux's cookie_init_timestamp) ----
 * A cookie has no room for the options the SYN negotiated. With timestamps it
 * carries them in the low 6 bits of the SYN-ACK's TSval (before ts_off is
 * added), which the final ACK echoes in TSecr: the peer's window scale (0-14,
 * 15 = none), SACK-permitted (bit 4), ECN (bit 5: the SYN asked for ECN and
 * the listener agreed, Linux's TS_OPT_ECN).
 * The TSval is the clock rounded down to those bits: at most 63 ticks behind
 * the clock, never ahead, so the TSvals that follow are newer at the peer. */
#define COOKIE_TS_BITS 6
#define COOKIE_TS_WSCALE_NONE 0xfu
#define COOKIE_TS_SACK 0x10u
#define COOKIE_TS_ECN 0x20u

static uint32_t cookie_ts_options(const struct tcp_engine *e, const struct tcb *l,
                                  const struct tcp_packet *p)
{
  const struct tcp_hdr *h = &p->tcp;
  uint32_t o = COOKIE_TS_WSCALE_NONE;
  if (e->cfg->window_scaling && (h->opts.present & TCP_OPT_HAS_WSCALE))
    o = h->opts.wscale > 14 ? 14 : h->opts.wscale;
  if (e->cfg->sack && (h->opts.present & TCP_OPT_HAS_SACK_PERM)) o |= COOKIE_TS_SACK;
  if (tcp_ecn_create_request(l, p)) o |= COOKIE_TS_ECN;
  return o;
}

static uint32_t cookie_init_ts(const struct tcp_engine *e, uint32_t options)
{
  uint32_t now = (uint32_t)(e->now_us / 1000u);
  uint32_t ts = ((now >> COOKIE_TS_BITS) << COOKIE_TS_BITS) | options;
  if (ts > now) ts -= 1u << COOKIE_TS_BITS;
  return ts;
}

static void send_cookie_synack(struct tcp_engine *e, struct tcb *l, const struct tcp_packet *p,
                               uint16_t our_mss)
{
  /* Linux's tcp_synq_overflow: the listener remembers when it last needed a
   * cookie, which opens the window in which ACKs are checked as cookies. */
  l->lst->cookies_sent = true;
  l->lst->last_overflow_us = e->now_us;
  uint16_t peer_mss = (p->tcp.opts.present & TCP_OPT_HAS_MSS) ? p->tcp.opts.mss : 536;
  uint32_t cookie = cookie_make(e, p, peer_mss < our_mss ? peer_mss : our_mss);
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = p->tcp.dst_port;
  h.dst_port = p->tcp.src_port;
  h.seq = cookie;
  h.ack = p->tcp.seq + 1;
  h.flags = TCP_SYN | TCP_ACK;
  /* ECE as for any request that asked (Linux's tcp_ecn_make_synack), even
   * when no timestamp can keep it: then the connection has no ECN. */
  if (tcp_ecn_create_request(l, p)) h.flags |= TCP_ECE;
  /* Without timestamps a cookie cannot carry window scaling: none is offered. */
  h.window = (uint16_t)u32_min(e->cfg->rmem_default, 65535);
  h.opts.present = TCP_OPT_HAS_MSS;
  h.opts.mss = our_mss;
  if (e->cfg->timestamps && (p->tcp.opts.present & TCP_OPT_HAS_TS)) {
    /* With them (Linux's tcp_make_synack for TCP_SYNACK_COOKIE): the SYN's
     * window scale and SACK-permitted ride in our TSval, so both are offered. */
    uint32_t options = cookie_ts_options(e, l, p);
    h.opts.present |= TCP_OPT_HAS_TS;
    h.opts.ts_val = cookie_init_ts(e, options) + tcp_ts_off(e, p->v6, p->ip.dst, p->ip.src);
    h.opts.ts_ecr = p->tcp.opts.ts_val;
    if ((options & COOKIE_TS_WSCALE_NONE) != COOKIE_TS_WSCALE_NONE) {
      h.opts.present |= TCP_OPT_HAS_WSCALE;
      h.opts.wscale = tcp_choose_wscale(e, l);
    }
    if (options & COOKIE_TS_SACK) h.opts.present |= TCP_OPT_HAS_SACK_PERM;
  }
  e->ops.output(e, NULL, p->v6, p->ip.dst, p->ip.src, 0, &h, NULL, 0, 0);
  if (e->stats) e->stats->syncookies_sent++;
}

static void syn_queue_add(struct tcb *l, struct tcb *c)
{
  c->parent = l;
  c->queue = TCB_Q_SYN;
  c->q_prev = NULL;
  c->q_next = l->lst->syn_head;
  if (c->q_next) c->q_next->q_prev = c;
  l->lst->syn_head = c;
  l->lst->syn_q_len++;
}

void tcp_listen_unlink(struct tcp_engine *e, struct tcb *c)
{
  (void)e;
  struct listen_state *ls = c->parent ? c->parent->lst : NULL;
  if (!ls) { c->queue = TCB_Q_NONE; c->parent = NULL; return; }
  if (c->queue == TCB_Q_SYN) {
    if (c->q_prev) c->q_prev->q_next = c->q_next;
    else ls->syn_head = c->q_next;
    if (c->q_next) c->q_next->q_prev = c->q_prev;
    ls->syn_q_len--;
  } else if (c->queue == TCB_Q_ACCEPT) {
    if (c->q_prev) c->q_prev->q_next = c->q_next;
    else ls->accept_head = c->q_next;
    if (c->q_next) c->q_next->q_prev = c->q_prev;
    else ls->accept_tail = c->q_prev;
    ls->accept_q_len--;
  }
  c->q_next = c->q_prev = NULL;
  c->queue = TCB_Q_NONE;
  c->parent = NULL;
}

static void accept_queue_add(struct tcb *l, struct tcb *c)
{
  struct listen_state *ls = l->lst;
  c->parent = l;
  c->queue = TCB_Q_ACCEPT;
  c->q_next = NULL;
  c->q_prev = ls->accept_tail;
  if (ls->accept_tail) ls->accept_tail->q_next = c;
  else ls->accept_head = c;
  ls->accept_tail = c;
  ls->accept_q_len++;
}

bool tcp_listen_established(struct tcp_engine *e, struct tcb *c)
{
  struct tcb *l = c->parent;
  if (accept_queue_full(e, l)) {
    if (e->stats) e->stats->accept_queue_drops++;
    return false;
  }
  tcp_listen_unlink(e, c);
  accept_queue_add(l, c);
  if (e->stats) e->stats->passive_opens++;
  if (e->ops.wake) e->ops.wake(e, l);
  return true;
}

static struct tcb *child_new(struct tcp_engine *e, struct tcb *l, const struct tcp_packet *p)
{
  struct tcb *c = tcb_new(e);
  if (!c) return NULL;
  /* A v6 listener's IPv4 child is reported as v4-mapped (Linux's AF_INET6
   * socket accepting IPv4, tcp_v6_syn_recv_sock's mapped case). */
  struct tcp_ep lo = {p->ip.dst, p->tcp.dst_port, p->v6,
                      (uint8_t)(l->local.v6 && !p->v6 ? TCP_EP_MAPPED : 0)};
  struct tcp_ep re = {p->ip.src, p->tcp.src_port, p->v6, 0};
  tcp_ep_set(e, &c->local, &lo);
  tcp_ep_set(e, &c->remote, &re);
  /* A child inherits the listener's options and buffer sizes. */
  c->sndbuf.cap = l->sndbuf.cap;
  c->rcvbuf.cap = l->rcvbuf.cap;
  c->rcvbuf_locked = l->rcvbuf_locked;
  c->sndbuf_locked = l->sndbuf_locked;   /* Linux: sk_userlocks is cloned (no autotuning) */
  c->nodelay = l->nodelay;
  c->keepalive = l->keepalive;
  c->keepidle_s = l->keepidle_s;
  c->keepintvl_s = l->keepintvl_s;
  c->keepcnt = l->keepcnt;
  c->quickack = l->quickack;
  c->user_mss = l->user_mss;
  /* Linux clones the listener (sk_clone_lock): these come along too. */
  c->notsent_lowat = l->notsent_lowat;
  c->user_timeout_ms = l->user_timeout_ms;
  c->cork = l->cork;
  c->inq = l->inq;
  c->ip_tos = l->ip_tos;
  c->ip_pmtudisc = l->ip_pmtudisc;
  c->ecn_mode = l->ecn_mode;
  c->cc.ops = l->cc.ops;           /* TCP_CONGESTION is inherited, as in Linux */
  c->linger_on = l->linger_on;
  c->linger_s = l->linger_s;
  c->rcv_mss = tcp_adv_mss(e, c);
  c->irs = p->tcp.seq;
  c->rcv_nxt = p->tcp.seq + 1;
  c->ts_off = tcp_ts_off(e, c->local.v6, c->local.ip, c->remote.ip);
  return c;
}

static uint8_t wscale_for(const struct tcp_engine *e, const struct tcb *t)
{
  /* Enough shift to advertise the largest receive buffer the socket may get;
   * when the application fixed the buffer with SO_RCVBUF, just that buffer
   * (as Linux does for a user-locked sk_rcvbuf), so a small buffer keeps a
   * small shift and byte-exact windows. */
  uint32_t space = t->rcvbuf_locked ? t->rcvbuf.cap : u32_max(e->cfg->rmem_max, t->rcvbuf.cap);
  uint8_t s = 0;
  while (s < 14 && (space >> s) > 65535) s++;
  return s;
}

uint8_t tcp_choose_wscale(const struct tcp_engine *e, const struct tcb *t)
{
  return e->cfg->window_scaling ? wscale_for(e, t) : 0;
}

/* Linux's tcp_synq_no_recent_overflow, negated. */
static bool cookies_recent(const struct tcp_engine *e, const struct tcb *l)
{
  return l->lst->cookies_sent && e->now_us - l->lst->last_overflow_us <= COOKIE_RECENT_US;
}

static void cookie_ack(struct tcp_engine *e, struct tcb *l, const struct tcp_packet *p)
{
  /* As Linux's cookie_v4_check: without cookies sent recently the ACK is not
   * checked (no hash computed, nothing counted) and is answered as an ACK for
   * no connection, so forged "cookies" cost a RST and nothing else. */
  if (!e->cfg->syncookies || !cookies_recent(e, l)) {
    tcp_send_rst_for(e, p);
    return;
  }
  uint16_t mss = cookie_check(e, p);
  /* Linux's cookie_timestamp_decode: the options the SYN-ACK's TSval carried
   * come back in TSecr (ts_off taken off). An ACK without TS negotiates none. */
  bool ts = e->cfg->timestamps && (p->tcp.opts.present & TCP_OPT_HAS_TS);
  uint32_t options = COOKIE_TS_WSCALE_NONE;
  if (mss && ts) {
    options = (p->tcp.opts.ts_ecr - tcp_ts_off(e, p->v6, p->ip.dst, p->ip.src)) &
              ((1u << COOKIE_TS_BITS) - 1);
    uint32_t ws = options & COOKIE_TS_WSCALE_NONE;
    if ((options & COOKIE_TS_SACK) && !e->cfg->sack) mss = 0;
    if (ws != COOKIE_TS_WSCALE_NONE && (ws > 14 || !e->cfg->window_scaling)) mss = 0;
    /* Linux's cookie_ecn_ok: ECN in the cookie is refused where the listener
     * would not have accepted it (tcp_ecn 0) */
    if ((options & COOKIE_TS_ECN) && !l->ecn_mode) mss = 0;
  }
  if (!mss) {
    if (e->stats) e->stats->syncookies_failed++;
    tcp_send_rst_for(e, p);
    return;
  }
  if (accept_queue_full(e, l)) {
    if (e->stats) e->stats->accept_queue_drops++;
    return;
  }
  struct tcb *c = child_new(e, l, p);
  if (!c) return;
  if (e->stats) e->stats->syncookies_recv++;
  c->irs = p->tcp.seq - 1;
  c->rcv_nxt = p->tcp.seq;
  c->rcv_wup = c->rcv_nxt;          /* Last.ACK.sent: the SYN-ACK's ack (RFC 7323 §4.3) */
  c->iss = p->tcp.ack - 1;
  c->snd_una = c->snd_nxt = c->snd_max = p->tcp.ack;
  c->snd_sml = c->snd_una;   /* no small segment sent (tcp_create_openreq_child) */
  c->snd_mss = (uint16_t)u32_min(mss, tcp_adv_mss(e, c));
  if (ts) {
    uint32_t ws = options & COOKIE_TS_WSCALE_NONE;
    if (ws != COOKIE_TS_WSCALE_NONE) {
      c->wscale_ok = true;
      c->snd_wscale = (uint8_t)ws;
      c->rcv_wscale = tcp_choose_wscale(e, c);   /* as offered: from the same buffers */
    }
    c->sack_ok = options & COOKIE_TS_SACK;
    c->ecn = (options & COOKIE_TS_ECN) ? TCP_ECN_OK : 0;
    tcp_take_syn_ts(e, c, &p->tcp);              /* TS.Recent, MSS minus 12 */
  }
  c->snd_wnd = (uint32_t)p->tcp.window << c->snd_wscale;   /* unscaled without wscale */
  c->max_snd_wnd = c->snd_wnd;
  c->snd_wl1 = p->tcp.seq;
  c->snd_wl2 = p->tcp.ack;
  tcb_init_conn(e, c);
  c->rcv_adv = c->rcv_nxt + u32_min(ring_space(&c->rcvbuf), 65535);   /* the SYN-ACK's window */
  e->ops.hash_insert(e, c);
  /* Born from LISTEN, like a child of the SYN queue (event LISTEN -> SYN_RCVD),
   * not from CLOSED: RFC 9293 §3.3.2's diagram has no CLOSED -> SYN_RCVD. */
  c->state = USTCP_LISTEN;
  tcb_set_state(e, c, USTCP_SYN_RCVD, USTCP_CAUSE_SEGMENT);
  c->parent = l;
  accept_queue_add(l, c);
  if (e->stats) e->stats->passive_opens++;
  c->lrcv_us = e->now_us;         /* as tcp_create_openreq_child (TCP_INFO last_data_recv) */
  tcb_set_state(e, c, USTCP_ESTABLISHED, USTCP_CAUSE_SEGMENT);
  tcp_init_buffer_space(e, c);
  tcp_arm_keepalive(e, c);
  if (p->payload_len || (p->tcp.flags & TCP_FIN)) tcp_input(e, c, p);
  if (e->ops.wake) e->ops.wake(e, l);
}

static void listen_segment(struct tcp_engine *e, struct tcb *l, const struct tcp_packet *p)
{
  const struct tcp_hdr *h = &p->tcp;
  /* W10: a SYN that reopened a TIME_WAIT 4-tuple starts above the old
   * connection's sequence space (tcp_input set it for this segment only). */
  bool tw_reuse = e->tw_isn_set;
  uint32_t tw_isn = e->tw_isn;
  e->tw_isn_set = false;
  /* Impossible flags on a SYN: no stack sends them (Linux's
   * tcp_rcv_state_process drops both in LISTEN, SKB_DROP_REASON_TCP_FLAGS for
   * SYN+FIN), and answering a SYN+FIN with a SYN-ACK tells a scanner the port
   * is open past filters that look for "SYN without FIN". */
  if ((h->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN && (h->flags & (TCP_FIN | TCP_RST))) {
    if (e->stats) e->stats->syn_bad_flags++;
    return;
  }
  if (h->flags & TCP_RST) return;
  if (h->flags & TCP_ACK) {
    if (h->flags & TCP_SYN) { tcp_send_rst_for(e, p); return; }
    cookie_ack(e, l, p);
    return;
  }
  if (!(h->flags & TCP_SYN)) return;
  if (accept_queue_full(e, l)) {
    /* Linux drops the SYN while the accept queue is full; the client retries. */
    if (e->stats) e->stats->accept_queue_drops++;
    return;
  }
  /* the MSS for this SYN's family (a v6 listener takes IPv4 too) */
  uint16_t our_mss = tcp_adv_mss_for(e, l, p->v6);
  /* Linux's tcp_conn_request: the SYN queue is full once it holds as many
   * requests as the backlog (inet_csk_reqsk_queue_is_full); then a cookie, or a
   * drop without cookies. max_syn_backlog stays a hard bound. */
  bool syn_q_full = l->lst->syn_q_len >= l->lst->backlog ||
                    l->lst->syn_q_len >= e->cfg->max_syn_backlog;
  if (e->cfg->syncookies == 2 || syn_q_full) {
    if (e->cfg->syncookies) send_cookie_synack(e, l, p, our_mss);
    else if (e->stats) e->stats->syn_queue_drops++;
    return;
  }
  struct tcb *c = child_new(e, l, p);
  if (!c) return;
  c->rcv_wscale = tcp_choose_wscale(e, c);
  c->state = USTCP_LISTEN;   /* the child is born from LISTEN (event LISTEN -> SYN_RCVD) */
  {
    uint32_t peer_mss = (h->opts.present & TCP_OPT_HAS_MSS) ? h->opts.mss : 536;
    if (peer_mss < 64) peer_mss = 64;
    c->snd_mss = (uint16_t)u32_min(peer_mss, c->rcv_mss);
    if (e->cfg->window_scaling && (h->opts.present & TCP_OPT_HAS_WSCALE)) {
      c->wscale_ok = true;
      c->snd_wscale = h->opts.wscale > 14 ? 14 : h->opts.wscale;
    } else {
      c->rcv_wscale = 0;
    }
    c->sack_ok = e->cfg->sack && (h->opts.present & TCP_OPT_HAS_SACK_PERM);
    tcp_take_syn_ts(e, c, h);
    c->ecn = tcp_ecn_create_request(l, p) ? TCP_ECN_OK : 0;   /* RFC 3168 §6.1.1 */
  }
  c->iss = tw_reuse ? tw_isn : tcp_isn(e, &c->local, &c->remote);
  c->snd_una = c->snd_nxt = c->snd_max = c->iss;
  c->snd_sml = c->iss;   /* no small segment sent (tcp_create_openreq_child) */
  c->snd_wnd = h->window;
  c->max_snd_wnd = c->snd_wnd;
  c->snd_wl1 = h->seq;
  tcb_init_conn(e, c);
  e->ops.hash_insert(e, c);
  syn_queue_add(l, c);
  tcb_set_state(e, c, USTCP_SYN_RCVD, USTCP_CAUSE_SEGMENT);
  tcp_send_syn(e, c);
}

void tcp_listen_input(struct tcp_engine *e, struct tcb *l, const struct tcp_packet *p)
{
  listen_segment(e, l, p);
  TCP_CHECK_INVARIANTS(e, l);   /* queue counts within their limits */
}

struct tcb *tcp_listen_accept(struct tcp_engine *e, struct tcb *l)
{
  struct tcb *c = l->lst ? l->lst->accept_head : NULL;
  if (!c) return NULL;
  tcp_listen_unlink(e, c);
  return c;
}

void tcp_listen_stop(struct tcp_engine *e, struct tcb *l)
{
  struct listen_state *ls = l->lst;
  if (!ls) return;
  /* Established children nobody accepted are reset; half-open ones vanish. */
  while (ls->accept_head) {
    struct tcb *c = ls->accept_head;
    tcp_listen_unlink(e, c);
    tcp_send_rst(e, c);
    tcb_close(e, c, 0, USTCP_CAUSE_CALL);
  }
  while (ls->syn_head) {
    struct tcb *c = ls->syn_head;
    tcp_listen_unlink(e, c);
    tcb_close(e, c, 0, USTCP_CAUSE_CALL);
  }
}
