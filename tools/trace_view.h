/* The sequence-diagram view shared by `ustcp demo` (live, from the engine on the
 * simulated network) and `ustcp trace` (from a pcap file).
 *
 * A run is recorded as a list of entries (segments, socket calls, state changes,
 * notes) in time order; tv_render_text, tv_render_json and tv_render_svg draw it.
 * Segments are labelled with the seeds' terms (first/second/third handshake,
 * first to fourth wave), in English or Chinese. */
#ifndef USTCP_TRACE_VIEW_H
#define USTCP_TRACE_VIEW_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "ustcp.h"
#include "wire/wire.h"

enum tv_kind { TV_SEG, TV_CALL, TV_STATE, TV_NOTE };

/* The two endpoints of a connection by column: [0] the left (client) column's
 * address and port, [1] the right (server) column's. */
struct tv_tuple {
  uint32_t ip[2];
  uint16_t port[2];
  bool set;
};

/* One connection (4-tuple; a new SYN with another ISN on the same 4-tuple starts
 * a new one). Labels, relative sequence numbers, window scaling and the state
 * columns are all kept per connection. */
struct tv_conn {
  struct tv_tuple tu;
  uint32_t isn[2];           /* each column's ISN, learned from its SYN */
  bool isn_known[2];
  bool wscale_seen[2];       /* each column's SYN carried the window scale option */
  uint8_t wscale[2];
  bool flood;                /* the peer is a spoofed address of a flood */
  int num;                   /* shown as c<num> (or f<num> for a flood) */
  size_t first;              /* index of its first entry */
};

struct tv_entry {
  enum tv_kind kind;
  uint64_t t_us;
  int side;                  /* 0 = left column (client), 1 = right (server) */
  /* TV_SEG */
  struct tcp_hdr tcp;        /* decoded header */
  uint32_t src_ip, dst_ip;
  uint32_t plen;             /* payload bytes */
  bool lost;
  bool delivered;
  bool hidden;               /* a flood segment summarised rather than drawn */
  char drop[40];             /* demo: the --drop rule that loses just this segment */
  uint64_t key;              /* hash of the packet bytes (matches sends to arrivals) */
  uint32_t isn_rel[2];       /* ISNs that relative numbers of this segment use */
  bool isn_rel_known[2];
  uint64_t arrive_us;        /* 0 if lost or unknown */
  enum ustcp_state st[2];    /* each side's state after the event (TV_SEG, TV_STATE) */
  bool st_known[2];
  /* every kind: the connection (index into tv.c, -1 none); calls and state
   * changes name theirs by tuple, resolved by tv_label */
  int conn;
  struct tv_tuple tu;
  bool opens;                /* a connect() or SYN_SENT: belongs to the next connection */
  /* TV_STATE */
  enum ustcp_state old_state, new_state;
  /* TV_CALL / TV_NOTE / segment label */
  char text[320];             /* long enough for a Chinese note (3 bytes a character) */
  char label[96];
  /* TV_NOTE: what the note claims, as checks of the events that
   * tests/sh/demo_claims.sh runs on --json (grammar there); "" for none */
  char claim[200];
};

struct tv {
  struct tv_entry *e;
  size_t n, cap;
  char name[2][64];          /* column titles */
  bool zh;                   /* labels in Chinese */
  bool color;
  struct tv_conn *c;         /* connections in order of first appearance */
  size_t nc, ccap;
  int nshown;                /* connections drawn with a name (not flood) */
  int nflood;
  uint32_t flood_net, flood_mask; /* left-column addresses that are spoofed */
  bool flood6_set;           /* and IPv6 ones in the /48 flood6 */
  uint8_t flood6[6];
  bool verbose;              /* draw every flood segment */
  const char *title;         /* for --json: the scenario's name, about and claim */
  const char *about, *title_claim;
  uint8_t (*a6)[16];         /* IPv6 addresses seen; address id k+1 is a6[k] */
  size_t na6, a6cap;
};

/* IPv6 (issue 16): the 32-bit address fields of tuples and segments hold an
 * IPv6 address as an id from tv_addr6, 1..TV_MAX_A6, inside 0.0.0.0/8 where
 * no TCP endpoint's IPv4 address can be (RFC 1122 §3.2.1.3: "this network" is
 * a source only while a host learns its address). */
#define TV_MAX_A6 4096
/* The id of IPv6 address a (added if new); 0 when the table is full. */
uint32_t tv_addr6(struct tv *v, const uint8_t a[16]);
/* "10.0.0.1" or "fd00::1" (an id of tv_addr6). */
const char *tv_addr_str(const struct tv *v, uint32_t ip, char *buf, size_t cap);
/* "10.0.0.1:80" or "[fd00::1]:80". */
const char *tv_endpoint_str(const struct tv *v, uint32_t ip, uint16_t port, char *buf, size_t cap);

void tv_init(struct tv *v);
void tv_free(struct tv *v);
struct tv_entry *tv_add(struct tv *v, enum tv_kind kind, uint64_t t_us, int side);
/* Adds a segment from IPv4 or IPv6 bytes; NULL if they are not a TCP segment. */
struct tv_entry *tv_add_seg(struct tv *v, uint64_t t_us, int side, const uint8_t *pkt, size_t len);
void tv_note(struct tv *v, uint64_t t_us, int side, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
void tv_call(struct tv *v, uint64_t t_us, int side, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
/* A note with the claims it makes about the run (checked by a test). */
void tv_note_claim(struct tv *v, uint64_t t_us, int side, const char *claim, const char *fmt, ...)
  __attribute__((format(printf, 5, 6)));
/* The connection's display name ("c2", "f17") or "" for none. */
const char *tv_conn_name(const struct tv *v, int conn, char *buf, size_t cap);
/* Flood connections drawn before the rest are summarised (unless verbose). */
#define TV_FLOOD_SHOWN 2
/* Names segments with the seeds' terms, per connection; resolves the
 * connections of calls and state changes; call once the run is complete. */
void tv_label(struct tv *v);
void tv_render_text(const struct tv *v, FILE *out);
void tv_render_json(const struct tv *v, FILE *out);
void tv_render_svg(const struct tv *v, FILE *out);
/* The time-sequence graph (tcptrace style) of the connection that sends the
 * most data, as SVG; -1 (nothing written) when no data was sent. */
int tv_render_tsg(const struct tv *v, FILE *out);
/* "SYN,ACK seq=0 ack=1 win=65535 len=0 <mss 1460,wscale 10>" for one entry. */
/* The segment's receive window in bytes (scaled as negotiated on the SYNs). */
uint32_t tv_seg_window(const struct tv *v, const struct tv_entry *e);
void tv_seg_text(const struct tv *v, const struct tv_entry *e, char *buf, size_t cap);
#endif
