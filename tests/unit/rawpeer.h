/* Test fixture: ONE ustcp stack driven by hand-made segments, in virtual time.
 * The test plays the remote peer(s): it builds segments with the wire encoder
 * (any address, port, sequence number, flags, options), injects them, and reads
 * back every packet the stack sent. Used by the attack and regression tests,
 * where the peer must misbehave in ways a real stack never would. Header-only. */
#ifndef USTCP_RAWPEER_H
#define USTCP_RAWPEER_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ustcp.h"
#include "wire/wire.h"
#include "stack/stack_check.h"

#define RP_LOCAL_IP 0xc0000201u   /* 192.0.2.1: the stack */
#define RP_PEER_IP 0xc0000202u    /* 192.0.2.2: the default peer */

struct rp_pkt {
  size_t len;
  uint8_t data[IPV4_HDR_LEN + TCP_MAX_HDR_LEN + 65536];
};

struct rp {
  struct ustcp_stack *s;
  uint64_t now;
  struct rp_pkt *q;          /* packets the stack sent, oldest first */
  size_t head, n, cap;
  uint64_t sent_total;       /* every packet the stack ever sent */
  bool keep;                 /* false: count output but do not keep it (floods) */
};

static void rp_out(void *ctx, const uint8_t *pkt, size_t len)
{
  struct rp *r = ctx;
  r->sent_total++;
  if (!r->keep) return;
  if (r->head + r->n == r->cap) {
    if (r->head > 0) {
      memmove(r->q, r->q + r->head, r->n * sizeof *r->q);
      r->head = 0;
    } else {
      r->cap = r->cap ? r->cap * 2 : 16;
      r->q = realloc(r->q, r->cap * sizeof *r->q);
      if (!r->q) abort();
    }
  }
  struct rp_pkt *p = &r->q[r->head + r->n++];
  p->len = len < sizeof p->data ? len : sizeof p->data;
  memcpy(p->data, pkt, p->len);
}

static inline void rp_init(struct rp *r, const struct ustcp_config *cfg, uint64_t seed)
{
  memset(r, 0, sizeof *r);
  r->keep = true;
  r->now = 1000;
  r->s = ustcp_stack_new(cfg, RP_LOCAL_IP, seed, rp_out, r);
  if (!r->s) abort();
  ustcp_poll(r->s, r->now);
}

static inline void rp_free(struct rp *r)
{
  ustcp_stack_free(r->s);
  free(r->q);
  r->q = NULL;
}

/* Takes the oldest packet the stack sent, decoded; false if none. */
static inline bool rp_next(struct rp *r, struct tcp_packet *out)
{
  while (r->n > 0) {
    struct rp_pkt *p = &r->q[r->head];
    r->head++;
    r->n--;
    if (tcp_packet_decode(p->data, p->len, out) == WIRE_OK) return true;
  }
  return false;
}
/* The most recent packet (older ones are dropped). */
static inline bool rp_last(struct rp *r, struct tcp_packet *out)
{
  bool any = false;
  struct tcp_packet p;
  while (rp_next(r, &p)) { *out = p; any = true; }
  return any;
}
static inline void rp_clear(struct rp *r) { r->head = r->n = 0; }

/* Builds and injects one segment from (src_ip, sport) to the stack's dport. */
static inline void rp_send_from(struct rp *r, uint32_t src_ip, uint16_t sport, uint16_t dport,
                                uint32_t seq, uint32_t ack, uint8_t flags, uint16_t win,
                                const struct tcp_opts *opts, const void *payload, size_t plen)
{
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = sport;
  h.dst_port = dport;
  h.seq = seq;
  h.ack = ack;
  h.flags = flags;
  h.window = win;
  if (opts) h.opts = *opts;
  static uint8_t pkt[IPV4_HDR_LEN + TCP_MAX_HDR_LEN + 65536];
  int n = tcp_packet_encode(&h, payload, plen, src_ip, RP_LOCAL_IP, 1, pkt, sizeof pkt);
  if (n < 0) abort();
  ustcp_input(r->s, pkt, (size_t)n, r->now);
}

