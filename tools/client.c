/* `ustcp connect` (stdin/stdout over one connection, like nc) and `ustcp get`
 * (an HTTP/1.1 GET), both written in the blocking style on the loop
 * (ustcp_loop_connect / ustcp_loop_recv / ustcp_loop_send).
 *
 *   connect_main -> net_open -> ustcp_loop_connect -> rounds of the loop:
 *                   socket -> stdout; stdin -> socket; stdin EOF -> shutdown(SHUT_WR)
 *                   (half-close: keep receiving until the peer's EOF); the peer's
 *                   EOF -> close -> drain (the close handshake finishes) -> linger
 *   get_main     -> parse URL -> connect -> request -> status line and headers ->
 *                   body by Content-Length, chunked, or until EOF -> file/stdout
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>
#include "net.h"
#include "tools.h"
#include "wire/wire.h"

static int write_all(int fd, const void *buf, size_t len)
{
  const uint8_t *p = buf;
  while (len) {
    ssize_t w = write(fd, p, len);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

/* After the application's close: let the close handshake finish, then keep the
 * stack up for linger seconds (TIME_WAIT answers a retransmitted FIN, and
 * `ustcp stat` shows it). */
static void finish(struct ustcp_loop *l, int drain_ms, uint64_t linger_s)
{
  ustcp_loop_drain(l, drain_ms);
  uint64_t end = ustcp_loop_now_us() + linger_s * USTCP_SEC;
  while (!ustcp_loop_stopped(l)) {
    uint64_t now = ustcp_loop_now_us();
    if (now >= end) break;
    ustcp_loop_run_once(l, (int)((end - now) / 1000 + 1));
  }
}

/* ---- connect ---- */

static void on_stdin(void *ctx, int wfd, unsigned ev)
{
  (void)wfd; (void)ev;
  *(bool *)ctx = true;
}

static void connect_usage(FILE *f)
{
  fprintf(f,
    "usage: ustcp connect HOST:PORT [OPTIONS]     (HOST: IPV4, or [IPV6])\n"
    "\n"
    "Connects with ustcp, over a TUN device, and copies stdin to the connection and\n"
    "the connection to stdout, like nc. At the end of stdin ustcp shuts down its\n"
    "sending side (half-close, FIN) and keeps receiving until the peer's FIN; when\n"
    "the peer's FIN comes first, ustcp closes too. Exit status 0, or 1 when the\n"
    "connection fails (refused, reset, timed out).\n"
    "\n"
    "options:\n"
    "  --port-local N    bind this local port (default: ephemeral)\n"
    "  --linger SECS     after the close, keep the stack up this long (TIME_WAIT,\n"
    "                    `ustcp stat`); default 0\n"
    "  --timeout SECS    give up connecting or waiting after SECS (default 0: never)\n"
    "\n"
    "%s"
    "\n"
    "examples:\n"
    "  socat TCP-LISTEN:7000,fork EXEC:cat &      # an echo server on the kernel side\n"
    "  echo hello | ustcp connect 10.7.0.1:7000\n"
    "  ustcp connect 10.7.0.1:22 --tun t1 --addr 10.9.0.2 --peer 10.9.0.1\n"
    "  ustcp connect '[fd00::1]:7000' --addr fd00::2 --peer fd00::1   # over IPv6\n"
    "  ustcp connect '[fd00::1]:7000' --packet veth0 --addr fd00::2/64   # IPv6 on a veth\n",
    net_opts_help);
}

