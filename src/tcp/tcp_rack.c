/* RACK: time-based loss detection (RFC 8985 §6), D-SACK (RFC 2883) on the
 * sender, and undoing spurious recoveries (Linux's tcp_try_undo_dsack,
 * tcp_try_undo_recovery; RFC 3522 Eifel detection), as Linux's tcp_recovery.c
 * and the undo part of tcp_input.c.
 *
 * The send buffer is a byte ring, not a list of skbs: the transmit times RACK
 * needs are kept beside it in struct tcp_rack, as sequence ranges [start, end)
 * each sent at one time (a burst sent in one event is one range; an ACK
 * splits ranges where it delivers part of one). The ranges tile
 * [snd_una, snd_max) in order. The structure exists while data is in flight
 * (allocated by the first transmission from idle, freed when everything is
 * acknowledged unless an undo is still possible), so an idle connection
 * holds none of it. At most RACK_MAX_SEGS ranges: past that, neighbours are
 * merged, keeping the later transmit time (RACK then waits longer for them;
 * the RTO still covers them).
 *
 *   rack_on_send          emit(): new data appended, retransmissions restamped
 *   rack_on_ack           process_ack(), before the ACK moves snd_una: RACK.xmit_ts,
 *                         RACK.end_seq, RACK.rtt from what it newly delivered
 *                         (step 2, tcp_rack_advance), reordering seen (step 3),
 *                         D-SACKs counted for undo and the window (step 4)
 *   rack_detect_loss      steps 5-6 (tcp_rack_detect_loss): segments sent before
 *                         RACK.segment and older than RACK.rtt + reo_wnd are lost;
 *                         the rest arm the reordering timer
 *   rack_reo_timeout      §6.3 (tcp_rack_reo_timeout)
 *   rack_lost_bytes,
 *   rack_next_lost        for pipe and recovery's retransmissions
 */
#include <string.h>
#include "tcp/tcp.h"

#define RACK_SEG_LOST 1u         /* marked lost, not retransmitted since (TCPCB_LOST) */
#define RACK_SEG_RETRANS 2u      /* retransmitted at least once (TCPCB_EVER_RETRANS) */
#define RACK_SEG_MARKED 4u       /* marked lost in this episode, retransmitted since or not
                                    (TCPCB_LOST as Linux keeps it: for lost_out) */
#define RACK_MAX_SEGS 1024u
#define RACK_TIMEOUT_MIN_US 2000u   /* Linux's TCP_TIMEOUT_MIN (2 jiffies) */
#define RACK_RECOVERY_THRESH 16u    /* Linux's TCP_RACK_RECOVERY_THRESH */

struct rack_seg {
  uint32_t start, end;
  uint32_t flags;
  uint64_t xmit_us;
};

struct tcp_rack {
  /* RFC 8985 §6.1 */
  uint64_t xmit_us;              /* RACK.xmit_ts */
  uint32_t end_seq;              /* RACK.end_seq */
  uint32_t rtt_us;               /* RACK.rtt */
  bool advanced;                 /* RACK.xmit_ts moved since the last detection */
  bool dsack_seen;               /* a D-SACK arrived: step 4 widens reo_wnd */
  bool dsack_round_set;
  uint32_t dsack_round;          /* snd_max when reo_wnd was last widened (once a round trip) */
  /* After a retransmission timeout (Linux's TCP_CA_Loss, until snd_una reaches
   * rec.recover): in_loss; frto, F-RTO (RFC 5682 §3.1) still judging the
   * timeout (Linux's tp->frto); orig_acked, the current ACK delivered data
   * never retransmitted (Linux's FLAG_ORIG_SACK_ACKED) */
  bool in_loss, frto, orig_acked;
  /* Undo (Linux's undo_marker, undo_retrans, prior_cwnd, prior_ssthresh,
   * retrans_stamp): the episode's start, its retransmitted segments not yet
   * D-SACKed, the congestion state before the reduction, and the TSval of its
   * first retransmission (RFC 3522 Eifel detection) */
  bool undo_valid;
  bool undo_sent;                /* the episode retransmitted something */
  uint32_t undo_marker, undo_retrans;
  uint32_t undo_cwnd, undo_ssthresh, undo_tsval;
  _Alignas(8) unsigned char undo_priv[CC_PRIV_BYTES];
  uint32_t n, cap;
  struct rack_seg seg[];
};

static size_t rack_size(uint32_t cap)
{
  return sizeof(struct tcp_rack) + (size_t)cap * sizeof(struct rack_seg);
}

