/* Issue 10 point 4 (A1, A4): callbacks are safe. Every callback the stack makes
 * (state event, readiness, output, capture) may call any function of the API on
 * the same stack, ustcp_close included, whatever the engine was doing when the
 * callback became due.
 *
 * The attack: an application (or a peer steering it) closes a socket from inside
 * a callback while the engine is in the middle of ending the very connection:
 * RST received, retransmission give-up, keepalive give-up, FIN in either
 * direction, abort, a listener closed with queued children, a refused or timed
 * out connect, the handshake completing. Before the fix the event callback ran
 * synchronously inside tcb_set_state, and close() freed the control block the
 * engine was still using: heap-use-after-free in tcb_close (ASan).
 *
 * The test explores every callback point: for each callback kind x closing path x
 * action it replays the scenario once per k = 1, 2, ..., and at the k-th callback
 * of that kind after the path starts it performs the action (close, abort,
 * shutdown, I/O, other calls, input from inside the callback). Afterwards the
 * stack must pass stack_check, every socket must close, every connection and
 * byte of memory must be released in time, and each connection's events must
 * chain (old state = previous new state) and name only live descriptors. Run it
 * under ASan (make test-asan): the memory errors are the point. */
#include "check.h"
#include "rawpeer.h"

enum kind { K_EVENT, K_READY, K_OUTPUT, K_CAPTURE, K_N };
static const char *const kind_name[K_N] = {"event", "ready", "output", "capture"};

enum path {
  P_RST,            /* ESTABLISHED, the peer resets */
  P_RTO,            /* data never acknowledged: retries2 give-up (ETIMEDOUT) */
  P_KEEPALIVE,      /* a silent peer: keepalive give-up */
  P_FIN_PASSIVE,    /* the peer's FIN: CLOSE_WAIT, then close: LAST_ACK, CLOSED */
  P_FIN_ACTIVE,     /* shutdown(SHUT_WR): FIN_WAIT_1, _2, TIME_WAIT, CLOSED */
  P_CLOSE_ACTIVE,   /* close(): the same as an orphan */
  P_ABORT,          /* close() with unread data: RST, CLOSED */
  P_LINGER0,        /* SO_LINGER 0 close: RST, CLOSED */
  P_LISTEN_CLOSE,   /* listener with accept-queue and SYN-queue children closed */
  P_CONNECT_RST,    /* SYN_SENT refused (RST|ACK) */
  P_CONNECT_TIMEOUT,/* SYN_SENT, syn_retries give-up */
  P_CONNECT_OK,     /* SYN_SENT -> ESTABLISHED (the third ACK goes out after the event) */
  P_N
};
static const char *const path_name[P_N] = {
  "rst", "rto", "keepalive", "fin-passive", "fin-active", "close-active", "abort",
  "linger0", "listen-close", "connect-rst", "connect-timeout", "connect-ok"};

enum action {
  A_CLOSE,          /* close(target) */
  A_LINGER0,        /* SO_LINGER 0 + close(target): RST */
  A_ABORT,          /* ustcp_stack_free refused (-EBUSY), then ustcp_abort(target) */
  A_SHUTDOWN,       /* shutdown(SHUT_RDWR) then close */
  A_IO,             /* send, recv, options, readiness, then close */
  A_MISC,           /* socket, connect, listen, accept, then close everything */
  A_INPUT,          /* a RST from the peer fed in from inside the callback, poll, close */
  A_N
};
static const char *const action_name[A_N] = {"close", "linger0", "abort", "shutdown", "io", "misc",
                                                 "input"};

#define PEER_PORT 40001
#define LPORT 80

static struct {
  struct rp r;
  enum kind kind;
  enum path path;
  enum action action;
  int fire_at, count;
  bool armed, fired, in_action;
  int target;                     /* the descriptor the action works on */
  struct rp_conn c;
  /* events seen, for the chain check */
  struct { uint64_t conn_id; int old_state, new_state; } ev[512];
  int nev;
  unsigned bad_fd_events;
} T;

static void peer_rst_now(void)
{
  rp_send_from(&T.r, RP_PEER_IP, T.c.peer_port ? T.c.peer_port : PEER_PORT,
               T.c.local_port ? T.c.local_port : LPORT, T.c.snd_nxt, 0, TCP_RST, 0, NULL, NULL, 0);
}

