/* bench/kernel_scale: the Linux kernel's side of the scale rows (issue 15
 * point 3), driven by bench/kernel_scale.sh inside a fresh network namespace
 * (loopback only, MTU set by the script). Plain C on kernel sockets.
 *
 *   mem    N established connections, both ends on this machine, opened in
 *          batches of 1000 as `ustcp_bench scale` does, each batch left in one
 *          of three states (--state):
 *            never  connected, no data
 *            64     64 B each way (verified), then idle
 *            1m     1 MiB each way (verified), every byte read and ACKed, then idle
 *          Connections are spread over worker processes of at most 200,000
 *          connections (400,000 descriptors; fewer under a lower RLIMIT_NOFILE)
 *          each, started one after another: each opens all of its connections
 *          before the next begins, so one batch at a time carries data, as in
 *          ustcp's one thread. Each worker listens on its own port and its
 *          clients connect to 127.0.0.(1 + i / 50,000) (several destination
 *          addresses: more than 64k connections per listener).
 *          Reported per connection end (2N ends), growth from before the first
 *          worker to after all are idle (1 s settle: delayed ACKs, RCU frees):
 *            kscale.<state>.<N>.slab        /proc/meminfo Slab (socket, inode,
 *                                           dentry, file, request objects; the
 *                                           whole machine's slab)
 *            kscale.<state>.<N>.sunreclaim  /proc/meminfo SUnreclaim (the
 *                                           unreclaimable part of it)
 *            kscale.<state>.<N>.sockmem     /proc/net/sockstat TCP "mem" pages
 *                                           x 4096 (skb and forward-alloc memory
 *                                           charged to TCP, all namespaces)
 *            kscale.<state>.<N>.rss         the workers' user-space RSS growth
 *                                           (descriptor arrays; no socket memory)
 *   flows  K bulk flows of B bytes at once over loopback: a client process (connect,
 *          send) and a server process (accept, read), each one thread with epoll
 *          (two processes because 10,000 flows are 20,000 descriptors, over the
 *          hard RLIMIT_NOFILE of one process here); the script pins both to one
 *          CPU, and loopback delivers in the sender's softirq on that same CPU, so
 *          all of the kernel's work is on one CPU, as ustcp's one thread is. The receiver checks every byte against
 *          its stream offset. Reported: kflows<K>.gbps (K x B over the time until
 *          the last flow ends, clock started before the first connect, as
 *          `ustcp_bench flows`) and kflows<K>.jain (Jain's index of the flows'
 *          rates, B over each flow's completion time).
 *
 * Results are "R <key> <value>" lines on stdout (bench_util.h).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_util.h"

#define PORT_MEM 7000
#define PORT_FLOWS 7500
#define BATCH 1000
#define PER_WORKER 200000u
#define PER_DST 50000u

static uint64_t opt_wall_s = 120;


static bool wall_exceeded(uint64_t t0)
{
  return bench_now_ns() - t0 > opt_wall_s * 1000000000ull;
}

static struct sockaddr_in sin_of(uint32_t host_ip, uint16_t port)
{
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(host_ip);
  return a;
}

static int listen_any(uint16_t port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) bench_die_errno("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = sin_of(INADDR_ANY, port);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) bench_die_errno("bind");
  if (listen(fd, 4096) != 0) bench_die_errno("listen");
  return fd;
}



/* ---- mem ---- */

struct end { uint64_t tx, rx; };

/* Moves `bytes` each way on every descriptor of fds[0..n) (client and server
 * ends of the same connections: nothing waits on a peer outside the set), the
 * receiver checking each byte; returns the number of mismatches. */
