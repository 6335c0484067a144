"""The Lua scripts of the Redis store's limits (limits.py): `ADMIT` decides
and charges all of a request's limits in one atomic step, `SETTLE` writes back
what the request really used and its ledger row. `BATCH` runs any number of
them, in order, in one EVALSHA: the admissions and settlements a replica asks
for in one turn of its event loop go together, each still decided atomically
and in the order asked.

Keys (all under the store's prefix, `gw:` by default):
  <window key>, e.g. rpm:key:demo     HASH  bucket index -> units counted in it; `n`: their sum;
                                            `o`: no bucket older than this counts (so a check
                                            reads two fields, not sixty buckets)
  concurrent:key:demo                 ZSET  lease id, scored by its expiry (ms)
  budget:<key>:<from>:<to>            HASH  spent, held (nano-USD) for one budget period
  cost:<key>                          HASH  day -> nano-USD the key spent that day
  spend:<day>                         HASH  ["key","model","provider","counter"] -> total
  spend:days                          ZSET  every day that has a ledger row (score 0; ranged by lex)

Time is Redis's own (`TIME`), so replicas with skewed clocks count into the
same buckets; ADMIT returns it so that SETTLE corrects the bucket it charged.
The window math mirrors gateway/store/windows.py exactly (same formulas, same doubles).
limits_usage.py reads a window as ADMIT's `counted` does, for reports: change them together.
"""
from __future__ import annotations

