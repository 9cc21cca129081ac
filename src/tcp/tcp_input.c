/* Segment arrival for a connection that exists (RFC 9293 §3.10.7).
 *
 *   tcp_input
 *     SYN_SENT        -> syn_sent_input       §3.10.7.3
 *     PAWS first      -> paws_reject          RFC 7323 §5.3 R1: a TSval older than
 *                                             TS.Recent drops the segment (not a
 *                                             RST or SYN), rate-limited dup ACK
 *     TIME_WAIT first -> time_wait_input      W9 FIN re-ACK, W10 reopen by SYN
 *     then the steps of §3.10.7.4, one function each, in the RFC's order:
 *       1. check_sequence  acceptability; the unacceptable get a rate-limited ACK
 *                          (a SYN a challenge ACK, a RST nothing); trim to window
 *       2. check_rst       RFC 5961 §3 on the ORIGINAL SEQ: exact resets, else
 *                          a challenge ACK
 *       3. (security/precedence: nothing)
 *       4. check_syn       RFC 5961 §4: a challenge ACK (passive SYN_RCVD: goes)
 *       5. process_ack     SYN_RCVD completes H2/H8; RFC 5961 §5 acceptability;
 *                          TS.Recent (RFC 7323 §4.3); snd_una, RTT (timed
 *                          segment, else TSecr: RFC 7323 §4), cwnd, dup ACKs
 *                          and fast retransmit (D4);
 *                          window update (D3); FIN acked moves the close (W1-W4)
 *       6. process_urg     RFC 6093: pointer to the byte after the urgent data
 *       7. process_text    in order to the receive buffer, else out-of-order queue
 *       8. process_fin     CLOSE_WAIT, CLOSING, TIME_WAIT
 *     then tcp_output (deferred) sends what the segment made due.
 *   Every ACK to an unacceptable segment goes through tcp_oow_rate_limited,
 *   every challenge ACK through tcp_send_challenge_ack (tcp_output.c).
 *   tcp_input_no_conn: RST per §3.10.7.1 (H3).
 */
#include <string.h>
#include "tcp/tcp.h"
#include "tcp/tcp_check.h"

static uint32_t seg_len(const struct tcp_packet *p)
{
  return (uint32_t)p->payload_len + !!(p->tcp.flags & TCP_SYN) + !!(p->tcp.flags & TCP_FIN);
}

/* Options of a SYN or SYN-ACK: MSS (RFC 9293 §3.7.1, default 536 when absent)
 * and window scale (RFC 7323 §2.2-2.3, clamped to 14). */
static void take_syn_options(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h)
{
  uint32_t peer_mss = (h->opts.present & TCP_OPT_HAS_MSS) ? h->opts.mss : 536;
  if (peer_mss < 64) peer_mss = 64;
  uint32_t own = tcp_adv_mss(e, t);
  t->snd_mss = (uint16_t)u32_min(peer_mss, own);
  if (e->cfg->window_scaling && (h->opts.present & TCP_OPT_HAS_WSCALE)) {
    t->wscale_ok = true;
    t->snd_wscale = h->opts.wscale > 14 ? 14 : h->opts.wscale;
  } else {
    /* Scaling needs both SYNs to carry the option; our offer is void. */
    t->wscale_ok = false;
    t->snd_wscale = 0;
    t->rcv_wscale = 0;
  }
  /* RFC 2018 §2: SACK when both SYNs carry SACK-permitted. */
  t->sack_ok = e->cfg->sack && (h->opts.present & TCP_OPT_HAS_SACK_PERM);
  tcp_take_syn_ts(e, t, h);
}

/* ---- timestamps (RFC 7323 §3-5) ---- */

/* RFC 7323 §3.2: timestamps when our SYN offered them (the config) and the
 * peer's SYN or SYN-ACK carried TS. Its TSval starts TS.Recent. Every segment
 * then carries 12 option bytes: the payload that fits the peer's MSS shrinks
 * by as much (Linux's tcp_current_mss; tcpi_snd_mss reads 1448 then). */
void tcp_take_syn_ts(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h)
{
  bool had = t->ts_ok;
  t->ts_ok = e->cfg->timestamps && (h->opts.present & TCP_OPT_HAS_TS);
  if (!t->ts_ok) return;
  t->ts_recent = h->opts.ts_val;
  t->ts_recent_us = e->now_us;
  if (!had) t->snd_mss = (uint16_t)(t->snd_mss - TCP_TS_OPT_SPACE);   /* snd_mss >= 64 here */
}

/* RFC 7323 §5.5 / Linux's TCP_PAWS_24DAYS: a TS.Recent idle this long may be
 * older than half the TSval space and is no reference any more. */
#define TS_RECENT_IDLE_US (24ull * 24 * 3600 * USTCP_SEC)

/* Linux's tcp_paws_check: does the segment's TSval pass against TS.Recent,
 * allowing it to lie paws_win ticks below? Also true when TS.Recent is stale
 * (24 days idle) or 0 (stacks whose SYNs carry TSval 0). */
static bool paws_check(const struct tcp_engine *e, const struct tcb *t, uint32_t tsval,
                       int32_t paws_win)
{
  if ((int32_t)(t->ts_recent - tsval) <= paws_win) return true;
  if (e->now_us - t->ts_recent_us >= TS_RECENT_IDLE_US) return true;
  return t->ts_recent == 0;
}

/* Linux's tcp_disordered_ack: a pure duplicate ACK at rcv_nxt that changes no
 * window, whose TSval is older than TS.Recent by less than an RTO, was merely
 * reordered with a later segment: RFC 7323 §5.3 lets it through (dropping it
 * would cost the sender a duplicate ACK it may be counting). */
static bool disordered_ack(const struct tcb *t, const struct tcp_packet *p)
{
  const struct tcp_hdr *h = &p->tcp;
  if (!(h->flags & TCP_ACK) || (h->flags & (TCP_SYN | TCP_FIN)) || p->payload_len) return false;
  if (h->seq != t->rcv_nxt || h->ack != t->snd_una) return false;
  /* Linux's tcp_may_update_window, false */
  uint32_t nwin = (uint32_t)h->window << t->snd_wscale;
  if (seq_gt(h->seq, t->snd_wl1) || (h->seq == t->snd_wl1 && (nwin > t->snd_wnd || !nwin)))
    return false;
  /* icsk_rto * 1024 / HZ: the RTO in (about) 1 ms ticks */
  return (int32_t)(t->ts_recent - h->opts.ts_val) <= (int64_t)(t->rtt.rto_us * 1024 / USTCP_SEC);
}

/* RFC 7323 §5.3 R1 (PAWS), Linux's tcp_paws_discard: true if the segment
 * carries a TSval older than TS.Recent and must be dropped. O(1) whatever the
 * TSval: serial-number comparisons only. */
static bool paws_reject(const struct tcp_engine *e, const struct tcb *t, const struct tcp_packet *p)
{
  if (!t->ts_ok || !(p->tcp.opts.present & TCP_OPT_HAS_TS)) return false;
  return !paws_check(e, t, p->tcp.opts.ts_val, 1) && !disordered_ack(t, p);
}

/* RFC 7323 §4.3 (Linux's tcp_replace_ts_recent), for a segment found
 * acceptable: TS.Recent takes its TSval if it covers Last.ACK.sent, i.e.
 * SEG.SEQ =< Last.ACK.sent (rcv_wup: rcv_nxt when we last sent an ACK), so
 * TS.Recent echoes the segment that opened the data our next ACK
 * acknowledges, and never moves backwards (tcp_paws_check with window 0). */
static void update_ts_recent(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h)
{
  if (!t->ts_ok || !(h->opts.present & TCP_OPT_HAS_TS)) return;
  if (seq_gt(h->seq, t->rcv_wup)) return;
  if (!paws_check(e, t, h->opts.ts_val, 0)) return;
  t->ts_recent = h->opts.ts_val;
  t->ts_recent_us = e->now_us;
}

