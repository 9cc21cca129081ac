/* Allocation failure, swept (issue 10 §7): one fixed scenario — two stacks on
 * the simulated network (with jitter, so segments arrive out of order), a
 * connection between them and a loopback connection inside the server's stack,
 * each with a handshake, a patterned transfer both ways and a graceful close —
 * is run once to count the allocations the stacks make (K), then K more times,
 * failing allocation N = 1..K (and, in a second sweep, a burst of 5 from N).
 *
 * The applications act as a careful program does: -ENOMEM from socket(),
 * listen(), accept() or send() is retried a little later. One failed allocation
 * is then a transient (a dropped segment, a refused call), so for every N:
 *   - no crash, no sanitizer report, no leak (ASan at exit; mem_bytes and
 *     conns_alive back to 0 on both stacks after TIME_WAIT);
 *   - stack_check() holds after every network event (and every 10 ms, 1 s
 *     after the first 3 s, when nothing happens) and at the end (timers armed
 *     where the state needs them, tables, descriptors, memory accounting);
 *   - every failure is counted in stats.alloc_failures;
 *   - the outcome: every byte delivered exactly once and in order both ways,
 *     EOF after the last byte, no errno but the -ENOMEM the call that failed
 *     returned (which the application saw and retried).
 * A burst of 5 failures must end the same way. Longer outages — a burst of 50
 * failures (with few allocations being tried while everything backs off, that
 * is minutes of virtual time) and every allocation failing from N on (memory
 * never comes back) — may outlast the retransmission limits: then each
 * application must
 * learn its connection's fate — completed, or an errno it saw (-ENOMEM from
 * its calls, ETIMEDOUT, ECONNRESET) — within the retransmission and keepalive
 * limits (shortened here; keepalive is on, as a program that must notice a
 * dead peer sets it), and once the applications close what they hold,
 * everything is freed although no allocation succeeds any more.
 * The single and for-ever sweeps run again with the gather output
 * (ustcp_set_output_iov, issue 12 point 6) on both stacks. */
#include "check.h"
#include "simnet.h"
#include "stack/stack_check.h"

#define CLIENT_IP 0x0a000001u
#define SERVER_IP 0x0a000002u
#define MS USTCP_MSEC
#define SEC USTCP_SEC

/* ---- the hook: fails allocations [fail_at, fail_at + burst) of both stacks ---- */
#define FOREVER (UINT64_MAX / 2)              /* burst: memory never comes back */
#define LONG_OUTAGE 50                        /* bursts from this length on may outlast
                                                 the retransmission limits */
static struct {
  uint64_t calls, fail_at, burst, injected;
} F;
static bool hook(void *ctx, size_t n)
{
  (void)ctx; (void)n;
  F.calls++;
  if (F.fail_at && F.calls >= F.fail_at && F.calls < F.fail_at + F.burst) {
    F.injected++;
    return true;
  }
  return false;
}

/* ---- applications ---- */
static uint8_t pat(uint32_t salt, uint64_t i)
{
  uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull ^ ((uint64_t)salt * 0xff51afd7ed558ccdull);
  x ^= x >> 29;
  return (uint8_t)(x + i);
}

enum phase { P_SOCKET, P_LISTEN, P_CONNECT, P_CONNECTING, P_RUN, P_DONE };

struct app {
  struct ustcp_stack *st;
  int fd;
  enum phase phase;
  bool listener, client;
  struct ustcp_addr addr;         /* listener: where; client: whom */
  struct app *child;              /* listener: the app its accepted socket gets */
  struct app *server;             /* client: its listener, which must listen first */
  uint32_t salt_tx, salt_rx;
  uint64_t total_tx, total_rx, sent, got;
  bool eof, shut, bad;
  int err;                        /* an errno other than -EAGAIN/-ENOMEM */
  uint64_t nomem;                 /* calls that said -ENOMEM (retried) */
};

static void app_fail(struct app *a, int rc)
{
  if (!a->err) a->err = rc;
}

