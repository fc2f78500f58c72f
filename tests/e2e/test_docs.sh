# Every example in README.md and docs/*.md is run (docblocks.py says how each block is
# tagged): plugin files are written and loaded, command blocks run as written in a scratch
# checkout, C programs are built against a staged install, hosted-model URLs point at the
# loopback test server, and blocks that show a repository file must match it.
. "$(dirname "$0")/lib.sh"
B=${ASSAY_BUILD:-build}
W=$TMP/work
mkdir -p "$W"
for d in examples plugins tests; do ln -s "$PWD/$d" "$W/$d"; done
ln -s "$PWD/$B" "$W/build"
ln -s "$PWD/examples/traces/deep-research.jsonl" "$W/traces.jsonl"
cp examples/embed/*.c "$W/"
python3 tests/e2e/docblocks.py "$W" README.md docs/*.md >"$TMP/blocks" 2>&1
check "the docs' code blocks parse" 0 $?
while IFS= read -r line; do
    case "$line" in
    "ok - "*) ok "${line#ok - }" ;;
    "not ok - "*) not_ok "${line#not ok - }" ;;
    esac
done <"$TMP/blocks"

make -s --no-print-directory -o all install BUILD="$B" DESTDIR="$TMP/stage" PREFIX=/usr/local >"$TMP/install.log" 2>&1
python3 tests/llm_server.py serve >"$TMP/port" 2>/dev/null &
server=$!
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
PORT=$(awk '{print $2}' "$TMP/port")
sanitize=""
case "$B" in *asan*) sanitize='cc() { command cc -fsanitize=address,undefined "$@"; }' ;; esac
grep '^run ' "$TMP/blocks" | while read -r _ script where; do
    { echo "set -e"; echo "$sanitize"; sed "s|https://api.openai.com/v1|http://127.0.0.1:$PORT/v1|g" "$script"; } >"$script.run"
    (cd "$W" && PATH="$PWD/build:$PATH" PKG_CONFIG_PATH="$TMP/stage/usr/local/lib/pkgconfig" \
        PKG_CONFIG_SYSROOT_DIR="$TMP/stage" LD_LIBRARY_PATH="$TMP/stage/usr/local/lib" \
        sh "$script.run" >"$script.out" 2>&1)
    rc=$?
    if [ $rc -eq 0 ]; then ok "$where runs as written"
    else not_ok "$where runs as written" "exit status $rc" "$(tail -5 "$script.out")"; fi
done >"$TMP/runs"
cat "$TMP/runs"
n=$((n + $(grep -c '^\(not \)\?ok' "$TMP/runs")))
# sample outputs: what the command before them printed, "…" standing for what varies
grep '^expect ' "$TMP/blocks" | while read -r _ script expect where; do
    if python3 -c '
import re, sys
got = open(sys.argv[1], encoding="utf-8", errors="replace").read().rstrip("\n").split("\n")
want = open(sys.argv[2], encoding="utf-8").read().rstrip("\n").split("\n")
def pattern(line): return re.compile("^" + ".*".join(map(re.escape, line.split("…"))) + "$")
def match(i, j):
    if j == len(want): return i == len(got)
    if want[j] == "…": return any(match(k, j + 1) for k in range(i, len(got) + 1))
    return i < len(got) and pattern(want[j]).match(got[i]) is not None and match(i + 1, j + 1)
sys.exit(0 if match(0, 0) else 1)' "$script.out" "$expect"; then
        ok "$where is what the command prints"
    else
        not_ok "$where is what the command prints" "it printed:" "$(head -12 "$script.out")"
    fi
done >"$TMP/expects"
cat "$TMP/expects"
n=$((n + $(grep -c '^\(not \)\?ok' "$TMP/expects")))
kill $server
# the formats and definitions live in the repository: nothing points at a file outside it
git ls-files 2>/dev/null | grep -vE '^tests/fuzz/corpus/|\.png$' >"$TMP/tracked" || find . -type f -not -path './build*' >"$TMP/tracked"
outside=$(xargs grep -lE 'SPEC §|SPEC\.md|\.\./shared/' <"$TMP/tracked" 2>/dev/null | grep -v '^tests/e2e/test_docs.sh$')
check "no doc, comment or help text cites a file outside the repository" "" "$outside"
done_testing
