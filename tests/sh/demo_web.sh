#!/usr/bin/env bash
# Issue 11: `ustcp demo --web` serves the page on loopback, and the page works in
# a real browser. Headless Chromium loads /?selftest=1: the page drives itself
# through its own controls with real click events (runs normal, then
# backlog-full, clicks the first FIN of normal to drop it and checks the re-run
# shows it LOST and retransmitted, switches to Chinese, steps through events,
# checks the download links) and writes PASS/FAIL lines that this test reads.
# A screenshot of the end state is kept as an artefact:
# $USTCP_BUILD_DIR/test-artifacts/demo_web.png. The API is checked with curl:
# JSON, SVG, a pcap tshark reads, 400 on a bad request, 404, loopback by default.
# `ustcp trace FILE --web` serves the same page with the file's connections.
set -u
U=${USTCP:?USTCP must name the ustcp binary}
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
command -v curl > /dev/null || { echo "SKIP: curl not installed"; exit 77; }

"$U" demo --web 0 > "$tmp/web.log" 2>&1 &
pid=$!
url=""
for i in $(seq 1 50); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*/' "$tmp/web.log" | head -1)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "FAIL: ustcp demo --web did not start: $(cat "$tmp/web.log")"; exit 1; }
case "$url" in http://127.0.0.1:*) ok ;; *) bad "--web PORT does not default to loopback: $url" ;; esac

curl -sf "$url" | grep -q '<script src="app.js">' && ok || bad "GET / is not the page"
curl -sf "${url}app.js" | grep -q "function render" && ok || bad "GET /app.js"
curl -sf "${url}style.css" > /dev/null && ok || bad "GET /style.css"
curl -sf "${url}api/scenarios" | python3 -c 'import json,sys; l=json.load(sys.stdin); assert "backlog-full" in [s["name"] for s in l]' && ok || bad "/api/scenarios"
curl -sf "${url}api/run?scenario=lost-fin1&lang=zh" | python3 -c '
import json,sys
d=json.load(sys.stdin)
segs=[e for e in d["events"] if e["kind"]=="segment"]
assert all("drop" in e for e in segs)
assert any("第一次挥手" in e["label"] for e in segs)' && ok || bad "/api/run JSON (zh, drop specs)"
curl -sf "${url}api/svg?scenario=normal" -o "$tmp/d.svg" && grep -q "<svg" "$tmp/d.svg" && ok || bad "/api/svg"
curl -sf "${url}api/pcap?scenario=normal&drop=client%3Afin%231" -o "$tmp/d.pcap" && [ -s "$tmp/d.pcap" ] && ok || bad "/api/pcap"
if command -v tshark > /dev/null; then
  [ "$(tshark -r "$tmp/d.pcap" 2>/dev/null | wc -l)" = 12 ] && ok || bad "tshark reads 12 frames in the pcap with one drop"
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "${url}api/run?scenario=nope")
[ "$code" = 400 ] && ok || bad "unknown scenario: HTTP $code, not 400"
code=$(curl -s -o /dev/null -w '%{http_code}' "${url}api/run?loss=7")
[ "$code" = 400 ] && ok || bad "loss=7: HTTP $code, not 400"
code=$(curl -s -o /dev/null -w '%{http_code}' "${url}nothing-here")
[ "$code" = 404 ] && ok || bad "a missing file: HTTP $code, not 404"
# a request larger than 8 KiB is not read past its bound, and the server lives on
curl -s -o /dev/null "${url}api/run?$(head -c 20000 /dev/zero | tr '\0' a)" 2>/dev/null
curl -sf "${url}api/scenarios" > /dev/null && ok || bad "the server died on a long request"

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
  echo "SKIP: no headless Chromium (apt-get install chromium; scripts/install-test-deps.sh)"
else
  flags="--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir=$tmp/profile"
  timeout 90 "$browser" $flags --virtual-time-budget=30000 --dump-dom "${url}?selftest=1" \
    > "$tmp/dom.html" 2> "$tmp/chromium.err"
  python3 - "$tmp/dom.html" <<'PY' && ok || bad "the page's self-test in Chromium"
import html, re, sys
dom = open(sys.argv[1]).read()
m = re.search(r'<pre id="selftest">(.*?)</pre>', dom, re.S)
text = html.unescape(m.group(1)) if m else ""
print(text)
done = re.search(r"SELFTEST DONE (\d+) passed, (\d+) failed", text)
sys.exit(0 if done and int(done.group(1)) >= 16 and done.group(2) == "0" else 1)
PY
  art=${USTCP_BUILD_DIR:-$tmp}/test-artifacts
  mkdir -p "$art"
  rm -f "$art/demo_web.png"
  timeout 90 "$browser" $flags --hide-scrollbars --window-size=1500,1100 --virtual-time-budget=20000 \
    --screenshot="$art/demo_web.png" "${url}?scenario=lost-fin1&step=16" > /dev/null 2>&1
  [ -s "$art/demo_web.png" ] && ok || bad "no screenshot"
  echo "screenshot: $art/demo_web.png"
fi
kill "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=""

# ustcp trace FILE --web: the same page on a capture, its connections to pick.
"$U" demo --scenario backlog-full --pcap "$tmp/b.pcap" > /dev/null
"$U" trace "$tmp/b.pcap" --web 0 > "$tmp/tweb.log" 2>&1 &
pid=$!
url=""
for i in $(seq 1 50); do
  url=$(grep -o 'http://[0-9.]*:[0-9]*/' "$tmp/tweb.log" | head -1)
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then bad "ustcp trace --web did not start: $(cat "$tmp/tweb.log")"
else
  curl -sf "${url}api/scenarios" | python3 -c '
import json,sys
l=json.load(sys.stdin)
assert len(l)==5 and all(c["trace"] for c in l), l' && ok || bad "trace --web lists the 5 connections"
  curl -sf "${url}api/run?scenario=4" | python3 -c '
import json,sys
d=json.load(sys.stdin)
segs=[e for e in d["events"] if e["kind"]=="segment"]
assert any("again" in e["label"] for e in segs), [e["label"] for e in segs]' && ok || bad "trace --web: connection 4 (c4 of backlog-full) with its third handshake again"
  curl -sf "${url}api/pcap?scenario=1" -o "$tmp/back.pcap" && cmp -s "$tmp/back.pcap" "$tmp/b.pcap" && ok || bad "trace --web: the pcap download is the file"
  if [ -n "$browser" ]; then
    timeout 90 "$browser" $flags --virtual-time-budget=10000 --dump-dom "${url}?scenario=4" > "$tmp/tdom.html" 2>/dev/null
    n=$(grep -o '<tr class="segment' "$tmp/tdom.html" | wc -l)
    [ "$n" -ge 5 ] && grep -q '<body class="trace">' "$tmp/tdom.html" && ok ||
      bad "trace --web page in Chromium: $n segment rows, trace mode $(grep -c 'class="trace"' "$tmp/tdom.html")"
  fi
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=""
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
