/* src/stack: one stack instance. Owns the engine, the 4-tuple demultiplexer
 * (hash table of connections; listeners by port), local port allocation
 * (RFC 6056), the ISN secret (inside the engine), IPv4 and ICMP in and out,
 * loopback to its own address, and the tunables.
 *
 *   ustcp_input -> ipv4 decode (src/wire) -> IP checks: martian source, not for
 *                  us, source route (each dropped and counted) -> fragments
 *                  reassembled with limits (ip_frag.c), the whole datagram
 *                  going through the checks again
 *               -> tcp decode -> demux:
 *                    4-tuple match   -> tcp_input
 *                    listener match  -> tcp_listen_input
 *                    neither         -> tcp_input_no_conn (RST, H3)
 *   IPv6 (version 6): ip6.c (extension headers with bounds, martians, ICMPv6,
 *                  fragments dropped) -> the same demux with the addresses as
 *                  handles of the engine's interned-address table (tcp_addr6.c)
 *   engine output -> never to a non-unicast address (ip_out_martian) ->
 *                    tcp_packet_encode into a notice (notify.c) -> loopback queue
 *                    (at most netdev_budget packets taken from it per call) or
 *                    the output callback at the end of the event
 *
 * No function here keeps a packet on the C stack (issue 10, point 7: at most
 * 4 KiB a frame, checked by tests/sh/stack_usage.sh).
 */
#ifndef USTCP_STACK_H
#define USTCP_STACK_H
#include "tcp/tcp.h"
#include "ustcp.h"

struct sock_table;

struct stack_hash {
  struct tcb **buckets;
  size_t nbuckets;      /* power of two */
  size_t count;
};

struct loop_pkt {
  struct loop_pkt *next;
  size_t len;
  uint8_t data[];
};

struct ustcp_stack {
  struct ustcp_config cfg;
  struct tcp_engine eng;
  uint32_t local_ip;
  /* IPv6 (issue 16): the address (ustcp_stack_add_addr6) and its handle in the
   * engine's table (the stack holds one reference while it has it) */
  bool has_ip6;
  uint8_t local_ip6[16];
  uint32_t local6_h;
  ustcp_output_fn out;
  void *out_ctx;
  ustcp_output_iov_fn out_iov;    /* gather output (issue 12 point 6), NULL: out */
  void *out_iov_ctx;
  bool direct_busy;               /* a direct-access callback runs (src/sock) */
  ustcp_output_tx_fn out_tx;      /* ustcp_set_link_offload: replaces out */
  void *out_tx_ctx;
  bool tx_csum;                   /* the link completes TCP checksums */
  uint8_t *seg_buf;               /* a segment cut for the capture callback (64 KiB) */
  ustcp_event_fn event_fn;
  void *event_ctx;
  ustcp_ready_fn ready_fn;
  ustcp_capture_fn capture_fn;
  void *capture_ctx;
  void *ready_ctx;
  struct stack_hash conns;        /* connections by 4-tuple */
  struct stack_hash listeners;    /* LISTEN sockets by local port */
  uint32_t *port_refs;            /* control blocks holding each local port */
  uint32_t *port_shared_refs;     /* of those, the ones connect() picked (shareable) */
  uint64_t port_refs_total;       /* sums of the two tables, kept with them so a */
  uint64_t port_shared_total;     /* check need not scan 65536 entries */
  uint16_t port_perturb[256];     /* RFC 6056 Algorithm 4's table of counters */
  uint64_t rng;                   /* ephemeral ports (RFC 6056) */
  uint16_t ip_id;
  struct ustcp_stats stats;
  struct loop_pkt *loop_head, *loop_tail;
  size_t loop_len;
  bool in_after_event;
  /* ICMP error rate limit (src/stack/ip_icmp.c): a token bucket */
  bool icmp_bucket_init;
  uint32_t icmp_tokens;
  uint64_t icmp_tokens_at_us;
  struct sock_table *socks;       /* owned by src/sock */
  /* the socket layer's readiness hook, called for a tcb with a descriptor */
  void (*sock_wake)(struct ustcp_stack *s, struct tcb *t);
  void (*sock_free)(struct ustcp_stack *s);
  /* runs queued readiness callbacks; returns true if it ran any */
  bool (*sock_dispatch)(struct ustcp_stack *s);
  /* fd if descriptor fd still names connection conn_id, else -1 (src/sock) */
  int (*sock_fd_of)(struct ustcp_stack *s, int fd, uint64_t conn_id);
  /* Callbacks are never called from inside the engine (src/stack/notify.c):
   * state events and packets wait here, in order, for stack_deliver. */
  struct notify_chunk *nq_first, *nq_last, *nq_rd;
  size_t nq_rd_off;
  unsigned nq_delivering;         /* stack_deliver calls under way (nested) */
  unsigned cb_depth;              /* application callbacks under way (nested) */
  ustcp_flush_fn flush_fn;        /* ustcp_set_output_flush */
  void *flush_ctx;
  /* IPv4 reassembly queues (src/stack/ip_frag.c) */
  struct frag_queue *frag_queues;
  uint32_t frag_nqueues;
  size_t frag_mem;
};

