/* The socket API, table-driven (A1, A2): every call in every state a socket can
 * be in, with the errno Linux returns. The expected values were read from the
 * Linux kernel itself (python3 sockets over 127.0.0.1 on Linux 6.x, non-blocking)
 * or, for states loopback cannot hold (FIN_WAIT_1), from the kernel's code
 * (__inet_stream_connect, inet_listen, inet_shutdown, inet_getname,
 * tcp_sendmsg_locked/sk_stream_wait_connect, tcp_recvmsg, tcp_poll).
 *
 * Each cell builds its state from scratch (client stack 10.0.0.1, server stack
 * 10.0.0.2, 5 ms apart), makes one call, and checks the result; a call that
 * fails must change nothing: the socket's state and its sock_table row are as
 * before.
 *
 * Known divergences from Linux, left out of the table:
 *  - bind() on a socket whose connection was reset or refused: Linux releases an
 *    auto-bound port when the connection dies and allows bind (0); ustcp keeps
 *    the port and returns EINVAL.
 *  - connect() after a refused attempt has been reported: Linux starts a new
 *    attempt (EINPROGRESS); ustcp returns EISCONN (a socket connects once).
 *  - SO_REUSEADDR: Linux lets a port be shared only if every holder set it; ustcp
 *    checks only the socket being bound.
 */
#include "check.h"
#include "simnet.h"

#define CLIENT_IP 0x0a000001u
#define SERVER_IP 0x0a000002u
#define MS USTCP_MSEC
#define SEC USTCP_SEC

enum st {
  S_FRESH, S_BOUND, S_LISTEN, S_SYN_SENT, S_ESTABLISHED, S_CLOSE_WAIT, S_FIN_WAIT_1,
  S_FIN_WAIT_2, S_RESET, S_REFUSED, S_CLOSED_FD, S_COUNT
};
static const char *const st_name[S_COUNT] = {
  "fresh", "bound", "LISTEN", "SYN_SENT", "ESTABLISHED", "CLOSE_WAIT", "FIN_WAIT_1",
  "FIN_WAIT_2", "closed-after-reset", "closed-after-refused", "closed fd (TIME_WAIT or gone)"};
/* The engine state each fixture leaves the socket in (-1: no descriptor). */
static const int st_state[S_COUNT] = {
  USTCP_CLOSED, USTCP_CLOSED, USTCP_LISTEN, USTCP_SYN_SENT, USTCP_ESTABLISHED,
  USTCP_CLOSE_WAIT, USTCP_FIN_WAIT_1, USTCP_FIN_WAIT_2, USTCP_CLOSED, USTCP_CLOSED, -1};

struct fx {
  struct simnet sn;
  struct ustcp_stack *c, *s;
  int fd;          /* the socket under test, on c */
  int lfd, sfd;    /* server listener and accepted socket */
};

static const struct ustcp_addr SERVER = {SERVER_IP, 80};
static const struct ustcp_addr NOPORT = {SERVER_IP, 81};
static const struct ustcp_addr BOUND = {CLIENT_IP, 5000};

