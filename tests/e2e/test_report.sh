# `assay report` in a real headless Chromium (Debian's chromium-headless-shell): the page
# loads with no console errors, its charts hold the numbers hand-computed from
# tests/store/pairs.jsonl (see test_store.sh), the drill-down opens, nothing is fetched
# from the network. Leaves a screenshot in $ASSAY_BUILD/report.png for people to look at.
#
# Three runs of the fixed evaluator (with the shipped ones beside it): fields a, b and e.
# Run 3 (e): segment x scores S = 0.9 0.8 0.7 0.6 0.55 0.45 0.65 0.9 0.75 0.85 (mean 0.715,
# 9 of 10 pass), segment y scores S - 0.3 (mean 0.415, 4 of 10 pass: 0.6 0.5 0.6 0.55), so
# the histogram bins [k/10, (k+1)/10) hold 0 1 1 2 3 3 4 2 2 2 and the pass rate is 13/20.
# The trend of means: 0.715 (a), 0.515 (b), 0.565 (e).
. "$(dirname "$0")/lib.sh"
DB=$TMP/store.db
CHROME=$(command -v chromium-headless-shell || command -v chromium || true)
if [ -z "$CHROME" ]; then
    not_ok "a headless Chromium is installed (scripts/install-deps.sh installs chromium-headless-shell)"
    done_testing
    exit 0
fi
for f in a b e; do
    "$ASSAY" run --db "$DB" -e plugins -e tests/store/fixed.lua -p "fixed.field=$f" --label "$f" tests/store/pairs.jsonl \
        >/dev/null 2>&1
done
"$ASSAY" report --db "$DB" -o "$TMP/report.html" 2>"$TMP/report.err"
check "assay report exits 0" 0 $?
check_contains "and says what it wrote" "$TMP/report.err" "report of run 3 written to $TMP/report.html"
check "the page loads nothing: no src=, no <link, no url(, no @import" "" \
    "$(grep -oE '<script[^>]* src=|<img[^>]* src=|<link|url\(|@import' "$TMP/report.html")"

browse() { # url dom-file err-file
    timeout 120 "$CHROME" --no-sandbox --disable-gpu --no-first-run --user-data-dir="$TMP/profile" \
        --enable-logging=stderr --v=0 --virtual-time-budget=5000 --dump-dom "$1" >"$2" 2>"$3"
}
browse "file://$TMP/report.html" "$TMP/dom.html" "$TMP/chrome.err"
check "Chromium renders the page" 0 $?
check "with no console messages or errors" "" "$(grep -E 'CONSOLE|Uncaught' "$TMP/chrome.err")"

# facts from the rendered DOM, read with Python's HTML parser
facts() { # dom-file
    python3 -c 'import sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(); self.stack = []; self.out = {"hist": {}, "rate": {}, "heat": {}, "trend": {}, "rows": [],
            "records": 0, "steps": 0}
        self.root = {}
    def handle_starttag(self, tag, attrs):
        a = dict(attrs); o = self.out
        if tag == "html": self.root = a
        cls = a.get("class", "")
        if tag == "svg" and cls in ("histogram", "trend"): self.svg = (cls, a["data-evaluator"])
        if tag == "rect" and "data-count" in a and self.svg[0] == "histogram":
            o["hist"].setdefault(self.svg[1], []).append(a["data-count"])
        if tag == "svg" and cls == "passbar": o["rate"][a["data-evaluator"]] = a["data-rate"]
        if tag == "td" and cls == "cell" and a.get("data-mean"):
            o["heat"]["%s/%s" % (a["data-segment"], a["data-evaluator"])] = "%.3f" % float(a["data-mean"])
        if tag == "circle" and self.svg[0] == "trend":
            o["trend"].setdefault(self.svg[1], []).append("%.3f" % float(a["data-mean"]))
        if tag == "tr" and cls == "worst-row": o["rows"].append(a["data-trace"])
        if tag == "section" and a.get("id") == "drill":
            o["drill"] = "hidden" if "hidden" in a else a.get("data-trace")
        if tag == "div" and cls.startswith("step "): o["steps"] += 1
        if tag == "div" and cls == "record": o["records"] += 1
