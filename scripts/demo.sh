#!/bin/sh
# The README's first command (via `make demo`): score the shipped example traces with the
# shipped evaluators, grouped by user segment, and show where the results went.
set -eu
cd "$(dirname "$0")/.."
out=results.jsonl
echo "assay: scoring examples/traces/deep-research.jsonl with plugins/*.lua -> $out" >&2
set +e
build/assay run examples/traces/deep-research.jsonl -o "$out" --group-by segment
status=$?
set -e
echo >&2
echo "assay: $(wc -l < "$out") records in $out; the first one:" >&2
head -n 1 "$out" >&2
# 3 means "some records carry errors": still a completed run for a demo
[ "$status" -eq 0 ] || [ "$status" -eq 3 ]
