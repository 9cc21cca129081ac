/* Allocation failure (issue 10 §7, "no hidden failure"): every allocation of the
 * stack can be failed through ustcp_set_alloc_fail. Each test fails one chosen
 * allocation at one chosen moment and proves that the failure is counted
 * (stats.alloc_failures) and handled: no connection left without its timers or
 * out of the connection table, no readiness callback lost, no data acknowledged
 * that was not stored, no connection reset because a descriptor could not be
 * made. The sweep over every allocation of a whole connection is
 * test_alloc_fail_sweep.c; the seeded version is `simtest --fail-alloc-rate`. */
#include "check.h"
#include "rawpeer.h"

/* The hook: fails the allocations of exactly `size` bytes (any size if 0; up to
 * size_max if that is set) while `left` > 0, and counts what it failed. */
struct failer {
  size_t size, size_max;
  int left;
  uint64_t asked, failed;
};
static bool fail_hook(void *ctx, size_t n)
{
  struct failer *f = ctx;
  f->asked++;
  bool match = f->size == 0 || f->size == n || (f->size_max && n >= f->size && n <= f->size_max);
  if (f->left > 0 && match) {
    f->left--;
    f->failed++;
    return true;
  }
  return false;
}
static void arm(struct rp *r, struct failer *f, size_t size, int times)
{
  memset(f, 0, sizeof *f);
  f->size = size;
  f->left = times;
  ustcp_set_alloc_fail(r->s, fail_hook, f);
}
static uint64_t alloc_failures(struct rp *r)
{
  struct ustcp_stats st;
  ustcp_get_stats(r->s, &st);
  return st.alloc_failures;
}

/* The stack's first connection-table allocation failed (hash_grow from zero
 * buckets): hash_add returned without filing the block, so listen() said 0 and
 * every SYN was answered by RST — a listener nobody could reach. */
static void listener_reachable_when_table_alloc_fails(void)
{
  struct rp r;
  rp_init(&r, NULL, 1);
  struct failer f;
  arm(&r, &f, 256 * sizeof(void *), 1);          /* a table's bucket array */
  int l = ustcp_socket(r.s);
  struct ustcp_addr a = {0, 80};
  CHECK_EQ(ustcp_bind(r.s, l, &a), 0);
  int rc = ustcp_listen(r.s, l, 16);
  CHECK(rc == 0 || rc == -ENOMEM);
  CHECK_EQ(alloc_failures(&r), f.failed);
  rp_clear(&r);
  struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
  rp_send_from(&r, RP_PEER_IP, 40000, 80, 1000, 0, TCP_SYN, 65535, &o, NULL, 0);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));
  if (rc == 0) CHECK_EQ(p.tcp.flags, TCP_SYN | TCP_ACK);   /* listening means reachable */
  else CHECK(p.tcp.flags & TCP_RST);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* Same for connect(): the SYN went out from a block the demultiplexer could not
 * find, so the SYN-ACK drew a RST while the socket sat in SYN_SENT. */
