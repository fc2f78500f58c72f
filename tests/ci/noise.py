"""Traces for the false-alarm measure of `assay compare` (tests/e2e/test_ci.sh): RUNS files
DIR/1.jsonl ... with the same COUNT trace ids, four segments, and scores q1..q3 drawn afresh
for each file from one distribution, as runs of an unchanged system over the same prompts
would give. Usage: noise.py COUNT RUNS DIR"""
import json
import os
import random
import sys

count, runs, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
for run in range(1, runs + 1):
    rng = random.Random(run)
    with open(os.path.join(out, "%d.jsonl" % run), "w") as f:
        for i in range(count):
            metadata = {"segment": "abcd"[i % 4]}
            for q in ("q1", "q2", "q3"):
                metadata[q] = round(rng.betavariate(2, 2), 4)
            f.write(json.dumps({"id": "t%03d" % i, "input": "prompt %d" % i, "output": "answer",
                                "metadata": metadata}, separators=(",", ":")) + "\n")
