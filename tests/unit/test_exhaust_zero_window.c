/* D3 / resource exhaustion (issue 6): a peer that advertises a zero window.
 * Proves, with the limits stated:
 *   - forever, answering every probe: the sender's memory stays bounded (its
 *     control block and send buffer, wmem_default = 16 KB: send() says EAGAIN
 *     once it is full); zero-window probes go on with exponential backoff, the
 *     interval capped at rto_max (120 s); the connection lives as long as the
 *     peer answers (as Linux: a live receiver may keep its window closed), and
 *     when the window opens every queued byte goes through in order;
 *   - a peer that closes its window and then vanishes: after retries2 (15)
 *     unanswered probes the connection fails with ETIMEDOUT (Linux's
 *     tcp_probe_timer). Time bound: the probes' intervals, rto * 2^k capped at
 *     rto_max: about 0.2 s * (2^10 - 1) + 6 * 120 s, under 16 minutes;
 *   - an orphan (closed with data queued behind the zero window) is dropped
 *     after orphan_retries (8) probes even if the peer answers them, freeing
 *     its memory. */
#include "check.h"
#include "rawpeer.h"

static uint32_t queued;   /* bytes setup() left in the send buffer */

/* A connection whose peer's window is zero, with the send buffer full. */
static int setup(struct rp *r, struct rp_conn *c, uint64_t seed)
{
  rp_init(r, NULL, seed);
  int l = rp_listen(r, 80, 16);
  int fd = rp_handshake_in(r, c, l, RP_PEER_IP, 44444, 80, 777, NULL);
  rp_seg(r, c, TCP_ACK, NULL, 0, 0);                    /* window 0 */
  static uint8_t d[65536];
  for (size_t i = 0; i < sizeof d; i++) d[i] = (uint8_t)(i * 7);
  ssize_t n = ustcp_send(r->s, fd, d, sizeof d, 0);
  /* The send buffer as the handshake left it: wmem_default, grown to two
   * initial windows (Linux's tcp_init_buffer_space, issue 12). */
  int sb = 0;
  size_t sl = sizeof sb;
  CHECK_EQ(ustcp_getsockopt(r->s, fd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &sb, &sl), 0);
  CHECK(sb >= (int)ustcp_get_config(r->s)->wmem_default);
  CHECK_EQ(n, (ssize_t)sb);
  queued = (uint32_t)n;
  CHECK_EQ(ustcp_send(r->s, fd, d, 100, 0), -EAGAIN);
  rp_clear(r);
  return fd;
}

static bool is_probe(const struct tcp_packet *p, const struct rp_conn *c)
{
  return p->tcp.seq == c->rcv_nxt - 1 && p->payload_len == 0;
}

static void zero_window_forever_probes_back_off_memory_bounded(void)
{
  struct rp r;
  struct rp_conn c;
  int fd = setup(&r, &c, 61);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  uint64_t mem0 = st.mem_bytes;
  uint64_t last = 0, prev_gap = 0, max_gap = 0;
  int probes = 0, data = 0;
  bool monotone = true;
  for (int sec = 0; sec < 2 * 3600; sec++) {
    rp_advance(&r, USTCP_SEC);
    struct tcp_packet p;
    while (rp_next(&r, &p)) {
      if (p.payload_len) data++;
      if (!is_probe(&p, &c)) continue;
      probes++;
      if (last) {
        uint64_t gap = r.now - last;
        if (gap + USTCP_SEC < prev_gap) monotone = false;
        if (gap > max_gap) max_gap = gap;
        prev_gap = gap;
      }
      last = r.now;
      rp_seg(&r, &c, TCP_ACK, NULL, 0, 0);             /* alive, window still 0 */
    }
  }
  ustcp_get_stats(r.s, &st);
  printf("zero window for 2 h: %d probes, interval backing off to %.0f s (rto_max 120 s); engine "
         "memory %llu -> %llu bytes\n", probes, (double)max_gap / USTCP_SEC,
         (unsigned long long)mem0, (unsigned long long)st.mem_bytes);
  CHECK(probes >= 50);
  CHECK(monotone);
  CHECK(max_gap <= 121 * USTCP_SEC);
  CHECK_EQ(data, 0);                                    /* nothing beyond the zero window */
  CHECK_EQ(st.mem_bytes, mem0);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  CHECK_EQ(ustcp_sock_error(r.s, fd), 0);
  /* The window opens: all the queued bytes arrive, in order. */
  rp_seg(&r, &c, TCP_ACK, NULL, 0, 65535);
  uint32_t got = 0;
  bool in_order = true;
  for (int i = 0; i < 50 && got < queued; i++) {
    struct tcp_packet p;
    while (rp_next(&r, &p)) {
      if (!p.payload_len) continue;
      if (p.tcp.seq != c.rcv_nxt) { in_order = false; continue; }
      for (size_t k = 0; k < p.payload_len; k++)
        if (p.payload[k] != (uint8_t)((got + k) * 7)) in_order = false;
      c.rcv_nxt += (uint32_t)p.payload_len;
      got += (uint32_t)p.payload_len;
      rp_seg(&r, &c, TCP_ACK, NULL, 0, 65535);
    }
    rp_advance(&r, 10 * USTCP_MSEC);
  }
  CHECK_EQ(got, queued);
  CHECK(in_order);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void zero_window_peer_gone_times_out(void)
{
  struct rp r;
  struct rp_conn c;
  int fd = setup(&r, &c, 62);
  uint64_t t0 = r.now;
  int probes = 0;
  uint64_t end = 0;
  for (int sec = 0; sec < 3600 && !end; sec++) {
    rp_advance(&r, USTCP_SEC);
    struct tcp_packet p;
    while (rp_next(&r, &p)) if (is_probe(&p, &c)) probes++;   /* never answered */
    if (rp_state(&r, fd) == USTCP_CLOSED) end = r.now;
  }
  printf("zero window, peer gone: %d unanswered probes, ETIMEDOUT after %.0f s\n", probes,
         end ? (double)(end - t0) / USTCP_SEC : -1.0);
  CHECK(end != 0);
  CHECK(end - t0 <= 16 * 60 * USTCP_SEC);
  CHECK_EQ(probes, (int)ustcp_get_config(r.s)->retries2);
  uint8_t b[4];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), -ETIMEDOUT);
  CHECK(rp_stack_problem(&r) == NULL);
  CHECK_EQ(ustcp_close(r.s, fd), 0);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.conns_alive, 1);                          /* the listener */
  rp_free(&r);
}

static void zero_window_orphan_dropped_after_orphan_retries(void)
{
  struct rp r;
  struct rp_conn c;
  int fd = setup(&r, &c, 63);
  CHECK_EQ(ustcp_close(r.s, fd), 0);                    /* orphan, 16 KB queued */
  int probes = 0;
  for (int sec = 0; sec < 3600; sec++) {
    rp_advance(&r, USTCP_SEC);
    struct tcp_packet p;
    while (rp_next(&r, &p))
      if (is_probe(&p, &c)) {
        probes++;
        rp_seg(&r, &c, TCP_ACK, NULL, 0, 0);            /* answered: still zero */
      }
  }
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  printf("zero window, orphan: dropped after %d answered probes\n", probes);
  CHECK_EQ(st.conns_alive, 1);                          /* the listener only */
  CHECK(probes <= 8 + 1);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(zero_window_forever_probes_back_off_memory_bounded);
  RUN(zero_window_peer_gone_times_out);
  RUN(zero_window_orphan_dropped_after_orphan_retries);
  return check_report();
}
