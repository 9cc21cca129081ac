#!/usr/bin/env bash
# Issue 11: each scenario's title and notes are true of its own run. A scenario's
# title and its notes carry claims (in --json: "claim"), written as checks of the
# events; this test runs every scenario and checks every claim. Every title
# must claim something; scenarios whose story depends on several connections,
# counters or timing must also claim something in every note (listed below).
#
# Claim grammar: clauses separated by ';', each optionally prefixed by "later"
# (only events after the note) or "no" (no event matches):
#   seg CONN FROM FLAGS [label=WORD] [client=STATE] [server=STATE]
#       a segment of connection CONN (c1..) sent by FROM (client|server) with
#       exactly FLAGS (tshark-style: S, S., ., R, R., F., ...), its label
#       containing WORD, leaving the client/server in STATE
#   state CONN SIDE STATE    SIDE of CONN is in STATE at some point
#   call SIDE WORD           a socket call line of SIDE contains WORD
#   count PREFIX FROM FLAGS N [label=WORD]  N segments with those flags (* any)
#                            and a label containing WORD sent by FROM on the
#                            connections named PREFIX... before the note (with
#                            "later": after it)
#   seg options after=SECONDS / before=SECONDS bound the segment's time
#   overflows N              N segments so far were dropped by the listener for
#                            a full accept queue: client SYNs that left the
#                            server in LISTEN and client ACKs that found it in
#                            SYN_RCVD (or CLOSED, with abort_on_overflow)
set -u
U=${USTCP:?USTCP must name the ustcp binary}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
must_claim="backlog-full abort-on-overflow syn-flood syn-flood-nocookies data-loss"
pass=0 fail=0
cat > "$tmp/check.py" <<'PY'
import json, sys
name, path, must = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
d = json.load(open(path))
ev = d["events"]
errs = []
SIDE = {"client": 0, "server": 1}

def seg_matches(e, args):
    if e["kind"] != "segment" or e.get("conn") != args[0]: return False
    if e["side"] != SIDE[args[1]] or e["flags"] != args[2]: return False
    for a in args[3:]:
        k, v = a.split("=", 1)
        if k == "label" and v not in e["label"]: return False
        if k == "after" and e["t_us"] < float(v) * 1e6: return False
        if k == "before" and e["t_us"] >= float(v) * 1e6: return False
        if k in SIDE and e.get("state%d" % SIDE[k]) != v: return False
    return True

def state_matches(e, args):
    conn, side, st = args[0], SIDE[args[1]], args[2]
    if e.get("conn") != conn: return False
    if e["kind"] == "state": return e["side"] == side and e["to"] == st
    if e["kind"] == "segment": return e.get("state%d" % side) == st
    return False

def check(clause, upto):
    words = clause.split()
    later = no = False
    if words[0] == "later": later, words = True, words[1:]
    if words[0] == "no": no, words = True, words[1:]
    kind, args = words[0], words[1:]
    rng = ev[upto + 1:] if later else ev
    if kind == "seg": hit = any(seg_matches(e, args) for e in rng)
    elif kind == "state": hit = any(state_matches(e, args) for e in rng)
    elif kind == "call":
        hit = any(e["kind"] == "call" and e["side"] == SIDE[args[0]] and args[1] in e["text"] for e in rng)
    elif kind == "count":   # count CONNPREFIX FROM FLAGS N: segments before (later: after) the note
        opts = dict(a.split("=", 1) for a in args[4:])
        n = sum(1 for e in (ev[upto + 1:] if later else ev[:upto]) if e["kind"] == "segment" and e.get("conn", "").startswith(args[0])
                and e["side"] == SIDE[args[1]] and args[2] in ("*", e["flags"])
                and opts.get("label", "") in e["label"])
        if n != int(args[3]): errs.append("%r: the events show %d" % (clause, n))
        return
    elif kind == "overflows":
        n = 0
        for e in ev[:upto]:
            if e["kind"] != "segment" or e["side"] != 0 or e["lost"] or "state1" not in e: continue
            if e["flags"] == "S" and e["state1"] == "LISTEN": n += 1
            if e["flags"] == "." and e["state1"] in ("SYN_RCVD", "CLOSED") and "third handshake" in e["label"]: n += 1
        if n != int(args[0]): errs.append("%r: the events show %d" % (clause, n))
        return
    else:
        errs.append("unknown claim %r" % clause); return
    if hit == no: errs.append("%r is false" % clause)

title_claim = d.get("claim", "")
if not title_claim: errs.append("the title claims nothing")
for c in filter(None, (x.strip() for x in title_claim.split(";"))): check(c, -1)
for i, e in enumerate(ev):
    if e["kind"] != "note": continue
    if must and not e.get("claim"): errs.append("note claims nothing: %s" % e["text"])
    for c in filter(None, (x.strip() for x in e.get("claim", "").split(";"))): check(c, i)
if errs:
    print("FAIL: %s:\n  %s" % (name, "\n  ".join(errs)))
    sys.exit(1)
PY
for s in $("$U" demo --list | awk '{print $1}'); do
  "$U" demo --scenario "$s" --json > "$tmp/$s.json" || { fail=$((fail + 1)); echo "FAIL: $s exits non-zero"; continue; }
  must=0
  case " $must_claim " in *" $s "*) must=1 ;; esac
  if python3 "$tmp/check.py" "$s" "$tmp/$s.json" "$must"
  then pass=$((pass + 1)); else fail=$((fail + 1)); fi
  # Issue 16: every claim holds over IPv6 too (ustcp demo --ipv6).
  "$U" demo --ipv6 --scenario "$s" --json > "$tmp/$s.6.json" || { fail=$((fail + 1)); echo "FAIL: $s --ipv6 exits non-zero"; continue; }
  if python3 "$tmp/check.py" "$s --ipv6" "$tmp/$s.6.json" "$must"
  then pass=$((pass + 1)); else fail=$((fail + 1)); fi
done
# The checker can fail: the old backlog-full story (c4 never reaches the server
# before accept(); the SYN-ACK is not resent) and a wrong counter are caught.
for bad in "no seg c4 server S. label=retransmission" "later state c4 server SYN_SENT" "overflows 3" "count f server S. 1"; do
  python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
notes=[e for e in d["events"] if e["kind"]=="note"]
notes[-1]["claim"]=sys.argv[2]
json.dump(d,open(sys.argv[3],"w"))' "$tmp/backlog-full.json" "$bad" "$tmp/bad.json"
  if python3 "$tmp/check.py" bad "$tmp/bad.json" 1 > /dev/null; then
    fail=$((fail + 1)); echo "FAIL: the false claim '$bad' passed"
  else pass=$((pass + 1)); fi
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
