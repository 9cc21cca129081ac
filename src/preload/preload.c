/* libustcp_preload.so: unmodified programs on ustcp (LD_PRELOAD).
 *
 *   LD_PRELOAD=libustcp_preload.so USTCP_TUN=ustcp0 program ...
 *
 * moves the program's AF_INET SOCK_STREAM sockets onto one ustcp stack on a TUN
 * device, and its AF_INET6 ones too when the stack has an IPv6 address
 * (USTCP_ADDR6, issue 16); every other descriptor (files, pipes, UNIX and UDP
 * sockets, IPv6 without USTCP_ADDR6, DNS) stays with the kernel, and so does TCP
 * to loopback (127/8, ::1, ::ffff:127.x) or to a bound address that is not the
 * stack's. An AF_INET6 socket speaks sockaddr_in6 both ways and behaves as
 * Linux's: IPv4 peers of a [::] listener show as ::ffff:a.b.c.d, connect() to
 * ::ffff:a.b.c.d speaks IPv4, IPV6_V6ONLY keeps it to IPv6. docs/PRELOAD.md is the user's page; this comment is the map.
 *
 * Descriptors. Each ustcp socket is shown to the program as a real kernel
 * descriptor: one end (app_fd) of a UNIX socketpair, whose readiness mirrors the
 * ustcp socket's. The shim keeps the other end (peer_fd) and a private dup of
 * app_fd (mirror_fd):
 *   readable  <=> one byte sits in app_fd's receive queue (written from peer_fd);
 *   writable  <=> app_fd's tiny send buffer is not full (the shim fills it from
 *                 mirror_fd to say "not writable" and drains it at peer_fd).
 * So poll, select and epoll (level- or edge-triggered, mixed with kernel
 * descriptors in one set) work unchanged, and fd numbers are real: dup, close
 * and exec behave as the kernel's do for descriptor numbers. The real open file
 * is always O_NONBLOCK; the program's O_NONBLOCK is kept by the shim.
 *
 * Threads. One stack per process, driven by a thread of the shim (stack_main):
 * it waits on ustcp_loop_fd() and runs a round of the loop. Every call of the
 * program on a ustcp socket takes the one mutex (big_lock) around the stack;
 * blocking calls wait on a condition variable that every readiness change and
 * every loop round broadcast. Wrappers find their socket through fd_table
 * without the lock (the loop's own read/write on the TUN device and stdio pass
 * through these wrappers too, while the lock is held).
 *
 * fork(): the stack and its thread stay with the parent; in the child a ustcp
 * descriptor can only be closed (other calls fail with EBADF and a message).
 * exec(): the descriptors are plain UNIX sockets to the new image (close them,
 * or mark them FD_CLOEXEC, as usual). At exit the shim gives the stack up to
 * USTCP_DRAIN_MS (default 2000) to finish close handshakes.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "ustcp.h"
#include "ustcp_loop.h"

#define EXPORT __attribute__((visibility("default")))
/* glibc's _FORTIFY_SOURCE entry points (the program calls these when the buffer
 * size is known at compile time). */
ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                       struct sockaddr *sa, socklen_t *len);
int fcntl64(int fd, int cmd, ...);
ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count);
#define FD_MAX 65536

