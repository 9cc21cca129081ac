/* Test fixture: ustcp stacks as hosts of the simulated network (src/link/sim),
 * all in virtual time. Header-only so each test binary stays one file. */
#ifndef USTCP_SIMNET_H
#define USTCP_SIMNET_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ustcp.h"
#include "link/sim.h"
#include "wire/wire.h"

#define SN_MAX_HOSTS 8

struct sn_host {
  struct simnet *sn;
  struct ustcp_stack *stack;
  int id;
  uint32_t ip;
};

struct simnet {
  struct sim_net *net;
  struct sn_host hosts[SN_MAX_HOSTS];
  int nhosts;
};

static void sn_out(void *ctx, const uint8_t *pkt, size_t len)
{
  struct sn_host *h = ctx;
  sim_send(h->sn->net, h->id, pkt, len);
}
static void sn_deliver(void *ctx, const uint8_t *pkt, size_t len, uint64_t now)
{
  struct sn_host *h = ctx;
  ustcp_input(h->stack, pkt, len, now);
}
static uint64_t sn_deadline(void *ctx)
{
  struct sn_host *h = ctx;
  uint64_t d = ustcp_next_deadline(h->stack);
  return d == USTCP_NO_DEADLINE ? SIM_NO_DEADLINE : d;
}
static void sn_poll(void *ctx, uint64_t now)
{
  struct sn_host *h = ctx;
  ustcp_poll(h->stack, now);
}

static inline void sn_init(struct simnet *sn, uint64_t seed)
{
  memset(sn, 0, sizeof *sn);
  sn->net = sim_new(seed);
}

/* Adds a stack with address 10.0.0.(n+1) (or ip if non-zero). */
static inline struct ustcp_stack *sn_add(struct simnet *sn, const char *name, uint32_t ip,
                                         const struct ustcp_config *cfg)
{
  static const struct sim_host_ops ops = {sn_deliver, sn_deadline, sn_poll};
  struct sn_host *h = &sn->hosts[sn->nhosts];
  h->sn = sn;
  h->ip = ip ? ip : 0x0a000001u + (uint32_t)sn->nhosts;
  h->stack = ustcp_stack_new(cfg, h->ip, 1000 + (uint64_t)sn->nhosts, sn_out, h);
  h->id = sim_add_host(sn->net, name, h->ip, &ops, h);
  sn->nhosts++;
  return h->stack;
}

/* Brings every stack's clock to the network's time before socket calls. */
static inline void sn_sync(struct simnet *sn)
{
  for (int i = 0; i < sn->nhosts; i++) ustcp_poll(sn->hosts[i].stack, sim_now(sn->net));
}

static inline void sn_run(struct simnet *sn, uint64_t until_us)
{
  sim_run_until(sn->net, until_us);
  sn_sync(sn);
}

static inline void sn_advance(struct simnet *sn, uint64_t delta_us)
{
  sn_run(sn, sim_now(sn->net) + delta_us);
}

static inline void sn_free(struct simnet *sn)
{
  for (int i = 0; i < sn->nhosts; i++) ustcp_stack_free(sn->hosts[i].stack);
  sim_free(sn->net);
}

static inline int sn_state(struct ustcp_stack *s, int fd)
{
  struct ustcp_tcp_info ti;
  if (ustcp_get_info(s, fd, &ti) != 0) return -1;
  return (int)ti.state;
}
/* ---- helpers for end-to-end tests (test_e2e, test_transfer, test_api) ---- */

/* A log of state events (A4), filled by ustcp_set_event_cb(stack, sn_ev_record, log). */
#define SN_EVLOG_CAP 4096
struct sn_evlog {
  struct ustcp_event ev[SN_EVLOG_CAP];
  int n;
};
static inline void sn_ev_record(void *ctx, const struct ustcp_event *ev)
{
  struct sn_evlog *l = ctx;
  if (l->n < SN_EVLOG_CAP) l->ev[l->n++] = *ev;
}
/* The states one connection (by local and remote port) went through: the first
 * event's old state, then each new state. Returns how many, or -1 if the events do
 * not chain (an event's old state is not the previous new state). */
