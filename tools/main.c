/* The `ustcp` command: one binary, one subcommand per job. */
#include <stdio.h>
#include <string.h>
#include "tools.h"

static void usage(FILE *f)
{
  fprintf(f,
    "usage: ustcp COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  demo     watch the TCP handshake, data transfer and four-way close of the\n"
    "           ustcp engine on a simulated network, as a sequence diagram\n"
    "           examples: ustcp demo\n"
    "                     ustcp demo --list\n"
    "                     ustcp demo --scenario lost-fin1 --lang zh\n"
    "                     ustcp demo --drop server:syn-ack#1 --svg out.svg\n"
    "  trace    draw the same diagram for a TCP connection in a pcap file\n"
    "           example:  ustcp trace capture.pcap\n"
    "  help     this text (each command also takes --help)\n");
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(cmd, "demo")) return demo_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "trace")) return trace_main(argc - 1, argv + 1);
  fprintf(stderr, "ustcp: unknown command '%s' (try: ustcp --help)\n", cmd);
  return 2;
}
