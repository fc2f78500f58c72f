# A real one-node Slurm cluster on localhost (Debian's slurm-wlm and munge, a generated
# slurm.conf, every file in a temporary directory): examples/slurm/submit.sh submits a
# 4-task array over a generated corpus and the merge job that waits for it; one task is
# killed with scancel --signal=KILL mid-run and requeued, and the merge job joins the shards.
# The merged store and output must equal a single process's run of the same input.
# Skipped, with the reason, where the cluster cannot start (no packages, not root).
. "$(dirname "$0")/lib.sh"
skip() { echo "ok 1 # SKIP $1"; echo "1..1"; exit 0; }
case "${ASSAY_BUILD:-build}" in *asan*) skip "the Slurm test runs with the plain build (the cluster's jobs are the CLI)" ;; esac
for cmd in slurmctld slurmd munged sbatch scontrol squeue; do
    command -v $cmd >/dev/null 2>&1 || [ -x /usr/sbin/$cmd ] || skip "$cmd is not installed (apt-get install slurm-wlm munge)"
done
[ "$(id -u)" -eq 0 ] || skip "slurmd must run as root to start jobs"
PATH=$PATH:/usr/sbin

# --------------------------------------------------------------- the cluster
C=$TMP/cluster
mkdir -p "$C/state" "$C/spool" "$TMP/out"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
host=$(hostname -s)
dd if=/dev/urandom of="$C/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$C/munge.key"
cat >"$C/slurm.conf" <<EOF
ClusterName=assaytest
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
AuthType=auth/munge
AuthInfo=socket=$C/munge.sock
CredType=cred/munge
StateSaveLocation=$C/state
SlurmdSpoolDir=$C/spool
SlurmctldPidFile=$C/slurmctld.pid
SlurmdPidFile=$C/slurmd.pid
SlurmctldLogFile=$C/slurmctld.log
SlurmdLogFile=$C/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
KillWait=5
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$C/slurm.conf
stop_cluster() {
    for d in slurmd slurmctld munged; do [ -f "$C/$d.pid" ] && kill "$(cat "$C/$d.pid")" 2>/dev/null; done
    sleep 0.5
    for d in slurmd slurmctld munged; do [ -f "$C/$d.pid" ] && kill -9 "$(cat "$C/$d.pid")" 2>/dev/null; done
    rm -rf "$TMP"
}
trap stop_cluster EXIT
munged -f --socket="$C/munge.sock" --key-file="$C/munge.key" --log-file="$C/munged.log" --pid-file="$C/munged.pid" \
    --seed-file="$C/munge.seed" 2>"$C/start.log" || skip "munged does not start: $(tail -1 "$C/start.log")"
slurmctld -c >>"$C/start.log" 2>&1 || skip "slurmctld does not start: $(tail -1 "$C/slurmctld.log" 2>/dev/null)"
slurmd >>"$C/start.log" 2>&1 || skip "slurmd does not start: $(tail -1 "$C/slurmd.log" 2>/dev/null)"
for _ in $(seq 100); do sinfo -h -o %t 2>/dev/null | grep -q idle && break; sleep 0.1; done
sinfo -h -o %t 2>/dev/null | grep -q idle || skip "the node does not come up: $(tail -1 "$C/slurmctld.log")"
ok "a one-node cluster is up ($(sinfo -h -o '%P %D node(s) %t'))"

# ------------------------------------------------------------------- the run
python3 scripts/gen_traces.py --count 4000 --seed 31 --messy >"$TMP/in.jsonl"
# an evaluator that costs ~1 ms a trace keeps each task running long enough to be killed
ARGS="-e $PWD/tests/slurm/slow.lua -e $PWD/plugins/query_diversity.lua -e $PWD/plugins/relevance.lua"
# shellcheck disable=SC2086
"$ASSAY" run -j 1 --no-timing --db "$TMP/single.db" $ARGS "$TMP/in.jsonl" -o "$TMP/single.jsonl" 2>/dev/null
check "the single-process run completes (exit 3: malformed lines)" 3 $?

