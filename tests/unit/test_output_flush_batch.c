/* Batched output (issue 15 point 4): ustcp_set_output_flush, what a link
 * that writes several packets per system call (the TUN loop's io_uring)
 * relies on.
 *
 * Both stacks' links here keep only the pointer the output callback was given,
 * with a checksum of the bytes at that moment, and copy the packet onto the
 * "wire" in the flush callback. Proven:
 *   - every packet pointer is still valid at the flush: its bytes are the ones
 *     the output callback saw (a stack that reused the storage before the
 *     flush fails here), over a 2 MB transfer, byte-exact (D1);
 *   - the flush runs after every event that produced output, so nothing waits
 *     in a link that flushes only there (the transfer completes);
 *   - one event that sends several packets hands them all to the link before
 *     its one flush (a batch of more than one packet happened);
 *   - a flush callback of NULL, and a NULL stack, are harmless.
 */
#include "check.h"
#include "ustcp.h"

#include <errno.h>
#include <stdint.h>

#define A_IP 0x0a000001u
#define B_IP 0x0a000002u
#define MAXQ 4096
#define BYTES 2000000u

struct qpkt {
  const uint8_t *p;
  size_t len;
  uint64_t sum;
};

struct link {
  struct qpkt q[MAXQ];
  size_t nq;
  size_t flushes, flushed_pkts, max_batch;
  size_t stale;                 /* packets whose bytes changed before the flush */
  size_t overflow;
  /* the wire toward the other stack: copies made at the flush */
  uint8_t *wire;
  size_t wire_used, wire_cap;
  size_t *wire_len;
  size_t nwire, wire_max;
};

static uint64_t fnv(const uint8_t *p, size_t n)
{
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h ^ n;
}

static void out_fn(void *ctx, const uint8_t *pkt, size_t len)
{
  struct link *l = ctx;
  if (l->nq >= MAXQ) {
    l->overflow++;
    return;
  }
  l->q[l->nq++] = (struct qpkt){pkt, len, fnv(pkt, len)};
}

static void flush_fn(void *ctx)
{
  struct link *l = ctx;
  l->flushes++;
  if (l->nq > l->max_batch) l->max_batch = l->nq;
  for (size_t i = 0; i < l->nq; i++) {
    const struct qpkt *q = &l->q[i];
    if (fnv(q->p, q->len) != q->sum) l->stale++;
    if (l->nwire < l->wire_max && l->wire_used + q->len <= l->wire_cap) {
      memcpy(l->wire + l->wire_used, q->p, q->len);
      l->wire_len[l->nwire++] = q->len;
      l->wire_used += q->len;
    }
    l->flushed_pkts++;
  }
  l->nq = 0;
}

static void link_init(struct link *l)
{
  memset(l, 0, sizeof *l);
  l->wire_cap = 16u << 20;
  l->wire = malloc(l->wire_cap);
  l->wire_max = 65536;
  l->wire_len = malloc(l->wire_max * sizeof *l->wire_len);
}

static void link_free(struct link *l)
{
  free(l->wire);
  free(l->wire_len);
}

/* Hands what is on l's wire to s, each packet one event. Returns the packets
 * moved. */
static size_t carry(struct link *l, struct ustcp_stack *s, uint64_t now)
{
  size_t n = l->nwire;
  /* copy out first: the input's own output lands in the other link */
  uint8_t *buf = malloc(l->wire_used ? l->wire_used : 1);
  size_t *len = malloc((n ? n : 1) * sizeof *len);
  memcpy(buf, l->wire, l->wire_used);
  memcpy(len, l->wire_len, n * sizeof *len);
  l->nwire = 0;
  l->wire_used = 0;
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    ustcp_input(s, buf + off, len[i], now);
    off += len[i];
  }
  free(buf);
  free(len);
  return n;
}

static struct link la, lb;

static void test_flush_keeps_packets_valid(void)
{
  link_init(&la);
  link_init(&lb);
  struct ustcp_stack *a = ustcp_stack_new(NULL, A_IP, 1, out_fn, &la);
  struct ustcp_stack *b = ustcp_stack_new(NULL, B_IP, 2, out_fn, &lb);
  CHECK(a && b);
  ustcp_set_output_flush(a, flush_fn, &la);
  ustcp_set_output_flush(b, flush_fn, &lb);

  uint64_t now = 1000000;
  int lfd = ustcp_socket(b);
  struct ustcp_addr ba = {.ip = B_IP, .port = 80};
  CHECK_EQ(ustcp_bind(b, lfd, &ba), 0);
  CHECK_EQ(ustcp_listen(b, lfd, 8), 0);
  int cfd = ustcp_socket(a);
  CHECK_EQ(ustcp_connect(a, cfd, &ba), -EINPROGRESS);
  CHECK(la.flushes >= 1);            /* the SYN went out through the flush */
  CHECK_EQ(la.nq, 0);

  uint8_t *got = malloc(BYTES);
  size_t sent = 0, rcvd = 0;
  int afd = -1;
  static uint8_t chunk[65536];
  for (int round = 0; round < 200000 && rcvd < BYTES; round++) {
    now += 100;
    size_t moved = carry(&la, b, now) + carry(&lb, a, now);
    if (afd < 0) afd = ustcp_accept(b, lfd, NULL);
    while (sent < BYTES) {
      size_t n = BYTES - sent < sizeof chunk ? BYTES - sent : sizeof chunk;
      for (size_t i = 0; i < n; i++) chunk[i] = (uint8_t)((sent + i) * 7 + ((sent + i) >> 9));
      ssize_t w = ustcp_send(a, cfd, chunk, n, 0);
      if (w <= 0) break;
      sent += (size_t)w;
    }
    if (afd >= 0) {
      for (;;) {
        ssize_t r = ustcp_recv(b, afd, got + rcvd, BYTES - rcvd, 0);
        if (r <= 0) break;
        rcvd += (size_t)r;
      }
    }
    if (!moved) ustcp_poll(a, now), ustcp_poll(b, now);
  }
  CHECK_EQ(rcvd, BYTES);
  size_t bad = 0;
  for (size_t i = 0; i < rcvd; i++)
    if (got[i] != (uint8_t)(i * 7 + (i >> 9))) bad++;
  CHECK_EQ(bad, 0);
  CHECK_EQ(la.stale + lb.stale, 0);
  CHECK_EQ(la.overflow + lb.overflow, 0);
  CHECK(la.flushed_pkts > 1000);      /* 2 MB in segments of one MSS */
  CHECK_EQ(la.nq + lb.nq, 0);         /* nothing left waiting in a link */
  CHECK(la.max_batch > 1);            /* an ACK released a burst: one flush */

  ustcp_set_output_flush(a, NULL, NULL);
  ustcp_set_output_flush(NULL, flush_fn, &la);
  free(got);
  ustcp_stack_free(a);
  ustcp_stack_free(b);
  link_free(&la);
  link_free(&lb);
}

int main(void)
{
  RUN(test_flush_keeps_packets_valid);
  return check_report();
}
