/* libustcp_packetdrill.so: drives libustcp from Google's packetdrill (its
 * "shared object" mode, --so_filename). Build and use: tools/packetdrill/README.md.
 *
 * packetdrill loads this object and calls packetdrill_interface_init(), which
 * fills a table of function pointers (socket calls, netdev_send/receive, usleep,
 * gettimeofday, poll, epoll). The table is an ABI: the declaration below is our
 * own, written to match the field order and types of packetdrill's
 * `struct packetdrill_interface` (gtests/net/packetdrill/packetdrill.h).
 *
 * Design (the traps behind each choice are in the README):
 *  - One stack, one mutex. packetdrill calls in from two threads: its main thread
 *    (packets, time, non-blocking calls) and a system-call thread (calls the script
 *    gives an end time, "+0...0.2 accept(...)"). Every entry takes `g.mu`.
 *  - Virtual time. gettimeofday() returns the stack's clock, which moves only
 *    when packetdrill asks: +1 us a call (packetdrill spins on it), to now + n in
 *    usleep(n), and to the next timer in netdev_receive() when nothing is queued
 *    (packetdrill does not sleep before an expected outbound packet). Every time
 *    step fires the stack's timers in order, so a 60 s TIME_WAIT costs nothing.
 *  - Blocking calls wait on a condition variable (packetdrill watches for the
 *    thread to be in state S in /proc, so no spinning). Before the main thread
 *    moves the clock it lets a woken call finish and read the clock, so the call's
 *    end time is the time it was woken, not later.
 *  - Descriptors: every stack socket is backed by a real placeholder descriptor
 *    (/dev/null), whose number is what packetdrill sees: packetdrill closes the
 *    ones still open with libc close() at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <dlfcn.h>

#include "ustcp.h"

/* ---- the ABI packetdrill expects (field order of its packetdrill.h) ---- */
struct pd_ifc {
  void *userdata;
  void (*free_fn)(void *ud);
  int (*socket_fn)(void *ud, int domain, int type, int protocol);
  int (*bind_fn)(void *ud, int fd, const struct sockaddr *a, socklen_t alen);
  int (*listen_fn)(void *ud, int fd, int backlog);
  int (*accept_fn)(void *ud, int fd, struct sockaddr *a, socklen_t *alen);
  int (*connect_fn)(void *ud, int fd, const struct sockaddr *a, socklen_t alen);
  ssize_t (*read_fn)(void *ud, int fd, void *buf, size_t n);
  ssize_t (*readv_fn)(void *ud, int fd, const struct iovec *iov, int cnt);
  ssize_t (*recv_fn)(void *ud, int fd, void *buf, size_t n, int flags);
  ssize_t (*recvfrom_fn)(void *ud, int fd, void *buf, size_t n, int flags,
                         struct sockaddr *a, socklen_t *alen);
  ssize_t (*recvmsg_fn)(void *ud, int fd, struct msghdr *m, int flags);
  ssize_t (*write_fn)(void *ud, int fd, const void *buf, size_t n);
  ssize_t (*writev_fn)(void *ud, int fd, const struct iovec *iov, int cnt);
  ssize_t (*send_fn)(void *ud, int fd, const void *buf, size_t n, int flags);
  ssize_t (*sendto_fn)(void *ud, int fd, const void *buf, size_t n, int flags,
                       const struct sockaddr *a, socklen_t alen);
  ssize_t (*sendmsg_fn)(void *ud, int fd, const struct msghdr *m, int flags);
  int (*fcntl_fn)(void *ud, int fd, int cmd, ...);
  int (*ioctl_fn)(void *ud, int fd, unsigned long req, ...);
  int (*close_fn)(void *ud, int fd);
  int (*shutdown_fn)(void *ud, int fd, int how);
  int (*getsockopt_fn)(void *ud, int fd, int level, int name, void *val, socklen_t *len);
  int (*setsockopt_fn)(void *ud, int fd, int level, int name, const void *val,
                       socklen_t len);
  int (*poll_fn)(void *ud, struct pollfd *fds, nfds_t n, int timeout_ms);
  int (*netdev_send_fn)(void *ud, const void *buf, size_t n);
  int (*netdev_receive_fn)(void *ud, void *buf, size_t *n, long long *time_us);
  int (*usleep_fn)(void *ud, useconds_t us);
  int (*gettimeofday_fn)(void *ud, struct timeval *tv, struct timezone *tz);
  int (*epoll_create_fn)(void *ud, int size);
  int (*epoll_ctl_fn)(void *ud, int epfd, int op, int fd, struct epoll_event *ev);
  int (*epoll_wait_fn)(void *ud, int epfd, struct epoll_event *evs, int max, int timeout_ms);
  int (*pipe_fn)(void *ud, int fds[2]);
  int (*splice_fn)(void *ud, int in, loff_t *off_in, int out, loff_t *off_out, size_t len,
                   unsigned int flags);
};
void packetdrill_interface_init(const char *flags, struct pd_ifc *ifc);

/* ---- state ---- */
#define MAX_FDS 4096
#define MAX_EPOLL_ITEMS 64
/* netdev_receive jumps at most this far ahead to a timer; past it (or with no
 * timer) the expected packet will never come and the run stops. */
#define MAX_JUMP_US (8000ull * USTCP_SEC)
/* How long (real time) the main thread waits for a woken blocking call. */
#define SETTLE_REAL_MS 1000

enum slot_kind { SLOT_FREE = 0, SLOT_SOCK, SLOT_EPOLL };

struct epoll_item {
  int fd;                 /* placeholder fd watched */
  struct epoll_event ev;
  bool disabled;          /* EPOLLONESHOT fired */
  bool woken;             /* EPOLLET: a wakeup since the last report (Linux reports
                             an edge on every wakeup, e.g. each arrival of data,
                             even when the socket was readable already) */
};

struct slot {
  enum slot_kind kind;
  int ufd;                /* the stack's descriptor */
  bool nonblock;
  uint64_t rcvtimeo_us, sndtimeo_us;   /* SO_RCVTIMEO/SO_SNDTIMEO; 0 = forever */
  struct epoll_item *items;            /* SLOT_EPOLL */
  int nitems;
};

struct outpkt {
  struct outpkt *next;
  uint64_t t_us;
  size_t len;
  uint8_t data[];
};

