/* IPv4 reassembly (RFC 791 §3.2, RFC 815), with the limits Linux puts on it
 * (net/ipv4/ip_fragment.c, inet_fragment.c), since TUN and TAP devices deliver
 * whatever fragments the network made and every fragment may be forged:
 *
 *   - memory: all queues together hold at most ipfrag_high_thresh bytes
 *     (Linux's net.ipv4.ipfrag_high_thresh, 4 MiB); a fragment that would pass
 *     it is dropped, as Linux refuses new fragments over the threshold;
 *   - time: a queue not completed within ipfrag_time (30 s) is freed (checked on
 *     every fragment and every ustcp_poll);
 *   - work: at most FRAG_MAX_QUEUES queues and FRAG_MAX_PIECES fragments per
 *     datagram, so one fragment costs O(queues + pieces) whatever an attacker
 *     sends (Linux uses a hash and an rbtree; these bounds do the same job);
 *   - overlaps: a fragment overlapping another one of the same datagram drops
 *     the whole datagram (Linux since 4.19, "discard IPv4 datagrams with
 *     overlapping segments"; RFC 5722 makes it the rule for IPv6), an exact
 *     duplicate only itself (Linux's IPFRAG_DUP);
 *   - malformed: a non-last fragment whose length is not a multiple of 8, an
 *     empty one, one ending past 65535, or a last fragment disagreeing with the
 *     length already known drops the datagram (Linux's ip_frag_queue checks).
 * Every drop is counted (stats.ip_frag_dropped, ip_frag_overlaps,
 * ip_frag_timeouts); stats.ip_frag_reassembled counts datagrams rebuilt.
 * Not done: the ICMP "fragment reassembly time exceeded" that Linux sends when
 * a queue holding the first fragment times out (RFC 792; a MAY in RFC 1122).
 */
#include <stdlib.h>
#include <string.h>
#include "stack/stack.h"
#include "wire/wire.h"

#define FRAG_MAX_QUEUES 1024
#define FRAG_MAX_PIECES 128
#define FRAG_IP_MAX 65535u

struct frag_piece {
  struct frag_piece *next;   /* sorted by offset */
  uint16_t off, len;
  uint8_t data[];
};

struct frag_queue {
  struct frag_queue *next;
  uint32_t src, dst;
  uint16_t id;
  uint8_t proto;
  bool have_last;            /* the fragment without MF arrived: total is known */
  uint8_t hdr_len;           /* of the first fragment's header (0: not arrived) */
  uint16_t npieces;
  uint32_t total;            /* payload bytes of the whole datagram, if have_last */
  uint32_t max_end;          /* largest end offset seen */
  uint32_t got;              /* payload bytes held */
  size_t mem;                /* bytes this queue holds (pieces and itself) */
  uint64_t expires_us;
  struct frag_piece *pieces;
  uint8_t hdr[60];           /* the first fragment's IP header */
};

static void queue_free(struct ustcp_stack *s, struct frag_queue **pp)
{
  struct frag_queue *q = *pp;
  *pp = q->next;
  for (struct frag_piece *p = q->pieces, *n; p; p = n) {
    n = p->next;
    free(p);
  }
  s->frag_mem -= q->mem;
  s->frag_nqueues--;
  free(q);
}

void ip_frag_expire(struct ustcp_stack *s, uint64_t now_us)
{
  for (struct frag_queue **pp = &s->frag_queues; *pp;) {
    if ((*pp)->expires_us <= now_us) {
      s->stats.ip_frag_timeouts++;
      queue_free(s, pp);
    } else {
      pp = &(*pp)->next;
    }
  }
}

void ip_frag_free_all(struct ustcp_stack *s)
{
  while (s->frag_queues) queue_free(s, &s->frag_queues);
}

static uint8_t *assemble(struct ustcp_stack *s, struct frag_queue **pp, size_t *out_len)
{
  struct frag_queue *q = *pp;
  size_t len = (size_t)q->hdr_len + q->total;
  uint8_t *pkt = malloc(len);
  if (!pkt) {
    s->stats.alloc_failures++;
    s->stats.ip_frag_dropped++;
    queue_free(s, pp);
    return NULL;
  }
  memcpy(pkt, q->hdr, q->hdr_len);
  for (struct frag_piece *p = q->pieces; p; p = p->next)
    memcpy(pkt + q->hdr_len + p->off, p->data, p->len);
  /* The whole datagram's header: the first fragment's, with its length, no MF
   * and offset 0 (RFC 791 §3.2 reassembly: "the header of the first fragment"). */
  pkt[2] = (uint8_t)(len >> 8);
  pkt[3] = (uint8_t)len;
  pkt[6] &= 0x40;            /* keep DF, clear MF and the offset */
  pkt[7] = 0;
  pkt[10] = pkt[11] = 0;
  uint16_t c = inet_csum_fold(inet_csum_add(0, pkt, q->hdr_len));
  pkt[10] = (uint8_t)(c >> 8);
  pkt[11] = (uint8_t)c;
  s->stats.ip_frag_reassembled++;
  queue_free(s, pp);
  *out_len = len;
  return pkt;
}

