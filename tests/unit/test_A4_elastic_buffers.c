/* Issue 12 point 2, elastic buffers (A4 memory accounting):
 *
 * 1. An idle ESTABLISHED connection that has carried data holds no buffer:
 *    after a 64-byte exchange each way, each end's engine memory (its control
 *    block, stats buf_bytes_reserved 0) is at most 1 KB.
 * 2. Storage grows as data needs it; a growth that cannot be allocated (forced
 *    with ustcp_set_alloc_fail) is counted, drops nothing that was accepted,
 *    and does not shrink the advertised window: the receiver leaves the data
 *    that did not fit unacknowledged, the sender's send() takes only what fits,
 *    and once memory is back the whole stream arrives byte-exact. */
#include "check.h"
#include "simnet.h"
#include "stack/stack_check.h"

#define CLIENT_IP 0x0a000001u
#define SERVER_IP 0x0a000002u
#define MS USTCP_MSEC
#define SEC USTCP_SEC

struct conn {
  struct simnet sn;
  struct ustcp_stack *c, *s;
  int lfd, cfd, sfd;
};

static void open_conn(struct conn *k, uint64_t seed)
{
  sn_init(&k->sn, seed);
  k->c = sn_add(&k->sn, "client", CLIENT_IP, NULL);
  k->s = sn_add(&k->sn, "server", SERVER_IP, NULL);
  struct sim_link_cfg lc = {.delay_us = 5 * MS, .bandwidth_bps = 100000000};
  sim_set_all_links(k->sn.net, &lc);
  struct ustcp_addr sa = {SERVER_IP, 80};
  k->lfd = ustcp_socket(k->s);
  CHECK_EQ(ustcp_bind(k->s, k->lfd, &sa), 0);
  CHECK_EQ(ustcp_listen(k->s, k->lfd, 8), 0);
  k->cfd = ustcp_socket(k->c);
  CHECK_EQ(ustcp_connect(k->c, k->cfd, &sa), -EINPROGRESS);
  sn_advance(&k->sn, 50 * MS);
  k->sfd = ustcp_accept(k->s, k->lfd, NULL);
  CHECK(k->sfd >= 0);
}

static void check_stacks(struct conn *k)
{
  char b[256];
  const char *why = stack_check(k->c, true, b, sizeof b);
  if (!why) why = stack_check(k->s, true, b, sizeof b);
  if (why) fprintf(stderr, "stack_check: %s\n", why);
  CHECK(!why);
}

static void idle_after_64_bytes_each_way(void)
{
  struct conn k;
  open_conn(&k, 1);
  uint8_t msg[64], got[128];
  for (int i = 0; i < 64; i++) msg[i] = (uint8_t)(i * 3 + 1);
  CHECK_EQ(ustcp_send(k.c, k.cfd, msg, 64, 0), 64);
  sn_advance(&k.sn, 20 * MS);
  CHECK_EQ(ustcp_recv(k.s, k.sfd, got, sizeof got, 0), 64);
  CHECK_MEM(got, msg, 64);
  CHECK_EQ(ustcp_send(k.s, k.sfd, msg, 64, 0), 64);
  sn_advance(&k.sn, 20 * MS);
  CHECK_EQ(ustcp_recv(k.c, k.cfd, got, sizeof got, 0), 64);
  CHECK_MEM(got, msg, 64);
  sn_advance(&k.sn, 1 * SEC);            /* idle: every ACK is in, delayed ACKs sent */

  struct ustcp_tcp_info ci, si;
  CHECK_EQ(ustcp_get_info(k.c, k.cfd, &ci), 0);
  CHECK_EQ(ustcp_get_info(k.s, k.sfd, &si), 0);
  CHECK_EQ(ci.state, USTCP_ESTABLISHED);
  CHECK_EQ(si.state, USTCP_ESTABLISHED);
  CHECK_EQ(ci.bytes_acked, 64);
  CHECK_EQ(si.bytes_acked, 64);
  struct ustcp_stats cs, ss;
  ustcp_get_stats(k.c, &cs);
  ustcp_get_stats(k.s, &ss);
  printf("idle after 64 B each way: client end %llu bytes (stack mem_bytes %llu, rings %llu), "
         "server end %llu bytes (rings %llu)\n",
         (unsigned long long)ci.mem_bytes, (unsigned long long)cs.mem_bytes,
         (unsigned long long)cs.buf_bytes_reserved, (unsigned long long)si.mem_bytes,
         (unsigned long long)ss.buf_bytes_reserved);
  CHECK(ci.mem_bytes <= 1024);
  CHECK(si.mem_bytes <= 1024);
  CHECK_EQ(cs.mem_bytes, ci.mem_bytes);   /* the client stack holds just this end */
  CHECK_EQ(cs.buf_bytes_reserved, 0);
  CHECK_EQ(ss.buf_bytes_reserved, 0);
  check_stacks(&k);
  sn_free(&k.sn);
}

