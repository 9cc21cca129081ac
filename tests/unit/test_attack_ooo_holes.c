/* Attack: a peer fills the receive window with out-of-order islands (issue 10
 * point 5, issue 12 point 5). It sends 1-byte segments with 1-byte holes between
 * them, ascending (each one a new island past the last), descending (each one a
 * new island before the first, which evicts the farthest once the queue is
 * full), and strided across a 1 MiB window. Proves:
 *   - the work each segment causes in the out-of-order structure and in SACK
 *     block generation is O(log n) of the island count, never O(n): the engine
 *     counts the steps it takes (tcp_engine.ooo_work) and no segment may cost more than
 *     a small multiple of log2(limit) (a list walk costs up to `limit` steps);
 *   - the number of islands stays within tcp_ooo_limit, and what does not fit is
 *     counted in stats.ooo_dropped;
 *   - correctness: once the holes fill, every byte is delivered exactly once and
 *     in order (recv returns the stream byte-exact), each filled hole releasing
 *     the island behind it at once;
 *   - RFC 2018 §4: the first SACK block holds the latest segment's island, and
 *     the islands reported most recently are repeated (the sixth island of a
 *     row is reported; before, only the five lowest ever were);
 *   - a FIN that arrives beyond a hole takes effect when the hole fills.
 */
#include "check.h"
#include "rawpeer.h"
#include "tcp/tcp.h"
#include "stack/stack.h"

#define RCVBUF (1u << 20)
static uint8_t stream[RCVBUF + 65536];
static uint8_t got[RCVBUF + 65536];

static unsigned log2_ceil(uint32_t n)
{
  unsigned k = 0;
  while ((1ull << k) < n) k++;
  return k;
}

/* Opens a connection with a 1 MiB receive buffer, SACK and window scaling. */
static int open_conn(struct rp *r, struct rp_conn *c, int l, uint16_t port)
{
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_WSCALE | TCP_OPT_HAS_SACK_PERM;
  o.mss = 1460;
  o.wscale = 7;
  return rp_handshake_in(r, c, l, RP_PEER_IP, port, 80, 1000000u * port, &o);
}

struct work {
  uint64_t max, total, segs;
};

/* Sends stream[off, off+len) and accounts the work it caused; returns the ACK
 * number the stack answered, or its rcv_nxt if the ACK is delayed. */
static uint32_t send_at(struct rp *r, struct rp_conn *c, int fd, uint32_t base, uint32_t off,
                        uint32_t len, struct work *w)
{
  uint64_t before = r->s->eng.ooo_work;
  rp_clear(r);
  rp_send_from(r, c->peer_ip, c->peer_port, 80, base + off, c->rcv_nxt, TCP_ACK, 65535, NULL,
               stream + off, len);
  struct tcb *t = sock_debug_tcb(r->s, fd, NULL);
  if (w) {
    uint64_t d = r->s->eng.ooo_work - before;
    if (d > w->max) w->max = d;
    w->total += d;
    w->segs++;
  }
  /* The ACK if one went out at once (delayed for in-order data otherwise). */
  struct tcp_packet p;
  if (rp_last(r, &p)) return p.tcp.ack;
  return t ? t->rcv_nxt : 0;
}

