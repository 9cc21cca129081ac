/* Sequence diagrams of one TCP conversation: see trace_view.h. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include "trace_view.h"
#include "wire/ipv6.h"
#include "wire/seq.h"

void tv_init(struct tv *v)
{
  memset(v, 0, sizeof *v);
  snprintf(v->name[0], sizeof v->name[0], "client");
  snprintf(v->name[1], sizeof v->name[1], "server");
}

void tv_free(struct tv *v)
{
  free(v->e);
  v->e = NULL;
  v->n = v->cap = 0;
  free(v->c);
  v->c = NULL;
  v->nc = v->ccap = 0;
  free(v->a6);
  v->a6 = NULL;
  v->na6 = v->a6cap = 0;
}

uint32_t tv_addr6(struct tv *v, const uint8_t a[16])
{
  for (size_t k = 0; k < v->na6; k++)
    if (!memcmp(v->a6[k], a, 16)) return (uint32_t)k + 1;
  if (v->na6 == TV_MAX_A6) return 0;
  if (v->na6 == v->a6cap) {
    size_t ncap = v->a6cap ? v->a6cap * 2 : 8;
    uint8_t (*n)[16] = realloc(v->a6, ncap * sizeof *n);
    if (!n) return 0;
    v->a6 = n;
    v->a6cap = ncap;
  }
  memcpy(v->a6[v->na6++], a, 16);
  return (uint32_t)v->na6;
}

const char *tv_addr_str(const struct tv *v, uint32_t ip, char *buf, size_t cap)
{
  if (ip >= 1 && ip <= v->na6) {
    char t[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, v->a6[ip - 1], t, sizeof t);
    snprintf(buf, cap, "%s", t);
    return buf;
  }
  return ipv4_str(ip, buf, cap);
}

const char *tv_endpoint_str(const struct tv *v, uint32_t ip, uint16_t port, char *buf, size_t cap)
{
  char a[INET6_ADDRSTRLEN];
  tv_addr_str(v, ip, a, sizeof a);
  if (ip >= 1 && ip <= v->na6) snprintf(buf, cap, "[%s]:%u", a, port);
  else snprintf(buf, cap, "%s:%u", a, port);
  return buf;
}

struct tv_entry *tv_add(struct tv *v, enum tv_kind kind, uint64_t t_us, int side)
{
  if (v->n == v->cap) {
    size_t ncap = v->cap ? v->cap * 2 : 256;
    struct tv_entry *ne = realloc(v->e, ncap * sizeof *ne);
    if (!ne) return NULL;
    v->e = ne;
    v->cap = ncap;
  }
  struct tv_entry *e = &v->e[v->n++];
  memset(e, 0, sizeof *e);
  e->kind = kind;
  e->t_us = t_us;
  e->side = side;
  e->conn = -1;
  return e;
}

static bool tuple_eq(const struct tv_tuple *a, const struct tv_tuple *b)
{
  return a->ip[0] == b->ip[0] && a->ip[1] == b->ip[1] && a->port[0] == b->port[0] &&
         a->port[1] == b->port[1];
}

/* The newest connection with this tuple, or -1. */
static int conn_latest(const struct tv *v, const struct tv_tuple *tu)
{
  for (size_t i = v->nc; i-- > 0;)
    if (tuple_eq(&v->c[i].tu, tu)) return (int)i;
  return -1;
}

static int conn_new(struct tv *v, const struct tv_tuple *tu)
{
  if (v->nc == v->ccap) {
    size_t ncap = v->ccap ? v->ccap * 2 : 16;
    struct tv_conn *nc = realloc(v->c, ncap * sizeof *nc);
    if (!nc) return -1;
    v->c = nc;
    v->ccap = ncap;
  }
  struct tv_conn *c = &v->c[v->nc];
  memset(c, 0, sizeof *c);
  c->tu = *tu;
  c->tu.set = true;
  c->first = v->n;
  c->flood = v->flood_mask && (tu->ip[0] & v->flood_mask) == v->flood_net;
  if (v->flood6_set && tu->ip[0] >= 1 && tu->ip[0] <= v->na6 && !memcmp(v->a6[tu->ip[0] - 1], v->flood6, 6))
    c->flood = true;
  c->num = c->flood ? ++v->nflood : ++v->nshown;
  return (int)v->nc++;
}

const char *tv_conn_name(const struct tv *v, int conn, char *buf, size_t cap)
{
  if (conn < 0 || (size_t)conn >= v->nc) snprintf(buf, cap, "%s", "");
  else snprintf(buf, cap, "%s%d", v->c[conn].flood ? "f" : "c", v->c[conn].num);
  return buf;
}

