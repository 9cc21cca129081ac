# Shared by the interop tests (tests/sh/interop_*.sh; this file is not a test
# itself: CTest runs *.sh only). Each test gets its own network namespace with a
# unique name, runs ustcp inside it on a TUN device, and removes everything on
# exit (trap), even on failure. Every wait is bounded in count and time.
#
#   interop_init NAME CMD...   SKIP (exit 77) unless root, /dev/net/tun, a
#                              namespace and the listed commands are available
#   nsx CMD...                 run CMD inside the namespace
#   ustcp_bg NAME ARGS...      start `ustcp ARGS` in the namespace in the
#                              background (log in $tmp/NAME.log, pid in PIDS)
#   wait_ctl PATH              wait (max 5 s) until a control socket answers
#   check DESC CMD...          PASS/FAIL line; counts
#   finish                     summary; exit status
set -u
U=${USTCP:?USTCP must name the ustcp binary}
SRC=${USTCP_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
PASS=0
FAIL=0
PIDS=()
ns=""
tmp=""

skip() { echo "SKIP: $*"; exit 77; }

cleanup() {
  local rc=$? p
  # USTCP_TEST_KEEP=DIR keeps a failed run's files (captures, logs) for study
  if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -n "${USTCP_TEST_KEEP:-}" ] && [ -n "$tmp" ]; then
    mkdir -p "$USTCP_TEST_KEEP" && cp -a "$tmp" "$USTCP_TEST_KEEP/$(basename "$0" .sh).$$" 2>/dev/null
  fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  if [ -n "$ns" ]; then
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
    sleep 0.2
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  fi
  [ -n "$tmp" ] && rm -rf "$tmp"
}

interop_init() {
  local name=$1; shift
  local c
  for c in ip timeout "$@"; do
    command -v "$c" > /dev/null 2>&1 || skip "$c not installed (scripts/install-test-deps.sh installs it)"
  done
  [ "$(id -u)" = 0 ] || skip "needs root (network namespace and TUN device)"
  [ -c /dev/net/tun ] || skip "/dev/net/tun missing (no TUN support)"
  ns=ustcp-$name-$$-$RANDOM
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  trap cleanup EXIT
  trap 'exit 1' INT TERM
  ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace"
  ip -n "$ns" link set lo up
}

nsx() { ip netns exec "$ns" "$@"; }

ustcp_bg() {
  local name=$1; shift
  ip netns exec "$ns" timeout 170 "$U" "$@" > "$tmp/$name.log" 2>&1 &
  PIDS+=($!)
}

# Waits until the control socket PATH answers (the stack is up, device configured).
wait_ctl() {
  local i
  for i in $(seq 1 50); do
    timeout 5 "$U" stat --ctl "$1" > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "ustcp did not come up (no answer on $1)"
  return 1
}

# Waits (max 5 s) until a TCP port listens inside the namespace.
wait_listen() {
  local i
  for i in $(seq 1 50); do
    nsx ss -ltn 2>/dev/null | grep -q "[:.]$1 " && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1"
  return 1
}

check() {
  local desc=$1; shift
  if "$@"; then
    PASS=$((PASS + 1)); echo "PASS: $desc"
  else
    FAIL=$((FAIL + 1)); echo "FAIL: $desc"
  fi
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

# MB/s for BYTES in SECONDS (floating)
rate() { python3 -c "import sys; print('%.1f' % (int(sys.argv[1]) / float(sys.argv[2]) / 1e6))" "$1" "$2"; }

# Stops the background processes with SIGTERM (ustcp exits cleanly on it, so a
# sanitizer build reports leaks), waiting at most 5 s.
stop_bg() {
  local p i alive
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for i in $(seq 1 50); do
    alive=0
    for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
}

finish() {
  stop_bg
  # Under ASan/UBSan (make test-asan) a finding in any ustcp run fails the test.
  local bad
  bad=$(grep -l -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$tmp"/*.log "$tmp"/*.err 2>/dev/null)
  if [ -n "$bad" ]; then
    FAIL=$((FAIL + 1))
    echo "FAIL: sanitizer report in $bad"
    cat $bad
  fi
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" = 0 ]
}
