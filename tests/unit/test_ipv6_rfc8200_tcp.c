/* TCP over IPv6 (issue 16 point 1; RFC 8200, RFC 4443, RFC 8201): two stacks on
 * an in-memory link that carries both families, plus forged packets.
 *   handshake, data exactly once, close; MSS = MTU - 60; every segment on the wire
 *   is IPv6 with a valid pseudo-header checksum (RFC 8200 §8.1)
 *   RST to a closed port (connect fails ECONNREFUSED)
 *   v4-mapped: a listener on [::] takes IPv4 and reports ::ffff:a.b.c.d, not with
 *   IPV6_V6ONLY; connect() to ::ffff:a.b.c.d speaks IPv4
 *   ICMPv6 echo; Packet Too Big lowers snd_mss (floor 1280)
 *   forged: extension-header chains, fragments, martian sources: dropped,
 *   counted, unanswered; interned addresses all released afterwards */
#include <errno.h>
#include "check.h"
#include "stack/stack.h"
#include "stack/stack_check.h"
#include "wire/ipv6.h"
#include "wire/bytes.h"

#define NPKT 4096
struct pkt { int to; size_t len; uint8_t b[2048]; };
static struct pkt q[NPKT];
static size_t qh, qt;
static struct ustcp_stack *st[2];
static uint64_t now = 1000;
static unsigned v4_seen, v6_seen, bad_csum6;
static uint16_t syn_mss;   /* MSS option of the last IPv6 SYN seen */

static const uint8_t A6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t B6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
#define A4 0x0a000001u
#define B4 0x0a000002u

static void inspect(const uint8_t *p, size_t len)
{
  if (len && p[0] >> 4 == 4) { v4_seen++; return; }
  v6_seen++;
  struct ipv6_pkt ip;
  if (ipv6_decode(p, len, &ip) != 0 || ip.proto != IPPROTO_TCP_) return;
  uint32_t sum = ipv6_pseudo_sum(ip.h.src, ip.h.dst, (uint32_t)ip.upper_len, IPPROTO_TCP_);
  if (inet_csum_fold(inet_csum_add(sum, p + ip.upper_off, ip.upper_len)) != 0) bad_csum6++;
  struct tcp_hdr h;
  const uint8_t *pl;
  size_t plen;
  if (tcp_decode(p + ip.upper_off, ip.upper_len, &h, &pl, &plen) == 0 && (h.flags & TCP_SYN) &&
      (h.opts.present & TCP_OPT_HAS_MSS))
    syn_mss = h.opts.mss;
}

static void out_cb(void *ctx, const uint8_t *p, size_t len)
{
  int from = (int)(intptr_t)ctx;
  inspect(p, len);
  if (len > sizeof q[0].b || qt - qh >= NPKT) return;
  struct pkt *k = &q[qt++ % NPKT];
  k->to = 1 - from;
  k->len = len;
  memcpy(k->b, p, len);
}

static void invariants(void)
{
  char b[256];
  for (int i = 0; i < 2; i++) {
    const char *why = stack_check(st[i], false, b, sizeof b);
    if (why) fprintf(stderr, "stack %d: %s\n", i, why);
    CHECK(why == NULL);
  }
}

static void pump(uint64_t us)
{
  uint64_t end = now + us;
  while (now < end) {
    while (qh < qt) {
      struct pkt *k = &q[qh++ % NPKT];
      ustcp_input(st[k->to], k->b, k->len, now);
    }
    now += 1000;
    ustcp_poll(st[0], now);
    ustcp_poll(st[1], now);
  }
  invariants();
}

static void setup_cfg(const struct ustcp_config *cfg)
{
  qh = qt = 0;
  v4_seen = v6_seen = bad_csum6 = 0;
  st[0] = ustcp_stack_new(NULL, A4, 1, out_cb, (void *)(intptr_t)0);
  st[1] = ustcp_stack_new(cfg, B4, 2, out_cb, (void *)(intptr_t)1);
  CHECK_EQ(ustcp_stack_add_addr6(st[0], A6), 0);
  CHECK_EQ(ustcp_stack_add_addr6(st[1], B6), 0);
}