struct tv_entry *tv_add_seg(struct tv *v, uint64_t t_us, int side, const uint8_t *pkt, size_t len)
{
  struct tcp_packet p;
  if (len > 0 && (pkt[0] >> 4) == 6) {
    /* IPv6: the TCP segment after the extension chain, whatever its checksum
     * (a capture on the sending host sees it unfinished: offload), as for a
     * corrupted IPv4 packet below. */
    struct ipv6_pkt ip6;
    if (ipv6_decode(pkt, len, &ip6) != WIRE_OK || ip6.proto != IPPROTO_TCP_) return NULL;
    if (tcp_decode(pkt + ip6.upper_off, ip6.upper_len, &p.tcp, &p.payload, &p.payload_len) != WIRE_OK)
      return NULL;
    memset(&p.ip, 0, sizeof p.ip);
    p.ip.src = tv_addr6(v, ip6.h.src);
    p.ip.dst = tv_addr6(v, ip6.h.dst);
    if (!p.ip.src || !p.ip.dst) return NULL;
  } else if (tcp_packet_decode(pkt, len, &p) != WIRE_OK) {
    /* A corrupted packet still deserves a line: decode without checksums. */
    struct ipv4_hdr ip;
    const uint8_t *pl;
    size_t pll;
    if (ipv4_decode(pkt, len, &ip, &pl, &pll) != WIRE_OK || ip.proto != IPPROTO_TCP_) return NULL;
    if (tcp_decode(pl, pll, &p.tcp, &p.payload, &p.payload_len) != WIRE_OK) return NULL;
    p.ip = ip;
  }
  /* The connection: by 4-tuple, oriented by column. A bare SYN with a new ISN
   * from a side that already had one starts a new connection on the tuple. */
  struct tv_tuple tu = {{0, 0}, {0, 0}, true};
  tu.ip[side] = p.ip.src;
  tu.port[side] = p.tcp.src_port;
  tu.ip[1 - side] = p.ip.dst;
  tu.port[1 - side] = p.tcp.dst_port;
  int ci = conn_latest(v, &tu);
  bool bare_syn = (p.tcp.flags & (TCP_SYN | TCP_ACK)) == TCP_SYN;
  if (ci >= 0 && bare_syn && v->c[ci].isn_known[side] && v->c[ci].isn[side] != p.tcp.seq)
    ci = -1;
  if (ci < 0) ci = conn_new(v, &tu);
  if (ci < 0) return NULL;
  struct tv_entry *e = tv_add(v, TV_SEG, t_us, side);
  if (!e) return NULL;
  struct tv_conn *c = &v->c[ci];
  e->conn = ci;
  e->tu = tu;
  e->tcp = p.tcp;
  e->src_ip = p.ip.src;
  e->dst_ip = p.ip.dst;
  e->plen = (uint32_t)p.payload_len;
  /* One socket talking to itself (self-connect): both columns are the same
   * endpoint and share one ISN and one window scale. */
  bool self = tu.ip[0] == tu.ip[1] && tu.port[0] == tu.port[1];
  if (p.tcp.flags & TCP_SYN) {
    for (int k = 0; k < 2; k++) {
      if (k != side && !self) continue;
      c->isn[k] = p.tcp.seq;
      c->isn_known[k] = true;
      c->wscale_seen[k] = p.tcp.opts.present & TCP_OPT_HAS_WSCALE;
      c->wscale[k] = p.tcp.opts.wscale > 14 ? 14 : p.tcp.opts.wscale;
    }
  }
  for (int k = 0; k < 2; k++) {
    e->isn_rel[k] = c->isn[k];
    e->isn_rel_known[k] = c->isn_known[k];
  }
  return e;
}

static void vtext(char *buf, size_t cap, const char *fmt, va_list ap)
{
  vsnprintf(buf, cap, fmt, ap);
}

void tv_note(struct tv *v, uint64_t t_us, int side, const char *fmt, ...)
{
  struct tv_entry *e = tv_add(v, TV_NOTE, t_us, side);
  if (!e) return;
  va_list ap;
  va_start(ap, fmt);
  vtext(e->text, sizeof e->text, fmt, ap);
  va_end(ap);
}

void tv_note_claim(struct tv *v, uint64_t t_us, int side, const char *claim, const char *fmt, ...)
{
  struct tv_entry *e = tv_add(v, TV_NOTE, t_us, side);
  if (!e) return;
  va_list ap;
  va_start(ap, fmt);
  vtext(e->text, sizeof e->text, fmt, ap);
  va_end(ap);
  snprintf(e->claim, sizeof e->claim, "%s", claim);
}

void tv_call(struct tv *v, uint64_t t_us, int side, const char *fmt, ...)
{
  struct tv_entry *e = tv_add(v, TV_CALL, t_us, side);
  if (!e) return;
  va_list ap;
  va_start(ap, fmt);
  vtext(e->text, sizeof e->text, fmt, ap);
  va_end(ap);
}

/* ---- labels ---- */
enum lbl { L_H1, L_H2, L_H3, L_W1, L_W2, L_W3, L_W4, L_W23, L_DATA, L_RST, L_RETRANS,
           L_AGAIN, L_LOST, L_SIMOPEN, L_PROBE, L_DUPACK };
static const char *lbl(const struct tv *v, enum lbl l)
{
  static const char *const en[] = {
    "first handshake", "second handshake", "third handshake", "first wave",
    "second wave", "third wave", "fourth wave", "second+third wave (FIN with the ACK)",
    "data", "reset", "retransmission", "again", "LOST", "simultaneous open",
    "window probe", "duplicate ACK"};
  static const char *const zh[] = {
    "第一次握手", "第二次握手", "第三次握手", "第一次挥手", "第二次挥手", "第三次挥手",
    "第四次挥手", "第二、三次挥手合并(FIN+ACK)", "数据", "复位", "重传", "再次", "丢失",
    "同时打开", "窗口探测", "重复确认"};
  return v->zh ? zh[l] : en[l];
}

static void add_label(char *buf, size_t cap, const char *s)
{
  size_t n = strlen(buf);
  if (n && n + 2 < cap) { strcat(buf, ", "); n += 2; }
  if (n < cap) snprintf(buf + n, cap - n, "%s", s);
}

/* What the labeller knows of one connection. */
struct lab {
  bool syn_seen[2], synack_seen[2], third_done;
  bool synack_again;         /* a SYN-ACK came again after the third handshake */
  bool simack[2];            /* simultaneous open: this column ACKed the other's SYN-ACK */
  int first_syn_side;
  int fin_count, fin_order[2];
  uint32_t fin_seq[2];
  bool fin_acked[2];
  uint32_t max_end[2];       /* highest sequence end each column has sent */
  bool have_end[2];
  uint32_t last_ack[2];
  bool have_ack[2];
};

/* Calls and state changes carry a tuple: the connection is the one of the
 * nearest segment with that tuple, before it (or, for an opening call/state,
 * after it: connect() comes before its SYN). */
static void resolve_conns(struct tv *v)
{
  for (size_t i = 0; i < v->n; i++) {
    struct tv_entry *e = &v->e[i];
    if (e->kind == TV_SEG || !e->tu.set) continue;
    int before = -1, after = -1;
    for (size_t j = i; j-- > 0;)
      if (v->e[j].kind == TV_SEG && tuple_eq(&v->e[j].tu, &e->tu)) { before = v->e[j].conn; break; }
    for (size_t j = i + 1; j < v->n; j++)
      if (v->e[j].kind == TV_SEG && tuple_eq(&v->e[j].tu, &e->tu)) { after = v->e[j].conn; break; }
    e->conn = e->opens ? (after >= 0 ? after : before) : (before >= 0 ? before : after);
  }
}

