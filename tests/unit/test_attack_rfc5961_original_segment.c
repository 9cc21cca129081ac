/* Issue 10 point 3: RFC 5961 on the ORIGINAL segment, in every synchronized
 * state. A blind attacker does not know rcv_nxt; it sends segments whose
 * payload spans a range of sequence numbers, hoping that the receiver trims
 * the segment to its window first and then compares the TRIMMED sequence
 * number with rcv_nxt. Linux's tcp_validate_incoming compares the segment's own
 * SEQ; so must ustcp. Proves, in ESTABLISHED, FIN_WAIT_1, FIN_WAIT_2,
 * CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT (and SYN_RCVD where it applies):
 *   - §3: a RST with SEQ below RCV.NXT whose payload spans RCV.NXT does not
 *     reset; it draws one challenge ACK. A RST with SEQ == RCV.NXT does reset,
 *     payload or not;
 *   - §4: a SYN with SEQ = RCV.NXT - 1 and payload (its SYN would be trimmed
 *     away, its data in order) is not taken as data: one challenge ACK, nothing
 *     delivered, no state change;
 *   - §5: data straddling the left window edge with an ACK older than
 *     SND.UNA - MAX.SND.WND, or below our ISN + 1 (Linux bounds the window by
 *     the bytes acknowledged: "do not accept ACK for bytes we never sent"), is
 *     dropped with an ACK; data straddling either edge that acknowledges data
 *     never sent is dropped with an ACK;
 *   - an honest segment straddling the left edge still delivers its new bytes.
 */
#include "check.h"
#include "rawpeer.h"

enum { PEER_PORT = 33333, LPORT = 80 };

struct fix {
  struct rp r;
  struct rp_conn c;
  int fd;                /* -1 in SYN_RCVD (a child nobody accepted) */
  int state;             /* the state the fixture is in */
  uint32_t stack_snd_max;/* the stack's highest sequence sent + 1 (its FIN included) */
  uint32_t wnd;          /* the stack's receive window as advertised */
};

static int conn_state(struct rp *r)
{
  struct ustcp_sock_row rows[8];
  size_t n = ustcp_sock_table(r->s, rows, 8);
  for (size_t i = 0; i < n && i < 8; i++)
    if (rows[i].remote.port == PEER_PORT) return (int)rows[i].state;
  return USTCP_CLOSED;
}

