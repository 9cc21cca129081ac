/* libFuzzer target for Ethernet framing and ARP (src/link/eth.c).
 *
 * The input is a list of records: byte 0 selects what happens (frame in, IPv4
 * datagram out to an address, clock step), bytes 1-2 a length, then that many
 * bytes. Frames are raw input bytes (so every header field, ARP included, is
 * attacker-chosen), optionally with the interface's MAC or broadcast as the
 * destination so they get past the first check. Checked: no crash or
 * sanitizer report; the ARP cache never holds more than ETH_ARP_ENTRIES;
 * every frame sent is at least 60 and at most 14 + MTU bytes and comes from the
 * interface's MAC; at the end everything is freed (ASan: no leak).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "link/eth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c) do {                                                     \
    if (!(c)) {                                                             \
      fprintf(stderr, "fuzz_eth: property failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                              \
    }                                                                       \
  } while (0)

static const uint8_t MAC[6] = {0x02, 0x75, 0x73, 0x74, 0x63, 0x70};

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
  struct eth_config c = {.ip = 0x0a090002u, .prefix_len = 24, .gateway = 0x0a0900feu, .mtu = 1500};
  memcpy(c.mac, MAC, 6);
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
  }
  now += 100000000u;
  eth_poll(e, now);
  eth_free(e);
  return 0;
}
