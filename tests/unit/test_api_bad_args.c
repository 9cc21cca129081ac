/* A1 / A2 (issue 6): the socket API with bad arguments. Proves that every call
 *   - on an unknown descriptor (-1, never opened, huge, closed: double close)
 *     returns -EBADF;
 *   - with NULL buffers or addresses returns -EFAULT (a NULL buffer of length 0
 *     is an empty call), with short option lengths -EINVAL, with unknown options
 *     -ENOPROTOOPT, with MSG_OOB -EOPNOTSUPP, with a huge length never reads or
 *     writes beyond what exists;
 *   - in every wrong state (a fresh socket, a listener, SYN_SENT, ESTABLISHED,
 *     FIN_WAIT_1, FIN_WAIT_2, CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT, CLOSED
 *     after a reset) returns 0 or a negative errno, never crashes, and leaves
 *     every stack invariant intact (stack_check after each call);
 *   - the errno for the classic misuses is Linux's (accept on a non-listener
 *     EINVAL, recv on a listener ENOTCONN, listen on a connected socket EINVAL,
 *     bind twice EINVAL, a port in use EADDRINUSE, connect twice EALREADY /
 *     EISCONN, shutdown(how = 7) EINVAL).
 * At the end every descriptor is closed and the stack holds nothing. */
#include <limits.h>
#include "check.h"
#include "rawpeer.h"
#include "stack/stack_check.h"

static struct rp R;

static void check_stack(void)
{
  char buf[512];
  const char *why = stack_check(R.s, false, buf, sizeof buf);
  if (why) fprintf(stderr, "stack_check: %s\n", why);
  CHECK(why == NULL);
}

static bool errno_or_ok(long rc) { return rc >= 0 || (rc < 0 && rc > -4096); }

/* Every call, with odd arguments, on fd: no crash, errno or success. */
static void hammer(int fd)
{
  struct ustcp_stack *s = R.s;
  uint8_t small[8];
  struct ustcp_addr a = {0, 0}, far = {RP_PEER_IP + 9, 9};
  int v = 1;
  size_t len = sizeof v;
  struct ustcp_tcp_info ti;
  long rc;
#define T(call) do { rc = (long)(call); CHECK(errno_or_ok(rc)); check_stack(); } while (0)
  T(ustcp_recv(s, fd, NULL, 10, 0));
  CHECK(rc == -EFAULT || rc == -EBADF || rc == -ENOTCONN);
  T(ustcp_send(s, fd, NULL, 10, 0));
  CHECK(rc == -EFAULT || rc == -EBADF);
  T(ustcp_send(s, fd, NULL, SIZE_MAX, 0));
  CHECK(rc == -EFAULT || rc == -EBADF);
  T(ustcp_recv(s, fd, small, SIZE_MAX, 0));       /* only what exists is written */
  CHECK(rc <= (long)sizeof small || rc < 0);
  T(ustcp_recv(s, fd, small, 0, 0));
  T(ustcp_send(s, fd, small, 0, 0));
  T(ustcp_recv(s, fd, small, sizeof small, USTCP_MSG_OOB));
  CHECK(rc == -EOPNOTSUPP || rc == -EBADF);
  T(ustcp_send(s, fd, small, sizeof small, USTCP_MSG_OOB));
  CHECK(rc == -EOPNOTSUPP || rc == -EBADF);
  T(ustcp_recv(s, fd, small, sizeof small, USTCP_MSG_PEEK));
  T(ustcp_bind(s, fd, NULL));
  CHECK(rc == -EFAULT || rc == -EBADF);
  T(ustcp_connect(s, fd, NULL));
  CHECK(rc == -EFAULT || rc == -EBADF);
  T(ustcp_getsockname(s, fd, NULL));
  T(ustcp_getpeername(s, fd, NULL));
  T(ustcp_accept(s, fd, NULL));
  T(ustcp_listen(s, fd, -5));
  T(ustcp_listen(s, fd, INT_MAX));
  T(ustcp_shutdown(s, fd, 7));
  CHECK(rc == -EINVAL || rc == -EBADF);
  T(ustcp_shutdown(s, fd, -1));
  T(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, NULL, sizeof v));
  CHECK(rc == -EFAULT || rc == -EBADF);
  T(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &v, 1));
  CHECK(rc == -EINVAL || rc == -EBADF);
  T(ustcp_setsockopt(s, fd, 12345, 1, &v, sizeof v));
  CHECK(rc == -ENOPROTOOPT || rc == -EBADF);
  v = -1;
  T(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &v, sizeof v));
  v = INT_MAX;
  T(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &v, sizeof v));
  T(ustcp_setsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_MAXSEG, &v, sizeof v));
  T(ustcp_setsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPIDLE, &v, sizeof v));
  struct ustcp_linger lg = {1, -3};
  T(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_LINGER, &lg, sizeof lg));
  T(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_LINGER, &lg, 2));
  T(ustcp_getsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_ERROR, NULL, &len));
  T(ustcp_getsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_ERROR, &v, NULL));
  len = 1;
  T(ustcp_getsockopt(s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_INFO, &ti, &len));
  CHECK(rc == -EINVAL || rc == -EBADF);
  T(ustcp_get_info(s, fd, NULL));
  T(ustcp_sock_events(s, fd));
  (void)a;
  (void)far;
