/* bench/ustcp_bench: ustcp's side of `make bench` (bench/run.sh).
 *
 * Every benchmark runs ustcp stacks in this one process, single-threaded:
 *
 *   memlink   an in-memory link for real-time runs: each host has a FIFO of packet
 *             slots (grown by doubling, then reused: no allocation per packet); the
 *             output callback copies the packet into the destination's FIFO (one
 *             copy, like a wire); net_step() hands every queued packet to its stack
 *             with the monotonic clock and runs the timers that are due.
 *   bulk      one flow of N bytes from a client stack to a server stack (Gbit/s)
 *   memcpy    the ceiling: memcpy of the same number of bytes (Gbit/s)
 *   rr        short connections: connect, 64-byte request, 64-byte response,
 *             close, with C connections under way at once (connections/s)
 *   hs        handshake only: connect, close once established (connections/s)
 *   mem       N idle established connections between three stacks: bytes per
 *             connection end, from the engine's accounting (mem_bytes) and from
 *             the growth of this process's RSS
 *   scale     N established connections (up to a million) that each exchanged
 *             64 B both ways: time to open, bytes per end, and the CPU cost per
 *             packet at 1k, 100k and N connections (run_scale)
 *   flows     K bulk flows at once (B bytes each, verified): aggregate Gbit/s,
 *             Jain's fairness, peak engine memory (run_flows)
 *   lat       one 64-byte request/response round trip on a connection, median
 *             and p99 (microseconds)
 *   ooo       the out-of-order attack pattern (1-byte segments with 1-byte holes
 *             across a 32 MiB window) vs an in-order stream of 1-byte segments:
 *             CPU nanoseconds per segment of the receiving stack, and their ratio
 *   zcopy     bulk over the memlink twice per repetition, interleaved: the classic
 *             API (ustcp_send, flat output, ustcp_recv) and the zero-copy one
 *             (ustcp_send_direct filling the ring, gather output, ustcp_recv_direct
 *             verifying in place); payload bytes the stacks copied per byte
 *             (ustcp_stats), CPU ns per byte, Gbit/s (run_zcopy)
 *   loss      the simulated network (src/link/sim) in virtual time: one flow,
 *             100 ms RTT, 32 KiB buffers, given loss both ways, 10 MiB, payload
 *             verified; bytes per second of virtual time, with smoltcp's
 *             tests/netsim.rs model and parameters (run_loss)
 *   tun-serve    ustcp on a TUN device (src/link/loop), real time, serving what
 *             kernel_bench serve serves (5001 sink, 5002 source, 5100-5115 and
 *             5200-5215 echo), for the kernel's clients; runs until SIGTERM
 *   tun-reflect  the TUN ceiling: reads packets from a TUN device and writes each
 *             back with IPv4 addresses (and UDP ports) swapped, as fast as it can,
 *             for kernel_bench udp-flood; runs until SIGTERM
 *
 * Results are "R <key> <value>" lines on stdout, one per repetition.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poll.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <sys/resource.h>

#include "ustcp.h"
#include "ustcp_loop.h"
#include "link/sim.h"
#include "link/pcap.h"
#include "link/tun.h"
#include "wire/wire.h"
#include "bench_util.h"

#define IP_CLIENT 0x0a000001u   /* 10.0.0.1 */
#define IP_SERVER 0x0a000002u   /* 10.0.0.2 */
#define IP_CLIENT2 0x0a000003u  /* 10.0.0.3 */

static uint64_t opt_wall_limit_s = 120;   /* per repetition */

/* ---- memlink: the in-memory link (its queue: bench_pktq, bench_util.h) ---- */
#define NET_MAX_HOSTS 4
struct net;
struct host {
  struct net *net;
  struct ustcp_stack *st;
  uint32_t ip;
  struct bench_pktq q;
};
struct net {
  struct host h[NET_MAX_HOSTS];
  int n;
  uint64_t pkts, bytes, dropped;
};

static void link_out_iov(void *ctx, const struct iovec *iov, int cnt);
/* A flat packet is a gather list of one slice (link_out_iov, below). */
static void link_out(void *ctx, const uint8_t *pkt, size_t len)
{
  struct iovec one = {.iov_base = (void *)pkt, .iov_len = len};
  link_out_iov(ctx, &one, 1);
}

static void bench_config(struct ustcp_config *c, uint16_t mtu, uint32_t bufsz)
{
  ustcp_config_default(c);
  c->mtu = mtu;
  if (bufsz) {
    c->rmem_default = bufsz;
    c->wmem_default = bufsz;
  }
  /* Autotuning's ceilings as the kernel's in the same run (Linux's defaults
   * tcp_rmem[2] = 6 MiB, tcp_wmem[2] = 4 MiB; ustcp's own are 32 MiB for long
   * fat paths): on the zero-RTT in-memory link cwnd never stops growing, and
   * 32 MiB buffers only add cache misses and page faults (2x slower). */
  c->rmem_max = 6u << 20;
  c->wmem_max = 4u << 20;
  /* As net.ipv4.ip_local_port_range is set for the kernel's client namespace. */
  c->port_range_lo = 1024;
  c->port_range_hi = 65535;
}

/* bulk --offload: the in-memory link gets what a veth with its default
 * offloads gives the kernel: TSO/GSO frames of up to 64 KiB cross it whole
 * (never cut into segments: the receiving stack takes the frame as one
 * packet, as GRO hands the kernel's TCP one large skb) and TCP checksums are
 * neither completed nor verified (CHECKSUM_PARTIAL on the sender, the frame
 * given with USTCP_IN_CSUM_VERIFIED to the receiver, as veth marks its skbs). */
static bool opt_link_offload;
#define LINK_GSO_MAX 65535u

static void link_out_tx(void *ctx, const uint8_t *pkt, size_t len, const struct ustcp_tx_info *tx)
{
  (void)tx;   /* the frame goes whole; the receiver trusts its checksum */
  link_out(ctx, pkt, len);
}

static struct ustcp_stack *net_add(struct net *n, uint32_t ip, const struct ustcp_config *cfg)
{
  struct host *h = &n->h[n->n];
  h->net = n;
  h->ip = ip;
  bench_pktq_init(&h->q, opt_link_offload ? LINK_GSO_MAX : cfg->mtu);
  h->st = ustcp_stack_new(cfg, ip, 0x1234 + (uint64_t)n->n * 7919, link_out, h);
  if (!h->st) bench_die("ustcp_stack_new failed");
  if (opt_link_offload) ustcp_set_link_offload(h->st, LINK_GSO_MAX, true, link_out_tx, h);
  n->n++;
  return h->st;
}

static void net_free(struct net *n)
{
  for (int i = 0; i < n->n; i++) {
    ustcp_stack_free(n->h[i].st);
    bench_pktq_free(&n->h[i].q);
  }
  n->n = 0;
}

/* Delivers every packet queued now, then runs due timers. Returns true if any
 * packet moved. */
static bool net_step(struct net *n)
{
  uint64_t now = bench_now_us();
  bool any = false;
  for (int i = 0; i < n->n; i++) {
    struct host *h = &n->h[i];
    size_t k = h->q.count;   /* packets this stack's input queues for others only */
    while (k--) {
      size_t len;
      const uint8_t *pkt = bench_pktq_head(&h->q, &len);
      ustcp_input_flags(h->st, pkt, len, now, opt_link_offload ? USTCP_IN_CSUM_VERIFIED : 0);
      n->pkts++;
      n->bytes += len;
      bench_pktq_pop(&h->q);
      any = true;
    }
  }
  for (int i = 0; i < n->n; i++)
    if (ustcp_next_deadline(n->h[i].st) <= now) ustcp_poll(n->h[i].st, now);
  return any;
}

static void net_sync(struct net *n)
{
  uint64_t now = bench_now_us();
  for (int i = 0; i < n->n; i++) ustcp_poll(n->h[i].st, now);
}

static int must(int rc, const char *what)
{
  if (rc < 0 && rc != -EINPROGRESS) {
    fprintf(stderr, "ustcp_bench: %s: %s\n", what, strerror(-rc));
    exit(1);
  }
  return rc;
}

static int listen_on(struct ustcp_stack *s, uint16_t port, int backlog)
{
  int fd = must(ustcp_socket(s), "socket");
  struct ustcp_addr a = {0, port};
  must(ustcp_bind(s, fd, &a), "bind");
  must(ustcp_listen(s, fd, backlog), "listen");
  return fd;
}

static void set_nodelay(struct ustcp_stack *s, int fd)
{
  int one = 1;
  ustcp_setsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &one, sizeof one);
}

static bool wall_exceeded(uint64_t t0_ns)
{
  return bench_now_ns() - t0_ns > opt_wall_limit_s * 1000000000ull;
}

/* ---- bulk ---- */
#define BULK_CHUNK (256 * 1024)
struct bulk {
  struct net net;
  struct ustcp_stack *cs, *ss;
  int cfd, lfd, sfd;
  uint64_t total, sent, rcvd;
  bool shut, eof, failed, corrupt;
  uint8_t *rbuf;
};

/* zcopy mode: the direct API fills the send ring from the pattern (the
 * application producing its data in place) and the receiver verifies the
 * bytes where they lie in the receive ring. */
static bool bulk_direct;
static int zc_side = -1;   /* zcopy --side: -1 both, 0 classic, 1 direct */
static size_t bulk_fill(void *ctx, uint8_t *p, size_t n)
{
  struct bulk *b = ctx;
  uint64_t off = b->sent;
  uint64_t want = b->total - off;
  if (n > want) n = (size_t)want;
  for (size_t done = 0; done < n;) {
    size_t k = n - done;
    if (k > BENCH_PATTERN_SPAN) k = BENCH_PATTERN_SPAN;
    memcpy(p + done, bench_pattern_at(off + done), k);
    done += k;
  }
  b->sent += n;
  return n;
}
static size_t bulk_check(void *ctx, const uint8_t *p, size_t n)
{
  struct bulk *b = ctx;
  if (!bench_verify(b->rcvd, p, n)) b->corrupt = b->failed = true;
  b->rcvd += n;
  return n;
}

static void bulk_send(struct bulk *b)
{
  while (bulk_direct && b->sent < b->total) {
    ssize_t n = ustcp_send_direct(b->cs, b->cfd, (size_t)(b->total - b->sent), 0, bulk_fill, b);
    if (n <= 0) {
      if (n != -EAGAIN) b->failed = true;
      break;
    }
  }
  while (b->sent < b->total) {
    uint64_t want = b->total - b->sent;
    if (want > BULK_CHUNK) want = BULK_CHUNK;
    ssize_t n = ustcp_send(b->cs, b->cfd, bench_pattern_at(b->sent), (size_t)want, 0);
    if (n <= 0) {
      if (n != -EAGAIN) b->failed = true;
      break;
    }
    b->sent += (uint64_t)n;
  }
  if (b->sent == b->total && !b->shut) {
    ustcp_shutdown(b->cs, b->cfd, USTCP_SHUT_WR);
    b->shut = true;
  }
}

static void bulk_recv(struct bulk *b)
{
  if (b->sfd < 0) {
    b->sfd = ustcp_accept(b->ss, b->lfd, NULL);
    if (b->sfd < 0) { b->sfd = -1; return; }
  }
  for (;;) {
    ssize_t n;
    if (bulk_direct) {
      n = ustcp_recv_direct(b->ss, b->sfd, bulk_check, b);
      if (n > 0) continue;
    } else {
      n = ustcp_recv(b->ss, b->sfd, b->rbuf, BULK_CHUNK, 0);
    }
    if (n > 0) {
      /* The payload is checked against its stream offset (bench_util.h). */
      if (!bench_verify(b->rcvd, b->rbuf, (size_t)n)) b->corrupt = b->failed = true;
      b->rcvd += (uint64_t)n;
      continue;
    }
    if (n == 0) b->eof = true;
    else if (n != -EAGAIN) b->failed = true;
    break;
  }
}

static void bulk_client_cb(void *ctx, int fd, unsigned ev) { (void)fd; (void)ev; bulk_send(ctx); }
static void bulk_server_cb(void *ctx, int fd, unsigned ev) { (void)fd; (void)ev; bulk_recv(ctx); }