p = P(); p.svg = ("", ""); p.feed(open(sys.argv[1]).read()); o = p.out
what = sys.argv[2]
if what == "root": print(p.root.get("data-ready"), p.root.get("data-error"))
elif what in ("hist", "rate", "heat", "trend"): print(" ".join(o[what][sys.argv[3]]) if what in ("hist", "trend") else o[what].get(sys.argv[3]))
elif what == "evaluators": print(len(o["hist"]))
else: print(o[what])' "$@"
}
check "the script ran to its end without an error" "yes None" "$(facts "$TMP/dom.html" root)"
check "one histogram per evaluator (5 shipped + fixed)" 6 "$(facts "$TMP/dom.html" evaluators)"
check "fixed's histogram: 0 1 1 2 3 3 4 2 2 2" "0 1 1 2 3 3 4 2 2 2" "$(facts "$TMP/dom.html" hist fixed)"
check "fixed's pass rate: 13/20" 0.65 "$(facts "$TMP/dom.html" rate fixed)"
check "heat table, segment x: mean 0.715" 0.715 "$(facts "$TMP/dom.html" heat x/fixed)"
check "heat table, segment y: mean 0.415" 0.415 "$(facts "$TMP/dom.html" heat y/fixed)"
check "the trend of fixed over the three runs" "0.715 0.515 0.565" "$(facts "$TMP/dom.html" trend fixed)"
check "the drill-down starts closed" hidden "$(facts "$TMP/dom.html" drill)"
first=$(python3 -c 'import ast, sys; print(ast.literal_eval(sys.argv[1])[0])' "$(facts "$TMP/dom.html" rows)")
sql() { python3 -c 'import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$DB" "$1"; }
check "the worst trace first: the most failed records" "$(sql "SELECT trace_id FROM results WHERE run_id = 3 GROUP BY trace_id
    ORDER BY SUM(pass = 0) + COUNT(error_kind) DESC, AVG(score) ASC LIMIT 1")" "$first"

# its link (#trace=ID) opens the drill-down, as a click does
browse "file://$TMP/report.html#trace=$first" "$TMP/dom2.html" "$TMP/chrome2.err"
check "opening a worst trace by its link" "$first" "$(facts "$TMP/dom2.html" drill)"
check "shows its steps (one search step)" 1 "$(facts "$TMP/dom2.html" steps)"
check "and every one of its records" "$(sql "SELECT COUNT(*) FROM results WHERE run_id = 3 AND trace_id = '$first'")" \
    "$(facts "$TMP/dom2.html" records)"
check "still with no console errors" "" "$(grep -E 'CONSOLE|Uncaught' "$TMP/chrome2.err")"

"$ASSAY" report --db "$DB" a --group-by segment -o "$TMP/a.html" 2>/dev/null
browse "file://$TMP/a.html" "$TMP/dom3.html" "$TMP/chrome3.err"
check "a named run: the report of run a, its trend ending there" "0.715" "$(facts "$TMP/dom3.html" trend fixed)"
"$ASSAY" report --db "$DB" nosuch -o "$TMP/x.html" 2>"$TMP/bad.err"
check "an unknown run: exit 2" 2 $?
check_contains "named" "$TMP/bad.err" "no run 'nosuch' in the store"
"$ASSAY" report --db "$DB" 2>/dev/null
check "report needs -o FILE: exit 2" 2 $?

# stored text that tried to break the page: "<!--<script" in ids, labels, metadata and
# details kept the embedded JSON open, and a segment named __proto__ polluted the page's maps
mkdir -p "$TMP/inject"
cat >"$TMP/inject/inject.lua" <<'EOF'
return { name = "inject", evaluate = function(t)
  return { score = t.metadata.s, pass = t.metadata.s >= 0.5, label = "<!--<script>x</script>",
           details = { note = "</script><!--<script>&amp;" } }
end }
EOF
printf '%s\n' '{"id":"<!--<script>a","output":"<!--<script>","metadata":{"segment":"__proto__","s":0.25}}' \
    '{"id":"b</script>","output":"x","metadata":{"segment":"constructor","s":0.75,"note":"<!--<script>"}}' \
    '{"id":"c&lt;","output":"x","metadata":{"segment":"<!--<script>","s":1}}' >"$TMP/inject.jsonl"
"$ASSAY" run --db "$TMP/inject.db" -e "$TMP/inject/inject.lua" "$TMP/inject.jsonl" >/dev/null 2>&1
"$ASSAY" report --db "$TMP/inject.db" --group-by segment -o "$TMP/inject.html" 2>/dev/null
check "stored text: the embedded JSON has no raw '<', '>' or '&'" "0 yes" "$(python3 -c '
import sys
page = open(sys.argv[1]).read()
start = page.index("id=\"data\">") + len("id=\"data\">")
body = page[start:page.index("</script>", start)]
print(sum(body.count(c) for c in "<>&"), "yes" if "\\u003c!--\\u003cscript" in body else "no")' "$TMP/inject.html")"
browse "file://$TMP/inject.html" "$TMP/dom4.html" "$TMP/chrome4.err"
check "stored text cannot stop the page's script" "yes None" "$(facts "$TMP/dom4.html" root)"
check "with no console errors" "" "$(grep -E 'CONSOLE|Uncaught' "$TMP/chrome4.err")"
check "a segment named __proto__ is a row of its own" 0.250 "$(facts "$TMP/dom4.html" heat __proto__/inject)"
check "so is constructor" 0.750 "$(facts "$TMP/dom4.html" heat constructor/inject)"
check "and a segment holding markup, as text" 1.000 "$(facts "$TMP/dom4.html" heat '<!--<script>/inject')"

# the errors panel: each evaluator's most frequent messages, input errors under "(input)"
printf 'return { name = "flaky", evaluate = function(t) if #t.id %% 3 == 0 then error("boom " .. (#t.id %% 2)) end if #t.id %% 3 == 1 then local x = nil; return x.y end return 1 end }\n' >"$TMP/flaky.lua"
{ python3 -c 'for i in range(30): print("{\"id\":\"%s\"}" % ("x" * (i + 1)))'; echo 'not json'; } >"$TMP/flaky.jsonl"
"$ASSAY" run --db "$TMP/flaky.db" -e "$TMP/flaky.lua" "$TMP/flaky.jsonl" >/dev/null 2>&1
"$ASSAY" report --db "$TMP/flaky.db" -o "$TMP/flaky.html" 2>/dev/null
browse "file://$TMP/flaky.html" "$TMP/dom5.html" "$TMP/chrome5.err"
check "the errors panel: rows of (evaluator, records), most frequent first, input errors last" \
    "flaky 10|flaky 5|flaky 5|(input) 1" \
    "$(grep -o 'class="error-row" data-evaluator="[^"]*" data-count="[0-9]*"' "$TMP/dom5.html" | sed 's/.*data-evaluator="\([^"]*\)" data-count="\([0-9]*\)"/\1 \2/' | tr '\n' '|' | sed 's/|$//')"
