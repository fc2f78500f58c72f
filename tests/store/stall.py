"""A run whose store falls behind must pause its reading and then go on.

usage: stall.py ASSAY DB EVALUATORS TMPDIR

Another connection holds the store's write lock for two seconds while tiny traces are fed
through standard input, so the run's commit in flight waits, the results waiting for the
store pass the run's 16 MB limit and the reader pauses. When the lock is released the
commit finishes and reading must resume: the run completes and every record is stored.
Prints one line, "ok TRACES RECORDS" or what went wrong, for test_store.sh to check.
"""
import os
import sqlite3
import subprocess
import sys
import threading
import time

assay, db_path, evaluators, tmp = sys.argv[1:5]
TRACES = 60000  # about 5 records each: well past 16 MB of pending rows


def line(i):
    return '{"id":"t%06d","input":"q","output":"a","metadata":{"segment":"s%d"}}\n' % (i, i % 3)


proc = subprocess.Popen([assay, "run", "--db", db_path, "-e", evaluators, "-o", os.path.join(tmp, "stall.out"), "-"],
                        stdin=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
proc.stdin.write("".join(line(i) for i in range(100)))
proc.stdin.flush()

# the run row exists once the store is open; then take the write lock
deadline = time.time() + 20
while True:
    try:
        db = sqlite3.connect(db_path, timeout=20)
        if db.execute("SELECT COUNT(*) FROM runs").fetchone()[0] > 0:
            break
        db.close()
    except sqlite3.OperationalError:
        pass
    if time.time() > deadline:
        sys.exit(print("the run never recorded itself"))
    time.sleep(0.02)
db.isolation_level = None
db.execute("BEGIN IMMEDIATE")


def feed():
    try:
        proc.stdin.write("".join(line(i) for i in range(100, TRACES)))
        proc.stdin.close()
    except BrokenPipeError:
        pass


feeder = threading.Thread(target=feed, daemon=True)
feeder.start()
time.sleep(2)
db.execute("COMMIT")
db.close()

try:
    proc.wait(timeout=60)
except subprocess.TimeoutExpired:
    proc.kill()
    sys.exit(print("the run stalled: still running 60 s after the store's lock was released"))
if proc.returncode != 0:
    sys.exit(print("the run exited %d: %s" % (proc.returncode, proc.stderr.read()[-500:])))
db = sqlite3.connect(db_path)
traces, records = db.execute("SELECT COUNT(DISTINCT line), COUNT(*) FROM results").fetchone()
print("ok %d %d" % (traces, records))
