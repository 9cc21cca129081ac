/* Explicit Congestion Notification (RFC 3168 §6.1), as Linux does it
 * (net/ipv4/tcp_input.c and tcp_output.c, the tcp_ecn_* functions; the names
 * below are theirs).
 *
 *   negotiation   connect() with tcp_ecn=1 sends an ECN-setup SYN (ECE|CWR);
 *                 only the first SYN: its retransmissions go without them, in
 *                 case a middlebox drops ECN-setup SYNs (tcp_ecn_clear_syn,
 *                 tcp_ecn_fallback=1). An ECN-setup SYN-ACK (ECE without CWR)
 *                 makes the connection ECN capable, anything else not. A
 *                 listener with tcp_ecn 1 or 2 answers a Not-ECT SYN carrying
 *                 ECE and CWR with ECE on its SYN-ACK (tcp_ecn_create_request);
 *                 SYN cookies keep the answer in bit 5 of the TSval.
 *   sending       new data segments are ECT(0); pure ACKs, retransmissions,
 *                 SYNs and FINs without data are Not-ECT (§6.1.4, §6.1.5;
 *                 tcp_ecn_send). CWR goes on the first new data segment after a
 *                 reduction; ECE on every segment while the receiver owes it.
 *   receiving     a CE mark on data makes every segment carry ECE until the
 *                 peer's CWR arrives on data, and ACKs go at once for a while
 *                 (tcp_ecn_check_ce, tcp_ecn_accept_cwr).
 *   reacting      an ACK with ECE reduces cwnd as a loss would, without a
 *                 retransmission: ssthresh from the congestion control, then
 *                 PRR down to it over one window, and no other reduction until
 *                 an ACK passes snd_max of the start (tcp_enter_cwr,
 *                 tcp_cwnd_reduction). A flood of ECE ACKs therefore costs one
 *                 reduction per window of data, as one loss would.
 *
 * On a connection without ECN the ECE and CWR bits and the IP ECN field of
 * what arrives change nothing.
 */
#include "tcp/tcp.h"

bool tcp_ecn_syn_requests(const struct tcp_hdr *h)
{
  return (h->flags & (TCP_ECE | TCP_CWR)) == (TCP_ECE | TCP_CWR);
}

bool tcp_ecn_create_request(const struct tcb *l, const struct tcp_packet *p)
{
  /* RFC 3168 §6.1.1: a SYN must be Not-ECT; Linux refuses ECN to an ECT one
   * (tcp_ecn_create_request: !INET_ECN_is_not_ect). */
  return l->ecn_mode != 0 && tcp_ecn_syn_requests(&p->tcp) &&
         (p->ip.tos & IP_ECN_MASK) == IP_ECN_NOT_ECT;
}

void tcp_ecn_send_syn(struct tcb *t)
{
  t->ecn = t->ecn_mode == 1 ? TCP_ECN_OK : 0;
}

void tcp_ecn_rcv_synack(struct tcb *t, const struct tcp_hdr *h)
{
  /* An ECN-setup SYN-ACK has ECE and not CWR (RFC 3168 §6.1.1). */
  if ((t->ecn & TCP_ECN_OK) && (!(h->flags & TCP_ECE) || (h->flags & TCP_CWR))) t->ecn = 0;
  t->ecn &= (uint8_t)~TCP_ECN_SYN_SENT;
}

void tcp_ecn_rcv_syn(struct tcb *t, const struct tcp_hdr *h)
{
  /* Simultaneous open: both SYNs must have asked. */
  if ((t->ecn & TCP_ECN_OK) && !tcp_ecn_syn_requests(h)) t->ecn = 0;
}

uint8_t tcp_ecn_out(struct tcb *t, uint32_t seq, uint32_t plen, uint8_t *flags)
{
  if (!(t->ecn & TCP_ECN_OK)) return IP_ECN_NOT_ECT;
  if (*flags & TCP_SYN) {
    if (!(*flags & TCP_ACK)) {
      /* tcp_ecn_send_syn, then tcp_ecn_clear_syn on every retransmission */
      if (!(t->ecn & TCP_ECN_SYN_SENT)) *flags |= TCP_ECE | TCP_CWR;
      t->ecn |= TCP_ECN_SYN_SENT;
    } else {
      *flags |= TCP_ECE;                /* tcp_ecn_make_synack, tcp_ecn_send_synack */
    }
    return IP_ECN_NOT_ECT;
  }
  uint8_t tos = IP_ECN_NOT_ECT;
  /* New data (not below snd_max, ustcp's name for Linux's snd_nxt). */
  if (plen && seq_geq(seq, t->snd_max)) {
    tos = IP_ECN_ECT0;
    if (t->ecn & TCP_ECN_QUEUE_CWR) {
      t->ecn &= (uint8_t)~TCP_ECN_QUEUE_CWR;
      *flags |= TCP_CWR;
    }
  }
  if (t->ecn & TCP_ECN_DEMAND_CWR) *flags |= TCP_ECE;
  return tos;
}

void tcp_ecn_accept_cwr(struct tcb *t, const struct tcp_packet *p, uint32_t seg_len)
{
  if (!(t->ecn & TCP_ECN_OK) || !(p->tcp.flags & TCP_CWR) || !seg_len) return;
  t->ecn &= (uint8_t)~TCP_ECN_DEMAND_CWR;
  /* the sender's cwnd may be down to a segment: ACK it at once */
  t->ack_now = true;
}

bool tcp_ecn_check_ce(struct tcb *t, const struct tcp_packet *p)
{
  if (!(t->ecn & TCP_ECN_OK)) return false;
  switch (p->ip.tos & IP_ECN_MASK) {
  case IP_ECN_NOT_ECT:
    /* Not-ECT after ECT was seen: probably a retransmission, ACK quickly */
    return (t->ecn & TCP_ECN_SEEN) != 0;
  case IP_ECN_CE:
    t->ecn |= TCP_ECN_SEEN;
    if (t->ecn & TCP_ECN_DEMAND_CWR) return false;
    /* "Better not delay acks, sender can have a very low cwnd" */
    t->ecn |= TCP_ECN_DEMAND_CWR;
    return true;
  default:
    t->ecn |= TCP_ECN_SEEN;
    return false;
  }
}

bool tcp_ecn_rcv_ecn_echo(const struct tcb *t, const struct tcp_hdr *h)
{
  return (t->ecn & TCP_ECN_OK) && (h->flags & TCP_ECE) && !(h->flags & TCP_SYN);
}

void tcp_enter_cwr(struct tcp_engine *e, struct tcb *t)
{
  /* Only from the open state: not while already reducing (CWR or recovery),
   * not after a timeout until new data is acknowledged (Linux's Loss state). */
  if (t->rec.in_cwr || t->rec.in_recovery || t->backoff) return;
  /* tcp_init_cwnd_reduction */
  t->rec.cwr_high = t->snd_max;
  t->rec.prior_cwnd = u32_max(t->cc.cwnd, t->snd_mss);
  t->rec.prr_delivered = 0;
  t->rec.prr_out = 0;
  /* Linux's ssthresh() hooks halve (or cut by beta) cwnd, as RFC 3168 §6.1.2
   * says for ECE: the window, not the flight, is what is reduced. */
  cc_congestion_event(e, t, t->cc.cwnd);
  t->rec.in_cwr = true;
  t->ecn |= TCP_ECN_QUEUE_CWR;
}
