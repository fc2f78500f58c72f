# Crash safety: a 10,000-trace run (two input files, malformed lines mixed in) is killed
# with SIGKILL at random points, with torn writes simulated between kills, and resumed with
# --resume until it completes; the output must equal an uninterrupted run's byte for byte.
# Also: SIGINT stops cleanly and resumes; --resume refuses what it cannot continue.
# Under ASan+UBSan (3x slower) the same run is done on 4,000 traces: the paths are the same
# and the plain build does the 10,000.
. "$(dirname "$0")/lib.sh"
case "${ASSAY_BUILD:-build}" in *asan*) count=4000 ;; *) count=10000 ;; esac
python3 scripts/gen_traces.py --count $count --seed 11 --messy >"$TMP/all.jsonl"
head -$((count * 2 / 5)) "$TMP/all.jsonl" >"$TMP/a.jsonl"
tail -n +$((count * 2 / 5 + 1)) "$TMP/all.jsonl" >"$TMP/b.jsonl"
IN="$TMP/a.jsonl $TMP/b.jsonl"
OUT=$TMP/out.jsonl
# shellcheck disable=SC2086
"$ASSAY" run -j 2 --no-timing $IN -o "$TMP/ref.jsonl" 2>/dev/null
ref_rc=$?
check "the uninterrupted run completes (exit 3: the malformed lines)" 3 $ref_rc
check "and leaves no progress journal" "no" "$([ -e "$TMP/ref.jsonl.progress" ] && echo yes || echo no)"

# Waits until run PID has written BYTES to $OUT, or has ended. Signals go by the output's
# size, not by time, so that a busy machine cannot let a run end before its signal.
wait_for_output() {
    while kill -0 "$1" 2>/dev/null && [ "$(stat -c %s "$OUT" 2>/dev/null || echo 0)" -lt "$2" ]; do sleep 0.01; done
}

# kill points: when the output reaches a seeded spread of sizes (so that every kill lands
# mid-run, early or late), plus a random delay of up to 50 ms
ref_size=$(wc -c <"$TMP/ref.jsonl")
points=$(awk 'BEGIN { srand(7); for (i = 0; i < 6; i++) printf "%d:%.3f ", (8 + i * 15 + rand() * 10), rand() * 0.05 }')
resume=""
killed=0
round=0
for p in $points; do
    round=$((round + 1))
    target=$((ref_size * ${p%:*} / 100))
    # shellcheck disable=SC2086
    "$ASSAY" run -j 2 --no-timing $resume $IN -o "$OUT" 2>>"$TMP/log" &
    pid=$!
    wait_for_output $pid $target
    sleep "${p#*:}"
    if kill -9 $pid 2>/dev/null; then killed=$((killed + 1)); fi
    wait $pid 2>/dev/null
    resume=--resume
    case $round in
    2) printf '{"trace_id":"torn-by-power-lo' >>"$OUT" ;;                      # a torn last line
    4) [ -e "$OUT.progress" ] && printf 'C 0 99' >>"$OUT.progress" ;;           # a torn checkpoint
    5) [ -s "$OUT" ] && truncate -s -7 "$OUT" ;;                                # lost tail after a checkpoint
    esac
done
check "every run was killed mid-way (not finished before the kill)" 6 $killed
# shellcheck disable=SC2086
"$ASSAY" run -j 2 --no-timing --resume $IN -o "$OUT" 2>>"$TMP/log"
check "the last --resume completes with the same exit status" $ref_rc $?
cmp "$OUT" "$TMP/ref.jsonl" >"$TMP/cmp" 2>&1
check "after $killed kills, torn writes and resumes the output equals the uninterrupted run byte for byte" 0 $?
check "every trace has exactly one set of records" "$(wc -l <"$TMP/ref.jsonl")" "$(wc -l <"$OUT")"
check "a run completed with --resume keeps its journal, marked finished (status 3)" "F 3" \
    "$(tail -1 "$OUT.progress" | awk '{ print $1, $5 }')"
# idempotent: a scheduler that reruns the finished task's command changes nothing
before=$(md5sum <"$OUT")
# shellcheck disable=SC2086
"$ASSAY" run -j 2 --no-timing --resume $IN -o "$OUT" 2>"$TMP/again"
check "the same command again exits with the finished run's status" 3 $?
check_contains "and says there is nothing to do" "$TMP/again" "this run finished already (exit status 3); nothing to do"
check "and leaves the output as it was" "$before" "$(md5sum <"$OUT")"
# idempotent from the first attempt: --resume with nothing there starts the run
rm -f "$OUT" "$OUT.progress"
# shellcheck disable=SC2086
"$ASSAY" run -j 2 --no-timing --resume $IN -o "$OUT" 2>/dev/null
check "--resume with nothing started runs from the start (exit 3)" 3 $?
cmp -s "$OUT" "$TMP/ref.jsonl"
check "and writes what the uninterrupted run wrote" 0 $?
check_contains "a resume says where it continues" "$TMP/log" "assay: resuming $OUT after line"

