/* src/link/eth_int.h: the insides of struct eth_iface, shared by eth.c
 * (Ethernet framing, ARP) and nd.c (IPv6 neighbour discovery) and by nothing
 * else. */
#ifndef USTCP_LINK_ETH_INT_H
#define USTCP_LINK_ETH_INT_H
#include "link/eth.h"

#define ARP_LEN 28
#define ETH_MIN_FRAME 60     /* without FCS: shorter frames are padded on send */

enum arp_state { ARP_FREE = 0, ARP_INCOMPLETE, ARP_REACHABLE };

struct arp_pkt {            /* a datagram waiting for its neighbour's address */
  size_t len;
  uint8_t *data;
};

struct arp_entry {
  uint8_t state;
  uint8_t tries;             /* requests sent since the last answer */
  uint8_t nq;
  uint32_t ip;
  uint8_t mac[6];
  uint64_t confirmed_us;     /* last answer (REACHABLE) */
  uint64_t next_try_us;      /* next request (INCOMPLETE, or REACHABLE being probed) */
  uint64_t created_us;
  struct arp_pkt q[ETH_ARP_QUEUE];
};

/* One IPv6 neighbour (RFC 4861 §5.1's Neighbor Cache entry; Linux's struct
 * neighbour in nd_tbl). state is enum eth_nd_state; ETH_ND_NONE = free. */
struct nd_entry {
  uint8_t state;
  uint8_t tries;             /* NS sent in INCOMPLETE or PROBE */
  uint8_t nq;
  uint8_t ip[16];
  uint8_t mac[6];
  uint64_t confirmed_us;     /* last reachability confirmation (REACHABLE) */
  uint64_t timer_us;         /* next NS (INCOMPLETE, PROBE) or DELAY's end; 0: none */
  uint64_t updated_us;       /* last change: eviction takes the oldest */
  struct arp_pkt q[ETH_ND_QUEUE];
};

/* One of our IPv6 addresses and its DAD (RFC 4862 §5.4). */
struct nd_addr {
  uint8_t ip[16];
  uint8_t state;             /* enum eth_addr6_state */
  uint8_t sent;              /* DAD NS sent */
  uint64_t timer_us;         /* next DAD step; 0: none */
};

struct eth_iface {
  struct eth_config cfg;
  uint32_t mask;
  eth_frame_fn out;
  eth_ip_fn ip_in;
  void *ctx;
  struct eth_stats st;
  struct arp_entry arp[ETH_ARP_ENTRIES];
  struct arp_entry *last;    /* the entry found last: most datagrams go to one next hop */
  uint64_t deadline;         /* earliest next_try_us, or earlier (eth_poll makes it exact) */
  uint8_t *frame;            /* scratch: one frame of ETH_HDR_LEN + mtu bytes */
  /* IPv6 (nd.c) */
  bool has6;
  struct nd_addr addr6[2];   /* [0] the static address, [1] the link-local one */
  struct nd_entry *nd;       /* ETH_ND_ENTRIES, allocated only with IPv6 */
  struct nd_entry *nd_last;
  uint64_t nd_next;          /* no ND or DAD timer is due before this */
  uint64_t rng;
};

/* eth.c */
void eth_send_frame(struct eth_iface *e, const uint8_t dst[6], uint16_t type,
                    const uint8_t *payload, size_t plen);
void eth_note_deadline(struct eth_iface *e, uint64_t at_us);
/* nd.c */
int nd_init(struct eth_iface *e);
void nd_free(struct eth_iface *e);
/* True if a frame to this multicast MAC is for one of our groups. */
bool nd_mcast_ours(const struct eth_iface *e, const uint8_t dst[6]);
void nd_frame_input(struct eth_iface *e, const uint8_t src_mac[6], const uint8_t *p,
                    size_t len, uint64_t now, unsigned flags);
void nd_ip_output(struct eth_iface *e, const uint8_t *pkt, size_t len, uint64_t now);
/* Runs ND's and DAD's timers; returns the earliest next one. */
uint64_t nd_poll(struct eth_iface *e, uint64_t now);
#endif
