/* bench/kernel_bench: the Linux kernel's side of `make bench` (bench/run.sh).
 *
 * Plain C on kernel sockets. bench/run.sh makes two network namespaces joined by
 * a veth pair; this program enters one with --ns NAME (setns on
 * /var/run/netns/NAME, as `ip netns exec` does).
 *
 *   serve  the server, single-threaded with epoll: port 5001 reads and discards
 *          until EOF then closes (bulk), checking every byte against its stream
 *          offset; port 5003 discards what arrives unread and unchecked
 *          (recv(MSG_TRUNC): no copy to user space, as `ustcp serve --discard`
 *          consumes its bytes where they lie) and closes at EOF; port 5002 reads an 8-byte big-endian
 *          count, sends that many bytes and closes (bulk-recv); ports 5100-5115
 *          and 5200-5215 answer every 64 bytes received with 64 bytes and close
 *          at EOF (request/response, handshake-only, latency). Runs until killed.
 *          (ustcp_bench tun-serve is the same server on ustcp, over TUN.)
 *   bulk   one flow of N bytes to port 5001 (--port: another), then waits for
 *          the server's close (every byte delivered) (Gbit/s)
 *   bulk-recv  one flow of N bytes from port 5002 (Gbit/s)
 *          With --stack-pid P, both also give the CPU cost per payload byte and
 *          per MSS-sized (MTU - 40) segment: of process P (user + system) and of
 *          CPU --cpu as a whole (every busy tick once: see bench_proc_stat_busy)
 *   udp-flood  the load of the TUN ceiling: 1500-byte UDP packets to a reflector
 *          behind a TUN device (ustcp_bench tun-reflect), W in flight; packets
 *          per second that come back
 *   rr     short connections: connect, 64-byte request, 64-byte response, close;
 *          C connections under way at once, one thread, epoll (connections/s);
 *          destination ports rotate over 16 so TIME_WAIT does not use up ports
 *   hs     handshake only: connect, close once established (connections/s)
 *   lat    one 64-byte request/response round trip on one connection (us, p50, p99)
 *   mem    N idle established connections, both ends on this machine (listeners
 *          made in --server-ns, clients in --ns; spread over worker processes of
 *          at most RLIMIT_NOFILE descriptors each): growth of the kernel's slab
 *          (/proc/meminfo Slab) and of TCP buffer memory (/proc/net/sockstat mem)
 *          per connection end
 *
 * Results are "R <key> <value>" lines on stdout, one per repetition.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "bench_util.h"

#define PORT_BULK 5001
#define PORT_SOURCE 5002
#define PORT_DISCARD 5003
#define PORT_RR 5100
#define PORT_HS 5200
#define PORT_MEM 6000
#define NPORTS 16
#define CHUNK (256 * 1024)

static uint64_t opt_wall_limit_s = 120;


static struct sockaddr_in addr_of(const char *ip, uint16_t port)
{
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  if (inet_pton(AF_INET, ip, &a.sin_addr) != 1) bench_die("bad address");
  return a;
}

static void set_int(int fd, int level, int name, int v)
{
  setsockopt(fd, level, name, &v, sizeof v);
}

static int listen_on(const char *ip, uint16_t port, int backlog)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) bench_die_errno("socket");
  set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
  struct sockaddr_in a = addr_of(ip, port);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) bench_die_errno("bind");
  if (listen(fd, backlog) != 0) bench_die_errno("listen");
  return fd;
}

static bool wall_exceeded(uint64_t t0_ns)
{
  return bench_now_ns() - t0_ns > opt_wall_limit_s * 1000000000ull;
}

/* ---- server ---- */
enum { K_NONE, K_LISTEN_SINK, K_LISTEN_ECHO, K_LISTEN_SOURCE, K_LISTEN_DISCARD, K_SINK, K_ECHO, K_SOURCE,
       K_DISCARD };
struct srv_conn {
  uint8_t kind;
  uint32_t got;
  uint64_t left;      /* K_SOURCE: bytes still to send (after the 8-byte request) */
  uint64_t off;       /* stream offset of the next byte read (sink, echo) or sent (source) */
  uint8_t req[8];
};

/* Echo traffic is 64-byte messages, each stream bytes 0..63 (bench_util.h). */
static bool echo_ok(uint64_t off, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != bench_pattern[(off + i) % 64]) return false;
  return true;
}