static void setup(void) { setup_cfg(NULL); }

static void teardown(void)
{
  invariants();
  ustcp_stack_free(st[0]);
  ustcp_stack_free(st[1]);
}

static struct ustcp_addr addr6(const uint8_t a[16], uint16_t port)
{
  struct ustcp_addr x = {.family = USTCP_AF_INET6, .port = port};
  memcpy(x.ip6, a, 16);
  return x;
}

static int listen6(struct ustcp_stack *s, uint16_t port, bool v6only)
{
  int l = ustcp_socket(s);
  int one = 1;
  if (v6only) CHECK_EQ(ustcp_setsockopt(s, l, USTCP_IPPROTO_IPV6, USTCP_IPV6_V6ONLY, &one, sizeof one), 0);
  static const uint8_t any[16];
  struct ustcp_addr a = addr6(any, port);
  CHECK_EQ(ustcp_bind(s, l, &a), 0);
  CHECK_EQ(ustcp_listen(s, l, 16), 0);
  return l;
}

static void test_api_addr6(void)
{
  setup();
  static const uint8_t loop[16] = {[15] = 1};
  static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 9};
  CHECK_EQ(ustcp_stack_add_addr6(st[0], loop), -EINVAL);
  CHECK_EQ(ustcp_stack_add_addr6(st[0], mapped), -EINVAL);
  uint8_t got[16];
  CHECK(ustcp_local_ip6(st[0], got));
  CHECK_MEM(got, A6, 16);
  /* bind to someone else's address: EADDRNOTAVAIL; to ours: fine */
  int fd = ustcp_socket(st[0]);
  struct ustcp_addr b = addr6(B6, 1000);
  CHECK_EQ(ustcp_bind(st[0], fd, &b), -EADDRNOTAVAIL);
  struct ustcp_addr a = addr6(A6, 1000);
  CHECK_EQ(ustcp_bind(st[0], fd, &a), 0);
  struct ustcp_addr n;
  CHECK_EQ(ustcp_getsockname(st[0], fd, &n), 0);
  CHECK_EQ(n.family, USTCP_AF_INET6);
  CHECK_MEM(n.ip6, A6, 16);
  CHECK_EQ(n.port, 1000);
  /* an IPv6-bound socket cannot connect to plain IPv4 */
  struct ustcp_addr v4 = {B4, 80};
  CHECK_EQ(ustcp_connect(st[0], fd, &v4), -EAFNOSUPPORT);
  CHECK_EQ(ustcp_close(st[0], fd), 0);
  /* no IPv6 address: no route */
  struct ustcp_stack *bare = ustcp_stack_new(NULL, A4, 3, out_cb, NULL);
  int f2 = ustcp_socket(bare);
  struct ustcp_addr to = addr6(B6, 80);
  CHECK_EQ(ustcp_connect(bare, f2, &to), -ENETUNREACH);
  ustcp_stack_free(bare);
  teardown();
}

