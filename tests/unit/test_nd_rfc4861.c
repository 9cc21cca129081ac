/* IPv6 neighbour discovery on Ethernet (src/link/nd.c beside ARP in eth.c;
 * issue 16 point 2), sans-I/O: frames in, frames out, virtual time.
 *   - RFC 4291 App. A / RFC 2464 §7: the link-local address from the MAC, the
 *     33:33 multicast MACs; multicast frames taken only for our groups;
 *   - RFC 4862 §5.4: DAD (tentative until one NS from :: goes unanswered for
 *     RetransTimer; nothing sent from a tentative address; an NA for it, or an
 *     NS from :: for it, makes it DUPLICATE, counted; our own NS looped back
 *     does not);
 *   - RFC 4861 §7.1.1/§7.1.2: NS/NA validation (hop limit 255, code 0,
 *     checksum, length, option lengths, multicast target, DAD form, S flag to
 *     a multicast destination), each drop counted, nothing answered;
 *   - §7.2.3/§7.2.4: an NS for our address is answered (S, O, TLLAO as Linux's
 *     ndisc_recv_ns: the option only when the NS was multicast), its sender
 *     cached STALE; an NS from :: (another's DAD) answered to all-nodes;
 *   - §7.2.2/§7.2.5/§7.2.6: resolution: multicast NS to the solicited-node
 *     group, the datagram queued (bounded), an NA makes the entry REACHABLE and
 *     sends what waited; three unanswered NS: dropped, counted;
 *   - §7.3.3: REACHABLE -> STALE after ReachableTime, STALE -> DELAY on use,
 *     DELAY -> PROBE (unicast NS) after 5 s, PROBE -> REACHABLE on a solicited
 *     NA, or gone after three probes;
 *   - attacks: an unsolicited NA creates nothing (§7.2.5); NA with O=0 never
 *     replaces a cached MAC; a flood of NS from forged sources keeps the cache
 *     at its bound and does not evict a REACHABLE neighbour in use;
 *   - routing: off-link destinations to the default router, none: no_route;
 *     multicast destinations mapped without ND. */
#include <string.h>
#include "check.h"
#include "link/eth.h"
#include "wire/ipv6.h"

