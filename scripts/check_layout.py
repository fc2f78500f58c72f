"""Prints the folder-level include graph of the C sources and fails on a cycle.

usage: check_layout.py [ROOT]   (default: the repository this script is in)

Each folder of host/ and sandbox/ is a node; `#include "..."` from a file in folder A of a
file in folder B (A != B) is an edge A -> B. The layout the project keeps (docs/architecture.md):
host/cli -> host -> sandbox -> host/base, with host/base including nothing of ours. A cycle
means two folders can no longer be understood, built or replaced one without the other."""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
include = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
edges = {}
for top in ("host", "sandbox"):
    for folder, _, files in os.walk(os.path.join(root, top)):
        for name in files:
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(folder, name)
            src = os.path.relpath(folder, root)
            edges.setdefault(src, set())
            for target in include.findall(open(path, encoding="utf-8").read()):
                dst = os.path.relpath(os.path.dirname(os.path.normpath(os.path.join(folder, target))), root)
                if dst != src:
                    edges[src].add(dst)
                    edges.setdefault(dst, set())

for src in sorted(edges):
    print("%-12s -> %s" % (src, ", ".join(sorted(edges[src])) or "(nothing)"))

# depth-first search for a cycle
state, stack, cycle = {}, [], None
def visit(node):
    global cycle
    state[node] = "open"
    stack.append(node)
    for nxt in sorted(edges[node]):
        if cycle:
            return
        if state.get(nxt) == "open":
            cycle = stack[stack.index(nxt):] + [nxt]
            return
        if nxt not in state:
            visit(nxt)
    stack.pop()
    state[node] = "done"

for node in sorted(edges):
    if node not in state and not cycle:
        visit(node)
if cycle:
    print("include cycle between folders: " + " -> ".join(cycle))
    sys.exit(1)
print("no include cycle between folders")