/* RFC 7323 §4 (RTTM): the round trip from an ACK's TSecr, in us, or 0 when it
 * gives none (Linux's tcp_rtt_tsopt_us: TSecr 0 echoes nothing; a TSecr from
 * the future or older than 2^31 us is no sample). 1 ms ticks: a round trip
 * under a tick counts as one tick. */
static uint64_t ts_rtt_us(const struct tcp_engine *e, const struct tcb *t, const struct tcp_hdr *h)
{
  if (!t->ts_ok || !(h->opts.present & TCP_OPT_HAS_TS) || h->opts.ts_ecr == 0) return 0;
  /* An echo older than our latest retransmission answers an earlier copy:
   * the peer had the data, its ACK was lost, and its reply to our duplicate
   * echoes a TS.Recent from before it (RFC 7323 §5.3: R2 rejects a duplicate
   * before R3 would record its TSval). Timed, it would measure our RTO wait
   * (samples of minutes at 30 % loss pegged the RTO at 120 s). RFC 3522 §2
   * draws the same line to call a retransmission spurious. */
  if (t->rtt.rexmit_tsval && (int32_t)(h->opts.ts_ecr - t->rtt.rexmit_tsval) < 0) return 0;
  uint32_t delta = tcp_ts_now(e, t) - h->opts.ts_ecr;
  if (delta >= INT32_MAX / 1000) return 0;
  if (delta == 0) delta = 1;
  return (uint64_t)delta * 1000;
}


static void wake(struct tcp_engine *e, struct tcb *t)
{
  if (e->ops.wake) e->ops.wake(e, t);
}

/* Our SYN is acknowledged (H1 in SYN_SENT, H2/H8 in SYN_RCVD): an RTT sample
 * unless the SYN was resent (Karn), the peer's window, ESTABLISHED. */
static void handshake_done(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h,
                           uint32_t seq, uint32_t ack, uint32_t wnd)
{
  t->snd_una = ack;
  uint64_t ts_rtt = ts_rtt_us(e, t, h);
  if (t->rtt.timing && t->backoff == 0) tcp_rtt_sample(e, t, e->now_us - t->rtt.sent_us);
  else if (ts_rtt) tcp_rtt_sample(e, t, ts_rtt);   /* the SYN was resent: TSecr tells which */
  t->rtt.timing = false;
  t->backoff = 0;
  t->retrans_stamp_us = 0;
  t->snd_wnd = wnd;
  t->max_snd_wnd = u32_max(t->max_snd_wnd, wnd);
  t->snd_wl1 = seq;
  t->snd_wl2 = ack;
  t->rto_at_us = 0;
  /* TCP_INFO's last_data_recv counts from here until data comes (Linux:
   * tcp_finish_connect and tcp_create_openreq_child set icsk_ack.lrcvtime) */
  t->lrcv_us = e->now_us;
  timer_update(e, t);
  tcb_set_state(e, t, USTCP_ESTABLISHED, USTCP_CAUSE_SEGMENT);
  tcp_init_buffer_space(e, t);
  tcp_arm_keepalive(e, t);
}

/* RFC 9293 §3.10.7.3 */
static void syn_sent_input(struct tcp_engine *e, struct tcb *t, const struct tcp_packet *p)
{
  const struct tcp_hdr *h = &p->tcp;
  bool ack_ok = false;
  if (h->flags & TCP_ACK) {
    if (seq_leq(h->ack, t->iss) || seq_gt(h->ack, t->snd_max)) {
      if (!(h->flags & TCP_RST)) tcp_send_rst_for(e, p);
      return;
    }
    ack_ok = seq_leq(t->snd_una, h->ack);
  }
  if (h->flags & TCP_RST) {
    /* H3: an acceptable RST|ACK refuses the connection; RST without ACK is dropped. */
    if (ack_ok) {
      if (e->stats) e->stats->tcp_rst_in++;
      if (e->stats) e->stats->attempt_fails++;
      tcb_close(e, t, -ECONNREFUSED, USTCP_CAUSE_RESET);
    }
    return;
  }
  if (!(h->flags & TCP_SYN)) return;
  /* RFC 3168 §6.1.1: the SYN-ACK (or a crossing SYN) says whether ECN is on */
  if (ack_ok) tcp_ecn_rcv_synack(t, h);
  else tcp_ecn_rcv_syn(t, h);
  t->irs = h->seq;
  t->rcv_nxt = h->seq + 1;
  /* Our SYN offered rcv_wnd before rcv_nxt was known: anchor that edge now. */
  t->rcv_adv = t->rcv_nxt + t->rcv_wnd;
  take_syn_options(e, t, h);
  tcb_init_conn(e, t);
  if (ack_ok) {
    /* H1: our SYN is acknowledged: ESTABLISHED, send the third handshake ACK.
     * A SYN's window is never scaled (RFC 7323 §2.2). */
    t->max_snd_wnd = 0;
    handshake_done(e, t, h, h->seq, h->ack, h->window);
    t->ack_now = true;
    tcp_output(e, t);
    wake(e, t);
    return;
  }
  /* H8: simultaneous open. Send SYN-ACK from the same ISN. */
  t->snd_wnd = h->window;
  t->max_snd_wnd = t->snd_wnd;
  t->snd_wl1 = h->seq;
  t->snd_wl2 = t->iss;
  tcb_set_state(e, t, USTCP_SYN_RCVD, USTCP_CAUSE_SEGMENT);
  t->snd_nxt = t->iss;
  tcp_send_syn(e, t);
}

/* Step 1 of §3.10.7.4: is any part of the segment inside the receive window? */
static bool acceptable(const struct tcb *t, uint32_t seq, uint32_t len)
{
  uint32_t wnd = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
  if (len == 0) {
    if (wnd == 0) return seq == t->rcv_nxt;
    /* The right edge itself is taken too, as Linux's tcp_sequence does (RFC
     * 9293 says < RCV.NXT+RCV.WND): a peer whose window-full of data was lost
     * sends its ACKs at seq = its snd_max = our edge, and rejecting them threw
     * away their ACK field and window and let keepalive kill a live peer. */
    return seq_between(seq, t->rcv_nxt, t->rcv_nxt + wnd);
  }
  /* A zero window takes no data, but the RFC's "special allowance ... to
   * accept valid ACKs, URGs, and RSTs" needs the segment itself: one at
   * exactly rcv_nxt is accepted, its text trimmed away in check_sequence, so
   * its ACK field still acknowledges our data (as Linux's tcp_sequence and
   * tcp_data_queue; issue 13). */
  if (wnd == 0) return seq == t->rcv_nxt;
  return seq_in(seq, t->rcv_nxt, t->rcv_nxt + wnd) ||
         seq_in(seq + len - 1, t->rcv_nxt, t->rcv_nxt + wnd);
}

/* Appends in-order data and joins the out-of-order intervals it reaches. Returns
 * true if a FIN became in order. */
static bool deliver_in_order(struct tcp_engine *e, struct tcb *t, const uint8_t *data,
                             uint32_t len, bool fin)
{
  uint32_t n = ring_write_upto(e, &t->rcvbuf, data, len, t->rcvbuf.cap + tcp_rcv_overcommit(t));
  if (e->stats) e->stats->rx_bytes_copied += n;
  t->rcv_nxt += n;
  t->info.bytes_received += n;
  tcp_rcv_rtt_measure(e, t);
  if (n < len) fin = false;   /* the rest did not fit: the peer will resend it */
  if (fin) {
    ooo_free_all(e, t);       /* nothing beyond the FIN is data */
    return true;
  }
  return ooo_deliver(e, t);
}

/* New data acknowledged: buffers, RTT (RFC 6298 with Karn's rule), congestion
 * window (RFC 5681 slow start / congestion avoidance, RFC 6582 NewReno). */
