/* Issue 12 point 6: zero-copy output and direct buffer access.
 *
 * The encoder: headers with the checksum summed over slices (any split, odd
 * lengths) followed by the slices are byte for byte the flat packet.
 * Gather output (ustcp_set_output_iov): the same seeded run over a lossy link,
 * once with the flat output and once with the gather output, must put the very
 * same bytes on the wire, packet for packet (headers, checksums, payload),
 * while payload slices cross the send ring's wraparound (three slices, odd
 * lengths) and SACK retransmissions go out; every packet decodes with valid
 * checksums; the gather run copies no payload on the way out.
 * Callbacks that call the stack while holding the slices (ASan: no use after
 * free), packets made stale by an abort, and allocation failures during a
 * gather transfer are handled.
 * Direct access (ustcp_recv_direct, ustcp_send_direct): order and exactly-once
 * with partial consumption, the window update after a read that opens a closed
 * window, the errors of recv/send, re-entry refused with -EBUSY. */
#include "check.h"
#include "simnet.h"

#define CLIENT_IP 0x0a000001u
#define SERVER_IP 0x0a000002u
#define MS USTCP_MSEC
#define SEC USTCP_SEC

/* ---- a record of every packet the client sent ---- */
struct rec {
  uint8_t *buf;
  size_t len, cap;
  unsigned pkts, bad;
};
static void rec_add(struct rec *r, const uint8_t *p, size_t n)
{
  if (r->len + n + 4 > r->cap) {
    r->cap = (r->len + n + 4) * 2;
    r->buf = realloc(r->buf, r->cap);
  }
  r->buf[r->len++] = (uint8_t)(n >> 8);
  r->buf[r->len++] = (uint8_t)n;
  memcpy(r->buf + r->len, p, n);
  r->len += n;
  r->pkts++;
  struct tcp_packet tp;
  if (tcp_packet_decode(p, n, &tp) != WIRE_OK) r->bad++;   /* checksums verified */
}

struct run {
  struct simnet sn;
  struct ustcp_stack *c, *s;
  int lfd, cfd, sfd;
  struct rec rec;
  unsigned iov3, odd_slice, max_iov;
};
static struct run *cur;

static void tap(void *ctx, int from, int to, enum sim_fate fate, const uint8_t *pkt, size_t len,
                uint64_t now)
{
  struct run *r = ctx;
  (void)to; (void)now;
  if (from == r->sn.hosts[0].id && fate == SIM_SENT) rec_add(&r->rec, pkt, len);
}

/* The gather output of the client: what a link without scatter-gather does
 * (the simulated network copies a packet into its queue anyway). */
static void gather_out(void *ctx, const struct iovec *iov, int cnt)
{
  struct run *r = ctx;
  static uint8_t flat[70000];
  size_t n = 0;
  if (cnt > (int)r->max_iov) r->max_iov = (unsigned)cnt;
  if (cnt == 3) r->iov3++;
  for (int i = 0; i < cnt; i++) {
    if (i > 0 && (iov[i].iov_len & 1)) r->odd_slice++;
    memcpy(flat + n, iov[i].iov_base, iov[i].iov_len);
    n += iov[i].iov_len;
  }
  sim_send(r->sn.net, r->sn.hosts[0].id, flat, n);
}

static void run_open(struct run *r, uint64_t seed, bool gather, const struct sim_link_cfg *lc)
{
  memset(r, 0, sizeof *r);
  sn_init(&r->sn, seed);
  r->c = sn_add(&r->sn, "client", CLIENT_IP, NULL);
  r->s = sn_add(&r->sn, "server", SERVER_IP, NULL);
  if (gather) ustcp_set_output_iov(r->c, gather_out, r);
  sim_set_tap(r->sn.net, tap, r);
  r->lfd = ustcp_socket(r->s);
  struct ustcp_addr sa = {SERVER_IP, 80};
  CHECK_EQ(ustcp_bind(r->s, r->lfd, &sa), 0);
  CHECK_EQ(ustcp_listen(r->s, r->lfd, 8), 0);
  r->cfd = ustcp_socket(r->c);
  /* A small send buffer of an odd size: runs wrap around the ring often. */
  int sz = 15001;
  CHECK_EQ(ustcp_setsockopt(r->c, r->cfd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &sz, sizeof sz), 0);
  CHECK_EQ(ustcp_connect(r->c, r->cfd, &sa), -EINPROGRESS);
  sn_advance(&r->sn, 100 * MS);
  CHECK_EQ(sn_state(r->c, r->cfd), USTCP_ESTABLISHED);
  r->sfd = ustcp_accept(r->s, r->lfd, NULL);
  CHECK(r->sfd >= 0);
  if (lc) sim_set_all_links(r->sn.net, lc);
}

