/* Output: decides what a connection sends now and builds the segments.
 *
 *   tcp_output        SYN / SYN-ACK while synchronizing (also their retransmission,
 *                     since a timeout rewinds snd_nxt to iss); otherwise data from
 *                     snd_nxt within min(snd_wnd, cwnd) (D3), cut to snd_mss, held
 *                     back by Nagle (RFC 9293 §3.7.4) and sender SWS avoidance
 *                     (§3.8.6.2.1); the FIN after the last byte; a pending ACK if
 *                     nothing else carried one (D2: every segment but the first SYN
 *                     carries ACK); the persist timer when the window is zero.
 *   tcp_send_rst_for  RST for a segment with no connection (§3.10.7.1)
 *   tcp_window_field  the receive window to advertise, with receiver-side SWS
 *                     avoidance (§3.8.6.2.2) and never shrinking the right edge
 */
#include <string.h>
#include "tcp/tcp.h"

uint16_t tcp_window_field(struct tcp_engine *e, struct tcb *t)
{
  uint32_t space = ring_space(&t->rcvbuf);
  if (t->state == USTCP_SYN_SENT || t->state == USTCP_SYN_RCVD || t->state == USTCP_CLOSED) {
    /* RFC 7323 §2.2: the window in a SYN is never scaled. */
    uint32_t w = space > 65535 ? 65535 : space;
    t->rcv_wnd = w;
    t->rcv_adv = t->rcv_nxt + w;
    return (uint16_t)w;
  }
  uint32_t new_edge = t->rcv_nxt + space;
  /* The edge as the peer can have seen it: whole scale units from rcv_nxt
   * (rcv_adv itself may lie up to a unit beyond, see below). */
  uint32_t adv_edge = t->rcv_adv;
  if (seq_gt(adv_edge, t->rcv_nxt))
    adv_edge = t->rcv_nxt + (((adv_edge - t->rcv_nxt) >> t->rcv_wscale) << t->rcv_wscale);
  /* Receiver SWS avoidance: move the right edge only by at least
   * min(buffer/2, MSS), unless the window is closed or closing to zero. */
  uint32_t min_step = u32_min(t->rcvbuf.cap / 2, t->rcv_mss);
  /* An empty buffer is offered whole: holding back the last part of it gains
   * nothing against silly windows and costs a segment per round trip. */
  if (seq_gt(new_edge, adv_edge) && new_edge - adv_edge < min_step && seq_gt(adv_edge, t->rcv_nxt) &&
      t->rcvbuf.len != 0)
    new_edge = adv_edge;
  if (seq_lt(new_edge, adv_edge)) new_edge = adv_edge;   /* never shrink (§3.8.6.2.2) */
  uint32_t wnd = new_edge - t->rcv_nxt;
  uint32_t field = wnd >> t->rcv_wscale;
  if (field > 65535) field = 65535;
  /* Rounding down to the scale unit would pull the edge last advertised
   * (rcv_adv) back by less than a unit whenever rcv_nxt moved by other than
   * whole units: the window field is rounded up instead, as Linux's
   * tcp_select_window (ALIGN(cur_win, 1 << rcv_wscale)), so the edge the peer
   * sees never moves left (RFC 9293 §3.8.6.2.2). That may offer a little more
   * than the free space; the ring takes it (tcp_rcv_overcommit). Should even
   * that be used up (a peer of tiny segments and an application that does not
   * read), the edge retracts by less than a unit (RFC 7323 §2.3) and rcv_adv,
   * the edge up to which data is accepted, stays: nothing the peer was allowed
   * to send is cut off. rcv_adv is backed: the room's end never decreases. */
  if (seq_gt(t->rcv_adv, t->rcv_nxt + (field << t->rcv_wscale))) {
    uint32_t unit = 1u << t->rcv_wscale;
    uint32_t up = (t->rcv_adv - t->rcv_nxt + unit - 1) >> t->rcv_wscale;
    if (up <= 65535 && seq_leq(t->rcv_nxt + (up << t->rcv_wscale), tcp_rcv_room_end(t)))
      field = up;
  }
  t->rcv_wnd = field << t->rcv_wscale;
  uint32_t edge = t->rcv_nxt + t->rcv_wnd;
  if (seq_gt(edge, t->rcv_adv) || seq_lt(t->rcv_adv, t->rcv_nxt)) t->rcv_adv = edge;
  return (uint16_t)field;
}

/* Fills the fields every segment of t shares and hands it to the stack. With
 * gso_size non-zero the payload is a frame of several segments for the link
 * to cut (tcp_output); it counts as that many segments. */
