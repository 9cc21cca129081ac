/* libFuzzer target for the whole engine: the input is a PROGRAM run against one
 * stack (local 192.0.2.1) in virtual time, the fuzzer playing every peer.
 *
 * Input layout:
 *   byte 0  setup: bit0 run the prologue (connections in every state, below);
 *           bit1 window scaling off; bits2-3 syncookies (0, 1, 2); bit4 rfc1337;
 *           bit5 small buffers (4 KB); bit6 tiny queues (SYN/accept/out-of-order);
 *           bit7 no delayed ACK
 *   byte 1  TIME_WAIT length in seconds (0: the default 60 s)
 *   then operations until the input ends:
 *     SEG   a segment built with the wire encoder from a peer "slot" (peer port,
 *           stack port, peer ISN): flags, seq/ack relative to the two ISNs (as
 *           packetdrill; or absolute: blind attacks), window, urgent pointer,
 *           options (MSS, WS, SACK-permitted, TS, SACK blocks), a bad checksum,
 *           payload of the deterministic pattern or raw bytes from the input
 *     RAWIP arbitrary bytes as an IPv4 packet
 *     RAWTCP arbitrary bytes as a TCP header+payload inside a valid IPv4
 *           header, with a correct checksum (so option parsing and the engine
 *           see arbitrary headers)
 *     FLOOD SYNs from random addresses
 *     CALL  a socket call (socket bind listen accept connect send recv shutdown
 *           close setsockopt getsockopt error events info names table), with
 *           bad arguments too (unknown/closed descriptors, NULL, huge lengths)
 *     TIME  advance the clock (1 ms .. 55 min), running every timer on the way
 *     SLOT  define a peer slot
 *     ATTACK what an attacker sends into a live connection, aimed at its state:
 *           RST/SYN with payload across RCV.NXT, data across RCV.NXT and the
 *           window's right edge, ACKs of unsent data and too-old ACKs, storms,
 *           spoofed and martian sources, LAND (see op_attack)
 *   The prologue is itself a program (built by the same builder as the seed
 *   corpus): a listener, and connections in ESTABLISHED (with unread data),
 *   CLOSE_WAIT, LAST_ACK, FIN_WAIT_1, FIN_WAIT_2, CLOSING, TIME_WAIT, SYN_RCVD,
 *   SYN_SENT, ESTABLISHED with data in flight, zero window with data waiting,
 *   an unaccepted child, and out-of-order data queued. It is built once for each
 *   value of the setup bits that shape it (SNAP_BITS) and restored from a
 *   snapshot for every input (fuzz/arena.h: the library's allocations come from
 *   one region, saved after the prologue and copied back); the other setup
 *   bits are tunables applied after it. FUZZ_ENGINE_FRESH=1 rebuilds it for
 *   every input instead (same behaviour, slowly).
 *
 * Checked after every 8th operation, any that made or freed a connection and the
 * last (FUZZ_ENGINE_CHECK_ALL=1: every one) (abort() = a crash for libFuzzer):
 *   - stack_check(): every control block's invariants and the stack's
 *     bookkeeping (see src/stack/stack_check.h);
 *   - ustcp_poll() leaves no deadline in the past;
 *   - every packet the stack sends decodes (checksums included), carries ACK
 *     unless it is a RST or an opening SYN, is never larger than the MTU
 *     (options included), and never data beyond the largest right edge the peer advertised
 *     in a segment the stack took (tracked per slot);
 *   - recv() returns exactly the pattern bytes the peer injected, in order;
 *   - calls return 0/positive or a negative errno, never crash;
 *   - an ATTACK storm of n segments draws at most n + 8 segments without data;
 *   - with FUZZ_ENGINE_LAND=1 (once the stack drops martians, issue 10.1):
 *     nothing is sent to a martian address, and ATTACK may use the stack's own
 *     address as the source (LAND; without the fix it hangs ustcp_input).
 * At the end every descriptor is closed and the clock runs until no timer is
 * left: the stack must then hold no connection and no memory (conns_alive and
 * mem_bytes 0), then it is freed (ASan checks for leaks).
 *
 * FUZZ_ENGINE_MKCORPUS builds, instead, the seed-corpus generator: programs
 * converted from tests/scripts/ *.pkt and hand-made ones (fuzz/CMakeLists.txt:
 * fuzz_engine_mkcorpus).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ustcp.h"
#include "wire/wire.h"
#include "stack/stack_check.h"
#include "arena.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LOCAL_IP 0xC0000201u   /* 192.0.2.1 */
#define PEER_IP 0xC0000202u    /* 192.0.2.2 */
#define NSLOTS 16
#define MAX_FDS 64
#define MAX_OPS 4000
#define MAX_FLOOD 512

enum { OP_SEG, OP_RAWIP, OP_RAWTCP, OP_FLOOD, OP_CALL, OP_TIME, OP_SLOT, OP_ATTACK, OP_COUNT };
enum {
  C_SOCKET, C_BIND, C_LISTEN, C_ACCEPT, C_CONNECT, C_SEND, C_RECV, C_SHUTDOWN, C_CLOSE,
  C_SETSOCKOPT, C_GETSOCKOPT, C_ERROR, C_EVENTS, C_INFO, C_NAMES, C_TABLE, C_COUNT
};
/* SEG option mask */
#define O_MSS 0x01
#define O_WS 0x02
#define O_SACKOK 0x04
#define O_TS 0x08
#define O_SACK 0x10
#define O_BADCSUM 0x20
#define O_RAWDATA 0x40
#define O_ABS 0x80

/* Byte k of a stream (k = relative sequence number - 1), as tests/pkt/pktrun. */
static uint8_t pattern(uint32_t k)
{
  uint32_t x = k * 2654435761u;
  return (uint8_t)((x >> 24) ^ (k >> 16));
}

/* ================================================================ builder */
/* Programs are built with these (the prologue, the seed corpus). */
struct prog {
  uint8_t *b;
  size_t n, cap;
};
static void pb_bytes(struct prog *p, const void *src, size_t n)
{
  if (p->n + n > p->cap) {
    p->cap = (p->n + n) * 2 + 256;
    p->b = realloc(p->b, p->cap);
    if (!p->b) abort();
  }
  memcpy(p->b + p->n, src, n);
  p->n += n;
}
static void pb_u8(struct prog *p, unsigned v) { uint8_t b = (uint8_t)v; pb_bytes(p, &b, 1); }
static void pb_u16(struct prog *p, unsigned v) { pb_u8(p, v & 0xff); pb_u8(p, (v >> 8) & 0xff); }
static void pb_u32(struct prog *p, uint32_t v) { pb_u16(p, v & 0xffff); pb_u16(p, v >> 16); }

struct pb_seg {
  unsigned slot, flags, win, len, urg;
  unsigned ecn;                   /* IP ECN field (IP_ECN_*) */
  uint32_t seq, ack;
  unsigned opts;                  /* O_* */
  unsigned mss, ws;
  uint32_t tsval, tsecr;
  unsigned nsack;
  uint32_t sack[4][2];
};
static void pb_seg(struct prog *p, const struct pb_seg *s)
{
  pb_u8(p, OP_SEG);
  pb_u8(p, s->slot);
  pb_u8(p, s->flags);
  pb_u32(p, s->seq);
  pb_u32(p, s->ack);
  pb_u16(p, s->win);
  pb_u16(p, (s->len & 0x3fffu) | (s->ecn & 3u) << 14);
  pb_u8(p, s->opts);
  if (s->flags & TCP_URG) pb_u16(p, s->urg);
  if (s->opts & O_MSS) pb_u16(p, s->mss);
  if (s->opts & O_WS) pb_u8(p, s->ws);
  if (s->opts & O_TS) { pb_u32(p, s->tsval); pb_u32(p, s->tsecr); }
  if (s->opts & O_SACK) {
    pb_u8(p, s->nsack);
    for (unsigned i = 0; i < s->nsack; i++) { pb_u32(p, s->sack[i][0]); pb_u32(p, s->sack[i][1]); }
  }
}
static void pb_call(struct prog *p, unsigned call, unsigned fd, unsigned a1, unsigned a2)
{
  pb_u8(p, OP_CALL);
  pb_u8(p, call);
  pb_u8(p, fd);
  pb_u16(p, a1);
  pb_u16(p, a2);
}
/* Advances the clock by dt_us, rounded to what the TIME codes express. */
static void pb_time(struct prog *p, uint64_t dt_us)
{
  uint64_t ms = dt_us / 1000;
  while (ms >= 60000) {
    uint64_t m = ms / 60000;
    if (m > 55) m = 55;
    pb_u8(p, OP_TIME); pb_u8(p, 200 + (unsigned)m);
    ms -= m * 60000;
  }
  while (ms >= 1000) {
    uint64_t s = ms / 1000;
    if (s > 99) s = 99;
    pb_u8(p, OP_TIME); pb_u8(p, 100 + (unsigned)s);
    ms -= s * 1000;
  }
  while (ms > 0) {
    uint64_t m = ms > 99 ? 99 : ms;
    pb_u8(p, OP_TIME); pb_u8(p, (unsigned)m);
    ms -= m;
  }
}
#ifdef FUZZ_ENGINE_MKCORPUS
static void pb_attack(struct prog *p, unsigned slot, unsigned kind, unsigned flags, int32_t soff,
                      int32_t aoff, unsigned win, unsigned len, unsigned count)
{
  pb_u8(p, OP_ATTACK);
  pb_u8(p, slot);
  pb_u8(p, kind);
  pb_u8(p, flags);
  /* small offsets in the compact form (see op_attack) */
  pb_u32(p, soff >= -2048 && soff < 2048 ? (uint32_t)(soff + 2048) : (uint32_t)soff | 0x80000000u);
  pb_u32(p, aoff >= -2048 && aoff < 2048 ? (uint32_t)(aoff + 2048) : (uint32_t)aoff | 0x80000000u);
  pb_u16(p, win);
  pb_u16(p, len);
  if (kind & 0x80) pb_u8(p, (count - 1) % 64);
}
#endif
static void pb_slot(struct prog *p, unsigned slot, unsigned peer_port, unsigned local_port,
                    uint32_t peer_isn)
{
  pb_u8(p, OP_SLOT);
  pb_u8(p, slot);
  pb_u16(p, peer_port);
  pb_u16(p, local_port);
  pb_u32(p, peer_isn);
}

