/* src/sock: the BSD-socket-shaped API (A1, A2) on top of control blocks.
 *
 * A descriptor names one control block for its whole life: socket() creates a
 * CLOSED block, bind/listen/connect move it, close() gives it up (the engine then
 * finishes the close as an orphan, W1/W5/W7, or frees it at once). This layer
 * maps descriptors to control blocks, checks the arguments (Linux's errno
 * choices), binds local ports, sizes buffers (options), reports readiness and
 * errors; what a call does to the connection, state by state, is the engine's:
 * the user calls of RFC 9293 §3.10 in src/tcp/tcp_user.c. Every call returns a
 * negative errno without changing anything when it is refused. Nothing here
 * blocks: "would block" is -EAGAIN / -EINPROGRESS, and readiness is reported
 * through ustcp_sock_events() and the ready callback. Each call that made the
 * engine work ends the event (stack_after_event): the callbacks then see what it
 * did, and may themselves call anything here (src/stack/notify.c).
 */
#include <stdlib.h>
#include <string.h>
#include "stack/stack.h"
#include "stack/stack_check.h"

/* Descriptors are handed out lowest-free first, as POSIX requires of open()
 * and Linux does (alloc_fd: find_next_zero_bit over the open-fds bitmap, with
 * a summary bitmap, full_fds_bits, to skip full words). Here a two-level
 * bitmap of FREE slots: free_bits has one bit per slot, free_sum one bit per
 * word of free_bits that has any bit set. Finding the lowest free slot scans
 * free_sum a word at a time: O(cap / 4096) word reads (one word up to 4096
 * descriptors, 256 words at the 2^20 default max_sockets), then two
 * count-trailing-zeros. Freeing is O(1). */
struct sock_table {
  struct tcb **by_fd;
  uint32_t cap;                   /* a multiple of 64 */
  uint32_t used;
  uint64_t *free_bits;            /* cap / 64 words; bit set = slot free */
  uint64_t *free_sum;             /* ceil(cap / 4096) words; bit w set = free_bits[w] != 0 */
  uint64_t fd_scan_steps;         /* free_sum words read by fd_alloc, for tests */
  int *wake_fds;                  /* descriptors with a readiness callback queued */
  uint32_t wake_len, wake_cap;
  bool wake_scan;                 /* the queue could not grow: some blocks have
                                     wake_pending without an entry; find them by a scan */
};

static void sock_wake_cb(struct ustcp_stack *s, struct tcb *t);
static void sock_free_all(struct ustcp_stack *s);
static bool sock_dispatch(struct ustcp_stack *s);
static int sock_fd_of(struct ustcp_stack *s, int fd, uint64_t conn_id);

static struct sock_table *table(struct ustcp_stack *s)
{
  if (!s->socks) {
    s->socks = tcp_sys_calloc(&s->eng, 1, sizeof *s->socks);
    s->sock_wake = sock_wake_cb;
    s->sock_free = sock_free_all;
    s->sock_dispatch = sock_dispatch;
    s->sock_fd_of = sock_fd_of;
  }
  return s->socks;
}

static struct tcb *get(struct ustcp_stack *s, int fd)
{
  if (!s || !s->socks || fd < 0 || (uint32_t)fd >= s->socks->cap) return NULL;
  return s->socks->by_fd[fd];
}

/* A socket call made while a direct-access callback runs (ustcp_recv_direct,
 * ustcp_send_direct) is refused: the slice the callback holds must stay as it
 * was handed. */
static bool refused(struct ustcp_stack *s)
{
  if (!s || !s->direct_busy) return false;
  s->stats.direct_reentry_refused++;
  return true;
}

static void sock_free_all(struct ustcp_stack *s);
static bool sock_dispatch(struct ustcp_stack *s);
static int sock_fd_of(struct ustcp_stack *s, int fd, uint64_t conn_id);

static void fd_mark(struct sock_table *tb, uint32_t i, bool is_free)
{
  uint32_t w = i / 64;
  if (is_free) {
    tb->free_bits[w] |= (uint64_t)1 << (i % 64);
    tb->free_sum[w / 64] |= (uint64_t)1 << (w % 64);
  } else {
    tb->free_bits[w] &= ~((uint64_t)1 << (i % 64));
    if (!tb->free_bits[w]) tb->free_sum[w / 64] &= ~((uint64_t)1 << (w % 64));
  }
}

/* Doubles the table (64 slots first); the new slots are free. */
static bool fd_grow(struct ustcp_stack *s, struct sock_table *tb)
{
  uint32_t ncap = tb->cap ? tb->cap * 2 : 64;
  uint32_t owords = tb->cap / 64, nwords = ncap / 64;
  uint32_t osum = (owords + 63) / 64, nsum = (nwords + 63) / 64;
  struct tcb **nv = tcp_sys_realloc(&s->eng, tb->by_fd, ncap * sizeof *nv);
  if (!nv) return false;
  tb->by_fd = nv;
  memset(nv + tb->cap, 0, (ncap - tb->cap) * sizeof *nv);
  uint64_t *nb = tcp_sys_realloc(&s->eng, tb->free_bits, nwords * sizeof *nb);
  if (!nb) return false;          /* by_fd grew but cap did not: harmless */
  tb->free_bits = nb;
  uint64_t *ns = tcp_sys_realloc(&s->eng, tb->free_sum, nsum * sizeof *ns);
  if (!ns) return false;
  tb->free_sum = ns;
  memset(nb + owords, 0, (nwords - owords) * sizeof *nb);
  memset(ns + osum, 0, (nsum - osum) * sizeof *ns);
  tb->cap = ncap;
  for (uint32_t w = owords; w < nwords; w++) {
    nb[w] = ~(uint64_t)0;
    ns[w / 64] |= (uint64_t)1 << (w % 64);
  }
  return true;
}

