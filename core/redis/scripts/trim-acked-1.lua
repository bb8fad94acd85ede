-- Remove the entries of a consumer-group stream that every group has delivered and acknowledged
-- (docs/consumer.md, "Trimming what was acknowledged"): a command stream is a queue, not a log, and
-- without this it kept every command ever sent.
--
-- KEYS[1] the stream (a partition's command stream or a redrive stream)
--
-- The bound is, over every group of the stream, its oldest pending entry (delivered, not yet
-- acknowledged: a retry or a reclaim still needs it) or, with nothing pending, its last-delivered
-- id (everything after it is still to be read). XTRIM MINID removes only entries below the lowest
-- bound, so nothing pending or undelivered for any group is touched, and the groups' lag stays
-- computable (no entry after a last-delivered id is removed). The last-delivered entry itself is
-- kept. In one script, so no delivery or claim can fall between reading the bound and trimming.
--
-- Returns the number of entries removed (0 without groups, or when the stream does not exist).
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', stream)
if #groups == 0 then return 0 end

local function parts(id)
  local ms, seq = string.match(id or '', '^(%d+)%-(%d+)$')
  return tonumber(ms), tonumber(seq)
end

local bound, boundMs, boundSeq = nil, nil, nil
for _, g in ipairs(groups) do
  local name, last = nil, nil
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  local candidate = last
  local summary = redis.call('XPENDING', stream, name)
  if tonumber(summary[1]) > 0 then candidate = summary[2] end
  local ms, seq = parts(candidate)
  -- An id in a form we do not know: trim nothing rather than guess.
  if ms == nil then return 0 end
  if bound == nil or ms < boundMs or (ms == boundMs and seq < boundSeq) then
    bound, boundMs, boundSeq = candidate, ms, seq
  end
end
if boundMs == 0 and boundSeq == 0 then return 0 end
return redis.call('XTRIM', stream, 'MINID', bound)