static void fx_open(struct fx *f, enum st st)
{
  memset(f, 0, sizeof *f);
  sn_init(&f->sn, 77 + (uint64_t)st);
  f->c = sn_add(&f->sn, "client", CLIENT_IP, NULL);
  f->s = sn_add(&f->sn, "server", SERVER_IP, NULL);
  struct sim_link_cfg lc = {.delay_us = 5 * MS};
  sim_set_all_links(f->sn.net, &lc);
  f->lfd = ustcp_socket(f->s);
  CHECK_EQ(ustcp_bind(f->s, f->lfd, &SERVER), 0);
  CHECK_EQ(ustcp_listen(f->s, f->lfd, 8), 0);
  f->sfd = -1;
  f->fd = ustcp_socket(f->c);
  CHECK(f->fd >= 0);
  switch (st) {
  case S_FRESH:
    break;
  case S_BOUND:
    CHECK_EQ(ustcp_bind(f->c, f->fd, &BOUND), 0);
    break;
  case S_LISTEN:
    CHECK_EQ(ustcp_bind(f->c, f->fd, &BOUND), 0);
    CHECK_EQ(ustcp_listen(f->c, f->fd, 4), 0);
    break;
  case S_SYN_SENT:
    sim_link(f->sn.net, 0, 1)->down = true;        /* the SYN goes nowhere */
    CHECK_EQ(ustcp_connect(f->c, f->fd, &SERVER), -EINPROGRESS);
    sn_advance(&f->sn, 100 * MS);
    break;
  case S_REFUSED:
    CHECK_EQ(ustcp_connect(f->c, f->fd, &NOPORT), -EINPROGRESS);
    sn_advance(&f->sn, 100 * MS);
    break;
  default:
    CHECK_EQ(ustcp_connect(f->c, f->fd, &SERVER), -EINPROGRESS);
    sn_advance(&f->sn, 100 * MS);
    CHECK_EQ(ustcp_connect(f->c, f->fd, &SERVER), 0);   /* the outcome, once */
    f->sfd = ustcp_accept(f->s, f->lfd, NULL);
    CHECK(f->sfd >= 0);
    break;
  }
  switch (st) {
  case S_CLOSE_WAIT:
    CHECK_EQ(ustcp_close(f->s, f->sfd), 0);
    sn_advance(&f->sn, 100 * MS);
    break;
  case S_FIN_WAIT_1:
    sim_link(f->sn.net, 1, 0)->down = true;        /* our FIN is never acknowledged */
    CHECK_EQ(ustcp_shutdown(f->c, f->fd, USTCP_SHUT_WR), 0);
    sn_advance(&f->sn, 100 * MS);
    break;
  case S_FIN_WAIT_2:
    CHECK_EQ(ustcp_shutdown(f->c, f->fd, USTCP_SHUT_WR), 0);
    sn_advance(&f->sn, 100 * MS);
    break;
  case S_RESET: {
    struct ustcp_linger lg = {1, 0};
    CHECK_EQ(ustcp_setsockopt(f->s, f->sfd, USTCP_SOL_SOCKET, USTCP_SO_LINGER, &lg, sizeof lg), 0);
    CHECK_EQ(ustcp_close(f->s, f->sfd), 0);
    sn_advance(&f->sn, 100 * MS);
    break;
  }
  case S_CLOSED_FD:
    CHECK_EQ(ustcp_close(f->c, f->fd), 0);
    sn_advance(&f->sn, 100 * MS);
    break;
  default:
    break;
  }
  if (st_state[st] >= 0) CHECK_EQ(sn_state(f->c, f->fd), st_state[st]);
}

static void fx_close(struct fx *f)
{
  sn_free(&f->sn);
}

/* The socket's row in the sock_table, for "an error changed nothing". */
static bool row_of(struct ustcp_stack *s, int fd, struct ustcp_sock_row *out)
{
  struct ustcp_sock_row rows[32];
  size_t n = ustcp_sock_table(s, rows, 32);
  for (size_t i = 0; i < n && i < 32; i++)
    if (rows[i].fd == fd) { *out = rows[i]; return true; }
  return false;
}

enum call {
  C_BIND, C_LISTEN, C_ACCEPT, C_CONNECT, C_SEND, C_RECV, C_SHUTDOWN, C_CLOSE,
  C_SETSOCKOPT, C_GETSOCKOPT, C_GETSOCKNAME, C_GETPEERNAME, C_EVENTS, C_COUNT
};
static const char *const call_name[C_COUNT] = {
  "bind", "listen", "accept", "connect", "send", "recv", "shutdown(SHUT_WR)", "close",
  "setsockopt(TCP_NODELAY)", "getsockopt(SO_ERROR)", "getsockname", "getpeername",
  "sock_events"};