static int fd_alloc(struct ustcp_stack *s, struct tcb *t)
{
  struct sock_table *tb = table(s);
  if (!tb) return -ENOMEM;
  if (tb->used >= s->cfg.max_sockets) return -EMFILE;
  for (;;) {
    uint32_t nsum = (tb->cap / 64 + 63) / 64;
    for (uint32_t sw = 0; sw < nsum; sw++) {
      tb->fd_scan_steps++;
      if (!tb->free_sum[sw]) continue;
      uint32_t w = sw * 64 + (uint32_t)__builtin_ctzll(tb->free_sum[sw]);
      uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(tb->free_bits[w]);
      fd_mark(tb, i, false);
      tb->by_fd[i] = t;
      tb->used++;
      t->fd = (int)i;
      return (int)i;
    }
    if (!fd_grow(s, tb)) return -ENOMEM;
  }
}

static void fd_release(struct ustcp_stack *s, struct tcb *t)
{
  struct sock_table *tb = s->socks;
  if (t->fd >= 0 && (uint32_t)t->fd < tb->cap && tb->by_fd[t->fd] == t) {
    tb->by_fd[t->fd] = NULL;
    tb->used--;
    fd_mark(tb, (uint32_t)t->fd, true);
  }
  t->fd = -1;
}

static void sock_free_all(struct ustcp_stack *s)
{
  struct sock_table *tb = s->socks;
  if (!tb) return;
  for (uint32_t i = 0; i < tb->cap; i++) {
    struct tcb *t = tb->by_fd[i];
    if (!t) continue;
    tb->by_fd[i] = NULL;
    t->fd = -1;
    if (t->lst) {
      t->lst->accept_head = t->lst->accept_tail = t->lst->syn_head = NULL;
    }
    if (!t->in_hash) tcb_free(&s->eng, t);   /* hashed ones are freed by the stack */
  }
  free(tb->by_fd);
  free(tb->free_bits);
  free(tb->free_sum);
  free(tb->wake_fds);
  free(tb);
  s->socks = NULL;
}

static void after_call(struct ustcp_stack *s)
{
  stack_after_event(s);
}

int ustcp_socket(struct ustcp_stack *s)
{
  if (!s) return -EINVAL;
  if (refused(s)) return -EBUSY;
  if (!table(s)) return -ENOMEM;
  if (s->socks->used >= s->cfg.max_sockets) return -EMFILE;
  struct tcb *t = tcb_new(&s->eng);
  if (!t) return -ENOMEM;
  int fd = fd_alloc(s, t);
  if (fd < 0) {
    tcb_free(&s->eng, t);
    return fd;
  }
  return fd;
}

/* An IPv6 socket: bound or connected to IPv6, or v4-mapped; its IPv4 addresses
 * read back as ::ffff:a.b.c.d and "any" as :: (Linux's AF_INET6 socket). */
static bool v6_sock(const struct tcb *t)
{
  return t->local.v6 || (t->local.flags & TCP_EP_MAPPED);
}

int ustcp_bind(struct ustcp_stack *s, int fd, const struct ustcp_addr *addr)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!addr) return -EFAULT;
  if (t->state != USTCP_CLOSED || t->port_held || tcb_ever_connected(t)) return -EINVAL;
  /* Either family (issue 16): a v4-mapped address binds IPv4 (Linux's AF_INET6
   * socket bound to ::ffff:a.b.c.d), IPv6 "::" binds both families unless
   * IPV6_V6ONLY. */
  struct tcp_ep ep;
  int rc = stack_ep_from_addr(s, addr, &ep);
  if (rc) return rc;
  bool ours = ep.v6 ? ep.ip == 0 || (s->has_ip6 && ep.ip == s->local6_h)
                    : ep.ip == 0 || ep.ip == s->local_ip;
  if (!ours) {
    stack_ep_release(s, &ep);
    return -EADDRNOTAVAIL;
  }
  uint16_t port = addr->port;
  if (port == 0) {
    port = stack_ephemeral_port(s, NULL, true);
    if (!port) {
      stack_ep_release(s, &ep);
      return -EADDRINUSE;
    }
  } else if (stack_port_users(s, port) > 0) {
    /* SO_REUSEADDR lets a port be bound again while others (TIME_WAIT, old
     * connections) hold it, but never next to a listener (Linux). */
    if (!t->reuseaddr ||
        stack_lookup_listener(s, ep.v6, ep.v6 ? s->local6_h : s->local_ip, port)) {
      stack_ep_release(s, &ep);
      return -EADDRINUSE;
    }
  }
  ep.port = port;
  ep.flags |= t->local.flags & TCP_EP_V6ONLY;
  tcp_ep_set(&s->eng, &t->local, &ep);
  stack_ep_release(s, &ep);
  stack_port_ref(s, port);
  t->port_held = true;
  return 0;
}