static void act(void)
{
  struct ustcp_stack *s = T.r.s;
  int fd = T.target;
  int rc;
  T.in_action = true;
  switch (T.action) {
  case A_CLOSE:
    rc = ustcp_close(s, fd);
    CHECK(rc == 0 || rc == -EBADF);
    break;
  case A_ABORT:
    /* The one refused call: the stack is in use below this callback. */
    CHECK_EQ(ustcp_stack_free(s), -EBUSY);
    rc = ustcp_abort(s, fd);
    CHECK(rc == 0 || rc == -EBADF);
    CHECK_EQ(ustcp_abort(s, fd), -EBADF);
    break;
  case A_LINGER0: {
    struct ustcp_linger lg = {1, 0};
    rc = ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_LINGER, &lg, sizeof lg);
    CHECK(rc == 0 || rc == -EBADF);
    rc = ustcp_close(s, fd);
    CHECK(rc == 0 || rc == -EBADF);
    break;
  }
  case A_SHUTDOWN:
    rc = ustcp_shutdown(s, fd, USTCP_SHUT_RDWR);
    CHECK(rc == 0 || rc == -ENOTCONN || rc == -EBADF);
    rc = ustcp_close(s, fd);
    CHECK(rc == 0 || rc == -EBADF);
    break;
  case A_IO: {
    char buf[64];
    ssize_t n = ustcp_send(s, fd, "reply", 5, 0);
    CHECK(n == 5 || n < 0);
    n = ustcp_recv(s, fd, buf, sizeof buf, 0);
    CHECK(n >= 0 || n == -EAGAIN || n == -ENOTCONN || n == -ECONNRESET || n == -ETIMEDOUT ||
          n == -ECONNREFUSED || n == -EBADF);
    struct ustcp_tcp_info ti;
    rc = ustcp_get_info(s, fd, &ti);
    CHECK(rc == 0 || rc == -EBADF);
    rc = ustcp_sock_events(s, fd);
    CHECK(rc >= 0 || rc == -EBADF);
    int one = 1;
    rc = ustcp_setsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &one, sizeof one);
    CHECK(rc == 0 || rc == -EBADF);
    (void)ustcp_sock_error(s, fd);
    rc = ustcp_close(s, fd);
    CHECK(rc == 0 || rc == -EBADF);
    break;
  }
  case A_MISC: {
    /* The target first (its descriptor number may be reused below). */
    struct ustcp_addr peer = {RP_PEER_IP, 9};
    rc = ustcp_accept(s, fd, NULL);
    CHECK(rc >= 0 || rc == -EAGAIN || rc == -EINVAL || rc == -EBADF);
    if (rc >= 0) CHECK_EQ(ustcp_close(s, rc), 0);
    rc = ustcp_connect(s, fd, &peer);
    CHECK(rc <= 0);
    rc = ustcp_close(s, fd);
    CHECK(rc == 0 || rc == -EBADF);
    int n1 = ustcp_socket(s);
    CHECK(n1 >= 0);
    rc = ustcp_connect(s, n1, &peer);
    CHECK_EQ(rc, -EINPROGRESS);
    int n2 = ustcp_socket(s);
    struct ustcp_addr any = {0, 8080};
    rc = ustcp_bind(s, n2, &any);
    if (rc == 0) rc = ustcp_listen(s, n2, 4);
    CHECK_EQ(rc, 0);
    CHECK_EQ(ustcp_accept(s, n2, NULL), -EAGAIN);
    CHECK_EQ(ustcp_close(s, n2), 0);
    CHECK_EQ(ustcp_close(s, n1), 0);
    break;
  }
  case A_INPUT:
    peer_rst_now();
    ustcp_poll(s, T.r.now);
    rc = ustcp_close(s, fd);
    CHECK(rc == 0 || rc == -EBADF);
    break;
  case A_N:
    break;
  }
  T.in_action = false;
}

static void hook(enum kind k)
{
  if (!T.armed || T.in_action || k != T.kind) return;
  if (++T.count != T.fire_at) return;
  T.fired = true;
  act();
}

static void on_out(void *ctx, const uint8_t *pkt, size_t len)
{
  rp_out(ctx, pkt, len);
  hook(K_OUTPUT);
}

