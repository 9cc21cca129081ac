/* `ustcp stat`: asks a running ustcp (serve, connect, get, or any program that
 * opened a control socket with ustcp_loop_ctl_open) for its sockets, like
 * `ss -tan`, or its counters, like `netstat -s`. The running stack writes the
 * whole report on connect; this command prints the part asked for. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "net.h"
#include "tools.h"

#define STAT_TIMEOUT_S 5   /* a running stack answers at once: its loop writes the report */

static void usage(FILE *f)
{
  fprintf(f,
    "usage: ustcp stat [--tun NAME | --ctl PATH] [-s | -a]\n"
    "\n"
    "Prints the sockets of a running ustcp (ustcp serve, connect, get) with their\n"
    "TCP states, like ss -tan: LISTEN, ESTABLISHED, TIME_WAIT, ...\n"
    "\n"
    "options:\n"
    "  --tun NAME     the stack on device NAME (default ustcp0) in this network\n"
    "                 namespace; its control socket is /run/ustcp/NAME.sock (inside a\n"
    "                 namespace of ip netns: /run/ustcp/netns-NS/NAME.sock; or under\n"
    "                 $XDG_RUNTIME_DIR/ustcp, /tmp/ustcp-UID when /run is not writable)\n"
    "  --ctl PATH     the control socket given to that ustcp with --ctl\n"
    "  -s, --stats    the stack's counters instead (like netstat -s)\n"
    "  -a, --all      the table and the counters\n"
    "\n"
    "examples:\n"
    "  ustcp stat\n"
    "  sudo ip netns exec play ustcp stat     # a ustcp running in namespace play\n"
    "  ustcp stat --tun t1 -s\n"
    "  ustcp stat --ctl /tmp/u.sock | grep TIME_WAIT\n");
}

int stat_main(int argc, char **argv)
{
  const char *tun = "ustcp0", *ctl = NULL;
  bool table = true, counters = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
    if (!strcmp(a, "--tun") || !strcmp(a, "--ctl")) {
      if (!v) { fprintf(stderr, "ustcp stat: %s needs a value\n", a); return 2; }
      if (a[2] == 't') tun = v; else ctl = v;
      i++;
    } else if (!strcmp(a, "-s") || !strcmp(a, "--stats")) {
      table = false;
      counters = true;
    } else if (!strcmp(a, "-a") || !strcmp(a, "--all")) {
      table = counters = true;
    } else {
      fprintf(stderr, "ustcp stat: unknown option '%s' (try: ustcp stat --help)\n", a);
      return 2;
    }
  }
  char buf[256];
  if (!ctl) ctl = net_ctl_default(tun, false, buf, sizeof buf);
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  if (strlen(ctl) >= sizeof sun.sun_path) { fprintf(stderr, "ustcp stat: path too long: %s\n", ctl); return 2; }
  strcpy(sun.sun_path, ctl);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
    fprintf(stderr, "ustcp stat: no running ustcp answers on %s (%s)\n", ctl, strerror(errno));
    if (fd >= 0) close(fd);
    return 1;
  }
  struct timeval tv = {STAT_TIMEOUT_S, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 > cap) {
      cap = cap ? cap * 2 : 16384;
      char *nt = realloc(text, cap + 1);
      if (!nt) { free(text); close(fd); return 1; }
      text = nt;
    }
    ssize_t n = recv(fd, text + len, cap - len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      /* SO_RCVTIMEO expired: something accepted the connection but does not
       * answer (a stopped or busy process) */
      if (len)
        fprintf(stderr, "ustcp stat: the answer from %s stopped after %zu bytes: nothing more "
                        "within %d s (is that ustcp stopped or busy?)\n", ctl, len, STAT_TIMEOUT_S);
      else
        fprintf(stderr, "ustcp stat: timeout: connected to %s, but nothing came back "
                        "within %d s (is that ustcp stopped, e.g. by ^Z or a debugger, or busy?)\n",
                ctl, STAT_TIMEOUT_S);
      free(text);
      close(fd);
      return 1;
    }
    if (n < 0) { fprintf(stderr, "ustcp stat: reading from %s: %s\n", ctl, strerror(errno)); free(text); close(fd); return 1; }
    if (n == 0) break;
    len += (size_t)n;
  }
  close(fd);
  if (!text) { fprintf(stderr, "ustcp stat: empty answer from %s\n", ctl); return 1; }
  text[len] = 0;
  char *sep = strstr(text, "--- counters\n");
  char *counters_text = sep ? sep + strlen("--- counters\n") : NULL;
  if (sep) *sep = 0;
  if (table) fputs(text, stdout);
  if (counters && counters_text) fputs(counters_text, stdout);
  free(text);
  return 0;
}
