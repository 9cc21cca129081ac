/* End-to-end tests: two (or more) ustcp stacks on the simulated network, in
 * virtual time. Each test names the seed-contract items it proves (DESIGN.md §1):
 * the four-way close in every order (W1-W4), lost waves (W5, W6, W8, W9), TIME_WAIT
 * (W10), CLOSE_WAIT and FIN_WAIT_2 lifetimes (W7, W11), self-connect (H9),
 * simultaneous open (H8), ephemeral ports and 4-tuples (H10), the accept queue
 * (H6), a SYN flood (H7), abortive close (D7) and the observability figures (A4).
 * States are checked on both sides after each step, received bytes are compared
 * with a position-dependent pattern, and every connection's sequence of state
 * events must be exactly RFC 9293's. */
#include "check.h"
#include "simnet.h"

#define CLIENT_IP 0x0a000001u
#define SERVER_IP 0x0a000002u
#define SERVER_PORT 80
#define MS USTCP_MSEC
#define SEC USTCP_SEC

/* One client and one server stack, 5 ms apart, events recorded on both. */
struct pair {
  struct simnet sn;
  struct ustcp_stack *c, *s;
  struct sn_evlog cev, sev;
  int lfd, cfd, sfd;
  uint16_t cport;
};

static struct pair P;   /* large (event logs): static, reset by pair_open */

static void pair_new(struct pair *p, uint64_t seed, const struct ustcp_config *cfg)
{
  memset(p, 0, sizeof *p);
  sn_init(&p->sn, seed);
  p->c = sn_add(&p->sn, "client", CLIENT_IP, cfg);
  p->s = sn_add(&p->sn, "server", SERVER_IP, cfg);
  struct sim_link_cfg lc = {.delay_us = 5 * MS};
  sim_set_all_links(p->sn.net, &lc);
  ustcp_set_event_cb(p->c, sn_ev_record, &p->cev);
  ustcp_set_event_cb(p->s, sn_ev_record, &p->sev);
  p->lfd = ustcp_socket(p->s);
  struct ustcp_addr sa = {SERVER_IP, SERVER_PORT};
  CHECK_EQ(ustcp_bind(p->s, p->lfd, &sa), 0);
  CHECK_EQ(ustcp_listen(p->s, p->lfd, 16), 0);
}

/* Connects client to server and accepts: both ESTABLISHED (H1, H2). */
static void pair_connect(struct pair *p)
{
  p->cfd = ustcp_socket(p->c);
  struct ustcp_addr sa = {SERVER_IP, SERVER_PORT};
  CHECK_EQ(ustcp_connect(p->c, p->cfd, &sa), -EINPROGRESS);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_SYN_SENT);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_ESTABLISHED);
  CHECK_EQ(ustcp_connect(p->c, p->cfd, &sa), 0);       /* non-blocking connect completes */
  struct ustcp_addr peer;
  p->sfd = ustcp_accept(p->s, p->lfd, &peer);
  CHECK(p->sfd >= 0);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_ESTABLISHED);
  struct ustcp_addr me;
  CHECK_EQ(ustcp_getsockname(p->c, p->cfd, &me), 0);
  CHECK_EQ(peer.ip, CLIENT_IP);
  CHECK_EQ(peer.port, me.port);
  p->cport = me.port;
}

/* Sends n1 bytes client->server and n2 server->client at the same time, checks
 * every byte. */
static void pair_exchange(struct pair *p, uint64_t n1, uint64_t n2, uint32_t salt)
{
  struct sn_stream up = {p->c, p->s, p->cfd, p->sfd, salt, n1, 0, 0, false, false, 0};
  struct sn_stream down = {p->s, p->c, p->sfd, p->cfd, salt + 1, n2, 0, 0, false, false, 0};
  struct sn_stream *sts[2] = {&up, &down};
  CHECK(sn_pump(&p->sn, sts, 2, 10 * MS, 60 * SEC));
  CHECK_EQ(up.got, n1);
  CHECK_EQ(down.got, n2);
  CHECK(!up.bad);
  CHECK(!down.bad);
  CHECK(!up.eof && !down.eof);
  sn_advance(&p->sn, 500 * MS);   /* quiet: delayed ACKs out */
}

#define EXPECT_STATES(log, lport, rport, ...) do {                                  \
    const int want_[] = {__VA_ARGS__};                                              \
    int got_[64];                                                                   \
    int n_ = sn_ev_states((log), (lport), (rport), got_, 64);                       \
    int nw_ = (int)(sizeof want_ / sizeof want_[0]);                                \
    CHECK_EQ(n_, nw_);                                                              \
    bool same_ = n_ == nw_;                                                         \
    for (int i_ = 0; same_ && i_ < nw_; i_++) same_ = got_[i_] == want_[i_];        \
    CHECK(same_);                                                                   \
    if (!same_) {                                                                   \
      fprintf(stderr, "  states:");                                                 \
      for (int i_ = 0; i_ < n_; i_++) fprintf(stderr, " %s", ustcp_state_name(got_[i_])); \
      fprintf(stderr, "\n");                                                        \
    }                                                                               \
  } while (0)


static void pair_free(struct pair *p)
{
  sn_free(&p->sn);
}

/* W1 active close by the client, W2 passive close by the server: FIN_WAIT_1 ->
 * FIN_WAIT_2 -> TIME_WAIT -> CLOSED after time_wait; CLOSE_WAIT (recv returns 0)
 * -> LAST_ACK -> CLOSED. */
