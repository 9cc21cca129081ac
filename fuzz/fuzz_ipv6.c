/* libFuzzer target for the IPv6 and ICMPv6 codecs (src/wire/ipv6.c).
 *
 * For each input, taken as an IPv6 packet:
 *   - ipv6_decode returns WIRE_OK or an error code, never reading outside the
 *     input (ASan) or invoking UB;
 *   - on success, or for a fragment, the upper layer it points at lies inside
 *     the payload, at most IPV6_MAX_EXT headers were walked, and re-encoding
 *     the fixed header gives back the input's first 40 bytes;
 *   - a Parameter Problem pointer, when given, points inside the packet;
 *   - for ICMPv6, icmp6_decode over the upper layer; a message that verifies is
 *     re-encoded byte for byte.
 * Then the same bytes go through a stack (issue 16: the IPv6 input path of
 * src/stack/ip6.c and the engine), made an IPv6 packet to the stack's address
 * (version 6, our destination, the TCP or ICMPv6 checksum made valid so the
 * parsers behind it see arbitrary headers), a listener on [::]:80:
 *   - every packet the stack sends is IPv6 that decodes, with a valid TCP or
 *     ICMPv6 checksum, within the MTU;
 *   - once the listener is closed and the timers have run out, no connection is
 *     left and the interned-address table holds only the stack's own address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wire/ipv6.h"
#include "wire/wire.h"
#include "stack/stack.h"
#include "wire/bytes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c) do {                                                     \
    if (!(c)) {                                                             \
      fprintf(stderr, "fuzz_ipv6: property failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                              \
    }                                                                       \
  } while (0)

static const uint8_t OUR6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};

static unsigned long stack_out_pkts;   /* FUZZ_IPV6_VERBOSE=1 prints it per input */

static void out_cb(void *ctx, const uint8_t *pkt, size_t len)
{
  (void)ctx;
  stack_out_pkts++;
  struct ipv6_pkt ip;
  REQUIRE(len <= 1500);
  REQUIRE(ipv6_decode(pkt, len, &ip) == WIRE_OK);
  REQUIRE(memcmp(ip.h.src, OUR6, 16) == 0);
  if (ip.proto == IPPROTO_TCP_) {
    uint32_t sum = ipv6_pseudo_sum(ip.h.src, ip.h.dst, (uint32_t)ip.upper_len, IPPROTO_TCP_);
    REQUIRE(inet_csum_fold(inet_csum_add(sum, pkt + ip.upper_off, ip.upper_len)) == 0);
  } else {
    struct icmp6_msg m;
    REQUIRE(ip.proto == IPPROTO_ICMPV6_);
    REQUIRE(icmp6_decode(ip.h.src, ip.h.dst, pkt + ip.upper_off, ip.upper_len, &m) == WIRE_OK);
  }
}

static void stack_stage(const uint8_t *data, size_t size)
{
  static uint8_t buf[70000];
  if (size < IPV6_HDR_LEN || size > sizeof buf) return;
  memcpy(buf, data, size);
  buf[0] = (uint8_t)((buf[0] & 0x0f) | 0x60);
  memcpy(buf + 24, OUR6, 16);
  struct ipv6_pkt p;
  if (ipv6_decode(buf, size, &p) == WIRE_OK && p.upper_len >= 18 &&
      (p.proto == IPPROTO_TCP_ || p.proto == IPPROTO_ICMPV6_)) {
    size_t ck = p.upper_off + (p.proto == IPPROTO_TCP_ ? 16 : 2);
    put16(buf + ck, 0);
    uint32_t sum = ipv6_pseudo_sum(p.h.src, p.h.dst, (uint32_t)p.upper_len, p.proto);
    put16(buf + ck, inet_csum_fold(inet_csum_add(sum, buf + p.upper_off, p.upper_len)));
  }
  struct ustcp_stack *s = ustcp_stack_new(NULL, 0xc0000201u, 1, out_cb, NULL);
  REQUIRE(s && ustcp_stack_add_addr6(s, OUR6) == 0);
  int l = ustcp_socket(s);
  struct ustcp_addr any = {.family = USTCP_AF_INET6, .port = 80};
  REQUIRE(ustcp_bind(s, l, &any) == 0 && ustcp_listen(s, l, 8) == 0);
  uint64_t now = 1000000;
  ustcp_input(s, buf, size, now);
  ustcp_input(s, buf, size, now + 1000);     /* the same again: duplicates, TIME_WAIT */
  int c = ustcp_accept(s, l, NULL);
  if (c >= 0) ustcp_close(s, c);
  ustcp_close(s, l);
  for (int i = 0; i < 200 && ustcp_next_deadline(s) != USTCP_NO_DEADLINE; i++) {
    now += 30 * USTCP_SEC;
    ustcp_poll(s, now);
  }
  struct ustcp_stats st;
  ustcp_get_stats(s, &st);
  REQUIRE(st.conns_alive == 0);
  REQUIRE(s->eng.a6.used == 1);
  ustcp_stack_free(s);
  if (getenv("FUZZ_IPV6_VERBOSE")) fprintf(stderr, "stack stage: %lu packets out\n", stack_out_pkts);
  stack_out_pkts = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  stack_stage(data, size);
  static uint8_t out[70000];
  struct ipv6_pkt p;
  int rc = ipv6_decode(data, size, &p);
  if (p.param_problem) REQUIRE(p.pp_pointer < size);
  if (rc != WIRE_OK && rc != IPV6_E_FRAGMENT) return 0;
  REQUIRE(p.n_ext <= IPV6_MAX_EXT);
  REQUIRE(p.upper_off >= IPV6_HDR_LEN);
  REQUIRE(p.upper_off + p.upper_len == (size_t)IPV6_HDR_LEN + p.h.payload_len);
  REQUIRE(p.upper_off + p.upper_len <= size);
  REQUIRE(ipv6_encode(&p.h, out, sizeof out) == IPV6_HDR_LEN);
  REQUIRE(memcmp(out, data, IPV6_HDR_LEN) == 0);
  if (rc == WIRE_OK && p.proto == IPPROTO_ICMPV6_) {
    struct icmp6_msg m;
    if (icmp6_decode(p.h.src, p.h.dst, data + p.upper_off, p.upper_len, &m) == WIRE_OK) {
      int n = icmp6_encode(p.h.src, p.h.dst, m.type, m.code, m.rest, m.data, m.data_len, out,
                           sizeof out);
      REQUIRE(n == (int)p.upper_len);
      /* One's complement has two zeros: a checksum field of 0xffff verifies as
       * well as the 0x0000 the encoder writes (RFC 1624 §3). */
      const uint8_t *in = data + p.upper_off;
      if (in[2] == 0xff && in[3] == 0xff && out[2] == 0 && out[3] == 0) out[2] = out[3] = 0xff;
      REQUIRE(memcmp(out, in, p.upper_len) == 0);
    }
  }
  return 0;
}
