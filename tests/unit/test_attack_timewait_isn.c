/* Issue 10 point 6: TIME_WAIT reuse picks a safe ISN (W10). When a new SYN
 * reopens a 4-tuple that is in TIME_WAIT, the new connection's ISN must lie
 * above everything the old incarnation sent (RFC 9293 §3.6.1), whatever the
 * ISN clock says: otherwise an old duplicate of the previous connection can
 * fall inside the new one's window. Linux (tcp_timewait_state_process) uses
 * the old SND.NXT + 65535 + 2; so does ustcp. Proves, for several seeds and
 * clock readings (the clock-based ISN would be anywhere):
 *   - the SYN-ACK of the reopened connection carries ISN = old snd_nxt + 65537;
 *   - the connection then completes and carries data;
 *   - the override is for that SYN only: the next new connection (another
 *     4-tuple) gets an ordinary ISN, not old + 65537 again. */
#include "check.h"
#include "rawpeer.h"

static void reopen(uint64_t seed, uint64_t wait_us, uint32_t bytes_before_close)
{
  struct rp r;
  rp_init(&r, NULL, seed);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 44444, 80, 0x10000000u, NULL);
  CHECK(fd >= 0);
  /* Data from the stack, so its snd_nxt moves away from its ISN. */
  static uint8_t d[60000];
  uint32_t sent = 0, acked = 0;
  for (int guard = 0; acked < bytes_before_close && guard < 100000; guard++) {
    if (sent < bytes_before_close) {
      uint32_t n = bytes_before_close - sent;
      if (n > sizeof d) n = sizeof d;
      ssize_t k = ustcp_send(r.s, fd, d, n, 0);
      if (k > 0) sent += (uint32_t)k;
    }
    /* ACK whatever the stack put on the wire. */
    struct tcp_packet q;
    while (rp_next(&r, &q))
      if (seq_gt(q.tcp.seq + (uint32_t)q.payload_len, c.rcv_nxt))
        c.rcv_nxt = q.tcp.seq + (uint32_t)q.payload_len;
    acked = c.rcv_nxt - c.stack_isn - 1;
    rp_seg(&r, &c, TCP_ACK, NULL, 0, 65535);
    rp_advance(&r, 1000);
  }
  CHECK_EQ(acked, bytes_before_close);
  /* Active close by the stack: TIME_WAIT. */
  CHECK_EQ(ustcp_close(r.s, fd), 0);
  c.rcv_nxt++;
  rp_seg(&r, &c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
  uint32_t old_snd_nxt = c.rcv_nxt;     /* the stack's snd_nxt: ISN + 1 + data + FIN */
  struct ustcp_sock_row row;
  CHECK_EQ(ustcp_sock_table(r.s, &row, 1) >= 1, 1);
  rp_advance(&r, wait_us);
  /* A new SYN above the old sequence space reopens the 4-tuple. */
  rp_clear(&r);
  struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
  uint32_t new_isn = c.snd_nxt + 100000;
  rp_send_from(&r, RP_PEER_IP, 44444, 80, new_isn, 0, TCP_SYN, 65535, &o, NULL, 0);
  struct tcp_packet p;
  bool got = rp_last(&r, &p);
  CHECK(got);
  if (!got) { rp_free(&r); return; }
  CHECK_EQ(p.tcp.flags, TCP_SYN | TCP_ACK);
  CHECK_EQ(p.tcp.ack, new_isn + 1);
  printf("seed %llu, %u bytes, reopened after %.1f s: old snd_nxt %u, new ISN %u (old + %u)\n",
         (unsigned long long)seed, bytes_before_close, wait_us / 1e6, old_snd_nxt, p.tcp.seq,
         p.tcp.seq - old_snd_nxt);
  CHECK_EQ(p.tcp.seq, old_snd_nxt + 65535 + 2);
  /* It completes and carries data. */
  struct rp_conn c2 = c;
  c2.stack_isn = p.tcp.seq;
  c2.rcv_nxt = p.tcp.seq + 1;
  c2.snd_nxt = new_isn + 1;
  rp_seg(&r, &c2, TCP_ACK, NULL, 0, 65535);
  int fd2 = ustcp_accept(r.s, l, NULL);
  CHECK(fd2 >= 0);
  rp_seg(&r, &c2, TCP_ACK | TCP_PSH, "hello", 5, 65535);
  char b[8];
  CHECK_EQ(ustcp_recv(r.s, fd2, b, sizeof b, 0), 5);
  /* The next connection (another 4-tuple) gets an ordinary ISN. */
  rp_clear(&r);
  rp_send_from(&r, RP_PEER_IP, 44445, 80, 0x12345678u, 0, TCP_SYN, 65535, &o, NULL, 0);
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.flags, TCP_SYN | TCP_ACK);
  CHECK(p.tcp.seq != old_snd_nxt + 65535 + 2);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void timewait_reuse_isn_above_old_snd_nxt(void)
{
  reopen(1, USTCP_SEC, 0);
  reopen(2, 10 * USTCP_SEC, 100000);
  reopen(3, 100 * USTCP_MSEC, 3000000);   /* the old connection ran far ahead of the clock */
  reopen(4, 59 * USTCP_SEC, 1000);
}

int main(void)
{
  RUN(timewait_reuse_isn_above_old_snd_nxt);
  return check_report();
}