static void ack_advance(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h,
                        uint32_t sacked_before)
{
  uint32_t ack = h->ack;
  uint32_t acked = ack - t->snd_una;
  /* What this ACK newly delivers (Linux's tp->delivered increase, which
   * tcp_ack hands to tcp_cong_avoid as acked_sacked): the acknowledged bytes
   * not SACKed before (tcp_clean_rtx_queue skips TCPCB_SACKED_ACKED skbs,
   * counted by tcp_sacktag_one when their SACK came), plus what this ACK
   * SACKs for the first time. Without SACK each duplicate ACK counted one
   * segment (tcp_add_reno_sack); the cumulative ACK then counts the rest, at
   * least one segment (tcp_remove_reno_sacks). */
  uint32_t delivered;
  if (t->sack_ok) {
    uint32_t now_sacked = sack_bytes(t);
    delivered = sack_unsacked(t, t->snd_una, ack) +
                (now_sacked > sacked_before ? now_sacked - sacked_before : 0);
  } else {
    uint32_t one = u32_min(acked, t->snd_mss ? t->snd_mss : 536);
    delivered = u32_max(acked > t->rec.dup_bytes ? acked - t->rec.dup_bytes : 0, one);
  }
  t->rec.last_advance = acked;
  bool freed = false;
  /* Drop acknowledged data from the send buffer (SYN/FIN have no buffer bytes). */
  if (seq_gt(ack, t->snd_buf_seq)) {
    freed = true;
    uint32_t drop = u32_min(ack - t->snd_buf_seq, t->sndbuf.len);
    ring_drop(&t->sndbuf, drop);
    t->snd_buf_seq += drop;
    t->info.bytes_acked += drop;
    /* All acknowledged: the storage goes (issue 12, elastic buffers). */
    ring_release_empty(e, &t->sndbuf);
  }
  uint64_t rtt_us = 0;
  int per_ack = rack_ack_rtt(e, t, ack, &rtt_us);
  if (per_ack > 0) {
    /* A sample from every ACK where the transmit times are on record (RACK's
     * ranges), as Linux's tcp_clean_rtx_queue -> tcp_ack_update_rtt; the
     * timed segment's own sample would be one of these. */
    tcp_rtt_sample(e, t, rtt_us);
    if (t->rtt.timing && seq_geq(ack, t->rtt.seq)) t->rtt.timing = false;
    if (!rtt_us) rtt_us = 1;
  } else if (t->rtt.timing && seq_geq(ack, t->rtt.seq)) {
    rtt_us = e->now_us - t->rtt.sent_us;
    tcp_rtt_sample(e, t, rtt_us);
    t->rtt.timing = false;
    if (!rtt_us) rtt_us = 1;
  } else if (!t->rtt.timing && t->rtt.karn) {
    /* RFC 7323 §4 (RTTM): where Karn's rule left no timed segment (a
     * retransmission voided it and no new segment is timed yet), TSecr still
     * tells when the segment that made this ACK was sent. As Linux's
     * tcp_ack_update_rtt: the clock's sample is preferred, TSecr is the
     * fallback when what is acknowledged was retransmitted, and only for an
     * ACK that advances snd_una (the caller's condition; duplicate ACKs echo
     * an old TS.Recent). Otherwise one sample per timed flight, as RFC 6298's
     * gains expect (RFC 7323 Appendix G). */
    uint64_t r = ts_rtt_us(e, t, h);
    if (r) tcp_rtt_sample(e, t, r);
    rtt_us = r;
  }
  /* Karn's algorithm (RFC 6298 §3, §5.5), as Linux keeps icsk_rto: the
   * backed-off RTO stays in force until a sample from a segment sent once
   * (above) recomputes it; only the count of expirations restarts. */
  t->backoff = 0;
  t->probes = 0;
  t->retrans_stamp_us = 0;   /* new data acked: a new head (Linux clears retrans_stamp) */
  t->soft_error = 0;   /* the path works again (Linux clears sk_err_soft in tcp_ack) */
  uint32_t mss = t->snd_mss;
  if (t->rec.in_cwr && seq_gt(ack, t->rec.cwr_high)) {
    /* RFC 3168 §6.1.2: the window that saw the ECE is acknowledged, beyond its
     * last byte so that our CWR has reached the receiver (Linux ends its CWR
     * state only for snd_una != high_seq): cwnd = ssthresh
     * (tcp_end_cwnd_reduction). */
    t->rec.in_cwr = false;
    t->cc.cwnd = t->cc.ssthresh;
  } else if (t->rec.in_cwr) {
    /* reducing: PRR (process_ack) sets cwnd, nothing grows it */
  } else if (t->rec.in_recovery) {
    if (seq_geq(ack, t->rec.recover)) {
      /* RFC 6582 §3.2 step 3: a full ACK ends recovery, with cwnd = ssthresh
       * (RFC 6937 §3; Linux's tcp_end_cwnd_reduction), unless the timestamps
       * show the originals arrived and it was all spurious (RFC 3522; Linux's
       * tcp_try_undo_recovery): then cwnd and ssthresh come back. */
      t->rec.in_recovery = false;
      rack_recovery_end(t);
      if (!rack_try_undo_ts(e, t, h)) t->cc.cwnd = t->cc.ssthresh;
    } else {
      /* Partial ACK: PRR (process_ack) sends what the next hole needs. The
       * acknowledged segments took their duplicate ACKs' share with them
       * (Linux's tcp_remove_reno_sacks). */
      uint32_t dup = acked > mss ? acked - mss : 0;
      t->rec.dup_bytes = t->rec.dup_bytes > dup ? t->rec.dup_bytes - dup : 0;
    }
  } else {
    cc_ack(e, t, delivered, rtt_us);            /* slow start or avoidance: the module's */
  }
  t->rec.dupacks = 0;
  t->rec.lt_extra = 0;
  if (!t->rec.in_recovery) t->rec.dup_bytes = 0;
  t->snd_una = ack;
  if (seq_lt(t->snd_nxt, ack)) t->snd_nxt = ack;
  if (t->nsacked) sack_prune(t);
  rack_prune(e, t);
  /* Linux's tcp_clean_rtx_queue: everything sent is acknowledged */
  if (t->snd_una == t->snd_max) tcp_chrono_stop(e, t, TCP_CHRONO_BUSY);
  if (t->snd_una == t->snd_max) t->rto_at_us = 0;
  else t->rto_at_us = e->now_us + t->rtt.rto_us;   /* RFC 6298 §5.3 */
  timer_update(e, t);
  /* Linux's tcp_new_space: the ACK freed buffer space, with cwnd as it is now. */
  if (freed) tcp_sndbuf_expand(e, t);
}

/* May a loss start a recovery now? RFC 6582 §3.2 step 1 and §4 (see
 * dup_ack), and not while a timeout's go-back-N is still resending. */
static bool recovery_allowed(const struct tcb *t)
{
  uint32_t mss = t->snd_mss;
  if (seq_leq(t->snd_una, t->rec.recover) && (t->info.fast_retrans || t->info.rto_expirations) &&
      !(t->cc.cwnd > mss && t->rec.last_advance <= 4 * mss))
    return false;
  return true;
}

/* RFC 5681 §3.2 / RFC 6582 / RFC 6675: the third duplicate ACK (or enough
 * SACKed data) starts recovery; PRR (RFC 6937) then paces what it sends. */
