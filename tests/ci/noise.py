"""Traces for the false-alarm measure of `assay compare` (tests/e2e/test_ci.sh): the same
COUNT trace ids in every file, four segments, and scores q1..q3 drawn afresh from one
distribution per SEED, as two runs of an unchanged system over the same prompts would give.
Usage: noise.py COUNT SEED"""
import json
import random
import sys

count, seed = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
for i in range(count):
    metadata = {"segment": "abcd"[i % 4]}
    for q in ("q1", "q2", "q3"):
        metadata[q] = round(rng.betavariate(2, 2), 4)
    print(json.dumps({"id": "t%03d" % i, "input": "prompt %d" % i, "output": "answer",
                      "metadata": metadata}, separators=(",", ":")))
