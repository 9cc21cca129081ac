/* Ethernet II and ARP (RFC 826) for a ustcp stack on a frame device (eth.h). */
#include "link/eth.h"
#include "link/eth_int.h"
#include "wire/bytes.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

struct eth_iface *eth_new(const struct eth_config *c, eth_frame_fn out, eth_ip_fn ip_in,
                          void *ctx)
{
  struct eth_iface *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->cfg = *c;
  if (!e->cfg.mtu) e->cfg.mtu = 1500;
  e->mask = c->prefix_len == 0 ? 0 : c->prefix_len >= 32 ? 0xffffffffu
                                                        : ~((1u << (32 - c->prefix_len)) - 1);
  e->out = out;
  e->ip_in = ip_in;
  e->ctx = ctx;
  e->deadline = UINT64_MAX;
  size_t cap = ETH_HDR_LEN + (e->cfg.mtu > ETH_MIN_FRAME ? e->cfg.mtu : ETH_MIN_FRAME);
  e->frame = calloc(1, cap);
  if (!e->frame || nd_init(e) < 0) {
    free(e->frame);
    free(e);
    return NULL;
  }
  return e;
}

static void drop_queue(struct arp_entry *a)
{
  for (unsigned i = 0; i < a->nq; i++) free(a->q[i].data);
  a->nq = 0;
}

void eth_free(struct eth_iface *e)
{
  if (!e) return;
  for (unsigned i = 0; i < ETH_ARP_ENTRIES; i++) drop_queue(&e->arp[i]);
  nd_free(e);
  free(e->frame);
  free(e);
}

const struct eth_stats *eth_get_stats(const struct eth_iface *e) { return &e->st; }

void eth_send_frame(struct eth_iface *e, const uint8_t dst[6], uint16_t type,
                    const uint8_t *payload, size_t plen)
{
  uint8_t *f = e->frame;
  memcpy(f, dst, 6);
  memcpy(f + 6, e->cfg.mac, 6);
  put16(f + 12, type);
  memcpy(f + ETH_HDR_LEN, payload, plen);
  size_t len = ETH_HDR_LEN + plen;
  if (len < ETH_MIN_FRAME) {
    memset(f + len, 0, ETH_MIN_FRAME - len);
    len = ETH_MIN_FRAME;
  }
  e->st.tx_frames++;
  e->out(e->ctx, f, len);
}

static void send_arp(struct eth_iface *e, uint16_t op, const uint8_t eth_dst[6],
                     const uint8_t tha[6], uint32_t tpa)
{
  uint8_t a[ARP_LEN];
  put16(a, 1);                   /* Ethernet */
  put16(a + 2, ETH_TYPE_IPV4);
  a[4] = 6;
  a[5] = 4;
  put16(a + 6, op);
  memcpy(a + 8, e->cfg.mac, 6);
  put32(a + 14, e->cfg.ip);
  memcpy(a + 18, tha, 6);
  put32(a + 24, tpa);
  if (op == 1) e->st.tx_arp_requests++;
  else e->st.tx_arp_replies++;
  eth_send_frame(e, eth_dst, ETH_TYPE_ARP, a, ARP_LEN);
}

static void arp_request(struct eth_iface *e, struct arp_entry *a, uint64_t now)
{
  static const uint8_t zero[6];
  /* A neighbour being re-confirmed is asked by unicast first (Linux's PROBE
   * state); an unknown one by broadcast. */
  send_arp(e, 1, a->state == ARP_REACHABLE ? a->mac : BCAST, zero, a->ip);
  a->tries++;
  a->next_try_us = now + ETH_ARP_RETRANS_US;
  eth_note_deadline(e, a->next_try_us);
}

void eth_note_deadline(struct eth_iface *e, uint64_t at_us)
{
  if (at_us < e->deadline) e->deadline = at_us;
}

void eth_announce(struct eth_iface *e)
{
  static const uint8_t zero[6];
  send_arp(e, 1, BCAST, zero, e->cfg.ip);   /* sender = target: gratuitous */
}

static struct arp_entry *arp_find(struct eth_iface *e, uint32_t ip)
{
  if (e->last && e->last->state != ARP_FREE && e->last->ip == ip) return e->last;
  for (unsigned i = 0; i < ETH_ARP_ENTRIES; i++)
    if (e->arp[i].state != ARP_FREE && e->arp[i].ip == ip) return e->last = &e->arp[i];
  return NULL;
}

