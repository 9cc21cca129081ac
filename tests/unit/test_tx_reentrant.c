/* A callback that is handed an outgoing packet may itself send (here:
 * ustcp_send on another connection from the capture callback, with TCP_NODELAY
 * so the segments go at once). The nested packets must not be built over the
 * one the callback is still holding (issue 10, point 7 moved packets off the C
 * stack: they must not move into one shared buffer either), and all must leave,
 * in order, intact. Run under ASan by make test-asan. */
#include "check.h"
#include "rawpeer.h"

struct nest {
  struct rp *r;
  int fd;         /* the other connection */
  int armed;
  int nested_sends;
  bool held_intact;
};

static void cap_cb(void *ctx, bool outbound, const uint8_t *pkt, size_t len, uint64_t now)
{
  struct nest *n = ctx;
  (void)now;
  struct tcp_packet p;
  if (!outbound || !n->armed || tcp_packet_decode(pkt, len, &p) != WIRE_OK) return;
  if (p.payload_len != 1 || p.payload[0] != 'A') return;
  n->armed = 0;
  static uint8_t snapshot[2048];
  memcpy(snapshot, pkt, len);
  /* Send from inside the callback: two segments, 'B' then 'C'. */
  if (ustcp_send(n->r->s, n->fd, "B", 1, 0) == 1) n->nested_sends++;
  if (ustcp_send(n->r->s, n->fd, "C", 1, 0) == 1) n->nested_sends++;
  n->held_intact = memcmp(snapshot, pkt, len) == 0;
}

static void nested_send_from_capture(void)
{
  struct rp r;
  rp_init(&r, NULL, 7);
  int l = rp_listen(&r, 80, 8);
  CHECK(l >= 0);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40000, 80, 5000, NULL);
  CHECK(fd >= 0);
  struct rp_conn c2;
  int fd2 = rp_handshake_in(&r, &c2, l, RP_PEER_IP, 40001, 80, 9000, NULL);
  CHECK(fd2 >= 0);
  int one = 1;
  CHECK_EQ(ustcp_setsockopt(r.s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &one, sizeof one), 0);
  CHECK_EQ(ustcp_setsockopt(r.s, fd2, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &one, sizeof one), 0);
  struct nest n = {&r, fd2, 1, 0, false};
  ustcp_set_capture_cb(r.s, cap_cb, &n);
  rp_clear(&r);
  CHECK_EQ(ustcp_send(r.s, fd, "A", 1, 0), 1);
  CHECK_EQ(n.nested_sends, 2);
  CHECK(n.held_intact);                 /* the packet in the callback's hands */
  /* 'A' on the first connection; 'B' then 'C' on the second. The order across
   * the two connections is the callbacks' business (notify.c), not checked. */
  struct tcp_packet p;
  int got_a = 0, got_bc = 0;
  for (int i = 0; i < 3; i++) {
    CHECK(rp_next(&r, &p));
    CHECK_EQ(p.payload_len, 1);
    if (p.payload_len != 1) continue;
    if (p.tcp.dst_port == 40000) {
      CHECK_EQ(p.payload[0], 'A');
      CHECK_EQ(p.tcp.seq, c.rcv_nxt);
      got_a++;
    } else {
      CHECK_EQ(p.tcp.dst_port, 40001);
      CHECK_EQ(p.payload[0], got_bc == 0 ? 'B' : 'C');
      CHECK_EQ(p.tcp.seq, c2.rcv_nxt + (uint32_t)got_bc);
      got_bc++;
    }
  }
  CHECK_EQ(got_a, 1);
  CHECK_EQ(got_bc, 2);
  CHECK(!rp_next(&r, &p));
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.loop_dropped, 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(nested_send_from_capture);
  return check_report();
}