/* ---- the real functions ---- */
#define REAL(ret, name, ...)                                                        \
  static ret (*real_##name)(__VA_ARGS__);
REAL(int, socket, int, int, int)
REAL(int, bind, int, const struct sockaddr *, socklen_t)
REAL(int, listen, int, int)
REAL(int, accept, int, struct sockaddr *, socklen_t *)
REAL(int, accept4, int, struct sockaddr *, socklen_t *, int)
REAL(int, connect, int, const struct sockaddr *, socklen_t)
REAL(ssize_t, read, int, void *, size_t)
REAL(ssize_t, write, int, const void *, size_t)
REAL(ssize_t, readv, int, const struct iovec *, int)
REAL(ssize_t, writev, int, const struct iovec *, int)
REAL(ssize_t, send, int, const void *, size_t, int)
REAL(ssize_t, sendto, int, const void *, size_t, int, const struct sockaddr *, socklen_t)
REAL(ssize_t, sendmsg, int, const struct msghdr *, int)
REAL(ssize_t, recv, int, void *, size_t, int)
REAL(ssize_t, recvfrom, int, void *, size_t, int, struct sockaddr *, socklen_t *)
REAL(ssize_t, recvmsg, int, struct msghdr *, int)
REAL(ssize_t, sendfile, int, int, off_t *, size_t)
REAL(int, shutdown, int, int)
REAL(int, close, int)
REAL(int, dup, int)
REAL(int, dup2, int, int)
REAL(int, dup3, int, int, int)
REAL(int, fcntl, int, int, ...)
REAL(int, ioctl, int, unsigned long, ...)
REAL(int, getsockopt, int, int, int, void *, socklen_t *)
REAL(int, setsockopt, int, int, int, const void *, socklen_t)
REAL(int, getsockname, int, struct sockaddr *, socklen_t *)
REAL(int, getpeername, int, struct sockaddr *, socklen_t *)

static void resolve_real(void)
{
#define R(name) real_##name = dlsym(RTLD_NEXT, #name)
  R(socket); R(bind); R(listen); R(accept); R(accept4); R(connect); R(read); R(write);
  R(readv); R(writev); R(send); R(sendto); R(sendmsg); R(recv); R(recvfrom); R(recvmsg);
  R(sendfile); R(shutdown); R(close); R(dup); R(dup2); R(dup3); R(fcntl); R(ioctl);
  R(getsockopt); R(setsockopt); R(getsockname); R(getpeername);
#undef R
}
static pthread_once_t real_once = PTHREAD_ONCE_INIT;
#define NEED_REAL() pthread_once(&real_once, resolve_real)

/* ---- state ---- */
struct saved_opt { int level, name, val; };

struct psock {
  int ufd;                  /* the ustcp socket; -1 once closed */
  int refs;                 /* program descriptors that name it (dup) */
  int mirror_fd, peer_fd;   /* see the map */
  bool nonblock;            /* the program's O_NONBLOCK */
  bool readable, unwritable;/* what the mirror shows now */
  bool placed;              /* bound or connected: can no longer move to the kernel */
  bool listening;
  int family;               /* AF_INET or AF_INET6: the program's view */
  uint64_t rcvtimeo_us, sndtimeo_us;  /* SO_RCVTIMEO / SO_SNDTIMEO, 0 = none */
  struct saved_opt opts[8]; /* options set before the socket was placed (replayed
                               if it moves to the kernel) */
  int nopts;
};

static struct psock *_Atomic fd_table[FD_MAX];      /* program fd -> socket */
static struct psock *ufd_table[FD_MAX];             /* ustcp fd -> socket (under lock) */
static pthread_mutex_t big_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static struct ustcp_loop *loop;
static struct ustcp_stack *stack;
static uint32_t stack_addr;
static bool stack_has6;               /* USTCP_ADDR6 given */
static uint8_t stack_addr6[16];
static int init_state;      /* 0 not tried, 1 up, -errno failed */
static bool in_child;       /* after fork(): the stack is the parent's */
static bool debug;

static void say(const char *fmt, ...)
{
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  NEED_REAL();
  ssize_t w = real_write(2, "ustcp-preload: ", 15);
  w = real_write(2, buf, (size_t)n);
  (void)w;
}

static struct psock *lookup(int fd)
{
  if (fd < 0 || fd >= FD_MAX) return NULL;
  return atomic_load_explicit(&fd_table[fd], memory_order_acquire);
}

static int fail(int err)
{
  errno = err;
  return -1;
}

/* ---- the readiness mirror ---- */
static void mirror_set(struct psock *p, bool readable, bool writable)
{
  /* Thread-local, not on the stack: frames stay under 4 KiB (stack_usage.sh),
   * and the mirror keeps filling and draining in 4 KiB units as before. */
  static _Thread_local char junk[4096];
  if (readable && !p->readable) {
    if (real_write(p->peer_fd, "r", 1) == 1) p->readable = true;
  } else if (!readable && p->readable) {
    while (real_recv(p->mirror_fd, junk, sizeof junk, MSG_DONTWAIT) > 0) {}
    p->readable = false;
  }
  if (!writable && !p->unwritable) {
    while (real_send(p->mirror_fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL) > 0) {}
    p->unwritable = true;
  } else if (writable && p->unwritable) {
    while (real_recv(p->peer_fd, junk, sizeof junk, MSG_DONTWAIT) > 0) {}
    p->unwritable = false;
  }
}

/* Makes the mirror show the ustcp socket's readiness (lock held). */
static void mirror_sync(struct psock *p)
{
  if (p->ufd < 0) return;
  int ev = ustcp_sock_events(stack, p->ufd);
  if (ev < 0) ev = USTCP_POLLERR | USTCP_POLLHUP;
  bool bad = ev & (USTCP_POLLERR | USTCP_POLLHUP);
  bool rd = bad || (ev & (USTCP_POLLIN | USTCP_POLLRDHUP));
  bool wr = bad || (ev & USTCP_POLLOUT) || p->listening;
  /* A socket neither connected nor connecting is writable to poll (Linux). */
  struct ustcp_tcp_info ti;
  if (!p->listening && ustcp_get_info(stack, p->ufd, &ti) == 0 && ti.state == USTCP_CLOSED)
    wr = true;
  mirror_set(p, rd, wr);
}

static void on_ready(void *ctx, int ufd, unsigned events)
{
  (void)ctx; (void)events;
  if (ufd >= 0 && ufd < FD_MAX && ufd_table[ufd]) mirror_sync(ufd_table[ufd]);
  pthread_cond_broadcast(&ready_cond);
}

/* After a call of the program: let the loop take in what arrived, re-arm the
 * timer, refresh the mirror. */
static void after_op(struct psock *p)
{
  ustcp_loop_run_once(loop, 0);
  if (p) mirror_sync(p);
}

/* ---- the stack and its thread ---- */
static void *stack_main(void *arg)
{
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);   /* signals are the program's business */
  struct pollfd pfd = {.fd = ustcp_loop_fd(loop), .events = POLLIN};
  for (;;) {
    if (poll(&pfd, 1, -1) < 0 && errno != EINTR) break;
    pthread_mutex_lock(&big_lock);
    ustcp_loop_run_once(loop, 0);   /* readiness callbacks refresh the mirrors */
    pthread_cond_broadcast(&ready_cond);
    pthread_mutex_unlock(&big_lock);
  }
  return NULL;
}

static void at_exit_drain(void)
{
  if (init_state != 1 || in_child) return;
  const char *d = getenv("USTCP_DRAIN_MS");
  int ms = d ? atoi(d) : 2000;
  pthread_mutex_lock(&big_lock);
  if (ms > 0) ustcp_loop_drain(loop, ms);
  pthread_mutex_unlock(&big_lock);
}

static void child_after_fork(void)
{
  in_child = true;
  pthread_mutex_init(&big_lock, NULL);
}

static uint32_t env_ip(const char *name, const char *def)
{
  const char *v = getenv(name);
  struct in_addr a;
  if (!v || !*v) v = def;
  if (inet_pton(AF_INET, v, &a) != 1) {
    say("%s=%s is not an IPv4 address; using %s", name, v, def);
    inet_pton(AF_INET, def, &a);
  }
  return ntohl(a.s_addr);
}