/* The gather output of the memlink: the slices go straight into the
 * destination's FIFO slot, the same one copy per packet link_out makes from a
 * flat packet (the "wire"), without the stack's staging copy before it. */
static void link_out_iov(void *ctx, const struct iovec *iov, int cnt)
{
  struct host *from = ctx;
  struct net *n = from->net;
  size_t len = 0;
  for (int i = 0; i < cnt; i++) len += iov[i].iov_len;
  if (cnt < 1 || iov[0].iov_len < 20) { n->dropped++; return; }
  const uint8_t *h = iov[0].iov_base;
  uint32_t dst = (uint32_t)h[16] << 24 | (uint32_t)h[17] << 16 | (uint32_t)h[18] << 8 | h[19];
  for (int i = 0; i < n->n; i++) {
    struct bench_pktq *q = &n->h[i].q;
    if (n->h[i].ip != dst) continue;
    if (len > q->slot_cap) { n->dropped++; return; }
    uint8_t *d = bench_pktq_tail(q);
    for (int k = 0; k < cnt; k++) {
      memcpy(d, iov[k].iov_base, iov[k].iov_len);
      d += iov[k].iov_len;
    }
    bench_pktq_push(q, len);
    return;
  }
  n->dropped++;
}

/* The two stacks of a bulk run over the in-memory link (direct: the gather
 * output and the direct buffer calls, else the classic API). */
static void bulk_setup(struct bulk *b, uint16_t mtu, uint64_t total, uint32_t bufsz, bool direct)
{
  memset(b, 0, sizeof *b);
  struct ustcp_config cfg;
  bench_config(&cfg, mtu, bufsz);
  b->cs = net_add(&b->net, IP_CLIENT, &cfg);
  b->ss = net_add(&b->net, IP_SERVER, &cfg);
  if (direct) {
    ustcp_set_output_iov(b->cs, link_out_iov, &b->net.h[0]);
    ustcp_set_output_iov(b->ss, link_out_iov, &b->net.h[1]);
  }
  bulk_direct = direct;
  b->total = total;
  b->sfd = -1;
  b->rbuf = malloc(BULK_CHUNK);
  if (!b->rbuf) bench_die("out of memory");
  ustcp_set_ready_cb(b->cs, bulk_client_cb, b);
  ustcp_set_ready_cb(b->ss, bulk_server_cb, b);
  net_sync(&b->net);
  b->lfd = listen_on(b->ss, 5001, 16);
  b->cfd = must(ustcp_socket(b->cs), "socket");
}

/* Connects and moves the bytes; *t_ns and *cpu_ns get the wall and CPU time. */
static void bulk_transfer(struct bulk *b, const char *what, uint64_t *t_ns, uint64_t *cpu_ns)
{
  struct ustcp_addr dst = {IP_SERVER, 5001};
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns();
  must(ustcp_connect(b->cs, b->cfd, &dst), "connect");
  while (!b->eof && !b->failed) {
    if (!net_step(&b->net)) {
      bulk_send(b);
      bulk_recv(b);
      if (wall_exceeded(t0)) { fprintf(stderr, "%s: wall-clock limit\n", what); b->failed = true; }
    }
  }
  *t_ns = bench_now_ns() - t0;
  *cpu_ns = bench_cpu_ns() - c0;
}

static double run_bulk(uint16_t mtu, uint64_t total, uint32_t bufsz)
{
  struct bulk b;
  bulk_setup(&b, mtu, total, bufsz, false);
  uint64_t t0 = 0, c0 = 0, t1, c1;
  bulk_transfer(&b, "bulk", &t1, &c1);
  struct ustcp_stats st;
  ustcp_get_stats(b.cs, &st);
  fprintf(stderr, "bulk mtu %u: %llu bytes in %.3f s, cpu %.3f s, %llu packets on the link, "
          "%llu retrans%s\n", mtu, (unsigned long long)b.rcvd, (double)(t1 - t0) / 1e9,
          (double)(c1 - c0) / 1e9, (unsigned long long)b.net.pkts,
          (unsigned long long)st.retrans_segs, b.corrupt ? ", PAYLOAD MISMATCH" : "");
  bool ok = !b.failed && b.rcvd == total;
  net_free(&b.net);
  free(b.rbuf);
  if (!ok) return 0;
  /* CPU cost of both ends (one process, one thread): per payload byte, and per
   * MSS-sized segment of payload (MTU - 40), the unit the kernel's row uses too. */
  char key[64];
  const char *side = opt_link_offload ? "ustcpgso" : "ustcp";
  snprintf(key, sizeof key, "cpu%u.%s.nsB", mtu, side);
  bench_result(key, (double)(c1 - c0) / (double)total);
  snprintf(key, sizeof key, "cpu%u.%s.nsSeg", mtu, side);
  bench_result(key, (double)(c1 - c0) / (double)total * (mtu - 40));
  return (double)total * 8 / ((double)(t1 - t0) / 1e9) / 1e9;
}


/* zcopy: one bulk transfer, classic API (ustcp_send from the application's
 * buffer, flat output, ustcp_recv into the application's buffer) or zero-copy
 * API (ustcp_send_direct, gather output, ustcp_recv_direct), both verified.
 * Payload bytes the stacks copied per payload byte delivered, from
 * ustcp_stats: tx (sender), rx (receiver), grow (buffer growth, both). */
struct zc_result {
  double gbps, cpu_ns_per_byte, tx, rx, grow;
};
static struct zc_result run_zcopy(bool direct, uint16_t mtu, uint64_t total, uint32_t bufsz)
{
  struct zc_result z = {0, 0, 0, 0, 0};
  struct bulk b;
  bulk_setup(&b, mtu, total, bufsz, direct);
  uint64_t t0 = 0, c0 = 0, t1, c1;
  bulk_transfer(&b, "zcopy", &t1, &c1);
  struct ustcp_stats sc, ss;
  ustcp_get_stats(b.cs, &sc);
  ustcp_get_stats(b.ss, &ss);
  bool ok = !b.failed && b.rcvd == total;
  fprintf(stderr, "zcopy %s: %llu bytes in %.3f s, %llu retrans, %llu stale%s\n",
          direct ? "direct+gather" : "classic", (unsigned long long)b.rcvd,
          (double)(t1 - t0) / 1e9, (unsigned long long)sc.retrans_segs,
          (unsigned long long)sc.out_iov_stale, b.corrupt ? ", PAYLOAD MISMATCH" : "");
  net_free(&b.net);
  free(b.rbuf);
  bulk_direct = false;
  if (!ok) return z;
  z.gbps = (double)total * 8 / ((double)(t1 - t0) / 1e9) / 1e9;
  z.cpu_ns_per_byte = (double)(c1 - c0) / (double)total;
  z.tx = (double)sc.tx_bytes_copied / (double)total;
  z.rx = (double)ss.rx_bytes_copied / (double)total;
  z.grow = (double)(sc.buf_grow_copied + ss.buf_grow_copied) / (double)total;
  return z;
}

/* The ceiling: the same bytes copied once from the sending application's buffer
 * to the receiving application's buffer (the same 256 KiB buffers the bulk run
 * reuses, so both stay in cache, as they do in the bulk run). */
static double run_memcpy(uint64_t total)
{
  uint8_t *src = malloc(BULK_CHUNK), *dst = malloc(BULK_CHUNK);
  if (!src || !dst) bench_die("out of memory (memcpy)");
  memset(src, 0x5a, BULK_CHUNK);
  memset(dst, 0, BULK_CHUNK);
  uint64_t t0 = bench_now_ns();
  for (uint64_t off = 0; off < total; off += BULK_CHUNK) {
    uint64_t n = total - off < BULK_CHUNK ? total - off : BULK_CHUNK;
    src[0] = (uint8_t)off;
    memcpy(dst, src, (size_t)n);
    __asm__ __volatile__("" : : "r"(dst) : "memory");   /* keep every copy */
  }
  uint64_t t1 = bench_now_ns();
  free(src);
  free(dst);
  return (double)total * 8 / ((double)(t1 - t0) / 1e9) / 1e9;
}

/* ---- short connections (rr, hs) ---- */
struct conn_state {
  uint8_t phase;   /* 0 unused, 1 connecting / accepted, 2 request sent / replied */
  uint8_t got;
};
struct shortc {
  struct net net;
  struct ustcp_stack *cs, *ss;
  int lfd;
  bool hs;
  uint64_t target, started, done, failed, corrupt;
  struct conn_state *cl, *sv;
  size_t cl_cap, sv_cap;
  uint8_t msg[64];
};

static struct conn_state *slot(struct conn_state **v, size_t *cap, int fd)
{
  if ((size_t)fd >= *cap) {
    size_t n = *cap ? *cap : 1024;
    while (n <= (size_t)fd) n *= 2;
    struct conn_state *nv = realloc(*v, n * sizeof *nv);
    if (!nv) bench_die("out of memory");
    memset(nv + *cap, 0, (n - *cap) * sizeof *nv);
    *v = nv;
    *cap = n;
  }
  return &(*v)[fd];
}

static void sc_start(struct shortc *c)
{
  if (c->started >= c->target) return;
  int fd = ustcp_socket(c->cs);
  if (fd < 0) { c->failed++; return; }
  set_nodelay(c->cs, fd);
  struct ustcp_addr dst = {IP_SERVER, 80};
  int rc = ustcp_connect(c->cs, fd, &dst);
  if (rc != -EINPROGRESS && rc != 0) {
    ustcp_close(c->cs, fd);
    c->failed++;
    return;
  }
  c->started++;
  struct conn_state *st = slot(&c->cl, &c->cl_cap, fd);
  st->phase = 1;
  st->got = 0;
}

static void sc_finish(struct shortc *c, int fd, struct conn_state *st, bool ok)
{
  st->phase = 0;
  ustcp_close(c->cs, fd);
  if (ok) c->done++; else c->failed++;
  sc_start(c);
}

static void sc_client_cb(void *ctx, int fd, unsigned ev)
{
  struct shortc *c = ctx;
  struct conn_state *st = slot(&c->cl, &c->cl_cap, fd);
  if (!st->phase) return;
  if (ev & USTCP_POLLERR) { sc_finish(c, fd, st, false); return; }
  if (st->phase == 1 && (ev & USTCP_POLLOUT)) {
    if (c->hs) { sc_finish(c, fd, st, true); return; }
    if (ustcp_send(c->cs, fd, c->msg, 64, 0) != 64) { sc_finish(c, fd, st, false); return; }
    st->phase = 2;
  }
  if (st->phase == 2 && (ev & (USTCP_POLLIN | USTCP_POLLHUP))) {
    uint8_t buf[128];
    for (;;) {
      ssize_t n = ustcp_recv(c->cs, fd, buf, sizeof buf, 0);
      if (n > 0) {
        /* The response is stream bytes 0..63 (bench_util.h), nothing more. */
        if (st->got + n > 64 || !bench_verify(st->got, buf, (size_t)n)) {
          c->corrupt++;
          sc_finish(c, fd, st, false);
          return;
        }
        st->got = (uint8_t)(st->got + n);
        if (st->got >= 64) { sc_finish(c, fd, st, true); return; }
        continue;
      }
      if (n != -EAGAIN) { sc_finish(c, fd, st, false); return; }
      break;
    }
  }
}

static void sc_server_cb(void *ctx, int fd, unsigned ev)
{
  struct shortc *c = ctx;
  if (fd == c->lfd) {
    int nfd;
    while ((nfd = ustcp_accept(c->ss, c->lfd, NULL)) >= 0) {
      struct conn_state *st = slot(&c->sv, &c->sv_cap, nfd);
      st->phase = 1;
      st->got = 0;
      set_nodelay(c->ss, nfd);
    }
    return;
  }
  struct conn_state *st = slot(&c->sv, &c->sv_cap, fd);
  if (!st->phase) return;
  (void)ev;
  uint8_t buf[128];
  for (;;) {
    ssize_t n = ustcp_recv(c->ss, fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (st->got + n > 64 || !bench_verify(st->got, buf, (size_t)n)) {
        c->corrupt++;               /* the request is stream bytes 0..63 */
        st->phase = 0;
        ustcp_close(c->ss, fd);
        return;
      }
      st->got = (uint8_t)(st->got + n);
      if (st->got >= 64 && st->phase == 1) {
        ustcp_send(c->ss, fd, c->msg, 64, 0);
        st->phase = 2;
      }
      continue;
    }
    if (n == -EAGAIN) return;
    st->phase = 0;          /* EOF or error: the client closed */
    ustcp_close(c->ss, fd);
    return;
  }
}