void tv_label(struct tv *v)
{
  resolve_conns(v);
  struct lab *labs = calloc(v->nc ? v->nc : 1, sizeof *labs);
  if (!labs) return;
  for (size_t k = 0; k < v->nc; k++) labs[k].first_syn_side = -1;
  for (size_t i = 0; i < v->n; i++) {
    struct tv_entry *e = &v->e[i];
    if (e->kind != TV_SEG || e->conn < 0) continue;
    struct lab *b = &labs[e->conn];
    /* a flood: the segments of its first few connections are drawn, the rest counted */
    if (v->c[e->conn].flood && !v->verbose) e->hidden = v->c[e->conn].num > TV_FLOOD_SHOWN;
    int s = e->side, o = 1 - s;
    const struct tcp_hdr *h = &e->tcp;
    char *L = e->label;
    L[0] = 0;
    bool syn = h->flags & TCP_SYN, ack = h->flags & TCP_ACK, fin = h->flags & TCP_FIN;
    uint32_t end = h->seq + e->plen + syn + fin;
    /* A retransmission (as tshark calls one): a segment occupying sequence space
     * that its sender had already sent on this connection. A SYN-ACK after our
     * own bare SYN (simultaneous open) re-sends the SYN's sequence number but is
     * the second handshake, not a resend: tshark calls it one (whitelisted in
     * tests/sh/demo_tshark.sh). */
    bool retrans = b->have_end[s] && (e->plen || syn || fin) && seq_leq(end, b->max_end[s]) &&
                   !(syn && ack && !b->synack_seen[s]);
    if (h->flags & TCP_RST) {
      add_label(L, sizeof e->label, lbl(v, L_RST));
    } else if (syn && !ack) {
      if (b->first_syn_side < 0) b->first_syn_side = s;
      add_label(L, sizeof e->label, lbl(v, L_H1));
      if (b->syn_seen[o] && !b->syn_seen[s]) add_label(L, sizeof e->label, lbl(v, L_SIMOPEN));
      b->syn_seen[s] = true;
    } else if (syn && ack) {
      add_label(L, sizeof e->label, lbl(v, L_H2));
      b->synack_seen[s] = true;
      if (b->third_done) b->synack_again = true;
    } else {
      bool simultaneous = b->syn_seen[0] && b->syn_seen[1];
      if (ack && !b->third_done && !simultaneous && s == b->first_syn_side && b->synack_seen[o] &&
          e->isn_rel_known[o] && h->ack == e->isn_rel[o] + 1) {
        add_label(L, sizeof e->label, lbl(v, L_H3));
        b->third_done = true;
      } else if (ack && simultaneous && !b->simack[s] && b->synack_seen[o] && !e->plen && !fin &&
                 e->isn_rel_known[o] && h->ack == e->isn_rel[o] + 1) {
        /* simultaneous open (RFC 9293 figure 8): each end ACKs the other's
         * SYN-ACK, a third handshake in each direction */
        add_label(L, sizeof e->label, lbl(v, L_H3));
        add_label(L, sizeof e->label, lbl(v, L_SIMOPEN));
        b->simack[s] = true;
      } else if (ack && b->third_done && b->synack_again && s == b->first_syn_side && !e->plen &&
                 !fin && e->isn_rel_known[o] && h->ack == e->isn_rel[o] + 1) {
        /* the answer to a resent SYN-ACK: the third handshake once more (the
         * server dropped the first one, e.g. with its accept queue full) */
        add_label(L, sizeof e->label, lbl(v, L_H3));
        add_label(L, sizeof e->label, lbl(v, L_AGAIN));
        b->synack_again = false;
      }
      bool acks_other_fin = ack && b->fin_order[o] && h->ack == b->fin_seq[o] + 1;
      if (fin) {
        uint32_t fseq = h->seq + e->plen;
        if (!b->fin_order[s]) {
          b->fin_order[s] = ++b->fin_count;
          b->fin_seq[s] = fseq;
          if (b->fin_order[s] == 2 && acks_other_fin && !b->fin_acked[o]) {
            add_label(L, sizeof e->label, lbl(v, L_W23));
            b->fin_acked[o] = true;
          } else {
            add_label(L, sizeof e->label, lbl(v, b->fin_order[s] == 1 ? L_W1 : L_W3));
          }
        } else {
          add_label(L, sizeof e->label, lbl(v, b->fin_order[s] == 1 ? L_W1 : L_W3));
        }
      } else if (acks_other_fin) {
        add_label(L, sizeof e->label, lbl(v, b->fin_order[o] == 1 ? L_W2 : L_W4));
        if (b->fin_acked[o] && e->plen == 0) add_label(L, sizeof e->label, lbl(v, L_AGAIN));
        b->fin_acked[o] = true;
      }
      if (e->plen) add_label(L, sizeof e->label, lbl(v, L_DATA));
      else if (!fin && ack && b->have_end[s] && h->seq + 1 == b->max_end[s] && !L[0] &&
               !b->fin_order[s])
        add_label(L, sizeof e->label, lbl(v, L_PROBE));
      else if (!fin && ack && !L[0] && !e->plen && b->have_ack[s] && b->last_ack[s] == h->ack)
        add_label(L, sizeof e->label, lbl(v, L_DUPACK));
    }
    if (retrans) add_label(L, sizeof e->label, lbl(v, L_RETRANS));
    if (e->lost) add_label(L, sizeof e->label, lbl(v, L_LOST));
    if (!b->have_end[s] || seq_gt(end, b->max_end[s])) { b->max_end[s] = end; b->have_end[s] = true; }
    if (ack) { b->last_ack[s] = h->ack; b->have_ack[s] = true; }
  }
  free(labs);
}

/* ---- text ---- */
static size_t u8_width(const char *s)
{
  size_t w = 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c & 0xc0) == 0x80) continue;
    /* CJK ideographs and full-width punctuation take two columns. */
    if (c >= 0xe3 && c <= 0xef) w += 2;
    else w += 1;
  }
  return w;
}

static void pad_to(FILE *out, const char *s, size_t width)
{
  fputs(s, out);
  for (size_t w = u8_width(s); w < width; w++) fputc(' ', out);
}

static const char *flag_words(uint8_t f, char *buf, size_t cap)
{
  static const struct { uint8_t bit; const char *name; } names[] = {
    {TCP_SYN, "SYN"}, {TCP_FIN, "FIN"}, {TCP_RST, "RST"}, {TCP_PSH, "PSH"},
    {TCP_URG, "URG"}, {TCP_ECE, "ECE"}, {TCP_CWR, "CWR"}, {TCP_ACK, "ACK"}};
  buf[0] = 0;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (f & names[i].bit) {
      if (buf[0]) strncat(buf, ",", cap - strlen(buf) - 1);
      strncat(buf, names[i].name, cap - strlen(buf) - 1);
    }
  return buf;
}

