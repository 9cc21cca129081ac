/* Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4): comparisons around 0,
 * around 2^31 and across the 2^32 wrap. */
#include "check.h"
#include "wire/seq.h"

static void test_basic_order(void)
{
  CHECK(seq_lt(1, 2));
  CHECK(!seq_lt(2, 1));
  CHECK(!seq_lt(5, 5));
  CHECK(seq_leq(5, 5));
  CHECK(seq_leq(4, 5));
  CHECK(!seq_leq(6, 5));
  CHECK(seq_gt(2, 1));
  CHECK(!seq_gt(5, 5));
  CHECK(seq_geq(5, 5));
  CHECK(seq_geq(6, 5));
  CHECK(!seq_geq(4, 5));
  CHECK(seq_lt(0, 1));
  CHECK(seq_gt(1, 0));
}

static void test_wrap(void)
{
  /* 0xFFFFFFF0 is 32 before 0x10 once the space wraps. */
  CHECK(seq_lt(0xFFFFFFF0u, 0x10));
  CHECK(seq_leq(0xFFFFFFF0u, 0x10));
  CHECK(seq_gt(0x10, 0xFFFFFFF0u));
  CHECK(seq_geq(0x10, 0xFFFFFFF0u));
  CHECK(!seq_gt(0xFFFFFFF0u, 0x10));
  CHECK(seq_lt(0xFFFFFFFFu, 0));
  CHECK(seq_gt(0, 0xFFFFFFFFu));
  CHECK(seq_lt(0xFFFFFFFFu, 0xFFFFFFFFu + 1u));
  CHECK_EQ(seq_max(0xFFFFFFF0u, 0x10), 0x10);
  CHECK_EQ(seq_min(0xFFFFFFF0u, 0x10), 0xFFFFFFF0u);
  CHECK_EQ(seq_max(0x10, 0xFFFFFFF0u), 0x10);
  CHECK_EQ(seq_min(0x10, 0xFFFFFFF0u), 0xFFFFFFF0u);
  CHECK_EQ(seq_max(7, 7), 7);
  CHECK_EQ(seq_min(7, 7), 7);
}

static void test_half_space(void)
{
  /* Within 2^31 - 1 the order is as expected; at exactly 2^31 apart the signed
   * difference is INT32_MIN, so a is "before" b in both directions — the reason
   * windows must stay below 2^31 (RFC 7323 §2.3 caps the scaled window at 2^30). */
  CHECK(seq_lt(0, 0x7FFFFFFFu));
  CHECK(seq_gt(0x7FFFFFFFu, 0));
  CHECK(seq_gt(0, 0x80000001u)); /* 0x80000001 is 2^31 - 1 before 0 */
  CHECK(seq_lt(0x80000001u, 0));
  CHECK(seq_lt(0, 0x80000000u));
  CHECK(seq_lt(0x80000000u, 0));
  CHECK(seq_lt(0x7FFFFFFFu, 0x80000000u));
  CHECK(seq_gt(0x80000000u, 0x7FFFFFFFu));
  CHECK(seq_lt(0x80000000u, 0xFFFFFFFFu));
  CHECK(seq_lt(0x40000000u, 0xBFFFFFFFu));
  CHECK(seq_gt(0x40000000u, 0xC0000001u));
}

static void test_in_range(void)
{
  /* seq_in: lo <= x < hi */
  CHECK(seq_in(5, 5, 10));
  CHECK(seq_in(9, 5, 10));
  CHECK(!seq_in(10, 5, 10));
  CHECK(!seq_in(4, 5, 10));
  CHECK(!seq_in(5, 5, 5)); /* empty */
  CHECK(!seq_in(0, 5, 5));
  /* across the wrap: [0xFFFFFFF0, 0x10) */
  CHECK(seq_in(0xFFFFFFF0u, 0xFFFFFFF0u, 0x10));
  CHECK(seq_in(0xFFFFFFFFu, 0xFFFFFFF0u, 0x10));
  CHECK(seq_in(0, 0xFFFFFFF0u, 0x10));
  CHECK(seq_in(0xF, 0xFFFFFFF0u, 0x10));
  CHECK(!seq_in(0x10, 0xFFFFFFF0u, 0x10));
  CHECK(!seq_in(0xFFFFFFEFu, 0xFFFFFFF0u, 0x10));
  CHECK(!seq_in(0x80000000u, 0xFFFFFFF0u, 0x10));
  /* a range larger than 2^31 still works as plain modular distance */
  CHECK(seq_in(0x90000000u, 0x10000000u, 0x0FFFFFFFu));
  CHECK(!seq_in(0x0FFFFFFFu, 0x10000000u, 0x0FFFFFFFu));

  /* seq_between: lo <= x <= hi */
  CHECK(seq_between(10, 5, 10));
  CHECK(seq_between(5, 5, 10));
  CHECK(!seq_between(11, 5, 10));
  CHECK(!seq_between(4, 5, 10));
  CHECK(seq_between(5, 5, 5));
  CHECK(!seq_between(6, 5, 5));
  CHECK(seq_between(0x10, 0xFFFFFFF0u, 0x10));
  CHECK(seq_between(0, 0xFFFFFFF0u, 0x10));
  CHECK(!seq_between(0x11, 0xFFFFFFF0u, 0x10));
  CHECK(!seq_between(0xFFFFFFEFu, 0xFFFFFFF0u, 0x10));
  CHECK(seq_between(0, 0xFFFFFFFFu, 0));
  CHECK(seq_between(0xFFFFFFFFu, 0xFFFFFFFFu, 0));
  CHECK(!seq_between(1, 0xFFFFFFFFu, 0));
}

static void test_sweep(void)
{
  /* For bases at 0, around 2^31 and at the wrap, every offset d in (-2^31, 2^31)
   * sampled: base + d compares with base by the sign of d, and seq_in/between
   * agree with the definition. */
  static const uint32_t bases[] = {0, 1, 0x7FFFFFFFu, 0x80000000u, 0x80000001u,
                                   0xFFFFFFF0u, 0xFFFFFFFFu};
  static const int32_t deltas[] = {1, 2, 15, 16, 17, 1000, 0x10000, 0x3FFFFFFF,
                                   0x7FFFFFFE, 0x7FFFFFFF};
  unsigned bad = 0;
  for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++) {
    uint32_t b = bases[i];
    for (size_t j = 0; j < sizeof deltas / sizeof deltas[0]; j++) {
      uint32_t up = b + (uint32_t)deltas[j], down = b - (uint32_t)deltas[j];
      if (!seq_lt(b, up) || !seq_gt(up, b) || seq_geq(b, up) || seq_leq(up, b)) bad++;
      if (!seq_gt(b, down) || !seq_lt(down, b) || seq_leq(b, down)) bad++;
      if (seq_max(b, up) != up || seq_min(b, up) != b) bad++;
      if (seq_max(down, b) != b || seq_min(down, b) != down) bad++;
      if (!seq_in(b, b, up) || seq_in(up, b, up) || !seq_in(up - 1, b, up)) bad++;
      if (!seq_between(up, b, up) || seq_between(up + 1, b, up) || seq_between(b - 1, b, up)) bad++;
    }
  }
  CHECK_EQ(bad, 0);
}

int main(void)
{
  RUN(test_basic_order);
  RUN(test_wrap);
  RUN(test_half_space);
  RUN(test_in_range);
  RUN(test_sweep);
  return check_report();
}
