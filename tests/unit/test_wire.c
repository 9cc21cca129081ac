/* src/wire: IPv4 and TCP encode/decode round trips for every field and option,
 * real Linux packets decoded field by field and re-encoded byte for byte, every
 * malformation with its own error code, and the text helpers. */
#include "check.h"
#include "wire/wire.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* Recomputes the IPv4 header checksum after a test edits the header. */
static void fix_ip_csum(uint8_t *ip)
{
  size_t hlen = (size_t)(ip[0] & 0x0f) * 4;
  ip[10] = ip[11] = 0;
  uint16_t c = inet_checksum(ip, hlen);
  ip[10] = (uint8_t)(c >> 8);
  ip[11] = (uint8_t)c;
}

/* Recomputes the TCP checksum of a segment (header+data) after a test edits it. */
static void fix_tcp_csum(uint8_t *seg, size_t len, uint32_t src, uint32_t dst)
{
  seg[16] = seg[17] = 0;
  uint16_t c = inet_csum_fold(inet_csum_add(tcp_pseudo_sum(src, dst, 6, (uint16_t)len), seg, len));
  seg[16] = (uint8_t)(c >> 8);
  seg[17] = (uint8_t)c;
}

/* Real packets written by the Linux 6.x kernel to a TUN device (software checksums),
 * 192.0.2.1 (Linux) <-> 192.0.2.2. */
#define LINUX_A 0xc0000201u
#define LINUX_B 0xc0000202u
/* connect(): SYN, mss 1460, sackOK, TS val 0xaf2e1f79 ecr 0, nop, wscale 10. */
static const char linux_syn[] =
  "4500003c018740004006b531c0000201c0000202"
  "dd0a1f90d3a1f6b000000000a002faf033730000"
  "020405b40402080aaf2e1f79000000000103030a";
/* The listener's SYN-ACK. */
static const char linux_synack[] =
  "4500003c000040004006b6b8c0000201c0000202"
  "00509c404443706b000003e9a012fe88656c0000"
  "020405b40402080a3ecbcb9c000000640103030a";
/* PSH|ACK carrying "hello\n", nop nop TS. */
static const char linux_data[] =
  "4500003a018940004006b531c0000201c0000202"
  "dd0a1f90d3a1f6b1000050018018003f84920000"
  "0101080aaf2e1f7911223344"
  "68656c6c6f0a";
/* FIN|ACK, nop nop TS. */
static const char linux_fin[] =
  "45000034018a40004006b536c0000201c0000202"
  "dd0a1f90d3a1f6b7000050018011003fc8750000"
  "0101080aaf2e1f7911223344";
/* RST|ACK for a SYN to a closed port (IP id 0, no options). */
static const char linux_rst[] =
  "45000028000040004006b6ccc0000201c0000202"
  "00519c410000000000001389501400007bb10000";

/* ---------------- IPv4 ---------------- */

static void test_ipv4_roundtrip(void)
{
  uint8_t buf[64];
  struct ipv4_hdr h = {
    .version = 4, .ihl = 5, .tos = 0xb9, .total_len = 20 + 8, .id = 0xbeef,
    .flags = IPV4_FLAG_DF, .frag_off = 0, .ttl = 37, .proto = IPPROTO_TCP_,
    .checksum = 0x1234 /* ignored on encode */, .src = 0x0a000001, .dst = 0xc0a80102,
  };
  memset(buf, 0xee, sizeof buf);
  CHECK_EQ(ipv4_encode(&h, buf, sizeof buf), 20);
  CHECK_EQ(buf[0], 0x45);
  CHECK_EQ(inet_checksum(buf, 20), 0);
  struct ipv4_hdr d;
  const uint8_t *pl = NULL;
  size_t plen = 99;
  CHECK_EQ(ipv4_decode(buf, 28, &d, &pl, &plen), WIRE_OK);
  CHECK_EQ(d.version, 4);
  CHECK_EQ(d.ihl, 5);
  CHECK_EQ(d.tos, 0xb9);
  CHECK_EQ(d.total_len, 28);
  CHECK_EQ(d.id, 0xbeef);
  CHECK_EQ(d.flags, IPV4_FLAG_DF);
  CHECK_EQ(d.frag_off, 0);
  CHECK_EQ(d.ttl, 37);
  CHECK_EQ(d.proto, IPPROTO_TCP_);
  CHECK_EQ(d.checksum, (uint16_t)(buf[10] << 8 | buf[11]));
  CHECK_EQ(d.src, 0x0a000001);
  CHECK_EQ(d.dst, 0xc0a80102);
  CHECK(pl == buf + 20);
  CHECK_EQ(plen, 8);

  /* Every flag bit (including the reserved one) and the full fragment offset,
   * every TOS value, every protocol byte survive. */
  for (unsigned f = 0; f < 8; f++) {
    h.flags = (uint8_t)f;
    h.frag_off = (uint16_t)(0x1fff - f);
    h.tos = (uint8_t)(f * 37);
    h.proto = (uint8_t)(f * 41);
    h.ttl = (uint8_t)(255 - f);
    CHECK_EQ(ipv4_encode(&h, buf, 20 + 8), 20);
    CHECK_EQ(ipv4_decode(buf, 28, &d, NULL, NULL), WIRE_OK);
    CHECK_EQ(d.flags, f);
    CHECK_EQ(d.frag_off, 0x1fff - f);
    CHECK_EQ(d.tos, (uint8_t)(f * 37));
    CHECK_EQ(d.proto, (uint8_t)(f * 41));
    CHECK_EQ(d.ttl, 255 - f);
  }
  /* Extreme values. */
  h.src = 0xffffffffu;
  h.dst = 0;
  h.id = 0xffff;
  h.total_len = 20;
  CHECK_EQ(ipv4_encode(&h, buf, 20), 20);
  CHECK_EQ(ipv4_decode(buf, 20, &d, &pl, &plen), WIRE_OK);
  CHECK_EQ(d.src, 0xffffffffu);
  CHECK_EQ(d.dst, 0);
  CHECK_EQ(d.id, 0xffff);
  CHECK_EQ(plen, 0);
}

