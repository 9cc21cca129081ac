/* `ustcp demo` as a function, for the command line (demo.c) and the web page
 * (demo_web.c). */
#ifndef USTCP_DEMO_H
#define USTCP_DEMO_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define DEMO_MAX_DROPS 16

struct demo_req {
  const char *scen;          /* scenario name */
  const char *lang;          /* "en" or "zh" */
  double delay_ms, loss;
  uint64_t seed;
  const char *drops[DEMO_MAX_DROPS];   /* --drop specs */
  int ndrops;
  bool verbose;              /* draw every flood segment */
  bool ipv6;                 /* --ipv6: over IPv6 (fd00::1, fd00::2) */
  FILE *tsg;                 /* if not NULL: the time-sequence graph (SVG) */
  bool tsg_written;          /* out: there was data to draw */
};

enum demo_fmt { DEMO_TEXT, DEMO_JSON, DEMO_SVG };

int demo_run(struct demo_req *rq, FILE *out, enum demo_fmt fmt, bool color,
             const char *pcap_path, FILE *svg_out, char *err, size_t errcap);
/* [{"name":..,"about":..},...] */
void demo_list_json(FILE *out);
/* What the page shows: the demo's scenarios, or (ustcp trace --web) the
 * connections of a capture. */
struct web_backend {
  void (*list)(FILE *out);   /* [{"name","about"[,"trace":true]},...] */
  /* A run as fmt (JSON or SVG) to out; the capture to pcap_path if not NULL;
   * 0, 1 (failed) or 2 (bad request: err). */
  int (*run)(struct demo_req *rq, FILE *out, enum demo_fmt fmt, const char *pcap_path,
             char *err, size_t errcap);
};
/* Serves the page on [ADDR:]PORT until interrupted. */
int demo_web_serve(const char *addrport, const struct web_backend *be);
/* `ustcp demo --web [ADDR:]PORT`. */
int demo_web_main(const char *addrport);
#endif
