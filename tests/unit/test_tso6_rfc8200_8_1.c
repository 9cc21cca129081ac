/* TSO6 (issue 15 point 4): TCP over IPv6 with the checksum left to the link
 * and frames the link cuts (src/wire/wire.c tcp_encode6_partial, src/wire/gso.c).
 *   - RFC 8200 §8.1: the field tcp_encode6_partial leaves (the IPv6
 *     pseudo-header sum, as Linux's __tcp_v6_send_check for CHECKSUM_PARTIAL),
 *     completed as a link does it (sum from csum_start to the end, complement,
 *     store at csum_start + 16), equals tcp_encode6's full checksum, for
 *     payload lengths odd and even, with and without options;
 *   - tcp_gso_segment on an IPv6 frame: segments of gso_size payload (the
 *     last shorter), the Payload Length field of each, sequence numbers moved
 *     on, PSH and FIN on the last only, CWR on the first only, every TCP
 *     checksum good over the IPv6 pseudo-header, the payload put back together
 *     equal to the frame's, whether the frame's field held the full sum or the
 *     partial one;
 *   - ustcp_tx_segment accepts an IPv6 frame; a frame with an extension header
 *     or a truncated one is refused (nothing handed on). */
#include <string.h>
#include "check.h"
#include "ustcp.h"
#include "wire/ipv6.h"
#include "wire/wire.h"

static const uint8_t A[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x12, 1};
static const uint8_t B[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x34, 2};

static uint8_t frame[70000], seg[70000], payload[66000], joined[66000];

static uint16_t g16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t g32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The IPv6 frame from A to B: fixed header, then TCP of tcp_encode6(_partial). */
static size_t build(const struct tcp_hdr *h, size_t plen, bool partial, uint8_t *out)
{
  int n = partial ? tcp_encode6_partial(h, payload, plen, A, B, out + 40, sizeof frame - 40)
                  : tcp_encode6(h, payload, plen, A, B, out + 40, sizeof frame - 40);
  CHECK(n > 0);
  struct ipv6_hdr ip = {.payload_len = (uint16_t)n, .next_header = IPPROTO_TCP_, .hop_limit = 64};
  memcpy(ip.src, A, 16);
  memcpy(ip.dst, B, 16);
  CHECK_EQ(ipv6_encode(&ip, out, 40), IPV6_HDR_LEN);
  return 40 + (size_t)n;
}

static bool tcp6_sum_ok(const uint8_t *pkt, size_t len)
{
  uint32_t s = ipv6_pseudo_sum(pkt + 8, pkt + 24, (uint32_t)(len - 40), IPPROTO_TCP_);
  return inet_csum_fold(inet_csum_add(s, pkt + 40, len - 40)) == 0;
}

static void fill(size_t n)
{
  for (size_t i = 0; i < n; i++) payload[i] = (uint8_t)(i * 7 + (i >> 8));
}

static void rfc8200_8_1_partial_checksum(void)
{
  static uint8_t full[2000];
  size_t lens[] = {0, 1, 2, 999, 1000, 1433};
  for (int opt = 0; opt < 2; opt++) {
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
      struct tcp_hdr h = {.src_port = 80, .dst_port = 40000, .seq = 0xfffffff0u, .ack = 77,
                          .flags = TCP_ACK | TCP_PSH, .window = 500};
      if (opt) {
        h.opts.present |= TCP_OPT_HAS_TS;
        h.opts.ts_val = 0x11223344u;
        h.opts.ts_ecr = 0x55667788u;
      }
      fill(lens[k]);
      size_t n = build(&h, lens[k], false, full);
      size_t m = build(&h, lens[k], true, frame);
      CHECK_EQ(n, m);
      CHECK(tcp6_sum_ok(full, n));
      CHECK(!tcp6_sum_ok(frame, m) || g16(frame + 56) == g16(full + 56));
      /* what a link does with csum_start 40, csum_offset 16 */
      uint16_t c = (uint16_t)inet_csum_fold(inet_csum_add(0, frame + 40, m - 40));
      frame[56] = (uint8_t)(c >> 8);
      frame[57] = (uint8_t)c;
      CHECK_EQ(g16(frame + 56), g16(full + 56));
      CHECK(memcmp(frame, full, n) == 0);
    }
  }
}