static void test_ipv4_decode_vectors(void)
{
  /* A well-known header: UDP 192.168.0.1 -> 192.168.0.199, total 0x73, csum b861. */
  uint8_t p[0x73] = {0};
  hex("45 00 00 73 00 00 40 00 40 11 b8 61 c0 a8 00 01 c0 a8 00 c7", p);
  struct ipv4_hdr d;
  const uint8_t *pl;
  size_t plen;
  CHECK_EQ(ipv4_decode(p, sizeof p, &d, &pl, &plen), WIRE_OK);
  CHECK_EQ(d.version, 4);
  CHECK_EQ(d.ihl, 5);
  CHECK_EQ(d.tos, 0);
  CHECK_EQ(d.total_len, 0x73);
  CHECK_EQ(d.id, 0);
  CHECK_EQ(d.flags, IPV4_FLAG_DF);
  CHECK_EQ(d.frag_off, 0);
  CHECK_EQ(d.ttl, 64);
  CHECK_EQ(d.proto, IPPROTO_UDP_);
  CHECK_EQ(d.checksum, 0xb861);
  CHECK_EQ(d.src, 0xc0a80001);
  CHECK_EQ(d.dst, 0xc0a800c7);
  CHECK_EQ(plen, 0x73 - 20);

  /* Linux's SYN. */
  uint8_t s[80];
  size_t n = hex(linux_syn, s);
  CHECK_EQ(ipv4_decode(s, n, &d, &pl, &plen), WIRE_OK);
  CHECK_EQ(d.total_len, 60);
  CHECK_EQ(d.id, 0x0187);
  CHECK_EQ(d.flags, IPV4_FLAG_DF);
  CHECK_EQ(d.ttl, 64);
  CHECK_EQ(d.proto, IPPROTO_TCP_);
  CHECK_EQ(d.checksum, 0xb531);
  CHECK_EQ(d.src, LINUX_A);
  CHECK_EQ(d.dst, LINUX_B);
  CHECK(pl == s + 20);
  CHECK_EQ(plen, 40);

  /* Link-layer padding after total_len (Ethernet minimum frame) is excluded. */
  uint8_t r[64] = {0};
  n = hex(linux_rst, r);
  CHECK_EQ(n, 40);
  CHECK_EQ(ipv4_decode(r, 46, &d, &pl, &plen), WIRE_OK);
  CHECK_EQ(plen, 20);

  /* IP options (IHL 6: a 4-byte NOP/EOL option word) are checksummed and skipped. */
  uint8_t o[32] = {0};
  hex("46 00 00 1c 00 01 00 00 40 06 00 00 0a 00 00 01 0a 00 00 02 01 01 01 00"
      "aa bb cc dd", o);
  fix_ip_csum(o);
  CHECK_EQ(ipv4_decode(o, 28, &d, &pl, &plen), WIRE_OK);
  CHECK_EQ(d.ihl, 6);
  CHECK(pl == o + 24);
  CHECK_EQ(plen, 4);
  CHECK_EQ(pl[0], 0xaa);
}

static void test_ipv4_errors(void)
{
  uint8_t base[60], p[60];
  size_t n = hex(linux_syn, base);
  struct ipv4_hdr d;
  const uint8_t *pl;
  size_t plen;

  CHECK_EQ(ipv4_decode(base, 0, &d, &pl, &plen), WIRE_E_SHORT);
  CHECK_EQ(ipv4_decode(base, 19, &d, &pl, &plen), WIRE_E_SHORT);

  memcpy(p, base, n);
  p[0] = 0x65; /* IPv6 version nibble */
  fix_ip_csum(p);
  CHECK_EQ(ipv4_decode(p, n, &d, &pl, &plen), WIRE_E_VERSION);
  p[0] = 0x05; /* version 0 */
  CHECK_EQ(ipv4_decode(p, n, &d, &pl, &plen), WIRE_E_VERSION);

  memcpy(p, base, n);
  p[0] = 0x44; /* IHL 4 < 5 */
  CHECK_EQ(ipv4_decode(p, n, &d, &pl, &plen), WIRE_E_IHL);
  p[0] = 0x40;
  CHECK_EQ(ipv4_decode(p, n, &d, &pl, &plen), WIRE_E_IHL);
  p[0] = 0x4f; /* IHL 15 = 60 bytes, past a 40-byte buffer */
  CHECK_EQ(ipv4_decode(p, 40, &d, &pl, &plen), WIRE_E_IHL);
  CHECK_EQ(ipv4_decode(p, 59, &d, &pl, &plen), WIRE_E_IHL);

  memcpy(p, base, n);
  p[2] = 0;
  p[3] = 19; /* total length below the header */
  fix_ip_csum(p);
  CHECK_EQ(ipv4_decode(p, n, &d, &pl, &plen), WIRE_E_TOTAL_LEN);
  p[0] = 0x46; /* IHL 6 = 24 > total 23 */
  p[3] = 23;
  fix_ip_csum(p);
  CHECK_EQ(ipv4_decode(p, n, &d, &pl, &plen), WIRE_E_TOTAL_LEN);
  memcpy(p, base, n);
  p[3] = 61; /* one byte past the buffer: a truncated packet */
  fix_ip_csum(p);
  CHECK_EQ(ipv4_decode(p, n, &d, &pl, &plen), WIRE_E_TOTAL_LEN);
  CHECK_EQ(ipv4_decode(base, n - 1, &d, &pl, &plen), WIRE_E_TOTAL_LEN);

  memcpy(p, base, n);
  p[8] = 63; /* TTL changed without fixing the checksum */
  CHECK_EQ(ipv4_decode(p, n, &d, &pl, &plen), WIRE_E_IP_CHECKSUM);
  memcpy(p, base, n);
  p[11] ^= 1;
  CHECK_EQ(ipv4_decode(p, n, &d, &pl, &plen), WIRE_E_IP_CHECKSUM);

  CHECK_EQ(ipv4_encode(&d, p, 19), WIRE_E_NOSPACE);
  CHECK_EQ(ipv4_encode(&d, p, 0), WIRE_E_NOSPACE);
}

/* ---------------- TCP ---------------- */

/* Encodes h (+payload), checks the checksum, decodes into *d. */
static int tcp_rt(const struct tcp_hdr *h, const uint8_t *pay, size_t plen, struct tcp_hdr *d,
                  uint8_t *buf, size_t cap)
{
  int n = tcp_encode(h, pay, plen, 0x0a000001, 0x0a000002, buf, cap);
  if (n < 0) return n;
  CHECK(tcp_checksum_ok(0x0a000001, 0x0a000002, buf, (size_t)n));
  CHECK_EQ((size_t)n, 20 + tcp_opts_len(&h->opts) + plen);
  const uint8_t *pl;
  size_t pl_len;
  int err = tcp_decode(buf, (size_t)n, d, &pl, &pl_len);
  CHECK_EQ(err, WIRE_OK);
  CHECK_EQ(pl_len, plen);
  if (plen) CHECK_MEM(pl, pay, plen);
  return n;
}

