/* src/wire: bytes <-> structs for IPv4 and TCP (RFC 791, RFC 9293 §3.1), TCP options
 * (RFC 9293 §3.2, RFC 7323, RFC 2018), the Internet checksum (RFC 1071) and
 * sequence-number arithmetic (RFC 9293 §3.4). Pure functions, no state.
 *
 * This is the only layer that reads raw network bytes: every length check lives
 * here. Decoders never read outside [buf, buf+len) and reject malformed input with
 * a distinct negative WIRE_E* code. All multi-byte fields in the structs are in
 * host byte order; IPv4 addresses are host-order uint32_t (192.0.2.1 = 0xC0000201).
 */
#ifndef USTCP_WIRE_H
#define USTCP_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decode errors: each malformation has its own code. */
enum wire_err {
  WIRE_OK = 0,
  WIRE_E_SHORT = -1,        /* buffer shorter than the fixed header */
  WIRE_E_VERSION = -2,      /* IP version is not 4 */
  WIRE_E_IHL = -3,          /* IHL < 5, or IHL*4 > buffer */
  WIRE_E_TOTAL_LEN = -4,    /* total length < IHL*4 or > buffer */
  WIRE_E_IP_CHECKSUM = -5,  /* IPv4 header checksum wrong */
  WIRE_E_FRAGMENT = -6,     /* MF set or fragment offset non-zero (no reassembly) */
  WIRE_E_PROTO = -7,        /* not the expected protocol */
  WIRE_E_DATA_OFFSET = -8,  /* TCP data offset < 5, or data offset*4 > segment */
  WIRE_E_OPT_LEN = -9,      /* option length < 2 or runs past the header */
  WIRE_E_OPT_VALUE = -10,   /* known option with a wrong fixed length (e.g. MSS len != 4) */
  WIRE_E_TCP_CHECKSUM = -11,/* TCP checksum over pseudo-header wrong */
  WIRE_E_NOSPACE = -12,     /* encode: output buffer too small / too many options */
  WIRE_E_IP_OPT = -13,      /* IPv4 option length < 2 (or < 3 for a source route) or
                               running past the header */
};
const char *wire_strerror(int err);

/* ---- IPv4 (RFC 791) ---- */
#define IPPROTO_TCP_ 6
#define IPPROTO_ICMP_ 1
#define IPPROTO_UDP_ 17
#define IPV4_HDR_LEN 20
#define IPV4_FLAG_DF 0x2
#define IPV4_FLAG_MF 0x1

struct ipv4_hdr {
  uint8_t version;     /* 4 */
  uint8_t ihl;         /* header length in 32-bit words (5..15) */
  uint8_t tos;         /* DSCP (6 bits) + ECN (2 bits, IP_ECN_MASK) */
  uint16_t total_len;  /* header + payload, bytes */
  uint16_t id;
  uint8_t flags;       /* IPV4_FLAG_DF | IPV4_FLAG_MF */
  uint16_t frag_off;   /* in 8-byte units */
  uint8_t ttl;
  uint8_t proto;
  uint16_t checksum;   /* as found on decode; computed on encode */
  uint32_t src;
  uint32_t dst;
  uint8_t opt_flags;   /* IPV4_OPT_*: what the options (IHL > 5) carry */
};
/* The ECN field, the low two bits of tos (RFC 3168 §5) */
#define IP_ECN_MASK 0x03
#define IP_ECN_NOT_ECT 0x00
#define IP_ECN_ECT1 0x01
#define IP_ECN_ECT0 0x02
#define IP_ECN_CE 0x03
/* IPv4 options (RFC 791 §3.1) that ipv4_decode reports in opt_flags */
#define IPOPT_EOL_ 0
#define IPOPT_NOP_ 1
#define IPOPT_LSRR_ 131      /* Loose Source and Record Route */
#define IPOPT_SSRR_ 137      /* Strict Source and Record Route */
#define IPV4_OPT_SRR 0x01    /* a source route (LSRR or SSRR) is present */

/* Decodes and validates an IPv4 header (version, IHL, total length, header checksum,
 * option lengths: WIRE_E_IP_OPT; a source route sets IPV4_OPT_SRR in opt_flags).
 * Fragments are decoded (no WIRE_E_FRAGMENT here); the caller decides. On success
 * *payload and *payload_len describe the bytes after the header up to total_len (any
 * link padding past total_len is excluded). Returns WIRE_OK or WIRE_E_*. */
int ipv4_decode(const uint8_t *buf, size_t len, struct ipv4_hdr *out,
                const uint8_t **payload, size_t *payload_len);

/* Writes a 20-byte IPv4 header (no options) for h with h->total_len as given,
 * computing the checksum. Returns bytes written (20) or WIRE_E_NOSPACE. */
int ipv4_encode(const struct ipv4_hdr *h, uint8_t *buf, size_t cap);

/* ---- TCP (RFC 9293 §3.1) ---- */
#define TCP_HDR_LEN 20
#define TCP_MAX_HDR_LEN 60
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

