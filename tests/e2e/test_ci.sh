# The everyday CI loop: compare explains what changed between two runs (a definition change
# is not a regression unless --strict; evaluators of one run only; an unknown --group-by),
# --json with p-values checked against a reference t-test and Holm's adjustment computed
# here, absolute gates on run and compare, and the false-alarm rate of 200 compares of runs
# of an unchanged system near the nominal 5%.
. "$(dirname "$0")/lib.sh"
DB=$TMP/ci.db
P=tests/store/pairs.jsonl
FIX=tests/store/fixed.lua

# ------------------------------------------------------------ what changed from A to B
"$ASSAY" run --db "$DB" -e "$FIX" --label base "$P" >/dev/null 2>&1
"$ASSAY" run --db "$DB" -e "$FIX" -p fixed.field=b --label params "$P" >/dev/null 2>&1
"$ASSAY" compare --db "$DB" base params --fail-on-regression >"$TMP/params.txt"
check "a params-only change (scores 0.2 lower on every trace) is no regression: exit 0" 0 $?
check_contains "the change is named: the param, its old and new value" "$TMP/params.txt" \
    'fixed: param field "a" -> "b"'
check_contains "the evaluator is marked as changed" "$TMP/params.txt" \
    "fixed: definition changed: the change is not judged (--strict judges it)"
check_contains "the same input, said so" "$TMP/params.txt" "input: the same (1 file, h64 "
"$ASSAY" compare --db "$DB" base params --fail-on-regression --strict >"$TMP/strict.txt"
check "--strict judges it: a regression, exit 1" 1 $?
check_contains "… as REGRESSION" "$TMP/strict.txt" "fixed: REGRESSION"

sed 's/^-- fixed:/-- fixed (edited):/' "$FIX" >"$TMP/fixed.lua"
"$ASSAY" run --db "$DB" -e "$TMP/fixed.lua" --label edited "$P" >/dev/null 2>&1
"$ASSAY" compare --db "$DB" base edited >"$TMP/edited.txt"
check "an edited plugin file is reported with both hashes" 1 \
    "$(grep -c '^  fixed: plugin file changed (h64 [0-9a-f]\{16\} -> [0-9a-f]\{16\})$' "$TMP/edited.txt")"
sed 's/name = "fixed"/name = "fixed2"/' "$FIX" >"$TMP/fixed2.lua"
"$ASSAY" run --db "$DB" -e "$FIX" -e "$TMP/fixed2.lua" --label two "$P" >/dev/null 2>&1
"$ASSAY" compare --db "$DB" base two >"$TMP/two.txt"
check_contains "an evaluator of B only is listed, not dropped silently" "$TMP/two.txt" "fixed2: only in B (not compared)"
"$ASSAY" compare --db "$DB" two base >"$TMP/two_r.txt"
check_contains "… and one of A only" "$TMP/two_r.txt" "fixed2: only in A (not compared)"
"$ASSAY" compare --db "$DB" base base >"$TMP/same.txt"
check_contains "a run against itself: nothing changed" "$TMP/same.txt" \
    "nothing else: the same evaluators, params and plugin files"
"$ASSAY" compare --db "$DB" base params --group-by segmnt >/dev/null 2>"$TMP/field.err"
check "an unknown --group-by field: exit 2" 2 $?
check_contains "naming the fields there are" "$TMP/field.err" \
    "--group-by segmnt: no trace of the two runs has metadata.segmnt; the metadata fields they have: a, b, c, d, e, f, segment"

# the run's default LLM model is part of the definition of an evaluator that calls the model:
# another judge model is a changed definition, not a change of the system (no server needed:
# the calls fail, the runs and their definitions are recorded)
printf 'return { name = "asks", evaluate = function(t) return assay.llm.chat{ messages = { { role = "user", content = "x" } } }.text == "y" end }\n' \
    >"$TMP/asks.lua"