static void W1_W2_client_closes_first(void)
{
  struct pair *p = &P;
  pair_new(p, 11, NULL);
  pair_connect(p);
  pair_exchange(p, 3000, 50000, 100);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  /* The FIN is out, not yet acknowledged: the closed socket is an orphan row. */
  struct ustcp_sock_row row[4];
  CHECK_EQ(ustcp_sock_table(p->c, row, 4), 1);
  CHECK_EQ(row[0].state, USTCP_FIN_WAIT_1);
  CHECK_EQ(row[0].fd, -1);
  sn_advance(&p->sn, 7 * MS);                 /* FIN arrived, ACK on its way back */
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSE_WAIT);
  sn_advance(&p->sn, 5 * MS);
  CHECK_EQ(ustcp_sock_table(p->c, row, 4), 1);
  CHECK_EQ(row[0].state, USTCP_FIN_WAIT_2);
  char b[16];
  CHECK_EQ(ustcp_recv(p->s, p->sfd, b, sizeof b, 0), 0);   /* W2: EOF */
  CHECK_EQ(ustcp_recv(p->s, p->sfd, b, sizeof b, 0), 0);
  sn_advance(&p->sn, 1 * SEC);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSE_WAIT);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  CHECK_EQ(sn_count_rows(p->s, USTCP_LAST_ACK), 1);
  sn_advance(&p->sn, 20 * MS);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);       /* only the listener is left */
  CHECK_EQ(ustcp_sock_table(p->c, row, 4), 1);
  CHECK_EQ(row[0].state, USTCP_TIME_WAIT);
  sn_advance(&p->sn, 59 * SEC);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  sn_advance(&p->sn, 1 * SEC);
  CHECK_EQ(sn_count_rows(p->c, -1), 0);
  EXPECT_STATES(&p->cev, p->cport, SERVER_PORT, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_ESTABLISHED,
                USTCP_FIN_WAIT_1, USTCP_FIN_WAIT_2, USTCP_TIME_WAIT, USTCP_CLOSED);
  EXPECT_STATES(&p->sev, SERVER_PORT, p->cport, USTCP_LISTEN, USTCP_SYN_RCVD, USTCP_ESTABLISHED,
                USTCP_CLOSE_WAIT, USTCP_LAST_ACK, USTCP_CLOSED);
  /* W10: only the active closer went through TIME_WAIT. */
  CHECK_EQ(ustcp_close(p->s, p->lfd), 0);
  struct ustcp_stats st;
  ustcp_get_stats(p->s, &st);
  CHECK_EQ(st.mem_bytes, 0);
  ustcp_get_stats(p->c, &st);
  CHECK_EQ(st.mem_bytes, 0);
  CHECK_EQ(st.conns_alive, 0);
  pair_free(p);
}

/* W1/W2 the other way round: the server closes first and waits in TIME_WAIT. */
static void W1_W2_server_closes_first(void)
{
  struct pair *p = &P;
  pair_new(p, 12, NULL);
  pair_connect(p);
  pair_exchange(p, 40000, 2000, 200);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 20 * MS);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_CLOSE_WAIT);
  CHECK_EQ(sn_count_rows(p->s, USTCP_FIN_WAIT_2), 1);
  /* W7: the half-closed client may still send; the orphan server... would RST
   * data for a closed application, so the client just reads EOF and closes. */
  char b[16];
  CHECK_EQ(ustcp_recv(p->c, p->cfd, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  CHECK_EQ(sn_count_rows(p->c, USTCP_LAST_ACK), 1);
  sn_advance(&p->sn, 20 * MS);
  CHECK_EQ(sn_count_rows(p->c, -1), 0);
  CHECK_EQ(sn_count_rows(p->s, USTCP_TIME_WAIT), 1);
  sn_advance(&p->sn, 61 * SEC);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);
  EXPECT_STATES(&p->cev, p->cport, SERVER_PORT, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_ESTABLISHED,
                USTCP_CLOSE_WAIT, USTCP_LAST_ACK, USTCP_CLOSED);
  EXPECT_STATES(&p->sev, SERVER_PORT, p->cport, USTCP_LISTEN, USTCP_SYN_RCVD, USTCP_ESTABLISHED,
                USTCP_FIN_WAIT_1, USTCP_FIN_WAIT_2, USTCP_TIME_WAIT, USTCP_CLOSED);
  pair_free(p);
}

/* W4: both close at the same virtual time: each FIN_WAIT_1 gets a FIN that does
 * not ACK its own -> CLOSING -> (ACK) TIME_WAIT on both sides. */
static void W4_simultaneous_close(void)
{
  struct pair *p = &P;
  pair_new(p, 13, NULL);
  pair_connect(p);
  pair_exchange(p, 5000, 5000, 300);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 7 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_CLOSING), 1);
  CHECK_EQ(sn_count_rows(p->s, USTCP_CLOSING), 1);
  sn_advance(&p->sn, 10 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  CHECK_EQ(sn_count_rows(p->s, USTCP_TIME_WAIT), 1);
  sn_advance(&p->sn, 61 * SEC);
  CHECK_EQ(sn_count_rows(p->c, -1), 0);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);
  EXPECT_STATES(&p->cev, p->cport, SERVER_PORT, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_ESTABLISHED,
                USTCP_FIN_WAIT_1, USTCP_CLOSING, USTCP_TIME_WAIT, USTCP_CLOSED);
  EXPECT_STATES(&p->sev, SERVER_PORT, p->cport, USTCP_LISTEN, USTCP_SYN_RCVD, USTCP_ESTABLISHED,
                USTCP_FIN_WAIT_1, USTCP_CLOSING, USTCP_TIME_WAIT, USTCP_CLOSED);
  pair_free(p);
}

/* W3 (a): the server application closes the moment it learns of the client's FIN
 * (from inside the readiness callback), so its FIN leaves in the same segment as
 * the ACK of the client's FIN: three segments, FIN_WAIT_1 -> TIME_WAIT. */
static int w3_fd = -1;
static void w3_ready(void *ctx, int fd, unsigned events)
{
  struct ustcp_stack *s = ctx;
  if (fd != w3_fd || !(events & USTCP_POLLRDHUP)) return;
  char b[4];
  CHECK_EQ(ustcp_recv(s, fd, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_close(s, fd), 0);
  w3_fd = -1;
}

static void W3_fin_ack_combined_by_app(void)
{
  struct pair *p = &P;
  pair_new(p, 14, NULL);
  pair_connect(p);
  pair_exchange(p, 1000, 1000, 400);
  w3_fd = p->sfd;
  ustcp_set_ready_cb(p->s, w3_ready, p->s);
  struct sim_stats a, b;
  sim_get_stats(p->sn.net, &a);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 100 * MS);
  sim_get_stats(p->sn.net, &b);
  CHECK_EQ(w3_fd, -1);
  CHECK_EQ(b.sent - a.sent, 3);                /* FIN, FIN+ACK, ACK */
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);
  EXPECT_STATES(&p->cev, p->cport, SERVER_PORT, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_ESTABLISHED,
                USTCP_FIN_WAIT_1, USTCP_TIME_WAIT);
  EXPECT_STATES(&p->sev, SERVER_PORT, p->cport, USTCP_LISTEN, USTCP_SYN_RCVD, USTCP_ESTABLISHED,
                USTCP_CLOSE_WAIT, USTCP_LAST_ACK, USTCP_CLOSED);
  pair_free(p);
}