static double run_short(bool hs, uint64_t nconns, int conc)
{
  struct shortc c;
  memset(&c, 0, sizeof c);
  c.hs = hs;
  c.target = nconns;
  memcpy(c.msg, bench_pattern_at(0), sizeof c.msg);
  struct ustcp_config cfg;
  bench_config(&cfg, 1500, 0);
  c.cs = net_add(&c.net, IP_CLIENT, &cfg);
  c.ss = net_add(&c.net, IP_SERVER, &cfg);
  ustcp_set_ready_cb(c.cs, sc_client_cb, &c);
  ustcp_set_ready_cb(c.ss, sc_server_cb, &c);
  net_sync(&c.net);
  c.lfd = listen_on(c.ss, 80, 4096);
  uint64_t t0 = bench_now_ns();
  for (int i = 0; i < conc; i++) sc_start(&c);
  uint64_t idle_since = 0;
  while (c.done + c.failed < nconns) {
    if (net_step(&c.net)) { idle_since = 0; continue; }
    /* Nothing on the link: only timers can move things now. */
    uint64_t now = bench_now_ns();
    if (!idle_since) idle_since = now;
    if (now - idle_since > 5000000000ull || wall_exceeded(t0)) {
      fprintf(stderr, "%s: stalled at %llu of %llu\n", hs ? "hs" : "rr",
              (unsigned long long)(c.done + c.failed), (unsigned long long)nconns);
      break;
    }
    if (c.started < nconns && c.started - c.done - c.failed < (uint64_t)conc) sc_start(&c);
  }
  uint64_t t1 = bench_now_ns();
  struct ustcp_stats cst, sst;
  ustcp_get_stats(c.cs, &cst);
  ustcp_get_stats(c.ss, &sst);
  fprintf(stderr, "%s: %llu done, %llu failed in %.3f s; %llu packets; client retrans %llu, "
          "server retrans %llu, accept-queue drops %llu, payload mismatches %llu\n", hs ? "hs" : "rr",
          (unsigned long long)c.done, (unsigned long long)c.failed, (double)(t1 - t0) / 1e9,
          (unsigned long long)c.net.pkts, (unsigned long long)cst.retrans_segs,
          (unsigned long long)sst.retrans_segs, (unsigned long long)sst.accept_queue_drops,
          (unsigned long long)c.corrupt);
  bool ok = c.done == nconns && !c.corrupt;
  net_free(&c.net);
  free(c.cl);
  free(c.sv);
  if (!ok) return 0;
  return (double)c.done / ((double)(t1 - t0) / 1e9);
}

/* ---- memory per idle connection ---- */
struct memb {
  struct net net;
  struct ustcp_stack *srv, *cli[2];
  int lfd;
  uint64_t accepted, established, failed;
  struct conn_state *est[2];
  size_t est_cap[2];
};

static void mem_client_cb(void *ctx, int fd, unsigned ev, int which)
{
  struct memb *m = ctx;
  struct conn_state *st = slot(&m->est[which], &m->est_cap[which], fd);
  if (st->phase != 1) return;
  if (ev & USTCP_POLLERR) { st->phase = 0; m->failed++; return; }
  if (ev & USTCP_POLLOUT) { st->phase = 2; m->established++; }
}
static void mem_client0_cb(void *ctx, int fd, unsigned ev) { mem_client_cb(ctx, fd, ev, 0); }
static void mem_client1_cb(void *ctx, int fd, unsigned ev) { mem_client_cb(ctx, fd, ev, 1); }

static void mem_server_cb(void *ctx, int fd, unsigned ev)
{
  struct memb *m = ctx;
  (void)ev;
  if (fd != m->lfd) return;
  while (ustcp_accept(m->srv, m->lfd, NULL) >= 0) m->accepted++;
}

static void run_mem(uint64_t nconns)
{
  struct memb m;
  memset(&m, 0, sizeof m);
  struct ustcp_config cfg;
  bench_config(&cfg, 1500, 0);
  m.srv = net_add(&m.net, IP_SERVER, &cfg);
  m.cli[0] = net_add(&m.net, IP_CLIENT, &cfg);
  m.cli[1] = net_add(&m.net, IP_CLIENT2, &cfg);
  ustcp_set_ready_cb(m.srv, mem_server_cb, &m);
  ustcp_set_ready_cb(m.cli[0], mem_client0_cb, &m);
  ustcp_set_ready_cb(m.cli[1], mem_client1_cb, &m);
  net_sync(&m.net);
  m.lfd = listen_on(m.srv, 80, 4096);
  uint64_t mem0 = 0;
  for (int i = 0; i < m.net.n; i++) {
    struct ustcp_stats st;
    ustcp_get_stats(m.net.h[i].st, &st);
    mem0 += st.mem_bytes;
  }
  uint64_t rss0 = bench_rss_bytes();
  uint64_t t0 = bench_now_ns();
  uint64_t opened = 0;
  struct ustcp_addr dst = {IP_SERVER, 80};
  while (m.established + m.failed < nconns || m.accepted < m.established) {
    while (opened < nconns && opened - m.established - m.failed < 1000) {
      int which = (int)(opened & 1);
      struct ustcp_stack *s = m.cli[which];
      int fd = ustcp_socket(s);
      if (fd < 0) { m.failed++; opened++; continue; }
      int rc = ustcp_connect(s, fd, &dst);
      if (rc != -EINPROGRESS) { m.failed++; opened++; ustcp_close(s, fd); continue; }
      slot(&m.est[which], &m.est_cap[which], fd)->phase = 1;
      opened++;
    }
    if (!net_step(&m.net) && wall_exceeded(t0)) {
      fprintf(stderr, "mem: wall-clock limit, %llu established\n",
              (unsigned long long)m.established);
      break;
    }
  }
  /* Let the last ACKs land; idle connections send nothing. */
  for (int quiet = 0; quiet < 100;) quiet = net_step(&m.net) ? 0 : quiet + 1;
  uint64_t mem1 = 0, srv_mem = 0;
  for (int i = 0; i < m.net.n; i++) {
    struct ustcp_stats st;
    ustcp_get_stats(m.net.h[i].st, &st);
    mem1 += st.mem_bytes;
    if (m.net.h[i].st == m.srv) srv_mem = st.mem_bytes;
  }
  uint64_t rss1 = bench_rss_bytes();
  /* One accepted connection's own figure (control block and buffers). */
  struct ustcp_tcp_info ti;
  memset(&ti, 0, sizeof ti);
  int afd = -1;
  for (int fd = 0; fd < 64 && afd < 0; fd++)
    if (fd != m.lfd && ustcp_get_info(m.srv, fd, &ti) == 0 && ti.state == USTCP_ESTABLISHED) afd = fd;
  fprintf(stderr, "mem: %llu established, %llu accepted, %llu failed in %.2f s; engine %llu -> %llu "
          "bytes, RSS %llu -> %llu bytes; one connection: mem_bytes %llu, snd_buf_used %u, "
          "rcv_buf_used %u\n",
          (unsigned long long)m.established, (unsigned long long)m.accepted,
          (unsigned long long)m.failed, (double)(bench_now_ns() - t0) / 1e9,
          (unsigned long long)mem0, (unsigned long long)mem1, (unsigned long long)rss0,
          (unsigned long long)rss1, (unsigned long long)ti.mem_bytes, ti.snd_buf_used,
          ti.rcv_buf_used);
  /* The control block alone: a fresh socket's own figure. */
  int probe = ustcp_socket(m.srv);
  struct ustcp_tcp_info pi;
  memset(&pi, 0, sizeof pi);
  if (probe >= 0) ustcp_get_info(m.srv, probe, &pi);
  if (m.established == nconns && m.accepted == nconns) {
    double ends = 2.0 * (double)nconns;
    bench_result("mem.ustcp.engine", (double)(mem1 - mem0) / ends);
    /* Data buffers: what the engine holds beyond the control blocks. */
    bench_result("mem.ustcp.buffers", (double)(mem1 - mem0) / ends - (double)pi.mem_bytes);
    bench_result("mem.ustcp.rss", (double)(rss1 - rss0) / ends);
    bench_result("mem.ustcp.server_engine", (double)srv_mem / (double)nconns);
  } else {
    bench_result("mem.ustcp.engine", 0);
  }
  net_free(&m.net);
  free(m.est[0]);
  free(m.est[1]);
}

/* ---- scale: up to a million established connections (issue 12 point 3) ----
 * Two client stacks (10.0.0.1, 10.0.0.3) open N connections to a server stack
 * (10.0.0.2) listening on P ports (a client port serves every server port:
 * RFC 6056 with the 4-tuple as the key), in batches of 1000: connect, 64 bytes
 * each way (verified), then idle. Reported: the time to open them, engine
 * memory (mem_bytes) and RSS growth per connection end, and at 1k, 100k and
 * N established connections the cost of the per-packet path: 10,000 64-byte
 * request/response exchanges on connections picked at random among all of
 * them, in nanoseconds of this process's CPU per packet moved.
 * --state picks what each connection carried before it idles (issue 15 point
 * 3, the same three states bench/kernel_scale.sh measures on the kernel):
 * "never" (connected, no data), "64" (64 B each way, verified) or "1m" (1 MiB
 * each way, verified and drained), without the per-packet probes (they would
 * add traffic); results scale.<state>.<N>.engine_per_end, .rss_per_end, .open_s
 * and .rss_trimmed_per_end (after malloc_trim). Without --state: the run above. */
struct scale {
  struct net net;
  struct ustcp_stack *srv, *cli[2];
  int *lfd;
  unsigned nports;
  int *cfd;                 /* client descriptors, connection i on cli[i & 1] */
  uint64_t n_est;
  int *ready;               /* descriptors that became readable (server side) */
  size_t nready, ready_cap;
  uint64_t bad;
};

static void scale_srv_cb(void *ctx, int fd, unsigned ev)
{
  struct scale *sc = ctx;
  if (!(ev & USTCP_POLLIN)) return;
  for (unsigned i = 0; i < sc->nports; i++)
    if (fd == sc->lfd[i]) return;     /* listeners are drained apart */
  if (sc->nready == sc->ready_cap) {
    sc->ready_cap = sc->ready_cap ? sc->ready_cap * 2 : 4096;
    sc->ready = realloc(sc->ready, sc->ready_cap * sizeof *sc->ready);
    if (!sc->ready) bench_die("out of memory (scale)");
  }
  sc->ready[sc->nready++] = fd;
}

static void scale_quiet(struct scale *sc)
{
  while (net_step(&sc->net)) {}
}

/* The server answers every request that arrived: 64 bytes read, 64 written. */
static void scale_serve(struct scale *sc)
{
  for (size_t i = 0; i < sc->nready; i++) {
    uint8_t b[64];
    ssize_t n = ustcp_recv(sc->srv, sc->ready[i], b, sizeof b, 0);
    if (n == 0 || n == -EAGAIN) continue;
    if (n != 64 || !bench_verify(0, b, 64)) { sc->bad++; continue; }
    if (ustcp_send(sc->srv, sc->ready[i], bench_pattern_at(64), 64, 0) != 64) sc->bad++;
  }
  sc->nready = 0;
}

static void scale_exchange(struct scale *sc, uint64_t from, uint64_t to)
{
  for (uint64_t i = from; i < to; i++)
    if (ustcp_send(sc->cli[i & 1], sc->cfd[i], bench_pattern_at(0), 64, 0) != 64) sc->bad++;
  scale_quiet(sc);
  scale_serve(sc);
  scale_quiet(sc);
  for (uint64_t i = from; i < to; i++) {
    uint8_t b[64];
    if (ustcp_recv(sc->cli[i & 1], sc->cfd[i], b, sizeof b, 0) != 64 || !bench_verify(64, b, 64))
      sc->bad++;
  }
}