static void test_handshake_data_close(void)
{
  setup();
  int l = listen6(st[1], 80, false);
  int c = ustcp_socket(st[0]);
  struct ustcp_addr to = addr6(B6, 80);
  CHECK_EQ(ustcp_connect(st[0], c, &to), -EINPROGRESS);
  pump(50000);
  struct ustcp_tcp_info ti;
  CHECK_EQ(ustcp_get_info(st[0], c, &ti), 0);
  CHECK_EQ(ti.state, USTCP_ESTABLISHED);
  CHECK_EQ(syn_mss, 1500 - 60);            /* MSS from the IPv6 MTU */
  CHECK_EQ(ti.snd_mss, 1500 - 60 - 12);    /* less the timestamp option */
  struct ustcp_addr peer;
  int s = ustcp_accept(st[1], l, &peer);
  CHECK(s >= 0);
  CHECK_EQ(peer.family, USTCP_AF_INET6);
  CHECK_MEM(peer.ip6, A6, 16);
  struct ustcp_addr me;
  CHECK_EQ(ustcp_getsockname(st[1], s, &me), 0);
  CHECK_EQ(me.family, USTCP_AF_INET6);
  CHECK_MEM(me.ip6, B6, 16);
  CHECK_EQ(me.port, 80);
  /* 200 kB each way... one way, exactly once and in order */
  static uint8_t src[200000], dst[200000];
  for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 7 + (i >> 9));
  size_t sent = 0, got = 0;
  for (int round = 0; round < 2000 && got < sizeof src; round++) {
    if (sent < sizeof src) {
      ssize_t n = ustcp_send(st[0], c, src + sent, sizeof src - sent, 0);
      if (n > 0) sent += (size_t)n;
    }
    pump(2000);
    for (;;) {
      ssize_t n = ustcp_recv(st[1], s, dst + got, sizeof dst - got, 0);
      if (n <= 0) break;
      got += (size_t)n;
    }
  }
  CHECK_EQ(got, sizeof src);
  CHECK_MEM(dst, src, sizeof src);
  CHECK_EQ(ustcp_close(st[0], c), 0);
  pump(50000);
  char b[8];
  CHECK_EQ(ustcp_recv(st[1], s, b, sizeof b, 0), 0);
  CHECK_EQ(ustcp_close(st[1], s), 0);
  pump(50000);
  struct ustcp_sock_row rows[4];
  CHECK_EQ(ustcp_sock_table(st[0], rows, 4), 1);
  CHECK_EQ(rows[0].state, USTCP_TIME_WAIT);
  CHECK_EQ(rows[0].remote.family, USTCP_AF_INET6);
  CHECK_MEM(rows[0].remote.ip6, B6, 16);
  CHECK_EQ(v4_seen, 0);
  CHECK(v6_seen > 100);
  CHECK_EQ(bad_csum6, 0);
  struct ustcp_stats sa, sb;
  ustcp_get_stats(st[0], &sa);
  ustcp_get_stats(st[1], &sb);
  CHECK(sa.ip6_in > 0 && sa.ip6_out > 0 && sb.ip6_in > 0);
  CHECK_EQ(sa.ip_in, 0);
  CHECK_EQ(sb.tcp_bad_checksum, 0);
  /* after TIME_WAIT every interned address but the stack's own is released */
  now += 61000000;
  ustcp_poll(st[0], now);
  CHECK_EQ(ustcp_sock_table(st[0], rows, 4), 0);
  CHECK_EQ(st[0]->eng.a6.used, 1);
  CHECK_EQ(ustcp_close(st[1], l), 0);
  CHECK_EQ(st[1]->eng.a6.used, 1);
  teardown();
}

static void test_rst_closed_port(void)
{
  setup();
  int c = ustcp_socket(st[0]);
  struct ustcp_addr to = addr6(B6, 81);
  CHECK_EQ(ustcp_connect(st[0], c, &to), -EINPROGRESS);
  pump(20000);
  CHECK_EQ(ustcp_sock_error(st[0], c), -ECONNREFUSED);
  struct ustcp_stats sb;
  ustcp_get_stats(st[1], &sb);
  CHECK_EQ(sb.tcp_rst_out, 1);
  CHECK_EQ(st[1]->eng.a6.used, 1);    /* the SYN's source was not kept */
  teardown();
}

