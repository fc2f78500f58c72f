# valgrind over the CLI's main paths: no leaks, no memory errors. Runs on the plain build
# only (valgrind and ASan do not mix).
. "$(dirname "$0")/lib.sh"
case "${ASSAY_BUILD:-build}" in *asan*) echo "1..0 # SKIP valgrind runs on the plain build"; exit 0 ;; esac
VG="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99"
head -40 examples/traces/deep-research.jsonl >"$TMP/in.jsonl"
printf 'not json\n{"id":5}\n' >>"$TMP/in.jsonl"
mkdir -p "$TMP/ev"
printf 'return { evaluate = function(t) if t.id == "dr-00001" then while true do end end\n  if t.id == "dr-00002" then local s = {} for i = 1, 1e9 do s[i] = ("x"):rep(1 << 16) end end\n  if t.id == "dr-00003" then error("x") end return 1 end }\n' >"$TMP/ev/limits.lua"
$VG "$ASSAY" run -j 2 "$TMP/in.jsonl" -o "$TMP/out.jsonl" 2>"$TMP/vg1"
check "run (bad lines, two workers): clean under valgrind" 3 $?
$VG "$ASSAY" run -j 2 --timeout-ms 300 --memory-mb 16 -e "$TMP/ev/limits.lua" "$TMP/in.jsonl" -o /dev/null 2>"$TMP/vg2"
check "run with timeout, memory and runtime kills: clean under valgrind" 3 $?
# LLM requests refused for a bad field, caught and asked again: the refusals leak nothing
# (each field is checked before the request body is built; no server is needed)
cat >"$TMP/ev/bad_requests.lua" <<'EOF'
local big = ("x"):rep(50000)
local bad = { { temperature = "hot" }, { max_tokens = -1 }, { response_format = 5 }, { model = 5 },
              { endpoint = {} }, { endpoint = "nosuch" } }
