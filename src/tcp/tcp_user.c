/* The user calls of RFC 9293 §3.10: what OPEN, SEND, RECEIVE, CLOSE, ABORT and
 * STATUS do to a connection, state by state. src/sock maps descriptors to
 * control blocks and calls these; the stack's own part of OPEN (choosing the
 * local port, checking that the 4-tuple is free) happens there, between the two
 * halves of an active OPEN.
 *
 *   §3.10.1 OPEN     tcp_user_connect_allowed + tcp_user_open     (active)
 *                    tcp_user_listen_allowed + tcp_user_listen    (passive)
 *   §3.10.2 SEND     tcp_user_send
 *   §3.10.3 RECEIVE  tcp_user_receive
 *   §3.10.4 CLOSE    tcp_user_shutdown (the RFC's CLOSE: "no more to send") and
 *                    tcp_user_close (the socket's close(): CLOSE, and the
 *                    application gives the connection up: an orphan)
 *   §3.10.5 ABORT    tcp_user_abort
 *   §3.10.6 STATUS   tcp_user_status
 *
 * Where the RFC leaves the choice (or a socket API must answer differently, e.g.
 * SEND in SYN-SENT would queue the data by the RFC but a non-blocking socket says
 * EAGAIN), Linux decides, and the errno values are Linux's. Every function
 * checks the state before it changes anything: a refused call leaves the
 * connection as it was. The functions that may change state or send take a
 * `ran` out-parameter: set when the call made the engine do something, so the
 * caller ends the event (stack_after_event) exactly then.
 *
 * These run only from socket calls, never from inside the engine; a callback may
 * therefore make any of them (src/stack/notify.c).
 */
#include "tcp/tcp.h"

static void start_fin(struct tcp_engine *e, struct tcb *t)
{
  t->fin_queued = true;
  t->fin_seq = t->snd_buf_seq + t->sndbuf.len;
  tcb_set_state(e, t, t->state == USTCP_ESTABLISHED ? USTCP_FIN_WAIT_1 : USTCP_LAST_ACK,
                USTCP_CAUSE_CALL);
  tcp_output(e, t);
}

/* §3.10.1 OPEN (active), what the state allows. CLOSED: a new attempt, unless
 * the previous attempt's outcome is still to be reported (its error once, then
 * ECONNABORTED if SO_ERROR took the error, as Linux's __inet_stream_connect) or
 * the socket was connected once (EISCONN). SYN-SENT, SYN-RECEIVED: EALREADY.
 * Other states ("connection already exists"): 0 the first time after a
 * non-blocking connect completed (Linux), else EISCONN. Returns
 * TCP_USER_PROCEED or the call's result. */
int tcp_user_connect_allowed(struct tcb *t)
{
  switch (t->state) {
  case USTCP_SYN_SENT: case USTCP_SYN_RCVD:
    return -EALREADY;
  case USTCP_CLOSED:
    /* Linux: a socket whose connect() was reported (or that was accepted) is
     * SS_CONNECTED: EISCONN after a reset too, leaving the error pending. */
    if (tcb_ever_connected(t) && !t->connect_unreported) return -EISCONN;
    if (t->so_error) {              /* the outcome of the previous attempt */
      int err = t->so_error;
      t->so_error = 0;
      t->connect_unreported = false;
      return err;
    }
    if (t->connect_unreported) {
      /* Linux: a failed attempt whose error was already taken (SO_ERROR)
       * reports ECONNABORTED to the next connect(). */
      t->connect_unreported = false;
      return -ECONNABORTED;
    }
    if (tcb_ever_connected(t)) return -EISCONN;
    return TCP_USER_PROCEED;
  default:
    /* Linux (__inet_stream_connect): the first connect() after a non-blocking
     * connect completed returns 0, later ones -EISCONN. */
    if (t->connect_unreported) {
      t->connect_unreported = false;
      return 0;
    }
    return -EISCONN;
  }
}

