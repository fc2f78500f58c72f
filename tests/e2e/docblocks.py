"""Pulls the code blocks out of the docs so that the tests can run every example.

usage: docblocks.py WORKDIR DOC...

A fenced block's info string says what the test does with it:
  ```lua file=PATH        written to WORKDIR/PATH (later blocks and commands use it)
  ```c same-as=PATH       must equal the repository file PATH
  ```c excerpt-of=PATH    must appear, line for line, in the repository file PATH
  ```sh test              written to WORKDIR/cmd-N.sh for the test to run
  ```json output          a sample of output; not run
  ```text output-of=previous  what the command block before it prints (stdout and stderr):
                          checked, with "…" standing for any text in a line and a line of
                          "…" alone for any lines
  ```json schema=NAME     one JSON value that must be valid against docs/schema/NAME.schema.json
  ```sh setup             the set-up commands: each `make X` must be a target of the Makefile
                          (the suite itself is what `make test` runs)
A block with a language and none of these fails: an example nobody runs drifts.
Prints "ok …" / "not ok …" for the checks it can do itself and "run PATH DOC" for each
command block.
"""
import os
import re
import sys

work, docs = sys.argv[1], sys.argv[2:]
fence = re.compile(r"^(\s*)```(\S*)\s*(.*)$")
n_cmd = 0
os.makedirs(work, exist_ok=True)
for doc in docs:
    lines = open(doc, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = fence.match(lines[i])
        if not m or not m.group(2):
            i += 1
            continue
        indent, lang, info = len(m.group(1)), m.group(2), m.group(3)
        start = i + 1
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith("```"):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        text = "\n".join(body) + "\n"
        where = "%s:%d (%s)" % (doc, start, lang)
        attrs = dict(a.split("=", 1) if "=" in a else (a, "") for a in info.split())
        if "file" in attrs:
            path = os.path.join(work, attrs["file"])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "w", encoding="utf-8").write(text)
        elif "same-as" in attrs:
            same = open(attrs["same-as"], encoding="utf-8").read() == text
            print(("ok" if same else "not ok") + " - %s is %s, verbatim" % (where, attrs["same-as"]))
        elif "excerpt-of" in attrs:
            whole = [l.strip() for l in open(attrs["excerpt-of"], encoding="utf-8").read().split("\n")]
            part = [l.strip() for l in body if l.strip()]
            found = any(whole[k:k + len(part)] == part for k in range(len(whole)))
            print(("ok" if found else "not ok") + " - %s is an excerpt of %s" % (where, attrs["excerpt-of"]))
        elif "schema" in attrs:
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import json
            import schema_check
            schema = json.load(open("docs/schema/%s.schema.json" % attrs["schema"]))
            problems = list(schema_check.errors(schema, json.loads(text), schema, where))
            print(("ok" if not problems else "not ok") + " - %s is a valid %s%s" %
                  (where, attrs["schema"], "" if not problems else ": " + "; ".join(problems)))
        elif attrs.get("output-of") == "previous":
            if n_cmd == 0:
                print("not ok - %s: output-of=previous with no command block before it" % where)
            else:
                expect = os.path.join(work, "expect-%d.txt" % start)
                open(expect, "w", encoding="utf-8").write(text)
                print("expect %s %s %s" % (os.path.join(work, "cmd-%d.sh" % n_cmd), expect, where))
        elif "test" in attrs:
            n_cmd += 1
            path = os.path.join(work, "cmd-%d.sh" % n_cmd)
            open(path, "w", encoding="utf-8").write(text)
            print("run %s %s" % (path, where))
        elif "setup" in attrs:
            makefile = open("Makefile", encoding="utf-8").read()
            for target in re.findall(r"^make (\S+)", text, re.M):
                has = re.search(r"^%s:" % re.escape(target), makefile, re.M) is not None
                print(("ok" if has else "not ok") + " - %s: `make %s` is a Makefile target" % (where, target))
        elif "output" not in attrs:
            print("not ok - %s: an example the tests do not run (tag it file=, same-as=, excerpt-of=, test or output)"
                  % where)
