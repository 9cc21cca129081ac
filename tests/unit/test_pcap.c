/* pcap files: the writer's round trip and exact header bytes; hand-made files in every
 * supported link type and byte order (RAW, IPv4, Ethernet with VLAN/QinQ tags and
 * non-IPv4 frames, SLL, SLL2, NULL); truncated, lying and foreign files give errors,
 * not crashes; and, when tshark is installed, a realistic TCP exchange produced
 * through the simulator decodes cleanly in tshark with checksum validation on. */
#include "check.h"
#include "link/pcap.h"
#include "link/sim.h"
#include "wire/wire.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ADDR_C 0xc0000201u /* 192.0.2.1 */
#define ADDR_S 0xc0000202u /* 192.0.2.2 */

static char tmp_paths[32][64];
static int ntmp;

/* A fresh temporary path (removed at exit). */
static const char *tmp_path(void)
{
  char *p = tmp_paths[ntmp++ % 32];
  snprintf(p, 64, "/tmp/ustcp_pcap_XXXXXX");
  int fd = mkstemp(p);
  CHECK(fd >= 0);
  if (fd >= 0)
    close(fd);
  return p;
}

static void cleanup(void)
{
  for (int i = 0; i < ntmp && i < 32; i++)
    unlink(tmp_paths[i]);
}

static size_t mkpkt(uint8_t *buf, uint8_t flags, uint32_t seq, size_t plen)
{
  uint8_t payload[1500];
  for (size_t i = 0; i < plen; i++)
    payload[i] = (uint8_t)(seq + i);
  struct tcp_hdr h = {.src_port = 40000, .dst_port = 80, .seq = seq, .ack = 7,
                      .flags = flags, .window = 1000};
  int n = tcp_packet_encode(&h, plen ? payload : NULL, plen, ADDR_C, ADDR_S, 1, buf, 2048);
  CHECK(n > 0);
  return n > 0 ? (size_t)n : 0;
}

/* ---- a builder for hand-made pcap files ---- */

struct fbuf {
  uint8_t b[8192];
  size_t n;
  bool be;  /* big-endian fields */
};

