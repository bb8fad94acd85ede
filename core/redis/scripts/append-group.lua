--[[
  Group commit: many appends to streams of ONE partition in one script call (docs/event-store.md,
  "Group commit"). Every key carries the partition's `{pN}` hash tag, so the script runs unchanged on
  Redis Cluster. The number of keys varies with the group (2 + 3 per append), hence no count in the
  file name.

  Each append is processed exactly like append-5.lua processes its one append, in the order given,
  as if the appends had been separate script calls run back to back (a later append of the group
  sees what an earlier one wrote: a second append with the same command id is a duplicate of the
  first, a second append with the same expected version is a CONFLICT). One append's refusal
  (duplicate, CONFLICT, stale head, malformed arguments, a failing first XADD) writes nothing for it
  and does not change the others' outcome.

  The outcome is append-5.lua's, and so is the order of the checks as seen by the caller (a retried
  command id answers its first result whatever its expected version), but the dedupe record costs
  one command less on the happy path: meta is read first; a refused append then GETs the dedupe key
  (a retry, or really refused?), an accepted one claims it with SET NX — which fails only for a retry
  that carries the current version — before any other write.

  Entry ids as in append-5.lua: `<ms>-<k*P + p>`, with one TIME and one read/write of the partition's
  id sequence per call instead of per append; the group's (ms, k) only grows from append to append.

  Input (A = number of appends, i = 1..A):
    KEYS[1]          partition log   {pN}:log          entries: k = stream key, o = offset, e, h
    KEYS[2]          id sequence     {pN}:idseq        "ms:k": the partition's last entry id parts
    KEYS[3i]         aggregate stream {pN}:es:<kind>:<id>   entries: e = msgpack StoredEvent, h = chain hash
    KEYS[3i+1]       meta hash       {pN}:meta:<kind>:<id>  fields: version, hash, last (offset)
    KEYS[3i+2]       dedupe key      {pN}:idem:<kind>:<id>:<commandId>

    ARGV[1] dedupe TTL in milliseconds (0 = keep forever)
    ARGV[2] P = number of partitions (PARTITIONS)
    ARGV[3] p = the partition of every stream of the group (0 <= p < P)
    ARGV[4] A = number of appends (>= 1)
    then per append, in order: expected version, chain value the writer started from (hex),
    number of events N (>= 1), then N times: msgpack bytes, chain hash after it.

  The log's `k` (the logical stream key) is the stream key from its first `{`: a client key prefix
  (ioredis keyPrefix, tests) is dropped, and a prefix never contains `{` (it would change the slot).

  Output: one reply per append, in order (mapped in core/redis/append-group.ts, and only there):
    { 0, offset_1, ..., offset_N }                                appended at versions expected+1..expected+N
    { 1, fromVersion, toVersion, hash, offset_1, ..., offset_N }  duplicate command id: the first result
    { -1, actualVersion }                                         expected version mismatch (CONFLICT)
    { -2, actualVersion, actualHash }                             writer's previous hash is not the head
    { -3, reason }                                                malformed arguments (this and every later append)
    { -4, reason }                                                the stream refused the first XADD (wrong type, id)
  A reply that is not an array of A replies (a Redis error) fails the whole group, as it would fail
  a single append.
]]
local log, idseq = KEYS[1], KEYS[2]
local ttl = tonumber(ARGV[1]) or 0
local parts, part, count = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
if parts == nil or part == nil or count == nil or parts < 1 or part < 0 or part >= parts
  or count < 1 or #KEYS ~= 2 + 3 * count then
  return { { -3, 'bad group arguments' } }
end

-- The group's clock: read once, on the first append that writes.
local ms, k, clockRead, wrote = 0, 0, false, false
local function readClock()
  local t = redis.call('TIME')
  ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local seqMs, seqK = string.match(redis.call('GET', idseq) or '', '^(%d+):(%d+)$')
  seqMs, seqK = tonumber(seqMs), tonumber(seqK)
  -- k is the next free slot; the partition's last (ms, k) may be ahead of TIME after a clock step back.
  if seqMs and seqMs >= ms then ms, k = seqMs, seqK + 1 end
  clockRead = true
end

