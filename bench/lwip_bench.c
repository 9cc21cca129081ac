/* bench/lwip_bench: lwIP's side of `make bench` over TUN (bench/run.sh), built
 * only when Debian's liblwip-dev is installed (lwIP 2.1.3, the GNU Hurd's
 * configuration: NO_SYS=0 with core locking, TCP_MSS 1460, TCP_WND and
 * TCP_SND_BUF 64 KiB, checksums computed and checked in software).
 *
 *   tun-serve  lwIP on a TUN device (src/link/tun.c, one read()/write() per
 *              packet, as ustcp_bench tun-serve without --vnet), serving what
 *              kernel_bench serve serves: 5001 sink (payload checked against
 *              its stream offset), 5002 source (8-byte count, then that many
 *              pattern bytes, then close), 5100-5115 and 5200-5215 echo (64-byte
 *              messages, checked). Runs until SIGTERM.
 *
 * lwIP is one global stack per process, so it cannot play both ends of the
 * in-memory bulk of ustcp_bench; its rows are the TUN rows, against the same
 * kernel client. The main thread reads the TUN device and feeds lwIP with the
 * core lock held (LOCK_TCPIP_CORE); lwIP's own tcpip thread runs its timers.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/tcp.h"
#include "lwip/tcpip.h"

#include "link/tun.h"
#include "bench_util.h"

static int tun_fd = -1;
static struct netif nif;
static volatile sig_atomic_t stop;
static uint64_t corrupt, tx_errors;

static void on_term(int sig) { (void)sig; stop = 1; }

static err_t nif_output(struct netif *n, struct pbuf *p, const ip4_addr_t *dst)
{
  (void)n; (void)dst;
  static uint8_t buf[65536];   /* tot_len is a u16_t: any packet fits */
  const uint8_t *pkt = p->payload;
  if (p->next) {
    pbuf_copy_partial(p, buf, p->tot_len, 0);
    pkt = buf;
  }
  if (tun_write(tun_fd, pkt, p->tot_len) != 0) tx_errors++;
  return ERR_OK;
}

static err_t nif_init(struct netif *n)
{
  n->name[0] = 't';
  n->name[1] = 'n';
  n->output = nif_output;
  n->mtu = 1500;
  n->flags = NETIF_FLAG_LINK_UP;
  return ERR_OK;
}

static void tun_in(void *ctx, const uint8_t *pkt, size_t len)
{
  (void)ctx;
  struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
  if (!p) return;
  memcpy(p->payload, pkt, len);
  if (ip4_input(p, &nif) != ERR_OK) pbuf_free(p);
}

/* ---- the services ---- */
enum { L_SINK, L_SOURCE, L_ECHO };
struct conn {
  int kind;
  uint64_t off;        /* stream offset of the next byte received (sink, echo) or queued (source) */
  uint64_t left;       /* source: bytes still to queue */
  uint32_t got;        /* echo: bytes of the current message; source: request bytes */
  uint8_t req[8];
};

static bool echo_ok(uint64_t off, const uint8_t *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (p[i] != bench_pattern[(off + i) % 64]) return false;
  return true;
}

static void conn_done(struct tcp_pcb *pcb, struct conn *c)
{
  tcp_arg(pcb, NULL);
  tcp_recv(pcb, NULL);
  tcp_sent(pcb, NULL);
  tcp_err(pcb, NULL);
  free(c);
  if (tcp_close(pcb) != ERR_OK) tcp_abort(pcb);
}

static void source_push(struct tcp_pcb *pcb, struct conn *c)
{
  while (c->left) {
    u16_t room = tcp_sndbuf(pcb);
    if (room == 0) break;
    size_t n = c->left < room ? (size_t)c->left : room;
    if (n > 65535) n = 65535;
    /* No copy flag: lwIP points at the pattern, which never changes. */
    if (tcp_write(pcb, bench_pattern_at(c->off), (u16_t)n, c->left > n ? TCP_WRITE_FLAG_MORE : 0) != ERR_OK)
      break;
    c->off += n;
    c->left -= n;
  }
  tcp_output(pcb);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
  (void)len;
  struct conn *c = arg;
  if (!c) return ERR_OK;
  source_push(pcb, c);
  if (!c->left && c->got == 8) conn_done(pcb, c);
  return ERR_OK;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
  struct conn *c = arg;
  (void)err;
  if (!c) {
    if (p) pbuf_free(p);
    return ERR_OK;
  }
  if (!p) {                         /* EOF */
    conn_done(pcb, c);
    return ERR_OK;
  }
  u16_t total = p->tot_len;
  for (struct pbuf *q = p; q; q = q->next) {
    const uint8_t *d = q->payload;
    size_t n = q->len;
    if (c->kind == L_SINK) {
      if (!bench_verify(c->off, d, n)) goto bad;
      c->off += n;
    } else if (c->kind == L_ECHO) {
      if (!echo_ok(c->off, d, n)) goto bad;
      c->off += n;
      for (c->got += (uint32_t)n; c->got >= 64; c->got -= 64)
        tcp_write(pcb, bench_pattern_at(0), 64, 0);
    } else {                        /* source: the 8-byte request */
      for (size_t i = 0; i < n && c->got < 8; i++) c->req[c->got++] = d[i];
      if (c->got == 8 && !c->left && !c->off)
        for (int b = 0; b < 8; b++) c->left = c->left << 8 | c->req[b];
    }
  }
  tcp_recved(pcb, total);
  pbuf_free(p);
  if (c->kind == L_ECHO) tcp_output(pcb);
  if (c->kind == L_SOURCE && c->got == 8) {
    source_push(pcb, c);
    if (!c->left) conn_done(pcb, c);
  }
  return ERR_OK;
bad:
  if (corrupt++ < 5) fprintf(stderr, "lwip_bench: PAYLOAD MISMATCH at offset %llu\n",
                             (unsigned long long)c->off);
  pbuf_free(p);
  tcp_arg(pcb, NULL);
  free(c);
  tcp_abort(pcb);
  return ERR_ABRT;
}