/* ================================================================ interpreter */
struct slot {
  uint16_t peer_port, local_port;
  uint32_t peer_isn;
  uint32_t stack_isn;
  bool have_isn;
  bool raw;                       /* raw payload injected: recv content unknown */
  bool have_edge;
  uint32_t edge;                  /* largest right edge advertised to the stack */
};

struct fdent {
  int fd;
  bool closed;
  int slot;                       /* -1 unknown */
  uint64_t read;                  /* bytes consumed */
  uint64_t sent;                  /* bytes of the pattern sent */
  uint32_t peer_isn;              /* the slot's ISN when the fd took the slot: the
                                     pattern its bytes were made with */
};

struct world {
  struct ustcp_stack *s;
  struct ustcp_config cfg;
  uint64_t now;
  struct slot slots[NSLOTS];
  struct fdent fds[MAX_FDS];
  int nfds;
  int last_closed;
  uint64_t rng;
  unsigned flood_total;
  const char *phase;
  uint8_t seg_ecn;                /* the IP ECN field of the SEG being sent (RFC 3168) */
  bool trace;                     /* FUZZ_ENGINE_TRACE=1: print every segment and call */
  bool quiet;                     /* no checks after each operation (the prologue) */
  bool check_all;                 /* FUZZ_ENGINE_CHECK_ALL=1: checks after every operation */
  bool land;                      /* FUZZ_ENGINE_LAND=1: LAND attacks, no output to martians */
};
static struct world W;

/* Sources an attacker forges: martians (RFC 1122 3.2.1.3, RFC 5735), and the
 * stack's own address. */
static const uint32_t martians[] = {
  0x00000000u, 0x00000001u, 0x7f000001u, 0x7f123456u, 0xe0000001u, 0xefffffffu,
  0xffffffffu, 0xf0000001u, 0xfffffffeu, LOCAL_IP,
};
static unsigned out_ctl;              /* segments without data the stack sent (op_attack) */

static void trace_pkt(const char *dir, const uint8_t *pkt, size_t len)
{
  struct tcp_packet p;
  if (tcp_packet_decode(pkt, len, &p) != WIRE_OK) {
    printf("%10.6f %s undecodable (%zu bytes)\n", (double)W.now / 1e6, dir, len);
    return;
  }
  char fl[16];
  printf("%10.6f %s %u->%u %s seq %u ack %u win %u len %zu\n", (double)W.now / 1e6, dir,
         p.tcp.src_port, p.tcp.dst_port, tcp_flags_str(p.tcp.flags, fl, sizeof fl), p.tcp.seq,
         p.tcp.ack, p.tcp.window, p.payload_len);
}

#define REQUIRE(c, ...) do {                                                 \
    if (!(c)) {                                                              \
      fprintf(stderr, "fuzz_engine: %s: ", W.phase);                         \
      fprintf(stderr, __VA_ARGS__);                                          \
      fprintf(stderr, " (%s, line %d)\n", #c, __LINE__);                     \
      abort();                                                               \
    }                                                                        \
  } while (0)

struct reader {
  const uint8_t *d;
  size_t n, i;
};
static bool rd_more(const struct reader *r) { return r->i < r->n; }
static unsigned rd_u8(struct reader *r) { return r->i < r->n ? r->d[r->i++] : 0; }
static unsigned rd_u16(struct reader *r) { unsigned a = rd_u8(r); return a | rd_u8(r) << 8; }
static uint32_t rd_u32(struct reader *r) { uint32_t a = rd_u16(r); return a | (uint32_t)rd_u16(r) << 16; }

static int slot_of_ports(uint16_t peer_port, uint16_t local_port)
{
  for (int i = 0; i < NSLOTS; i++)
    if (W.slots[i].peer_port == peer_port &&
        (W.slots[i].local_port == local_port || W.slots[i].local_port == 0))
      return i;
  return -1;
}

static struct tcb *tcb_of_slot(int i)
{
  const struct slot *sl = &W.slots[i];
  return stack_lookup(W.s, LOCAL_IP, sl->local_port, PEER_IP, sl->peer_port);
}

/* Whether the stack may take this segment's ACK field and window: not when
 * the segment fails the acceptability test of RFC 9293 §3.10.7.4 (a segment
 * wholly below RCV.NXT, or past the window's right edge, is answered with an
 * ACK and dropped, its window unread, as Linux's tcp_validate_incoming). A
 * superset of what the stack takes: the right edge counts as inside, and in
 * SYN_SENT (no RCV.NXT yet: the SYN-ACK) and for a SYN in SYN_RCVD (a crossing
 * SYN-ACK) every segment is let through; a window recorded
 * from a segment the stack did not take only loosens the check below. */
static bool may_be_acceptable(const struct tcb *t, const struct tcp_hdr *h, unsigned len)
{
  if (t->state == USTCP_SYN_SENT || ((h->flags & TCP_SYN) && t->state == USTCP_SYN_RCVD)) return true;
  uint32_t seglen = len + ((h->flags & TCP_SYN) ? 1u : 0u) + ((h->flags & TCP_FIN) ? 1u : 0u);
  uint32_t wnd = seq_gt(t->rcv_adv, t->rcv_nxt) ? t->rcv_adv - t->rcv_nxt : 0;
  if (seglen == 0 || wnd == 0) return seq_geq(h->seq, t->rcv_nxt) && seq_leq(h->seq, t->rcv_nxt + wnd);
  return seq_leq(h->seq, t->rcv_nxt + wnd) && seq_gt(h->seq + seglen, t->rcv_nxt);
}

/* Every packet the stack sends. */
static void out_cb(void *ctx, const uint8_t *pkt, size_t len)
{
  (void)ctx;
  if (W.trace) trace_pkt(">", pkt, len);
  struct tcp_packet p;
  int rc = tcp_packet_decode(pkt, len, &p);
  REQUIRE(rc == WIRE_OK, "the stack sent a packet that does not decode: %s", wire_strerror(rc));
  const struct tcp_hdr *h = &p.tcp;
  REQUIRE(p.ip.src == LOCAL_IP, "source address %08x", p.ip.src);
  /* D2: every segment after the opening SYN carries ACK (a RST answering an
   * ACK carries none, RFC 9293 §3.10.7.1); the opening SYN may ask for ECN
   * (ECE|CWR, RFC 3168 §6.1.1). */
  REQUIRE((h->flags & TCP_ACK) || (h->flags & TCP_RST) ||
              (h->flags & (uint8_t)~(TCP_ECE | TCP_CWR)) == TCP_SYN,
          "segment without ACK, flags %02x", h->flags);
  /* RFC 3168 §6.1.1, §6.1.4, §6.1.5: SYNs, segments without data and
   * retransmissions are Not-ECT; nothing is ever CE or ECT(1) */
  REQUIRE((p.ip.tos & IP_ECN_MASK) == IP_ECN_NOT_ECT ||
              ((p.ip.tos & IP_ECN_MASK) == IP_ECN_ECT0 && p.payload_len && !(h->flags & TCP_SYN)),
          "IP ECN field %u on a segment of %zu bytes, flags %02x", p.ip.tos & IP_ECN_MASK,
          p.payload_len, h->flags);
  REQUIRE(p.payload_len <= (size_t)(W.cfg.mtu - 40u), "payload %zu over the MTU", p.payload_len);
  /* options come out of the payload (tcp_current_mss): the whole packet fits */
  REQUIRE(len <= W.cfg.mtu, "a %zu-byte packet over the %u-byte MTU", len, (unsigned)W.cfg.mtu);
  if (!p.payload_len) out_ctl++;
  if (W.land) {
    bool martian = false;
    for (size_t k = 0; k < sizeof martians / sizeof martians[0]; k++)
      if (p.ip.dst == martians[k]) martian = true;
    uint32_t a = p.ip.dst >> 24;
    if (a == 0 || a == 127 || a >= 224) martian = true;
    REQUIRE(!martian, "a packet sent to the martian address %08x", p.ip.dst);
  }
  int i = slot_of_ports(h->dst_port, h->src_port);
  if (i < 0 || p.ip.dst != PEER_IP) return;
  struct slot *sl = &W.slots[i];
  if (h->flags & TCP_SYN) {
    if (!sl->have_isn || sl->stack_isn != h->seq) sl->have_edge = false;
    sl->stack_isn = h->seq;
    sl->have_isn = true;
    if (!sl->local_port) sl->local_port = h->src_port;
  }
  if (p.payload_len && sl->have_edge && !sl->raw) {
    uint32_t end = h->seq + (uint32_t)p.payload_len;
    /* One exception, Linux's (__tcp_retransmit_skb): when the peer shrank its
     * window below data already sent, the retransmission of the oldest
     * unacknowledged segment (at SND.UNA, at most one MSS, nothing new) goes
     * out anyway and serves as the zero-window probe. */
    const struct tcb *t = tcb_of_slot(i);
    bool shrunk_probe = t && h->seq == t->snd_una && seq_leq(end, t->snd_max) &&
                        p.payload_len <= t->snd_mss;
    REQUIRE(seq_leq(end, sl->edge) || shrunk_probe,
            "data to %u beyond the edge %u the peer advertised (slot %d)", end, sl->edge, i);
  }
}

static void poll_to(uint64_t t)
{
  /* Timers run in order, each at its own deadline. */
  for (int guard = 0;; guard++) {
    REQUIRE(guard < 1000000, "timers never settle");
    uint64_t d = ustcp_next_deadline(W.s);
    if (d == USTCP_NO_DEADLINE || d > t) break;
    if (d > W.now) W.now = d;
    uint64_t next = ustcp_poll(W.s, W.now);
    REQUIRE(next == USTCP_NO_DEADLINE || next > W.now, "a deadline left in the past after poll");
  }
  if (t > W.now) W.now = t;
  ustcp_poll(W.s, W.now);
}

static void check(void)
{
  char buf[512];
  const char *r = stack_check(W.s, false, buf, sizeof buf);
  REQUIRE(r == NULL, "invariant: %s", r);
}

static void inject(const uint8_t *pkt, size_t len)
{
  if (W.trace) trace_pkt("<", pkt, len);
  ustcp_input(W.s, pkt, len, W.now);
}

static uint8_t pktbuf[IPV4_HDR_LEN + TCP_MAX_HDR_LEN + 65536];
static uint8_t paybuf[65536];

static void send_seg(struct reader *r, int i, struct tcp_hdr *hp, unsigned len, unsigned opts,
                     uint32_t src);

