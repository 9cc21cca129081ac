/* Shared parts of the network subcommands: see net.h. */
#include "net.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "tools.h"
#include "wire/wire.h"

const char net_opts_help[] =
  "device and stack options (all network commands):\n"
  "  --tun NAME        TUN device to create or attach to (default ustcp0)\n"
  "  --tap NAME        a TAP device instead: Ethernet frames, ARP (ustcp is a host\n"
  "                    on the link; the kernel side gets --peer/--prefix-len)\n"
  "  --packet IFACE    an existing Ethernet interface instead (a veth end, a NIC),\n"
  "                    through AF_PACKET (TPACKET_V3 ring) with the interface's MAC;\n"
  "                    the kernel must have no address in ustcp's subnet on it\n"
  "  --prefix-len N    with --tap/--packet: the link's prefix length (default 24)\n"
  "  --gateway A.B.C.D with --tap/--packet: next hop for addresses off the prefix\n"
  "  --gateway IPV6    with --tap/--packet: IPv6 default router (e.g. fe80::1)\n"
  "  --addr A.B.C.D    ustcp's own address (default 10.7.0.2)\n"
  "  --peer A.B.C.D    the kernel side's address (default 10.7.0.1)\n"
  "  --addr IPV6[/LEN] also an IPv6 address for ustcp, e.g. --addr fd00::2/64 (LEN:\n"
  "                    the on-link prefix, default 64; servers then listen on [::],\n"
  "                    IPv4 as ::ffff:a.b.c.d). With --tap/--packet ustcp is an IPv6\n"
  "                    host: neighbour discovery (RFC 4861), a link-local address\n"
  "                    from its MAC, and DAD (RFC 4862) before it starts\n"
  "  --peer IPV6       the kernel side's IPv6 address, added as IPV6/LEN (configure)\n"
  "  --no-dad          with --tap/--packet: skip duplicate address detection\n"
  "  --no-configure    use the device as it is: no address, MTU or up/down changes\n"
  "                    (for a device made beforehand, e.g. ip tuntap add ... user $USER)\n"
  "  --mtu N           link MTU (default 1500)\n"
  "  --ctl PATH        control socket for `ustcp stat` (default /run/ustcp/NAME.sock)\n"
  "  --no-ctl          no control socket\n"
  "  --pcap FILE       write every packet of the stack to FILE (pcap)\n"
  "  --offload         TUN offloads (IFF_VNET_HDR, TUN_F_CSUM|TSO4|TSO6): the kernel\n"
  "                    sends up to 64 KiB per read, checksums left to ustcp; ustcp\n"
  "                    sends up to 64 KiB per write for the kernel to segment\n"
  "                    (GSO), checksums left to the kernel (not with --impair);\n"
  "                    the frames of one event go in one system call (io_uring,\n"
  "                    where the kernel allows it)\n"
  "  --no-batch        with --offload: one writev(2) per frame, no io_uring\n"
  "  --batch-reads     with --offload: read up to 16 frames per system call too\n"
  "                    (io_uring; slower than read(2) on this path in our runs)\n"
  "  --time-wait SECS  TIME_WAIT length (default 60, as Linux)\n"
  "  --sndbuf BYTES    socket send buffer (default 1048576)\n"
  "  --rcvbuf BYTES    socket receive buffer (default 1048576)\n"
  "  --ecn N           ECN (RFC 3168), as Linux's net.ipv4.tcp_ecn: 0 never, 1 ask\n"
  "                    for it and accept it, 2 accept it when asked (default)\n"
  "  --seed N          seed for ISNs, ports and --impair (default: random)\n"
  "  --impair SPEC     netem-like faults done by ustcp on both directions, e.g.\n"
  "                    loss=2%,reorder=5%,delay=5ms,corrupt=1%,duplicate=1%\n"
  "                    (for tests without sch_netem; corrupt flips one bit)\n"
  "  -v, --verbose     log connections (twice: every state change) to stderr\n";

