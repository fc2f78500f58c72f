-- pairwise_judge: which of two answers to the same question is better, for `assay pairwise`
-- (docs/llm.md), which asks it in both orders to cancel a preference for a position.
--
--   the model sees the question, answer 1 (the pair's first) and answer 2, and the rubric, and
--   answers {"winner": 1 | 2 | "tie", "reason": "..."}
--   score = 1 when answer 1 wins, 0 when answer 2 does, 0.5 for a tie
--   an answer without a usable verdict is asked again once, then an error, never a guess
-- Needs --llm-url. The prompts are below: change them here.
local llm = require("llm")
local result = require("result")

local SYSTEM = [[You compare two answers to the same question, strictly and fairly, against a
rubric. The order in which they are shown says nothing about their quality. You answer with a
single JSON object and nothing else: {"winner": 1 or 2 or "tie", "reason": "<one sentence>"}]]

local USER = [[Rubric:
{{rubric}}

The question:
{{input}}

Answer 1:
{{first}}

Answer 2:
{{second}}

Which answer meets the rubric better? Answer with the JSON object only.]]

local DEFAULT_RUBRIC = [[- It answers every part of the question, correctly and specifically.
- It invents no facts; claims that need support cite a source.
- It is clear and well organised.]]

local function usable(v)
  if v.winner ~= 1 and v.winner ~= 2 and v.winner ~= "tie" then return 'no winner of 1, 2 or "tie"' end
end

return {
  name = "pairwise_judge",
  description = "Pairwise: a model says which of two answers meets a rubric better (1, 2 or a tie).",
  params = { rubric = DEFAULT_RUBRIC, model = "", temperature = 0, max_tokens = 200, max_answer_chars = 8000 },

  evaluate = function(t, params)
    local outputs = t.outputs or {}
    local text = function(v) return llm.clip(type(v) == "string" and v or "(no answer)", params.max_answer_chars) end
    local verdicts, problems = llm.chat_verdicts(assay.llm.chat_all, { {
      model = params.model ~= "" and params.model or nil,
      temperature = params.temperature,
      max_tokens = params.max_tokens,
      messages = {
        { role = "system", content = SYSTEM },
        { role = "user", content = llm.prompt(USER, {
            rubric = params.rubric, input = type(t.input) == "string" and t.input or "(not recorded)",
            first = text(outputs[1]), second = text(outputs[2]) }) },
      },
    } }, usable)
    local v = verdicts[1]
    if not v then error("the judge named no winner (" .. problems[1] .. ")", 0) end
    return {
      score = v.winner == 1 and 1 or v.winner == 2 and 0 or 0.5,
      details = { winner = v.winner, reason = type(v.reason) == "string" and v.reason or result.null },
    }
  end,
}