static inline struct ustcp_stack *stack_of(struct tcp_engine *e)
{
  return (struct ustcp_stack *)e->owner;
}

/* The connection of a 4-tuple; v6: lip and rip are IPv6 handles (struct tcp_ep). */
struct tcb *stack_lookup_af(struct ustcp_stack *s, bool v6, uint32_t lip, uint16_t lport,
                            uint32_t rip, uint16_t rport);
/* The same for IPv4. */
static inline struct tcb *stack_lookup(struct ustcp_stack *s, uint32_t lip, uint16_t lport,
                                       uint32_t rip, uint16_t rport)
{
  return stack_lookup_af(s, false, lip, lport, rip, rport);
}
/* The listener for a segment of family v6 to lip:lport: one bound to that
 * address, else one bound to "any" of the family, else (IPv4) one bound to IPv6
 * "::" without IPV6_V6ONLY (Linux's compute_score prefers the exact family). */
struct tcb *stack_lookup_listener(struct ustcp_stack *s, bool v6, uint32_t lip, uint16_t lport);
void stack_listener_add(struct ustcp_stack *s, struct tcb *t);
void stack_listener_remove(struct ustcp_stack *s, struct tcb *t);
/* Local port references: every control block with a local port holds one. */
void stack_port_ref(struct ustcp_stack *s, uint16_t port);
void stack_port_unref(struct ustcp_stack *s, uint16_t port);
uint32_t stack_port_users(const struct ustcp_stack *s, uint16_t port);
/* Picks an ephemeral port: for bind() (remote NULL or for_bind) one nobody
 * holds; for connect() to remote, one whose 4-tuple is free and that no bound
 * socket or listener holds exclusively (RFC 6056 §3.3.4, Algorithm 4). 0 if
 * there is none: EADDRNOTAVAIL only when that destination's 4-tuples are used. */
uint16_t stack_ephemeral_port(struct ustcp_stack *s, const struct tcp_ep *remote,
                              bool for_bind);
/* ---- addresses of either family (issue 16) ---- */
/* The engine's form of a: IPv4, a v4-mapped IPv6 address as IPv4 with
 * TCP_EP_MAPPED, or IPv6 with a reference taken on its handle (release it with
 * stack_ep_release). -ENOMEM, -EAFNOSUPPORT for an unknown family. */
int stack_ep_from_addr(struct ustcp_stack *s, const struct ustcp_addr *a, struct tcp_ep *out);
void stack_ep_release(struct ustcp_stack *s, struct tcp_ep *ep);
/* The API's form of ep; mapped: report IPv4 as ::ffff:a.b.c.d (an IPv6 socket). */
void stack_addr_from_ep(const struct ustcp_stack *s, const struct tcp_ep *ep, bool mapped,
                        struct ustcp_addr *out);
/* ---- ip6.c: IPv6 in and out (RFC 8200, RFC 4443) ---- */
void ip6_in(struct ustcp_stack *s, const uint8_t *pkt, size_t len, bool from_link,
            unsigned flags);
