/* Entry points of the `ustcp` command's subcommands. */
#ifndef USTCP_TOOLS_H
#define USTCP_TOOLS_H
int demo_main(int argc, char **argv);
int trace_main(int argc, char **argv);
/* On a TUN device (tools/serve.c, tools/client.c, tools/stat.c) */
int serve_main(int argc, char **argv);
int connect_main(int argc, char **argv);
int get_main(int argc, char **argv);
int stat_main(int argc, char **argv);
/* "-ECONNREFUSED" for -ECONNREFUSED, "0" for 0. */
const char *errno_name(int err);
#endif
