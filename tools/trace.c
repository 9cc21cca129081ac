/* `ustcp trace FILE.pcap`: the demo's sequence diagram for a captured TCP
 * connection (ustcp's own captures, or tcpdump/tshark of the Linux kernel).
 * Connections are told apart by their 4-tuple, IPv4 or IPv6 (issue 16: the
 * addresses are kept as 16 bytes, IPv4 in its v4-mapped form, so a 4-tuple of
 * one family never matches one of the other); the side that sent the first SYN
 * (or, without one, the first packet) is the left column. Each side's state is
 * inferred from the segments it sent and received, as RFC 9293's state diagram
 * would move it. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "link/pcap.h"
#include "demo.h"
#include "tools.h"
#include "trace_view.h"
#include "wire/ipv6.h"
#include "wire/seq.h"

/* A packet's addresses as 16 bytes: IPv6 as is, IPv4 as ::ffff:a.b.c.d. */
struct addrs {
  uint8_t src[16], dst[16];
  bool v6;
};

struct conn_key {
  uint8_t a_ip[16], b_ip[16];
  bool v6;
  uint16_t a_port, b_port;
  unsigned packets;
  bool has_syn;
};

static bool same_conn(const struct conn_key *k, const struct tcp_packet *p, const struct addrs *ad,
                      int *side)
{
  if (ad->v6 != k->v6) return false;
  if (!memcmp(ad->src, k->a_ip, 16) && p->tcp.src_port == k->a_port && !memcmp(ad->dst, k->b_ip, 16) &&
      p->tcp.dst_port == k->b_port) { *side = 0; return true; }
  if (!memcmp(ad->src, k->b_ip, 16) && p->tcp.src_port == k->b_port && !memcmp(ad->dst, k->a_ip, 16) &&
      p->tcp.dst_port == k->a_port) { *side = 1; return true; }
  return false;
}

/* "10.0.0.1:80" or "[fd00::1]:80". */
static const char *endpoint_str(const uint8_t a[16], bool v6, uint16_t port, char *buf, size_t cap)
{
  char t[INET6_ADDRSTRLEN];
  if (v6) {
    inet_ntop(AF_INET6, a, t, sizeof t);
    snprintf(buf, cap, "[%s]:%u", t, port);
  } else {
    inet_ntop(AF_INET, a + 12, t, sizeof t);
    snprintf(buf, cap, "%s:%u", t, port);
  }
  return buf;
}

/* Per-side state inference from the segments seen. */
struct infer {
  enum ustcp_state st[2];
  bool unknown[2];           /* nothing yet says what this side's state is */
  bool fin_sent[2];
  uint32_t fin_seq[2];
  bool fin_acked[2];
};

/* What the other side answered to a bare SYN: the next segment it sent. */
enum answer { ANS_NONE, ANS_RST, ANS_SYN, ANS_OTHER };

static enum answer answer_to(const struct tv *v, size_t i)
{
  for (size_t j = i + 1; j < v->n; j++) {
    const struct tv_entry *a = &v->e[j];
    if (a->kind != TV_SEG || a->side == v->e[i].side) continue;
    if (a->tcp.flags & TCP_RST) return ANS_RST;
    if (a->tcp.flags & TCP_SYN) return ANS_SYN;
    return ANS_OTHER;
  }
  return ANS_NONE;
}

static void infer_send(struct infer *f, int s, const struct tcp_hdr *h, uint32_t plen, enum answer ans)
{
  int o = 1 - s;
  f->unknown[s] = false;
  if (h->flags & TCP_RST) { f->st[s] = USTCP_CLOSED; return; }
  if ((h->flags & TCP_SYN) && !(h->flags & TCP_ACK)) {
    f->st[s] = f->st[s] == USTCP_SYN_RCVD ? USTCP_SYN_RCVD : USTCP_SYN_SENT;
    /* The peer listens only if it answered with a SYN: a RST means nobody
     * listens (CLOSED), silence tells nothing. */
    if (f->st[o] == USTCP_CLOSED && ans == ANS_SYN) f->st[o] = USTCP_LISTEN;
  }
  /* (in a simultaneous open the SYN-ACKs cross: the other one may be in already) */
  if ((h->flags & TCP_SYN) && (h->flags & TCP_ACK) && f->st[s] != USTCP_ESTABLISHED)
    f->st[s] = USTCP_SYN_RCVD;
  if (!(h->flags & TCP_SYN) && (h->flags & TCP_ACK) && f->st[s] == USTCP_SYN_SENT)
    f->st[s] = USTCP_ESTABLISHED;
  if (h->flags & TCP_FIN) {
    f->fin_sent[s] = true;
    f->fin_seq[s] = h->seq + plen;
    if (f->st[s] == USTCP_ESTABLISHED || f->st[s] == USTCP_SYN_RCVD) f->st[s] = USTCP_FIN_WAIT_1;
    else if (f->st[s] == USTCP_CLOSE_WAIT) f->st[s] = USTCP_LAST_ACK;
  }
}

