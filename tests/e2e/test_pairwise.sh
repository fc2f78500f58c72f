# `assay pairwise`: systems compared answer against answer, each pair judged in both orders.
# A deterministic judge (plugins/pairwise/by_field.lua) on hand-computed ratings, then the
# LLM judge against the fake server: a judge that always prefers the first answer is caught
# (every pair a tie, position bias 100%), a consistent one decides.
. "$(dirname "$0")/lib.sh"
BY=plugins/pairwise/by_field.lua
# ratings of six answers per system; b against a: t0 win, t1 tie, t2 win, t3 loss, t4 win,
# t5 win: won 4, tied 1, lost 1; per-pair scores 1 .5 1 0 1 1: win rate 4.5 / 6 = 0.75, sd
# sqrt((4.25 - 6 x 0.75^2) / 5) = 0.41833, interval 0.75 -/+ 1.96 x 0.41833 / sqrt(6) = 0.415 .. 1
python3 - "$TMP" <<'EOF'
import json, sys
ratings = {"a": [3, 5, 2, 4, 4, 1], "b": [4, 5, 3, 2, 5, 2], "c": [5, 1, 4, 4, 5, 3]}
for name, vals in ratings.items():
    with open(sys.argv[1] + "/" + name + ".jsonl", "w") as f:
        for i, v in enumerate(vals):
            f.write(json.dumps({"id": "t%d" % i, "input": "q%d" % i, "output": "%s%d" % (name, i),
                                "metadata": {"rating": v, "seg": "x" if i < 3 else "y"}}) + "\n")
EOF
cd "$TMP" || exit 1
"$ASSAY" pairwise a.jsonl b.jsonl -e "$OLDPWD/$BY" --no-db --group-by seg >two.txt 2>two.err
check "pairwise of two systems: exit 0" 0 $?
check_contains "won 4, tied 1, lost 1: win rate 0.75 [0.415, 1], no position bias" two.txt \
    "b.jsonl against a.jsonl: 6 pairs: won 4, tied 1, lost 1; win rate 0.750 [0.415, 1.000]; position bias 0.0%"
check_contains "per segment: x won 2, tied 1 (2.5 / 3)" two.txt "segment x: 3 pairs: won 2, tied 1, lost 0; win rate 0.833"
# recorded as a run: an evaluator per two systems, each pair's outcome its score (the later
# system's: 1 won, 0.5 tie, 0 lost) and pass (a tie has none): 4 won of 5 decided = 80%
"$ASSAY" pairwise a.jsonl b.jsonl -e "$OLDPWD/$BY" --db pw.db --label first --group-by seg >/dev/null 2>rec.err
check_contains "pairwise is recorded in the run store" rec.err "pairwise run 1 recorded in pw.db"
"$ASSAY" runs --db pw.db >runs.txt
check_contains "assay runs shows it: mean = the win rate, pass = wins of the decided pairs" runs.txt \
    "by_field: b.jsonl vs a.jsonl        6   0.750   80.0%       0"
"$ASSAY" pairwise a.jsonl b.jsonl -e "$OLDPWD/$BY" -p by_field.field=nosuch --db pw.db --label second >/dev/null 2>&1
"$ASSAY" pairwise a.jsonl b.jsonl -e "$OLDPWD/$BY" --db pw.db --label third >/dev/null 2>&1
"$ASSAY" compare --db pw.db first third --group-by seg >cmp.txt 2>&1
check "compare reads two pairwise runs: the same outcomes, nothing changed, exit 0" "0 yes" \
    "$? $(grep -q 'by_field: b.jsonl vs a.jsonl: no significant change' cmp.txt && echo yes || echo no)"
"$ASSAY" report --db pw.db first -o pw.html 2>/dev/null
check "the report of a pairwise run: its evaluator, the win rate as its mean" "by_field: b.jsonl vs a.jsonl 0.75 6" \
    "$(python3 -c 'import json, re, sys
