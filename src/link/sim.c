/* src/link/sim: an in-memory IPv4 network in virtual time (see sim.h).
 *
 * Call flow:
 *   sim_send(from, pkt)
 *     route_of()            ipv4_decode -> destination host (or no route)
 *     tap SIM_SENT
 *     rules_drop()          drop rules see every routed packet the host sends
 *     link down? queue full? (queue_occupancy)  -> drop, tap the fate
 *     serialise             departure = max(now, busy_until) + len*8/bandwidth
 *     loss, corrupt, reorder, jitter, duplicate draws (fixed order, see below)
 *     heap_push()           one event per copy, ordered by (arrival time, seq)
 *   sim_step(until)
 *     earliest_deadline()   hosts' next_deadline(), with the livelock guard
 *     heap top              the earliest arrival
 *     -> host poll() when its deadline <= the next arrival, else deliver the
 *        arrival: tap SIM_DELIVERED, then the host's deliver() (which may call
 *        sim_send re-entrantly: the event was already popped and is owned here)
 *   sim_run_until(until)    sim_step until it returns false
 *
 * Determinism: every random draw comes from net->rng (xoshiro256** seeded through
 * splitmix64), or from the link's own generator after sim_set_link_seed, and
 * happens in this fixed order per packet, each draw only when the feature is
 * enabled on the link: loss, corrupt (+ byte index + bit), reorder, jitter,
 * duplicate. With the same seed, configuration and inputs, the trace is the same on
 * every run and machine.
 *
 * smoltcp's netsim (tests/netsim.rs) is the model for the two additions: a
 * drop-tail queue counted in bytes before the link's serialisation
 * (queue_limit_bytes, its Bottleneck::capacity) and one generator per direction (its
 * Wire's ChaCha20Rng seeded per direction), drawn after the queue, as here.
 */
#include "link/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wire/wire.h"
#include "wire/ipv6.h"

/* Memory bound: packets in flight beyond this are dropped (counted as queue drops),
 * so a runaway sender cannot exhaust memory. */
#define SIM_MAX_IN_FLIGHT (1u << 20)
#define SIM_MAX_RULES 32
/* A duplicate arrives this long after the original, so the copy always follows it. */
#define SIM_DUP_OFFSET_US 1

struct sim_event {
  uint64_t time_us;
  uint64_t seq;       /* insertion order: breaks ties FIFO, deterministically */
  int from, to;
  size_t len;
  uint8_t *data;      /* owned */
};

struct sim_link {
  struct sim_link_cfg cfg;
  /* Serialisation state in nanoseconds so that small packets on fast links do not
   * accumulate rounding (100 bytes at 1 Gb/s is 0.8 us). */
  uint64_t busy_until_ns;
  /* Departure times (us) of packets accepted but not yet departed, oldest first:
   * a ring, used for the queue limit. */
  uint64_t *departs;
  size_t dep_head, dep_count, dep_cap;
  /* sim_set_link_seed: this link's own generator (xoshiro256** state). */
  bool own_rng;
  uint64_t rng[4];
};

struct sim_host {
  char *name;
  uint32_t addr;
  bool has6;                /* addr6 set (sim_set_host_addr6) */
  uint8_t addr6[16];
  struct sim_host_ops ops;
  void *ctx;
  /* Livelock guard: set after poll() at polled_at_us, cleared when a packet is
   * delivered to the host (or at sim_run_until entry). While set, a deadline at or
   * before polled_at_us is treated as polled_at_us + 1. */
  bool polled_stale;
  uint64_t polled_at_us;
};

