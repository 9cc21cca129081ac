/* Regression tests for bugs found by the simulation (tests/sim/simtest.c) and the
 * engine fuzzer (fuzz/fuzz_engine.c), issue 6. Each test reproduces one bug with
 * hand-made segments (tests/unit/rawpeer.h) and names what it proves; the seed
 * that found it is in the comment. */
#include "check.h"
#include "rawpeer.h"

/* ---- simtest seed 2: a connection made from a SYN cookie reported CLOSED ->
 * SYN_RCVD as its first state change; a child is born from LISTEN (RFC 9293
 * §3.3.2 diagram), as the SYN-queue path reports it. */
struct evlog {
  struct ustcp_event ev[64];
  int n;
};
static void record(void *ctx, const struct ustcp_event *ev)
{
  struct evlog *l = ctx;
  if (l->n < 64) l->ev[l->n++] = *ev;
}

static void cookie_child_is_born_from_listen(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.syncookies = 2;                       /* always cookies */
  struct rp r;
  rp_init(&r, &cfg, 7);
  int l = rp_listen(&r, 80, 16);
  struct evlog log = {.n = 0};
  ustcp_set_event_cb(r.s, record, &log);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40000, 80, 1000, NULL);
  CHECK(fd >= 0);
  CHECK(log.n >= 2);
  CHECK_EQ(log.ev[0].old_state, USTCP_LISTEN);
  CHECK_EQ(log.ev[0].new_state, USTCP_SYN_RCVD);
  CHECK_EQ(log.ev[1].old_state, USTCP_SYN_RCVD);
  CHECK_EQ(log.ev[1].new_state, USTCP_ESTABLISHED);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seeds 1 and 7: with window scaling, an ACK that keeps the old
 * right edge (the application has not read, or the edge moved by less than the
 * SWS step) rounds the window down to the scale unit. The engine then also
 * moved its own acceptance edge (rcv_adv) left, so data the peer had been
 * allowed to send was cut off, and out-of-order data already queued lay beyond
 * rcv_adv. RFC 7323 Appendix F: the advertised edge may retract by less than one
 * unit through rounding, and the receiver must still accept data up to the
 * largest edge it advertised (RFC 9293 §3.8.6.2.2: do not shrink the window). */
static void scaled_window_accepts_data_up_to_the_largest_edge(void)
{
  struct rp r;
  rp_init(&r, NULL, 8);
  int l = rp_listen(&r, 80, 16);
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_WSCALE;
  o.mss = 1460;
  o.wscale = 7;
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40001, 80, 5000, &o);
  CHECK(fd >= 0);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  uint32_t unit = 1u << ti.rcv_wscale;
  CHECK(unit > 1);
  rp_clear(&r);
  static uint8_t data[4096];
  memset(data, 'x', sizeof data);
  uint32_t max_edge = 0;
  bool have = false, retracted_unit = false;
  /* Unread data in segments that are not multiples of the unit. */
  for (int i = 0; i < 20; i++) {
    rp_seg(&r, &c, TCP_ACK | TCP_PSH, data, 777, 65535);
    rp_advance(&r, 300 * USTCP_MSEC);     /* let any delayed ACK go */
    struct tcp_packet p;
    while (rp_next(&r, &p)) {
      uint32_t edge = p.tcp.ack + ((uint32_t)p.tcp.window << ti.rcv_wscale);
      if (have && seq_lt(edge, max_edge) && max_edge - edge >= unit) retracted_unit = true;
      if (!have || seq_gt(edge, max_edge)) max_edge = edge;
      have = true;
    }
    CHECK(rp_stack_problem(&r) == NULL);
  }
  CHECK(have);
  CHECK(!retracted_unit);
  /* Fill the window exactly to the largest edge ever advertised: every byte
   * is taken (acked), none cut off. */
  uint32_t room = max_edge - c.snd_nxt;
  CHECK(room > 0 && room <= 131072);
  while (room > 0) {
    uint32_t n = room > 1400 ? 1400 : room;
    rp_seg(&r, &c, TCP_ACK, data, n, 65535);
    room -= n;
  }
  rp_advance(&r, 300 * USTCP_MSEC);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.ack, max_edge);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seeds 2, 5, 7, 8, 11, 14, 15: a FIN without data that arrived
 * out of order was put at the HEAD of the out-of-order queue whatever its
 * sequence number (ooo_insert), so the queue was no longer sorted and the data
 * queued behind the hole was never reassembled from it (D4). */