static void op_seg(struct reader *r)
{
  int i = (int)(rd_u8(r) % NSLOTS);
  struct slot *sl = &W.slots[i];
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.flags = (uint8_t)rd_u8(r);
  uint32_t seq = rd_u32(r), ack = rd_u32(r);
  h.window = (uint16_t)rd_u16(r);
  /* the length word: bits 0-13 the length (mod 9001), bits 14-15 the IP ECN
   * field (RFC 3168), so programs written before it (lengths below 16384) keep
   * their meaning and Not-ECT */
  unsigned raw_len = rd_u16(r);
  unsigned len = (raw_len & 0x3fffu) % 9001;
  uint8_t ecn = (uint8_t)(raw_len >> 14);
  unsigned opts = rd_u8(r);
  if (h.flags & TCP_URG) h.urg_ptr = (uint16_t)rd_u16(r);
  if (opts & O_MSS) { h.opts.present |= TCP_OPT_HAS_MSS; h.opts.mss = (uint16_t)rd_u16(r); }
  if (opts & O_WS) { h.opts.present |= TCP_OPT_HAS_WSCALE; h.opts.wscale = (uint8_t)rd_u8(r); }
  if (opts & O_SACKOK) h.opts.present |= TCP_OPT_HAS_SACK_PERM;
  if (opts & O_TS) { h.opts.present |= TCP_OPT_HAS_TS; h.opts.ts_val = rd_u32(r); h.opts.ts_ecr = rd_u32(r); }
  if (opts & O_SACK) {
    unsigned n = rd_u8(r) % (TCP_MAX_SACK_BLOCKS + 1);
    for (unsigned k = 0; k < n; k++) {
      uint32_t a = rd_u32(r), b = rd_u32(r);
      h.opts.sack[k].left = (opts & O_ABS) || !sl->have_isn ? a : sl->stack_isn + a;
      h.opts.sack[k].right = (opts & O_ABS) || !sl->have_isn ? b : sl->stack_isn + b;
    }
    h.opts.sack_count = (uint8_t)n;
    if (n) h.opts.present |= TCP_OPT_HAS_SACK;
  }
  /* Encoded options must fit 40 bytes: drop SACK blocks until they do. */
  while (h.opts.sack_count && tcp_opts_len(&h.opts) > 40) h.opts.sack_count--;
  if (!h.opts.sack_count) h.opts.present &= (uint8_t)~TCP_OPT_HAS_SACK;
  h.src_port = sl->peer_port;
  h.dst_port = sl->local_port ? sl->local_port : 8080;
  h.seq = (opts & O_ABS) ? seq : sl->peer_isn + seq;
  h.ack = ((opts & O_ABS) || !sl->have_isn) ? ack : sl->stack_isn + ack;
  W.seg_ecn = ecn;
  send_seg(r, i, &h, len, opts, PEER_IP);
  W.seg_ecn = 0;
}

/* Sends h (ports, numbers, flags, options set) from src with len bytes of
 * payload: the slot's pattern at h->seq, or (O_RAWDATA) bytes of the input. */
static void send_seg(struct reader *r, int i, struct tcp_hdr *hp, unsigned len, unsigned opts,
                     uint32_t src)
{
  struct slot *sl = &W.slots[i];
  struct tcp_hdr h = *hp;
  uint32_t first = h.seq + ((h.flags & TCP_SYN) ? 1u : 0u);
  if (opts & O_RAWDATA) {
    size_t take = r->n - r->i < len ? r->n - r->i : len;
    memcpy(paybuf, r->d + r->i, take);
    r->i += take;
    len = (unsigned)take;
    if (src == PEER_IP) sl->raw = true;
  } else {
    for (unsigned k = 0; k < len; k++) paybuf[k] = pattern(first + k - sl->peer_isn - 1);
  }
  uint32_t dst = LOCAL_IP;
  int n = tcp_packet_encode_tos(&h, paybuf, len, src, dst, 7, W.seg_ecn, pktbuf, sizeof pktbuf);
  if (n < 0) return;
  if (opts & O_BADCSUM) pktbuf[IPV4_HDR_LEN + 16] ^= 0x5a;
  /* What the stack may send after this segment: its right edge, if the stack
   * takes the segment's window (an ACK inside [snd_una, snd_max]). */
  struct tcb *t = src == PEER_IP ? tcb_of_slot(i) : NULL;
  bool may_edge = false;
  uint32_t edge = 0;
  if (t && !(opts & O_BADCSUM) && (h.flags & TCP_ACK) && !(h.flags & TCP_RST) &&
      t->state != USTCP_LISTEN && seq_geq(h.ack, t->snd_una) && seq_leq(h.ack, t->snd_max) &&
      may_be_acceptable(t, &h, len)) {
    uint32_t scale = (h.flags & TCP_SYN) ? 0 : t->snd_wscale;
    edge = h.ack + ((uint32_t)h.window << scale);
    may_edge = true;
  }
  /* Recorded before the stack sees it: it may send at once. */
  if (may_edge && (!sl->have_edge || seq_gt(edge, sl->edge))) {
    sl->edge = edge;
    sl->have_edge = true;
  }
  inject(pktbuf, (size_t)n);
}


/* ATTACK: what an attacker sends into a live connection, its numbers anchored
 * to the connection's own state (which a real attacker guesses or sniffs):
 *   slot, kind, flags, seq offset (u32), ack offset (u32), window, length, count
 *   kind bits 0-1  SEQ anchor: RCV.NXT; the right edge of the window the stack
 *                  advertised; RCV.NXT - length (the segment ends at RCV.NXT +
 *                  offset: straddles it); the peer's ISN (as SEG)
 *   kind bits 2-3  ACK anchor: SND.UNA; SND.MAX (ahead: ACKs of unsent data);
 *                  SND.UNA - MAX.SND.WND (too old, RFC 5961 section 5); the ISN
 *   kind bits 4-6  source: the peer; another host (spoofed, same ports); a
 *                  martian; the stack's own address and port (LAND) and the
 *                  stack's address with the peer's port - these two only with
 *                  FUZZ_ENGINE_LAND=1 until the stack drops them (issue 10.1)
 *   kind bit 7     a storm: the segment count%64+1 times (data, at most 256
 *                  bytes a segment, advances its SEQ);
 *                  the stack must answer with at most one segment without
 *                  data for each (no amplification, no loop)
 * Payloads are the slot's pattern at their sequence numbers, so the
 * delivered-bytes checks still hold for every byte the stack takes. */

static void op_attack(struct reader *r)
{
  bool land = W.land;
  int i = (int)(rd_u8(r) % NSLOTS);
  unsigned kind = rd_u8(r);
  struct slot *sl = &W.slots[i];
  struct tcp_hdr h;
  memset(&h, 0, sizeof h);
  h.flags = (uint8_t)rd_u8(r);
  uint32_t soff = rd_u32(r), aoff = rd_u32(r);
  h.window = (uint16_t)rd_u16(r);
  unsigned len = rd_u16(r) % 2049;
  unsigned count = (kind & 0x80) ? rd_u8(r) % 64 + 1u : 1u;
  if (count > 1 && len > 256) len %= 257;   /* a storm's bytes stay few */
  struct tcb *t = tcb_of_slot(i);
  /* offsets are small signed numbers most of the time */
  int32_t so = (int32_t)soff, ao = (int32_t)aoff;
  if (!(soff & 0x80000000u)) so = (int32_t)(soff % 4096) - 2048;
  if (!(aoff & 0x80000000u)) ao = (int32_t)(aoff % 4096) - 2048;
  uint32_t seq = sl->peer_isn + (uint32_t)so, ack = sl->stack_isn + (uint32_t)ao;
  if (t && t->state != USTCP_LISTEN) {
    switch (kind & 3) {
    case 0: seq = t->rcv_nxt + (uint32_t)so; break;
    case 1: seq = t->rcv_adv + (uint32_t)so; break;
    case 2: seq = t->rcv_nxt - len + (uint32_t)so; break;
    }
    switch ((kind >> 2) & 3) {
    case 0: ack = t->snd_una + (uint32_t)ao; break;
    /* |ao| as unsigned: -INT32_MIN overflows an int */
    case 1: ack = t->snd_max + 1 + (ao < 0 ? 0u - (uint32_t)ao : (uint32_t)ao); break;
    case 2: ack = t->snd_una - t->max_snd_wnd - 1 - (ao < 0 ? 0u - (uint32_t)ao : (uint32_t)ao); break;
    }
  }
  uint32_t src = PEER_IP;
  h.src_port = sl->peer_port;
  h.dst_port = sl->local_port ? sl->local_port : 8080;
  switch ((kind >> 4) & 7) {
  case 1: src = 0xC6336400u | (soff & 0xff); break;            /* 198.51.100.x */
  case 2: src = martians[aoff % (sizeof martians / sizeof martians[0])]; break;
  case 3:
    if (!land) return;
    src = LOCAL_IP;
    h.src_port = h.dst_port;                                      /* LAND */
    break;
  case 4:
    if (!land) return;
    src = LOCAL_IP;
    break;
  }
  if (src == LOCAL_IP && !land) return;
  unsigned ctl0 = out_ctl;
  for (unsigned k = 0; k < count; k++) {
    h.seq = seq;
    h.ack = ack;
    send_seg(r, i, &h, len, 0, src);
    if (!(h.flags & (TCP_SYN | TCP_RST))) seq += len;
  }
  REQUIRE(out_ctl - ctl0 <= count + 8, "%u segments without data answered %u attack segments",
          out_ctl - ctl0, count);
}

static void op_rawip(struct reader *r)
{
  size_t len = rd_u16(r) % 2048;
  size_t take = r->n - r->i < len ? r->n - r->i : len;
  memcpy(pktbuf, r->d + r->i, take);
  r->i += take;
  /* A valid segment for a slot's connection: its window and payload are
   * arbitrary, so that slot's edge and content checks stop. */
  struct tcp_packet p;
  if (tcp_packet_decode(pktbuf, take, &p) == WIRE_OK) {
    int i = slot_of_ports(p.tcp.src_port, p.tcp.dst_port);
    if (i >= 0) W.slots[i].raw = true;
  }
  inject(pktbuf, take);
}

