/* src/link/tun.c: see tun.h.
 *
 *   tun_open       open("/dev/net/tun") -> ioctl(TUNSETIFF, IFF_TUN|IFF_NO_PI)
 *   tun_configure  AF_INET socket -> SIOCSIFMTU, SIOCSIFADDR (kernel side),
 *                  SIOCSIFDSTADDR (peer = ustcp), SIOCSIFNETMASK (/32),
 *                  SIOCGIFFLAGS + SIOCSIFFLAGS (IFF_UP|IFF_RUNNING)
 *   tun_read_batch read() until EAGAIN (each read is one packet)
 *   tun_write      write() of one packet; tun_writev: one packet from a gather
 *                  list (the stack's gather output: headers + send-ring slices)
 *   with vnet (tun_open_ex): IFF_VNET_HDR at TUNSETIFF, then
 *                  TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6); every read starts with
 *                  a struct virtio_net_hdr (tun_read_batch_vnet), every write
 *                  gets one (tun_write_vnet: writev of header + packet, no copy)
 *   tun_read_vnet_uring  several reads in one io_uring_enter (src/link/uring.h)
 */
#include "link/tun.h"
#include "link/errmsg.h"
#include "link/uring.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define TUN_DEV "/dev/net/tun"


int tun_open(const char *name, char ifname[IFNAMSIZ], char *err, size_t errcap)
{
  return tun_open_ex(name, false, ifname, err, errcap);
}

static int open_dev(const char *name, bool vnet, bool tap, bool mq, char ifname[IFNAMSIZ],
                    char *err, size_t errcap);

int tun_open_ex(const char *name, bool vnet, char ifname[IFNAMSIZ], char *err, size_t errcap)
{
  return open_dev(name, vnet, false, false, ifname, err, errcap);
}

int tun_open_queue(const char *name, bool vnet, char ifname[IFNAMSIZ], char *err, size_t errcap)
{
  return open_dev(name, vnet, false, true, ifname, err, errcap);
}

int tap_open(const char *name, char ifname[IFNAMSIZ], char *err, size_t errcap)
{
  return open_dev(name, false, true, false, ifname, err, errcap);
}

static int open_dev(const char *name, bool vnet, bool tap, bool mq, char ifname[IFNAMSIZ],
                    char *err, size_t errcap)
{
  if (name && strlen(name) >= IFNAMSIZ)
    return link_fail(EINVAL, err, errcap, "device name '%s' is too long (at most %d characters)",
                name, IFNAMSIZ - 1);
  int fd = open(TUN_DEV, O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENODEV || e == ENXIO)
      return link_fail(e, err, errcap,
                  "%s is missing (%s): load the tun module (modprobe tun) or create the node "
                  "(mkdir -p /dev/net && mknod /dev/net/tun c 10 200)", TUN_DEV, strerror(e));
    if (e == EACCES || e == EPERM)
      return link_fail(e, err, errcap,
                  "permission denied opening %s: run as root (CAP_NET_ADMIN), or have root "
                  "create a device you own: ip tuntap add dev NAME mode tun user $USER", TUN_DEV);
    return link_fail(e, err, errcap, "cannot open %s: %s", TUN_DEV, strerror(e));
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = (short)((tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0) |
                          (mq ? IFF_MULTI_QUEUE : 0));
  if (name && *name) memcpy(ifr.ifr_name, name, strlen(name));
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    close(fd);
    const char *n = name && *name ? name : "(new)";
    if (e == EPERM || e == EACCES)
      return link_fail(e, err, errcap,
                  "TUNSETIFF %s: permission denied: creating a device needs CAP_NET_ADMIN, "
                  "and an existing one must belong to you (ip tuntap add dev %s mode tun user $USER)",
                  n, n);
    if (e == EBUSY)
      return link_fail(e, err, errcap, "TUNSETIFF %s: device busy (another program has it open)", n);
    if (e == EINVAL && mq)
      return link_fail(e, err, errcap, "TUNSETIFF %s: invalid for a queue (a device opened without "
                  "multiple queues, one with other flags, or not a TUN device)", n);
    if (e == EINVAL)
      return link_fail(e, err, errcap, "TUNSETIFF %s: invalid (is it a %s device, or a name in use "
                  "by another kind of interface?)", n, tap ? "TUN" : "TAP");
    return link_fail(e, err, errcap, "TUNSETIFF %s: %s", n, strerror(e));
  }
  if (vnet) {
    /* The legacy 10-byte header (the default size), in host byte order. The
     * offloads make the kernel hand over unsegmented TCP GSO frames (IPv4, IPv6) and
     * leave their checksum to us (CHECKSUM_PARTIAL, flag NEEDS_CSUM), as to a
     * virtio NIC (tun_set_offload in drivers/net/tun.c). */
    int hsz = (int)sizeof(struct virtio_net_hdr);
    if (ioctl(fd, TUNSETVNETHDRSZ, &hsz) < 0 ||
        ioctl(fd, TUNSETOFFLOAD, (unsigned long)(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6)) < 0) {
      int e = errno;
      close(fd);
      return link_fail(e, err, errcap, "TUNSETOFFLOAD on %s: %s (a kernel without TUN offloads: "
                  "run without them)", ifr.ifr_name, strerror(e));
    }
  }
  memcpy(ifname, ifr.ifr_name, IFNAMSIZ);
  ifname[IFNAMSIZ - 1] = 0;
  return fd;
}

