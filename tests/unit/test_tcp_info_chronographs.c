/* TCP_INFO's chronographs as Linux keeps them (tcp_chrono_start/stop,
 * tcp_get_info_chrono_stats): tcpi_busy_time counts the time data was
 * unacknowledged or waiting to be sent, tcpi_rwnd_limited the part of it the
 * peer's window held data back (tcp_write_xmit), and busy_time includes it.
 * The window test is Linux's tcp_snd_wnd_test: a window smaller than the next
 * segment holds it (no segment is cut to it) until the window opens. */
#include "check.h"
#include "rawpeer.h"

static struct ustcp_linux_tcp_info info(struct rp *r, int fd)
{
  struct ustcp_linux_tcp_info ti;
  CHECK_EQ(ustcp_get_linux_tcp_info(r->s, fd, &ti), 0);
  return ti;
}

/* data segments the stack sent since the last call */
static unsigned data_out(struct rp *r)
{
  unsigned n = 0;
  struct tcp_packet p;
  while (rp_next(r, &p))
    if (p.payload_len) n++;
  return n;
}

#define NEAR_MS(v, ms) CHECK((v) >= (ms) * 1000ull - 1000 && (v) <= (ms) * 1000ull + 1000)

int main(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct rp r;
  rp_init(&r, &cfg, 5);
  int l = rp_listen(&r, 80, 8);
  struct tcp_opts o = {0};
  o.present = TCP_OPT_HAS_MSS;
  o.mss = 1000;
  struct rp_conn c;
  int fd = rp_handshake_in(&r, &c, l, RP_PEER_IP, 40000, 80, 0x1000, &o);
  CHECK(fd >= 0);
  struct ustcp_linux_tcp_info ti = info(&r, fd);
  CHECK_EQ(ti.tcpi_busy_time, 0);
  CHECK_EQ(ti.tcpi_rwnd_limited, 0);

  /* the peer's window is shut: a write waits, limited by it */
  rp_seg(&r, &c, TCP_ACK, NULL, 0, 0);
  static uint8_t buf[1000];
  rp_clear(&r);
  CHECK_EQ(ustcp_send(r.s, fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
  rp_advance(&r, 100 * USTCP_MSEC);
  ti = info(&r, fd);
  NEAR_MS(ti.tcpi_rwnd_limited, 100);
  NEAR_MS(ti.tcpi_busy_time, 100);

  /* the window opens: the data goes, busy until it is acknowledged 30 ms on */
  rp_seg(&r, &c, TCP_ACK, NULL, 0, 2000);
  CHECK_EQ(data_out(&r), 1);
  rp_advance(&r, 30 * USTCP_MSEC);
  c.rcv_nxt += 1000;
  rp_seg(&r, &c, TCP_ACK, NULL, 0, 2000);
  rp_advance(&r, 50 * USTCP_MSEC);   /* idle: no chronograph runs */
  ti = info(&r, fd);
  NEAR_MS(ti.tcpi_rwnd_limited, 100);
  NEAR_MS(ti.tcpi_busy_time, 130);

  /* a 10-byte window: the 1000-byte segment is not cut to it and waits
   * (tcp_snd_wnd_test), limited by the window again */
  rp_seg(&r, &c, TCP_ACK, NULL, 0, 10);
  rp_clear(&r);
  CHECK_EQ(ustcp_send(r.s, fd, buf, sizeof buf, 0), (ssize_t)sizeof buf);
  rp_advance(&r, 50 * USTCP_MSEC);
  CHECK_EQ(data_out(&r), 0);
  ti = info(&r, fd);
  NEAR_MS(ti.tcpi_rwnd_limited, 150);
  NEAR_MS(ti.tcpi_busy_time, 180);
  rp_seg(&r, &c, TCP_ACK, NULL, 0, 2000);
  CHECK_EQ(data_out(&r), 1);
  ti = info(&r, fd);
  NEAR_MS(ti.tcpi_rwnd_limited, 150);
  CHECK_EQ(ti.tcpi_sndbuf_limited, 0);   /* not tracked */
  rp_free(&r);
  return check_report();
}