static void op_rawtcp(struct reader *r)
{
  int i = (int)(rd_u8(r) % NSLOTS);
  size_t len = rd_u8(r);
  size_t take = r->n - r->i < len ? r->n - r->i : len;
  struct ipv4_hdr ip;
  memset(&ip, 0, sizeof ip);
  ip.version = 4;
  ip.ihl = 5;
  ip.total_len = (uint16_t)(IPV4_HDR_LEN + take);
  ip.ttl = 64;
  ip.flags = IPV4_FLAG_DF;
  ip.proto = IPPROTO_TCP_;
  ip.src = PEER_IP;
  ip.dst = LOCAL_IP;
  if (ipv4_encode(&ip, pktbuf, sizeof pktbuf) < 0) return;
  uint8_t *seg = pktbuf + IPV4_HDR_LEN;
  memcpy(seg, r->d + r->i, take);
  r->i += take;
  if (take >= 4) {
    /* Aim it at the slot's ports, so it reaches a connection. */
    seg[0] = (uint8_t)(W.slots[i].peer_port >> 8);
    seg[1] = (uint8_t)W.slots[i].peer_port;
    uint16_t lp = W.slots[i].local_port ? W.slots[i].local_port : 8080;
    seg[2] = (uint8_t)(lp >> 8);
    seg[3] = (uint8_t)lp;
  }
  if (take >= 18) {
    seg[16] = seg[17] = 0;
    uint32_t sum = tcp_pseudo_sum(PEER_IP, LOCAL_IP, IPPROTO_TCP_, (uint16_t)take);
    uint16_t c = inet_csum_fold(inet_csum_add(sum, seg, take));
    seg[16] = (uint8_t)(c >> 8);
    seg[17] = (uint8_t)c;
  }
  W.slots[i].raw = true;          /* arbitrary window and payload: stop checking */
  inject(pktbuf, IPV4_HDR_LEN + take);
}