OUT=$TMP/out
ASSAY=$ASSAY ASSAY_ARGS=$ARGS sh examples/slurm/submit.sh "$TMP/in.jsonl" "$OUT" 4 >"$TMP/submit.log" 2>&1
check "examples/slurm/submit.sh submits the array and the merge job" 0 $?
array=$(sed -n 's/^scoring: job \([0-9]*\) .*/\1/p' "$TMP/submit.log")
merge=$(sed -n 's/.*merge: job \([0-9]*\),.*/\1/p' "$TMP/submit.log")
state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p' | head -1; }

# kill task 1 once it has written part of its shard
for _ in $(seq 600); do [ "$(stat -c %s "$OUT/shard-1.jsonl" 2>/dev/null || echo 0)" -gt 60000 ] && break; sleep 0.05; done
scancel --signal=KILL --full "${array}_1"
for _ in $(seq 200); do [ "$(state "${array}_1")" = RUNNING ] || break; sleep 0.1; done
killed_state=$(state "${array}_1")
check "task 1, killed mid-run, has stopped" yes "$(case $killed_state in RUNNING | PENDING | "") echo "no ($killed_state)" ;; *) echo yes ;; esac)"
done_lines=$(wc -l <"$OUT/shard-1.jsonl")
check "and left part of its shard, not all of it" yes \
    "$([ "$done_lines" -gt 0 ] && ! grep -q '^F ' "$OUT/shard-1.jsonl.progress" && echo yes || echo "no ($done_lines lines)")"
scontrol requeue "${array}_1"
scontrol update JobId="${array}_1" StartTime=now # a requeued job otherwise waits its requeue delay
# Slurm counts the cancelled task against the array's afterok; per task it is pending again
scontrol update JobId="$merge" Dependency="afterok:${array}_0:${array}_1:${array}_2:${array}_3"
# the start time update does not take while the job is still being requeued: while the task
# waits, ask again, or it waits the two-minute requeue delay
for _ in $(seq 50); do
    [ "$(state "${array}_1")" = PENDING ] || break
    scontrol update JobId="${array}_1" StartTime=now 2>/dev/null
    sleep 0.2
done

for _ in $(seq 1200); do case $(state "$merge") in COMPLETED | FAILED | CANCELLED | TIMEOUT) break ;; esac; sleep 0.1; done
check "the merge job completes once every task succeeded" COMPLETED "$(state "$merge")"
check_contains "the requeued task resumed its shard" "$OUT/score-1.log" "assay: resuming $OUT/shard-1.jsonl after line"

cmp -s "$OUT/merged.jsonl" "$TMP/single.jsonl"
check "the merged output equals the single run's byte for byte" 0 $?
DB=$OUT/merged.db
sql() { python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("ATTACH ? AS single", (sys.argv[3],))
for row in db.execute(sys.argv[2]): print("|".join("" if v is None else str(v) for v in row))' "$DB" "$1" "$TMP/single.db"; }
check "the merged store holds one finished run of 4 shards" "done|4" "$(sql "SELECT status, shard_count FROM runs")"
check "with the single run's records, row for row" "0|0" \
    "$(sql "SELECT (SELECT COUNT(*) FROM (SELECT file, line, seq, trace_id, evaluator, step, score, pass, error_kind,
        details FROM single.results EXCEPT SELECT file, line, seq, trace_id, evaluator, step, score, pass, error_kind,
        details FROM main.results)), (SELECT COUNT(*) FROM single.results) - (SELECT COUNT(*) FROM main.results)")"
check "and the same kept bodies" "0" "$(sql "SELECT COUNT(*) FROM (SELECT file, line, body FROM single.traces
    EXCEPT SELECT file, line, body FROM main.traces)")"
done_testing
