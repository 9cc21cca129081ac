/* IPv6 and ICMPv6 codecs (src/wire/ipv6.c; issue 16 point 1): RFC 8200's header
 * and extension-header rules and RFC 4443's checksum, with hand-built packets,
 * and the attacker's packets: chains longer than the limit, options and
 * headers running past the payload, Hop-by-Hop out of place, routing headers
 * a host must refuse, truncated packets of every length. */
#include <string.h>
#include "check.h"
#include "wire/ipv6.h"
#include "wire/wire.h"

static const uint8_t A[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t B[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
static const uint8_t MC[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static uint8_t pkt[2000];

/* A packet from A to dst: the fixed header, then `ext` (extension headers,
 * already chained, the first one's type in first_nh), then an 8-byte body of
 * protocol `upper` (named by the last extension header). */
static size_t build(const uint8_t dst[16], uint8_t first_nh, const uint8_t *ext, size_t elen)
{
  struct ipv6_hdr h = {.tclass = 0x2e, .flow = 0x12345, .payload_len = (uint16_t)(elen + 8),
                       .next_header = first_nh, .hop_limit = 64};
  memcpy(h.src, A, 16);
  memcpy(h.dst, dst, 16);
  CHECK_EQ(ipv6_encode(&h, pkt, sizeof pkt), IPV6_HDR_LEN);
  if (elen) memcpy(pkt + 40, ext, elen);
  memset(pkt + 40 + elen, 0xab, 8);
  return 40 + elen + 8;
}

static void rfc8200_header(void)
{
  size_t n = build(B, IPPROTO_TCP_, NULL, 0);
  struct ipv6_pkt p;
  CHECK_EQ(ipv6_decode(pkt, n, &p), WIRE_OK);
  CHECK_EQ(p.h.tclass, 0x2e);
  CHECK_EQ(p.h.flow, 0x12345);
  CHECK_EQ(p.h.hop_limit, 64);
  CHECK_MEM(p.h.src, A, 16);
  CHECK_MEM(p.h.dst, B, 16);
  CHECK_EQ(p.proto, IPPROTO_TCP_);
  CHECK_EQ(p.upper_off, 40);
  CHECK_EQ(p.upper_len, 8);
  /* Link padding after the payload is not part of the packet. */
  CHECK_EQ(ipv6_decode(pkt, n + 10, &p), WIRE_OK);
  CHECK_EQ(p.upper_len, 8);
  /* Every truncation is refused, never read past. */
  for (size_t k = 0; k < n; k++) CHECK(ipv6_decode(pkt, k, &p) != WIRE_OK);
  pkt[0] = 0x45;
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_VERSION);
  n = build(B, IPPROTO_TCP_, NULL, 0);
  pkt[4] = pkt[5] = 0;
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_JUMBO);
}

/* §4.2: Pad1/PadN skipped, an unknown option's two high bits decide: 00 skip,
 * 01 discard, 10 discard and Parameter Problem code 2 at the option, 11 the
 * same unless the destination is multicast. */
static void rfc8200_4_2_options(void)
{
  struct ipv6_pkt p;
  uint8_t e[8] = {IPPROTO_TCP_, 0, 0 /* Pad1 */, 1, 1, 0 /* PadN */, 0x05, 0 /* type 00 */};
  size_t n = build(B, IPPROTO_HOPOPTS_, e, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), WIRE_OK);
  CHECK_EQ(p.proto, IPPROTO_TCP_);
  CHECK_EQ(p.upper_off, 48);
  CHECK_EQ(p.n_ext, 1);
  e[6] = 0x45;                                  /* 01: discard silently */
  n = build(B, IPPROTO_HOPOPTS_, e, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_OPT_UNKNOWN);
  CHECK(!p.param_problem);
  e[6] = 0x85;                                  /* 10: discard + PP 2 */
  n = build(MC, IPPROTO_HOPOPTS_, e, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_OPT_UNKNOWN);
  CHECK(p.param_problem);
  CHECK_EQ(p.pp_code, 2);
  CHECK_EQ(p.pp_pointer, 46);
  e[6] = 0xc5;                                  /* 11: not to multicast */
  n = build(MC, IPPROTO_HOPOPTS_, e, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_OPT_UNKNOWN);
  CHECK(!p.param_problem);
  n = build(B, IPPROTO_HOPOPTS_, e, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_OPT_UNKNOWN);
  CHECK(p.param_problem);
  /* An option whose length runs past its header. */
  uint8_t bad[8] = {IPPROTO_TCP_, 0, 0x05, 9, 0, 0, 0, 0};
  n = build(B, IPPROTO_HOPOPTS_, bad, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_OPT_LEN);
}

/* §4.3: Hop-by-Hop only right after the IPv6 header (elsewhere: Parameter
 * Problem code 1 pointing at the Next Header field that named it). */
static void rfc8200_4_3_hbh_first(void)
{
  struct ipv6_pkt p;
  uint8_t e[16] = {IPPROTO_HOPOPTS_, 0, 1, 4, 0, 0, 0, 0,   /* Destination Options */
                   IPPROTO_TCP_, 0, 1, 4, 0, 0, 0, 0};      /* then Hop-by-Hop */
  size_t n = build(B, IPPROTO_DSTOPTS_, e, 16);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_HBH_NOT_FIRST);
  CHECK(p.param_problem);
  CHECK_EQ(p.pp_code, 1);
  CHECK_EQ(p.pp_pointer, 40);
}

