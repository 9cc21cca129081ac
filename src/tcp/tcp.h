/* src/tcp: the protocol engine (RFC 9293), free of I/O, clocks and threads.
 *
 * Map of the engine:
 *   tcp_input.c   segment arrival for a known connection, in the order of
 *                 RFC 9293 §3.10.7 (SYN-SENT, then sequence check, RST, SYN, ACK,
 *                 URG, text, FIN), plus RST generation for no connection (§3.10.7.1)
 *   tcp_listen.c  LISTEN: SYN queue, accept queue (H2, H6), SYN cookies (H7)
 *   tcp_output.c  what to send now: SYN, SYN-ACK, data within the windows, FIN,
 *                 ACKs, probes; Nagle; delayed ACK
 *   tcp_timer.c   one min-heap of connections keyed by their earliest deadline;
 *                 retransmission (RFC 6298), persist, delayed ACK, keepalive,
 *                 TIME_WAIT and FIN_WAIT_2 expiry
 *   tcp_user.c    the user calls of §3.10 (OPEN, SEND, RECEIVE, CLOSE, ABORT,
 *                 STATUS), state by state, for src/sock
 *   tcp_cb.c      control block life cycle, state changes and their events
 *   tcp_ecn.c     ECN (RFC 3168): negotiation, ECT(0), ECE/CWR, the CWR reduction
 *   buf.c         byte rings (send/receive buffers) and the out-of-order intervals
 *   tcp_sack.c    SACK scoreboard, SACK and D-SACK blocks, RFC 6675 pipe
 *   tcp_rack.c    RACK loss detection (RFC 8985 §6), D-SACK on the sender, undo
 *   siphash.c     the keyed hash behind ISNs (RFC 6528) and SYN cookies
 *
 * The engine does not know the socket API or IP: the stack (src/stack) owns a
 * struct tcp_engine, demultiplexes packets to control blocks, and supplies the
 * callbacks in struct tcp_engine_ops.
 */
#ifndef USTCP_TCP_H
#define USTCP_TCP_H

#include <stdbool.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include "ustcp.h"
#include "wire/wire.h"
#include "wire/seq.h"
#include "tcp/cc.h"

/* ---- byte ring (issue 12: elastic) ----
 * cap is the socket buffer size: what the window and send() promise. The
 * storage behind it is elastic: allocated at the first byte, grown by doubling
 * (copying at most what it held, so amortised O(1) a byte) as data needs it,
 * never past twice the most it may hold, and released when the ring drains (receive: all read and no
 * out-of-order bytes; send: all acknowledged), so a connection that carried data
 * and went idle holds no buffer. A failed growth keeps the old storage: the data
 * that did not fit is refused (counted in alloc_failures), never lost. */
struct ring {
  uint8_t *data;   /* NULL while empty */
  uint32_t cap;    /* the buffer size (SO_SNDBUF/SO_RCVBUF, or autotuned) */
  uint32_t size;   /* bytes allocated at data (0 if none) */
  uint32_t head;   /* index of the first byte (< size) */
  uint32_t len;    /* bytes held */
  bool pinned;     /* receive ring: out-of-order bytes lie past len, at fixed places,
                      so head stays put when the ring empties */
};

/* ---- out-of-order data (D4) ----
 * Out-of-order bytes are stored in the receive ring itself, at their distance
 * past rcv_nxt (after the unread in-order bytes): the advertised window never
 * exceeds the ring's free space, so every acceptable byte has its place. What
 * is held is a set of disjoint, non-adjacent sequence intervals, an AVL tree
 * keyed by left edge whose nodes live in one pool (indices, so the pool may
 * grow). Insertion, merging, delivery and eviction cost O(log n) each (merges
 * amortised: each interval is merged away once); a segment that extends the
 * highest interval, the common case, costs O(1). */
struct ooo_node {
  uint32_t left, right;           /* [left, right) */
  uint32_t kid[2];                /* pool index + 1 of the children, 0 = none */
  int32_t height;
};
struct ooo_tree {                 /* allocated while intervals exist */
  uint32_t pool_cap;              /* nodes allocated */
  uint32_t root, last;            /* index + 1: the root, the highest interval */
  uint32_t free_list;             /* index + 1 of the first free node (chained via kid[0]) */
  /* RFC 2018 §4: the intervals reported most recently, latest first (Linux's
   * selective_acks), as node references; an interval leaves when it goes. */
  uint32_t recent[TCP_MAX_SACK_BLOCKS];
  uint8_t nrecent;
  struct ooo_node pool[];
};

/* ---- timers ---- */
struct timer_node {
  uint64_t at_us;   /* heap key: the earliest armed deadline, 0 = not in the heap */
  size_t idx;       /* position in the heap */
};
struct timer_heap {
  struct timer_node **v;
  size_t n, cap;
};

/* ---- listener state (H2, H6) ---- */
struct tcb;
struct listen_state {
  uint32_t backlog;        /* min(listen backlog, somaxconn) */
  uint32_t syn_q_len;      /* half-open children (SYN_RCVD) */
  uint32_t accept_q_len;   /* established children waiting for accept */
  bool cookies_sent;       /* a cookie went out, last at last_overflow_us (H7) */
  struct tcb *accept_head, *accept_tail;
  struct tcb *syn_head;    /* doubly linked via q_prev/q_next */
  uint64_t last_overflow_us;
};

enum tcb_queue { TCB_Q_NONE, TCB_Q_SYN, TCB_Q_ACCEPT };

#define TCP_SACK_SCOREBOARD 8
#define TCP_PUSH_MARKS 16          /* struct tcb.pm: at most this many send boundaries */

/* The transmission control block: RFC 9293 §3.3.1 variables, spelled as the RFC
 * spells them, plus what reliability, flow and congestion control need. */
/* The per-connection counters of ustcp_tcp_info (A4), kept compact: a control
 * block is most of an idle connection's memory (issue 12: <= 1 KB an end).
 * Segment counts are 32-bit as in Linux's tcp_info (tcpi_segs_out ...), byte
 * counts 64-bit; everything else in ustcp_tcp_info is read from the block when
 * asked (tcb_fill_info). */
struct tcb_counters {
  uint64_t bytes_sent, bytes_acked, bytes_received;
  uint32_t segs_in, segs_out, data_segs_in, data_segs_out;
  uint32_t retrans_segs, fast_retrans, rto_expirations, dup_acks_in;
  uint32_t ooo_segs, dup_segs_in, zero_window_probes, tlp_probes;
};

/* An endpoint as the engine keeps it (issue 16): 8 bytes, the size of the IPv4-only
 * ustcp_addr it replaces in struct tcb, so a control block does not grow with
 * IPv6. For IPv4 ip is the address (host order); for IPv6 (v6 = 1) ip is a
 * handle into the engine's table of interned IPv6 addresses (tcp_addr6.c), 0
 * standing for "::". A handle is one address while any holder references it, so
 * comparing (v6, ip) compares addresses; hashes that must outlive a handle (ISN,
 * SYN cookies, timestamp offsets, RFC 6056 ports) read the address bytes. */
#define TCP_EP_MAPPED 0x1         /* local only: the socket is IPv6 and this IPv4
                                     connection is reported as ::ffff:a.b.c.d */
#define TCP_EP_V6ONLY 0x2         /* local only: IPV6_V6ONLY */
struct tcp_ep {
  uint32_t ip;
  uint16_t port;
  uint8_t v6;
  uint8_t flags;                  /* TCP_EP_* */
};

