/* IPv6 neighbour discovery (RFC 4861) and duplicate address detection
 * (RFC 4862 §5.4) for a ustcp stack on Ethernet, beside ARP (eth.c) and in the
 * same shape: sans-I/O, frames in with the time, frames out through eth.c,
 * timers run by eth_poll. What Linux does where the RFCs leave a choice is
 * named by its function in net/ipv6/ndisc.c, addrconf.c or net/core/neighbour.c.
 *
 *   frame in     IPv6 whose upper layer is ICMPv6 133..137 stays here (after
 *                ipv6_decode's bounded extension walk); other IPv6 goes to the
 *                stack if unicast, is dropped (rx_ip6_mcast) if multicast
 *   NS / NA      validated as §7.1.1 / §7.1.2 (hop limit 255, code 0,
 *                checksum, >= 24 bytes, non-multicast target, options of
 *                non-zero length inside the message and at most
 *                ETH_ND_MAX_OPTS of them, the DAD form from ::); every
 *                refusal counted in rx_nd_bad
 *   cache        ETH_ND_ENTRIES entries (allocated only with IPv6), states of
 *                §7.3.2; only an NS for one of our addresses (§7.2.3) or our
 *                own need to send creates an entry, never an NA (§7.2.5). Full:
 *                the oldest entry with nothing queued goes, STALE ones first
 *                (Linux's neigh_forced_gc spares entries in use), so a flood of
 *                forged NS cannot push out a neighbour we talk to
 *   queue        at most ETH_ND_QUEUE datagrams wait per INCOMPLETE entry, the
 *                oldest dropped first (Linux's unres_qlen)
 *   timers       INCOMPLETE: multicast NS each RetransTimer, 3 in all, then
 *                dropped (nd_failed); REACHABLE -> STALE after ReachableTime
 *                (30 s; Linux randomises 15..45 s); STALE -> DELAY on use;
 *                DELAY -> PROBE after 5 s; PROBE: unicast NS, 3, then the
 *                entry goes
 *   addresses    the static one and fe80::/64 from the MAC (RFC 4291 App. A),
 *                both TENTATIVE until DAD ends: one NS from :: after a random
 *                delay below 1 s, then RetransTimer with no NA and no NS from
 *                :: for it -> PREFERRED; otherwise DUPLICATE (counted, never
 *                used). Nothing leaves from an address that is not PREFERRED.
 */
#include <stdlib.h>
#include <string.h>
#include "link/eth_int.h"
#include "wire/bytes.h"
#include "wire/ipv6.h"

#define ND_NS 135
#define ND_NA 136
#define ND_OPT_SLLA 1
#define ND_OPT_TLLA 2
#define ND_MSG_MIN 24               /* ICMPv6 header + reserved/flags + target */
#define NA_F_ROUTER 0x80
#define NA_F_SOLICITED 0x40
#define NA_F_OVERRIDE 0x20

static const uint8_t ALL_NODES[16] = {0xff, 0x02, [15] = 1};
static const uint8_t ANY6[16];

void eth_link_local(const uint8_t mac[6], uint8_t out[16])
{
  /* RFC 4291 App. A: the MAC split by ff:fe, the universal/local bit flipped */
  memset(out, 0, 16);
  out[0] = 0xfe;
  out[1] = 0x80;
  out[8] = mac[0] ^ 0x02;
  out[9] = mac[1];
  out[10] = mac[2];
  out[11] = 0xff;
  out[12] = 0xfe;
  memcpy(out + 13, mac + 3, 3);
}

void eth_mcast_mac(const uint8_t group[16], uint8_t mac[6])
{
  mac[0] = 0x33;
  mac[1] = 0x33;
  memcpy(mac + 2, group + 12, 4);
}

void eth_solicited_node(const uint8_t a[16], uint8_t out[16])
{
  static const uint8_t pfx[13] = {0xff, 0x02, [11] = 1, [12] = 0xff};
  memcpy(out, pfx, 13);
  memcpy(out + 13, a + 13, 3);
}

/* A timer of ours is due at at: eth's deadline and our own lower bound (the
 * walk in nd_poll is skipped before it, as the loop polls every round). */
static void nd_note(struct eth_iface *e, uint64_t at)
{
  if (at < e->nd_next) e->nd_next = at;
  eth_note_deadline(e, at);
}

