#!/bin/sh
# `make bench` (scale-out part): one run split into SHARDS shards (assay run --shard I/N,
# every shard a process of its own, all at once, as a job array's tasks on one machine)
# against one process using every core, on the bench corpus of scripts/bench.sh; then what
# `assay merge` costs per million results, joining the shards of the run store's worst case
# (scripts/bench_store.sh: small traces, five no-op plugins). Medians of RUNS, interleaved.
set -eu
cd "$(dirname "$0")/.."
MB=${BENCH_MB:-200}
RUNS=${RUNS:-3}
N=${SHARDS:-4}
CORES=$(nproc)
CORPUS=build/bench-${MB}mb.jsonl
[ -f "$CORPUS" ] || scripts/gen_traces.py --size-mb "$MB" --seed 7 > "$CORPUS"
SMALL=build/bench-store-${STORE_TRACES:-300000}.jsonl
[ -f "$SMALL" ] && [ -d build/bench-noop5 ] || STORE_TRACES=${STORE_TRACES:-300000} RUNS=1 scripts/bench_store.sh >/dev/null
D=build/bench-shard
mkdir -p "$D"
now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# shards CORPUS PLUGINS: runs the N shards at once, each -j 1, with a store and an output each
shards() {
    rm -f "$D"/shard-*
    i=0
    while [ "$i" -lt "$N" ]; do
        build/assay run --shard "$i/$N" -j 1 --db "$D/shard-$i.db" -e "$2" -o "$D/shard-$i.jsonl" "$1" 2>/dev/null &
        i=$((i + 1))
    done
    wait
}
: > "$D/one"; : > "$D/sharded"; : > "$D/merge-db"; : > "$D/merge-o"
r=0
while [ "$r" -lt "$RUNS" ]; do
    rm -f "$D/one.db"
    t=$(now); build/assay run -j "$CORES" --db "$D/one.db" -e plugins -o "$D/one.jsonl" "$CORPUS" 2>/dev/null || true
    echo "$(now) - $t" | bc >> "$D/one"
    t=$(now); shards "$CORPUS" plugins
    echo "$(now) - $t" | bc >> "$D/sharded"
    cmp -s "$D/one.jsonl" /dev/null && { echo "bench_shard: the single run wrote nothing" >&2; exit 1; }
    shards "$SMALL" build/bench-noop5
    rm -f "$D/merged.db"
    t=$(now); build/assay merge --db "$D/merged.db" "$D"/shard-*.db 2>/dev/null
    echo "$(now) - $t" | bc >> "$D/merge-db"
    t=$(now); build/assay merge -o "$D/merged.jsonl" --input "$SMALL" "$D"/shard-*.jsonl 2>/dev/null
    echo "$(now) - $t" | bc >> "$D/merge-o"
    r=$((r + 1))
done
RESULTS=$(sqlite3 "$D/merged.db" 'SELECT COUNT(*) FROM results' 2>/dev/null ||
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM results").fetchone()[0])' "$D/merged.db")
A=$(median < "$D/one"); B=$(median < "$D/sharded"); M=$(median < "$D/merge-db"); O=$(median < "$D/merge-o")
echo
echo "scale-out: $N shards at once (-j 1 each) against one process (-j $CORES), $CORPUS, median of $RUNS"
awk -v a="$A" -v b="$B" -v n="$N" -v c="$CORES" 'BEGIN {
    printf "  one process %.2f s, %d shards %.2f s: %.2fx the one process'"'"'s wall time on %d cores\n", a, n, b, b / a, c }'
awk -v m="$M" -v o="$O" -v r="$RESULTS" 'BEGIN {
    printf "  merge of %d results: --db %.2f s (%.2f s per million), -o %.2f s (%.2f s per million)\n", r, m, m * 1e6 / r, o, o * 1e6 / r }'