static void put16(struct fbuf *f, uint16_t v)
{
  uint8_t *p = f->b + f->n;
  if (f->be) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
  else { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
  f->n += 2;
}

static void put32(struct fbuf *f, uint32_t v)
{
  if (f->be) { put16(f, (uint16_t)(v >> 16)); put16(f, (uint16_t)v); }
  else { put16(f, (uint16_t)v); put16(f, (uint16_t)(v >> 16)); }
}

static void put_bytes(struct fbuf *f, const void *p, size_t n)
{
  if (n)
    memcpy(f->b + f->n, p, n);
  f->n += n;
}

static void file_header(struct fbuf *f, bool be, uint32_t magic, uint32_t linktype)
{
  f->n = 0;
  f->be = be;
  put32(f, magic);
  put16(f, 2);
  put16(f, 4);
  put32(f, 0);
  put32(f, 0);
  put32(f, 65535);
  put32(f, linktype);
}

/* A record: link header bytes lh, then the packet pkt. */
static void record(struct fbuf *f, uint32_t sec, uint32_t frac, const uint8_t *lh, size_t lhn,
                   const uint8_t *pkt, size_t n)
{
  put32(f, sec);
  put32(f, frac);
  put32(f, (uint32_t)(lhn + n));
  put32(f, (uint32_t)(lhn + n));
  put_bytes(f, lh, lhn);
  put_bytes(f, pkt, n);
}

static const char *save(const struct fbuf *f)
{
  const char *path = tmp_path();
  FILE *fp = fopen(path, "wb");
  CHECK(fp != NULL);
  if (fp) {
    fwrite(f->b, 1, f->n, fp);
    fclose(fp);
  }
  return path;
}

static bool read_want6;   /* read_all asks for IPv6 packets too (pcap_reader_want_ipv6) */

/* Reads every packet of path; checks each against want[i] (length wantn[i]) and
 * timestamps against ts[i] when given. Returns the packet count, or -1 on error. */
static int read_all(const char *path, int linktype, const uint8_t *const *want,
                    const size_t *wantn, const uint64_t *ts, int nwant)
{
  char err[256] = "";
  struct pcap_reader *r = pcap_reader_open(path, err, sizeof err);
  CHECK(r != NULL);
  if (!r) {
    fprintf(stderr, "open: %s\n", err);
    return -1;
  }
  CHECK_EQ(pcap_reader_linktype(r), linktype);
  pcap_reader_want_ipv6(r, read_want6);
  int count = 0, rc;
  uint64_t t;
  const uint8_t *p;
  size_t n;
  while ((rc = pcap_reader_next(r, &t, &p, &n, err, sizeof err)) == 1) {
    if (count < nwant) {
      CHECK_EQ(n, wantn[count]);
      if (n == wantn[count])
        CHECK_MEM(p, want[count], n);
      if (ts)
        CHECK_EQ(t, ts[count]);
    }
    count++;
  }
  pcap_reader_close(r);
  if (rc < 0) {
    fprintf(stderr, "next: %s\n", err);
    return -1;
  }
  return count;
}

static void test_roundtrip(void)
{
  uint8_t p[4][2048];
  size_t n[4];
  n[0] = mkpkt(p[0], TCP_SYN, 1, 0);
  n[1] = mkpkt(p[1], TCP_ACK, 2, 1000);
  n[2] = mkpkt(p[2], TCP_ACK | TCP_PSH, 3, 1);
  n[3] = mkpkt(p[3], TCP_FIN | TCP_ACK, 4, 0);
  const uint64_t ts[4] = {0, 999999, 1000000, 1700000000123456ull};
  const char *path = tmp_path();
  struct pcap_writer *w = pcap_writer_open(path);
  CHECK(w != NULL);
  for (int i = 0; i < 4; i++)
    CHECK_EQ(pcap_writer_write(w, ts[i], p[i], n[i]), 0);
  CHECK_EQ(pcap_writer_close(w), 0);

  /* The exact header: little-endian usec magic, 2.4, snaplen 65535, RAW. */
  FILE *f = fopen(path, "rb");
  uint8_t h[40];
  CHECK_EQ(fread(h, 1, sizeof h, f), sizeof h);
  fclose(f);
  static const uint8_t hdr[24] = {0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0,
                                  0, 0, 0, 0, 0xff, 0xff, 0, 0, 101, 0, 0, 0};
  CHECK_MEM(h, hdr, 24);
  CHECK_EQ(h[32], n[0]); /* incl_len of the first record */
  CHECK_EQ(h[36], n[0]); /* orig_len */

  const uint8_t *want[4] = {p[0], p[1], p[2], p[3]};
  CHECK_EQ(read_all(path, PCAP_LINKTYPE_RAW, want, n, ts, 4), 4);

  /* A wrapped FILE that the writer does not own stays open after close. */
  FILE *t = tmpfile();
  CHECK(t != NULL);
  w = pcap_writer_from_file(t, 0);
  CHECK(w != NULL);
  CHECK_EQ(pcap_writer_write(w, 5, p[0], n[0]), 0);
  CHECK_EQ(pcap_writer_close(w), 0);
  CHECK_EQ(ftell(t), 24 + 16 + (long)n[0]);
  fclose(t);

  errno = 0;
  CHECK(pcap_writer_open("/nonexistent-dir/x.pcap") == NULL);
  CHECK(errno != 0);
  CHECK_EQ(pcap_writer_close(NULL), 0);
}

static void test_raw_big_endian_and_nsec(void)
{
  uint8_t a[2048], b[2048];
  size_t na = mkpkt(a, TCP_SYN, 10, 0), nb = mkpkt(b, TCP_ACK, 11, 33);
  const uint8_t *want[2] = {a, b};
  size_t wantn[2] = {na, nb};
  static struct fbuf f;

  /* Big-endian, microseconds, with an IPv6 record (version 6) and an empty record
   * in between, both skipped. */
  file_header(&f, true, 0xa1b2c3d4u, PCAP_LINKTYPE_RAW);
  record(&f, 1, 2, NULL, 0, a, na);
  static const uint8_t v6[40] = {0x60};
  record(&f, 1, 3, NULL, 0, v6, sizeof v6);
  record(&f, 1, 4, NULL, 0, NULL, 0);
  record(&f, 3, 999999, NULL, 0, b, nb);
  const uint64_t ts[2] = {1000002, 3999999};
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_RAW, want, wantn, ts, 2), 2);

  /* Little-endian nanoseconds. */
  file_header(&f, false, 0xa1b23c4du, PCAP_LINKTYPE_RAW);
  record(&f, 2, 123456789, NULL, 0, a, na);
  record(&f, 2, 999, NULL, 0, b, nb);
  const uint64_t ts_ns[2] = {2123456, 2000000};
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_RAW, want, wantn, ts_ns, 2), 2);

  /* Big-endian nanoseconds, LINKTYPE_IPV4. */
  file_header(&f, true, 0xa1b23c4du, PCAP_LINKTYPE_IPV4);
  record(&f, 0, 5000, NULL, 0, a, na);
  record(&f, 0, 6000, NULL, 0, b, nb);
  const uint64_t ts_be[2] = {5, 6};
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_IPV4, want, wantn, ts_be, 2), 2);

  /* The FCS bits in the upper link-type field do not hide the link type. */
  file_header(&f, false, 0xa1b2c3d4u, 0x10000000u | PCAP_LINKTYPE_RAW);
  record(&f, 0, 0, NULL, 0, a, na);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_RAW, want, wantn, NULL, 1), 1);
}

