/* src/link/loop.c: the real-time driver of a stack on a TUN device (see
 * include/ustcp_loop.h for the API; the public header lives in include/ because
 * programs and examples/ link against it, while tun.h stays internal).
 *
 *   ustcp_loop_new       tun_open (+ tun_configure) -> stack with the TUN's MTU ->
 *                        epoll set: TUN fd, timerfd, (control socket), watches
 *   ustcp_loop_run_once  arm the timerfd at min(stack deadline, impairment queue)
 *                        -> epoll_wait -> TUN: tun_read_batch -> ustcp_input each
 *                        (CLOCK_MONOTONIC us) -> due delayed packets -> ustcp_poll
 *   stack output         -> tun_writev from the stack's gather output (headers +
 *                           send-ring slices, no staging copy), or flat: tun_write,
 *                           the impairment queue, Ethernet framing
 *   offload (vnet)       tun_read_batch_vnet -> ustcp_input_flags, with
 *                        USTCP_IN_CSUM_VERIFIED when the kernel's virtio_net_hdr
 *                        says the TCP checksum is left undone or was checked;
 *                        output -> tun_write_vnet; batched (io_uring: the
 *                        frames of one event in one system call) unless
 *                        no_batch, queued until the stack's flush (loop_flush);
 *                        reads batched too with batch_reads (read_uring)
 *   blocking calls       non-blocking call; on -EAGAIN/-EINPROGRESS run rounds
 *                        until ustcp_sock_events says ready, then call again
 *   control socket       each client gets the table and counters, then EOF
 *
 * The engine is the same as in simulation: only the clock and the packets are
 * real. Single-threaded.
 */
#include "ustcp_loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "link/pcap.h"
#include "link/tun.h"
#include "link/eth.h"
#include "link/packet.h"
#include "link/uring.h"
#include "wire/wire.h"

#include <linux/virtio_net.h>

#define LOOP_READ_BATCH 256      /* packets read per round before timers run */
#define LOOP_URING_READS 16      /* most reads per io_uring_enter (buffers: 64 KiB each) */
#define LOOP_IMPAIR_LIMIT 10000  /* packets held by the delay line (netem's limit idea) */

enum { DIR_TO_KERNEL, DIR_TO_STACK };

struct dpkt {
  struct dpkt *next;
  uint64_t at_us;
  unsigned in_flags;          /* ustcp_input_flags for DIR_TO_STACK */
  size_t len;
  uint8_t data[];
};

struct dqueue {
  struct dpkt *head, *tail;
  size_t n;
};

struct watch {
  int fd;
  ustcp_loop_fd_fn fn;
  void *ctx;
};

struct ustcp_loop {
  int tun_fd, ep_fd, timer_fd, ctl_fd;
  char ifname[IFNAMSIZ];
  char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  struct ustcp_stack *st;
  struct ustcp_config cfg;
  uint32_t addr, peer;
  bool has6;                   /* the stack has an IPv6 address: the TUN passes IPv6 */
  bool vnet;                   /* IFF_VNET_HDR + offloads (config offload) */
  volatile sig_atomic_t stop;
  int timeout_ms;
  uint64_t armed_us;           /* deadline the timerfd holds, 0 = disarmed */
  struct watch *watches;
  size_t nwatches, capwatches;
  double loss, reorder, corrupt, duplicate;
  uint64_t delay_us;
  uint64_t rng;
  struct dqueue q[2];
  struct pcap_writer *pcap;
  struct ustcp_loop_stats stats;
  struct eth_iface *eth;       /* tap, packet: Ethernet + ARP between the stack and the device */
  struct packet_link *pk;      /* packet: the AF_PACKET socket and its ring */
  /* Batched TUN I/O (vnet, issue 15 point 4): reads and writes go through one
   * io_uring, several per system call. NULL: plain read/writev. */
  struct uring *ring;
  bool batch_writes;           /* stack_out_tx queues on the ring, loop_flush writes */
  bool batch_reads;            /* config batch_reads: reads through the ring too */
  uint8_t *rx_bufs;            /* LOOP_URING_READS buffers of TUN_VNET_READ_LEN */
  unsigned rx_k;               /* reads per batch now: follows what the device had */
  unsigned ntx;                /* writes queued for loop_flush */
  uint8_t tx_hdr[URING_MAX][TUN_VNET_HDR_LEN];
  struct iovec tx_iov[URING_MAX][2];
  struct tx_slot {
    bool gso, csum;
  } tx_slot[URING_MAX];        /* what the stats count of write k (its length: tx_iov[k][1]) */
};

uint64_t ustcp_loop_now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t realtime_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void ustcp_loop_config_default(struct ustcp_loop_config *c)
{
  memset(c, 0, sizeof *c);
  c->tun_name = "ustcp0";
  c->addr = 0x0a070002;   /* 10.7.0.2 */
  c->peer = 0x0a070001;   /* 10.7.0.1 */
  c->mtu = 1500;
  c->prefix_len = 24;
}