bool rack_enabled(const struct tcp_engine *e, const struct tcb *t)
{
  return (e->cfg->tcp_recovery & 1u) && t->sack_ok;
}

/* RACK is in charge of loss detection for t right now. */
bool rack_active(const struct tcp_engine *e, const struct tcb *t)
{
  return t->rack && rack_enabled(e, t);
}

void rack_free(struct tcp_engine *e, struct tcb *t)
{
  if (!t->rack) return;
  tcp_free_mem(e, t->rack, rack_size(t->rack->cap));
  t->rack = NULL;
  if (t->reo_armed) {
    t->reo_armed = false;
    t->tlp_at_us = 0;
  }
}

/* Nothing in flight: the ranges go; the structure too unless it still holds
 * an undo (D-SACKs for the episode may come after it ended). */
static void rack_idle(struct tcp_engine *e, struct tcb *t)
{
  struct tcp_rack *r = t->rack;
  if (!r) return;
  if (!r->undo_valid) {
    rack_free(e, t);
    return;
  }
  r->n = 0;
  if (r->cap > 8) {
    struct tcp_rack *s = tcp_alloc_raw(e, rack_size(8));
    if (s) {
      memcpy(s, r, sizeof *r);
      s->cap = 8;
      tcp_free_mem(e, r, rack_size(r->cap));
      t->rack = s;
    }
  }
}

/* Merges ranges i and i + 1 (the later transmit time; lost only if both). */
static void merge_at(struct tcp_rack *r, uint32_t i)
{
  struct rack_seg *a = &r->seg[i], *b = &r->seg[i + 1];
  a->end = b->end;
  if (b->xmit_us > a->xmit_us) a->xmit_us = b->xmit_us;
  a->flags = ((a->flags | b->flags) & (RACK_SEG_RETRANS | RACK_SEG_MARKED)) |
             (a->flags & b->flags & RACK_SEG_LOST);
  memmove(&r->seg[i + 1], &r->seg[i + 2], (r->n - i - 2) * sizeof r->seg[0]);
  r->n--;
}

/* Room for k more ranges: grow (doubling), or past RACK_MAX_SEGS merge
 * neighbours, preferring pairs that share their flags. False if no room
 * could be made (allocation failure: RACK stops for this flight). */
static bool make_room(struct tcp_engine *e, struct tcb *t, uint32_t k)
{
  struct tcp_rack *r = t->rack;
  if (r->n + k <= r->cap) return true;
  if (r->cap < RACK_MAX_SEGS) {
    uint32_t cap = r->cap * 2;
    while (cap < r->n + k) cap *= 2;
    if (cap > RACK_MAX_SEGS) cap = RACK_MAX_SEGS;
    if (r->n + k <= cap) {
      struct tcp_rack *s = tcp_alloc_raw(e, rack_size(cap));
      if (!s) return false;
      memcpy(s, r, rack_size(r->n));
      s->cap = cap;
      tcp_free_mem(e, r, rack_size(r->cap));
      t->rack = s;
      return true;
    }
  }
  while (r->n + k > r->cap && r->n >= 2) {
    uint32_t pick = 0;
    for (uint32_t i = 0; i + 1 < r->n; i++)
      if (r->seg[i].flags == r->seg[i + 1].flags) { pick = i; break; }
    merge_at(r, pick);
  }
  return r->n + k <= r->cap;
}

/* Index of the range holding seq, or n if none. */
static uint32_t find_seg(const struct tcp_rack *r, uint32_t seq)
{
  uint32_t lo = 0, hi = r->n;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (seq_lt(seq, r->seg[mid].start)) hi = mid;
    else if (!seq_lt(seq, r->seg[mid].end)) lo = mid + 1;
    else return mid;
  }
  return r->n;
}

/* Splits the range holding seq so that a range starts at seq. Needs room for
 * one more range. */
static void split_at(struct tcp_rack *r, uint32_t seq)
{
  uint32_t i = find_seg(r, seq);
  if (i == r->n || r->seg[i].start == seq) return;
  memmove(&r->seg[i + 1], &r->seg[i], (r->n - i) * sizeof r->seg[0]);
  r->n++;
  r->seg[i].end = seq;
  r->seg[i + 1].start = seq;
}

/* Both edges of [a, b) become range edges (within the tiled span); false if
 * no room. */
