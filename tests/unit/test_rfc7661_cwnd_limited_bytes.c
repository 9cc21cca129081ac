/* RFC 7661 (Linux's tcp_is_cwnd_limited) with a byte-counted cwnd: a sender
 * whose flight leaves less than one segment of cwnd free is cwnd-limited (the
 * rest is held by sender SWS avoidance), so CUBIC, which grows cwnd only while
 * cwnd-limited, keeps growing after a reduction leaves cwnd at a fraction of
 * a segment (0.7 of a window). Before the fix a flight of 7 segments under a
 * cwnd of 7.9 counted as not cwnd-limited and cwnd froze for good: on the
 * simulator's 1 % loss curve CUBIC ran at a quarter of Reno's rate.
 * The peer ACKs every flight after 100 ms; one segment is lost once. */
#include "check.h"
#include "rawpeer.h"

#define MSS 1000u

static uint32_t cwnd_of(struct rp *r, int fd)
{
  struct ustcp_tcp_info ti;
  CHECK_EQ(ustcp_get_info(r->s, fd, &ti), 0);
  return ti.snd_cwnd;
}

/* Collects what the stack sent; returns the highest end sequence seen. */
static uint32_t drain(struct rp *r, uint32_t hi)
{
  struct tcp_packet p;
  while (rp_next(r, &p)) {
    uint32_t end = p.tcp.seq + (uint32_t)p.payload_len;
    if (p.payload_len && (int32_t)(end - hi) > 0) hi = end;
  }
  return hi;
}

static void run(const char *cc)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  memset(cfg.congestion_control, 0, sizeof cfg.congestion_control);
  memcpy(cfg.congestion_control, cc, strlen(cc));
  cfg.wmem_default = 4u << 20;
  struct rp r;
  rp_init(&r, &cfg, 7);
  int l = rp_listen(&r, 80, 8);
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_SACK_PERM | TCP_OPT_HAS_WSCALE;
  o.mss = MSS;
  o.wscale = 7;
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 41000, 80, 0x2000, &o);
  CHECK(fd >= 0);
  static uint8_t buf[4u << 20];
  CHECK(ustcp_send(r.s, fd, buf, sizeof buf, 0) > 0);
  uint32_t base = c.rcv_nxt, acked = base, hi = base;
  /* slow start for a few rounds */
  for (int round = 0; round < 4; round++) {
    hi = drain(&r, hi);
    rp_advance(&r, 100000);
    rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, hi, TCP_ACK, 65535, NULL, NULL, 0);
    acked = hi;
  }
  /* one loss: the segment at `acked` is lost, the rest of the flight SACKed */
  hi = drain(&r, hi);
  rp_advance(&r, 100000);
  for (int k = 1; k <= 4; k++) {
    struct tcp_opts so = {0};
    so.present = TCP_OPT_HAS_SACK;
    so.sack_count = 1;
    so.sack[0].left = acked + MSS;
    so.sack[0].right = acked + MSS * (uint32_t)(k + 1);
    rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, acked, TCP_ACK, 65535, &so, NULL, 0);
  }
  hi = drain(&r, hi);
  rp_advance(&r, 100000);
  rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, hi, TCP_ACK, 65535, NULL, NULL, 0);
  /* congestion avoidance from here: 30 rounds of 100 ms, each flight ACKed */
  uint32_t after = cwnd_of(&r, fd);
  for (int round = 0; round < 30; round++) {
    hi = drain(&r, hi);
    rp_advance(&r, 100000);
    rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, hi, TCP_ACK, 65535, NULL, NULL, 0);
  }
  uint32_t later = cwnd_of(&r, fd);
  fprintf(stderr, "%s: cwnd after the loss %u, 30 RTTs later %u\n", cc, after, later);
  /* Reno: +1 segment an RTT; CUBIC at least its Reno-friendly 0.53 */
  CHECK(later >= after + 10 * MSS);
  rp_free(&r);
}

int main(void)
{
  run("cubic");
  run("reno");
  return check_report();
}