/* §3.10.1 OPEN (active), CLOSED with local and remote chosen: ISS (RFC 6528),
 * our MSS and window scale offer, the block into the demultiplexer, SYN-SENT,
 * the SYN. The outcome is reported later (readiness, SO_ERROR). */
void tcp_user_open(struct tcp_engine *e, struct tcb *t, const struct tcp_ep *local,
                   const struct tcp_ep *remote)
{
  tcp_ep_set(e, &t->local, local);
  tcp_ep_set(e, &t->remote, remote);
  t->rcv_mss = tcp_adv_mss(e, t);
  t->rcv_wscale = tcp_choose_wscale(e, t);
  t->snd_mss = t->rcv_mss;
  t->iss = tcp_isn(e, &t->local, &t->remote);
  t->ts_off = tcp_ts_off(e, t->local.v6, t->local.ip, t->remote.ip);
  t->snd_una = t->snd_nxt = t->snd_max = t->iss;
  t->snd_sml = t->iss;   /* no small segment sent (tcp_connect_init) */
  t->snd_buf_seq = t->iss + 1;
  tcp_ecn_send_syn(t);   /* RFC 3168 §6.1.1: ECN asked for when tcp_ecn is 1 */
  e->ops.hash_insert(e, t);
  tcb_set_state(e, t, USTCP_SYN_SENT, USTCP_CAUSE_CALL);
  t->connect_unreported = true;
  tcp_output(e, t);
}

/* §3.10.1 OPEN (passive), what the state allows. LISTEN: listen() again only
 * sets the backlog (Linux), done here (returns 0). CLOSED and never connected:
 * TCP_USER_PROCEED. Otherwise EINVAL (Linux: only a fresh socket may listen). */
int tcp_user_listen_allowed(struct tcp_engine *e, struct tcb *t, int backlog)
{
  if (t->state == USTCP_LISTEN) {
    t->lst->backlog = u32_min(backlog < 0 ? 0 : (uint32_t)backlog, e->cfg->somaxconn);
    return 0;
  }
  if (t->state != USTCP_CLOSED || tcb_ever_connected(t)) return -EINVAL;
  return TCP_USER_PROCEED;
}

/* §3.10.1 OPEN (passive), the local port bound: LISTEN with its queues (H2, H6),
 * the block into the listener table. */
int tcp_user_listen(struct tcp_engine *e, struct tcb *t, int backlog)
{
  int rc = tcp_listen_start(e, t, backlog);
  if (rc) return rc;
  e->ops.hash_insert(e, t);
  return 0;
}

/* Linux's tcp_xmit_size_goal: the bytes one skb of the write queue holds, half
 * the peer's largest window (tcp_bound_to_half_wnd) within the 64 KiB GSO limit,
 * in whole MSS, at least one MSS. */
static uint32_t size_goal(const struct tcb *t)
{
  uint32_t mss = t->snd_mss ? t->snd_mss : 536;
  uint32_t goal = 65536;
  uint32_t cutoff = t->max_snd_wnd > 536 ? t->max_snd_wnd >> 1 : t->max_snd_wnd;
  if (cutoff && goal > cutoff) goal = u32_max(cutoff, 48);
  goal = goal / mss * mss;
  return u32_max(goal, mss);
}

/* A send while a notsent limit applies, as Linux's tcp_sendmsg_locked queues
 * data: bytes go into the last unsent skb while it has room (size_goal), and a
 * new skb is started only while tcp_stream_memory_free(sk, 0) holds (notsent
 * below the limit); a skb that fills is pushed at once (tcp_push_one), which
 * is why a write can end past the limit. Returns the bytes queued. */
