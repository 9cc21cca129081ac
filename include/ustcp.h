/* libustcp: a user-space TCP/IP stack with a BSD-socket-shaped API.
 *
 * The stack is sans-I/O: it never reads a clock, sleeps, starts a thread or makes
 * a system call. The caller
 *   - hands it every received IPv4 or IPv6 packet: ustcp_input(stack, pkt, len, now_us);
 *   - receives every packet to send through the output callback given at creation;
 *   - calls ustcp_poll(stack, now_us) at (or after) the deadline it returns, which
 *     runs the timers that are due.
 * Time is in microseconds on any monotonic scale the caller chooses (virtual time in
 * simulation, CLOCK_MONOTONIC on a real link); it must never go backwards. Socket
 * calls happen at the time of the last ustcp_input/ustcp_poll call.
 *
 * Threads: one stack is single-threaded. Every function taking a stack must be
 * called from the one thread that drives that stack (the thread that calls
 * ustcp_input and ustcp_poll); callbacks run on that thread, from inside those calls
 * and the socket calls. Different stacks share nothing and may run on different
 * threads. Blocking use (connect/accept/recv that wait) is provided by a driver
 * loop on top of this API, not by the engine.
 *
 * Errors are returned as negative errno values (-ECONNREFUSED ...); the library
 * never touches the global errno.
 */
#ifndef USTCP_H
#define USTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define USTCP_NO_DEADLINE UINT64_MAX
#define USTCP_SEC 1000000ull
#define USTCP_MSEC 1000ull

/* An endpoint of either family (issue 16). IPv4: family 0 (USTCP_AF_INET; Linux's
 * AF_INET, 2, is taken as IPv4 too; any other value but USTCP_AF_INET6 is refused
 * with -EAFNOSUPPORT, so a struct whose family was never set fails loudly), ip in
 * host byte order, 0 = any. IPv6: family USTCP_AF_INET6, ip6 the 16 bytes in network
 * order (all zero = any, "::"), ip unused. port is in host byte order for both.
 *
 * Why this form and not a sockaddr: every existing user writes
 * `struct ustcp_addr a = {ip, port}` or sets .ip/.port and reads them back; a zero
 * family keeps those meaning what they meant (the new fields come after the old
 * ones, and zero-initialisation, positional or designated, gives IPv4), so IPv4
 * code compiles and behaves unchanged, and there is no sockaddr_in/sockaddr_in6
 * length and byte-order juggling in an API that never touches the kernel. The
 * struct grew from 8 to 24 bytes: an ABI change, not a source change. The engine
 * does not keep this form per connection (struct tcb holds 8-byte endpoints; IPv6
 * addresses are interned in a per-stack table, src/tcp/tcp_addr6.c).
 *
 * IPv4-mapped addresses (::ffff:a.b.c.d) behave as on a Linux AF_INET6 socket:
 * connect() to one speaks IPv4; a socket bound to IPv6 "::" also accepts IPv4
 * connections unless USTCP_IPV6_V6ONLY is set, and reports their addresses as
 * ::ffff:a.b.c.d (accept, getpeername, getsockname, events, the socket table). */
#define USTCP_AF_INET 0
#define USTCP_AF_INET6 10           /* Linux's AF_INET6 value */
struct ustcp_addr {
  uint32_t ip;
  uint16_t port;
  uint8_t family;                   /* USTCP_AF_INET (0) or USTCP_AF_INET6 */
  uint8_t ip6[16];
};

/* Tunables (A3). Names follow Linux's sysctls (net.ipv4.tcp_*, net.core.*);
 * ustcp_config_default() gives Linux's defaults. Durations carry their unit. */