static uint64_t pump(int *fds, size_t n, uint64_t bytes, uint8_t *buf, size_t bufsz, uint64_t t0)
{
  struct end *e = calloc(n, sizeof *e);
  struct pollfd *pf = calloc(n, sizeof *pf);
  if (!e || !pf) bench_die("out of memory");
  uint64_t bad = 0;
  size_t left = n;
  while (left) {
    bool moved = false;
    left = 0;
    for (size_t i = 0; i < n; i++) {
      if (e[i].tx < bytes) {
        size_t want = bytes - e[i].tx < BENCH_PATTERN_SPAN ? (size_t)(bytes - e[i].tx) : BENCH_PATTERN_SPAN;
        ssize_t w = send(fds[i], bench_pattern_at(e[i].tx), want, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w > 0) { e[i].tx += (uint64_t)w; moved = true; }
      }
      while (e[i].rx < bytes) {
        ssize_t r = recv(fds[i], buf, bufsz, MSG_DONTWAIT);
        if (r <= 0) break;
        if (!bench_verify(e[i].rx, buf, (size_t)r)) bad++;
        e[i].rx += (uint64_t)r;
        moved = true;
      }
      if (e[i].tx < bytes || e[i].rx < bytes) left++;
    }
    if (left && !moved) {
      size_t k = 0;
      for (size_t i = 0; i < n; i++) {
        short ev = (short)((e[i].tx < bytes ? POLLOUT : 0) | (e[i].rx < bytes ? POLLIN : 0));
        if (ev) pf[k++] = (struct pollfd){.fd = fds[i], .events = ev};
      }
      poll(pf, k, 100);
    }
    if (wall_exceeded(t0)) { fprintf(stderr, "kernel_scale: wall-clock limit in the exchange\n"); bad++; break; }
  }
  free(e);
  free(pf);
  return bad;
}

struct wres { uint64_t est, bad, rss, t_start_ns, t_end_ns; };   /* times: CLOCK_MONOTONIC, shared by all processes */

static void mem_worker(unsigned w, uint64_t first, uint64_t k, uint64_t bytes, int ready_fd, int go_fd)
{
  int lfd = listen_any((uint16_t)(PORT_MEM + w));
  int *fds = malloc(2 * k * sizeof *fds);
  uint8_t *buf = malloc(1 << 18);
  if (!fds || !buf) bench_die("out of memory");
  uint64_t rss0 = bench_rss_bytes(), t0 = bench_now_ns();
  struct wres res = {0, 0, 0, t0, 0};
  size_t nfds = 0;
  for (uint64_t from = 0; from < k && !wall_exceeded(t0);) {
    uint64_t to = from + BATCH < k ? from + BATCH : k;
    size_t batch0 = nfds;
    for (uint64_t i = from; i < to; i++) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) bench_die_errno("socket");
      struct sockaddr_in dst = sin_of(0x7f000001u + (uint32_t)((first + i) / PER_DST), (uint16_t)(PORT_MEM + w));
      if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) {
        fprintf(stderr, "kernel_scale: connect %llu: %s\n", (unsigned long long)(first + i), strerror(errno));
        close(fd);
        res.bad++;
        goto out;
      }
      fds[nfds++] = fd;
    }
    uint64_t acc = 0;
    while (acc < to - from) {
      int a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (a >= 0) { fds[nfds++] = a; acc++; continue; }
      if (errno != EAGAIN) bench_die_errno("accept");
      struct pollfd p = {.fd = lfd, .events = POLLIN};
      poll(&p, 1, 100);
      if (wall_exceeded(t0)) { fprintf(stderr, "kernel_scale: wall-clock limit in accept\n"); res.bad++; goto out; }
    }
    if (bytes) res.bad += pump(fds + batch0, nfds - batch0, bytes, buf, 1 << 18, t0);
    res.est += to - from;
    from = to;
  }
out:
  free(buf);
  res.rss = bench_rss_bytes() - rss0;
  res.t_end_ns = bench_now_ns();
  if (write(ready_fd, &res, sizeof res) != sizeof res) _exit(1);
  char c;
  while (read(go_fd, &c, 1) > 0) {}
  struct linger lg = {1, 0};   /* reset: no TIME_WAIT left behind */
  for (size_t i = 0; i < nfds; i++) {
    setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fds[i]);
  }
  close(lfd);
  _exit(0);
}

static void settle(void)
{
  usleep(1000000);   /* delayed ACKs (40 ms+), RCU-deferred frees, per-CPU caches */
}

