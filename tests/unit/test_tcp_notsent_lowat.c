/* TCP_NOTSENT_LOWAT and the readiness callback (Linux's tcp_poll and
 * sk_stream_write_space, both through __sk_stream_is_writeable(sk, 1)): every
 * readiness callback of a socket with a notsent limit reports POLLOUT exactly
 * when twice its unsent bytes are below the limit, as ustcp_sock_events does,
 * while ACKs let the data out; a blocking writer woken by that callback finds
 * a send accepted. The peer ACKs everything it sees, one flight at a time. */
#include "check.h"
#include "rawpeer.h"

#define LOWAT 4000

static int cb_fd = -1;
static unsigned cb_events, cb_count;

static void on_ready(void *ctx, int fd, unsigned events)
{
  (void)ctx;
  if (fd != cb_fd) return;
  cb_events = events;
  cb_count++;
}

int main(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.wmem_default = 262144;
  cfg.init_cwnd = 2;
  struct rp r;
  rp_init(&r, &cfg, 1);
  ustcp_set_ready_cb(r.s, on_ready, NULL);
  struct rp_conn c;
  int l = rp_listen(&r, 80, 8);
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS;
  o.mss = 1000;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 33000, 80, 0x5000, &o);
  CHECK(fd >= 0);
  cb_fd = fd;
  int v = LOWAT;
  CHECK_EQ(ustcp_setsockopt(r.s, fd, USTCP_IPPROTO_TCP, USTCP_TCP_NOTSENT_LOWAT, &v, sizeof v), 0);

  static uint8_t buf[100000];
  ssize_t n = ustcp_send(r.s, fd, buf, sizeof buf, 0);
  /* far less than the buffer holds: the limit stopped the write (Linux: it
   * ends when a new skb would start past the limit) */
  CHECK(n > 0 && n < (ssize_t)sizeof buf);
  uint32_t written = (uint32_t)n;
  CHECK(!(ustcp_sock_events(r.s, fd) & USTCP_POLLOUT));
  CHECK_EQ(ustcp_send(r.s, fd, buf, 100, 0), -EAGAIN);

  unsigned saw_pollout = 0, checked = 0;
  for (int round = 0; round < 100; round++) {
    /* everything the stack sent so far: the highest byte sent */
    struct tcp_packet p;
    bool any = false;
    while (rp_next(&r, &p)) {
      uint32_t end = p.tcp.seq + (uint32_t)p.payload_len;
      if ((int32_t)(end - c.rcv_nxt) > 0) c.rcv_nxt = end;
      any = true;
    }
    uint32_t sent = c.rcv_nxt - (c.stack_isn + 1);
    if (!any && sent == written) break;
    cb_count = 0;
    rp_advance(&r, 10000);
    rp_seg(&r, &c, TCP_ACK, NULL, 0, 65535);   /* ACKs all of it */
    /* what went out on that ACK */
    struct rp_pkt *q = r.q + r.head;
    uint32_t hi = c.rcv_nxt;
    for (size_t i = 0; i < r.n; i++) {
      struct tcp_packet d;
      if (tcp_packet_decode(q[i].data, q[i].len, &d) != WIRE_OK) continue;
      uint32_t end = d.tcp.seq + (uint32_t)d.payload_len;
      if ((int32_t)(end - hi) > 0) hi = end;
    }
    uint32_t notsent = written - (hi - (c.stack_isn + 1));
    bool want = 2u * notsent < LOWAT;
    int ev = ustcp_sock_events(r.s, fd);
    CHECK_EQ((ev & USTCP_POLLOUT) != 0, want);
    if (cb_count) {
      checked++;
      CHECK_EQ((cb_events & USTCP_POLLOUT) != 0, want);
      CHECK_EQ(cb_events, (unsigned)ev);
      if (cb_events & USTCP_POLLOUT) {
        saw_pollout++;
        /* the woken writer: a send is accepted now */
        ssize_t k = ustcp_send(r.s, fd, buf, 1000, 0);
        CHECK(k > 0);
        if (k > 0) written += (uint32_t)k;
      }
    }
    CHECK(rp_stack_problem(&r) == NULL);
  }
  CHECK(checked > 3);
  CHECK(saw_pollout > 0);
  rp_free(&r);
  return check_report();
}