static void holes_across_the_window(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  for (size_t i = 0; i < sizeof stream; i++) stream[i] = (uint8_t)(i * 131 + (i >> 9));
  struct rp r;
  rp_init(&r, &cfg, 1010);
  int l = rp_listen(&r, 80, 16);
  int big = (int)RCVBUF;
  CHECK_EQ(ustcp_setsockopt(r.s, l, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &big, sizeof big), 0);
  struct rp_conn c;
  int fd = open_conn(&r, &c, l, 40001);
  CHECK(fd >= 0);
  if (fd < 0) { rp_free(&r); return; }
  struct tcb *t = sock_debug_tcb(r.s, fd, NULL);
  const struct tcp_engine *e = &r.s->eng;
  uint32_t limit = tcp_ooo_limit(e, t);
  CHECK_EQ(limit, RCVBUF / 536 + 1);
  uint32_t bound = 24 * log2_ceil(limit + 1);   /* steps one segment may cost */
  uint32_t base = c.snd_nxt;

  /* The first island opens the whole window (its ACK advertises the buffer). */
  struct work asc = {0};
  send_at(&r, &c, fd, base, 1, 1, &asc);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fd, &ti);
  uint32_t wnd = ti.rcv_wnd;
  CHECK(wnd > RCVBUF - 65536);

  /* Ascending: every segment a new island past the last, then past the limit. */
  uint32_t asc_end = 2 * (limit + 500);
  struct ustcp_stats st0, st;
  ustcp_get_stats(r.s, &st0);
  for (uint32_t off = 3; off < asc_end; off += 2) send_at(&r, &c, fd, base, off, 1, &asc);
  t = sock_debug_tcb(r.s, fd, NULL);
  CHECK_EQ(t->ooo_count, limit);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.ooo_dropped - st0.ooo_dropped, 500);
  /* Strided to the right edge of the window: all beyond the limit, all dropped. */
  uint32_t strided = 0;
  for (uint32_t off = asc_end + 1; off + 1 <= wnd; off += 2 * 97, strided++)
    send_at(&r, &c, fd, base, off, 1, &asc);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.ooo_dropped - st0.ooo_dropped, 500 + strided);
  CHECK(rp_stack_problem(&r) == NULL);
  printf("ascending + strided: %llu segments, %u islands kept (limit %u), work max %llu "
         "mean %.1f steps/segment (bound %u)\n", (unsigned long long)asc.segs, t->ooo_count,
         limit, (unsigned long long)asc.max, (double)asc.total / (double)asc.segs, bound);
  CHECK(asc.max <= bound);

  /* Descending, on a second connection: each new island precedes all others;
   * past the limit each one evicts the farthest (Linux's tcp_prune_ofo_queue). */
  struct rp_conn c2;
  int fd2 = open_conn(&r, &c2, l, 40002);
  CHECK(fd2 >= 0);
  uint32_t base2 = c2.snd_nxt;
  struct work desc = {0};
  send_at(&r, &c2, fd2, base2, 4 * limit + 1, 1, &desc);
  ustcp_get_stats(r.s, &st0);
  for (uint32_t off = 4 * limit - 1; off >= 1 && off < 4 * limit; off -= 2)
    send_at(&r, &c2, fd2, base2, off, 1, &desc);
  struct tcb *t2 = sock_debug_tcb(r.s, fd2, NULL);
  CHECK_EQ(t2->ooo_count, limit);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.ooo_dropped - st0.ooo_dropped, 2 * limit + 1 - limit);
  CHECK(rp_stack_problem(&r) == NULL);
  printf("descending: %llu segments, work max %llu mean %.1f steps/segment (bound %u)\n",
         (unsigned long long)desc.segs, (unsigned long long)desc.max,
         (double)desc.total / (double)desc.segs, bound);
  CHECK(desc.max <= bound);

  /* The holes fill, one byte at a time as far as islands were kept, then in
   * full segments: every byte comes out once, in order. */
  struct work fill = {0};
  uint32_t nxt = base, total = wnd, jumps = 0;
  size_t have = 0;
  for (int guard = 0; nxt - base < total && guard < 4000000; guard++) {
    uint32_t off = nxt - base;
    uint32_t len = off < asc_end ? 1 : u32_min(1460, total - off);
    uint32_t ack = send_at(&r, &c, fd, base, off, len, &fill);
    if (ack - nxt == len + 1) jumps++;       /* the hole and the island behind it */
    CHECK(seq_gt(ack, nxt));
    if (!seq_gt(ack, nxt)) break;
    nxt = ack;
    for (;;) {
      ssize_t n = ustcp_recv(r.s, fd, got + have, sizeof got - have, 0);
      if (n <= 0) break;
      have += (size_t)n;
    }
  }
  CHECK_EQ(nxt - base, total);
  CHECK_EQ(have, total);
  CHECK_MEM(got, stream, total);
  CHECK_EQ(jumps, limit);
  CHECK(fill.max <= bound);
  t = sock_debug_tcb(r.s, fd, NULL);
  CHECK_EQ(t->ooo_count, 0);
  printf("fill: %llu segments, %u holes released an island, work max %llu steps/segment\n",
         (unsigned long long)fill.segs, jumps, (unsigned long long)fill.max);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* RFC 2018 §4 on six islands sent in a row: the first block is the latest
 * island, the next ones the islands reported just before it. */