static bool split_range(struct tcp_engine *e, struct tcb *t, uint32_t a, uint32_t b)
{
  if (!make_room(e, t, 2)) return false;
  split_at(t->rack, a);
  split_at(t->rack, b);
  return true;
}

static uint32_t segs_of(const struct tcb *t, uint32_t bytes)
{
  uint32_t mss = t->snd_mss ? t->snd_mss : 536;
  return (bytes + mss - 1) / mss;
}

void rack_on_send(struct tcp_engine *e, struct tcb *t, uint32_t seq, uint32_t end, uint32_t tsval)
{
  if (!rack_enabled(e, t) || !seq_lt(seq, end)) return;
  struct tcp_rack *r = t->rack;
  bool retrans = seq_lt(seq, t->snd_max);
  if (!r) {
    /* Only from idle: the ranges must tile everything in flight. */
    if (retrans || t->snd_una != t->snd_max || seq != t->snd_una) return;
    r = tcp_alloc(e, rack_size(8));
    if (!r) return;
    r->cap = 8;
    t->rack = r;
  }
  if (!retrans) {
    if (r->n && r->seg[r->n - 1].end != seq) return;   /* not contiguous: cannot happen */
    if (!r->n && seq != t->snd_una) return;
    struct rack_seg *last = r->n ? &r->seg[r->n - 1] : NULL;
    if (last && last->xmit_us == e->now_us && last->flags == 0) {
      last->end = end;   /* the same burst */
      return;
    }
    if (!make_room(e, t, 1)) return;
    r = t->rack;
    r->seg[r->n++] = (struct rack_seg){.start = seq, .end = end, .xmit_us = e->now_us};
    return;
  }
  /* A retransmission: its ranges get the new time, and lose LOST (Linux's
   * tcp_retransmit_skb clears TCPCB_LOST's accounting via retrans_out). */
  if (!r->n) return;
  if (seq_lt(seq, r->seg[0].start)) seq = r->seg[0].start;
  if (seq_gt(end, r->seg[r->n - 1].end)) end = r->seg[r->n - 1].end;
  if (!seq_lt(seq, end)) return;
  if (!split_range(e, t, seq, end)) return;
  r = t->rack;
  for (uint32_t i = find_seg(r, seq); i < r->n && seq_lt(r->seg[i].start, end); i++) {
    r->seg[i].xmit_us = e->now_us;
    r->seg[i].flags = RACK_SEG_RETRANS | (r->seg[i].flags & RACK_SEG_MARKED);
  }
  if (r->undo_valid && seq_geq(seq, r->undo_marker)) {
    r->undo_retrans += segs_of(t, end - seq);
    if (!r->undo_sent) r->undo_tsval = tsval;
    r->undo_sent = true;
  }
}

/* Linux's tcp_clean_rtx_queue takes an RTT sample from every ACK that
 * advances snd_una: the time since the first newly acknowledged segment was
 * sent (seq_rtt_us from first_ackt), unless any acknowledged segment was
 * retransmitted (Karn's rule, FLAG_RETRANS_DATA_ACKED). 1 and the sample in
 * *rtt_us; 0 if the transmit times are not on record; -1 if retransmitted
 * data is acknowledged. */
int rack_ack_rtt(const struct tcp_engine *e, const struct tcb *t, uint32_t ack, uint64_t *rtt_us)
{
  const struct tcp_rack *r = t->rack;
  if (!r || !r->n || !rack_enabled(e, t)) return 0;
  uint32_t i = find_seg(r, t->snd_una);
  if (i == r->n) return 0;
  for (uint32_t k = i; k < r->n && seq_lt(r->seg[k].start, ack); k++)
    if (r->seg[k].flags & RACK_SEG_RETRANS) return -1;
  *rtt_us = e->now_us - r->seg[i].xmit_us;
  return 1;
}

/* Every byte of [a, b) was retransmitted in this very event (its range holds
 * the current time and RACK_SEG_RETRANS): a run resent at once, as one of
 * Linux's skbs would be (pm_push). False when not on record. */
bool rack_resent_now(const struct tcp_engine *e, const struct tcb *t, uint32_t a, uint32_t b)
{
  const struct tcp_rack *r = t->rack;
  if (!r || !r->n || !seq_lt(a, b)) return false;
  uint32_t i = find_seg(r, a);
  if (i == r->n) return false;
  for (; i < r->n && seq_lt(r->seg[i].start, b); i++)
    if (!(r->seg[i].flags & RACK_SEG_RETRANS) || r->seg[i].xmit_us != e->now_us) return false;
  return seq_geq(r->seg[i - 1].end, b);
}