/* W3 (b) and W6: the server's pure ACK of the client's FIN (the second wave) is
 * lost; the server closes 50 ms later, before the client's FIN is retransmitted,
 * so its FIN+ACK acknowledges the client's FIN: FIN_WAIT_1 -> TIME_WAIT, no
 * FIN_WAIT_2. */
static void W3_W6_fin_ack_combined_after_lost_ack(void)
{
  struct pair *p = &P;
  pair_new(p, 15, NULL);
  pair_connect(p);
  pair_exchange(p, 1000, 1000, 500);
  struct sim_drop_rule r;
  CHECK_EQ(sim_parse_drop_rule(p->sn.net, "server:ack#1", &r, NULL, 0), 0);
  CHECK_EQ(sim_add_drop_rule(p->sn.net, &r), 0);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 50 * MS);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSE_WAIT);
  CHECK_EQ(sn_count_rows(p->c, USTCP_FIN_WAIT_1), 1);   /* W6: the ACK is not resent */
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 20 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);
  EXPECT_STATES(&p->cev, p->cport, SERVER_PORT, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_ESTABLISHED,
                USTCP_FIN_WAIT_1, USTCP_TIME_WAIT);
  pair_free(p);
}

/* W6: the second wave (the ACK of the client's FIN) is lost and the server does
 * not close: ACKs are never retransmitted; the client's FIN retransmission
 * elicits a new ACK and the close goes on. */
static void W6_second_wave_lost(void)
{
  struct pair *p = &P;
  pair_new(p, 16, NULL);
  pair_connect(p);
  pair_exchange(p, 100, 100, 600);
  struct sim_drop_rule r;
  CHECK_EQ(sim_parse_drop_rule(p->sn.net, "server:ack#1", &r, NULL, 0), 0);
  CHECK_EQ(sim_add_drop_rule(p->sn.net, &r), 0);
  struct ustcp_stats st0, st1;
  ustcp_get_stats(p->c, &st0);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_FIN_WAIT_1), 1);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSE_WAIT);
  sn_advance(&p->sn, 3 * SEC);
  CHECK_EQ(sn_count_rows(p->c, USTCP_FIN_WAIT_2), 1);
  ustcp_get_stats(p->c, &st1);
  CHECK(st1.retrans_segs > st0.retrans_segs);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);
  EXPECT_STATES(&p->cev, p->cport, SERVER_PORT, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_ESTABLISHED,
                USTCP_FIN_WAIT_1, USTCP_FIN_WAIT_2, USTCP_TIME_WAIT);
  pair_free(p);
}

/* W5: the first wave (client's FIN) is lost: it is retransmitted after the RTO
 * and the close completes. */
static void W5_first_wave_lost(void)
{
  struct pair *p = &P;
  pair_new(p, 17, NULL);
  pair_connect(p);
  pair_exchange(p, 100, 100, 700);
  struct sim_drop_rule r;
  CHECK_EQ(sim_parse_drop_rule(p->sn.net, "client:fin#1", &r, NULL, 0), 0);
  CHECK_EQ(sim_add_drop_rule(p->sn.net, &r), 0);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_FIN_WAIT_1), 1);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_ESTABLISHED);   /* nothing arrived */
  sn_advance(&p->sn, 3 * SEC);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSE_WAIT);
  CHECK_EQ(sn_count_rows(p->c, USTCP_FIN_WAIT_2), 1);
  struct ustcp_stats st;
  ustcp_get_stats(p->c, &st);
  CHECK(st.retrans_segs >= 1);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);
  pair_free(p);
}

/* W5 (orphan): every FIN is lost: an orphan retries orphan_retries times (0 means
 * 8, as in Linux) and is then dropped; the state event names the timer. */
static void W5_orphan_gives_up(void)
{
  struct pair *p = &P;
  pair_new(p, 18, NULL);
  pair_connect(p);
  struct sim_drop_rule r;
  CHECK_EQ(sim_parse_drop_rule(p->sn.net, "client:fin+", &r, NULL, 0), 0);
  CHECK_EQ(sim_add_drop_rule(p->sn.net, &r), 0);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 30 * SEC);
  CHECK_EQ(sn_count_rows(p->c, USTCP_FIN_WAIT_1), 1);
  sn_advance(&p->sn, 600 * SEC);
  CHECK_EQ(sn_count_rows(p->c, -1), 0);
  struct ustcp_stats st;
  ustcp_get_stats(p->c, &st);
  /* the first resend is a tail loss probe (RFC 8985 §7, at the RTO's time as
   * Linux's tcp_schedule_loss_probe), which is no retry; then the 8 retries */
  CHECK_EQ(st.retrans_segs, 9);
  CHECK_EQ(st.mem_bytes, 0);
  EXPECT_STATES(&p->cev, p->cport, SERVER_PORT, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_ESTABLISHED,
                USTCP_FIN_WAIT_1, USTCP_CLOSED);
  CHECK_EQ(p->cev.ev[p->cev.n - 1].cause, USTCP_CAUSE_TIMER);
  pair_free(p);
}

/* W8: the third wave (server's FIN, in LAST_ACK) is lost and retransmitted. */
static void W8_third_wave_lost(void)
{
  struct pair *p = &P;
  pair_new(p, 19, NULL);
  pair_connect(p);
  pair_exchange(p, 100, 100, 800);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 100 * MS);
  struct sim_drop_rule r;
  CHECK_EQ(sim_parse_drop_rule(p->sn.net, "server:fin#1", &r, NULL, 0), 0);
  CHECK_EQ(sim_add_drop_rule(p->sn.net, &r), 0);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_count_rows(p->s, USTCP_LAST_ACK), 1);
  CHECK_EQ(sn_count_rows(p->c, USTCP_FIN_WAIT_2), 1);
  sn_advance(&p->sn, 3 * SEC);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  struct ustcp_stats st;
  ustcp_get_stats(p->s, &st);
  CHECK(st.retrans_segs >= 1);
  EXPECT_STATES(&p->sev, SERVER_PORT, p->cport, USTCP_LISTEN, USTCP_SYN_RCVD, USTCP_ESTABLISHED,
                USTCP_CLOSE_WAIT, USTCP_LAST_ACK, USTCP_CLOSED);
  pair_free(p);
}

