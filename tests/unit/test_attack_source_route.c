/* Attack class: source-routed packets (issue 10, point 9).
 *
 * An IPv4 packet carrying Loose or Strict Source and Record Route (options 131,
 * 137) lets its sender choose the path -- and, answered along the reversed
 * route, lets it pose as a trusted address. Linux with its default
 * accept_source_route = 0 drops such packets (ip_rcv_options ->
 * ip_options_rcv_srr is never reached; IPSTATS_MIB_INNOROUTES-like drop);
 * ustcp does the same for every protocol and counts ip_source_routed. Other
 * options (NOP, Record Route, Timestamp) are walked and ignored; malformed
 * option lists (length < 2, past the header) are dropped as bad headers (Linux's
 * ip_options_compile fails -> drop). The walk stops at End of Option List. */
#include "check.h"
#include "rawpeer.h"
#include "wire/icmp.h"

enum { P_TCP_SYN, P_UDP, P_ECHO };

/* An IPv4 packet with the given option bytes (padded with EOL to 4), carrying a
 * SYN to port 80, a UDP datagram or an echo request, from the peer to the stack. */
static size_t build(uint8_t *buf, const uint8_t *opts, size_t olen, int kind)
{
  size_t ohl = (olen + 3) & ~(size_t)3;
  size_t hlen = 20 + ohl;
  uint8_t body[64];
  size_t blen = 0;
  uint8_t proto = 0;
  if (kind == P_TCP_SYN) {
    struct tcp_hdr h;
    memset(&h, 0, sizeof h);
    static uint16_t next_port = 40000;   /* a new connection each time: a repeated
                                            SYN would meet the 500 ms rate limit */
    h.src_port = next_port++;
    h.dst_port = 80;
    h.seq = 999;
    h.flags = TCP_SYN;
    h.window = 65535;
    int n = tcp_encode(&h, NULL, 0, RP_PEER_IP, RP_LOCAL_IP, body, sizeof body);
    blen = n > 0 ? (size_t)n : 0;
    proto = IPPROTO_TCP_;
  } else if (kind == P_UDP) {
    static const uint8_t u[8] = {0x30, 0x39, 0x00, 0x35, 0x00, 8, 0, 0};
    memcpy(body, u, 8);
    blen = 8;
    proto = IPPROTO_UDP_;
  } else {
    uint8_t tmp[64];
    int n = icmp_packet_encode(RP_PEER_IP, RP_LOCAL_IP, 1, 0, ICMP_ECHO_REQUEST, 0, 0x10001u,
                               (const uint8_t *)"x", 1, tmp, sizeof tmp);
    blen = n > 20 ? (size_t)n - 20 : 0;
    memcpy(body, tmp + 20, blen);
    proto = IPPROTO_ICMP_;
  }
  memset(buf, 0, hlen);
  buf[0] = (uint8_t)(0x40 | (hlen / 4));
  size_t total = hlen + blen;
  buf[2] = (uint8_t)(total >> 8);
  buf[3] = (uint8_t)total;
  buf[4] = 0x12;
  buf[8] = 64;
  buf[9] = proto;
  uint32_t s = RP_PEER_IP, d = RP_LOCAL_IP;
  for (int i = 0; i < 4; i++) {
    buf[12 + i] = (uint8_t)(s >> (24 - 8 * i));
    buf[16 + i] = (uint8_t)(d >> (24 - 8 * i));
  }
  memcpy(buf + 20, opts, olen);
  uint16_t c = inet_checksum(buf, hlen);
  buf[10] = (uint8_t)(c >> 8);
  buf[11] = (uint8_t)c;
  memcpy(buf + hlen, body, blen);
  return total;
}

/* Sends the packet; returns how many packets the stack sent back. */
static uint64_t answers(struct rp *r, const uint8_t *opts, size_t olen, int kind)
{
  uint8_t pkt[128];
  size_t n = build(pkt, opts, olen, kind);
  uint64_t before = r->sent_total;
  ustcp_input(r->s, pkt, n, r->now);
  return r->sent_total - before;
}

static struct ustcp_stats stats(struct rp *r)
{
  struct ustcp_stats st;
  ustcp_get_stats(r->s, &st);
  return st;
}

#define A1 0x0a, 0x00, 0x00, 0x01
static const uint8_t lsrr[] = {131, 7, 4, A1};
static const uint8_t ssrr[] = {137, 7, 4, A1};
static const uint8_t lsrr_late[] = {1, 1, 7, 7, 4, 0, 0, 0, 0, 131, 11, 4, A1, A1};  /* NOP NOP RR LSRR */
static const uint8_t rr[] = {1, 7, 7, 4, 0, 0, 0, 0};                              /* NOP, Record Route */
static const uint8_t ts[] = {68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0};                /* Timestamp */
static const uint8_t after_eol[] = {0, 131, 7, 4, A1};                            /* LSRR after EOL: ignored */
static const uint8_t len0[] = {7, 0, 0, 0};
static const uint8_t len1[] = {1, 1, 7, 1};
static const uint8_t past_end[] = {7, 9, 4, 0};
static const uint8_t lsrr_short[] = {131, 2, 0, 0};