struct tcb {
  struct timer_node timer;
  struct tcb *hash_next;          /* stack's demux chain */
  uint64_t conn_id;
  enum ustcp_state state;
  struct tcp_ep local, remote;    /* hold references on their IPv6 handles (tcp_ep_set) */
  int fd;                         /* the socket's descriptor, -1 if none (embryonic, orphan) */
  bool orphan;                    /* the application closed it (no descriptor) */
  bool orphan_counted;            /* counted in tcp_engine.orphan_count (max_orphans) */
  bool in_hash;
  bool port_held;                 /* holds a reference on local.port (stack) */
  bool port_shared;               /* local.port was picked by connect(): other destinations
                                     may use it too (RFC 6056 §3.3.4, stack.c) */
  bool wake_pending;              /* a readiness callback is queued (src/sock) */
  bool defer_queued;              /* on the deferred-output list (below) */
  /* Output deferred to the end of the current event (tcp_defer_output), so that
   * what the application does in its callbacks rides on the same segment, e.g. a
   * response on the ACK, or the FIN on the ACK of the peer's FIN (W3). */
  struct tcb *defer_next, *defer_prev;

  /* listener / child linkage */
  struct listen_state *lst;       /* non-NULL for a LISTEN socket */
  struct tcb *parent;             /* listener of a child in a queue */
  struct tcb *q_next, *q_prev;
  enum tcb_queue queue;

  /* send sequence space */
  uint32_t iss, snd_una, snd_nxt, snd_max, snd_wl1, snd_wl2, snd_up;
  uint32_t snd_wnd;               /* peer's window, scaled, bytes */
  uint32_t max_snd_wnd;
  uint8_t snd_wscale;             /* shift applied to the peer's window field */
  uint8_t rcv_wscale;             /* shift we apply to our window field */
  bool wscale_ok;                 /* both sides sent WSCALE on the SYNs (RFC 7323 §2.2) */
  uint16_t snd_mss;               /* largest payload we send (peer's MSS, our MTU) */
  uint16_t rcv_mss;               /* the MSS we advertised */
  uint32_t snd_buf_seq;           /* sequence number of sndbuf's first byte */

  /* receive sequence space */
  uint32_t irs, rcv_nxt, rcv_up;
  uint32_t rcv_wnd;               /* window we last advertised, bytes */
  uint32_t rcv_adv;               /* right edge we last advertised (rcv_nxt + rcv_wnd) */

  struct ring sndbuf;             /* bytes from snd_buf_seq on: unacked, then unsent */
  /* Push marks: where send calls ended, as the sequence number past their last
   * byte, in order, above snd_una (older ones are dropped lazily). Linux keeps
   * this per skb: tcp_push -> tcp_mark_push sets PSH on the tail skb at the end
   * of every tcp_sendmsg, the next tcp_sendmsg clears it again when it appends
   * to that skb while still unsent, and MSG_EOR (TCP_SKB_CB(skb)->eor) closes
   * the skb to later data (tcp_skb_can_collapse_to). The send buffer is a byte
   * ring, so these few numbers stand for the skb boundaries that matter: a
   * segment ending at a mark carries PSH (first transmission or not) and no
   * segment crosses an EOR mark. Bounded: when full, the oldest is dropped. */
  struct {
    uint32_t seq[TCP_PUSH_MARKS];
    uint16_t eor;                 /* bit i: seq[i] ends a record (MSG_EOR) */
    uint16_t frame;               /* bit i: seq[i] only ends a TSO frame sent with PSH
                                     (tcp_output.c, pm_frame_push), not a send call */
    uint8_t n;
  } pm;
  struct ring rcvbuf;             /* in-order bytes the application has not read */
  struct ooo_tree *ooo;           /* out-of-order intervals (bytes in rcvbuf past its len) */
  uint32_t ooo_count;             /* intervals held */
  uint32_t ooo_fin_seq;           /* where a FIN that came out of order stands */
  bool ooo_fin;

  /* close handshake */
  bool fin_queued;                /* shutdown(SHUT_WR)/close: FIN follows the data */
  bool fin_sent;
  bool oow_ack_sent;              /* see oow_ack_us */
  uint32_t fin_seq;               /* sequence number our FIN occupies */
  bool rcv_fin;                   /* the peer's FIN arrived (in order) */
  bool shut_rd;

  /* options and behaviour */
  bool nodelay, keepalive, quickack, reuseaddr;
  bool rcvbuf_locked;             /* SO_RCVBUF was set: the window scale fits this buffer */
  bool sndbuf_locked;             /* SO_SNDBUF was set (reads back doubled, as Linux) */
  bool linger_on; int linger_s;
  uint32_t keepidle_s, keepintvl_s, keepcnt;
  uint16_t user_mss;              /* TCP_MAXSEG, 0 = from MTU */
  uint32_t notsent_lowat;         /* TCP_NOTSENT_LOWAT, 0 = cfg->notsent_lowat */
  uint32_t tail_seq;              /* where the last Linux skb of unsent data began
                                     (tcp_user_send's model of tcp_sendmsg, used while a
                                     notsent limit applies) */
  uint32_t user_timeout_ms;       /* TCP_USER_TIMEOUT (RFC 5482), 0 = retries rule */
  /* Linux's TCP_INFO chronographs (tcp_chrono_*, tcp_output.c), in ms of the
   * engine's clock, spread over the block's padding: when the running one
   * began (chrono_type says which), and the time spent busy (data
   * unacknowledged or unsent) and limited by the peer's window. */
  uint32_t chrono_start_ms;
  uint64_t retrans_stamp_us;      /* Linux's retrans_stamp: when the segment now at
                                     snd_una was first sent; 0 = no retransmission yet */
  uint64_t probes_stamp_us;       /* Linux's icsk_probes_tstamp: the first unanswered
                                     zero-window probe, 0 = none */
  bool cork;                      /* TCP_CORK: hold partial segments (TCP_NAGLE_CORK) */
  bool more;                      /* the last send had MSG_MORE: its data gets no PSH
                                     (Linux's tcp_push skips tcp_mark_push) */
  bool more_call;                 /* inside a send with MSG_MORE: its push is corked */
  bool nagle_push;                /* Linux's TCP_NAGLE_PUSH: TCP_NODELAY set (or uncorked
                                     with it) pushes held data once; a send clears it
                                     (skb_entail) */
  bool push_one;                  /* tcp_write_wakeup: one segment goes whatever holds it */
  bool inq;                       /* TCP_INQ */
  uint8_t ip_tos;                 /* IP_TOS as set (accepted, not sent) */
  uint8_t ip_pmtudisc;            /* IP_MTU_DISCOVER as set (accepted, not acted on) */

  /* RFC 6298 RTT estimation */
  struct {
    uint64_t srtt_us, rttvar_us, rto_us;
    uint64_t min_rtt_us;          /* smallest sample, 0 = none (Linux's tcp_min_rtt, unwindowed) */
    bool have_sample;
    bool timing;                  /* one segment is being timed */
    bool karn;                    /* a retransmission voided the timing (Karn's
                                     rule): TSecr may time the ACKs (RFC 7323 §4) */
    uint32_t seq;                 /* its end sequence number */
    uint64_t sent_us;
    uint32_t rexmit_tsval;        /* TSval of our latest retransmission (0: none) */
  } rtt;
  uint32_t backoff;               /* consecutive RTO expirations */
  uint32_t probes;                /* zero-window probes unanswered */
  uint32_t keepalive_probes;      /* keepalive probes since the last segment received */
  uint32_t chrono_busy_ms;        /* see chrono_start_ms */
  uint64_t last_rcv_us;           /* when an acceptable segment last arrived (keepalive idle) */

