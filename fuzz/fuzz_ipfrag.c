/* libFuzzer target for IPv4 reassembly (src/stack/ip_frag.c).
 *
 * The input is a list of fragments, 8 bytes of description each followed by
 * payload bytes from the input:
 *   byte 0    datagram (id low bits: 4 datagrams, so fragments meet) and
 *             protocol (bit 2: TCP, else ICMP)
 *   byte 1    flags: bit0 MF, bit1 DF, bit2 a different source (forged),
 *             bit3 advance the clock 10 s first, bits4-7 IHL extra words (options)
 *   bytes 2-3 fragment offset (13 bits)
 *   bytes 4-5 payload length (taken modulo what the input has left, at most 2000)
 *   bytes 6-7 unused (room for mutations)
 * Fed to a stack with a listener (a reassembled SYN gets an answer) and a small
 * memory threshold. Checked: no crash or sanitizer report; every packet the
 * stack sends decodes as IPv4 and is at most the MTU; the reassembly queues
 * never hold more than the threshold (stats: fragments over it are dropped);
 * at the end, after ipfrag_time, the stack frees without leaks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ustcp.h"
#include "wire/wire.h"
#include "stack/stack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c) do {                                                     \
    if (!(c)) {                                                             \
      fprintf(stderr, "fuzz_ipfrag: property failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                              \
    }                                                                       \
  } while (0)

#define ME 0x0a070002u
#define PEER 0x0a070001u
#define THRESH (64u * 1024u)

static void on_out(void *ctx, const uint8_t *p, size_t len)
{
  (void)ctx;
  struct ipv4_hdr ip;
  const uint8_t *pl;
  size_t plen;
  REQUIRE(ipv4_decode(p, len, &ip, &pl, &plen) == WIRE_OK);
  REQUIRE(len <= 1500);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static uint8_t pkt[2100];
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.ipfrag_high_thresh = THRESH;
  uint64_t now = 1000;
  struct ustcp_stack *s = ustcp_stack_new(&cfg, ME, 7, on_out, NULL);
  REQUIRE(s != NULL);
  int l = ustcp_socket(s);
  struct ustcp_addr a = {ME, 80};
  REQUIRE(ustcp_bind(s, l, &a) == 0 && ustcp_listen(s, l, 8) == 0);
  size_t i = 0;
  while (i + 8 <= size) {
    const uint8_t *d = data + i;
    i += 8;
    size_t want = (size_t)(d[4] | d[5] << 8) % 2001;
    size_t len = want < size - i ? want : size - i;
    unsigned extra = (d[1] >> 4) % 11;          /* IHL 5..15 */
    size_t hl = 20 + 4 * extra;
    struct ipv4_hdr ip = {.version = 4, .ihl = (uint8_t)(5 + extra),
                          .total_len = (uint16_t)(hl + len), .id = (uint16_t)(0x100 + (d[0] & 3)),
                          .flags = (uint8_t)((d[1] & 1 ? IPV4_FLAG_MF : 0) | (d[1] & 2 ? IPV4_FLAG_DF : 0)),
                          .frag_off = (uint16_t)((d[2] | d[3] << 8) & 0x1fff), .ttl = 64,
                          .proto = (uint8_t)(d[0] & 4 ? IPPROTO_TCP_ : 1),
                          .src = d[1] & 4 ? PEER + 1 : PEER, .dst = ME};
    if (ipv4_encode(&ip, pkt, hl) <= 0) continue;
    if (extra) {                                /* IHL > 5: NOP options, checksum again */
      memset(pkt + 20, IPOPT_NOP_, hl - 20);
      pkt[0] = (uint8_t)(0x40 | (5 + extra));
      pkt[10] = pkt[11] = 0;
      uint16_t c = inet_csum_fold(inet_csum_add(0, pkt, hl));
      pkt[10] = (uint8_t)(c >> 8);
      pkt[11] = (uint8_t)c;
    }
    memcpy(pkt + hl, data + i, len);
    i += len;
    if (d[1] & 8) {
      now += 10 * USTCP_SEC;
      ustcp_poll(s, now);
    }
    ustcp_input(s, pkt, hl + len, now);
    REQUIRE(s->frag_mem <= THRESH);
  }
  now += 31 * USTCP_SEC;
  ustcp_poll(s, now);
  REQUIRE(s->frag_nqueues == 0 && s->frag_mem == 0);
  ustcp_close(s, l);
  REQUIRE(ustcp_stack_free(s) == 0);
  return 0;
}