static uint64_t rnd(void)
{
  uint64_t z = (W.rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static void op_flood(struct reader *r)
{
  unsigned count = rd_u16(r) % 129;
  unsigned port = W.slots[0].local_port ? W.slots[0].local_port : 8080;
  if (W.flood_total + count > MAX_FLOOD) count = MAX_FLOOD - W.flood_total;
  W.flood_total += count;
  for (unsigned k = 0; k < count; k++) {
    struct tcp_hdr h;
    memset(&h, 0, sizeof h);
    uint64_t x = rnd();
    h.src_port = (uint16_t)(1024 + x % 60000);
    h.dst_port = (uint16_t)port;
    h.seq = (uint32_t)(x >> 16);
    h.flags = TCP_SYN;
    h.window = 65535;
    h.opts.present = TCP_OPT_HAS_MSS;
    h.opts.mss = 1460;
    uint32_t src = 0x0a000000u | (uint32_t)((x >> 40) & 0xffffff);
    int n = tcp_packet_encode(&h, NULL, 0, src, LOCAL_IP, 9, pktbuf, sizeof pktbuf);
    if (n > 0) inject(pktbuf, (size_t)n);
  }
}

static int fd_arg(unsigned b)
{
  if (b == 0xff) return -1;
  if (b == 0xfe) return 9999;
  if (b == 0xfd) return W.last_closed;
  if (W.nfds == 0) return (int)(b % 8);
  return W.fds[b % (unsigned)W.nfds].fd;
}
/* The descriptor table keeps its indices for the whole program (a closed
 * entry stays, so programs can refer to "the third socket" and reuse a
 * closed descriptor on purpose). */
static struct fdent *fd_ent(int fd)
{
  for (int i = W.nfds; i-- > 0;)
    if (W.fds[i].fd == fd && !W.fds[i].closed) return &W.fds[i];
  return NULL;
}
static void fd_add(int fd, int slot)
{
  if (W.nfds == MAX_FDS) return;
  struct fdent *e = &W.fds[W.nfds++];
  e->fd = fd;
  e->closed = false;
  e->slot = slot;
  e->peer_isn = slot >= 0 ? W.slots[slot].peer_isn : 0;
  e->read = e->sent = 0;
}
static void fd_del(int fd)
{
  struct fdent *e = fd_ent(fd);
  if (e) e->closed = true;
}

static bool is_errno(long rc)
{
  return rc >= -4095 && rc < 0;
}

static void op_call(struct reader *r)
{
  unsigned call = rd_u8(r) % C_COUNT;
  int fd = fd_arg(rd_u8(r));
  unsigned a1 = rd_u16(r), a2 = rd_u16(r);
  struct ustcp_stack *s = W.s;
  long rc = 0;
  switch (call) {
  case C_SOCKET:
    rc = ustcp_socket(s);
    if (rc >= 0) fd_add((int)rc, -1);
    break;
  case C_BIND: {
    struct ustcp_addr a = {(a2 & 1) ? LOCAL_IP : ((a2 & 2) ? 0x0a000009u : 0), (uint16_t)a1};
    rc = ustcp_bind(s, fd, (a2 & 4) ? NULL : &a);
    break;
  }
  case C_LISTEN: rc = ustcp_listen(s, fd, (int)(int16_t)a1); break;
  case C_ACCEPT: {
    struct ustcp_addr peer;
    rc = ustcp_accept(s, fd, (a2 & 1) ? NULL : &peer);
    if (rc >= 0) {
      struct ustcp_addr pa;
      int slot = -1;
      if (ustcp_getpeername(s, (int)rc, &pa) == 0) {
        struct ustcp_addr la;
        ustcp_getsockname(s, (int)rc, &la);
        slot = slot_of_ports(pa.port, la.port);
      }
      fd_add((int)rc, slot);
    }
    break;
  }
  case C_CONNECT: {
    int i = (int)(a1 % NSLOTS);
    /* a2 bit0: to our own address (self-connect over loopback, H9). */
    struct ustcp_addr to = {(a2 & 1) ? LOCAL_IP : PEER_IP, W.slots[i].peer_port};
    if (a2 & 2) to.port = 0;
    /* The slot starts over before the call: the SYN goes out inside it (and
     * teaches out_cb the local port and ISN). */
    struct slot saved = W.slots[i];
    if (to.ip == PEER_IP && !(a2 & 6) && sock_debug_tcb(s, fd, NULL)) {
      W.slots[i].local_port = 0;
      W.slots[i].have_isn = W.slots[i].have_edge = W.slots[i].raw = false;
    }
    rc = ustcp_connect(s, fd, (a2 & 4) ? NULL : &to);
    if (rc == -EINPROGRESS && to.ip == PEER_IP) {
      struct ustcp_addr la;
      if (ustcp_getsockname(s, fd, &la) == 0) W.slots[i].local_port = la.port;
      struct fdent *e = fd_ent(fd);
      if (e) { e->slot = i; e->read = 0; e->peer_isn = W.slots[i].peer_isn; }
    } else {
      W.slots[i] = saved;
    }
    break;
  }
  case C_SEND: {
    size_t n = a1;
    struct fdent *e = fd_ent(fd);
    for (size_t k = 0; k < n && k < sizeof paybuf; k++)
      paybuf[k] = pattern((uint32_t)((e ? e->sent : 0) + k));
    const void *buf = (a2 & 2) ? NULL : paybuf;
    /* A huge length only with a NULL buffer (must be refused): with a real one
     * it would be the caller's overflow, not the stack's. */
    if ((a2 & 4) && !buf) n = (size_t)1 << 40;
    rc = ustcp_send(s, fd, buf, n,
                    ((a2 & 1) ? USTCP_MSG_OOB : 0) | ((a2 & 8) ? USTCP_MSG_MORE : 0));
    REQUIRE(rc <= (long)n, "send returned more than asked");
    REQUIRE(buf || n == 0 || rc < 0, "send from NULL succeeded");
    if (rc > 0 && e) e->sent += (uint64_t)rc;
    break;
  }
  case C_RECV: {
    size_t n = a1;
    int flags = (a2 & 1) ? USTCP_MSG_PEEK : 0;
    if (a2 & 8) flags |= USTCP_MSG_OOB;
    void *buf = (a2 & 2) ? NULL : paybuf;
    if ((a2 & 4) && !buf) n = (size_t)1 << 40;   /* huge, NULL: must be refused */
    rc = ustcp_recv(s, fd, buf, n, flags);
    REQUIRE(rc <= (long)n, "recv returned more than asked");
    REQUIRE(buf || rc <= 0, "recv into NULL returned data");
    struct fdent *e = fd_ent(fd);
    if (rc > 0 && e && e->slot >= 0 && !W.slots[e->slot].raw) {
      struct tcb *t = sock_debug_tcb(s, fd, NULL);
      const struct slot *sl = &W.slots[e->slot];
      /* Only while the slot still names this connection's 4-tuple, with the
       * ISN its bytes were made from (a slot redefined on the 4-tuple of a
       * connection that ended, its unread bytes still readable, names
       * another one). */
      if (t && t->remote.port == sl->peer_port && t->local.port == sl->local_port &&
          t->remote.ip == PEER_IP && e->peer_isn == sl->peer_isn) {
        uint32_t base = t->irs - sl->peer_isn;
        for (long k = 0; k < rc; k++)
          REQUIRE(paybuf[k] == pattern(base + (uint32_t)(e->read + (uint64_t)k)),
                  "recv byte %llu of slot %d is wrong", (unsigned long long)(e->read + (uint64_t)k), e->slot);
      }
    }
    if (rc > 0 && e && !(flags & USTCP_MSG_PEEK)) e->read += (uint64_t)rc;
    break;
  }
  case C_SHUTDOWN: rc = ustcp_shutdown(s, fd, (int)(a1 % 4)); break;
  case C_CLOSE:
    rc = ustcp_close(s, fd);
    if (rc == 0) { fd_del(fd); W.last_closed = fd; }
    break;
  case C_SETSOCKOPT: {
    static const int opts[][2] = {
      {USTCP_SOL_SOCKET, USTCP_SO_REUSEADDR}, {USTCP_SOL_SOCKET, USTCP_SO_KEEPALIVE},
      {USTCP_SOL_SOCKET, USTCP_SO_SNDBUF}, {USTCP_SOL_SOCKET, USTCP_SO_RCVBUF},
      {USTCP_SOL_SOCKET, USTCP_SO_LINGER}, {USTCP_IPPROTO_TCP, USTCP_TCP_NODELAY},
      {USTCP_IPPROTO_TCP, USTCP_TCP_MAXSEG}, {USTCP_IPPROTO_TCP, USTCP_TCP_KEEPIDLE},
      {USTCP_IPPROTO_TCP, USTCP_TCP_KEEPINTVL}, {USTCP_IPPROTO_TCP, USTCP_TCP_KEEPCNT},
      {USTCP_IPPROTO_TCP, USTCP_TCP_QUICKACK}, {99, 99}, {USTCP_SOL_SOCKET, 77},
      {USTCP_IPPROTO_TCP, USTCP_TCP_CORK}, {USTCP_IPPROTO_TCP, USTCP_TCP_USER_TIMEOUT},
      {USTCP_IPPROTO_TCP, USTCP_TCP_NOTSENT_LOWAT}, {USTCP_IPPROTO_TCP, USTCP_TCP_INQ},
      {USTCP_IPPROTO_IP, USTCP_IP_TOS}, {USTCP_IPPROTO_IP, USTCP_IP_MTU_DISCOVER},
      {USTCP_IPPROTO_TCP, USTCP_TCP_ECN}};
    unsigned k = a1 % (sizeof opts / sizeof opts[0]);
    int v = (int)(int16_t)a2;
    if (k == 2 || k == 3) v = (int)((unsigned)a2 * 16u);   /* buffer sizes up to 1 MB */
    if (opts[k][1] == USTCP_SO_LINGER) {
      struct ustcp_linger l = {a2 & 1, (int)(int16_t)a2 >> 1};
      rc = ustcp_setsockopt(s, fd, opts[k][0], opts[k][1], (a1 & 0x100) ? NULL : &l,
                            (a1 & 0x200) ? 1 : sizeof l);
    } else {
      rc = ustcp_setsockopt(s, fd, opts[k][0], opts[k][1], (a1 & 0x100) ? NULL : &v,
                            (a1 & 0x200) ? 1 : sizeof v);
    }
    break;
  }
  case C_GETSOCKOPT: {
    static const int names[][2] = {
      {USTCP_SOL_SOCKET, USTCP_SO_ERROR}, {USTCP_SOL_SOCKET, USTCP_SO_LINGER},
      {USTCP_SOL_SOCKET, USTCP_SO_RCVBUF}, {USTCP_IPPROTO_TCP, USTCP_TCP_INFO},
      {USTCP_IPPROTO_TCP, USTCP_TCP_MAXSEG}, {5, 5}};
    unsigned k = a1 % (sizeof names / sizeof names[0]);
    union { struct ustcp_tcp_info ti; struct ustcp_linger l; int v; } u;
    size_t len = (a2 & 1) ? 1 : sizeof u;
    rc = ustcp_getsockopt(s, fd, names[k][0], names[k][1], (a2 & 2) ? NULL : &u, (a2 & 4) ? NULL : &len);
    REQUIRE(rc != 0 || len <= sizeof u, "getsockopt length");
    break;
  }
  case C_ERROR: rc = ustcp_sock_error(s, fd); break;
  case C_EVENTS: rc = ustcp_sock_events(s, fd); if (rc > 0) rc = 0; break;
  case C_INFO: {
    struct ustcp_tcp_info ti;
    rc = ustcp_get_info(s, fd, (a2 & 1) ? NULL : &ti);
    break;
  }
  case C_NAMES: {
    struct ustcp_addr a;
    rc = (a2 & 1) ? ustcp_getpeername(s, fd, (a2 & 2) ? NULL : &a)
                  : ustcp_getsockname(s, fd, (a2 & 2) ? NULL : &a);
    break;
  }
  case C_TABLE: {
    struct ustcp_sock_row rows[8];
    size_t total = ustcp_sock_table(s, NULL, 0);
    size_t n = ustcp_sock_table(s, rows, a1 % 9);
    REQUIRE(n == total, "sock_table count changed");
    struct ustcp_stats st;
    ustcp_get_stats(s, &st);
    rc = 0;
    break;
  }
  }
  if (W.trace) printf("%10.6f call %u fd %d (%u, %u) = %ld\n", (double)W.now / 1e6, call, fd, a1, a2, rc);
  REQUIRE(rc >= 0 || is_errno(rc), "call %u returned %ld", call, rc);
}

static void op_time(struct reader *r)
{
  unsigned c = rd_u8(r);
  uint64_t dt;
  if (c < 100) dt = (uint64_t)c * USTCP_MSEC;
  else if (c < 200) dt = (uint64_t)(c - 100) * USTCP_SEC;
  else dt = (uint64_t)(c - 200) * 60 * USTCP_SEC;
  poll_to(W.now + dt);
}

static void op_slot(struct reader *r)
{
  int i = (int)(rd_u8(r) % NSLOTS);
  struct slot *sl = &W.slots[i];
  struct slot old = *sl;
  sl->peer_port = (uint16_t)rd_u16(r);
  sl->local_port = (uint16_t)rd_u16(r);
  sl->peer_isn = rd_u32(r);
  sl->have_isn = sl->have_edge = false;
  /* A connection already on the (new) 4-tuple carries bytes patterned from
   * whatever ISN made them: only an unchanged, unpolluted slot keeps its
   * checks; a fresh 4-tuple starts clean. */
  bool same = old.peer_port == sl->peer_port && old.local_port == sl->local_port &&
              old.peer_isn == sl->peer_isn;
  if (!tcb_of_slot(i)) sl->raw = false;
  else if (!same) sl->raw = true;
  if (same) { sl->have_isn = old.have_isn; sl->have_edge = old.have_edge; }
  if (W.trace) printf("%10.6f slot %d: %u -> %u isn %u%s\n", (double)W.now / 1e6, i, sl->peer_port,
                      sl->local_port, sl->peer_isn, sl->raw ? " (raw)" : "");
  /* Two slots on one 4-tuple: each tracks only its own segments (its pattern
   * base, the windows it advertised), so neither can vouch for the
   * connection's bytes or edge any more. */
  for (int j = 0; j < NSLOTS; j++) {
    struct slot *o = &W.slots[j];
    if (j != i && o->peer_port == sl->peer_port &&
        (o->local_port == sl->local_port || !o->local_port || !sl->local_port))
      o->raw = sl->raw = true;
  }
}

/* Every byte a connection holds for the application (receive buffer and
 * out-of-order queue) is the pattern byte of its sequence number: whatever
 * overlapping, duplicated, trimmed segments arrived, reassembly never puts a
 * byte at the wrong place. Only for slots whose payloads were all patterned. */
static void check_bytes(void)
{
  static uint8_t tmp[1 << 16];
  for (int i = 0; i < NSLOTS; i++) {
    const struct slot *sl = &W.slots[i];
    if (sl->raw) continue;
    struct tcb *t = tcb_of_slot(i);
    if (!t || !tcb_has_conn_state(t->state) || t->state == USTCP_SYN_SENT) continue;
    uint32_t n = t->rcvbuf.len < sizeof tmp ? t->rcvbuf.len : (uint32_t)sizeof tmp;
    if (n && t->rcvbuf.data) {
      ring_copy_out(&t->rcvbuf, 0, tmp, n);
      uint32_t first = t->rcv_nxt - (t->rcv_fin ? 1u : 0u) - t->rcvbuf.len;
      for (uint32_t k = 0; k < n; k++)
        REQUIRE(tmp[k] == pattern(first + k - sl->peer_isn - 1),
                "slot %d: receive buffer byte at seq +%u is wrong (rcv_nxt +%u, %u buffered, irs +%u, %s)", i, first + k - sl->peer_isn - 1, t->rcv_nxt - sl->peer_isn, t->rcvbuf.len, t->irs - sl->peer_isn, ustcp_state_name(t->state));
    }
    /* Out-of-order bytes sit in the ring past the in-order ones, at their
     * distance from rcv_nxt. */
    uint32_t ql, qr;
    for (bool more = ooo_next(t, true, 0, &ql, &qr); more; more = ooo_next(t, false, ql, &ql, &qr)) {
      uint32_t qn = qr - ql < sizeof tmp ? qr - ql : (uint32_t)sizeof tmp;
      ring_copy_out(&t->rcvbuf, t->rcvbuf.len + (ql - t->rcv_nxt), tmp, qn);
      for (uint32_t k = 0; k < qn; k++)
        REQUIRE(tmp[k] == pattern(ql + k - sl->peer_isn - 1),
                "slot %d: out-of-order byte at seq +%u is wrong", i, ql + k - sl->peer_isn - 1);
    }
  }
}

static void run_ops(struct reader *r)
{
  uint64_t conns = W.s->eng.conns;
  for (int ops = 0; rd_more(r) && ops < MAX_OPS; ops++) {
    switch (rd_u8(r) % OP_COUNT) {
    case OP_SEG: op_seg(r); break;
    case OP_RAWIP: op_rawip(r); break;
    case OP_RAWTCP: op_rawtcp(r); break;
    case OP_FLOOD: op_flood(r); break;
    case OP_CALL: op_call(r); break;
    case OP_TIME: op_time(r); break;
    case OP_SLOT: op_slot(r); break;
    case OP_ATTACK: op_attack(r); break;
    }
    /* The invariants after every 8th operation (every one with
     * FUZZ_ENGINE_CHECK_ALL=1), after any that created or freed a connection
     * and after the last; a broken invariant stays broken until its
     * connection goes. The walk visits every connection, a flood's half-open
     * entries too: with many, every 16th. The prologue, a fixed program, is
     * checked once at its end. */
    bool changed = W.s->eng.conns != conns;
    conns = W.s->eng.conns;
    if (!W.quiet && (W.check_all || !rd_more(r) || ops % 16 == 15 ||
                     (conns <= 64 && (changed || ops % 8 == 7)))) {
      check();
      check_bytes();
    }
  }
}

/* ---------------------------------------------------------------- prologue */
/* Segment helpers for the builder: relative numbers, like the scripts. */
static void seg(struct prog *p, unsigned slot, unsigned flags, uint32_t seq, uint32_t ack,
                unsigned len, unsigned win)
{
  struct pb_seg s = {.slot = slot, .flags = flags, .seq = seq, .ack = ack, .len = len, .win = win};
  pb_seg(p, &s);
}
static void syn(struct prog *p, unsigned slot, unsigned opts_ws)
{
  struct pb_seg s = {.slot = slot, .flags = TCP_SYN, .seq = 0, .win = 65535,
                     .opts = O_MSS | (opts_ws ? O_WS : 0), .mss = 1460, .ws = 7};
  pb_seg(p, &s);
}
/* Passive handshake on slot; the accepted descriptor is fd table index fdi. */
static void handshake_in(struct prog *p, unsigned slot, unsigned lfd)
{
  syn(p, slot, 1);
  seg(p, slot, TCP_ACK, 1, 1, 0, 65535);
  pb_call(p, C_ACCEPT, lfd, 0, 0);
  pb_time(p, 10000);
}

static struct prog prologue;

static void build_prologue(void)
{
  struct prog *p = &prologue;
  /* Descriptor table indices (stable): 0 listener, 1..7 accepted in slots
   * 0..6, 8 and 9 the active opens of slots 8 and 9, 10 slot 11, 11 slot 12. */
  for (unsigned i = 0; i < 13; i++)
    pb_slot(p, i, 40000 + i, i == 8 || i == 9 ? 0 : 8080, 1000000u * (i + 1));
  pb_call(p, C_SOCKET, 0, 0, 0);
  pb_call(p, C_BIND, 0, 8080, 0);
  pb_call(p, C_LISTEN, 0, 16, 0);                  /* LISTEN */
  /* slot 0: ESTABLISHED with 100 unread bytes (index 1) */
  handshake_in(p, 0, 0);
  seg(p, 0, TCP_ACK | TCP_PSH, 1, 1, 100, 65535);
  /* slot 1: CLOSE_WAIT (2) */
  handshake_in(p, 1, 0);
  seg(p, 1, TCP_ACK | TCP_FIN, 1, 1, 0, 65535);
  /* slot 2: LAST_ACK, orphan (3, closed) */
  handshake_in(p, 2, 0);
  seg(p, 2, TCP_ACK | TCP_FIN, 1, 1, 0, 65535);
  pb_call(p, C_CLOSE, 3, 0, 0);
  /* slot 3: FIN_WAIT_1 with data waiting behind a zero window (4) */
  handshake_in(p, 3, 0);
  seg(p, 3, TCP_ACK, 1, 1, 0, 0);
  pb_call(p, C_SEND, 4, 3000, 0);
  pb_call(p, C_SHUTDOWN, 4, USTCP_SHUT_WR, 0);
  /* slot 4: FIN_WAIT_2 (5) */
  handshake_in(p, 4, 0);
  pb_call(p, C_SHUTDOWN, 5, USTCP_SHUT_WR, 0);
  seg(p, 4, TCP_ACK, 1, 2, 0, 65535);
  /* slot 5: CLOSING (6) */
  handshake_in(p, 5, 0);
  pb_call(p, C_SHUTDOWN, 6, USTCP_SHUT_WR, 0);
  seg(p, 5, TCP_ACK | TCP_FIN, 1, 1, 0, 65535);
  /* slot 6: TIME_WAIT, orphan (7, closed) */
  handshake_in(p, 6, 0);
  pb_call(p, C_CLOSE, 7, 0, 0);
  seg(p, 6, TCP_ACK | TCP_FIN, 1, 2, 0, 65535);
  /* slot 7: SYN_RCVD in the SYN queue */
  syn(p, 7, 0);
  /* slot 8: SYN_SENT (8) */
  pb_call(p, C_SOCKET, 0, 0, 0);
  pb_call(p, C_CONNECT, 8, 8, 0);
  /* slot 9: ESTABLISHED (active) with 5000 bytes in flight (9) */
  pb_call(p, C_SOCKET, 0, 0, 0);
  pb_call(p, C_CONNECT, 9, 9, 0);
  {
    struct pb_seg sa = {.slot = 9, .flags = TCP_SYN | TCP_ACK, .seq = 0, .ack = 1, .win = 65535,
                        .opts = O_MSS | O_WS, .mss = 1000, .ws = 2};
    pb_seg(p, &sa);
  }
  pb_call(p, C_SEND, 9, 5000, 0);
  /* slot 11: out-of-order data queued behind a hole (10) */
  handshake_in(p, 11, 0);
  seg(p, 11, TCP_ACK, 501, 1, 300, 65535);
  seg(p, 11, TCP_ACK, 1001, 1, 200, 65535);
  /* slot 12: keepalive on, established, idle (11) */
  handshake_in(p, 12, 0);
  pb_call(p, C_SETSOCKOPT, 11, 1, 1);
  /* slot 10: an established child nobody accepted */
  syn(p, 10, 1);
  seg(p, 10, TCP_ACK, 1, 1, 0, 65535);
  pb_time(p, 50000);
}

/* ---------------------------------------------------------------- one input */
/* The setup bits that shape the prologue's connections (buffers, window
 * scaling, queue sizes): one snapshot for each. The others (SYN cookies,
 * rfc1337, delayed ACK, TIME_WAIT length) are tunables the stack reads when it
 * uses them, applied after the prologue by tune(). */
#define SNAP_BITS 0x62u

static void setup(unsigned flags)
{
  memset(&W, 0, sizeof W);
  W.phase = "setup";
  W.last_closed = 3;
  ustcp_config_default(&W.cfg);
  struct ustcp_config *c = &W.cfg;
  if (flags & 0x02) c->window_scaling = false;
  if (flags & 0x20) { c->rmem_default = 4096; c->wmem_default = 4096; }
  if (flags & 0x40) { c->max_syn_backlog = 2; c->somaxconn = 1; c->max_ooo_segments = 2; }
  W.now = 1000;
  W.s = ustcp_stack_new(c, LOCAL_IP, 42, out_cb, NULL);
  REQUIRE(W.s != NULL, "stack_new");
  ustcp_poll(W.s, W.now);
  for (int i = 0; i < NSLOTS; i++) {
    W.slots[i].peer_port = (uint16_t)(40000 + i);
    W.slots[i].local_port = 8080;
    W.slots[i].peer_isn = 1000000u;
  }
}

static void tune(unsigned flags, unsigned tw)
{
  struct ustcp_config *c = &W.cfg;
  c->syncookies = (flags >> 2) & 3;
  if (c->syncookies == 3) c->syncookies = 1;
  c->rfc1337 = (flags >> 4) & 1;
  if (flags & 0x80) c->delack_min_us = 0;
  c->time_wait_us = tw ? (uint64_t)tw * USTCP_SEC : 60 * USTCP_SEC;
  /* the engine reads its configuration through a pointer to the stack's copy */
  W.s->cfg = *c;
  W.rng = 0x1234567u + flags * 77u + tw;
  W.trace = getenv("FUZZ_ENGINE_TRACE") != NULL;
  W.check_all = getenv("FUZZ_ENGINE_CHECK_ALL") != NULL;
  W.land = getenv("FUZZ_ENGINE_LAND") != NULL;
  if (W.trace) setvbuf(stdout, NULL, _IOLBF, 0);
}

static void run_prologue(void)
{
  W.phase = "prologue";
  struct reader pr = {prologue.b, prologue.n, 0};
  W.quiet = true;
  run_ops(&pr);
  W.quiet = false;
  check();
  check_bytes();
}

/* The stack after the prologue, one for each value of the SNAP_BITS, taken
 * the first time that value is used (fuzz/arena.h). FUZZ_ENGINE_FRESH=1 builds
 * every input's stack from scratch instead (the slow path, for comparison). */
static struct snapshot {
  struct fz_snap *mem;
  struct world w;
} snaps[SNAP_BITS + 1];

static void prepare(unsigned flags)
{
  static int fresh = -1;
  if (fresh < 0) fresh = getenv("FUZZ_ENGINE_FRESH") != NULL;
  unsigned key = flags & SNAP_BITS;
  if (!(flags & 1)) {
    fz_arena_reset();
    setup(key);
    return;
  }
  struct snapshot *sn = &snaps[key];
  if (sn->mem && !fresh) {
    fz_arena_restore(sn->mem);
    W = sn->w;
    return;
  }
  fz_arena_reset();
  setup(key);
  run_prologue();
  if (!fresh && !fz_arena_spilled()) {
    sn->mem = fz_arena_save();
    sn->w = W;
  }
}

static void teardown(void)
{
  W.phase = "teardown";
  /* Small retry budgets first (sysctls a running Linux takes too): the clock
   * then reaches the end of every connection after a few retransmissions, not
   * fifteen with backoff each time (which was most of the cost of an input).
   * The give-up paths still run here; the program's own TIME operations reach
   * them with the full budgets. */
  W.s->cfg.retries2 = 2;
  W.s->cfg.orphan_retries = 1;
  W.s->cfg.syn_retries = 1;
  W.s->cfg.synack_retries = 1;
  /* Every descriptor closed; then the clock runs until nothing is left. */
  uint32_t cap = 0;
  sock_debug_tcb(W.s, 0, &cap);
  for (uint32_t fd = 0; fd < cap; fd++) {
    if (!sock_debug_tcb(W.s, (int)fd, NULL)) continue;
    uint64_t before = W.s->eng.conns;
    REQUIRE(ustcp_close(W.s, (int)fd) == 0, "close(%u)", fd);
    /* Checked when the close freed a block (as run_ops does for calls). */
    if (W.s->eng.conns != before) check();
  }
  check();
  uint64_t limit = W.now + 48ull * 3600 * USTCP_SEC;
  uint64_t conns = W.s->eng.conns;
  for (int guard = 0;; guard++) {
    REQUIRE(guard < 1000000, "timers never settle after close");
    uint64_t d = ustcp_next_deadline(W.s);
    if (d == USTCP_NO_DEADLINE) break;
    REQUIRE(d <= limit, "a timer still armed two days after every descriptor closed");
    if (d > W.now) W.now = d;
    ustcp_poll(W.s, W.now);
    /* Checked whenever a connection went away, and every 16th poll (the
     * check walks every connection left). */
    if (W.s->eng.conns != conns || guard % 16 == 0) check();
    conns = W.s->eng.conns;
  }
  struct ustcp_stats st;
  ustcp_get_stats(W.s, &st);
  char buf[512];
  /* The deep check scans both 65536-entry port tables (512 KiB read): most of
   * the cost of an input under libFuzzer. The light check compares the tables'
   * running totals and each held port's entry with the blocks, which is what an
   * accounting bug breaks; the replay build (CTest, the sanitizers) scans all. */
#ifdef FUZZ_REPLAY
  const bool deep = true;
#else
  const bool deep = false;
#endif
  const char *r = stack_check(W.s, deep, buf, sizeof buf);
  REQUIRE(r == NULL, "final invariant: %s", r);
  REQUIRE(st.conns_alive == 0, "%llu connections left after closing all and running the timers",
          (unsigned long long)st.conns_alive);
  REQUIRE(st.mem_bytes == 0, "%llu bytes left after closing all", (unsigned long long)st.mem_bytes);
  ustcp_stack_free(W.s);
  W.s = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 2) return 0;
  if (!prologue.n) build_prologue();
  prepare(data[0]);
  tune(data[0], data[1]);
  if ((data[0] & 1) && W.trace) {
    struct ustcp_sock_row rows[64];
    size_t n = ustcp_sock_table(W.s, rows, 64);
    for (size_t i = 0; i < n && i < 64; i++)
      printf("prologue: fd %d %s %u -> %u\n", rows[i].fd, ustcp_state_name(rows[i].state),
             rows[i].local.port, rows[i].remote.port);
  }
  W.phase = "program";
  struct reader r = {data, size, 2};
  run_ops(&r);
  teardown();
  return 0;
}

#ifdef FUZZ_ENGINE_MKCORPUS
/* ================================================================ corpus */
#include <ctype.h>
#include <dirent.h>

static void write_prog(const char *dir, const char *name, const struct prog *p)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  if (!f) { perror(path); exit(1); }
  fwrite(p->b, 1, p->n, f);
  fclose(f);
}