# KEYS: the windows' HASHes, then the lease ZSET (if any), then the budget HASH
#       and the key's cost-per-day HASH (if a hold).
# ARGV: n_windows, has_lease, has_hold, grant_n, floor_n,
#       (limit, window_s, amount) per window,
#       (limit, id, ttl_ms) for the lease,
#       (limit, amount, day_from, day_to, expire_at or 0) for the hold.
# grant_n > 0 asks for a grant (grants.py): grant_n more requests' worth of every limit
# (windows: grant_n x amount units; the lease: grant_n more slots, ids "<id>.1" on;
# the budget: grant_n x amount), charged now for the replica to hand out itself. It is
# given only if every limit would still have floor_n requests' worth of room left after
# it, every window charges 1 unit or more, and its current bucket has a fiftieth of its span
# or more to run;
# otherwise the request is decided alone, as with grant_n 0.
# Returns {1, 0, "0", sec, usec, granted, remaining_1, "reset_s_1", ...} when allowed
#         (granted: 1 when the grant was given; remaining counts it as used);
#         {0, refused_by, "retry_after_s", sec, usec} when refused, where
#         refused_by is the window's 1-based index, -1 for the lease, -2 for the budget.
ADMIT = r"""
local BUCKETS = 60
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local n_windows = tonumber(ARGV[ab + 1])
local grant_n, floor_n = tonumber(ARGV[ab + 4]), tonumber(ARGV[ab + 5])
local granted = grant_n > 0
local a = ab + 6

local function seconds(x) return string.format('%.6f', x) end

-- Mirrors windows.retry_after: wait for the oldest buckets to leave until `need` fits.
local function retry_after(buckets, used, size, window_s, need, limit)
  if need > limit then return window_s end
  table.sort(buckets, function(x, y) return x[1] < y[1] end)
  for _, bv in ipairs(buckets) do
    used = used - bv[2]
    if used + need <= limit then return math.max(0, (bv[1] + BUCKETS) * size - now) end
  end
  return 0
end

-- Every live bucket of a window, {index, units}, after dropping the expired ones (and their sum).
local function live(key, oldest)
  local flat = redis.call('HGETALL', key)
  local buckets, dead, used = {}, {}, 0
  for j = 1, #flat, 2 do
    local b = tonumber(flat[j])
    if b ~= nil then                    -- 'n' and 'o' are not buckets
      local v = tonumber(flat[j + 1])
      if b < oldest then dead[#dead + 1] = flat[j] else buckets[#buckets + 1] = {b, v}; used = used + v end
    end
  end
  if #dead > 0 then redis.call('HDEL', key, unpack(dead)) end
  return buckets, used, #flat == 0
end

-- What a window counts now, as {used, o, changed, fresh}: `used` its units, `o` its oldest
-- bucket holding units (when used > 0), `changed` when n or o must be written back, `fresh`
-- when the HASH does not exist yet. Kept in the HASH: `n`, the sum of its buckets, and `o`.
-- No bucket is kept at 0 (SETTLE deletes one it brings to 0, and `o` with it if it was the
-- oldest), so while `o` is in the window, reading two fields is the whole check.
local function counted(key, oldest, current)
  local state = redis.call('HMGET', key, 'n', 'o')
  local used, o = tonumber(state[1]), tonumber(state[2])
  if used == nil or o == nil or oldest - o >= BUCKETS then
    -- a new window, one without the sum, or one whose every bucket left: sum what is there
    local buckets, fresh
    buckets, used, fresh = live(key, oldest)
    o = current
    for _, bv in ipairs(buckets) do if bv[2] > 0 and bv[1] < o then o = bv[1] end end
    return {used = used, o = o, changed = not fresh, fresh = fresh}
  end
  if o >= oldest then return {used = used, o = o, changed = false, fresh = false} end
  -- its oldest buckets left: drop them, then find the oldest still holding units
  for b = o, oldest - 1 do
    local v = redis.call('HGET', key, b)
    if v then used = used - tonumber(v); redis.call('HDEL', key, b) end
  end
  o = oldest
  if used > 0 then
    while o < current and redis.call('HEXISTS', key, o) == 0 do o = o + 1 end
  end
  return {used = used, o = o, changed = true, fresh = false}
end

-- The sums and oldest buckets that counting changed, written back (also when a later
-- limit refuses: the sum must match the buckets left).
local function write_back(windows, upto)
  for j = 1, upto do
    local w = windows[j]
    if w.changed then
      redis.call('HSET', KEYS[kb + j], 'n', string.format('%d', w.used), 'o', string.format('%d', w.o))
    end
  end
end

local windows = {}
for i = 1, n_windows do
  local limit, window_s, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local size = window_s / BUCKETS
  local current = math.floor(now / size)
  local oldest = current - BUCKETS + 1
  local w = counted(KEYS[kb + i], oldest, current)
  windows[i] = w
  if w.used + amount > limit then
    write_back(windows, i)
    local buckets = live(KEYS[kb + i], oldest)
    return {0, i, seconds(retry_after(buckets, w.used, size, window_s, amount, limit)), t[1], t[2]}
  end
  w.limit, w.amount, w.size, w.current = limit, amount, size, current
  w.ttl_ms = math.ceil((window_s + size) * 1000)
  if granted and (amount < 1 or w.used + amount * (1 + grant_n + floor_n) > limit
                  or (current + 1) * size - now < size / 50) then
    granted = false
  end
  a = a + 3
end

local k = kb + n_windows + 1
local lease
if ARGV[ab + 2] == '1' then
  local limit = tonumber(ARGV[a])
  lease = {key = KEYS[k], id = ARGV[a + 1], ttl_ms = tonumber(ARGV[a + 2])}
  local held = redis.call('ZCARD', lease.key)
  if held >= limit then
    -- A dead replica never releases its leases: the expired ones free themselves when they are in the way.
    redis.call('ZREMRANGEBYSCORE', lease.key, '-inf', string.format('%.3f', now * 1000))
    held = redis.call('ZCARD', lease.key)
    if held >= limit then
      write_back(windows, n_windows)
      return {0, -1, seconds(1), t[1], t[2]}
    end
  end
  if granted and held + 1 + grant_n + floor_n > limit then granted = false end
  k, a = k + 1, a + 3
end

local hold
if ARGV[ab + 3] == '1' then
  local budget, cost = KEYS[k], KEYS[k + 1]
  local limit, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  local state = redis.call('HMGET', budget, 'spent', 'held')
  local spent = tonumber(state[1])
  if spent == nil then
    -- First use of this period (by any replica): start from the ledger's days in range.
    local function day(d) return tonumber((string.gsub(d, '-', ''))) end
    local from, to = day(ARGV[a + 2]), day(ARGV[a + 3])
    spent = 0
    local days = redis.call('HGETALL', cost)
    for j = 1, #days, 2 do
      local d = day(days[j])
      if d >= from and d <= to then spent = spent + tonumber(days[j + 1]) end
    end
    redis.call('HSET', budget, 'spent', string.format('%d', spent))
    if ARGV[a + 4] ~= '0' then redis.call('EXPIREAT', budget, ARGV[a + 4]) end
  end
  local taken = spent + (tonumber(state[2]) or 0)
  if taken + amount > limit then
    write_back(windows, n_windows)
    return {0, -2, seconds(0), t[1], t[2]}
  end
  if granted and taken + amount * (1 + grant_n + floor_n) > limit then granted = false end
  hold = {key = budget, amount = amount}
end

-- Everything passed: charge it all (and the grant, when it is given).
local times = 1
if granted then times = 1 + grant_n else grant_n = 0 end
local out = {1, 0, seconds(0), t[1], t[2], times > 1 and 1 or 0}
for i = 1, n_windows do
  local w = windows[i]
  w.amount = w.amount * times
  local o = w.o
  if w.used == 0 then o = w.current end     -- nothing counted before: this charge is the oldest
  local expire = w.fresh
  if w.amount > 0 then
    -- a new bucket's units are counted until it leaves: the HASH lives at least that long
    if redis.call('HINCRBY', KEYS[kb + i], string.format('%d', w.current), w.amount) == w.amount then expire = true end
  end
  if w.changed or w.fresh or w.amount > 0 or o ~= w.o then
    redis.call('HSET', KEYS[kb + i], 'n', string.format('%d', w.used + w.amount), 'o', string.format('%d', o))
  end
  if expire then redis.call('PEXPIRE', KEYS[kb + i], w.ttl_ms) end
  -- Mirrors windows.reset_after: until the oldest counted unit leaves.
  local reset = 0
  if w.used + w.amount > 0 then reset = math.max(0, (o + BUCKETS) * w.size - now) end
  out[#out + 1] = math.max(0, w.limit - w.used - w.amount)
  out[#out + 1] = seconds(reset)
end
if lease then
  -- A whole number of ms: a sorted set keeps it as an integer, where a fraction is kept as text
  -- and read back for every comparison (a grant's 33 members cost 3 times as much to add).
  local score = string.format('%d', math.ceil(now * 1000 + lease.ttl_ms))
  local members = {score, lease.id}
  for j = 1, grant_n do members[#members + 1] = score; members[#members + 1] = lease.id .. '.' .. j end
  redis.call('ZADD', lease.key, unpack(members))
  redis.call('PEXPIRE', lease.key, lease.ttl_ms)
end
if hold then redis.call('HINCRBY', hold.key, 'held', string.format('%d', hold.amount * times)) end
return out
"""