static void test_ethernet(void)
{
  uint8_t a[2048], b[2048], c[2048];
  size_t na = mkpkt(a, TCP_SYN, 20, 0), nb = mkpkt(b, TCP_ACK, 21, 100),
         nc = mkpkt(c, TCP_RST, 22, 0);
  static struct fbuf f;
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_ETHERNET);
  uint8_t eth[22] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

  /* ARP: skipped. */
  eth[12] = 0x08; eth[13] = 0x06;
  static const uint8_t arp[28] = {0, 1, 8, 0, 6, 4, 0, 1};
  record(&f, 1, 0, eth, 14, arp, sizeof arp);

  /* 802.1Q VLAN 100 carrying IPv4, padded to the 60-byte minimum plus a 4-byte
   * FCS: the padding is trimmed away. */
  uint8_t padded[128];
  memcpy(padded, a, na);
  memset(padded + na, 0xee, 10);
  eth[12] = 0x81; eth[13] = 0x00; eth[14] = 0x00; eth[15] = 100; eth[16] = 0x08; eth[17] = 0x00;
  record(&f, 1, 1, eth, 18, padded, na + 10);

  /* IPv6: skipped. */
  eth[12] = 0x86; eth[13] = 0xdd;
  static const uint8_t v6[40] = {0x60};
  record(&f, 1, 2, eth, 14, v6, sizeof v6);

  /* Plain IPv4. */
  eth[12] = 0x08; eth[13] = 0x00;
  record(&f, 1, 3, eth, 14, b, nb);

  /* QinQ: 802.1ad outer tag, 802.1Q inner tag, IPv4. */
  uint8_t qinq[22];
  memcpy(qinq, eth, 12);
  static const uint8_t tags[10] = {0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00};
  memcpy(qinq + 12, tags, 10);
  record(&f, 1, 4, qinq, 22, c, nc);

  /* VLAN-tagged ARP: skipped. */
  eth[12] = 0x81; eth[13] = 0x00; eth[16] = 0x08; eth[17] = 0x06;
  record(&f, 1, 5, eth, 18, arp, sizeof arp);

  const uint8_t *want[3] = {a, b, c};
  size_t wantn[3] = {na, nb, nc};
  const uint64_t ts[3] = {1000001, 1000003, 1000004};
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_ETHERNET, want, wantn, ts, 3), 3);

  /* Big-endian Ethernet. */
  file_header(&f, true, 0xa1b2c3d4u, PCAP_LINKTYPE_ETHERNET);
  eth[12] = 0x08; eth[13] = 0x00;
  record(&f, 7, 8, eth, 14, b, nb);
  const uint64_t ts2[1] = {7000008};
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_ETHERNET, want + 1, wantn + 1, ts2, 1), 1);
}

