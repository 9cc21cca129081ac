/* The simulated network: exact virtual times for delay and bandwidth, the queue
 * limit, routing, reproducible traces, fault probabilities within statistical
 * bounds, corruption caught by checksums, reordering, link outages, drop rules,
 * host timers interleaved with arrivals, and re-entrant sends. */
#include "check.h"
#include "link/sim.h"
#include "wire/wire.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define ADDR_A 0x0a000001u /* 10.0.0.1 */
#define ADDR_B 0x0a000002u
#define ADDR_C 0x0a000003u
#define MAX_LOG 20000

/* What a host saw: arrival time and an id (the TCP sequence number). */
struct host_log {
  size_t n;
  uint64_t at_us[MAX_LOG];
  uint32_t seq[MAX_LOG];
  size_t bad_decode;  /* deliveries that failed tcp_packet_decode */
};

static void log_deliver(void *ctx, const uint8_t *pkt, size_t len, uint64_t now_us)
{
  struct host_log *l = ctx;
  struct tcp_packet tp;
  if (tcp_packet_decode(pkt, len, &tp) != WIRE_OK) {
    l->bad_decode++;
    return;
  }
  if (l->n < MAX_LOG) {
    l->at_us[l->n] = now_us;
    l->seq[l->n] = tp.tcp.seq;
    l->n++;
  }
}

static const struct sim_host_ops log_ops = {.deliver = log_deliver};

/* A TCP/IPv4 packet with the given flags, sequence number and payload size. */
static size_t mkpkt(uint8_t *buf, uint32_t src, uint32_t dst, uint8_t flags, uint32_t seq,
                    size_t plen)
{
  uint8_t payload[1500];
  for (size_t i = 0; i < plen && i < sizeof payload; i++)
    payload[i] = (uint8_t)(seq * 7 + i);
  struct tcp_hdr h = {.src_port = 40000, .dst_port = 80, .seq = seq, .ack = 1,
                      .flags = flags, .window = 65535};
  int n = tcp_packet_encode(&h, plen ? payload : NULL, plen, src, dst, (uint16_t)seq,
                            buf, SIM_MAX_PACKET);
  CHECK(n > 0);
  return n > 0 ? (size_t)n : 0;
}

static void send_seg(struct sim_net *net, int from, uint32_t src, uint32_t dst, uint8_t flags,
                     uint32_t seq, size_t plen)
{
  uint8_t buf[2048];
  size_t n = mkpkt(buf, src, dst, flags, seq, plen);
  CHECK_EQ(sim_send(net, from, buf, n), 0);
}

/* Two hosts a and b (ids 0, 1) logging into la and lb. */
static struct sim_net *two_hosts(uint64_t seed, struct host_log *la, struct host_log *lb)
{
  struct sim_net *net = sim_new(seed);
  memset(la, 0, sizeof *la);
  memset(lb, 0, sizeof *lb);
  CHECK_EQ(sim_add_host(net, "a", ADDR_A, &log_ops, la), 0);
  CHECK_EQ(sim_add_host(net, "b", ADDR_B, &log_ops, lb), 1);
  return net;
}

static struct host_log la, lb, lc;

static void test_delay(void)
{
  struct sim_net *net = two_hosts(1, &la, &lb);
  struct sim_link_cfg cfg = {.delay_us = 5000};
  sim_set_link(net, 0, 1, &cfg);
  CHECK_EQ(sim_now(net), 0);
  CHECK_EQ(sim_next_event(net), SIM_NO_DEADLINE);
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_SYN, 1, 0);
  CHECK_EQ(sim_in_flight(net), 1);
  CHECK_EQ(sim_next_event(net), 5000);
  sim_run_until(net, 1000);
  CHECK_EQ(sim_now(net), 1000);
  CHECK_EQ(lb.n, 0);
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, 2, 10);
  sim_run_until(net, 10000);
  CHECK_EQ(sim_now(net), 10000);
  CHECK_EQ(lb.n, 2);
  CHECK_EQ(lb.at_us[0], 5000);
  CHECK_EQ(lb.at_us[1], 6000);
  CHECK_EQ(lb.seq[0], 1);
  CHECK_EQ(lb.seq[1], 2);
  /* The reverse direction was not configured: zero delay. */
  send_seg(net, 1, ADDR_B, ADDR_A, TCP_ACK, 3, 0);
  CHECK(sim_step(net, 20000));
  CHECK_EQ(la.n, 1);
  CHECK_EQ(la.at_us[0], 10000);
  CHECK(!sim_step(net, 20000));
  CHECK_EQ(sim_now(net), 20000);
  CHECK_EQ(sim_in_flight(net), 0);
  struct sim_stats st;
  sim_get_stats(net, &st);
  CHECK_EQ(st.sent, 3);
  CHECK_EQ(st.delivered, 3);
  sim_free(net);
}