struct sim_net {
  uint64_t rng[4];
  uint64_t now_us;
  uint64_t next_seq;
  struct sim_host hosts[SIM_MAX_HOSTS];
  int nhosts;
  struct sim_link links[SIM_MAX_HOSTS][SIM_MAX_HOSTS];
  struct sim_event *heap;
  size_t heap_len, heap_cap;
  struct sim_drop_rule rules[SIM_MAX_RULES];
  int nrules;
  sim_tap_fn tap;
  void *tap_ctx;
  struct sim_stats stats;
};

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro(uint64_t *s)
{
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t sim_rand(struct sim_net *net) { return xoshiro(net->rng); }

/* splitmix64 from the seed fills the state; the first word is a bijection of the
 * seed, so different seeds never give the same stream. */
static void seed_state(uint64_t *s, uint64_t seed)
{
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    s[i] = splitmix64(&x);
}

/* Uniform in [0, n) without modulo bias (rejection of the short last interval). */
static uint64_t rand_below(uint64_t *rng, uint64_t n)
{
  if (n <= 1)
    return 0;
  uint64_t threshold = (0 - n) % n;
  for (;;) {
    uint64_t r = xoshiro(rng);
    if (r >= threshold)
      return r % n;
  }
}

/* True with probability p; draws only when 0 < p < 1 so a disabled fault costs
 * no draw, and p >= 1 is certain without one. */
static bool chance(uint64_t *rng, double p)
{
  if (!(p > 0.0))
    return false;
  if (p >= 1.0)
    return true;
  double u = (double)(xoshiro(rng) >> 11) * 0x1p-53;
  return u < p;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* ---- event heap: binary min-heap on (time, seq) ---- */

static bool ev_before(const struct sim_event *a, const struct sim_event *b)
{
  if (a->time_us != b->time_us)
    return a->time_us < b->time_us;
  return a->seq < b->seq;
}

static int heap_push(struct sim_net *net, struct sim_event ev)
{
  if (net->heap_len == net->heap_cap) {
    size_t cap = net->heap_cap ? net->heap_cap * 2 : 64;
    struct sim_event *h = realloc(net->heap, cap * sizeof *h);
    if (!h)
      return -1;
    net->heap = h;
    net->heap_cap = cap;
  }
  size_t i = net->heap_len++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!ev_before(&ev, &net->heap[parent]))
      break;
    net->heap[i] = net->heap[parent];
    i = parent;
  }
  net->heap[i] = ev;
  return 0;
}

static struct sim_event heap_pop(struct sim_net *net)
{
  struct sim_event top = net->heap[0];
  struct sim_event last = net->heap[--net->heap_len];
  size_t n = net->heap_len, i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= n)
      break;
    if (c + 1 < n && ev_before(&net->heap[c + 1], &net->heap[c]))
      c++;
    if (!ev_before(&net->heap[c], &last))
      break;
    net->heap[i] = net->heap[c];
    i = c;
  }
  if (n > 0)
    net->heap[i] = last;
  return top;
}

/* ---- lifecycle and hosts ---- */

struct sim_net *sim_new(uint64_t seed)
{
  struct sim_net *net = calloc(1, sizeof *net);
  if (!net)
    return NULL;
  seed_state(net->rng, seed);
  return net;
}

void sim_free(struct sim_net *net)
{
  if (!net)
    return;
  for (size_t i = 0; i < net->heap_len; i++)
    free(net->heap[i].data);
  free(net->heap);
  for (int i = 0; i < net->nhosts; i++)
    free(net->hosts[i].name);
  for (int a = 0; a < SIM_MAX_HOSTS; a++)
    for (int b = 0; b < SIM_MAX_HOSTS; b++)
      free(net->links[a][b].departs);
  free(net);
}

int sim_add_host(struct sim_net *net, const char *name, uint32_t addr,
                 const struct sim_host_ops *ops, void *ctx)
{
  if (net->nhosts >= SIM_MAX_HOSTS)
    return -1;
  for (int i = 0; i < net->nhosts; i++)
    if (net->hosts[i].addr == addr)
      return -1;
  int id = net->nhosts;
  struct sim_host *h = &net->hosts[id];
  char fallback[16];
  if (!name) {
    snprintf(fallback, sizeof fallback, "h%d", id);
    name = fallback;
  }
  size_t n = strlen(name);
  h->name = malloc(n + 1);
  if (!h->name)
    return -1;
  memcpy(h->name, name, n + 1);
  h->addr = addr;
  if (ops)
    h->ops = *ops;
  h->ctx = ctx;
  net->nhosts++;
  return id;
}

int sim_set_host_addr6(struct sim_net *net, int host, const uint8_t addr6[16])
{
  if (host < 0 || host >= net->nhosts)
    return -1;
  for (int i = 0; i < net->nhosts; i++)
    if (i != host && net->hosts[i].has6 && memcmp(net->hosts[i].addr6, addr6, 16) == 0)
      return -1;
  memcpy(net->hosts[host].addr6, addr6, 16);
  net->hosts[host].has6 = true;
  return 0;
}