static void drop_queue(struct ustcp_stack *s, struct frag_queue **pp)
{
  s->stats.ip_frag_dropped++;
  queue_free(s, pp);
}

uint8_t *ip_frag_in(struct ustcp_stack *s, const struct ipv4_hdr *ip, const uint8_t *pkt,
                    const uint8_t *payload, size_t plen, size_t *out_len)
{
  uint64_t now = s->eng.now_us;
  ip_frag_expire(s, now);
  uint32_t off = (uint32_t)ip->frag_off * 8u;
  uint32_t end = off + (uint32_t)plen;
  bool more = (ip->flags & IPV4_FLAG_MF) != 0;
  size_t hlen = (size_t)ip->ihl * 4u;
  /* Linux's ip_frag_queue: a non-last fragment is a multiple of 8 bytes, none
   * is empty, and none reaches past the largest datagram. */
  if (plen == 0 || (more && (plen & 7u)) || hlen + end > FRAG_IP_MAX) {
    s->stats.ip_frag_dropped++;
    return NULL;
  }
  struct frag_queue **pp = &s->frag_queues;
  for (; *pp; pp = &(*pp)->next) {
    struct frag_queue *q = *pp;
    if (q->id == ip->id && q->src == ip->src && q->dst == ip->dst && q->proto == ip->proto) break;
  }
  size_t cost = sizeof(struct frag_piece) + plen;
  if (!*pp) {
    if (s->frag_nqueues >= FRAG_MAX_QUEUES ||
        s->frag_mem + sizeof(struct frag_queue) + cost > s->cfg.ipfrag_high_thresh) {
      s->stats.ip_frag_dropped++;
      return NULL;
    }
    struct frag_queue *q = calloc(1, sizeof *q);
    if (!q) {
      s->stats.alloc_failures++;
      s->stats.ip_frag_dropped++;
      return NULL;
    }
    q->src = ip->src;
    q->dst = ip->dst;
    q->id = ip->id;
    q->proto = ip->proto;
    q->expires_us = now + s->cfg.ipfrag_time_us;
    q->mem = sizeof *q;
    q->next = s->frag_queues;
    s->frag_queues = q;
    s->frag_nqueues++;
    s->frag_mem += q->mem;
    pp = &s->frag_queues;
  } else if (s->frag_mem + cost > s->cfg.ipfrag_high_thresh) {
    s->stats.ip_frag_dropped++;
    return NULL;
  }
  struct frag_queue *q = *pp;
  if (!more) {
    /* The last fragment fixes the length: it must not disagree with one seen
     * before, nor end before data already held. */
    if ((q->have_last && end != q->total) || end < q->max_end) {
      drop_queue(s, pp);
      return NULL;
    }
    q->have_last = true;
    q->total = end;
  } else if (q->have_last && end > q->total) {
    drop_queue(s, pp);
    return NULL;
  }
  /* Find the place by offset; any overlap but an exact duplicate drops all. */
  struct frag_piece *prev = NULL, *next = q->pieces;
  while (next && next->off < off) {
    prev = next;
    next = next->next;
  }
  if (next && next->off == off && next->len == plen) {
    s->stats.ip_frag_dropped++;          /* duplicate: this fragment only */
    return NULL;
  }
  if ((prev && (uint32_t)prev->off + prev->len > off) || (next && next->off < end)) {
    s->stats.ip_frag_overlaps++;
    drop_queue(s, pp);
    return NULL;
  }
  if (q->npieces >= FRAG_MAX_PIECES) {
    drop_queue(s, pp);
    return NULL;
  }
  struct frag_piece *p = malloc(cost);
  if (!p) {
    s->stats.alloc_failures++;
    drop_queue(s, pp);
    return NULL;
  }
  p->off = (uint16_t)off;
  p->len = (uint16_t)plen;
  memcpy(p->data, payload, plen);
  p->next = next;
  if (prev) prev->next = p;
  else q->pieces = p;
  q->npieces++;
  q->got += (uint32_t)plen;
  if (end > q->max_end) q->max_end = end;
  q->mem += cost;
  s->frag_mem += cost;
  if (off == 0) {
    memcpy(q->hdr, pkt, hlen);
    q->hdr_len = (uint8_t)hlen;
  }
  /* Without overlaps, holding every byte of [0, total) means complete. */
  if (q->have_last && q->hdr_len && q->got == q->total) return assemble(s, pp, out_len);
  return NULL;
}
