/* IPv6 and ICMPv6 codecs (see ipv6.h). Nothing here reads outside
 * [buf, buf+len); every length comes from the packet and is checked against it
 * before use. */
#include "wire/ipv6.h"
#include "wire/bytes.h"
#include "wire/wire.h"

#include <string.h>

const char *ipv6_strerror(int err)
{
  switch (err) {
  case IPV6_E_SHORT: return "IPv6 packet shorter than its header or payload length";
  case IPV6_E_VERSION: return "IP version is not 6";
  case IPV6_E_JUMBO: return "IPv6 jumbogram (payload length 0)";
  case IPV6_E_EXT_LEN: return "IPv6 extension header runs past the payload";
  case IPV6_E_HBH_NOT_FIRST: return "IPv6 Hop-by-Hop header not first";
  case IPV6_E_EXT_LIMIT: return "too many IPv6 extension headers or options";
  case IPV6_E_OPT_LEN: return "IPv6 option runs past its header";
  case IPV6_E_OPT_UNKNOWN: return "unrecognised IPv6 option to discard";
  case IPV6_E_ROUTING: return "IPv6 Routing header with segments left";
  case IPV6_E_FRAGMENT: return "IPv6 fragment";
  case IPV6_E_NO_NEXT: return "IPv6 No Next Header";
  case IPV6_E_ESP: return "IPv6 ESP/AH (not supported)";
  case ICMP6_E_SHORT: return "ICMPv6 message shorter than its header";
  case ICMP6_E_CHECKSUM: return "bad ICMPv6 checksum";
  case IPV6_E_NOSPACE: return "no room for the IPv6 packet";
  default: return wire_strerror(err);
  }
}

static void param_problem(struct ipv6_pkt *out, uint8_t code, size_t pointer)
{
  out->param_problem = true;
  out->pp_code = code;
  out->pp_pointer = (uint32_t)pointer;
}

/* The TLV options of a Hop-by-Hop or Destination Options header occupying
 * [off, end) (RFC 8200 §4.2). Pad1 and PadN are skipped; every option is
 * unrecognised here (ustcp implements none), so its action bits decide. */
static int walk_options(const uint8_t *buf, size_t off, size_t end, const struct ipv6_hdr *h,
                        unsigned *nopts, struct ipv6_pkt *out)
{
  size_t i = off + 2;
  while (i < end) {
    uint8_t type = buf[i];
    if (type == 0) {               /* Pad1 */
      i++;
      continue;
    }
    if (++*nopts > IPV6_MAX_OPTS) return IPV6_E_EXT_LIMIT;
    if (i + 2 > end || i + 2 + buf[i + 1] > end) return IPV6_E_OPT_LEN;
    if (type != 1) {               /* not PadN: unrecognised */
      switch (type >> 6) {
      case 0: break;               /* skip over it */
      case 1: return IPV6_E_OPT_UNKNOWN;
      case 2:
        param_problem(out, 2, i);
        return IPV6_E_OPT_UNKNOWN;
      default:
        if (!ipv6_is_multicast(h->dst)) param_problem(out, 2, i);
        return IPV6_E_OPT_UNKNOWN;
      }
    }
    i += 2u + buf[i + 1];
  }
  return WIRE_OK;
}

