/* Byte rings for the send and receive buffers, and the out-of-order intervals
 * (D4). Rings allocate their storage on first write, so a connection that never
 * carries data holds no buffer memory. */
#include <stdlib.h>
#include <string.h>
#include "tcp/tcp.h"

/* The smallest storage a ring gets: a 64-byte exchange allocates this much, and
 * gives it back once drained. */
#define RING_MIN_SIZE 1024u

/* The storage cache (tcp_engine.ring_cache): blocks below RING_CACHE_MIN_SIZE
 * are cheap for the C library to hand out again (no mmap of their own), so
 * only larger ones are kept. */
#define RING_CACHE_BLOCKS 4u
#define RING_CACHE_MIN_SIZE (64u * 1024u)
/* At most a few of the largest rings' storage (two buffers of rmem_max and
 * wmem_max each, storage up to twice a buffer): a stack keeps what one busy
 * connection uses, no more; under memory pressure it keeps nothing. */
#define RING_CACHE_MAX_BYTES(e) (4ull * ((uint64_t)(e)->cfg->rmem_max + (e)->cfg->wmem_max))

/* Storage of at least size bytes and at most most: a cached block if one
 * fits, else a new one. Accounted as allocated either way. */
static uint8_t *storage_get(struct tcp_engine *e, uint64_t size, uint64_t most, uint32_t *got_size)
{
  for (unsigned i = 0; i < e->ring_cache.n; i++) {
    if (e->ring_cache.size[i] < size || e->ring_cache.size[i] > most) continue;
    uint8_t *p = e->ring_cache.data[i];
    uint32_t got = e->ring_cache.size[i];
    e->ring_cache.n--;
    e->ring_cache.data[i] = e->ring_cache.data[e->ring_cache.n];
    e->ring_cache.size[i] = e->ring_cache.size[e->ring_cache.n];
    e->ring_cache.bytes -= got;
    e->mem_bytes += got;
    if (e->mem_bytes > e->mem_peak_bytes) e->mem_peak_bytes = e->mem_bytes;
    *got_size = got;
    return p;
  }
  return NULL;
}

/* Storage the application holds pointers into (tcp_engine.pins) is neither
 * reused nor freed: it retires (accounted as freed) until its pin goes. The
 * outermost pin of p takes it, so nested pins of the same storage free it once. */
static bool pin_retire(struct tcp_engine *e, uint8_t *p, uint32_t size)
{
  for (unsigned i = 0; i < e->npins; i++) {
    if (e->pins[i].p != p || e->pins[i].retired) continue;
    e->pins[i].retired = true;
    e->pins[i].size = size;
    e->mem_bytes -= size;
    return true;
  }
  return false;
}

bool tcp_storage_pin(struct tcp_engine *e, uint8_t *p)
{
  if (e->npins >= sizeof e->pins / sizeof e->pins[0]) return false;
  e->pins[e->npins].p = p;
  e->pins[e->npins].retired = false;
  e->npins++;
  return true;
}

void tcp_storage_unpin(struct tcp_engine *e)
{
  if (!e->npins) return;
  e->npins--;
  if (e->pins[e->npins].retired) free(e->pins[e->npins].p);
}

/* Gives storage back: to the cache when it is large and there is room, else
 * to the C library. Accounted as freed either way. */
static void storage_put(struct tcp_engine *e, uint8_t *p, uint32_t size)
{
  if (e->npins && pin_retire(e, p, size)) return;
  if (size >= RING_CACHE_MIN_SIZE && e->ring_cache.n < RING_CACHE_BLOCKS && !e->mem_pressure &&
      e->ring_cache.bytes + size <= RING_CACHE_MAX_BYTES(e)) {
    e->ring_cache.data[e->ring_cache.n] = p;
    e->ring_cache.size[e->ring_cache.n++] = size;
    e->ring_cache.bytes += size;
    e->mem_bytes -= size;
    return;
  }
  tcp_free_mem(e, p, size);
}

void tcp_ring_cache_free(struct tcp_engine *e)
{
  for (unsigned i = 0; i < e->ring_cache.n; i++) free(e->ring_cache.data[i]);
  e->ring_cache.n = 0;
  e->ring_cache.bytes = 0;
}

static void ring_account(struct tcp_engine *e, int64_t delta)
{
  e->ring_bytes += (uint64_t)delta;
  tcp_under_memory_pressure(e);
}