int sim_host_by_name(const struct sim_net *net, const char *name)
{
  if (!net || !name)
    return -1;
  for (int i = 0; i < net->nhosts; i++)
    if (strcmp(net->hosts[i].name, name) == 0)
      return i;
  return -1;
}

const char *sim_host_name(const struct sim_net *net, int host)
{
  /* "?" rather than NULL so that logs can print a no-route destination (-1). */
  if (!net || host < 0 || host >= net->nhosts)
    return "?";
  return net->hosts[host].name;
}

static bool valid_pair(const struct sim_net *net, int from, int to)
{
  (void)net;
  return from >= 0 && from < SIM_MAX_HOSTS && to >= 0 && to < SIM_MAX_HOSTS;
}

/* Links exist for every id up to SIM_MAX_HOSTS, so a configuration set before a
 * host is added applies to it (sim_set_all_links then sim_add_host works). */
void sim_set_link(struct sim_net *net, int from, int to, const struct sim_link_cfg *cfg)
{
  if (valid_pair(net, from, to) && cfg)
    net->links[from][to].cfg = *cfg;
}

void sim_set_all_links(struct sim_net *net, const struct sim_link_cfg *cfg)
{
  for (int a = 0; a < SIM_MAX_HOSTS; a++)
    for (int b = 0; b < SIM_MAX_HOSTS; b++)
      net->links[a][b].cfg = *cfg;
}

void sim_set_link_seed(struct sim_net *net, int from, int to, uint64_t seed)
{
  if (!valid_pair(net, from, to))
    return;
  struct sim_link *l = &net->links[from][to];
  seed_state(l->rng, seed);
  l->own_rng = true;
}

struct sim_link_cfg *sim_link(struct sim_net *net, int from, int to)
{
  return valid_pair(net, from, to) ? &net->links[from][to].cfg : NULL;
}

void sim_set_tap(struct sim_net *net, sim_tap_fn tap, void *ctx)
{
  net->tap = tap;
  net->tap_ctx = ctx;
}

void sim_get_stats(const struct sim_net *net, struct sim_stats *out)
{
  *out = net->stats;
}

uint64_t sim_now(const struct sim_net *net) { return net->now_us; }

size_t sim_in_flight(const struct sim_net *net) { return net->heap_len; }

const char *sim_fate_str(enum sim_fate f)
{
  switch (f) {
  case SIM_SENT: return "sent";
  case SIM_DELIVERED: return "delivered";
  case SIM_DROP_LOSS: return "drop-loss";
  case SIM_DROP_RULE: return "drop-rule";
  case SIM_DROP_QUEUE: return "drop-queue";
  case SIM_DROP_DOWN: return "drop-down";
  case SIM_DROP_NOROUTE: return "drop-noroute";
  case SIM_DUPLICATED: return "duplicated";
  case SIM_CORRUPTED: return "corrupted";
  }
  return "?";
}

static void tap(struct sim_net *net, int from, int to, enum sim_fate fate,
                const uint8_t *pkt, size_t len)
{
  if (net->tap)
    net->tap(net->tap_ctx, from, to, fate, pkt, len, net->now_us);
}

/* ---- drop rules ---- */

