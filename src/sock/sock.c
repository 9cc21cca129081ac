/* src/sock: the BSD-socket-shaped API (A1, A2) on top of control blocks.
 *
 * A descriptor names one control block for its whole life: socket() creates a
 * CLOSED block, bind/listen/connect move it, close() gives it up (the engine then
 * finishes the close as an orphan, W1/W5/W7, or frees it at once). Every call
 * checks its arguments and the state first and returns a negative errno without
 * changing anything when they are wrong (Linux's errno choices). Nothing here
 * blocks: "would block" is -EAGAIN / -EINPROGRESS, and readiness is reported
 * through ustcp_sock_events() and the ready callback.
 */
#include <stdlib.h>
#include <string.h>
#include "stack/stack.h"
#include "stack/stack_check.h"

struct sock_table {
  struct tcb **by_fd;
  uint32_t cap;
  uint32_t used;
  uint32_t next_free_hint;
  int *wake_fds;                  /* descriptors with a readiness callback queued */
  uint32_t wake_len, wake_cap;
};

static void sock_wake_cb(struct ustcp_stack *s, struct tcb *t);
static void sock_free_all(struct ustcp_stack *s);
static bool sock_dispatch(struct ustcp_stack *s);

static struct sock_table *table(struct ustcp_stack *s)
{
  if (!s->socks) {
    s->socks = calloc(1, sizeof *s->socks);
    s->sock_wake = sock_wake_cb;
    s->sock_free = sock_free_all;
    s->sock_dispatch = sock_dispatch;
  }
  return s->socks;
}

static struct tcb *get(struct ustcp_stack *s, int fd)
{
  if (!s || !s->socks || fd < 0 || (uint32_t)fd >= s->socks->cap) return NULL;
  return s->socks->by_fd[fd];
}

static int fd_alloc(struct ustcp_stack *s, struct tcb *t)
{
  struct sock_table *tb = table(s);
  if (!tb) return -ENOMEM;
  if (tb->used >= s->cfg.max_sockets) return -EMFILE;
  for (uint32_t i = tb->next_free_hint; i < tb->cap; i++)
    if (!tb->by_fd[i]) {
      tb->by_fd[i] = t;
      tb->used++;
      tb->next_free_hint = i + 1;
      t->fd = (int)i;
      return (int)i;
    }
  for (uint32_t i = 0; i < tb->next_free_hint && i < tb->cap; i++)
    if (!tb->by_fd[i]) {
      tb->by_fd[i] = t;
      tb->used++;
      tb->next_free_hint = i + 1;
      t->fd = (int)i;
      return (int)i;
    }
  uint32_t ncap = tb->cap ? tb->cap * 2 : 64;
  struct tcb **nv = realloc(tb->by_fd, ncap * sizeof *nv);
  if (!nv) return -ENOMEM;
  memset(nv + tb->cap, 0, (ncap - tb->cap) * sizeof *nv);
  uint32_t i = tb->cap;
  tb->by_fd = nv;
  tb->cap = ncap;
  tb->by_fd[i] = t;
  tb->used++;
  tb->next_free_hint = i + 1;
  t->fd = (int)i;
  return (int)i;
}

static void fd_release(struct ustcp_stack *s, struct tcb *t)
{
  struct sock_table *tb = s->socks;
  if (t->fd >= 0 && (uint32_t)t->fd < tb->cap && tb->by_fd[t->fd] == t) {
    tb->by_fd[t->fd] = NULL;
    tb->used--;
    if ((uint32_t)t->fd < tb->next_free_hint) tb->next_free_hint = (uint32_t)t->fd;
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

static bool ever_connected(const struct tcb *t)
{
  return t->remote.port != 0;
}

int ustcp_bind(struct ustcp_stack *s, int fd, const struct ustcp_addr *addr)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!addr) return -EFAULT;
  if (t->state != USTCP_CLOSED || t->port_held || ever_connected(t)) return -EINVAL;
  if (addr->ip != 0 && addr->ip != s->local_ip) return -EADDRNOTAVAIL;
  uint16_t port = addr->port;
  if (port == 0) {
    port = stack_ephemeral_port(s, NULL, true);
    if (!port) return -EADDRINUSE;
  } else if (stack_port_users(s, port) > 0) {
    /* SO_REUSEADDR lets a port be bound again while others (TIME_WAIT, old
     * connections) hold it, but never next to a listener (Linux). */
    if (!t->reuseaddr || stack_lookup_listener(s, s->local_ip, port)) return -EADDRINUSE;
  }
  t->local.ip = addr->ip;
  t->local.port = port;
  stack_port_ref(s, port);
  t->port_held = true;
  return 0;
}