struct ustcp_config {
  uint32_t somaxconn;           /* 4096: accept queue cap, min(backlog, somaxconn) */
  uint32_t max_syn_backlog;     /* 2048: SYN queue (half-open) limit per listener */
  uint32_t syn_retries;         /* 6: SYN retransmissions before ETIMEDOUT */
  uint32_t synack_retries;      /* 5: SYN-ACK retransmissions before dropping */
  uint32_t orphan_retries;      /* 0 (means 8, as in Linux): FIN retries of an orphan */
  uint32_t retries2;            /* 15: data retransmissions before giving up */
  uint64_t fin_timeout_us;      /* 60 s: FIN_WAIT_2 lifetime of an orphan */
  uint64_t time_wait_us;        /* 60 s: TIME_WAIT length (2*MSL) */
  uint32_t syncookies;          /* 1: cookies when the SYN queue overflows; 2: always; 0: never */
  uint32_t abort_on_overflow;   /* 0: accept queue full -> drop; 1: RST */
  uint64_t keepalive_time_us;   /* 7200 s */
  uint64_t keepalive_intvl_us;  /* 75 s */
  uint32_t keepalive_probes;    /* 9 */
  uint64_t rto_min_us;          /* 200 ms */
  uint64_t rto_max_us;          /* 120 s */
  uint64_t rto_initial_us;      /* 1 s (RFC 6298 2.1) */
  uint64_t delack_min_us;       /* 40 ms: delayed ACK timeout */
  uint64_t delack_max_us;       /* 200 ms */
  uint32_t init_cwnd;           /* 10 segments (RFC 6928) */
  /* Socket buffers (issue 12). A connection starts with rmem_default/wmem_default
   * (Linux's tcp_rmem[1]/tcp_wmem[1]) and, unless the application set
   * SO_RCVBUF/SO_SNDBUF, autotuning grows them: the receive buffer to about twice
   * what the application read in the last round trip (Linux's
   * tcp_rcv_space_adjust), the send buffer to two congestion windows
   * (tcp_sndbuf_expand), up to rmem_max/wmem_max (here both the SO_*BUF clamp
   * and the autotuning limit, Linux's net.core.*mem_max and tcp_*mem[2]).
   * Both maxima are 32 MiB, not Linux's 6 MiB/4 MiB tcp_rmem[2]/tcp_wmem[2]:
   * a flow needs a window of one bandwidth-delay product, and 1 Gbit/s x 100 ms
   * is 12.5 MB (x 2 for the send buffer's two windows); 32 MiB is what
   * distributions and tuning guides set for long fat paths (e.g. fasterdata.es.net).
   * The window scale offered on a SYN is sized from rmem_max (shift 10 for
   * 32 MiB). Storage is allocated as data arrives and released when the buffer
   * drains, so a large maximum costs nothing to idle connections. */
  uint32_t rmem_default;        /* 131072: receive buffer, initial */
  uint32_t rmem_max;            /* 33554432 */
  uint32_t wmem_default;        /* 16384: send buffer, initial */
  uint32_t wmem_max;            /* 33554432 */
  uint16_t port_range_lo;       /* 32768 (ip_local_port_range) */
  uint16_t port_range_hi;       /* 60999 */
  uint16_t mtu;                 /* 1500: link MTU; the advertised MSS is mtu - 40 */
  bool window_scaling;          /* 1 (RFC 7323) */
  bool sack;                    /* 1 (RFC 2018): selective acknowledgments */
  uint32_t challenge_ack_limit; /* UINT32_MAX = none (Linux 6.x's INT_MAX): stack-wide
                                   challenge ACKs a second (RFC 5961 §7), on top of the
                                   per-connection invalid_ratelimit_us; a finite limit is
                                   randomised per second (Linux 4.7) */
  uint32_t max_sockets;         /* 1048576: sockets (descriptors) per stack */
  uint32_t max_ooo_segments;    /* 0: out-of-order segments queued per connection; 0 means
                                   enough for the receive window (buffer / MSS + 1),
                                   so a bigger SO_RCVBUF gets a longer queue */
  uint32_t rfc1337;             /* 0 (Linux): 1 = ignore RST in TIME_WAIT (RFC 1337) */
  char congestion_control[16];  /* "cubic" (Linux's tcp_congestion_control, RFC 9438 with
                                   HyStart++) or "reno" (RFC 5681/6582); per socket
                                   TCP_CONGESTION */
  bool slow_start_after_idle;   /* 1 (tcp_slow_start_after_idle): cwnd restarts after an
                                   idle period longer than the RTO (RFC 5681 §4.1) */
  uint64_t invalid_ratelimit_us; /* 500 ms (tcp_invalid_ratelimit): per connection, at most
                                    one ACK this often to out-of-window segments and one
                                    challenge ACK (Linux's tcp_oow_rate_limited) */
  /* IP input hygiene (issue 10) */
  uint32_t accept_local;        /* 0 (Linux's net.ipv4.conf.*.accept_local): a packet from
                                   the link with our own source address is a martian */
  uint32_t netdev_budget;       /* 300 (Linux's net.core.netdev_budget): looped-back
                                   packets one call processes; the rest wait for the next */
  /* Caps on what closed connections may hold (issue 10 point 5), as Linux's
   * sysctls of the same names; Linux sizes both at half its established hash
   * table (131072 on a machine with 16-32 GB). */
  uint32_t max_tw_buckets;      /* 131072: TIME_WAIT connections per stack; past it a
                                   connection skips TIME_WAIT and closes (stats.tw_overflow) */
  uint32_t max_orphans;         /* 131072: closed-by-the-application connections still
                                   finishing; past it close() resets (stats.abort_on_memory) */
  uint32_t ipfrag_high_thresh;  /* 4 MiB: bytes all IPv4 reassembly queues may hold
                                   (Linux's net.ipv4.ipfrag_high_thresh) */
  uint64_t ipfrag_time_us;      /* 30 s: lifetime of an incomplete datagram (ipfrag_time) */
  bool timestamps;              /* 1 (Linux's net.ipv4.tcp_timestamps = 1): offer RFC 7323
                                   timestamps on SYNs (1 ms clock, a per-address-pair
                                   random offset), PAWS and RTTM when both SYNs carry them */
  uint32_t notsent_lowat;       /* UINT32_MAX (Linux's net.ipv4.tcp_notsent_lowat): the
                                   limit on unsent bytes for a socket whose
                                   TCP_NOTSENT_LOWAT is 0 (see that option) */
  uint64_t tcp_mem_pressure;    /* 1 GiB (Linux's tcp_mem[1], ~1 GB on a 16 GB machine):
                                   when the buffer storage of all connections reaches it,
                                   the stack is under memory pressure and no buffer grows
                                   by autotuning (stats.tcp_mem_pressures); 0 = no limit */
  uint32_t min_tso_segs;        /* 2 (Linux's net.ipv4.tcp_min_tso_segs): the fewest
                                   segments between two push marks of new data, however
                                   slow the pacing rate (0 means 2) */
  uint32_t tcp_ecn;             /* 2 (Linux's net.ipv4.tcp_ecn): Explicit Congestion
                                   Notification (RFC 3168). 0: never; 1: asked for on
                                   outgoing SYNs and accepted on incoming ones; 2: accepted
                                   when the peer's SYN asks, never asked for. Per socket,
                                   USTCP_TCP_ECN */
  uint32_t tcp_recovery;        /* 1 (Linux's net.ipv4.tcp_recovery = 1): bit 0 turns on
                                   RACK loss detection (RFC 8985 §6) for SACK connections;
                                   0 = RFC 6675's DupThresh rule (and RFC 5827 early
                                   retransmit) */
  bool dsack;                   /* 1 (Linux's net.ipv4.tcp_dsack): report duplicate
                                   segments in D-SACK blocks (RFC 2883) */
  uint8_t tcp_frto;             /* 2 (Linux's net.ipv4.tcp_frto): F-RTO (RFC 5682 §3.1,
                                   the SACK-enhanced version) detects spurious
                                   retransmission timeouts on SACK connections and undoes
                                   them; 0 = off. One byte, in what was the padding after
                                   dsack: the struct keeps its size and layout (ABI 1) */
};
void ustcp_config_default(struct ustcp_config *cfg);