/* A blocking call in progress on packetdrill's system-call thread. */
struct waiter {
  bool active;
  bool (*ready)(void *arg);
  void *arg;
  uint64_t deadline;      /* virtual; USTCP_NO_DEADLINE = none */
};

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct ustcp_stack *stack;
  uint64_t now;           /* virtual clock, microseconds since the Epoch */
  uint64_t polled;        /* time of the last ustcp_poll/ustcp_input */
  pthread_t main_thread;
  struct outpkt *q_head, *q_tail;
  struct waiter w;
  int unclocked;          /* woken calls that have not read the clock yet */
  struct slot slots[MAX_FDS];
  uint32_t local_ip;
  bool verbose;
  bool sysctls_read;      /* the namespace's sysctls were applied (first socket()) */
} g = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static __thread bool t_unclocked;   /* this thread returned from a wait */

static void lock(void) { pthread_mutex_lock(&g.mu); }
static void unlock(void) { pthread_mutex_unlock(&g.mu); }
static bool on_main(void) { return pthread_equal(pthread_self(), g.main_thread); }

static int fail(int neg_errno)
{
  errno = -neg_errno;
  return -1;
}

/* ---- the stack's side ---- */
static void on_output(void *ctx, const uint8_t *pkt, size_t len)
{
  (void)ctx;
  struct outpkt *p = malloc(sizeof *p + len);
  if (!p) return;                       /* a lost packet: the script will say so */
  p->next = NULL;
  p->t_us = g.now;
  p->len = len;
  memcpy(p->data, pkt, len);
  if (g.q_tail) g.q_tail->next = p; else g.q_head = p;
  g.q_tail = p;
}

/* The stack's readiness callback: a wakeup for every epoll item watching ufd. */
static void on_ready(void *ctx, int ufd, unsigned events)
{
  (void)ctx;
  (void)events;
  for (int i = 0; i < MAX_FDS; i++) {
    struct slot *ep = &g.slots[i];
    if (ep->kind != SLOT_EPOLL) continue;
    for (int k = 0; k < ep->nitems; k++) {
      int pfd = ep->items[k].fd;
      if (g.slots[pfd].kind == SLOT_SOCK && g.slots[pfd].ufd == ufd) ep->items[k].woken = true;
    }
  }
}

/* Runs the stack at the current virtual time (timers due fire here). */
static void sync_stack(void)
{
  if (g.polled != g.now) {
    ustcp_poll(g.stack, g.now);
    g.polled = g.now;
    pthread_cond_broadcast(&g.cv);
  }
}

static void real_deadline(struct timespec *ts, long ms)
{
  clock_gettime(CLOCK_REALTIME, ts);
  ts->tv_sec += ms / 1000;
  ts->tv_nsec += (ms % 1000) * 1000000L;
  if (ts->tv_nsec >= 1000000000L) {
    ts->tv_sec++;
    ts->tv_nsec -= 1000000000L;
  }
}

/* Main thread: before the clock moves, a blocking call that can complete now
 * must complete and read the clock at this instant. */
static void settle(void)
{
  if (!on_main()) return;
  struct timespec ts;
  real_deadline(&ts, SETTLE_REAL_MS);
  while ((g.w.active && (g.w.ready(g.w.arg) || g.now >= g.w.deadline)) || g.unclocked > 0) {
    pthread_cond_broadcast(&g.cv);
    if (pthread_cond_timedwait(&g.cv, &g.mu, &ts) == ETIMEDOUT) {
      if (g.verbose) fprintf(stderr, "ustcp_packetdrill: a woken call did not finish\n");
      g.unclocked = 0;
      g.w.active = false;
      break;
    }
  }
}

/* The next instant something happens by itself: a stack timer or the deadline
 * of the blocked call. */
static uint64_t next_event(void)
{
  uint64_t d = ustcp_next_deadline(g.stack);
  if (g.w.active && g.w.deadline < d) d = g.w.deadline;
  return d;
}

/* Moves the clock to t, firing each timer at its own time. */
static void advance_to(uint64_t t)
{
  for (;;) {
    settle();                           /* after it, no waiter deadline is <= now */
    uint64_t d = next_event();
    if (d > t) break;
    if (d > g.now) g.now = d;
    ustcp_poll(g.stack, g.now);
    g.polled = g.now;
    pthread_cond_broadcast(&g.cv);
    if (ustcp_next_deadline(g.stack) <= g.now) g.now++;   /* never loop in place */
  }
  if (t > g.now) g.now = t;
  sync_stack();
  settle();
}

/* Blocks until ready(arg) or the virtual deadline. On packetdrill's system-call
 * thread: a condition-variable wait while the main thread drives time. On the
 * main thread (a call the script did not mark as blocking): time passes through
 * the stack's timers as it would in the kernel. Returns ready(arg). */
static bool wait_until(bool (*ready)(void *), void *arg, uint64_t deadline)
{
  if (t_unclocked) {                    /* woken before, waiting again */
    t_unclocked = false;
    if (g.unclocked > 0) g.unclocked--;
  }
  if (ready(arg)) return true;
  if (on_main()) {
    uint64_t limit = g.now + MAX_JUMP_US;
    if (deadline > limit) deadline = limit;
    while (!ready(arg) && g.now < deadline) {
      uint64_t d = ustcp_next_deadline(g.stack);
      if (d > deadline) d = deadline;
      advance_to(d > g.now ? d : g.now + 1);
    }
    return ready(arg);
  }
  g.w = (struct waiter){.active = true, .ready = ready, .arg = arg, .deadline = deadline};
  bool ok;
  for (;;) {
    ok = ready(arg);
    if (ok || g.now >= deadline) break;
    pthread_cond_wait(&g.cv, &g.mu);
  }
  g.w.active = false;
  g.unclocked++;
  t_unclocked = true;
  pthread_cond_broadcast(&g.cv);
  return ok;
}

/* ---- descriptors ---- */
static struct slot *slot_of(int pfd, enum slot_kind kind)
{
  if (pfd < 0 || pfd >= MAX_FDS || g.slots[pfd].kind != kind) return NULL;
  return &g.slots[pfd];
}

static int new_slot(enum slot_kind kind, int ufd)
{
  int pfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (pfd < 0) return -errno;
  if (pfd >= MAX_FDS) {
    close(pfd);
    return -EMFILE;
  }
  g.slots[pfd] = (struct slot){.kind = kind, .ufd = ufd};
  return pfd;
}

static void free_slot(int pfd)
{
  free(g.slots[pfd].items);
  g.slots[pfd] = (struct slot){0};
  close(pfd);
}

