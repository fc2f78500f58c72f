#!/usr/bin/env python3
"""The five shipped evaluators of docs/metrics.md, written the way a team would without assay:
standard library only, `json` for parsing, `re` for tokens. `make bench` times it against
assay and checks that both give the same numbers.

    scripts/bench_python.py TRACES.jsonl > records.jsonl
    scripts/bench_python.py --check ASSAY_RECORDS.jsonl TRACES.jsonl   # exit 1 on a mismatch
"""
import json
import math
import re
import sys

STOPWORDS = set("""a about above after again against all am an and any are as at be because been
before being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in into is
it its itself just me more most my myself no nor not now of off on once only or other our ours
ourselves out over own same she should so some such than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when where
which while who whom why will with would you your yours yourself yourselves""".split())

TOKEN = re.compile(rb"[A-Za-z0-9\x80-\xff]+")  # on UTF-8 bytes, so that words stay whole
MARKER = re.compile(r"\[([0-9]+)\]")
SENTENCE_END = re.compile(r"(?<=[.!?])(?=[ \t\r\n\f\v])|\n")
ASCII_SPACE = " \t\r\n\f\v"


def tokens(s):
    return [t.lower().decode() for t in TOKEN.findall(s.encode())]


def content_tokens(s):
    return [t for t in tokens(s) if t not in STOPWORDS]


def jaccard(a, b):
    union = len(a | b)
    return len(a & b) / union if union else 1.0


def url_key(url, keep_path=True):
    url = url.strip(ASCII_SPACE)
    m = re.match(r"([A-Za-z][A-Za-z0-9+.-]*)://", url)
    if m and not re.search(r"[/?#]", url[:m.start(0) + len(m.group(1))]):
        url = url[m.end():]
    url = url.split("#", 1)[0]
    m = re.match(r"([^/?]*)([^?]*)(?:\?(.*))?$", url, re.S)
    host, path, query = m.group(1), m.group(2), m.group(3)
    if host[:4].lower() == "www.":
        host = host[4:]
    port = re.search(r":(\d*)$", host)
    if port and (port.group(1) in ("80", "443") or not keep_path):
        host = host[:port.start()]
    host = host.encode().lower().decode()
    if not keep_path:
        return host
    if path.endswith("/"):
        path = path[:-1]
    key = host + path
    if query is not None:
        kept = [p for p in query.split("&") if not p.startswith("utm_")]
        if kept:
            key += "?" + "&".join(kept)
    return key


def text(v):
    return v if isinstance(v, str) else ""


def objects(v):
    return [x for x in v if isinstance(x, dict)] if isinstance(v, list) else []


def steps(trace, kind=None):
    return [s for s in objects(trace.get("steps")) if kind is None or s.get("type") == kind]


def result_text(r):
    return text(r.get("title")) + " " + text(r.get("snippet"))


def skipped(reason):
    return {"score": None, "pass": None, "details": {"skipped": reason}}


def query_diversity(trace):
    queries = [s["query"] for s in steps(trace, "search") if isinstance(s.get("query"), str)]
    if len(queries) < 2:
        return skipped("fewer than 2 search queries")
    sets = [set(tokens(q)) for q in queries]
    sims = [jaccard(sets[i], sets[j]) for i in range(len(sets)) for j in range(i + 1, len(sets))]
    score = 1 - sum(sims) / len(sims)
    return {"score": score, "pass": score >= 0.5, "details": {"max_pairwise_jaccard": max(sims)}}


def search_overlap(trace):
    url_sets = [{url_key(r["url"]) for r in objects(s.get("results")) if isinstance(r.get("url"), str)}
                for s in steps(trace, "search")]
    total = sum(len(u) for u in url_sets)
    if total == 0:
        return skipped("no search results with URLs")
    union = set().union(*url_sets)
    score = len(union) / total
    return {"score": score, "pass": score >= 0.5,
            "details": {"unique_domains": len({url_key(k, keep_path=False) for k in union})}}


def tfidf_cosines(documents):
    counts = [{} for _ in documents]
    for c, d in zip(counts, documents):
        for t in content_tokens(d):
            c[t] = c.get(t, 0) + 1
    df = {}
    for c in counts:
        for t in c:
            df[t] = df.get(t, 0) + 1
    n = len(documents)
    idf = {t: math.log((1 + n) / (1 + f)) + 1 for t, f in df.items()}
    vecs = [{t: k * idf[t] for t, k in c.items()} for c in counts]
    norms = [math.sqrt(sum(w * w for w in v.values())) for v in vecs]
    out = []
    for v, norm in zip(vecs[1:], norms[1:]):
        dot = sum(w * vecs[0].get(t, 0.0) for t, w in v.items())
        out.append(dot / (norms[0] * norm) if norms[0] * norm else 0.0)
    return out