/* Option kinds. */
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2        /* len 4, RFC 9293 §3.2 */
#define TCPOPT_WSCALE 3     /* len 3, RFC 7323 §2 */
#define TCPOPT_SACK_PERM 4  /* len 2, RFC 2018 */
#define TCPOPT_SACK 5       /* len 2+8n, RFC 2018 */
#define TCPOPT_TS 8         /* len 10, RFC 7323 §3 */

/* Bits of tcp_opts.present */
#define TCP_OPT_HAS_MSS 0x01
#define TCP_OPT_HAS_WSCALE 0x02
#define TCP_OPT_HAS_SACK_PERM 0x04
#define TCP_OPT_HAS_SACK 0x08
#define TCP_OPT_HAS_TS 0x10

#define TCP_MAX_SACK_BLOCKS 4

struct tcp_sack_block {
  uint32_t left;   /* first sequence number of the block */
  uint32_t right;  /* sequence number just past the block */
};

struct tcp_opts {
  uint8_t present;        /* TCP_OPT_HAS_* */
  uint16_t mss;
  uint8_t wscale;         /* as sent; the receiver clamps to 14 (RFC 7323 §2.3) */
  uint8_t sack_count;     /* 0..TCP_MAX_SACK_BLOCKS */
  struct tcp_sack_block sack[TCP_MAX_SACK_BLOCKS];
  uint32_t ts_val;
  uint32_t ts_ecr;
  uint8_t unknown_count;  /* options skipped by length on decode (ignored on encode) */
};

struct tcp_hdr {
  uint16_t src_port;
  uint16_t dst_port;
  uint32_t seq;
  uint32_t ack;
  uint8_t data_off;   /* header length in 32-bit words; computed on encode */
  uint8_t reserved;   /* the 4 reserved bits (decode only; encode writes 0) */
  uint8_t flags;      /* TCP_FIN .. TCP_CWR */
  uint16_t window;    /* raw field, unscaled */
  uint16_t checksum;  /* as found on decode; computed on encode */
  uint16_t urg_ptr;
  struct tcp_opts opts;
};

/* Decodes a TCP segment (header, options). Does NOT verify the checksum (see
 * tcp_checksum_ok), so that a caller may count bad checksums separately.
 * On success *payload and *payload_len describe the data after the header. */
int tcp_decode(const uint8_t *seg, size_t len, struct tcp_hdr *out,
               const uint8_t **payload, size_t *payload_len);

/* Length in bytes of the options tcp_encode would write for o (padded to 4). */
size_t tcp_opts_len(const struct tcp_opts *o);

/* Encodes header + options + payload into buf, computing data_off and the
 * checksum with the pseudo-header of (src_ip, dst_ip). Options are written in the
 * order MSS, SACK_PERM, TS, WSCALE, SACK, with NOP padding for alignment.
 * Returns the segment length or WIRE_E_NOSPACE. payload may be NULL if plen == 0. */
int tcp_encode(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
               uint32_t src_ip, uint32_t dst_ip, uint8_t *buf, size_t cap);

/* tcp_encode with the IPv6 pseudo-header (RFC 8200 §8.1) of src and dst. */
int tcp_encode6(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                const uint8_t src[16], const uint8_t dst[16], uint8_t *buf, size_t cap);

/* ---- checksums (RFC 1071) ---- */
/* Adds the 16-bit big-endian words of data to a running 32-bit sum. An odd length
 * is padded with a zero byte. */
uint32_t inet_csum_add(uint32_t sum, const void *data, size_t len);
/* Folds carries and returns the one's complement (the value to put in a header). */
uint16_t inet_csum_fold(uint32_t sum);
/* The Internet checksum of a buffer (e.g. an IPv4 header with checksum field zero). */
uint16_t inet_checksum(const void *data, size_t len);
/* The pseudo-header sum for TCP over IPv4 (RFC 9293 §3.1): src, dst, zero, proto, length. */
uint32_t tcp_pseudo_sum(uint32_t src_ip, uint32_t dst_ip, uint8_t proto, uint16_t len);
/* True when the checksum of seg (header+data, checksum field as received) is valid. */
bool tcp_checksum_ok(uint32_t src_ip, uint32_t dst_ip, const uint8_t *seg, size_t len);

/* ---- a whole IPv4+TCP packet ---- */
struct tcp_packet {
  struct ipv4_hdr ip;       /* for IPv6 (v6), src and dst hold the stack's handles of the
                               addresses (struct tcp_ep) and ttl the hop limit */
  bool v6;                  /* false from the decoders; the IPv6 input path sets it */
  struct tcp_hdr tcp;
  const uint8_t *payload;   /* points into the decoded buffer */
  size_t payload_len;
};
/* Decodes IPv4 then TCP, and verifies both checksums. Rejects fragments
 * (WIRE_E_FRAGMENT) and non-TCP (WIRE_E_PROTO). */
int tcp_packet_decode(const uint8_t *buf, size_t len, struct tcp_packet *out);
/* The TCP half of tcp_packet_decode, for a caller that decoded (and checked) the
 * IPv4 header itself: seg/seg_len is its payload. Copies *ip into out->ip. */