/* ---- .pkt scripts -> programs (best effort: the lines the interpreter has an
 * operation for; expectations are dropped, the fuzzer checks its own). */
struct conv {
  struct prog p;
  uint64_t t_us;
  int fdmap[256];                 /* script descriptor -> fd table index */
  int nfd;
  unsigned peer_port, local_port;
  uint32_t remote_isn;
  unsigned slots[NSLOTS];         /* peer port of each slot */
  int nslots;
  unsigned flags, tw;
};

static int conv_slot(struct conv *c, unsigned peer_port, unsigned local_port)
{
  for (int i = 0; i < c->nslots; i++)
    if (c->slots[i] == peer_port) return i;
  if (c->nslots == NSLOTS) return NSLOTS - 1;
  int i = c->nslots++;
  c->slots[i] = peer_port;
  pb_slot(&c->p, (unsigned)i, peer_port, local_port, c->remote_isn);
  return i;
}

static unsigned flag_bits(const char *f)
{
  unsigned b = 0;
  for (; *f && !isspace((unsigned char)*f); f++) {
    switch (*f) {
    case 'F': b |= TCP_FIN; break;
    case 'S': b |= TCP_SYN; break;
    case 'R': b |= TCP_RST; break;
    case 'P': b |= TCP_PSH; break;
    case 'U': b |= TCP_URG; break;
    case 'E': b |= TCP_ECE; break;
    case 'W': b |= TCP_CWR; break;
    case '.': b |= TCP_ACK; break;
    }
  }
  return b;
}

