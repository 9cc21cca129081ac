#!/usr/bin/env bash
# Issue 11: a flood does not bury the diagram. By default only the segments of
# the first spoofed connections are drawn and each run of the others is one line
# with its count; the counts add up to every flood segment in --json; --verbose
# draws each one; --json and --pcap keep every segment (demo_tshark.sh checks the
# pcap against the JSON frame by frame).
set -u
U=${USTCP:?USTCP must name the ustcp binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
for s in syn-flood syn-flood-nocookies; do
  "$U" demo --scenario "$s" --no-color > "$tmp/t.txt" || bad "$s exits non-zero"
  "$U" demo --scenario "$s" --no-color --verbose > "$tmp/v.txt" || bad "$s --verbose exits non-zero"
  "$U" demo --scenario "$s" --json > "$tmp/j.json" || bad "$s --json exits non-zero"
  python3 - "$s" "$tmp/t.txt" "$tmp/v.txt" "$tmp/j.json" <<'PY' && ok || bad "$s flood summary"
import json, re, sys
name, t, v, j = sys.argv[1:5]
d = json.load(open(j))
flood = [e for e in d["events"] if e["kind"] == "segment" and e.get("conn", "").startswith("f")]
seg_line = re.compile(r"^\s*[0-9.]+ (f[0-9]+)\s.*(─▶|◀─|✗)")
def flood_lines(path):
    return [m.group(1) for m in map(seg_line.match, open(path)) if m]
drawn = flood_lines(t)
more = sum(int(m.group(1)) for m in re.finditer(r"\.\.\. (\d+) more flood segments not drawn", open(t).read()))
errs = []
if len(flood) < 190: errs.append("only %d flood segments in the JSON" % len(flood))
if len(set(drawn)) > 2: errs.append("default output draws %d flood connections" % len(set(drawn)))
if len(drawn) + more != len(flood): errs.append("drawn %d + summarised %d != %d flood segments" % (len(drawn), more, len(flood)))
if len(open(t).read().splitlines()) > 80: errs.append("default output has %d lines" % len(open(t).read().splitlines()))
if len(flood_lines(v)) != len(flood): errs.append("--verbose draws %d of %d" % (len(flood_lines(v)), len(flood)))
if "more flood segments" in open(v).read(): errs.append("--verbose still summarises")
# the legitimate client's connection comes within the first screenful
first_c1 = next((i for i, l in enumerate(open(t)) if " c1 " in l and "SYN" in l), 999)
if first_c1 > 25: errs.append("the client's SYN is on line %d" % first_c1)
if errs: print("\n".join(errs)); sys.exit(1)
PY
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
