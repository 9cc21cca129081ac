#!/usr/bin/env bash
# Issue 10: the suite passes from any clone location, run as root. A clone under
# /root or a 0700 directory is one user nobody cannot enter; interop_errors runs
# the tool as nobody. This runs interop_errors with the tool in such a directory
# (it failed with "timeout: failed to run command ...: Permission denied").
set -u
U=${USTCP:?USTCP must name the ustcp binary}
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (the private directory must keep nobody out)"; exit 77; }
priv=$(mktemp -d)
trap 'rm -rf "$priv"' EXIT
chmod 700 "$priv"
mkdir "$priv/clone"
cp "$U" "$priv/clone/ustcp"
USTCP=$priv/clone/ustcp bash "$(dirname "$0")/interop_errors.sh"