def relevance(trace):
    prompt = set(content_tokens(text(trace.get("input"))))
    context = set(prompt)
    per_query, overlap, documents = [], [], [text(trace.get("input"))]
    for s in steps(trace):
        if s.get("type") == "search":
            if isinstance(s.get("query"), str):
                q = set(content_tokens(s["query"]))
                per_query.append(len(q & context) / len(q) if q else 0)
                overlap.append(len(q & prompt) / len(q) if q else 0)
            for r in objects(s.get("results")):
                documents.append(result_text(r))
                context |= set(content_tokens(documents[-1]))
        elif s.get("type") == "fetch":
            context |= set(content_tokens(text(s.get("content"))))
    if not per_query:
        return skipped("no search queries")
    cosines = tfidf_cosines(documents) if len(documents) > 1 else None
    return {"score": sum(per_query) / len(per_query), "pass": all(r >= 0.5 for r in per_query),
            "details": {"prompt_overlap": sum(overlap) / len(overlap),
                        "result_relevance": sum(cosines) / len(cosines) if cosines else None}}


def sentences(s):
    return [p.strip(ASCII_SPACE) for p in SENTENCE_END.split(s) if p.strip(ASCII_SPACE)]


def citation_support(trace):
    output = trace.get("output")
    if not isinstance(output, str):
        return skipped("no output")
    citations = trace.get("citations") if isinstance(trace.get("citations"), list) else []
    fetched, found = {}, {}
    for s in steps(trace):
        if s.get("type") == "fetch" and isinstance(s.get("url"), str):
            fetched.setdefault(url_key(s["url"]), text(s.get("content")))
        elif s.get("type") == "search":
            for r in objects(s.get("results")):
                if isinstance(r.get("url"), str):
                    found.setdefault(url_key(r["url"]), result_text(r))
    sources = {}
    for k, url in enumerate(citations, 1):
        key = url_key(url) if isinstance(url, str) else ""
        source = fetched.get(key, found.get(key)) if key else None
        sources[k] = set(tokens(source)) if source is not None else None
    pairs = supported = invalid = 0
    for sentence in sentences(output):
        if MARKER.match(sentence):
            continue
        claim = set(content_tokens(MARKER.sub("", sentence)))
        for k in dict.fromkeys(int(m) for m in MARKER.findall(sentence)):
            if not 1 <= k <= len(citations):
                invalid += 1
                continue
            pairs += 1
            source = sources[k]
            support = 0 if source is None else 1 if not claim else len(claim & source) / len(claim)
            supported += support >= 0.6
    if pairs == 0:
        return skipped("no citation markers pointing into citations")
    score = supported / pairs
    return {"score": score, "pass": score >= 0.7 and invalid == 0, "details": {"invalid_markers": invalid}}


def expect(trace):
    e = trace.get("expected")
    if not isinstance(e, dict):
        return skipped("no expected object")
    output = text(trace.get("output"))
    checks = []
    if isinstance(e.get("equals"), str):
        checks.append(output == e["equals"])
    if isinstance(e.get("contains"), list):
        checks.append(all(s in output for s in e["contains"] if isinstance(s, str)))
    if isinstance(e.get("not_contains"), list):
        checks.append(not any(s in output for s in e["not_contains"] if isinstance(s, str)))
    if isinstance(e.get("regex"), str):
        checks.append(re.search(e["regex"], output) is not None)  # Python's dialect, not POSIX
    if isinstance(e.get("max_chars"), int) and not isinstance(e.get("max_chars"), bool):
        checks.append(len(output) <= e["max_chars"])
    if e.get("json") is True:
        try:
            json.loads(output)
            checks.append(True)
        except ValueError:
            checks.append(False)
    if not checks:
        return skipped("expected has none of the known checks")
    return {"score": sum(checks) / len(checks), "pass": all(checks)}


EVALUATORS = [citation_support, expect, query_diversity, relevance, search_overlap]


def records(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            trace = json.loads(line)
            for evaluate in EVALUATORS:
                yield {"trace_id": trace["id"], "evaluator": evaluate.__name__, **evaluate(trace)}


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def check(assay_path, traces_path):
    """Compares score, pass and the numeric details both compute; prints the first mismatches."""
    theirs = {}
    with open(assay_path, encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            theirs[(r["trace_id"], r["evaluator"])] = r
    compared = mismatched = 0
    for mine in records(traces_path):
        r = theirs.get((mine["trace_id"], mine["evaluator"]))
        fields = [("score", mine["score"], r and r["score"]), ("pass", mine["pass"], r and r["pass"])]
        for k, v in (mine.get("details") or {}).items():
            fields.append(("details." + k, v, r and (r.get("details") or {}).get(k)))
        for name, want, got in fields:
            compared += 1
            if r is None or not same(want, got):
                mismatched += 1
                if mismatched <= 10:
                    print(f"mismatch {mine['trace_id']} {mine['evaluator']} {name}: python {want!r}, assay {got!r}",
                          file=sys.stderr)
    print(f"python vs assay: {compared} values compared, {mismatched} differ", file=sys.stderr)
    return 1 if mismatched else 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--check":
        sys.exit(check(sys.argv[2], sys.argv[3]))
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.stdout
    for r in records(sys.argv[1]):
        out.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
