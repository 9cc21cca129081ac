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
#endif