/* Advances virtual time by dt, running every timer due on the way. */
static inline void rp_advance(struct rp *r, uint64_t dt)
{
  uint64_t end = r->now + dt;
  for (;;) {
    uint64_t d = ustcp_next_deadline(r->s);
    if (d == USTCP_NO_DEADLINE || d > end) break;
    if (d > r->now) r->now = d;
    ustcp_poll(r->s, r->now);
  }
  r->now = end;
  ustcp_poll(r->s, r->now);
}

/* One connection played by the test: the stack's side is fd (accepted or
 * connected); the peer's sequence state is tracked here. */
struct rp_conn {
  uint32_t peer_ip;
  uint16_t peer_port, local_port;
  uint32_t peer_isn, snd_nxt;     /* the peer's next sequence number */
  uint32_t stack_isn, rcv_nxt;    /* the stack's ISN, next byte expected from it */
  uint8_t wscale;                 /* scale the peer announced */
  int fd;
};

static inline void rp_seg(struct rp *r, struct rp_conn *c, uint8_t flags, const void *data,
                          size_t len, uint16_t win)
{
  rp_send_from(r, c->peer_ip, c->peer_port, c->local_port, c->snd_nxt, c->rcv_nxt, flags, win,
               NULL, data, len);
  c->snd_nxt += (uint32_t)len + ((flags & TCP_FIN) ? 1u : 0u);
}

/* Passive open on the stack: listener lfd on local_port must exist. Returns the
 * accepted fd (also in c->fd), or a negative value. opts: the SYN's options
 * (NULL: MSS 1460 only). */
static inline int rp_handshake_in(struct rp *r, struct rp_conn *c, int lfd, uint32_t peer_ip,
                                  uint16_t peer_port, uint16_t local_port, uint32_t isn,
                                  const struct tcp_opts *opts)
{
  struct tcp_opts o = {0};
  if (opts) o = *opts;
  else { o.present = TCP_OPT_HAS_MSS; o.mss = 1460; }
  memset(c, 0, sizeof *c);
  c->fd = -1;
  c->peer_ip = peer_ip;
  c->peer_port = peer_port;
  c->local_port = local_port;
  c->peer_isn = isn;
  c->wscale = (o.present & TCP_OPT_HAS_WSCALE) ? o.wscale : 0;
  rp_clear(r);
  rp_send_from(r, peer_ip, peer_port, local_port, isn, 0, TCP_SYN, 65535, &o, NULL, 0);
  struct tcp_packet p;
  if (!rp_last(r, &p) || p.tcp.flags != (TCP_SYN | TCP_ACK)) return -1;
  c->stack_isn = p.tcp.seq;
  c->rcv_nxt = p.tcp.seq + 1;
  c->snd_nxt = isn + 1;
  rp_seg(r, c, TCP_ACK, NULL, 0, 65535);
  c->fd = ustcp_accept(r->s, lfd, NULL);
  return c->fd;
}

static inline int rp_listen(struct rp *r, uint16_t port, int backlog)
{
  int l = ustcp_socket(r->s);
  struct ustcp_addr a = {0, port};
  if (ustcp_bind(r->s, l, &a) || ustcp_listen(r->s, l, backlog)) return -1;
  return l;
}
/* The state of the socket fd (-1 for a bad fd). */
static inline int rp_state(struct rp *r, int fd)
{
  struct ustcp_tcp_info ti;
  if (ustcp_get_info(r->s, fd, &ti) != 0) return -1;
  return (int)ti.state;
}

/* NULL when the whole stack passes stack_check(), else the reason (printed). */
static inline const char *rp_stack_problem(struct rp *r)
{
  static char buf[512];
  const char *why = stack_check(r->s, true, buf, sizeof buf);
  if (why) fprintf(stderr, "stack_check: %s\n", why);
  return why;
}

#endif