page = open(sys.argv[1]).read()
data = json.loads(re.search(r"<script type=\"application/json\" id=\"data\">(.*?)</script>", page, re.S).group(1))
e = data["evaluators"][0]; print(e["name"], e["mean"], e["records"])' pw.html)"
"$ASSAY" pairwise a.jsonl b.jsonl -e "$OLDPWD/$BY" --no-db --db nodb.db >/dev/null 2>&1
check "--no-db records nothing" no "$([ -e nodb.db ] && echo yes || echo no)"
"$ASSAY" pairwise a.jsonl b.jsonl c.jsonl -e "$OLDPWD/$BY" --no-db --json >three.json 2>/dev/null
check "three systems: a Bradley-Terry strength each, equal to a reference fitted another way (Newton)" "ok" \
    "$(python3 -c '
import json, math, sys
d = json.load(open(sys.argv[1]))
names = d["systems"]; idx = {n: i for i, n in enumerate(names)}
w = [[0.0] * 3 for _ in range(3)]
for c in d["comparisons"]:
    a, b = idx[c["a"]], idx[c["b"]]
    w[b][a] += c["wins"] + c["ties"] / 2; w[a][b] += c["losses"] + c["ties"] / 2
# Newton on log-strengths with the first fixed at 0: maximise sum w_ij log(p_i / (p_i + p_j))
t = [0.0, 0.0, 0.0]
for _ in range(200):
    g = [0.0] * 3; h = [[0.0] * 3 for _ in range(3)]
    for i in range(3):
        for j in range(3):
            if i == j: continue
            n = w[i][j] + w[j][i]; p = 1 / (1 + math.exp(t[j] - t[i]))
            g[i] += w[i][j] - n * p; h[i][i] -= n * p * (1 - p); h[i][j] += n * p * (1 - p)
    # solve for indices 1, 2 (2x2)
    a11, a12, a21, a22 = h[1][1], h[1][2], h[2][1], h[2][2]; det = a11 * a22 - a12 * a21
    d1 = (g[1] * a22 - a12 * g[2]) / det; d2 = (a11 * g[2] - a21 * g[1]) / det
    t[1] -= d1; t[2] -= d2
e = [math.exp(x) for x in t]; s = [x / sum(e) for x in e]
got = [b["strength"] for b in d["bradley_terry"]]
print("ok" if all(abs(x - y) < 1e-6 for x, y in zip(s, got)) else "differ: %r %r" % (s, got))' three.json)"
check "each strength inside its interval; c strongest" "True c.jsonl" "$(python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))["bradley_terry"]
print(all(x["ci"][0] <= x["strength"] <= x["ci"][1] for x in b), max(b, key=lambda x: x["strength"])["system"])' three.json)"

# the report of a pairwise run, in a real headless Chromium: every row of the page (each two
# systems, each segment, the leaderboard) holds the numbers `pairwise --json` printed
CHROME=$(command -v chromium-headless-shell || command -v chromium || true)
browse() { # html-file dom-file
    timeout 120 "$CHROME" --no-sandbox --disable-gpu --no-first-run --user-data-dir="$TMP/profile" \
        --enable-logging=stderr --v=0 --virtual-time-budget=5000 --dump-dom "file://$PWD/$1" >"$2" 2>"$2.err"
}
page_rows() { # dom-file: the pairwise rows and leaderboard rows as JSON, and whether the page ran
    python3 -c 'import json, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(); self.out = {"pairs": [], "leaders": [], "ready": None, "error": None, "hidden": None}
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "html": self.out["ready"], self.out["error"] = a.get("data-ready"), a.get("data-error")
        if tag == "section" and a.get("id") == "pairwise-section": self.out["hidden"] = "hidden" in a
        if tag == "tr" and "pair-row" in a.get("class", ""): self.out["pairs"].append(a)
        if tag == "tr" and a.get("class") == "leader-row": self.out["leaders"].append(a)
p = P(); p.feed(open(sys.argv[1]).read()); print(json.dumps(p.out))' "$1"
}
if [ -z "$CHROME" ]; then
    not_ok "a headless Chromium is installed (scripts/install-deps.sh installs chromium-headless-shell)"