int connect_main(int argc, char **argv)
{
  struct net_opts o;
  net_opts_init(&o);
  const char *target = NULL;
  uint64_t linger = 0, timeout = 0, lport = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int r = net_opts_parse(&o, "connect", argc, argv, &i);
    if (r < 0) return 2;
    if (r > 0) continue;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { connect_usage(stdout); return 0; }
    if (!strcmp(a, "--linger") || !strcmp(a, "--timeout") || !strcmp(a, "--port-local")) {
      if (!v) { fprintf(stderr, "ustcp connect: %s needs a value\n", a); return 2; }
      i++;
      uint64_t *dst = a[2] == 'l' ? &linger : a[2] == 't' ? &timeout : &lport;
      if (net_parse_u64(v, a[2] == 'p' ? 1 : 0, a[2] == 'p' ? 65535 : 86400, dst)) {
        fprintf(stderr, "ustcp connect: bad %s '%s'\n", a, v);
        return 2;
      }
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "ustcp connect: unknown option '%s' (try: ustcp connect --help)\n", a);
      return 2;
    } else if (target) {
      fprintf(stderr, "ustcp connect: one HOST:PORT only ('%s')\n", a);
      return 2;
    } else {
      target = a;
    }
  }
  struct ustcp_addr dst;
  if (!target) { fprintf(stderr, "ustcp connect: HOST:PORT missing (try: ustcp connect --help)\n"); return 2; }
  if (net_parse_hostport(target, &dst)) {
    fprintf(stderr, "ustcp connect: '%s' is not IPV4:PORT or [IPV6]:PORT (ustcp has no DNS)\n", target);
    return 2;
  }
  struct ustcp_loop *l = net_open(&o, "connect");
  if (!l) return 1;
  struct ustcp_stack *st = ustcp_loop_stack(l);
  ustcp_loop_set_timeout(l, (int)(timeout * 1000));
  char e[128];
  int fd = ustcp_socket(st);
  int rc = fd;
  if (fd >= 0 && lport) {
    struct ustcp_addr la = {0, (uint16_t)lport};
    rc = ustcp_bind(st, fd, &la);
  }
  if (rc >= 0) rc = ustcp_loop_connect(l, fd, &dst);
  if (rc < 0) {
    fprintf(stderr, "ustcp connect: %s: %s\n", target, net_strerror(rc, e, sizeof e));
    net_close(l);
    return 1;
  }
  if (o.verbose) fprintf(stderr, "ustcp connect: connected to %s\n", target);
  /* stdin: watched by epoll when it can be (pipe, tty, socket); a regular file
   * or /dev/null is always readable and is just read. */
  bool stdin_ready = false, stdin_always = false;
  if (ustcp_loop_watch(l, 0, EPOLLIN, on_stdin, &stdin_ready) < 0) stdin_always = true;
  static uint8_t buf[65536], inbuf[65536];
  size_t in_len = 0, in_off = 0;
  bool stdin_eof = false, shut = false, peer_eof = false;
  int status = 0;
  for (;;) {
    /* connection -> stdout */
    ssize_t n;
    while ((n = ustcp_recv(st, fd, buf, sizeof buf, 0)) > 0)
      if (write_all(1, buf, (size_t)n) < 0) { peer_eof = true; break; }
    if (n == 0) peer_eof = true;
    else if (n < 0 && n != -EAGAIN) {
      fprintf(stderr, "ustcp connect: %s: %s\n", target, net_strerror((int)n, e, sizeof e));
      status = 1;
      break;
    }
    /* stdin -> connection */
    for (;;) {
      if (in_off < in_len) {
        ssize_t w = ustcp_send(st, fd, inbuf + in_off, in_len - in_off, 0);
        if (w == -EAGAIN) break;
        if (w < 0) {
          fprintf(stderr, "ustcp connect: send: %s\n", net_strerror((int)w, e, sizeof e));
          status = 1;
          goto out;
        }
        in_off += (size_t)w;
        continue;
      }
      in_off = in_len = 0;
      if (stdin_eof || peer_eof || (!stdin_ready && !stdin_always)) break;
      ssize_t r = read(0, inbuf, sizeof inbuf);
      stdin_ready = false;
      if (r > 0) in_len = (size_t)r;
      else if (r == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdin_eof = true;
        if (!stdin_always) ustcp_loop_unwatch(l, 0);
      }
      if (r <= 0) break;
    }
    if (stdin_eof && in_off >= in_len && !shut) {
      ustcp_shutdown(st, fd, USTCP_SHUT_WR);   /* half-close: our FIN, keep reading */
      shut = true;
    }
    /* The peer's EOF ends the session once what stdin gave is handed over. */
    if (peer_eof && in_off >= in_len) break;
    if (peer_eof && in_off < in_len && ustcp_sock_events(st, fd) & USTCP_POLLERR) break;
    rc = ustcp_loop_run_once(l, stdin_always && !stdin_eof && in_off >= in_len ? 0 : -1);
    if (rc == -EINTR) break;
  }
out:
  ustcp_close(st, fd);
  finish(l, 10000, linger);
  net_close(l);
  return status;
}

/* ---- get ---- */

