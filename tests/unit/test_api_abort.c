/* A1/A2, issue 10 point 8: ustcp_abort is RFC 9293 §3.10.5 ABORT, state by state
 * (src/tcp/tcp_user.c). In every state the connection is deleted at once (no
 * TIME_WAIT, no orphan left behind) and the descriptor is gone; a RST from
 * snd_nxt goes to the peer from SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1,
 * FIN-WAIT-2 and CLOSE-WAIT (Linux's tcp_need_reset), none from SYN-SENT,
 * CLOSING, LAST-ACK, TIME-WAIT; a listener resets its queued children. The last
 * event is the move to CLOSED caused by the call. */
#include "check.h"
#include "rawpeer.h"

static struct { enum ustcp_state last_new; enum ustcp_cause last_cause; uint16_t port; } E;

static void on_event(void *ctx, const struct ustcp_event *ev)
{
  (void)ctx;
  if (ev->remote.port != E.port && ev->local.port != E.port) return;
  E.last_new = ev->new_state;
  E.last_cause = ev->cause;
}

/* The stack's FIN from what it sent; the peer's view of it. */
static bool fin_seq(struct rp *r, uint32_t *seq)
{
  struct tcp_packet p;
  while (rp_next(r, &p))
    if (p.tcp.flags & TCP_FIN) {
      *seq = p.tcp.seq + (uint32_t)p.payload_len;
      return true;
    }
  return false;
}

static void one(enum ustcp_state want, bool want_rst)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct rp r;
  rp_init(&r, &cfg, 5 + (uint64_t)want);
  ustcp_set_event_cb(r.s, on_event, NULL);
  int l = rp_listen(&r, 80, 8);
  CHECK(l >= 0);
  struct rp_conn c;
  int fd = -1;
  uint32_t fs = 0;
  uint16_t child_port = 0;
  E.port = 40000;
  switch (want) {
  case USTCP_LISTEN: {
    /* A child in the accept queue, never accepted: it gets the RST. */
    struct tcp_opts o = {0};
    o.present = TCP_OPT_HAS_MSS;
    o.mss = 1460;
    rp_send_from(&r, RP_PEER_IP, 40000, 80, 500, 0, TCP_SYN, 65535, &o, NULL, 0);
    struct tcp_packet p;
    CHECK(rp_last(&r, &p));
    rp_send_from(&r, RP_PEER_IP, 40000, 80, 501, p.tcp.seq + 1, TCP_ACK, 65535, NULL, NULL, 0);
    child_port = 40000;
    E.port = 80;
    fd = l;
    break;
  }
  case USTCP_SYN_SENT: {
    fd = ustcp_socket(r.s);
    struct ustcp_addr a = {RP_PEER_IP, 40000};
    CHECK_EQ(ustcp_connect(r.s, fd, &a), -EINPROGRESS);
    break;
  }
  default:
    fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40000, 80, 1000, NULL);
    CHECK(fd >= 0);
    break;
  }
  switch (want) {
  case USTCP_CLOSE_WAIT:
    rp_seg(&r, &c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
    break;
  case USTCP_LAST_ACK:
    rp_seg(&r, &c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
    CHECK_EQ(ustcp_shutdown(r.s, fd, USTCP_SHUT_WR), 0);
    break;
  case USTCP_FIN_WAIT_1:
    CHECK_EQ(ustcp_send(r.s, fd, "abc", 3, 0), 3);
    CHECK_EQ(ustcp_shutdown(r.s, fd, USTCP_SHUT_WR), 0);
    break;
  case USTCP_FIN_WAIT_2:
  case USTCP_TIME_WAIT:
    rp_clear(&r);
    CHECK_EQ(ustcp_shutdown(r.s, fd, USTCP_SHUT_WR), 0);
    CHECK(fin_seq(&r, &fs));
    c.rcv_nxt = fs + 1;
    rp_seg(&r, &c, want == USTCP_TIME_WAIT ? TCP_ACK | TCP_FIN : TCP_ACK, NULL, 0, 65535);
    break;
  case USTCP_CLOSING:
    rp_clear(&r);
    CHECK_EQ(ustcp_shutdown(r.s, fd, USTCP_SHUT_WR), 0);
    CHECK(fin_seq(&r, &fs));
    rp_seg(&r, &c, TCP_ACK | TCP_FIN, NULL, 0, 65535);   /* crosses ours */
    break;
  default:
    break;
  }
  CHECK_EQ(rp_state(&r, fd), want);
  rp_clear(&r);
  struct ustcp_stats before;
  ustcp_get_stats(r.s, &before);
  CHECK_EQ(ustcp_abort(r.s, fd), 0);
  CHECK_EQ(ustcp_abort(r.s, fd), -EBADF);
  CHECK_EQ(ustcp_sock_events(r.s, fd), -EBADF);
  /* A RST or nothing; never a FIN or data. */
  struct tcp_packet p;
  int rsts = 0, others = 0;
  while (rp_next(&r, &p)) {
    if (p.tcp.flags & TCP_RST) {
      rsts++;
      if (child_port) {
        CHECK_EQ(p.tcp.dst_port, child_port);
      } else {
        /* From snd_nxt: after the data and the FIN that went out. */
        uint32_t snd_nxt = c.stack_isn + 1;
        if (want == USTCP_FIN_WAIT_1) snd_nxt += 3 + 1;
        if (want == USTCP_FIN_WAIT_2) snd_nxt = fs + 1;
        CHECK_EQ(p.tcp.seq, snd_nxt);
      }
    } else {
      others++;
    }
  }
  CHECK_EQ(rsts, want_rst ? 1 : 0);
  CHECK_EQ(others, 0);
  CHECK_EQ(E.last_new, USTCP_CLOSED);
  CHECK_EQ(E.last_cause, USTCP_CAUSE_CALL);
  /* Deleted at once: with the listener closed too, nothing is left, at once. */
  if (fd != l) CHECK_EQ(ustcp_close(r.s, l), 0);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.conns_alive, 0);
  CHECK_EQ(st.mem_bytes, 0);
  CHECK(rp_stack_problem(&r) == NULL);
  printf("abort in %-12s: %s\n", ustcp_state_name(want), rsts ? "RST" : "no RST");
  rp_free(&r);
}

static void abort_in_every_state(void)
{
  one(USTCP_LISTEN, true);
  one(USTCP_SYN_SENT, false);
  one(USTCP_ESTABLISHED, true);
  one(USTCP_CLOSE_WAIT, true);
  one(USTCP_FIN_WAIT_1, true);
  one(USTCP_FIN_WAIT_2, true);
  one(USTCP_CLOSING, false);
  one(USTCP_LAST_ACK, false);
  one(USTCP_TIME_WAIT, false);
}

static void abort_of_fresh_socket_and_bad_fd(void)
{
  struct rp r;
  rp_init(&r, NULL, 3);
  int fd = ustcp_socket(r.s);
  CHECK(fd >= 0);
  rp_clear(&r);
  CHECK_EQ(ustcp_abort(r.s, fd), 0);
  CHECK_EQ(r.n, 0);
  CHECK_EQ(ustcp_abort(r.s, fd), -EBADF);
  CHECK_EQ(ustcp_abort(r.s, -1), -EBADF);
  CHECK_EQ(ustcp_abort(NULL, 0), -EBADF);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.conns_alive, 0);
  rp_free(&r);
}

int main(void)
{
  RUN(abort_in_every_state);
  RUN(abort_of_fresh_socket_and_bad_fd);
  return check_report();
}
