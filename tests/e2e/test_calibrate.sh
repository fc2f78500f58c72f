# assay calibrate (docs/metrics.md#calibration-assay-calibrate) on a real run store, against
# values computed by hand from the definitions: AUC with a tie, Spearman's rho, F1 of pass,
# Youden's best threshold, a step-scoped evaluator (mean of its steps), segments, one class
# empty, an inverted evaluator, outcomes from another evaluator's pass and from feedback votes.
. "$(dirname "$0")/lib.sh"
ROOT=$PWD
cd "$TMP"
cat >s.lua <<'EOF'
return { name = "s", evaluate = function(t) return { score = t.metadata.s, pass = t.metadata.p } end }
EOF
cat >st.lua <<'EOF'
return { name = "st", scope = "search", evaluate = function(t, p, step) return step.v end }
EOF
cat >inv.lua <<'EOF'
return { name = "inv", evaluate = function(t) return 1 - t.metadata.s end }
EOF
# scores 0.9 0.8 0.5 positive, 0.5 0.2 0.1 negative; st's two steps average to the same
python3 -c '
import json
rows = [(0.9, True, True, "a"), (0.8, "yes", True, "a"), (0.5, 0, True, "b"), (0.5, 1, False, "b"),
        (0.2, "wrong", False, "a"), (0.1, False, False, "a"), (0.7, "maybe", True, "a")]
for i, (s, em, p, seg) in enumerate(rows):
    print(json.dumps({"id": "t%d" % i, "metadata": {"s": s, "em": em, "p": p, "seg": seg},
                      "steps": [{"type": "search", "v": min(1, s + 0.1)}, {"type": "search", "v": max(0, s - 0.1)}]}))' >c.jsonl
