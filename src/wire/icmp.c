/* src/wire/icmp.c: the ICMP and UDP codecs declared in icmp.h.
 *
 *   icmp_decode          8-byte header + checksum (RFC 792)
 *   icmp_quote_decode    the IPv4 header + 8 bytes an error message quotes
 *   icmp_packet_encode   IPv4 header + ICMP header + data
 *   udp_decode           RFC 768 header, length and optional checksum
 *
 * Nothing here reads outside [buf, buf+len).
 */
#include "wire/icmp.h"
#include "wire/bytes.h"

#include <string.h>

const char *icmp_strerror(int err)
{
  switch (err) {
  case ICMP_E_CHECKSUM: return "bad ICMP checksum";
  case ICMP_E_QUOTE: return "ICMP error quotes no usable datagram";
  case UDP_E_LENGTH: return "bad UDP length";
  case UDP_E_CHECKSUM: return "bad UDP checksum";
  default: return wire_strerror(err);
  }
}

int icmp_decode(const uint8_t *buf, size_t len, struct icmp_msg *out)
{
  if (len < ICMP_HDR_LEN) return WIRE_E_SHORT;
  /* The checksum covers the whole message (RFC 792), so a valid one sums to 0. */
  if (inet_checksum(buf, len) != 0) return ICMP_E_CHECKSUM;
  memset(out, 0, sizeof *out);
  out->type = buf[0];
  out->code = buf[1];
  out->checksum = be16(buf + 2);
  out->rest = be32(buf + 4);
  out->data = buf + ICMP_HDR_LEN;
  out->data_len = len - ICMP_HDR_LEN;
  return WIRE_OK;
}

int icmp_quote_decode(const uint8_t *data, size_t len, struct icmp_quote *out)
{
  if (len < IPV4_HDR_LEN) return ICMP_E_QUOTE;
  if ((data[0] >> 4) != 4) return ICMP_E_QUOTE;
  size_t hlen = (size_t)(data[0] & 0x0f) * 4;
  /* RFC 792: the header and "the first 64 bits of the original data datagram";
   * the transport ports and TCP's sequence number live in those 8 bytes. */
  if (hlen < IPV4_HDR_LEN || hlen + 8 > len) return ICMP_E_QUOTE;
  memset(out, 0, sizeof *out);
  out->proto = data[9];
  out->src = be32(data + 12);
  out->dst = be32(data + 16);
  out->src_port = be16(data + hlen);
  out->dst_port = be16(data + hlen + 2);
  out->tcp_seq = be32(data + hlen + 4);
  return WIRE_OK;
}

int icmp_packet_encode(uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id, uint8_t tos,
                       uint8_t type, uint8_t code, uint32_t rest,
                       const uint8_t *data, size_t data_len, uint8_t *buf, size_t cap)
{
  size_t total = IPV4_HDR_LEN + ICMP_HDR_LEN + data_len;
  if (total > cap || total > 0xffff) return WIRE_E_NOSPACE;
  uint8_t *m = buf + IPV4_HDR_LEN;
  m[0] = type;
  m[1] = code;
  put16(m + 2, 0);
  put32(m + 4, rest);
  if (data_len) memmove(m + ICMP_HDR_LEN, data, data_len);
  put16(m + 2, inet_checksum(m, ICMP_HDR_LEN + data_len));
  struct ipv4_hdr ip = {
    .version = 4, .ihl = 5, .tos = tos, .total_len = (uint16_t)total, .id = ip_id,
    .ttl = 64, .proto = IPPROTO_ICMP_, .src = src_ip, .dst = dst_ip,
  };
  if (ipv4_encode(&ip, buf, cap) < 0) return WIRE_E_NOSPACE;
  return (int)total;
}

size_t icmp_error_quote_len(size_t orig_len)
{
  size_t room = 576 - IPV4_HDR_LEN - ICMP_HDR_LEN;
  return orig_len < room ? orig_len : room;
}

int udp_decode(uint32_t src_ip, uint32_t dst_ip, const uint8_t *buf, size_t len,
               struct udp_hdr *out)
{
  if (len < 8) return WIRE_E_SHORT;
  uint16_t ulen = be16(buf + 4);
  if (ulen < 8 || ulen > len) return UDP_E_LENGTH;
  memset(out, 0, sizeof *out);
  out->src_port = be16(buf);
  out->dst_port = be16(buf + 2);
  out->length = ulen;
  out->checksum = be16(buf + 6);
  /* RFC 768: a zero checksum means the sender computed none (IPv4 only). */
  if (out->checksum != 0) {
    uint32_t sum = tcp_pseudo_sum(src_ip, dst_ip, IPPROTO_UDP_, ulen);
    if (inet_csum_fold(inet_csum_add(sum, buf, ulen)) != 0) return UDP_E_CHECKSUM;
  }
  return WIRE_OK;
}