static void connection_reachable_when_table_alloc_fails(void)
{
  struct rp r;
  rp_init(&r, NULL, 2);
  int fd = ustcp_socket(r.s);
  struct failer f;
  arm(&r, &f, 256 * sizeof(void *), 1);
  struct ustcp_addr to = {RP_PEER_IP, 80};
  rp_clear(&r);
  int rc = ustcp_connect(r.s, fd, &to);
  CHECK(rc == -EINPROGRESS || rc == -ENOMEM);
  CHECK_EQ(alloc_failures(&r), f.failed);
  struct tcp_packet syn;
  if (rc == -EINPROGRESS) {
    CHECK(rp_last(&r, &syn));
    CHECK_EQ(syn.tcp.flags, TCP_SYN);
    struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
    rp_send_from(&r, RP_PEER_IP, 80, syn.tcp.src_port, 5000, syn.tcp.seq + 1, TCP_SYN | TCP_ACK,
                 65535, &o, NULL, 0);
    struct tcp_packet p;
    CHECK(rp_last(&r, &p));
    CHECK_EQ(p.tcp.flags, TCP_ACK);               /* not RST */
    CHECK_EQ(p.tcp.ack, 5001);
    CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  }
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* The timer heap grows by doubling from 64 entries. When the growth failed,
 * timer_update left the 65th connection's timers unarmed: a SYN_SENT block that
 * never retransmitted and never timed out. The growth is failed once while
 * socket() runs (variant 0) or while connect() runs (variant 1); the descriptor
 * table grows at the same moment by the same size, so either may be the one. */
static void no_connection_without_timers_when_heap_alloc_fails(void)
{
  for (int variant = 0; variant < 2; variant++) {
    struct rp r;
    rp_init(&r, NULL, 3);
    int fds[100], n = 0;
    struct failer f;
    arm(&r, &f, 128 * sizeof(void *), 1);         /* a growth 64 -> 128 */
    for (int i = 0; i < 100; i++) {
      ustcp_set_alloc_fail(r.s, variant == 0 ? fail_hook : NULL, &f);
      int fd = ustcp_socket(r.s);
      if (fd < 0) { CHECK_EQ(fd, -ENOMEM); continue; }
      ustcp_set_alloc_fail(r.s, variant == 1 ? fail_hook : NULL, &f);
      struct ustcp_addr to = {RP_PEER_IP, (uint16_t)(1000 + i)};
      int rc = ustcp_connect(r.s, fd, &to);
      if (rc == -ENOMEM) { ustcp_close(r.s, fd); continue; }
      CHECK_EQ(rc, -EINPROGRESS);
      fds[n++] = fd;
    }
    CHECK_EQ(alloc_failures(&r), f.failed);
    CHECK(n >= 99);
    CHECK(rp_stack_problem(&r) == NULL);
    /* Every connection retransmits its SYN after the initial RTO (H4). */
    rp_clear(&r);
    rp_advance(&r, 1100 * USTCP_MSEC);
    int syns = 0;
    struct tcp_packet p;
    while (rp_next(&r, &p))
      if (p.tcp.flags == TCP_SYN) syns++;
    CHECK_EQ(syns, n);
    /* ...and each fails with ETIMEDOUT in the end, so nothing waits forever. */
    rp_advance(&r, 200 * USTCP_SEC);
    int timedout = 0;
    for (int i = 0; i < n; i++)
      if (ustcp_sock_error(r.s, fds[i]) == -ETIMEDOUT) timedout++;
    CHECK_EQ(timedout, n);
    CHECK(rp_stack_problem(&r) == NULL);
    rp_free(&r);
  }
}

/* Readiness callbacks are queued; when growing the queue failed, sock_wake_cb
 * returned without queueing and without noting it: the application never heard
 * that its listener had a connection. */
struct wakes {
  int fd[64];
  unsigned ev[64];
  int n;
};
static void on_ready(void *ctx, int fd, unsigned ev)
{
  struct wakes *w = ctx;
  if (w->n < 64) { w->fd[w->n] = fd; w->ev[w->n] = ev; w->n++; }
}
static void readiness_not_lost_when_queue_alloc_fails(void)
{
  struct rp r;
  rp_init(&r, NULL, 4);
  struct wakes w = {.n = 0};
  ustcp_set_ready_cb(r.s, on_ready, &w);
  int l = rp_listen(&r, 80, 16);
  CHECK(l >= 0);
  struct failer f;
  arm(&r, &f, 16 * sizeof(int), 1);               /* the readiness queue's first block */
  struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
  rp_clear(&r);
  rp_send_from(&r, RP_PEER_IP, 40000, 80, 1000, 0, TCP_SYN, 65535, &o, NULL, 0);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));
  rp_send_from(&r, RP_PEER_IP, 40000, 80, 1001, p.tcp.seq + 1, TCP_ACK, 65535, NULL, NULL, 0);
  CHECK_EQ(f.failed, 1);
  CHECK_EQ(alloc_failures(&r), 1);
  int got = 0;
  for (int i = 0; i < w.n; i++)
    if (w.fd[i] == l && (w.ev[i] & USTCP_POLLIN)) got++;
  CHECK_EQ(got, 1);
  CHECK(ustcp_accept(r.s, l, NULL) >= 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);

  /* One event that wakes 40 sockets: their SYNs (syn_retries 0) time out in the
   * same poll, so the queue must grow past 16, and every growth fails. */
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.syn_retries = 0;
  rp_init(&r, &cfg, 4);
  w.n = 0;
  ustcp_set_ready_cb(r.s, on_ready, &w);
  int fds[40];
  for (int i = 0; i < 40; i++) {
    fds[i] = ustcp_socket(r.s);
    struct ustcp_addr to = {RP_PEER_IP, (uint16_t)(1000 + i)};
    CHECK_EQ(ustcp_connect(r.s, fds[i], &to), -EINPROGRESS);
  }
  w.n = 0;
  arm(&r, &f, 32 * sizeof(int), 1000);
  rp_advance(&r, 1100 * USTCP_MSEC);
  int woke = 0;
  for (int i = 0; i < 40; i++)
    for (int k = 0; k < w.n; k++)
      if (w.fd[k] == fds[i] && (w.ev[k] & USTCP_POLLERR)) { woke++; break; }
  CHECK_EQ(woke, 40);
  CHECK(f.failed >= 1);
  CHECK_EQ(alloc_failures(&r), f.failed);
  for (int i = 0; i < 40; i++) CHECK_EQ(ustcp_sock_error(r.s, fds[i]), -ETIMEDOUT);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* accept() gave up the connection (RST) when the descriptor table could not
 * grow. Linux (do_accept) takes the descriptor before the connection: it stays
 * queued and a later accept() gets it. */