/* W9: the fourth wave (the client's ACK of the server's FIN) is lost: the server
 * retransmits its FIN, TIME_WAIT re-ACKs it and restarts 2MSL. */
static void W9_fourth_wave_lost(void)
{
  struct pair *p = &P;
  pair_new(p, 20, NULL);
  pair_connect(p);
  pair_exchange(p, 100, 100, 900);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 100 * MS);
  struct sim_drop_rule r;
  CHECK_EQ(sim_parse_drop_rule(p->sn.net, "client:ack#1", &r, NULL, 0), 0);
  CHECK_EQ(sim_add_drop_rule(p->sn.net, &r), 0);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 10 * MS);
  uint64_t tw_start = sim_now(p->sn.net);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_count_rows(p->s, USTCP_LAST_ACK), 1);
  sn_advance(&p->sn, 3 * SEC);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);          /* the re-ACK completed LAST_ACK */
  struct ustcp_stats st;
  ustcp_get_stats(p->s, &st);
  CHECK(st.retrans_segs >= 1);
  /* 2MSL restarted at the retransmitted FIN (>= 200 ms after TIME_WAIT began). */
  sn_run(&p->sn, tw_start + 60 * SEC + 100 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  sn_advance(&p->sn, 4 * SEC);
  CHECK_EQ(sn_count_rows(p->c, -1), 0);
  pair_free(p);
}

/* W10: only the active closer holds TIME_WAIT; while it lasts, a new socket bound
 * to the same port cannot connect to the same server (EADDRNOTAVAIL, nothing
 * changed); once time_wait has passed it can. */
static void W10_time_wait_blocks_tuple(void)
{
  struct pair *p = &P;
  pair_new(p, 21, NULL);
  int one = 1;
  p->cfd = ustcp_socket(p->c);
  CHECK_EQ(ustcp_setsockopt(p->c, p->cfd, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &one, sizeof one), 0);
  struct ustcp_addr ca = {CLIENT_IP, 40000}, sa = {SERVER_IP, SERVER_PORT};
  CHECK_EQ(ustcp_bind(p->c, p->cfd, &ca), 0);
  CHECK_EQ(ustcp_connect(p->c, p->cfd, &sa), -EINPROGRESS);
  sn_advance(&p->sn, 100 * MS);
  p->sfd = ustcp_accept(p->s, p->lfd, NULL);
  CHECK(p->sfd >= 0);
  p->cport = 40000;
  pair_exchange(p, 10, 10, 1000);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  CHECK_EQ(sn_count_rows(p->s, USTCP_TIME_WAIT), 0);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);

  int fd2 = ustcp_socket(p->c);
  CHECK_EQ(ustcp_setsockopt(p->c, fd2, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &one, sizeof one), 0);
  CHECK_EQ(ustcp_bind(p->c, fd2, &ca), 0);
  CHECK_EQ(ustcp_connect(p->c, fd2, &sa), -EADDRNOTAVAIL);
  CHECK_EQ(sn_state(p->c, fd2), USTCP_CLOSED);
  CHECK_EQ(sn_count_rows(p->c, -1), 2);          /* TIME_WAIT + the bound socket */
  struct ustcp_addr name;
  CHECK_EQ(ustcp_getsockname(p->c, fd2, &name), 0);
  CHECK_EQ(name.port, 40000);
  sn_advance(&p->sn, 61 * SEC);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 0);
  CHECK_EQ(ustcp_connect(p->c, fd2, &sa), -EINPROGRESS);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_state(p->c, fd2), USTCP_ESTABLISHED);
  int s2 = ustcp_accept(p->s, p->lfd, NULL);
  CHECK(s2 >= 0);
  CHECK_EQ(ustcp_send(p->c, fd2, "again", 5, 0), 5);
  sn_advance(&p->sn, 100 * MS);
  char b[8];
  CHECK_EQ(ustcp_recv(p->s, s2, b, sizeof b, 0), 5);
  CHECK_MEM(b, "again", 5);
  pair_free(p);
}

/* W11 and W7: CLOSE_WAIT lasts until the application closes (hours here); the
 * half-closed peer (shutdown SHUT_WR) stays in FIN_WAIT_2 and keeps receiving. */
static void W11_close_wait_persists_W7_half_close(void)
{
  struct pair *p = &P;
  pair_new(p, 22, NULL);
  pair_connect(p);
  pair_exchange(p, 100, 100, 1100);
  CHECK_EQ(ustcp_shutdown(p->c, p->cfd, USTCP_SHUT_WR), 0);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_FIN_WAIT_1);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_FIN_WAIT_2);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSE_WAIT);
  sn_advance(&p->sn, 3 * 3600 * SEC);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_FIN_WAIT_2);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSE_WAIT);
  /* W7: data still flows server -> client */
  struct sn_stream down = {p->s, p->c, p->sfd, p->cfd, 1101, 30000, 0, 0, false, false, 0};
  struct sn_stream *sts[1] = {&down};
  CHECK(sn_pump(&p->sn, sts, 1, 10 * MS, 10 * SEC));
  CHECK(!down.bad);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_TIME_WAIT);
  char b[4];
  CHECK_EQ(ustcp_recv(p->c, p->cfd, b, sizeof b, 0), 0);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  CHECK_EQ(sn_count_rows(p->c, USTCP_TIME_WAIT), 1);
  sn_advance(&p->sn, 61 * SEC);
  CHECK_EQ(sn_count_rows(p->c, -1), 0);
  pair_free(p);
}

/* W7: an orphan in FIN_WAIT_2 waits at most fin_timeout; the peer's CLOSE_WAIT
 * is untouched by it (W11). When the peer finally closes, its FIN finds no
 * connection, gets a RST, and LAST_ACK ends. */