/* A payload that is not what the client sent: reset the connection (SO_LINGER 0)
 * so that the client's run fails rather than reports a rate. */
static void srv_corrupt(int fd, struct srv_conn *sc)
{
  static unsigned long long n;
  if (n++ < 5) fprintf(stderr, "kernel_bench serve: PAYLOAD MISMATCH at offset %llu\n",
                       (unsigned long long)sc->off);
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  sc->kind = K_NONE;
  close(fd);
}

static void run_server(const char *ip)
{
  size_t cap = (size_t)bench_raise_nofile(1 << 18);
  struct srv_conn *c = calloc(cap, sizeof *c);
  static uint8_t buf[1 << 20];
  const uint8_t *resp = bench_pattern_at(0);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0 || !c) bench_die_errno("epoll");
  for (int i = -2; i < 1 + 2 * NPORTS; i++) {
    uint16_t port = i == -2 ? PORT_DISCARD : i < 0 ? PORT_SOURCE : i == 0 ? PORT_BULK
                  : i <= NPORTS ? (uint16_t)(PORT_RR + i - 1) : (uint16_t)(PORT_HS + i - 1 - NPORTS);
    int fd = listen_on(ip, port, 4096);
    c[fd].kind = i == -2 ? K_LISTEN_DISCARD : i < 0 ? K_LISTEN_SOURCE : i == 0 ? K_LISTEN_SINK : K_LISTEN_ECHO;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) bench_die_errno("epoll_ctl");
  }
  fprintf(stderr, "kernel_bench serve: listening on %s\n", ip);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      bench_die_errno("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      struct srv_conn *sc = &c[fd];
      if (sc->kind == K_LISTEN_SINK || sc->kind == K_LISTEN_ECHO || sc->kind == K_LISTEN_SOURCE ||
          sc->kind == K_LISTEN_DISCARD) {
        int nfd;
        while ((nfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          if ((size_t)nfd >= cap) { close(nfd); continue; }
          c[nfd].kind = sc->kind == K_LISTEN_SINK ? K_SINK : sc->kind == K_LISTEN_ECHO ? K_ECHO
                      : sc->kind == K_LISTEN_DISCARD ? K_DISCARD : K_SOURCE;
          c[nfd].got = 0;
          c[nfd].left = 0;
          c[nfd].off = 0;
          if (c[nfd].kind == K_ECHO) set_int(nfd, IPPROTO_TCP, TCP_NODELAY, 1);
          struct epoll_event ev = {.events = EPOLLIN, .data.fd = nfd};
          epoll_ctl(ep, EPOLL_CTL_ADD, nfd, &ev);
        }
        continue;
      }
      if (sc->kind == K_SOURCE) {
        /* An 8-byte big-endian count, then that many bytes, then close. */
        if (sc->got < 8) {
          ssize_t r = read(fd, sc->req + sc->got, 8 - sc->got);
          if (r <= 0) {
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            sc->kind = K_NONE;
            close(fd);
            continue;
          }
          sc->got += (uint32_t)r;
          if (sc->got < 8) continue;
          for (int b = 0; b < 8; b++) sc->left = sc->left << 8 | sc->req[b];
          struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        }
        while (sc->left) {
          ssize_t w = write(fd, bench_pattern_at(sc->off), sc->left < CHUNK ? (size_t)sc->left : CHUNK);
          if (w <= 0) break;
          sc->left -= (uint64_t)w;
          sc->off += (uint64_t)w;
        }
        if (!sc->left) {
          sc->kind = K_NONE;
          close(fd);
        }
        continue;
      }
      if (sc->kind == K_DISCARD) {
        /* tcp(7): MSG_TRUNC on a TCP socket discards the bytes in the kernel
         * (tcp_recvmsg_locked skips the copy); nothing is checked. */
        ssize_t r;
        while ((r = recv(fd, buf, sizeof buf, MSG_TRUNC)) > 0) {}
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        sc->kind = K_NONE;
        close(fd);
        continue;
      }
      for (;;) {
        ssize_t r = read(fd, buf, sc->kind == K_SINK ? sizeof buf : 4096);
        if (r > 0) {
          bool ok = sc->kind == K_ECHO ? echo_ok(sc->off, buf, (size_t)r)
                                       : bench_verify(sc->off, buf, (size_t)r);
          if (!ok) { srv_corrupt(fd, sc); break; }
          sc->off += (uint64_t)r;
          if (sc->kind == K_ECHO) {
            sc->got += (uint32_t)r;
            while (sc->got >= 64) {
              sc->got -= 64;
              if (write(fd, resp, 64) != 64) break;
            }
          }
          continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
        sc->kind = K_NONE;       /* EOF or error: close (epoll forgets the fd) */
        close(fd);
        break;
      }
    }
  }
}

