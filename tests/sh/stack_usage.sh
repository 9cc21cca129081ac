#!/usr/bin/env bash
# Issue 10, point 7: no function keeps more than 4 KiB on the C stack.
# Reads the compiler's -fstack-usage reports (.su, one line a function:
# "file:line:col:name<TAB>bytes<TAB>qualifiers") for every source file of the
# library (src/, the LD_PRELOAD shim src/preload included) and of the `ustcp`
# tool (tools/), as built in this build tree,
# and fails on a frame over LIMIT bytes or one whose size is unbounded
# ("dynamic" without "bounded": a VLA or alloca). Every source file must have its
# report, so a file cannot escape the check. Scope: src/ and tools/ (examples/,
# bench/ and the tests are not part of what a user embeds or runs as ustcp).
# Runs in every CTest build (ASan+UBSan and plain: `make test`).
set -u
LIMIT=${STACK_LIMIT:-4096}
SRC=${USTCP_SOURCE_DIR:?}
BUILD=${USTCP_BUILD_DIR:?}
cache="$BUILD/CMakeCache.txt"
if ! grep -q '^USTCP_STACK_USAGE:BOOL=ON' "$cache" || ! grep -q '^USTCP_HAVE_STACK_USAGE:INTERNAL=1' "$cache"; then
  echo "SKIP: this build has no -fstack-usage reports (USTCP_STACK_USAGE off or unsupported)"
  exit 77
fi
fail=0
nfiles=0
nfuncs=0
check_target() {   # $1: target dir under CMakeFiles, $2..: source dirs relative to SRC
  local tdir="$BUILD/CMakeFiles/$1.dir"; shift
  local d f su
  for d in "$@"; do
    for f in "$SRC/$d"/*.c; do
      su="$tdir/$d/$(basename "$f").su"
      if [[ ! -f $su ]]; then
        echo "FAIL: no stack-usage report for $d/$(basename "$f") ($su); rebuild this tree"
        fail=1
        continue
      fi
      nfiles=$((nfiles + 1))
      while IFS=$'\t' read -r fn bytes qual; do
        [[ -z $fn ]] && continue
        nfuncs=$((nfuncs + 1))
        if (( bytes > LIMIT )); then
          echo "FAIL: ${fn#"$SRC"/} keeps $bytes bytes on the stack (limit $LIMIT)"
          fail=1
        fi
        if [[ $qual == dynamic ]]; then
          echo "FAIL: ${fn#"$SRC"/} has a frame of unbounded size ($qual)"
          fail=1
        fi
      done < "$su"
    done
  done
}
# Every folder of src/ is the library's (target ustcp_objs) but the shim's.
for dir in "$SRC"/src/*/; do
  d=src/$(basename "$dir")
  compgen -G "$dir*.c" > /dev/null || continue
  if [[ $d == src/preload ]]; then check_target ustcp_preload "$d"; else check_target ustcp_objs "$d"; fi
done
check_target ustcp-cli tools
biggest=$(cat "$BUILD"/CMakeFiles/ustcp_objs.dir/src/*/*.su "$BUILD"/CMakeFiles/ustcp_preload.dir/src/*/*.su \
            "$BUILD"/CMakeFiles/ustcp-cli.dir/tools/*.su 2>/dev/null |
          sort -t$'\t' -k2 -n | tail -1)
echo "checked $nfuncs functions in $nfiles files; largest frame: ${biggest#"$SRC"/}"
if (( nfiles == 0 )); then echo "FAIL: no reports found"; exit 1; fi
exit $fail
