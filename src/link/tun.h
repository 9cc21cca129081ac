/* src/link/tun: a Linux TUN device (IFF_TUN | IFF_NO_PI: each read or write is
 * one bare IPv4 packet), opened and configured with libc calls only: ioctl
 * TUNSETIFF on /dev/net/tun, then SIOCSIFMTU / SIOCSIFADDR / SIOCSIFDSTADDR /
 * SIOCSIFNETMASK / SIOCSIFFLAGS on an AF_INET socket for the kernel's side. No
 * shelling out to ip(8).
 *
 * Errors are negative errno values plus a one-line message that says what to do
 * (missing /dev/net/tun, permission denied, device busy).
 */
#ifndef USTCP_LINK_TUN_H
#define USTCP_LINK_TUN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <net/if.h>

/* Opens (creating it if needed) the TUN device name ("" or NULL: the kernel picks
 * tunN). The descriptor is non-blocking and close-on-exec; the device's actual
 * name is written to ifname (IFNAMSIZ bytes). Returns the fd or -errno. */
int tun_open(const char *name, char ifname[IFNAMSIZ], char *err, size_t errcap);
/* As tun_open; with vnet, the device carries a struct virtio_net_hdr before
 * every packet both ways (IFF_VNET_HDR) and has the offloads TUN_F_CSUM and
 * TUN_F_TSO4 and TUN_F_TSO6: the kernel sends unsegmented TCP GSO frames (up to 64 KiB)
 * with the TCP checksum left to the receiver. Read it with
 * tun_read_batch_vnet and write it with tun_write_vnet only. */
int tun_open_ex(const char *name, bool vnet, char ifname[IFNAMSIZ], char *err, size_t errcap);

/* As tun_open_ex, one queue of a multi-queue device (IFF_MULTI_QUEUE): every
 * call on the same name attaches one more queue (the kernel allows 256), all
 * with the same flags. The kernel hands each flow to one queue by the flow's
 * symmetric hash, and moves a flow to the queue its packets were last written
 * on (tun_automq_select_queue / tun_flow_update in drivers/net/tun.c). */
int tun_open_queue(const char *name, bool vnet, char ifname[IFNAMSIZ], char *err, size_t errcap);

/* A TAP device (IFF_TAP | IFF_NO_PI: each read or write is one Ethernet frame,
 * for src/link/eth.c), opened as tun_open does. Returns the fd or -errno. */
int tap_open(const char *name, char ifname[IFNAMSIZ], char *err, size_t errcap);
/* The kernel's side of a TAP link: its address with prefix_len (the on-link
 * route to ustcp's address, which ARP then resolves), the MTU, up, IPv6 off. */
int tap_configure(const char *ifname, uint32_t kernel_ip, uint8_t prefix_len, uint16_t mtu,
                  char *err, size_t errcap);

/* Gives the kernel's side of the point-to-point link its address and the peer
 * address (ustcp's own), netmask /32, the MTU (0 = leave it), brings the device
 * up, and turns IPv6 off on it (best effort: no router solicitations to ignore).
 * Needs CAP_NET_ADMIN. Addresses in host order. Returns 0 or -errno. */
/* Adds the kernel side's IPv6 address kernel_ip6/prefix_len to the device (issue
 * 16), which installs the on-link route toward ustcp's IPv6 address (as
 * `ip -6 addr add KERNEL/PREFIX dev NAME`; a TUN device is IFF_NOARP, so the
 * kernel runs no DAD on it). AF_INET6 socket -> SIOCSIFADDR with in6_ifreq. */
int tun_configure6(const char *ifname, const uint8_t kernel_ip6[16], uint8_t prefix_len,
                   char *err, size_t errcap);
int tun_configure(const char *ifname, uint32_t kernel_ip, uint32_t peer_ip, uint16_t mtu,
                  char *err, size_t errcap);

/* Reads packets until the device has none (EAGAIN) or max were read, calling
 * fn(ctx, pkt, len) for each; pkt is valid during the call only. Returns the
 * number read or -errno (never -EAGAIN). */
typedef void (*tun_packet_fn)(void *ctx, const uint8_t *pkt, size_t len);
int tun_read_batch(int fd, unsigned max, tun_packet_fn fn, void *ctx);

/* Writes one packet. Returns 0 or -errno (-EAGAIN when the kernel's queue is
 * full: the packet is lost, as on a real link, and TCP recovers). */
int tun_write(int fd, const uint8_t *pkt, size_t len);
/* Writes one packet given as a gather list (writev). Same returns. */
int tun_writev(int fd, const struct iovec *iov, int cnt);

/* What the kernel's virtio_net_hdr said about one packet read from a vnet
 * device (VIRTIO_NET_HDR_F_NEEDS_CSUM = 1, _DATA_VALID = 2;
 * VIRTIO_NET_HDR_GSO_NONE = 0, _TCPV4 = 1, _TCPV6 = 4; offsets from the IP header). */
struct tun_rx_info {
  uint8_t flags, gso_type;
  uint16_t hdr_len, gso_size, csum_start, csum_offset;
};
typedef void (*tun_vnet_fn)(void *ctx, const struct tun_rx_info *info, const uint8_t *pkt,
                            size_t len);
/* As tun_read_batch for a vnet device: fn gets the packet after the header. */
int tun_read_batch_vnet(int fd, unsigned max, tun_vnet_fn fn, void *ctx);
/* The buffer one read of a vnet device needs: the header and an IPv4 or IPv6
 * packet of up to 64 KiB (a GSO frame). */
#define TUN_VNET_HDR_LEN 10u
#define TUN_VNET_READ_LEN (TUN_VNET_HDR_LEN + 65536u + 64u)
/* Batched (issue 15 point 4): k reads (at most URING_MAX) into bufs, k buffers
 * of TUN_VNET_READ_LEN end to end, in one io_uring_enter; fn gets the frames
 * in the device's order. Returns the number read (0: the device had none) or
 * -errno when no frame was read and something failed. */
struct uring;
int tun_read_vnet_uring(int fd, struct uring *u, uint8_t *bufs, unsigned k, tun_vnet_fn fn,
                        void *ctx);
/* Writes one packet with a header that says "no offload, checksum valid". */
int tun_write_vnet(int fd, const uint8_t *pkt, size_t len, bool csum_valid);
/* The same for a packet given as 1 to 3 slices (writev of header + slices). */
int tun_writev_vnet(int fd, const struct iovec *pkt, int cnt, bool csum_valid);
/* What the kernel is to do with a packet written to a vnet device. */
struct tun_tx_info {
  uint16_t gso_size;      /* non-zero: a TCP frame to cut (VIRTIO_NET_HDR_GSO_TCPV4, or _TCPV6) */
  uint16_t hdr_len;       /* IPv4 or IPv6 + TCP header bytes */
  bool v6;                /* an IPv6 frame: GSO_TCPV6 (TUN_F_TSO6) */
  bool needs_csum;        /* VIRTIO_NET_HDR_F_NEEDS_CSUM at csum_start + csum_offset */
  uint16_t csum_start, csum_offset;
};
/* The virtio_net_hdr (TUN_VNET_HDR_LEN bytes at hdr) for a packet written with tx. */
void tun_vnet_hdr_tx(void *hdr, const struct tun_tx_info *tx);
/* Writes one packet with a header built from tx (writev: header + packet, no
 * copy). Returns 0 or -errno. */
int tun_write_vnet_tx(int fd, const uint8_t *pkt, size_t len, const struct tun_tx_info *tx);
#endif
