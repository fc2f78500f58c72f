"""Writes assay traces in the formats `assay import` reads, for the round-trip test.

usage: export.py FORMAT < traces.jsonl > out
  FORMAT: otlp-genai | otlp-openinference | chat

Tool names and result shapes vary from step to step (Tavily, Serper, Brave, Exa, Bing,
SerpAPI, a Markdown list; fetch, scrape, web_fetch, ...), so that the import has to recognise
each. OTLP: every fourth trace is split over two export lines with a third trace's spans in
between, every third uses base64 ids, and ids of the GenAI flavour are hex."""
import base64
import hashlib
import json
import sys

SEARCH_TOOLS = ["tavily_search", "web_search", "serper_google_search", "brave_search", "exa_search",
                "bing_search", "serpapi_search", "duckduckgo_results"]
FETCH_TOOLS = ["fetch_url", "scrape_page", "web_fetch", "visit_page", "browse_url", "read_url"]


def shape(tool, results):
    """The tool's output in the shape of the API its name suggests."""
    if tool.startswith("tavily"):
        return {"results": [{"url": r["url"], "title": r.get("title"), "content": r.get("snippet")} for r in results]}
    if tool.startswith("serper"):
        return {"organic": [{"link": r["url"], "title": r.get("title"), "snippet": r.get("snippet")} for r in results]}
    if tool.startswith("brave"):
        return {"web": {"results": [{"url": r["url"], "title": r.get("title"), "description": r.get("snippet")} for r in results]}}
    if tool.startswith("exa"):
        return {"results": [{"url": r["url"], "title": r.get("title"), "text": r.get("snippet")} for r in results]}
    if tool.startswith("bing"):
        return {"webPages": {"value": [{"url": r["url"], "name": r.get("title"), "snippet": r.get("snippet")} for r in results]}}
    if tool.startswith("serpapi"):
        return {"organic_results": [{"link": r["url"], "title": r.get("title"), "snippet": r.get("snippet")} for r in results]}
    if tool.startswith("duckduckgo"):
        return [{"href": r["url"], "title": r.get("title"), "body": r.get("snippet")} for r in results]
    return "\n".join("%d. [%s](%s)" % (i + 1, r.get("title") or "", r["url"]) for i, r in enumerate(results))


def calls(trace, n):
    """Each step as (kind, tool name, arguments, result) with the tool names varied."""
    out = []
    for i, s in enumerate(trace.get("steps") or []):
        if s.get("type") == "search":
            tool = SEARCH_TOOLS[(n + i) % len(SEARCH_TOOLS)]
            key = "q" if (n + i) % 3 == 0 else "query"
            out.append(("tool", tool, {key: s.get("query", "")}, shape(tool, s.get("results") or [])))
        elif s.get("type") == "fetch":
            tool = FETCH_TOOLS[(n + i) % len(FETCH_TOOLS)]
            out.append(("tool", tool, {"url": s.get("url")}, s.get("content") or ""))
        elif s.get("type") == "llm":
            out.append(("llm", s.get("model") or "m", s.get("input") or "", s.get("output") or ""))
    return out


def attr(key, value):
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": value if isinstance(value, str) else json.dumps(value)}
    return {"key": key, "value": v}


def ids(trace_id, n):
    digest = hashlib.sha256(trace_id.encode()).digest()
    tid = digest[:16]
    return tid.hex() if n % 3 else base64.b64encode(tid).decode()


def span_id(trace_id, k, n):
    raw = hashlib.sha256(("%s/%d" % (trace_id, k)).encode()).digest()[:8]
    return raw.hex() if n % 3 else base64.b64encode(raw).decode()


def otlp_spans(trace, n, flavour):
    tid = ids(trace["id"], n)
    root = span_id(trace["id"], 0, n)
    t0 = 1700000000000000000 + n * 10**10
    a = [attr("gen_ai.operation.name", "invoke_agent")] if flavour == "genai" else [attr("openinference.span.kind", "AGENT")]
    if flavour == "genai":
        a.append(attr("gen_ai.input.messages", [{"role": "user", "parts": [{"type": "text", "content": trace.get("input", "")}]}]))
        a.append(attr("gen_ai.output.messages", [{"role": "assistant", "parts": [{"type": "text", "content": trace.get("output", "")}]}]))
    else:
        a.append(attr("input.value", trace.get("input", "")))
        a.append(attr("output.value", trace.get("output", "")))
    spans = [{"traceId": tid, "spanId": root, "name": "agent", "startTimeUnixNano": str(t0),
              "endTimeUnixNano": str(t0 + 10**9), "attributes": a}]
    for k, (kind, name, args, result) in enumerate(calls(trace, n), 1):
        start = t0 + k * 10**6
        if kind == "llm":
            if flavour == "genai":
                a = [attr("gen_ai.operation.name", "chat"), attr("gen_ai.request.model", name)]
            else:
                a = [attr("openinference.span.kind", "LLM"), attr("llm.model_name", name)]
        elif flavour == "genai":
            a = [attr("gen_ai.operation.name", "execute_tool"), attr("gen_ai.tool.name", name),
                 attr("gen_ai.tool.call.arguments", args), attr("gen_ai.tool.call.result", result)]
        else:
            a = [attr("openinference.span.kind", "TOOL"), attr("tool.name", name), attr("input.value", json.dumps(args)),
                 attr("output.value", result if isinstance(result, str) else json.dumps(result))]
        spans.append({"traceId": tid, "spanId": span_id(trace["id"], k, n), "parentSpanId": root, "name": name,
                      "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 5 * 10**5), "attributes": a})
    return spans


def envelope(spans):
    return json.dumps({"resourceSpans": [{"resource": {"attributes": [attr("service.name", "roundtrip")]},
                                          "scopeSpans": [{"scope": {"name": "export.py"}, "spans": spans}]}]})


def main():
    fmt = sys.argv[1]
    traces = [json.loads(line) for line in sys.stdin if line.strip()]
    if fmt == "chat":
        for n, t in enumerate(traces):
            messages = [{"role": "user", "content": t.get("input", "")}]
            for k, (kind, name, args, result) in enumerate(calls(t, n)):
                if kind != "tool":
                    continue
                call_id = "call_%d" % k
                messages.append({"role": "assistant", "content": None, "tool_calls": [
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]})
                messages.append({"role": "tool", "tool_call_id": call_id,
                                 "content": result if isinstance(result, str) else json.dumps(result)})
            messages.append({"role": "assistant", "content": t.get("output", "")})
            print(json.dumps({"id": t["id"], "messages": messages}))
        return
    flavour = "genai" if fmt == "otlp-genai" else "openinference"
    held = None  # the second half of a split trace, written after the next trace
    for n, t in enumerate(traces):
        spans = otlp_spans(t, n, flavour)
        if n % 4 == 1 and len(spans) > 2:
            print(envelope(spans[len(spans) // 2:]))  # children first: the root comes later
            held = spans[:len(spans) // 2]
            continue
        print(envelope(spans))
        if held:
            print(envelope(held))
            held = None
    if held:
        print(envelope(held))


main()