static void source_routed_dropped(void)
{
  struct rp r;
  rp_init(&r, NULL, 1);
  CHECK(rp_listen(&r, 80, 16) >= 0);
  const struct { const uint8_t *o; size_t n; const char *name; } srr[] = {
    {lsrr, sizeof lsrr, "LSRR"}, {ssrr, sizeof ssrr, "SSRR"},
    {lsrr_late, sizeof lsrr_late, "LSRR after NOP and RR"}};
  uint64_t counted = 0;
  for (size_t i = 0; i < 3; i++)
    for (int kind = P_TCP_SYN; kind <= P_ECHO; kind++) {
      uint64_t before = stats(&r).ip_source_routed;
      uint64_t a = answers(&r, srr[i].o, srr[i].n, kind);
      if (a) fprintf(stderr, "%s (kind %d) was answered\n", srr[i].name, kind);
      CHECK_EQ(a, 0);
      CHECK_EQ(stats(&r).ip_source_routed - before, 1);
      counted++;
    }
  CHECK_EQ(stats(&r).ip_source_routed, counted);
  CHECK_EQ(stats(&r).tcp_in, 0);
  struct ustcp_sock_row rows[4];
  CHECK_EQ(ustcp_sock_table(r.s, rows, 4), 1);      /* no half-open entry */
  rp_advance(&r, 10 * USTCP_SEC);
  CHECK_EQ(r.sent_total, 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* Options that do not route: walked, ignored, the packet is served. */
static void other_options_accepted(void)
{
  struct rp r;
  rp_init(&r, NULL, 2);
  CHECK(rp_listen(&r, 80, 16) >= 0);
  const struct { const uint8_t *o; size_t n; } ok[] = {
    {rr, sizeof rr}, {ts, sizeof ts}, {after_eol, sizeof after_eol}};
  for (size_t i = 0; i < 3; i++) {
    CHECK_EQ(answers(&r, ok[i].o, ok[i].n, P_TCP_SYN), 1);   /* SYN-ACK */
    CHECK_EQ(answers(&r, ok[i].o, ok[i].n, P_UDP), 1);       /* port unreachable */
    CHECK_EQ(answers(&r, ok[i].o, ok[i].n, P_ECHO), 1);      /* echo reply */
  }
  CHECK_EQ(stats(&r).ip_source_routed, 0);
  CHECK_EQ(stats(&r).ip_bad, 0);
  rp_free(&r);
}

static void malformed_options_dropped(void)
{
  struct rp r;
  rp_init(&r, NULL, 3);
  CHECK(rp_listen(&r, 80, 16) >= 0);
  const struct { const uint8_t *o; size_t n; } bad[] = {
    {len0, sizeof len0}, {len1, sizeof len1}, {past_end, sizeof past_end},
    {lsrr_short, sizeof lsrr_short}};
  for (size_t i = 0; i < 4; i++)
    for (int kind = P_TCP_SYN; kind <= P_ECHO; kind++) {
      uint64_t before = stats(&r).ip_bad;
      CHECK_EQ(answers(&r, bad[i].o, bad[i].n, kind), 0);
      CHECK_EQ(stats(&r).ip_bad - before, 1);
    }
  CHECK_EQ(stats(&r).tcp_in, 0);
  rp_free(&r);
}

/* The wire decoder reports what it found, for every option list: fuzz_wire
 * covers the walk with arbitrary bytes. */
static void wire_flags(void)
{
  uint8_t pkt[128];
  struct ipv4_hdr ip;
  const uint8_t *pl;
  size_t plen;
  size_t n = build(pkt, lsrr, sizeof lsrr, P_UDP);
  CHECK_EQ(ipv4_decode(pkt, n, &ip, &pl, &plen), WIRE_OK);
  CHECK(ip.opt_flags & IPV4_OPT_SRR);
  n = build(pkt, rr, sizeof rr, P_UDP);
  CHECK_EQ(ipv4_decode(pkt, n, &ip, &pl, &plen), WIRE_OK);
  CHECK_EQ(ip.opt_flags, 0);
  CHECK_EQ(plen, 8);
  n = build(pkt, past_end, sizeof past_end, P_UDP);
  CHECK_EQ(ipv4_decode(pkt, n, &ip, &pl, &plen), WIRE_E_IP_OPT);
}

int main(void)
{
  RUN(source_routed_dropped);
  RUN(other_options_accepted);
  RUN(malformed_options_dropped);
  RUN(wire_flags);
  return check_report();
}