/* Brings the stack up on first use (lock held). Returns 0 or -errno. */
static int stack_init(void)
{
  if (init_state) return init_state > 0 ? 0 : init_state;
  debug = getenv("USTCP_DEBUG") && *getenv("USTCP_DEBUG") == '1';
  struct ustcp_loop_config c;
  ustcp_loop_config_default(&c);
  c.tun_name = getenv("USTCP_TUN");
  c.addr = stack_addr = env_ip("USTCP_ADDR", "10.7.0.2");
  c.peer = env_ip("USTCP_PEER", "10.7.0.1");
  const char *conf = getenv("USTCP_CONFIGURE");
  c.configure = !(conf && *conf == '0');
  if (getenv("USTCP_MTU")) c.mtu = (uint16_t)atoi(getenv("USTCP_MTU"));
  if (getenv("USTCP_PCAP")) c.pcap_path = getenv("USTCP_PCAP");
  if (getenv("USTCP_SEED")) c.seed = strtoull(getenv("USTCP_SEED"), NULL, 0);
  /* IPv6 (issue 16): USTCP_ADDR6 for the stack, USTCP_PEER6 for the kernel
   * side (added as a /64 when the device is configured). */
  const char *a6 = getenv("USTCP_ADDR6"), *p6 = getenv("USTCP_PEER6");
  if (a6 && *a6) {
    if (inet_pton(AF_INET6, a6, c.addr6) != 1) say("USTCP_ADDR6=%s is not an IPv6 address; no IPv6", a6);
    else {
      stack_has6 = true;
      memcpy(stack_addr6, c.addr6, 16);
      if (p6 && *p6 && inet_pton(AF_INET6, p6, c.peer6) != 1) say("USTCP_PEER6=%s is not an IPv6 address", p6);
    }
  }
  static struct ustcp_config sc;
  ustcp_config_default(&sc);
  c.stack_cfg = &sc;
  char err[200] = "";
  int rc = ustcp_loop_new(&c, &loop, err, sizeof err);
  if (rc < 0) {
    say("cannot start the stack on TUN device %s: %s", c.tun_name, err);
    init_state = rc;
    return rc;
  }
  stack = ustcp_loop_stack(loop);
  ustcp_set_ready_cb(stack, on_ready, NULL);
  if (getenv("USTCP_CTL")) ustcp_loop_ctl_open(loop, getenv("USTCP_CTL"), err, sizeof err);
  pthread_t th;
  if (pthread_create(&th, NULL, stack_main, NULL) != 0) {
    say("cannot start the stack thread");
    init_state = -EAGAIN;
    return init_state;
  }
  pthread_detach(th);
  pthread_atfork(NULL, NULL, child_after_fork);
  atexit(at_exit_drain);
  init_state = 1;
  if (debug) say("stack up on %s, address %s", ustcp_loop_ifname(loop), getenv("USTCP_ADDR") ? getenv("USTCP_ADDR") : "10.7.0.2");
  return 0;
}

static bool active(void) { return getenv("USTCP_TUN") && *getenv("USTCP_TUN"); }
/* AF_INET6 sockets go to ustcp when the stack is to have an IPv6 address. */
static bool active6(void) { return getenv("USTCP_ADDR6") && *getenv("USTCP_ADDR6"); }

/* Makes the program-facing descriptor and the mirror for ustcp socket ufd.
 * Returns the program's fd or -errno (lock held). */
static int psock_new(int ufd, bool nonblock, bool cloexec)
{
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
  int one = 1;
  real_setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &one, sizeof one);  /* the minimum */
  struct psock *p = calloc(1, sizeof *p);
  int mfd = real_fcntl(sv[0], F_DUPFD_CLOEXEC, 0);
  if (!p || mfd < 0 || sv[0] >= FD_MAX || mfd >= FD_MAX) {
    free(p);
    real_close(sv[0]); real_close(sv[1]);
    if (mfd >= 0) real_close(mfd);
    return -EMFILE;
  }
  if (!cloexec) real_fcntl(sv[0], F_SETFD, 0);
  p->ufd = ufd;
  p->refs = 1;
  p->family = AF_INET;      /* AF_INET6 set by socket() and accept() */
  p->mirror_fd = mfd;
  p->peer_fd = sv[1];
  p->nonblock = nonblock;
  ufd_table[ufd] = p;
  atomic_store_explicit(&fd_table[sv[0]], p, memory_order_release);
  mirror_sync(p);
  return sv[0];
}

static void psock_release(struct psock *p)
{
  if (--p->refs > 0) return;
  if (p->ufd >= 0 && !in_child) {
    ustcp_close(stack, p->ufd);
    ufd_table[p->ufd] = NULL;
    after_op(NULL);
  }
  real_close(p->mirror_fd);
  real_close(p->peer_fd);
  free(p);
}

/* Waits for readiness or the socket's timeout (lock held). Returns 0, or
 * -EAGAIN when the timeout passed. */
static int wait_ready(uint64_t timeout_us, const struct timespec *deadline)
{
  if (!timeout_us) {
    pthread_cond_wait(&ready_cond, &big_lock);
    return 0;
  }
  if (pthread_cond_timedwait(&ready_cond, &big_lock, deadline) == ETIMEDOUT) return -EAGAIN;
  return 0;
}

static struct timespec deadline_in(uint64_t us)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)(us / 1000000u);
  ts.tv_nsec += (long)(us % 1000000u) * 1000;
  if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
  return ts;
}

/* ---- socket ---- */
EXPORT int socket(int domain, int type, int protocol)
{
  NEED_REAL();
  int kind = type & 0xf;
  if (!active() || (domain != AF_INET && !(domain == AF_INET6 && active6())) || kind != SOCK_STREAM ||
      (protocol != 0 && protocol != IPPROTO_TCP) || in_child)
    return real_socket(domain, type, protocol);
  pthread_mutex_lock(&big_lock);
  int rc = stack_init();
  int fd = rc;
  if (rc == 0) {
    int u = ustcp_socket(stack);
    if (u < 0) fd = u;
    else if (u >= FD_MAX) { ustcp_close(stack, u); fd = -EMFILE; }
    else {
      fd = psock_new(u, type & SOCK_NONBLOCK, type & SOCK_CLOEXEC);
      if (fd < 0) ustcp_close(stack, u);
      else lookup(fd)->family = domain;
    }
  }
  pthread_mutex_unlock(&big_lock);
  return fd < 0 ? fail(-fd) : fd;
}