else
    "$ASSAY" pairwise a.jsonl b.jsonl c.jsonl -e "$OLDPWD/$BY" --db pw3.db --group-by seg --json >three-seg.json 2>/dev/null
    "$ASSAY" runs --db pw3.db >runs3.txt
    check_contains "assay runs names the run's kind and counts pairs judged" runs3.txt "18 pairs judged  (pairwise)"
    cp pw3.db pw5.db && python3 "$OLDPWD/tests/store/downgrade.py" pw5.db 5
    "$ASSAY" runs --db pw5.db >runs5.txt 2>&1
    check "a store of schema 5 (no kinds of runs) is read and upgraded to 6 on the way" "0 6" \
        "$? $(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT value FROM meta WHERE key = '"'schema'"'").fetchone()[0])' pw5.db)"
    "$ASSAY" report --db pw3.db -o pw3.html 2>/dev/null
    browse pw3.html pw3.dom
    check "Chromium renders the pairwise page with no console errors" "yes None False 0" \
        "$(page_rows pw3.dom | python3 -c 'import json, sys; d = json.load(sys.stdin); print(d["ready"], d["error"], d["hidden"])') $(grep -cE 'CONSOLE|Uncaught' pw3.dom.err)"
    check "every row of the page equals pairwise --json: 3 comparisons x (all + 2 segments), 3 strengths" "ok 9 3" \
        "$(page_rows pw3.dom | python3 -c 'import json, sys
page = json.load(sys.stdin); doc = json.load(open(sys.argv[1]))
want = []
for c in doc["comparisons"]:
    for t in [c] + c["segments"]:
        want.append((c["a"], c["b"], t.get("segment", ""), t["n"], t["wins"], t["ties"], t["losses"], t["win_rate"],
                     t["ci"], t["position_bias"]))
num = lambda s: float(s)
got = [(r["data-a"], r["data-b"], r["data-segment"], int(r["data-n"]), int(r["data-wins"]), int(r["data-ties"]),
        int(r["data-losses"]), num(r["data-win-rate"]), [num(x) for x in r["data-ci"].split(",")], num(r["data-bias"]))
       for r in page["pairs"]]
board = sorted(doc["bradley_terry"], key=lambda b: -b["strength"])
leaders = [(r["data-system"], num(r["data-strength"]), [num(x) for x in r["data-ci"].split(",")]) for r in page["leaders"]]
ok = got == want and leaders == [(b["system"], b["strength"], b["ci"]) for b in board]
print("ok" if ok else "differ: %r %r" % (got, want), len(got), len(leaders))' three-seg.json)"
    check "the verdict of each row follows its interval (b against a: no significant difference)" \
        "no significant difference" \
        "$(page_rows pw3.dom | python3 -c 'import json, sys
print([r for r in json.load(sys.stdin)["pairs"] if r["data-b"] == "b.jsonl" and r["data-segment"] == ""][0]["data-verdict"])')"
fi
"$ASSAY" pairwise b.jsonl a.jsonl -e "$OLDPWD/$BY" --fail-on-regression >/dev/null 2>fail.err
check "--fail-on-regression: a loses to b (0.25 [0, 0.585]) but not significantly: exit 0" 0 $?
python3 -c '
import json
for name, v in (("good", 5), ("bad", 1)):
    with open(name + ".jsonl", "w") as f:
        for i in range(12): f.write(json.dumps({"id": "t%d" % i, "output": name, "metadata": {"rating": v}}) + "\n")'
"$ASSAY" pairwise good.jsonl bad.jsonl -e "$OLDPWD/$BY" --fail-on-regression >/dev/null 2>fail.err
check "a later system that loses every pair: exit 1, said" "1 yes" \
    "$? $(grep -q 'a later system loses to an earlier one significantly' fail.err && echo yes || echo no)"