static double scale_pkt_ns(struct scale *sc, uint64_t *rng)
{
  uint64_t pk0 = sc->net.pkts, c0 = bench_cpu_ns();
  for (int round = 0; round < 10; round++) {
    uint64_t pick[1000];
    for (int k = 0; k < 1000; k++) {
      *rng ^= *rng << 13; *rng ^= *rng >> 7; *rng ^= *rng << 17;
      pick[k] = *rng % sc->n_est;
    }
    for (int k = 0; k < 1000; k++) {
      uint64_t i = pick[k];
      if (ustcp_send(sc->cli[i & 1], sc->cfd[i], bench_pattern_at(0), 64, 0) != 64) sc->bad++;
    }
    scale_quiet(sc);
    scale_serve(sc);
    scale_quiet(sc);
    for (int k = 0; k < 1000; k++) {
      uint64_t i = pick[k];
      uint8_t b[128];
      while (ustcp_recv(sc->cli[i & 1], sc->cfd[i], b, sizeof b, 0) > 0) {}
    }
  }
  uint64_t pk = sc->net.pkts - pk0;
  return pk ? (double)(bench_cpu_ns() - c0) / (double)pk : 0;
}

/* 1 MiB each way on connections [from, to) (client descriptors sc->cfd,
 * server descriptors sfd[0..to-from)), both sides at once, every byte checked. */
static void scale_bulk(struct scale *sc, uint64_t from, uint64_t to, const int *sfd, uint64_t t0)
{
  const uint64_t bytes = 1u << 20;
  size_t n = (size_t)(to - from);
  uint64_t (*e)[4] = calloc(n, sizeof *e);   /* client tx, client rx, server tx, server rx */
  uint8_t *buf = malloc(BULK_CHUNK);
  if (!e || !buf) bench_die("out of memory (scale)");
  for (size_t left = n; left;) {
    left = 0;
    for (size_t j = 0; j < n; j++) {
      for (int side = 0; side < 2; side++) {
        struct ustcp_stack *st = side ? sc->srv : sc->cli[(from + j) & 1];
        int fd = side ? sfd[j] : sc->cfd[from + j];
        uint64_t *tx = &e[j][2 * side], *rx = &e[j][2 * side + 1];
        while (*tx < bytes) {
          size_t want = bytes - *tx < BULK_CHUNK ? (size_t)(bytes - *tx) : BULK_CHUNK;
          ssize_t w = ustcp_send(st, fd, bench_pattern_at(*tx), want, 0);
          if (w <= 0) break;
          *tx += (uint64_t)w;
        }
        for (;;) {
          ssize_t r = ustcp_recv(st, fd, buf, BULK_CHUNK, 0);
          if (r <= 0) break;
          if (!bench_verify(*rx, buf, (size_t)r)) sc->bad++;
          *rx += (uint64_t)r;
        }
        if (*tx < bytes || *rx < bytes) left++;
      }
    }
    scale_quiet(sc);
    sc->nready = 0;
    if (left && wall_exceeded(t0)) { sc->bad++; break; }
  }
  free(e);
  free(buf);
}

static void run_scale(uint64_t nconns, const char *state)
{
  /* No --state: the issue 12 run (64 B each way, the per-packet probes and
   * the scale.open_s/engine_per_end/rss_per_end keys run.sh's rows read).
   * An explicit state: that state only, no probes, keys scale.<state>.<N>.* */
  bool legacy = !state;
  if (legacy) state = "64";
  int mode = !strcmp(state, "never") ? 0 : !strcmp(state, "64") ? 1 : !strcmp(state, "1m") ? 2 : -1;
  if (mode < 0) bench_die("--state: never, 64 or 1m");
  int sfd[1000];
  struct scale sc;
  memset(&sc, 0, sizeof sc);
  struct ustcp_config cfg;
  bench_config(&cfg, 1500, 0);
  cfg.max_sockets = (uint32_t)(nconns + 1024);
  sc.srv = net_add(&sc.net, IP_SERVER, &cfg);
  sc.cli[0] = net_add(&sc.net, IP_CLIENT, &cfg);
  sc.cli[1] = net_add(&sc.net, IP_CLIENT2, &cfg);
  ustcp_set_ready_cb(sc.srv, scale_srv_cb, &sc);
  net_sync(&sc.net);
  /* 64,512 ports a client, shared across server ports: 2 x 64,512 x P >= N. */
  sc.nports = (unsigned)((nconns + 2 * 60000 - 1) / (2 * 60000));
  sc.lfd = calloc(sc.nports, sizeof *sc.lfd);
  sc.cfd = calloc(nconns, sizeof *sc.cfd);
  if (!sc.lfd || !sc.cfd) bench_die("out of memory (scale)");
  for (unsigned p = 0; p < sc.nports; p++) sc.lfd[p] = listen_on(sc.srv, (uint16_t)(8000 + p), 4096);
  uint64_t mem0 = 0;
  for (int i = 0; i < sc.net.n; i++) {
    struct ustcp_stats st;
    ustcp_get_stats(sc.net.h[i].st, &st);
    mem0 += st.mem_bytes;
  }
  uint64_t rss0 = bench_rss_bytes(), t0 = bench_now_ns(), rng = 0x9e3779b97f4a7c15ull;
  uint64_t next_probe = 1000, failed = 0, next_note = t0 + 10000000000ull;
  while (sc.n_est < nconns) {
    /* Progress on long runs (the 1 MiB state at 1M takes an hour): a line on
     * stderr every 10 s, none for runs shorter than that. */
    uint64_t now = bench_now_ns();
    if (now >= next_note) {
      fprintf(stderr, "scale: %llu of %llu connections (state %s), %.0f s\n", (unsigned long long)sc.n_est,
              (unsigned long long)nconns, state, (double)(now - t0) / 1e9);
      next_note = now + 10000000000ull;
    }
    uint64_t from = sc.n_est, to = from + 1000 < nconns ? from + 1000 : nconns;
    for (uint64_t i = from; i < to; i++) {
      struct ustcp_stack *c = sc.cli[i & 1];
      int fd = ustcp_socket(c);
      struct ustcp_addr dst = {IP_SERVER, (uint16_t)(8000 + (i / 2) % sc.nports)};
      int rc = fd < 0 ? fd : ustcp_connect(c, fd, &dst);
      if (rc != -EINPROGRESS) {
        fprintf(stderr, "scale: connection %llu: %s\n", (unsigned long long)i, strerror(-rc));
        failed = 1;
        break;
      }
      sc.cfd[i] = fd;
    }
    if (failed) break;
    scale_quiet(&sc);
    size_t nacc = 0;
    for (unsigned p = 0; p < sc.nports; p++) {
      int a;
      while ((a = ustcp_accept(sc.srv, sc.lfd[p], NULL)) >= 0)
        if (nacc < 1000) sfd[nacc++] = a;
    }
    sc.nready = 0;                   /* accepted ones readable later, with data */
    if (mode == 1) scale_exchange(&sc, from, to);
    if (mode == 2) {
      if (nacc != to - from) bench_die("scale: a batch was not accepted whole");
      scale_bulk(&sc, from, to, sfd, t0);
    }
    sc.n_est = to;
    if (legacy && (sc.n_est == next_probe || sc.n_est == nconns)) {
      char key[64];
      double ns = scale_pkt_ns(&sc, &rng);
      snprintf(key, sizeof key, "scale.pkt_ns.%llu", (unsigned long long)sc.n_est);
      bench_result(key, ns);
      next_probe = next_probe == 1000 ? 100000 : UINT64_MAX;
      fprintf(stderr, "scale: %llu connections in %.1f s\n", (unsigned long long)sc.n_est,
              (double)(bench_now_ns() - t0) / 1e9);
    }
  }
  double open_s = (double)(bench_now_ns() - t0) / 1e9;
  /* Idle: let delayed ACKs go (the last exchange's ACKs wait up to 40 ms). */
  uint64_t until = bench_now_ns() + 300000000ull;
  while (bench_now_ns() < until) net_step(&sc.net);
  uint64_t mem1 = 0;
  for (int i = 0; i < sc.net.n; i++) {
    struct ustcp_stats st;
    ustcp_get_stats(sc.net.h[i].st, &st);
    mem1 += st.mem_bytes;
  }
  /* The in-memory link's packet queues are the simulated wire, not memory of
   * the stacks: they grew to the transfers' peak of packets in flight (in the
   * 1 MiB state, hundreds of kB per connection) and are empty now. Without
   * this the 1 MiB state's RSS measured the wire's high-water mark. */
  for (int i = 0; i < sc.net.n; i++) {
    struct bench_pktq *q = &sc.net.h[i].q;
    if (q->count == 0) bench_pktq_free(q);
  }
  uint64_t rss1 = bench_rss_bytes();
  double ends = 2.0 * (double)sc.n_est;
  fprintf(stderr, "scale: %llu connections (state %s, %llu bad), opened in %.1f s; engine "
          "%.0f B and RSS %.0f B per end\n", (unsigned long long)sc.n_est, state,
          (unsigned long long)sc.bad, open_s, (double)(mem1 - mem0) / ends,
          (double)(rss1 - rss0) / ends);
  bool ok = !failed && !sc.bad && sc.n_est == nconns;
  if (legacy) {
    bench_result("scale.open_s", ok ? open_s : 0);
    if (ok) {
      bench_result("scale.engine_per_end", (double)(mem1 - mem0) / ends);
      bench_result("scale.rss_per_end", (double)(rss1 - rss0) / ends);
    }
  }
  /* An explicit state, keyed like kernel_scale's kscale.<state>.<N>.* */
  char key[96];
  if (legacy) goto done;
  snprintf(key, sizeof key, "scale.%s.%llu.engine_per_end", state, (unsigned long long)nconns);
  bench_result(key, ok ? (double)(mem1 - mem0) / ends : 0);
  snprintf(key, sizeof key, "scale.%s.%llu.rss_per_end", state, (unsigned long long)nconns);
  bench_result(key, ok ? (double)(rss1 - rss0) / ends : 0);
  snprintf(key, sizeof key, "scale.%s.%llu.open_s", state, (unsigned long long)nconns);
  bench_result(key, ok ? open_s : 0);
#ifdef __GLIBC__
  /* What of the RSS is freed memory glibc kept (buffers of the 1 MiB state,
   * freed between live objects) rather than memory the stacks hold. */
  malloc_trim(0);
  snprintf(key, sizeof key, "scale.%s.%llu.rss_trimmed_per_end", state, (unsigned long long)nconns);
  bench_result(key, ok ? (double)(bench_rss_bytes() - rss0) / ends : 0);
#endif
done:
  net_free(&sc.net);
  free(sc.lfd);
  free(sc.cfd);
  free(sc.ready);
}

/* ---- flows: K concurrent bulk flows (issues 12 point 2 and 15 point 3) ----
 * One client stack opens K connections to one server stack and sends B bytes
 * of the pattern on each at once, the default buffers (autotuned) on both;
 * the server reads every flow and checks each byte against its offset.
 * Reported: the aggregate rate (all bytes over the time until the last flow
 * ends), Jain's fairness index of the flows' own rates (B over each flow's
 * completion time: 1 = all equal), and the peak engine memory of both stacks
 * (mem_peak_bytes) with the process's peak RSS: what K flows at once cost. */
struct flowst {
  uint64_t sent, rcvd, done_ns;
  bool want;                         /* queued in a ready list */
};
struct flows {
  struct net net;
  struct ustcp_stack *cs, *ss;
  int lfd;
  uint64_t k, bytes, ndone, corrupt, t0;
  struct flowst *cl, *sv;            /* by descriptor */
  size_t cl_cap, sv_cap;
  int *rl[2];                        /* ready descriptors: 0 client, 1 server */
  size_t nrl[2], rl_cap[2];
};

