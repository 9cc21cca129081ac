/* W10 / RFC 1337 (issue 6): TIME_WAIT assassination. A RST that reaches a
 * connection in TIME_WAIT (an old duplicate, or an attacker's) must not end it
 * early when rfc1337 = 1: the 4-tuple stays protected for the full 2MSL.
 * With rfc1337 = 0, Linux's default (net.ipv4.tcp_rfc1337 = 0), an acceptable
 * RST ends TIME_WAIT at once, as Linux does; the test documents that too.
 * Both with the exact sequence number (what an old duplicate RST carries) and
 * with another in-window one. */
#include "check.h"
#include "rawpeer.h"
#include "stack/stack_check.h"

static int conn_state(struct rp *r, uint16_t lport, uint16_t rport)
{
  struct ustcp_sock_row rows[16];
  size_t n = ustcp_sock_table(r->s, rows, 16);
  for (size_t i = 0; i < n && i < 16; i++)
    if (rows[i].local.port == lport && rows[i].remote.port == rport) return (int)rows[i].state;
  return USTCP_CLOSED;
}

/* An active close: the stack ends in TIME_WAIT on (80, peer_port). */
static void to_time_wait(struct rp *r, struct rp_conn *c, int l, uint16_t peer_port)
{
  int fd = rp_handshake_in(r, c, l, RP_PEER_IP, peer_port, 80, 0x10000000u, NULL);
  CHECK(fd >= 0);
  CHECK_EQ(ustcp_close(r->s, fd), 0);              /* FIN */
  c->rcv_nxt++;
  rp_seg(r, c, TCP_ACK | TCP_FIN, NULL, 0, 65535); /* ACK of our FIN + the peer's FIN */
  CHECK_EQ(conn_state(r, 80, peer_port), USTCP_TIME_WAIT);
}

static void run(uint32_t rfc1337)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.rfc1337 = rfc1337;
  cfg.time_wait_us = 60 * USTCP_SEC;
  struct rp r;
  rp_init(&r, &cfg, 41 + rfc1337);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn a, b;
  to_time_wait(&r, &a, l, 50001);
  to_time_wait(&r, &b, l, 50002);
  rp_advance(&r, 5 * USTCP_SEC);
  /* The exact sequence number (a's rcv_nxt), and an in-window guess for b. */
  rp_send_from(&r, a.peer_ip, a.peer_port, 80, a.snd_nxt, 0, TCP_RST, 0, NULL, NULL, 0);
  rp_send_from(&r, b.peer_ip, b.peer_port, 80, b.snd_nxt + 100, 0, TCP_RST, 0, NULL, NULL, 0);
  if (rfc1337) {
    CHECK_EQ(conn_state(&r, 80, 50001), USTCP_TIME_WAIT);
    CHECK_EQ(conn_state(&r, 80, 50002), USTCP_TIME_WAIT);
    /* It still lasts its full 60 s from when it began, then ends. */
    rp_advance(&r, 54 * USTCP_SEC);
    CHECK_EQ(conn_state(&r, 80, 50001), USTCP_TIME_WAIT);
    rp_advance(&r, 2 * USTCP_SEC);
    CHECK_EQ(conn_state(&r, 80, 50001), USTCP_CLOSED);
    printf("rfc1337=1: RSTs in TIME_WAIT ignored; TIME_WAIT lasted its 60 s\n");
  } else {
    /* Linux's default: the exact RST assassinates TIME_WAIT; the in-window
     * one is not exact (RFC 5961 §3.2) and only draws a challenge ACK. */
    CHECK_EQ(conn_state(&r, 80, 50001), USTCP_CLOSED);
    CHECK_EQ(conn_state(&r, 80, 50002), USTCP_TIME_WAIT);
    printf("rfc1337=0 (Linux default): an exact RST ends TIME_WAIT early (assassination)\n");
  }
  char buf[512];
  const char *why = stack_check(r.s, true, buf, sizeof buf);
  if (why) fprintf(stderr, "stack_check: %s\n", why);
  CHECK(why == NULL);
  rp_free(&r);
}

static void rfc1337_on_rst_does_not_end_time_wait(void) { run(1); }
static void rfc1337_off_linux_default_rst_ends_time_wait(void) { run(0); }

int main(void)
{
  RUN(rfc1337_on_rst_does_not_end_time_wait);
  RUN(rfc1337_off_linux_default_rst_ends_time_wait);
  return check_report();
}
