/* ICMP (issue 5): the codec in src/wire/icmp.c, the stack's answers
 * (src/stack/ip_icmp.c) and the engine's reaction to ICMP errors about a
 * connection (src/tcp/tcp_icmp.c: RFC 5927 checks, RFC 1122 4.2.3.9, RFC 1191),
 * with one stack in virtual time and hand-made packets. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ustcp.h"
#include "wire/icmp.h"
#include "wire/wire.h"

#define ME 0x0a070002u     /* 10.7.0.2: the stack */
#define PEER 0x0a070001u   /* 10.7.0.1 */
#define ROUTER 0x0a070063u /* 10.7.0.99 */

struct pkt { size_t len; uint8_t d[66000]; };
static struct pkt out[64];
static int nout;
static uint64_t now = 1000;

static void on_out(void *ctx, const uint8_t *p, size_t len)
{
  (void)ctx;
  if (nout < 64) {
    out[nout].len = len;
    memcpy(out[nout].d, p, len);
    nout++;
  }
}

static struct ustcp_stack *new_stack(void)
{
  nout = 0;
  now = 1000;
  struct ustcp_stack *s = ustcp_stack_new(NULL, ME, 42, on_out, NULL);
  ustcp_poll(s, now);
  return s;
}

static void feed(struct ustcp_stack *s, const uint8_t *p, size_t len)
{
  ustcp_input(s, p, len, now);
}

/* An IPv4 packet of protocol proto carrying payload. */
static size_t ip_packet(uint8_t *buf, uint32_t src, uint32_t dst, uint8_t proto, uint8_t flags,
                        uint16_t frag_off, const uint8_t *payload, size_t plen)
{
  struct ipv4_hdr ip = {.version = 4, .ihl = 5, .total_len = (uint16_t)(20 + plen), .id = 7,
                        .flags = flags, .frag_off = frag_off, .ttl = 64, .proto = proto,
                        .src = src, .dst = dst};
  ipv4_encode(&ip, buf, 20);
  memcpy(buf + 20, payload, plen);
  return 20 + plen;
}

/* An ICMP error from `from` about the packet quoted (its first qlen bytes). */
static size_t icmp_error(uint8_t *buf, uint32_t from, uint8_t type, uint8_t code, uint16_t mtu,
                         const uint8_t *quoted, size_t qlen)
{
  int n = icmp_packet_encode(from, ME, 1, 0, type, code, mtu, quoted, qlen, buf, 66000);
  return n > 0 ? (size_t)n : 0;
}

static bool take_tcp(int i, struct tcp_packet *p)
{
  return i < nout && tcp_packet_decode(out[i].d, out[i].len, p) == WIRE_OK;
}

/* ---- codec ---- */

static void codec(void)
{
  uint8_t buf[600], data[100];
  for (int i = 0; i < 100; i++) data[i] = (uint8_t)i;
  int n = icmp_packet_encode(PEER, ME, 5, 0, ICMP_ECHO_REQUEST, 0, 0x12340007, data, 100, buf, sizeof buf);
  CHECK_EQ(n, 128);
  struct ipv4_hdr ip;
  const uint8_t *pl;
  size_t plen;
  CHECK_EQ(ipv4_decode(buf, (size_t)n, &ip, &pl, &plen), WIRE_OK);
  CHECK_EQ(ip.proto, IPPROTO_ICMP_);
  struct icmp_msg m;
  CHECK_EQ(icmp_decode(pl, plen, &m), WIRE_OK);
  CHECK_EQ(m.type, ICMP_ECHO_REQUEST);
  CHECK_EQ(icmp_echo_id(&m), 0x1234);
  CHECK_EQ(icmp_echo_seq(&m), 7);
  CHECK_EQ(m.data_len, 100);
  CHECK_MEM(m.data, data, 100);
  CHECK_EQ(icmp_decode(pl, 7, &m), WIRE_E_SHORT);
  uint8_t bad[128];
  memcpy(bad, pl, plen);
  bad[40] ^= 1;
  CHECK_EQ(icmp_decode(bad, plen, &m), ICMP_E_CHECKSUM);
  /* a quote needs an IPv4 header and 8 more bytes */
  struct icmp_quote q;
  CHECK_EQ(icmp_quote_decode(buf, 27, &q), ICMP_E_QUOTE);
  CHECK_EQ(icmp_quote_decode(buf, 28, &q), WIRE_OK);
  CHECK_EQ(q.proto, IPPROTO_ICMP_);
  CHECK_EQ(q.src, PEER);
  CHECK_EQ(q.dst, ME);
  uint8_t v6[40] = {0x60};
  CHECK_EQ(icmp_quote_decode(v6, sizeof v6, &q), ICMP_E_QUOTE);
  CHECK_EQ(icmp_error_quote_len(40), 40);
  CHECK_EQ(icmp_error_quote_len(1500), 548);   /* 576 - 20 - 8 */
  CHECK_EQ(icmp_packet_encode(PEER, ME, 1, 0, 0, 0, 0, data, 100, buf, 127), WIRE_E_NOSPACE);
  /* UDP: length and checksum (0 = none) */
  uint8_t u[12] = {0x30, 0x39, 0x27, 0x0f, 0, 12, 0, 0, 'a', 'b', 'c', 'd'};
  struct udp_hdr uh;
  CHECK_EQ(udp_decode(PEER, ME, u, sizeof u, &uh), WIRE_OK);
  CHECK_EQ(uh.dst_port, 9999);
  uint16_t cs = inet_csum_fold(inet_csum_add(tcp_pseudo_sum(PEER, ME, IPPROTO_UDP_, 12), u, 12));
  u[6] = (uint8_t)(cs >> 8);
  u[7] = (uint8_t)cs;
  CHECK_EQ(udp_decode(PEER, ME, u, sizeof u, &uh), WIRE_OK);
  u[9] ^= 0x40;
  CHECK_EQ(udp_decode(PEER, ME, u, sizeof u, &uh), UDP_E_CHECKSUM);
  u[5] = 13;
  CHECK_EQ(udp_decode(PEER, ME, u, sizeof u, &uh), UDP_E_LENGTH);
  CHECK_EQ(udp_decode(PEER, ME, u, 7, &uh), WIRE_E_SHORT);
}

