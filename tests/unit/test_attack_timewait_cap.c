/* Attack: connections opened and closed as fast as a peer can, each leaving a
 * TIME_WAIT entry for 2MSL (issue 10 point 5). Linux caps them with
 * net.ipv4.tcp_max_tw_buckets: past the cap a connection skips TIME_WAIT and
 * closes at once, counted as TCPTimeWaitOverflow (tcp_time_wait when
 * inet_twsk_alloc fails). Proves:
 *   - the default is Linux's (131072 here, half its established hash table);
 *   - with max_tw_buckets = 3, five active closes leave three TIME_WAIT entries,
 *     the other two close (stats.tw_overflow = 2), and every peer still gets the
 *     ACK of its FIN;
 *   - stats.time_wait counts the entries, and once they expire the cap frees up:
 *     the next close enters TIME_WAIT again.
 */
#include "check.h"
#include "rawpeer.h"

static size_t count_state(struct rp *r, enum ustcp_state st)
{
  struct ustcp_sock_row rows[64];
  size_t n = ustcp_sock_table(r->s, rows, 64), k = 0;
  for (size_t i = 0; i < n && i < 64; i++) k += rows[i].state == st;
  return k;
}

/* The stack closes first; the peer ACKs its FIN and sends its own (W3). Returns
 * true if the stack ACKed the peer's FIN. */
static bool active_close(struct rp *r, struct rp_conn *c)
{
  rp_clear(r);
  CHECK_EQ(ustcp_close(r->s, c->fd), 0);
  struct tcp_packet p;
  bool fin = false;
  while (rp_next(r, &p)) fin |= (p.tcp.flags & TCP_FIN) != 0;
  CHECK(fin);
  c->rcv_nxt++;                                  /* the stack's FIN */
  rp_clear(r);
  rp_seg(r, c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
  memset(&p, 0, sizeof p);
  return rp_last(r, &p) && (p.tcp.flags & TCP_ACK) && p.tcp.ack == c->snd_nxt &&
         !(p.tcp.flags & TCP_RST);
}

static void time_wait_capped(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  CHECK_EQ(cfg.max_tw_buckets, 131072);
  cfg.max_tw_buckets = 3;
  struct rp r;
  rp_init(&r, &cfg, 501);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c[6];
  for (int k = 0; k < 5; k++)
    CHECK(rp_handshake_in(&r, &c[k], l, RP_PEER_IP, (uint16_t)(42000 + k), 80,
                          7000000u * (uint32_t)(k + 1), NULL) >= 0);
  for (int k = 0; k < 5; k++) CHECK(active_close(&r, &c[k]));
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(count_state(&r, USTCP_TIME_WAIT), 3);
  CHECK_EQ(st.tw_overflow, 2);
  CHECK_EQ(st.time_wait, 3);
  CHECK_EQ(st.conns_alive, 1 + 3);               /* the listener and three TIME_WAITs */
  CHECK(rp_stack_problem(&r) == NULL);
  /* A retransmitted FIN of a connection that skipped TIME_WAIT finds no
   * connection: RST, as Linux answers once the socket is gone. */
  rp_clear(&r);
  rp_send_from(&r, c[4].peer_ip, c[4].peer_port, 80, c[4].snd_nxt - 1, c[4].rcv_nxt,
               TCP_ACK | TCP_FIN, 65535, NULL, NULL, 0);
  struct tcp_packet p;
  memset(&p, 0, sizeof p);
  CHECK(rp_last(&r, &p) && (p.tcp.flags & TCP_RST));
  /* 2MSL later the entries are gone and the next close waits again. */
  rp_advance(&r, cfg.time_wait_us + USTCP_SEC);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.time_wait, 0);
  CHECK(rp_handshake_in(&r, &c[5], l, RP_PEER_IP, 42009, 80, 99000000u, NULL) >= 0);
  CHECK(active_close(&r, &c[5]));
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(count_state(&r, USTCP_TIME_WAIT), 1);
  CHECK_EQ(st.tw_overflow, 2);
  CHECK_EQ(st.time_wait, 1);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* A socket the application still holds: past the cap it goes to CLOSED and
 * reads EOF, as after TIME_WAIT. */
static void time_wait_capped_with_socket_open(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.max_tw_buckets = 0;
  struct rp r;
  rp_init(&r, &cfg, 502);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 42100, 80, 5555, NULL);
  CHECK(fd >= 0);
  CHECK_EQ(ustcp_shutdown(r.s, fd, USTCP_SHUT_WR), 0);
  c.rcv_nxt++;
  rp_clear(&r);
  rp_seg(&r, &c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
  struct tcp_packet p;
  memset(&p, 0, sizeof p);
  CHECK(rp_last(&r, &p) && p.tcp.ack == c.snd_nxt);
  CHECK_EQ(rp_state(&r, fd), USTCP_CLOSED);
  uint8_t b[8];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), 0);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.tw_overflow, 1);
  CHECK_EQ(st.time_wait, 0);
  CHECK_EQ(ustcp_close(r.s, fd), 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(time_wait_capped);
  RUN(time_wait_capped_with_socket_open);
  return check_report();
}
