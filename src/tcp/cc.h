/* Congestion control modules (RFC 5681 §3, RFC 9438), behind one interface as
 * Linux's struct tcp_congestion_ops.
 *
 * The engine (tcp_input.c, tcp_timer.c, tcp_output.c) does loss detection and
 * recovery; a module only decides the congestion window and slow-start
 * threshold (tcb.cc.cwnd, tcb.cc.ssthresh, in bytes) at these events:
 *
 *   init                 a connection is set up (cwnd = the initial window)
 *   on_ack               new data was cumulatively acknowledged outside recovery
 *   on_congestion_event  loss detected (fast retransmit): set ssthresh; the
 *                        engine's recovery (RFC 6582) sets cwnd from it
 *   on_rto               a retransmission timeout: ssthresh, and cwnd = 1 SMSS
 *   on_idle_restart      data is sent after an idle period longer than the RTO
 *                        (RFC 5681 §4.1, Linux's tcp_cwnd_restart)
 *   undo                 the last congestion event was spurious (D-SACK or
 *                        timestamp undo, tcp_rack.c): back to the state before it
 *
 * A module keeps its own state in tcb.cc.priv (CC_PRIV_BYTES); nothing else
 * reads it. Modules: "reno" (cc_newreno.c), "cubic" (cc_cubic.c, the default
 * as in Linux). Selected per socket with TCP_CONGESTION, per stack with
 * ustcp_config.congestion_control. */
#ifndef USTCP_TCP_CC_H
#define USTCP_TCP_CC_H

#include <stdbool.h>
#include <stdint.h>

#define CC_PRIV_BYTES 80
#define CC_NAME_MAX 16            /* Linux's TCP_CA_NAME_MAX */

struct tcb;
struct tcp_engine;

struct cc_ack {
  uint32_t acked;                 /* bytes newly acknowledged */
  uint32_t acked_segs;            /* segments they made up (Linux counts packets) */
  uint64_t rtt_us;                /* an RTT sample taken by this ACK, 0 if none */
  uint64_t now_us;
  bool cwnd_limited;              /* RFC 7661: the sender used its cwnd lately */
};

struct cc_ops {
  const char *name;
  void (*init)(struct tcb *t);      /* module state only: cwnd and ssthresh are set */
  void (*on_ack)(struct tcb *t, const struct cc_ack *a);
  void (*on_congestion_event)(struct tcb *t, uint32_t flight, uint64_t now_us);
  void (*on_rto)(struct tcb *t, uint32_t flight, uint64_t now_us);
  void (*on_idle_restart)(struct tcb *t, uint64_t idle_us, uint64_t rto_us,
                          uint32_t restart_cwnd);
  /* The congestion event was spurious: prior_priv is the module's state from
   * before it. NULL: the engine restores prior_priv as it is. */
  void (*undo)(struct tcb *t, const unsigned char *prior_priv, uint64_t now_us);
};

extern const struct cc_ops cc_newreno_ops;
extern const struct cc_ops cc_cubic_ops;

/* The module named name ("reno", "cubic"), or NULL. */
const struct cc_ops *cc_find(const char *name);

/* Engine hooks (cc.c). */
void cc_init_conn(struct tcp_engine *e, struct tcb *t);
int cc_select(struct tcp_engine *e, struct tcb *t, const char *name);
void cc_ack(struct tcp_engine *e, struct tcb *t, uint32_t acked, uint64_t rtt_us);
void cc_congestion_event(struct tcp_engine *e, struct tcb *t, uint32_t flight);
void cc_rto(struct tcp_engine *e, struct tcb *t, uint32_t flight);
void cc_before_output(struct tcp_engine *e, struct tcb *t);
void cc_after_output(struct tcp_engine *e, struct tcb *t, bool sent);   /* send time */
/* A congestion event proved spurious (every retransmission D-SACKed, or
 * RFC 3522's timestamp test): the module's state as it was before the event
 * (its priv, saved by the engine) comes back through the module's undo hook,
 * with cwnd and ssthresh at least what they were (Linux's
 * tcp_undo_cwnd_reduction; RFC 9438 §4.9 for CUBIC). */
void cc_undo(struct tcp_engine *e, struct tcb *t, uint32_t prior_cwnd, uint32_t prior_ssthresh,
             const unsigned char *prior_priv);

/* Shared by modules: slow start by every byte acknowledged, up to ssthresh
 * (RFC 3465 byte counting with no per-ACK limit, as main's D4 scripts and
 * Linux's tcp_slow_start, which counts whole packets); returns the bytes left
 * over once cwnd reached ssthresh, for congestion avoidance. Counting
 * ceil(bytes / SMSS) segments instead measured worse on the 1 % loss curve
 * with reno (median 81,960 B/s against 101,118 over 8 seeds, 10 MiB). */
uint32_t cc_slow_start(struct tcb *t, uint32_t acked);
/* RFC 5681 §4.1 restart window after idle, as Linux's tcp_cwnd_restart. */
void cc_restart_window(struct tcb *t, uint64_t idle_us, uint64_t rto_us, uint32_t restart_cwnd);

#endif
