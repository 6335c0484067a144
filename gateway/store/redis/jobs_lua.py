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

Every script touches only the keys it is given in KEYS, as Redis Cluster asks
of a script (it routes by them; on a cluster they all carry the jobs' hash tag,
cluster.py, so they are in one slot). Where the keys are named by data (a
job's key and queue, a job's deliveries, the job a stream entry names, the
deliveries due), the store reads that data first, with plain commands, and the
script it then runs is given every key and reads again, inside itself, what
they were derived from (the job's key and queue; whether the entry is still
pending for this consumer; a delivery's due time; a record's score and the
length of its list of deliveries). A script is atomic, so what it checked holds
for all its writes: a change in between only makes it do less, and say so
(the store reads again, or the next call picks the item up). A claim is two
scripts (CLAIM_ENTRY, CLAIM_JOB): one that dies between them leaves the entry
pending for its consumer, so it is taken over once idle past a lease, like the
entry of a run that died.
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
# ARGV: id, key, status, data, expires_at or "", queue name ("": on no queue), the "queued" channel
# Returns 1, or 0 when the id is taken (nothing written).
CREATE = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local entry = ''
if ARGV[6] ~= '' then
  -- The group is made with the stream, so every stream we made has it.
  if redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('XGROUP', 'CREATE', KEYS[3], 'workers', '0', 'MKSTREAM')
  end
  entry = redis.call('XADD', KEYS[3], '*', 'job', ARGV[1])
end
redis.call('HSET', KEYS[1], 'data', ARGV[4], 'status', ARGV[3], 'key', ARGV[2], 'token', '',
           'expires_at', ARGV[5], 'queue', ARGV[6], 'entry', entry)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1]) end
-- Wakes the runners of this queue at once, wherever they are (they also look every 0.25 s).
if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[7], ARGV[6]) end
return 1
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

# KEYS: job:<id>, videos:expiry, videos:<key>, videos:records, then queue:<name>
#       when the job names a queue
# ARGV: id, key, queue name ("" without one)
# Returns {data, status, key, expires_at or ""}; nil when there is no such job;
# 0 when its key or queue is not the one given (read them again).
# The job's deliveries stay: the outbox may still be sending its last events.
DELETE = r"""
local v = redis.call('HMGET', KEYS[1], 'data', 'status', 'key', 'expires_at', 'queue', 'entry')
if not v[1] then return false end
local q = KEYS[5]
if v[3] ~= ARGV[2] or (q and v[5] ~= ARGV[3]) or (not q and v[5]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[4], ARGV[1])
if q and v[6] and v[6] ~= '' and redis.call('EXISTS', q) == 1 then
  redis.call('XACK', q, 'workers', v[6])
  redis.call('XDEL', q, v[6])
end
return {v[1], v[2], v[3], v[4] or ''}
"""

# KEYS: queue:<name>
# ARGV: consumer, lease_ms
# The claim's first step: an entry whose consumer has not renewed it for
# lease_ms (XAUTOCLAIM: Redis counts the delivery), else a new one (XREADGROUP
# >), now pending for this consumer. The job it names is not looked at (its key
# was not given): CLAIM_JOB does that. Returns {entry id, job id ("" when the
# entry names none), delivery count}, or nil when there is nothing to do.
CLAIM_ENTRY = r"""
local q = KEYS[1]
if redis.call('EXISTS', q) == 0 then return false end

local function job_of(fields)
  for i = 1, #fields, 2 do if fields[i] == 'job' then return fields[i + 1] end end
  return ''
end

local start = '0-0'
repeat
  local r = redis.call('XAUTOCLAIM', q, 'workers', ARGV[1], ARGV[2], start, 'COUNT', 1)
  start = r[1]
  for _, e in ipairs(r[2]) do
    -- Redis 6.2 lists an entry deleted from the stream with nil fields; 7 leaves it out.
    if e[2] then
      local p = redis.call('XPENDING', q, 'workers', e[1], e[1], 1)
      return {e[1], job_of(e[2]), p[1] and p[1][4] or 2}
    end
  end
until start == '0-0'

local r = redis.call('XREADGROUP', 'GROUP', 'workers', ARGV[1], 'COUNT', 1, 'STREAMS', q, '>')
if not r then return false end
local e = r[1][2][1]
return {e[1], job_of(e[2]), 1}
"""

