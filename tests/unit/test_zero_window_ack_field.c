/* Issue 13: a segment carrying data that arrives while our receive window is
 * zero must still have its ACK field processed before its data is dropped
 * (RFC 9293 §3.10.7.4: "If the RCV.WND is zero, no segments will be
 * acceptable, but special allowance should be made to accept valid ACKs, URGs,
 * and RSTs"; Linux's tcp_sequence accepts SEQ = RCV.NXT with a zero window and
 * tcp_data_queue drops the data and ACKs). Before, the whole segment was
 * unacceptable: a peer whose only segments carry data (a request/response
 * protocol, both sides writing) had its ACKs ignored while our window was
 * closed, and our data waited for retransmission timeouts. Proves:
 *   - the ACK field of such a segment acknowledges our data (unacked -> 0, the
 *     retransmission timer stops) and its window is taken;
 *   - its data is not delivered (the buffer is full) and an ACK advertising
 *     the zero window goes back at once;
 *   - a RST at RCV.NXT with data still resets (accepted the same way);
 *   - once the application reads, the same bytes are accepted. */
#include "check.h"
#include "rawpeer.h"

static int setup_zero_window(struct rp *r, struct rp_conn *c)
{
  rp_init(r, NULL, 31);
  int l = rp_listen(r, 80, 4);
  int v = 4096;
  CHECK_EQ(ustcp_setsockopt(r->s, l, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &v, sizeof v), 0);
  int fd = rp_handshake_in(r, c, l, RP_PEER_IP, 33000, 80, 0x5000, NULL);
  CHECK(fd >= 0);
  /* Fill the receive buffer until the stack advertises a zero window. */
  uint8_t d[500];
  memset(d, 'a', sizeof d);
  struct tcp_packet p;
  uint16_t win = 1;
  for (int i = 0; i < 100 && win != 0; i++) {
    rp_clear(r);
    rp_seg(r, c, TCP_ACK | TCP_PSH, d, sizeof d, 65535);
    rp_advance(r, 300 * USTCP_MSEC);   /* any delayed ACK goes out */
    if (rp_last(r, &p)) {
      win = p.tcp.window;
      c->snd_nxt = p.tcp.ack;          /* what it took */
    }
  }
  CHECK_EQ(win, 0);
  return fd;
}

static void zero_window_segment_ack_is_processed(void)
{
  struct rp r;
  struct rp_conn c;
  int fd = setup_zero_window(&r, &c);
  /* The stack sends 100 bytes; the peer's next segment carries data AND
   * acknowledges them. */
  uint8_t out[100];
  memset(out, 'o', sizeof out);
  CHECK_EQ(ustcp_send(r.s, fd, out, sizeof out, 0), 100);
  rp_advance(&r, USTCP_MSEC);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  CHECK_EQ(ti.unacked, 100);
  uint32_t rcv_buf_before = ti.rcv_buf_used;
  rp_clear(&r);
  uint8_t d[50];
  memset(d, 'b', sizeof d);
  c.rcv_nxt += 100;
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, c.rcv_nxt, TCP_ACK | TCP_PSH, 30000,
               NULL, d, sizeof d);
  ustcp_get_info(r.s, fd, &ti);
  CHECK_EQ(ti.unacked, 0);                  /* the ACK field was processed */
  CHECK_EQ(ti.snd_wnd, 30000);              /* and the window */
  CHECK_EQ(ti.rcv_buf_used, rcv_buf_before);/* the data was not taken */
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));                   /* an ACK at once, window still zero */
  CHECK_EQ(p.tcp.flags & (TCP_ACK | TCP_RST | TCP_SYN), TCP_ACK);
  CHECK_EQ(p.tcp.ack, c.snd_nxt);
  CHECK_EQ(p.tcp.window, 0);
  /* No retransmission follows: the data is acknowledged. */
  rp_clear(&r);
  rp_advance(&r, 5 * USTCP_SEC);
  while (rp_next(&r, &p)) CHECK_EQ(p.payload_len, 0);
  /* The application reads; the same bytes are then accepted. */
  static uint8_t sink[1 << 16];
  CHECK(ustcp_recv(r.s, fd, sink, sizeof sink, 0) > 0);
  rp_seg(&r, &c, TCP_ACK | TCP_PSH, d, sizeof d, 30000);
  CHECK_EQ(ustcp_recv(r.s, fd, sink, sizeof sink, 0), 50);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void zero_window_rst_with_data_at_rcv_nxt_resets(void)
{
  struct rp r;
  struct rp_conn c;
  int fd = setup_zero_window(&r, &c);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, 0, TCP_RST, 0, NULL, "zz", 2);
  CHECK_EQ(rp_state(&r, fd), USTCP_CLOSED);
  rp_free(&r);
}

int main(void)
{
  RUN(zero_window_segment_ack_is_processed);
  RUN(zero_window_rst_with_data_at_rcv_nxt_resets);
  return check_report();
}
