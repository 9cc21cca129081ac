/* Software GSO for TCP over IPv4 and IPv6: the splitting a link with TCP segmentation
 * offload does (Linux's inet_gso_segment and tcp_gso_segment, or a TSO NIC).
 * The stack uses it to show what goes on the wire to the capture callback
 * when the link segments its frames, and links that cannot segment may use it
 * (ustcp_tx_segment). Stateless: bytes in, segments out (see wire.h). */
#include <string.h>
#include "wire/wire.h"
#include "wire/ipv6.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t rd32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void wr16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void wr32(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

/* Where the headers are: IPv4 (with its options) or IPv6 with TCP as the fixed
 * header's next header; 0 or WIRE_E_*. */
struct gso_hdrs {
  bool v6;
  size_t ihl, thl, payload;
};

static int gso_parse(const uint8_t *pkt, size_t len, struct gso_hdrs *g)
{
  if (len < 1) return WIRE_E_SHORT;
  size_t tot;
  if ((pkt[0] >> 4) == 6) {
    if (len < IPV6_HDR_LEN) return WIRE_E_SHORT;
    if (pkt[6] != IPPROTO_TCP_) return WIRE_E_PROTO;
    g->v6 = true;
    g->ihl = IPV6_HDR_LEN;
    tot = IPV6_HDR_LEN + rd16(pkt + 4);
    if (tot > len) return WIRE_E_TOTAL_LEN;
  } else {
    if (len < IPV4_HDR_LEN) return WIRE_E_SHORT;
    if ((pkt[0] >> 4) != 4) return WIRE_E_VERSION;
    g->v6 = false;
    g->ihl = (size_t)(pkt[0] & 0xf) * 4;
    if (g->ihl < IPV4_HDR_LEN || g->ihl > len) return WIRE_E_IHL;
    tot = rd16(pkt + 2);
    if (tot < g->ihl || tot > len) return WIRE_E_TOTAL_LEN;
    if (pkt[9] != IPPROTO_TCP_) return WIRE_E_PROTO;
  }
  if (tot - g->ihl < TCP_HDR_LEN) return WIRE_E_DATA_OFFSET;
  g->thl = (size_t)(pkt[g->ihl + 12] >> 4) * 4;
  if (g->thl < TCP_HDR_LEN || g->ihl + g->thl > tot) return WIRE_E_DATA_OFFSET;
  g->payload = tot - g->ihl - g->thl;
  return 0;
}

int tcp_gso_segment(const uint8_t *pkt, size_t len, uint32_t gso_size, uint8_t *out,
                    size_t outcap, tcp_gso_fn fn, void *ctx)
{
  struct gso_hdrs g;
  int rc = gso_parse(pkt, len, &g);
  if (rc) return rc;
  size_t ihl = g.ihl, thl = g.thl, hdr = ihl + thl, payload = g.payload;
  size_t mss = gso_size && gso_size < payload ? gso_size : payload;
  if (outcap < hdr + mss) return WIRE_E_NOSPACE;
  uint32_t seq0 = rd32(pkt + ihl + 4);
  uint16_t id0 = g.v6 ? 0 : rd16(pkt + 4);
  uint8_t flags = pkt[ihl + 13];
  size_t nseg = mss ? (payload + mss - 1) / mss : 1;
  for (size_t i = 0; i < nseg; i++) {
    size_t off = i * mss;
    size_t plen = payload - off < mss ? payload - off : mss;
    memcpy(out, pkt, hdr);
    memcpy(out + hdr, pkt + hdr + off, plen);
    if (g.v6) {
      /* IPv6 (ipv6_gso_segment): the payload length; no ID, no checksum */
      wr16(out + 4, (uint16_t)(thl + plen));
    } else {
      /* IPv4: the segment's length, one ID each (inet_gso_segment), checksum */
      wr16(out + 2, (uint16_t)(hdr + plen));
      wr16(out + 4, (uint16_t)(id0 + i));
      wr16(out + 10, 0);
      wr16(out + 10, inet_checksum(out, ihl));
    }
    /* TCP (tcp_gso_segment): seq moves on; PSH and FIN stay with the last
     * segment, CWR with the first */
    uint8_t *th = out + ihl;
    wr32(th + 4, seq0 + (uint32_t)off);
    uint8_t f = flags;
    if (i + 1 < nseg) f &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (i > 0) f &= (uint8_t)~TCP_CWR;
    th[13] = f;
    wr16(th + 16, 0);
    uint32_t s = g.v6 ? ipv6_pseudo_sum(out + 8, out + 24, (uint32_t)(thl + plen), IPPROTO_TCP_)
                      : tcp_pseudo_sum(rd32(out + 12), rd32(out + 16), IPPROTO_TCP_,
                                       (uint16_t)(thl + plen));
    s = inet_csum_add(s, th, thl + plen);
    wr16(th + 16, inet_csum_fold(s));
    fn(ctx, out, hdr + plen);
  }
  return (int)nseg;
}
