/* pktrun: runs packetdrill-style scenario scripts (tests/scripts/NAME.pkt) against
 * ONE ustcp stack in virtual time, with the remote peer played by the script.
 *
 *   pktrun FILE.pkt [...]
 *
 * The grammar is written up in tests/scripts/README.md. In short, every line is
 * TIME then an action: a socket call with its expected result, a segment the
 * peer injects ("<"), or a segment the stack must send next (">"). Sequence and
 * acknowledgment numbers are relative to the two ISNs.
 *
 * Map:
 *   main -> run_script   read lines; `config` lines, then the stack is created
 *     run_line           parse TIME, advance virtual time, dispatch:
 *       do_inject        "<": build, encode (src/wire) and ustcp_input a segment
 *       do_expect        ">": take the next output packet and compare it
 *       do_call          socket calls, state(), conn(), events(), error() ...
 *   advance_to          runs the stack's timers in order up to a time; every
 *                       packet the stack outputs is queued with its time
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ustcp.h"
#include "wire/wire.h"

#define LOCAL_IP 0xC0000201u   /* 192.0.2.1: the stack under test */
#define REMOTE_IP 0xC0000202u  /* 192.0.2.2: the scripted peer */
#define MAX_PEERS 32
#define MAX_FDS 1024
#define MAX_LINE 1024
#define MAX_ARGS 8

/* ---- the deterministic payload pattern ----
 * Byte k of a stream (k = relative sequence number - 1) is pattern(k), both for
 * what the peer injects and for what send() gives the stack, so recv() and the
 * payload of every ">" segment can be checked byte for byte. Not periodic with
 * any small period, so a segment from the wrong offset is caught. */
static uint8_t pattern(uint32_t k)
{
  uint32_t x = k * 2654435761u;
  return (uint8_t)((x >> 24) ^ (k >> 16));
}

/* ---- runner state ---- */
struct out_pkt {
  uint64_t at_us;
  size_t len;
  uint8_t *data;
};

/* One remote port of the peer, i.e. one connection the script plays. */
struct peer {
  uint16_t rport;
  uint16_t lport;     /* the stack's port for it, 0 = the runner's default */
  uint32_t iss;       /* the stack's ISN on this connection */
  bool iss_known;
};

struct runner {
  const char *file;
  int line;                      /* current line number */
  const char *text;              /* current line, for error messages */
  bool failed;

  struct ustcp_config cfg;
  uint64_t tolerance_us;
  uint32_t remote_isn;
  uint16_t remote_port;          /* default peer port (connect() changes it) */
  uint16_t local_port;           /* default stack port: bind(), or learned */
  uint64_t seed;

  struct ustcp_stack *stack;
  uint64_t now_us;               /* the stack's virtual time */
  uint64_t line_us;              /* time of the previous line */

  struct peer peers[MAX_PEERS];
  int npeers;
  /* The stack's TSvals are written relative to ts_base (like sequence numbers
   * to the ISN): learned from the first '>' line with a TS option, so that
   * line's TSval is the one written. The offset is one per address pair
   * (secure_tcp_ts_off), so one base serves every connection of the script. */
  uint32_t ts_base;
  bool ts_base_known;
  uint32_t sent_off[MAX_FDS];    /* pattern offset of the next send() byte */
  uint32_t recv_off[MAX_FDS];    /* pattern offset of the next recv() byte */

  struct out_pkt *q;             /* packets output, not yet matched */
  size_t q_head, q_len, q_cap;
};

static void fail(struct runner *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct runner *r, const char *fmt, ...)
{
  if (r->failed) return;
  r->failed = true;
  va_list ap;
  va_start(ap, fmt);
  fprintf(stdout, "%s:%d: error at t=%.6f: ", r->file, r->line, (double)r->now_us / 1e6);
  vfprintf(stdout, fmt, ap);
  fprintf(stdout, "\n    script: %s\n", r->text ? r->text : "(end of script)");
  va_end(ap);
}

/* ---- the output queue ---- */
static void on_output(void *ctx, const uint8_t *pkt, size_t len)
{
  struct runner *r = ctx;
  if (r->q_head + r->q_len == r->q_cap) {
    if (r->q_head > 0) {
      memmove(r->q, r->q + r->q_head, r->q_len * sizeof *r->q);
      r->q_head = 0;
    } else {
      size_t ncap = r->q_cap ? r->q_cap * 2 : 64;
      struct out_pkt *nq = realloc(r->q, ncap * sizeof *nq);
      if (!nq) { fail(r, "out of memory"); return; }
      r->q = nq;
      r->q_cap = ncap;
    }
  }
  struct out_pkt *o = &r->q[r->q_head + r->q_len];
  o->data = malloc(len);
  if (!o->data) { fail(r, "out of memory"); return; }
  memcpy(o->data, pkt, len);
  o->len = len;
  o->at_us = r->now_us;
  r->q_len++;
}

static struct out_pkt *q_front(struct runner *r)
{
  return r->q_len ? &r->q[r->q_head] : NULL;
}

static void q_pop(struct runner *r)
{
  free(r->q[r->q_head].data);
  r->q_head++;
  r->q_len--;
  if (!r->q_len) r->q_head = 0;
}

/* Runs every deadline the stack returns up to t, in order, then sets the clock
 * to t. Packets output meanwhile carry the time of the deadline that sent them. */
static void advance_to(struct runner *r, uint64_t t)
{
  for (;;) {
    uint64_t d = ustcp_next_deadline(r->stack);
    if (d == USTCP_NO_DEADLINE || d > t) break;
    if (d > r->now_us) r->now_us = d;
    ustcp_poll(r->stack, r->now_us);
  }
  if (t > r->now_us) r->now_us = t;
  ustcp_poll(r->stack, r->now_us);
}

/* Runs one deadline at most, if it is at or before t. Returns false if none. */
static bool advance_one(struct runner *r, uint64_t t)
{
  uint64_t d = ustcp_next_deadline(r->stack);
  if (d == USTCP_NO_DEADLINE || d > t) return false;
  if (d > r->now_us) r->now_us = d;
  ustcp_poll(r->stack, r->now_us);
  return true;
}

/* ---- peers ---- */
static struct peer *peer_get(struct runner *r, uint16_t rport)
{
  for (int i = 0; i < r->npeers; i++)
    if (r->peers[i].rport == rport) return &r->peers[i];
  if (r->npeers == MAX_PEERS) { fail(r, "too many remote ports"); return NULL; }
  struct peer *p = &r->peers[r->npeers++];
  memset(p, 0, sizeof *p);
  p->rport = rport;
  return p;
}

static uint16_t peer_lport(const struct runner *r, const struct peer *p)
{
  return p->lport ? p->lport : r->local_port;
}