static void infer_recv(struct infer *f, int r, const struct tcp_hdr *h, enum answer ans)
{
  int s = 1 - r;
  if (h->flags & TCP_RST) { f->st[r] = USTCP_CLOSED; return; }
  if ((h->flags & TCP_SYN) && (h->flags & TCP_ACK) &&
      (f->st[r] == USTCP_SYN_SENT || f->st[r] == USTCP_SYN_RCVD)) {
    f->st[r] = USTCP_ESTABLISHED;
  }
  bool bare_syn = (h->flags & TCP_SYN) && !(h->flags & TCP_ACK);
  if (bare_syn && ans != ANS_SYN) {
    /* refused (RST: no listener, the receiver is CLOSED) or unanswered (lost,
     * dropped or filtered: its state is not known); not SYN_RCVD */
    if (f->st[r] == USTCP_LISTEN || f->st[r] == USTCP_CLOSED) {
      f->st[r] = USTCP_CLOSED;
      f->unknown[r] = ans != ANS_RST;
    }
    return;
  }
  if (bare_syn && f->st[r] == USTCP_SYN_SENT)
    f->st[r] = USTCP_SYN_RCVD;   /* simultaneous open */
  if (bare_syn && (f->st[r] == USTCP_LISTEN || f->st[r] == USTCP_CLOSED))
    f->st[r] = USTCP_SYN_RCVD;
  if (!(h->flags & TCP_SYN) && (h->flags & TCP_ACK) && f->st[r] == USTCP_SYN_RCVD)
    f->st[r] = USTCP_ESTABLISHED;
  if ((h->flags & TCP_ACK) && f->fin_sent[r] && seq_gt(h->ack, f->fin_seq[r])) {
    if (!f->fin_acked[r]) {
      f->fin_acked[r] = true;
      if (f->st[r] == USTCP_FIN_WAIT_1) f->st[r] = USTCP_FIN_WAIT_2;
      else if (f->st[r] == USTCP_CLOSING) f->st[r] = USTCP_TIME_WAIT;
      else if (f->st[r] == USTCP_LAST_ACK) f->st[r] = USTCP_CLOSED;
    }
  }
  if (h->flags & TCP_FIN) {
    (void)s;
    switch (f->st[r]) {
    case USTCP_ESTABLISHED: case USTCP_SYN_RCVD: f->st[r] = USTCP_CLOSE_WAIT; break;
    case USTCP_FIN_WAIT_1: f->st[r] = f->fin_acked[r] ? USTCP_TIME_WAIT : USTCP_CLOSING; break;
    case USTCP_FIN_WAIT_2: f->st[r] = USTCP_TIME_WAIT; break;
    default: break;
    }
  }
}

/* Captures taken on the sending host often carry unfinished checksums (checksum
 * offload), so the trace reads segments whatever their checksum says. */