static int run_mem(uint64_t n, const char *state)
{
  uint64_t bytes = !strcmp(state, "never") ? 0 : !strcmp(state, "64") ? 64
                 : !strcmp(state, "1m") ? (1u << 20) : UINT64_MAX;
  if (bytes == UINT64_MAX) bench_die("--state: never, 64 or 1m");
  /* Without CAP_SYS_RESOURCE (containers) the hard RLIMIT_NOFILE caps a process. */
  rlim_t lim = bench_raise_nofile((rlim_t)(2 * PER_WORKER + 256));
  if (lim < 2304) bench_die("RLIMIT_NOFILE too low");
  uint64_t per = (lim - 256) / 2;
  if (per > n) per = n;
  unsigned nw = (unsigned)((n + per - 1) / per);
  int ready[2], go[2];
  if (pipe(ready) != 0 || pipe(go) != 0) bench_die_errno("pipe");
  settle();
  long slab0 = bench_meminfo_kb("Slab"), sun0 = bench_meminfo_kb("SUnreclaim"), sm0 = bench_sockstat_tcp("mem");
  uint64_t t0 = bench_now_ns();
  pid_t *pids = calloc(nw, sizeof *pids);
  if (!pids) bench_die("out of memory");
  /* One worker at a time: each opens all of its connections and reports
   * before the next starts, so (as in ustcp_bench's one thread) only one batch
   * of 1000 connections carries data at any moment. With a hard RLIMIT_NOFILE
   * of 20,000, 1M connections take 102 workers; pumping 1 MiB each way all at
   * once, their ~100,000 connections' queues took the kernel's TCP memory to
   * ~3x tcp_mem's hard limit and the exchange stalled. Earlier workers stay
   * alive, holding their connections idle, until all are measured. */
  struct wres tot = {0, 0, 0, 0, 0};
  unsigned started = 0;
  for (unsigned w = 0; w < nw; w++) {
    uint64_t k = w + 1 < nw ? per : n - per * (nw - 1);
    pids[w] = fork();
    if (pids[w] < 0) bench_die_errno("fork");
    if (pids[w] == 0) {
      close(ready[0]);
      close(go[1]);
      mem_worker(w, per * w, k, bytes, ready[1], go[0]);
    }
    started++;
    struct wres r;
    if (read(ready[0], &r, sizeof r) != sizeof r) { fprintf(stderr, "kernel_scale: a worker died\n"); tot.bad++; break; }
    tot.est += r.est;
    tot.bad += r.bad;
    tot.rss += r.rss;
    fprintf(stderr, "kernel_scale mem: worker %u: %llu connections, from %.3f to %.3f s\n", w,
            (unsigned long long)r.est, (double)(r.t_start_ns - t0) / 1e9, (double)(r.t_end_ns - t0) / 1e9);
    if (r.est < k) break;   /* it stopped short (wall clock): no point starting the next */
  }
  close(ready[1]);
  close(go[0]);
  double open_s = (double)(bench_now_ns() - t0) / 1e9;
  settle();
  long slab1 = bench_meminfo_kb("Slab"), sun1 = bench_meminfo_kb("SUnreclaim"), sm1 = bench_sockstat_tcp("mem");
  double ends = 2.0 * (double)n;
  fprintf(stderr, "kernel_scale mem: %llu connections, state %s (%llu bad), %u process(es), %.1f s; "
          "Slab %ld -> %ld kB, SUnreclaim %ld -> %ld kB, sockstat TCP mem %ld -> %ld pages, RSS +%llu B\n",
          (unsigned long long)tot.est, state, (unsigned long long)tot.bad, nw, open_s, slab0, slab1,
          sun0, sun1, sm0, sm1, (unsigned long long)tot.rss);
  char key[96];
  bool ok = tot.est == n && !tot.bad;
#define RES(name, v) do { snprintf(key, sizeof key, "kscale.%s.%llu.%s", state, (unsigned long long)n, name); \
                          bench_result(key, ok ? (v) : 0); } while (0)
  RES("slab", (double)(slab1 - slab0) * 1024.0 / ends);
  RES("sunreclaim", (double)(sun1 - sun0) * 1024.0 / ends);
  RES("sockmem", (double)(sm1 - sm0) * 4096.0 / ends);
  RES("rss", (double)tot.rss / ends);
  RES("open_s", open_s);