/* State of the connection (lport, rport) from the socket table; CLOSED if none.
 * A live entry wins over a CLOSED socket that still names the same ports. */
static enum ustcp_state conn_state(struct runner *r, uint16_t lport, uint16_t rport)
{
  size_t n = ustcp_sock_table(r->stack, NULL, 0);
  struct ustcp_sock_row *rows = calloc(n ? n : 1, sizeof *rows);
  if (!rows) return USTCP_CLOSED;
  n = ustcp_sock_table(r->stack, rows, n);
  enum ustcp_state st = USTCP_CLOSED;
  for (size_t i = 0; i < n; i++)
    if (rows[i].local.port == lport && rows[i].remote.port == rport &&
        rows[i].remote.ip == REMOTE_IP && rows[i].state != USTCP_CLOSED)
      st = rows[i].state;
  free(rows);
  return st;
}

/* ---- lexing helpers ---- */
static const char *skip_ws(const char *s)
{
  while (*s && isspace((unsigned char)*s)) s++;
  return s;
}

/* Reads an unsigned decimal number into *v. Returns the end, or NULL. */
static const char *parse_u64(const char *s, uint64_t *v)
{
  if (!isdigit((unsigned char)*s)) return NULL;
  uint64_t x = 0;
  while (isdigit((unsigned char)*s)) {
    uint64_t nx = x * 10 + (uint64_t)(*s - '0');
    if (nx < x) return NULL;
    x = nx;
    s++;
  }
  *v = x;
  return s;
}

static const char *parse_u32(const char *s, uint32_t *v)
{
  uint64_t x;
  s = parse_u64(s, &x);
  if (!s || x > UINT32_MAX) return NULL;
  *v = (uint32_t)x;
  return s;
}

/* Seconds with up to 6 decimals -> microseconds, exactly (no floating point). */
static const char *parse_seconds(const char *s, uint64_t *us)
{
  uint64_t whole = 0, frac = 0;
  int digits = 0;
  if (*s != '.') {
    s = parse_u64(s, &whole);
    if (!s) return NULL;
  }
  if (*s == '.') {
    s++;
    while (isdigit((unsigned char)*s)) {
      if (digits == 6) return NULL;
      frac = frac * 10 + (uint64_t)(*s++ - '0');
      digits++;
    }
  }
  while (digits++ < 6) frac *= 10;
  *us = whole * USTCP_SEC + frac;
  return s;
}

/* A word starting at s: letters, digits, '_'. */
static size_t word_len(const char *s)
{
  size_t n = 0;
  while (isalnum((unsigned char)s[n]) || s[n] == '_') n++;
  return n;
}

static bool word_is(const char *s, size_t n, const char *w)
{
  return strlen(w) == n && strncmp(s, w, n) == 0;
}

/* ---- names: errno values, states, poll bits, socket options ---- */
struct name_val {
  const char *name;
  int val;
};

static const struct name_val errno_names[] = {
  {"EAGAIN", EAGAIN}, {"EWOULDBLOCK", EWOULDBLOCK}, {"EINPROGRESS", EINPROGRESS},
  {"EALREADY", EALREADY}, {"EISCONN", EISCONN}, {"ENOTCONN", ENOTCONN},
  {"ECONNREFUSED", ECONNREFUSED}, {"ECONNRESET", ECONNRESET},
  {"ECONNABORTED", ECONNABORTED}, {"ETIMEDOUT", ETIMEDOUT}, {"EPIPE", EPIPE},
  {"EADDRINUSE", EADDRINUSE}, {"EADDRNOTAVAIL", EADDRNOTAVAIL}, {"EINVAL", EINVAL},
  {"EBADF", EBADF}, {"EFAULT", EFAULT}, {"EOPNOTSUPP", EOPNOTSUPP},
  {"ENOPROTOOPT", ENOPROTOOPT}, {"EMFILE", EMFILE}, {"ENOMEM", ENOMEM},
  {"EHOSTUNREACH", EHOSTUNREACH}, {"ENETUNREACH", ENETUNREACH},
  {"EDESTADDRREQ", EDESTADDRREQ}, {"ENOBUFS", ENOBUFS},
};

static const struct name_val poll_names[] = {
  {"POLLIN", USTCP_POLLIN}, {"POLLOUT", USTCP_POLLOUT}, {"POLLERR", USTCP_POLLERR},
  {"POLLHUP", USTCP_POLLHUP}, {"POLLRDHUP", USTCP_POLLRDHUP},
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static bool lookup(const struct name_val *t, size_t n, const char *s, size_t len, int *v)
{
  for (size_t i = 0; i < n; i++)
    if (word_is(s, len, t[i].name)) { *v = t[i].val; return true; }
  return false;
}

static const char *errno_name(int e)
{
  for (size_t i = 0; i < N_OF(errno_names); i++)
    if (errno_names[i].val == e) return errno_names[i].name;
  return NULL;
}

/* Formats a call result: a number, or -ENAME. */
static const char *fmt_result(long long v, char *buf, size_t cap)
{
  const char *n = v < 0 && v > -4096 ? errno_name((int)-v) : NULL;
  if (n) snprintf(buf, cap, "-%s", n);
  else snprintf(buf, cap, "%lld", v);
  return buf;
}

static const char *fmt_events(int ev, char *buf, size_t cap)
{
  size_t n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < N_OF(poll_names); i++)
    if (ev & poll_names[i].val)
      n += (size_t)snprintf(buf + n, cap - n, "%s%s", n ? "|" : "", poll_names[i].name);
  if (!n) snprintf(buf, cap, "0");
  return buf;
}

static bool parse_state(const char *s, size_t len, enum ustcp_state *st)
{
  for (int i = USTCP_CLOSED; i <= USTCP_TIME_WAIT; i++)
    if (word_is(s, len, ustcp_state_name((enum ustcp_state)i))) {
      *st = (enum ustcp_state)i;
      return true;
    }
  return false;
}