/* Makes the storage hold at least need bytes (need <= limit, what the ring may
 * hold): allocated at the first byte, then doubled. Doubling goes on past limit
 * (up to twice it) because limit itself grows by small steps as autotuning
 * raises the buffer size (a send buffer follows cwnd, a segment or two an
 * ACK): growing the storage to each new limit exactly would copy the whole
 * ring every time. So the storage is at most twice what the ring holds or may
 * hold, and each byte is copied O(1) times on average. Growing moves the old
 * contents from head on to the start of the new storage: the bytes held, or,
 * when out-of-order bytes lie past them (pinned), the whole old storage, so
 * those keep their distance from head. On failure (counted in alloc_failures
 * by the allocator) the ring is unchanged. */
static bool ring_reserve(struct tcp_engine *e, struct ring *r, uint32_t need, uint32_t limit)
{
  if (r->data && r->size >= need) return true;
  if (need > limit) return false;
  uint64_t size = r->data ? r->size : RING_MIN_SIZE;
  while (size < need) size *= 2;
  uint64_t most = 2ull * limit;
  if (most > UINT32_MAX) most = UINT32_MAX;
  if (size > most) size = most;
  /* A cached block (up to as large as the ring may grow, most) saves the
   * doublings that would follow too; no zeroing: every byte is written before
   * it is read. */
  uint32_t got = 0;
  uint8_t *nd = storage_get(e, size, most, &got);
  if (nd) size = got;
  else nd = tcp_alloc_raw(e, size);
  if (!nd) return false;
  if (r->data) {
    uint32_t moved = r->pinned ? r->size : r->len;
    ring_copy_out(r, 0, nd, moved);
    if (e->stats) e->stats->buf_grow_copied += moved;
    storage_put(e, r->data, r->size);
    ring_account(e, -(int64_t)r->size);
  }
  r->data = nd;
  r->head = 0;
  r->size = (uint32_t)size;
  ring_account(e, (int64_t)size);
  return true;
}

/* Writes n bytes at off bytes past the ring's content (out-of-order data),
 * without changing its length. The caller reserved len + off + n. */
static void ring_put(struct ring *r, uint32_t off, const uint8_t *src, uint32_t n)
{
  if (n == 0) return;
  uint32_t at = (r->head + r->len + off) % r->size;
  uint32_t first = r->size - at;
  if (first > n) first = n;
  memcpy(r->data + at, src, first);
  memcpy(r->data, src + first, n - first);
}

uint32_t ring_write(struct tcp_engine *e, struct ring *r, const uint8_t *src, uint32_t n)
{
  return ring_write_upto(e, r, src, n, r->cap);
}

uint32_t ring_write_upto(struct tcp_engine *e, struct ring *r, const uint8_t *src, uint32_t n,
                         uint32_t limit)
{
  if (r->len >= limit) return 0;
  if (n > limit - r->len) n = limit - r->len;
  if (n == 0) return 0;
  if (!ring_reserve(e, r, r->len + n, limit)) {
    /* What the present storage still takes goes in; the rest is refused. */
    if (!r->data) return 0;
    n = u32_min(n, r->size - r->len);
    if (n == 0) return 0;
  }
  uint32_t tail = (r->head + r->len) % r->size;
  uint32_t first = r->size - tail;
  if (first > n) first = n;
  memcpy(r->data + tail, src, first);
  memcpy(r->data, src + first, n - first);
  r->len += n;
  return n;
}

size_t ring_free_pieces(struct tcp_engine *e, struct ring *r, uint32_t max, uint8_t *base[2],
                        uint32_t len[2])
{
  uint32_t n = u32_min(max, ring_space(r));
  if (n == 0) return 0;
  if (!ring_reserve(e, r, r->len + n, r->cap)) {
    /* As ring_write_upto: what the present storage still takes. */
    if (!r->data) return 0;
    n = u32_min(n, r->size - r->len);
    if (n == 0) return 0;
  }
  uint32_t tail = (r->head + r->len) % r->size;
  uint32_t first = u32_min(n, r->size - tail);
  base[0] = r->data + tail;
  len[0] = first;
  if (first == n) return 1;
  base[1] = r->data;
  len[1] = n - first;
  return 2;
}

void ring_commit(struct ring *r, uint32_t n)
{
  r->len += n;
}

void ring_copy_out(const struct ring *r, uint32_t off, uint8_t *dst, uint32_t n)
{
  if (n == 0) return;
  uint32_t start = (r->head + off) % r->size;
  uint32_t first = r->size - start;
  if (first > n) first = n;
  memcpy(dst, r->data + start, first);
  memcpy(dst + first, r->data, n - first);
}

