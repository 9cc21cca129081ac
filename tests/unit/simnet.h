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
#endif