static void app_io(struct app *a)
{
  uint8_t buf[4096];
  for (;;) {                       /* receive */
    if (a->eof) break;
    ssize_t r = ustcp_recv(a->st, a->fd, buf, sizeof buf, 0);
    if (r == -EAGAIN) break;
    if (r < 0) { app_fail(a, (int)r); return; }
    if (r == 0) { a->eof = true; break; }
    for (ssize_t i = 0; i < r; i++)
      if (buf[i] != pat(a->salt_rx, a->got + (uint64_t)i)) a->bad = true;
    a->got += (uint64_t)r;
  }
  while (a->sent < a->total_tx) {  /* send */
    size_t n = sizeof buf;
    if (n > a->total_tx - a->sent) n = (size_t)(a->total_tx - a->sent);
    for (size_t i = 0; i < n; i++) buf[i] = pat(a->salt_tx, a->sent + i);
    ssize_t r = ustcp_send(a->st, a->fd, buf, n, 0);
    if (r == -EAGAIN) break;
    if (r == -ENOMEM) { a->nomem++; break; }
    if (r <= 0) { app_fail(a, (int)r); return; }
    a->sent += (uint64_t)r;
  }
  if (a->client && a->sent == a->total_tx && !a->shut) {
    int rc = ustcp_shutdown(a->st, a->fd, USTCP_SHUT_WR);
    if (rc) { app_fail(a, rc); return; }
    a->shut = true;
  }
  /* The server closes once it has read everything and handed over its data:
   * the FIN follows the data (W2's passive close); the client once it saw EOF. */
  if (a->eof && a->sent == a->total_tx) {
    int rc = ustcp_close(a->st, a->fd);
    if (rc) app_fail(a, rc);
    a->phase = P_DONE;
  }
}

static void app_step(struct app *a)
{
  if (a->err || a->phase == P_DONE) return;
  int rc;
  switch (a->phase) {
  case P_SOCKET:
    if (a->child && !a->listener) return;          /* an accepted app waits for accept */
    if (a->server && a->server->phase < P_RUN) return;
    rc = ustcp_socket(a->st);
    if (rc == -ENOMEM) { a->nomem++; return; }
    if (rc < 0) { app_fail(a, rc); return; }
    a->fd = rc;
    if (F.burst >= LONG_OUTAGE) {
      /* Keepalive, so that a peer gone silent is noticed (inherited by accepted
       * sockets from their listener). Needs no memory. Only when memory never
       * comes back: with a burst, its idle time is shorter than an outage the
       * backed-off retransmissions make of it. */
      int one = 1, idle = 10, intvl = 5, cnt = 3;
      ustcp_setsockopt(a->st, a->fd, USTCP_SOL_SOCKET, USTCP_SO_KEEPALIVE, &one, sizeof one);
      ustcp_setsockopt(a->st, a->fd, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPIDLE, &idle, sizeof idle);
      ustcp_setsockopt(a->st, a->fd, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPINTVL, &intvl, sizeof intvl);
      ustcp_setsockopt(a->st, a->fd, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPCNT, &cnt, sizeof cnt);
    }
    if (a->listener) {
      rc = ustcp_bind(a->st, a->fd, &a->addr);
      if (rc) { app_fail(a, rc); return; }
      a->phase = P_LISTEN;
    } else {
      a->phase = P_CONNECT;
    }
    app_step(a);
    return;
  case P_LISTEN:
    rc = ustcp_listen(a->st, a->fd, 8);
    if (rc == -ENOMEM) { a->nomem++; return; }
    if (rc) { app_fail(a, rc); return; }
    a->phase = P_RUN;
    return;
  case P_CONNECT:
    rc = ustcp_connect(a->st, a->fd, &a->addr);
    if (rc == -ENOMEM) { a->nomem++; return; }
    if (rc != -EINPROGRESS) { app_fail(a, rc); return; }
    a->phase = P_CONNECTING;
    return;
  case P_CONNECTING: {
    int ev = ustcp_sock_events(a->st, a->fd);
    if (ev & USTCP_POLLERR) { app_fail(a, ustcp_sock_error(a->st, a->fd)); return; }
    if (!(ev & USTCP_POLLOUT)) return;
    a->phase = P_RUN;
    app_io(a);
    return;
  }
  case P_RUN:
    if (!a->listener) { app_io(a); return; }
    if (a->child->phase != P_SOCKET) {             /* its one connection is accepted */
      rc = ustcp_close(a->st, a->fd);
      if (rc) app_fail(a, rc);
      a->phase = P_DONE;
      return;
    }
    rc = ustcp_accept(a->st, a->fd, NULL);
    if (rc == -EAGAIN) return;
    if (rc == -ENOMEM) { a->nomem++; return; }
    if (rc < 0) { app_fail(a, rc); return; }
    a->child->fd = rc;
    a->child->phase = P_RUN;
    app_io(a->child);
    return;
  default:
    return;
  }
}