static int to_uaddr(const struct sockaddr *a, socklen_t alen, struct ustcp_addr *u)
{
  if (!a || alen < sizeof(struct sockaddr_in)) return -EINVAL;
  if (a->sa_family != AF_INET) return -EAFNOSUPPORT;
  const struct sockaddr_in *in = (const struct sockaddr_in *)a;
  memset(u, 0, sizeof *u);          /* family 0: IPv4 */
  u->ip = ntohl(in->sin_addr.s_addr);
  u->port = ntohs(in->sin_port);
  return 0;
}

static void from_uaddr(const struct ustcp_addr *u, struct sockaddr *a, socklen_t *alen)
{
  if (!a || !alen) return;
  struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(u->port),
                           .sin_addr.s_addr = htonl(u->ip)};
  socklen_t n = *alen < sizeof in ? *alen : (socklen_t)sizeof in;
  memcpy(a, &in, n);
  *alen = sizeof in;
}

static uint64_t deadline_after(uint64_t timeo_us)
{
  return timeo_us ? g.now + timeo_us : USTCP_NO_DEADLINE;
}

/* ---- socket calls ---- */
/* The stack's configuration: what packetdrill's gtests/net/common/defaults.sh
 * sets for the kernel (the scripts' expectations follow from it): tcp_rmem
 * "4096 540000 15 MB" (so wscale 8), tcp_wmem "4096 256 KB 4 MB",
 * tcp_syn(ack)_retries 5. */
static void base_config(struct ustcp_config *cfg)
{
  ustcp_config_default(cfg);
  cfg->rmem_default = 540000;
  cfg->rmem_max = 15u * 1024 * 1024;
  cfg->wmem_default = 256u * 1024;
  cfg->wmem_max = 4194304;
  cfg->syn_retries = 5;
  cfg->synack_retries = 5;
}

static bool read_sysctl(const char *name, unsigned long *v)
{
  char path[128];
  snprintf(path, sizeof path, "/proc/sys/net/ipv4/%s", name);
  FILE *f = fopen(path, "r");
  if (!f) return false;
  bool ok = fscanf(f, "%lu", v) == 1;
  fclose(f);
  return ok;
}

/* Scripts configure the kernel with sysctls, before their first socket():
 * `../common/set_sysctls.py /proc/sys/net/ipv4/tcp_timestamps=0`, or
 * `sysctl -q net.ipv4.tcp_notsent_lowat=4000`. Each script runs in a network
 * namespace of its own (pdrun.sh), whose per-namespace TCP sysctls those
 * commands really set; at the first socket() the adapter reads the ones that
 * have a ustcp_config field of the same meaning and, if any differs from the
 * stack's, makes the stack afresh with them (no socket exists yet, and the
 * clock is the adapter's). Namespace defaults equal ustcp's, so a script that
 * sets nothing runs on the stack it started with. */
static void apply_namespace_sysctls(void)
{
  g.sysctls_read = true;
  struct ustcp_config cfg = *ustcp_get_config(g.stack);
  unsigned long v;
  if (read_sysctl("tcp_timestamps", &v)) cfg.timestamps = v != 0;
  if (read_sysctl("tcp_notsent_lowat", &v)) cfg.notsent_lowat = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
  if (read_sysctl("tcp_min_tso_segs", &v) && v >= 1 && v <= 255) cfg.min_tso_segs = (uint32_t)v;
  if (read_sysctl("tcp_slow_start_after_idle", &v)) cfg.slow_start_after_idle = v != 0;
  /* ECN (ecn/: `sysctl -q net.ipv4.tcp_ecn=1`); values above 2 (AccECN in
   * newer kernels) count as 2 */
  if (read_sysctl("tcp_ecn", &v)) cfg.tcp_ecn = v > 2 ? 2 : (uint32_t)v;
  if (memcmp(&cfg, ustcp_get_config(g.stack), sizeof cfg) == 0) return;
  struct ustcp_stack *fresh = ustcp_stack_new(&cfg, g.local_ip, 1, on_output, NULL);
  if (!fresh) {
    fprintf(stderr, "ustcp_packetdrill: cannot make the stack with the namespace's sysctls\n");
    return;
  }
  if (g.verbose) fprintf(stderr, "ustcp_packetdrill: stack made afresh with the namespace's sysctls\n");
  ustcp_stack_free(g.stack);
  g.stack = fresh;
  ustcp_set_ready_cb(g.stack, on_ready, NULL);
  g.polled = 0;
  sync_stack();
}

static int pd_socket(void *ud, int domain, int type, int protocol)
{
  (void)ud;
  if (domain != AF_INET) return fail(-EAFNOSUPPORT);
  bool nonblock = type & SOCK_NONBLOCK;
  type &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (type != SOCK_STREAM || (protocol != 0 && protocol != IPPROTO_TCP))
    return fail(-EPROTONOSUPPORT);
  lock();
  if (!g.sysctls_read) apply_namespace_sysctls();
  sync_stack();
  int ufd = ustcp_socket(g.stack);
  int pfd = ufd;
  if (ufd >= 0) {
    pfd = new_slot(SLOT_SOCK, ufd);
    if (pfd < 0) ustcp_close(g.stack, ufd);
    else g.slots[pfd].nonblock = nonblock;
  }
  unlock();
  return pfd < 0 ? fail(pfd) : pfd;
}

static int pd_bind(void *ud, int fd, const struct sockaddr *a, socklen_t alen)
{
  (void)ud;
  struct ustcp_addr u;
  int r = to_uaddr(a, alen, &u);
  if (r < 0) return fail(r);
  lock();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  r = sl ? ustcp_bind(g.stack, sl->ufd, &u) : -EBADF;
  unlock();
  return r < 0 ? fail(r) : 0;
}

static int pd_listen(void *ud, int fd, int backlog)
{
  (void)ud;
  lock();
  sync_stack();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  int r = sl ? ustcp_listen(g.stack, sl->ufd, backlog) : -EBADF;
  pthread_cond_broadcast(&g.cv);
  unlock();
  return r < 0 ? fail(r) : 0;
}

/* The ready functions latch their answer (done): the main thread may evaluate
 * them too (settle), and accept or an edge-triggered epoll must happen once. */
struct ready_arg {
  bool done;
  int ufd;
  unsigned mask;          /* readiness bits that end the wait */
  int result;             /* accept: the new fd or -EAGAIN */
  struct ustcp_addr peer;
};

static bool ready_events(void *p)
{
  struct ready_arg *a = p;
  int ev = ustcp_sock_events(g.stack, a->ufd);
  return ev < 0 || (ev & (int)(a->mask | USTCP_POLLERR | USTCP_POLLHUP));
}