int ustcp_listen(struct ustcp_stack *s, int fd, int backlog)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  int rc = tcp_user_listen_allowed(&s->eng, t, backlog);
  if (rc != TCP_USER_PROCEED) return rc;
  /* The local port: bound now if it was not, never beside another listener. */
  if (!t->port_held) {
    struct ustcp_addr any = {0, 0};
    rc = ustcp_bind(s, fd, &any);
    if (rc) return rc;
  } else {
    struct tcb *other = stack_lookup_listener(s, t->local.v6, t->local.ip, t->local.port);
    if (other && other->local.ip == t->local.ip && other->local.v6 == t->local.v6)
      return -EADDRINUSE;
  }
  rc = tcp_user_listen(&s->eng, t, backlog);
  if (rc) return rc;
  stack_deliver(s);                 /* the LISTEN event */
  return 0;
}

int ustcp_accept(struct ustcp_stack *s, int fd, struct ustcp_addr *peer)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (t->state != USTCP_LISTEN) return -EINVAL;
  if (!t->lst->accept_head) return -EAGAIN;
  if (s->socks->used >= s->cfg.max_sockets) return -EMFILE;
  /* The descriptor first, as Linux's do_accept takes it before the
   * connection: when there is no memory for it the connection stays queued
   * for a later accept() instead of being reset (issue 10 §7). */
  struct tcb *c = t->lst->accept_head;
  int nfd = fd_alloc(s, c);
  if (nfd < 0) return nfd;
  tcp_listen_accept(&s->eng, t);
  if (peer) stack_addr_from_ep(s, &c->remote, v6_sock(c), peer);
  /* readiness of the new socket may already be set (data, FIN) */
  sock_wake_cb(s, c);
  return nfd;
}

/* connect()'s address checks, per family (issue 16). */
static int connect_check(struct ustcp_stack *s, const struct tcb *t, const struct ustcp_addr *addr,
                         const struct tcp_ep *rem)
{
  if (addr->port == 0 || rem->ip == 0) return -EINVAL;
  if (!rem->v6) {
    /* Broadcast, multicast, 0/8, 127/8 (no loopback device here), 240/4: no route
     * to one host there; Linux's tcp_v4_connect fails these with ENETUNREACH. */
    if (!stack_addr_unicast(rem->ip)) return -ENETUNREACH;
    if (!(rem->flags & TCP_EP_MAPPED)) {
      if (t->port_held && t->local.v6) return -EAFNOSUPPORT;   /* an IPv6 socket */
      return 0;
    }
    /* v4-mapped: an IPv6 socket speaking IPv4, not when IPV6_V6ONLY (Linux's
     * tcp_v6_connect: ENETUNREACH) nor when bound to an IPv6 address. */
    if (t->local.flags & TCP_EP_V6ONLY) return -ENETUNREACH;
    if (t->port_held && t->local.v6 && t->local.ip != 0) return -EAFNOSUPPORT;
    return 0;
  }
  const uint8_t *a = addr->ip6;
  static const uint8_t loop[16] = {[15] = 1};
  if (a[0] == 0xff || !memcmp(a, loop, 16)) return -ENETUNREACH;
  if (!s->has_ip6) return -ENETUNREACH;        /* no IPv6 address: no route */
  if (t->port_held && !t->local.v6) return -EAFNOSUPPORT;
  return 0;
}

int ustcp_connect(struct ustcp_stack *s, int fd, const struct ustcp_addr *addr)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!addr) return -EFAULT;
  int rc = tcp_user_connect_allowed(t);
  if (rc != TCP_USER_PROCEED) return rc;
  struct tcp_ep rem;
  rc = stack_ep_from_addr(s, addr, &rem);
  if (rc) return rc;
  rc = connect_check(s, t, addr, &rem);
  if (rc) {
    stack_ep_release(s, &rem);
    return rc;
  }
  /* The stack's part of OPEN: the local address and port. */
  uint16_t lport = t->local.port;
  if (!t->port_held) {
    lport = stack_ephemeral_port(s, &rem, false);
    if (!lport) {
      stack_ep_release(s, &rem);
      return -EADDRNOTAVAIL;
    }
  }
  struct tcp_ep local = {rem.v6 ? s->local6_h : s->local_ip, lport, rem.v6,
                         (uint8_t)((rem.flags & TCP_EP_MAPPED) | (t->local.flags & TCP_EP_V6ONLY))};
  /* W10: a 4-tuple still in use (TIME_WAIT included) cannot be reused. */
  if (stack_lookup_af(s, rem.v6, local.ip, lport, rem.ip, rem.port)) {
    stack_ep_release(s, &rem);
    return -EADDRNOTAVAIL;
  }
  t->port_shared = !t->port_held;   /* picked here: other destinations may share it */
  tcp_user_open(&s->eng, t, &local, &rem);
  stack_ep_release(s, &rem);
  after_call(s);
  return -EINPROGRESS;
}

