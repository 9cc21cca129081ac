/* `ustcp demo`: the real engine on the simulated network, drawn as a sequence
 * diagram. Each scenario is a short program of socket calls on a client and a
 * server stack (and an attacker host for the SYN flood); the demo records every
 * segment (from the network's tap), every socket call and every state change
 * (from the stacks' event callbacks), then renders them (trace_view.c).
 *
 *   demo_main -> parse options -> scenario->run(d) -> tv_label -> render
 *   host callbacks (deliver / poll) wrap the stack so each segment learns its
 *   sender's state after the event that sent it and its receiver's state after
 *   it arrived.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "link/pcap.h"
#include "link/sim.h"
#include "wire/ipv6.h"
#include "tools.h"
#include "demo.h"
#include "trace_view.h"
#include "ustcp.h"

#define MAX_DROPS DEMO_MAX_DROPS
#define DEMO_MAX_SOCKS 8
#define DEMO_MAX_ROWS 1024

struct demo;
struct dhost {
  struct demo *d;
  struct ustcp_stack *st;
  int id;
  uint32_t ip;
  uint32_t aid;         /* its address as the diagram names it: ip, or (--ipv6) the
                           tv_addr6 id of ip6 */
  uint8_t ip6[16];
  int side;             /* column: 0 client, 1 server, -1 not drawn */
  int draw_col;         /* column its segments are drawn in (the attacker's SYNs: 0) */
  const char *name;     /* as drop rules name it */
  unsigned kinds_seen[7]; /* segments sent so far of each enum sim_seg_kind */
};

struct demo {
  struct sim_net *net;
  struct dhost h[3];
  int nhosts;
  struct tv v;
  struct ustcp_config cfg;
  /* options */
  double delay_ms;
  double loss;
  uint64_t seed;
  struct pcap_writer *pcap;
  bool self_connect;         /* one stack: both columns are the same socket */
  bool v6;                   /* --ipv6: the conversation over IPv6 (fd00::1, fd00::2) */
  /* the application */
  int csock[DEMO_MAX_SOCKS]; /* client sockets whose connect() outcome we report */
  struct tv_tuple csock_tu[DEMO_MAX_SOCKS]; /* their connections, once known */
  bool connect_pending[DEMO_MAX_SOCKS];
  int ncsock;
  bool server_close_on_eof;  /* close() from the readiness callback at EOF (W3) */
  int server_conn;
  size_t mark;               /* first entry of the event in progress */
  uint64_t flood_syns;
  struct tv_tuple cur_tu;    /* the connection of the call being logged */
  bool cur_opens;
  char err[160];
};

static const uint32_t CLIENT_IP = 0x0a000001;  /* 10.0.0.1 */
static const uint32_t SERVER_IP = 0x0a000002;  /* 10.0.0.2 */
static const uint32_t ATTACKER_IP = 0x0a000063; /* 10.0.0.99: spoofs other sources */
/* --ipv6 (issue 16): the same hosts at fd00::1, fd00::2, fd00::63 (a ULA,
 * RFC 4193, as 10/8 is private); the flood's spoofed sources come from
 * 2001:2::/48, the benchmarking block (RFC 5180), as 198.18.0.0/15 for IPv4. */
static const uint8_t CLIENT_IP6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t SERVER_IP6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
static const uint8_t ATTACKER_IP6[16] = {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x63};
static const uint8_t FLOOD_NET6[6] = {0x20, 0x01, 0x00, 0x02, 0x00, 0x00};
/* The client's and server's addresses as the diagram names them (scenarios). */
#define CLI (d->h[0].aid)
#define SRV (d->h[1].aid)

/* An address of the stack's API as the diagram's id: IPv4 as itself, IPv6 as
 * tv_addr6's id; 0 for "any". */
static uint32_t addr_id(struct demo *d, const struct ustcp_addr *a)
{
  static const uint8_t any6[16];
  if (a->family != USTCP_AF_INET6) return a->ip;
  if (!memcmp(a->ip6, any6, 16)) return 0;
  return tv_addr6(&d->v, a->ip6);
}

/* The socket address of diagram id aid (0 = any) in the run's family. */
static struct ustcp_addr make_addr(struct demo *d, uint32_t aid, uint16_t port)
{
  struct ustcp_addr a;
  memset(&a, 0, sizeof a);
  a.port = port;
  if (!d->v6) {
    a.ip = aid;
  } else {
    a.family = USTCP_AF_INET6;
    if (aid >= 1 && aid <= d->v.na6) memcpy(a.ip6, d->v.a6[aid - 1], 16);
  }
  return a;
}

const char *errno_name(int err)
{
  switch (err < 0 ? -err : err) {
  case 0: return "0";
  case EAGAIN: return "-EAGAIN";
  case EINPROGRESS: return "-EINPROGRESS";
  case EALREADY: return "-EALREADY";
  case EISCONN: return "-EISCONN";
  case ENOTCONN: return "-ENOTCONN";
  case ECONNREFUSED: return "-ECONNREFUSED";
  case ECONNRESET: return "-ECONNRESET";
  case ETIMEDOUT: return "-ETIMEDOUT";
  case EPIPE: return "-EPIPE";
  case EADDRINUSE: return "-EADDRINUSE";
  case EADDRNOTAVAIL: return "-EADDRNOTAVAIL";
  case EINVAL: return "-EINVAL";
  case EBADF: return "-EBADF";
  case EFAULT: return "-EFAULT";
  case EMFILE: return "-EMFILE";
  case ENOMEM: return "-ENOMEM";
  case EOPNOTSUPP: return "-EOPNOTSUPP";
  case ENOPROTOOPT: return "-ENOPROTOOPT";
  default: return "-E?";
  }
}

static uint64_t now(struct demo *d) { return sim_now(d->net); }

