--[[
  Token bucket, one key per (kind, tenant, user). Atomic: concurrent requests on any number of edge
  nodes see one bucket. Time comes from the Redis server (TIME), so edges with skewed clocks agree.

  KEYS[1]  bucket hash {tokens, ts}
  ARGV[1]  capacity (burst) in tokens
  ARGV[2]  refill rate in tokens per minute
  ARGV[3]  cost of this request in tokens

  Returns {allowed (1|0), waitMs}: waitMs = how long until `cost` tokens are available (0 if allowed).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local perMin = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])

local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
if now > ts then
  tokens = math.min(cap, tokens + (now - ts) * perMin / 60000)
end

local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = math.ceil((cost - tokens) * 60000 / perMin)
end

redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
-- A full bucket carries no information: let it expire once it would have refilled.
redis.call('PEXPIRE', KEYS[1], math.ceil(cap * 60000 / perMin) + 1000)
return {allowed, wait}
