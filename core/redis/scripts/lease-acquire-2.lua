-- Take (or keep) the lease of one partition for one role, with a fencing token.
--
-- KEYS[1] lease key {pN}:lease:<role>, value "<owner>|<token>"
-- KEYS[2] fencing counter {pN}:lease:<role>:fence (same slot)
-- ARGV[1] owner id
-- ARGV[2] time to live (ms)
--
-- Returns the fencing token (integer) when the caller holds the lease afterwards, false when
-- another owner holds it. A new holder always gets a token larger than every earlier holder's,
-- so a writer that lost its lease (GC pause, partition) can be recognised by its stale token.
local cur = redis.call('GET', KEYS[1])
if cur then
  local owner, token = string.match(cur, '^(.*)|(%d+)$')
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(token)
  end
  return false
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token