static void test_bandwidth(void)
{
  struct sim_net *net = two_hosts(1, &la, &lb);
  /* 8000 b/s = 1 byte per ms; 100-byte packets take 100 ms each. */
  struct sim_link_cfg cfg = {.delay_us = 1000, .bandwidth_bps = 8000};
  sim_set_link(net, 0, 1, &cfg);
  for (uint32_t i = 0; i < 3; i++)
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 60); /* 40 + 60 = 100 bytes */
  sim_run_until(net, 1000000);
  CHECK_EQ(lb.n, 3);
  CHECK_EQ(lb.at_us[0], 101000);
  CHECK_EQ(lb.at_us[1], 201000);
  CHECK_EQ(lb.at_us[2], 301000);
  /* An idle link starts serialising at the send time, not at busy_until. */
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, 9, 60);
  sim_run_until(net, 2000000);
  CHECK_EQ(lb.at_us[3], 1101000);
  sim_free(net);

  /* 1 Gb/s, 100 bytes = 0.8 us: serialisation accumulates in ns, no rounding drift. */
  net = two_hosts(1, &la, &lb);
  cfg = (struct sim_link_cfg){.bandwidth_bps = 1000000000};
  sim_set_link(net, 0, 1, &cfg);
  for (uint32_t i = 0; i < 10; i++)
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 60);
  sim_run_until(net, 100);
  CHECK_EQ(lb.n, 10);
  CHECK_EQ(lb.at_us[0], 1);
  CHECK_EQ(lb.at_us[4], 4);
  CHECK_EQ(lb.at_us[9], 8);
  sim_free(net);
}

static void test_queue_limit(void)
{
  struct sim_net *net = two_hosts(1, &la, &lb);
  struct sim_link_cfg cfg = {.bandwidth_bps = 8000, .queue_limit = 3};
  sim_set_link(net, 0, 1, &cfg);
  for (uint32_t i = 1; i <= 5; i++)
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 60);
  struct sim_stats st;
  sim_get_stats(net, &st);
  CHECK_EQ(st.dropped_queue, 2);
  CHECK_EQ(sim_in_flight(net), 3);
  /* At 100 ms the first packet has departed: room for one more. */
  sim_run_until(net, 100000);
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, 6, 60);
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, 7, 60);
  sim_get_stats(net, &st);
  CHECK_EQ(st.dropped_queue, 3);
  sim_run_until(net, 1000000);
  CHECK_EQ(lb.n, 4);
  CHECK_EQ(lb.seq[0], 1);
  CHECK_EQ(lb.seq[2], 3);
  CHECK_EQ(lb.seq[3], 6);
  CHECK_EQ(lb.at_us[3], 400000);
  sim_free(net);
}

struct tap_rec {
  int from, to;
  enum sim_fate fate;
  uint64_t at_us;
  uint64_t hash;
};
struct tap_log {
  size_t n;
  struct tap_rec r[4 * MAX_LOG];
};

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

static void tap_record(void *ctx, int from, int to, enum sim_fate fate, const uint8_t *pkt,
                       size_t len, uint64_t now_us)
{
  struct tap_log *t = ctx;
  if (t->n < sizeof t->r / sizeof t->r[0])
    t->r[t->n++] = (struct tap_rec){from, to, fate, now_us, fnv1a(pkt, len)};
}

static void test_routing(void)
{
  static struct tap_log t;
  memset(&t, 0, sizeof t);
  struct sim_net *net = two_hosts(1, &la, &lb);
  memset(&lc, 0, sizeof lc);
  CHECK_EQ(sim_add_host(net, "c", ADDR_C, &log_ops, &lc), 2);
  CHECK_EQ(sim_add_host(net, "dup", ADDR_C, &log_ops, &lc), -1); /* address taken */
  CHECK_EQ(sim_host_by_name(net, "c"), 2);
  CHECK_EQ(sim_host_by_name(net, "nope"), -1);
  CHECK_STR(sim_host_name(net, 1), "b");
  CHECK_STR(sim_host_name(net, -1), "?");
  sim_set_tap(net, tap_record, &t);
  send_seg(net, 0, ADDR_A, ADDR_C, TCP_SYN, 1, 0);
  send_seg(net, 1, ADDR_B, ADDR_A, TCP_SYN, 2, 0);
  send_seg(net, 0, ADDR_A, 0x0a0000ffu, TCP_SYN, 3, 0); /* nobody */
  uint8_t junk[10] = {0x45};
  CHECK_EQ(sim_send(net, 0, junk, sizeof junk), -1);
  sim_run_until(net, 10);
  CHECK_EQ(lc.n, 1);
  CHECK_EQ(lc.seq[0], 1);
  CHECK_EQ(la.n, 1);
  CHECK_EQ(la.seq[0], 2);
  CHECK_EQ(lb.n, 0);
  struct sim_stats st;
  sim_get_stats(net, &st);
  CHECK_EQ(st.dropped_noroute, 1);
  CHECK_EQ(st.sent, 3);
  /* Tap: sent(a->c), sent(b->a), sent(a->?), noroute, delivered x2. */
  CHECK_EQ(t.n, 6);
  CHECK_EQ(t.r[0].fate, SIM_SENT);
  CHECK_EQ(t.r[0].to, 2);
  CHECK_EQ(t.r[2].to, -1);
  CHECK_EQ(t.r[3].fate, SIM_DROP_NOROUTE);
  CHECK_EQ(t.r[4].fate, SIM_DELIVERED);
  CHECK_EQ(t.r[4].to, 2);
  CHECK_STR(sim_fate_str(SIM_DROP_NOROUTE), "drop-noroute");
  sim_free(net);
}

