#!/bin/sh
# `make bench`: the speed of assay against the limit of its input path and against the
# Python a team would otherwise write, side by side in one invocation. Never part of
# `make test`. Each row is the median of RUNS runs; rows are measured interleaved (run 1 of
# every row, then run 2...), so that a noisy neighbour slows all rows alike.
#   BENCH_MB=200 RUNS=5 scripts/bench.sh
# Prints one table and writes it as JSON to build/bench.json.
set -eu
cd "$(dirname "$0")/.."
MB=${BENCH_MB:-200}
RUNS=${RUNS:-5}
CORES=$(nproc)
CORPUS=build/bench-${MB}mb.jsonl
BIG=build/bench-$((MB * 4))mb.jsonl
[ -f "$CORPUS" ] || scripts/gen_traces.py --size-mb "$MB" --seed 7 > "$CORPUS"
[ -f "$BIG" ] || cat "$CORPUS" "$CORPUS" "$CORPUS" "$CORPUS" > "$BIG"
# The corpus in one part per core, for the row that runs the C reference once per part at
# once: what this machine's cores give for independent copies of the same work.
PARTS=build/bench-${MB}mb.part
[ -f "build/bench-${MB}mb.in-$CORES-parts" ] || {
    rm -f "$PARTS"[0-9]* build/bench-"${MB}"mb.in-*-parts
    split -n "l/$CORES" -d "$CORPUS" "$PARTS"
    touch "build/bench-${MB}mb.in-$CORES-parts"
}
TRACES=$(wc -l < "$CORPUS")
BYTES=$(wc -c < "$CORPUS")
LIBS="lua5.4 libuv libcjson libcurl sqlite3"
# shellcheck disable=SC2046
cc -O2 -o build/bench_floor scripts/bench_floor.c $(pkg-config --cflags --libs libcjson)
# shellcheck disable=SC2046
cc -O2 -std=c11 -o build/bench_c scripts/bench_c.c $(pkg-config --cflags --libs libcjson) -lm
# shellcheck disable=SC2046,SC2086
cc -O2 -std=c11 -D_XOPEN_SOURCE=700 -Ihost -o build/bench_latency scripts/bench_latency.c build/libassay.a \
    $(pkg-config --cflags --libs $LIBS) -lm -lpthread
mkdir -p build/bench-noop
echo 'return { name = "noop", evaluate = function() return 1 end }' > build/bench-noop/noop.lua

# The rows: a key, a label, and the command (run with $1 = the corpus).
ROWS="floor c cn python noop j1 jn store"
label() {
    case $1 in
    floor) echo "floor: read + cJSON" ;;
    c) echo "C reference, 5 metrics" ;;
    cn) echo "C reference, $CORES processes" ;;
    python) echo "python3, 5 metrics" ;;
    noop) echo "assay, noop plugin -j 1" ;;
    j1) echo "assay, 5 evaluators -j 1" ;;
    jn) echo "assay, 5 evaluators -j $CORES" ;;
    store) echo "  + run store -j $CORES" ;;
    esac
}
run_row() { # key corpus -> appends "wall rss" to build/bench.KEY
    rm -f build/bench-store.db build/bench-store.db-wal build/bench-store.db-shm
    # shellcheck disable=SC2016 # cn's script is expanded by the sh it runs in
    case $1 in
    floor) set -- "$1" build/bench_floor "$2" ;;
    c) set -- "$1" build/bench_c "$2" ;;
    cn) set -- "$1" sh -c 'pids=; for p in "$0"[0-9]*; do build/bench_c "$p" >/dev/null & pids="$pids $!"; done
            for q in $pids; do wait "$q" || exit 1; done' "$PARTS" ;;
    python) set -- "$1" python3 scripts/bench_python.py "$2" ;;
    noop) set -- "$1" build/assay run -j 1 --no-db -e build/bench-noop -o /dev/null "$2" ;;
    j1) set -- "$1" build/assay run -j 1 --no-db -o /dev/null "$2" ;;
    jn) set -- "$1" build/assay run -j "$CORES" --no-db -o /dev/null "$2" ;;
    store) set -- "$1" build/assay run -j "$CORES" --db build/bench-store.db -o /dev/null "$2" ;;
    esac
    key=$1
    shift
    /usr/bin/time -f "%e %M" -o build/bench.one "$@" >/dev/null 2>build/bench.err || {
        echo "bench: $key failed:" >&2
        cat build/bench.err >&2
        exit 1
    }
    cat build/bench.one >> "build/bench.$key"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "corpus: $CORPUS ($TRACES traces, $((BYTES / 1000000)) MB), median of $RUNS runs, $CORES cores"