static void emit_frame(struct tcp_engine *e, struct tcb *t, uint32_t seq, uint8_t flags,
                       const struct tcp_iov *pl, size_t npl, uint32_t gso_size)
{
  uint32_t plen = 0;
  for (size_t i = 0; i < npl; i++) plen += pl[i].len;
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = t->local.port;
  h.dst_port = t->remote.port;
  h.seq = seq;
  uint8_t tos = tcp_ecn_out(t, seq, plen, &flags);   /* RFC 3168: ECT(0), ECE, CWR */
  h.flags = flags;
  if (flags & TCP_ACK) h.ack = t->rcv_nxt;
  if (flags & TCP_SYN) {
    h.opts.present |= TCP_OPT_HAS_MSS;
    h.opts.mss = t->rcv_mss;
    /* RFC 7323 §2.2: offer scaling on a SYN; in a SYN-ACK only if the peer did. */
    if (e->cfg->window_scaling && (!(flags & TCP_ACK) || t->wscale_ok)) {
      h.opts.present |= TCP_OPT_HAS_WSCALE;
      h.opts.wscale = t->rcv_wscale;
    }
    /* RFC 2018 §2: SACK-permitted on a SYN; on a SYN-ACK only if offered. */
    if (e->cfg->sack && (!(flags & TCP_ACK) || t->sack_ok)) h.opts.present |= TCP_OPT_HAS_SACK_PERM;
    /* RFC 7323 §3.2: TS on a SYN when enabled; on a SYN-ACK only if the SYN
     * had it (Linux's tcp_syn_options / tcp_synack_options). A SYN echoes
     * nothing (TSecr 0); the SYN-ACK echoes the SYN's TSval. */
    if ((!(flags & TCP_ACK) && e->cfg->timestamps) || ((flags & TCP_ACK) && t->ts_ok)) {
      h.opts.present |= TCP_OPT_HAS_TS;
      h.opts.ts_val = tcp_ts_now(e, t);
      h.opts.ts_ecr = (flags & TCP_ACK) ? t->ts_recent : 0;
    }
  } else {
    /* RFC 7323 §3.2: once negotiated, TS on every segment, RST included (as
     * Linux's tcp_established_options for tcp_send_active_reset). TSecr is
     * TS.Recent (§4.3). */
    if (t->ts_ok) {
      h.opts.present |= TCP_OPT_HAS_TS;
      h.opts.ts_val = tcp_ts_now(e, t);
      h.opts.ts_ecr = t->ts_recent;
      /* remembered for RTTM (tcp_input.c ts_rtt_us): data sent again */
      if (plen && seq_lt(seq, t->snd_max)) t->rtt.rexmit_tsval = h.opts.ts_val ? h.opts.ts_val : 1;
    }
    if ((flags & TCP_ACK) && t->sack_ok && (t->ooo_count || t->dsack_len)) {
      sack_fill_blocks(e, t, &h.opts);
      if (t->dsack_len) {   /* a D-SACK is reported once (RFC 2883 §4) */
        t->dsack_len = 0;
        if (e->stats) e->stats->tcp_dsacks_out++;
      }
    }
  }
  if (!(flags & TCP_RST)) h.window = tcp_window_field(e, t);
  e->ops.output(e, t, t->local.v6, t->local.ip, t->remote.ip, tos, &h, pl, npl, gso_size);
  /* RFC 8985 §6: when each byte was sent (tcp_rack.c); a GSO frame's
   * segments all leave now */
  if (!(flags & (TCP_SYN | TCP_RST)) && (plen || (flags & TCP_FIN)))
    rack_on_send(e, t, seq, seq + plen + !!(flags & TCP_FIN),
                 (h.opts.present & TCP_OPT_HAS_TS) ? h.opts.ts_val : 0);
  uint32_t nsegs = gso_size && plen > gso_size ? (plen + gso_size - 1) / gso_size : 1;
  t->info.segs_out += nsegs;
  if (plen) {
    t->info.data_segs_out += nsegs;
    t->info.bytes_sent += plen;
  }
  if (flags & TCP_ACK) {
    /* Linux's tcp_dec_quickack_mode: an ACK that answers received data uses up
     * one quick ACK. */
    if (t->quick && (t->ack_now || t->delack_at_us) && t->rcv_nxt != t->rcv_wup) t->quick--;
    t->rcv_wup = t->rcv_nxt;
    t->ack_now = false;
    t->ack_pushed = 0;   /* tcp_event_ack_sent clears icsk_ack.pending */
    if (t->delack_at_us) {
      t->delack_at_us = 0;
      timer_update(e, t);
    }
  }
}

static void emit(struct tcp_engine *e, struct tcb *t, uint32_t seq, uint8_t flags,
                 const struct tcp_iov *pl, size_t npl)
{
  emit_frame(e, t, seq, flags, pl, npl, 0);
}

/* The payload [off, off+len) of the send buffer as pieces of the ring itself:
 * one, or two when the run wraps around the end (no copy here: the stack's flat
 * output copies them once, into the packet; its gather output hands them to
 * the application as they are). Returns the number of pieces. */
static size_t snd_payload(const struct tcb *t, uint32_t off, uint32_t len, struct tcp_iov iov[2])
{
  return ring_pieces(&t->sndbuf, off, len, iov);
}

void tcp_send_syn(struct tcp_engine *e, struct tcb *t)
{
  uint8_t flags = t->state == USTCP_SYN_SENT ? TCP_SYN : TCP_SYN | TCP_ACK;
  emit(e, t, t->iss, flags, NULL, 0);
  if (t->snd_nxt == t->iss) t->snd_nxt = t->iss + 1;
  if (seq_gt(t->snd_nxt, t->snd_max)) t->snd_max = t->snd_nxt;
  if (t->backoff == 0 && !t->rtt.timing) {
    t->rtt.timing = true;
    t->rtt.karn = false;
    t->rtt.seq = t->iss + 1;
    t->rtt.sent_us = e->now_us;
  }
  if (!t->rto_at_us) tcp_arm_rto(e, t);
}

/* A segment without data carries seq = snd_max, the highest sequence number sent
 * (Linux's snd_nxt, tcp_acceptable_seq). Not snd_nxt: an RTO rewinds snd_nxt to
 * snd_una for go-back-N, and an ACK from below the peer's rcv_nxt fails its
 * acceptability test (RFC 9293 §3.10.7.4), so its ACK field is never read; with
 * both sides retransmitting they answered each other's ACKs forever. */
void tcp_send_ack(struct tcp_engine *e, struct tcb *t)
{
  emit(e, t, t->snd_max, TCP_ACK, NULL, 0);
}

void tcp_send_rst(struct tcp_engine *e, struct tcb *t)
{
  emit(e, t, t->snd_max, TCP_RST | TCP_ACK, NULL, 0);
  if (e->stats) e->stats->tcp_rst_out++;
}

/* Linux's tcp_oow_rate_limited / __tcp_oow_rate_limited: at most one ACK per
 * invalid_ratelimit_us (500 ms, net.ipv4.tcp_invalid_ratelimit) to segments
 * that fail the sequence, ACK, RST or SYN tests, per connection. This is what
 * breaks an ACK loop between two stacks that each find the other's segments
 * unacceptable (or a stack and its own reflection), and what bounds the
 * challenge ACKs a flood of forged segments can draw from one connection.
 * Segments that occupy sequence space (data or FIN) without SYN are exempt, as
 * in Linux: they cannot loop (an ACK occupies none), and the peer whose ACK
 * was lost needs the duplicate ACK for its retransmission at once (W6). */
bool tcp_oow_rate_limited(struct tcp_engine *e, struct tcb *t, const struct tcp_packet *p)
{
  if (p && (p->payload_len > 0 || (p->tcp.flags & TCP_FIN)) && !(p->tcp.flags & TCP_SYN))
    return false;
  if (t->oow_ack_sent && e->now_us - t->oow_ack_us < e->cfg->invalid_ratelimit_us) {
    if (e->stats) e->stats->oow_acks_limited++;
    return true;
  }
  t->oow_ack_sent = true;
  t->oow_ack_us = e->now_us;
  return false;
}

/* RFC 5961 §7: challenge ACKs (to an in-window RST that is not exact, a SYN in
 * a synchronized state, an ACK too old or of data never sent), limited first
 * per connection (tcp_oow_rate_limited, as Linux's tcp_send_challenge_ack).
 *
 * The stack-wide budget is Linux 6.x's default: none (challenge_ack_limit =
 * UINT32_MAX, Linux's INT_MAX since 6.0). A budget shared by all connections
 * is a side channel (CVE-2016-5696): an off-path attacker counting the
 * challenge ACKs on its own connection learns whether its spoofed segment made
 * another connection spend one. Randomising the budget per second (Linux
 * 4.7-5.x) only adds noise the attacker averages away over repeated trials
 * (Cao et al., 2020, the reason Linux dropped the global limit); the
 * per-connection limit alone bounds the output (2 a second per connection,
 * and connections are bounded by max_sockets). A finite challenge_ack_limit
 * still gets Linux 4.7's randomised budget: uniform in [limit/2, limit*3/2)
 * per one-second slot, keyed by the stack's secret so the attacker cannot
 * predict it. */
