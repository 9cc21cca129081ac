/* One stack instance: see stack.h for the map. */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "stack/stack.h"
#include "stack/stack_check.h"
#include "wire/ipv6.h"

void ustcp_config_default(struct ustcp_config *c)
{
  memset(c, 0, sizeof *c);
  c->somaxconn = 4096;
  c->max_syn_backlog = 2048;
  c->syn_retries = 6;
  c->synack_retries = 5;
  c->orphan_retries = 0;
  c->retries2 = 15;
  c->fin_timeout_us = 60 * USTCP_SEC;
  c->time_wait_us = 60 * USTCP_SEC;
  c->syncookies = 1;
  c->abort_on_overflow = 0;
  c->keepalive_time_us = 7200 * USTCP_SEC;
  c->keepalive_intvl_us = 75 * USTCP_SEC;
  c->keepalive_probes = 9;
  c->rto_min_us = 200 * USTCP_MSEC;
  c->rto_max_us = 120 * USTCP_SEC;
  c->rto_initial_us = 1 * USTCP_SEC;
  c->delack_min_us = 40 * USTCP_MSEC;
  c->delack_max_us = 200 * USTCP_MSEC;
  c->init_cwnd = 10;
  c->rmem_default = 131072;
  c->rmem_max = 33554432;
  c->wmem_default = 16384;
  c->wmem_max = 33554432;
  c->tcp_mem_pressure = 1ull << 30;
  c->port_range_lo = 32768;
  c->port_range_hi = 60999;
  c->mtu = 1500;
  c->window_scaling = true;
  c->sack = true;
  c->challenge_ack_limit = UINT32_MAX;   /* per-connection limit only, as Linux 6.x */
  c->max_sockets = 1u << 20;
  c->max_ooo_segments = 0;   /* derived from the receive buffer: tcp_ooo_limit() */
  c->rfc1337 = 0;
  c->invalid_ratelimit_us = 500 * USTCP_MSEC;
  c->accept_local = 0;
  c->netdev_budget = 300;
  c->max_tw_buckets = 131072;
  c->max_orphans = 131072;
  c->ipfrag_high_thresh = 4u << 20;
  c->ipfrag_time_us = 30 * USTCP_SEC;
  c->timestamps = true;
  c->tcp_recovery = 1;
  c->dsack = true;
  c->tcp_frto = 2;
  c->notsent_lowat = UINT32_MAX;
  c->tcp_ecn = 2;   /* Linux: ECN accepted when the peer asks (RFC 3168) */
  /* Linux's tcp_congestion_control. On the simulator's loss curve (100 ms
   * RTT, 32 KiB buffers, 10 MiB, 10 seeds, median B/s) cubic 185,506 / 43,638
   * at 1 / 10 % loss against reno's 173,544 / 40,249 (issue 14). */
  memcpy(c->congestion_control, "cubic", 6);
  c->slow_start_after_idle = true;
  c->min_tso_segs = 2;
}

