/* Send-side offload (issue 15 point 4): a link that segments TCP and completes
 * checksums (ustcp_set_link_offload), as a TUN device with IFF_VNET_HDR and
 * VIRTIO_NET_HDR_GSO_TCPV4 / F_NEEDS_CSUM does.
 *
 * The sender's link here is a fake one written in this file: it cuts every
 * frame the stack hands it into segments of gso_size payload bytes the way
 * Linux's tcp_gso_segment does (its own code, not the library's), checks each
 * segment, and puts the segments on the simulated network toward a receiver
 * without offloads, which verifies every checksum itself. Proven:
 *   - D1: the segments carry contiguous sequence numbers (the frame's sequence
 *     number plus the bytes before each), at most one MSS each, within the MTU;
 *   - D5: the frame's TCP checksum field holds the pseudo-header sum only (the
 *     link completes it); after segmentation every segment's IPv4 and TCP
 *     checksums verify, and the receiver counts no bad checksum;
 *   - frames of more than one MSS were sent at all, and per-connection counters
 *     still count segments of one MSS (data_segs_out);
 *   - the transfer is byte-exact (a position-dependent pattern), also on a
 *     lossy link, where retransmissions happen;
 *   - the capture callback sees what goes on the wire: the same segments, byte
 *     for byte, as the fake link produced, not the frames;
 *   - ustcp_tx_segment cuts a frame exactly as the fake link does;
 *   - with checksum offload alone, no frame exceeds one MSS;
 *   - H9 (self-connect) with offloads: byte-exact, checksums complete, nothing
 *     handed to the link, the capture shows segments.
 */
#include "check.h"
#include "simnet.h"

#define CLIENT_IP 0x0a000001u
#define SERVER_IP 0x0a000002u
#define MS USTCP_MSEC
#define SEC USTCP_SEC
#define MTU 1500

static uint16_t g16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t g32(const uint8_t *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static void s16(uint8_t *p, uint16_t v)
{
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}

/* RFC 1071 sum of 16-bit words, not folded. */
static uint32_t sum16(uint32_t s, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i + 1 < n; i += 2) s += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) s += (uint32_t)p[n - 1] << 8;
  return s;
}
static uint16_t fold(uint32_t s)
{
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)s;
}
static uint32_t pseudo(const uint8_t *ip, size_t tcp_len)
{
  uint32_t s = sum16(0, ip + 12, 8);
  return s + 6 + (uint32_t)tcp_len;
}

/* What went on the wire from the sender, kept for comparison with the capture. */
#define WIRE_MAX 400000
struct wire_log {
  uint8_t *bytes;
  size_t used, cap;
  size_t n;
  size_t *off, *len;
};
static void log_add(struct wire_log *w, const uint8_t *p, size_t len)
{
  if (w->n >= WIRE_MAX || w->used + len > w->cap) return;
  memcpy(w->bytes + w->used, p, len);
  w->off[w->n] = w->used;
  w->len[w->n] = len;
  w->used += len;
  w->n++;
}

struct fake_link {
  struct sn_host *h;               /* the sender's host in the simnet */
  uint64_t frames, gso_frames, segs, bad, max_frame;
  uint64_t not_partial;            /* a TCP frame whose field was not the pseudo sum */
  uint64_t tx_segment_mismatch;    /* ustcp_tx_segment cut it otherwise */
  struct wire_log wire, cap, cmp;
  bool compare_tx_segment;
};

static void cmp_add(void *ctx, const uint8_t *p, size_t len)
{
  log_add(&((struct fake_link *)ctx)->cmp, p, len);
}