/* ---- clients ---- */
static int connect_retry(const char *ip, uint16_t port)
{
  struct sockaddr_in a = addr_of(ip, port);
  uint64_t t0 = bench_now_ns();
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) bench_die_errno("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    int err = errno;
    close(fd);
    if ((err != ECONNREFUSED && err != ENETUNREACH) || bench_now_ns() - t0 > 10000000000ull) {
      errno = err;
      bench_die_errno("connect");
    }
    usleep(20000);
  }
}

/* CPU cost of the kernel's run: this process, the server process (--server-pid)
 * and the softirq time of CPU --cpu (all of it on one CPU when run.sh pins both
 * processes there; -1: the whole machine's softirq, an overestimate). */
static int opt_server_pid, opt_cpu = -1, opt_stack_pid;
static uint16_t opt_port = PORT_BULK;
static uint64_t kernel_cpu_ns(void)
{
  uint64_t si, steal, tot;
  bench_proc_stat(opt_cpu, &si, &steal, &tot);
  uint64_t ns = bench_cpu_ns() + si * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
  if (opt_server_pid) ns += bench_pid_cpu_ns(opt_server_pid);
  return ns;
}

/* --stack-pid: the CPU cost of the stack under test (process P, user + system,
 * all its threads) and of CPU --cpu as a whole (the client, the stack, the
 * TUN or veth driver and softirq, each busy tick once), per payload byte and
 * per MSS-sized segment of payload. dir is "cpu" (to the stack) or "cpurecv". */
struct stack_cpu { uint64_t stack, busy; };
static struct stack_cpu stack_cpu_now(void)
{
  struct stack_cpu s = {0, 0};
  if (opt_stack_pid) {
    s.stack = bench_pid_cpu_ns(opt_stack_pid);
    s.busy = bench_cpu_busy_ns(opt_cpu);
  }
  return s;
}
static void stack_cpu_report(const char *dir, unsigned mtu, const char *label, struct stack_cpu a,
                             struct stack_cpu b, uint64_t bytes)
{
  if (!opt_stack_pid || !bytes) return;
  char key[96];
  double seg = mtu > 40 ? mtu - 40 : 1;
  double st = (double)(b.stack - a.stack) / (double)bytes, bu = (double)(b.busy - a.busy) / (double)bytes;
  snprintf(key, sizeof key, "%s%u.%s.stack_nsB", dir, mtu, label);
  bench_result(key, st);
  snprintf(key, sizeof key, "%s%u.%s.stack_nsSeg", dir, mtu, label);
  bench_result(key, st * seg);
  snprintf(key, sizeof key, "%s%u.%s.busy_nsB", dir, mtu, label);
  bench_result(key, bu);
  snprintf(key, sizeof key, "%s%u.%s.busy_nsSeg", dir, mtu, label);
  bench_result(key, bu * seg);
}