static void test_v4_mapped(void)
{
  setup();
  int l = listen6(st[1], 80, false);
  /* plain IPv4 client to a listener on [::]:80 */
  int c = ustcp_socket(st[0]);
  struct ustcp_addr to4 = {B4, 80};
  CHECK_EQ(ustcp_connect(st[0], c, &to4), -EINPROGRESS);
  pump(20000);
  struct ustcp_addr peer;
  int s = ustcp_accept(st[1], l, &peer);
  CHECK(s >= 0);
  static const uint8_t mA[16] = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 1};
  static const uint8_t mB[16] = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 2};
  CHECK_EQ(peer.family, USTCP_AF_INET6);
  CHECK_MEM(peer.ip6, mA, 16);
  struct ustcp_addr me;
  CHECK_EQ(ustcp_getsockname(st[1], s, &me), 0);
  CHECK_MEM(me.ip6, mB, 16);
  CHECK(v4_seen > 0);
  CHECK_EQ(v6_seen, 0);
  /* connect() to ::ffff:10.0.0.2 speaks IPv4 */
  unsigned v6_before = v6_seen;
  int c2 = ustcp_socket(st[0]);
  struct ustcp_addr tom = addr6(mB, 80);
  CHECK_EQ(ustcp_connect(st[0], c2, &tom), -EINPROGRESS);
  pump(20000);
  CHECK_EQ(v6_seen, v6_before);
  struct ustcp_addr p2;
  CHECK_EQ(ustcp_getpeername(st[0], c2, &p2), 0);
  CHECK_EQ(p2.family, USTCP_AF_INET6);
  CHECK_MEM(p2.ip6, mB, 16);
  int s2 = ustcp_accept(st[1], l, &peer);
  CHECK(s2 >= 0);
  CHECK_EQ(ustcp_close(st[1], l), 0);
  /* IPV6_V6ONLY: IPv4 is refused (RST) */
  int l6 = listen6(st[1], 8080, true);
  int v6only = 0;
  size_t vl = sizeof v6only;
  CHECK_EQ(ustcp_getsockopt(st[1], l6, USTCP_IPPROTO_IPV6, USTCP_IPV6_V6ONLY, &v6only, &vl), 0);
  CHECK_EQ(v6only, 1);
  int c3 = ustcp_socket(st[0]);
  struct ustcp_addr to3 = {B4, 8080};
  CHECK_EQ(ustcp_connect(st[0], c3, &to3), -EINPROGRESS);
  pump(20000);
  CHECK_EQ(ustcp_sock_error(st[0], c3), -ECONNREFUSED);
  teardown();
}

/* A forged IPv6 packet from src to B: hdr then upper-layer bytes. */
static size_t forge(uint8_t *buf, const uint8_t src[16], uint8_t next, const uint8_t *upper,
                    size_t ulen)
{
  struct ipv6_hdr h = {.payload_len = (uint16_t)ulen, .next_header = next, .hop_limit = 64};
  memcpy(h.src, src, 16);
  memcpy(h.dst, B6, 16);
  ipv6_encode(&h, buf, 40);
  memcpy(buf + 40, upper, ulen);
  return 40 + ulen;
}

static size_t forge_syn(uint8_t *buf, const uint8_t src[16], uint16_t dport, const uint8_t *ext,
                        size_t extlen, uint8_t first)
{
  struct tcp_hdr t = {.src_port = 5555, .dst_port = dport, .seq = 1000, .flags = TCP_SYN,
                      .window = 65535};
  uint8_t seg[64];
  int n = tcp_encode6(&t, NULL, 0, src, B6, seg, sizeof seg);
  uint8_t up[1500];
  if (extlen) memcpy(up, ext, extlen);
  memcpy(up + extlen, seg, (size_t)n);
  return forge(buf, src, extlen ? first : IPPROTO_TCP_, up, extlen + (size_t)n);
}

