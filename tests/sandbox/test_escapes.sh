# The sandbox escape suite: each file in tests/sandbox/attacks/ is a plugin trying one attack on
# the trace "attack". It must get an error record of the kind and with the message its header
# names, and the host must stay healthy: the same plugin scores the next trace ("after")
# normally. tests/sandbox/cross/ checks that one plugin cannot change what another sees.
. "$(dirname "$0")/../e2e/lib.sh"
# the attack trace has steps and metadata, for the attacks on the lazy view (sandbox/lazy.c)
printf '%s\n' '{"id":"attack","output":"x","steps":[{"type":"search","query":"q","results":[{"url":"u"}]},{"type":"fetch","url":"u"}],"metadata":{"segment":"s","n":1}}' \
    '{"id":"after","output":"x"}' >"$TMP/in.jsonl"
for f in tests/sandbox/attacks/*.lua; do
    name=$(basename "$f" .lua)
    kind=$(sed -n 's/^-- kind: //p' "$f")
    expect=$(sed -n 's/^-- expect: //p' "$f")
    # memory bombs get time to reach the memory limit even on a loaded machine under ASan
    limit=300
    [ "$kind" = memory ] && limit=5000
    # and so do attacks refused when a bound inside C is reached (-- timeout-ms: N)
    limit=$(sed -n 's/^-- timeout-ms: //p' "$f" | grep . || echo $limit)
    memory=$(sed -n 's/^-- memory-mb: //p' "$f")
    # a protection that is gone must fail the test, not hang the suite; a limit that is
    # reached only after seconds inside C is not a limit
    max_seconds=$(sed -n 's/^-- max-seconds: //p' "$f")
    started=$(date +%s)
    timeout 120 "$ASSAY" run -j 1 --timeout-ms $limit --memory-mb "${memory:-32}" --no-timing -e "$f" "$TMP/in.jsonl" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    seconds=$(($(date +%s) - started))
    first=$(sed -n 1p "$TMP/out")
    second=$(sed -n 2p "$TMP/out")
    refused=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
e = r.get("error") or {}
print(e.get("kind") == sys.argv[2] and sys.argv[3] in e.get("message", ""))' "$first" "$kind" "$expect" 2>&1)
    if [ "$seconds" -gt "${max_seconds:-10}" ]; then
        not_ok "$name: refused within ${max_seconds:-10} s" "took $seconds s" "$first"
    elif [ $rc -eq 3 ] && [ "$refused" = True ] &&
        [ "$second" = "{\"trace_id\":\"after\",\"evaluator\":\"$name\",\"step\":null,\"score\":1,\"pass\":null,\"label\":null,\"details\":null,\"error\":null,\"ms\":null}" ]; then
        ok "$name: refused ($kind: $expect), and the next trace scores normally"
    else
        not_ok "$name: refused ($kind: $expect), and the next trace scores normally" "status $rc" "$first" "$second" "$(head -3 "$TMP/err")"
    fi
done

printf '{"id":"c1","output":"original","steps":[{"type":"search","query":"q","results":[{"url":"https://a.org/x","title":"T","snippet":"S"}]}]}\n' >"$TMP/c.jsonl"
"$ASSAY" run -j 1 --no-timing -e tests/sandbox/cross "$TMP/c.jsonl" >"$TMP/cross" 2>&1
check_contains "a plugin that rewrites the trace (also as assay.trace reads it), string library and host modules changes nothing for another" \
    "$TMP/cross" '"evaluator":"b_victim","step":null,"score":1,"pass":null,"label":null,"details":{"lower":"ab","output":"original","source":"T S","steps":1,"token":"hi","upper":"AB"}'
printf '{"id":"s1","steps":[{"type":"search"}],"metadata":{"n":7}}\n{"id":"s2"}\n' >"$TMP/s.jsonl"
"$ASSAY" run -j 1 --no-timing -e tests/sandbox/stale/keeps_trace_table.lua "$TMP/s.jsonl" >"$TMP/stale" 2>&1
check_contains "a table of an earlier trace, never built, raises a clear error when touched later" "$TMP/stale" \
    '"details":{"built":7,"message":"tests/sandbox/stale/keeps_trace_table.lua:8: this table is part of an earlier trace, whose data is gone once its evaluation ends (copy the values a plugin keeps from one trace to the next)","untouched_ok":false}'

# the state reuses its trace view from trace to trace, each trace with a document of its own:
# tables of the two traces before, touched in every way, are refused; members read while
# their trace lived stay (s2, s3 on trace v4)
for i in 1 2 3 4; do printf '{"id":"v%d","steps":[{"type":"search"}],"metadata":{"segment":"s%d"}}\n' $i $i; done >"$TMP/v.jsonl"
"$ASSAY" run -j 1 --no-timing -e tests/sandbox/stale/keeps_many_views.lua "$TMP/v.jsonl" >"$TMP/views" 2>&1
check_contains "tables of earlier traces, the view reused since, are refused however they are touched" "$TMP/views" \
    '{"trace_id":"v4","evaluator":"keeps_many_views","step":null,"score":1,"pass":null,"label":null,"details":{"seen":["refused refused read:s2 refused refused refused refused refused","refused refused read:s3 refused refused refused refused refused"],"segment":"s4"},"error":null,"ms":null}'

# a step-scoped plugin that replaces trace.steps: the next step gets an error record, the
# host does not crash, and the next trace scores normally
printf '%s\n' '{"id":"s1","steps":[{"type":"search"},{"type":"search"}]}' '{"id":"after","steps":[{"type":"search"}]}' >"$TMP/steps.jsonl"
"$ASSAY" run -j 1 --no-timing -e tests/sandbox/step/steps_replaced.lua "$TMP/steps.jsonl" >"$TMP/steps.out" 2>&1
check "trace.steps replaced by a number: exit 3 (an error record), no crash" 3 $?
check_contains "the next step's record names what happened" "$TMP/steps.out" \
    '{"trace_id":"s1","evaluator":"steps_replaced","step":1,"score":null,"pass":null,"label":null,"details":null,"error":{"kind":"runtime","message":"trace.steps is no longer a table (a number): an earlier step'"'"'s evaluation replaced it"},"ms":null}'
check_contains "the next trace scores normally" "$TMP/steps.out" '{"trace_id":"after","evaluator":"steps_replaced","step":0,"score":1,'

# a step-scoped plugin killed on every step of a 20,000-step trace: three kills rebuild the
# state, the other steps get error records without running (before: a rebuild per step)
python3 -c '
import json
print(json.dumps({"id": "many", "steps": [{"type": "search", "query": "q%d" % i} for i in range(20000)]}))
print(json.dumps({"id": "after", "steps": [{"type": "search"}]}))' >"$TMP/many.jsonl"
started=$(date +%s)
timeout 300 "$ASSAY" run -j 1 --no-timing --memory-mb 8 -e tests/sandbox/step/memory_every_step.lua "$TMP/many.jsonl" -o "$TMP/many.out" 2>/dev/null
check "every step killed: exit 3" 3 $?
check "within 20 s (took $(($(date +%s) - started)) s)" yes "$([ $(($(date +%s) - started)) -le 20 ] && echo yes || echo no)"
check "one record per step, and the next trace's" 20001 "$(wc -l <"$TMP/many.out")"
check "steps after the third kill are not run" 19997 "$(grep -c '"message":"not evaluated: the plugin hit its limits on 3 earlier steps of this trace"' "$TMP/many.out")"
check_contains "the next trace scores normally" "$TMP/many.out" '{"trace_id":"after","evaluator":"memory_every_step","step":0,"score":1,'
# memory held outside Lua's allocator counts against the limit: cJSON nodes of
# assay.json.decode, and the small-block pool's chunks (peak RSS bounded, next trace fine)
for f in tests/sandbox/memory/*.lua; do
    name=$(basename "$f" .lua)
    run_measured /dev/null "$ASSAY" run -j 1 --no-db --no-timing --timeout-ms 20000 --memory-mb 32 -e "$f" "$TMP/in.jsonl" -o "$TMP/$name.out"
    check_contains "$name: the next trace scores normally" "$TMP/$name.out" "{\"trace_id\":\"after\",\"evaluator\":\"$name\",\"step\":null,\"score\":1,"
    case "${ASSAY_BUILD:-build}" in
    *asan*) ok "$name: peak RSS is measured on the plain build (ASan's shadow memory inflates it)" ;;
    *) check "$name: peak RSS under 100 MB with a 32 MiB limit (got ${rss} MB)" yes "$([ "$rss" -lt 100 ] && echo yes || echo no)" ;;
    esac
done
check_contains "json_decode_nodes: a memory error, before the nodes are made" "$TMP/json_decode_nodes.out" \
    '"error":{"kind":"memory","message":"evaluation exceeded the 32 MiB memory limit of its Lua state"}'
check_contains "json_decode_after_garbage: garbage is collected before a charge is refused" \
    "$TMP/json_decode_after_garbage.out" '"evaluator":"json_decode_after_garbage","step":null,"score":1,"pass":null,"label":null,"details":null,"error":null'
# require opens a plugin's lib/ files without following symlinks, and only regular files:
# a FIFO blocked the worker forever, /etc/passwd and /proc/self/environ were read
mkdir -p "$TMP/req/lib" "$TMP/outside"
echo 'return "outside"' >"$TMP/outside/secret.lua"
echo 'return "fine"' >"$TMP/req/lib/good.lua"
ln -s /etc/passwd "$TMP/req/lib/passwd.lua"
ln -s "$TMP/outside/secret.lua" "$TMP/req/lib/link.lua"
ln -s "$TMP/outside" "$TMP/req/lib/sub"
mkfifo "$TMP/req/lib/fifo.lua"
cat >"$TMP/req/requirer.lua" <<'EOF'
return { name = "requirer", evaluate = function(t)
  local ok, err = pcall(require, t.module)
  return { score = 1, label = ok and ("loaded " .. tostring(err)) or tostring(err):gsub("^.*require: ", "") }
end }
EOF
printf '%s\n' '{"id":"1","module":"good"}' '{"id":"2","module":"passwd"}' '{"id":"3","module":"link"}' \
    '{"id":"4","module":"sub.secret"}' '{"id":"5","module":"fifo"}' >"$TMP/req.jsonl"
timeout 60 "$ASSAY" run -j 1 --no-db --no-timing -e "$TMP/req/requirer.lua" "$TMP/req.jsonl" -o "$TMP/req.out" 2>/dev/null
check "require over symlinks and a FIFO: the run ends" 0 $?
label() { sed -n "$1p" "$TMP/req.out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["label"])'; }
check "a regular file in lib/ loads" "loaded fine" "$(label 1)"
check "a symlink to /etc/passwd is refused" "$TMP/req/lib/passwd.lua is not a regular file inside the lib directory (symlinks, FIFOs and devices are refused)" "$(label 2)"
check "a symlink to a Lua file outside is refused" "$TMP/req/lib/link.lua is not a regular file inside the lib directory (symlinks, FIFOs and devices are refused)" "$(label 3)"
check "a directory symlinked out of lib/ is refused" "$TMP/req/lib/sub/secret.lua is not a regular file inside the lib directory (symlinks, FIFOs and devices are refused)" "$(label 4)"
check "a FIFO is refused without blocking" "$TMP/req/lib/fifo.lua is not a regular file inside the lib directory (symlinks, FIFOs and devices are refused)" "$(label 5)"

# print: at most 64 KiB an evaluation (992 MB of stderr fit in one 500 ms evaluation), and
# control bytes escaped, in print and in the summary's --group-by values
cat >"$TMP/printer.lua" <<'EOF'
return { name = "printer", evaluate = function(t)
  print("\27]0;retitled\7\27[2Jcleared")
  local line = ("x"):rep(1 << 20)
  for _ = 1, 200 do print(line) end
  return 1
end }
EOF
printf '%s\n' '{"id":"p1","metadata":{"segment":"\u001b[31mred"}}' '{"id":"p2","metadata":{"segment":"plain"}}' >"$TMP/print.jsonl"
timeout 120 "$ASSAY" run -j 1 --no-db --no-timing --group-by segment -e "$TMP/printer.lua" "$TMP/print.jsonl" >/dev/null 2>"$TMP/print.err"
check "print floods: the run completes" 0 $?
check "stderr stays small: two evaluations of at most 64 KiB (got $(wc -c <"$TMP/print.err") bytes)" yes \
    "$([ "$(wc -c <"$TMP/print.err")" -lt 140000 ] && echo yes || echo no)"
check_contains "the cut is said" "$TMP/print.err" "[print: more than 64 KiB in one evaluation; the rest is dropped]"
check_contains "escape sequences are printed escaped" "$TMP/print.err" '\x1b]0;retitled\x07\x1b[2Jcleared'
check_contains "a --group-by value too" "$TMP/print.err" 'group \x1b[31mred:'
check "no raw escape byte reaches the terminal" 0 "$(tr -cd '\033\007' <"$TMP/print.err" | wc -c)"

done_testing
