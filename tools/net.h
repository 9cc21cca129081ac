/* What the network subcommands (serve, connect, get, stat) share: the options
 * that put a stack on a TUN device, the control socket's default path, signal
 * handling. */
#ifndef USTCP_TOOLS_NET_H
#define USTCP_TOOLS_NET_H
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "ustcp.h"
#include "ustcp_loop.h"

struct net_opts {
  struct ustcp_loop_config lc;
  struct ustcp_config cfg;
  const char *ctl_path;
  bool no_ctl;
  int verbose;
  char ctl_buf[256];
};

/* The common options' help text (indented two spaces). */
extern const char net_opts_help[];

void net_opts_init(struct net_opts *o);
/* Tries argv[*i] as a common option (taking its value from argv[*i+1]). Returns
 * 1 if it was one (and advances *i past a value), 0 if not, -1 after printing a
 * one-line error for a bad value. */
int net_opts_parse(struct net_opts *o, const char *cmd, int argc, char **argv, int *i);
/* Opens the device and the stack (and the control socket), installs SIGINT/
 * SIGTERM handlers that stop the loop. Prints the reason and returns NULL on
 * failure. */
struct ustcp_loop *net_open(struct net_opts *o, const char *cmd);
void net_close(struct ustcp_loop *l);

/* Default control socket path for a device: /run/ustcp/NAME.sock when /run/ustcp
 * can be used (root), else $XDG_RUNTIME_DIR/ustcp/NAME.sock, else
 * /tmp/ustcp-UID/NAME.sock. With create, makes the directory. Returns buf. */
const char *net_ctl_default(const char *ifname, bool create, char *buf, size_t cap);

/* "a.b.c.d:port" -> addr; returns 0 or -1. */
int net_parse_hostport(const char *s, struct ustcp_addr *out);   /* A.B.C.D:PORT or [IPV6]:PORT */
/* An IPv6 address in text (inet_pton); 0 or -1. */
int net_parse_ip6(const char *s, uint8_t out[16]);
/* "a.b.c.d:port" or "[v6]:port" (at least 56 bytes). */
const char *net_addr_str(const struct ustcp_addr *a, char *buf, size_t cap);
/* strerror-like text for a negative errno, with its name: "Connection refused
 * (ECONNREFUSED)". */
const char *net_strerror(int err, char *buf, size_t cap);
/* Parses a number in [lo, hi]; returns 0 or -1. */
int net_parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out);
#endif
