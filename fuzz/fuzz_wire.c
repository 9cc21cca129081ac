/* libFuzzer target for src/wire, the only code that reads raw network bytes.
 *
 * For each input:
 *   - ipv4_decode, tcp_decode on the raw bytes and on the IP payload, and
 *     tcp_packet_decode must return WIRE_OK or a WIRE_E_* code without touching
 *     memory outside the input (ASan) or invoking UB (UBSan);
 *   - whatever decodes is re-encoded and decoded again, and every field must survive
 *     (abort() otherwise): a property check, not just a crash hunt;
 *   - the fast checksum must equal a byte-by-byte reference on the input;
 *   - the text helpers run on input-derived values;
 *   - the input's first bytes as IPv4 options (a header built around them with a
 *     valid checksum, so the walk is reached on every input): ipv4_decode's
 *     verdict and source-route flag must match a plain reference walk.
 */
#include "wire/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c) do {                                                     \
    if (!(c)) {                                                             \
      fprintf(stderr, "fuzz_wire: property failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                              \
    }                                                                       \
  } while (0)

#define SRC_IP 0xc0000201u
#define DST_IP 0xc0000202u

static uint8_t out_buf[70000];
static uint8_t out_buf2[70000];

static bool opts_equal(const struct tcp_opts *a, const struct tcp_opts *b)
{
  if (a->present != b->present) return false;
  if ((a->present & TCP_OPT_HAS_MSS) && a->mss != b->mss) return false;
  if ((a->present & TCP_OPT_HAS_WSCALE) && a->wscale != b->wscale) return false;
  if ((a->present & TCP_OPT_HAS_TS) && (a->ts_val != b->ts_val || a->ts_ecr != b->ts_ecr))
    return false;
  if (a->present & TCP_OPT_HAS_SACK) {
    if (a->sack_count != b->sack_count) return false;
    for (unsigned i = 0; i < a->sack_count; i++)
      if (a->sack[i].left != b->sack[i].left || a->sack[i].right != b->sack[i].right)
        return false;
  }
  return true;
}

/* h was decoded from real bytes. Our encoder uses Linux's aligned layout, which can
 * need more room than a tightly packed input (e.g. TS + WSCALE + 3 SACK blocks: 39
 * bytes packed, 44 aligned); then tcp_encode must refuse, and the SACK list is
 * shortened until it fits, as the engine would do. */
static void check_tcp_roundtrip(const struct tcp_hdr *h, const uint8_t *pay, size_t plen)
{
  struct tcp_hdr e = *h;
  REQUIRE(e.opts.sack_count <= TCP_MAX_SACK_BLOCKS);
  REQUIRE(!(e.opts.present & TCP_OPT_HAS_SACK) == (e.opts.sack_count == 0));
  REQUIRE(tcp_opts_len(&e.opts) % 4 == 0);
  if (tcp_opts_len(&e.opts) > 40) {
    REQUIRE(tcp_encode(&e, pay, plen, SRC_IP, DST_IP, out_buf, sizeof out_buf) == WIRE_E_NOSPACE);
    while (e.opts.sack_count > 0 && tcp_opts_len(&e.opts) > 40) e.opts.sack_count--;
    if (e.opts.sack_count == 0) e.opts.present &= (uint8_t)~TCP_OPT_HAS_SACK;
    REQUIRE(tcp_opts_len(&e.opts) <= 40);
  }
  size_t hlen = TCP_HDR_LEN + tcp_opts_len(&e.opts);
  int n = tcp_encode(&e, pay, plen, SRC_IP, DST_IP, out_buf, sizeof out_buf);
  if (hlen + plen > 0xffff) {
    REQUIRE(n == WIRE_E_NOSPACE);
    return;
  }
  REQUIRE(n == (int)(hlen + plen));
  /* One byte less room must be refused, never overflowed. */
  REQUIRE(tcp_encode(&e, pay, plen, SRC_IP, DST_IP, out_buf2, (size_t)n - 1) == WIRE_E_NOSPACE);
  REQUIRE(tcp_checksum_ok(SRC_IP, DST_IP, out_buf, (size_t)n));

  struct tcp_hdr d;
  const uint8_t *dp;
  size_t dplen;
  REQUIRE(tcp_decode(out_buf, (size_t)n, &d, &dp, &dplen) == WIRE_OK);
  REQUIRE(d.src_port == e.src_port && d.dst_port == e.dst_port);
  REQUIRE(d.seq == e.seq && d.ack == e.ack);
  REQUIRE(d.data_off == hlen / 4);
  REQUIRE(d.reserved == 0);
  REQUIRE(d.flags == e.flags);
  REQUIRE(d.window == e.window && d.urg_ptr == e.urg_ptr);
  REQUIRE(d.opts.unknown_count == 0);
  REQUIRE(opts_equal(&d.opts, &e.opts));
  REQUIRE(dplen == plen);
  REQUIRE(plen == 0 || memcmp(dp, pay, plen) == 0);

  /* Encoding is a function of the decoded fields: a second trip is byte-identical. */
  int n2 = tcp_encode(&d, dp, dplen, SRC_IP, DST_IP, out_buf2, sizeof out_buf2);
  REQUIRE(n2 == n && memcmp(out_buf, out_buf2, (size_t)n) == 0);
}

static void check_ipv4_roundtrip(const struct ipv4_hdr *h, const uint8_t *pay, size_t plen)
{
  if (IPV4_HDR_LEN + plen > 0xffff) return;
  struct ipv4_hdr e = *h;
  e.total_len = (uint16_t)(IPV4_HDR_LEN + plen);
  REQUIRE(ipv4_encode(&e, out_buf, IPV4_HDR_LEN - 1) == WIRE_E_NOSPACE);
  REQUIRE(ipv4_encode(&e, out_buf, sizeof out_buf) == IPV4_HDR_LEN);
  if (plen) memcpy(out_buf + IPV4_HDR_LEN, pay, plen);
  struct ipv4_hdr d;
  const uint8_t *dp;
  size_t dplen;
  REQUIRE(ipv4_decode(out_buf, IPV4_HDR_LEN + plen, &d, &dp, &dplen) == WIRE_OK);
  REQUIRE(d.version == 4 && d.ihl == 5);
  REQUIRE(d.tos == h->tos && d.id == h->id && d.flags == h->flags);
  REQUIRE(d.frag_off == h->frag_off && d.ttl == h->ttl && d.proto == h->proto);
  REQUIRE(d.src == h->src && d.dst == h->dst);
  REQUIRE(d.total_len == e.total_len && dplen == plen);
  /* An unchanged option-less header keeps its checksum, up to one's complement's
   * two zeros: a sender may write 0xffff where we compute 0x0000; both verify. */
  if (h->ihl == 5)
    REQUIRE(d.checksum == h->checksum || (d.checksum == 0 && h->checksum == 0xffff));
}

/* Reference for ipv4_decode's option walk (RFC 791 §3.1, Linux's
 * ip_options_compile rules): -1 malformed, else the IPV4_OPT_* flags. */
static int ref_ip_options(const uint8_t *o, size_t n)
{
  int flags = 0;
  for (size_t i = 0; i < n;) {
    if (o[i] == 0) return flags;
    if (o[i] == 1) { i++; continue; }
    if (i + 1 >= n) return -1;
    size_t l = o[i + 1];
    if (l < 2 || i + l > n) return -1;
    if (o[i] == 131 || o[i] == 137) {
      if (l < 3) return -1;
      flags |= IPV4_OPT_SRR;
    }
    i += l;
  }
  return flags;
}

static void check_ip_options(const uint8_t *data, size_t size)
{
  size_t olen = size < 40 ? size & ~(size_t)3 : 40;
  uint8_t pkt[64];
  memset(pkt, 0, sizeof pkt);
  pkt[0] = (uint8_t)(0x40 | (20 + olen) / 4);
  pkt[3] = (uint8_t)(20 + olen);
  pkt[8] = 64;
  pkt[9] = IPPROTO_UDP_;
  memcpy(pkt + 20, data, olen);
  uint16_t c = inet_checksum(pkt, 20 + olen);
  pkt[10] = (uint8_t)(c >> 8);
  pkt[11] = (uint8_t)c;
  struct ipv4_hdr h;
  const uint8_t *pay;
  size_t plen;
  int err = ipv4_decode(pkt, 20 + olen, &h, &pay, &plen);
  int ref = ref_ip_options(data, olen);
  if (ref < 0) {
    REQUIRE(err == WIRE_E_IP_OPT);
  } else {
    REQUIRE(err == WIRE_OK);
    REQUIRE(h.opt_flags == ref);
    REQUIRE(plen == 0 && pay == pkt + 20 + olen);
  }
}

static void check_packet_roundtrip(const struct tcp_packet *pk)
{
  struct tcp_hdr e = pk->tcp;
  while (e.opts.sack_count > 0 && tcp_opts_len(&e.opts) > 40) e.opts.sack_count--;
  if (e.opts.sack_count == 0) e.opts.present &= (uint8_t)~TCP_OPT_HAS_SACK;
  int n = tcp_packet_encode(&e, pk->payload, pk->payload_len, pk->ip.src, pk->ip.dst, pk->ip.id,
                            out_buf, sizeof out_buf);
  if (IPV4_HDR_LEN + TCP_HDR_LEN + tcp_opts_len(&e.opts) + pk->payload_len > 0xffff) {
    REQUIRE(n == WIRE_E_NOSPACE);
    return;
  }
  REQUIRE(n > 0);
  struct tcp_packet d;
  REQUIRE(tcp_packet_decode(out_buf, (size_t)n, &d) == WIRE_OK);
  REQUIRE(d.ip.src == pk->ip.src && d.ip.dst == pk->ip.dst && d.ip.id == pk->ip.id);
  REQUIRE(d.ip.ttl == 64 && d.ip.flags == IPV4_FLAG_DF && d.ip.proto == IPPROTO_TCP_);
  REQUIRE(d.tcp.seq == e.seq && d.tcp.ack == e.ack && d.tcp.flags == e.flags);
  REQUIRE(d.tcp.src_port == e.src_port && d.tcp.dst_port == e.dst_port);
  REQUIRE(d.tcp.window == e.window && d.tcp.urg_ptr == e.urg_ptr);
  REQUIRE(opts_equal(&d.tcp.opts, &e.opts));
  REQUIRE(d.payload_len == pk->payload_len);
  REQUIRE(d.payload_len == 0 || memcmp(d.payload, pk->payload, d.payload_len) == 0);
}

static uint16_t ref_checksum(const uint8_t *p, size_t len)
{
  uint64_t s = 0;
  for (size_t i = 0; i + 1 < len; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
  if (len & 1) s += (uint32_t)p[len - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

static void check_text(const uint8_t *data, size_t size)
{
  char buf[32];
  if (size >= 1) {
    const char *f = tcp_flags_str(data[0], buf, 10);
    REQUIRE(strlen(f) == (size_t)__builtin_popcount(data[0]));
  }
  if (size >= 4) {
    uint32_t a = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
    uint32_t b = ~a;
    REQUIRE(ipv4_parse(ipv4_str(a, buf, 16), &b) == 0 && b == a);
  }
  /* Arbitrary text: if it parses, it prints back to a string that parses the same. */
  char s[24];
  size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
  memcpy(s, data, n);
  s[n] = '\0';
  uint32_t a;
  if (ipv4_parse(s, &a) == 0) {
    uint32_t b;
    REQUIRE(strcmp(ipv4_str(a, buf, 16), s) == 0);
    REQUIRE(ipv4_parse(buf, &b) == 0 && b == a);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  /* The checksum on the input at its own (arbitrary) alignment and one byte in. */
  REQUIRE(inet_checksum(data, size) == ref_checksum(data, size));
  if (size > 1) REQUIRE(inet_checksum(data + 1, size - 1) == ref_checksum(data + 1, size - 1));

  /* The raw bytes as a TCP segment. */
  struct tcp_hdr th;
  const uint8_t *pay;
  size_t plen;
  int err = tcp_decode(data, size, &th, &pay, &plen);
  REQUIRE(wire_strerror(err) != NULL);
  if (err == WIRE_OK) {
    REQUIRE(pay >= data && pay + plen == data + size);
    check_tcp_roundtrip(&th, pay, plen);
  }

  /* The raw bytes as an IPv4 packet, and its payload as TCP. */
  struct ipv4_hdr ih;
  err = ipv4_decode(data, size, &ih, &pay, &plen);
  REQUIRE(wire_strerror(err) != NULL);
  if (err == WIRE_OK) {
    REQUIRE(pay >= data + IPV4_HDR_LEN && pay + plen <= data + size);
    REQUIRE(plen == (size_t)ih.total_len - (size_t)ih.ihl * 4);
    check_ipv4_roundtrip(&ih, pay, plen);
    const uint8_t *tpay;
    size_t tplen;
    if (tcp_decode(pay, plen, &th, &tpay, &tplen) == WIRE_OK) {
      REQUIRE(tpay + tplen == pay + plen);
      check_tcp_roundtrip(&th, tpay, tplen);
    }
  }

  /* The whole packet path, both checksums. */
  struct tcp_packet pk;
  err = tcp_packet_decode(data, size, &pk);
  REQUIRE(wire_strerror(err) != NULL);
  if (err == WIRE_OK) {
    REQUIRE(pk.ip.proto == IPPROTO_TCP_ && !(pk.ip.flags & IPV4_FLAG_MF) && pk.ip.frag_off == 0);
    REQUIRE(pk.payload + pk.payload_len <= data + size);
    check_packet_roundtrip(&pk);
  }

  check_ip_options(data, size);
  check_text(data, size);
  return 0;
}
