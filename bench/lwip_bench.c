/* bench/lwip_bench: lwIP's side of `make bench` over TUN (bench/run.sh), built
 * only when Debian's liblwip-dev is installed (lwIP 2.1.3, the GNU Hurd's
 * configuration: NO_SYS=0 with core locking, TCP_MSS 1460, TCP_WND and
 * TCP_SND_BUF 64 KiB, checksums computed and checked in software).
 *
 *   tun-serve  lwIP on a TUN device (src/link/tun.c, one read()/write() per
 *              packet, as ustcp_bench tun-serve without --vnet), serving what
 *              kernel_bench serve serves: 5001 sink (payload checked against
 *              its stream offset), 5002 source (8-byte count, then that many
 *              pattern bytes, then close), 5100-5115 and 5200-5215 echo (64-byte
 *              messages, checked). Runs until SIGTERM.
 *
 *   mem        one bulk flow of N bytes over an in-memory link in this one
 *              process, --pair lu (lwIP sends, ustcp receives), ul (ustcp
 *              sends, lwIP receives) or uu (two ustcp stacks: the reference,
 *              the same link and loop): ustcp_bench's memlink (a FIFO of
 *              packet slots per receiving end, one copy per packet into the
 *              slot), the receiver checks every byte against its stream offset
 *              where it lies (lwIP: in its pbufs; ustcp: ustcp_recv_direct in
 *              its receive ring), ustcp sends through its gather output (no
 *              staging copy: lwIP's segment pbuf is the packet too).
 *              Gbit/s and the process's CPU (both threads) per payload byte.
 *
 * lwIP is one global stack per process, so it can be one end only; the other
 * is ustcp, linked as libustcp.so, which exports only the public ustcp_* API
 * (src/libustcp.map) and so keeps its own tcp_* names apart from lwIP's. The
 * main thread reads the TUN device (or the in-memory link) and feeds lwIP with
 * the core lock held (LOCK_TCPIP_CORE); lwIP's own tcpip thread runs its
 * timers.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"

#include "ustcp.h"
#include "link/tun.h"
#include "bench_util.h"

static void mem_from_lwip(struct pbuf *p);
static bool mem_mode;

static int tun_fd = -1;
static struct netif nif;
static volatile sig_atomic_t stop;
static uint64_t corrupt, tx_errors;

static void on_term(int sig) { (void)sig; stop = 1; }

static err_t nif_output(struct netif *n, struct pbuf *p, const ip4_addr_t *dst)
{
  (void)n; (void)dst;
  static uint8_t buf[65536];   /* tot_len is a u16_t: any packet fits */
  if (mem_mode) {
    mem_from_lwip(p);
    return ERR_OK;
  }
  const uint8_t *pkt = p->payload;
  if (p->next) {
    pbuf_copy_partial(p, buf, p->tot_len, 0);
    pkt = buf;
  }
  if (tun_write(tun_fd, pkt, p->tot_len) != 0) tx_errors++;
  return ERR_OK;
}

static err_t nif_init(struct netif *n)
{
  n->name[0] = 't';
  n->name[1] = 'n';
  n->output = nif_output;
  n->mtu = 1500;
  n->flags = NETIF_FLAG_LINK_UP;
  return ERR_OK;
}

static void tun_in(void *ctx, const uint8_t *pkt, size_t len)
{
  (void)ctx;
  struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
  if (!p) return;
  memcpy(p->payload, pkt, len);
  if (ip4_input(p, &nif) != ERR_OK) pbuf_free(p);
}

/* ---- the services ---- */
enum { L_SINK, L_SOURCE, L_ECHO };
struct conn {
  int kind;
  uint64_t off;        /* stream offset of the next byte received (sink, echo) or queued (source) */
  uint64_t left;       /* source: bytes still to queue */
  uint32_t got;        /* echo: bytes of the current message; source: request bytes */
  uint8_t req[8];
};

static bool echo_ok(uint64_t off, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != bench_pattern[(off + i) % 64]) return false;
  return true;
}