static int decode_any(const uint8_t *pkt, size_t len, struct tcp_packet *p, struct addrs *ad)
{
  memset(ad, 0, sizeof *ad);
  if (len > 0 && (pkt[0] >> 4) == 6) {
    /* IPv6 (issue 16): the TCP segment after the extension chain (a fragment is
     * skipped: no reassembly), its checksum unread as below. */
    struct ipv6_pkt ip6;
    int rc6 = ipv6_decode(pkt, len, &ip6);
    if (rc6 != WIRE_OK) return rc6;
    if (ip6.proto != IPPROTO_TCP_) return WIRE_E_PROTO;
    memset(&p->ip, 0, sizeof p->ip);
    ad->v6 = true;
    memcpy(ad->src, ip6.h.src, 16);
    memcpy(ad->dst, ip6.h.dst, 16);
    return tcp_decode(pkt + ip6.upper_off, ip6.upper_len, &p->tcp, &p->payload, &p->payload_len);
  }
  int rc = tcp_packet_decode(pkt, len, p);
  if (rc == WIRE_OK || rc == WIRE_E_TCP_CHECKSUM) {
    ad->src[10] = ad->src[11] = ad->dst[10] = ad->dst[11] = 0xff;
    for (int i = 0; i < 4; i++) {
      ad->src[12 + i] = (uint8_t)(p->ip.src >> (24 - 8 * i));
      ad->dst[12 + i] = (uint8_t)(p->ip.dst >> (24 - 8 * i));
    }
  }
  if (rc != WIRE_E_TCP_CHECKSUM) return rc;
  const uint8_t *pl;
  size_t pll;
  if (ipv4_decode(pkt, len, &p->ip, &pl, &pll) != WIRE_OK) return rc;
  return tcp_decode(pl, pll, &p->tcp, &p->payload, &p->payload_len);
}

static void usage(FILE *f)
{
  fprintf(f,
    "usage: ustcp trace [OPTIONS] FILE.pcap\n"
    "\n"
    "Draws one TCP connection of a pcap capture as a sequence diagram with each\n"
    "side's inferred state and the handshake and waves labelled. IPv4 and IPv6\n"
    "(ustcp's own --pcap, tcpdump/tshark/dumpcap: pcap or pcapng; raw IP, Ethernet,\n"
    "Linux cooked, loopback); IPv6 endpoints print as [fd00::1]:80.\n"
    "\n"
    "options:\n"
    "  --conn N          which connection (1 = first seen; default 1); --list shows them\n"
    "                    example: ustcp trace --conn 2 capture.pcap\n"
    "  --list            list the connections in the file\n"
    "  --lang en|zh      labels in English (default) or Chinese\n"
    "  --svg FILE        also write the diagram as SVG\n"
    "  --json            print the events as JSON\n"
    "  --tsg FILE        write the connection's time-sequence graph as SVG\n"
    "  --web [ADDR:]PORT open the file in the demo's page (127.0.0.1 unless given):\n"
    "                    pick a connection, step through it, en/zh, SVG\n"
    "  --color, --no-color\n"
    "  -h, --help        this text\n");
}

#define MAX_CONNS 1024

