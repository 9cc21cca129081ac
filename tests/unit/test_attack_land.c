/* Attack class: LAND and loopback feedback loops (issue 10, point 1).
 *
 * A SYN whose source is the stack's own address and port (the 1997 "LAND"
 * attack) used to make ustcp_input never return: the SYN-ACK looped back to the
 * same connection, was unacceptable, drew an ACK, which looped back, and so on.
 * Two defences, each tested here on its own:
 *  - a packet from the link whose source is our own address is a martian and is
 *    dropped and counted (Linux: fib_validate_source with accept_local = 0);
 *  - whatever the engine does, the looped-back packets one call processes are
 *    bounded by cfg.netdev_budget (Linux's net.core.netdev_budget); the rest
 *    stay queued for the next call, and ustcp_next_deadline says "now".
 * Self-connect (H9) still works: test_e2e H9_self_connect, script H9-self-connect.
 *
 * Every scenario runs in a child process under alarm(): before the fix the test
 * fails (SIGALRM) instead of hanging the suite. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "check.h"
#include "rawpeer.h"

/* Runs fn in a child with a 10-second alarm; the child's failed checks are its
 * exit status. */
static void in_child(void (*fn)(void), const char *name)
{
  fflush(NULL);
  pid_t pid = fork();
  if (pid < 0) { CHECK(!"fork"); return; }
  if (pid == 0) {
    alarm(10);
    fn();
    fflush(NULL);
    _exit(check_failed ? 1 : 0);
  }
  int st = 0;
  CHECK(waitpid(pid, &st, 0) == pid);
  if (WIFSIGNALED(st))
    fprintf(stderr, "%s: killed by signal %d (%s)\n", name, WTERMSIG(st),
            WTERMSIG(st) == SIGALRM ? "did not return in 10 s: a feedback loop" : "crash");
  CHECK(WIFEXITED(st));
  CHECK_EQ(WIFEXITED(st) ? WEXITSTATUS(st) : -1, 0);
}

/* Counts the packets that cross the stack's IP layer (capture sees both ways). */
struct cap_count { uint64_t in, out; };
static void cap_cb(void *ctx, bool outbound, const uint8_t *pkt, size_t len, uint64_t now)
{
  struct cap_count *c = ctx;
  (void)pkt; (void)len; (void)now;
  if (outbound) c->out++; else c->in++;
}

static size_t table_len(struct rp *r)
{
  struct ustcp_sock_row rows[8];
  return ustcp_sock_table(r->s, rows, 8);
}

/* The LAND SYN (own address and port both ends) to a listener, to a closed
 * port, and a LAND ACK: dropped at IP input, counted, nothing sent. */
static void land_dropped(void)
{
  struct rp r;
  rp_init(&r, NULL, 1);
  int l = rp_listen(&r, 80, 16);
  CHECK(l >= 0);
  rp_send_from(&r, RP_LOCAL_IP, 80, 80, 1000, 0, TCP_SYN, 65535, NULL, NULL, 0);
  rp_send_from(&r, RP_LOCAL_IP, 81, 81, 1000, 0, TCP_SYN, 65535, NULL, NULL, 0);
  rp_send_from(&r, RP_LOCAL_IP, 80, 80, 1000, 5, TCP_ACK, 65535, NULL, NULL, 0);
  /* Another source port on our own address: as martian as the first. */
  rp_send_from(&r, RP_LOCAL_IP, 4444, 80, 1000, 0, TCP_SYN, 65535, NULL, NULL, 0);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK_EQ(st.ip_martian_src, 4);
  CHECK_EQ(st.tcp_in, 0);
  CHECK_EQ(r.sent_total, 0);               /* no SYN-ACK, no RST, to anyone */
  CHECK_EQ(table_len(&r), 1);              /* the listener only: no half-open entry */
  rp_advance(&r, 10 * USTCP_SEC);
  CHECK_EQ(r.sent_total, 0);
  CHECK(rp_stack_problem(&r) == NULL);
  /* The stack still serves a real peer. */
  struct rp_conn c;
  CHECK(rp_handshake_in(&r, &c, l, RP_PEER_IP, 5555, 80, 77, NULL) >= 0);
  rp_free(&r);
}

/* With accept_local = 1 (Linux's net.ipv4.conf.*.accept_local) the LAND SYN gets
 * in and the engine talks to itself. Whatever it does, one call processes at most
 * netdev_budget looped-back packets, returns, and asks to be called again. */