const char *ustcp_state_name(enum ustcp_state st)
{
  static const char *const names[] = {
    "CLOSED", "LISTEN", "SYN_SENT", "SYN_RCVD", "ESTABLISHED", "FIN_WAIT_1",
    "FIN_WAIT_2", "CLOSE_WAIT", "CLOSING", "LAST_ACK", "TIME_WAIT"};
  return (unsigned)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

uint64_t stack_rand(struct ustcp_stack *s)
{
  uint64_t z = (s->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* ---- hash tables ---- */
static size_t tuple_hash(const struct ustcp_stack *s, uint32_t lip, uint16_t lport,
                         uint32_t rip, uint16_t rport)
{
  /* Keyed so a remote peer cannot aim many connections at one bucket. */
  uint64_t x = ((uint64_t)rip << 32 | (uint64_t)rport << 16 | lport) ^ s->eng.secret[1];
  x ^= (uint64_t)lip * 0x9e3779b97f4a7c15ull;
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return (size_t)x;
}

static size_t tcb_hash(const struct ustcp_stack *s, const struct tcb *t)
{
  if (t->lst) return tuple_hash(s, 0, t->local.port, 0, 0);
  return tuple_hash(s, t->local.ip, t->local.port, t->remote.ip, t->remote.port);
}

static int hash_grow(struct ustcp_stack *s, struct stack_hash *h)
{
  size_t n = h->nbuckets ? h->nbuckets * 2 : 256;
  struct tcb **b = tcp_sys_calloc(&s->eng, n, sizeof *b);
  if (!b) return -1;
  for (size_t i = 0; i < h->nbuckets; i++) {
    struct tcb *t = h->buckets[i];
    while (t) {
      struct tcb *next = t->hash_next;
      size_t j = tcb_hash(s, t) & (n - 1);
      t->hash_next = b[j];
      b[j] = t;
      t = next;
    }
  }
  free(h->buckets);
  h->buckets = b;
  h->nbuckets = n;
  return 0;
}

/* Never fails: the tables have buckets from the stack's creation on, and a
 * growth that cannot get memory only leaves the chains longer (a block the
 * demultiplexer cannot find would be a connection nobody can reach). */
static void hash_add(struct ustcp_stack *s, struct stack_hash *h, struct tcb *t)
{
  if (h->count >= h->nbuckets) (void)hash_grow(s, h);
  size_t i = tcb_hash(s, t) & (h->nbuckets - 1);
  t->hash_next = h->buckets[i];
  h->buckets[i] = t;
  h->count++;
  t->in_hash = true;
}

static void hash_del(struct ustcp_stack *s, struct stack_hash *h, struct tcb *t)
{
  if (!h->nbuckets) return;
  struct tcb **pp = &h->buckets[tcb_hash(s, t) & (h->nbuckets - 1)];
  while (*pp) {
    if (*pp == t) {
      *pp = t->hash_next;
      t->hash_next = NULL;
      h->count--;
      t->in_hash = false;
      return;
    }
    pp = &(*pp)->hash_next;
  }
}

struct tcb *stack_lookup_af(struct ustcp_stack *s, bool v6, uint32_t lip, uint16_t lport,
                            uint32_t rip, uint16_t rport)
{
  struct stack_hash *h = &s->conns;
  if (!h->nbuckets) return NULL;
  for (struct tcb *t = h->buckets[tuple_hash(s, lip, lport, rip, rport) & (h->nbuckets - 1)];
       t; t = t->hash_next)
    if (t->local.port == lport && t->remote.port == rport && t->remote.ip == rip &&
        t->local.ip == lip && t->remote.v6 == v6)
      return t;
  return NULL;
}

struct tcb *stack_lookup_listener(struct ustcp_stack *s, bool v6, uint32_t lip, uint16_t lport)
{
  struct stack_hash *h = &s->listeners;
  if (!h->nbuckets) return NULL;
  struct tcb *any = NULL, *any6 = NULL;
  for (struct tcb *t = h->buckets[tuple_hash(s, 0, lport, 0, 0) & (h->nbuckets - 1)];
       t; t = t->hash_next) {
    if (t->local.port != lport) continue;
    if (t->local.v6 == v6) {
      if (t->local.ip == lip) return t;
      if (t->local.ip == 0) any = t;
    } else if (!v6 && t->local.ip == 0 && !(t->local.flags & TCP_EP_V6ONLY)) {
      any6 = t;     /* IPv6 "::" takes IPv4 too (Linux's ipv6_only_sock() false) */
    }
  }
  return any ? any : any6;
}

void stack_listener_add(struct ustcp_stack *s, struct tcb *t) { hash_add(s, &s->listeners, t); }
void stack_listener_remove(struct ustcp_stack *s, struct tcb *t) { hash_del(s, &s->listeners, t); }

/* ---- ports ---- */
void stack_port_ref(struct ustcp_stack *s, uint16_t port)
{
  s->port_refs[port]++;
  s->port_refs_total++;
}
void stack_port_unref(struct ustcp_stack *s, uint16_t port)
{
  if (s->port_refs[port]) {
    s->port_refs[port]--;
    s->port_refs_total--;
  }
}
uint32_t stack_port_users(const struct ustcp_stack *s, uint16_t port) { return s->port_refs[port]; }

/* Keyed hash of the connection's addresses for RFC 6056 Algorithm 4: F gives
 * the destination's offset into the range, G (another key) picks its counter. */
static uint32_t port_hash(const struct ustcp_stack *s, const struct tcp_ep *remote,
                          uint64_t key)
{
  if (remote->v6) {
    /* RFC 6056 over the IPv6 addresses themselves (a handle is no identity). */
    uint8_t buf[42];
    memcpy(buf, s->local_ip6, 16);
    memcpy(buf + 16, a6_bytes(&s->eng, remote->ip), 16);
    memcpy(buf + 32, &remote->port, 2);
    memcpy(buf + 34, &key, 8);
    return (uint32_t)siphash24(s->eng.secret, buf, sizeof buf);
  }
  uint64_t x = ((uint64_t)remote->ip << 16 | remote->port) ^ ((uint64_t)s->local_ip << 40);
  x ^= s->eng.secret[0] ^ key;
  x ^= x >> 33; x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return (uint32_t)x;
}

/* A port connect() may use toward remote: every holder of it is itself a
 * connection that connect() placed there (no bind(), no listener, no child of
 * a listener), and none of them already talks to remote. */
static bool port_free_for(struct ustcp_stack *s, uint16_t port, const struct tcp_ep *remote)
{
  if (s->port_refs[port] != s->port_shared_refs[port]) return false;
  if (s->port_refs[port] == 0) return true;
  return stack_lookup_af(s, remote->v6, remote->v6 ? s->local6_h : s->local_ip, port, remote->ip,
                      remote->port) == NULL;
}

uint16_t stack_ephemeral_port(struct ustcp_stack *s, const struct tcp_ep *remote,
                              bool for_bind)
{
  uint32_t lo = s->cfg.port_range_lo, hi = s->cfg.port_range_hi;
  if (lo == 0 || hi < lo) return 0;
  uint32_t n = hi - lo + 1;
  if (for_bind || !remote) {
    /* bind(port 0): a port nobody holds, from a random start (RFC 6056
     * §3.3.1, Algorithm 1), as Linux's inet_csk_find_open_port. */
    uint32_t start = (uint32_t)(stack_rand(s) % n);
    for (uint32_t i = 0; i < n; i++) {
      uint16_t port = (uint16_t)(lo + (start + i) % n);
      if (s->port_refs[port] == 0) return port;
    }
    return 0;
  }
  /* connect(): RFC 6056 §3.3.4 (Algorithm 4, double-hash), as Linux's
   * __inet_hash_connect: the 4-tuple is the uniqueness key, so one local port
   * serves many destinations and a client stack is not limited to one range's
   * worth of connections. The destination's offset F is secret; the counter
   * G indexes moves on by the ports it skipped plus a small random step, as
   * Linux does since 5.18, so successive ports to one destination are not
   * predictable from each other either. */
  uint32_t offset = port_hash(s, remote, 0x6a09e667f3bcc908ull);
  uint16_t *perturb = &s->port_perturb[port_hash(s, remote, 0xbb67ae8584caa73bull) & 255];
  uint32_t start = offset + *perturb;
  for (uint32_t i = 0; i < n; i++) {
    uint16_t port = (uint16_t)(lo + (start + i) % n);
    if (!port_free_for(s, port, remote)) continue;
    *perturb = (uint16_t)(*perturb + i + 1 + stack_rand(s) % 8);
    return port;
  }
  return 0;
}

/* ---- IP output ---- */
bool stack_addr_unicast(uint32_t ip)
{
  uint8_t a = (uint8_t)(ip >> 24);
  /* 0/8 "this network", 127/8 loopback (RFC 1122 3.2.1.3), 224/4 multicast,
   * 240/4 reserved and the limited broadcast (RFC 1112, RFC 1122 3.2.1.3). */
  return a != 0 && a != 127 && a < 224;
}


/* ---- gather output (issue 12 point 6) ----
 * A data segment for the gather output is recorded without its payload: the
 * headers (checksum computed over the payload where it lies in the send ring)
 * and where the payload lies, by sequence number. Bytes of the send buffer
 * never change while they are in it, so at delivery, if they still are (not
 * acknowledged meanwhile, the connection still there), the ring's pieces are
 * exactly the bytes the checksum covered. */
struct gather_rec {
  uint64_t conn_id;
  uint32_t lip, rip;              /* the connection, as stack_lookup keys it */
  uint16_t lport, rport;
  uint32_t seq, plen;             /* the payload: sequence space of the send ring */
  uint32_t hlen;                  /* header bytes that follow */
  uint32_t pad;
};

/* A gather packet as one flat buffer (malloc'd; NULL: no memory), for a
 * capture callback or a flat output set since the packet was recorded. */
static uint8_t *gather_flatten(struct ustcp_stack *s, const struct iovec *iov, int n, size_t *len)
{
  size_t total = 0;
  for (int i = 0; i < n; i++) total += iov[i].iov_len;
  uint8_t *buf = tcp_sys_malloc(&s->eng, total ? total : 1);
  if (!buf) return NULL;
  size_t at = 0;
  for (int i = 0; i < n; i++) {
    memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
    at += iov[i].iov_len;
  }
  s->stats.tx_bytes_copied += total - iov[0].iov_len;   /* the payload part */
  *len = total;
  return buf;
}

void stack_deliver_gather(struct ustcp_stack *s, const uint8_t *rec, size_t len, uint64_t time_us)
{
  struct gather_rec g;
  if (len < sizeof g) return;
  memcpy(&g, rec, sizeof g);
  struct tcb *t = stack_lookup(s, g.lip, g.lport, g.rip, g.rport);
  uint32_t off = t ? g.seq - t->snd_buf_seq : 0;
  if (!t || t->conn_id != g.conn_id || seq_lt(g.seq, t->snd_buf_seq) || off > t->sndbuf.len ||
      g.plen > t->sndbuf.len - off || !tcp_storage_pin(&s->eng, t->sndbuf.data)) {
    /* Acknowledged or gone since: as if lost on the wire (the peer has the
     * bytes, or the application aborted the connection). */
    s->stats.out_iov_stale++;
    return;
  }
  struct tcp_iov pcs[2];
  size_t np = ring_pieces(&t->sndbuf, off, g.plen, pcs);
  struct iovec iov[3];
  iov[0].iov_base = (void *)(uintptr_t)(rec + sizeof g);
  iov[0].iov_len = g.hlen;
  for (size_t i = 0; i < np; i++) {
    iov[1 + i].iov_base = (void *)(uintptr_t)pcs[i].base;
    iov[1 + i].iov_len = pcs[i].len;
  }
  int cnt = (int)(1 + np);
  if (s->capture_fn || !s->out_iov) {
    /* A callback set since the packet was recorded wants it flat. */
    size_t flen = 0;
    uint8_t *flat = gather_flatten(s, iov, cnt, &flen);
    if (!flat) {
      s->stats.callback_drops++;
    } else {
      if (s->capture_fn) s->capture_fn(s->capture_ctx, true, flat, flen, time_us);
      if (s->out_iov) s->out_iov(s->out_iov_ctx, iov, cnt);
      else if (s->out) s->out(s->out_ctx, flat, flen);
      free(flat);
    }
  } else {
    s->out_iov(s->out_iov_ctx, iov, cnt);
  }
  tcp_storage_unpin(&s->eng);
}

/* ---- engine callbacks ---- */
/* The engine's segment: header fields and a payload in up to two pieces (a run
 * of the send ring that wraps), encoded straight into its notice (notify.c):
 * one copy of the data, no packet on the C stack. */
static void eng_output(struct tcp_engine *e, const struct tcb *t, bool v6, uint32_t src, uint32_t dst,
                       uint8_t tos,
                       const struct tcp_hdr *h, const struct tcp_iov *pl, size_t npl,
                       uint32_t gso_size)
{
  struct ustcp_stack *s = stack_of(e);
  if (v6) {
    ip6_output_tcp(s, src, dst, tos, h, pl, npl, gso_size);
    return;
  }
  if (src == 0) src = s->local_ip;
  if (!stack_addr_unicast(dst)) {
    /* Nothing is ever sent to a martian (issue 10): input drops every packet
     * from one and connect() refuses one, so this is a last line, counted. */
    s->stats.ip_out_martian++;
    return;
  }
  bool looped = dst == s->local_ip;
  size_t plen = 0;
  for (size_t i = 0; i < npl; i++) plen += pl[i].len;
  if (s->out_iov && !s->out_tx && plen && t && !looped && !s->capture_fn) {
    /* Gather: the headers now, the payload referenced (stack_deliver_gather). */
    struct wire_slice sl[2];
    for (size_t i = 0; i < npl && i < 2; i++) sl[i] = (struct wire_slice){pl[i].base, pl[i].len};
    struct gather_rec g = {t->conn_id, t->local.ip, t->remote.ip, t->local.port, t->remote.port,
                           h->seq, (uint32_t)plen, 0, 0};
    uint8_t *rec = notify_gather_begin(s, sizeof g + IPV4_HDR_LEN + TCP_MAX_HDR_LEN);
    if (!rec) return;
    int n = tcp_packet_encode_gather_tos(h, sl, npl < 2 ? npl : 2, src, dst, s->ip_id++, tos,
                                         rec + sizeof g, IPV4_HDR_LEN + TCP_MAX_HDR_LEN);
    if (n < 0) {
      notify_packet_end(s, rec, 0, false);
      return;
    }
    g.hlen = (uint32_t)n;
    memcpy(rec, &g, sizeof g);
    notify_packet_end(s, rec, sizeof g + (size_t)n, true);
    s->stats.tcp_out++;
    s->stats.ip_out++;
    return;
  }
  size_t olen = tcp_opts_len(&h->opts);
  size_t hlen = IPV4_HDR_LEN + TCP_HDR_LEN + (olen < TCP_MAX_HDR_LEN ? olen : TCP_MAX_HDR_LEN);
  size_t cap = IPV4_HDR_LEN + TCP_MAX_HDR_LEN + plen;
  uint8_t *pkt = notify_packet_begin(s, looped, cap);
  if (!pkt) return;
  const uint8_t *payload = npl ? pl[0].base : NULL;
  if (npl > 1) {
    /* Pieces laid end to end where tcp_encode puts the payload; it sums them
     * in place (it sees payload == its destination). */
    uint8_t *d = pkt + hlen;
    for (size_t i = 0; i < npl; i++) {
      memcpy(d, pl[i].base, pl[i].len);
      d += pl[i].len;
    }
    payload = pkt + hlen;
  }
  /* The link completes the checksum (ustcp_set_link_offload); a packet to
   * ourselves gets it whole, as it never meets the link. */
  bool partial = s->tx_csum && !looped;
  uint32_t nsegs = gso_size && plen > gso_size ? (uint32_t)((plen + gso_size - 1) / gso_size) : 1;
  int n = partial ? tcp_packet_encode_partial(h, payload, plen, src, dst, s->ip_id, tos, pkt, cap)
                  : tcp_packet_encode_tos(h, payload, plen, src, dst, s->ip_id, tos, pkt, cap);
  if (n < 0) {
    notify_packet_end(s, pkt, 0, false);
    return;
  }
  s->stats.tx_bytes_copied += plen;   /* send buffer -> packet */
  /* each segment the link cuts has an IPv4 ID of its own (inet_gso_segment) */
  s->ip_id = (uint16_t)(s->ip_id + nsegs);
  notify_packet_tx(pkt, nsegs > 1 ? (uint16_t)gso_size : 0, partial);
  s->stats.tcp_out += nsegs;
  s->stats.ip_out += nsegs;
  if (looped) {
    /* Loopback (H9 self-connect): queued and delivered after the current event,
     * never re-entrantly; bounded like Linux's backlog (netdev_max_backlog),
     * drops counted. The capture callback still sees it go out. */
    notify_packet_end(s, pkt, (size_t)n, s->capture_fn != NULL);
    stack_loop_queue(s, pkt, (size_t)n);
    s->stats.tx_bytes_copied += plen;   /* the packet -> the loopback queue */
    return;
  }
  notify_packet_end(s, pkt, (size_t)n, true);
}

void stack_loop_queue(struct ustcp_stack *s, const uint8_t *pkt, size_t n)
{
  struct loop_pkt *lp = s->loop_len < 4096 ? tcp_sys_malloc(&s->eng, sizeof *lp + n) : NULL;
  if (!lp) {
    s->stats.loop_dropped++;
    return;
  }
  lp->next = NULL;
  lp->len = n;
  memcpy(lp->data, pkt, n);
  if (s->loop_tail) s->loop_tail->next = lp; else s->loop_head = lp;
  s->loop_tail = lp;
  s->loop_len++;
}

static void eng_hash_insert(struct tcp_engine *e, struct tcb *t)
{
  struct ustcp_stack *s = stack_of(e);
  hash_add(s, t->lst ? &s->listeners : &s->conns, t);
  if (!t->port_held) {
    stack_port_ref(s, t->local.port);
    t->port_held = true;
    if (t->port_shared) {
      s->port_shared_refs[t->local.port]++;
      s->port_shared_total++;
    }
  }
}

static void eng_hash_remove(struct tcp_engine *e, struct tcb *t)
{
  struct ustcp_stack *s = stack_of(e);
  hash_del(s, t->lst ? &s->listeners : &s->conns, t);
}

static void eng_freed(struct tcp_engine *e, struct tcb *t)
{
  struct ustcp_stack *s = stack_of(e);
  if (t->port_held) {
    stack_port_unref(s, t->local.port);
    if (t->port_shared && s->port_shared_refs[t->local.port]) {
      s->port_shared_refs[t->local.port]--;
      s->port_shared_total--;
    }
    t->port_held = false;
  }
}

static void eng_event(struct tcp_engine *e, struct tcb *t, enum ustcp_state old,
                      enum ustcp_cause cause)
{
  struct ustcp_stack *s = stack_of(e);
  if (old == USTCP_SYN_SENT && t->state == USTCP_ESTABLISHED) s->stats.active_opens++;
  if (!s->event_fn) return;
  struct ustcp_event ev = {
    .fd = t->fd, .conn_id = t->conn_id,
    .old_state = old, .new_state = t->state, .cause = cause, .time_us = e->now_us};
  bool mapped = t->local.v6 || (t->local.flags & TCP_EP_MAPPED);
  stack_addr_from_ep(s, &t->local, mapped, &ev.local);
  stack_addr_from_ep(s, &t->remote, mapped, &ev.remote);
  notify_event(s, &ev);   /* delivered at the end of the event (notify.c) */
}

static void eng_wake(struct tcp_engine *e, struct tcb *t)
{
  struct ustcp_stack *s = stack_of(e);
  if (s->sock_wake && t->fd >= 0) s->sock_wake(s, t);
}

struct ustcp_stack *ustcp_stack_new(const struct ustcp_config *cfg, uint32_t local_ip,
                                    uint64_t seed, ustcp_output_fn out, void *out_ctx)
{
  struct ustcp_stack *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if (cfg) s->cfg = *cfg;
  else ustcp_config_default(&s->cfg);
  if (s->cfg.mtu < 128 || s->cfg.rmem_default < 256 || s->cfg.wmem_default < 256 ||
      s->cfg.port_range_hi < s->cfg.port_range_lo || s->cfg.rto_min_us == 0 ||
      s->cfg.rto_max_us < s->cfg.rto_min_us) {
    free(s);
    return NULL;
  }
  s->port_refs = calloc(65536, sizeof *s->port_refs);
  s->port_shared_refs = calloc(65536, sizeof *s->port_shared_refs);
  if (!s->port_refs || !s->port_shared_refs) {
    free(s->port_refs);
    free(s->port_shared_refs);
    free(s);
    return NULL;
  }
  s->local_ip = local_ip;
  s->out = out;
  s->out_ctx = out_ctx;
  s->rng = seed ^ 0x5deece66dull;
  tcp_engine_init(&s->eng, &s->cfg, seed, s);
  s->eng.stats = &s->stats;
  s->eng.ops.output = eng_output;
  s->eng.ops.hash_insert = eng_hash_insert;
  s->eng.ops.hash_remove = eng_hash_remove;
  s->eng.ops.freed = eng_freed;
  s->eng.ops.event = eng_event;
  s->eng.ops.wake = eng_wake;
  s->ip_id = (uint16_t)stack_rand(s);
  if (hash_grow(s, &s->conns) != 0 || hash_grow(s, &s->listeners) != 0) {
    free(s->conns.buckets);
    free(s->port_refs);
    free(s);
    return NULL;
  }
  return s;
}

static void free_chain_all(struct ustcp_stack *s, struct stack_hash *h)
{
  for (size_t i = 0; i < h->nbuckets; i++) {
    while (h->buckets[i]) {
      struct tcb *t = h->buckets[i];
      h->buckets[i] = t->hash_next;
      t->in_hash = false;
      t->fd = -1;
      t->queue = TCB_Q_NONE;
      t->parent = NULL;
      tcb_free(&s->eng, t);
    }
  }
  free(h->buckets);
  h->buckets = NULL;
  h->nbuckets = h->count = 0;
}

int ustcp_stack_free(struct ustcp_stack *s)
{
  if (!s) return 0;
  /* From one of its own callbacks the stack is still in use below the caller
   * (the delivery loop, the socket being reported). */
  if (s->cb_depth || s->nq_delivering || s->in_after_event || s->direct_busy) return -EBUSY;
  if (s->sock_free) s->sock_free(s);     /* sockets first: they hold control blocks */
  /* Everything left is in a hash table; children's queue links die with them. */
  for (size_t i = 0; i < s->listeners.nbuckets; i++)
    for (struct tcb *t = s->listeners.buckets[i]; t; t = t->hash_next) {
      if (!t->lst) continue;
      t->lst->accept_head = t->lst->accept_tail = t->lst->syn_head = NULL;
    }
  free_chain_all(s, &s->conns);
  free_chain_all(s, &s->listeners);
  ip_frag_free_all(s);
  while (s->loop_head) {
    struct loop_pkt *lp = s->loop_head;
    s->loop_head = lp->next;
    free(lp);
  }
  notify_free(s);
  tcp_engine_free(&s->eng);
  free(s->port_refs);
  free(s->port_shared_refs);
  free(s);
  return 0;
}

void ustcp_set_event_cb(struct ustcp_stack *s, ustcp_event_fn fn, void *ctx)
{
  s->event_fn = fn;
  s->event_ctx = ctx;
}

void ustcp_set_ready_cb(struct ustcp_stack *s, ustcp_ready_fn fn, void *ctx)
{
  s->ready_fn = fn;
  s->ready_ctx = ctx;
}

void ustcp_set_output_iov(struct ustcp_stack *s, ustcp_output_iov_fn fn, void *ctx)
{
  s->out_iov = fn;
  s->out_iov_ctx = ctx;
}

void ustcp_set_link_offload(struct ustcp_stack *s, uint32_t gso_max, bool csum,
                            ustcp_output_tx_fn fn, void *ctx)
{
  if (!s) return;
  if (!fn) gso_max = 0, csum = false;
  s->out_tx = fn && (gso_max || csum) ? fn : NULL;
  s->out_tx_ctx = ctx;
  s->tx_csum = s->out_tx && csum;
  s->eng.gso_max = s->out_tx && gso_max > 0xffff ? 0xffff : (s->out_tx ? gso_max : 0);
}

struct tx_seg_ctx {
  ustcp_output_fn fn;
  void *ctx;
};

static void tx_seg_one(void *ctx, const uint8_t *seg, size_t len)
{
  struct tx_seg_ctx *c = ctx;
  c->fn(c->ctx, seg, len);
}

int ustcp_tx_segment(const uint8_t *pkt, size_t len, const struct ustcp_tx_info *tx,
                     ustcp_output_fn fn, void *ctx)
{
  if (!pkt || !tx || !fn) return -EINVAL;
  if (!tx->gso_size && !tx->csum_partial) {
    fn(ctx, pkt, len);
    return 1;
  }
  uint8_t *buf = malloc(65536);
  if (!buf) return -ENOMEM;
  struct tx_seg_ctx c = {fn, ctx};
  int n = tcp_gso_segment(pkt, len, tx->gso_size, buf, 65536, tx_seg_one, &c);
  free(buf);
  return n < 0 ? -EINVAL : n;
}

void ustcp_set_capture_cb(struct ustcp_stack *s, ustcp_capture_fn fn, void *ctx)
{
  s->capture_fn = fn;
  s->capture_ctx = ctx;
}

void ustcp_set_alloc_fail(struct ustcp_stack *s, ustcp_alloc_fail_fn fn, void *ctx)
{
  s->eng.alloc_fail = fn;
  s->eng.alloc_fail_ctx = ctx;
}

const struct ustcp_config *ustcp_get_config(const struct ustcp_stack *s) { return &s->cfg; }
uint32_t ustcp_local_ip(const struct ustcp_stack *s) { return s->local_ip; }

/* ---- IPv6 addresses (issue 16) ---- */
static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int ustcp_stack_add_addr6(struct ustcp_stack *s, const uint8_t addr[16])
{
  if (!s || !addr) return -EINVAL;
  static const uint8_t any[16];
  static const uint8_t loop[16] = {[15] = 1};
  if (!memcmp(addr, any, 16) || !memcmp(addr, loop, 16) || ipv6_is_multicast(addr) ||
      !memcmp(addr, v4mapped_prefix, 12))
    return -EINVAL;
  uint32_t h;
  if (s->has_ip6) {
    if (!memcmp(addr, s->local_ip6, 16)) return 0;
    /* In use by a connection (beyond the stack's own reference): keep it. */
    if (s->eng.a6.v[s->local6_h - 1].refs > 1) return -EBUSY;
  }
  if (a6_intern(&s->eng, addr, &h) < 0) return -ENOMEM;
  if (s->has_ip6) a6_unref(&s->eng, s->local6_h);
  memcpy(s->local_ip6, addr, 16);
  s->local6_h = h;
  s->has_ip6 = true;
  return 0;
}

bool ustcp_local_ip6(const struct ustcp_stack *s, uint8_t out[16])
{
  if (!s->has_ip6) return false;
  memcpy(out, s->local_ip6, 16);
  return true;
}

int stack_ep_from_addr(struct ustcp_stack *s, const struct ustcp_addr *a, struct tcp_ep *out)
{
  memset(out, 0, sizeof *out);
  out->port = a->port;
  /* 0, or Linux's AF_INET (2) for code written with sockaddr_in in mind */
  if (a->family == USTCP_AF_INET || a->family == 2) {
    out->ip = a->ip;
    return 0;
  }
  if (a->family != USTCP_AF_INET6) return -EAFNOSUPPORT;
  if (!memcmp(a->ip6, v4mapped_prefix, 12)) {
    /* ::ffff:a.b.c.d is IPv4 on the wire (Linux's tcp_v6_connect mapped case) */
    out->ip = (uint32_t)a->ip6[12] << 24 | (uint32_t)a->ip6[13] << 16 |
              (uint32_t)a->ip6[14] << 8 | a->ip6[15];
    out->flags = TCP_EP_MAPPED;
    return 0;
  }
  out->v6 = 1;
  return a6_intern(&s->eng, a->ip6, &out->ip);
}

void stack_ep_release(struct ustcp_stack *s, struct tcp_ep *ep)
{
  if (ep->v6) a6_unref(&s->eng, ep->ip);
  ep->v6 = 0;
  ep->ip = 0;
}

void stack_addr_from_ep(const struct ustcp_stack *s, const struct tcp_ep *ep, bool mapped,
                        struct ustcp_addr *out)
{
  memset(out, 0, sizeof *out);
  out->port = ep->port;
  if (ep->v6) {
    out->family = USTCP_AF_INET6;
    memcpy(out->ip6, a6_bytes(&s->eng, ep->ip), 16);
    return;
  }
  out->ip = ep->ip;
  if (mapped) {
    /* An IPv6 socket's IPv4 peer: ::ffff:a.b.c.d (ip keeps the IPv4 form too);
     * "any" stays :: as Linux reports an unbound AF_INET6 socket. */
    out->family = USTCP_AF_INET6;
    if (ep->ip) {
      memcpy(out->ip6, v4mapped_prefix, 12);
      out->ip6[12] = (uint8_t)(ep->ip >> 24);
      out->ip6[13] = (uint8_t)(ep->ip >> 16);
      out->ip6[14] = (uint8_t)(ep->ip >> 8);
      out->ip6[15] = (uint8_t)ep->ip;
    }
  }
}

void stack_tcp_in(struct ustcp_stack *s, const struct tcp_packet *p)
{
  struct tcp_engine *e = &s->eng;
  s->stats.tcp_in++;
  struct tcb *t = stack_lookup_af(s, p->v6, p->ip.dst, p->tcp.dst_port, p->ip.src, p->tcp.src_port);
  if (t && tcp_input(e, t, p) == 0) return;
  struct tcb *l = stack_lookup_listener(s, p->v6, p->ip.dst, p->tcp.dst_port);
  if (l) {
    tcp_listen_input(e, l, p);
    return;
  }
  tcp_input_no_conn(e, p);
}

/* IP input (RFC 1122 3.2.1), in the order of Linux's ip_rcv and
 * ip_route_input_slow: header checks (ip_bad), martian source, destination,
 * source route, fragments; each drop has its counter. from_link: the packet came
 * through ustcp_input, not our own loopback queue. flags: ustcp_input_flags's
 * (USTCP_IN_CSUM_VERIFIED: the link driver vouches for the TCP checksum). */
/* ip_in's own flag, beside ustcp_input_flags's: a datagram ip_frag.c rebuilt. */
#define IN_REASSEMBLED 0x40000000u

static void ip_in(struct ustcp_stack *s, const uint8_t *pkt, size_t len, bool from_link,
                  unsigned flags)
{
  if (len >= 1 && pkt[0] >> 4 == 6) {
    ip6_in(s, pkt, len, from_link, flags);     /* IPv6 (issue 16): src/stack/ip6.c */
    return;
  }
  if (!(flags & IN_REASSEMBLED)) {
    s->stats.ip_in++;
    notify_capture_in(s, pkt, len);
  }
  struct ipv4_hdr ip;
  const uint8_t *seg;
  size_t seg_len;
  if (ipv4_decode(pkt, len, &ip, &seg, &seg_len) != WIRE_OK) {
    s->stats.ip_bad++;    /* version, lengths, header checksum, option lengths */
    return;
  }
  /* A source that cannot be one host (RFC 1122 3.2.1.3: a host MUST silently
   * discard such datagrams), or our own address arriving from the link (LAND:
   * Linux's fib_validate_source refuses a local source unless accept_local).
   * Nothing is answered to a martian: no RST, no ICMP, no SYN-ACK. */
  if (!stack_addr_unicast(ip.src) ||
      (from_link && ip.src == s->local_ip && !s->cfg.accept_local)) {
    s->stats.ip_martian_src++;
    return;
  }
  /* Only our unicast address: no broadcast or multicast is served (no UDP). */
  if (ip.dst != s->local_ip) {
    s->stats.ip_not_for_us++;
    return;
  }
  /* LSRR/SSRR: dropped as with Linux's accept_source_route = 0 (ip_rcv_options
   * never accepts a source route then; RFC 1122 3.2.1.8 lets a host refuse). */
  if (ip.opt_flags & IPV4_OPT_SRR) {
    s->stats.ip_source_routed++;
    return;
  }
  if ((ip.flags & IPV4_FLAG_MF) || ip.frag_off != 0) {
    /* Reassembled with limits (ip_frag.c); the whole datagram then goes through
     * every check again, and the capture shows only the fragments as they came. */
    size_t whole_len = 0;
    uint8_t *whole = ip_frag_in(s, &ip, pkt, seg, seg_len, &whole_len);
    if (whole) {
      ip_in(s, whole, whole_len, from_link, (flags & ~USTCP_IN_CSUM_VERIFIED) | IN_REASSEMBLED);
      free(whole);
    }
    return;
  }
  if (ip.proto != IPPROTO_TCP_) {
    stack_ip_other(s, &ip, pkt, seg, seg_len);   /* ICMP, UDP, ... */
    return;
  }
  struct tcp_packet p;
  int rc = (flags & USTCP_IN_CSUM_VERIFIED) ? tcp_segment_decode_csum_verified(&ip, seg, seg_len, &p)
                                            : tcp_segment_decode(&ip, seg, seg_len, &p);
  if (rc == WIRE_OK) {
    stack_tcp_in(s, &p);
    return;
  }
  /* D5: a bad checksum or malformed segment is dropped and counted. */
  switch (rc) {
  case WIRE_E_TCP_CHECKSUM: s->stats.tcp_bad_checksum++; break;
  case WIRE_E_DATA_OFFSET: case WIRE_E_OPT_LEN: case WIRE_E_OPT_VALUE:
    s->stats.tcp_malformed++; break;
  default: s->stats.ip_bad++; break;
  }
}

void stack_after_event(struct ustcp_stack *s)
{
  if (s->in_after_event) {
    /* A socket call from a callback: its own notices (and those before them)
     * reach the callbacks before it returns; the outer loop does the rest. */
    stack_deliver(s);
    return;
  }
  s->in_after_event = true;
  /* The work one call can cause is bounded (issue 10): a connection that talks
   * to itself (H9) -- or, were it let in, a LAND packet -- feeds its own output
   * back, possibly forever. At most netdev_budget looped-back packets are
   * processed per call, as Linux's net_rx_action stops at net.core.netdev_budget
   * and leaves the rest on the backlog (counted like its time_squeeze). The
   * rest stay queued, not dropped: a self-connected transfer loses nothing;
   * ustcp_next_deadline is "now" while any wait, so the caller comes back. */
  uint32_t budget = s->cfg.netdev_budget ? s->cfg.netdev_budget : 300;
  uint32_t looped = 0;
  for (;;) {
    bool did = false;
    if (stack_deliver(s)) did = true;
    if (s->sock_dispatch && s->sock_dispatch(s)) did = true;
    if (tcp_flush_deferred(&s->eng)) did = true;
    if (stack_deliver(s)) did = true;
    if (s->loop_head && looped < budget) {
      struct loop_pkt *lp = s->loop_head;
      s->loop_head = lp->next;
      if (!s->loop_head) s->loop_tail = NULL;
      s->loop_len--;
      looped++;
      ip_in(s, lp->data, lp->len, false, 0);
      free(lp);
      did = true;
    }
    if (!did) break;
  }
  if (s->loop_head) s->stats.loop_budget_hits++;
  s->in_after_event = false;
}

/* A direct-access callback runs (ustcp_recv_direct, ustcp_send_direct): the
 * slice it holds must stay as it was handed, so the stack refuses to work. */
static bool direct_refused(struct ustcp_stack *s)
{
  if (!s->direct_busy) return false;
  s->stats.direct_reentry_refused++;
  return true;
}

void ustcp_input(struct ustcp_stack *s, const uint8_t *pkt, size_t len, uint64_t now_us)
{
  if (direct_refused(s)) return;
  if (now_us > s->eng.now_us) s->eng.now_us = now_us;
  ip_in(s, pkt, len, true, 0);
  stack_after_event(s);
}

void ustcp_input_flags(struct ustcp_stack *s, const uint8_t *pkt, size_t len, uint64_t now_us,
                       unsigned flags)
{
  if (direct_refused(s)) return;
  if (now_us > s->eng.now_us) s->eng.now_us = now_us;
  ip_in(s, pkt, len, true, flags & USTCP_IN_CSUM_VERIFIED);   /* unknown bits: ignored */
  stack_after_event(s);
}

uint64_t ustcp_poll(struct ustcp_stack *s, uint64_t now_us)
{
  if (direct_refused(s)) return ustcp_next_deadline(s);
  if (now_us > s->eng.now_us) s->eng.now_us = now_us;
  tcp_run_timers(&s->eng, s->eng.now_us);
  if (s->frag_queues) ip_frag_expire(s, s->eng.now_us);
  stack_after_event(s);
  return ustcp_next_deadline(s);
}

uint64_t ustcp_next_deadline(const struct ustcp_stack *s)
{
  /* Looped-back packets left by the budget are due now. */
  if (s->loop_head) return s->eng.now_us;
  return tcp_next_deadline(&s->eng);
}

static void buf_usage_add(const struct tcb *t, uint64_t *reserved, uint64_t *used)
{
  *reserved += (uint64_t)t->sndbuf.size + t->rcvbuf.size;
  *used += (uint64_t)t->sndbuf.len + t->rcvbuf.len + ooo_bytes(t);
}

/* The ring capacity allocated and the bytes holding data in it, over every
 * control block: the connection table (connections, half-open, orphans,
 * TIME_WAIT), then blocks only a descriptor reaches (as stack_check walks). */
static void stack_buf_usage(const struct ustcp_stack *s, uint64_t *reserved, uint64_t *used)
{
  *reserved = *used = 0;
  for (size_t i = 0; i < s->conns.nbuckets; i++)
    for (const struct tcb *t = s->conns.buckets[i]; t; t = t->hash_next)
      buf_usage_add(t, reserved, used);
  struct ustcp_stack *ms = (struct ustcp_stack *)(uintptr_t)s;   /* read-only use */
  uint32_t fd_cap = 0;
  sock_debug_tcb(ms, 0, &fd_cap);
  for (uint32_t fd = 0; fd < fd_cap; fd++) {
    const struct tcb *t = sock_debug_tcb(ms, (int)fd, NULL);
    if (t && !t->in_hash) buf_usage_add(t, reserved, used);
  }
}

void ustcp_get_stats(const struct ustcp_stack *s, struct ustcp_stats *out)
{
  *out = s->stats;
  out->conns_alive = s->eng.conns;
  out->mem_bytes = s->eng.mem_bytes;
  out->mem_peak_bytes = s->eng.mem_peak_bytes;
  stack_buf_usage(s, &out->buf_bytes_reserved, &out->buf_bytes_used);
  out->time_wait = s->eng.tw_count;
  out->orphans = s->eng.orphan_count;
  out->ring_cache_bytes = s->eng.ring_cache.bytes;
}