ssize_t ustcp_send(struct ustcp_stack *s, int fd, const void *buf, size_t len, int flags)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (flags & USTCP_MSG_OOB) return -EOPNOTSUPP;
  if (!buf && len) return -EFAULT;
  bool ran = false;
  ssize_t n = tcp_user_send(&s->eng, t, buf, len, (flags & USTCP_MSG_EOR) != 0,
                            (flags & USTCP_MSG_MORE) != 0, &ran);
  if (ran) after_call(s);
  return n;
}

ssize_t ustcp_recv(struct ustcp_stack *s, int fd, void *buf, size_t len, int flags)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (flags & USTCP_MSG_OOB) return -EOPNOTSUPP;
  if (!buf && len) return -EFAULT;
  bool ran = false;
  ssize_t n = tcp_user_receive(&s->eng, t, buf, len, (flags & USTCP_MSG_PEEK) != 0, &ran);
  if (ran) after_call(s);
  return n;
}

/* Direct access (issue 12 point 6): the engine's SEND and RECEIVE steps
 * (tcp_user_send_prepare/finish, tcp_user_consumed), with the application
 * filling or draining the ring in place between them instead of a copy. */
ssize_t ustcp_recv_direct(struct ustcp_stack *s, int fd, ustcp_recv_direct_fn fn, void *ctx)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!fn) return -EFAULT;
  int rc = tcp_user_receive_allowed(t);
  if (rc != TCP_USER_PROCEED) return rc;
  if (t->rcvbuf.len == 0) return tcp_user_receive_empty(t);
  struct tcp_iov pcs[2];
  size_t np = ring_pieces(&t->rcvbuf, 0, t->rcvbuf.len, pcs);
  uint32_t done = 0;
  s->direct_busy = true;
  for (size_t i = 0; i < np; i++) {
    size_t c = fn(ctx, pcs[i].base, pcs[i].len);
    if (c > pcs[i].len) c = pcs[i].len;
    done += (uint32_t)c;
    if (c < pcs[i].len) break;
  }
  s->direct_busy = false;
  bool ran = false;
  if (done) tcp_user_consumed(&s->eng, t, done, &ran);
  if (ran) after_call(s);
  return (ssize_t)done;
}

ssize_t ustcp_send_direct(struct ustcp_stack *s, int fd, size_t max, int flags,
                          ustcp_send_direct_fn fn, void *ctx)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (flags & USTCP_MSG_OOB) return -EOPNOTSUPP;
  if (!fn) return -EFAULT;
  bool more = (flags & USTCP_MSG_MORE) != 0, eor = (flags & USTCP_MSG_EOR) != 0;
  int rc = tcp_user_send_prepare(&s->eng, t, max, more);
  if (rc != TCP_USER_PROCEED) return rc;
  uint32_t want = max > UINT32_MAX ? UINT32_MAX : (uint32_t)max;
  /* Under a notsent limit (TCP_NOTSENT_LOWAT) no room is offered once it is
   * reached (Linux's tcp_stream_memory_free(sk, 0) before a new skb). */
  if (!tcp_stream_memory_free(&s->eng, t, 0)) want = 0;
  uint8_t *base[2];
  uint32_t len[2];
  size_t np = ring_free_pieces(&s->eng, &t->sndbuf, want, base, len);
  uint32_t done = 0;
  s->direct_busy = true;
  for (size_t i = 0; i < np; i++) {
    size_t c = fn(ctx, base[i], len[i]);
    if (c > len[i]) c = len[i];
    done += (uint32_t)c;
    if (c < len[i]) break;
  }
  s->direct_busy = false;
  ring_commit(&t->sndbuf, done);
  bool ran = false;
  ssize_t n = tcp_user_send_finish(&s->eng, t, done, max, np > 0, eor, more, &ran);
  if (ran) after_call(s);
  return n;
}

int ustcp_shutdown(struct ustcp_stack *s, int fd, int how)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (how != USTCP_SHUT_RD && how != USTCP_SHUT_WR && how != USTCP_SHUT_RDWR) return -EINVAL;
  bool ran = false;
  int rc = tcp_user_shutdown(&s->eng, t, how != USTCP_SHUT_WR, how != USTCP_SHUT_RD, &ran);
  if (ran) after_call(s);
  return rc;
}

int ustcp_close(struct ustcp_stack *s, int fd)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  fd_release(s, t);
  tcp_user_close(&s->eng, t, t->linger_on && t->linger_s == 0);
  after_call(s);
  return 0;
}

int ustcp_abort(struct ustcp_stack *s, int fd)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  fd_release(s, t);
  t->orphan = true;
  tcp_user_abort(&s->eng, t, USTCP_CAUSE_CALL);
  after_call(s);
  return 0;
}