/* Pass 1: the connections of the file. Returns their number, or -1 (err). */
static long trace_conns(const char *path, struct conn_key *conns, char *err, size_t errcap)
{
  struct pcap_reader *r = pcap_reader_open(path, err, errcap);
  if (!r) return -1;
  pcap_reader_want_ipv6(r, true);
  size_t nconns = 0;
  uint64_t ts;
  const uint8_t *pkt;
  size_t len;
  int rc;
  while ((rc = pcap_reader_next(r, &ts, &pkt, &len, err, errcap)) == 1) {
    struct tcp_packet p;
    struct addrs ad;
    if (decode_any(pkt, len, &p, &ad) != WIRE_OK) continue;
    int side;
    size_t k;
    for (k = 0; k < nconns; k++)
      if (same_conn(&conns[k], &p, &ad, &side)) break;
    if (k == nconns) {
      if (nconns == MAX_CONNS) continue;
      memset(&conns[k], 0, sizeof conns[k]);
      conns[k].v6 = ad.v6;
      memcpy(conns[k].a_ip, ad.src, 16); conns[k].a_port = p.tcp.src_port;
      memcpy(conns[k].b_ip, ad.dst, 16); conns[k].b_port = p.tcp.dst_port;
      /* The left column is the active opener: the SYN's sender. */
      if ((p.tcp.flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
        memcpy(conns[k].a_ip, ad.dst, 16); conns[k].a_port = p.tcp.dst_port;
        memcpy(conns[k].b_ip, ad.src, 16); conns[k].b_port = p.tcp.src_port;
      }
      nconns++;
    }
    conns[k].packets++;
    if (p.tcp.flags & TCP_SYN) conns[k].has_syn = true;
  }
  pcap_reader_close(r);
  if (rc < 0) fprintf(stderr, "ustcp trace: %s: %s (reading what came before)\n", path, err);
  return (long)nconns;
}

/* Pass 2: one connection as a diagram, in fmt, to out. */
static int trace_draw(const char *path, const struct conn_key *ck, bool zh, int color,
                      enum demo_fmt fmt, FILE *out, FILE *svg_out, FILE *tsg_out, char *err,
                      size_t errcap)
{
  struct tv v;
  tv_init(&v);
  v.zh = zh;
  v.color = color;
  endpoint_str(ck->a_ip, ck->v6, ck->a_port, v.name[0], sizeof v.name[0]);
  endpoint_str(ck->b_ip, ck->v6, ck->b_port, v.name[1], sizeof v.name[1]);
  struct infer inf;
  memset(&inf, 0, sizeof inf);
  inf.st[0] = inf.st[1] = USTCP_CLOSED;
  if (!ck->has_syn) inf.st[0] = inf.st[1] = USTCP_ESTABLISHED;
  struct pcap_reader *r = pcap_reader_open(path, err, errcap);
  if (!r) { tv_free(&v); return 1; }
  pcap_reader_want_ipv6(r, true);
  uint64_t t0 = 0, ts;
  bool have_t0 = false;
  const uint8_t *pkt;
  size_t len;
  while (pcap_reader_next(r, &ts, &pkt, &len, err, errcap) == 1) {
    struct tcp_packet p;
    struct addrs ad;
    int side;
    if (decode_any(pkt, len, &p, &ad) != WIRE_OK || !same_conn(ck, &p, &ad, &side)) continue;
    if (!have_t0) { t0 = ts; have_t0 = true; }
    tv_add_seg(&v, ts - t0, side, pkt, len);
  }
  pcap_reader_close(r);
  /* States, from each segment and what the peer answered to it. */
  for (size_t i = 0; i < v.n; i++) {
    struct tv_entry *e = &v.e[i];
    enum answer ans = (e->tcp.flags & (TCP_SYN | TCP_ACK)) == TCP_SYN ? answer_to(&v, i) : ANS_OTHER;
    infer_send(&inf, e->side, &e->tcp, e->plen, ans);
    infer_recv(&inf, 1 - e->side, &e->tcp, ans);
    for (int k = 0; k < 2; k++) { e->st[k] = inf.st[k]; e->st_known[k] = !inf.unknown[k]; }
  }
  tv_label(&v);
  if (fmt == DEMO_JSON) tv_render_json(&v, out);
  else if (fmt == DEMO_SVG) tv_render_svg(&v, out);
  else tv_render_text(&v, out);
  if (svg_out) tv_render_svg(&v, svg_out);
  int rc = 0;
  if (tsg_out && tv_render_tsg(&v, tsg_out) != 0) {
    snprintf(err, errcap, "--tsg: no data segments in this connection, no graph written");
    rc = 3;
  }
  tv_free(&v);
  return rc;
}

/* The page (tools/demo_web.c) on a capture: its connections are the
 * "scenarios"; a run draws one. */
static const char *web_path;
static struct conn_key web_conns[MAX_CONNS];
static long web_nconns;

static void web_list(FILE *out)
{
  fprintf(out, "[");
  for (long k = 0; k < web_nconns; k++) {
    char a[64], b[64];
    const struct conn_key *c = &web_conns[k];
    fprintf(out, "%s{\"name\":\"%ld\",\"about\":\"%s -> %s, %u packets%s\",\"trace\":true}",
            k ? "," : "", k + 1, endpoint_str(c->a_ip, c->v6, c->a_port, a, sizeof a),
            endpoint_str(c->b_ip, c->v6, c->b_port, b, sizeof b), c->packets, c->has_syn ? "" : " (no SYN seen)");
  }
  fprintf(out, "]\n");
}

static int web_run(struct demo_req *rq, FILE *out, enum demo_fmt fmt, const char *pcap_path,
                   char *err, size_t errcap)
{
  char *end;
  long k = strtol(rq->scen, &end, 10);
  if (!*rq->scen || *end || k < 1 || k > web_nconns) {
    snprintf(err, errcap, "no connection '%s' (1..%ld)", rq->scen, web_nconns);
    return 2;
  }
  if (pcap_path) {   /* the capture itself */
    FILE *in = fopen(web_path, "rb"), *o = fopen(pcap_path, "wb");
    static char buf[16384];   /* single-threaded tool; frames stay under 4 KiB */
    size_t n;
    while (in && o && (n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, o);
    if (in) fclose(in);
    if (o) fclose(o);
  }
  return trace_draw(web_path, &web_conns[k - 1], rq->lang && !strcmp(rq->lang, "zh"), 0, fmt, out,
                    NULL, NULL, err, errcap);
}

int trace_main(int argc, char **argv)
{
  const char *path = NULL, *svg = NULL, *lang = "en", *web = NULL, *tsg = NULL;
  long want = 1;
  bool list = false, json = false;
  int color = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
    if (!strcmp(a, "--list")) { list = true; continue; }
    if (!strcmp(a, "--json")) { json = true; continue; }
    if (!strcmp(a, "--color")) { color = 1; continue; }
    if (!strcmp(a, "--no-color")) { color = 0; continue; }
    if (!strcmp(a, "--conn") || !strcmp(a, "--svg") || !strcmp(a, "--lang") || !strcmp(a, "--web") ||
        !strcmp(a, "--tsg")) {
      if (i + 1 >= argc) { fprintf(stderr, "ustcp trace: %s needs a value\n", a); return 2; }
      const char *val = argv[++i];
      if (!strcmp(a, "--svg")) svg = val;
      else if (!strcmp(a, "--web")) web = val;
      else if (!strcmp(a, "--tsg")) tsg = val;
      else if (!strcmp(a, "--lang")) {
        if (strcmp(val, "en") && strcmp(val, "zh")) { fprintf(stderr, "ustcp trace: --lang must be en or zh\n"); return 2; }
        lang = val;
      } else {
        char *end;
        want = strtol(val, &end, 10);
        if (!*val || *end || want < 1) { fprintf(stderr, "ustcp trace: --conn needs a number >= 1, got '%s'\n", val); return 2; }
      }
      continue;
    }
    if (a[0] == '-') { fprintf(stderr, "ustcp trace: unknown option '%s' (see ustcp trace --help)\n", a); return 2; }
    if (path) { fprintf(stderr, "ustcp trace: one file at a time\n"); return 2; }
    path = a;
  }
  if (!path) { fprintf(stderr, "ustcp trace: which pcap file? (see ustcp trace --help)\n"); return 2; }

  char err[160];
  static struct conn_key conns[MAX_CONNS];
  long nconns = trace_conns(path, conns, err, sizeof err);
  if (nconns < 0) { fprintf(stderr, "ustcp trace: %s\n", err); return 1; }
  if (nconns == 0) { fprintf(stderr, "ustcp trace: %s: no TCP segments found\n", path); return 1; }
  if (web) {
    static const struct web_backend be = {web_list, web_run};
    web_path = path;
    memcpy(web_conns, conns, (size_t)nconns * sizeof conns[0]);
    web_nconns = nconns;
    return demo_web_serve(web, &be);
  }
  if (list) {
    for (long k = 0; k < nconns; k++) {
      char a[64], b[64];
      printf("%3ld  %s -> %s  %u packets%s\n", k + 1, endpoint_str(conns[k].a_ip, conns[k].v6, conns[k].a_port, a, sizeof a),
             endpoint_str(conns[k].b_ip, conns[k].v6, conns[k].b_port, b, sizeof b),
             conns[k].packets, conns[k].has_syn ? "" : " (no SYN seen)");
    }
    return 0;
  }
  if (want > nconns) {
    fprintf(stderr, "ustcp trace: %s has %ld connection(s); --conn %ld does not exist\n", path, nconns, want);
    return 2;
  }
  FILE *sf = NULL;
  if (svg && !(sf = fopen(svg, "w"))) {
    fprintf(stderr, "ustcp trace: cannot write %s: %s\n", svg, strerror(errno));
    return 1;
  }
  FILE *tf = NULL;
  if (tsg && !(tf = fopen(tsg, "w"))) {
    fprintf(stderr, "ustcp trace: cannot write %s: %s\n", tsg, strerror(errno));
    if (sf) fclose(sf);
    return 1;
  }
  int ret = trace_draw(path, &conns[want - 1], !strcmp(lang, "zh"),
                       color == -1 ? isatty(STDOUT_FILENO) : color, json ? DEMO_JSON : DEMO_TEXT,
                       stdout, sf, tf, err, sizeof err);
  if (sf) fclose(sf);
  if (tf) fclose(tf);
  if (ret == 3) {   /* no data: a warning, the diagram was drawn */
    fprintf(stderr, "ustcp trace: %s\n", err);
    remove(tsg);
    ret = 0;
  } else if (ret) {
    fprintf(stderr, "ustcp trace: %s\n", err);
  }
  return ret;
}