static void run_close(struct run *r)
{
  sn_free(&r->sn);
  free(r->rec.buf);
}

/* Sends with odd-sized writes so that segment boundaries fall anywhere. */
static bool transfer(struct run *r, uint64_t total, uint32_t salt)
{
  struct sn_stream st = {r->c, r->s, r->cfd, r->sfd, salt, total, 0, 0, false, false, 0};
  struct sn_stream *sts[1] = {&st};
  bool ok = sn_pump(&r->sn, sts, 1, 1 * MS, 120 * SEC);
  CHECK(!st.bad);
  CHECK_EQ(st.rx_err, 0);
  return ok && !st.bad;
}

static void gather_equals_flat(uint64_t seed)
{
  struct sim_link_cfg lc = {0};
  lc.delay_us = 5 * MS;
  lc.loss = 0.03;
  static struct run a, b;
  run_open(&a, seed, false, &lc);
  CHECK(transfer(&a, 600000, 7));
  struct ustcp_stats sa, sb;
  ustcp_get_stats(a.c, &sa);
  run_open(&b, seed, true, &lc);
  CHECK(transfer(&b, 600000, 7));
  ustcp_get_stats(b.c, &sb);
  /* Identical wire bytes, packet for packet. */
  CHECK_EQ(a.rec.pkts, b.rec.pkts);
  CHECK_EQ(a.rec.len, b.rec.len);
  CHECK(a.rec.len == b.rec.len && memcmp(a.rec.buf, b.rec.buf, a.rec.len) == 0);
  CHECK_EQ(a.rec.bad, 0);
  CHECK_EQ(b.rec.bad, 0);
  /* The gather run exercised what it must: slices across the wraparound, odd
   * slice lengths, SACK retransmissions. */
  CHECK(b.iov3 > 0);
  CHECK(b.odd_slice > 0);
  CHECK_EQ(b.max_iov, 3);
  CHECK(sb.retrans_segs > 0);
  CHECK_EQ(sb.retrans_segs, sa.retrans_segs);
  CHECK_EQ(sb.out_iov_stale, 0);
  /* Flat: every payload byte sent was copied into a packet, once per
   * transmission, on top of ustcp_send's copy. Gather: only ustcp_send's. */
  CHECK(sa.tx_bytes_copied > 600000 + 600000);
  CHECK_EQ(sb.tx_bytes_copied, 600000);
  run_close(&a);
  run_close(&b);
}

/* ---- callbacks that call the stack while holding the slices ---- */
struct reenter {
  struct run *r;
  int calls;
  bool abort_now;
  bool grow;
  uint8_t copy[70000];
};
static void reenter_out(void *ctx, const struct iovec *iov, int cnt)
{
  struct reenter *x = ctx;
  size_t n = 0;
  for (int i = 0; i < cnt; i++) {
    memcpy(x->copy + n, iov[i].iov_base, iov[i].iov_len);
    n += iov[i].iov_len;
  }
  x->calls++;
  if (x->grow && cnt > 1) {
    /* A send that outgrows the ring's storage moves it: the old storage must
     * stay readable until this callback returns (ASan checks the read). */
    int big = 4 * 1024 * 1024;
    ustcp_setsockopt(x->r->c, x->r->cfd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &big, sizeof big);
    static uint8_t junk[300000];
    ustcp_send(x->r->c, x->r->cfd, junk, sizeof junk, 0);
    volatile uint8_t sum = 0;
    for (int i = 1; i < cnt; i++)
      for (size_t k = 0; k < iov[i].iov_len; k++) sum ^= ((const uint8_t *)iov[i].iov_base)[k];
    (void)sum;
    x->grow = false;
  }
  if (x->abort_now && cnt > 1) {
    /* The rest of this event's segments lose their payload: stale. */
    ustcp_abort(x->r->c, x->r->cfd);
    x->abort_now = false;
  }
  sim_send(x->r->sn.net, x->r->sn.hosts[0].id, x->copy, n);
}