static uint64_t nd_rand(struct eth_iface *e)
{
  uint64_t z = (e->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int nd_init(struct eth_iface *e)
{
  if (!memcmp(e->cfg.ip6, ANY6, 16)) return 0;
  e->nd = calloc(ETH_ND_ENTRIES, sizeof *e->nd);
  if (!e->nd) return -1;
  e->has6 = true;
  e->nd_next = UINT64_MAX;
  if (!e->cfg.prefix6_len || e->cfg.prefix6_len > 128) e->cfg.prefix6_len = 64;
  e->rng = e->cfg.seed ^ 0x3c6ef372fe94f82bull;
  memcpy(e->addr6[0].ip, e->cfg.ip6, 16);
  eth_link_local(e->cfg.mac, e->addr6[1].ip);
  for (int i = 0; i < 2; i++) e->addr6[i].state = ETH_ADDR6_PREFERRED;
  /* With DAD, tentative from the start: eth_dad_start sends the probes. */
  if (!e->cfg.no_dad)
    for (int i = 0; i < 2; i++) e->addr6[i].state = ETH_ADDR6_TENTATIVE;
  return 0;
}

static void nd_drop_queue(struct nd_entry *n)
{
  for (unsigned i = 0; i < n->nq; i++) free(n->q[i].data);
  n->nq = 0;
}

void nd_free(struct eth_iface *e)
{
  if (!e->nd) return;
  for (unsigned i = 0; i < ETH_ND_ENTRIES; i++) nd_drop_queue(&e->nd[i]);
  free(e->nd);
  e->nd = NULL;
}

enum eth_addr6_state eth_addr6_state(const struct eth_iface *e, int which)
{
  if (!e->has6 || which < 0 || which > 1) return ETH_ADDR6_NONE;
  return (enum eth_addr6_state)e->addr6[which].state;
}

void eth_dad_start(struct eth_iface *e, uint64_t now_us)
{
  if (!e->has6 || e->cfg.no_dad) return;
  for (int i = 0; i < 2; i++) {
    struct nd_addr *a = &e->addr6[i];
    if (a->state != ETH_ADDR6_TENTATIVE) continue;
    a->sent = 0;
    /* Linux's addrconf_dad_kick: a random delay below rtr_solicit_delay
     * (RFC 4862 §5.4.2: the first message from an interface) */
    a->timer_us = now_us + nd_rand(e) % ETH_ND_DAD_MAX_DELAY_US + 1;
    nd_note(e, a->timer_us);
  }
}

/* Ours and usable: 0 or 1 (index in addr6), -1 otherwise; any_state also
 * finds tentative and duplicate ones. */
static int our_addr(const struct eth_iface *e, const uint8_t a[16], bool any_state)
{
  for (int i = 0; i < 2; i++)
    if (!memcmp(e->addr6[i].ip, a, 16) &&
        (any_state || e->addr6[i].state == ETH_ADDR6_PREFERRED))
      return i;
  return -1;
}

bool nd_mcast_ours(const struct eth_iface *e, const uint8_t dst[6])
{
  if (dst[0] != 0x33 || dst[1] != 0x33) return false;
  static const uint8_t all_nodes_mac[6] = {0x33, 0x33, 0, 0, 0, 1};
  if (!memcmp(dst, all_nodes_mac, 6)) return true;
  /* Our solicited-node groups, joined while tentative too (RFC 4862 §5.4.2:
   * DAD must hear another node's NS). */
  for (int i = 0; i < 2; i++)
    if (dst[2] == 0xff && !memcmp(dst + 3, e->addr6[i].ip + 13, 3) &&
        e->addr6[i].state != ETH_ADDR6_DUPLICATE)
      return true;
  return false;
}

/* ---- the cache ---- */

static struct nd_entry *nd_find(struct eth_iface *e, const uint8_t ip[16])
{
  struct nd_entry *l = e->nd_last;
  if (l && l->state != ETH_ND_NONE && !memcmp(l->ip, ip, 16)) return l;
  for (unsigned i = 0; i < ETH_ND_ENTRIES; i++)
    if (e->nd[i].state != ETH_ND_NONE && !memcmp(e->nd[i].ip, ip, 16))
      return e->nd_last = &e->nd[i];
  return NULL;
}

/* REACHABLE past ReachableTime is STALE (RFC 4861 §7.3.3), checked lazily. */
static void nd_age(struct nd_entry *n, uint64_t now)
{
  if (n->state == ETH_ND_REACHABLE && now - n->confirmed_us >= ETH_ND_REACHABLE_US)
    n->state = ETH_ND_STALE;
}

enum eth_nd_state eth_nd_lookup(const struct eth_iface *e, const uint8_t ip6[16],
                                uint64_t now_us, uint8_t mac[6])
{
  if (!e->has6) return ETH_ND_NONE;
  struct nd_entry *n = nd_find((struct eth_iface *)(uintptr_t)e, ip6);
  if (!n) return ETH_ND_NONE;
  enum eth_nd_state s = (enum eth_nd_state)n->state;
  if (s == ETH_ND_REACHABLE && now_us - n->confirmed_us >= ETH_ND_REACHABLE_US) s = ETH_ND_STALE;
  if (mac && s != ETH_ND_INCOMPLETE) memcpy(mac, n->mac, 6);
  return s;
}

size_t eth_nd_count(const struct eth_iface *e)
{
  size_t c = 0;
  if (e->nd)
    for (unsigned i = 0; i < ETH_ND_ENTRIES; i++) c += e->nd[i].state != ETH_ND_NONE;
  return c;
}

/* A free entry or, the cache full, the oldest one holding no datagram, STALE
 * entries before the others (Linux's neigh_forced_gc frees entries nobody
 * uses; an NS flood makes STALE ones). NULL if all hold datagrams. */
static struct nd_entry *nd_alloc(struct eth_iface *e, const uint8_t ip[16], uint64_t now)
{
  struct nd_entry *victim = NULL;
  for (unsigned i = 0; i < ETH_ND_ENTRIES; i++) {
    struct nd_entry *n = &e->nd[i];
    if (n->state == ETH_ND_NONE) {
      victim = n;
      break;
    }
    if (n->nq) continue;
    nd_age(n, now);
    bool stale = n->state == ETH_ND_STALE, vstale = victim && victim->state == ETH_ND_STALE;
    if (!victim || (stale && !vstale) || (stale == vstale && n->updated_us < victim->updated_us))
      victim = n;
  }
  if (!victim) return NULL;
  if (victim->state != ETH_ND_NONE) e->st.nd_evictions++;
  memset(victim, 0, sizeof *victim);
  memcpy(victim->ip, ip, 16);
  victim->updated_us = now;
  return victim;
}

static void nd_flush(struct eth_iface *e, struct nd_entry *n)
{
  for (unsigned i = 0; i < n->nq; i++) {
    eth_send_frame(e, n->mac, ETH_TYPE_IPV6, n->q[i].data, n->q[i].len);
    free(n->q[i].data);
  }
  n->nq = 0;
}

static void nd_set_timer(struct eth_iface *e, struct nd_entry *n, uint64_t at)
{
  n->timer_us = at;
  nd_note(e, at);
}

/* ---- sending NS and NA ---- */

/* An ICMPv6 ND message from src to dst (MAC dmac): the 4 bytes after the
 * checksum (flags/reserved), the target, and an LLA option of type opt (0:
 * none) carrying our MAC. Hop limit 255 (§7.1). */
static void nd_send(struct eth_iface *e, const uint8_t dmac[6], const uint8_t src[16],
                    const uint8_t dst[16], uint8_t type, uint32_t flags,
                    const uint8_t target[16], uint8_t opt)
{
  uint8_t pkt[IPV6_HDR_LEN + ND_MSG_MIN + 8];
  uint8_t body[16 + 8];
  size_t blen = 16;
  memcpy(body, target, 16);
  if (opt) {
    body[16] = opt;
    body[17] = 1;                   /* 8 bytes: an Ethernet address (RFC 4861 §4.6.1) */
    memcpy(body + 18, e->cfg.mac, 6);
    blen += 8;
  }
  struct ipv6_hdr h = {.payload_len = (uint16_t)(ICMP6_HDR_LEN + blen),
                       .next_header = IPPROTO_ICMPV6_, .hop_limit = 255};
  memcpy(h.src, src, 16);
  memcpy(h.dst, dst, 16);
  ipv6_encode(&h, pkt, IPV6_HDR_LEN);
  int n = icmp6_encode(src, dst, type, 0, flags, body, blen, pkt + IPV6_HDR_LEN,
                       sizeof pkt - IPV6_HDR_LEN);
  if (n < 0) return;
  if (type == ND_NS) e->st.tx_ns++;
  else e->st.tx_na++;
  eth_send_frame(e, dmac, ETH_TYPE_IPV6, pkt, IPV6_HDR_LEN + (size_t)n);
}

/* The source of an NS we send: the given one if ours and usable (§7.2.2: the
 * waiting datagram's), else the static address, else the link-local; NULL if
 * none is usable yet. */
static const uint8_t *ns_source(const struct eth_iface *e, const uint8_t *hint)
{
  if (hint && our_addr(e, hint, false) >= 0) return hint;
  for (int i = 0; i < 2; i++)
    if (e->addr6[i].state == ETH_ADDR6_PREFERRED) return e->addr6[i].ip;
  return NULL;
}

/* Linux's ndisc_solicit: multicast to the solicited-node group while
 * INCOMPLETE, unicast to the cached MAC when probing. */
static void nd_solicit(struct eth_iface *e, struct nd_entry *n, const uint8_t *src_hint,
                       uint64_t now)
{
  const uint8_t *src = ns_source(e, src_hint);
  n->tries++;
  nd_set_timer(e, n, now + ETH_ND_RETRANS_US);
  if (!src) return;
  if (n->state == ETH_ND_PROBE) {
    nd_send(e, n->mac, src, n->ip, ND_NS, 0, n->ip, ND_OPT_SLLA);
    return;
  }
  uint8_t sn[16], mac[6];
  eth_solicited_node(n->ip, sn);
  eth_mcast_mac(sn, mac);
  nd_send(e, mac, src, sn, ND_NS, 0, n->ip, ND_OPT_SLLA);
}

static void dad_send(struct eth_iface *e, struct nd_addr *a, uint64_t now)
{
  uint8_t sn[16], mac[6];
  eth_solicited_node(a->ip, sn);
  eth_mcast_mac(sn, mac);
  /* RFC 4862 §5.4.2: from ::, to the solicited-node group, no SLLAO */
  nd_send(e, mac, ANY6, sn, ND_NS, 0, a->ip, 0);
  a->sent++;
  a->timer_us = now + ETH_ND_RETRANS_US;
  nd_note(e, a->timer_us);
}

static void dad_failed(struct eth_iface *e, struct nd_addr *a)
{
  /* Linux's addrconf_dad_failure: the address is never used (IFA_F_DADFAILED) */
  a->state = ETH_ADDR6_DUPLICATE;
  a->timer_us = 0;
  e->st.dad_duplicates++;
}

/* ---- output ---- */

static bool on_link(const struct eth_iface *e, const uint8_t a[16])
{
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;    /* fe80::/10 */
  unsigned bits = e->cfg.prefix6_len, bytes = bits / 8;
  if (memcmp(a, e->cfg.ip6, bytes)) return false;
  if (bits % 8) {
    uint8_t m = (uint8_t)(0xff << (8 - bits % 8));
    if ((a[bytes] ^ e->cfg.ip6[bytes]) & m) return false;
  }
  return true;
}

void nd_ip_output(struct eth_iface *e, const uint8_t *pkt, size_t len, uint64_t now)
{
  if (len < IPV6_HDR_LEN) {
    e->st.tx_oversize++;
    return;
  }
  const uint8_t *src = pkt + 8, *dst = pkt + 24;
  if (our_addr(e, src, false) < 0) {
    e->st.tx_tentative++;           /* tentative, duplicate, or not ours at all */
    return;
  }
  if (ipv6_is_multicast(dst)) {
    uint8_t mac[6];
    eth_mcast_mac(dst, mac);
    eth_send_frame(e, mac, ETH_TYPE_IPV6, pkt, len);
    return;
  }
  const uint8_t *hop = dst;
  if (!on_link(e, dst)) {
    if (!memcmp(e->cfg.gateway6, ANY6, 16)) {
      e->st.no_route++;
      return;
    }
    hop = e->cfg.gateway6;
  }
  struct nd_entry *n = nd_find(e, hop);
  if (n && n->state != ETH_ND_INCOMPLETE) {
    nd_age(n, now);
    eth_send_frame(e, n->mac, ETH_TYPE_IPV6, pkt, len);
    if (n->state == ETH_ND_STALE) {
      /* §7.3.3: first use of a STALE entry -> DELAY, probe in 5 s unless
       * confirmed (Linux's neigh_event_send) */
      n->state = ETH_ND_DELAY;
      n->updated_us = now;
      nd_set_timer(e, n, now + ETH_ND_DELAY_FIRST_PROBE_US);
    }
    return;
  }
  if (!n) {
    n = nd_alloc(e, hop, now);
    if (!n) {
      e->st.nd_queue_full++;
      return;
    }
    n->state = ETH_ND_INCOMPLETE;
    nd_solicit(e, n, src, now);
  }
  uint8_t *copy = malloc(len);
  if (!copy) {
    e->st.nd_queue_full++;
    return;
  }
  memcpy(copy, pkt, len);
  if (n->nq == ETH_ND_QUEUE) {
    /* Linux's __neigh_event_send: the oldest waiting datagram goes */
    free(n->q[0].data);
    memmove(n->q, n->q + 1, (ETH_ND_QUEUE - 1) * sizeof n->q[0]);
    n->nq--;
    e->st.nd_queue_full++;
  }
  n->q[n->nq++] = (struct arp_pkt){len, copy};
}

/* ---- input ---- */

struct nd_msg {
  const uint8_t *src, *dst;         /* IPv6 addresses */
  uint8_t type;
  uint8_t flags;                    /* NA: R, S, O */
  const uint8_t *target;
  const uint8_t *lla;               /* the SLLAO (NS) or TLLAO (NA) address, if any */
};

/* RFC 4861 §7.1.1 / §7.1.2 checks beyond the ICMPv6 checksum and code, and
 * the option walk (§4.6: every option's length non-zero and inside the
 * message; at most ETH_ND_MAX_OPTS walked). An LLA option of the wrong size
 * for Ethernet refuses the message, as Linux's ndisc_recv_ns/na ("invalid
 * link-layer address length"); a second one is ignored (Linux's
 * ndisc_parse_options keeps the first); unknown options are skipped (§4.6). */
static bool nd_parse(const struct icmp6_msg *m, struct nd_msg *out)
{
  if (m->code != 0 || m->data_len < ND_MSG_MIN - ICMP6_HDR_LEN) return false;
  out->type = m->type;
  out->flags = (uint8_t)(m->rest >> 24);
  out->target = m->data;
  out->lla = NULL;
  if (ipv6_is_multicast(out->target)) return false;
  const uint8_t *o = m->data + 16;
  size_t left = m->data_len - 16;
  unsigned nopts = 0;
  uint8_t want = m->type == ND_NS ? ND_OPT_SLLA : ND_OPT_TLLA;
  while (left) {
    if (left < 2 || o[1] == 0 || (size_t)o[1] * 8 > left || ++nopts > ETH_ND_MAX_OPTS)
      return false;
    size_t olen = (size_t)o[1] * 8;
    if (o[0] == want) {
      if (olen != 8) return false;
      if (!out->lla) out->lla = o + 2;
    }
    o += olen;
    left -= olen;
  }
  /* never a group or broadcast as a neighbour's address */
  if (out->lla && (out->lla[0] & 1)) return false;
  return true;
}

/* §7.2.3 and Linux's ndisc_recv_ns. */
static void ns_input(struct eth_iface *e, const uint8_t smac[6], const struct nd_msg *ns,
                     uint64_t now)
{
  bool dad = !memcmp(ns->src, ANY6, 16);
  /* §7.1.1: from :: only to a solicited-node group, with no SLLAO */
  uint8_t sn[16];
  eth_solicited_node(ns->target, sn);
  if (dad && (memcmp(ns->dst, sn, 16) || ns->lla)) {
    e->st.rx_nd_bad++;
    return;
  }
  /* A destination must be our unicast address or the target's group. */
  if (ipv6_is_multicast(ns->dst) ? memcmp(ns->dst, sn, 16) != 0 : our_addr(e, ns->dst, true) < 0) {
    e->st.rx_nd_bad++;
    return;
  }
  int which = our_addr(e, ns->target, true);
  if (which < 0) {
    e->st.rx_ns_not_ours++;
    return;
  }
  struct nd_addr *a = &e->addr6[which];
  if (a->state == ETH_ADDR6_TENTATIVE) {
    /* RFC 4862 §5.4.3: an NS from :: for it is another node's DAD, unless it
     * is our own come back (sent from our MAC; Linux compares the nonce of
     * RFC 7527, we send none); from a unicast source it is not answered */
    if (dad && memcmp(smac, e->cfg.mac, 6)) dad_failed(e, a);
    else e->st.rx_ns_not_ours++;
    return;
  }
  if (a->state != ETH_ADDR6_PREFERRED) {
    e->st.rx_ns_not_ours++;
    return;
  }
  if (our_addr(e, ns->src, true) >= 0) {
    e->st.rx_nd_bad++;                 /* "from" us: not a neighbour */
    return;
  }
  e->st.rx_ns++;
  if (dad) {
    /* §7.2.4: defend to all-nodes, S clear, with our address */
    uint8_t mac[6];
    eth_mcast_mac(ALL_NODES, mac);
    nd_send(e, mac, a->ip, ALL_NODES, ND_NA, (uint32_t)NA_F_OVERRIDE << 24, a->ip, ND_OPT_TLLA);
    return;
  }
  const uint8_t *reply_mac = smac;
  if (ns->lla) {
    /* §7.2.3: create (STALE) or update; an INCOMPLETE entry sends its queue
     * (Linux's neigh_event_ns -> neigh_update NEIGH_UPDATE_F_OVERRIDE) */
    struct nd_entry *n = nd_find(e, ns->src);
    if (!n) {
      n = nd_alloc(e, ns->src, now);
      if (n) {
        memcpy(n->mac, ns->lla, 6);
        n->state = ETH_ND_STALE;
      }
    } else if (n->state == ETH_ND_INCOMPLETE || memcmp(n->mac, ns->lla, 6)) {
      memcpy(n->mac, ns->lla, 6);
      n->state = ETH_ND_STALE;
      n->tries = 0;
      n->timer_us = 0;
      n->updated_us = now;
      nd_flush(e, n);
    }
    reply_mac = ns->lla;
  } else {
    /* a unicast NS without SLLAO: answered to the frame's sender (Linux would
     * resolve the source through its cache; the frame says where it is) */
    struct nd_entry *n = nd_find(e, ns->src);
    if (n && n->state != ETH_ND_INCOMPLETE) reply_mac = n->mac;
  }
  /* §7.2.4; Linux's ndisc_send_na with inc_opt = the NS was multicast */
  uint32_t fl = (uint32_t)(NA_F_SOLICITED | NA_F_OVERRIDE) << 24;
  nd_send(e, reply_mac, a->ip, ns->src, ND_NA, fl, a->ip,
          ipv6_is_multicast(ns->dst) ? ND_OPT_TLLA : 0);
}

/* §7.2.5 and Linux's ndisc_recv_na -> neigh_update. */
static void na_input(struct eth_iface *e, const struct nd_msg *na, uint64_t now)
{
  bool solicited = na->flags & NA_F_SOLICITED, override = na->flags & NA_F_OVERRIDE;
  if (ipv6_is_multicast(na->dst) && solicited) {
    e->st.rx_nd_bad++;                 /* §7.1.2 */
    return;
  }
  int which = our_addr(e, na->target, true);
  if (which >= 0) {
    struct nd_addr *a = &e->addr6[which];
    if (a->state == ETH_ADDR6_TENTATIVE) dad_failed(e, a);   /* RFC 4862 §5.4.4 */
    else e->st.rx_na_our_addr++;       /* Linux: "advertised our address", dropped */
    return;
  }
  e->st.rx_na++;
  struct nd_entry *n = nd_find(e, na->target);
  if (!n) {
    e->st.rx_na_no_entry++;            /* §7.2.5: no entry is created */
    return;
  }
  if (n->state == ETH_ND_INCOMPLETE) {
    if (!na->lla) return;              /* §7.2.5: nothing to learn */
    memcpy(n->mac, na->lla, 6);
    n->state = solicited ? ETH_ND_REACHABLE : ETH_ND_STALE;
    n->confirmed_us = now;
    n->tries = 0;
    n->timer_us = 0;
    n->updated_us = now;
    nd_flush(e, n);
    return;
  }
  nd_age(n, now);
  bool differs = na->lla && memcmp(na->lla, n->mac, 6);
  if (!override && differs) {
    /* §7.2.5: O clear and another address: a REACHABLE entry becomes STALE,
     * the cached address stays; otherwise ignored */
    if (n->state == ETH_ND_REACHABLE) {
      n->state = ETH_ND_STALE;
      n->updated_us = now;
    }
    return;
  }
  if (differs) memcpy(n->mac, na->lla, 6);
  if (solicited) {
    n->state = ETH_ND_REACHABLE;
    n->confirmed_us = now;
    n->tries = 0;
    n->timer_us = 0;
  } else if (differs) {
    n->state = ETH_ND_STALE;
    n->timer_us = 0;
  }
  n->updated_us = now;
}

void nd_frame_input(struct eth_iface *e, const uint8_t src_mac[6], const uint8_t *p,
                    size_t len, uint64_t now, unsigned flags)
{
  struct ipv6_pkt ip;
  int rc = ipv6_decode(p, len, &ip);
  if (rc == 0 && ip.proto == IPPROTO_ICMPV6_ && ip.upper_len >= 1 &&
      p[ip.upper_off] >= 133 && p[ip.upper_off] <= 137) {
    uint8_t type = p[ip.upper_off];
    if (type != ND_NS && type != ND_NA) {
      e->st.rx_nd_other++;             /* RS, RA, Redirect: a host with a static route */
      return;
    }
    struct icmp6_msg m;
    struct nd_msg nd;
    if (ip.h.hop_limit != 255 ||
        icmp6_decode(ip.h.src, ip.h.dst, p + ip.upper_off, ip.upper_len, &m) != 0 ||
        !nd_parse(&m, &nd) || ipv6_is_multicast(ip.h.src)) {
      e->st.rx_nd_bad++;
      return;
    }
    nd.src = ip.h.src;
    nd.dst = ip.h.dst;
    if (type == ND_NS) ns_input(e, src_mac, &nd, now);
    else na_input(e, &nd, now);
    return;
  }
  /* Not ND: the stack's if unicast (it counts what it refuses); groups other
   * than ND's are not served. */
  if (len >= IPV6_HDR_LEN && ipv6_is_multicast(p + 24)) {
    e->st.rx_ip6_mcast++;
    return;
  }
  e->ip_in(e->ctx, p, len, flags);
}

uint64_t nd_poll(struct eth_iface *e, uint64_t now)
{
  if (now < e->nd_next) return e->nd_next;       /* nothing due: no walk */
  uint64_t next = UINT64_MAX;
  for (int i = 0; i < 2; i++) {
    struct nd_addr *a = &e->addr6[i];
    if (a->state != ETH_ADDR6_TENTATIVE || !a->timer_us) continue;
    if (a->timer_us <= now) {
      if (a->sent >= 1) {             /* DupAddrDetectTransmits = 1, Linux's default */
        a->state = ETH_ADDR6_PREFERRED;
        a->timer_us = 0;
        continue;
      }
      dad_send(e, a, now);
    }
    if (a->timer_us < next) next = a->timer_us;
  }
  for (unsigned i = 0; i < ETH_ND_ENTRIES; i++) {
    struct nd_entry *n = &e->nd[i];
    if (n->state == ETH_ND_NONE || !n->timer_us) continue;
    if (n->timer_us <= now) {
      switch (n->state) {
      case ETH_ND_DELAY:
        /* §7.3.3: no confirmation within DELAY_FIRST_PROBE_TIME -> PROBE */
        n->state = ETH_ND_PROBE;
        n->tries = 0;
        nd_solicit(e, n, NULL, now);
        break;
      case ETH_ND_INCOMPLETE:
      case ETH_ND_PROBE:
        if (n->tries >= (n->state == ETH_ND_PROBE ? ETH_ND_MAX_UCAST_SOLICIT
                                                  : ETH_ND_MAX_MCAST_SOLICIT)) {
          /* Linux's neigh_timer_handler -> NUD_FAILED: what waited is
           * dropped (no ICMPv6 address unreachable sent here) */
          e->st.nd_failed += n->nq ? n->nq : 1;
          nd_drop_queue(n);
          n->state = ETH_ND_NONE;
          continue;
        }
        nd_solicit(e, n, NULL, now);
        break;
      default:
        n->timer_us = 0;
        continue;
      }
    }
    if (n->timer_us < next) next = n->timer_us;
  }
  e->nd_next = next;
  return next;
}