int ustcp_listen(struct ustcp_stack *s, int fd, int backlog)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (t->state == USTCP_LISTEN) {
    t->lst->backlog = u32_min(backlog < 0 ? 0 : (uint32_t)backlog, s->cfg.somaxconn);
    return 0;
  }
  if (t->state != USTCP_CLOSED || ever_connected(t)) return -EINVAL;
  if (!t->port_held) {
    struct ustcp_addr any = {0, 0};
    int rc = ustcp_bind(s, fd, &any);
    if (rc) return rc;
  } else {
    struct tcb *other = stack_lookup_listener(s, t->local.ip, t->local.port);
    if (other && other->local.ip == t->local.ip) return -EADDRINUSE;
  }
  int rc = tcp_listen_start(&s->eng, t, backlog);
  if (rc) return rc;
  s->eng.ops.hash_insert(&s->eng, t);
  return 0;
}

int ustcp_accept(struct ustcp_stack *s, int fd, struct ustcp_addr *peer)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (t->state != USTCP_LISTEN) return -EINVAL;
  if (!t->lst->accept_head) return -EAGAIN;
  if (s->socks->used >= s->cfg.max_sockets) return -EMFILE;
  struct tcb *c = tcp_listen_accept(&s->eng, t);
  int nfd = fd_alloc(s, c);
  if (nfd < 0) {
    /* Could not give it a descriptor: abort it rather than leak it. */
    tcp_send_rst(&s->eng, c);
    tcb_close(&s->eng, c, 0, USTCP_CAUSE_ERROR);
    return nfd;
  }
  if (peer) *peer = c->remote;
  /* readiness of the new socket may already be set (data, FIN) */
  sock_wake_cb(s, c);
  return nfd;
}

int ustcp_connect(struct ustcp_stack *s, int fd, const struct ustcp_addr *addr)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!addr) return -EFAULT;
  switch (t->state) {
  case USTCP_SYN_SENT: case USTCP_SYN_RCVD:
    return -EALREADY;
  case USTCP_CLOSED:
    /* Linux: a socket whose connect() was reported (or that was accepted) is
     * SS_CONNECTED: EISCONN after a reset too, leaving the error pending. */
    if (ever_connected(t) && !t->connect_unreported) return -EISCONN;
    if (t->so_error) {              /* the outcome of the previous attempt */
      int err = t->so_error;
      t->so_error = 0;
      t->connect_unreported = false;
      return err;
    }
    if (t->connect_unreported) {
      /* Linux: a failed attempt whose error was already taken (SO_ERROR)
       * reports ECONNABORTED to the next connect(). */
      t->connect_unreported = false;
      return -ECONNABORTED;
    }
    if (ever_connected(t)) return -EISCONN;
    break;
  default:
    /* Linux (__inet_stream_connect): the first connect() after a non-blocking
     * connect completed returns 0, later ones -EISCONN. */
    if (t->connect_unreported) {
      t->connect_unreported = false;
      return 0;
    }
    return -EISCONN;
  }
  if (addr->port == 0 || addr->ip == 0) return -EINVAL;
  struct tcp_engine *e = &s->eng;
  uint16_t lport = t->local.port;
  if (!t->port_held) {
    lport = stack_ephemeral_port(s, addr, false);
    if (!lport) return -EADDRNOTAVAIL;
  }
  /* W10: a 4-tuple still in use (TIME_WAIT included) cannot be reused. */
  if (stack_lookup(s, s->local_ip, lport, addr->ip, addr->port)) return -EADDRNOTAVAIL;
  t->local.ip = s->local_ip;
  t->local.port = lport;
  t->remote = *addr;
  t->rcv_mss = tcp_adv_mss(e, t);
  t->rcv_wscale = tcp_choose_wscale(e, t);
  t->snd_mss = t->rcv_mss;
  t->iss = tcp_isn(e, &t->local, &t->remote);
  t->snd_una = t->snd_nxt = t->snd_max = t->iss;
  t->snd_buf_seq = t->iss + 1;
  t->port_shared = !t->port_held;   /* picked here: other destinations may share it */
  e->ops.hash_insert(e, t);
  tcb_set_state(e, t, USTCP_SYN_SENT, USTCP_CAUSE_CALL);
  t->connect_unreported = true;
  tcp_output(e, t);
  after_call(s);
  return -EINPROGRESS;
}