static void land_loop_bounded(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.accept_local = 1;
  CHECK_EQ(cfg.netdev_budget, 300);        /* Linux's net.core.netdev_budget */
  cfg.netdev_budget = 50;
  struct rp r;
  rp_init(&r, &cfg, 2);
  struct cap_count cc = {0, 0};
  ustcp_set_capture_cb(r.s, cap_cb, &cc);
  CHECK(rp_listen(&r, 80, 16) >= 0);
  rp_send_from(&r, RP_LOCAL_IP, 80, 80, 1000, 0, TCP_SYN, 65535, NULL, NULL, 0);
  /* The injected SYN plus at most the budget of looped-back packets. */
  CHECK(cc.in >= 2);                       /* it did get in and loop */
  CHECK(cc.in <= 1 + 50);
  bool still_looping = ustcp_next_deadline(r.s) <= r.now;
  printf("LAND with accept_local=1: first call processed %llu packets in\n",
         (unsigned long long)cc.in);
  /* Each later call is bounded too; while packets wait, the deadline is now. */
  uint64_t calls = 0, max_in = 0;
  for (int i = 0; i < 1000; i++) {
    struct ustcp_stats st;
    ustcp_get_stats(r.s, &st);
    if (ustcp_next_deadline(r.s) > r.now) break;
    uint64_t before = cc.in;
    ustcp_poll(r.s, r.now);
    if (cc.in - before > max_in) max_in = cc.in - before;
    calls++;
  }
  CHECK(max_in <= 50);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  /* Whether the engine's ACK loop ever ends is TCP's business (Linux breaks
   * such loops with tcp_oow_rate_limited); the stack's is that no call runs
   * away, and that a call which leaves work says so. */
  if (still_looping) CHECK(st.loop_budget_hits >= 1);
  printf("then %llu calls of at most %llu packets each; budget hits %llu\n",
         (unsigned long long)calls, (unsigned long long)max_in,
         (unsigned long long)st.loop_budget_hits);
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);                             /* queued loopback packets freed (ASan) */
}

/* A big self-connected transfer exceeds the budget in one call: nothing is lost,
 * the rest waits for the next call (the caller sees a deadline of now). */
static void self_connect_over_budget(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  cfg.netdev_budget = 8;
  struct rp r;
  rp_init(&r, &cfg, 3);
  struct cap_count cc = {0, 0};
  ustcp_set_capture_cb(r.s, cap_cb, &cc);
  int fd = ustcp_socket(r.s);
  int one = 1;
  CHECK_EQ(ustcp_setsockopt(r.s, fd, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &one, sizeof one), 0);
  struct ustcp_addr a = {RP_LOCAL_IP, 7000};
  CHECK_EQ(ustcp_bind(r.s, fd, &a), 0);
  CHECK_EQ(ustcp_connect(r.s, fd, &a), -EINPROGRESS);
  rp_advance(&r, 1000);
  CHECK_EQ(rp_state(&r, fd), USTCP_ESTABLISHED);
  static uint8_t data[60000], back[60000];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
  size_t sent = 0, got = 0;
  uint64_t max_in = 0;
  for (int round = 0; round < 10000 && got < sizeof data; round++) {
    uint64_t before = cc.in;
    if (sent < sizeof data) {
      ssize_t n = ustcp_send(r.s, fd, data + sent, sizeof data - sent, 0);
      if (n > 0) sent += (size_t)n;
    }
    ustcp_poll(r.s, r.now);
    ssize_t m = ustcp_recv(r.s, fd, back + got, sizeof back - got, 0);
    if (m > 0) got += (size_t)m;
    if (cc.in - before > max_in) max_in = cc.in - before;
    if (ustcp_next_deadline(r.s) > r.now) r.now += 1000;
  }
  CHECK_EQ(got, sizeof data);
  CHECK_MEM(back, data, sizeof data);
  /* send + poll + recv: three calls, each within its budget. */
  CHECK(max_in <= 3 * 8);
  struct ustcp_stats st;
  ustcp_get_stats(r.s, &st);
  CHECK(st.loop_budget_hits >= 1);
  CHECK_EQ(st.loop_dropped, 0);
  CHECK_EQ(r.sent_total, 0);               /* nothing left the stack */
  CHECK(rp_stack_problem(&r) == NULL);
  rp_free(&r);
}

int main(void)
{
  in_child(land_dropped, "land_dropped");
  in_child(land_loop_bounded, "land_loop_bounded");
  in_child(self_connect_over_budget, "self_connect_over_budget");
  return check_report();
}
