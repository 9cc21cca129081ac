/* src/link/uring: the least of io_uring a TUN driver needs to read or write
 * several packets in one system call (issue 15 point 4). A TUN device has no
 * multi-packet read or write of its own (no recvmmsg on a character device);
 * io_uring lets one io_uring_enter(2) issue a batch of plain reads or writes.
 *
 * Raw system calls and the rings mapped by hand (the library depends on libc
 * alone, not liburing). One ring per driver thread; not thread-safe.
 *
 * The driver's use is synchronous: it queues up to URING_MAX requests, then
 * uring_run submits them and waits for all of their completions in the same
 * call, so every buffer handed in may be reused as soon as uring_run returns.
 * On a non-blocking descriptor each request is issued in order, at once, and
 * completes at once (a read that finds nothing completes with -EAGAIN), so the
 * wait never sleeps.
 */
#ifndef USTCP_LINK_URING_H
#define USTCP_LINK_URING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define URING_MAX 64u   /* requests per uring_run */

struct uring;

/* A ring for URING_MAX requests, or NULL with errno set (ENOSYS on a kernel
 * without io_uring, EPERM where it is disabled, e.g. kernel.io_uring_disabled
 * or a seccomp filter). The caller then uses plain read/write. */
struct uring *uring_new(void);
void uring_free(struct uring *u);

/* Queues a read of at most len bytes into buf, or a write of the gather list
 * iov (cnt slices, which must stay valid until uring_run returns). The
 * result of request k (0, 1, ... in the order queued) is res[k] after
 * uring_run. Returns k, or -ENOSPC when URING_MAX are already queued. */
int uring_queue_read(struct uring *u, int fd, void *buf, size_t len);
int uring_queue_writev(struct uring *u, int fd, const struct iovec *iov, unsigned cnt);

/* Submits what is queued and waits for every completion: res[k] is request k's
 * result (bytes, or -errno). Returns the number run, or -errno when the ring
 * itself failed (then no res[] is valid and nothing is queued any more). */
int uring_run(struct uring *u, int32_t *res);
#endif