/* TCP states (RFC 9293 §3.3.2). */
enum ustcp_state {
  USTCP_CLOSED = 0,
  USTCP_LISTEN,
  USTCP_SYN_SENT,
  USTCP_SYN_RCVD,
  USTCP_ESTABLISHED,
  USTCP_FIN_WAIT_1,
  USTCP_FIN_WAIT_2,
  USTCP_CLOSE_WAIT,
  USTCP_CLOSING,
  USTCP_LAST_ACK,
  USTCP_TIME_WAIT,
};
const char *ustcp_state_name(enum ustcp_state s);

/* Why a transition happened (A4). */
enum ustcp_cause {
  USTCP_CAUSE_CALL,        /* a socket call (connect, listen, close, shutdown) */
  USTCP_CAUSE_SEGMENT,     /* a segment arrived */
  USTCP_CAUSE_TIMER,       /* a timer expired (TIME_WAIT, fin_timeout, retries) */
  USTCP_CAUSE_RESET,       /* a RST arrived */
  USTCP_CAUSE_ERROR,       /* an ICMP error or a resource limit */
};

struct ustcp_event {
  int fd;                        /* the socket, or -1 for an embryonic/orphan connection */
  uint64_t conn_id;              /* unique per connection in this stack */
  struct ustcp_addr local, remote;
  enum ustcp_state old_state, new_state;
  enum ustcp_cause cause;
  uint64_t time_us;
};

/* ---- callbacks ----
 * The stack calls the application back through four callbacks: output (given to
 * ustcp_stack_new), state events (ustcp_set_event_cb), readiness
 * (ustcp_set_ready_cb) and capture (ustcp_set_capture_cb). All of them follow
 * the same rules:
 *   - They run on the stack's thread, from inside ustcp_input, ustcp_poll or a
 *     socket call of this stack, at the END of that call's work: never while the
 *     engine is in the middle of a segment, a timer or a socket call. What the
 *     engine did is recorded as it happens and delivered afterwards, in the
 *     order it happened (events and packets interleaved as they occurred).
 *   - A callback may call any function of this API on the same stack, on any
 *     socket, ustcp_close and ustcp_abort of the socket being reported included;
 *     also ustcp_input and ustcp_poll. Such a call does its work as an event of
 *     its own and, before it returns, delivers what it caused (e.g. close() from
 *     a readiness callback: the LAST_ACK event and the FIN come before close()
 *     returns); beyond a nesting depth of 8 callbacks the delivery waits for the
 *     outer loop instead.
 *   - The one call refused inside a callback is ustcp_stack_free on the stack
 *     itself: it returns -EBUSY and frees nothing.
 *   - Since an event is delivered after the fact, the socket may have moved on
 *     when its callback runs (a later event follows); ustcp_event.fd is the
 *     descriptor as it is at delivery, -1 if the application closed it since.
 * Pointers handed to a callback (packets, events) are valid during the call only. */

/* A packet to send (a whole IPv4 or IPv6 datagram). */
typedef void (*ustcp_output_fn)(void *ctx, const uint8_t *pkt, size_t len);
/* The same packet as a gather list (issue 12 point 6, zero-copy output): the
 * datagram is the concatenation of iov[0..iovcnt-1]. iov[0] holds the IPv4 and
 * TCP headers (checksums computed over the whole datagram); the payload, if
 * any, follows as one or two slices that point into the socket's send buffer
 * itself (two when the run wraps around the end of its storage), so no
 * segment is copied into a staging buffer; pass iov to writev(2) as it is.
 * iovcnt is 1 to 3. The slices are valid during the call only: the memory
 * stays allocated until the callback returns even if it calls the stack, but
 * a call that lets the send buffer take new data (ustcp_send, ustcp_input with
 * an ACK) may overwrite payload bytes, so use them before calling the stack. */
typedef void (*ustcp_output_iov_fn)(void *ctx, const struct iovec *iov, int iovcnt);
/* A state change (A4), delivered as described above. */
typedef void (*ustcp_event_fn)(void *ctx, const struct ustcp_event *ev);
/* Readiness may have changed on fd (events: USTCP_POLL* bits now true). Called
 * at the end of the event that changed it, after that event's state events and
 * packets; what the callback sends rides on the segments the event itself was
 * about to send (e.g. a response on the ACK of the request, or a FIN on the ACK
 * of the peer's FIN). */
typedef void (*ustcp_ready_fn)(void *ctx, int fd, unsigned events);
/* Sees every IPv4 packet the stack sends (outgoing = true, including packets to
 * its own address) and every packet handed to it (outgoing = false); now_us is
 * when it was sent or handed in. */
typedef void (*ustcp_capture_fn)(void *ctx, bool outgoing, const uint8_t *pkt, size_t len,
                                 uint64_t now_us);

struct ustcp_stack;

/* Creates a stack with local address local_ip (host order). seed feeds the ISN
 * secret and the ephemeral port choice; a fixed seed makes a run reproducible.
 * cfg may be NULL for the defaults. Returns NULL on allocation failure or a bad
 * configuration. */
struct ustcp_stack *ustcp_stack_new(const struct ustcp_config *cfg, uint32_t local_ip,
                                    uint64_t seed, ustcp_output_fn out, void *out_ctx);
/* Frees the stack and every socket and connection in it (nothing is sent).
 * Returns 0, or -EBUSY (freeing nothing) when called from one of this stack's
 * own callbacks. NULL is a no-op. */
