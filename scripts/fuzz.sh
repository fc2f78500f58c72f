#!/bin/sh
# Runs each libFuzzer target for a bounded time (make fuzz). usage: fuzz.sh SECONDS TARGET...
# Seeds: tests/fuzz/corpus/TARGET (read only), and for the loader the plugins and sandbox
# attacks where they live (seed_dirs); new inputs: build-fuzz/corpus/TARGET;
# crashes and their reproducers: build-fuzz/crashes/. Exits 1 if any target failed.
set -u
seconds=$1
shift
status=0
mkdir -p build-fuzz/crashes
# inputs kept elsewhere in the tree that seed a target, so the corpus holds no copies
seed_dirs() {
    case $1 in fuzz_loader) echo plugins plugins/llm examples/evaluators tests/sandbox/attacks ;; esac
}
for t in "$@"; do
    mkdir -p "build-fuzz/corpus/$t"
    echo "== $t: ${seconds}s"
    # shellcheck disable=SC2046
    if ! "build-fuzz/fuzz/$t" "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" $(seed_dirs "$t") -max_total_time="$seconds" \
        -timeout=10 -rss_limit_mb=2048 -max_len=65536 -artifact_prefix="build-fuzz/crashes/$t-" \
        -print_final_stats=1 2>"build-fuzz/$t.log"; then
        status=1
        echo "   FAILED: see build-fuzz/$t.log and build-fuzz/crashes/"
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "build-fuzz/$t.log" | sed 's/^/   /'
    echo "   corpus: $(ls "build-fuzz/corpus/$t" | wc -l) new inputs"
done
exit $status