#undef RES
  close(go[1]);
  for (unsigned w = 0; w < started; w++) waitpid(pids[w], NULL, 0);
  close(ready[0]);
  free(pids);
  return ok ? 0 : 1;
}

/* ---- flows ---- */

struct fl { uint64_t off, done_ns; uint8_t role; };   /* role: 1 client, 2 server */

/* One side's event loop: the client (side 1) opens K connections (at most 1000
 * handshakes outstanding; the backlog is 4096) and sends B bytes on each; the
 * server (side 2) accepts and reads, checking every byte. Returns the server's
 * per-descriptor state (done_ns = completion time since t0). */
static struct fl *flows_side(int side, int lfd, uint64_t k, uint64_t bytes, uint64_t t0,
                             size_t cap, uint64_t *bad_out, uint64_t *ndone_out)
{
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) bench_die_errno("epoll_create1");
  struct fl *st = calloc(cap, sizeof *st);
  uint8_t *buf = malloc(1 << 18);
  struct epoll_event *evs = malloc(1024 * sizeof *evs), ev;
  if (!st || !buf || !evs) bench_die("out of memory");
  if (side == 2) {
    ev = (struct epoll_event){.events = EPOLLIN, .data.fd = lfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  }
  struct sockaddr_in dst = sin_of(0x7f000001u, PORT_FLOWS);
  uint64_t opened = 0, sent = 0, ndone = 0, bad = 0;
  while (side == 1 ? sent < k : ndone < k) {
    while (side == 1 && opened < k && opened - sent < 1000) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) bench_die_errno("socket");
      if ((size_t)fd >= cap) bench_die("descriptor out of range");
      if (connect(fd, (struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) bench_die_errno("connect");
      st[fd] = (struct fl){0, 0, 1};
      ev = (struct epoll_event){.events = EPOLLOUT, .data.fd = fd};
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      opened++;
    }
    int n = epoll_wait(ep, evs, 1024, 100);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (side == 2 && fd == lfd) {
        int a;
        while ((a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          if ((size_t)a >= cap) bench_die("descriptor out of range");
          st[a] = (struct fl){0, 0, 2};
          ev = (struct epoll_event){.events = EPOLLIN, .data.fd = a};
          epoll_ctl(ep, EPOLL_CTL_ADD, a, &ev);
        }
        continue;
      }
      struct fl *f = &st[fd];
      if (f->role == 1) {
        while (f->off < bytes) {
          size_t want = bytes - f->off < BENCH_PATTERN_SPAN ? (size_t)(bytes - f->off) : BENCH_PATTERN_SPAN;
          ssize_t w = send(fd, bench_pattern_at(f->off), want, MSG_DONTWAIT | MSG_NOSIGNAL);
          if (w <= 0) break;
          f->off += (uint64_t)w;
        }
        if (f->off >= bytes) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); sent++; }
      } else if (f->role == 2) {
        for (;;) {
          ssize_t r = recv(fd, buf, 1 << 18, MSG_DONTWAIT);
          if (r <= 0) break;
          if (!bench_verify(f->off, buf, (size_t)r)) bad++;
          f->off += (uint64_t)r;
        }
        if (f->off >= bytes && !f->done_ns) {
          f->done_ns = bench_now_ns() - t0;
          ndone++;
          epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
        }
      }
    }
    if (wall_exceeded(t0)) {
      fprintf(stderr, "kernel_scale flows: wall-clock limit (%s), %llu of %llu done\n",
              side == 1 ? "client" : "server", (unsigned long long)(side == 1 ? sent : ndone),
              (unsigned long long)k);
      break;
    }
  }
  close(ep);
  free(buf);
  free(evs);
  *bad_out = bad;
  *ndone_out = side == 1 ? sent : ndone;
  return st;
}

static void close_all(struct fl *st, size_t cap)
{
  struct linger lg = {1, 0};   /* reset: nothing left in the namespace */
  for (size_t fd = 0; fd < cap; fd++)
    if (st[fd].role) { setsockopt((int)fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg); close((int)fd); }
}

/* Client and server are two processes (a process may hold only the hard
 * RLIMIT_NOFILE, 20,000 here, descriptors: 10,000 flows need 20,000 ends); the
 * script pins both to one CPU. */