static int do_call(struct fx *f, enum call c, int fd)
{
  struct ustcp_stack *s = f->c;
  struct ustcp_addr a;
  char buf[16];
  int one = 1, v = 0;
  size_t len = sizeof v;
  switch (c) {
  case C_BIND: { struct ustcp_addr b = {CLIENT_IP, 6000}; return ustcp_bind(s, fd, &b); }
  case C_LISTEN: return ustcp_listen(s, fd, 4);
  case C_ACCEPT: return ustcp_accept(s, fd, &a);
  case C_CONNECT: return ustcp_connect(s, fd, &SERVER);
  case C_SEND: return (int)ustcp_send(s, fd, "x", 1, 0);
  case C_RECV: return (int)ustcp_recv(s, fd, buf, sizeof buf, 0);
  case C_SHUTDOWN: return ustcp_shutdown(s, fd, USTCP_SHUT_WR);
  case C_CLOSE: return ustcp_close(s, fd);
  case C_SETSOCKOPT: return ustcp_setsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &one, sizeof one);
  case C_GETSOCKOPT: {
    int rc = ustcp_getsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_ERROR, &v, &len);
    return rc ? rc : v;            /* the pending error, positive as in Linux */
  }
  case C_GETSOCKNAME: return ustcp_getsockname(s, fd, &a);
  case C_GETPEERNAME: return ustcp_getpeername(s, fd, &a);
  case C_EVENTS: return ustcp_sock_events(s, fd);
  default: return -9999;
  }
}

#define SKIP 12345   /* a known divergence (see the file comment) */
#define IN USTCP_POLLIN
#define OUT USTCP_POLLOUT
#define ERR USTCP_POLLERR
#define HUP USTCP_POLLHUP
#define RDHUP USTCP_POLLRDHUP

/* want[state][call]: Linux's result (0, a byte count, a negative errno, the
 * SO_ERROR value, or the poll bits). */
static const int want[S_COUNT][C_COUNT] = {
  /*               bind     listen   accept   connect        send           recv           shutdown   close setsockopt getsockopt     getsockname getpeername events */
  [S_FRESH]      = {0,      0,       -EINVAL, -EINPROGRESS,  -EPIPE,        -ENOTCONN,     -ENOTCONN, 0,    0,         0,             0,          -ENOTCONN,  OUT | HUP},
  [S_BOUND]      = {-EINVAL, 0,      -EINVAL, -EINPROGRESS,  -EPIPE,        -ENOTCONN,     -ENOTCONN, 0,    0,         0,             0,          -ENOTCONN,  OUT | HUP},
  [S_LISTEN]     = {-EINVAL, 0,      -EAGAIN, -EISCONN,      -EPIPE,        -ENOTCONN,     0,         0,    0,         0,             0,          -ENOTCONN,  0},
  [S_SYN_SENT]   = {-EINVAL, -EINVAL, -EINVAL, -EALREADY,    -EAGAIN,       -EAGAIN,       0,         0,    0,         0,             0,          -ENOTCONN,  0},
  [S_ESTABLISHED]= {-EINVAL, -EINVAL, -EINVAL, -EISCONN,     1,             -EAGAIN,       0,         0,    0,         0,             0,          0,          OUT},
  [S_CLOSE_WAIT] = {-EINVAL, -EINVAL, -EINVAL, -EISCONN,     1,             0,             0,         0,    0,         0,             0,          0,          IN | OUT | RDHUP},
  [S_FIN_WAIT_1] = {-EINVAL, -EINVAL, -EINVAL, -EISCONN,     -EPIPE,        -EAGAIN,       0,         0,    0,         0,             0,          0,          OUT},
  [S_FIN_WAIT_2] = {-EINVAL, -EINVAL, -EINVAL, -EISCONN,     -EPIPE,        -EAGAIN,       0,         0,    0,         0,             0,          0,          OUT},
  [S_RESET]      = {SKIP,   -EINVAL, -EINVAL, -EISCONN,      -ECONNRESET,   -ECONNRESET,   -ENOTCONN, 0,    0,         ECONNRESET,    0,          -ENOTCONN,  IN | OUT | ERR | HUP | RDHUP},
  [S_REFUSED]    = {SKIP,   -EINVAL, -EINVAL, -ECONNREFUSED, -ECONNREFUSED, -ECONNREFUSED, -ENOTCONN, 0,    0,         ECONNREFUSED,  0,          -ENOTCONN,  IN | OUT | ERR | HUP | RDHUP},
  [S_CLOSED_FD]  = {-EBADF, -EBADF,  -EBADF,  -EBADF,        -EBADF,        -EBADF,        -EBADF,    -EBADF, -EBADF,  -EBADF,        -EBADF,     -EBADF,     -EBADF},
};

