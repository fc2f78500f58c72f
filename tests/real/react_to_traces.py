"""Converts the ReAct HotpotQA runs of noahshinn/reflexion (MIT, see LICENSE.reflexion) into
assay traces, with each run's outcome as metadata.em.

usage: react_to_traces.py react_base_5_trials.txt.xz react_reflexion_7_trials.txt.xz > traces.jsonl

The logs list, trial after trial, the agents of each trial under CORRECT, INCORRECT and
HALTED (no answer). An agent is a block from "Question:" to the next one: Search[x] is a
search step whose results are the page it found (https://en.wikipedia.org/wiki/x, the
observation as snippet) or, when it found none, the similar titles it offered; Lookup[k] a
"lookup" step; Finish[a] the output. A run is kept once: later trials repeat the runs of
agents already solved (or list them without their run, which is skipped), and a trial may
list a run twice. metadata: em (true for CORRECT), outcome, source (the log), trial."""
import json
import lzma
import re
import sys


def wiki(title):
    return "https://en.wikipedia.org/wiki/" + title.strip().strip('"').replace(" ", "_")


def agents_of(path):
    """The agents of every trial of one log, in order."""
    trial, section, current = 0, None, None
    for line in lzma.open(path, "rt", encoding="utf-8").read().split("\n"):
        if line.startswith("Trial summary:"):
            trial, section, current = trial + 1, None, None
            continue
        m = re.match(r"-+ BEGIN (CORRECT|INCORRECT|HALTED) AGENTS -+", line)
        if m:
            section = m.group(1)
            continue
        if line.startswith("Question:") and section:
            current = {"section": section, "question": line[len("Question:"):].strip(), "actions": [],
                       "trial": trial}
            yield current
            continue
        if current is None:
            continue
        m = re.match(r"Action \d+: (Search|Lookup|Finish)\[(.*)\]\s*$", line)
        if m:
            current["actions"].append([m.group(1), m.group(2), ""])
            continue
        m = re.match(r"Observation \d+: (.*)$", line)
        if m and current["actions"]:
            current["actions"][-1][2] = m.group(1)


def trace_of(agent, source, n):
    steps, output = [], None
    for kind, arg, obs in agent["actions"]:
        if kind == "Search":
            similar = re.match(r"Could not find .*Similar: \[(.*)\]\.?\s*$", obs)
            if similar:
                titles = re.findall(r"'([^']*)'|\"([^\"]*)\"", similar.group(1))
                results = [{"url": wiki(t[0] or t[1]), "title": t[0] or t[1]} for t in titles]
            elif obs.startswith("Could not find"):
                results = []
            else:
                results = [{"url": wiki(arg), "title": arg, "snippet": obs}]
            steps.append({"type": "search", "query": arg, "results": results})
        elif kind == "Lookup":
            steps.append({"type": "lookup", "keyword": arg, "observation": obs})
        else:
            output = arg
    trace = {"id": "%s-%03d" % (source, n), "input": agent["question"], "steps": steps,
             "metadata": {"em": agent["section"] == "CORRECT", "outcome": agent["section"].lower(),
                          "source": source, "trial": agent["trial"]}}
    if output is not None:
        trace["output"] = output
    return trace


seen = set()
for path in sys.argv[1:]:
    source = "reflexion" if "reflexion_" in path else "base"
    n = 0
    for agent in list(agents_of(path)):
        key = (agent["question"], json.dumps(agent["actions"]))
        if not agent["actions"] or key in seen:
            continue
        seen.add(key)
        print(json.dumps(trace_of(agent, source, n)))
        n += 1