static void test_cooked_and_null(void)
{
  uint8_t a[2048], b[2048];
  size_t na = mkpkt(a, TCP_SYN | TCP_ACK, 30, 0), nb = mkpkt(b, TCP_ACK, 31, 7);
  const uint8_t *want[2] = {a, b};
  size_t wantn[2] = {na, nb};
  static struct fbuf f;
  static const uint8_t arp[28] = {0, 1, 8, 0, 6, 4, 0, 1};

  /* SLL: packet type, ARPHRD_ETHER, address length 6, address (8), protocol. */
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_LINUX_SLL);
  uint8_t sll[16] = {0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00};
  record(&f, 0, 1, sll, 16, a, na);
  sll[14] = 0x08; sll[15] = 0x06;
  record(&f, 0, 2, sll, 16, arp, sizeof arp);
  sll[15] = 0x00;
  record(&f, 0, 3, sll, 16, b, nb);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_LINUX_SLL, want, wantn, NULL, 2), 2);

  /* SLL2: protocol, reserved, ifindex, ARPHRD, packet type, address length, address. */
  file_header(&f, true, 0xa1b2c3d4u, PCAP_LINKTYPE_LINUX_SLL2);
  uint8_t sll2[20] = {0x08, 0x06, 0, 0, 0, 0, 0, 2, 0, 1, 4, 6, 1, 2, 3, 4, 5, 6, 0, 0};
  record(&f, 0, 1, sll2, 20, arp, sizeof arp);
  sll2[1] = 0x00;
  record(&f, 0, 2, sll2, 20, a, na);
  record(&f, 0, 3, sll2, 20, b, nb);
  const uint64_t ts[2] = {2, 3};
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_LINUX_SLL2, want, wantn, ts, 2), 2);

  /* NULL/loopback: AF_INET in either byte order; AF_INET6 (BSD values 24/28/30) skipped. */
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_NULL);
  static const uint8_t af_le[4] = {2, 0, 0, 0}, af_be[4] = {0, 0, 0, 2}, af6[4] = {30, 0, 0, 0};
  record(&f, 0, 1, af_le, 4, a, na);
  record(&f, 0, 2, af6, 4, a, na);
  record(&f, 0, 3, af_be, 4, b, nb);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_NULL, want, wantn, NULL, 2), 2);
}

/* Opening fails, with a reason containing what. */
static void expect_open_error(const struct fbuf *f, const char *what)
{
  char err[256] = "";
  struct pcap_reader *r = pcap_reader_open(save(f), err, sizeof err);
  CHECK(r == NULL);
  if (!strstr(err, what))
    fprintf(stderr, "error '%s' lacks '%s'\n", err, what);
  CHECK(strstr(err, what) != NULL);
  CHECK(strchr(err, '\n') == NULL);
  pcap_reader_close(r);
}

/* Opens fine; the first next() fails with a reason containing what. */
static void expect_next_error(const struct fbuf *f, const char *what, int ok_before)
{
  char err[256] = "";
  struct pcap_reader *r = pcap_reader_open(save(f), err, sizeof err);
  CHECK(r != NULL);
  if (!r)
    return;
  uint64_t t;
  const uint8_t *p;
  size_t n;
  for (int i = 0; i < ok_before; i++)
    CHECK_EQ(pcap_reader_next(r, &t, &p, &n, err, sizeof err), 1);
  CHECK_EQ(pcap_reader_next(r, &t, &p, &n, err, sizeof err), -1);
  if (!strstr(err, what))
    fprintf(stderr, "error '%s' lacks '%s'\n", err, what);
  CHECK(strstr(err, what) != NULL);
  pcap_reader_close(r);
}

static void test_errors(void)
{
  static struct fbuf f;
  uint8_t a[2048];
  size_t na = mkpkt(a, TCP_SYN, 40, 0);
  char err[256] = "";

  CHECK(pcap_reader_open("/nonexistent/file.pcap", err, sizeof err) == NULL);
  CHECK(strstr(err, "/nonexistent/file.pcap") != NULL);
  CHECK(pcap_reader_open("/nonexistent/file.pcap", NULL, 0) == NULL);

  f.n = 0;
  put_bytes(&f, "hello, this is not a pcap file\n", 31);
  expect_open_error(&f, "not a pcap file");
  f.n = 0;
  expect_open_error(&f, "not a pcap file"); /* empty */
  f.n = 0;
  put_bytes(&f, "\x0a\x0d\x0d\x0a\x1c\0\0\0\x4d\x3c\x2b\x1a", 12);
  expect_open_error(&f, "pcapng");
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_RAW);
  f.n = 10;
  expect_open_error(&f, "truncated");
  file_header(&f, false, 0xa1b2c3d4u, 105); /* 802.11 */
  expect_open_error(&f, "unsupported link type 105");
  file_header(&f, true, 0xa1b2c3d4u, PCAP_LINKTYPE_RAW);
  f.b[5] = 9; /* version 2 -> 9 (big-endian major at bytes 4-5) */
  f.b[4] = 0;
  expect_open_error(&f, "version");

  /* A header alone: end of file at once. */
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_RAW);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_RAW, NULL, NULL, NULL, 0), 0);

  /* Truncated record header, after one good record. */
  record(&f, 0, 0, NULL, 0, a, na);
  put32(&f, 1);
  put32(&f, 2);
  expect_next_error(&f, "truncated record header", 1);

  /* Truncated record body: says 100 bytes, has 50. */
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_RAW);
  put32(&f, 0); put32(&f, 0); put32(&f, 100); put32(&f, 100);
  put_bytes(&f, a, 50);
  expect_next_error(&f, "truncated", 0);

  /* A lying length far beyond the cap: rejected before any allocation. */
  file_header(&f, true, 0xa1b2c3d4u, PCAP_LINKTYPE_RAW);
  put32(&f, 0); put32(&f, 0); put32(&f, 0x7fffffffu); put32(&f, 0x7fffffffu);
  put_bytes(&f, a, na);
  expect_next_error(&f, "exceeds", 0);
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_RAW);
  put32(&f, 0); put32(&f, 0); put32(&f, 262145); put32(&f, 262145);
  expect_next_error(&f, "exceeds", 0);

  /* Records shorter than their link-layer header. */
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_ETHERNET);
  record(&f, 0, 0, NULL, 0, a, 10);
  expect_next_error(&f, "link-layer", 0);
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_ETHERNET);
  static const uint8_t vlan_cut[16] = {[12] = 0x81, [13] = 0x00};
  record(&f, 0, 0, NULL, 0, vlan_cut, sizeof vlan_cut);
  expect_next_error(&f, "link-layer", 0);
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_LINUX_SLL2);
  record(&f, 0, 0, NULL, 0, a, 19);
  expect_next_error(&f, "link-layer", 0);

  /* A truncated IPv4 packet (snaplen cut) is still yielded: the stack judges it. */
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_RAW);
  record(&f, 0, 0, NULL, 0, a, 30);
  const uint8_t *want[1] = {a};
  size_t wantn[1] = {30};
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_RAW, want, wantn, NULL, 1), 1);
}

