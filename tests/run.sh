#!/bin/sh
# Runs the whole suite against each build in $ASSAY_BUILDS (default: the normal build and
# the ASan+UBSan one) and ends with the line "N passed, N failed".
#   unit tests (cmocka, TAP output), plugin cases (assay test), end-to-end CLI tests.
set -u
cd "$(dirname "$0")/.."
BUILDS=${ASSAY_BUILDS:-"build build-asan"}
LOG=$(mktemp -d)
trap 'rm -rf "$LOG"' EXIT
# python3 behind a version manager's shim (pyenv's is a shell script) costs a quarter of a
# second a start, and the suites start it hundreds of times: they call the interpreter the
# shim resolves to directly (the same one, with the same packages)
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null)
if [ -n "$PY" ] && [ -x "$PY" ] && [ "$PY" != "$(command -v python3)" ]; then
    mkdir -p "$LOG/bin" && ln -s "$PY" "$LOG/bin/python3" && PATH="$LOG/bin:$PATH" && export PATH
fi
passed=0
failed=0
skipped=0

# Counts TAP lines of one suite's output; shows the failures.
# A "# SKIP" line (cmocka writes "not ok N # SKIP") counts as neither passed nor failed.
tally() { # name file
    p=$(grep -v '# SKIP' "$2" | grep -c '^ok ' || true)
    f=$(grep -v '# SKIP' "$2" | grep -c '^not ok ' || true)
    s=$(grep -E '^(not )?ok .*# SKIP' "$2" | wc -l)
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    printf '%-44s %4d passed, %d failed%s%s\n' "$1" "$p" "$f" "$([ "$s" -gt 0 ] && echo ", $s skipped")" \
        "$([ "${seconds:-0}" -ge 5 ] && echo " ($seconds s)")"
    if [ "$f" -gt 0 ]; then
        grep -v '# SKIP' "$2" | grep -A12 '^not ok ' | sed 's/^/    /' | head -60
    fi
}

# A suite that crashed or exited non-zero without reporting a failure still fails.
run_suite() { # name command...
    name=$1; shift
    out="$LOG/$(echo "$name" | tr '/ ' '__').out"
    started=$(date +%s)
    "$@" >"$out" 2>&1
    rc=$?
    seconds=$(($(date +%s) - started))
    if [ $rc -ne 0 ] && ! grep -v '# SKIP' "$out" | grep -q '^not ok '; then
        echo "not ok - $name exited with status $rc" >>"$out"
        tail -20 "$out" | sed 's/^/# /' >>"$out"
    fi
    tally "$name" "$out"
}

# One build's suites; its report goes to $LOG/report-BUILD and its counts to $LOG/count-BUILD.
# The builds run side by side: most suites use one core, and the machine has at least two.
run_build() { # build
    b=$1
    [ -x "$b/assay" ] || { echo "not ok - $b/assay is not built"; echo "0 1 0" >"$LOG/count-$b"; return; }
    export ASSAY_BIN="$PWD/$b/assay" ASSAY_BUILD="$b" ASSAY_DB="$LOG/$b-store.db" # the store of runs tests make in passing
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    for t in "$b"/tests/test_*; do
        [ -x "$t" ] || continue
        run_suite "$b: unit $(basename "$t")" env CMOCKA_MESSAGE_OUTPUT=TAP "$t"
    done
    for cases in tests/plugins/*.jsonl; do
        plugin=plugins/$(basename "$cases" .jsonl).lua
        [ -f "$plugin" ] || plugin=$(sed -n 's/^# plugin: //p' "$cases" | head -1)
        run_suite "$b: cases $(basename "$cases")" "$ASSAY_BIN" test "$plugin" --cases "$cases"
    done
    for t in tests/e2e/test_*.sh tests/sandbox/test_*.sh; do
        [ -f "$t" ] || continue
        run_suite "$b: $(basename "$t")" sh "$t"
    done
    echo "$passed $failed $skipped" >"$LOG/count-$b"
}
for b in $BUILDS; do
    run_build "$b" >"$LOG/report-$b" 2>&1 &
done
wait
for b in $BUILDS; do
    cat "$LOG/report-$b"
    read -r p f s <"$LOG/count-$b" || { p=0; f=1; s=0; echo "not ok - the suites of $b ended without a count"; }
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
# the instruction count per trace against the one recorded (make bench-check); the plain
# build only: sanitizers change the count
case " $BUILDS " in *" build "*) run_suite "bench-check: instructions per trace" scripts/bench_check.sh build ;; esac
# the fuzz corpora, once each, as a regression test (make fuzz-build made the targets);
# the loader is also seeded by the plugins and attacks in place (as in scripts/fuzz.sh)
for dir in tests/fuzz/corpus/*/; do
    t=$(basename "$dir")
    extra=""
    [ "$t" = fuzz_loader ] && extra="plugins/*.lua plugins/llm/*.lua examples/evaluators/*.lua tests/sandbox/attacks/*.lua"
    bin=build-fuzz/fuzz/$t
    out="$LOG/fuzz_$t.out"
    if [ ! -x "$bin" ]; then
        echo "not ok - $bin is not built (make fuzz-build)" >"$out"
    # shellcheck disable=SC2086
    elif "$bin" -timeout=20 -rss_limit_mb=2048 "$dir"* $extra >"$out.log" 2>&1; then
        echo "ok - $t: every corpus input runs clean ($(ls "$dir" $extra | wc -l) inputs)" >"$out"
    else
        { echo "not ok - $t: a corpus input fails"; tail -30 "$out.log" | sed 's/^/# /'; } >"$out"
    fi
    seconds=0
    tally "fuzz corpus $t" "$out"
done
[ "$skipped" -gt 0 ] && echo "$skipped skipped (not counted as passed)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
