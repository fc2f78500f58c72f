"""Fails when a C function of host/ or sandbox/ is longer than the limit the project keeps.

usage: check_functions.py [ROOT] [LIMIT]   (default: the repository this script is in, and
80 lines, from the line of its name to its closing brace)

A function that no longer fits a screen does several things; give each its name. The
inherited Lua pattern matcher (sandbox/pattern.c, from lstrlib.c) keeps its own shape, so
that it can be compared with Lua's. A function is found the way the code is written here:
its name line starts in column 0 and ends with '{', its body ends at a '}' in column 0."""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
limit = int(sys.argv[2]) if len(sys.argv) > 2 else 80
exempt = {"sandbox/pattern.c"}
start = re.compile(r"^[A-Za-z_][^;=(]*\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
long_ones = []
for top in ("host", "sandbox"):
    for folder, _, files in os.walk(os.path.join(root, top)):
        for name in sorted(files):
            if not name.endswith(".c"):
                continue
            path = os.path.join(folder, name)
            rel = os.path.relpath(path, root)
            if rel in exempt:
                continue
            lines = open(path, encoding="utf-8").read().split("\n")
            i = 0
            while i < len(lines):
                m = start.match(lines[i])
                # the signature may run over a few lines; it ends with '{' (a prototype with ';')
                k = i
                while m and k < len(lines) and k < i + 4 and not lines[k].rstrip().endswith(("{", ";")):
                    k += 1
                if m and k < len(lines) and lines[k].rstrip().endswith("{") and not lines[i].startswith(("typedef", "struct")):
                    j = k + 1
                    while j < len(lines) and lines[j] != "}":
                        j += 1
                    n = j - i + 1
                    if n > limit:
                        long_ones.append((n, "%s:%d: %s is %d lines" % (rel, i + 1, m.group(1), n)))
                    i = j
                i += 1
for _, line in sorted(long_ones, reverse=True):
    print(line)
if long_ones:
    print("%d functions longer than %d lines: split them into named steps" % (len(long_ones), limit))
    sys.exit(1)
print("no function longer than %d lines" % limit)