/* Bytes of [a, b) not covered by the scoreboard board[0..n). */
static uint32_t unsacked_in(const struct tcp_sack_block *board, unsigned n, uint32_t a, uint32_t b)
{
  if (!seq_lt(a, b)) return 0;
  uint32_t left = b - a;
  for (unsigned i = 0; i < n; i++) {
    uint32_t l = seq_max(board[i].left, a), rr = seq_min(board[i].right, b);
    if (seq_lt(l, rr)) left -= rr - l;
  }
  return left;
}

/* RFC 8985 §6.2 step 2 (Linux's tcp_rack_advance): a segment delivered. */
static void rack_advance(struct tcp_engine *e, struct tcb *t, const struct rack_seg *s)
{
  struct tcp_rack *r = t->rack;
  uint64_t rtt = e->now_us - s->xmit_us;
  /* A retransmitted segment acknowledged sooner than min_RTT after its
   * retransmission: the original was probably what arrived; no sample. */
  if ((s->flags & RACK_SEG_RETRANS) && t->rtt.min_rtt_us && rtt < t->rtt.min_rtt_us) return;
  r->advanced = true;
  r->rtt_us = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
  if (s->xmit_us > r->xmit_us || (s->xmit_us == r->xmit_us && seq_gt(s->end, r->end_seq))) {
    r->xmit_us = s->xmit_us;
    r->end_seq = s->end;
  }
}

/* The ranges of [a, b) (within what is tiled) that the ACK newly delivered:
 * split off, advanced, and checked for reordering (step 3: a segment never
 * retransmitted delivered below the highest SACKed sequence number, Linux's
 * tcp_check_sack_reordering). */
static void deliver_range(struct tcp_engine *e, struct tcb *t, uint32_t a, uint32_t b,
                          const struct tcp_sack_block *prior, unsigned nprior, uint32_t fack)
{
  struct tcp_rack *r = t->rack;
  if (!r->n) return;
  a = seq_max(a, r->seg[0].start);
  b = seq_min(b, r->seg[r->n - 1].end);
  if (!seq_lt(a, b)) return;
  if (!split_range(e, t, a, b)) return;
  r = t->rack;
  for (uint32_t i = find_seg(r, a); i < r->n && seq_lt(r->seg[i].start, b); i++) {
    struct rack_seg *s = &r->seg[i];
    if (!unsacked_in(prior, nprior, s->start, s->end)) continue;   /* SACKed before */
    /* F-RTO's evidence: data sent once, before the timeout (Linux's
     * FLAG_ORIG_SACK_ACKED: not after high_seq) */
    if (!(s->flags & RACK_SEG_RETRANS) && seq_leq(s->end, t->rec.recover)) r->orig_acked = true;
    if (!(s->flags & RACK_SEG_RETRANS) && seq_lt(s->start, fack)) {
      /* Linux's tcp_check_sack_reordering: the distance, in segments, is
       * the reordering degree (TCP_INFO's tcpi_reordering) */
      t->reord_seen = true;
      uint32_t mss = t->snd_mss ? t->snd_mss : 536;
      uint32_t metric = fack - s->start, cur = t->reordering ? t->reordering : 3;
      if (metric > cur * mss) t->reordering = (uint16_t)u32_min((metric + mss - 1) / mss, 300);
    }
    rack_advance(e, t, s);
  }
}

/* RFC 2883 §4 / Linux's tcp_check_dsack: the first block is a D-SACK if it
 * lies below the cumulative ACK or inside the second block. */
static bool is_dsack(const struct tcp_hdr *h)
{
  const struct tcp_opts *o = &h->opts;
  if (!(o->present & TCP_OPT_HAS_SACK) || !o->sack_count) return false;
  uint32_t l = o->sack[0].left, r = o->sack[0].right;
  if (!seq_lt(l, r)) return false;
  if (seq_lt(l, h->ack)) return true;
  return o->sack_count > 1 && seq_geq(l, o->sack[1].left) && seq_leq(r, o->sack[1].right);
}

