/* The application's callbacks, delivered outside the engine (issue 10 point 4).
 *
 * Why: a callback may call any function of the API on the same stack, close()
 * included. Run from inside the engine (a state event from tcb_set_state, a packet
 * from tcp_output), such a call changes or frees the control block that the
 * engine frames below it are still using: close() from the state event of a
 * reset was a heap-use-after-free in tcb_close, close() from the output callback
 * one in tcp_output. Rather than make every engine step re-check its connection
 * after each possible callback, the engine never calls the application at all:
 *
 *   - state events, outgoing packets (output and capture) and captured incoming
 *     packets are recorded here, in the order they happen, as notices;
 *   - readiness is queued by src/sock (sock_wake_cb) as before;
 *   - stack_deliver() hands the notices to the callbacks in that order; it runs at
 *     the end of every entry into the stack (ustcp_input, ustcp_poll and each
 *     socket call, see stack_after_event), when no engine function is on the C
 *     stack, so whatever the callback calls runs as a fresh event of its own.
 *
 * Order is kept: a socket call made from a callback delivers the notices pending
 * before its own, then its own, before it returns (e.g. close() from a readiness
 * callback: the LAST_ACK event and the FIN reach the callbacks before close()
 * returns, as they did when they were synchronous). Nesting is bounded
 * (NOTIFY_MAX_NEST): deeper calls leave their notices to the outer delivery loop.
 *
 * Storage: chunks, never moved while a callback may hold a pointer into one (the
 * packet handed to the output callback); emptied when the outermost delivery
 * ends, one small chunk kept for the next event. A notice that cannot be stored
 * (out of memory) is dropped and counted in stats.callback_drops: an outgoing
 * packet then behaves as one lost on the wire.
 */
#include <stdlib.h>
#include <string.h>
#include "stack/stack.h"
#include "wire/ipv6.h"

enum notice_kind {
  NOTICE_EVENT,        /* a state change: struct ustcp_event follows */
  NOTICE_OUT,          /* a packet to send: capture (outgoing), then output */
  NOTICE_OUT_CAPTURE,  /* a packet looped back to our own address: capture only */
  NOTICE_IN_CAPTURE,   /* a packet handed to the stack: capture (incoming) */
  NOTICE_OUT_GATHER,   /* a packet whose payload stays in the send buffer (stack.c) */
};

struct notice {
  uint8_t kind;
  uint8_t csum_partial;  /* NOTICE_OUT*: the TCP checksum is left to the link */
  uint16_t gso_size;     /* NOTICE_OUT*: a frame for the link to cut (ustcp_tx_info) */
  uint32_t len;        /* bytes that follow the header */
  uint64_t time_us;
};

struct notify_chunk {
  struct notify_chunk *next;
  size_t cap, len;
  _Alignas(8) uint8_t data[];
};

#define NOTIFY_CHUNK 65536u
#define NOTIFY_KEEP (256u * 1024u)   /* a chunk this small survives the event */
#define NOTIFY_MAX_NEST 8

static size_t notice_size(size_t len)
{
  return (sizeof(struct notice) + len + 7u) & ~(size_t)7u;
}

/* Room for a notice with len bytes after its header, at the end of the queue. */
static struct notice *reserve(struct ustcp_stack *s, uint32_t kind, size_t len)
{
  size_t need = notice_size(len);
  struct notify_chunk *c = s->nq_last;
  if (!c || c->cap - c->len < need) {
    size_t cap = need > NOTIFY_CHUNK ? need : NOTIFY_CHUNK;
    c = tcp_sys_malloc(&s->eng, sizeof *c + cap);   /* counted in alloc_failures too */
    if (!c) {
      s->stats.callback_drops++;
      return NULL;
    }
    c->next = NULL;
    c->cap = cap;
    c->len = 0;
    if (s->nq_last) s->nq_last->next = c; else s->nq_first = c;
    s->nq_last = c;
    if (!s->nq_rd) {
      s->nq_rd = c;
      s->nq_rd_off = 0;
    }
  }
  struct notice *n = (struct notice *)(void *)(c->data + c->len);
  n->kind = (uint8_t)kind;
  n->csum_partial = 0;
  n->gso_size = 0;
  n->len = (uint32_t)len;
  n->time_us = s->eng.now_us;
  return n;
}