static uint32_t send_notsent_limited(struct tcp_engine *e, struct tcb *t, const uint8_t *buf,
                                     uint32_t len)
{
  uint32_t goal = size_goal(t), done = 0;
  while (done < len) {
    uint32_t write_seq = t->snd_buf_seq + t->sndbuf.len;
    uint32_t room = 0;
    if (tcp_notsent_bytes(t) > 0) {
      /* the unsent part of the tail skb (a skb partly sent was split there) */
      uint32_t start = seq_gt(t->tail_seq, t->snd_max) && seq_leq(t->tail_seq, write_seq)
                           ? t->tail_seq : t->snd_max;   /* a stale tail_seq: from snd_max */
      uint32_t tail = seq_lt(start, write_seq) ? write_seq - start : 0;
      room = goal > tail ? goal - tail : 0;
    }
    if (room == 0) {
      if (!tcp_stream_memory_free(e, t, 0)) break;   /* new_segment: wait_for_space */
      t->tail_seq = write_seq;
      room = goal;
    }
    uint32_t want = u32_min(room, len - done);
    uint32_t n = ring_write(e, &t->sndbuf, buf + done, want);
    done += n;
    if (n < want) break;                              /* the buffer is full */
    if (n == room) tcp_output(e, t);                  /* a full skb: tcp_push_one */
  }
  return done;
}

/* §3.10.2 SEND. ESTABLISHED, CLOSE-WAIT: the bytes that fit go into the send
 * buffer and out as the windows allow (EPIPE once our FIN is queued, i.e. after
 * shutdown(SHUT_WR)). SYN-SENT, SYN-RECEIVED: EAGAIN (the RFC queues; a
 * non-blocking socket waits for the connection, Linux's sk_stream_wait_connect).
 * CLOSED: the pending error once (ECONNRESET ...), then EPIPE, never-connected
 * sockets included (Linux). LISTEN and the closing states (our FIN is out):
 * EPIPE. A full buffer: EAGAIN (ENOMEM if it could not be allocated). */
static inline int send_prepare(struct tcp_engine *e, struct tcb *t, size_t len, bool more)
{
  (void)e;
  switch (t->state) {
  case USTCP_ESTABLISHED: case USTCP_CLOSE_WAIT:
    if (t->fin_queued) return -EPIPE;
    break;
  case USTCP_SYN_SENT: case USTCP_SYN_RCVD:
    return -EAGAIN;
  case USTCP_CLOSED:
    if (t->so_error) {              /* ECONNRESET once, then EPIPE (POSIX/Linux) */
      int err = t->so_error;
      t->so_error = 0;
      return err;
    }
    /* Linux (sk_stream_wait_connect): EPIPE on a socket that is not
     * connecting, never-connected ones included; not ENOTCONN. */
    return -EPIPE;
  case USTCP_LISTEN:
    return -EPIPE;
  default:
    return -EPIPE;                  /* our FIN is out: FIN_WAIT_*, CLOSING, LAST_ACK, TIME_WAIT */
  }
  if (len == 0) return 0;
  /* Linux's tcp_sendmsg_locked and tcp_push: new data ends a TCP_NAGLE_PUSH
   * (skb_entail); with MSG_MORE this call's push is corked (TCP_NAGLE_CORK for
   * this push only: later ACKs send by the socket's own Nagle setting) and its
   * data is not marked PSH. */
  t->nagle_push = false;
  t->more = more;
  t->more_call = more;
  return TCP_USER_PROCEED;
}

static inline ssize_t send_finish(struct tcp_engine *e, struct tcb *t, uint32_t n, size_t len,
                                  bool offered, bool eor, bool more, bool *ran)
{
  if (n == 0) {
    t->more_call = false;
    if (offered) return 0;          /* a direct writer took none of the space */
    /* no room, or the notsent limit reached: EAGAIN; else the ring's memory */
    if (!ring_space(&t->sndbuf) || !tcp_stream_memory_free(e, t, 0)) return -EAGAIN;
    return -ENOMEM;
  }
  /* Linux's tcp_sendmsg ends with tcp_push: PSH on its last byte (not with
   * MSG_MORE: "if (!(flags & MSG_MORE) ...) tcp_mark_push"); MSG_EOR only once
   * the whole buffer is queued (TCP_SKB_CB(skb)->eor when the message has no
   * data left). */
  if (!more || eor) tcp_push_mark(t, t->snd_buf_seq + t->sndbuf.len, eor && n == len);
  /* Linux's tcp_add_write_queue_tail: data queued where none waited starts
   * the busy chronograph (a running one is BUSY or above already) */
  tcp_chrono_start(e, t, TCP_CHRONO_BUSY);
  tcp_output(e, t);
  t->more_call = false;
  *ran = true;
  return (ssize_t)n;
}