void rack_on_ack(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h,
                 const struct tcp_sack_block *prior, unsigned nprior, uint32_t prior_una)
{
  if (!rack_enabled(e, t)) return;
  struct tcp_rack *r = t->rack;
  bool dsack = is_dsack(h);
  if (dsack) {
    uint32_t l = h->opts.sack[0].left, rr = h->opts.sack[0].right;
    if (e->stats) e->stats->tcp_dsacks_in++;
    if (r) {
      r->dsack_seen = true;
      /* Linux's undo_retrans: one retransmission of the episode proven
       * unnecessary per segment D-SACKed */
      if (r->undo_valid && r->undo_retrans && seq_gt(rr, r->undo_marker) &&
          seq_leq(rr, t->snd_max)) {
        uint32_t k = segs_of(t, rr - seq_max(l, r->undo_marker));
        r->undo_retrans = r->undo_retrans > k ? r->undo_retrans - k : 0;
      }
    }
  }
  if (!r || !r->n) return;
  r->orig_acked = false;
  uint32_t fack = nprior ? prior[nprior - 1].right : prior_una;
  if (seq_gt(h->ack, prior_una)) deliver_range(e, t, prior_una, h->ack, prior, nprior, fack);
  for (unsigned i = dsack ? 1 : 0; i < h->opts.sack_count && (h->opts.present & TCP_OPT_HAS_SACK); i++) {
    uint32_t l = h->opts.sack[i].left, rr = h->opts.sack[i].right;
    if (!seq_lt(l, rr) || seq_gt(rr, t->snd_max) || seq_leq(rr, h->ack)) continue;
    if (seq_lt(l, t->snd_una)) l = t->snd_una;
    if (!tcp_sack_whole_segs(t, &l, &rr)) continue;   /* as the scoreboard takes it */
    deliver_range(e, t, seq_max(l, h->ack), rr, prior, nprior, fack);
  }
}

/* Drops the ranges below snd_una (after the ACK moved it). */
void rack_prune(struct tcp_engine *e, struct tcb *t)
{
  struct tcp_rack *r = t->rack;
  if (!r) return;
  if (t->snd_una == t->snd_max) {
    rack_idle(e, t);
    return;
  }
  uint32_t k = 0;
  while (k < r->n && seq_leq(r->seg[k].end, t->snd_una)) k++;
  if (k) {
    memmove(&r->seg[0], &r->seg[k], (r->n - k) * sizeof r->seg[0]);
    r->n -= k;
  }
  if (r->n && seq_lt(r->seg[0].start, t->snd_una)) r->seg[0].start = t->snd_una;
}

/* RFC 8985 §6.2 step 4 (Linux's tcp_rack_update_reo_wnd), once per ACK: a
 * D-SACK widens the window by one step of min_RTT / 4, at most once a round
 * trip; the width lasts 16 recoveries (rack_recovery_end), then it is 1 again. */
void rack_update_reo_wnd(struct tcp_engine *e, struct tcb *t, uint32_t prior_una)
{
  struct tcp_rack *r = t->rack;
  if (!r || !rack_enabled(e, t)) return;
  if (r->dsack_seen && r->dsack_round_set && seq_lt(prior_una, r->dsack_round))
    r->dsack_seen = false;   /* within a round trip of the last widening */
  if (r->dsack_seen) {
    uint8_t steps = t->reo_wnd_steps ? t->reo_wnd_steps : 1;
    if (steps < 255) steps++;
    t->reo_wnd_steps = steps;
    t->reo_wnd_persist = RACK_RECOVERY_THRESH;
    r->dsack_seen = false;
    r->dsack_round = t->snd_max;
    r->dsack_round_set = true;
  } else if (!t->reo_wnd_persist) {
    t->reo_wnd_steps = 1;
  }
}

void rack_recovery_end(struct tcb *t)
{
  if (t->reo_wnd_persist) t->reo_wnd_persist--;
}

/* SACKed segments, as Linux's sacked_out counts them (a block's last,
 * shorter segment is one too): each block rounded up to whole segments. */
static uint32_t sacked_segs(const struct tcb *t)
{
  uint32_t n = 0;
  for (unsigned i = 0; i < t->nsacked; i++) n += segs_of(t, t->sacked[i].right - t->sacked[i].left);
  return n;
}

/* Linux's tcp_rack_reo_wnd (RFC 8985 §6.2 step 4). */
static uint64_t reo_wnd(const struct tcb *t)
{
  if (!t->reord_seen) {
    /* No reordering seen: aggressive in recovery, and once DupThresh
     * segments are SACKed (RFC 6675's rule, Linux's sacked_out >= reordering). */
    if (t->rec.in_recovery) return 0;
    if (sacked_segs(t) >= (t->reordering ? t->reordering : 3u)) return 0;
  }
  uint64_t steps = t->reo_wnd_steps ? t->reo_wnd_steps : 1;
  uint64_t w = (t->rtt.min_rtt_us / 4) * steps;
  return w < t->rtt.srtt_us ? w : t->rtt.srtt_us;
}