static double run_bulk(const char *ip, uint64_t total, unsigned mtu, const char *label)
{
  uint64_t t0 = bench_now_ns(), c0 = kernel_cpu_ns();
  struct stack_cpu s0 = stack_cpu_now();
  int fd = connect_retry(ip, opt_port);
  uint64_t sent = 0;
  while (sent < total) {
    size_t want = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
    ssize_t n = write(fd, bench_pattern_at(sent), want);
    if (n < 0) {
      if (errno == EINTR) continue;
      bench_die_errno("write");
    }
    sent += (uint64_t)n;
    if (wall_exceeded(t0)) { fprintf(stderr, "bulk: wall-clock limit\n"); close(fd); return 0; }
  }
  shutdown(fd, SHUT_WR);
  char c;
  ssize_t r;
  /* The server closes once it has read (and checked) everything; it resets the
   * connection if the payload was wrong. */
  while ((r = read(fd, &c, 1)) > 0 || (r < 0 && errno == EINTR)) {}
  uint64_t t1 = bench_now_ns(), c1 = kernel_cpu_ns();
  struct stack_cpu s1 = stack_cpu_now();
  if (r < 0) {
    fprintf(stderr, "bulk: the server reset the connection (%s): payload mismatch?\n", strerror(errno));
    close(fd);
    return 0;
  }
  struct tcp_info ti;
  socklen_t tl = sizeof ti;
  memset(&ti, 0, sizeof ti);
  getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl);
  close(fd);
  fprintf(stderr, "bulk: %llu bytes in %.3f s, snd_mss %u, retrans %u\n", (unsigned long long)total,
          (double)(t1 - t0) / 1e9, ti.tcpi_snd_mss, ti.tcpi_total_retrans);
  if (opt_server_pid) {
    char key[64];
    snprintf(key, sizeof key, "cpu%u.%s.nsB", mtu, label);
    bench_result(key, (double)(c1 - c0) / (double)total);
    snprintf(key, sizeof key, "cpu%u.%s.nsSeg", mtu, label);
    bench_result(key, (double)(c1 - c0) / (double)total * (mtu - 40));
  }
  stack_cpu_report("cpu", mtu, label, s0, s1, total);
  return (double)total * 8 / ((double)(t1 - t0) / 1e9) / 1e9;
}

/* Receiving: asks port 5002 for total bytes and reads them until the server's close. */
static double run_bulk_recv(const char *ip, uint64_t total, unsigned mtu, const char *label)
{
  static uint8_t buf[CHUNK];
  uint64_t t0 = bench_now_ns();
  struct stack_cpu s0 = stack_cpu_now();
  int fd = connect_retry(ip, PORT_SOURCE);
  uint8_t req[8];
  for (int b = 0; b < 8; b++) req[b] = (uint8_t)(total >> (56 - 8 * b));
  if (write(fd, req, 8) != 8) bench_die_errno("write");
  uint64_t got = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
      if (!bench_verify(got, buf, (size_t)n)) {
        fprintf(stderr, "bulk-recv: PAYLOAD MISMATCH at offset %llu\n", (unsigned long long)got);
        got = 0;
        break;
      }
      got += (uint64_t)n;
      if (wall_exceeded(t0)) { fprintf(stderr, "bulk-recv: wall-clock limit\n"); break; }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  uint64_t t1 = bench_now_ns();
  struct stack_cpu s1 = stack_cpu_now();
  close(fd);
  fprintf(stderr, "bulk-recv: %llu of %llu bytes in %.3f s\n", (unsigned long long)got,
          (unsigned long long)total, (double)(t1 - t0) / 1e9);
  if (got != total) return 0;
  stack_cpu_report("cpurecv", mtu, label, s0, s1, total);
  return (double)total * 8 / ((double)(t1 - t0) / 1e9) / 1e9;
}

/* The TUN ceiling's load: 1500-byte IPv4 packets (1472-byte UDP datagrams) to a
 * reflector behind a TUN device (ustcp_bench tun-reflect), which sends each back
 * with addresses and ports swapped; at most `window` in flight; counts the
 * packets that come back per second. */