static void ooo_fin_alone_keeps_the_queue_sorted(void)
{
  struct rp r;
  rp_init(&r, NULL, 9);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40002, 80, 7000, NULL);
  CHECK(fd >= 0);
  uint8_t data[3000];
  for (int i = 0; i < 3000; i++) data[i] = (uint8_t)(i * 7 + 1);
  uint32_t base = c.snd_nxt;
  /* [1000, 2000) then the FIN alone at 3000, both beyond a hole at 0. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 1000, c.rcv_nxt, TCP_ACK, 65535, NULL, data + 1000, 1000);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 3000, c.rcv_nxt, TCP_ACK | TCP_FIN, 65535, NULL, NULL, 0);
  CHECK(rp_stack_problem(&r) == NULL);
  /* The holes fill; everything must come out in order, then EOF. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base, c.rcv_nxt, TCP_ACK, 65535, NULL, data, 1000);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 2000, c.rcv_nxt, TCP_ACK, 65535, NULL, data + 2000, 1000);
  CHECK(rp_stack_problem(&r) == NULL);
  uint8_t got[4000];
  ssize_t n = ustcp_recv(r.s, fd, got, sizeof got, 0);
  CHECK_EQ(n, 3000);
  if (n == 3000) CHECK_MEM(got, data, 3000);
  CHECK_EQ(ustcp_recv(r.s, fd, got, sizeof got, 0), 0);
  CHECK_EQ(rp_state(&r, fd), USTCP_CLOSE_WAIT);
  rp_free(&r);
}

/* ---- simtest seeds 1, 10, 12, 13: fast retransmit (tcp_retransmit_una) took
 * min(MSS, bytes in the send buffer) from snd_una, so with unsent data queued it
 * sent bytes never sent before, beyond the peer's window (D3), and moved snd_nxt
 * past snd_max (and could send a FIN that was only queued). A retransmission
 * resends what was sent: at most snd_max - snd_una. */
static void fast_retransmit_resends_only_what_was_sent(void)
{
  struct rp r;
  rp_init(&r, NULL, 10);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  /* MSS 500: a segment fits the 500-byte window (a larger one would wait for
   * the probe timer: Linux never cuts a segment to the window, tcp_snd_wnd_test) */
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS;
  o.mss = 500;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40003, 80, 9000, &o);
  CHECK(fd >= 0);
  /* The peer offers a 500-byte window; the application queues 5000 bytes. */
  rp_seg(&r, &c, TCP_ACK, NULL, 0, 500);
  rp_clear(&r);
  static uint8_t data[5000];
  CHECK_EQ(ustcp_send(r.s, fd, data, sizeof data, 0), 5000);
  struct tcp_packet p;
  uint32_t sent = 0;
  while (rp_next(&r, &p)) sent += (uint32_t)p.payload_len;
  CHECK_EQ(sent, 500);
  uint32_t edge = c.rcv_nxt + 500;
  /* Three duplicate ACKs (same window): fast retransmit. */
  for (int i = 0; i < 3; i++) rp_seg(&r, &c, TCP_ACK, NULL, 0, 500);
  bool any = false;
  while (rp_next(&r, &p)) {
    if (!p.payload_len) continue;
    any = true;
    CHECK(seq_leq(p.tcp.seq + (uint32_t)p.payload_len, edge));
    CHECK(!(p.tcp.flags & TCP_FIN));
  }
  CHECK(any);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seeds 3 and 9: a SYN cookie encodes the MSS as an index into a
 * table whose smallest entry was 216, so a peer that announced MSS 179
 * (TCP_MAXSEG) got 216-byte segments. The table now starts at the engine's
 * floor (64, as take_syn_options clamps). */