int ustcp_stack_free(struct ustcp_stack *s);
/* Callback setters; the rules every callback follows are above (---- callbacks). */
void ustcp_set_event_cb(struct ustcp_stack *s, ustcp_event_fn fn, void *ctx);
void ustcp_set_ready_cb(struct ustcp_stack *s, ustcp_ready_fn fn, void *ctx);
void ustcp_set_capture_cb(struct ustcp_stack *s, ustcp_capture_fn fn, void *ctx);
/* Opt-in gather output (ustcp_output_iov_fn): once set, every packet goes to
 * fn instead of the output callback given to ustcp_stack_new; NULL goes back
 * to that one. Packets whose payload cannot be referenced in place still come
 * as one flat slice: those to the stack's own address (loopback, queued) and,
 * while a capture callback is set, every packet (the capture sees it flat);
 * these copies are counted in stats.tx_bytes_copied. A data segment whose
 * bytes left the send buffer before it was delivered (acknowledged in the
 * meantime, or the connection aborted by an earlier callback) is not sent, as
 * if lost on the wire, and is counted in stats.out_iov_stale. */
void ustcp_set_output_iov(struct ustcp_stack *s, ustcp_output_iov_fn fn, void *ctx);
/* Batched output (issue 15 point 4), for a link that writes several packets
 * in one system call (io_uring). A packet handed to the output callback or to
 * the offload callback (ustcp_set_link_offload) stays valid, where it lies,
 * until the flush callback has returned: the link may queue the pointer and
 * write the queue there. Not so the payload slices of the gather callback
 * (ustcp_set_output_iov), which are valid only during the call. The flush
 * callback runs when the stack has delivered what an event (ustcp_input,
 * ustcp_poll, a socket call) produced; it must not call the stack. NULL: none.
 * (Holding the flush across several inputs, so that the answers to a batch
 * of reads go out in one call, was tried and dropped: on a TUN device it
 * halved ustcp's sending rate, as frames piled up behind the ACKs.) */
typedef void (*ustcp_flush_fn)(void *ctx);
void ustcp_set_output_flush(struct ustcp_stack *s, ustcp_flush_fn fn, void *ctx);
const struct ustcp_config *ustcp_get_config(const struct ustcp_stack *s);
/* Testing aid: fn(ctx, size) is asked before every allocation the stack makes
 * after its creation (control blocks, listener state, socket buffers,
 * out-of-order segments, the connection and listener tables, the timer heap,
 * loopback packets, the descriptor table, the readiness queue); returning true
 * makes that allocation fail as if malloc had returned NULL. NULL removes the
 * hook. Every failure, injected or real, is counted in stats.alloc_failures and
 * handled: a segment that needed memory is dropped (and not acknowledged), a
 * call that needed it returns -ENOMEM, no connection loses its timers or a
 * readiness callback. Drivers (src/link) do not consult it. */
typedef bool (*ustcp_alloc_fail_fn)(void *ctx, size_t size);
void ustcp_set_alloc_fail(struct ustcp_stack *s, ustcp_alloc_fail_fn fn, void *ctx);
uint32_t ustcp_local_ip(const struct ustcp_stack *s);
/* Gives the stack its IPv6 address (one; a second call replaces it while no
 * connection uses the old one: -EBUSY otherwise). addr is 16 bytes in network
 * order and must be a unicast address (not ::, ::1, multicast, v4-mapped): -EINVAL.
 * Until it is called the stack drops IPv6 packets (stats.ip6_not_for_us). */
int ustcp_stack_add_addr6(struct ustcp_stack *s, const uint8_t addr[16]);
/* Copies the stack's IPv6 address to out; false if it has none. */
bool ustcp_local_ip6(const struct ustcp_stack *s, uint8_t out[16]);

/* Feeds one received IPv4 or IPv6 packet (told apart by the version field; IPv6
 * needs an address, ustcp_stack_add_addr6). The work one call does is bounded: packets the
 * stack sends to its own address (self-connect, H9) are processed at most
 * cfg.netdev_budget per call (ustcp_input, ustcp_poll, or a socket call); any
 * left wait for the next call, and ustcp_next_deadline is the current time
 * until they are done. Packets from martian sources (our own address,
 * 0/8, 127/8, 224/4, 240/4) and source-routed ones are dropped and counted. */
void ustcp_input(struct ustcp_stack *s, const uint8_t *pkt, size_t len, uint64_t now_us);
/* As ustcp_input, with what the link driver knows about the packet (not the
 * packet: nothing in its bytes can set these). USTCP_IN_CSUM_VERIFIED: the TCP
 * checksum was verified, or is left to the receiver, by a trusted local sender,
 * e.g. a TUN frame read with IFF_VNET_HDR whose virtio_net_hdr says NEEDS_CSUM
 * (the kernel's CHECKSUM_PARTIAL: the field holds only the pseudo-header sum) or
 * DATA_VALID; the stack then skips that check (the IPv4 header checksum is
 * still verified). Never set it for bytes that crossed a wire. Unknown bits are
 * ignored. */
#define USTCP_IN_CSUM_VERIFIED 0x1u
void ustcp_input_flags(struct ustcp_stack *s, const uint8_t *pkt, size_t len, uint64_t now_us,
                       unsigned flags);
/* ---- link offloads ----
 * What the link does for the stack (the stack does no I/O; it is only told):
 * it cuts TCP frames over IPv4 or IPv6 of up to gso_max bytes (IP header included) into
 * segments of tx->gso_size payload bytes, as a NIC with TSO or the kernel's
 * GSO do (a TUN device with IFF_VNET_HDR and VIRTIO_NET_HDR_GSO_TCPV4 or _TCPV6), and,
 * with csum, completes TCP checksums (TUN's VIRTIO_NET_HDR_F_NEEDS_CSUM). The
 * stack then sends new data as frames of several MSS-sized segments in one
 * packet where it would have sent those segments back to back (sequence
 * numbers, congestion window and the TSO frame size still count segments of
 * one MSS; retransmissions leave one segment per packet), and leaves the TCP
 * checksum of its packets to the link: the field holds the pseudo-header sum
 * (as Linux's CHECKSUM_PARTIAL). Every outgoing packet then goes to fn with
 * what the link must do, instead of to the output callback given at creation.
 * The capture callback still sees what goes on the wire: such frames are cut
 * and their checksums completed in software for it (ustcp_tx_segment).
 * gso_max 0 and csum false (or fn NULL) turn both off again. */