static void test_tcp_fields_roundtrip(void)
{
  uint8_t buf[256];
  static const uint8_t pay[] = "0123456789abcdefg";
  struct tcp_hdr h = {
    .src_port = 0xfedc, .dst_port = 80, .seq = 0xdeadbeef, .ack = 0x01020304,
    .flags = TCP_ACK | TCP_PSH, .window = 0xabcd, .checksum = 0x5555, .urg_ptr = 0x7788,
  };
  struct tcp_hdr d;
  int n = tcp_rt(&h, pay, 17, &d, buf, sizeof buf);
  CHECK_EQ(n, 37);
  CHECK_EQ(d.src_port, 0xfedc);
  CHECK_EQ(d.dst_port, 80);
  CHECK_EQ(d.seq, 0xdeadbeef);
  CHECK_EQ(d.ack, 0x01020304);
  CHECK_EQ(d.data_off, 5);
  CHECK_EQ(d.reserved, 0);
  CHECK_EQ(d.flags, TCP_ACK | TCP_PSH);
  CHECK_EQ(d.window, 0xabcd);
  CHECK_EQ(d.checksum, (uint16_t)(buf[16] << 8 | buf[17]));
  CHECK_EQ(d.urg_ptr, 0x7788);
  CHECK_EQ(d.opts.present, 0);
  CHECK_EQ(d.opts.unknown_count, 0);

  /* Each of the 8 flags alone, then all of them. */
  static const uint8_t flags[] = {TCP_CWR, TCP_ECE, TCP_URG, TCP_ACK,
                                  TCP_PSH, TCP_RST, TCP_SYN, TCP_FIN, 0xff, 0};
  for (size_t i = 0; i < sizeof flags; i++) {
    h.flags = flags[i];
    tcp_rt(&h, NULL, 0, &d, buf, sizeof buf);
    CHECK_EQ(d.flags, flags[i]);
    CHECK_EQ(buf[13], flags[i]);
  }
  /* Extreme values of every numeric field. */
  struct tcp_hdr z = {0};
  tcp_rt(&z, NULL, 0, &d, buf, sizeof buf);
  CHECK_EQ(d.src_port, 0);
  CHECK_EQ(d.seq, 0);
  CHECK_EQ(d.window, 0);
  struct tcp_hdr m = {.src_port = 0xffff, .dst_port = 0xffff, .seq = 0xffffffffu,
                      .ack = 0xffffffffu, .flags = 0xff, .window = 0xffff, .urg_ptr = 0xffff};
  tcp_rt(&m, NULL, 0, &d, buf, sizeof buf);
  CHECK_EQ(d.src_port, 0xffff);
  CHECK_EQ(d.dst_port, 0xffff);
  CHECK_EQ(d.seq, 0xffffffffu);
  CHECK_EQ(d.ack, 0xffffffffu);
  CHECK_EQ(d.window, 0xffff);
  CHECK_EQ(d.urg_ptr, 0xffff);

  /* Reserved bits: encode writes 0 (even if the struct has some), decode reports them. */
  m.reserved = 0xf;
  n = tcp_encode(&m, NULL, 0, 1, 2, buf, sizeof buf);
  CHECK_EQ(n, 20);
  CHECK_EQ(buf[12], 0x50);
  buf[12] = 0x5a;
  CHECK_EQ(tcp_decode(buf, 20, &d, NULL, NULL), WIRE_OK);
  CHECK_EQ(d.reserved, 0xa);
  CHECK_EQ(d.data_off, 5);
  CHECK_EQ(d.flags, 0xff);
}

static void test_tcp_options_roundtrip(void)
{
  uint8_t buf[128];
  struct tcp_hdr d;
  /* Every subset of the five options, with every SACK block count that fits. */
  unsigned combos = 0;
  for (unsigned set = 0; set < 32; set++) {
    for (unsigned nsack = 1; nsack <= TCP_MAX_SACK_BLOCKS; nsack++) {
      if (!(set & TCP_OPT_HAS_SACK) && nsack > 1) break;
      struct tcp_hdr h = {.src_port = 1, .dst_port = 2, .seq = 3, .ack = 4,
                          .flags = TCP_ACK, .window = 5};
      struct tcp_opts *o = &h.opts;
      o->present = (uint8_t)set;
      o->mss = (uint16_t)(1460 + set);
      o->wscale = (uint8_t)(set % 15);
      o->ts_val = 0x11223344u + set;
      o->ts_ecr = 0xfffffff0u + nsack;
      o->sack_count = (set & TCP_OPT_HAS_SACK) ? (uint8_t)nsack : 0;
      for (unsigned b = 0; b < nsack; b++) {
        o->sack[b].left = 0xfffffe00u + 0x100 * b;
        o->sack[b].right = o->sack[b].left + 0x80;
      }
      size_t olen = tcp_opts_len(o);
      CHECK_EQ(olen % 4, 0);
      if (olen > 40) {
        CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), WIRE_E_NOSPACE);
        continue;
      }
      int n = tcp_rt(&h, (const uint8_t *)"xyz", 3, &d, buf, sizeof buf);
      CHECK_EQ(n, (int)(20 + olen + 3));
      CHECK_EQ(d.data_off, (20 + olen) / 4);
      CHECK_EQ(d.opts.present, set);
      CHECK_EQ(d.opts.unknown_count, 0);
      if (set & TCP_OPT_HAS_MSS) CHECK_EQ(d.opts.mss, 1460 + set);
      if (set & TCP_OPT_HAS_WSCALE) CHECK_EQ(d.opts.wscale, set % 15);
      if (set & TCP_OPT_HAS_TS) {
        CHECK_EQ(d.opts.ts_val, 0x11223344u + set);
        CHECK_EQ(d.opts.ts_ecr, 0xfffffff0u + nsack);
      }
      if (set & TCP_OPT_HAS_SACK) {
        CHECK_EQ(d.opts.sack_count, nsack);
        for (unsigned b = 0; b < nsack; b++) {
          CHECK_EQ(d.opts.sack[b].left, o->sack[b].left);
          CHECK_EQ(d.opts.sack[b].right, o->sack[b].right);
        }
      } else {
        CHECK_EQ(d.opts.sack_count, 0);
      }
      combos++;
    }
  }
  /* 32 subsets; the 16 with SACK try 4 counts; all-but-two with SACK fit. */
  CHECK(combos > 60);

  /* Wscale is carried as sent, even above 14 (the engine clamps, RFC 7323 §2.3). */
  struct tcp_hdr w = {.opts = {.present = TCP_OPT_HAS_WSCALE, .wscale = 200}};
  tcp_rt(&w, NULL, 0, &d, buf, sizeof buf);
  CHECK_EQ(d.opts.wscale, 200);
}