static void on_event(void *ctx, const struct ustcp_event *ev)
{
  (void)ctx;
  if (T.nev < (int)(sizeof T.ev / sizeof T.ev[0])) {
    T.ev[T.nev].conn_id = ev->conn_id;
    T.ev[T.nev].old_state = ev->old_state;
    T.ev[T.nev].new_state = ev->new_state;
    T.nev++;
  }
  /* An event names the socket's descriptor only while that descriptor is open. */
  if (ev->fd >= 0 && ustcp_sock_events(T.r.s, ev->fd) < 0) T.bad_fd_events++;
  hook(K_EVENT);
}

static void on_ready(void *ctx, int fd, unsigned events)
{
  (void)ctx; (void)fd; (void)events;
  hook(K_READY);
}

static void on_capture(void *ctx, bool outgoing, const uint8_t *pkt, size_t len, uint64_t now)
{
  (void)ctx; (void)outgoing; (void)pkt; (void)len; (void)now;
  hook(K_CAPTURE);
}

/* The stack's next FIN, from what it sent: the peer then acknowledges it. */
static bool stack_fin(uint32_t *fin_seq)
{
  struct tcp_packet p;
  while (rp_next(&T.r, &p))
    if (p.tcp.flags & TCP_FIN) {
      *fin_seq = p.tcp.seq + (uint32_t)p.payload_len;
      return true;
    }
  return false;
}

/* A completed handshake left in the accept queue (no accept). */
static void queued_child(uint16_t pport, uint32_t isn)
{
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS;
  o.mss = 1460;
  rp_clear(&T.r);
  rp_send_from(&T.r, RP_PEER_IP, pport, LPORT, isn, 0, TCP_SYN, 65535, &o, NULL, 0);
  struct tcp_packet p;
  if (!rp_last(&T.r, &p)) return;
  rp_send_from(&T.r, RP_PEER_IP, pport, LPORT, isn + 1, p.tcp.seq + 1, TCP_ACK, 65535, NULL,
               NULL, 0);
}

static uint32_t connect_out(void)
{
  T.target = ustcp_socket(T.r.s);
  struct ustcp_addr a = {RP_PEER_IP, 5000};
  rp_clear(&T.r);
  CHECK_EQ(ustcp_connect(T.r.s, T.target, &a), -EINPROGRESS);
  struct tcp_packet p;
  memset(&p, 0, sizeof p);
  CHECK(rp_last(&T.r, &p) && (p.tcp.flags & TCP_SYN));
  struct ustcp_addr me;
  ustcp_getsockname(T.r.s, T.target, &me);
  T.c.peer_ip = RP_PEER_IP;
  T.c.peer_port = 5000;
  T.c.local_port = me.port;
  T.c.stack_isn = p.tcp.seq;
  T.c.rcv_nxt = p.tcp.seq + 1;
  T.c.snd_nxt = 7000;
  return p.tcp.seq;
}