# KEYS: the windows to correct, then the lease ZSET (if any), the budget HASH
#       (if a hold), then spend:<day>, spend:days and cost:<key> (if a ledger row).
# ARGV: n_corrections, n_lease_ids, has_hold, has_entry,
#       (bucket, delta) per correction,
#       the lease ids (has_lease of them: a grant's unused slots go together),
#       (-held, spent) for the hold,
#       (day, cost_nano, then field, value pairs to the end) for the ledger row.
# Returns 1.
SETTLE = r"""
local a, k = ab + 5, kb + 1
for _ = 1, tonumber(ARGV[ab + 1]) do
  -- Only a bucket still counted is corrected (an expired one has nothing to fix), never below 0;
  -- the running sum follows (a window kept without one is summed at its next check). A bucket
  -- brought to 0 goes, and so does `o` if it was the oldest (the next check sums what is left).
  local field = ARGV[a]
  local state = redis.call('HMGET', KEYS[k], field, 'n', 'o')
  if state[1] then
    local v = tonumber(state[1])
    local new = math.max(0, v + tonumber(ARGV[a + 1]))
    if new == 0 then
      if state[3] == field then redis.call('HDEL', KEYS[k], field, 'o') else redis.call('HDEL', KEYS[k], field) end
      if state[2] then redis.call('HSET', KEYS[k], 'n', string.format('%d', tonumber(state[2]) - v)) end
    elseif state[2] then
      local n = tonumber(state[2]) + new - v
      redis.call('HSET', KEYS[k], field, string.format('%d', new), 'n', string.format('%d', n))
    else
      redis.call('HSET', KEYS[k], field, string.format('%d', new))
    end
  end
  k, a = k + 1, a + 2
end
local n_ids = tonumber(ARGV[ab + 2])
if n_ids > 0 then
  redis.call('ZREM', KEYS[k], unpack(ARGV, a, a + n_ids - 1))
  k, a = k + 1, a + n_ids
end
if ARGV[ab + 3] == '1' then
  -- A period not (or no longer) tracked is started from the ledger when next used,
  -- and the ledger row below is already in it: nothing to add here.
  if redis.call('EXISTS', KEYS[k]) == 1 then
    if redis.call('HINCRBY', KEYS[k], 'held', ARGV[a]) < 0 then redis.call('HSET', KEYS[k], 'held', 0) end
    redis.call('HINCRBY', KEYS[k], 'spent', ARGV[a + 1])
  end
  k, a = k + 1, a + 2
end
if ARGV[ab + 4] == '1' then
  local day, cost = ARGV[a], ARGV[a + 1]
  redis.call('ZADD', KEYS[k + 1], 0, day)
  if cost ~= '0' then redis.call('HINCRBY', KEYS[k + 2], day, cost) end
  for j = a + 2, ab + na, 2 do redis.call('HINCRBY', KEYS[k], ARGV[j], ARGV[j + 1]) end
end
return 1
"""


def _function(name: str, body: str) -> str:
    # The body as a Lua function of one operation of the batch: its keys are KEYS[kb + 1] on,
    # its `na` arguments ARGV[ab + 1] on (read in place: copying them costs more than the rest).
    return f"local function {name}(kb, ab, na)\n{body}\nend\n"


# KEYS: every operation's keys, one after the other.
# ARGV: n_ops, then per operation: kind ("a" admit, "s" settle), n_keys, n_args, its args.
# Returns one string: a line per operation, in order, its reply's fields (as ADMIT or
# SETTLE returns them) separated by spaces. (One string is read in one step; an array
# of arrays is hundreds of small replies to take apart.)
BATCH = _function("admit", ADMIT) + _function("settle", SETTLE) + r"""
local out = {}
local k, a = 1, 2
for i = 1, tonumber(ARGV[1]) do
  local kind, nk, na = ARGV[a], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local reply
  if kind == 'a' then reply = admit(k - 1, a + 2, na) else reply = {settle(k - 1, a + 2, na)} end
  for j = 1, #reply do
    if type(reply[j]) == 'number' then reply[j] = string.format('%d', reply[j]) end
  end
  out[i] = table.concat(reply, ' ')
  k, a = k + nk, a + 3 + na
end
return table.concat(out, '\n')
"""