static void test_tcp_option_layout(void)
{
  uint8_t buf[128];
  /* A Linux SYN: mss, sackOK+TS sharing a word, nop+wscale. */
  struct tcp_hdr h = {.flags = TCP_SYN, .opts = {
    .present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_SACK_PERM | TCP_OPT_HAS_TS | TCP_OPT_HAS_WSCALE,
    .mss = 1460, .wscale = 7, .ts_val = 0x01020304, .ts_ecr = 0}};
  CHECK_EQ(tcp_opts_len(&h.opts), 20);
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), 40);
  uint8_t want[40];
  hex("020405b4 0402080a 01020304 00000000 01030307", want);
  CHECK_MEM(buf + 20, want, 20);
  CHECK_EQ(buf[12], 0xa0);

  /* TS alone: nop nop ts. */
  struct tcp_opts o = {.present = TCP_OPT_HAS_TS, .ts_val = 5, .ts_ecr = 6};
  h.opts = o;
  CHECK_EQ(tcp_opts_len(&o), 12);
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), 32);
  hex("0101080a 00000005 00000006", want);
  CHECK_MEM(buf + 20, want, 12);

  /* SACK_PERM alone: nop nop sackOK. */
  h.opts = (struct tcp_opts){.present = TCP_OPT_HAS_SACK_PERM};
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), 24);
  hex("01010402", want);
  CHECK_MEM(buf + 20, want, 4);

  /* TS + SACK: nop nop ts, nop nop sack. */
  h.opts = (struct tcp_opts){.present = TCP_OPT_HAS_TS | TCP_OPT_HAS_SACK, .ts_val = 1,
                             .ts_ecr = 2, .sack_count = 1, .sack = {{100, 200}}};
  CHECK_EQ(tcp_opts_len(&h.opts), 24);
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), 44);
  hex("0101080a 00000001 00000002 0101050a 00000064 000000c8", want);
  CHECK_MEM(buf + 20, want, 24);

  /* HAS_SACK with no blocks writes nothing (an empty SACK option is illegal). */
  h.opts = (struct tcp_opts){.present = TCP_OPT_HAS_SACK, .sack_count = 0};
  CHECK_EQ(tcp_opts_len(&h.opts), 0);
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), 20);
  /* Four SACK blocks alone: 36 bytes. */
  h.opts = (struct tcp_opts){.present = TCP_OPT_HAS_SACK, .sack_count = 4};
  CHECK_EQ(tcp_opts_len(&h.opts), 36);
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), 56);
  CHECK_EQ(buf[23], 34);
  /* unknown_count is decode-only. */
  h.opts = (struct tcp_opts){.unknown_count = 3};
  CHECK_EQ(tcp_opts_len(&h.opts), 0);
}