ssize_t ustcp_send(struct ustcp_stack *s, int fd, const void *buf, size_t len, int flags)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (flags & USTCP_MSG_OOB) return -EOPNOTSUPP;
  if (!buf && len) return -EFAULT;
  switch (t->state) {
  case USTCP_ESTABLISHED: case USTCP_CLOSE_WAIT:
    if (t->fin_queued) return -EPIPE;
    break;
  case USTCP_SYN_SENT: case USTCP_SYN_RCVD:
    return -EAGAIN;
  case USTCP_CLOSED:
    if (t->so_error) {              /* ECONNRESET once, then EPIPE (POSIX/Linux) */
      int err = t->so_error;
      t->so_error = 0;
      return err;
    }
    /* Linux (sk_stream_wait_connect): EPIPE on a socket that is not
     * connecting, never-connected ones included; not ENOTCONN. */
    return -EPIPE;
  case USTCP_LISTEN:
    return -EPIPE;
  default:
    return -EPIPE;                  /* our FIN is out: FIN_WAIT_*, CLOSING, LAST_ACK, TIME_WAIT */
  }
  if (len == 0) return 0;
  if (len > UINT32_MAX) len = UINT32_MAX;
  uint32_t n = ring_write(&s->eng, &t->sndbuf, buf, (uint32_t)len);
  if (n == 0) return ring_space(&t->sndbuf) ? -ENOMEM : -EAGAIN;
  tcp_output(&s->eng, t);
  after_call(s);
  return (ssize_t)n;
}

ssize_t ustcp_recv(struct ustcp_stack *s, int fd, void *buf, size_t len, int flags)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (flags & USTCP_MSG_OOB) return -EOPNOTSUPP;
  if (!buf && len) return -EFAULT;
  if (t->state == USTCP_LISTEN) return -ENOTCONN;
  if (t->state == USTCP_CLOSED && !ever_connected(t)) return -ENOTCONN;
  if (len == 0) return 0;
  if (t->rcvbuf.len > 0 && !t->shut_rd) {
    uint32_t want = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    uint32_t n = ring_read(&t->rcvbuf, buf, want, !(flags & USTCP_MSG_PEEK));
    if (!(flags & USTCP_MSG_PEEK) && tcb_has_conn_state(t->state) && !t->rcv_fin) {
      /* Window update when reading opened the window by a useful amount
       * (RFC 9293 §3.8.6.2.2: at least min(buffer/2, MSS)). */
      /* Only what the window field can carry counts (65535 << rcv_wscale). */
      uint32_t space = u32_min(ring_space(&t->rcvbuf), 65535u << t->rcv_wscale);
      uint32_t new_edge = t->rcv_nxt + space;
      /* A standalone update only helps a sender that the window may be holding
       * back: when what is left of the advertised window is small. Otherwise
       * the next ACK carries the larger window for free (e.g. after a SYN-ACK's
       * unscaled 65535 the first read would always have sent one). */
      uint32_t left = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
      bool sender_may_wait = left < t->rcvbuf.cap / 4 || left < 2u * t->rcv_mss;
      if (sender_may_wait && seq_geq(new_edge, t->rcv_adv) &&
          new_edge - t->rcv_adv >= u32_min(t->rcvbuf.cap / 2, 2u * t->rcv_mss) &&
          t->state != USTCP_SYN_SENT && t->state != USTCP_SYN_RCVD) {
        t->ack_now = true;
        tcp_output(&s->eng, t);
        after_call(s);
      }
    }
    return (ssize_t)n;
  }
  if (t->so_error) {
    int err = t->so_error;
    t->so_error = 0;
    return err;
  }
  if (t->rcv_fin || t->shut_rd || t->state == USTCP_CLOSED) return 0;
  return -EAGAIN;
}