for m in model-a model-b; do
    "$ASSAY" run --db "$DB" -e "$TMP/asks.lua" --llm-url http://127.0.0.1:9/v1 --llm-model $m --no-cache --retries 1 \
        --label "$m" "$P" >/dev/null 2>&1
done
"$ASSAY" compare --db "$DB" model-a model-b >"$TMP/model.txt" 2>&1
check_contains "another --llm-model is named as a change of the evaluators that call it" "$TMP/model.txt" \
    'asks: param llm.model "model-a" -> "model-b"'
check_contains "… and not judged" "$TMP/model.txt" "asks: definition changed"
check_contains "… (no regression counted)" "$TMP/model.txt" "0 significant regressions; 1 evaluator changed definition"

# ------------------------------------------------------------ --json against references
python3 -c 'import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    t["metadata"]["a"] = t["metadata"]["f"]
    print(json.dumps(t))' "$P" >"$TMP/f.jsonl"
"$ASSAY" run --db "$DB" -e "$FIX" --label f "$TMP/f.jsonl" >/dev/null 2>&1
"$ASSAY" compare --db "$DB" base f --group-by segment --json >"$TMP/f.json"
check "compare --json: exit 0" 0 $?
check "its p-values are the paired t-test's, its adjusted ones Holm's over the comparisons tested" "ok" \
    "$(python3 tests/ci/check_compare.py "$TMP/f.json" "$P" "$TMP/f.jsonl")"

# ------------------------------------------------------------------------------ gates
"$ASSAY" compare --db "$DB" base f --gate 'fixed.pass_rate>=0.9' --gate 'fixed.mean>=0.5' >"$TMP/gate.txt" \
    2>"$TMP/gate.err"
check "a gate that fails: exit 1" 1 $?
check_contains "… named with its value (B's pass rate 15/20)" "$TMP/gate.txt" \
    "gate fixed.pass_rate>=0.9: FAILED (pass_rate 0.75 over 20 records)"
check_contains "a gate that holds says ok (B's mean 0.575)" "$TMP/gate.txt" "gate fixed.mean>=0.5: ok (mean 0.575 over 20 records)"
check_contains "the count on stderr" "$TMP/gate.err" "assay: compare: 1 gate failed"
"$ASSAY" compare --db "$DB" base f --group-by segment --gate 'fixed.mean>0.6 segment=*' >"$TMP/seg.txt" 2>/dev/null
check "a gate per segment (x: 5.35 / 10, y: 6.15 / 10): exit 1" 1 $?
check_contains "segment x fails" "$TMP/seg.txt" "gate fixed.mean>0.6 segment=* [x]: FAILED (mean 0.535 over 10 records)"
check_contains "segment y holds" "$TMP/seg.txt" "gate fixed.mean>0.6 segment=* [y]: ok (mean 0.615 over 10 records)"
"$ASSAY" compare --db "$DB" base f --gate 'nosuch.mean>=0.5' >"$TMP/nosuch.txt" 2>/dev/null
check "a gate on an evaluator the run lacks fails, it does not pass unchecked" 1 $?
check_contains "… saying why" "$TMP/nosuch.txt" "gate nosuch.mean>=0.5: FAILED (no records of this evaluator)"
"$ASSAY" compare --db "$DB" base f --gate 'fixed.median>=0.5' 2>"$TMP/bad_gate.err"
check "a gate that does not parse: exit 2" 2 $?
check_contains "… naming the form" "$TMP/bad_gate.err" "--gate 'fixed.median>=0.5': unknown metric"
"$ASSAY" run --no-db -e "$FIX" "$P" --gate 'fixed.pass_rate>=0.95' -o /dev/null 2>"$TMP/run_gate.err"
check "run --gate (18/20 passed): exit 1" 1 $?
check_contains "… printed after the summary" "$TMP/run_gate.err" "gate fixed.pass_rate>=0.95: FAILED (pass_rate 0.9 over 20 records)"
"$ASSAY" run --db "$DB" -e "$FIX" "$P" --group-by segment --gate 'fixed.pass_rate>=0.9 segment=x' -o /dev/null \
    2>"$TMP/run_gate2.err"
