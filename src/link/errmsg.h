/* src/link: the drivers' error convention, -errno plus a one-line reason the
 * user can act on (tun.c, packet.c). */
#ifndef USTCP_LINK_ERRMSG_H
#define USTCP_LINK_ERRMSG_H
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Writes the reason into buf (if any) and returns -err. */
static inline int link_fail(int err, char *buf, size_t cap, const char *fmt, ...)
  __attribute__((format(printf, 4, 5)));
static inline int link_fail(int err, char *buf, size_t cap, const char *fmt, ...)
{
  if (buf && cap) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
  }
  return -err;
}
#endif
