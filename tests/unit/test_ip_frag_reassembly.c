/* IPv4 reassembly (issue 16 point 3; src/stack/ip_frag.c): RFC 791 §3.2 and
 * RFC 815 in order, out of order and with duplicates; and what an attacker
 * sends: overlapping fragments (teardrop), fragments that never complete (the
 * ipfrag_time timeout and the memory threshold), thousands of tiny fragments,
 * malformed lengths. Hand-made packets into one stack in virtual time. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "ustcp.h"
#include "wire/icmp.h"
#include "wire/wire.h"

#define ME 0x0a070002u     /* 10.7.0.2: the stack */
#define PEER 0x0a070001u   /* 10.7.0.1 */

struct pkt { size_t len; uint8_t d[66000]; };
static struct pkt out[8];
static int nout;
static uint64_t now = 1000;

static void on_out(void *ctx, const uint8_t *p, size_t len)
{
  (void)ctx;
  if (nout < 8) {
    out[nout].len = len;
    memcpy(out[nout].d, p, len);
  }
  nout++;
}

static struct ustcp_stack *new_stack(const struct ustcp_config *cfg)
{
  nout = 0;
  now = 1000;
  struct ustcp_stack *s = ustcp_stack_new(cfg, ME, 42, on_out, NULL);
  ustcp_poll(s, now);
  return s;
}

static struct ustcp_stats stats(struct ustcp_stack *s)
{
  struct ustcp_stats st;
  ustcp_get_stats(s, &st);
  return st;
}

/* The bytes of one ICMP echo request with a payload of n pattern bytes. */
static size_t echo_datagram(uint8_t *buf, size_t n)
{
  static uint8_t data[65536];
  for (size_t i = 0; i < n; i++) data[i] = (uint8_t)(i * 7 + 3);
  int len = icmp_packet_encode(PEER, ME, 0x4242, 0, ICMP_ECHO_REQUEST, 0, 0x00010001u, data, n,
                               buf, 66000);
  return len > 0 ? (size_t)len : 0;
}

/* Fragment [off, off+len) of the datagram dg (20-byte header) into s, with MF
 * unless it is the last; id lets tests make several datagrams. */
static void frag(struct ustcp_stack *s, const uint8_t *dg, size_t dglen, size_t off, size_t len,
                 uint16_t id, bool more)
{
  static uint8_t p[66000];
  struct ipv4_hdr ip = {.version = 4, .ihl = 5, .total_len = (uint16_t)(20 + len), .id = id,
                        .flags = more ? IPV4_FLAG_MF : 0, .frag_off = (uint16_t)(off / 8),
                        .ttl = 64, .proto = dg[9], .src = PEER, .dst = ME};
  (void)dglen;
  ipv4_encode(&ip, p, 20);
  memcpy(p + 20, dg + 20 + off, len);
  ustcp_input(s, p, 20 + len, now);
}

static bool is_echo_reply(int i, size_t payload)
{
  struct ipv4_hdr ip;
  const uint8_t *pl;
  size_t plen;
  if (i >= nout || ipv4_decode(out[i].d, out[i].len, &ip, &pl, &plen) != WIRE_OK) return false;
  if (ip.proto != 1 || ip.dst != PEER || plen != 8 + payload || pl[0] != ICMP_ECHO_REPLY) return false;
  for (size_t k = 0; k < payload; k++)
    if (pl[8 + k] != (uint8_t)(k * 7 + 3)) return false;
  return true;
}

/* RFC 791 §3.2: fragments in any order, the last first, a duplicate among
 * them: one datagram, byte-exact (the echo reply carries its payload back). */
static void rfc791_reassembly_any_order(void)
{
  static uint8_t dg[66000];
  size_t n = echo_datagram(dg, 4000);          /* 20 + 8 + 4000 */
  size_t body = n - 20;                        /* 4008 */
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.mtu = 9000;                              /* the reply in one packet */
  struct ustcp_stack *s = new_stack(&cfg);
  frag(s, dg, n, 2960, body - 2960, 9, false); /* last */
  frag(s, dg, n, 1480, 1480, 9, true);
  frag(s, dg, n, 1480, 1480, 9, true);         /* exact duplicate: ignored */
  CHECK_EQ(nout, 0);
  frag(s, dg, n, 0, 1480, 9, true);            /* first, last to arrive */
  CHECK_EQ(nout, 1);
  CHECK(is_echo_reply(0, 4000));
  struct ustcp_stats st = stats(s);
  CHECK_EQ(st.ip_frag_reassembled, 1);
  CHECK_EQ(st.ip_frag_dropped, 1);             /* the duplicate */
  CHECK_EQ(st.ip_in, 4);                       /* fragments as they came, no more */
  ustcp_stack_free(s);
}

