#!/bin/sh
# `make bench`: throughput and peak RSS of `assay run` at -j 1 and -j <cores> on a generated
# corpus, each the median of RUNS runs taken side by side. Never part of `make test`.
#   BENCH_MB=100 RUNS=5 scripts/bench.sh
set -eu
cd "$(dirname "$0")/.."
MB=${BENCH_MB:-100}
RUNS=${RUNS:-5}
CORPUS=build/bench-${MB}mb.jsonl
[ -f "$CORPUS" ] || scripts/gen_traces.py --size-mb "$MB" --seed 7 > "$CORPUS"
TRACES=$(wc -l < "$CORPUS")
CORES=$(nproc)
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # label args...
    label=$1; shift
    : > build/bench.times
    i=0
    while [ $i -lt "$RUNS" ]; do
        rm -f build/bench-store.db build/bench-store.db-wal build/bench-store.db-shm # each run fills a fresh store
        if [ "$1" = floor ]; then
            /usr/bin/time -f "%e %M" -o build/bench.one build/bench_floor "$CORPUS" >/dev/null
        else
            /usr/bin/time -f "%e %M" -o build/bench.one build/assay run "$@" "$CORPUS" -o /dev/null 2>/dev/null || true
        fi
        cat build/bench.one >> build/bench.times
        i=$((i + 1))
    done
    wall=$(cut -d' ' -f1 build/bench.times | median)
    rss=$(cut -d' ' -f2 build/bench.times | median)
    printf '%-22s %8.2f s %10.0f traces/s %8.1f MB/s %8.1f MB RSS\n' "$label" "$wall" \
        "$(echo "$TRACES / $wall" | bc -l)" "$(echo "$MB / $wall" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
}
echo "corpus: $CORPUS ($TRACES traces, $MB MB), median of $RUNS runs, $CORES cores"
mkdir -p build/bench-noop
echo 'return { name = "noop", evaluate = function() return 1 end }' > build/bench-noop/noop.lua
# shellcheck disable=SC2046
cc -O2 -o build/bench_floor scripts/bench_floor.c $(pkg-config --cflags --libs libcjson)
measure "floor: read + cJSON" floor
measure "noop plugin -j 1" -j 1 -e build/bench-noop --no-db
measure "five evaluators -j 1" -j 1 --no-db
measure "five evaluators -j $CORES" -j "$CORES" --no-db
measure "  + run store -j $CORES" -j "$CORES" --db build/bench-store.db