static void W7_orphan_fin_wait_2_timeout(void)
{
  struct pair *p = &P;
  pair_new(p, 23, NULL);
  pair_connect(p);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_count_rows(p->c, USTCP_FIN_WAIT_2), 1);
  sn_advance(&p->sn, 59 * SEC);
  CHECK_EQ(sn_count_rows(p->c, USTCP_FIN_WAIT_2), 1);
  sn_advance(&p->sn, 1 * SEC);
  CHECK_EQ(sn_count_rows(p->c, -1), 0);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSE_WAIT);
  sn_advance(&p->sn, 600 * SEC);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSE_WAIT);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_count_rows(p->s, -1), 1);
  EXPECT_STATES(&p->cev, p->cport, SERVER_PORT, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_ESTABLISHED,
                USTCP_FIN_WAIT_1, USTCP_FIN_WAIT_2, USTCP_CLOSED);
  pair_free(p);
}

/* D7: SO_LINGER {1, 0} makes close() abortive: a RST, no FIN. The peer's recv
 * fails with ECONNRESET once, then send fails with EPIPE. */
static void D7_abortive_close_linger0(void)
{
  struct pair *p = &P;
  pair_new(p, 24, NULL);
  pair_connect(p);
  pair_exchange(p, 100, 100, 1200);
  struct ustcp_linger lg = {1, 0};
  CHECK_EQ(ustcp_setsockopt(p->c, p->cfd, USTCP_SOL_SOCKET, USTCP_SO_LINGER, &lg, sizeof lg), 0);
  struct ustcp_stats st;
  ustcp_get_stats(p->c, &st);
  uint64_t rst0 = st.tcp_rst_out;
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  CHECK_EQ(sn_count_rows(p->c, -1), 0);          /* gone at once: no TIME_WAIT */
  ustcp_get_stats(p->c, &st);
  CHECK_EQ(st.tcp_rst_out, rst0 + 1);
  CHECK_EQ(st.mem_bytes, 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSED);
  CHECK(ustcp_sock_events(p->s, p->sfd) & USTCP_POLLERR);
  char b[8];
  CHECK_EQ(ustcp_recv(p->s, p->sfd, b, sizeof b, 0), -ECONNRESET);
  CHECK_EQ(ustcp_send(p->s, p->sfd, "x", 1, 0), -EPIPE);
  CHECK_EQ(ustcp_recv(p->s, p->sfd, b, sizeof b, 0), 0);
  EXPECT_STATES(&p->cev, p->cport, SERVER_PORT, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_ESTABLISHED, USTCP_CLOSED);
  EXPECT_STATES(&p->sev, SERVER_PORT, p->cport, USTCP_LISTEN, USTCP_SYN_RCVD, USTCP_ESTABLISHED, USTCP_CLOSED);
  CHECK_EQ(p->sev.ev[p->sev.n - 1].cause, USTCP_CAUSE_RESET);
  ustcp_get_stats(p->s, &st);
  CHECK_EQ(st.estab_resets, 1);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  pair_free(p);
}

/* D7 / RFC 9293 §3.10.4 (RFC 2525 §2.17): closing with unread data sends RST; the
 * peer gets ECONNRESET from send first (it is the pending error), then EPIPE. */
static void D7_close_with_unread_data_resets(void)
{
  struct pair *p = &P;
  pair_new(p, 25, NULL);
  pair_connect(p);
  CHECK_EQ(ustcp_send(p->s, p->sfd, "unread", 6, 0), 6);
  sn_advance(&p->sn, 100 * MS);
  CHECK(ustcp_sock_events(p->c, p->cfd) & USTCP_POLLIN);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  CHECK_EQ(sn_count_rows(p->c, -1), 0);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_state(p->s, p->sfd), USTCP_CLOSED);
  CHECK_EQ(ustcp_send(p->s, p->sfd, "x", 1, 0), -ECONNRESET);
  CHECK_EQ(ustcp_send(p->s, p->sfd, "x", 1, 0), -EPIPE);
  char b[8];
  CHECK_EQ(ustcp_recv(p->s, p->sfd, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  pair_free(p);
}

/* H9: a socket bound to 10.0.0.1:P connecting to 10.0.0.1:P talks to itself:
 * SYN_SENT -> SYN_RCVD (its own SYN) -> ESTABLISHED (its own SYN-ACK). */
static void H9_self_connect(void)
{
  struct simnet sn;
  sn_init(&sn, 30);
  struct ustcp_stack *a = sn_add(&sn, "self", CLIENT_IP, NULL);
  static struct sn_evlog log;
  memset(&log, 0, sizeof log);
  ustcp_set_event_cb(a, sn_ev_record, &log);
  int fd = ustcp_socket(a);
  struct ustcp_addr me = {CLIENT_IP, 5555};
  CHECK_EQ(ustcp_bind(a, fd, &me), 0);
  CHECK_EQ(ustcp_connect(a, fd, &me), -EINPROGRESS);
  sn_advance(&sn, 100 * MS);
  CHECK_EQ(sn_state(a, fd), USTCP_ESTABLISHED);
  CHECK_EQ(ustcp_connect(a, fd, &me), 0);
  struct ustcp_addr peer;
  CHECK_EQ(ustcp_getpeername(a, fd, &peer), 0);
  CHECK_EQ(peer.port, 5555);
  EXPECT_STATES(&log, 5555, 5555, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_SYN_RCVD,
                USTCP_ESTABLISHED);
  struct sn_stream st = {a, a, fd, fd, 3000, 100000, 0, 0, false, false, 0};
  struct sn_stream *sts[1] = {&st};
  CHECK(sn_pump(&sn, sts, 1, 10 * MS, 10 * SEC));
  CHECK_EQ(st.got, 100000);
  CHECK(!st.bad);
  CHECK_EQ(ustcp_close(a, fd), 0);
  sn_advance(&sn, 200 * SEC);
  CHECK_EQ(sn_count_rows(a, -1), 0);
  struct ustcp_stats stats;
  ustcp_get_stats(a, &stats);
  CHECK_EQ(stats.mem_bytes, 0);
  sn_free(&sn);
}

/* H8: simultaneous open, no listen: both SYN_SENT at the same instant, each gets
 * the other's SYN -> SYN_RCVD, then the SYN-ACKs -> ESTABLISHED. */
static void H8_simultaneous_open(void)
{
  struct pair *p = &P;
  memset(p, 0, sizeof *p);
  sn_init(&p->sn, 31);
  p->c = sn_add(&p->sn, "a", CLIENT_IP, NULL);
  p->s = sn_add(&p->sn, "b", SERVER_IP, NULL);
  struct sim_link_cfg lc = {.delay_us = 5 * MS};
  sim_set_all_links(p->sn.net, &lc);
  ustcp_set_event_cb(p->c, sn_ev_record, &p->cev);
  ustcp_set_event_cb(p->s, sn_ev_record, &p->sev);
  int fa = ustcp_socket(p->c), fb = ustcp_socket(p->s);
  struct ustcp_addr aa = {CLIENT_IP, 7001}, ba = {SERVER_IP, 7002};
  CHECK_EQ(ustcp_bind(p->c, fa, &aa), 0);
  CHECK_EQ(ustcp_bind(p->s, fb, &ba), 0);
  CHECK_EQ(ustcp_connect(p->c, fa, &ba), -EINPROGRESS);
  CHECK_EQ(ustcp_connect(p->s, fb, &aa), -EINPROGRESS);
  sn_advance(&p->sn, 7 * MS);
  CHECK_EQ(sn_state(p->c, fa), USTCP_SYN_RCVD);
  CHECK_EQ(sn_state(p->s, fb), USTCP_SYN_RCVD);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_state(p->c, fa), USTCP_ESTABLISHED);
  CHECK_EQ(sn_state(p->s, fb), USTCP_ESTABLISHED);
  EXPECT_STATES(&p->cev, 7001, 7002, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_SYN_RCVD,
                USTCP_ESTABLISHED);
  EXPECT_STATES(&p->sev, 7002, 7001, USTCP_CLOSED, USTCP_SYN_SENT, USTCP_SYN_RCVD,
                USTCP_ESTABLISHED);
  p->cfd = fa; p->sfd = fb;
  pair_exchange(p, 20000, 20000, 1300);
  struct ustcp_stats st;
  ustcp_get_stats(p->c, &st);
  CHECK_EQ(st.retrans_segs, 0);
  pair_free(p);
}

