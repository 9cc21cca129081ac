/* D7 / RFC 5961 (issue 6): blind in-window attacks on an established
 * connection. An off-path attacker knows the 4-tuple but not the sequence
 * numbers; it guesses. Proves:
 *   - RST: only a RST at exactly rcv_nxt resets (§3.2); one anywhere else in the
 *     window only draws a challenge ACK; outside the window it is ignored. A
 *     sweep of the whole window in window-sized steps never resets;
 *   - SYN in a synchronized state (in or out of the window) never resets: a
 *     challenge ACK (§4);
 *   - data with guessed sequence and acknowledgment numbers (10,000 tries) is
 *     never delivered and never corrupts the stream: an unacceptable sequence
 *     number is dropped (RFC 9293 §3.10.7.4), an ACK below snd_una -
 *     max_snd_wnd draws a challenge ACK and the data is dropped (§5.2);
 *   - challenge ACKs are rate-limited (§7): one per invalid_ratelimit_us
 *     (500 ms) per connection, as Linux's tcp_oow_rate_limited, the rest
 *     counted in challenge_acks_limited (no stack-wide budget by default, as
 *     Linux 6.x; test_attack_challenge_ack_side_channel shows why);
 *   - after all of it the connection still carries data both ways. */
#include "check.h"
#include "rawpeer.h"

static uint64_t rng = 0xb11d;
static uint32_t rnd32(void)
{
  uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return (uint32_t)(z ^ (z >> 31));
}

/* A connection with 1000 bytes already exchanged each way. */
static int setup(struct rp *r, struct rp_conn *c, const struct ustcp_config *cfg, uint64_t seed)
{
  rp_init(r, cfg, seed);
  int l = rp_listen(r, 80, 16);
  int fd = rp_handshake_in(r, c, l, RP_PEER_IP, 33333, 80, 0x40000000u, NULL);
  uint8_t d[1000];
  for (int i = 0; i < 1000; i++) d[i] = (uint8_t)i;
  rp_seg(r, c, TCP_ACK | TCP_PSH, d, sizeof d, 65535);
  uint8_t b[1000];
  CHECK_EQ(ustcp_recv(r->s, fd, b, sizeof b, 0), 1000);
  CHECK_EQ(ustcp_send(r->s, fd, d, sizeof d, 0), 1000);
  rp_advance(r, 10 * USTCP_MSEC);
  c->rcv_nxt += 1000;
  rp_seg(r, c, TCP_ACK, NULL, 0, 65535);
  rp_clear(r);
  return fd;
}

static void blind_rst_only_exact_sequence_resets(void)
{
  struct rp r;
  struct rp_conn c;
  int fd = setup(&r, &c, NULL, 21);
  uint32_t rcv_nxt = c.snd_nxt;            /* the stack's rcv_nxt */
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  uint32_t wnd = ti.rcv_wnd;
  CHECK(wnd > 1000);
  /* Sweep: one RST per window-sized step over the whole sequence space
   * (what a blind attacker does without RFC 5961), minus the exact value. */
  uint64_t steps = 0;
  for (uint64_t k = 1; k * wnd < (1ull << 32); k++) {
    uint32_t seq = rcv_nxt + (uint32_t)(k * wnd) - 1;
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, seq, 0, TCP_RST, 0, NULL, NULL, 0);
    steps++;
    if (k % 4096 == 0) rp_clear(&r);
  }
  /* And inside the window, every offset but 0 at a coarse stride. */
  for (uint32_t off = 1; off < wnd; off += 97) {
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, rcv_nxt + off, 0, TCP_RST, 0, NULL, NULL, 0);
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, rcv_nxt + off, rnd32(), TCP_RST | TCP_ACK, 0, NULL, NULL, 0);
    rp_clear(&r);
  }
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  CHECK_EQ(ustcp_sock_error(r.s, fd), 0);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK(st.challenge_acks > 0);
  CHECK_EQ(st.estab_resets, 0);
  printf("blind RST: %llu window-stepped guesses + in-window offsets: no reset; %llu challenge ACKs, "
         "%llu rate-limited\n", (unsigned long long)steps, (unsigned long long)st.challenge_acks,
         (unsigned long long)st.challenge_acks_limited);
  CHECK(rp_stack_problem(&r) == NULL);
  /* The exact value does reset (the sanity check of the test itself). */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, rcv_nxt, 0, TCP_RST, 0, NULL, NULL, 0);
  CHECK_EQ(rp_state(&r, fd), USTCP_CLOSED);
  uint8_t b[4];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), -ECONNRESET);
  CHECK_EQ(ustcp_close(r.s, fd), 0);
  rp_free(&r);
}

