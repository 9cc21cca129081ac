/* H10 / issue 12 point 4: ephemeral ports are shared across destinations, as
 * Linux shares them (RFC 6056 with the 4-tuple as the uniqueness key).
 * Proves, on one client stack with the default range (32768-60999, 28,232 ports):
 *   - 61,000 connections spread over three server addresses all reach
 *     ESTABLISHED (more than one range's worth: ports are reused across
 *     destinations), each 4-tuple unique;
 *   - EADDRNOTAVAIL comes only when one destination's 4-tuples are used up:
 *     exactly 28,230 connections to one server address and port (the range
 *     less the two ports bind() and listen() hold here), while a
 *     connection to another destination still gets a port;
 *   - a port held by bind() or by a listener is never handed to connect();
 *   - the stack's port bookkeeping stays consistent (stack_check). */
#include "check.h"
#include "rawpeer.h"
#include "stack/stack.h"

#define SPREAD 61000
#define RANGE 28232

static const uint32_t servers[3] = {0xc6336401u, 0xc6336402u, 0xc6336403u}; /* 198.51.100.1-3 */

/* connect() to (ip, 80) and complete the handshake as the server; returns the
 * fd, or the connect error. *lport gets the local port. */
static int open_to(struct rp *r, uint32_t ip, uint16_t *lport)
{
  int fd = ustcp_socket(r->s);
  if (fd < 0) return fd;
  struct ustcp_addr to = {ip, 80};
  int rc = ustcp_connect(r->s, fd, &to);
  if (rc != -EINPROGRESS) {
    ustcp_close(r->s, fd);
    return rc;
  }
  struct tcb *t = sock_debug_tcb(r->s, fd, NULL);
  if (!t) return -1;
  *lport = t->local.port;
  struct tcp_opts o = {.present = TCP_OPT_HAS_MSS, .mss = 1460};
  rp_send_from(r, ip, 80, t->local.port, 5000, t->iss + 1, TCP_SYN | TCP_ACK, 65535, &o, NULL, 0);
  return fd;
}

static uint16_t lports[SPREAD];

static void ports_shared_across_destinations(void)
{
  struct rp r;
  rp_init(&r, NULL, 77);
  r.keep = false;
  /* Exclusive holders inside the range: a bound socket and a listener. */
  int b = ustcp_socket(r.s);
  struct ustcp_addr ba = {0, 40000};
  CHECK_EQ(ustcp_bind(r.s, b, &ba), 0);
  int l = rp_listen(&r, 40001, 16);
  CHECK(l >= 0);

  static int fds[SPREAD];
  int established = 0, failed = 0;
  for (int i = 0; i < SPREAD; i++) {
    fds[i] = open_to(&r, servers[i % 3], &lports[i]);
    if (fds[i] < 0) { failed++; continue; }
    if (rp_state(&r, fds[i]) == USTCP_ESTABLISHED) established++;
    if (lports[i] == 40000 || lports[i] == 40001) failed++;
  }
  CHECK_EQ(failed, 0);
  CHECK_EQ(established, SPREAD);
  /* More connections than ports: some ports carry two or three destinations. */
  static uint8_t uses[65536];
  int distinct = 0, shared = 0;
  for (int i = 0; i < SPREAD; i++) {
    if (uses[lports[i]]++ == 0) distinct++;
    else if (uses[lports[i]] == 2) shared++;
  }
  printf("%d connections to 3 addresses use %d distinct local ports (%d shared)\n", SPREAD,
         distinct, shared);
  CHECK(distinct <= RANGE);
  CHECK(shared > 0);
  CHECK(rp_stack_problem(&r) == NULL);

  /* Fill the first server's 4-tuples: EADDRNOTAVAIL exactly at the range. */
  int to_first = SPREAD / 3 + (SPREAD % 3 > 0), more = 0, rc = 0;
  uint16_t lp;
  static int extra[RANGE];
  while (to_first < RANGE + 5) {
    rc = open_to(&r, servers[0], &lp);
    if (rc < 0) break;
    extra[more++] = rc;
    to_first++;
  }
  printf("connections to one destination: %d, then connect() = %d\n", to_first, rc);
  /* The range less the two ports held by bind() and listen(). */
  CHECK_EQ(to_first, RANGE - 2);
  CHECK_EQ(rc, -EADDRNOTAVAIL);
  /* ...while another destination (another port on the same server) still works. */
  int fd2 = ustcp_socket(r.s);
  struct ustcp_addr other = {servers[0], 81};
  CHECK_EQ(ustcp_connect(r.s, fd2, &other), -EINPROGRESS);
  CHECK(rp_stack_problem(&r) == NULL);

  for (int i = 0; i < SPREAD; i++) if (fds[i] >= 0) ustcp_close(r.s, fds[i]);
  for (int i = 0; i < more; i++) ustcp_close(r.s, extra[i]);
  ustcp_close(r.s, fd2);
  ustcp_close(r.s, b);
  ustcp_close(r.s, l);
  rp_advance(&r, 3000 * USTCP_SEC);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.conns_alive, 0);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  RUN(ports_shared_across_destinations);
  return check_report();
}