/* H10: each connect picks a different ephemeral port inside 32768-60999, and the
 * 4-tuple keeps two connections to one server port apart. */
static void H10_ephemeral_ports_and_4tuple(void)
{
  struct pair *p = &P;
  pair_new(p, 32, NULL);
  enum { N = 6 };
  int cfd[N], sfd[N];
  uint16_t port[N];
  struct ustcp_addr sa = {SERVER_IP, SERVER_PORT};
  for (int i = 0; i < N; i++) {
    cfd[i] = ustcp_socket(p->c);
    CHECK_EQ(ustcp_connect(p->c, cfd[i], &sa), -EINPROGRESS);
    struct ustcp_addr me;
    CHECK_EQ(ustcp_getsockname(p->c, cfd[i], &me), 0);
    port[i] = me.port;
    CHECK(me.port >= 32768 && me.port <= 60999);
    for (int j = 0; j < i; j++) CHECK(port[j] != port[i]);
  }
  sn_advance(&p->sn, 100 * MS);
  for (int i = 0; i < N; i++) {
    struct ustcp_addr peer;
    sfd[i] = ustcp_accept(p->s, p->lfd, &peer);
    CHECK(sfd[i] >= 0);
    CHECK_EQ(peer.ip, CLIENT_IP);
  }
  /* Distinct data on every connection, both ways. */
  struct sn_stream up[N], down[N];
  struct sn_stream *sts[2 * N];
  for (int i = 0; i < N; i++) {
    struct ustcp_addr peer;
    int k = -1;
    CHECK_EQ(ustcp_getpeername(p->s, sfd[i], &peer), 0);
    for (int j = 0; j < N; j++) if (port[j] == peer.port) k = j;
    CHECK(k >= 0);
    if (k < 0) continue;
    up[i] = (struct sn_stream){p->c, p->s, cfd[k], sfd[i], 5000u + (uint32_t)k, 20000, 0, 0, false, false, 0};
    down[i] = (struct sn_stream){p->s, p->c, sfd[i], cfd[k], 6000u + (uint32_t)k, 20000, 0, 0, false, false, 0};
    sts[2 * i] = &up[i];
    sts[2 * i + 1] = &down[i];
  }
  CHECK(sn_pump(&p->sn, sts, 2 * N, 10 * MS, 30 * SEC));
  for (int i = 0; i < 2 * N; i++) CHECK(!sts[i]->bad);
  pair_free(p);
}

/* H6: backlog 1 holds two established connections (Linux counts the queue full
 * when it holds more than backlog). Its SYN queue holds one request (Linux's
 * inet_csk_reqsk_queue_is_full: as many as the backlog), so of three clients
 * connecting at once c1 gets a SYN queue child and c2, c3 get SYN cookies. c1's
 * final ACK comes last (a slow path back to it) and finds the accept queue full
 * (c2 and c3 came in through their cookies): it is dropped; the child stays
 * SYN_RCVD and retransmits its SYN-ACK; once accept() makes room the client's
 * answer completes it. A SYN arriving while the accept queue is full is dropped
 * and the client's retransmission gets in later. (Before issue 10 the SYN queue
 * held max_syn_backlog requests and c3 was the one left SYN_RCVD.) */
