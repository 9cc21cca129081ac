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
 *               stack; ARP -> below; IPv6 (with an IPv6 address configured,
 *               else dropped, rx_ipv6) -> neighbour discovery (nd.c) for ICMPv6
 *               types 133..137, the stack for the rest (unicast only).
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
 *   IPv6        neighbour discovery (RFC 4861) lives beside ARP in nd.c, same
 *               shape: a bounded cache (ETH_ND_ENTRIES) with the §7.3 states,
 *               a bounded queue per neighbour, timers run by eth_poll; DAD for
 *               our addresses (RFC 4862 §5.4); the link-local address from the
 *               MAC (RFC 4291 App. A); multicast frames 33:33:xx (RFC 2464 §7)
 *               taken only for our groups (all-nodes, our solicited-node ones).
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
/* RFC 4861 §10 constants, as Linux's nd_tbl defaults (net/ipv6/ndisc.c) */
#define ETH_ND_ENTRIES 256
#define ETH_ND_QUEUE 3
#define ETH_ND_MAX_MCAST_SOLICIT 3
#define ETH_ND_MAX_UCAST_SOLICIT 3
#define ETH_ND_RETRANS_US 1000000ull
#define ETH_ND_REACHABLE_US 30000000ull
#define ETH_ND_DELAY_FIRST_PROBE_US 5000000ull
#define ETH_ND_MAX_OPTS 32          /* options walked in one NS/NA; more: dropped */
#define ETH_ND_DAD_MAX_DELAY_US 1000000ull  /* Linux: rtr_solicit_delay (RFC 4862 §5.4.2) */

/* The neighbour states of RFC 4861 §7.3.2 (0: no entry). */
enum eth_nd_state { ETH_ND_NONE = 0, ETH_ND_INCOMPLETE, ETH_ND_REACHABLE, ETH_ND_STALE,
                    ETH_ND_DELAY, ETH_ND_PROBE };
/* Our IPv6 addresses (RFC 4862 §5.4): usable only when PREFERRED. */
enum eth_addr6_state { ETH_ADDR6_NONE = 0, ETH_ADDR6_TENTATIVE, ETH_ADDR6_PREFERRED,
                       ETH_ADDR6_DUPLICATE };

struct eth_stats {
  uint64_t rx_frames, tx_frames;
  uint64_t rx_short, rx_oversize, rx_not_for_us, rx_vlan, rx_ipv6, rx_unknown_type;
  uint64_t rx_arp_bad, rx_arp_requests, rx_arp_replies, tx_arp_requests, tx_arp_replies;
  uint64_t no_route, tx_oversize, arp_failed, arp_queue_full, arp_evictions;
  /* IPv6 and neighbour discovery (nd.c) */
  uint64_t rx_ip6_mcast;       /* IPv6 to a multicast group, not ND: not served */
  uint64_t rx_nd_bad;          /* NS/NA failing RFC 4861 §7.1.1/§7.1.2 validation */
  uint64_t rx_nd_other;        /* RS, RA, Redirect: not handled, dropped */
  uint64_t rx_ns, rx_na, tx_ns, tx_na;
  uint64_t rx_ns_not_ours;     /* NS for a target that is not ours (or tentative, from unicast) */
  uint64_t rx_na_no_entry;     /* NA for a neighbour not cached: ignored (§7.2.5) */
  uint64_t rx_na_our_addr;     /* NA claiming a preferred address of ours */
  uint64_t nd_failed, nd_queue_full, nd_evictions;
  uint64_t dad_duplicates;     /* an address of ours found in use on the link */
  uint64_t tx_tentative;       /* IPv6 from an address not (yet) usable: dropped */
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
  /* IPv6 (all zero: none; IPv6 frames are dropped, rx_ipv6). ip6 is a static
   * address on the prefix6_len on-link prefix (0: 64); gateway6 (zero: none)
   * is the default router, link-local or on-link. The link-local address is
   * made from mac (eth_link_local). Both run DAD from eth_dad_start unless
   * no_dad; seed draws DAD's random delay. */
  uint8_t ip6[16];
  uint8_t prefix6_len;
  uint8_t gateway6[16];
  bool no_dad;
  uint64_t seed;
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

/* ---- IPv6 neighbour discovery (nd.c) ---- */
/* Starts DAD for our addresses at now_us (RFC 4862 §5.4): until it ends they
 * are TENTATIVE. With no_dad (or no IPv6) they are PREFERRED from eth_new. */
void eth_dad_start(struct eth_iface *e, uint64_t now_us);
/* State of our address: which 0 = ip6 (the static one), 1 = the link-local. */
enum eth_addr6_state eth_addr6_state(const struct eth_iface *e, int which);
/* The cache entry of ip6 as of now_us (REACHABLE past its time reads STALE),
 * its MAC in mac when known (mac may be NULL). */
enum eth_nd_state eth_nd_lookup(const struct eth_iface *e, const uint8_t ip6[16],
                                uint64_t now_us, uint8_t mac[6]);
size_t eth_nd_count(const struct eth_iface *e);
/* fe80::/64 with the modified EUI-64 interface identifier (RFC 4291 App. A). */
void eth_link_local(const uint8_t mac[6], uint8_t out[16]);
/* The Ethernet address of an IPv6 multicast group (RFC 2464 §7: 33:33 + its
 * last 32 bits). */
void eth_mcast_mac(const uint8_t group[16], uint8_t mac[6]);
/* The solicited-node multicast address of a (RFC 4291 §2.7.1). */
void eth_solicited_node(const uint8_t a[16], uint8_t out[16]);
#endif
