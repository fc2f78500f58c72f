# End-to-end tests of `assay` as a user runs it: exit codes, ordering, bad input, limits.
. "$(dirname "$0")/lib.sh"
EX=examples/traces/deep-research.jsonl
TRACES=$(grep -c . "$EX")

"$ASSAY" --version >"$TMP/v" 2>&1; check "--version exits 0" 0 $?
check_contains "--version names the version" "$TMP/v" "assay 0.1.0"
"$ASSAY" --help >"$TMP/h" 2>&1; check "--help exits 0" 0 $?
check_contains "--help lists the commands" "$TMP/h" "assay check PLUGIN"
"$ASSAY" frobnicate >"$TMP/e" 2>&1; check "unknown command exits 2" 2 $?
"$ASSAY" run --bogus "$EX" >/dev/null 2>&1; check "unknown option exits 2" 2 $?
"$ASSAY" run -j zero "$EX" >/dev/null 2>"$TMP/e"; check "bad --jobs exits 2" 2 $?
check_contains "bad --jobs says why" "$TMP/e" "--jobs: 'zero' is not a number"
"$ASSAY" run /no/such/file.jsonl >/dev/null 2>"$TMP/e"; check "missing input exits 2" 2 $?
check_contains "missing input is named" "$TMP/e" "/no/such/file.jsonl: No such file or directory"
"$ASSAY" run "$TMP" >/dev/null 2>"$TMP/e"; check "directory input exits 2" 2 $?
check_contains "directory input is explained" "$TMP/e" "is a directory"

# the shipped evaluators over the examples
"$ASSAY" run "$EX" -o "$TMP/out.jsonl" 2>"$TMP/summary"; check "example run exits 0" 0 $?
check "five records per trace" $((TRACES * 5)) "$(wc -l < "$TMP/out.jsonl")"
check_contains "summary names each evaluator" "$TMP/summary" "citation_support"
check "every record line is one JSON object with the docs/format.md keys" 0 \
    "$(grep -vc '^{"trace_id":"[^"]*","evaluator":"[a-z_]*","step":null,"score":.*,"pass":.*,"label":.*,"details":.*,"error":null,"ms":[0-9.e-]*}$' "$TMP/out.jsonl")"

# order and bytes independent of thread count
"$ASSAY" run --no-timing -j 1 "$EX" >"$TMP/j1" 2>/dev/null
"$ASSAY" run --no-timing -j 4 "$EX" >"$TMP/j4" 2>/dev/null
if cmp -s "$TMP/j1" "$TMP/j4"; then ok "-j 1 and -j 4 give byte-identical output"; else not_ok "-j 1 and -j 4 give byte-identical output" "$(diff "$TMP/j1" "$TMP/j4" | head -4)"; fi
sed 's/"ms":[0-9.e-]*}$/"ms":null}/' "$TMP/out.jsonl" >"$TMP/stripped"
if cmp -s "$TMP/j1" "$TMP/stripped"; then ok "timed output equals --no-timing output but for ms"; else not_ok "timed output equals --no-timing output but for ms"; fi
"$ASSAY" run --no-timing -j 2 < "$EX" >"$TMP/stdin" 2>/dev/null
if cmp -s "$TMP/j1" "$TMP/stdin"; then ok "reads standard input when no file is given"; else not_ok "reads standard input when no file is given"; fi
cat "$EX" | "$ASSAY" run --no-timing -j 2 - >"$TMP/dash" 2>/dev/null
if cmp -s "$TMP/j1" "$TMP/dash"; then ok "reads standard input from -"; else not_ok "reads standard input from -"; fi