void ring_drop(struct ring *r, uint32_t n)
{
  if (n > r->len) n = r->len;
  r->len -= n;
  if (!r->data) return;
  /* An empty ring restarts at 0 (whole runs stay contiguous), unless
   * out-of-order bytes wait past its end. */
  r->head = (r->len || r->pinned) ? (r->head + n) % r->size : 0;
}

uint32_t ring_read(struct ring *r, uint8_t *dst, uint32_t n, bool consume)
{
  if (n > r->len) n = r->len;
  ring_copy_out(r, 0, dst, n);
  if (consume) ring_drop(r, n);
  return n;
}

void ring_free(struct tcp_engine *e, struct ring *r)
{
  if (r->data) {
    storage_put(e, r->data, r->size);
    ring_account(e, -(int64_t)r->size);
  }
  r->data = NULL;
  r->size = 0;
  r->head = r->len = 0;
}

void ring_release_empty(struct tcp_engine *e, struct ring *r)
{
  if (r->data && r->len == 0 && !r->pinned) ring_free(e, r);
}

int ring_set_cap(struct tcp_engine *e, struct ring *r, uint32_t cap)
{
  if (cap < r->len) return -EINVAL;
  if (r->data && r->size > 2ull * cap) {
    /* The buffer shrank (SO_SNDBUF lowered over a larger storage): the storage
     * follows, keeping the bytes held. A receive ring only shrinks while it
     * holds nothing, so no out-of-order bytes are in the way. */
    if (r->pinned) return -EINVAL;
    uint8_t *nd = tcp_alloc_raw(e, cap);
    if (!nd) return -ENOMEM;
    ring_copy_out(r, 0, nd, r->len);
    if (e->stats) e->stats->buf_grow_copied += r->len;
    if (!(e->npins && pin_retire(e, r->data, r->size))) tcp_free_mem(e, r->data, r->size);
    ring_account(e, (int64_t)cap - (int64_t)r->size);
    r->data = nd;
    r->size = cap;
    r->head = 0;
  }
  r->cap = cap;
  return 0;
}

/* ---- autotuning (issue 12 point 1) ---- */

bool tcp_under_memory_pressure(struct tcp_engine *e)
{
  /* Linux's tcp_enter_memory_pressure / tcp_leave_memory_pressure around
   * tcp_mem[1], counted as TCPMemoryPressures on entry. */
  uint64_t limit = e->cfg->tcp_mem_pressure;
  bool now = limit && e->ring_bytes >= limit;
  if (now && !e->mem_pressure && e->stats) e->stats->tcp_mem_pressures++;
  e->mem_pressure = now;
  return now;
}

/* Linux's tcp_rcv_rtt_update without timestamps: the time a window of data
 * takes to arrive overestimates the RTT, so the minimum is kept. */
void tcp_rcv_rtt_measure(struct tcp_engine *e, struct tcb *t)
{
  if (t->rcv_rtt.time_us && seq_lt(t->rcv_nxt, t->rcv_rtt.seq)) return;
  if (t->rcv_rtt.time_us) {
    uint64_t m = e->now_us - t->rcv_rtt.time_us;
    if (m == 0) m = 1;
    if (!t->rcv_rtt.rtt_us || m < t->rcv_rtt.rtt_us) t->rcv_rtt.rtt_us = m;
  }
  t->rcv_rtt.seq = t->rcv_nxt + u32_max(t->rcv_wnd, t->rcv_mss);
  t->rcv_rtt.time_us = e->now_us;
}

/* Linux's tcp_sndbuf_expand: room for two congestion windows (fast recovery
 * keeps a window in flight while the application refills the other), at least
 * two initial windows; the buffer holds payload only, so no per-segment
 * overhead is added. Only grows, only up to wmem_max. */
static void sndbuf_grow(struct tcp_engine *e, struct tcb *t)
{
  uint64_t segs = u32_max(t->cc.cwnd / (t->snd_mss ? t->snd_mss : 536), e->cfg->init_cwnd);
  uint64_t want = 2 * segs * (t->snd_mss ? t->snd_mss : 536);
  if (want > e->cfg->wmem_max) want = e->cfg->wmem_max;
  if (want > t->sndbuf.cap) t->sndbuf.cap = (uint32_t)want;
}