/* Many packets both ways through every fault at once; the trace goes to t. */
static void faulty_run(uint64_t seed, struct tap_log *t)
{
  memset(t, 0, sizeof *t);
  struct sim_net *net = two_hosts(seed, &la, &lb);
  struct sim_link_cfg cfg = {.delay_us = 2000, .jitter_us = 500, .bandwidth_bps = 10000000,
                             .queue_limit = 50, .loss = 0.1, .duplicate = 0.1,
                             .reorder = 0.1, .corrupt = 0.1};
  sim_set_all_links(net, &cfg);
  sim_set_tap(net, tap_record, t);
  for (uint32_t i = 0; i < 500; i++) {
    send_seg(net, (int)(i & 1), i & 1 ? ADDR_B : ADDR_A, i & 1 ? ADDR_A : ADDR_B, TCP_ACK, i,
             i % 700);
    sim_run_until(net, sim_now(net) + 100);
  }
  sim_run_until(net, sim_now(net) + 1000000);
  sim_free(net);
}

static void test_determinism(void)
{
  static struct tap_log t1, t2, t3;
  faulty_run(42, &t1);
  faulty_run(42, &t2);
  faulty_run(43, &t3);
  CHECK(t1.n > 1000);
  CHECK_EQ(t1.n, t2.n);
  CHECK(memcmp(t1.r, t2.r, t1.n * sizeof t1.r[0]) == 0);
  /* Every fate showed up, so the comparison covered them. */
  unsigned seen = 0;
  for (size_t i = 0; i < t1.n; i++)
    seen |= 1u << t1.r[i].fate;
  CHECK(seen & (1u << SIM_DROP_LOSS));
  CHECK(seen & (1u << SIM_DUPLICATED));
  CHECK(seen & (1u << SIM_CORRUPTED));
  CHECK(seen & (1u << SIM_DELIVERED));
  CHECK(t1.n != t3.n || memcmp(t1.r, t3.r, t1.n * sizeof t1.r[0]) != 0);

  /* The generator: same seed, same stream; different seeds differ. */
  struct sim_net *a = sim_new(7), *b = sim_new(7), *c = sim_new(8);
  bool same = true, differ = false;
  for (int i = 0; i < 100; i++) {
    uint64_t x = sim_rand(a), y = sim_rand(b), z = sim_rand(c);
    same = same && x == y;
    differ = differ || x != z;
  }
  CHECK(same);
  CHECK(differ);
  sim_free(a);
  sim_free(b);
  sim_free(c);
}

/* N packets through a link with cfg; returns the stats. */
static struct sim_stats blast(const struct sim_link_cfg *cfg, unsigned n, uint64_t seed)
{
  struct sim_net *net = two_hosts(seed, &la, &lb);
  sim_set_link(net, 0, 1, cfg);
  for (unsigned i = 0; i < n; i++) {
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 20);
    if (i % 100 == 99)
      sim_run_until(net, sim_now(net) + 100000);
  }
  sim_run_until(net, sim_now(net) + 100000);
  struct sim_stats st;
  sim_get_stats(net, &st);
  sim_free(net);
  return st;
}

static bool within_5_sigma(uint64_t k, unsigned n, double p)
{
  double mean = n * p, sd = sqrt(n * p * (1 - p));
  bool ok = fabs((double)k - mean) <= 5 * sd;
  if (!ok)
    fprintf(stderr, "count %llu outside %g +- %g\n", (unsigned long long)k, mean, 5 * sd);
  return ok;
}

/* smoltcp's netsim model (tests/netsim.rs, struct Wire): each direction draws its
 * losses from its own generator, so which packets of the data direction are lost
 * does not depend on how many ACKs the other direction carries. With
 * sim_set_link_seed, the packets A -> B lose the same positions whatever B sends,
 * whatever the network's own seed, and the same link seed gives the same pattern. */
static size_t lossy_ab_run(uint64_t net_seed, uint64_t ab_seed, unsigned ba_per_ab,
                           uint32_t *delivered, size_t cap)
{
  struct sim_net *net = two_hosts(net_seed, &la, &lb);
  struct sim_link_cfg cfg = {.delay_us = 100, .loss = 0.3};
  sim_set_all_links(net, &cfg);
  sim_set_link_seed(net, 0, 1, ab_seed);
  sim_set_link_seed(net, 1, 0, ab_seed + 1);
  for (uint32_t i = 0; i < 2000; i++) {
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 20);
    for (unsigned k = 0; k < ba_per_ab; k++)
      send_seg(net, 1, ADDR_B, ADDR_A, TCP_ACK, i, 0);
    if (i % 100 == 99)
      sim_run_until(net, sim_now(net) + 1000);
  }
  sim_run_until(net, sim_now(net) + 1000);
  size_t n = lb.n < cap ? lb.n : cap;
  memcpy(delivered, lb.seq, n * sizeof *delivered);
  sim_free(net);
  return n;
}