/* A1, A2: the whole table. */
static void A1_A2_call_state_table(void)
{
  static struct fx f;
  for (int st = 0; st < S_COUNT; st++) {
    for (int c = 0; c < C_COUNT; c++) {
      int w = want[st][c];
      if (w == SKIP) continue;
      fx_open(&f, (enum st)st);
      struct ustcp_sock_row before, after;
      bool had_row = st_state[st] >= 0 && row_of(f.c, f.fd, &before);
      int got = do_call(&f, (enum call)c, f.fd);
      if (got != w) {
        check_failed++;
        fprintf(stderr, "A2 table: %s in %s returned %d, Linux: %d\n", call_name[c],
                st_name[st], got, w);
      } else {
        check_passed++;
      }
      /* A failing call (negative errno) changed nothing. sock_events never
       * changes anything. The pending error of a dead connection is consumed by
       * the call that reports it, as in Linux, which is not a state change. */
      if (((got < 0 && got != -EINPROGRESS) || c == C_EVENTS) && had_row) {
        CHECK(row_of(f.c, f.fd, &after));
        CHECK_EQ(after.state, before.state);
        CHECK_EQ(after.local.port, before.local.port);
        CHECK_EQ(after.local.ip, before.local.ip);
        CHECK_EQ(after.remote.port, before.remote.port);
        CHECK_EQ(after.remote.ip, before.remote.ip);
        CHECK_EQ(after.recv_q, before.recv_q);
        CHECK_EQ(after.send_q, before.send_q);
        CHECK_EQ(after.conn_id, before.conn_id);
      }
      fx_close(&f);
    }
  }
}

