#!/usr/bin/env bash
# Issue 17 point 3 (packaging): `make install PREFIX=...` gives a usable library.
# Installs the build into a temporary prefix, then checks, as a user of the
# installed copy would see it:
#   - the files: libustcp.a, libustcp.so with SONAME libustcp.so.1, the headers,
#     ustcp.pc, the ustcp command, the man pages ustcp(1) and libustcp(3);
#   - libustcp.so exports the public API (ustcp_*) and nothing else;
#   - the public headers compile warning-free as C11 and as C++ (-pedantic);
#   - examples/ builds out of tree with `pkg-config --cflags --libs ustcp`,
#     and a program using only the public API runs against the installed .so
#     (two stacks joined in memory: handshake, 100 KB each way, close).
set -euo pipefail
src=${USTCP_SOURCE_DIR:?}
build=${USTCP_BUILD_DIR:?}
if [ "${USTCP_SANITIZED:-0}" = 1 ]; then
  # An ASan-instrumented library cannot be linked by a plain out-of-tree
  # compile; the plain run of the suite checks the installed copy.
  echo "SKIP: sanitized build (the plain build runs this test)"; exit 77
fi
for c in pkg-config cc c++ readelf nm; do
  command -v $c >/dev/null || { echo "SKIP: $c missing"; exit 77; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
fail=0
bad() { echo "FAIL: $*"; fail=1; }
libdir=$(ls -d "$prefix"/lib*/ | head -1); libdir=${libdir%/}
for f in "$libdir/libustcp.a" "$libdir/libustcp.so" "$libdir/libustcp_preload.so" "$prefix/include/ustcp.h" \
         "$prefix/include/ustcp_loop.h" "$libdir/pkgconfig/ustcp.pc" "$prefix/bin/ustcp" \
         "$prefix/share/man/man1/ustcp.1" "$prefix/share/man/man3/libustcp.3"; do
  [ -e "$f" ] || bad "not installed: ${f#$prefix/}"
done
soname=$(readelf -d "$libdir/libustcp.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libustcp.so.1 ] || bad "SONAME is '$soname', not libustcp.so.1"
[ -e "$libdir/$soname" ] || bad "$soname not installed"
exported=$(nm -D --defined-only "$libdir/libustcp.so" | awk '$2 ~ /^[TDBR]$/ {print $3}')
n_api=$(echo "$exported" | grep -c '^ustcp_' || true)
others=$(echo "$exported" | grep -v '^ustcp_' || true)
[ -z "$others" ] || bad "libustcp.so exports non-API symbols: $(echo $others | head -c 300)"
[ "$n_api" -ge 40 ] || bad "only $n_api ustcp_* symbols exported"
echo "libustcp.so: SONAME $soname, $n_api exported symbols, all ustcp_*"
"$prefix/bin/ustcp" --help >/dev/null || bad "installed ustcp --help failed"
man -l "$prefix/share/man/man1/ustcp.1" >/dev/null 2>&1 || ! command -v man >/dev/null || bad "ustcp.1 does not format"

export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs ustcp) || bad "pkg-config does not know ustcp"
echo "pkg-config --cflags --libs ustcp: $flags"
# The public headers, alone, as C11 and C++.
printf '#include <ustcp.h>\n#include <ustcp_loop.h>\nint main(void) { struct ustcp_config c; ustcp_config_default(&c); return (int)c.mtu - 1500; }\n' >"$tmp/h.c"
cc -std=c11 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags ustcp) -c "$tmp/h.c" -o "$tmp/h.o" ||
  bad "headers do not compile warning-free as C11"
cp "$tmp/h.c" "$tmp/h.cpp"
for std in c++11 c++17; do
  c++ -std=$std -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags ustcp) -c "$tmp/h.cpp" -o "$tmp/h.o" ||
    bad "headers do not compile warning-free as $std"