/* Moves a socket that is not placed yet to the kernel, keeping its number:
 * for loopback and for addresses that are not the stack's. */
static int move_to_kernel(int fd, struct psock *p)
{
  if (p->refs > 1) {
    say("fd %d: cannot move a duplicated socket to the kernel", fd);
    return -EOPNOTSUPP;
  }
  int k = real_socket(p->family, SOCK_STREAM | (p->nonblock ? SOCK_NONBLOCK : 0), 0);
  if (k < 0) return -errno;
  for (int i = 0; i < p->nopts; i++)
    real_setsockopt(k, p->opts[i].level, p->opts[i].name, &p->opts[i].val, sizeof(int));
  int cloexec = real_fcntl(fd, F_GETFD) & FD_CLOEXEC;
  atomic_store_explicit(&fd_table[fd], NULL, memory_order_release);
  if (real_dup3(k, fd, cloexec ? O_CLOEXEC : 0) < 0) {
    int e = errno;
    atomic_store_explicit(&fd_table[fd], p, memory_order_release);
    real_close(k);
    return -e;
  }
  real_close(k);
  psock_release(p);
  if (debug) say("fd %d moved to the kernel", fd);
  return 0;
}

static bool for_kernel(uint32_t ip)
{
  return (ip >> 24) == 127 || (ip != 0 && ip != stack_addr);
}

static bool is_v4mapped(const uint8_t a[16])
{
  static const uint8_t pre[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return !memcmp(a, pre, 12);
}
static uint32_t v4_of(const uint8_t a[16])
{
  return (uint32_t)a[12] << 24 | (uint32_t)a[13] << 16 | (uint32_t)a[14] << 8 | a[15];
}

/* An address that belongs to the kernel (bind): loopback, or not the stack's. */
static bool for_kernel_addr(const struct ustcp_addr *a)
{
  static const uint8_t any6[16], lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (a->family != USTCP_AF_INET6) return for_kernel(a->ip);
  if (is_v4mapped(a->ip6)) return for_kernel(v4_of(a->ip6));
  if (!memcmp(a->ip6, any6, 16)) return false;
  return !memcmp(a->ip6, lo6, 16) || memcmp(a->ip6, stack_addr6, 16) != 0;
}
/* A destination on this host (connect): 127/8, ::1, ::ffff:127.x. */
static bool loopback_addr(const struct ustcp_addr *a)
{
  static const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (a->family != USTCP_AF_INET6) return (a->ip >> 24) == 127;
  if (is_v4mapped(a->ip6)) return (v4_of(a->ip6) >> 24) == 127;
  return !memcmp(a->ip6, lo6, 16);
}

/* The program's sockaddr as ustcp's. An AF_INET6 socket takes sockaddr_in6 only
 * (Linux's inet6_bind and tcp_v6_connect: shorter than SIN6_LEN_RFC2133, 24
 * bytes, is EINVAL; another family EAFNOSUPPORT); ustcp gives v4-mapped
 * addresses their Linux meaning. */
static int to_uaddr(const struct psock *p, const struct sockaddr *sa, socklen_t len,
                    struct ustcp_addr *out)
{
  if (!sa) return -EFAULT;
  if (p->family == AF_INET6) {
    if (len < 24) return -EINVAL;
    if (sa->sa_family != AF_INET6) return -EAFNOSUPPORT;
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    memcpy(&in6, sa, len < sizeof in6 ? len : sizeof in6);
    memset(out, 0, sizeof *out);
    out->family = USTCP_AF_INET6;
    memcpy(out->ip6, &in6.sin6_addr, 16);
    out->port = ntohs(in6.sin6_port);
    return 0;
  }
  if (len < sizeof(struct sockaddr_in)) return -EINVAL;
  if (sa->sa_family != AF_INET) return -EAFNOSUPPORT;
  const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
  memset(out, 0, sizeof *out);      /* family 0: IPv4 */
  out->ip = ntohl(in->sin_addr.s_addr);
  out->port = ntohs(in->sin_port);
  return 0;
}

static void from_uaddr(const struct psock *p, const struct ustcp_addr *a, struct sockaddr *sa,
                       socklen_t *len)
{
  if (!sa || !len) return;
  if (p->family == AF_INET6) {
    /* IPv4 endpoints of an AF_INET6 socket as ::ffff:a.b.c.d; "any" as :: */
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(a->port);
    if (a->family == USTCP_AF_INET6) {
      memcpy(&in6.sin6_addr, a->ip6, 16);
    } else if (a->ip) {
      uint8_t *b = (uint8_t *)&in6.sin6_addr;
      b[10] = b[11] = 0xff;
      b[12] = (uint8_t)(a->ip >> 24); b[13] = (uint8_t)(a->ip >> 16);
      b[14] = (uint8_t)(a->ip >> 8); b[15] = (uint8_t)a->ip;
    }
    memcpy(sa, &in6, *len < sizeof in6 ? *len : sizeof in6);
    *len = sizeof in6;
    return;
  }
  struct sockaddr_in in;
  memset(&in, 0, sizeof in);
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(a->ip);
  in.sin_port = htons(a->port);
  memcpy(sa, &in, *len < sizeof in ? *len : sizeof in);
  *len = sizeof in;
}

static int child_refuse(int fd)
{
  say("fd %d: ustcp sockets stay with the process that made them (fork)", fd);
  return fail(EBADF);
}

EXPORT int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_bind(fd, sa, len);
  if (in_child) return child_refuse(fd);
  struct ustcp_addr a;
  int rc = to_uaddr(p, sa, len, &a);
  if (rc) return fail(-rc);
  pthread_mutex_lock(&big_lock);
  if (for_kernel_addr(&a) && !p->placed) {
    rc = move_to_kernel(fd, p);
    pthread_mutex_unlock(&big_lock);
    return rc ? fail(-rc) : real_bind(fd, sa, len);
  }
  rc = ustcp_bind(stack, p->ufd, &a);
  if (rc == 0) p->placed = true;
  after_op(p);
  pthread_mutex_unlock(&big_lock);
  return rc ? fail(-rc) : 0;
}