static void test_link_seed_independent_streams(void)
{
  static uint32_t r1[MAX_LOG], r2[MAX_LOG], r3[MAX_LOG], r4[MAX_LOG];
  size_t n1 = lossy_ab_run(1, 100, 0, r1, MAX_LOG);
  size_t n2 = lossy_ab_run(1, 100, 3, r2, MAX_LOG);   /* other traffic back */
  size_t n3 = lossy_ab_run(99, 100, 1, r3, MAX_LOG);  /* other network seed */
  size_t n4 = lossy_ab_run(1, 200, 0, r4, MAX_LOG);   /* other link seed */
  CHECK(within_5_sigma(2000 - n1, 2000, 0.3));
  CHECK_EQ(n1, n2);
  CHECK(n1 == n2 && memcmp(r1, r2, n1 * sizeof r1[0]) == 0);
  CHECK_EQ(n1, n3);
  CHECK(n1 == n3 && memcmp(r1, r3, n1 * sizeof r1[0]) == 0);
  CHECK(n1 != n4 || memcmp(r1, r4, n1 * sizeof r1[0]) != 0);
}

/* smoltcp's Bottleneck: a drop-tail buffer counted in bytes (the bytes not yet
 * serialised at the link rate); a packet that would take it past the capacity is
 * dropped. 8000 b/s = 1 byte/ms, 100-byte packets, 250-byte buffer. */
static void test_queue_limit_bytes(void)
{
  struct sim_net *net = two_hosts(1, &la, &lb);
  struct sim_link_cfg cfg = {.bandwidth_bps = 8000, .queue_limit_bytes = 250};
  sim_set_link(net, 0, 1, &cfg);
  for (uint32_t i = 1; i <= 4; i++)   /* 0 + 100, 100 + 100 fit; 200 + 100 does not */
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 60);
  struct sim_stats st;
  sim_get_stats(net, &st);
  CHECK_EQ(st.dropped_queue, 2);
  /* At 150 ms 50 bytes remain to serialise: 50 + 100 fits, 150 + 100 = 250 too,
   * 250 + 100 does not. */
  sim_run_until(net, 150000);
  for (uint32_t i = 5; i <= 7; i++)
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 60);
  sim_get_stats(net, &st);
  CHECK_EQ(st.dropped_queue, 3);
  sim_run_until(net, 1000000);
  CHECK_EQ(lb.n, 4);
  CHECK_EQ(lb.seq[0], 1);
  CHECK_EQ(lb.seq[1], 2);
  CHECK_EQ(lb.seq[2], 5);
  CHECK_EQ(lb.seq[3], 6);
  CHECK_EQ(lb.at_us[2], 300000);
  CHECK_EQ(lb.at_us[3], 400000);
  sim_free(net);
}

static void test_fault_rates(void)
{
  const unsigned n = 10000;
  struct sim_link_cfg cfg = {.delay_us = 100, .loss = 0.1};
  struct sim_stats st = blast(&cfg, n, 3);
  CHECK(within_5_sigma(st.dropped_loss, n, 0.1));
  CHECK_EQ(st.delivered + st.dropped_loss, n);
  CHECK_EQ(lb.n, st.delivered);

  cfg = (struct sim_link_cfg){.delay_us = 100, .duplicate = 0.1};
  st = blast(&cfg, n, 4);
  CHECK(within_5_sigma(st.duplicated, n, 0.1));
  CHECK_EQ(st.delivered, n + st.duplicated);
  CHECK_EQ(lb.n, n + st.duplicated);

  cfg = (struct sim_link_cfg){.delay_us = 100, .corrupt = 0.1};
  st = blast(&cfg, n, 5);
  CHECK(within_5_sigma(st.corrupted, n, 0.1));
  /* Every corrupted packet, and only those, fails the receiver's checksums. */
  CHECK_EQ(lb.bad_decode, st.corrupted);
  CHECK_EQ(lb.n + lb.bad_decode, n);

  /* p = 0 and p = 1 are exact. */
  cfg = (struct sim_link_cfg){.loss = 1.0};
  st = blast(&cfg, 100, 6);
  CHECK_EQ(st.dropped_loss, 100);
  CHECK_EQ(st.delivered, 0);
}

static void test_corrupt_always_detected(void)
{
  struct sim_link_cfg cfg = {.corrupt = 1.0};
  struct sim_stats st = blast(&cfg, 3000, 9);
  CHECK_EQ(st.corrupted, 3000);
  CHECK_EQ(lb.bad_decode, 3000);
  CHECK_EQ(lb.n, 0);
}

static void test_reorder(void)
{
  struct sim_net *net = two_hosts(11, &la, &lb);
  struct sim_link_cfg cfg = {.delay_us = 1000, .reorder = 0.3};
  sim_set_link(net, 0, 1, &cfg);
  for (uint32_t i = 0; i < 100; i++) {
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 10);
    sim_run_until(net, sim_now(net) + 10);
  }
  sim_run_until(net, 1000000);
  CHECK_EQ(lb.n, 100);
  size_t inversions = 0;
  for (size_t i = 1; i < lb.n; i++)
    inversions += lb.seq[i] < lb.seq[i - 1];
  CHECK(inversions > 0);
  struct sim_stats st;
  sim_get_stats(net, &st);
  CHECK(st.reordered > 0);
  /* A reordered packet arrives delay + 2*delay + 1 ms after its send time. */
  for (size_t i = 0; i < lb.n; i++) {
    uint64_t sent = lb.seq[i] * 10u, late = lb.at_us[i] - sent;
    CHECK(late == 1000 || late == 1000 + 3000);
  }
  sim_free(net);

  /* An explicit reorder delay, always applied. */
  net = two_hosts(11, &la, &lb);
  cfg = (struct sim_link_cfg){.delay_us = 1000, .reorder = 1.0, .reorder_delay_us = 250};
  sim_set_link(net, 0, 1, &cfg);
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, 1, 0);
  sim_run_until(net, 10000);
  CHECK_EQ(lb.n, 1);
  CHECK_EQ(lb.at_us[0], 1250);
  sim_free(net);
}