static void cookie_never_exceeds_the_peer_mss(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.syncookies = 2;
  struct rp r;
  rp_init(&r, &cfg, 11);
  int l = rp_listen(&r, 80, 16);
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS;
  o.mss = 179;
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40004, 80, 100, &o);
  CHECK(fd >= 0);
  rp_clear(&r);
  static uint8_t data[3000];
  CHECK_EQ(ustcp_send(r.s, fd, data, sizeof data, 0), 3000);
  struct tcp_packet p;
  int segs = 0;
  while (rp_next(&r, &p)) {
    if (!p.payload_len) continue;
    segs++;
    CHECK(p.payload_len <= 179);
  }
  CHECK(segs > 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seeds 3, 5, 10, 12, 13, 15: the window update rule (snd_wl1,
 * snd_wl2) rejected the window of a segment that acknowledged new data when its
 * sequence number was below that of an earlier pure ACK (a retransmission:
 * pure ACKs carry snd_max), so the old snd_wnd was applied from the new snd_una
 * and the right edge moved beyond anything the peer advertised (D3). Like Linux
 * (tcp_may_update_window), a segment that acknowledges new data updates the
 * window. */
static void acking_retransmission_updates_the_window(void)
{
  struct rp r;
  rp_init(&r, NULL, 12);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40005, 80, 20000, NULL);
  CHECK(fd >= 0);
  int one = 1;
  ustcp_setsockopt(r.s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &one, sizeof one);
  uint32_t una = c.rcv_nxt;
  uint32_t P = c.snd_nxt;
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, P, una, TCP_ACK, 4380, NULL, NULL, 0);
  static uint8_t data[20000];
  /* wmem_default grown to two initial windows at ESTABLISHED (issue 12) */
  CHECK_EQ(ustcp_send(r.s, fd, data, sizeof data, 0), (ssize_t)sizeof data);
  struct tcp_packet p;
  uint32_t top = una;
  while (rp_next(&r, &p)) top = p.tcp.seq + (uint32_t)p.payload_len;
  CHECK_EQ(top - una, 4380);
  /* The peer sent 100 bytes (lost on the way) and then a pure ACK with
   * seq = its snd_max, acking everything with window 4380: edge una + 8760. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, P + 100, una + 4380, TCP_ACK, 4380, NULL, NULL, 0);
  uint32_t max_edge = una + 8760;
  while (rp_next(&r, &p)) {
    CHECK(seq_leq(p.tcp.seq + (uint32_t)p.payload_len, max_edge));
    top = p.tcp.seq + (uint32_t)p.payload_len;
  }
  CHECK_EQ(top - una, 8760);
  /* Its retransmission of the 100 bytes acks 5840 with window 2920: the
   * edge stays una + 8760, nothing may go beyond it. */
  uint8_t d100[100] = {0};
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, P, una + 5840, TCP_ACK, 2920, NULL, d100, 100);
  rp_advance(&r, 100 * USTCP_MSEC);
  while (rp_next(&r, &p)) {
    if (p.payload_len)
      CHECK(seq_leq(p.tcp.seq + (uint32_t)p.payload_len, max_edge));
  }
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seed 3: an old ACK (ack below snd_una, delivered late) still
 * updated the send window when its sequence number passed the snd_wl1 test
 * (a pure ACK carries the peer's snd_max, higher than a later retransmission),
 * so its stale window was applied from the current snd_una and the right edge
 * went beyond anything advertised (D3). RFC 9293 §3.10.7.4: the window is
 * updated only if SND.UNA =< SEG.ACK (Linux: old ACKs skip it, tcp_ack). */
static void old_ack_never_updates_the_window(void)
{
  struct rp r;
  rp_init(&r, NULL, 16);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40009, 80, 50000, NULL);
  CHECK(fd >= 0);
  int one = 1;
  ustcp_setsockopt(r.s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &one, sizeof one);
  uint32_t una = c.rcv_nxt, P = c.snd_nxt;
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, P, una, TCP_ACK, 4380, NULL, NULL, 0);
  static uint8_t data[16384];
  CHECK_EQ(ustcp_send(r.s, fd, data, sizeof data, 0), 16384);
  rp_clear(&r);
  /* Newer: a retransmission (seq P) acking 2920 with window 2920: edge 5840. */
  uint8_t d100[100] = {0};
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, P, una + 2920, TCP_ACK, 2920, NULL, d100, 100);
  /* Older, delivered late: the pure ACK (seq P + 100) acking 1460, window 4380. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, P + 100, una + 1460, TCP_ACK, 4380, NULL, NULL, 0);
  rp_advance(&r, 50 * USTCP_MSEC);
  struct tcp_packet p;
  while (rp_next(&r, &p))
    if (p.payload_len) CHECK(seq_leq(p.tcp.seq + (uint32_t)p.payload_len, una + 5840));
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seed 22: with the out-of-order queue at max_ooo_segments, every
 * new out-of-order segment was dropped, even one just past rcv_nxt while the
 * queue held segments far ahead (from an earlier burst): every later loss then
 * needed a retransmission timeout (one segment per backed-off RTO, up to 120 s),
 * and a transfer crawled for half an hour. As Linux prunes its out-of-order
 * queue from the far end (tcp_prune_ofo_queue), a segment nearer rcv_nxt
 * evicts the farthest queued one: the bound holds and the hole fills. */
