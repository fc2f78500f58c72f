"""Checks `assay compare A B --group-by segment --json` for runs of tests/store/fixed.lua
(score = metadata.a, pass = score >= 0.5) over A_TRACES and B_TRACES against a reference
computed here: each row's means, change and paired t-test p-value (the t distribution's
tail integrated numerically, not by the incomplete beta function assay uses), and Holm's
adjustment over the rows tested together. Prints "ok" or what differs.
Usage: check_compare.py COMPARE.json A_TRACES B_TRACES"""
import json
import math
import sys


def load(path):
    return {t["id"]: t for t in map(json.loads, open(path))}


def t_two_sided(t, df):
    """2 * P(T > |t|) for Student's t with df degrees of freedom, by Simpson's rule."""
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    f = lambda x: c * (1 + x * x / df) ** (-(df + 1) / 2)
    n, a = 20000, abs(t)
    h = a / n
    s = f(0) + f(a) + sum((4 if k % 2 else 2) * f(k * h) for k in range(1, n))
    return max(0.0, 1 - 2 * s * h / 3)


def p_value(d):
    n = len(d)
    mean = sum(d) / n
    if abs(mean) <= 1e-9:
        return 1.0
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    if sd == 0:
        return 0.0
    return t_two_sided(mean / (sd / math.sqrt(n)), n - 1)


report = json.load(open(sys.argv[1]))
a, b = load(sys.argv[2]), load(sys.argv[3])
problems, family = [], []
for ev in report["evaluators"]:
    for row in ev["rows"]:
        ids = [i for i in b if i in a and (row["segment"] is None or b[i]["metadata"]["segment"] == row["segment"])]
        if row["measure"] == "mean":
            va = [a[i]["metadata"]["a"] for i in ids]
            vb = [b[i]["metadata"]["a"] for i in ids]
        else:
            va = [float(a[i]["metadata"]["a"] >= 0.5) for i in ids]
            vb = [float(b[i]["metadata"]["a"] >= 0.5) for i in ids]
        d = [y - x for x, y in zip(va, vb)]
        want = {"n": len(ids), "a": sum(va) / len(ids), "b": sum(vb) / len(ids), "delta": sum(d) / len(ids),
                "p": p_value(d)}
        for key, value in want.items():
            if abs(row[key] - value) > 1e-6:
                problems.append("%s %s %s: %s %r, reference %r" % (ev["evaluator"], row["segment"], row["measure"],
                                                                      key, row[key], value))
        if len(ids) >= 5 and any(abs(x) > 1e-9 for x in d):
            family.append(row)
        elif row["p_adjusted"] not in (None, 1):
            problems.append("%s %s: adjusted %r outside the family" % (row["segment"], row["measure"], row["p_adjusted"]))
if report["comparisons"] != len(family):
    problems.append("comparisons %d, reference %d" % (report["comparisons"], len(family)))
family.sort(key=lambda r: r["p"])
running = 0.0
for k, row in enumerate(family):
    running = max(running, min(1.0, (len(family) - k) * row["p"]))
    if abs(row["p_adjusted"] - running) > 1e-9:
        problems.append("%s %s: p_adjusted %r, Holm %r" % (row["segment"], row["measure"], row["p_adjusted"], running))
print("ok" if not problems and family else "\n".join(problems) or "no comparison tested")