/* The window in bytes: scaled by the sender's shift when both SYNs carried the
 * window scale option (RFC 7323 §2.2; never on a SYN), as tshark's
 * "calculated window size". */
uint32_t tv_seg_window(const struct tv *v, const struct tv_entry *e)
{
  uint32_t w = e->tcp.window;
  if (e->conn < 0 || (size_t)e->conn >= v->nc || (e->tcp.flags & TCP_SYN)) return w;
  const struct tv_conn *c = &v->c[e->conn];
  if (!c->wscale_seen[0] || !c->wscale_seen[1]) return w;
  return w << c->wscale[e->side];
}

void tv_seg_text(const struct tv *v, const struct tv_entry *e, char *buf, size_t cap)
{
  const struct tcp_hdr *h = &e->tcp;
  int s = e->side, o = 1 - s;
  char fl[48];
  flag_words(h->flags, fl, sizeof fl);
  uint32_t seq = e->isn_rel_known[s] ? h->seq - e->isn_rel[s] : h->seq;
  size_t n = (size_t)snprintf(buf, cap, "%s seq=%u", fl, seq);
  if ((h->flags & TCP_ACK) && n < cap)
    n += (size_t)snprintf(buf + n, cap - n, " ack=%u",
                          e->isn_rel_known[o] ? h->ack - e->isn_rel[o] : h->ack);
  if (n < cap) n += (size_t)snprintf(buf + n, cap - n, " win=%u", tv_seg_window(v, e));
  if (n < cap) n += (size_t)snprintf(buf + n, cap - n, " len=%u", e->plen);
  const struct tcp_opts *op = &h->opts;
  if (op->present && n < cap) {
    n += (size_t)snprintf(buf + n, cap - n, " <");
    bool first = true;
#define SEP() do { if (!first && n < cap) n += (size_t)snprintf(buf + n, cap - n, ","); first = false; } while (0)
    if (op->present & TCP_OPT_HAS_MSS) { SEP(); if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "mss %u", op->mss); }
    if (op->present & TCP_OPT_HAS_WSCALE) { SEP(); if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "wscale %u", op->wscale); }
    if (op->present & TCP_OPT_HAS_SACK_PERM) { SEP(); if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "sackOK"); }
    if (op->present & TCP_OPT_HAS_TS) { SEP(); if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "TS"); }
    if (op->present & TCP_OPT_HAS_SACK) {
      /* blocks name the other side's bytes: relative to its ISN, like ack */
      SEP();
      if (n < cap) n += (size_t)snprintf(buf + n, cap - n, "sack");
      for (unsigned k = 0; k < op->sack_count && k < TCP_MAX_SACK_BLOCKS; k++) {
        uint32_t base = e->isn_rel_known[o] ? e->isn_rel[o] : 0;
        if (n < cap) n += (size_t)snprintf(buf + n, cap - n, " %u:%u", op->sack[k].left - base,
                                           op->sack[k].right - base);
      }
    }
#undef SEP
    if (n < cap) snprintf(buf + n, cap - n, ">");
  }
}

#define COL_STATE 13
#define COL_MID 64

static const char *C(const struct tv *v, const char *code) { return v->color ? code : ""; }
#define RESET "\033[0m"
#define BOLD "\033[1m"
#define CYAN "\033[36m"
#define YELLOW "\033[33m"
#define RED "\033[31m"
#define DIM "\033[2m"
#define GREEN "\033[32m"

static void state_cell(const struct tv *v, FILE *out, const struct tv_entry *e, int side,
                       enum ustcp_state *shown)
{
  char cell[32] = "";
  if (e->st_known[side]) {
    bool changed = e->st[side] != shown[side];
    snprintf(cell, sizeof cell, "%s", ustcp_state_name(e->st[side]));
    if (changed) fputs(C(v, BOLD GREEN), out);
    else fputs(C(v, DIM), out);
    pad_to(out, cell, COL_STATE);
    fputs(C(v, RESET), out);
    shown[side] = e->st[side];
    return;
  }
  pad_to(out, "", COL_STATE);
}

/* Each connection's states as last drawn ([0] for entries of no connection). */
static enum ustcp_state *shown_for(enum ustcp_state *shown, const struct tv_entry *e)
{
  return shown + 2 * (size_t)(e->conn + 1);
}

static bool conn_column(const struct tv *v) { return v->nshown > 1 || v->nflood > 0; }

/* "  c1  10.0.0.1:45850 <-> 10.0.0.2:80" for each connection drawn. */
static void conn_list(const struct tv *v, FILE *out)
{
  if (!conn_column(v)) return;
  int first_flood = 0, last_flood = 0;
  for (size_t k = 0; k < v->nc; k++) {
    const struct tv_conn *c = &v->c[k];
    if (c->flood) {
      if (!first_flood) first_flood = c->num;
      last_flood = c->num;
      continue;
    }
    char a[64], b[64];
    fprintf(out, "  c%-3d %s <-> %s\n", c->num, tv_endpoint_str(v, c->tu.ip[0], c->tu.port[0], a, sizeof a),
            tv_endpoint_str(v, c->tu.ip[1], c->tu.port[1], b, sizeof b));
  }
  if (first_flood)
    fprintf(out, v->zh ? "  f%d-f%d %d 个来自伪造源地址的连接 (洪泛)\n"
                       : "  f%d-f%d %d connections from spoofed source addresses (the flood)\n",
            first_flood, last_flood, last_flood - first_flood + 1);
  fputc('\n', out);
}

/* What a run of undrawn flood segments held. */
struct hid { unsigned n, syn, synack, retrans, lost; uint64_t t_us; };

