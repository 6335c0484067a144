"""The Lua scripts behind the Redis store's video jobs (jobs.py): each state
change of a job is one EVALSHA, so it is atomic across replicas.

Keys (all under the store's prefix, `gw:` by default):
  job:<id>              HASH    data (the job JSON), status, key, token (of the run
                                holding it, "" before the first), expires_at (unix s,
                                "" for none), queue (its name), entry (stream entry id)
  videos:<key>          ZSET    a key's job ids (score 0; ranged by lex: ids sort by creation)
  videos:expiry         ZSET    job id, scored by expires_at (taken off as the expiry sweep sees it)
  videos:records        ZSET    job id, scored by expires_at (kept until the record is forgotten)
  queue:<name>          STREAM  one entry {job: <id>} per queued job; consumer group `workers`.
                                An entry stays until the run is done, so XLEN counts waiting
                                and running jobs; the group's pending list holds the running
                                ones, and their idle time is the lease (renewing resets it).
  outbox                ZSET    delivery id, scored by when it is next due (unix s)
  delivery:<id>         STRING  the Delivery, JSON
  deliveries:<job id>   LIST    the job's delivery ids, in the order they were made

Some keys are found inside the scripts (the job a stream entry names, the list
and queue a job names), so the scripts get the prefix as an argument and build
them. On Redis Cluster that prefix carries the jobs' hash tag (cluster.py): every
key a script builds is in the slot of the keys it was given, on the same node,
which Redis Cluster allows (what it refuses is a key of another slot).
"""
from __future__ import annotations

_TERMINAL = "local TERMINAL = {completed = true, failed = true}\n"

# Writes one delivery: its JSON, its place in the job's list (once), and in the
# outbox while it is pending. KEYS delivery:<id>, deliveries:<job id>, outbox.
_SAVE_DELIVERY = r"""
local function save_delivery(dkey, list, outbox, id, json, next_at, status)
  if redis.call('EXISTS', dkey) == 0 then redis.call('RPUSH', list, id) end
  redis.call('SET', dkey, json)
  if status == 'pending' then redis.call('ZADD', outbox, next_at, id)
  else redis.call('ZREM', outbox, id) end
end
"""

# KEYS: job:<id>, videos:<key>, queue:<name>, videos:expiry
# ARGV: id, key, status, data, expires_at or "", queue name, the "queued" channel
# Returns 1, or 0 when the id is taken (nothing written).
CREATE = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
-- The group is made with the stream, so every stream we made has it.
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[3], 'workers', '0', 'MKSTREAM')
end
local entry = redis.call('XADD', KEYS[3], '*', 'job', ARGV[1])
redis.call('HSET', KEYS[1], 'data', ARGV[4], 'status', ARGV[3], 'key', ARGV[2], 'token', '',
           'expires_at', ARGV[5], 'queue', ARGV[6], 'entry', entry)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1]) end
-- Wakes the runners of this queue at once, wherever they are (they also look every 0.25 s).
redis.call('PUBLISH', ARGV[7], ARGV[6])
return 1
"""

# KEYS: videos:<key>
# ARGV: prefix, after or "", limit, "asc" | "desc"
# Returns {id, data, status, expires_at, ...} for up to limit + 1 live jobs past
# `after` (the extra one says more follow). Ids whose job is gone are skipped
# and dropped from the list.
LIST = r"""
local want = tonumber(ARGV[3]) + 1
local asc = ARGV[4] == 'asc'
local cursor
if ARGV[2] ~= '' then cursor = '(' .. ARGV[2] elseif asc then cursor = '-' else cursor = '+' end
local out, n = {}, 0
while true do
  local ids
  if asc then ids = redis.call('ZRANGEBYLEX', KEYS[1], cursor, '+', 'LIMIT', 0, want)
  else ids = redis.call('ZREVRANGEBYLEX', KEYS[1], cursor, '-', 'LIMIT', 0, want) end
  for _, id in ipairs(ids) do
    local v = redis.call('HMGET', ARGV[1] .. 'job:' .. id, 'data', 'status', 'expires_at')
    if v[1] then
      out[#out + 1] = id; out[#out + 1] = v[1]; out[#out + 1] = v[2] or ''; out[#out + 1] = v[3] or ''
      n = n + 1
      if n == want then return out end
    else
      redis.call('ZREM', KEYS[1], id)
    end
  end
  if #ids < want then return out end
  cursor = '(' .. ids[#ids]
end
"""

# KEYS: job:<id>, videos:expiry, outbox, videos:records, then delivery:<id> and
#       deliveries:<job id> per delivery
# ARGV: has_token, token, data, status, expires_at or "", job id,
#       then (id, json, next_at, status) per delivery
# Returns 1, or 0 when refused: the job is gone, finished, or (with a token)
# another run has claimed it since.
UPDATE = _TERMINAL + _SAVE_DELIVERY + r"""
local v = redis.call('HMGET', KEYS[1], 'status', 'token')
if not v[1] or TERMINAL[v[1]] then return 0 end
if ARGV[1] == '1' and v[2] ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'data', ARGV[3], 'status', ARGV[4], 'expires_at', ARGV[5])
if ARGV[5] ~= '' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[6])
  redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
else
  redis.call('ZREM', KEYS[2], ARGV[6])
  redis.call('ZREM', KEYS[4], ARGV[6])