static void full_ooo_queue_keeps_the_segments_nearest_rcv_nxt(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.max_ooo_segments = 4;
  struct rp r;
  rp_init(&r, &cfg, 17);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40010, 80, 60000, NULL);
  CHECK(fd >= 0);
  static uint8_t data[20000];
  for (int i = 0; i < 20000; i++) data[i] = (uint8_t)(i * 13 + 5);
  uint32_t base = c.snd_nxt;
  /* Four segments far ahead fill the queue. */
  for (int k = 0; k < 4; k++)
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 10000 + 1000 * (uint32_t)k, c.rcv_nxt,
                 TCP_ACK, 65535, NULL, data + 10000 + 1000 * k, 1000);
  /* The segment right after the hole, then the hole. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 1000, c.rcv_nxt, TCP_ACK, 65535, NULL, data + 1000, 1000);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_clear(&r);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base, c.rcv_nxt, TCP_ACK, 65535, NULL, data, 1000);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.ack - base, 2000);
  uint8_t got[4000];
  CHECK_EQ(ustcp_recv(r.s, fd, got, sizeof got, 0), 2000);
  CHECK_MEM(got, data, 2000);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seed 22: after a retransmission timeout (go-back-N: snd_nxt back
 * to snd_una, cwnd one segment), three duplicate ACKs started fast recovery
 * with ssthresh from snd_max - snd_una (all the data sent before the timeout),
 * so cwnd jumped and a burst of the whole old window went out at once, into
 * the queue that had just overflowed. RFC 6582 §4: after a timeout, recover =
 * snd_max, and duplicate ACKs below it do not start a fast retransmit. */
static void no_fast_retransmit_burst_after_a_timeout(void)
{
  struct rp r;
  rp_init(&r, NULL, 18);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40011, 80, 70000, NULL);
  CHECK(fd >= 0);
  static uint8_t data[16384];
  CHECK_EQ(ustcp_send(r.s, fd, data, sizeof data, 0), 16384);
  struct tcp_packet p;
  int first = 0;
  while (rp_next(&r, &p)) if (p.payload_len) first++;
  CHECK_EQ(first, 10);                         /* initial cwnd */
  /* Nothing is acknowledged: the retransmission timer (200 ms: rto_min, the
   * handshake took no time) goes off once. */
  rp_advance(&r, 250 * USTCP_MSEC);
  int resent = 0;
  while (rp_next(&r, &p)) if (p.payload_len) resent++;
  CHECK_EQ(resent, 1);
  /* Three duplicate ACKs (what go-back-N retransmissions can produce). */
  for (int i = 0; i < 3; i++) rp_seg(&r, &c, TCP_ACK, NULL, 0, 65535);
  int burst = 0;
  while (rp_next(&r, &p)) if (p.payload_len) burst++;
  CHECK(burst <= 1);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seeds 1248, 1325, 1334: with recover set at a timeout (RFC 6582
 * §4, above), every later loss below recover waited for a retransmission
 * timeout, backed off (Karn: retransmissions give no RTT sample) up to 120 s:
 * a 400 KB transfer over a lossy path took more than 25 minutes. RFC 6582 §4's
 * ACK heuristic tells the two cases apart: duplicate ACKs after a cumulative
 * ACK that advanced at most 4*SMSS (and cwnd > SMSS) mean a real loss and start
 * fast retransmit; after a larger jump they come from go-back-N duplicates. */