struct cut {
  size_t n, bytes, bad;
  uint32_t next_seq;
  uint8_t flags[64];
  size_t len[64];
};

static void on_seg(void *ctx, const uint8_t *p, size_t len)
{
  struct cut *c = ctx;
  if (c->n >= 64 || len < 60 || (p[0] >> 4) != 6) { c->bad++; return; }
  size_t thl = (size_t)(p[40 + 12] >> 4) * 4;
  if (g16(p + 4) != len - 40) c->bad++;                  /* Payload Length */
  if (!tcp6_sum_ok(p, len)) c->bad++;
  if (g32(p + 44) != c->next_seq) c->bad++;
  size_t pl = len - 40 - thl;
  memcpy(joined + c->bytes, p + 40 + thl, pl);
  c->bytes += pl;
  c->next_seq += (uint32_t)pl;
  c->flags[c->n] = p[40 + 13];
  c->len[c->n] = pl;
  c->n++;
}

static void gso_ipv6_segments(void)
{
  for (int partial = 0; partial < 2; partial++) {
    struct tcp_hdr h = {.src_port = 80, .dst_port = 40000, .seq = 0xffffff00u, .ack = 9,
                        .flags = TCP_ACK | TCP_PSH | TCP_FIN | TCP_CWR, .window = 1000};
    h.opts.present |= TCP_OPT_HAS_TS;
    h.opts.ts_val = 5;
    size_t plen = 10 * 1428 + 321;
    fill(plen);
    size_t n = build(&h, plen, partial, frame);
    struct cut c = {.next_seq = h.seq};
    int k = tcp_gso_segment(frame, n, 1428, seg, sizeof seg, on_seg, &c);
    CHECK_EQ(k, 11);
    CHECK_EQ(c.n, 11u);
    CHECK_EQ(c.bad, 0u);
    CHECK_EQ(c.bytes, plen);
    CHECK(memcmp(joined, payload, plen) == 0);
    for (size_t i = 0; i < c.n; i++) {
      CHECK_EQ(c.len[i], i + 1 < c.n ? 1428u : 321u);
      bool last = i + 1 == c.n;
      CHECK_EQ((c.flags[i] & (TCP_PSH | TCP_FIN)) != 0, last);
      CHECK_EQ((c.flags[i] & TCP_CWR) != 0, i == 0);
    }
  }
}

static size_t tx_n;
static void tx_fn(void *ctx, const uint8_t *p, size_t len)
{
  (void)ctx;
  if (tcp6_sum_ok(p, len)) tx_n++;
}

static void tx_segment_ipv6(void)
{
  struct tcp_hdr h = {.src_port = 1, .dst_port = 2, .seq = 1, .flags = TCP_ACK, .window = 1};
  fill(5000);
  size_t n = build(&h, 5000, true, frame);
  struct ustcp_tx_info tx = {.gso_size = 1000, .hdr_len = 60, .csum_partial = true,
                             .csum_start = 40, .csum_offset = 16};
  CHECK_EQ(ustcp_tx_segment(frame, n, &tx, tx_fn, NULL), 5);
  CHECK_EQ(tx_n, 5u);
  /* an extension header (Hop-by-Hop, 0) in front of TCP: refused */
  frame[6] = 0;
  tx_n = 0;
  CHECK(ustcp_tx_segment(frame, n, &tx, tx_fn, NULL) < 0);
  CHECK_EQ(tx_n, 0u);
  frame[6] = IPPROTO_TCP_;
  /* truncated: shorter than its Payload Length says, or than the headers */
  for (size_t cut = 0; cut < 60 + 5; cut++)
    CHECK(ustcp_tx_segment(frame, cut, &tx, tx_fn, NULL) < 0 || cut == 0);
  CHECK(ustcp_tx_segment(frame, n - 1, &tx, tx_fn, NULL) < 0);
  CHECK_EQ(tx_n, 0u);
}

int main(void)
{
  RUN(rfc8200_8_1_partial_checksum);
  RUN(gso_ipv6_segments);
  RUN(tx_segment_ipv6);
  return check_report();
}