static void test_forged(void)
{
  setup();
  (void)listen6(st[1], 80, false);
  static uint8_t buf[2048];
  struct ustcp_stats s0, s1;
  ustcp_get_stats(st[1], &s0);
  size_t out0 = qt;
  /* 1. a chain of 100 Destination Options headers (8 bytes each): the walk stops
   *    at IPV6_MAX_EXT, dropped and counted, nothing answered */
  uint8_t ext[100 * 8];
  for (int i = 0; i < 100; i++) {
    uint8_t *e = ext + i * 8;
    memset(e, 0, 8);
    e[0] = i == 99 ? IPPROTO_TCP_ : IPPROTO_DSTOPTS_;
    e[1] = 0;
    e[2] = 1;            /* PadN, 4 bytes */
    e[3] = 4;
  }
  size_t n = forge_syn(buf, A6, 80, ext, sizeof ext, IPPROTO_DSTOPTS_);
  ustcp_input(st[1], buf, n, now);
  /* 2. Hop-by-Hop not first, Routing with segments left, unknown option to discard */
  uint8_t r[8] = {IPPROTO_TCP_, 0, 0, 1, 0, 0, 0, 0};       /* routing type 0, segleft 1 */
  n = forge_syn(buf, A6, 80, r, 8, IPPROTO_ROUTING_);
  ustcp_input(st[1], buf, n, now);
  uint8_t d[8] = {IPPROTO_TCP_, 0, 0x87, 4, 0, 0, 0, 0};    /* option 0x87: discard, answer */
  n = forge_syn(buf, A6, 80, d, 8, IPPROTO_DSTOPTS_);
  ustcp_input(st[1], buf, n, now);
  /* 3. a fragment */
  uint8_t f[8] = {IPPROTO_TCP_, 0, 0, 1, 0, 0, 0, 7};      /* offset 0, M = 1 */
  n = forge_syn(buf, A6, 80, f, 8, IPPROTO_FRAGMENT_);
  ustcp_input(st[1], buf, n, now);
  /* 4. martian sources */
  static const uint8_t any[16], loop[16] = {[15] = 1}, mc[16] = {0xff, 2, [15] = 1};
  static const uint8_t mapped[16] = {[10] = 0xff, [11] = 0xff, 10, 0, 0, 1};
  const uint8_t *mart[] = {any, loop, mc, mapped, B6};
  for (int i = 0; i < 5; i++) {
    n = forge_syn(buf, mart[i], 80, NULL, 0, 0);
    ustcp_input(st[1], buf, n, now);
  }
  /* 5. a bad TCP checksum; 6. a truncated header */
  n = forge_syn(buf, A6, 80, NULL, 0, 0);
  buf[n - 1] ^= 0x55;
  ustcp_input(st[1], buf, n, now);
  ustcp_input(st[1], buf, 39, now);
  ustcp_get_stats(st[1], &s1);
  CHECK_EQ(s1.ip6_ext_dropped - s0.ip6_ext_dropped, 3);
  CHECK_EQ(s1.ip6_frag_dropped - s0.ip6_frag_dropped, 1);
  CHECK_EQ(s1.ip6_martian_src - s0.ip6_martian_src, 5);
  CHECK_EQ(s1.tcp_bad_checksum - s0.tcp_bad_checksum, 1);
  CHECK_EQ(s1.ip6_bad - s0.ip6_bad, 1);
  CHECK_EQ(s1.passive_opens, 0);
  /* Answered: only Parameter Problem for the routing header and the 0x87
   * option (RFC 8200 §4.4, §4.2; the chain past the bound is just dropped) */
  CHECK_EQ(s1.icmp6_out - s0.icmp6_out, 2);
  CHECK_EQ(qt - out0, 2);
  CHECK_EQ(st[1]->eng.a6.used, 1);
  /* 7. 3000 SYNs to a closed port from 3000 addresses: 3000 RSTs (bounded
   *    per packet), no address kept */
  uint8_t src[16];
  memcpy(src, A6, 16);
  qh = qt = 0;
  for (int i = 0; i < 3000; i++) {
    src[13] = (uint8_t)(i >> 8);
    src[14] = (uint8_t)i;
    n = forge_syn(buf, src, 9, NULL, 0, 0);
    ustcp_input(st[1], buf, n, now);
    qh = qt;       /* the RSTs go nowhere */
  }
  ustcp_get_stats(st[1], &s1);
  CHECK_EQ(s1.tcp_rst_out - s0.tcp_rst_out, 3000);
  CHECK_EQ(st[1]->eng.a6.used, 1);
  teardown();
}