void tcp_sndbuf_expand(struct tcp_engine *e, struct tcb *t)
{
  /* Linux's tcp_should_expand_sndbuf: not for a buffer the application sized,
   * not under memory pressure, not while the congestion window is full (a
   * bigger buffer would not send more). */
  if (t->sndbuf_locked || tcp_under_memory_pressure(e)) return;
  if (t->snd_max - t->snd_una >= t->cc.cwnd) return;
  sndbuf_grow(e, t);
}

void tcp_init_buffer_space(struct tcp_engine *e, struct tcb *t)
{
  if (!t->sndbuf_locked && !tcp_under_memory_pressure(e)) sndbuf_grow(e, t);
  /* The first measurement expects an initial window's worth a round trip. */
  t->rcvq_space.space = u32_min(t->rcvbuf.cap, e->cfg->init_cwnd * (uint32_t)t->rcv_mss);
  t->rcvq_space.seq = t->rcv_nxt - t->rcvbuf.len;
  t->rcvq_space.time_us = e->now_us;
}

void tcp_rcv_space_adjust(struct tcp_engine *e, struct tcb *t)
{
  uint64_t rtt = t->rcv_rtt.rtt_us;
  if (!rtt || e->now_us - t->rcvq_space.time_us < rtt) return;
  uint32_t copied_seq = t->rcv_nxt - t->rcvbuf.len;
  uint32_t copied = copied_seq - t->rcvq_space.seq;
  if (copied > t->rcvq_space.space) {
    if (!t->rcvbuf_locked && !tcp_under_memory_pressure(e)) {
      /* Twice what was read in the last RTT (to ride out a loss), a cushion of
       * 16 segments, and the rate's growth again (the window we send now is
       * used a round trip later, by a sender that may double per RTT). */
      uint64_t space = t->rcvq_space.space ? t->rcvq_space.space : 1;
      uint64_t rcvwin = 2ull * copied + 16ull * t->rcv_mss;
      uint64_t grow = rcvwin * (copied - space) / space;
      rcvwin += 2 * grow;
      /* Bounded by rmem_max; the window scale offered on the SYN allows it
       * (tcp_choose_wscale sizes it from rmem_max). */
      uint64_t lim = u32_min(e->cfg->rmem_max, 65535u << t->rcv_wscale);
      if (rcvwin > lim) rcvwin = lim;
      /* Growing only adds free space: the right edge moves right or stays. */
      if (rcvwin > t->rcvbuf.cap) t->rcvbuf.cap = (uint32_t)rcvwin;
    }
    t->rcvq_space.space = copied;
  }
  t->rcvq_space.seq = copied_seq;
  t->rcvq_space.time_us = e->now_us;
}

/* ---- out-of-order intervals: an AVL tree over a node pool ----
 * Node references are pool index + 1 (0 = none). Every step through a node adds
 * to *w (the engine's ooo_work), which the attack test bounds per segment. Keys
 * (left edges) all lie within the receive window, less than 2^31 apart, so
 * sequence-space comparison orders them. */
static inline struct ooo_node *nd(struct ooo_tree *s, uint32_t i) { return &s->pool[i - 1]; }
static inline int32_t ht(struct ooo_tree *s, uint32_t i) { return i ? nd(s, i)->height : 0; }

static void fix_height(struct ooo_tree *s, uint32_t i)
{
  struct ooo_node *n = nd(s, i);
  int32_t a = ht(s, n->kid[0]), b = ht(s, n->kid[1]);
  n->height = 1 + (a > b ? a : b);
}

/* dir 1: the left child rises (right rotation); dir 0: the right child rises. */
static uint32_t rotate(struct ooo_tree *s, uint32_t i, int dir)
{
  struct ooo_node *n = nd(s, i);
  uint32_t c = n->kid[!dir];
  struct ooo_node *cn = nd(s, c);
  n->kid[!dir] = cn->kid[dir];
  cn->kid[dir] = i;
  fix_height(s, i);
  fix_height(s, c);
  return c;
}

static uint32_t rebalance(struct ooo_tree *s, uint32_t i)
{
  fix_height(s, i);
  struct ooo_node *n = nd(s, i);
  int32_t b = ht(s, n->kid[0]) - ht(s, n->kid[1]);
  if (b > 1) {
    struct ooo_node *l = nd(s, n->kid[0]);
    if (ht(s, l->kid[0]) < ht(s, l->kid[1])) n->kid[0] = rotate(s, n->kid[0], 0);
    return rotate(s, i, 1);
  }
  if (b < -1) {
    struct ooo_node *r = nd(s, n->kid[1]);
    if (ht(s, r->kid[1]) < ht(s, r->kid[0])) n->kid[1] = rotate(s, n->kid[1], 1);
    return rotate(s, i, 0);
  }
  return i;
}

