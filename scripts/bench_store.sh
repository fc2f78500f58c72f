#!/bin/sh
# `make bench` (store part): what the run store costs where it costs most, many small
# traces with random (UUID-like) ids through five no-op plugins, so that the store's one
# row per result is weighed against almost no evaluation. `--no-db` and the store are
# measured interleaved, RUNS times each (default 3), at -j all cores; median wall times.
# The 200 MB corpus of scripts/bench.sh gives the cost with real evaluators ("+ run store").
set -eu
cd "$(dirname "$0")/.."
COUNT=${STORE_TRACES:-300000}
RUNS=${RUNS:-3}
CORES=$(nproc)
CORPUS=build/bench-store-$COUNT.jsonl
[ -f "$CORPUS" ] || python3 -c 'import json, random, sys
rng = random.Random(7)
for i in range(int(sys.argv[1])):
    print(json.dumps({"id": "%032x" % rng.getrandbits(128), "input": "q %d" % i, "output": "a %d" % i,
                      "metadata": {"segment": rng.choice("abc")}, "steps": []}))' "$COUNT" > "$CORPUS"
mkdir -p build/bench-noop5
for n in 1 2 3 4 5; do
    echo "return { name = \"noop$n\", evaluate = function() return 1 end }" > "build/bench-noop5/noop$n.lua"
done
DB=build/bench-store-small.db
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
: > build/bench.small-nodb
: > build/bench.small-db
i=0
while [ "$i" -lt "$RUNS" ]; do
    /usr/bin/time -f "%e" -a -o build/bench.small-nodb \
        build/assay run -j "$CORES" --no-db -e build/bench-noop5 -o /dev/null "$CORPUS" 2>/dev/null
    rm -f "$DB" "$DB-wal" "$DB-shm"
    /usr/bin/time -f "%e" -a -o build/bench.small-db \
        build/assay run -j "$CORES" --db "$DB" -e build/bench-noop5 -o /dev/null "$CORPUS" 2>/dev/null
    i=$((i + 1))
done
A=$(median < build/bench.small-nodb)
B=$(median < build/bench.small-db)
echo
echo "run store, worst case: $COUNT small traces, random ids, five no-op plugins ($((COUNT * 5)) results), -j $CORES, median of $RUNS"
awk -v a="$A" -v b="$B" -v n="$((COUNT * 5))" 'BEGIN {
    printf "  --no-db %.2f s, store %.2f s: +%.0f%%, %.2f us per result\n", a, b, (b - a) * 100 / a, (b - a) * 1e6 / n }'