static void set_addr(struct sockaddr *sa, uint32_t ip)
{
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(ip);
  memcpy(sa, &sin, sizeof sin);
}

static int ifreq_ioctl(int sock, unsigned long req, const char *reqname, struct ifreq *ifr,
                       char *err, size_t errcap)
{
  if (ioctl(sock, req, ifr) == 0) return 0;
  int e = errno;
  if (e == EPERM || e == EACCES)
    return link_fail(e, err, errcap, "%s on %s: permission denied (configuring the device needs "
                "CAP_NET_ADMIN; without it, configure it beforehand and skip this step)",
                reqname, ifr->ifr_name);
  return link_fail(e, err, errcap, "%s on %s: %s", reqname, ifr->ifr_name, strerror(e));
}

static int configure_dev(const char *ifname, uint32_t kernel_ip, uint32_t peer_ip,
                         uint32_t netmask, uint16_t mtu, char *err, size_t errcap);

int tun_configure(const char *ifname, uint32_t kernel_ip, uint32_t peer_ip, uint16_t mtu,
                  char *err, size_t errcap)
{
  return configure_dev(ifname, kernel_ip, peer_ip, 0xffffffffu, mtu, err, errcap);
}

/* linux/ipv6.h's struct in6_ifreq (that header clashes with netinet/in.h) */
struct ustcp_in6_ifreq {
  struct in6_addr ifr6_addr;
  uint32_t ifr6_prefixlen;
  int ifr6_ifindex;
};

int tun_configure6(const char *ifname, const uint8_t kernel_ip6[16], uint8_t prefix_len,
                   char *err, size_t errcap)
{
  unsigned idx = if_nametoindex(ifname);
  if (!idx) return link_fail(errno, err, errcap, "%s: %s", ifname, strerror(errno));
  /* configure_dev turned IPv6 off on the device (no router solicitations or MLD
   * reports down an IPv4-only tunnel); IPv6 over it needs it back on. */
  char path[128];
  snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
  int f = open(path, O_WRONLY | O_CLOEXEC);
  if (f >= 0) {
    if (write(f, "0\n", 2) < 0) { /* the ioctl below reports it */ }
    close(f);
  }
  int sock = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return link_fail(errno, err, errcap, "socket(AF_INET6): %s", strerror(errno));
  struct ustcp_in6_ifreq r;
  memset(&r, 0, sizeof r);
  memcpy(&r.ifr6_addr, kernel_ip6, 16);
  r.ifr6_prefixlen = prefix_len;
  r.ifr6_ifindex = (int)idx;
  int rc = 0;
  if (ioctl(sock, SIOCSIFADDR, &r) < 0 && errno != EEXIST)
    rc = link_fail(errno, err, errcap, "SIOCSIFADDR (IPv6) on %s: %s%s", ifname, strerror(errno),
                   errno == EPERM || errno == EACCES ? " (needs CAP_NET_ADMIN)" : "");
  close(sock);
  return rc;
}

int tap_configure(const char *ifname, uint32_t kernel_ip, uint8_t prefix_len, uint16_t mtu,
                  char *err, size_t errcap)
{
  if (prefix_len < 1 || prefix_len > 30)
    return link_fail(EINVAL, err, errcap, "prefix length %u: want 1..30", prefix_len);
  return configure_dev(ifname, kernel_ip, 0, ~((1u << (32 - prefix_len)) - 1), mtu, err, errcap);
}

/* peer_ip 0: a broadcast device (TAP), the address with its netmask makes the
 * on-link route; else point-to-point (TUN). */
