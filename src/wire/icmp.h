/* src/wire/icmp: bytes <-> structs for ICMP over IPv4 (RFC 792, RFC 1191 for the
 * next-hop MTU of "fragmentation needed") and the 8-byte UDP header (RFC 768),
 * which the stack reads only to answer "port unreachable". Pure functions, no
 * state; every length check lives here (DESIGN.md §6), like wire.h.
 */
#ifndef USTCP_WIRE_ICMP_H
#define USTCP_WIRE_ICMP_H

#include <stddef.h>
#include <stdint.h>
#include "wire/wire.h"

#define ICMP_HDR_LEN 8
#define ICMP_ECHO_REPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_SOURCE_QUENCH 4
#define ICMP_ECHO_REQUEST 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAM_PROBLEM 12
/* Codes of ICMP_DEST_UNREACH (RFC 792, RFC 1122 3.2.2.1, RFC 1812 5.2.7.1) */
#define ICMP_NET_UNREACH 0
#define ICMP_HOST_UNREACH 1
#define ICMP_PROTO_UNREACH 2
#define ICMP_PORT_UNREACH 3
#define ICMP_FRAG_NEEDED 4
#define ICMP_NR_UNREACH_CODES 16

/* ICMP decode errors, beyond the shared WIRE_E_* codes (WIRE_E_SHORT). */
#define ICMP_E_CHECKSUM (-20)   /* ICMP checksum wrong */
#define ICMP_E_QUOTE (-21)      /* an error message quotes no usable IPv4 header + 8 bytes */
#define UDP_E_LENGTH (-22)      /* UDP length field < 8 or past the datagram */
#define UDP_E_CHECKSUM (-23)    /* UDP checksum wrong (0 = none, allowed on IPv4) */
const char *icmp_strerror(int err);

struct icmp_msg {
  uint8_t type;
  uint8_t code;
  uint16_t checksum;      /* as found */
  uint32_t rest;          /* bytes 4..7: id<<16|seq (echo), next-hop MTU in the low 16 bits (frag needed) */
  const uint8_t *data;    /* after the 8-byte header */
  size_t data_len;
};
static inline uint16_t icmp_echo_id(const struct icmp_msg *m) { return (uint16_t)(m->rest >> 16); }
static inline uint16_t icmp_echo_seq(const struct icmp_msg *m) { return (uint16_t)m->rest; }
static inline uint16_t icmp_next_mtu(const struct icmp_msg *m) { return (uint16_t)m->rest; }
static inline int icmp_is_error(uint8_t type)
{
  return type == ICMP_DEST_UNREACH || type == ICMP_SOURCE_QUENCH ||
         type == ICMP_TIME_EXCEEDED || type == ICMP_PARAM_PROBLEM;
}

/* Decodes an ICMP message (the IPv4 payload) and verifies its checksum.
 * Returns WIRE_OK, WIRE_E_SHORT or ICMP_E_CHECKSUM. */
int icmp_decode(const uint8_t *buf, size_t len, struct icmp_msg *out);

/* What an ICMP error quotes (RFC 792: the original IPv4 header and at least the
 * first 64 bits of its data). The quoted header's total length describes the
 * original datagram, not the quote, so only the header itself is checked. */
struct icmp_quote {
  uint8_t proto;
  uint32_t src, dst;      /* host order */
  uint16_t src_port, dst_port;  /* TCP/UDP: the first 4 bytes of the transport header */
  uint32_t tcp_seq;       /* TCP: bytes 4..7 (the sequence number) */
};
/* Decodes the quote in an error message's data. Returns WIRE_OK or ICMP_E_QUOTE. */
int icmp_quote_decode(const uint8_t *data, size_t len, struct icmp_quote *out);

/* Writes a whole IPv4 packet (20-byte header, ttl 64, the given tos) carrying one
 * ICMP message with header bytes 4..7 = rest and then data, checksums computed.
 * Returns the packet length or WIRE_E_NOSPACE. */
int icmp_packet_encode(uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id, uint8_t tos,
                       uint8_t type, uint8_t code, uint32_t rest,
                       const uint8_t *data, size_t data_len, uint8_t *buf, size_t cap);

/* How much of an offending datagram of orig_len bytes an error quotes: as much as
 * fits in 576 bytes with the new IPv4 and ICMP headers (RFC 1812 4.3.2.3, as
 * Linux does), never less than what is there. */
size_t icmp_error_quote_len(size_t orig_len);

/* ---- UDP (RFC 768): the header only ---- */
struct udp_hdr {
  uint16_t src_port, dst_port, length, checksum;
};
/* Decodes the UDP header of an IPv4 payload and verifies the checksum when it is
 * non-zero. Returns WIRE_OK, WIRE_E_SHORT, UDP_E_LENGTH or UDP_E_CHECKSUM. */
int udp_decode(uint32_t src_ip, uint32_t dst_ip, const uint8_t *buf, size_t len,
               struct udp_hdr *out);
#endif
