"""Checks that every form of a run's records says the same: the JSON lines, the CSV export,
the JUnit export and the run store (a real SQLite file).

usage: forms_agree.py RECORDS.jsonl RECORDS.csv JUNIT.xml STORE.db
Prints one line per disagreement (nothing when they agree) and the count of records checked."""
import csv
import json
import sqlite3
import sys
import xml.etree.ElementTree as ET

jsonl, csv_path, junit_path, db_path = sys.argv[1:5]
records = [json.loads(line) for line in open(jsonl, encoding="utf-8")]
rows = list(csv.DictReader(open(csv_path, encoding="utf-8", newline="")))
problems = []


def say(i, what, a, b):
    problems.append("record %d: %s: %r vs %r" % (i + 1, what, a, b))


def text_number(s):
    return None if s == "" else float(s)


def csv_text(s):
    # the CSV export quotes a leading = + - @ with ' so that spreadsheets do not run it
    return s[1:] if s[:1] == "'" and s[1:2] in "=+-@" else s


if len(rows) != len(records):
    say(-1, "count in CSV", len(records), len(rows))
for i, (r, c) in enumerate(zip(records, rows)):
    err = r.get("error") or {}
    want = {
        "trace_id": r.get("trace_id") or "",
        "evaluator": r.get("evaluator") or "",
        "step": "" if r.get("step") is None else str(r["step"]),
        "score": r.get("score"),
        "pass": "" if r.get("pass") is None else ("true" if r["pass"] else "false"),
        "label": r.get("label") or "",
        "error_kind": err.get("kind", ""),
        "error": err.get("message", ""),
        "ms": r.get("ms"),
    }
    got = dict(c, score=text_number(c["score"]), ms=text_number(c["ms"]), label=csv_text(c["label"]),
               error=csv_text(c["error"]))
    for k, v in want.items():
        if got[k] != v:
            say(i, "CSV " + k, v, got[k])

db = sqlite3.connect(db_path)
stored = db.execute("SELECT trace_id, evaluator, step, score, pass, label, error_kind, error, ms, details "
                    "FROM results ORDER BY file, line, seq").fetchall()
if len(stored) != len(records):
    say(-1, "count in the store", len(records), len(stored))
for i, (r, s) in enumerate(zip(records, stored)):
    err = r.get("error") or {}
    want = (r.get("trace_id"), r.get("evaluator"), r.get("step"), r.get("score"),
            None if r.get("pass") is None else int(r["pass"]), r.get("label"), err.get("kind"), err.get("message"),
            r.get("ms"), r.get("details"))
    got = s[:9] + (None if s[9] is None else json.loads(s[9]),)
    for k, a, b in zip(("trace_id", "evaluator", "step", "score", "pass", "label", "error_kind", "error", "ms",
                        "details"), want, got):
        if a != b:
            say(i, "store " + k, a, b)

# JUnit: one test case per record; an error element per error record, a failure per pass
# false, a skip per record with neither score nor pass
cases = list(ET.parse(junit_path).getroot().iter("testcase"))
if len(cases) != len(records):
    say(-1, "count in JUnit", len(records), len(cases))
kinds = sorted((r.get("error") or {}).get("kind", "") for r in records if r.get("error"))
got_kinds = sorted(e.get("type") for c in cases for e in c.findall("error"))
if kinds != got_kinds:
    say(-1, "JUnit error kinds", kinds, got_kinds)
fails = sum(1 for r in records if r.get("pass") is False)
if fails != sum(len(c.findall("failure")) for c in cases):
    say(-1, "JUnit failures", fails, sum(len(c.findall("failure")) for c in cases))
skips = sum(1 for r in records if not r.get("error") and r.get("score") is None and r.get("pass") is None)
if skips != sum(len(c.findall("skipped")) for c in cases):
    say(-1, "JUnit skips", skips, sum(len(c.findall("skipped")) for c in cases))

for p in problems[:20]:
    print(p)
print("%d records checked" % len(records))
