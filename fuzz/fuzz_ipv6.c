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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wire/ipv6.h"
#include "wire/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c) do {                                                     \
    if (!(c)) {                                                             \
      fprintf(stderr, "fuzz_ipv6: property failed: %s (line %d)\n", #c, __LINE__); \
      abort();                                                              \
    }                                                                       \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