struct ustcp_tx_info {
  uint16_t gso_size;      /* non-zero: cut the frame into segments of this many payload bytes */
  uint16_t hdr_len;       /* IPv4 + TCP header bytes, repeated in every segment */
  bool csum_partial;      /* the TCP checksum is left to the link: */
  uint16_t csum_start;    /*   summed from this offset (the TCP header) to the end, */
  uint16_t csum_offset;   /*   stored this far from csum_start (16) */
};
typedef void (*ustcp_output_tx_fn)(void *ctx, const uint8_t *pkt, size_t len,
                                   const struct ustcp_tx_info *tx);
void ustcp_set_link_offload(struct ustcp_stack *s, uint32_t gso_max, bool csum,
                            ustcp_output_tx_fn fn, void *ctx);
/* What a segmenting link does to a packet the stack handed to an offload
 * output callback: fn gets each segment, with complete checksums (the same
 * cutting as Linux's tcp_gso_segment: sequence numbers moved on, IPv4 IDs one
 * apart, PSH and FIN on the last segment only). For a link that cannot
 * segment, or a test. Returns the number of segments, -EINVAL for a packet
 * that is not TCP over IPv4 or IPv6 (without extension headers), -ENOMEM. */
int ustcp_tx_segment(const uint8_t *pkt, size_t len, const struct ustcp_tx_info *tx,
                     ustcp_output_fn fn, void *ctx);

/* Runs due timers; returns the next deadline (absolute) or USTCP_NO_DEADLINE. */
uint64_t ustcp_poll(struct ustcp_stack *s, uint64_t now_us);
/* The next deadline without running anything. */
uint64_t ustcp_next_deadline(const struct ustcp_stack *s);