static void accept_keeps_connection_when_descriptor_alloc_fails(void)
{
  struct rp r;
  rp_init(&r, NULL, 5);
  int l = rp_listen(&r, 80, 16);
  CHECK_EQ(l, 0);
  for (int i = 1; i < 64; i++) CHECK_EQ(ustcp_socket(r.s), i);  /* the table (64) is full */
  struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
  rp_clear(&r);
  rp_send_from(&r, RP_PEER_IP, 40000, 80, 1000, 0, TCP_SYN, 65535, &o, NULL, 0);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));
  uint32_t isn = p.tcp.seq;
  rp_send_from(&r, RP_PEER_IP, 40000, 80, 1001, isn + 1, TCP_ACK, 65535, NULL, "hello", 5);
  rp_clear(&r);
  struct failer f;
  arm(&r, &f, 128 * sizeof(void *), 1);           /* the descriptor table's growth */
  int fd = ustcp_accept(r.s, l, NULL);
  CHECK_EQ(fd, -ENOMEM);
  CHECK_EQ(alloc_failures(&r), 1);
  CHECK(!rp_next(&r, &p));                        /* no RST: the connection lives */
  CHECK(ustcp_sock_events(r.s, l) & USTCP_POLLIN);
  CHECK(rp_stack_problem(&r) == NULL);
  fd = ustcp_accept(r.s, l, NULL);
  CHECK_EQ(fd, 64);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  char buf[8];
  CHECK_EQ(ustcp_recv(r.s, fd, buf, sizeof buf, 0), 5);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* The receive buffer is allocated on the first byte. When that fails the data
 * is not stored, so it must not be acknowledged: the peer resends it. */
static void data_not_acked_when_receive_buffer_alloc_fails(void)
{
  struct rp r;
  rp_init(&r, NULL, 6);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40000, 80, 1000, NULL);
  CHECK(fd >= 0);
  struct failer f;
  arm(&r, &f, 1024, 1);   /* a ring's first storage (buf.c RING_MIN_SIZE, issue 12) */
  rp_clear(&r);
  uint32_t seq = c.snd_nxt;
  rp_seg(&r, &c, TCP_ACK | TCP_PSH, "abcdef", 6, 65535);
  CHECK_EQ(alloc_failures(&r), 1);
  char buf[16];
  CHECK_EQ(ustcp_recv(r.s, fd, buf, sizeof buf, 0), -EAGAIN);
  rp_advance(&r, 300 * USTCP_MSEC);
  struct tcp_packet p;
  while (rp_next(&r, &p)) CHECK(seq_leq(p.tcp.ack, seq));   /* never ACKed */
  c.snd_nxt = seq;                                           /* the peer resends */
  rp_seg(&r, &c, TCP_ACK | TCP_PSH, "abcdef", 6, 65535);
  CHECK_EQ(ustcp_recv(r.s, fd, buf, sizeof buf, 0), 6);
  CHECK_MEM(buf, "abcdef", 6);
  rp_advance(&r, 300 * USTCP_MSEC);
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.ack, seq + 6);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* send() that cannot get its buffer says -ENOMEM (never a silent 0 or a lie);
 * the next send works. */
