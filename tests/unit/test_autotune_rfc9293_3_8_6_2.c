/* Issue 12 point 1: buffer autotuning with the default configuration.
 *
 * One bulk flow over the simulated network, 1 Gbit/s with 20 ms and with
 * 100 ms round-trip time (no loss, as the issue measured it: the bottleneck
 * queue is unbounded), all in virtual time: the receive buffer follows the rate the
 * application reads (Linux's tcp_rcv_space_adjust, "dynamic right-sizing") and
 * the send buffer grows to hold about two congestion windows (tcp_sndbuf_expand),
 * so the payload delivered in the third second is at least 90 % of the link
 * rate. While the buffers grow, the right edge of the window the receiver
 * advertises (SEG.ACK + SEG.WND << scale, as seen on the wire) never moves left
 * (RFC 9293 §3.8.6.2.2): growing a buffer only adds free space, and the window
 * field is rounded up rather than down when rounding down would pull the edge
 * back (Linux's tcp_select_window). Every byte arrives in order.
 *
 * A socket whose application set SO_RCVBUF keeps that buffer (Linux's
 * SOCK_RCVBUF_LOCK): no autotuning on it. */
#include "check.h"
#include "simnet.h"
#include "stack/stack_check.h"

#define CLIENT_IP 0x0a000001u
#define SERVER_IP 0x0a000002u
#define MS USTCP_MSEC
#define SEC USTCP_SEC
#define LINK_BPS 1000000000ull
#define PAT 65521u                   /* pattern period: a prime, so misplaced bytes show */

static const struct ustcp_config *run_cfg_c, *run_cfg_s;   /* client, server; NULL: defaults */
static struct ustcp_stats run_cstats, run_sstats;   /* both stacks at the end of run() */
static int run_sndbuf;                               /* the sender's SO_SNDBUF at the end */
static uint64_t run_read_cap;                        /* bytes the receiver reads a ms, 0: all */
static uint64_t run_big_allocs;                      /* bytes of the sender's ring storage */

/* Counts, never fails: the sender's allocations of 128 KiB and more, i.e. its
 * send ring's storage once large (control blocks and packet staging, 64 KiB and
 * a header, stay out). */
static bool count_alloc(void *ctx, size_t n)
{
  (void)ctx;
  if (n >= 131072) run_big_allocs += n;
  return false;
}
static uint8_t pat[3 * PAT];     /* any run of up to 2 * PAT bytes from any phase */

struct edge_watch {
  int rx_host;                       /* the receiver's host id: its segments are watched */
  uint8_t wscale;
  bool have, syn_seen;
  uint32_t edge;                     /* rightmost edge advertised so far */
  uint64_t segs, retreats;
  uint32_t worst;                    /* largest retreat, bytes */
};

static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void tap(void *ctx, int from, int to, enum sim_fate fate, const uint8_t *pkt, size_t len,
                uint64_t now)
{
  (void)to; (void)now;
  struct edge_watch *w = ctx;
  if (from != w->rx_host || fate != SIM_SENT || len < 40) return;
  size_t ihl = (size_t)(pkt[0] & 15) * 4;
  if (len < ihl + 20) return;
  const uint8_t *h = pkt + ihl;
  size_t doff = (size_t)(h[12] >> 4) * 4;
  uint8_t flags = h[13];
  uint32_t ack = rd32(h + 8), win = (uint32_t)h[14] << 8 | h[15];
  if (flags & 0x04) return;          /* RST */
  if (flags & 0x02) {                /* SYN-ACK: the scale we apply from now on */
    for (size_t i = 20; i + 1 < doff && ihl + i < len;) {
      uint8_t kind = h[i];
      if (kind == 0) break;
      if (kind == 1) { i++; continue; }
      if (kind == 3 && i + 2 < doff) w->wscale = h[i + 2];
      i += h[i + 1] ? h[i + 1] : 1;
    }
    w->syn_seen = true;
    return;                          /* RFC 7323 §2.2: the SYN's window is unscaled */
  }
  if (!(flags & 0x10)) return;
  uint32_t edge = ack + (win << w->wscale);
  w->segs++;
  if (w->have && (int32_t)(edge - w->edge) < 0) {
    w->retreats++;
    if (w->edge - edge > w->worst) w->worst = w->edge - edge;
  }
  if (!w->have || (int32_t)(edge - w->edge) > 0) w->edge = edge;
  w->have = true;
}

struct flow {
  uint64_t sent, got;
  bool bad;
};