static double run_udp_flood(const char *ip, double secs, int window)
{
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) bench_die_errno("socket");
  set_int(fd, SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20);
  set_int(fd, SOL_SOCKET, SO_SNDBUFFORCE, 32 << 20);
  struct sockaddr_in a = addr_of(ip, 9);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) bench_die_errno("connect");
  enum { BATCH = 32, PAYLOAD = 1472 };
  static uint8_t out[PAYLOAD], in[BATCH][2048];
  struct mmsghdr om[BATCH], im[BATCH];
  struct iovec oi[BATCH], ii[BATCH];
  memset(om, 0, sizeof om);
  memset(im, 0, sizeof im);
  for (int i = 0; i < BATCH; i++) {
    oi[i].iov_base = out;
    oi[i].iov_len = PAYLOAD;
    om[i].msg_hdr.msg_iov = &oi[i];
    om[i].msg_hdr.msg_iovlen = 1;
    ii[i].iov_base = in[i];
    ii[i].iov_len = sizeof in[i];
    im[i].msg_hdr.msg_iov = &ii[i];
    im[i].msg_hdr.msg_iovlen = 1;
  }
  static uint8_t big[BATCH * PAYLOAD];
  int seg = PAYLOAD;
  bool gso = setsockopt(fd, IPPROTO_UDP, 103 /* UDP_SEGMENT */, &seg, sizeof seg) == 0;
  uint64_t sent = 0, rcvd = 0, counted = 0, last_progress = bench_now_ns();
  uint64_t t_start = 0, t0 = bench_now_ns(), warm_ns = 300000000ull;
  uint64_t end = t0 + warm_ns + (uint64_t)(secs * 1e9);
  for (;;) {
    uint64_t now = bench_now_ns();
    if (now >= end) break;
    if (!t_start && now - t0 >= warm_ns) { t_start = now; counted = 0; }
    int room = window - (int)(sent - rcvd);
    if (room > BATCH) room = BATCH;
    if (room > 0) {
      if (gso) {
        /* One send of up to 32 datagrams: the kernel splits it (UDP GSO). */
        struct iovec gi = {big, (size_t)room * PAYLOAD};
        struct msghdr mh;
        memset(&mh, 0, sizeof mh);
        mh.msg_iov = &gi;
        mh.msg_iovlen = 1;
        if (sendmsg(fd, &mh, MSG_DONTWAIT) > 0) sent += (uint64_t)room;
      } else {
        int n = sendmmsg(fd, om, (unsigned)room, MSG_DONTWAIT);
        if (n > 0) sent += (uint64_t)n;
      }
    }
    int n = recvmmsg(fd, im, BATCH, MSG_DONTWAIT, NULL);
    if (n > 0) {
      rcvd += (uint64_t)n;
      counted += (uint64_t)n;
      last_progress = now;
    } else if (now - last_progress > 2000000) {
      rcvd = sent;                /* packets were dropped on the way: forget them */
      last_progress = now;
    }
  }
  close(fd);
  double dt = (double)(bench_now_ns() - t_start) / 1e9;
  fprintf(stderr, "udp-flood: %llu packets back in %.2f s\n", (unsigned long long)counted, dt);
  return (double)counted / dt;
}

struct cli_conn {
  uint8_t phase;   /* 0 unused, 1 connecting, 2 request sent */
  uint8_t got;
};

static double run_short(const char *ip, bool hs, uint64_t nconns, int conc)
{
  size_t cap = (size_t)bench_raise_nofile(1 << 16);
  struct cli_conn *cc = calloc(cap, sizeof *cc);
  struct sockaddr_in dsts[NPORTS];
  for (int i = 0; i < NPORTS; i++) dsts[i] = addr_of(ip, (uint16_t)((hs ? PORT_HS : PORT_RR) + i));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0 || !cc) bench_die_errno("epoll");
  const uint8_t *msg = bench_pattern_at(0);   /* request and response: stream bytes 0..63 */
  uint64_t started = 0, done = 0, failed = 0, corrupt = 0;
  int inflight = 0;
  uint64_t t0 = bench_now_ns();
  for (;;) {
    while (inflight < conc && started < nconns) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0 || (size_t)fd >= cap) bench_die_errno("socket");
      set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
      const struct sockaddr_in *d = &dsts[started % NPORTS];
      started++;
      if (connect(fd, (const struct sockaddr *)d, sizeof *d) != 0 && errno != EINPROGRESS) {
        if (failed++ < 5) fprintf(stderr, "connect: %s\n", strerror(errno));
        close(fd);
        continue;
      }
      cc[fd].phase = 1;
      cc[fd].got = 0;
      struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      inflight++;
    }
    if (done + failed >= nconns) break;
    if (wall_exceeded(t0)) { fprintf(stderr, "%s: wall-clock limit\n", hs ? "hs" : "rr"); break; }
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, 1000);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      struct cli_conn *c = &cc[fd];
      bool finish = false, ok = true;
      if (c->phase == 1) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) { finish = true; ok = false; }
        else if (hs) finish = true;
        else if (write(fd, msg, 64) != 64) { finish = true; ok = false; }
        else {
          c->phase = 2;
          struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
          epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
        }
      } else if (c->phase == 2) {
        uint8_t buf[128];
        ssize_t r = read(fd, buf, sizeof buf);
        if (r > 0) {
          if (c->got + r > 64 || !bench_verify(c->got, buf, (size_t)r)) {
            corrupt++;
            finish = true;
            ok = false;
          } else {
            c->got = (uint8_t)(c->got + r);
            if (c->got >= 64) finish = true;
          }
        } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          finish = true;
          ok = false;
        }
      }
      if (finish) {
        c->phase = 0;
        close(fd);
        inflight--;
        if (ok) done++; else failed++;
      }
    }
  }
  uint64_t t1 = bench_now_ns();
  close(ep);
  free(cc);
  fprintf(stderr, "%s: %llu done, %llu failed (%llu payload mismatches) in %.3f s\n",
          hs ? "hs" : "rr", (unsigned long long)done, (unsigned long long)failed,
          (unsigned long long)corrupt, (double)(t1 - t0) / 1e9);
  if (done != nconns) return 0;
  return (double)done / ((double)(t1 - t0) / 1e9);
}