check "run --gate on a segment, from the store (x: 9/10): exit 0" 0 $?
check_contains "… ok" "$TMP/run_gate2.err" "gate fixed.pass_rate>=0.9 segment=x: ok (pass_rate 0.9 over 10 records)"
"$ASSAY" run --no-db -e "$FIX" "$P" --gate 'fixed.mean>=0.5 segment=x' -o "$TMP/never.jsonl" 2>"$TMP/run_seg.err"
check "a segment gate without --group-by: exit 2 before scoring" "2 no" "$? $([ -s "$TMP/never.jsonl" ] && echo yes || echo no)"

# ------------------------------------------------------------------------ the suite file
ABS_ASSAY=$(cd "$(dirname "$ASSAY")" && pwd)/$(basename "$ASSAY")
mkdir -p "$TMP/suite/evals"
cp "$FIX" "$TMP/suite/evals/fixed.lua"
cp "$P" "$TMP/suite/pairs.jsonl"
cat >"$TMP/suite/assay.lua" <<'LUA'
-- the suite: what to score, with what, and what must hold
return {
  inputs = { "pairs.jsonl" },
  evaluators = { "evals/fixed.lua" },
  params = { fixed = { field = "a" } },
  group_by = "segment",
  gates = { "fixed.pass_rate>=0.85", "fixed.mean>=0.7 segment=*" },
  output = "results.jsonl",
  label = "suite",
  db = "suite.db",
}
LUA
(cd "$TMP/suite" && "$ABS_ASSAY" run >/dev/null 2>"$TMP/suite.err")
check "assay run with no arguments runs ./assay.lua: every gate holds, exit 0 (18/20; x, y: 0.715)" 0 $?
check "… its inputs scored into its output, paths taken from the file's directory" 20 \
    "$(wc -l <"$TMP/suite/results.jsonl" | tr -d ' ')"
check_contains "… its gates checked per segment" "$TMP/suite.err" "gate fixed.mean>=0.7 segment=* [y]: ok (mean 0.715 over 10 records)"
check "… recorded under its label in its store" "suite" \
    "$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT label FROM runs").fetchone()[0])' \
        "$TMP/suite/suite.db")"
(cd "$TMP/suite" && "$ABS_ASSAY" run -p fixed.field=b -o /dev/null 2>"$TMP/suite_b.err")
check "a flag overrides the file (-p fixed.field=b: 12/20 pass): the gate fails, exit 1" 1 $?
check_contains "… and says which" "$TMP/suite_b.err" "gate fixed.pass_rate>=0.85: FAILED (pass_rate 0.6 over 20 records)"
"$ASSAY" run -c "$TMP/suite/assay.lua" -o /dev/null 2>/dev/null
check "-c FILE from another directory" 0 $?
printf 'return {\n  evaluators = "x.lua",\n  gates = { "fixed.median>=1" },\n}\n' >"$TMP/bad_gate.lua"
"$ASSAY" run -c "$TMP/bad_gate.lua" 2>"$TMP/bad_suite.err"
check "a suite whose gate does not parse: exit 2" 2 $?
check_contains "… naming the file and line" "$TMP/bad_suite.err" "$TMP/bad_gate.lua:3: gates: --gate 'fixed.median>=1': unknown metric"
printf 'return {\n  evaluatrs = "x.lua",\n}\n' >"$TMP/bad_key.lua"
"$ASSAY" run -c "$TMP/bad_key.lua" 2>"$TMP/bad_key.err"
check_contains "an unknown key is named, with the keys there are" "$TMP/bad_key.err" \
    "bad_key.lua: evaluatrs: unknown suite key (known: evaluators, params, gates"
