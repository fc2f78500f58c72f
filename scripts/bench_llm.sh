#!/bin/sh
# `make bench` (LLM part): judge calls against tests/llm_server.py on loopback.
#   1. CALLS judge calls (default 10000) at LATENCY ms (default 200) with --max-inflight
#      INFLIGHT (default 256): wall time against the ideal CALLS * LATENCY / INFLIGHT, and
#      peak RSS;
#   2. a mixed run on the same traces: the five CPU-bound evaluators alone, the judge alone,
#      and both in one run. If neither starves the other, both-in-one takes about as long as
#      the slower of the two, not their sum;
#   3. `assay pairwise` of two systems of CALLS traces each: 2 x CALLS judge calls (both
#      orders), against the ideal 2 x CALLS * LATENCY / INFLIGHT.
# Each figure is the median of RUNS runs (default 3), taken side by side.
set -eu
cd "$(dirname "$0")/.."
CALLS=${CALLS:-10000}
LATENCY=${LATENCY:-200}
INFLIGHT=${INFLIGHT:-256}
RUNS=${RUNS:-3}
CORES=$(nproc)
CORPUS=build/bench-llm-$CALLS.jsonl
[ -f "$CORPUS" ] || scripts/gen_traces.py --count "$CALLS" --seed 11 > "$CORPUS"
python3 tests/llm_server.py serve > build/bench-llm.port 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null' EXIT
for _ in $(seq 50); do [ -s build/bench-llm.port ] && break; sleep 0.1; done
PORT=$(awk '{print $2}' build/bench-llm.port)
python3 tests/llm_server.py ctl "$PORT" /admin/faults "{\"latency_ms\": $LATENCY}" >/dev/null
LLM="--llm-url http://127.0.0.1:$PORT/v1 --llm-model bench --no-cache --max-inflight $INFLIGHT"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # label args...
    label=$1; shift
    : > build/bench.times
    i=0
    while [ "$i" -lt "$RUNS" ]; do
        /usr/bin/time -f "%e %M" -o build/bench.one build/assay run --no-db "$@" "$CORPUS" -o /dev/null 2>build/bench.err || true
        cat build/bench.one >> build/bench.times
        i=$((i + 1))
    done
    wall=$(cut -d' ' -f1 build/bench.times | median)
    rss=$(cut -d' ' -f2 build/bench.times | median)
    printf '%-34s %8.2f s %9.0f traces/s %8.1f MB RSS\n' "$label" "$wall" "$(echo "$CALLS / $wall" | bc -l)" \
        "$(echo "$rss / 1024" | bc -l)"
    LAST=$wall
}
ideal=$(echo "$CALLS * $LATENCY / 1000 / $INFLIGHT" | bc -l)
echo "LLM judge: $CALLS calls, ${LATENCY} ms server latency, --max-inflight $INFLIGHT, $CORES cores, median of $RUNS"
measure "llm_judge alone -j $CORES" -j "$CORES" -e plugins/llm/llm_judge.lua $LLM
judge=$LAST
tail -1 build/bench.err
printf '%-34s %8.2f s   (wall / ideal = %.2f)\n' "ideal ($CALLS x $LATENCY ms / $INFLIGHT)" "$ideal" \
    "$(echo "$judge / $ideal" | bc -l)"
measure "five CPU evaluators -j $CORES" -j "$CORES"
cpu=$LAST
measure "five + llm_judge in one run" -j "$CORES" -e plugins -e plugins/llm/llm_judge.lua $LLM
mixed=$LAST
slower=$(echo "if ($judge > $cpu) $judge else $cpu" | bc -l)
printf 'mixed / slower of the two = %.2f   (1.0: neither starves; %.2f would be their sum)\n' \
    "$(echo "$mixed / $slower" | bc -l)" "$(echo "($judge + $cpu) / $slower" | bc -l)"

# pairwise: two systems' answers to the same CALLS questions, each pair asked in both orders
for name in a b; do
    [ -f "build/bench-pairwise-$name-$CALLS.jsonl" ] || python3 -c '
import json, sys
name, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    print(json.dumps({"id": "p%d" % i, "input": "question %d" % i,
                      "output": "%s answer %d <<reply: {\"winner\": %d}>>" % (name, i, 1 if name == "a" else 2)}))' \
        "$name" "$CALLS" >"build/bench-pairwise-$name-$CALLS.jsonl"
done
: > build/bench.times
i=0
while [ "$i" -lt "$RUNS" ]; do
    /usr/bin/time -f "%e %M" -o build/bench.one build/assay pairwise "build/bench-pairwise-a-$CALLS.jsonl" \
        "build/bench-pairwise-b-$CALLS.jsonl" -e plugins/pairwise/pairwise_judge.lua $LLM >/dev/null 2>&1 || true
    cat build/bench.one >> build/bench.times
    i=$((i + 1))
done
wall=$(cut -d' ' -f1 build/bench.times | median)
rss=$(cut -d' ' -f2 build/bench.times | median)
pair_ideal=$(echo "2 * $ideal" | bc -l)
printf '%-34s %8.2f s %8.1f MB RSS   (ideal %.2f s: wall / ideal = %.2f)\n' "pairwise, $CALLS pairs x 2 orders" "$wall" \
    "$(echo "$rss / 1024" | bc -l)" "$pair_ideal" "$(echo "$wall / $pair_ideal" | bc -l)"
