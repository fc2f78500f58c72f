#!/bin/sh
# Scores /data/traces.jsonl on the cluster and merges the shards:
#   examples/kubernetes/run.sh
# (the claim assay-data exists and holds the input; the image assay:latest is pullable).
# Kubernetes has no dependency between Jobs, so this waits for the first to complete.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kubectl apply -f "$here/score-job.yaml"
kubectl wait --for=condition=complete --timeout=-1s job/assay-score
kubectl delete job assay-merge --ignore-not-found
kubectl apply -f "$here/merge-job.yaml"
kubectl wait --for=condition=complete --timeout=-1s job/assay-merge
echo "merged: /data/run/merged.db and /data/run/merged.jsonl on the claim assay-data"