/* What the successful cells did, and the calls' second results. */
static void A1_transitions(void)
{
  static struct fx f;
  struct ustcp_addr a;
  char b[8];

  /* fresh: listen binds an ephemeral port; getsockname is 0.0.0.0:0 before */
  fx_open(&f, S_FRESH);
  CHECK_EQ(ustcp_getsockname(f.c, f.fd, &a), 0);
  CHECK_EQ(a.ip, 0);
  CHECK_EQ(a.port, 0);
  CHECK_EQ(ustcp_listen(f.c, f.fd, 1), 0);
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_LISTEN);
  CHECK_EQ(ustcp_getsockname(f.c, f.fd, &a), 0);
  CHECK(a.port >= 32768 && a.port <= 60999);
  fx_close(&f);

  /* bound: getsockname is the bound address */
  fx_open(&f, S_BOUND);
  CHECK_EQ(ustcp_getsockname(f.c, f.fd, &a), 0);
  CHECK_EQ(a.ip, BOUND.ip);
  CHECK_EQ(a.port, BOUND.port);
  fx_close(&f);

  /* LISTEN: shutdown(SHUT_WR) does nothing; shutdown(SHUT_RD) stops listening,
   * accept then fails with EINVAL, and listen works again (Linux). */
  fx_open(&f, S_LISTEN);
  CHECK_EQ(ustcp_shutdown(f.c, f.fd, USTCP_SHUT_WR), 0);
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_LISTEN);
  CHECK_EQ(ustcp_shutdown(f.c, f.fd, USTCP_SHUT_RD), 0);
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_CLOSED);
  CHECK_EQ(ustcp_accept(f.c, f.fd, NULL), -EINVAL);
  CHECK_EQ(ustcp_listen(f.c, f.fd, 1), 0);
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_LISTEN);
  fx_close(&f);

  /* SYN_SENT: shutdown aborts the attempt (Linux: tcp_disconnect, ECONNRESET) */
  fx_open(&f, S_SYN_SENT);
  CHECK_EQ(ustcp_connect(f.c, f.fd, &SERVER), -EALREADY);
  CHECK_EQ(ustcp_shutdown(f.c, f.fd, USTCP_SHUT_RDWR), 0);
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_CLOSED);
  CHECK_EQ(ustcp_sock_error(f.c, f.fd), -ECONNRESET);
  CHECK_EQ(ustcp_sock_events(f.c, f.fd), OUT | HUP | IN | RDHUP);
  fx_close(&f);

  /* ESTABLISHED: connect() reports success once, then EISCONN; an accepted
   * socket was never connecting: EISCONN at once. */
  fx_open(&f, S_FRESH);
  CHECK_EQ(ustcp_connect(f.c, f.fd, &SERVER), -EINPROGRESS);
  CHECK_EQ(ustcp_connect(f.c, f.fd, &SERVER), -EALREADY);
  CHECK_EQ(ustcp_sock_events(f.c, f.fd), 0);
  sn_advance(&f.sn, 100 * MS);
  CHECK_EQ(ustcp_sock_events(f.c, f.fd), OUT);
  CHECK_EQ(ustcp_connect(f.c, f.fd, &SERVER), 0);
  CHECK_EQ(ustcp_connect(f.c, f.fd, &SERVER), -EISCONN);
  f.sfd = ustcp_accept(f.s, f.lfd, &a);
  CHECK(f.sfd >= 0);
  CHECK_EQ(ustcp_connect(f.s, f.sfd, &a), -EISCONN);
  CHECK_EQ(ustcp_recv(f.c, f.fd, b, sizeof b, 0), -EAGAIN);
  CHECK_EQ(ustcp_send(f.s, f.sfd, "abc", 3, 0), 3);
  sn_advance(&f.sn, 100 * MS);
  CHECK_EQ(ustcp_sock_events(f.c, f.fd), IN | OUT);
  CHECK_EQ(ustcp_recv(f.c, f.fd, b, 1, USTCP_MSG_PEEK), 1);
  CHECK_EQ(ustcp_recv(f.c, f.fd, b, sizeof b, 0), 3);
  CHECK_MEM(b, "abc", 3);
  CHECK_EQ(ustcp_getpeername(f.c, f.fd, &a), 0);
  CHECK_EQ(a.ip, SERVER.ip);
  CHECK_EQ(a.port, SERVER.port);
  /* shutdown(SHUT_WR): FIN_WAIT_1, writing fails, POLLOUT stays (Linux) */
  CHECK_EQ(ustcp_shutdown(f.c, f.fd, USTCP_SHUT_WR), 0);
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_FIN_WAIT_1);
  CHECK_EQ(ustcp_send(f.c, f.fd, "x", 1, 0), -EPIPE);
  CHECK_EQ(ustcp_shutdown(f.c, f.fd, USTCP_SHUT_WR), 0);
  CHECK_EQ(ustcp_sock_events(f.c, f.fd), OUT);
  fx_close(&f);

  /* CLOSE_WAIT: recv 0 again and again; send works; shutdown -> LAST_ACK */
  fx_open(&f, S_CLOSE_WAIT);
  CHECK_EQ(ustcp_recv(f.c, f.fd, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_recv(f.c, f.fd, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_shutdown(f.c, f.fd, USTCP_SHUT_WR), 0);
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_LAST_ACK);
  CHECK_EQ(ustcp_sock_events(f.c, f.fd), IN | OUT | RDHUP | HUP);
  fx_close(&f);

  /* after reset: ECONNRESET once from whichever call comes first, then EPIPE
   * from send and 0 from recv (D7). */
  fx_open(&f, S_RESET);
  CHECK_EQ(ustcp_send(f.c, f.fd, "x", 1, 0), -ECONNRESET);
  CHECK_EQ(ustcp_send(f.c, f.fd, "x", 1, 0), -EPIPE);
  CHECK_EQ(ustcp_recv(f.c, f.fd, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_sock_events(f.c, f.fd), IN | OUT | HUP | RDHUP);
  fx_close(&f);
  fx_open(&f, S_RESET);
  CHECK_EQ(ustcp_connect(f.c, f.fd, &SERVER), -EISCONN);   /* error still pending */
  CHECK_EQ(ustcp_recv(f.c, f.fd, b, sizeof b, 0), -ECONNRESET);
  CHECK_EQ(ustcp_recv(f.c, f.fd, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_send(f.c, f.fd, "x", 1, 0), -EPIPE);
  fx_close(&f);

  /* H3 / A2: connect to a closed port -> ECONNREFUSED, through SO_ERROR ... */
  fx_open(&f, S_REFUSED);
  CHECK_EQ(ustcp_sock_error(f.c, f.fd), -ECONNREFUSED);
  CHECK_EQ(ustcp_sock_error(f.c, f.fd), 0);
  CHECK_EQ(ustcp_sock_events(f.c, f.fd), IN | OUT | HUP | RDHUP);
  CHECK_EQ(ustcp_recv(f.c, f.fd, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_send(f.c, f.fd, "x", 1, 0), -EPIPE);
  fx_close(&f);
  /* ... or through a second connect(); and a third reports nothing new. */
  fx_open(&f, S_REFUSED);
  CHECK_EQ(ustcp_connect(f.c, f.fd, &NOPORT), -ECONNREFUSED);
  CHECK_EQ(ustcp_sock_error(f.c, f.fd), 0);
  fx_close(&f);
  /* Linux: the error taken by SO_ERROR, the next connect() says ECONNABORTED. */
  fx_open(&f, S_REFUSED);
  CHECK_EQ(ustcp_sock_error(f.c, f.fd), -ECONNREFUSED);
  CHECK_EQ(ustcp_connect(f.c, f.fd, &NOPORT), -ECONNABORTED);
  fx_close(&f);
}

/* A2: bad descriptors are EBADF for every call. */
static void A2_bad_fds(void)
{
  static struct fx f;
  fx_open(&f, S_ESTABLISHED);
  int closed = ustcp_socket(f.c);
  CHECK_EQ(ustcp_close(f.c, closed), 0);
  CHECK_EQ(ustcp_close(f.c, closed), -EBADF);          /* double close */
  const int bad[] = {-1, 1 << 30, 999, closed};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    for (int c = 0; c < C_COUNT; c++) {
      int got = do_call(&f, (enum call)c, bad[i]);
      if (got != -EBADF) {
        check_failed++;
        fprintf(stderr, "A2: %s(fd %d) returned %d, want -EBADF\n", call_name[c], bad[i], got);
      } else {
        check_passed++;
      }
    }
    struct ustcp_tcp_info ti;
    CHECK_EQ(ustcp_get_info(f.c, bad[i], &ti), -EBADF);
    CHECK_EQ(ustcp_sock_error(f.c, bad[i]), -EBADF);
  }
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_ESTABLISHED);      /* untouched */
  fx_close(&f);
}

/* A2: NULL buffers and addresses are EFAULT; nothing changes. */
static void A2_null_pointers(void)
{
  static struct fx f;
  fx_open(&f, S_ESTABLISHED);
  CHECK_EQ(ustcp_send(f.c, f.fd, NULL, 5, 0), -EFAULT);
  CHECK_EQ(ustcp_recv(f.c, f.fd, NULL, 5, 0), -EFAULT);
  CHECK_EQ(ustcp_connect(f.c, f.fd, NULL), -EFAULT);
  CHECK_EQ(ustcp_getsockname(f.c, f.fd, NULL), -EFAULT);
  CHECK_EQ(ustcp_getpeername(f.c, f.fd, NULL), -EFAULT);
  CHECK_EQ(ustcp_get_info(f.c, f.fd, NULL), -EFAULT);
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, NULL, sizeof(int)), -EFAULT);
  size_t len = sizeof(int);
  CHECK_EQ(ustcp_getsockopt(f.c, f.fd, USTCP_SOL_SOCKET, USTCP_SO_ERROR, NULL, &len), -EFAULT);
  int v = 0;
  CHECK_EQ(ustcp_getsockopt(f.c, f.fd, USTCP_SOL_SOCKET, USTCP_SO_ERROR, &v, NULL), -EFAULT);
  int fresh = ustcp_socket(f.c);
  CHECK_EQ(ustcp_bind(f.c, fresh, NULL), -EFAULT);
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_ESTABLISHED);
  struct ustcp_addr a;
  CHECK_EQ(ustcp_getsockname(f.c, fresh, &a), 0);
  CHECK_EQ(a.port, 0);
  /* zero-length calls are fine */
  CHECK_EQ(ustcp_send(f.c, f.fd, NULL, 0, 0), 0);
  CHECK_EQ(ustcp_recv(f.c, f.fd, NULL, 0, 0), 0);
  fx_close(&f);
}