static inline int sn_ev_states(const struct sn_evlog *l, uint16_t lport, uint16_t rport,
                               int *out, int cap)
{
  int n = 0;
  for (int i = 0; i < l->n; i++) {
    const struct ustcp_event *e = &l->ev[i];
    if (e->local.port != lport || e->remote.port != rport) continue;
    if (n == 0 && n < cap) out[n++] = (int)e->old_state;
    else if (n > 0 && out[n - 1] != (int)e->old_state) return -1;
    if (n < cap) out[n++] = (int)e->new_state;
  }
  return n;
}

/* Byte i of a test stream: position-dependent, so a lost, duplicated or misplaced
 * byte is caught, not just a wrong length. */
static inline uint8_t sn_pattern(uint32_t salt, uint64_t i)
{
  uint64_t x = (i >> 4) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)salt << 32 | salt);
  x ^= x >> 29;
  return (uint8_t)(x + i);
}

/* One direction of a patterned byte stream over a connection. */
struct sn_stream {
  struct ustcp_stack *tx, *rx;
  int tx_fd, rx_fd;
  uint32_t salt;
  uint64_t total, sent, got;
  bool bad;          /* a byte differed from the pattern */
  bool eof;          /* recv returned 0 */
  int rx_err;        /* a negative errno from recv other than -EAGAIN */
};
/* Sends what the socket takes now; returns bytes sent. */
static inline uint64_t sn_stream_send(struct sn_stream *st)
{
  uint8_t buf[8192];
  uint64_t before = st->sent;
  while (st->sent < st->total) {
    int ev = ustcp_sock_events(st->tx, st->tx_fd);
    if (ev < 0 || !(ev & USTCP_POLLOUT)) break;
    uint64_t n = st->total - st->sent;
    if (n > sizeof buf) n = sizeof buf;
    for (uint64_t i = 0; i < n; i++) buf[i] = sn_pattern(st->salt, st->sent + i);
    ssize_t r = ustcp_send(st->tx, st->tx_fd, buf, (size_t)n, 0);
    if (r <= 0) break;
    st->sent += (uint64_t)r;
  }
  return st->sent - before;
}
/* Reads what is there and checks every byte. */
static inline uint64_t sn_stream_recv(struct sn_stream *st)
{
  uint8_t buf[8192];
  uint64_t before = st->got;
  for (;;) {
    ssize_t r = ustcp_recv(st->rx, st->rx_fd, buf, sizeof buf, 0);
    if (r == 0) { st->eof = true; break; }
    if (r < 0) { if (r != -EAGAIN) st->rx_err = (int)r; break; }
    for (ssize_t i = 0; i < r; i++)
      if (buf[i] != sn_pattern(st->salt, st->got + (uint64_t)i)) st->bad = true;
    st->got += (uint64_t)r;
  }
  return st->got - before;
}
/* Pumps streams (send and receive, stepping the network in `step_us` slices, or
 * after every single network event when step_us is 0) until every stream has
 * been fully received or `limit_us` of virtual time passed. Returns true when
 * all arrived. */
static inline bool sn_pump(struct simnet *sn, struct sn_stream **sts, int n, uint64_t step_us,
                           uint64_t limit_us)
{
  uint64_t end = sim_now(sn->net) + limit_us;
  for (;;) {
    bool done = true;
    for (int i = 0; i < n; i++) {
      sn_stream_send(sts[i]);
      sn_stream_recv(sts[i]);
      if (sts[i]->got < sts[i]->total) done = false;
    }
    if (done) return true;
    if (sim_now(sn->net) >= end) return false;
    if (step_us) {
      sn_advance(sn, step_us);
    } else {
      if (!sim_step(sn->net, end)) return false;
      sn_sync(sn);
    }
  }
}

/* Number of rows of a stack's socket table in state st (all rows if st < 0). */
static inline size_t sn_count_rows(struct ustcp_stack *s, int st)
{
  size_t total = ustcp_sock_table(s, NULL, 0);
  struct ustcp_sock_row *rows = calloc(total ? total : 1, sizeof *rows);
  size_t n = ustcp_sock_table(s, rows, total), c = 0;
  for (size_t i = 0; i < n && i < total; i++)
    if (st < 0 || (int)rows[i].state == st) c++;
  free(rows);
  return c;
}
#endif