/* ---- a realistic TCP exchange through the simulator, checked by tshark ---- */

enum { C_ISN = 1000, S_ISN = 5000, C_PORT = 40000, S_PORT = 8080 };
static const char request[] = "GET / HTTP/1.0\r\nHost: 192.0.2.2\r\n\r\n";
static const char response[] = "HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";

struct peer {
  struct sim_net *net;
  int id;
  uint32_t self, other;
  uint32_t ts_recent;
};

static void send_tcp(struct peer *p, uint16_t sport, uint16_t dport, uint8_t flags,
                     uint32_t seq, uint32_t ack, const char *data, bool syn_opts)
{
  struct tcp_hdr h = {.src_port = sport, .dst_port = dport, .seq = seq, .ack = ack,
                      .flags = flags, .window = syn_opts ? 64240 : 502};
  if (!(flags & TCP_RST)) {
    h.opts.present = TCP_OPT_HAS_TS;
    h.opts.ts_val = (uint32_t)(sim_now(p->net) / 1000) + 100;
    h.opts.ts_ecr = p->ts_recent;
  }
  if (syn_opts) {
    h.opts.present |= TCP_OPT_HAS_MSS | TCP_OPT_HAS_SACK_PERM | TCP_OPT_HAS_WSCALE;
    h.opts.mss = 1460;
    h.opts.wscale = 7;
  }
  uint8_t buf[2048];
  size_t plen = data ? strlen(data) : 0;
  int n = tcp_packet_encode(&h, (const uint8_t *)data, plen, p->self, p->other,
                            (uint16_t)(seq ^ ack), buf, sizeof buf);
  CHECK(n > 0);
  CHECK_EQ(sim_send(p->net, p->id, buf, (size_t)n), 0);
}

static void client_deliver(void *ctx, const uint8_t *pkt, size_t len, uint64_t now_us)
{
  struct peer *p = ctx;
  struct tcp_packet tp;
  CHECK_EQ(tcp_packet_decode(pkt, len, &tp), WIRE_OK);
  const struct tcp_hdr *t = &tp.tcp;
  if (t->opts.present & TCP_OPT_HAS_TS)
    p->ts_recent = t->opts.ts_val;
  uint32_t snd = C_ISN + 1 + (uint32_t)strlen(request);
  if ((t->flags & TCP_SYN) && (t->flags & TCP_ACK)) {
    send_tcp(p, C_PORT, S_PORT, TCP_ACK, C_ISN + 1, t->seq + 1, NULL, false);
    send_tcp(p, C_PORT, S_PORT, TCP_ACK | TCP_PSH, C_ISN + 1, t->seq + 1, request, false);
  } else if (t->flags & TCP_FIN) {
    send_tcp(p, C_PORT, S_PORT, TCP_FIN | TCP_ACK, snd,
             t->seq + (uint32_t)tp.payload_len + 1, NULL, false);
  } else if (tp.payload_len > 0) {
    send_tcp(p, C_PORT, S_PORT, TCP_ACK, snd, t->seq + (uint32_t)tp.payload_len, NULL, false);
  }
}

