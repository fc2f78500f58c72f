# Scale-out: --shard I/N scores exactly the traces the definition in assay.h puts in shard
# I (checked against a Python rendering of it), shards are disjoint and cover the input,
# input errors land in one shard each, --shard composes with --sample; the indexes come from
# Slurm's and Kubernetes' variables; assay merge joins stores and outputs into what a single
# run makes, and refuses shards that are not one run's.
. "$(dirname "$0")/lib.sh"
sql() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute(sys.argv[2]): print("|".join("" if v is None else str(v) for v in row))' "$DB" "$1"; }

python3 scripts/gen_traces.py --count 2000 --seed 23 --messy >"$TMP/in.jsonl"
IN=$TMP/in.jsonl

# The definition: FNV-1a 64 of "shard:ID", fmix64, floor(N x top 53 bits as a fraction);
# a line that is not a trace (no string id) goes to line mod N.
expected() { # file N I: the trace ids and "line L" of bad lines shard I must hold
    python3 -c 'import json, sys
M = 2**64
def shard(i, n):
    h = 14695981039346656037
    for c in ("shard:" + i).encode(): h = ((h ^ c) * 1099511628211) % M
    h ^= h >> 33; h = (h * 0xff51afd7ed558ccd) % M; h ^= h >> 33; h = (h * 0xc4ceb9fe1a85ec53) % M; h ^= h >> 33
    return int((h >> 11) / 2**53 * n)
n, k = int(sys.argv[2]), int(sys.argv[3])
for no, raw in enumerate(open(sys.argv[1], "rb"), 1):
    if not raw.strip(b" \t\r\n"): continue
    try:
        l = raw.decode("utf-8")
        t = json.loads(l) if "\\u0000" not in l and "\0" not in l else None
        i = t.get("id") if isinstance(t, dict) else None
    except ValueError:
        i = None
    if isinstance(i, str):
        if shard(i, n) == k: print(i)
    elif no % n == k: print("line %d" % no)' "$@" | sort -u
}
held() { python3 -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    print(r["trace_id"] if r["trace_id"] is not None else "line %d" % r["line"])' "$1" | sort -u; }

"$ASSAY" run -j 2 --no-timing --db "$TMP/single.db" "$IN" -o "$TMP/single.jsonl" 2>/dev/null
check "the single run completes (exit 3: malformed lines)" 3 $?
total=0
for i in 0 1 2 3; do
    "$ASSAY" run -j 2 --no-timing --shard $i/4 --db "$TMP/shard-$i.db" --resume "$IN" -o "$TMP/shard-$i.jsonl" \
        2>"$TMP/shard-$i.log"
    rc=$?
    [ "$(expected "$IN" 4 $i | md5sum)" = "$(held "$TMP/shard-$i.jsonl" | md5sum)" ] && same=yes || same=no
    check "shard $i/4 (exit $rc) holds exactly the traces and bad lines the definition gives it" yes $same
    total=$((total + $(wc -l <"$TMP/shard-$i.jsonl")))
done
check "the shards' records add up to the single run's" "$(wc -l <"$TMP/single.jsonl")" "$total"
cat "$TMP"/shard-*.jsonl | sort >"$TMP/union"
sort "$TMP/single.jsonl" | cmp -s - "$TMP/union"
check "and are the single run's records, each once" 0 $?
check_contains "a shard says what it scored" "$TMP/shard-1.log" "shard 1/4: "
sizes=$(for i in 0 1 2 3; do expected "$IN" 4 $i | wc -l; done | sort -n | sed -n '1p;$p' | tr '\n' ' ')
min=${sizes% * }; max=$(echo "$sizes" | awk '{ print $2 }')
check "shards are balanced (smallest/largest of 4 over 2,000 traces above 0.8)" yes \
    "$(awk -v a="$min" -v b="$max" 'BEGIN { print (a / b > 0.8) ? "yes" : "no" }')"

# --shard composes with --sample: the shards of a sample are the sample
"$ASSAY" run --no-db --no-timing --sample 0.3 --seed 4 "$IN" -o "$TMP/sample.jsonl" 2>/dev/null
for i in 0 1 2; do "$ASSAY" run --no-db --no-timing --sample 0.3 --seed 4 --shard $i/3 "$IN" 2>/dev/null; done |
    sort >"$TMP/sample_union"
sort "$TMP/sample.jsonl" | cmp -s - "$TMP/sample_union"
check "the shards of a sample together are the sample" 0 $?

# the index and count from the schedulers' variables
from_env() { env -u SLURM_ARRAY_TASK_ID -u JOB_COMPLETION_INDEX -u ASSAY_SHARD "$@" "$ASSAY" run --no-db --no-timing \
    "$IN" 2>&1 >/dev/null | grep -o 'shard [0-9]*/[0-9]*'; }
check "ASSAY_SHARD=2/4 without a flag" "shard 2/4" "$(from_env ASSAY_SHARD=2/4)"
check "--shard auto in a Slurm array (--array=1-4: indexes counted from its lowest)" "shard 2/4" \
    "$(env SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=4 "$ASSAY" run --shard auto --no-db \
       --no-timing "$IN" 2>&1 >/dev/null | grep -o 'shard [0-9]*/[0-9]*')"
check "--shard auto/4 in a Kubernetes Indexed Job" "shard 1/4" \
    "$(env -u SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX=1 "$ASSAY" run --shard auto/4 --no-db --no-timing "$IN" 2>&1 \
       >/dev/null | grep -o 'shard [0-9]*/[0-9]*')"
env -u SLURM_ARRAY_TASK_ID JOB_COMPLETION_INDEX=1 "$ASSAY" run --shard auto --no-db "$IN" >/dev/null 2>"$TMP/e"
check "--shard auto without a count is refused (exit 2)" 2 $?
check_contains "and says what to give" "$TMP/e" "no shard count (give auto/N, or run in a Slurm array)"
"$ASSAY" run --shard 4/4 --no-db "$IN" >/dev/null 2>"$TMP/e"
check "--shard 4/4 is refused (exit 2)" 2 $?
check_contains "and says shards count from 0" "$TMP/e" "the index must be below the count (shards are numbered from 0)"
"$ASSAY" run --shard 1/4 --follow --no-db "$IN" >/dev/null 2>"$TMP/e"
check "--shard with --follow is refused (exit 2)" 2 $?

# merge -o: the outputs in input order, byte for byte (lines sharing an id included: --messy
# repeats some)
"$ASSAY" merge -o "$TMP/merged.jsonl" --input "$IN" "$TMP/shard-2.jsonl" "$TMP/shard-0.jsonl" "$TMP/shard-3.jsonl" \
    "$TMP/shard-1.jsonl" 2>"$TMP/e"
check "merge -o of the four outputs (in any order) exits 0" 0 $?
cmp -s "$TMP/merged.jsonl" "$TMP/single.jsonl"
check "and equals the single run's output byte for byte" 0 $?
"$ASSAY" merge -o "$TMP/m3.jsonl" --input "$IN" "$TMP/shard-0.jsonl" "$TMP/shard-1.jsonl" "$TMP/shard-2.jsonl" 2>"$TMP/e"
check "merge -o of three of four outputs fails (exit 2)" 2 $?
"$ASSAY" merge -o "$TMP/m5.jsonl" --input "$IN" "$TMP"/shard-*.jsonl "$TMP/shard-1.jsonl" 2>"$TMP/e"
check "merge -o with a shard given twice fails (exit 2)" 2 $?
"$ASSAY" merge -o "$TMP/mx.jsonl" "$TMP"/shard-*.jsonl 2>"$TMP/e"
check_contains "merge -o without --input says why it needs it" "$TMP/e" "records carry no line numbers"

# merge --db: one run like the single one, in a store that holds it
DB=$TMP/single.db
"$ASSAY" merge --db "$DB" --label merged "$TMP"/shard-*.db 2>"$TMP/e"
check "merge --db of the four stores exits 0" 0 $?
check "the merged run is done, with the single run's trace count and 4 shards" "done|$(sql "SELECT traces FROM runs WHERE id = 1")|4" \
    "$(sql "SELECT status, traces, shard_count FROM runs WHERE label = 'merged'")"
check "its results equal the single run's, row for row" "0|0" \
    "$(sql "SELECT (SELECT COUNT(*) FROM (SELECT file, line, seq, trace_id, evaluator, step, score, pass, label, error_kind,
        error, grp, details FROM results WHERE run_id = 1 EXCEPT SELECT file, line, seq, trace_id, evaluator, step, score,
        pass, label, error_kind, error, grp, details FROM results WHERE run_id = 2)),
        (SELECT COUNT(*) FROM results WHERE run_id = 1) - (SELECT COUNT(*) FROM results WHERE run_id = 2)")"
check "its evaluators' totals too" "0" \
    "$(sql "SELECT COUNT(*) FROM (SELECT name, hash, params, records, scored, round(mean, 9), passed, pass_n, errors
        FROM run_evaluators WHERE run_id = 1 EXCEPT SELECT name, hash, params, records, scored, round(mean, 9), passed,
        pass_n, errors FROM run_evaluators WHERE run_id = 2)")"
check "it keeps the bodies of the same worst traces (64)" "64|64|0" \
    "$(sql "SELECT (SELECT COUNT(body) FROM traces WHERE run_id = 1), (SELECT COUNT(body) FROM traces WHERE run_id = 2),
        (SELECT COUNT(*) FROM traces a JOIN traces b ON a.file = b.file AND a.line = b.line AND b.run_id = 2
         WHERE a.run_id = 1 AND (a.body IS NULL) <> (b.body IS NULL))")"
"$ASSAY" compare --db "$DB" 1 merged >"$TMP/cmp" 2>&1
check "compare of the single run and the merged one exits 0" 0 $?
same=$(grep -c ': no significant change$' "$TMP/cmp")
ties=$(grep -c 'win/tie/loss of B: 0.0% / 100.0% / 0.0%' "$TMP/cmp")
none=$(grep -c '^0 significant regressions$' "$TMP/cmp")
alike=$(grep -c 'nothing else: the same evaluators' "$TMP/cmp")
check "and finds no difference: five evaluators unchanged, every pair a tie, nothing else changed" "5 5 1 1" \
    "$same $ties $none $alike"
"$ASSAY" report --db "$DB" merged -o "$TMP/merged.html" >/dev/null 2>&1
check "report of the merged run exits 0" 0 $?

# what merge --db refuses
"$ASSAY" merge --db "$TMP/m.db" "$TMP/shard-0.db" "$TMP/shard-1.db" "$TMP/shard-3.db" 2>"$TMP/e"
check "a missing shard is refused (exit 2)" 2 $?
check_contains "and named" "$TMP/e" "1 of 4 shards missing: 2"
"$ASSAY" merge --db "$TMP/m.db" "$TMP"/shard-*.db "$TMP/shard-2.db" 2>"$TMP/e"
check "a shard given twice is refused (exit 2)" 2 $?
check_contains "and named" "$TMP/e" "are both shard 2/4 (a shard given twice?)"
"$ASSAY" run --no-timing --shard 2/4 --db "$TMP/other-2.db" -p query_diversity.threshold=0.9 "$IN" >/dev/null 2>&1
"$ASSAY" merge --db "$TMP/m.db" "$TMP/shard-0.db" "$TMP/shard-1.db" "$TMP/other-2.db" "$TMP/shard-3.db" 2>"$TMP/e"
check "a shard run with other params is refused (exit 2)" 2 $?
check_contains "showing the difference" "$TMP/e" "were run with other settings:"
"$ASSAY" run --no-timing --shard 1/2 --db "$TMP/half-1.db" "$IN" >/dev/null 2>&1
"$ASSAY" merge --db "$TMP/m.db" "$TMP/shard-0.db" "$TMP/half-1.db" 2>"$TMP/e"
check "a shard of another count is refused (exit 2)" 2 $?
check_contains "naming both counts" "$TMP/e" "is shard 1 of 2, but"
"$ASSAY" run --no-timing --db "$TMP/plain.db" "$IN" >/dev/null 2>&1
"$ASSAY" merge --db "$TMP/m.db" "$TMP/plain.db" 2>"$TMP/e"
check_contains "a store without a sharded run is named" "$TMP/e" "holds no sharded run"
check "nothing was merged into the destination by the refused merges" "0" \
    "$(DB=$TMP/m.db sql "SELECT COUNT(*) FROM runs" 2>/dev/null || echo 0)"
done_testing