static void run_lat(const char *ip, uint64_t iters, const char *label)
{
  int fd = connect_retry(ip, PORT_RR);
  set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  const uint8_t *msg = bench_pattern_at(0);
  uint8_t buf[256];
  uint64_t warm = iters / 10 + 100;
  uint64_t *samples = malloc(iters * sizeof *samples);
  if (!samples) bench_die("out of memory");
  for (uint64_t i = 0; i < warm + iters; i++) {
    uint64_t a = bench_now_ns();
    if (write(fd, msg, 64) != 64) bench_die_errno("write");
    size_t got = 0;
    while (got < 64) {
      ssize_t r = read(fd, buf, sizeof buf);
      if (r <= 0) bench_die_errno("read");
      if (got + (size_t)r > 64 || !bench_verify(got, buf, (size_t)r)) bench_die("lat: payload mismatch");
      got += (size_t)r;
    }
    uint64_t b = bench_now_ns();
    if (i >= warm) samples[i - warm] = b - a;
  }
  close(fd);
  char key[64];
  snprintf(key, sizeof key, "lat.%s.p50", label);
  bench_result(key, (double)bench_percentile(samples, iters, 50) / 1000.0);
  snprintf(key, sizeof key, "lat.%s.p99", label);
  bench_result(key, (double)bench_percentile(samples, iters, 99) / 1000.0);
  free(samples);
}

/* ---- memory per idle connection ---- */


static long slab_objs(const char *cache)
{
  FILE *f = fopen("/proc/slabinfo", "r");
  if (!f) return -1;
  char line[512], name[128];
  long active = -1, v = -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "%127s %ld", name, &active) == 2 && !strcmp(name, cache)) { v = active; break; }
  fclose(f);
  return v;
}

static void settle(void)
{
  /* Let deferred frees (RCU) and per-CPU caches settle before reading totals. */
  sync();
  usleep(500000);
}

/* One worker: k connections, both ends in this process (a process may hold only
 * RLIMIT_NOFILE descriptors, and without CAP_SYS_RESOURCE the hard limit cannot be
 * raised, so the connections are spread over several processes). Reports how many
 * it made on ready_fd, holds them until go_fd closes, then resets them (no
 * TIME_WAIT left behind). */
static void mem_worker(const char *client_ns, const char *server_ns, const char *ip,
                       uint16_t port, uint64_t k, int ready_fd, int go_fd)
{
  bench_enter_netns(server_ns);
  int lfd = listen_on(ip, port, 4096);
  bench_enter_netns(client_ns);
  int *fds = malloc(2 * k * sizeof *fds);
  if (!fds) bench_die("out of memory");
  struct sockaddr_in dst = addr_of(ip, port);
  uint64_t opened = 0, accepted = 0, failed = 0;
  size_t nfds = 0;
  uint64_t t0 = bench_now_ns();
  while (accepted + failed < k) {
    while (opened < k && opened - accepted - failed < 1000) {
      int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) bench_die_errno("socket");
      opened++;
      if (connect(fd, (const struct sockaddr *)&dst, sizeof dst) != 0 && errno != EINPROGRESS) {
        if (failed++ < 5) fprintf(stderr, "mem: connect: %s\n", strerror(errno));
        close(fd);
        continue;
      }
      fds[nfds++] = fd;
    }
    int nfd;
    bool any = false;
    while ((nfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
      fds[nfds++] = nfd;
      accepted++;
      any = true;
    }
    if (!any) usleep(100);
    if (wall_exceeded(t0)) { fprintf(stderr, "mem: wall-clock limit\n"); break; }
  }
  if (write(ready_fd, &accepted, sizeof accepted) != sizeof accepted) _exit(1);
  char c;
  while (read(go_fd, &c, 1) > 0) {}
  struct linger lg = {1, 0};
  for (size_t i = 0; i < nfds; i++) {
    setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fds[i]);
  }
  close(lfd);
  _exit(0);
}