static void server_deliver(void *ctx, const uint8_t *pkt, size_t len, uint64_t now_us)
{
  struct peer *p = ctx;
  struct tcp_packet tp;
  CHECK_EQ(tcp_packet_decode(pkt, len, &tp), WIRE_OK);
  const struct tcp_hdr *t = &tp.tcp;
  if (t->opts.present & TCP_OPT_HAS_TS)
    p->ts_recent = t->opts.ts_val;
  uint32_t snd = S_ISN + 1 + (uint32_t)strlen(response);
  if ((t->flags & TCP_SYN) && t->dst_port != S_PORT) {
    /* Closed port: RFC 9293 §3.10.7.1 reset, <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK>. */
    send_tcp(p, t->dst_port, t->src_port, TCP_RST | TCP_ACK, 0, t->seq + 1, NULL, false);
  } else if (t->flags & TCP_SYN) {
    send_tcp(p, S_PORT, C_PORT, TCP_SYN | TCP_ACK, S_ISN, t->seq + 1, NULL, true);
  } else if (t->flags & TCP_FIN) {
    send_tcp(p, S_PORT, C_PORT, TCP_ACK, snd + 1, t->seq + 1, NULL, false);
  } else if (tp.payload_len > 0) {
    uint32_t ack = t->seq + (uint32_t)tp.payload_len;
    send_tcp(p, S_PORT, C_PORT, TCP_ACK | TCP_PSH, S_ISN + 1, ack, response, false);
    send_tcp(p, S_PORT, C_PORT, TCP_FIN | TCP_ACK, snd, ack, NULL, false);
  }
}

struct capture {
  struct pcap_writer *w;
  unsigned written;
};

static void capture_tap(void *ctx, int from, int to, enum sim_fate fate, const uint8_t *pkt,
                        size_t len, uint64_t now_us)
{
  struct capture *c = ctx;
  if (fate == SIM_SENT) {
    CHECK_EQ(pcap_writer_write(c->w, now_us, pkt, len), 0);
    c->written++;
  }
}

/* Runs the exchange and writes its capture to path; returns the packet count. */
static unsigned capture_exchange(const char *path)
{
  struct sim_net *net = sim_new(2024);
  static const struct sim_host_ops cops = {.deliver = client_deliver};
  static const struct sim_host_ops sops = {.deliver = server_deliver};
  struct peer c = {net, 0, ADDR_C, ADDR_S, 0}, s = {net, 1, ADDR_S, ADDR_C, 0};
  CHECK_EQ(sim_add_host(net, "client", ADDR_C, &cops, &c), 0);
  CHECK_EQ(sim_add_host(net, "server", ADDR_S, &sops, &s), 1);
  struct sim_link_cfg cfg = {.delay_us = 10000, .bandwidth_bps = 100000000};
  sim_set_all_links(net, &cfg);
  struct capture cap = {pcap_writer_open(path), 0};
  CHECK(cap.w != NULL);
  sim_set_tap(net, capture_tap, &cap);
  send_tcp(&c, C_PORT, S_PORT, TCP_SYN, C_ISN, 0, NULL, true);
  sim_run_until(net, 1000000);
  send_tcp(&c, C_PORT + 1, 9999, TCP_SYN, 77777, 0, NULL, true);
  sim_run_until(net, 2000000);
  CHECK_EQ(pcap_writer_close(cap.w), 0);
  sim_free(net);
  return cap.written;
}

/* Runs cmd and returns its whole stdout (malloc'd), or NULL; *status gets the exit. */
static char *run(const char *cmd, int *status)
{
  FILE *p = popen(cmd, "r");
  if (!p)
    return NULL;
  size_t cap = 1 << 16, n = 0;
  char *out = malloc(cap);
  size_t got;
  while (out && (got = fread(out + n, 1, cap - n - 1, p)) > 0) {
    n += got;
    if (cap - n < 4096) {
      char *bigger = realloc(out, cap * 2);
      if (!bigger) {
        free(out);
        out = NULL;
        break;
      }
      out = bigger;
      cap *= 2;
    }
  }
  if (out)
    out[n] = 0;
  *status = pclose(p);
  return out;
}

/* Occurrences of needle in text, ignoring case (tshark's capitalisation of these
 * labels has changed between versions). */