static void conn_done(struct tcp_pcb *pcb, struct conn *c)
{
  tcp_arg(pcb, NULL);
  tcp_recv(pcb, NULL);
  tcp_sent(pcb, NULL);
  tcp_err(pcb, NULL);
  free(c);
  if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
}

static void source_push(struct tcp_pcb *pcb, struct conn *c)
{
  while (c->left) {
    u16_t room = tcp_sndbuf(pcb);
    if (room == 0) break;
    size_t n = c->left < room ? (size_t)c->left : room;
    if (n > 65535) n = 65535;
    /* No copy flag: lwIP points at the pattern, which never changes. */
    if (tcp_write(pcb, bench_pattern_at(c->off), (u16_t)n, c->left > n ? TCP_WRITE_FLAG_MORE : 0) != ERR_OK)
      break;
    c->off += n;
    c->left -= n;
  }
  tcp_output(pcb);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
  (void)len;
  struct conn *c = arg;
  if (!c) return ERR_OK;
  source_push(pcb, c);
  if (!c->left && c->got == 8) conn_done(pcb, c);
  return ERR_OK;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
  struct conn *c = arg;
  (void)err;
  if (!c) {
    if (p) pbuf_free(p);
    return ERR_OK;
  }
  if (!p) {                         /* EOF */
    conn_done(pcb, c);
    return ERR_OK;
  }
  u16_t total = p->tot_len;
  for (struct pbuf *q = p; q; q = q->next) {
    const uint8_t *d = q->payload;
    size_t n = q->len;
    if (c->kind == L_SINK) {
      if (!bench_verify(c->off, d, n)) goto bad;
      c->off += n;
    } else if (c->kind == L_ECHO) {
      if (!echo_ok(c->off, d, n)) goto bad;
      c->off += n;
      for (c->got += (uint32_t)n; c->got >= 64; c->got -= 64)
        tcp_write(pcb, bench_pattern_at(0), 64, 0);
    } else {                        /* source: the 8-byte request */
      for (size_t i = 0; i < n && c->got < 8; i++) c->req[c->got++] = d[i];
      if (c->got == 8 && !c->left && !c->off)
        for (int b = 0; b < 8; b++) c->left = c->left << 8 | c->req[b];
    }
  }
  tcp_recved(pcb, total);
  pbuf_free(p);
  if (c->kind == L_ECHO) tcp_output(pcb);
  if (c->kind == L_SOURCE && c->got == 8) {
    source_push(pcb, c);
    if (!c->left) conn_done(pcb, c);
  }
  return ERR_OK;
bad:
  if (corrupt++ < 5) fprintf(stderr, "lwip_bench: PAYLOAD MISMATCH at offset %llu\n",
                             (unsigned long long)c->off);
  pbuf_free(p);
  tcp_arg(pcb, NULL);
  free(c);
  tcp_abort(pcb);
  return ERR_ABRT;
}

static void on_err(void *arg, err_t err)
{
  (void)err;
  free(arg);   /* the pcb is already gone */
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
  if (err != ERR_OK || !pcb) return ERR_VAL;
  struct conn *c = calloc(1, sizeof *c);
  if (!c) return ERR_MEM;
  c->kind = (int)(intptr_t)arg;
  tcp_arg(pcb, c);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_err);
  if (c->kind == L_ECHO) tcp_nagle_disable(pcb);
  return ERR_OK;
}

static void listen_on(uint16_t port, int kind)
{
  struct tcp_pcb *pcb = tcp_new();
  if (!pcb || tcp_bind(pcb, IP_ADDR_ANY, port) != ERR_OK) bench_die("lwip: bind");
  pcb = tcp_listen_with_backlog(pcb, 255);
  if (!pcb) bench_die("lwip: listen");
  tcp_arg(pcb, (void *)(intptr_t)kind);
  tcp_accept(pcb, on_accept);
}

