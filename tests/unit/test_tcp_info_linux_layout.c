/* TCP_INFO in Linux's layout (ustcp_get_linux_tcp_info): every field sits at
 * the offset the kernel's own header gives it (<linux/tcp.h>, fields present in
 * the installed header), and the values follow Linux's tcp_get_info on a
 * connection driven by hand: state numbers, cwnd and ssthresh in segments,
 * TCP_INFINITE_SSTHRESH before a reduction, the option bits, the ca_state
 * through Disorder, Recovery and back to Open, sacked/lost counts in segments,
 * and Loss after a retransmission timeout. */
#include <stddef.h>
#include <linux/tcp.h>
#include "check.h"
#include "rawpeer.h"

#define SAME_OFFSET(f) CHECK_EQ(offsetof(struct ustcp_linux_tcp_info, f), offsetof(struct tcp_info, f))

static struct ustcp_linux_tcp_info info(struct rp *r, int fd)
{
  struct ustcp_linux_tcp_info ti;
  CHECK_EQ(ustcp_get_linux_tcp_info(r->s, fd, &ti), 0);
  return ti;
}

int main(void)
{
  /* layout: the fields of the installed header (Linux 6.1's uapi ends at
   * tcpi_snd_wnd; the rest follow its order, as newer kernels have them) */
  SAME_OFFSET(tcpi_state); SAME_OFFSET(tcpi_ca_state); SAME_OFFSET(tcpi_retransmits);
  SAME_OFFSET(tcpi_probes); SAME_OFFSET(tcpi_backoff); SAME_OFFSET(tcpi_options);
  SAME_OFFSET(tcpi_rto); SAME_OFFSET(tcpi_ato); SAME_OFFSET(tcpi_snd_mss); SAME_OFFSET(tcpi_rcv_mss);
  SAME_OFFSET(tcpi_unacked); SAME_OFFSET(tcpi_sacked); SAME_OFFSET(tcpi_lost);
  SAME_OFFSET(tcpi_retrans); SAME_OFFSET(tcpi_fackets); SAME_OFFSET(tcpi_last_data_sent);
  SAME_OFFSET(tcpi_last_ack_sent); SAME_OFFSET(tcpi_last_data_recv); SAME_OFFSET(tcpi_last_ack_recv);
  SAME_OFFSET(tcpi_pmtu); SAME_OFFSET(tcpi_rcv_ssthresh); SAME_OFFSET(tcpi_rtt);
  SAME_OFFSET(tcpi_rttvar); SAME_OFFSET(tcpi_snd_ssthresh); SAME_OFFSET(tcpi_snd_cwnd);
  SAME_OFFSET(tcpi_advmss); SAME_OFFSET(tcpi_reordering); SAME_OFFSET(tcpi_rcv_rtt);
  SAME_OFFSET(tcpi_rcv_space); SAME_OFFSET(tcpi_total_retrans); SAME_OFFSET(tcpi_pacing_rate);
  SAME_OFFSET(tcpi_max_pacing_rate); SAME_OFFSET(tcpi_bytes_acked); SAME_OFFSET(tcpi_bytes_received);
  SAME_OFFSET(tcpi_segs_out); SAME_OFFSET(tcpi_segs_in); SAME_OFFSET(tcpi_notsent_bytes);
  SAME_OFFSET(tcpi_min_rtt); SAME_OFFSET(tcpi_data_segs_in); SAME_OFFSET(tcpi_data_segs_out);
  SAME_OFFSET(tcpi_delivery_rate); SAME_OFFSET(tcpi_busy_time); SAME_OFFSET(tcpi_rwnd_limited);
  SAME_OFFSET(tcpi_sndbuf_limited); SAME_OFFSET(tcpi_delivered); SAME_OFFSET(tcpi_delivered_ce);
  SAME_OFFSET(tcpi_bytes_sent); SAME_OFFSET(tcpi_bytes_retrans); SAME_OFFSET(tcpi_dsack_dups);
  SAME_OFFSET(tcpi_reord_seen); SAME_OFFSET(tcpi_rcv_ooopack); SAME_OFFSET(tcpi_snd_wnd);
  /* the two bit-field bytes: snd_wscale in the low nibble of byte 6 */
  {
    struct tcp_info k;
    memset(&k, 0, sizeof k);
    k.tcpi_snd_wscale = 7;
    k.tcpi_rcv_wscale = 9;
    k.tcpi_delivery_rate_app_limited = 1;
    const uint8_t *b = (const uint8_t *)&k;
    CHECK_EQ(b[6], 7 | 9 << 4);
    CHECK_EQ(b[7], 1);
  }
  CHECK_EQ(sizeof(struct ustcp_linux_tcp_info), 248u);   /* Linux 6.7 to 6.17: 248 bytes */

  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.init_cwnd = 10;
  /* DupThresh loss detection (Linux's tcp_recovery = 0), so that one and two
   * SACKed segments show Disorder: with RACK (the default) and this harness's
   * zero-time handshake, min_RTT is ~0, the reordering window too, and the
   * first SACK starts Recovery, as it would in Linux (RACK's TCP_INFO is
   * checked by packetdrill's sack-shift-sacked-* scripts) */
  cfg.tcp_recovery = 0;
  struct rp r;
  rp_init(&r, &cfg, 3);
  int l = rp_listen(&r, 80, 8);
  struct ustcp_linux_tcp_info ti = info(&r, l);
  CHECK_EQ(ti.tcpi_state, 10);                          /* TCP_LISTEN */
  CHECK_EQ(ti.tcpi_sacked, 8);                          /* the backlog, as Linux */

  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS | TCP_OPT_HAS_SACK_PERM | TCP_OPT_HAS_WSCALE;
  o.mss = 1000;
  o.wscale = 7;
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40000, 80, 0x1000, &o);
  CHECK(fd >= 0);
  ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_state, 1);                           /* TCP_ESTABLISHED */
  CHECK_EQ(ti.tcpi_ca_state, 0);                        /* TCP_CA_Open */
  CHECK_EQ(ti.tcpi_snd_cwnd, 10);
  CHECK_EQ(ti.tcpi_snd_ssthresh, 0x7fffffffu);          /* TCP_INFINITE_SSTHRESH */
  CHECK_EQ(ti.tcpi_snd_mss, 1000);
  CHECK_EQ(ti.tcpi_options & 6, 6);                     /* SACK | WSCALE */
  CHECK_EQ(ti.tcpi_wscale & 15, 7);                     /* snd_wscale: what the peer asked */
  CHECK_EQ(ti.tcpi_reordering, 3);
  CHECK_EQ(ti.tcpi_unacked, 0);

  /* ten segments out; the first is lost: SACKs for the next ones */
  static uint8_t buf[10000];
  CHECK_EQ(ustcp_send(r.s, fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
  rp_advance(&r, 1000);
  ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_unacked, 10);
  CHECK_EQ(ti.tcpi_data_segs_out, 10);
  uint32_t base = c.rcv_nxt;
  for (int k = 1; k <= 3; k++) {
    struct tcp_opts so = {0};
    so.present = TCP_OPT_HAS_SACK;
    so.sack_count = 1;
    so.sack[0].left = base + 1000;
    so.sack[0].right = base + 1000u * (uint32_t)(k + 1);
    rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, base, TCP_ACK, 65535 >> 0,
                 &so, NULL, 0);
    ti = info(&r, fd);
    CHECK_EQ(ti.tcpi_sacked, (uint32_t)k);
    if (k < 3) CHECK_EQ(ti.tcpi_ca_state, 1);           /* TCP_CA_Disorder */
  }
  CHECK_EQ(ti.tcpi_ca_state, 3);                        /* TCP_CA_Recovery */
  CHECK(ti.tcpi_lost >= 1);
  CHECK(ti.tcpi_snd_ssthresh < 0x7fffffffu && ti.tcpi_snd_ssthresh >= 2);
  CHECK(ti.tcpi_total_retrans >= 1);                    /* the fast retransmission */
  /* everything ACKed: recovery ends */
  rp_send_from(&r, c.peer_ip, c.peer_port, c.local_port, c.snd_nxt, base + 10000, TCP_ACK, 65535,
               NULL, NULL, 0);
  ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_ca_state, 0);
  CHECK_EQ(ti.tcpi_unacked, 0);
  CHECK_EQ(ti.tcpi_sacked, 0);
  CHECK_EQ(ti.tcpi_lost, 0);

  /* a retransmission timeout: Loss, everything outstanding counted lost */
  CHECK_EQ(ustcp_send(r.s, fd, buf, 3000, 0), 3000);
  rp_advance(&r, 5 * USTCP_SEC);
  ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_ca_state, 4);                        /* TCP_CA_Loss */
  CHECK(ti.tcpi_backoff >= 1);
  CHECK_EQ(ti.tcpi_lost, 3);
  CHECK(ti.tcpi_total_rto >= 1);

  CHECK_EQ(ustcp_get_linux_tcp_info(r.s, 999, &ti), -EBADF);
  CHECK_EQ(ustcp_get_linux_tcp_info(r.s, fd, NULL), -EFAULT);
  rp_free(&r);
  return check_report();
}
