--[[
  Group commit: many appends in one script call (docs/event-store.md, "Group commit"). The appends
  may belong to several partitions (G of them): on a single Redis every key lives on the one node,
  so the store groups appends of any partitions; on Redis Cluster it only groups appends of one
  partition (G = 1: every key carries that partition's `{pN}` hash tag, one slot), and the script
  runs unchanged. The number of keys varies with the call, hence no count in the file name.

  Each append is processed exactly like append-5.lua processes its one append, in the order given,
  as if the appends had been separate script calls run back to back (a later append of the call
  sees what an earlier one wrote: a second append with the same command id is a duplicate of the
  first, a second append with the same expected version is a CONFLICT). One append's refusal
  (duplicate, CONFLICT, stale head, malformed arguments, a failing first XADD) writes nothing for it
  — except that under wait-replica a duplicate rewrites its dedupe record unchanged (the trailing
  ARGV, below) — and does not change the others' outcome. Appends of different partitions share no
  key.

  The outcome is append-5.lua's, and so is the order of the checks as seen by the caller (a retried
  command id answers its first result whatever its expected version), but the dedupe record costs
  one command less on the happy path: meta is read first; a refused append then GETs the dedupe key
  (a retry, or really refused?), an accepted one claims it with SET NX — which fails only for a retry
  that carries the current version — before any other write.

  Entry ids as in append-5.lua: `<ms>-<k*P + p>`, with one TIME per call and one MGET / MSET of the
  partitions' id sequences per call instead of a read and a write per append; a partition's (ms, k)
  only grows from append to append.

  Input (G = number of partitions of the call, g = 1..G; A = number of appends, i = 1..A):
    KEYS[2g-1]       partition log of the g-th partition   {pN}:log     entries: k = stream key, o = offset, e, h
    KEYS[2g]         its id sequence                        {pN}:idseq   "ms:k": the partition's last entry id parts
    KEYS[2G+3i-2]    aggregate stream {pN}:es:<kind>:<id>   entries: e = msgpack StoredEvent, h = chain hash
    KEYS[2G+3i-1]    meta hash       {pN}:meta:<kind>:<id>  fields: version, hash, last (offset)
    KEYS[2G+3i]      dedupe key      {pN}:idem:<kind>:<id>:<commandId>

    ARGV[1]     dedupe TTL in milliseconds (0 = keep forever)
    ARGV[2]     P = number of partitions (PARTITIONS)
    ARGV[3]     G
    ARGV[3+g]   the g-th partition's number p (0 <= p < P)
    ARGV[4+G]   A = number of appends (>= 1)
    then per append, in order: g (which partition, 1..G), expected version, chain value the writer
    started from (hex), its dedupe TTL in ms (0 = keep forever; usually the text of ARGV[1]: a
    reply's deltas are kept shorter, docs/operations.md), number of events N (>= 1), then N times:
    msgpack bytes, chain hash after it.
    last, only when the writer WAITs after the call (DURABILITY=wait-replica): '1' = rewrite the
    dedupe record of every duplicate (see `dups` below). Absent (DURABILITY=local): a duplicate
    writes nothing. Trailing and optional, so the layout before it is the same either way.

  The log's `k` (the logical stream key) is the stream key from its first `{`: a client key prefix
  (ioredis keyPrefix, tests) is dropped, and a prefix never contains `{` (it would change the slot).

  Output: one reply per append, in order (mapped in core/redis/append-group.ts, and only there):
    { 0, offset_1, ..., offset_N }                                appended at versions expected+1..expected+N
    { 1, fromVersion, toVersion, hash, offset_1, ..., offset_N }  duplicate command id: the first result
    { -1, actualVersion }                                         expected version mismatch (CONFLICT)
    { -2, actualVersion, actualHash }                             writer's previous hash is not the head
    { -3, reason }                                                malformed arguments (this and every later append)
    { -4, reason }                                                the stream refused the first XADD (wrong type, id)
  A reply that is not an array of A replies (a Redis error, or { { -3, reason } } for malformed
  call arguments) fails the whole call, as it would fail a single append.
]]
local ttl = tonumber(ARGV[1]) or 0
-- Numbers handed to redis.call are printed with sprintf by Redis, at every call: the TTL goes as a
-- text made once per script call, the new version as a text made once per append.
local ttlText = string.format('%d', math.floor(ttl))
local parts, groups = tonumber(ARGV[2]), tonumber(ARGV[3])
if parts == nil or groups == nil or parts < 1 or groups < 1 then
  return { { -3, 'bad group arguments' } }
end
-- gOfText: an append's partition index as the writer sends it ("1".."G") → the number, so that
-- the per-append lookup is a table hit instead of a `tonumber` (strtod: ~1k instructions each).
local partOf, gOfText = {}, {}
for g = 1, groups do
  local p = tonumber(ARGV[3 + g])
  if p == nil or p < 0 or p >= parts then return { { -3, 'bad group arguments' } } end
  partOf[g] = p
  gOfText[tostring(g)] = g
end
local count = tonumber(ARGV[4 + groups])
if count == nil or count < 1 or #KEYS ~= 2 * groups + 3 * count then
  return { { -3, 'bad group arguments' } }
end
local out = {}

-- The call's clock: TIME is read once, on the first append that writes; each partition's id
-- sequence once, on the first append of that partition that writes. msOf[g], kOf[g]: the next
-- free (ms, k) of partition g; wrote[g]: its sequence must be stored at the end.
local now = nil
local msOf, kOf, wrote, msTextOf = {}, {}, {}, {}
-- Integers below 1e14 (ms since 1970, seq parts) convert exactly with Lua's own number-to-string
-- (%.14g, what `..` uses), which costs about half of string.format('%.0f') — and this runs per event.
local function int(x)
  if x < 1e14 then return x end
  return string.format('%.0f', x)
end
-- Every partition's id sequence is read by one MGET, on the first append that writes: one command
-- instead of a GET per partition (a call of 4 appends at W = 8 spans ~4 partitions).
local seqs = nil
local function readClock(g)
  if now == nil then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    local seqKeys = {}
    for h = 1, groups do seqKeys[h] = KEYS[2 * h] end
    seqs = redis.call('MGET', unpack(seqKeys))
  end
  local ms, k = now, 0
  local seqMs, seqK = string.match(seqs[g] or '', '^(%d+):(%d+)$')
  seqMs = tonumber(seqMs)
  -- k is the next free slot; the partition's last (ms, k) may be ahead of TIME after a clock step
  -- back, or in the same ms (k is converted only then).
  if seqMs and seqMs >= ms then ms, k = seqMs, tonumber(seqK) + 1 end
  msOf[g], kOf[g], msTextOf[g] = ms, k, tostring(int(ms))
end

-- A duplicate is acknowledged like an append: under wait-replica the caller WAITs after this call,
-- and WAIT covers only what this connection wrote. Rewriting the dedupe record (same value, same
-- TTL) is a write that follows the first append in the replication stream, so a replica that
-- acknowledges it holds the first append too, whichever connection made that one. Without it a
-- retry on a new connection was answered at once, and a failover could then lose the first append.
-- Under local durability nothing WAITs, and the rewrite would only be a write (replicated, in the
-- AOF) on an append that changes nothing: so it is done only when the writer asks (the trailing
-- ARGV), at the end of the call, where that flag is found. Doing it there rather than at each
-- duplicate changes nothing: a script's writes replicate as one block, after the first append
-- either way, and no later append of the call removes an existing dedupe key.
local dups = {}

-- A stored first result "<from> <to> <hash> <offset...>" of the dedupe key `idem` → the duplicate
-- reply; the key is remembered for the rewrite.
local function duplicateOf(idem, first)
  dups[#dups + 1] = idem
  dups[#dups + 1] = first
  local r = { 1 }
  for word in string.gmatch(first, '%S+') do r[#r + 1] = word end
  -- fromVersion and toVersion go back as integers, like append-5.lua's.
  r[2], r[3] = tonumber(r[2]), tonumber(r[3])
  return r
end

-- Every key has the same client key prefix (ioredis keyPrefix), so where the logical key starts is
-- found once per call: the log's `k` is the stream key from there.
local from = string.find(KEYS[1], '{', 1, true) or 1

local a = 5 + groups
local kb = 2 * groups
local broken = nil
for i = 1, count do
  if broken then
    out[i] = { -3, broken }
  else
    local stream, meta, idem = KEYS[kb + 3 * i - 2], KEYS[kb + 3 * i - 1], KEYS[kb + 3 * i]
    -- The common texts skip `tonumber` (same numbers: any other text still goes through it).
    local gText, expText, ttlA, nText = ARGV[a], ARGV[a + 1], ARGV[a + 3], ARGV[a + 4]
    local g, expected, prev = gOfText[gText] or tonumber(gText), tonumber(expText), ARGV[a + 2]
    local n = nText == '1' and 1 or tonumber(nText)
    -- The append's TTL: the call's own text on the common path (no conversion), else a whole number.
    local ttlN = ttlA == ARGV[1] and ttl or (ttlA and tonumber(ttlA))
    local ttlT = ttlA == ARGV[1] and ttlText or (ttlN and ttlN >= 0 and ttlN == math.floor(ttlN) and string.format('%d', ttlN))
    local base = a + 5
    if g == nil or partOf[g] == nil or expected == nil or expected < 0 or prev == nil or n == nil or n < 1
      or not ttlT or base + 2 * n - 1 > #ARGV then
      -- The argument cursor is lost: nothing after this point can be read reliably.
      broken = 'bad arguments'
      out[i] = { -3, broken }
    else
      a = base + 2 * n
      local head = redis.call('HMGET', meta, 'version', 'hash', 'last')
      -- The stored version is the expected one on the happy path: equal texts, equal numbers.
      local version = head[1] == expText and expected or tonumber(head[1]) or 0
      local hash = head[2] or '0000000000000000000000000000000000000000000000000000000000000000'
      if version ~= expected or hash ~= prev then
        -- Refused — unless it is a retry: dedupe answers first, since a retried command's expected
        -- version is stale by now (only this path needs the GET; the happy path claims with SET NX).
        local first = redis.call('GET', idem)
        if first then
          out[i] = duplicateOf(idem, first)
        elseif version ~= expected then
          out[i] = { -1, version }
        else
          out[i] = { -2, version, hash }
        end
      else
        if msOf[g] == nil then readClock(g) end
        local part = partOf[g]
        -- ms = max(partition ms, the stream's last ms); k past the stream's last seq (ids older than
        -- this scheme). Computed on locals: the partition's (ms, k) moves only if the append is written.
        local m, kk = msOf[g], kOf[g]
        local lastMs, lastSeq = string.match(head[3] or '', '^(%d+)%-(%d+)$')
        lastMs = tonumber(lastMs)
        -- The stream's last seq matters only if its ms is not behind (rare: ids older than this
        -- scheme, a clock step back); only then is it converted.
        if lastMs and lastMs >= m then
          lastSeq = tonumber(lastSeq)
          if lastMs > m then m, kk = lastMs, 0 end
          if kk * parts + part <= lastSeq then
            kk = math.floor((lastSeq - part) / parts) + 1
          end
        end
        local msText = m == msOf[g] and msTextOf[g] or tostring(int(m))
        local r = { 0 }
        for j = 1, n do
          r[j + 1] = msText .. '-' .. int((kk + j - 1) * parts + part)
        end
        local last = ARGV[base + 2 * n - 1]
        -- The dedupe record keeps append-5.lua's format: "<from> <to> <hash> <offset...>". Claiming
        -- it with NX is the dedupe check of the happy path: it fails only for a retry that carries
        -- the current version (e.g. re-decided after a CONFLICT with the same command id).
        local offsets = n == 1 and r[2] or table.concat(r, ' ', 2)
        local toText = tostring(version + n)
        local fromText = n == 1 and toText or tostring(version + 1)
        local stored = fromText .. ' ' .. toText .. ' ' .. last .. ' ' .. offsets
        local claimed
        if ttlN > 0 then
          claimed = redis.call('SET', idem, stored, 'NX', 'PX', ttlT)
        else
          claimed = redis.call('SET', idem, stored, 'NX')
        end
        if not claimed then
          out[i] = duplicateOf(idem, redis.call('GET', idem))
        else
          local log = KEYS[2 * g - 1]
          local key = stream
          if from > 1 then key = string.sub(stream, from) end
          if string.byte(key, 1) ~= 123 then key = string.sub(stream, (string.find(stream, '{', 1, true) or 1)) end
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
            if m ~= msOf[g] then msTextOf[g] = msText end
            msOf[g], kOf[g], wrote[g] = m, kk + n, true
            redis.call('HSET', meta, 'version', toText, 'hash', last, 'last', r[n + 1])
            out[i] = r
          end
        end
      end
    end
  end
end
-- The written partitions' sequences in one MSET (one command, like the MGET above).
local seqArgs = {}
for g = 1, groups do
  if wrote[g] then
    seqArgs[#seqArgs + 1] = KEYS[2 * g]
    seqArgs[#seqArgs + 1] = msTextOf[g] .. ':' .. int(kOf[g] - 1)
  end
end
if #seqArgs > 0 then redis.call('MSET', unpack(seqArgs)) end
-- The trailing flag, just past the last append's arguments (where the cursor is now): rewrite the
-- duplicates' dedupe records, same value and TTL, for the WAIT that follows (see `dups`).
if not broken and ARGV[a] == '1' then
  for j = 1, #dups, 2 do redis.call('SET', dups[j], dups[j + 1], 'KEEPTTL') end
end
return out