static void conv_line(struct conv *c, char *line)
{
  char *hash = strchr(line, '#');
  if (hash) *hash = 0;
  char *s = line;
  while (isspace((unsigned char)*s)) s++;
  if (!*s) return;
  if (!strncmp(s, "config", 6)) {
    char key[64];
    unsigned long long v;
    if (sscanf(s + 6, " %63[a-z_0-9]=%llu", key, &v) == 2) {
      if (!strcmp(key, "time_wait_us")) c->tw = (unsigned)(v / USTCP_SEC ? v / USTCP_SEC : 1);
      else if (!strcmp(key, "syncookies")) c->flags = (c->flags & ~0x0cu) | (unsigned)((v & 3) << 2);
      else if (!strcmp(key, "window_scaling") && v == 0) c->flags |= 0x02;
      else if (!strcmp(key, "rfc1337") && v) c->flags |= 0x10;
      else if (!strcmp(key, "delack_min_us") && v == 0) c->flags |= 0x80;
      else if (!strcmp(key, "remote_isn")) c->remote_isn = (uint32_t)v;
      else if (!strcmp(key, "remote_port")) c->peer_port = (unsigned)v;
      else if (!strcmp(key, "local_port")) c->local_port = (unsigned)v;
    }
    return;
  }
  /* TIME */
  double t;
  int used = 0;
  if (*s == '+') {
    if (sscanf(s + 1, "%lf%n", &t, &used) != 1) return;
    c->t_us += (uint64_t)(t * 1e6 + 0.5);
    used += 1;
  } else {
    if (sscanf(s, "%lf%n", &t, &used) != 1) return;
    uint64_t at = (uint64_t)(t * 1e6 + 0.5);
    if (at > c->t_us) { pb_time(&c->p, at - c->t_us); c->t_us = at; }
    at = c->t_us;
  }
  if (*s == '+') pb_time(&c->p, (uint64_t)(t * 1e6 + 0.5));
  s += used;
  while (isspace((unsigned char)*s)) s++;
  if (*s == '<') {
    s++;
    unsigned peer = c->peer_port;
    if (*s == '[') { peer = (unsigned)strtoul(s + 1, &s, 10); if (*s == ']') s++; }
    while (isspace((unsigned char)*s)) s++;
    struct pb_seg g = {0};
    if (*s == '[') {   /* the IP ECN field: [noecn] [ect1] [ect0] [ce] */
      if (!strncmp(s, "[ect1]", 6)) g.ecn = IP_ECN_ECT1;
      else if (!strncmp(s, "[ect0]", 6)) g.ecn = IP_ECN_ECT0;
      else if (!strncmp(s, "[ce]", 4)) g.ecn = IP_ECN_CE;
      while (*s && *s != ']') s++;
      if (*s) s++;
      while (isspace((unsigned char)*s)) s++;
    }
    g.flags = flag_bits(s);
    while (*s && !isspace((unsigned char)*s)) s++;
    unsigned long a = 0, b = 0, len = 0;
    if (sscanf(s, " %lu:%lu(%lu)", &a, &b, &len) < 3) return;
    g.seq = (uint32_t)a;
    g.len = (unsigned)len;
    g.win = 65535;
    char *k;
    if ((k = strstr(s, " ack "))) g.ack = (uint32_t)strtoul(k + 5, NULL, 10);
    if ((k = strstr(s, " win "))) g.win = (unsigned)strtoul(k + 5, NULL, 10);
    if ((k = strstr(s, " urg "))) g.urg = (unsigned)strtoul(k + 5, NULL, 10);
    if ((k = strstr(s, "mss "))) { g.opts |= O_MSS; g.mss = (unsigned)strtoul(k + 4, NULL, 10); }
    if ((k = strstr(s, "wscale "))) { g.opts |= O_WS; g.ws = (unsigned)strtoul(k + 7, NULL, 10); }
    if (strstr(s, "sackOK")) g.opts |= O_SACKOK;
    if ((k = strstr(s, "TS val "))) {
      g.opts |= O_TS;
      g.tsval = (uint32_t)strtoul(k + 7, &k, 10);
      if ((k = strstr(k, "ecr "))) g.tsecr = (uint32_t)strtoul(k + 4, NULL, 10);
    }
    if ((k = strstr(s, "sack ")) && k[-1] != 'k') {
      g.opts |= O_SACK;
      k += 5;
      while (g.nsack < 4) {
        unsigned long l, r;
        int nn = 0;
        if (sscanf(k, " %lu:%lu%n", &l, &r, &nn) != 2) break;
        g.sack[g.nsack][0] = (uint32_t)l;
        g.sack[g.nsack][1] = (uint32_t)r;
        g.nsack++;
        k += nn;
      }
    }
    if (strstr(s, "bad_csum")) g.opts |= O_BADCSUM;
    g.slot = (unsigned)conv_slot(c, peer, c->local_port);
    pb_seg(&c->p, &g);
    return;
  }
  if (*s == '>') return;
  /* socket calls */
  char name[32];
  int nn = 0;
  if (sscanf(s, "%31[a-z_](%n", name, &nn) != 1) return;
  char *args = s + nn;
  int fd = -1;
  long a1 = 0;
  char rest[128] = "";
  sscanf(args, "%d, %127[^)]", &fd, rest);
  int fdi = fd >= 0 && fd < 256 ? c->fdmap[fd] : 0xfe;
  if (fdi < 0) fdi = 0xfe;
  if (!strcmp(name, "socket")) {
    int res = -1;
    char *eq = strchr(s, '=');
    if (eq) res = atoi(eq + 1);
    pb_call(&c->p, C_SOCKET, 0, 0, 0);
    if (res >= 0 && res < 256) c->fdmap[res] = c->nfd++;
  } else if (!strcmp(name, "bind")) {
    char *colon = strchr(rest, ':');
    a1 = strtol(colon ? colon + 1 : rest, NULL, 10);
    pb_call(&c->p, C_BIND, (unsigned)fdi, (unsigned)a1, 0);
    c->local_port = (unsigned)a1;
  } else if (!strcmp(name, "listen")) {
    pb_call(&c->p, C_LISTEN, (unsigned)fdi, (unsigned)strtol(rest, NULL, 10), 0);
  } else if (!strcmp(name, "accept")) {
    char *eq = strchr(s, '=');
    int res = eq ? atoi(eq + 1) : -1;
    pb_call(&c->p, C_ACCEPT, (unsigned)fdi, 0, 0);
    if (res >= 0 && res < 256) c->fdmap[res] = c->nfd++;
  } else if (!strcmp(name, "connect")) {
    char *colon = strchr(rest, ':');
    unsigned port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 80;
    c->peer_port = port;
    int slot = conv_slot(c, port, 0);
    pb_call(&c->p, C_CONNECT, (unsigned)fdi, (unsigned)slot, strstr(rest, "192.0.2.1") ? 1 : 0);
  } else if (!strcmp(name, "send")) {
    pb_call(&c->p, C_SEND, (unsigned)fdi, (unsigned)strtol(rest, NULL, 10),
            strstr(rest, "MSG_MORE") ? 8u : 0u);
  } else if (!strcmp(name, "recv")) {
    pb_call(&c->p, C_RECV, (unsigned)fdi, (unsigned)strtol(rest, NULL, 10), 0);
  } else if (!strcmp(name, "shutdown")) {
    unsigned how = strstr(rest, "SHUT_RDWR") ? 2 : strstr(rest, "SHUT_WR") ? 1 :
                   strstr(rest, "SHUT_RD") ? 0 : (unsigned)strtoul(rest, NULL, 10);
    pb_call(&c->p, C_SHUTDOWN, (unsigned)fdi, how, 0);
  } else if (!strcmp(name, "close")) {
    pb_call(&c->p, C_CLOSE, (unsigned)fdi, 0, 0);
  } else if (!strcmp(name, "setsockopt")) {
    static const char *names[] = {"SO_REUSEADDR", "SO_KEEPALIVE", "SO_SNDBUF", "SO_RCVBUF",
                                  "SO_LINGER", "TCP_NODELAY", "TCP_MAXSEG", "TCP_KEEPIDLE",
                                  "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_QUICKACK", NULL, NULL,
                                  "TCP_CORK", "TCP_USER_TIMEOUT", "TCP_NOTSENT_LOWAT",
                                  "TCP_INQ", "IP_TOS", "IP_MTU_DISCOVER"};
    for (unsigned k = 0; k < sizeof names / sizeof names[0]; k++)
      if (names[k] && strstr(rest, names[k])) {
        char *comma = strchr(rest, ',');
        long v = comma ? strtol(comma + 1, NULL, 10) : 0;
        if (k == 2 || k == 3) v /= 16;
        if (k == 4) {
          char *c2 = comma ? strchr(comma + 1, ',') : NULL;
          long secs = c2 ? strtol(c2 + 1, NULL, 10) : 0;
          v = (v ? 1 : 0) | (secs << 1);
        }
        pb_call(&c->p, C_SETSOCKOPT, (unsigned)fdi, k, (unsigned)v);
        break;
      }
  } else if (!strcmp(name, "error")) {
    pb_call(&c->p, C_ERROR, (unsigned)fdi, 0, 0);
  } else if (!strcmp(name, "events")) {
    pb_call(&c->p, C_EVENTS, (unsigned)fdi, 0, 0);
  } else if (!strcmp(name, "state") || !strcmp(name, "getsockname")) {
    pb_call(&c->p, C_INFO, (unsigned)fdi, 0, 0);
  }
}