echo "checking that python, the C reference and assay compute the same numbers..."
build/assay run -j "$CORES" --no-db --no-timing -o build/bench-assay.jsonl "$CORPUS" 2>/dev/null || true
build/bench_c "$CORPUS" > build/bench-c.jsonl
if ! cmp -s build/bench-c.jsonl build/bench-assay.jsonl; then
    echo "bench: the C reference's records differ from assay's (build/bench-c.jsonl, build/bench-assay.jsonl):" >&2
    diff build/bench-c.jsonl build/bench-assay.jsonl | head -6 >&2
    exit 1
fi
echo "C reference vs assay: $(wc -l < build/bench-c.jsonl) records, byte for byte identical"
python3 scripts/bench_python.py --check build/bench-assay.jsonl "$CORPUS" 2>build/bench-check.txt || {
    cat build/bench-check.txt >&2
    exit 1
}
CHECK=$(tail -1 build/bench-check.txt)
echo "$CHECK"

for key in $ROWS; do : > "build/bench.$key"; done
i=0
while [ $i -lt "$RUNS" ]; do
    for key in $ROWS; do run_row "$key" "$CORPUS"; done
    i=$((i + 1))
done
/usr/bin/time -f "%e %M" -o build/bench.big build/assay run -j "$CORES" --no-db -o /dev/null "$BIG" 2>/dev/null || true
LAT=$(build/bench_latency plugins "$CORPUS" 3000 1)
LATN=$(build/bench_latency plugins "$CORPUS" 3000 "$CORES") # each trace shared by the idle workers

wall() { cut -d' ' -f1 "build/bench.$1" | median; }
rss() { cut -d' ' -f2 "build/bench.$1" | median; }
FLOOR=$(wall floor)
PY=$(wall python)
printf '\n%-28s %9s %11s %9s %9s %9s %9s\n' "" "wall s" "traces/s" "MB/s" "÷ floor" "× python" "RSS MB"
json="{\"corpus\":\"$CORPUS\",\"traces\":$TRACES,\"bytes\":$BYTES,\"runs\":$RUNS,\"cores\":$CORES,"
json="$json\"machine\":\"$(uname -m) $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\",\"rows\":["
sep=""
for key in $ROWS; do
    w=$(wall "$key")
    r=$(rss "$key")
    line=$(awk -v w="$w" -v r="$r" -v t="$TRACES" -v b="$BYTES" -v f="$FLOOR" -v p="$PY" 'BEGIN {
        printf "%9.2f %11.0f %9.1f %9.3f %9.2f %9.1f", w, t / w, b / 1e6 / w, f / w, p / w, r / 1024 }')
    printf '%-28s %s\n' "$(label "$key")" "$line"
    set -- $line
    json="$json$sep{\"row\":\"$key\",\"label\":\"$(label "$key" | sed 's/^ *//')\",\"wall_s\":$1,\"traces_per_s\":$2,"
    json="$json\"mb_per_s\":$3,\"ratio_to_floor\":$4,\"ratio_to_python\":$5,\"rss_mb\":$6}"
    sep=","