static void dup_ack(struct tcp_engine *e, struct tcb *t)
{
  t->info.dup_acks_in++;
  uint32_t mss = t->snd_mss;
  /* Without SACK, each duplicate says a segment left the network (Linux's
   * tcp_add_reno_sack), never more than are outstanding. */
  if (!t->sack_ok)
    t->rec.dup_bytes = u32_min(t->rec.dup_bytes + mss, t->snd_max - t->snd_una);
  if (t->rec.in_recovery) return;   /* PRR (process_ack) decides what goes */
  ++t->rec.dupacks;
  if (rack_active(e, t)) {
    /* RACK decides what is lost (process_ack); as Linux's
     * tcp_time_to_recover with RACK, no duplicate count starts a recovery.
     * Meanwhile SACKed data has left the network: new data may take its
     * place (RFC 3042 generalised, Linux's tcp_packets_in_flight), sent at
     * the end of the event, after what recovery retransmits (Linux's
     * tcp_data_snd_check after tcp_fastretrans_alert). */
    if (t->snd_nxt == t->snd_max)
      t->rec.lt_extra = u32_max(sack_bytes(t), u32_min(t->rec.dupacks, 2) * mss);
    return;
  }
  /* When is snd_una lost? At the third duplicate (RFC 5681); with fewer than 4
   * segments out and nothing new to send, at oseg - 1 (RFC 5827 early
   * retransmit); or once 3 segments' worth above it are SACKed, which also
   * works when duplicate ACKs themselves were lost (RFC 6675 IsLost). */
  uint32_t outstanding = t->snd_max - t->snd_una;
  uint32_t oseg = (outstanding + mss - 1) / mss;
  uint32_t unsent_off = t->snd_max - t->snd_buf_seq;
  bool unsent = t->sndbuf.len > unsent_off;
  uint32_t thresh = (oseg < 4 && oseg >= 2 && !unsent) ? oseg - 1 : 3;
  bool sack_says_lost = t->sack_ok && sack_bytes(t) >= 3 * mss;
  if (t->rec.dupacks < thresh && !sack_says_lost) {
    /* RFC 3042 limited transmit: each of the first two duplicates lets one new
     * segment out, so a small window still produces the third duplicate. */
    if (t->rec.dupacks <= 2 && unsent && t->snd_nxt == t->snd_max) {   /* new data only */
      t->rec.lt_extra = t->rec.dupacks * mss;
      tcp_output(e, t);
    }
    return;
  }
  if (t->rec.dupacks > thresh && !sack_says_lost) return;   /* handled at the threshold */
  /* RFC 6582 §3.2 step 1 and §4: not while snd_una <= recover, where recover
   * is set by a recovery and by a retransmission timeout (tcp_timer.c): after
   * a timeout, go-back-N retransmissions make duplicate ACKs, and a fast
   * retransmit then sized ssthresh from the whole old flight and burst it. */
  /* ...unless RFC 6582 §4's ACK heuristic says the loss is real: the latest
   * cumulative ACK advanced at most 4*SMSS (and cwnd > SMSS), while go-back-N
   * duplicates follow a large jump. Without it every loss below recover
   * waited for a (backed-off) timeout. */
  if (!recovery_allowed(t)) return;
  tcp_enter_recovery(e, t, true);
}

/* RACK found lost data (Linux's tcp_time_to_recover: lost_out): recovery
 * retransmits it. Right after a timeout (snd_una <= recover, where RFC 6582
 * keeps duplicate ACKs from starting a recovery) cwnd was cut already: the
 * recovery sends what RACK marked without a second reduction, as Linux
 * retransmits RACK's losses in its Loss state. Not while the timeout's
 * go-back-N is still resending. */
static void rack_recover(struct tcp_engine *e, struct tcb *t)
{
  if (t->rec.in_recovery || t->snd_nxt != t->snd_max || !rack_lost_bytes(t)) return;
  if (!recovery_allowed(t)) return;
  tcp_enter_recovery(e, t, true);
}

void tcp_enter_recovery(struct tcp_engine *e, struct tcb *t, bool reduce)
{
  uint32_t mss = t->snd_mss;
  t->rec.lt_extra = 0;
  /* FlightSize (RFC 5681): what is outstanding. After a timeout's go-back-N,
   * data from snd_nxt to snd_max counts as lost, not in flight. */
  uint32_t flight = t->snd_nxt - t->snd_una;
  /* RFC 6937 §3 initialization (Linux's tcp_init_cwnd_reduction): RecoverFS
   * is the cwnd before the reduction; process_ack then runs PRR for this ACK,
   * whose first quota is the retransmission of snd_una. */
  if (t->rec.in_cwr) {
    /* Already reducing for an ECE: the loss is in the same window, and the
     * reduction, its ssthresh and PRR's counts go on (Linux's
     * tcp_enter_recovery skips tcp_init_cwnd_reduction in CWR). */
    t->rec.in_cwr = false;
  } else {
    t->rec.prior_cwnd = u32_max(t->cc.cwnd, mss);
    if (reduce) {
      rack_undo_init(e, t);                   /* what an undo restores (tcp_init_undo) */
      cc_congestion_event(e, t, flight);      /* the module sets ssthresh */
    }
    t->rec.prr_delivered = 0;
    t->rec.prr_out = 0;
  }
  t->rec.recover = t->snd_max;
  t->rec.in_recovery = true;
  t->sack_rexmit = t->snd_una;
  t->tlp_active = false;       /* recovery takes over (Linux's tcp_init_cwnd_reduction) */
}

/* RFC 6937 §3 PRR with the slow start reduction bound, as Linux's
 * tcp_cwnd_reduction: cwnd becomes pipe + sndcnt for the data this ACK
 * delivered (cumulatively acknowledged or newly SACKed). Above ssthresh the
 * sending follows ssthresh / RecoverFS of the deliveries; below it, at most
 * what was delivered plus one segment when snd_una advanced, up to ssthresh.
 * Linux counts segments: the proportional quota is rounded up to a whole
 * segment likewise. */
void tcp_prr_ack(struct tcb *t, uint32_t delivered, bool una_advanced)
{
  if (!delivered) return;
  uint32_t mss = t->snd_mss;
  uint32_t pipe = tcp_pipe(t);
  t->rec.prr_delivered += delivered;
  uint64_t sndcnt;
  if (pipe > t->cc.ssthresh) {
    uint64_t quota = ((uint64_t)t->cc.ssthresh * t->rec.prr_delivered + t->rec.prior_cwnd - 1) /
                     t->rec.prior_cwnd;
    quota = (quota + mss - 1) / mss * mss;
    sndcnt = quota > t->rec.prr_out ? quota - t->rec.prr_out : 0;
  } else {
    uint32_t delta = t->cc.ssthresh - pipe;
    uint32_t owed = t->rec.prr_delivered > t->rec.prr_out ? t->rec.prr_delivered - t->rec.prr_out : 0;
    sndcnt = u32_max(owed, delivered);
    if (una_advanced) sndcnt += mss;
    if (sndcnt > delta) sndcnt = delta;
  }
  /* The fast retransmit goes whatever the quota (Linux forces one segment
   * while prr_out is 0). */
  if (!t->rec.prr_out && sndcnt < mss) sndcnt = mss;
  uint64_t cwnd = pipe + sndcnt;
  t->cc.cwnd = cwnd > UINT32_MAX ? UINT32_MAX : (uint32_t)cwnd;
}

/* RFC 6675 §5 NextSeg as far as cwnd - pipe allows: lost segments first
 * (rule 1), then new data (rule 2, tcp_output counts pipe in recovery), then
 * the other holes below the highest SACKed byte (rule 3). Each step sends at
 * most one segment and pipe grows by it, so the loop ends. */
void tcp_recovery_send(struct tcp_engine *e, struct tcb *t)
{
  uint32_t mss = t->snd_mss;
  if (rack_active(e, t)) {
    /* RACK: what it marked lost, lowest first, then new data (Linux's
     * tcp_xmit_retransmit_queue, then tcp_data_snd_check). Each pass
     * retransmits from a later point or stops, so the loop ends; pipe is
     * computed once and grows by what each retransmission sends (lost bytes
     * back in flight), so an ACK costs O(ranges) however many segments go. */
    uint32_t from = t->snd_una;
    uint32_t pipe = tcp_pipe(t);
    while (pipe < t->cc.cwnd) {
      uint32_t hs, he;
      if (!rack_next_lost(t, from, &hs, &he)) break;
      uint32_t before = t->info.retrans_segs, una = t->snd_una;
      uint64_t sent = t->info.bytes_sent;
      tcp_retransmit_at(e, t, hs, u32_min(he - hs, mss));
      if (t->info.retrans_segs == before || t->snd_una != una) break;   /* nothing could go */
      uint32_t len = (uint32_t)(t->info.bytes_sent - sent);
      pipe += len ? len : 1;
      from = hs + (len ? len : 1);
      t->info.fast_retrans++;
    }
    tcp_output(e, t);
    return;
  }
  for (int rule = 1; rule <= 3; rule++) {
    if (rule == 2) { tcp_output(e, t); continue; }
    for (;;) {
      if (tcp_pipe(t) >= t->cc.cwnd) return;
      uint32_t from = seq_max(t->sack_rexmit, t->snd_una);
      uint32_t lost_end = sack_lost_end(t);
      uint32_t hs, he;
      if (!t->nsacked) {
        hs = from;
        he = lost_end;
      } else if (!sack_next_hole(t, from, &hs, &he)) {
        break;
      }
      if (rule == 1 && !seq_lt(hs, lost_end)) break;
      if (!seq_lt(hs, he)) break;
      uint32_t len = u32_min(he - hs, mss);
      uint32_t before = t->info.retrans_segs;
      tcp_retransmit_at(e, t, hs, len);
      t->sack_rexmit = hs + len;
      if (t->info.retrans_segs == before) break;   /* nothing could go */
      t->info.fast_retrans++;
    }
  }
}

