# examples/kubernetes, run as the Job controller runs it. No cluster or container engine runs
# here, so the test does what Kubernetes does with the manifests: each pod of the Indexed Job
# runs the container's command with the manifest's env, JOB_COMPLETION_INDEX set and the claim
# mounted at /data (a directory here); one pod is killed mid-run and started again with the
# same index and command, as a pod that fails is; then the merge Job runs. The merged store
# and output must equal a single process's run of the same input.
. "$(dirname "$0")/lib.sh"
K=examples/kubernetes
python3 -c 'import yaml' 2>/dev/null || { echo "ok 1 # SKIP python3-yaml is not installed"; echo "1..1"; exit 0; }
case "${ASSAY_BUILD:-build}" in
*asan*) # its C paths (shard, kill, resume, merge) run under ASan in test_shard and test_resume
    echo "ok 1 # SKIP with the plain build only: the pods' commands are shard, resume and merge runs"; echo "1..1"; exit 0 ;;
esac

# pod MANIFEST DIR: writes DIR/env (the container's env, as shell assignments) and DIR/cmd
# (its command and args, quoted for the shell), and prints what the Job spec says.
pod() {
    python3 - "$1" "$2" "$TMP/data" <<'PY'
import shlex, sys, yaml
job = yaml.safe_load(open(sys.argv[1]))
spec = job["spec"]; pod = spec["template"]["spec"]; c = pod["containers"][0]
mount = next(m["mountPath"] for m in c["volumeMounts"] if m["name"] == pod["volumes"][0]["name"])
local = lambda v: v.replace(mount, sys.argv[3], 1) if v.startswith(mount) else v
with open(sys.argv[2] + "/env", "w") as f:
    for e in c.get("env", []):
        f.write("export %s=%s\n" % (e["name"], shlex.quote(local(e["value"]))))
with open(sys.argv[2] + "/cmd", "w") as f:
    f.write(shlex.join(c["command"] + c.get("args", [])))
print(job["kind"], spec.get("completionMode", "NonIndexed"), spec.get("completions", 1),
      next((e["value"] for e in c.get("env", []) if e["name"] == "SHARDS"), "-"), pod["restartPolicy"])
PY
}
# run_pod DIR INDEX: the container's command, as the kubelet starts it
run_pod() {
    ( . "$1/env"
      [ -n "${EXTRA_ARGS:-}" ] && export ASSAY_ARGS="$EXTRA_ARGS"
      export JOB_COMPLETION_INDEX="$2" PATH="$TMP/bin:$PATH"
      eval "exec $(cat "$1/cmd")" )
}

mkdir -p "$TMP/score" "$TMP/merge" "$TMP/data" "$TMP/bin"
ln -s "$(cd "$(dirname "$ASSAY")" && pwd)/$(basename "$ASSAY")" "$TMP/bin/assay"
spec=$(pod $K/score-job.yaml "$TMP/score")
check "score-job.yaml is an Indexed Job whose completions equal its SHARDS, pods never restarted in place" \
    "Job Indexed 4 4 Never" "$spec"
check "merge-job.yaml is a Job" "Job NonIndexed 1 - Never" "$(pod $K/merge-job.yaml "$TMP/merge")"
check "both mount the claim of pvc.yaml" "assay-data assay-data assay-data" \
    "$(python3 -c 'import sys, yaml
docs = [yaml.safe_load(open(p)) for p in sys.argv[1:]]
print(docs[0]["metadata"]["name"], *(d["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] for d in docs[1:]))' \
    $K/pvc.yaml $K/score-job.yaml $K/merge-job.yaml)"

python3 scripts/gen_traces.py --count 3000 --seed 37 --messy >"$TMP/data/traces.jsonl"
EXTRA_ARGS="-e $PWD/tests/slurm/slow.lua -e $PWD/plugins/query_diversity.lua -e $PWD/plugins/citation_support.lua"
export EXTRA_ARGS
# shellcheck disable=SC2086
"$ASSAY" run -j 1 --no-timing --db "$TMP/single.db" $EXTRA_ARGS "$TMP/data/traces.jsonl" -o "$TMP/single.jsonl" 2>/dev/null
check "the single-process run completes (exit 3: malformed lines)" 3 $?

OUT=$TMP/data/run
for i in 0 2 3; do run_pod "$TMP/score" $i >"$TMP/pod-$i.log" 2>&1 & done
( run_pod "$TMP/score" 1 >"$TMP/pod-1a.log" 2>&1 ) & victim=$!
# the pod of index 1 is killed once it has written part of its shard (a node lost, an eviction)
for _ in $(seq 600); do [ "$(stat -c %s "$OUT/shard-1.jsonl" 2>/dev/null || echo 0)" -gt 50000 ] && break; sleep 0.05; done
pkill -KILL -f -- "--db $OUT/shard-1.db"
wait $victim
check "and its container failed" 137 $?
partial=$(wc -l <"$OUT/shard-1.jsonl")
check "pod 1, killed mid-run, left part of its shard" yes \
    "$([ "$partial" -gt 0 ] && ! grep -q '^F ' "$OUT/shard-1.jsonl.progress" && echo yes || echo "no ($partial lines)")"
run_pod "$TMP/score" 1 >"$TMP/pod-1b.log" 2>&1
check "its replacement runs the same command and succeeds" 0 $?
check_contains "resuming the shard" "$TMP/pod-1b.log" "assay: resuming $OUT/shard-1.jsonl after line"
wait
for i in 0 2 3; do
    run_pod "$TMP/score" $i >"$TMP/pod-$i-again.log" 2>&1
    check "pod $i started again after it finished does nothing and succeeds" "0 1" \
        "$? $(grep -c 'this run finished already' "$TMP/pod-$i-again.log")"
done

run_pod "$TMP/merge" 0 >"$TMP/merge.log" 2>&1
check "the merge Job succeeds" 0 $?
cmp -s "$OUT/merged.jsonl" "$TMP/single.jsonl"
check "the merged output equals the single run's byte for byte" 0 $?
run_pod "$TMP/merge" 0 >"$TMP/merge.log" 2>&1
check "a retried merge Job succeeds too" "0 1" "$? $(sqlite3 "$OUT/merged.db" 'SELECT COUNT(*) FROM runs' 2>/dev/null ||
    python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM runs").fetchone()[0])' "$OUT/merged.db")"
"$ASSAY" compare --db "$TMP/single.db" latest latest >/dev/null 2>&1 # the store opens
sql() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("ATTACH ? AS single", (sys.argv[3],))
for row in db.execute(sys.argv[2]): print("|".join("" if v is None else str(v) for v in row))' "$OUT/merged.db" "$1" "$TMP/single.db"; }
check "the merged store holds the single run's records, row for row" "0|0" \
    "$(sql "SELECT (SELECT COUNT(*) FROM (SELECT file, line, seq, trace_id, evaluator, step, score, pass, error_kind,
        details FROM single.results EXCEPT SELECT file, line, seq, trace_id, evaluator, step, score, pass, error_kind,
        details FROM main.results)), (SELECT COUNT(*) FROM single.results) - (SELECT COUNT(*) FROM main.results)")"
done_testing
