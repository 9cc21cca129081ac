/* Control block life cycle: creation with the stack's tunables, state changes
 * (each reported as an event, A4), closing and freeing, ISNs (RFC 6528) and
 * memory accounting (every allocation of the engine goes through tcp_alloc, so the
 * stack can report bytes per connection and tests can prove nothing leaks). */
#include <stdlib.h>
#include <string.h>
#include "tcp/tcp.h"

static uint64_t splitmix64(uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void tcp_engine_init(struct tcp_engine *e, const struct ustcp_config *cfg,
                     uint64_t seed, void *owner)
{
  memset(e, 0, sizeof *e);
  e->cfg = cfg;
  e->owner = owner;
  uint64_t x = seed;
  e->secret[0] = splitmix64(&x);
  e->secret[1] = splitmix64(&x);
  e->next_conn_id = 1;
}

void tcp_engine_free(struct tcp_engine *e)
{
  tcp_ring_cache_free(e);
  a6_free_all(e);
  free(e->timers.v);
  e->timers.v = NULL;
  e->timers.n = e->timers.cap = 0;
}

/* The test hook, then the counter: every allocation failure is seen. */
static bool alloc_refused(struct tcp_engine *e, size_t n)
{
  if (!e->alloc_fail || !e->alloc_fail(e->alloc_fail_ctx, n)) return false;
  if (e->stats) e->stats->alloc_failures++;
  return true;
}

static void *alloc_failed(struct tcp_engine *e)
{
  if (e->stats) e->stats->alloc_failures++;
  return NULL;
}

void *tcp_sys_malloc(struct tcp_engine *e, size_t n)
{
  if (alloc_refused(e, n)) return NULL;
  void *p = malloc(n);
  return p ? p : alloc_failed(e);
}

void *tcp_sys_calloc(struct tcp_engine *e, size_t count, size_t size)
{
  if (size && count > SIZE_MAX / size) return alloc_failed(e);
  if (alloc_refused(e, count * size)) return NULL;
  void *p = calloc(count, size);
  return p ? p : alloc_failed(e);
}

/* Like realloc: on failure p is untouched and still owned by the caller. */
void *tcp_sys_realloc(struct tcp_engine *e, void *p, size_t n)
{
  if (alloc_refused(e, n)) return NULL;
  void *q = realloc(p, n);
  return q ? q : alloc_failed(e);
}

void *tcp_alloc(struct tcp_engine *e, size_t n)
{
  void *p = tcp_sys_calloc(e, 1, n);
  if (!p) return NULL;
  e->mem_bytes += n;
  if (e->mem_bytes > e->mem_peak_bytes) e->mem_peak_bytes = e->mem_bytes;
  return p;
}

void *tcp_alloc_raw(struct tcp_engine *e, size_t n)
{
  void *p = tcp_sys_malloc(e, n);
  if (!p) return NULL;
  e->mem_bytes += n;
  if (e->mem_bytes > e->mem_peak_bytes) e->mem_peak_bytes = e->mem_bytes;
  return p;
}

void tcp_free_mem(struct tcp_engine *e, void *p, size_t n)
{
  if (!p) return;
  e->mem_bytes -= n;
  free(p);
}

/* Every control block may sit in the timer heap: room for it is made when the
 * block is made, so arming a timer never allocates and never fails (a
 * connection is never left without its timers, issue 10 §7). */
static bool timer_heap_reserve(struct tcp_engine *e, size_t n)
{
  struct timer_heap *h = &e->timers;
  if (h->cap >= n) return true;
  size_t ncap = h->cap ? h->cap * 2 : 64;
  while (ncap < n) ncap *= 2;
  struct timer_node **nv = tcp_sys_realloc(e, h->v, ncap * sizeof *nv);
  if (!nv) return false;
  h->v = nv;
  h->cap = ncap;
  return true;
}

struct tcb *tcb_new(struct tcp_engine *e)
{
  if (!timer_heap_reserve(e, e->conns + 1)) return NULL;
  struct tcb *t = tcp_alloc(e, sizeof *t);
  if (!t) return NULL;
  const struct ustcp_config *c = e->cfg;
  t->conn_id = e->next_conn_id++;
  t->state = USTCP_CLOSED;
  t->fd = -1;
  t->sndbuf.cap = c->wmem_default;
  t->rcvbuf.cap = c->rmem_default;
  t->rtt.rto_us = c->rto_initial_us;
  t->keepidle_s = (uint32_t)(c->keepalive_time_us / USTCP_SEC);
  t->keepintvl_s = (uint32_t)(c->keepalive_intvl_us / USTCP_SEC);
  t->keepcnt = c->keepalive_probes;
  t->ecn_mode = (uint8_t)(c->tcp_ecn > 2 ? 2 : c->tcp_ecn);
  e->conns++;
  return t;
}

void tcb_free(struct tcp_engine *e, struct tcb *t)
{
  timer_remove(e, t);
  tcp_defer_cancel(e, t);
  if (t->in_hash) e->ops.hash_remove(e, t);
  if (e->ops.freed) e->ops.freed(e, t);
  ring_free(e, &t->sndbuf);
  ring_free(e, &t->rcvbuf);
  ooo_free_all(e, t);
  rack_free(e, t);
  if (t->lst) tcp_free_mem(e, t->lst, sizeof *t->lst);
  if (t->local.v6) a6_unref(e, t->local.ip);
  if (t->remote.v6) a6_unref(e, t->remote.ip);
  e->conns--;
  tcp_free_mem(e, t, sizeof *t);
}

/* The event is recorded, not delivered (ops.event, see tcp.h): the engine goes on
 * using t after this, and tcb_close may free it, so no application code may run
 * here (issue 10: close() from the event callback freed t under tcb_close). */
void tcb_set_state(struct tcp_engine *e, struct tcb *t, enum ustcp_state s,
                   enum ustcp_cause cause)
{
  enum ustcp_state old = t->state;
  if (old == s) return;
  t->state = s;
  if (s == USTCP_TIME_WAIT) e->tw_count++;
  if (old == USTCP_TIME_WAIT) e->tw_count--;
  /* An orphan in TIME_WAIT no longer counts as one (Linux's time-wait sockets
   * are not in tcp_orphan_count either). */
  if (t->orphan_counted && (s == USTCP_TIME_WAIT || s == USTCP_CLOSED)) {
    t->orphan_counted = false;
    e->orphan_count--;
  }
  if (e->ops.event) e->ops.event(e, t, old, cause);
}

bool tcb_orphaned(struct tcp_engine *e, struct tcb *t)
{
  if (t->orphan_counted || !tcb_has_conn_state(t->state) || t->state == USTCP_TIME_WAIT)
    return false;
  t->orphan_counted = true;
  e->orphan_count++;
  /* Linux's tcp_close: past tcp_max_orphans ("too many orphaned sockets",
   * tcp_check_oom) the connection is reset after its FIN went out, counted as
   * TCPAbortOnMemory: a silent peer cannot keep more than this many closed
   * connections retransmitting. */
  if (e->orphan_count > e->cfg->max_orphans) {
    if (e->stats) e->stats->abort_on_memory++;
    tcp_send_rst(e, t);
    tcb_close(e, t, 0, USTCP_CAUSE_ERROR);
    return true;
  }
  return false;
}

bool tcp_time_wait_room(struct tcp_engine *e)
{
  /* Linux's tcp_time_wait: when inet_twsk_alloc finds tcp_max_tw_buckets
   * reached, the socket closes without TIME_WAIT (TCPTimeWaitOverflow). */
  if (e->tw_count < e->cfg->max_tw_buckets) return true;
  if (e->stats) e->stats->tw_overflow++;
  return false;
}

bool tcb_close(struct tcp_engine *e, struct tcb *t, int err, enum ustcp_cause cause)
{
  if (t->lst) tcp_listen_stop(e, t);
  if (t->queue != TCB_Q_NONE) tcp_listen_unlink(e, t);
  if (err) {
    t->so_error = err;
    t->hard_error = err;
  }
  t->rto_at_us = t->persist_at_us = t->delack_at_us = 0;
  t->keepalive_at_us = t->close_at_us = t->tlp_at_us = 0;
  t->reo_armed = false;
  timer_remove(e, t);
  if (t->in_hash) e->ops.hash_remove(e, t);
  /* A stopped listener gives up its listener state (after hash_remove, which
   * reads it to pick the table): the socket may listen or connect again
   * (Linux, shutdown(SHUT_RD) on a listener), and a block that still had lst
   * was filed in the listener table by connect(), where no segment finds it. */
  if (t->lst) {
    tcp_free_mem(e, t->lst, sizeof *t->lst);
    t->lst = NULL;
  }
  ooo_free_all(e, t);
  tcb_set_state(e, t, USTCP_CLOSED, cause);
  if (t->fd < 0) {
    tcb_free(e, t);
    return true;
  }
  /* The socket keeps the block (and its error) until the application closes it;
   * buffers of unread data stay readable, unsent data is gone. */
  ring_free(e, &t->sndbuf);
  rack_free(e, t);
  if (e->ops.wake) e->ops.wake(e, t);
  return false;
}

/* RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey),
 * with M a 4-microsecond timer. */
uint32_t tcp_isn(struct tcp_engine *e, const struct tcp_ep *local,
                 const struct tcp_ep *remote)
{
  /* RFC 6528: over the addresses themselves (an IPv6 handle may name another
   * address later); IPv4 hashes the same 12 bytes as before IPv6 existed. */
  uint8_t buf[36];
  size_t n = tcp_ep_key(e, local->v6, local->ip, buf);
  n += tcp_ep_key(e, remote->v6, remote->ip, buf + n);
  memcpy(buf + n, &local->port, 2);
  memcpy(buf + n + 2, &remote->port, 2);
  return (uint32_t)siphash24(e->secret, buf, n + 4) + (uint32_t)(e->now_us / 4);
}

/* Linux's secure_tcp_ts_off: keyed by the address pair only, so the TSvals
 * of successive connections between two hosts keep one clock (the peer's PAWS
 * state of an old incarnation stays consistent), yet reveal neither our uptime
 * nor the clock of other pairs. 16 bytes, unlike the ISN's 12: siphash mixes
 * the length in, so the two hashes never coincide. */
uint32_t tcp_ts_off(struct tcp_engine *e, bool v6, uint32_t local_ip, uint32_t remote_ip)
{
  uint8_t buf[40];
  size_t n = tcp_ep_key(e, v6, local_ip, buf);
  n += tcp_ep_key(e, v6, remote_ip, buf + n);
  memcpy(buf + n, "ustcp-ts", 8);
  return (uint32_t)siphash24(e->secret, buf, n + 8);
}

uint16_t tcp_adv_mss(const struct tcp_engine *e, const struct tcb *t)
{
  return tcp_adv_mss_for(e, t, t->local.v6);
}

uint16_t tcp_adv_mss_for(const struct tcp_engine *e, const struct tcb *t, bool v6)
{
  uint32_t hdrs = v6 ? 60u : 40u;   /* IPv6's fixed header is 40 bytes (RFC 8200 §3) */
  uint32_t mss = e->cfg->mtu > hdrs + 88 ? e->cfg->mtu - hdrs : 88u;
  if (t->user_mss && t->user_mss < mss) mss = t->user_mss;
  return (uint16_t)mss;
}

void tcb_init_conn(struct tcp_engine *e, struct tcb *t)
{
  cc_init_conn(e, t);
  t->snd_buf_seq = t->iss + 1;
  t->pm.n = 0;        /* no push marks from an earlier sequence space */
  t->pm.eor = 0;
  t->pm.frame = 0;
  t->chrono_type = TCP_CHRONO_UNSPEC;   /* and the chronographs from zero */
  t->chrono_busy_ms = t->chrono_rwnd_ms = 0;
}

uint32_t tcb_send_space(const struct tcb *t)
{
  return ring_space(&t->sndbuf);
}

uint32_t tcp_notsent_lowat(const struct tcp_engine *e, const struct tcb *t)
{
  return t->notsent_lowat ? t->notsent_lowat : e->cfg->notsent_lowat;
}

uint32_t tcp_notsent_bytes(const struct tcb *t)
{
  uint32_t write_seq = t->snd_buf_seq + t->sndbuf.len;
  /* snd_max may stand past the data (a FIN sent): nothing unsent then */
  return seq_gt(write_seq, t->snd_max) ? write_seq - t->snd_max : 0;
}

bool tcp_stream_memory_free(const struct tcp_engine *e, const struct tcb *t, int wake)
{
  return ((uint64_t)tcp_notsent_bytes(t) << wake) < tcp_notsent_lowat(e, t);
}

uint32_t tcp_inq_hint(const struct tcb *t)
{
  uint32_t inq = t->rcvbuf.len + (t->rcv_fin ? 1u : 0u);
  if (inq == 0 && t->state == USTCP_CLOSED && tcb_ever_connected(t)) inq = 1;  /* SOCK_DONE */
  return inq;
}

void tcb_fill_info(const struct tcb *t, struct ustcp_tcp_info *out)
{
  memset(out, 0, sizeof *out);
  const struct tcb_counters *c = &t->info;
  out->segs_in = c->segs_in;
  out->segs_out = c->segs_out;
  out->data_segs_in = c->data_segs_in;
  out->data_segs_out = c->data_segs_out;
  out->bytes_sent = c->bytes_sent;
  out->bytes_acked = c->bytes_acked;
  out->bytes_received = c->bytes_received;
  out->retrans_segs = c->retrans_segs;
  out->fast_retrans = c->fast_retrans;
  out->rto_expirations = c->rto_expirations;
  out->dup_acks_in = c->dup_acks_in;
  out->ooo_segs = c->ooo_segs;
  out->dup_segs_in = c->dup_segs_in;
  out->zero_window_probes = c->zero_window_probes;
  out->tlp_probes = c->tlp_probes;
  out->state = t->state;
  out->snd_mss = t->snd_mss;
  out->rcv_mss = t->rcv_mss;
  out->rtt_us = t->rtt.srtt_us;
  out->rttvar_us = t->rtt.rttvar_us;
  out->rto_us = t->rtt.rto_us;
  out->snd_cwnd = t->cc.cwnd;
  out->snd_ssthresh = t->cc.ssthresh;
  out->snd_wnd = t->snd_wnd;
  out->rcv_wnd = t->rcv_wnd;
  out->snd_wscale = t->snd_wscale;
  out->rcv_wscale = t->rcv_wscale;
  out->unacked = t->snd_max - t->snd_una;
  out->backoff = t->backoff;
  out->snd_buf_used = t->sndbuf.len;
  out->rcv_buf_used = t->rcvbuf.len;
  out->mem_bytes = sizeof *t + t->sndbuf.size + t->rcvbuf.size;
  out->mem_bytes += ooo_mem(t);
  out->mem_bytes += rack_mem(t);
}

/* Linux's numbering of TCP states (include/net/tcp_states.h), which TCP_INFO
 * reports. */
static uint8_t linux_state(enum ustcp_state st)
{
  switch (st) {
  case USTCP_ESTABLISHED: return 1;
  case USTCP_SYN_SENT: return 2;
  case USTCP_SYN_RCVD: return 3;
  case USTCP_FIN_WAIT_1: return 4;
  case USTCP_FIN_WAIT_2: return 5;
  case USTCP_TIME_WAIT: return 6;
  case USTCP_CLOSED: return 7;
  case USTCP_CLOSE_WAIT: return 8;
  case USTCP_LAST_ACK: return 9;
  case USTCP_LISTEN: return 10;
  case USTCP_CLOSING: return 11;
  }
  return 7;
}

static uint32_t ms_since(uint64_t now_us, uint64_t then_us)
{
  if (then_us == 0 || then_us > now_us) return 0;
  uint64_t ms = (now_us - then_us) / 1000u;
  return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* Linux's tcp_get_info, from what the engine keeps. The segment counts Linux
 * keeps per skb (sacked_out, lost_out, retrans_out) are derived from the
 * byte-based scoreboard, rounded up to whole segments of snd_mss. */
void tcb_fill_linux_info(const struct tcp_engine *e, const struct tcb *t,
                         struct ustcp_linux_tcp_info *o)
{
  memset(o, 0, sizeof *o);
  uint32_t mss = t->snd_mss ? t->snd_mss : 536u;
#define SEGS(bytes) ((uint32_t)(((uint64_t)(bytes) + mss - 1) / mss))
  o->tcpi_state = linux_state(t->state);
  if (t->state == USTCP_LISTEN) {
    /* Linux: unacked = accept queue length, sacked = its limit */
    if (t->lst) {
      o->tcpi_unacked = t->lst->accept_q_len;
      o->tcpi_sacked = t->lst->backlog;
    }
    return;
  }
  uint32_t flight = t->snd_max - t->snd_una;
  uint32_t unsacked = flight ? sack_unsacked(t, t->snd_una, t->snd_max) : 0;
  o->tcpi_unacked = SEGS(flight);
  o->tcpi_sacked = flight > unsacked ? (flight - unsacked) / mss : 0;
  /* icsk_ca_state: Loss after a retransmission timeout until the ACKs catch
   * up (the backoff is cleared by new data acknowledged), Recovery during fast
   * recovery, Disorder while duplicate ACKs or SACKs are outstanding. */
  if (t->backoff > 0 && flight > 0 && t->state != USTCP_SYN_SENT && t->state != USTCP_SYN_RCVD) {
    o->tcpi_ca_state = 4;
    o->tcpi_lost = SEGS(unsacked);
  } else if (t->rec.in_recovery && rack_active(e, t)) {
    o->tcpi_ca_state = 3;
    uint32_t lost, retrans;
    rack_lost_info(t, &lost, &retrans);
    o->tcpi_lost = SEGS(lost);
    o->tcpi_retrans = SEGS(retrans);
  } else if (t->rec.in_recovery) {
    o->tcpi_ca_state = 3;
    uint32_t end = sack_lost_end(t);
    if (seq_gt(end, t->snd_una)) o->tcpi_lost = SEGS(sack_unsacked(t, t->snd_una, end));
    if (seq_gt(t->sack_rexmit, t->snd_una))
      o->tcpi_retrans = SEGS(sack_unsacked(t, t->snd_una, t->sack_rexmit));
  } else if (t->rec.in_cwr) {
    o->tcpi_ca_state = 2;   /* TCP_CA_CWR: reducing for an ECN echo (RFC 3168) */
  } else if (t->rec.dupacks > 0 || t->nsacked > 0) {
    o->tcpi_ca_state = 1;
  }
  o->tcpi_retransmits = (uint8_t)(t->backoff > 255 ? 255 : t->backoff);
  o->tcpi_probes = (uint8_t)(t->probes > 255 ? 255 : t->probes);
  o->tcpi_backoff = o->tcpi_retransmits;
  /* TCPI_OPT_TIMESTAMPS 1, SACK 2, WSCALE 4, ECN 8, ECN_SEEN 16 */
  o->tcpi_options = (uint8_t)((t->ts_ok ? 1 : 0) | (t->sack_ok ? 2 : 0) |
                              (t->snd_wscale || t->rcv_wscale ? 4 : 0) |
                              (t->ecn & TCP_ECN_OK ? 8 : 0) | (t->ecn & TCP_ECN_SEEN ? 16 : 0));
  o->tcpi_wscale = (uint8_t)((t->snd_wscale & 15) | ((t->rcv_wscale & 15) << 4));
  o->tcpi_rto = (uint32_t)t->rtt.rto_us;
  o->tcpi_ato = t->data_seen ? 40000u : 0;   /* TCP_ATO_MIN, Linux's first ato */
  o->tcpi_snd_mss = t->snd_mss;
  o->tcpi_rcv_mss = t->rcv_seg_est ? t->rcv_seg_est : t->rcv_mss;
  o->tcpi_last_data_sent = ms_since(e->now_us, t->cc.last_send_us);
  o->tcpi_last_data_recv = ms_since(e->now_us, t->lrcv_us);
  o->tcpi_last_ack_recv = ms_since(e->now_us, t->last_rcv_us);
  o->tcpi_pmtu = (uint32_t)t->snd_mss + (t->local.v6 ? 60u : 40u);   /* IPv6: a 40-byte header */
  o->tcpi_rcv_ssthresh = t->rcv_wnd;
  o->tcpi_rtt = (uint32_t)t->rtt.srtt_us;
  o->tcpi_rttvar = (uint32_t)t->rtt.rttvar_us;
  /* TCP_INFINITE_SSTHRESH until the first reduction */
  o->tcpi_snd_ssthresh = t->cc.ssthresh >= UINT32_MAX / 2 ? 0x7fffffffu : t->cc.ssthresh / mss;
  o->tcpi_snd_cwnd = t->cc.cwnd / mss;
  o->tcpi_advmss = t->rcv_mss;
  o->tcpi_reordering = t->reordering ? t->reordering : 3;   /* tcp_reordering, then RACK's */
  o->tcpi_rcv_space = t->rcv_wnd;
  o->tcpi_total_retrans = t->info.retrans_segs;
  o->tcpi_max_pacing_rate = UINT64_MAX;
  o->tcpi_bytes_acked = t->info.bytes_acked;
  o->tcpi_bytes_received = t->info.bytes_received;
  o->tcpi_segs_out = t->info.segs_out;
  o->tcpi_segs_in = t->info.segs_in;
  uint32_t unsent = t->sndbuf.len > flight ? t->sndbuf.len - flight : 0;
  o->tcpi_notsent_bytes = unsent;
  o->tcpi_min_rtt = (uint32_t)t->rtt.min_rtt_us;
  o->tcpi_data_segs_in = t->info.data_segs_in;
  o->tcpi_data_segs_out = t->info.data_segs_out;
  o->tcpi_delivered = SEGS(t->info.bytes_acked);
  o->tcpi_bytes_sent = t->info.bytes_sent;
  tcp_chrono_stats(e, t, &o->tcpi_busy_time, &o->tcpi_rwnd_limited);
  o->tcpi_rcv_ooopack = t->info.ooo_segs;
  o->tcpi_snd_wnd = t->snd_wnd;
  o->tcpi_rcv_wnd = t->rcv_wnd;
  o->tcpi_total_rto = (uint16_t)(t->info.rto_expirations > UINT16_MAX ? UINT16_MAX
                                                                       : t->info.rto_expirations);
#undef SEGS
}