static void test_icmp6_echo_and_ptb(void)
{
  setup();
  static uint8_t buf[2048];
  /* echo */
  uint8_t msg[64];
  int m = icmp6_encode(A6, B6, ICMP6_ECHO_REQUEST, 0, 0x12340001u, (const uint8_t *)"ping", 4,
                       msg, sizeof msg);
  size_t n = forge(buf, A6, IPPROTO_ICMPV6_, msg, (size_t)m);
  qh = qt = 0;
  ustcp_input(st[1], buf, n, now);
  CHECK_EQ(qt, 1);
  struct ipv6_pkt ip;
  CHECK_EQ(ipv6_decode(q[0].b, q[0].len, &ip), 0);
  struct icmp6_msg r;
  CHECK_EQ(icmp6_decode(ip.h.src, ip.h.dst, q[0].b + ip.upper_off, ip.upper_len, &r), 0);
  CHECK_EQ(r.type, ICMP6_ECHO_REPLY);
  CHECK_EQ(r.rest, 0x12340001u);
  CHECK_EQ(r.data_len, 4);
  CHECK_MEM(ip.h.dst, A6, 16);
  qh = qt = 0;
  /* UDP: port unreachable (RFC 4443 §3.1 code 4) quoting the datagram; an
   * unknown next header: Parameter Problem code 1 pointing at it (RFC 8200 §4) */
  uint8_t udp[12] = {0x13, 0x88, 0, 53, 0, 12, 0, 0, 'a', 'b', 'c', 'd'};
  n = forge(buf, A6, IPPROTO_UDP_, udp, sizeof udp);
  ustcp_input(st[1], buf, n, now);
  CHECK_EQ(qt, 1);
  CHECK_EQ(ipv6_decode(q[0].b, q[0].len, &ip), 0);
  CHECK_EQ(icmp6_decode(ip.h.src, ip.h.dst, q[0].b + ip.upper_off, ip.upper_len, &r), 0);
  CHECK_EQ(r.type, ICMP6_DST_UNREACH);
  CHECK_EQ(r.code, 4);
  CHECK_EQ(r.data_len, n);
  CHECK_MEM(r.data, buf, n);
  n = forge(buf, A6, 99, udp, sizeof udp);
  ustcp_input(st[1], buf, n, now);
  CHECK_EQ(qt, 2);
  CHECK_EQ(ipv6_decode(q[1].b, q[1].len, &ip), 0);
  CHECK_EQ(icmp6_decode(ip.h.src, ip.h.dst, q[1].b + ip.upper_off, ip.upper_len, &r), 0);
  CHECK_EQ(r.type, ICMP6_PARAM_PROB);
  CHECK_EQ(r.code, 1);
  CHECK_EQ(r.rest, 6);
  /* rate limited: a burst of 200 more gets at most the bucket's 50 answers */
  for (int i = 0; i < 200; i++) ustcp_input(st[1], buf, n, now);
  CHECK(qt - 2 <= 50);
  struct ustcp_stats sr;
  ustcp_get_stats(st[1], &sr);
  CHECK(sr.icmp_out_ratelimited >= 150);
  qh = qt = 0;
  /* PTB: a connection with data in flight */
  int l = listen6(st[1], 80, false);
  int c = ustcp_socket(st[0]);
  struct ustcp_addr to = addr6(B6, 80);
  CHECK_EQ(ustcp_connect(st[0], c, &to), -EINPROGRESS);
  pump(20000);
  int s = ustcp_accept(st[1], l, NULL);
  CHECK(s >= 0);
  static uint8_t data[8000];
  CHECK_EQ(ustcp_send(st[0], c, data, sizeof data, 0), (ssize_t)sizeof data);
  /* the first data segment A sent, as a router would quote it */
  CHECK(qt > qh);
  struct pkt *k = &q[qh];
  uint8_t ptb[1300];
  size_t ql = k->len < 1000 ? k->len : 1000;
  struct ustcp_tcp_info ti;
  struct ustcp_stats s0, s1;
  ustcp_get_stats(st[0], &s0);
  /* a quote of a segment not in flight (wrong sequence) is ignored */
  uint8_t forged[1000];
  memcpy(forged, k->b, ql);
  put32(forged + 40 + 4, be32(forged + 44) + 100000);
  m = icmp6_encode(B6, A6, ICMP6_PACKET_TOO_BIG, 0, 1300, forged, ql, ptb, sizeof ptb);
  struct ipv6_hdr h = {.payload_len = (uint16_t)m, .next_header = IPPROTO_ICMPV6_, .hop_limit = 64};
  memcpy(h.src, B6, 16);
  memcpy(h.dst, A6, 16);
  ipv6_encode(&h, buf, 40);
  memcpy(buf + 40, ptb, (size_t)m);
  ustcp_input(st[0], buf, 40 + (size_t)m, now);
  CHECK_EQ(ustcp_get_info(st[0], c, &ti), 0);
  CHECK_EQ(ti.snd_mss, 1500 - 60 - 12);
  /* the real quote: MTU 1300 -> snd_mss 1300 - 60 - 12 */
  m = icmp6_encode(B6, A6, ICMP6_PACKET_TOO_BIG, 0, 1300, k->b, ql, ptb, sizeof ptb);
  memcpy(buf + 40, ptb, (size_t)m);
  ustcp_input(st[0], buf, 40 + (size_t)m, now);
  CHECK_EQ(ustcp_get_info(st[0], c, &ti), 0);
  CHECK_EQ(ti.snd_mss, 1300 - 60 - 12);
  /* below the IPv6 minimum: 1280 (RFC 8201 §4) */
  m = icmp6_encode(B6, A6, ICMP6_PACKET_TOO_BIG, 0, 600, k->b, ql, ptb, sizeof ptb);
  memcpy(buf + 40, ptb, (size_t)m);
  ustcp_input(st[0], buf, 40 + (size_t)m, now);
  CHECK_EQ(ustcp_get_info(st[0], c, &ti), 0);
  CHECK_EQ(ti.snd_mss, 1280 - 60 - 12);
  ustcp_get_stats(st[0], &s1);
  CHECK_EQ(s1.icmp6_ptb - s0.icmp6_ptb, 2);
  CHECK_EQ(s1.icmp_err_unmatched, s0.icmp_err_unmatched);
  /* the data still arrives whole, in segments that fit */
  pump(100000);
  static uint8_t got[8000];
  CHECK_EQ(ustcp_recv(st[1], s, got, sizeof got, 0), (ssize_t)sizeof got);
  teardown();
}

