# Hostile input: each case gets a clear input-error record (file, line, what and where)
# or a clear message, in bounded memory, and the lines around it are still scored.
. "$(dirname "$0")/lib.sh"
mkdir -p "$TMP/ev"
printf 'return { name = "id", evaluate = function(t) return { label = t.id, details = { n = t.n } } end }\n' >"$TMP/ev/id.lua"
python3 - "$TMP/h.jsonl" <<'PY'
import sys
lines = [
    b'{"id":"ok1"}',
    b'[' * 100000 + b']' * 100000,                                  # 2: 100,000 levels
    b'{"id":"deep","x":' + b'{"a":' * 100000 + b'1' + b'}' * 100000 + b'}',  # 3
    b'{"id":"bad\xff\xfe"}',                                        # 4: not UTF-8 at all
    b'{"id":"x","q":"\xc0\xaf"}',                                   # 5: overlong "/"
    b'{"id":"x","q":"\xed\xa0\x80"}',                               # 6: a UTF-16 surrogate
    b'{"id":"x","q":"\xf4\x90\x80\x80"}',                           # 7: past U+10FFFF
    b'{"id":"x","q":"\xe2\x82"}',                                   # 8: truncated sequence
    b'{"id":"nul\x00"}',                                            # 9: a NUL byte
    b'{"id":"caf\xc3\xa9 \xf0\x9f\x94\x8e"}',                       # 10: valid UTF-8 is fine
    b'{"id":"first","id":"last"}',                                  # 11: duplicate keys
    b'{"id":"big","n":1e400}',                                      # 12: out of double range
    b'{"id":"ok2"}',
]
open(sys.argv[1], "wb").write(b"\n".join(lines) + b"\n")
PY
"$ASSAY" run --no-timing -e "$TMP/ev/id.lua" "$TMP/h.jsonl" -o "$TMP/h.out" 2>"$TMP/h.err"
check "hostile lines: the run completes with exit 3 (input errors)" 3 $?
msg() { grep "\"line\":$1," "$TMP/h.out" | sed 's/.*"message":"\([^"]*\)".*/\1/'; }
check "100,000 nested arrays" "$TMP/h.jsonl:2: nested deeper than 1000 levels (at byte 1001)" "$(msg 2)"
# 17 bytes of prefix, then "{\"a\":" (5 bytes) per level: the 1000th inner object opens at 17 + 999 × 5 + 1
check "100,000 nested objects" "$TMP/h.jsonl:3: nested deeper than 1000 levels (at byte 5013)" "$(msg 3)"
check "invalid UTF-8" "$TMP/h.jsonl:4: not valid UTF-8 (at byte 11)" "$(msg 4)"
check "an overlong encoding" "$TMP/h.jsonl:5: not valid UTF-8 (at byte 16)" "$(msg 5)"
check "a surrogate" "$TMP/h.jsonl:6: not valid UTF-8 (at byte 16)" "$(msg 6)"
check "a code point past U+10FFFF" "$TMP/h.jsonl:7: not valid UTF-8 (at byte 16)" "$(msg 7)"
check "a truncated sequence" "$TMP/h.jsonl:8: not valid UTF-8 (at byte 16)" "$(msg 8)"
check "a NUL byte" "$TMP/h.jsonl:9: contains a NUL byte (at byte 11)" "$(msg 9)"
check_contains "valid UTF-8 is scored" "$TMP/h.out" '"label":"café 🔎"'
check_contains "duplicate keys: the last one wins, for the host and the plugin alike" "$TMP/h.out" '{"trace_id":"last","evaluator":"id","step":null,"score":null,"pass":null,"label":"last"'
check_contains "a number past the double range reaches the plugin as inf and is written as null" "$TMP/h.out" '"label":"big","details":{"n":null}'
check_contains "the lines after them are scored" "$TMP/h.out" '"label":"ok2"'
python3 -c '
import json, sys
def no_constants(name): raise ValueError(name)
for n, line in enumerate(open(sys.argv[1], "rb"), 1):
    json.loads(line.decode("utf-8"), parse_constant=no_constants)
' "$TMP/h.out" 2>"$TMP/py"
check "every output line is strict UTF-8 JSON (no NaN/Infinity)" 0 $?

# a 300 MB line: skipped with a record, never held in memory
python3 - "$TMP/huge.jsonl" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b'{"id":"ok0"}\n{"id":"huge","x":"')
    block = b"a" * (1 << 20)
    for _ in range(300):
        f.write(block)
    f.write(b'"}\n{"id":"ok3"}\n')
PY
run_measured "$TMP/huge.jsonl.out" "$ASSAY" run --no-timing -j 2 -e "$TMP/ev/id.lua" "$TMP/huge.jsonl"
check "a 300 MB line: exit 3" 3 "$rc"
check_contains "it gets an input error naming the limit" "$TMP/huge.jsonl.out" "$TMP/huge.jsonl:2: line of 314572820 bytes is longer than the 64 MiB limit; skipped"
check_contains "the next line is scored" "$TMP/huge.jsonl.out" '"label":"ok3"'
case "${ASSAY_BUILD:-build}" in
*asan*) ok "peak RSS is measured on the plain build (ASan's shadow memory inflates it)" ;;
*) check "peak RSS stays under 100 MB (got ${rss} MB)" yes "$([ "$rss" -lt 100 ] && echo yes || echo no)" ;;
esac

