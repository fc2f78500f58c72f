"""Converts the ReAct HotpotQA runs of react_hotpotqa_trial1.txt (the first trial of
noahshinn/reflexion's hotpotqa_runs/root/ReAct/base/100_questions_5_trials.txt, MIT, see
LICENSE.reflexion) into assay traces, with the run's outcome as metadata.em.

usage: react_to_traces.py < react_hotpotqa_trial1.txt > traces.jsonl

Each agent is a block from "Question:" to the next agent: Search[x] is a search step whose
results are the page it found (https://en.wikipedia.org/wiki/x, the observation as snippet)
or, when it found none, the similar titles it offered; Lookup[k] a "lookup" step; Finish[a]
the output. metadata.em is true for the agents listed as CORRECT, false for INCORRECT and
HALTED (no answer): 34, 56 and 10, as the trial's own summary line says."""
import json
import re
import sys

section = None
agents = []
current = None
for line in sys.stdin.read().split("\n"):
    m = re.match(r"-+ BEGIN (CORRECT|INCORRECT|HALTED) AGENTS -+", line)
    if m:
        section = m.group(1)
        continue
    if line.startswith("Question:") and section:
        current = {"section": section, "question": line[len("Question:"):].strip(), "actions": []}
        if any(a["question"] == current["question"] for a in agents):
            current = None  # the log repeats 3 agents under HALTED: the first listing counts
            continue
        agents.append(current)
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


def wiki(title):
    return "https://en.wikipedia.org/wiki/" + title.strip().strip('"').replace(" ", "_")


for n, a in enumerate(agents):
    steps, output = [], None
    for kind, arg, obs in a["actions"]:
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
    trace = {"id": "react-%03d" % n, "input": a["question"], "steps": steps,
             "metadata": {"em": a["section"] == "CORRECT", "outcome": a["section"].lower()}}
    if output is not None:
        trace["output"] = output
    print(json.dumps(trace))