/* Commits a reserved notice, with its final length (<= the reserved one). */
static void commit(struct ustcp_stack *s, struct notice *n, size_t len)
{
  n->len = (uint32_t)len;
  s->nq_last->len += notice_size(len);
}

void notify_event(struct ustcp_stack *s, const struct ustcp_event *ev)
{
  if (!s->event_fn) return;
  struct notice *n = reserve(s, NOTICE_EVENT, sizeof *ev);
  if (!n) return;
  memcpy(n + 1, ev, sizeof *ev);
  commit(s, n, sizeof *ev);
}

uint8_t *notify_packet_begin(struct ustcp_stack *s, bool looped, size_t max_len)
{
  struct notice *n = reserve(s, looped ? NOTICE_OUT_CAPTURE : NOTICE_OUT, max_len);
  return n ? (uint8_t *)(n + 1) : NULL;
}

uint8_t *notify_gather_begin(struct ustcp_stack *s, size_t max_len)
{
  struct notice *n = reserve(s, NOTICE_OUT_GATHER, max_len);
  return n ? (uint8_t *)(n + 1) : NULL;
}

void notify_packet_end(struct ustcp_stack *s, uint8_t *pkt, size_t len, bool keep)
{
  struct notice *n = (struct notice *)(void *)pkt - 1;
  if (keep) commit(s, n, len);   /* else the space is simply reused */
}

void notify_packet_tx(uint8_t *pkt, uint16_t gso_size, bool csum_partial)
{
  struct notice *n = (struct notice *)(void *)pkt - 1;
  n->gso_size = gso_size;
  n->csum_partial = csum_partial;
}

void notify_capture_in(struct ustcp_stack *s, const uint8_t *pkt, size_t len)
{
  if (!s->capture_fn) return;
  struct notice *n = reserve(s, NOTICE_IN_CAPTURE, len);
  if (!n) return;
  memcpy(n + 1, pkt, len);
  commit(s, n, len);
}

struct cap_seg {
  struct ustcp_stack *s;
  uint64_t time_us;
};

static void capture_seg(void *ctx, const uint8_t *seg, size_t len)
{
  struct cap_seg *c = ctx;
  c->s->capture_fn(c->s->capture_ctx, true, seg, len, c->time_us);
}

/* The capture sees what goes on the wire: a frame the link will cut (or whose
 * checksum it will complete) is cut and completed here, in software, as the
 * link will (tcp_gso_segment). */
static void capture_out(struct ustcp_stack *s, const struct notice *n, const uint8_t *body)
{
  if (n->gso_size || n->csum_partial) {
    if (!s->seg_buf) s->seg_buf = tcp_sys_malloc(&s->eng, 65536);
    struct cap_seg c = {s, n->time_us};
    if (s->seg_buf &&
        tcp_gso_segment(body, n->len, n->gso_size, s->seg_buf, 65536, capture_seg, &c) > 0)
      return;
  }
  s->capture_fn(s->capture_ctx, true, body, n->len, n->time_us);
}

static void output(struct ustcp_stack *s, const struct notice *n, const uint8_t *body)
{
  if (s->out_tx) {
    struct ustcp_tx_info tx;
    memset(&tx, 0, sizeof tx);
    tx.gso_size = n->gso_size;
    tx.csum_partial = n->csum_partial;
    if (n->len >= IPV4_HDR_LEN + TCP_HDR_LEN && (body[0] >> 4) == 4 && body[9] == IPPROTO_TCP_) {
      size_t ihl = (size_t)(body[0] & 0xf) * 4;
      size_t thl = ihl + 13 <= n->len ? (size_t)(body[ihl + 12] >> 4) * 4 : 0;
      tx.hdr_len = (uint16_t)(ihl + thl);
      tx.csum_start = (uint16_t)ihl;
      tx.csum_offset = 16;
    } else if (n->len >= IPV6_HDR_LEN + TCP_HDR_LEN && (body[0] >> 4) == 6 &&
               body[6] == IPPROTO_TCP_) {
      /* IPv6: TCP right after the fixed header (the stack adds no extension
       * header) */
      tx.hdr_len = (uint16_t)(IPV6_HDR_LEN + (size_t)(body[IPV6_HDR_LEN + 12] >> 4) * 4);
      tx.csum_start = IPV6_HDR_LEN;
      tx.csum_offset = 16;
    }
    s->out_tx(s->out_tx_ctx, body, n->len, &tx);
  } else if (s->out) {
    s->out(s->out_ctx, body, n->len);
  }
}