#undef T
}

static int state_of(int fd)
{
  struct ustcp_tcp_info ti;
  if (ustcp_get_info(R.s, fd, &ti) != 0) return -1;
  return (int)ti.state;
}

static void unknown_descriptors_are_ebadf(void)
{
  struct ustcp_stack *s = R.s;
  int bad[] = {-1, -100, 7777, INT_MAX, INT_MIN};
  char b[4];
  struct ustcp_addr a = {0, 1};
  for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int fd = bad[i];
    CHECK_EQ(ustcp_close(s, fd), -EBADF);
    CHECK_EQ(ustcp_abort(s, fd), -EBADF);
    CHECK_EQ(ustcp_recv(s, fd, b, sizeof b, 0), -EBADF);
    CHECK_EQ(ustcp_send(s, fd, b, sizeof b, 0), -EBADF);
    CHECK_EQ(ustcp_bind(s, fd, &a), -EBADF);
    CHECK_EQ(ustcp_listen(s, fd, 1), -EBADF);
    CHECK_EQ(ustcp_accept(s, fd, NULL), -EBADF);
    CHECK_EQ(ustcp_connect(s, fd, &a), -EBADF);
    CHECK_EQ(ustcp_shutdown(s, fd, USTCP_SHUT_WR), -EBADF);
    CHECK_EQ(ustcp_sock_error(s, fd), -EBADF);
    CHECK_EQ(ustcp_sock_events(s, fd), -EBADF);
    CHECK_EQ(ustcp_getsockname(s, fd, &a), -EBADF);
    CHECK_EQ(ustcp_getpeername(s, fd, &a), -EBADF);
    int v = 1;
    size_t len = sizeof v;
    CHECK_EQ(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_KEEPALIVE, &v, sizeof v), -EBADF);
    CHECK_EQ(ustcp_getsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_KEEPALIVE, &v, &len), -EBADF);
    struct ustcp_tcp_info ti;
    CHECK_EQ(ustcp_get_info(s, fd, &ti), -EBADF);
    hammer(fd);
  }
  /* Double close. */
  int fd = ustcp_socket(s);
  CHECK(fd >= 0);
  CHECK_EQ(ustcp_close(s, fd), 0);
  CHECK_EQ(ustcp_close(s, fd), -EBADF);
  CHECK_EQ(ustcp_recv(s, fd, b, sizeof b, 0), -EBADF);
  CHECK_EQ(ustcp_socket(NULL), -EINVAL);
  check_stack();
}

static void classic_misuse_gets_linux_errno(void)
{
  struct ustcp_stack *s = R.s;
  char b[4];
  int fd = ustcp_socket(s);
  CHECK_EQ(ustcp_accept(s, fd, NULL), -EINVAL);            /* not listening */
  struct ustcp_addr a = {0, 6000};
  CHECK_EQ(ustcp_bind(s, fd, &a), 0);
  CHECK_EQ(ustcp_bind(s, fd, &a), -EINVAL);                /* bound already */
  int fd2 = ustcp_socket(s);
  CHECK_EQ(ustcp_bind(s, fd2, &a), -EADDRINUSE);
  struct ustcp_addr other = {0x0a0a0a0a, 6001};
  CHECK_EQ(ustcp_bind(s, fd2, &other), -EADDRNOTAVAIL);    /* not our address */
  CHECK_EQ(ustcp_listen(s, fd, 4), 0);
  CHECK_EQ(ustcp_recv(s, fd, b, sizeof b, 0), -ENOTCONN);
  CHECK_EQ(ustcp_accept(s, fd, NULL), -EAGAIN);
  struct ustcp_addr to = {RP_PEER_IP, 80};
  CHECK_EQ(ustcp_connect(s, fd2, &to), -EINPROGRESS);
  CHECK_EQ(ustcp_connect(s, fd2, &to), -EALREADY);
  CHECK_EQ(ustcp_listen(s, fd2, 4), -EINVAL);              /* connecting */
  struct ustcp_addr zero = {RP_PEER_IP, 0};
  int fd3 = ustcp_socket(s);
  CHECK_EQ(ustcp_connect(s, fd3, &zero), -EINVAL);
  CHECK_EQ(ustcp_shutdown(s, fd3, USTCP_SHUT_WR), -ENOTCONN);
  CHECK_EQ(ustcp_shutdown(s, fd3, 7), -EINVAL);
  CHECK_EQ(ustcp_close(s, fd), 0);
  CHECK_EQ(ustcp_close(s, fd2), 0);
  CHECK_EQ(ustcp_close(s, fd3), 0);
  check_stack();
}