static void reentry_from_output(void)
{
  static struct run r;
  static struct reenter x;
  run_open(&r, 11, false, NULL);
  memset(&x, 0, sizeof x);
  x.r = &r;
  x.grow = true;
  ustcp_set_output_iov(r.c, reenter_out, &x);
  static uint8_t data[12000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)i;
  CHECK_EQ(ustcp_send(r.c, r.cfd, data, sizeof data, 0), (ssize_t)sizeof data);
  CHECK(x.calls > 0);
  CHECK(!x.grow);
  sn_advance(&r.sn, 50 * MS);
  /* Now abort from inside the callback: the burst's later segments are stale. */
  x.abort_now = true;
  struct ustcp_stats st0, st1;
  ustcp_get_stats(r.c, &st0);
  int big = 1 << 20;
  ustcp_setsockopt(r.s, r.sfd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &big, sizeof big);
  sn_advance(&r.sn, 2 * SEC);
  ustcp_get_stats(r.c, &st1);
  CHECK(!x.abort_now);
  CHECK(st1.out_iov_stale > st0.out_iov_stale);
  run_close(&r);
}

/* ---- allocation failures during a gather transfer ---- */
static unsigned fail_every, fail_count;
static bool fail_some(void *ctx, size_t n)
{
  (void)ctx; (void)n;
  return fail_every && ++fail_count % fail_every == 0;
}
static void gather_alloc_fail(void)
{
  for (unsigned every = 2; every <= 7; every++) {
    static struct run r;
    run_open(&r, 100 + every, true, NULL);
    fail_every = every;
    fail_count = 0;
    ustcp_set_alloc_fail(r.c, fail_some, NULL);
    ustcp_set_alloc_fail(r.s, fail_some, NULL);
    CHECK(transfer(&r, 200000, every));
    ustcp_set_alloc_fail(r.c, NULL, NULL);
    ustcp_set_alloc_fail(r.s, NULL, NULL);
    struct ustcp_stats st, ss;
    ustcp_get_stats(r.c, &st);
    ustcp_get_stats(r.s, &ss);
    CHECK(st.alloc_failures + ss.alloc_failures > 0);
    CHECK_EQ(st.out_iov_stale, 0);
    run_close(&r);
  }
  fail_every = 0;
}

/* ---- direct access ---- */
struct drx {
  uint32_t salt;
  uint64_t got;
  size_t limit;          /* consume at most this many a slice */
  bool bad;
  unsigned calls;
  struct ustcp_stack *s;
  int fd;
  int nested_rc;
  bool try_nested;
};
static size_t drx_fn(void *ctx, const uint8_t *p, size_t n)
{
  struct drx *d = ctx;
  d->calls++;
  if (d->try_nested) {
    uint8_t b[4];
    d->nested_rc = (int)ustcp_recv(d->s, d->fd, b, sizeof b, 0);
    d->try_nested = false;
  }
  size_t take = n < d->limit ? n : d->limit;
  for (size_t i = 0; i < take; i++)
    if (p[i] != sn_pattern(d->salt, d->got + i)) d->bad = true;
  d->got += take;
  return take;
}
struct dtx {
  uint32_t salt;
  uint64_t sent, total;
  size_t limit;
  unsigned calls;
};
static size_t dtx_fn(void *ctx, uint8_t *p, size_t n)
{
  struct dtx *d = ctx;
  d->calls++;
  size_t take = n < d->limit ? n : d->limit;
  if (take > d->total - d->sent) take = (size_t)(d->total - d->sent);
  for (size_t i = 0; i < take; i++) p[i] = sn_pattern(d->salt, d->sent + i);
  d->sent += take;
  return take;
}