EXPORT int listen(int fd, int backlog)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_listen(fd, backlog);
  if (in_child) return child_refuse(fd);
  pthread_mutex_lock(&big_lock);
  int rc = 0;
  if (p->family == AF_INET6 && !p->placed) {
    /* listen() without bind(): an ephemeral port on [::] (Linux's
     * inet_autobind), not on 0.0.0.0 as ustcp_listen would bind */
    struct ustcp_addr any6;
    memset(&any6, 0, sizeof any6);
    any6.family = USTCP_AF_INET6;
    rc = ustcp_bind(stack, p->ufd, &any6);
  }
  if (rc == 0) rc = ustcp_listen(stack, p->ufd, backlog);
  if (rc == 0) { p->placed = true; p->listening = true; }
  after_op(p);
  pthread_mutex_unlock(&big_lock);
  return rc ? fail(-rc) : 0;
}

EXPORT int accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_accept4(fd, sa, len, flags);
  if (in_child) return child_refuse(fd);
  pthread_mutex_lock(&big_lock);
  struct timespec dl = deadline_in(p->rcvtimeo_us);
  int nfd;
  for (;;) {
    struct ustcp_addr peer;
    int u = ustcp_accept(stack, p->ufd, &peer);
    if (u >= 0) {
      if (u >= FD_MAX) { ustcp_close(stack, u); nfd = -EMFILE; break; }
      nfd = psock_new(u, flags & SOCK_NONBLOCK, flags & SOCK_CLOEXEC);
      if (nfd < 0) { ustcp_close(stack, u); break; }
      lookup(nfd)->placed = true;
      lookup(nfd)->family = p->family;
      from_uaddr(p, &peer, sa, len);
      break;
    }
    nfd = u;
    if (u != -EAGAIN || p->nonblock) break;
    if (wait_ready(p->rcvtimeo_us, &dl) < 0) break;
  }
  after_op(p);
  pthread_mutex_unlock(&big_lock);
  return nfd < 0 ? fail(-nfd) : nfd;
}

EXPORT int accept(int fd, struct sockaddr *sa, socklen_t *len)
{
  NEED_REAL();
  if (!lookup(fd)) return real_accept(fd, sa, len);
  return accept4(fd, sa, len, 0);
}

EXPORT int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_connect(fd, sa, len);
  if (in_child) return child_refuse(fd);
  struct ustcp_addr a;
  int rc = to_uaddr(p, sa, len, &a);
  if (rc) return fail(-rc);
  pthread_mutex_lock(&big_lock);
  if (loopback_addr(&a) && !p->placed) {
    rc = move_to_kernel(fd, p);
    pthread_mutex_unlock(&big_lock);
    return rc ? fail(-rc) : real_connect(fd, sa, len);
  }
  p->placed = true;
  rc = ustcp_connect(stack, p->ufd, &a);
  after_op(p);
  if (rc == -EINPROGRESS && !p->nonblock) {
    /* Blocking connect(2): wait for the outcome (SO_SNDTIMEO bounds it). */
    struct timespec dl = deadline_in(p->sndtimeo_us);
    for (;;) {
      int ev = ustcp_sock_events(stack, p->ufd);
      if (ev & (USTCP_POLLOUT | USTCP_POLLERR | USTCP_POLLHUP)) {
        rc = ustcp_connect(stack, p->ufd, &a);
        if (rc == -EISCONN) rc = 0;
        break;
      }
      if (wait_ready(p->sndtimeo_us, &dl) < 0) { rc = -EINPROGRESS; break; }
    }
    after_op(p);
  }
  pthread_mutex_unlock(&big_lock);
  return rc ? fail(-rc) : 0;
}

/* ---- data ---- */
/* Receives into iov (lock held); honours the program's blocking mode, timeouts,
 * MSG_PEEK, MSG_DONTWAIT and MSG_WAITALL. */
static ssize_t do_recv(struct psock *p, const struct iovec *iov, int iovcnt, int flags)
{
  size_t total = 0;
  for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
  bool dontwait = p->nonblock || (flags & MSG_DONTWAIT);
  struct timespec dl = deadline_in(p->rcvtimeo_us);
  size_t got = 0;
  ssize_t rc = 0;
  int i = 0;
  size_t off = 0;
  while (i < iovcnt) {
    if (iov[i].iov_len == off) { i++; off = 0; continue; }
    rc = ustcp_recv(stack, p->ufd, (char *)iov[i].iov_base + off, iov[i].iov_len - off,
                    (flags & MSG_PEEK) ? USTCP_MSG_PEEK : 0);
    if (rc > 0) {
      got += (size_t)rc;
      off += (size_t)rc;
      if (flags & MSG_PEEK) break;
      continue;
    }
    if (rc == 0) break;                                 /* end of stream */
    if (rc != -EAGAIN) break;
    if (got && !(flags & MSG_WAITALL)) break;
    if (dontwait) break;
    if (wait_ready(p->rcvtimeo_us, &dl) < 0) break;
  }
  after_op(p);
  if (got) return (ssize_t)got;
  if (total == 0) return 0;
  return rc;
}

