#!/bin/bash
# Runs one packetdrill script in a fresh network namespace, against ustcp (through
# libustcp_packetdrill.so) or against the Linux kernel; exit status is packetdrill's
# (124 = timed out). See README.md in this folder.
#
#   pdrun.sh ustcp|kernel SCRIPT.pkt [packetdrill options...]
#
# Environment: PACKETDRILL (the binary, required); USTCP_PD_SO (the adapter, for
# ustcp mode; default: ../../build/tools/packetdrill/libustcp_packetdrill.so);
# PD_TIMEOUT (seconds, default 60); PD_SYSCTLS (kernel mode: space-separated
# name=value pairs set inside the namespace before the run; commas in a value
# stand for spaces: net.ipv4.tcp_rmem=4096,540000,15728640).
set -u
mode=${1:?usage: pdrun.sh ustcp|kernel SCRIPT.pkt [options]}
script=${2:?usage: pdrun.sh ustcp|kernel SCRIPT.pkt [options]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
: "${PACKETDRILL:?PACKETDRILL must name a packetdrill binary}"
so=${USTCP_PD_SO:-$here/../../build/tools/packetdrill/libustcp_packetdrill.so}
timeout_s=${PD_TIMEOUT:-60}

# The addresses run_all.py uses for IPv4; the stack is told its own through --so_flags.
addr=(--ip_version=ipv4 --local_ip=192.168.0.1 --gateway_ip=192.168.0.1
      --netmask_ip=255.255.0.0 --remote_ip=192.0.2.1)

ns=pd_$$_${RANDOM}
ip netns add "$ns" || exit 2
trap 'ip netns del "$ns" 2>/dev/null' EXIT
ip -n "$ns" link set lo up

dir=$(cd "$(dirname "$script")" && pwd)
base=$(basename "$script")
case $mode in
ustcp)
  # packetdrill makes tun0 only in kernel mode; scripts' tc/ip commands want one.
  ip -n "$ns" tuntap add dev tun0 mode tun 2>/dev/null
  ip -n "$ns" link set tun0 up 2>/dev/null
  # LD_PRELOAD: packetdrill's %{ }% blocks read TCP_INFO with libc's getsockopt
  # on the adapter's placeholder descriptor; preloaded, the adapter answers it
  # (and drops itself from the environment of packetdrill's children).
  (cd "$dir" && exec ip netns exec "$ns" timeout -k 5 "$timeout_s" \
     env LD_PRELOAD="$(readlink -f "$so")" "$PACKETDRILL" "${addr[@]}" \
     --so_filename="$(readlink -f "$so")" --so_flags=ip=192.168.0.1 "$@" "$base")
  ;;
kernel)
  for kv in ${PD_SYSCTLS:-}; do
    ip netns exec "$ns" sysctl -q -w "${kv//,/ }" >/dev/null 2>&1 ||
      echo "pdrun: cannot set $kv in the namespace" >&2
  done
  (cd "$dir" && exec ip netns exec "$ns" timeout -k 5 "$timeout_s" "$PACKETDRILL" "${addr[@]}" \
     "$@" "$base")
  ;;
*) echo "pdrun: mode is ustcp or kernel" >&2; exit 2 ;;
esac
