#!/usr/bin/env bash
# The benchmark programs answer --help as every ustcp command does: the usage
# on stdout and exit 0; bad usage puts it on stderr and exits 2. lwip_bench
# exists only where liblwip-dev is installed; it is checked when built.
set -u
BUILD=${USTCP_BUILD_DIR:?}
pass=0 fail=0
check() {   # check NAME CMD...: CMD succeeds
  local name=$1; shift
  if "$@"; then echo "PASS: $name"; pass=$((pass + 1)); else echo "FAIL: $name"; fail=$((fail + 1)); fi
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
n=0
for b in ustcp_bench kernel_bench lwip_bench; do
  exe=$BUILD/bench/$b
  [ -x "$exe" ] || { echo "note: $b not built"; continue; }
  n=$((n + 1))
  "$exe" --help > "$tmp/out" 2> "$tmp/err"; rc=$?
  check "$b --help: exit 0 (got $rc), usage on stdout, nothing on stderr" \
    bash -c "[ $rc = 0 ] && grep -q '^usage: $b' '$tmp/out' && [ ! -s '$tmp/err' ]"
  "$exe" no-such-mode > "$tmp/out" 2> "$tmp/err"; rc=$?
  check "$b no-such-mode: exit 2 (got $rc), usage on stderr" \
    bash -c "[ $rc = 2 ] && grep -q '^usage: $b' '$tmp/err'"
done
[ "$n" -ge 2 ] || { echo "SKIP: the benchmark programs are not built"; exit 77; }
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