void net_opts_init(struct net_opts *o)
{
  memset(o, 0, sizeof *o);
  ustcp_loop_config_default(&o->lc);
  o->lc.configure = true;
  ustcp_config_default(&o->cfg);
  /* Tools move bulk data: larger buffers than Linux's initial ones (Linux grows
   * them by autotuning; ustcp sizes them once). */
  o->cfg.wmem_default = 1u << 20;
  o->cfg.rmem_default = 1u << 20;
  o->lc.stack_cfg = &o->cfg;
}

int net_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
  if (!s || !*s) return -1;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || s[0] == '-' || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int net_parse_hostport(const char *s, struct ustcp_addr *out)
{
  char host[64];
  memset(out, 0, sizeof *out);
  const char *colon = strrchr(s, ':');
  if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
  uint64_t port;
  if (net_parse_u64(colon + 1, 1, 65535, &port) != 0) return -1;
  out->port = (uint16_t)port;
  if (s[0] == '[') {
    /* [IPv6]:PORT (RFC 3986 §3.2.2's brackets) */
    if (colon == s || colon[-1] != ']' || (size_t)(colon - s - 2) >= sizeof host) return -1;
    memcpy(host, s + 1, (size_t)(colon - s - 2));
    host[colon - s - 2] = 0;
    return net_parse_ip6(host, out->ip6) == 0 ? (out->family = USTCP_AF_INET6, 0) : -1;
  }
  memcpy(host, s, (size_t)(colon - s));
  host[colon - s] = 0;
  return ipv4_parse(host, &out->ip) == 0 ? 0 : -1;
}

int net_parse_ip6(const char *s, uint8_t out[16])
{
  struct in6_addr a;
  if (inet_pton(AF_INET6, s, &a) != 1) return -1;
  memcpy(out, &a, 16);
  return 0;
}

const char *net_addr_str(const struct ustcp_addr *a, char *buf, size_t cap)
{
  if (a->family == USTCP_AF_INET6) {
    char h[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, a->ip6, h, sizeof h);
    snprintf(buf, cap, "[%s]:%u", h, (unsigned)a->port);
  } else {
    char h[16];
    snprintf(buf, cap, "%s:%u", ipv4_str(a->ip, h, sizeof h), (unsigned)a->port);
  }
  return buf;
}

const char *net_strerror(int err, char *buf, size_t cap)
{
  int e = err < 0 ? -err : err;
  const char *name = strerrorname_np(e);   /* GNU: "ECONNREFUSED" */
  snprintf(buf, cap, "%s (%s)", strerror(e), name ? name : "?");
  return buf;
}

static int parse_percent(const char *v, double *out)
{
  char *end;
  double d = strtod(v, &end);
  if (end == v || d < 0) return -1;
  if (*end == '%') { d /= 100; end++; }
  if (*end || d > 1) return -1;
  *out = d;
  return 0;
}

static int parse_impair(struct net_opts *o, const char *spec)
{
  char buf[256];
  if (strlen(spec) >= sizeof buf) return -1;
  strcpy(buf, spec);
  for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq) return -1;
    *eq = 0;
    const char *v = eq + 1;
    if (!strcmp(tok, "loss")) {
      if (parse_percent(v, &o->lc.loss)) return -1;
    } else if (!strcmp(tok, "reorder")) {
      if (parse_percent(v, &o->lc.reorder)) return -1;
    } else if (!strcmp(tok, "corrupt")) {
      if (parse_percent(v, &o->lc.corrupt)) return -1;
    } else if (!strcmp(tok, "duplicate")) {
      if (parse_percent(v, &o->lc.duplicate)) return -1;
    } else if (!strcmp(tok, "delay")) {
      char *end;
      double ms = strtod(v, &end);
      if (end == v || ms < 0 || ms > 10000 || (strcmp(end, "ms") && *end)) return -1;
      o->lc.delay_us = (uint64_t)(ms * 1000);
    } else {
      return -1;
    }
  }
  return 0;
}

