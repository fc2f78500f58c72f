# Builds examples/embed/minimal.c against the shared library of this build, as an embedder
# would (public header only, libassay.so), and checks what it prints.
. "$(dirname "$0")/lib.sh"
B=${ASSAY_BUILD:-build}
extra=""
case "$B" in *asan*) extra="-fsanitize=address,undefined" ;; esac
# shellcheck disable=SC2086
cc -Wall -Wextra -Werror $extra -Ihost examples/embed/minimal.c -o "$TMP/minimal" \
    $(pkg-config --cflags --libs libuv) -L"$B" -lassay -Wl,-rpath,"$PWD/$B" 2>"$TMP/cc"
check "the minimal embedding example builds against assay.h and libassay.so" 0 $?
"$TMP/minimal" plugins '{"id":"t1","steps":[{"type":"search","query":"a b"},{"type":"search","query":"a c"}]}' '{"id":' \
    >"$TMP/out" 2>&1
check "it runs" 0 $?
check_contains "it prints the records of the first trace" "$TMP/out" '{"trace_id":"t1","evaluator":"query_diversity","step":null,"score":0.6666666666666667,"pass":true'
check_contains "and an input error for the second" "$TMP/out" '{"trace_id":null,"evaluator":null,"line":2,"file":"argv","error":{"kind":"input"'
if command -v nm >/dev/null; then
    leaked=$(nm -D --defined-only "$B/libassay.so" | awk '{print $3}' | grep -v '^assay_' | grep -v '^_' | head -3)
    check "libassay.so exports only assay_* symbols" "" "$leaked"
fi
done_testing