/* ---- one run ---- */
struct outcome {
  uint64_t allocs, injected, counted, nomem;
  bool ok;
};

static int readiness_calls;
static void on_ready(void *ctx, int fd, unsigned ev)
{
  (void)ctx; (void)fd; (void)ev;
  readiness_calls++;                              /* exercises the readiness queue */
}

static void stack_ok(struct ustcp_stack *s, bool deep, const char *who, uint64_t n, bool *ok)
{
  char buf[512];
  const char *why = stack_check(s, deep, buf, sizeof buf);
  if (why && *ok) {
    fprintf(stderr, "fail_at %llu burst %llu: %s: %s\n", (unsigned long long)n,
            (unsigned long long)F.burst, who, why);
    *ok = false;
  }
}

/* Under lasting memory exhaustion: did the application end visibly? */
static bool ended_visibly(const struct app *a)
{
  if (a->listener) return true;                  /* nobody may ever reach it */
  if (a->err || a->nomem) return true;           /* an errno, or its calls say -ENOMEM */
  /* Its peer application's sends keep failing with -ENOMEM (it saw the
   * failure) while it keeps the connection open, answering keepalives: TCP has
   * nothing to tell this end, on Linux either. Found when the out-of-order
   * intervals changed which allocation comes N-th: fail_at 68 hit the server's
   * send buffer. The failure surfaced where the memory ran out. */
  if (a->client && a->server && a->server->child &&
      (a->server->child->nomem || a->server->child->err))
    return true;
  if (a->phase == P_DONE) return !a->bad && a->sent == a->total_tx && a->got == a->total_rx;
  if (a->client) return a->phase == P_SOCKET && a->server->phase < P_RUN;  /* its server never listened */
  return a->phase == P_SOCKET;                   /* never accepted (its client saw why) */
}

/* Replay of one run with a trace of its segments and state changes:
 *   SWEEP_ONE=N SWEEP_BURST=B test_alloc_fail_sweep   (B 0 for ever) */
static bool tracing;
static void dbg_cap(void *ctx, bool out, const uint8_t *pkt, size_t len, uint64_t t)
{
  struct tcp_packet p;
  if (tcp_packet_decode(pkt, len, &p) != WIRE_OK) return;
  char fl[16];
  printf("%10.6f %s %s %u->%u %s seq %u ack %u len %zu allocations %llu\n", (double)t / 1e6,
         (const char *)ctx, out ? "out" : "in ", p.tcp.src_port, p.tcp.dst_port,
         tcp_flags_str(p.tcp.flags, fl, sizeof fl), p.tcp.seq, p.tcp.ack, p.payload_len,
         (unsigned long long)F.calls);
}
static void dbg_ev(void *ctx, const struct ustcp_event *ev)
{
  printf("%10.6f %s event fd %d %u->%u %s -> %s\n", (double)ev->time_us / 1e6, (const char *)ctx,
         ev->fd, ev->local.port, ev->remote.port, ustcp_state_name(ev->old_state),
         ustcp_state_name(ev->new_state));
}

/* Issue 12 point 6: the same sweeps with the gather output on both stacks
 * (headers recorded, payload referenced in the send ring until delivery); the
 * link flattens the list, as a driver without scatter-gather would. */
static bool gather;
static void gather_out(void *ctx, const struct iovec *iov, int cnt)
{
  struct sn_host *h = ctx;
  static uint8_t flat[70000];
  size_t n = 0;
  for (int i = 0; i < cnt; i++) {
    memcpy(flat + n, iov[i].iov_base, iov[i].iov_len);
    n += iov[i].iov_len;
  }
  sim_send(h->sn->net, h->id, flat, n);
}