static uint32_t tree_insert(struct ooo_tree *s, uint64_t *w, uint32_t i, uint32_t x)
{
  (*w)++;
  if (!i) return x;
  struct ooo_node *n = nd(s, i);
  int dir = seq_lt(nd(s, x)->left, n->left) ? 0 : 1;
  n->kid[dir] = tree_insert(s, w, n->kid[dir], x);
  return rebalance(s, i);
}

static uint32_t tree_remove_min(struct ooo_tree *s, uint64_t *w, uint32_t i, uint32_t *min)
{
  (*w)++;
  struct ooo_node *n = nd(s, i);
  if (!n->kid[0]) {
    *min = i;
    return n->kid[1];
  }
  n->kid[0] = tree_remove_min(s, w, n->kid[0], min);
  return rebalance(s, i);
}

/* Unlinks the node keyed left; nodes keep their identity (no data is moved
 * between nodes), so callers may hold indices across it. */
static uint32_t tree_erase(struct ooo_tree *s, uint64_t *w, uint32_t i, uint32_t left)
{
  (*w)++;
  if (!i) return 0;
  struct ooo_node *n = nd(s, i);
  if (n->left != left) {
    int dir = seq_lt(left, n->left) ? 0 : 1;
    n->kid[dir] = tree_erase(s, w, n->kid[dir], left);
    return rebalance(s, i);
  }
  uint32_t l = n->kid[0], r = n->kid[1], m;
  if (!r) return l;
  r = tree_remove_min(s, w, r, &m);
  nd(s, m)->kid[0] = l;
  nd(s, m)->kid[1] = r;
  return rebalance(s, m);
}

/* The interval with the greatest left edge <= seq (dir 0), or the least left
 * edge > seq (dir 1); 0 if none. */
static uint32_t tree_near(struct ooo_tree *s, uint64_t *w, uint32_t seq, int dir)
{
  uint32_t best = 0;
  for (uint32_t i = s ? s->root : 0; i;) {
    (*w)++;
    struct ooo_node *n = nd(s, i);
    bool hit = dir ? seq_gt(n->left, seq) : seq_leq(n->left, seq);
    if (hit) best = i;
    i = n->kid[hit ? !dir : dir];   /* a hit: look for a closer one toward seq */
  }
  return best;
}

static uint32_t tree_end(struct ooo_tree *s, uint64_t *w, int dir)   /* 0: lowest, 1: highest */
{
  uint32_t i = s ? s->root : 0;
  while (i && nd(s, i)->kid[dir]) {
    (*w)++;
    i = nd(s, i)->kid[dir];
  }
  return i;
}

static void sack_forget(struct ooo_tree *s, uint32_t i)
{
  unsigned k = 0;
  for (unsigned j = 0; j < s->nrecent; j++)
    if (s->recent[j] != i) s->recent[k++] = s->recent[j];
  s->nrecent = (uint8_t)k;
}

/* Takes a node from the pool, growing it by doubling (amortised O(1)). */
static uint32_t node_new(struct tcp_engine *e, struct tcb *t, uint32_t left, uint32_t right)
{
  struct ooo_tree *s = t->ooo;
  if (!s || !s->free_list) {
    uint32_t old = s ? s->pool_cap : 0;
    uint32_t cap = old ? old * 2 : 8;
    struct ooo_tree *g = tcp_alloc_raw(e, sizeof *g + (size_t)cap * sizeof g->pool[0]);
    if (!g) return 0;
    if (s) {
      memcpy(g, s, sizeof *g + (size_t)old * sizeof g->pool[0]);
      tcp_free_mem(e, s, sizeof *s + (size_t)old * sizeof s->pool[0]);
    } else {
      memset(g, 0, sizeof *g);
    }
    for (uint32_t k = old; k < cap; k++) g->pool[k].kid[0] = k + 1 < cap ? k + 2 : 0;
    g->free_list = old + 1;
    g->pool_cap = cap;
    t->ooo = s = g;
  }
  uint32_t i = s->free_list;
  struct ooo_node *n = nd(s, i);
  s->free_list = n->kid[0];
  n->left = left;
  n->right = right;
  n->kid[0] = n->kid[1] = 0;
  n->height = 1;
  t->ooo_count++;
  t->rcvbuf.pinned = true;
  return i;
}