bool eth_arp_lookup(const struct eth_iface *e, uint32_t ip, uint8_t mac[6])
{
  struct arp_entry *a = arp_find((struct eth_iface *)(uintptr_t)e, ip);
  if (!a || a->state != ARP_REACHABLE) return false;
  memcpy(mac, a->mac, 6);
  return true;
}

size_t eth_arp_count(const struct eth_iface *e)
{
  size_t n = 0;
  for (unsigned i = 0; i < ETH_ARP_ENTRIES; i++) n += e->arp[i].state != ARP_FREE;
  return n;
}

/* A free entry, or the oldest one with no datagram waiting (evicted); NULL if
 * every entry holds datagrams. */
static struct arp_entry *arp_alloc(struct eth_iface *e, uint32_t ip, uint64_t now)
{
  struct arp_entry *victim = NULL;
  for (unsigned i = 0; i < ETH_ARP_ENTRIES; i++) {
    struct arp_entry *a = &e->arp[i];
    if (a->state == ARP_FREE) {
      victim = a;
      break;
    }
    if (a->nq == 0 && (!victim || a->created_us < victim->created_us)) victim = a;
  }
  if (!victim) return NULL;
  if (victim->state != ARP_FREE) e->st.arp_evictions++;
  memset(victim, 0, sizeof *victim);
  victim->ip = ip;
  victim->created_us = now;
  return victim;
}

static void arp_flush(struct eth_iface *e, struct arp_entry *a)
{
  for (unsigned i = 0; i < a->nq; i++) {
    eth_send_frame(e, a->mac, ETH_TYPE_IPV4, a->q[i].data, a->q[i].len);
    free(a->q[i].data);
  }
  a->nq = 0;
}

void eth_ip_output(struct eth_iface *e, const uint8_t *pkt, size_t len, uint64_t now_us)
{
  if (len >= 1 && (pkt[0] >> 4) == 6 && e->has6 && len <= e->cfg.mtu) {
    nd_ip_output(e, pkt, len, now_us);
    return;
  }
  if (len < 20 || len > e->cfg.mtu || (pkt[0] >> 4) != 4) {
    e->st.tx_oversize++;
    return;
  }
  uint32_t dst = be32(pkt + 16);
  uint32_t hop = dst;
  if ((dst ^ e->cfg.ip) & e->mask) {
    if (!e->cfg.gateway) {
      e->st.no_route++;
      return;
    }
    hop = e->cfg.gateway;
  }
  struct arp_entry *a = arp_find(e, hop);
  if (a && a->state == ARP_REACHABLE) {
    eth_send_frame(e, a->mac, ETH_TYPE_IPV4, pkt, len);
    /* Past its reachable time the entry is still used while it is asked
     * again (Linux's STALE -> PROBE), so a connection does not stall. */
    if (now_us - a->confirmed_us >= ETH_ARP_REACHABLE_US && now_us >= a->next_try_us)
      arp_request(e, a, now_us);
    return;
  }
  if (!a) {
    a = arp_alloc(e, hop, now_us);
    if (!a) {
      e->st.arp_queue_full++;
      return;
    }
    a->state = ARP_INCOMPLETE;
    arp_request(e, a, now_us);
  }
  uint8_t *copy = malloc(len);
  if (!copy) {
    e->st.arp_queue_full++;
    return;
  }
  memcpy(copy, pkt, len);
  if (a->nq == ETH_ARP_QUEUE) {
    /* As Linux's unresolved queue: the oldest waiting datagram goes. */
    free(a->q[0].data);
    memmove(a->q, a->q + 1, (ETH_ARP_QUEUE - 1) * sizeof a->q[0]);
    a->nq--;
    e->st.arp_queue_full++;
  }
  a->q[a->nq++] = (struct arp_pkt){len, copy};
}