int ustcp_getsockname(struct ustcp_stack *s, int fd, struct ustcp_addr *addr)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!addr) return -EFAULT;
  stack_addr_from_ep(s, &t->local, v6_sock(t), addr);
  return 0;
}

int ustcp_getpeername(struct ustcp_stack *s, int fd, struct ustcp_addr *addr)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!addr) return -EFAULT;
  /* Linux (inet_getname): no peer while CLOSED or SYN_SENT, even after a
   * connection existed. */
  if (!tcb_ever_connected(t) || t->state == USTCP_LISTEN || t->state == USTCP_CLOSED ||
      t->state == USTCP_SYN_SENT)
    return -ENOTCONN;
  stack_addr_from_ep(s, &t->remote, v6_sock(t), addr);
  return 0;
}

int ustcp_sock_error(struct ustcp_stack *s, int fd)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  int err = t->so_error;
  t->so_error = 0;
  return err;
}

static int get_int(const void *val, size_t len, int *out)
{
  if (!val) return -EFAULT;
  if (len < sizeof(int)) return -EINVAL;
  memcpy(out, val, sizeof(int));
  return 0;
}

static int resize_ring(struct tcp_engine *e, struct ring *r, uint32_t cap)
{
  return ring_set_cap(e, r, cap);
}

int ustcp_setsockopt(struct ustcp_stack *s, int fd, int level, int name,
                     const void *val, size_t len)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  struct tcp_engine *e = &s->eng;
  int v = 0, rc;
  if (level == USTCP_SOL_SOCKET && name == USTCP_SO_LINGER) {
    if (!val) return -EFAULT;
    if (len < sizeof(struct ustcp_linger)) return -EINVAL;
    struct ustcp_linger l;
    memcpy(&l, val, sizeof l);
    if (l.l_linger < 0) return -EINVAL;
    t->linger_on = l.l_onoff != 0;
    t->linger_s = l.l_linger;
    return 0;
  }
  if (level == USTCP_IPPROTO_IPV6) {
    if (name != USTCP_IPV6_V6ONLY) return -ENOPROTOOPT;
    if (!val) return -EFAULT;
    if (len < sizeof(int)) return -EINVAL;
    memcpy(&v, val, sizeof v);
    /* Linux's do_ipv6_setsockopt: only before the socket is bound (inet_num). */
    if (t->port_held || t->state != USTCP_CLOSED) return -EINVAL;
    if (v) t->local.flags |= TCP_EP_V6ONLY;
    else t->local.flags &= (uint8_t)~TCP_EP_V6ONLY;
    return 0;
  }
  if (level == USTCP_IPPROTO_IP) {
    /* Linux's do_ip_setsockopt: these int options also take a single byte. */
    if (name != USTCP_IP_TOS && name != USTCP_IP_MTU_DISCOVER) return -ENOPROTOOPT;
    if (!val) return -EFAULT;
    if (len >= sizeof(int)) memcpy(&v, val, sizeof v);
    else if (len >= 1) v = *(const unsigned char *)val;
    else return -EINVAL;
    if (name == USTCP_IP_TOS) {
      /* Linux keeps the ECN bits for TCP to manage (inet->tos & INET_ECN_MASK);
       * the value is stored and read back, not sent (ustcp sends TOS 0). */
      t->ip_tos = (uint8_t)(v & ~3);
      return 0;
    }
    if (v < 0 || v > 5) return -EINVAL;   /* IP_PMTUDISC_DONT .. IP_PMTUDISC_OMIT */
    t->ip_pmtudisc = (uint8_t)v;
    return 0;
  }
  if (level == USTCP_IPPROTO_TCP && name == USTCP_TCP_CONGESTION) {
    /* Linux (do_tcp_setsockopt): at most TCP_CA_NAME_MAX - 1 bytes of a name;
     * an unknown one is ENOENT. */
    if (!val) return -EFAULT;
    char nm[CC_NAME_MAX] = {0};
    memcpy(nm, val, len < CC_NAME_MAX - 1 ? len : CC_NAME_MAX - 1);
    return cc_select(e, t, nm);
  }
  if ((rc = get_int(val, len, &v)) != 0) return rc;
  if (level == USTCP_SOL_SOCKET) {
    switch (name) {
    case USTCP_SO_REUSEADDR: t->reuseaddr = v != 0; return 0;
    case USTCP_SO_KEEPALIVE:
      t->keepalive = v != 0;
      tcp_arm_keepalive(e, t);
      return 0;
    case USTCP_SO_SNDBUF:
      if (v < 0) return -EINVAL;
      rc = resize_ring(e, &t->sndbuf, u32_min(u32_max((uint32_t)v, 2048), s->cfg.wmem_max));
      if (rc == 0) t->sndbuf_locked = true;
      return rc;
    case USTCP_SO_RCVBUF: {
      if (v < 0) return -EINVAL;
      uint32_t cap = u32_min(u32_max((uint32_t)v, 2048), s->cfg.rmem_max);
      /* Once the window is advertised the buffer may only grow (no shrinking). */
      if (t->state != USTCP_CLOSED && t->state != USTCP_LISTEN && cap < t->rcvbuf.cap)
        return -EINVAL;
      rc = resize_ring(e, &t->rcvbuf, cap);
      if (rc == 0) t->rcvbuf_locked = true;
      return rc;
    }
    default: return -ENOPROTOOPT;
    }
  }
  if (level == USTCP_IPPROTO_TCP) {
    switch (name) {
    case USTCP_TCP_NODELAY:
      /* Linux's __tcp_sock_set_nodelay: TCP_NAGLE_OFF|TCP_NAGLE_PUSH, then a
       * push that sends even what TCP_CORK or MSG_MORE held. */
      t->nodelay = v != 0;
      if (t->nodelay) { t->nagle_push = true; tcp_output(e, t); after_call(s); }
      return 0;
    case USTCP_TCP_MAXSEG:
      /* Linux: 0 restores the default; any state (it shapes later SYNs only). */
      if (v != 0 && (v < 88 || v > 65495)) return -EINVAL;
      t->user_mss = (uint16_t)v;
      return 0;
    case USTCP_TCP_KEEPIDLE:
      if (v < 1 || v > 32767) return -EINVAL;
      t->keepidle_s = (uint32_t)v;
      tcp_arm_keepalive(e, t);
      return 0;
    case USTCP_TCP_KEEPINTVL:
      if (v < 1 || v > 32767) return -EINVAL;
      t->keepintvl_s = (uint32_t)v;
      return 0;
    case USTCP_TCP_KEEPCNT:
      if (v < 1 || v > 127) return -EINVAL;
      t->keepcnt = (uint32_t)v;
      return 0;
    case USTCP_TCP_QUICKACK:
      t->quickack = v != 0;
      return 0;
    case USTCP_TCP_NOTSENT_LOWAT:
      /* Linux stores the int as it comes (-1 is UINT32_MAX) and wakes the
       * writer, whose writability may have changed (sk_write_space). */
      t->notsent_lowat = (uint32_t)v;
      if (e->ops.wake) e->ops.wake(e, t);
      after_call(s);
      return 0;
    case USTCP_TCP_USER_TIMEOUT:
      /* Linux (tcp_sock_set_user_timeout): milliseconds, negative refused. */
      if (v < 0) return -EINVAL;
      t->user_timeout_ms = (uint32_t)v;
      return 0;
    case USTCP_TCP_INQ:
      if (v < 0 || v > 1) return -EINVAL;   /* Linux's do_tcp_setsockopt */
      t->inq = v != 0;
      return 0;
    case USTCP_TCP_ECN:
      /* ustcp's own: tcp_ecn for this socket, read when it connects or
       * listens (a connection's ECN is settled by its SYNs) */
      if (v < 0 || v > 2) return -EINVAL;
      t->ecn_mode = (uint8_t)v;
      return 0;
    case USTCP_TCP_CORK:
      /* Linux's __tcp_sock_set_cork: uncorking pushes what was held (with
       * TCP_NODELAY also what MSG_MORE held: TCP_NAGLE_PUSH). */
      t->cork = v != 0;
      if (!t->cork) {
        if (t->nodelay) t->nagle_push = true;
        tcp_output(e, t);
        after_call(s);
      }
      return 0;
    default: return -ENOPROTOOPT;
    }
  }
  return -ENOPROTOOPT;
}

