/* A minimal test harness: CHECK macros count assertions, check_report() prints
 * "N passed, N failed" and gives the process exit status. No test may pass with
 * zero checks: check_report() fails a binary that asserted nothing. */
#ifndef USTCP_CHECK_H
#define USTCP_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned check_passed, check_failed;

#define CHECK(cond) do {                                                      \
    if (cond) check_passed++;                                                 \
    else { check_failed++;                                                    \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } \
  } while (0)

#define CHECK_EQ(a, b) do {                                                   \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);          \
    if (check_a_ == check_b_) check_passed++;                                 \
    else { check_failed++;                                                    \
      fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld != %lld)\n",    \
              __FILE__, __LINE__, #a, #b, check_a_, check_b_); }              \
  } while (0)

#define CHECK_MEM(a, b, n) do {                                               \
    if (memcmp((a), (b), (n)) == 0) check_passed++;                           \
    else { check_failed++;                                                    \
      fprintf(stderr, "%s:%d: CHECK_MEM failed: %s vs %s\n",                  \
              __FILE__, __LINE__, #a, #b); }                                  \
  } while (0)

#define CHECK_STR(a, b) do {                                                  \
    const char *check_sa_ = (a), *check_sb_ = (b);                            \
    if (check_sa_ && check_sb_ && strcmp(check_sa_, check_sb_) == 0) check_passed++; \
    else { check_failed++;                                                    \
      fprintf(stderr, "%s:%d: CHECK_STR failed: %s == %s (\"%s\" != \"%s\")\n", \
              __FILE__, __LINE__, #a, #b, check_sa_ ? check_sa_ : "(null)",   \
              check_sb_ ? check_sb_ : "(null)"); }                            \
  } while (0)

/* Runs one test function and names it on failure. */
#define RUN(fn) do {                                                          \
    unsigned check_before_ = check_failed;                                    \
    fn();                                                                     \
    if (check_failed != check_before_) fprintf(stderr, "FAIL %s\n", #fn);    \
  } while (0)

static inline int check_report(void)
{
  printf("%u passed, %u failed\n", check_passed, check_failed);
  if (check_passed == 0 && check_failed == 0) {
    fprintf(stderr, "no checks ran\n");
    return 1;
  }
  return check_failed ? 1 : 0;
}
#endif