return { evaluate = function(t)
  local refused = 0
  for i = 1, 60 do
    local req = { messages = { { role = "user", content = big } } }
    for k, v in pairs(bad[i % #bad + 1]) do req[k] = v end
    if not pcall(assay.llm.chat, req) then refused = refused + 1 end
    if not pcall(assay.llm.embed, { input = big, model = 5 }) then refused = refused + 1 end
  end
  return refused == 120 and 1 or 0
end }
EOF
head -2 "$TMP/in.jsonl" | $VG "$ASSAY" run --no-db --no-cache --llm-url http://127.0.0.1:9/v1 --llm-model m -e "$TMP/ev/bad_requests.lua" \
    >"$TMP/bad_requests.out" 2>"$TMP/vg2b"
check "LLM requests refused and retried 120 times: clean under valgrind, every one refused" "0 2" \
    "$? $(grep -c '"score":1' "$TMP/bad_requests.out")"
$VG "$ASSAY" list >/dev/null 2>"$TMP/vg3"; check "list: clean under valgrind" 0 $?
$VG "$ASSAY" check plugins/expect.lua >/dev/null 2>"$TMP/vg4"; check "check: clean under valgrind" 0 $?
$VG "$ASSAY" test plugins/expect.lua --cases tests/plugins/expect.jsonl >/dev/null 2>"$TMP/vg5"
check "test: clean under valgrind" 0 $?
$VG "$ASSAY" run -e /no/such.lua "$TMP/in.jsonl" >/dev/null 2>"$TMP/vg6"; check "configuration error path: clean under valgrind" 2 $?
# import: OTLP lines, an .eval zip, standard input, bad lines; lint
head -c 20000 examples/imports/research.otlp.jsonl >"$TMP/cut.otlp"; printf '\nnot json\n' >>"$TMP/cut.otlp"
$VG "$ASSAY" import -j 2 examples/imports/research.otlp.jsonl "$TMP/cut.otlp" -o /dev/null 2>"$TMP/vg8"
check "import (OTLP, a cut line, a bad line): clean under valgrind" 3 $?
$VG "$ASSAY" import tests/importers/fixtures/inspect/log_formats.eval -o /dev/null 2>"$TMP/vg9"
check "import of an .eval zip: clean under valgrind" 0 $?
$VG "$ASSAY" import - <examples/imports/research.chat.jsonl >/dev/null 2>"$TMP/vg10"
check "import from standard input: clean under valgrind" 0 $?
$VG "$ASSAY" lint "$TMP/in.jsonl" >/dev/null 2>"$TMP/vg11"; check "lint: clean under valgrind" 3 $?
# calibrate over the store of a run, per segment and as JSON
printf '%s\n' '{"id":"a","metadata":{"ok":true,"g":"x"}}' '{"id":"b","metadata":{"ok":false,"g":"y"}}' '{"id":"c","metadata":{"ok":true,"g":"y"}}' >"$TMP/cal.jsonl"
"$ASSAY" run --db "$TMP/cal.db" "$TMP/cal.jsonl" -o /dev/null 2>/dev/null
$VG "$ASSAY" calibrate --db "$TMP/cal.db" --label metadata.ok --group-by g >/dev/null 2>"$TMP/vg12"
check "calibrate: clean under valgrind" 0 $?
$VG "$ASSAY" calibrate --db "$TMP/cal.db" --label metadata.ok --json >/dev/null 2>"$TMP/vg13"
check "calibrate --json: clean under valgrind" 0 $?
# the LLM path: a judge against the loopback test server, with a retried fault and the cache
python3 tests/llm_server.py serve >"$TMP/port" 2>/dev/null &
server=$!
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(awk '{print $2}' "$TMP/port")
python3 tests/llm_server.py ctl "$PORT" /admin/faults '{"script": ["503", "reset"]}' >/dev/null
head -6 examples/traces/deep-research.jsonl >"$TMP/six.jsonl"
$VG "$ASSAY" run -j 2 -e plugins/llm --llm-url "http://127.0.0.1:$PORT/v1" --llm-model m --retry-base-ms 1 \
    --cache "$TMP/cache.db" "$TMP/six.jsonl" -o /dev/null 2>"$TMP/vg7"
check "run with LLM plugins, retries and the cache: clean under valgrind" 0 $?
kill $server
# a run killed after its first checkpoint, resumed under valgrind
printf 'return { name = "slow", evaluate = function(t) local c = os.clock() while os.clock() - c < 0.02 do end return 1 end }\n' >"$TMP/ev2.lua"
"$ASSAY" run -j 1 --no-timing -e "$TMP/ev2.lua" examples/traces/deep-research.jsonl -o "$TMP/r.jsonl" 2>/dev/null &
pid=$!
for _ in $(seq 100); do grep -q '^C' "$TMP/r.jsonl.progress" 2>/dev/null && break; sleep 0.05; done
kill -9 $pid; wait $pid 2>/dev/null
$VG "$ASSAY" run -j 1 --no-timing --resume -e "$TMP/ev2.lua" examples/traces/deep-research.jsonl -o "$TMP/r.jsonl" 2>"$TMP/vg8"
check "run --resume after a kill: clean under valgrind" 0 $?
check "and every trace has its record" 60 "$(wc -l <"$TMP/r.jsonl")"
# the run store and what reads it
DB=$TMP/store.db
$VG "$ASSAY" run --db "$DB" --label one -j 2 --sample 0.5 --seed 3 --junit "$TMP/j.xml" --csv "$TMP/c.csv" \
    --group-by segment --gate 'relevance.mean>=0 segment=*' --gate 'relevance.mean>=0 segment=nosuch' \
    "$TMP/in.jsonl" -o /dev/null 2>"$TMP/vg9"
check "run into the store with --sample, --junit per segment, a failing gate, --csv: clean under valgrind" 1 $?
"$ASSAY" run --db "$DB" --label two "$TMP/in.jsonl" -o /dev/null 2>/dev/null
$VG "$ASSAY" runs --db "$DB" >/dev/null 2>"$TMP/vg10"; check "runs: clean under valgrind" 0 $?
$VG "$ASSAY" compare --db "$DB" one two --group-by segment >/dev/null 2>"$TMP/vg11"
check "compare --group-by: clean under valgrind" 0 $?
$VG "$ASSAY" report --db "$DB" -o "$TMP/r.html" 2>"$TMP/vg12"; check "report: clean under valgrind" 0 $?
$VG "$ASSAY" report --db "$DB" one two --group-by segment -o "$TMP/ab.html" 2>"$TMP/vg12b"
check "report A B: clean under valgrind" 0 $?
printf 'return { name = "dice", evaluate = function(t) if t.id == "x" then error("no") end return { score = math.random(), pass = math.random() < 0.5, details = { z = 1 } } end }\n' \
    >"$TMP/dice.lua"
$VG "$ASSAY" run --no-db -e "$TMP/dice.lua" -p dice.repeats=3 "$TMP/in.jsonl" -o /dev/null 2>"$TMP/vg12c"
check "repeats, combined records and their agreement: clean under valgrind" 3 $?
for s in a b c; do
    python3 -c 'import json, sys
for i in range(8): print(json.dumps({"id": "t%d" % i, "output": sys.argv[1], "metadata": {"rating": (i * ord(sys.argv[1][0])) % 5, "seg": "s%d" % (i % 2)}}))' \
        "$s$s" >"$TMP/pw_$s.jsonl"
done
printf 'not json\n' >>"$TMP/pw_a.jsonl"
$VG "$ASSAY" pairwise "$TMP/pw_a.jsonl" "$TMP/pw_b.jsonl" "$TMP/pw_c.jsonl" -e plugins/pairwise/by_field.lua --group-by seg \
    --db "$TMP/pw.db" >/dev/null 2>"$TMP/vg12d"
check "pairwise of three systems into the store: clean under valgrind" 0 $?
# more traces than the store keeps bodies of: worse ones evict kept ones; and a plugin that
# touches a table of an earlier trace (the lazy view's error path)
python3 -c 'import json
for i in range(150):
    print(json.dumps({"id": "w%03d" % i, "metadata": {"a": (37 * i % 150) / 150}}))' >"$TMP/worst.jsonl"
$VG "$ASSAY" run --db "$DB" -e tests/store/fixed.lua "$TMP/worst.jsonl" -o /dev/null 2>"$TMP/vg14"
check "run that evicts kept bodies from the store: clean under valgrind" 0 $?
cp "$DB" "$TMP/v2.db"
python3 tests/store/downgrade.py "$TMP/v2.db" 2
$VG "$ASSAY" runs --db "$TMP/v2.db" >/dev/null 2>"$TMP/vg16"
check "runs on a schema-2 store, which upgrades it: clean under valgrind" 0 $?
printf '{"id":"s1","steps":[{"type":"search"}],"metadata":{"n":7}}\n{"id":"s2"}\n' >"$TMP/stale.jsonl"
$VG "$ASSAY" run --no-db -j 1 -e tests/sandbox/stale/keeps_trace_table.lua "$TMP/stale.jsonl" -o /dev/null 2>"$TMP/vg15"
check "a table of an earlier trace touched later: clean under valgrind" 0 $?
cp "$TMP/in.jsonl" "$TMP/live.jsonl"
$VG "$ASSAY" run --db "$DB" --follow "$TMP/live.jsonl" -o /dev/null 2>"$TMP/vg13" &
pid=$!
sleep 3
head -3 examples/traces/deep-research.jsonl >>"$TMP/live.jsonl"
sleep 2
kill -INT $pid
wait $pid
check "run --follow, ended by SIGINT: clean under valgrind (exit 3: the bad lines)" 3 $?
done_testing