/* ---- config ---- */
enum cfg_type { CT_U8, CT_U16, CT_U32, CT_U64, CT_BOOL };
struct cfg_field {
  const char *name;
  size_t off;
  enum cfg_type type;
};
#define CF(name, type) {#name, offsetof(struct ustcp_config, name), type}
static const struct cfg_field cfg_fields[] = {
  CF(somaxconn, CT_U32), CF(max_syn_backlog, CT_U32), CF(syn_retries, CT_U32),
  CF(synack_retries, CT_U32), CF(orphan_retries, CT_U32), CF(retries2, CT_U32),
  CF(fin_timeout_us, CT_U64), CF(time_wait_us, CT_U64), CF(syncookies, CT_U32),
  CF(abort_on_overflow, CT_U32), CF(keepalive_time_us, CT_U64),
  CF(keepalive_intvl_us, CT_U64), CF(keepalive_probes, CT_U32), CF(rto_min_us, CT_U64),
  CF(rto_max_us, CT_U64), CF(rto_initial_us, CT_U64), CF(delack_min_us, CT_U64),
  CF(delack_max_us, CT_U64), CF(init_cwnd, CT_U32), CF(rmem_default, CT_U32),
  CF(rmem_max, CT_U32), CF(wmem_default, CT_U32), CF(wmem_max, CT_U32),
  CF(port_range_lo, CT_U16), CF(port_range_hi, CT_U16), CF(mtu, CT_U16),
  CF(window_scaling, CT_BOOL), CF(challenge_ack_limit, CT_U32), CF(max_sockets, CT_U32),
  CF(max_ooo_segments, CT_U32), CF(rfc1337, CT_U32), CF(invalid_ratelimit_us, CT_U64),
  CF(accept_local, CT_U32), CF(netdev_budget, CT_U32), CF(max_tw_buckets, CT_U32),
  CF(max_orphans, CT_U32), CF(timestamps, CT_BOOL), CF(notsent_lowat, CT_U32),
  CF(tcp_mem_pressure, CT_U64),
  CF(slow_start_after_idle, CT_BOOL), CF(min_tso_segs, CT_U32), CF(tcp_ecn, CT_U32),
  CF(tcp_recovery, CT_U32), CF(dsack, CT_BOOL), CF(tcp_frto, CT_U8),
};

static void do_config(struct runner *r, const char *s)
{
  size_t n = word_len(s);
  const char *eq = s + n;
  if (word_is(s, n, "congestion_control") && *eq == '=') {   /* a name: reno, cubic */
    size_t m = word_len(eq + 1);
    if (!m || m >= sizeof r->cfg.congestion_control || *skip_ws(eq + 1 + m)) {
      fail(r, "congestion_control wants a name");
      return;
    }
    memset(r->cfg.congestion_control, 0, sizeof r->cfg.congestion_control);
    memcpy(r->cfg.congestion_control, eq + 1, m);
    return;
  }
  uint64_t v;
  const char *end = *eq == '=' ? parse_u64(eq + 1, &v) : NULL;
  if (!n || !end || *skip_ws(end)) {
    fail(r, "config wants NAME=NUMBER");
    return;
  }
  if (word_is(s, n, "tolerance_us")) { r->tolerance_us = v; return; }
  if (word_is(s, n, "remote_isn")) { r->remote_isn = (uint32_t)v; return; }
  if (word_is(s, n, "remote_port")) { r->remote_port = (uint16_t)v; return; }
  if (word_is(s, n, "seed")) { r->seed = v; return; }
  if (word_is(s, n, "local_port")) { r->local_port = (uint16_t)v; return; }
  for (size_t i = 0; i < N_OF(cfg_fields); i++) {
    const struct cfg_field *f = &cfg_fields[i];
    if (!word_is(s, n, f->name)) continue;
    char *p = (char *)&r->cfg + f->off;
    switch (f->type) {
    case CT_U8: { uint8_t x = (uint8_t)v; memcpy(p, &x, sizeof x); break; }
    case CT_U16: { uint16_t x = (uint16_t)v; memcpy(p, &x, sizeof x); break; }
    case CT_U32: { uint32_t x = (uint32_t)v; memcpy(p, &x, sizeof x); break; }
    case CT_U64: memcpy(p, &v, sizeof v); break;
    case CT_BOOL: { bool x = v != 0; memcpy(p, &x, sizeof x); break; }
    }
    return;
  }
  fail(r, "unknown config name '%.*s'", (int)n, s);
}

/* ---- segments: parse, format, compare ---- */
struct seg_spec {
  char dir;                 /* '<' inject, '>' expect */
  uint16_t rport;           /* the peer's port */
  uint8_t flags;
  uint32_t seq, end, len;   /* relative */
  bool has_ack, has_win, has_urg, has_opts, bad_csum;
  bool has_ecn;             /* [noecn] [ect0] [ect1] [ce] written */
  uint8_t ecn;              /* the IP ECN field (IP_ECN_*) */
  uint32_t ack, win, urg;
  struct tcp_opts opts;     /* sack blocks relative */
};

static const char *parse_flags(struct runner *r, const char *s, uint8_t *flags)
{
  *flags = 0;
  static const char chars[] = "FSRP.UEW";
  static const uint8_t bits[] = {TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG,
                                 TCP_ECE, TCP_CWR};
  const char *start = s;
  while (*s && !isspace((unsigned char)*s)) {
    const char *c = strchr(chars, *s);
    if (!c) { fail(r, "bad flag '%c'", *s); return NULL; }
    *flags |= bits[c - chars];
    s++;
  }
  if (s == start) { fail(r, "missing flags"); return NULL; }
  return s;
}

/* <mss 1460,wscale 7,sackOK,TS val 1 ecr 0,nop,eol,sack 1:100 200:300> */
static const char *parse_opts(struct runner *r, const char *s, struct tcp_opts *o)
{
  memset(o, 0, sizeof *o);
  s = skip_ws(s + 1);
  while (*s && *s != '>') {
    size_t n = word_len(s);
    const char *w = s;
    s = skip_ws(s + n);
    uint32_t v;
    if (word_is(w, n, "nop") || word_is(w, n, "eol")) {
      /* padding: the encoder places its own */
    } else if (word_is(w, n, "sackOK")) {
      o->present |= TCP_OPT_HAS_SACK_PERM;
    } else if (word_is(w, n, "mss") && (s = parse_u32(s, &v)) != NULL) {
      o->present |= TCP_OPT_HAS_MSS;
      o->mss = (uint16_t)v;
    } else if (word_is(w, n, "wscale") && (s = parse_u32(s, &v)) != NULL) {
      o->present |= TCP_OPT_HAS_WSCALE;
      o->wscale = (uint8_t)v;
    } else if (word_is(w, n, "TS") && strncmp(s, "val", 3) == 0 &&
               (s = parse_u32(skip_ws(s + 3), &o->ts_val)) != NULL &&
               strncmp(s = skip_ws(s), "ecr", 3) == 0 &&
               (s = parse_u32(skip_ws(s + 3), &o->ts_ecr)) != NULL) {
      o->present |= TCP_OPT_HAS_TS;
    } else if (word_is(w, n, "sack")) {
      o->present |= TCP_OPT_HAS_SACK;
      while (s && isdigit((unsigned char)*s)) {
        if (o->sack_count == TCP_MAX_SACK_BLOCKS) { fail(r, "too many SACK blocks"); return NULL; }
        struct tcp_sack_block *b = &o->sack[o->sack_count++];
        if (!(s = parse_u32(s, &b->left)) || *s++ != ':' || !(s = parse_u32(s, &b->right)))
          break;
        s = skip_ws(s);
      }
    } else {
      s = NULL;
    }
    if (!s) { fail(r, "bad option '%.*s'", (int)n, w); return NULL; }
    s = skip_ws(s);
    if (*s == ',') s = skip_ws(s + 1);
  }
  if (*s != '>') { fail(r, "options not closed with '>'"); return NULL; }
  return s + 1;
}

