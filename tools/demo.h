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
};

enum demo_fmt { DEMO_TEXT, DEMO_JSON, DEMO_SVG };

int demo_run(const struct demo_req *rq, FILE *out, enum demo_fmt fmt, bool color,
             const char *pcap_path, FILE *svg_out, char *err, size_t errcap);
/* [{"name":..,"about":..},...] */
void demo_list_json(FILE *out);
/* `ustcp demo --web [ADDR:]PORT`: serves the page until interrupted. */
int demo_web_main(const char *addrport);
#endif