/* Runs one scenario; returns whether the action fired. */
static bool scenario(enum kind k, enum path path, enum action a, int fire_at)
{
  memset(&T, 0, sizeof T);
  T.kind = k;
  T.path = path;
  T.action = a;
  T.fire_at = fire_at;
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.retries2 = 2;
  cfg.orphan_retries = 2;
  cfg.syn_retries = 1;
  cfg.synack_retries = 1;
  cfg.time_wait_us = 1 * USTCP_SEC;
  cfg.fin_timeout_us = 1 * USTCP_SEC;
  struct rp *r = &T.r;
  memset(r, 0, sizeof *r);
  r->keep = true;
  r->now = 1000;
  r->s = ustcp_stack_new(&cfg, RP_LOCAL_IP, 77 + (uint64_t)fire_at, on_out, r);
  if (!r->s) abort();
  ustcp_set_event_cb(r->s, on_event, NULL);
  ustcp_set_ready_cb(r->s, on_ready, NULL);
  ustcp_set_capture_cb(r->s, on_capture, NULL);
  ustcp_poll(r->s, r->now);

  int lfd = rp_listen(r, LPORT, 16);
  CHECK(lfd >= 0);
  bool needs_conn = path <= P_LINGER0;
  if (needs_conn) {
    int fd = rp_handshake_in(r, &T.c, lfd, RP_PEER_IP, PEER_PORT, LPORT, 1000, NULL);
    CHECK(fd >= 0);
    T.target = fd;
  }
  uint32_t fin_seq;
  struct tcp_packet p;
  switch (path) {
  case P_RST:
    T.armed = true;
    rp_seg(r, &T.c, TCP_RST, NULL, 0, 0);
    break;
  case P_RTO:
    CHECK_EQ(ustcp_send(r->s, T.target, "data", 4, 0), 4);
    T.armed = true;
    rp_advance(r, 60 * USTCP_SEC);
    break;
  case P_KEEPALIVE: {
    int one = 1, two = 2;
    ustcp_setsockopt(r->s, T.target, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPIDLE, &one, sizeof one);
    ustcp_setsockopt(r->s, T.target, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPINTVL, &one, sizeof one);
    ustcp_setsockopt(r->s, T.target, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPCNT, &two, sizeof two);
    ustcp_setsockopt(r->s, T.target, USTCP_SOL_SOCKET, USTCP_SO_KEEPALIVE, &one, sizeof one);
    T.armed = true;
    rp_advance(r, 30 * USTCP_SEC);
    break;
  }
  case P_FIN_PASSIVE: {
    rp_seg(r, &T.c, TCP_ACK | TCP_PSH, "hello", 5, 65535);
    char buf[16];
    CHECK_EQ(ustcp_recv(r->s, T.target, buf, sizeof buf, 0), 5);
    rp_clear(r);
    T.armed = true;
    rp_seg(r, &T.c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
    T.c.rcv_nxt = T.c.stack_isn + 1;
    ustcp_close(r->s, T.target);      /* EBADF if a callback closed it */
    if (stack_fin(&fin_seq)) {
      T.c.rcv_nxt = fin_seq + 1;
      rp_seg(r, &T.c, TCP_ACK, NULL, 0, 65535);
    }
    break;
  }
  case P_FIN_ACTIVE:
  case P_CLOSE_ACTIVE:
    rp_clear(r);
    T.armed = true;
    if (path == P_FIN_ACTIVE) ustcp_shutdown(r->s, T.target, USTCP_SHUT_WR);
    else ustcp_close(r->s, T.target);
    if (stack_fin(&fin_seq)) {
      T.c.rcv_nxt = fin_seq + 1;
      rp_seg(r, &T.c, TCP_ACK, NULL, 0, 65535);
      rp_seg(r, &T.c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
    }
    rp_advance(r, 3 * USTCP_SEC);
    break;
  case P_ABORT:
  case P_LINGER0:
    rp_seg(r, &T.c, TCP_ACK | TCP_PSH, "unread", 6, 65535);
    if (path == P_LINGER0) {
      struct ustcp_linger lg = {1, 0};
      ustcp_setsockopt(r->s, T.target, USTCP_SOL_SOCKET, USTCP_SO_LINGER, &lg, sizeof lg);
    }
    T.armed = true;
    ustcp_close(r->s, T.target);
    break;
  case P_LISTEN_CLOSE:
    queued_child(41001, 100000);
    queued_child(41002, 200000);
    rp_send_from(r, RP_PEER_IP, 41003, LPORT, 300000, 0, TCP_SYN, 65535, NULL, NULL, 0);
    T.target = lfd;
    T.armed = true;
    ustcp_close(r->s, lfd);
    break;
  case P_CONNECT_RST: {
    uint32_t iss = connect_out();
    T.armed = true;
    rp_send_from(r, RP_PEER_IP, 5000, T.c.local_port, 0, iss + 1, TCP_RST | TCP_ACK, 0, NULL,
                 NULL, 0);
    break;
  }
  case P_CONNECT_TIMEOUT:
    connect_out();
    T.armed = true;
    rp_advance(r, 30 * USTCP_SEC);
    break;
  case P_CONNECT_OK: {
    uint32_t iss = connect_out();
    T.armed = true;
    struct tcp_opts o = {0};
    o.present = TCP_OPT_HAS_MSS;
    o.mss = 1460;
    rp_send_from(r, RP_PEER_IP, 5000, T.c.local_port, 7000, iss + 1, TCP_SYN | TCP_ACK, 65535,
                 &o, NULL, 0);
    T.c.snd_nxt = 7001;
    rp_seg(r, &T.c, TCP_ACK | TCP_PSH, "x", 1, 65535);
    break;
  }
  case P_N:
    break;
  }
  (void)p;
  T.armed = false;
  CHECK(rp_stack_problem(r) == NULL);

  /* Whatever is left: every descriptor closes, every connection ends in time. */
  for (int fd = 0; fd < 64; fd++) {
    int rc = ustcp_close(r->s, fd);
    CHECK(rc == 0 || rc == -EBADF);
  }
  rp_advance(r, 400 * USTCP_SEC);
  CHECK(rp_stack_problem(r) == NULL);
  struct ustcp_stats st;
  ustcp_get_stats(r->s, &st);
  CHECK_EQ(st.conns_alive, 0);
  CHECK_EQ(st.mem_bytes, 0);

  /* Events arrive in order: per connection, each starts where the last ended. */
  for (int i = 0; i < T.nev; i++) {
    int prev = -1;
    for (int j = i - 1; j >= 0; j--)
      if (T.ev[j].conn_id == T.ev[i].conn_id) { prev = T.ev[j].new_state; break; }
    if (prev >= 0 && prev != T.ev[i].old_state) {
      fprintf(stderr, "%s/%s/%s@%d: conn %llu event %s->%s after %s\n", kind_name[k],
              path_name[path], action_name[a], fire_at, (unsigned long long)T.ev[i].conn_id,
              ustcp_state_name(T.ev[i].old_state), ustcp_state_name(T.ev[i].new_state),
              ustcp_state_name(prev));
      CHECK(false);
    }
  }
  CHECK_EQ(T.bad_fd_events, 0);
  bool fired = T.fired;
  rp_free(r);
  return fired;
}


/* ---- Two stacks wired back to back inside their output callbacks ----
 * A common harness: each stack's output callback hands the packet straight to the
 * other stack's ustcp_input, and the readiness callbacks send and receive. Every
 * packet is then an API call made from inside a callback of the other stack, and
 * every reply one made from inside this one's, a whole transfer deep. The stack
 * must deliver in order, complete the transfer byte for byte, and bound how
 * deeply callbacks nest (the C stack a transfer needs), whatever its length. */
#define W_BYTES (4u << 20)
static struct {
  struct ustcp_stack *a, *b;
  uint64_t now;
  int afd, lfd, bfd;
  uint64_t sent, received;
  uint32_t sum_sent, sum_received;
  int depth, max_depth;
  bool a_closed, b_eof;
  unsigned events;
} W;

static void w_out(struct ustcp_stack *to, const uint8_t *pkt, size_t len)
{
  W.depth++;
  if (W.depth > W.max_depth) W.max_depth = W.depth;
  ustcp_input(to, pkt, len, W.now);
  W.depth--;
}
static void w_out_a(void *ctx, const uint8_t *pkt, size_t len) { (void)ctx; w_out(W.b, pkt, len); }
static void w_out_b(void *ctx, const uint8_t *pkt, size_t len) { (void)ctx; w_out(W.a, pkt, len); }

static void w_pump_a(void)
{
  static uint8_t buf[16384];
  while (W.sent < W_BYTES && W.afd >= 0) {
    size_t n = sizeof buf;
    if (n > W_BYTES - W.sent) n = W_BYTES - W.sent;
    for (size_t i = 0; i < n; i++) buf[i] = (uint8_t)((W.sent + i) * 7u);
    ssize_t k = ustcp_send(W.a, W.afd, buf, n, 0);
    if (k <= 0) return;
    for (ssize_t i = 0; i < k; i++) W.sum_sent = W.sum_sent * 31u + buf[i];
    W.sent += (uint64_t)k;
  }
  if (W.sent == W_BYTES && !W.a_closed) {
    W.a_closed = true;
    CHECK_EQ(ustcp_close(W.a, W.afd), 0);   /* FIN after the data, from the callback */
    W.afd = -1;
  }
}

static void w_ready_a(void *ctx, int fd, unsigned ev)
{
  (void)ctx;
  if (fd == W.afd && (ev & USTCP_POLLOUT)) w_pump_a();
}

static void w_ready_b(void *ctx, int fd, unsigned ev)
{
  (void)ctx; (void)ev;
  if (fd == W.lfd) {
    int c = ustcp_accept(W.b, W.lfd, NULL);
    if (c >= 0) W.bfd = c;
    fd = W.bfd;
  }
  if (fd != W.bfd || W.bfd < 0) return;
  uint8_t buf[8192];
  ssize_t n;
  while ((n = ustcp_recv(W.b, W.bfd, buf, sizeof buf, 0)) > 0) {
    for (ssize_t i = 0; i < n; i++) W.sum_received = W.sum_received * 31u + buf[i];
    W.received += (uint64_t)n;
  }
  if (n == 0) {
    W.b_eof = true;
    CHECK_EQ(ustcp_close(W.b, W.bfd), 0);
    W.bfd = -1;
  }
}

static void w_event(void *ctx, const struct ustcp_event *ev)
{
  (void)ctx; (void)ev;
  W.events++;
}

static void stacks_wired_through_their_callbacks(void)
{
  memset(&W, 0, sizeof W);
  W.now = 1000;
  W.afd = W.lfd = W.bfd = -1;
  W.a = ustcp_stack_new(NULL, 0x0a000001u, 1, w_out_a, NULL);
  W.b = ustcp_stack_new(NULL, 0x0a000002u, 2, w_out_b, NULL);
  ustcp_set_ready_cb(W.a, w_ready_a, NULL);
  ustcp_set_ready_cb(W.b, w_ready_b, NULL);
  ustcp_set_event_cb(W.a, w_event, NULL);
  ustcp_set_event_cb(W.b, w_event, NULL);
  W.lfd = ustcp_socket(W.b);
  struct ustcp_addr la = {0, 80};
  CHECK_EQ(ustcp_bind(W.b, W.lfd, &la), 0);
  CHECK_EQ(ustcp_listen(W.b, W.lfd, 8), 0);
  W.afd = ustcp_socket(W.a);
  struct ustcp_addr ra = {0x0a000002u, 80};
  CHECK_EQ(ustcp_connect(W.a, W.afd, &ra), -EINPROGRESS);
  for (int i = 0; i < 200000 && !(W.b_eof && W.a_closed); i++) {
    W.now += 1000;
    ustcp_poll(W.a, W.now);
    ustcp_poll(W.b, W.now);
  }
  CHECK(W.a_closed && W.b_eof);
  CHECK_EQ(W.received, W_BYTES);
  CHECK_EQ(W.sum_received, W.sum_sent);
  /* Nesting is bounded (8 levels of delivery, two stacks), not a transfer deep. */
  printf("wired stacks: %llu bytes, %u events, callbacks nested at most %d deep\n",
         (unsigned long long)W.received, W.events, W.max_depth);
  CHECK(W.max_depth <= 16);
  /* The stack refuses to be freed from its own callback, and frees at top level. */
  CHECK_EQ(ustcp_stack_free(W.a), 0);
  CHECK_EQ(ustcp_stack_free(W.b), 0);
}

static int only_kind = -1;   /* argv[1]: one kind (event, ready, output, capture) */

static void every_callback_every_closing_path(void)
{
  unsigned runs = 0, fired_total = 0;
  for (int k = 0; k < K_N; k++) {
    if (only_kind >= 0 && k != only_kind) continue;
    for (int p = 0; p < P_N; p++) {
      int deepest = 0;
      for (int a = 0; a < A_N; a++)
        for (int at = 1; at <= 40; at++) {
          runs++;
          if (!scenario(k, p, a, at)) break;
          fired_total++;
          if (at > deepest) deepest = at;
        }
      /* Each path produces events and captured packets; output is absent where
       * a received RST ends it (nothing is sent), readiness where the
       * application itself closed the socket first. */
      bool app_closed = p == P_CLOSE_ACTIVE || p == P_ABORT || p == P_LINGER0 ||
                        p == P_LISTEN_CLOSE;
      bool sends_nothing = p == P_RST || p == P_CONNECT_RST;
      if (!(k == K_OUTPUT && sends_nothing) && !(k == K_READY && app_closed)) {
        if (deepest == 0) fprintf(stderr, "no %s callback on path %s\n", kind_name[k], path_name[p]);
        CHECK(deepest > 0);
      }
      printf("%-8s %-16s callback points: %d\n", kind_name[k], path_name[p], deepest);
    }
  }
  printf("%u scenarios, %u with an action inside a callback\n", runs, fired_total);
  CHECK(fired_total > (only_kind >= 0 ? 100u : 400u));
}

int main(int argc, char **argv)
{
  for (int k = 0; argc > 1 && k < K_N; k++)
    if (strcmp(argv[1], kind_name[k]) == 0) only_kind = k;
  RUN(every_callback_every_closing_path);
  if (only_kind < 0) RUN(stacks_wired_through_their_callbacks);
  return check_report();
}