ssize_t tcp_user_send(struct tcp_engine *e, struct tcb *t, const void *buf, size_t len,
                      bool eor, bool more, bool *ran)
{
  int rc = send_prepare(e, t, len, more);
  if (rc != TCP_USER_PROCEED) return rc;
  if (len > UINT32_MAX) len = UINT32_MAX;
  uint32_t n;
  if (tcp_notsent_lowat(e, t) != UINT32_MAX) {
    n = send_notsent_limited(e, t, buf, (uint32_t)len);
  } else {
    n = ring_write(e, &t->sndbuf, buf, (uint32_t)len);
  }
  if (e->stats) e->stats->tx_bytes_copied += n;   /* application -> send buffer */
  return send_finish(e, t, n, len, false, eor, more, ran);
}

static inline int receive_allowed(const struct tcb *t)
{
  if (t->state == USTCP_LISTEN) return -ENOTCONN;
  if (t->state == USTCP_CLOSED && !tcb_ever_connected(t)) return -ENOTCONN;
  return TCP_USER_PROCEED;
}

static inline void consumed(struct tcp_engine *e, struct tcb *t, uint32_t n, bool *ran)
{
  ring_drop(&t->rcvbuf, n);
  /* All read and nothing out of order: the storage goes (issue 12). */
  ring_release_empty(e, &t->rcvbuf);
  if (tcb_has_conn_state(t->state)) tcp_rcv_space_adjust(e, t);
  /* Linux's tcp_cleanup_rbuf: an ACK is pending (delayed) and the read
   * emptied the buffer after a segment smaller than the peer's usual size (a
   * push: the sender is likely waiting for this ACK, e.g. its Nagle holds the
   * next small segment or its window is full), outside interactive mode or
   * after two such segments: it goes now. So does one that is owed for more
   * than a segment. */
  if (tcb_has_conn_state(t->state) && t->delack_at_us && !t->ack_now &&
      (t->rcv_nxt - t->rcv_wup > t->rcv_seg_est ||
       (n > 0 && ((t->ack_pushed & 2u) || ((t->ack_pushed & 1u) && !t->pingpong)) &&
        t->rcvbuf.len == 0 && t->ooo_count == 0))) {
    t->ack_now = true;
    tcp_output(e, t);
    *ran = true;
    return;
  }
  if (tcb_has_conn_state(t->state) && !t->rcv_fin) {
    /* Window update when reading opened the window by a useful amount
     * (RFC 9293 §3.8.6.2.2: at least min(buffer/2, MSS)). */
    /* Only what the window field can carry counts (65535 << rcv_wscale). */
    uint32_t space = u32_min(ring_space(&t->rcvbuf), 65535u << t->rcv_wscale);
    uint32_t new_edge = t->rcv_nxt + space;
    /* A standalone update only helps a sender that the window may be holding
     * back: when what is left of the advertised window is small. Otherwise
     * the next ACK carries the larger window for free (e.g. after a SYN-ACK's
     * unscaled 65535 the first read would always have sent one). */
    uint32_t left = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
    bool sender_may_wait = left < t->rcvbuf.cap / 4 || left < 2u * t->rcv_mss;
    if (sender_may_wait && seq_geq(new_edge, t->rcv_adv) &&
        new_edge - t->rcv_adv >= u32_min(t->rcvbuf.cap / 2, 2u * t->rcv_mss) &&
        t->state != USTCP_SYN_SENT && t->state != USTCP_SYN_RCVD) {
      t->ack_now = true;
      tcp_output(e, t);
      *ran = true;
    }
  }
}

static inline ssize_t receive_empty(struct tcb *t)
{
  if (t->so_error) {
    int err = t->so_error;
    t->so_error = 0;
    return err;
  }
  if (t->rcv_fin || t->shut_rd || t->state == USTCP_CLOSED) return 0;
  return -EAGAIN;
}