static void test_jitter_bounds(void)
{
  struct sim_net *net = two_hosts(12, &la, &lb);
  struct sim_link_cfg cfg = {.delay_us = 1000, .jitter_us = 100};
  sim_set_link(net, 0, 1, &cfg);
  for (uint32_t i = 0; i < 1000; i++)
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 0);
  sim_run_until(net, 10000);
  CHECK_EQ(lb.n, 1000);
  uint64_t lo = UINT64_MAX, hi = 0;
  for (size_t i = 0; i < lb.n; i++) {
    lo = lb.at_us[i] < lo ? lb.at_us[i] : lo;
    hi = lb.at_us[i] > hi ? lb.at_us[i] : hi;
  }
  CHECK(lo >= 1000 && lo <= 1005);
  CHECK(hi <= 1100 && hi >= 1095);
  sim_free(net);
}

static void test_link_down(void)
{
  struct sim_net *net = two_hosts(1, &la, &lb);
  struct sim_link_cfg *l = sim_link(net, 0, 1);
  CHECK(l != NULL);
  l->delay_us = 100;
  l->down = true;
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_SYN, 1, 0);
  send_seg(net, 1, ADDR_B, ADDR_A, TCP_SYN, 2, 0); /* the other direction is up */
  sim_run_until(net, 1000);
  CHECK_EQ(lb.n, 0);
  CHECK_EQ(la.n, 1);
  l->down = false;
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_SYN, 3, 0);
  sim_run_until(net, 2000);
  CHECK_EQ(lb.n, 1);
  CHECK_EQ(lb.seq[0], 3);
  CHECK_EQ(lb.at_us[0], 1100);
  struct sim_stats st;
  sim_get_stats(net, &st);
  CHECK_EQ(st.dropped_down, 1);
  sim_free(net);
}

static void test_seg_classes(void)
{
  uint8_t p[2048];
  size_t n = mkpkt(p, ADDR_A, ADDR_B, TCP_SYN, 1, 0);
  CHECK(sim_seg_matches(p, n, SIM_SEG_SYN));
  CHECK(!sim_seg_matches(p, n, SIM_SEG_SYNACK));
  CHECK(!sim_seg_matches(p, n, SIM_SEG_ACK));
  CHECK(sim_seg_matches(p, n, SIM_SEG_ANY));
  n = mkpkt(p, ADDR_A, ADDR_B, TCP_SYN | TCP_ACK, 1, 0);
  CHECK(sim_seg_matches(p, n, SIM_SEG_SYNACK));
  CHECK(!sim_seg_matches(p, n, SIM_SEG_SYN));
  CHECK(!sim_seg_matches(p, n, SIM_SEG_ACK));
  n = mkpkt(p, ADDR_A, ADDR_B, TCP_ACK | TCP_PSH, 1, 0);
  CHECK(sim_seg_matches(p, n, SIM_SEG_ACK));
  CHECK(!sim_seg_matches(p, n, SIM_SEG_DATA));
  n = mkpkt(p, ADDR_A, ADDR_B, TCP_ACK | TCP_PSH, 1, 5);
  CHECK(!sim_seg_matches(p, n, SIM_SEG_ACK));
  CHECK(sim_seg_matches(p, n, SIM_SEG_DATA));
  n = mkpkt(p, ADDR_A, ADDR_B, TCP_ACK | TCP_FIN, 1, 5);
  CHECK(sim_seg_matches(p, n, SIM_SEG_DATA));
  CHECK(sim_seg_matches(p, n, SIM_SEG_FIN));
  CHECK(!sim_seg_matches(p, n, SIM_SEG_ACK));
  n = mkpkt(p, ADDR_A, ADDR_B, TCP_RST | TCP_ACK, 1, 0);
  CHECK(sim_seg_matches(p, n, SIM_SEG_RST));
  CHECK(!sim_seg_matches(p, n, SIM_SEG_ACK));
  CHECK(!sim_seg_matches(p, 10, SIM_SEG_ANY)); /* not a whole IPv4 header */
}

