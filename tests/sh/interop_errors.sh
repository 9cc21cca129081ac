#!/usr/bin/env bash
# Issue 5: clear errors of the network commands.
#   - /dev/net/tun missing (a private mount namespace hides it): one line saying
#     what to do, exit 1
#   - permission denied (run as nobody): one line saying what to do, exit 1
#   - bad options of serve/connect/get/stat: one line, exit 2; --help: exit 0
#     with examples
#   - ustcp stat with nobody answering: exit 1
# The usage part needs nothing; the device part needs root, unshare and setpriv
# (else those checks are skipped with a line saying so).
. "$(dirname "$0")/interop_lib.bash"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for c in serve connect get stat; do
  timeout 5 "$U" $c --no-such-option > /dev/null 2> "$tmp/err"
  rc=$?
  check "$c: a bad option -> exit 2 (got $rc), one line" \
    bash -c "[ $rc = 2 ] && [ \$(wc -l < '$tmp/err') = 1 ]"
  timeout 5 "$U" $c --help > "$tmp/help" 2>&1
  rc=$?
  check "$c --help: exit 0 (got $rc), with examples" bash -c "[ $rc = 0 ] && grep -qi example '$tmp/help'"
done
for args in "serve" "serve --echo --discard" "serve --echo --port 0" "serve --http /nonexistent" \
            "serve --echo --impair loss=200%" "serve --echo --addr 10.1" "connect" "connect 10.7.0.1" \
            "connect 10.7.0.1:99999" "connect host.example:80" "get" "get http://10.7.0.1:0/" \
            "stat --tun"; do
  # shellcheck disable=SC2086
  timeout 5 "$U" $args > /dev/null 2> "$tmp/err" < /dev/null
  rc=$?
  check "'ustcp $args' -> exit 2 (got $rc), one line: $(head -1 "$tmp/err")" \
    bash -c "[ $rc = 2 ] && [ \$(wc -l < '$tmp/err') = 1 ]"
done
timeout 5 "$U" stat --ctl "$tmp/nobody-here.sock" > /dev/null 2> "$tmp/err"
rc=$?
check "stat with nothing running: exit 1 (got $rc): $(cat "$tmp/err")" [ "$rc" = 1 ]

if [ "$(id -u)" = 0 ] && command -v unshare > /dev/null && command -v setpriv > /dev/null &&
   [ -c /dev/net/tun ]; then
  # in a namespace of its own, so that nothing could touch the host's devices
  ns=ustcp-errors-$$-$RANDOM
  pub=
  ip netns add "$ns" 2>/dev/null || skip "cannot create a network namespace"
  trap 'ip netns del "$ns" 2>/dev/null; rm -rf "$tmp" "$pub"' EXIT
  # nobody runs a copy in a directory anyone may enter: the clone (and its
  # build) may be under one nobody cannot, such as /root or a 0700 directory
  pub=$(mktemp -d)
  chmod 755 "$pub"
  install -m 755 "$U" "$pub/ustcp"
  UN=$pub/ustcp
  ip netns exec "$ns" unshare -m sh -c 'mount -t tmpfs none /dev/net && exec timeout 5 "$0" serve --echo --no-ctl' "$U" \
    > /dev/null 2> "$tmp/err"
  rc=$?
  cat "$tmp/err"
  check "no /dev/net/tun: exit 1 (got $rc), says it is missing and how to fix it" \
    bash -c "[ $rc = 1 ] && [ \$(wc -l < '$tmp/err') = 1 ] && grep -q 'missing' '$tmp/err' && grep -q 'modprobe tun' '$tmp/err'"
  if [ "$(stat -c %a /dev/net/tun)" = 600 ] || [ "$(stat -c %a /dev/net/tun)" = 660 ]; then
    ip netns exec "$ns" setpriv --reuid=65534 --regid=65534 --clear-groups timeout 5 "$UN" serve --echo --no-ctl \
      > /dev/null 2> "$tmp/err"
    rc=$?
    cat "$tmp/err"
    check "not permitted: exit 1 (got $rc), says permission denied and what to do" \
      bash -c "[ $rc = 1 ] && grep -q 'permission denied' '$tmp/err' && grep -q 'tuntap' '$tmp/err'"
  else
    echo "SKIP: /dev/net/tun is world-accessible here; the permission check needs it restricted"
  fi
  # a device nobody may configure: nobody on a device made for root
  ip netns exec "$ns" ip tuntap add dev tperm mode tun user 0
  chmod_mode=$(stat -c %a /dev/net/tun)
  if [ "$chmod_mode" = 666 ]; then
    ip netns exec "$ns" setpriv --reuid=65534 --regid=65534 --clear-groups timeout 5 "$UN" serve --echo \
      --tun tperm --no-ctl > /dev/null 2> "$tmp/err"
    rc=$?
    cat "$tmp/err"
    check "someone else's device: exit 1 (got $rc), TUNSETIFF permission denied" \
      bash -c "[ $rc = 1 ] && grep -q 'TUNSETIFF' '$tmp/err'"
  fi
else
  echo "SKIP: the /dev/net/tun error checks need root, unshare, setpriv and /dev/net/tun"
fi
finish