"$ASSAY" run --db c.db -e s.lua -e st.lua -e inv.lua c.jsonl -o /dev/null 2>/dev/null
"$ASSAY" calibrate --db c.db --label metadata.em --json >cal.json
check "calibrate exits 0" 0 $?
get() { python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
for e in d["evaluators"]:
    if e["evaluator"] == sys.argv[2] and e.get("segment") == (sys.argv[3] or None):
        v = eval(sys.argv[4])
        print(json.dumps(round(v, 4) if isinstance(v, float) else v))' "$@"; }
check "n+ and n-: 'maybe' is no outcome; yes/1/true positive, wrong/0/false negative" "[3, 3]" "$(get cal.json s '' '[e["n_pos"], e["n_neg"]]')"
check "AUC = 8.5 / 9 (a tie counts 1/2)" "0.9444" "$(get cal.json s '' 'e["auc"]')"
check "Spearman's rho = 12 / sqrt(17 x 13.5)" "0.7921" "$(get cal.json s '' 'e["spearman"]')"
check "precision, recall, F1 of pass = 2/3 each" "[0.6667, 0.6667, 0.6667]" \
    "$(get cal.json s '' '[round(e["precision"], 4), round(e["recall"], 4), round(e["f1"], 4)]')"
# pass against the outcome: TP t0 t1, FP t2, FN t3, TN t4 t5: observed 4/6, by chance
# (3 x 3 + 3 x 3) / 36 = 1/2: kappa = (2/3 - 1/2) / (1 - 1/2) = 1/3
check "Cohen's kappa of pass against the outcome = 1/3" "0.3333" "$(get cal.json s '' 'e["kappa"]')"
check "best threshold 0.8 (J 2/3, the higher of two equal), precision 1, recall 2/3" "[0.8, 1, 0.6667]" \
    "$(get cal.json s '' '[e["best_threshold"], e["best_precision"], round(e["best_recall"], 4)]')"
check "the bootstrap interval holds the AUC and stays in [0, 1]" "true" \
    "$(get cal.json s '' '0 <= e["auc_ci"][0] <= e["auc"] <= e["auc_ci"][1] <= 1')"
check "a step-scoped evaluator is scored by the mean of its steps: the same AUC" "0.9444" "$(get cal.json st '' 'e["auc"]')"
check "an evaluator that predicts the opposite: AUC 1 - 0.944, flagged inverted" "[0.0556, true]" \
    "$(get cal.json inv '' '[round(e["auc"], 4), e["inverted"]]')"
"$ASSAY" calibrate --db c.db --label metadata.em --group-by seg --json >seg.json
check "per segment: a (2 positive, 2 negative) separates perfectly" "[2, 2, 1]" "$(get seg.json s a '[e["n_pos"], e["n_neg"], e["auc"]]')"
check "segment b: one positive and one negative with the same score: AUC 1/2" "0.5" "$(get seg.json s b 'e["auc"]')"
check "kappa per segment: a agrees fully (1), b never (observed 0, chance 1/2: -1)" "[1, -1]" \
    "[$(get seg.json s a 'e["kappa"]'), $(get seg.json s b 'e["kappa"]')]"
"$ASSAY" calibrate --db c.db --label metadata.p --json >one.json
check "an outcome from a boolean field" "[4, 3]" "$(get one.json s '' '[e["n_pos"], e["n_neg"]]')"
"$ASSAY" calibrate --db c.db --label metadata.seg --json >none.json
check "an outcome no trace has: one class empty, no AUC, not a crash" "[0, 0, null]" \
    "$(get none.json s '' '[e["n_pos"], e["n_neg"], e["auc"]]')"
"$ASSAY" calibrate --db c.db --label metadata.seg >none.txt 2>&1
check "and the table says so" 0 $?
# another evaluator's pass as the outcome: s's pass (t0 t1 t2 t6 pass) against st's scores
"$ASSAY" calibrate --db c.db --label s.pass --json >pass.json
check "EVALUATOR.pass: s is not calibrated against itself" "" "$(get pass.json s '' 'e["auc"]')"
check "st against s.pass: 4 positive, 3 negative; AUC (4 x 3 pairs: 0.5 vs 0.5 ties) = 11.5/12" "[4, 3, 0.9583]" \
    "$(get pass.json st '' '[e["n_pos"], e["n_neg"], round(e["auc"], 4)]')"
# feedback votes as the outcome
python3 -c '
import json
for i, (s, votes) in enumerate([(0.9, [1]), (0.7, [1, 1, -1]), (0.4, [-1]), (0.2, [-1, -1]), (0.6, [1, -1])]):
    print(json.dumps({"id": "v%d" % i, "metadata": {"s": s}, "feedback": [{"type": "vote", "value": v} for v in votes]}))' >v.jsonl
"$ASSAY" run --db v.db -e s.lua -e "$ROOT/plugins/feedback" v.jsonl -o /dev/null 2>/dev/null
"$ASSAY" calibrate --db v.db --label feedback.vote --json >v.json 2>v.err
check "feedback.vote: a vote mean of 0 is no outcome; 2 liked, 2 disliked, separated" "[2, 2, 1]" \
    "$(get v.json s '' '[e["n_pos"], e["n_neg"], e["auc"]]')"
# real runs with a known outcome: the distinct runs of ReAct agents on HotpotQA in two logs of
# noahshinn/reflexion (tests/real/, MIT), converted here. The AUCs are checked against a
# reference computation in Python over the records the run wrote (Mann-Whitney, ties 1/2).
python3 "$ROOT/tests/real/react_to_traces.py" "$ROOT/tests/real/react_base_5_trials.txt.xz" \
    "$ROOT/tests/real/react_reflexion_7_trials.txt.xz" >react.jsonl
"$ASSAY" run --db react.db -e "$ROOT/plugins" -e "$ROOT/plugins/research" react.jsonl -o react.rec 2>/dev/null
"$ASSAY" calibrate --db react.db --label metadata.em --json >react.json
check "real runs: 440 distinct runs, 68 of them correct" "[68, 372]" "$(get react.json loops '' '[e["n_pos"], e["n_neg"]]')"
check "loops predicts the outcome better than query_diversity's mean does (AUC)" "True" \
    "$(python3 -c 'import json, sys
auc = {e["evaluator"]: e["auc"] for e in json.load(open(sys.argv[1]))["evaluators"]}
print(auc["loops"] > auc["query_diversity"])' react.json)"
check "and on the 404 runs both score (two searches or more), computed from the records" \
    "404 True" "$(python3 -c '
import json, sys
em = {json.loads(l)["id"]: json.loads(l)["metadata"]["em"] for l in open(sys.argv[1])}
score = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    if r["score"] is not None: score.setdefault(r["trace_id"], {})[r["evaluator"]] = r["score"]
both = [t for t, s in score.items() if "loops" in s and "query_diversity" in s]
def auc(ev):
    pos = [score[t][ev] for t in both if em[t]]; neg = [score[t][ev] for t in both if not em[t]]
    return sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
print(len(both), auc("loops") > auc("query_diversity"))' react.jsonl react.rec)"
check "every evaluator's AUC equals a reference computation from the records" "ok" "$(python3 -c '
import json, sys
em = {json.loads(l)["id"]: json.loads(l)["metadata"]["em"] for l in open(sys.argv[1])}
scores = {}
for l in open(sys.argv[2]):
    r = json.loads(l)
    if r["score"] is not None and not r["error"]:
        scores.setdefault(r["evaluator"], {}).setdefault(r["trace_id"], []).append(r["score"])
got = {e["evaluator"]: e["auc"] for e in json.load(open(sys.argv[3]))["evaluators"]}
bad = []
for ev, per in scores.items():
    pos = [sum(v) / len(v) for t, v in per.items() if em[t]]
    neg = [sum(v) / len(v) for t, v in per.items() if not em[t]]
    auc = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg) / (len(pos) * len(neg))
    if abs(auc - got[ev]) > 1e-9: bad.append("%s: %r vs %r" % (ev, got[ev], auc))
print("; ".join(bad) or "ok")' react.jsonl react.rec react.json)"
"$ASSAY" calibrate --db c.db --label color >/dev/null 2>bad.err
check "an unknown kind of label: exit 2" 2 $?
check_contains "naming the kinds" bad.err "use metadata.NAME, feedback.vote or EVALUATOR.pass"
"$ASSAY" calibrate --db c.db >/dev/null 2>&1
check "no --label: exit 2" 2 $?
"$ASSAY" calibrate --db c.db --label metadata.em >table.txt
check_contains "the table: one line per evaluator" table.txt "  s                           3      3  0.944  ["
done_testing