# bad lines: reported with their line number, neighbours intact, exit 3
{
    echo '{"id":"a","output":"x"}'
    echo ''
    echo '{"id":"b", "input": '
    echo '   '
    printf '{"id":"c"}\r\n'
    echo '[1,2]'
    echo '{"id":"d"} trailing'
    echo '{"id":"e","steps":{"type":"search"},"citations":"x","output":7,"expected":[1]}'
} >"$TMP/bad.jsonl"
"$ASSAY" run --no-timing -e plugins/query_diversity.lua "$TMP/bad.jsonl" >"$TMP/bad.out" 2>"$TMP/bad.err"
check "input errors give exit 3" 3 $?
check "one record per line that is not blank" 6 "$(wc -l < "$TMP/bad.out")"
check_contains "broken JSON names its line" "$TMP/bad.out" '{"trace_id":null,"evaluator":null,"line":3,"file":"'"$TMP"'/bad.jsonl","error":{"kind":"input","message":"'"$TMP"'/bad.jsonl:3: not valid JSON'
check_contains "CRLF line is read" "$TMP/bad.out" '"trace_id":"c"'
check_contains "array line is an input error" "$TMP/bad.out" '"line":6'
check_contains "trailing garbage is an input error" "$TMP/bad.out" '"line":7,"file":"'"$TMP"'/bad.jsonl","error":{"kind":"input","message":"'"$TMP"'/bad.jsonl:7: not valid JSON (error at byte 12)"'
check_contains "wrong field types count as absent" "$TMP/bad.out" '{"trace_id":"e","evaluator":"query_diversity","step":null,"score":null,"pass":null,"label":null,"details":{"n_queries":0,"skipped":"fewer than 2 search queries"},"error":null,"ms":null}'
check "records stay in input order" "a c e" "$(grep -o '"trace_id":"[a-z]"' "$TMP/bad.out" | cut -d'"' -f4 | tr '\n' ' ' | sed 's/ $//')"
check_contains "summary counts input errors" "$TMP/bad.err" "3 traces, 3 input errors"

# limits: a plugin that hangs or eats memory on one trace; the run goes on
mkdir -p "$TMP/ev"
cat >"$TMP/ev/bomb.lua" <<'LUA'
return { evaluate = function(t)
  if t.id == "hang" then while true do end end
  if t.id == "eat" then local big, s = ("x"):rep(1 << 20), {} for i = 1, 1e9 do s[i] = big .. i end end
  if t.id == "boom" then error("exploded on purpose") end
  return 1
end }
LUA
printf '{"id":"ok1"}\n{"id":"hang"}\n{"id":"eat"}\n{"id":"boom"}\n{"id":"ok2"}\n' >"$TMP/lim.jsonl"
# The time limit is far above what filling 16 MiB takes (40-60 ms here), since on a virtual
# machine first-touch page faults can make it take longer than a tight 200 ms; the hang
# still ends at it. It is per evaluation, so "eat" must reach the memory limit first.
"$ASSAY" run --no-timing --timeout-ms 3000 --memory-mb 16 -e "$TMP/ev/bomb.lua" "$TMP/lim.jsonl" >"$TMP/lim.out" 2>"$TMP/lim.err"
check "limit violations give exit 3" 3 $?
# the records hold the library's words; the summary adds the command line's way out
check_contains "the summary hints at --timeout-ms" "$TMP/lim.err" "(--timeout-ms MS raises the time limit)"
check_contains "and at --memory-mb" "$TMP/lim.err" "(--memory-mb MB raises the memory limit)"
check "no record names a flag" 0 "$(grep -c -- '(--' "$TMP/lim.out")"
check_contains "timeout record" "$TMP/lim.out" '{"trace_id":"hang","evaluator":"bomb","step":null,"score":null,"pass":null,"label":null,"details":null,"error":{"kind":"timeout","message":"evaluation exceeded the 3000 ms time limit"},"ms":null}'
check_contains "memory record" "$TMP/lim.out" '"trace_id":"eat","evaluator":"bomb","step":null,"score":null,"pass":null,"label":null,"details":null,"error":{"kind":"memory"'
check_contains "runtime error names file and line" "$TMP/lim.out" '"error":{"kind":"runtime","message":"'"$TMP"'/ev/bomb.lua:4: exploded on purpose"'
check_contains "the trace after the failures is scored" "$TMP/lim.out" '{"trace_id":"ok2","evaluator":"bomb","step":null,"score":1,'