static void deliver_one(struct ustcp_stack *s, const struct notice *n)
{
  const uint8_t *body = (const uint8_t *)(n + 1);
  s->cb_depth++;
  switch (n->kind) {
  case NOTICE_EVENT: {
    struct ustcp_event ev;
    memcpy(&ev, body, sizeof ev);
    /* The descriptor as it is now: one that an earlier callback closed (and
     * perhaps reused for another socket) no longer names this connection. */
    if (ev.fd >= 0 && s->sock_fd_of) ev.fd = s->sock_fd_of(s, ev.fd, ev.conn_id);
    if (s->event_fn) s->event_fn(s->event_ctx, &ev);
    break;
  }
  case NOTICE_OUT:
    if (s->capture_fn) capture_out(s, n, body);
    if (s->out_tx || !s->out_iov) {
      output(s, n, body);
    } else {
      struct iovec one = {(void *)(uintptr_t)body, n->len};
      s->out_iov(s->out_iov_ctx, &one, 1);
    }
    break;
  case NOTICE_OUT_GATHER:
    stack_deliver_gather(s, body, n->len, n->time_us);
    break;
  case NOTICE_OUT_CAPTURE:
    if (s->capture_fn) capture_out(s, n, body);
    break;
  case NOTICE_IN_CAPTURE:
    if (s->capture_fn) s->capture_fn(s->capture_ctx, false, body, n->len, n->time_us);
    break;
  }
  s->cb_depth--;
}

static void reset_queue(struct ustcp_stack *s)
{
  struct notify_chunk *c = s->nq_first;
  struct notify_chunk *keep = NULL;
  while (c) {
    struct notify_chunk *next = c->next;
    if (!keep && c->cap <= NOTIFY_KEEP) {
      keep = c;
      keep->next = NULL;
      keep->len = 0;
    } else {
      free(c);
    }
    c = next;
  }
  s->nq_first = s->nq_last = keep;
  s->nq_rd = keep;
  s->nq_rd_off = 0;
}

bool stack_deliver(struct ustcp_stack *s)
{
  if (s->cb_depth >= NOTIFY_MAX_NEST) return false;   /* the outer loop delivers them */
  bool any = false;
  s->nq_delivering++;
  for (;;) {
    struct notify_chunk *c = s->nq_rd;
    if (!c) break;
    if (s->nq_rd_off >= c->len) {
      if (!c->next) break;
      s->nq_rd = c->next;
      s->nq_rd_off = 0;
      continue;
    }
    const struct notice *n = (const struct notice *)(const void *)(c->data + s->nq_rd_off);
    s->nq_rd_off += notice_size(n->len);
    any = true;
    /* The chunk stays put until the outermost delivery ends (below), however
     * many notices the callback adds or delivers itself. */
    deliver_one(s, n);
  }
  if (--s->nq_delivering == 0) {
    /* The packets handed out during this event are still in the chunks: a
     * link that queued them writes them now, before the chunks are reused. */
    if (s->flush_fn) s->flush_fn(s->flush_ctx);
    reset_queue(s);
  }
  return any;
}

void ustcp_set_output_flush(struct ustcp_stack *s, ustcp_flush_fn fn, void *ctx)
{
  if (!s) return;
  s->flush_fn = fn;
  s->flush_ctx = ctx;
}

void notify_free(struct ustcp_stack *s)
{
  struct notify_chunk *c = s->nq_first;
  while (c) {
    struct notify_chunk *next = c->next;
    free(c);
    c = next;
  }
  s->nq_first = s->nq_last = s->nq_rd = NULL;
  s->nq_rd_off = 0;
  free(s->seg_buf);
  s->seg_buf = NULL;
}
