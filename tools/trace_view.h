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
  uint64_t key;              /* hash of the packet bytes (matches sends to arrivals) */
  uint32_t isn_rel[2];       /* ISNs that relative numbers of this segment use */
  bool isn_rel_known[2];
  uint64_t arrive_us;        /* 0 if lost or unknown */
  enum ustcp_state st[2];    /* each side's state after the event (TV_SEG, TV_STATE) */
  bool st_known[2];
  /* TV_STATE */
  enum ustcp_state old_state, new_state;
  /* TV_CALL / TV_NOTE / segment label */
  char text[160];
  char label[96];
};

struct tv {
  struct tv_entry *e;
  size_t n, cap;
  char name[2][64];          /* column titles */
  bool zh;                   /* labels in Chinese */
  bool color;
  uint32_t isn[2];           /* each side's ISN, learned from its SYN */
  bool isn_known[2];
};

void tv_init(struct tv *v);
void tv_free(struct tv *v);
struct tv_entry *tv_add(struct tv *v, enum tv_kind kind, uint64_t t_us, int side);
/* Adds a segment from IPv4 bytes; NULL if they are not a TCP segment. */
struct tv_entry *tv_add_seg(struct tv *v, uint64_t t_us, int side, const uint8_t *pkt, size_t len);
void tv_note(struct tv *v, uint64_t t_us, int side, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
void tv_call(struct tv *v, uint64_t t_us, int side, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
/* Names segments with the seeds' terms; call once the run is complete. */
void tv_label(struct tv *v);
void tv_render_text(const struct tv *v, FILE *out);
void tv_render_json(const struct tv *v, FILE *out);
void tv_render_svg(const struct tv *v, FILE *out);
/* "SYN,ACK seq=0 ack=1 win=65535 len=0 <mss 1460,wscale 10>" for one entry. */
void tv_seg_text(const struct tv *v, const struct tv_entry *e, char *buf, size_t cap);
#endif
