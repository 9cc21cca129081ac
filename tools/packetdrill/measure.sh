#!/bin/bash
# Pass rate of packetdrill's own TCP scripts, against ustcp and against the kernel
# (README.md, "Measuring"). Never edits a .pkt file: it runs from two copies of
# packetdrill's gtests/net, one whose defaults.sh is stubbed (ustcp: the adapter
# configures its stack as defaults.sh configures the kernel; the sysctls a script
# sets itself reach the stack through the namespace, see README.md), one as shipped except that cubic,
# which cannot be chosen inside a network namespace, is replaced by reno.
#
#   measure.sh PACKETDRILL_SOURCE_TREE OUTDIR [ustcp|kernel|both] [DIR...]
#
# Writes OUTDIR/results.tsv (script, ustcp, kernel) and one log per run.
set -u
src=${1:?usage: measure.sh PACKETDRILL_SOURCE_TREE OUTDIR [ustcp|kernel|both] [DIR...]}
out=${2:?usage}
which=${3:-both}
shift 3 2>/dev/null || shift $#
dirs=("$@")
[ ${#dirs[@]} -eq 0 ] && dirs=(close shutdown blocking fast_retransmit sack nagle mss
  syscall_bad_arg validate user_timeout eor epoll ioctl limited_transmit fast_recovery
  slow_start notsent_lowat inq ts_recent cwnd_moderation tcp_info)
here=$(cd "$(dirname "$0")" && pwd)
export PACKETDRILL=${PACKETDRILL:-$src/gtests/net/packetdrill/packetdrill}
mkdir -p "$out/logs"
work=$out/trees
if [ ! -d "$work/ustcp" ]; then
  mkdir -p "$work"
  cp -r "$src/gtests/net" "$work/ustcp"
  cp -r "$src/gtests/net" "$work/kernel"
  for f in "$work"/ustcp/common/defaults.sh "$work"/ustcp/tcp/common/defaults.sh; do
    printf '#!/bin/sh\n# stubbed for a user-space stack (tools/packetdrill/measure.sh)\nexit 0\n' >"$f"
  done
  # set_sysctls.py is left as shipped: it sets the script's sysctls in the run's
  # own network namespace (pdrun.sh), and the adapter reads the ones ustcp has a
  # setting for at the first socket() (README.md, "Sysctls").
  for f in "$work"/kernel/common/defaults.sh "$work"/kernel/tcp/common/defaults.sh; do
    sed -i 's/tcp_congestion_control=cubic/tcp_congestion_control=reno/' "$f"
  done
fi
# run_all.py's IPv4 options, beyond the addresses pdrun.sh gives
opts=(--send_omit_free -D TFO_COOKIE=3021b9d889017eeb -D CODE=host_unreachable
      -D CMSG_LEVEL_IP=SOL_IP -D CMSG_TYPE_RECVERR=IP_RECVERR)
: >"$out/results.tsv"
for d in "${dirs[@]}"; do
  for pkt in "$src"/gtests/net/tcp/"$d"/*.pkt; do
    name=$d/$(basename "$pkt" .pkt)
    row=$name
    for mode in ustcp kernel; do
      if [ "$which" != both ] && [ "$which" != "$mode" ]; then row+=$'\t-'; continue; fi
      log=$out/logs/${name//\//__}.$mode.log
      PD_TIMEOUT=${PD_TIMEOUT:-60} "$here/pdrun.sh" "$mode" "$work/$mode/tcp/$name.pkt" \
        "${opts[@]}" >"$log" 2>&1
      rc=$?
      if [ $rc -eq 0 ]; then row+=$'\tpass'; elif [ $rc -eq 124 ]; then row+=$'\ttimeout'; else row+=$'\tfail'; fi
    done
    echo "$row" | tee -a "$out/results.tsv"
  done
done
for col in 2 3; do
  awk -F'\t' -v c=$col '$c!="-"{n++; if($c=="pass")p++} END{if(n) printf "%s: %d/%d pass\n", (c==2?"ustcp":"kernel"), p, n}' "$out/results.tsv"
done
