/* ICMP errors about a connection (RFC 5927, RFC 1122 4.2.3.9, RFC 1191), the way
 * Linux's tcp_v4_err() treats them.
 *
 *   tcp_icmp_error
 *     RFC 5927 §4.1 check: the quoted sequence number lies in [snd_una, snd_max]
 *       (something we sent and is not yet acknowledged); else ignored
 *     source quench            ignored (RFC 6633)
 *     frag needed (PMTUD)      snd_mss lowered to mtu - 40 (IPv6: mtu - 60, the
 *                              stack maps Packet Too Big to this), unacked data resent
 *     hard error in SYN_SENT   the attempt fails (port unreachable -> ECONNREFUSED)
 *       or an active SYN_RCVD
 *     hard error, passive      the half-open child goes away (Linux's tcp_req_err)
 *       SYN_RCVD child
 *     otherwise                a soft error: remembered, reported if the connection
 *                              later times out (RFC 1122: MUST NOT abort; RFC 5461
 *                              and Linux without IP_RECVERR treat hard errors in
 *                              synchronized states as soft too)
 * The stack (src/stack/ip_icmp.c) has already matched the quoted 4-tuple.
 */
#include "tcp/tcp.h"
#include "wire/icmp.h"

/* Linux's icmp_err_convert[]: errno and whether it is fatal, per unreachable code. */
static const struct { int err; bool fatal; } unreach[ICMP_NR_UNREACH_CODES] = {
  {ENETUNREACH, false},  /* 0 net unreachable */
  {EHOSTUNREACH, false}, /* 1 host unreachable */
  {ENOPROTOOPT, true},   /* 2 protocol unreachable */
  {ECONNREFUSED, true},  /* 3 port unreachable */
  {EMSGSIZE, false},     /* 4 fragmentation needed (handled apart) */
  {EOPNOTSUPP, false},   /* 5 source route failed */
  {ENETUNREACH, true},   /* 6 destination net unknown */
  {EHOSTDOWN, true},     /* 7 destination host unknown */
  {ENONET, true},        /* 8 source host isolated */
  {ENETUNREACH, true},   /* 9 net administratively prohibited */
  {EHOSTUNREACH, true},  /* 10 host administratively prohibited */
  {ENETUNREACH, false},  /* 11 net unreachable for TOS */
  {EHOSTUNREACH, false}, /* 12 host unreachable for TOS */
  {EHOSTUNREACH, true},  /* 13 communication administratively prohibited */
  {EHOSTUNREACH, true},  /* 14 host precedence violation */
  {EHOSTUNREACH, true},  /* 15 precedence cutoff in effect */
};

/* Linux's ip_rt_min_pmtu: an ICMP claiming a smaller MTU is not believed
 * (RFC 1191 §3 lets a host ignore implausible values; 552 resists PMTU attacks). */
#define TCP_MIN_PMTU 552u

static void pmtu_reduce(struct tcp_engine *e, struct tcb *t, uint16_t mtu)
{
  /* RFC 1191 §5: a router too old to give the next-hop MTU sends 0; Linux then
   * ignores the message for TCP (it would guess from a plateau table). */
  if (mtu == 0) return;
  /* IPv6 (RFC 8201 §4, Linux's tcp_v6_mtu_reduced): a Packet Too Big below the
   * IPv6 minimum MTU of 1280 (RFC 8200 §5) lowers the path MTU to 1280 only. */
  uint32_t floor = t->local.v6 ? 1280u : TCP_MIN_PMTU;
  uint32_t iph = t->local.v6 ? 40u : IPV4_HDR_LEN;
  uint32_t m = mtu < floor ? floor : mtu;
  uint32_t mss = m - iph - TCP_HDR_LEN - tcp_opt_space(t);   /* tcp_current_mss */
  if (mss >= t->snd_mss) return;                 /* only ever lowered */
  t->snd_mss = (uint16_t)mss;
  if (t->state == USTCP_SYN_SENT || t->state == USTCP_SYN_RCVD) return;
  /* Linux (tcp_simple_retransmit): what was sent too big is lost; resend it in
   * smaller segments now, without treating it as congestion (no cwnd cut). */
  if (t->snd_una != t->snd_max) {
    t->snd_nxt = t->snd_una;
    t->rtt.timing = false;                       /* Karn: resent bytes give no sample */
    t->rtt.karn = true;
    tcp_output(e, t);
  }
}

void tcp_icmp_error(struct tcp_engine *e, struct tcb *t, uint8_t type, uint8_t code,
                    uint32_t seq, uint16_t mtu)
{
  if (t->state == USTCP_CLOSED || t->state == USTCP_LISTEN || t->state == USTCP_TIME_WAIT)
    return;
  /* RFC 5927 §4.1 (and Linux): a blind attacker must guess an in-flight sequence
   * number; anything outside what is sent and unacknowledged is ignored. */
  if (!seq_between(seq, t->snd_una, t->snd_max)) return;
  int err;
  bool fatal;
  switch (type) {
  case ICMP_SOURCE_QUENCH:
    return;                                     /* RFC 6633: ignored */
  case ICMP_DEST_UNREACH:
    if (code >= ICMP_NR_UNREACH_CODES) return;
    if (code == ICMP_FRAG_NEEDED) {
      pmtu_reduce(e, t, mtu);
      return;
    }
    err = unreach[code].err;
    fatal = unreach[code].fatal;
    break;
  case ICMP_TIME_EXCEEDED:
    err = EHOSTUNREACH;
    fatal = false;
    break;
  case ICMP_PARAM_PROBLEM:
    err = EPROTO;
    fatal = true;
    break;
  default:
    return;
  }
  if (fatal && t->state == USTCP_SYN_SENT) {
    /* RFC 1122 4.2.3.9 says hard errors SHOULD abort; Linux does so only while
     * connecting: connect() fails with e.g. ECONNREFUSED for port unreachable. */
    if (e->stats) e->stats->attempt_fails++;
    tcb_close(e, t, -err, USTCP_CAUSE_ERROR);
    return;
  }
  if (fatal && t->state == USTCP_SYN_RCVD) {
    if (t->parent) {
      tcb_close(e, t, 0, USTCP_CAUSE_ERROR);    /* Linux tcp_req_err: drop the request */
    } else {
      if (e->stats) e->stats->attempt_fails++;
      tcb_close(e, t, -err, USTCP_CAUSE_ERROR); /* simultaneous open still connecting */
    }
    return;
  }
  t->soft_error = -err;
}