static void hid_add(struct hid *h, const struct tv_entry *e)
{
  h->n++;
  h->t_us = e->t_us;   /* the line follows the run: its last time */
  if ((e->tcp.flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) h->syn++;
  if ((e->tcp.flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) h->synack++;
  if (strstr(e->label, "retransmission") || strstr(e->label, "重传")) h->retrans++;
  if (e->lost) h->lost++;
}

static void hid_text(const struct tv *v, const struct hid *h, char *buf, size_t cap)
{
  size_t n = (size_t)snprintf(buf, cap, v->zh ? "... 另有 %u 个洪泛报文段未画出:" : "... %u more flood segments not drawn:", h->n);
  if (h->syn && n < cap) n += (size_t)snprintf(buf + n, cap - n, " %u SYN", h->syn);
  if (h->synack && n < cap)
    n += (size_t)snprintf(buf + n, cap - n, "%s %u SYN-ACK", h->syn ? "," : "", h->synack);
  if (h->retrans && n < cap)
    n += (size_t)snprintf(buf + n, cap - n, v->zh ? " (%u 个是重传)" : " (%u retransmitted)", h->retrans);
  if (h->lost && n < cap) n += (size_t)snprintf(buf + n, cap - n, v->zh ? ", %u 个丢失" : ", %u lost", h->lost);
  if (n < cap) snprintf(buf + n, cap - n, v->zh ? " (--verbose 全部画出)" : " (--verbose draws them)");
}

static void flood_summary(const struct tv *v, FILE *out, const struct hid *h)
{
  char txt[200];
  hid_text(v, h, txt, sizeof txt);
  fprintf(out, "%10.3f ", (double)h->t_us / 1e6);
  if (conn_column(v)) fprintf(out, "%-5s", "f..");
  fprintf(out, "%s# %s%s\n", C(v, DIM), txt, C(v, RESET));
}

static void arrow(const struct tv *v, FILE *out, const struct tv_entry *e)
{
  char txt[200];
  tv_seg_text(v, e, txt, sizeof txt);
  size_t w = u8_width(txt) + 2;   /* spaces around */
  size_t line = w + 4 < COL_MID ? COL_MID - w - 4 : 2;
  size_t left = line / 2, right = line - left;
  fputs(C(v, e->lost ? RED : (e->side == 0 ? CYAN : YELLOW)), out);
  if (e->side == 0) {
    fputs("─", out);
    for (size_t i = 0; i < left; i++) fputs("─", out);
    fprintf(out, " %s ", txt);
    for (size_t i = 0; i < right; i++) fputs("─", out);
    fputs(e->lost ? "✗ " : "─▶", out);
  } else {
    fputs(e->lost ? " ✗" : "◀─", out);
    for (size_t i = 0; i < left; i++) fputs("─", out);
    fprintf(out, " %s ", txt);
    for (size_t i = 0; i < right; i++) fputs("─", out);
    fputs("─", out);
  }
  fputs(C(v, RESET), out);
}

void tv_render_text(const struct tv *v, FILE *out)
{
  enum ustcp_state *shown = malloc((v->nc + 1) * 2 * sizeof *shown);
  if (!shown) return;
  for (size_t k = 0; k < (v->nc + 1) * 2; k++) shown[k] = (enum ustcp_state)-1;
  bool tags = conn_column(v);
  conn_list(v, out);
  fprintf(out, "%s", C(v, BOLD));
  pad_to(out, v->zh ? "  时间(s)" : "  time(s)", tags ? 16 : 11);
  pad_to(out, v->name[0], COL_STATE + COL_MID / 2 - 4);
  fprintf(out, "%*s%s\n", (int)(COL_MID / 2 + 4 - (int)u8_width(v->name[1]) + (int)u8_width(v->name[1])), v->name[1], C(v, RESET));
  struct hid hidden = {0};
  for (size_t i = 0; i < v->n; i++) {
    const struct tv_entry *e = &v->e[i];
    if (e->hidden) {
      hid_add(&hidden, e);
      continue;
    }
    /* the drawn flood connections' segments do not end a run */
    if (hidden.n && !(e->conn >= 0 && v->c[e->conn].flood)) {
      flood_summary(v, out, &hidden);
      memset(&hidden, 0, sizeof hidden);
    }
    enum ustcp_state *sh = shown_for(shown, e);
    char ts[32];
    snprintf(ts, sizeof ts, "%10.3f ", (double)e->t_us / 1e6);
    fputs(ts, out);
    if (tags) {
      char nm[16];
      fprintf(out, "%-5s", tv_conn_name(v, e->conn, nm, sizeof nm));
    }
    switch (e->kind) {
    case TV_SEG:
      state_cell(v, out, e, 0, sh);
      arrow(v, out, e);
      fputc(' ', out);
      state_cell(v, out, e, 1, sh);
      if (e->label[0]) fprintf(out, " %s%s%s", C(v, BOLD), e->label, C(v, RESET));
      fputc('\n', out);
      break;
    case TV_STATE: {
      char cell[64];
      snprintf(cell, sizeof cell, "%s", ustcp_state_name(e->new_state));
      if (e->side == 0) {
        fputs(C(v, BOLD GREEN), out);
        pad_to(out, cell, COL_STATE);
        fputs(C(v, RESET), out);
        fputc('\n', out);
      } else {
        pad_to(out, "", COL_STATE + COL_MID + 1);
        fprintf(out, "%s%s%s\n", C(v, BOLD GREEN), cell, C(v, RESET));
      }
      sh[e->side] = e->new_state;
      break;
    }
    case TV_CALL:
      if (e->side == 0) {
        fprintf(out, "%s%s%s\n", C(v, CYAN), e->text, C(v, RESET));
      } else {
        size_t w = u8_width(e->text);
        size_t col = COL_STATE + COL_MID + 1 + COL_STATE;
        for (size_t k = w < col ? col - w : 0; k > 0; k--) fputc(' ', out);
        fprintf(out, "%s%s%s\n", C(v, YELLOW), e->text, C(v, RESET));
      }
      break;
    case TV_NOTE:
      fprintf(out, "%s# %s%s\n", C(v, DIM), e->text, C(v, RESET));
      break;
    }
  }
  if (hidden.n) flood_summary(v, out, &hidden);
  free(shown);
}

static void json_str(FILE *out, const char *s)
{
  fputc('"', out);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
    else if (c < 0x20) fprintf(out, "\\u%04x", c);
    else fputc(c, out);
  }
  fputc('"', out);
}

void tv_render_json(const struct tv *v, FILE *out)
{
  static const char *const kinds[] = {"segment", "call", "state", "note"};
  fprintf(out, "{");
  if (v->title) {
    fprintf(out, "\"scenario\":");
    json_str(out, v->title);
    fprintf(out, ",\"about\":");
    json_str(out, v->about ? v->about : "");
    fprintf(out, ",\"claim\":");
    json_str(out, v->title_claim ? v->title_claim : "");
    fprintf(out, ",");
  }
  fprintf(out, "\"columns\":[");
  json_str(out, v->name[0]);
  fputc(',', out);
  json_str(out, v->name[1]);
  fprintf(out, "],\"connections\":[");
  for (size_t k = 0; k < v->nc; k++) {
    char nm[16], a[64], b[64];
    const struct tv_conn *c = &v->c[k];
    fprintf(out, "%s{\"name\":\"%s\",\"client\":\"%s\",\"server\":\"%s\",\"flood\":%s}",
            k ? "," : "", tv_conn_name(v, (int)k, nm, sizeof nm),
            tv_endpoint_str(v, c->tu.ip[0], c->tu.port[0], a, sizeof a),
            tv_endpoint_str(v, c->tu.ip[1], c->tu.port[1], b, sizeof b), c->flood ? "true" : "false");
  }
  fprintf(out, "],\"events\":[\n");
  for (size_t i = 0; i < v->n; i++) {
    const struct tv_entry *e = &v->e[i];
    fprintf(out, "{\"t_us\":%llu,\"kind\":\"%s\",\"side\":%d", (unsigned long long)e->t_us,
            kinds[e->kind], e->side);
    if (e->conn >= 0) {
      char nm[16];
      fprintf(out, ",\"conn\":\"%s\"", tv_conn_name(v, e->conn, nm, sizeof nm));
    }
    if (e->kind == TV_SEG) {
      char fl[16], txt[200];
      tcp_flags_str(e->tcp.flags, fl, sizeof fl);
      tv_seg_text(v, e, txt, sizeof txt);
      int s = e->side, o = 1 - s;
      fprintf(out, ",\"flags\":\"%s\",\"seq\":%u,\"ack\":%u,\"win\":%u,\"len\":%u,\"lost\":%s",
              fl, e->isn_rel_known[s] ? e->tcp.seq - e->isn_rel[s] : e->tcp.seq,
              (e->tcp.flags & TCP_ACK) && e->isn_rel_known[o] ? e->tcp.ack - e->isn_rel[o] : e->tcp.ack,
              tv_seg_window(v, e), e->plen, e->lost ? "true" : "false");
      if (e->hidden) fprintf(out, ",\"hidden\":true");
      if (e->arrive_us) fprintf(out, ",\"arrive_us\":%llu", (unsigned long long)e->arrive_us);
      fprintf(out, ",\"text\":");
      json_str(out, txt);
      if (e->drop[0]) {
        fprintf(out, ",\"drop\":");
        json_str(out, e->drop);
      }
      fprintf(out, ",\"label\":");
      json_str(out, e->label);
      for (int k = 0; k < 2; k++)
        if (e->st_known[k]) fprintf(out, ",\"state%d\":\"%s\"", k, ustcp_state_name(e->st[k]));
    } else if (e->kind == TV_STATE) {
      fprintf(out, ",\"from\":\"%s\",\"to\":\"%s\"", ustcp_state_name(e->old_state),
              ustcp_state_name(e->new_state));
    } else {
      fprintf(out, ",\"text\":");
      json_str(out, e->text);
      if (e->claim[0]) {
        fprintf(out, ",\"claim\":");
        json_str(out, e->claim);
      }
    }
    fprintf(out, "}%s\n", i + 1 < v->n ? "," : "");
  }
  fprintf(out, "]}\n");
}

static void xml_text(FILE *out, const char *s)
{
  for (; *s; s++) {
    switch (*s) {
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '&': fputs("&amp;", out); break;
    case '"': fputs("&quot;", out); break;
    default: fputc(*s, out);
    }
  }
}

/* ---- SVG ----
 * Two lifelines; one row per entry. Nothing overlaps (tests/sh/demo_svg.sh
 * checks the boxes): a segment is a shallow arrow from its sender's lifeline
 * (y) to the receiver's (y + SLANT) with its text above it, wholly inside its
 * row; a lost one stops halfway with a cross; each end's state, when it
 * changed, is a box beside the lifeline at the arrow's end; the seeds' name for
 * the segment is right of the server's state boxes; calls are beside their
 * lifeline and notes on rows of their own. Column positions follow the widest
 * texts, estimated as monospace: 0.6 em a character, 1 em for CJK (wide). */
#define SVG_FS 12                 /* font size of every text but the titles */
#define SVG_ROW 34
#define SVG_SLANT 8
#define SVG_BOX_W 96
/* Latin monospace first (its digits keep the numbers aligned), then fonts with
 * Chinese glyphs, so --lang zh never falls back to boxes where one is
 * installed (Debian: fonts-noto-cjk), then the generic family. */
#define SVG_FONTS "'DejaVu Sans Mono', 'Noto Sans Mono CJK SC', 'Noto Sans CJK SC', " \
                  "'Source Han Sans SC', 'WenQuanYi Zen Hei', 'WenQuanYi Micro Hei', " \
                  "'Microsoft YaHei', 'PingFang SC', 'Hiragino Sans GB', monospace"

static int text_w(const char *s, int fs)
{
  int w10 = 0;   /* tenths of the font size */
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c & 0xc0) == 0x80) continue;
    w10 += (c >= 0xe3 && c <= 0xef) ? 10 : 6;
  }
  return (w10 * fs + 9) / 10;
}

