/* Issue 13: SO_SNDBUF and SO_RCVBUF read back as Linux's sock_setsockopt stores
 * them: a value set is clamped to wmem_max/rmem_max and then doubled (the kernel
 * counts its bookkeeping overhead in the buffer), so getsockopt returns twice
 * what was set; an untouched buffer reads back as the default (not doubled).
 * What the buffers hold for data stays the value set (the receive window of a
 * 4096-byte SO_RCVBUF is 4096, as Linux advertises for it). */
#include "check.h"
#include "ustcp.h"

static void out(void *ctx, const uint8_t *p, size_t n) { (void)ctx; (void)p; (void)n; }

static int get_int_opt(struct ustcp_stack *s, int fd, int name)
{
  int v = -1;
  size_t len = sizeof v;
  CHECK_EQ(ustcp_getsockopt(s, fd, USTCP_SOL_SOCKET, name, &v, &len), 0);
  CHECK_EQ(len, sizeof v);
  return v;
}

int main(void)
{
  struct ustcp_config cfg;
  ustcp_config_default(&cfg);
  struct ustcp_stack *s = ustcp_stack_new(&cfg, 0x0a000001, 1, out, NULL);
  CHECK(s != NULL);
  int fd = ustcp_socket(s);
  CHECK(fd >= 0);
  /* defaults: as set, not doubled (Linux: tcp_wmem[1], tcp_rmem[1]) */
  CHECK_EQ(get_int_opt(s, fd, USTCP_SO_SNDBUF), (int)cfg.wmem_default);
  CHECK_EQ(get_int_opt(s, fd, USTCP_SO_RCVBUF), (int)cfg.rmem_default);
  int v = 21000;
  CHECK_EQ(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &v, sizeof v), 0);
  CHECK_EQ(get_int_opt(s, fd, USTCP_SO_SNDBUF), 42000);
  v = 4096;
  CHECK_EQ(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_RCVBUF, &v, sizeof v), 0);
  CHECK_EQ(get_int_opt(s, fd, USTCP_SO_RCVBUF), 8192);
  /* clamped to the maximum first, then doubled */
  v = (int)cfg.wmem_max + 12345;
  CHECK_EQ(ustcp_setsockopt(s, fd, USTCP_SOL_SOCKET, USTCP_SO_SNDBUF, &v, sizeof v), 0);
  CHECK_EQ(get_int_opt(s, fd, USTCP_SO_SNDBUF), 2 * (int)cfg.wmem_max);
  ustcp_close(s, fd);
  ustcp_stack_free(s);
  return check_report();
}
