-- Move one pending stream entry to the dead-letter stream and acknowledge it, atomically (I5).
-- Both keys carry the partition's {pN} hash tag, so this runs unchanged on Redis Cluster.
--
-- KEYS[1] origin stream (partition log, command stream or redrive stream)
-- KEYS[2] dead-letter stream {pN}:dlq
-- ARGV[1] consumer group
-- ARGV[2] entry id in the origin stream
-- ARGV[3] consumer expected to own the entry ("" = any): a consumer that lost the entry to a
--         reclaim by another consumer must not dead-letter it behind that consumer's back
-- ARGV[4] error text
-- ARGV[5] delivery count
-- ARGV[6] time (ISO-8601)
-- ARGV[7] origin stream name as the application knows it (without any client key prefix)
--
-- Returns the dead letter's entry id, or false when the entry is no longer pending for ARGV[3]
-- (acknowledged or claimed meanwhile): nothing is written then.
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
local p = pending[1]
if not p then return false end
if ARGV[3] ~= '' and p[2] ~= ARGV[3] then return false end

local dl = { 'origin', ARGV[7], 'group', ARGV[1], 'originId', ARGV[2], 'error', ARGV[4],
             'deliveries', ARGV[5], 'at', ARGV[6] }
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if entry[1] and entry[1][2] then
  local fields = entry[1][2]
  for i = 1, #fields, 2 do
    dl[#dl + 1] = 'f:' .. fields[i]
    dl[#dl + 1] = fields[i + 1]
  end
else
  dl[#dl + 1] = 'missing'
  dl[#dl + 1] = '1'
end
local id = redis.call('XADD', KEYS[2], '*', unpack(dl))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return id