static void test_parse_rules(void)
{
  struct sim_net *net = two_hosts(1, &la, &lb);
  struct sim_drop_rule r;
  char err[200];
  CHECK_EQ(sim_parse_drop_rule(net, "fin", &r, err, sizeof err), 0);
  CHECK_EQ(r.from_host, -1);
  CHECK_EQ(r.kind, SIM_SEG_FIN);
  CHECK_EQ(r.nth, 1);
  CHECK_EQ(r.count, 1);
  CHECK_EQ(sim_parse_drop_rule(net, "b:fin#1", &r, err, sizeof err), 0);
  CHECK_EQ(r.from_host, 1);
  CHECK_EQ(sim_parse_drop_rule(net, "syn-ack#2", &r, err, sizeof err), 0);
  CHECK_EQ(r.kind, SIM_SEG_SYNACK);
  CHECK_EQ(r.nth, 2);
  CHECK_EQ(sim_parse_drop_rule(net, "data#3x2", &r, err, sizeof err), 0);
  CHECK_EQ(r.kind, SIM_SEG_DATA);
  CHECK_EQ(r.nth, 3);
  CHECK_EQ(r.count, 2);
  CHECK_EQ(sim_parse_drop_rule(net, "syn+", &r, err, sizeof err), 0);
  CHECK_EQ(r.kind, SIM_SEG_SYN);
  CHECK_EQ(r.nth, 1);
  CHECK_EQ(r.count, 0);
  CHECK_EQ(sim_parse_drop_rule(net, "a:ack#4+", &r, err, sizeof err), 0);
  CHECK_EQ(r.from_host, 0);
  CHECK_EQ(r.kind, SIM_SEG_ACK);
  CHECK_EQ(r.nth, 4);
  CHECK_EQ(r.count, 0);
  CHECK_EQ(sim_parse_drop_rule(net, "datax3", &r, err, sizeof err), 0);
  CHECK_EQ(r.count, 3);
  CHECK_EQ(sim_parse_drop_rule(net, "rst", &r, NULL, 0), 0);
  CHECK_EQ(sim_parse_drop_rule(net, "any#5", &r, NULL, 0), 0);

  CHECK_EQ(sim_parse_drop_rule(net, "zed:fin", &r, err, sizeof err), -1);
  CHECK(strstr(err, "unknown host 'zed'") != NULL);
  CHECK_EQ(sim_parse_drop_rule(net, "fun", &r, err, sizeof err), -1);
  CHECK(strstr(err, "unknown segment kind 'fun'") != NULL);
  CHECK_EQ(sim_parse_drop_rule(net, "fin#0", &r, err, sizeof err), -1);
  CHECK(strstr(err, "bad number") != NULL);
  CHECK_EQ(sim_parse_drop_rule(net, "fin#", &r, err, sizeof err), -1);
  CHECK_EQ(sim_parse_drop_rule(net, "fin#x", &r, err, sizeof err), -1);
  CHECK_EQ(sim_parse_drop_rule(net, "finx0", &r, err, sizeof err), -1);
  CHECK(strstr(err, "bad count") != NULL);
  CHECK_EQ(sim_parse_drop_rule(net, "fin#99999999999", &r, err, sizeof err), -1);
  CHECK_EQ(sim_parse_drop_rule(net, "fin#2y", &r, err, sizeof err), -1);
  CHECK(strstr(err, "unexpected") != NULL);
  CHECK_EQ(sim_parse_drop_rule(net, "", &r, err, sizeof err), -1);
  CHECK_EQ(sim_parse_drop_rule(net, ":fin", &r, err, sizeof err), -1);
  CHECK_EQ(sim_parse_drop_rule(NULL, "a:fin", &r, err, sizeof err), -1);
  CHECK(strchr(err, '\n') == NULL);
  sim_free(net);
}

/* Sends the segments (from, flags, seq, payload) through a fresh net with one rule;
 * returns the sequence numbers delivered, in order, in got (count returned). */
struct seg_spec {
  int from;
  uint8_t flags;
  uint32_t seq;
  size_t plen;
};
static size_t run_rule(const char *spec, const struct seg_spec *segs, size_t nsegs,
                       uint32_t *got)
{
  struct sim_net *net = two_hosts(1, &la, &lb);
  struct sim_drop_rule r;
  char err[200];
  CHECK_EQ(sim_parse_drop_rule(net, spec, &r, err, sizeof err), 0);
  CHECK_EQ(sim_add_drop_rule(net, &r), 0);
  for (size_t i = 0; i < nsegs; i++) {
    int from = segs[i].from;
    send_seg(net, from, from ? ADDR_B : ADDR_A, from ? ADDR_A : ADDR_B, segs[i].flags,
             segs[i].seq, segs[i].plen);
    sim_run_until(net, sim_now(net) + 10); /* keeps arrival order = send order */
  }
  sim_run_until(net, sim_now(net) + 10);
  size_t n = 0;
  /* Merge both logs by time. */
  size_t i = 0, j = 0;
  while (i < la.n || j < lb.n) {
    if (j >= lb.n || (i < la.n && la.at_us[i] <= lb.at_us[j]))
      got[n++] = la.seq[i++];
    else
      got[n++] = lb.seq[j++];
  }
  struct sim_stats st;
  sim_get_stats(net, &st);
  CHECK_EQ(st.dropped_rule + n, nsegs);
  sim_free(net);
  return n;
}

