/* bench/bench_util.h: what both benchmark programs share (header only).
 *
 * Every measurement is printed as one line
 *     R <key> <value>
 * on stdout (one line per repetition); bench/run.sh collects them and prints the
 * median, min and max of each key and the ratios. Anything else a program prints
 * goes to stderr.
 */
#ifndef USTCP_BENCH_UTIL_H
#define USTCP_BENCH_UTIL_H

#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

static inline uint64_t bench_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint64_t bench_now_us(void) { return bench_now_ns() / 1000; }

static inline void bench_result(const char *key, double value)
{
  printf("R %s %.6g\n", key, value);
  fflush(stdout);
}

static inline int bench_cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of v[0..n) (sorts v in place), nearest rank. */
static inline uint64_t bench_percentile(uint64_t *v, size_t n, double p)
{
  if (!n) return 0;
  qsort(v, n, sizeof *v, bench_cmp_u64);
  size_t k = (size_t)(p / 100.0 * (double)n + 0.5);
  if (k > 0) k--;
  if (k >= n) k = n - 1;
  return v[k];
}

/* Resident set size of this process, bytes. */
static inline uint64_t bench_rss_bytes(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  if (fscanf(f, "%lu %lu", &size, &resident) != 2) resident = 0;
  fclose(f);
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Raises RLIMIT_NOFILE's soft limit toward n, as far as the hard limit allows
 * (raising the hard limit needs CAP_SYS_RESOURCE, which containers often lack).
 * Returns the soft limit now in force. */
static inline rlim_t bench_raise_nofile(rlim_t n)
{
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  if (rl.rlim_cur >= n) return rl.rlim_cur;
  struct rlimit want = rl;
  want.rlim_cur = n;
  if (want.rlim_max < n) want.rlim_max = n;
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) return n;
  rl.rlim_cur = rl.rlim_max < n ? rl.rlim_max : n;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
  return rl.rlim_cur;
}

static inline void bench_die(const char *what)
{
  fprintf(stderr, "bench: %s\n", what);
  exit(1);
}

/* Enters the network namespace NAME made by `ip netns add` (as `ip netns exec`). */
static inline void bench_enter_netns(const char *name)
{
  char path[256];
  snprintf(path, sizeof path, "/var/run/netns/%s", name);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    fprintf(stderr, "bench: cannot enter network namespace %s\n", name);
    exit(1);
  }
  close(fd);
}
#endif