int net_opts_parse(struct net_opts *o, const char *cmd, int argc, char **argv, int *i)
{
  const char *a = argv[*i];
  const char *v = *i + 1 < argc ? argv[*i + 1] : NULL;
  uint64_t n;
#define NEED_VALUE() do { if (!v) { fprintf(stderr, "ustcp %s: %s needs a value\n", cmd, a); return -1; } (*i)++; } while (0)
  if (!strcmp(a, "--tun")) {
    NEED_VALUE();
    if (strlen(v) >= 16 || !*v) { fprintf(stderr, "ustcp %s: bad device name '%s'\n", cmd, v); return -1; }
    o->lc.tun_name = v;
  } else if (!strcmp(a, "--tap")) {
    NEED_VALUE();
    if (strlen(v) >= 16 || !*v) { fprintf(stderr, "ustcp %s: bad device name '%s'\n", cmd, v); return -1; }
    o->lc.tun_name = v;
    o->lc.tap = true;
  } else if (!strcmp(a, "--packet")) {
    NEED_VALUE();
    if (strlen(v) >= 16 || !*v) { fprintf(stderr, "ustcp %s: bad interface name '%s'\n", cmd, v); return -1; }
    o->lc.tun_name = v;
    o->lc.packet = true;
  } else if (!strcmp(a, "--prefix-len")) {
    NEED_VALUE();
    if (net_parse_u64(v, 1, 30, &n)) { fprintf(stderr, "ustcp %s: bad --prefix-len '%s' (1..30)\n", cmd, v); return -1; }
    o->lc.prefix_len = (uint8_t)n;
  } else if (!strcmp(a, "--gateway")) {
    NEED_VALUE();
    uint32_t ip;
    static const uint8_t zero6[16];
    if (strchr(v, ':')) {
      if (net_parse_ip6(v, o->lc.gateway6) != 0 || !memcmp(o->lc.gateway6, zero6, 16) ||
          o->lc.gateway6[0] == 0xff) {
        fprintf(stderr, "ustcp %s: --gateway wants a unicast IPv6 address, not '%s'\n", cmd, v);
        return -1;
      }
    } else if (ipv4_parse(v, &ip) != 0 || ip == 0) {
      fprintf(stderr, "ustcp %s: --gateway wants an IPv4 or IPv6 address, not '%s'\n", cmd, v);
      return -1;
    } else {
      o->lc.gateway = ip;
    }
  } else if (!strcmp(a, "--no-dad")) {
    o->lc.no_dad = true;
  } else if (!strcmp(a, "--addr") || !strcmp(a, "--peer")) {
    NEED_VALUE();
    uint32_t ip;
    if (strchr(v, ':')) {
      uint8_t a6[16];
      static const uint8_t zero[16];
      /* IPV6 or IPV6/LEN: the on-link prefix (64 when not given) */
      char h6[64];
      uint64_t plen = 0;
      const char *slash = strchr(v, '/');
      size_t hl = slash ? (size_t)(slash - v) : strlen(v);
      if (hl >= sizeof h6 || (slash && net_parse_u64(slash + 1, 1, 128, &plen))) {
        fprintf(stderr, "ustcp %s: %s wants an IPv6 address (with /1..128), not '%s'\n", cmd, a, v);
        return -1;
      }
      memcpy(h6, v, hl);
      h6[hl] = 0;
      if (net_parse_ip6(h6, a6) != 0 || !memcmp(a6, zero, 16) || a6[0] == 0xff) {
        fprintf(stderr, "ustcp %s: %s wants an IPv4 or IPv6 address, not '%s'\n", cmd, a, v);
        return -1;
      }
      memcpy(a[2] == 'a' ? o->lc.addr6 : o->lc.peer6, a6, 16);
      if (plen) o->lc.prefix6_len = (uint8_t)plen;
    } else if (ipv4_parse(v, &ip) != 0 || ip == 0) {
      fprintf(stderr, "ustcp %s: %s wants an IPv4 address, not '%s'\n", cmd, a, v);
      return -1;
    }
    else if (a[2] == 'a') o->lc.addr = ip; else o->lc.peer = ip;
  } else if (!strcmp(a, "--no-configure")) {
    o->lc.configure = false;
  } else if (!strcmp(a, "--mtu")) {
    NEED_VALUE();
    if (net_parse_u64(v, 576, 65535, &n)) { fprintf(stderr, "ustcp %s: bad --mtu '%s' (576..65535)\n", cmd, v); return -1; }
    o->lc.mtu = (uint16_t)n;
  } else if (!strcmp(a, "--ctl")) {
    NEED_VALUE();
    o->ctl_path = v;
  } else if (!strcmp(a, "--no-ctl")) {
    o->no_ctl = true;
  } else if (!strcmp(a, "--offload")) {
    o->lc.offload = true;
  } else if (!strcmp(a, "--no-batch")) {
    o->lc.no_batch = true;
  } else if (!strcmp(a, "--batch-reads")) {
    o->lc.batch_reads = true;
  } else if (!strcmp(a, "--pcap")) {
    NEED_VALUE();
    o->lc.pcap_path = v;
  } else if (!strcmp(a, "--time-wait")) {
    NEED_VALUE();
    if (net_parse_u64(v, 0, 3600, &n)) { fprintf(stderr, "ustcp %s: bad --time-wait '%s' (0..3600 s)\n", cmd, v); return -1; }
    o->cfg.time_wait_us = n * USTCP_SEC;
  } else if (!strcmp(a, "--sndbuf") || !strcmp(a, "--rcvbuf")) {
    NEED_VALUE();
    if (net_parse_u64(v, 4096, 33554432, &n)) { fprintf(stderr, "ustcp %s: bad %s '%s' (4096..33554432)\n", cmd, a, v); return -1; }
    if (a[2] == 's') o->cfg.wmem_default = (uint32_t)n; else o->cfg.rmem_default = (uint32_t)n;
  } else if (!strcmp(a, "--ecn")) {
    NEED_VALUE();
    if (net_parse_u64(v, 0, 2, &n)) { fprintf(stderr, "ustcp %s: bad --ecn '%s' (0, 1 or 2)\n", cmd, v); return -1; }
    o->cfg.tcp_ecn = (uint32_t)n;
  } else if (!strcmp(a, "--seed")) {
    NEED_VALUE();
    if (net_parse_u64(v, 1, UINT64_MAX, &n)) { fprintf(stderr, "ustcp %s: bad --seed '%s'\n", cmd, v); return -1; }
    o->lc.seed = n;
  } else if (!strcmp(a, "--impair")) {
    NEED_VALUE();
    if (parse_impair(o, v)) {
      fprintf(stderr, "ustcp %s: bad --impair '%s' (e.g. loss=2%%,reorder=5%%,delay=5ms,corrupt=1%%,duplicate=1%%)\n", cmd, v);
      return -1;
    }
  } else if (!strcmp(a, "--verbose")) {
    o->verbose++;
  } else if (a[0] == '-' && a[1] == 'v' && strspn(a + 1, "v") == strlen(a + 1)) {
    o->verbose += (int)strlen(a + 1);   /* -v, -vv (as --help says: twice for more) */
  } else {
    return 0;
  }
#undef NEED_VALUE
  return 1;
}

