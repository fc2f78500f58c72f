"""Checks JSON lines against one of assay's JSON Schemas (docs/schema/).

usage: schema_check.py SCHEMA FILE...   prints one line per invalid line, exits 1 if any.

A small validator of the keywords those schemas use (type, required, properties,
additionalProperties, items, enum, const, minimum, maximum, oneOf, $ref to #/$defs): a clean
machine needs nothing from PyPI. Any other keyword in a schema is refused, so the schemas
cannot say more than is checked."""
import json
import sys

KNOWN = {"$schema", "$id", "title", "description", "$defs", "type", "required", "properties",
         "additionalProperties", "items", "enum", "const", "minimum", "maximum", "oneOf", "$ref"}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def errors(schema, value, root, where):
    unknown = set(schema) - KNOWN
    if unknown:
        raise SystemExit("schema uses keywords this checker does not know: %s" % sorted(unknown))
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        yield from errors(root["$defs"][name], value, root, where)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            yield "%s: %s is not of type %s" % (where, json.dumps(value)[:60], "/".join(types))
            return
    if "const" in schema and value != schema["const"]:
        yield "%s: must be %s" % (where, json.dumps(schema["const"]))
    if "enum" in schema and value not in schema["enum"]:
        yield "%s: %s is not one of %s" % (where, json.dumps(value), schema["enum"])
    if TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            yield "%s: %s is below %s" % (where, value, schema["minimum"])
        if "maximum" in schema and value > schema["maximum"]:
            yield "%s: %s is above %s" % (where, value, schema["maximum"])
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                yield "%s: no field %s" % (where, key)
        properties = schema.get("properties", {})
        for key, item in value.items():
            if key in properties:
                yield from errors(properties[key], item, root, "%s.%s" % (where, key))
            elif schema.get("additionalProperties", True) is False:
                yield "%s: unknown field %s" % (where, key)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from errors(schema["items"], item, root, "%s[%d]" % (where, i))
    if "oneOf" in schema:
        passing = [s for s in schema["oneOf"] if not list(errors(s, value, root, where))]
        if len(passing) != 1:
            yield "%s: matches %d of the oneOf schemas, not exactly one" % (where, len(passing))


def main():
    schema = json.load(open(sys.argv[1]))
    bad = 0
    for path in sys.argv[2:]:
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if not line.strip():
                continue
            for e in errors(schema, json.loads(line), schema, "%s:%d" % (path, n)):
                print(e)
                bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