done
BIG_RSS=$(awk '{printf "%.1f", $2 / 1024}' build/bench.big)
BIG_WALL=$(awk '{print $1}' build/bench.big)
set -- $LATN
LATN_JSON="{\"workers\":$CORES,\"traces\":$1,\"median\":$2,\"p95\":$3,\"shared\":$4}"
LATN_TEXT="$CORES workers (each trace shared by the idle ones, $4 of $1): median $2 us, p95 $3 us"
set -- $LAT
echo
echo "assay -j $CORES on the 4x corpus ($BIG): ${BIG_WALL} s, peak RSS ${BIG_RSS} MB"
echo "libassay, one trace of 5-20 KB through the five evaluators: 1 worker: median $2 us, p95 $3 us ($1 traces);"
echo "  $LATN_TEXT"
J1=$(wall j1)
JN=$(wall jn)
CREF=$(wall c)
# A round runs its rows one after the other, so a round's two rows ran on the same
# machine state; the ratio of two medians may take them from different rounds (on a
# machine whose cores change speed from minute to minute, far apart).
round_ratios() { # a b -> each round's a/b, one a line
    paste -d' ' "build/bench.$1" "build/bench.$2" | awk '{printf "%.2f\n", $1 / $3}'
}
rounds() { # a b -> "r1 r2 ...x (median m)"
    echo "$(round_ratios "$1" "$2" | tr '\n' ' ' | sed 's/ $//')x (median $(round_ratios "$1" "$2" | median)x)"
}
share_rounds() { # each round's (-j 1 / -j N) / (C / C on N parts at once), one a line
    paste -d' ' build/bench.j1 build/bench.jn build/bench.c build/bench.cn |
        awk '{printf "%.2f\n", ($1 / $3) / ($5 / $7)}'
}
json_rounds() { # a b -> [r1,r2,...]
    echo "[$(round_ratios "$1" "$2" | tr '\n' ',' | sed 's/,$//')]"
}
echo "-j 1 against the C reference: $(awk -v a="$J1" -v c="$CREF" 'BEGIN {printf "%.0f%%", 100 * c / a}') of its speed (target 50%);" \
    "against python: $(awk -v a="$J1" -v p="$PY" 'BEGIN {printf "%.1f", p / a}')x per core (target 10x)"
echo "  against python round by round: $(rounds python j1)"
echo "-j $CORES / -j 1: $(round_ratios j1 jn | median)x, the median of the rounds (target 1.8x);" \
    "the ratio of the rows' medians: $(awk -v a="$J1" -v b="$JN" 'BEGIN {printf "%.2f", a / b}')x"
echo "  round by round: $(rounds j1 jn)"
# What the machine itself gives: the C reference once per part, all at once, against once
# over the whole corpus. No state is shared between those processes, so what they lose is
# the machine's (shared caches, memory, cores a hypervisor gives less than whole).
echo "  the machine's own, $CORES C processes on 1/$CORES each / one C process: $(rounds c cn)"
echo "  assay's share of it, round by round: $(share_rounds | tr '\n' ' ' | sed 's/ $//') (median $(share_rounds | median))"
json="$json],\"big_corpus\":{\"path\":\"$BIG\",\"wall_s\":$BIG_WALL,\"rss_mb\":$BIG_RSS},"
json="$json\"latency_us\":{\"workers\":1,\"traces\":$1,\"median\":$2,\"p95\":$3},\"latency_all_cores_us\":$LATN_JSON,"
json="$json\"rounds\":{\"python_over_j1\":$(json_rounds python j1),\"j1_over_jn\":$(json_rounds j1 jn),"
json="$json\"c_over_cn\":$(json_rounds c cn),\"share_of_machine\":[$(share_rounds | tr '\n' ',' | sed 's/,$//')]},"
json="$json\"check\":\"$CHECK\"}"
echo "$json" > build/bench.json
echo "written: build/bench.json"
