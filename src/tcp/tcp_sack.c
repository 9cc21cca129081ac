/* Selective acknowledgment (RFC 2018) and SACK-directed loss recovery.
 *
 *   receiver: sack_fill_blocks   the out-of-order intervals as SACK blocks on
 *                                our ACKs: the latest arrival's block first,
 *                                then the most recently reported ones (§4),
 *                                then the lowest; O(log n) per block
 *   sender:   sack_update        the peer's blocks into a small scoreboard of
 *                                SACKed ranges above snd_una (merged, sorted)
 *             sack_prune         drops what the cumulative ACK now covers
 *             sack_next_hole     the first un-SACKed range below the highest
 *                                SACKed byte, at or after a point: what
 *                                recovery retransmits next (after RFC 6675's
 *                                NextSeg, rule 1)
 *             sack_skip          retransmissions step over SACKed ranges
 *
 *             sack_lost_end      RFC 6675 IsLost: below it un-SACKed bytes are lost
 *             tcp_pipe           RFC 6675 pipe, for PRR and the output in recovery
 *
 * Recovery (tcp_input.c: dup_ack, prr_ack, recovery_send) sends as much as
 * PRR (RFC 6937) allows per ACK: lost holes first, then new data, then the
 * other holes (RFC 6675 NextSeg), so several losses in one window are repaired
 * in about one round trip instead of one per round trip.
 */
#include "tcp/tcp.h"

/* RFC 2883 (Linux's tcp_dsack_set): [left, right) arrived again; reported in
 * a D-SACK block on the next ACK. At most 65535 bytes (one IP datagram's
 * worth; a longer duplicate is reported by its last part). */
void sack_dsack_set(struct tcp_engine *e, struct tcb *t, uint32_t left, uint32_t right)
{
  if (!t->sack_ok || !e->cfg->dsack || !seq_lt(left, right)) return;
  if (right - left > UINT16_MAX) left = right - UINT16_MAX;
  t->dsack_left = left;
  t->dsack_len = (uint16_t)(right - left);
}

void sack_fill_blocks(struct tcp_engine *e, struct tcb *t, struct tcp_opts *o)
{
  struct tcp_sack_block b[TCP_MAX_SACK_BLOCKS];
  unsigned n = 0;
  /* 40 option bytes: 4 blocks fit alone, 3 beside the 12 of a timestamp
   * (Linux's tcp_established_options: TCP_NUM_SACKS minus one with TS). */
  const unsigned max = t->ts_ok ? TCP_MAX_SACK_BLOCKS - 1 : TCP_MAX_SACK_BLOCKS;
  uint32_t l, r;
  /* RFC 2883 §4: a D-SACK block goes first (Linux's tcp_established_options;
   * emit() clears it once sent); the SACK blocks follow, the interval
   * holding it included */
  unsigned d = 0;
  if (t->dsack_len && e->cfg->dsack) {
    b[n++] = (struct tcp_sack_block){t->dsack_left, t->dsack_left + t->dsack_len};
    d = 1;
  }
  /* RFC 2018 §4: the latest segment's interval first, then the intervals
   * reported most recently (as Linux's tcp_sack_new_ofo_skb keeps them). */
  for (unsigned k = 0; n < max && ooo_recent(t, k, &l, &r); k++) b[n++] = (struct tcp_sack_block){l, r};
  /* Room left: the lowest intervals, the holes the sender must fill first. At
   * most 2 * TCP_MAX_SACK_BLOCKS lookups, whatever the number of intervals. */
  bool first = true;
  uint32_t after = 0;
  for (unsigned tries = 0; n < max && tries < 2 * TCP_MAX_SACK_BLOCKS; tries++) {
    if (!ooo_next(t, first, after, &l, &r)) break;
    first = false;
    after = l;
    bool dup = false;
    for (unsigned j = d; j < n; j++) dup |= b[j].left == l;
    if (!dup) b[n++] = (struct tcp_sack_block){l, r};
  }
  if (n == 0) return;
  o->present |= TCP_OPT_HAS_SACK;
  o->sack_count = (uint8_t)n;
  for (unsigned i = 0; i < n; i++) o->sack[i] = b[i];
}

void sack_prune(struct tcb *t)
{
  unsigned k = 0;
  for (unsigned i = 0; i < t->nsacked; i++) {
    struct tcp_sack_block b = t->sacked[i];
    if (seq_leq(b.right, t->snd_una)) continue;
    if (seq_lt(b.left, t->snd_una)) b.left = t->snd_una;
    t->sacked[k++] = b;
  }
  t->nsacked = (uint8_t)k;
}