/* ---- the stack's answers ---- */

static void echo_reply(void)
{
  struct ustcp_stack *s = new_stack();
  uint8_t req[200], data[56];
  for (int i = 0; i < 56; i++) data[i] = (uint8_t)(i * 3);
  int n = icmp_packet_encode(PEER, ME, 9, 0, ICMP_ECHO_REQUEST, 0, 0xbeef0003, data, 56, req, sizeof req);
  feed(s, req, (size_t)n);
  CHECK_EQ(nout, 1);
  struct ipv4_hdr ip;
  const uint8_t *pl;
  size_t plen;
  struct icmp_msg m;
  CHECK_EQ(ipv4_decode(out[0].d, out[0].len, &ip, &pl, &plen), WIRE_OK);
  CHECK_EQ(ip.src, ME);
  CHECK_EQ(ip.dst, PEER);
  CHECK_EQ(icmp_decode(pl, plen, &m), WIRE_OK);
  CHECK_EQ(m.type, ICMP_ECHO_REPLY);
  CHECK_EQ(m.rest, 0xbeef0003u);
  CHECK_EQ(m.data_len, 56);
  CHECK_MEM(m.data, data, 56);
  /* a bad checksum gets nothing; a request for another address neither */
  req[30] ^= 0xff;
  feed(s, req, (size_t)n);
  n = icmp_packet_encode(PEER, ME + 5, 9, 0, ICMP_ECHO_REQUEST, 0, 1, data, 56, req, sizeof req);
  feed(s, req, (size_t)n);
  CHECK_EQ(nout, 1);
  struct ustcp_stats st;
  ustcp_get_stats(s, &st);
  CHECK_EQ(st.icmp_in, 1);
  CHECK_EQ(st.icmp_out, 1);
  ustcp_stack_free(s);
}

