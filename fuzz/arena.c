/* The snapshot allocator of fuzz_engine: see arena.h. Test code only; never part
 * of libustcp itself. */
#include "arena.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FZ_ASAN 1
#endif
#ifdef FZ_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define ARENA_SIZE ((size_t)1 << 30)   /* reserved, not committed */
#define ALIGN 16u
#define REDZONE 16u
#define MAGIC 0x6675a7e2u

/* Each block: header, payload, redzone (header and redzone poisoned). */
struct hdr {
  uint64_t size;
  uint32_t magic;
  uint32_t freed;
};

static uint8_t *base, *top;
static bool on, spilled;

struct fz_snap {
  size_t len;
  uint8_t bytes[];
};

static size_t round_up(size_t n) { return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1); }
static size_t block_len(size_t n) { return sizeof(struct hdr) + round_up(n) + REDZONE; }
static bool in_arena(const void *p) { return base && (const uint8_t *)p >= base && (const uint8_t *)p < base + ARENA_SIZE; }

static void poison_block(struct hdr *h)
{
  uint8_t *payload = (uint8_t *)(h + 1);
  size_t n = (size_t)h->size;
  bool freed = h->freed;
  POISON(h, sizeof *h);
  if (freed) POISON(payload, round_up(n) + REDZONE);
  else POISON(payload + n, round_up(n) - n + REDZONE);
}

void *fz_malloc(size_t n)
{
  if (!on || n > ARENA_SIZE / 4 || (size_t)(base + ARENA_SIZE - top) < block_len(n)) {
    if (on) spilled = true;
    return malloc(n);
  }
  struct hdr *h = (struct hdr *)top;
  top += block_len(n);
  UNPOISON(h, block_len(n));
  h->size = n;
  h->magic = MAGIC;
  h->freed = 0;
  poison_block(h);
  return h + 1;
}

void *fz_calloc(size_t n, size_t m)
{
  if (m && n > SIZE_MAX / m) return NULL;
  void *p = fz_malloc(n * m);
  if (p) memset(p, 0, n * m);
  return p;
}

static struct hdr *hdr_of(void *p)
{
  struct hdr *h = (struct hdr *)p - 1;
  UNPOISON(h, sizeof *h);
  if (h->magic != MAGIC || h->freed) abort();   /* a bad or double free */
  return h;
}

void fz_free(void *p)
{
  if (!p) return;
  if (!in_arena(p)) { free(p); return; }
  struct hdr *h = hdr_of(p);
  h->freed = 1;
  poison_block(h);
}

void *fz_realloc(void *p, size_t n)
{
  if (!p) return fz_malloc(n);
  if (!in_arena(p)) return realloc(p, n);
  struct hdr *h = hdr_of(p);
  size_t old = (size_t)h->size;
  poison_block(h);
  void *q = fz_malloc(n);
  if (!q) return NULL;
  memcpy(q, p, old < n ? old : n);
  fz_free(p);
  return q;
}

/* After the whole prefix was unpoisoned: every header and redzone, and every
 * freed block, poisoned again. */
static void poison_all(void)
{
  for (uint8_t *b = base; b < top;) {
    struct hdr *h = (struct hdr *)b;
    b += block_len((size_t)h->size);
    poison_block(h);
  }
}

static void init(void)
{
  if (base) return;
  void *m = mmap(NULL, ARENA_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED) abort();
  base = top = m;
}

/* Everything above the kept prefix goes; pages far above it go back to the
 * system (a run that allocated much does not keep the memory resident). */
static void truncate_to(size_t keep)
{
  size_t used = (size_t)(top - base);
  if (used > keep) {
    UNPOISON(base + keep, used - keep);
    size_t page = 4096, from = (keep + (64u << 20) + page - 1) & ~(page - 1);
    if (used > from) madvise(base + from, used - from, MADV_DONTNEED);
  }
  top = base + keep;
}

void fz_arena_reset(void)
{
  init();
  on = true;
  spilled = false;
  truncate_to(0);
}

struct fz_snap *fz_arena_save(void)
{
  size_t len = (size_t)(top - base);
  struct fz_snap *s = malloc(sizeof *s + len);
  if (!s) return NULL;
  s->len = len;
  UNPOISON(base, len);
  memcpy(s->bytes, base, len);
  poison_all();
  return s;
}

void fz_arena_restore(const struct fz_snap *s)
{
  init();
  on = true;
  spilled = false;
  if ((size_t)(top - base) < s->len) top = base + s->len;
  truncate_to(s->len);
  UNPOISON(base, s->len);
  memcpy(base, s->bytes, s->len);
  poison_all();
}

size_t fz_arena_used(void) { return base ? (size_t)(top - base) : 0; }
bool fz_arena_spilled(void) { return spilled; }