-- A stored first result "<from> <to> <hash> <offset...>" → the duplicate reply.
local function duplicateOf(first)
  local r = { 1 }
  for word in string.gmatch(first, '%S+') do r[#r + 1] = word end
  -- fromVersion and toVersion go back as integers, like append-5.lua's.
  r[2], r[3] = tonumber(r[2]), tonumber(r[3])
  return r
end

local a = 5
local broken = nil
for i = 1, count do
  if broken then
    out[i] = { -3, broken }
  else
    local stream, meta, idem = KEYS[3 * i], KEYS[3 * i + 1], KEYS[3 * i + 2]
    local expected, prev, n = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
    local base = a + 3
    if expected == nil or expected < 0 or prev == nil or n == nil or n < 1 or base + 2 * n - 1 > #ARGV then
      -- The argument cursor is lost: nothing after this point can be read reliably.
      broken = 'bad arguments'
      out[i] = { -3, broken }
    else
      a = base + 2 * n
      local head = redis.call('HMGET', meta, 'version', 'hash', 'last')
      local version = tonumber(head[1]) or 0
      local hash = head[2] or '0000000000000000000000000000000000000000000000000000000000000000'
      if version ~= expected or hash ~= prev then
        -- Refused — unless it is a retry: dedupe answers first, since a retried command's expected
        -- version is stale by now (only this path needs the GET; the happy path claims with SET NX).
        local first = redis.call('GET', idem)
        if first then
          out[i] = duplicateOf(first)
        elseif version ~= expected then
          out[i] = { -1, version }
        else
          out[i] = { -2, version, hash }
        end
      else
        if not clockRead then readClock() end
        -- ms = max(group ms, the stream's last ms); k past the stream's last seq (ids older than
        -- this scheme). Computed on locals: the group's (ms, k) moves only if the append is written.
        local m, kk = ms, k
        local lastMs, lastSeq = string.match(head[3] or '', '^(%d+)%-(%d+)$')
        lastMs, lastSeq = tonumber(lastMs), tonumber(lastSeq)
        if lastMs and lastMs > m then m, kk = lastMs, 0 end
        if lastMs == m and kk * parts + part <= lastSeq then
          kk = math.floor((lastSeq - part) / parts) + 1
        end
        local msText = string.format('%.0f', m)
        local r = { 0 }
        for j = 1, n do
          r[j + 1] = msText .. '-' .. string.format('%.0f', (kk + j - 1) * parts + part)
        end
        local last = ARGV[base + 2 * n - 1]
        -- The dedupe record keeps append-5.lua's format: "<from> <to> <hash> <offset...>". Claiming
        -- it with NX is the dedupe check of the happy path: it fails only for a retry that carries
        -- the current version (e.g. re-decided after a CONFLICT with the same command id).
        local stored = (version + 1) .. ' ' .. (version + n) .. ' ' .. last .. ' ' .. table.concat(r, ' ', 2)
        local claimed
        if ttl > 0 then
          claimed = redis.call('SET', idem, stored, 'NX', 'PX', ttl)
        else
          claimed = redis.call('SET', idem, stored, 'NX')
        end
        if not claimed then
          out[i] = duplicateOf(redis.call('GET', idem))
        else
          local key = string.sub(stream, (string.find(stream, '{', 1, true) or 1))
          -- The first XADD is the only write that can fail on a sane keyspace (wrong type, an id at or
          -- below the stream's top when meta lags it): refuse this append alone, undoing the claim.
          local ok = redis.pcall('XADD', stream, r[2], 'e', ARGV[base], 'h', ARGV[base + 1])
          if type(ok) == 'table' and ok.err then
            redis.call('DEL', idem)
            out[i] = { -4, ok.err }
          else
            redis.call('XADD', log, '*', 'k', key, 'o', r[2], 'e', ARGV[base], 'h', ARGV[base + 1])
            for j = 2, n do
              local bytes, h = ARGV[base + 2 * j - 2], ARGV[base + 2 * j - 1]
              redis.call('XADD', stream, r[j + 1], 'e', bytes, 'h', h)
              redis.call('XADD', log, '*', 'k', key, 'o', r[j + 1], 'e', bytes, 'h', h)
            end
            ms, k, wrote = m, kk + n, true
            redis.call('HSET', meta, 'version', version + n, 'hash', last, 'last', r[n + 1])
            out[i] = r
          end
        end
      end
    end
  end
end
if wrote then
  redis.call('SET', idseq, string.format('%.0f', ms) .. ':' .. string.format('%.0f', k - 1))
end
return out