/* The reply to a reassembled echo request is larger than the MTU: sent in
 * fragments (RFC 791 §3.2, as Linux's ip_fragment), which put together are
 * the echo reply. */
static void rfc791_reply_fragmented(void)
{
  static uint8_t dg[66000], whole[66000];
  size_t n = echo_datagram(dg, 4000);
  struct ustcp_stack *s = new_stack(NULL);    /* mtu 1500 */
  frag(s, dg, n, 0, 1480, 10, true);
  frag(s, dg, n, 1480, 1480, 10, true);
  frag(s, dg, n, 2960, n - 20 - 2960, 10, false);
  CHECK_EQ(nout, 3);
  size_t got = 0;
  for (int i = 0; i < nout && i < 3; i++) {
    struct ipv4_hdr ip;
    const uint8_t *pl;
    size_t plen;
    CHECK_EQ(ipv4_decode(out[i].d, out[i].len, &ip, &pl, &plen), WIRE_OK);
    CHECK(out[i].len <= 1500);
    CHECK_EQ(ip.frag_off * 8, got);
    CHECK_EQ((ip.flags & IPV4_FLAG_MF) != 0, i < 2);
    memcpy(whole + 20 + got, pl, plen);
    got += plen;
  }
  CHECK_EQ(got, 8 + 4000);
  memcpy(whole, out[0].d, 20);
  whole[2] = (uint8_t)((20 + got) >> 8);
  whole[3] = (uint8_t)(20 + got);
  whole[6] = whole[7] = 0;
  memcpy(out[0].d, whole, 20 + got);           /* as one datagram, for is_echo_reply */
  out[0].len = 20 + got;
  out[0].d[10] = out[0].d[11] = 0;
  uint16_t c = inet_csum_fold(inet_csum_add(0, out[0].d, 20));
  out[0].d[10] = (uint8_t)(c >> 8);
  out[0].d[11] = (uint8_t)c;
  CHECK(is_echo_reply(0, 4000));
  ustcp_stack_free(s);
}

/* A TCP SYN in two fragments (the first holding just 8 bytes: ports and
 * sequence number) reaches the listener like a whole one. */
static void rfc791_tcp_syn_in_fragments(void)
{
  struct ustcp_stack *s = new_stack(NULL);
  int l = ustcp_socket(s);
  struct ustcp_addr a = {ME, 80};
  CHECK_EQ(ustcp_bind(s, l, &a), 0);
  CHECK_EQ(ustcp_listen(s, l, 8), 0);
  static uint8_t dg[200];
  struct tcp_hdr h = {.src_port = 40000, .dst_port = 80, .seq = 1000, .flags = TCP_SYN,
                      .window = 65535};
  int n = tcp_packet_encode(&h, NULL, 0, PEER, ME, 5, dg, sizeof dg);
  CHECK(n > 28);
  frag(s, dg, (size_t)n, 8, (size_t)n - 28, 5, false);
  CHECK_EQ(nout, 0);
  frag(s, dg, (size_t)n, 0, 8, 5, true);
  CHECK_EQ(nout, 1);
  struct tcp_packet p;
  CHECK(nout >= 1 && tcp_packet_decode(out[0].d, out[0].len, &p) == WIRE_OK &&
        p.tcp.flags == (TCP_SYN | TCP_ACK) && p.tcp.ack == 1001);
  ustcp_stack_free(s);
}

/* Overlapping fragments (teardrop, and the overlap tricks that evade
 * inspection) drop the whole datagram, as Linux does since 4.19: the
 * fragments that would have completed it make nothing. */
