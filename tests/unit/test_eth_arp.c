/* Ethernet and ARP (src/link/eth.c; issue 16 point 2), sans-I/O: frames in,
 * frames out, virtual time.
 *   - RFC 826: a request for our address is answered by unicast and its sender
 *     cached; a datagram to an unknown neighbour waits for ARP, then goes out
 *     with the MAC learnt; off-prefix destinations go to the gateway;
 *   - requests are retried once a second, three in all, then what waited is
 *     dropped (counted); an entry past its reachable time is still used while
 *     it is asked again by unicast;
 *   - gratuitous ARP updates only what is cached; eth_announce sends one;
 *   - attacks: forged ARP floods from thousands of senders keep the cache at
 *     its bound; a neighbour's queue holds at most ETH_ARP_QUEUE datagrams;
 *     ARP claiming our address, multicast sender MACs, off-prefix senders are
 *     refused; short, oversize, VLAN-tagged, unknown-type frames and frames
 *     for another MAC are dropped, each with its counter. */
#include <string.h>
#include "check.h"
#include "link/eth.h"

#define ME 0x0a090002u      /* 10.9.0.2/24 */
#define PEER 0x0a090001u
#define GW 0x0a0900feu
#define FAR 0x08080808u

static const uint8_t MY_MAC[6] = {0x02, 0x75, 0x73, 0x74, 0x63, 0x70};
static const uint8_t PEER_MAC[6] = {0x02, 0, 0, 0, 0, 1};
static const uint8_t GW_MAC[6] = {0x02, 0, 0, 0, 0, 0xfe};

struct frame { size_t len; uint8_t d[1600]; };
static struct frame out[64];
static int nout;
static int nip;
static size_t ip_len;

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
  (void)ctx;
  (void)flags;
  (void)p;
  nip++;
  ip_len = len;
}

static struct eth_iface *new_iface(void)
{
  nout = nip = 0;
  struct eth_config c = {.ip = ME, .prefix_len = 24, .gateway = GW, .mtu = 1500};
  memcpy(c.mac, MY_MAC, 6);
  return eth_new(&c, on_frame, on_ip, NULL);
}

static void put32be(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v;
}

/* An ARP frame from sha/spa. */
static size_t arp_frame(uint8_t *f, const uint8_t *eth_dst, uint16_t op, const uint8_t sha[6],
                        uint32_t spa, const uint8_t tha[6], uint32_t tpa)
{
  memcpy(f, eth_dst, 6);
  memcpy(f + 6, sha, 6);
  f[12] = 0x08; f[13] = 0x06;
  uint8_t *a = f + 14;
  a[0] = 0; a[1] = 1; a[2] = 0x08; a[3] = 0; a[4] = 6; a[5] = 4;
  a[6] = 0; a[7] = (uint8_t)op;
  memcpy(a + 8, sha, 6);
  put32be(a + 14, spa);
  memcpy(a + 18, tha, 6);
  put32be(a + 24, tpa);
  return 14 + 28;
}

static size_t ip_to(uint8_t *p, uint32_t dst)
{
  memset(p, 0, 60);
  p[0] = 0x45;
  p[3] = 60;
  put32be(p + 12, ME);
  put32be(p + 16, dst);
  return 60;
}