static void pump(struct ustcp_stack *c, int cfd, struct ustcp_stack *s, int sfd, struct flow *f)
{
  for (;;) {
    uint32_t off = (uint32_t)(f->sent % PAT);
    ssize_t r = ustcp_send(c, cfd, pat + off, PAT, 0);
    if (r <= 0) break;
    f->sent += (uint64_t)r;
  }
  static uint8_t buf[1 << 16];
  uint64_t want = run_read_cap ? run_read_cap : UINT64_MAX;
  for (;;) {
    ssize_t r = ustcp_recv(s, sfd, buf, want < sizeof buf ? (size_t)want : sizeof buf, 0);
    if (r <= 0) break;
    if (memcmp(buf, pat + f->got % PAT, (size_t)r) != 0) {
      if (!f->bad) {
        size_t k = 0;
        while (buf[k] == pat[(f->got + k) % PAT]) k++;
        fprintf(stderr, "DBG first bad byte at %llu (read of %zd at %llu)\n", (unsigned long long)(f->got + k), r, (unsigned long long)f->got);
      }
      f->bad = true;
    }
    f->got += (uint64_t)r;
    want -= (uint64_t)r;
    if (!want) break;
  }
}

/* Runs one flow for `secs` virtual seconds; returns the payload rate (bit/s)
 * over the last second. rcvbuf > 0: the receiver sets SO_RCVBUF to it first. */
static double run(uint64_t rtt_us, int secs, int rcvbuf, int *rcvbuf_after, struct edge_watch *w)
{
  struct simnet sn;
  sn_init(&sn, 7);
  struct ustcp_stack *c = sn_add(&sn, "client", CLIENT_IP, run_cfg_c);
  struct ustcp_stack *s = sn_add(&sn, "server", SERVER_IP, run_cfg_s);
  run_big_allocs = 0;
  ustcp_set_alloc_fail(c, count_alloc, NULL);
  /* No loss, as the issue measured it: the bottleneck queue is unbounded. */
  struct sim_link_cfg lc = {.delay_us = rtt_us / 2, .bandwidth_bps = LINK_BPS};
  sim_set_all_links(sn.net, &lc);
  memset(w, 0, sizeof *w);
  w->rx_host = 1;
  sim_set_tap(sn.net, tap, w);

  struct ustcp_addr sa = {SERVER_IP, 5001};
  int lfd = ustcp_socket(s);
  CHECK_EQ(ustcp_bind(s, lfd, &sa), 0);
  if (rcvbuf > 0)
    CHECK_EQ(ustcp_setsockopt(s, lfd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &rcvbuf, sizeof rcvbuf), 0);
  CHECK_EQ(ustcp_listen(s, lfd, 8), 0);
  int cfd = ustcp_socket(c);
  CHECK_EQ(ustcp_connect(c, cfd, &sa), -EINPROGRESS);
  sn_advance(&sn, 2 * rtt_us + 5 * MS);
  int sfd = ustcp_accept(s, lfd, NULL);
  CHECK(sfd >= 0);
  CHECK(w->syn_seen);
  uint64_t t0 = sim_now(sn.net);
  struct flow f = {0};
  uint64_t mark = 0, last_sec_start = 0;
  for (int ms = 1; ms <= secs * 1000; ms++) {
    pump(c, cfd, s, sfd, &f);
    sn_run(&sn, t0 + (uint64_t)ms * MS);
    if (ms % 100 == 0) {          /* the engines' invariants hold while buffers grow */
      char b[256];
      const char *why = stack_check(s, false, b, sizeof b);
      if (!why) why = stack_check(c, false, b, sizeof b);
      if (why) fprintf(stderr, "t=%d ms: %s\n", ms, why);
      CHECK(!why);
    }
    if (ms == (secs - 1) * 1000) last_sec_start = f.got;
    if (ms % 250 == 0) {
      struct ustcp_tcp_info ci, si;
      ustcp_get_info(c, cfd, &ci);
      ustcp_get_info(s, sfd, &si);
      int sb = 0, rb = 0;
      size_t l = sizeof sb;
      ustcp_getsockopt(c, cfd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &sb, &l);
      l = sizeof rb;
      ustcp_getsockopt(s, sfd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &rb, &l);
      printf("  rtt %3llu ms t=%4d ms: %7.1f Mbit/s over the last 250 ms, cwnd %u, sndbuf %d, "
             "rcvbuf %d, rcv_wnd %u\n", (unsigned long long)(rtt_us / MS), ms,
             (double)(f.got - mark) * 8 / 0.25 / 1e6, ci.snd_cwnd, sb, rb, si.rcv_wnd);
      mark = f.got;
    }
  }
  CHECK(!f.bad);
  size_t l = sizeof *rcvbuf_after;
  CHECK_EQ(ustcp_getsockopt(s, sfd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, rcvbuf_after, &l), 0);
  l = sizeof run_sndbuf;
  CHECK_EQ(ustcp_getsockopt(c, cfd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &run_sndbuf, &l), 0);
  ustcp_get_stats(c, &run_cstats);
  ustcp_get_stats(s, &run_sstats);
  sn_free(&sn);
  return (double)(f.got - last_sec_start) * 8;
}

