-- Membership heartbeat of one role: who is alive to share the partitions out.
--
-- KEYS[1] sorted set of members, score = expiry time (ms, Redis server clock)
-- ARGV[1] member id
-- ARGV[2] time to live (ms); "0" = leave now
--
-- Returns the number of live members after this call. Expiry uses the server's clock, so members
-- on hosts with skewed clocks still agree on who is alive.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ttl * 10)
else
  redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
