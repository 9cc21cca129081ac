/* src/link/packet.c: see packet.h.
 *
 *   packet_open   socket(AF_PACKET, SOCK_RAW, ETH_P_ALL) -> PACKET_VERSION
 *                 TPACKET_V3 -> PACKET_RX_RING (16 blocks of 256 KiB, a block
 *                 handed over when full or after 1 ms) -> mmap -> bind to the
 *                 interface -> PACKET_IGNORE_OUTGOING; SIOCGIFHWADDR, SIOCGIFMTU
 *   packet_read_batch  walks the blocks the kernel marked TP_STATUS_USER, frame
 *                 by frame (tp_next_offset), and gives each block back
 *                 (TP_STATUS_KERNEL) once its frames were handled
 *   packet_write  send() of one frame
 */
#include "link/packet.h"
#include "link/errmsg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define RING_BLOCK_SIZE (1u << 18)
#define RING_BLOCKS 16u
#define RING_FRAME_SIZE 2048u

struct packet_link {
  int fd;
  uint8_t *ring;
  size_t ring_len;
  unsigned cur;               /* the next block to look at */
};


int packet_open(const char *ifname, struct packet_link **out, uint8_t mac[6], uint16_t *mtu,
                char *err, size_t errcap)
{
  *out = NULL;
  if (!ifname || !*ifname || strlen(ifname) >= IFNAMSIZ)
    return link_fail(EINVAL, err, errcap, "bad interface name '%s'", ifname ? ifname : "");
  unsigned ifindex = if_nametoindex(ifname);
  if (!ifindex) return link_fail(ENODEV, err, errcap, "no interface %s in this network namespace", ifname);
  struct packet_link *p = calloc(1, sizeof *p);
  if (!p) return link_fail(ENOMEM, err, errcap, "out of memory");
  p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  int rc;
  if (p->fd < 0) {
    rc = errno;
    free(p);
    if (rc == EPERM || rc == EACCES)
      return link_fail(rc, err, errcap, "AF_PACKET socket: permission denied (needs CAP_NET_RAW)");
    return link_fail(rc, err, errcap, "AF_PACKET socket: %s", strerror(rc));
  }
  int v = TPACKET_V3;
  struct tpacket_req3 req;
  memset(&req, 0, sizeof req);
  req.tp_block_size = RING_BLOCK_SIZE;
  req.tp_block_nr = RING_BLOCKS;
  req.tp_frame_size = RING_FRAME_SIZE;
  req.tp_frame_nr = RING_BLOCK_SIZE / RING_FRAME_SIZE * RING_BLOCKS;
  req.tp_retire_blk_tov = 1;  /* ms: a block with any frame is handed over soon */
  if (setsockopt(p->fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) < 0 ||
      setsockopt(p->fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof req) < 0) {
    rc = errno;
    packet_close(p);
    return link_fail(rc, err, errcap, "TPACKET_V3 receive ring: %s", strerror(rc));
  }
  p->ring_len = (size_t)RING_BLOCK_SIZE * RING_BLOCKS;
  void *ring = mmap(NULL, p->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, p->fd, 0);
  if (ring == MAP_FAILED) {
    rc = errno;
    p->ring_len = 0;
    packet_close(p);
    return link_fail(rc, err, errcap, "mmap of the receive ring: %s", strerror(rc));
  }
  p->ring = ring;
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = (int)ifindex;
  if (bind(p->fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    rc = errno;
    packet_close(p);
    return link_fail(rc, err, errcap, "bind to %s: %s", ifname, strerror(rc));
  }
  int one = 1;
  /* Linux 4.20+: without it, the kernel's own frames on the interface would
   * come back to the ring; older kernels: they are not for ustcp's MAC and
   * eth.c drops them (counted as not for us). */
  (void)setsockopt(p->fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, strlen(ifname));
  if (ioctl(p->fd, SIOCGIFHWADDR, &ifr) < 0 || ifr.ifr_hwaddr.sa_family != 1 /* ARPHRD_ETHER */) {
    rc = errno ? errno : EINVAL;
    packet_close(p);
    return link_fail(rc, err, errcap, "%s is not an Ethernet interface", ifname);
  }
  memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
  memset(&ifr, 0, sizeof ifr);
  memcpy(ifr.ifr_name, ifname, strlen(ifname));
  *mtu = ioctl(p->fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 0 && ifr.ifr_mtu <= 65535
           ? (uint16_t)ifr.ifr_mtu : 1500;
  *out = p;
  return 0;
}

void packet_close(struct packet_link *p)
{
  if (!p) return;
  if (p->ring) munmap(p->ring, p->ring_len);
  if (p->fd >= 0) close(p->fd);
  free(p);
}

int packet_fd(const struct packet_link *p) { return p->fd; }

int packet_read_batch(struct packet_link *p, unsigned max, packet_frame_fn fn, void *ctx)
{
  unsigned n = 0;
  while (n < max) {
    struct tpacket_block_desc *bd =
        (struct tpacket_block_desc *)(void *)(p->ring + (size_t)p->cur * RING_BLOCK_SIZE);
    if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) break;
    uint32_t npkts = bd->hdr.bh1.num_pkts;
    uint32_t off = bd->hdr.bh1.offset_to_first_pkt;
    for (uint32_t i = 0; i < npkts && off < RING_BLOCK_SIZE; i++) {
      struct tpacket3_hdr *h = (struct tpacket3_hdr *)(void *)((uint8_t *)bd + off);
      /* The ring is the kernel's, but check every offset against the block. */
      if ((size_t)off + h->tp_mac + h->tp_snaplen <= RING_BLOCK_SIZE) {
        fn(ctx, (uint8_t *)h + h->tp_mac, h->tp_snaplen,
           (h->tp_status & (TP_STATUS_CSUMNOTREADY | TP_STATUS_CSUM_VALID)) != 0);
        n++;
      }
      if (!h->tp_next_offset) break;
      off += h->tp_next_offset;
    }
    __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    p->cur = (p->cur + 1) % RING_BLOCKS;
  }
  return (int)n;
}

int packet_write(struct packet_link *p, const uint8_t *frame, size_t len)
{
  for (;;) {
    if (send(p->fd, frame, len, 0) >= 0) return 0;
    if (errno == EINTR) continue;
    return -errno;
  }
}