printf 'local f = io.open("/etc/passwd")\nreturn {}\n' >"$TMP/io.lua"
"$ASSAY" run -c "$TMP/io.lua" 2>"$TMP/io.err"
check "the suite runs in the sandbox: no file access, exit 2" 2 $?
check_contains "… the line named" "$TMP/io.err" "io.lua:1: 'io': file access is not available in the assay sandbox"
printf 'return {\n  sample = 2,\n}\n' >"$TMP/bad_value.lua"
"$ASSAY" run -c "$TMP/bad_value.lua" 2>"$TMP/bad_value.err"
check_contains "a value a flag would refuse is refused as the flag's, naming the file" "$TMP/bad_value.err" \
    "the option above comes from the suite file $TMP/bad_value.lua"
printf 'while true do end\n' >"$TMP/loop.lua"
"$ASSAY" run -c "$TMP/loop.lua" 2>"$TMP/loop.err"
check "a suite that never returns is stopped by the time limit: exit 2" 2 $?

# ------------------------------------------------------------------ JUnit per evaluator
# Six traces, score = metadata.s, pass = score >= 0.5; segment a: 0.9 0.2 0.6, b: 0.1 0.4 0.8;
# a seventh trace in segment b makes the evaluator raise an error; one line is not JSON.
# Hand-computed: overall 6 scored, mean 3.0/6 = 0.5, 3 of 6 pass; a: 2 of 3; b: 1 of 3, with
# 1 error among its 4 records.
mkdir -p "$TMP/ju"
printf '%s\n' 'return { name = "s", evaluate = function(t)' \
    '  if t.metadata.boom then error("boom on " .. t.id) end' \
    '  return { score = t.metadata.s, pass = t.metadata.s >= 0.5 } end }' >"$TMP/ju/s.lua"
python3 -c '
import json
for i, (seg, s) in enumerate([("a", 0.9), ("a", 0.2), ("a", 0.6), ("b", 0.1), ("b", 0.4), ("b", 0.8)]):
    print(json.dumps({"id": "t%d" % i, "metadata": {"seg": seg, "s": s}}))
print(json.dumps({"id": "t6", "metadata": {"seg": "b", "boom": True}}))
print("not json")' >"$TMP/ju/in.jsonl"
"$ASSAY" run --no-db -e "$TMP/ju/s.lua" --group-by seg --gate 's.pass_rate>=0.5 segment=*' --gate 's.mean>=0.4' \
    --junit "$TMP/ju/j.xml" "$TMP/ju/in.jsonl" >/dev/null 2>&1
check "run --junit with a failing segment gate: exit 1" 1 $?
junit() { # file what
    python3 -c '
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot(); what = sys.argv[2]
cases = {(c.get("classname"), c.get("name")): c for c in root.iter("testcase")}
def state(c):
    for k in ("failure", "error"):
        if c.find(k) is not None: return k + ": " + c.find(k).get("message")
    return "ok"
def text(c):
    for k in ("failure", "error", "system-out"):
        if c.find(k) is not None: return c.find(k).text or ""
if what == "totals": print(*(root.get(k) for k in ("tests", "failures", "errors")))
elif what == "suites": print(" ".join(s.get("name") for s in root.iter("testsuite")))
elif what == "cases": print(" | ".join("%s/%s" % k for k in cases))
elif what == "state": print(state(cases[(sys.argv[3], sys.argv[4])]))
elif what == "text": print(text(cases[(sys.argv[3], sys.argv[4])]), end="")' "$@"
}
check "one suite per evaluator, then the gates no case reports and the input lines" "s input" \
    "$(junit "$TMP/ju/j.xml" suites)"
check "a case for the run and one per segment, not one per trace" "s/all traces | s/seg=a | s/seg=b | input/input lines" \
    "$(junit "$TMP/ju/j.xml" cases)"
check "the totals: 4 cases, 1 failure (segment b's gate), 2 errors (the run's errored record, the input line)" "4 1 2" \
    "$(junit "$TMP/ju/j.xml" totals)"
check "the whole run holds its gate (mean 0.5 >= 0.4) but a record errored: an error case" \
    "error: 1 of 7 records errored; worst: t6, t3, t1, t4" "$(junit "$TMP/ju/j.xml" state s 'all traces')"