int ipv6_decode(const uint8_t *buf, size_t len, struct ipv6_pkt *out)
{
  memset(out, 0, sizeof *out);
  if (len < IPV6_HDR_LEN) return IPV6_E_SHORT;
  if ((buf[0] >> 4) != 6) return IPV6_E_VERSION;
  struct ipv6_hdr *h = &out->h;
  uint32_t w = be32(buf);
  h->tclass = (uint8_t)(w >> 20);
  h->flow = w & 0xfffffu;
  h->payload_len = be16(buf + 4);
  h->next_header = buf[6];
  h->hop_limit = buf[7];
  memcpy(h->src, buf + 8, 16);
  memcpy(h->dst, buf + 24, 16);
  if (h->payload_len == 0) return IPV6_E_JUMBO;
  if (len < (size_t)IPV6_HDR_LEN + h->payload_len) return IPV6_E_SHORT;
  /* Bytes past the payload (link padding) are not part of the packet. */
  size_t end = (size_t)IPV6_HDR_LEN + h->payload_len;
  size_t off = IPV6_HDR_LEN, nh_field = 6;
  uint8_t nh = h->next_header;
  unsigned nopts = 0;
  for (;;) {
    switch (nh) {
    case IPPROTO_HOPOPTS_:
    case IPPROTO_DSTOPTS_:
    case IPPROTO_ROUTING_: {
      if (nh == IPPROTO_HOPOPTS_ && off != IPV6_HDR_LEN) {
        /* §4.3: only right after the IPv6 header; elsewhere an unrecognised
         * Next Header value (Parameter Problem code 1 at the field naming it). */
        param_problem(out, 1, nh_field);
        return IPV6_E_HBH_NOT_FIRST;
      }
      if (++out->n_ext > IPV6_MAX_EXT) return IPV6_E_EXT_LIMIT;
      if (off + 8 > end) return IPV6_E_EXT_LEN;
      size_t hlen = ((size_t)buf[off + 1] + 1) * 8;
      if (off + hlen > end) return IPV6_E_EXT_LEN;
      if (nh == IPPROTO_ROUTING_) {
        /* §4.4: Segments Left 0 -> ignored; otherwise this host would have to
         * forward, which it never does: every routing type is unrecognised to
         * it (and type 0 is deprecated, RFC 5095). */
        if (buf[off + 3] != 0) {
          param_problem(out, 0, off + 2);
          return IPV6_E_ROUTING;
        }
      } else {
        int rc = walk_options(buf, off, off + hlen, h, &nopts, out);
        if (rc != WIRE_OK) return rc;
      }
      nh_field = off;
      nh = buf[off];
      off += hlen;
      break;
    }
    case IPPROTO_FRAGMENT_: {
      if (++out->n_ext > IPV6_MAX_EXT) return IPV6_E_EXT_LIMIT;
      if (off + 8 > end) return IPV6_E_EXT_LEN;
      uint16_t fo = be16(buf + off + 2);
      out->frag.offset = fo >> 3;
      out->frag.more = fo & 1;
      out->frag.id = be32(buf + off + 4);
      out->frag.next = buf[off];
      out->frag.data_off = off + 8;
      out->proto = buf[off];
      out->upper_off = off + 8;
      out->upper_len = end - (off + 8);
      return IPV6_E_FRAGMENT;
    }
    case IPPROTO_NONE_:
      return IPV6_E_NO_NEXT;
    case IPPROTO_ESP_:
    case IPPROTO_AH_:
      return IPV6_E_ESP;
    default:
      out->proto = nh;
      out->upper_off = off;
      out->upper_len = end - off;
      return WIRE_OK;
    }
  }
}

int ipv6_encode(const struct ipv6_hdr *h, uint8_t *buf, size_t cap)
{
  if (cap < IPV6_HDR_LEN) return IPV6_E_NOSPACE;
  put32(buf, 6u << 28 | (uint32_t)h->tclass << 20 | (h->flow & 0xfffffu));
  put16(buf + 4, h->payload_len);
  buf[6] = h->next_header;
  buf[7] = h->hop_limit;
  memcpy(buf + 8, h->src, 16);
  memcpy(buf + 24, h->dst, 16);
  return IPV6_HDR_LEN;
}

uint32_t ipv6_pseudo_sum(const uint8_t src[16], const uint8_t dst[16], uint32_t upper_len,
                         uint8_t proto)
{
  uint32_t sum = inet_csum_add(0, src, 16);
  sum = inet_csum_add(sum, dst, 16);
  sum += upper_len >> 16;
  sum += upper_len & 0xffff;
  sum += proto;
  return sum;
}

int icmp6_decode(const uint8_t src[16], const uint8_t dst[16], const uint8_t *buf, size_t len,
                 struct icmp6_msg *out)
{
  memset(out, 0, sizeof *out);
  if (len < ICMP6_HDR_LEN) return ICMP6_E_SHORT;
  /* RFC 4443 §2.3: the checksum covers the pseudo-header and the message; a
   * valid one sums to zero. */
  uint32_t sum = ipv6_pseudo_sum(src, dst, (uint32_t)len, IPPROTO_ICMPV6_);
  if (inet_csum_fold(inet_csum_add(sum, buf, len)) != 0) return ICMP6_E_CHECKSUM;
  out->type = buf[0];
  out->code = buf[1];
  out->rest = be32(buf + 4);
  out->data = buf + ICMP6_HDR_LEN;
  out->data_len = len - ICMP6_HDR_LEN;
  return WIRE_OK;
}

int icmp6_encode(const uint8_t src[16], const uint8_t dst[16], uint8_t type, uint8_t code,
                 uint32_t rest, const uint8_t *data, size_t data_len, uint8_t *buf, size_t cap)
{
  size_t len = ICMP6_HDR_LEN + data_len;
  if (len > cap || len > 0xffff) return IPV6_E_NOSPACE;
  buf[0] = type;
  buf[1] = code;
  put16(buf + 2, 0);
  put32(buf + 4, rest);
  if (data_len) memmove(buf + ICMP6_HDR_LEN, data, data_len);
  uint32_t sum = ipv6_pseudo_sum(src, dst, (uint32_t)len, IPPROTO_ICMPV6_);
  put16(buf + 2, inet_csum_fold(inet_csum_add(sum, buf, len)));
  return (int)len;
}
