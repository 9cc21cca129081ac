/* H1 / H10 (issue 6): initial sequence numbers (RFC 6528) and ephemeral ports
 * (RFC 6056) are unpredictable to an off-path attacker. Statistical checks over
 * thousands of connections (seeded, so the test is deterministic):
 *   ISNs  - no two equal; consecutive differences not constant (an attacker
 *           cannot extrapolate from one observed ISN); every one of the 32 bits
 *           set in 40-60% of ISNs; two stacks with different secrets give
 *           different ISNs for the same 4-tuple at the same time; for one
 *           4-tuple the ISN still advances with the clock (M, 4 us ticks), so a
 *           new incarnation starts above the old one (RFC 6528 §3);
 *   ports - (connections to N different destinations) inside the configured
 *           range; repeats no more often than independent random choices
 *           would give; consecutive choices not sequential (fewer
 *           than 1% are previous+1); spread over the whole range (each tenth
 *           of it gets 5-15% of the choices): each destination's starting
 *           point is a keyed hash (RFC 6056 §3.3.4, Algorithm 4);
 *   ports to ONE destination - (Algorithm 4 walks that destination's sequence
 *           from its secret offset) the steps between successive choices vary,
 *           as with Linux's small random increments, so one observed port
 *           does not give away the next. Ports are shared across destinations
 *           since issue 12 (test_H10_ports_shared.c). */
#include <math.h>
#include "check.h"
#include "rawpeer.h"

#define N 4000

