#!/usr/bin/env bash
# Issue 11: the demo's SVG.
#  1. Nothing overlaps: for every scenario, in English and in Chinese, the boxes
#     of all texts and state boxes are disjoint and no text crosses an arrow (a
#     line, a lost segment's cross or an arrowhead). Text boxes are estimated as
#     monospace: 0.6 em a character, 1 em for East Asian wide ones; height from
#     0.8 em above the baseline to 0.25 em below. Lifelines (dashed) are not arrows.
#  2. No missing glyphs in --lang zh: every character of the Chinese SVG is
#     covered by an installed font the SVG's font-family list names (fontconfig's
#     charset), so no renderer falls back to boxes; rsvg-convert renders it.
set -u
U=${USTCP:?USTCP must name the ustcp binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
cat > "$tmp/geom.py" <<'PY'
import re, sys, unicodedata
import xml.etree.ElementTree as ET
NS = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
FS = float(root.get("font-size", "12"))
boxes, lines = [], []   # boxes: (x0, y0, x1, y1, what)
def text_w(s, fs):
    return sum(fs if unicodedata.east_asian_width(c) in "WF" else 0.6 * fs for c in s)
for el in root.iter():
    tag = el.tag.replace(NS, "")
    if tag == "text":
        fs = float(el.get("font-size", FS))
        s = "".join(el.itertext())
        if not s: continue
        x, y, w = float(el.get("x")), float(el.get("y")), text_w(s, fs)
        a = el.get("text-anchor", "start")
        x0 = x - w / 2 if a == "middle" else (x - w if a == "end" else x)
        boxes.append((x0, y - 0.8 * fs, x0 + w, y + 0.25 * fs, "text %r" % s))
    elif tag == "rect" and el.get("width") != "100%":
        x, y = float(el.get("x")), float(el.get("y"))
        boxes.append((x, y, x + float(el.get("width")), y + float(el.get("height")), "state box"))
    elif tag == "line" and not el.get("stroke-dasharray"):
        x1, y1, x2, y2 = (float(el.get(k)) for k in ("x1", "y1", "x2", "y2"))
        lines.append((x1, y1, x2, y2))
        if el.get("marker-end"):   # the arrowhead: about 10 px back along the line, 8 px wide
            d = 1 if x2 > x1 else -1
            boxes.append((min(x2, x2 - 10 * d), y2 - 5, max(x2, x2 - 10 * d), y2 + 5, "arrowhead"))
    elif tag == "path" and el.get("stroke"):
        pts = [tuple(map(float, p.split(","))) for p in re.findall(r"[-\d.]+,[-\d.]+", el.get("d"))]
        for i in range(0, len(pts) - 1, 2):
            lines.append(pts[i] + pts[i + 1])
# a state box's own label sits inside it: one object
merged = []
rects = [b for b in boxes if b[4] == "state box"]
for b in boxes:
    if b[4].startswith("text") and any(r[0] <= b[0] + 1 and b[2] <= r[2] + 1 and r[1] <= b[1] + 1 and b[3] <= r[3] + 2 for r in rects):
        continue
    merged.append(b)
errs = []
merged.sort(key=lambda b: b[1])
for i, a in enumerate(merged):
    for b in merged[i + 1:]:
        if b[1] >= a[3]: break
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
            errs.append("%s overlaps %s" % (a[4], b[4]))
def seg_hits_box(l, b):
    x1, y1, x2, y2 = l
    # sample the segment finely: boxes are at least a few pixels tall
    n = int(max(abs(x2 - x1), abs(y2 - y1))) + 1
    for k in range(n + 1):
        x, y = x1 + (x2 - x1) * k / n, y1 + (y2 - y1) * k / n
        if b[0] < x < b[2] and b[1] < y < b[3]: return True
    return False
texts = [b for b in merged if b[4].startswith("text") or b[4] == "state box"]
for l in lines:
    ylo, yhi = min(l[1], l[3]), max(l[1], l[3])
    for b in texts:
        if b[3] < ylo or b[1] > yhi: continue
        if seg_hits_box(l, b): errs.append("an arrow crosses %s" % b[4])
if errs:
    print("%s: %d overlaps, e.g.:\n  %s" % (sys.argv[1], len(errs), "\n  ".join(errs[:5])))
    sys.exit(1)
PY
for s in $("$U" demo --list | awk '{print $1}'); do
  for lang in en zh; do
    "$U" demo --scenario "$s" --lang "$lang" --svg "$tmp/d.svg" > /dev/null || { bad "$s $lang: --svg failed"; continue; }
    python3 "$tmp/geom.py" "$tmp/d.svg" && ok || bad "$s --lang $lang: overlaps in the SVG"
  done
done
"$U" demo --loss 0.2 --seed 7 --svg "$tmp/d.svg" > /dev/null && python3 "$tmp/geom.py" "$tmp/d.svg" && ok || bad "loss-seed7 SVG overlaps"

# The geometric check can fail: a label moved onto its arrow is caught.
"$U" demo --svg "$tmp/d.svg" > /dev/null
python3 - "$tmp/d.svg" "$tmp/bad.svg" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
# the first segment text: put its baseline on its arrow's row
m = re.search(r'<line x1="\d+" y1="(\d+)"[^>]*marker-end[^>]*/>\n<text x="(\d+)" y="(\d+)"', s)
s = s[:m.start(3)] + str(int(m.group(1)) + 3) + s[m.end(3):]
open(sys.argv[2], "w").write(s)
PY
if python3 "$tmp/geom.py" "$tmp/bad.svg" > /dev/null; then bad "a text on its arrow was not caught"; else ok; fi

# The time-sequence graph (--tsg): data-loss's 10 data segments, 2 of them
# retransmissions, 2 lost, the ACK and window lines; the same from ustcp trace
# of the run's pcap (which cannot know what was lost); none (a warning, no file) for a run without data.
tsg_ok() {   # file, expected lost segments (a pcap does not know what was lost)
  python3 - "$1" "$2" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
cls = [el.get("class", "") for el in root.iter()]
data = [c for c in cls if c.startswith("dataseg")]
ok = (len(data) == 10 and sum("retrans" in c for c in data) == 2 and sum("lost" in c for c in data) == int(sys.argv[2])
      and "ackline" in cls and "winline" in cls)
if not ok: print("tsg:", len(data), "data,", cls.count("ackline"), "ack lines"); sys.exit(1)
PY
}
"$U" demo --scenario data-loss --tsg "$tmp/g.svg" --pcap "$tmp/g.pcap" > /dev/null && tsg_ok "$tmp/g.svg" 2 && ok || bad "demo --tsg of data-loss"
"$U" trace "$tmp/g.pcap" --tsg "$tmp/g2.svg" > /dev/null && tsg_ok "$tmp/g2.svg" 0 && ok || bad "trace --tsg of data-loss's pcap"
if command -v rsvg-convert > /dev/null; then rsvg-convert "$tmp/g.svg" -o "$tmp/g.png" && ok || bad "rsvg-convert the graph"; fi
"$U" demo --scenario refused --tsg "$tmp/none.svg" > /dev/null 2> "$tmp/none.err"
rc=$?
[ "$rc" = 0 ] && [ ! -e "$tmp/none.svg" ] && grep -q "no data" "$tmp/none.err" && ok || bad "--tsg without data: exit $rc, $(cat "$tmp/none.err")"

# Chinese glyphs.
if ! command -v fc-list > /dev/null; then
  echo "SKIP: fontconfig not installed (scripts/install-test-deps.sh)"
else
  "$U" demo --scenario backlog-full --lang zh --svg "$tmp/zh.svg" > /dev/null
  "$U" demo --scenario syn-flood --lang zh --svg "$tmp/zh2.svg" > /dev/null
  "$U" demo --scenario lost-ack4 --lang zh --svg "$tmp/zh3.svg" > /dev/null
  python3 - "$tmp/zh.svg" "$tmp/zh2.svg" "$tmp/zh3.svg" <<'PY' && ok || bad "--lang zh SVG has characters no listed font covers (apt-get install fonts-noto-cjk)"
import re, subprocess, sys
import xml.etree.ElementTree as ET
chars, listed = set(), None
for p in sys.argv[1:]:
    root = ET.parse(p).getroot()
    listed = [f.strip().strip("'\"") for f in root.get("font-family").split(",")]
    for el in root.iter():
        if el.tag.endswith("text"):
            chars |= {c for c in "".join(el.itertext()) if ord(c) > 0x7f}
assert any(0x4e00 <= ord(c) <= 0x9fff for c in chars), "no Chinese text in the zh SVG"
missing = []
for c in sorted(chars):
    fams = subprocess.run(["fc-list", ":charset=%x" % ord(c), "family"], capture_output=True, text=True).stdout
    names = {n.strip() for line in fams.splitlines() for n in line.split(",")}
    if not names & set(listed): missing.append(c)
if missing:
    print("no font of %s covers: %s" % (listed[:-1], "".join(missing)))
    sys.exit(1)
PY
  if command -v rsvg-convert > /dev/null; then
    rsvg-convert "$tmp/zh.svg" -o "$tmp/zh.png" && [ -s "$tmp/zh.png" ] && ok || bad "rsvg-convert cannot render the zh SVG"
  else
    echo "SKIP: rsvg-convert not installed"
  fi
fi
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