bool sim_seg_matches(const uint8_t *pkt, size_t len, enum sim_seg_kind kind)
{
  const uint8_t *seg;
  size_t seg_len;
  if (len > 0 && (pkt[0] >> 4) == 6) {
    /* IPv6: the TCP header after the extension chain; a fragment (refused by
     * ipv6_decode) is not classified, as for IPv4 below. */
    struct ipv6_pkt ip6;
    if (ipv6_decode(pkt, len, &ip6) != 0 || ip6.proto != IPPROTO_TCP_)
      return false;
    seg = pkt + ip6.upper_off;
    seg_len = ip6.upper_len;
  } else {
    struct ipv4_hdr ip;
    if (ipv4_decode(pkt, len, &ip, &seg, &seg_len) != WIRE_OK || ip.proto != IPPROTO_TCP_)
      return false;
    /* A non-first fragment holds no TCP header; a first fragment may hold a partial
     * one. The stack does not reassemble, so neither does the classifier. */
    if ((ip.flags & IPV4_FLAG_MF) || ip.frag_off != 0)
      return false;
  }
  struct tcp_hdr th;
  const uint8_t *data;
  size_t data_len;
  if (tcp_decode(seg, seg_len, &th, &data, &data_len) != WIRE_OK)
    return false;
  uint8_t f = th.flags;
  switch (kind) {
  case SIM_SEG_ANY: return true;
  case SIM_SEG_SYN: return (f & TCP_SYN) && !(f & TCP_ACK);
  case SIM_SEG_SYNACK: return (f & TCP_SYN) && (f & TCP_ACK);
  case SIM_SEG_ACK:
    return (f & TCP_ACK) && !(f & (TCP_SYN | TCP_FIN | TCP_RST)) && data_len == 0;
  case SIM_SEG_DATA: return data_len > 0;
  case SIM_SEG_FIN: return (f & TCP_FIN) != 0;
  case SIM_SEG_RST: return (f & TCP_RST) != 0;
  }
  return false;
}

/* Every rule sees every packet (so one rule's count never depends on another
 * rule firing); the packet is dropped when any rule fires. */
static bool rules_drop(struct sim_net *net, int from, const uint8_t *pkt, size_t len)
{
  bool drop = false;
  for (int i = 0; i < net->nrules; i++) {
    struct sim_drop_rule *r = &net->rules[i];
    if (r->from_host >= 0 && r->from_host != from)
      continue;
    if (!sim_seg_matches(pkt, len, r->kind))
      continue;
    r->seen++;
    if (r->seen >= r->nth && (r->count == 0 || r->dropped < r->count)) {
      r->dropped++;
      drop = true;
    }
  }
  return drop;
}

int sim_add_drop_rule(struct sim_net *net, const struct sim_drop_rule *rule)
{
  if (net->nrules >= SIM_MAX_RULES)
    return -1;
  net->rules[net->nrules++] = *rule;
  return 0;
}

static int rule_err(char *err, size_t errcap, const char *fmt, const char *a, const char *b)
{
  if (err && errcap)
    snprintf(err, errcap, fmt, a, b);
  return -1;
}

/* Parses a positive decimal number at *p (advancing it); -1 if none or too big. */
static long parse_count(const char **p)
{
  const char *s = *p;
  long v = 0;
  if (*s < '0' || *s > '9')
    return -1;
  while (*s >= '0' && *s <= '9') {
    v = v * 10 + (*s - '0');
    if (v > 1000000000L)
      return -1;
    s++;
  }
  *p = s;
  return v;
}

int sim_parse_drop_rule(const struct sim_net *net, const char *spec,
                        struct sim_drop_rule *out, char *err, size_t errcap)
{
  static const struct { const char *name; enum sim_seg_kind kind; } kinds[] = {
    {"any", SIM_SEG_ANY}, {"syn", SIM_SEG_SYN}, {"syn-ack", SIM_SEG_SYNACK},
    {"synack", SIM_SEG_SYNACK}, {"ack", SIM_SEG_ACK}, {"data", SIM_SEG_DATA},
    {"fin", SIM_SEG_FIN}, {"rst", SIM_SEG_RST},
  };
  struct sim_drop_rule r = {.from_host = -1, .kind = SIM_SEG_ANY, .nth = 1, .count = 1};
  if (!spec || !*spec)
    return rule_err(err, errcap, "empty drop rule%s%s", "", "");

  /* Kind names hold no ':', so the last ':' separates the host (whose name may). */
  const char *p = spec;
  const char *colon = strrchr(spec, ':');
  if (colon) {
    char host[128];
    size_t n = (size_t)(colon - spec);
    if (n == 0 || n >= sizeof host)
      return rule_err(err, errcap, "bad host in drop rule '%s'%s", spec, "");
    memcpy(host, spec, n);
    host[n] = 0;
    r.from_host = sim_host_by_name(net, host);
    if (r.from_host < 0)
      return rule_err(err, errcap, "unknown host '%s' in drop rule '%s'", host, spec);
    p = colon + 1;
  }

