/* src/link/packet: an AF_PACKET socket bound to one Ethernet interface (a veth
 * end, a NIC), so ustcp can be a host of its own on that link beside the
 * kernel (issue 16 point 2). Frames are received through a TPACKET_V3 ring
 * (blocks of frames shared with the kernel by mmap: no copy and no syscall per
 * frame) and sent with send() on the same socket.
 *
 * ustcp takes the interface's own MAC address by default, so no promiscuous
 * mode is needed; the kernel on that interface must then have no address in
 * ustcp's subnet (it would answer ARP for it, or reset ustcp's connections).
 * Frames the kernel sends itself on the interface are not looped back to the
 * ring (PACKET_IGNORE_OUTGOING).
 */
#ifndef USTCP_LINK_PACKET_H
#define USTCP_LINK_PACKET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct packet_link;
/* Opens the socket on interface ifname and maps its receive ring. mac gets the
 * interface's MAC address, mtu its MTU. Returns 0 (and *out) or -errno with a
 * one-line reason in err. Needs CAP_NET_RAW. */
int packet_open(const char *ifname, struct packet_link **out, uint8_t mac[6], uint16_t *mtu,
                char *err, size_t errcap);
void packet_close(struct packet_link *p);
/* The descriptor to poll for readability. */
int packet_fd(const struct packet_link *p);
/* Hands every frame waiting in the ring to fn (at most max), giving each
 * block back to the kernel when done. Returns the number of frames.
 * csum_done_by_kernel: the frame was made by this host's kernel (a veth peer)
 * with its checksum left for offload (TP_STATUS_CSUMNOTREADY), or the kernel
 * verified it (TP_STATUS_CSUM_VALID): the TCP checksum field is then not to
 * be checked, as with a TUN device's NEEDS_CSUM / DATA_VALID. */
typedef void (*packet_frame_fn)(void *ctx, const uint8_t *frame, size_t len,
                                bool csum_done_by_kernel);
int packet_read_batch(struct packet_link *p, unsigned max, packet_frame_fn fn, void *ctx);
/* Sends one frame. Returns 0 or -errno. */
int packet_write(struct packet_link *p, const uint8_t *frame, size_t len);
#endif