/* A2: option errors (Linux's: short length EINVAL, unknown ENOPROTOOPT). */
static void A2_options(void)
{
  static struct fx f;
  fx_open(&f, S_ESTABLISHED);
  int v = 1;
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &v, 2), -EINVAL);
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, USTCP_IPPROTO_TCP, 999, &v, sizeof v), -ENOPROTOOPT);
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, 999, USTCP_TCP_NODELAY, &v, sizeof v), -ENOPROTOOPT);
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, USTCP_SOL_SOCKET, 999, &v, sizeof v), -ENOPROTOOPT);
  /* TCP_MAXSEG: 0 restores the default and is allowed in any state; < 88 EINVAL */
  v = 0;
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, USTCP_IPPROTO_TCP, USTCP_TCP_MAXSEG, &v, sizeof v), 0);
  v = 1000;
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, USTCP_IPPROTO_TCP, USTCP_TCP_MAXSEG, &v, sizeof v), 0);
  v = 50;
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, USTCP_IPPROTO_TCP, USTCP_TCP_MAXSEG, &v, sizeof v), -EINVAL);
  struct ustcp_linger lg = {1, -1};
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, USTCP_SOL_SOCKET, USTCP_SO_LINGER, &lg, sizeof lg), -EINVAL);
  lg.l_linger = 5;
  CHECK_EQ(ustcp_setsockopt(f.c, f.fd, USTCP_SOL_SOCKET, USTCP_SO_LINGER, &lg, sizeof lg), 0);
  struct ustcp_linger lg2;
  size_t len = sizeof lg2;
  CHECK_EQ(ustcp_getsockopt(f.c, f.fd, USTCP_SOL_SOCKET, USTCP_SO_LINGER, &lg2, &len), 0);
  CHECK_EQ(lg2.l_onoff, 1);
  CHECK_EQ(lg2.l_linger, 5);
  int r = 0;
  len = 2;
  CHECK_EQ(ustcp_getsockopt(f.c, f.fd, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &r, &len), -EINVAL);
  len = sizeof r;
  CHECK_EQ(ustcp_getsockopt(f.c, f.fd, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &r, &len), 0);
  CHECK_EQ(r, 0);
  CHECK_EQ(ustcp_shutdown(f.c, f.fd, 7), -EINVAL);      /* how is checked first */
  CHECK_EQ(sn_state(f.c, f.fd), USTCP_ESTABLISHED);
  int fresh = ustcp_socket(f.c);
  CHECK_EQ(ustcp_shutdown(f.c, fresh, 7), -EINVAL);
  fx_close(&f);
}