check_contains "with the message" "$TMP/dom5.html" "$TMP/flaky.lua:1: attempt to index a nil value (local 'x')"
browse "file://$TMP/report.html" "$TMP/dom6.html" "$TMP/chrome6.err"
check "a run without errors hides the panel" yes "$(grep -q '<section id="errors-section" hidden' "$TMP/dom6.html" && echo yes || echo no)"

# the calibration section (--label): the AUC of tests/e2e/test_calibrate.sh's hand-computed
# case, 8.5 / 9, rendered per evaluator; hidden without --label
printf 'return { name = "s", evaluate = function(t) return { score = t.metadata.s, pass = t.metadata.p } end }\n' >"$TMP/s.lua"
printf 'return { name = "inv", evaluate = function(t) return 1 - t.metadata.s end }\n' >"$TMP/inv.lua"
python3 -c '
import json
for i, (s, em, p) in enumerate([(0.9, 1, 1), (0.8, 1, 1), (0.5, 0, 1), (0.5, 1, 0), (0.2, 0, 0), (0.1, 0, 0)]):
    print(json.dumps({"id": "c%d" % i, "metadata": {"s": s, "em": bool(em), "p": bool(p)}}))' >"$TMP/cal.jsonl"
"$ASSAY" run --db "$TMP/cal.db" -e "$TMP/s.lua" -e "$TMP/inv.lua" "$TMP/cal.jsonl" >/dev/null 2>&1
"$ASSAY" report --db "$TMP/cal.db" --label metadata.em -o "$TMP/cal.html" 2>/dev/null
browse "file://$TMP/cal.html" "$TMP/dom7.html" "$TMP/chrome7.err"
check "report --label: a calibration row per evaluator with its AUC; the inverted one flagged" \
    "inv 0.056 yes|s 0.944 no" \
    "$(grep -o 'class="calibration-row" data-evaluator="[^"]*" data-segment="" data-auc="[^"]*" data-inverted="[a-z]*"' "$TMP/dom7.html" \
        | sed 's/.*data-evaluator="\([^"]*\)".*data-auc="\([^"]*\)" data-inverted="\([a-z]*\)"/\1 \2 \3/' \
        | awk '{ printf "%s %.3f %s\n", $1, $2, $3 }' | sort | tr '\n' '|' | sed 's/|$//')"
