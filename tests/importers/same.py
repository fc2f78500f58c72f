"""Compares imported traces with the originals: the same input, output, citations, search
queries, result URLs per search and fetch URLs, trace by trace (by id, or in order when the
format has no ids of its own).

usage: same.py ORIGINAL.jsonl IMPORTED.jsonl [--by-order]
Prints one line per difference (at most 20) and "N traces the same" when there is none."""
import json
import sys


def view(t):
    steps = t.get("steps") or []
    return {
        "input": t.get("input"),
        "output": t.get("output"),
        "citations": t.get("citations"),
        "queries": [s.get("query") for s in steps if s.get("type") == "search"],
        "results": [[r.get("url") for r in s.get("results") or []] for s in steps if s.get("type") == "search"],
        "fetches": [s.get("url") for s in steps if s.get("type") == "fetch"],
    }


original = [json.loads(line) for line in open(sys.argv[1])]
imported = [json.loads(line) for line in open(sys.argv[2])]
by_order = "--by-order" in sys.argv
if by_order:
    pairs = list(zip(original, imported))
else:
    index = {t["id"]: t for t in imported}
    pairs = [(t, index.get(t["id"])) for t in original]
problems = []
if len(imported) != len(original):
    problems.append("%d traces imported, %d written" % (len(imported), len(original)))
for a, b in pairs:
    if b is None:
        problems.append("%s: not imported" % a["id"])
        continue
    va, vb = view(a), view(b)
    for k in va:
        if va[k] != vb[k]:
            problems.append("%s: %s differs: %r vs %r" % (a["id"], k, str(va[k])[:120], str(vb[k])[:120]))
for p in problems[:20]:
    print(p)
if not problems:
    print("%d traces the same" % len(pairs))