  /* The kind ends at '#', '+', end, or an 'x' that starts a count ("datax2"). */
  const char *k = p;
  while (*p && *p != '#' && *p != '+' && !(*p == 'x' && (p[1] == 0 || (p[1] >= '0' && p[1] <= '9'))))
    p++;
  char kind[32];
  size_t kn = (size_t)(p - k);
  if (kn >= sizeof kind)
    kn = sizeof kind - 1;
  memcpy(kind, k, kn);
  kind[kn] = 0;
  bool found = false;
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (strcasecmp(kind, kinds[i].name) == 0) {
      r.kind = kinds[i].kind;
      found = true;
    }
  if (!found)
    return rule_err(err, errcap,
                    "unknown segment kind '%s' in drop rule '%s' "
                    "(expected any, syn, syn-ack, ack, data, fin, rst)", kind, spec);

  if (*p == '#') {
    p++;
    long n = parse_count(&p);
    if (n < 1)
      return rule_err(err, errcap, "bad number after '#' in drop rule '%s'%s", spec, "");
    r.nth = (unsigned)n;
  }
  if (*p == '+') {
    p++;
    r.count = 0;
  } else if (*p == 'x') {
    p++;
    long n = parse_count(&p);
    if (n < 1)
      return rule_err(err, errcap, "bad count after 'x' in drop rule '%s'%s", spec, "");
    r.count = (unsigned)n;
  }
  if (*p)
    return rule_err(err, errcap, "unexpected '%s' at the end of drop rule '%s'", p, spec);
  *out = r;
  return 0;
}

/* ---- sending ---- */

/* Destination host of a packet: >= 0, -1 for no route, -2 when it cannot be
 * routed at all (not a valid IPv4 header). */
static int route_of(const struct sim_net *net, const uint8_t *pkt, size_t len)
{
  if (len > 0 && (pkt[0] >> 4) == 6) {
    /* IPv6: routed by the fixed header's destination alone (a router does not
     * look past it, RFC 8200 §4), so a packet whose chain ustcp refuses still
     * travels and is refused by its receiver. */
    if (len < IPV6_HDR_LEN)
      return -2;
    for (int i = 0; i < net->nhosts; i++)
      if (net->hosts[i].has6 && memcmp(net->hosts[i].addr6, pkt + 24, 16) == 0)
        return i;
    return -1;
  }
  struct ipv4_hdr ip;
  const uint8_t *payload;
  size_t plen;
  if (ipv4_decode(pkt, len, &ip, &payload, &plen) != WIRE_OK)
    return -2;
  for (int i = 0; i < net->nhosts; i++)
    if (net->hosts[i].addr == ip.dst)
      return i;
  return -1;
}

/* Packets accepted on the link but not yet departed (the one being serialised
 * included), after forgetting those that departed by now. */
static size_t queue_occupancy(struct sim_link *l, uint64_t now_us)
{
  while (l->dep_count > 0 && l->departs[l->dep_head] <= now_us) {
    l->dep_head = (l->dep_head + 1) % l->dep_cap;
    l->dep_count--;
  }
  return l->dep_count;
}

/* Bytes accepted on the link but not yet serialised at now (the rest of the packet
 * on the wire included), as smoltcp's Bottleneck::transmit counts them: the time the
 * link stays busy times its rate, rounded down. */
static uint64_t queue_bytes(const struct sim_link *l, uint64_t now_us)
{
  uint64_t now_ns = now_us > UINT64_MAX / 1000 ? UINT64_MAX : now_us * 1000;
  if (l->cfg.bandwidth_bps == 0 || l->busy_until_ns <= now_ns)
    return 0;
  /* In double: (busy ns) x (bits/s) overflows 64 bits on long queues. */
  double b = (double)(l->busy_until_ns - now_ns) * (double)l->cfg.bandwidth_bps / 8e9;
  return b >= 0x1p63 ? UINT64_MAX : (uint64_t)b;
}

static int queue_push(struct sim_link *l, uint64_t depart_us)
{
  if (l->dep_count == l->dep_cap) {
    size_t cap = l->dep_cap ? l->dep_cap * 2 : 16;
    uint64_t *d = malloc(cap * sizeof *d);
    if (!d)
      return -1;
    for (size_t i = 0; i < l->dep_count; i++)
      d[i] = l->departs[(l->dep_head + i) % l->dep_cap];
    free(l->departs);
    l->departs = d;
    l->dep_cap = cap;
    l->dep_head = 0;
  }
  l->departs[(l->dep_head + l->dep_count) % l->dep_cap] = depart_us;
  l->dep_count++;
  return 0;
}