static const uint8_t BC[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
static const uint8_t Z[6] = {0};

static bool is_arp(int i, uint16_t op, uint32_t tpa)
{
  if (i >= nout || out[i].len < 42) return false;
  const uint8_t *a = out[i].d + 14;
  return out[i].d[12] == 0x08 && out[i].d[13] == 0x06 && a[7] == op &&
         (uint32_t)(a[24] << 24 | a[25] << 16 | a[26] << 8 | a[27]) == tpa;
}

static void rfc826_request_answered(void)
{
  struct eth_iface *e = new_iface();
  uint8_t f[64];
  size_t n = arp_frame(f, BC, 1, PEER_MAC, PEER, Z, ME);
  eth_frame_input(e, f, n, 1000, 0);
  CHECK_EQ(nout, 1);
  CHECK(is_arp(0, 2, PEER));
  CHECK_MEM(out[0].d, PEER_MAC, 6);            /* unicast reply */
  CHECK_EQ(out[0].len, 60);                    /* padded to the minimum frame */
  uint8_t mac[6];
  CHECK(eth_arp_lookup(e, PEER, mac));
  CHECK_MEM(mac, PEER_MAC, 6);
  /* A datagram to it goes out at once, to its MAC. */
  uint8_t p[60];
  eth_ip_output(e, p, ip_to(p, PEER), 2000);
  CHECK_EQ(nout, 2);
  CHECK_MEM(out[1].d, PEER_MAC, 6);
  CHECK(out[1].d[12] == 0x08 && out[1].d[13] == 0x00);
  /* A request for another address is not answered. */
  n = arp_frame(f, BC, 1, PEER_MAC, PEER, Z, ME + 5);
  eth_frame_input(e, f, n, 3000, 0);
  CHECK_EQ(nout, 2);
  eth_free(e);
}

static void rfc826_resolution_and_retries(void)
{
  struct eth_iface *e = new_iface();
  uint8_t p[60], f[64];
  eth_ip_output(e, p, ip_to(p, PEER), 1000);
  eth_ip_output(e, p, ip_to(p, PEER), 1100);
  CHECK_EQ(nout, 1);                           /* one broadcast request, datagrams wait */
  CHECK(is_arp(0, 1, PEER));
  CHECK_MEM(out[0].d, BC, 6);
  CHECK_EQ(eth_poll(e, 1200), 1000 + 1000000);
  size_t n = arp_frame(f, MY_MAC, 2, PEER_MAC, PEER, MY_MAC, ME);
  eth_frame_input(e, f, n, 5000, 0);
  CHECK_EQ(nout, 3);                           /* both waiting datagrams, in order */
  CHECK_MEM(out[1].d, PEER_MAC, 6);
  CHECK_MEM(out[2].d, PEER_MAC, 6);
  /* Off-prefix: to the gateway, which nobody answers: 3 requests, then the
   * datagram is dropped and counted. */
  nout = 0;
  eth_ip_output(e, p, ip_to(p, FAR), 10000);
  CHECK(is_arp(0, 1, GW));
  uint64_t t = 10000;
  for (int k = 0; k < 5; k++) {
    t += 1000000;
    eth_poll(e, t);
  }
  CHECK_EQ(nout, 3);
  CHECK_EQ(eth_get_stats(e)->arp_failed, 1);
  /* Once answered, the gateway carries off-prefix traffic. */
  n = arp_frame(f, MY_MAC, 1, GW_MAC, GW, Z, ME);
  eth_frame_input(e, f, n, t, 0);
  nout = 0;
  eth_ip_output(e, p, ip_to(p, FAR), t + 1);
  CHECK_EQ(nout, 1);
  CHECK_MEM(out[0].d, GW_MAC, 6);
  /* Past the reachable time: still used, and asked again by unicast. */
  nout = 0;
  eth_ip_output(e, p, ip_to(p, FAR), t + 31000000);
  CHECK_EQ(nout, 2);
  CHECK_MEM(out[0].d, GW_MAC, 6);
  CHECK(is_arp(1, 1, GW));
  CHECK_MEM(out[1].d, GW_MAC, 6);
  eth_free(e);
}

static void gratuitous_arp(void)
{
  struct eth_iface *e = new_iface();
  eth_announce(e);
  CHECK_EQ(nout, 1);
  CHECK(is_arp(0, 1, ME));
  CHECK_MEM(out[0].d, BC, 6);
  /* A gratuitous ARP from an uncached neighbour adds nothing... */
  uint8_t f[64];
  size_t n = arp_frame(f, BC, 1, PEER_MAC, PEER, Z, PEER);
  eth_frame_input(e, f, n, 1000, 0);
  CHECK_EQ(eth_arp_count(e), 0);
  /* ...and updates a cached one. */
  n = arp_frame(f, BC, 1, PEER_MAC, PEER, Z, ME);
  eth_frame_input(e, f, n, 2000, 0);
  static const uint8_t NEW[6] = {0x02, 0, 0, 0, 0, 0x77};
  n = arp_frame(f, BC, 1, NEW, PEER, Z, PEER);
  eth_frame_input(e, f, n, 3000, 0);
  uint8_t mac[6];
  CHECK(eth_arp_lookup(e, PEER, mac));
  CHECK_MEM(mac, NEW, 6);
  eth_free(e);
}

static void attack_arp_flood_and_forgery(void)
{
  struct eth_iface *e = new_iface();
  uint8_t f[64], mac[6] = {0x02, 0, 0, 0, 0, 0};
  /* 10,000 forged requests for us from different senders on our prefix: the
   * cache stays at its bound. */
  for (uint32_t i = 0; i < 10000; i++) {
    mac[4] = (uint8_t)(i >> 8); mac[5] = (uint8_t)i;
    size_t n = arp_frame(f, BC, 1, mac, (ME & 0xffffff00u) | (1 + i % 250), Z, ME);
    eth_frame_input(e, f, n, 1000 + i, 0);
  }
  CHECK(eth_arp_count(e) <= ETH_ARP_ENTRIES);
  /* Our own address claimed, a multicast sender MAC, an off-prefix sender. */
  const struct eth_stats *st = eth_get_stats(e);
  uint64_t bad = st->rx_arp_bad;
  size_t n = arp_frame(f, BC, 2, PEER_MAC, ME, Z, ME);
  eth_frame_input(e, f, n, 20000, 0);
  static const uint8_t MCAST[6] = {0x01, 0, 0x5e, 0, 0, 1};
  n = arp_frame(f, BC, 1, MCAST, PEER, Z, ME);
  eth_frame_input(e, f, n, 20001, 0);
  n = arp_frame(f, BC, 1, PEER_MAC, FAR, Z, ME);
  eth_frame_input(e, f, n, 20002, 0);
  n = arp_frame(f, BC, 1, PEER_MAC, PEER, Z, ME);
  f[14 + 4] = 8;                               /* hardware length 8 */
  eth_frame_input(e, f, n, 20003, 0);
  CHECK_EQ(st->rx_arp_bad, bad + 4);
  /* Datagrams to an unanswering neighbour: at most ETH_ARP_QUEUE wait. */
  eth_free(e);
  e = new_iface();
  uint8_t p[60];
  for (int i = 0; i < 100; i++) eth_ip_output(e, p, ip_to(p, PEER + 10), 1000 + (uint64_t)i);
  CHECK_EQ(eth_get_stats(e)->arp_queue_full, 100 - ETH_ARP_QUEUE);
  /* Destinations nobody answers, more than the cache holds: every entry is
   * busy with waiting datagrams, so new ones are refused, not grown. */
  for (uint32_t i = 0; i < 2 * ETH_ARP_ENTRIES; i++)
    eth_ip_output(e, p, ip_to(p, (ME & 0xffffff00u) | (i % 254 + 1)), 2000);
  CHECK(eth_arp_count(e) <= ETH_ARP_ENTRIES);
  eth_free(e);
}

static void bad_frames_counted(void)
{
  struct eth_iface *e = new_iface();
  const struct eth_stats *st = eth_get_stats(e);
  uint8_t f[1600];
  memset(f, 0, sizeof f);
  eth_frame_input(e, f, 10, 1, 0);
  CHECK_EQ(st->rx_short, 1);
  memcpy(f, MY_MAC, 6);
  f[12] = 0x08; f[13] = 0x00;
  eth_frame_input(e, f, 14 + 10, 1, 0);
  CHECK_EQ(st->rx_short, 2);
  eth_frame_input(e, f, 14 + 1501, 1, 0);
  CHECK_EQ(st->rx_oversize, 1);
  f[12] = 0x81; f[13] = 0x00;
  eth_frame_input(e, f, 64, 1, 0);
  CHECK_EQ(st->rx_vlan, 1);
  f[12] = 0x86; f[13] = 0xdd;
  eth_frame_input(e, f, 64, 1, 0);
  CHECK_EQ(st->rx_ipv6, 1);
  f[12] = 0x88; f[13] = 0xcc;
  eth_frame_input(e, f, 64, 1, 0);
  CHECK_EQ(st->rx_unknown_type, 1);
  memcpy(f, PEER_MAC, 6);
  f[12] = 0x08; f[13] = 0x00;
  eth_frame_input(e, f, 64, 1, 0);
  CHECK_EQ(st->rx_not_for_us, 1);
  CHECK_EQ(nip, 0);
  memcpy(f, MY_MAC, 6);
  eth_frame_input(e, f, 64, 1, 0);                /* an IPv4 frame for us */
  CHECK_EQ(nip, 1);
  CHECK_EQ(ip_len, 50);
  eth_free(e);
}

int main(void)
{
  RUN(rfc826_request_answered);
  RUN(rfc826_resolution_and_retries);
  RUN(gratuitous_arp);
  RUN(attack_arp_flood_and_forgery);
  RUN(bad_frames_counted);
  return check_report();
}