/* §3.10.3 RECEIVE. LISTEN, and CLOSED without a connection ever: ENOTCONN. With
 * bytes buffered (and reading not shut down): up to len of them (peek leaves
 * them), and, when reading opened the window by a useful amount, a window
 * update. Nothing buffered: the pending error once (ECONNRESET ...), 0 at the
 * end of the stream (the peer's FIN, shutdown(SHUT_RD), or the connection
 * gone: the RFC's "connection closing"), else EAGAIN (the RFC queues the call). */
ssize_t tcp_user_receive(struct tcp_engine *e, struct tcb *t, void *buf, size_t len, bool peek,
                         bool *ran)
{
  int rc = receive_allowed(t);
  if (rc != TCP_USER_PROCEED) return rc;
  if (len == 0) return 0;
  /* Queued data is read even after shutdown(SHUT_RD), and data arriving after it
   * is still queued: Linux's tcp_recvmsg checks RCV_SHUTDOWN only when nothing
   * is queued. */
  if (t->rcvbuf.len > 0) {
    uint32_t want = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
    uint32_t n = ring_read(&t->rcvbuf, buf, want, false);
    if (e->stats) e->stats->rx_bytes_copied += n;   /* receive buffer -> application */
    if (!peek) consumed(e, t, n, ran);
    return (ssize_t)n;
  }
  return receive_empty(t);
}

/* The same steps for src/sock's direct calls (the copying calls above get
 * them inlined). */
int tcp_user_send_prepare(struct tcp_engine *e, struct tcb *t, size_t len, bool more)
{
  return send_prepare(e, t, len, more);
}

ssize_t tcp_user_send_finish(struct tcp_engine *e, struct tcb *t, uint32_t n, size_t len,
                             bool offered, bool eor, bool more, bool *ran)
{
  return send_finish(e, t, n, len, offered, eor, more, ran);
}

int tcp_user_receive_allowed(const struct tcb *t) { return receive_allowed(t); }

void tcp_user_consumed(struct tcp_engine *e, struct tcb *t, uint32_t n, bool *ran)
{
  consumed(e, t, n, ran);
}

ssize_t tcp_user_receive_empty(struct tcb *t) { return receive_empty(t); }

/* §3.10.4 CLOSE as shutdown(): rd stops reading (buffered and later data is no
 * longer returned), wr is the RFC's CLOSE: the FIN follows the queued data,
 * ESTABLISHED -> FIN-WAIT-1, CLOSE-WAIT -> LAST-ACK; the connection stays open
 * for reading (W7 half-close). In the later states (FIN already out) only rd
 * has an effect. LISTEN (Linux's inet_shutdown): rd stops listening (queued
 * children are reset) and the socket may listen again; wr alone does nothing.
 * SYN-SENT: the attempt is aborted and reported as ECONNRESET (Linux's
 * tcp_disconnect). CLOSED, SYN-RECEIVED: ENOTCONN. */
int tcp_user_shutdown(struct tcp_engine *e, struct tcb *t, bool rd, bool wr, bool *ran)
{
  switch (t->state) {
  case USTCP_ESTABLISHED: case USTCP_CLOSE_WAIT: case USTCP_FIN_WAIT_1:
  case USTCP_FIN_WAIT_2: case USTCP_CLOSING: case USTCP_LAST_ACK: case USTCP_TIME_WAIT:
    break;
  case USTCP_LISTEN:
    if (rd) {
      tcb_close(e, t, 0, USTCP_CAUSE_CALL);
      *ran = true;
    }
    return 0;
  case USTCP_SYN_SENT:
    tcb_close(e, t, -ECONNRESET, USTCP_CAUSE_CALL);
    *ran = true;
    return 0;
  default:
    return -ENOTCONN;
  }
  if (rd) t->shut_rd = true;
  if (wr && !t->fin_queued &&
      (t->state == USTCP_ESTABLISHED || t->state == USTCP_CLOSE_WAIT)) {
    start_fin(e, t);
    *ran = true;
  }
  return 0;
}

