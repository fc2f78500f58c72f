#!/usr/bin/env python3
"""Deterministic generator of deep-research traces in assay's format (docs/format.md).

Used for examples/traces/deep-research.jsonl, the end-to-end tests and the benchmarks.
Each trace picks a topic and a behaviour: diverse or rephrased queries, fresh or
overlapping results, supported or unsupported citations, fetched pages, an optional
`expected` block, and metadata segments to group by.

    scripts/gen_traces.py --count 60 --seed 1 > traces.jsonl
    scripts/gen_traces.py --size-mb 200 --seed 7 > big.jsonl     # for benchmarks
    scripts/gen_traces.py --count 1000 --messy > messy.jsonl     # with broken lines
"""
import argparse
import json
import random
import sys

TOPICS = [
    ("How does microplastic pollution affect marine fish populations?",
     ["microplastics", "marine", "fish", "ingestion", "gills", "toxicity", "plankton", "ocean", "polymer", "food web"],
     ["noaa.gov", "nature.com", "sciencedirect.com", "oceanconservancy.org", "pubmed.ncbi.nlm.nih.gov"]),
    ("What are the trade-offs between lithium-ion and sodium-ion batteries for grid storage?",
     ["lithium", "sodium", "battery", "grid", "storage", "cost", "cycle life", "energy density", "cathode", "supply chain"],
     ["energy.gov", "iea.org", "batteryuniversity.com", "nature.com", "bloomberg.com"]),
    ("How effective are carbon taxes at reducing emissions?",
     ["carbon", "tax", "emissions", "policy", "price", "elasticity", "revenue", "sweden", "canada", "abatement"],
     ["worldbank.org", "oecd.org", "imf.org", "brookings.edu", "carbonbrief.org"]),
    ("What causes coral reef bleaching and can reefs recover?",
     ["coral", "reef", "bleaching", "temperature", "recovery", "symbiosis", "algae", "acidification", "heatwave", "restoration"],
     ["noaa.gov", "aims.gov.au", "nature.com", "reefresilience.org", "science.org"]),
    ("How do large language models handle long-context retrieval?",
     ["language", "models", "context", "retrieval", "attention", "benchmark", "needle", "tokens", "memory", "position"],
     ["arxiv.org", "openreview.net", "huggingface.co", "anthropic.com", "github.com"]),
    ("What is the evidence on remote work and productivity?",
     ["remote", "work", "productivity", "hybrid", "office", "survey", "output", "collaboration", "commute", "wellbeing"],
     ["nber.org", "hbr.org", "stanford.edu", "bls.gov", "mckinsey.com"]),
    ("How do mRNA vaccines work and what are their long-term effects?",
     ["mrna", "vaccine", "immune", "spike", "protein", "antibody", "safety", "myocarditis", "lipid", "nanoparticle"],
     ["cdc.gov", "who.int", "nejm.org", "nih.gov", "thelancet.com"]),
    ("Why did the 2008 financial crisis happen?",
     ["financial", "crisis", "mortgage", "subprime", "leverage", "banks", "securitization", "lehman", "regulation", "housing"],
     ["federalreserve.gov", "imf.org", "economist.com", "nber.org", "bis.org"]),
    ("How does urban heat island effect impact public health?",
     ["urban", "heat", "island", "health", "mortality", "trees", "albedo", "temperature", "cities", "cooling"],
     ["epa.gov", "who.int", "nature.com", "thelancet.com", "c40.org"]),
    ("What are the main approaches to quantum error correction?",
     ["quantum", "error", "correction", "qubits", "surface code", "logical", "threshold", "decoherence", "fault tolerance", "stabilizer"],
     ["arxiv.org", "nature.com", "ibm.com", "quantum-journal.org", "aps.org"]),
    ("量子コンピュータの誤り訂正はどのように機能しますか？",
     ["量子", "誤り訂正", "qubits", "surface code", "論理", "閾値", "デコヒーレンス", "stabilizer"],
     ["arxiv.org", "riken.jp", "nature.com"]),
]
FILLER = ["study", "report", "analysis", "review", "data", "evidence", "findings", "results", "trends", "impact"]
SEGMENTS = ["free", "pro", "enterprise"]
MODELS = ["gpt-4.1", "claude-sonnet-4", "gpt-5"]


def url(rng, domains, words):
    slug = "-".join(rng.sample(words, 2)).replace(" ", "-")
    variants = ["https://www.{d}/{s}", "https://{d}/{s}/", "http://{d}/{s}?utm_source=agent", "https://{d}/{s}#section-2"]
    return rng.choice(variants).format(d=rng.choice(domains), s=slug)


