/* src/link/sim: an in-memory IPv4 network of several hosts with a virtual clock.
 *
 * Each host has an address and a receive callback; packets sent by a host are
 * routed by their IPv4 destination address, or by their IPv6 destination for a
 * host given one with sim_set_host_addr6. Each direction between two hosts is a
 * link with its own configuration: one-way delay (+ uniform jitter), bandwidth
 * (serialisation delay, FIFO), a queue limit (tail drop), and probabilities of loss,
 * duplication, reordering (extra delay) and corruption (one byte flipped); the
 * queue limit may instead be counted in bytes (smoltcp's netsim model). All
 * randomness comes from one generator seeded by sim_new(seed), or, for a link given
 * sim_set_link_seed(), from that link's own generator, so a run with the same seeds
 * and the same inputs produces the same packet trace.
 *
 * Hosts may also have timers: a host gives a next_deadline callback and a poll
 * callback; sim_run_until() advances virtual time to the earliest of packet
 * arrivals and host deadlines, in order, so stacks run entirely in virtual time.
 *
 * Drop rules remove chosen packets by description ("the first FIN from host A",
 * "the 2nd SYN-ACK"), for demos and scenario tests that lose one exact segment.
 * A tap sees every packet sent and its fate (for pcap capture and diagrams).
 *
 * Single-threaded; one sim_net holds no globals, so many can coexist.
 */
#ifndef USTCP_SIM_H
#define USTCP_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAX_HOSTS 64
#define SIM_MAX_PACKET 65535
#define SIM_NO_DEADLINE UINT64_MAX

struct sim_net;

struct sim_link_cfg {
  uint64_t delay_us;        /* one-way propagation delay */
  uint64_t jitter_us;       /* extra delay uniform in [0, jitter_us] (may reorder) */
  uint64_t bandwidth_bps;   /* bits per second; 0 = infinite */
  uint32_t queue_limit;     /* packets waiting for serialisation; 0 = unlimited */
  uint32_t queue_limit_bytes;/* bytes not yet serialised (bandwidth_bps > 0) past which a
                                packet is tail-dropped, smoltcp's netsim Bottleneck; 0 = unlimited */
  double loss;              /* probability a packet is dropped */
  double duplicate;         /* probability a packet is delivered twice */
  double reorder;           /* probability a packet gets reorder_delay_us extra delay */
  uint64_t reorder_delay_us;/* extra delay for reordered packets (default 2*delay+1ms if 0) */
  double corrupt;           /* probability one random byte is flipped */
  bool down;                /* link outage: every packet is dropped while set */
};

struct sim_host_ops {
  /* A packet arrives at this host at virtual time now_us. pkt is valid only during
   * the call. */
  void (*deliver)(void *ctx, const uint8_t *pkt, size_t len, uint64_t now_us);
  /* Earliest time the host needs poll() called, or SIM_NO_DEADLINE. May be NULL. */
  uint64_t (*next_deadline)(void *ctx);
  /* Runs the host's timers at virtual time now_us. May be NULL. */
  void (*poll)(void *ctx, uint64_t now_us);
};

/* What happened to a packet, reported to the tap. */
enum sim_fate {
  SIM_SENT,        /* handed to the link (tap called at send time) */
  SIM_DELIVERED,   /* arrived at the destination (tap called at arrival time) */
  SIM_DROP_LOSS,   /* random loss */
  SIM_DROP_RULE,   /* removed by a drop rule */
  SIM_DROP_QUEUE,  /* queue limit reached */
  SIM_DROP_DOWN,   /* link down */
  SIM_DROP_NOROUTE,/* no host has the destination address */
  SIM_DUPLICATED,  /* an extra copy was scheduled (tap called at send time) */
  SIM_CORRUPTED,   /* a byte was flipped (tap called at send time, with the corrupted bytes) */
};
const char *sim_fate_str(enum sim_fate f);

typedef void (*sim_tap_fn)(void *ctx, int from_host, int to_host, enum sim_fate fate,
                           const uint8_t *pkt, size_t len, uint64_t now_us);

struct sim_net *sim_new(uint64_t seed);
void sim_free(struct sim_net *net);

/* Adds a host with an IPv4 address (host order) and a name (for drop specs and
 * logs, copied). Returns the host id (0, 1, ...) or -1 when full / duplicate address. */
int sim_add_host(struct sim_net *net, const char *name, uint32_t addr,
                 const struct sim_host_ops *ops, void *ctx);
/* Gives a host an IPv6 address too (issue 16): packets whose version is 6 are
 * routed by their IPv6 destination. Returns 0, or -1 for no such host or an
 * address another host has. */