static void unreachables(void)
{
  struct ustcp_stack *s = new_stack();
  uint8_t u[20] = {0x30, 0x39, 0x27, 0x0f, 0, 20, 0, 0, 'h', 'e', 'l', 'l', 'o'};
  uint8_t pkt[100], big[2000];
  size_t n = ip_packet(pkt, PEER, ME, IPPROTO_UDP_, 0, 0, u, sizeof u);
  feed(s, pkt, n);
  CHECK_EQ(nout, 1);
  struct ipv4_hdr ip;
  const uint8_t *pl;
  size_t plen;
  struct icmp_msg m;
  CHECK_EQ(ipv4_decode(out[0].d, out[0].len, &ip, &pl, &plen), WIRE_OK);
  CHECK_EQ(ip.dst, PEER);
  CHECK_EQ(icmp_decode(pl, plen, &m), WIRE_OK);
  CHECK_EQ(m.type, ICMP_DEST_UNREACH);
  CHECK_EQ(m.code, ICMP_PORT_UNREACH);
  CHECK_EQ(m.data_len, n);                  /* the whole small datagram is quoted */
  CHECK_MEM(m.data, pkt, n);
  /* a big datagram: quoted up to 576 bytes in all */
  memset(big, 0, sizeof big);
  memcpy(big, u, 8);
  big[4] = (uint8_t)(1400 >> 8);
  big[5] = (uint8_t)(1400 & 0xff);
  uint8_t pkt2[1500];
  size_t n2 = ip_packet(pkt2, PEER, ME, IPPROTO_UDP_, 0, 0, big, 1400);
  feed(s, pkt2, n2);
  CHECK_EQ(nout, 2);
  CHECK_EQ(out[1].len, 576);
  /* RFC 1122 3.2.2: nothing for a non-first fragment, a broadcast or multicast
   * source, or an ICMP error */
  nout = 0;
  n = ip_packet(pkt, PEER, ME, IPPROTO_UDP_, 0, 100, u, sizeof u);
  feed(s, pkt, n);
  n = ip_packet(pkt, 0xffffffffu, ME, IPPROTO_UDP_, 0, 0, u, sizeof u);
  feed(s, pkt, n);
  n = ip_packet(pkt, 0xe0000001u, ME, IPPROTO_UDP_, 0, 0, u, sizeof u);
  feed(s, pkt, n);
  uint8_t e[700];
  size_t en = icmp_error(e, PEER, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, pkt, n);
  feed(s, e, en);
  CHECK_EQ(nout, 0);
  /* another protocol (GRE): protocol unreachable */
  n = ip_packet(pkt, PEER, ME, 47, 0, 0, u, sizeof u);
  feed(s, pkt, n);
  CHECK_EQ(nout, 1);
  CHECK_EQ(ipv4_decode(out[0].d, out[0].len, &ip, &pl, &plen), WIRE_OK);
  CHECK_EQ(icmp_decode(pl, plen, &m), WIRE_OK);
  CHECK_EQ(m.code, ICMP_PROTO_UNREACH);
  /* errors are rate-limited: a burst of 50, then ICMP_MSGS_PER_SEC */
  struct ustcp_stats st0, st1;
  ustcp_get_stats(s, &st0);
  n = ip_packet(pkt, PEER, ME, IPPROTO_UDP_, 0, 0, u, sizeof u);
  for (int i = 0; i < 200; i++) feed(s, pkt, n);
  ustcp_get_stats(s, &st1);
  CHECK_EQ(st1.icmp_out - st0.icmp_out, 50 - 3);   /* 3 of the burst went above */
  now += USTCP_SEC / 100;                          /* 10 ms: 10 more tokens */
  for (int i = 0; i < 200; i++) feed(s, pkt, n);
  ustcp_get_stats(s, &st0);
  CHECK_EQ(st0.icmp_out - st1.icmp_out, 10);
  ustcp_stack_free(s);
}

/* ---- errors about connections ---- */

/* connect() from port lport to PEER:80; returns the fd, its SYN in *syn. */
static int start_connect(struct ustcp_stack *s, struct tcp_packet *syn, uint8_t *raw, size_t *rawlen)
{
  nout = 0;
  int fd = ustcp_socket(s);
  struct ustcp_addr a = {PEER, 80};
  CHECK_EQ(ustcp_connect(s, fd, &a), -EINPROGRESS);
  CHECK(take_tcp(0, syn));
  memcpy(raw, out[0].d, out[0].len);
  *rawlen = out[0].len;
  return fd;
}

static int state_of(struct ustcp_stack *s, int fd)
{
  struct ustcp_tcp_info ti;
  return ustcp_get_info(s, fd, &ti) == 0 ? (int)ti.state : -1;
}

static void syn_sent_port_unreachable(void)
{
  struct ustcp_stack *s = new_stack();
  struct tcp_packet syn;
  uint8_t raw[200], e[700];
  size_t rl;
  int fd = start_connect(s, &syn, raw, &rl);
  /* RFC 5927: a quote whose sequence number we never sent is ignored */
  uint8_t forged[200];
  memcpy(forged, raw, rl);
  forged[24] ^= 0x40;                        /* seq += 2^30 */
  feed(s, e, icmp_error(e, PEER, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, forged, 28));
  CHECK_EQ(state_of(s, fd), USTCP_SYN_SENT);
  /* a quote of another 4-tuple neither */
  memcpy(forged, raw, rl);
  forged[22] ^= 1;                           /* destination port */
  feed(s, e, icmp_error(e, PEER, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, forged, 28));
  CHECK_EQ(state_of(s, fd), USTCP_SYN_SENT);
  /* the real one: the attempt fails with ECONNREFUSED, as on Linux */
  feed(s, e, icmp_error(e, PEER, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, raw, 28));
  CHECK_EQ(state_of(s, fd), USTCP_CLOSED);
  struct ustcp_addr a = {PEER, 80};
  CHECK_EQ(ustcp_connect(s, fd, &a), -ECONNREFUSED);
  struct ustcp_stats st;
  ustcp_get_stats(s, &st);
  CHECK_EQ(st.icmp_in, 3);
  ustcp_close(s, fd);
  ustcp_stack_free(s);
}

