#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when run as root and a package
# is missing. Never prompts. Without root it only reports what is missing; the tests
# that need a missing tool print SKIP. With --bench (make bench) also what only the
# benchmark uses: wrk (bench/apps.sh; nginx, redis, ab and nftables are the tests' too).
set -u
what="test"
extra=""
if [ "${1:-}" = --bench ]; then what="benchmark"; extra=" wrk:wrk"; fi
need_cmds="cmake:cmake gcc:gcc clang:clang tshark:tshark xmllint:libxml2-utils rsvg-convert:librsvg2-bin socat:socat curl:curl ip:iproute2 python3:python3 ping:iputils-ping nft:nftables wget:wget nginx:nginx-light redis-server:redis-server redis-benchmark:redis-tools ab:apache2-utils pkg-config:pkg-config c++:g++ readelf:binutils ethtool:ethtool$extra"
missing=""
for pair in $need_cmds; do
  cmd=${pair%%:*}; pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
# libFuzzer's runtime (clang -fsanitize=fuzzer) comes from libclang-rt-*-dev.
if command -v clang >/dev/null 2>&1; then
  rt=$(clang -print-resource-dir 2>/dev/null)/lib/linux/libclang_rt.fuzzer-x86_64.a
  if [ "$(uname -m)" = x86_64 ] && [ ! -f "$rt" ]; then
    ver=$(clang -dumpversion | cut -d. -f1)
    missing="$missing libclang-rt-${ver}-dev"
  fi
fi
# lwIP (Debian's build) for bench/lwip_bench, whose harness tests
# (sh_bench_lwip_mem) compare it with ustcp in the same in-memory link.
[ -e /usr/include/lwip/lwip/tcp.h ] || missing="$missing liblwip-dev"
# The demo's web page is tested in headless Chromium (tests/sh/demo_web.sh).
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
# The demo's SVG test renders Chinese labels: it needs a CJK font (and fc-list).
command -v fc-list >/dev/null 2>&1 || missing="$missing fontconfig"
if ! { command -v fc-list >/dev/null 2>&1 && fc-list :lang=zh family 2>/dev/null | grep -q .; }; then
  missing="$missing fonts-noto-cjk"
fi
if [ -z "$missing" ]; then
  echo "$what dependencies: all present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "$what dependencies missing (not root, not installing):$missing"
  exit 0
fi
echo "installing $what dependencies:$missing"
export DEBIAN_FRONTEND=noninteractive
# wireshark-common asks whether non-root users may capture; answer no, silently.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get install -y -q --no-install-recommends $missing >/tmp/ustcp-apt.log 2>&1 ||
  { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends $missing >/tmp/ustcp-apt.log 2>&1; } ||
  { echo "apt-get failed; see /tmp/ustcp-apt.log"; tail -5 /tmp/ustcp-apt.log; exit 1; }
echo "$what dependencies installed"
