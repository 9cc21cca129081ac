/* IPv6 in and out (issue 16; RFC 8200, RFC 4443, RFC 8201), in the order of
 * Linux's ipv6_rcv and ip6_input_finish:
 *
 *   ip6_in  -> ipv6_decode (src/wire/ipv6.c: the fixed header and the extension
 *              chain, walked with bounds: IPV6_MAX_EXT headers, IPV6_MAX_OPTS
 *              options; a malformed chain costs at most that walk)
 *           -> martian source (::, ::1, multicast, v4-mapped, ours from the link)
 *           -> not our address (no multicast served: no ND here)
 *           -> refusals by extension header: Parameter Problem where RFC 8200
 *              asks for one (rate limited), else dropped; all counted
 *           -> fragments: dropped and counted (no reassembly, RFC 8200 §4.5
 *              not implemented)
 *           -> TCP (pseudo-header checksum of RFC 8200 §8.1, then the same
 *              demultiplexer as IPv4 with the addresses as handles, struct tcp_ep)
 *           -> ICMPv6: echo request -> reply (RFC 4443 §4.2); errors about our
 *              connections (quoted 4-tuple, then src/tcp/tcp_icmp.c with the
 *              ICMPv4 meaning of the message, Linux's icmpv6_err_convert);
 *              Packet Too Big lowers the path MTU (RFC 8201 §4)
 *           -> UDP: port unreachable; any other next header: Parameter Problem
 *              code 1 (RFC 8200 §4), both rate limited with ICMPv4's bucket
 *
 * Every packet is built in its notice (notify.c), never on the C stack.
 */
#include <stdlib.h>
#include <string.h>
#include "stack/stack.h"
#include "wire/bytes.h"
#include "wire/icmp.h"
#include "wire/ipv6.h"

#define IPV6_MIN_MTU 1280u
#define HOP_LIMIT 64u               /* Linux's net.ipv6.conf.*.hop_limit */

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Not one host: RFC 4291 §2.5.2 (unspecified), §2.5.3 (loopback, never on a
 * link), §2.7 (multicast), and v4-mapped (Linux's ipv6_rcv drops those as a
 * source, RFC 4291 §2.5.5.2: never on the wire). */
static bool addr6_unicast(const uint8_t a[16])
{
  static const uint8_t any[16];
  static const uint8_t loop[16] = {[15] = 1};
  return memcmp(a, any, 16) && memcmp(a, loop, 16) && !ipv6_is_multicast(a) &&
         memcmp(a, v4mapped_prefix, 12);
}

/* One IPv6 datagram from us to dst: the fixed header, then the upper layer the
 * caller writes at the returned pointer (up to ulen bytes). NULL if refused or
 * out of memory (counted). */
static uint8_t *ip6_begin(struct ustcp_stack *s, const uint8_t dst[16], size_t ulen,
                          bool *looped)
{
  if (!addr6_unicast(dst)) {
    s->stats.ip_out_martian++;
    return NULL;
  }
  *looped = !memcmp(dst, s->local_ip6, 16);
  return notify_packet_begin(s, *looped, IPV6_HDR_LEN + ulen);
}

static void ip6_finish(struct ustcp_stack *s, uint8_t *pkt, const uint8_t dst[16], uint8_t proto,
                       uint8_t tclass, int ulen, bool looped)
{
  if (ulen < 0) {
    notify_packet_end(s, pkt, 0, false);
    return;
  }
  struct ipv6_hdr h = {.tclass = tclass, .payload_len = (uint16_t)ulen, .next_header = proto,
                       .hop_limit = HOP_LIMIT};
  memcpy(h.src, s->local_ip6, 16);
  memcpy(h.dst, dst, 16);
  ipv6_encode(&h, pkt, IPV6_HDR_LEN);
  size_t n = IPV6_HDR_LEN + (size_t)ulen;
  s->stats.ip6_out++;
  if (looped) {
    notify_packet_end(s, pkt, n, s->capture_fn != NULL);
    stack_loop_queue(s, pkt, n);
    return;
  }
  notify_packet_end(s, pkt, n, true);
}