static bool fin_acked(const struct tcb *t)
{
  return t->fin_sent && seq_gt(t->snd_una, t->fin_seq);
}

/* Returns true if t closed instead (max_tw_buckets reached): the caller stops. */
static bool enter_time_wait(struct tcp_engine *e, struct tcb *t)
{
  if (!tcp_time_wait_room(e)) {
    tcb_close(e, t, 0, USTCP_CAUSE_ERROR);
    return true;
  }
  tcb_set_state(e, t, USTCP_TIME_WAIT, USTCP_CAUSE_SEGMENT);
  t->rto_at_us = t->persist_at_us = t->keepalive_at_us = t->tlp_at_us = 0;
  t->close_at_us = e->now_us + e->cfg->time_wait_us;
  ring_free(e, &t->sndbuf);
  rack_free(e, t);
  /* TIME_WAIT lasts a minute: keep no buffer that holds nothing. */
  if (t->rcvbuf.len == 0) ring_free(e, &t->rcvbuf);
  timer_update(e, t);
  return false;
}

/* ---- segment arrival in a synchronized state (RFC 9293 §3.10.7.4) ----
 *
 * The steps see the segment through struct seg: step 1 trims it to the
 * receive window, but the RFC 5961 tests of steps 2 (RST, §3) and 4 (SYN, §4)
 * read the ORIGINAL header (Linux's tcp_validate_incoming does too): a RST
 * whose SEQ lies below RCV.NXT while its payload spans RCV.NXT must not pass
 * the exact-match test after the trim, nor a SYN one below RCV.NXT pass as
 * in-order data once its SYN is trimmed away. */
/* The peer's window in bytes. RFC 7323 §2.2: the window of a segment with SYN
 * set (the crossing SYN-ACK of a simultaneous open) is never scaled. */
static uint32_t seg_window(const struct tcb *t, const struct tcp_hdr *h)
{
  return (h->flags & TCP_SYN) ? h->window : (uint32_t)h->window << t->snd_wscale;
}

struct seg {
  const struct tcp_packet *p;
  uint32_t seq;            /* sequence number of the first byte of data kept */
  const uint8_t *data;
  uint32_t plen;           /* data bytes kept */
  bool fin;                /* the FIN, unless the right edge cut it off */
  bool synack_crossed;     /* H8: the peer's SYN-ACK crossed ours; its SYN is consumed */
  bool paws_failed;        /* its TSval is older than TS.Recent (RFC 7323 §5) */
};

/* What a step decided: go on to the next step, the segment is done with (t
 * lives on), or t was closed and may be freed. */
enum verdict { SEG_GO, SEG_DROP, SEG_GONE };

/* Cheap invariants at the end of every segment (see tcp_check.h). */
static enum verdict checked(struct tcp_engine *e, struct tcb *t, enum verdict v)
{
  if (v != SEG_GONE) TCP_CHECK_INVARIANTS(e, t);
  return v;
}

/* A RST resets only with SEQ exactly RCV.NXT (RFC 5961 §3.2) or, after the
 * peer's FIN, one below it: the FIN's own sequence number, which some stacks
 * put on the RST that follows their FIN (Linux's tcp_reset_check). */
static bool rst_seq_matches(const struct tcb *t, uint32_t seq)
{
  if (seq == t->rcv_nxt) return true;
  return seq == t->rcv_nxt - 1 && (t->state == USTCP_CLOSE_WAIT || t->state == USTCP_LAST_ACK ||
                                   t->state == USTCP_CLOSING);
}

/* An acceptable RST: the connection ends (§3.10.7.4 step 2, per state). */
static enum verdict reset_by_peer(struct tcp_engine *e, struct tcb *t)
{
  if (e->stats) e->stats->tcp_rst_in++;
  switch (t->state) {
  case USTCP_SYN_RCVD:
    /* A passive child just goes away; an active open is refused. */
    tcb_close(e, t, t->parent ? 0 : -ECONNREFUSED, USTCP_CAUSE_RESET);
    return SEG_GONE;
  case USTCP_ESTABLISHED: case USTCP_FIN_WAIT_1: case USTCP_FIN_WAIT_2:
  case USTCP_CLOSE_WAIT:
    if (e->stats) e->stats->estab_resets++;
    tcb_close(e, t, -ECONNRESET, USTCP_CAUSE_RESET);
    return SEG_GONE;
  case USTCP_TIME_WAIT:
    if (e->cfg->rfc1337) return SEG_DROP;   /* RFC 1337: no TIME_WAIT assassination */
    tcb_close(e, t, 0, USTCP_CAUSE_RESET);
    return SEG_GONE;
  default:
    tcb_close(e, t, 0, USTCP_CAUSE_RESET);
    return SEG_GONE;
  }
}

/* TIME_WAIT before the common steps (Linux's tcp_timewait_state_process):
 * W9, a retransmitted FIN is re-ACKed and restarts 2MSL; W10, a new SYN beyond
 * the old sequence space reopens the 4-tuple (RFC 9293 §3.6.1 note). Returns 1
 * when the SYN must go to the listener (t is closed, maybe freed). */
