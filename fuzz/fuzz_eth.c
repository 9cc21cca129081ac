/* libFuzzer target for Ethernet framing, ARP (src/link/eth.c) and IPv6
 * neighbour discovery (src/link/nd.c).
 *
 * The input is a list of records: byte 0 selects what happens (frame in, IPv4
 * datagram out to an address, clock step), bytes 1-2 a length, then that many
 * bytes. Frames are raw input bytes (so every header field, ARP included, is
 * attacker-chosen), optionally with the interface's MAC or broadcast as the
 * destination so they get past the first check. Ops 240..255 reach ND past
 * its checksum: an ICMPv6 message from the record's bytes (type, flags,
 * source, target, options all chosen) in an IPv6 datagram with hop limit 255
 * and a right checksum, to one of our groups or addresses; an IPv6 datagram
 * out from our address; DAD started. Checked: no crash or sanitizer report;
 * the ARP and ND caches never hold more than ETH_ARP_ENTRIES and
 * ETH_ND_ENTRIES; every frame sent is at least 60 and at most 14 + MTU bytes
 * and comes from the interface's MAC; at the end everything is freed (ASan: no
 * leak).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "link/eth.h"
#include "wire/ipv6.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c) do {                                                     \
    if (!(c)) {                                                             \
      fprintf(stderr, "fuzz_eth: property failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                              \
    }                                                                       \
  } while (0)

static const uint8_t MAC[6] = {0x02, 0x75, 0x73, 0x74, 0x63, 0x70};
static const uint8_t IP6[16] = {0xfd, 0, [15] = 2};
static const uint8_t GW6[16] = {0xfe, 0x80, [15] = 1};

/* An ND-shaped frame from record bytes r[0..n): r[0] the ICMPv6 type (135,
 * 136, else 133 + r[0] % 5), r[1] where to (bits 0-1: our address, its
 * solicited-node group, all-nodes, our link-local's group; bit 2: the source
 * is ::; bit 3: the target is ours), then a 16-byte source, then the message
 * body after the checksum (flags, target, options). */
static size_t nd_frame(uint8_t *f, const uint8_t *r, size_t n)
{
  if (n < 2 + 16) return 0;
  uint8_t type = r[0] == 135 || r[0] == 136 ? r[0] : (uint8_t)(133 + r[0] % 5);
  uint8_t ll[16], dst[16];
  eth_link_local(MAC, ll);
  switch (r[1] & 3) {
  case 0: memcpy(dst, IP6, 16); break;
  case 1: eth_solicited_node(IP6, dst); break;
  case 2: memset(dst, 0, 16); dst[0] = 0xff; dst[1] = 0x02; dst[15] = 1; break;
  default: eth_solicited_node(ll, dst); break;
  }
  uint8_t src[16];
  memcpy(src, r + 2, 16);
  if (r[1] & 4) memset(src, 0, 16);
  const uint8_t *body = r + 18;
  size_t blen = n - 18;
  if (blen > 1400) blen = 1400;
  uint8_t b[1400];
  memcpy(b, body, blen);
  if ((r[1] & 8) && blen >= 20) memcpy(b + 4, (r[1] & 16) ? ll : IP6, 16);
  if (r[1] & 3) eth_mcast_mac(dst, f);
  else memcpy(f, MAC, 6);
  memcpy(f + 6, r + 2, 6);
  f[6] &= 0xfe;
  f[12] = 0x86;
  f[13] = 0xdd;
  uint32_t rest = blen >= 4 ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3] : 0;
  size_t dlen = blen > 4 ? blen - 4 : 0;
  struct ipv6_hdr h = {.payload_len = (uint16_t)(ICMP6_HDR_LEN + dlen), .next_header = 58,
                       .hop_limit = 255};
  memcpy(h.src, src, 16);
  memcpy(h.dst, dst, 16);
  ipv6_encode(&h, f + 14, 40);
  int m = icmp6_encode(src, dst, type, 0, rest, dlen ? b + 4 : NULL, dlen, f + 54, 1500 - 40);
  return m < 0 ? 0 : 54 + (size_t)m;
}

static void on_frame(void *ctx, const uint8_t *f, size_t len)
{
  (void)ctx;
  REQUIRE(len >= 60 && len <= 14 + 1500);
  REQUIRE(memcmp(f + 6, MAC, 6) == 0);
}

static void on_ip(void *ctx, const uint8_t *p, size_t len, unsigned flags)
{
  (void)ctx;
  (void)flags;
  (void)p;
  REQUIRE(len >= 20 && len <= 1500);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static uint8_t buf[2000];
  static uint8_t fr[1600];
  struct eth_config c = {.ip = 0x0a090002u, .prefix_len = 24, .gateway = 0x0a0900feu, .mtu = 1500,
                         .prefix6_len = 64, .seed = 1};
  memcpy(c.mac, MAC, 6);
  memcpy(c.ip6, IP6, 16);
  memcpy(c.gateway6, GW6, 16);
  /* DAD runs only when an input starts with its op (240+, low bits 3): the
   * rest see usable addresses, as after DAD */
  c.no_dad = !(size >= 1 && data[0] >= 240 && (data[0] & 3) == 3);
  struct eth_iface *e = eth_new(&c, on_frame, on_ip, NULL);
  REQUIRE(e != NULL);
  uint64_t now = 1000;
  size_t i = 0;
  while (i + 3 <= size) {
    uint8_t op = data[i];
    size_t len = (size_t)(data[i + 1] | data[i + 2] << 8) % 1600;
    i += 3;
    if (len > size - i) len = size - i;
    memcpy(buf, data + i, len);
    i += len;
    if (op >= 240) {
      size_t n;
      switch (op & 3) {
      case 0: case 1:                         /* an ND message, checksum right */
        n = nd_frame(fr, buf, len);
        if (n) eth_frame_input(e, fr, n, now, 0);
        break;
      case 2:                                 /* an IPv6 datagram out, from us */
        if (len >= 40) {
          buf[0] = (uint8_t)(0x60 | (buf[0] & 0x0f));
          memcpy(buf + 8, IP6, 16);
          if (buf[24] & 1) memcpy(buf + 24, IP6, 8);   /* on-link, often */
        }
        eth_ip_output(e, buf, len, now);
        break;
      default:
        eth_dad_start(e, now);
        break;
      }
      REQUIRE(eth_nd_count(e) <= ETH_ND_ENTRIES);
      continue;
    }
    switch (op % 5) {
    case 0:
      eth_frame_input(e, buf, len, now, 0);
      break;
    case 1:                                   /* to us */
      if (len >= 6) memcpy(buf, MAC, 6);
      eth_frame_input(e, buf, len, now, 0);
      break;
    case 2:                                   /* broadcast */
      if (len >= 6) memset(buf, 0xff, 6);
      eth_frame_input(e, buf, len, now, 0);
      break;
    case 3:                                   /* a datagram out, to the address in it */
      eth_ip_output(e, buf, len, now);
      break;
    default:
      now += (uint64_t)(op >> 3) * 250000u;
      eth_poll(e, now);
      break;
    }
    REQUIRE(eth_arp_count(e) <= ETH_ARP_ENTRIES);
    REQUIRE(eth_nd_count(e) <= ETH_ND_ENTRIES);
  }
  now += 100000000u;
  eth_poll(e, now);
  eth_free(e);
  return 0;
}