static void test_tcp_linux_packets(void)
{
  uint8_t p[80], out[80];
  struct tcp_packet pk;

  /* The SYN, every field. */
  size_t n = hex(linux_syn, p);
  CHECK_EQ(tcp_packet_decode(p, n, &pk), WIRE_OK);
  CHECK_EQ(pk.ip.src, LINUX_A);
  CHECK_EQ(pk.ip.dst, LINUX_B);
  CHECK_EQ(pk.tcp.src_port, 56586);
  CHECK_EQ(pk.tcp.dst_port, 8080);
  CHECK_EQ(pk.tcp.seq, 0xd3a1f6b0u);
  CHECK_EQ(pk.tcp.ack, 0);
  CHECK_EQ(pk.tcp.data_off, 10);
  CHECK_EQ(pk.tcp.reserved, 0);
  CHECK_EQ(pk.tcp.flags, TCP_SYN);
  CHECK_EQ(pk.tcp.window, 64240);
  CHECK_EQ(pk.tcp.checksum, 0x3373);
  CHECK_EQ(pk.tcp.urg_ptr, 0);
  CHECK_EQ(pk.tcp.opts.present,
           TCP_OPT_HAS_MSS | TCP_OPT_HAS_SACK_PERM | TCP_OPT_HAS_TS | TCP_OPT_HAS_WSCALE);
  CHECK_EQ(pk.tcp.opts.mss, 1460);
  CHECK_EQ(pk.tcp.opts.ts_val, 0xaf2e1f79u);
  CHECK_EQ(pk.tcp.opts.ts_ecr, 0);
  CHECK_EQ(pk.tcp.opts.wscale, 10);
  CHECK_EQ(pk.tcp.opts.sack_count, 0);
  CHECK_EQ(pk.tcp.opts.unknown_count, 0);
  CHECK_EQ(pk.payload_len, 0);
  CHECK(pk.payload == p + 60);
  /* Re-encoding gives Linux's exact bytes, checksums included. */
  CHECK_EQ(tcp_packet_encode(&pk.tcp, NULL, 0, LINUX_A, LINUX_B, pk.ip.id, out, sizeof out), 60);
  CHECK_MEM(out, p, 60);

  /* The SYN-ACK. */
  n = hex(linux_synack, p);
  CHECK_EQ(tcp_packet_decode(p, n, &pk), WIRE_OK);
  CHECK_EQ(pk.tcp.src_port, 80);
  CHECK_EQ(pk.tcp.dst_port, 40000);
  CHECK_EQ(pk.tcp.seq, 0x4443706bu);
  CHECK_EQ(pk.tcp.ack, 1001);
  CHECK_EQ(pk.tcp.flags, TCP_SYN | TCP_ACK);
  CHECK_EQ(pk.tcp.window, 65160);
  CHECK_EQ(pk.tcp.opts.mss, 1460);
  CHECK_EQ(pk.tcp.opts.ts_val, 0x3ecbcb9cu);
  CHECK_EQ(pk.tcp.opts.ts_ecr, 100);
  CHECK_EQ(pk.tcp.opts.wscale, 10);
  CHECK_EQ(tcp_packet_encode(&pk.tcp, NULL, 0, LINUX_A, LINUX_B, pk.ip.id, out, sizeof out), 60);
  CHECK_MEM(out, p, 60);

  /* Data: PSH|ACK with "hello\n". */
  n = hex(linux_data, p);
  CHECK_EQ(tcp_packet_decode(p, n, &pk), WIRE_OK);
  CHECK_EQ(pk.tcp.flags, TCP_PSH | TCP_ACK);
  CHECK_EQ(pk.tcp.seq, 0xd3a1f6b1u);
  CHECK_EQ(pk.tcp.ack, 0x5001);
  CHECK_EQ(pk.tcp.window, 63);
  CHECK_EQ(pk.tcp.data_off, 8);
  CHECK_EQ(pk.tcp.opts.present, TCP_OPT_HAS_TS);
  CHECK_EQ(pk.tcp.opts.ts_val, 0xaf2e1f79u);
  CHECK_EQ(pk.tcp.opts.ts_ecr, 0x11223344u);
  CHECK_EQ(pk.payload_len, 6);
  CHECK_MEM(pk.payload, "hello\n", 6);
  CHECK_EQ(tcp_packet_encode(&pk.tcp, pk.payload, pk.payload_len, LINUX_A, LINUX_B, pk.ip.id,
                             out, sizeof out), 58);
  CHECK_MEM(out, p, 58);

  /* FIN|ACK. */
  n = hex(linux_fin, p);
  CHECK_EQ(tcp_packet_decode(p, n, &pk), WIRE_OK);
  CHECK_EQ(pk.tcp.flags, TCP_FIN | TCP_ACK);
  CHECK_EQ(pk.tcp.seq, 0xd3a1f6b7u);
  CHECK_EQ(tcp_packet_encode(&pk.tcp, NULL, 0, LINUX_A, LINUX_B, pk.ip.id, out, sizeof out), 52);
  CHECK_MEM(out, p, 52);

  /* RST|ACK, no options. */
  n = hex(linux_rst, p);
  CHECK_EQ(tcp_packet_decode(p, n, &pk), WIRE_OK);
  CHECK_EQ(pk.tcp.flags, TCP_RST | TCP_ACK);
  CHECK_EQ(pk.tcp.seq, 0);
  CHECK_EQ(pk.tcp.ack, 5001);
  CHECK_EQ(pk.tcp.window, 0);
  CHECK_EQ(pk.tcp.data_off, 5);
  CHECK_EQ(pk.tcp.opts.present, 0);
  CHECK_EQ(tcp_packet_encode(&pk.tcp, NULL, 0, LINUX_A, LINUX_B, pk.ip.id, out, sizeof out), 40);
  CHECK_MEM(out, p, 40);
}

/* Builds a bare 20-byte header followed by the given option bytes (padded with EOL
 * to a multiple of 4) and decodes it. */
static int decode_opts(const char *opts_hex, struct tcp_hdr *d)
{
  uint8_t seg[80] = {0};
  size_t olen = hex(opts_hex, seg + 20);
  size_t hlen = 20 + ((olen + 3) & ~(size_t)3);
  seg[12] = (uint8_t)(hlen / 4) << 4;
  seg[13] = TCP_ACK;
  return tcp_decode(seg, hlen, d, NULL, NULL);
}

static void test_tcp_errors(void)
{
  uint8_t seg[80] = {0};
  struct tcp_hdr d;
  const uint8_t *pl;
  size_t plen;

  CHECK_EQ(tcp_decode(seg, 0, &d, &pl, &plen), WIRE_E_SHORT);
  CHECK_EQ(tcp_decode(seg, 19, &d, &pl, &plen), WIRE_E_SHORT);
  seg[12] = 0x40; /* data offset 4 */
  CHECK_EQ(tcp_decode(seg, 20, &d, &pl, &plen), WIRE_E_DATA_OFFSET);
  seg[12] = 0x00;
  CHECK_EQ(tcp_decode(seg, 20, &d, &pl, &plen), WIRE_E_DATA_OFFSET);
  seg[12] = 0x60; /* 24 bytes of header in a 23-byte segment */
  CHECK_EQ(tcp_decode(seg, 23, &d, &pl, &plen), WIRE_E_DATA_OFFSET);
  seg[12] = 0xf0; /* 60 > 59 */
  CHECK_EQ(tcp_decode(seg, 59, &d, &pl, &plen), WIRE_E_DATA_OFFSET);
  memset(seg + 20, TCPOPT_NOP, 40);
  CHECK_EQ(tcp_decode(seg, 60, &d, &pl, &plen), WIRE_OK);
  CHECK_EQ(plen, 0);

  /* Option lengths. */
  CHECK_EQ(decode_opts("0200", &d), WIRE_E_OPT_LEN);              /* len 0 */
  CHECK_EQ(decode_opts("0201", &d), WIRE_E_OPT_LEN);              /* len 1 */
  CHECK_EQ(decode_opts("1e00", &d), WIRE_E_OPT_LEN);              /* unknown, len 0 */
  CHECK_EQ(decode_opts("1e01", &d), WIRE_E_OPT_LEN);              /* unknown, len 1 */
  CHECK_EQ(decode_opts("010101 02", &d), WIRE_E_OPT_LEN);         /* length byte missing */
  CHECK_EQ(decode_opts("0101 0205", &d), WIRE_E_OPT_LEN);         /* runs past the header */
  CHECK_EQ(decode_opts("0101 080a 0000 0000", &d), WIRE_E_OPT_LEN); /* TS, 8 of 10 bytes */
  CHECK_EQ(decode_opts("1e0d 00000000 000000", &d), WIRE_E_OPT_LEN); /* 13 > 12 */

  /* Known kinds with a wrong fixed length. */
  CHECK_EQ(decode_opts("020305 01", &d), WIRE_E_OPT_VALUE);        /* MSS len 3 */
  CHECK_EQ(decode_opts("02050000 00", &d), WIRE_E_OPT_VALUE);      /* MSS len 5 */
  CHECK_EQ(decode_opts("030407 00", &d), WIRE_E_OPT_VALUE);        /* WSCALE len 4 */
  CHECK_EQ(decode_opts("0302", &d), WIRE_E_OPT_VALUE);             /* WSCALE len 2 */
  CHECK_EQ(decode_opts("040300", &d), WIRE_E_OPT_VALUE);           /* SACK_PERM len 3 */
  CHECK_EQ(decode_opts("0808 000000000000", &d), WIRE_E_OPT_VALUE); /* TS len 8 */
  CHECK_EQ(decode_opts("080b 0000000000000000 00", &d), WIRE_E_OPT_VALUE); /* TS len 11 */
  CHECK_EQ(decode_opts("050b 0000000000000000 00", &d), WIRE_E_OPT_VALUE); /* SACK len 11 */
  CHECK_EQ(decode_opts("0502", &d), WIRE_E_OPT_VALUE);             /* SACK, 0 blocks */
  CHECK_EQ(decode_opts("0503 00", &d), WIRE_E_OPT_VALUE);          /* SACK len 3 */
  CHECK_EQ(decode_opts("050a 0000000100000002", &d), WIRE_OK);     /* SACK, 1 block */
  CHECK_EQ(d.opts.sack_count, 1);
  CHECK_EQ(d.opts.sack[0].left, 1);
  CHECK_EQ(d.opts.sack[0].right, 2);
  CHECK_EQ(decode_opts("0101 0522 00000001 00000002 00000003 00000004 00000005 00000006"
                       " 00000007 00000008", &d), WIRE_OK);        /* SACK, 4 blocks */
  CHECK_EQ(d.opts.sack_count, 4);
  CHECK_EQ(d.opts.sack[3].right, 8);
  /* A 5-block SACK (42 bytes) cannot fit in 40 bytes of options: a length error. */
  CHECK_EQ(decode_opts("052a 00000001 00000002 00000003 00000004 00000005 00000006"
                       " 00000007 00000008 00000009", &d), WIRE_E_OPT_LEN);
}