static ssize_t do_send(struct psock *p, const struct iovec *iov, int iovcnt, int flags)
{
  bool dontwait = p->nonblock || (flags & MSG_DONTWAIT);
  struct timespec dl = deadline_in(p->sndtimeo_us);
  size_t sent = 0;
  ssize_t rc = 0;
  int i = 0;
  size_t off = 0;
  int last = iovcnt - 1;   /* MSG_EOR goes with the last bytes of the call */
  while (last > 0 && iov[last].iov_len == 0) last--;
  while (i < iovcnt) {
    if (iov[i].iov_len == off) { i++; off = 0; continue; }
    int uflags = (flags & MSG_EOR) && i == last ? USTCP_MSG_EOR : 0;
    /* MSG_MORE holds the call's partial segment; the pieces before the last
     * non-empty iovec are one call's data in Linux, so they are "more" too. */
    bool more = (flags & MSG_MORE) != 0;
    for (int k = i + 1; k < iovcnt && !more; k++) more = iov[k].iov_len > 0;
    if (more) uflags |= USTCP_MSG_MORE;
    rc = ustcp_send(stack, p->ufd, (const char *)iov[i].iov_base + off, iov[i].iov_len - off, uflags);
    if (rc > 0) {
      sent += (size_t)rc;
      off += (size_t)rc;
      continue;
    }
    if (rc != -EAGAIN) break;
    if (dontwait) break;
    /* The round may itself take in the ACKs that make room (and broadcast to
     * nobody): look again before sleeping. */
    after_op(p);
    if (ustcp_sock_events(stack, p->ufd) & (USTCP_POLLOUT | USTCP_POLLERR | USTCP_POLLHUP))
      continue;
    if (wait_ready(p->sndtimeo_us, &dl) < 0) break;
  }
  after_op(p);
  if (sent) return (ssize_t)sent;
  if (rc == -EPIPE && !(flags & MSG_NOSIGNAL)) raise(SIGPIPE);   /* as send(2) */
  return rc;
}

static ssize_t recv_locked(struct psock *p, int fd, const struct iovec *iov, int n, int flags)
{
  if (in_child) return child_refuse(fd);
  pthread_mutex_lock(&big_lock);
  ssize_t rc = do_recv(p, iov, n, flags);
  pthread_mutex_unlock(&big_lock);
  return rc < 0 ? fail((int)-rc) : rc;
}

static ssize_t send_locked(struct psock *p, int fd, const struct iovec *iov, int n, int flags)
{
  if (in_child) return child_refuse(fd);
  pthread_mutex_lock(&big_lock);
  ssize_t rc = do_send(p, iov, n, flags);
  pthread_mutex_unlock(&big_lock);
  return rc < 0 ? fail((int)-rc) : rc;
}

EXPORT ssize_t read(int fd, void *buf, size_t n)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_read(fd, buf, n);
  struct iovec v = {buf, n};
  return recv_locked(p, fd, &v, 1, 0);
}

EXPORT ssize_t __read_chk(int fd, void *buf, size_t n, size_t buflen)
{
  if (n > buflen) abort();          /* as glibc's fortify check */
  return read(fd, buf, n);
}

EXPORT ssize_t recv(int fd, void *buf, size_t n, int flags)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_recv(fd, buf, n, flags);
  struct iovec v = {buf, n};
  return recv_locked(p, fd, &v, 1, flags);
}

EXPORT ssize_t __recv_chk(int fd, void *buf, size_t n, size_t buflen, int flags)
{
  if (n > buflen) abort();
  return recv(fd, buf, n, flags);
}

EXPORT ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *sa,
                        socklen_t *len)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_recvfrom(fd, buf, n, flags, sa, len);
  struct iovec v = {buf, n};
  ssize_t rc = recv_locked(p, fd, &v, 1, flags);
  if (rc >= 0 && sa && len) {
    pthread_mutex_lock(&big_lock);
    struct ustcp_addr a = {0, 0};
    ustcp_getpeername(stack, p->ufd, &a);
    pthread_mutex_unlock(&big_lock);
    from_uaddr(p, &a, sa, len);
  }
  return rc;
}

EXPORT ssize_t __recvfrom_chk(int fd, void *buf, size_t n, size_t buflen, int flags,
                              struct sockaddr *sa, socklen_t *len)
{
  if (n > buflen) abort();
  return recvfrom(fd, buf, n, flags, sa, len);
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_readv(fd, iov, n);
  return recv_locked(p, fd, iov, n, 0);
}

EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int flags)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_recvmsg(fd, m, flags);
  size_t room = m->msg_control ? m->msg_controllen : 0;
  m->msg_controllen = 0;            /* ancillary data: TCP_CM_INQ only */
  m->msg_flags = 0;
  if (m->msg_name) m->msg_namelen = 0;
  ssize_t rc = recv_locked(p, fd, m->msg_iov, (int)m->msg_iovlen, flags);
  if (rc >= 0) {
    /* TCP_INQ: the control message Linux's tcp_recvmsg attaches to every
     * receive that did not fail (tcp_inq_hint after the read); MSG_CTRUNC
     * when there is no room for it (put_cmsg). */
    int on = 0, inq = -1;
    size_t n = sizeof on;
    pthread_mutex_lock(&big_lock);
    if (ustcp_getsockopt(stack, p->ufd, IPPROTO_TCP, TCP_INQ, &on, &n) == 0 && on)
      inq = ustcp_inq(stack, p->ufd);
    pthread_mutex_unlock(&big_lock);
    if (inq >= 0 && (!m->msg_control || room < CMSG_LEN(sizeof(int)))) {
      m->msg_flags |= MSG_CTRUNC;
    } else if (inq >= 0) {
      struct cmsghdr *c = (struct cmsghdr *)m->msg_control;
      c->cmsg_level = SOL_TCP;
      c->cmsg_type = TCP_CM_INQ;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &inq, sizeof inq);
      m->msg_controllen = room < CMSG_SPACE(sizeof(int)) ? CMSG_LEN(sizeof(int))
                                                          : CMSG_SPACE(sizeof(int));
    }
  }
  return rc;
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_write(fd, buf, n);
  struct iovec v = {(void *)buf, n};
  return send_locked(p, fd, &v, 1, 0);
}

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_send(fd, buf, n, flags);
  struct iovec v = {(void *)buf, n};
  return send_locked(p, fd, &v, 1, flags);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *sa,
                      socklen_t len)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_sendto(fd, buf, n, flags, sa, len);
  if (sa) return fail(EISCONN);     /* TCP with an address (no TCP Fast Open here) */
  struct iovec v = {(void *)buf, n};
  return send_locked(p, fd, &v, 1, flags);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_writev(fd, iov, n);
  return send_locked(p, fd, iov, n, 0);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_sendmsg(fd, m, flags);
  if (m->msg_controllen) {
    say("fd %d: sendmsg with ancillary data is not supported on ustcp sockets", fd);
    return fail(EOPNOTSUPP);
  }
  return send_locked(p, fd, m->msg_iov, (int)m->msg_iovlen, flags);
}