check "with no console errors" "" "$(grep -E 'CONSOLE|Uncaught' "$TMP/chrome7.err")"
check "without --label the section stays hidden" yes \
    "$(grep -q '<section id="calibration-section" hidden' "$TMP/dom6.html" && echo yes || echo no)"
"$ASSAY" report --db "$TMP/cal.db" --label colour -o "$TMP/bad.html" 2>"$TMP/bad.err"
check "an outcome field of no known kind: exit 2, named" "2 yes" \
    "$? $(grep -q 'use metadata.NAME, feedback.vote or EVALUATOR.pass' "$TMP/bad.err" && echo yes || echo no)"

# ---------------------------------------------------------------------- the A-vs-B page
# base scores metadata.a, cand metadata.b (0.2 lower on every trace: 0.715 -> 0.515); "other"
# scores a on a different input (the first 10 traces), so it is no part of either trend.
AB=$TMP/ab.db
head -10 tests/store/pairs.jsonl >"$TMP/ten.jsonl"
"$ASSAY" run --db "$AB" -e tests/store/fixed.lua --label base tests/store/pairs.jsonl >/dev/null 2>&1
"$ASSAY" run --db "$AB" -e tests/store/fixed.lua --label other "$TMP/ten.jsonl" >/dev/null 2>&1
"$ASSAY" run --db "$AB" -e tests/store/fixed.lua -p fixed.field=b --label cand tests/store/pairs.jsonl >/dev/null 2>&1
set -- --db "$AB" base cand --strict --group-by segment --gate 'fixed.mean>=0.6'
"$ASSAY" report "$@" -o "$TMP/ab.html" 2>"$TMP/ab.err"
check "assay report A B exits 0" 0 $?
check_contains "and says what it wrote" "$TMP/ab.err" "report of base vs cand written to $TMP/ab.html"
"$ASSAY" compare "$@" --json >"$TMP/ab.json" 2>/dev/null
browse "file://$TMP/ab.html" "$TMP/ab_dom.html" "$TMP/ab_chrome.err"
check "Chromium renders the A/B page with no console errors" "yes None|" \
    "$(facts "$TMP/ab_dom.html" root)|$(grep -E 'CONSOLE|Uncaught' "$TMP/ab_chrome.err")"
