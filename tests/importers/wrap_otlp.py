"""Wraps span attribute maps (the otel/ fixtures: flat {key: value} objects) in an OTLP/JSON
export, as children of one agent root span, in the order given.

usage: wrap_otlp.py FILE.json... > export.jsonl"""
import json
import sys


def attr(key, value):
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, list):
        return {"key": key, "value": {"arrayValue": {"values": [attr("", v)["value"] for v in value]}}}
    return {"key": key, "value": {"stringValue": value if isinstance(value, str) else json.dumps(value)}}


tid, root = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
spans = [{"traceId": tid, "spanId": root, "name": "invoke_agent weather", "startTimeUnixNano": "1700000000000000000",
          "endTimeUnixNano": "1700000009000000000", "attributes": [attr("gen_ai.operation.name", "invoke_agent")]}]
for i, path in enumerate(sys.argv[1:], 1):
    start = 1700000000000000000 + i * 10**9
    spans.append({"traceId": tid, "spanId": "%016x" % i, "parentSpanId": root, "name": path.rsplit("/", 1)[-1],
                  "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 250 * 10**6),
                  "attributes": [attr(k, v) for k, v in json.load(open(path)).items()]})
print(json.dumps({"resourceSpans": [{"resource": {"attributes": [attr("service.name", "fixtures")]},
                                     "scopeSpans": [{"scope": {"name": "wrap_otlp"}, "spans": spans}]}]}))
