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

#include <errno.h>
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

/* ---- the payload every bulk and request/response run sends and checks ----
 * Byte o of a stream is bench_pattern[o % BENCH_PATTERN_PERIOD]; the period is a
 * prime larger than any segment, so a lost, duplicated or misplaced segment
 * (any shift that is not a multiple of 65,521 bytes) fails the check. Senders
 * send straight from bench_pattern_at(offset) (no per-byte work); receivers
 * memcmp what they read against it (one read pass over the data, on both stacks'
 * runs alike). */
#define BENCH_PATTERN_PERIOD 65521u
#define BENCH_PATTERN_SPAN (1u << 20)   /* longest single send or check */
static uint8_t bench_pattern[BENCH_PATTERN_PERIOD + BENCH_PATTERN_SPAN];

static inline void bench_pattern_init(void)
{
  uint32_t x = 0x9e3779b9u;
  for (uint32_t i = 0; i < BENCH_PATTERN_PERIOD; i++) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    bench_pattern[i] = (uint8_t)x;
  }
  for (uint32_t i = BENCH_PATTERN_PERIOD; i < sizeof bench_pattern; i++)
    bench_pattern[i] = bench_pattern[i - BENCH_PATTERN_PERIOD];
}

/* The stream's bytes from offset off on; at most BENCH_PATTERN_SPAN of them. */
static inline const uint8_t *bench_pattern_at(uint64_t off)
{
  return bench_pattern + off % BENCH_PATTERN_PERIOD;
}

/* Whether buf[0..n) is the stream's bytes at offset off (n any size). */
static inline int bench_verify(uint64_t off, const uint8_t *buf, size_t n)
{
  while (n) {
    size_t k = n < BENCH_PATTERN_SPAN ? n : BENCH_PATTERN_SPAN;
    if (memcmp(buf, bench_pattern_at(off), k) != 0) return 0;
    buf += k; off += k; n -= k;
  }
  return 1;
}

/* CPU time of this process (user + system), nanoseconds: the task-clock without
 * perf. */
static inline uint64_t bench_cpu_ns(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000ull +
         ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000ull;
}

/* Jiffies CPU cpu (-1: the whole machine) spent in softirq and in steal so far,
 * and in all states (/proc/stat); the unit is 1/sysconf(_SC_CLK_TCK) s. With
 * busy non-NULL, also the jiffies it was busy: user, nice, system, irq and
 * softirq (not idle, iowait or steal). Each tick is counted once there, in the
 * state the CPU was in; a process's utime/stime (/proc/PID/stat) also holds the
 * softirq ticks that landed while it ran (tick accounting without
 * CONFIG_IRQ_TIME_ACCOUNTING: kernel/sched/cputime.c account_system_time), so
 * process times plus softirq can count a tick twice; busy cannot. */