static void H6_accept_queue_full(void)
{
  struct simnet sn;
  sn_init(&sn, 33);
  struct ustcp_stack *c[4];
  c[0] = sn_add(&sn, "c1", 0x0a000011, NULL);
  c[1] = sn_add(&sn, "c2", 0x0a000012, NULL);
  c[2] = sn_add(&sn, "c3", 0x0a000013, NULL);
  c[3] = sn_add(&sn, "c4", 0x0a000014, NULL);
  struct ustcp_stack *s = sn_add(&sn, "server", SERVER_IP, NULL);
  struct sim_link_cfg lc = {.delay_us = 5 * MS};
  sim_set_all_links(sn.net, &lc);
  /* c1's final ACK arrives last: its SYN-ACK travels slowly. */
  sim_link(sn.net, 4, 0)->delay_us = 20 * MS;
  int l = ustcp_socket(s);
  struct ustcp_addr sa = {SERVER_IP, SERVER_PORT};
  CHECK_EQ(ustcp_bind(s, l, &sa), 0);
  CHECK_EQ(ustcp_listen(s, l, 1), 0);
  int fd[4];
  for (int i = 0; i < 3; i++) {
    fd[i] = ustcp_socket(c[i]);
    CHECK_EQ(ustcp_connect(c[i], fd[i], &sa), -EINPROGRESS);
  }
  sn_advance(&sn, 100 * MS);
  for (int i = 0; i < 3; i++) CHECK_EQ(sn_state(c[i], fd[i]), USTCP_ESTABLISHED);
  struct ustcp_stats st;
  ustcp_get_stats(s, &st);
  CHECK(st.accept_queue_drops >= 1);
  CHECK_EQ(st.syncookies_recv, 2);
  CHECK_EQ(sn_count_rows(s, USTCP_SYN_RCVD), 1);
  struct ustcp_sock_row lrow;
  CHECK(ustcp_sock_table(s, &lrow, 1) >= 1);
  CHECK_EQ(lrow.state, USTCP_LISTEN);
  CHECK_EQ(lrow.recv_q, 2);                         /* ss: Recv-Q of a listener */
  /* A fourth client's SYN is dropped while the queue is full. */
  fd[3] = ustcp_socket(c[3]);
  CHECK_EQ(ustcp_connect(c[3], fd[3], &sa), -EINPROGRESS);
  sn_advance(&sn, 500 * MS);
  CHECK_EQ(sn_state(c[3], fd[3]), USTCP_SYN_SENT);
  CHECK_EQ(sn_count_rows(s, USTCP_SYN_RCVD), 1);
  struct ustcp_addr peer;
  int a1 = ustcp_accept(s, l, &peer);
  CHECK(a1 >= 0);
  CHECK_EQ(peer.ip, 0x0a000012);
  int a2 = ustcp_accept(s, l, &peer);
  CHECK(a2 >= 0);
  CHECK_EQ(peer.ip, 0x0a000013);
  CHECK_EQ(ustcp_accept(s, l, &peer), -EAGAIN);
  /* The SYN-ACK retransmission (1 s) completes c1; c4's SYN retry (1 s) gets in. */
  sn_advance(&sn, 1500 * MS);
  int a3 = ustcp_accept(s, l, &peer);
  CHECK(a3 >= 0);
  CHECK_EQ(peer.ip, 0x0a000011);
  sn_advance(&sn, 2 * SEC);
  CHECK_EQ(sn_state(c[3], fd[3]), USTCP_ESTABLISHED);
  int a4 = ustcp_accept(s, l, &peer);
  CHECK(a4 >= 0);
  CHECK_EQ(peer.ip, 0x0a000014);
  CHECK_EQ(ustcp_send(c[0], fd[0], "third", 5, 0), 5);
  sn_advance(&sn, 100 * MS);
  char b[8];
  CHECK_EQ(ustcp_recv(s, a3, b, sizeof b, 0), 5);
  CHECK_MEM(b, "third", 5);
  sn_free(&sn);
}

/* Encodes a spoofed SYN from src:sport to the server. */
static size_t spoofed_syn(uint8_t *buf, size_t cap, uint32_t src, uint16_t sport, uint32_t isn)
{
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = sport;
  h.dst_port = SERVER_PORT;
  h.seq = isn;
  h.flags = TCP_SYN;
  h.window = 65535;
  h.opts.present = TCP_OPT_HAS_MSS;
  h.opts.mss = 1460;
  int n = tcp_packet_encode(&h, NULL, 0, src, SERVER_IP, (uint16_t)isn, buf, cap);
  return n > 0 ? (size_t)n : 0;
}

static void flood(struct simnet *sn, struct ustcp_stack *s, uint32_t from, uint32_t count)
{
  uint8_t pkt[128];
  for (uint32_t i = from; i < from + count; i++) {
    size_t n = spoofed_syn(pkt, sizeof pkt, 0xac100000u + i, (uint16_t)(1024 + i % 60000),
                           i * 2654435761u);
    ustcp_input(s, pkt, n, sim_now(sn->net));
  }
}

/* H7: 20,000 spoofed SYNs from as many addresses fill the SYN queue (as many
 * requests as the listener's backlog, 16 here, as Linux's
 * inet_csk_reqsk_queue_is_full; before issue 10 it filled to max_syn_backlog,
 * 2048); a legitimate client still connects, through a SYN cookie (RFC 4987), and
 * the server's memory stops growing at the SYN queue's bound. */
static void H7_syn_flood_cookies(void)
{
  struct pair *p = &P;
  pair_new(p, 34, NULL);
  struct ustcp_stats st;
  flood(&p->sn, p->s, 0, 5000);
  ustcp_get_stats(p->s, &st);
  uint64_t mem5k = st.mem_bytes;
  CHECK_EQ(sn_count_rows(p->s, USTCP_SYN_RCVD), 16);
  p->cfd = ustcp_socket(p->c);
  struct ustcp_addr sa = {SERVER_IP, SERVER_PORT};
  CHECK_EQ(ustcp_connect(p->c, p->cfd, &sa), -EINPROGRESS);
  flood(&p->sn, p->s, 5000, 15000);
  ustcp_get_stats(p->s, &st);
  uint64_t mem20k = st.mem_bytes;
  CHECK(mem20k <= mem5k);
  /* The bound: backlog half-open entries, well under 4 KiB each. */
  CHECK(mem20k <= 16u * 4096u);   /* no data buffers: a control block each */
  CHECK_EQ(sn_count_rows(p->s, USTCP_SYN_RCVD), 16);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_ESTABLISHED);
  p->sfd = ustcp_accept(p->s, p->lfd, NULL);
  CHECK(p->sfd >= 0);
  struct ustcp_addr me;
  ustcp_getsockname(p->c, p->cfd, &me);
  p->cport = me.port;
  ustcp_get_stats(p->s, &st);
  CHECK(st.syncookies_sent >= 15000);
  CHECK_EQ(st.syncookies_recv, 1);
  CHECK_EQ(st.syncookies_failed, 0);
  pair_exchange(p, 30000, 30000, 1400);
  /* The half-open entries expire after synack_retries (63 s); memory comes back. */
  sn_advance(&p->sn, 70 * SEC);
  CHECK_EQ(sn_count_rows(p->s, USTCP_SYN_RCVD), 0);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  sn_advance(&p->sn, 1 * SEC);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  CHECK_EQ(ustcp_close(p->s, p->lfd), 0);
  sn_advance(&p->sn, 1 * SEC);
  ustcp_get_stats(p->s, &st);
  CHECK_EQ(st.mem_bytes, 0);
  CHECK_EQ(st.conns_alive, 0);
  pair_free(p);
}

