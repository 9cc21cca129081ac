/* libustcp on a real network: a Linux TUN device driven by a real-time event loop,
 * and blocking socket calls on top of it.
 *
 * The stack (ustcp.h) is sans-I/O; this part of the library gives it I/O: an epoll
 * loop waits for packets on the TUN device, for the stack's next deadline (a
 * timerfd at CLOCK_MONOTONIC microseconds) and for any other descriptor the
 * program watches (stdin, a control socket); it feeds packets to ustcp_input and
 * calls ustcp_poll with the same engine that runs in simulation.
 *
 * Two styles, both single-threaded (one thread owns the loop and its stack):
 *   - event-driven: set a ready callback (ustcp_set_ready_cb) and call
 *     ustcp_loop_run(); the callback makes non-blocking socket calls;
 *   - blocking, in the seeds' shape: socket, bind, listen, then
 *     ustcp_loop_accept / ustcp_loop_recv / ustcp_loop_send / ustcp_loop_connect,
 *     which run the loop until the socket is ready, so the stack keeps working
 *     (ACKs, timers, other connections) while the call waits.
 * Blocking calls return -EINTR once ustcp_loop_stop() was called (e.g. from a
 * SIGINT handler), and -ETIMEDOUT after the loop's timeout (0 = wait forever).
 */
#ifndef USTCP_LOOP_H
#define USTCP_LOOP_H

#include "ustcp.h"