void tcp_send_challenge_ack(struct tcp_engine *e, struct tcb *t)
{
  if (tcp_oow_rate_limited(e, t, NULL)) {
    if (e->stats) e->stats->challenge_acks_limited++;
    return;
  }
  uint32_t limit = e->cfg->challenge_ack_limit;
  if (limit != UINT32_MAX) {
    uint64_t slot = e->now_us / USTCP_SEC;
    if (!e->challenge_slot_set || slot != e->challenge_slot) {
      uint64_t r = siphash24(e->secret, &slot, sizeof slot);
      e->challenge_slot = slot;
      e->challenge_slot_set = true;
      e->challenge_left = limit ? (limit + 1) / 2 + (uint32_t)(r % limit) : 0;
    }
    if (e->challenge_left == 0) {
      if (e->stats) e->stats->challenge_acks_limited++;
      return;
    }
    e->challenge_left--;
  }
  if (e->stats) e->stats->challenge_acks++;
  tcp_send_ack(e, t);
}

/* RFC 9293 §3.10.7.1: a segment for no connection. */
void tcp_send_rst_for(struct tcp_engine *e, const struct tcp_packet *p)
{
  const struct tcp_hdr *in = &p->tcp;
  if (in->flags & TCP_RST) return;
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = in->dst_port;
  h.dst_port = in->src_port;
  if (in->flags & TCP_ACK) {
    h.seq = in->ack;
    h.flags = TCP_RST;
  } else {
    uint32_t seg_len = (uint32_t)p->payload_len + !!(in->flags & TCP_SYN) + !!(in->flags & TCP_FIN);
    h.seq = 0;
    h.ack = in->seq + seg_len;
    h.flags = TCP_RST | TCP_ACK;
  }
  e->ops.output(e, NULL, p->v6, p->ip.dst, p->ip.src, 0, &h, NULL, 0, 0);
  if (e->stats) e->stats->tcp_rst_out++;
}

/* Linux's tcp_incr_quickack: up to 16 ACKs sent at once, fewer when half the
 * window holds fewer segments of the peer's size. */
static void incr_quickack(struct tcb *t)
{
  uint32_t q = t->rcv_wnd / (2u * t->rcv_seg_est);
  if (q == 0) q = 2;
  if (q > 16) q = 16;                   /* TCP_MAX_QUICKACKS */
  if (q > t->quick) t->quick = (uint8_t)q;
}

/* Linux's tcp_enter_quickack_mode: the next ACKs (at most max) go at once and
 * interactive mode ends. */
void tcp_enter_quickack_mode(struct tcb *t, uint32_t max)
{
  uint32_t q = t->rcv_seg_est ? t->rcv_wnd / (2u * t->rcv_seg_est) : 0;
  if (q == 0) q = 2;
  if (q > max) q = max;
  if (q > t->quick) t->quick = (uint8_t)q;
  t->pingpong = false;
}

/* Linux's tcp_measure_rcv_mss: the peer's segment size as seen, so that a peer
 * sending segments smaller than our MSS still gets an ACK every second one. It
 * starts at min(our MSS, its MSS, 536) (tcp_initialize_rcv_mss), grows to any
 * larger segment, and takes a smaller size seen twice in a row unless the
 * segment was a remnant (PSH/FIN/URG) shorter than 536 bytes. */
static void measure_rcv_seg(struct tcb *t, uint32_t plen, uint8_t flags)
{
  uint32_t lss = t->last_seg_size;
  t->last_seg_size = 0;
  if (plen >= t->rcv_seg_est) {
    t->rcv_seg_est = u32_min(plen, t->rcv_mss);
  } else {
    if (plen >= 536 || (plen >= 88 && !(flags & (TCP_PSH | TCP_FIN | TCP_URG | TCP_SYN)))) {
      t->last_seg_size = plen;
      if (plen == lss) {
        t->rcv_seg_est = plen;
        return;
      }
    }
    /* a smaller segment: the sender pushed (ICSK_ACK_PUSHED, twice PUSHED2) */
    if (t->ack_pushed & 1u) t->ack_pushed |= 2u;
    t->ack_pushed |= 1u;
  }
}

/* Schedules the ACK for arriving in-order data, as Linux's tcp_event_data_recv
 * and __tcp_ack_snd_check: at once in quick-ACK mode (the first data of a
 * connection, and data after a silence longer than the RTO), when more than one
 * of the peer's segments is unacknowledged (RFC 5681 §4.2, RFC 1122 4.2.3.2),
 * otherwise after the delayed-ACK timeout. */
void tcp_schedule_ack(struct tcp_engine *e, struct tcb *t, uint32_t plen, uint8_t flags)
{
  if (t->rcv_seg_est == 0) {
    uint32_t init = u32_min(u32_min(t->rcv_mss, t->snd_mss ? t->snd_mss : t->rcv_mss), 536);
    t->rcv_seg_est = init < 88 ? 88 : init;
  }
  measure_rcv_seg(t, plen, flags);
  if (!t->data_seen) {
    t->data_seen = true;
    incr_quickack(t);
  } else if (e->now_us - t->lrcv_us > t->rtt.rto_us) {
    incr_quickack(t);                   /* idle longer than an RTO: the sender restarts */
  }
  t->lrcv_us = e->now_us;
  /* A sender with less than two segments of our window left is about to stop
   * and wait for this ACK: delaying it would stall the flow for the whole
   * delayed-ACK timeout (RFC 1122 4.2.3.2 allows delaying, never requires it). */
  uint32_t left = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
  bool window_nearly_used = left < 2u * t->rcv_mss;
  bool quick_mode = t->quick > 0 && !t->pingpong;
  if (t->quickack || quick_mode || t->rcv_nxt - t->rcv_wup > t->rcv_seg_est ||
      window_nearly_used || e->cfg->delack_min_us == 0) {
    t->ack_now = true;
    return;
  }
  if (!t->delack_at_us) {
    t->delack_at_us = e->now_us + e->cfg->delack_min_us;
    timer_update(e, t);
  }
}

/* Linux's tcp_current_mss: the payload a data segment may carry now. The MSS
 * counts data only (RFC 9293 §3.7.1, RFC 6691 §2), so the options a segment
 * carries come out of its payload, or it would exceed the path MTU the MSS was
 * derived from. snd_mss already leaves out the 12 bytes of a negotiated
 * timestamp, which every segment carries (tcp_take_syn_ts; Linux's mss_cache
 * excludes them too); what varies are the SACK blocks, while out-of-order data
 * is queued: up to 36 bytes (28 beside a timestamp). */