/* §3.10.4 CLOSE as close(): the application gives the connection up (its
 * descriptor is already gone); what is left finishes as an orphan.
 *   CLOSED: the block is freed.
 *   LISTEN, SYN-SENT: closed at once (a listener's queued children are reset).
 *   SYN-RECEIVED: RST, closed (Linux).
 *   ESTABLISHED, CLOSE-WAIT: FIN after the queued data -> FIN-WAIT-1 / LAST-ACK;
 *     unread data or abortive (SO_LINGER 0): RST and closed instead (RFC 9293
 *     §3.10.4, RFC 2525 §2.17: the peer learns its data was not consumed).
 *   FIN-WAIT-2: waits at most fin_timeout now (W7); abortive: RST, closed.
 *   FIN-WAIT-1, CLOSING, LAST-ACK: the close goes on; abortive: RST, closed.
 *   TIME-WAIT: goes on. */
void tcp_user_close(struct tcp_engine *e, struct tcb *t, bool abortive)
{
  t->orphan = true;
  switch (t->state) {
  case USTCP_CLOSED:
    tcb_free(e, t);
    break;
  case USTCP_LISTEN:
  case USTCP_SYN_SENT:
    tcb_close(e, t, 0, USTCP_CAUSE_CALL);
    break;
  case USTCP_SYN_RCVD:
    tcp_send_rst(e, t);
    tcb_close(e, t, 0, USTCP_CAUSE_CALL);
    break;
  case USTCP_ESTABLISHED: case USTCP_CLOSE_WAIT:
    if (abortive || t->rcvbuf.len > 0) {
      tcp_send_rst(e, t);
      tcb_close(e, t, 0, USTCP_CAUSE_CALL);
      break;
    }
    start_fin(e, t);
    tcb_orphaned(e, t);   /* max_orphans */
    break;
  case USTCP_FIN_WAIT_2:
    if (abortive) {
      tcp_send_rst(e, t);
      tcb_close(e, t, 0, USTCP_CAUSE_CALL);
      break;
    }
    /* W7: after shutdown(SHUT_WR) the socket waited without limit; as an orphan
     * it waits at most fin_timeout. */
    t->close_at_us = e->now_us + e->cfg->fin_timeout_us;
    timer_update(e, t);
    tcb_orphaned(e, t);
    break;
  case USTCP_FIN_WAIT_1: case USTCP_CLOSING: case USTCP_LAST_ACK:
    if (abortive) {
      tcp_send_rst(e, t);
      tcb_close(e, t, 0, USTCP_CAUSE_CALL);
    } else {
      tcb_orphaned(e, t);
    }
    break;
  case USTCP_TIME_WAIT:
    break;
  }
}

/* §3.10.5 ABORT: everything queued is discarded and the connection deleted at
 * once. A RST goes to the peer from SYN-RECEIVED, ESTABLISHED, FIN-WAIT-1,
 * FIN-WAIT-2 and CLOSE-WAIT (the states of Linux's tcp_need_reset); CLOSING,
 * LAST-ACK and TIME-WAIT are deleted silently (the peer has closed its side),
 * LISTEN resets its queued children, SYN-SENT just stops. Frees the block if it
 * has no descriptor. */
void tcp_user_abort(struct tcp_engine *e, struct tcb *t, enum ustcp_cause cause)
{
  switch (t->state) {
  case USTCP_CLOSED:
    if (t->fd < 0) tcb_free(e, t);
    return;
  case USTCP_SYN_RCVD: case USTCP_ESTABLISHED: case USTCP_FIN_WAIT_1:
  case USTCP_FIN_WAIT_2: case USTCP_CLOSE_WAIT:
    tcp_send_rst(e, t);
    break;
  default:
    break;
  }
  tcb_close(e, t, 0, cause);
}

/* §3.10.6 STATUS: the connection's state and figures (A4, like TCP_INFO). */
void tcp_user_status(const struct tcb *t, struct ustcp_tcp_info *out)
{
  tcb_fill_info(t, out);
}
