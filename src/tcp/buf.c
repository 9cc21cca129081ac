/* Byte rings for the send and receive buffers, and the out-of-order queue (D4).
 * Rings allocate their storage on first write, so a connection that never carries
 * data holds no buffer memory. */
#include <stdlib.h>
#include <string.h>
#include "tcp/tcp.h"

uint32_t ring_write(struct tcp_engine *e, struct ring *r, const uint8_t *src, uint32_t n)
{
  if (n > ring_space(r)) n = ring_space(r);
  if (n == 0) return 0;
  if (!r->data) {
    r->data = tcp_alloc_raw(e, r->cap);   /* no zeroing: every byte is written before it is read */
    if (!r->data) return 0;
    r->head = 0;
  }
  uint32_t tail = (r->head + r->len) % r->cap;
  uint32_t first = r->cap - tail;
  if (first > n) first = n;
  memcpy(r->data + tail, src, first);
  memcpy(r->data, src + first, n - first);
  r->len += n;
  return n;
}

void ring_copy_out(const struct ring *r, uint32_t off, uint8_t *dst, uint32_t n)
{
  if (n == 0) return;
  uint32_t start = (r->head + off) % r->cap;
  uint32_t first = r->cap - start;
  if (first > n) first = n;
  memcpy(dst, r->data + start, first);
  memcpy(dst + first, r->data, n - first);
}

void ring_drop(struct ring *r, uint32_t n)
{
  if (n > r->len) n = r->len;
  r->len -= n;
  r->head = r->len ? (r->head + n) % r->cap : 0;
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
  if (r->data) tcp_free_mem(e, r->data, r->cap);
  r->data = NULL;
  r->head = r->len = 0;
}

static struct ooo_seg *ooo_new(struct tcp_engine *e, uint32_t seq, const uint8_t *data,
                               uint32_t len, bool fin)
{
  struct ooo_seg *s = tcp_alloc(e, sizeof *s + len);
  if (!s) return NULL;
  s->seq = seq;
  s->len = len;
  s->fin = fin;
  memcpy(s->data, data, len);
  return s;
}

/* Inserts the parts of [seq, seq+len) that no queued segment covers yet, keeping
 * the list sorted and free of overlaps, so reassembly is a walk from the head. */
bool ooo_insert(struct tcp_engine *e, struct tcb *t, uint32_t seq, const uint8_t *data,
                uint32_t len, bool fin)
{
  uint32_t end = seq + len;
  struct ooo_seg **pp = &t->ooo;
  if (len == 0) {
    /* A FIN alone goes to its place in sequence order (the loop below never
     * runs for it, and it once landed at the head, unsorting the queue): it
     * marks the segment that ends where it stands, or is queued by itself. */
    if (!fin) return true;
    while (*pp && seq_lt((*pp)->seq + (*pp)->len, seq)) pp = &(*pp)->next;
    if (*pp && (*pp)->seq + (*pp)->len == seq) {
      (*pp)->fin = true;
      return true;
    }
    if (*pp && seq_lt((*pp)->seq, seq)) return true;   /* inside queued data: bogus */
    if (t->ooo_count >= tcp_ooo_limit(e, t)) return false;
    struct ooo_seg *n = ooo_new(e, seq, data, 0, true);
    if (!n) return false;
    n->next = *pp;
    *pp = n;
    t->ooo_count++;
    return true;
  }
  /* Full queue: a segment nearer rcv_nxt than the farthest queued one evicts
   * that one (Linux prunes its out-of-order queue from the far end,
   * tcp_prune_ofo_queue). Dropping the newcomer instead let segments far ahead
   * (from an earlier burst) hold every slot, so each later loss needed a
   * retransmission timeout. The bound max_ooo_segments still holds. */
  while (t->ooo_count >= tcp_ooo_limit(e, t) && t->ooo) {
    struct ooo_seg **last = &t->ooo;
    while ((*last)->next) last = &(*last)->next;
    if (!seq_gt((*last)->seq, seq)) break;
    struct ooo_seg *victim = *last;
    *last = NULL;
    t->ooo_count--;
    if (e->stats) e->stats->ooo_dropped++;
    tcp_free_mem(e, victim, sizeof *victim + victim->len);
  }
  while (*pp && seq_lt(seq, end)) {
    struct ooo_seg *s = *pp;
    uint32_t s_end = s->seq + s->len;
    if (seq_leq(s_end, seq)) { pp = &s->next; continue; }
    if (seq_leq(s->seq, seq)) {           /* s covers our start: skip what it has */
      uint32_t skip = s_end - seq;
      if (seq_geq(s_end, end)) {
        if (fin && s_end == end) s->fin = true;
        return true;
      }
      data += skip; seq = s_end;
      pp = &s->next;
      continue;
    }
    /* A gap [seq, min(s->seq, end)) precedes s: fill it. */
    uint32_t piece = seq_lt(s->seq, end) ? s->seq - seq : end - seq;
    if (t->ooo_count >= tcp_ooo_limit(e, t)) return false;
    bool last = seq + piece == end;
    struct ooo_seg *n = ooo_new(e, seq, data, piece, fin && last);
    if (!n) return false;
    n->next = s;
    *pp = n;
    t->ooo_count++;
    data += piece; seq += piece;
    pp = &n->next;
  }
  if (seq_lt(seq, end)) {
    if (t->ooo_count >= tcp_ooo_limit(e, t)) return false;
    struct ooo_seg *n = ooo_new(e, seq, data, end - seq, fin);
    if (!n) return false;
    n->next = *pp;
    *pp = n;
    t->ooo_count++;
  }
  return true;
}

void ooo_free_all(struct tcp_engine *e, struct tcb *t)
{
  while (t->ooo) {
    struct ooo_seg *s = t->ooo;
    t->ooo = s->next;
    tcp_free_mem(e, s, sizeof *s + s->len);
  }
  t->ooo_count = 0;
}

uint32_t tcp_ooo_limit(const struct tcp_engine *e, const struct tcb *t)
{
  if (e->cfg->max_ooo_segments) return e->cfg->max_ooo_segments;
  /* 536: the smallest segments a conforming peer sends (RFC 9293 §3.7.1), so
   * a window of them fits; 131072 bytes give 245 (the old fixed 256). */
  return t->rcvbuf.cap / 536 + 1;
}
