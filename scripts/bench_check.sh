#!/bin/sh
# `make bench-check`: a performance regression check that noisy machines cannot fool. It
# counts the instructions (callgrind) one trace of a small fixed corpus costs `assay run`
# with the five shipped evaluators, and fails when that grows more than 10% over the count
# recorded in tests/bench/instructions. Run by the test suite; prints TAP.
#   scripts/bench_check.sh [BUILD]            check
#   scripts/bench_check.sh --update [BUILD]   record the current count (after a change
#                                             that is meant to cost more, or that saved)
# Per trace = (Ir of the corpus - Ir of an empty input) / traces, so that start-up (loading
# plugins, opening Lua states) does not count.
set -u
cd "$(dirname "$0")/.."
update=0
if [ "${1:-}" = --update ]; then update=1; shift; fi
BUILD=${1:-build}
CORPUS=tests/bench/corpus.jsonl
RECORD=tests/bench/instructions
LIMIT_PERCENT=10
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

ir() { # input -> total instructions of one run over it
    valgrind --tool=callgrind --callgrind-out-file="$OUT/cg" "$BUILD/assay" run -j 1 --no-db --no-timing \
        -o "$OUT/records" "$1" >"$OUT/log" 2>&1
    sed -n 's/^summary: *\([0-9]*\).*/\1/p' "$OUT/cg"
}

echo "1..1"
if ! command -v valgrind >/dev/null; then
    echo "not ok 1 - valgrind is needed for the instruction count (apt-get install valgrind)"
    exit 1
fi
: >"$OUT/empty.jsonl"
base=$(ir "$OUT/empty.jsonl")
full=$(ir "$CORPUS")
traces=$(wc -l <"$CORPUS")
if [ -z "$base" ] || [ -z "$full" ]; then
    echo "not ok 1 - callgrind gave no count"
    sed 's/^/# /' "$OUT/log"
    exit 1
fi
per_trace=$(( (full - base) / traces ))
if [ $update -eq 1 ]; then
    echo "$per_trace" >"$RECORD"
    echo "ok 1 - recorded $per_trace instructions per trace in $RECORD"
    exit 0
fi
recorded=$(cat "$RECORD")
limit=$(( recorded + recorded * LIMIT_PERCENT / 100 ))
change=$(awk -v a="$per_trace" -v b="$recorded" 'BEGIN { printf "%+.1f", (a - b) * 100 / b }')
if [ "$per_trace" -gt "$limit" ]; then
    echo "not ok 1 - $per_trace instructions per trace, $change% over the $recorded recorded (limit +$LIMIT_PERCENT%)"
    echo "# find where with: valgrind --tool=callgrind $BUILD/assay run -j 1 --no-db $CORPUS -o /dev/null"
    exit 1
fi
echo "ok 1 - $per_trace instructions per trace, $change% against the $recorded recorded (limit +$LIMIT_PERCENT%)"
if [ "$per_trace" -lt $(( recorded - recorded * LIMIT_PERCENT / 100 )) ]; then
    echo "# more than $LIMIT_PERCENT% faster: record the new count with scripts/bench_check.sh --update"
fi