abfacts() { # dom-file what
    python3 -c '
import json, sys
from html.parser import HTMLParser
class P(HTMLParser):
    def __init__(self):
        super().__init__(); self.rows = []; self.worst = []; self.gates = []; self.changes = []; self.pre = 0
        self.sections = {}; self.where = None; self.outputs = 0; self.records = {}; self.note = {}
    def handle_starttag(self, tag, a):
        a = dict(a); cls = a.get("class", "")
        if tag == "tr" and cls.startswith("ab-row"): self.rows.append(a)
        if tag == "tr" and cls == "ab-worst-row": self.worst.append(a)
        if tag == "tr" and cls == "gate-row": self.gates.append(a)
        if tag == "li" and cls == "change": self.changes.append(a["data-what"])
        if tag == "section" and a.get("id") == "ab-drill": self.sections["drill"] = "hidden" if "hidden" in a else a.get("data-trace")
        if tag == "div" and a.get("id") in ("ab-side-a", "ab-side-b"): self.where = a["id"][-1]
        if tag == "pre" and cls == "output": self.outputs += 1
        if tag == "div" and cls == "record": self.records[self.where] = self.records.get(self.where, 0) + 1
        if tag == "p" and "data-same-input" in a: self.note[a["id"]] = a["data-same-input"]
        if tag == "circle" and "data-run" in a: self.note.setdefault("trend", []).append(a["data-run"])
p = P(); p.feed(open(sys.argv[1]).read()); what = sys.argv[2]
if what == "match":
    # every number of the deltas table equals compare --json (same options)
    cmp = json.load(open(sys.argv[3])); want = []
    for e in cmp["evaluators"]:
        for r in e["rows"]:
            want.append((e["evaluator"], r["segment"] or "", r["measure"], r["n"], r["a"], r["b"], r["delta"], r["ci"][0],
                         r["ci"][1], r["p"], r["p_adjusted"], "%s %s %s" % (r["wins"], r["ties"], r["losses"]) if "wins" in r else "",
                         r["verdict"]))
    got = [(a["data-evaluator"], a["data-segment"], a["data-measure"], int(a["data-n"]), float(a["data-a"]), float(a["data-b"]),
            float(a["data-delta"]), float(a["data-ci"].split()[0]), float(a["data-ci"].split()[1]), float(a["data-p"]),
            float(a["data-p-adjusted"]) if a["data-p-adjusted"] else None, a["data-wins"], a["data-verdict"]) for a in p.rows]
    print("%d rows, %s" % (len(got), "equal" if got == want else "DIFFER: %r vs %r" % (got, want)))
    gw = [(g["gate"], g["ok"]) for g in cmp["gates"]]; gg = [(g["data-gate"], g["data-ok"] == "yes") for g in p.gates]
    print("gates", "equal" if gw == gg else "DIFFER")
    ww = [(e["evaluator"], w["trace_id"], w.get("segment", ""), w.get("a"), w.get("b")) for e in cmp["evaluators"] for w in e["regressed_most"]]
    wg = [(w["data-evaluator"], w["data-trace"], w["data-segment"], float(w["data-a"]), float(w["data-b"])) for w in p.worst]
    print("worst", "equal" if ww == wg else "DIFFER %r %r" % (ww, wg))
elif what == "changes": print(" ".join(p.changes))
elif what == "visible": print(sum("hidden" not in r for r in p.rows), sum("hidden" not in w for w in p.worst),
                              " ".join(w["data-trace"] for w in p.worst if "hidden" not in w))
elif what == "drill": print(p.sections.get("drill"), p.outputs, p.records.get("a", 0), p.records.get("b", 0))
elif what == "note": print(p.note.get(sys.argv[3]), " ".join(p.note.get("trend", [])))' "$@"
}
check "the deltas table holds compare --json's rows, number for number (6: all, x, y x mean, pass)" \
    "6 rows, equal|gates equal|worst equal" "$(abfacts "$TMP/ab_dom.html" match "$TMP/ab.json" | tr '\n' '|' | sed 's/|$//')"
check "what changed from A to B: the same input, fixed's param" "input_same params" "$(abfacts "$TMP/ab_dom.html" changes)"
check "the trend: only the runs on B's input (base, cand; not other, run 2)" "yes 1 3" \
    "$(abfacts "$TMP/ab_dom.html" note ab-trend-note)"