static void test_drop_rules(void)
{
  uint32_t got[64];
  const uint8_t FA = TCP_FIN | TCP_ACK;
  /* a's FIN (1), b's FIN (2), a's second FIN (3): "a:fin#1" drops only 1. */
  static const struct seg_spec fins[] = {
    {0, TCP_ACK, 10, 5}, {0, FA, 1, 0}, {1, FA, 2, 0}, {0, FA, 3, 0}, {1, TCP_ACK, 11, 0}};
  size_t n = run_rule("a:fin#1", fins, 5, got);
  CHECK_EQ(n, 4);
  CHECK_EQ(got[0], 10);
  CHECK_EQ(got[1], 2);
  CHECK_EQ(got[2], 3);
  CHECK_EQ(got[3], 11);
  n = run_rule("fin#2", fins, 5, got); /* any host: b's FIN is the 2nd */
  CHECK_EQ(n, 4);
  CHECK_EQ(got[1], 1);
  CHECK_EQ(got[2], 3);

  static const struct seg_spec synacks[] = {
    {0, TCP_SYN, 1, 0}, {1, TCP_SYN | TCP_ACK, 2, 0}, {0, TCP_SYN, 3, 0},
    {1, TCP_SYN | TCP_ACK, 4, 0}, {1, TCP_SYN | TCP_ACK, 5, 0}};
  n = run_rule("syn-ack#2", synacks, 5, got);
  CHECK_EQ(n, 4);
  CHECK_EQ(got[0], 1);
  CHECK_EQ(got[1], 2);
  CHECK_EQ(got[2], 3);
  CHECK_EQ(got[3], 5);
  n = run_rule("syn+", synacks, 5, got);
  CHECK_EQ(n, 3);
  CHECK_EQ(got[0], 2);
  CHECK_EQ(got[1], 4);
  CHECK_EQ(got[2], 5);

  static const struct seg_spec data[] = {
    {0, TCP_ACK, 1, 10}, {0, TCP_ACK, 2, 0}, {0, TCP_ACK, 3, 10}, {0, TCP_ACK, 4, 10},
    {0, TCP_ACK | TCP_PSH, 5, 10}, {0, TCP_ACK, 6, 10}, {0, TCP_ACK, 7, 10}};
  /* data segments are 1,3,4,5,6,7: the 3rd and 4th are 4 and 5. */
  n = run_rule("data#3x2", data, 7, got);
  CHECK_EQ(n, 5);
  CHECK_EQ(got[0], 1);
  CHECK_EQ(got[1], 2);
  CHECK_EQ(got[2], 3);
  CHECK_EQ(got[3], 6);
  CHECK_EQ(got[4], 7);
  n = run_rule("b:data+", data, 7, got); /* b sent none */
  CHECK_EQ(n, 7);
  n = run_rule("ack#2", data, 7, got); /* only one pure ACK: nothing dropped */
  CHECK_EQ(n, 7);

  /* At most 32 rules. */
  struct sim_net *net = two_hosts(1, &la, &lb);
  struct sim_drop_rule r = {.from_host = -1, .kind = SIM_SEG_RST, .nth = 1, .count = 1};
  for (int i = 0; i < 32; i++)
    CHECK_EQ(sim_add_drop_rule(net, &r), 0);
  CHECK_EQ(sim_add_drop_rule(net, &r), -1);
  sim_free(net);
}

/* A host with a list of timer deadlines; it records polls and deliveries in one
 * shared event log to check their interleaving. */
struct event_log {
  size_t n;
  char kind[64];   /* 'p' poll, 'd' deliver */
  int who[64];
  uint64_t at[64];
};
struct timer_host {
  int id;
  struct event_log *log;
  uint64_t deadlines[8];
  size_t ndeadlines, next;
  bool stuck;       /* misbehaves: always returns a deadline in the past */
  unsigned polls;
};

static void el_add(struct event_log *l, char kind, int who, uint64_t at)
{
  if (l->n < 64) {
    l->kind[l->n] = kind;
    l->who[l->n] = who;
    l->at[l->n] = at;
    l->n++;
  }
}

static uint64_t th_deadline(void *ctx)
{
  struct timer_host *h = ctx;
  if (h->stuck)
    return 0;
  return h->next < h->ndeadlines ? h->deadlines[h->next] : SIM_NO_DEADLINE;
}

static void th_poll(void *ctx, uint64_t now_us)
{
  struct timer_host *h = ctx;
  h->polls++;
  el_add(h->log, 'p', h->id, now_us);
  while (h->next < h->ndeadlines && h->deadlines[h->next] <= now_us)
    h->next++;
}

static void th_deliver(void *ctx, const uint8_t *pkt, size_t len, uint64_t now_us)
{
  struct timer_host *h = ctx;
  el_add(h->log, 'd', h->id, now_us);
}