check_contains "… the gate's line in its text" "$TMP/ju/j.xml" "gate s.mean&gt;=0.4: ok (mean 0.5 over 6 records)"
check "segment b fails with its gate, named with its value (1 of 3)" \
    "failure: gate s.pass_rate>=0.5 segment=* [b]: FAILED (pass_rate 0.3333 over 3 records); worst: t6, t3, t4" \
    "$(junit "$TMP/ju/j.xml" state s seg=b)"
printf '%s\n' '4 records, mean score 0.4333, pass rate 33.3% (1 of 3), 1 errors' 'worst traces:' \
    "  t6: runtime error: $TMP/ju/s.lua:2: boom on t6 (in.jsonl:7)" '  t3: score 0.1, pass false (in.jsonl:4)' \
    '  t4: score 0.4, pass false (in.jsonl:5)' >"$TMP/ju/b.want"
junit "$TMP/ju/j.xml" text s seg=b | sed "s|($TMP/ju/|(|" >"$TMP/ju/b.got"
check "its text: the counts, then the worst traces (error first, then failing by score), no passing one" "" \
    "$(diff "$TMP/ju/b.want" "$TMP/ju/b.got")"
check "segment a holds its gate (2 of 3): a passing case, with the gate's line in its output" "ok" \
    "$(junit "$TMP/ju/j.xml" state s seg=a)"
check_contains "… there" "$TMP/ju/j.xml" "gate s.pass_rate&gt;=0.5 segment=* [a]: ok (pass_rate 0.6667 over 3 records)"
check "the input line is an error case" "error: 1 input line is not a trace" \
    "$(junit "$TMP/ju/j.xml" state input 'input lines')"
"$ASSAY" run --no-db -e "$TMP/ju/s.lua" --gate 'nosuch.mean>0' --junit "$TMP/ju/g.xml" "$TMP/ju/in.jsonl" >/dev/null 2>&1
check "a gate on an evaluator the run lacks: a failing case of the suite 'gates'" \
    "failure: gate nosuch.mean>0: FAILED (no records of this evaluator)" \
    "$(junit "$TMP/ju/g.xml" state gates 'nosuch.mean>0')"
check "without gates, an evaluator whose records errored is an error case" "error: 1 of 7 records errored; worst: t6, t3, t1, t4" \
    "$(junit "$TMP/ju/g.xml" state s 'all traces')"
"$ASSAY" run --no-db -e "$TMP/ju/s.lua" --junit "$TMP/ju/t.xml" --junit-per-trace "$TMP/ju/in.jsonl" >/dev/null 2>&1
check "--junit-per-trace: a case per record (7) and per bad line (1)" "8 3 2" "$(junit "$TMP/ju/t.xml" totals)"
printf 'return { evaluators = { "s.lua" }, inputs = { "in.jsonl" }, junit = "suite.xml", junit_per_trace = true }\n' \
    >"$TMP/ju/assay.lua"
(cd "$TMP/ju" && "$ASSAY" run --no-db >/dev/null 2>&1)
check "the suite file's junit_per_trace = true" "8 3 2" "$(junit "$TMP/ju/suite.xml" totals)"