static struct outcome scenario(uint64_t fail_at, uint64_t burst)
{
  memset(&F, 0, sizeof F);
  F.fail_at = fail_at;
  F.burst = burst;
  struct outcome out = {0, 0, 0, 0, true};
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.time_wait_us = 1 * SEC;
  cfg.rmem_default = 16384;                      /* several windows per transfer */
  if (burst >= LONG_OUTAGE) {
    cfg.syn_retries = 4;                         /* shorter limits: a run ends sooner */
    cfg.synack_retries = 3;
    cfg.retries2 = 6;
  }
  static struct simnet sn;
  sn_init(&sn, 42);
  struct ustcp_stack *c = sn_add(&sn, "client", CLIENT_IP, &cfg);
  struct ustcp_stack *s = sn_add(&sn, "server", SERVER_IP, &cfg);
  struct sim_link_cfg lc = {0};
  lc.delay_us = 2 * MS;
  lc.jitter_us = 3 * MS;                         /* reordering: out-of-order queue */
  sim_set_all_links(sn.net, &lc);
  ustcp_set_ready_cb(c, on_ready, NULL);
  ustcp_set_ready_cb(s, on_ready, NULL);
  if (gather) {
    ustcp_set_output_iov(c, gather_out, &sn.hosts[0]);
    ustcp_set_output_iov(s, gather_out, &sn.hosts[1]);
  }
  if (tracing) {
    ustcp_set_capture_cb(c, dbg_cap, "C");
    ustcp_set_capture_cb(s, dbg_cap, "S");
    ustcp_set_event_cb(c, dbg_ev, "C");
    ustcp_set_event_cb(s, dbg_ev, "S");
  }
  ustcp_set_alloc_fail(c, hook, NULL);
  ustcp_set_alloc_fail(s, hook, NULL);

  /* A: client -> server:80; B: server -> server:81 over loopback. */
  struct app a_srv = {.st = s, .fd = -1, .salt_tx = 2, .salt_rx = 1, .total_tx = 40000, .total_rx = 60000};
  struct app a_lst = {.st = s, .fd = -1, .listener = true, .addr = {SERVER_IP, 80}, .child = &a_srv};
  struct app a_cli = {.st = c, .fd = -1, .client = true, .addr = {SERVER_IP, 80}, .salt_tx = 1,
                      .salt_rx = 2, .total_tx = 60000, .total_rx = 40000};
  struct app b_srv = {.st = s, .fd = -1, .salt_tx = 4, .salt_rx = 3, .total_tx = 9000, .total_rx = 20000};
  struct app b_lst = {.st = s, .fd = -1, .listener = true, .addr = {SERVER_IP, 81}, .child = &b_srv};
  struct app b_cli = {.st = s, .fd = -1, .client = true, .addr = {SERVER_IP, 81}, .salt_tx = 3,
                      .salt_rx = 4, .total_tx = 20000, .total_rx = 9000};
  a_cli.server = &a_lst;
  b_cli.server = &b_lst;
  a_srv.child = &a_srv;   /* marks an accepted app: it waits in P_SOCKET for accept */
  b_srv.child = &b_srv;
  struct app *apps[] = {&a_lst, &b_lst, &a_cli, &b_cli, &a_srv, &b_srv};
  const int napps = 6;

  bool outage = burst >= LONG_OUTAGE;
  /* Long enough for every limit: SYN 31 s, data ~25 s, keepalive 25 s, orphans. */
  uint64_t t0 = sim_now(sn.net), end = t0 + (outage ? 200 : 120) * SEC;
  for (;;) {
    bool done = true;
    for (int i = 0; i < napps; i++) {
      app_step(apps[i]);
      if (apps[i]->phase != P_DONE && !apps[i]->err) done = false;
    }
    stack_ok(c, false, "client", fail_at, &out.ok);
    stack_ok(s, false, "server", fail_at, &out.ok);
    if (done || !out.ok || sim_now(sn.net) >= end) break;
    /* The applications act after every network event, and at least every
     * 10 ms (1 s after the first 3 s) when the network is quiet. */
    uint64_t now = sim_now(sn.net);
    sim_step(sn.net, now + (now - t0 < 3 * SEC ? 10 * MS : 1 * SEC));
    sn_sync(&sn);
  }
  if (outage) {
    for (int i = 0; i < napps; i++) {
      struct app *a = apps[i];
      if (!ended_visibly(a) && out.ok) {
        fprintf(stderr, "fail_at %llu burst %llu: app %d phase %d err %d nomem %llu sent %llu/%llu got %llu/%llu: no visible end\n",
                (unsigned long long)fail_at, (unsigned long long)burst, i, (int)a->phase, a->err, (unsigned long long)a->nomem,
                (unsigned long long)a->sent, (unsigned long long)a->total_tx,
                (unsigned long long)a->got, (unsigned long long)a->total_rx);
        out.ok = false;
      }
    }
    for (int i = 0; i < napps; i++) {
      struct app *a = apps[i];
      /* The applications give up what they hold; closing needs no memory. */
      if (a->fd >= 0 && a->phase != P_DONE) {
        int rc = ustcp_close(a->st, a->fd);
        if (rc && out.ok) {
          fprintf(stderr, "fail_at %llu for ever: close = %d\n", (unsigned long long)fail_at, rc);
          out.ok = false;
        }
        a->phase = P_DONE;
      }
    }
  }
  /* Orphans finish (an orphan's FIN is retried orphan_retries times), TIME_WAIT passes. */
  sn_advance(&sn, (outage ? 300 : 30) * SEC);
  stack_ok(c, true, "client at the end", fail_at, &out.ok);
  stack_ok(s, true, "server at the end", fail_at, &out.ok);
  for (int i = 0; i < napps; i++) {
    struct app *a = apps[i];
    out.nomem += a->nomem;
    if (outage) continue;                        /* judged above */
    bool good = a->phase == P_DONE && !a->err && !a->bad &&
                (a->listener || (a->sent == a->total_tx && a->got == a->total_rx && a->eof));
    if (!good) {
      fprintf(stderr, "fail_at %llu burst %llu: app %d phase %d err %d bad %d sent %llu/%llu got %llu/%llu eof %d\n",
              (unsigned long long)fail_at, (unsigned long long)burst, i, (int)a->phase, a->err, a->bad,
              (unsigned long long)a->sent, (unsigned long long)a->total_tx,
              (unsigned long long)a->got, (unsigned long long)a->total_rx, a->eof);
      out.ok = false;
    }
  }
  struct ustcp_stats st;
  struct ustcp_stack *both[2] = {c, s};
  for (int k = 0; k < 2; k++) {
    ustcp_get_stats(both[k], &st);
    out.counted += st.alloc_failures;
    if ((st.mem_bytes || st.conns_alive || ustcp_sock_table(both[k], NULL, 0)) && out.ok) {
      fprintf(stderr, "fail_at %llu burst %llu: %s keeps %llu bytes, %llu connections\n",
              (unsigned long long)fail_at, (unsigned long long)burst, k ? "server" : "client",
              (unsigned long long)st.mem_bytes, (unsigned long long)st.conns_alive);
      out.ok = false;
    }
  }
  out.allocs = F.calls;
  out.injected = F.injected;
  sn_free(&sn);
  return out;
}