static bool ready_accept(void *p)
{
  struct ready_arg *a = p;
  if (a->done) return true;
  a->result = ustcp_accept(g.stack, a->ufd, &a->peer);
  a->done = a->result != -EAGAIN;
  return a->done;
}

static int pd_accept(void *ud, int fd, struct sockaddr *addr, socklen_t *alen)
{
  (void)ud;
  lock();
  sync_stack();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  int r = -EBADF;
  if (sl) {
    struct ready_arg a = {.ufd = sl->ufd};
    if (sl->nonblock) ready_accept(&a);
    else wait_until(ready_accept, &a, deadline_after(sl->rcvtimeo_us));
    r = a.result;
    if (r >= 0) {
      int ufd = r;
      r = new_slot(SLOT_SOCK, ufd);
      if (r < 0) ustcp_close(g.stack, ufd);
      else from_uaddr(&a.peer, addr, alen);   /* packetdrill needs the family */
    }
  }
  pthread_cond_broadcast(&g.cv);
  unlock();
  return r < 0 ? fail(r) : r;
}

static int pd_connect(void *ud, int fd, const struct sockaddr *addr, socklen_t alen)
{
  (void)ud;
  struct ustcp_addr u;
  int r = to_uaddr(addr, alen, &u);
  if (r < 0) return fail(r);
  lock();
  sync_stack();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  r = sl ? ustcp_connect(g.stack, sl->ufd, &u) : -EBADF;
  if (r == -EINPROGRESS && !sl->nonblock) {
    struct ready_arg a = {.ufd = sl->ufd, .mask = USTCP_POLLOUT};
    if (wait_until(ready_events, &a, deadline_after(sl->sndtimeo_us)))
      r = ustcp_connect(g.stack, sl->ufd, &u);   /* 0, or the error */
  }
  pthread_cond_broadcast(&g.cv);
  unlock();
  return r < 0 ? fail(r) : 0;
}

#define PD_MSG_OOB 0x1
#define PD_MSG_PEEK 0x2
#define PD_MSG_DONTWAIT 0x40
#define PD_MSG_EOR 0x80
#define PD_MSG_WAITALL 0x100
#define PD_MSG_MORE 0x8000

static ssize_t do_recv(int fd, void *buf, size_t len, int flags)
{
  lock();
  sync_stack();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  ssize_t r = -EBADF;
  if (sl) {
    int uflags = flags & (PD_MSG_OOB | PD_MSG_PEEK);
    r = ustcp_recv(g.stack, sl->ufd, buf, len, uflags);
    if (r == -EAGAIN && !sl->nonblock && !(flags & PD_MSG_DONTWAIT) && len > 0) {
      struct ready_arg a = {.ufd = sl->ufd, .mask = USTCP_POLLIN | USTCP_POLLRDHUP};
      wait_until(ready_events, &a, deadline_after(sl->rcvtimeo_us));
      r = ustcp_recv(g.stack, sl->ufd, buf, len, uflags);
    }
    size_t got = r > 0 ? (size_t)r : 0;
    /* MSG_WAITALL: as Linux's tcp_recvmsg, wait for the rest unless EOF/error. */
    while ((flags & PD_MSG_WAITALL) && !(flags & PD_MSG_PEEK) && r > 0 && got < len) {
      struct ready_arg a = {.ufd = sl->ufd, .mask = USTCP_POLLIN | USTCP_POLLRDHUP};
      if (!wait_until(ready_events, &a, deadline_after(sl->rcvtimeo_us))) break;
      ssize_t n = ustcp_recv(g.stack, sl->ufd, (char *)buf + got, len - got, uflags);
      if (n <= 0) break;
      got += (size_t)n;
    }
    if (got) r = (ssize_t)got;
  }
  pthread_cond_broadcast(&g.cv);
  unlock();
  return r < 0 ? fail((int)r) : r;
}

static ssize_t do_send(int fd, const void *buf, size_t len, int flags)
{
  lock();
  sync_stack();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  ssize_t r = -EBADF;
  if (sl) {
    int uflags = flags & PD_MSG_OOB;
    if (flags & PD_MSG_EOR) uflags |= USTCP_MSG_EOR;
    if (flags & PD_MSG_MORE) uflags |= USTCP_MSG_MORE;
    bool block = !sl->nonblock && !(flags & PD_MSG_DONTWAIT);
    size_t done = 0;
    uint64_t deadline = deadline_after(sl->sndtimeo_us);
    for (;;) {
      r = ustcp_send(g.stack, sl->ufd, (const char *)buf + done, len - done, uflags);
      if (r > 0) done += (size_t)r;
      if (!block || done == len || (r < 0 && r != -EAGAIN)) break;
      /* a blocking send waits until all of it is queued, as Linux's tcp_sendmsg */
      struct ready_arg a = {.ufd = sl->ufd, .mask = USTCP_POLLOUT};
      if (!wait_until(ready_events, &a, deadline)) break;
    }
    if (done) r = (ssize_t)done;
  }
  pthread_cond_broadcast(&g.cv);
  unlock();
  return r < 0 ? fail((int)r) : r;
}

static ssize_t pd_read(void *ud, int fd, void *buf, size_t n)
{
  (void)ud;
  return do_recv(fd, buf, n, 0);
}

static ssize_t pd_recv(void *ud, int fd, void *buf, size_t n, int flags)
{
  (void)ud;
  return do_recv(fd, buf, n, flags);
}

static ssize_t pd_recvfrom(void *ud, int fd, void *buf, size_t n, int flags,
                           struct sockaddr *a, socklen_t *alen)
{
  (void)ud;
  ssize_t r = do_recv(fd, buf, n, flags);
  if (r >= 0 && a && alen) {
    struct ustcp_addr peer = {0};
    lock();
    struct slot *sl = slot_of(fd, SLOT_SOCK);
    if (sl) ustcp_getpeername(g.stack, sl->ufd, &peer);
    unlock();
    from_uaddr(&peer, a, alen);
  }
  return r;
}

static size_t iov_total(const struct iovec *iov, int cnt)
{
  size_t n = 0;
  for (int i = 0; i < cnt; i++) n += iov[i].iov_len;
  return n;
}

static ssize_t recv_iov(int fd, const struct iovec *iov, int cnt, int flags)
{
  if (cnt < 0) return fail(-EINVAL);
  size_t total = iov_total(iov, cnt);
  char *tmp = malloc(total ? total : 1);
  if (!tmp) return fail(-ENOMEM);
  ssize_t r = do_recv(fd, tmp, total, flags);
  int e = errno;
  if (r > 0) {
    size_t off = 0;
    for (int i = 0; i < cnt && off < (size_t)r; i++) {
      size_t k = iov[i].iov_len < (size_t)r - off ? iov[i].iov_len : (size_t)r - off;
      memcpy(iov[i].iov_base, tmp + off, k);
      off += k;
    }
  }
  free(tmp);
  errno = e;
  return r;
}

