/* D4: the out-of-order queue's length limit follows the receive buffer unless
 * max_ooo_segments fixes it, so an application that raises SO_RCVBUF can hold a
 * whole window of out-of-order data (a lossy download with a 1 MB window used to
 * stall on the fixed 256), while the count still bounds tiny-segment overhead. */
#include "check.h"
#include "tcp/tcp.h"
#include "ustcp.h"

static void limit_follows_buffer(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  CHECK_EQ(cfg.max_ooo_segments, 0);
  struct tcp_engine e;
  tcp_engine_init(&e, &cfg, 1, NULL);
  struct tcb t;
  memset(&t, 0, sizeof t);
  t.rcvbuf.cap = 131072;
  CHECK_EQ(tcp_ooo_limit(&e, &t), 131072 / 536 + 1);
  t.rcvbuf.cap = 1 << 20;
  CHECK_EQ(tcp_ooo_limit(&e, &t), (1 << 20) / 536 + 1);
  CHECK(tcp_ooo_limit(&e, &t) * 536u >= t.rcvbuf.cap);   /* a window of small segments fits */
  cfg.max_ooo_segments = 8;                               /* fixed by configuration */
  CHECK_EQ(tcp_ooo_limit(&e, &t), 8);
  tcp_engine_free(&e);
}

int main(void)
{
  RUN(limit_follows_buffer);
  return check_report();
}