def sentence(rng, words, n):
    picked = [rng.choice(words) for _ in range(n)]
    return " ".join(picked + rng.sample(FILLER, 2)).capitalize()


def make_trace(rng, index, long_text):
    prompt, words, domains = rng.choice(TOPICS)
    behaviour = rng.random()
    n_queries = rng.randint(3, 7)
    rephrase = behaviour < 0.25          # five rephrasings of one query
    off_topic = 0.25 <= behaviour < 0.35  # wanders away from the prompt
    overlap = rng.random() < 0.4         # searches return the same pages
    base = rng.sample(words, 3)
    steps, all_results, pool = [], [], [url(rng, domains, words) for _ in range(4)]
    for q in range(n_queries):
        if rephrase:
            query = " ".join(base + ([rng.choice(FILLER)] if q % 2 else []))
        elif off_topic and q >= 2:
            query = " ".join(rng.sample(["celebrity", "football", "recipes", "weather", "lottery", "movies"], 3))
        else:
            query = " ".join(rng.sample(words, rng.randint(2, 4)))
        results = []
        for _ in range(rng.randint(3, 8)):
            u = rng.choice(pool) if overlap else url(rng, domains, words)
            results.append({"url": u, "title": sentence(rng, words, 3), "snippet": sentence(rng, words, 12 if long_text else 8)})
        steps.append({"type": "search", "query": query, "results": results, "latency_ms": rng.randint(80, 900)})
        all_results.extend(results)
        if rng.random() < 0.5:
            page = rng.choice(results)
            content = " ".join(sentence(rng, words, 10) + "." for _ in range(rng.randint(5, 40 if long_text else 12)))
            steps.append({"type": "fetch", "url": page["url"], "content": content, "latency_ms": rng.randint(100, 2000)})
    steps.append({"type": "llm", "model": rng.choice(MODELS), "input": prompt, "output": "draft",
                  "usage": {"input_tokens": rng.randint(2000, 30000), "output_tokens": rng.randint(500, 4000)}})
    citations = [r["url"] for r in rng.sample(all_results, min(len(all_results), rng.randint(2, 6)))]
    support_rate = rng.random()
    lines = ["# " + prompt, ""]
    by_url = {r["url"]: r for r in all_results}
    for k, c in enumerate(citations, 1):
        for _ in range(rng.randint(1, 3)):
            if rng.random() < support_rate:
                claim = by_url[c]["snippet"]      # claim taken from the cited source
            else:
                claim = sentence(rng, words + ["unrelated", "claims", "speculation"], 8)
            lines.append("%s [%d]." % (claim, k))
    if rng.random() < 0.15:
        lines.append("This conclusion is widely accepted [%d]." % (len(citations) + 3))
    if rng.random() < 0.1:
        lines.append("As an AI language model, I cannot verify every source.")
    lines += ["", "## Sources"] + ["[%d] %s: %s" % (k, "Source", c) for k, c in enumerate(citations, 1)]
    output = "\n".join(lines)
    trace = {
        "id": "dr-%05d" % index,
        "input": prompt,
        "output": output,
        "citations": citations,
        "steps": steps,
        "metadata": {"segment": rng.choice(SEGMENTS), "model": rng.choice(MODELS),
                     "prompt_version": rng.choice(["v1", "v2"])},
    }
    if rng.random() < 0.5:
        trace["expected"] = {"contains": ["## Sources"], "max_chars": rng.choice([2000, 6000, 20000]),
                             "not_contains": ["As an AI"]}
    return trace


MESSY = ['{"id": "broken", "input": ', 'not json at all', '[1, 2, 3]', '{"input": "no id"}',
         '{"id": 42}', '{"id": "odd-shapes", "steps": {"type": "search"}, "citations": "x", "output": 7}']


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--size-mb", type=float, default=0, help="generate until this many MB (overrides --count)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--messy", action="store_true", help="mix in malformed lines")
    ap.add_argument("--long", action="store_true", help="longer pages and snippets (~15 KB traces)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    out = sys.stdout
    written, i = 0, 0
    limit = args.size_mb * 1e6
    while (written < limit) if limit else (i < args.count):
        if args.messy and rng.random() < 0.05:
            line = rng.choice(MESSY)
        else:
            line = json.dumps(make_trace(rng, i, args.long), ensure_ascii=False, separators=(",", ":"))
        out.write(line + "\n")
        written += len(line.encode()) + 1
        i += 1


if __name__ == "__main__":
    main()