bool rack_detect_loss(struct tcp_engine *e, struct tcb *t, bool force)
{
  struct tcp_rack *r = t->rack;
  if (!rack_active(e, t) || !r->n) return false;
  if (!r->advanced && !force) return false;
  r->advanced = false;
  if (!r->xmit_us) return false;
  uint64_t wnd = reo_wnd(t);
  uint64_t timeout = 0;
  bool marked = false;
  for (uint32_t i = 0; i < r->n; i++) {
    struct rack_seg *s = &r->seg[i];
    if (s->flags & RACK_SEG_LOST) continue;
    /* sent after RACK.segment: not judged by it */
    if (!(r->xmit_us > s->xmit_us || (r->xmit_us == s->xmit_us && seq_gt(r->end_seq, s->start))))
      continue;
    if (!sack_unsacked(t, s->start, s->end)) continue;
    int64_t remaining = (int64_t)(s->xmit_us + r->rtt_us + wnd) - (int64_t)e->now_us;
    if (remaining <= 0) {
      s->flags |= RACK_SEG_LOST | RACK_SEG_MARKED;
      marked = true;
      if (e->stats) e->stats->tcp_rack_lost++;
    } else if ((uint64_t)remaining > timeout) {
      timeout = (uint64_t)remaining;
    }
  }
  /* §6.3: the reordering timer for the ones not yet overdue, sharing the
   * probe's timer as Linux's ICSK_TIME_REO_TIMEOUT does */
  if (timeout) {
    t->reo_armed = true;
    t->tlp_at_us = e->now_us + timeout + RACK_TIMEOUT_MIN_US;
    timer_update(e, t);
  } else if (t->reo_armed) {
    t->reo_armed = false;
    t->tlp_at_us = 0;
    timer_update(e, t);
  }
  return marked;
}

uint32_t rack_lost_bytes(const struct tcb *t)
{
  const struct tcp_rack *r = t->rack;
  if (!r) return 0;
  uint32_t n = 0;
  for (uint32_t i = 0; i < r->n; i++)
    if (r->seg[i].flags & RACK_SEG_LOST) n += sack_unsacked(t, r->seg[i].start, r->seg[i].end);
  return n;
}

void rack_lost_info(const struct tcb *t, uint32_t *lost, uint32_t *retrans)
{
  const struct tcp_rack *r = t->rack;
  *lost = *retrans = 0;
  for (uint32_t i = 0; r && i < r->n; i++) {
    const struct rack_seg *s = &r->seg[i];
    if (!(s->flags & RACK_SEG_MARKED)) continue;
    uint32_t b = sack_unsacked(t, s->start, s->end);
    *lost += b;
    if (!(s->flags & RACK_SEG_LOST)) *retrans += b;
  }
}

bool rack_next_lost(const struct tcb *t, uint32_t from, uint32_t *start, uint32_t *end)
{
  const struct tcp_rack *r = t->rack;
  if (!r || !r->n) return false;
  uint32_t i0 = seq_gt(from, r->seg[0].start) ? find_seg(r, from) : 0;
  for (uint32_t i = i0; i < r->n; i++) {
    const struct rack_seg *s = &r->seg[i];
    if (!(s->flags & RACK_SEG_LOST)) continue;
    uint32_t p = seq_max(seq_max(s->start, t->snd_una), from);
    for (;;) {   /* past SACKed bytes */
      uint32_t q = sack_skip(t, p);
      if (q == p) break;
      p = q;
    }
    if (!seq_lt(p, s->end)) continue;
    uint32_t hs, he, e2 = s->end;
    if (sack_next_hole(t, p, &hs, &he) && hs == p) e2 = seq_min(e2, he);
    *start = p;
    *end = e2;
    return true;
  }
  return false;
}

/* A retransmission timeout, before the module cuts cwnd (Linux's
 * tcp_enter_loss). Everything is sent again from snd_una (go-back-N): no range
 * is "lost and waiting" any more, and no reordering timer runs. What an undo
 * restores is recorded at a timeout from open state or at a new timeout of a
 * loss episode that ACKs had advanced (tcp_init_undo); a timeout during a
 * recovery keeps the recovery's record, a repeated timeout the first one's.
 * F-RTO (RFC 5682 §3.1 step 1) judges a timeout from open state and any
 * repeated timeout (Linux's tp->frto: new_recovery || icsk_retransmits), not
 * the first timeout of a recovery or of an advanced loss episode. */