/* ---- mem: lwIP and ustcp over an in-memory link ---- */
#define MEM_SLOT 1500              /* MTU 1500 only: lwIP's TCP_MSS is 1460 */
#define MEM_CHUNK (256 * 1024)
struct mend {
  bool lwip;
  struct ustcp_stack *st;
  struct bench_pktq in;            /* packets to this end (bench_util.h) */
  struct mend *peer;
};
static struct mend mends[2];       /* [0] sends, [1] receives */
static struct mend *mem_lwip_end;
static uint64_t mem_pkts, mem_dropped;

/* lwIP's output: the pbuf (chain) copied once into the peer's slot. */
static void mem_from_lwip(struct pbuf *p)
{
  if (p->tot_len > MEM_SLOT) { mem_dropped++; return; }
  struct bench_pktq *q = &mem_lwip_end->peer->in;
  uint8_t *slot = bench_pktq_tail(q);
  pbuf_copy_partial(p, slot, p->tot_len, 0);
  bench_pktq_push(q, p->tot_len);
}

/* ustcp's output: the packet copied once into the peer's slot. */
static void mem_from_ustcp(void *ctx, const uint8_t *pkt, size_t len)
{
  struct mend *e = ctx;
  if (len > MEM_SLOT) { mem_dropped++; return; }
  struct bench_pktq *q = &e->peer->in;
  memcpy(bench_pktq_tail(q), pkt, len);
  bench_pktq_push(q, len);
}

/* ustcp's gather output (headers + slices of the send ring): copied once into
 * the peer's slot, as lwIP's segment pbuf is (no staging copy before it). */
static void mem_from_ustcp_iov(void *ctx, const struct iovec *iov, int cnt)
{
  struct mend *e = ctx;
  size_t len = 0;
  for (int i = 0; i < cnt; i++) len += iov[i].iov_len;
  if (len > MEM_SLOT) { mem_dropped++; return; }
  struct bench_pktq *q = &e->peer->in;
  uint8_t *d = bench_pktq_tail(q);
  for (int i = 0; i < cnt; i++) {
    memcpy(d, iov[i].iov_base, iov[i].iov_len);
    d += iov[i].iov_len;
  }
  bench_pktq_push(q, len);
}

struct mxfer {
  uint64_t total, sent, rcvd;
  bool shut, eof, failed;
  int ufd, ulfd, urfd;             /* ustcp: sending socket, listener, accepted */
  struct tcp_pcb *lpcb;            /* lwIP: the connection */
};
static struct mxfer mx;
/* --skew OFF (tests only): the chunk the sender sends that holds stream offset
 * OFF comes from the wrong place in the pattern, so the receiver's check must
 * fail (tests/sh/bench_lwip_mem.sh). UINT64_MAX: off. */
static uint64_t mx_skew = UINT64_MAX;
static const uint8_t *mx_src(uint64_t off, uint64_t n)
{
  return bench_pattern_at(mx_skew >= off && mx_skew < off + n ? off + 1 : off);
}

static void mx_lwip_push(void)
{
  struct tcp_pcb *pcb = mx.lpcb;
  if (!pcb) return;
  while (mx.sent < mx.total) {
    u16_t room = tcp_sndbuf(pcb);
    if (room == 0) break;
    uint64_t n = mx.total - mx.sent;
    if (n > room) n = room;
    /* lwIP copies into its segments (LWIP_NETIF_TX_SINGLE_PBUF, checksum on copy) */
    if (tcp_write(pcb, mx_src(mx.sent, n), (u16_t)n, mx.total - mx.sent > n ? TCP_WRITE_FLAG_MORE : 0)
        != ERR_OK)
      break;
    mx.sent += n;
  }
  if (mx.sent == mx.total && !mx.shut) {
    if (tcp_shutdown(pcb, 0, 1) == ERR_OK) mx.shut = true;
  }
  tcp_output(pcb);
}

static err_t mx_on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
  (void)arg; (void)pcb; (void)len;
  mx_lwip_push();
  return ERR_OK;
}

