/* src/tcp: interned IPv6 addresses (issue 16). A control block keeps each
 * endpoint in 8 bytes (struct tcp_ep); an IPv6 address is stored once here,
 * referenced by a handle, for as long as any connection (or a packet being
 * processed) uses it. The table grows with the distinct addresses in use, so
 * the memory a peer can make it hold is bounded by the connections it can make
 * hold memory anyway (one entry, 24 bytes, per address) plus two per packet in
 * flight through the input path. Buckets are chosen by SipHash keyed with the
 * engine's secret: a peer cannot pick addresses that share a chain. */
#include <stdlib.h>
#include <string.h>
#include "tcp/tcp.h"

static const uint8_t any6[16];

static uint32_t bucket_of(const struct tcp_engine *e, const uint8_t a[16], uint32_t nb)
{
  return (uint32_t)siphash24(e->secret, a, 16) & (nb - 1);
}

bool a6_find(const struct tcp_engine *e, const uint8_t a[16], uint32_t *handle)
{
  if (!memcmp(a, any6, 16)) { *handle = 0; return true; }
  const struct addr6_table *tb = &e->a6;
  if (!tb->nbuckets) return false;
  for (uint32_t h = tb->buckets[bucket_of(e, a, tb->nbuckets)]; h; h = tb->v[h - 1].next)
    if (!memcmp(tb->v[h - 1].a, a, 16)) { *handle = h; return true; }
  return false;
}

static int rehash(struct tcp_engine *e, uint32_t nb)
{
  struct addr6_table *tb = &e->a6;
  uint32_t *b = tcp_sys_calloc(e, nb, sizeof *b);
  if (!b) return -ENOMEM;
  for (uint32_t h = 1; h <= tb->cap; h++) {
    struct addr6_entry *x = &tb->v[h - 1];
    if (!x->refs) continue;
    uint32_t i = bucket_of(e, x->a, nb);
    x->next = b[i];
    b[i] = h;
  }
  free(tb->buckets);
  tb->buckets = b;
  tb->nbuckets = nb;
  return 0;
}

int a6_intern(struct tcp_engine *e, const uint8_t a[16], uint32_t *handle)
{
  if (a6_find(e, a, handle)) {
    if (*handle) e->a6.v[*handle - 1].refs++;
    return 0;
  }
  struct addr6_table *tb = &e->a6;
  if (!tb->free_head) {
    /* Grow the entries (doubling); free entries are chained through next. */
    if (tb->cap >= UINT32_MAX / 2) return -ENOMEM;
    uint32_t ncap = tb->cap ? tb->cap * 2 : 16;
    struct addr6_entry *v = tcp_sys_realloc(e, tb->v, (size_t)ncap * sizeof *v);
    if (!v) return -ENOMEM;
    memset(v + tb->cap, 0, (size_t)(ncap - tb->cap) * sizeof *v);
    for (uint32_t h = ncap; h > tb->cap; h--) {
      v[h - 1].next = tb->free_head;
      tb->free_head = h;
    }
    tb->v = v;
    tb->cap = ncap;
  }
  if (tb->used + 1 > tb->nbuckets) {
    uint32_t nb = tb->nbuckets ? tb->nbuckets * 2 : 16;
    if (rehash(e, nb) < 0) return -ENOMEM;
  }
  uint32_t h = tb->free_head;
  struct addr6_entry *x = &tb->v[h - 1];
  tb->free_head = x->next;
  memcpy(x->a, a, 16);
  x->refs = 1;
  uint32_t i = bucket_of(e, a, tb->nbuckets);
  x->next = tb->buckets[i];
  tb->buckets[i] = h;
  tb->used++;
  *handle = h;
  return 0;
}

void a6_ref(struct tcp_engine *e, uint32_t handle)
{
  if (handle) e->a6.v[handle - 1].refs++;
}

void a6_unref(struct tcp_engine *e, uint32_t handle)
{
  if (!handle) return;
  struct addr6_table *tb = &e->a6;
  struct addr6_entry *x = &tb->v[handle - 1];
  if (--x->refs) return;
  /* unchain from its bucket, then onto the free list */
  uint32_t *pp = &tb->buckets[bucket_of(e, x->a, tb->nbuckets)];
  while (*pp != handle) pp = &tb->v[*pp - 1].next;
  *pp = x->next;
  x->next = tb->free_head;
  tb->free_head = handle;
  tb->used--;
}

const uint8_t *a6_bytes(const struct tcp_engine *e, uint32_t handle)
{
  return handle ? e->a6.v[handle - 1].a : any6;
}

void a6_free_all(struct tcp_engine *e)
{
  free(e->a6.v);
  free(e->a6.buckets);
  memset(&e->a6, 0, sizeof e->a6);
}

void tcp_ep_set(struct tcp_engine *e, struct tcp_ep *dst, const struct tcp_ep *src)
{
  if (src->v6) a6_ref(e, src->ip);
  if (dst->v6) a6_unref(e, dst->ip);
  *dst = *src;
}

size_t tcp_ep_key(const struct tcp_engine *e, bool v6, uint32_t ip, uint8_t out[16])
{
  if (!v6) {
    memcpy(out, &ip, 4);
    return 4;
  }
  memcpy(out, a6_bytes(e, ip), 16);
  return 16;
}