/* Drives a fresh connection into state st; false if it did not get there. */
static bool setup(struct fix *f, int st, uint64_t seed)
{
  memset(f, 0, sizeof *f);
  struct rp *r = &f->r;
  struct rp_conn *c = &f->c;
  rp_init(r, NULL, seed);
  int l = rp_listen(r, LPORT, 16);
  if (st == USTCP_SYN_RCVD) {
    struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
    rp_send_from(r, RP_PEER_IP, PEER_PORT, LPORT, 0x40000000u, 0, TCP_SYN, 65535, &o, NULL, 0);
    struct tcp_packet p;
    if (!rp_last(r, &p) || p.tcp.flags != (TCP_SYN | TCP_ACK)) return false;
    c->peer_ip = RP_PEER_IP;
    c->peer_port = PEER_PORT;
    c->local_port = LPORT;
    c->peer_isn = 0x40000000u;
    c->snd_nxt = 0x40000001u;
    c->stack_isn = p.tcp.seq;
    c->rcv_nxt = p.tcp.seq + 1;
    f->fd = -1;
    f->stack_snd_max = c->rcv_nxt;
    f->wnd = p.tcp.window;
    f->state = st;
    return conn_state(r) == st;
  }
  f->fd = rp_handshake_in(r, c, l, RP_PEER_IP, PEER_PORT, LPORT, 0x40000000u, NULL);
  if (f->fd < 0) return false;
  /* 1000 bytes each way, so snd_una is well above the ISN. */
  uint8_t d[1000], b[1000];
  for (int i = 0; i < 1000; i++) d[i] = (uint8_t)i;
  rp_seg(r, c, TCP_ACK | TCP_PSH, d, sizeof d, 65535);
  if (ustcp_recv(r->s, f->fd, b, sizeof b, 0) != 1000) return false;
  if (ustcp_send(r->s, f->fd, d, sizeof d, 0) != 1000) return false;
  rp_advance(r, 10 * USTCP_MSEC);
  c->rcv_nxt += 1000;
  rp_seg(r, c, TCP_ACK, NULL, 0, 65535);
  f->stack_snd_max = c->rcv_nxt;
  switch (st) {
  case USTCP_ESTABLISHED: break;
  case USTCP_FIN_WAIT_1:
    ustcp_shutdown(r->s, f->fd, USTCP_SHUT_WR);
    f->stack_snd_max++;
    break;
  case USTCP_FIN_WAIT_2:
    ustcp_shutdown(r->s, f->fd, USTCP_SHUT_WR);
    c->rcv_nxt++;
    f->stack_snd_max = c->rcv_nxt;
    rp_seg(r, c, TCP_ACK, NULL, 0, 65535);
    break;
  case USTCP_CLOSE_WAIT:
    rp_seg(r, c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
    break;
  case USTCP_CLOSING:
    ustcp_shutdown(r->s, f->fd, USTCP_SHUT_WR);
    f->stack_snd_max++;
    rp_seg(r, c, TCP_ACK | TCP_FIN, NULL, 0, 65535);   /* does not ack our FIN */
    break;
  case USTCP_LAST_ACK:
    rp_seg(r, c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
    ustcp_shutdown(r->s, f->fd, USTCP_SHUT_WR);
    f->stack_snd_max++;
    break;
  case USTCP_TIME_WAIT:
    ustcp_shutdown(r->s, f->fd, USTCP_SHUT_WR);
    c->rcv_nxt++;
    f->stack_snd_max = c->rcv_nxt;
    rp_seg(r, c, TCP_ACK | TCP_FIN, NULL, 0, 65535);
    break;
  }
  rp_advance(r, 10 * USTCP_MSEC);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r->s, f->fd, &ti);
  f->wnd = ti.rcv_wnd;
  f->state = st;
  rp_clear(r);
  return conn_state(r) == st;
}

/* What the stack sent in reply to one probe. */
struct reply {
  int acks;      /* pure ACKs acknowledging exactly rcv_nxt */
  int rsts, synacks, others;
};

/* One probe, a second after the last (so no per-connection rate limit can
 * hide its reply), then what came back. */
static struct reply probe(struct fix *f, uint32_t seq, uint32_t ack, uint8_t flags,
                          const void *data, size_t len)
{
  struct rp *r = &f->r;
  rp_advance(r, USTCP_SEC);
  rp_clear(r);
  rp_send_from(r, f->c.peer_ip, PEER_PORT, LPORT, seq, ack, flags, 65535, NULL, data, len);
  struct reply out = {0};
  struct tcp_packet p;
  while (rp_next(r, &p)) {
    if (p.tcp.flags & TCP_RST) out.rsts++;
    else if ((p.tcp.flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) out.synacks++;
    else if (p.tcp.flags == TCP_ACK && p.payload_len == 0 && p.tcp.ack == f->c.snd_nxt) out.acks++;
    else out.others++;
  }
  return out;
}

static bool may_receive(int st)
{
  return st == USTCP_ESTABLISHED || st == USTCP_FIN_WAIT_1 || st == USTCP_FIN_WAIT_2;
}

/* Nothing readable (the probe's data was not taken as stream data). */
static void nothing_delivered(struct fix *f)
{
  if (f->fd < 0 || !may_receive(f->state)) return;
  uint8_t b[64];
  CHECK_EQ(ustcp_recv(f->r.s, f->fd, b, sizeof b, 0), -EAGAIN);
}

#define EXPECT_ONE_ACK(rep, what) do {                                          \
    struct reply rep_ = (rep);                                                  \
    if (rep_.acks != 1 || rep_.rsts || rep_.others)                              \
      fprintf(stderr, "  %s in %s: %d ACKs, %d RSTs, %d other\n", what,          \
              ustcp_state_name((enum ustcp_state)f.state), rep_.acks, rep_.rsts, rep_.others); \
    CHECK_EQ(rep_.acks, 1);                                                     \
    CHECK_EQ(rep_.rsts, 0);                                                     \
  } while (0)

static const int sync_states[] = {USTCP_ESTABLISHED, USTCP_FIN_WAIT_1, USTCP_FIN_WAIT_2,
                                  USTCP_CLOSE_WAIT, USTCP_CLOSING, USTCP_LAST_ACK,
                                  USTCP_TIME_WAIT};
#define NSTATES (sizeof sync_states / sizeof sync_states[0])

static uint8_t evil[40];

/* §3: RST below RCV.NXT with payload spanning it. */
static void rst_spanning_rcv_nxt_does_not_reset(void)
{
  memset(evil, 0xEE, sizeof evil);
  for (unsigned i = 0; i < NSTATES; i++) {
    struct fix f;
    CHECK(setup(&f, sync_states[i], 100 + i));
    uint32_t rcv_nxt = f.c.snd_nxt;
    EXPECT_ONE_ACK(probe(&f, rcv_nxt - 10, 0, TCP_RST, evil, 20), "RST seq-10 +20");
    CHECK_EQ(conn_state(&f.r), f.state);
    /* (Not rcv_nxt - 1: after the peer's FIN, Linux's tcp_reset_check takes
     * that as exact too.) */
    EXPECT_ONE_ACK(probe(&f, rcv_nxt - 2, f.stack_snd_max, TCP_RST | TCP_ACK, evil, 3 + i),
                   "RST|ACK seq-2 +3");
    CHECK_EQ(conn_state(&f.r), f.state);
    nothing_delivered(&f);
    CHECK(rp_stack_problem(&f.r) == NULL);
    struct ustcp_stats st;
    ustcp_get_stats(f.r.s, &st);
    CHECK_EQ(st.tcp_rst_in, 0);
    /* The exact SEQ resets, payload or not (the test can tell the difference). */
    probe(&f, rcv_nxt, 0, TCP_RST, evil, 20);
    CHECK_EQ(conn_state(&f.r), USTCP_CLOSED);
    rp_free(&f.r);
  }
  /* SYN_RCVD (a passive child) too. */
  struct fix f;
  CHECK(setup(&f, USTCP_SYN_RCVD, 99));
  struct reply rep = probe(&f, f.c.snd_nxt - 1, 0, TCP_RST, evil, 20);
  CHECK_EQ(rep.rsts, 0);
  CHECK_EQ(conn_state(&f.r), USTCP_SYN_RCVD);
  rp_free(&f.r);
}

/* §4: SYN one below RCV.NXT with payload: its data would be in order once the
 * SYN is trimmed away. */
static void syn_spanning_rcv_nxt_is_challenged(void)
{
  memset(evil, 0xEE, sizeof evil);
  for (unsigned i = 0; i < NSTATES; i++) {
    struct fix f;
    CHECK(setup(&f, sync_states[i], 200 + i));
    uint32_t rcv_nxt = f.c.snd_nxt;
    EXPECT_ONE_ACK(probe(&f, rcv_nxt - 1, 0, TCP_SYN, evil, 10), "SYN seq-1 +10");
    CHECK_EQ(conn_state(&f.r), f.state);
    nothing_delivered(&f);
    EXPECT_ONE_ACK(probe(&f, rcv_nxt - 1, f.stack_snd_max, TCP_SYN | TCP_ACK, evil, 10),
                   "SYN|ACK seq-1 +10");
    CHECK_EQ(conn_state(&f.r), f.state);
    nothing_delivered(&f);
    /* A SYN at rcv_nxt - 5 straddling the edge, and one out of the window. */
    EXPECT_ONE_ACK(probe(&f, rcv_nxt - 5, 0, TCP_SYN, evil, 30), "SYN seq-5 +30");
    EXPECT_ONE_ACK(probe(&f, rcv_nxt - 0x40000000u, 0, TCP_SYN, NULL, 0), "SYN far");
    CHECK_EQ(conn_state(&f.r), f.state);
    nothing_delivered(&f);
    CHECK(rp_stack_problem(&f.r) == NULL);
    rp_free(&f.r);
  }
  /* SYN_RCVD: the peer's own SYN again draws our SYN-ACK again (Linux's
   * tcp_check_req retransmits it), not a bare ACK it cannot use. */
  struct fix f;
  CHECK(setup(&f, USTCP_SYN_RCVD, 199));
  struct reply rep = probe(&f, f.c.peer_isn, 0, TCP_SYN, NULL, 0);
  CHECK_EQ(rep.synacks, 1);
  CHECK_EQ(rep.rsts, 0);
  CHECK_EQ(conn_state(&f.r), USTCP_SYN_RCVD);
  rp_free(&f.r);
}

/* §5: the ACK field of segments carrying data, straddling either edge. */
static void ack_acceptability_with_data(void)
{
  memset(evil, 0xEE, sizeof evil);
  for (unsigned i = 0; i < NSTATES; i++) {
    struct fix f;
    CHECK(setup(&f, sync_states[i], 300 + i));
    uint32_t rcv_nxt = f.c.snd_nxt;
    uint32_t right = rcv_nxt + f.wnd;
    /* Far too old (below SND.UNA - MAX.SND.WND). */
    EXPECT_ONE_ACK(probe(&f, rcv_nxt - 5, f.stack_snd_max - 0x40000000u, TCP_ACK | TCP_PSH, evil, 20),
                   "old ACK, left edge");
    nothing_delivered(&f);
    /* Within MAX.SND.WND of SND.UNA but below our ISN + 1: bytes never sent. */
    EXPECT_ONE_ACK(probe(&f, rcv_nxt - 5, f.c.stack_isn - 5, TCP_ACK | TCP_PSH, evil, 20),
                   "ACK below ISN, left edge");
    nothing_delivered(&f);
    /* Acknowledges data never sent: left edge, right edge. */
    EXPECT_ONE_ACK(probe(&f, rcv_nxt - 5, f.stack_snd_max + 1000, TCP_ACK | TCP_PSH, evil, 20),
                   "ACK of unsent, left edge");
    nothing_delivered(&f);
    EXPECT_ONE_ACK(probe(&f, right - 10, f.stack_snd_max + 1, TCP_ACK | TCP_PSH, evil, 20),
                   "ACK of unsent, right edge");
    CHECK_EQ(conn_state(&f.r), f.state);
    nothing_delivered(&f);
    CHECK(rp_stack_problem(&f.r) == NULL);
    struct ustcp_tcp_info ti;
    if (f.fd >= 0 && may_receive(f.state)) {
      /* An honest segment straddling the left edge delivers its new bytes. */
      uint8_t d[20], b[64];
      for (int k = 0; k < 20; k++) d[k] = (uint8_t)(k + 1);
      probe(&f, rcv_nxt - 5, f.c.rcv_nxt, TCP_ACK | TCP_PSH, d, 20);
      CHECK_EQ(ustcp_recv(f.r.s, f.fd, b, sizeof b, 0), 15);
      CHECK_MEM(b, d + 5, 15);
      ustcp_get_info(f.r.s, f.fd, &ti);
      CHECK_EQ(ti.state, f.state);
    }
    CHECK(rp_stack_problem(&f.r) == NULL);
    rp_free(&f.r);
  }
}

int main(void)
{
  RUN(rst_spanning_rcv_nxt_does_not_reset);
  RUN(syn_spanning_rcv_nxt_is_challenged);
  RUN(ack_acceptability_with_data);
  return check_report();
}
