-- Exercises assay.text's set functions and stopwords on fixed strings; the cases file holds
-- hand-computed expectations.
local text = assay.text
local result = require("result")

return {
  name = "text_module",
  evaluate = function()
    local into = text.content_set("reef bleaching")
    local same = text.content_set("The coral REEF", into)
    local big = text.token_set("w1 w2 w3 w4 w5 w6 w7 w8")
    local small = text.token_set("w2 w9")
    return {
      score = 1,
      details = {
        into_keys = result.sorted_keys(into),
        into_is_returned = same == into,
        small_big = text.intersection_size(small, big),
        big_small = text.intersection_size(big, small),
        equal_sizes = text.intersection_size(text.token_set("x y"), text.token_set("y z")),
        empty_big = text.intersection_size({}, big),
        big_empty = text.intersection_size(big, {}),
        content = text.content_tokens("A I am whom yourselves Yourself ourselves zebra 9am between betwee"),
        stopwords = { text.is_stopword("whom"), text.is_stopword("between"), text.is_stopword("betwee"),
                      text.is_stopword("Whom") },
      },
    }
  end,
}