/* H7 without cookies (syncookies = 0): while spoofed entries fill the SYN queue
 * the legitimate client's SYNs are dropped (syn_queue_drops); it only gets in once
 * the half-open entries expire (after synack_retries: 63 s), with the SYN it
 * retransmits at 63 s. */
static void H7_syn_flood_without_cookies(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.syncookies = 0;
  struct pair *p = &P;
  pair_new(p, 35, &cfg);
  flood(&p->sn, p->s, 0, 3000);
  CHECK_EQ(sn_count_rows(p->s, USTCP_SYN_RCVD), 16);   /* the backlog (Linux) */
  sn_advance(&p->sn, 10 * MS);
  p->cfd = ustcp_socket(p->c);
  struct ustcp_addr sa = {SERVER_IP, SERVER_PORT};
  CHECK_EQ(ustcp_connect(p->c, p->cfd, &sa), -EINPROGRESS);
  sn_advance(&p->sn, 62 * SEC);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_SYN_SENT);
  struct ustcp_stats st;
  ustcp_get_stats(p->s, &st);
  /* the flood's overflow, then the client's SYN and its retries at 1, 3, 7, 15, 31 s */
  CHECK_EQ(st.syn_queue_drops, (3000 - 16) + 6);
  CHECK_EQ(st.syncookies_sent, 0);
  sn_advance(&p->sn, 2 * SEC);
  CHECK_EQ(sn_count_rows(p->s, USTCP_SYN_RCVD), 0);
  CHECK_EQ(sn_state(p->c, p->cfd), USTCP_ESTABLISHED);
  pair_free(p);
}

/* A4: every transition is an event with its cause; get_info reports RTT and
 * counts the retransmissions that injected loss caused. */
static void A4_events_and_info(void)
{
  struct pair *p = &P;
  pair_new(p, 36, NULL);
  pair_connect(p);
  struct sim_drop_rule r;
  CHECK_EQ(sim_parse_drop_rule(p->sn.net, "client:data#2x2", &r, NULL, 0), 0);
  CHECK_EQ(sim_add_drop_rule(p->sn.net, &r), 0);
  pair_exchange(p, 100000, 1000, 1500);
  struct ustcp_tcp_info ti;
  CHECK_EQ(ustcp_get_info(p->c, p->cfd, &ti), 0);
  CHECK_EQ(ti.state, USTCP_ESTABLISHED);
  CHECK(ti.rtt_us >= 10 * MS && ti.rtt_us < 100 * MS);
  CHECK(ti.rto_us >= 200 * MS);
  CHECK(ti.retrans_segs >= 2);
  CHECK(ti.bytes_acked == 100000);
  CHECK(ti.bytes_received == 1000);
  /* Timestamps negotiated (the default): 12 option bytes on every segment,
   * so 1460 - 12 of payload (Linux's tcpi_snd_mss reads 1448 too). */
  CHECK(ti.snd_mss == 1448);
  CHECK(ti.snd_cwnd > 0);
  CHECK(ti.data_segs_out >= 100000 / 1448);
  CHECK_EQ(ustcp_get_info(p->s, p->sfd, &ti), 0);
  CHECK(ti.ooo_segs >= 1);
  CHECK_EQ(ti.bytes_received, 100000);
  CHECK_EQ(ti.retrans_segs, 0);
  /* TCP_INFO through getsockopt gives the same figures. */
  struct ustcp_tcp_info ti2;
  size_t len = sizeof ti2;
  CHECK_EQ(ustcp_getsockopt(p->s, p->sfd, USTCP_IPPROTO_TCP, USTCP_TCP_INFO, &ti2, &len), 0);
  CHECK_EQ(ti2.bytes_received, 100000);
  /* Causes: the connect call, then segments. */
  int k = 0;
  for (int i = 0; i < p->cev.n; i++) {
    const struct ustcp_event *e = &p->cev.ev[i];
    if (e->new_state == USTCP_SYN_SENT) { CHECK_EQ(e->cause, USTCP_CAUSE_CALL); CHECK_EQ(e->fd, p->cfd); k++; }
    if (e->new_state == USTCP_ESTABLISHED) { CHECK_EQ(e->cause, USTCP_CAUSE_SEGMENT); k++; }
  }
  CHECK_EQ(k, 2);
  CHECK_EQ(ustcp_close(p->c, p->cfd), 0);
  CHECK_EQ(p->cev.ev[p->cev.n - 1].new_state, USTCP_FIN_WAIT_1);
  CHECK_EQ(p->cev.ev[p->cev.n - 1].cause, USTCP_CAUSE_CALL);
  sn_advance(&p->sn, 100 * MS);
  CHECK_EQ(ustcp_close(p->s, p->sfd), 0);
  sn_advance(&p->sn, 61 * SEC);
  CHECK_EQ(p->cev.ev[p->cev.n - 1].new_state, USTCP_CLOSED);
  CHECK_EQ(p->cev.ev[p->cev.n - 1].cause, USTCP_CAUSE_TIMER);
  CHECK(p->cev.ev[p->cev.n - 1].time_us >= 60 * SEC);
  pair_free(p);
}

int main(void)
{
  RUN(W1_W2_client_closes_first);
  RUN(W1_W2_server_closes_first);
  RUN(W4_simultaneous_close);
  RUN(W3_fin_ack_combined_by_app);
  RUN(W3_W6_fin_ack_combined_after_lost_ack);
  RUN(W6_second_wave_lost);
  RUN(W5_first_wave_lost);
  RUN(W5_orphan_gives_up);
  RUN(W8_third_wave_lost);
  RUN(W9_fourth_wave_lost);
  RUN(W10_time_wait_blocks_tuple);
  RUN(W11_close_wait_persists_W7_half_close);
  RUN(W7_orphan_fin_wait_2_timeout);
  RUN(D7_abortive_close_linger0);
  RUN(D7_close_with_unread_data_resets);
  RUN(H9_self_connect);
  RUN(H8_simultaneous_open);
  RUN(H10_ephemeral_ports_and_4tuple);
  RUN(H6_accept_queue_full);
  RUN(H7_syn_flood_cookies);
  RUN(H7_syn_flood_without_cookies);
  RUN(A4_events_and_info);
  return check_report();
}
