# Monitoring and outputs for other tools: --sample/--seed picks what the documented hash
# picks (recomputed here in Python), whatever the order, the thread count or the file's
# growth; --follow scores appended lines into the store as they come, across rotation and
# truncation; --junit-per-trace and --csv hold the same records as the JSONL output.
. "$(dirname "$0")/lib.sh"
DB=$TMP/store.db
python3 scripts/gen_traces.py --count 600 --seed 3 >"$TMP/log.jsonl"
sql() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute(sys.argv[2]): print("|".join("" if v is None else str(v) for v in row))' "$DB" "$1"; }

# The definition in assay.h: FNV-1a 64 of "SEED:ID", MurmurHash3 fmix64, top 53 bits as a
# fraction below the rate.
picks() { # file rate seed
    python3 -c 'import json, sys
M = 2**64
def pick(i, seed, rate):
    h = 14695981039346656037
    for c in ("%d:%s" % (seed, i)).encode(): h = ((h ^ c) * 1099511628211) % M
    h ^= h >> 33; h = (h * 0xff51afd7ed558ccd) % M; h ^= h >> 33; h = (h * 0xc4ceb9fe1a85ec53) % M; h ^= h >> 33
    return (h >> 11) / 2**53 < rate
for l in open(sys.argv[1]):
    if l.strip():
        i = json.loads(l)["id"]
        if pick(i, int(sys.argv[3]), float(sys.argv[2])): print(i)' "$@" | sort
}
scored() { python3 -c 'import json, sys
print("\n".join(sorted({json.loads(l)["trace_id"] for l in open(sys.argv[1])})))' "$1"; }

# -------------------------------------------------------------------------- sampling
"$ASSAY" run --no-db -j 1 --sample 0.1 --seed 42 "$TMP/log.jsonl" >"$TMP/s1.jsonl" 2>"$TMP/s1.err"
check "a sampled run exits 0" 0 $?
picks "$TMP/log.jsonl" 0.1 42 >"$TMP/want.txt"
scored "$TMP/s1.jsonl" >"$TMP/got.txt"
check "it scores exactly the traces the documented hash picks" "$(cat "$TMP/want.txt")" "$(cat "$TMP/got.txt")"
count=$(wc -l <"$TMP/want.txt")
if [ "$count" -ge 35 ] && [ "$count" -le 85 ]; then ok "about 10% of 600 ($count)"; else not_ok "about 10% of 600" "got $count"; fi
check_contains "the summary says how many were left out" "$TMP/s1.err" "sample: $count traces scored, $((600 - count)) left out (rate 0.1, seed 42)"
python3 -c 'import random, sys
lines = open(sys.argv[1]).readlines(); random.Random(9).shuffle(lines); sys.stdout.writelines(lines)' "$TMP/log.jsonl" >"$TMP/shuffled.jsonl"
"$ASSAY" run --no-db -j 4 --sample 0.1 --seed 42 "$TMP/shuffled.jsonl" >"$TMP/s2.jsonl" 2>/dev/null
check "the same picks from a shuffled file on 4 threads" "$(cat "$TMP/want.txt")" "$(scored "$TMP/s2.jsonl")"
head -300 "$TMP/log.jsonl" >"$TMP/half.jsonl"
"$ASSAY" run --no-db --sample 0.1 --seed 42 "$TMP/half.jsonl" >"$TMP/s3.jsonl" 2>/dev/null
check "a log that grows keeps its earlier picks" "$(picks "$TMP/half.jsonl" 0.1 42)" "$(scored "$TMP/s3.jsonl")"
"$ASSAY" run --no-db --sample 0.1 --seed 43 "$TMP/log.jsonl" >"$TMP/s4.jsonl" 2>/dev/null
check "another seed, another sample, as documented" "$(picks "$TMP/log.jsonl" 0.1 43)" "$(scored "$TMP/s4.jsonl")"
if [ "$(scored "$TMP/s4.jsonl")" != "$(cat "$TMP/want.txt")" ]; then ok "and it differs from seed 42's"; else not_ok "seed 43 differs from 42"; fi
"$ASSAY" run --no-db --sample 1.5 "$TMP/log.jsonl" >/dev/null 2>"$TMP/bad.err"
check "--sample outside (0, 1]: exit 2" 2 $?
check_contains "saying what it wants" "$TMP/bad.err" "--sample: '1.5' is not a fraction in (0, 1]"
"$ASSAY" run --no-db --seed 4 "$TMP/log.jsonl" >/dev/null 2>"$TMP/bad.err"
check "--seed without --sample: exit 2" 2 $?
"$ASSAY" run --db "$DB" --label nightly --sample 0.1 --seed 42 "$TMP/log.jsonl" >/dev/null 2>&1
check "the store records the sample and its seed" "0.1|42|$count" "$(sql "SELECT sample_rate, sample_seed, traces FROM runs")"

# ------------------------------------------------------------------- JUnit and CSV
python3 scripts/gen_traces.py --count 40 --seed 8 --messy >"$TMP/messy.jsonl"
"$ASSAY" run --no-db -j 2 --junit "$TMP/r.xml" --junit-per-trace --csv "$TMP/r.csv" "$TMP/messy.jsonl" >"$TMP/r.jsonl" 2>/dev/null
check "a run with --junit and --csv (and bad lines: exit 3)" 3 $?
check "JUnit: parses, and its counts equal the records' (tests, failures, errors, skipped)" "ok" "$(python3 -c '
import json, sys, xml.etree.ElementTree as ET
recs = [json.loads(l) for l in open(sys.argv[1])]
root = ET.parse(sys.argv[2]).getroot()
want = {"tests": len(recs), "failures": sum(r.get("pass") is False and r["error"] is None for r in recs),
        "errors": sum(r["error"] is not None for r in recs),
        "skipped": sum(r["error"] is None and r.get("score") is None and r.get("pass") is None for r in recs)}
got = {k: int(root.get(k)) for k in want}
cases = root.findall("./testsuite/testcase")
per_suite = all(int(s.get("tests")) == len(s.findall("testcase")) and
                int(s.get("failures")) == len(s.findall("testcase/failure")) for s in root.findall("testsuite"))
print("ok" if got == want and len(cases) == len(recs) and per_suite else "want %s got %s, %d cases" % (want, got, len(cases)))
' "$TMP/r.jsonl" "$TMP/r.xml")"
check "JUnit: a failure carries its record; an input error is an error case in suite input" "ok" "$(python3 -c '
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
f = root.find("./testsuite/testcase/failure")
e = root.find("./testsuite[@name=\"input\"]/testcase/error")
print("ok" if f is not None and json.loads(f.text)["pass"] is False and e is not None and e.get("type") == "input"
      else "failure %r error %r" % (f, e))' "$TMP/r.xml")"
check "CSV: one row per record with the same values" "ok" "$(python3 -c '
import csv, json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
rows = list(csv.DictReader(open(sys.argv[2], newline="")))
def same(r, c):
    return ((r["trace_id"] or "") == c["trace_id"] and (r["evaluator"] or "") == c["evaluator"] and
            (c["score"] == "" if r.get("score") is None else float(c["score"]) == r["score"]) and
            c["pass"] == ("" if r.get("pass") is None else str(r["pass"]).lower()) and
            c["error_kind"] == (r["error"]["kind"] if r["error"] else ""))
bad = [i for i, (r, c) in enumerate(zip(recs, rows)) if not same(r, c)]
print("ok" if len(rows) == len(recs) and not bad else "%d rows for %d records, first mismatch %s" % (len(rows), len(recs), bad[:1]))
' "$TMP/r.jsonl" "$TMP/r.csv")"
"$ASSAY" run --no-db --csv "$TMP/nodir/r.csv" "$TMP/log.jsonl" >/dev/null 2>"$TMP/csv.err"
check "a CSV file that cannot be created: exit 2 before scoring" 2 $?
check_contains "naming it" "$TMP/csv.err" "--csv: $TMP/nodir/r.csv: No such file or directory"

# ------------------------------------------------------------------------- following
FDB=$TMP/follow.db
head -100 "$TMP/log.jsonl" >"$TMP/live.jsonl"
"$ASSAY" run --db "$FDB" --label live --follow -j 2 "$TMP/live.jsonl" -o "$TMP/live.out" 2>"$TMP/live.err" &
pid=$!
DB=$FDB
wait_for() { # traces-in-store, up to 10 s
    i=0
    while [ "$(sql "SELECT COUNT(DISTINCT line) FROM results" 2>/dev/null)" != "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    sql "SELECT COUNT(DISTINCT line) FROM results"
}
check "following: the first 100 lines reach the store while it runs" 100 "$(wait_for 100)"
sed -n 101,150p "$TMP/log.jsonl" >>"$TMP/live.jsonl"
check "lines appended later are scored and recorded" 150 "$(wait_for 150)"
check "and written to the output while it runs (not held for a full batch)" 150 "$(scored "$TMP/live.out" | wc -l)"
mv "$TMP/live.jsonl" "$TMP/live.jsonl.1"
sed -n 151,160p "$TMP/log.jsonl" >>"$TMP/live.jsonl.1" # written to the old file after the rename
sed -n 161,200p "$TMP/log.jsonl" >"$TMP/live.jsonl"
check "after rotation: the old file's last lines, then the new file" 200 "$(wait_for 200)"
line=$(sed -n 201p "$TMP/log.jsonl")
printf '%s' "${line%?}" >>"$TMP/live.jsonl" # a line being written: no newline yet
sleep 0.5
check "a line still being written waits" 200 "$(sql "SELECT COUNT(DISTINCT line) FROM results")"
printf '}\n' >>"$TMP/live.jsonl"
check "and is scored once finished" 201 "$(wait_for 201)"
: >"$TMP/live.jsonl" # truncated in place (copytruncate)
sed -n 202,210p "$TMP/log.jsonl" >>"$TMP/live.jsonl"
check "after truncation it reads from the start" 210 "$(wait_for 210)"
kill -INT $pid
wait $pid
check "SIGINT ends following normally: exit 0" 0 $?
check "the run is done, with 210 traces" "done|210|1" "$(sql "SELECT status, traces, follow FROM runs")"
check "the output holds 210 traces' records" 210 "$(scored "$TMP/live.out" | wc -l)"
"$ASSAY" run --no-db --follow "$TMP/log.jsonl" "$TMP/half.jsonl" >/dev/null 2>"$TMP/f.err"
check "--follow takes exactly one file: exit 2" 2 $?
"$ASSAY" run --no-db --follow <"$TMP/log.jsonl" >/dev/null 2>"$TMP/f.err"
check "--follow on standard input: exit 2" 2 $?

# hostile text in the exports: JUnit stays well-formed XML 1.0 (invalid UTF-8 and U+FFFF
# replaced), CSV cells that a spreadsheet would run as formulas get a leading quote
mkdir -p "$TMP/exp"
cat >"$TMP/exp/labeller.lua" <<'EOF'
return { name = "labeller", evaluate = function(t)
  return { score = 0, pass = false, label = t.label .. "\255\254 \239\191\191 end" }
end }
EOF
printf '%s\n' '{"id":"=HYPERLINK(\"http://x\")","label":"=1+1"}' '{"id":"@SUM(A1)","label":"+cmd"}' '{"id":"-2","label":"ok"}' >"$TMP/exp.jsonl"
"$ASSAY" run --no-db --no-timing --junit "$TMP/exp.xml" --junit-per-trace --csv "$TMP/exp.csv" -e "$TMP/exp/labeller.lua" "$TMP/exp.jsonl" >/dev/null 2>&1
check "JUnit with invalid UTF-8 and U+FFFF in labels parses as XML" ok "$(python3 -c '
import sys, xml.etree.ElementTree as ET
ET.parse(sys.argv[1]); print("ok")' "$TMP/exp.xml" 2>&1 | tail -1)"
check "CSV: trace ids and labels that start with = + - @ are not formulas" \
    "'=HYPERLINK(\"http://x\") '=1+1 '@SUM(A1) '+cmd '-2 ok" "$(python3 -c '
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8", errors="replace")))
print(" ".join(w for r in rows for w in (r["trace_id"], r["label"].split("\ufffd")[0].split(" ")[0])))' "$TMP/exp.csv")"

# every form of the record agrees under --no-timing: "ms" null in JSONL, empty in CSV, NULL in
# the store, absent from JUnit's time (before: the CSV and the store kept the measured ms)
"$ASSAY" run --no-timing --db "$TMP/nt.db" --junit "$TMP/nt.xml" --junit-per-trace --csv "$TMP/nt.csv" -e plugins/expect.lua \
    examples/traces/deep-research.jsonl >"$TMP/nt.jsonl" 2>"$TMP/nt.err"
check "--no-timing: every JSONL record has ms null" "$(wc -l <"$TMP/nt.jsonl")" "$(grep -c '"ms":null}$' "$TMP/nt.jsonl")"
check "every CSV row an empty ms" "" "$(python3 -c '
import csv, sys
print(" ".join(r["ms"] for r in csv.DictReader(open(sys.argv[1], newline="")) if r["ms"]))' "$TMP/nt.csv")"
check "every stored result a NULL ms" 0 "$(python3 -c '
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM results WHERE ms IS NOT NULL").fetchone()[0])' "$TMP/nt.db")"
check "JUnit times are 0" "" "$(grep -o 'time="[^"]*"' "$TMP/nt.xml" | grep -v 'time="0.000000"' | head -3)"
check_contains "and the summary shows no times" "$TMP/nt.err" "  expect                       60   0.948   84.4%       0       28         -         -"

done_testing
