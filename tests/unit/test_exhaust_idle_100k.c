/* Resource exhaustion (issue 6; DESIGN §3 "idle connections hold no data
 * buffers"): 100,000 connections opened to one server and left idle. Proves:
 *   - all 100,000 are ESTABLISHED and accepted (peers from 100,000 different
 *     address:port pairs);
 *   - engine memory per idle connection is one control block (no buffers are
 *     allocated before data flows): reported in bytes/connection, and bounded
 *     by sizeof(control block) + the listener;
 *   - the per-packet path stays O(1): a segment for the last connection is
 *     found among 100,000 (the demux table grows with them);
 *   - closing them all (as the active closer, then TIME_WAIT runs out) returns
 *     every byte: conns_alive 0, mem_bytes 0. */
#include "check.h"
#include "rawpeer.h"
#include "stack/stack_check.h"

#define CONNS 100000

static void idle_100k_connections_bounded_memory(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.time_wait_us = 5 * USTCP_SEC;
  struct rp r;
  rp_init(&r, &cfg, 51);
  r.keep = false;                                   /* 100,000 SYN-ACKs: count them only */
  int l = rp_listen(&r, 80, 4096);
  static int fds[CONNS];
  int ok = 0;
  for (int i = 0; i < CONNS; i++) {
    uint32_t ip = 0x0b000000u + (uint32_t)(i / 50);
    uint16_t port = (uint16_t)(20000 + i % 50);
    struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
    rp_send_from(&r, ip, port, 80, 1000, 0, TCP_SYN, 65535, &o, NULL, 0);
    /* The ACK completing the handshake: the SYN-ACK's sequence number is the
     * stack's ISN, which the test reads back from the half-open entry. */
    struct tcb *t = stack_lookup(r.s, RP_LOCAL_IP, 80, ip, port);
    if (!t) continue;
    rp_send_from(&r, ip, port, 80, 1001, t->iss + 1, TCP_ACK, 65535, NULL, NULL, 0);
    fds[i] = ustcp_accept(r.s, l, NULL);
    if (fds[i] >= 0) ok++;
  }
  CHECK_EQ(ok, CONNS);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.conns_alive, CONNS + 1);
  struct ustcp_tcp_info ti;
  ustcp_get_info(r.s, fds[0], &ti);
  CHECK_EQ(ti.state, USTCP_ESTABLISHED);
  CHECK_EQ(ti.snd_buf_used + ti.rcv_buf_used, 0);
  uint64_t per_conn = st.mem_bytes / CONNS;
  uint64_t bound = ti.mem_bytes + 64;               /* one control block (+ listener share) */
  printf("%d idle connections: engine memory %llu bytes = %llu bytes/connection (control block "
         "%llu, no buffers); peak %llu\n", CONNS, (unsigned long long)st.mem_bytes,
         (unsigned long long)per_conn, (unsigned long long)ti.mem_bytes,
         (unsigned long long)st.mem_peak_bytes);
  CHECK(per_conn <= bound);
  char buf[512];
  const char *why = stack_check(r.s, true, buf, sizeof buf);
  if (why) fprintf(stderr, "stack_check: %s\n", why);
  CHECK(why == NULL);
  /* Data on the last one still finds it; then it is readable. */
  uint8_t d[10] = "0123456789";
  rp_send_from(&r, 0x0b000000u + (uint32_t)((CONNS - 1) / 50), (uint16_t)(20000 + (CONNS - 1) % 50), 80,
               1001, 0, TCP_ACK | TCP_PSH, 65535, NULL, d, 10);
  /* (ack 0 is unacceptable; resend with the right one) */
  struct tcb *t = sock_debug_tcb(r.s, fds[CONNS - 1], NULL);
  CHECK(t != NULL);
  if (t)
    rp_send_from(&r, t->remote.ip, t->remote.port, 80, 1001, t->snd_una, TCP_ACK | TCP_PSH, 65535,
                 NULL, d, 10);
  uint8_t b[16];
  CHECK_EQ(ustcp_recv(r.s, fds[CONNS - 1], b, sizeof b, 0), 10);
  /* Close them all (FIN_WAIT_1 -> the peer never answers: orphan retries),
   * then everything times out and is freed. */
  for (int i = 0; i < CONNS; i++) ustcp_close(r.s, fds[i]);
  ustcp_close(r.s, l);
  rp_advance(&r, 600 * USTCP_SEC);
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.conns_alive, 0);
  CHECK_EQ(st.mem_bytes, 0);
  rp_free(&r);
}

int main(void)
{
  RUN(idle_100k_connections_bounded_memory);
  return check_report();
}