static void release_tree(struct tcp_engine *e, struct tcb *t)
{
  struct ooo_tree *s = t->ooo;
  if (s) tcp_free_mem(e, s, sizeof *s + (size_t)s->pool_cap * sizeof s->pool[0]);
  t->ooo = NULL;
  t->ooo_count = 0;
  t->rcvbuf.pinned = false;
}

/* Removes interval i; the tree goes when its last interval does, so an idle
 * connection holds none. */
static void node_erase(struct tcp_engine *e, struct tcb *t, uint32_t i)
{
  struct ooo_tree *s = t->ooo;
  s->root = tree_erase(s, &e->ooo_work, s->root, nd(s, i)->left);
  sack_forget(s, i);
  nd(s, i)->kid[0] = s->free_list;
  s->free_list = i;
  t->ooo_count--;
  if (!t->ooo_count) {
    release_tree(e, t);
    return;
  }
  if (s->last == i) s->last = tree_end(s, &e->ooo_work, 1);
}

static void node_insert(struct tcp_engine *e, struct tcb *t, uint32_t i)
{
  struct ooo_tree *s = t->ooo;
  s->root = tree_insert(s, &e->ooo_work, s->root, i);
  if (!s->last || seq_gt(nd(s, i)->left, nd(s, s->last)->left)) s->last = i;
}

/* Copies the segment's bytes [from, to) into the ring at their place. */
static void put_bytes(struct tcp_engine *e, struct tcb *t, uint32_t seq, const uint8_t *data,
                      uint32_t from, uint32_t to)
{
  if (!seq_lt(from, to)) return;
  ring_put(&t->rcvbuf, from - t->rcv_nxt, data + (from - seq), to - from);
  if (e->stats) e->stats->rx_bytes_copied += to - from;
}

/* RFC 2018 §4: interval i holds the latest segment: it goes first in the next
 * SACK option, the others reported recently after it. */
static void sack_note(struct tcb *t, uint32_t i)
{
  struct ooo_tree *s = t->ooo;
  uint32_t keep[TCP_MAX_SACK_BLOCKS];
  unsigned k = 0;
  keep[k++] = i;
  for (unsigned j = 0; j < s->nrecent && k < TCP_MAX_SACK_BLOCKS; j++)
    if (s->recent[j] != i) keep[k++] = s->recent[j];
  memcpy(s->recent, keep, k * sizeof keep[0]);
  s->nrecent = (uint8_t)k;
}