uint32_t tcp_current_mss(struct tcp_engine *e, struct tcb *t)
{
  uint32_t mss = t->snd_mss;
  if (t->sack_ok && (t->ooo_count || t->dsack_len)) {
    struct tcp_opts o;
    memset(&o, 0, sizeof o);
    sack_fill_blocks(e, t, &o);
    uint32_t optlen = (uint32_t)tcp_opts_len(&o);
    /* never below 8 bytes of payload: a segment must still make progress */
    mss = mss > optlen + 8 ? mss - optlen : 8;
  }
  return mss;
}

/* ---- push marks (struct tcb.pm) ---- */
static void pm_drop_front(struct tcb *t, unsigned k)
{
  memmove(t->pm.seq, t->pm.seq + k, (size_t)(t->pm.n - k) * sizeof t->pm.seq[0]);
  t->pm.eor = (uint16_t)(t->pm.eor >> k);
  t->pm.frame = (uint16_t)(t->pm.frame >> k);
  t->pm.n = (uint8_t)(t->pm.n - k);
}

/* Marks at or below snd_una concern no byte that can still be sent. */
static void pm_prune(struct tcb *t)
{
  unsigned k = 0;
  while (k < t->pm.n && seq_leq(t->pm.seq[k], t->snd_una)) k++;
  if (k) pm_drop_front(t, k);
}

void tcp_push_mark(struct tcb *t, uint32_t end, bool eor)
{
  pm_prune(t);
  if (t->pm.n) {
    unsigned last = t->pm.n - 1u;
    bool last_eor = (t->pm.eor >> last) & 1u;
    /* Linux's tcp_sendmsg appends to the tail skb while none of it was sent
     * and it does not end a record (tcp_skb_can_collapse_to), clearing the PSH
     * the previous call's tcp_push gave it ("if (!copied) ... &= ~TCPHDR_PSH"):
     * the mark moves to the new end. Once that skb went out, or after MSG_EOR,
     * the new data is a new skb and the old mark stays. */
    if (!last_eor && seq_gt(t->pm.seq[last], t->snd_max)) {
      t->pm.seq[last] = end;
      if (eor) t->pm.eor = (uint16_t)(t->pm.eor | (1u << last));
      return;
    }
    if (t->pm.seq[last] == end) return;
  }
  /* Bounded: at most TCP_PUSH_MARKS send boundaries are remembered; the oldest,
   * in flight already, only matters to a retransmission and goes first. */
  if (t->pm.n == TCP_PUSH_MARKS) pm_drop_front(t, 1);
  unsigned i = t->pm.n++;
  t->pm.seq[i] = end;
  if (eor) t->pm.eor = (uint16_t)(t->pm.eor | (1u << i));
  else t->pm.eor = (uint16_t)(t->pm.eor & ~(1u << i));
  t->pm.frame = (uint16_t)(t->pm.frame & ~(1u << i));
}

/* A multi-segment frame of new data went out (with PSH, below): where it ends
 * is where Linux's skb for it ends (tso_fragment cut it there), and Linux's
 * __tcp_transmit_skb puts PSH on every transmission of a skb of more than one
 * segment (tcp_skb_pcount(skb) > 1), retransmissions included, without
 * storing it in the skb. Kept in order among the send calls' marks; when
 * full, the oldest mark goes, as in tcp_push_mark. */
static void pm_frame_push(struct tcb *t, uint32_t end)
{
  pm_prune(t);
  unsigned i = 0;
  while (i < t->pm.n && seq_lt(t->pm.seq[i], end)) i++;
  if (i < t->pm.n && t->pm.seq[i] == end) return;
  if (t->pm.n == TCP_PUSH_MARKS) {
    if (i == 0) return;   /* older than every mark kept */
    pm_drop_front(t, 1);
    i--;
  }
  memmove(t->pm.seq + i + 1, t->pm.seq + i, (size_t)(t->pm.n - i) * sizeof t->pm.seq[0]);
  uint32_t below = (1u << i) - 1u;
  t->pm.eor = (uint16_t)((t->pm.eor & below) | ((t->pm.eor >> i) << (i + 1)));
  t->pm.frame = (uint16_t)((t->pm.frame & below) | ((t->pm.frame >> i) << (i + 1)) | (1u << i));
  t->pm.seq[i] = end;
  t->pm.n++;
}

/* PSH for the bytes [seq, end): a send call ended inside or at their end.
 * Linux's skb flags: tcp_mark_push on the skb a call ended in, kept by the
 * second part when tso_fragment/tcp_fragment split it, ORed together when
 * tcp_retrans_try_collapse merges skbs for a retransmission. */
static bool pm_push(const struct tcp_engine *e, const struct tcb *t, uint32_t seq, uint32_t end)
{
  for (unsigned i = 0; i < t->pm.n; i++) {
    uint32_t m = t->pm.seq[i];
    if (!seq_gt(m, seq)) continue;
    if (seq_gt(m, end)) return false;
    if (!((t->pm.frame >> i) & 1u)) return true;   /* a send call ended here */
    /* The end of a frame, resent: Linux's skb there begins at the mark before
     * it, at snd_una (tcp_trim_head), or past a SACKed block inside it
     * (tcp_sacktag_walk splits at SACK edges); it is sent with PSH when more
     * than one segment of it goes at once (tcp_retransmit_skb sends it whole
     * if cwnd allows, else cuts it: then no PSH). Whether the rest of it went
     * in this same event is on RACK's record (a SACK connection's only). */
    uint32_t b = i ? seq_max(t->pm.seq[i - 1], t->snd_una) : t->snd_una;
    for (unsigned k = 0; k < t->nsacked; k++)
      if (seq_gt(t->sacked[k].right, b) && seq_leq(t->sacked[k].right, m)) b = t->sacked[k].right;
    if (m - b > (uint32_t)(t->snd_mss ? t->snd_mss : 536) && seq_lt(b, seq) &&
        rack_resent_now(e, t, b, seq))
      return true;
  }
  return false;
}

/* Linux's skb holding seq, as the marks tell it (a send call's end or a
 * frame's): from the mark at or below seq, or snd_una, to the next mark, or
 * snd_max. */
static void pm_skb(const struct tcb *t, uint32_t seq, uint32_t *start, uint32_t *end)
{
  *start = t->snd_una;
  *end = t->snd_max;
  for (unsigned i = 0; i < t->pm.n; i++) {
    uint32_t m = t->pm.seq[i];
    if (seq_leq(m, seq)) {
      if (seq_gt(m, *start)) *start = m;
    } else {
      if (seq_lt(m, *end)) *end = m;
      break;
    }
  }
}