static bool parse_segment(struct runner *r, const char *s, struct seg_spec *g)
{
  memset(g, 0, sizeof *g);
  g->dir = *s++;
  g->rport = r->remote_port;
  if (*s == '[') {
    uint32_t p;
    if (!(s = parse_u32(s + 1, &p)) || *s != ']' || p > 65535) {
      fail(r, "bad [port]");
      return false;
    }
    g->rport = (uint16_t)p;
    s++;
  }
  s = skip_ws(s);
  if (*s == '[') {
    /* the IP ECN field (RFC 3168 §5), packetdrill's words */
    static const struct { const char *w; uint8_t v; } ecn[] = {
      {"noecn", IP_ECN_NOT_ECT}, {"ect0", IP_ECN_ECT0}, {"ect1", IP_ECN_ECT1}, {"ce", IP_ECN_CE},
    };
    const char *close = strchr(s, ']');
    size_t i = 0;
    for (; close && i < N_OF(ecn); i++)
      if ((size_t)(close - s - 1) == strlen(ecn[i].w) && !strncmp(s + 1, ecn[i].w, strlen(ecn[i].w)))
        break;
    if (!close || i == N_OF(ecn)) {
      fail(r, "bad ECN codepoint (want [noecn], [ect0], [ect1] or [ce])");
      return false;
    }
    g->has_ecn = true;
    g->ecn = ecn[i].v;
    s = close + 1;
  }
  s = parse_flags(r, skip_ws(s), &g->flags);
  if (!s) return false;
  s = skip_ws(s);
  if (!(s = parse_u32(s, &g->seq)) || *s++ != ':' || !(s = parse_u32(s, &g->end)) ||
      *s++ != '(' || !(s = parse_u32(s, &g->len)) || *s++ != ')') {
    fail(r, "want SEQ:END(LEN)");
    return false;
  }
  if (g->end - g->seq != g->len) {
    fail(r, "END - SEQ != LEN");
    return false;
  }
  for (s = skip_ws(s); *s; s = skip_ws(s)) {
    if (*s == '<') {
      if (!(s = parse_opts(r, s, &g->opts))) return false;
      g->has_opts = true;
      continue;
    }
    size_t n = word_len(s);
    const char *w = s;
    s = skip_ws(s + n);
    if (word_is(w, n, "bad_csum") && g->dir == '<') { g->bad_csum = true; continue; }
    uint32_t *v = NULL;
    if (word_is(w, n, "ack")) { v = &g->ack; g->has_ack = true; }
    else if (word_is(w, n, "win")) { v = &g->win; g->has_win = true; }
    else if (word_is(w, n, "urg")) { v = &g->urg; g->has_urg = true; }
    if (!v || !(s = parse_u32(s, v))) {
      fail(r, "unexpected '%.*s' in a segment line", (int)(n ? n : 1), w);
      return false;
    }
  }
  if (g->has_ack && !(g->flags & TCP_ACK)) {
    fail(r, "'ack' given without the ACK flag '.'");
    return false;
  }
  if ((g->flags & TCP_ACK) && !g->has_ack) {
    fail(r, "the ACK flag '.' needs 'ack N'");
    return false;
  }
  return true;
}

/* Formats an output packet as a ">" line would describe it (relative numbers). */
static void fmt_out(struct runner *r, const struct tcp_packet *p, char *buf, size_t cap)
{
  char fl[16];
  const struct tcp_hdr *h = &p->tcp;
  size_t n = 0;
  const struct peer *pe = NULL;
  for (int i = 0; i < r->npeers; i++)
    if (r->peers[i].rport == h->dst_port) pe = &r->peers[i];
  uint32_t base = pe && pe->iss_known ? pe->iss : 0;
  uint32_t seq = h->seq - base;
  if (h->dst_port == r->remote_port) n += (size_t)snprintf(buf + n, cap - n, ">");
  else n += (size_t)snprintf(buf + n, cap - n, ">[%u]", h->dst_port);
  static const char *const ecn_words[] = {"noecn", "ect1", "ect0", "ce"};
  n += (size_t)snprintf(buf + n, cap - n, " [%s]", ecn_words[p->ip.tos & IP_ECN_MASK]);
  n += (size_t)snprintf(buf + n, cap - n, " %s %" PRIu32 ":%" PRIu32 "(%zu)",
                        tcp_flags_str(h->flags, fl, sizeof fl), seq,
                        seq + (uint32_t)p->payload_len, p->payload_len);
  if (h->flags & TCP_ACK)
    n += (size_t)snprintf(buf + n, cap - n, " ack %" PRIu32, h->ack - r->remote_isn);
  n += (size_t)snprintf(buf + n, cap - n, " win %u", h->window);
  if (h->flags & TCP_URG) n += (size_t)snprintf(buf + n, cap - n, " urg %u", h->urg_ptr);
  const struct tcp_opts *o = &h->opts;
  if (o->present) {
    const char *sep = "";
    n += (size_t)snprintf(buf + n, cap - n, " <");
#define SEP() (n += (size_t)snprintf(buf + n, cap - n, "%s", sep), sep = ",")
    if (o->present & TCP_OPT_HAS_MSS) { SEP(); n += (size_t)snprintf(buf + n, cap - n, "mss %u", o->mss); }
    if (o->present & TCP_OPT_HAS_SACK_PERM) { SEP(); n += (size_t)snprintf(buf + n, cap - n, "sackOK"); }
    if (o->present & TCP_OPT_HAS_TS) {
      SEP();
      n += (size_t)snprintf(buf + n, cap - n, "TS val %" PRIu32 " ecr %" PRIu32,
                            o->ts_val - (r->ts_base_known ? r->ts_base : 0), o->ts_ecr);
    }
    if (o->present & TCP_OPT_HAS_WSCALE) { SEP(); n += (size_t)snprintf(buf + n, cap - n, "wscale %u", o->wscale); }
    if (o->present & TCP_OPT_HAS_SACK) {
      SEP();
      n += (size_t)snprintf(buf + n, cap - n, "sack");
      for (int i = 0; i < o->sack_count; i++)
        n += (size_t)snprintf(buf + n, cap - n, " %" PRIu32 ":%" PRIu32,
                              o->sack[i].left - r->remote_isn, o->sack[i].right - r->remote_isn);
    }
#undef SEP
    n += (size_t)snprintf(buf + n, cap - n, ">");
  }
  if (n >= cap) buf[cap - 1] = '\0';
}