bool ooo_insert(struct tcp_engine *e, struct tcb *t, uint32_t seq, const uint8_t *data,
                uint32_t len, bool fin)
{
  uint64_t *w = &e->ooo_work;
  struct ring *r = &t->rcvbuf;
  bool whole = true;
  /* Every byte within the advertised window has its place in the ring: the
   * window never exceeds the free space plus the overcommit (tcp_window_field).
   * Should that fail, what has none is dropped. */
  uint32_t room_end = tcp_rcv_room_end(t);
  if (seq_gt(seq + len, room_end)) {
    len = seq_lt(seq, room_end) ? room_end - seq : 0;
    fin = false;
    whole = false;
  }
  uint32_t end = seq + len;
  struct ooo_tree *s = t->ooo;
  if (fin && !t->ooo_fin) {
    /* Remembered where it stands, unless data is already held beyond it (a
     * FIN there is bogus); later FINs elsewhere are ignored. */
    if (!s || !seq_gt(nd(s, s->last)->right, end)) {
      t->ooo_fin = true;
      t->ooo_fin_seq = end;
    }
  }
  if (len == 0) return whole;
  /* Storage up to the segment's end, before anything changes (a refusal, counted
   * in alloc_failures, leaves the tree and the window as they were). */
  if (!ring_reserve(e, r, r->len + (end - t->rcv_nxt), r->cap + tcp_rcv_overcommit(t)))
    return false;
  uint32_t cur = s ? s->last : 0;
  if (cur && seq_geq(seq, nd(s, cur)->left)) {
    struct ooo_node *n = nd(s, cur);
    if (seq_leq(seq, n->right)) {
      /* Fast path: the segment extends (or repeats) the highest interval. */
      (*w)++;
      if (seq_gt(end, n->right)) {
        put_bytes(e, t, seq, data, n->right, end);
        n->right = end;
      }
      sack_note(t, cur);
      return whole;
    }
    /* A new highest interval: farthest of all, so at the limit it is the one
     * dropped. */
    if (t->ooo_count >= tcp_ooo_limit(e, t)) return false;
    if (!(cur = node_new(e, t, seq, end))) return false;
    put_bytes(e, t, seq, data, seq, end);
    node_insert(e, t, cur);
    sack_note(t, cur);
    return whole;
  }
  uint32_t p = tree_near(s, w, seq, 0);
  if (p && seq_leq(seq, nd(s, p)->right)) {
    cur = p;                                   /* starts inside (or at the end of) p */
  } else {
    uint32_t q = tree_near(s, w, seq, 1);
    if (q && seq_leq(nd(s, q)->left, end)) {
      /* Reaches the next interval: q grows leftwards. Its key decreases but
       * stays above p's right edge, so the tree's order holds. */
      put_bytes(e, t, seq, data, seq, nd(s, q)->left);
      nd(s, q)->left = seq;
      cur = q;
    } else {
      /* A new island. At the limit, the farthest intervals make room for a
       * nearer one (Linux's tcp_prune_ofo_queue); otherwise it is dropped.
       * Dropping the newcomer always let segments far ahead (from an earlier
       * burst) hold every slot, so each later loss needed a timeout. */
      while (t->ooo_count >= tcp_ooo_limit(e, t) && t->ooo &&
             seq_gt(nd(t->ooo, t->ooo->last)->left, seq)) {
        node_erase(e, t, t->ooo->last);
        if (e->stats) e->stats->ooo_dropped++;
      }
      if (t->ooo_count >= tcp_ooo_limit(e, t)) return false;
      if (!(cur = node_new(e, t, seq, end))) return false;
      put_bytes(e, t, seq, data, seq, end);
      node_insert(e, t, cur);
      sack_note(t, cur);
      return whole;
    }
  }
  /* Extend cur to the segment's end, merging every interval it reaches (each
   * merged interval disappears, so this is amortised O(log n)). */
  while (seq_lt(nd(s, cur)->right, end)) {
    uint32_t q = tree_near(s, w, nd(s, cur)->left, 1);
    if (q && seq_leq(nd(s, q)->left, end)) {
      put_bytes(e, t, seq, data, nd(s, cur)->right, nd(s, q)->left);
      uint32_t right = nd(s, q)->right;
      node_erase(e, t, q);                     /* cur remains, so the tree does */
      nd(s, cur)->right = right;
      if (seq_gt(nd(s, cur)->left, nd(s, s->last)->left)) s->last = cur;
    } else {
      put_bytes(e, t, seq, data, nd(s, cur)->right, end);
      nd(s, cur)->right = end;
    }
  }
  sack_note(t, cur);
  return whole;
}

bool ooo_deliver(struct tcp_engine *e, struct tcb *t)
{
  while (t->ooo_count) {
    struct ooo_tree *s = t->ooo;
    uint32_t i = tree_end(s, &e->ooo_work, 0);
    struct ooo_node *n = nd(s, i);
    if (seq_gt(n->left, t->rcv_nxt)) break;
    if (seq_gt(n->right, t->rcv_nxt)) {
      /* Its bytes are in place right after the in-order ones: they join them. */
      uint32_t upto = n->right;
      if (t->ooo_fin && seq_gt(t->ooo_fin_seq, t->rcv_nxt) && seq_lt(t->ooo_fin_seq, upto))
        upto = t->ooo_fin_seq;
      uint32_t m = upto - t->rcv_nxt;
      t->rcvbuf.len += m;
      t->rcv_nxt += m;
      t->info.bytes_received += m;
    }
    node_erase(e, t, i);
  }
  if (!t->ooo_fin) return false;
  if (t->ooo_fin_seq == t->rcv_nxt) {
    ooo_free_all(e, t);      /* whatever lies beyond the FIN is not data */
    return true;
  }
  if (seq_lt(t->ooo_fin_seq, t->rcv_nxt)) t->ooo_fin = false;   /* passed over: not a FIN */
  return false;
}

void ooo_free_all(struct tcp_engine *e, struct tcb *t)
{
  release_tree(e, t);
  t->ooo_fin = false;
}

bool ooo_next(const struct tcb *t, bool first, uint32_t after, uint32_t *left, uint32_t *right)
{
  uint64_t w = 0;          /* walks for checks and SACK filling: not counted */
  uint32_t i = first ? tree_end(t->ooo, &w, 0) : tree_near(t->ooo, &w, after, 1);
  if (!i) return false;
  *left = nd(t->ooo, i)->left;
  *right = nd(t->ooo, i)->right;
  return true;
}