static uint64_t fnv(const uint8_t *p, size_t n)
{
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/* The state of the connection (lport, rip:rport) on a stack, or of its listener,
 * or CLOSED. */
static enum ustcp_state tuple_state(struct demo *d, struct ustcp_stack *st, uint16_t lport, uint32_t rip,
                                    uint16_t rport, bool allow_listener)
{
  /* room for a flooded SYN queue and more: a row cut off would read as CLOSED */
  static struct ustcp_sock_row rows[DEMO_MAX_ROWS];
  size_t n = ustcp_sock_table(st, rows, DEMO_MAX_ROWS);
  if (n > DEMO_MAX_ROWS) n = DEMO_MAX_ROWS;
  enum ustcp_state best = USTCP_CLOSED;
  for (size_t i = 0; i < n; i++) {
    if (rows[i].local.port != lport) continue;
    if (rows[i].remote.port == rport && addr_id(d, &rows[i].remote) == rip) return rows[i].state;
    if (rows[i].state == USTCP_LISTEN && allow_listener) best = USTCP_LISTEN;
  }
  return best;
}

/* The columns' endpoints of socket fd on host h (unset if it has no peer). */
static struct tv_tuple fd_tuple(struct demo *d, struct dhost *h, int fd)
{
  struct tv_tuple tu;
  memset(&tu, 0, sizeof tu);
  struct ustcp_addr l, r;
  if (fd < 0 || ustcp_getsockname(h->st, fd, &l) != 0 || ustcp_getpeername(h->st, fd, &r) != 0) {
    /* a client socket whose connection failed: the tuple its connect() had */
    for (int i = d->ncsock; i-- > 0 && h->side == 0;)
      if (d->csock[i] == fd) return d->csock_tu[i];
    return tu;
  }
  int me = d->self_connect ? 0 : h->side;
  if (me < 0) return tu;
  tu.ip[me] = addr_id(d, &l) ? addr_id(d, &l) : h->aid;
  tu.port[me] = l.port;
  tu.ip[1 - me] = addr_id(d, &r);
  tu.port[1 - me] = r.port;
  tu.set = true;
  return tu;
}

/* Names the connection of the entry just logged. */
static void tag_last(struct demo *d, const struct tv_tuple *tu, bool opens)
{
  if (!d->v.n || !tu->set) return;
  d->v.e[d->v.n - 1].tu = *tu;
  d->v.e[d->v.n - 1].opens = opens;
}

/* After an event on host h: fill the sender's state into the segments it sent. */
static void end_event(struct demo *d, struct dhost *h)
{
  for (size_t i = d->mark; i < d->v.n; i++) {
    struct tv_entry *e = &d->v.e[i];
    if (e->kind != TV_SEG || e->st_known[e->side]) continue;
    struct dhost *sender = d->self_connect ? &d->h[0] : NULL;
    for (int k = 0; !sender && k < d->nhosts; k++)
      if (d->h[k].aid == e->src_ip) sender = &d->h[k];
    if (!sender || sender != h) continue;
    /* a RST leaves its connection CLOSED even where a listener owns the port */
    e->st[e->side] = tuple_state(d, h->st, e->tcp.src_port, e->dst_ip, e->tcp.dst_port,
                                 !(e->tcp.flags & TCP_RST));
    e->st_known[e->side] = true;
    if (d->self_connect) {
      e->st[1 - e->side] = e->st[e->side];
      e->st_known[1 - e->side] = true;
    }
  }
  /* connect() outcomes */
  if (h->side == 0 || d->self_connect) {
    for (int i = 0; i < d->ncsock; i++) {
      if (!d->connect_pending[i]) continue;
      int ev = ustcp_sock_events(h->st, d->csock[i]);
      if (ev < 0) { d->connect_pending[i] = false; continue; }
      struct ustcp_tcp_info ti;
      ustcp_get_info(h->st, d->csock[i], &ti);
      if (ti.state == USTCP_SYN_SENT || ti.state == USTCP_SYN_RCVD) continue;
      d->connect_pending[i] = false;
      struct tv_tuple tu = fd_tuple(d, h, d->csock[i]);
      int err = ustcp_sock_error(h->st, d->csock[i]);
      if (err) tv_call(&d->v, now(d), 0, d->v.zh ? "connect() 失败: %s" : "connect() fails: %s", errno_name(err));
      else tv_call(&d->v, now(d), 0, d->v.zh ? "connect() 返回 0 (已连接)" : "connect() returns 0 (connected)");
      tag_last(d, &tu, false);
    }
  }
}

static void deliver(void *ctx, const uint8_t *pkt, size_t len, uint64_t t)
{
  struct dhost *h = ctx;
  struct demo *d = h->d;
  d->mark = d->v.n;
  uint64_t key = fnv(pkt, len);
  struct tv_entry *seg = NULL;
  for (size_t i = d->v.n; i-- > 0;) {
    struct tv_entry *e = &d->v.e[i];
    if (e->kind == TV_SEG && e->key == key && !e->lost && !e->delivered) { seg = e; break; }
  }
  size_t seg_idx = seg ? (size_t)(seg - d->v.e) : 0;
  ustcp_input(h->st, pkt, len, t);
  if (seg) {
    seg = &d->v.e[seg_idx];   /* the log may have grown */
    seg->delivered = true;
    seg->arrive_us = t;
    int rs = 1 - seg->side;
    if (h->side >= 0 && !seg->st_known[rs]) {
      seg->st[rs] = tuple_state(d, h->st, seg->tcp.dst_port, seg->src_ip, seg->tcp.src_port,
                               (seg->tcp.flags & (TCP_SYN | TCP_ACK)) == TCP_SYN);
      seg->st_known[rs] = true;
    }
  }
  end_event(d, h);
}

static uint64_t deadline(void *ctx)
{
  struct dhost *h = ctx;
  uint64_t dl = ustcp_next_deadline(h->st);
  return dl == USTCP_NO_DEADLINE ? SIM_NO_DEADLINE : dl;
}

static void poll_host(void *ctx, uint64_t t)
{
  struct dhost *h = ctx;
  h->d->mark = h->d->v.n;
  ustcp_poll(h->st, t);
  end_event(h->d, h);
}

static void out_fn(void *ctx, const uint8_t *pkt, size_t len)
{
  struct dhost *h = ctx;
  sim_send(h->d->net, h->id, pkt, len);
}

static void tap(void *ctx, int from, int to, enum sim_fate fate, const uint8_t *pkt,
                size_t len, uint64_t t)
{
  struct demo *d = ctx;
  (void)to;
  if (fate == SIM_SENT && d->pcap) pcap_writer_write(d->pcap, t, pkt, len);
  if (from < 0 || from >= d->nhosts || d->h[from].draw_col < 0) return;
  if (fate == SIM_SENT) {
    /* The --drop rule that would lose exactly this segment (the web page's
     * click): its host, its most specific kind and its number of that kind,
     * counted the way the network's rules count. */
    static const char *const kname[] = {"any", "syn", "syn-ack", "ack", "data", "fin", "rst"};
    struct dhost *hs = &d->h[from];
    for (int k = 0; k < 7; k++)
      if (sim_seg_matches(pkt, len, (enum sim_seg_kind)k)) hs->kinds_seen[k]++;
    int kind = SIM_SEG_ANY;
    static const enum sim_seg_kind order[] = {SIM_SEG_RST, SIM_SEG_SYN, SIM_SEG_SYNACK,
                                              SIM_SEG_FIN, SIM_SEG_DATA, SIM_SEG_ACK};
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
      if (sim_seg_matches(pkt, len, order[k])) { kind = (int)order[k]; break; }
    struct tv_entry *e = tv_add_seg(&d->v, t, d->h[from].draw_col, pkt, len);
    if (e) {
      e->key = fnv(pkt, len);
      snprintf(e->drop, sizeof e->drop, "%s:%s#%u", hs->name, kname[kind], hs->kinds_seen[kind]);
    }
  } else if (fate == SIM_DROP_LOSS || fate == SIM_DROP_RULE || fate == SIM_DROP_QUEUE ||
             fate == SIM_DROP_DOWN || fate == SIM_DROP_NOROUTE) {
    uint64_t key = fnv(pkt, len);
    for (size_t i = d->v.n; i-- > 0;) {
      struct tv_entry *e = &d->v.e[i];
      if (e->kind == TV_SEG && e->key == key && !e->lost) { e->lost = true; break; }
    }
  }
}

/* Self-connect never leaves the stack: its capture hook records the segments. */
static void capture(void *ctx, bool outgoing, const uint8_t *pkt, size_t len, uint64_t t)
{
  struct dhost *h = ctx;
  struct demo *d = h->d;
  if (d->pcap && outgoing) pcap_writer_write(d->pcap, t, pkt, len);
  if (!outgoing) return;
  struct tv_entry *e = tv_add_seg(&d->v, t, 0, pkt, len);
  if (e) {
    e->key = fnv(pkt, len);
    e->arrive_us = t;
  }
}

static void on_event(void *ctx, const struct ustcp_event *ev)
{
  struct dhost *h = ctx;
  struct demo *d = h->d;
  if (h->side < 0) return;
  /* Only the conversation being drawn: the server's children for the client's
   * address, the listener, and the client's own sockets. */
  uint32_t rid = addr_id(d, &ev->remote), lid = addr_id(d, &ev->local);
  if (h->side == 1 && ev->new_state != USTCP_LISTEN && ev->old_state != USTCP_LISTEN &&
      rid != CLI)
    return;
  if (h->side == 1 && rid != CLI && rid != 0) return;
  if (ev->cause == USTCP_CAUSE_SEGMENT || ev->cause == USTCP_CAUSE_RESET) return;
  struct tv_entry *e = tv_add(&d->v, TV_STATE, ev->time_us, h->side);
  if (!e) return;
  e->old_state = ev->old_state;
  e->new_state = ev->new_state;
  if (rid) {
    int me = d->self_connect ? 0 : h->side;
    e->tu.ip[me] = lid ? lid : h->aid;
    e->tu.port[me] = ev->local.port;
    e->tu.ip[1 - me] = rid;
    e->tu.port[1 - me] = ev->remote.port;
    e->tu.set = true;
    e->opens = ev->new_state == USTCP_SYN_SENT;
  }
}

static void on_ready(void *ctx, int fd, unsigned events)
{
  struct dhost *h = ctx;
  struct demo *d = h->d;
  if (h->side != 1 || !d->server_close_on_eof || fd != d->server_conn) return;
  if (!(events & USTCP_POLLIN)) return;
  char buf[512];
  ssize_t n;
  while ((n = ustcp_recv(h->st, fd, buf, sizeof buf, 0)) > 0) {}
  if (n == 0) {
    tv_call(&d->v, now(d), 1, "recv() = 0 (EOF)");
    int rc = ustcp_close(h->st, fd);
    tv_call(&d->v, now(d), 1, d->v.zh ? "close() = %s (在回调中立即关闭)" : "close() = %s (at once, from the callback)",
            errno_name(rc));
    d->server_conn = -1;
  }
}

static struct dhost *add_host(struct demo *d, const char *name, uint32_t ip, int side)
{
  static const struct sim_host_ops ops = {deliver, deadline, poll_host};
  struct dhost *h = &d->h[d->nhosts];
  h->d = d;
  h->ip = ip;
  h->side = side;
  h->draw_col = side;
  h->name = name;
  h->aid = ip;
  h->st = ustcp_stack_new(&d->cfg, ip, d->seed * 7919 + (uint64_t)d->nhosts, out_fn, h);
  if (!h->st) return NULL;
  h->id = sim_add_host(d->net, name, ip, &ops, h);
  if (d->v6) {
    memcpy(h->ip6, ip == CLIENT_IP ? CLIENT_IP6 : ip == SERVER_IP ? SERVER_IP6 : ATTACKER_IP6, 16);
    h->aid = tv_addr6(&d->v, h->ip6);
    if (ustcp_stack_add_addr6(h->st, h->ip6) != 0 || sim_set_host_addr6(d->net, h->id, h->ip6) != 0)
      return NULL;
  }
  ustcp_set_event_cb(h->st, on_event, h);
  ustcp_set_ready_cb(h->st, on_ready, h);
  d->nhosts++;
  return h;
}

/* Brings every stack to the network's clock (socket calls happen "now"). */
static void sync_all(struct demo *d)
{
  for (int i = 0; i < d->nhosts; i++) {
    d->mark = d->v.n;
    ustcp_poll(d->h[i].st, now(d));
    end_event(d, &d->h[i]);
  }
}

static void run_until(struct demo *d, uint64_t t)
{
  sim_run_until(d->net, t);
  sync_all(d);
}

/* Watched connections still busy: a handshake, unacked data or a FIN in flight. */
static bool busy(struct demo *d)
{
  if (sim_in_flight(d->net)) return true;
  for (int k = 0; k < d->nhosts; k++) {
    if (d->h[k].side < 0) continue;
    static struct ustcp_sock_row rows[DEMO_MAX_ROWS];
    size_t n = ustcp_sock_table(d->h[k].st, rows, DEMO_MAX_ROWS);
    if (n > DEMO_MAX_ROWS) n = DEMO_MAX_ROWS;
    for (size_t i = 0; i < n; i++) {
      if (d->h[k].side == 1 && addr_id(d, &rows[i].remote) != CLI) continue;
      enum ustcp_state s = rows[i].state;
      if (s == USTCP_SYN_SENT || s == USTCP_SYN_RCVD || s == USTCP_FIN_WAIT_1 ||
          s == USTCP_CLOSING || s == USTCP_LAST_ACK || rows[i].send_q)
        return true;
    }
  }
  return false;
}

/* Runs until the conversation is quiet (nothing in flight, no handshake or close
 * pending, no delayed ACK due), bounded to 300 virtual seconds. */
static void settle(struct demo *d)
{
  uint64_t limit = now(d) + 300 * USTCP_SEC;
  for (;;) {
    uint64_t next = sim_next_event(d->net);
    if (next == SIM_NO_DEADLINE || next > limit) break;
    if (!busy(d) && next > now(d) + 250 * USTCP_MSEC) break;
    sim_step(d->net, next);
  }
  sync_all(d);
}

/* ---- socket calls, logged ----
 * A call's line is written when its result is known, then moved before the
 * segments and state changes the call caused (they were logged from d->mark on). */
static void call_line(struct demo *d, int side, const char *fmt, ...)
  __attribute__((format(printf, 3, 4)));
static void call_line(struct demo *d, int side, const char *fmt, ...)
{
  char text[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  tv_call(&d->v, now(d), side, "%s", text);
  tag_last(d, &d->cur_tu, d->cur_opens);
  memset(&d->cur_tu, 0, sizeof d->cur_tu);
  d->cur_opens = false;
  if (d->mark >= d->v.n - 1) return;
  struct tv_entry last = d->v.e[d->v.n - 1];
  memmove(&d->v.e[d->mark + 1], &d->v.e[d->mark], (d->v.n - 1 - d->mark) * sizeof last);
  d->v.e[d->mark] = last;
}

static int c_socket(struct demo *d, struct dhost *h)
{
  return ustcp_socket(h->st);
}

static int c_listen(struct demo *d, struct dhost *h, uint16_t port, int backlog)
{
  d->mark = d->v.n;
  int fd = ustcp_socket(h->st);
  struct ustcp_addr a = make_addr(d, 0, port);
  int rc = ustcp_bind(h->st, fd, &a);
  if (rc == 0) rc = ustcp_listen(h->st, fd, backlog);
  call_line(d, h->side, "listen(:%u, backlog %d) = %s", port, backlog, errno_name(rc));
  return fd;
}

static void track_connect(struct demo *d, int fd)
{
  if (d->ncsock < DEMO_MAX_SOCKS) {
    d->csock[d->ncsock] = fd;
    d->csock_tu[d->ncsock] = d->cur_tu;
    d->connect_pending[d->ncsock] = true;
    d->ncsock++;
  }
}

static int c_connect_fd(struct demo *d, struct dhost *h, int fd, uint32_t ip, uint16_t port)
{
  struct ustcp_addr a = make_addr(d, ip, port);
  d->mark = d->v.n;
  int rc = ustcp_connect(h->st, fd, &a);
  char ipb[64];
  d->cur_tu = fd_tuple(d, h, fd);
  struct ustcp_addr l;
  if (!d->cur_tu.set && rc == -EINPROGRESS && ustcp_getsockname(h->st, fd, &l) == 0 && l.port) {
    /* in SYN_SENT there is no peer name yet (ENOTCONN, as in Linux) */
    int me = d->self_connect ? 0 : h->side;
    d->cur_tu.ip[me] = addr_id(d, &l) ? addr_id(d, &l) : h->aid;
    d->cur_tu.port[me] = l.port;
    d->cur_tu.ip[1 - me] = ip;
    d->cur_tu.port[1 - me] = port;
    d->cur_tu.set = true;
  }
  d->cur_opens = true;
  if (rc == -EINPROGRESS) track_connect(d, fd);
  call_line(d, h->side, "connect(%s) = %s", tv_endpoint_str(&d->v, ip, port, ipb, sizeof ipb),
          errno_name(rc));
  end_event(d, h);
  return rc;
}

static int c_connect(struct demo *d, struct dhost *h, uint32_t ip, uint16_t port)
{
  int fd = c_socket(d, h);
  c_connect_fd(d, h, fd, ip, port);
  return fd;
}

static int c_accept(struct demo *d, struct dhost *h, int lfd)
{
  struct ustcp_addr peer;
  d->mark = d->v.n;
  int fd = ustcp_accept(h->st, lfd, &peer);
  char ipb[64];
  d->cur_tu = fd_tuple(d, h, fd);
  if (fd >= 0)
    call_line(d, h->side, "accept() = fd %d (%s)", fd,
              tv_endpoint_str(&d->v, addr_id(d, &peer), peer.port, ipb, sizeof ipb));
  else
    call_line(d, h->side, "accept() = %s", errno_name(fd));
  return fd;
}

static void c_send(struct demo *d, struct dhost *h, int fd, const char *data, size_t len)
{
  d->mark = d->v.n;
  d->cur_tu = fd_tuple(d, h, fd);
  ssize_t n = ustcp_send(h->st, fd, data, len, 0);
  if (n >= 0) call_line(d, h->side, "send(%zu bytes) = %zd", len, n);
  else call_line(d, h->side, "send(%zu bytes) = %s", len, errno_name((int)n));
  end_event(d, h);
}

static ssize_t c_recv(struct demo *d, struct dhost *h, int fd)
{
  static char buf[65536];   /* static: frames stay under 4 KiB (tests/sh/stack_usage.sh); one thread */
  d->mark = d->v.n;
  d->cur_tu = fd_tuple(d, h, fd);
  ssize_t n = ustcp_recv(h->st, fd, buf, sizeof buf, 0);
  if (n > 0) call_line(d, h->side, "recv() = %zd", n);
  else if (n == 0) call_line(d, h->side, d->v.zh ? "recv() = 0 (对端已关闭, EOF)" : "recv() = 0 (EOF: the peer closed)");
  else call_line(d, h->side, "recv() = %s", errno_name((int)n));
  end_event(d, h);
  return n;
}

static void c_close(struct demo *d, struct dhost *h, int fd)
{
  d->mark = d->v.n;
  d->cur_tu = fd_tuple(d, h, fd);
  for (int i = 0; i < d->ncsock && h->side == 0; i++)
    if (d->csock[i] == fd) d->csock[i] = -1;   /* the number may be reused */
  int rc = ustcp_close(h->st, fd);
  call_line(d, h->side, "close() = %s", errno_name(rc));
  end_event(d, h);
}

static void c_shutdown_wr(struct demo *d, struct dhost *h, int fd)
{
  d->mark = d->v.n;
  d->cur_tu = fd_tuple(d, h, fd);
  int rc = ustcp_shutdown(h->st, fd, USTCP_SHUT_WR);
  call_line(d, h->side, "shutdown(SHUT_WR) = %s", errno_name(rc));
  end_event(d, h);
}

static int add_drop(struct demo *d, const char *spec)
{
  struct sim_drop_rule r;
  char err[128];
  if (sim_parse_drop_rule(d->net, spec, &r, err, sizeof err) != 0) {
    snprintf(d->err, sizeof d->err, "bad --drop '%s': %s", spec, err);
    return -1;
  }
  return sim_add_drop_rule(d->net, &r);
}

static const char REQUEST[] = "GET / HTTP/1.0\r\n\r\n";
static const char RESPONSE[] = "HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n";

/* ---- scenarios ---- */
struct env {
  struct dhost *c, *s;
  int lfd, cfd, sfd;
};

static void open_conn(struct demo *d, struct env *x)
{
  x->lfd = c_listen(d, x->s, 80, 128);
  x->cfd = c_connect(d, x->c, SRV, 80);
  settle(d);
  x->sfd = c_accept(d, x->s, x->lfd);
  d->server_conn = x->sfd;
}

static void request_response(struct demo *d, struct env *x)
{
  c_send(d, x->c, x->cfd, REQUEST, sizeof REQUEST - 1);
  settle(d);
  c_recv(d, x->s, x->sfd);
  c_send(d, x->s, x->sfd, RESPONSE, sizeof RESPONSE - 1);
  settle(d);
  c_recv(d, x->c, x->cfd);
}

static void wait_time_wait(struct demo *d)
{
  tv_note(&d->v, now(d), 0, d->v.zh ? "等待 TIME_WAIT (2MSL = %.0f s) ..." : "waiting out TIME_WAIT (2MSL = %.0f s) ...",
          (double)d->cfg.time_wait_us / 1e6);
  run_until(d, now(d) + d->cfg.time_wait_us + USTCP_SEC);
}

/* The four-way close with one side closing first: it sends the first wave,
 * the other reads EOF and closes; the first closer ends in TIME_WAIT. */
static void close_in_order(struct demo *d, struct dhost *first, int first_fd,
                           struct dhost *second, int second_fd)
{
  c_close(d, first, first_fd);
  settle(d);
  c_recv(d, second, second_fd);
  c_close(d, second, second_fd);
  settle(d);
  wait_time_wait(d);
}

static void sc_normal(struct demo *d, struct env *x)
{
  open_conn(d, x);
  request_response(d, x);
  close_in_order(d, x->c, x->cfd, x->s, x->sfd);
}

static void sc_server_first(struct demo *d, struct env *x)
{
  open_conn(d, x);
  request_response(d, x);
  close_in_order(d, x->s, x->sfd, x->c, x->cfd);
}

static void sc_three_way_close(struct demo *d, struct env *x)
{
  open_conn(d, x);
  request_response(d, x);
  d->server_close_on_eof = true;
  c_close(d, x->c, x->cfd);
  settle(d);
  wait_time_wait(d);
}

static void sc_simultaneous_close(struct demo *d, struct env *x)
{
  open_conn(d, x);
  request_response(d, x);
  c_close(d, x->c, x->cfd);
  c_close(d, x->s, x->sfd);
  settle(d);
  wait_time_wait(d);
}

static void sc_half_close(struct demo *d, struct env *x)
{
  open_conn(d, x);
  c_send(d, x->c, x->cfd, REQUEST, sizeof REQUEST - 1);
  c_shutdown_wr(d, x->c, x->cfd);
  settle(d);
  c_recv(d, x->s, x->sfd);
  c_recv(d, x->s, x->sfd);
  tv_note_claim(&d->v, now(d), 1, "later seg c1 server P. client=FIN_WAIT_2 label=data", d->v.zh ? "半关闭: 服务器仍可发送, 客户端在 FIN_WAIT_2 中继续接收"
                                     : "half-close: the server may still send; the client receives in FIN_WAIT_2");
  c_send(d, x->s, x->sfd, RESPONSE, sizeof RESPONSE - 1);
  settle(d);
  c_send(d, x->s, x->sfd, "more data\n", 10);
  settle(d);
  c_recv(d, x->c, x->cfd);
  c_close(d, x->s, x->sfd);
  settle(d);
  c_recv(d, x->c, x->cfd);
  c_close(d, x->c, x->cfd);
  wait_time_wait(d);
}

static void sc_simultaneous_open(struct demo *d, struct env *x)
{
  int a = c_socket(d, x->c), b = c_socket(d, x->s);
  struct ustcp_addr pa = make_addr(d, 0, 5001), pb = make_addr(d, 0, 5002);
  ustcp_bind(x->c->st, a, &pa);
  ustcp_bind(x->s->st, b, &pb);
  tv_call(&d->v, now(d), 0, "bind(:5001)");
  tv_call(&d->v, now(d), 1, "bind(:5002)");
  c_connect_fd(d, x->c, a, SRV, 5002);
  d->mark = d->v.n;
  struct ustcp_addr ca = make_addr(d, CLI, 5001);
  int rc = ustcp_connect(x->s->st, b, &ca);
  char ep[64];
  call_line(d, 1, "connect(%s) = %s", tv_endpoint_str(&d->v, CLI, 5001, ep, sizeof ep), errno_name(rc));
  end_event(d, x->s);
  tv_note_claim(&d->v, now(d), 0, "seg c1 client S; seg c1 server S before=0.001", d->v.zh ? "两端同时 connect(), 没有 listen()" : "both connect() at once, nobody listens");
  settle(d);
  c_close(d, x->c, a);
  settle(d);
  c_close(d, x->s, b);
  settle(d);
  wait_time_wait(d);
}

static void sc_self_connect(struct demo *d, struct env *x)
{
  int fd = c_socket(d, x->c);
  struct ustcp_addr a = make_addr(d, CLI, 6000);
  ustcp_bind(x->c->st, fd, &a);
  char ep[64];
  tv_call(&d->v, now(d), 0, "bind(%s)", tv_endpoint_str(&d->v, CLI, 6000, ep, sizeof ep));
  c_connect_fd(d, x->c, fd, CLI, 6000);
  settle(d);
  c_send(d, x->c, fd, "ping", 4);
  settle(d);
  c_recv(d, x->c, fd);
  c_close(d, x->c, fd);
  settle(d);
  wait_time_wait(d);
}

static void sc_refused(struct demo *d, struct env *x)
{
  x->cfd = c_connect(d, x->c, SRV, 81);
  settle(d);
  c_close(d, x->c, x->cfd);
}

static void sc_syn_timeout(struct demo *d, struct env *x)
{
  add_drop(d, "client:syn+");
  char claim[64];
  /* the first SYN and syn_retries resends, every one lost, no SYN-ACK */
  snprintf(claim, sizeof claim, "later count c1 client S %u label=LOST; later no seg c1 server S.",
           d->cfg.syn_retries + 1);
  tv_note_claim(&d->v, 0, 0, claim, d->v.zh ? "每个 SYN 都丢失; syn_retries = %u, 初始 RTO 1 s, 每次加倍"
                                : "every SYN is lost; syn_retries = %u, initial RTO 1 s, doubling",
          d->cfg.syn_retries);
  x->lfd = c_listen(d, x->s, 80, 128);
  x->cfd = c_connect(d, x->c, SRV, 80);
  run_until(d, 130 * USTCP_SEC);
  c_close(d, x->c, x->cfd);
}

static void sc_synack_lost(struct demo *d, struct env *x)
{
  add_drop(d, "server:syn-ack#1");
  open_conn(d, x);
  request_response(d, x);
  c_close(d, x->c, x->cfd);
  settle(d);
  c_recv(d, x->s, x->sfd);
  c_close(d, x->s, x->sfd);
  settle(d);
}

static void sc_lost_wave(struct demo *d, struct env *x, const char *rule_before_client_close,
                         const char *rule_before_server_close)
{
  open_conn(d, x);
  request_response(d, x);
  if (rule_before_client_close) add_drop(d, rule_before_client_close);
  c_close(d, x->c, x->cfd);
  settle(d);
  c_recv(d, x->s, x->sfd);
  if (rule_before_server_close) add_drop(d, rule_before_server_close);
  c_close(d, x->s, x->sfd);
  settle(d);
  wait_time_wait(d);
}

static void sc_lost_fin1(struct demo *d, struct env *x) { sc_lost_wave(d, x, "client:fin#1", NULL); }
static void sc_lost_ack2(struct demo *d, struct env *x)
{
  /* The ACK of the client's FIN is lost; the client's FIN timer resends it. */
  sc_lost_wave(d, x, "server:ack#1", NULL);
}
static void sc_lost_fin3(struct demo *d, struct env *x) { sc_lost_wave(d, x, NULL, "server:fin#1"); }
static void sc_lost_ack4(struct demo *d, struct env *x) { sc_lost_wave(d, x, NULL, "client:ack#1"); }

static void sc_orphan_fin_wait_2(struct demo *d, struct env *x)
{
  open_conn(d, x);
  request_response(d, x);
  c_close(d, x->c, x->cfd);
  settle(d);
  char claim[96];
  snprintf(claim, sizeof claim, "later state c1 client CLOSED; later no seg c1 server F. before=%.0f",
           (double)d->cfg.fin_timeout_us / 1e6);
  tv_note_claim(&d->v, now(d), 0, claim, d->v.zh ? "服务器从不 close(): 客户端是孤儿, 在 FIN_WAIT_2 最多等待 fin_timeout = %.0f s; 服务器停在 CLOSE_WAIT"
                                     : "the server never calls close(): the orphaned client waits in FIN_WAIT_2 at most fin_timeout = %.0f s; the server stays in CLOSE_WAIT",
          (double)d->cfg.fin_timeout_us / 1e6);
  run_until(d, now(d) + d->cfg.fin_timeout_us + USTCP_SEC);
  struct ustcp_tcp_info ti;
  ustcp_get_info(x->s->st, x->sfd, &ti);
  tv_note_claim(&d->v, now(d), 1, ti.state == USTCP_CLOSE_WAIT ? "state c1 server CLOSE_WAIT" : "", d->v.zh ? "服务器仍在 %s (协议栈从不替应用关闭)" : "server still in %s (the stack never closes for the application)",
          ustcp_state_name(ti.state));
  c_close(d, x->s, x->sfd);
  settle(d);
}

static void sc_time_wait(struct demo *d, struct env *x)
{
  x->lfd = c_listen(d, x->s, 80, 128);
  int fd = c_socket(d, x->c);
  int one = 1;
  ustcp_setsockopt(x->c->st, fd, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &one, sizeof one);
  struct ustcp_addr a = make_addr(d, 0, 40000);
  ustcp_bind(x->c->st, fd, &a);
  tv_call(&d->v, now(d), 0, "bind(:40000) with SO_REUSEADDR");
  c_connect_fd(d, x->c, fd, SRV, 80);
  settle(d);
  x->sfd = c_accept(d, x->s, x->lfd);
  c_close(d, x->c, fd);
  settle(d);
  c_recv(d, x->s, x->sfd);
  c_close(d, x->s, x->sfd);
  settle(d);
  char ca[64], sa[64];
  tv_endpoint_str(&d->v, CLI, 40000, ca, sizeof ca);
  tv_endpoint_str(&d->v, SRV, 80, sa, sizeof sa);
  tv_note_claim(&d->v, now(d), 0, "state c1 client TIME_WAIT; later call client EADDRNOTAVAIL", d->v.zh ? "同一个四元组 %s -> %s 仍在 TIME_WAIT"
                                     : "the 4-tuple %s -> %s is in TIME_WAIT", ca, sa);
  int fd2 = c_socket(d, x->c);
  ustcp_setsockopt(x->c->st, fd2, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &one, sizeof one);
  ustcp_bind(x->c->st, fd2, &a);
  c_connect_fd(d, x->c, fd2, SRV, 80);
  c_close(d, x->c, fd2);
  wait_time_wait(d);
  int fd3 = c_socket(d, x->c);
  ustcp_setsockopt(x->c->st, fd3, USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR, &one, sizeof one);
  ustcp_bind(x->c->st, fd3, &a);
  c_connect_fd(d, x->c, fd3, SRV, 80);
  settle(d);
}

/* The server's listen-queue counters, as a note with the count as its claim. */
static void listen_counters(struct demo *d, struct dhost *srv)
{
  struct ustcp_stats st;
  ustcp_get_stats(srv->st, &st);
  char claim[64];
  snprintf(claim, sizeof claim, "overflows %llu", (unsigned long long)st.accept_queue_drops);
  tv_note_claim(&d->v, now(d), 1, claim,
                d->v.zh ? "服务器计数: accept_queue_drops = %llu (Linux 的 ListenOverflows, 也计入 ListenDrops), syn_queue_drops = %llu"
                        : "server counters: accept_queue_drops = %llu (Linux's ListenOverflows, also counted in ListenDrops), syn_queue_drops = %llu",
                (unsigned long long)st.accept_queue_drops, (unsigned long long)st.syn_queue_drops);
}

/* A listener with backlog 2 (Linux counts the accept queue full when it holds
 * MORE than the backlog, so it takes 3) and an application that does not
 * accept() yet. c1 and c2 complete first. Then c3 and c4 send their SYNs at
 * once: both find room in the SYN queue (it counts full at the backlog, Linux's
 * inet_csk_reqsk_queue_is_full; past that SYN cookies would answer, and a
 * cookie keeps no request to resend a SYN-ACK for). c3's final ACK fills the
 * accept queue; c4's finds it full. Linux (tcp_check_req ->
 * inet_csk_complete_hashdance failing) drops that ACK and keeps the request:
 * the server stays SYN_RCVD while c4's client is ESTABLISHED, the SYN-ACK timer
 * resends the SYN-ACK, and the handshake completes once accept() made room.
 * With abort_on_overflow = 1 it answers c4 with RST instead. c5's SYN, sent
 * while the accept queue is full, is dropped (tcp_conn_request's
 * sk_acceptq_is_full) and gets in at its retransmission. */
static void backlog_common(struct demo *d, struct env *x, bool abort_on_overflow)
{
  x->lfd = c_listen(d, x->s, 80, 2);
  tv_note_claim(&d->v, now(d), 1, "state c1 server ESTABLISHED; state c2 server ESTABLISHED",
                d->v.zh ? "backlog 2: 全连接队列可容纳 3 个 (Linux: 已排队 > backlog 才算满); 服务器暂不 accept(); c1, c2 先完成握手"
                        : "backlog 2: the accept queue holds 3 (Linux counts it full when queued > backlog); the server does not accept() yet; c1 and c2 connect first");
  int fds[5] = {-1, -1, -1, -1, -1};
  for (int i = 0; i < 2; i++) fds[i] = c_connect(d, x->c, SRV, 80);
  run_until(d, now(d) + 50 * USTCP_MSEC);
  for (int i = 2; i < 4; i++) fds[i] = c_connect(d, x->c, SRV, 80);
  if (!abort_on_overflow) {
    tv_note_claim(&d->v, now(d), 0,
                  "later seg c3 client . server=ESTABLISHED; seg c4 client S server=SYN_RCVD; "
                  "later seg c4 client . client=ESTABLISHED server=SYN_RCVD",
                  d->v.zh ? "c3, c4 的 SYN 同时到达, 半连接队列有空位 (SYN_RCVD); c3 的第三次握手填满了全连接队列, c4 的第三次握手到达时队列已满: 被丢弃, 服务器端 c4 仍是 SYN_RCVD, 客户端已 ESTABLISHED"
                          : "c3's and c4's SYNs arrive at once and find room in the SYN queue (SYN_RCVD); c3's third handshake fills the accept queue, c4's finds it full: dropped, the server keeps c4 in SYN_RCVD while its client is ESTABLISHED");
  } else {
    tv_note_claim(&d->v, now(d), 0, "later seg c4 server R; later state c4 client CLOSED; no seg c4 server S. label=retransmission",
                  d->v.zh ? "abort_on_overflow = 1: c4 的第三次握手到达时队列已满, 服务器回 RST 并丢弃 c4 (不重传 SYN-ACK)"
                          : "abort_on_overflow = 1: c4's third handshake finds the queue full; the server answers with RST and forgets c4 (no SYN-ACK resent)");
  }
  run_until(d, now(d) + 100 * USTCP_MSEC);
  if (abort_on_overflow) {
    tv_note_claim(&d->v, now(d), 0, "later call client ECONNRESET",
                  d->v.zh ? "c4 的 connect() 已经返回 0: 客户端下一次 recv() 才发现连接被复位"
                          : "c4's connect() had already returned 0: the client learns of the reset at its next recv()");
    c_recv(d, x->c, fds[3]);
    listen_counters(d, x->s);
    int a[3];
    for (int i = 0; i < 3; i++) a[i] = c_accept(d, x->s, x->lfd);
    for (int i = 0; i < 4; i++) c_close(d, x->c, fds[i]);
    settle(d);
    for (int i = 0; i < 3; i++)
      if (a[i] >= 0) { c_recv(d, x->s, a[i]); c_close(d, x->s, a[i]); }
    settle(d);
    return;
  }
  tv_note_claim(&d->v, now(d), 0, "later seg c5 client S server=LISTEN; later seg c5 client S label=retransmission server=LISTEN",
                d->v.zh ? "c5 的 SYN 在队列满时到达: 被丢弃 (没有 SYN-ACK), 客户端重传"
                        : "c5's SYN arrives while the queue is full: dropped (no SYN-ACK); its client retransmits");
  fds[4] = c_connect(d, x->c, SRV, 80);
  run_until(d, 2500 * USTCP_MSEC);
  listen_counters(d, x->s);
  int a[5];
  a[0] = c_accept(d, x->s, x->lfd);
  a[1] = c_accept(d, x->s, x->lfd);
  tv_note_claim(&d->v, now(d), 1,
                "later seg c4 server S. label=retransmission; later seg c4 client . server=ESTABLISHED; "
                "later seg c5 client S server=SYN_RCVD; later state c5 server ESTABLISHED",
                d->v.zh ? "accept() 腾出了空位: c4 在下一次 SYN-ACK 重传后完成 (客户端再回 ACK), c5 在下一次 SYN 重传后完成"
                        : "accept() made room: c4 completes at its next SYN-ACK retransmission (its client ACKs it again), c5 at its next SYN");
  run_until(d, now(d) + 5 * USTCP_SEC);
  for (int i = 2; i < 5; i++) a[i] = c_accept(d, x->s, x->lfd);
  listen_counters(d, x->s);
  for (int i = 0; i < 5; i++) c_close(d, x->c, fds[i]);
  settle(d);
  for (int i = 0; i < 5; i++)
    if (a[i] >= 0) { c_recv(d, x->s, a[i]); c_close(d, x->s, a[i]); }
  settle(d);
}

static void sc_backlog_full(struct demo *d, struct env *x) { backlog_common(d, x, false); }
static void sc_abort_on_overflow(struct demo *d, struct env *x) { backlog_common(d, x, true); }

static void flood(struct demo *d, struct dhost *attacker, unsigned count)
{
  for (unsigned i = 0; i < count; i++) {
    uint64_t r = sim_rand(d->net);
    struct tcp_hdr h;
    memset(&h, 0, sizeof h);
    h.src_port = (uint16_t)(1024 + r % 60000);
    h.dst_port = 80;
    h.seq = (uint32_t)(r >> 16);
    h.flags = TCP_SYN;
    h.window = 64240;
    h.opts.present = TCP_OPT_HAS_MSS;
    h.opts.mss = d->v6 ? 1440 : 1460;
    uint32_t src = 0xc6120000u | (uint32_t)((r >> 40) & 0xffff);   /* 198.18.x.y */
    uint8_t pkt[128];
    int n;
    if (d->v6) {
      /* 2001:2::x:y, the same 16 random bits */
      uint8_t src6[16] = {0};
      memcpy(src6, FLOOD_NET6, sizeof FLOOD_NET6);
      src6[14] = (uint8_t)(src >> 8);
      src6[15] = (uint8_t)src;
      n = tcp_encode6(&h, NULL, 0, src6, d->h[1].ip6, pkt + IPV6_HDR_LEN, sizeof pkt - IPV6_HDR_LEN);
      struct ipv6_hdr ih;
      memset(&ih, 0, sizeof ih);
      ih.payload_len = (uint16_t)(n > 0 ? n : 0);
      ih.next_header = IPPROTO_TCP_;
      ih.hop_limit = 64;
      memcpy(ih.src, src6, 16);
      memcpy(ih.dst, d->h[1].ip6, 16);
      if (n > 0 && ipv6_encode(&ih, pkt, IPV6_HDR_LEN) == IPV6_HDR_LEN) n += IPV6_HDR_LEN;
      else n = -1;
    } else {
      n = tcp_packet_encode(&h, NULL, 0, src, SERVER_IP, (uint16_t)i, pkt, sizeof pkt);
    }
    if (n > 0) sim_send(d->net, attacker->id, pkt, (size_t)n);
  }
  d->flood_syns += count;
}

static void sc_syn_flood_common(struct demo *d, struct env *x, bool cookies)
{
  struct dhost *att = add_host(d, "attacker", ATTACKER_IP, -1);
  if (att) att->draw_col = 0;   /* its spoofed SYNs come from the left */
  x->lfd = c_listen(d, x->s, 80, 128);
  char claim[200];
  snprintf(claim, sizeof claim, "later count f client S %u", 3 * d->cfg.max_syn_backlog);
  tv_note_claim(&d->v, now(d), 1, claim, d->v.zh ? "攻击者发送 %u 个伪造源地址的 SYN (f1, f2, ...; 只画出前几个); max_syn_backlog = %u, syncookies = %s"
                                     : "an attacker sends %u SYNs from spoofed addresses (f1, f2, ...; the first few are drawn); max_syn_backlog = %u, syncookies = %s",
          3 * d->cfg.max_syn_backlog, d->cfg.max_syn_backlog, cookies ? "1" : "0");
  flood(d, att, 3 * d->cfg.max_syn_backlog);
  run_until(d, now(d) + 50 * USTCP_MSEC);
  struct ustcp_stats st;
  ustcp_get_stats(x->s->st, &st);
  /* every SYN-ACK so far: one per SYN queue child, one per cookie */
  snprintf(claim, sizeof claim, "count f server S. %llu",
           (unsigned long long)(d->cfg.max_syn_backlog + st.syncookies_sent));
  tv_note_claim(&d->v, now(d), 1, claim, d->v.zh ? "SYN 队列已满 (%u/%u 半连接); 已发送 SYN cookie: %llu, 丢弃的 SYN: %llu"
                                     : "SYN queue full (%u/%u half-open); SYN cookies sent: %llu, SYNs dropped: %llu",
          d->cfg.max_syn_backlog, d->cfg.max_syn_backlog, (unsigned long long)st.syncookies_sent,
          (unsigned long long)st.syn_queue_drops);
  x->cfd = c_connect(d, x->c, SRV, 80);
  if (cookies) {
    settle(d);
  } else {
    tv_note_claim(&d->v, now(d), 0,
                  "later seg c1 client S server=LISTEN label=retransmission; later seg c1 client S server=SYN_RCVD after=63; "
                  "no seg c1 client S server=SYN_RCVD before=63",
                  d->v.zh ? "没有 cookie: 合法客户端的 SYN 被丢弃, 直到半连接在 63 s 后过期"
                          : "without cookies the legitimate SYNs are dropped until the half-open entries expire at 63 s");
    run_until(d, now(d) + 70 * USTCP_SEC);
    settle(d);
  }
  x->sfd = c_accept(d, x->s, x->lfd);
  d->server_conn = x->sfd;
  if (x->sfd >= 0) {
    request_response(d, x);
    c_close(d, x->c, x->cfd);
    settle(d);
    c_recv(d, x->s, x->sfd);
    c_close(d, x->s, x->sfd);
    settle(d);
  }
  ustcp_get_stats(x->s->st, &st);
  /* a valid cookie: the SYN-ACK came from the listener itself (no child), and
   * the third handshake made the connection */
  tv_note_claim(&d->v, now(d), 1,
                st.syncookies_recv ? "seg c1 server S. server=LISTEN; seg c1 client . label=third server=ESTABLISHED"
                                   : "no seg c1 server S. server=LISTEN",
                d->v.zh ? "服务器: 收到的 cookie 有效 %llu 次, 内存 %llu 字节"
                        : "server: %llu valid cookie(s) came back; engine memory %llu bytes",
                (unsigned long long)st.syncookies_recv, (unsigned long long)st.mem_bytes);
}

static void sc_syn_flood(struct demo *d, struct env *x) { sc_syn_flood_common(d, x, true); }
static void sc_syn_flood_nocookies(struct demo *d, struct env *x) { sc_syn_flood_common(d, x, false); }

static void sc_data_loss(struct demo *d, struct env *x)
{
  open_conn(d, x);
  int one = 1;
  ustcp_setsockopt(x->c->st, x->cfd, USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY, &one, sizeof one);
  static char block[8 * 1000];
  memset(block, 'x', sizeof block);
  /* fast retransmit: well before the 200 ms minimum RTO */
  tv_note_claim(&d->v, now(d), 0,
                "later seg c1 client . label=LOST; later seg c1 server . label=duplicate; "
                "later seg c1 client . label=retransmission before=0.1",
                d->v.zh ? "第 3 个数据段丢失: 后面的段触发重复 ACK, 第三个重复 ACK 触发快速重传"
                        : "the 3rd data segment is lost: the later ones draw duplicate ACKs; the third duplicate triggers fast retransmit");
  add_drop(d, "client:data#3");
  c_send(d, x->c, x->cfd, block, sizeof block);
  settle(d);
  c_recv(d, x->s, x->sfd);
  /* A rule counts from when it is added: the 2000 bytes go as two data
   * segments, the 2nd is the tail. (It was data#10, which never came: the note
   * was false of its own run.) */
  tv_note_claim(&d->v, now(d), 0,
                "later seg c1 client P. label=LOST; later no seg c1 server . label=duplicate; "
                "later seg c1 client P. label=retransmission after=0.2",
                d->v.zh ? "最后一个数据段丢失: 没有重复 ACK; 在重传超时 (RTO) 到期之时, 尾部丢失探测 (TLP, RFC 8985) 重传它"
                        : "the last segment of a burst is lost: no duplicate ACKs; when the retransmission timeout (RTO) would fire, a tail loss probe (RFC 8985, as Linux) resends it");
  add_drop(d, "client:data#2");
  c_send(d, x->c, x->cfd, block, 2000);
  settle(d);
  c_recv(d, x->s, x->sfd);
  struct ustcp_tcp_info ti;
  ustcp_get_info(x->c->st, x->cfd, &ti);
  char claim[96];
  snprintf(claim, sizeof claim, "count c1 client * %llu label=retransmission",
           (unsigned long long)ti.retrans_segs);
  tv_note_claim(&d->v, now(d), 0, claim,
                "TCP_INFO: srtt %.1f ms, rto %.0f ms, cwnd %u, retransmissions %llu (fast %llu, timeouts %llu)",
                (double)ti.rtt_us / 1000.0, (double)ti.rto_us / 1000.0, ti.snd_cwnd,
                (unsigned long long)ti.retrans_segs, (unsigned long long)ti.fast_retrans,
                (unsigned long long)ti.rto_expirations);
  c_close(d, x->c, x->cfd);
  settle(d);
  c_recv(d, x->s, x->sfd);
  c_close(d, x->s, x->sfd);
  settle(d);
}

struct scenario {
  const char *name;
  const char *about;
  void (*run)(struct demo *d, struct env *x);
  const char *claim;   /* what the title claims (tests/sh/demo_claims.sh), or NULL */
};

static const struct scenario scenarios[] = {
  {"normal", "handshake, request and response, the client closes first (four waves), TIME_WAIT", sc_normal, 
   "seg c1 client S client=SYN_SENT server=SYN_RCVD; seg c1 client F. label=first client=FIN_WAIT_1 server=CLOSE_WAIT; seg c1 server F. label=third server=LAST_ACK client=TIME_WAIT; state c1 client CLOSED"},
  {"server-closes-first", "the server closes first: it is the one in TIME_WAIT", sc_server_first, 
   "seg c1 server F. label=first; state c1 server TIME_WAIT; no state c1 client TIME_WAIT"},
  {"three-way-close", "the server closes as soon as it reads EOF: its FIN rides on the ACK (FIN_WAIT_1 -> TIME_WAIT)", sc_three_way_close, 
   "seg c1 server F. label=second+third client=TIME_WAIT; no state c1 client FIN_WAIT_2"},
  {"simultaneous-open", "both ends connect() to each other at once, no listen(): SYN_SENT -> SYN_RCVD -> ESTABLISHED", sc_simultaneous_open, 
   "seg c1 server S label=simultaneous; state c1 client SYN_RCVD; state c1 server SYN_RCVD; state c1 client ESTABLISHED; state c1 server ESTABLISHED"},
  {"self-connect", "a socket bound to 10.0.0.1:6000 connects to 10.0.0.1:6000", sc_self_connect, 
   "state c1 client ESTABLISHED; state c1 client TIME_WAIT"},
  {"simultaneous-close", "both ends close at once: FIN_WAIT_1 -> CLOSING -> TIME_WAIT on both", sc_simultaneous_close, 
   "state c1 client CLOSING; state c1 server CLOSING; state c1 client TIME_WAIT; state c1 server TIME_WAIT"},
  {"half-close", "the client shuts down writing and keeps receiving in FIN_WAIT_2", sc_half_close, 
   "seg c1 server P. client=FIN_WAIT_2; state c1 client FIN_WAIT_2"},
  {"refused", "connect to a port nobody listens on: RST|ACK, ECONNREFUSED", sc_refused, 
   "seg c1 server R. client=CLOSED; call client ECONNREFUSED"},
  {"syn-timeout", "every SYN is lost: retransmissions at 1, 3, 7, 15, 31, 63 s, ETIMEDOUT at 127 s", sc_syn_timeout, 
   "count c1 client S 7; seg c1 client S label=retransmission after=63 before=63.1; no seg c1 server S.; call client ETIMEDOUT"},
  {"synack-lost", "the second handshake is lost: both ends retransmit", sc_synack_lost, 
   "seg c1 server S. label=LOST; seg c1 server S. label=retransmission; seg c1 client S label=retransmission"},
  {"lost-fin1", "the first wave (client FIN) is lost and retransmitted", sc_lost_fin1, 
   "seg c1 client F. label=LOST; seg c1 client F. label=retransmission server=CLOSE_WAIT"},
  {"lost-ack2", "the second wave (ACK of the FIN) is lost: the FIN is retransmitted", sc_lost_ack2, 
   "seg c1 server . label=LOST; seg c1 client F. label=retransmission"},
  {"lost-fin3", "the third wave (server FIN) is lost: LAST_ACK retransmits it", sc_lost_fin3, 
   "seg c1 server F. label=LOST; seg c1 server F. label=retransmission server=LAST_ACK"},
  {"lost-ack4", "the fourth wave (last ACK) is lost: TIME_WAIT re-ACKs the retransmitted FIN", sc_lost_ack4, 
   "seg c1 client . label=LOST; seg c1 server F. label=retransmission; seg c1 client . label=again client=TIME_WAIT"},
  {"orphan-fin-wait-2", "the server never closes: the client leaves FIN_WAIT_2 after fin_timeout; CLOSE_WAIT stays", sc_orphan_fin_wait_2, 
   "state c1 client FIN_WAIT_2; state c1 client CLOSED; no seg c1 server F. before=60"},
  {"time-wait", "a new connect() on the same 4-tuple during TIME_WAIT fails; after 2MSL it works", sc_time_wait, 
   "call client EADDRNOTAVAIL; state c2 client ESTABLISHED; state c2 server ESTABLISHED"},
  {"backlog-full", "backlog 2, accept() late: a SYN is dropped while the accept queue is full; a third handshake that finds it full is dropped, the SYN-ACK resent until accept() makes room", sc_backlog_full,
   "seg c5 client S server=LISTEN; seg c4 client . client=ESTABLISHED server=SYN_RCVD; seg c4 server S. label=retransmission; state c4 server ESTABLISHED; state c5 server ESTABLISHED"},
  {"abort-on-overflow", "backlog 2 with abort_on_overflow = 1: the third handshake that finds the accept queue full is answered with RST", sc_abort_on_overflow,
   "seg c4 server R; call client ECONNRESET"},
  {"syn-flood", "spoofed SYNs fill the SYN queue; SYN cookies let a legitimate client in", sc_syn_flood,
   "later count f client S 192; seg c1 server S. server=LISTEN; state c1 server ESTABLISHED"},
  {"syn-flood-nocookies", "the same flood with syncookies = 0: the client waits until half-open entries expire", sc_syn_flood_nocookies,
   "no seg c1 server S. server=LISTEN; seg c1 client S server=SYN_RCVD after=63; no seg c1 client S server=SYN_RCVD before=63"},
  {"data-loss", "a lost data segment: duplicate ACKs and fast retransmit; then a lost tail segment: tail loss probe at the RTO", sc_data_loss,
   "seg c1 client . label=retransmission before=0.1; seg c1 client P. label=retransmission after=0.2"},
};
#define NSCEN (sizeof scenarios / sizeof scenarios[0])

static void usage(FILE *f)
{
  fprintf(f,
    "usage: ustcp demo [OPTIONS]\n"
    "\n"
    "Runs a client and a server (the real ustcp engine) on a simulated network in\n"
    "virtual time and draws every segment, socket call and state as a sequence\n"
    "diagram.\n"
    "\n"
    "options:\n"
    "  --scenario NAME   which conversation to run (default: normal); see --list\n"
    "                    example: ustcp demo --scenario lost-fin1\n"
    "  --list            name and describe every scenario\n"
    "  --drop SPEC       drop chosen segments: [HOST:]KIND[#N][xCOUNT|+], HOST is\n"
    "                    client or server, KIND one of any syn syn-ack ack data fin rst\n"
    "                    example: ustcp demo --drop client:fin#1   (may repeat)\n"
    "  --loss P          random loss probability on every link, 0..1 (example: --loss 0.1)\n"
    "  --delay MS        one-way delay in milliseconds (default 5; example: --delay 50)\n"
    "  --seed N          seed of the network's randomness (default 1; example: --seed 7)\n"
    "  --ipv6            the same conversation over IPv6: client fd00::1, server fd00::2\n"
    "                    (MSS 1440 on the 1500-byte MTU instead of 1460; example:\n"
    "                    ustcp demo --ipv6 --scenario lost-fin1)\n"
    "  --lang en|zh      labels in English (default) or Chinese (example: --lang zh)\n"
    "  --pcap FILE       write the capture for Wireshark/tshark (example: --pcap demo.pcap)\n"
    "  --svg FILE        write the diagram as an SVG picture (example: --svg demo.svg)\n"
    "  --tsg FILE        write the time-sequence graph of the data as SVG (sequence\n"
    "                    numbers over time, ACK and window lines, as Wireshark's\n"
    "                    tcptrace graph; example: --scenario data-loss --tsg g.svg)\n"
    "  --json            print the events as JSON instead of the diagram\n"
    "  --web [ADDR:]PORT serve a page to play with: pick a scenario, click a segment\n"
    "                    to lose it, step through the events, en/zh, pcap/SVG\n"
    "                    (address 127.0.0.1 unless given; example: --web 8080)\n"
    "  --verbose         draw every segment of a flood (by default only those of its first\n"
    "                    %d spoofed connections, the others counted on one line)\n"
    "  --color, --no-color  force colour on or off (default: on for a terminal)\n"
    "  -h, --help        this text\n", TV_FLOOD_SHOWN);
}

static bool parse_double(const char *s, double *out)
{
  char *end;
  double v = strtod(s, &end);
  if (!*s || *end) return false;
  *out = v;
  return true;
}

/* Runs one scenario of rq; writes it to out as text (coloured if color), JSON or
 * SVG, the capture to pcap_path when not NULL and the SVG also to svg_out when not
 * NULL. Returns 0, 1 (cannot write) or 2 (a bad request: reason in err). Used by
 * the command line and by the web page (tools/demo_web.c). */
int demo_run(struct demo_req *rq, FILE *out, enum demo_fmt fmt, bool color,
             const char *pcap_path, FILE *svg_out, char *err, size_t errcap)
{
  const struct scenario *sc = NULL;
  for (size_t k = 0; k < NSCEN; k++)
    if (!strcmp(scenarios[k].name, rq->scen)) sc = &scenarios[k];
  if (!sc) {
    snprintf(err, errcap, "unknown scenario '%s' (see ustcp demo --list)", rq->scen);
    return 2;
  }
  static struct demo d;   /* large; one run at a time */
  memset(&d, 0, sizeof d);
  d.server_conn = -1;
  d.delay_ms = rq->delay_ms;
  d.loss = rq->loss;
  d.seed = rq->seed;
  d.v6 = rq->ipv6;
  ustcp_config_default(&d.cfg);
  if (!strcmp(sc->name, "abort-on-overflow")) d.cfg.abort_on_overflow = 1;
  if (!strcmp(sc->name, "syn-flood") || !strcmp(sc->name, "syn-flood-nocookies")) {
    /* A small SYN queue keeps the demo short; the mechanism is the same at 2048. */
    d.cfg.max_syn_backlog = 64;
    d.cfg.syncookies = !strcmp(sc->name, "syn-flood") ? 1 : 0;
  }
  tv_init(&d.v);
  d.v.verbose = rq->verbose;
  d.v.title = sc->name;
  d.v.about = sc->about;
  d.v.title_claim = sc->claim;
  /* The flood's spoofed sources (198.18.0.0/16): summarised, not drawn one by one. */
  d.v.flood_net = 0xc6120000u;
  d.v.flood_mask = 0xffff0000u;
  memcpy(d.v.flood6, FLOOD_NET6, sizeof FLOOD_NET6);   /* --ipv6: 2001:2::/48 */
  d.v.flood6_set = d.v6;
  d.v.zh = rq->lang && !strcmp(rq->lang, "zh");
  d.v.color = color;
  d.net = sim_new(d.seed);
  if (!d.net) { snprintf(err, errcap, "out of memory"); tv_free(&d.v); return 1; }
  if (pcap_path) {
    d.pcap = pcap_writer_open(pcap_path);
    if (!d.pcap) {
      snprintf(err, errcap, "cannot write %s: %s", pcap_path, strerror(errno));
      sim_free(d.net);
      tv_free(&d.v);
      return 1;
    }
  }
  sim_set_tap(d.net, tap, &d);
  struct env x = {0};
  x.c = add_host(&d, "client", CLIENT_IP, 0);
  x.s = add_host(&d, "server", SERVER_IP, 1);
  if (!x.c || !x.s) {
    snprintf(err, errcap, "cannot set up the simulated hosts");
    if (d.pcap) pcap_writer_close(d.pcap);
    for (int i = 0; i < d.nhosts; i++) ustcp_stack_free(d.h[i].st);
    sim_free(d.net);
    tv_free(&d.v);
    return 1;
  }
  struct sim_link_cfg lc = {0};
  lc.delay_us = (uint64_t)(d.delay_ms * 1000.0);
  lc.loss = d.loss;
  sim_set_all_links(d.net, &lc);
  int rc = 0;
  for (int i = 0; i < rq->ndrops; i++)
    if (add_drop(&d, rq->drops[i]) != 0) {
      snprintf(err, errcap, "%s", d.err);
      rc = 2;
      goto out;
    }
  char ca[56], sa[56];
  snprintf(d.v.name[0], sizeof d.v.name[0], "client %s", tv_addr_str(&d.v, x.c->aid, ca, sizeof ca));
  snprintf(d.v.name[1], sizeof d.v.name[1], "server %s", tv_addr_str(&d.v, x.s->aid, sa, sizeof sa));
  /* The scenario's words name IPv4 endpoints; with --ipv6 they name the run's. */
  static char about[256];
  snprintf(about, sizeof about, "%s", sc->about);
  if (d.v6) {
    char ep[64], *p;
    tv_endpoint_str(&d.v, x.c->aid, 6000, ep, sizeof ep);
    while ((p = strstr(about, "10.0.0.1:6000")) != NULL) {
      char rest[256];
      snprintf(rest, sizeof rest, "%s", p + strlen("10.0.0.1:6000"));
      snprintf(p, sizeof about - (size_t)(p - about), "%s%s", ep, rest);
    }
  }
  d.v.about = about;
  if (!strcmp(sc->name, "self-connect")) {
    d.self_connect = true;
    ustcp_set_capture_cb(x.c->st, capture, x.c);
    tv_endpoint_str(&d.v, x.c->aid, 6000, ca, sizeof ca);
    snprintf(d.v.name[0], sizeof d.v.name[0], "socket %s", ca);
    snprintf(d.v.name[1], sizeof d.v.name[1], "(the same socket)");
  }
  if (fmt == DEMO_TEXT)
    fprintf(out, "%s%s%s: %s\n\n", d.v.color ? "\033[1m" : "", sc->name, d.v.color ? "\033[0m" : "", about);
  sc->run(&d, &x);
  tv_label(&d.v);
  if (fmt == DEMO_JSON) tv_render_json(&d.v, out);
  else if (fmt == DEMO_SVG) tv_render_svg(&d.v, out);
  else tv_render_text(&d.v, out);
  if (svg_out) tv_render_svg(&d.v, svg_out);
  if (rq->tsg) rq->tsg_written = tv_render_tsg(&d.v, rq->tsg) == 0;
out:
  if (d.pcap) pcap_writer_close(d.pcap);
  for (int i = 0; i < d.nhosts; i++) ustcp_stack_free(d.h[i].st);
  sim_free(d.net);
  tv_free(&d.v);
  return rc;
}

void demo_list_json(FILE *out)
{
  fprintf(out, "[");
  for (size_t k = 0; k < NSCEN; k++) {
    fprintf(out, "%s{\"name\":\"%s\",\"about\":\"", k ? "," : "", scenarios[k].name);
    for (const char *c = scenarios[k].about; *c; c++) {
      if (*c == '"' || *c == '\\') fputc('\\', out);
      fputc(*c, out);
    }
    fprintf(out, "\"}");
  }
  fprintf(out, "]\n");
}

int demo_main(int argc, char **argv)
{
  struct demo_req rq;
  memset(&rq, 0, sizeof rq);
  rq.scen = "normal";
  rq.lang = "en";
  rq.delay_ms = 5;
  rq.seed = 1;
  const char *pcap_path = NULL, *svg_path = NULL, *web = NULL, *tsg_path = NULL;
  bool json = false;
  int color = -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *val = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VAL() do { if (!val) { fprintf(stderr, "ustcp demo: %s needs a value (see ustcp demo --help)\n", a); return 2; } i++; } while (0)
    if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
    else if (!strcmp(a, "--list")) {
      for (size_t k = 0; k < NSCEN; k++) printf("  %-20s %s\n", scenarios[k].name, scenarios[k].about);
      return 0;
    }
    else if (!strcmp(a, "--scenario")) { NEED_VAL(); rq.scen = val; }
    else if (!strcmp(a, "--drop")) {
      NEED_VAL();
      if (rq.ndrops == MAX_DROPS) { fprintf(stderr, "ustcp demo: at most %d --drop rules\n", MAX_DROPS); return 2; }
      rq.drops[rq.ndrops++] = val;
    }
    else if (!strcmp(a, "--loss")) {
      NEED_VAL();
      if (!parse_double(val, &rq.loss) || rq.loss < 0 || rq.loss > 1) {
        fprintf(stderr, "ustcp demo: --loss must be a probability between 0 and 1, got '%s'\n", val);
        return 2;
      }
    }
    else if (!strcmp(a, "--delay")) {
      NEED_VAL();
      if (!parse_double(val, &rq.delay_ms) || rq.delay_ms < 0 || rq.delay_ms > 10000) {
        fprintf(stderr, "ustcp demo: --delay must be milliseconds between 0 and 10000, got '%s'\n", val);
        return 2;
      }
    }
    else if (!strcmp(a, "--seed")) {
      NEED_VAL();
      char *end;
      rq.seed = strtoull(val, &end, 10);
      if (!*val || *end) { fprintf(stderr, "ustcp demo: --seed must be a number, got '%s'\n", val); return 2; }
    }
    else if (!strcmp(a, "--lang")) {
      NEED_VAL();
      if (strcmp(val, "en") && strcmp(val, "zh")) {
        fprintf(stderr, "ustcp demo: --lang must be en or zh, got '%s'\n", val);
        return 2;
      }
      rq.lang = val;
    }
    else if (!strcmp(a, "--pcap")) { NEED_VAL(); pcap_path = val; }
    else if (!strcmp(a, "--svg")) { NEED_VAL(); svg_path = val; }
    else if (!strcmp(a, "--tsg")) { NEED_VAL(); tsg_path = val; }
    else if (!strcmp(a, "--web")) { NEED_VAL(); web = val; }
    else if (!strcmp(a, "--json")) json = true;
    else if (!strcmp(a, "--verbose")) rq.verbose = true;
    else if (!strcmp(a, "--ipv6")) rq.ipv6 = true;
    else if (!strcmp(a, "--color")) color = 1;
    else if (!strcmp(a, "--no-color")) color = 0;
    else {
      fprintf(stderr, "ustcp demo: unknown option '%s' (see ustcp demo --help)\n", a);
      return 2;
    }
#undef NEED_VAL
  }
  if (web) return demo_web_main(web);
  FILE *svg = NULL;
  if (svg_path && !(svg = fopen(svg_path, "w"))) {
    fprintf(stderr, "ustcp demo: cannot write %s: %s\n", svg_path, strerror(errno));
    return 1;
  }
  if (tsg_path && !(rq.tsg = fopen(tsg_path, "w"))) {
    fprintf(stderr, "ustcp demo: cannot write %s: %s\n", tsg_path, strerror(errno));
    if (svg) fclose(svg);
    return 1;
  }
  char err[200];
  int rc = demo_run(&rq, stdout, json ? DEMO_JSON : DEMO_TEXT,
                    color == -1 ? isatty(STDOUT_FILENO) : color, pcap_path, svg, err, sizeof err);
  if (rq.tsg) {
    fclose(rq.tsg);
    if (rc == 0 && !rq.tsg_written) {
      fprintf(stderr, "ustcp demo: --tsg: no data segments in this run, no graph written\n");
      remove(tsg_path);
    }
  }
  if (svg && fclose(svg) != 0 && rc == 0) {
    snprintf(err, sizeof err, "cannot write %s: %s", svg_path, strerror(errno));
    rc = 1;
  }
  if (rc) fprintf(stderr, "ustcp demo: %s\n", err);
  if (rc == 2 && svg_path) remove(svg_path);
  return rc;
}
