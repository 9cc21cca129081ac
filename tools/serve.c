/* `ustcp serve`: a server on a TUN device, written in the event-driven style
 * (one ready callback, non-blocking socket calls; see examples/ for both styles).
 *
 *   serve_main -> options -> net_open (TUN, stack, control socket) -> listen
 *     -> rounds of ustcp_loop_run_once; every second, idle connections are closed
 *   on_ready(fd)    listener: accept every queued connection
 *                   connection: conn_io
 *   conn_io         output first (pending bytes, then the next file chunk), then
 *                   input: echo (what was read goes back, read only when the
 *                   previous data is out: the send buffer applies backpressure),
 *                   discard, or http (parse one request at a time, keep-alive)
 *
 * HTTP/1.1 subset (RFC 9112): GET and HEAD, Content-Length on every response,
 * persistent connections (HTTP/1.1 unless "Connection: close"; HTTP/1.0 with
 * "Connection: keep-alive"), pipelined requests answered in order, 400/403/404/
 * 405/414/431/501 errors, directory index.html or a listing. The path is decoded,
 * ".." segments are refused, and realpath() must stay inside the root (symlinks
 * cannot escape it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "net.h"
#include "tools.h"
#include "wire/wire.h"

#define CHUNK 65536
#define HTTP_MAX_REQ 8192

enum mode { MODE_NONE, MODE_ECHO, MODE_DISCARD, MODE_HTTP };

struct obuf {
  uint8_t *p;
  size_t len, off, cap;
};

struct conn {
  int fd;
  struct ustcp_addr peer;
  uint64_t last_us;
  char in[HTTP_MAX_REQ];
  size_t in_len;
  bool peer_eof;
  struct obuf out;
  int file_fd;
  uint64_t file_left;
  off_t file_off;
  bool responding;
  bool close_after;
  bool file_err;         /* the file read short while filling the send buffer */
};

struct server {
  struct ustcp_loop *l;
  struct ustcp_stack *st;
  enum mode mode;
  char root[PATH_MAX];
  int lfd;
  struct conn **conns;   /* by ustcp descriptor */
  size_t nconns;
  uint64_t idle_us;
  int verbose;
  uint64_t requests;
  uint64_t accepted;     /* connections accepted on this queue */
  int rc;                /* how this queue's loop ended (0 or -errno) */
};

static void usage(FILE *f)
{
  fprintf(f,
    "usage: ustcp serve (--echo | --discard | --http DIR) [--port N] [OPTIONS]\n"
    "\n"
    "Runs a server on ustcp, on a TUN device: the Linux kernel (curl, socat, a\n"
    "browser in the same network namespace) talks to it through the device.\n"
    "With CAP_NET_ADMIN the device is created and the kernel side gets its address\n"
    "(--peer) at once: the whole set-up is this one command.\n"
    "\n"
    "services:\n"
    "  --echo            send back every byte received (port 7)\n"
    "  --discard         read and drop everything (port 9)\n"
    "  --http DIR        HTTP/1.1 file server for DIR: GET/HEAD, keep-alive,\n"
    "                    Content-Length, 404 (port 80)\n"
    "  --port N          listen on port N instead\n"
    "  --backlog N       listen backlog (default 128)\n"
    "  --idle-timeout S  close connections idle for S seconds (default 60; 0 = never)\n"
    "  --queues N        N queues of a multi-queue TUN device, each with its own\n"
    "                    thread and stack (1..16, default 1): the kernel spreads\n"
    "                    connections over them by flow hash; `ustcp stat` shows queue 0\n"
    "\n"
    "%s"
    "\n"
    "examples:\n"
    "  ustcp serve --http ./site                 # kernel side 10.7.0.1, ustcp 10.7.0.2\n"
    "  curl http://10.7.0.2/index.html\n"
    "  ustcp serve --echo --tun t1 --addr 10.9.0.2 --peer 10.9.0.1 --port 7000\n"
    "  socat - TCP:10.9.0.2:7000\n"
    "  ustcp stat --tun t1                        # its sockets, like ss -tan\n"
    "  ustcp serve --http ./site --addr fd00::2 --peer fd00::1   # also IPv6, on [::]:80\n"
    "  curl -6 'http://[fd00::2]/'\n"
    "  ustcp serve --http ./site --packet veth0 --addr fd00::2/64   # an IPv6 host on a\n"
    "                                  # veth (AF_PACKET; neighbour discovery, DAD)\n"
    "  ustcp serve --http ./site --tap tp0 --addr fd00::2/64 --peer fd00::1   # over TAP\n",
    net_opts_help);
}

