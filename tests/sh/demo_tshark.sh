#!/usr/bin/env bash
# Issue 11: `ustcp demo` labels every segment per connection (4-tuple). For every
# scenario (and a --drop and a --loss run) the demo's --json and its own --pcap are
# compared frame by frame with tshark:
#   - the segments labelled "retransmission" are exactly those tshark's
#     tcp.analysis.retransmission flags, except the whitelisted case below;
#   - relative seq/ack and the (scaled) window equal tshark's tcp.seq, tcp.ack and
#     tcp.window_size;
#   - every segment names its connection, and connections are 4-tuples.
# Whitelist: a SYN-ACK whose sender had already sent a bare SYN with the same
# sequence number on that connection (simultaneous open; self-connect, where both
# directions are one 4-tuple). tshark sees the sequence number again and calls it
# a retransmission; RFC 9293 §3.5 (figure 8) makes it the second handshake.
set -u
U=${USTCP:?USTCP must name the ustcp binary}
if ! command -v tshark > /dev/null; then echo "SKIP: tshark not installed"; exit 77; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
check() {   # name, demo args...
  local name=$1; shift
  if ! "$U" demo "$@" --json --pcap "$tmp/x.pcap" > "$tmp/x.json"; then
    fail=$((fail + 1)); echo "FAIL: $name: demo exited non-zero"; return
  fi
  tshark -r "$tmp/x.pcap" -T fields -E separator=/t -e frame.number -e tcp.analysis.retransmission \
    -e tcp.seq -e tcp.ack -e tcp.window_size -e tcp.flags.ack -e tcp.seq_raw -e tcp.ack_raw \
    -o tcp.relative_sequence_numbers:TRUE \
    > "$tmp/x.tsv" 2> /dev/null
  if python3 - "$name" "$tmp/x.json" "$tmp/x.tsv" <<'PY'
import json, sys
name, jpath, tpath = sys.argv[1:4]
d = json.load(open(jpath))
segs = [e for e in d["events"] if e["kind"] == "segment"]
rows = [l.rstrip("\n").split("\t") for l in open(tpath) if l.strip()]
errs = []
if len(rows) != len(segs):
    errs.append("pcap has %d frames, the JSON %d segments" % (len(rows), len(segs)))
conns = {c["name"]: c for c in d["connections"]}
tuples = [(c["client"], c["server"]) for c in d["connections"]]
# A 4-tuple names two connections only when one follows the other (a new ISN).
first_syn = {}
for k, (e, r) in enumerate(zip(segs, rows)):
    fr = k + 1
    if "conn" not in e or e["conn"] not in conns:
        errs.append("frame %d names no connection" % fr); continue
    ours = "retransmission" in e["label"] or "重传" in e["label"]
    theirs = r[1] != ""
    c = e["conn"]
    # without a SYN from a side its numbers are absolute (tshark then makes up a
    # relative base of its own: the raw numbers are compared)
    seq_rel = (c, e["side"]) in first_syn or "S" in e["flags"]
    ack_rel = (c, 1 - e["side"]) in first_syn
    if e["flags"] == "S":
        first_syn.setdefault((c, e["side"]), e["seq"])
    elif "S" in e["flags"]:
        first_syn.setdefault((c, e["side"]), None)
    simopen = e["flags"] == "S." and first_syn.get((c, e["side"])) == e["seq"]
    if ours != theirs and not (theirs and not ours and simopen):
        errs.append("frame %d (%s %s): ours %s, tshark %s" % (fr, c, e["text"], ours, theirs))
    self_conn = conns[c]["client"] == conns[c]["server"]
    if not self_conn:   # tshark cannot tell the directions of a self-connect apart
        tseq = int(r[2] if seq_rel else r[6])
        tack = int(r[3] if ack_rel else r[7]) if r[5] == "1" else None
        if tseq != e["seq"]:
            errs.append("frame %d: seq %s, tshark %s" % (fr, e["seq"], tseq))
        if tack is not None and tack != e["ack"]:
            errs.append("frame %d: ack %s, tshark %s" % (fr, e["ack"], tack))
        if int(r[4]) != e["win"]:
            errs.append("frame %d: win %s, tshark %s" % (fr, e["win"], r[4]))
if errs:
    print("FAIL: %s:\n  %s" % (name, "\n  ".join(errs[:10])))
    sys.exit(1)
PY
  then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}
scenarios=$("$U" demo --list | awk '{print $1}')
for s in $scenarios; do check "$s" --scenario "$s"; done
check "custom drop" --drop client:data#1 --delay 20
check "loss with a seed" --loss 0.2 --seed 7
check "data-loss, lossy" --scenario data-loss --loss 0.1 --seed 3
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