  /* SACK (RFC 2018): negotiated on the SYNs; the scoreboard of peer-SACKed
   * ranges above snd_una; recovery's retransmission point (the blocks we
   * send come from the out-of-order intervals, ooo.recent first) */
  bool sack_ok;
  /* Timestamps (RFC 7323 §3-5): negotiated when both SYNs carried TS
   * (Linux's tstamp_ok). Our TSval is the engine's 1 ms clock plus ts_off, a
   * keyed hash of the address pair (Linux's secure_tcp_ts_off); TS.Recent is
   * the peer's TSval we echo, ts_recent_us when it was stored (PAWS's 24-day
   * rule, Linux's ts_recent_stamp). */
  bool ts_ok;
  /* ECN (RFC 3168, tcp_ecn.c): TCP_ECN_* bits as Linux's tp->ecn_flags, and
   * this socket's tcp_ecn (0, 1, 2: the stack's, or USTCP_TCP_ECN) */
  uint8_t ecn;
  uint8_t ecn_mode;
  uint32_t ts_off;
  uint32_t ts_recent;
  /* RFC 2883 D-SACK to report on our next ACK (Linux's tcp_dsack_set):
   * [dsack_left, dsack_left + dsack_len) arrived twice; dsack_len 0 = none */
  uint32_t dsack_left;
  uint64_t ts_recent_us;
  uint8_t nsacked;
  /* RACK's reordering state, kept while idle (Linux's reord_seen,
   * rack.reo_wnd_steps, rack.reo_wnd_persist): reordering was observed;
   * the reordering window in units of min_RTT / 4, raised by D-SACKs (RFC
   * 8985 §6.2 step 4), back to 1 after 16 recoveries without one */
  bool reord_seen;
  uint8_t reo_wnd_steps, reo_wnd_persist;
  struct tcp_sack_block sacked[TCP_SACK_SCOREBOARD];
  uint32_t sack_rexmit;

  /* Loss recovery (RFC 5681 §3.2, RFC 6582, RFC 3042), whatever the
   * congestion control: duplicate ACK count, recovery point, limited transmit */
  struct {
    uint32_t dupacks;
    bool in_recovery;
    /* RFC 3168 §6.1.2 (Linux's CWR state, tcp_enter_cwr): cwnd is being
     * reduced for an ECE, by PRR as in recovery, until an ACK passes
     * cwr_high (snd_max when it began) */
    bool in_cwr;
    uint32_t recover;             /* snd_max when recovery began */
    uint32_t lt_extra;            /* RFC 3042 limited transmit: bytes allowed past cwnd */
    uint32_t last_advance;        /* bytes the latest cumulative ACK advanced (RFC 6582 §4) */
    /* RFC 6937 PRR, as Linux's tcp_cwnd_reduction (PRR-SSRB): data delivered
     * to the receiver and data sent since recovery began, and cwnd then
     * (RecoverFS), all in bytes */
    uint32_t prr_delivered, prr_out, prior_cwnd;
    /* Without SACK, the segments duplicate ACKs say have left the network
     * (Linux's tcp_add_reno_sack), in bytes, for pipe */
    uint32_t dup_bytes;
    uint32_t cwr_high;
  } rec;

  /* Congestion control (cc.h): cwnd and ssthresh are the module's outputs; its
   * own state lives in priv, which only the module reads. RFC 7661 / Linux's
   * tcp_cwnd_validate: whether the sender used its cwnd lately. */
  struct {
    uint32_t cwnd, ssthresh;      /* bytes */
    const struct cc_ops *ops;
    /* Linux's tcp_cwnd_validate (RFC 7661): per window of data, whether cwnd
     * stopped the sending, else the most bytes that were in flight */
    bool is_cwnd_limited;
    uint32_t max_flight;
    uint32_t usage_seq;           /* snd_nxt when that window began */
    uint64_t last_send_us;        /* last data segment sent (Linux's lsndtime) */
    _Alignas(8) unsigned char priv[CC_PRIV_BYTES];
  } cc;

  /* Rate limit of ACKs to out-of-window segments and of challenge ACKs, as
   * Linux's tcp_oow_rate_limited (last_oow_ack_time): when one was last sent. */
  uint64_t oow_ack_us;
  /* RACK (RFC 8985 §6, tcp_rack.c): transmit times of the data in flight and
   * the RACK and undo state, allocated while data is in flight (NULL when idle,
   * without SACK, or with tcp_recovery 0). */
  struct tcp_rack *rack;

  /* ACK generation */
  bool ack_now;                   /* send an ACK at the next output */
  /* Linux's snd_sml (tcp_minshall_update): the end of the last segment of new
   * data sent shorter than the MSS; Nagle as Minshall's variant holds a partial
   * segment only while that one is unacknowledged (tcp_minshall_check). */
  uint32_t snd_sml;
  /* Linux's delayed-ACK engine (tcp_event_data_recv, tcp_measure_rcv_mss,
   * __tcp_ack_snd_check): quick-ACK mode at the start and after idle, the
   * "more than one segment" test against the size the peer actually sends, and
   * interactive (pingpong) mode where ACKs wait to ride on the replies. */
  uint32_t rcv_seg_est;           /* the peer's segment size as seen (icsk_ack.rcv_mss) */
  uint32_t last_seg_size;         /* previous smaller segment (icsk_ack.last_seg_size) */
  uint32_t rcv_wup;               /* rcv_nxt when we last sent an ACK */
  uint32_t chrono_rwnd_ms;        /* see chrono_start_ms */
  uint64_t lrcv_us;               /* when data last arrived (icsk_ack.lrcvtime) */
  uint8_t quick;                  /* ACKs still sent at once (icsk_ack.quick) */
  bool data_seen;                 /* data has arrived once (Linux: icsk_ack.ato != 0) */
  bool pingpong;                  /* we reply within the ATO: delay ACKs (pingpong mode) */
  bool reo_armed;                 /* tlp_at_us is RACK's reordering timer (RFC 8985 §6.3),
                                     not a loss probe: Linux's ICSK_TIME_REO_TIMEOUT shares
                                     the probe's timer too */
  uint16_t reordering;            /* Linux's tp->reordering: the longest reordering seen, in
                                     segments (0 = tcp_reordering's 3; at most 300,
                                     tcp_max_reordering) */
  uint8_t ack_pushed;             /* Linux's ICSK_ACK_PUSHED (bit 0), PUSHED2 (bit 1): segments
                                     shorter than the peer's size arrived since our last ACK
                                     (tcp_measure_rcv_mss); a read that empties the buffer
                                     ACKs them at once (tcp_cleanup_rbuf) */

  /* timers: absolute deadlines in us, 0 = unarmed */
  uint64_t rto_at_us;             /* retransmission: SYN, SYN-ACK, data, FIN */
  uint64_t persist_at_us;         /* zero-window probe (D3) */
  uint64_t delack_at_us;          /* delayed ACK */
  uint64_t keepalive_at_us;
  uint64_t close_at_us;           /* TIME_WAIT (2MSL) or orphan FIN_WAIT_2 (fin_timeout) */
  /* RFC 8985 §7 tail loss probe (Linux's tcp_schedule_loss_probe): the probe
   * timeout; one probe per tail, outstanding until an ACK reaches tlp_high_seq
   * (snd_nxt when it went); whether it was a retransmission; where the
   * highest segment sent begins (what a probe retransmits). */
  uint64_t tlp_at_us;
  uint32_t tlp_high_seq;
  bool tlp_active, tlp_retrans;
  uint16_t dsack_len;             /* see dsack_left */
  uint32_t last_seg_seq;

  int so_error;                   /* pending error (negative errno), reported once */
  int hard_error;                 /* sticky error after a reset/timeout (negative errno) */
  int soft_error;                 /* last ICMP soft error (negative errno); reported instead
                                     of ETIMEDOUT when the connection times out (Linux's
                                     sk_err_soft, RFC 1122 4.2.3.9) */
  bool epipe_reported;
  bool connect_unreported;        /* a connect() outcome the next connect() reports (0 once, Linux) */
  uint8_t chrono_type;            /* TCP_CHRONO_*: which chronograph runs (see chrono_start_ms) */