static void fast_retransmit_after_a_timeout_when_acks_advance_little(void)
{
  struct rp r;
  rp_init(&r, NULL, 20);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40012, 80, 80000, NULL);
  CHECK(fd >= 0);
  static uint8_t data[16384];
  CHECK_EQ(ustcp_send(r.s, fd, data, sizeof data, 0), 16384);
  rp_clear(&r);
  rp_advance(&r, 250 * USTCP_MSEC);                /* one timeout: go-back-N from snd_una */
  rp_clear(&r);
  uint32_t una = c.rcv_nxt;
  /* The first segment arrives again and is acked (+1 MSS): cwnd 2 MSS. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, una + 1460, TCP_ACK, 65535, NULL, NULL, 0);
  rp_clear(&r);
  /* The next one was lost: three duplicate ACKs. */
  for (int i = 0; i < 3; i++)
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, una + 1460, TCP_ACK, 65535, NULL, NULL, 0);
  struct tcp_packet p;
  bool resent = false;
  while (rp_next(&r, &p))
    if (p.payload_len && p.tcp.seq == una + 1460) resent = true;
  CHECK(resent);                                   /* at once, not after another timeout */
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seeds 13, 14 (once the check "no persist timer with data in
 * flight" was added): when a retransmission timeout found the peer's window
 * closed, go-back-N left snd_nxt = snd_una and tcp_output armed the persist
 * timer (it tested snd_nxt, not snd_max) on top of the retransmission timer:
 * both ran, zero-window probes counted against a connection whose data was
 * merely unacknowledged. Persist is for nothing in flight (Linux: tcp_probe0
 * only with packets_out == 0); with data in flight the RTO probes. */
static void no_persist_timer_with_data_in_flight(void)
{
  struct rp r;
  rp_init(&r, NULL, 25);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40013, 80, 90000, NULL);
  CHECK(fd >= 0);
  static uint8_t data[3000];
  CHECK_EQ(ustcp_send(r.s, fd, data, sizeof data, 0), 3000);
  /* The peer closes its window without acknowledging anything. */
  rp_seg(&r, &c, TCP_ACK, NULL, 0, 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_advance(&r, 250 * USTCP_MSEC);                /* the retransmission timeout */
  CHECK(rp_stack_problem(&r) == NULL);
  struct tcb *t = sock_debug_tcb(r.s, fd, NULL);
  CHECK(t && t->rto_at_us && !t->persist_at_us);
  rp_free(&r);
}

/* ---- simtest seed 41 (after the fix above): data in flight, the peer's
 * window closed (a reordered old ACK said 0), and the ACK that reopened it
 * lost: the retransmission timer went off and sent NOTHING (go-back-N from
 * snd_una found no usable window) until retries2 killed the connection, while
 * the peer was alive and had room. RFC 9293 §3.8.6.1: the sender must keep
 * retransmitting into a zero window; Linux retransmits the head segment
 * whatever the window (__tcp_retransmit_skb): that retransmission is the probe
 * whose answer reopens the window. */
static void timeout_retransmits_into_a_zero_window(void)
{
  struct rp r;
  rp_init(&r, NULL, 26);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40014, 80, 91000, NULL);
  CHECK(fd >= 0);
  static uint8_t data[3000];
  CHECK_EQ(ustcp_send(r.s, fd, data, sizeof data, 0), 3000);
  uint32_t una = c.rcv_nxt;
  /* The peer took 1460 bytes and closed its window; its window update is lost. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, una + 1460, TCP_ACK, 0, NULL, NULL, 0);
  rp_clear(&r);
  rp_advance(&r, 300 * USTCP_MSEC);                /* past the RTO */
  struct tcp_packet p;
  bool probe = false;
  while (rp_next(&r, &p))
    if (p.tcp.seq == una + 1460 && p.payload_len > 0) probe = true;
  CHECK(probe);
  /* Its answer (window open) gets the rest through. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, c.snd_nxt, una + 2920, TCP_ACK, 65535, NULL, NULL, 0);
  rp_advance(&r, 10 * USTCP_MSEC);
  uint32_t top = 0;
  while (rp_next(&r, &p))
    if (p.payload_len) top = p.tcp.seq + (uint32_t)p.payload_len;
  CHECK_EQ(top, una + 3000);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- soak seed 101701: a peer that filled our receive window with data that
 * was lost sends its pure ACKs with seq = its snd_max = our advertised right
 * edge. RFC 9293's test (RCV.NXT =< SEG.SEQ < RCV.NXT+RCV.WND) rejects them, so
 * their ACK field and window were ignored and, since they did not count as a
 * sign of life, keepalive killed the connection (ETIMEDOUT) while the peer
 * answered every probe. Linux (tcp_sequence) accepts a segment that starts at
 * the right edge; so does ustcp now for a segment without data. */
static void ack_at_the_right_edge_is_processed(void)
{
  struct rp r;
  rp_init(&r, NULL, 27);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40015, 80, 92000, NULL);
  CHECK(fd >= 0);
  static uint8_t data[1000];
  CHECK_EQ(ustcp_send(r.s, fd, data, sizeof data, 0), 1000);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  uint32_t edge = c.snd_nxt + ti.rcv_wnd;
  /* The peer's data up to our edge was lost; its ACK of our 1000 bytes. */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, edge, c.rcv_nxt + 1000, TCP_ACK, 65535, NULL, NULL, 0);
  ustcp_get_info(r.s, fd, &ti);
  CHECK_EQ(ti.unacked, 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seed 6 (conn 103): keepalive counted its probes and never reset
 * the count when the peer answered (only new data acked did), and its idle
 * timer was never restarted by traffic: an idle connection whose peer answers
 * every probe died with ETIMEDOUT after keepcnt probes, and probes went out on
 * busy connections. RFC 1122 4.2.3.6: probe only after keepidle without any
 * segment received; an answer makes the connection alive again. */
static int keepalive_setup(struct rp *r, struct rp_conn *c, uint16_t port)
{
  int l = rp_listen(r, 80, 16);
  int one = 1, idle = 10, intvl = 5, cnt = 3;
  ustcp_setsockopt(r->s, l, USTCP_SOL_SOCKET, USTCP_SO_KEEPALIVE, &one, sizeof one);
  ustcp_setsockopt(r->s, l, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPIDLE, &idle, sizeof idle);
  ustcp_setsockopt(r->s, l, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPINTVL, &intvl, sizeof intvl);
  ustcp_setsockopt(r->s, l, USTCP_IPPROTO_TCP, USTCP_TCP_KEEPCNT, &cnt, sizeof cnt);
  return rp_handshake_in(r, c, l, RP_PEER_IP, port, 80, 30000, NULL);
}

static void keepalive_answered_probes_keep_the_connection(void)
{
  struct rp r;
  rp_init(&r, NULL, 13);
  struct rp_conn c;
  int fd = keepalive_setup(&r, &c, 40006);
  CHECK(fd >= 0);
  int probes = 0;
  /* 200 s idle; the peer answers every probe, as a live TCP does. */
  for (int s = 0; s < 200; s++) {
    rp_advance(&r, USTCP_SEC);
    struct tcp_packet p;
    while (rp_next(&r, &p))
      if (p.tcp.seq == c.rcv_nxt - 1 && p.payload_len == 0) {
        probes++;
        rp_seg(&r, &c, TCP_ACK, NULL, 0, 65535);
      }
  }
  CHECK(probes >= 10);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  CHECK_EQ(ti.state, USTCP_ESTABLISHED);
  CHECK_EQ(ustcp_sock_error(r.s, fd), 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

static void keepalive_probes_only_an_idle_connection(void)
{
  struct rp r;
  rp_init(&r, NULL, 14);
  struct rp_conn c;
  int fd = keepalive_setup(&r, &c, 40007);
  CHECK(fd >= 0);
  uint8_t byte = 'k';
  int probes = 0;
  /* The peer sends a byte every 4 s (less than keepidle 10 s) for 120 s. */
  for (int s = 0; s < 120; s++) {
    if (s % 4 == 0) rp_seg(&r, &c, TCP_ACK | TCP_PSH, &byte, 1, 65535);
    rp_advance(&r, USTCP_SEC);
    struct tcp_packet p;
    while (rp_next(&r, &p))
      if (p.tcp.seq == c.rcv_nxt - 1 && p.payload_len == 0) probes++;
    uint8_t b[16];
    ustcp_recv(r.s, fd, b, sizeof b, 0);
  }
  CHECK_EQ(probes, 0);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  CHECK_EQ(ti.state, USTCP_ESTABLISHED);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* ---- simtest seed 6: keepalive ran only in ESTABLISHED and CLOSE_WAIT, so a
 * socket that did shutdown(SHUT_WR) and waits in FIN_WAIT_2 for a peer that
 * vanished (its RST lost) waited forever. Linux probes in every synchronized
 * state (tcp_keepalive_timer); the dead peer is then detected. */
static void keepalive_detects_a_dead_peer_in_fin_wait_2(void)
{
  struct rp r;
  rp_init(&r, NULL, 15);
  struct rp_conn c;
  int fd = keepalive_setup(&r, &c, 40008);
  CHECK(fd >= 0);
  CHECK_EQ(ustcp_shutdown(r.s, fd, USTCP_SHUT_WR), 0);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p) && (p.tcp.flags & TCP_FIN));
  c.rcv_nxt++;
  rp_seg(&r, &c, TCP_ACK, NULL, 0, 65535);        /* ACK of the FIN, then silence */
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  CHECK_EQ(ti.state, USTCP_FIN_WAIT_2);
  rp_advance(&r, 60 * USTCP_SEC);                  /* > 10 + 3 * 5 s */
  ustcp_get_info(r.s, fd, &ti);
  CHECK_EQ(ti.state, USTCP_CLOSED);
  uint8_t b[4];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), -ETIMEDOUT);
  CHECK(rp_stack_problem(&r) == NULL);
  CHECK_EQ(ustcp_close(r.s, fd), 0);
  rp_free(&r);
}

