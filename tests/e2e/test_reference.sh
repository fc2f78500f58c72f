# scripts/bench_c.c, the C reference of `make bench` (the five shipped evaluators written
# straight in C), writes the same records as assay, byte for byte, on generated, messy and
# long traces, the plugins' own case traces and the shipped examples: a speed row that is
# not the same work would measure nothing. Under the sanitizer build the reference itself
# runs with ASan and UBSan. Also: the walks of assay.trace, done in C on the trace view,
# equal the same walks in Lua (tests/plugins/trace_walks.lua).
. "$(dirname "$0")/lib.sh"
FLAGS="-O1 -g"
case "${ASSAY_BUILD:-}" in *asan*) FLAGS="$FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all" ;; esac
# shellcheck disable=SC2046,SC2086
cc $FLAGS -std=c11 -Wall -Wextra -Werror -o "$TMP/bench_c" scripts/bench_c.c $(pkg-config --cflags --libs libcjson) -lm
check "the C reference compiles with -Wall -Wextra -Werror" 0 $?
FIVE="-e plugins/citation_support.lua -e plugins/expect.lua -e plugins/query_diversity.lua -e plugins/relevance.lua -e plugins/search_overlap.lua"
python3 -c '
import json, sys
for f in sys.argv[1:]:
    for line in open(f):
        if line.strip() and not line.startswith("#"):
            case = json.loads(line)
            if isinstance(case.get("trace"), dict): print(json.dumps(case["trace"]))
' tests/plugins/citation_support.jsonl tests/plugins/cited_pairs.jsonl tests/plugins/expect.jsonl \
    tests/plugins/query_diversity.jsonl tests/plugins/relevance.jsonl tests/plugins/search_overlap.jsonl \
    tests/plugins/trace_view.jsonl >"$TMP/cases.jsonl"
scripts/gen_traces.py --count 400 --seed 21 >"$TMP/plain.jsonl"
scripts/gen_traces.py --count 600 --messy --seed 22 >"$TMP/messy.jsonl"
scripts/gen_traces.py --count 100 --long --seed 23 >"$TMP/long.jsonl"
for corpus in plain messy long cases; do
    # shellcheck disable=SC2086
    "$ASSAY" run --no-db --no-timing $FIVE "$TMP/$corpus.jsonl" 2>/dev/null | grep -v '"trace_id":null' \
        | sed 's/"regex_error":"[^"]*"/"regex_error":…/' >"$TMP/$corpus.assay"
    "$TMP/bench_c" "$TMP/$corpus.jsonl" | sed 's/"regex_error":"[^"]*"/"regex_error":…/' >"$TMP/$corpus.c"
    check "$corpus traces: the reference's records equal assay's ($(wc -l <"$TMP/$corpus.assay") records; an invalid regex's message aside)" \
        "$(md5sum <"$TMP/$corpus.assay")" "$(md5sum <"$TMP/$corpus.c")"
done
# assay.trace reads the trace view from C without building it: on every trace, untouched or
# with parts read, changed or built first (a mode per id), its walks equal the same walks in Lua
for corpus in plain messy long cases; do
    "$ASSAY" run --no-db --no-timing -e tests/plugins/trace_walks.lua "$TMP/$corpus.jsonl" 2>/dev/null \
        | grep -v '"trace_id":null' >"$TMP/$corpus.walks"
    check "$corpus traces: the assay.trace walks in C equal the same walks in Lua ($(wc -l <"$TMP/$corpus.walks") traces)" \
        "$(wc -l <"$TMP/$corpus.walks")" "$(grep -c '"score":1,.*"error":null' "$TMP/$corpus.walks")"
done
"$TMP/bench_c" examples/traces/deep-research.jsonl >"$TMP/examples.c"
# shellcheck disable=SC2086
"$ASSAY" run --no-db --no-timing $FIVE examples/traces/deep-research.jsonl 2>/dev/null >"$TMP/examples.assay"
check "the shipped examples too, byte for byte" "$(md5sum <"$TMP/examples.assay")" "$(md5sum <"$TMP/examples.c")"
done_testing