void rack_enter_loss(struct tcp_engine *e, struct tcb *t, bool was_recovering)
{
  struct tcp_rack *r = t->rack;
  if (!r || !rack_enabled(e, t)) return;
  bool repeat = t->backoff > 1;   /* called after backoff++ (icsk_retransmits) */
  /* still in a timeout's episode (Linux's TCP_CA_Loss, snd_una < high_seq) */
  bool in_loss = r->in_loss && seq_lt(t->snd_una, t->rec.recover);
  bool open = !was_recovering && !in_loss;
  /* tcp_init_undo: from open state, or a new timeout of a loss episode that
   * ACKs advanced (TCP_CA_Loss && !icsk_retransmits) */
  if (!repeat && (open || in_loss)) rack_undo_init(e, t);
  if (t->rec.in_cwr && !repeat) r->undo_valid = false;   /* tcp_enter_cwr clears undo_marker */
  for (uint32_t i = 0; i < r->n; i++) r->seg[i].flags &= ~(RACK_SEG_LOST | RACK_SEG_MARKED);
  r->in_loss = true;
  r->frto = e->cfg->tcp_frto && (open || repeat);
  r->advanced = false;
  if (t->reo_armed) {
    t->reo_armed = false;
    t->tlp_at_us = 0;
    timer_update(e, t);
  }
}

/* ---- undo ---- */

/* Linux's tcp_init_undo, at the start of a recovery, before the module
 * reduces cwnd: what an undo restores. */
void rack_undo_init(struct tcp_engine *e, struct tcb *t)
{
  struct tcp_rack *r = t->rack;
  if (!r || !rack_enabled(e, t)) return;
  r->undo_valid = true;
  r->undo_marker = t->snd_una;
  r->undo_retrans = 0;
  r->undo_sent = false;
  r->undo_tsval = 0;
  r->undo_cwnd = t->cc.cwnd;
  /* tcp_current_ssthresh: at least 3/4 of cwnd */
  uint32_t cur = (t->cc.cwnd >> 1) + (t->cc.cwnd >> 2);
  r->undo_ssthresh = u32_max(t->cc.ssthresh, cur);
  memcpy(r->undo_priv, t->cc.priv, sizeof r->undo_priv);
}

static void undo(struct tcp_engine *e, struct tcb *t)
{
  struct tcp_rack *r = t->rack;
  cc_undo(e, t, r->undo_cwnd, r->undo_ssthresh, r->undo_priv);
  r->undo_valid = false;
  if (e->stats) e->stats->tcp_spurious_undos++;
}

/* Linux's tcp_undo_cwnd_reduction with unmark_loss: nothing is lost any more */
static void unmark_lost(struct tcp_rack *r)
{
  for (uint32_t i = 0; i < r->n; i++) r->seg[i].flags &= ~(RACK_SEG_LOST | RACK_SEG_MARKED);
}

/* Linux's tcp_packet_delayed (RFC 3522 §2): the ACK echoes a TSval older
 * than the episode's first retransmission, so an original made it. Linux
 * also answers true when the episode retransmitted nothing; ustcp's record of
 * retransmissions can be missing (the ranges lost to an allocation failure),
 * and a timeout always retransmits, so "nothing on record" proves nothing
 * here (it had undone every timeout of such a flight: a livelock found by
 * simtest_fail_alloc_nth). */
static bool packet_delayed(const struct tcb *t, const struct tcp_rack *r, const struct tcp_hdr *h)
{
  if (!r->undo_sent || !r->undo_tsval || !t->ts_ok) return false;
  if (!(h->opts.present & TCP_OPT_HAS_TS) || !h->opts.ts_ecr) return false;
  return (int32_t)(h->opts.ts_ecr - r->undo_tsval) < 0;
}

/* Linux's tcp_try_undo_dsack: every retransmission of the episode was
 * D-SACKed, so none was needed. Returns true if it undid (the caller ends
 * the recovery if one is running). */
bool rack_try_undo_dsack(struct tcp_engine *e, struct tcb *t)
{
  struct tcp_rack *r = t->rack;
  if (!r || !r->undo_valid || r->undo_retrans || !r->undo_sent) return false;
  if (!rack_enabled(e, t)) return false;
  undo(e, t);
  return true;
}

