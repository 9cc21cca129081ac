/* Issue 10 point 8: the engine asserts cheap invariants on itself after every
 * segment (tcp_check_cheap, TCP_CHECK_INVARIANTS in tcp_input and
 * tcp_listen_input). This proves the checker sees each broken invariant it
 * names (a checker that accepts everything would make every test build's
 * assertion worthless): snd_una <= snd_nxt <= snd_max, rcv_nxt <= rcv_adv
 * (+1 after the peer's FIN), the out-of-order count, the listener's queues. */
#include <stdlib.h>
#include "check.h"
#include "tcp/tcp.h"
#include "tcp/tcp_check.h"

static const char *chk(const struct tcp_engine *e, const struct tcb *t)
{
  static char buf[256];
  const char *why = tcp_check_cheap(e, t, buf, sizeof buf);
  if (why) printf("  caught: %s\n", why);
  return why;
}

static void cheap_invariants_catch_each_break(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct tcp_engine e;
  memset(&e, 0, sizeof e);
  e.cfg = &cfg;
  struct tcb t;
  memset(&t, 0, sizeof t);
  t.state = USTCP_ESTABLISHED;
  t.iss = 0xfffffff0u;                 /* across the wrap */
  t.snd_una = t.iss + 1;
  t.snd_nxt = t.iss + 100;
  t.snd_max = t.iss + 200;
  t.irs = 7;
  t.rcv_nxt = 1000;
  t.rcv_adv = 2000;
  CHECK(chk(&e, &t) == NULL);
  struct tcb b = t; b.snd_una = t.snd_nxt + 1;           CHECK(chk(&e, &b) != NULL);
  b = t; b.snd_nxt = t.snd_max + 1;                      CHECK(chk(&e, &b) != NULL);
  b = t; b.rcv_nxt = t.rcv_adv + 1;                      CHECK(chk(&e, &b) != NULL);
  b = t; b.rcv_nxt = t.rcv_adv + 1; b.rcv_fin = true;    CHECK(chk(&e, &b) == NULL);
  b = t; b.ooo_count = 1;                                CHECK(chk(&e, &b) != NULL);
  /* A one-interval out-of-order tree (its bytes would sit in the pinned ring). */
  struct ooo_tree *one = calloc(1, sizeof *one + sizeof one->pool[0]);
  if (!one) abort();
  one->pool_cap = 1;
  one->root = one->last = 1;
  one->pool[0].left = 1001;
  one->pool[0].right = 1002;
  one->pool[0].height = 1;
  b = t; b.ooo = one; b.ooo_count = 0;                   CHECK(chk(&e, &b) != NULL);
  b = t; b.ooo = one; b.ooo_count = 1; b.rcvbuf.pinned = true; CHECK(chk(&e, &b) == NULL);
  free(one);
  struct listen_state ls = {0};
  struct tcb l;
  memset(&l, 0, sizeof l);
  l.state = USTCP_LISTEN;
  l.lst = &ls;
  CHECK(chk(&e, &l) == NULL);
  ls.syn_q_len = cfg.max_syn_backlog + 1;                CHECK(chk(&e, &l) != NULL);
  ls.syn_q_len = 0; ls.accept_q_len = cfg.somaxconn + 2; CHECK(chk(&e, &l) != NULL);
}

int main(void)
{
  RUN(cheap_invariants_catch_each_break);
  return check_report();
}