static ssize_t send_iov(int fd, const struct iovec *iov, int cnt, int flags)
{
  if (cnt < 0) return fail(-EINVAL);
  size_t total = iov_total(iov, cnt);
  char *tmp = malloc(total ? total : 1);
  if (!tmp) return fail(-ENOMEM);
  size_t off = 0;
  for (int i = 0; i < cnt; i++) {
    if (iov[i].iov_len) memcpy(tmp + off, iov[i].iov_base, iov[i].iov_len);
    off += iov[i].iov_len;
  }
  ssize_t r = do_send(fd, tmp, total, flags);
  int e = errno;
  free(tmp);
  errno = e;
  return r;
}

static ssize_t pd_readv(void *ud, int fd, const struct iovec *iov, int cnt)
{
  (void)ud;
  return recv_iov(fd, iov, cnt, 0);
}

/* TCP_INQ: the TCP_CM_INQ control message Linux's tcp_recvmsg attaches to every
 * receive that did not fail (its value, ustcp_inq, taken after the read);
 * MSG_CTRUNC when msg_control has no room for it (put_cmsg). */
static void put_inq_cmsg(int fd, struct msghdr *m, size_t room)
{
  lock();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  int on = 0, inq = -1;
  size_t n = sizeof on;
  if (sl && ustcp_getsockopt(g.stack, sl->ufd, IPPROTO_TCP, USTCP_TCP_INQ, &on, &n) == 0 && on)
    inq = ustcp_inq(g.stack, sl->ufd);
  unlock();
  if (inq < 0) return;
  if (!m->msg_control || room < CMSG_LEN(sizeof(int))) {
    m->msg_flags |= MSG_CTRUNC;
    return;
  }
  struct cmsghdr *c = (struct cmsghdr *)m->msg_control;
  c->cmsg_level = IPPROTO_TCP;      /* SOL_TCP */
  c->cmsg_type = USTCP_TCP_CM_INQ;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &inq, sizeof inq);
  m->msg_controllen = room < CMSG_SPACE(sizeof(int)) ? CMSG_LEN(sizeof(int)) : CMSG_SPACE(sizeof(int));
}

static ssize_t pd_recvmsg(void *ud, int fd, struct msghdr *m, int flags)
{
  (void)ud;
  if (!m) return fail(-EFAULT);
  size_t room = m->msg_control ? m->msg_controllen : 0;
  m->msg_controllen = 0;
  m->msg_flags = 0;
  ssize_t r = recv_iov(fd, m->msg_iov, (int)m->msg_iovlen, flags);
  if (r >= 0) {
    int e = errno;
    put_inq_cmsg(fd, m, room);
    errno = e;
  }
  return r;
}

static ssize_t pd_write(void *ud, int fd, const void *buf, size_t n)
{
  (void)ud;
  return do_send(fd, buf, n, 0);
}

static ssize_t pd_writev(void *ud, int fd, const struct iovec *iov, int cnt)
{
  (void)ud;
  return send_iov(fd, iov, cnt, 0);
}

static ssize_t pd_send(void *ud, int fd, const void *buf, size_t n, int flags)
{
  (void)ud;
  return do_send(fd, buf, n, flags);
}

static ssize_t pd_sendto(void *ud, int fd, const void *buf, size_t n, int flags,
                         const struct sockaddr *a, socklen_t alen)
{
  (void)ud;
  (void)a;
  (void)alen;
  return do_send(fd, buf, n, flags);
}

static ssize_t pd_sendmsg(void *ud, int fd, const struct msghdr *m, int flags)
{
  (void)ud;
  if (!m) return fail(-EFAULT);
  return send_iov(fd, m->msg_iov, (int)m->msg_iovlen, flags);
}

static int pd_fcntl(void *ud, int fd, int cmd, ...)
{
  (void)ud;
  va_list ap;
  va_start(ap, cmd);
  long arg = va_arg(ap, long);
  va_end(ap);
  lock();
  struct slot *sl = (fd >= 0 && fd < MAX_FDS && g.slots[fd].kind) ? &g.slots[fd] : NULL;
  int r;
  if (!sl) r = -EBADF;
  else if (cmd == F_GETFL) r = O_RDWR | (sl->nonblock ? O_NONBLOCK : 0);
  else if (cmd == F_SETFL) { sl->nonblock = (arg & O_NONBLOCK) != 0; r = 0; }
  else if (cmd == F_GETFD) r = FD_CLOEXEC;
  else if (cmd == F_SETFD) r = 0;
  else r = -EINVAL;
  unlock();
  return r < 0 ? fail(r) : r;
}

/* The queue sizes as ss(8) shows them (recv_q, send_q) for one descriptor. */
static int queue_sizes(int ufd, uint32_t *recv_q, uint32_t *send_q)
{
  size_t n = ustcp_sock_table(g.stack, NULL, 0);
  struct ustcp_sock_row *rows = calloc(n ? n : 1, sizeof *rows);
  if (!rows) return -ENOMEM;
  n = ustcp_sock_table(g.stack, rows, n);
  int r = -ENOTCONN;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].fd == ufd) {
      *recv_q = rows[i].recv_q;
      *send_q = rows[i].send_q;
      r = 0;
      break;
    }
  }
  free(rows);
  return r;
}

static int pd_ioctl(void *ud, int fd, unsigned long req, ...)
{
  (void)ud;
  va_list ap;
  va_start(ap, req);
  int *argp = va_arg(ap, int *);
  va_end(ap);
  lock();
  sync_stack();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  int r = 0;
  uint32_t rq = 0, sq = 0;
  if (!sl) r = -EBADF;
  else if (req == FIONREAD || req == TIOCOUTQ) {     /* SIOCINQ, SIOCOUTQ */
    r = queue_sizes(sl->ufd, &rq, &sq);
    if (r == 0 && argp) *argp = (int)(req == FIONREAD ? rq : sq);
  } else if (req == FIONBIO) {
    sl->nonblock = argp && *argp;
  } else r = -ENOTTY;
  unlock();
  return r < 0 ? fail(r) : 0;
}