/* §4.4: a Routing header with Segments Left 0 is ignored; with segments left
 * a host refuses it (Parameter Problem code 0 at the Routing Type). */
static void rfc8200_4_4_routing(void)
{
  struct ipv6_pkt p;
  uint8_t e[8] = {IPPROTO_TCP_, 0, 0, 0, 0, 0, 0, 0};
  size_t n = build(B, IPPROTO_ROUTING_, e, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), WIRE_OK);
  CHECK_EQ(p.proto, IPPROTO_TCP_);
  e[3] = 1;
  n = build(B, IPPROTO_ROUTING_, e, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_ROUTING);
  CHECK(p.param_problem);
  CHECK_EQ(p.pp_code, 0);
  CHECK_EQ(p.pp_pointer, 42);
}

/* §4.5: a Fragment header is reported with its fields (no reassembly here). */
static void rfc8200_4_5_fragment(void)
{
  struct ipv6_pkt p;
  uint8_t e[8] = {IPPROTO_TCP_, 0, 0x05, 0x39 /* offset 167, M */, 0xde, 0xad, 0xbe, 0xef};
  size_t n = build(B, IPPROTO_FRAGMENT_, e, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_FRAGMENT);
  CHECK_EQ(p.frag.offset, 167);
  CHECK(p.frag.more);
  CHECK_EQ(p.frag.id, 0xdeadbeefu);
  CHECK_EQ(p.frag.next, IPPROTO_TCP_);
  CHECK_EQ(p.frag.data_off, 48);
}

/* Attacker chains: more than IPV6_MAX_EXT headers, more than IPV6_MAX_OPTS
 * options, a header length past the payload, No Next Header, ESP. */
static void attack_ipv6_chains(void)
{
  struct ipv6_pkt p;
  uint8_t e[8 * 12];
  for (int i = 0; i < 12; i++) {
    uint8_t *h = e + 8 * i;
    h[0] = i == 11 ? IPPROTO_TCP_ : IPPROTO_DSTOPTS_;
    h[1] = 0;
    h[2] = 1; h[3] = 4; h[4] = h[5] = h[6] = h[7] = 0;
  }
  size_t n = build(B, IPPROTO_DSTOPTS_, e, sizeof e);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_EXT_LIMIT);
  /* 100 skippable options in one header */
  static uint8_t big[8 + 400];
  memset(big, 0, sizeof big);
  big[0] = IPPROTO_TCP_;
  big[1] = (uint8_t)(sizeof big / 8 - 1);
  for (int i = 0; i < 100; i++) { big[2 + 4 * i] = 0x05; big[3 + 4 * i] = 2; }
  n = build(B, IPPROTO_HOPOPTS_, big, sizeof big);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_EXT_LIMIT);
  uint8_t past[8] = {IPPROTO_TCP_, 5, 0, 0, 0, 0, 0, 0};    /* says 48 bytes */
  n = build(B, IPPROTO_DSTOPTS_, past, 8);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_EXT_LEN);
  n = build(B, IPPROTO_NONE_, NULL, 0);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_NO_NEXT);
  n = build(B, IPPROTO_ESP_, NULL, 0);
  CHECK_EQ(ipv6_decode(pkt, n, &p), IPV6_E_ESP);
}

/* RFC 4443 §2.3: the checksum covers the pseudo-header, so the same bytes to
 * another address do not verify. */
static void rfc4443_checksum(void)
{
  uint8_t m[64], data[20];
  for (int i = 0; i < 20; i++) data[i] = (uint8_t)i;
  int n = icmp6_encode(A, B, ICMP6_ECHO_REQUEST, 0, 0x00070001u, data, 20, m, sizeof m);
  CHECK_EQ(n, 28);
  struct icmp6_msg msg;
  CHECK_EQ(icmp6_decode(A, B, m, (size_t)n, &msg), WIRE_OK);
  CHECK_EQ(msg.type, ICMP6_ECHO_REQUEST);
  CHECK_EQ(msg.rest, 0x00070001u);
  CHECK_EQ(msg.data_len, 20);
  CHECK_MEM(msg.data, data, 20);
  CHECK_EQ(icmp6_decode(A, MC, m, (size_t)n, &msg), ICMP6_E_CHECKSUM);
  m[10] ^= 1;
  CHECK_EQ(icmp6_decode(A, B, m, (size_t)n, &msg), ICMP6_E_CHECKSUM);
  CHECK_EQ(icmp6_decode(A, B, m, 7, &msg), ICMP6_E_SHORT);
  /* A known answer: echo request fe80::1 -> ff02::1, id 0, seq 0, no data:
   * checksum computed by hand from RFC 4443 §2.3. */
  static const uint8_t ll[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  n = icmp6_encode(ll, MC, ICMP6_ECHO_REQUEST, 0, 0, NULL, 0, m, sizeof m);
  CHECK_EQ(n, 8);
  /* sum: fe80 + 0001 + ff02 + 0001 + 0008 (length) + 003a (next header) + 8000 */
  uint32_t s = 0xfe80 + 0x0001 + 0xff02 + 0x0001 + 0x0008 + 0x003a + 0x8000;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  CHECK_EQ((m[2] << 8 | m[3]), (uint16_t)~s);
}

int main(void)
{
  RUN(rfc8200_header);
  RUN(rfc8200_4_2_options);
  RUN(rfc8200_4_3_hbh_first);
  RUN(rfc8200_4_4_routing);
  RUN(rfc8200_4_5_fragment);
  RUN(attack_ipv6_chains);
  RUN(rfc4443_checksum);
  return check_report();
}