#ifdef __cplusplus
extern "C" {
#endif

struct ustcp_loop_config {
  const char *tun_name;       /* "ustcp0"; NULL or "" = the kernel picks tunN */
  uint32_t addr;              /* the stack's own IPv4 address (host order) */
  uint32_t peer;              /* the kernel side's address (with configure) */
  bool configure;             /* create/configure the device: kernel address peer
                                 addr, MTU, up (needs CAP_NET_ADMIN) */
  uint16_t mtu;               /* 1500 */
  uint64_t seed;              /* 0 = random (getrandom) */
  const struct ustcp_config *stack_cfg;  /* NULL = defaults; its mtu is replaced */
  const char *pcap_path;      /* capture every packet in and out of the stack */
  /* netem-like impairment done by ustcp itself on both directions (for tests
   * where sch_netem is missing): loss and reorder probabilities, one-way delay;
   * a reordered packet skips the delay (as netem's "reorder"); corruption and
   * duplication below. Seeded by seed. */
  double loss, reorder;
  uint64_t delay_us;
  /* (issue 10) probabilities that a packet has one random bit flipped (the
   * receiver must drop it by checksum), and that it is sent twice (the copy
   * right after it) */
  double corrupt, duplicate;
  /* The TUN fast path: IFF_VNET_HDR with TUNSETOFFLOAD(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6).
   * The kernel then sends the stack whole TCP GSO frames (up to 64 KiB, one
   * read each) with the TCP checksum left undone, which the loop tells the
   * stack with ustcp_input_flags(USTCP_IN_CSUM_VERIFIED). The stack sends
   * frames of up to 64 KiB for the kernel to segment, checksums left to it
   * (ustcp_set_link_offload; not under impairment). false: one plain packet
   * per read and write. */
  bool offload;
  /* With offload: the receive side only; the stack sends one segment per
   * packet with its checksum done, marked checksum-valid (the path before
   * send offload, kept for before/after measurements). */
  bool offload_rx_only;
  /* An Ethernet link instead (issue 16): a TAP device (IFF_TAP) carrying
   * frames, ARP resolving neighbours (src/link/eth.h). The kernel side gets
   * peer/prefix_len (configure); ustcp's own MAC is mac, or a locally
   * administered one from the seed when all zero; gateway (0: none) carries
   * destinations off the prefix. Not with offload. */
  bool tap;
  /* Or an existing Ethernet interface (a veth end, a NIC) named by tun_name,
   * through an AF_PACKET socket with a TPACKET_V3 ring (src/link/packet.h):
   * ustcp takes the interface's MAC and MTU and is a host of its own there;
   * configure does nothing to the interface (the kernel must not hold an
   * address in ustcp's subnet on it). Needs CAP_NET_RAW. */
  bool packet;
  uint8_t prefix_len;         /* 24 */
  uint32_t gateway;
  uint8_t mac[6];
  /* IPv6 over TUN (issue 16): ustcp's own IPv6 address (all zero: none, and the
   * loop drops IPv6 packets as before, rx_not_ipv4), and the kernel side's,
   * added with a /64 when configure is set (all zero: the user configures it,
   * e.g. ip -6 addr add fd00::1/64 dev NAME). With tap or packet, ustcp is
   * an IPv6 host on the link: neighbour discovery (RFC 4861) and DAD (RFC
   * 4862; ustcp_loop_new waits until it ends and fails with -EADDRINUSE on a
   * duplicate), plus a link-local address from the MAC. */
  uint8_t addr6[16];
  uint8_t peer6[16];
  /* One queue of a multi-queue TUN device (IFF_MULTI_QUEUE; issue 15): to use
   * several cores, open one loop per thread on the same tun_name, the first
   * with configure, the others without, each with its own stack (and seed).
   * The kernel steers each flow to one queue by its hash, so a connection and
   * its listener's SYN stay on one stack; listen on the port in every stack.
   * Connections a stack opens itself follow the queue their packets are
   * written on; give each stack its own ephemeral port range (stack_cfg
   * port_range_lo/hi) so that two stacks never pick the same 4-tuple. TUN
   * only (not tap or packet); offload may be used, the same on every queue. */
  bool multi_queue;
  uint8_t prefix6_len;        /* the on-link IPv6 prefix (0: 64) */
  uint8_t gateway6[16];       /* tap, packet: default router (link-local or on-link); zero: none */
  bool no_dad;                /* tap, packet: addresses usable at once, no DAD */
  /* With offload, the loop writes the frames one event sends (a burst of
   * new data, the ACKs for a frame read) in one system call through io_uring
   * (issue 15 point 4), where the kernel allows io_uring. no_batch: one
   * writev(2) per frame. */
  bool no_batch;
  /* With offload, read the device through io_uring too, up to 16 frames per
   * system call. Off by default: in bench/run.sh's row [e2] it made the
   * kernel-to-ustcp transfer slower (16 read buffers of 64 KiB each cycle
   * through the cache where one read(2) reuses one). */
  bool batch_reads;
};
void ustcp_loop_config_default(struct ustcp_loop_config *c);

struct ustcp_loop;
/* Opens the device (and configures it when asked) and creates the stack. On
 * failure returns -errno with a one-line reason in err. */
int ustcp_loop_new(const struct ustcp_loop_config *c, struct ustcp_loop **out,
                   char *err, size_t errcap);
void ustcp_loop_free(struct ustcp_loop *l);
struct ustcp_stack *ustcp_loop_stack(struct ustcp_loop *l);
const char *ustcp_loop_ifname(const struct ustcp_loop *l);
/* CLOCK_MONOTONIC in microseconds: the stack's clock. */
uint64_t ustcp_loop_now_us(void);

/* One round: waits at most timeout_ms (-1: until something happens) and handles
 * what came (packets, timers, watched descriptors). Returns 0, -EINTR when the
 * loop is stopped, or another -errno. */
int ustcp_loop_run_once(struct ustcp_loop *l, int timeout_ms);
/* A descriptor that polls readable when the loop has work (a packet, a due
 * timer, a watched descriptor): for driving the loop from another thread or
 * event loop, which waits on it and then calls ustcp_loop_run_once(l, 0).
 * Each round re-arms the loop's timer for the stack's next deadline. */
int ustcp_loop_fd(const struct ustcp_loop *l);
/* Runs rounds until ustcp_loop_stop(). Returns 0 or -errno. */
int ustcp_loop_run(struct ustcp_loop *l);
/* Async-signal-safe: asks the loop (and any blocking call) to return. */
void ustcp_loop_stop(struct ustcp_loop *l);
bool ustcp_loop_stopped(const struct ustcp_loop *l);
/* Timeout of the blocking calls in milliseconds; 0 = none (the default). */
void ustcp_loop_set_timeout(struct ustcp_loop *l, int timeout_ms);

/* Watches another descriptor in the same loop: fn runs with the epoll events
 * (EPOLLIN ...) that occurred. Returns 0 or -errno. */
typedef void (*ustcp_loop_fd_fn)(void *ctx, int fd, unsigned events);
int ustcp_loop_watch(struct ustcp_loop *l, int fd, unsigned events, ustcp_loop_fd_fn fn,
                     void *ctx);
int ustcp_loop_unwatch(struct ustcp_loop *l, int fd);

/* Runs the loop until ustcp_sock_events(fd) has one of events (USTCP_POLL*),
 * an error or a hang-up. Returns those events, or -errno. */
int ustcp_loop_wait(struct ustcp_loop *l, int fd, unsigned events);

/* Blocking socket calls (A1): same arguments and errors as the non-blocking ones
 * in ustcp.h, but they wait instead of returning -EAGAIN / -EINPROGRESS. */
int ustcp_loop_accept(struct ustcp_loop *l, int fd, struct ustcp_addr *peer);
int ustcp_loop_connect(struct ustcp_loop *l, int fd, const struct ustcp_addr *addr);
/* Returns bytes read (at least 1), 0 at end of stream, or -errno. */
ssize_t ustcp_loop_recv(struct ustcp_loop *l, int fd, void *buf, size_t len);
/* Sends all len bytes (like a blocking send). Returns len or -errno. */
ssize_t ustcp_loop_send(struct ustcp_loop *l, int fd, const void *buf, size_t len);
/* close(2) without SO_LINGER: returns at once; the stack finishes the close. */
int ustcp_loop_close(struct ustcp_loop *l, int fd);
/* Runs the loop until no connection is left but listeners and TIME_WAIT ones
 * (every close handshake finished), or timeout_ms passed. Returns 0 or -ETIMEDOUT
 * / -EINTR. A program calls it before exiting so its last FINs are delivered. */
int ustcp_loop_drain(struct ustcp_loop *l, int timeout_ms);

/* A control socket (unix domain, SOCK_STREAM) at path: each client that connects
 * receives the socket table (like ss -tan) and the stack's counters as text,
 * then EOF; `ustcp stat` is such a client. A stale socket file is replaced.
 * Returns 0 or -errno with a reason in err. The file is removed by
 * ustcp_loop_free. */
int ustcp_loop_ctl_open(struct ustcp_loop *l, const char *path, char *err, size_t errcap);
/* Writes that text to f (the same the control socket sends). */
void ustcp_loop_report(struct ustcp_loop *l, void *file /* FILE * */);

/* Counters of the link (the device side of the loop). */
struct ustcp_loop_stats {
  uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
  uint64_t rx_not_ipv4;        /* not IPv4, nor IPv6 with an IPv6 address set: not for
                                  this stack */
  uint64_t tx_errors;          /* write() to the device failed: the packet is lost */
  uint64_t impair_dropped, impair_reordered, impair_delayed;
  uint64_t impair_corrupted, impair_duplicated;
  /* With offload: frames that arrived unsegmented (virtio_net_hdr gso_type
   * TCPV4 or TCPV6) and packets whose TCP checksum the kernel left to the stack
   * (NEEDS_CSUM) or had verified (DATA_VALID). */
  uint64_t rx_gso_frames, rx_csum_offloaded;
  /* With offload: frames of several segments the kernel was asked to cut
   * (GSO_TCPV4 or GSO_TCPV6), and packets whose TCP checksum was left to it (NEEDS_CSUM). */
  uint64_t tx_gso_frames, tx_csum_offloaded;
  /* With tap: frames in and out (ARP included); the Ethernet and ARP drops are
   * in the report (ustcp_loop_report: eth_* lines). */
  uint64_t rx_frames, tx_frames;
  /* Batched I/O: io_uring_enter calls that read (batch_reads) and that wrote
   * (offload, not no_batch); tx_packets / tx_batches is frames per write call. */
  uint64_t rx_batches, tx_batches;
};
void ustcp_loop_get_stats(const struct ustcp_loop *l, struct ustcp_loop_stats *out);

#ifdef __cplusplus
}
#endif
#endif