void ip6_output_tcp(struct ustcp_stack *s, uint32_t src, uint32_t dst, uint8_t tclass,
                    const struct tcp_hdr *h, const struct tcp_iov *pl, size_t npl,
                    uint32_t gso_size)
{
  (void)src;                        /* one IPv6 address: ours */
  if (!s->has_ip6) return;
  const uint8_t *d = a6_bytes(&s->eng, dst);
  size_t plen = 0;
  for (size_t i = 0; i < npl; i++) plen += pl[i].len;
  size_t olen = tcp_opts_len(&h->opts);
  size_t thlen = TCP_HDR_LEN + (olen < TCP_MAX_HDR_LEN ? olen : TCP_MAX_HDR_LEN);
  bool looped;
  uint8_t *pkt = ip6_begin(s, d, TCP_MAX_HDR_LEN + plen, &looped);
  if (!pkt) return;
  const uint8_t *payload = npl ? pl[0].base : NULL;
  if (npl > 1) {
    /* laid end to end where the payload goes; tcp_encode6 sums it in place */
    uint8_t *w = pkt + IPV6_HDR_LEN + thlen;
    for (size_t i = 0; i < npl; i++) {
      memcpy(w, pl[i].base, pl[i].len);
      w += pl[i].len;
    }
    payload = pkt + IPV6_HDR_LEN + thlen;
  }
  /* The link completes the checksum and cuts frames (ustcp_set_link_offload,
   * TSO6); a packet to ourselves gets it whole, as it never meets the link. */
  bool partial = s->tx_csum && !looped;
  uint32_t nsegs = gso_size && plen > gso_size ? (uint32_t)((plen + gso_size - 1) / gso_size) : 1;
  int n = partial ? tcp_encode6_partial(h, payload, plen, s->local_ip6, d, pkt + IPV6_HDR_LEN,
                                        TCP_MAX_HDR_LEN + plen)
                  : tcp_encode6(h, payload, plen, s->local_ip6, d, pkt + IPV6_HDR_LEN,
                                TCP_MAX_HDR_LEN + plen);
  if (n >= 0) {
    s->stats.tcp_out += nsegs;
    s->stats.ip6_out += nsegs - 1;   /* ip6_finish counts one */
    if (!looped) notify_packet_tx(pkt, nsegs > 1 ? (uint16_t)gso_size : 0, partial);
  }
  /* the Traffic Class carries the ECN field as IPv4's TOS does (RFC 3168 §5) */
  ip6_finish(s, pkt, d, IPPROTO_TCP_, tclass, n, looped);
}

static void icmp6_send(struct ustcp_stack *s, const uint8_t dst[16], uint8_t tclass, uint8_t type,
                       uint8_t code, uint32_t rest, const uint8_t *data, size_t dlen)
{
  bool looped;
  size_t ulen = ICMP6_HDR_LEN + dlen;
  if (IPV6_HDR_LEN + ulen > s->cfg.mtu) return;     /* no fragments sent either */
  uint8_t *pkt = ip6_begin(s, dst, ulen, &looped);
  if (!pkt) return;
  int n = icmp6_encode(s->local_ip6, dst, type, code, rest, data, dlen, pkt + IPV6_HDR_LEN, ulen);
  if (n >= 0) s->stats.icmp6_out++;
  ip6_finish(s, pkt, dst, IPPROTO_ICMPV6_, tclass, n, looped);
}

/* An ICMPv6 error about a datagram we received (RFC 4443 §2.4): never about an
 * ICMPv6 error, to a source that is not one host, or past the rate limit; it
 * quotes as much of the datagram as fits the minimum MTU (§2.4 (c)). */
static void icmp6_error(struct ustcp_stack *s, const struct ipv6_pkt *ip, const uint8_t *pkt,
                        size_t len, uint8_t type, uint8_t code, uint32_t rest)
{
  if (!addr6_unicast(ip->h.src)) return;
  if (ip->proto == IPPROTO_ICMPV6_ && ip->upper_len >= 1 &&
      pkt[ip->upper_off] < 128)
    return;                         /* §2.4 (e.1): not about an error message */
  if (!stack_icmp_error_allowed(s)) {
    s->stats.icmp_out_ratelimited++;
    return;
  }
  size_t room = IPV6_MIN_MTU - IPV6_HDR_LEN - ICMP6_HDR_LEN;
  icmp6_send(s, ip->h.src, 0, type, code, rest, pkt, len < room ? len : room);
}