bool tcp_sack_whole_segs(const struct tcb *t, uint32_t *left, uint32_t *right)
{
  uint32_t mss = t->snd_mss ? t->snd_mss : 536;
  uint32_t l = *left, r = *right, s, e;
  pm_skb(t, l, &s, &e);
  if (seq_gt(l, s) && seq_lt(l, e)) {
    /* the block begins inside a skb: at its next whole segment, if any */
    uint32_t k = (l - s + mss - 1) / mss * mss;
    l = k < e - s ? s + k : e;
  }
  pm_skb(t, r - 1, &s, &e);
  if (seq_gt(r, s) && seq_lt(r, e)) r = s + (r - s) / mss * mss;   /* ends inside one */
  if (!seq_lt(l, r)) return false;
  *left = l;
  *right = r;
  return true;
}

/* Bytes from seq to the next record end (MSG_EOR), UINT32_MAX if none: no
 * segment crosses it, first transmission or retransmission (Linux's
 * tcp_skb_can_collapse, which keeps tcp_sendmsg, tcp_retrans_try_collapse and
 * tcp_mtu_probe from merging across an EOR skb). */
static uint32_t pm_eor_room(const struct tcb *t, uint32_t seq)
{
  for (unsigned i = 0; i < t->pm.n; i++)
    if (((t->pm.eor >> i) & 1u) && seq_gt(t->pm.seq[i], seq)) return t->pm.seq[i] - seq;
  return UINT32_MAX;
}

/* How many segments Linux puts in one TSO frame (tcp_tso_autosize with the
 * default sysctls): about 1 ms of the pacing rate (sk_pacing_shift 10), plus
 * GSO_LEGACY_MAX_SIZE >> (min_rtt >> tcp_tso_rtt_log 9) on short paths, at most
 * 64 KiB, at least tcp_min_tso_segs (config min_tso_segs, 2). The pacing rate (tcp_update_pacing_rate)
 * is cwnd per SRTT, 200 % in slow start (cwnd < ssthresh / 2), else 120 %;
 * without an RTT sample it is unbounded. */
static uint32_t tso_frame_segs(const struct tcp_engine *e, const struct tcb *t)
{
  uint32_t min_segs = e->cfg->min_tso_segs ? e->cfg->min_tso_segs : 2;
  uint64_t mss = t->snd_mss ? t->snd_mss : 1;
  uint64_t bytes = 65536;
  if (t->rtt.have_sample && t->rtt.srtt_us) {
    uint64_t ratio = t->cc.cwnd < t->cc.ssthresh / 2 ? 200 : 120;
    uint64_t rate = (uint64_t)t->cc.cwnd * 10000u * ratio / t->rtt.srtt_us;  /* bytes/s */
    bytes = rate >> 10;
    uint64_t r = t->rtt.min_rtt_us >> 9;
    if (r < 32) bytes += 65536u >> r;
    if (bytes > 65536) bytes = 65536;
  }
  uint64_t segs = bytes / mss;
  if (segs < min_segs) segs = min_segs;
  return segs > 65535 ? 65535 : (uint32_t)segs;
}

void tcp_retransmit_una(struct tcp_engine *e, struct tcb *t)
{
  tcp_retransmit_at(e, t, t->snd_una, UINT32_MAX);
}

void tcp_retransmit_at(struct tcp_engine *e, struct tcb *t, uint32_t seq, uint32_t max_len)
{
  uint32_t saved = t->snd_nxt;
  if (seq_lt(seq, t->snd_una)) seq = t->snd_una;
  t->snd_nxt = seq;
  uint32_t off = seq - t->snd_buf_seq;
  uint32_t avail = t->sndbuf.len > off ? t->sndbuf.len - off : 0;
  pm_prune(t);
  avail = u32_min(avail, pm_eor_room(t, seq));
  /* Only what was sent before (up to snd_max, FIN excluded) is retransmitted:
   * bytes beyond it were never sent, may lie beyond the peer's window (D3),
   * and would leave snd_nxt past snd_max. Likewise a FIN only if it was sent. */
  uint32_t data_max = t->fin_sent ? t->fin_seq : t->snd_max;
  uint32_t in_flight = seq_gt(data_max, seq) ? data_max - seq : 0;
  uint32_t len = u32_min(u32_min(u32_min(avail, tcp_current_mss(e, t)), in_flight), max_len);
  /* Linux's __tcp_retransmit_skb: after the peer shrank its window (RFC 1122
   * 4.2.2.16 lets a sender resend beyond it; Linux does not), a segment that
   * starts at or past the right edge stays unsent, except the one at
   * snd_una, which then serves as the zero-window probe; one that crosses
   * the edge is cut at it. */
  uint32_t wnd_end = t->snd_una + t->snd_wnd;
  if (seq_lt(seq, wnd_end)) len = u32_min(len, wnd_end - seq);
  else if (seq != t->snd_una) { t->snd_nxt = saved; return; }
  uint8_t flags = TCP_ACK;
  struct tcp_iov pl[2];
  size_t npl = snd_payload(t, off, len, pl);
  bool fin = t->fin_sent && seq + len == t->fin_seq;
  if (fin) flags |= TCP_FIN;
  if (len == 0 && !fin) { t->snd_nxt = saved; return; }
  /* tcp_retransmit_skb sends the skb with the flags it has: PSH where a send
   * call ended (and only there: tcp_fragment leaves it to the second part). */
  if (len && pm_push(e, t, seq, seq + len)) flags |= TCP_PSH;
  emit(e, t, seq, flags, pl, npl);
  if (t->rec.in_recovery || t->rec.in_cwr) t->rec.prr_out += len + fin;   /* RFC 6937 */
  t->info.retrans_segs++;
  if (e->stats) e->stats->retrans_segs++;
  t->rtt.timing = false;   /* Karn's rule */
  t->rtt.karn = true;
  t->snd_nxt = seq_max(saved, seq + len + fin);
  if (!t->rto_at_us) tcp_arm_rto(e, t);
}

/* Linux's tcp_cwnd_validate: remember, for the current window of data, whether
 * cwnd stopped the sending, or else the most that was in flight; a new window
 * starts when everything sent before it is acknowledged. */
static void cwnd_validate(struct tcb *t, bool cwnd_limited)
{
  uint32_t flight = t->snd_max - t->snd_una;
  if (seq_geq(t->snd_una, t->cc.usage_seq) || cwnd_limited ||
      (!t->cc.is_cwnd_limited && flight > t->cc.max_flight)) {
    t->cc.is_cwnd_limited = cwnd_limited;
    t->cc.max_flight = flight;
    t->cc.usage_seq = t->snd_max;
  }
}

bool tcp_is_cwnd_limited(const struct tcb *t)
{
  if (t->cc.is_cwnd_limited) return true;
  /* in slow start, let cwnd grow to twice what was in flight */
  return t->cc.cwnd < t->cc.ssthresh && t->cc.cwnd / 2 < t->cc.max_flight;
}