static err_t mx_on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
  (void)arg; (void)pcb;
  if (err != ERR_OK) { mx.failed = true; return ERR_OK; }
  mx_lwip_push();
  return ERR_OK;
}

static err_t mx_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
  (void)arg; (void)err;
  if (!p) {                        /* EOF: every byte is in */
    mx.eof = true;
    tcp_arg(pcb, NULL);
    tcp_recv(pcb, NULL);
    tcp_err(pcb, NULL);
    if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
    mx.lpcb = NULL;
    return ERR_OK;
  }
  for (struct pbuf *q = p; q; q = q->next) {
    if (!bench_verify(mx.rcvd, q->payload, q->len)) {
      if (!mx.failed)
        fprintf(stderr, "lwip_bench mem: PAYLOAD MISMATCH at offset %llu\n", (unsigned long long)mx.rcvd);
      mx.failed = true;
    }
    mx.rcvd += q->len;
  }
  tcp_recved(pcb, p->tot_len);
  pbuf_free(p);
  return ERR_OK;
}

static void mx_on_err(void *arg, err_t err)
{
  (void)arg;
  fprintf(stderr, "lwip_bench mem: lwIP connection error %d\n", (int)err);
  mx.lpcb = NULL;
  mx.failed = true;
}

static err_t mx_on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
  (void)arg;
  if (err != ERR_OK || !pcb) return ERR_VAL;
  mx.lpcb = pcb;
  tcp_recv(pcb, mx_on_recv);
  tcp_err(pcb, mx_on_err);
  return ERR_OK;
}

/* The ustcp ends' work, as ustcp_bench bulk does it. */
static void mx_ustcp_send(void)
{
  struct ustcp_stack *st = mends[0].st;
  while (mx.sent < mx.total) {
    uint64_t want = mx.total - mx.sent;
    if (want > MEM_CHUNK) want = MEM_CHUNK;
    ssize_t n = ustcp_send(st, mx.ufd, mx_src(mx.sent, want), (size_t)want, 0);
    if (n <= 0) {
      if (n != -EAGAIN) mx.failed = true;
      break;
    }
    mx.sent += (uint64_t)n;
  }
  if (mx.sent == mx.total && !mx.shut) {
    ustcp_shutdown(st, mx.ufd, USTCP_SHUT_WR);
    mx.shut = true;
  }
}

/* The bytes checked where they lie in the receive ring (ustcp_recv_direct),
 * as lwIP's receiver checks them in its pbufs. */
static size_t mx_check(void *ctx, const uint8_t *p, size_t n)
{
  (void)ctx;
  if (!bench_verify(mx.rcvd, p, n)) {
    if (!mx.failed)
      fprintf(stderr, "lwip_bench mem: PAYLOAD MISMATCH at offset %llu\n", (unsigned long long)mx.rcvd);
    mx.failed = true;
  }
  mx.rcvd += n;
  return n;
}

static void mx_ustcp_recv(void)
{
  struct ustcp_stack *st = mends[1].st;
  if (mx.urfd < 0) {
    mx.urfd = ustcp_accept(st, mx.ulfd, NULL);
    if (mx.urfd < 0) { mx.urfd = -1; return; }
  }
  for (;;) {
    ssize_t n = ustcp_recv_direct(st, mx.urfd, mx_check, NULL);
    if (n > 0) continue;
    if (n == 0) mx.eof = true;
    else if (n != -EAGAIN) mx.failed = true;
    break;
  }
}

static void mx_app(void)
{
  if (!mends[0].lwip) mx_ustcp_send();
  if (!mends[1].lwip) mx_ustcp_recv();
}

/* A stack's readiness callback touches that stack only. */
static void mx_ready(void *ctx, int fd, unsigned ev)
{
  (void)fd; (void)ev;
  if (ctx == &mends[0]) mx_ustcp_send();
  else mx_ustcp_recv();
}