static int pd_close(void *ud, int fd)
{
  (void)ud;
  lock();
  sync_stack();
  int r = 0;
  if (fd >= 0 && fd < MAX_FDS && g.slots[fd].kind == SLOT_SOCK) {
    r = ustcp_close(g.stack, g.slots[fd].ufd);
    free_slot(fd);
  } else if (fd >= 0 && fd < MAX_FDS && g.slots[fd].kind == SLOT_EPOLL) {
    free_slot(fd);
  } else r = -EBADF;
  pthread_cond_broadcast(&g.cv);
  unlock();
  return r < 0 ? fail(r) : 0;
}

static int pd_shutdown(void *ud, int fd, int how)
{
  (void)ud;
  lock();
  sync_stack();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  int r = sl ? ustcp_shutdown(g.stack, sl->ufd, how) : -EBADF;
  pthread_cond_broadcast(&g.cv);
  unlock();
  return r < 0 ? fail(r) : 0;
}

static uint64_t timeval_us(const void *val, socklen_t len)
{
  struct timeval tv;
  if (len < sizeof tv) return 0;
  memcpy(&tv, val, sizeof tv);
  return (uint64_t)tv.tv_sec * USTCP_SEC + (uint64_t)tv.tv_usec;
}

/* The options whose answer is Linux's layout, not ustcp's: TCP_INFO (Linux's
 * struct tcp_info; ustcp's own option 11 has its own struct), TCP_CC_INFO (reno
 * and cubic have no info: success with length 0, as Linux's tcp_get_info for a
 * module without get_info) and SO_MEMINFO (sk_meminfo's nine counters, from the
 * stack's buffer figures). Returns 1 for any other option. Called locked. */
static int linux_only_sockopt(struct slot *sl, int level, int name, void *val, socklen_t *len)
{
  if (level == IPPROTO_TCP && name == 11 /* TCP_INFO */) {
    struct ustcp_linux_tcp_info ti;
    int r = ustcp_get_linux_tcp_info(g.stack, sl->ufd, &ti);
    if (r < 0) return r;
    /* packetdrill's own struct _tcp_info follows the newest kernels (the
     * AccECN fields after tcpi_total_rto_time) and it asserts the kernel filled
     * all of it; the fields past Linux 6.7's are 0 here, as on a connection
     * without AccECN. */
    socklen_t n = *len < sizeof ti ? *len : (socklen_t)sizeof ti;
    socklen_t total = *len < 512 ? *len : 512;
    memset(val, 0, total);
    memcpy(val, &ti, n);
    *len = total;
    return 0;
  }
  if (level == IPPROTO_TCP && name == 26 /* TCP_CC_INFO */) {
    *len = 0;
    return 0;
  }
  if (level == SOL_SOCKET && name == 55 /* SO_MEMINFO */) {
    struct ustcp_tcp_info ui;
    int r = ustcp_get_info(g.stack, sl->ufd, &ui);
    if (r < 0) return r;
    int rcvbuf = 0, sndbuf = 0;
    size_t bl = sizeof rcvbuf;
    (void)ustcp_getsockopt(g.stack, sl->ufd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, &bl);
    bl = sizeof sndbuf;
    (void)ustcp_getsockopt(g.stack, sl->ufd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &bl);
    /* SK_MEMINFO_RMEM_ALLOC, RCVBUF, WMEM_ALLOC, SNDBUF, FWD_ALLOC,
     * WMEM_QUEUED, OPTMEM, BACKLOG, DROPS */
    uint32_t mi[9] = {ui.rcv_buf_used, (uint32_t)rcvbuf, ui.unacked, (uint32_t)sndbuf, 0,
                      ui.snd_buf_used, 0, 0, 0};
    socklen_t n = *len < sizeof mi ? *len : (socklen_t)sizeof mi;
    memcpy(val, mi, n);
    *len = n;
    return 0;
  }
  return 1;
}

static int pd_getsockopt(void *ud, int fd, int level, int name, void *val, socklen_t *len)
{
  (void)ud;
  if (!len) return fail(-EFAULT);
  lock();
  sync_stack();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  int r;
  if (!sl) r = -EBADF;
  else if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
    /* blocking lives in this adapter, so do the blocking timeouts */
    uint64_t us = name == SO_RCVTIMEO ? sl->rcvtimeo_us : sl->sndtimeo_us;
    struct timeval tv = {.tv_sec = (time_t)(us / USTCP_SEC), .tv_usec = (suseconds_t)(us % USTCP_SEC)};
    socklen_t n = *len < sizeof tv ? *len : (socklen_t)sizeof tv;
    memcpy(val, &tv, n);
    *len = n;
    r = 0;
  } else if (level == SOL_SOCKET && name == SO_TYPE) {
    int v = SOCK_STREAM;
    socklen_t n = *len < sizeof v ? *len : (socklen_t)sizeof v;
    memcpy(val, &v, n);
    *len = n;
    r = 0;
  } else {
    r = linux_only_sockopt(sl, level, name, val, len);
    if (r == 1) {
      size_t n = *len;
      r = ustcp_getsockopt(g.stack, sl->ufd, level, name, val, &n);
      if (r == 0) *len = (socklen_t)n;
    }
  }
  unlock();
  return r < 0 ? fail(r) : 0;
}

/* packetdrill's %{ }% blocks read TCP_INFO, TCP_CC_INFO and SO_MEMINFO with
 * libc's getsockopt() on the socket's descriptor (code.c, get_data), not
 * through the interface table, so the descriptor it passes is our /dev/null
 * placeholder. pdrun.sh preloads this object (LD_PRELOAD) so that the
 * definition below comes first: a placeholder of ours gets the stack's answer,
 * every other descriptor the real call. Loaded by dlopen() alone, as
 * packetdrill does without pdrun.sh, the definition is never reached and the
 * blocks fail as before. */
__attribute__((visibility("default")))
int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
  static int (*real)(int, int, int, void *, socklen_t *);
  if (g.stack && fd >= 0 && fd < MAX_FDS && g.slots[fd].kind == SLOT_SOCK)
    return pd_getsockopt(&g, fd, level, name, val, len);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "getsockopt");
  if (!real) { errno = ENOSYS; return -1; }
  return real(fd, level, name, val, len);
}

/* Preloaded, the object must not follow packetdrill into its children (the
 * shell and python3 that run the script's commands and blocks). */
__attribute__((constructor)) static void drop_preload(void)
{
  const char *p = getenv("LD_PRELOAD");
  if (p && strstr(p, "ustcp_packetdrill")) unsetenv("LD_PRELOAD");
}