static void convert(const char *dir, const char *path, const char *base)
{
  FILE *f = fopen(path, "r");
  if (!f) return;
  struct conv c;
  memset(&c, 0, sizeof c);
  for (int i = 0; i < 256; i++) c.fdmap[i] = -1;
  c.peer_port = 40000;
  c.remote_isn = 1000000;
  c.flags = 0x04;                 /* syncookies 1, no prologue */
  struct prog body = {0};
  c.p = body;
  char line[1024];
  while (fgets(line, sizeof line, f)) conv_line(&c, line);
  fclose(f);
  pb_time(&c.p, 1000000);
  struct prog out = {0};
  pb_u8(&out, c.flags);
  pb_u8(&out, c.tw);
  pb_bytes(&out, c.p.b, c.p.n);
  char name[512];
  snprintf(name, sizeof name, "pkt-%s", base);
  char *dot = strrchr(name, '.');
  if (dot) *dot = 0;
  write_prog(dir, name, &out);
  free(c.p.b);
  free(out.b);
}

/* ---- hand-made programs ---- */
static void handmade(const char *dir)
{
  struct prog p = {0};
  /* The prologue alone, then the clock runs out every timer. */
  p.n = 0; pb_u8(&p, 0x05); pb_u8(&p, 5); pb_time(&p, 200 * USTCP_SEC);
  write_prog(dir, "prologue-timers", &p);
  /* Prologue + blind attacks on every slot: RST, SYN and data at absolute
   * guessed sequence numbers (RFC 5961). */
  p.n = 0; pb_u8(&p, 0x05); pb_u8(&p, 0);
  for (unsigned i = 0; i < 13; i++) {
    struct pb_seg s = {.slot = i, .flags = TCP_RST, .seq = 0x12345678u * (i + 1), .opts = O_ABS, .win = 0};
    pb_seg(&p, &s);
    s.flags = TCP_SYN; s.seq = 0x9abcdef0u + i;
    pb_seg(&p, &s);
    s.flags = TCP_ACK | TCP_PSH; s.len = 100; s.ack = 0x55555555u;
    pb_seg(&p, &s);
    seg(&p, i, TCP_RST, 2, 0, 0, 0);             /* in window, not exact */
  }
  pb_time(&p, 2 * USTCP_SEC);
  write_prog(dir, "prologue-blind", &p);
  /* Prologue + what an attacker sends into every connection (op_attack): RSTs
   * and SYNs with payload straddling RCV.NXT, data straddling both window
   * edges, ACKs of unsent data and too-old ACKs, storms, spoofed and martian
   * sources. */
  p.n = 0; pb_u8(&p, 0x05); pb_u8(&p, 0);
  for (unsigned i = 0; i < 13; i++) {
    pb_attack(&p, i, 0x02, TCP_RST, 10, 0, 0, 100, 1);              /* RST+data over RCV.NXT */
    pb_attack(&p, i, 0x02, TCP_RST | TCP_ACK, 0, 0, 0, 1, 1);
    pb_attack(&p, i, 0x02, TCP_SYN, 5, 0, 65535, 50, 1);            /* SYN+data over RCV.NXT */
    pb_attack(&p, i, 0x02, TCP_ACK | TCP_PSH, 20, 0, 65535, 40, 1); /* data over RCV.NXT */
    pb_attack(&p, i, 0x01, TCP_ACK, -30, 0, 65535, 60, 1);          /* over the right edge */
    pb_attack(&p, i, 0x04, TCP_ACK, 0, 100, 65535, 0, 1);           /* ACK of unsent data */
    pb_attack(&p, i, 0x08, TCP_ACK, 0, 5, 65535, 0, 1);             /* too old an ACK */
    pb_attack(&p, i, 0x80 | 0x04, TCP_ACK, 0, 1, 65535, 0, 64);    /* ACK storm, unsent */
    pb_attack(&p, i, 0x80 | 0x08, TCP_ACK, 0, 0, 65535, 0, 64);    /* ACK storm, too old */
    pb_attack(&p, i, 0x80, TCP_ACK, 0, 0, 65535, 0, 64);            /* duplicate ACKs */
    pb_attack(&p, i, 0x10, TCP_RST, 0, 0, 0, 0, 1);                 /* spoofed source */
    pb_attack(&p, i, 0x20, TCP_SYN, 0, (int32_t)i, 65535, 10, 1);   /* martian sources */
    pb_attack(&p, i, 0x20 | 0x80, TCP_ACK, 0, (int32_t)i, 65535, 10, 20);
    pb_attack(&p, i, 0x00, TCP_RST, 0, 0, 0, 0, 1);                 /* exact RST (legitimate) */
  }
  pb_time(&p, 2 * USTCP_SEC);
  write_prog(dir, "prologue-attack", &p);
  /* The stack's own address and port as the source (LAND): only run with
   * FUZZ_ENGINE_LAND=1 (a no-op without). */
  p.n = 0; pb_u8(&p, 0x01); pb_u8(&p, 0);
  pb_attack(&p, 0, 0x30, TCP_SYN, 0, 0, 65535, 0, 1);
  pb_attack(&p, 0, 0x30, TCP_ACK, 0, 0, 65535, 10, 1);
  pb_attack(&p, 1, 0x40, TCP_SYN, 0, 0, 65535, 0, 1);
  pb_attack(&p, 7, 0x30, TCP_SYN | TCP_ACK, 0, 0, 65535, 0, 1);
  pb_time(&p, 5 * USTCP_SEC);
  write_prog(dir, "prologue-land", &p);
  /* Prologue + a SYN flood + time. */
  p.n = 0; pb_u8(&p, 0x05 | 0x40); pb_u8(&p, 1);
  pb_u8(&p, OP_FLOOD); pb_u16(&p, 500);
  pb_time(&p, 3 * USTCP_SEC);
  write_prog(dir, "prologue-flood", &p);
  /* Prologue + data, out of order and duplicates, zero windows, reads. */
  p.n = 0; pb_u8(&p, 0x01 | 0x20); pb_u8(&p, 0);
  for (unsigned k = 0; k < 6; k++) {
    seg(&p, 0, TCP_ACK, 101 + 700 * (5 - k), 1, 700, 0);
    pb_call(&p, C_RECV, 1, 500, k & 1);
  }
  pb_call(&p, C_SEND, 1, 9000, 0);
  pb_time(&p, 300 * USTCP_MSEC);
  seg(&p, 0, TCP_ACK, 4301, 1 + 1460, 0, 65535);
  pb_time(&p, 2 * USTCP_SEC);
  pb_call(&p, C_CLOSE, 1, 0, 0);
  write_prog(dir, "prologue-data", &p);
  /* Prologue, then every socket call on every descriptor with bad arguments. */
  p.n = 0; pb_u8(&p, 0x01); pb_u8(&p, 0);
  for (unsigned call = 0; call < C_COUNT; call++)
    for (unsigned fd = 0; fd < 12; fd++) pb_call(&p, call, fd, 0xffff, 0x000f);
  for (unsigned call = 0; call < C_COUNT; call++) {
    pb_call(&p, call, 0xff, 1, 2);
    pb_call(&p, call, 0xfe, 1, 6);
    pb_call(&p, call, 0xfd, 1, 4);
  }
  write_prog(dir, "prologue-badcalls", &p);
  /* Raw bytes: a truncated IPv4 header, and arbitrary TCP options. */
  p.n = 0; pb_u8(&p, 0x01); pb_u8(&p, 0);
  pb_u8(&p, OP_RAWIP); pb_u16(&p, 10);
  for (int i = 0; i < 10; i++) pb_u8(&p, 0x45);
  static const uint8_t tcpopts[] = {0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xf0, 0x12, 0xff, 0xff,
                                    0, 0, 0, 0, 2, 4, 0, 0, 3, 3, 20, 5, 10, 1, 2, 3, 4, 5, 6, 7, 8, 1, 0, 0};
  pb_u8(&p, OP_RAWTCP); pb_u8(&p, 0); pb_u8(&p, sizeof tcpopts); pb_bytes(&p, tcpopts, sizeof tcpopts);
  write_prog(dir, "prologue-raw", &p);
  free(p.b);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    fprintf(stderr, "usage: fuzz_engine_mkcorpus OUTDIR [SCRIPT.pkt ...]\n");
    return 2;
  }
  handmade(argv[1]);
  for (int i = 2; i < argc; i++) {
    const char *base = strrchr(argv[i], '/');
    convert(argv[1], argv[i], base ? base + 1 : argv[i]);
  }
  /* Every program written runs clean through the target. */
  DIR *d = opendir(argv[1]);
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", argv[1], e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    static uint8_t buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    n++;
  }
  if (d) closedir(d);
  printf("%d programs in %s\n", n, argv[1]);
  return 0;
}
#endif