# SIGINT: finish what is in flight, flush, exit 130, keep the journal; --resume completes
# (a background job of sh starts with SIGINT ignored until assay installs its handler, so
# the signal waits for output)
rm -f "$OUT"
# shellcheck disable=SC2086
"$ASSAY" run -j 2 --no-timing $IN -o "$OUT" 2>"$TMP/int.log" &
pid=$!
wait_for_output $pid $((ref_size / 3))
kill -INT $pid
wait $pid
check "SIGINT exits 130" 130 $?
check "and leaves whole lines only" "" "$(tail -c 1 "$OUT" | tr -d '\n')"
check "and the journal to resume from" "yes" "$([ -e "$OUT.progress" ] && echo yes || echo no)"
# shellcheck disable=SC2086
"$ASSAY" run -j 2 --no-timing --resume $IN -o "$OUT" 2>/dev/null
cmp -s "$OUT" "$TMP/ref.jsonl"
check "the resumed run equals the uninterrupted one" 0 $?

# an output that is not a regular file (a FIFO, /dev/null) has nothing to resume: no journal
# beside it, no failing fdatasync
mkfifo "$TMP/fifo"
timeout 60 cat "$TMP/fifo" >"$TMP/from-fifo" & # a run that dies before opening it: no hang
reader=$!
"$ASSAY" run -j 2 --no-timing "$TMP/a.jsonl" -o "$TMP/fifo" 2>"$TMP/e"
wait $reader
check "a run into a FIFO leaves no progress journal beside it" "no" "$([ -e "$TMP/fifo.progress" ] && echo yes || echo no)"
check "and warns of nothing about it" "" "$(grep progress "$TMP/e")"
head -c "$(wc -c <"$TMP/from-fifo")" "$TMP/ref.jsonl" | cmp -s - "$TMP/from-fifo"
check "and writes the same records as into a file" 0 $?
"$ASSAY" run --no-timing --resume "$TMP/a.jsonl" -o "$TMP/fifo" 2>"$TMP/e"
check "--resume into a FIFO is refused (exit 2)" 2 $?

# what --resume refuses
"$ASSAY" run --no-timing "$TMP/a.jsonl" -o "$OUT" 2>/dev/null
"$ASSAY" run --no-timing --resume "$TMP/a.jsonl" -o "$OUT" 2>"$TMP/e"
check "an output finished without --resume (no journal) is refused (exit 2)" 2 $?
check_contains "and says why" "$TMP/e" "the run finished without --resume, or was not resumable; run without --resume to start over"
rm -f "$OUT"
"$ASSAY" run --no-timing --resume "$TMP/a.jsonl" -o "$OUT" 2>/dev/null
echo '{"trace_id":"x"}' >>"$OUT"
"$ASSAY" run --no-timing --resume "$TMP/a.jsonl" -o "$OUT" 2>"$TMP/e"
check "a finished output changed since is refused (exit 2)" 2 $?
check_contains "naming the change" "$TMP/e" "it was changed since; run without --resume to score again"
rm -f "$OUT"
"$ASSAY" run --no-timing "$TMP/a.jsonl" -o "$OUT" 2>/dev/null &
pid=$!; wait_for_output $pid $((ref_size / 10)); kill -9 $pid; wait $pid 2>/dev/null
"$ASSAY" run --no-timing --resume -e plugins/query_diversity.lua "$TMP/a.jsonl" -o "$OUT" 2>"$TMP/e"
check "resuming with other evaluators is refused" 2 $?
check_contains "naming the reason" "$TMP/e" "was written by a run with other inputs, evaluators or params; run without --resume to start over"
"$ASSAY" run --no-timing --resume -p query_diversity.threshold=0.9 "$TMP/a.jsonl" -o "$OUT" 2>/dev/null
check "and with other params" 2 $?
"$ASSAY" run --resume "$TMP/a.jsonl" 2>"$TMP/e"
check "--resume without -o is refused" 2 $?
"$ASSAY" run --resume -o "$OUT" - <"$TMP/a.jsonl" 2>"$TMP/e"
check_contains "--resume of standard input is refused" "$TMP/e" "--resume cannot continue standard input"
done_testing