static int pd_setsockopt(void *ud, int fd, int level, int name, const void *val, socklen_t len)
{
  (void)ud;
  lock();
  sync_stack();
  struct slot *sl = slot_of(fd, SLOT_SOCK);
  int r;
  if (!sl) r = -EBADF;
  else if (level == SOL_SOCKET && (name == SO_RCVTIMEO || name == SO_SNDTIMEO)) {
    if (len < sizeof(struct timeval)) r = -EINVAL;
    else {
      if (name == SO_RCVTIMEO) sl->rcvtimeo_us = timeval_us(val, len);
      else sl->sndtimeo_us = timeval_us(val, len);
      r = 0;
    }
  } else r = ustcp_setsockopt(g.stack, sl->ufd, level, name, val, len);
  pthread_cond_broadcast(&g.cv);
  unlock();
  return r < 0 ? fail(r) : 0;
}

/* poll(2) bits of a stack socket, as Linux's tcp_poll reports them. */
static unsigned linux_events(int ufd)
{
  int ev = ustcp_sock_events(g.stack, ufd);
  if (ev < 0) return POLLNVAL;
  unsigned r = (unsigned)ev;
  if (r & POLLIN) r |= POLLRDNORM;
  if (r & POLLOUT) r |= POLLWRNORM;
  return r;
}

struct poll_arg {
  bool done;
  struct pollfd *fds;
  nfds_t n;
  int count;
};

static bool ready_poll(void *p)
{
  struct poll_arg *a = p;
  if (a->done) return true;
  a->count = 0;
  for (nfds_t i = 0; i < a->n; i++) {
    struct pollfd *f = &a->fds[i];
    f->revents = 0;
    if (f->fd < 0) continue;
    struct slot *sl = slot_of(f->fd, SLOT_SOCK);
    unsigned ev = sl ? linux_events(sl->ufd) : POLLNVAL;
    f->revents = (short)(ev & ((unsigned)(unsigned short)f->events | POLLERR | POLLHUP | POLLNVAL));
    if (f->revents) a->count++;
  }
  a->done = a->count > 0;
  return a->done;
}

static uint64_t timeout_deadline(int timeout_ms)
{
  if (timeout_ms < 0) return USTCP_NO_DEADLINE;
  return g.now + (uint64_t)timeout_ms * USTCP_MSEC;
}

static int pd_poll(void *ud, struct pollfd *fds, nfds_t n, int timeout_ms)
{
  (void)ud;
  lock();
  sync_stack();
  struct poll_arg a = {.fds = fds, .n = n};
  if (timeout_ms == 0) ready_poll(&a);
  else wait_until(ready_poll, &a, timeout_deadline(timeout_ms));
  unlock();
  return a.count;
}

static int pd_epoll_create(void *ud, int size)
{
  (void)ud;
  if (size <= 0) return fail(-EINVAL);
  lock();
  int r = new_slot(SLOT_EPOLL, -1);
  unlock();
  return r < 0 ? fail(r) : r;
}

static int pd_epoll_ctl(void *ud, int epfd, int op, int fd, struct epoll_event *ev)
{
  (void)ud;
  lock();
  struct slot *ep = slot_of(epfd, SLOT_EPOLL);
  int r = 0;
  if (!ep || !slot_of(fd, SLOT_SOCK)) {
    r = -EBADF;
    goto out;
  }
  int i;
  for (i = 0; i < ep->nitems && ep->items[i].fd != fd; i++) {}
  bool found = i < ep->nitems;
  if (op == EPOLL_CTL_ADD) {
    if (found) { r = -EEXIST; goto out; }
    if (!ev) { r = -EFAULT; goto out; }
    if (ep->nitems == MAX_EPOLL_ITEMS) { r = -ENOSPC; goto out; }
    struct epoll_item *ni = realloc(ep->items, (size_t)(ep->nitems + 1) * sizeof *ni);
    if (!ni) { r = -ENOMEM; goto out; }
    ep->items = ni;
    ep->items[ep->nitems++] = (struct epoll_item){.fd = fd, .ev = *ev, .woken = true};
  } else if (op == EPOLL_CTL_MOD) {
    if (!found) { r = -ENOENT; goto out; }
    if (!ev) { r = -EFAULT; goto out; }
    ep->items[i] = (struct epoll_item){.fd = fd, .ev = *ev, .woken = true};
  } else if (op == EPOLL_CTL_DEL) {
    if (!found) { r = -ENOENT; goto out; }
    ep->items[i] = ep->items[--ep->nitems];
  } else r = -EINVAL;
out:
  unlock();
  return r < 0 ? fail(r) : 0;
}

struct epoll_arg {
  bool done;
  struct slot *ep;
  struct epoll_event *out;
  int max;
  int count;
};

static bool ready_epoll(void *p)
{
  struct epoll_arg *a = p;
  if (a->done) return true;
  a->count = 0;
  for (int i = 0; i < a->ep->nitems && a->count < a->max; i++) {
    struct epoll_item *it = &a->ep->items[i];
    struct slot *sl = slot_of(it->fd, SLOT_SOCK);
    if (!sl || it->disabled) continue;
    unsigned ev = linux_events(sl->ufd) & (it->ev.events | EPOLLERR | EPOLLHUP);
    unsigned report = ev;
    if (it->ev.events & EPOLLET) {
      if (!it->woken) report = 0;
      else if (report) it->woken = false;
    }
    if (!report) continue;
    a->out[a->count].events = report;
    a->out[a->count].data = it->ev.data;
    a->count++;
    if (it->ev.events & EPOLLONESHOT) it->disabled = true;
  }
  a->done = a->count > 0;
  return a->done;
}

static int pd_epoll_wait(void *ud, int epfd, struct epoll_event *evs, int max, int timeout_ms)
{
  (void)ud;
  if (max <= 0) return fail(-EINVAL);
  lock();
  sync_stack();
  struct slot *ep = slot_of(epfd, SLOT_EPOLL);
  if (!ep) {
    unlock();
    return fail(-EBADF);
  }
  struct epoll_arg a = {.ep = ep, .out = evs, .max = max};
  if (timeout_ms == 0) ready_epoll(&a);
  else wait_until(ready_epoll, &a, timeout_deadline(timeout_ms));
  unlock();
  return a.count;
}

static int pd_pipe(void *ud, int fds[2])
{
  (void)ud;
  (void)fds;
  return fail(-ENOSYS);
}

static int pd_splice(void *ud, int in, loff_t *off_in, int out, loff_t *off_out, size_t len,
                     unsigned int flags)
{
  (void)ud; (void)in; (void)off_in; (void)out; (void)off_out; (void)len; (void)flags;
  return fail(-ENOSYS);
}