static int put_int(void *val, size_t *len, int v)
{
  if (!val || !len) return -EFAULT;
  if (*len < sizeof(int)) return -EINVAL;
  memcpy(val, &v, sizeof v);
  *len = sizeof v;
  return 0;
}

/* SO_SNDBUF/SO_RCVBUF as read back: Linux's sock_setsockopt stores twice the
 * value set (its buffers count bookkeeping overhead too), so a set value reads
 * back doubled; a default one reads back as it is (tcp_wmem[1], tcp_rmem[1]).
 * The data the buffer holds stays the value set. */
static int linux_bufsize(uint32_t cap, bool user_set)
{
  uint64_t v = user_set ? 2ull * cap : cap;
  return v > INT32_MAX ? INT32_MAX : (int)v;
}

int ustcp_getsockopt(struct ustcp_stack *s, int fd, int level, int name,
                     void *val, size_t *len)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (level == USTCP_SOL_SOCKET) {
    switch (name) {
    case USTCP_SO_REUSEADDR: return put_int(val, len, t->reuseaddr);
    case USTCP_SO_KEEPALIVE: return put_int(val, len, t->keepalive);
    case USTCP_SO_SNDBUF: return put_int(val, len, linux_bufsize(t->sndbuf.cap, t->sndbuf_locked));
    case USTCP_SO_RCVBUF: return put_int(val, len, linux_bufsize(t->rcvbuf.cap, t->rcvbuf_locked));
    case USTCP_SO_ERROR: {
      int err = t->so_error;
      t->so_error = 0;
      return put_int(val, len, -err);
    }
    case USTCP_SO_LINGER: {
      if (!val || !len) return -EFAULT;
      if (*len < sizeof(struct ustcp_linger)) return -EINVAL;
      struct ustcp_linger l = {t->linger_on, t->linger_s};
      memcpy(val, &l, sizeof l);
      *len = sizeof l;
      return 0;
    }
    default: return -ENOPROTOOPT;
    }
  }
  if (level == USTCP_IPPROTO_IPV6) {
    if (name != USTCP_IPV6_V6ONLY) return -ENOPROTOOPT;
    return put_int(val, len, (t->local.flags & TCP_EP_V6ONLY) != 0);
  }
  if (level == USTCP_IPPROTO_IP) {
    switch (name) {
    case USTCP_IP_TOS: return put_int(val, len, t->ip_tos);
    case USTCP_IP_MTU_DISCOVER: return put_int(val, len, t->ip_pmtudisc);
    default: return -ENOPROTOOPT;
    }
  }
  if (level == USTCP_IPPROTO_TCP) {
    switch (name) {
    case USTCP_TCP_NODELAY: return put_int(val, len, t->nodelay);
    case USTCP_TCP_MAXSEG: return put_int(val, len, t->snd_mss ? t->snd_mss : tcp_adv_mss(&s->eng, t));
    case USTCP_TCP_KEEPIDLE: return put_int(val, len, (int)t->keepidle_s);
    case USTCP_TCP_KEEPINTVL: return put_int(val, len, (int)t->keepintvl_s);
    case USTCP_TCP_KEEPCNT: return put_int(val, len, (int)t->keepcnt);
    case USTCP_TCP_QUICKACK: return put_int(val, len, t->quickack);
    case USTCP_TCP_NOTSENT_LOWAT: return put_int(val, len, (int)t->notsent_lowat);
    case USTCP_TCP_USER_TIMEOUT: return put_int(val, len, (int)t->user_timeout_ms);
    case USTCP_TCP_CORK: return put_int(val, len, t->cork);
    case USTCP_TCP_INQ: return put_int(val, len, t->inq);   /* as set (Linux: recvmsg_inq) */
    case USTCP_TCP_ECN: return put_int(val, len, t->ecn_mode);
    case USTCP_TCP_CONGESTION: {
      /* Linux: min(len, TCP_CA_NAME_MAX) bytes of the zero-padded name. */
      if (!val || !len) return -EFAULT;
      char nm[CC_NAME_MAX] = {0};
      const struct cc_ops *o = t->cc.ops ? t->cc.ops : cc_find(s->cfg.congestion_control);
      if (!o) o = &cc_cubic_ops;
      strncpy(nm, o->name, CC_NAME_MAX - 1);
      size_t n = *len < CC_NAME_MAX ? *len : CC_NAME_MAX;
      memcpy(val, nm, n);
      *len = n;
      return 0;
    }
    case USTCP_TCP_INFO: {
      if (!val || !len) return -EFAULT;
      if (*len < sizeof(struct ustcp_tcp_info)) return -EINVAL;
      tcp_user_status(t, val);
      *len = sizeof(struct ustcp_tcp_info);
      return 0;
    }
    default: return -ENOPROTOOPT;
    }
  }
  return -ENOPROTOOPT;
}