static inline void bench_proc_stat_busy(int cpu, uint64_t *softirq, uint64_t *steal, uint64_t *total,
                                        uint64_t *busy)
{
  unsigned long long v[8] = {0};
  char want[32], line[512];
  if (cpu < 0) snprintf(want, sizeof want, "cpu ");
  else snprintf(want, sizeof want, "cpu%d ", cpu);
  FILE *f = fopen("/proc/stat", "r");
  if (f) {
    while (fgets(line, sizeof line, f)) {
      if (strncmp(line, want, strlen(want)) != 0) continue;
      if (sscanf(line + strlen(want), "%llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                 &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) < 8) memset(v, 0, sizeof v);
      break;
    }
    fclose(f);
  }
  *softirq = v[6];
  *steal = v[7];
  *total = 0;
  for (int i = 0; i < 8; i++) *total += v[i];
  if (busy) *busy = v[0] + v[1] + v[2] + v[5] + v[6];
}

static inline void bench_proc_stat(int cpu, uint64_t *softirq, uint64_t *steal, uint64_t *total)
{
  bench_proc_stat_busy(cpu, softirq, steal, total, NULL);
}

/* Nanoseconds CPU cpu (-1: all of them) was busy so far (bench_proc_stat_busy). */
static inline uint64_t bench_cpu_busy_ns(int cpu)
{
  uint64_t si, steal, tot, busy;
  bench_proc_stat_busy(cpu, &si, &steal, &tot, &busy);
  return busy * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* CPU time (utime + stime) of process pid so far, nanoseconds (0 if unknown). */
static inline uint64_t bench_pid_cpu_ns(int pid)
{
  char path[64], line[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = 0;
  char *p = strrchr(line, ')');   /* the command name may hold spaces */
  unsigned long long ut = 0, st = 0;
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return 0;
  return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

static inline void bench_die(const char *what)
{
  fprintf(stderr, "bench: %s\n", what);
  exit(1);
}

/* Dies with what failed and errno's text. */
static inline void bench_die_errno(const char *what)
{
  fprintf(stderr, "bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* A field of /proc/meminfo in kB ("Slab", "SUnreclaim"), -1 if absent. */
static inline long bench_meminfo_kb(const char *field)
{
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return -1;
  char line[256];
  long v = -1;
  size_t fl = strlen(field);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, field, fl) && line[fl] == ':') { v = atol(line + fl + 1); break; }
  fclose(f);
  return v;
}

/* A field of the "TCP:" line of /proc/net/sockstat ("mem" is in pages, "tw",
 * "alloc", "orphan" are counts), -1 if absent. */
static inline long bench_sockstat_tcp(const char *field)
{
  FILE *f = fopen("/proc/net/sockstat", "r");
  if (!f) return -1;
  char line[512];
  long v = -1;
  size_t fl = strlen(field);
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "TCP:", 4)) continue;
    for (char *p = strstr(line, field); p; p = strstr(p + 1, field))
      if (p[-1] == ' ' && p[fl] == ' ') { v = atol(p + fl + 1); break; }
  }
  fclose(f);
  return v;
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

/* The in-memory link's queue (ustcp_bench, lwip_bench): a FIFO of packets in
 * slots of slot_cap bytes, one memcpy in, read in place, grown by doubling
 * (in order) when full, so a sender is never refused for lack of room. */
struct bench_pktq {
  uint8_t *slots;
  uint32_t *lens;
  size_t slot_cap, nslots, head, count;   /* nslots a power of two */
};

static inline void bench_pktq_init(struct bench_pktq *q, size_t slot_cap)
{
  memset(q, 0, sizeof *q);
  q->slot_cap = slot_cap;
}

static inline void bench_pktq_free(struct bench_pktq *q)
{
  free(q->slots);
  free(q->lens);
  bench_pktq_init(q, q->slot_cap);
}

/* The next free slot (the queue grows if it is full); bench_pktq_push then
 * queues what was written there. */
static inline uint8_t *bench_pktq_tail(struct bench_pktq *q)
{
  if (q->count == q->nslots) {
    size_t n = q->nslots ? q->nslots * 2 : 64;
    uint8_t *slots = malloc(n * q->slot_cap);
    uint32_t *lens = malloc(n * sizeof *lens);
    if (!slots || !lens) bench_die("out of memory (the in-memory link's queue)");
    for (size_t i = 0; i < q->count; i++) {
      size_t j = (q->head + i) & (q->nslots - 1);
      memcpy(slots + i * q->slot_cap, q->slots + j * q->slot_cap, q->lens[j]);
      lens[i] = q->lens[j];
    }
    free(q->slots);
    free(q->lens);
    q->slots = slots;
    q->lens = lens;
    q->nslots = n;
    q->head = 0;
  }
  return q->slots + ((q->head + q->count) & (q->nslots - 1)) * q->slot_cap;
}

static inline void bench_pktq_push(struct bench_pktq *q, size_t len)
{
  q->lens[(q->head + q->count) & (q->nslots - 1)] = (uint32_t)len;
  q->count++;
}

/* The oldest packet, read in place until bench_pktq_pop. */
static inline const uint8_t *bench_pktq_head(const struct bench_pktq *q, size_t *len)
{
  *len = q->lens[q->head];
  return q->slots + q->head * q->slot_cap;
}

static inline void bench_pktq_pop(struct bench_pktq *q)
{
  q->head = (q->head + 1) & (q->nslots - 1);
  q->count--;
}

#endif
