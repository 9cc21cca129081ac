/* D4 / resource exhaustion (issue 6): a peer that sends only out-of-order data
 * (never the byte at rcv_nxt), from everywhere in the window, overlapping, in
 * tiny and large pieces. Proves:
 *   - the out-of-order data never forms more than max_ooo_segments intervals
 *     (configurable; by default derived from the receive buffer, buffer/536 + 1;
 *     8 here), and its memory stays under the receive buffer (where the bytes
 *     are kept: the window already reserves it) plus the interval nodes (the
 *     pool at most doubles past the limit). Before the interval structure the
 *     bound was max_ooo_segments * (segment header + MSS): copies outside the
 *     buffer;
 *   - nothing is delivered to the application (recv says EAGAIN) and every
 *     segment is answered by a duplicate ACK at rcv_nxt (RFC 5681 §4.2);
 *   - data beyond the advertised window is never queued;
 *   - when the hole is finally filled, what the queue kept is delivered in
 *     order and byte-exact (the segments nearest rcv_nxt are the ones kept). */
#include "check.h"
#include "rawpeer.h"
#include "stack/stack_check.h"

static void ooo_only_queue_bounded(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.max_ooo_segments = 8;
  struct rp r;
  rp_init(&r, &cfg, 81);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 46666, 80, 5000, NULL);
  CHECK(fd >= 0);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  uint32_t wnd = ti.rcv_wnd;
  static uint8_t data[300000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 31 + 7);
  uint32_t base = c.snd_nxt;
  uint64_t rng = 99, max_mem = 0, mem0;
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  mem0 = st.mem_bytes;
  int dupacks = 0, segs = 0;
  for (int i = 0; i < 20000; i++) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    uint32_t off = 1 + (uint32_t)((rng >> 33) % (wnd + 20000));   /* never 0: the hole stays */
    uint32_t len = 1 + (uint32_t)((rng >> 20) % 1460);
    if (off + len > sizeof data) continue;
    rp_clear(&r);
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + off, c.rcv_nxt, TCP_ACK, 65535, NULL,
                 data + off, len);
    segs++;
    struct tcp_packet p;
    while (rp_next(&r, &p))
      if (p.tcp.ack == base) dupacks++;
    ustcp_get_stats(r.s, &st);
    if (st.mem_bytes > max_mem) max_mem = st.mem_bytes;
    struct tcb *t = sock_debug_tcb(r.s, fd, NULL);
    CHECK(t && t->ooo_count <= cfg.max_ooo_segments);
    uint32_t ol, orr;
    for (bool more = t && ooo_next(t, true, 0, &ol, &orr); more; more = ooo_next(t, false, ol, &ol, &orr))
      if (seq_gt(orr, t->rcv_adv)) { CHECK(!"queued beyond the window"); break; }
  }
  uint8_t b[64];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), -EAGAIN);
  struct tcb *tt = sock_debug_tcb(r.s, fd, NULL);
  uint64_t bound = (tt ? tt->rcvbuf.cap : 0) + sizeof(struct ooo_tree) + 2ull * cfg.max_ooo_segments * sizeof(struct ooo_node);
  printf("%d out-of-order segments: memory peaked at %llu bytes over the idle connection "
         "(bound %llu = receive buffer + 2 x %u interval nodes); %d duplicate ACKs\n", segs,
         (unsigned long long)(max_mem - mem0), (unsigned long long)bound, cfg.max_ooo_segments, dupacks);
  CHECK(max_mem - mem0 <= bound);
  CHECK_EQ(dupacks, segs);
  char buf[512];
  const char *why = stack_check(r.s, true, buf, sizeof buf);
  if (why) fprintf(stderr, "stack_check: %s\n", why);
  CHECK(why == NULL);
  /* The hole fills: whatever follows in order comes out byte-exact. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base, c.rcv_nxt, TCP_ACK, 65535, NULL, data, 1);
  static uint8_t got[300000];
  ssize_t n = ustcp_recv(r.s, fd, got, sizeof got, 0);
  CHECK(n >= 1);
  if (n > 0) CHECK_MEM(got, data, (size_t)n);
  rp_free(&r);
}

int main(void)
{
  RUN(ooo_only_queue_bounded);
  return check_report();
}