  /* Receive-buffer autotuning (Linux's tcp_rcv_space_adjust, "dynamic
   * right-sizing"): bytes the application read in the last measured RTT, where
   * that measurement began (copied sequence) and when. The RTT is the receiver's
   * own estimate (tcp_rcv_rtt_measure): the time a window of data takes to
   * arrive, its minimum kept (no timestamps). */
  struct {
    uint32_t space, seq;
    uint64_t time_us;
  } rcvq_space;
  struct {
    uint32_t seq;                 /* rcv_nxt that ends the current sample */
    uint64_t time_us;             /* when it began, 0 = none running */
    uint64_t rtt_us;              /* minimum seen, 0 = none yet */
  } rcv_rtt;

  struct tcb_counters info;       /* counters (A4); ustcp_tcp_info is filled on read */
  uint64_t mem_bytes;
};

struct tcp_engine;
/* A piece of a segment's payload. The data of a segment may wrap around the
 * send ring: it reaches the stack as up to two pieces pointing into the ring,
 * and is copied once, into the packet (no 64 KiB scratch on the C stack). */
struct tcp_iov {
  const uint8_t *base;
  uint32_t len;
};

/* The engine calls these in the middle of its work, with control blocks in use
 * below: they must not call back into the application (the stack records state
 * events and packets and delivers them at the end of the event, notify.c). */
struct tcp_engine_ops {
  /* Sends one segment from src to dst in an IP header with this TOS byte
   * (the ECN field, RFC 3168); its payload is the npl pieces of pl laid end
   * to end (NULL, 0: none), always a run of t's send ring (t is NULL for a
   * segment of no connection). gso_size non-zero: a frame of several
   * segments of gso_size payload bytes each (the last one shorter) for the
   * link to segment (e->gso_max); 0 for every other segment. */
  void (*output)(struct tcp_engine *e, const struct tcb *t, bool v6, uint32_t src, uint32_t dst,
                 uint8_t tos,
                 const struct tcp_hdr *h, const struct tcp_iov *pl, size_t npl,
                 uint32_t gso_size);
  void (*hash_insert)(struct tcp_engine *e, struct tcb *t);
  void (*hash_remove)(struct tcp_engine *e, struct tcb *t);
  /* A state changed (A4). */
  void (*event)(struct tcp_engine *e, struct tcb *t, enum ustcp_state old_state,
                enum ustcp_cause cause);
  /* Readiness of t's socket (or its listener) may have changed. */
  void (*wake)(struct tcp_engine *e, struct tcb *t);
  /* t is about to be freed (release its port). */
  void (*freed)(struct tcp_engine *e, struct tcb *t);
};

/* Interned IPv6 addresses (tcp_addr6.c): handle i (>= 1) is v[i - 1]; chained
 * per bucket of a keyed hash of the address, so a packet's lookup costs O(1)
 * whatever addresses a peer chooses. An entry lives while referenced: by a control
 * block's endpoint, or by a packet being processed. */
struct addr6_entry {
  uint8_t a[16];
  uint32_t refs;
  uint32_t next;                  /* next handle in the bucket, or in the free list; 0 = end */
};
struct addr6_table {
  struct addr6_entry *v;
  uint32_t cap, used;             /* entries allocated / referenced */
  uint32_t free_head;
  uint32_t *buckets;              /* handle of the first entry, 0 = empty */
  uint32_t nbuckets;              /* power of two, 0 until the first address */
};

struct tcp_engine {
  const struct ustcp_config *cfg;
  struct addr6_table a6;
  struct tcp_engine_ops ops;
  void *owner;                    /* the stack */
  uint64_t now_us;
  struct timer_heap timers;
  uint64_t secret[2];             /* ISN and cookie key (RFC 6528) */
  uint64_t next_conn_id;
  struct ustcp_stats *stats;
  uint64_t mem_bytes, mem_peak_bytes;
  /* Ring storage allocated now, stack-wide, and whether that is past
   * cfg->tcp_mem_pressure (Linux's tcp_memory_pressure): no buffer grows by
   * autotuning then. */
  uint64_t ring_bytes;
  /* Ring storage a drained ring gave back, kept for the next ring that grows
   * (buf.c): a bulk sender drains and refills its ring every few ACKs, and
   * freeing multi-MiB storage to the C library and taking it back each time
   * cost a fresh mmap and a page fault per 4 KiB (bench bulk: 2.5x slower).
   * At most RING_CACHE_BLOCKS blocks of RING_CACHE_MIN_SIZE or more, and
   * RING_CACHE_MAX_BYTES in all; not counted in mem_bytes (no connection owns
   * them), reported as stats.ring_cache_bytes. */
  struct {
    uint8_t *data[4];
    uint32_t size[4];
    unsigned n;
    uint64_t bytes;
  } ring_cache;
  bool mem_pressure;
  uint64_t conns;
  struct tcb *defer_head;         /* connections with deferred output */
  /* RFC 5961 §7 stack-wide challenge ACK budget, only when challenge_ack_limit
   * is finite: what is left of it in the current one-second slot, drawn at
   * random for each slot (tcp_send_challenge_ack). */
  uint64_t challenge_slot;
  uint32_t challenge_left;
  bool challenge_slot_set;
  /* W10: the ISN for the connection a SYN is about to reopen from TIME_WAIT
   * (set by tcp_input when it returns 1, taken by the next tcp_listen_input or
   * tcp_input_no_conn for the same segment). */
  uint32_t tw_isn;
  bool tw_isn_set;
  /* Allocation-failure injection for tests (ustcp_set_alloc_fail): asked before
   * every allocation of the library; true makes it fail. */
  bool (*alloc_fail)(void *ctx, size_t n);
  void *alloc_fail_ctx;
  uint64_t ooo_work;              /* steps taken in out-of-order trees (tests bound it) */
  uint64_t tw_count;              /* connections in TIME_WAIT (max_tw_buckets) */
  uint64_t orphan_count;          /* orphans not yet in TIME_WAIT or CLOSED (max_orphans) */
  /* Ring storage the application holds pointers into (the gather output's
   * payload slices, issue 12 point 6), one per nested output callback (the
   * stack nests at most 8): a ring that grows or goes while its storage is
   * pinned leaves it here (retired, no longer counted), neither reused nor
   * freed until the pin is released (buf.c), so a callback that calls the
   * stack never holds a dangling pointer. */
  struct {
    uint8_t *p;
    uint32_t size;
    bool retired;
  } pins[8];
  unsigned npins;
  /* The link segments TCP (and completes checksums) for frames of up to this
   * many bytes of IPv4 packet (ustcp_set_link_offload); 0: it does not, every
   * segment leaves at most one MSS long. With it, new data leaves as the
   * frames tcp_output would send back to back (Linux's TSO skbs) in one
   * packet each; sequence, cwnd and pacing still count bytes and segments. */
  uint32_t gso_max;
};

/* ---- tcp_cb.c ---- */
void tcp_engine_init(struct tcp_engine *e, const struct ustcp_config *cfg,
                     uint64_t seed, void *owner);
void tcp_engine_free(struct tcp_engine *e);
/* Every allocation of the library after the stack's creation goes through
 * tcp_sys_* (tables of the stack and the socket layer, the timer heap, loopback
 * packets) or tcp_alloc* (per-connection memory, also counted in mem_bytes):
 * they consult the test hook (ustcp_set_alloc_fail) and count every failure,
 * injected or real, in stats.alloc_failures (issue 10 §7). */