int main(void)
{
  for (uint32_t i = 0; i < 3 * PAT; i++) pat[i] = (uint8_t)((i % PAT) * 2654435761u >> 13);
  static const uint64_t rtts[] = {20 * MS, 100 * MS};
  for (unsigned i = 0; i < 2; i++) {
    struct edge_watch w;
    int rb = 0;
    double rate = run(rtts[i], 3, 0, &rb, &w);
    printf("1 Gbit/s x %llu ms: %.1f Mbit/s of payload in the third second (%.1f %% of the link); "
           "%llu window edges seen, %llu retreats (largest %u bytes), receive buffer %d\n",
           (unsigned long long)(rtts[i] / MS), rate / 1e6, rate * 100 / (double)LINK_BPS,
           (unsigned long long)w.segs, (unsigned long long)w.retreats, w.worst, rb);
    CHECK(rate >= 0.9 * (double)LINK_BPS);
    /* The send ring's storage doubled as the buffer grew, a few steps in all:
     * what was allocated is at most twice the final storage, itself at most
     * twice the buffer (not a copy of the ring per ACK, as once). */
    printf("  sender allocated %llu bytes of storage for a %d-byte send buffer\n",
           (unsigned long long)run_big_allocs, run_sndbuf);
    CHECK(run_big_allocs <= 4ull * (uint64_t)run_sndbuf);
    CHECK(w.segs > 1000);
    CHECK_EQ(w.retreats, 0);
  }
  /* SO_RCVBUF set by the application: the buffer stays as set (read back
   * doubled, as Linux), however fast the flow could go. */
  struct edge_watch w;
  int rb = 0;
  double rate = run(20 * MS, 1, 262144, &rb, &w);
  printf("SO_RCVBUF 262144 on 1 Gbit/s x 20 ms: %.1f Mbit/s in the first second, reads back %d\n",
         rate / 1e6, rb);
  CHECK_EQ(rb, 2 * 262144);
  CHECK(rate < 0.9 * (double)LINK_BPS);
  CHECK_EQ(w.retreats, 0);

  /* Memory pressure (Linux's tcp_mem): with a stack-wide budget of 1 MiB of
   * buffer storage, the buffers stop growing once the storage reaches it; the
   * entry is counted; the flow goes on at what the buffers allow, intact. The
   * receiver (the only stack with a budget, of 1 byte, in the second run) reads
   * 8 KiB a millisecond, less than arrives, so its ring never drains and its
   * storage stays above the budget whenever autotuning would look. */
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  CHECK_EQ(cfg.tcp_mem_pressure, 1ull << 30);
  cfg.tcp_mem_pressure = 1u << 20;
  run_cfg_c = run_cfg_s = &cfg;
  rate = run(20 * MS, 1, 0, &rb, &w);
  int rb_free = rb, sndbuf = run_sndbuf;
  uint64_t sender_entries = run_cstats.tcp_mem_pressures;
  CHECK_EQ(w.retreats, 0);
  cfg.tcp_mem_pressure = 1;
  run_cfg_c = NULL;
  run_read_cap = 8192;
  double rate_slow = run(20 * MS, 1, 0, &rb, &w);
  run_read_cap = 0;
  run_cfg_s = NULL;
  printf("tcp_mem_pressure 1 MiB on 1 Gbit/s x 20 ms: %.1f Mbit/s in the first second; send "
         "buffer stopped at %d (pressure entered %llu times); receive buffer %d (its ring drains "
         "every read)\n", rate / 1e6, sndbuf, (unsigned long long)sender_entries, rb_free);
  printf("tcp_mem_pressure 1 byte, receiver reading 8 KiB/ms: %.1f Mbit/s, receive buffer %d "
         "(pressure entered %llu times)\n", rate_slow / 1e6, rb,
         (unsigned long long)run_sstats.tcp_mem_pressures);
  CHECK(sender_entries >= 1);
  CHECK(sndbuf <= 2 << 20);               /* growth stopped near the 1 MiB budget */
  CHECK(rate > 0);
  CHECK(run_sstats.tcp_mem_pressures >= 1);
  CHECK_EQ(rb, 131072);                   /* rmem_default: never grew */
  CHECK(rate_slow > 0);
  CHECK_EQ(w.retreats, 0);
  return check_report();
}
