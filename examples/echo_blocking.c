/* A blocking echo server in the seeds' style -- socket, bind, listen, accept,
 * read, write, close, in one thread -- on ustcp, on a TUN device.
 *
 * The only difference from the same program on kernel sockets is the ustcp_
 * prefix and the loop argument: ustcp_loop_accept / _recv / _send block by
 * running the stack's event loop (packets, timers) until the socket is ready.
 *
 *   build:  make build                 (this is build/examples/echo_blocking)
 *   run:    sudo build/examples/echo_blocking            # ustcp0, 10.7.0.2:7
 *           echo hello | socat - TCP:10.7.0.2:7          # from the kernel side
 *   usage:  echo_blocking [--once] [TUN [ADDR [PEER [PORT]]]]
 *           --once: serve one client, then exit
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ustcp.h"
#include "ustcp_loop.h"

static struct ustcp_loop *loop;
static void on_signal(int sig) { (void)sig; ustcp_loop_stop(loop); }

static uint32_t parse_ip(const char *s)
{
  unsigned a, b, c, d;
  if (sscanf(s, "%u.%u.%u.%u", &a, &b, &c, &d) != 4 || a > 255 || b > 255 || c > 255 || d > 255) {
    fprintf(stderr, "echo_blocking: bad address %s\n", s);
    exit(2);
  }
  return a << 24 | b << 16 | c << 8 | d;
}

int main(int argc, char **argv)
{
  bool once = argc > 1 && !strcmp(argv[1], "--once");
  if (once) { argc--; argv++; }
  struct ustcp_loop_config lc;
  ustcp_loop_config_default(&lc);          /* ustcp0, ustcp 10.7.0.2, kernel 10.7.0.1 */
  lc.configure = true;                     /* give the kernel side its address (CAP_NET_ADMIN) */
  if (argc > 1) lc.tun_name = argv[1];
  if (argc > 2) lc.addr = parse_ip(argv[2]);
  if (argc > 3) lc.peer = parse_ip(argv[3]);
  uint16_t port = argc > 4 ? (uint16_t)atoi(argv[4]) : 7;

  char err[256];
  if (ustcp_loop_new(&lc, &loop, err, sizeof err) < 0) {
    fprintf(stderr, "echo_blocking: %s\n", err);
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  struct ustcp_stack *s = ustcp_loop_stack(loop);

  int lfd = ustcp_socket(s);                                     /* socket() */
  struct ustcp_addr any = {.ip = 0, .port = port};   /* IPv4 (family 0), any address */
  if (ustcp_bind(s, lfd, &any) < 0 || ustcp_listen(s, lfd, 16) < 0) {   /* bind(), listen() */
    fprintf(stderr, "echo_blocking: cannot listen on port %u\n", port);
    return 1;
  }
  fprintf(stderr, "echo_blocking: listening on port %u of device %s\n", port, ustcp_loop_ifname(loop));
  for (;;) {
    struct ustcp_addr peer;
    int cfd = ustcp_loop_accept(loop, lfd, &peer);               /* accept(): blocks */
    if (cfd < 0) break;                                          /* -EINTR: stopped */
    char buf[4096];
    ssize_t n;
    while ((n = ustcp_loop_recv(loop, cfd, buf, sizeof buf)) > 0)   /* read(): blocks */
      if (ustcp_loop_send(loop, cfd, buf, (size_t)n) < 0) break;    /* write(): all of it */
    ustcp_loop_close(loop, cfd);                                    /* close(): FIN */
    if (once) break;
  }
  ustcp_loop_close(loop, lfd);
  ustcp_loop_drain(loop, 3000);   /* let the last FIN and its ACK through */
  ustcp_loop_free(loop);
  return 0;
}