/* Hands every packet queued for end e to its stack; returns whether any moved. */
static bool mx_deliver(struct mend *e, uint64_t now_us)
{
  size_t k = e->in.count;          /* what its own input queues goes to the peer */
  bool any = k > 0;
  while (k--) {
    size_t len;
    const uint8_t *pkt = bench_pktq_head(&e->in, &len);
    if (e->lwip) {
      struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);   /* as the TUN path */
      if (p) {
        memcpy(p->payload, pkt, len);
        if (ip4_input(p, &nif) != ERR_OK) pbuf_free(p);
      }
    } else {
      ustcp_input(e->st, pkt, len, now_us);
    }
    bench_pktq_pop(&e->in);
    mem_pkts++;
  }
  return any;
}

static int run_mem(const char *pair, uint64_t total, uint16_t port, uint32_t buf)
{
  bool lu = !strcmp(pair, "lu"), ul = !strcmp(pair, "ul"), uu = !strcmp(pair, "uu");
  if (!lu && !ul && !uu) return 2;
  mem_mode = true;
  bench_pattern_init();
  tcpip_init(NULL, NULL);
  LOCK_TCPIP_CORE();
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.mtu = MEM_SLOT;
  /* as ustcp_bench bulk (bench_config): Linux's autotuning ceilings */
  cfg.rmem_max = 6u << 20;
  cfg.wmem_max = 4u << 20;
  if (buf) {   /* --buf: fixed buffers, e.g. lwIP's 64 KiB window and send buffer */
    cfg.rmem_default = cfg.rmem_max = buf;
    cfg.wmem_default = cfg.wmem_max = buf;
  }
  const uint32_t ip[2] = {0x0a000001u, 0x0a000002u};   /* 10.0.0.1 sends, 10.0.0.2 receives */
  for (int i = 0; i < 2; i++) {
    struct mend *e = &mends[i];
    e->peer = &mends[1 - i];
    bench_pktq_init(&e->in, MEM_SLOT);
    e->lwip = (i == 0 && lu) || (i == 1 && ul);
    if (e->lwip) {
      mem_lwip_end = e;
      ip4_addr_t a, mask, gw;
      IP4_ADDR(&a, 10, 0, 0, i + 1);
      IP4_ADDR(&mask, 255, 255, 255, 0);
      IP4_ADDR(&gw, 0, 0, 0, 0);
      if (!netif_add(&nif, &a, &mask, &gw, NULL, nif_init, ip4_input)) bench_die("lwip: netif_add");
      netif_set_default(&nif);
      netif_set_up(&nif);
      netif_set_link_up(&nif);
    } else {
      e->st = ustcp_stack_new(&cfg, ip[i], 0x1234 + (uint64_t)i * 7919, mem_from_ustcp, e);
      if (!e->st) bench_die("ustcp_stack_new failed");
      ustcp_set_ready_cb(e->st, mx_ready, e);
      ustcp_set_output_iov(e->st, mem_from_ustcp_iov, e);
    }
  }
  memset(&mx, 0, sizeof mx);
  mx.total = total;
  mx.ufd = mx.ulfd = mx.urfd = -1;
  /* the receiver listens */
  if (mends[1].lwip) {
    struct tcp_pcb *l = tcp_new();
    if (!l || tcp_bind(l, IP_ADDR_ANY, port) != ERR_OK) bench_die("lwip: bind");
    l = tcp_listen_with_backlog(l, 4);
    if (!l) bench_die("lwip: listen");
    tcp_accept(l, mx_on_accept);
  } else {
    struct ustcp_stack *st = mends[1].st;
    mx.ulfd = ustcp_socket(st);
    struct ustcp_addr a = {0, port, 0, {0}};
    if (mx.ulfd < 0 || ustcp_bind(st, mx.ulfd, &a) < 0 || ustcp_listen(st, mx.ulfd, 4) < 0)
      bench_die("ustcp: listen");
  }
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  if (mends[0].lwip) {
    mx.lpcb = tcp_new();
    if (!mx.lpcb) bench_die("lwip: tcp_new");
    tcp_sent(mx.lpcb, mx_on_sent);
    tcp_err(mx.lpcb, mx_on_err);
    ip_addr_t dst;
    IP_ADDR4(&dst, 10, 0, 0, 2);
    if (tcp_connect(mx.lpcb, &dst, port, mx_on_connected) != ERR_OK) bench_die("lwip: connect");
  } else {
    struct ustcp_stack *st = mends[0].st;
    mx.ufd = ustcp_socket(st);
    struct ustcp_addr dst = {ip[1], port, 0, {0}};
    int rc = mx.ufd < 0 ? mx.ufd : ustcp_connect(st, mx.ufd, &dst);
    if (rc < 0 && rc != -EINPROGRESS) bench_die("ustcp: connect");
  }
  uint64_t idle = 0;
  while (!mx.eof && !mx.failed) {
    uint64_t now = bench_now_us();
    bool moved = mx_deliver(&mends[0], now);
    moved |= mx_deliver(&mends[1], now);
    for (int i = 0; i < 2; i++)
      if (!mends[i].lwip && ustcp_next_deadline(mends[i].st) <= now) ustcp_poll(mends[i].st, now);
    if (moved) continue;
    mx_app();
    if (mends[0].lwip) mx_lwip_push();
    if (mends[0].in.count || mends[1].in.count) continue;
    /* Nothing to do: let lwIP's tcpip thread run its timers (delayed ACKs,
     * retransmissions), which take the core lock. */
    UNLOCK_TCPIP_CORE();
    if (++idle % 64 == 0) usleep(50); else sched_yield();
    LOCK_TCPIP_CORE();
    if (bench_now_ns() - t0 > 120000000000ull) { fprintf(stderr, "mem: wall-clock limit\n"); mx.failed = true; }
  }
  uint64_t t1 = bench_now_ns(), c1 = bench_cpu_ns();
  UNLOCK_TCPIP_CORE();
  bool ok = !mx.failed && mx.rcvd == total;
  fprintf(stderr, "lwip_bench mem %s: %llu of %llu bytes in %.3f s, cpu %.3f s, %llu packets, %llu dropped, "
          "%llu idle rounds%s\n", pair, (unsigned long long)mx.rcvd, (unsigned long long)total,
          (double)(t1 - t0) / 1e9, (double)(c1 - c0) / 1e9, (unsigned long long)mem_pkts,
          (unsigned long long)mem_dropped, (unsigned long long)idle, ok ? "" : ", FAILED");
  char key[64];
  char name[32];
  if (buf) snprintf(name, sizeof name, "%s%u", pair, buf >> 10);   /* uu64: 64 KiB buffers */
  else snprintf(name, sizeof name, "%s", pair);
  snprintf(key, sizeof key, "membulk1500.%s", name);
  bench_result(key, ok ? (double)total * 8 / ((double)(t1 - t0) / 1e9) / 1e9 : 0);
  if (ok) {
    snprintf(key, sizeof key, "memcpu1500.%s.nsB", name);
    bench_result(key, (double)(c1 - c0) / (double)total);
    snprintf(key, sizeof key, "memcpu1500.%s.nsSeg", name);
    bench_result(key, (double)(c1 - c0) / (double)total * 1460);
  }
  return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
  const char *ns = NULL, *tun = "lwtun0";
  uint32_t addr = 0, peer = 0;
  static const struct option opts[] = {
    {"ns", required_argument, 0, 'N'}, {"tun", required_argument, 0, 'T'},
    {"addr", required_argument, 0, 'A'}, {"peer", required_argument, 0, 'P'},
    {"mtu", required_argument, 0, 'm'}, {0, 0, 0, 0}};
  if (argc >= 2 && !strcmp(argv[1], "mem")) {
    static const struct option mopts[] = {
      {"pair", required_argument, 0, 'p'}, {"bytes", required_argument, 0, 'b'},
      {"mtu", required_argument, 0, 'm'}, {"reps", required_argument, 0, 'r'},
      {"buf", required_argument, 0, 'B'}, {"skew", required_argument, 0, 'S'}, {0, 0, 0, 0}};
    const char *pair = "lu";
    uint64_t bytes = 1ull << 30;
    uint32_t buf = 0;
    optind = 2;
    int mc;
    while ((mc = getopt_long(argc, argv, "", mopts, NULL)) != -1) {
      if (mc == 'p') pair = optarg;
      else if (mc == 'b') bytes = strtoull(optarg, NULL, 0);
      else if (mc == 'B') buf = (uint32_t)strtoul(optarg, NULL, 0);
      else if (mc == 'S') mx_skew = strtoull(optarg, NULL, 0);
      else if (mc == 'm' || mc == 'r') {}   /* MTU 1500, one repetition per process (lwIP is global) */
      else return 2;
    }
    return run_mem(pair, bytes, 5001, buf);
  }
  bool help = argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
  if (argc < 2 || strcmp(argv[1], "tun-serve") != 0) {
    fprintf(help ? stdout : stderr, "usage: lwip_bench tun-serve --ns NS --tun IF --addr IP --peer IP [--mtu 1500]\n"
                    "       lwip_bench mem --pair lu|ul|uu --bytes N [--buf B]  (one flow in memory: lwIP -> ustcp,\n"
                    "                  ustcp -> lwIP, ustcp -> ustcp; --buf: ustcp's buffers fixed at B)\n");
    return help ? 0 : 2;
  }
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    struct in_addr a;
    switch (ch) {
    case 'N': ns = optarg; break;
    case 'T': tun = optarg; break;
    case 'A': if (inet_pton(AF_INET, optarg, &a) == 1) addr = ntohl(a.s_addr); break;
    case 'P': if (inet_pton(AF_INET, optarg, &a) == 1) peer = ntohl(a.s_addr); break;
    case 'm': break;   /* MTU 1500 only: lwIP's TCP_MSS is fixed at 1460 */
    default: return 2;
    }
  }
  if (!addr || !peer) return 2;
  bench_pattern_init();
  if (ns) bench_enter_netns(ns);
  char ifname[IFNAMSIZ], err[256] = "";
  tun_fd = tun_open(tun, ifname, err, sizeof err);
  if (tun_fd < 0 || tun_configure(ifname, peer, addr, 1500, err, sizeof err) < 0) {
    fprintf(stderr, "lwip_bench: %s\n", err);
    return 1;
  }
  tcpip_init(NULL, NULL);
  LOCK_TCPIP_CORE();
  ip4_addr_t ip, mask, gw;
  IP4_ADDR(&ip, addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255, addr & 255);
  IP4_ADDR(&mask, 255, 255, 255, 255);
  IP4_ADDR(&gw, peer >> 24, (peer >> 16) & 255, (peer >> 8) & 255, peer & 255);
  if (!netif_add(&nif, &ip, &mask, &gw, NULL, nif_init, ip4_input)) bench_die("lwip: netif_add");
  netif_set_default(&nif);
  netif_set_up(&nif);
  netif_set_link_up(&nif);
  listen_on(5001, L_SINK);
  listen_on(5002, L_SOURCE);
  for (uint16_t i = 0; i < 16; i++) {
    listen_on((uint16_t)(5100 + i), L_ECHO);
    listen_on((uint16_t)(5200 + i), L_ECHO);
  }
  UNLOCK_TCPIP_CORE();
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  fprintf(stderr, "lwip_bench tun-serve: lwIP %s on %s\n", LWIP_VERSION_STRING, ifname);
  while (!stop) {
    struct pollfd pfd = {tun_fd, POLLIN, 0};
    int n = poll(&pfd, 1, 100);
    if (n <= 0) continue;
    LOCK_TCPIP_CORE();
    int r = tun_read_batch(tun_fd, 256, tun_in, NULL);
    UNLOCK_TCPIP_CORE();
    if (r < 0) break;
  }
  fprintf(stderr, "lwip_bench: %llu payload mismatches, %llu write errors\n",
          (unsigned long long)corrupt, (unsigned long long)tx_errors);
  return 0;
}