static void test_tcp_unknown_and_eol(void)
{
  struct tcp_hdr d;
  /* Kind 30 len 6 (MPTCP), then MSS: skipped by its length and counted. */
  CHECK_EQ(decode_opts("1e06 00112233 020405b4", &d), WIRE_OK);
  CHECK_EQ(d.opts.unknown_count, 1);
  CHECK_EQ(d.opts.present, TCP_OPT_HAS_MSS);
  CHECK_EQ(d.opts.mss, 1460);
  /* Two unknown kinds (254 experimental len 4, 19 MD5 len 18) and a TS. */
  CHECK_EQ(decode_opts("fe04abcd 1312 00000000000000000000000000000000 0101"
                       "080a 00000007 00000008", &d), WIRE_OK);
  CHECK_EQ(d.opts.unknown_count, 2);
  CHECK_EQ(d.opts.present, TCP_OPT_HAS_TS);
  CHECK_EQ(d.opts.ts_val, 7);
  CHECK_EQ(d.opts.ts_ecr, 8);
  /* An unknown option of length 2 (no data). */
  CHECK_EQ(decode_opts("6302", &d), WIRE_OK);
  CHECK_EQ(d.opts.unknown_count, 1);

  /* EOL ends parsing: what follows (here a malformed MSS) is not looked at. */
  CHECK_EQ(decode_opts("020405b4 00 0201 ff", &d), WIRE_OK);
  CHECK_EQ(d.opts.present, TCP_OPT_HAS_MSS);
  CHECK_EQ(d.opts.mss, 1460);
  CHECK_EQ(decode_opts("00 030307", &d), WIRE_OK);
  CHECK_EQ(d.opts.present, 0);
  /* NOPs alone are fine. */
  CHECK_EQ(decode_opts("01010101", &d), WIRE_OK);
  CHECK_EQ(d.opts.present, 0);
  CHECK_EQ(d.opts.unknown_count, 0);
  /* A repeated option: the last one wins, as in Linux. */
  CHECK_EQ(decode_opts("020405b4 02040218", &d), WIRE_OK);
  CHECK_EQ(d.opts.mss, 536);
}

static void test_tcp_nospace(void)
{
  uint8_t buf[128];
  static const uint8_t pay[10] = "abcdefghi";
  struct tcp_hdr h = {.flags = TCP_SYN, .opts = {.present = TCP_OPT_HAS_MSS, .mss = 1460}};
  CHECK_EQ(tcp_encode(&h, pay, 10, 1, 2, buf, 34), 34);
  CHECK_EQ(tcp_encode(&h, pay, 10, 1, 2, buf, 33), WIRE_E_NOSPACE);
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, 23), WIRE_E_NOSPACE);
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, 0), WIRE_E_NOSPACE);
  /* Options beyond 40 bytes: all five with 3 SACK blocks = 48. */
  h.opts = (struct tcp_opts){.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_SACK_PERM | TCP_OPT_HAS_TS |
                                        TCP_OPT_HAS_WSCALE | TCP_OPT_HAS_SACK, .sack_count = 3};
  CHECK_EQ(tcp_opts_len(&h.opts), 48);
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), WIRE_E_NOSPACE);
  h.opts.sack_count = 2; /* exactly 40 fits */
  CHECK_EQ(tcp_opts_len(&h.opts), 40);
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), 60);
  /* More SACK blocks than the struct holds. */
  h.opts = (struct tcp_opts){.present = TCP_OPT_HAS_SACK, .sack_count = 5};
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), WIRE_E_NOSPACE);
  h.opts.sack_count = 255;
  CHECK_EQ(tcp_encode(&h, NULL, 0, 1, 2, buf, sizeof buf), WIRE_E_NOSPACE);
  /* A segment longer than the 16-bit pseudo-header length. */
  uint8_t *big = calloc(1, 70000), *out = malloc(70000);
  CHECK(big != NULL && out != NULL);
  if (big && out) {
    h.opts = (struct tcp_opts){0};
    CHECK_EQ(tcp_encode(&h, big, 65515, 1, 2, out, 70000), 65535);
    CHECK(tcp_checksum_ok(1, 2, out, 65535));
    CHECK_EQ(tcp_encode(&h, big, 65516, 1, 2, out, 70000), WIRE_E_NOSPACE);
    CHECK_EQ(tcp_packet_encode(&h, big, 65495, 1, 2, 0, out, 70000), 65535);
    CHECK_EQ(tcp_packet_encode(&h, big, 65496, 1, 2, 0, out, 70000), WIRE_E_NOSPACE);
  }
  free(big);
  free(out);
  /* Whole packet. */
  h.opts = (struct tcp_opts){.present = TCP_OPT_HAS_MSS, .mss = 1460};
  CHECK_EQ(tcp_packet_encode(&h, pay, 10, 1, 2, 7, buf, 54), 54);
  CHECK_EQ(tcp_packet_encode(&h, pay, 10, 1, 2, 7, buf, 53), WIRE_E_NOSPACE);
  CHECK_EQ(tcp_packet_encode(&h, NULL, 0, 1, 2, 7, buf, 19), WIRE_E_NOSPACE);
  CHECK_EQ(tcp_packet_encode(&h, NULL, 0, 1, 2, 7, buf, 0), WIRE_E_NOSPACE);
}

