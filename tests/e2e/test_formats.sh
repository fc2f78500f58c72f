# The formats of docs/format.md, as JSON Schemas in docs/schema/: the shipped and generated
# traces are valid traces, and every record a run writes (scores, skips, step records, every
# error kind a run can produce here, input errors, with and without --no-timing) is a valid
# record. The checker refuses what the schemas forbid.
. "$(dirname "$0")/lib.sh"
CHECK="python3 tests/e2e/schema_check.py"
TRACE=docs/schema/trace.schema.json
RECORD=docs/schema/record.schema.json

$CHECK "$TRACE" examples/traces/*.jsonl tests/bench/corpus.jsonl >"$TMP/t.err"
check "the example traces are valid traces" "" "$(head -5 "$TMP/t.err")"
python3 scripts/gen_traces.py --count 200 --seed 7 >"$TMP/gen.jsonl"
python3 scripts/gen_traces.py --count 50 --seed 8 --long >>"$TMP/gen.jsonl"
$CHECK "$TRACE" "$TMP/gen.jsonl" >"$TMP/g.err"
check "generated traces are valid traces" "" "$(head -5 "$TMP/g.err")"

mkdir -p "$TMP/ev"
cat >"$TMP/ev/kinds.lua" <<'EOF'
-- every kind of outcome: a score, a pass, a label and details, a skip, a runtime error, a
-- timeout and a memory error
return { name = "kinds", evaluate = function(t)
  local m = t.metadata and t.metadata.m
  if m == "error" then error("boom") end
  if m == "loop" then while true do end end
  if m == "memory" then local s = {} for i = 1, 1e9 do s[i] = ("x"):rep(1 << 20) .. i end end
  if m == "skip" then return { details = { skipped = "nothing to score" } } end
  if m == "bool" then return false end
  return { score = 0.5, pass = true, label = "ok", details = { list = {}, n = 1 } }
end }
EOF
cat >"$TMP/ev/steps.lua" <<'EOF'
return { name = "steps", scope = "search", evaluate = function(t, params, step, i) return #(step.query or "") % 2 end }
EOF
printf '%s\n' '{"id":"a","steps":[{"type":"search","query":"q"},{"type":"search","query":"qq"}]}' \
    '{"id":"e","metadata":{"m":"error"}}' '{"id":"l","metadata":{"m":"loop"}}' '{"id":"m","metadata":{"m":"memory"}}' \
    '{"id":"s","metadata":{"m":"skip"}}' '{"id":"b","metadata":{"m":"bool"}}' 'not json' '[1]' '{"id":7}' >"$TMP/kinds.jsonl"
"$ASSAY" run --no-db -j 2 --timeout-ms 200 --memory-mb 16 -e "$TMP/ev" -e plugins "$TMP/kinds.jsonl" "$TMP/gen.jsonl" \
    -o "$TMP/r1.jsonl" 2>/dev/null
"$ASSAY" run --no-db --no-timing -j 1 --timeout-ms 200 --memory-mb 16 -e "$TMP/ev" "$TMP/kinds.jsonl" <"$TMP/kinds.jsonl" \
    >"$TMP/r2.jsonl" 2>/dev/null
"$ASSAY" run --no-db --no-timing -e "$TMP/ev" - <"$TMP/kinds.jsonl" >"$TMP/r3.jsonl" 2>/dev/null
check "the runs wrote every kind of record" "runtime timeout memory input skipped step" "$(python3 -c '
import json, sys
seen = []
for path in sys.argv[1:]:
    for line in open(path):
        r = json.loads(line)
        e = r.get("error") or {}
        seen += [e.get("kind")] if e else []
        seen += ["skipped"] if isinstance(r.get("details"), dict) and "skipped" in r["details"] else []
        seen += ["step"] if isinstance(r.get("step"), int) else []
print(" ".join(k for k in ["runtime", "timeout", "memory", "input", "skipped", "step"] if k in seen))' \
    "$TMP/r1.jsonl" "$TMP/r2.jsonl" "$TMP/r3.jsonl")"
$CHECK "$RECORD" "$TMP/r1.jsonl" "$TMP/r2.jsonl" "$TMP/r3.jsonl" >"$TMP/r.err"
check "every record they wrote is a valid record" "" "$(head -5 "$TMP/r.err")"

# Every form of the records says the same (record.c writes them from one set of values):
# JSON lines, CSV, JUnit and the store, with the time measured and with --no-timing.
for timing in "" --no-timing; do
    rm -f "$TMP/forms.db"
    "$ASSAY" run $timing -j 2 --timeout-ms 200 --memory-mb 16 --db "$TMP/forms.db" -e "$TMP/ev" -e plugins \
        --csv "$TMP/forms.csv" --junit "$TMP/forms.xml" --junit-per-trace "$TMP/kinds.jsonl" examples/traces/*.jsonl \
        -o "$TMP/forms.jsonl" 2>/dev/null
    python3 tests/e2e/forms_agree.py "$TMP/forms.jsonl" "$TMP/forms.csv" "$TMP/forms.xml" "$TMP/forms.db" >"$TMP/agree"
    check "JSON lines, CSV, JUnit and the store agree ${timing:-with timing}" \
        "$(wc -l <"$TMP/forms.jsonl") records checked" "$(cat "$TMP/agree")"
done

# the checker and the schemas refuse what docs/format.md forbids
printf '%s\n' '{"id":1}' '{"input":"no id"}' '{"id":"x","steps":[{"query":"no type"}]}' >"$TMP/badt.jsonl"
$CHECK "$TRACE" "$TMP/badt.jsonl" >"$TMP/badt.err"
check "a numeric id, a missing id and a step without type are refused" 3 "$(wc -l <"$TMP/badt.err")"
printf '%s\n' '{"trace_id":"a","evaluator":"x","step":null,"score":1.5,"pass":null,"label":null,"details":null,"error":null,"ms":null}' \
    '{"trace_id":"a","evaluator":"x","step":null,"score":null,"pass":null,"label":null,"details":null,"error":{"kind":"oops","message":"m"},"ms":null}' \
    '{"trace_id":"a","evaluator":"x","step":null,"score":null,"pass":null,"label":null,"details":null,"error":null}' \
    '{"trace_id":null,"evaluator":null,"line":0,"error":{"kind":"input","message":"m"}}' >"$TMP/badr.jsonl"
$CHECK "$RECORD" "$TMP/badr.jsonl" >"$TMP/badr.err"
check "a score past 1, an unknown error kind, a missing ms and line 0 are refused" 4 "$(wc -l <"$TMP/badr.err")"
done_testing