static void get_usage(FILE *f)
{
  fprintf(f,
    "usage: ustcp get URL [-o FILE] [OPTIONS]\n"
    "\n"
    "Fetches URL (http://IPV4[:PORT]/PATH or http://[IPV6][:PORT]/PATH) with an\n"
    "HTTP/1.1 GET over ustcp, on a TUN\n"
    "device, and writes the body to FILE or stdout. Exit status 0 on a 2xx response\n"
    "with the whole body (Content-Length or chunked), 1 otherwise (error status,\n"
    "connection failure, short body), 2 for bad usage.\n"
    "\n"
    "options:\n"
    "  -o, --output FILE  write the body to FILE (default stdout)\n"
    "  --timeout SECS     give up when nothing arrives for SECS (default 30)\n"
    "  -i, --include      print the status line and headers to stderr\n"
    "  --progress         a progress meter on stderr (default: when the body goes to a\n"
    "                     file or pipe and stderr is a terminal, as curl; after 0.5 s)\n"
    "  --no-progress      never\n"
    "\n"
    "%s"
    "\n"
    "examples:\n"
    "  python3 -m http.server 8000 --bind 10.7.0.1 &   # on the kernel side\n"
    "  ustcp get http://10.7.0.1:8000/big.bin -o big.bin\n"
    "  ustcp get http://10.9.0.1/ --tun t1 --addr 10.9.0.2 --peer 10.9.0.1\n"
    "  ustcp get 'http://[fd00::1]:8000/' --addr fd00::2 --peer fd00::1   # IPv6\n"
    "  ustcp get 'http://[fd00::1]:8000/' --tap tp0 --addr fd00::2/64 --peer fd00::1\n"
    "                                  # IPv6 over TAP (neighbour discovery, DAD)\n",
    net_opts_help);
}

/* The progress meter (like curl's when its output is not the terminal):
 * "\r  12.5 MiB of 1.0 GiB  (1%)  48.2 MiB/s" redrawn on stderr. */
struct progress {
  int mode;                  /* 0 never, 1 after PROGRESS_DELAY_US, 2 from the start */
  uint64_t total;            /* UINT64_MAX: unknown */
  uint64_t done;
  uint64_t start_us, last_us;
  bool shown;
};
#define PROGRESS_DELAY_US (500 * 1000ull)
#define PROGRESS_EVERY_US (200 * 1000ull)