static void test_tcp_packet(void)
{
  uint8_t p[128], q[128];
  struct tcp_packet pk;
  static const uint8_t pay[] = "GET / HTTP/1.0\r\n\r\n";
  struct tcp_hdr h = {.src_port = 12345, .dst_port = 80, .seq = 1000, .ack = 2000,
                      .flags = TCP_PSH | TCP_ACK, .window = 512,
                      .opts = {.present = TCP_OPT_HAS_TS, .ts_val = 9, .ts_ecr = 8}};
  int n = tcp_packet_encode(&h, pay, 18, 0x0a000001, 0x0a000002, 0x4242, p, sizeof p);
  CHECK_EQ(n, 20 + 32 + 18);
  CHECK_EQ(tcp_packet_decode(p, (size_t)n, &pk), WIRE_OK);
  CHECK_EQ(pk.ip.version, 4);
  CHECK_EQ(pk.ip.ihl, 5);
  CHECK_EQ(pk.ip.total_len, n);
  CHECK_EQ(pk.ip.id, 0x4242);
  CHECK_EQ(pk.ip.flags, IPV4_FLAG_DF);
  CHECK_EQ(pk.ip.frag_off, 0);
  CHECK_EQ(pk.ip.ttl, 64);
  CHECK_EQ(pk.ip.proto, IPPROTO_TCP_);
  CHECK_EQ(pk.ip.src, 0x0a000001);
  CHECK_EQ(pk.ip.dst, 0x0a000002);
  CHECK_EQ(pk.tcp.src_port, 12345);
  CHECK_EQ(pk.tcp.seq, 1000);
  CHECK_EQ(pk.tcp.opts.ts_val, 9);
  CHECK_EQ(pk.payload_len, 18);
  CHECK(pk.payload == p + 52);
  CHECK_MEM(pk.payload, pay, 18);

  /* A fragment: MF set, or a non-zero offset. */
  memcpy(q, p, (size_t)n);
  q[6] |= 0x20; /* MF */
  fix_ip_csum(q);
  CHECK_EQ(tcp_packet_decode(q, (size_t)n, &pk), WIRE_E_FRAGMENT);
  memcpy(q, p, (size_t)n);
  q[7] = 0x10; /* offset 16*8 */
  fix_ip_csum(q);
  CHECK_EQ(tcp_packet_decode(q, (size_t)n, &pk), WIRE_E_FRAGMENT);
  /* ...which ipv4_decode alone still accepts. */
  struct ipv4_hdr ip;
  CHECK_EQ(ipv4_decode(q, (size_t)n, &ip, NULL, NULL), WIRE_OK);
  CHECK_EQ(ip.frag_off, 0x10);

  /* Not TCP: UDP and ICMP. */
  memcpy(q, p, (size_t)n);
  q[9] = IPPROTO_UDP_;
  fix_ip_csum(q);
  CHECK_EQ(tcp_packet_decode(q, (size_t)n, &pk), WIRE_E_PROTO);
  q[9] = IPPROTO_ICMP_;
  fix_ip_csum(q);
  CHECK_EQ(tcp_packet_decode(q, (size_t)n, &pk), WIRE_E_PROTO);

  /* A corrupted byte anywhere in the segment: header, option, payload. */
  static const size_t at[] = {20, 24, 33, 40, 45, 52, 69};
  for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
    memcpy(q, p, (size_t)n);
    q[at[i]] ^= 0x04;
    CHECK_EQ(tcp_packet_decode(q, (size_t)n, &pk), WIRE_E_TCP_CHECKSUM);
  }
  /* Corrupted IP header. */
  memcpy(q, p, (size_t)n);
  q[15] ^= 1;
  CHECK_EQ(tcp_packet_decode(q, (size_t)n, &pk), WIRE_E_IP_CHECKSUM);

  /* Structural TCP errors still surface through tcp_packet_decode. */
  memcpy(q, p, (size_t)n);
  q[2] = 0;
  q[3] = 39; /* 19 bytes of TCP */
  fix_ip_csum(q);
  CHECK_EQ(tcp_packet_decode(q, (size_t)n, &pk), WIRE_E_SHORT);
  memcpy(q, p, (size_t)n);
  q[32] = 0x40; /* data offset 4 */
  fix_tcp_csum(q + 20, (size_t)n - 20, 0x0a000001, 0x0a000002);
  CHECK_EQ(tcp_packet_decode(q, (size_t)n, &pk), WIRE_E_DATA_OFFSET);
  memcpy(q, p, (size_t)n);
  q[43] = 9; /* TS option length 9, checksum fixed */
  fix_tcp_csum(q + 20, (size_t)n - 20, 0x0a000001, 0x0a000002);
  CHECK_EQ(tcp_packet_decode(q, (size_t)n, &pk), WIRE_E_OPT_VALUE);
  CHECK_EQ(tcp_packet_decode(q, 10, &pk), WIRE_E_SHORT);
}

/* Every prefix of every real packet, decoded from an exactly-sized heap copy so that
 * AddressSanitizer would see a read past the end. */