/* ---- fuzz_engine (crash-752f1f91): shutdown(SHUT_RD) stops a listener (Linux:
 * the socket may then listen or connect again), but the control block kept
 * its listener state, so a connect() on it was filed in the LISTENER table:
 * its SYN-ACK found no connection (demux by 4-tuple) and was answered by RST. */
static void listener_reused_for_connect_is_demultiplexed(void)
{
  struct rp r;
  rp_init(&r, NULL, 19);
  int l = rp_listen(&r, 8080, 16);
  CHECK(l >= 0);
  CHECK_EQ(ustcp_shutdown(r.s, l, USTCP_SHUT_RD), 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_clear(&r);
  struct ustcp_addr to = {RP_PEER_IP, 9000};
  CHECK_EQ(ustcp_connect(r.s, l, &to), -EINPROGRESS);
  CHECK(rp_stack_problem(&r) == NULL);
  struct tcp_packet p;
  CHECK(rp_last(&r, &p) && p.tcp.flags == TCP_SYN);
  rp_send_from(&r, RP_PEER_IP, 9000, p.tcp.src_port, 777, p.tcp.seq + 1, TCP_SYN | TCP_ACK, 65535,
               NULL, NULL, 0);
  CHECK_EQ(rp_state(&r, l), USTCP_ESTABLISHED);
  CHECK(rp_stack_problem(&r) == NULL);
  CHECK_EQ(ustcp_close(r.s, l), 0);
  rp_free(&r);
}

int main(void)
{
  RUN(cookie_child_is_born_from_listen);
  RUN(scaled_window_accepts_data_up_to_the_largest_edge);
  RUN(ooo_fin_alone_keeps_the_queue_sorted);
  RUN(fast_retransmit_resends_only_what_was_sent);
  RUN(cookie_never_exceeds_the_peer_mss);
  RUN(acking_retransmission_updates_the_window);
  RUN(old_ack_never_updates_the_window);
  RUN(full_ooo_queue_keeps_the_segments_nearest_rcv_nxt);
  RUN(no_fast_retransmit_burst_after_a_timeout);
  RUN(fast_retransmit_after_a_timeout_when_acks_advance_little);
  RUN(no_persist_timer_with_data_in_flight);
  RUN(timeout_retransmits_into_a_zero_window);
  RUN(ack_at_the_right_edge_is_processed);
  RUN(listener_reused_for_connect_is_demultiplexed);
  RUN(keepalive_answered_probes_keep_the_connection);
  RUN(keepalive_probes_only_an_idle_connection);
  RUN(keepalive_detects_a_dead_peer_in_fin_wait_2);
  return check_report();
}