/* SYN cookies (syncookies = 2: always) over IPv6: the cookie hashes the address
 * bytes, the connection completes and carries data, timestamps' options
 * survive in the cookie. */
static void test_syncookies(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.syncookies = 2;
  setup_cfg(&cfg);
  int l = listen6(st[1], 80, false);
  int c = ustcp_socket(st[0]);
  struct ustcp_addr to = addr6(B6, 80);
  CHECK_EQ(ustcp_connect(st[0], c, &to), -EINPROGRESS);
  pump(20000);
  struct ustcp_stats sb;
  ustcp_get_stats(st[1], &sb);
  CHECK_EQ(sb.syncookies_sent, 1);
  CHECK_EQ(sb.syncookies_recv, 1);
  CHECK_EQ(sb.syncookies_failed, 0);
  int s = ustcp_accept(st[1], l, NULL);
  CHECK(s >= 0);
  CHECK_EQ(ustcp_send(st[0], c, "v6 cookie", 9, 0), 9);
  pump(20000);
  char b[16];
  CHECK_EQ(ustcp_recv(st[1], s, b, sizeof b, 0), 9);
  CHECK_MEM(b, "v6 cookie", 9);
  struct ustcp_tcp_info ti;
  CHECK_EQ(ustcp_get_info(st[1], s, &ti), 0);
  CHECK_EQ(ti.snd_mss, 1500 - 60 - 12);   /* the cookie's MSS, less timestamps */
  teardown();
}

/* ICMPv6 Destination Unreachable, port unreachable (code 4), quoting our SYN:
 * connect() fails with ECONNREFUSED at once (a hard error while connecting, as
 * Linux's icmpv6_err_convert + tcp_v6_err); code 0 (no route) only records a
 * soft error. A quote with another port is not ours: ignored, counted. */