static void run_mem(const char *client_ns, const char *server_ns, const char *ip, uint64_t nconns)
{
  rlim_t lim = bench_raise_nofile((rlim_t)(2 * nconns + 1024));
  uint64_t per = lim > 1088 ? (uint64_t)(lim - 64) / 2 : 512;
  if (per > 10000) per = 10000;
  uint64_t nworkers = (nconns + per - 1) / per;
  int ready[2], go[2];
  if (pipe(ready) != 0 || pipe(go) != 0) bench_die_errno("pipe");
  settle();
  long slab0 = bench_meminfo_kb("Slab"), mem0 = bench_sockstat_tcp("mem"), tcp0 = slab_objs("TCP");
  uint64_t t0 = bench_now_ns();
  pid_t *pids = calloc(nworkers, sizeof *pids);
  if (!pids) bench_die("out of memory");
  for (uint64_t w = 0; w < nworkers; w++) {
    uint64_t k = w + 1 < nworkers ? per : nconns - per * (nworkers - 1);
    pids[w] = fork();
    if (pids[w] < 0) bench_die_errno("fork");
    if (pids[w] == 0) {
      close(ready[0]);
      close(go[1]);
      mem_worker(client_ns, server_ns, ip, (uint16_t)(PORT_MEM + w), k, ready[1], go[0]);
    }
  }
  close(ready[1]);
  close(go[0]);
  uint64_t accepted = 0;
  for (uint64_t w = 0; w < nworkers; w++) {
    uint64_t a = 0;
    if (read(ready[0], &a, sizeof a) != sizeof a) { fprintf(stderr, "mem: a worker died\n"); break; }
    accepted += a;
  }
  uint64_t t1 = bench_now_ns();
  settle();
  long slab1 = bench_meminfo_kb("Slab"), mem1 = bench_sockstat_tcp("mem"), tcp1 = slab_objs("TCP");
  fprintf(stderr, "mem: %llu connections (%llu processes of up to %llu) in %.2f s; Slab %ld -> "
          "%ld kB; sockstat mem %ld -> %ld pages; TCP slab objects %ld -> %ld\n",
          (unsigned long long)accepted, (unsigned long long)nworkers, (unsigned long long)per,
          (double)(t1 - t0) / 1e9, slab0, slab1, mem0, mem1, tcp0, tcp1);
  if (accepted == nconns) {
    double ends = 2.0 * (double)nconns;
    bench_result("mem.kernel.slab", (double)(slab1 - slab0) * 1024.0 / ends);
    bench_result("mem.kernel.sockstat", (double)(mem1 - mem0) * 4096.0 / ends);
  } else {
    bench_result("mem.kernel.slab", 0);
  }
  close(go[1]);
  for (uint64_t w = 0; w < nworkers; w++) waitpid(pids[w], NULL, 0);
  close(ready[0]);
  free(pids);
  settle();
}

/* The usage text: on stdout with status 0 for --help, on stderr with status 2
 * for bad usage. */
static void usage_exit(int status)
{
  fprintf(status ? stderr : stdout,
          "usage: kernel_bench MODE --ns NETNS --addr SERVER_IP [options]\n"
          "  serve                                 the epoll server (until killed)\n"
          "  bulk  --bytes N [--mtu M]             one flow (Gbit/s; M names the result)\n"
          "  bulk-recv --bytes N [--mtu M]         one flow from the server's port 5002\n"
          "  udp-flood --secs S [--conc W]         TUN ceiling load: packets/s reflected\n"
          "  rr    --conns N --conc C              connect, 64 B request/response, close\n"
          "  hs    --conns N --conc C              handshake only\n"
          "  lat   --iters N                       64 B round trip (us)\n"
          "  mem   --conns N --server-ns NETNS     idle connections (bytes per end)\n"
          "common: --reps R (5), --wall S (seconds per repetition, 120), --label L (names\n"
          "        the results: bulk1500.L, rr.L ...; default kernel), --server-pid P and\n"
          "        --cpu C (bulk: also the CPU cost, this process + P + softirq of CPU C),\n"
          "        --stack-pid P (bulk, bulk-recv: also process P's CPU and CPU C's busy\n"
          "        time per byte: cpu1500.L.stack_nsB, .busy_nsB ...), --port N (bulk:\n"
          "        to port N instead of 5001; the server's 5003 discards unchecked)\n");
  exit(status);
}