static unsigned count_occurrences(const char *text, const char *needle)
{
  unsigned n = 0;
  for (const char *s = text; (s = strcasestr(s, needle)) != NULL; s += strlen(needle))
    n++;
  return n;
}

/* tshark's verdict on path: true when every packet is TCP, none malformed, every
 * checksum good. */
static bool tshark_clean(const char *path, unsigned want_packets, bool verbose)
{
  char cmd[512];
  int status;
  snprintf(cmd, sizeof cmd,
           "tshark -n -r '%s' -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE -V 2>/dev/null",
           path);
  char *out = run(cmd, &status);
  CHECK(out != NULL);
  if (!out)
    return false;
  bool ok = status == 0;
  static const char *bad[] = {"malformed", "bad checksum", "incorrect", "status: bad"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (count_occurrences(out, bad[i]) > 0) {
      if (verbose)
        fprintf(stderr, "tshark -V output contains '%s'\n", bad[i]);
      ok = false;
    }
  /* Validation was really on: a good verdict per packet for the TCP checksum
   * ("Checksum Status: Good") and the IP header checksum ("Header checksum status"). */
  unsigned good = count_occurrences(out, "checksum status: good");
  if (good != 2 * want_packets) {
    if (verbose)
      fprintf(stderr, "tshark: %u good checksum verdicts, want %u\n", good, 2 * want_packets);
    ok = false;
  }
  free(out);

  snprintf(cmd, sizeof cmd, "tshark -n -r '%s' -T fields -e frame.protocols 2>/dev/null", path);
  out = run(cmd, &status);
  CHECK(out != NULL);
  if (!out)
    return false;
  unsigned lines = 0, tcp = 0;
  for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
    lines++;
    if (strstr(line, ":ip:tcp"))
      tcp++;
    else if (verbose)
      fprintf(stderr, "not decoded as TCP: %s\n", line);
  }
  free(out);
  if (verbose && (lines != want_packets || tcp != want_packets))
    fprintf(stderr, "tshark saw %u packets, %u TCP; want %u\n", lines, tcp, want_packets);
  return ok && status == 0 && lines == want_packets && tcp == want_packets;
}

static void test_tshark(void)
{
  const char *path = tmp_path();
  unsigned n = capture_exchange(path);
  /* SYN, SYN-ACK, ACK, request, response, server FIN, ACK, client FIN, ACK, and a
   * SYN to a closed port answered by RST. */
  CHECK_EQ(n, 11);
  CHECK_EQ(read_all(path, PCAP_LINKTYPE_RAW, NULL, NULL, NULL, 0), 11);

  if (system("command -v tshark >/dev/null 2>&1") != 0) {
    printf("SKIP: tshark not installed\n");
    return;
  }
  CHECK(tshark_clean(path, n, true));

  /* The check has teeth: one flipped payload bit is reported. */
  FILE *f = fopen(path, "r+b");
  CHECK(f != NULL);
  if (f) {
    uint8_t buf[4096];
    size_t got = fread(buf, 1, sizeof buf, f);
    /* The request's "GET" is the only place that string appears. */
    uint8_t *g = memmem(buf, got, "GET /", 5);
    CHECK(g != NULL);
    if (g) {
      g[1] ^= 0x01;
      fseek(f, 0, SEEK_SET);
      fwrite(buf, 1, got, f);
    }
    fclose(f);
    CHECK(!tshark_clean(path, n, false));
  }

  /* tshark's own nanosecond pcap, and its pcapng (its default format), of our
   * file read back the same packets. */
  const char *formats[] = {"nsecpcap", "pcapng"};
  for (int fi = 0; fi < 2; fi++) {
  const char *path2 = tmp_path(), *path3 = tmp_path();
  capture_exchange(path2);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "tshark -r '%s' -F %s -w '%s' >/dev/null 2>&1", path2, formats[fi], path3);
  CHECK_EQ(system(cmd), 0);
  char err[256];
  struct pcap_reader *a = pcap_reader_open(path2, err, sizeof err);
  struct pcap_reader *b = pcap_reader_open(path3, err, sizeof err);
  CHECK(a != NULL && b != NULL);
  if (a && b) {
    unsigned same = 0;
    for (;;) {
      uint64_t ta, tb;
      const uint8_t *pa, *pb;
      size_t na, nb;
      int ra = pcap_reader_next(a, &ta, &pa, &na, err, sizeof err);
      int rb = pcap_reader_next(b, &tb, &pb, &nb, err, sizeof err);
      CHECK_EQ(ra, rb);
      if (ra != 1 || rb != 1)
        break;
      same += ta == tb && na == nb && memcmp(pa, pb, na) == 0;
    }
    CHECK_EQ(same, 11);
  }
  pcap_reader_close(a);
  pcap_reader_close(b);
  }
}

