/* D4 / W5 / resource exhaustion (issue 6): a peer that never acknowledges.
 * Proves, with the time bounds of Linux's defaults:
 *   - data sent on an established connection is retransmitted with exponential
 *     backoff (each interval at least the previous, capped at rto_max 120 s),
 *     retries2 (15) times, then the connection fails with ETIMEDOUT: the
 *     application's recv() and send() report it, about 924.6 s after the
 *     first send (0.2 s * (2^10 - 1) + 6 * 120 s, RTO from the handshake's
 *     RTT floored at rto_min 200 ms);
 *   - memory is bounded meanwhile (control block + one send buffer) and freed
 *     after close();
 *   - an orphan (closed with unacknowledged data) gives up after
 *     orphan_retries (0 = 8) retransmissions, earlier, and frees everything;
 *   - an unanswered SYN fails connect() with ETIMEDOUT after syn_retries (6):
 *     127 s (H4). */
#include "check.h"
#include "rawpeer.h"

/* Runs until fd (or, with fd < 0, the only connection) is gone; counts data
 * retransmissions and checks the backoff. Returns the time it took. */
static uint64_t run_unacked(struct rp *r, int fd, int *retrans, uint64_t *max_gap, bool *monotone)
{
  uint64_t t0 = r->now, last = 0, prev = 0;
  *retrans = 0;
  *max_gap = 0;
  *monotone = true;
  for (int ms = 0; ms < 3600 * 1000; ms += 100) {
    rp_advance(r, 100 * USTCP_MSEC);
    struct tcp_packet p;
    while (rp_next(r, &p)) {
      if (!p.payload_len) continue;
      (*retrans)++;
      if (last) {
        uint64_t gap = r->now - last;
        if (gap + 100 * USTCP_MSEC < prev) *monotone = false;
        if (gap > *max_gap) *max_gap = gap;
        prev = gap;
      }
      last = r->now;
    }
    struct ustcp_stats st;
    ustcp_get_stats(r->s, &st);
    if (fd >= 0 ? rp_state(r, fd) == USTCP_CLOSED : st.conns_alive == 1) return r->now - t0;
  }
  return 0;
}

static void peer_never_acks_times_out_after_retries2(void)
{
  struct rp r;
  rp_init(&r, NULL, 71);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 45555, 80, 1, NULL);
  CHECK(fd >= 0);
  rp_clear(&r);
  static uint8_t d[4000];
  CHECK_EQ(ustcp_send(r.s, fd, d, sizeof d, 0), 4000);
  struct tcp_packet p;
  while (rp_next(&r, &p)) {}                          /* the first transmission */
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  uint64_t mem = st.mem_bytes;
  int retrans;
  uint64_t max_gap;
  bool monotone;
  uint64_t took = run_unacked(&r, fd, &retrans, &max_gap, &monotone);
  printf("peer never ACKs: %d retransmissions, backoff to %.0f s, ETIMEDOUT after %.1f s "
         "(engine memory %llu bytes meanwhile)\n", retrans, (double)max_gap / USTCP_SEC,
         (double)took / USTCP_SEC, (unsigned long long)mem);
  CHECK(took > 0);
  CHECK_EQ(retrans, (int)ustcp_get_config(r.s)->retries2);
  CHECK(monotone);
  CHECK(max_gap <= ustcp_get_config(r.s)->rto_max_us + USTCP_MSEC * 100);
  CHECK(took >= 900 * USTCP_SEC && took <= 950 * USTCP_SEC);
  uint8_t b[4];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), -ETIMEDOUT);
  CHECK_EQ(ustcp_send(r.s, fd, b, sizeof b, 0), -EPIPE);
  CHECK(rp_stack_problem(&r) == NULL);
  CHECK_EQ(ustcp_close(r.s, fd), 0);
  CHECK_EQ(ustcp_close(r.s, l), 0);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.conns_alive, 0);
  CHECK_EQ(st.mem_bytes, 0);
  rp_free(&r);
}

static void orphan_never_acked_gives_up_after_orphan_retries(void)
{
  struct rp r;
  rp_init(&r, NULL, 72);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 45556, 80, 1, NULL);
  static uint8_t d[3000];
  CHECK_EQ(ustcp_send(r.s, fd, d, sizeof d, 0), 3000);
  CHECK_EQ(ustcp_close(r.s, fd), 0);                  /* FIN queued behind the data */
  rp_clear(&r);
  int retrans;
  uint64_t max_gap;
  bool monotone;
  uint64_t took = run_unacked(&r, -1, &retrans, &max_gap, &monotone);
  printf("orphan never ACKed: %d retransmissions, dropped after %.1f s\n", retrans,
         (double)took / USTCP_SEC);
  CHECK(took > 0);
  CHECK(retrans <= 8 + 1);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.conns_alive, 1);
  CHECK(rp_stack_problem(&r) == NULL);
  CHECK_EQ(ustcp_close(r.s, l), 0);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.mem_bytes, 0);
  rp_free(&r);
}

static void unanswered_syn_fails_after_syn_retries(void)
{
  struct rp r;
  rp_init(&r, NULL, 73);
  int fd = ustcp_socket(r.s);
  struct ustcp_addr to = {RP_PEER_IP, 80};
  uint64_t t0 = r.now;
  CHECK_EQ(ustcp_connect(r.s, fd, &to), -EINPROGRESS);
  int syns = 0;
  while (rp_state(&r, fd) == USTCP_SYN_SENT && r.now - t0 < 300 * USTCP_SEC) {
    rp_advance(&r, 100 * USTCP_MSEC);
    struct tcp_packet p;
    while (rp_next(&r, &p)) syns += (p.tcp.flags & TCP_SYN) != 0;
  }
  CHECK_EQ(syns, 1 + 6);
  CHECK(r.now - t0 >= 127 * USTCP_SEC && r.now - t0 <= 128 * USTCP_SEC);
  CHECK_EQ(ustcp_connect(r.s, fd, &to), -ETIMEDOUT);
  CHECK_EQ(ustcp_close(r.s, fd), 0);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.mem_bytes, 0);
  rp_free(&r);
}

int main(void)
{
  RUN(peer_never_acks_times_out_after_retries2);
  RUN(orphan_never_acked_gives_up_after_orphan_retries);
  RUN(unanswered_syn_fails_after_syn_retries);
  return check_report();
}