/* Schedules one copy; false (and a queue drop) when out of memory or over the
 * in-flight bound. */
static bool schedule(struct sim_net *net, int from, int to, uint64_t at_us,
                     const uint8_t *pkt, size_t len)
{
  if (net->heap_len >= SIM_MAX_IN_FLIGHT)
    return false;
  uint8_t *copy = malloc(len ? len : 1);
  if (!copy)
    return false;
  memcpy(copy, pkt, len);
  struct sim_event ev = {.time_us = at_us, .seq = net->next_seq++, .from = from,
                         .to = to, .len = len, .data = copy};
  if (heap_push(net, ev) != 0) {
    free(copy);
    return false;
  }
  return true;
}

int sim_send(struct sim_net *net, int from, const uint8_t *pkt, size_t len)
{
  if (!pkt || len > SIM_MAX_PACKET || from < 0 || from >= net->nhosts)
    return -1;
  int to = route_of(net, pkt, len);
  if (to == -2)
    return -1;
  net->stats.sent++;
  tap(net, from, to, SIM_SENT, pkt, len);
  if (to < 0) {
    net->stats.dropped_noroute++;
    tap(net, from, to, SIM_DROP_NOROUTE, pkt, len);
    return 0;
  }
  /* Rules come first: they count what the host sends, whatever the link does. */
  if (net->nrules > 0 && rules_drop(net, from, pkt, len)) {
    net->stats.dropped_rule++;
    tap(net, from, to, SIM_DROP_RULE, pkt, len);
    return 0;
  }
  struct sim_link *l = &net->links[from][to];
  const struct sim_link_cfg *c = &l->cfg;
  if (c->down) {
    net->stats.dropped_down++;
    tap(net, from, to, SIM_DROP_DOWN, pkt, len);
    return 0;
  }
  if ((c->queue_limit && queue_occupancy(l, net->now_us) >= c->queue_limit) ||
      (c->queue_limit_bytes &&
       sat_add(queue_bytes(l, net->now_us), len) > c->queue_limit_bytes) ||
      net->heap_len >= SIM_MAX_IN_FLIGHT) {
    net->stats.dropped_queue++;
    tap(net, from, to, SIM_DROP_QUEUE, pkt, len);
    return 0;
  }

  /* Serialisation: the link sends one packet at a time, FIFO. */
  uint64_t depart_us = net->now_us;
  if (c->bandwidth_bps > 0) {
    uint64_t now_ns = net->now_us > UINT64_MAX / 1000 ? UINT64_MAX : net->now_us * 1000;
    uint64_t start_ns = l->busy_until_ns > now_ns ? l->busy_until_ns : now_ns;
    uint64_t tx_ns = ((uint64_t)len * 8u * 1000000000u + c->bandwidth_bps - 1) / c->bandwidth_bps;
    l->busy_until_ns = sat_add(start_ns, tx_ns);
    depart_us = l->busy_until_ns / 1000 + (l->busy_until_ns % 1000 != 0);
    if (depart_us > net->now_us)
      queue_push(l, depart_us);  /* on failure the limit is merely not enforced */
  }

  uint64_t *rng = l->own_rng ? l->rng : net->rng;
  /* Lost on the wire, after using its share of the bandwidth. */
  if (chance(rng, c->loss)) {
    net->stats.dropped_loss++;
    tap(net, from, to, SIM_DROP_LOSS, pkt, len);
    return 0;
  }

  const uint8_t *bytes = pkt;
  uint8_t *corrupted = NULL;
  if (len > 0 && chance(rng, c->corrupt) && (corrupted = malloc(len)) != NULL) {
    /* One bit of one byte: a single-bit error, which the Internet checksum
     * (IPv4 header or TCP) always detects. */
    memcpy(corrupted, pkt, len);
    size_t at = (size_t)rand_below(rng, len);
    corrupted[at] ^= (uint8_t)(1u << rand_below(rng, 8));
    bytes = corrupted;
    net->stats.corrupted++;
    tap(net, from, to, SIM_CORRUPTED, bytes, len);
  }

  uint64_t arrive_us = sat_add(depart_us, c->delay_us);
  if (chance(rng, c->reorder)) {
    uint64_t extra = c->reorder_delay_us ? c->reorder_delay_us
                                         : sat_add(sat_add(c->delay_us, c->delay_us), 1000);
    arrive_us = sat_add(arrive_us, extra);
    net->stats.reordered++;
  }
  if (c->jitter_us > 0)
    arrive_us = sat_add(arrive_us, rand_below(rng, sat_add(c->jitter_us, 1)));

  bool dup = chance(rng, c->duplicate);
  if (!schedule(net, from, to, arrive_us, bytes, len)) {
    net->stats.dropped_queue++;
    tap(net, from, to, SIM_DROP_QUEUE, bytes, len);
  } else if (dup && schedule(net, from, to, sat_add(arrive_us, SIM_DUP_OFFSET_US), bytes, len)) {
    net->stats.duplicated++;
    tap(net, from, to, SIM_DUPLICATED, bytes, len);
  }
  free(corrupted);
  return 0;
}