int ustcp_shutdown(struct ustcp_stack *s, int fd, int how)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (how != USTCP_SHUT_RD && how != USTCP_SHUT_WR && how != USTCP_SHUT_RDWR) return -EINVAL;
  switch (t->state) {
  case USTCP_ESTABLISHED: case USTCP_CLOSE_WAIT: case USTCP_FIN_WAIT_1:
  case USTCP_FIN_WAIT_2: case USTCP_CLOSING: case USTCP_LAST_ACK: case USTCP_TIME_WAIT:
    break;
  case USTCP_LISTEN:
    /* Linux (inet_shutdown): SHUT_WR does nothing; SHUT_RD stops listening
     * (queued children are reset) and the socket may listen again. */
    if (how != USTCP_SHUT_WR) {
      tcb_close(&s->eng, t, 0, USTCP_CAUSE_CALL);
      after_call(s);
    }
    return 0;
  case USTCP_SYN_SENT:
    /* Linux (inet_shutdown -> tcp_disconnect): the attempt is aborted and
     * reported as ECONNRESET. */
    tcb_close(&s->eng, t, -ECONNRESET, USTCP_CAUSE_CALL);
    after_call(s);
    return 0;
  default:
    return -ENOTCONN;
  }
  if (how != USTCP_SHUT_WR) t->shut_rd = true;
  if (how != USTCP_SHUT_RD && !t->fin_queued &&
      (t->state == USTCP_ESTABLISHED || t->state == USTCP_CLOSE_WAIT)) {
    t->fin_queued = true;
    t->fin_seq = t->snd_buf_seq + t->sndbuf.len;
    tcb_set_state(&s->eng, t, t->state == USTCP_ESTABLISHED ? USTCP_FIN_WAIT_1 : USTCP_LAST_ACK,
                  USTCP_CAUSE_CALL);
    tcp_output(&s->eng, t);
    after_call(s);
  }
  return 0;
}

