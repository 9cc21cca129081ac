/* Internal debug hooks over a whole stack, for the simulation (tests/sim), the
 * engine fuzzer (fuzz/) and attack tests. Not public API; the stack never calls
 * them itself. */
#ifndef USTCP_STACK_CHECK_H
#define USTCP_STACK_CHECK_H
#include <stdbool.h>
#include <stddef.h>
#include "stack/stack.h"
#include "tcp/tcp_check.h"

/* Checks every control block reachable from the stack (demux table, listeners,
 * descriptors) with tcp_check_tcb, and the stack's own bookkeeping: each block
 * found by its 4-tuple (no duplicates), descriptors pointing back, the number of
 * blocks equal to the engine's count and their memory equal to the allocator's
 * (a block nobody can reach is a leak), the timer heap, and the local-port
 * reference totals against the blocks holding a port. With deep, also a scan of
 * all 65536 entries of both port tables against those totals. Returns NULL or the
 * first violation (written into buf). */
const char *stack_check(struct ustcp_stack *s, bool deep, char *buf, size_t cap);

/* src/sock: the control block behind descriptor fd, or NULL; *fd_cap (if not
 * NULL) gets the size of the descriptor table. */
struct tcb *sock_debug_tcb(struct ustcp_stack *s, int fd, uint32_t *fd_cap);

/* src/sock: words of the descriptor table's free summary read so far by
 * descriptor allocation (a step count, for the O(cap/4096) bound). */
uint64_t sock_debug_fd_scan_steps(struct ustcp_stack *s);
#endif