static int mkdir_p(const char *dir, mode_t mode)
{
  char buf[256];
  if (strlen(dir) >= sizeof buf) return -1;
  strcpy(buf, dir);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
      *p = '/';
    }
  if (mkdir(buf, mode) < 0 && errno != EEXIST) return -1;
  return access(buf, W_OK | X_OK);
}

/* Device names are per network namespace, the file system is not: inside a
 * namespace named by ip-netns (/run/netns/NAME) the path gets "netns-NAME/", so
 * ustcp0 in two namespaces do not share a control socket. `ustcp stat` run in
 * the same namespace (ip netns exec NAME ustcp stat) finds it. */
static void netns_part(char *buf, size_t cap)
{
  struct stat self, st;
  buf[0] = 0;
  if (stat("/proc/self/ns/net", &self) != 0) return;
  DIR *d = opendir("/run/netns");
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    char path[300];
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/run/netns/%s", e->d_name);
    if (stat(path, &st) == 0 && st.st_ino == self.st_ino && st.st_dev == self.st_dev) {
      snprintf(buf, cap, "/netns-%.40s", e->d_name);
      break;
    }
  }
  closedir(d);
}

const char *net_ctl_default(const char *ifname, bool create, char *buf, size_t cap)
{
  char dirs[3][200], nsp[48];
  int nd = 0;
  netns_part(nsp, sizeof nsp);
  snprintf(dirs[nd++], sizeof dirs[0], "/run/ustcp%s", nsp);
  const char *xdg = getenv("XDG_RUNTIME_DIR");
  if (xdg && *xdg) snprintf(dirs[nd++], sizeof dirs[0], "%s/ustcp%s", xdg, nsp);
  snprintf(dirs[nd++], sizeof dirs[0], "/tmp/ustcp-%ld%s", (long)getuid(), nsp);
  for (int i = 0; i < nd; i++) {
    snprintf(buf, cap, "%s/%s.sock", dirs[i], ifname);
    if (create) {
      if (mkdir_p(dirs[i], i == 0 ? 0755 : 0700) == 0) return buf;
    } else if (access(buf, F_OK) == 0) {
      return buf;
    }
  }
  snprintf(buf, cap, "%s/%s.sock", dirs[0], ifname);
  return buf;
}