/* Linux's icmpv6_err_convert, expressed as the ICMPv4 message of the same
 * meaning so src/tcp/tcp_icmp.c applies one policy (RFC 5927 checks, hard and
 * soft errors). Returns false for messages TCP ignores. */
static bool icmp6_as_v4(uint8_t type, uint8_t code, uint8_t *t4, uint8_t *c4)
{
  switch (type) {
  case ICMP6_DST_UNREACH:
    *t4 = ICMP_DEST_UNREACH;
    switch (code) {
    case 0: *c4 = ICMP_NET_UNREACH; return true;     /* no route: ENETUNREACH, soft */
    case 2: case 3: *c4 = ICMP_HOST_UNREACH; return true;   /* EHOSTUNREACH, soft */
    case 4: *c4 = ICMP_PORT_UNREACH; return true;    /* ECONNREFUSED, hard */
    case 1: case 5: case 6: *c4 = 13; return true;   /* prohibited: hard (Linux: EACCES) */
    default: return false;
    }
  case ICMP6_PACKET_TOO_BIG:
    *t4 = ICMP_DEST_UNREACH;
    *c4 = ICMP_FRAG_NEEDED;
    return true;
  case ICMP6_TIME_EXCEEDED:
    *t4 = ICMP_TIME_EXCEEDED;
    *c4 = 0;
    return true;
  case ICMP6_PARAM_PROB:
    *t4 = ICMP_PARAM_PROBLEM;
    *c4 = 0;
    return true;
  default:
    return false;
  }
}

static void icmp6_in(struct ustcp_stack *s, const struct ipv6_pkt *ip, const uint8_t *pkt)
{
  struct icmp6_msg m;
  if (icmp6_decode(ip->h.src, ip->h.dst, pkt + ip->upper_off, ip->upper_len, &m) != WIRE_OK) {
    s->stats.ip6_bad++;
    return;
  }
  s->stats.icmp6_in++;
  if (m.type == ICMP6_ECHO_REQUEST && m.code == 0) {
    icmp6_send(s, ip->h.src, ip->h.tclass, ICMP6_ECHO_REPLY, 0, m.rest, m.data, m.data_len);
    return;
  }
  uint8_t t4, c4;
  if (m.type >= 128 || !icmp6_as_v4(m.type, m.code, &t4, &c4)) return;
  /* RFC 5927 §4.1 as for ICMPv4: the quote must be a segment we sent (our
   * address, a connection with that 4-tuple); the sequence check is the
   * engine's. We send no extension headers, so TCP follows the fixed header. */
  struct tcb *t = NULL;
  const uint8_t *q = m.data;
  uint32_t rh;
  if (m.data_len >= IPV6_HDR_LEN + 8 && (q[0] >> 4) == 6 && q[6] == IPPROTO_TCP_ &&
      !memcmp(q + 8, s->local_ip6, 16) && a6_find(&s->eng, q + 24, &rh) && rh != 0)
    t = stack_lookup_af(s, true, s->local6_h, be16(q + IPV6_HDR_LEN), rh,
                     be16(q + IPV6_HDR_LEN + 2));
  if (!t) {
    s->stats.icmp_err_unmatched++;
    return;
  }
  uint16_t mtu = 0;
  if (m.type == ICMP6_PACKET_TOO_BIG) {
    mtu = m.rest > 0xffff ? 0xffff : (uint16_t)m.rest;
    if (mtu == 0) return;
    uint16_t before = t->snd_mss;
    tcp_icmp_error(&s->eng, t, t4, c4, be32(q + IPV6_HDR_LEN + 4), mtu);
    if (t->snd_mss < before) s->stats.icmp6_ptb++;
    return;
  }
  tcp_icmp_error(&s->eng, t, t4, c4, be32(q + IPV6_HDR_LEN + 4), mtu);
}