check "unfiltered: 6 delta rows, 5 most regressed traces" "6 5 t00 t01 t04 t07 t10" "$(abfacts "$TMP/ab_dom.html" visible)"
case "${ASSAY_BUILD:-build}" in
*asan*) echo "# the page's filters are checked with the plain build: the browser's work does not change with it" ;;
*)
browse "file://$TMP/ab.html#evaluator=fixed&segment=x&state=flip" "$TMP/ab_dom2.html" "$TMP/ab_chrome2.err"
check "filtered by segment x and 'passing in A, failing in B': 2 rows, the one trace (t04: 0.55 -> 0.35)" "2 1 t04" \
    "$(abfacts "$TMP/ab_dom2.html" visible)"
browse "file://$TMP/ab.html#segment=y&state=pass" "$TMP/ab_dom3.html" "$TMP/ab_chrome3.err"
check "segment y, passing in B: 2 rows, t10" "2 1 t10" "$(abfacts "$TMP/ab_dom3.html" visible)"
browse "file://$TMP/ab.html#evaluator=nosuch" "$TMP/ab_dom4.html" "$TMP/ab_chrome4.err"
check "an evaluator not in the runs: nothing shown" "0 0 " "$(abfacts "$TMP/ab_dom4.html" visible)"
;;
esac
browse "file://$TMP/ab.html#trace=t04" "$TMP/ab_dom5.html" "$TMP/ab_chrome5.err"
check "a trace opened: both outputs side by side, each run's one record" "t04 2 1 1" "$(abfacts "$TMP/ab_dom5.html" drill)"
check "still no console errors" "" "$(cat "$TMP"/ab_chrome*.err | grep -E 'CONSOLE|Uncaught')"
"$ASSAY" report --db "$AB" cand -o "$TMP/cand.html" 2>/dev/null
browse "file://$TMP/cand.html" "$TMP/cand_dom.html" "$TMP/cand_chrome.err"
check "one run's trend is on its input too: base and cand, not other" "yes 1 3" \
    "$(abfacts "$TMP/cand_dom.html" note trend-note)"
"$ASSAY" run --db "$AB" -e tests/store/fixed.lua --label piped <tests/store/pairs.jsonl >/dev/null 2>&1
"$ASSAY" report --db "$AB" piped -o "$TMP/piped.html" 2>/dev/null
browse "file://$TMP/piped.html" "$TMP/piped_dom.html" "$TMP/piped_chrome.err"
check "the same bytes from standard input are the same input: in the trend" "yes 1 3 4" \
    "$(abfacts "$TMP/piped_dom.html" note trend-note)"
# a run whose input hash is unknown (cleared here; a run killed before the end of its input)
python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); db.execute("UPDATE run_inputs SET hash = NULL WHERE run_id = 4"); db.commit()' "$AB"
"$ASSAY" report --db "$AB" piped -o "$TMP/piped.html" 2>/dev/null
browse "file://$TMP/piped.html" "$TMP/piped_dom.html" "$TMP/piped_chrome.err"
check "an input of unknown hash: the trend takes every run and says it is mixed" "no 1 2 3 4" \
    "$(abfacts "$TMP/piped_dom.html" note trend-note)"
"$ASSAY" report --db "$AB" base nosuch -o "$TMP/x.html" 2>"$TMP/ab_bad.err"
check "an unknown run B: exit 2, named" "2 yes" "$? $(grep -q "no run 'nosuch' in the store" "$TMP/ab_bad.err" && echo yes || echo no)"
"$ASSAY" report --db "$AB" cand --gate 'fixed.mean>=0.6' -o "$TMP/x.html" 2>/dev/null
check "compare's options with one run: exit 2" 2 $?

# the screenshot, for people to look at
shot=${ASSAY_BUILD:-build}/report.png
timeout 120 "$CHROME" --no-sandbox --disable-gpu --no-first-run --user-data-dir="$TMP/profile" --hide-scrollbars \
    --window-size=1300,2600 --virtual-time-budget=5000 --screenshot="$shot" "file://$TMP/report.html" >/dev/null 2>&1
check "a screenshot is saved in $shot" yes "$([ -s "$shot" ] && echo yes || echo no)"

done_testing
