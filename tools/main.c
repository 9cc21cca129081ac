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
    "  serve    a server on a TUN device for the kernel's programs to talk to:\n"
    "           --echo, --discard or --http DIR (HTTP/1.1 file server)\n"
    "           example:  ustcp serve --http ./site   (then: curl http://10.7.0.2/)\n"
    "  connect  connect to HOST:PORT over a TUN device; stdin/stdout, like nc\n"
    "           example:  echo hi | ustcp connect 10.7.0.1:7000\n"
    "  get      HTTP/1.1 GET over a TUN device; the body to a file or stdout\n"
    "           example:  ustcp get http://10.7.0.1:8000/file -o file\n"
    "  stat     the sockets and TCP states of a running ustcp, like ss -tan\n"
    "           example:  ustcp stat --tun ustcp0\n"
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
  if (!strcmp(cmd, "serve")) return serve_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "connect")) return connect_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "get")) return get_main(argc - 1, argv + 1);
  if (!strcmp(cmd, "stat")) return stat_main(argc - 1, argv + 1);
  fprintf(stderr, "ustcp: unknown command '%s' (try: ustcp --help)\n", cmd);
  return 2;
}