/* ---- sockets (A1, A2) ---- */
#define USTCP_NONBLOCK 1             /* the only mode of the engine; accepted for clarity */
#define USTCP_SHUT_RD 0
#define USTCP_SHUT_WR 1
#define USTCP_SHUT_RDWR 2
#define USTCP_MSG_PEEK 0x2
#define USTCP_MSG_OOB 0x1            /* not supported: -EOPNOTSUPP (RFC 6093 §6 advises against urgent data) */
#define USTCP_MSG_EOR 0x80           /* send: the last byte ends a record: no segment carries bytes
                                        of the next send with it (Linux's MSG_EOR) */
#define USTCP_MSG_MORE 0x8000        /* more data follows: hold a partial segment as TCP_CORK
                                        does, until a send without it (Linux's MSG_MORE) */

int ustcp_socket(struct ustcp_stack *s);
int ustcp_bind(struct ustcp_stack *s, int fd, const struct ustcp_addr *addr);
int ustcp_listen(struct ustcp_stack *s, int fd, int backlog);
/* Returns a new fd, or -EAGAIN when the accept queue is empty. */
int ustcp_accept(struct ustcp_stack *s, int fd, struct ustcp_addr *peer);
/* Returns -EINPROGRESS (the SYN is out); readiness USTCP_POLLOUT or an error
 * (ustcp_sock_error) tells the outcome. A second call returns -EALREADY while
 * pending; once connected 0 (the first time, as Linux) then -EISCONN; after a
 * failure its error (once). */
int ustcp_connect(struct ustcp_stack *s, int fd, const struct ustcp_addr *addr);
ssize_t ustcp_send(struct ustcp_stack *s, int fd, const void *buf, size_t len, int flags);
/* Returns bytes read, 0 at end of stream, -EAGAIN when nothing is there yet. */
ssize_t ustcp_recv(struct ustcp_stack *s, int fd, void *buf, size_t len, int flags);
int ustcp_shutdown(struct ustcp_stack *s, int fd, int how);
/* Direct access to the socket's buffers (issue 12 point 6), like smoltcp's
 * recv(|buf| ...) and send(|buf| ...): no copy between the application and
 * the stack.
 * ustcp_recv_direct hands the unread in-order bytes to fn as they lie in the
 * receive buffer, one contiguous slice at a time (at most two a call); fn
 * returns how many of them it consumed (0..n; a return below n ends the
 * call). Consumed bytes are gone as after ustcp_recv, with the same window
 * update; the call returns the bytes consumed (0 if fn took none: they stay,
 * as after MSG_PEEK), or, with nothing to read, what ustcp_recv would without
 * calling fn (0 at end of stream, -EAGAIN, the pending error, -ENOTCONN).
 * ustcp_send_direct hands fn free space of the send buffer (at most max bytes
 * in all, one contiguous slice at a time, at most two a call) to fill; fn
 * returns how many bytes it wrote there (0..n, from the slice's start; a
 * return below n ends the call). Those bytes are sent as by ustcp_send with
 * flags (USTCP_MSG_MORE; USTCP_MSG_EOR when all of max was written); the call
 * returns them (0 if fn wrote none), or ustcp_send's errors without calling fn
 * (-EAGAIN when the buffer is full or TCP_NOTSENT_LOWAT's limit is reached,
 * -EPIPE after shutdown(SHUT_WR), -ENOMEM ...).
 * fn runs inside the call, on the stack's thread. It must not call this
 * stack: while it runs, every socket call on the stack returns -EBUSY, a
 * packet given to ustcp_input is dropped (as if lost on the wire) and
 * ustcp_poll runs no timer (they stay due); each refusal is counted in
 * stats.direct_reentry_refused. So the slice stays what fn was given. A return
 * larger than n counts as n. The pointer is valid during fn only. */
typedef size_t (*ustcp_recv_direct_fn)(void *ctx, const uint8_t *p, size_t n);
typedef size_t (*ustcp_send_direct_fn)(void *ctx, uint8_t *p, size_t n);
ssize_t ustcp_recv_direct(struct ustcp_stack *s, int fd, ustcp_recv_direct_fn fn, void *ctx);
ssize_t ustcp_send_direct(struct ustcp_stack *s, int fd, size_t max, int flags,
                          ustcp_send_direct_fn fn, void *ctx);
/* Gives up the descriptor. The connection closes gracefully (FIN after the data,
 * the close finishing in the background) or, with unread data or SO_LINGER 0,
 * is aborted with RST (RFC 9293 §3.10.4, RFC 2525 §2.17). */
int ustcp_close(struct ustcp_stack *s, int fd);
/* ABORT (RFC 9293 §3.10.5): a RST to the peer if the connection is synchronized,
 * unsent and unread data discarded, the descriptor given up at once; like close()
 * with SO_LINGER 0. */
int ustcp_abort(struct ustcp_stack *s, int fd);
int ustcp_getsockname(struct ustcp_stack *s, int fd, struct ustcp_addr *addr);
int ustcp_getpeername(struct ustcp_stack *s, int fd, struct ustcp_addr *addr);
/* Takes and clears the pending error (SO_ERROR); 0 if none. */
int ustcp_sock_error(struct ustcp_stack *s, int fd);

/* Options: level/name pairs mirror Linux's. Values are int unless noted. */
#define USTCP_SOL_SOCKET 1
#define USTCP_IPPROTO_TCP 6
#define USTCP_SO_REUSEADDR 2
#define USTCP_SO_KEEPALIVE 9
#define USTCP_SO_SNDBUF 7
#define USTCP_SO_RCVBUF 8
#define USTCP_SO_LINGER 13        /* struct ustcp_linger */
#define USTCP_SO_ERROR 4
#define USTCP_TCP_NODELAY 1
#define USTCP_TCP_MAXSEG 2
#define USTCP_TCP_KEEPIDLE 4      /* seconds */
#define USTCP_TCP_KEEPINTVL 5     /* seconds */
#define USTCP_TCP_KEEPCNT 6
#define USTCP_TCP_INFO 11         /* struct ustcp_tcp_info (get only) */
#define USTCP_TCP_QUICKACK 12     /* 1: no delayed ACKs */
#define USTCP_TCP_CORK 3          /* 1: hold partial segments until uncorked (Linux's
                                     TCP_CORK: no timer; clearing it sends them) */
#define USTCP_TCP_USER_TIMEOUT 18 /* ms (RFC 5482, Linux): how long transmitted data may
                                     stay unacknowledged, the peer's window stay zero, or
                                     keepalive probes go unanswered, before the connection
                                     is dropped with ETIMEDOUT;
                                     0 = the retries2 rule */
#define USTCP_TCP_NOTSENT_LOWAT 25 /* bytes: writable only while fewer bytes than this
                                     are unsent (poll: twice fewer), Linux's
                                     tcp_stream_memory_free; 0 = config notsent_lowat */
#define USTCP_TCP_INQ 36          /* 0/1, read back as set (Linux: recvmsg_inq): 1 asks
                                     for the TCP_CM_INQ control message on each receive;
                                     its value is ustcp_inq() (drivers attach it) */
#define USTCP_TCP_CM_INQ USTCP_TCP_INQ
#define USTCP_IPPROTO_IP 0
#define USTCP_IP_TOS 1            /* accepted and read back (Linux keeps ECN bits out) */
#define USTCP_IP_MTU_DISCOVER 10  /* accepted and read back (IP_PMTUDISC_*: 0..5); neither
                                     IP option changes what is sent */
#define USTCP_IPPROTO_IPV6 41
#define USTCP_IPV6_V6ONLY 26      /* 0/1 (Linux's default 0, net.ipv6.bindv6only): a socket
                                     bound to IPv6 "::" takes IPv6 connections only; set
                                     before bind/listen */
#define USTCP_TCP_CONGESTION 13   /* a name string: "cubic" or "reno" (as Linux) */
#define USTCP_TCP_ECN 0x7501      /* ustcp's own (Linux has only the sysctl and the route
                                     feature "ecn"): this socket's tcp_ecn, 0, 1 or 2 as
                                     ustcp_config.tcp_ecn; set before connect()/listen();
                                     an accepted socket takes its listener's */
struct ustcp_linger {
  int l_onoff;
  int l_linger;                   /* seconds; 0 with l_onoff = abortive close (RST) */
};
int ustcp_setsockopt(struct ustcp_stack *s, int fd, int level, int name,
                     const void *val, size_t len);
/* What Linux's recvmsg puts in the TCP_CM_INQ control message of a socket with
 * TCP_INQ set (tcp_inq_hint), as of now: the bytes left to read, plus one once
 * the peer's FIN is in (rcv_nxt - copied_seq); 1 if none are left and the
 * connection is over. Unlike ioctl(SIOCINQ), it counts the FIN. -EINVAL on a
 * listener, -EBADF. */
int ustcp_inq(struct ustcp_stack *s, int fd);
int ustcp_getsockopt(struct ustcp_stack *s, int fd, int level, int name,
                     void *val, size_t *len);

/* Readiness (poll(2) bits). */
#define USTCP_POLLIN 0x001
#define USTCP_POLLOUT 0x004
#define USTCP_POLLERR 0x008
#define USTCP_POLLHUP 0x010
#define USTCP_POLLRDHUP 0x2000
/* Current readiness of fd, or a negative errno for a bad fd. */
int ustcp_sock_events(struct ustcp_stack *s, int fd);