# a 20 MB line of small values: ~1 GB of cJSON nodes, refused before parsing
python3 - "$TMP/zeros.jsonl" <<'PY'
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b'{"id":"ok0"}\n{"id":"zeros","x":[' + b"0," * 10000000 + b'0]}\n{"id":"ok4"}\n')
PY
run_measured "$TMP/zeros.jsonl.out" "$ASSAY" run --no-timing -j 2 -e "$TMP/ev/id.lua" "$TMP/zeros.jsonl"
check "a line of 10 million values: exit 3" 3 "$rc"
check_contains "it gets an input error naming the bound" "$TMP/zeros.jsonl.out" "$TMP/zeros.jsonl:2: would take 934 MiB to parse, more than the 256 MiB a trace may (too many values); skipped"
check_contains "the next line is scored" "$TMP/zeros.jsonl.out" '"label":"ok4"'
case "${ASSAY_BUILD:-build}" in
*asan*) ok "peak RSS is measured on the plain build (ASan's shadow memory inflates it)" ;;
*) check "peak RSS stays under 120 MB (got ${rss} MB)" yes "$([ "$rss" -lt 120 ] && echo yes || echo no)" ;;
esac

# \u0000 would cut a string where cJSON keeps it NUL-terminated: two ids became one
printf '%s\n' '{"id":"a\u0000b"}' '{"id":"a\u0000c"}' '{"id":"lit","q":"\\u0000 is text"}' >"$TMP/nul.jsonl"
"$ASSAY" run --no-timing -e "$TMP/ev/id.lua" "$TMP/nul.jsonl" -o "$TMP/nul.out" 2>/dev/null
check "ids with \\u0000: exit 3" 3 $?
check "each is an input error naming the escape" 2 "$(grep -c 'contains \\\\u0000 (at byte 9): strings are cut at a NUL, so two ids could become one; skipped' "$TMP/nul.out")"
check_contains "an escaped backslash before u0000 is plain text" "$TMP/nul.out" '"label":"lit"'
# wherever the line's other faults are: loose JSON after it still names the escape, invalid
# UTF-8 is named first (the order of the checks), with sampling and without
python3 -c 'import sys; sys.stdout.buffer.write(b"{\"id\":\"a\\u0000b\",\"x\":[1,],}\n{\"id\":\"a\\u0000b\",\"q\":\"\xff\"}\n")' >"$TMP/nul2.jsonl"
for sample in "" "--sample 0.999"; do
    "$ASSAY" run --no-timing $sample -e "$TMP/ev/id.lua" "$TMP/nul2.jsonl" -o "$TMP/nul2.out" 2>/dev/null
    check "loose JSON with \\u0000: the escape is named ${sample:-(no sampling)}" 1 \
        "$(grep -c 'nul2.jsonl:1: contains \\\\u0000 (at byte 9)' "$TMP/nul2.out")"
    check "invalid UTF-8 with \\u0000: the encoding is named ${sample:-(no sampling)}" 1 \
        "$(grep -c 'nul2.jsonl:2: not valid UTF-8' "$TMP/nul2.out")"
done

# a FIFO streams like a file
mkfifo "$TMP/fifo"
timeout 60 cat examples/traces/deep-research.jsonl >"$TMP/fifo" & # no writer left behind if the run dies first
"$ASSAY" run --no-timing -j 2 "$TMP/fifo" -o "$TMP/fifo.out" 2>/dev/null
check "a FIFO is read as a stream" 0 $?
"$ASSAY" run --no-timing -j 2 examples/traces/deep-research.jsonl -o "$TMP/file.out" 2>/dev/null
check "with the same results as the file" "$(cksum <"$TMP/file.out")" "$(cksum <"$TMP/fifo.out")"
"$ASSAY" run "$TMP" 2>"$TMP/e"
check "a directory is refused (exit 2)" 2 $?
check_contains "and named" "$TMP/e" "$TMP: is a directory, not a JSONL file"
if [ -w /dev/full ]; then
    "$ASSAY" run examples/traces/deep-research.jsonl -o /dev/full 2>"$TMP/e"
    check "a full disk stops the run with exit 4" 4 $?
    check_contains "and is reported, not ignored" "$TMP/e" "cannot write results to /dev/full: no space left on device"
fi
# a long text of few distinct words: a Set sizes itself by what it holds, not by the text
printf 'return { name = "few", evaluate = function(t)\n  local s = assay.text.Set():add_content(t.text)\n  return { score = 1, details = { n = #s } } end }\n' >"$TMP/few.lua"
python3 -c 'import json; print(json.dumps({"id": "few", "text": "alpha beta " * 600000}))' >"$TMP/few.jsonl"
"$ASSAY" run --no-db --no-timing --memory-mb 24 -e "$TMP/few.lua" "$TMP/few.jsonl" >"$TMP/few.out" 2>"$TMP/few.err"
check "a 6.6 MB text of two words fits a Set under a 24 MB limit" \
    '{"trace_id":"few","evaluator":"few","step":null,"score":1,"pass":null,"label":null,"details":{"n":2},"error":null,"ms":null}' \
    "$(head -1 "$TMP/few.out")"
done_testing