void *tcp_sys_malloc(struct tcp_engine *e, size_t n);
void *tcp_sys_calloc(struct tcp_engine *e, size_t count, size_t size);
void *tcp_sys_realloc(struct tcp_engine *e, void *p, size_t n);
void *tcp_alloc(struct tcp_engine *e, size_t n);      /* zeroed */
void *tcp_alloc_raw(struct tcp_engine *e, size_t n);  /* not zeroed */
void tcp_free_mem(struct tcp_engine *e, void *p, size_t n);
struct tcb *tcb_new(struct tcp_engine *e);
/* Frees a control block that has no socket and is CLOSED. */
void tcb_free(struct tcp_engine *e, struct tcb *t);
void tcb_set_state(struct tcp_engine *e, struct tcb *t, enum ustcp_state s,
                   enum ustcp_cause cause);
/* The application closed t, which still has its close to finish: counts it as
 * an orphan, or resets it past max_orphans. Returns true if t was closed. */
bool tcb_orphaned(struct tcp_engine *e, struct tcb *t);
/* TIME_WAIT has room (max_tw_buckets); otherwise counts the overflow. */
bool tcp_time_wait_room(struct tcp_engine *e);
/* Moves t to CLOSED with err recorded for the application (0 for a normal end);
 * frees it if it has no socket. Returns true if t was freed. */
bool tcb_close(struct tcp_engine *e, struct tcb *t, int err, enum ustcp_cause cause);
uint32_t tcp_isn(struct tcp_engine *e, const struct tcp_ep *local,
                 const struct tcp_ep *remote);
/* Default MSS we advertise: MTU - 40 (IPv4) or MTU - 60 (IPv6: a 40-byte header,
 * RFC 8200 §5), or TCP_MAXSEG. */
uint16_t tcp_adv_mss(const struct tcp_engine *e, const struct tcb *t);
/* The same for a segment of the given family (a v6 listener answers IPv4 SYNs). */
uint16_t tcp_adv_mss_for(const struct tcp_engine *e, const struct tcb *t, bool v6);
void tcb_init_conn(struct tcp_engine *e, struct tcb *t);
void tcb_fill_info(const struct tcb *t, struct ustcp_tcp_info *out);
/* Linux's TCP_INFO layout (tcp_get_info), for the preload shim and packetdrill. */
void tcb_fill_linux_info(const struct tcp_engine *e, const struct tcb *t,
                         struct ustcp_linux_tcp_info *out);
uint32_t tcb_send_space(const struct tcb *t);
/* Linux's tcp_notsent_lowat: the socket's TCP_NOTSENT_LOWAT, else the stack's. */
uint32_t tcp_notsent_lowat(const struct tcp_engine *e, const struct tcb *t);
/* Bytes written but never sent: write_seq - snd_nxt in Linux's terms (ustcp's
 * snd_max: its snd_nxt goes back on a timeout, Linux's does not). */
uint32_t tcp_notsent_bytes(const struct tcb *t);
/* Linux's tcp_stream_memory_free: (notsent << wake) < the limit. wake is 1 for
 * readiness (poll, wakeups), 0 for a send deciding whether to queue more. */
bool tcp_stream_memory_free(const struct tcp_engine *e, const struct tcb *t, int wake);
/* Linux's tcp_inq_hint (TCP_INQ): rcv_nxt - copied_seq, so the peer's FIN
 * counts one; 1 when nothing is left but the connection is done. */
uint32_t tcp_inq_hint(const struct tcb *t);

/* ---- buf.c ---- */
uint32_t ring_write(struct tcp_engine *e, struct ring *r, const uint8_t *src, uint32_t n);
uint32_t ring_read(struct ring *r, uint8_t *dst, uint32_t n, bool consume);
void ring_copy_out(const struct ring *r, uint32_t off, uint8_t *dst, uint32_t n);
void ring_drop(struct ring *r, uint32_t n);
void ring_free(struct tcp_engine *e, struct ring *r);
/* Releases the storage of a ring that holds nothing (and no out-of-order bytes). */
void ring_release_empty(struct tcp_engine *e, struct ring *r);
/* Sets the buffer size (SO_SNDBUF/SO_RCVBUF): -EINVAL below what it holds,
 * -ENOMEM if the storage had to shrink and could not be reallocated. */
int ring_set_cap(struct tcp_engine *e, struct ring *r, uint32_t cap);
/* Free space under the buffer size (0 when a receive ring holds more, see
 * tcp_rcv_overcommit). */
static inline uint32_t ring_space(const struct ring *r) { return r->len < r->cap ? r->cap - r->len : 0; }
/* Writes up to n bytes while the ring holds at most limit (>= cap). */
uint32_t ring_write_upto(struct tcp_engine *e, struct ring *r, const uint8_t *src, uint32_t n,
                         uint32_t limit);
/* How far past its size the receive ring may hold data: the window is never
 * shrunk, and keeping the advertised edge where it was (rounding the window
 * field up, Linux's tcp_select_window) can offer a little more than the free
 * space: up to a quarter of the buffer when the window is scaled, else none. */
static inline uint32_t tcp_rcv_overcommit(const struct tcb *t)
{
  return t->rcv_wscale ? t->rcvbuf.cap / 4 : 0;
}
/* Where the receive ring's storage ends in sequence space: rcv_nxt plus what it
 * may still take (buffer size plus overcommit, less what it holds). */
static inline uint32_t tcp_rcv_room_end(const struct tcb *t)
{
  uint32_t lim = t->rcvbuf.cap + tcp_rcv_overcommit(t);
  return t->rcv_nxt + (t->rcvbuf.len < lim ? lim - t->rcvbuf.len : 0);
}
/* Autotuning (issue 12 point 1). At ESTABLISHED (Linux's tcp_init_buffer_space). */
void tcp_init_buffer_space(struct tcp_engine *e, struct tcb *t);
/* After the application read (tcp_rcv_space_adjust). */
void tcp_rcv_space_adjust(struct tcp_engine *e, struct tcb *t);
/* In-order data arrived (tcp_rcv_rtt_measure). */
void tcp_rcv_rtt_measure(struct tcp_engine *e, struct tcb *t);
/* An ACK freed send-buffer space (tcp_new_space -> tcp_sndbuf_expand). */
void tcp_sndbuf_expand(struct tcp_engine *e, struct tcb *t);
/* True while the stack-wide ring memory is past tcp_mem_pressure. */
bool tcp_under_memory_pressure(struct tcp_engine *e);
/* How many out-of-order intervals t may hold: max_ooo_segments, or (0) as many
 * 536-byte segments as the receive buffer holds, plus one. Bytes are bounded by the
 * window anyway (they sit in the receive ring); the count bounds the tree. */
uint32_t tcp_ooo_limit(const struct tcp_engine *e, const struct tcb *t);
/* Stores an out-of-order segment [seq, seq+len) (seq past rcv_nxt, within the
 * window) and its FIN. Bytes already held win over the new ones. Returns false if
 * it, or part of it, was dropped (interval limit reached, memory). */
bool ooo_insert(struct tcp_engine *e, struct tcb *t, uint32_t seq, const uint8_t *data,
                uint32_t len, bool fin);
/* After in-order data advanced rcv_nxt: moves the intervals it reached into the
 * in-order part of the ring. Returns true if the peer's FIN is now in order. */
bool ooo_deliver(struct tcp_engine *e, struct tcb *t);
void ooo_free_all(struct tcp_engine *e, struct tcb *t);
/* Interval walk for checks and SACK: the lowest interval with left edge after
 * `after` (or the lowest of all if first), false if none. */
