/* src/link/uring.c: see uring.h. The ring layout and the order of loads and
 * stores are io_uring(7)'s: the application fills an SQE, then its slot in the
 * SQ array, then publishes the SQ tail with a release store; it reads CQ
 * entries after an acquire load of the CQ tail and gives them back with a
 * release store of the CQ head. */
#include "link/uring.h"

#include <errno.h>
#include <linux/io_uring.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

struct uring {
  int fd;
  void *sq_map, *cq_map;
  size_t sq_map_len, cq_map_len;
  struct io_uring_sqe *sqes;
  size_t sqes_len;
  unsigned *sq_khead, *sq_ktail, *sq_kmask, *sq_array;
  unsigned *cq_khead, *cq_ktail, *cq_kmask;
  struct io_uring_cqe *cqes;
  unsigned sq_tail;    /* ours, published to *sq_ktail by uring_run */
  unsigned nq;         /* requests queued since the last run */
};

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
  return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags)
{
  return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

void uring_free(struct uring *u)
{
  if (!u) return;
  if (u->sqes) munmap(u->sqes, u->sqes_len);
  if (u->cq_map && u->cq_map != u->sq_map) munmap(u->cq_map, u->cq_map_len);
  if (u->sq_map) munmap(u->sq_map, u->sq_map_len);
  if (u->fd >= 0) close(u->fd);
  free(u);
}

struct uring *uring_new(void)
{
  struct uring *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  u->fd = -1;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  u->fd = sys_setup(URING_MAX, &p);
  if (u->fd < 0) goto fail;
  if (p.sq_entries < URING_MAX || p.cq_entries < URING_MAX) {
    errno = EINVAL;
    goto fail;
  }
  u->sq_map_len = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  u->cq_map_len = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
  bool single = p.features & IORING_FEAT_SINGLE_MMAP;
  if (single && u->cq_map_len > u->sq_map_len) u->sq_map_len = u->cq_map_len;
  u->sq_map = mmap(NULL, u->sq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
                   IORING_OFF_SQ_RING);
  if (u->sq_map == MAP_FAILED) {
    u->sq_map = NULL;
    goto fail;
  }
  if (single) {
    u->cq_map = u->sq_map;
  } else {
    u->cq_map = mmap(NULL, u->cq_map_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
                     u->fd, IORING_OFF_CQ_RING);
    if (u->cq_map == MAP_FAILED) {
      u->cq_map = NULL;
      goto fail;
    }
  }
  u->sqes_len = p.sq_entries * sizeof(struct io_uring_sqe);
  u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd,
                 IORING_OFF_SQES);
  if (u->sqes == MAP_FAILED) {
    u->sqes = NULL;
    goto fail;
  }
  uint8_t *sq = u->sq_map, *cq = u->cq_map;
  u->sq_khead = (unsigned *)(void *)(sq + p.sq_off.head);
  u->sq_ktail = (unsigned *)(void *)(sq + p.sq_off.tail);
  u->sq_kmask = (unsigned *)(void *)(sq + p.sq_off.ring_mask);
  u->sq_array = (unsigned *)(void *)(sq + p.sq_off.array);
  u->cq_khead = (unsigned *)(void *)(cq + p.cq_off.head);
  u->cq_ktail = (unsigned *)(void *)(cq + p.cq_off.tail);
  u->cq_kmask = (unsigned *)(void *)(cq + p.cq_off.ring_mask);
  u->cqes = (struct io_uring_cqe *)(void *)(cq + p.cq_off.cqes);
  u->sq_tail = *u->sq_ktail;
  return u;
fail: {
  int e = errno;
  uring_free(u);
  errno = e;
  return NULL;
}
}

/* Fills the next SQE; its user_data is its index k in this run. Returns k or
 * -ENOSPC. off -1 is "the file position": a TUN device is a stream. */
static int queue_rw(struct uring *u, uint8_t opcode, int fd, const void *addr, uint32_t len,
                    uint32_t rw_flags)
{
  if (u->nq >= URING_MAX) return -ENOSPC;
  unsigned idx = u->sq_tail & *u->sq_kmask;
  struct io_uring_sqe *e = &u->sqes[idx];
  memset(e, 0, sizeof *e);
  e->opcode = opcode;
  e->fd = fd;
  e->addr = (uint64_t)(uintptr_t)addr;
  e->len = len;
  e->off = (uint64_t)-1;
  e->rw_flags = rw_flags;
  e->user_data = u->nq;
  u->sq_array[idx] = idx;
  u->sq_tail++;
  return (int)u->nq++;
}

int uring_queue_read(struct uring *u, int fd, void *buf, size_t len)
{
  /* Without RWF_NOWAIT io_uring waits for data (it arms a poll) even on an
   * O_NONBLOCK descriptor; with it, an empty device completes with -EAGAIN. */
  return queue_rw(u, IORING_OP_READ, fd, buf, (uint32_t)len, RWF_NOWAIT);
}

int uring_queue_writev(struct uring *u, int fd, const struct iovec *iov, unsigned cnt)
{
  return queue_rw(u, IORING_OP_WRITEV, fd, iov, cnt, 0);
}

/* Takes every completion there is; returns how many. */
static unsigned reap(struct uring *u, int32_t *res, unsigned n)
{
  unsigned head = *u->cq_khead;
  unsigned tail = __atomic_load_n(u->cq_ktail, __ATOMIC_ACQUIRE);
  unsigned got = 0;
  for (; head != tail; head++, got++) {
    const struct io_uring_cqe *c = &u->cqes[head & *u->cq_kmask];
    if (c->user_data < n) res[c->user_data] = c->res;
  }
  __atomic_store_n(u->cq_khead, head, __ATOMIC_RELEASE);
  return got;
}

int uring_run(struct uring *u, int32_t *res)
{
  unsigned n = u->nq;
  if (!n) return 0;
  __atomic_store_n(u->sq_ktail, u->sq_tail, __ATOMIC_RELEASE);
  unsigned done = 0;
  /* Bounded: a kernel short of memory answers EAGAIN or EBUSY; a signal, EINTR.
   * None of these lasts. */
  for (unsigned tries = 0; done < n; tries++) {
    unsigned unsubmitted = u->sq_tail - __atomic_load_n(u->sq_khead, __ATOMIC_ACQUIRE);
    int r = sys_enter(u->fd, unsubmitted, n - done, IORING_ENTER_GETEVENTS);
    int e = r < 0 ? errno : 0;
    done += reap(u, res, n);
    if (r >= 0 || done >= n) continue;
    if ((e == EINTR || e == EAGAIN || e == EBUSY) && tries < 10000) continue;
    u->nq = 0;
    return -e;
  }
  u->nq = 0;
  return (int)n;
}