int ustcp_close(struct ustcp_stack *s, int fd)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  struct tcp_engine *e = &s->eng;
  fd_release(s, t);
  t->orphan = true;
  bool abortive = t->linger_on && t->linger_s == 0;
  switch (t->state) {
  case USTCP_CLOSED:
    tcb_free(e, t);
    break;
  case USTCP_LISTEN:
  case USTCP_SYN_SENT:
    tcb_close(e, t, 0, USTCP_CAUSE_CALL);
    break;
  case USTCP_SYN_RCVD:
    tcp_send_rst(e, t);
    tcb_close(e, t, 0, USTCP_CAUSE_CALL);
    break;
  case USTCP_ESTABLISHED: case USTCP_CLOSE_WAIT:
    if (abortive || t->rcvbuf.len > 0) {
      /* SO_LINGER 0, or unread data: abort with RST (RFC 9293 §3.10.4, RFC 2525
       * §2.17), so the peer knows its data was not consumed. */
      tcp_send_rst(e, t);
      tcb_close(e, t, 0, USTCP_CAUSE_CALL);
      break;
    }
    t->fin_queued = true;
    t->fin_seq = t->snd_buf_seq + t->sndbuf.len;
    tcb_set_state(e, t, t->state == USTCP_ESTABLISHED ? USTCP_FIN_WAIT_1 : USTCP_LAST_ACK,
                  USTCP_CAUSE_CALL);
    tcp_output(e, t);
    break;
  case USTCP_FIN_WAIT_2:
    if (abortive) {
      tcp_send_rst(e, t);
      tcb_close(e, t, 0, USTCP_CAUSE_CALL);
      break;
    }
    /* W7: after shutdown(SHUT_WR) the socket waited without limit; as an orphan
     * it waits at most fin_timeout. */
    t->close_at_us = e->now_us + s->cfg.fin_timeout_us;
    timer_update(e, t);
    break;
  case USTCP_FIN_WAIT_1: case USTCP_CLOSING: case USTCP_LAST_ACK:
    if (abortive) {
      tcp_send_rst(e, t);
      tcb_close(e, t, 0, USTCP_CAUSE_CALL);
    }
    break;
  case USTCP_TIME_WAIT:
    break;
  }
  after_call(s);
  return 0;
}

int ustcp_getsockname(struct ustcp_stack *s, int fd, struct ustcp_addr *addr)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!addr) return -EFAULT;
  *addr = t->local;
  return 0;
}

int ustcp_getpeername(struct ustcp_stack *s, int fd, struct ustcp_addr *addr)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!addr) return -EFAULT;
  /* Linux (inet_getname): no peer while CLOSED or SYN_SENT, even after a
   * connection existed. */
  if (!ever_connected(t) || t->state == USTCP_LISTEN || t->state == USTCP_CLOSED ||
      t->state == USTCP_SYN_SENT)
    return -ENOTCONN;
  *addr = t->remote;
  return 0;
}

int ustcp_sock_error(struct ustcp_stack *s, int fd)
{
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
  if (cap < r->len) return -EINVAL;
  if (!r->data) { r->cap = cap; return 0; }
  uint8_t *nd = tcp_alloc(e, cap);
  if (!nd) return -ENOMEM;
  ring_copy_out(r, 0, nd, r->len);
  tcp_free_mem(e, r->data, r->cap);
  r->data = nd;
  r->cap = cap;
  r->head = 0;
  return 0;
}