/* sendfile(2) to a ustcp socket from a file: read with pread, send. */
EXPORT ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count)
{
  NEED_REAL();
  struct psock *p = lookup(out_fd);
  if (!p) {
    if (lookup(in_fd)) {
      say("sendfile from a ustcp socket is not supported");
      return fail(EINVAL);
    }
    return real_sendfile(out_fd, in_fd, offset, count);
  }
  static __thread char chunk[65536];
  off_t pos = offset ? *offset : lseek(in_fd, 0, SEEK_CUR);
  if (pos < 0) return -1;
  size_t done = 0;
  while (done < count) {
    size_t want = count - done < sizeof chunk ? count - done : sizeof chunk;
    ssize_t r = pread(in_fd, chunk, want, pos + (off_t)done);
    if (r < 0) { if (!done) return -1; break; }
    if (r == 0) break;
    struct iovec v = {chunk, (size_t)r};
    ssize_t s = send_locked(p, out_fd, &v, 1, 0);
    if (s < 0) { if (!done) return -1; break; }
    done += (size_t)s;
    if (s < r) break;                /* non-blocking and full: report what went */
  }
  if (offset) *offset = pos + (off_t)done;
  else lseek(in_fd, pos + (off_t)done, SEEK_SET);
  return (ssize_t)done;
}

EXPORT ssize_t sendfile64(int out_fd, int in_fd, off_t *offset, size_t count)
{
  return sendfile(out_fd, in_fd, offset, count);
}

EXPORT int shutdown(int fd, int how)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_shutdown(fd, how);
  if (in_child) return child_refuse(fd);
  pthread_mutex_lock(&big_lock);
  int rc = ustcp_shutdown(stack, p->ufd, how);
  after_op(p);
  pthread_mutex_unlock(&big_lock);
  return rc ? fail(-rc) : 0;
}

/* ---- descriptors ---- */
/* Forgets fd (the kernel descriptor is closed by the caller). Lock held. */
static void forget(int fd)
{
  struct psock *p = lookup(fd);
  if (!p) return;
  atomic_store_explicit(&fd_table[fd], NULL, memory_order_release);
  psock_release(p);
}

EXPORT int close(int fd)
{
  NEED_REAL();
  if (!lookup(fd)) return real_close(fd);
  pthread_mutex_lock(&big_lock);
  forget(fd);
  int rc = real_close(fd);
  pthread_mutex_unlock(&big_lock);
  return rc;
}

/* A new program descriptor nfd for the same socket as fd (lock held). */
static void adopt(int fd, int nfd)
{
  struct psock *p = lookup(fd);
  if (!p || nfd < 0 || nfd >= FD_MAX || nfd == fd) return;
  p->refs++;
  atomic_store_explicit(&fd_table[nfd], p, memory_order_release);
}

EXPORT int dup(int fd)
{
  NEED_REAL();
  if (!lookup(fd)) return real_dup(fd);
  pthread_mutex_lock(&big_lock);
  int nfd = real_dup(fd);
  adopt(fd, nfd);
  pthread_mutex_unlock(&big_lock);
  return nfd;
}

EXPORT int dup3(int fd, int nfd, int flags)
{
  NEED_REAL();
  if (!lookup(fd) && !lookup(nfd)) return real_dup3(fd, nfd, flags);
  pthread_mutex_lock(&big_lock);
  int rc = real_dup3(fd, nfd, flags);
  if (rc >= 0) {
    forget(nfd);                    /* dup3 closed what nfd named */
    adopt(fd, nfd);
  }
  pthread_mutex_unlock(&big_lock);
  return rc;
}

EXPORT int dup2(int fd, int nfd)
{
  NEED_REAL();
  if (fd == nfd) return real_dup2(fd, nfd);
  if (!lookup(fd) && !lookup(nfd)) return real_dup2(fd, nfd);
  return dup3(fd, nfd, 0);
}

static int fcntl_ustcp(int fd, struct psock *p, int cmd, long arg)
{
  switch (cmd) {
  case F_GETFL: {
    int fl = real_fcntl(fd, F_GETFL);
    if (fl < 0) return fl;
    return (fl & ~O_NONBLOCK) | (p->nonblock ? O_NONBLOCK : 0);
  }
  case F_SETFL:
    pthread_mutex_lock(&big_lock);
    p->nonblock = arg & O_NONBLOCK;
    pthread_mutex_unlock(&big_lock);
    return 0;                       /* the real file stays O_NONBLOCK */
  case F_DUPFD: case F_DUPFD_CLOEXEC: {
    pthread_mutex_lock(&big_lock);
    int nfd = real_fcntl(fd, cmd, (int)arg);
    adopt(fd, nfd);
    pthread_mutex_unlock(&big_lock);
    return nfd;
  }
  case F_GETFD: case F_SETFD:
    return real_fcntl(fd, cmd, (int)arg);
  default:
    say("fd %d: fcntl command %d is not supported on ustcp sockets", fd, cmd);
    return fail(EINVAL);
  }
}