static void obuf_reset(struct obuf *b) { b->len = b->off = 0; }

static int obuf_reserve(struct obuf *b, size_t need)
{
  if (need > b->cap) {
    size_t ncap = b->cap ? b->cap : 4096;
    while (ncap < need) ncap *= 2;
    uint8_t *np = realloc(b->p, ncap);
    if (!np) return -1;
    b->p = np;
    b->cap = ncap;
  }
  return 0;
}

static int obuf_add(struct obuf *b, const void *p, size_t n)
{
  if (obuf_reserve(b, b->len + n) != 0) return -1;
  memcpy(b->p + b->len, p, n);
  b->len += n;
  return 0;
}

static int obuf_printf(struct obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int obuf_printf(struct obuf *b, const char *fmt, ...)
{
  char tmp[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  if ((size_t)n >= sizeof tmp) n = (int)sizeof tmp - 1;
  return obuf_add(b, tmp, (size_t)n);
}

static void conn_close(struct server *sv, struct conn *c)
{
  if (sv->verbose) {
    char a[64];
    struct ustcp_tcp_info ti;
    memset(&ti, 0, sizeof ti);
    ustcp_get_info(sv->st, c->fd, &ti);
    struct ustcp_linux_tcp_info li;
    memset(&li, 0, sizeof li);
    ustcp_get_linux_tcp_info(sv->st, c->fd, &li);
    struct ustcp_stats st;
    memset(&st, 0, sizeof st);
    ustcp_get_stats(sv->st, &st);
    /* the loss-recovery figures after the first parenthesis (bench/tun_impair.sh
     * reads the first one); the D-SACK, RACK and undo counts are the stack's */
    fprintf(stderr, "ustcp serve: %s closed (%llu bytes sent, %llu received; srtt %llu us, "
            "retransmitted %llu segments: %llu fast retransmits, %llu timeouts) "
            "(min_rtt %u us, reordering %u, tlp %llu, cwnd %u, ssthresh %u; stack: dsacks in %llu, "
            "rack lost %llu, undos %llu)\n",
            net_addr_str(&c->peer, a, sizeof a), (unsigned long long)ti.bytes_acked,
            (unsigned long long)ti.bytes_received, (unsigned long long)ti.rtt_us,
            (unsigned long long)ti.retrans_segs, (unsigned long long)ti.fast_retrans,
            (unsigned long long)ti.rto_expirations, li.tcpi_min_rtt, li.tcpi_reordering,
            (unsigned long long)ti.tlp_probes, ti.snd_cwnd, ti.snd_ssthresh,
            (unsigned long long)st.tcp_dsacks_in, (unsigned long long)st.tcp_rack_lost,
            (unsigned long long)st.tcp_spurious_undos);
  }
  ustcp_close(sv->st, c->fd);
  if (c->file_fd >= 0) close(c->file_fd);
  free(c->out.p);
  sv->conns[c->fd] = NULL;
  free(c);
}

/* ---- HTTP ---- */

static const char *reason(int code)
{
  switch (code) {
  case 200: return "OK";
  case 301: return "Moved Permanently";
  case 400: return "Bad Request";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 414: return "URI Too Long";
  case 431: return "Request Header Fields Too Large";
  case 501: return "Not Implemented";
  default: return "Error";
  }
}

static const char *content_type(const char *path)
{
  const char *dot = strrchr(path, '.');
  if (!dot || strchr(dot, '/')) return "application/octet-stream";
  static const char *const map[][2] = {
    {".html", "text/html; charset=utf-8"}, {".htm", "text/html; charset=utf-8"},
    {".txt", "text/plain; charset=utf-8"}, {".css", "text/css"},
    {".js", "text/javascript"}, {".json", "application/json"}, {".png", "image/png"},
    {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"}, {".gif", "image/gif"},
    {".svg", "image/svg+xml"}, {".ico", "image/x-icon"}, {".pdf", "application/pdf"},
    {".pcap", "application/vnd.tcpdump.pcap"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (!strcasecmp(dot, map[i][0])) return map[i][1];
  return "application/octet-stream";
}

static void http_head(struct conn *c, int code, const char *ctype, uint64_t len,
                      const char *extra)
{
  char date[64];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  obuf_printf(&c->out,
              "HTTP/1.1 %d %s\r\nServer: ustcp\r\nDate: %s\r\nContent-Type: %s\r\n"
              "Content-Length: %llu\r\n%sConnection: %s\r\n\r\n",
              code, reason(code), date, ctype, (unsigned long long)len, extra ? extra : "",
              c->close_after ? "close" : "keep-alive");
}

static void http_error(struct conn *c, int code, bool head_only, bool fatal)
{
  char body[128];
  int n = snprintf(body, sizeof body, "%d %s\n", code, reason(code));
  if (fatal) c->close_after = true;
  http_head(c, code, "text/plain; charset=utf-8", (uint64_t)n,
            code == 405 || code == 501 ? "Allow: GET, HEAD\r\n" : NULL);
  if (!head_only) obuf_add(&c->out, body, (size_t)n);
}

static int hexval(int ch)
{
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Percent-decodes the path of target (query and fragment cut) into out; refuses
 * NUL bytes and ".." segments. Returns 0 or an HTTP status. */
static int decode_path(const char *target, char *out, size_t cap)
{
  if (target[0] != '/') return 400;
  size_t o = 0;
  for (const char *p = target; *p && *p != '?' && *p != '#'; p++) {
    int ch = (unsigned char)*p;
    if (ch == '%') {
      int h = hexval(p[1]), l2 = h < 0 ? -1 : hexval(p[2]);
      if (h < 0 || l2 < 0) return 400;
      ch = h * 16 + l2;
      p += 2;
      if (ch == 0) return 400;
    }
    if (o + 1 >= cap) return 414;
    out[o++] = (char)ch;
  }
  out[o] = 0;
  /* No "." or ".." segment may climb out of the root. */
  for (const char *seg = out; seg; seg = strchr(seg + 1, '/')) {
    const char *s = seg + 1;
    if (s[0] == '.' && s[1] == '.' && (s[2] == '/' || s[2] == 0)) return 403;
  }
  return 0;
}

static bool inside_root(const struct server *sv, const char *real)
{
  size_t n = strlen(sv->root);
  return !strncmp(real, sv->root, n) && (real[n] == '/' || real[n] == 0);
}

static void html_escape(struct obuf *b, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '<': obuf_add(b, "&lt;", 4); break;
    case '>': obuf_add(b, "&gt;", 4); break;
    case '&': obuf_add(b, "&amp;", 5); break;
    case '"': obuf_add(b, "&quot;", 6); break;
    default: obuf_add(b, s, 1);
    }
  }
}

static void dir_listing(struct conn *c, const char *dir, const char *urlpath, bool head_only)
{
  DIR *d = opendir(dir);
  if (!d) { http_error(c, 403, head_only, false); return; }
  struct obuf body = {0};
  obuf_printf(&body, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
  html_escape(&body, urlpath);
  obuf_printf(&body, "</title></head><body><h1>");
  html_escape(&body, urlpath);
  obuf_printf(&body, "</h1><ul>\n");
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    obuf_printf(&body, "<li><a href=\"");
    for (const char *p = e->d_name; *p; p++) {
      unsigned char ch = (unsigned char)*p;
      if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          strchr("-._~", ch))
        obuf_add(&body, p, 1);
      else
        obuf_printf(&body, "%%%02X", ch);
    }
    obuf_printf(&body, "%s\">", e->d_type == DT_DIR ? "/" : "");
    html_escape(&body, e->d_name);
    obuf_printf(&body, "%s</a></li>\n", e->d_type == DT_DIR ? "/" : "");
  }
  closedir(d);
  obuf_printf(&body, "</ul></body></html>\n");
  http_head(c, 200, "text/html; charset=utf-8", body.len, NULL);
  if (!head_only) obuf_add(&c->out, body.p, body.len);
  free(body.p);
}

static void http_serve_path(struct server *sv, struct conn *c, const char *target, bool head_only)
{
  /* off the C stack (frames stay under 4 KiB, tests/sh/stack_usage.sh), one per queue thread */
  static _Thread_local char path[4096], full[PATH_MAX + 4096], real[PATH_MAX];
  int code = decode_path(target, path, sizeof path);
  if (code) { http_error(c, code, head_only, code == 400); return; }
  snprintf(full, sizeof full, "%s%s", sv->root, path);
  if (!realpath(full, real)) { http_error(c, errno == EACCES ? 403 : 404, head_only, false); return; }
  if (!inside_root(sv, real)) { http_error(c, 404, head_only, false); return; }
  struct stat stt;
  if (stat(real, &stt) < 0) { http_error(c, 404, head_only, false); return; }
  if (S_ISDIR(stt.st_mode)) {
    size_t pl = strlen(path);
    if (path[pl - 1] != '/') {
      /* Relative links in the page need the trailing slash. */
      static _Thread_local char loc[4200];
      snprintf(loc, sizeof loc, "Location: %s/\r\n", path);
      char body[] = "moved\n";
      http_head(c, 301, "text/plain; charset=utf-8", sizeof body - 1, loc);
      if (!head_only) obuf_add(&c->out, body, sizeof body - 1);
      return;
    }
    static _Thread_local char idx[PATH_MAX + 16];
    snprintf(idx, sizeof idx, "%s/index.html", real);
    struct stat si;
    if (stat(idx, &si) == 0 && S_ISREG(si.st_mode)) {
      strcpy(real, idx);
      stt = si;
    } else {
      dir_listing(c, real, path, head_only);
      return;
    }
  }
  if (!S_ISREG(stt.st_mode)) { http_error(c, 404, head_only, false); return; }
  int fd = open(real, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { http_error(c, errno == EACCES ? 403 : 404, head_only, false); return; }
  http_head(c, 200, content_type(real), (uint64_t)stt.st_size, NULL);
  if (head_only) { close(fd); return; }
  c->file_fd = fd;
  c->file_left = (uint64_t)stt.st_size;
  c->file_off = 0;
  /* The header and the start of the body leave in one send. As two sends,
   * Nagle held the body back until the header was ACKed, and the kernel's
   * client delays that ACK: ~40 ms a request on a keep-alive connection. */
  size_t room = CHUNK > c->out.len ? CHUNK - c->out.len : 0;
  size_t want = c->file_left < room ? (size_t)c->file_left : room;
  if (want && obuf_reserve(&c->out, c->out.len + want) == 0) {
    ssize_t r = pread(fd, c->out.p + c->out.len, want, 0);
    if (r > 0) {
      c->out.len += (size_t)r;
      c->file_off = r;
      c->file_left -= (uint64_t)r;
    }
  }
}

static bool header_has_token(const char *value, const char *token)
{
  size_t n = strlen(token);
  for (const char *p = value; *p;) {
    while (*p == ' ' || *p == '\t' || *p == ',') p++;
    if (!strncasecmp(p, token, n) && (p[n] == 0 || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
      return true;
    while (*p && *p != ',') p++;
  }
  return false;
}

/* Takes one complete request from c->in, if there is one, and queues its
 * response. Returns true if it did. */
static bool http_take_request(struct server *sv, struct conn *c)
{
  char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
  if (!end) {
    if (c->in_len == sizeof c->in) {
      http_error(c, 431, false, true);
      c->in_len = 0;
      return true;
    }
    return false;
  }
  size_t req_len = (size_t)(end - c->in) + 4;
  *end = 0;
  char *line = c->in, *save = NULL;
  char *reqline = strtok_r(line, "\r\n", &save);
  char method[16] = "", version[16] = "";
  static _Thread_local char target[4096];   /* off the C stack (frames stay under 4 KiB, tests/sh/stack_usage.sh), one per queue thread */
  target[0] = 0;
  bool bad = !reqline || sscanf(reqline, "%15s %4095s %15s", method, target, version) != 3 ||
             strncmp(version, "HTTP/1.", 7) != 0;
  bool http10 = !strcmp(version, "HTTP/1.0");
  bool conn_close = http10, has_body = false;
  for (char *h = strtok_r(NULL, "\r\n", &save); h && !bad; h = strtok_r(NULL, "\r\n", &save)) {
    char *colon = strchr(h, ':');
    if (!colon) { bad = true; break; }
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    if (!strcasecmp(h, "Connection")) {
      if (header_has_token(v, "close")) conn_close = true;
      else if (header_has_token(v, "keep-alive")) conn_close = false;
    } else if (!strcasecmp(h, "Transfer-Encoding") ||
               (!strcasecmp(h, "Content-Length") && strtoull(v, NULL, 10) > 0)) {
      has_body = true;
    }
  }
  memmove(c->in, c->in + req_len, c->in_len - req_len);
  c->in_len -= req_len;
  c->close_after = conn_close;
  sv->requests++;
  bool head_only = !strcmp(method, "HEAD");
  if (bad) http_error(c, 400, false, true);
  else if (has_body) http_error(c, 501, head_only, true);   /* no request bodies */
  else if (strcmp(method, "GET") && !head_only) http_error(c, 405, false, false);
  else http_serve_path(sv, c, target, head_only);
  if (sv->verbose) {
    char a[64];
    fprintf(stderr, "ustcp serve: %s %s %s\n", net_addr_str(&c->peer, a, sizeof a),
            method, target);
  }
  c->responding = true;
  return true;
}

/* ---- the connection engine ---- */

/* ustcp_send_direct's filler: the file's next bytes into the send buffer's
 * free space; a read that comes back short of what the file promised is an
 * error (the Content-Length was sent). */
static size_t file_fill(void *ctx, uint8_t *p, size_t n)
{
  struct conn *c = ctx;
  size_t done = 0;
  while (done < n) {
    ssize_t r = pread(c->file_fd, p + done, n - done, c->file_off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) { c->file_err = true; break; }
    done += (size_t)r;
    c->file_off += r;
    c->file_left -= (uint64_t)r;
  }
  return done;
}

static size_t discard_all(void *ctx, const uint8_t *p, size_t n)
{
  (void)ctx; (void)p;
  return n;
}

static void conn_io(struct server *sv, struct conn *c)
{
  for (int guard = 0; guard < 1000; guard++) {
    bool progress = false;
    /* 1. output: pending bytes (the header), then the file straight into the
     * send buffer (ustcp_send_direct: pread fills the stack's free space, one
     * copy, as sendfile does for nginx on the kernel) */
    for (;;) {
      if (c->out.off < c->out.len) {
        ssize_t n = ustcp_send(sv->st, c->fd, c->out.p + c->out.off, c->out.len - c->out.off, 0);
        if (n == -EAGAIN) break;
        if (n < 0) { conn_close(sv, c); return; }
        c->out.off += (size_t)n;
        c->last_us = ustcp_loop_now_us();
        progress = true;
        continue;
      }
      obuf_reset(&c->out);
      if (c->file_left == 0) break;
      c->file_err = false;
      ssize_t n = ustcp_send_direct(sv->st, c->fd, c->file_left, 0, file_fill, c);
      if (c->file_err) { conn_close(sv, c); return; }   /* file shrank: the length was promised */
      if (n == -EAGAIN || n == 0) break;
      if (n < 0) { conn_close(sv, c); return; }
      c->last_us = ustcp_loop_now_us();
      progress = true;
    }
    bool out_done = c->out.off >= c->out.len && c->file_left == 0;
    if (out_done && c->file_fd >= 0) { close(c->file_fd); c->file_fd = -1; }
    if (out_done && c->responding) {
      c->responding = false;
      if (c->close_after) { conn_close(sv, c); return; }
      progress = true;
    }
    /* 2. input */
    if (sv->mode == MODE_ECHO) {
      if (out_done && !c->peer_eof) {
        if (c->out.cap < CHUNK) {
          uint8_t *np = realloc(c->out.p, CHUNK);
          if (!np) { conn_close(sv, c); return; }
          c->out.p = np;
          c->out.cap = CHUNK;
        }
        ssize_t n = ustcp_recv(sv->st, c->fd, c->out.p, CHUNK, 0);
        if (n > 0) { c->out.len = (size_t)n; c->out.off = 0; progress = true; c->last_us = ustcp_loop_now_us(); }
        else if (n == 0) c->peer_eof = true;
        else if (n != -EAGAIN) { conn_close(sv, c); return; }
      }
      if (c->peer_eof && out_done) { conn_close(sv, c); return; }
    } else if (sv->mode == MODE_DISCARD) {
      /* the bytes are consumed where they lie (ustcp_recv_direct): no copy */
      ssize_t n;
      while ((n = ustcp_recv_direct(sv->st, c->fd, discard_all, NULL)) > 0) c->last_us = ustcp_loop_now_us();
      if (n == 0 || n != -EAGAIN) { conn_close(sv, c); return; }
    } else {
      if (!c->peer_eof && c->in_len < sizeof c->in) {
        ssize_t n = ustcp_recv(sv->st, c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        if (n > 0) { c->in_len += (size_t)n; progress = true; c->last_us = ustcp_loop_now_us(); }
        else if (n == 0) c->peer_eof = true;
        else if (n != -EAGAIN) { conn_close(sv, c); return; }
      }
      if (!c->responding && http_take_request(sv, c)) progress = true;
      /* The client closed and nothing is left to answer: close too. */
      if (c->peer_eof && !c->responding && !memmem(c->in, c->in_len, "\r\n\r\n", 4)) {
        conn_close(sv, c);
        return;
      }
    }
    if (!progress) return;
  }
}

static void accept_all(struct server *sv)
{
  for (;;) {
    struct ustcp_addr peer;
    int fd = ustcp_accept(sv->st, sv->lfd, &peer);
    if (fd < 0) return;
    if ((size_t)fd >= sv->nconns) {
      size_t n = sv->nconns ? sv->nconns : 64;
      while (n <= (size_t)fd) n *= 2;
      struct conn **nv = realloc(sv->conns, n * sizeof *nv);
      if (!nv) { ustcp_close(sv->st, fd); continue; }
      memset(nv + sv->nconns, 0, (n - sv->nconns) * sizeof *nv);
      sv->conns = nv;
      sv->nconns = n;
    }
    struct conn *c = calloc(1, sizeof *c);
    if (!c) { ustcp_close(sv->st, fd); continue; }
    c->fd = fd;
    c->peer = peer;
    c->file_fd = -1;
    c->last_us = ustcp_loop_now_us();
    sv->conns[fd] = c;
    sv->accepted++;
    /* HTTP responses are written whole: no reason to wait for ACKs before a
     * tail segment (nginx's tcp_nodelay, on by default for keep-alive). */
    if (sv->mode == MODE_HTTP) {
      int one = 1;
      ustcp_setsockopt(sv->st, fd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &one, sizeof one);
    }
    if (sv->verbose) {
      char a[64];
      fprintf(stderr, "ustcp serve: %s connected\n", net_addr_str(&peer, a, sizeof a));
    }
    conn_io(sv, c);
  }
}

static void on_ready(void *ctx, int fd, unsigned events)
{
  struct server *sv = ctx;
  (void)events;
  if (fd == sv->lfd) { accept_all(sv); return; }
  if ((size_t)fd < sv->nconns && sv->conns[fd]) conn_io(sv, sv->conns[fd]);
}

#define SERVE_MAX_QUEUES 16

/* The listening socket of one queue: [::]:port with an IPv6 address (it takes
 * IPv4 too, v4-mapped, as a Linux AF_INET6 listener without IPV6_V6ONLY). */
static int serve_listen(struct server *sv, struct ustcp_loop *l, uint16_t port, int backlog, bool v6)
{
  sv->l = l;
  sv->st = ustcp_loop_stack(l);
  ustcp_set_ready_cb(sv->st, on_ready, sv);
  sv->lfd = ustcp_socket(sv->st);
  struct ustcp_addr la = {0, port};
  if (v6) la.family = USTCP_AF_INET6;
  int rc = sv->lfd < 0 ? sv->lfd : ustcp_bind(sv->st, sv->lfd, &la);
  if (rc == 0) rc = ustcp_listen(sv->st, sv->lfd, backlog);
  if (rc < 0) {
    char e[128];
    fprintf(stderr, "ustcp serve: listen on port %u: %s\n", port, net_strerror(rc, e, sizeof e));
  }
  return rc;
}

/* Runs one queue's loop until it is stopped; the idle sweep once a second. */
static void serve_run(struct server *sv)
{
  uint64_t last_sweep = ustcp_loop_now_us();
  sv->rc = 0;
  while (!ustcp_loop_stopped(sv->l)) {
    int rc = ustcp_loop_run_once(sv->l, 1000);
    if (rc < 0 && rc != -EINTR) {
      char e[128];
      fprintf(stderr, "ustcp serve: %s\n", net_strerror(rc, e, sizeof e));
      sv->rc = rc;
      break;
    }
    uint64_t now = ustcp_loop_now_us();
    if (sv->idle_us && now - last_sweep >= USTCP_SEC) {
      last_sweep = now;
      for (size_t i = 0; i < sv->nconns; i++) {
        struct conn *c = sv->conns[i];
        if (c && now - c->last_us > sv->idle_us) conn_close(sv, c);
      }
    }
  }
}

/* Closes everything (the FINs go out as the loop is freed) and, for a queue
 * this file opened (sv->l set), frees its loop. */
static void serve_finish(struct server *sv)
{
  ustcp_set_ready_cb(sv->st, NULL, NULL);
  for (size_t i = 0; i < sv->nconns; i++)
    if (sv->conns[i]) conn_close(sv, sv->conns[i]);
  free(sv->conns);
  sv->conns = NULL;
  sv->nconns = 0;
  ustcp_close(sv->st, sv->lfd);
  if (sv->l) ustcp_loop_free(sv->l);
}

static void *serve_thread(void *arg)
{
  struct server *sv = arg;
  serve_run(sv);
  serve_finish(sv);
  return NULL;
}

int serve_main(int argc, char **argv)
{
  struct net_opts o;
  net_opts_init(&o);
  static struct server sv;   /* static: frames stay under 4 KiB (tests/sh/stack_usage.sh); one thread */
  memset(&sv, 0, sizeof sv);
  sv.idle_us = 60 * USTCP_SEC;
  uint64_t port = 0, backlog = 128, n, queues = 1;
  const char *dir = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    int r = net_opts_parse(&o, "serve", argc, argv, &i);
    if (r < 0) return 2;
    if (r > 0) continue;
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
    enum mode m = !strcmp(a, "--echo") ? MODE_ECHO : !strcmp(a, "--discard") ? MODE_DISCARD
                : !strcmp(a, "--http") ? MODE_HTTP : MODE_NONE;
    if (m != MODE_NONE) {
      if (sv.mode != MODE_NONE) { fprintf(stderr, "ustcp serve: choose one of --echo, --discard, --http\n"); return 2; }
      sv.mode = m;
      if (m == MODE_HTTP) {
        if (!v) { fprintf(stderr, "ustcp serve: --http needs a directory\n"); return 2; }
        dir = v;
        i++;
      }
    } else if (!strcmp(a, "--port") || !strcmp(a, "--backlog") || !strcmp(a, "--idle-timeout") ||
               !strcmp(a, "--queues")) {
      if (!v) { fprintf(stderr, "ustcp serve: %s needs a value\n", a); return 2; }
      i++;
      if (a[2] == 'q') {
        if (net_parse_u64(v, 1, SERVE_MAX_QUEUES, &queues)) {
          fprintf(stderr, "ustcp serve: bad --queues '%s' (1..%d)\n", v, SERVE_MAX_QUEUES);
          return 2;
        }
      } else if (a[2] == 'p') {
        if (net_parse_u64(v, 1, 65535, &port)) { fprintf(stderr, "ustcp serve: bad --port '%s'\n", v); return 2; }
      } else if (a[2] == 'b') {
        if (net_parse_u64(v, 1, 65535, &backlog)) { fprintf(stderr, "ustcp serve: bad --backlog '%s'\n", v); return 2; }
      } else {
        if (net_parse_u64(v, 0, 86400, &n)) { fprintf(stderr, "ustcp serve: bad --idle-timeout '%s'\n", v); return 2; }
        sv.idle_us = n * USTCP_SEC;
      }
    } else {
      fprintf(stderr, "ustcp serve: unknown option '%s' (try: ustcp serve --help)\n", a);
      return 2;
    }
  }
  if (sv.mode == MODE_NONE) {
    fprintf(stderr, "ustcp serve: choose a service: --echo, --discard or --http DIR (try: ustcp serve --help)\n");
    return 2;
  }
  if (sv.mode == MODE_HTTP) {
    struct stat st;
    if (!realpath(dir, sv.root) || stat(sv.root, &st) < 0 || !S_ISDIR(st.st_mode)) {
      fprintf(stderr, "ustcp serve: --http %s: not a directory\n", dir);
      return 2;
    }
    if (!strcmp(sv.root, "/")) sv.root[0] = 0;   /* paths are appended to it */
  }
  if (!port) port = sv.mode == MODE_ECHO ? 7 : sv.mode == MODE_DISCARD ? 9 : 80;
  sv.verbose = o.verbose;
  if (queues > 1 && (o.lc.tap || o.lc.packet)) {
    fprintf(stderr, "ustcp serve: --queues is for TUN devices, not --tap or --packet\n");
    return 2;
  }
  o.lc.multi_queue = queues > 1;
  struct ustcp_loop *l = net_open(&o, "serve");
  if (!l) return 1;
  static const uint8_t zero6[16];
  bool v6 = memcmp(o.lc.addr6, zero6, 16) != 0;
  if (serve_listen(&sv, l, (uint16_t)port, (int)backlog, v6) < 0) {
    net_close(l);
    return 1;
  }
  char a[16], p[16];
  fprintf(stderr, "ustcp serve: %s on %s:%llu (device %s, kernel side %s%s%s)\n",
          sv.mode == MODE_ECHO ? "echo" : sv.mode == MODE_DISCARD ? "discard" : "http",
          ipv4_str(o.lc.addr, a, sizeof a), (unsigned long long)port, ustcp_loop_ifname(l),
          ipv4_str(o.lc.peer, p, sizeof p), o.ctl_path ? "; control socket " : "",
          o.ctl_path ? o.ctl_path : "");
  if (v6) {
    struct ustcp_addr a6 = {.family = USTCP_AF_INET6, .port = (uint16_t)port};
    memcpy(a6.ip6, o.lc.addr6, 16);
    char t[64];
    fprintf(stderr, "ustcp serve: also on %s\n", net_addr_str(&a6, t, sizeof t));
  }
  /* Queues 1..N-1: the same device (attached, not configured again), each
   * with its own stack, seed and thread; queue 0 runs on this thread. */
  struct server *more[SERVE_MAX_QUEUES] = {0};
  pthread_t tid[SERVE_MAX_QUEUES];
  unsigned started = 1;
  for (unsigned q = 1; q < queues; q++) {
    struct ustcp_loop_config lc = o.lc;
    lc.tun_name = ustcp_loop_ifname(l);
    lc.configure = false;
    lc.pcap_path = NULL;
    if (lc.seed) lc.seed += q;
    char err[256];
    struct ustcp_loop *lq;
    int rq = ustcp_loop_new(&lc, &lq, err, sizeof err);
    if (rq < 0) {
      fprintf(stderr, "ustcp serve: queue %u: %s\n", q, err[0] ? err : strerror(-rq));
      break;
    }
    /* the same service settings as queue 0, which has no connection yet */
    more[q] = malloc(sizeof *more[q]);
    if (more[q]) *more[q] = sv;
    if (!more[q] || serve_listen(more[q], lq, (uint16_t)port, (int)backlog, v6) < 0) {
      ustcp_loop_free(lq);
      free(more[q]);
      more[q] = NULL;
      break;
    }
    if (pthread_create(&tid[q], NULL, serve_thread, more[q]) != 0) {
      fprintf(stderr, "ustcp serve: queue %u: cannot start a thread\n", q);
      serve_finish(more[q]);
      free(more[q]);
      more[q] = NULL;
      break;
    }
    started++;
  }
  if (started < queues) ustcp_loop_stop(l);   /* all or nothing */
  else if (queues > 1) fprintf(stderr, "ustcp serve: %u queues, a thread and a stack each\n", started);
  serve_run(&sv);
  /* Stopped (SIGINT/SIGTERM stop queue 0's loop): stop the others too. */
  int rc = sv.rc;
  for (unsigned q = 1; q < started; q++) ustcp_loop_stop(more[q]->l);
  for (unsigned q = 1; q < started; q++) {
    pthread_join(tid[q], NULL);
    if (queues > 1)
      fprintf(stderr, "ustcp serve: queue %u: %llu connections, %llu requests\n", q,
              (unsigned long long)more[q]->accepted, (unsigned long long)more[q]->requests);
    if (more[q]->rc < 0 && more[q]->rc != -EINTR) rc = more[q]->rc;
    free(more[q]);
  }
  if (queues > 1)
    fprintf(stderr, "ustcp serve: queue 0: %llu connections, %llu requests\n",
            (unsigned long long)sv.accepted, (unsigned long long)sv.requests);
  sv.l = NULL;   /* queue 0's loop is net_open's: net_close frees it */
  serve_finish(&sv);
  net_close(l);
  if (started < queues) return 1;
  return rc < 0 && rc != -EINTR ? 1 : 0;
}