static void tcp6_in(struct ustcp_stack *s, const struct ipv6_pkt *ip, const uint8_t *pkt,
                    unsigned flags)
{
  const uint8_t *seg = pkt + ip->upper_off;
  size_t seg_len = ip->upper_len;
  /* RFC 8200 §8.1: the checksum covers the pseudo-header; unlike IPv4's UDP a
   * zero field is no exception for TCP. */
  if (!(flags & USTCP_IN_CSUM_VERIFIED)) {
    uint32_t sum = ipv6_pseudo_sum(ip->h.src, ip->h.dst, (uint32_t)seg_len, IPPROTO_TCP_);
    if (inet_csum_fold(inet_csum_add(sum, seg, seg_len)) != 0) {
      s->stats.tcp_bad_checksum++;
      return;
    }
  }
  /* The addresses as handles for the length of this packet's processing: the
   * peer's is interned (a reference the connection it creates keeps), ours is
   * the stack's. */
  uint32_t src_h;
  if (a6_intern(&s->eng, ip->h.src, &src_h) < 0) return;    /* counted in alloc_failures */
  struct ipv4_hdr fake = {.version = 6, .ttl = ip->h.hop_limit, .tos = ip->h.tclass,
                          .proto = IPPROTO_TCP_, .src = src_h, .dst = s->local6_h};
  struct tcp_packet p;
  int rc = tcp_segment_decode_csum_verified(&fake, seg, seg_len, &p);
  if (rc == WIRE_OK) {
    p.v6 = true;
    stack_tcp_in(s, &p);
  } else {
    s->stats.tcp_malformed++;
  }
  a6_unref(&s->eng, src_h);
}

void ip6_in(struct ustcp_stack *s, const uint8_t *pkt, size_t len, bool from_link,
            unsigned flags)
{
  s->stats.ip6_in++;
  notify_capture_in(s, pkt, len);
  struct ipv6_pkt ip;
  int rc = ipv6_decode(pkt, len, &ip);
  if (rc == IPV6_E_SHORT || rc == IPV6_E_VERSION || rc == IPV6_E_JUMBO) {
    s->stats.ip6_bad++;
    return;
  }
  /* The fixed header is sound from here (the extension chain may not be). */
  if (!addr6_unicast(ip.h.src) ||
      (from_link && s->has_ip6 && !memcmp(ip.h.src, s->local_ip6, 16) && !s->cfg.accept_local)) {
    s->stats.ip6_martian_src++;
    return;
  }
  if (!s->has_ip6 || memcmp(ip.h.dst, s->local_ip6, 16)) {
    s->stats.ip6_not_for_us++;
    return;
  }
  switch (rc) {
  case WIRE_OK:
    break;
  case IPV6_E_FRAGMENT:
    s->stats.ip6_frag_dropped++;
    return;
  case IPV6_E_EXT_LEN: case IPV6_E_OPT_LEN:
    s->stats.ip6_bad++;
    return;
  default:
    /* Routing with segments left, an option to discard, Hop-by-Hop not first,
     * No Next Header, ESP/AH, past the walk's bounds. */
    s->stats.ip6_ext_dropped++;
    if (ip.param_problem)
      icmp6_error(s, &ip, pkt, IPV6_HDR_LEN + ip.h.payload_len, ICMP6_PARAM_PROB, ip.pp_code,
                  ip.pp_pointer);
    return;
  }
  switch (ip.proto) {
  case IPPROTO_TCP_:
    tcp6_in(s, &ip, pkt, flags);
    break;
  case IPPROTO_ICMPV6_:
    icmp6_in(s, &ip, pkt);
    break;
  case IPPROTO_UDP_:
    /* no UDP sockets: port unreachable (RFC 4443 §3.1 code 4) */
    icmp6_error(s, &ip, pkt, IPV6_HDR_LEN + ip.h.payload_len, ICMP6_DST_UNREACH, 4, 0);
    break;
  default:
    /* RFC 8200 §4: an unrecognised Next Header -> Parameter Problem code 1,
     * pointing at that field (the fixed header's when there is no extension;
     * otherwise silently dropped: the decoder does not keep where it was). */
    s->stats.ip6_ext_dropped++;
    if (ip.n_ext == 0)
      icmp6_error(s, &ip, pkt, IPV6_HDR_LEN + ip.h.payload_len, ICMP6_PARAM_PROB, 1, 6);
    break;
  }
}