static void send_reports_enomem_when_send_buffer_alloc_fails(void)
{
  struct rp r;
  rp_init(&r, NULL, 7);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40000, 80, 1000, NULL);
  CHECK(fd >= 0);
  struct failer f;
  arm(&r, &f, 1024, 1);   /* a ring's first storage (buf.c RING_MIN_SIZE, issue 12) */
  rp_clear(&r);
  CHECK_EQ(ustcp_send(r.s, fd, "xyz", 3, 0), -ENOMEM);
  struct tcp_packet p;
  CHECK(!rp_next(&r, &p));
  CHECK_EQ(alloc_failures(&r), 1);
  CHECK(ustcp_sock_events(r.s, fd) & USTCP_POLLOUT);
  CHECK_EQ(ustcp_send(r.s, fd, "xyz", 3, 0), 3);
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.payload_len, 3);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* A SYN whose control block cannot be made is dropped and counted; the
 * client's retransmission gets the SYN-ACK. */
static void syn_dropped_and_counted_when_block_alloc_fails(void)
{
  struct rp r;
  rp_init(&r, NULL, 8);
  int l = rp_listen(&r, 80, 16);
  CHECK(l >= 0);
  struct failer f;
  arm(&r, &f, sizeof(struct tcb), 1);            /* the SYN_RCVD child */
  struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
  rp_clear(&r);
  rp_send_from(&r, RP_PEER_IP, 40000, 80, 1000, 0, TCP_SYN, 65535, &o, NULL, 0);
  struct tcp_packet p;
  CHECK(!rp_next(&r, &p));                        /* no SYN-ACK, no RST */
  CHECK_EQ(alloc_failures(&r), 1);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_send_from(&r, RP_PEER_IP, 40000, 80, 1000, 0, TCP_SYN, 65535, &o, NULL, 0);
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.flags, TCP_SYN | TCP_ACK);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* A self-connect (H9) whose looped-back packets cannot be queued: each loss is
 * counted and retransmission completes the handshake. */
static void loopback_packet_alloc_failure_is_a_counted_loss(void)
{
  struct rp r;
  rp_init(&r, NULL, 9);
  int fd = ustcp_socket(r.s);
  struct ustcp_addr me = {RP_LOCAL_IP, 5555};
  CHECK_EQ(ustcp_bind(r.s, fd, &me), 0);
  struct failer f;
  /* a loopback packet: its queue header (next, len) and a SYN of 40 to 80 bytes */
  arm(&r, &f, 2 * sizeof(void *) + 40, 1);
  f.size_max = 2 * sizeof(void *) + 80;
  CHECK_EQ(ustcp_connect(r.s, fd, &me), -EINPROGRESS);
  CHECK_EQ(f.failed, 1);
  CHECK_EQ(alloc_failures(&r), 1);
  CHECK_EQ(rp_state(&r, fd), USTCP_SYN_SENT);
  rp_advance(&r, 1100 * USTCP_MSEC);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(listener_reachable_when_table_alloc_fails);
  RUN(connection_reachable_when_table_alloc_fails);
  RUN(no_connection_without_timers_when_heap_alloc_fails);
  RUN(readiness_not_lost_when_queue_alloc_fails);
  RUN(accept_keeps_connection_when_descriptor_alloc_fails);
  RUN(data_not_acked_when_receive_buffer_alloc_fails);
  RUN(send_reports_enomem_when_send_buffer_alloc_fails);
  RUN(syn_dropped_and_counted_when_block_alloc_fails);
  RUN(loopback_packet_alloc_failure_is_a_counted_loss);
  return check_report();
}