static void test_host_timers(void)
{
  static const struct sim_host_ops ops = {th_deliver, th_deadline, th_poll};
  struct event_log log = {0};
  struct timer_host a = {.id = 0, .log = &log, .deadlines = {500, 1000, 1500}, .ndeadlines = 3};
  struct timer_host b = {.id = 1, .log = &log, .deadlines = {1000, 3000}, .ndeadlines = 2};
  struct sim_net *net = sim_new(1);
  CHECK_EQ(sim_add_host(net, "a", ADDR_A, &ops, &a), 0);
  CHECK_EQ(sim_add_host(net, "b", ADDR_B, &ops, &b), 1);
  struct sim_link_cfg cfg = {.delay_us = 1000};
  sim_set_all_links(net, &cfg);
  CHECK_EQ(sim_next_event(net), 500);
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_SYN, 1, 0);  /* arrives at b at 1000 */
  send_seg(net, 1, ADDR_B, ADDR_A, TCP_SYN, 2, 0);  /* arrives at a at 1000 */
  sim_run_until(net, 2000);
  CHECK_EQ(sim_now(net), 2000);
  /* 500 a-poll; at 1000 timers first (a, then b: lowest id), then the arrivals in
   * send order; 1500 a-poll. b's 3000 is not reached. */
  static const char kinds[] = "pppddp";
  static const int who[] = {0, 0, 1, 1, 0, 0};
  static const uint64_t at[] = {500, 1000, 1000, 1000, 1000, 1500};
  CHECK_EQ(log.n, 6);
  for (size_t i = 0; i < 6 && i < log.n; i++) {
    CHECK_EQ(log.kind[i], kinds[i]);
    CHECK_EQ(log.who[i], who[i]);
    CHECK_EQ(log.at[i], at[i]);
  }
  CHECK_EQ(sim_next_event(net), 3000);
  CHECK(sim_step(net, 5000));
  CHECK_EQ(sim_now(net), 3000);
  CHECK_EQ(b.polls, 2);
  CHECK(!sim_step(net, 5000));
  CHECK_EQ(sim_now(net), 5000);
  sim_free(net);

  /* A host stuck with a deadline in the past does not livelock the sim: it is
   * polled at most once per microsecond. */
  struct event_log log2 = {0};
  struct timer_host s = {.id = 0, .log = &log2, .stuck = true};
  net = sim_new(1);
  CHECK_EQ(sim_add_host(net, "s", ADDR_A, &ops, &s), 0);
  sim_run_until(net, 100);
  CHECK(s.polls >= 100 && s.polls <= 102);
  CHECK_EQ(sim_now(net), 100);
  sim_free(net);
}

/* b answers every packet from a with one packet back (an ACK), from inside deliver;
 * a answers b's until the budget runs out. Many in flight force the heap to grow
 * while a delivery is in progress. */
struct echo_host {
  struct sim_net *net;
  int id;
  uint32_t self, peer;
  unsigned budget, received;
};

static void echo_deliver(void *ctx, const uint8_t *pkt, size_t len, uint64_t now_us)
{
  struct echo_host *h = ctx;
  struct tcp_packet tp;
  CHECK_EQ(tcp_packet_decode(pkt, len, &tp), WIRE_OK);
  h->received++;
  if (h->budget == 0)
    return;
  h->budget--;
  uint8_t out[2048];
  size_t n = mkpkt(out, h->self, h->peer, TCP_ACK, tp.tcp.seq + 1, 0);
  CHECK_EQ(sim_send(h->net, h->id, out, n), 0);
  /* and a second one, so the number in flight grows */
  if (h->budget > 0) {
    h->budget--;
    n = mkpkt(out, h->self, h->peer, TCP_ACK, tp.tcp.seq + 2, 0);
    CHECK_EQ(sim_send(h->net, h->id, out, n), 0);
  }
}

static void test_reentrant_send(void)
{
  static const struct sim_host_ops ops = {.deliver = echo_deliver};
  struct sim_net *net = sim_new(5);
  struct echo_host a = {net, 0, ADDR_A, ADDR_B, 3000, 0};
  struct echo_host b = {net, 1, ADDR_B, ADDR_A, 3000, 0};
  CHECK_EQ(sim_add_host(net, "a", ADDR_A, &ops, &a), 0);
  CHECK_EQ(sim_add_host(net, "b", ADDR_B, &ops, &b), 1);
  struct sim_link_cfg cfg = {.delay_us = 10, .jitter_us = 5};
  sim_set_all_links(net, &cfg);
  send_seg(net, 0, ADDR_A, ADDR_B, TCP_SYN, 1, 0);
  sim_run_until(net, 1000000);
  CHECK_EQ(a.budget, 0);
  CHECK_EQ(b.budget, 0);
  CHECK_EQ(a.received + b.received, 6001);
  CHECK_EQ(sim_in_flight(net), 0);
  struct sim_stats st;
  sim_get_stats(net, &st);
  CHECK_EQ(st.sent, 6001);
  CHECK_EQ(st.delivered, 6001);
  sim_free(net);
}

static void test_pending_freed(void)
{
  /* Packets still in flight at sim_free are released (ASan checks the leak). */
  struct sim_net *net = two_hosts(1, &la, &lb);
  struct sim_link_cfg cfg = {.delay_us = 1000000, .bandwidth_bps = 1000000, .queue_limit = 100};
  sim_set_all_links(net, &cfg);
  for (uint32_t i = 0; i < 50; i++)
    send_seg(net, 0, ADDR_A, ADDR_B, TCP_ACK, i, 100);
  CHECK_EQ(sim_in_flight(net), 50);
  sim_free(net);
  sim_free(NULL);
}

int main(void)
{
  RUN(test_delay);
  RUN(test_bandwidth);
  RUN(test_queue_limit);
  RUN(test_routing);
  RUN(test_determinism);
  RUN(test_fault_rates);
  RUN(test_link_seed_independent_streams);
  RUN(test_queue_limit_bytes);
  RUN(test_corrupt_always_detected);
  RUN(test_reorder);
  RUN(test_jitter_bounds);
  RUN(test_link_down);
  RUN(test_seg_classes);
  RUN(test_parse_rules);
  RUN(test_drop_rules);
  RUN(test_host_timers);
  RUN(test_reentrant_send);
  RUN(test_pending_freed);
  return check_report();
}
