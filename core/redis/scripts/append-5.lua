--[[
  Append a batch of events to an aggregate stream and to its partition log, atomically (I2).
  All five keys carry the same `{pN}` hash tag, so the script runs unchanged on Redis Cluster.

  Entry ids are chosen here, not by `*`, so that an offset names one event across the deployment
  (docs/event-store.md, "Entry ids"): `<ms>-<k*P + p>` with p = the partition, P = PARTITIONS,
  ms = max(Redis TIME, the stream's last ms, the partition's last ms) and k counting the partition's
  appended events within that ms (kept in KEYS[5] as "ms:k"). Per partition (ms, k) only grows, and
  seq mod P = p tells partitions apart, so no two events of the deployment share an id; ids of a
  stream strictly increase. TIME before writes is fine: Redis 7 replicates a script's effects.
  The partition log keeps `*` (its ids are only log positions).

  The writer (TypeScript) assigns versions and computes the SHA-256 chain before calling, because
  Redis Lua offers only SHA-1; this script checks that the writer started from the stored head.

  Input:
    KEYS[1] aggregate stream  {pN}:es:<kind>:<id>        entries: e = msgpack StoredEvent, h = chain hash
    KEYS[2] meta hash         {pN}:meta:<kind>:<id>      fields: version, hash, last (offset)
    KEYS[3] partition log     {pN}:log                   entries: k = stream key, o = offset, e, h
    KEYS[4] dedupe key        {pN}:idem:<kind>:<id>:<commandId>
    KEYS[5] id sequence       {pN}:idseq                 string "ms:k": the partition's last entry id parts

    ARGV[1] expected version (0 = new stream)
    ARGV[2] chain value the writer started from (hex; 64 zeros for a new stream)
    ARGV[3] dedupe TTL in milliseconds (0 = keep forever)
    ARGV[4] the stream's logical key, written to the log's `k` field (without a client key prefix)
    ARGV[5] P = number of partitions (PARTITIONS)
    ARGV[6] p = this stream's partition (0 <= p < P)
    ARGV[7] number of events N (>= 1)
    ARGV[8] '1': a duplicate rewrites its dedupe record (DURABILITY=wait-replica, below); '0': it
            writes nothing (DURABILITY=local)
    ARGV[9 .. 8+2N] per event: msgpack bytes, chain hash after it

  Output (mapped to typed results/errors in core/redis/scripts.ts, and only there):
    { 0, fromVersion, toVersion, hash, offset_1, ..., offset_N }   appended
    { 1, fromVersion, toVersion, hash, offset_1, ..., offset_N }   duplicate command id: the first result
    { -1, actualVersion, actualHash }                               expected version mismatch (CONFLICT)
    { -2, actualVersion, actualHash }                               writer's previous hash is not the head
    { -3, reason }                                                  malformed arguments

  Order matters: dedupe is checked first, so a retried command answers its first result even though
  its expected version is stale by now.

  A duplicate is acknowledged like an append, and under wait-replica the caller WAITs after this
  call; WAIT covers only what this connection wrote. So with ARGV[8] = '1' the dedupe record is
  rewritten (same value, same TTL): a write after the first append in the replication stream, so a
  replica that acknowledges it holds the first append too, whichever connection made that one. Under
  local durability nothing WAITs and a duplicate writes nothing (no replicated or AOF write).
]]
local stream, meta, log, idem, idseq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local first = redis.call('GET', idem)
if first then
  -- Rewritten (same value, same TTL) only for the WAIT after this call (header, ARGV[8]).
  if ARGV[8] == '1' then redis.call('SET', idem, first, 'KEEPTTL') end
  local out = { 1 }
  for word in string.gmatch(first, '%S+') do
    out[#out + 1] = word
  end
  -- fromVersion and toVersion go back as integers, like a fresh append's.
  out[2] = tonumber(out[2])
  out[3] = tonumber(out[3])
  return out
end

local expected = tonumber(ARGV[1])
local parts, part = tonumber(ARGV[5]), tonumber(ARGV[6])
local n = tonumber(ARGV[7])
if expected == nil or expected < 0 or n == nil or n < 1 or #ARGV ~= 8 + 2 * n
  or parts == nil or part == nil or parts < 1 or part < 0 or part >= parts then
  return { -3, 'bad arguments' }
end

local head = redis.call('HMGET', meta, 'version', 'hash', 'last')
local version = tonumber(head[1]) or 0
local hash = head[2] or '0000000000000000000000000000000000000000000000000000000000000000'
if version ~= expected then
  return { -1, version, hash }
end
if hash ~= ARGV[2] then
  return { -2, version, hash }
end

-- The first id: ms = max(now, the stream's last ms, the partition's last ms); k = the next free slot
-- of the partition in that ms, and past the stream's last seq (ids written before this scheme).
local t = redis.call('TIME')
local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local k = 0
local lastMs, lastSeq = string.match(head[3] or '', '^(%d+)%-(%d+)$')
lastMs, lastSeq = tonumber(lastMs), tonumber(lastSeq)
local seqMs, seqK = string.match(redis.call('GET', idseq) or '', '^(%d+):(%d+)$')
seqMs, seqK = tonumber(seqMs), tonumber(seqK)
if lastMs and lastMs > ms then ms = lastMs end
if seqMs and seqMs > ms then ms = seqMs end
if seqMs == ms then k = seqK + 1 end
if lastMs == ms and k * parts + part <= lastSeq then
  k = math.floor((lastSeq - part) / parts) + 1
end

local out = { 0, version + 1, version + n, ARGV[8 + 2 * n] }
local msText = string.format('%.0f', ms)
local id
for i = 1, n do
  local bytes, h = ARGV[7 + 2 * i], ARGV[8 + 2 * i]
  id = msText .. '-' .. string.format('%.0f', k * parts + part)
  redis.call('XADD', stream, id, 'e', bytes, 'h', h)
  redis.call('XADD', log, '*', 'k', ARGV[4], 'o', id, 'e', bytes, 'h', h)
  out[4 + i] = id
  k = k + 1
end
redis.call('SET', idseq, msText .. ':' .. string.format('%.0f', k - 1))
redis.call('HSET', meta, 'version', version + n, 'hash', ARGV[8 + 2 * n], 'last', id)

local ttl = tonumber(ARGV[3]) or 0
local stored = table.concat(out, ' ', 2)
if ttl > 0 then
  redis.call('SET', idem, stored, 'PX', ttl)
else
  redis.call('SET', idem, stored)
end
return out
