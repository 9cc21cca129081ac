/* An event-driven server on ustcp: one readiness callback, non-blocking calls,
 * any number of clients at once, on a TUN device. Each client gets every line it
 * sends back in upper case; the server closes when the client does.
 *
 * The stack calls on_ready(fd, events) at the end of each event that changed a
 * socket's readiness (ustcp_set_ready_cb); the callback may call any socket
 * function. ustcp_loop_run() drives the stack until SIGINT/SIGTERM.
 *
 *   build:  make build                 (this is build/examples/echo_events)
 *   run:    sudo build/examples/echo_events                  # ustcp0, 10.7.0.2:7
 *           printf 'hello\n' | socat - TCP:10.7.0.2:7         # -> HELLO
 *   usage:  echo_events [TUN [ADDR [PEER [PORT]]]]
 */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ustcp.h"
#include "ustcp_loop.h"

#define MAX_FDS 4096

struct client {
  char out[8192];     /* bytes waiting for room in the send buffer */
  size_t len, off;
  bool eof;
};

static struct ustcp_loop *loop;
static struct ustcp_stack *stack;
static int listen_fd;
static struct client *clients[MAX_FDS];

static void on_signal(int sig) { (void)sig; ustcp_loop_stop(loop); }

static void drop(int fd)
{
  ustcp_close(stack, fd);
  free(clients[fd]);
  clients[fd] = NULL;
}

static void serve(int fd)
{
  struct client *c = clients[fd];
  for (;;) {
    /* first what is pending, then more input: the send buffer sets the pace */
    while (c->off < c->len) {
      ssize_t n = ustcp_send(stack, fd, c->out + c->off, c->len - c->off, 0);
      if (n == -EAGAIN) return;          /* called again when writable */
      if (n < 0) { drop(fd); return; }
      c->off += (size_t)n;
    }
    c->off = c->len = 0;
    if (c->eof) { drop(fd); return; }
    ssize_t n = ustcp_recv(stack, fd, c->out, sizeof c->out, 0);
    if (n == -EAGAIN) return;            /* called again when readable */
    if (n <= 0) {                        /* 0: the client closed; <0: reset */
      if (n < 0) { drop(fd); return; }
      c->eof = true;
      continue;
    }
    for (ssize_t i = 0; i < n; i++) c->out[i] = (char)toupper((unsigned char)c->out[i]);
    c->len = (size_t)n;
  }
}

static void on_ready(void *ctx, int fd, unsigned events)
{
  (void)ctx; (void)events;
  if (fd == listen_fd) {
    int cfd;
    while ((cfd = ustcp_accept(stack, listen_fd, NULL)) >= 0) {
      if (cfd >= MAX_FDS || !(clients[cfd] = calloc(1, sizeof *clients[cfd]))) {
        ustcp_close(stack, cfd);
        continue;
      }
      serve(cfd);
    }
    return;
  }
  if (fd >= 0 && fd < MAX_FDS && clients[fd]) serve(fd);
}

static uint32_t parse_ip(const char *s)
{
  unsigned a, b, c, d;
  if (sscanf(s, "%u.%u.%u.%u", &a, &b, &c, &d) != 4 || a > 255 || b > 255 || c > 255 || d > 255) {
    fprintf(stderr, "echo_events: bad address %s\n", s);
    exit(2);
  }
  return a << 24 | b << 16 | c << 8 | d;
}

int main(int argc, char **argv)
{
  struct ustcp_loop_config lc;
  ustcp_loop_config_default(&lc);
  lc.configure = true;
  if (argc > 1) lc.tun_name = argv[1];
  if (argc > 2) lc.addr = parse_ip(argv[2]);
  if (argc > 3) lc.peer = parse_ip(argv[3]);
  uint16_t port = argc > 4 ? (uint16_t)atoi(argv[4]) : 7;
  char err[256];
  if (ustcp_loop_new(&lc, &loop, err, sizeof err) < 0) {
    fprintf(stderr, "echo_events: %s\n", err);
    return 1;
  }
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  stack = ustcp_loop_stack(loop);
  ustcp_set_ready_cb(stack, on_ready, NULL);
  listen_fd = ustcp_socket(stack);
  struct ustcp_addr any = {.ip = 0, .port = port};   /* IPv4 (family 0), any address */
  if (ustcp_bind(stack, listen_fd, &any) < 0 || ustcp_listen(stack, listen_fd, 128) < 0) {
    fprintf(stderr, "echo_events: cannot listen on port %u\n", port);
    return 1;
  }
  fprintf(stderr, "echo_events: listening on port %u of device %s\n", port, ustcp_loop_ifname(loop));
  ustcp_loop_run(loop);
  ustcp_set_ready_cb(stack, NULL, NULL);
  for (int fd = 0; fd < MAX_FDS; fd++)
    if (clients[fd]) drop(fd);
  ustcp_close(stack, listen_fd);
  ustcp_loop_free(loop);
  return 0;
}