static void sweep(uint64_t burst)
{
  struct outcome base = scenario(0, 0);
  CHECK(base.ok);
  CHECK_EQ(base.injected, 0);
  CHECK_EQ(base.counted, 0);
  CHECK(base.allocs >= 50);                      /* the scenario really allocates */
  uint64_t k = base.allocs, bad = 0, with_nomem = 0;
  for (uint64_t n = 1; n <= k; n++) {
    struct outcome o = scenario(n, burst);
    if (!o.ok) bad++;
    if (o.injected == 0 || o.counted != o.injected) {
      fprintf(stderr, "fail_at %llu burst %llu: injected %llu, counted %llu\n",
              (unsigned long long)n, (unsigned long long)burst,
              (unsigned long long)o.injected, (unsigned long long)o.counted);
      bad++;
    }
    if (o.nomem) with_nomem++;
  }
  CHECK_EQ(bad, 0);
  CHECK(with_nomem > 0);                         /* some failures reached a call */
  printf("burst %s: %llu allocations swept, %llu of them surfaced as -ENOMEM to a call\n",
         burst == FOREVER ? "for ever" : (burst == 1 ? "1" : burst == 5 ? "5" : "50"),
         (unsigned long long)k, (unsigned long long)with_nomem);
}

static void sweep_single(void) { sweep(1); }
static void sweep_burst(void) { sweep(5); }
static void sweep_burst50(void) { sweep(50); }
static void sweep_for_ever(void) { sweep(FOREVER); }
static void sweep_gather(void)
{
  gather = true;
  sweep(1);
  sweep(FOREVER);
  gather = false;
}

int main(void)
{
  if (getenv("SWEEP_ONE")) {
    tracing = true;
    uint64_t n = strtoull(getenv("SWEEP_ONE"), NULL, 0);
    uint64_t b = getenv("SWEEP_BURST") ? strtoull(getenv("SWEEP_BURST"), NULL, 0) : 1;
    struct outcome o = scenario(n, b ? b : FOREVER);
    printf("ok %d allocs %llu injected %llu counted %llu nomem %llu\n", o.ok, (unsigned long long)o.allocs,
           (unsigned long long)o.injected, (unsigned long long)o.counted, (unsigned long long)o.nomem);
    return 0;
  }
  RUN(sweep_single);
  RUN(sweep_burst);
  RUN(sweep_burst50);
  RUN(sweep_for_ever);
  RUN(sweep_gather);
  return check_report();
}