static void blind_syn_never_resets(void)
{
  struct rp r;
  struct rp_conn c;
  int fd = setup(&r, &c, NULL, 22);
  uint32_t rcv_nxt = c.snd_nxt;
  struct tcp_packet p;
  /* In the window, at rcv_nxt, and anywhere: a challenge ACK at most. */
  uint32_t seqs[] = {rcv_nxt, rcv_nxt + 1, rcv_nxt + 5000, rcv_nxt - 1, rcv_nxt + 0x80000000u};
  for (unsigned i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
    rp_clear(&r);
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, seqs[i], 0, TCP_SYN, 65535, NULL, NULL, 0);
    CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
    bool rst = false;
    while (rp_next(&r, &p)) if (p.tcp.flags & TCP_RST) rst = true;
    CHECK(!rst);
  }
  for (int i = 0; i < 5000; i++)
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, rnd32(), rnd32(), (i & 1) ? TCP_SYN : TCP_SYN | TCP_ACK,
                 65535, NULL, NULL, 0);
  rp_clear(&r);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  CHECK_EQ(ustcp_sock_error(r.s, fd), 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void blind_data_never_delivered(void)
{
  struct rp r;
  struct rp_conn c;
  int fd = setup(&r, &c, NULL, 23);
  uint8_t evil[100];
  memset(evil, 0xEE, sizeof evil);
  int tries = 10000;
  for (int i = 0; i < tries; i++) {
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, rnd32(), rnd32(), TCP_ACK | TCP_PSH, 65535, NULL,
                 evil, sizeof evil);
    if (i % 1000 == 0) rp_clear(&r);
  }
  /* A guess with the right sequence number but an ACK far below snd_una
   * (RFC 5961 §5.2): dropped, challenge ACK. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, c.rcv_nxt - 0x40000000u, TCP_ACK, 65535,
               NULL, evil, sizeof evil);
  uint8_t b[256];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), -EAGAIN);
  /* The stream goes on, byte-exact. */
  uint8_t d[200];
  for (int i = 0; i < 200; i++) d[i] = (uint8_t)(i * 3);
  rp_seg(&r, &c, TCP_ACK | TCP_PSH, d, sizeof d, 65535);
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), 200);
  CHECK_MEM(b, d, 200);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void challenge_acks_rate_limited(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct rp r;
  struct rp_conn c;
  int fd = setup(&r, &c, &cfg, 24);
  struct ustcp_stats before, after;
  ustcp_get_stats(r.s, &before);
  rp_clear(&r);
  uint64_t sent_before = r.sent_total;
  /* 5000 in-window RSTs inside one second. */
  for (int i = 0; i < 5000; i++)
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt + 1 + (uint32_t)(i % 100), 0, TCP_RST, 0,
                 NULL, NULL, 0);
  ustcp_get_stats(r.s, &after);
  uint64_t acks = after.challenge_acks - before.challenge_acks;
  uint64_t limited = after.challenge_acks_limited - before.challenge_acks_limited;
  printf("challenge ACKs: 5000 in-window RSTs at one instant -> %llu sent, %llu rate-limited "
         "(one per %llu ms per connection)\n", (unsigned long long)acks, (unsigned long long)limited,
         (unsigned long long)(cfg.invalid_ratelimit_us / USTCP_MSEC));
  CHECK_EQ(acks, 1);
  CHECK_EQ(r.sent_total - sent_before, 1);
  CHECK_EQ(acks + limited, 5000);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  /* 500 ms later the connection may send the next one. */
  rp_advance(&r, 500 * USTCP_MSEC);
  ustcp_get_stats(r.s, &before);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt + 7, 0, TCP_RST, 0, NULL, NULL, 0);
  ustcp_get_stats(r.s, &after);
  CHECK_EQ(after.challenge_acks - before.challenge_acks, 1);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(blind_rst_only_exact_sequence_resets);
  RUN(blind_syn_never_resets);
  RUN(blind_data_never_delivered);
  RUN(challenge_acks_rate_limited);
  return check_report();
}