/* Per-connection figures, like Linux's TCP_INFO (A4). */
struct ustcp_tcp_info {
  enum ustcp_state state;
  uint32_t snd_mss, rcv_mss;
  uint64_t rtt_us, rttvar_us, rto_us;   /* srtt, rttvar, current RTO */
  uint32_t snd_cwnd, snd_ssthresh;      /* bytes */
  uint32_t snd_wnd, rcv_wnd;            /* bytes (scaled) */
  uint8_t snd_wscale, rcv_wscale;
  uint32_t unacked;                     /* bytes in flight */
  uint32_t backoff;                     /* RTO doublings in force */
  uint64_t segs_in, segs_out, data_segs_in, data_segs_out;
  uint64_t bytes_sent, bytes_acked, bytes_received;
  uint64_t retrans_segs, fast_retrans, rto_expirations, dup_acks_in;
  uint64_t ooo_segs, dup_segs_in, zero_window_probes;
  uint32_t snd_buf_used, rcv_buf_used;
  uint64_t mem_bytes;                   /* buffers and control block owned by this connection */
  uint64_t tlp_probes;                  /* tail loss probes sent (RFC 8985 §7; Linux's
                                           TCPLossProbes) */
};
int ustcp_get_info(struct ustcp_stack *s, int fd, struct ustcp_tcp_info *info);

/* Linux's struct tcp_info (include/uapi/linux/tcp.h), field for field through
 * Linux 6.7's tcpi_total_rto_time (248 bytes), for code that reads TCP_INFO as
 * it would from the kernel: the LD_PRELOAD shim answers getsockopt(TCP_INFO)
 * with it, the packetdrill adapter hands it to packetdrill's %{ }% blocks.
 * Linux's two bit-field bytes are spelled out: wscale holds snd_wscale in its
 * low 4 bits and rcv_wscale in its high 4 (GCC's order on little-endian, as
 * the kernel is built), flags holds delivery_rate_app_limited in bit 0.
 * Counts are in segments and times in microseconds, as Linux reports them;
 * tcpi_last_* are milliseconds ago. tcpi_busy_time and tcpi_rwnd_limited are
 * Linux's chronographs (ms resolution; Linux's is a jiffy). Fields ustcp does
 * not track (pacing, delivery rate, tcpi_sndbuf_limited, rehash) are 0,
 * max_pacing_rate is UINT64_MAX (no limit), as a fresh Linux socket reports. */
struct ustcp_linux_tcp_info {
  uint8_t tcpi_state, tcpi_ca_state, tcpi_retransmits, tcpi_probes, tcpi_backoff,
      tcpi_options, tcpi_wscale, tcpi_flags;
  uint32_t tcpi_rto, tcpi_ato, tcpi_snd_mss, tcpi_rcv_mss;
  uint32_t tcpi_unacked, tcpi_sacked, tcpi_lost, tcpi_retrans, tcpi_fackets;
  uint32_t tcpi_last_data_sent, tcpi_last_ack_sent, tcpi_last_data_recv, tcpi_last_ack_recv;
  uint32_t tcpi_pmtu, tcpi_rcv_ssthresh, tcpi_rtt, tcpi_rttvar, tcpi_snd_ssthresh,
      tcpi_snd_cwnd, tcpi_advmss, tcpi_reordering;
  uint32_t tcpi_rcv_rtt, tcpi_rcv_space;
  uint32_t tcpi_total_retrans;
  uint64_t tcpi_pacing_rate, tcpi_max_pacing_rate, tcpi_bytes_acked, tcpi_bytes_received;
  uint32_t tcpi_segs_out, tcpi_segs_in;
  uint32_t tcpi_notsent_bytes, tcpi_min_rtt, tcpi_data_segs_in, tcpi_data_segs_out;
  uint64_t tcpi_delivery_rate;
  uint64_t tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited;
  uint32_t tcpi_delivered, tcpi_delivered_ce;
  uint64_t tcpi_bytes_sent, tcpi_bytes_retrans;
  uint32_t tcpi_dsack_dups, tcpi_reord_seen;
  uint32_t tcpi_rcv_ooopack;
  uint32_t tcpi_snd_wnd, tcpi_rcv_wnd;
  uint32_t tcpi_rehash;
  uint16_t tcpi_total_rto, tcpi_total_rto_recoveries;
  uint32_t tcpi_total_rto_time;
};
/* Fills *info for fd (any state but a listener's accept queue entries; a
 * listener reports LISTEN and its queue lengths in unacked/sacked, as Linux).
 * 0, or -EBADF / -EFAULT. */
int ustcp_get_linux_tcp_info(struct ustcp_stack *s, int fd, struct ustcp_linux_tcp_info *info);

/* ---- observability (A4) ---- */
struct ustcp_sock_row {
  int fd;                               /* -1 for embryonic/orphan/TIME_WAIT entries */
  enum ustcp_state state;
  struct ustcp_addr local, remote;
  uint32_t recv_q, send_q;              /* like ss: unread bytes / unacked+unsent */
  uint64_t conn_id;
};
/* Fills up to cap rows (listeners, connections, half-open, TIME_WAIT); returns the
 * total number (which may exceed cap). */
size_t ustcp_sock_table(struct ustcp_stack *s, struct ustcp_sock_row *rows, size_t cap);