# params
"$ASSAY" run --no-timing -e plugins/query_diversity.lua -p query_diversity.threshold=1.01 "$EX" >"$TMP/p.out" 2>/dev/null
check "-p threshold above every score: no trace passes" 0 "$(grep -c '"pass":true' "$TMP/p.out")"
"$ASSAY" run -p query_diversity.threshold=high "$EX" >/dev/null 2>"$TMP/e"; check "-p with a wrong type exits 2" 2 $?
check_contains "-p type error names the param" "$TMP/e" "param query_diversity.threshold: 'high' is not a number"
"$ASSAY" run -p nosuch.x=1 "$EX" >/dev/null 2>"$TMP/e"; check "-p for an unknown plugin exits 2" 2 $?
check_contains "-p unknown plugin lists the loaded ones" "$TMP/e" "no plugin named 'nosuch' (loaded: citation_support, expect, query_diversity, relevance, search_overlap)"

# group-by
"$ASSAY" run --group-by metadata.segment "$EX" >/dev/null 2>"$TMP/g"
check_contains "--group-by prints a table per segment" "$TMP/g" "group enterprise:"

# plugin loading errors and check/list
printf 'return {\n  evaluate = function(t) return 1 end,\n  scope = 5,\n}\n' >"$TMP/ev/badscope.lua"
"$ASSAY" run -e "$TMP/ev/badscope.lua" "$EX" >/dev/null 2>"$TMP/e"; check "a plugin that fails to load exits 2" 2 $?
check_contains "load error names the file" "$TMP/e" "badscope.lua: scope must be"
printf 'local x = io.open("f")\nlocal y = os.getenv("HOME") -- io in a comment is fine\nlocal s = "io.open"\nreturn { evaluate = function() return 1 end }\n' >"$TMP/ev/uses_io.lua"
"$ASSAY" check "$TMP/ev/uses_io.lua" >"$TMP/c" 2>&1; check "check fails a plugin that uses io" 2 $?
check_contains "check names the line of io" "$TMP/c" "uses_io.lua:1: uses 'io'"
check_contains "check names os.getenv" "$TMP/c" "uses_io.lua:2: uses 'os.getenv'"
check "check ignores comments and strings" 2 "$(grep -c "uses '" "$TMP/c")"
"$ASSAY" check plugins/*.lua >"$TMP/c" 2>&1; check "check passes the shipped plugins" 0 $?
printf 'return { name = "a" }\n' >"$TMP/ev/noeval.lua"
printf 'return { params = { f = function() end }, evaluate = function() end }\n' >"$TMP/ev/pfun.lua"
printf 'return { description = "Says hi.", params = { n = 2 }, evaluate = function() return 1 end }\n' >"$TMP/ev/good.lua"
"$ASSAY" check "$TMP/ev/noeval.lua" "$TMP/ev/pfun.lua" "$TMP/ev/good.lua" >"$TMP/c" 2>&1; check "check fails when one plugin fails" 2 $?
check_contains "check flags a missing evaluate" "$TMP/c" "noeval.lua: the returned table has no evaluate function"
check_contains "check flags a param of the wrong type" "$TMP/c" "pfun.lua: param 'f' must be a number, string, boolean or table (got function)"
check_contains "check prints the description" "$TMP/c" "  Says hi."
check_contains "check prints the params" "$TMP/c" '  params: {"n":2}'
"$ASSAY" list >"$TMP/l" 2>&1; check "list exits 0" 0 $?
check_contains "list shows params" "$TMP/l" 'params: {"max_near_duplicates":-1,"near_duplicate":0.8,"threshold":0.5}'

# output failures
"$ASSAY" run "$EX" -o /no/such/dir/out.jsonl >/dev/null 2>"$TMP/e"; check "unwritable output exits 2" 2 $?
if [ -w /dev/full ]; then # written on the loop's thread, as a regular file is
    "$ASSAY" run "$EX" -o /dev/full >/dev/null 2>"$TMP/e"; check "a full disk exits 4" 4 $?
    check_contains "a full disk is reported" "$TMP/e" "cannot write results to /dev/full: no space left on device"
fi
# a pipe is written through the thread pool: its reader leaving is a write error too
python3 scripts/gen_traces.py --count 400 --seed 3 >"$TMP/many.jsonl"
( "$ASSAY" run --no-db "$TMP/many.jsonl" 2>"$TMP/e"; echo $? >"$TMP/rc" ) | head -c 100 >/dev/null
check "a pipe closed early exits 4" 4 "$(cat "$TMP/rc")"
check_contains "and is reported" "$TMP/e" "cannot write results to standard output: broken pipe"

# assay test reports failures with exit 1
printf '{"name":"wrong on purpose","trace":{"id":"x","steps":[]},"expect":[{"evaluator":"search_overlap","score":1}]}\n' >"$TMP/cases.jsonl"
"$ASSAY" test plugins/search_overlap.lua --cases "$TMP/cases.jsonl" >"$TMP/t" 2>&1; check "assay test exits 1 on a failed case" 1 $?
check_contains "assay test says what differed" "$TMP/t" "search_overlap: score: expected 1, got null"
# check DIR: every plugin in the directory, in name order (before: only the first, and a
# directory with an io.open plugin passed)
mkdir -p "$TMP/chkdir" "$TMP/chkempty"
printf 'return {name="good", description="d", evaluate=function() return 1 end}\n' >"$TMP/chkdir/a.lua"
printf 'return {name="bad", description="d", evaluate=function() local f = io.open("/etc/passwd") return 1 end}\n' >"$TMP/chkdir/b.lua"
"$ASSAY" check "$TMP/chkdir" >"$TMP/chkdir.out" 2>&1
check "check DIR with an io.open plugin in it: exit 2" 2 $?
check_contains "it checks the first plugin" "$TMP/chkdir.out" "ok   $TMP/chkdir/a.lua: good (scope trace)"
check_contains "and finds the second's io.open" "$TMP/chkdir.out" "FAIL $TMP/chkdir/b.lua: 1 use of what the sandbox withholds"
"$ASSAY" check "$TMP/chkempty" >"$TMP/chkempty.out" 2>&1
check "check of a directory without plugins: exit 2" 2 $?
check_contains "named" "$TMP/chkempty.out" "FAIL $TMP/chkempty: no *.lua plugin files in this directory"
"$ASSAY" check plugins >"$TMP/chkplugins.out" 2>&1
check "check plugins/: the five shipped plugins pass" "0 5" "$? $(grep -c '^ok ' "$TMP/chkplugins.out")"

# the summary says why records carry errors: each evaluator's most frequent messages
printf 'return { name = "flaky", evaluate = function(t) if #t.id %% 3 == 0 then error("boom " .. (#t.id %% 2)) end if #t.id %% 3 == 1 then local x = nil; return x.y end return 1 end }\n' >"$TMP/flaky.lua"
python3 -c 'for i in range(30): print("{\"id\":\"%s\"}" % ("x" * (i + 1)))' >"$TMP/flaky.jsonl"
"$ASSAY" run --no-db -e "$TMP/flaky.lua" "$TMP/flaky.jsonl" >/dev/null 2>"$TMP/flaky.err"
check "the summary lists the errors, most frequent first (ties in the order they came)" \
    "errors of flaky:|        10  $TMP/flaky.lua:1: attempt to index a nil value (local 'x')|         5  $TMP/flaky.lua:1: boom 1|         5  $TMP/flaky.lua:1: boom 0" \
    "$(sed -n '/^errors of flaky:/,$p' "$TMP/flaky.err" | tr '\n' '|' | sed 's/|$//')"

# assay test leads with the evaluation's error (before: "score: expected 1, got null")
printf '{"name":"c1","trace":{"id":"a"},"expect":[{"evaluator":"flaky","score":1}]}\n' >"$TMP/flaky_cases.jsonl"
"$ASSAY" test "$TMP/flaky.lua" --cases "$TMP/flaky_cases.jsonl" >"$TMP/flaky_test.out" 2>&1
check "assay test of a failing evaluation: exit 1" 1 $?
check "its first line of explanation is the evaluation's error" \
    "#   $TMP/flaky_cases.jsonl:1: flaky: the evaluation failed (runtime error): $TMP/flaky.lua:1: attempt to index a nil value (local 'x')" \
    "$(sed -n 4p "$TMP/flaky_test.out")"

# assay test with scripted replies: chat, embeddings and http answered from the case, none
# from the network (no --llm-url); an unanswered request is an http error naming the case
cat >"$TMP/asks.lua" <<'EOF'
return { name = "asks", evaluate = function(t)
  local verdict = assay.llm.chat{ messages = { { role = "user", content = "Grade: " .. t.output } } }.text
  local v = assay.llm.embed{ input = { t.output, "other" } }.vectors
  local page = assay.http.request{ url = "https://example.org/page?id=" .. t.id }
  return { label = verdict, details = { first = v[1][1], second = v[2][1], status = page.status, body = page.body } }
end }
EOF
cat >"$TMP/asks_cases.jsonl" <<'EOF'
{"name":"all three answered","trace":{"id":"a","output":"fine report"},"replies":[{"match":"Grade: fine","reply":"good"},{"match":"fine","embedding":[0.5,1]},{"embedding":[2]},{"match":"id=a","status":404,"body":"gone"}],"expect":[{"evaluator":"asks","label":"good","details":{"first":0.5,"second":2,"status":404,"body":"gone"}}]}
{"name":"the page is not scripted","trace":{"id":"b","output":"fine report"},"replies":[{"reply":"good"},{"embedding":[1]}],"expect":[{"evaluator":"asks","label":"good"}]}
EOF
"$ASSAY" test "$TMP/asks.lua" --cases "$TMP/asks_cases.jsonl" >"$TMP/asks.out" 2>&1
check "scripted replies: exit 1 (one case fails on purpose)" 1 $?
check_contains "chat, embeddings and http answered from the case" "$TMP/asks.out" "ok 1 - all three answered"
check_contains "an unanswered request names the case and the URL" "$TMP/asks.out" \
    "asks: the evaluation failed (http error): http: $TMP/asks_cases.jsonl:2: no reply of the case answers this http request: \"https://example.org/page?id=b\""
printf '{"name":"bad","trace":{"id":"x"},"replies":[{"match":"a","reply":"x","body":"y"}],"expect":[]}\n' >"$TMP/bad_replies.jsonl"
"$ASSAY" test "$TMP/asks.lua" --cases "$TMP/bad_replies.jsonl" >/dev/null 2>"$TMP/bad_replies.err"
check "a malformed reply rule: exit 2, naming the line" "2 yes" \
    "$? $(grep -qF "$TMP/bad_replies.jsonl:1: a reply has one of \"reply\"" "$TMP/bad_replies.err" && echo yes || echo no)"

# a command table: each command takes its own options, and says which
"$ASSAY" list --resume --fail-on-regression >/dev/null 2>"$TMP/opt.err"
check "an option a command does not take: exit 2" 2 $?
check "naming the command and the option" "assay: list takes no option --resume|(see assay help list)" "$(tr '\n' '|' <"$TMP/opt.err" | sed 's/|$//')"
"$ASSAY" compare v1 v2 --junit x.xml >/dev/null 2>"$TMP/opt2.err"
check "compare --junit: exit 2 (before: exit 0 and nothing written)" 2 $?
check_contains "named" "$TMP/opt2.err" "assay: compare takes no option --junit"
"$ASSAY" run -o >/dev/null 2>"$TMP/opt3.err"
check "an option without its value: exit 2" 2 $?
check_contains "named" "$TMP/opt3.err" "assay: run -o needs a value"
"$ASSAY" help compare >"$TMP/help_compare" 2>&1
check "assay help compare: exit 0" 0 $?
check "it shows compare's options only" "--group-by --db --json --fail-on-regression --gate --min-delta --strict --correction --help" \
    "$(sed -n '/^options:/,/^$/p' "$TMP/help_compare" | grep -o -- ' --[a-z-]*' | tr -d ' ' | tr '\n' ' ' | sed 's/ $//')"
"$ASSAY" compare --help >"$TMP/help_compare2" 2>&1
check "assay compare --help is the same page" "$(cat "$TMP/help_compare")" "$(cat "$TMP/help_compare2")"
"$ASSAY" run --help >"$TMP/help_run" 2>&1
check_contains "run's page has run's options" "$TMP/help_run" "--resume"
check "and not compare's" 0 "$(grep -c -- '--fail-on-regression' "$TMP/help_run")"
"$ASSAY" help nosuch >/dev/null 2>&1
check "assay help of an unknown command: exit 2" 2 $?

done_testing
