--[[
archive-log-record-1.lua — record one partition-log archive segment, only if it starts right after
the archived prefix of the log (the caller read it after `afterId`, the index's end it saw).

KEYS[1]  the index: sorted set `{pN}:archive:log`, score = segment number (0, 1, …), member = manifest JSON
ARGV[1]  manifest JSON
ARGV[2]  afterId: the archived end the segment was read after ("0-0" when the index was empty)
ARGV[3]  lastId of the segment

Returns  1 recorded · 0 already recorded (same lastId: a retry after a crash)
Errors   "ARCHIVE_GAP <why>"
]]
local head = redis.call('ZRANGE', KEYS[1], -1, -1)
local n = redis.call('ZCARD', KEYS[1])
if #head == 0 then
  if ARGV[2] ~= '0-0' then return redis.error_reply('ARCHIVE_GAP the log archive is empty, not at ' .. ARGV[2]) end
else
  local m = cjson.decode(head[1])
  if m.lastId == ARGV[3] then return 0 end
  if m.lastId ~= ARGV[2] then
    return redis.error_reply('ARCHIVE_GAP segment was read after ' .. ARGV[2] .. ' but the log archive ends at ' .. m.lastId)
  end
end
redis.call('ZADD', KEYS[1], n, ARGV[1])
return 1