static bool opts_equal(const struct tcp_opts *want, const struct tcp_opts *got, uint32_t sack_base,
                       uint32_t ts_base)
{
  if (want->present != got->present) return false;
  if ((want->present & TCP_OPT_HAS_MSS) && want->mss != got->mss) return false;
  if ((want->present & TCP_OPT_HAS_WSCALE) && want->wscale != got->wscale) return false;
  if ((want->present & TCP_OPT_HAS_TS) &&
      (want->ts_val + ts_base != got->ts_val || want->ts_ecr != got->ts_ecr))
    return false;
  if (want->present & TCP_OPT_HAS_SACK) {
    if (want->sack_count != got->sack_count) return false;
    for (int i = 0; i < want->sack_count; i++)
      if (want->sack[i].left + sack_base != got->sack[i].left ||
          want->sack[i].right + sack_base != got->sack[i].right)
        return false;
  }
  return true;
}

/* "<": the peer sends a segment. */
static void do_inject(struct runner *r, const struct seg_spec *g)
{
  struct peer *pe = peer_get(r, g->rport);
  if (!pe) return;
  uint16_t lport = peer_lport(r, pe);
  if (!lport) { fail(r, "no local port known yet (bind or connect first)"); return; }
  /* A SYN that opens a new connection (nothing there, or a TIME_WAIT being
   * reused) makes the stack choose a new ISN: the old one is forgotten after
   * the input. A SYN crossing ours (simultaneous open), a retransmitted SYN or
   * an old SYN that TIME_WAIT only ACKs keeps it. */
  bool pure_syn = (g->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
  enum ustcp_state before = pure_syn ? conn_state(r, lport, g->rport) : USTCP_CLOSED;
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.src_port = g->rport;
  h.dst_port = lport;
  h.seq = r->remote_isn + g->seq;
  h.flags = g->flags;
  uint32_t base = pe->iss_known ? pe->iss : 0;   /* no ISN known: ack is absolute */
  if (g->flags & TCP_ACK) h.ack = base + g->ack;
  h.window = g->has_win ? (uint16_t)g->win : 65535;
  h.urg_ptr = (uint16_t)g->urg;
  if (g->has_opts) {
    h.opts = g->opts;
    /* TSecr echoes the stack's TSval: relative to ts_base once known; 0, the
     * echo of nothing, stays 0. */
    if ((h.opts.present & TCP_OPT_HAS_TS) && h.opts.ts_ecr && r->ts_base_known)
      h.opts.ts_ecr += r->ts_base;
    for (int i = 0; i < h.opts.sack_count; i++) {
      h.opts.sack[i].left += base;
      h.opts.sack[i].right += base;
    }
  }
  static uint8_t payload[65536], pkt[70000];
  if (g->len > 65000) { fail(r, "payload too long"); return; }
  uint32_t first = g->seq + ((g->flags & TCP_SYN) ? 1 : 0) - 1;   /* stream offset */
  for (uint32_t i = 0; i < g->len; i++) payload[i] = pattern(first + i);
  int n = tcp_packet_encode_tos(&h, payload, g->len, REMOTE_IP, LOCAL_IP, 0, g->ecn, pkt,
                                sizeof pkt);
  if (n < 0) { fail(r, "cannot encode: %s", wire_strerror(n)); return; }
  if (g->bad_csum) pkt[IPV4_HDR_LEN + 16] ^= 0x5a;   /* D5: corrupt the TCP checksum */
  ustcp_input(r->stack, pkt, (size_t)n, r->now_us);
  if (pure_syn && (before == USTCP_CLOSED ||
                   (before == USTCP_TIME_WAIT &&
                    conn_state(r, lport, g->rport) != USTCP_TIME_WAIT)))
    pe->iss_known = false;
}

/* ">": the next packet the stack outputs must be this one, within tolerance of t. */
static void do_expect(struct runner *r, const struct seg_spec *g, uint64_t t)
{
  uint64_t lo = t > r->tolerance_us ? t - r->tolerance_us : 0, hi = t + r->tolerance_us;
  if (!q_front(r)) advance_to(r, t);
  while (!q_front(r) && advance_one(r, hi)) {}
  struct out_pkt *o = q_front(r);
  if (!o) {
    fail(r, "expected packet not sent (waited until t=%.6f)", (double)hi / 1e6);
    return;
  }
  struct tcp_packet p;
  int rc = tcp_packet_decode(o->data, o->len, &p);
  if (rc != WIRE_OK) {
    fail(r, "the stack sent an undecodable packet: %s", wire_strerror(rc));
    return;
  }
  struct peer *pe = peer_get(r, g->rport);
  if (!pe) return;
  const struct tcp_hdr *h = &p.tcp;
  /* The first SYN or SYN-ACK of a connection tells its ISN and local port. */
  if ((g->flags & TCP_SYN) && (h->flags & TCP_SYN) && !pe->iss_known) {
    pe->iss = h->seq - g->seq;
    pe->iss_known = true;
  }
  if (!pe->lport && h->dst_port == g->rport) pe->lport = h->src_port;
  if (g->has_opts && (g->opts.present & h->opts.present & TCP_OPT_HAS_TS) && !r->ts_base_known) {
    r->ts_base = h->opts.ts_val - g->opts.ts_val;
    r->ts_base_known = true;
  }
  char got[512], why[256] = "";
  uint32_t base = pe->iss_known ? pe->iss : 0;   /* no ISN known: seq is absolute */
  if (o->at_us < lo || o->at_us > hi)
    snprintf(why, sizeof why, "sent at t=%.6f, expected at %.6f", (double)o->at_us / 1e6,
             (double)t / 1e6);
  else if (p.ip.src != LOCAL_IP || p.ip.dst != REMOTE_IP)
    snprintf(why, sizeof why, "wrong IP addresses");
  else if (h->dst_port != g->rport || h->src_port != peer_lport(r, pe))
    snprintf(why, sizeof why, "wrong ports %u -> %u", h->src_port, h->dst_port);
  else if (h->flags != g->flags)
    snprintf(why, sizeof why, "wrong flags");
  else if (g->has_ecn && (p.ip.tos & IP_ECN_MASK) != g->ecn)
    snprintf(why, sizeof why, "wrong IP ECN field");
  else if (h->seq - base != g->seq)
    snprintf(why, sizeof why, "wrong seq");
  else if (p.payload_len != g->len)
    snprintf(why, sizeof why, "wrong length");
  else if ((h->flags & TCP_ACK) && h->ack - r->remote_isn != g->ack)
    snprintf(why, sizeof why, "wrong ack");
  else if (g->has_win && h->window != g->win)
    snprintf(why, sizeof why, "wrong window");
  else if (g->has_urg && h->urg_ptr != g->urg)
    snprintf(why, sizeof why, "wrong urgent pointer");
  else if (g->has_opts && !opts_equal(&g->opts, &h->opts, r->remote_isn, r->ts_base))
    snprintf(why, sizeof why, "wrong options");
  else if (pe->iss_known) {
    uint32_t first = g->seq + ((h->flags & TCP_SYN) ? 1 : 0) - 1;
    for (uint32_t i = 0; i < g->len; i++)
      if (p.payload[i] != pattern(first + i)) {
        snprintf(why, sizeof why, "payload byte %" PRIu32 " (stream offset %" PRIu32
                 ") is not the bytes sent", i, first + i);
        break;
      }
  }
  if (why[0]) {
    fmt_out(r, &p, got, sizeof got);
    fail(r, "%s\n    actual: t=%.6f %s", why, (double)o->at_us / 1e6, got);
    return;
  }
  q_pop(r);
}

/* Fails on a packet output long enough before t that no later line may claim it. */
static void check_unexpected(struct runner *r, uint64_t t)
{
  struct out_pkt *o = q_front(r);
  if (!o || o->at_us + r->tolerance_us >= t) return;
  struct tcp_packet p;
  char got[512] = "(undecodable)";
  if (tcp_packet_decode(o->data, o->len, &p) == WIRE_OK) fmt_out(r, &p, got, sizeof got);
  fail(r, "unexpected packet\n    actual: t=%.6f %s", (double)o->at_us / 1e6, got);
}

/* ---- socket calls ---- */
struct call {
  char name[32];
  char args[MAX_ARGS][64];
  int nargs;
  const char *result;   /* text after '=', or NULL when unchecked */
};

static bool parse_call(struct runner *r, const char *s, struct call *c)
{
  memset(c, 0, sizeof *c);
  size_t n = word_len(s);
  if (!n || n >= sizeof c->name) { fail(r, "unknown line"); return false; }
  memcpy(c->name, s, n);
  s = skip_ws(s + n);
  if (*s++ != '(') { fail(r, "want '(' after %s", c->name); return false; }
  for (s = skip_ws(s); *s && *s != ')';) {
    const char *e = s;
    while (*e && *e != ',' && *e != ')') e++;
    const char *end = e;
    while (end > s && isspace((unsigned char)end[-1])) end--;
    if (c->nargs == MAX_ARGS || (size_t)(end - s) >= sizeof c->args[0]) {
      fail(r, "bad arguments");
      return false;
    }
    memcpy(c->args[c->nargs++], s, (size_t)(end - s));
    s = *e == ',' ? skip_ws(e + 1) : e;
  }
  if (*s++ != ')') { fail(r, "want ')'"); return false; }
  s = skip_ws(s);
  if (*s == '=') c->result = skip_ws(s + 1);
  else if (*s) { fail(r, "junk after the call"); return false; }
  return true;
}

static bool arg_int(struct runner *r, const struct call *c, int i, long long *v)
{
  char *end;
  if (i >= c->nargs) { fail(r, "%s: missing argument %d", c->name, i + 1); return false; }
  *v = strtoll(c->args[i], &end, 0);
  if (end == c->args[i] || *end) { fail(r, "%s: bad number '%s'", c->name, c->args[i]); return false; }
  return true;
}

static bool arg_fd(struct runner *r, const struct call *c, int *fd)
{
  long long v;
  if (!arg_int(r, c, 0, &v)) return false;
  if (v < 0 || v >= MAX_FDS) { fail(r, "fd %lld out of range", v); return false; }
  *fd = (int)v;
  return true;
}

/* IP:PORT or PORT (the stack's own address then). */
static bool arg_addr(struct runner *r, const struct call *c, int i, uint32_t dflt_ip,
                     struct ustcp_addr *a)
{
  if (i >= c->nargs) { fail(r, "%s: missing address", c->name); return false; }
  const char *s = c->args[i];
  const char *colon = strchr(s, ':');
  uint32_t port;
  memset(a, 0, sizeof *a);          /* family 0: IPv4 (include/ustcp.h) */
  a->ip = dflt_ip;
  if (colon) {
    char ip[32];
    if ((size_t)(colon - s) >= sizeof ip) { fail(r, "bad address"); return false; }
    memcpy(ip, s, (size_t)(colon - s));
    ip[colon - s] = '\0';
    if (ipv4_parse(ip, &a->ip) != 0) { fail(r, "bad IPv4 address '%s'", ip); return false; }
    s = colon + 1;
  }
  const char *e = parse_u32(s, &port);
  if (!e || *e || port > 65535) { fail(r, "bad port in '%s'", c->args[i]); return false; }
  a->port = (uint16_t)port;
  return true;
}

/* Compares a numeric result: N, -ENAME, or LO..HI. */
static void check_num(struct runner *r, const struct call *c, long long got)
{
  if (!c->result) return;
  char buf[64];
  const char *s = c->result;
  long long want, hi;
  int e;
  if (s[0] == '-' && isalpha((unsigned char)s[1])) {
    size_t n = word_len(s + 1);
    if (!lookup(errno_names, N_OF(errno_names), s + 1, n, &e) || *skip_ws(s + 1 + n)) {
      fail(r, "unknown errno name '%s'", s + 1);
      return;
    }
    want = hi = -e;
  } else {
    char *end;
    want = hi = strtoll(s, &end, 10);
    if (end == s) { fail(r, "bad result '%s'", s); return; }
    if (strncmp(end, "..", 2) == 0) {
      const char *s2 = end + 2;
      hi = strtoll(s2, &end, 10);
      if (end == s2) { fail(r, "bad range '%s'", s); return; }
    }
    if (*skip_ws(end)) { fail(r, "bad result '%s'", s); return; }
  }
  if (got < want || got > hi) fail(r, "%s() returned %s", c->name, fmt_result(got, buf, sizeof buf));
}

static void check_state(struct runner *r, const struct call *c, enum ustcp_state got)
{
  enum ustcp_state want;
  if (!c->result) return;
  size_t n = word_len(c->result);
  if (!parse_state(c->result, n, &want) || *skip_ws(c->result + n)) {
    fail(r, "unknown state '%s'", c->result);
    return;
  }
  if (got != want) fail(r, "state is %s", ustcp_state_name(got));
}

static void reset_fd(struct runner *r, int fd)
{
  if (fd >= 0 && fd < MAX_FDS) r->sent_off[fd] = r->recv_off[fd] = 0;
}

static bool sockopt_name(const char *s, int *level, int *name)
{
  static const struct { const char *n; int level, name; } t[] = {
    {"SO_REUSEADDR", USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR},
    {"SO_KEEPALIVE", USTCP_SOL_SOCKET, USTCP_SO_KEEPALIVE},
    {"SO_SNDBUF", USTCP_SOL_SOCKET, USTCP_SO_SNDBUF},
    {"SO_RCVBUF", USTCP_SOL_SOCKET, USTCP_SO_RCVBUF},
    {"SO_LINGER", USTCP_SOL_SOCKET, USTCP_SO_LINGER},
    {"TCP_NODELAY", USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY},
    {"TCP_MAXSEG", USTCP_IPPROTO_TCP, USTCP_TCP_MAXSEG},
    {"TCP_KEEPIDLE", USTCP_IPPROTO_TCP, USTCP_TCP_KEEPIDLE},
    {"TCP_KEEPINTVL", USTCP_IPPROTO_TCP, USTCP_TCP_KEEPINTVL},
    {"TCP_KEEPCNT", USTCP_IPPROTO_TCP, USTCP_TCP_KEEPCNT},
    {"TCP_QUICKACK", USTCP_IPPROTO_TCP, USTCP_TCP_QUICKACK},
    {"TCP_CORK", USTCP_IPPROTO_TCP, USTCP_TCP_CORK},
    {"TCP_USER_TIMEOUT", USTCP_IPPROTO_TCP, USTCP_TCP_USER_TIMEOUT},
    {"TCP_NOTSENT_LOWAT", USTCP_IPPROTO_TCP, USTCP_TCP_NOTSENT_LOWAT},
    {"TCP_INQ", USTCP_IPPROTO_TCP, USTCP_TCP_INQ},
    {"IP_TOS", USTCP_IPPROTO_IP, USTCP_IP_TOS},
    {"TCP_ECN", USTCP_IPPROTO_TCP, USTCP_TCP_ECN},
    {"IP_MTU_DISCOVER", USTCP_IPPROTO_IP, USTCP_IP_MTU_DISCOVER},
  };
  for (size_t i = 0; i < N_OF(t); i++)
    if (strcmp(s, t[i].n) == 0) { *level = t[i].level; *name = t[i].name; return true; }
  return false;
}

static void do_call(struct runner *r, const char *s)
{
  struct call c;
  if (!parse_call(r, s, &c)) return;
  struct ustcp_stack *st = r->stack;
  int fd = -1;
  long long v, v2;
  struct ustcp_addr a;
  if (strcmp(c.name, "socket") == 0) {
    int rc = ustcp_socket(st);
    reset_fd(r, rc);
    check_num(r, &c, rc);
  } else if (strcmp(c.name, "conn") == 0) {
    if (!arg_int(r, &c, 0, &v) || !arg_int(r, &c, 1, &v2)) return;
    check_state(r, &c, conn_state(r, (uint16_t)v, (uint16_t)v2));
  } else if (!arg_fd(r, &c, &fd)) {
    return;
  } else if (strcmp(c.name, "bind") == 0) {
    if (!arg_addr(r, &c, 1, LOCAL_IP, &a)) return;
    int rc = ustcp_bind(st, fd, &a);
    if (rc == 0 && ustcp_getsockname(st, fd, &a) == 0) r->local_port = a.port;
    check_num(r, &c, rc);
  } else if (strcmp(c.name, "listen") == 0) {
    if (!arg_int(r, &c, 1, &v)) return;
    check_num(r, &c, ustcp_listen(st, fd, (int)v));
  } else if (strcmp(c.name, "accept") == 0) {
    int rc = ustcp_accept(st, fd, NULL);
    reset_fd(r, rc);
    check_num(r, &c, rc);
  } else if (strcmp(c.name, "connect") == 0) {
    if (!arg_addr(r, &c, 1, REMOTE_IP, &a)) return;
    bool fresh = false;
    struct ustcp_tcp_info ti;
    if (ustcp_get_info(st, fd, &ti) == 0 && ti.state == USTCP_CLOSED) fresh = true;
    int rc = ustcp_connect(st, fd, &a);
    if (fresh && a.ip == REMOTE_IP && rc == -EINPROGRESS) {
      /* A new connection to the peer: its port becomes the default, and the
       * stack's ISN is learned again from the SYN. */
      r->remote_port = a.port;
      struct peer *pe = peer_get(r, a.port);
      struct ustcp_addr la;
      if (pe && ustcp_getsockname(st, fd, &la) == 0) {
        pe->iss_known = false;
        pe->lport = la.port;
        r->local_port = la.port;
      }
    }
    check_num(r, &c, rc);
  } else if (strcmp(c.name, "send") == 0 || strcmp(c.name, "recv") == 0) {
    bool is_send = c.name[0] == 's';
    if (!arg_int(r, &c, 1, &v)) return;
    if (v < 0 || v > 1 << 24) { fail(r, "bad length"); return; }
    uint8_t *buf = malloc(v ? (size_t)v : 1);
    if (!buf) { fail(r, "out of memory"); return; }
    ssize_t rc;
    if (is_send) {
      for (long long i = 0; i < v; i++) buf[i] = pattern(r->sent_off[fd] + (uint32_t)i);
      int sflags = 0;
      if (c.nargs > 2) {
        if (strcmp(c.args[2], "MSG_EOR") == 0) sflags = USTCP_MSG_EOR;
        else if (strcmp(c.args[2], "MSG_MORE") == 0) sflags = USTCP_MSG_MORE;
        else if (strcmp(c.args[2], "0") != 0) {
          free(buf);
          fail(r, "send: unknown flags '%s'", c.args[2]);
          return;
        }
      }
      rc = ustcp_send(st, fd, buf, (size_t)v, sflags);
      if (rc > 0) r->sent_off[fd] += (uint32_t)rc;
    } else {
      rc = ustcp_recv(st, fd, buf, (size_t)v, 0);
      for (ssize_t i = 0; i < rc; i++)
        if (buf[i] != pattern(r->recv_off[fd] + (uint32_t)i)) {
          fail(r, "recv: byte %zd (stream offset %" PRIu32 ") is not the byte injected", i,
               r->recv_off[fd] + (uint32_t)i);
          break;
        }
      if (rc > 0) r->recv_off[fd] += (uint32_t)rc;
    }
    free(buf);
    check_num(r, &c, rc);
  } else if (strcmp(c.name, "shutdown") == 0) {
    int how;
    if (c.nargs < 2) { fail(r, "shutdown: missing how"); return; }
    if (strcmp(c.args[1], "SHUT_RD") == 0) how = USTCP_SHUT_RD;
    else if (strcmp(c.args[1], "SHUT_WR") == 0) how = USTCP_SHUT_WR;
    else if (strcmp(c.args[1], "SHUT_RDWR") == 0) how = USTCP_SHUT_RDWR;
    else if (arg_int(r, &c, 1, &v)) how = (int)v;   /* a raw number, to test EINVAL */
    else return;
    check_num(r, &c, ustcp_shutdown(st, fd, how));
  } else if (strcmp(c.name, "close") == 0) {
    int rc = ustcp_close(st, fd);
    if (rc == 0) reset_fd(r, fd);
    check_num(r, &c, rc);
  } else if (strcmp(c.name, "setsockopt") == 0) {
    int level, name;
    if (c.nargs < 3 || !sockopt_name(c.args[1], &level, &name)) {
      fail(r, "setsockopt: unknown option '%s'", c.nargs > 1 ? c.args[1] : "");
      return;
    }
    int rc;
    if (name == USTCP_SO_LINGER && level == USTCP_SOL_SOCKET) {
      if (!arg_int(r, &c, 2, &v) || !arg_int(r, &c, 3, &v2)) return;
      struct ustcp_linger l = {(int)v, (int)v2};
      rc = ustcp_setsockopt(st, fd, level, name, &l, sizeof l);
    } else {
      if (!arg_int(r, &c, 2, &v)) return;
      int iv = (int)v;
      rc = ustcp_setsockopt(st, fd, level, name, &iv, sizeof iv);
    }
    check_num(r, &c, rc);
  } else if (strcmp(c.name, "getsockopt") == 0) {
    /* int options: the value read back is the result (or the error) */
    int level, name;
    if (c.nargs < 2 || !sockopt_name(c.args[1], &level, &name)) {
      fail(r, "getsockopt: unknown option '%s'", c.nargs > 1 ? c.args[1] : "");
      return;
    }
    int iv = 0;
    size_t len = sizeof iv;
    int rc = ustcp_getsockopt(st, fd, level, name, &iv, &len);
    check_num(r, &c, rc == 0 ? iv : rc);
  } else if (strcmp(c.name, "inq") == 0) {
    check_num(r, &c, ustcp_inq(st, fd));
  } else if (strcmp(c.name, "error") == 0) {
    check_num(r, &c, ustcp_sock_error(st, fd));
  } else if (strcmp(c.name, "getsockname") == 0) {
    int rc = ustcp_getsockname(st, fd, &a);
    check_num(r, &c, rc == 0 ? a.port : rc);
  } else if (strcmp(c.name, "state") == 0) {
    struct ustcp_tcp_info ti;
    int rc = ustcp_get_info(st, fd, &ti);
    if (rc) { fail(r, "state: %s", fmt_result(rc, (char[32]){0}, 32)); return; }
    check_state(r, &c, ti.state);
  } else if (strcmp(c.name, "events") == 0) {
    int ev = ustcp_sock_events(st, fd);
    if (!c.result || ev < 0) { check_num(r, &c, ev); return; }
    int want = 0;
    char buf[128];
    for (const char *p = c.result; *p;) {
      size_t n = word_len(p);
      int bit;
      if (word_is(p, n, "0")) bit = 0;
      else if (!lookup(poll_names, N_OF(poll_names), p, n, &bit)) {
        fail(r, "events: unknown bit '%s'", p);
        return;
      }
      want |= bit;
      p = skip_ws(p + n);
      if (*p == '|') p = skip_ws(p + 1);
      else if (*p) { fail(r, "events: bad list '%s'", c.result); return; }
    }
    if (ev != want) fail(r, "events are %s", fmt_events(ev, buf, sizeof buf));
  } else {
    fail(r, "unknown call '%s'", c.name);
  }
}

/* ---- lines ---- */
static void strip(char *s)
{
  char *hash = strchr(s, '#');
  if (hash) *hash = '\0';
  size_t n = strlen(s);
  while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
}

static void create_stack(struct runner *r)
{
  r->stack = ustcp_stack_new(&r->cfg, LOCAL_IP, r->seed, on_output, r);
  if (!r->stack) fail(r, "ustcp_stack_new rejected the configuration");
}

static void run_line(struct runner *r, const char *s)
{
  uint64_t t;
  if (*s == '+') {
    const char *e = parse_seconds(s + 1, &t);
    if (!e) { fail(r, "bad relative time"); return; }
    t += r->line_us;
    s = e;
  } else {
    s = parse_seconds(s, &t);
    if (!s) { fail(r, "line must start with a time (or be config)"); return; }
  }
  if (!isspace((unsigned char)*s)) { fail(r, "want a space after the time"); return; }
  if (t < r->line_us) { fail(r, "time goes backwards"); return; }
  r->line_us = t;
  s = skip_ws(s);
  if (*s == '>') {
    struct seg_spec g;
    if (parse_segment(r, s, &g)) do_expect(r, &g, t);
    return;
  }
  advance_to(r, t);
  check_unexpected(r, t);
  if (r->failed) return;
  if (*s == '<') {
    struct seg_spec g;
    if (parse_segment(r, s, &g)) do_inject(r, &g);
  } else {
    do_call(r, s);
  }
}

static bool run_script(const char *file)
{
  struct runner *r = calloc(1, sizeof *r);
  if (!r) return false;
  FILE *f = fopen(file, "r");
  r->file = file;
  if (!f) {
    fprintf(stderr, "%s: cannot open\n", file);
    free(r);
    return false;
  }
  ustcp_config_default(&r->cfg);
  r->tolerance_us = 2000;
  r->remote_isn = 1000000;
  r->remote_port = 40000;
  r->seed = 1;
  char raw[MAX_LINE], line[MAX_LINE];
  while (!r->failed && fgets(raw, sizeof raw, f)) {
    r->line++;
    raw[strcspn(raw, "\r\n")] = '\0';
    snprintf(line, sizeof line, "%s", raw);
    strip(line);
    const char *s = skip_ws(line);
    if (!*s) continue;
    r->text = raw;
    if (strncmp(s, "config", 6) == 0 && isspace((unsigned char)s[6])) {
      if (r->stack) fail(r, "config after the first action");
      else do_config(r, skip_ws(s + 6));
      continue;
    }
    if (!r->stack) create_stack(r);
    if (!r->failed) run_line(r, s);
  }
  fclose(f);
  if (!r->failed && r->stack) {
    /* The end: nothing may be left that no line expected. */
    r->text = NULL;
    r->line++;
    advance_to(r, r->line_us);
    check_unexpected(r, r->line_us + r->tolerance_us + 1);
  }
  bool ok = !r->failed;
  if (r->stack) ustcp_stack_free(r->stack);
  while (r->q_len) q_pop(r);
  free(r->q);
  free(r);
  printf("%s %s\n", ok ? "PASS" : "FAIL", file);
  return ok;
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE.pkt [...]\n", argv[0]);
    return 2;
  }
  int passed = 0, failed = 0;
  for (int i = 1; i < argc; i++) {
    if (run_script(argv[i])) passed++;
    else failed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
