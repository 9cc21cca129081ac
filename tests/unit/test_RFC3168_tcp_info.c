/* RFC 3168 in TCP_INFO (Linux's layout, ustcp_get_linux_tcp_info), as Linux's
 * tcp_get_info reports it: TCPI_OPT_ECN (8) on a connection that negotiated
 * ECN, TCPI_OPT_ECN_SEEN (16) once an ECT or CE segment arrived, and
 * tcpi_ca_state TCP_CA_CWR (2) from an ECN echo until the window it came in
 * is acknowledged (then Open, with cwnd = ssthresh). A connection without
 * ECN reports neither bit, whatever ECE its peer sends. */
#include <stddef.h>
#include "check.h"
#include "rawpeer.h"

static struct ustcp_linux_tcp_info info(struct rp *r, int fd)
{
  struct ustcp_linux_tcp_info ti;
  CHECK_EQ(ustcp_get_linux_tcp_info(r->s, fd, &ti), 0);
  return ti;
}

/* A passive connection from port pport; the SYN asks for ECN when ecn. */
static int open_conn(struct rp *r, struct rp_conn *c, int l, uint16_t pport, bool ecn)
{
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS;
  o.mss = 1000;
  memset(c, 0, sizeof *c);
  c->peer_ip = RP_PEER_IP;
  c->peer_port = pport;
  c->local_port = 80;
  c->peer_isn = 0x1000;
  rp_clear(r);
  rp_send_from(r, RP_PEER_IP, pport, 80, 0x1000, 0,
               (uint8_t)(TCP_SYN | (ecn ? TCP_ECE | TCP_CWR : 0)), 65535, &o, NULL, 0);
  struct tcp_packet p;
  if (!rp_last(r, &p)) return -1;
  CHECK_EQ(p.tcp.flags, (uint8_t)(TCP_SYN | TCP_ACK | (ecn ? TCP_ECE : 0)));
  c->stack_isn = p.tcp.seq;
  c->rcv_nxt = p.tcp.seq + 1;
  c->snd_nxt = 0x1001;
  rp_seg(r, c, TCP_ACK, NULL, 0, 65535);
  return ustcp_accept(r->s, l, NULL);
}

int main(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  memcpy(cfg.congestion_control, "reno", 5);
  struct rp r;
  rp_init(&r, &cfg, 3);
  int l = rp_listen(&r, 80, 8);
  struct rp_conn c;
  int fd = open_conn(&r, &c, l, 40000, true);
  CHECK(fd >= 0);
  struct ustcp_linux_tcp_info ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_options & 8, 8);                     /* TCPI_OPT_ECN */
  CHECK_EQ(ti.tcpi_options & 16, 0);                    /* nothing ECT seen yet */
  CHECK_EQ(ti.tcpi_ca_state, 0);

  /* ten segments out; an ECE on the ACK of the first two: CWR */
  static uint8_t buf[20000];
  CHECK_EQ(ustcp_send(r.s, fd, buf, 14000, 0), 14000);   /* 10 go: the initial window */
  rp_advance(&r, 1000);
  uint32_t base = c.rcv_nxt;
  rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, base + 2000,
               TCP_ACK | TCP_ECE, 65535, NULL, NULL, 0);
  ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_ca_state, 2);                        /* TCP_CA_CWR */
  CHECK_EQ(ti.tcpi_snd_ssthresh, 5);                    /* reno: half of cwnd 10 */
  CHECK_EQ(ti.tcpi_total_retrans, 0);                   /* no retransmission */
  /* more ECE inside the window: still the same reduction */
  rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, base + 6000,
               TCP_ACK | TCP_ECE, 65535, NULL, NULL, 0);
  ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_ca_state, 2);
  CHECK_EQ(ti.tcpi_snd_ssthresh, 5);
  /* everything the window held and more acknowledged: Open, cwnd = ssthresh */
  struct tcp_packet p;
  uint32_t high = base;
  rp_advance(&r, 1000);
  while (rp_next(&r, &p))   /* everything the stack sent on it */
    if (seq_gt(p.tcp.seq + (uint32_t)p.payload_len, high)) high = p.tcp.seq + (uint32_t)p.payload_len;
  CHECK(seq_gt(high, base + 10000));                   /* PRR sent new data */
  rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, high, TCP_ACK, 65535, NULL,
               NULL, 0);
  ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_ca_state, 0);
  CHECK_EQ(ti.tcpi_snd_cwnd, 5);

  /* ECT(0) data from the peer: ECN_SEEN */
  uint8_t pkt[2000];
  struct tcp_hdr h = {0};
  h.src_port = c.peer_port;
  h.dst_port = c.local_port;
  h.seq = c.snd_nxt;
  h.ack = high;
  h.flags = TCP_ACK | TCP_PSH;
  h.window = 65535;
  int n = tcp_packet_encode_tos(&h, buf, 100, RP_PEER_IP, RP_LOCAL_IP, 1, IP_ECN_ECT0, pkt,
                                sizeof pkt);
  CHECK(n > 0);
  ustcp_input(r.s, pkt, (size_t)n, r.now);
  ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_options & 24, 24);                   /* ECN | ECN_SEEN */

  /* a connection without ECN: no bit, and ECE from the peer changes nothing */
  int fd2 = open_conn(&r, &c, l, 40001, false);
  CHECK(fd2 >= 0);
  CHECK_EQ(ustcp_send(r.s, fd2, buf, 4000, 0), 4000);
  rp_advance(&r, 1000);
  rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, c.rcv_nxt + 2000,
               TCP_ACK | TCP_ECE, 65535, NULL, NULL, 0);
  ti = info(&r, fd2);
  CHECK_EQ(ti.tcpi_options & 24, 0);
  CHECK_EQ(ti.tcpi_ca_state, 0);
  CHECK_EQ(ti.tcpi_snd_ssthresh, 0x7fffffffu);          /* no reduction */
  rp_free(&r);
  return check_report();
}