static void human(uint64_t n, char *buf, size_t cap)
{
  static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = (double)n;
  int u = 0;
  while (v >= 1024 && u < 4) { v /= 1024; u++; }
  if (u == 0) snprintf(buf, cap, "%llu B", (unsigned long long)n);
  else snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

static void progress_draw(struct progress *p, bool final)
{
  if (!p->mode) return;
  uint64_t now = ustcp_loop_now_us();
  if (!final) {
    if (p->mode == 1 && now - p->start_us < PROGRESS_DELAY_US) return;
    if (p->shown && now - p->last_us < PROGRESS_EVERY_US) return;
  } else if (!p->shown) {
    return;   /* a short transfer: no meter at all */
  }
  p->last_us = now;
  p->shown = true;
  char d[32], t[32], r[32];
  human(p->done, d, sizeof d);
  double secs = (double)(now - p->start_us) / 1e6;
  human(secs > 0 ? (uint64_t)((double)p->done / secs) : 0, r, sizeof r);
  if (p->total != UINT64_MAX) {
    human(p->total, t, sizeof t);
    fprintf(stderr, "\r  %s of %s (%3.0f%%)  %s/s   ", d, t,
            p->total ? 100.0 * (double)p->done / (double)p->total : 100.0, r);
  } else {
    fprintf(stderr, "\r  %s  %s/s   ", d, r);
  }
  if (final) fputc('\n', stderr);
  fflush(stderr);
}

struct reader {
  struct ustcp_loop *l;
  struct progress *pg;
  int fd;
  uint8_t buf[65536];
  size_t len, off;
  bool eof;
  int err;
};

/* Ensures at least one unread byte; false at EOF or on error. */
static bool rd_fill(struct reader *r)
{
  if (r->off < r->len) return true;
  if (r->eof || r->err) return false;
  ssize_t n = ustcp_loop_recv(r->l, r->fd, r->buf, sizeof r->buf);
  if (n < 0) { r->err = (int)n; return false; }
  if (n == 0) { r->eof = true; return false; }
  r->len = (size_t)n;
  r->off = 0;
  return true;
}

/* Reads one line (CRLF or LF, stripped) into out. Returns its length or -1. */
static int rd_line(struct reader *r, char *out, size_t cap)
{
  size_t n = 0;
  for (;;) {
    if (!rd_fill(r)) return -1;
    char ch = (char)r->buf[r->off++];
    if (ch == '\n') break;
    if (n + 1 >= cap) return -1;
    out[n++] = ch;
  }
  if (n && out[n - 1] == '\r') n--;
  out[n] = 0;
  return (int)n;
}

/* Copies up to want bytes (all if want == UINT64_MAX, until EOF) to out_fd.
 * Returns the number copied. */
static uint64_t rd_copy(struct reader *r, int out_fd, uint64_t want, int *werr)
{
  uint64_t got = 0;
  while (got < want && rd_fill(r)) {
    size_t n = r->len - r->off;
    if (n > want - got) n = (size_t)(want - got);
    if (write_all(out_fd, r->buf + r->off, n) < 0) { *werr = -errno; return got; }
    r->off += n;
    got += n;
    if (r->pg) {
      r->pg->done += n;
      progress_draw(r->pg, false);
    }
  }
  return got;
}

int get_main(int argc, char **argv)
{
  struct net_opts o;
  net_opts_init(&o);
  const char *url = NULL, *outpath = NULL;
  uint64_t timeout = 30;
  bool include = false;
  int progress_opt = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int r = net_opts_parse(&o, "get", argc, argv, &i);
    if (r < 0) return 2;
    if (r > 0) continue;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { get_usage(stdout); return 0; }
    if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      if (!v) { fprintf(stderr, "ustcp get: %s needs a file name\n", a); return 2; }
      outpath = v;
      i++;
    } else if (!strcmp(a, "--timeout")) {
      if (!v || net_parse_u64(v, 1, 86400, &timeout)) { fprintf(stderr, "ustcp get: bad --timeout '%s'\n", v ? v : ""); return 2; }
      i++;
    } else if (!strcmp(a, "-i") || !strcmp(a, "--include")) {
      include = true;
    } else if (!strcmp(a, "--progress")) {
      progress_opt = 1;
    } else if (!strcmp(a, "--no-progress")) {
      progress_opt = 0;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "ustcp get: unknown option '%s' (try: ustcp get --help)\n", a);
      return 2;
    } else if (url) {
      fprintf(stderr, "ustcp get: one URL only ('%s')\n", a);
      return 2;
    } else {
      url = a;
    }
  }
  if (!url) { fprintf(stderr, "ustcp get: URL missing (try: ustcp get --help)\n"); return 2; }
  /* http://HOST[:PORT][/PATH] with HOST an IPv4 address */
  if (strncasecmp(url, "http://", 7)) {
    fprintf(stderr, "ustcp get: only http:// URLs ('%s')\n", url);
    return 2;
  }
  const char *hp = url + 7;
  const char *slash = strchr(hp, '/');
  const char *path = slash ? slash : "/";
  char hostport[128];
  size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
  if (hl == 0 || hl >= sizeof hostport) { fprintf(stderr, "ustcp get: bad URL '%s'\n", url); return 2; }
  memcpy(hostport, hp, hl);
  hostport[hl] = 0;
  char withport[140];
  /* [IPV6] without a port: the colons are the address's */
  const char *rb = hostport[0] == '[' ? strchr(hostport, ']') : NULL;
  if (rb ? rb[1] == 0 : !strchr(hostport, ':')) snprintf(withport, sizeof withport, "%s:80", hostport);
  else snprintf(withport, sizeof withport, "%s", hostport);
  struct ustcp_addr dst;
  if (net_parse_hostport(withport, &dst)) {
    fprintf(stderr, "ustcp get: '%s' is not IPV4[:PORT] or [IPV6][:PORT] (ustcp has no DNS)\n", hostport);
    return 2;
  }
  int out_fd = 1;
  if (outpath) {
    out_fd = open(outpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) { fprintf(stderr, "ustcp get: %s: %s\n", outpath, strerror(errno)); return 1; }
  }
  struct ustcp_loop *l = net_open(&o, "get");
  if (!l) { if (outpath) close(out_fd); return 1; }
  struct ustcp_stack *st = ustcp_loop_stack(l);
  ustcp_loop_set_timeout(l, (int)(timeout * 1000));
  char e[128];
  int status = 1;
  struct reader *r = calloc(1, sizeof *r);
  int fd = ustcp_socket(st);
  int rc = fd < 0 ? fd : ustcp_loop_connect(l, fd, &dst);
  if (rc < 0) {
    fprintf(stderr, "ustcp get: connect to %s: %s\n", withport, net_strerror(rc, e, sizeof e));
    goto done;
  }
  static char req[4096];   /* static: frames stay under 4 KiB (tests/sh/stack_usage.sh); one thread */
  int qn = snprintf(req, sizeof req,
                    "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ustcp\r\nAccept: */*\r\n"
                    "Connection: close\r\n\r\n", path, hostport);
  if (qn < 0 || (size_t)qn >= sizeof req) { fprintf(stderr, "ustcp get: URL too long\n"); goto done; }
  ssize_t sn = ustcp_loop_send(l, fd, req, (size_t)qn);
  if (sn < 0) { fprintf(stderr, "ustcp get: send: %s\n", net_strerror((int)sn, e, sizeof e)); goto done; }
  r->l = l;
  r->fd = fd;
  static char line[8192];
  int code = 0;
  for (;;) {   /* skip 1xx interim responses */
    if (rd_line(r, line, sizeof line) < 0) {
      fprintf(stderr, "ustcp get: no response: %s\n",
              r->err ? net_strerror(r->err, e, sizeof e) : "connection closed");
      goto done;
    }
    if (include) fprintf(stderr, "%s\n", line);
    if (sscanf(line, "HTTP/%*d.%*d %d", &code) != 1) {
      fprintf(stderr, "ustcp get: not an HTTP response: %.80s\n", line);
      goto done;
    }
    bool interim = code >= 100 && code < 200;
    uint64_t clen = UINT64_MAX;
    bool chunked = false;
    for (;;) {
      int ln = rd_line(r, line, sizeof line);
      if (ln < 0) { fprintf(stderr, "ustcp get: truncated headers\n"); goto done; }
      if (include) fprintf(stderr, "%s\n", line);
      if (ln == 0) break;
      char *colon = strchr(line, ':');
      if (!colon) continue;
      *colon = 0;
      char *v = colon + 1;
      while (*v == ' ' || *v == '\t') v++;
      if (!strcasecmp(line, "Content-Length")) clen = strtoull(v, NULL, 10);
      else if (!strcasecmp(line, "Transfer-Encoding") && strcasestr(v, "chunked")) chunked = true;
    }
    if (interim) continue;
    struct progress pg;
    memset(&pg, 0, sizeof pg);
    pg.mode = progress_opt == 1 ? 2
            : progress_opt == 0 ? 0
            : ((outpath || !isatty(STDOUT_FILENO)) && isatty(STDERR_FILENO)) ? 1 : 0;
    pg.total = chunked ? UINT64_MAX : clen;
    pg.start_us = ustcp_loop_now_us();
    r->pg = &pg;
    int werr = 0;
    uint64_t got = 0;
    bool complete;
    if (chunked) {
      complete = false;
      for (;;) {
        if (rd_line(r, line, sizeof line) < 0) break;
        uint64_t sz = strtoull(line, NULL, 16);
        if (sz == 0) {
          while (rd_line(r, line, sizeof line) > 0) {}   /* trailers */
          complete = true;
          break;
        }
        uint64_t c = rd_copy(r, out_fd, sz, &werr);
        got += c;
        if (c < sz || werr) break;
        if (rd_line(r, line, sizeof line) < 0) break;
      }
    } else if (clen != UINT64_MAX) {
      got = rd_copy(r, out_fd, clen, &werr);
      complete = got == clen;
    } else {
      got = rd_copy(r, out_fd, UINT64_MAX, &werr);
      complete = !r->err;
    }
    progress_draw(&pg, true);
    r->pg = NULL;
    if (werr) {
      fprintf(stderr, "ustcp get: writing the body: %s\n", strerror(-werr));
    } else if (!complete) {
      if (clen != UINT64_MAX)
        fprintf(stderr, "ustcp get: short body: %llu of %llu bytes (%s)\n", (unsigned long long)got,
                (unsigned long long)clen, r->err ? net_strerror(r->err, e, sizeof e) : "connection closed");
      else
        fprintf(stderr, "ustcp get: body incomplete after %llu bytes (%s)\n", (unsigned long long)got,
                r->err ? net_strerror(r->err, e, sizeof e) : "connection closed");
    } else if (code < 200 || code > 299) {
      fprintf(stderr, "ustcp get: %s: HTTP status %d\n", url, code);
    } else {
      status = 0;
      if (o.verbose) fprintf(stderr, "ustcp get: %llu bytes\n", (unsigned long long)got);
    }
    break;
  }
done:
  if (fd >= 0) ustcp_close(st, fd);
  finish(l, 3000, 0);   /* a server that keeps the connection open past our FIN: not waited for long */
  net_close(l);
  free(r);
  if (outpath && close(out_fd) < 0 && status == 0) {
    fprintf(stderr, "ustcp get: %s: %s\n", outpath, strerror(errno));
    status = 1;
  }
  return status;
}