done
# examples/, out of tree, against the installed copy.
for ex in "$src"/examples/*.c; do
  name=$(basename "$ex" .c)
  cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror "$ex" -o "$tmp/$name" $flags ||
    bad "examples/$name.c does not build against the installed library"
done
# A program on the public API alone, run against the installed libustcp.so.
cat >"$tmp/pair.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ustcp.h>
/* Two stacks joined by an in-memory queue of datagrams, in virtual time. */
struct q { unsigned char *pkt[4096]; size_t len[4096]; int n; struct ustcp_stack *to; };
static void out(void *ctx, const uint8_t *p, size_t len)
{
  struct q *q = ctx;
  if (q->n == 4096) return;
  q->pkt[q->n] = malloc(len);
  memcpy(q->pkt[q->n], p, len);
  q->len[q->n++] = len;
}
static struct q qa, qb;
static uint64_t now = 1;
static void pump(void)
{
  for (int round = 0; round < 64; round++) {
    int moved = 0;
    struct q *qs[2] = {&qa, &qb};
    for (int k = 0; k < 2; k++) {
      struct q *q = qs[k];
      int n = q->n;
      q->n = 0;
      static unsigned char *p[4096]; static size_t l[4096];
      memcpy(p, q->pkt, n * sizeof p[0]); memcpy(l, q->len, n * sizeof l[0]);
      for (int i = 0; i < n; i++) { ustcp_input(q->to, p[i], l[i], now); free(p[i]); }
      moved += n;
    }
    now += 1000;
    ustcp_poll(qa.to, now); ustcp_poll(qb.to, now);
    if (!moved && !qa.n && !qb.n) return;
  }
}
int main(void)
{
  struct ustcp_stack *a = ustcp_stack_new(NULL, 0x0a000001u, 1, out, &qa);
  struct ustcp_stack *b = ustcp_stack_new(NULL, 0x0a000002u, 2, out, &qb);
  if (!a || !b) return 1;
  qa.to = b; qb.to = a;
  int l = ustcp_socket(b);
  struct ustcp_addr any = {.ip = 0, .port = 80}, srv = {.ip = 0x0a000002u, .port = 80};
  if (ustcp_bind(b, l, &any) || ustcp_listen(b, l, 8)) return 2;
  int c = ustcp_socket(a);
  if (ustcp_connect(a, c, &srv) != -EINPROGRESS) return 3;
  pump();
  int s = ustcp_accept(b, l, NULL);
  if (s < 0) return 4;
  static char buf[100000], got[100000];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (char)(i * 7);
  size_t sent = 0, recvd = 0;
  for (int i = 0; i < 10000 && recvd < sizeof buf; i++) {
    if (sent < sizeof buf) {
      ssize_t n = ustcp_send(a, c, buf + sent, sizeof buf - sent, 0);
      if (n > 0) sent += (size_t)n;
    }
    pump();
    ssize_t n = ustcp_recv(b, s, got + recvd, sizeof got - recvd, 0);
    if (n > 0) recvd += (size_t)n;
  }
  if (recvd != sizeof buf || memcmp(buf, got, sizeof buf)) return 5;
  ustcp_close(a, c); ustcp_close(b, s); ustcp_close(b, l);
  pump();
  printf("handshake and %zu bytes through the installed libustcp.so\n", recvd);
  ustcp_stack_free(a); ustcp_stack_free(b);
  return 0;
}
C
if cc -std=c11 -Wall -Wextra -Werror "$tmp/pair.c" -o "$tmp/pair" $flags; then
  # (ldd's output is taken whole first: with pipefail, grep -q closing the pipe
  # early made ldd die of SIGPIPE and the check fail now and then)
  deps=$(ldd "$tmp/pair")
  grep -q "libustcp.so.1 => not found" <<<"$deps" || bad "pair linked against something else"
  LD_LIBRARY_PATH=$libdir "$tmp/pair" || bad "program on the installed libustcp.so failed ($?)"
  deps=$(LD_LIBRARY_PATH=$libdir ldd "$tmp/pair")
  grep -q "$libdir/libustcp.so.1" <<<"$deps" || bad "pair did not load the installed .so: $deps"
else
  bad "a program on the public API does not build against the installed library"
fi
[ $fail = 0 ] && echo "install: all checks passed"
exit $fail