/* ---- Linux's TCP_INFO chronographs (tcp_chrono_set/start/stop) ---- */
static void chrono_set(const struct tcp_engine *e, struct tcb *t, uint8_t type)
{
  uint32_t now = (uint32_t)(e->now_us / USTCP_MSEC);
  uint32_t d = now - t->chrono_start_ms;
  if (t->chrono_type == TCP_CHRONO_BUSY) t->chrono_busy_ms += d;
  else if (t->chrono_type == TCP_CHRONO_RWND_LIMITED) t->chrono_rwnd_ms += d;
  t->chrono_start_ms = now;
  t->chrono_type = type;
}

void tcp_chrono_start(const struct tcp_engine *e, struct tcb *t, uint8_t type)
{
  if (type > t->chrono_type) chrono_set(e, t, type);
}

/* Nothing left unacknowledged or unsent: no chronograph runs; else the one
 * that stops gives way to BUSY. */
void tcp_chrono_stop(const struct tcp_engine *e, struct tcb *t, uint8_t type)
{
  bool queues_empty = t->snd_una == t->snd_buf_seq + t->sndbuf.len;
  if (queues_empty) {
    if (t->chrono_type != TCP_CHRONO_UNSPEC) chrono_set(e, t, TCP_CHRONO_UNSPEC);
  } else if (type == t->chrono_type) {
    chrono_set(e, t, TCP_CHRONO_BUSY);
  }
}

void tcp_chrono_stats(const struct tcp_engine *e, const struct tcb *t, uint64_t *busy_us,
                      uint64_t *rwnd_us)
{
  uint64_t busy = t->chrono_busy_ms, rwnd = t->chrono_rwnd_ms;
  uint32_t run = (uint32_t)(e->now_us / USTCP_MSEC) - t->chrono_start_ms;
  if (t->chrono_type == TCP_CHRONO_BUSY) busy += run;
  else if (t->chrono_type == TCP_CHRONO_RWND_LIMITED) rwnd += run;
  /* tcpi_busy_time is the sum of every chronograph (tcp_get_info_chrono_stats) */
  *busy_us = (busy + rwnd) * USTCP_MSEC;
  *rwnd_us = rwnd * USTCP_MSEC;
}

static bool can_send_data(enum ustcp_state s)
{
  return s == USTCP_ESTABLISHED || s == USTCP_CLOSE_WAIT || s == USTCP_FIN_WAIT_1 ||
         s == USTCP_CLOSING || s == USTCP_LAST_ACK;
}

/* Linux's tcp_minshall_check: a segment of new data shorter than the MSS was
 * sent and is not yet acknowledged (snd_sml, set by tcp_output as Linux's
 * tcp_minshall_update). Linux's snd_nxt is ustcp's snd_max. */
static bool minshall_small_unacked(const struct tcb *t)
{
  return seq_gt(t->snd_sml, t->snd_una) && seq_leq(t->snd_sml, t->snd_max);
}

/* What tcp_output sends at nxt with inflight bytes outstanding and avail bytes
 * buffered from nxt on (a retransmission: up to the next SACKed range), mss
 * being tcp_current_mss: false if nothing goes now; else the payload length
 * and whether the FIN rides on it. burst: a full segment of new data goes just
 * before this one in the same transmission (the same Linux skb, whose first
 * segment passed tcp_snd_wnd_test). */
static bool plan_segment(const struct tcb *t, uint32_t nxt, uint32_t avail, uint32_t inflight,
                         uint32_t cwnd_used, uint32_t mss, bool burst, uint32_t *len_out, bool *fin_out,
                         bool *corked, bool *rwnd_limited)
{
  uint32_t room = u32_min(avail, pm_eor_room(t, nxt));   /* up to a record's end */
  /* the peer's window counts from snd_una; cwnd against cwnd_used (pipe in
   * recovery, RFC 6675) */
  uint32_t usable = u32_min(t->snd_wnd > inflight ? t->snd_wnd - inflight : 0,
                            t->cc.cwnd + t->rec.lt_extra > cwnd_used
                                ? t->cc.cwnd + t->rec.lt_extra - cwnd_used : 0);
  uint32_t len = u32_min(u32_min(room, usable), mss);
  bool fin_pending = t->fin_queued && seq_leq(nxt, t->fin_seq);
  bool fin = fin_pending && nxt + len == t->fin_seq;
  /* Linux's tcp_snd_wnd_test: new data goes only if its next segment (a full
   * one, or all that is left) fits in the peer's window; a transmission is not
   * started with a piece cut to a smaller window. The probe timer sends what
   * fits (tcp_write_wakeup, here push_one) when nothing is in flight to bring a
   * window update. Checked after cwnd, as tcp_write_xmit does: this is when the
   * window limits. But once a transmission has started with full segments,
   * Linux's tcp_mss_split_point cuts it at the window's right edge and keeps
   * the last piece, shorter than the MSS, unless Nagle holds it
   * (tcp_nagle_check, below): the window is filled to the byte. */
  uint32_t want = u32_min(room, mss);
  uint32_t wnd_left = t->snd_wnd > inflight ? t->snd_wnd - inflight : 0;
  bool edge = false;   /* this piece ends at the window's right edge */
  if (want > wnd_left && !t->push_one && !seq_lt(nxt, t->snd_max)) {
    if (!burst || wnd_left == 0 || len != wnd_left) {
      if (rwnd_limited && t->cc.cwnd + t->rec.lt_extra > cwnd_used) *rwnd_limited = true;
      return false;
    }
    edge = true;
  }
  if (len == 0 && !fin) return false;
  if (!edge && len < mss && len < room && inflight > 0 && len < t->max_snd_wnd / 2)
    return false;   /* sender SWS avoidance: wait for the window to open further */
  /* Nagle: a partial segment waits while an earlier partial one is
   * unacknowledged: Minshall's variant of RFC 896 (RFC 9293 §3.7.4), as
   * Linux's tcp_nagle_check with tcp_minshall_check; full segments in flight do
   * not hold it, and at most one small segment is in flight at a time.
   * It holds only the last bytes buffered, not a record's end with more data
   * behind it (Linux's tcp_write_xmit applies tcp_nagle_test to the tail skb
   * only), and the piece at the window's edge (tcp_mss_split_point). */
  bool partial = len > 0 && len < mss && (len == avail || edge) && !fin;
  bool pushed = t->nagle_push || t->push_one;
  /* Linux's tcp_nagle_check with TCP_NAGLE_CORK (TCP_CORK, or this send's
   * MSG_MORE): a partial segment of new data waits, in flight or not, until
   * uncorked, filled, or a FIN joins it; no timer of its own (tcp_output arms
   * the probe timer if nothing is in flight, tcp_check_probe_timer).
   * TCP_NAGLE_PUSH (TCP_NODELAY set) and tcp_write_wakeup send it anyway. */
  if (partial && !pushed && (t->cork || t->more_call) && !seq_lt(nxt, t->snd_max)) {
    if (corked && !edge) *corked = true;
    if (edge && rwnd_limited) *rwnd_limited = true;
    return false;
  }
  if (partial && !pushed && inflight > 0 && !t->nodelay && minshall_small_unacked(t)) {
    if (edge && rwnd_limited) *rwnd_limited = true;
    return false;
  }
  *len_out = len;
  *fin_out = fin;
  return true;
}

