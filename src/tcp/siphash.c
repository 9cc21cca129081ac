/* SipHash-2-4 (Aumasson & Bernstein): the keyed hash behind ISNs (RFC 6528 §3's
 * F()) and SYN cookies. Written from the algorithm's description. */
#include <string.h>
#include "tcp/tcp.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                          \
  do {                                                                    \
    v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);             \
    v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                                \
    v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                                \
    v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);             \
  } while (0)

static uint64_t load_le64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

uint64_t siphash24(const uint64_t key[2], const void *data, size_t len)
{
  const uint8_t *in = data;
  uint64_t v0 = 0x736f6d6570736575ull ^ key[0];
  uint64_t v1 = 0x646f72616e646f6dull ^ key[1];
  uint64_t v2 = 0x6c7967656e657261ull ^ key[0];
  uint64_t v3 = 0x7465646279746573ull ^ key[1];
  size_t blocks = len / 8;
  for (size_t i = 0; i < blocks; i++) {
    uint64_t m = load_le64(in + 8 * i);
    v3 ^= m;
    SIPROUND; SIPROUND;
    v0 ^= m;
  }
  uint8_t tail[8] = {0};
  memcpy(tail, in + 8 * blocks, len - 8 * blocks);
  uint64_t b = ((uint64_t)len << 56) | load_le64(tail);
  v3 ^= b;
  SIPROUND; SIPROUND;
  v0 ^= b;
  v2 ^= 0xff;
  SIPROUND; SIPROUND; SIPROUND; SIPROUND;
  return v0 ^ v1 ^ v2 ^ v3;
}