/* A TCP segment from handle src (0: our address) to handle dst, as eng_output. */
void ip6_output_tcp(struct ustcp_stack *s, uint32_t src, uint32_t dst, uint8_t tclass,
                    const struct tcp_hdr *h, const struct tcp_iov *pl, size_t npl,
                    uint32_t gso_size);
/* The segment path shared by both families (stack.c). */
void stack_tcp_in(struct ustcp_stack *s, const struct tcp_packet *p);
/* Queues a packet to our own address for the next round (H9), counted. */
void stack_loop_queue(struct ustcp_stack *s, const uint8_t *pkt, size_t n);
/* The ICMP error token bucket (ip_icmp.c), shared by ICMPv4 and ICMPv6 as
 * Linux's per-host limit is. */
bool stack_icmp_error_allowed(struct ustcp_stack *s);
/* Ends an event (input, poll, socket call): delivers the recorded notices (state
 * events, packets) to the callbacks, runs the application's readiness callbacks,
 * then the output they and the event made due, then packets looped back to our
 * own address, until nothing is left. Not re-entrant: a socket call made from a
 * callback delivers its notices and returns; the outer loop picks up the rest of
 * its work. */
void stack_after_event(struct ustcp_stack *s);
uint64_t stack_rand(struct ustcp_stack *s);

/* ---- notify.c: the application's callbacks, outside the engine ---- */
/* Records a state event for the event callback. */
void notify_event(struct ustcp_stack *s, const struct ustcp_event *ev);
/* Room for an outgoing packet of at most max_len bytes, queued for the capture
 * and (unless looped, i.e. to our own address) output callbacks; NULL if out of
 * memory (counted). notify_packet_end gives its length, or drops it (!keep). */
uint8_t *notify_packet_begin(struct ustcp_stack *s, bool looped, size_t max_len);
/* As notify_packet_begin, for a gather packet (struct gather_rec, stack.c):
 * delivered through stack_deliver_gather. Ended by notify_packet_end. */
uint8_t *notify_gather_begin(struct ustcp_stack *s, size_t max_len);
void stack_deliver_gather(struct ustcp_stack *s, const uint8_t *rec, size_t len, uint64_t time_us);
void notify_packet_end(struct ustcp_stack *s, uint8_t *pkt, size_t len, bool keep);
/* What the link is to do with the packet (before notify_packet_end): cut it
 * into segments of gso_size payload bytes, complete its TCP checksum. */
void notify_packet_tx(uint8_t *pkt, uint16_t gso_size, bool csum_partial);
/* Records an incoming packet for the capture callback. */
void notify_capture_in(struct ustcp_stack *s, const uint8_t *pkt, size_t len);
/* Runs the callbacks of everything recorded, in order; true if there was any.
 * Only where no engine function is on the stack (end of an entry). */
bool stack_deliver(struct ustcp_stack *s);
void notify_free(struct ustcp_stack *s);
/* An IPv4 datagram for us that is not TCP (ICMP, UDP, others), past the IP
 * checks of ip_in: src/stack/ip_icmp.c. */
void stack_ip_other(struct ustcp_stack *s, const struct ipv4_hdr *ip, const uint8_t *pkt,
                    const uint8_t *payload, size_t plen);
/* ---- ip_frag.c: IPv4 reassembly with limits ---- */
/* A fragment for us (past ip_in's checks). Returns the whole datagram (malloc'd,
 * *out_len bytes, the caller frees it) when this fragment completes one, else
 * NULL (held, or dropped and counted). */
uint8_t *ip_frag_in(struct ustcp_stack *s, const struct ipv4_hdr *ip, const uint8_t *pkt,
                    const uint8_t *payload, size_t plen, size_t *out_len);
/* Frees the queues whose ipfrag_time has passed. */
void ip_frag_expire(struct ustcp_stack *s, uint64_t now_us);
void ip_frag_free_all(struct ustcp_stack *s);
/* True for an address that can be one host on the network: not 0.0.0.0/8,
 * 127.0.0.0/8, multicast 224.0.0.0/4, nor 240.0.0.0/4 (which holds the limited
 * broadcast 255.255.255.255). Nothing is sent to, or accepted from, others. */
bool stack_addr_unicast(uint32_t ip);
#endif