static void arp_input(struct eth_iface *e, const uint8_t *p, size_t len, uint64_t now)
{
  if (len < ARP_LEN || be16(p) != 1 || be16(p + 2) != ETH_TYPE_IPV4 || p[4] != 6 || p[5] != 4) {
    e->st.rx_arp_bad++;
    return;
  }
  uint16_t op = be16(p + 6);
  const uint8_t *sha = p + 8;
  uint32_t spa = be32(p + 14), tpa = be32(p + 24);
  /* A sender hardware address that is multicast or broadcast, our own address
   * claimed by another, or a sender off our prefix: never cached. */
  if ((op != 1 && op != 2) || (sha[0] & 1) || spa == e->cfg.ip ||
      (spa != 0 && ((spa ^ e->cfg.ip) & e->mask))) {
    e->st.rx_arp_bad++;
    return;
  }
  if (op == 1) e->st.rx_arp_requests++;
  else e->st.rx_arp_replies++;
  /* RFC 826 "merge": an entry for the sender is brought up to date. An ARP
   * probe (sender address 0, RFC 5227) updates nothing. */
  bool merged = false;
  struct arp_entry *a = spa ? arp_find(e, spa) : NULL;
  if (a) {
    memcpy(a->mac, sha, 6);
    a->state = ARP_REACHABLE;
    a->confirmed_us = now;
    a->tries = 0;
    a->next_try_us = 0;
    arp_flush(e, a);
    merged = true;
  }
  if (tpa != e->cfg.ip) return;        /* not about us (gratuitous ARP included) */
  if (!merged && spa) {
    a = arp_alloc(e, spa, now);
    if (a) {
      memcpy(a->mac, sha, 6);
      a->state = ARP_REACHABLE;
      a->confirmed_us = now;
    }
  }
  if (op == 1) send_arp(e, 2, sha, sha, spa);
}

void eth_frame_input(struct eth_iface *e, const uint8_t *f, size_t len, uint64_t now_us,
                     unsigned flags)
{
  e->st.rx_frames++;
  if (len < ETH_HDR_LEN) {
    e->st.rx_short++;
    return;
  }
  if (len > (e->cfg.max_rx_frame ? e->cfg.max_rx_frame : ETH_HDR_LEN + (size_t)e->cfg.mtu)) {
    e->st.rx_oversize++;
    return;
  }
  if (memcmp(f, e->cfg.mac, 6) != 0 && memcmp(f, BCAST, 6) != 0 &&
      !(e->has6 && nd_mcast_ours(e, f))) {
    e->st.rx_not_for_us++;             /* another host's, or a group we are not in */
    return;
  }
  uint16_t type = be16(f + 12);
  const uint8_t *p = f + ETH_HDR_LEN;
  size_t plen = len - ETH_HDR_LEN;
  switch (type) {
  case ETH_TYPE_IPV4:
    if (plen < 20) {
      e->st.rx_short++;
      return;
    }
    e->ip_in(e->ctx, p, plen, flags);
    return;
  case ETH_TYPE_ARP:
    arp_input(e, p, plen, now_us);
    return;
  case ETH_TYPE_VLAN:
    e->st.rx_vlan++;                   /* no VLAN is configured: tagged frames are not ours */
    return;
  case ETH_TYPE_IPV6:
    if (!e->has6) {
      e->st.rx_ipv6++;                 /* no IPv6 address: not ours */
      return;
    }
    if (plen < 40) {
      e->st.rx_short++;
      return;
    }
    nd_frame_input(e, f + 6, p, plen, now_us, flags);
    return;
  default:
    e->st.rx_unknown_type++;
    return;
  }
}

uint64_t eth_poll(struct eth_iface *e, uint64_t now_us)
{
  uint64_t next = UINT64_MAX;
  for (unsigned i = 0; i < ETH_ARP_ENTRIES; i++) {
    struct arp_entry *a = &e->arp[i];
    if (a->state == ARP_FREE || !a->next_try_us) continue;
    if (a->next_try_us <= now_us) {
      if (a->tries >= ETH_ARP_TRIES) {
        /* No answer to three requests: what waited is dropped (Linux's
         * arp_error_report; ICMP host unreachable is not sent here). */
        e->st.arp_failed += a->nq ? a->nq : 1;
        drop_queue(a);
        a->state = ARP_FREE;
        continue;
      }
      arp_request(e, a, now_us);
    }
    if (a->next_try_us < next) next = a->next_try_us;
  }
  if (e->has6) {
    uint64_t n6 = nd_poll(e, now_us);
    if (n6 < next) next = n6;
  }
  e->deadline = next;
  return next;
}

uint64_t eth_deadline(const struct eth_iface *e) { return e->deadline; }