/* Linux's tcp_gso_segment, as this test understands it, then the checks. */
static void fake_tx(void *ctx, const uint8_t *pkt, size_t len, const struct ustcp_tx_info *tx)
{
  struct fake_link *fl = ctx;
  fl->frames++;
  if (len > fl->max_frame) fl->max_frame = len;
  size_t ihl = (size_t)(pkt[0] & 0xf) * 4;
  size_t thl = (size_t)(pkt[ihl + 12] >> 4) * 4;
  size_t hdr = ihl + thl, payload = len - hdr;
  if (tx->hdr_len != hdr) fl->bad++;
  if (tx->csum_partial) {
    if (tx->csum_start != ihl || tx->csum_offset != 16) fl->bad++;
    if (g16(pkt + ihl + 16) != fold(pseudo(pkt, len - ihl))) fl->not_partial++;
  } else {
    fl->not_partial++;
  }
  size_t mss = tx->gso_size && tx->gso_size < payload ? tx->gso_size : payload;
  if (tx->gso_size) {
    fl->gso_frames++;
    if (payload <= tx->gso_size) fl->bad++;   /* a "frame" that needs no cutting */
  }
  if (fl->compare_tx_segment) {
    fl->cmp.used = fl->cmp.n = 0;
    if (ustcp_tx_segment(pkt, len, tx, cmp_add, fl) < 0) fl->tx_segment_mismatch++;
  }
  size_t nseg = mss ? (payload + mss - 1) / mss : 1;
  static uint8_t seg[65536];
  uint32_t seq0 = g32(pkt + ihl + 4);
  uint8_t flags = pkt[ihl + 13];
  for (size_t i = 0; i < nseg; i++) {
    size_t plen = payload - i * mss < mss ? payload - i * mss : mss;
    memcpy(seg, pkt, hdr);
    memcpy(seg + hdr, pkt + hdr + i * mss, plen);
    s16(seg + 2, (uint16_t)(hdr + plen));
    s16(seg + 4, (uint16_t)(g16(pkt + 4) + i));
    s16(seg + 10, 0);
    s16(seg + 10, (uint16_t)~fold(sum16(0, seg, ihl)));
    uint8_t *th = seg + ihl;
    uint32_t sq = seq0 + (uint32_t)(i * mss);
    th[4] = (uint8_t)(sq >> 24), th[5] = (uint8_t)(sq >> 16), th[6] = (uint8_t)(sq >> 8), th[7] = (uint8_t)sq;
    uint8_t f = flags;
    if (i + 1 < nseg) f &= (uint8_t)~(TCP_FIN | TCP_PSH);
    if (i > 0) f &= (uint8_t)~TCP_CWR;
    th[13] = f;
    s16(th + 16, 0);
    s16(th + 16, (uint16_t)~fold(sum16(pseudo(seg, thl + plen), th, thl + plen)));
    size_t slen = hdr + plen;
    /* D1, D5 after segmentation: within the MTU, one MSS at most, both checksums */
    struct tcp_packet tp;
    if (slen > MTU || tcp_packet_decode(seg, slen, &tp) != 0 || tp.tcp.seq != sq) fl->bad++;
    if (fl->compare_tx_segment &&
        (i >= fl->cmp.n || fl->cmp.len[i] != slen || memcmp(fl->cmp.bytes + fl->cmp.off[i], seg, slen)))
      fl->tx_segment_mismatch++;
    fl->segs++;
    log_add(&fl->wire, seg, slen);
    sim_send(fl->h->sn->net, fl->h->id, seg, slen);
  }
  if (fl->compare_tx_segment && fl->cmp.n != nseg) fl->tx_segment_mismatch++;
}

static void on_cap(void *ctx, bool outgoing, const uint8_t *pkt, size_t len, uint64_t now)
{
  (void)now;
  if (outgoing) log_add(&((struct fake_link *)ctx)->cap, pkt, len);
}

static void log_init(struct wire_log *w, size_t cap)
{
  memset(w, 0, sizeof *w);
  w->cap = cap;
  w->bytes = malloc(cap);
  w->off = calloc(WIRE_MAX, sizeof *w->off);
  w->len = calloc(WIRE_MAX, sizeof *w->len);
}
static void log_free(struct wire_log *w)
{
  free(w->bytes);
  free(w->off);
  free(w->len);
}

/* As sn_stream_send, in large writes: an application writing 8 KiB at a time
 * gets frames of 8 KiB (each write is sent at once), as with Linux. */
static void send_big(struct sn_stream *st)
{
  static uint8_t buf[256 * 1024];
  while (st->sent < st->total) {
    int ev = ustcp_sock_events(st->tx, st->tx_fd);
    if (ev < 0 || !(ev & USTCP_POLLOUT)) break;
    uint64_t n = st->total - st->sent;
    if (n > sizeof buf) n = sizeof buf;
    for (uint64_t i = 0; i < n; i++) buf[i] = sn_pattern(st->salt, st->sent + i);
    ssize_t r = ustcp_send(st->tx, st->tx_fd, buf, (size_t)n, 0);
    if (r <= 0) break;
    st->sent += (uint64_t)r;
  }
}