end
local k = 5
for a = 7, #ARGV, 4 do
  save_delivery(KEYS[k], KEYS[k + 1], KEYS[3], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
  k = k + 2
end
return 1
"""

# KEYS: job:<id>, videos:expiry
# ARGV: prefix, id
# Returns {data, status, key, expires_at or ""}, or nil when there is no such job.
# The job's deliveries stay: the outbox may still be sending its last events.
DELETE = r"""
local v = redis.call('HMGET', KEYS[1], 'data', 'status', 'key', 'expires_at', 'queue', 'entry')
if not v[1] then return false end
redis.call('DEL', KEYS[1])
redis.call('ZREM', ARGV[1] .. 'videos:' .. v[3], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', ARGV[1] .. 'videos:records', ARGV[2])
if v[5] and v[6] and v[6] ~= '' then
  local q = ARGV[1] .. 'queue:' .. v[5]
  if redis.call('EXISTS', q) == 1 then
    redis.call('XACK', q, 'workers', v[6])
    redis.call('XDEL', q, v[6])
  end
end
return {v[1], v[2], v[3], v[4] or ''}
"""

# KEYS: queue:<name>
# ARGV: prefix, consumer, lease_ms, token, queue name
# First an entry whose consumer has not renewed it for lease_ms (XAUTOCLAIM:
# Redis counts the delivery), else a new one (XREADGROUP >). The job it names
# gets the token; an entry whose job is gone or finished is dropped and the
# next one looked at. Returns {job id, entry id, delivery count}; nil when
# there is nothing to do; {} after _SKIPS dropped entries (call again: a script
# must not run long).
CLAIM = _TERMINAL + r"""
local q = KEYS[1]
if redis.call('EXISTS', q) == 0 then return false end
local skips = 64

local function take(id, fields, attempt)
  local job
  for i = 1, #fields, 2 do if fields[i] == 'job' then job = fields[i + 1] end end
  local status = job and redis.call('HGET', ARGV[1] .. 'job:' .. job, 'status')
  if not status or TERMINAL[status] then
    redis.call('XACK', q, 'workers', id)
    redis.call('XDEL', q, id)
    skips = skips - 1
    return nil
  end
  redis.call('HSET', ARGV[1] .. 'job:' .. job, 'token', ARGV[4], 'queue', ARGV[5], 'entry', id)
  return {job, id, attempt}
end

local start = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', q, 'workers', ARGV[2], ARGV[3], start, 'COUNT', 1)
  start = r[1]
  for _, e in ipairs(r[2]) do
    -- Redis 6.2 lists an entry deleted from the stream with nil fields; 7 leaves it out.
    if e[2] then
      local p = redis.call('XPENDING', q, 'workers', e[1], e[1], 1)
      local got = take(e[1], e[2], p[1] and p[1][4] or 2)
      if got then return got end
    end
  end
  if skips <= 0 then return {} end
until start == '0-0'

while true do
  local r = redis.call('XREADGROUP', 'GROUP', 'workers', ARGV[2], 'COUNT', 1, 'STREAMS', q, '>')
  if not r then return false end
  local e = r[1][2][1]
  local got = take(e[1], e[2], 1)
  if got then return got end
  if skips <= 0 then return {} end
end
"""

# KEYS: job:<id>, queue:<name>
# ARGV: token, consumer, entry
# Returns 1 when the claim still holds (its idle time is reset to 0), else 0.
RENEW = _TERMINAL + r"""
local v = redis.call('HMGET', KEYS[1], 'status', 'token')
if not v[1] or TERMINAL[v[1]] or v[2] ~= ARGV[1] then return 0 end
-- Checked first: XCLAIM with min-idle 0 would take the entry from whoever holds it.
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local got = redis.call('XCLAIM', KEYS[2], 'workers', ARGV[2], 0, ARGV[3], 'JUSTID')
if #got == 0 then return 0 end
return 1
"""

# KEYS: job:<id>, queue:<name>
# ARGV: token, entry
# Takes the entry off the queue, unless another run has claimed the job since
# (a run whose lease lapsed must not end its successor's). Returns 1 or 0.
DONE = _TERMINAL + r"""
local v = redis.call('HMGET', KEYS[1], 'status', 'token')
if v[1] and not TERMINAL[v[1]] and v[2] and v[2] ~= '' and v[2] ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then return 1 end
redis.call('XACK', KEYS[2], 'workers', ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
return 1
"""

# KEYS: videos:expiry
# ARGV: now, limit
# Returns the ids due, taken off the index.
EXPIRING = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do redis.call('ZREM', KEYS[1], id) end
return ids
"""

# KEYS: outbox
# ARGV: prefix, now, limit, now + lease_s
# Returns the JSON of up to `limit` deliveries due, each pushed to now + lease_s.
OUTBOX_CLAIM = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
local out = {}
for _, id in ipairs(ids) do
  local json = redis.call('GET', ARGV[1] .. 'delivery:' .. id)
  if json then
    redis.call('ZADD', KEYS[1], ARGV[4], id)
    out[#out + 1] = json
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
"""

# KEYS: delivery:<id>, deliveries:<job id>, outbox
# ARGV: id, json, next_at, status
# Returns 1.
SAVE = _SAVE_DELIVERY + r"""
save_delivery(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""

# KEYS: videos:records, outbox
# ARGV: prefix, before, limit
# Removes up to `limit` jobs whose expires_at is before `before`: the HASH, the
# key's list entry, the expiry entry, and every delivery of their events.
# Returns their ids.
FORGET = r"""
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local job = ARGV[1] .. 'job:' .. id
  local key = redis.call('HGET', job, 'key')
  if key then redis.call('ZREM', ARGV[1] .. 'videos:' .. key, id) end
  redis.call('DEL', job)
  redis.call('ZREM', ARGV[1] .. 'videos:expiry', id)
  local list = ARGV[1] .. 'deliveries:' .. id
  for _, d in ipairs(redis.call('LRANGE', list, 0, -1)) do
    redis.call('DEL', ARGV[1] .. 'delivery:' .. d)
    redis.call('ZREM', KEYS[2], d)
  end
  redis.call('DEL', list)
  redis.call('ZREM', KEYS[1], id)
end
return ids
"""