static void attack_frag_overlap(void)
{
  static uint8_t dg[66000];
  size_t n = echo_datagram(dg, 3000);
  struct ustcp_stack *s = new_stack(NULL);
  frag(s, dg, n, 0, 1480, 11, true);
  frag(s, dg, n, 1472, 1480, 11, true);        /* overlaps the first by 8 bytes */
  frag(s, dg, n, 1480, 1480, 11, true);
  frag(s, dg, n, 2960, n - 20 - 2960, 11, false);
  CHECK_EQ(nout, 0);
  struct ustcp_stats st = stats(s);
  CHECK_EQ(st.ip_frag_overlaps, 1);
  CHECK_EQ(st.ip_frag_reassembled, 0);
  /* A datagram whose last fragment disagrees with the length known drops too. */
  frag(s, dg, n, 0, 1480, 12, false);
  frag(s, dg, n, 0, 2960, 12, false);
  CHECK_EQ(nout, 0);
  CHECK(stats(s).ip_frag_dropped >= 1);
  ustcp_stack_free(s);
}

/* A datagram that never completes is freed after ipfrag_time (30 s); the rest
 * of it, arriving later, starts a new queue and makes nothing. */
static void attack_frag_timeout(void)
{
  static uint8_t dg[66000];
  size_t n = echo_datagram(dg, 3000);
  struct ustcp_stack *s = new_stack(NULL);
  frag(s, dg, n, 0, 1480, 13, true);
  now += 29 * USTCP_SEC;
  ustcp_poll(s, now);
  CHECK_EQ(stats(s).ip_frag_timeouts, 0);
  now += 2 * USTCP_SEC;
  ustcp_poll(s, now);
  CHECK_EQ(stats(s).ip_frag_timeouts, 1);
  frag(s, dg, n, 1480, n - 20 - 1480, 13, false);
  CHECK_EQ(nout, 0);
  ustcp_stack_free(s);
}

/* Memory: incomplete datagrams from forged sources never hold more than
 * ipfrag_high_thresh; past it fragments are dropped and counted, and a
 * datagram still completes once the queues time out. Work: 7,900 tiny
 * fragments of one datagram are bounded by the per-datagram piece limit. */
static void attack_frag_memory_and_work(void)
{
  static uint8_t dg[66000];
  size_t n = echo_datagram(dg, 60000);
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.ipfrag_high_thresh = 256 * 1024;
  struct ustcp_stack *s = new_stack(&cfg);
  /* 2000 datagrams' first fragments: at most ~256 KiB of them are held. */
  for (uint16_t id = 100; id < 2100; id++) frag(s, dg, n, 0, 1480, id, true);
  struct ustcp_stats st = stats(s);
  CHECK(st.ip_frag_dropped > 1800);            /* 256 KiB / ~1.5 KB: < 200 held */
  CHECK(st.ip_frag_dropped < 1950);
  CHECK_EQ(nout, 0);
  now += 31 * USTCP_SEC;
  ustcp_poll(s, now);
  /* 7,900 8-byte pieces of one 60 KB datagram: the queue is dropped at the piece
   * limit, each fragment costing a bounded walk. */
  for (size_t off = 0; off < 7900 * 8; off += 8) frag(s, dg, n, off, 8, 7, true);
  CHECK_EQ(nout, 0);
  /* A whole datagram still gets through afterwards (a reply within the MTU). */
  size_t small = echo_datagram(dg, 1400);
  frag(s, dg, small, 800, small - 20 - 800, 8, false);
  frag(s, dg, small, 0, 800, 8, true);
  CHECK_EQ(nout, 1);
  CHECK(is_echo_reply(0, 1400));
  ustcp_stack_free(s);
}

/* Malformed: a non-last fragment not a multiple of 8 bytes, one ending past
 * 65535 bytes: dropped and counted, nothing answered. */
static void attack_frag_malformed(void)
{
  static uint8_t dg[66000];
  size_t n = echo_datagram(dg, 3000);
  struct ustcp_stack *s = new_stack(NULL);
  uint64_t before = stats(s).ip_frag_dropped;
  frag(s, dg, n, 0, 1001, 21, true);
  frag(s, dg, n, 65528, 16, 22, false);
  CHECK_EQ(stats(s).ip_frag_dropped, before + 2);
  CHECK_EQ(nout, 0);
  ustcp_stack_free(s);
}

int main(void)
{
  RUN(rfc791_reassembly_any_order);
  RUN(rfc791_reply_fragmented);
  RUN(rfc791_tcp_syn_in_fragments);
  RUN(attack_frag_overlap);
  RUN(attack_frag_timeout);
  RUN(attack_frag_memory_and_work);
  RUN(attack_frag_malformed);
  return check_report();
}