static int run_flows(uint64_t k, uint64_t bytes)
{
  bench_raise_nofile((rlim_t)(k + 256));
  size_t cap = k + 256;
  int lfd = listen_any(PORT_FLOWS);
  int done[2];
  if (pipe(done) != 0) bench_die_errno("pipe");
  uint64_t t0 = bench_now_ns(), c0 = bench_cpu_ns(), bad = 0, ndone = 0;
  pid_t pid = fork();
  if (pid < 0) bench_die_errno("fork");
  if (pid == 0) {
    close(lfd);
    close(done[1]);
    struct fl *st = flows_side(1, -1, k, bytes, t0, cap, &bad, &ndone);
    char c;
    while (read(done[0], &c, 1) > 0) {}   /* hold the sockets until the server has read all */
    close_all(st, cap);
    _exit(ndone == k ? 0 : 1);
  }
  close(done[0]);
  struct fl *st = flows_side(2, lfd, k, bytes, t0, cap, &bad, &ndone);
  uint64_t c1 = bench_cpu_ns();
  close(done[1]);
  int status = 0;
  waitpid(pid, &status, 0);
  double sum = 0, sq = 0;
  uint64_t last = 0, m = 0;
  for (size_t fd = 0; fd < cap; fd++) {
    if (st[fd].role != 2 || !st[fd].done_ns) continue;
    double x = (double)bytes / ((double)st[fd].done_ns / 1e9);
    sum += x;
    sq += x * x;
    m++;
    if (st[fd].done_ns > last) last = st[fd].done_ns;
  }
  double jain = m && sq > 0 ? sum * sum / ((double)m * sq) : 0;
  double gbps = last ? (double)(k * bytes) * 8 / ((double)last / 1e9) / 1e9 : 0;
  fprintf(stderr, "kernel_scale flows: %llu x %llu bytes: %llu done in %.2f s (server process cpu %.2f s), "
          "%.3f Gbit/s, Jain %.3f%s\n", (unsigned long long)k, (unsigned long long)bytes,
          (unsigned long long)ndone, (double)last / 1e9, (double)(c1 - c0) / 1e9, gbps, jain,
          bad ? ", PAYLOAD MISMATCH" : "");
  bool ok = ndone == k && !bad && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  char key[64];
  snprintf(key, sizeof key, "kflows%llu.gbps", (unsigned long long)k);
  bench_result(key, ok ? gbps : 0);
  snprintf(key, sizeof key, "kflows%llu.jain", (unsigned long long)k);
  bench_result(key, ok ? jain : 0);
  close_all(st, cap);
  close(lfd);
  free(st);
  return ok ? 0 : 1;
}

static void usage(void)
{
  fprintf(stderr,
          "usage: kernel_scale MODE [options]   (inside a fresh network namespace: bench/kernel_scale.sh)\n"
          "  mem   --conns N --state never|64|1m   memory per connection end (see the header)\n"
          "  flows --conns K --bytes B              K bulk flows at once: Gbit/s, Jain's index\n"
          "common: --wall S (seconds, 120)\n");
  exit(2);
}

int main(int argc, char **argv)
{
  if (argc < 2) usage();
  const char *mode = argv[1], *state = "64";
  uint64_t conns = 10000, bytes = 1u << 20;
  static const struct option opts[] = {
    {"conns", required_argument, 0, 'n'}, {"bytes", required_argument, 0, 'b'},
    {"state", required_argument, 0, 's'}, {"wall", required_argument, 0, 'w'}, {0, 0, 0, 0}};
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'n': conns = strtoull(optarg, NULL, 0); break;
    case 'b': bytes = strtoull(optarg, NULL, 0); break;
    case 's': state = optarg; break;
    case 'w': opt_wall_s = strtoull(optarg, NULL, 0); break;
    default: usage();
    }
  }
  if (!conns) usage();
  bench_pattern_init();
  if (!strcmp(mode, "mem")) return run_mem(conns, state);
  if (!strcmp(mode, "flows")) return run_flows(conns, bytes);
  usage();
  return 2;
}