/* The hook: while armed, every allocation larger than a ring's first storage
 * (1024) fails, i.e. every growth of a ring. */
struct failer {
  bool armed;
  uint64_t refused;
};
static bool fail_growth(void *ctx, size_t n)
{
  struct failer *f = ctx;
  if (!f->armed || n <= 1024) return false;
  f->refused++;
  return true;
}

/* Byte i of the stream. */
static uint8_t pb(uint64_t i) { return (uint8_t)(i * 131 + (i >> 9)); }

static void growth_failure_drops_nothing(void)
{
  struct conn k;
  open_conn(&k, 2);
  struct failer fc = {0}, fs = {0};
  ustcp_set_alloc_fail(k.c, fail_growth, &fc);
  ustcp_set_alloc_fail(k.s, fail_growth, &fs);
  struct ustcp_tcp_info si0;
  CHECK_EQ(ustcp_get_info(k.s, k.sfd, &si0), 0);

  /* 1000 bytes: each ring gets its first storage. Then every growth fails. */
  enum { TOTAL = 200000 };
  static uint8_t out[TOTAL], in[TOTAL];
  for (uint32_t i = 0; i < TOTAL; i++) out[i] = pb(i);
  CHECK_EQ(ustcp_send(k.c, k.cfd, out, 1000, 0), 1000);
  uint64_t sent = 1000, got = 0;
  sn_advance(&k.sn, 1 * MS);
  fc.armed = fs.armed = true;
  /* The sender's ring cannot grow past 1024 bytes: send() takes what fits. */
  ssize_t r = ustcp_send(k.c, k.cfd, out + sent, 5000, 0);
  CHECK(r >= 0 && r <= 24);
  if (r > 0) sent += (uint64_t)r;
  struct ustcp_stats cst;
  ustcp_get_stats(k.c, &cst);
  CHECK(cst.alloc_failures >= 1);
  CHECK(fc.refused >= 1);
  /* The receiver: its ring holds 1000 unread bytes in 1024 of storage; more
   * data arrives (the sender's ring is filled after its storage is allocated
   * below) and cannot be stored. */
  fc.armed = false;
  r = ustcp_send(k.c, k.cfd, out + sent, 60000, 0);
  CHECK(r > 0);
  sent += (uint64_t)r;
  uint32_t wnd_before = 0;
  {
    struct ustcp_tcp_info si;
    ustcp_get_info(k.s, k.sfd, &si);
    wnd_before = si.rcv_wnd;
  }
  sn_advance(&k.sn, 200 * MS);
  struct ustcp_tcp_info si, ci;
  CHECK_EQ(ustcp_get_info(k.s, k.sfd, &si), 0);
  CHECK_EQ(ustcp_get_info(k.c, k.cfd, &ci), 0);
  ustcp_get_stats(k.s, &cst);
  printf("receiver ring growth refused %llu times (alloc_failures %llu); held %u bytes; "
         "window %u -> %u; sender unacked %u\n", (unsigned long long)fs.refused,
         (unsigned long long)cst.alloc_failures, si.rcv_buf_used, wnd_before, si.rcv_wnd,
         ci.unacked);
  CHECK(fs.refused >= 1);
  CHECK(cst.alloc_failures >= fs.refused);
  CHECK(si.rcv_buf_used <= 1024);           /* only what the storage holds was taken */
  CHECK(ci.unacked > 0);                    /* the rest is unacknowledged, not lost */
  CHECK(si.rcv_wnd >= wnd_before - 1024);   /* not shrunk: only what was taken closed it */
  check_stacks(&k);

  /* Memory is back: everything arrives, byte-exact, in order. */
  fs.armed = false;
  for (int ms = 0; ms < 20000 && got < TOTAL; ms++) {
    if (sent < TOTAL) {
      r = ustcp_send(k.c, k.cfd, out + sent, TOTAL - sent, 0);
      if (r > 0) sent += (uint64_t)r;
    }
    for (;;) {
      r = ustcp_recv(k.s, k.sfd, in + got, TOTAL - got, 0);
      if (r <= 0) break;
      got += (uint64_t)r;
    }
    sn_advance(&k.sn, 1 * MS);
  }
  CHECK_EQ(got, TOTAL);
  CHECK_MEM(in, out, TOTAL);
  check_stacks(&k);
  sn_free(&k.sn);
}

int main(void)
{
  idle_after_64_bytes_each_way();
  growth_failure_drops_nothing();
  return check_report();
}