static struct flowst *fslot(struct flowst **v, size_t *cap, int fd)
{
  if ((size_t)fd >= *cap) {
    size_t n = *cap ? *cap : 1024;
    while (n <= (size_t)fd) n *= 2;
    struct flowst *nv = realloc(*v, n * sizeof *nv);
    if (!nv) bench_die("out of memory (flows)");
    memset(nv + *cap, 0, (n - *cap) * sizeof *nv);
    *v = nv;
    *cap = n;
  }
  return &(*v)[fd];
}

static void flows_mark(struct flows *f, int side, int fd)
{
  struct flowst *st = side ? fslot(&f->sv, &f->sv_cap, fd) : fslot(&f->cl, &f->cl_cap, fd);
  if (st->want) return;
  st->want = true;
  if (f->nrl[side] == f->rl_cap[side]) {
    f->rl_cap[side] = f->rl_cap[side] ? f->rl_cap[side] * 2 : 1024;
    f->rl[side] = realloc(f->rl[side], f->rl_cap[side] * sizeof(int));
    if (!f->rl[side]) bench_die("out of memory (flows)");
  }
  f->rl[side][f->nrl[side]++] = fd;
}

static void flows_client_cb(void *ctx, int fd, unsigned ev)
{
  if (ev & (USTCP_POLLOUT | USTCP_POLLERR)) flows_mark(ctx, 0, fd);
}

static void flows_server_cb(void *ctx, int fd, unsigned ev)
{
  struct flows *f = ctx;
  if (fd == f->lfd) {
    int a;
    while ((a = ustcp_accept(f->ss, f->lfd, NULL)) >= 0) flows_mark(f, 1, a);
    return;
  }
  if (ev & (USTCP_POLLIN | USTCP_POLLHUP | USTCP_POLLERR)) flows_mark(f, 1, fd);
}

static void flows_work(struct flows *f, uint8_t *buf, size_t bufsz)
{
  for (int side = 0; side < 2; side++) {
    size_t n = f->nrl[side];
    int *list = malloc((n ? n : 1) * sizeof(int));
    if (!list) bench_die("out of memory (flows)");
    memcpy(list, f->rl[side], n * sizeof(int));
    f->nrl[side] = 0;
    for (size_t i = 0; i < n; i++) {
      int fd = list[i];
      if (side == 0) {
        struct flowst *st = fslot(&f->cl, &f->cl_cap, fd);
        st->want = false;
        while (st->sent < f->bytes) {
          size_t want = f->bytes - st->sent < BULK_CHUNK ? (size_t)(f->bytes - st->sent) : BULK_CHUNK;
          ssize_t w = ustcp_send(f->cs, fd, bench_pattern_at(st->sent), want, 0);
          if (w <= 0) break;
          st->sent += (uint64_t)w;
        }
      } else {
        struct flowst *st = fslot(&f->sv, &f->sv_cap, fd);
        st->want = false;
        for (;;) {
          ssize_t r = ustcp_recv(f->ss, fd, buf, bufsz, 0);
          if (r <= 0) break;
          if (!bench_verify(st->rcvd, buf, (size_t)r)) f->corrupt++;
          st->rcvd += (uint64_t)r;
        }
        if (st->rcvd >= f->bytes && !st->done_ns) {
          st->done_ns = bench_now_ns() - f->t0;
          f->ndone++;
        }
      }
    }
    free(list);
  }
}

static void run_flows(uint64_t k, uint64_t bytes)
{
  struct flows f;
  memset(&f, 0, sizeof f);
  f.k = k;
  f.bytes = bytes;
  struct ustcp_config cfg;
  bench_config(&cfg, 1500, 0);
  cfg.max_sockets = (uint32_t)(k + 1024);
  f.cs = net_add(&f.net, IP_CLIENT, &cfg);
  f.ss = net_add(&f.net, IP_SERVER, &cfg);
  ustcp_set_ready_cb(f.cs, flows_client_cb, &f);
  ustcp_set_ready_cb(f.ss, flows_server_cb, &f);
  net_sync(&f.net);
  f.lfd = listen_on(f.ss, 5001, 4096);
  uint8_t *buf = malloc(BULK_CHUNK);
  if (!buf) bench_die("out of memory (flows)");
  f.t0 = bench_now_ns();
  uint64_t c0 = bench_cpu_ns(), opened = 0;
  struct ustcp_addr dst = {IP_SERVER, 5001};
  while (f.ndone < k) {
    /* Connections open 1000 per step (the listener's backlog is 4096 and the
     * server accepts in its callback), so all K run at once soon. */
    for (int i = 0; i < 1000 && opened < k; i++) {
      int fd = must(ustcp_socket(f.cs), "socket");
      must(ustcp_connect(f.cs, fd, &dst), "connect");
      opened++;
    }
    bool moved = net_step(&f.net);
    flows_work(&f, buf, BULK_CHUNK);
    if (!moved && wall_exceeded(f.t0)) {
      fprintf(stderr, "flows: wall-clock limit, %llu of %llu flows done\n",
              (unsigned long long)f.ndone, (unsigned long long)k);
      break;
    }
  }
  uint64_t t1 = bench_now_ns() - f.t0, c1 = bench_cpu_ns();
  double sum = 0, sq = 0;
  uint64_t last = 0, n = 0;
  for (size_t fd = 0; fd < f.sv_cap; fd++) {
    struct flowst *st = &f.sv[fd];
    if (!st->done_ns) continue;
    double x = (double)bytes / ((double)st->done_ns / 1e9);
    sum += x;
    sq += x * x;
    n++;
    if (st->done_ns > last) last = st->done_ns;
  }
  struct ustcp_stats a, b;
  ustcp_get_stats(f.cs, &a);
  ustcp_get_stats(f.ss, &b);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double jain = n && sq > 0 ? sum * sum / ((double)n * sq) : 0;
  double gbps = last ? (double)(k * bytes) * 8 / ((double)last / 1e9) / 1e9 : 0;
  fprintf(stderr, "flows: %llu x %llu bytes: %llu done in %.2f s (cpu %.2f s), %.3f Gbit/s, "
          "Jain %.3f, engine peak %llu + %llu bytes, max RSS %ld KiB%s\n",
          (unsigned long long)k, (unsigned long long)bytes, (unsigned long long)f.ndone,
          (double)t1 / 1e9, (double)(c1 - c0) / 1e9, gbps, jain,
          (unsigned long long)a.mem_peak_bytes, (unsigned long long)b.mem_peak_bytes,
          ru.ru_maxrss, f.corrupt ? ", PAYLOAD MISMATCH" : "");
  char key[64];
  bool ok = f.ndone == k && !f.corrupt;
  snprintf(key, sizeof key, "flows%llu.gbps", (unsigned long long)k);
  bench_result(key, ok ? gbps : 0);
  snprintf(key, sizeof key, "flows%llu.jain", (unsigned long long)k);
  bench_result(key, ok ? jain : 0);
  snprintf(key, sizeof key, "flows%llu.engine_peak", (unsigned long long)k);
  bench_result(key, ok ? (double)(a.mem_peak_bytes + b.mem_peak_bytes) : 0);
  net_free(&f.net);
  free(buf);
  free(f.cl);
  free(f.sv);
  free(f.rl[0]);
  free(f.rl[1]);
}

/* ---- latency ---- */
struct lat {
  struct net net;
  struct ustcp_stack *cs, *ss;
  int cfd, lfd, sfd;
  uint32_t sgot, cgot;
  bool connected;
  uint8_t msg[64];
};

static void lat_client_cb(void *ctx, int fd, unsigned ev)
{
  struct lat *l = ctx;
  (void)fd;
  if (ev & USTCP_POLLOUT) l->connected = true;
  uint8_t buf[256];
  ssize_t n;
  while ((n = ustcp_recv(l->cs, l->cfd, buf, sizeof buf, 0)) > 0) l->cgot += (uint32_t)n;
}

static void lat_server_cb(void *ctx, int fd, unsigned ev)
{
  struct lat *l = ctx;
  (void)ev;
  if (fd == l->lfd) {
    int nfd = ustcp_accept(l->ss, l->lfd, NULL);
    if (nfd >= 0) { l->sfd = nfd; set_nodelay(l->ss, nfd); }
    return;
  }
  if (fd != l->sfd) return;
  uint8_t buf[256];
  ssize_t n;
  while ((n = ustcp_recv(l->ss, l->sfd, buf, sizeof buf, 0)) > 0) {
    l->sgot += (uint32_t)n;
    while (l->sgot >= 64) {
      l->sgot -= 64;
      ustcp_send(l->ss, l->sfd, l->msg, 64, 0);
    }
  }
}

static void run_lat(uint64_t iters)
{
  struct lat l;
  memset(&l, 0, sizeof l);
  l.sfd = -1;
  memset(l.msg, 'l', sizeof l.msg);
  struct ustcp_config cfg;
  bench_config(&cfg, 1500, 0);
  l.cs = net_add(&l.net, IP_CLIENT, &cfg);
  l.ss = net_add(&l.net, IP_SERVER, &cfg);
  ustcp_set_ready_cb(l.cs, lat_client_cb, &l);
  ustcp_set_ready_cb(l.ss, lat_server_cb, &l);
  net_sync(&l.net);
  l.lfd = listen_on(l.ss, 7, 16);
  l.cfd = must(ustcp_socket(l.cs), "socket");
  set_nodelay(l.cs, l.cfd);
  struct ustcp_addr dst = {IP_SERVER, 7};
  must(ustcp_connect(l.cs, l.cfd, &dst), "connect");
  uint64_t t0 = bench_now_ns();
  while (!l.connected || l.sfd < 0) {
    net_step(&l.net);
    if (wall_exceeded(t0)) bench_die("lat: no connection");
  }
  uint64_t warm = iters / 10 + 100;
  uint64_t *samples = malloc(iters * sizeof *samples);
  if (!samples) bench_die("out of memory");
  for (uint64_t i = 0; i < warm + iters; i++) {
    uint32_t want = l.cgot + 64;
    uint64_t a = bench_now_ns();
    if (ustcp_send(l.cs, l.cfd, l.msg, 64, 0) != 64) bench_die("lat: send failed");
    while (l.cgot < want) {
      net_step(&l.net);
      if (wall_exceeded(t0)) bench_die("lat: wall-clock limit");
    }
    uint64_t b = bench_now_ns();
    if (i >= warm) samples[i - warm] = b - a;
  }
  uint64_t p50 = bench_percentile(samples, iters, 50);
  uint64_t p99 = bench_percentile(samples, iters, 99);
  bench_result("lat.ustcp.p50", (double)p50 / 1000.0);
  bench_result("lat.ustcp.p99", (double)p99 / 1000.0);
  free(samples);
  net_free(&l.net);
}

/* ---- loss curve in the simulated network (virtual time) ---- */
struct lossb {
  struct sim_net *sim;
  struct ustcp_stack *st[2];      /* 0 receiver (listens), 1 sender */
  int lfd, sfd, cfd;
  uint64_t total, sent, rcvd;
  uint64_t accepted_at;           /* virtual time of the accept, 0 before */
  bool failed;
};
struct lossb_host {
  struct lossb *lb;
  int id;
  int host;
};

static void lb_out(void *ctx, const uint8_t *pkt, size_t len)
{
  struct lossb_host *h = ctx;
  sim_send(h->lb->sim, h->host, pkt, len);
}
static void lb_deliver(void *ctx, const uint8_t *pkt, size_t len, uint64_t now)
{
  struct lossb_host *h = ctx;
  ustcp_input(h->lb->st[h->id], pkt, len, now);
}
static uint64_t lb_deadline(void *ctx)
{
  struct lossb_host *h = ctx;
  uint64_t d = ustcp_next_deadline(h->lb->st[h->id]);
  return d == USTCP_NO_DEADLINE ? SIM_NO_DEADLINE : d;
}
static void lb_poll(void *ctx, uint64_t now)
{
  struct lossb_host *h = ctx;
  ustcp_poll(h->lb->st[h->id], now);
}