static const uint8_t MY_MAC[6] = {0x02, 0x75, 0x73, 0x74, 0x63, 0x70};
static const uint8_t PEER_MAC[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t EVIL_MAC[6] = {0x02, 0, 0, 0, 0, 0x66};
static const uint8_t ME[16] = {0xfd, 0, [15] = 2};
static const uint8_t PEER[16] = {0xfd, 0, [15] = 1};
static const uint8_t GW[16] = {0xfe, 0x80, [15] = 1};
static const uint8_t FAR[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
static const uint8_t ANY[16];
static const uint8_t ALLNODES[16] = {0xff, 0x02, [15] = 1};

struct frame { size_t len; uint8_t d[1600]; };
static struct frame out[64];
static int nout;
static int nip;

static void on_frame(void *ctx, const uint8_t *f, size_t len)
{
  (void)ctx;
  if (nout < 64) {
    out[nout].len = len;
    memcpy(out[nout].d, f, len);
  }
  nout++;
}

static void on_ip(void *ctx, const uint8_t *p, size_t len, unsigned flags)
{
  (void)ctx; (void)flags; (void)p; (void)len;
  nip++;
}

static struct eth_iface *new_iface_gw(bool dad, const uint8_t *gw)
{
  nout = nip = 0;
  struct eth_config c = {.ip = 0x0a090002u, .prefix_len = 24, .mtu = 1500, .prefix6_len = 64,
                         .no_dad = !dad, .seed = 7};
  memcpy(c.mac, MY_MAC, 6);
  memcpy(c.ip6, ME, 16);
  if (gw) memcpy(c.gateway6, gw, 16);
  return eth_new(&c, on_frame, on_ip, NULL);
}
static struct eth_iface *new_iface(bool dad) { return new_iface_gw(dad, GW); }

/* An IPv6 datagram from src to dst carrying ICMPv6 type/code with body
 * (after the 4-byte type/code/checksum), the checksum right unless bad_sum. */
static size_t icmp6_frame(uint8_t *f, const uint8_t dmac[6], const uint8_t smac[6],
                          const uint8_t src[16], const uint8_t dst[16], uint8_t hop,
                          uint8_t type, uint8_t code, const uint8_t *body, size_t blen,
                          bool bad_sum)
{
  memcpy(f, dmac, 6);
  memcpy(f + 6, smac, 6);
  f[12] = 0x86; f[13] = 0xdd;
  uint8_t *ip = f + 14;
  struct ipv6_hdr h = {.payload_len = (uint16_t)(4 + blen), .next_header = 58, .hop_limit = hop};
  memcpy(h.src, src, 16);
  memcpy(h.dst, dst, 16);
  ipv6_encode(&h, ip, 40);
  uint32_t rest = blen >= 4 ? (uint32_t)body[0] << 24 | body[1] << 16 | body[2] << 8 | body[3] : 0;
  int n = icmp6_encode(src, dst, type, code, rest, blen > 4 ? body + 4 : NULL,
                       blen > 4 ? blen - 4 : 0, ip + 40, 1500);
  if (bad_sum) ip[40 + 2] ^= 0x55;
  size_t len = 14 + 40 + (size_t)n;
  return len < 60 ? (memset(f + len, 0, 60 - len), 60) : len;
}

/* NS body: reserved, target, then an SLLAO when sll. */
static size_t ns_body(uint8_t *b, const uint8_t target[16], const uint8_t *sll)
{
  memset(b, 0, 4);
  memcpy(b + 4, target, 16);
  if (!sll) return 20;
  b[20] = 1; b[21] = 1;
  memcpy(b + 22, sll, 6);
  return 28;
}

/* NA body: R/S/O flags, target, then a TLLAO when tll. */
static size_t na_body(uint8_t *b, bool s, bool o, const uint8_t target[16], const uint8_t *tll)
{
  memset(b, 0, 4);
  b[0] = (uint8_t)((s ? 0x40 : 0) | (o ? 0x20 : 0));
  memcpy(b + 4, target, 16);
  if (!tll) return 20;
  b[20] = 2; b[21] = 1;
  memcpy(b + 22, tll, 6);
  return 28;
}

static size_t ns_from(uint8_t *f, const uint8_t dmac[6], const uint8_t smac[6],
                      const uint8_t src[16], const uint8_t dst[16], const uint8_t target[16],
                      const uint8_t *sll)
{
  uint8_t b[64];
  return icmp6_frame(f, dmac, smac, src, dst, 255, 135, 0, b, ns_body(b, target, sll), false);
}

static size_t na_from(uint8_t *f, const uint8_t dmac[6], const uint8_t smac[6],
                      const uint8_t src[16], const uint8_t dst[16], bool s, bool o,
                      const uint8_t target[16], const uint8_t *tll)
{
  uint8_t b[64];
  return icmp6_frame(f, dmac, smac, src, dst, 255, 136, 0, b, na_body(b, s, o, target, tll), false);
}

/* A TCP-ish IPv6 datagram from ME to dst. */
static size_t ip6_to(uint8_t *p, const uint8_t src[16], const uint8_t dst[16])
{
  memset(p, 0, 60);
  struct ipv6_hdr h = {.payload_len = 20, .next_header = 6, .hop_limit = 64};
  memcpy(h.src, src, 16);
  memcpy(h.dst, dst, 16);
  ipv6_encode(&h, p, 40);
  return 60;
}

/* Frame i is ICMPv6 of this type; its IPv6 header and message in *ip, *m. */
static bool is_icmp6(int i, uint8_t type, struct ipv6_pkt *ip, struct icmp6_msg *m)
{
  if (i >= nout || out[i].len < 14 + 40 + 8) return false;
  const uint8_t *f = out[i].d;
  if (f[12] != 0x86 || f[13] != 0xdd) return false;
  if (ipv6_decode(f + 14, out[i].len - 14, ip) != 0 || ip->proto != 58) return false;
  if (icmp6_decode(ip->h.src, ip->h.dst, f + 14 + ip->upper_off, ip->upper_len, m) != 0)
    return false;
  return m->type == type && m->code == 0 && ip->h.hop_limit == 255 &&
         !memcmp(f + 6, MY_MAC, 6);
}

/* The LLA option of type t in an NS/NA message body (after the target). */
static const uint8_t *lla_opt(const struct icmp6_msg *m, uint8_t t)
{
  if (m->data_len >= 16 + 8 && m->data[16] == t && m->data[17] == 1) return m->data + 18;
  return NULL;
}

static void rfc4291_appA_link_local_rfc2464_7_mcast(void)
{
  uint8_t ll[16], mac[6], sn[16];
  eth_link_local(MY_MAC, ll);
  static const uint8_t want[16] = {0xfe, 0x80, 0, 0, 0, 0, 0, 0,
                                   0x00, 0x75, 0x73, 0xff, 0xfe, 0x74, 0x63, 0x70};
  CHECK_MEM(ll, want, 16);                      /* U/L bit inverted, ff:fe inserted */
  eth_solicited_node(ME, sn);
  static const uint8_t want_sn[16] = {0xff, 0x02, [11] = 1, [12] = 0xff, [15] = 2};
  CHECK_MEM(sn, want_sn, 16);
  eth_mcast_mac(sn, mac);
  static const uint8_t want_mac[6] = {0x33, 0x33, 0xff, 0, 0, 2};
  CHECK_MEM(mac, want_mac, 6);
  /* Multicast frames: ours (solicited-node of ME, all-nodes) taken, others not. */
  struct eth_iface *e = new_iface(false);
  const struct eth_stats *st = eth_get_stats(e);
  uint8_t f[200];
  size_t n = ns_from(f, want_mac, PEER_MAC, PEER, sn, ME, PEER_MAC);
  eth_frame_input(e, f, n, 1000, 0);
  CHECK_EQ(st->rx_ns, 1);
  CHECK_EQ(nout, 1);
  static const uint8_t other_mac[6] = {0x33, 0x33, 0xff, 0x12, 0x34, 0x56};
  n = ns_from(f, other_mac, PEER_MAC, PEER, sn, ME, PEER_MAC);
  eth_frame_input(e, f, n, 1000, 0);
  CHECK_EQ(st->rx_not_for_us, 1);
  CHECK_EQ(st->rx_ns, 1);
  /* IPv6 that is not ND, unicast to us: to the stack; to a group: dropped. */
  uint8_t p[60];
  memcpy(f, MY_MAC, 6); memcpy(f + 6, PEER_MAC, 6); f[12] = 0x86; f[13] = 0xdd;
  memcpy(f + 14, p, ip6_to(p, PEER, ME));
  eth_frame_input(e, f, 74, 1000, 0);
  CHECK_EQ(nip, 1);
  static const uint8_t allnodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
  memcpy(f, allnodes_mac, 6);
  memcpy(f + 14, p, ip6_to(p, PEER, ALLNODES));
  eth_frame_input(e, f, 74, 1000, 0);
  CHECK_EQ(nip, 1);
  CHECK_EQ(st->rx_ip6_mcast, 1);
  eth_free(e);
}

static void rfc4862_5_4_dad(void)
{
  struct eth_iface *e = new_iface(true);
  const struct eth_stats *st = eth_get_stats(e);
  uint8_t p[60], f[200], sn[16], snmac[6];
  eth_solicited_node(ME, sn);
  eth_mcast_mac(sn, snmac);
  eth_dad_start(e, 1000);
  CHECK_EQ(eth_addr6_state(e, 0), ETH_ADDR6_TENTATIVE);
  CHECK_EQ(eth_addr6_state(e, 1), ETH_ADDR6_TENTATIVE);
  eth_ip_output(e, p, ip6_to(p, ME, PEER), 1000);     /* from a tentative address */
  CHECK_EQ(st->tx_tentative, 1);
  CHECK_EQ(nout, 0);
  /* The NS go out after a random delay below 1 s (Linux's rtr_solicit_delay). */
  eth_poll(e, 1000 + ETH_ND_DAD_MAX_DELAY_US);
  CHECK_EQ(nout, 2);
  struct ipv6_pkt ip;
  struct icmp6_msg m;
  int dad_ns = -1;
  for (int i = 0; i < nout && dad_ns < 0; i++)
    if (is_icmp6(i, 135, &ip, &m) && !memcmp(m.data, ME, 16)) dad_ns = i;
  CHECK(dad_ns >= 0);
  if (dad_ns >= 0) {
    CHECK_MEM(ip.h.src, ANY, 16);                 /* from :: */
    CHECK_MEM(ip.h.dst, sn, 16);                  /* to the target's solicited-node group */
    CHECK_MEM(out[dad_ns].d, snmac, 6);
    CHECK_EQ(m.data_len, 16);                     /* no SLLAO from :: (§7.2.2) */
  }
  CHECK_EQ(eth_addr6_state(e, 0), ETH_ADDR6_TENTATIVE);
  /* Our own NS seen again (a looped-back frame from our MAC) is no duplicate. */
  if (dad_ns >= 0) eth_frame_input(e, out[dad_ns].d, out[dad_ns].len, 1500000, 0);
  CHECK_EQ(eth_addr6_state(e, 0), ETH_ADDR6_TENTATIVE);
  /* An NS from a unicast source for a tentative address is not answered. */
  int before = nout;
  size_t n = ns_from(f, snmac, PEER_MAC, PEER, sn, ME, PEER_MAC);
  eth_frame_input(e, f, n, 1500000, 0);
  CHECK_EQ(nout, before);
  CHECK_EQ(eth_nd_count(e), 0);
  /* RetransTimer after the last NS, no answer: preferred. */
  eth_poll(e, 1000 + ETH_ND_DAD_MAX_DELAY_US + ETH_ND_RETRANS_US);
  CHECK_EQ(eth_addr6_state(e, 0), ETH_ADDR6_PREFERRED);
  CHECK_EQ(eth_addr6_state(e, 1), ETH_ADDR6_PREFERRED);
  CHECK_EQ(st->dad_duplicates, 0);
  eth_free(e);

  /* A neighbour answers the DAD NS: duplicate, said and counted, and unused. */
  e = new_iface(true);
  st = eth_get_stats(e);
  eth_dad_start(e, 1000);
  n = na_from(f, (const uint8_t[6]){0x33, 0x33, 0, 0, 0, 1}, EVIL_MAC, ME, ALLNODES, false, true,
              ME, EVIL_MAC);
  eth_frame_input(e, f, n, 2000, 0);
  CHECK_EQ(eth_addr6_state(e, 0), ETH_ADDR6_DUPLICATE);
  CHECK_EQ(st->dad_duplicates, 1);
  eth_poll(e, 10000000);
  CHECK_EQ(eth_addr6_state(e, 0), ETH_ADDR6_DUPLICATE);
  nout = 0;
  eth_ip_output(e, p, ip6_to(p, ME, PEER), 10000000);
  CHECK_EQ(nout, 0);
  CHECK_EQ(st->tx_tentative, 1);
  eth_free(e);

  /* Another node doing DAD for the same address (an NS from ::): duplicate. */
  e = new_iface(true);
  st = eth_get_stats(e);
  eth_dad_start(e, 1000);
  n = ns_from(f, snmac, EVIL_MAC, ANY, sn, ME, NULL);
  eth_frame_input(e, f, n, 2000, 0);
  CHECK_EQ(eth_addr6_state(e, 0), ETH_ADDR6_DUPLICATE);
  CHECK_EQ(eth_addr6_state(e, 1), ETH_ADDR6_TENTATIVE);
  CHECK_EQ(st->dad_duplicates, 1);
  eth_free(e);
}

static void rfc4861_7_2_3_ns_answered(void)
{
  struct eth_iface *e = new_iface(false);
  const struct eth_stats *st = eth_get_stats(e);
  uint8_t f[200], sn[16], snmac[6], mac[6];
  eth_solicited_node(ME, sn);
  eth_mcast_mac(sn, snmac);
  size_t n = ns_from(f, snmac, PEER_MAC, PEER, sn, ME, PEER_MAC);
  eth_frame_input(e, f, n, 1000, 0);
  struct ipv6_pkt ip;
  struct icmp6_msg m;
  CHECK_EQ(nout, 1);
  CHECK(is_icmp6(0, 136, &ip, &m));
  CHECK_MEM(out[0].d, PEER_MAC, 6);             /* unicast, to the SLLAO */
  CHECK_MEM(ip.h.src, ME, 16);
  CHECK_MEM(ip.h.dst, PEER, 16);
  CHECK_EQ(m.rest >> 24, 0x60);                 /* S and O, not R */
  CHECK_MEM(m.data, ME, 16);
  CHECK(lla_opt(&m, 2) && !memcmp(lla_opt(&m, 2), MY_MAC, 6));   /* multicast NS: TLLAO */
  CHECK_EQ(eth_nd_lookup(e, PEER, 1000, mac), ETH_ND_STALE);     /* §7.2.3: created STALE */
  CHECK_MEM(mac, PEER_MAC, 6);
  CHECK_EQ(st->tx_na, 1);
  /* A unicast NS (a reachability probe) without SLLAO: answered to its
   * sender's MAC, without TLLAO (Linux's ndisc_recv_ns: inc_opt only for
   * multicast). */
  n = ns_from(f, MY_MAC, PEER_MAC, PEER, ME, ME, NULL);
  eth_frame_input(e, f, n, 2000, 0);
  CHECK_EQ(nout, 2);
  CHECK(is_icmp6(1, 136, &ip, &m));
  CHECK_MEM(out[1].d, PEER_MAC, 6);
  CHECK(lla_opt(&m, 2) == NULL);
  /* Another node's DAD for our (preferred) address: defended to all-nodes,
   * S clear (§7.2.4). */
  n = ns_from(f, snmac, EVIL_MAC, ANY, sn, ME, NULL);
  eth_frame_input(e, f, n, 3000, 0);
  CHECK_EQ(nout, 3);
  CHECK(is_icmp6(2, 136, &ip, &m));
  CHECK_MEM(ip.h.dst, ALLNODES, 16);
  CHECK_EQ(m.rest >> 24, 0x20);
  CHECK(lla_opt(&m, 2) != NULL);
  CHECK_EQ(eth_addr6_state(e, 0), ETH_ADDR6_PREFERRED);
  /* NS for an address that is not ours: nothing, and no entry made. */
  static const uint8_t other[16] = {0xfd, 0, [15] = 9};
  n = ns_from(f, MY_MAC, EVIL_MAC, other, ME, other, EVIL_MAC);
  eth_frame_input(e, f, n, 4000, 0);
  CHECK_EQ(nout, 3);
  CHECK_EQ(st->rx_ns_not_ours, 1);
  CHECK_EQ(eth_nd_count(e), 1);
  /* Our link-local address is answered too. */
  uint8_t ll[16], llsn[16], llmac[6];
  eth_link_local(MY_MAC, ll);
  eth_solicited_node(ll, llsn);
  eth_mcast_mac(llsn, llmac);
  static const uint8_t peer_ll[16] = {0xfe, 0x80, [15] = 0x11};
  n = ns_from(f, llmac, PEER_MAC, peer_ll, llsn, ll, PEER_MAC);
  eth_frame_input(e, f, n, 5000, 0);
  CHECK_EQ(nout, 4);
  CHECK(is_icmp6(3, 136, &ip, &m) && !memcmp(m.data, ll, 16));
  eth_free(e);
}

static void rfc4861_7_1_validation(void)
{
  struct eth_iface *e = new_iface(false);
  const struct eth_stats *st = eth_get_stats(e);
  uint8_t f[600], b[64], sn[16], snmac[6];
  eth_solicited_node(ME, sn);
  eth_mcast_mac(sn, snmac);
  size_t bl = ns_body(b, ME, PEER_MAC);
  uint64_t bad = 0;
  /* hop limit 254 (§7.1.1: a router forwarded it) */
  eth_frame_input(e, f, icmp6_frame(f, snmac, PEER_MAC, PEER, sn, 254, 135, 0, b, bl, false), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* code 1 */
  eth_frame_input(e, f, icmp6_frame(f, snmac, PEER_MAC, PEER, sn, 255, 135, 1, b, bl, false), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* bad checksum */
  eth_frame_input(e, f, icmp6_frame(f, snmac, PEER_MAC, PEER, sn, 255, 135, 0, b, bl, true), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* shorter than 24 bytes */
  eth_frame_input(e, f, icmp6_frame(f, snmac, PEER_MAC, PEER, sn, 255, 135, 0, b, 12, false), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* an option of length 0 */
  uint8_t b0[64];
  memcpy(b0, b, bl);
  b0[21] = 0;
  eth_frame_input(e, f, icmp6_frame(f, snmac, PEER_MAC, PEER, sn, 255, 135, 0, b0, bl, false), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* an option running past the message */
  memcpy(b0, b, bl);
  b0[21] = 2;
  eth_frame_input(e, f, icmp6_frame(f, snmac, PEER_MAC, PEER, sn, 255, 135, 0, b0, bl, false), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* a multicast target */
  uint8_t bm[64];
  size_t bml = ns_body(bm, ALLNODES, PEER_MAC);
  eth_frame_input(e, f, icmp6_frame(f, snmac, PEER_MAC, PEER, sn, 255, 135, 0, bm, bml, false), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* from :: with an SLLAO */
  eth_frame_input(e, f, ns_from(f, snmac, PEER_MAC, ANY, sn, ME, PEER_MAC), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* from :: to a unicast destination */
  eth_frame_input(e, f, ns_from(f, MY_MAC, PEER_MAC, ANY, ME, ME, NULL), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* an SLLAO that is a multicast MAC */
  static const uint8_t mcast_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
  eth_frame_input(e, f, ns_from(f, snmac, PEER_MAC, PEER, sn, ME, mcast_mac), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* NA to a multicast destination with S set (§7.1.2) */
  static const uint8_t allmac[6] = {0x33, 0x33, 0, 0, 0, 1};
  eth_frame_input(e, f, na_from(f, allmac, PEER_MAC, PEER, ALLNODES, true, true, PEER, PEER_MAC), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  /* more options than ETH_ND_MAX_OPTS (each a harmless 8-byte nonce) */
  uint8_t big[20 + 8 * (ETH_ND_MAX_OPTS + 1)];
  memset(big, 0, sizeof big);
  memcpy(big + 4, ME, 16);
  for (int i = 0; i <= ETH_ND_MAX_OPTS; i++) { big[20 + 8 * i] = 14; big[21 + 8 * i] = 1; }
  eth_frame_input(e, f, icmp6_frame(f, snmac, PEER_MAC, PEER, sn, 255, 135, 0, big, sizeof big, false), 1, 0);
  CHECK_EQ(st->rx_nd_bad, ++bad);
  CHECK_EQ(nout, 0);
  CHECK_EQ(eth_nd_count(e), 0);
  CHECK_EQ(st->rx_ns, 0);
  /* RS, RA, Redirect: not ours to handle, counted. */
  eth_frame_input(e, f, icmp6_frame(f, allmac, PEER_MAC, GW, ALLNODES, 255, 134, 0, b, 16, false), 1, 0);
  CHECK_EQ(st->rx_nd_other, 1);
  CHECK_EQ(nip, 0);
  eth_free(e);
}

static void rfc4861_7_2_2_resolution_and_queue(void)
{
  struct eth_iface *e = new_iface(false);
  const struct eth_stats *st = eth_get_stats(e);
  uint8_t p[60], f[200], sn[16], snmac[6], mac[6];
  eth_solicited_node(PEER, sn);
  eth_mcast_mac(sn, snmac);
  for (int i = 0; i < 5; i++) {
    ip6_to(p, ME, PEER);
    p[40] = (uint8_t)i;                          /* tell them apart */
    eth_ip_output(e, p, 60, 1000);
  }
  CHECK_EQ(nout, 1);                             /* one NS, nothing else yet */
  struct ipv6_pkt ip;
  struct icmp6_msg m;
  CHECK(is_icmp6(0, 135, &ip, &m));
  CHECK_MEM(out[0].d, snmac, 6);
  CHECK_MEM(ip.h.dst, sn, 16);
  CHECK_MEM(ip.h.src, ME, 16);                   /* the waiting datagram's source (§7.2.2) */
  CHECK_MEM(m.data, PEER, 16);
  CHECK(lla_opt(&m, 1) && !memcmp(lla_opt(&m, 1), MY_MAC, 6));
  CHECK_EQ(eth_nd_lookup(e, PEER, 1000, NULL), ETH_ND_INCOMPLETE);
  CHECK_EQ(st->nd_queue_full, 2);                /* 3 wait, the 2 oldest went */
  size_t n = na_from(f, MY_MAC, PEER_MAC, PEER, ME, true, true, PEER, PEER_MAC);
  eth_frame_input(e, f, n, 2000, 0);
  CHECK_EQ(nout, 4);
  for (int i = 1; i < 4 && i < nout; i++) {
    CHECK_MEM(out[i].d, PEER_MAC, 6);
    CHECK_EQ(out[i].d[14 + 40], i + 1);          /* 2, 3, 4: the newest three, in order */
  }
  CHECK_EQ(eth_nd_lookup(e, PEER, 2000, mac), ETH_ND_REACHABLE);
  CHECK_MEM(mac, PEER_MAC, 6);
  eth_free(e);

  /* Nobody answers: three NS a second apart, then what waited is dropped. */
  e = new_iface(false);
  st = eth_get_stats(e);
  eth_ip_output(e, p, ip6_to(p, ME, PEER), 0);
  for (uint64_t t = 1; t <= 4; t++) eth_poll(e, t * ETH_ND_RETRANS_US);
  CHECK_EQ(nout, 3);
  CHECK_EQ(st->tx_ns, 3);
  CHECK_EQ(st->nd_failed, 1);
  CHECK_EQ(eth_nd_count(e), 0);
  CHECK_EQ(eth_deadline(e), UINT64_MAX);
  eth_free(e);

  /* Off-link: to the default router (link-local), which is resolved. */
  e = new_iface(false);
  st = eth_get_stats(e);
  eth_ip_output(e, p, ip6_to(p, ME, FAR), 0);
  CHECK(is_icmp6(0, 135, &ip, &m) && !memcmp(m.data, GW, 16));
  CHECK_EQ(eth_nd_lookup(e, GW, 0, NULL), ETH_ND_INCOMPLETE);
  /* Multicast: mapped, no ND. */
  nout = 0;
  eth_ip_output(e, p, ip6_to(p, ME, ALLNODES), 0);
  CHECK_EQ(nout, 1);
  static const uint8_t allmac[6] = {0x33, 0x33, 0, 0, 0, 1};
  CHECK_MEM(out[0].d, allmac, 6);
  eth_free(e);
  e = new_iface_gw(false, NULL);
  st = eth_get_stats(e);
  eth_ip_output(e, p, ip6_to(p, ME, FAR), 0);
  CHECK_EQ(st->no_route, 1);
  CHECK_EQ(nout, 0);
  eth_free(e);
}

static void rfc4861_7_3_3_state_machine(void)
{
  struct eth_iface *e = new_iface(false);
  const struct eth_stats *st = eth_get_stats(e);
  uint8_t p[60], f[200];
  eth_ip_output(e, p, ip6_to(p, ME, PEER), 0);
  eth_frame_input(e, f, na_from(f, MY_MAC, PEER_MAC, PEER, ME, true, false, PEER, PEER_MAC), 10, 0);
  CHECK_EQ(eth_nd_lookup(e, PEER, 10, NULL), ETH_ND_REACHABLE);
  uint64_t t = 10 + ETH_ND_REACHABLE_US;
  CHECK_EQ(eth_nd_lookup(e, PEER, t, NULL), ETH_ND_STALE);   /* ReachableTime passed */
  nout = 0;
  eth_ip_output(e, p, ip6_to(p, ME, PEER), t);               /* sent at once... */
  CHECK_EQ(nout, 1);
  CHECK_MEM(out[0].d, PEER_MAC, 6);
  CHECK_EQ(eth_nd_lookup(e, PEER, t, NULL), ETH_ND_DELAY);   /* ...and DELAY */
  eth_poll(e, t + ETH_ND_DELAY_FIRST_PROBE_US);
  CHECK_EQ(eth_nd_lookup(e, PEER, t + ETH_ND_DELAY_FIRST_PROBE_US, NULL), ETH_ND_PROBE);
  struct ipv6_pkt ip;
  struct icmp6_msg m;
  CHECK_EQ(nout, 2);
  CHECK(is_icmp6(1, 135, &ip, &m));
  CHECK_MEM(out[1].d, PEER_MAC, 6);                          /* unicast probe */
  CHECK_MEM(ip.h.dst, PEER, 16);
  /* A solicited NA confirms: REACHABLE. */
  t += ETH_ND_DELAY_FIRST_PROBE_US + 1000;
  eth_frame_input(e, f, na_from(f, MY_MAC, PEER_MAC, PEER, ME, true, false, PEER, NULL), t, 0);
  CHECK_EQ(eth_nd_lookup(e, PEER, t, NULL), ETH_ND_REACHABLE);
  /* Again to PROBE, and no answer: three probes, then the entry is gone. */
  t += ETH_ND_REACHABLE_US;
  eth_ip_output(e, p, ip6_to(p, ME, PEER), t);
  t += ETH_ND_DELAY_FIRST_PROBE_US;
  uint64_t ns0 = st->tx_ns;
  for (int i = 0; i < 4; i++, t += ETH_ND_RETRANS_US) eth_poll(e, t);
  CHECK_EQ(st->tx_ns - ns0, 3);
  CHECK_EQ(eth_nd_lookup(e, PEER, t, NULL), ETH_ND_NONE);
  CHECK_EQ(eth_nd_count(e), 0);
  eth_free(e);
}

static void rfc4861_7_2_5_forged_na(void)
{
  struct eth_iface *e = new_iface(false);
  const struct eth_stats *st = eth_get_stats(e);
  uint8_t p[60], f[200], mac[6];
  static const uint8_t allmac[6] = {0x33, 0x33, 0, 0, 0, 1};
  /* Unsolicited NA (no entry): nothing created, whatever its flags. */
  for (int i = 0; i < 100; i++) {
    uint8_t who[16];
    memcpy(who, PEER, 16);
    who[14] = (uint8_t)i;
    eth_frame_input(e, f, na_from(f, allmac, EVIL_MAC, who, ALLNODES, false, true, who, EVIL_MAC), 1, 0);
  }
  CHECK_EQ(eth_nd_count(e), 0);
  CHECK_EQ(st->rx_na_no_entry, 100);
  /* An NA for an INCOMPLETE entry without TLLAO: ignored. */
  eth_ip_output(e, p, ip6_to(p, ME, PEER), 0);
  eth_frame_input(e, f, na_from(f, MY_MAC, PEER_MAC, PEER, ME, true, true, PEER, NULL), 50, 0);
  CHECK_EQ(eth_nd_lookup(e, PEER, 50, NULL), ETH_ND_INCOMPLETE);
  eth_frame_input(e, f, na_from(f, MY_MAC, PEER_MAC, PEER, ME, true, false, PEER, PEER_MAC), 100, 0);
  CHECK_EQ(eth_nd_lookup(e, PEER, 100, mac), ETH_ND_REACHABLE);
  /* O=0 with another MAC: the cached MAC stays, REACHABLE becomes STALE. */
  eth_frame_input(e, f, na_from(f, MY_MAC, EVIL_MAC, PEER, ME, true, false, PEER, EVIL_MAC), 200, 0);
  CHECK_EQ(eth_nd_lookup(e, PEER, 200, mac), ETH_ND_STALE);
  CHECK_MEM(mac, PEER_MAC, 6);
  /* O=0 again on a STALE entry: ignored altogether. */
  eth_frame_input(e, f, na_from(f, MY_MAC, EVIL_MAC, PEER, ME, true, false, PEER, EVIL_MAC), 300, 0);
  CHECK_EQ(eth_nd_lookup(e, PEER, 300, mac), ETH_ND_STALE);
  CHECK_MEM(mac, PEER_MAC, 6);
  /* O=1, unsolicited, another MAC: updated, STALE (§7.2.5 last paragraphs). */
  eth_frame_input(e, f, na_from(f, allmac, EVIL_MAC, PEER, ALLNODES, false, true, PEER, EVIL_MAC), 400, 0);
  CHECK_EQ(eth_nd_lookup(e, PEER, 400, mac), ETH_ND_STALE);
  CHECK_MEM(mac, EVIL_MAC, 6);
  /* An NA claiming our preferred address: counted, changes nothing. */
  eth_frame_input(e, f, na_from(f, allmac, EVIL_MAC, ME, ALLNODES, false, true, ME, EVIL_MAC), 500, 0);
  CHECK_EQ(st->rx_na_our_addr, 1);
  CHECK_EQ(eth_addr6_state(e, 0), ETH_ADDR6_PREFERRED);
  eth_free(e);
}

static void attack_ns_flood_cache_bound(void)
{
  struct eth_iface *e = new_iface(false);
  const struct eth_stats *st = eth_get_stats(e);
  uint8_t p[60], f[200], sn[16], snmac[6], mac[6];
  eth_solicited_node(ME, sn);
  eth_mcast_mac(sn, snmac);
  /* The gateway resolved and in use. */
  eth_ip_output(e, p, ip6_to(p, ME, FAR), 0);
  eth_frame_input(e, f, na_from(f, MY_MAC, PEER_MAC, GW, ME, true, true, GW, PEER_MAC), 10, 0);
  CHECK_EQ(eth_nd_lookup(e, GW, 10, NULL), ETH_ND_REACHABLE);
  /* 10000 NS for our address from forged sources, each with an SLLAO. */
  for (unsigned i = 0; i < 10000; i++) {
    uint8_t src[16];
    memcpy(src, PEER, 16);
    src[12] = (uint8_t)(i >> 8); src[13] = (uint8_t)i; src[15] = 7;
    uint8_t smac[6] = {0x02, 0x66, 0, 0, (uint8_t)(i >> 8), (uint8_t)i};
    eth_frame_input(e, f, ns_from(f, snmac, smac, src, sn, ME, smac), 20 + i, 0);
    if (eth_nd_count(e) > ETH_ND_ENTRIES) break;
  }
  CHECK(eth_nd_count(e) <= ETH_ND_ENTRIES);
  CHECK(st->nd_evictions >= 10000 - ETH_ND_ENTRIES);
  CHECK_EQ(eth_nd_lookup(e, GW, 10020, mac), ETH_ND_REACHABLE);
  CHECK_MEM(mac, PEER_MAC, 6);
  eth_free(e);
}

int main(void)
{
  RUN(rfc4291_appA_link_local_rfc2464_7_mcast);
  RUN(rfc4862_5_4_dad);
  RUN(rfc4861_7_2_3_ns_answered);
  RUN(rfc4861_7_1_validation);
  RUN(rfc4861_7_2_2_resolution_and_queue);
  RUN(rfc4861_7_3_3_state_machine);
  RUN(rfc4861_7_2_5_forged_na);
  RUN(attack_ns_flood_cache_bound);
  return check_report();
}
