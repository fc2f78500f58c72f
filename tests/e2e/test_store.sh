# The run store and what reads it: every run recorded with its inputs, evaluators and
# results; `assay runs`; `assay compare` against hand-computed changes, intervals, win
# rates, groups and the CI gate; the store after SIGKILL and across --resume.
#
# tests/store/pairs.jsonl: 20 traces (segment x: t00-t09, y: t10-t19) whose metadata holds
# the score tests/store/fixed.lua gives under each field. With S = 0.9 0.8 0.7 0.6 0.55
# 0.45 0.65 0.9 0.75 0.85 (each segment):
#   a = S                mean 0.715, pass (>= 0.5) 18/20 = 90.0%
#   b = a - 0.2          mean 0.515, pass 12/20 = 60.0%: change -0.200 exactly on every
#                        pair (interval [-0.200, -0.200]), pass -30.0 pp, all losses
#   c = +0.1 on t00-t07, -0.1 on t08-t15, equal on t16-t19: change 0, win/tie/loss
#                        40%/20%/40%; one pass gained (t05), one lost (t14): 90.0% -> 90.0%
#   d = a + 0.1          change +0.100 everywhere: improvement; pass 90.0% -> 100.0%
#   e = x unchanged, y - 0.3: overall -0.150; group x +0.000, group y -0.300 (regression)
#   f = t07 - 0.9, the rest - 0.1: change (-0.9 - 19 * 0.1) / 20 = -0.140, t07 worst
. "$(dirname "$0")/lib.sh"
DB=$TMP/store.db
P=tests/store/pairs.jsonl
FIX=tests/store/fixed.lua
sql() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute(sys.argv[2]): print("|".join("" if v is None else str(v) for v in row))' "$DB" "$1"; }
run_fixed() { # label field [more options]
    label=$1 field=$2; shift 2
    "$ASSAY" run --db "$DB" -e "$FIX" -p "fixed.field=$field" --label "$label" "$@" "$P" >"$TMP/$label.jsonl" 2>"$TMP/$label.err"
}

# ---------------------------------------------------------------- what a run records
run_fixed A a
check "a recorded run exits 0" 0 $?
check_contains "the summary names the run and the store" "$TMP/A.err" "run 1 recorded in $DB"
check "its run row: label, status, trace count, version" "A|done|20|$("$ASSAY" --version | sed 's/^assay \([^ ]*\).*/\1/')" \
    "$(sql "SELECT label, status, traces, version FROM runs WHERE id = 1")"
check "its evaluator's totals, written when it ended: 20 records, mean 0.715, 18 of 20 passed" \
    "20|20|0.715|18|20|0" "$(sql "SELECT records, scored, ROUND(mean, 6), passed, pass_n, errors FROM run_evaluators WHERE run_id = 1")"