/* A2: address errors: EADDRINUSE, SO_REUSEADDR, EADDRNOTAVAIL. */
static void A2_bind_rules(void)
{
  static struct fx f;
  fx_open(&f, S_BOUND);                                  /* f.fd holds 10.0.0.1:5000 */
  int a = ustcp_socket(f.c);
  CHECK_EQ(ustcp_bind(f.c, a, &BOUND), -EADDRINUSE);
  CHECK_EQ(sn_state(f.c, a), USTCP_CLOSED);
  struct ustcp_addr name;
  CHECK_EQ(ustcp_getsockname(f.c, a, &name), 0);
  CHECK_EQ(name.port, 0);                                /* unchanged */
  struct ustcp_addr any5000 = {0, 5000};
  CHECK_EQ(ustcp_bind(f.c, a, &any5000), -EADDRINUSE);
  struct ustcp_addr foreign = {0x0a000063, 5001};
  CHECK_EQ(ustcp_bind(f.c, a, &foreign), -EADDRNOTAVAIL);
  CHECK_EQ(ustcp_bind(f.c, a, &(struct ustcp_addr){CLIENT_IP, 5001}), 0);
  fx_close(&f);

  /* Both with SO_REUSEADDR and no listener: shared; a listener on the port
   * makes it busy again, and a second listen on it is EADDRINUSE. */
  fx_open(&f, S_FRESH);
  int one = 1;
  int x = f.fd, y = ustcp_socket(f.c), z = ustcp_socket(f.c);
  struct ustcp_addr p = {CLIENT_IP, 7000};
  CHECK_EQ(ustcp_setsockopt(f.c, x, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &one, sizeof one), 0);
  CHECK_EQ(ustcp_setsockopt(f.c, y, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &one, sizeof one), 0);
  CHECK_EQ(ustcp_setsockopt(f.c, z, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &one, sizeof one), 0);
  CHECK_EQ(ustcp_bind(f.c, x, &p), 0);
  CHECK_EQ(ustcp_bind(f.c, y, &p), 0);
  CHECK_EQ(ustcp_listen(f.c, x, 1), 0);
  CHECK_EQ(ustcp_listen(f.c, y, 1), -EADDRINUSE);
  CHECK_EQ(sn_state(f.c, y), USTCP_CLOSED);
  CHECK_EQ(ustcp_bind(f.c, z, &p), -EADDRINUSE);
  /* closing the listener frees the port */
  CHECK_EQ(ustcp_close(f.c, x), 0);
  CHECK_EQ(ustcp_listen(f.c, y, 1), 0);
  fx_close(&f);

  /* Binding to port 0 picks an ephemeral port. */
  fx_open(&f, S_FRESH);
  CHECK_EQ(ustcp_bind(f.c, f.fd, &(struct ustcp_addr){0, 0}), 0);
  CHECK_EQ(ustcp_getsockname(f.c, f.fd, &name), 0);
  CHECK(name.port >= 32768 && name.port <= 60999);
  fx_close(&f);
}