static void test_icmp6_unreach(void)
{
  setup();
  static uint8_t buf[2048];
  int c = ustcp_socket(st[0]);
  struct ustcp_addr to = addr6(B6, 80);
  CHECK_EQ(ustcp_connect(st[0], c, &to), -EINPROGRESS);
  CHECK_EQ(qt - qh, 1);
  struct pkt syn = q[qh];
  qh = qt;                                     /* the SYN is lost */
  uint8_t msg[200];
  struct ipv6_hdr h = {.next_header = IPPROTO_ICMPV6_, .hop_limit = 64};
  memcpy(h.src, B6, 16);
  memcpy(h.dst, A6, 16);
  struct ustcp_stats s0, s1;
  ustcp_get_stats(st[0], &s0);
  /* soft: no route */
  int m = icmp6_encode(B6, A6, ICMP6_DST_UNREACH, 0, 0, syn.b, syn.len, msg, sizeof msg);
  h.payload_len = (uint16_t)m;
  ipv6_encode(&h, buf, 40);
  memcpy(buf + 40, msg, (size_t)m);
  ustcp_input(st[0], buf, 40 + (size_t)m, now);
  struct ustcp_tcp_info ti;
  CHECK_EQ(ustcp_get_info(st[0], c, &ti), 0);
  CHECK_EQ(ti.state, USTCP_SYN_SENT);
  /* another port in the quote: not ours */
  uint8_t other[128];
  memcpy(other, syn.b, syn.len);
  other[40] ^= 1;
  m = icmp6_encode(B6, A6, ICMP6_DST_UNREACH, 4, 0, other, syn.len, msg, sizeof msg);
  memcpy(buf + 40, msg, (size_t)m);
  ustcp_input(st[0], buf, 40 + (size_t)m, now);
  CHECK_EQ(ustcp_get_info(st[0], c, &ti), 0);
  CHECK_EQ(ti.state, USTCP_SYN_SENT);
  /* hard: port unreachable */
  m = icmp6_encode(B6, A6, ICMP6_DST_UNREACH, 4, 0, syn.b, syn.len, msg, sizeof msg);
  memcpy(buf + 40, msg, (size_t)m);
  ustcp_input(st[0], buf, 40 + (size_t)m, now);
  CHECK_EQ(ustcp_sock_error(st[0], c), -ECONNREFUSED);
  ustcp_get_stats(st[0], &s1);
  CHECK_EQ(s1.icmp6_in - s0.icmp6_in, 3);
  CHECK_EQ(s1.icmp_err_unmatched - s0.icmp_err_unmatched, 1);
  CHECK_EQ(s1.attempt_fails - s0.attempt_fails, 1);
  teardown();
}

/* A connection to our own IPv6 address goes through the loopback queue (H9). */
static void test_self_connect(void)
{
  setup();
  int l = listen6(st[1], 80, false);
  int c = ustcp_socket(st[1]);
  struct ustcp_addr to = addr6(B6, 80);
  CHECK_EQ(ustcp_connect(st[1], c, &to), -EINPROGRESS);
  pump(10000);
  int s = ustcp_accept(st[1], l, NULL);
  CHECK(s >= 0);
  CHECK_EQ(ustcp_send(st[1], c, "self", 4, 0), 4);
  pump(10000);
  char b[8];
  CHECK_EQ(ustcp_recv(st[1], s, b, sizeof b, 0), 4);
  CHECK_EQ(qt, 0);                   /* nothing went to the link */
  struct ustcp_stats sb;
  ustcp_get_stats(st[1], &sb);
  CHECK_EQ(sb.ip6_martian_src, 0);
  teardown();
}

int main(void)
{
  _Static_assert(sizeof(struct tcp_ep) == 8, "an endpoint stays 8 bytes in struct tcb");
  RUN(test_api_addr6);
  RUN(test_handshake_data_close);
  RUN(test_rst_closed_port);
  RUN(test_v4_mapped);
  RUN(test_forged);
  RUN(test_icmp6_echo_and_ptb);
  RUN(test_syncookies);
  RUN(test_self_connect);
  RUN(test_icmp6_unreach);
  return check_report();
}
