-- llm_judge: what does a model say about the report, against a rubric?
--
--   asks the model (assay.llm.chat) for a JSON verdict {"score": 1..5, "reason": "..."} on the
--   trace's output, given its input and the rubric; the verdict may be wrapped in prose
--   score = (verdict.score - 1) / 4;  pass = score >= threshold
--   with a panel (models = "m1,m2,m3") each model is asked: the mean score, the majority pass
--   an answer without a usable verdict is asked again once, the problem told to the model;
--   still without one it is an error of the record, never a guess
-- Needs --llm-url (docs/llm.md). The prompts are below: change them here.
local llm = require("llm")
local result = require("result")

local SYSTEM = [[You are a strict, fair evaluator of research reports. You grade one report
against a rubric and answer with a single JSON object and nothing else:
{"score": <integer 1 to 5>, "reason": "<one or two sentences>"}]]

local USER = [[Rubric:
{{rubric}}

The user asked:
{{input}}

The report:
{{output}}

Grade the report from 1 (fails the rubric) to 5 (meets every point). Answer with the JSON object only.]]

local DEFAULT_RUBRIC = [[- Coverage: the report answers every part of the question.
- Accuracy: its statements are correct and specific, with no invented facts.
- Clarity: it is well organised and easy to follow.
- Citation use: claims that need support cite a source with [k] markers.]]

-- The models to ask: the panel's (params.models, "m1,m2,m3"), else params.model, else the
-- run's default (nil).
local function models_of(params)
  local list = {}
  for m in params.models:gmatch("[^,%s]+") do list[#list + 1] = m end
  if #list == 0 then list[1] = params.model ~= "" and params.model or false end
  return list
end

local function usable(v)
  local raw = math.tointeger(v.score)
  if not raw or raw < 1 or raw > 5 then return "no integer score from 1 to 5" end
end

-- A panel's record: the mean of the judges' scores, the majority of their passes (a tie
-- fails), each judge in details.panel; judges without a verdict are left out, counted.
local function panel_record(models, verdicts, problems, asked_again, threshold)
  local scores, passes, names, failed, sum, passed, judged = {}, {}, {}, 0, 0, 0, 0
  for i, m in ipairs(models) do
    names[i] = m
    local v = verdicts[i]
    if v then
      local score = (math.tointeger(v.score) - 1) / 4
      scores[i], passes[i] = score, score >= threshold
      sum, judged = sum + score, judged + 1
      if passes[i] then passed = passed + 1 end
    else
      scores[i], passes[i], failed = result.null, result.null, failed + 1
    end
  end
  if judged == 0 then error("no judge of the panel gave a verdict (" .. problems[1] .. ")", 0) end
  return {
    score = sum / judged,
    pass = 2 * passed > judged,
    details = { panel = { models = names, scores = scores, passes = passes, errors = failed },
                asked_again = asked_again > 0 },
  }
end

return {
  name = "llm_judge",
  description = "A model grades the report against a rubric (1-5, normalised to [0, 1]).",
  scope = "trace",
  params = { rubric = DEFAULT_RUBRIC, threshold = 0.6, model = "", models = "", temperature = 0, max_tokens = 300,
             max_report_chars = 12000 },

  evaluate = function(t, params)
    if type(t.output) ~= "string" or t.output == "" then return result.skip("no output") end
    local prompt = llm.prompt(USER, {
      rubric = params.rubric,
      input = llm.clip(type(t.input) == "string" and t.input or "(not recorded)", 4000),
      output = llm.clip(t.output, params.max_report_chars),
    })
    local models, requests = models_of(params), {}
    for i, m in ipairs(models) do
      requests[i] = { model = m or nil, temperature = params.temperature, max_tokens = params.max_tokens,
                      messages = { { role = "system", content = SYSTEM }, { role = "user", content = prompt } } }
    end
    local verdicts, problems, answers, asked_again = llm.chat_verdicts(assay.llm.chat_all, requests, usable)
    if #models > 1 then return panel_record(models, verdicts, problems, asked_again, params.threshold) end
    local verdict, answer = verdicts[1], answers[1]
    if not verdict then error("the judge gave no verdict with an integer score from 1 to 5 (" .. problems[1] .. ")", 0) end
    local raw = math.tointeger(verdict.score)
    local score = (raw - 1) / 4
    return {
      score = score,
      pass = score >= params.threshold,
      details = {
        judge_score = raw,
        reason = type(verdict.reason) == "string" and verdict.reason or result.null,
        model = answer.model or result.null,
        asked_again = asked_again > 0,
      },
    }
  end,
}