/* A1: readiness callbacks report the same bits as sock_events. */
static unsigned ready_seen[2][64];   /* [client, server][fd] */
static void ready_cb(void *ctx, int fd, unsigned ev)
{
  unsigned *seen = ctx;
  if (fd >= 0 && fd < 64) seen[fd] = ev;
}
static void A1_ready_callback(void)
{
  static struct fx f;
  memset(ready_seen, 0, sizeof ready_seen);
  fx_open(&f, S_FRESH);
  ustcp_set_ready_cb(f.c, ready_cb, ready_seen[0]);
  ustcp_set_ready_cb(f.s, ready_cb, ready_seen[1]);
  CHECK_EQ(ustcp_connect(f.c, f.fd, &SERVER), -EINPROGRESS);
  sn_advance(&f.sn, 100 * MS);
  CHECK(ready_seen[0][f.fd] & OUT);                       /* connect completed */
  CHECK_EQ(ready_seen[0][f.fd], (unsigned)ustcp_sock_events(f.c, f.fd));
  CHECK(ready_seen[1][f.lfd] & IN);                        /* a connection to accept */
  fx_close(&f);
}

int main(void)
{
  RUN(A1_A2_call_state_table);
  RUN(A1_transitions);
  RUN(A2_bad_fds);
  RUN(A2_null_pointers);
  RUN(A2_options);
  RUN(A2_bind_rules);
  RUN(A1_ready_callback);
  return check_report();
}