static unsigned events_of(const struct ustcp_stack *s, const struct tcb *t)
{
  /* Linux's tcp_poll, bit for bit: a CLOSED socket that had a connection has
   * both directions shut down (tcp_done), a never-connected one has neither;
   * HUP when both are shut or the socket is CLOSED; IN|RDHUP once reading is
   * shut; OUT when writable or when writing is shut (a write fails at once);
   * nothing readable or writable while the handshake is under way. */
  if (t->state == USTCP_LISTEN) return t->lst && t->lst->accept_head ? USTCP_POLLIN : 0;
  bool dead = t->state == USTCP_CLOSED && tcb_ever_connected(t);
  bool rd_shut = t->rcv_fin || t->shut_rd || dead;
  bool wr_shut = t->fin_queued || dead;
  unsigned ev = 0;
  if ((rd_shut && wr_shut) || t->state == USTCP_CLOSED) ev |= USTCP_POLLHUP;
  if (rd_shut) ev |= USTCP_POLLIN | USTCP_POLLRDHUP;
  if (t->state != USTCP_SYN_SENT && t->state != USTCP_SYN_RCVD) {
    if (t->rcvbuf.len > 0) ev |= USTCP_POLLIN;
    /* Linux's __sk_stream_is_writeable(sk, 1): room in the buffer and, under
     * TCP_NOTSENT_LOWAT, twice the unsent bytes below the limit
     * (tcp_stream_memory_free with wake = 1). */
    if (wr_shut || (ring_space(&t->sndbuf) > 0 && tcp_stream_memory_free(&s->eng, t, 1)))
      ev |= USTCP_POLLOUT;
  }
  if (t->so_error) ev |= USTCP_POLLERR;
  return ev;
}

int ustcp_sock_events(struct ustcp_stack *s, int fd)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  return (int)events_of(s, t);
}

/* Readiness callbacks are queued and run when the event ends
 * (stack_after_event), never from inside the engine: a callback may then call
 * any socket function, even one that frees the connection. */