printf '%s\n' '{"id":"x1","input":"same question","metadata":{"rating":1}}' >p1.jsonl
printf '%s\n' '{"id":"y1","input":"same question","metadata":{"rating":2}}' >p2.jsonl
"$ASSAY" pairwise p1.jsonl p2.jsonl -e "$OLDPWD/$BY" >byinput.txt 2>&1
check_contains "no shared id: paired by input" byinput.txt "paired by input"
printf '%s\n' '{"id":"z"}' >p3.jsonl
"$ASSAY" pairwise p1.jsonl p3.jsonl -e "$OLDPWD/$BY" >/dev/null 2>none.err
check "nothing in common: exit 2, said" "2 yes" "$? $(grep -q 'share no trace id and no input' none.err && echo yes || echo no)"
"$ASSAY" pairwise a.jsonl -e "$OLDPWD/$BY" >/dev/null 2>&1
check "one file: exit 2" 2 $?
printf 'not json\n' >>a.jsonl
"$ASSAY" pairwise a.jsonl b.jsonl -e "$OLDPWD/$BY" >/dev/null 2>bad.err
check_contains "a bad line is named and left out" bad.err "a.jsonl:7: not a JSON object, left out"
cd "$OLDPWD" || exit 1

# the LLM judge against the fake server: the first marker in the prompt is the answer
SERVER="python3 tests/llm_server.py"
$SERVER serve >"$TMP/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 100); do grep -q PORT "$TMP/server.out" && break; sleep 0.05; done
PORT=$(sed -n 's/^PORT //p' "$TMP/server.out")
LLM="--llm-url http://127.0.0.1:$PORT/v1 --llm-model test-model --no-cache"
python3 - "$TMP" <<'EOF'
import json, sys
def write(name, marker):
    with open(sys.argv[1] + "/" + name + ".jsonl", "w") as f:
        for i in range(10):
            f.write(json.dumps({"id": "p%d" % i, "input": "q%d" % i, "output": "%s %d <<reply: %s>>" % (name, i, marker)}) + "\n")
write("first1", '{"winner": 1}'); write("first2", '{"winner": 1}')   # a judge that always picks the first shown
write("strong", '{"winner": 1}'); write("weak", '{"winner": 2}')    # the first marker shown decides: strong wins both orders
EOF
"$ASSAY" pairwise "$TMP/first1.jsonl" "$TMP/first2.jsonl" -e plugins/pairwise/pairwise_judge.lua $LLM --no-db --json >"$TMP/bias.json" 2>/dev/null
check "a judge that always prefers the first answer: every pair a tie, position bias 100%" "0 10 0 1" \
    "$(python3 -c 'import json, sys; c = json.load(open(sys.argv[1]))["comparisons"][0]
print(c["wins"], c["ties"], c["losses"], c["position_bias"])' "$TMP/bias.json")"
$SERVER ctl "$PORT" /admin/reset x >/dev/null
"$ASSAY" pairwise "$TMP/strong.jsonl" "$TMP/weak.jsonl" -e plugins/pairwise/pairwise_judge.lua $LLM --no-db --fail-on-regression \
    >"$TMP/llm.txt" 2>/dev/null
check "a consistent judge: the weak system loses all 10 in both orders, no position bias, exit 1" "1 yes" \
    "$? $(grep -q 'weak.jsonl against .*strong.jsonl: 10 pairs: won 0, tied 0, lost 10; win rate 0.000 \[0.000, 0.000\]; position bias 0.0%' "$TMP/llm.txt" && echo yes || echo no)"
check "20 calls: each pair asked in both orders" 20 \
    "$($SERVER ctl "$PORT" /admin/stats | python3 -c 'import json, sys; print(json.load(sys.stdin)["chat"])')"
if [ -n "$CHROME" ]; then
    cd "$TMP" || exit 1
    "$ASSAY" pairwise first1.jsonl first2.jsonl -e "$OLDPWD/plugins/pairwise/pairwise_judge.lua" $LLM --db bias.db \
        >/dev/null 2>&1
    "$ASSAY" report --db bias.db -o bias.html 2>/dev/null
    browse bias.html bias.dom
    check "the page of the biased judge: 10 ties, position bias 1, the note warns that it follows the order" "10 1 yes" \
        "$(page_rows bias.dom | python3 -c 'import json, sys; r = json.load(sys.stdin)["pairs"][0]; print(r["data-ties"], r["data-bias"])') $(grep -q 'the judge often follows the order, not the answers' bias.dom && echo yes || echo no)"
    cd "$OLDPWD" || exit 1
fi
kill $server_pid 2>/dev/null
done_testing
