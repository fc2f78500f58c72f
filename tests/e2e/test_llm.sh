# assay.http / assay.llm end to end, against tests/llm_server.py on loopback (started and
# stopped here): the shipped LLM plugins' cases, retries, faults, caps, the cache, the key.
. "$(dirname "$0")/lib.sh"
SERVER="python3 tests/llm_server.py"

python3 tests/llm_server.py serve >"$TMP/port" 2>"$TMP/server.err" &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; rm -rf "$TMP"' EXIT
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(awk '{print $2}' "$TMP/port")
URL="http://127.0.0.1:$PORT/v1"
faults() { $SERVER ctl "$PORT" /admin/faults "$1" >/dev/null; }
reset() { $SERVER ctl "$PORT" /admin/reset x >/dev/null; }
stat() { $SERVER ctl "$PORT" /admin/stats | python3 -c "import json,sys; s=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
LLM="--llm-url $URL --llm-model test-model --retry-base-ms 1"
# Records without details.usage, which depends on what the cache and coalescing answered.
strip_usage() { python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if isinstance(r.get("details"), dict): r["details"].pop("usage", None)
    print(json.dumps(r, sort_keys=True))' "$1"; }
count() { grep -c "$2" "$1" || true; }

check "the test server started" "yes" "$([ -n "$PORT" ] && echo yes)"

# -- responses count against the plugin's memory: 24 bodies of 2 MB in one request_all under a
# 16 MiB limit fail with an http error instead of buffering 48 MB in the host
mkdir -p "$TMP/big"
cat >"$TMP/big/big_bodies.lua" <<EOF
return { name = "big_bodies", evaluate = function(t)
  local list = {}
  for i = 1, tonumber(t.n) do list[i] = { url = "http://127.0.0.1:$PORT/big/" .. t.size, cache = false } end
  local answers = assay.http.request_all(list)
  local total = 0
  for _, a in ipairs(answers) do total = total + #a.body end
  return { score = 1, details = { bytes = total } }
end }
EOF
printf '%s\n' '{"id":"many","n":24,"size":2000000}' '{"id":"few","n":3,"size":2000000}' >"$TMP/big.jsonl"
run_measured "$TMP/big.jsonl.out" "$ASSAY" run --no-db --no-timing -j 1 --memory-mb 16 -e "$TMP/big/big_bodies.lua" "$TMP/big.jsonl"
check "responses past the memory limit: exit 3" 3 "$rc"
check_contains "they fail with an http error naming the limit" "$TMP/big.jsonl.out" 'larger than the plugin'"'"'s memory limit (16 MiB)'
check_contains "3 bodies of 2 MB within the limit are read" "$TMP/big.jsonl.out" '"details":{"bytes":6000000'
case "${ASSAY_BUILD:-build}" in
*asan*) ok "peak RSS is measured on the plain build (ASan's shadow memory inflates it)" ;;
*) check "peak RSS stays under 120 MB (got ${rss} MB)" yes "$([ "$rss" -lt 120 ] && echo yes || echo no)" ;;
esac

