#include "check.h"
#include "simnet.h"

static void basic(void)
{
  struct simnet sn;
  sn_init(&sn, 1);
  struct ustcp_stack *a = sn_add(&sn, "client", 0, NULL);
  struct ustcp_stack *b = sn_add(&sn, "server", 0, NULL);
  struct sim_link_cfg lc = {.delay_us = 5000};
  sim_set_all_links(sn.net, &lc);
  int l = ustcp_socket(b);
  struct ustcp_addr sa = {0x0a000002, 80};
  CHECK_EQ(ustcp_bind(b, l, &sa), 0);
  CHECK_EQ(ustcp_listen(b, l, 16), 0);
  int c = ustcp_socket(a);
  CHECK_EQ(ustcp_connect(a, c, &sa), -EINPROGRESS);
  sn_advance(&sn, 100000);
  CHECK_EQ(sn_state(a, c), USTCP_ESTABLISHED);
  int s = ustcp_accept(b, l, NULL);
  CHECK(s >= 0);
  CHECK_EQ(ustcp_send(a, c, "hello", 5, 0), 5);
  sn_advance(&sn, 100000);
  char buf[100];
  CHECK_EQ(ustcp_recv(b, s, buf, sizeof buf, 0), 5);
  CHECK_EQ(ustcp_close(a, c), 0);
  sn_advance(&sn, 100000);
  CHECK_EQ(ustcp_recv(b, s, buf, sizeof buf, 0), 0);
  CHECK_EQ(sn_state(b, s), USTCP_CLOSE_WAIT);
  CHECK_EQ(ustcp_close(b, s), 0);
  sn_advance(&sn, 100000);
  struct ustcp_sock_row rows[8];
  size_t n = ustcp_sock_table(a, rows, 8);
  CHECK_EQ(n, 1);
  CHECK_EQ(rows[0].state, USTCP_TIME_WAIT);
  sn_advance(&sn, 61000000);
  CHECK_EQ(ustcp_sock_table(a, rows, 8), 0);
  CHECK_EQ(ustcp_close(b, l), 0);
  sn_free(&sn);
}

int main(void)
{
  RUN(basic);
  return check_report();
}
