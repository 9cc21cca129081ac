/* Internal debug hooks: invariant checks of the engine's state, for the
 * simulation (tests/sim), the engine fuzzer (fuzz/) and attack tests. Not part of
 * the public API and never called by the engine itself (no cost on the fast path).
 *
 * Each function returns NULL when every invariant holds, or a one-line reason
 * (written into buf) naming the first that does not.
 */
#ifndef USTCP_TCP_CHECK_H
#define USTCP_TCP_CHECK_H
#include <stddef.h>
#include "tcp/tcp.h"

/* One control block: sequence variables (snd_una <= snd_nxt <= snd_max, nothing
 * sent beyond the send buffer, FIN accounting), receive window and out-of-order
 * queue (inside the advertised window, backed by buffer space, bounded), buffers
 * within their limits, state-dependent facts (FIN sent/received/acked per state)
 * and timers (armed when the state needs them, consistent with the heap). */
const char *tcp_check_tcb(const struct tcp_engine *e, const struct tcb *t, char *buf,
                          size_t cap);
/* Bytes of engine memory (tcp_alloc) owned by t: block, listener state, buffers,
 * out-of-order segments. */
uint64_t tcp_tcb_mem(const struct tcb *t);
/* The timer heap: heap order and every node's index. */
const char *tcp_check_timers(const struct tcp_engine *e, char *buf, size_t cap);

/* The cheap invariants the engine asserts on itself after every segment (RFC
 * 9293 §3.3.1 order snd_una <= snd_nxt <= snd_max, rcv_nxt <= rcv_adv (+1 for
 * the peer's FIN), the out-of-order queue empty exactly when its count is 0;
 * listener queue counts within their limits). O(1). Built with
 * USTCP_CHECK_INVARIANTS (CMake: Debug, sanitizer and fuzzer builds) the
 * out-of-order queue is also walked and counted. */
const char *tcp_check_cheap(const struct tcp_engine *e, const struct tcb *t, char *buf,
                            size_t cap);
/* Prints why and aborts: an engine invariant broke (a programmer error). */
void tcp_invariant_failed(const struct tcb *t, const char *why);
#define TCP_CHECK_INVARIANTS(e, t) do {                                         \
    char tcp_why_buf_[256];                                                     \
    const char *tcp_why_ = tcp_check_cheap((e), (t), tcp_why_buf_, sizeof tcp_why_buf_); \
    if (tcp_why_) tcp_invariant_failed((t), tcp_why_);                         \
  } while (0)
#endif
