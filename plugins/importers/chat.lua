-- chat.lua - a chat transcript (an OpenAI-style message list with tool calls) to an assay
-- trace. The document (docs/importers.md): { id, messages, metadata? }.
local import = require("import")

local function map(doc, params)
  local messages = doc.messages or {}
  return import.finish({
    id = doc.id,
    input = import.first_user_text(messages),
    output = import.last_assistant_text(messages),
    steps = import.steps_from_messages(messages, params),
    metadata = doc.metadata,
  })
end

return {
  name = "import",
  description = "a chat transcript (messages with tool calls) to an assay trace",
  params = { search_tools = "", fetch_tools = "" },
  map = map,
}
