--[[
archive-record-1.lua — record one archive segment in a stream's archive index, only if it
continues the archived prefix exactly (next version, previous chain value). Two archivers racing on
one stream therefore cannot leave a gap or an overlap in the index: the loser is refused.

KEYS[1]  the index: sorted set `{pN}:archive:<kind>:<id>`, score = lastVersion, member = manifest JSON
ARGV[1]  manifest JSON
ARGV[2]  firstVersion
ARGV[3]  lastVersion
ARGV[4]  prevHash (chain value before the segment)

Returns  1 recorded · 0 the same version range was already recorded (a retry after a crash)
Errors   "ARCHIVE_GAP <why>" the segment does not continue the index
]]
local first = tonumber(ARGV[2])
local last = tonumber(ARGV[3])

local same = redis.call('ZRANGEBYSCORE', KEYS[1], last, last)
if #same > 0 then
  local m = cjson.decode(same[1])
  if tonumber(m.firstVersion) == first then return 0 end
  return redis.error_reply('ARCHIVE_GAP segment ' .. first .. '-' .. last .. ' overlaps an archived segment')
end

local head = redis.call('ZRANGE', KEYS[1], -1, -1)
if #head == 0 then
  if first ~= 1 then
    return redis.error_reply('ARCHIVE_GAP the first segment must start at version 1, not ' .. first)
  end
else
  local m = cjson.decode(head[1])
  if tonumber(m.lastVersion) + 1 ~= first then
    return redis.error_reply('ARCHIVE_GAP segment starts at ' .. first .. ' but the archive ends at ' .. m.lastVersion)
  end
  if m.lastHash ~= ARGV[4] then
    return redis.error_reply('ARCHIVE_GAP segment ' .. first .. '-' .. last .. ' does not continue the archived hash chain')
  end
end

redis.call('ZADD', KEYS[1], last, ARGV[1])
return 1