bool ooo_next(const struct tcb *t, bool first, uint32_t after, uint32_t *left, uint32_t *right);
/* The k-th interval in order of recent report (RFC 2018 §4: 0 holds the latest
 * segment), false past the last. O(1). */
bool ooo_recent(const struct tcb *t, unsigned k, uint32_t *left, uint32_t *right);
/* The first part of [seq, end) that out-of-order intervals already hold
 * (for a D-SACK, RFC 2883), false if none. O(log n). */
bool ooo_overlap(const struct tcb *t, uint32_t seq, uint32_t end, uint32_t *left, uint32_t *right);
uint64_t ooo_mem(const struct tcb *t);
/* Bytes held in out-of-order intervals (O(intervals); for statistics). */
uint64_t ooo_bytes(const struct tcb *t);
/* NULL if the interval tree is well formed (tcp_check). */
const char *ooo_check_tree(const struct tcb *t);

/* ---- tcp_timer.c ---- */
void timer_update(struct tcp_engine *e, struct tcb *t);  /* after changing deadlines */
void timer_remove(struct tcp_engine *e, struct tcb *t);
uint64_t tcp_next_deadline(const struct tcp_engine *e);
void tcp_run_timers(struct tcp_engine *e, uint64_t now_us);
void tcp_rtt_sample(struct tcp_engine *e, struct tcb *t, uint64_t rtt_us);
void tcp_arm_rto(struct tcp_engine *e, struct tcb *t);
void tcp_arm_keepalive(struct tcp_engine *e, struct tcb *t);
/* RFC 8985 §7.2: arms the probe timeout, or disarms it where no probe may go. */
/* Arms the zero-window probe timer one backed-off RTO from now (tcp_probe0_when). */
void tcp_rearm_probe0(struct tcp_engine *e, struct tcb *t);
void tcp_schedule_loss_probe(struct tcp_engine *e, struct tcb *t);
/* RFC 8985 §7.4: an ACK at or above the probe's tlp_high_seq ends the episode. */
void tcp_tlp_ack(struct tcp_engine *e, struct tcb *t, uint32_t ack);

/* ---- tcp_output.c ---- */
void tcp_output(struct tcp_engine *e, struct tcb *t);
/* A send call queued data up to end (the sequence number past its last byte):
 * Linux's tcp_push/tcp_mark_push, with MSG_EOR when eor (see struct tcb.pm). */
void tcp_push_mark(struct tcb *t, uint32_t end, bool eor);
/* A SACK block [*left, *right) as Linux takes it (tcp_match_skb_to_sack): a
 * skb partly covered is split at whole segments only, so the block shrinks to
 * the whole segments it covers, counted from each skb's start (skbs as the
 * push marks tell them). False if it covers none. */
bool tcp_sack_whole_segs(const struct tcb *t, uint32_t *left, uint32_t *right);
/* Linux's TCP_INFO chronographs (tcp_chrono_start/stop): the most
 * interesting condition runs, a higher type over a lower one. */
enum { TCP_CHRONO_UNSPEC, TCP_CHRONO_BUSY, TCP_CHRONO_RWND_LIMITED };
void tcp_chrono_start(const struct tcp_engine *e, struct tcb *t, uint8_t type);
void tcp_chrono_stop(const struct tcp_engine *e, struct tcb *t, uint8_t type);
/* Time spent busy and window-limited so far, in us (tcp_get_info_chrono_stats). */
void tcp_chrono_stats(const struct tcp_engine *e, const struct tcb *t, uint64_t *busy_us,
                      uint64_t *rwnd_us);
void tcp_send_ack(struct tcp_engine *e, struct tcb *t);
void tcp_send_rst_for(struct tcp_engine *e, const struct tcp_packet *p);  /* §3.10.7.1 */
void tcp_send_rst(struct tcp_engine *e, struct tcb *t);   /* abort: RST from snd_nxt */
void tcp_send_syn(struct tcp_engine *e, struct tcb *t);   /* SYN or SYN-ACK per state */
void tcp_retransmit_una(struct tcp_engine *e, struct tcb *t);
uint16_t tcp_window_field(struct tcp_engine *e, struct tcb *t);
/* RFC 5961 §7 challenge ACK: through the per-connection limiter, then the
 * stack-wide budget if one is configured. */
void tcp_send_challenge_ack(struct tcp_engine *e, struct tcb *t);
/* True if an ACK to an out-of-window segment p must not be sent now (Linux's
 * tcp_oow_rate_limited: one per invalid_ratelimit_us per connection; segments
 * with data and no SYN are exempt). p may be NULL (no exemption). Records the
 * ACK as sent otherwise. */
bool tcp_oow_rate_limited(struct tcp_engine *e, struct tcb *t, const struct tcp_packet *p);
void tcp_schedule_ack(struct tcp_engine *e, struct tcb *t, uint32_t plen, uint8_t flags);
/* Linux's tcp_enter_quickack_mode: up to max ACKs at once, no pingpong. */
void tcp_enter_quickack_mode(struct tcb *t, uint32_t max);
/* May an ACK grow cwnd? Only while cwnd limits the sending (Linux's
 * tcp_is_cwnd_limited, RFC 7661 §4.3). */
bool tcp_is_cwnd_limited(const struct tcb *t);
/* Runs tcp_output for t at the end of the current event instead of now. */
void tcp_defer_output(struct tcp_engine *e, struct tcb *t);
void tcp_defer_cancel(struct tcp_engine *e, struct tcb *t);
/* Runs every deferred output; returns true if there was any. */
bool tcp_flush_deferred(struct tcp_engine *e);

/* ---- tcp_input.c ---- */
/* A segment for connection t (never LISTEN; see tcp_listen_input). */
/* Returns 1 when the segment must be handed to a listener instead (a SYN that
 * reopened a TIME_WAIT 4-tuple, which t no longer holds: t was freed or closed). */
int tcp_input(struct tcp_engine *e, struct tcb *t, const struct tcp_packet *p);
/* A segment that matched no connection and no listener. */
void tcp_input_no_conn(struct tcp_engine *e, const struct tcp_packet *p);

/* ---- tcp_listen.c ---- */
int tcp_listen_start(struct tcp_engine *e, struct tcb *t, int backlog);
void tcp_listen_input(struct tcp_engine *e, struct tcb *l, const struct tcp_packet *p);
/* Takes the first child of the accept queue, or NULL. */
struct tcb *tcp_listen_accept(struct tcp_engine *e, struct tcb *l);
/* Removes a child from its listener's queue. */
void tcp_listen_unlink(struct tcp_engine *e, struct tcb *child);
/* Closing a listener: resets queued children, frees half-open ones. */
void tcp_listen_stop(struct tcp_engine *e, struct tcb *l);
/* A child's handshake completed (SYN_RCVD -> ESTABLISHED); moves it to the accept
 * queue. Returns false if the accept queue is full (the caller follows H6). */
bool tcp_listen_established(struct tcp_engine *e, struct tcb *child);

/* The window scale we offer on a SYN (RFC 7323 §2.3). */
uint8_t tcp_choose_wscale(const struct tcp_engine *e, const struct tcb *t);

/* ---- tcp_user.c: RFC 9293 §3.10 user calls (src/sock calls these) ---- */
#define TCP_USER_PROCEED 1   /* a check passed: go on with the call */
int tcp_user_connect_allowed(struct tcb *t);
void tcp_user_open(struct tcp_engine *e, struct tcb *t, const struct tcp_ep *local,
                   const struct tcp_ep *remote);
int tcp_user_listen_allowed(struct tcp_engine *e, struct tcb *t, int backlog);
int tcp_user_listen(struct tcp_engine *e, struct tcb *t, int backlog);
/* ran: set when the engine changed state or sent (the caller ends the event). */
/* eor: MSG_EOR, the last byte ends a record (honoured when all of buf fits).
 * more: MSG_MORE (the partial segment this call leaves is held, as TCP_CORK,
 * and gets no PSH). */
