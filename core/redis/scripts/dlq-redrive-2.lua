-- Put one dead letter back for the group that failed it, and remove it from the DLQ, atomically.
-- The copy goes to that group's redrive stream {pN}:redrive:<group>, not to the origin stream: a
-- partition log is shared by several groups, and only the failing one must see the entry again.
--
-- KEYS[1] dead-letter stream {pN}:dlq
-- KEYS[2] redrive stream {pN}:redrive:<group>
-- ARGV[1] dead letter id
-- ARGV[2] group the caller read from the entry (checked again here, under the script's atomicity)
--
-- Returns the new entry id in the redrive stream, or false when the dead letter is gone or its
-- group differs.
local entry = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if not entry[1] then return false end
local fields = entry[1][2]
local meta = {}
local out = {}
for i = 1, #fields, 2 do
  local k = fields[i]
  if string.sub(k, 1, 2) == 'f:' then
    out[#out + 1] = string.sub(k, 3)
    out[#out + 1] = fields[i + 1]
  else
    meta[k] = fields[i + 1]
  end
end
if meta['group'] ~= ARGV[2] then return false end
out[#out + 1] = '_origin'
out[#out + 1] = meta['origin'] or ''
out[#out + 1] = '_originId'
out[#out + 1] = meta['originId'] or ''
out[#out + 1] = '_deadLetter'
out[#out + 1] = ARGV[1]
local id = redis.call('XADD', KEYS[2], '*', unpack(out))
redis.call('XDEL', KEYS[1], ARGV[1])
return id
