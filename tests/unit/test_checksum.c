/* The Internet checksum (RFC 1071): known values, real Linux packets, odd lengths and
 * addresses, and the fast implementation against a byte-by-byte reference. */
#include "check.h"
#include "wire/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The obvious RFC 1071 §4.1 loop over big-endian 16-bit words, as a reference. */
static uint16_t ref_checksum(const uint8_t *p, size_t len, uint32_t sum)
{
  uint64_t s = sum;
  for (size_t i = 0; i + 1 < len; i += 2) s += (uint32_t)p[i] << 8 | p[i + 1];
  if (len & 1) s += (uint32_t)p[len - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

static size_t hex(const char *s, uint8_t *out)
{
  size_t n = 0;
  while (s[0] && s[1]) {
    if (s[0] == ' ') { s++; continue; }
    unsigned v;
    sscanf(s, "%2x", &v);
    out[n++] = (uint8_t)v;
    s += 2;
  }
  return n;
}

static void test_rfc1071_example(void)
{
  /* RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (after the carry). */
  static const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  uint32_t sum = inet_csum_add(0, b, sizeof b);
  CHECK_EQ((uint16_t)~inet_csum_fold(sum), 0xddf2);
  CHECK_EQ(inet_csum_fold(sum), 0x220d);
  CHECK_EQ(inet_checksum(b, sizeof b), 0x220d);
  /* Appending the checksum makes the whole thing verify to zero. */
  uint8_t c[10];
  memcpy(c, b, 8);
  c[8] = 0x22;
  c[9] = 0x0d;
  CHECK_EQ(inet_checksum(c, sizeof c), 0);
}

static void test_ipv4_header(void)
{
  /* A well-known UDP/IPv4 header (192.168.0.1 -> 192.168.0.199), checksum b861. */
  uint8_t h[20];
  CHECK_EQ(hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7", h), 20);
  CHECK_EQ(inet_checksum(h, 20), 0); /* verifies as received */
  h[10] = h[11] = 0;
  CHECK_EQ(inet_checksum(h, 20), 0xb861);
  /* Split sums chain: any even split gives the same result. */
  uint32_t s = inet_csum_add(0, h, 6);
  s = inet_csum_add(s, h + 6, 14);
  CHECK_EQ(inet_csum_fold(s), 0xb861);
}

/* Real packets written by the Linux 6.x kernel to a TUN device (full software
 * checksums, no offload), cross-checked with an independent Python computation. */
static const char *linux_syn =
  "4500003c018740004006b531c0000201c0000202"          /* IPv4 192.0.2.1 -> .2 */
  "dd0a1f90d3a1f6b000000000a002faf033730000"          /* TCP, csum 0x3373 */
  "020405b40402080aaf2e1f79000000000103030a";         /* mss,sackOK,TS,nop,ws */
static const char *linux_data =
  "4500003a018940004006b531c0000201c0000202"
  "dd0a1f90d3a1f6b1000050018018003f84920000"          /* csum 0x8492 */
  "0101080aaf2e1f7911223344"
  "68656c6c6f0a";                                     /* "hello\n": odd length 38 */

static void test_real_tcp(void)
{
  uint8_t p[128];
  size_t n = hex(linux_syn, p);
  CHECK_EQ(n, 60);
  CHECK_EQ(inet_checksum(p, 20), 0);
  uint32_t src = 0xc0000201, dst = 0xc0000202;
  CHECK(tcp_checksum_ok(src, dst, p + 20, n - 20));
  p[36] = p[37] = 0;
  uint32_t s = tcp_pseudo_sum(src, dst, IPPROTO_TCP_, (uint16_t)(n - 20));
  CHECK_EQ(inet_csum_fold(inet_csum_add(s, p + 20, n - 20)), 0x3373);
  CHECK(!tcp_checksum_ok(src, dst, p + 20, n - 20));

  n = hex(linux_data, p);
  CHECK_EQ(n, 58);
  CHECK_EQ(inet_checksum(p, 20), 0);
  CHECK(tcp_checksum_ok(src, dst, p + 20, n - 20));
  /* Wrong addresses in the pseudo-header are caught. */
  CHECK(!tcp_checksum_ok(src, dst + 1, p + 20, n - 20));
  CHECK(!tcp_checksum_ok(dst, src + 1, p + 20, n - 20));
  p[36] = p[37] = 0;
  s = tcp_pseudo_sum(src, dst, IPPROTO_TCP_, (uint16_t)(n - 20));
  CHECK_EQ(inet_csum_fold(inet_csum_add(s, p + 20, n - 20)), 0x8492);
  /* A flipped payload bit fails. */
  p[36] = 0x84;
  p[37] = 0x92;
  p[n - 1] ^= 0x01;
  CHECK(!tcp_checksum_ok(src, dst, p + 20, n - 20));
}

static void test_pseudo_sum(void)
{
  /* src c0000201, dst c0000202, proto 6, len 40:
   * c000+0201+c000+0202+0006+0028 = 0x18431. */
  uint32_t s = tcp_pseudo_sum(0xc0000201, 0xc0000202, 6, 40);
  CHECK_EQ(inet_csum_fold(s), (uint16_t)~0x8432);
  uint8_t ph[12] = {0xc0, 0, 2, 1, 0xc0, 0, 2, 2, 0, 6, 0, 40};
  CHECK_EQ(inet_csum_fold(s), inet_checksum(ph, sizeof ph));
}

static void test_odd_lengths(void)
{
  /* One byte: padded with zero as the low byte of the word. */
  static const uint8_t one[] = {0xab};
  CHECK_EQ(inet_checksum(one, 1), (uint16_t)~0xab00);
  static const uint8_t three[] = {0x12, 0x34, 0x56};
  CHECK_EQ(inet_checksum(three, 3), (uint16_t)~(0x1234 + 0x5600));
  CHECK_EQ(inet_checksum(three, 0), 0xffff);
  /* 0xffff words: one's complement -0 stays distinct from +0 in the sum. */
  static const uint8_t ff[] = {0xff, 0xff, 0xff, 0xff, 0xff};
  CHECK_EQ(inet_checksum(ff, 4), 0x0000);
  CHECK_EQ(inet_checksum(ff, 5), ref_checksum(ff, 5, 0));
}

static void test_odd_alignment(void)
{
  uint8_t buf[64 + 8];
  uint8_t h[20];
  hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7", h);
  for (size_t off = 0; off < 8; off++) {
    memset(buf, 0x5a, sizeof buf);
    memcpy(buf + off, h, 20);
    CHECK_EQ(inet_checksum(buf + off, 20), 0);
    CHECK_EQ(inet_checksum(buf + off, 19), ref_checksum(buf + off, 19, 0));
  }
}

/* xorshift32: deterministic, so a failure replays. */
static uint32_t rng_state = 0x2545f491;
static uint32_t rnd(void)
{
  uint32_t x = rng_state;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return rng_state = x;
}

static void test_random_vs_reference(void)
{
  static uint8_t buf[2048 + 16];
  unsigned mismatches = 0, runs = 0;
  for (int iter = 0; iter < 4000; iter++) {
    size_t off = rnd() % 16;
    size_t len = iter < 200 ? (size_t)iter : rnd() % 2049;
    for (size_t i = 0; i < len; i++) buf[off + i] = (uint8_t)rnd();
    /* Bias some inputs to all-ones and all-zeros to stress the carries. */
    if (iter % 7 == 0) memset(buf + off, 0xff, len);
    if (iter % 11 == 0) memset(buf + off, 0x00, len);
    uint32_t start = (iter % 3 == 0) ? rnd() : (rnd() & 0xfffff);
    uint16_t want = ref_checksum(buf + off, len, 0);
    if (inet_checksum(buf + off, len) != want) mismatches++;
    /* With a running sum as the start value (any 32-bit value is allowed). */
    uint64_t st = start;
    while (st >> 16) st = (st & 0xffff) + (st >> 16);
    if (inet_csum_fold(inet_csum_add(start, buf + off, len)) !=
        ref_checksum(buf + off, len, (uint32_t)st))
      mismatches++;
    /* Chained over an even split point equals one pass. */
    size_t cut = len ? (rnd() % (len + 1)) & ~(size_t)1 : 0;
    uint32_t s = inet_csum_add(0, buf + off, cut);
    s = inet_csum_add(s, buf + off + cut, len - cut);
    if (inet_csum_fold(s) != want) mismatches++;
    runs++;
  }
  CHECK_EQ(runs, 4000);
  CHECK_EQ(mismatches, 0);
}

/* Long buffers take the vector path (x86-64: SSE2 or AVX2) whose 32-bit lanes are
 * widened every 1 MiB: lengths around the vector block sizes, every start
 * alignment, all-ones data (the largest lane growth) and more than one flush. */
static void test_long_vs_reference(void)
{
  size_t cap = (3u << 20) + 64;
  uint8_t *buf = malloc(cap);
  CHECK(buf != NULL);
  if (!buf) return;
  unsigned mismatches = 0;
  static const size_t lens[] = {255, 256, 257, 383, 384, 1460, 1500, 4096, 9000, 65495, 65535};
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
    for (size_t off = 0; off < 64; off += 7)
      for (int fill = 0; fill < 3; fill++) {
        size_t len = lens[li];
        for (size_t i = 0; i < len; i++)
          buf[off + i] = fill == 0 ? (uint8_t)rnd() : fill == 1 ? 0xff : (uint8_t)(i & 1 ? 0xff : 0);
        if (inet_checksum(buf + off, len) != ref_checksum(buf + off, len, 0)) mismatches++;
      }
  for (int fill = 0; fill < 2; fill++) {
    size_t len = (3u << 20) + 33;
    for (size_t i = 0; i < len; i++) buf[1 + i] = fill ? 0xff : (uint8_t)rnd();
    if (inet_checksum(buf + 1, len) != ref_checksum(buf + 1, len, 0)) mismatches++;
  }
  CHECK_EQ(mismatches, 0);
  free(buf);
}

/* tcp_encode and ipv4_encode sum their headers from the fields and copy and sum
 * the payload in one pass: their checksums must equal a sum over the bytes they
 * wrote, for any header, options, payload length and payload placement (separate,
 * already in place, overlapping). */
static void test_encode_checksums(void)
{
  static uint8_t pkt[70000], src[70000];
  unsigned bad = 0;
  for (int iter = 0; iter < 600; iter++) {
    struct tcp_hdr h;
    memset(&h, 0, sizeof h);
    h.src_port = (uint16_t)rnd();
    h.dst_port = (uint16_t)rnd();
    h.seq = rnd();
    h.ack = rnd();
    h.flags = (uint8_t)rnd();
    h.window = (uint16_t)rnd();
    h.urg_ptr = (uint16_t)rnd();
    if (iter % 3 == 0) {
      h.opts.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_WSCALE;
      h.opts.mss = (uint16_t)rnd();
      h.opts.wscale = (uint8_t)(rnd() % 15);
    }
    size_t plen = iter < 40 ? (size_t)iter * 37 : (iter % 50 == 0 ? 65495 - 24 : rnd() % 3000);
    uint32_t sip = rnd(), dip = rnd();
    size_t off = rnd() % 8;
    for (size_t i = 0; i < plen; i++) src[off + i] = (uint8_t)rnd();
    const uint8_t *payload = src + off;
    int mode = iter % 4;   /* 0, 1 separate; 2 in place; 3 overlapping */
    size_t hlen = TCP_HDR_LEN + tcp_opts_len(&h.opts);
    if (mode == 2) {
      memcpy(pkt + hlen, src + off, plen);
      payload = pkt + hlen;
    } else if (mode == 3) {
      memmove(pkt + hlen + 3, src + off, plen);
      payload = pkt + hlen + 3;
    }
    int n = tcp_encode(&h, payload, plen, sip, dip, pkt, sizeof pkt);
    if (n != (int)(hlen + plen)) { bad++; continue; }
    if (!tcp_checksum_ok(sip, dip, pkt, (size_t)n)) bad++;
    if (memcmp(pkt + hlen, src + off, plen) != 0) bad++;
    struct ipv4_hdr ip;
    memset(&ip, 0, sizeof ip);
    ip.total_len = (uint16_t)rnd();
    ip.id = (uint16_t)rnd();
    ip.tos = (uint8_t)rnd();
    ip.flags = (uint8_t)(rnd() & 7);
    ip.frag_off = (uint16_t)(rnd() & 0x1fff);
    ip.ttl = (uint8_t)rnd();
    ip.proto = (uint8_t)rnd();
    ip.src = sip;
    ip.dst = dip;
    uint8_t ih[20];
    if (ipv4_encode(&ip, ih, sizeof ih) != 20 || ref_checksum(ih, 20, 0) != 0) bad++;
  }
  CHECK_EQ(bad, 0);
}

int main(void)
{
  RUN(test_rfc1071_example);
  RUN(test_ipv4_header);
  RUN(test_real_tcp);
  RUN(test_pseudo_sum);
  RUN(test_odd_lengths);
  RUN(test_odd_alignment);
  RUN(test_random_vs_reference);
  RUN(test_long_vs_reference);
  RUN(test_encode_checksums);
  return check_report();
}