static void on_err(void *arg, err_t err)
{
  (void)err;
  free(arg);   /* the pcb is already gone */
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
  if (err != ERR_OK || !pcb) return ERR_VAL;
  struct conn *c = calloc(1, sizeof *c);
  if (!c) return ERR_MEM;
  c->kind = (int)(intptr_t)arg;
  tcp_arg(pcb, c);
  tcp_recv(pcb, on_recv);
  tcp_sent(pcb, on_sent);
  tcp_err(pcb, on_err);
  if (c->kind == L_ECHO) tcp_nagle_disable(pcb);
  return ERR_OK;
}

static void listen_on(uint16_t port, int kind)
{
  struct tcp_pcb *pcb = tcp_new();
  if (!pcb || tcp_bind(pcb, IP_ADDR_ANY, port) != ERR_OK) bench_die("lwip: bind");
  pcb = tcp_listen_with_backlog(pcb, 255);
  if (!pcb) bench_die("lwip: listen");
  tcp_arg(pcb, (void *)(intptr_t)kind);
  tcp_accept(pcb, on_accept);
}

int main(int argc, char **argv)
{
  const char *ns = NULL, *tun = "lwtun0";
  uint32_t addr = 0, peer = 0;
  static const struct option opts[] = {
    {"ns", required_argument, 0, 'N'}, {"tun", required_argument, 0, 'T'},
    {"addr", required_argument, 0, 'A'}, {"peer", required_argument, 0, 'P'},
    {"mtu", required_argument, 0, 'm'}, {0, 0, 0, 0}};
  if (argc < 2 || strcmp(argv[1], "tun-serve") != 0) {
    fprintf(stderr, "usage: lwip_bench tun-serve --ns NS --tun IF --addr IP --peer IP [--mtu 1500]\n");
    return 2;
  }
  optind = 2;
  int ch;
  while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    struct in_addr a;
    switch (ch) {
    case 'N': ns = optarg; break;
    case 'T': tun = optarg; break;
    case 'A': if (inet_pton(AF_INET, optarg, &a) == 1) addr = ntohl(a.s_addr); break;
    case 'P': if (inet_pton(AF_INET, optarg, &a) == 1) peer = ntohl(a.s_addr); break;
    case 'm': break;   /* MTU 1500 only: lwIP's TCP_MSS is fixed at 1460 */
    default: return 2;
    }
  }
  if (!addr || !peer) return 2;
  bench_pattern_init();
  if (ns) bench_enter_netns(ns);
  char ifname[IFNAMSIZ], err[256] = "";
  tun_fd = tun_open(tun, ifname, err, sizeof err);
  if (tun_fd < 0 || tun_configure(ifname, peer, addr, 1500, err, sizeof err) < 0) {
    fprintf(stderr, "lwip_bench: %s\n", err);
    return 1;
  }
  tcpip_init(NULL, NULL);
  LOCK_TCPIP_CORE();
  ip4_addr_t ip, mask, gw;
  IP4_ADDR(&ip, addr >> 24, (addr >> 16) & 255, (addr >> 8) & 255, addr & 255);
  IP4_ADDR(&mask, 255, 255, 255, 255);
  IP4_ADDR(&gw, peer >> 24, (peer >> 16) & 255, (peer >> 8) & 255, peer & 255);
  if (!netif_add(&nif, &ip, &mask, &gw, NULL, nif_init, ip4_input)) bench_die("lwip: netif_add");
  netif_set_default(&nif);
  netif_set_up(&nif);
  netif_set_link_up(&nif);
  listen_on(5001, L_SINK);
  listen_on(5002, L_SOURCE);
  for (uint16_t i = 0; i < 16; i++) {
    listen_on((uint16_t)(5100 + i), L_ECHO);
    listen_on((uint16_t)(5200 + i), L_ECHO);
  }
  UNLOCK_TCPIP_CORE();
  signal(SIGTERM, on_term);
  signal(SIGINT, on_term);
  fprintf(stderr, "lwip_bench tun-serve: lwIP %s on %s\n", LWIP_VERSION_STRING, ifname);
  while (!stop) {
    struct pollfd pfd = {tun_fd, POLLIN, 0};
    int n = poll(&pfd, 1, 100);
    if (n <= 0) continue;
    LOCK_TCPIP_CORE();
    int r = tun_read_batch(tun_fd, 256, tun_in, NULL);
    UNLOCK_TCPIP_CORE();
    if (r < 0) break;
  }
  fprintf(stderr, "lwip_bench: %llu payload mismatches, %llu write errors\n",
          (unsigned long long)corrupt, (unsigned long long)tx_errors);
  return 0;
}