# ------------------------------------------------------------ progress and --quiet
# on a terminal (a pseudo-terminal from script(1)), a run longer than the progress period
# (500 ms: 1,500 traces at about 1 ms each) shows percentage, ETA, rate and errors
python3 scripts/gen_traces.py --count 1500 --seed 4 >"$TMP/progress.jsonl"
if command -v script >/dev/null 2>&1; then
    script -qc "$ASSAY run --no-db -j 1 -e tests/slurm/slow.lua $TMP/progress.jsonl -o /dev/null" /dev/null \
        </dev/null | tr '\r' '\n' >"$TMP/tty.txt"
    check "the progress line on a terminal: percent, ETA, traces, rate, errors" 1 \
        "$(grep -ac '% *ETA [0-9]* s *[0-9]* traces *[0-9]*/s *0 errors' "$TMP/tty.txt" | awk '{ print ($1 > 0) }')"
    script -qc "$ASSAY run --no-db -q -j 1 -e tests/slurm/slow.lua $TMP/progress.jsonl -o /dev/null" /dev/null \
        </dev/null | tr '\r' '\n' >"$TMP/quiet.txt"
    check "--quiet: no progress line and no summary table" 0 "$(grep -ac 'traces\|evaluator' "$TMP/quiet.txt")"
    script -qc "$ASSAY run --no-db -e $FIX -o /dev/null" /dev/null </dev/null | tr '\r' '\n' >"$TMP/stdin.txt"
    check_contains "reading a terminal on stdin: a hint" "$TMP/stdin.txt" "assay: reading traces from the terminal"
else
    echo "# no script(1) here: the terminal checks need a pseudo-terminal"
fi

# ------------------------------------------------- false alarms of an unchanged system
# 201 runs of the same 200 prompts whose scores are drawn afresh from one distribution; the
# 200 compares of consecutive runs test 3 evaluators x (all + 4 segments) x (mean, pass) =
# 30 comparisons each. With Holm's correction, a compare should show any significant change
# in about 5% of them at most; without it, in most. ASSAY_FALSE_ALARM_RUNS=N changes the
# number of runs.
case "${ASSAY_BUILD:-build}" in
*asan*) echo "# the false-alarm measure runs with the plain build (201 runs)"; RUNS=0 ;;
*) RUNS=${ASSAY_FALSE_ALARM_RUNS:-201} ;;
esac
if [ "$RUNS" -gt 0 ]; then
    NDB=$TMP/noise.db
    python3 tests/ci/noise.py 200 "$RUNS" "$TMP/noise"
    i=1
    while [ $i -le $RUNS ]; do
        "$ASSAY" run --db "$NDB" -j 1 --no-timing -e tests/ci/q1.lua -e tests/ci/q2.lua -e tests/ci/q3.lua \
            --label "r$i" "$TMP/noise/$i.jsonl" -o /dev/null 2>/dev/null || echo "run $i failed"
        i=$((i + 1))
    done
    i=1
    while [ $i -lt $RUNS ]; do
        "$ASSAY" compare --db "$NDB" "r$i" "r$((i + 1))" --group-by segment --json >"$TMP/noise/c_$i.json"
        i=$((i + 1))
    done
    # uncorrected: a row whose own p is below 0.05 (the rows Holm tests, the p each carries)
    rates=$(python3 -c 'import glob, json, sys
holm = [0, 0]; raw = [0, 0]; n = 0
for f in glob.glob(sys.argv[1] + "/c_*.json"):
    d = json.load(open(f))
    rows = [r for e in d["evaluators"] for r in e["rows"] if r["p_adjusted"] is not None and r["n"] >= 5]
    holm[0] += any(r["verdict"] in ("regression", "improvement") for r in rows)
    holm[1] += d["regressions"] > 0
    raw[0] += any(r["p"] < 0.05 for r in rows)
    raw[1] += any(r["p"] < 0.05 and r["delta"] < 0 for r in rows)
    n += 1
print("%.3f %.3f %d %.3f %.3f" % (holm[0] / n, holm[1] / n, n, raw[0] / n, raw[1] / n))' "$TMP/noise")
    set -- $rates
    echo "# $3 compares of an unchanged system: any significant change: Holm $1, uncorrected $4;" \
        "a regression (what fails CI): Holm $2, uncorrected $5"
    check "$((RUNS - 1)) compares were made" $((RUNS - 1)) "$3"
    check "with Holm's correction, false alarms stay near the nominal 5% (at most 8%)" yes \
        "$(python3 -c "print('yes' if $1 <= 0.08 else 'no: $1')")"
    check "without it, most compares raise one (over 30%)" yes "$(python3 -c "print('yes' if $4 > 0.30 else 'no: $4')")"
fi
done_testing