# I/O from metamethods that Lua code triggers (__index, __close) suspends like I/O from
# evaluate; from a function a C function calls (a sort comparator) it is refused (docs/llm.md)
cat >"$TMP/big/meta_io.lua" <<EOF
return { name = "meta_io", evaluate = function(t)
  local lazy = setmetatable({}, { __index = function(_, k) return assay.http.request{ url = "http://127.0.0.1:$PORT/big/" .. k, cache = false }.body end })
  local closed
  do
    local guard <close> = setmetatable({}, { __close = function() closed = #assay.http.request{ url = "http://127.0.0.1:$PORT/big/3", cache = false }.body end })
  end
  local ok, err = pcall(table.sort, { 2, 1 }, function(a, b) assay.http.request{ url = "http://127.0.0.1:$PORT/big/1" }; return a < b end)
  return { score = 1, details = { index = #lazy[5], close = closed, sort = ok and "ran" or tostring(err):match("cannot be called here.*") } }
end }
EOF
printf '%s\n' '{"id":"m"}' >"$TMP/meta.jsonl"
"$ASSAY" run --no-db --no-timing -e "$TMP/big/meta_io.lua" "$TMP/meta.jsonl" >"$TMP/meta.out" 2>/dev/null
check_contains "I/O from __index and __close works; from a sort comparator it is refused" "$TMP/meta.out" \
    '"details":{"close":3,"index":5,"sort":"cannot be called here (from a function that C calls, such as a sort comparator or a gsub replacement)"'

# -- the shipped plugins' own cases, through `assay test`
for p in llm_judge claim_support_llm semantic_diversity; do
    "$ASSAY" test plugins/llm/$p.lua --cases tests/plugins/llm/$p.jsonl $LLM --no-cache >"$TMP/cases" 2>&1
    check "assay test: every case of $p passes" 0 $?
done

# -- a corpus of judge traces: report j carries the verdict <<reply: {"score": 1 + j % 5}>>
python3 - "$TMP/traces.jsonl" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for j in range(40):
        f.write(json.dumps({"id": "t%02d" % j, "input": "q%d" % j,
                            "output": 'report %d <<reply: {"score": %d, "reason": "r%d"}>>' % (j, 1 + j % 5, j)}) + "\n")
EOF
expected_mean=$(python3 -c "print('%.3f' % (sum((j % 5) / 4 for j in range(40)) / 40))")

reset
faults '{"latency_ms": 5, "jitter_ms": 30, "fail_first": 2, "fail_kind": "503"}'
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache --no-timing -j 2 "$TMP/traces.jsonl" \
    >"$TMP/j2.jsonl" 2>"$TMP/j2.err"
check "two 503s per request, then success: exit 0" 0 $?
check "every trace gets one record" 40 "$(wc -l <"$TMP/j2.jsonl")"
check "no record carries an error" 0 "$(count "$TMP/j2.jsonl" '"error":{')"
check "records come in input order" "$(seq -f 't%02g' 0 39 | tr '\n' ' ')" \
    "$(python3 -c 'import json,sys; print(" ".join(json.loads(l)["trace_id"] for l in open(sys.argv[1])), end=" ")' "$TMP/j2.jsonl")"
check "the mean is the hand-computed one" "40 $expected_mean" "$(awk '$1 == "llm_judge" {print $2, $3}' "$TMP/j2.err")"
check "the server saw 2 failures and 1 success per trace" "80 40" "$(stat 's["faults"]["503"]') $(stat 's["chat"]')"
check_contains "the summary counts the retries" "$TMP/j2.err" "120 sent, 80 retries, 0 failed"

reset
faults '{"latency_ms": 1, "jitter_ms": 40, "fail_first": 1, "fail_kind": "reset"}'
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache --no-timing -j 1 "$TMP/traces.jsonl" \
    >"$TMP/j1.jsonl" 2>"$TMP/j1.err"
check "connections reset once per request: exit 0" 0 $?
check "output is the same with -j 1 and other response timing" "$(strip_usage "$TMP/j2.jsonl")" "$(strip_usage "$TMP/j1.jsonl")"

# -- a trace alone on an idle host is shared among the workers: judges on two workers wait on
#    the network at once, and the records are those of one worker, in plugin order
mkdir -p "$TMP/share"
for name in judge_a judge_b; do
    sed "s/name = \"llm_judge\"/name = \"$name\"/" plugins/llm/llm_judge.lua >"$TMP/share/$name.lua"
done
cp plugins/query_diversity.lua "$TMP/share/"
reset
faults '{"latency_ms": 20, "jitter_ms": 20}'
head -5 "$TMP/traces.jsonl" >"$TMP/five.jsonl"
: >"$TMP/shared.jsonl"
for j in 0 1 2 3 4; do
    sed -n "$((j + 1))p" "$TMP/traces.jsonl" |
        "$ASSAY" run -e "$TMP/share" $LLM --no-cache --no-timing --no-db -j 3 >>"$TMP/shared.jsonl" 2>"$TMP/shared.err"
done
"$ASSAY" run -e "$TMP/share" $LLM --no-cache --no-timing --no-db -j 1 "$TMP/five.jsonl" >"$TMP/alone.jsonl" 2>"$TMP/alone.err"
check "shared traces: 3 records each, no error" "15 0" "$(wc -l <"$TMP/shared.jsonl") $(count "$TMP/shared.jsonl" '"error":{')"
check "shared traces: the records of one worker, in plugin order" "$(strip_usage "$TMP/alone.jsonl")" \
    "$(strip_usage "$TMP/shared.jsonl")"
check "shared traces: records in plugin order" "judge_a judge_b query_diversity" \
    "$(head -3 "$TMP/shared.jsonl" | python3 -c 'import json,sys; print(" ".join(json.loads(l)["evaluator"] for l in sys.stdin))')"

# -- retries stop: a server that always fails
reset
faults '{"always": "500"}'
head -5 "$TMP/traces.jsonl" >"$TMP/five.jsonl"
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache --retries 3 "$TMP/five.jsonl" >"$TMP/f.jsonl" 2>"$TMP/f.err"
check "a run whose calls all fail still ends, with status 3" 3 $?
check "each trace gets an http error record" 5 "$(count "$TMP/f.jsonl" '"kind":"http"')"
check_contains "the error names the URL, status, attempts and the body" "$TMP/f.jsonl" \
    "\"message\":\"http: POST $URL/chat/completions: status 500 after 3 attempts: {\\\"error\\\": {\\\"message\\\": \\\"injected 500\\\"}}\""
check "3 attempts per request, no more" 15 "$(stat 's["requests"]')"

reset
faults '{"always": "malformed"}'
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache --retries 3 "$TMP/five.jsonl" >"$TMP/m.jsonl" 2>"$TMP/m.err"
check "malformed JSON from the server, always: status 3, no crash" 3 $?
check_contains "it is an http error record naming the problem" "$TMP/m.jsonl" \
    '"kind":"http","message":"http: POST /chat/completions: malformed response (the response is not a JSON object)'
check "a 200 whose body is not JSON is retried like a 5xx: 3 attempts per request" 15 "$(stat 's["requests"]')"
reset
faults '{"fail_first": 1, "fail_kind": "malformed"}'
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache "$TMP/five.jsonl" >"$TMP/m2.jsonl" 2>"$TMP/m2.err"
check "one garbage body per request, then good answers: every trace scored, exit 0" "0 0" \
    "$? $(count "$TMP/m2.jsonl" '"kind":"http"')"
check "… each request asked twice" "10 5" "$(stat 's["requests"]') $(stat 's["faults"]["malformed"]')"

reset
faults '{"script": ["truncated", "truncated"]}'
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache -j 1 --max-inflight 1 "$TMP/five.jsonl" >"$TMP/t.jsonl" 2>"$TMP/t.err"
check "truncated bodies are retried: exit 0" 0 $?
check "the server saw both truncations" 2 "$(stat 's["faults"]["truncated"]')"

reset
faults '{"always": "hang"}'
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache --retries 2 --llm-timeout-ms 300 \
    "$TMP/five.jsonl" >"$TMP/h.jsonl" 2>"$TMP/h.err"
check "a server that never answers: the run still ends with status 3" 3 $?
check "every trace has a timeout error" 5 "$(count "$TMP/h.jsonl" 'Timeout was reached after 2 attempts')"

# -- a judge answer without a usable verdict is asked again once, the problem told to the model
reset
python3 -c '
import json
print(json.dumps({"id": "fixed", "input": "q", "output": "r <<reply: looks fine to me>> <<retry-reply: {\"score\": 4, \"reason\": \"ok\"}>>"}))
print(json.dumps({"id": "stubborn", "input": "q", "output": "r <<reply: {\"score\": 9}>>"}))' >"$TMP/parse.jsonl"
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache -j 1 "$TMP/parse.jsonl" >"$TMP/parse.out" 2>/dev/null
check "an unreadable verdict, then a good one: scored from the second (4 -> 0.75), marked asked_again" \
    "0.75 True" "$(python3 -c 'import json, sys
r = json.loads(open(sys.argv[1]).readline()); print(r["score"], r["details"]["asked_again"])' "$TMP/parse.out")"
check_contains "a verdict out of range twice: an error record that says so" "$TMP/parse.out" \
    'the judge gave no verdict with an integer score from 1 to 5 (no integer score from 1 to 5, asked twice: {\"score\": 9})'
check "two requests per trace, no more" 4 "$(stat 's["chat"]')"

# -- repeats: -p EVALUATOR.repeats=K evaluates each trace K times; the record is the mean score,
# the majority pass, details.repeats has each one. The server answers the k-th ask of the
# same prompt with the k-th of <<replies: …>>: judge scores 5 1 4 -> 1 0 0.75 (threshold 0.6).
reset
printf '%s\n' '{"id":"rep","input":"q","output":"r <<replies: {\"score\": 5} | {\"score\": 1} | {\"score\": 4}>>"}' \
    >"$TMP/rep.jsonl"
"$ASSAY" run --no-db -e plugins/llm/llm_judge.lua $LLM --cache "$TMP/rep-cache.db" -p llm_judge.repeats=3 \
    "$TMP/rep.jsonl" >"$TMP/rep.out" 2>"$TMP/rep.err"
check "repeats=3: exit 0" 0 $?
rep() { python3 -c 'import json, sys
r = json.loads(open(sys.argv[1]).readline()); d = r["details"]
print(round(r["score"], 4), r["pass"], json.dumps(d["repeats"], sort_keys=True), d["usage"]["calls"])' "$1"; }
check "the mean of 1, 0, 0.75 and the majority pass (2 of 3), each repeat in details, 3 calls" \
    '0.5833 True {"errors": 0, "n": 3, "passes": [true, false, true], "scores": [1, 0, 0.75]} 3' "$(rep "$TMP/rep.out")"
check "three requests reached the server" 3 "$(stat 's["chat"]')"
"$ASSAY" run --no-db -e plugins/llm/llm_judge.lua $LLM --cache "$TMP/rep-cache.db" -p llm_judge.repeats=3 \
    "$TMP/rep.jsonl" >"$TMP/rep2.out" 2>/dev/null
check "again with the cache: each repeat's own answer comes back from it, none from the server" \
    '0.5833 True {"errors": 0, "n": 3, "passes": [true, false, true], "scores": [1, 0, 0.75]} 3 3' \
    "$(rep "$TMP/rep2.out") $(stat 's["chat"]')"
"$ASSAY" run --no-db -e plugins/llm/llm_judge.lua $LLM --cache "$TMP/rep-cache.db" "$TMP/rep.jsonl" >"$TMP/rep1.out" 2>/dev/null
check "without repeats, the first repeat's cached answer is the one (its key is the one it always had)" "1 3" \
    "$(python3 -c 'import json, sys; print(json.loads(open(sys.argv[1]).readline())["score"])' "$TMP/rep1.out") $(stat 's["chat"]')"
printf 'return { name = "dice", evaluate = function(t) return math.random() end }\n' >"$TMP/dice.lua"
"$ASSAY" run --no-db --no-timing -e "$TMP/dice.lua" "$TMP/rep.jsonl" >"$TMP/dice1.out" 2>/dev/null
"$ASSAY" run --no-db --no-timing -e "$TMP/dice.lua" -p dice.repeats=4 "$TMP/rep.jsonl" >"$TMP/dice4.out" 2>/dev/null
check "any plugin takes repeats; math.random draws anew each time, the first as without repeats" "True 4" \
    "$(python3 -c 'import json, sys
one = json.loads(open(sys.argv[1]).readline()); four = json.loads(open(sys.argv[2]).readline())
s = four["details"]["repeats"]["scores"]
print(s[0] == one["score"] and abs(four["score"] - sum(s) / 4) < 1e-12, len(set(s)))' "$TMP/dice1.out" "$TMP/dice4.out")"
"$ASSAY" run --no-db -e "$TMP/dice.lua" -p dice.repeats=0 "$TMP/rep.jsonl" >/dev/null 2>"$TMP/dice0.err"
check "repeats=0: exit 2, named" "2 yes" "$? $(grep -q 'param dice.repeats: an integer from 1 to 20' "$TMP/dice0.err" && echo yes || echo no)"
# -- a trace's random numbers do not depend on what ran while it waited: evaluations suspended
# on I/O share their state's generator. With answers arriving in a jittered order, the draws
# after a request are the ones a plugin without I/O makes for the same trace (its second draw).
cat >"$TMP/dice_io.lua" <<EOF
return { name = "dice_io", evaluate = function(t)
  local a = math.random(1, 1000000)
  assay.http.request{ url = "http://127.0.0.1:$PORT/big/1", cache = false }
  return { score = 1, details = { a = a, b = math.random(1, 1000000) } }
end }
EOF
printf 'return { name = "dice_plain", evaluate = function(t) local a = math.random(1, 1000000) return { score = 1, details = { a = a, b = math.random(1, 1000000) } } end }\n' \
    >"$TMP/dice_plain.lua"
for i in $(seq 40); do echo "{\"id\":\"r$i\"}"; done >"$TMP/dice40.jsonl"
faults '{"jitter_ms": 30}'
"$ASSAY" run --no-db --no-timing -j 1 -e "$TMP/dice_io.lua" -e "$TMP/dice_plain.lua" "$TMP/dice40.jsonl" >"$TMP/dio.out" 2>/dev/null
reset
check "draws after an I/O wait are the trace's own, whatever ran meanwhile (40 traces, jittered answers)" "40 0" \
    "$(python3 -c 'import json, sys
d = {}
for line in open(sys.argv[1]):
    r = json.loads(line); x = r["details"]; d.setdefault(r["trace_id"], {})[r["evaluator"]] = (x["a"], x["b"])
print(len(d), sum(v["dice_io"] != v["dice_plain"] for v in d.values()))' "$TMP/dio.out")"
# -- evaluations waiting on I/O share their state's memory: while they hold over half of it,
# no new trace starts in that state, so none is killed for memory the others hold. Each holds
# 3 MB across its wait under a 32 MiB limit: about five at a time, none killed (3 of 40 were).
cat >"$TMP/hold.lua" <<EOF
return { name = "hold", evaluate = function(t)
  local held = string.rep("x", 3000000)
  assay.http.request{ url = "http://127.0.0.1:$PORT/big/1", cache = false }
  return #held == 3000000
end }
EOF
for i in $(seq 40); do echo "{\"id\":\"h$i\"}"; done >"$TMP/hold.jsonl"
faults '{"latency_ms": 100}'
"$ASSAY" run --no-db --no-timing -j 1 --memory-mb 32 -e "$TMP/hold.lua" "$TMP/hold.jsonl" >"$TMP/hold.out" 2>"$TMP/hold.err"
rc=$?
reset
check "waiting evaluations holding memory: every trace passed, none killed" "0 40 0" \
    "$rc $(count "$TMP/hold.out" '"pass":true') $(count "$TMP/hold.out" '"kind":"memory"')"
peak=$(sed -n 's/.*in flight peak \([0-9]*\).*/\1/p' "$TMP/hold.err")
check "no more in flight than fit in half the limit (peak $peak)" yes "$([ "${peak:-99}" -le 6 ] && echo yes || echo no)"
printf 'return { name = "flaky", evaluate = function(t) if math.random() < 0.5 then error("no") end return 1 end }\n' \
    >"$TMP/flaky.lua"
printf 'return { name = "broken", evaluate = function(t) error("never") end }\n' >"$TMP/broken.lua"
"$ASSAY" run --no-db --no-timing -e "$TMP/flaky.lua" -e "$TMP/broken.lua" -p flaky.repeats=8 -p broken.repeats=3 \
    "$TMP/rep.jsonl" >"$TMP/fl.out" 2>/dev/null
check "some repeats failing: the record is of those that did not, the failures counted; all failing: an error" \
    "True 1 runtime" "$(python3 -c 'import json, sys
a, b = [json.loads(l) for l in open(sys.argv[1])]
r = a["details"]["repeats"]
print(0 < r["errors"] < 8 and r["scores"].count(None) == r["errors"], a["score"], b["error"]["kind"])' "$TMP/fl.out")"

# -- self-agreement over repeats: A 5 4 5 -> 1 .75 1; B 1 2 1 -> 0 .25 0; C 4 2 4 -> .75 .25 .75
# Krippendorff's alpha (interval): within-trace differences, per trace (2 m sum v^2 - 2 (sum v)^2)
# / (m - 1): A 0.125, B 0.125, C 0.5, D_o = 0.75 / 9; all nine: 2 x 9 x 3.8125 - 2 x 4.75^2 =
# 23.5, D_e = 23.5 / 72; alpha = 1 - (0.75 / 9) / (23.5 / 72) = 0.7447. Pass (>= 0.6) flips on C.
reset
python3 -c '
import json
for name, s in (("A", (5, 4, 5)), ("B", (1, 2, 1)), ("C", (4, 2, 4))):
    print(json.dumps({"id": name, "input": "q", "output": "r%s <<replies: %s>>" % (name, " | ".join("{\"score\": %d}" % x for x in s)),
                      "metadata": {"ok": name != "B"}}))' >"$TMP/agree.jsonl"
"$ASSAY" run --db "$TMP/agree.db" -e plugins/llm/llm_judge.lua $LLM --no-cache -p llm_judge.repeats=3 \
    "$TMP/agree.jsonl" >/dev/null 2>"$TMP/agree.err"
check_contains "the run summary: alpha over the repeats and the flips" "$TMP/agree.err" \
    "llm_judge over its repeats: Krippendorff's alpha 0.745 over 3 traces; pass flipped on 1 of 3"
"$ASSAY" calibrate --db "$TMP/agree.db" --label metadata.ok --json >"$TMP/agree.json"
check "calibrate --json: self_agreement, alpha by hand (0.7447), and by pairs in Python; flip rate 1/3" \
    "0.7447 0.7447 0.3333" "$(python3 -c 'import json, sys, itertools
d = json.load(open(sys.argv[1]))["self_agreement"][0]
units = [(1, .75, 1), (0, .25, 0), (.75, .25, .75)]
n = sum(len(u) for u in units); values = [v for u in units for v in u]
do = sum(sum((a - b) ** 2 for a, b in itertools.permutations(u, 2)) / (len(u) - 1) for u in units) / n
de = sum((a - b) ** 2 for a, b in itertools.permutations(values, 2)) / (n * (n - 1))
print(round(d["alpha"], 4), round(1 - do / de, 4), round(d["flip_rate"], 4))' "$TMP/agree.json")"
"$ASSAY" calibrate --db "$TMP/agree.db" --label metadata.ok >"$TMP/agree.txt"
check_contains "… and in its table" "$TMP/agree.txt" \
    "llm_judge over its repeats (3 traces): Krippendorff's alpha 0.745, pass flipped on 33.3% of traces"

# -- a panel: -p llm_judge.models=m1,m2,m3 asks each model; the same scores as above, now from
# three judges: the mean, the majority pass, and the inter-judge alpha 0.7447 with C split
reset
python3 -c '
import json
for name, s in (("A", (5, 4, 5)), ("B", (1, 2, 1)), ("C", (4, 2, 4))):
    answers = " ;; ".join("m%d => {\"score\": %d}" % (i + 1, x) for i, x in enumerate(s))
    print(json.dumps({"id": name, "input": "q", "output": "r%s <<by-model: %s>>" % (name, answers), "metadata": {"ok": name != "B"}}))
print(json.dumps({"id": "D", "input": "q", "output": "rD <<by-model: m1 => {\"score\": 5} ;; m2 => no idea ;; m3 => {\"score\": 3}>>"}))' \
    >"$TMP/panel.jsonl"
"$ASSAY" run --db "$TMP/panel.db" -e plugins/llm/llm_judge.lua $LLM --no-cache -p llm_judge.models=m1,m2,m3 \
    "$TMP/panel.jsonl" >"$TMP/panel.out" 2>"$TMP/panel.err"
check "a panel of three judges: C's mean (0.75 + 0.25 + 0.75) / 3 and majority pass, each judge in details" \
    '0.5833 True {"errors": 0, "models": ["m1", "m2", "m3"], "passes": [true, false, true], "scores": [0.75, 0.25, 0.75]} 3' \
    "$(python3 -c 'import json, sys
r = [json.loads(l) for l in open(sys.argv[1])][2]; d = r["details"]
print(round(r["score"], 4), r["pass"], json.dumps(d["panel"], sort_keys=True), d["usage"]["calls"])' "$TMP/panel.out")"
check "a judge without a verdict (asked twice) is left out: D is the mean of 1 and 0.5, one error" "0.75 1" \
    "$(python3 -c 'import json, sys
r = [json.loads(l) for l in open(sys.argv[1])][3]; print(r["score"], r["details"]["panel"]["errors"])' "$TMP/panel.out")"
# with D's two judges (1, 0.5): within 0.125 + 0.125 + 0.5 + 0.5 over n = 11, all eleven:
# 2 x 11 x 5.0625 - 2 x 6.25^2 = 33.25 over 110: alpha = 1 - (1.25 / 11) / (33.25 / 110) = 0.624
check_contains "the run summary: the judges' agreement (D's two judges count too), C and D split" "$TMP/panel.err" \
    "llm_judge across its panel: Krippendorff's alpha 0.624 over 4 traces; pass split on 2 of 4"
"$ASSAY" calibrate --db "$TMP/panel.db" --label metadata.ok --json >"$TMP/panel.json"
check "calibrate: panel_agreement over every judged trace (D too), split on C and D" "4 0.5" \
    "$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))["panel_agreement"][0]; print(d["units"], round(d["flip_rate"], 4))' "$TMP/panel.json")"

# -- a panel across two endpoints: m2 is asked at a second server (--llm-endpoint second=URL,
# its own key from ASSAY_LLM_KEY_SECOND), as "m2"; the records are the one-endpoint panel's
python3 tests/llm_server.py serve >"$TMP/port2" 2>"$TMP/server2.err" &
server2_pid=$!
for _ in $(seq 50); do [ -s "$TMP/port2" ] && break; sleep 0.1; done
PORT2=$(awk '{print $2}' "$TMP/port2")
reset
ASSAY_API_KEY=sk-main ASSAY_LLM_KEY_SECOND=sk-second "$ASSAY" run --no-db -e plugins/llm/llm_judge.lua $LLM --no-cache \
    --llm-endpoint "second=http://127.0.0.1:$PORT2/v1/" -p llm_judge.models=m1,m2@second,m3 "$TMP/panel.jsonl" \
    >"$TMP/panel2.out" 2>"$TMP/panel2.err"
check "a panel across two endpoints: the same scores and passes as on one" \
    "$(python3 -c 'import json, sys
for l in open(sys.argv[1]): r = json.loads(l); print(r["score"], r["pass"], r["details"]["panel"]["scores"])' "$TMP/panel.out")" \
    "$(python3 -c 'import json, sys
for l in open(sys.argv[1]): r = json.loads(l); print(r["score"], r["pass"], r["details"]["panel"]["scores"])' "$TMP/panel2.out")"
check "each judge named as asked in details.panel.models" '["m1", "m2@second", "m3"]' \
    "$(head -1 "$TMP/panel2.out" | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["details"]["panel"]["models"]))')"
check "the first server answered m1 and m3 (8 calls) with its key only" "(8, ['Bearer sk-main'])" \
    "$(stat 's["chat"], s["auth"]')"
check "the second answered m2 (4 calls, D asked again: 5) with its own key only" "5 ['Bearer sk-second']" \
    "$($SERVER ctl "$PORT2" /admin/stats | python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["chat"], s["auth"])')"
printf 'return { evaluators = { "%s/plugins/llm/llm_judge.lua" }, params = { llm_judge = { models = "m1,m2@second,m3" } },\n  llm = { url = "%s", model = "test-model", cache = "", endpoints = { second = "http://127.0.0.1:%s/v1" } } }\n' \
    "$PWD" "$URL" "$PORT2" >"$TMP/suite.lua"
$SERVER ctl "$PORT2" /admin/reset x >/dev/null
"$ASSAY" run --no-db --no-cache -c "$TMP/suite.lua" "$TMP/panel.jsonl" >"$TMP/panel3.out" 2>"$TMP/panel3.err"
check "a suite file names the endpoints too (llm.endpoints): the second server asked again, the same scores" \
    "5 $(cut -c1-60 "$TMP/panel2.out" | md5sum)" \
    "$($SERVER ctl "$PORT2" /admin/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["chat"])') $(cut -c1-60 "$TMP/panel3.out" | md5sum)"
kill $server2_pid 2>/dev/null
cat >"$TMP/endpoint.lua" <<'EOF'
return { evaluate = function(trace)
  local r = assay.llm.chat{ messages = { { role = "user", content = "hi" } }, endpoint = trace.input }
  return { score = 1 }
end }
EOF
echo '{"id":"e1","input":"nosuch"}' | "$ASSAY" run --no-db -e "$TMP/endpoint.lua" $LLM --no-cache >"$TMP/endpoint.out" 2>/dev/null
check_contains "endpoint = an unknown name: an error record that says so" "$TMP/endpoint.out" \
    "field 'endpoint' names no endpoint configured for this run (--llm-endpoint NAME=URL)"
"$ASSAY" run --no-db -e plugins/llm/llm_judge.lua $LLM --llm-endpoint nourl "$TMP/panel.jsonl" >/dev/null 2>"$TMP/ep.err"
check "--llm-endpoint without NAME=URL: exit 2, said" "2 yes" "$? $(grep -q "'nourl' is not NAME=URL" "$TMP/ep.err" && echo yes || echo no)"
"$ASSAY" run --no-db -e plugins/llm/llm_judge.lua --llm-endpoint "x=http://127.0.0.1:1/v1" "$TMP/panel.jsonl" >/dev/null 2>"$TMP/ep.err"
check "--llm-endpoint without --llm-url: exit 2, said" "2 yes" "$? $(grep -q 'needs --llm-url as well' "$TMP/ep.err" && echo yes || echo no)"

# -- Retry-After is honoured
reset
faults '{"script": ["429:1"]}'
head -1 "$TMP/traces.jsonl" >"$TMP/one.jsonl"
start=$(date +%s.%N)
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache "$TMP/one.jsonl" >"$TMP/r.jsonl" 2>"$TMP/r.err"
rc=$?
waited=$(python3 -c "import sys,time; print(time.time() - float(sys.argv[1]) >= 1.0)" "$start")
check "429 with Retry-After: 1, then success" "0 True" "$rc $waited"

# -- what the calls cost: -p llm.price_in / llm.price_out, per million tokens
reset
"$ASSAY" run --db "$TMP/cost.db" --label priced -e plugins/llm/llm_judge.lua $LLM --no-cache \
    -p llm.price_in=2 -p llm.price_out=10 "$TMP/five.jsonl" >"$TMP/cost.jsonl" 2>"$TMP/cost.err"
check "a priced run: exit 0" 0 $?
usage_sums=$(python3 -c 'import json, sys
ok, tin, tout, cost = 0, 0, 0, 0.0
for line in open(sys.argv[1]):
    u = json.loads(line)["details"]["usage"]
    ok += abs(u["cost"] - (u["tokens_in"] * 2 + u["tokens_out"] * 10) / 1e6) < 1e-15 and u["tokens_in"] > 0
    tin += u["tokens_in"]; tout += u["tokens_out"]; cost += u["cost"]
print(ok, tin, tout, "%.4f" % cost)' "$TMP/cost.jsonl")
check "each record's details.usage.cost is its tokens at the prices (in x 2 + out x 10) / 1e6" 5 "${usage_sums%% *}"
set -- $usage_sums
check_contains "the network line: the run's tokens and cost" "$TMP/cost.err" "tokens $2 in / $3 out, cost $4;"
"$ASSAY" runs --db "$TMP/cost.db" 1 >"$TMP/cost_runs.txt"
check_contains "assay runs: the run's tokens and cost, the sums of its records'" "$TMP/cost_runs.txt" \
    "  LLM tokens: $2 in, $3 out, cost $4"
"$ASSAY" report --db "$TMP/cost.db" -o "$TMP/cost.html" 2>/dev/null
check "the report's data: the evaluator's tokens and cost" "$2 $3 $4" "$(python3 -c 'import json, re, sys
page = open(sys.argv[1]).read()
data = json.loads(re.search(r"<script type=\"application/json\" id=\"data\">(.*?)</script>", page, re.S).group(1))
e = data["evaluators"][0]; print(e["tokens_in"], e["tokens_out"], "%.4f" % e["cost"])' "$TMP/cost.html")"
cp "$TMP/cost.db" "$TMP/cost4.db"
python3 tests/store/downgrade.py "$TMP/cost4.db" 4
"$ASSAY" runs --db "$TMP/cost4.db" 1 >"$TMP/cost4_runs.txt" 2>&1
check "a schema-4 store gets the tokens and cost of its finished runs from their records" "" \
    "$(diff "$TMP/cost_runs.txt" "$TMP/cost4_runs.txt")"
"$ASSAY" run --no-db -e plugins/llm/llm_judge.lua $LLM --no-cache -p llm.price=2 "$TMP/five.jsonl" >/dev/null 2>"$TMP/cost_bad.err"
check "an unknown llm param: exit 2, naming the ones there are" "2 yes" \
    "$? $(grep -q "the llm params are price_in and price_out" "$TMP/cost_bad.err" && echo yes || echo no)"
"$ASSAY" run --db "$TMP/cost.db" -e plugins/llm/llm_judge.lua $LLM --no-cache "$TMP/five.jsonl" >"$TMP/free.jsonl" 2>/dev/null
check "without a price no cost is written" "0" "$(count "$TMP/free.jsonl" '"cost"')"

# -- adaptive concurrency: 429s halve the in-flight cap
reset
faults '{"latency_ms": 20, "script": ["429:0", "429:0", "429:0", "429:0", "429:0", "429:0", "429:0", "429:0"]}'
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache --max-inflight 32 "$TMP/traces.jsonl" >"$TMP/a.jsonl" 2>"$TMP/a.err"
check "after a burst of 429s the run succeeds" 0 $?
cap=$(sed -n 's/.*cap now \([0-9]*\).*/\1/p' "$TMP/a.err")
check "and the in-flight cap came down from 32 (now $cap)" yes "$([ -n "$cap" ] && [ "$cap" -lt 32 ] && echo yes)"

case "${ASSAY_BUILD:-build}" in
*asan*) echo "# the rate caps' waits are measured with the plain build: they are seconds of waiting, not code" ;;
*)
# -- rate caps hold a run back (lower bounds on wall time: a slow machine only adds to them)
reset
elapsed() { python3 -c "import sys,time; print('%.1f' % (time.time() - float(sys.argv[1])))" "$1"; }
at_least() { python3 -c "import sys; print(float(sys.argv[1]) >= float(sys.argv[2]))" "$1" "$2"; }
head -15 "$TMP/traces.jsonl" >"$TMP/fifteen.jsonl"
start=$(date +%s.%N)
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache --rps 5 "$TMP/fifteen.jsonl" >/dev/null 2>&1
took=$(elapsed "$start")
check "--rps 5: 15 calls, a burst of 5 then 5 a second, take at least 2 s (took $took s)" True "$(at_least "$took" 2)"
# each call bills 42 words of prompt and 40 of answer = 82 tokens; --tpm 3000 is 50 tokens/s
python3 -c 'import json
reply = " ".join(["w"] * 40)
for j in range(40): print(json.dumps({"id": "p%d" % j, "output": "p%d <<reply: %s>>" % (j, reply)}))' >"$TMP/tpm.jsonl"
cat >"$TMP/tpm.lua" <<'EOF2'
return { name = "tpm", evaluate = function(t)
  local a = assay.llm.chat{ messages = { { role = "user", content = t.output } }, max_tokens = 1 }
  return { score = 1, details = { billed = a.usage.input_tokens + a.usage.output_tokens } }
end }
EOF2
start=$(date +%s.%N)
"$ASSAY" run -e "$TMP/tpm.lua" $LLM --no-cache -j 1 --max-inflight 1 --tpm 3000 "$TMP/tpm.jsonl" >"$TMP/tpm.out" 2>&1
took=$(elapsed "$start")
check "the test server bills 82 tokens a call" 40 "$(count "$TMP/tpm.out" '"billed":82')"
# the bucket starts with 3000; call k goes when 3000 - 82 (k - 1) + 50 t covers its estimate
# (~45 tokens), so call 40 waits until t >= 4.9 s
check "--tpm 3000: 40 calls of 82 tokens wait for the bucket, at least 4 s (took $took s)" True "$(at_least "$took" 4)"
;;
esac

# -- spend cap: one judge call costs over 100 tokens (the rubric alone), past the cap of 10
reset
"$ASSAY" run -e plugins/llm/llm_judge.lua --llm-url "$URL" --llm-model m --no-cache -j 1 --max-inflight 1 \
    --max-tokens-total 10 "$TMP/five.jsonl" >"$TMP/s.jsonl" 2>"$TMP/s.err"
check "a spent budget ends the run normally, status 3" 3 $?
check "every trace still gets a record" 5 "$(wc -l <"$TMP/s.jsonl")"
check "calls stop once the budget is used" 1 "$(stat 's["chat"]')"
check "the others fail naming the cap" 4 "$(count "$TMP/s.jsonl" 'spend cap of 10 tokens was reached')"

# -- the cache: a second run sends nothing and scores the same
reset
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --cache "$TMP/cache.db" --no-timing "$TMP/traces.jsonl" >"$TMP/c1.jsonl" 2>"$TMP/c1.err"
first=$(stat 's["requests"]')
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --cache "$TMP/cache.db" --no-timing "$TMP/traces.jsonl" >"$TMP/c2.jsonl" 2>"$TMP/c2.err"
check "the first run asked 40 times, the second not at all" "40 40" "$first $(stat 's["requests"]')"
check "the second run gives the same records" "$(strip_usage "$TMP/c1.jsonl")" "$(strip_usage "$TMP/c2.jsonl")"
check_contains "its records say the answers came from the cache" "$TMP/c2.jsonl" '"usage":{"cache_hits":1,"calls":1,"tokens_in":0,"tokens_out":0}'
check_contains "its summary too" "$TMP/c2.err" "network: 40 requests (40 from the cache"

# -- the default cache lives in .assay/ of the working directory
reset
mkdir -p "$TMP/wd"
(cd "$TMP/wd" && "$ASSAY" run -e "$OLDPWD/plugins/llm/llm_judge.lua" $LLM "$TMP/one.jsonl" >/dev/null 2>&1)
check "with --llm-url and no --cache, answers go to .assay/cache.db" yes "$([ -s "$TMP/wd/.assay/cache.db" ] && echo yes)"

# -- identical concurrent requests are coalesced
reset
python3 -c 'import json
for j in range(20): print(json.dumps({"id": "d%d" % j, "output": "same report <<reply: {\"score\": 3}>>"}))' >"$TMP/dup.jsonl"
faults '{"latency_ms": 100}'
"$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache "$TMP/dup.jsonl" >"$TMP/d.jsonl" 2>"$TMP/d.err"
check "20 identical judge calls in flight reach the server once" "0 1" "$? $(stat 's["chat"]')"

# -- the API key goes to the LLM endpoint only, and nowhere else
reset
KEY="sk-test-DO-NOT-LEAK-1234"
ASSAY_API_KEY=$KEY "$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --cache "$TMP/key.db" "$TMP/five.jsonl" \
    >"$TMP/k.jsonl" 2>"$TMP/k.err"
check "the server received the key as a bearer token" "['Bearer $KEY']" "$(stat 's["auth"]')"
leaks=$(grep -l -a -F "$KEY" "$TMP/k.jsonl" "$TMP/k.err" "$TMP/key.db"* 2>/dev/null | wc -l)
check "the key is in no output, log or cache file" 0 "$leaks"
OPENAI_API_KEY=sk-other "$ASSAY" run -e plugins/llm/llm_judge.lua $LLM --no-cache "$TMP/one.jsonl" >/dev/null 2>&1
check "OPENAI_API_KEY is used when ASSAY_API_KEY is not set" "['Bearer $KEY', 'Bearer sk-other']" "$(stat 's["auth"]')"

# -- assay.http for any endpoint; network errors become http records
cat >"$TMP/http.lua" <<EOF
return { name = "http_probe", evaluate = function(t)
  local r = assay.http.request{ url = "http://127.0.0.1:$PORT/admin/stats", timeout_ms = 2000 }
  local all = assay.http.request_all{ { url = "http://127.0.0.1:$PORT/nowhere", method = "POST", body = { a = 1 } } }
  return { score = 1, details = { status = r.status, type = r.headers["content-type"],
           requests = assay.json.decode(r.body).requests, second = all[1].status } }
end }
EOF
reset
echo '{"id":"h1"}' | "$ASSAY" run -e "$TMP/http.lua" --no-timing >"$TMP/hp.jsonl" 2>"$TMP/hp.err"
check_contains "assay.http.request answers status, headers and body" "$TMP/hp.jsonl" \
    '"details":{"requests":0,"second":404,"status":200,"type":"application/json","usage":{"cache_hits":0,"calls":2'
cat >"$TMP/down.lua" <<'EOF'
return { name = "down", evaluate = function(t)
  return assay.http.request{ url = "http://127.0.0.1:9/", timeout_ms = 500 }.status
end }
EOF
echo '{"id":"h2"}' | "$ASSAY" run -e "$TMP/down.lua" --retries 2 >"$TMP/dn.jsonl" 2>"$TMP/dn.err"
check_contains "a refused connection is an http error after the retries" "$TMP/dn.jsonl" \
    '"error":{"kind":"http","message":"http: GET http://127.0.0.1:9/: Couldn'"'"'t connect to server after 2 attempts"'

# -- I/O where it cannot work is a clear error
cat >"$TMP/nested.lua" <<EOF
return { name = "nested", evaluate = function(t)
  local co = coroutine.wrap(function() return assay.http.request{ url = "http://127.0.0.1:$PORT/" } end)
  return co()
end }
EOF
echo '{"id":"n1"}' | "$ASSAY" run -e "$TMP/nested.lua" >"$TMP/n.jsonl" 2>&1
check_contains "I/O inside a plugin's own coroutine is refused" "$TMP/n.jsonl" \
    'assay.http.request must be called from evaluate itself, not inside coroutine.create/wrap'
# a run of plugins that call assay.llm, without an endpoint: one message at start-up, exit 2
# (before: a run of error records)
echo '{"id":"n3","output":"x"}' | "$ASSAY" run --no-db -e plugins -e plugins/llm >"$TMP/nl.jsonl" 2>"$TMP/nl.err"
check "assay.llm without --llm-url: exit 2 before scoring" "2 0" "$? $(wc -l <"$TMP/nl.jsonl")"
check "one message naming the plugins and the flags" "assay: claim_support_llm, llm_judge, semantic_diversity call assay.llm, but no LLM endpoint is configured: pass --llm-url URL and --llm-model NAME (or set ASSAY_LLM_URL and ASSAY_LLM_MODEL)" "$(cat "$TMP/nl.err")"
echo '{"id":"n3","output":"x"}' | ASSAY_LLM_URL="$URL" ASSAY_LLM_MODEL=m "$ASSAY" run --no-db --no-cache -e plugins/llm/llm_judge.lua >"$TMP/nl2.jsonl" 2>/dev/null
check "the environment's endpoint counts" 0 $?
# a plugin that calls assay.llm from a plugin the CLI could not see (built at run time) still
# gets the library's message on its records
cat >"$TMP/hidden_llm.lua" <<'EOF'
local name = "l" .. "lm"
return { name = "hidden_llm", evaluate = function(t) return assay[name].chat{ messages = { { role = "user", content = "x" } } } end }
EOF
echo '{"id":"n4"}' | "$ASSAY" run --no-db -e "$TMP/hidden_llm.lua" >"$TMP/nl3.jsonl" 2>&1
check_contains "assay.llm reached another way says how to configure it" "$TMP/nl3.jsonl" \
    'assay.llm.chat: no LLM endpoint configured for this run'
check_contains "and the summary says which flags" "$TMP/nl3.jsonl" \
    '(pass --llm-url URL and --llm-model NAME (or set ASSAY_LLM_URL, ASSAY_LLM_MODEL))'

done_testing