sql "SELECT command FROM runs WHERE id = 1" >"$TMP/cmd"
check_contains "the command line" "$TMP/cmd" "-p fixed.field=a --label A"
# h64 as docs/store.md defines it: per little-endian 64-bit word (the last zero-padded)
# h = (h ^ w) * K, h ^= h >> 32, from 0; then h ^= length, then fmix64
h64() { python3 -c 'import sys
M = 2**64
d = open(sys.argv[1], "rb").read()
h = 0
for i in range(0, len(d), 8):
    w = int.from_bytes(d[i:i + 8].ljust(8, b"\0"), "little")
    h = ((h ^ w) * 0x9E3779B97F4A7C15) % M; h ^= h >> 32
h ^= len(d)
h ^= h >> 33; h = (h * 0xff51afd7ed558ccd) % M; h ^= h >> 33; h = (h * 0xc4ceb9fe1a85ec53) % M; h ^= h >> 33
print("%016x" % h)' "$1"; }
check "the input's name, size and content hash" "$P|$(wc -c <"$P")|$(h64 "$P")" \
    "$(sql "SELECT path, size, hash FROM run_inputs WHERE run_id = 1")"
want="fixed|trace|$(h64 "$FIX")|{\"field\":\"a\"}"
check "the evaluator with its file's hash and effective params" "$want" \
    "$(sql "SELECT name, scope, hash, params FROM run_evaluators WHERE run_id = 1")"
check "one result row per output record, equal to it" "$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l); print("%s|%r|%s" % (r["trace_id"], r["score"], int(r["pass"])))' "$TMP/A.jsonl")" \
    "$(sql "SELECT trace_id, score, pass FROM results WHERE run_id = 1 ORDER BY line" | python3 -c 'import sys
for l in sys.stdin:
    t, s, p = l.strip().split("|"); print("%s|%r|%s" % (t, float(s), p))')"
check "each trace body kept once, byte for byte" "20|$(cat "$P" | python3 -c 'import sys; print(sum(len(l.rstrip("\n").encode()) for l in sys.stdin))')" \
    "$(sql "SELECT COUNT(*), SUM(LENGTH(CAST(json AS BLOB))) FROM bodies")"
run_fixed A2 a
check "the same file scored again adds no body" 20 "$(sql "SELECT COUNT(*) FROM bodies")"

# ------------------------------------------------ digests, and the bodies kept
# Every trace keeps its digest: metadata and step types as plugins see them (the last of
# repeated keys, escapes decoded), one step type per step, null where a step has none.
printf '%s\n' '{"id":"d1","steps":[{"type":"search","q":1},7,{"ty\u0070e":"fetch","type":"llm"},{"type":3},{}],"meta\u0064ata":{"segment":"x"},"metadata":{"segment":"y","n":[1,{"a":"]}"}]}}' \
    '{"id":"d2","metadata":"not an object","steps":{"type":"search"}}' >"$TMP/digest.jsonl"
"$ASSAY" run --db "$TMP/digest.db" -e "$FIX" "$TMP/digest.jsonl" >/dev/null 2>&1
check "the digest of a trace with repeated and escaped keys" \
    '{"metadata":{"segment":"y","n":[1,{"a":"]}"}]},"step_types":["search",null,"llm",null,null]}' \
    "$(DB=$TMP/digest.db sql "SELECT summary FROM traces WHERE line = 1")"
check "metadata that is not an object, steps that are not an array" '{"metadata":null,"step_types":[]}' \
    "$(DB=$TMP/digest.db sql "SELECT summary FROM traces WHERE line = 2")"
# 100 traces, trace i scored ((37 i) mod 100) / 100 and so failing below 0.5: ranked as the
# report ranks, the 64 worst are the 50 that fail and the 14 passing lowest, 0.50 to 0.63.
# Input order is a permutation of the scores, so worse traces keep displacing kept ones.
python3 -c 'import json
for i in range(100):
    print(json.dumps({"id": "w%02d" % i, "metadata": {"a": (37 * i % 100) / 100}}))' >"$TMP/worst.jsonl"
"$ASSAY" run --db "$TMP/worst.db" -e "$FIX" "$TMP/worst.jsonl" >"$TMP/worst.out" 2>/dev/null
check "whole bodies are kept for the 64 worst traces only: scores 0.00 to 0.63" \
    "$(python3 -c 'print(" ".join(str(k / 100) for k in range(64)))')" \
    "$(DB=$TMP/worst.db sql "SELECT json_extract(b.json, '\$.metadata.a') FROM traces t JOIN bodies b ON b.hash = t.body ORDER BY 1" | tr '\n' ' ' | sed 's/ $//')"
check "no body left behind by the traces that gave way" 64 "$(DB=$TMP/worst.db sql "SELECT COUNT(*) FROM bodies")"
check "every trace keeps its digest" 100 "$(DB=$TMP/worst.db sql "SELECT COUNT(summary) FROM traces")"
"$ASSAY" report --db "$TMP/worst.db" -o "$TMP/worst.html" >/dev/null 2>&1
check "the report's 25 worst traces all have their bodies (scores 0.00 to 0.24)" \
    "$(python3 -c 'print(" ".join("%g" % (k / 100) for k in range(25)))')" \
    "$(python3 -c 'import json, re, sys
page = open(sys.argv[1]).read()
data = json.loads(re.search(r"<script type=\"application/json\" id=\"data\">(.*?)</script>", page, re.S).group(1))
print(" ".join("%g" % w["body"]["metadata"]["a"] for w in data["worst"]))' "$TMP/worst.html" 2>&1)"

check "each result row holds its record's details, not the whole record line" \
    "$(python3 -c 'import json, sys
for l in open(sys.argv[1]):
    print(json.dumps(json.loads(l)["details"], separators=(",", ":")))' "$TMP/worst.out" | sort | md5sum)" \
    "$(DB=$TMP/worst.db sql "SELECT details FROM results" | sort | md5sum)"

# Stores written by earlier assays are upgraded when they are read, and read the same.
# Schema 1: every body, no digests, whole record lines; schema 2: digests and kept bodies,
# whole record lines. Both have the index by (run_id, evaluator, trace_id, step).
cp "$TMP/worst.db" "$TMP/old.db"
cp "$TMP/worst.db" "$TMP/v2.db"
python3 tests/store/downgrade.py "$TMP/old.db" 1 "$TMP/worst.jsonl"
python3 tests/store/downgrade.py "$TMP/v2.db" 2
"$ASSAY" runs --db "$TMP/old.db" >"$TMP/old_runs.txt" 2>&1
check "a schema-1 store is read (assay runs exits 0)" 0 $?
results_layout() { DB=$1 sql "SELECT value, (SELECT COUNT(*) FROM sqlite_master WHERE tbl_name = 'results'
    AND type = 'index' AND sql IS NOT NULL), (SELECT COUNT(*) FROM results), (SELECT COUNT(*) FROM results
    WHERE details IS NOT NULL) FROM meta WHERE key = 'schema'"; }
check "and upgraded to schema 6 on the way: results clustered, no index, every row with its details" \
    "6|0|100|100" "$(results_layout "$TMP/old.db")"
"$ASSAY" runs --db "$TMP/v2.db" >/dev/null 2>&1
check "a schema-2 store too" "6|0|100|100" "$(results_layout "$TMP/v2.db")"
check "and its finished run gets its evaluator's totals" "100|100|50" \
    "$(DB=$TMP/v2.db sql "SELECT records, scored, passed FROM run_evaluators")"
"$ASSAY" report --db "$TMP/old.db" -o "$TMP/old.html" --group-by a >/dev/null 2>&1
"$ASSAY" report --db "$TMP/v2.db" -o "$TMP/v2.html" --group-by a >/dev/null 2>&1
"$ASSAY" report --db "$TMP/worst.db" -o "$TMP/new.html" --group-by a >/dev/null 2>&1
segments() { python3 -c 'import json, re, sys
page = open(sys.argv[1]).read()
data = json.loads(re.search(r"<script type=\"application/json\" id=\"data\">(.*?)</script>", page, re.S).group(1))
print(len(data["segments"]["cells"]), json.dumps(data["segments"]["cells"][:3]))' "$1"; }
check "its segments read from the bodies equal those read from the digests" "$(segments "$TMP/new.html")" \
    "$(segments "$TMP/old.html")"
worst_details() { python3 -c 'import json, re, sys
page = open(sys.argv[1]).read()
data = json.loads(re.search(r"<script type=\"application/json\" id=\"data\">(.*?)</script>", page, re.S).group(1))
print(json.dumps([r["details"] for w in data["worst"][:3] for r in w["records"]]))' "$1"; }
check "the worst traces' details, read from the record lines of schema 1 and 2 stores" \
    "$(worst_details "$TMP/new.html") $(worst_details "$TMP/new.html")" \
    "$(worst_details "$TMP/old.html") $(worst_details "$TMP/v2.html")"
"$ASSAY" run --no-db -e "$FIX" "$P" >/dev/null 2>"$TMP/nodb.err"
check "--no-db records nothing" 2 "$(sql "SELECT COUNT(*) FROM runs")"
ABS_ASSAY=$(cd "$(dirname "$ASSAY")" && pwd)/$(basename "$ASSAY")
(mkdir -p "$TMP/default" && here=$PWD && cd "$TMP/default" && ASSAY_DB= "$ABS_ASSAY" run -e "$here/$FIX" "$here/$P" >/dev/null 2>&1)
check "the default store is .assay/assay.db in the working directory" yes \
    "$([ -f "$TMP/default/.assay/assay.db" ] && echo yes || echo no)"
printf 'not a database, but long enough to have a header of its own..........................................................' >"$TMP/bad.db"
"$ASSAY" run --db "$TMP/bad.db" -e "$FIX" "$P" >"$TMP/bad.out" 2>"$TMP/bad.err"
check "a store file that is not a database: usage error, exit 2" 2 $?
check_contains "naming it" "$TMP/bad.err" "run store: $TMP/bad.db"
check "and nothing scored into the void" 0 "$(wc -c <"$TMP/bad.out")"
echo "earlier results" >"$TMP/kept.jsonl"
"$ASSAY" run --db "$TMP/no/such/dir.db" -e "$FIX" "$P" -o "$TMP/kept.jsonl" 2>/dev/null
check "a store that cannot be opened leaves an earlier -o file as it was (exit 2)" "2 earlier results" "$? $(cat "$TMP/kept.jsonl")"
runs_before=$(sql "SELECT COUNT(*) FROM runs")
"$ASSAY" run --db "$DB" -e "$FIX" "$P" -o "$TMP/no/such/out.jsonl" 2>/dev/null
check "an output that cannot be opened leaves no run behind in the store (exit 2)" "2 $runs_before" "$? $(sql "SELECT COUNT(*) FROM runs")"

# ------------------------------------------------------------------------ assay runs
"$ASSAY" runs --db "$DB" >"$TMP/runs.txt"
check "assay runs exits 0" 0 $?
head -1 "$TMP/runs.txt" >"$TMP/first"
check_contains "lists the latest run first" "$TMP/first" "run 2  A2"
check_contains "with the mean and pass rate of each evaluator (0.715, 90.0%)" "$TMP/runs.txt" \
    "fixed                          20   0.715   90.0%       0"
"$ASSAY" runs --db "$TMP/none.db" >/dev/null 2>"$TMP/none.err"
check "runs on a missing store: exit 2" 2 $?
check_contains "saying so" "$TMP/none.err" "no run store here"

# --------------------------------------------------------------------- assay compare
# B runs score new inputs with the same evaluator: metadata.a takes field F's values, so that
# only the scored traces change between the runs, not the evaluator's definition
run_input() { # label field
    python3 -c 'import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    t["metadata"]["a"] = t["metadata"][sys.argv[2]]
    print(json.dumps(t, separators=(",", ":")))' "$P" "$2" >"$TMP/pairs_$2.jsonl"
    "$ASSAY" run --db "$DB" -e "$FIX" --label "$1" "$TMP/pairs_$2.jsonl" >"$TMP/$1.jsonl" 2>"$TMP/$1.err"
}
for f in b c d e f; do run_input "$f" "$f"; done
row() { # file segment measure: the columns after the measure of that table row
    awk -v seg="$2" -v m="$3" '$1 == seg && $2 == m { $1 = ""; $2 = ""; sub(/^  /, ""); print; exit }' "$1"; }
"$ASSAY" compare --db "$DB" A b >"$TMP/cmp_b.txt"
check "a regression without --fail-on-regression: exit 0" 0 $?
check "b: means 0.715 -> 0.515, change -0.200 [-0.200, -0.200] on every pair: p 0, a regression" \
    "20 0.715 0.515 -0.200 [-0.200, -0.200] <.001 REGRESSION" "$(row "$TMP/cmp_b.txt" all mean)"
check "b: pass 90.0% -> 60.0%, -30.0 pp" "20 90.0% 60.0% -30.0pp" "$(row "$TMP/cmp_b.txt" all pass | cut -d' ' -f1-4)"
check_contains "b: every pair a loss" "$TMP/cmp_b.txt" "win/tie/loss of B: 0.0% / 0.0% / 100.0% of 20 pairs"
check_contains "b: the input changed, and says so" "$TMP/cmp_b.txt" "input: different files or contents"
check_contains "b: one regression counted" "$TMP/cmp_b.txt" "2 significant regressions"
"$ASSAY" compare --db "$DB" A b --fail-on-regression >/dev/null
check "--fail-on-regression gates on it: exit 1" 1 $?
"$ASSAY" compare --db "$DB" A b --fail-on-regression --min-delta 0.35 >"$TMP/cmp_b35.txt"
check "--min-delta 0.35: a significant drop of 0.2 (and of 30 pp) is no regression: exit 0" 0 $?
check "… shown as below min-delta" "below min-delta" "$(row "$TMP/cmp_b35.txt" all mean | cut -d' ' -f8-)"

"$ASSAY" compare --db "$DB" A c --fail-on-regression >"$TMP/cmp_c.txt"
check "c: no significant change, the gate passes" 0 $?
check "c: mean change 0, the interval holds 0, no verdict" "20 0.715 0.715 +0.000" \
    "$(row "$TMP/cmp_c.txt" all mean | cut -d' ' -f1-4)"
check_contains "c: ties counted apart: 40%/20%/40%" "$TMP/cmp_c.txt" "win/tie/loss of B: 40.0% / 20.0% / 40.0% of 20 pairs"
check "c: pass 90.0% -> 90.0%" "20 90.0% 90.0% +0.0pp" "$(row "$TMP/cmp_c.txt" all pass | cut -d' ' -f1-4)"
# the bootstrap interval against the normal one: differences +-0.1 (8 each) and 0 (4):
# sd = sqrt(16 * 0.01 / 20) = 0.0894, so 1.96 * sd / sqrt(20) = 0.0392
check "c: the bootstrap interval is close to the normal approximation +-0.039" "ok" \
    "$(row "$TMP/cmp_c.txt" all mean | tr -d '[],' | awk '{ print ($5 < -0.030 && $5 > -0.048 && $6 > 0.030 &&
        $6 < 0.048) ? "ok" : "interval " $5 " " $6 }')"

"$ASSAY" compare --db "$DB" A d --fail-on-regression >"$TMP/cmp_d.txt"
check "d: an improvement passes the gate" 0 $?
check "d: +0.100 [+0.100, +0.100], improved" "20 0.715 0.815 +0.100 [+0.100, +0.100] <.001 improved" \
    "$(row "$TMP/cmp_d.txt" all mean)"
check "d: pass 90.0% -> 100.0%" "20 90.0% 100.0% +10.0pp" "$(row "$TMP/cmp_d.txt" all pass | cut -d' ' -f1-4)"
check_contains "d: all wins" "$TMP/cmp_d.txt" "win/tie/loss of B: 100.0% / 0.0% / 0.0% of 20 pairs"

"$ASSAY" compare --db "$DB" A e --group-by segment >"$TMP/cmp_e.txt"
check "e: overall -0.150" "20 0.715 0.565 -0.150" "$(row "$TMP/cmp_e.txt" all mean | cut -d' ' -f1-4)"
check "e: segment x unchanged" "10 0.715 0.715 +0.000 [+0.000, +0.000] 1.000" "$(row "$TMP/cmp_e.txt" x mean)"
check "e: segment y -0.300 on every pair, a regression" "10 0.715 0.415 -0.300 [-0.300, -0.300] <.001 REGRESSION" \
    "$(row "$TMP/cmp_e.txt" y mean)"
check "e: no row of segment x says REGRESSION" 0 "$(grep -c '^  x .*REGRESSION' "$TMP/cmp_e.txt")"

"$ASSAY" compare --db "$DB" A f >"$TMP/cmp_f.txt"
check "f: -0.140" "20 0.715 0.575 -0.140" "$(row "$TMP/cmp_f.txt" all mean | cut -d' ' -f1-4)"
check "f: the trace that regressed most comes first, with its details" \
    '    t07  0.900 -> 0.000  pass true -> false  {"field":"a","value":0}' \
    "$(grep -A1 'regressed most' "$TMP/cmp_f.txt" | tail -1)"
check "every line of compare's output fits 100 columns" 0 \
    "$(cat "$TMP"/cmp_?.txt | awk 'length($0) > 100' | wc -l)"

"$ASSAY" compare --db "$DB" previous latest >"$TMP/cmp_latest.txt"
check_contains "previous and latest resolve to the last two runs" "$TMP/cmp_latest.txt" "A: run 6  e"
check_contains "… B" "$TMP/cmp_latest.txt" "B: run 7  f"
"$ASSAY" compare --db "$DB" 1 nosuch 2>"$TMP/cmp_bad.err"
check "an unknown run: exit 2" 2 $?
check_contains "named in the message" "$TMP/cmp_bad.err" "no run 'nosuch' in the store"
"$ASSAY" compare --db "$DB" A >/dev/null 2>&1
check "compare needs two runs: exit 2" 2 $?
# traces of one run only: A = t00-t14, B = t05-t19 and one that raises; then a B whose
# records all raise, so that none pairs
UDB=$TMP/unpaired.db
head -15 "$P" >"$TMP/u1.jsonl"
{ tail -15 "$P"; echo '{"id":"t20","metadata":{"a":"boom"}}'; } >"$TMP/u2.jsonl"
printf '{"id":"t%s","metadata":{"a":"boom"}}\n' 01 02 03 >"$TMP/u3.jsonl"
for u in u1 u2 u3; do "$ASSAY" run --db "$UDB" -e "$FIX" --label "$u" "$TMP/$u.jsonl" >/dev/null 2>&1; done
"$ASSAY" compare --db "$UDB" u1 u2 >"$TMP/cmp_u.txt" 2>&1
check_contains "10 pairs; 5 traces only in A, 5 only in B, B's error left out" "$TMP/cmp_u.txt" \
    "unpaired: 5 only in A, 5 only in B; records with errors left out: 0 in A, 1 in B"
check "… over the 10 pairs" "10" "$(row "$TMP/cmp_u.txt" all mean | cut -d' ' -f1)"
check "the totals kept as results pass equal the results' own, errors included" \
    "$(DB=$UDB sql "SELECT run_id, evaluator, COUNT(*), COUNT(score), ROUND(AVG(score), 9), COALESCE(SUM(pass), 0),
        COUNT(pass), COUNT(error_kind) FROM results GROUP BY run_id, evaluator ORDER BY run_id")" \
    "$(DB=$UDB sql "SELECT run_id, name, records, scored, ROUND(mean, 9), passed, pass_n, errors FROM run_evaluators
        ORDER BY run_id")"
"$ASSAY" compare --db "$UDB" u1 u3 >"$TMP/cmp_u3.txt" 2>&1
check_contains "no pair at all: all 15 of A unpaired, B's 3 errors left out" "$TMP/cmp_u3.txt" \
    "unpaired: 15 only in A, 0 only in B; records with errors left out: 0 in A, 3 in B"

# ------------------------------------------------------------ a store that falls behind
# another connection holds the write lock for 2 s while 60,000 tiny traces stream in: the
# rows waiting for the store pass the run's limit and the reader pauses; once the lock goes
# the run must resume reading (it used to wait forever) and store all 5 records of each
check "a run paused for its store resumes when the store catches up" "ok 60000 300000" \
    "$(python3 tests/store/stall.py "$ASSAY" "$TMP/stall.db" plugins "$TMP")"

# ----------------------------------------------------------- kills and --resume
python3 scripts/gen_traces.py --count 4000 --seed 5 >"$TMP/big.jsonl"
KDB=$TMP/kill.db
"$ASSAY" run --db "$KDB" -j 2 "$TMP/big.jsonl" -o "$TMP/big.out" 2>/dev/null &
pid=$!
while [ "$(cat "$TMP/big.out" 2>/dev/null | wc -c)" -lt 400000 ] && kill -0 $pid 2>/dev/null; do sleep 0.02; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
DB=$KDB
check "after SIGKILL the store passes SQLite's integrity check" ok "$(sql "PRAGMA integrity_check")"
check "the killed run stays marked running" running "$(sql "SELECT status FROM runs")"
check "every trace in it has all 5 of its records or none" "" \
    "$(sql "SELECT line, COUNT(*) FROM results GROUP BY file, line HAVING COUNT(*) <> 5")"
kept=$(sql "SELECT COUNT(DISTINCT line) FROM results")
if [ "$kept" -gt 0 ] && [ "$kept" -lt 4000 ]; then ok "it holds a prefix of the run ($kept of 4000 traces)"
else not_ok "it holds a prefix of the run" "traces: $kept"; fi
"$ASSAY" runs --db "$KDB" >"$TMP/kruns.txt"
check_contains "assay runs shows it as running, with the traces it holds" "$TMP/kruns.txt" "running  $kept traces"
check "a killed run has no totals" "5|0" "$(sql "SELECT COUNT(*), COUNT(records) FROM run_evaluators")"
"$ASSAY" report --db "$KDB" -o "$TMP/killed.html" >/dev/null 2>&1
check "so the report's trend counts its results (records with a pass, per evaluator)" \
    "$(sql "SELECT evaluator, COUNT(pass) FROM results GROUP BY evaluator ORDER BY evaluator" | tr '\n' ' ')" \
    "$(python3 -c 'import json, re, sys
page = open(sys.argv[1]).read()
data = json.loads(re.search(r"<script type=\"application/json\" id=\"data\">(.*?)</script>", page, re.S).group(1))
print(" ".join("%s|%d" % (t["evaluator"], t["pass_n"]) for t in sorted(data["trend"], key=lambda t: t["evaluator"])), end=" ")' "$TMP/killed.html" 2>&1)"
check "so assay runs counts its results: $kept records of query_diversity" yes \
    "$(grep -Eq "^ +query_diversity +$kept +" "$TMP/kruns.txt" && echo yes || echo no)"
"$ASSAY" run --db "$KDB" -j 2 --resume "$TMP/big.jsonl" -o "$TMP/big.out" 2>/dev/null
check "--resume completes it" 0 $?
check "in the same run row, now done, one run in all" "1|done|4000" "$(sql "SELECT COUNT(*), MAX(status), MAX(traces) FROM runs")"
check "with totals over all its records, the resumed part and the rest" "4000 4000 4000 4000 4000" \
    "$(sql "SELECT records FROM run_evaluators ORDER BY idx" | tr '\n' ' ' | sed 's/ $//')"
check "every trace exactly once: 4000 x 5 records, none twice" "20000|4000|0" \
    "$(sql "SELECT COUNT(*), COUNT(DISTINCT line), (SELECT COUNT(*) FROM (SELECT 1 FROM results GROUP BY line, evaluator HAVING COUNT(*) > 1)) FROM results")"
check "the store agrees with the output file" "$(wc -l <"$TMP/big.out")" "$(sql "SELECT COUNT(*) FROM results")"
check "the resumed run still keeps 64 bodies, one per kept trace" "64|64" \
    "$(sql "SELECT COUNT(body), (SELECT COUNT(*) FROM bodies) FROM traces")"

done_testing