static int configure_dev(const char *ifname, uint32_t kernel_ip, uint32_t peer_ip,
                         uint32_t netmask, uint16_t mtu, char *err, size_t errcap)
{
  int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return link_fail(errno, err, errcap, "socket(AF_INET): %s", strerror(errno));
  struct ifreq ifr;
  int rc = 0;
#define IFR_RESET() do { memset(&ifr, 0, sizeof ifr); \
    memcpy(ifr.ifr_name, ifname, strnlen(ifname, IFNAMSIZ - 1)); } while (0)
  if (mtu) {
    IFR_RESET();
    ifr.ifr_mtu = mtu;
    if ((rc = ifreq_ioctl(sock, SIOCSIFMTU, "SIOCSIFMTU", &ifr, err, errcap))) goto out;
  }
  /* A TUN device is IFF_POINTOPOINT: SIOCSIFADDR makes a /32 local address and
   * SIOCSIFDSTADDR the peer, which installs the host route to ustcp's address
   * (the same as `ip addr add KERNEL peer PEER dev NAME`). */
  IFR_RESET();
  set_addr(&ifr.ifr_addr, kernel_ip);
  if ((rc = ifreq_ioctl(sock, SIOCSIFADDR, "SIOCSIFADDR", &ifr, err, errcap))) goto out;
  if (peer_ip) {
    IFR_RESET();
    set_addr(&ifr.ifr_dstaddr, peer_ip);
    if ((rc = ifreq_ioctl(sock, SIOCSIFDSTADDR, "SIOCSIFDSTADDR", &ifr, err, errcap))) goto out;
  }
  IFR_RESET();
  set_addr(&ifr.ifr_netmask, netmask);
  if ((rc = ifreq_ioctl(sock, SIOCSIFNETMASK, "SIOCSIFNETMASK", &ifr, err, errcap))) goto out;
  /* Best effort, before the device goes up: with IPv6 off the kernel sends no
   * router solicitations or MLD reports down the tunnel. */
  {
    char path[128];
    snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
    int f = open(path, O_WRONLY | O_CLOEXEC);
    if (f >= 0) {
      if (write(f, "1\n", 2) < 0) { /* not fatal */ }
      close(f);
    }
  }
  IFR_RESET();
  if ((rc = ifreq_ioctl(sock, SIOCGIFFLAGS, "SIOCGIFFLAGS", &ifr, err, errcap))) goto out;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if ((rc = ifreq_ioctl(sock, SIOCSIFFLAGS, "SIOCSIFFLAGS", &ifr, err, errcap))) goto out;
#undef IFR_RESET
out:
  close(sock);
  return rc;
}

int tun_read_batch(int fd, unsigned max, tun_packet_fn fn, void *ctx)
{
  static _Thread_local uint8_t buf[65536];
  unsigned n = 0;
  while (n < max) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return n ? (int)n : -errno;
    }
    if (r == 0) break;
    n++;
    fn(ctx, buf, (size_t)r);
  }
  return (int)n;
}

int tun_write(int fd, const uint8_t *pkt, size_t len)
{
  struct iovec iov = {(void *)(uintptr_t)pkt, len};
  return tun_writev(fd, &iov, 1);
}

int tun_writev(int fd, const struct iovec *iov, int cnt)
{
  for (;;) {
    ssize_t w = writev(fd, iov, cnt);
    if (w >= 0) return 0;
    if (errno == EINTR) continue;
    return -errno;
  }
}

/* One read of a vnet device: the header, then the packet. */
static void vnet_frame(const uint8_t *buf, size_t r, tun_vnet_fn fn, void *ctx)
{
  if (r < sizeof(struct virtio_net_hdr)) return;   /* cannot happen; not a packet */
  struct virtio_net_hdr h;
  memcpy(&h, buf, sizeof h);
  struct tun_rx_info info = {
    .flags = h.flags, .gso_type = h.gso_type, .hdr_len = h.hdr_len, .gso_size = h.gso_size,
    .csum_start = h.csum_start, .csum_offset = h.csum_offset,
  };
  fn(ctx, &info, buf + sizeof h, r - sizeof h);
}

int tun_read_batch_vnet(int fd, unsigned max, tun_vnet_fn fn, void *ctx)
{
  /* A GSO frame is at most 64 KiB of IPv4 packet, after the header. */
  static _Thread_local uint8_t buf[TUN_VNET_READ_LEN];
  unsigned n = 0;
  while (n < max) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return n ? (int)n : -errno;
    }
    if (r == 0) break;
    n++;
    vnet_frame(buf, (size_t)r, fn, ctx);
  }
  return (int)n;
}