ssize_t tcp_user_send(struct tcp_engine *e, struct tcb *t, const void *buf, size_t len,
                      bool eor, bool more, bool *ran);
ssize_t tcp_user_receive(struct tcp_engine *e, struct tcb *t, void *buf, size_t len, bool peek,
                         bool *ran);
/* The parts of SEND and RECEIVE, shared by the copying calls above and the
 * direct ones of src/sock (ustcp_send_direct, ustcp_recv_direct), which fill
 * or drain the rings in place between them (issue 12 point 6).
 * send_prepare: the state checks of SEND; TCP_USER_PROCEED (the call's flags
 * taken), 0 for len 0, or the error. send_finish: n bytes were queued (of len
 * asked; offered: a direct writer was given room and took n of it): PSH and
 * EOR marks, output; or the error for none. */
int tcp_user_send_prepare(struct tcp_engine *e, struct tcb *t, size_t len, bool more);
ssize_t tcp_user_send_finish(struct tcp_engine *e, struct tcb *t, uint32_t n, size_t len,
                             bool offered, bool eor, bool more, bool *ran);
/* receive_allowed: TCP_USER_PROCEED or -ENOTCONN. consumed: n bytes at the
 * head of the receive ring were read (storage release, autotuning, window
 * update). receive_empty: what RECEIVE returns with nothing buffered. */
int tcp_user_receive_allowed(const struct tcb *t);
void tcp_user_consumed(struct tcp_engine *e, struct tcb *t, uint32_t n, bool *ran);
ssize_t tcp_user_receive_empty(struct tcb *t);
int tcp_user_shutdown(struct tcp_engine *e, struct tcb *t, bool rd, bool wr, bool *ran);
void tcp_user_close(struct tcp_engine *e, struct tcb *t, bool abortive);
void tcp_user_abort(struct tcp_engine *e, struct tcb *t, enum ustcp_cause cause);
void tcp_user_status(const struct tcb *t, struct ustcp_tcp_info *out);

/* ---- tcp_icmp.c ---- */
/* An ICMP error (type, code) quoting a segment of t with sequence number seq;
 * mtu is the next-hop MTU of "fragmentation needed" (else 0). Applies the RFC 5927
 * checks, then aborts a connection attempt (hard errors), records a soft error, or
 * lowers snd_mss (PMTU discovery, RFC 1191). */
void tcp_icmp_error(struct tcp_engine *e, struct tcb *t, uint8_t type, uint8_t code,
                    uint32_t seq, uint16_t mtu);

/* ---- timestamps (RFC 7323, tcp_input.c) ---- */
/* TCPOLEN_TSTAMP_ALIGNED: what the TS option costs every segment once negotiated. */
#define TCP_TS_OPT_SPACE 12u
/* Our TSval now: Linux's tcp_clock_ms() + tsoffset (1 ms ticks, RFC 7323 §5.4). */
static inline uint32_t tcp_ts_now(const struct tcp_engine *e, const struct tcb *t)
{
  return (uint32_t)(e->now_us / 1000u) + t->ts_off;
}
/* The TS option of the peer's SYN or SYN-ACK (RFC 7323 §3.2): negotiates
 * timestamps, stores TS.Recent, takes the option space out of snd_mss. */
void tcp_take_syn_ts(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h);
/* The TSval offset of the pair local-remote (Linux's secure_tcp_ts_off). */
uint32_t tcp_ts_off(struct tcp_engine *e, bool v6, uint32_t local_ip, uint32_t remote_ip);

/* ---- tcp_addr6.c: interned IPv6 addresses (struct tcp_ep) ---- */
/* The handle of a, taking a reference (0 for ::, no reference); -ENOMEM. */
int a6_intern(struct tcp_engine *e, const uint8_t a[16], uint32_t *handle);
/* The handle of a if interned, else false (no reference taken). */
bool a6_find(const struct tcp_engine *e, const uint8_t a[16], uint32_t *handle);
void a6_ref(struct tcp_engine *e, uint32_t handle);
void a6_unref(struct tcp_engine *e, uint32_t handle);
/* The 16 bytes of a handle (:: for 0). */
const uint8_t *a6_bytes(const struct tcp_engine *e, uint32_t handle);
void a6_free_all(struct tcp_engine *e);
/* *dst = src, moving the IPv6 references (the one in *dst released, one on src taken). */
void tcp_ep_set(struct tcp_engine *e, struct tcp_ep *dst, const struct tcp_ep *src);
/* The bytes hashes put for an address: the 4 of an IPv4 address as before, the
 * 16 of an IPv6 one; returns the length. */
size_t tcp_ep_key(const struct tcp_engine *e, bool v6, uint32_t ip, uint8_t out[16]);
static inline bool tcp_ep_same(const struct tcp_ep *a, const struct tcp_ep *b)
{
  return a->ip == b->ip && a->port == b->port && a->v6 == b->v6;
}
/* Option bytes every data segment carries (Linux's tcp_current_mss subtracts
 * them from the MSS): snd_mss is the payload that still fits the peer's MSS. */
static inline uint32_t tcp_opt_space(const struct tcb *t) { return t->ts_ok ? TCP_TS_OPT_SPACE : 0; }

/* ---- tcp_ecn.c: ECN (RFC 3168) ---- */
#define TCP_ECN_OK 0x01          /* negotiated (in SYN_SENT: asked for) */
#define TCP_ECN_QUEUE_CWR 0x02   /* sender: CWR on the next new data segment */
#define TCP_ECN_DEMAND_CWR 0x04  /* receiver: ECE on every segment until CWR arrives */
#define TCP_ECN_SEEN 0x08        /* receiver: an ECT or CE segment arrived */
#define TCP_ECN_SYN_SENT 0x10    /* our ECN-setup SYN went: its retransmissions do not ask */
/* The SYN asks for ECN: ECE and CWR (RFC 3168 §6.1.1). */
bool tcp_ecn_syn_requests(const struct tcp_hdr *h);
/* A listener l answers the SYN p with ECN (tcp_ecn_create_request). */
bool tcp_ecn_create_request(const struct tcb *l, const struct tcp_packet *p);
/* connect(): ECN asked for on the SYN when the socket's tcp_ecn is 1. */
void tcp_ecn_send_syn(struct tcb *t);
/* SYN_SENT: the peer's SYN-ACK (tcp_ecn_rcv_synack) or SYN (simultaneous open). */
void tcp_ecn_rcv_synack(struct tcb *t, const struct tcp_hdr *h);
void tcp_ecn_rcv_syn(struct tcb *t, const struct tcp_hdr *h);
/* An outgoing segment of t: adds ECE/CWR to *flags and returns the IP ECN
 * field (tcp_ecn_send). seq and plen: the segment's first byte and length. */
uint8_t tcp_ecn_out(struct tcb *t, uint32_t seq, uint32_t plen, uint8_t *flags);
/* An acceptable segment occupying seg_len of sequence space arrived with CWR. */
void tcp_ecn_accept_cwr(struct tcb *t, const struct tcp_packet *p, uint32_t seg_len);
/* Data arrived: records CE (ECE owed); true when the ACK should go at once. */
bool tcp_ecn_check_ce(struct tcb *t, const struct tcp_packet *p);
/* The ACK h carries an ECN echo for t. */
bool tcp_ecn_rcv_ecn_echo(const struct tcb *t, const struct tcp_hdr *h);
/* RFC 3168 §6.1.2: reduce cwnd for an ECE, once per window (tcp_enter_cwr). */
void tcp_enter_cwr(struct tcp_engine *e, struct tcb *t);