static void svg_text(FILE *out, int x, int y, const char *anchor, const char *fill,
                     const char *extra, const char *s)
{
  fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\" fill=\"%s\"%s>", x, y, anchor, fill, extra);
  xml_text(out, s);
  fprintf(out, "</text>\n");
}

static void svg_state(FILE *out, int x_lifeline, int side, int ymid, enum ustcp_state st)
{
  int x = side ? x_lifeline + 6 : x_lifeline - 6 - SVG_BOX_W;
  fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"16\" rx=\"3\" fill=\"#e8f5e9\" stroke=\"#2e7d32\"/>"
               "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%s</text>\n",
          x, ymid - 8, SVG_BOX_W, x + SVG_BOX_W / 2, ymid + 4, ustcp_state_name(st));
}

void tv_render_svg(const struct tv *v, FILE *out)
{
  /* widths: left calls, segment texts, labels and right calls, notes */
  int w_lcall = 0, w_seg = 0, w_label = 0, w_rcall = 0, w_note = 0;
  int rows = 0;
  char txt[240];
  for (size_t i = 0; i < v->n; i++) {
    const struct tv_entry *e = &v->e[i];
    if (e->hidden) continue;
    rows += 1 + (i > 0 && v->e[i - 1].hidden);
    int w;
    switch (e->kind) {
    case TV_SEG:
      tv_seg_text(v, e, txt, sizeof txt);
      if ((w = text_w(txt, SVG_FS)) > w_seg) w_seg = w;
      if ((w = text_w(e->label, SVG_FS)) > w_label) w_label = w;
      break;
    case TV_CALL:
      w = text_w(e->text, SVG_FS);
      if (e->side == 0 && w > w_lcall) w_lcall = w;
      if (e->side == 1 && w > w_rcall) w_rcall = w;
      break;
    case TV_NOTE:
      if ((w = text_w(e->text, SVG_FS) + 2 * SVG_FS) > w_note) w_note = w;
      break;
    default: break;
    }
  }
  rows += 1;   /* a last flood summary */
  int nlist = 0;
  if (conn_column(v))
    for (size_t k = 0; k < v->nc; k++) nlist += !v->c[k].flood;
  if (v->nflood) nlist++;
  const int x_time = 10, x_tag = 82, x_body = 120;
  int xl = x_body + w_lcall + 10;
  if (xl < x_body + SVG_BOX_W + 20) xl = x_body + SVG_BOX_W + 20;
  int gap = w_seg + 40 > 420 ? w_seg + 40 : 420;
  int xr = xl + gap;
  int x_label = xr + 6 + SVG_BOX_W + 14;
  int width = x_label + (w_label > w_rcall ? w_label : w_rcall) + 20;
  if (width < x_body + w_note + 20) width = x_body + w_note + 20;
  const int title_y = 30 + nlist * 18;
  const int top = title_y + 50;
  int height = top + (rows + 1) * SVG_ROW;
  fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"%s\" font-size=\"%d\">\n", width, height, SVG_FONTS, SVG_FS);
  fprintf(out, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
  fprintf(out, "<defs><marker id=\"arr\" markerWidth=\"10\" markerHeight=\"8\" refX=\"9\" refY=\"4\" "
               "orient=\"auto\"><path d=\"M0,0 L10,4 L0,8 z\" fill=\"#333\"/></marker></defs>\n");
  /* the connections, as in the text header */
  int ly = 24;
  int first_flood = 0, last_flood = 0;
  for (size_t k = 0; k < v->nc && conn_column(v); k++) {
    const struct tv_conn *c = &v->c[k];
    if (c->flood) { if (!first_flood) first_flood = c->num; last_flood = c->num; continue; }
    char a[64], b[64];
    snprintf(txt, sizeof txt, "c%d  %s <-> %s", c->num, tv_endpoint_str(v, c->tu.ip[0], c->tu.port[0], a, sizeof a),
             tv_endpoint_str(v, c->tu.ip[1], c->tu.port[1], b, sizeof b));
    svg_text(out, x_time, ly, "start", "#333", "", txt);
    ly += 18;
  }
  if (first_flood) {
    snprintf(txt, sizeof txt, v->zh ? "f%d-f%d  %d 个来自伪造源地址的连接 (洪泛)" : "f%d-f%d  %d connections from spoofed source addresses (the flood)",
             first_flood, last_flood, last_flood - first_flood + 1);
    svg_text(out, x_time, ly, "start", "#333", "", txt);
  }
  for (int k = 0; k < 2; k++) {
    int x = k ? xr : xl;
    svg_text(out, x, title_y, "middle", "#000", " font-size=\"15\" font-weight=\"bold\"", v->name[k]);
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\" stroke-dasharray=\"4 3\"/>\n",
            x, title_y + 12, x, height - 10);
  }
  enum ustcp_state *shown_all = malloc((v->nc + 1) * 2 * sizeof *shown_all);
  if (!shown_all) return;
  for (size_t k = 0; k < (v->nc + 1) * 2; k++) shown_all[k] = (enum ustcp_state)-1;
  int r = 0;
  struct hid hidden = {0};
  for (size_t i = 0; i <= v->n; i++) {
    const struct tv_entry *e = i < v->n ? &v->e[i] : NULL;
    if (e && e->hidden) { hid_add(&hidden, e); continue; }
    if (hidden.n && (!e || !(e->conn >= 0 && v->c[e->conn].flood))) {
      hid_text(v, &hidden, txt, sizeof txt);
      svg_text(out, x_body, top + r++ * SVG_ROW + 4, "start", "#666", "", txt);
      memset(&hidden, 0, sizeof hidden);
    }
    if (!e) break;
    enum ustcp_state *shown = shown_for(shown_all, e);
    int y = top + r++ * SVG_ROW;
    char t[32], nm[16];
    snprintf(t, sizeof t, "%.3f s", (double)e->t_us / 1e6);
    svg_text(out, x_time, y + 4, "start", "#555", "", t);
    if (conn_column(v) && e->conn >= 0)
      svg_text(out, x_tag, y + 4, "start", "#555", "", tv_conn_name(v, e->conn, nm, sizeof nm));
    if (e->kind == TV_SEG) {
      int x1 = e->side ? xr : xl, x2 = e->side ? xl : xr;
      int y2 = y + SVG_SLANT;
      const char *col = e->lost ? "#c00" : (e->side ? "#b07000" : "#0060b0");
      if (e->lost) {
        int xm = (x1 + x2) / 2, ym = (y + y2) / 2;
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"1.5\"/>\n",
                x1, y, xm, ym, col);
        fprintf(out, "<path d=\"M%d,%d L%d,%d M%d,%d L%d,%d\" stroke=\"#c00\" stroke-width=\"2.5\"/>\n",
                xm - 5, ym - 5, xm + 5, ym + 5, xm - 5, ym + 5, xm + 5, ym - 5);
      } else {
        fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"1.5\" "
                     "marker-end=\"url(#arr)\"/>\n", x1, y, x2, y2, col);
      }
      tv_seg_text(v, e, txt, sizeof txt);
      svg_text(out, (xl + xr) / 2, y - 7, "middle", col, "", txt);
      if (e->label[0]) svg_text(out, x_label, y + 8, "start", "#000", " font-weight=\"bold\"", e->label);
      for (int k = 0; k < 2; k++) {
        if (!e->st_known[k] || e->st[k] == shown[k]) continue;
        shown[k] = e->st[k];
        svg_state(out, k ? xr : xl, k, k == e->side ? y : y2, e->st[k]);
      }
    } else if (e->kind == TV_STATE) {
      shown[e->side] = e->new_state;
      svg_state(out, e->side ? xr : xl, e->side, y, e->new_state);
    } else if (e->kind == TV_CALL) {
      svg_text(out, e->side ? xr + 10 : xl - 10, y + 4, e->side ? "start" : "end", "#000", "", e->text);
    } else {
      svg_text(out, x_body + SVG_FS, y + 4, "start", "#666", "", e->text);
    }
  }
  free(shown_all);
  fprintf(out, "</svg>\n");
}

