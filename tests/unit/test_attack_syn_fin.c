/* Issue 10 point 9 (TCP part): impossible flag combinations on a SYN. No stack
 * sends SYN+FIN or SYN+RST; scanners and fingerprinting tools do (a SYN+FIN
 * passed some packet filters that matched "SYN without FIN"). Linux drops them
 * at a listener (tcp_rcv_state_process, LISTEN: RST first, then SYN with FIN
 * -> SKB_DROP_REASON_TCP_FLAGS); so does ustcp, counting them in
 * stats.syn_bad_flags. Proves:
 *   - a listener answers neither SYN+FIN (with or without PSH/URG/data) nor
 *     SYN+RST: nothing is sent, no child is created, each is counted;
 *   - an ordinary SYN right after still opens a connection;
 *   - in a synchronized state SYN+FIN is a SYN (RFC 5961 §4): one challenge
 *     ACK, the connection stays;
 *   - a SYN+FIN does not end TIME_WAIT (a plain SYN would reopen it, W10):
 *     the listener would drop it, and TIME_WAIT must not end for a segment
 *     nobody accepts. */
#include "check.h"
#include "rawpeer.h"

static size_t conns(struct rp *r)
{
  struct ustcp_sock_row rows[16];
  return ustcp_sock_table(r->s, rows, 16);
}

static void listener_drops_syn_fin_and_syn_rst(void)
{
  struct rp r;
  rp_init(&r, NULL, 7);
  int l = rp_listen(&r, 80, 16);
  CHECK(l >= 0);
  size_t before = conns(&r);
  struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
  const uint8_t flags[] = {TCP_SYN | TCP_FIN, TCP_SYN | TCP_FIN | TCP_PSH,
                           TCP_SYN | TCP_FIN | TCP_URG | TCP_PSH, TCP_SYN | TCP_RST,
                           TCP_SYN | TCP_RST | TCP_FIN};
  unsigned n = sizeof flags;
  rp_clear(&r);
  uint64_t sent0 = r.sent_total;
  for (unsigned i = 0; i < n; i++)
    rp_send_from(&r, RP_PEER_IP, (uint16_t)(20000 + i), 80, 1000u * i, 0, flags[i], 65535, &o,
                 i == 1 ? "x" : NULL, i == 1 ? 1 : 0);
  CHECK_EQ(r.sent_total - sent0, 0);
  CHECK_EQ(conns(&r), before);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.syn_bad_flags, n);
  CHECK_EQ(st.syn_queue_drops, 0);
  printf("listener: %u SYNs with FIN or RST: %llu answered, %llu counted in syn_bad_flags\n", n,
         (unsigned long long)(r.sent_total - sent0), (unsigned long long)st.syn_bad_flags);
  /* An ordinary SYN still works. */
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 30000, 80, 5000, NULL);
  CHECK(fd >= 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void syn_fin_in_synchronized_states(void)
{
  struct rp r;
  rp_init(&r, NULL, 8);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 30001, 80, 0x1000, NULL);
  CHECK(fd >= 0);
  rp_clear(&r);
  rp_send_from(&r, RP_PEER_IP, 30001, 80, c.snd_nxt + 10, 0, TCP_SYN | TCP_FIN, 65535, NULL, NULL, 0);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.flags, TCP_ACK);
  CHECK_EQ(p.tcp.ack, c.snd_nxt);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);

  /* TIME_WAIT: an active close by the stack. */
  CHECK_EQ(ustcp_shutdown(r.s, fd, USTCP_SHUT_WR), 0);
  c.rcv_nxt++;
  rp_seg(&r, &c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
  CHECK_EQ(rp_state(&r, fd), USTCP_TIME_WAIT);
  rp_advance(&r, USTCP_SEC);
  rp_clear(&r);
  uint64_t sent0 = r.sent_total;
  rp_send_from(&r, RP_PEER_IP, 30001, 80, c.snd_nxt + 100000, 0, TCP_SYN | TCP_FIN, 65535, NULL,
               NULL, 0);
  CHECK_EQ(rp_state(&r, fd), USTCP_TIME_WAIT);
  CHECK(r.sent_total - sent0 <= 1);          /* a challenge ACK at most, no SYN-ACK */
  while (rp_next(&r, &p)) CHECK(!(p.tcp.flags & TCP_SYN));
  /* A plain SYN there does reopen it (W10): the test can tell the difference. */
  rp_clear(&r);
  rp_send_from(&r, RP_PEER_IP, 30001, 80, c.snd_nxt + 100000, 0, TCP_SYN, 65535, NULL, NULL, 0);
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.flags, TCP_SYN | TCP_ACK);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(listener_drops_syn_fin_and_syn_rst);
  RUN(syn_fin_in_synchronized_states);
  return check_report();
}
