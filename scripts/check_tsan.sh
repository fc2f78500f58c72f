#!/bin/sh
# `make check-tsan`: ThreadSanitizer over the code that runs on several threads at once:
# the host's unit tests (thread mode with submitting threads, reloads, traces shared by
# idle workers, the result hand-off) and `assay run -j 4` over generated traces, sharded
# and not. Not part of `make test`: a third build, and libuv and Lua are not instrumented,
# so it sees our side of each hand-off only. Exits non-zero on the first report.
set -eu
cd "$(dirname "$0")/.."
B=build-tsan
export TSAN_OPTIONS="halt_on_error=1 exitcode=66" ASSAY_PLUGIN_DIR="$PWD/plugins"
"$B/tests/test_host"
scripts/gen_traces.py --count 2000 --seed 3 --messy > "$B/tsan.jsonl"
for args in "-j 4" "-j 4 --shard 2/3" "-j 2 --sample 0.5"; do
    rc=0
    # shellcheck disable=SC2086
    "$B/assay" run $args --no-db -o /dev/null "$B/tsan.jsonl" 2>"$B/tsan.err" || rc=$?
    if [ "$rc" -eq 66 ] || grep -q ThreadSanitizer "$B/tsan.err"; then
        cat "$B/tsan.err" >&2
        echo "check-tsan: assay run $args: a data race was reported" >&2
        exit 1
    fi
done
echo "check-tsan: no data race reported"
