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

# the screenshot, for people to look at
shot=${ASSAY_BUILD:-build}/report.png
timeout 120 "$CHROME" --no-sandbox --disable-gpu --no-first-run --user-data-dir="$TMP/profile" --hide-scrollbars \
    --window-size=1300,2600 --virtual-time-budget=5000 --screenshot="$shot" "file://$TMP/report.html" >/dev/null 2>&1
check "a screenshot is saved in $shot" yes "$([ -s "$shot" ] && echo yes || echo no)"

done_testing
