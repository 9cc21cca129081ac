/* src/link/eth: Ethernet II framing and ARP (RFC 826) between a ustcp stack,
 * which speaks IPv4 datagrams, and a device that carries Ethernet frames (a
 * TAP device, an AF_PACKET socket on a veth). Sans-I/O like the engine: frames
 * come in with the current time, frames leave through a callback, and
 * eth_poll runs the timers.
 *
 *   IP output   next hop = the destination if on-link (same prefix), else the
 *               gateway (none: dropped, no_route); the ARP cache gives its MAC,
 *               or the datagram waits (at most ETH_ARP_QUEUE per neighbour,
 *               Linux's unres_qlen idea) while ARP asks: a request at once, then
 *               one a second, three in all (Linux's mcast_solicit 3, retrans_time
 *               1 s); no answer: the waiting datagrams are dropped (arp_failed).
 *   frame input short, oversize, not for us (unicast to another MAC), VLAN tagged,
 *               unknown EtherType: dropped, each with its counter; IPv4 -> the
 *               stack; IPv6 -> dropped (not yet: issue 16); ARP -> below.
 *   ARP         RFC 826's merge: a packet from a sender already cached updates
 *               it; one asking for our address adds its sender and is answered
 *               (unicast); gratuitous ARP (sender = target address) updates only
 *               what is cached. Entries expire after ETH_ARP_REACHABLE_US (Linux:
 *               base_reachable_time 30 s, randomised; here fixed) and are asked
 *               again on the next datagram. The cache holds at most
 *               ETH_ARP_ENTRIES: full, a new neighbour replaces the oldest
 *               entry that has no datagram waiting (Linux's gc_thresh idea), so a
 *               flood of forged ARP cannot grow memory.
 *   eth_announce sends a gratuitous ARP request for our address (RFC 5227 §2.3
 *               announcement), as Linux does when an address comes up.
 */
#ifndef USTCP_LINK_ETH_H
#define USTCP_LINK_ETH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETH_HDR_LEN 14
#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_ARP 0x0806
#define ETH_TYPE_VLAN 0x8100
#define ETH_TYPE_IPV6 0x86dd
#define ETH_ARP_ENTRIES 256
#define ETH_ARP_QUEUE 3
#define ETH_ARP_TRIES 3
#define ETH_ARP_RETRANS_US 1000000ull
#define ETH_ARP_REACHABLE_US 30000000ull

struct eth_stats {
  uint64_t rx_frames, tx_frames;
  uint64_t rx_short, rx_oversize, rx_not_for_us, rx_vlan, rx_ipv6, rx_unknown_type;
  uint64_t rx_arp_bad, rx_arp_requests, rx_arp_replies, tx_arp_requests, tx_arp_replies;
  uint64_t no_route, tx_oversize, arp_failed, arp_queue_full, arp_evictions;
};

/* Called with a whole frame to put on the device. */
typedef void (*eth_frame_fn)(void *ctx, const uint8_t *frame, size_t len);
/* Called with an IPv4 datagram from a frame for the stack; flags are
 * eth_frame_input's, passed through (ustcp_input_flags's USTCP_IN_*). */
typedef void (*eth_ip_fn)(void *ctx, const uint8_t *pkt, size_t len, unsigned flags);

struct eth_iface;
struct eth_config {
  uint8_t mac[6];
  uint32_t ip;          /* ours, host order */
  uint8_t prefix_len;   /* on-link prefix, e.g. 24 */
  uint32_t gateway;     /* 0 = none: only on-link destinations */
  uint16_t mtu;         /* IP MTU of the link (1500): larger frames are refused */
  /* Largest frame taken in (0: 14 + mtu). An AF_PACKET socket on a veth sees
   * the peer kernel's unsegmented GSO frames (up to 64 KiB, like a TUN device
   * with offloads): the packet link raises it. */
  uint32_t max_rx_frame;
};
/* NULL on allocation failure. */
struct eth_iface *eth_new(const struct eth_config *c, eth_frame_fn out, eth_ip_fn ip_in,
                          void *ctx);
void eth_free(struct eth_iface *e);
/* A datagram from the stack (its output callback) at time now_us. */
void eth_ip_output(struct eth_iface *e, const uint8_t *pkt, size_t len, uint64_t now_us);
/* A frame from the device; flags go with its datagram to the stack (e.g. the
 * device's word that the local kernel left the checksum undone). */
void eth_frame_input(struct eth_iface *e, const uint8_t *frame, size_t len, uint64_t now_us,
                     unsigned flags);
/* Runs ARP's timers; returns the next deadline (UINT64_MAX: none). */
uint64_t eth_poll(struct eth_iface *e, uint64_t now_us);
/* When eth_poll is next due, in O(1) (never later than the true deadline:
 * the per-packet path asks this, not eth_poll, which walks the cache). */
uint64_t eth_deadline(const struct eth_iface *e);
/* Sends a gratuitous ARP announcing our address. */
void eth_announce(struct eth_iface *e);
const struct eth_stats *eth_get_stats(const struct eth_iface *e);
/* The cached MAC of ip (host order), if any: true and mac filled. */
bool eth_arp_lookup(const struct eth_iface *e, uint32_t ip, uint8_t mac[6]);
size_t eth_arp_count(const struct eth_iface *e);
#endif