static void usage(void) { usage_exit(2); }

int main(int argc, char **argv)
{
  if (argc < 2) usage();
  if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) usage_exit(0);
  const char *mode = argv[1];
  bench_pattern_init();
  const char *ns = NULL, *server_ns = NULL, *ip = "10.77.0.2", *label = "kernel";
  double secs = 2;
  uint64_t bytes = 1ull << 30, conns = 30000, iters = 20000;
  unsigned mtu = 1500;
  int conc = 32, reps = 5;
  static const struct option opts[] = {
    {"ns", required_argument, 0, 'N'}, {"server-ns", required_argument, 0, 'S'},
    {"addr", required_argument, 0, 'a'}, {"bytes", required_argument, 0, 'b'},
    {"mtu", required_argument, 0, 'm'}, {"conns", required_argument, 0, 'n'},
    {"conc", required_argument, 0, 'c'}, {"iters", required_argument, 0, 'i'},
    {"reps", required_argument, 0, 'r'}, {"wall", required_argument, 0, 'w'},
    {"label", required_argument, 0, 'L'}, {"secs", required_argument, 0, 's'},
    {"server-pid", required_argument, 0, 'P'}, {"cpu", required_argument, 0, 'C'},
    {"stack-pid", required_argument, 0, 'K'}, {"port", required_argument, 0, 'p'},
    {0, 0, 0, 0}};
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (ch) {
    case 'N': ns = optarg; break;
    case 'S': server_ns = optarg; break;
    case 'a': ip = optarg; break;
    case 'b': bytes = strtoull(optarg, NULL, 0); break;
    case 'm': mtu = (unsigned)strtoul(optarg, NULL, 0); break;
    case 'n': conns = strtoull(optarg, NULL, 0); break;
    case 'c': conc = atoi(optarg); break;
    case 'i': iters = strtoull(optarg, NULL, 0); break;
    case 'r': reps = atoi(optarg); break;
    case 'w': opt_wall_limit_s = strtoull(optarg, NULL, 0); break;
    case 'L': label = optarg; break;
    case 's': secs = atof(optarg); break;
    case 'P': opt_server_pid = atoi(optarg); break;
    case 'C': opt_cpu = atoi(optarg); break;
    case 'K': opt_stack_pid = atoi(optarg); break;
    case 'p': opt_port = (uint16_t)atoi(optarg); break;
    default: usage();
    }
  }
  if (reps < 1 || conc < 1) usage();
  if (!strcmp(mode, "mem")) {
    if (!ns || !server_ns) usage();
    for (int r = 0; r < reps; r++) run_mem(ns, server_ns, ip, conns);
    return 0;
  }
  if (ns) bench_enter_netns(ns);
  if (!strcmp(mode, "serve")) run_server(ip);
  char key[64];
  for (int r = 0; r < reps; r++) {
    if (!strcmp(mode, "bulk")) {
      snprintf(key, sizeof key, "bulk%u.%s", mtu, label);
      bench_result(key, run_bulk(ip, bytes, mtu, label));
    } else if (!strcmp(mode, "bulk-recv")) {
      snprintf(key, sizeof key, "bulkrecv%u.%s", mtu, label);
      bench_result(key, run_bulk_recv(ip, bytes, mtu, label));
    } else if (!strcmp(mode, "udp-flood")) {
      double pps = run_udp_flood(ip, secs, conc);
      snprintf(key, sizeof key, "tunceiling.pps");
      bench_result(key, pps);
      snprintf(key, sizeof key, "tunceiling%u.gbps", mtu);
      bench_result(key, pps * 1500 * 8 / 1e9);
    } else if (!strcmp(mode, "rr") || !strcmp(mode, "hs")) {
      bool hs = !strcmp(mode, "hs");
      snprintf(key, sizeof key, "%s.%s", hs ? "hs" : "rr", label);
      bench_result(key, run_short(ip, hs, conns, conc));
    } else if (!strcmp(mode, "lat")) {
      run_lat(ip, iters, label);
    } else {
      usage();
    }
  }
  return 0;
}
