"""Rewrites a store of this assay as an earlier assay left it, to test the upgrade.

usage: downgrade.py DB 5            schema 5: runs have no kind or document (assay pairwise)
       downgrade.py DB 4            schema 4: no tokens or cost in the evaluators' totals
       downgrade.py DB 2            schema 2: digests and kept bodies, whole record lines
       downgrade.py DB 1 INPUT      schema 1: also every body (INPUT's lines) and no digests

Schemas 1 and 2 kept results in a rowid table with whole record lines, indexed by (run_id,
evaluator, trace_id, step), and had no evaluators' totals.
"""
import sqlite3
import sys

path, version = sys.argv[1], int(sys.argv[2])
db = sqlite3.connect(path)
for column in ("kind", "document"):
    db.execute("ALTER TABLE runs DROP COLUMN " + column)
if version == 5:
    db.execute("UPDATE meta SET value = '5' WHERE key = 'schema'")
    db.commit()
    sys.exit(0)
for column in ("tokens_in", "tokens_out", "cost"):
    db.execute("ALTER TABLE run_evaluators DROP COLUMN " + column)
if version == 4:
    db.execute("UPDATE meta SET value = '4' WHERE key = 'schema'")
    db.commit()
    sys.exit(0)
if version == 1:
    lines = open(sys.argv[3]).read().splitlines()
    for n, text in enumerate(lines, 1):
        db.execute("INSERT OR IGNORE INTO bodies VALUES(?, ?)", (10**12 + n, text))
        db.execute("UPDATE traces SET body = ? WHERE line = ?", (10**12 + n, n))
    db.execute("DELETE FROM bodies WHERE hash < ?", (10**12,))
    db.execute("DROP INDEX traces_by_body")
    db.execute("ALTER TABLE traces DROP COLUMN summary")
# the results table of schema 1 and 2, its rows inserted in input order
db.execute("CREATE TABLE old(run_id INTEGER NOT NULL, file INTEGER NOT NULL, line INTEGER NOT NULL,"
           " trace_id TEXT, evaluator TEXT, step INTEGER, score REAL, pass INTEGER, label TEXT,"
           " error_kind TEXT, error TEXT, ms REAL, grp TEXT, record TEXT)")
db.execute("INSERT INTO old SELECT run_id, file, line, trace_id, evaluator, step, score, pass, label,"
           " error_kind, error, ms, grp, json_object('trace_id', trace_id, 'evaluator', evaluator,"
           " 'details', json(details)) FROM results ORDER BY run_id, file, line, seq")
db.execute("DROP TABLE results")
db.execute("ALTER TABLE old RENAME TO results")
db.execute("CREATE INDEX results_by_run ON results(run_id, evaluator, trace_id, step)")
for column in ("records", "scored", "mean", "passed", "pass_n", "errors"):
    db.execute("ALTER TABLE run_evaluators DROP COLUMN " + column)
db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(version),))
db.commit()
