/* IPv4 datagrams that are not TCP: ICMP in and out, and the "unreachable"
 * answers for UDP and unknown protocols (DESIGN.md §2).
 *
 *   ip_in (stack.c) -> WIRE_E_PROTO -> stack_ip_other
 *     ICMP echo request        -> echo reply (RFC 792, RFC 1122 3.2.2.6)
 *     ICMP error about TCP     -> quoted 4-tuple -> tcp_icmp_error (RFC 5927 checks
 *                                 and the reaction live in src/tcp/tcp_icmp.c)
 *     UDP                      -> port unreachable (no UDP sockets: RFC 1122 4.1.3.1)
 *     any other protocol       -> protocol unreachable (RFC 1122 3.2.2.1)
 *
 * Packets reach here past ip_in's checks (stack.c): from a unicast source other
 * than ours, to our address, not source-routed, not a fragment. Every message
 * is built in its notice (notify_packet_begin), never on the C stack.
 * ICMP errors are never sent about an ICMP error, a fragment other than the
 * first, or a datagram whose source is not one host (RFC 1122 3.2.2), and at most
 * ICMP_MSGS_PER_SEC a second with a burst of ICMP_MSGS_BURST (Linux's
 * net.ipv4.icmp_msgs_per_sec / icmp_msgs_burst). Echo replies are not limited
 * (Linux's icmp_ratemask leaves them out).
 */
#include <stdlib.h>
#include <string.h>
#include "stack/stack.h"
#include "wire/icmp.h"

#define ICMP_MSGS_PER_SEC 1000u
#define ICMP_MSGS_BURST 50u

/* Builds one ICMP message in its notice (notify.c: the callbacks get it at the
 * end of the event) and sends it; never to a non-unicast address. */
/* A message larger than the MTU (an echo reply to a reassembled request): sent
 * in fragments, as Linux's ip_fragment does for a datagram without DF (RFC 791
 * §3.2: every fragment but the last carries a multiple of 8 bytes). TCP never
 * needs this: its segments fit the MSS and carry DF. */
static void icmp_send_fragmented(struct ustcp_stack *s, uint32_t dst, uint8_t tos, uint8_t type,
                                 uint8_t code, uint32_t rest, const uint8_t *data, size_t dlen)
{
  size_t total = IPV4_HDR_LEN + 8 + dlen;
  uint8_t *whole = malloc(total);
  if (!whole) {
    s->stats.alloc_failures++;
    return;
  }
  uint16_t id = s->ip_id++;
  int n = icmp_packet_encode(s->local_ip, dst, id, tos, type, code, rest, data, dlen, whole,
                             total);
  if (n <= 0) {
    free(whole);
    return;
  }
  size_t chunk = ((size_t)s->cfg.mtu - IPV4_HDR_LEN) & ~(size_t)7;
  size_t body = (size_t)n - IPV4_HDR_LEN;
  for (size_t off = 0; off < body; off += chunk) {
    size_t len = body - off < chunk ? body - off : chunk;
    bool more = off + len < body;
    uint8_t *buf = notify_packet_begin(s, false, IPV4_HDR_LEN + len);
    if (!buf) break;
    struct ipv4_hdr ip = {.version = 4, .ihl = 5, .tos = tos,
                          .total_len = (uint16_t)(IPV4_HDR_LEN + len), .id = id,
                          .flags = more ? IPV4_FLAG_MF : 0, .frag_off = (uint16_t)(off / 8),
                          .ttl = whole[8], .proto = whole[9], .src = s->local_ip, .dst = dst};
    int hn = ipv4_encode(&ip, buf, IPV4_HDR_LEN);
    if (hn > 0) memcpy(buf + IPV4_HDR_LEN, whole + IPV4_HDR_LEN + off, len);
    if (hn > 0) s->stats.ip_out++;
    notify_packet_end(s, buf, hn > 0 ? IPV4_HDR_LEN + len : 0, hn > 0);
  }
  s->stats.icmp_out++;
  free(whole);
}

static void icmp_send(struct ustcp_stack *s, uint32_t dst, uint8_t tos, uint8_t type,
                      uint8_t code, uint32_t rest, const uint8_t *data, size_t dlen)
{
  if (!stack_addr_unicast(dst)) {
    s->stats.ip_out_martian++;
    return;
  }
  size_t cap = IPV4_HDR_LEN + 8 + dlen;
  if (cap > s->cfg.mtu) {
    icmp_send_fragmented(s, dst, tos, type, code, rest, data, dlen);
    return;
  }
  uint8_t *buf = notify_packet_begin(s, false, cap);
  if (!buf) return;
  int n = icmp_packet_encode(s->local_ip, dst, s->ip_id++, tos, type, code, rest, data, dlen,
                             buf, cap);
  if (n > 0) {
    s->stats.ip_out++;
    s->stats.icmp_out++;
  }
  notify_packet_end(s, buf, n > 0 ? (size_t)n : 0, n > 0);
}