bool ooo_overlap(const struct tcb *t, uint32_t seq, uint32_t end, uint32_t *left, uint32_t *right)
{
  uint64_t w = 0;
  if (!t->ooo || !seq_lt(seq, end)) return false;
  /* the interval starting at or before seq, else the first one after it */
  uint32_t i = tree_near(t->ooo, &w, seq, 0);
  if (!i || !seq_gt(nd(t->ooo, i)->right, seq)) i = tree_near(t->ooo, &w, seq, 1);
  if (!i) return false;
  uint32_t l = seq_max(nd(t->ooo, i)->left, seq), r = seq_min(nd(t->ooo, i)->right, end);
  if (!seq_lt(l, r)) return false;
  *left = l;
  *right = r;
  return true;
}

bool ooo_recent(const struct tcb *t, unsigned k, uint32_t *left, uint32_t *right)
{
  if (!t->ooo || k >= t->ooo->nrecent) return false;
  const struct ooo_node *n = &t->ooo->pool[t->ooo->recent[k] - 1];
  *left = n->left;
  *right = n->right;
  return true;
}

static uint64_t ooo_sum(const struct ooo_tree *s, uint32_t i, unsigned depth)
{
  if (!i || depth > 64) return 0;               /* an AVL tree is far shallower */
  const struct ooo_node *n = &s->pool[i - 1];
  return (uint32_t)(n->right - n->left) + ooo_sum(s, n->kid[0], depth + 1) +
         ooo_sum(s, n->kid[1], depth + 1);
}

uint64_t ooo_bytes(const struct tcb *t)
{
  return t->ooo ? ooo_sum(t->ooo, t->ooo->root, 0) : 0;
}

uint64_t ooo_mem(const struct tcb *t)
{
  return t->ooo ? sizeof *t->ooo + (uint64_t)t->ooo->pool_cap * sizeof t->ooo->pool[0] : 0;
}

/* For tcp_check: the tree is ordered, balanced, counted; returns the number of
 * nodes under i, or -1 with *why set. */
static long check_tree(struct ooo_tree *s, uint32_t i, const char **why)
{
  if (!i) return 0;
  if (i > s->pool_cap) { *why = "interval tree index outside its pool"; return -1; }
  struct ooo_node *n = nd(s, i);
  long a = check_tree(s, n->kid[0], why), b = check_tree(s, n->kid[1], why);
  if (a < 0 || b < 0) return -1;
  int32_t ha = ht(s, n->kid[0]), hb = ht(s, n->kid[1]);
  if (n->height != 1 + (ha > hb ? ha : hb)) { *why = "interval tree height wrong"; return -1; }
  if (ha - hb > 1 || hb - ha > 1) { *why = "interval tree unbalanced"; return -1; }
  if (n->kid[0] && !seq_lt(nd(s, n->kid[0])->left, n->left)) { *why = "interval tree out of order"; return -1; }
  if (n->kid[1] && !seq_gt(nd(s, n->kid[1])->left, n->left)) { *why = "interval tree out of order"; return -1; }
  return a + b + 1;
}

const char *ooo_check_tree(const struct tcb *t)
{
  struct ooo_tree *s = t->ooo;
  if (!s) return t->ooo_count ? "intervals counted but no tree" : NULL;
  if (!t->ooo_count) return "empty interval tree kept";
  const char *why = NULL;
  long n = check_tree(s, s->root, &why);
  if (n < 0) return why;
  if ((uint32_t)n != t->ooo_count) return "interval tree count differs from ooo_count";
  if (!t->rcvbuf.pinned) return "out-of-order bytes in an unpinned ring";
  uint32_t hi = s->root;
  while (hi && nd(s, hi)->kid[1]) hi = nd(s, hi)->kid[1];
  if (s->last != hi) return "interval tree: last is not the highest interval";
  return NULL;
}

uint32_t tcp_ooo_limit(const struct tcp_engine *e, const struct tcb *t)
{
  if (e->cfg->max_ooo_segments) return e->cfg->max_ooo_segments;
  /* 536: the smallest segments a conforming peer sends (RFC 9293 §3.7.1), so
   * a window of them fits; 131072 bytes give 245 (the old fixed 256). */
  return t->rcvbuf.cap / 536 + 1;
}