static int time_wait_input(struct tcp_engine *e, struct tcb *t, const struct seg *s, bool *done)
{
  const struct tcp_hdr *h = &s->p->tcp;
  *done = false;
  if ((h->flags & (TCP_FIN | TCP_SYN | TCP_RST)) == TCP_FIN && !s->paws_failed &&
      h->seq + seg_len(s->p) == t->rcv_nxt) {
    t->close_at_us = e->now_us + e->cfg->time_wait_us;
    timer_update(e, t);
    tcp_send_ack(e, t);
    *done = true;
    return 0;
  }
  /* A SYN+FIN does not reopen: the listener drops it (tcp_listen.c), and
   * TIME_WAIT must not end for a segment nobody accepts. */
  /* Linux's tcp_timewait_state_process: a SYN that fails PAWS never reopens;
   * one whose TSval is newer than TS.Recent does even if its SEQ is not
   * above the old connection's (RFC 6191). */
  bool ts_newer = t->ts_ok && (h->opts.present & TCP_OPT_HAS_TS) &&
                  (int32_t)(t->ts_recent - h->opts.ts_val) < 0;
  if ((h->flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN && !s->paws_failed &&
      (seq_gt(h->seq, t->rcv_nxt) || ts_newer)) {
    /* Issue 10 point 6: the new connection's ISN lies above anything the old
     * one sent, whatever the clock says (RFC 9293 §3.6.1; Linux's
     * tw_snd_nxt + 65535 + 2), so its segments never fall in the window the
     * peer may still hold for the old incarnation. tcp_listen_input takes it. */
    e->tw_isn = t->snd_nxt + 65535 + 2;
    e->tw_isn_set = true;
    tcb_close(e, t, 0, USTCP_CAUSE_SEGMENT);
    *done = true;
    return 1;
  }
  return 0;
}

/* Step 1: sequence number check. An unacceptable segment is dropped: a RST
 * silently (RFC 5961 §3.2), a SYN with a challenge ACK (§4: "irrespective of
 * the sequence number"), anything else with a duplicate ACK. Then the segment
 * is trimmed to the window. */
static enum verdict check_sequence(struct tcp_engine *e, struct tcb *t, struct seg *s)
{
  const struct tcp_hdr *h = &s->p->tcp;
  uint32_t seq = h->seq, len = seg_len(s->p);
  /* H8/H9: in SYN_RCVD after a simultaneous open, the peer's SYN-ACK (its SYN
   * again, acking ours) completes the handshake: its SYN is consumed here (as
   * Linux's tcp_validate_incoming lets it pass step 4). Its SYN is a duplicate
   * (below rcv_nxt), and a duplicate segment is ACKed (§3.10.7.4; Linux's
   * tcp_data_queue does): that ACK is what tells the peer, whose own SYN-ACK
   * may be lost, that its SYN-ACK arrived (issue 13). */
  if (t->state == USTCP_SYN_RCVD && (h->flags & TCP_SYN) && (h->flags & TCP_ACK) && !t->parent &&
      seq + 1 == t->rcv_nxt && h->ack == t->snd_nxt) {
    s->synack_crossed = true;
    t->ack_now = true;
    seq++;
    len--;
  }
  if (!acceptable(t, seq, len)) {
    if (h->flags & TCP_RST) {
      if (rst_seq_matches(t, h->seq)) return reset_by_peer(e, t);
      return SEG_DROP;
    }
    if ((h->flags & TCP_SYN) && !s->synack_crossed) {
      if (t->state == USTCP_SYN_RCVD && t->parent && h->seq == t->irs &&
          (h->flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN) {
        /* The peer's SYN again: our SYN-ACK was lost; resend it, rate-limited
         * (Linux's tcp_check_req, inet_rtx_syn_ack). */
        if (!tcp_oow_rate_limited(e, t, s->p)) {
          tcp_send_syn(e, t);
          t->rtt.timing = false;   /* Karn: the final ACK may answer either copy */
          t->rtt.karn = true;
          t->info.retrans_segs++;
          if (e->stats) e->stats->retrans_segs++;
        }
        return SEG_DROP;
      }
      tcp_send_challenge_ack(e, t);
      return SEG_DROP;
    }
    t->info.dup_segs_in++;
    /* RFC 2883 §4 (Linux's tcp_send_dupack): data below rcv_nxt arrived
     * again; its ACK reports it in a D-SACK block */
    if (s->plen && seq_lt(s->seq, t->rcv_nxt))
      sack_dsack_set(e, t, s->seq, seq_lt(s->seq + s->plen, t->rcv_nxt) ? s->seq + s->plen : t->rcv_nxt);
    /* A duplicate ACK tells the peer where we are; rate-limited so that two
     * stacks (or a stack and its own reflection) cannot ping-pong ACKs. */
    if (!tcp_oow_rate_limited(e, t, s->p)) {
      t->ack_now = true;
      tcp_output(e, t);
    }
    return SEG_DROP;
  }
  /* Trim to the window: what precedes rcv_nxt, and what exceeds the edge. */
  if (seq_lt(s->seq, t->rcv_nxt)) {
    uint32_t skip = t->rcv_nxt - s->seq;
    if (skip > s->plen) skip = s->plen;
    s->data += skip;
    s->plen -= skip;
    if (skip) {
      t->info.dup_segs_in++;
      sack_dsack_set(e, t, s->seq, t->rcv_nxt);   /* partly old: Linux's tcp_data_queue */
    }
    s->seq += skip;
  }
  uint32_t wnd_edge = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv : t->rcv_nxt;
  if (seq_gt(s->seq + s->plen, wnd_edge)) {
    s->plen = seq_gt(wnd_edge, s->seq) ? wnd_edge - s->seq : 0;
    s->fin = false;
    /* Nothing fit (zero window): say so at once (Linux's out_of_window). */
    if (s->plen == 0) t->ack_now = true;
  }
  return SEG_GO;
}

/* Step 2: RST (RFC 5961 §3.2), on the segment's original SEQ. */
static enum verdict check_rst(struct tcp_engine *e, struct tcb *t, const struct seg *s)
{
  const struct tcp_hdr *h = &s->p->tcp;
  if (!(h->flags & TCP_RST)) return SEG_GO;
  if (rst_seq_matches(t, h->seq)) return reset_by_peer(e, t);
  tcp_send_challenge_ack(e, t);
  return SEG_DROP;
}

/* Step 4: SYN in a synchronized state (RFC 5961 §4), whatever its sequence
 * number: a challenge ACK. A passive child in SYN_RCVD getting a new SYN goes
 * away (RFC 9293: "return to LISTEN"). */
static enum verdict check_syn(struct tcp_engine *e, struct tcb *t, const struct seg *s)
{
  if (!(s->p->tcp.flags & TCP_SYN) || s->synack_crossed) return SEG_GO;
  if (t->state == USTCP_SYN_RCVD && t->parent) {
    tcb_close(e, t, 0, USTCP_CAUSE_SEGMENT);
    return SEG_GONE;
  }
  tcp_send_challenge_ack(e, t);
  return SEG_DROP;
}

/* Step 5, the window update (snd_wl1/snd_wl2 rule). A segment that
 * acknowledges new data updates it too, as in Linux (tcp_may_update_window):
 * its (ack, window) pair is current, while a peer's retransmission carries a
 * lower seq than its earlier pure ACKs (which carry its snd_max), and keeping
 * the old snd_wnd from the new snd_una would move the right edge beyond
 * anything the peer advertised (D3). An old ACK (below snd_una) never updates
 * it (§3.10.7.4: only if SND.UNA =< SEG.ACK; Linux's old_ack): its window is
 * stale, yet its seq may pass the snd_wl1 test. */
static void update_send_window(struct tcp_engine *e, struct tcb *t, const struct seg *s,
                               bool acks_new)
{
  const struct tcp_hdr *h = &s->p->tcp;
  if (!seq_geq(h->ack, t->snd_una)) return;
  if (!(acks_new || seq_lt(t->snd_wl1, s->seq) ||
        (t->snd_wl1 == s->seq && seq_leq(t->snd_wl2, h->ack))))
    return;
  uint32_t w = seg_window(t, h);
  if (w > t->snd_wnd && t->persist_at_us) {
    t->persist_at_us = 0;
    t->probes = 0;
    t->probes_stamp_us = 0; /* tcp_ack_probe: the window opened */
    t->backoff = 0;        /* the probes' backoff ends with the zero window */
    timer_update(e, t);
  } else if (w == 0 && t->persist_at_us && t->snd_max == t->snd_una) {
    tcp_rearm_probe0(e, t);   /* still closed: wait from this answer (tcp_ack_probe) */
  }
  t->snd_wnd = w;
  t->max_snd_wnd = u32_max(t->max_snd_wnd, w);
  t->snd_wl1 = s->seq;
  t->snd_wl2 = h->ack;
}

/* Step 5: ACK. In SYN_RCVD it completes the handshake (H2/H8); then RFC 5961
 * §5.2's acceptability, SND.UNA - MAX.SND.WND =< SEG.ACK =< SND.MAX, with the
 * lower bound never below ISS + 1 (Linux's tcp_ack bounds MAX.SND.WND by the
 * bytes acknowledged so far: an ACK for bytes never sent is no old ACK); new
 * data acknowledged (D4), the send window (D3), our FIN acknowledged (W1-W4). */
static enum verdict process_ack(struct tcp_engine *e, struct tcb *t, const struct seg *s)
{
  const struct tcp_hdr *h = &s->p->tcp;
  if (!(h->flags & TCP_ACK)) return SEG_DROP;
  if (t->state == USTCP_SYN_RCVD) {
    if (!seq_gt(h->ack, t->snd_una) || seq_gt(h->ack, t->snd_max)) {
      tcp_send_rst_for(e, s->p);
      return SEG_DROP;
    }
    if (t->parent && !tcp_listen_established(e, t)) {
      /* H6: accept queue full. Linux drops the ACK (the SYN-ACK timer will
       * elicit it again) or, with abort_on_overflow, resets. A dropped ACK
       * leaves no trace: no RTT sample, the SYN-ACK backoff goes on. */
      if (e->cfg->abort_on_overflow) {
        tcp_send_rst_for(e, s->p);
        tcb_close(e, t, 0, USTCP_CAUSE_ERROR);
        return SEG_GONE;
      }
      return SEG_DROP;
    }
    handshake_done(e, t, h, s->seq, h->ack, seg_window(t, h));
    wake(e, t);
  }
  if (seq_gt(h->ack, t->snd_max)) {
    /* Acknowledges something not yet sent (§3.10.7.4 step 5, RFC 5961 §5.2). */
    tcp_send_challenge_ack(e, t);
    return SEG_DROP;
  }
  uint32_t acked_so_far = t->snd_una - (t->iss + 1);
  if (seq_lt(h->ack, t->snd_una - u32_min(t->max_snd_wnd, acked_so_far))) {
    /* RFC 5961 §5.2: too old to be valid. */
    tcp_send_challenge_ack(e, t);
    return SEG_DROP;
  }
  /* RFC 7323 §4.3: the segment is in the window and its ACK acceptable
   * (Linux updates ts_recent here in tcp_ack, not for an old ACK below
   * snd_una). */
  if (seq_geq(h->ack, t->snd_una)) update_ts_recent(e, t, h);
  bool was_fin_acked = fin_acked(t);
  bool acks_new = seq_gt(h->ack, t->snd_una);
  /* Whether this ACK SACKs data not SACKed before (RFC 6675 §2 DupAck (e)). */
  uint32_t sacked_before = t->sack_ok ? sack_bytes(t) : 0;
  /* the scoreboard before this ACK, for RACK's "newly delivered" */
  struct tcp_sack_block prior[TCP_SACK_SCOREBOARD];
  unsigned nprior = t->rack ? t->nsacked : 0;
  if (nprior) memcpy(prior, t->sacked, nprior * sizeof prior[0]);
  if (t->sack_ok) sack_update(t, &h->opts);
  bool sacks_new = t->sack_ok && sack_bytes(t) > sacked_before;
  uint32_t prior_una = t->snd_una, prior_dup = t->rec.dup_bytes;
  /* RFC 3168 §6.1.2: an ECN echo with data in flight starts a reduction,
   * before this ACK's deliveries are counted, as Linux's tcp_ack ->
   * tcp_fastretrans_alert -> tcp_try_to_open -> tcp_enter_cwr (then
   * tcp_cong_control's PRR for this ACK). Nothing in flight: ignored
   * (tcp_ack's no_queue path). */
  if (tcp_ecn_rcv_ecn_echo(t, h) && t->snd_max != t->snd_una && seq_geq(h->ack, t->snd_una))
    tcp_enter_cwr(e, t);
  /* RFC 8985 §6.2 steps 1-4 (before snd_una moves: the ranges it delivered
   * are still on record). Also for an old ACK (below snd_una, acceptable by
   * RFC 5961): its SACK and D-SACK blocks still count, as in Linux's tcp_ack
   * "old_ack" path (tcp_sacktag_write_queue): reordered ACKs carry D-SACKs
   * that undo a spurious recovery and widen the reordering window. */
  if (t->sack_ok) rack_on_ack(e, t, h, prior, nprior, prior_una);
  if (acks_new) {
    ack_advance(e, t, h, sacked_before);
    wake(e, t);
  } else if (h->ack == t->snd_una && s->p->payload_len == 0 && !(h->flags & TCP_FIN) &&
             t->snd_max != t->snd_una &&
             (sacks_new || seg_window(t, h) == t->snd_wnd)) {
    /* A duplicate by RFC 5681's definition (window unchanged) or by RFC
     * 6675's (new SACK information, whatever the window: Linux's receive
     * window moves by a few bytes as its buffer drains, and Linux itself
     * counts SACKed segments, not equal windows). */
    dup_ack(e, t);
  }
  bool hold = false;
  if (rack_active(e, t)) {
    rack_update_reo_wnd(e, t, prior_una);
    /* after a timeout: was it spurious? (Linux's tcp_process_loss: F-RTO,
     * Eifel, D-SACK) */
    if (seq_geq(h->ack, prior_una)) rack_process_loss(e, t, h, acks_new);
    /* Linux's tcp_try_undo_partial: a partial ACK whose hole the original
     * filled */
    if (acks_new && t->rec.in_recovery) {
      int u = rack_try_undo_partial(e, t, h);
      if (u == RACK_UNDO_DONE) {
        t->rec.in_recovery = false;
        rack_recovery_end(t);
      }
      hold = u == RACK_UNDO_HOLD;
    }
    /* Linux's tcp_try_undo_dsack: every retransmission of the episode was
     * D-SACKed; a recovery still running ends (tcp_try_to_open) */
    if (rack_try_undo_dsack(e, t) && t->rec.in_recovery) {
      t->rec.in_recovery = false;
      rack_recovery_end(t);
    }
    /* steps 5-6: RACK marks losses; one starts a recovery (Linux's
     * tcp_time_to_recover: lost_out); not on an ACK tcp_try_undo_partial
     * holds */
    if (!hold) {
      rack_detect_loss(e, t, false);
      rack_recover(e, t);
    }
  }
  if (t->rec.in_recovery || t->rec.in_cwr) {
    /* Data this ACK delivered (Linux's newly_acked_sacked): acknowledged or
     * SACKed for the first time, or duplicate-ACKed without SACK. */
    int64_t delivered = (int64_t)(t->snd_una - prior_una) +
                        (t->sack_ok ? (int64_t)sack_bytes(t) - sacked_before
                                    : (int64_t)t->rec.dup_bytes - prior_dup);
    tcp_prr_ack(t, delivered > 0 ? (uint32_t)delivered : 0, t->snd_una != prior_una);
  }
  update_send_window(e, t, s, acks_new);
  /* after the window update: snd_wnd must be this ACK's, measured from the
   * snd_una it set */
  if (t->rec.in_recovery && !hold) tcp_recovery_send(e, t);
  else if (hold) tcp_output(e, t);   /* new data only (tcp_try_undo_partial) */
  if (acks_new || sacks_new) {
    tcp_tlp_ack(e, t, t->snd_una);
    tcp_schedule_loss_probe(e, t);   /* Linux's tcp_set_xmit_timer */
  }
  if (!was_fin_acked && !fin_acked(t)) return SEG_GO;
  switch (t->state) {
  case USTCP_FIN_WAIT_1:
    /* W3: if this segment also carries the peer's in-order FIN, step 8 takes
     * FIN_WAIT_1 straight to TIME_WAIT. */
    if (!(s->fin && s->seq + s->plen == t->rcv_nxt)) {
      tcb_set_state(e, t, USTCP_FIN_WAIT_2, USTCP_CAUSE_SEGMENT);
      if (t->orphan) {      /* W7: an orphan waits at most fin_timeout */
        t->close_at_us = e->now_us + e->cfg->fin_timeout_us;
        timer_update(e, t);
      }
    }
    return SEG_GO;
  case USTCP_CLOSING:
    return enter_time_wait(e, t) ? SEG_GONE : SEG_DROP;
  case USTCP_LAST_ACK:
    tcb_close(e, t, 0, USTCP_CAUSE_SEGMENT);
    return SEG_GONE;
  default:
    return SEG_GO;
  }
}

/* Step 6: URG (RFC 6093: the pointer marks the byte after the urgent data; the
 * data stays inline, as with SO_OOBINLINE). */
static void process_urg(struct tcb *t, const struct seg *s)
{
  const struct tcp_hdr *h = &s->p->tcp;
  if (!(h->flags & TCP_URG) || !h->urg_ptr) return;
  if (t->state != USTCP_ESTABLISHED && t->state != USTCP_FIN_WAIT_1 &&
      t->state != USTCP_FIN_WAIT_2)
    return;
  uint32_t up = h->seq + h->urg_ptr;
  if (seq_gt(up, t->rcv_up)) t->rcv_up = up;
}

/* Step 7: segment text, in order to the receive buffer, else to the
 * out-of-order queue. Sets *fin_in_order when the FIN is next in sequence. */
static enum verdict process_text(struct tcp_engine *e, struct tcb *t, const struct seg *s,
                                 bool *fin_in_order)
{
  *fin_in_order = false;
  if (s->plen == 0 && !s->fin) return SEG_GO;
  if (t->state != USTCP_ESTABLISHED && t->state != USTCP_FIN_WAIT_1 &&
      t->state != USTCP_FIN_WAIT_2) {
    /* CLOSE_WAIT, CLOSING, LAST_ACK, TIME_WAIT: the peer's FIN came already;
     * nothing new can be valid. */
    return SEG_GO;
  }
  if (t->orphan && s->plen > 0) {
    /* Data for an application that closed: RST (RFC 1122 4.2.2.13, RFC 9293
     * §3.10.4; Linux's TCPAbortOnData) so the peer learns it was not read. As
     * Linux, the RST answers the segment (tcp_rcv_state_process returns 1,
     * tcp_v4_do_rcv sends tcp_v4_send_reset): SEQ = SEG.ACK, no ACK bit. */
    tcp_send_rst_for(e, s->p);
    tcb_close(e, t, 0, USTCP_CAUSE_SEGMENT);
    return SEG_GONE;
  }
  /* RFC 3168 §6.1.3: CWR on data ends our ECEs; CE on data starts them
   * (Linux's tcp_ecn_accept_cwr, tcp_ecn_check_ce). */
  tcp_ecn_accept_cwr(t, s->p, s->plen + (s->fin ? 1u : 0u));
  if (s->plen && tcp_ecn_check_ce(t, s->p)) tcp_enter_quickack_mode(t, 2);
  if (s->seq == t->rcv_nxt) {
    bool filling = t->ooo_count != 0;  /* before delivery drains the queue */
    *fin_in_order = deliver_in_order(e, t, s->data, s->plen, s->fin);
    if (s->plen) {
      tcp_schedule_ack(e, t, s->plen, s->p->tcp.flags);
      if (filling) t->ack_now = true;  /* filling a hole: ACK at once (RFC 5681 §4.2) */
      wake(e, t);
    }
    return SEG_GO;
  }
  t->info.ooo_segs++;
  {
    /* RFC 2883 §4: out-of-order bytes we hold already (Linux's
     * tcp_data_queue_ofo) */
    uint32_t l, r;
    if (ooo_overlap(t, s->seq, s->seq + s->plen, &l, &r)) sack_dsack_set(e, t, l, r);
  }
  if (!ooo_insert(e, t, s->seq, s->data, s->plen, s->fin) && e->stats) e->stats->ooo_dropped++;
  t->ack_now = true;                  /* duplicate ACK tells the sender (D4) */
  return SEG_GO;
}

/* Step 8: FIN, once it is in order: CLOSE_WAIT, CLOSING or TIME_WAIT. */
static enum verdict process_fin(struct tcp_engine *e, struct tcb *t)
{
  t->rcv_nxt++;
  t->rcv_fin = true;
  t->ack_now = true;                    /* W2: the FIN is ACKed at once */
  switch (t->state) {
  case USTCP_SYN_RCVD:
  case USTCP_ESTABLISHED:
    tcb_set_state(e, t, USTCP_CLOSE_WAIT, USTCP_CAUSE_SEGMENT);
    break;
  case USTCP_FIN_WAIT_1:
    if (fin_acked(t)) {
      tcp_send_ack(e, t);
      if (enter_time_wait(e, t)) return SEG_GONE;   /* W3 (or closed: max_tw_buckets) */
    } else {
      tcb_set_state(e, t, USTCP_CLOSING, USTCP_CAUSE_SEGMENT);   /* W4 */
    }
    break;
  case USTCP_FIN_WAIT_2:
    tcp_send_ack(e, t);
    if (enter_time_wait(e, t)) return SEG_GONE;     /* W1 (or closed: max_tw_buckets) */
    break;
  default:
    break;
  }
  wake(e, t);
  return SEG_GO;
}

/* The peer is alive (an acceptable segment that is neither RST nor SYN):
 * keepalive's idle time restarts (RFC 1122 4.2.3.6), and a zero-window probe
 * is answered (see persist_expired). */
static void peer_alive(struct tcp_engine *e, struct tcb *t)
{
  t->last_rcv_us = e->now_us;
  t->keepalive_probes = 0;
  t->probes = 0;
}

/* RFC 8985 §6.3, Linux's tcp_rack_reo_timeout: the reordering window of
 * some segment ran out with no ACK: RACK marks it lost, recovery starts (PRR
 * as for one segment delivered) and retransmits it. */
void tcp_rack_reo_timeout(struct tcp_engine *e, struct tcb *t)
{
  t->reo_armed = false;
  t->tlp_at_us = 0;
  if (rack_active(e, t) && rack_detect_loss(e, t, true)) {
    if (!t->rec.in_recovery) {
      rack_recover(e, t);
      if (t->rec.in_recovery) tcp_prr_ack(t, t->snd_mss, false);
    }
    if (t->rec.in_recovery) tcp_recovery_send(e, t);
  }
  if (!t->reo_armed) tcp_schedule_loss_probe(e, t);
  timer_update(e, t);
  TCP_CHECK_INVARIANTS(e, t);
}

int tcp_input(struct tcp_engine *e, struct tcb *t, const struct tcp_packet *p)
{
  t->info.segs_in++;
  if (p->payload_len) t->info.data_segs_in++;
  if (t->state == USTCP_SYN_SENT) {
    syn_sent_input(e, t, p);
    return 0;
  }
  if (t->state == USTCP_CLOSED || t->state == USTCP_LISTEN) return 0;

  struct seg s = {
    .p = p,
    .seq = p->tcp.seq + !!(p->tcp.flags & TCP_SYN),
    .data = p->payload,
    .plen = (uint32_t)p->payload_len,
    .fin = p->tcp.flags & TCP_FIN,
  };
  /* RFC 7323 §5.3 R1, first of all (Linux's tcp_validate_incoming, "RFC1323:
   * H1. Apply PAWS check first"): a segment older than TS.Recent is a
   * duplicate from an earlier wrap of the sequence space. A RST is still
   * judged by its sequence number; a SYN goes on to the challenge ACK of
   * step 4 (Linux's syn_challenge); anything else is dropped and answered by
   * a duplicate ACK, through the per-connection limiter (tcp_oow_rate_limited,
   * LINUX_MIB_TCPACKSKIPPEDPAWS), so a flood of old segments costs at most
   * one ACK per invalid_ratelimit_us. */
  s.paws_failed = paws_reject(e, t, p);
  if (s.paws_failed && !(p->tcp.flags & (TCP_RST | TCP_SYN))) {
    if (e->stats) e->stats->paws_dropped++;
    if (!tcp_oow_rate_limited(e, t, p)) {
      t->ack_now = true;
      tcp_output(e, t);
    }
    checked(e, t, SEG_DROP);
    return 0;
  }
  if (t->state == USTCP_TIME_WAIT) {
    bool done;
    int r = time_wait_input(e, t, &s, &done);
    if (done) return r;
  }
  /* §3.10.7.4, "Otherwise," first to eighth: each step may end the segment. */
  bool fin_in_order = false;
  enum verdict v = check_sequence(e, t, &s);               /* first */
  if (v == SEG_GO) v = check_rst(e, t, &s);                /* second */
  /* third, security: no compartments here */
  if (v == SEG_GO) v = check_syn(e, t, &s);                /* fourth */
  if (v == SEG_GO) {
    peer_alive(e, t);
    v = process_ack(e, t, &s);                             /* fifth */
  }
  if (v == SEG_GO) {
    process_urg(t, &s);                                    /* sixth */
    v = process_text(e, t, &s, &fin_in_order);             /* seventh */
  }
  if (v == SEG_GO) {
    if (fin_in_order) v = process_fin(e, t);               /* eighth */
    if (v == SEG_GO) tcp_defer_output(e, t);
  }
  checked(e, t, v);
  return 0;
}

void tcp_input_no_conn(struct tcp_engine *e, const struct tcp_packet *p)
{
  e->tw_isn_set = false;   /* a TIME_WAIT reopen with no listener to take it */
  tcp_send_rst_for(e, p);
}