static int cmp_u32(const void *a, const void *b)
{
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static void isn_and_ports_unpredictable(void)
{
  struct rp r;
  rp_init(&r, NULL, 31);
  static uint32_t isn[N], sorted[N], port[N];
  static int fds[N];
  const struct ustcp_config *cfg = ustcp_get_config(r.s);
  for (int i = 0; i < N; i++) {
    rp_advance(&r, 1000 + (uint64_t)(i % 7) * 13);       /* time moves between connects */
    rp_clear(&r);
    fds[i] = ustcp_socket(r.s);
    struct ustcp_addr to = {RP_PEER_IP, (uint16_t)(1000 + i)};
    CHECK_EQ(ustcp_connect(r.s, fds[i], &to), -EINPROGRESS);
    struct tcp_packet p;
    memset(&p, 0, sizeof p);
    CHECK(rp_last(&r, &p) && p.tcp.flags == TCP_SYN);
    isn[i] = p.tcp.seq;
    port[i] = p.tcp.src_port;
  }
  /* ISNs: unique. */
  memcpy(sorted, isn, sizeof isn);
  qsort(sorted, N, sizeof sorted[0], cmp_u32);
  int dup = 0;
  for (int i = 1; i < N; i++) dup += sorted[i] == sorted[i - 1];
  CHECK_EQ(dup, 0);
  /* Differences between consecutive ISNs: not constant, not few. */
  static uint32_t diff[N];
  for (int i = 1; i < N; i++) diff[i - 1] = isn[i] - isn[i - 1];
  qsort(diff, N - 1, sizeof diff[0], cmp_u32);
  int distinct = 1;
  for (int i = 1; i < N - 1; i++) distinct += diff[i] != diff[i - 1];
  CHECK(distinct > N * 9 / 10);
  /* Bits balanced. */
  int worst = 50;
  for (int b = 0; b < 32; b++) {
    int ones = 0;
    for (int i = 0; i < N; i++) ones += (isn[i] >> b) & 1;
    int pct = ones * 100 / N;
    if (abs(pct - 50) > abs(worst - 50)) worst = pct;
    CHECK(pct >= 40 && pct <= 60);
  }
  /* Ports: in range, unique while open, not sequential, spread. */
  int seq_next = 0, in_range = 1;
  int bins[10] = {0};
  uint32_t span = (uint32_t)cfg->port_range_hi - cfg->port_range_lo + 1;
  for (int i = 0; i < N; i++) {
    if (port[i] < cfg->port_range_lo || port[i] > cfg->port_range_hi) in_range = 0;
    if (i && port[i] == port[i - 1] + 1) seq_next++;
    bins[(port[i] - cfg->port_range_lo) * 10 / span]++;
  }
  CHECK(in_range);
  CHECK(seq_next < N / 100);
  memcpy(sorted, port, sizeof port);
  qsort(sorted, N, sizeof sorted[0], cmp_u32);
  dup = 0;
  for (int i = 1; i < N; i++) dup += sorted[i] == sorted[i - 1];
  /* Different destinations may share a port; as often as independent random
   * choices would (birthday bound N^2 / 2span, about 283 here), not more: a
   * weak keyed offset would cluster them. */
  double expect = (double)N * N / (2.0 * span);
  CHECK(dup < 2 * expect);
  for (int b = 0; b < 10; b++) CHECK(bins[b] >= N * 5 / 100 && bins[b] <= N * 15 / 100);
  printf("%d connections: %d distinct ISN deltas, worst ISN bit %d%% ones; ports: %d sequential, "
         "tenths of the range %d..%d\n", N, distinct, worst, seq_next, bins[0], bins[9]);
  for (int i = 0; i < N; i++) ustcp_close(r.s, fds[i]);
  rp_free(&r);
}

/* 200 connections to one destination: the steps between successive ports are
 * not constant (at least 5 different step sizes), all ports distinct. */
static void ports_to_one_destination_vary(void)
{
  struct rp r;
  rp_init(&r, NULL, 32);
  enum { M = 200 };
  static int fds[M];
  static uint32_t port[M];
  for (int i = 0; i < M; i++) {
    rp_clear(&r);
    fds[i] = ustcp_socket(r.s);
    struct ustcp_addr to = {RP_PEER_IP, 443};
    CHECK_EQ(ustcp_connect(r.s, fds[i], &to), -EINPROGRESS);
    struct tcp_packet p;
    memset(&p, 0, sizeof p);
    CHECK(rp_last(&r, &p) && p.tcp.flags == TCP_SYN);
    port[i] = p.tcp.src_port;
  }
  int seen[16] = {0}, kinds = 0, dup = 0;
  for (int i = 1; i < M; i++) {
    uint32_t step = (port[i] - port[i - 1]) & 0xffff;
    if (step < 16 && !seen[step]++) kinds++;
    for (int j = 0; j < i; j++) dup += port[j] == port[i];
  }
  printf("%d ports to one destination: %d different small steps\n", M, kinds);
  CHECK_EQ(dup, 0);
  CHECK(kinds >= 5);
  for (int i = 0; i < M; i++) ustcp_close(r.s, fds[i]);
  rp_free(&r);
}

static uint32_t syn_isn(uint64_t seed, uint64_t at_us, uint16_t lport)
{
  struct rp r;
  rp_init(&r, NULL, seed);
  rp_advance(&r, at_us);
  int fd = ustcp_socket(r.s);
  struct ustcp_addr me = {0, lport};
  ustcp_bind(r.s, fd, &me);
  struct ustcp_addr to = {RP_PEER_IP, 80};
  ustcp_connect(r.s, fd, &to);
  struct tcp_packet p;
  uint32_t isn = rp_last(&r, &p) ? p.tcp.seq : 0;
  ustcp_close(r.s, fd);
  rp_free(&r);
  return isn;
}

static void isn_keyed_by_secret_and_clocked(void)
{
  /* Same 4-tuple, same time, different secrets (seeds): different ISNs. */
  uint32_t a = syn_isn(1, 5 * USTCP_SEC, 50000);
  uint32_t b = syn_isn(2, 5 * USTCP_SEC, 50000);
  CHECK(a != b);
  /* Same secret and 4-tuple: the ISN advances with time (4 us ticks), so a
   * later incarnation starts beyond the earlier one's sequence space. */
  uint32_t t1 = syn_isn(3, 5 * USTCP_SEC, 50000);
  uint32_t t2 = syn_isn(3, 65 * USTCP_SEC, 50000);
  CHECK_EQ(t2 - t1, (uint32_t)(60 * USTCP_SEC / 4));
}

int main(void)
{
  RUN(isn_and_ports_unpredictable);
  RUN(isn_keyed_by_secret_and_clocked);
  RUN(ports_to_one_destination_vary);
  return check_report();
}