EXPORT int fcntl(int fd, int cmd, ...)
{
  NEED_REAL();
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);     /* every command we pass on takes an int or pointer */
  va_end(ap);
  struct psock *p = lookup(fd);
  if (!p) return real_fcntl(fd, cmd, arg);
  return fcntl_ustcp(fd, p, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);
  va_end(ap);
  return fcntl(fd, cmd, arg);
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
  NEED_REAL();
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  struct psock *p = lookup(fd);
  if (!p) return real_ioctl(fd, req, arg);
  if (in_child) return child_refuse(fd);
  int rc = 0;
  pthread_mutex_lock(&big_lock);
  if (req == FIONBIO) {
    p->nonblock = *(int *)arg != 0;
  } else if (req == FIONREAD) {
    struct ustcp_tcp_info ti;
    rc = ustcp_get_info(stack, p->ufd, &ti);
    if (rc == 0) *(int *)arg = (int)ti.rcv_buf_used;
  } else {
    say("fd %d: ioctl 0x%lx is not supported on ustcp sockets", fd, req);
    rc = -ENOTTY;
  }
  pthread_mutex_unlock(&big_lock);
  return rc ? fail(-rc) : 0;
}

/* ---- options ---- */
EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_setsockopt(fd, level, name, val, len);
  if (in_child) return child_refuse(fd);
  int rc = 0;
  pthread_mutex_lock(&big_lock);
  if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
    if (len < sizeof(struct timeval)) rc = -EINVAL;
    else {
      const struct timeval *tv = val;
      uint64_t us = (uint64_t)tv->tv_sec * 1000000u + (uint64_t)tv->tv_usec;
      if (name == SO_RCVTIMEO) p->rcvtimeo_us = us; else p->sndtimeo_us = us;
    }
  } else if (level == SOL_SOCKET && name == SO_REUSEPORT) {
    rc = 0;                         /* one stack per process: nothing to balance */
  } else {
    rc = ustcp_setsockopt(stack, p->ufd, level, name, val, len);
    if (rc == 0 && !p->placed && len >= sizeof(int) && p->nopts < 8 && name != SO_LINGER) {
      p->opts[p->nopts].level = level;
      p->opts[p->nopts].name = name;
      memcpy(&p->opts[p->nopts].val, val, sizeof(int));
      p->nopts++;
    }
    /* IPv6 options on an IPv4 socket fail on Linux as well: no news there. */
    if ((rc == -ENOPROTOOPT || rc == -EOPNOTSUPP) && level != IPPROTO_IPV6)
      say("fd %d: socket option %d/%d is not supported on ustcp sockets", fd, level, name);
  }
  after_op(p);
  pthread_mutex_unlock(&big_lock);
  return rc ? fail(-rc) : 0;
}

EXPORT int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_getsockopt(fd, level, name, val, len);
  if (in_child) return child_refuse(fd);
  if (!val || !len) return fail(EFAULT);
  int rc = 0, v = -1;
  pthread_mutex_lock(&big_lock);
  if (level == SOL_SOCKET && name == SO_TYPE) v = SOCK_STREAM;
  else if (level == SOL_SOCKET && name == SO_DOMAIN) v = p->family;
  else if (level == SOL_SOCKET && name == SO_PROTOCOL) v = IPPROTO_TCP;
  else if (level == SOL_SOCKET && name == SO_ACCEPTCONN) v = p->listening;
  else if (level == IPPROTO_TCP && name == TCP_INFO) {
    /* The program expects the kernel's struct tcp_info, not ustcp's own
     * option 11: Linux copies min(len, its size) and reports that length. */
    struct ustcp_linux_tcp_info ti;
    rc = ustcp_get_linux_tcp_info(stack, p->ufd, &ti);
    if (rc == 0) {
      socklen_t n = *len < sizeof ti ? *len : (socklen_t)sizeof ti;
      memcpy(val, &ti, n);
      *len = n;
    }
  } else {
    size_t l = *len;
    rc = ustcp_getsockopt(stack, p->ufd, level, name, val, &l);
    if (rc == 0) *len = (socklen_t)l;
    if (rc == -ENOPROTOOPT)
      say("fd %d: socket option %d/%d is not supported on ustcp sockets", fd, level, name);
    after_op(p);
  }
  pthread_mutex_unlock(&big_lock);
  if (v >= 0) {
    if (*len < sizeof(int)) return fail(EINVAL);
    memcpy(val, &v, sizeof v);
    *len = sizeof v;
  }
  return rc ? fail(-rc) : 0;
}

EXPORT int getsockname(int fd, struct sockaddr *sa, socklen_t *len)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_getsockname(fd, sa, len);
  if (in_child) return child_refuse(fd);
  struct ustcp_addr a = {0, 0};
  pthread_mutex_lock(&big_lock);
  int rc = ustcp_getsockname(stack, p->ufd, &a);
  pthread_mutex_unlock(&big_lock);
  if (rc) return fail(-rc);
  from_uaddr(p, &a, sa, len);
  return 0;
}

EXPORT int getpeername(int fd, struct sockaddr *sa, socklen_t *len)
{
  NEED_REAL();
  struct psock *p = lookup(fd);
  if (!p) return real_getpeername(fd, sa, len);
  if (in_child) return child_refuse(fd);
  struct ustcp_addr a = {0, 0};
  pthread_mutex_lock(&big_lock);
  int rc = ustcp_getpeername(stack, p->ufd, &a);
  pthread_mutex_unlock(&big_lock);
  if (rc) return fail(-rc);
  from_uaddr(p, &a, sa, len);
  return 0;
}