static void sack_reports_the_latest_islands(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct rp r;
  rp_init(&r, &cfg, 1011);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = open_conn(&r, &c, l, 40003);
  CHECK(fd >= 0);
  uint32_t base = c.snd_nxt;
  for (uint32_t k = 1; k <= 6; k++) {
    rp_clear(&r);
    rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 100 * k, c.rcv_nxt, TCP_ACK, 65535,
                 NULL, stream, 10);
    struct tcp_packet p;
    memset(&p, 0, sizeof p);
    CHECK(rp_last(&r, &p));
    CHECK(p.tcp.opts.present & TCP_OPT_HAS_SACK);
    CHECK_EQ(p.tcp.ack, base);
    unsigned want = k < TCP_MAX_SACK_BLOCKS ? k : TCP_MAX_SACK_BLOCKS;
    CHECK_EQ(p.tcp.opts.sack_count, want);
    for (unsigned i = 0; i < p.tcp.opts.sack_count && i < want; i++) {
      CHECK_EQ(p.tcp.opts.sack[i].left, base + 100 * (k - i));
      CHECK_EQ(p.tcp.opts.sack[i].right, base + 100 * (k - i) + 10);
    }
  }
  /* A segment extending the second island: its (grown) block goes first, the
   * others keep their order behind it. */
  rp_clear(&r);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 210, c.rcv_nxt, TCP_ACK, 65535, NULL,
               stream, 5);
  struct tcp_packet p;
  memset(&p, 0, sizeof p);
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.opts.sack_count, TCP_MAX_SACK_BLOCKS);
  CHECK_EQ(p.tcp.opts.sack[0].left, base + 200);
  CHECK_EQ(p.tcp.opts.sack[0].right, base + 215);
  CHECK_EQ(p.tcp.opts.sack[1].left, base + 600);
  CHECK_EQ(p.tcp.opts.sack[2].left, base + 500);
  CHECK_EQ(p.tcp.opts.sack[3].left, base + 400);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

/* A FIN beyond a hole: held until the hole fills, then data, then EOF. */
static void fin_after_ooo_data(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct rp r;
  rp_init(&r, &cfg, 1012);
  int l = rp_listen(&r, 80, 16);
  struct rp_conn c;
  int fd = open_conn(&r, &c, l, 40004);
  CHECK(fd >= 0);
  uint32_t base = c.snd_nxt;
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 10, c.rcv_nxt, TCP_ACK | TCP_FIN, 65535,
               NULL, stream + 10, 10);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 5, c.rcv_nxt, TCP_ACK, 65535, NULL,
               stream + 5, 3);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  rp_clear(&r);
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base, c.rcv_nxt, TCP_ACK, 65535, NULL, stream, 5);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);   /* bytes 8, 9 still missing */
  rp_send_from(&r, c.peer_ip, c.peer_port, 80, base + 8, c.rcv_nxt, TCP_ACK, 65535, NULL,
               stream + 8, 2);
  CHECK_EQ(rp_state(&r, fd), USTCP_CLOSE_WAIT);
  struct tcp_packet p;
  memset(&p, 0, sizeof p);
  CHECK(rp_last(&r, &p));
  CHECK_EQ(p.tcp.ack, base + 21);
  uint8_t b[64];
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), 20);
  CHECK_MEM(b, stream, 20);
  CHECK_EQ(ustcp_recv(r.s, fd, b, sizeof b, 0), 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(holes_across_the_window);
  RUN(sack_reports_the_latest_islands);
  RUN(fin_after_ooo_data);
  return check_report();
}