int ustcp_setsockopt(struct ustcp_stack *s, int fd, int level, int name,
                     const void *val, size_t len)
{
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
      return resize_ring(e, &t->sndbuf, u32_min(u32_max((uint32_t)v, 2048), s->cfg.wmem_max));
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
      t->nodelay = v != 0;
      if (t->nodelay) { tcp_output(e, t); after_call(s); }
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

int ustcp_getsockopt(struct ustcp_stack *s, int fd, int level, int name,
                     void *val, size_t *len)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (level == USTCP_SOL_SOCKET) {
    switch (name) {
    case USTCP_SO_REUSEADDR: return put_int(val, len, t->reuseaddr);
    case USTCP_SO_KEEPALIVE: return put_int(val, len, t->keepalive);
    case USTCP_SO_SNDBUF: return put_int(val, len, (int)t->sndbuf.cap);
    case USTCP_SO_RCVBUF: return put_int(val, len, (int)t->rcvbuf.cap);
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
  if (level == USTCP_IPPROTO_TCP) {
    switch (name) {
    case USTCP_TCP_NODELAY: return put_int(val, len, t->nodelay);
    case USTCP_TCP_MAXSEG: return put_int(val, len, t->snd_mss ? t->snd_mss : tcp_adv_mss(&s->eng, t));
    case USTCP_TCP_KEEPIDLE: return put_int(val, len, (int)t->keepidle_s);
    case USTCP_TCP_KEEPINTVL: return put_int(val, len, (int)t->keepintvl_s);
    case USTCP_TCP_KEEPCNT: return put_int(val, len, (int)t->keepcnt);
    case USTCP_TCP_QUICKACK: return put_int(val, len, t->quickack);
    case USTCP_TCP_INFO: {
      if (!val || !len) return -EFAULT;
      if (*len < sizeof(struct ustcp_tcp_info)) return -EINVAL;
      tcb_fill_info(t, val);
      *len = sizeof(struct ustcp_tcp_info);
      return 0;
    }
    default: return -ENOPROTOOPT;
    }
  }
  return -ENOPROTOOPT;
}

static unsigned events_of(const struct tcb *t)
{
  /* Linux's tcp_poll, bit for bit: a CLOSED socket that had a connection has
   * both directions shut down (tcp_done), a never-connected one has neither;
   * HUP when both are shut or the socket is CLOSED; IN|RDHUP once reading is
   * shut; OUT when writable or when writing is shut (a write fails at once);
   * nothing readable or writable while the handshake is under way. */
  if (t->state == USTCP_LISTEN) return t->lst && t->lst->accept_head ? USTCP_POLLIN : 0;
  bool dead = t->state == USTCP_CLOSED && ever_connected(t);
  bool rd_shut = t->rcv_fin || t->shut_rd || dead;
  bool wr_shut = t->fin_queued || dead;
  unsigned ev = 0;
  if ((rd_shut && wr_shut) || t->state == USTCP_CLOSED) ev |= USTCP_POLLHUP;
  if (rd_shut) ev |= USTCP_POLLIN | USTCP_POLLRDHUP;
  if (t->state != USTCP_SYN_SENT && t->state != USTCP_SYN_RCVD) {
    if (t->rcvbuf.len > 0) ev |= USTCP_POLLIN;
    if (wr_shut || ring_space(&t->sndbuf) > 0) ev |= USTCP_POLLOUT;
  }
  if (t->so_error) ev |= USTCP_POLLERR;
  return ev;
}

int ustcp_sock_events(struct ustcp_stack *s, int fd)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  return (int)events_of(t);
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
    int *nv = realloc(tb->wake_fds, ncap * sizeof *nv);
    if (!nv) return;
    tb->wake_fds = nv;
    tb->wake_cap = ncap;
  }
  tb->wake_fds[tb->wake_len++] = t->fd;
  t->wake_pending = true;
}

static bool sock_dispatch(struct ustcp_stack *s)
{
  struct sock_table *tb = s->socks;
  if (!tb || tb->wake_len == 0) return false;
  /* Callbacks may queue more wakes: take one at a time from the front. */
  uint32_t i = 0;
  while (i < tb->wake_len) {
    int fd = tb->wake_fds[i++];
    struct tcb *t = get(s, fd);
    if (!t || !t->wake_pending) continue;
    t->wake_pending = false;
    if (s->ready_fn) s->ready_fn(s->ready_ctx, fd, events_of(t));
    tb = s->socks;
    if (!tb) return true;
  }
  tb->wake_len = 0;
  return true;
}

int ustcp_get_info(struct ustcp_stack *s, int fd, struct ustcp_tcp_info *info)
{
  struct tcb *t = get(s, fd);
  if (!t) return -EBADF;
  if (!info) return -EFAULT;
  tcb_fill_info(t, info);
  return 0;
}

static void add_row(struct ustcp_sock_row *rows, size_t cap, size_t *n, const struct tcb *t)
{
  if (*n < cap) {
    struct ustcp_sock_row *r = &rows[*n];
    r->fd = t->fd;
    r->state = t->state;
    r->local = t->local;
    r->remote = t->remote;
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
        add_row(rows, cap, &n, t);
  if (s->socks)
    for (uint32_t i = 0; i < s->socks->cap; i++) {
      const struct tcb *t = s->socks->by_fd[i];
      if (t && !t->in_hash) add_row(rows, cap, &n, t);
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
