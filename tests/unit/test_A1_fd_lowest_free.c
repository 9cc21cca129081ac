/* A1: socket() returns the lowest-numbered free descriptor (POSIX open(), as
 * Linux's alloc_fd), and finding it costs a bounded number of steps: the
 * descriptor table is a two-level bitmap of free slots, so one allocation
 * reads at most ceil(cap / 4096) summary words (src/sock/sock.c). */
#include "check.h"
#include "simnet.h"
#include "stack/stack_check.h"

#define N 20000u

int main(void)
{
  struct simnet sn;
  sn_init(&sn, 1);
  struct ustcp_stack *s = sn_add(&sn, "a", 0x0a000001u, NULL);
  static int fds[N];
  for (uint32_t i = 0; i < N; i++) fds[i] = ustcp_socket(s);
  int seq_ok = 1;
  for (uint32_t i = 0; i < N; i++) if (fds[i] != (int)i) seq_ok = 0;
  CHECK(seq_ok);                                  /* 0, 1, 2, ... in order */

  /* Free a scattered set; each new socket() takes the lowest of them. */
  static const int holes[] = {19999, 7, 4096, 3, 12345, 64, 63, 8191};
  for (size_t k = 0; k < sizeof holes / sizeof holes[0]; k++)
    CHECK_EQ(ustcp_close(s, holes[k]), 0);
  static const int want[] = {3, 7, 63, 64, 4096, 8191, 12345, 19999, (int)N};
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++)
    CHECK_EQ(ustcp_socket(s), want[k]);

  /* Close and reopen the highest descriptor many times: with a linear scan
   * from 0 this would cost N steps each; the bitmap reads one summary word per
   * 4096 descriptors. */
  uint32_t cap = 0;
  (void)sock_debug_tcb(s, 0, &cap);
  uint64_t per_alloc = (cap / 64 + 63) / 64;      /* summary words */
  uint64_t before = sock_debug_fd_scan_steps(s);
  for (int r = 0; r < 1000; r++) {
    CHECK_EQ(ustcp_close(s, (int)N), 0);
    if (ustcp_socket(s) != (int)N) { CHECK(0); break; }
  }
  uint64_t steps = sock_debug_fd_scan_steps(s) - before;
  printf("cap %u: %llu summary-word reads for 1000 allocations (bound %llu)\n", cap,
         (unsigned long long)steps, (unsigned long long)(1000 * per_alloc));
  CHECK(steps <= 1000 * per_alloc);
  CHECK(per_alloc <= 8);                          /* 32768 slots: 8 words */

  /* A freed low descriptor is found again at once (lowest-free after churn). */
  CHECK_EQ(ustcp_close(s, 0), 0);
  CHECK_EQ(ustcp_close(s, 5000), 0);
  CHECK_EQ(ustcp_socket(s), 0);
  CHECK_EQ(ustcp_socket(s), 5000);
  CHECK_EQ(ustcp_socket(s), (int)N + 1);
  char buf[256];
  CHECK(stack_check(s, false, buf, sizeof buf) == NULL);
  sn_free(&sn);
  return check_report();
}