/* ---- the network device and the clock ---- */
static int pd_netdev_send(void *ud, const void *buf, size_t n)
{
  (void)ud;
  lock();
  sync_stack();
  ustcp_input(g.stack, buf, n, g.now);
  g.polled = g.now;
  pthread_cond_broadcast(&g.cv);
  unlock();
  return 0;
}

static int pd_netdev_receive(void *ud, void *buf, size_t *n, long long *time_us)
{
  (void)ud;
  lock();
  struct timespec give_up = {0};
  for (;;) {
    sync_stack();
    settle();
    if (g.q_head) break;
    uint64_t d = next_event();
    if (d != USTCP_NO_DEADLINE && d <= g.now + MAX_JUMP_US) {
      advance_to(d > g.now ? d : g.now + 1);
      continue;
    }
    /* Nothing queued and no timer: only a call still running on the other
     * thread could send. Give it a moment of real time, then stop: returning
     * "nothing" would make packetdrill loop forever. */
    if (give_up.tv_sec == 0) real_deadline(&give_up, 2000);
    if (pthread_cond_timedwait(&g.cv, &g.mu, &give_up) == ETIMEDOUT && !g.q_head) {
      fprintf(stderr, "ustcp_packetdrill: the stack has no packet to send and no timer "
                      "pending (an expected packet that ustcp never sends)\n");
      unlock();
      exit(EXIT_FAILURE);
    }
  }
  struct outpkt *p = g.q_head;
  g.q_head = p->next;
  if (!g.q_head) g.q_tail = NULL;
  int r = 0;
  if (p->len > *n) {
    r = -1;                        /* cannot happen with packetdrill's buffer */
  } else {
    memcpy(buf, p->data, p->len);
    *n = p->len;
    *time_us = (long long)p->t_us;
  }
  free(p);
  unlock();
  return r;
}

static int pd_usleep(void *ud, useconds_t us)
{
  (void)ud;
  lock();
  advance_to(g.now + us);
  unlock();
  return 0;
}

static int pd_gettimeofday(void *ud, struct timeval *tv, struct timezone *tz)
{
  (void)ud;
  (void)tz;
  lock();
  if (t_unclocked) {
    /* a woken blocking call reads its end time: now, then lets time go on */
    t_unclocked = false;
    if (g.unclocked > 0) g.unclocked--;
    pthread_cond_broadcast(&g.cv);
  } else {
    /* packetdrill spins on the clock before each event, on either thread (the
     * system-call thread waits for the start of its call): it must move */
    advance_to(g.now + 1);
  }
  tv->tv_sec = (time_t)(g.now / USTCP_SEC);
  tv->tv_usec = (suseconds_t)(g.now % USTCP_SEC);
  unlock();
  return 0;
}

static void pd_free(void *ud)
{
  (void)ud;
  lock();
  for (int i = 0; i < MAX_FDS; i++) {
    if (g.slots[i].kind == SLOT_EPOLL) free(g.slots[i].items);
    g.slots[i] = (struct slot){0};   /* packetdrill closes the placeholders itself */
  }
  while (g.q_head) {
    struct outpkt *p = g.q_head;
    g.q_head = p->next;
    free(p);
  }
  g.q_tail = NULL;
  if (g.stack) ustcp_stack_free(g.stack);
  g.stack = NULL;
  unlock();
}

/* flags (--so_flags): "ip=A.B.C.D[,verbose]"; the address must be packetdrill's
 * --local_ip. */
static void parse_flags(const char *flags)
{
  g.local_ip = 0xC0A80001u;           /* 192.168.0.1 */
  if (!flags) return;
  char *copy = strdup(flags);
  if (!copy) return;
  char *save = NULL;
  for (char *tok = strtok_r(copy, ", ;", &save); tok; tok = strtok_r(NULL, ", ;", &save)) {
    struct in_addr a;
    if (strncmp(tok, "ip=", 3) == 0 && inet_pton(AF_INET, tok + 3, &a) == 1)
      g.local_ip = ntohl(a.s_addr);
    else if (strcmp(tok, "verbose") == 0)
      g.verbose = true;
    else
      fprintf(stderr, "ustcp_packetdrill: unknown flag '%s'\n", tok);
  }
  free(copy);
}

__attribute__((visibility("default")))
void packetdrill_interface_init(const char *flags, struct pd_ifc *ifc)
{
  parse_flags(flags);
  g.main_thread = pthread_self();
  struct timeval tv;
  gettimeofday(&tv, NULL);          /* virtual time starts at the real time */
  g.now = (uint64_t)tv.tv_sec * USTCP_SEC + (uint64_t)tv.tv_usec;
  g.polled = 0;
  struct ustcp_config cfg;
  base_config(&cfg);
  g.stack = ustcp_stack_new(&cfg, g.local_ip, 1, on_output, NULL);
  if (!g.stack) {
    fprintf(stderr, "ustcp_packetdrill: cannot create the stack\n");
    exit(EXIT_FAILURE);
  }
  ustcp_set_ready_cb(g.stack, on_ready, NULL);
  sync_stack();
  *ifc = (struct pd_ifc){
    .userdata = &g,
    .free_fn = pd_free,
    .socket_fn = pd_socket,
    .bind_fn = pd_bind,
    .listen_fn = pd_listen,
    .accept_fn = pd_accept,
    .connect_fn = pd_connect,
    .read_fn = pd_read,
    .readv_fn = pd_readv,
    .recv_fn = pd_recv,
    .recvfrom_fn = pd_recvfrom,
    .recvmsg_fn = pd_recvmsg,
    .write_fn = pd_write,
    .writev_fn = pd_writev,
    .send_fn = pd_send,
    .sendto_fn = pd_sendto,
    .sendmsg_fn = pd_sendmsg,
    .fcntl_fn = pd_fcntl,
    .ioctl_fn = pd_ioctl,
    .close_fn = pd_close,
    .shutdown_fn = pd_shutdown,
    .getsockopt_fn = pd_getsockopt,
    .setsockopt_fn = pd_setsockopt,
    .poll_fn = pd_poll,
    .netdev_send_fn = pd_netdev_send,
    .netdev_receive_fn = pd_netdev_receive,
    .usleep_fn = pd_usleep,
    .gettimeofday_fn = pd_gettimeofday,
    .epoll_create_fn = pd_epoll_create,
    .epoll_ctl_fn = pd_epoll_ctl,
    .epoll_wait_fn = pd_epoll_wait,
    .pipe_fn = pd_pipe,
    .splice_fn = pd_splice,
  };
}
