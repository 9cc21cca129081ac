#!/usr/bin/env bash
# Issue 13: the project's packetdrill suite (tests/packetdrill/*.pkt), each script
# run twice in a fresh network namespace: against ustcp through
# libustcp_packetdrill.so (packetdrill's shared-object mode, virtual time), and
# against the Linux kernel (packetdrill's normal mode, the sysctls below pinned).
# Both must pass. A script whose header has a line "// kernel: <reason>" is a
# known difference of this machine's kernel: its kernel run is reported, not
# required. PACKETDRILL must name a packetdrill binary (tools/packetdrill/README.md
# says how to build one); without it, or without root, SKIP (exit 77).
set -u
src=${USTCP_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${USTCP_BUILD_DIR:-$src/build}
if [ -z "${PACKETDRILL:-}" ] || [ ! -x "${PACKETDRILL}" ]; then
  echo "SKIP: PACKETDRILL does not name a packetdrill binary (tools/packetdrill/README.md)"
  exit 77
fi
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for network namespaces"; exit 77; }
command -v ip > /dev/null || { echo "SKIP: ip not installed"; exit 77; }
export USTCP_PD_SO=$build/tools/packetdrill/libustcp_packetdrill.so
if [ ! -f "$USTCP_PD_SO" ]; then
  echo "SKIP: $USTCP_PD_SO not built (not built under the sanitizers)"
  exit 77
fi
export PACKETDRILL PD_TIMEOUT=${PD_TIMEOUT:-60}
# The kernel's choices the scripts depend on, pinned: no timestamps (the scripts'
# peers offer none, and ustcp's own SYN, which offers them, is matched as <...>), SACK and window scaling on, reno (cubic cannot be chosen inside a
# namespace), packetdrill's defaults.sh buffer sizes (wscale 8), SYN timeouts
# doubling as RFC 6298 5.5 says (Linux 6.x keeps the first four at 1 s).
export PD_SYSCTLS="net.ipv4.tcp_timestamps=0 net.ipv4.tcp_sack=1 net.ipv4.tcp_window_scaling=1
  net.ipv4.tcp_congestion_control=reno net.ipv4.tcp_syncookies=1
  net.ipv4.tcp_rmem=4096,540000,15728640 net.ipv4.tcp_wmem=4096,262144,4194304
  net.ipv4.tcp_slow_start_after_idle=0 net.ipv4.tcp_fin_timeout=60
  net.ipv4.tcp_syn_linear_timeouts=0"
run=$src/tools/packetdrill/pdrun.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
n=0
for pkt in "$src"/tests/packetdrill/*.pkt; do
  name=$(basename "$pkt" .pkt)
  n=$((n + 1))
  if "$run" ustcp "$pkt" > "$tmp/u.log" 2>&1; then
    echo "ok    ustcp   $name"
  else
    echo "FAIL  ustcp   $name"; sed 's/^/      /' "$tmp/u.log"; fails=$((fails + 1))
  fi
  if "$run" kernel "$pkt" > "$tmp/k.log" 2>&1; then
    echo "ok    kernel  $name"
  elif grep -q '^// kernel:' "$pkt"; then
    echo "known kernel  $name: $(grep -m1 '^// kernel:' "$pkt" | cut -c11-)"
  else
    echo "FAIL  kernel  $name"; sed 's/^/      /' "$tmp/k.log"; fails=$((fails + 1))
  fi
done
echo "$n scripts, $fails failed runs"
[ "$fails" = 0 ]