static void syn_sent_soft_error(void)
{
  /* host unreachable is soft: the SYN is retried, and when the attempt times out
   * the error reported is EHOSTUNREACH rather than ETIMEDOUT (Linux) */
  struct ustcp_stack *s = new_stack();
  struct tcp_packet syn;
  uint8_t raw[200], e[700];
  size_t rl;
  int fd = start_connect(s, &syn, raw, &rl);
  feed(s, e, icmp_error(e, ROUTER, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH, 0, raw, 28));
  CHECK_EQ(state_of(s, fd), USTCP_SYN_SENT);
  for (int i = 0; i < 200 && state_of(s, fd) == USTCP_SYN_SENT; i++) {
    now += USTCP_SEC;
    ustcp_poll(s, now);
  }
  CHECK_EQ(state_of(s, fd), USTCP_CLOSED);
  CHECK_EQ(ustcp_sock_error(s, fd), -EHOSTUNREACH);
  ustcp_close(s, fd);
  ustcp_stack_free(s);
}

/* An established connection to PEER:80 with n bytes sent and unacknowledged. */
static int established(struct ustcp_stack *s, uint32_t *iss, uint32_t *irs)
{
  struct tcp_packet syn;
  uint8_t raw[200];
  size_t rl;
  int fd = start_connect(s, &syn, raw, &rl);
  *iss = syn.tcp.seq;
  *irs = 5000;
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = 80;
  h.dst_port = syn.tcp.src_port;
  h.seq = *irs;
  h.ack = *iss + 1;
  h.flags = TCP_SYN | TCP_ACK;
  h.window = 65535;
  h.opts.present = TCP_OPT_HAS_MSS;
  h.opts.mss = 1460;
  uint8_t pkt[200];
  int n = tcp_packet_encode(&h, NULL, 0, PEER, ME, 3, pkt, sizeof pkt);
  now += 10000;
  nout = 0;
  feed(s, pkt, (size_t)n);
  CHECK_EQ(state_of(s, fd), USTCP_ESTABLISHED);
  return fd;
}

static void frag_needed(void)
{
  struct ustcp_stack *s = new_stack();
  uint32_t iss, irs;
  int fd = established(s, &iss, &irs);
  static uint8_t data[6000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)i;
  nout = 0;
  CHECK_EQ(ustcp_send(s, fd, data, sizeof data, 0), (long long)sizeof data);
  CHECK(nout >= 4);
  struct tcp_packet p;
  CHECK(take_tcp(0, &p));
  CHECK_EQ(p.payload_len, 1460);
  CHECK_EQ(p.tcp.seq, iss + 1);
  uint8_t first[1500], e[700];
  memcpy(first, out[0].d, out[0].len);
  int sent = nout;
  /* out of the window [snd_una, snd_max]: ignored (RFC 5927 §4.1) */
  uint8_t forged[1500];
  memcpy(forged, first, 28);
  forged[24] ^= 0x40;
  nout = 0;
  feed(s, e, icmp_error(e, ROUTER, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1000, forged, 28));
  CHECK_EQ(nout, 0);
  struct ustcp_tcp_info ti;
  ustcp_get_info(s, fd, &ti);
  CHECK_EQ(ti.snd_mss, 1460);
  /* the real one: MSS 1000 - 40, and what was in flight goes again, smaller */
  feed(s, e, icmp_error(e, ROUTER, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1000, first, 576 - 28));
  ustcp_get_info(s, fd, &ti);
  CHECK_EQ(ti.snd_mss, 960);
  CHECK(nout >= 1);
  CHECK(take_tcp(0, &p));
  CHECK_EQ(p.tcp.seq, iss + 1);
  CHECK_EQ(p.payload_len, 960);
  for (int i = 0; i < nout; i++)
    if (take_tcp(i, &p)) CHECK(p.payload_len <= 960);
  CHECK(sent >= 4);
  /* never raised, and never below the 552-byte floor (Linux's min_pmtu) */
  feed(s, e, icmp_error(e, ROUTER, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 1400, first, 48));
  ustcp_get_info(s, fd, &ti);
  CHECK_EQ(ti.snd_mss, 960);
  feed(s, e, icmp_error(e, ROUTER, ICMP_DEST_UNREACH, ICMP_FRAG_NEEDED, 68, first, 48));
  ustcp_get_info(s, fd, &ti);
  CHECK_EQ(ti.snd_mss, 512);
  /* a hard error in a synchronized state is soft (RFC 5461, Linux): still up */
  feed(s, e, icmp_error(e, PEER, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, first, 48));
  CHECK_EQ(state_of(s, fd), USTCP_ESTABLISHED);
  ustcp_close(s, fd);
  ustcp_stack_free(s);
}

int main(void)
{
  RUN(codec);
  RUN(echo_reply);
  RUN(unreachables);
  RUN(syn_sent_port_unreachable);
  RUN(syn_sent_soft_error);
  RUN(frag_needed);
  return check_report();
}
