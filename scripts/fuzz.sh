#!/bin/sh
# Runs each libFuzzer target for a bounded time (make fuzz). usage: fuzz.sh SECONDS TARGET...
# Seeds: tests/fuzz/corpus/TARGET (read only); new inputs: build-fuzz/corpus/TARGET;
# crashes and their reproducers: build-fuzz/crashes/. Exits 1 if any target failed.
set -u
seconds=$1
shift
status=0
mkdir -p build-fuzz/crashes
for t in "$@"; do
    mkdir -p "build-fuzz/corpus/$t"
    echo "== $t: ${seconds}s"
    if ! "build-fuzz/fuzz/$t" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="build-fuzz/crashes/$t-" \
        -print_final_stats=1 2>"build-fuzz/$t.log"; then
        status=1
        echo "   FAILED: see build-fuzz/$t.log and build-fuzz/crashes/"
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "build-fuzz/$t.log" | sed 's/^/   /'
    echo "   corpus: $(ls "build-fuzz/corpus/$t" | wc -l) new inputs"
done
exit $status