static void direct_stream(void)
{
  static struct run r;
  run_open(&r, 21, true, NULL);
  struct dtx tx = {5, 0, 1500000, 3333, 0};
  struct drx rx = {5, 0, 777, false, 0, r.s, r.sfd, 0, false};
  uint64_t end = sim_now(r.sn.net) + 60 * SEC;
  struct ustcp_stats c0, s0;
  ustcp_get_stats(r.c, &c0);
  ustcp_get_stats(r.s, &s0);
  while (rx.got < tx.total && sim_now(r.sn.net) < end) {
    while (tx.sent < tx.total) {
      ssize_t n = ustcp_send_direct(r.c, r.cfd, 1 << 20, 0, dtx_fn, &tx);
      if (n == -EAGAIN) break;
      CHECK(n > 0);
      if (n <= 0) break;
    }
    for (;;) {
      ssize_t n = ustcp_recv_direct(r.s, r.sfd, drx_fn, &rx);
      if (n == -EAGAIN) break;
      CHECK(n > 0);
      if (n <= 0) break;
    }
    sn_advance(&r.sn, 1 * MS);
  }
  CHECK_EQ(rx.got, tx.total);
  CHECK(!rx.bad);
  CHECK(rx.calls > tx.total / 777 / 2);   /* partial consumption, many calls */
  struct ustcp_stats c1, s1;
  ustcp_get_stats(r.c, &c1);
  ustcp_get_stats(r.s, &s1);
  /* Gather + direct send: no payload copy on the way out. Direct receive:
   * only the packet -> receive buffer copy (once per byte; a retransmitted
   * duplicate is not copied again). */
  CHECK_EQ(c1.tx_bytes_copied - c0.tx_bytes_copied, 0);
  CHECK_EQ(s1.rx_bytes_copied - s0.rx_bytes_copied, tx.total);
  /* The end of the stream after the data, then 0 without calling fn. */
  CHECK_EQ(ustcp_shutdown(r.c, r.cfd, USTCP_SHUT_WR), 0);
  sn_advance(&r.sn, 50 * MS);
  unsigned calls = rx.calls;
  CHECK_EQ(ustcp_recv_direct(r.s, r.sfd, drx_fn, &rx), 0);
  CHECK_EQ(rx.calls, calls);
  /* send after shutdown(SHUT_WR): EPIPE, fn not called */
  calls = tx.calls;
  CHECK_EQ(ustcp_send_direct(r.c, r.cfd, 100, 0, dtx_fn, &tx), -EPIPE);
  CHECK_EQ(tx.calls, calls);
  run_close(&r);
}

static void direct_errors_and_window(void)
{
  static struct run r;
  run_open(&r, 31, false, NULL);
  struct drx rx = {9, 0, 1u << 30, false, 0, r.s, r.sfd, 0, false};
  struct dtx tx = {9, 0, 1u << 30, 1u << 30, 0};
  /* nothing yet: EAGAIN, fn not called */
  CHECK_EQ(ustcp_recv_direct(r.s, r.sfd, drx_fn, &rx), -EAGAIN);
  CHECK_EQ(rx.calls, 0);
  CHECK_EQ(ustcp_recv_direct(r.s, 999, drx_fn, &rx), -EBADF);
  CHECK_EQ(ustcp_recv_direct(r.s, r.lfd, drx_fn, &rx), -ENOTCONN);
  CHECK_EQ(ustcp_recv_direct(r.s, r.sfd, NULL, &rx), -EFAULT);
  CHECK_EQ(ustcp_send_direct(r.c, r.cfd, 0, 0, dtx_fn, &tx), 0);
  CHECK_EQ(ustcp_send_direct(r.c, r.cfd, 10, USTCP_MSG_OOB, dtx_fn, &tx), -EOPNOTSUPP);
  CHECK_EQ(ustcp_send_direct(r.s, r.lfd, 10, 0, dtx_fn, &tx), -EPIPE);
  /* Fill the receiver's window while it does not read: the sender's buffer
   * fills and send_direct says EAGAIN without calling fn. */
  for (int i = 0; i < 400; i++) {
    ustcp_send_direct(r.c, r.cfd, 1 << 20, 0, dtx_fn, &tx);
    sn_advance(&r.sn, 5 * MS);
  }
  unsigned calls = tx.calls;
  CHECK_EQ(ustcp_send_direct(r.c, r.cfd, 1 << 20, 0, dtx_fn, &tx), -EAGAIN);
  CHECK_EQ(tx.calls, calls);
  struct ustcp_tcp_info ti;
  CHECK_EQ(ustcp_get_info(r.c, r.cfd, &ti), 0);
  CHECK_EQ(ti.snd_wnd, 0);                /* the receiver's window is closed */
  /* Re-entry from fn: refused with EBUSY, counted; the read still happens. */
  rx.try_nested = true;
  rx.limit = 1u << 30;
  struct ustcp_stats st0, st1;
  ustcp_get_stats(r.s, &st0);
  struct ustcp_tcp_info si0, si1;
  CHECK_EQ(ustcp_get_info(r.s, r.sfd, &si0), 0);
  CHECK_EQ(si0.rcv_wnd, 0);               /* closed before the read */
  ssize_t n = ustcp_recv_direct(r.s, r.sfd, drx_fn, &rx);
  CHECK(n > 0);
  /* The read itself sent the window update (RFC 9293 §3.8.6.2.2). */
  CHECK_EQ(ustcp_get_info(r.s, r.sfd, &si1), 0);
  CHECK_EQ(si1.segs_out - si0.segs_out, 1);
  CHECK(si1.rcv_wnd > 0);
  CHECK_EQ(rx.nested_rc, -EBUSY);
  ustcp_get_stats(r.s, &st1);
  CHECK_EQ(st1.direct_reentry_refused - st0.direct_reentry_refused, 1);
  CHECK(!rx.bad);
  /* Reading everything opened the window: an update went out at once, and the
   * sender's view of the window is open again without a persist probe. */
  sn_advance(&r.sn, 20 * MS);
  CHECK_EQ(ustcp_get_info(r.c, r.cfd, &ti), 0);
  CHECK(ti.snd_wnd > 0);
  /* fn that consumes nothing: 0, the bytes stay for the next read */
  sn_advance(&r.sn, 200 * MS);
  rx.limit = 0;
  calls = rx.calls;
  CHECK_EQ(ustcp_recv_direct(r.s, r.sfd, drx_fn, &rx), 0);
  CHECK(rx.calls > calls);
  rx.limit = 1u << 30;
  uint64_t before = rx.got;
  CHECK(ustcp_recv_direct(r.s, r.sfd, drx_fn, &rx) > 0);
  CHECK(rx.got > before);
  CHECK(!rx.bad);
  /* An aborted peer: the error once, then end of stream. */
  CHECK_EQ(ustcp_abort(r.c, r.cfd), 0);
  sn_advance(&r.sn, 50 * MS);
  for (int i = 0; i < 1000; i++)
    if (ustcp_recv_direct(r.s, r.sfd, drx_fn, &rx) <= 0) break;
  CHECK_EQ(ustcp_recv_direct(r.s, r.sfd, drx_fn, &rx), 0);
  run_close(&r);
}