/* ---- tcp_sack.c ---- */
void sack_fill_blocks(struct tcp_engine *e, struct tcb *t, struct tcp_opts *o);
void sack_dsack_set(struct tcp_engine *e, struct tcb *t, uint32_t left, uint32_t right);
void sack_update(struct tcb *t, const struct tcp_opts *o);
void sack_prune(struct tcb *t);
bool sack_next_hole(const struct tcb *t, uint32_t from, uint32_t *start, uint32_t *end);
uint32_t sack_skip(const struct tcb *t, uint32_t seq);
uint32_t sack_bytes(const struct tcb *t);
/* In recovery, the sequence number below which every un-SACKed byte counts as
 * lost: RFC 6675 IsLost (DupThresh * SMSS SACKed above it), and at least the
 * segment at snd_una (NewReno's partial-ACK rule, RFC 6582). */
uint32_t sack_lost_end(const struct tcb *t);
/* Un-SACKed bytes in [from, to). */
uint32_t sack_unsacked(const struct tcb *t, uint32_t from, uint32_t to);
/* RFC 6675 pipe (Linux's tcp_packets_in_flight) in bytes during recovery:
 * outstanding, less what was SACKed (or duplicate-ACKed without SACK), less
 * what is lost and not yet retransmitted. Outside recovery snd_nxt - snd_una. */
uint32_t tcp_pipe(const struct tcb *t);
/* Retransmits up to one segment from seq (tcp_output.c). */
/* Payload a data segment may carry now: snd_mss less its options (Linux's
 * tcp_current_mss). */
uint32_t tcp_current_mss(struct tcp_engine *e, struct tcb *t);
/* Pins the storage p (see tcp_engine.pins; false if 8 are pinned already);
 * unpin releases the latest pin, freeing the storage if it retired meanwhile. */
bool tcp_storage_pin(struct tcp_engine *e, uint8_t *p);
void tcp_storage_unpin(struct tcp_engine *e);
/* Free space of a ring as up to two contiguous pieces from its tail, at most
 * max bytes in all, storage reserved first (false: none could be, counted in
 * alloc_failures). ring_commit then adds the n bytes written there. */
size_t ring_free_pieces(struct tcp_engine *e, struct ring *r, uint32_t max, uint8_t *base[2],
                        uint32_t len[2]);
void ring_commit(struct ring *r, uint32_t n);
/* The ring's bytes [off, off+n) as up to two contiguous pieces (two when the
 * run wraps around the end of the storage); returns how many. Per segment on
 * the output path, so inline. */
static inline size_t ring_pieces(const struct ring *r, uint32_t off, uint32_t n,
                                 struct tcp_iov iov[2])
{
  if (n == 0 || !r->data) return 0;
  uint32_t start = (r->head + off) % r->size;
  if (n <= r->size - start) {
    iov[0] = (struct tcp_iov){r->data + start, n};
    return 1;
  }
  iov[0] = (struct tcp_iov){r->data + start, r->size - start};
  iov[1] = (struct tcp_iov){r->data, n - (r->size - start)};
  return 2;
}
/* Frees the ring storage cache (buf.c), when the engine goes. */
void tcp_ring_cache_free(struct tcp_engine *e);
void tcp_retransmit_at(struct tcp_engine *e, struct tcb *t, uint32_t seq, uint32_t max_len);

/* ---- tcp_rack.c: RACK (RFC 8985 §6), D-SACK (RFC 2883), undo ---- */
struct tcp_rack;
bool rack_enabled(const struct tcp_engine *e, const struct tcb *t);
bool rack_active(const struct tcp_engine *e, const struct tcb *t);
void rack_free(struct tcp_engine *e, struct tcb *t);
/* emit(): data (and FIN) [seq, end) went out; tsval its TSval (0 without TS) */
void rack_on_send(struct tcp_engine *e, struct tcb *t, uint32_t seq, uint32_t end, uint32_t tsval);
/* process_ack, after sack_update and before snd_una moves: prior is the
 * scoreboard before this ACK, prior_una snd_una before it */
void rack_on_ack(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h,
                 const struct tcp_sack_block *prior, unsigned nprior, uint32_t prior_una);
void rack_prune(struct tcp_engine *e, struct tcb *t);
int rack_ack_rtt(const struct tcp_engine *e, const struct tcb *t, uint32_t ack, uint64_t *rtt_us);
bool rack_resent_now(const struct tcp_engine *e, const struct tcb *t, uint32_t a, uint32_t b);
void rack_update_reo_wnd(struct tcp_engine *e, struct tcb *t, uint32_t prior_una);
void rack_recovery_end(struct tcb *t);
/* Steps 5-6: marks lost segments, arms the reordering timer; true if it
 * marked any. Runs only after RACK advanced unless force (the timer). */
bool rack_detect_loss(struct tcp_engine *e, struct tcb *t, bool force);
uint32_t rack_lost_bytes(const struct tcb *t);
/* For TCP_INFO (Linux's lost_out, retrans_out): un-SACKed bytes RACK marked
 * lost in this episode, and those of them retransmitted since. O(ranges). */
void rack_lost_info(const struct tcb *t, uint32_t *lost, uint32_t *retrans);
/* The first range at or after from that RACK marked lost, without its SACKed
 * bytes: [*start, *end); O(log n) to find from. */
bool rack_next_lost(const struct tcb *t, uint32_t from, uint32_t *start, uint32_t *end);
void rack_enter_loss(struct tcp_engine *e, struct tcb *t, bool was_recovering);
bool rack_process_loss(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h,
                       bool una_advanced);
enum { RACK_UNDO_NONE, RACK_UNDO_HOLD, RACK_UNDO_DONE };
int rack_try_undo_partial(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h);
void rack_undo_init(struct tcp_engine *e, struct tcb *t);
bool rack_try_undo_dsack(struct tcp_engine *e, struct tcb *t);
bool rack_try_undo_ts(struct tcp_engine *e, struct tcb *t, const struct tcp_hdr *h);
uint64_t rack_mem(const struct tcb *t);
/* tcp_input.c: loss recovery entered (RFC 6675 §5 / RFC 6582 / RFC 6937
 * initialisation), the retransmissions recovery sends, PRR for an ACK. */
/* reduce: a congestion event (false: right after a timeout, cwnd was cut) */
void tcp_enter_recovery(struct tcp_engine *e, struct tcb *t, bool reduce);
void tcp_recovery_send(struct tcp_engine *e, struct tcb *t);
void tcp_prr_ack(struct tcb *t, uint32_t delivered, bool una_advanced);
/* RACK's reordering timer expired (tcp_rack_reo_timeout). */
void tcp_rack_reo_timeout(struct tcp_engine *e, struct tcb *t);

/* ---- siphash.c ---- */
uint64_t siphash24(const uint64_t key[2], const void *data, size_t len);

/* ---- helpers ---- */
static inline uint32_t tcb_unacked(const struct tcb *t) { return t->snd_nxt - t->snd_una; }
/* A connection was attempted or accepted on this block: the socket is no longer
 * fresh (Linux's SS_CONNECTING/SS_CONNECTED socket states). */
static inline bool tcb_ever_connected(const struct tcb *t) { return t->remote.port != 0; }
static inline bool tcb_has_conn_state(enum ustcp_state s)
{
  return s != USTCP_CLOSED && s != USTCP_LISTEN;
}
static inline uint64_t u64_min(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t u64_max(uint64_t a, uint64_t b) { return a > b ? a : b; }
static inline uint32_t u32_min(uint32_t a, uint32_t b) { return a < b ? a : b; }
static inline uint32_t u32_max(uint32_t a, uint32_t b) { return a > b ? a : b; }
#endif