int tun_read_vnet_uring(int fd, struct uring *u, uint8_t *bufs, unsigned k, tun_vnet_fn fn,
                        void *ctx)
{
  int32_t res[URING_MAX];
  if (k > URING_MAX) k = URING_MAX;
  for (unsigned i = 0; i < k; i++)
    if (uring_queue_read(u, fd, bufs + (size_t)i * TUN_VNET_READ_LEN, TUN_VNET_READ_LEN) < 0)
      break;
  int ran = uring_run(u, res);
  if (ran < 0) return ran;
  /* Issued in order on a non-blocking device, so the frames are in the
   * device's order; once one finds the queue empty, a later one may still
   * find a frame that came in meanwhile, and that is in order too. */
  unsigned n = 0;
  int err = 0;
  for (int i = 0; i < ran; i++) {
    if (res[i] > 0) {
      n++;
      vnet_frame(bufs + (size_t)i * TUN_VNET_READ_LEN, (size_t)res[i], fn, ctx);
    } else if (res[i] < 0 && res[i] != -EAGAIN && res[i] != -EINTR && !err) {
      err = res[i];
    }
  }
  return n ? (int)n : err;
}

void tun_vnet_hdr_tx(void *hdr, const struct tun_tx_info *tx)
{
  struct virtio_net_hdr h;
  memset(&h, 0, sizeof h);
  if (tx->needs_csum) {
    h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    h.csum_start = tx->csum_start;
    h.csum_offset = tx->csum_offset;
  } else {
    h.flags = VIRTIO_NET_HDR_F_DATA_VALID;
  }
  if (tx->gso_size) {
    h.gso_type = tx->v6 ? VIRTIO_NET_HDR_GSO_TCPV6 : VIRTIO_NET_HDR_GSO_TCPV4;
    h.gso_size = tx->gso_size;
    h.hdr_len = tx->hdr_len;
  } else {
    h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
  }
  memcpy(hdr, &h, sizeof h);
}

int tun_write_vnet(int fd, const uint8_t *pkt, size_t len, bool csum_valid)
{
  struct iovec iov = {(void *)(uintptr_t)pkt, len};
  return tun_writev_vnet(fd, &iov, 1, csum_valid);
}

int tun_writev_vnet(int fd, const struct iovec *pkt, int cnt, bool csum_valid)
{
  /* Our checksums are complete: DATA_VALID lets the kernel skip verifying them
   * (CHECKSUM_UNNECESSARY, virtio_net_hdr_to_skb), as a veth peer does. A
   * packet the impairment corrupted goes without it, so the kernel checks. */
  struct virtio_net_hdr h;
  memset(&h, 0, sizeof h);
  h.flags = csum_valid ? VIRTIO_NET_HDR_F_DATA_VALID : 0;
  h.gso_type = VIRTIO_NET_HDR_GSO_NONE;
  struct iovec iov[4];
  if (cnt < 1 || cnt > 3) return -EINVAL;
  iov[0] = (struct iovec){&h, sizeof h};
  for (int i = 0; i < cnt; i++) iov[1 + i] = pkt[i];
  return tun_writev(fd, iov, 1 + cnt);
}

/* The packet with what the kernel is to do with it (virtio_net_hdr_to_skb):
 * NEEDS_CSUM makes the skb CHECKSUM_PARTIAL (the field holds the
 * pseudo-header sum, the kernel or whoever receives it completes it);
 * GSO_TCPV4 (GSO_TCPV6) with gso_size makes it a GSO skb the kernel delivers whole to
 * its own TCP (as a GRO packet) or cuts with tcp_gso_segment when it
 * forwards it. Without NEEDS_CSUM the checksum is complete (DATA_VALID). */
int tun_write_vnet_tx(int fd, const uint8_t *pkt, size_t len, const struct tun_tx_info *tx)
{
  uint8_t h[TUN_VNET_HDR_LEN];
  tun_vnet_hdr_tx(h, tx);
  struct iovec iov[2] = {{h, sizeof h}, {(void *)(uintptr_t)pkt, len}};
  for (;;) {
    ssize_t w = writev(fd, iov, 2);
    if (w >= 0) return 0;
    if (errno == EINTR) continue;
    return -errno;
  }
}

_Static_assert(TUN_VNET_HDR_LEN == sizeof(struct virtio_net_hdr), "virtio_net_hdr size");