int tcp_segment_decode(const struct ipv4_hdr *ip, const uint8_t *seg, size_t seg_len,
                       struct tcp_packet *out);
/* As tcp_segment_decode, but without verifying the TCP checksum: only for
 * packets whose link driver vouches for it (a TUN frame the kernel marked
 * CHECKSUM_PARTIAL or DATA_VALID; ustcp_input_flags). */
int tcp_segment_decode_csum_verified(const struct ipv4_hdr *ip, const uint8_t *seg,
                                     size_t seg_len, struct tcp_packet *out);

/* Encodes a whole IPv4+TCP packet (ttl 64, DF set, id given in ip_id). Returns the
 * packet length or WIRE_E_NOSPACE. */
int tcp_packet_encode(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                      uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id,
                      uint8_t *buf, size_t cap);
/* As tcp_packet_encode, with the IP header's TOS byte (DSCP and the ECN field,
 * RFC 3168 §5) set to tos. */
int tcp_packet_encode_tos(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                          uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id, uint8_t tos,
                          uint8_t *buf, size_t cap);

/* One piece of a payload that lies in several places (a send-buffer run that
 * wraps): for tcp_packet_encode_gather. */
struct wire_slice {
  const uint8_t *base;
  size_t len;
};
/* As tcp_packet_encode, but writes only the IPv4 and TCP headers into buf: the
 * payload stays where it is, as the concatenation of the npl slices (any
 * lengths, odd ones included), and is summed there for the TCP checksum. The
 * packet is buf[0..return) followed by the slices. Returns the header length
 * or WIRE_E_NOSPACE. */
int tcp_packet_encode_gather(const struct tcp_hdr *h, const struct wire_slice *pl, size_t npl,
                             uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id,
                             uint8_t *buf, size_t cap);
/* As tcp_packet_encode_gather, with the TOS byte (the ECN field, RFC 3168). */
int tcp_packet_encode_gather_tos(const struct tcp_hdr *h, const struct wire_slice *pl,
                                 size_t npl, uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id,
                                 uint8_t tos, uint8_t *buf, size_t cap);
/* As tcp_packet_encode_tos, with the TCP checksum left to the link (checksum
 * offload): the field holds the pseudo-header sum only, as a CHECKSUM_PARTIAL
 * skb's (csum_start = the IPv4 header's end, csum_offset 16), and the payload
 * is copied without being summed. */
int tcp_packet_encode_partial(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                              uint32_t src_ip, uint32_t dst_ip, uint16_t ip_id, uint8_t tos,
                              uint8_t *buf, size_t cap);

/* As tcp_encode6 (the TCP segment only), the checksum left to the link: the
 * field holds the IPv6 pseudo-header sum (csum_start = the IPv6 header's end). */
int tcp_encode6_partial(const struct tcp_hdr *h, const uint8_t *payload, size_t plen,
                        const uint8_t src[16], const uint8_t dst[16], uint8_t *buf, size_t cap);

/* ---- software GSO (gso.c) ----
 * Splits a TCP/IPv4 frame, or a TCP/IPv6 one whose TCP header follows the
 * fixed IPv6 header (no extension headers: what the stack sends), whose payload is larger than gso_size into segments
 * of gso_size payload bytes (the last one shorter), as Linux's software GSO
 * (inet_gso_segment + tcp_gso_segment) and a TSO NIC do: each segment has the
 * frame's headers with the IPv4 total length, an IPv4 ID one higher than the
 * previous segment's, the header checksum, and the TCP sequence number moved
 * by the bytes before it; FIN and PSH only on the last segment, CWR only on
 * the first; the TCP checksum complete (whatever the frame's field held: a
 * full sum or the pseudo-header sum of checksum offload). gso_size 0, or a
 * payload that fits, gives one segment with its checksum completed. Each
 * segment is built in out (outcap bytes: at least the headers + gso_size)
 * and handed to fn. Returns the number of segments, or WIRE_E_* for a frame
 * that is not TCP/IPv4 with consistent lengths (nothing handed on). */
typedef void (*tcp_gso_fn)(void *ctx, const uint8_t *seg, size_t len);
int tcp_gso_segment(const uint8_t *pkt, size_t len, uint32_t gso_size, uint8_t *out,
                    size_t outcap, tcp_gso_fn fn, void *ctx);

/* Formats flags packetdrill-style: "S", "S.", ".", "P.", "F.", "R.", "R" ... into
 * buf (at least 10 bytes). Order: F S R P then "." for ACK, then U E W for URG ECE CWR. */
const char *tcp_flags_str(uint8_t flags, char *buf, size_t cap);

/* Formats an IPv4 address "a.b.c.d" into buf (at least 16 bytes). */
const char *ipv4_str(uint32_t addr, char *buf, size_t cap);
/* Parses "a.b.c.d"; returns 0 and *addr, or -1. */
int ipv4_parse(const char *s, uint32_t *addr);

#endif