static uint64_t rng_next(struct ustcp_loop *l)
{
  uint64_t z = (l->rng += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static double rng_unit(struct ustcp_loop *l) { return (double)(rng_next(l) >> 11) / 9007199254740992.0; }

static void deliver(struct ustcp_loop *l, int dir, const uint8_t *pkt, size_t len,
                    unsigned in_flags)
{
  if (dir == DIR_TO_STACK) {
    ustcp_input_flags(l->st, pkt, len, ustcp_loop_now_us(), in_flags);
    return;
  }
  /* Toward the kernel, USTCP_IN_CSUM_VERIFIED means the same in reverse: the
   * checksums are ours and complete (cleared when the impairment corrupted it). */
  bool valid = in_flags & USTCP_IN_CSUM_VERIFIED;
  if (l->eth) {
    /* framed (and held for ARP if need be) by eth.c; eth_frame_out writes */
    l->stats.tx_packets++;
    l->stats.tx_bytes += len;
    eth_ip_output(l->eth, pkt, len, ustcp_loop_now_us());
    return;
  }
  if ((l->vnet ? tun_write_vnet(l->tun_fd, pkt, len, valid) : tun_write(l->tun_fd, pkt, len)) < 0) {
    l->stats.tx_errors++;
    return;
  }
  l->stats.tx_packets++;
  l->stats.tx_bytes += len;
}

/* netem-like: loss, then either immediate (reordered) or a fixed delay. */
static void impair_one(struct ustcp_loop *l, int dir, const uint8_t *pkt, size_t len,
                       unsigned in_flags)
{
  if (l->delay_us == 0 || (l->reorder > 0 && rng_unit(l) < l->reorder)) {
    if (l->delay_us) l->stats.impair_reordered++;
    deliver(l, dir, pkt, len, in_flags);
    return;
  }
  struct dqueue *q = &l->q[dir];
  if (q->n >= LOOP_IMPAIR_LIMIT) {
    l->stats.impair_dropped++;
    return;
  }
  struct dpkt *d = malloc(sizeof *d + len);
  if (!d) {                       /* no memory to delay it: dropped, and counted */
    l->stats.impair_dropped++;
    return;
  }
  d->next = NULL;
  d->at_us = ustcp_loop_now_us() + l->delay_us;
  d->in_flags = in_flags;
  d->len = len;
  memcpy(d->data, pkt, len);
  if (q->tail) q->tail->next = d; else q->head = d;
  q->tail = d;
  q->n++;
  l->stats.impair_delayed++;
}

/* Loss first; then corruption, as netem's "corrupt": one bit, anywhere in the
 * packet, flipped (the IPv4 header checksum or the TCP checksum covers every
 * bit, so the receiver must drop it); then duplication, as netem's
 * "duplicate": the copy goes the same way right after the original (a
 * corrupted packet is duplicated corrupted). */
static void impair(struct ustcp_loop *l, int dir, const uint8_t *pkt, size_t len,
                   unsigned in_flags)
{
  if (l->loss > 0 && rng_unit(l) < l->loss) {
    l->stats.impair_dropped++;
    return;
  }
  uint8_t *bad = NULL;
  if (l->corrupt > 0 && len > 0 && rng_unit(l) < l->corrupt && (bad = malloc(len)) != NULL) {
    memcpy(bad, pkt, len);
    uint64_t bit = rng_next(l) % ((uint64_t)len * 8);
    bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    pkt = bad;
    l->stats.impair_corrupted++;
    /* A checksum the kernel left to us (offload) was never checked: the
     * corrupted copy must be, or the flipped bit would be delivered. */
    in_flags &= ~(unsigned)USTCP_IN_CSUM_VERIFIED;
  }
  bool twice = l->duplicate > 0 && rng_unit(l) < l->duplicate;
  impair_one(l, dir, pkt, len, in_flags);
  if (twice) {
    l->stats.impair_duplicated++;
    impair_one(l, dir, pkt, len, in_flags);
  }
  free(bad);
}

static bool impaired(const struct ustcp_loop *l)
{
  return l->loss > 0 || l->delay_us > 0 || l->corrupt > 0 || l->duplicate > 0;
}

static void release_due(struct ustcp_loop *l, uint64_t now)
{
  for (int dir = 0; dir < 2; dir++) {
    struct dqueue *q = &l->q[dir];
    while (q->head && q->head->at_us <= now) {
      struct dpkt *d = q->head;
      q->head = d->next;
      if (!q->head) q->tail = NULL;
      q->n--;
      deliver(l, dir, d->data, d->len, d->in_flags);
      free(d);
    }
  }
}

static void stack_out(void *ctx, const uint8_t *pkt, size_t len)
{
  struct ustcp_loop *l = ctx;
  if (impaired(l)) impair(l, DIR_TO_KERNEL, pkt, len, USTCP_IN_CSUM_VERIFIED);
  else deliver(l, DIR_TO_KERNEL, pkt, len, USTCP_IN_CSUM_VERIFIED);
}

/* The gather output (issue 12 point 6), on a plain or vnet TUN device without
 * impairment: headers and send-ring slices go to writev() as they are, with no
 * staging copy of the segment. */
static void stack_out_iov(void *ctx, const struct iovec *iov, int cnt)
{
  struct ustcp_loop *l = ctx;
  size_t len = 0;
  for (int i = 0; i < cnt; i++) len += iov[i].iov_len;
  if ((l->vnet ? tun_writev_vnet(l->tun_fd, iov, cnt, true) : tun_writev(l->tun_fd, iov, cnt)) < 0) {
    l->stats.tx_errors++;
    return;
  }
  l->stats.tx_packets++;
  l->stats.tx_bytes += len;
}

static void batch_off(struct ustcp_loop *l, int err)
{
  /* The ring itself failed (not one write): plain system calls from now on. */
  fprintf(stderr, "ustcp: io_uring failed (%s); reading and writing %s one packet per call\n",
          strerror(-err), l->ifname);
  ustcp_set_output_flush(l->st, NULL, NULL);
  uring_free(l->ring);
  l->ring = NULL;
  l->batch_writes = l->batch_reads = false;
}

/* The stack's flush (ustcp_set_output_flush): the writes queued by
 * stack_out_tx go in one io_uring_enter; the packets they point to are the
 * stack's until this returns. */
static void loop_flush(void *ctx)
{
  struct ustcp_loop *l = ctx;
  if (!l->ntx) return;   /* ntx > 0 only while batch_writes, so the ring is there */
  int32_t res[URING_MAX];
  int ran = uring_run(l->ring, res);
  l->stats.tx_batches++;
  for (unsigned i = 0; i < l->ntx; i++) {
    if (ran < 0 || res[i] < 0) {
      l->stats.tx_errors++;   /* lost, as on a wire; TCP recovers */
      continue;
    }
    l->stats.tx_packets++;
    l->stats.tx_bytes += l->tx_iov[i][1].iov_len;
    if (l->tx_slot[i].gso) l->stats.tx_gso_frames++;
    if (l->tx_slot[i].csum) l->stats.tx_csum_offloaded++;
  }
  l->ntx = 0;
  if (ran < 0) batch_off(l, ran);
}

/* Offload (vnet, no impairment): the stack sends frames of several segments
 * and leaves TCP checksums to the kernel (ustcp_set_link_offload); the
 * virtio_net_hdr tells the kernel so. Batched, the frame is queued where it
 * lies (it stays valid until the stack's flush, loop_flush) and written with
 * the rest of the event's frames. */
static void stack_out_tx(void *ctx, const uint8_t *pkt, size_t len, const struct ustcp_tx_info *tx)
{
  struct ustcp_loop *l = ctx;
  struct tun_tx_info t = {
    .gso_size = tx->gso_size, .hdr_len = tx->hdr_len, .needs_csum = tx->csum_partial,
    .csum_start = tx->csum_start, .csum_offset = tx->csum_offset,
    .v6 = len > 0 && (pkt[0] >> 4) == 6,
  };
  if (l->batch_writes && l->ntx >= URING_MAX) loop_flush(l);   /* full: write now */
  if (l->batch_writes) {
    unsigned i = l->ntx;
    tun_vnet_hdr_tx(l->tx_hdr[i], &t);
    l->tx_iov[i][0] = (struct iovec){l->tx_hdr[i], TUN_VNET_HDR_LEN};
    l->tx_iov[i][1] = (struct iovec){(void *)(uintptr_t)pkt, len};
    l->tx_slot[i] = (struct tx_slot){tx->gso_size != 0, tx->csum_partial};
    if (uring_queue_writev(l->ring, l->tun_fd, l->tx_iov[i], 2) >= 0) {
      l->ntx++;
      return;
    }
  }
  if (tun_write_vnet_tx(l->tun_fd, pkt, len, &t) < 0) {
    l->stats.tx_errors++;
    return;
  }
  l->stats.tx_packets++;
  l->stats.tx_bytes += len;
  if (tx->gso_size) l->stats.tx_gso_frames++;
  if (tx->csum_partial) l->stats.tx_csum_offloaded++;
}

static void on_capture(void *ctx, bool outgoing, const uint8_t *pkt, size_t len, uint64_t now_us)
{
  struct ustcp_loop *l = ctx;
  (void)outgoing; (void)now_us;
  if (l->pcap) pcap_writer_write(l->pcap, realtime_us(), pkt, len);
}

static void tun_packet_in(struct ustcp_loop *l, const uint8_t *pkt, size_t len, unsigned in_flags)
{
  l->stats.rx_packets++;
  l->stats.rx_bytes += len;
  if (len < 1 || ((pkt[0] >> 4) != 4 && !((pkt[0] >> 4) == 6 && l->has6))) {
    /* others, and IPv6 while the stack has no IPv6 address: not ours */
    l->stats.rx_not_ipv4++;
    return;
  }
  if (impaired(l)) impair(l, DIR_TO_STACK, pkt, len, in_flags);
  else deliver(l, DIR_TO_STACK, pkt, len, in_flags);
}

static void on_tun_packet(void *ctx, const uint8_t *pkt, size_t len)
{
  tun_packet_in(ctx, pkt, len, 0);
}

/* TAP: a frame from the device goes through Ethernet/ARP; an IPv4 datagram in
 * it comes back through eth_ip_in. */
static void on_tap_frame(void *ctx, const uint8_t *frame, size_t len)
{
  struct ustcp_loop *l = ctx;
  l->stats.rx_frames++;
  eth_frame_input(l->eth, frame, len, ustcp_loop_now_us(), 0);
}

/* AF_PACKET: a frame from a veth peer in this host may carry a TCP checksum
 * the kernel left for offload (CHECKSUM_PARTIAL: the field holds only the
 * pseudo-header sum); the ring says so, and only for TCP over IPv4 or IPv6 is
 * it passed on as USTCP_IN_CSUM_VERIFIED (as the vnet TUN path does). */
static void on_packet_frame(void *ctx, const uint8_t *frame, size_t len, bool csum_by_kernel)
{
  struct ustcp_loop *l = ctx;
  l->stats.rx_frames++;
  unsigned flags = 0;
  if (csum_by_kernel && len >= 14 + 20 && frame[12] == 0x08 && frame[13] == 0x00 &&
      frame[14 + 9] == 6) {
    flags = USTCP_IN_CSUM_VERIFIED;
    l->stats.rx_csum_offloaded++;
  } else if (csum_by_kernel && len >= 14 + 40 && frame[12] == 0x86 && frame[13] == 0xdd &&
             frame[14 + 6] == 6) {
    /* the same for TCP right after the IPv6 header (the kernel sends no
     * extension headers on it): the field holds the pseudo-header sum */
    flags = USTCP_IN_CSUM_VERIFIED;
    l->stats.rx_csum_offloaded++;
  }
  eth_frame_input(l->eth, frame, len, ustcp_loop_now_us(), flags);
}

static void eth_ip_in(void *ctx, const uint8_t *pkt, size_t len, unsigned flags)
{
  tun_packet_in(ctx, pkt, len, flags);
}

static void eth_frame_out(void *ctx, const uint8_t *frame, size_t len)
{
  struct ustcp_loop *l = ctx;
  if ((l->pk ? packet_write(l->pk, frame, len) : tun_write(l->tun_fd, frame, len)) < 0) {
    l->stats.tx_errors++;
    return;
  }
  l->stats.tx_frames++;
}

/* A frame from a vnet device. The kernel (tun_put_user -> virtio_net_hdr_from_skb)
 * says NEEDS_CSUM when it left the checksum to us (CHECKSUM_PARTIAL: the TCP
 * checksum field holds the pseudo-header sum only) and DATA_VALID when it
 * checked it already; both come from the local kernel, not from a wire. The
 * flag is passed only when the undone checksum is the TCP one of this very
 * IPv4 packet (csum_start at the end of its IPv4 header, csum_offset 16). */
static void on_tun_vnet(void *ctx, const struct tun_rx_info *info, const uint8_t *pkt, size_t len)
{
  struct ustcp_loop *l = ctx;
  unsigned in_flags = 0;
  if (len >= 20 && (pkt[0] >> 4) == 4 && pkt[9] == 6) {
    size_t ihl = (size_t)(pkt[0] & 0xf) * 4;
    if ((info->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && info->csum_start == ihl &&
        info->csum_offset == 16)
      in_flags = USTCP_IN_CSUM_VERIFIED;
    else if (info->flags & VIRTIO_NET_HDR_F_DATA_VALID)
      in_flags = USTCP_IN_CSUM_VERIFIED;
    if (in_flags) l->stats.rx_csum_offloaded++;
    if (info->gso_type == VIRTIO_NET_HDR_GSO_TCPV4) l->stats.rx_gso_frames++;
  } else if (len >= 40 && (pkt[0] >> 4) == 6 && pkt[6] == 6) {
    /* TCP right after the IPv6 header (no extension headers): the same rule */
    if ((info->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) && info->csum_start == 40 &&
        info->csum_offset == 16)
      in_flags = USTCP_IN_CSUM_VERIFIED;
    else if (info->flags & VIRTIO_NET_HDR_F_DATA_VALID)
      in_flags = USTCP_IN_CSUM_VERIFIED;
    if (in_flags) l->stats.rx_csum_offloaded++;
    if (info->gso_type == VIRTIO_NET_HDR_GSO_TCPV6) l->stats.rx_gso_frames++;
  }
  tun_packet_in(l, pkt, len, in_flags);
}

/* Batched reads (config batch_reads): up to rx_k frames per io_uring_enter.
 * rx_k follows the device: doubled after a batch that found a frame for every
 * read, else one more than it found, so an idle device costs two reads per
 * wake-up, as plain read() costs one read and one EAGAIN. */
static int read_uring(struct ustcp_loop *l)
{
  unsigned total = 0;
  /* No write is queued here: the stack flushes at the end of every event
   * (loop_flush), so the ring holds only these reads and res[k] is read k. */
  while (total < LOOP_READ_BATCH && l->batch_reads) {
    unsigned k = l->rx_k;
    int r = tun_read_vnet_uring(l->tun_fd, l->ring, l->rx_bufs, k, on_tun_vnet, l);
    l->stats.rx_batches++;
    if (r < 0) {
      batch_off(l, r);
      break;
    }
    total += (unsigned)r;
    if ((unsigned)r == k) {
      l->rx_k = k * 2 < LOOP_URING_READS ? k * 2 : LOOP_URING_READS;
      continue;
    }
    l->rx_k = (unsigned)r + 1 < 2 ? 2 : (unsigned)r + 1;
    return (int)total;
  }
  if (!l->batch_reads) {   /* the ring failed: the rest the plain way */
    int r = tun_read_batch_vnet(l->tun_fd, LOOP_READ_BATCH, on_tun_vnet, l);
    return r < 0 ? r : (int)total + r;
  }
  return (int)total;
}

static int ep_add(struct ustcp_loop *l, int fd, unsigned events)
{
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = events;
  ev.data.fd = fd;
  return epoll_ctl(l->ep_fd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int ustcp_loop_new(const struct ustcp_loop_config *c, struct ustcp_loop **out,
                   char *err, size_t errcap)
{
  *out = NULL;
  if (err && errcap) err[0] = 0;
  if (!c->addr) {
    snprintf(err, errcap, "the stack needs an address");
    return -EINVAL;
  }
  if (!(c->loss >= 0 && c->loss <= 1) || !(c->reorder >= 0 && c->reorder <= 1) ||
      !(c->corrupt >= 0 && c->corrupt <= 1) || !(c->duplicate >= 0 && c->duplicate <= 1)) {
    snprintf(err, errcap, "loss, reorder, corrupt and duplicate are probabilities (0..1)");
    return -EINVAL;
  }
  struct ustcp_loop *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  l->tun_fd = l->ep_fd = l->timer_fd = l->ctl_fd = -1;
  l->addr = c->addr;
  l->peer = c->peer;
  l->loss = c->loss;
  l->reorder = c->reorder;
  l->corrupt = c->corrupt;
  l->duplicate = c->duplicate;
  l->delay_us = c->delay_us;
  l->vnet = c->offload;
  int rc;
  if ((c->tap || c->packet) && c->multi_queue) {
    snprintf(err, errcap, "multiple queues are for TUN devices only, not with a TAP or packet link");
    rc = -EINVAL;
    goto fail;
  }
  if ((c->tap || c->packet) && c->offload) {
    snprintf(err, errcap, "offloads are for TUN devices only, not with a TAP or packet link");
    rc = -EINVAL;
    goto fail;
  }
  uint16_t mtu = c->mtu ? c->mtu : 1500;
  uint8_t if_mac[6] = {0};
  if (c->packet) {
    uint16_t if_mtu = 1500;
    rc = packet_open(c->tun_name, &l->pk, if_mac, &if_mtu, err, errcap);
    if (rc < 0) goto fail;
    snprintf(l->ifname, sizeof l->ifname, "%s", c->tun_name);
    mtu = if_mtu;                 /* the interface's: frames larger would not pass */
  } else {
    rc = c->tap            ? tap_open(c->tun_name, l->ifname, err, errcap)
         : c->multi_queue ? tun_open_queue(c->tun_name, l->vnet, l->ifname, err, errcap)
                          : tun_open_ex(c->tun_name, l->vnet, l->ifname, err, errcap);
    if (rc < 0) goto fail;
    l->tun_fd = rc;
  }
  uint8_t prefix = c->prefix_len ? c->prefix_len : 24;
  if ((c->tap || c->packet) && prefix > 30) {
    snprintf(err, errcap, "prefix length %u: want 1..30", prefix);
    rc = -EINVAL;
    goto fail;
  }
  /* The TAP device's kernel side is configured here: its address must be on
   * ustcp's link. (With packet, the interface is the user's: peer unused.) */
  if (c->tap && ((c->addr ^ c->peer) >> (32 - prefix)) != 0) {
    snprintf(err, errcap, "the kernel side's address and ustcp's must share the /%u prefix", prefix);
    rc = -EINVAL;
    goto fail;
  }
  if (c->configure && !c->packet) {
    rc = c->tap ? tap_configure(l->ifname, c->peer, prefix, mtu, err, errcap)
                : tun_configure(l->ifname, c->peer, c->addr, mtu, err, errcap);
    if (rc < 0) goto fail;
  }
  if (c->stack_cfg) l->cfg = *c->stack_cfg;
  else ustcp_config_default(&l->cfg);
  l->cfg.mtu = mtu;
  /* The out-of-order queue must hold a full window of segments: one dropped
   * inside the advertised window is lost to a peer without SACK until its RTO.
   * Against Linux on a TUN (1 MB buffer, 2% loss, 10 ms RTT) the default of 256
   * stalled a 20 MB download for tens of seconds of RTO backoff. Memory stays
   * bounded by the window: data past it is trimmed. */
  uint32_t window_segs = l->cfg.rmem_default / (uint32_t)(mtu - 40) + 1;
  if (l->cfg.max_ooo_segments < window_segs) l->cfg.max_ooo_segments = window_segs;
  uint64_t seed = c->seed;
  if (!seed && getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
    seed = ustcp_loop_now_us() ^ ((uint64_t)getpid() << 32);
  l->rng = seed ^ 0x6a09e667f3bcc908ull;
  if (c->tap || c->packet) {
    struct eth_config ec = {.ip = c->addr, .prefix_len = prefix, .gateway = c->gateway, .mtu = mtu};
    memcpy(ec.mac, c->mac, 6);
    static const uint8_t zero[6];
    if (!memcmp(ec.mac, zero, 6) && c->packet) memcpy(ec.mac, if_mac, 6);
    if (c->packet) ec.max_rx_frame = ETH_HDR_LEN + 65535;
    /* IPv6 on the link: neighbour discovery and DAD in eth/nd.c */
    memcpy(ec.ip6, c->addr6, 16);
    ec.prefix6_len = c->prefix6_len ? c->prefix6_len : 64;
    memcpy(ec.gateway6, c->gateway6, 16);
    ec.no_dad = c->no_dad;
    ec.seed = seed;
    if (!memcmp(ec.mac, zero, 6)) {
      /* locally administered, unicast (bits 1 and 0 of the first byte) */
      uint64_t r = rng_next(l);
      for (int i = 0; i < 6; i++) ec.mac[i] = (uint8_t)(r >> (8 * i));
      ec.mac[0] = (uint8_t)((ec.mac[0] & 0xfc) | 0x02);
    }
    l->eth = eth_new(&ec, eth_frame_out, eth_ip_in, l);
    if (!l->eth) {
      rc = -ENOMEM;
      snprintf(err, errcap, "out of memory");
      goto fail;
    }
  }
  l->st = ustcp_stack_new(&l->cfg, c->addr, seed, stack_out, l);
  if (!l->st) {
    snprintf(err, errcap, "cannot create the stack (bad configuration or no memory)");
    rc = -EINVAL;
    goto fail;
  }
  static const uint8_t zero6[16];
  if (memcmp(c->addr6, zero6, 16)) {
    rc = ustcp_stack_add_addr6(l->st, c->addr6);
    if (rc < 0) {
      snprintf(err, errcap, "bad IPv6 address for the stack");
      goto fail;
    }
    l->has6 = true;
    if (c->configure && memcmp(c->peer6, zero6, 16)) {
      rc = tun_configure6(l->ifname, c->peer6, c->prefix6_len ? c->prefix6_len : 64, err, errcap);
      if (rc < 0) goto fail;
    }
  }
  /* Send-side offload: the kernel cuts TCP frames of up to 64 KiB and
   * completes checksums (ustcp_set_link_offload: the copying output, which
   * replaces the gather one). Not under impairment, which works on the
   * packets as they go on the wire (one segment each). IPv6 frames go out
   * as GSO_TCPV6 (TSO6). Otherwise the gather output; framing (TAP,
   * AF_PACKET) and impairment need the packet flat. */
  bool out_tx = l->vnet && !impaired(l) && !c->offload_rx_only;
  if (out_tx)
    ustcp_set_link_offload(l->st, 65535, true, stack_out_tx, l);
  else if (!l->eth && !impaired(l))
    ustcp_set_output_iov(l->st, stack_out_iov, l);
  /* Batched writes (issue 15 point 4) where io_uring is allowed: the frames
   * one event sends go in one io_uring_enter at the stack's flush. Without
   * io_uring (ENOSYS, EPERM: kernel.io_uring_disabled, seccomp), one writev
   * per frame. Batched reads only when asked: they were slower here (see
   * ustcp_loop_config.batch_reads). */
  bool want_writes = out_tx && !c->no_batch, want_reads = l->vnet && c->batch_reads;
  if (want_writes || want_reads) l->ring = uring_new();
  if (l->ring && want_reads) {
    l->rx_bufs = malloc((size_t)LOOP_URING_READS * TUN_VNET_READ_LEN);
    l->batch_reads = l->rx_bufs != NULL;
    l->rx_k = 2;
  }
  if (l->ring && want_writes) {
    l->batch_writes = true;
    ustcp_set_output_flush(l->st, loop_flush, l);
  }
  if (l->ring && !l->batch_writes && !l->batch_reads) {
    uring_free(l->ring);
    l->ring = NULL;
  }
  if (c->pcap_path) {
    l->pcap = pcap_writer_open(c->pcap_path);
    if (!l->pcap) {
      rc = -errno;
      snprintf(err, errcap, "cannot write %s: %s", c->pcap_path, strerror(errno));
      goto fail;
    }
    ustcp_set_capture_cb(l->st, on_capture, l);
  }
  l->ep_fd = epoll_create1(EPOLL_CLOEXEC);
  l->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (l->ep_fd < 0 || l->timer_fd < 0) {
    rc = -errno;
    snprintf(err, errcap, "epoll/timerfd: %s", strerror(errno));
    goto fail;
  }
  if ((rc = ep_add(l, l->pk ? packet_fd(l->pk) : l->tun_fd, EPOLLIN)) < 0 ||
      (rc = ep_add(l, l->timer_fd, EPOLLIN)) < 0) {
    snprintf(err, errcap, "epoll_ctl: %s", strerror(-rc));
    goto fail;
  }
  ustcp_poll(l->st, ustcp_loop_now_us());   /* the stack's clock starts now */
  if (l->eth) eth_announce(l->eth);     /* gratuitous ARP, as Linux when an address comes up */
  if (l->eth && l->has6) {
    /* RFC 4862 §5.4: our IPv6 addresses are tentative until DAD ends (a
     * random delay below 1 s, one NS, 1 s with no answer). Like a script
     * that waits for `ip addr` to drop "tentative", the loop runs until then
     * (at most a few seconds), so that the first connect is not dropped. */
    eth_dad_start(l->eth, ustcp_loop_now_us());
    uint64_t until = ustcp_loop_now_us() + 4 * ETH_ND_RETRANS_US;
    while ((eth_addr6_state(l->eth, 0) == ETH_ADDR6_TENTATIVE ||
            eth_addr6_state(l->eth, 1) == ETH_ADDR6_TENTATIVE) &&
           ustcp_loop_now_us() < until) {
      rc = ustcp_loop_run_once(l, 100);
      if (rc < 0) {
        snprintf(err, errcap, "while waiting for DAD: %s", strerror(-rc));
        goto fail;
      }
    }
    if (eth_addr6_state(l->eth, 0) != ETH_ADDR6_PREFERRED) {
      char a[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, c->addr6, a, sizeof a);
      snprintf(err, errcap, "%s is in use on the link: duplicate address detected (RFC 4862 §5.4)", a);
      rc = -EADDRINUSE;
      goto fail;
    }
  }
  *out = l;
  return 0;
fail:
  ustcp_loop_free(l);
  return rc;
}

void ustcp_loop_free(struct ustcp_loop *l)
{
  if (!l) return;
  if (l->st) ustcp_stack_free(l->st);
  uring_free(l->ring);
  free(l->rx_bufs);
  for (int dir = 0; dir < 2; dir++)
    while (l->q[dir].head) {
      struct dpkt *d = l->q[dir].head;
      l->q[dir].head = d->next;
      free(d);
    }
  if (l->pcap) pcap_writer_close(l->pcap);
  if (l->ctl_fd >= 0) {
    close(l->ctl_fd);
    unlink(l->ctl_path);
  }
  if (l->timer_fd >= 0) close(l->timer_fd);
  if (l->ep_fd >= 0) close(l->ep_fd);
  if (l->tun_fd >= 0) close(l->tun_fd);
  packet_close(l->pk);
  eth_free(l->eth);
  free(l->watches);
  free(l);
}

struct ustcp_stack *ustcp_loop_stack(struct ustcp_loop *l) { return l->st; }
const char *ustcp_loop_ifname(const struct ustcp_loop *l) { return l->ifname; }
void ustcp_loop_stop(struct ustcp_loop *l) { l->stop = 1; }
bool ustcp_loop_stopped(const struct ustcp_loop *l) { return l->stop != 0; }
void ustcp_loop_set_timeout(struct ustcp_loop *l, int timeout_ms) { l->timeout_ms = timeout_ms; }

void ustcp_loop_get_stats(const struct ustcp_loop *l, struct ustcp_loop_stats *out)
{
  *out = l->stats;
}

int ustcp_loop_watch(struct ustcp_loop *l, int fd, unsigned events, ustcp_loop_fd_fn fn, void *ctx)
{
  if (l->nwatches == l->capwatches) {
    size_t ncap = l->capwatches ? l->capwatches * 2 : 8;
    struct watch *nv = realloc(l->watches, ncap * sizeof *nv);
    if (!nv) return -ENOMEM;
    l->watches = nv;
    l->capwatches = ncap;
  }
  int rc = ep_add(l, fd, events);
  if (rc < 0) return rc;
  l->watches[l->nwatches++] = (struct watch){fd, fn, ctx};
  return 0;
}

int ustcp_loop_unwatch(struct ustcp_loop *l, int fd)
{
  for (size_t i = 0; i < l->nwatches; i++)
    if (l->watches[i].fd == fd) {
      l->watches[i] = l->watches[--l->nwatches];
      epoll_ctl(l->ep_fd, EPOLL_CTL_DEL, fd, NULL);
      return 0;
    }
  return -ENOENT;
}

static uint64_t next_deadline(struct ustcp_loop *l)
{
  uint64_t d = ustcp_next_deadline(l->st);
  if (l->eth && eth_deadline(l->eth) < d) d = eth_deadline(l->eth);
  for (int dir = 0; dir < 2; dir++)
    if (l->q[dir].head && l->q[dir].head->at_us < d) d = l->q[dir].head->at_us;
  return d;
}

static void arm_timer(struct ustcp_loop *l, uint64_t at_us)
{
  if (at_us == USTCP_NO_DEADLINE) at_us = 0;
  if (at_us == l->armed_us) return;
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  if (at_us) {
    its.it_value.tv_sec = (time_t)(at_us / 1000000u);
    its.it_value.tv_nsec = (long)(at_us % 1000000u) * 1000;
  }
  if (timerfd_settime(l->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) == 0) l->armed_us = at_us;
}

static void ctl_accept(struct ustcp_loop *l);

/* Socket calls happen at the time of the stack's last ustcp_input/ustcp_poll
 * (ustcp.h). After the loop slept, that time is stale: a connect or send would
 * arm its retransmission timer in the past and the next round would resend at
 * once (seen as a second SYN 25 us after the first). So the clock is brought
 * up to date (due timers run) before anything that may make a socket call: the
 * application's callbacks for watched descriptors, and each blocking call. */
static void sync_clock(struct ustcp_loop *l)
{
  ustcp_poll(l->st, ustcp_loop_now_us());
}

int ustcp_loop_run_once(struct ustcp_loop *l, int timeout_ms)
{
  if (l->stop) return -EINTR;
  uint64_t now = ustcp_loop_now_us();
  uint64_t dl = next_deadline(l);
  if (dl != USTCP_NO_DEADLINE && dl <= now) {
    timeout_ms = 0;                 /* something is due already */
  } else {
    arm_timer(l, dl);
  }
  struct epoll_event evs[32];
  int n = epoll_wait(l->ep_fd, evs, 32, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return l->stop ? -EINTR : 0;
    return -errno;
  }
  for (int i = 0; i < n; i++) {
    int fd = evs[i].data.fd;
    if (l->pk && fd == packet_fd(l->pk)) {
      packet_read_batch(l->pk, LOOP_READ_BATCH, on_packet_frame, l);
    } else if (fd == l->tun_fd) {
      int r = l->batch_reads ? read_uring(l)
              : l->vnet ? tun_read_batch_vnet(l->tun_fd, LOOP_READ_BATCH, on_tun_vnet, l)
              : l->eth ? tun_read_batch(l->tun_fd, LOOP_READ_BATCH, on_tap_frame, l)
                       : tun_read_batch(l->tun_fd, LOOP_READ_BATCH, on_tun_packet, l);
      if (r < 0 && r != -EINTR) return r;
    } else if (fd == l->timer_fd) {
      uint64_t ticks;
      if (read(l->timer_fd, &ticks, sizeof ticks) < 0) { /* EAGAIN: already consumed */ }
      l->armed_us = 0;
    } else if (fd == l->ctl_fd) {
      ctl_accept(l);
    } else {
      sync_clock(l);
      for (size_t k = 0; k < l->nwatches; k++)
        if (l->watches[k].fd == fd) {
          l->watches[k].fn(l->watches[k].ctx, fd, evs[i].events);
          break;
        }
    }
  }
  now = ustcp_loop_now_us();
  release_due(l, now);
  ustcp_poll(l->st, now);
  if (l->eth) eth_poll(l->eth, now);
  /* What this round did may have moved the deadline (an RTO armed by a send):
   * the timerfd follows now, so a caller that waits on ustcp_loop_fd() between
   * rounds is woken in time. */
  uint64_t next = next_deadline(l);
  if (next == USTCP_NO_DEADLINE || next > now) arm_timer(l, next);
  return l->stop ? -EINTR : 0;
}

int ustcp_loop_fd(const struct ustcp_loop *l) { return l->ep_fd; }

int ustcp_loop_run(struct ustcp_loop *l)
{
  for (;;) {
    int rc = ustcp_loop_run_once(l, -1);
    if (rc == -EINTR) return 0;
    if (rc < 0) return rc;
  }
}

/* ---- blocking calls ---- */

int ustcp_loop_wait(struct ustcp_loop *l, int fd, unsigned events)
{
  uint64_t end = l->timeout_ms > 0 ? ustcp_loop_now_us() + (uint64_t)l->timeout_ms * 1000u : 0;
  for (;;) {
    int ev = ustcp_sock_events(l->st, fd);
    if (ev < 0) return ev;
    if ((unsigned)ev & (events | USTCP_POLLERR | USTCP_POLLHUP)) return ev;
    int wait_ms = -1;
    if (end) {
      uint64_t now = ustcp_loop_now_us();
      if (now >= end) return -ETIMEDOUT;
      wait_ms = (int)((end - now + 999) / 1000);
    }
    int rc = ustcp_loop_run_once(l, wait_ms);
    if (rc < 0) return rc;
  }
}

int ustcp_loop_accept(struct ustcp_loop *l, int fd, struct ustcp_addr *peer)
{
  sync_clock(l);
  for (;;) {
    int r = ustcp_accept(l->st, fd, peer);
    if (r != -EAGAIN) return r;
    int w = ustcp_loop_wait(l, fd, USTCP_POLLIN);
    if (w < 0) return w;
  }
}

int ustcp_loop_connect(struct ustcp_loop *l, int fd, const struct ustcp_addr *addr)
{
  sync_clock(l);
  int r = ustcp_connect(l->st, fd, addr);
  if (r != -EINPROGRESS) return r;
  int w = ustcp_loop_wait(l, fd, USTCP_POLLOUT);
  if (w < 0) return w;
  /* A second connect() reports the outcome once: 0, or the attempt's error. */
  r = ustcp_connect(l->st, fd, addr);
  return r == -EISCONN ? 0 : r;
}

ssize_t ustcp_loop_recv(struct ustcp_loop *l, int fd, void *buf, size_t len)
{
  sync_clock(l);
  for (;;) {
    ssize_t r = ustcp_recv(l->st, fd, buf, len, 0);
    if (r != -EAGAIN) return r;
    int w = ustcp_loop_wait(l, fd, USTCP_POLLIN | USTCP_POLLRDHUP);
    if (w < 0) return w;
  }
}

ssize_t ustcp_loop_send(struct ustcp_loop *l, int fd, const void *buf, size_t len)
{
  sync_clock(l);
  size_t off = 0;
  for (;;) {
    if (off == len) return (ssize_t)len;
    ssize_t r = ustcp_send(l->st, fd, (const uint8_t *)buf + off, len - off, 0);
    if (r > 0) {
      off += (size_t)r;
      continue;
    }
    if (r != -EAGAIN) return off ? (ssize_t)off : r;
    int w = ustcp_loop_wait(l, fd, USTCP_POLLOUT);
    if (w < 0) return off ? (ssize_t)off : w;
  }
}

int ustcp_loop_close(struct ustcp_loop *l, int fd)
{
  sync_clock(l);
  return ustcp_close(l->st, fd);
}

static bool closing_state(enum ustcp_state s)
{
  return s == USTCP_FIN_WAIT_1 || s == USTCP_FIN_WAIT_2 || s == USTCP_CLOSING ||
         s == USTCP_LAST_ACK;
}

int ustcp_loop_drain(struct ustcp_loop *l, int timeout_ms)
{
  uint64_t end = ustcp_loop_now_us() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000u;
  struct ustcp_sock_row *rows = NULL;
  size_t cap = 0;
  int rc = 0;
  for (;;) {
    size_t n = ustcp_sock_table(l->st, rows, cap);
    if (n > cap) {
      free(rows);
      cap = n * 2;
      rows = malloc(cap * sizeof *rows);
      if (!rows) return -ENOMEM;
      continue;
    }
    bool busy = false;
    for (size_t i = 0; i < n; i++)
      if (closing_state(rows[i].state)) busy = true;
    if (!busy) break;
    uint64_t now = ustcp_loop_now_us();
    if (now >= end) { rc = -ETIMEDOUT; break; }
    rc = ustcp_loop_run_once(l, (int)((end - now + 999) / 1000));
    if (rc < 0) break;
  }
  free(rows);
  return rc;
}

/* ---- the control socket and the report ---- */

static void addr_port(char *buf, size_t cap, const struct ustcp_addr *a, bool listen_peer)
{
  char ip[INET6_ADDRSTRLEN + 2];
  if (a->family == USTCP_AF_INET6) {
    char h[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, a->ip6, h, sizeof h);
    snprintf(ip, sizeof ip, "[%s]", h);   /* as ss prints IPv6 */
  } else {
    ipv4_str(a->ip, ip, sizeof ip);
  }
  if (listen_peer) snprintf(buf, cap, "%s:*", ip);
  else snprintf(buf, cap, "%s:%u", ip, a->port);
}

void ustcp_loop_report(struct ustcp_loop *l, void *file)
{
  FILE *f = file;
  char a[16], p[16];
  fprintf(f, "ustcp %s %s peer %s pid %ld\n", l->ifname, ipv4_str(l->addr, a, sizeof a),
          ipv4_str(l->peer, p, sizeof p), (long)getpid());
  uint8_t a6[16];
  if (l->has6 && ustcp_local_ip6(l->st, a6)) {
    char t6[INET6_ADDRSTRLEN];
    fprintf(f, "ustcp %s addr6 %s\n", l->ifname, inet_ntop(AF_INET6, a6, t6, sizeof t6));
  }
  size_t cap = 64;
  struct ustcp_sock_row *rows = NULL;
  size_t n;
  for (;;) {
    struct ustcp_sock_row *nr = realloc(rows, cap * sizeof *rows);
    if (!nr) {                    /* the old block is still ours */
      free(rows);
      return;
    }
    rows = nr;
    n = ustcp_sock_table(l->st, rows, cap);
    if (n <= cap) break;
    cap = n;
  }
  fprintf(f, "%-12s %7s %7s %-22s %-22s %s\n", "State", "Recv-Q", "Send-Q",
          "Local Address:Port", "Peer Address:Port", "Fd");
  for (size_t i = 0; i < n; i++) {
    const struct ustcp_sock_row *r = &rows[i];
    char la[64], ra[64];
    addr_port(la, sizeof la, &r->local, false);
    addr_port(ra, sizeof ra, &r->remote, r->state == USTCP_LISTEN || r->remote.port == 0);
    char fdtxt[16];
    if (r->fd >= 0) snprintf(fdtxt, sizeof fdtxt, "%d", r->fd);
    else snprintf(fdtxt, sizeof fdtxt, "-");
    fprintf(f, "%-12s %7u %7u %-22s %-22s %s\n", ustcp_state_name(r->state), r->recv_q,
            r->send_q, la, ra, fdtxt);
  }
  free(rows);
  struct ustcp_stats s;
  ustcp_get_stats(l->st, &s);
  fprintf(f, "--- counters\n");
#define C(x) fprintf(f, "%s %llu\n", #x, (unsigned long long)s.x)
  C(ip_in); C(ip_out); C(ip_bad); C(ip_not_for_us); C(ip_frag_dropped);
  C(tcp_in); C(tcp_out); C(tcp_bad_checksum); C(tcp_malformed); C(tcp_rst_out); C(tcp_rst_in);
  C(active_opens); C(passive_opens); C(attempt_fails); C(estab_resets); C(retrans_segs);
  C(syn_queue_drops); C(accept_queue_drops); C(syncookies_sent); C(syncookies_recv);
  C(syncookies_failed); C(challenge_acks); C(challenge_acks_limited); C(ooo_dropped);
  C(paws_dropped); C(icmp_in); C(icmp_out); C(conns_alive); C(mem_bytes); C(mem_peak_bytes);
  C(oow_acks_limited); C(syn_bad_flags);
  C(ip_martian_src); C(ip_source_routed); C(ip_out_martian); C(loop_budget_hits); C(loop_dropped);
  C(icmp_out_ratelimited); C(icmp_err_unmatched);
  C(ip_frag_reassembled); C(ip_frag_overlaps); C(ip_frag_timeouts);
  C(buf_bytes_reserved); C(tcp_mem_pressures);
  C(tx_bytes_copied); C(rx_bytes_copied); C(buf_grow_copied); C(out_iov_stale);
  if (l->has6) {                    /* IPv6 (issue 16): only where it is on */
    C(ip6_in); C(ip6_out); C(ip6_bad); C(ip6_not_for_us); C(ip6_martian_src);
    C(ip6_ext_dropped); C(ip6_frag_dropped); C(icmp6_in); C(icmp6_out); C(icmp6_ptb);
  }
#undef C
  const struct ustcp_loop_stats *k = &l->stats;
#define C(x) fprintf(f, "link_%s %llu\n", #x, (unsigned long long)k->x)
  C(rx_packets); C(rx_bytes); C(tx_packets); C(tx_bytes); C(rx_not_ipv4); C(tx_errors);
  C(impair_dropped); C(impair_reordered); C(impair_delayed); C(impair_corrupted);
  C(impair_duplicated); C(rx_gso_frames); C(rx_csum_offloaded); C(tx_gso_frames);
  C(tx_csum_offloaded); C(rx_frames); C(tx_frames); C(rx_batches); C(tx_batches);
#undef C
  if (l->eth) {
    const struct eth_stats *e = eth_get_stats(l->eth);
#define C(x) fprintf(f, "eth_%s %llu\n", #x, (unsigned long long)e->x)
    C(rx_frames); C(tx_frames); C(rx_short); C(rx_oversize); C(rx_not_for_us); C(rx_vlan);
    C(rx_ipv6); C(rx_unknown_type); C(rx_arp_bad); C(rx_arp_requests); C(rx_arp_replies);
    C(tx_arp_requests); C(tx_arp_replies); C(no_route); C(tx_oversize); C(arp_failed);
    C(arp_queue_full); C(arp_evictions);
    C(rx_ip6_mcast); C(rx_nd_bad); C(rx_nd_other); C(rx_ns); C(rx_na); C(tx_ns); C(tx_na);
    C(rx_ns_not_ours); C(rx_na_no_entry); C(rx_na_our_addr); C(nd_failed); C(nd_queue_full);
    C(nd_evictions); C(dad_duplicates); C(tx_tentative);
#undef C
    fprintf(f, "eth_arp_entries %zu\n", eth_arp_count(l->eth));
    fprintf(f, "eth_nd_entries %zu\n", eth_nd_count(l->eth));
  }
}

static void ctl_accept(struct ustcp_loop *l)
{
  for (int k = 0; k < 16; k++) {
    int c = accept4(l->ctl_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) return;
    /* A client that does not read cannot stall the stack for more than a second. */
    struct timeval tv = {1, 0};
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m) {
      ustcp_loop_report(l, m);
      fclose(m);
      size_t off = 0;
      while (off < len) {
        ssize_t w = send(c, text + off, len - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
      }
      free(text);
    }
    close(c);
  }
}

int ustcp_loop_ctl_open(struct ustcp_loop *l, const char *path, char *err, size_t errcap)
{
  struct sockaddr_un sun;
  memset(&sun, 0, sizeof sun);
  sun.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof sun.sun_path) {
    snprintf(err, errcap, "control socket path too long: %s", path);
    return -ENAMETOOLONG;
  }
  strcpy(sun.sun_path, path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    snprintf(err, errcap, "socket(AF_UNIX): %s", strerror(errno));
    return -errno;
  }
  int rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
  if (rc < 0 && errno == EADDRINUSE) {
    /* A socket file is there: stale (nobody answers) or another running ustcp. */
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int alive = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
    if (probe >= 0) close(probe);
    if (alive) {
      close(fd);
      snprintf(err, errcap, "control socket %s is in use by another running ustcp", path);
      return -EADDRINUSE;
    }
    unlink(path);
    rc = bind(fd, (struct sockaddr *)&sun, sizeof sun);
  }
  if (rc < 0) {
    int e = errno;
    close(fd);
    snprintf(err, errcap, "cannot create control socket %s: %s", path, strerror(e));
    return -e;
  }
  if (listen(fd, 16) < 0) {
    int e = errno;
    close(fd);
    unlink(path);
    snprintf(err, errcap, "listen on %s: %s", path, strerror(e));
    return -e;
  }
  int erc = ep_add(l, fd, EPOLLIN);
  if (erc < 0) {
    close(fd);
    unlink(path);
    snprintf(err, errcap, "epoll_ctl: %s", strerror(-erc));
    return erc;
  }
  l->ctl_fd = fd;
  strcpy(l->ctl_path, path);
  return 0;
}