/* ---- running ---- */

/* Earliest host deadline after the livelock guard; *host gets the host (lowest id
 * on ties), -1 when none. A host whose poll() at time T left its deadline at or
 * before T would be polled forever at T: its deadline counts as T + 1 until a
 * packet is delivered to it or sim_run_until is entered again. */
static uint64_t earliest_deadline(struct sim_net *net, int *host)
{
  uint64_t best = SIM_NO_DEADLINE;
  *host = -1;
  for (int i = 0; i < net->nhosts; i++) {
    struct sim_host *h = &net->hosts[i];
    if (!h->ops.next_deadline || !h->ops.poll)
      continue;
    uint64_t d = h->ops.next_deadline(h->ctx);
    if (d == SIM_NO_DEADLINE)
      continue;
    if (h->polled_stale && d <= h->polled_at_us)
      d = h->polled_at_us + 1;
    if (d < net->now_us)
      d = net->now_us;  /* a deadline in the past runs now; time never goes back */
    if (d < best) {
      best = d;
      *host = i;
    }
  }
  return best;
}

uint64_t sim_next_event(struct sim_net *net)
{
  int host;
  uint64_t t = earliest_deadline(net, &host);
  if (net->heap_len > 0 && net->heap[0].time_us < t)
    t = net->heap[0].time_us;
  return t;
}

bool sim_step(struct sim_net *net, uint64_t until_us)
{
  int host;
  uint64_t deadline = earliest_deadline(net, &host);
  uint64_t arrival = net->heap_len > 0 ? net->heap[0].time_us : SIM_NO_DEADLINE;

  /* Timers first on a tie: a host's timeout at T happens before a packet at T. */
  if (host >= 0 && deadline <= arrival && deadline <= until_us) {
    struct sim_host *h = &net->hosts[host];
    if (deadline > net->now_us)
      net->now_us = deadline;
    h->ops.poll(h->ctx, net->now_us);
    h->polled_stale = true;
    h->polled_at_us = net->now_us;
    return true;
  }
  if (net->heap_len > 0 && arrival <= until_us) {
    struct sim_event ev = heap_pop(net);
    if (ev.time_us > net->now_us)
      net->now_us = ev.time_us;
    struct sim_host *h = &net->hosts[ev.to];
    net->stats.delivered++;
    tap(net, ev.from, ev.to, SIM_DELIVERED, ev.data, ev.len);
    h->polled_stale = false;
    /* ev is a local copy and owns its bytes: deliver() may call sim_send, which
     * may grow (realloc) the heap. */
    if (h->ops.deliver)
      h->ops.deliver(h->ctx, ev.data, ev.len, net->now_us);
    free(ev.data);
    return true;
  }
  /* SIM_NO_DEADLINE means "until quiet": the clock stays at the last event. */
  if (until_us > net->now_us && until_us != SIM_NO_DEADLINE)
    net->now_us = until_us;
  return false;
}

void sim_run_until(struct sim_net *net, uint64_t until_us)
{
  /* The caller may have changed a host between runs (written data, closed a
   * socket), so a deadline at the current time is honoured again once. */
  for (int i = 0; i < net->nhosts; i++)
    net->hosts[i].polled_stale = false;
  while (sim_step(net, until_us)) {
  }
}