static void lb_send(struct lossb *b)
{
  while (b->sent < b->total) {
    uint64_t want = b->total - b->sent;
    if (want > 32768) want = 32768;
    ssize_t n = ustcp_send(b->st[1], b->cfd, bench_pattern_at(b->sent), (size_t)want, 0);
    if (n <= 0) { if (n != -EAGAIN) b->failed = true; break; }
    b->sent += (uint64_t)n;
  }
}
static void lb_sender_cb(void *ctx, int fd, unsigned ev)
{
  struct lossb *b = ctx;
  (void)fd;
  if (ev & USTCP_POLLERR) {
    int err = ustcp_sock_error(b->st[1], b->cfd);
    fprintf(stderr, "loss: sender error %s\n", strerror(-err));
    b->failed = true;
    return;
  }
  lb_send(b);
}
static void lb_receiver_cb(void *ctx, int fd, unsigned ev)
{
  struct lossb *b = ctx;
  (void)ev;
  if (fd == b->lfd) {
    int nfd = ustcp_accept(b->st[0], b->lfd, NULL);
    if (nfd >= 0) {
      b->sfd = nfd;
      b->accepted_at = sim_now(b->sim);
    }
  }
  if (b->sfd < 0) return;
  uint8_t buf[32768];
  ssize_t n;
  while ((n = ustcp_recv(b->st[0], b->sfd, buf, sizeof buf, 0)) > 0) {
    if (!bench_verify(b->rcvd, buf, (size_t)n)) {
      fprintf(stderr, "loss: payload mismatch at offset %llu\n", (unsigned long long)b->rcvd);
      b->failed = true;
      return;
    }
    b->rcvd += (uint64_t)n;
  }
}

/* The model and parameters of smoltcp's tests/netsim.rs (fn netsim, the row of
 * 32768-byte buffers), which produced the figures bench/run.sh prints beside these:
 * - each direction is a Bottleneck (link rate, drop-tail buffer counted in bytes)
 *   then a Wire (one-way latency RTT/2, loss drawn per packet from that
 *   direction's own generator); smoltcp's run has an unlimited rate and buffer
 *   (u64::MAX, usize::MAX), as rate_bps = queue_bytes = 0 here;
 * - smoltcp seeds the listener -> connector generator with 0 and the reverse with 1;
 *   here seed s gives the receiver -> sender (ACK) direction 2s and the data
 *   direction 2s + 1, so s = 0 has smoltcp's seed numbers (not its stream: its
 *   generator is ChaCha20, this one xoshiro256**);
 * - the connector sends, the listener receives, both sockets have 32768-byte
 *   send and receive buffers, 10 MiB, and the figure is the bytes received over
 *   the virtual time from before the connect to the last byte.
 * shared_rng selects this simulator's older model instead: one generator for both
 *   directions (seeded by s + 1), so the ACKs' draws move the data's losses. */
static bool opt_loss_shared_rng;
static uint64_t opt_loss_rate_bps, opt_loss_queue_bytes;
/* --vtime S: instead of a byte count, the bytes received in the S seconds after
 * the accept, over the time since the connect (bench/kernel_loss.sh's duration
 * mode, for loss rates where a fixed size takes the kernel too long). */
static uint64_t opt_loss_vtime_us;
/* --pcap FILE: the first repetition's packets as they arrive (both directions,
 * at arrival time; lost ones are not in it), for tshark. */
static const char *opt_loss_pcap;
static struct pcap_writer *loss_pcap;
static void lb_tap(void *ctx, int from_host, int to_host, enum sim_fate fate, const uint8_t *pkt,
                   size_t len, uint64_t now_us)
{
  (void)ctx; (void)from_host; (void)to_host;
  if (fate == SIM_DELIVERED && loss_pcap) pcap_writer_write(loss_pcap, now_us, pkt, len);
}

static double run_loss(double loss, uint64_t total, uint64_t seed)
{
  static struct lossb b;
  memset(&b, 0, sizeof b);
  if (opt_loss_vtime_us) total = UINT64_MAX;
  b.total = total;
  b.sfd = -1;
  b.sim = sim_new(opt_loss_shared_rng ? seed + 1 : seed);
  struct ustcp_config cfg;
  bench_config(&cfg, 1500, 32768);
  struct lossb_host hosts[2];
  static const struct sim_host_ops ops = {lb_deliver, lb_deadline, lb_poll};
  for (int i = 0; i < 2; i++) {
    hosts[i].lb = &b;
    hosts[i].id = i;
    uint32_t ip = i == 0 ? IP_SERVER : IP_CLIENT;
    b.st[i] = ustcp_stack_new(&cfg, ip, seed * 31 + (uint64_t)i, lb_out, &hosts[i]);
    if (!b.st[i]) bench_die("ustcp_stack_new");
    hosts[i].host = sim_add_host(b.sim, i == 0 ? "receiver" : "sender", ip, &ops, &hosts[i]);
  }
  struct sim_link_cfg lc;
  memset(&lc, 0, sizeof lc);
  lc.delay_us = 50000;      /* 100 ms RTT */
  lc.loss = loss;
  lc.bandwidth_bps = opt_loss_rate_bps;
  lc.queue_limit_bytes = opt_loss_queue_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)opt_loss_queue_bytes;
  sim_set_all_links(b.sim, &lc);
  if (!opt_loss_shared_rng) {
    sim_set_link_seed(b.sim, hosts[0].host, hosts[1].host, 2 * seed);
    sim_set_link_seed(b.sim, hosts[1].host, hosts[0].host, 2 * seed + 1);
  }
  if (opt_loss_pcap) {
    loss_pcap = pcap_writer_open(opt_loss_pcap);
    if (!loss_pcap) bench_die("--pcap");
    sim_set_tap(b.sim, lb_tap, NULL);
    opt_loss_pcap = NULL;   /* the first repetition only */
  }
  ustcp_set_ready_cb(b.st[0], lb_receiver_cb, &b);
  ustcp_set_ready_cb(b.st[1], lb_sender_cb, &b);
  b.lfd = listen_on(b.st[0], 1234, 16);
  b.cfd = must(ustcp_socket(b.st[1]), "socket");
  /* 32 KiB buffers set the way an application fixes them (SO_RCVBUF before
   * connect/accept), so the window scale fits them. */
  int rcvbuf = 32768;
  must(ustcp_setsockopt(b.st[0], b.lfd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &rcvbuf, sizeof rcvbuf), "SO_RCVBUF");
  must(ustcp_setsockopt(b.st[1], b.cfd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &rcvbuf, sizeof rcvbuf), "SO_RCVBUF");
  must(ustcp_setsockopt(b.st[0], b.lfd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &rcvbuf, sizeof rcvbuf), "SO_SNDBUF");
  must(ustcp_setsockopt(b.st[1], b.cfd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &rcvbuf, sizeof rcvbuf), "SO_SNDBUF");
  struct ustcp_addr dst = {IP_SERVER, 1234};
  must(ustcp_connect(b.st[1], b.cfd, &dst), "connect");
  const uint64_t vlimit_us = 500000ull * USTCP_SEC;
  uint64_t t0 = bench_now_ns();
  while (b.rcvd < total && !b.failed) {
    uint64_t until = vlimit_us;
    if (opt_loss_vtime_us && b.sfd >= 0) until = b.accepted_at + opt_loss_vtime_us;
    if (!sim_step(b.sim, until)) {
      if (opt_loss_vtime_us && b.sfd >= 0) break;   /* the window is over */
      b.failed = true;
      fprintf(stderr, "loss: stuck\n");
      break;
    }
    if (wall_exceeded(t0)) { b.failed = true; fprintf(stderr, "loss: wall-clock limit\n"); break; }
  }
  uint64_t vt = sim_now(b.sim);
  struct ustcp_tcp_info ti;
  memset(&ti, 0, sizeof ti);
  ustcp_get_info(b.st[1], b.cfd, &ti);
  struct sim_stats ss;
  sim_get_stats(b.sim, &ss);
  fprintf(stderr, "loss %.2f seed %llu (%s): %llu bytes in %.3f virtual s; sim: %llu packets, "
          "%llu lost, %llu tail-dropped; sender: %llu segments, "
          "%llu retransmitted (%llu fast retransmits, %llu RTO expirations), max backoff "
          "in force at the end %u\n", loss, (unsigned long long)seed,
          opt_loss_shared_rng ? "one shared generator" : "one generator per direction",
          (unsigned long long)b.rcvd, (double)vt / 1e6,
          (unsigned long long)ss.sent, (unsigned long long)ss.dropped_loss,
          (unsigned long long)ss.dropped_queue,
          (unsigned long long)ti.data_segs_out,
          (unsigned long long)ti.retrans_segs, (unsigned long long)ti.fast_retrans,
          (unsigned long long)ti.rto_expirations, ti.backoff);
  struct ustcp_stats sst;
  ustcp_get_stats(b.st[1], &sst);
  fprintf(stderr, "  sender: %llu D-SACKs received, %llu segments RACK marked lost, %llu "
          "recoveries undone\n", (unsigned long long)sst.tcp_dsacks_in,
          (unsigned long long)sst.tcp_rack_lost, (unsigned long long)sst.tcp_spurious_undos);
  for (int i = 0; i < 2; i++) ustcp_stack_free(b.st[i]);
  sim_free(b.sim);
  if (loss_pcap) {
    pcap_writer_close(loss_pcap);
    loss_pcap = NULL;
  }
  if (b.failed || !vt || (!opt_loss_vtime_us && b.rcvd != total)) return 0;
  return (double)b.rcvd / ((double)vt / 1e6);
}

/* ---- over TUN ---- */
static volatile sig_atomic_t tun_stop;
static struct ustcp_loop *tun_loop;
static void on_term(int sig)
{
  (void)sig;
  tun_stop = 1;
  if (tun_loop) ustcp_loop_stop(tun_loop);
}

enum { T_NONE, T_LSINK, T_LSOURCE, T_LECHO, T_SINK, T_SOURCE, T_ECHO };
struct tconn {
  uint8_t kind;
  uint32_t got;
  uint64_t left;
  uint64_t off;       /* stream offset of the next byte received (sink, echo) or sent (source) */
  uint8_t req[8];
};
struct tsrv {
  struct ustcp_stack *st;
  struct tconn *c;
  size_t cap;
  uint64_t corrupt;
  uint8_t buf[BULK_CHUNK];
};

/* Echo traffic is 64-byte messages, each stream bytes 0..63 (bench_util.h). */
static bool echo_ok(uint64_t off, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != bench_pattern[(off + i) % 64]) return false;
  return true;
}

/* A payload that is not what the client sent: counted, and the connection is
 * reset so that the client's run fails rather than reports a rate. */
static void tsrv_corrupt(struct tsrv *t, int fd, struct tconn *c)
{
  if (t->corrupt++ < 5) fprintf(stderr, "tun-serve: PAYLOAD MISMATCH on fd %d at offset %llu\n", fd,
                                (unsigned long long)c->off);
  c->kind = T_NONE;
  ustcp_abort(t->st, fd);
}

static struct tconn *tconn_of(struct tsrv *t, int fd)
{
  if ((size_t)fd >= t->cap) {
    size_t n = t->cap ? t->cap * 2 : 1024;
    while (n <= (size_t)fd) n *= 2;
    struct tconn *nc = realloc(t->c, n * sizeof *nc);
    if (!nc) bench_die("out of memory");
    memset(nc + t->cap, 0, (n - t->cap) * sizeof *nc);
    t->c = nc;
    t->cap = n;
  }
  return &t->c[fd];
}

static void tsrv_close(struct tsrv *t, int fd, struct tconn *c)
{
  c->kind = T_NONE;
  ustcp_close(t->st, fd);
}

struct sink_check {
  struct tconn *c;
  bool bad;
};

/* Consumes the slice when every byte is the stream's at its offset; a
 * mismatch consumes nothing and says so. */
static size_t sink_check_fn(void *ctx, const uint8_t *p, size_t n)
{
  struct sink_check *v = ctx;
  if (!bench_verify(v->c->off, p, n)) {
    v->bad = true;
    return 0;
  }
  v->c->off += (uint64_t)n;
  return n;
}