/* Issue 16: with pcap_reader_want_ipv6 the reader yields IPv6 packets in every
 * link type that can carry them (RAW by the version nibble, LINKTYPE_IPV6,
 * EtherType 0x86dd with VLAN tags, SLL and SLL2 protocol 0x86dd, NULL with
 * Linux's AF_INET6 10 and macOS's 30), trimmed to 40 + Payload Length (Ethernet
 * padding and FCS cut); without it they stay skipped (the tests above). */
static void test_ipv6_records(void)
{
  uint8_t a[2048];
  size_t na = mkpkt(a, TCP_SYN, 50, 0);
  uint8_t v6[80];
  memset(v6, 0, sizeof v6);
  v6[0] = 0x60;
  v6[5] = 20;                       /* Payload Length 20: a bare TCP header */
  v6[6] = 6;
  v6[7] = 64;
  v6[8] = 0xfd; v6[23] = 1;         /* fd00::1 -> fd00::2 */
  v6[24] = 0xfd; v6[39] = 2;
  for (int i = 40; i < 60; i++) v6[i] = (uint8_t)i;
  memset(v6 + 60, 0xee, 20);        /* link padding / FCS past the datagram */
  const size_t n6 = 60;
  const uint8_t *want[3] = {a, v6, a};
  size_t wantn[3] = {na, n6, na};
  static struct fbuf f;

  read_want6 = true;
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_RAW);
  record(&f, 1, 0, NULL, 0, a, na);
  record(&f, 1, 1, NULL, 0, v6, n6);
  record(&f, 1, 2, NULL, 0, a, na);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_RAW, want, wantn, NULL, 3), 3);
  read_want6 = false;
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_RAW, (const uint8_t *[]){a, a}, (size_t[]){na, na}, NULL, 2), 2);
  read_want6 = true;

  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_IPV6);
  record(&f, 1, 0, NULL, 0, v6, sizeof v6);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_IPV6, want + 1, wantn + 1, NULL, 1), 1);

  uint8_t eth[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00};
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_ETHERNET);
  record(&f, 1, 0, eth, 14, a, na);
  eth[12] = 0x81; eth[13] = 0x00; eth[14] = 0; eth[15] = 7; eth[16] = 0x86; eth[17] = 0xdd;
  record(&f, 1, 1, eth, 18, v6, sizeof v6);     /* padded: trimmed to 60 */
  eth[12] = 0x08; eth[13] = 0x00;
  record(&f, 1, 2, eth, 14, a, na);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_ETHERNET, want, wantn, NULL, 3), 3);

  uint8_t sll[16] = {0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x86, 0xdd};
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_LINUX_SLL);
  record(&f, 1, 0, sll, 16, v6, n6);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_LINUX_SLL, want + 1, wantn + 1, NULL, 1), 1);
  uint8_t sll2[20] = {0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6};
  file_header(&f, true, 0xa1b2c3d4u, PCAP_LINKTYPE_LINUX_SLL2);
  record(&f, 1, 0, sll2, 20, v6, n6);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_LINUX_SLL2, want + 1, wantn + 1, NULL, 1), 1);

  uint8_t null_linux[4] = {10, 0, 0, 0}, null_mac[4] = {0, 0, 0, 30}, null_other[4] = {99, 0, 0, 0};
  file_header(&f, false, 0xa1b2c3d4u, PCAP_LINKTYPE_NULL);
  record(&f, 1, 0, null_linux, 4, v6, n6);
  record(&f, 1, 1, null_other, 4, v6, n6);      /* not an address family we know: skipped */
  record(&f, 1, 2, null_mac, 4, v6, n6);
  CHECK_EQ(read_all(save(&f), PCAP_LINKTYPE_NULL, (const uint8_t *[]){v6, v6}, (size_t[]){n6, n6}, NULL, 2), 2);
  read_want6 = false;
}

int main(void)
{
  RUN(test_roundtrip);
  RUN(test_raw_big_endian_and_nsec);
  RUN(test_ethernet);
  RUN(test_cooked_and_null);
  RUN(test_ipv6_records);
  RUN(test_errors);
  RUN(test_tshark);
  cleanup();
  return check_report();
}
