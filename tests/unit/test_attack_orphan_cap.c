/* Attack: a peer that never acknowledges a FIN keeps every connection the
 * application closes alive as an orphan (FIN_WAIT_1, retransmitting) for
 * minutes (issue 10 point 5). Linux caps orphans with net.ipv4.tcp_max_orphans:
 * when close() would leave more than that many, it resets the connection
 * instead ("too many orphaned sockets", TCPAbortOnMemory; tcp_close ->
 * tcp_check_oom). Proves:
 *   - the default is Linux's (131072 here);
 *   - with max_orphans = 2, closing five connections whose peer is silent
 *     leaves two orphans in FIN_WAIT_1 and resets the other three (the peer sees
 *     their FIN, then RST; stats.abort_on_memory = 3, stats.orphans = 2);
 *   - an orphan that reaches TIME_WAIT or is reset stops counting, so a later
 *     close is allowed to finish gracefully again.
 */
#include "check.h"
#include "rawpeer.h"

static void orphans_capped(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  CHECK_EQ(cfg.max_orphans, 131072);
  cfg.max_orphans = 2;
  struct rp r;
  rp_init(&r, &cfg, 601);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c[7];
  for (int k = 0; k < 5; k++)
    CHECK(rp_handshake_in(&r, &c[k], l, RP_PEER_IP, (uint16_t)(43000 + k), 80,
                          3000000u * (uint32_t)(k + 1), NULL) >= 0);
  for (int k = 0; k < 5; k++) {
    rp_clear(&r);
    CHECK_EQ(ustcp_close(r.s, c[k].fd), 0);
    struct tcp_packet p;
    bool fin = false, rst = false;
    while (rp_next(&r, &p)) {
      fin |= (p.tcp.flags & TCP_FIN) != 0;
      rst |= (p.tcp.flags & TCP_RST) != 0;
    }
    CHECK(fin);               /* the FIN goes out first, as in Linux's tcp_close */
    CHECK_EQ(rst, k >= 2);
  }
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.abort_on_memory, 3);
  CHECK_EQ(st.orphans, 2);
  CHECK_EQ(st.conns_alive, 1 + 2);
  CHECK(rp_stack_problem(&r) == NULL);

  /* Orphan 0 finishes into TIME_WAIT; orphan 1 is reset by its peer. */
  c[0].rcv_nxt++;
  rp_seg(&r, &c[0], TCP_ACK | TCP_FIN, NULL, 0, 65535);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.orphans, 1);
  CHECK_EQ(st.time_wait, 1);
  rp_send_from(&r, c[1].peer_ip, c[1].peer_port, 80, c[1].snd_nxt, 0, TCP_RST, 0, NULL, NULL, 0);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.orphans, 0);

  /* Room again: two more closes finish gracefully, a third is reset. */
  for (int k = 5; k < 7; k++)
    CHECK(rp_handshake_in(&r, &c[k], l, RP_PEER_IP, (uint16_t)(43000 + k), 80,
                          3000000u * (uint32_t)(k + 1), NULL) >= 0);
  struct rp_conn extra;
  CHECK(rp_handshake_in(&r, &extra, l, RP_PEER_IP, 43100, 80, 123456, NULL) >= 0);
  rp_clear(&r);
  CHECK_EQ(ustcp_close(r.s, c[5].fd), 0);
  CHECK_EQ(ustcp_close(r.s, c[6].fd), 0);
  CHECK_EQ(ustcp_close(r.s, extra.fd), 0);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.orphans, 2);
  CHECK_EQ(st.abort_on_memory, 4);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(orphans_capped);
  return check_report();
}