void tcp_output(struct tcp_engine *e, struct tcb *t)
{
  if (t->state == USTCP_SYN_SENT || t->state == USTCP_SYN_RCVD) {
    if (t->snd_nxt == t->iss) tcp_send_syn(e, t);
    else if (t->ack_now && t->state == USTCP_SYN_RCVD) tcp_send_ack(e, t);
    return;
  }
  if (!can_send_data(t->state)) {
    if (t->ack_now && t->state != USTCP_CLOSED && t->state != USTCP_LISTEN) tcp_send_ack(e, t);
    return;
  }
  bool sent = false, new_data = false;
  pm_prune(t);
  uint32_t frame_segs = 0, frame_max = 0, tso_max = tso_frame_segs(e, t);
  bool corked = false;   /* a partial segment held by TCP_CORK/MSG_MORE */
  bool rwnd_limited = false;   /* the peer's window held new data (tcp_snd_wnd_test) */
  bool had_unsent = t->sndbuf.len > t->snd_nxt - t->snd_buf_seq;
  /* Under a notsent limit, sending makes a socket writable (fewer unsent
   * bytes): Linux wakes the writer after tcp_data_snd_check (tcp_check_space).
   * The ACK's own wakeup is delivered before the deferred output runs, so
   * without this one the writer would not hear of it. */
  bool lowat = t->notsent_lowat || e->cfg->notsent_lowat != UINT32_MAX;
  bool was_writable = lowat && tcp_stream_memory_free(e, t, 1);
  cc_before_output(e, t);   /* RFC 5681 §4.1 restart after idle */
  bool have_pipe = false;
  uint32_t pipe0 = 0, pipe_nxt = 0;
  bool burst = false;   /* the last frame sent was new data ending in a full segment */
  for (;;) {
    if (t->nsacked && seq_lt(t->snd_nxt, t->snd_max)) {
      /* Going back over sent data (after a timeout): what the peer SACKed it
       * holds already (RFC 2018 §5). */
      uint32_t past = sack_skip(t, t->snd_nxt);
      if (past != t->snd_nxt) {
        t->snd_nxt = seq_min(past, t->snd_max);
        continue;
      }
    }
    uint32_t off = t->snd_nxt - t->snd_buf_seq;
    uint32_t avail = t->sndbuf.len > off ? t->sndbuf.len - off : 0;
    if (t->nsacked && seq_lt(t->snd_nxt, t->snd_max)) {
      uint32_t hs, he;   /* stop a retransmission at the next SACKed range */
      if (sack_next_hole(t, t->snd_nxt, &hs, &he) && hs == t->snd_nxt)
        avail = u32_min(avail, he - hs);
    }
    uint32_t inflight = t->snd_nxt - t->snd_una;
    /* In recovery cwnd is set against pipe (RFC 6675, PRR): SACKed and lost
     * data is not in the network. */
    uint32_t cwnd_used = inflight;
    if (t->rec.in_recovery && t->snd_nxt == t->snd_max) {
      /* pipe once per call, plus the new data sent since: O(1) a segment */
      if (!have_pipe) {
        pipe0 = tcp_pipe(t);
        pipe_nxt = t->snd_nxt;
        have_pipe = true;
      }
      cwnd_used = pipe0 + (t->snd_nxt - pipe_nxt);
    }
    uint32_t mss = tcp_current_mss(e, t);
    uint32_t len;
    bool fin;
    if (!plan_segment(t, t->snd_nxt, avail, inflight, cwnd_used, mss, burst, &len, &fin, &corked,
                      &rwnd_limited))
      break;
    uint8_t flags = TCP_ACK;
    bool retrans = seq_lt(t->snd_nxt, t->snd_max);
    bool psh = len && pm_push(e, t, t->snd_nxt, t->snd_nxt + len);
    bool frame_end = true;
    uint32_t gso_size = 0, last_len = len;
    if (len && !retrans) {
      /* New data goes out as Linux's tcp_write_xmit sends it: in TSO frames of
       * up to tso_frame_segs segments, cut where a send call ended (the skb
       * boundary), where the windows or Nagle stop the sending, and at the
       * frame size. A frame of two or more segments carries PSH on its last
       * one, as Linux (6.x, measured with packetdrill against the kernel: every
       * multi-segment frame tcp_write_xmit sends has PSH, and GSO or the NIC
       * leaves it on the frame's last segment); a one-segment frame carved
       * from the middle of a send has none (tso_fragment gives PSH to the
       * second part only). */
      if (frame_segs == 0) {
        /* Linux's tcp_cwnd_test caps each frame at half of cwnd ("ensure at
         * least 2 GSO packets in flight") and at what cwnd has left, in
         * segments: a write of 10 segments under cwnd 10 goes out as two
         * frames of 5, each with PSH. */
        uint32_t cw = (t->cc.cwnd + t->rec.lt_extra) / mss;
        uint32_t fl = (cwnd_used + mss - 1) / mss;
        uint32_t quota = cw > fl ? cw - fl : 1;
        uint32_t half = cw / 2 > 1 ? cw / 2 : 1;
        frame_max = u32_min(tso_max, u32_min(quota, half));
      }
      frame_segs++;
      uint32_t nlen;
      bool nfin;
      frame_end = psh || fin || frame_segs >= frame_max ||
                  !plan_segment(t, t->snd_nxt + len, avail - len, inflight + len, cwnd_used + len, mss,
                                len == mss, &nlen, &nfin, NULL, NULL) ||
                  nlen == 0;
      /* The link segments (e->gso_max): the frame's further segments join
       * this one in a single packet, each planned as above in turn (windows,
       * Nagle, a send call's end, a record's end, the frame size): what this
       * loop would send next without it. The link cuts them at mss again and
       * leaves the frame's PSH and FIN on its last segment (tcp_gso_segment).
       * Retransmissions go one segment per packet, as without offload. */
      /* The frame's network header: IPv4's 20 bytes, or IPv6's 40 (TSO6) */
      uint32_t nethdr = t->local.v6 ? 40u : IPV4_HDR_LEN;
      uint32_t room = e->gso_max > TCP_MAX_HDR_LEN + nethdr ? e->gso_max - TCP_MAX_HDR_LEN - nethdr : 0;
      while (!frame_end && !t->push_one && last_len == mss && len + mss <= room) {
        uint32_t nseq = t->snd_nxt + len;
        if (!plan_segment(t, nseq, avail - len, inflight + len, cwnd_used + len, mss, true, &nlen, &nfin,
                          NULL, NULL) ||
            nlen == 0)
          break;
        len += nlen;
        last_len = nlen;
        gso_size = mss;
        fin = nfin;
        frame_segs++;
        psh = pm_push(e, t, nseq, nseq + nlen);
        frame_end = psh || fin || frame_segs >= frame_max ||
                    !plan_segment(t, t->snd_nxt + len, avail - len, inflight + len, cwnd_used + len, mss,
                                  last_len == mss, &nlen, &nfin, NULL, NULL) ||
                    nlen == 0;
      }
      if (frame_end) {
        /* not for data written with MSG_MORE: tcp_push marked no PSH */
        if (frame_segs >= 2 && !t->more && !psh) {
          psh = true;
          pm_frame_push(t, t->snd_nxt + len);
        }
        frame_segs = 0;
      }
    } else {
      frame_segs = 0;
    }
    if (len && t->push_one) psh = true;   /* tcp_write_wakeup sets PSH */
    if (psh) flags |= TCP_PSH;
    if (fin) flags |= TCP_FIN;
    struct tcp_iov pl[2];
    size_t npl = snd_payload(t, off, len, pl);
    /* The last segment's start (tail loss probe): the frame's last mss cut */
    uint32_t seg_seq = t->snd_nxt + (len - last_len);
    emit_frame(e, t, t->snd_nxt, flags, pl, npl, gso_size);
    if (retrans) {
      t->info.retrans_segs++;
      if (e->stats) e->stats->retrans_segs++;
    }
    t->snd_nxt += len + (fin ? 1 : 0);
    if (t->rec.in_recovery || t->rec.in_cwr) t->rec.prr_out += len + (fin ? 1 : 0);   /* RFC 6937 */
    if (fin) t->fin_sent = true;
    /* Linux's tcp_event_data_sent: a reply within the ATO of the last data
     * received makes the connection interactive (pingpong): its ACKs then wait
     * to ride on the replies. */
    if (len && !retrans && t->data_seen && e->now_us - t->lrcv_us < e->cfg->delack_min_us)
      t->pingpong = true;
    if (seq_gt(t->snd_nxt, t->snd_max)) {
      if (!t->rtt.timing && !retrans) {
        t->rtt.timing = true;
        t->rtt.karn = false;
        t->rtt.seq = t->snd_nxt;
        t->rtt.sent_us = e->now_us;
      }
      t->snd_max = t->snd_nxt;
      t->last_seg_seq = seg_seq;
      new_data = true;
      /* Linux's tcp_minshall_update: a frame of new data whose last segment
       * is shorter than the MSS (the skb's len < pcount * mss) */
      if (last_len < mss) t->snd_sml = t->snd_nxt;
    }
    burst = len && !retrans && last_len == mss;
    if (!t->rto_at_us) tcp_arm_rto(e, t);
    if (t->persist_at_us) {
      t->persist_at_us = 0;
      t->probes_stamp_us = 0;   /* data went out: probing is over (tcp_send_probe0) */
      timer_update(e, t);
    }
    sent = true;
    if (fin || t->push_one) break;
  }
  {
    /* cwnd-limited: data waits and the flight fills cwnd (Linux's tcp_write_xmit).
     * Linux counts cwnd in packets; ustcp's is in bytes and, grown by CUBIC's
     * fractional steps, rarely a multiple of the MSS: cwnd is full when less
     * than a segment of it is left (SWS avoidance then holds the rest), else a
     * flight of 7 segments under a cwnd of 7.9 never counted as cwnd-limited
     * and CUBIC, which grows only then (RFC 7661), froze. */
    uint32_t off_now = t->snd_nxt - t->snd_buf_seq;
    bool data_waits = t->sndbuf.len > off_now;
    uint32_t seg = t->snd_mss ? t->snd_mss : 536;
    bool cwnd_limited = data_waits &&
                        (uint64_t)(t->snd_nxt - t->snd_una) + seg > (uint64_t)t->cc.cwnd + t->rec.lt_extra;
    if (sent || cwnd_limited) cwnd_validate(t, cwnd_limited);
  }
  cc_after_output(e, t, sent);   /* last data sent: the restart after idle */
  if (new_data) tcp_schedule_loss_probe(e, t);   /* Linux's tcp_write_xmit */
  if (!sent && t->ack_now) tcp_send_ack(e, t);
  if (lowat && sent && !was_writable && tcp_stream_memory_free(e, t, 1) && e->ops.wake)
    e->ops.wake(e, t);
  /* D3: data waits, the peer's window is zero and nothing is in flight to elicit
   * an update: the persist timer probes until the window reopens. */
  uint32_t off = t->snd_nxt - t->snd_buf_seq;
  bool waiting = t->sndbuf.len > off || (t->fin_queued && seq_leq(t->snd_nxt, t->fin_seq));
  /* Nothing in flight means snd_max == snd_una: after a timeout's go-back-N
   * snd_nxt == snd_una with data still in flight, and the retransmission
   * timer (re-armed by rto_expired) is the probe then, as in Linux. */
  /* Linux's tcp_write_xmit: the window-limited chronograph runs while the
   * peer's window holds data back, and stops at a transmission it did not */
  if (had_unsent) {
    if (rwnd_limited) tcp_chrono_start(e, t, TCP_CHRONO_RWND_LIMITED);
    else tcp_chrono_stop(e, t, TCP_CHRONO_RWND_LIMITED);
  }
  if (waiting && (t->snd_wnd == 0 || corked || rwnd_limited) && t->snd_max == t->snd_una &&
      !t->persist_at_us &&
      !t->rto_at_us) {
    t->persist_at_us = e->now_us + t->rtt.rto_us;
    timer_update(e, t);
  }
}

void tcp_defer_output(struct tcp_engine *e, struct tcb *t)
{
  if (t->defer_queued) return;
  t->defer_queued = true;
  t->defer_prev = NULL;
  t->defer_next = e->defer_head;
  if (e->defer_head) e->defer_head->defer_prev = t;
  e->defer_head = t;
}

void tcp_defer_cancel(struct tcp_engine *e, struct tcb *t)
{
  if (!t->defer_queued) return;
  if (t->defer_prev) t->defer_prev->defer_next = t->defer_next;
  else e->defer_head = t->defer_next;
  if (t->defer_next) t->defer_next->defer_prev = t->defer_prev;
  t->defer_next = t->defer_prev = NULL;
  t->defer_queued = false;
}

bool tcp_flush_deferred(struct tcp_engine *e)
{
  bool any = false;
  while (e->defer_head) {
    struct tcb *t = e->defer_head;
    tcp_defer_cancel(e, t);
    tcp_output(e, t);
    any = true;
  }
  return any;
}
