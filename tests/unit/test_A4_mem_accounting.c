/* A4, issue 12 ("mem_peak_bytes counts capacity reserved, not memory used"):
 * the stack's statistics tell ring capacity reserved (buf_bytes_reserved, part
 * of mem_bytes) from bytes actually holding data (buf_bytes_used): 100 bytes
 * unread in a 128 KiB receive buffer are 100 used and 1024 reserved (storage
 * grows as data needs it, issue 12 point 2), and reading them brings both back
 * to 0 (the storage of a drained ring is released). */
#include "check.h"
#include "simnet.h"

#define CLIENT_IP 0x0a000001u
#define SERVER_IP 0x0a000002u
#define MS USTCP_MSEC
#define SEC USTCP_SEC

int main(void)
{
  struct simnet sn;
  sn_init(&sn, 3);
  struct ustcp_stack *c = sn_add(&sn, "client", CLIENT_IP, NULL);
  struct ustcp_stack *s = sn_add(&sn, "server", SERVER_IP, NULL);
  struct sim_link_cfg lc = {.delay_us = 5 * MS};
  sim_set_all_links(sn.net, &lc);
  struct ustcp_addr sa = {SERVER_IP, 80};
  int lfd = ustcp_socket(s);
  CHECK_EQ(ustcp_bind(s, lfd, &sa), 0);
  CHECK_EQ(ustcp_listen(s, lfd, 8), 0);
  int cfd = ustcp_socket(c);
  CHECK_EQ(ustcp_connect(c, cfd, &sa), -EINPROGRESS);
  sn_advance(&sn, 100 * MS);
  int sfd = ustcp_accept(s, lfd, NULL);
  CHECK(sfd >= 0);

  struct ustcp_stats st;
  ustcp_get_stats(s, &st);
  CHECK_EQ(st.buf_bytes_reserved, 0);             /* rings are allocated at their first byte */
  CHECK_EQ(st.buf_bytes_used, 0);

  uint8_t msg[100];
  memset(msg, 'x', sizeof msg);
  CHECK_EQ(ustcp_send(c, cfd, msg, sizeof msg, 0), 100);
  ustcp_get_stats(c, &st);
  CHECK_EQ(st.buf_bytes_used, 100);               /* unacknowledged in the send ring */
  sn_advance(&sn, 100 * MS);

  struct ustcp_tcp_info si, ci;
  CHECK_EQ(ustcp_get_info(s, sfd, &si), 0);
  CHECK_EQ(ustcp_get_info(c, cfd, &ci), 0);
  ustcp_get_stats(s, &st);
  CHECK_EQ(st.buf_bytes_used, 100);               /* unread in the receive ring */
  CHECK_EQ(st.buf_bytes_reserved, 1024);          /* the first storage, not rmem_default */
  CHECK(st.mem_bytes >= st.buf_bytes_reserved);
  CHECK(st.mem_bytes >= si.mem_bytes);            /* the connection, plus the listener */
  ustcp_get_stats(c, &st);
  CHECK_EQ(st.buf_bytes_used, 0);                 /* acknowledged: nothing held */
  CHECK_EQ(st.buf_bytes_reserved, 0);             /* all acknowledged: released */
  CHECK_EQ(st.mem_bytes, ci.mem_bytes);

  uint8_t got[200];
  CHECK_EQ(ustcp_recv(s, sfd, got, sizeof got, 0), 100);
  ustcp_get_stats(s, &st);
  CHECK_EQ(st.buf_bytes_used, 0);
  CHECK_EQ(st.buf_bytes_reserved, 0);             /* all read: released */
  printf("server after read: mem_bytes %llu reserved %llu used %llu peak %llu\n",
         (unsigned long long)st.mem_bytes, (unsigned long long)st.buf_bytes_reserved,
         (unsigned long long)st.buf_bytes_used, (unsigned long long)st.mem_peak_bytes);
  sn_free(&sn);
  return check_report();
}