/* ---- the encoder: headers + checksum over slices == the flat packet ---- */
static void encode_gather_equals_flat(void)
{
  static uint8_t payload[3000], flat[4000], hdr[200], joined[4000];
  for (size_t i = 0; i < sizeof payload; i++) payload[i] = (uint8_t)(i * 131 + 7);
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = 40000;
  h.dst_port = 80;
  h.seq = 0x12345678;
  h.ack = 0x9abcdef0;
  h.flags = TCP_ACK | TCP_PSH;
  h.window = 502;
  h.opts.present = TCP_OPT_HAS_TS;
  h.opts.ts_val = 77;
  h.opts.ts_ecr = 99;
  unsigned bad = 0, cases = 0;
  size_t lens[] = {0, 1, 2, 3, 1447, 1448, 2999};
  for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
    size_t plen = lens[li];
    int fn = tcp_packet_encode(&h, payload, plen, CLIENT_IP, SERVER_IP, 5, flat, sizeof flat);
    /* every split into two slices, and a three-way split at odd points */
    for (size_t a = 0; a <= plen; a += (plen > 64 ? 7 : 1)) {
      for (size_t b = a; b <= plen; b += (plen > 64 ? 331 : 1)) {
        struct wire_slice sl[3] = {{payload, a}, {payload + a, b - a}, {payload + b, plen - b}};
        int hn = tcp_packet_encode_gather(&h, sl, 3, CLIENT_IP, SERVER_IP, 5, hdr, sizeof hdr);
        cases++;
        if (hn < 0 || (size_t)hn + plen != (size_t)fn) { bad++; continue; }
        memcpy(joined, hdr, (size_t)hn);
        memcpy(joined + hn, payload, plen);
        if (memcmp(joined, flat, (size_t)fn) != 0) bad++;
      }
    }
  }
  CHECK(cases > 1000);
  CHECK_EQ(bad, 0);
  /* too long for IPv4: refused */
  struct wire_slice big[2] = {{payload, 40000}, {payload, 40000}};
  CHECK(tcp_packet_encode_gather(&h, big, 2, CLIENT_IP, SERVER_IP, 5, hdr, sizeof hdr) < 0);
}

int main(void)
{
  encode_gather_equals_flat();
  gather_equals_flat(1);
  gather_equals_flat(2);
  reentry_from_output();
  gather_alloc_fail();
  direct_stream();
  direct_errors_and_window();
  (void)cur;
  return check_report();
}