/* Stack-wide counters (like /proc/net/snmp and netstat -s). */
struct ustcp_stats {
  uint64_t ip_in, ip_out, ip_bad, ip_not_for_us, ip_frag_dropped;
  uint64_t tcp_in, tcp_out, tcp_bad_checksum, tcp_malformed, tcp_rst_out, tcp_rst_in;
  uint64_t active_opens, passive_opens, attempt_fails, estab_resets, retrans_segs;
  uint64_t syn_queue_drops, accept_queue_drops, syncookies_sent, syncookies_recv,
           syncookies_failed;
  /* paws_dropped: segments older than TS.Recent dropped by PAWS (RFC 7323 §5,
   * Linux's PAWSEstabRejected); each is answered by a rate-limited ACK */
  uint64_t challenge_acks, challenge_acks_limited, ooo_dropped, paws_dropped;
  uint64_t icmp_in, icmp_out;
  /* Engine memory accounting (issue 12). mem_bytes is what the engine has
   * allocated for connections and holds now: control blocks, listener state,
   * out-of-order interval pools, and the storage of every send and receive ring
   * (allocated at its first byte, grown by doubling up to the socket-buffer size
   * as data needs it, released when the ring drains: all read, all
   * acknowledged). mem_peak_bytes is the highest mem_bytes seen. Both count capacity
   * reserved, not memory touched: the process RSS can be far lower, as pages of
   * a ring never written are never faulted in. Descriptor table, demux hash,
   * timer heap and packet staging are not counted.
   * buf_bytes_reserved is the part of mem_bytes that is ring storage (send +
   * receive rings allocated now); buf_bytes_used is the bytes actually holding
   * data in them now: unacknowledged and unsent data in send rings, unread
   * in-order data and out-of-order intervals in receive rings. These two are
   * computed when ustcp_get_stats is called, by a walk over the connections
   * (O(connections): not for the per-packet path). */
  uint64_t conns_alive, mem_bytes, mem_peak_bytes;
  uint64_t buf_bytes_reserved, buf_bytes_used;
  /* state events and packets dropped on their way to the callbacks (out of
   * memory); a dropped outgoing packet is as if lost on the wire */
  uint64_t callback_drops;
  /* issue 10 (input path): ACKs to out-of-window segments not sent (per-connection
   * rate limit, Linux's TCPACKSkipped*); SYNs dropped for a flag combination no
   * stack sends (SYN+FIN, SYN+RST at a listener; Linux's TCP_FLAGS drop reason) */
  uint64_t oow_acks_limited, syn_bad_flags;
  uint64_t alloc_failures;      /* allocations that failed (or were failed by the test
                                   hook, ustcp_set_alloc_fail); each is handled: the
                                   segment or call it served is dropped or refused */
  /* IP input hygiene (issue 10) */
  uint64_t ip_martian_src;      /* source 0/8, 127/8, 224/4, 240/4 or ours from the link */
  uint64_t ip_source_routed;    /* LSRR/SSRR options: dropped (accept_source_route = 0) */
  uint64_t ip_out_martian;      /* output to a non-unicast address, refused */
  uint64_t loop_budget_hits;    /* calls that left looped-back packets for the next call */
  uint64_t loop_dropped;        /* looped-back packets dropped: loopback queue full */
  uint64_t icmp_out_ratelimited; /* ICMP errors not sent: rate limit (icmp_msgs_per_sec) */
  uint64_t icmp_err_unmatched;  /* ICMP errors quoting no connection of ours: dropped */
  /* Linux's TCPTimeWaitOverflow and TCPAbortOnMemory (issue 10 point 5). */
  uint64_t tw_overflow, abort_on_memory;
  uint64_t time_wait, orphans;          /* connections now in TIME_WAIT / orphaned */
  /* IPv4 reassembly (src/stack/ip_frag.c). ip_frag_dropped (above) counts every
   * fragment or partial datagram dropped: malformed, over the memory or queue
   * limits, duplicate; these count datagrams rebuilt, datagrams dropped for an
   * overlap (Linux's ReasmOverlaps) and for ipfrag_time (ReasmTimeout). */
  uint64_t ip_frag_reassembled, ip_frag_overlaps, ip_frag_timeouts;
  uint64_t tcp_mem_pressures;   /* entries into memory pressure (Linux's TCPMemoryPressures):
                                   buffer storage reached config.tcp_mem_pressure */
  /* Ring storage drained rings gave back and the stack keeps for the next ring
   * that grows (at most 4 blocks, 16 MiB; not in mem_bytes) */
  uint64_t ring_cache_bytes;
  /* Payload copies made by the stack (issue 12 point 6), in bytes: tx counts
   * application -> send buffer (ustcp_send) and send buffer -> packet (the
   * flat output, loopback and capture copies); rx counts packet -> receive
   * buffer (in order or out of order) and receive buffer -> application
   * (ustcp_recv). buf_grow_copied counts bytes moved when a buffer's storage
   * grows. ustcp_send_direct, ustcp_recv_direct and the gather output copy
   * nothing. out_iov_stale: gather packets not sent because their payload
   * left the send buffer before delivery (see ustcp_set_output_iov);
   * direct_reentry_refused: calls refused while a direct callback ran. */
  uint64_t tx_bytes_copied, rx_bytes_copied, buf_grow_copied;
  uint64_t out_iov_stale, direct_reentry_refused;
  /* Loss recovery (issue 14): D-SACK blocks received and sent (Linux's
   * TCPDSACKRecv, TCPDSACKOldSent + TCPDSACKOfoSent), segments RACK marked
   * lost (RFC 8985 §6), and congestion-window reductions undone as spurious
   * (TCPDSACKUndo + TCPFullUndo: every retransmission D-SACKed, or the
   * timestamps showed the originals arrived, RFC 3522) */
  uint64_t tcp_dsacks_in, tcp_dsacks_out, tcp_rack_lost, tcp_spurious_undos;
  /* IPv6 (issue 16, RFC 8200). ip6_in/ip6_out: datagrams; ip6_bad: malformed
   * (header, extension chain over its bounds, TCP checksum); ip6_not_for_us:
   * another destination, or no IPv6 address yet; ip6_martian_src: source ::,
   * ::1, multicast, v4-mapped, or ours from the link; ip6_ext_dropped: dropped
   * for an extension header (Routing with segments left, unknown option of a
   * discarding kind, ESP/AH, No Next Header, more than the walk's bounds);
   * ip6_frag_dropped: fragments (no reassembly, RFC 8200 §4.5 not implemented);
   * icmp6_in/out: ICMPv6 messages; icmp6_ptb: Packet Too Big that lowered a
   * path MTU (RFC 8201) */
  uint64_t ip6_in, ip6_out, ip6_bad, ip6_not_for_us, ip6_martian_src;
  uint64_t ip6_ext_dropped, ip6_frag_dropped;
  uint64_t icmp6_in, icmp6_out, icmp6_ptb;
};
void ustcp_get_stats(const struct ustcp_stack *s, struct ustcp_stats *out);

#ifdef __cplusplus
}
#endif
#endif
