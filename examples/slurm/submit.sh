#!/bin/sh
# Submits the scoring array and the merge job that waits for it:
#   examples/slurm/submit.sh TRACES.jsonl OUT_DIR [SHARDS]
# (OUT_DIR on a filesystem every node sees; extra assay flags in ASSAY_ARGS).
set -eu
[ $# -ge 2 ] || { echo "usage: $0 TRACES.jsonl OUT_DIR [SHARDS]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
INPUT=$1 OUT=$2 n=${3:-4}
export INPUT OUT
mkdir -p "$OUT"
array=$(sbatch --parsable --array=0-$((n - 1)) --output="$OUT/score-%a.log" "$here/score.sbatch")
merge=$(sbatch --parsable --dependency=afterok:"$array" --output="$OUT/merge.log" "$here/merge.sbatch")
echo "scoring: job $array ($n tasks); merge: job $merge, into $OUT/merged.db and $OUT/merged.jsonl"