/* Linux's tcp_try_undo_recovery with tcp_packet_delayed (RFC 3522 §2): the
 * ACK that ends the recovery echoes a TSval older than the first
 * retransmission, so the original segments made it; undo. */
bool rack_try_undo_ts(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h)
{
  struct tcp_rack *r = t->rack;
  if (!r || !r->undo_valid || !r->undo_sent || !r->undo_tsval || !t->ts_ok || !rack_enabled(e, t))
    return false;
  if (!(h->opts.present & TCP_OPT_HAS_TS) || !h->opts.ts_ecr) return false;
  if ((int32_t)(h->opts.ts_ecr - r->undo_tsval) >= 0) return false;
  undo(e, t);
  return true;
}

/* Linux's tcp_try_undo_partial, on an ACK that advanced snd_una inside a
 * recovery without ending it: if the ACK shows the hole was filled by the
 * original transmission (RFC 3522 Eifel detection), the loss was reordering.
 * The reordering is recorded (tcp_check_sack_reordering); with
 * retransmissions of the episode still outstanding the recovery goes on but
 * marks and retransmits nothing more on this ACK (RACK_UNDO_HOLD: new data
 * only); otherwise the reduction is undone and the recovery ends
 * (tcp_undo_cwnd_reduction, tcp_try_keep_open): RACK_UNDO_DONE. */
int rack_try_undo_partial(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h)
{
  struct tcp_rack *r = t->rack;
  if (!r || !r->undo_valid || !rack_enabled(e, t) || !packet_delayed(t, r, h)) return RACK_UNDO_NONE;
  t->reord_seen = true;
  uint32_t lost, retrans;
  rack_lost_info(t, &lost, &retrans);
  if (retrans) return RACK_UNDO_HOLD;
  undo(e, t);
  unmark_lost(r);
  return RACK_UNDO_DONE;
}

/* Linux's tcp_process_loss, on every acceptable ACK while a timeout's
 * go-back-N runs (in_loss). A spurious timeout is undone (tcp_try_undo_loss):
 * cwnd and ssthresh come back, nothing is lost any more, and the go-back-N
 * stops (snd_nxt back to snd_max: the originals are in flight, RACK finds
 * any real loss among them). Spurious when
 *  - snd_una advanced and the ACK echoes a TSval older than the first
 *    retransmission, or every retransmission was D-SACKed (tcp_may_undo:
 *    RFC 3522 Eifel detection, RFC 2883);
 *  - F-RTO (RFC 5682 §3.1, SACK-enhanced, step 3.b as Linux's
 *    FLAG_ORIG_SACK_ACKED): the ACK delivered, cumulatively or by SACK, data
 *    that was never retransmitted.
 * Step 2.b: an ACK that advanced snd_una without that sends new data in
 * Linux, whose next ACK decides; ustcp's go-back-N cannot send new data
 * before the old, so F-RTO ends there and the conventional recovery goes on,
 * as Linux does when no new data can be sent (the timestamps still detect a
 * spurious timeout afterwards). Once snd_una reaches rec.recover the episode
 * is over (tcp_try_undo_recovery: undone if tcp_may_undo).
 * Returns true if the timeout was undone. */
bool rack_process_loss(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h,
                       bool una_advanced)
{
  struct tcp_rack *r = t->rack;
  if (!r || !r->in_loss) return false;
  if (!rack_enabled(e, t)) {
    r->in_loss = r->frto = false;
    return false;
  }
  bool recovered = seq_geq(t->snd_una, t->rec.recover);
  bool spurious = false;
  if (r->undo_valid) {
    if (una_advanced && (packet_delayed(t, r, h) || (r->undo_sent && !r->undo_retrans)))
      spurious = true;
    else if (r->frto && r->orig_acked)
      spurious = true;
  }
  if (spurious) {
    undo(e, t);
    unmark_lost(r);
    r->in_loss = r->frto = false;
    if (seq_lt(t->snd_nxt, t->snd_max)) t->snd_nxt = t->snd_max;
    t->sack_rexmit = t->snd_max;
    /* open state: a loss may start a recovery at once (RFC 6582 §4's guard
     * is for go-back-N duplicates, and there is no go-back-N any more) */
    t->rec.recover = t->snd_una - 1;
    return true;
  }
  if (r->frto && una_advanced && !recovered) r->frto = false;   /* step 2.b: see above */
  if (recovered) r->in_loss = r->frto = false;
  return false;
}

uint64_t rack_mem(const struct tcb *t)
{
  return t->rack ? rack_size(t->rack->cap) : 0;
}