/* ---- time-sequence graph ----
 * The main data sender's segments over time, as Wireshark's tcptrace graph:
 * a bar from seq to seq+len at each send time (red: retransmission, a cross:
 * lost), the receiver's ACKs as a line (green) and ACK + window as a
 * dashed one, clipped to the data's scale. Relative numbers, as in the text. */
int tv_render_tsg(const struct tv *v, FILE *out)
{
  uint64_t bytes[2] = {0, 0};
  int conn = -1;
  for (size_t i = 0; i < v->n; i++) {
    const struct tv_entry *e = &v->e[i];
    if (e->kind == TV_SEG && e->conn >= 0 && !v->c[e->conn].flood) bytes[e->side] += e->plen;
  }
  int s = bytes[1] > bytes[0] ? 1 : 0;
  for (size_t i = 0; i < v->n && conn < 0; i++)
    if (v->e[i].kind == TV_SEG && v->e[i].side == s && v->e[i].plen && v->e[i].conn >= 0 &&
        !v->c[v->e[i].conn].flood)
      conn = v->e[i].conn;
  if (conn < 0) return -1;
  uint64_t t0 = UINT64_MAX, t1 = 0;
  uint32_t smin = UINT32_MAX, dmax = 0;
  for (size_t i = 0; i < v->n; i++) {
    const struct tv_entry *e = &v->e[i];
    if (e->kind != TV_SEG || e->conn != conn) continue;
    uint32_t rs = e->tcp.seq - e->isn_rel[s], ra = e->tcp.ack - e->isn_rel[s];
    if (e->side == s && e->plen) {
      if (e->t_us < t0) t0 = e->t_us;
      if (e->t_us > t1) t1 = e->t_us;
      if (rs < smin) smin = rs;
      if (rs + e->plen > dmax) dmax = rs + e->plen;
    } else if (e->side != s && (e->tcp.flags & TCP_ACK) && !e->lost) {
      uint64_t ta = e->arrive_us ? e->arrive_us : e->t_us;
      if (ta > t1) t1 = ta;
      if (ra > dmax && ra < dmax + (1u << 30)) dmax = ra;
    }
  }
  uint32_t smax = dmax + (dmax - smin) / 4 + 1;
  char nm[16], title[240];
  snprintf(title, sizeof title, v->zh ? "时间-序号图 %s (%s): 蓝 = 数据, 红 = 重传, × = 丢失, 绿 = ACK, 虚线 = ACK + 窗口"
                                      : "time-sequence graph %s (%s): blue = data, red = retransmission, x = lost, green = ACK, dashed = ACK + window",
           tv_conn_name(v, conn, nm, sizeof nm), v->name[s]);
  const int L = 80, H = 420, B = 40, T = 40;
  int W = L + text_w(title, SVG_FS) + 40;
  if (W < 900) W = 900;
  double xs = (double)(W - L - 20) / (double)(t1 > t0 ? t1 - t0 : 1);
  double ys = (double)(H - B - T) / (double)(smax - smin);
#define TX(us) (L + xs * (double)((us) - t0))
#define TY(sq) (H - B - ys * (double)((sq) - smin))
  fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"%s\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, SVG_FONTS);
  fprintf(out, "<text x=\"%d\" y=\"20\" font-weight=\"bold\">", L);
  xml_text(out, title);
  fprintf(out, "</text>\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>"
               "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n",
          L, H - B, W - 20, H - B, L, T, L, H - B);
  fprintf(out, "<text x=\"%d\" y=\"%d\" fill=\"#555\">%.3f s</text>"
               "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" fill=\"#555\">%.3f s</text>\n"
               "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">%u</text>"
               "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#555\">%u</text>\n",
          L, H - 12, (double)t0 / 1e6, W - 20, H - 12, (double)t1 / 1e6,
          L - 6, TY(smin) + 4, smin, L - 6, TY(smax) + 4, smax);
  /* the ACK and window lines */
  for (int w = 0; w < 2; w++) {
    bool first = true;
    for (size_t i = 0; i < v->n; i++) {
      const struct tv_entry *e = &v->e[i];
      if (e->kind != TV_SEG || e->conn != conn || e->side == s || !(e->tcp.flags & TCP_ACK) || e->lost) continue;
      uint32_t ra = e->tcp.ack - e->isn_rel[s];
      uint64_t top = (uint64_t)ra + (w ? tv_seg_window(v, e) : 0);
      if (top > smax) top = smax;
      if (ra < smin) continue;
      if (first) fprintf(out, "<path class=\"%s\" fill=\"none\" stroke=\"%s\"%s d=\"M", w ? "winline" : "ackline",
                         w ? "#b07000" : "#2e7d32", w ? " stroke-dasharray=\"4 3\"" : " stroke-width=\"1.5\"");
      uint64_t ta = e->arrive_us ? e->arrive_us : e->t_us;
      if (ta < t0) ta = t0;   /* ACKs before the first data (the handshake's) start the line */
      fprintf(out, "%s%.1f,%.1f", first ? "" : " L", TX(ta), TY(top));
      first = false;
    }
    if (!first) fprintf(out, "\"/>\n");
  }
  for (size_t i = 0; i < v->n; i++) {
    const struct tv_entry *e = &v->e[i];
    if (e->kind != TV_SEG || e->conn != conn || e->side != s || !e->plen) continue;
    uint32_t rs = e->tcp.seq - e->isn_rel[s];
    bool retr = strstr(e->label, "retransmission") || strstr(e->label, "重传");
    double x = TX(e->t_us);
    fprintf(out, "<line class=\"dataseg%s%s\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"3\"/>\n",
            retr ? " retrans" : "", e->lost ? " lost" : "", x, TY(rs), x, TY(rs + e->plen), retr ? "#c00" : "#0060b0");
    if (e->lost) {
      double y = TY(rs + e->plen / 2);
      fprintf(out, "<path d=\"M%.1f,%.1f l8,8 m0,-8 l-8,8\" stroke=\"#c00\" stroke-width=\"2\"/>\n", x - 4, y - 4);
    }
  }
#undef TX
#undef TY
  fprintf(out, "</svg>\n");
  return 0;
}