bool stack_icmp_error_allowed(struct ustcp_stack *s)
{
  /* Token bucket: ICMP_MSGS_PER_SEC tokens a second, at most ICMP_MSGS_BURST. */
  uint64_t now = s->eng.now_us;
  if (!s->icmp_bucket_init) {
    s->icmp_bucket_init = true;
    s->icmp_tokens = ICMP_MSGS_BURST;
    s->icmp_tokens_at_us = now;
  }
  uint64_t add = (now - s->icmp_tokens_at_us) * ICMP_MSGS_PER_SEC / USTCP_SEC;
  if (add) {
    s->icmp_tokens = (uint32_t)(s->icmp_tokens + add > ICMP_MSGS_BURST ? ICMP_MSGS_BURST
                                                                       : s->icmp_tokens + add);
    s->icmp_tokens_at_us = now;
  }
  if (!s->icmp_tokens) return false;
  s->icmp_tokens--;
  return true;
}

static void send_unreachable(struct ustcp_stack *s, const struct ipv4_hdr *ip,
                             const uint8_t *pkt, uint8_t code)
{
  /* RFC 1122 3.2.2: not about a fragment other than the first, nor to a source
   * that is not one host (ip_in has already dropped those: checked again here,
   * where the rule applies). */
  if (ip->frag_off != 0 || !stack_addr_unicast(ip->src)) return;
  if (!stack_icmp_error_allowed(s)) {
    s->stats.icmp_out_ratelimited++;   /* Linux: ICMP_MIB_RATELIMITHOST */
    return;
  }
  /* The quote: the offending datagram as received, header first. */
  size_t qlen = icmp_error_quote_len(ip->total_len);
  /* Linux sends its errors with tos = IPTOS_PREC_INTERNETCONTROL (0xc0). */
  icmp_send(s, ip->src, 0xc0, ICMP_DEST_UNREACH, code, 0, pkt, qlen);
}

static void icmp_in(struct ustcp_stack *s, const struct ipv4_hdr *ip, const uint8_t *msg,
                    size_t mlen)
{
  struct icmp_msg m;
  if (icmp_decode(msg, mlen, &m) != WIRE_OK) {
    s->stats.ip_bad++;
    return;
  }
  s->stats.icmp_in++;
  if (m.type == ICMP_ECHO_REQUEST && m.code == 0) {
    if (!stack_addr_unicast(ip->src)) return;
    icmp_send(s, ip->src, ip->tos, ICMP_ECHO_REPLY, 0, m.rest, m.data, m.data_len);
    return;
  }
  if (!icmp_is_error(m.type)) return;         /* replies, timestamps ...: ignored */
  struct icmp_quote q;
  /* RFC 5927 §4.1: the quoted datagram must be one we sent: our address and a
   * connection with exactly that 4-tuple; the sequence check is the engine's.
   * An error about anything else (a forged or stale quote) is dropped, counted. */
  struct tcb *t = NULL;
  if (icmp_quote_decode(m.data, m.data_len, &q) == WIRE_OK && q.proto == IPPROTO_TCP_ &&
      q.src == s->local_ip)
    t = stack_lookup_af(s, false, q.src, q.src_port, q.dst, q.dst_port);
  if (!t) {
    s->stats.icmp_err_unmatched++;
    return;
  }
  tcp_icmp_error(&s->eng, t, m.type, m.code, q.tcp_seq,
                 m.type == ICMP_DEST_UNREACH && m.code == ICMP_FRAG_NEEDED ? icmp_next_mtu(&m) : 0);
}

void stack_ip_other(struct ustcp_stack *s, const struct ipv4_hdr *ip, const uint8_t *pkt,
                    const uint8_t *payload, size_t plen)
{
  /* ip_in has checked the header, the source, the destination (ours), source
   * routes and fragments. */
  switch (ip->proto) {
  case IPPROTO_ICMP_:
    icmp_in(s, ip, payload, plen);
    break;
  case IPPROTO_UDP_: {
    struct udp_hdr u;
    if (udp_decode(ip->src, ip->dst, payload, plen, &u) != WIRE_OK) {
      s->stats.ip_bad++;
      return;
    }
    send_unreachable(s, ip, pkt, ICMP_PORT_UNREACH);
    break;
  }
  default:
    send_unreachable(s, ip, pkt, ICMP_PROTO_UNREACH);
    break;
  }
}