# KEYS: job:<id>, queue:<name>
# ARGV: consumer, token, queue name, entry
# The claim's second step, for the entry CLAIM_ENTRY chose: the job gets the
# token, unless the job is gone or finished (the entry is dropped: "skip") or
# the entry is no longer pending for this consumer ("lost": the run that held
# it renewed it in between, or another consumer took it over; left to them).
# Returns 1, "skip" or "lost".
CLAIM_JOB = _TERMINAL + r"""
local status = redis.call('HGET', KEYS[1], 'status')
if not status or TERMINAL[status] then
  redis.call('XACK', KEYS[2], 'workers', ARGV[4])
  redis.call('XDEL', KEYS[2], ARGV[4])
  return 'skip'
end
if redis.call('EXISTS', KEYS[2]) == 0 then return 'lost' end
local p = redis.call('XPENDING', KEYS[2], 'workers', ARGV[4], ARGV[4], 1, ARGV[1])
if not p[1] then return 'lost' end
redis.call('HSET', KEYS[1], 'token', ARGV[2], 'queue', ARGV[3], 'entry', ARGV[4])
return 1
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

# KEYS: outbox, then delivery:<id> per id
# ARGV: now, now + lease_s, then the ids read as due
# Returns the JSON of each delivery still due, pushed to now + lease_s, in the
# order given. An id no longer due (another sender took it meanwhile) is left
# alone; one whose delivery is gone is taken off the outbox.
OUTBOX_CLAIM = r"""
local now = tonumber(ARGV[1])
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local due = tonumber(redis.call('ZSCORE', KEYS[1], id) or '')
  if due and due <= now then
    local json = redis.call('GET', KEYS[i - 1])
    if json then
      redis.call('ZADD', KEYS[1], ARGV[2], id)
      out[#out + 1] = json
    else
      redis.call('ZREM', KEYS[1], id)
    end
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

# KEYS: videos:records, outbox, videos:expiry, then per job: job:<id>,
#       videos:<key> (only when its HASH was found), deliveries:<id>, and
#       delivery:<d> per delivery id read
# ARGV: before, then per job: id, "1" when its HASH was found else "0", its key
#       ("" without), the count of delivery ids read, those ids
# Removes each job still recorded as expiring before `before`, with the key and
# deliveries read: the HASH, the key's list entry, the expiry and record
# entries, and every delivery of its events. A job whose record, key or list of
# deliveries changed since they were read is left for the next call.
# Returns the ids removed.
FORGET = r"""
local before = tonumber(ARGV[1])
local out = {}
local k, a = 4, 2
while a <= #ARGV do
  local id, found, key, n = ARGV[a], ARGV[a + 1] == '1', ARGV[a + 2], tonumber(ARGV[a + 3])
  local job, list_of_key = KEYS[k], nil
  k = k + 1
  if found then list_of_key = KEYS[k]; k = k + 1 end
  local list, first, ids = KEYS[k], k + 1, a + 4
  k, a = k + 1 + n, a + 4 + n
  local score = tonumber(redis.call('ZSCORE', KEYS[1], id) or '')
  local now_key = redis.call('HGET', job, 'key')
  -- The list only grows (a delivery is appended once, when made): the same length
  -- is the same ids.
  if score and score < before and redis.call('LLEN', list) == n
     and ((found and now_key == key) or (not found and not now_key)) then
    if list_of_key then redis.call('ZREM', list_of_key, id) end
    redis.call('DEL', job)
    redis.call('ZREM', KEYS[3], id)
    for j = 0, n - 1 do
      redis.call('DEL', KEYS[first + j])
      redis.call('ZREM', KEYS[2], ARGV[ids + j])
    end
    redis.call('DEL', list)
    redis.call('ZREM', KEYS[1], id)
    out[#out + 1] = id
  end
end
return out
"""