/* Sockets in every state the application can hold, each hammered. */
static void every_state_every_call(void)
{
  struct ustcp_stack *s = R.s;
  int fds[16], n = 0;
  fds[n++] = ustcp_socket(s);                              /* CLOSED, fresh */
  int l = rp_listen(&R, 8080, 8);                          /* LISTEN */
  fds[n++] = l;
  int cs = ustcp_socket(s);                                /* SYN_SENT */
  struct ustcp_addr to = {RP_PEER_IP, 81};
  CHECK_EQ(ustcp_connect(s, cs, &to), -EINPROGRESS);
  fds[n++] = cs;
  struct rp_conn c[8];
  int est = rp_handshake_in(&R, &c[0], l, RP_PEER_IP, 50000, 8080, 100, NULL);   /* ESTABLISHED */
  uint8_t d[5] = "hello";
  rp_seg(&R, &c[0], TCP_ACK | TCP_PSH, d, 5, 65535);
  fds[n++] = est;
  int fw1 = rp_handshake_in(&R, &c[1], l, RP_PEER_IP, 50001, 8080, 100, NULL);   /* FIN_WAIT_1 */
  ustcp_shutdown(s, fw1, USTCP_SHUT_WR);
  fds[n++] = fw1;
  int fw2 = rp_handshake_in(&R, &c[2], l, RP_PEER_IP, 50002, 8080, 100, NULL);   /* FIN_WAIT_2 */
  ustcp_shutdown(s, fw2, USTCP_SHUT_WR);
  c[2].rcv_nxt++;
  rp_seg(&R, &c[2], TCP_ACK, NULL, 0, 65535);
  fds[n++] = fw2;
  int cw = rp_handshake_in(&R, &c[3], l, RP_PEER_IP, 50003, 8080, 100, NULL);    /* CLOSE_WAIT */
  rp_seg(&R, &c[3], TCP_ACK | TCP_FIN, NULL, 0, 65535);
  fds[n++] = cw;
  int cl = rp_handshake_in(&R, &c[4], l, RP_PEER_IP, 50004, 8080, 100, NULL);    /* CLOSING */
  ustcp_shutdown(s, cl, USTCP_SHUT_WR);
  rp_seg(&R, &c[4], TCP_ACK | TCP_FIN, NULL, 0, 65535);
  fds[n++] = cl;
  int la = rp_handshake_in(&R, &c[5], l, RP_PEER_IP, 50005, 8080, 100, NULL);    /* LAST_ACK */
  rp_seg(&R, &c[5], TCP_ACK | TCP_FIN, NULL, 0, 65535);
  ustcp_shutdown(s, la, USTCP_SHUT_WR);
  fds[n++] = la;
  int tw = rp_handshake_in(&R, &c[6], l, RP_PEER_IP, 50006, 8080, 100, NULL);    /* TIME_WAIT */
  ustcp_shutdown(s, tw, USTCP_SHUT_WR);
  c[6].rcv_nxt++;
  rp_seg(&R, &c[6], TCP_ACK | TCP_FIN, NULL, 0, 65535);
  fds[n++] = tw;
  int rs = rp_handshake_in(&R, &c[7], l, RP_PEER_IP, 50007, 8080, 100, NULL);    /* CLOSED by RST */
  rp_seg(&R, &c[7], TCP_RST, NULL, 0, 0);
  fds[n++] = rs;
  static const int want[] = {USTCP_CLOSED, USTCP_LISTEN, USTCP_SYN_SENT, USTCP_ESTABLISHED,
                             USTCP_FIN_WAIT_1, USTCP_FIN_WAIT_2, USTCP_CLOSE_WAIT, USTCP_CLOSING,
                             USTCP_LAST_ACK, USTCP_TIME_WAIT, USTCP_CLOSED};
  for (int i = 0; i < n; i++) CHECK_EQ(state_of(fds[i]), want[i]);
  /* Wrong-state calls with Linux's answers (before the hammering takes the
   * pending error). */
  char b[8];
  CHECK_EQ(ustcp_send(s, tw, b, 1, 0), -EPIPE);           /* after our FIN */
  CHECK_EQ(ustcp_send(s, l, b, 1, 0), -EPIPE);
  CHECK_EQ(ustcp_listen(s, est, 1), -EINVAL);
  CHECK_EQ(ustcp_connect(s, est, &to), -EISCONN);
  CHECK_EQ(ustcp_accept(s, est, NULL), -EINVAL);
  CHECK_EQ(ustcp_recv(s, rs, b, sizeof b, 0), -ECONNRESET);
  CHECK_EQ(ustcp_recv(s, rs, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_send(s, rs, b, 1, 0), -EPIPE);
  for (int round = 0; round < 2; round++)
    for (int i = 0; i < n; i++) hammer(fds[i]);
  for (int i = 0; i < n; i++) {
    CHECK_EQ(ustcp_close(s, fds[i]), 0);
    CHECK_EQ(ustcp_close(s, fds[i]), -EBADF);
    check_stack();
  }
  rp_advance(&R, 600 * USTCP_SEC);
  struct ustcp_stats st;
  ustcp_get_stats(s, &st);
  CHECK_EQ(st.conns_alive, 0);
  CHECK_EQ(st.mem_bytes, 0);
}

int main(void)
{
  rp_init(&R, NULL, 91);
  RUN(unknown_descriptors_are_ebadf);
  RUN(classic_misuse_gets_linux_errno);
  RUN(every_state_every_call);
  rp_free(&R);
  return check_report();
}
