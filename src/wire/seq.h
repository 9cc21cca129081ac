/* Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4, RFC 1982). A sequence
 * number a is "before" b when the signed 32-bit difference a - b is negative; this
 * is correct while the two are within 2^31 of each other, which the window limits
 * guarantee. */
#ifndef USTCP_SEQ_H
#define USTCP_SEQ_H
#include <stdbool.h>
#include <stdint.h>

static inline bool seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_leq(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
static inline bool seq_gt(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }
static inline bool seq_geq(uint32_t a, uint32_t b) { return (int32_t)(a - b) >= 0; }
/* lo <= x < hi, modulo 2^32 (an empty range when lo == hi). */
static inline bool seq_in(uint32_t x, uint32_t lo, uint32_t hi)
{
  return (uint32_t)(x - lo) < (uint32_t)(hi - lo);
}
/* lo <= x <= hi */
static inline bool seq_between(uint32_t x, uint32_t lo, uint32_t hi)
{
  return (uint32_t)(x - lo) <= (uint32_t)(hi - lo);
}
static inline uint32_t seq_max(uint32_t a, uint32_t b) { return seq_gt(a, b) ? a : b; }
static inline uint32_t seq_min(uint32_t a, uint32_t b) { return seq_lt(a, b) ? a : b; }
#endif
