"""Config versions on Redis. One Lua step stores a version only if the newest
is still the one the editor read (so two admins editing at once cannot lose
either's change silently) and publishes its number, which every replica
subscribes to and applies within a second.

Keys: config:current (the newest number), config:v:<n> (HASH: at, author,
summary, file_hash, document), config:log (LIST of kept numbers, newest first),
channel config (PUBLISH of each new number, by the script). Each script is
given every key it touches: a new version's number is known before it runs (the
one after `expected`), and the versions it pushes out of the log are read first.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.store.configs import KEPT, Configs, ConfigVersion
from gateway.store.redis.base import Pool, Script, talking

# KEYS: config:current, config:log, config:v:<expected + 1>, then config:v:<n> for each version
#       the new one pushes out of the log (read just before: the log from KEPT - 1 on)
# ARGV: expected, at, author, summary, file_hash, document, kept, the channel, then those versions' numbers
# Returns the new number, or 0 when the newest is not `expected` or the log changed since it was read.
PUT = r"""
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
local kept = tonumber(ARGV[7])
local old = redis.call('LRANGE', KEYS[2], kept - 1, -1)
if #old ~= #ARGV - 8 then return 0 end
for i, n in ipairs(old) do if n ~= ARGV[8 + i] then return 0 end end
local n = current + 1
redis.call('HSET', KEYS[3], 'at', ARGV[2], 'author', ARGV[3], 'summary', ARGV[4], 'file_hash', ARGV[5],
           'document', ARGV[6])
redis.call('SET', KEYS[1], n)
redis.call('LPUSH', KEYS[2], n)
for i = 4, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('LTRIM', KEYS[2], 0, kept - 1)
redis.call('PUBLISH', ARGV[8], n)
return n
"""

# KEYS: config:current, config:log, config:v:<n>
# ARGV: n, at, author, summary, file_hash, document, the channel
# Returns n, or 0 when the store already has n or newer.
SEED = r"""
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[1])
if current >= n then return 0 end
redis.call('HSET', KEYS[3], 'at', ARGV[2], 'author', ARGV[3], 'summary', ARGV[4], 'file_hash', ARGV[5],
           'document', ARGV[6])
redis.call('SET', KEYS[1], n)
redis.call('LPUSH', KEYS[2], n)
redis.call('PUBLISH', ARGV[7], n)
return n
"""

_FIELDS = ("at", "author", "summary", "file_hash", "document")


class RedisConfigs(Configs):
    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._redis = pool.redis
        self._p = pool.prefix
        self._put = Script(PUT)
        self._seed = Script(SEED)

    async def latest(self) -> ConfigVersion | None:
        with talking():
            current = await self._redis.get(self._p + "config:current")
        return None if current is None else await self.version(int(current))

    async def version(self, version: int) -> ConfigVersion | None:
        with talking():
            values = await self._redis.hmget(self._p + f"config:v:{version}", _FIELDS)
        if values[0] is None:
            return None
        at, author, summary, file_hash, document = values
        return ConfigVersion(version, float(at), author.decode(), summary.decode(), file_hash.decode(), document)

    async def versions(self, limit: int) -> list[ConfigVersion]:
        with talking():
            numbers = [int(n) for n in await self._redis.lrange(self._p + "config:log", 0, limit - 1)]
            pipe = self._redis.pipeline(transaction=False)
            for n in numbers:
                pipe.hmget(self._p + f"config:v:{n}", _FIELDS[:4])
            rows = await pipe.execute() if numbers else []
        return [ConfigVersion(n, float(at), author.decode(), summary.decode(), file_hash.decode())
                for n, (at, author, summary, file_hash) in zip(numbers, rows, strict=True) if at is not None]

    async def put(self, version: ConfigVersion, expected: int) -> int | None:
        p = self._p
        # The versions the new one pushes out of the log are read first, so that the script is
        # given every key it deletes; it stores nothing if the log changed meanwhile.
        current, old = await self._pool.transaction(p + "config:current", lambda trip: (
            trip.get(p + "config:current"), trip.lrange(p + "config:log", KEPT - 1, -1)))
        if int(current or 0) != expected:
            return None
        numbers = [n.decode() for n in old]
        n = await self._pool.run(self._put, [p + "config:current", p + "config:log", p + f"config:v:{expected + 1}",
                                             *(p + f"config:v:{n}" for n in numbers)],
                                 [expected, repr(version.at), version.author, version.summary, version.file_hash,
                                  version.document or b"{}", KEPT, p + "config", *numbers])
        return int(n) or None

    async def seed(self, version: ConfigVersion) -> bool:
        p = self._p
        n = await self._pool.run(self._seed,
                                 [p + "config:current", p + "config:log", p + f"config:v:{version.version}"],
                                 [version.version, repr(version.at), version.author, version.summary,
                                  version.file_hash, version.document or b"{}", p + "config"])
        return bool(int(n))

    async def events(self) -> AsyncIterator[int]:
        with talking():
            pubsub = self._redis.pubsub()
            await pubsub.subscribe(self._p + "config")
        try:
            while True:
                with talking():
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    yield int(message["data"])
        finally:
            await pubsub.aclose()