static void tsrv_cb(void *ctx, int fd, unsigned ev)
{
  struct tsrv *t = ctx;
  struct tconn *c = tconn_of(t, fd);
  (void)ev;
  switch (c->kind) {
  case T_LSINK: case T_LSOURCE: case T_LECHO: {
    uint8_t kind = c->kind == T_LSINK ? T_SINK : c->kind == T_LSOURCE ? T_SOURCE : T_ECHO;
    int nfd;
    while ((nfd = ustcp_accept(t->st, fd, NULL)) >= 0) {
      struct tconn *n = tconn_of(t, nfd);
      memset(n, 0, sizeof *n);
      n->kind = kind;
      if (kind == T_ECHO) set_nodelay(t->st, nfd);
    }
    return;
  }
  case T_SINK:
    /* Every byte is checked where it lies in the receive buffer
     * (ustcp_recv_direct, as `ustcp serve --discard` consumes and lwIP's sink
     * checks its pbufs): the application reads each byte once, as the
     * kernel's server does with its read() buffer. */
    for (;;) {
      struct sink_check v = {c, false};
      ssize_t n = ustcp_recv_direct(t->st, fd, sink_check_fn, &v);
      if (v.bad) { tsrv_corrupt(t, fd, c); return; }
      if (n > 0) continue;
      if (n != -EAGAIN) tsrv_close(t, fd, c);
      return;
    }
  case T_ECHO:
    for (;;) {
      ssize_t n = ustcp_recv(t->st, fd, t->buf, sizeof t->buf, 0);
      if (n > 0) {
        if (!echo_ok(c->off, t->buf, (size_t)n)) { tsrv_corrupt(t, fd, c); return; }
        c->off += (uint64_t)n;
        c->got += (uint32_t)n;
        for (; c->got >= 64; c->got -= 64) ustcp_send(t->st, fd, bench_pattern_at(0), 64, 0);
        continue;
      }
      if (n != -EAGAIN) tsrv_close(t, fd, c);
      return;
    }
  case T_SOURCE:
    while (c->got < 8) {
      ssize_t n = ustcp_recv(t->st, fd, c->req + c->got, 8 - c->got, 0);
      if (n == -EAGAIN) return;
      if (n <= 0) { tsrv_close(t, fd, c); return; }
      c->got += (uint32_t)n;
      if (c->got == 8)
        for (int b = 0; b < 8; b++) c->left = c->left << 8 | c->req[b];
    }
    while (c->left) {
      ssize_t n = ustcp_send(t->st, fd, bench_pattern_at(c->off),
                             c->left < BULK_CHUNK ? (size_t)c->left : BULK_CHUNK, 0);
      if (n <= 0) {
        if (n != -EAGAIN) tsrv_close(t, fd, c);
        return;
      }
      c->left -= (uint64_t)n;
      c->off += (uint64_t)n;
    }
    tsrv_close(t, fd, c);    /* the FIN follows the queued data */
    return;
  default:
    return;
  }
}

/* Buffers: the stack's defaults, except bufsz on the bulk ports (accepted
 * connections inherit the listener's), as Linux autotunes a bulk flow's. */
static void tsrv_listen(struct tsrv *t, uint16_t port, uint8_t kind, uint32_t bufsz)
{
  int fd = listen_on(t->st, port, 4096);
  if (bufsz) {
    int v = (int)bufsz;
    ustcp_setsockopt(t->st, fd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &v, sizeof v);
    ustcp_setsockopt(t->st, fd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &v, sizeof v);
  }
  tconn_of(t, fd)->kind = kind;
}

static bool opt_vnet;   /* tun-serve --vnet: the loop's offload path */
static bool opt_vnet_rx_only;   /* tun-serve --vnet-rx-only: receive offloads, no send GSO */
static bool opt_no_batch;       /* tun-serve --no-batch: one writev per frame, no io_uring */
static bool opt_batch_reads;    /* tun-serve --batch-reads: io_uring reads too */
static int run_tun_serve(const char *ifname, uint32_t addr, uint32_t peer, uint16_t mtu, uint32_t bufsz)
{
  struct ustcp_config cfg;
  bench_config(&cfg, mtu, 0);
  if (cfg.rmem_max < bufsz) cfg.rmem_max = bufsz;
  if (cfg.wmem_max < bufsz) cfg.wmem_max = bufsz;
  struct ustcp_loop_config lc;
  ustcp_loop_config_default(&lc);
  lc.tun_name = ifname;
  lc.addr = addr;
  lc.peer = peer;
  lc.configure = true;
  lc.mtu = mtu;
  lc.seed = 7;
  lc.stack_cfg = &cfg;
  lc.offload = opt_vnet || opt_vnet_rx_only;
  lc.offload_rx_only = opt_vnet_rx_only;
  lc.no_batch = opt_no_batch;
  lc.batch_reads = opt_batch_reads;
  char err[256] = "";
  int rc = ustcp_loop_new(&lc, &tun_loop, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "tun-serve: %s\n", err);
    return 1;
  }
  static struct tsrv t;
  t.st = ustcp_loop_stack(tun_loop);
  ustcp_set_ready_cb(t.st, tsrv_cb, &t);
  tsrv_listen(&t, 5001, T_LSINK, bufsz);
  tsrv_listen(&t, 5002, T_LSOURCE, bufsz);
  for (uint16_t i = 0; i < 16; i++) {
    tsrv_listen(&t, (uint16_t)(5100 + i), T_LECHO, 0);
    tsrv_listen(&t, (uint16_t)(5200 + i), T_LECHO, 0);
  }
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  fprintf(stderr, "tun-serve: ustcp %s on %s\n", "up", ustcp_loop_ifname(tun_loop));
  ustcp_loop_run(tun_loop);
  struct ustcp_loop_stats ls;
  ustcp_loop_get_stats(tun_loop, &ls);
  fprintf(stderr, "tun-serve: rx %llu packets, tx %llu packets, tx errors %llu\n",
          (unsigned long long)ls.rx_packets, (unsigned long long)ls.tx_packets,
          (unsigned long long)ls.tx_errors);
  ustcp_loop_free(tun_loop);
  free(t.c);
  return 0;
}

struct reflector {
  int fd;
  uint64_t packets, write_errors;
};

static void reflect_one(void *ctx, const uint8_t *pkt, size_t len)
{
  struct reflector *r = ctx;
  uint8_t b[SIM_MAX_PACKET];
  if (len < 20 || len > sizeof b || (pkt[0] >> 4) != 4) return;
  memcpy(b, pkt, len);
  /* Swapping the addresses (and the UDP ports) keeps both checksums valid. */
  uint8_t tmp[4];
  memcpy(tmp, b + 12, 4);
  memcpy(b + 12, b + 16, 4);
  memcpy(b + 16, tmp, 4);
  size_t ihl = (size_t)(b[0] & 15) * 4;
  if (b[9] == IPPROTO_UDP_ && len >= ihl + 8) {
    memcpy(tmp, b + ihl, 2);
    memcpy(b + ihl, b + ihl + 2, 2);
    memcpy(b + ihl + 2, tmp, 2);
  }
  if (tun_write(r->fd, b, len) != 0) r->write_errors++;
  r->packets++;
}

static int run_tun_reflect(const char *name, uint32_t addr, uint32_t peer, uint16_t mtu)
{
  char ifname[IFNAMSIZ], err[256] = "";
  int fd = tun_open(name, ifname, err, sizeof err);
  if (fd < 0 || tun_configure(ifname, peer, addr, mtu, err, sizeof err) < 0) {
    fprintf(stderr, "tun-reflect: %s\n", err);
    return 1;
  }
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  struct reflector r = {fd, 0, 0};
  while (!tun_stop) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    if (tun_read_batch(fd, 256, reflect_one, &r) < 0) break;
  }
  fprintf(stderr, "tun-reflect: %llu packets reflected, %llu write errors\n",
          (unsigned long long)r.packets, (unsigned long long)r.write_errors);
  close(fd);
  return 0;
}

/* ---- ooo: the out-of-order attack pattern vs an in-order stream ----
 * One receiving stack with a 32 MiB receive buffer; this function plays the
 * peer with hand-built segments. "holes": 1-byte segments at odd offsets, a
 * 1-byte hole before each, across the window (each answered at once by a
 * duplicate ACK with SACK blocks; past the interval limit each is dropped and
 * counted). "inorder": the same number of 1-byte segments in order. Segments
 * are encoded in batches outside the timed part; the timed part is the stack's
 * ustcp_input (and its timers) only, in CPU time of this thread. Returns
 * nanoseconds of CPU per segment. */
struct ooob {
  uint64_t out;
  bool want_synack;
  uint32_t synack_seq;
};

static void ooob_out(void *ctx, const uint8_t *pkt, size_t len)
{
  struct ooob *o = ctx;
  o->out++;
  if (!o->want_synack) return;
  struct tcp_packet p;
  if (tcp_packet_decode(pkt, len, &p) == WIRE_OK && (p.tcp.flags & TCP_SYN)) {
    o->synack_seq = p.tcp.seq;
    o->want_synack = false;
  }
}

static uint64_t thread_cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#define OOO_BATCH 8192
#define OOO_PKT 64
static int ooob_seg(uint8_t *pkt, uint32_t seq, uint32_t ack, uint8_t flags,
                    const struct tcp_opts *opts, const uint8_t *data, size_t len)
{
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = 40000;
  h.dst_port = 80;
  h.seq = seq;
  h.ack = ack;
  h.flags = flags;
  h.window = 65535;
  if (opts) h.opts = *opts;
  int n = tcp_packet_encode(&h, data, len, IP_CLIENT, IP_SERVER, 64, pkt, OOO_PKT + 1500);
  if (n < 0) bench_die("tcp_packet_encode");
  return n;
}

static double run_ooo(bool holes, uint32_t window, uint64_t segs)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  if (cfg.rmem_max < window) cfg.rmem_max = window;
  struct ooob o = {0};
  struct ustcp_stack *s = ustcp_stack_new(&cfg, IP_SERVER, 77, ooob_out, &o);
  if (!s) bench_die("ustcp_stack_new failed");
  uint64_t now = 1000;
  ustcp_poll(s, now);
  int lfd = listen_on(s, 80, 16);
  int big = (int)window;
  must(ustcp_setsockopt(s, lfd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &big, sizeof big), "SO_RCVBUF");
  static uint8_t pkt[OOO_PKT + 1500];
  static uint8_t data[1460];
  struct tcp_opts so = {0};
  so.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_WSCALE | TCP_OPT_HAS_SACK_PERM;
  so.mss = 1460;
  so.wscale = 9;
  uint32_t isn = 1000000;
  o.want_synack = true;
  int n = ooob_seg(pkt, isn, 0, TCP_SYN, &so, NULL, 0);
  ustcp_input(s, pkt, (size_t)n, now);
  if (o.want_synack) bench_die("ooo: no SYN-ACK");
  uint32_t ack = o.synack_seq + 1, seq = isn + 1;
  n = ooob_seg(pkt, seq, ack, TCP_ACK, NULL, NULL, 0);
  ustcp_input(s, pkt, (size_t)n, now);
  int fd = ustcp_accept(s, lfd, NULL);
  if (fd < 0) bench_die("ooo: accept failed");
  /* Two full segments draw an ACK that opens the whole (scaled) window. */
  for (int k = 0; k < 2; k++, seq += 1460) {
    n = ooob_seg(pkt, seq, ack, TCP_ACK, NULL, data, 1460);
    ustcp_input(s, pkt, (size_t)n, now);
  }
  struct ustcp_tcp_info ti;
  ustcp_get_info(s, fd, &ti);
  if (ti.rcv_wnd < window / 2) bench_die("ooo: window did not open");
  uint64_t max_segs = holes ? ti.rcv_wnd / 2 : ti.rcv_wnd;
  if (segs > max_segs) segs = max_segs;
  static uint8_t batch[OOO_BATCH][OOO_PKT];
  static uint32_t blen[OOO_BATCH];
  uint64_t cpu = 0, done = 0;
  while (done < segs) {
    uint32_t k = (uint32_t)(segs - done < OOO_BATCH ? segs - done : OOO_BATCH);
    for (uint32_t i = 0; i < k; i++) {
      uint64_t j = done + i;
      uint32_t off = holes ? (uint32_t)(2 * j + 1) : (uint32_t)j;
      blen[i] = (uint32_t)ooob_seg(pkt, seq + off, ack, TCP_ACK, NULL, data, 1);
      memcpy(batch[i], pkt, blen[i]);
    }
    uint64_t t0 = thread_cpu_ns();
    for (uint32_t i = 0; i < k; i++) {
      now++;                        /* 1 us a segment: delayed ACKs fire in order mode */
      ustcp_input(s, batch[i], blen[i], now);
      if (ustcp_next_deadline(s) <= now) ustcp_poll(s, now);
    }
    cpu += thread_cpu_ns() - t0;
    done += k;
  }
  struct ustcp_stats st;
  ustcp_get_stats(s, &st);
  ustcp_get_info(s, fd, &ti);
  fprintf(stderr, "ooo %s: %llu segments, %llu packets out, ooo_dropped %llu, rcv_buf_used %u\n",
          holes ? "holes" : "inorder", (unsigned long long)segs, (unsigned long long)o.out,
          (unsigned long long)st.ooo_dropped, ti.rcv_buf_used);
  ustcp_stack_free(s);
  return (double)cpu / (double)segs;
}