static void test_truncations(void)
{
  static const char *const pkts[] = {linux_syn, linux_synack, linux_data, linux_fin, linux_rst};
  unsigned ok = 0, bad = 0;
  for (size_t i = 0; i < sizeof pkts / sizeof pkts[0]; i++) {
    uint8_t p[80];
    size_t n = hex(pkts[i], p);
    for (size_t len = 0; len <= n; len++) {
      uint8_t *c = malloc(len ? len : 1);
      memcpy(c, p, len);
      struct tcp_packet pk;
      struct tcp_hdr th;
      struct ipv4_hdr ih;
      int e1 = tcp_packet_decode(c, len, &pk);
      int e2 = len >= 20 ? tcp_decode(c + 20, len - 20, &th, NULL, NULL) : WIRE_E_SHORT;
      int e3 = ipv4_decode(c, len, &ih, NULL, NULL);
      if (len == n) ok += (e1 == WIRE_OK && e2 == WIRE_OK && e3 == WIRE_OK);
      else bad += (e1 < 0 && e3 < 0);
      (void)e2;
      free(c);
    }
  }
  CHECK_EQ(ok, 5);
  CHECK_EQ(bad, 60 + 60 + 58 + 52 + 40);
}

/* ---------------- text ---------------- */

static void test_flags_str(void)
{
  char b[16];
  CHECK_STR(tcp_flags_str(TCP_SYN, b, sizeof b), "S");
  CHECK_STR(tcp_flags_str(TCP_SYN | TCP_ACK, b, sizeof b), "S.");
  CHECK_STR(tcp_flags_str(TCP_ACK, b, sizeof b), ".");
  CHECK_STR(tcp_flags_str(TCP_PSH | TCP_ACK, b, sizeof b), "P.");
  CHECK_STR(tcp_flags_str(TCP_FIN | TCP_ACK, b, sizeof b), "F.");
  CHECK_STR(tcp_flags_str(TCP_RST | TCP_ACK, b, sizeof b), "R.");
  CHECK_STR(tcp_flags_str(TCP_RST, b, sizeof b), "R");
  CHECK_STR(tcp_flags_str(TCP_FIN | TCP_PSH | TCP_ACK, b, sizeof b), "FP.");
  CHECK_STR(tcp_flags_str(TCP_SYN | TCP_ECE | TCP_CWR, b, sizeof b), "SEW");
  CHECK_STR(tcp_flags_str(TCP_URG | TCP_ACK, b, sizeof b), ".U");
  CHECK_STR(tcp_flags_str(0xff, b, sizeof b), "FSRP.UEW");
  CHECK_STR(tcp_flags_str(0, b, sizeof b), "");
  CHECK(tcp_flags_str(TCP_SYN, b, sizeof b) == b);
  /* Truncated, never overflowing. */
  memset(b, 'x', sizeof b);
  CHECK_STR(tcp_flags_str(0xff, b, 4), "FSR");
  CHECK_EQ(b[4], 'x');
  CHECK_STR(tcp_flags_str(0xff, b, 1), "");
  b[0] = 'q';
  tcp_flags_str(0xff, b, 0);
  CHECK_EQ(b[0], 'q');
}

static void test_ipv4_text(void)
{
  char b[16];
  CHECK_STR(ipv4_str(0xc0000201, b, sizeof b), "192.0.2.1");
  CHECK_STR(ipv4_str(0, b, sizeof b), "0.0.0.0");
  CHECK_STR(ipv4_str(0xffffffffu, b, sizeof b), "255.255.255.255");
  CHECK_STR(ipv4_str(0x0a000102, b, sizeof b), "10.0.1.2");
  CHECK_STR(ipv4_str(0xc0000201, b, 6), "192.0");

  uint32_t a = 0;
  CHECK_EQ(ipv4_parse("192.0.2.1", &a), 0);
  CHECK_EQ(a, 0xc0000201);
  CHECK_EQ(ipv4_parse("255.255.255.255", &a), 0);
  CHECK_EQ(a, 0xffffffffu);
  CHECK_EQ(ipv4_parse("0.0.0.0", &a), 0);
  CHECK_EQ(a, 0);
  CHECK_EQ(ipv4_parse("10.200.30.4", &a), 0);
  CHECK_EQ(a, 0x0ac81e04);
  a = 77;
  static const char *const bad[] = {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256",
                                    "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4 ", " 1.2.3.4",
                                    "a.b.c.d", "1.2.3.-4", "01.2.3.4", "1.2.3.0004",
                                    "1.2.3.4x", "1000.2.3.4", "+1.2.3.4", "1,2,3,4"};
  unsigned rejected = 0;
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) rejected += ipv4_parse(bad[i], &a) == -1;
  CHECK_EQ(rejected, sizeof bad / sizeof bad[0]);
  CHECK_EQ(a, 77); /* untouched on failure */
  CHECK_EQ(ipv4_parse(NULL, &a), -1);
  /* Text round trip over a spread of addresses. */
  unsigned mismatches = 0;
  uint32_t x = 1;
  for (int i = 0; i < 1000; i++, x = x * 2654435761u + 12345) {
    uint32_t y = ~x;
    if (ipv4_parse(ipv4_str(x, b, sizeof b), &y) != 0 || y != x) mismatches++;
  }
  CHECK_EQ(mismatches, 0);
  CHECK_EQ(ipv4_parse(ipv4_str(0x7f000001, b, sizeof b), &a), 0);
  CHECK_EQ(a, 0x7f000001);
}

static void test_strerror(void)
{
  /* Every code has its own message. */
  const char *seen[16] = {0};
  unsigned distinct = 0;
  for (int e = WIRE_OK; e >= WIRE_E_NOSPACE; e--) {
    const char *s = wire_strerror(e);
    CHECK(s != NULL && s[0] != '\0');
    int dup = 0;
    for (int j = 0; j < -e; j++) dup |= strcmp(seen[j], s) == 0;
    seen[-e] = s;
    distinct += !dup;
    CHECK(strcmp(s, wire_strerror(-100)) != 0);
  }
  CHECK_EQ(distinct, 13);
  CHECK(wire_strerror(1) != NULL);
}

int main(void)
{
  RUN(test_ipv4_roundtrip);
  RUN(test_ipv4_decode_vectors);
  RUN(test_ipv4_errors);
  RUN(test_tcp_fields_roundtrip);
  RUN(test_tcp_options_roundtrip);
  RUN(test_tcp_option_layout);
  RUN(test_tcp_linux_packets);
  RUN(test_tcp_errors);
  RUN(test_tcp_unknown_and_eol);
  RUN(test_tcp_nospace);
  RUN(test_tcp_packet);
  RUN(test_truncations);
  RUN(test_flags_str);
  RUN(test_ipv4_text);
  RUN(test_strerror);
  return check_report();
}