static void run(uint64_t seed, uint64_t bytes, double loss, uint64_t delay_us, bool gso)
{
  static struct simnet sn;
  static struct fake_link fl;
  memset(&fl, 0, sizeof fl);
  log_init(&fl.wire, 64u << 20);
  log_init(&fl.cap, 64u << 20);
  log_init(&fl.cmp, 1u << 20);
  fl.compare_tx_segment = true;
  sn_init(&sn, seed);
  struct ustcp_stack *c = sn_add(&sn, "client", CLIENT_IP, NULL);
  struct ustcp_stack *s = sn_add(&sn, "server", SERVER_IP, NULL);
  fl.h = &sn.hosts[0];
  ustcp_set_link_offload(c, gso ? 65535 : 0, true, fake_tx, &fl);
  ustcp_set_capture_cb(c, on_cap, &fl);
  int lfd = ustcp_socket(s);
  struct ustcp_addr sa = {SERVER_IP, 80};
  CHECK_EQ(ustcp_bind(s, lfd, &sa), 0);
  CHECK_EQ(ustcp_listen(s, lfd, 8), 0);
  int cfd = ustcp_socket(c);
  int sz = 1 << 20;
  CHECK_EQ(ustcp_setsockopt(c, cfd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &sz, sizeof sz), 0);
  CHECK_EQ(ustcp_connect(c, cfd, &sa), -EINPROGRESS);
  sn_advance(&sn, 100 * MS);
  CHECK_EQ(sn_state(c, cfd), USTCP_ESTABLISHED);
  int sfd = ustcp_accept(s, lfd, NULL);
  CHECK(sfd >= 0);
  struct sim_link_cfg lc = {.delay_us = delay_us, .bandwidth_bps = 10000000000ull, .loss = loss};
  sim_set_all_links(sn.net, &lc);
  struct sn_stream up = {c, s, cfd, sfd, (uint32_t)seed, bytes, 0, 0, false, false, 0};
  struct sn_stream *sts[1] = {&up};
  uint64_t end = sim_now(sn.net) + 600 * SEC;
  while (up.got < bytes && sim_now(sn.net) < end) {
    send_big(&up);
    sn_stream_recv(&up);
    if (up.got >= bytes || !sim_step(sn.net, end)) break;
    sn_sync(&sn);
  }
  (void)sts;
  bool ok = up.got == bytes;
  CHECK(ok);
  CHECK_EQ(up.got, bytes);           /* byte-exact: sn_stream_recv checks the pattern */
  CHECK(!up.bad);
  sn_advance(&sn, 2 * SEC);
  struct ustcp_tcp_info ci;
  CHECK_EQ(ustcp_get_info(c, cfd, &ci), 0);
  struct ustcp_stats ss;
  ustcp_get_stats(s, &ss);
  CHECK_EQ(ss.tcp_bad_checksum, 0);
  CHECK_EQ(fl.bad, 0);
  CHECK_EQ(fl.tx_segment_mismatch, 0);
  uint32_t mss = ci.snd_mss;
  fprintf(stderr, "  seed %llu loss %.3f gso %d: %llu frames (%llu GSO, largest %llu B), %llu segments, "
          "data_segs_out %llu, retrans %llu, mss %u\n",
          (unsigned long long)seed, loss, gso, (unsigned long long)fl.frames,
          (unsigned long long)fl.gso_frames, (unsigned long long)fl.max_frame,
          (unsigned long long)fl.segs, (unsigned long long)ci.data_segs_out,
          (unsigned long long)ci.retrans_segs, mss);
  CHECK_EQ(fl.not_partial, 0);         /* every TCP packet left its checksum to the link */
  if (gso) {
    CHECK(fl.gso_frames > 0);          /* frames of several MSS were sent */
    /* frames of at least half the initial window (IW10, RFC 6928, cut in
     * two by tcp_cwnd_test's half-cwnd cap); later frames are as large as the
     * ACK clock opens the window: a receiver that gets segments one by one
     * ACKs every second one (a kernel that gets the frames whole, over TUN,
     * ACKs frames: tests/sh/interop_offload.sh) */
    CHECK(fl.max_frame >= 40 + 5u * mss);
    if (loss == 0) CHECK(fl.segs >= 2 * fl.frames);
    CHECK(fl.frames < fl.segs);
    /* the counters count MSS-sized segments: at least bytes / MSS of them */
    CHECK(ci.data_segs_out >= bytes / mss);
    if (loss > 0) CHECK(ci.retrans_segs > 0);
  } else {
    CHECK_EQ(fl.gso_frames, 0);
    CHECK(fl.max_frame <= MTU);
    CHECK_EQ(fl.frames, fl.segs);
  }
  /* the capture saw exactly what went on the wire */
  CHECK_EQ(fl.cap.n, fl.wire.n);
  CHECK_EQ(fl.cap.used, fl.wire.used);
  bool same = fl.cap.n == fl.wire.n && fl.cap.used == fl.wire.used &&
              memcmp(fl.cap.bytes, fl.wire.bytes, fl.wire.used) == 0;
  CHECK(same);
  CHECK_EQ(ustcp_close(c, cfd), 0);
  CHECK_EQ(ustcp_close(s, sfd), 0);
  CHECK_EQ(ustcp_close(s, lfd), 0);
  sn_advance(&sn, 300 * SEC);
  ustcp_get_stats(c, &ss);
  CHECK_EQ(ss.mem_bytes, 0);
  sn_free(&sn);
  log_free(&fl.wire);
  log_free(&fl.cap);
  log_free(&fl.cmp);
}