/* The usage text: on stdout with status 0 for --help, on stderr with status 2
 * for bad usage. */
static void usage_exit(int status)
{
  fprintf(status ? stderr : stdout,
          "usage: ustcp_bench MODE [options]\n"
          "  bulk   --mtu M --bytes N [--buf B] [--offload]\n"
          "                                      one flow over the in-memory link (Gbit/s);\n"
          "                                      --offload: GSO frames of up to 64 KiB cross it\n"
          "                                      whole, checksums left undone (key bulkM.ustcpgso)\n"
          "  memcpy --bytes N                     memcpy of the same bytes (Gbit/s)\n"
          "  rr     --conns N --conc C            connect, 64 B request/response, close (conn/s)\n"
          "  hs     --conns N --conc C            handshake only (conn/s)\n"
          "  mem    --conns N                     idle established connections (bytes each)\n"
          "  scale  --conns N [--state S]         N connections, 64 B each way: open time, bytes per end,\n"
          "                                        CPU ns per packet at 1k, 100k and N connections;\n"
          "                                        S = never, 64 or 1m (1 MiB each way): that state only, no probes\n"
          "  flows  --conns K --bytes B           K flows of B bytes at once: Gbit/s, Jain's index,\n"
          "                                        peak engine memory\n"
          "  lat    --iters N                     64 B round trip (us, p50 and p99)\n"
          "  loss   --loss P --bytes N [--seed0 S] [--rate BPS] [--queue BYTES] [--shared-rng]\n"
          "         [--label L] [--vtime S] [--pcap F]  (key lossP.ustcp_L; --vtime: bytes received in the\n"
          "                                       S s after the accept instead of a byte count)\n"
          "                                       sim network, 100 ms RTT, 32 KiB buffers, smoltcp's\n"
          "                                       netsim model; repetition r uses seed S + r (0) (B/s)\n"
          "  zcopy  [--mtu M] [--bytes N] [--buf B] [--side classic|direct]  bulk, classic API vs\n"
          "                                       send/recv_direct +\n"
          "                                       gather output: payload copies per byte, CPU\n"
          "  ooo    [--buf B] [--segs N]           1-byte segments with 1-byte holes vs in order,\n"
          "                                       receive window B (32 MiB): CPU ns/segment\n"
          "  tun-serve   --ns NS --tun IF --addr IP --peer IP [--mtu M] [--vnet]  ustcp server on\n"
          "              TUN (--vnet: IFF_VNET_HDR with checksum and TSO4 offloads both ways;\n"
          "              --vnet-rx-only: the same, but one checksummed segment per write;\n"
          "              --no-batch: with --vnet, one writev per frame instead of\n"
          "              io_uring batches; --batch-reads: io_uring reads too)\n"
          "  tun-reflect --ns NS --tun IF --addr IP --peer IP [--mtu M]  TUN packet reflector\n"
          "common: --reps R (5), --wall S (seconds per repetition, 120)\n");
  exit(status);
}

static void usage(void) { usage_exit(2); }

int main(int argc, char **argv)
{
  if (argc < 2) usage();
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) usage_exit(0);
  const char *mode = argv[1];
  bench_pattern_init();
  uint64_t bytes = 1ull << 30, conns = 30000, iters = 20000;
  uint32_t mtu = 1500, buf = 4u << 20;
  int conc = 32, reps = 5;
  double loss = 0;
  uint64_t segs = UINT64_MAX, seed0 = 0;
  const char *label = NULL;
  bool buf_given = false;
  const char *ns = NULL, *tun = "ubtun0", *scale_state = NULL;
  uint32_t addr = 0, peer = 0;
  static const struct option opts[] = {
    {"mtu", required_argument, 0, 'm'}, {"bytes", required_argument, 0, 'b'},
    {"buf", required_argument, 0, 'B'}, {"conns", required_argument, 0, 'n'},
    {"conc", required_argument, 0, 'c'}, {"iters", required_argument, 0, 'i'},
    {"loss", required_argument, 0, 'l'}, {"reps", required_argument, 0, 'r'},
    {"wall", required_argument, 0, 'w'}, {"ns", required_argument, 0, 'N'},
    {"tun", required_argument, 0, 'T'}, {"addr", required_argument, 0, 'A'},
    {"vnet", no_argument, 0, 'V'}, {"vnet-rx-only", no_argument, 0, 1001},
    {"no-batch", no_argument, 0, 1010}, {"batch-reads", no_argument, 0, 1011},
    {"peer", required_argument, 0, 'P'}, {"segs", required_argument, 0, 'S'},
    {"side", required_argument, 0, 'Z'}, {"state", required_argument, 0, 'X'},
    {"seed0", required_argument, 0, 's'}, {"rate", required_argument, 0, 'R'},
    {"queue", required_argument, 0, 'Q'}, {"shared-rng", no_argument, 0, 'G'},
    {"label", required_argument, 0, 'L'}, {"vtime", required_argument, 0, 'v'},
    {"offload", no_argument, 0, 1002}, {"pcap", required_argument, 0, 1003}, {0, 0, 0, 0}};
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'm': mtu = (uint32_t)strtoul(optarg, NULL, 0); break;
    case 'b': bytes = strtoull(optarg, NULL, 0); break;
    case 'B': buf = (uint32_t)strtoul(optarg, NULL, 0); buf_given = true; break;
    case 'n': conns = strtoull(optarg, NULL, 0); break;
    case 'c': conc = atoi(optarg); break;
    case 'i': iters = strtoull(optarg, NULL, 0); break;
    case 'l': loss = atof(optarg); break;
    case 'r': reps = atoi(optarg); break;
    case 'w': opt_wall_limit_s = strtoull(optarg, NULL, 0); break;
    case 'N': ns = optarg; break;
    case 'T': tun = optarg; break;
    case 'V': opt_vnet = true; break;
    case 1001: opt_vnet_rx_only = true; break;
    case 1010: opt_no_batch = true; break;
    case 1011: opt_batch_reads = true; break;
    case 1002: opt_link_offload = true; break;
    case 'A': if (ipv4_parse(optarg, &addr) != 0) usage(); break;
    case 'P': if (ipv4_parse(optarg, &peer) != 0) usage(); break;
    case 'S': segs = strtoull(optarg, NULL, 0); break;
    case 'X': scale_state = optarg; break;
    case 'Z': zc_side = !strcmp(optarg, "direct") ? 1 : !strcmp(optarg, "classic") ? 0 : -1; break;
    case 's': seed0 = strtoull(optarg, NULL, 0); break;
    case 'R': opt_loss_rate_bps = strtoull(optarg, NULL, 0); break;
    case 'Q': opt_loss_queue_bytes = strtoull(optarg, NULL, 0); break;
    case 'G': opt_loss_shared_rng = true; break;
    case 'L': label = optarg; break;
    case 'v': opt_loss_vtime_us = (uint64_t)(atof(optarg) * 1e6); break;
    case 1003: opt_loss_pcap = optarg; break;
    default: usage();
    }
  }
  if (mtu < 128 || mtu > 65535 || reps < 1 || conc < 1) usage();
  if (!strcmp(mode, "tun-serve") || !strcmp(mode, "tun-reflect")) {
    if (!addr || !peer) usage();
    if (ns) bench_enter_netns(ns);
    if (!strcmp(mode, "tun-serve")) return run_tun_serve(tun, addr, peer, (uint16_t)mtu, buf);
    return run_tun_reflect(tun, addr, peer, (uint16_t)mtu);
  }
  char key[64];
  for (int r = 0; r < reps; r++) {
    if (!strcmp(mode, "bulk")) {
      snprintf(key, sizeof key, "bulk%u.%s", mtu, opt_link_offload ? "ustcpgso" : "ustcp");
      bench_result(key, run_bulk((uint16_t)mtu, bytes, buf));
    } else if (!strcmp(mode, "memcpy")) {
      bench_result("bulk.memcpy", run_memcpy(bytes));
    } else if (!strcmp(mode, "rr") || !strcmp(mode, "hs")) {
      bool hs = !strcmp(mode, "hs");
      bench_result(hs ? "hs.ustcp" : "rr.ustcp", run_short(hs, conns, conc));
    } else if (!strcmp(mode, "mem")) {
      run_mem(conns);
    } else if (!strcmp(mode, "scale")) {
      run_scale(conns, scale_state);
    } else if (!strcmp(mode, "flows")) {
      run_flows(conns, bytes);
    } else if (!strcmp(mode, "lat")) {
      run_lat(iters);
    } else if (!strcmp(mode, "ooo")) {
      /* Interleaved in each repetition, so both see the same machine state. */
      uint32_t w = buf_given ? buf : 32u << 20;
      double h = run_ooo(true, w, segs), i = run_ooo(false, w, segs);
      bench_result("ooo.holes.ns", h);
      bench_result("ooo.inorder.ns", i);
      bench_result("ooo.ratio", h / i);
    } else if (!strcmp(mode, "zcopy")) {
      /* Interleaved in each repetition (the order alternates), same sizes. */
      struct zc_result zr[2];
      memset(zr, 0, sizeof zr);
      for (int k = 0; k < 2; k++) {
        bool direct = (k + r) % 2 == 1;
        /* --side classic|direct: one side only (for an instruction count
         * under callgrind, which cannot tell the two apart in one run) */
        if (zc_side >= 0 && direct != (zc_side == 1)) continue;
        zr[direct] = run_zcopy(direct, (uint16_t)mtu, bytes, buf);
      }
      static const char *name[2] = {"classic", "direct"};
      for (int d = 0; d < 2; d++) {
        char k2[80];
        snprintf(k2, sizeof k2, "zcopy.%s.tx_copies_per_B", name[d]);
        bench_result(k2, zr[d].tx);
        snprintf(k2, sizeof k2, "zcopy.%s.rx_copies_per_B", name[d]);
        bench_result(k2, zr[d].rx);
        snprintf(k2, sizeof k2, "zcopy.%s.copies_per_B", name[d]);
        bench_result(k2, zr[d].tx + zr[d].rx);
        snprintf(k2, sizeof k2, "zcopy.%s.grow_copies_per_B", name[d]);
        bench_result(k2, zr[d].grow);
        snprintf(k2, sizeof k2, "zcopy.%s.cpu_nsB", name[d]);
        bench_result(k2, zr[d].cpu_ns_per_byte);
        snprintf(k2, sizeof k2, "zcopy.%s.gbps", name[d]);
        bench_result(k2, zr[d].gbps);
      }
      bench_result("zcopy.cpu_ratio", zr[1].cpu_ns_per_byte > 0
                                          ? zr[0].cpu_ns_per_byte / zr[1].cpu_ns_per_byte : 0);
    } else if (!strcmp(mode, "loss")) {
      snprintf(key, sizeof key, "loss%g.ustcp%s%s%s", loss * 100, opt_loss_shared_rng ? "shared" : "",
               label ? "_" : "", label ? label : "");
      bench_result(key, run_loss(loss, bytes, seed0 + (uint64_t)r));
    } else {
      usage();
    }
  }
  return 0;
}