static void sack_insert(struct tcb *t, uint32_t left, uint32_t right)
{
  /* Merge with every range it touches, keep the list sorted by left edge. */
  struct tcp_sack_block out[TCP_SACK_SCOREBOARD + 1];
  unsigned k = 0;
  bool placed = false;
  for (unsigned i = 0; i < t->nsacked; i++) {
    struct tcp_sack_block b = t->sacked[i];
    if (seq_lt(b.right, left)) { out[k++] = b; continue; }
    if (seq_gt(b.left, right)) {
      if (!placed) { out[k++] = (struct tcp_sack_block){left, right}; placed = true; }
      out[k++] = b;
      continue;
    }
    left = seq_min(left, b.left);       /* overlapping or adjacent: absorb it */
    right = seq_max(right, b.right);
  }
  if (!placed) out[k++] = (struct tcp_sack_block){left, right};
  /* Bounded: past the limit the highest ranges are forgotten (only a missed
   * optimisation: their bytes are retransmitted if need be). */
  if (k > TCP_SACK_SCOREBOARD) k = TCP_SACK_SCOREBOARD;
  for (unsigned i = 0; i < k; i++) t->sacked[i] = out[i];
  t->nsacked = (uint8_t)k;
}

void sack_update(struct tcb *t, const struct tcp_opts *o)
{
  if (!(o->present & TCP_OPT_HAS_SACK)) return;
  for (unsigned i = 0; i < o->sack_count && i < TCP_MAX_SACK_BLOCKS; i++) {
    uint32_t l = o->sack[i].left, r = o->sack[i].right;
    /* Only blocks inside what we sent and have not had acknowledged count; a
     * block outside (a D-SACK below snd_una, or garbage) is ignored. */
    if (!seq_lt(l, r) || seq_gt(r, t->snd_max) || seq_leq(r, t->snd_una)) continue;
    if (seq_lt(l, t->snd_una)) l = t->snd_una;
    if (!tcp_sack_whole_segs(t, &l, &r)) continue;
    sack_insert(t, l, r);
  }
}

bool sack_next_hole(const struct tcb *t, uint32_t from, uint32_t *start, uint32_t *end)
{
  if (!t->nsacked) return false;
  uint32_t p = seq_max(from, t->snd_una);
  for (unsigned i = 0; i < t->nsacked; i++) {
    const struct tcp_sack_block *b = &t->sacked[i];
    if (seq_leq(b->right, p)) continue;
    if (seq_lt(p, b->left)) {
      *start = p;
      *end = b->left;
      return true;
    }
    p = b->right;                      /* p is inside this block: go past it */
  }
  return false;                        /* nothing un-SACKed below the highest block */
}

uint32_t sack_skip(const struct tcb *t, uint32_t seq)
{
  for (unsigned i = 0; i < t->nsacked; i++)
    if (seq_in(seq, t->sacked[i].left, t->sacked[i].right)) return t->sacked[i].right;
  return seq;
}

uint32_t sack_bytes(const struct tcb *t)
{
  uint32_t n = 0;
  for (unsigned i = 0; i < t->nsacked; i++) n += t->sacked[i].right - t->sacked[i].left;
  return n;
}

uint32_t sack_unsacked(const struct tcb *t, uint32_t from, uint32_t to)
{
  if (!seq_lt(from, to)) return 0;
  uint32_t n = to - from;
  for (unsigned i = 0; i < t->nsacked; i++) {
    uint32_t l = seq_max(t->sacked[i].left, from), r = seq_min(t->sacked[i].right, to);
    if (seq_lt(l, r)) n -= r - l;
  }
  return n;
}

uint32_t sack_lost_end(const struct tcb *t)
{
  uint32_t mss = t->snd_mss;
  uint32_t end = t->snd_una + u32_min(mss, t->snd_max - t->snd_una);
  /* RFC 6675 §4 IsLost(SeqNum): DupThresh discontiguous SACKed segments, or
   * more than (DupThresh - 1) * SMSS SACKed bytes, above it; counted in bytes
   * from the highest range down (the scoreboard is sorted). */
  uint32_t above = 0;
  for (unsigned i = t->nsacked; i-- > 0;) {
    above += t->sacked[i].right - t->sacked[i].left;
    if (above > 2u * mss) {
      if (seq_gt(t->sacked[i].left, end)) end = t->sacked[i].left;
      break;
    }
  }
  return end;
}

uint32_t tcp_pipe(const struct tcb *t)
{
  if (!t->rec.in_recovery) return t->snd_nxt - t->snd_una;
  uint32_t out = t->snd_max - t->snd_una;
  uint32_t left = t->sack_ok ? sack_bytes(t) : u32_min(t->rec.dup_bytes, out);
  if (t->rack) {
    /* RACK (Linux's tcp_packets_in_flight): what it marked lost and was not
     * retransmitted since is not in the network */
    left += rack_lost_bytes(t);
    return out > left ? out - left : 0;
  }
  uint32_t from = seq_max(t->sack_rexmit, t->snd_una);
  left += sack_unsacked(t, from, sack_lost_end(t));
  return out > left ? out - left : 0;
}
