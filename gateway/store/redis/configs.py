"""Config versions on Redis. One Lua step stores a version only if the newest
is still the one the editor read (so two admins editing at once cannot lose
either's change silently) and publishes its number, which every replica
subscribes to and applies within a second.

Keys: config:current (the newest number), config:v:<n> (HASH: at, author,
summary, file_hash, document), config:log (LIST of kept numbers, newest first),
channel config (PUBLISH of each new number). The scripts build a version's key
from the prefix; on Redis Cluster it carries the config's hash tag, so that key
is in the slot of those they were given (cluster.py).
"""
from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.store.configs import KEPT, Configs, ConfigVersion
from gateway.store.redis.base import Pool, Script, talking

# KEYS: config:current, config:log; ARGV: prefix, expected, at, author, summary, file_hash, document, kept
PUT = r"""
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[2]) then return 0 end
local n = current + 1
redis.call('HSET', ARGV[1] .. 'config:v:' .. n, 'at', ARGV[3], 'author', ARGV[4], 'summary', ARGV[5],
           'file_hash', ARGV[6], 'document', ARGV[7])
redis.call('SET', KEYS[1], n)
redis.call('LPUSH', KEYS[2], n)
for _, old in ipairs(redis.call('LRANGE', KEYS[2], tonumber(ARGV[8]), -1)) do
  redis.call('DEL', ARGV[1] .. 'config:v:' .. old)
end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[8]) - 1)
redis.call('PUBLISH', ARGV[1] .. 'config', n)
return n
"""

# KEYS: config:current, config:log; ARGV: prefix, n, at, author, summary, file_hash, document
SEED = r"""
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = tonumber(ARGV[2])
if current >= n then return 0 end
redis.call('HSET', ARGV[1] .. 'config:v:' .. n, 'at', ARGV[3], 'author', ARGV[4], 'summary', ARGV[5],
           'file_hash', ARGV[6], 'document', ARGV[7])
redis.call('SET', KEYS[1], n)
redis.call('LPUSH', KEYS[2], n)
redis.call('PUBLISH', ARGV[1] .. 'config', n)
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
        n = await self._pool.run(self._put, [p + "config:current", p + "config:log"],
                                 [p, expected, repr(version.at), version.author, version.summary, version.file_hash,
                                  version.document or b"{}", KEPT])
        return int(n) or None

    async def seed(self, version: ConfigVersion) -> bool:
        p = self._p
        n = await self._pool.run(self._seed, [p + "config:current", p + "config:log"],
                                 [p, version.version, repr(version.at), version.author, version.summary,
                                  version.file_hash, version.document or b"{}"])
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
