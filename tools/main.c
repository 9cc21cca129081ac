/* The `ustcp` command. */
#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
  fprintf(f,
    "usage: ustcp COMMAND [OPTIONS]\n"
    "\n"
    "commands:\n"
    "  demo     show the TCP handshake, data transfer and four-way close on a\n"
    "           simulated network (example: ustcp demo)\n"
    "  help     this text\n");
}

int main(int argc, char **argv)
{
  if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "demo")) {
    fprintf(stderr, "ustcp demo: not built yet: the TCP engine and the demo are still being written\n");
    return 1;
  }
  fprintf(stderr, "ustcp: unknown command '%s' (try: ustcp --help)\n", argv[1]);
  return 2;
}