static struct ustcp_loop *g_loop;
static char g_ctl_dir[256];   /* a default control directory to remove when empty */

static void on_signal(int sig)
{
  (void)sig;
  if (g_loop) ustcp_loop_stop(g_loop);
}

static void log_event(void *ctx, const struct ustcp_event *ev)
{
  (void)ctx;
  char a[64], b[64];
  fprintf(stderr, "ustcp: %s <-> %s  %s -> %s\n", net_addr_str(&ev->local, a, sizeof a),
          net_addr_str(&ev->remote, b, sizeof b),
          ustcp_state_name(ev->old_state), ustcp_state_name(ev->new_state));
}

struct ustcp_loop *net_open(struct net_opts *o, const char *cmd)
{
  char err[512];
  struct ustcp_loop *l;
  int rc = ustcp_loop_new(&o->lc, &l, err, sizeof err);
  if (rc < 0) {
    fprintf(stderr, "ustcp %s: %s\n", cmd, err[0] ? err : strerror(-rc));
    return NULL;
  }
  if (!o->no_ctl) {
    const char *path = o->ctl_path;
    if (!path) {
      path = net_ctl_default(ustcp_loop_ifname(l), true, o->ctl_buf, sizeof o->ctl_buf);
      if (strstr(path, "/netns-")) {
        snprintf(g_ctl_dir, sizeof g_ctl_dir, "%s", path);
        char *slash = strrchr(g_ctl_dir, '/');
        if (slash) *slash = 0;
      }
    }
    rc = ustcp_loop_ctl_open(l, path, err, sizeof err);
    if (rc < 0) {
      fprintf(stderr, "ustcp %s: %s (use --ctl PATH or --no-ctl)\n", cmd, err);
      ustcp_loop_free(l);
      return NULL;
    }
    o->ctl_path = path;
  }
  if (o->verbose > 1) ustcp_set_event_cb(ustcp_loop_stack(l), log_event, NULL);
  g_loop = l;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  return l;
}

void net_close(struct ustcp_loop *l)
{
  if (g_loop == l) g_loop = NULL;
  ustcp_loop_free(l);
  if (g_ctl_dir[0]) rmdir(g_ctl_dir);   /* only if empty: another ustcp may use it */
}