int sim_set_host_addr6(struct sim_net *net, int host, const uint8_t addr6[16]);
int sim_host_by_name(const struct sim_net *net, const char *name);
const char *sim_host_name(const struct sim_net *net, int host);

/* Sets the configuration of the link from -> to (one direction). Links start with
 * all zeros (no delay, no faults). sim_set_all_links sets every direction. */
void sim_set_link(struct sim_net *net, int from, int to, const struct sim_link_cfg *cfg);
void sim_set_all_links(struct sim_net *net, const struct sim_link_cfg *cfg);
/* Gives the link from -> to its own random stream, seeded from seed, for every draw
 * made on it (loss, corruption, reordering, jitter, duplication), as smoltcp's netsim
 * gives each direction its own generator: what is lost on one direction then does not
 * depend on what the other links carry, nor on sim_new's seed. Without this call a
 * link draws from the network's one generator (the default, which the goldens use). */
void sim_set_link_seed(struct sim_net *net, int from, int to, uint64_t seed);
/* Mutable access, e.g. to take a link down and up during a run. */
struct sim_link_cfg *sim_link(struct sim_net *net, int from, int to);

/* Sends a packet from a host; the destination is read from the IPv4 (or IPv6) header.
 * Copies the bytes. Returns 0, or -1 for a packet too short to route. */
int sim_send(struct sim_net *net, int from_host, const uint8_t *pkt, size_t len);

uint64_t sim_now(const struct sim_net *net);
/* Earliest pending event (packet arrival or host deadline), SIM_NO_DEADLINE if none. */
uint64_t sim_next_event(struct sim_net *net);
/* Processes the single earliest event if it is at or before until_us and returns
 * true; otherwise sets the clock to until_us (if later) and returns false. */
bool sim_step(struct sim_net *net, uint64_t until_us);
/* Processes every event up to and including until_us; the clock ends at until_us. */
void sim_run_until(struct sim_net *net, uint64_t until_us);
/* Number of packets in flight. */
size_t sim_in_flight(const struct sim_net *net);

/* ---- drop rules ----
 * A rule matches packets from one host (or any), by TCP segment kind, and drops the
 * nth match (1-based), or every match from the nth on if count is 0, or `count`
 * matches starting at the nth. */
enum sim_seg_kind {
  SIM_SEG_ANY,      /* any TCP segment */
  SIM_SEG_SYN,      /* SYN without ACK */
  SIM_SEG_SYNACK,   /* SYN with ACK */
  SIM_SEG_ACK,      /* pure ACK: ACK only (PSH allowed), no payload, no SYN/FIN/RST */
  SIM_SEG_DATA,     /* payload > 0 (FIN may be set too) */
  SIM_SEG_FIN,      /* FIN set */
  SIM_SEG_RST,      /* RST set */
};
struct sim_drop_rule {
  int from_host;            /* -1: any host */
  enum sim_seg_kind kind;
  unsigned nth;             /* 1-based index among matches */
  unsigned count;           /* how many to drop from the nth on; 0 = all */
  unsigned seen;            /* matches so far (state, start at 0) */
  unsigned dropped;         /* drops so far (state) */
};
/* Parses "[HOST:]KIND[#N][xCOUNT|+]", e.g. "fin", "client:fin#1", "syn-ack#2",
 * "data#3x2" (3rd and 4th data segments), "syn+" (every SYN). KIND is one of any,
 * syn, syn-ack, ack, data, fin, rst. HOST is a host name given to sim_add_host.
 * Returns 0, or -1 with a one-line reason in err (if err != NULL). */
int sim_parse_drop_rule(const struct sim_net *net, const char *spec,
                        struct sim_drop_rule *out, char *err, size_t errcap);
/* Adds a rule (copied). Returns 0 or -1 when too many rules (limit 32). */
int sim_add_drop_rule(struct sim_net *net, const struct sim_drop_rule *rule);
/* Classifies a packet (IPv4 or IPv6, then TCP) the way rules see it; false if not TCP. */
bool sim_seg_matches(const uint8_t *pkt, size_t len, enum sim_seg_kind kind);

void sim_set_tap(struct sim_net *net, sim_tap_fn tap, void *ctx);

/* Counters. */
struct sim_stats {
  uint64_t sent, delivered, dropped_loss, dropped_rule, dropped_queue, dropped_down,
           dropped_noroute, duplicated, corrupted, reordered;
};
void sim_get_stats(const struct sim_net *net, struct sim_stats *out);

/* The generator, exposed so a caller derives all its randomness from the same seed
 * (splitmix64/xoshiro-style; never returns the same stream for different seeds). */
uint64_t sim_rand(struct sim_net *net);
#endif
