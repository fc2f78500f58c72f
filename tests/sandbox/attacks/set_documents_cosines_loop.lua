-- kind: timeout
-- expect: time limit
-- S:tfidf_cosines() walks every document a Set has counted, in one C call: a plugin that
-- counts 100,000 documents and asks for their cosines over and over is stopped by the time
-- limit, inside the call or between two.
return { name = "set_documents_cosines_loop", evaluate = function(t)
  if t.id == "after" then return 1 end
  local D = assay.text.Set()
  for i = 1, 100000 do D:add_document("w" .. i .. " shared words") end
  while true do D:tfidf_cosines() end
end }