static void sock_wake_cb(struct ustcp_stack *s, struct tcb *t)
{
  struct sock_table *tb = s->socks;
  if (!s->ready_fn || t->fd < 0 || t->wake_pending || !tb) return;
  if (tb->wake_len == tb->wake_cap) {
    uint32_t ncap = tb->wake_cap ? tb->wake_cap * 2 : 16;
    int *nv = tcp_sys_realloc(&s->eng, tb->wake_fds, ncap * sizeof *nv);
    if (!nv) {
      /* No memory to queue it: the callback is not lost, the dispatch finds
       * the block by its flag (issue 10 §7). */
      t->wake_pending = true;
      tb->wake_scan = true;
      return;
    }
    tb->wake_fds = nv;
    tb->wake_cap = ncap;
  }
  tb->wake_fds[tb->wake_len++] = t->fd;
  t->wake_pending = true;
}

static bool sock_dispatch(struct ustcp_stack *s)
{
  struct sock_table *tb = s->socks;
  if (!tb || (tb->wake_len == 0 && !tb->wake_scan)) return false;
  while (tb->wake_len > 0 || tb->wake_scan) {
    if (tb->wake_scan) {
      /* Wakes that found no room in the queue: every descriptor with its flag. */
      tb->wake_scan = false;
      for (uint32_t fd = 0; fd < tb->cap; fd++) {
        struct tcb *t = tb->by_fd[fd];
        if (!t || !t->wake_pending) continue;
        t->wake_pending = false;
        if (s->ready_fn) {
          s->cb_depth++;
          s->ready_fn(s->ready_ctx, (int)fd, events_of(s, t));
          s->cb_depth--;
        }
        tb = s->socks;
        if (!tb) return true;
      }
      continue;
    }
    /* Callbacks may queue more wakes: take one at a time from the front. */
    uint32_t i = 0;
    while (i < tb->wake_len) {
      int fd = tb->wake_fds[i++];
      struct tcb *t = get(s, fd);
      if (!t || !t->wake_pending) continue;
      t->wake_pending = false;
      if (s->ready_fn) {
        s->cb_depth++;
        s->ready_fn(s->ready_ctx, fd, events_of(s, t));
        s->cb_depth--;
      }
      tb = s->socks;
      if (!tb) return true;
    }
    tb->wake_len = 0;
  }
  return true;
}

static int sock_fd_of(struct ustcp_stack *s, int fd, uint64_t conn_id)
{
  struct tcb *t = get(s, fd);
  return t && t->conn_id == conn_id ? fd : -1;
}

int ustcp_inq(struct ustcp_stack *s, int fd)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (t->state == USTCP_LISTEN) return -EINVAL;
  uint32_t v = tcp_inq_hint(t);
  return v > INT32_MAX ? INT32_MAX : (int)v;
}

int ustcp_get_info(struct ustcp_stack *s, int fd, struct ustcp_tcp_info *info)
{
  if (refused(s)) return -EBUSY;
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!info) return -EFAULT;
  tcp_user_status(t, info);
  return 0;
}

int ustcp_get_linux_tcp_info(struct ustcp_stack *s, int fd, struct ustcp_linux_tcp_info *info)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!info) return -EFAULT;
  tcb_fill_linux_info(&s->eng, t, info);
  return 0;
}

static void add_row(struct ustcp_stack *s, struct ustcp_sock_row *rows, size_t cap, size_t *n, const struct tcb *t)
{
  if (*n < cap) {
    struct ustcp_sock_row *r = &rows[*n];
    r->fd = t->fd;
    r->state = t->state;
    stack_addr_from_ep(s, &t->local, v6_sock(t), &r->local);
    stack_addr_from_ep(s, &t->remote, v6_sock(t), &r->remote);
    r->recv_q = t->state == USTCP_LISTEN && t->lst ? t->lst->accept_q_len : t->rcvbuf.len;
    r->send_q = t->state == USTCP_LISTEN && t->lst ? t->lst->backlog : t->sndbuf.len;
    r->conn_id = t->conn_id;
  }
  (*n)++;
}

size_t ustcp_sock_table(struct ustcp_stack *s, struct ustcp_sock_row *rows, size_t cap)
{
  size_t n = 0;
  struct stack_hash *tables[2] = {&s->listeners, &s->conns};
  for (int k = 0; k < 2; k++)
    for (size_t i = 0; i < tables[k]->nbuckets; i++)
      for (const struct tcb *t = tables[k]->buckets[i]; t; t = t->hash_next)
        add_row(s, rows, cap, &n, t);
  if (s->socks)
    for (uint32_t i = 0; i < s->socks->cap; i++) {
      const struct tcb *t = s->socks->by_fd[i];
      if (t && !t->in_hash) add_row(s, rows, cap, &n, t);
    }
  return n;
}

/* Debug hook for invariant checks (src/stack/stack_check.c); never used by the
 * stack itself. */
struct tcb *sock_debug_tcb(struct ustcp_stack *s, int fd, uint32_t *fd_cap)
{
  if (fd_cap) *fd_cap = s->socks ? s->socks->cap : 0;
  return get(s, fd);
}

uint64_t sock_debug_fd_scan_steps(struct ustcp_stack *s)
{
  return s->socks ? s->socks->fd_scan_steps : 0;
}