/* H9 with offloads: a connection to the stack's own address never meets the
 * link; its frames come back whole through the loopback queue, with complete
 * checksums (the receiver checks them), and the capture still shows segments. */
static uint64_t self_tx_calls;
static void self_tx(void *ctx, const uint8_t *pkt, size_t len, const struct ustcp_tx_info *tx)
{
  (void)ctx, (void)pkt, (void)len, (void)tx;
  self_tx_calls++;
}
static uint64_t self_cap_big, self_cap_n;
static void self_cap(void *ctx, bool outgoing, const uint8_t *pkt, size_t len, uint64_t now)
{
  (void)ctx, (void)pkt, (void)now;
  if (!outgoing) return;
  self_cap_n++;
  if (len > MTU) self_cap_big++;
}

static void self_connect(void)
{
  struct simnet sn;
  sn_init(&sn, 9);
  struct ustcp_stack *a = sn_add(&sn, "self", CLIENT_IP, NULL);
  ustcp_set_link_offload(a, 65535, true, self_tx, NULL);
  ustcp_set_capture_cb(a, self_cap, NULL);
  int fd = ustcp_socket(a);
  struct ustcp_addr me = {CLIENT_IP, 5555};
  CHECK_EQ(ustcp_bind(a, fd, &me), 0);
  CHECK_EQ(ustcp_connect(a, fd, &me), -EINPROGRESS);
  sn_advance(&sn, 100 * MS);
  CHECK_EQ(sn_state(a, fd), USTCP_ESTABLISHED);
  struct sn_stream st = {a, a, fd, fd, 77, 1u << 20, 0, 0, false, false, 0};
  uint64_t end = sim_now(sn.net) + 10 * SEC;
  while (st.got < st.total && sim_now(sn.net) < end) {
    send_big(&st);
    sn_stream_recv(&st);
    sn_advance(&sn, 1 * MS);
  }
  CHECK_EQ(st.got, 1u << 20);
  CHECK(!st.bad);
  struct ustcp_stats ss;
  ustcp_get_stats(a, &ss);
  CHECK_EQ(ss.tcp_bad_checksum, 0);
  CHECK_EQ(self_tx_calls, 0);     /* nothing went to the link */
  CHECK(self_cap_n > 700);        /* 1 MiB as MSS-sized segments, and ACKs */
  CHECK_EQ(self_cap_big, 0);
  CHECK_EQ(ustcp_close(a, fd), 0);
  sn_advance(&sn, 200 * SEC);
  sn_free(&sn);
}

int main(void)
{
  self_connect();
  run(1, 8u << 20, 0, 50, true);           /* 100 us RTT: 64 KiB frames */
  run(2, 4u << 20, 0.01, 2 * MS, true);    /* losses: retransmissions */
  run(3, 4u << 20, 0.05, 50, true);
  run(4, 2u << 20, 0, 50, false);          /* checksum offload alone: one MSS per packet */
  return check_report();
}
