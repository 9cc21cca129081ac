/* src/wire: IPv6 (RFC 8200) and ICMPv6 (RFC 4443) bytes <-> structs, the first
 * piece of issue 16 (the stack does not speak IPv6 yet: these are the codecs
 * it will use, fuzzed from the start).
 *
 *   ipv6_decode    the fixed header, then the extension-header chain walked
 *                  with bounds (RFC 8200 §4): Hop-by-Hop only first (§4.3),
 *                  options processed by their action bits (§4.2), a Routing
 *                  header with Segments Left > 0 refused (a host forwards
 *                  nothing; RFC 5095 deprecates type 0), a Fragment header
 *                  reported (no reassembly here), at most IPV6_MAX_EXT headers
 *                  and IPV6_MAX_OPTS options in all (RFC 9098: limits make
 *                  long chains cheap to refuse); ends at the upper layer
 *   ipv6_encode    the fixed header (ustcp sends no extension headers)
 *   ipv6_pseudo_sum the upper-layer checksum's pseudo-header (RFC 8200 §8.1)
 *   icmp6_decode / icmp6_encode  RFC 4443 §2.1 messages, checksum included
 *
 * Addresses are 16 bytes in network order. Decoders never read outside
 * [buf, buf+len); every refusal has its own code, and for those RFC 8200 answers
 * with an ICMPv6 Parameter Problem the decoder gives the code and the pointer.
 */
#ifndef USTCP_WIRE_IPV6_H
#define USTCP_WIRE_IPV6_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPV6_HDR_LEN 40
#define IPV6_MAX_EXT 8       /* extension headers walked before the upper layer */
#define IPV6_MAX_OPTS 64     /* Hop-by-Hop and Destination options, all headers */

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_ESP_ 50
#define IPPROTO_AH_ 51
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_NONE_ 59
#define IPPROTO_DSTOPTS_ 60

enum ipv6_err {
  IPV6_E_SHORT = -20,        /* shorter than 40 bytes, or than 40 + Payload Length */
  IPV6_E_VERSION = -21,      /* version is not 6 */
  IPV6_E_JUMBO = -22,        /* Payload Length 0 (a jumbogram, RFC 2675: not supported) */
  IPV6_E_EXT_LEN = -23,      /* an extension header runs past the payload */
  IPV6_E_HBH_NOT_FIRST = -24,/* Hop-by-Hop anywhere but first (§4.3): param problem 1 */
  IPV6_E_EXT_LIMIT = -25,    /* more than IPV6_MAX_EXT headers or IPV6_MAX_OPTS options */
  IPV6_E_OPT_LEN = -26,      /* an option runs past its header */
  IPV6_E_OPT_UNKNOWN = -27,  /* an unrecognised option whose action is to discard (§4.2) */
  IPV6_E_ROUTING = -28,      /* Routing header with Segments Left > 0: param problem 0 */
  IPV6_E_FRAGMENT = -29,     /* a Fragment header: see ipv6_pkt.frag (no reassembly here) */
  IPV6_E_NO_NEXT = -30,      /* No Next Header (59): nothing to deliver */
  IPV6_E_ESP = -31,          /* ESP or AH: not supported */
  ICMP6_E_SHORT = -32,
  ICMP6_E_CHECKSUM = -33,
  IPV6_E_NOSPACE = -34,      /* encode: output too small */
};
const char *ipv6_strerror(int err);

struct ipv6_hdr {
  uint8_t tclass;            /* DSCP + ECN */
  uint32_t flow;             /* 20 bits */
  uint16_t payload_len;      /* bytes after the fixed header */
  uint8_t next_header;
  uint8_t hop_limit;
  uint8_t src[16], dst[16];
};

struct ipv6_pkt {
  struct ipv6_hdr h;
  uint8_t proto;             /* the upper-layer protocol (after the extensions) */
  size_t upper_off;          /* its offset from the start of the packet */
  size_t upper_len;          /* its length (to the end of the payload) */
  uint8_t n_ext;             /* extension headers walked */
  /* Set with IPV6_E_FRAGMENT: the Fragment header's fields (RFC 8200 §4.5). */
  struct {
    uint16_t offset;         /* in 8-byte units */
    bool more;
    uint32_t id;
    uint8_t next;            /* the header after the Fragment header */
    size_t data_off;         /* where the fragmentable part starts */
  } frag;
  /* For refusals RFC 8200 answers with ICMPv6 Parameter Problem (RFC 4443
   * §3.4): its code, the offset of the offending byte, and whether the answer
   * is allowed (an unknown option of action 11 is not answered to multicast). */
  bool param_problem;
  uint8_t pp_code;
  uint32_t pp_pointer;
};

int ipv6_decode(const uint8_t *buf, size_t len, struct ipv6_pkt *out);
/* Writes the 40-byte fixed header; returns IPV6_HDR_LEN or IPV6_E_NOSPACE. */
int ipv6_encode(const struct ipv6_hdr *h, uint8_t *buf, size_t cap);
/* The pseudo-header of RFC 8200 §8.1, as a partial sum for inet_csum_add. */
uint32_t ipv6_pseudo_sum(const uint8_t src[16], const uint8_t dst[16], uint32_t upper_len,
                         uint8_t proto);
/* True for a multicast destination (ff00::/8). */
static inline bool ipv6_is_multicast(const uint8_t a[16]) { return a[0] == 0xff; }

/* ---- ICMPv6 (RFC 4443) ---- */
#define ICMP6_DST_UNREACH 1
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_TIME_EXCEEDED 3
#define ICMP6_PARAM_PROB 4
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define ICMP6_HDR_LEN 8

struct icmp6_msg {
  uint8_t type, code;
  uint32_t rest;             /* bytes 4..7: MTU, pointer, or id<<16|seq */
  const uint8_t *data;       /* the body after the 8-byte header */
  size_t data_len;
};
/* Checks the checksum over the pseudo-header of src/dst and the message. */
int icmp6_decode(const uint8_t src[16], const uint8_t dst[16], const uint8_t *buf, size_t len,
                 struct icmp6_msg *out);
/* Writes the message (header + data) at buf with its checksum; returns its
 * length or IPV6_E_NOSPACE. */
int icmp6_encode(const uint8_t src[16], const uint8_t dst[16], uint8_t type, uint8_t code,
                 uint32_t rest, const uint8_t *data, size_t data_len, uint8_t *buf, size_t cap);
#endif
