"""Four gateway processes sharing one real Redis: limits and budgets hold
exactly across them, one round trip each way, and a Redis outage takes
nothing down.

The replicas run `python -m gateway serve` as a user would. Their Redis
timeout is raised from the default 50 ms: a 2-core CI machine running four
gateways, Redis and a 1,000-request client stalls event loops longer than
that, and a timeout fails open (admits), which is the policy, not a miscount.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import orjson
import pytest
import yaml
from redis.asyncio import Redis

from gateway.auth import digest_of, key_id
from gateway.spend import NANO, today
from gateway.store.redis import RedisStore
from gateway.store.redis.grants import GRANT_N
from gateway.store.redis.limits import LEDGER_FLUSH_S
from tests.harness import free_port
from tests.redis_server import RedisServer

REPLICAS = 4
BURST = 1000
LATENCY_MS = 2000          # the slow model's: longer than a whole burst takes, so all of it overlaps
ROOT = Path(__file__).resolve().parents[1]
MSG = [{"role": "user", "content": "hello there"}]
TOKENS_BODY = orjson.dumps({"model": "slow", "messages": MSG, "max_tokens": 50})
TOKENS_ESTIMATE = len(TOKENS_BODY) // 4 + 50
KEYS = {"rpm": {"limits": {"rpm": 100}},
        "concurrent": {"limits": {"concurrent": 10}},
        "tpm": {"limits": {"tpm": 100 * TOKENS_ESTIMATE}},
        "budget": {"budget": {"usd": 1, "period": "day"}},
        "flow": {"limits": {"rpm": 1_000_000, "concurrent": 10_000}},
        "near": {"limits": {"rpm": 1_000, "concurrent": 100}},     # under FLOOR_N requests' room: never a grant
        "after": {"limits": {"rpm": 5}},
        **{f"round{i}": {"limits": {"rpm": 50}} for i in range(3)},
        **{f"eight{i}": {"limits": {"rpm": 40}} for i in range(10)}}


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict
    port: int
    done: float


class Replicas:
    def __init__(self, redis: RedisServer, workdir: Path, n: int = REPLICAS) -> None:
        config = {
            "state": {"redis_url": redis.url, "data_dir": str(workdir / "data")},     # default timeouts
            "auth": {"keys": [{"name": name, "key": f"sk-{name}", **extra} for name, extra in KEYS.items()]},
            "providers": [{"name": "mock", "type": "mock"},
                          {"name": "slow", "type": "mock", "latency_ms": LATENCY_MS}],
            "models": [{"name": "m", "route": {"targets": [{"provider": "mock"}]}},
                       {"name": "slow", "route": {"targets": [{"provider": "slow"}]}}],
            "prices": {"mock/*": {"per_request": 0.01}, "slow/*": {"per_request": 0.01}},
        }
        path = workdir / "gateway.yaml"
        path.write_text(yaml.safe_dump(config))
        self.ports = [free_port() for _ in range(n)]
        self.logs = [workdir / f"replica-{i}.log" for i in range(n)]
        self.procs = [subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(path),
                                        "--port", str(port), "--log-level", "warning"],
                                       cwd=ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
                      for port, log in zip(self.ports, self.logs, strict=True)]
        deadline = time.monotonic() + 30
        for port, proc in zip(self.ports, self.procs, strict=True):
            while not _healthy(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"replica on {port} did not start:\n{self.output()}")
                time.sleep(0.05)

    def output(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-2000:] for log in self.logs)

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def redis():
    server = RedisServer()       # this module's own: one test kills it
    yield server
    server.close()


@pytest.fixture(scope="module")
def replicas(redis, tmp_path_factory):
    r = Replicas(redis, tmp_path_factory.mktemp("replicas"))
    yield r
    r.close()


async def _send(session: aiohttp.ClientSession, port: int, key: str, body: bytes) -> Answer:
    async with session.post(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                            headers={"authorization": f"Bearer sk-{key}", "content-type": "application/json"}) as r:
        raw = await r.read()
        return Answer(r.status, {k.lower(): v for k, v in r.headers.items()}, orjson.loads(raw), port,
                      time.monotonic())


def burst(replicas: Replicas, key: str, body: bytes, n: int = BURST) -> list[Answer]:
    """`n` requests at once, spread evenly over the replicas."""
    async def run() -> list[Answer]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                         timeout=aiohttp.ClientTimeout(total=60)) as session:
            return await asyncio.gather(*(_send(session, replicas.ports[i % len(replicas.ports)], key, body)
                                          for i in range(n)))
    return asyncio.run(run())


def chat(model: str = "m") -> bytes:
    return orjson.dumps({"model": model, "messages": MSG})


def statuses(answers: list[Answer]) -> dict[int, int]:
    out: dict[int, int] = {}
    for a in answers:
        out[a.status] = out.get(a.status, 0) + 1
    return out


async def _settled(read, expected, timeout: float = 10.0):
    """What `read()` gives once it equals `expected` (or at the timeout): settling
    happens after the answer is sent, so it lands a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        value = await read()
        if value == expected or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


def test_rpm_is_exact_across_replicas(replicas):
    # The module's first burst: every replica cold, 1,000 requests for a pool of 128 connections each.
    answers = burst(replicas, "rpm", chat())
    assert statuses(answers) == {200: 100, 429: 900}, replicas.output()
    admitted = [a for a in answers if a.status == 200]
    # One atomic step per request: each admitted request saw a different count.
    assert sorted(int(a.headers["x-ratelimit-remaining-requests"]) for a in admitted) == list(range(100))
    # Every replica counted against the one limit (which of them admitted depends on whose batch came first).
    assert len({a.port for a in answers if a.status == 429}) == REPLICAS
    for a in answers:
        assert a.headers["x-ratelimit-limit-requests"] == "100"
        assert a.headers["x-ratelimit-reset-requests"].endswith("s")
        if a.status == 429:
            assert 1 <= int(a.headers["retry-after"]) <= 60
            assert a.headers["x-ratelimit-remaining-requests"] == "0"
            assert a.body["error"]["code"] == "rate_limit_exceeded" and a.body["error"]["type"] == "requests"


def test_bursts_larger_than_the_pool_stay_exact_round_after_round(replicas):
    """A slow store is not a down one: bursts that queue for Redis connections are
    waited for, never admitted unlimited."""
    for i in range(3):
        answers = burst(replicas, f"round{i}", chat(), n=600)
        assert statuses(answers) == {200: 50, 429: 550}, (i, replicas.output())
    assert "unreachable" not in replicas.output()     # the outage policy never tripped


def test_eight_replicas_stay_exact_burst_after_burst(redis, tmp_path_factory):
    """8 replicas on a 2-core machine, 1,000 requests at once, ten bursts in a row, at the
    default outage threshold: each admits exactly the limit, and Redis is never taken for down."""
    eight = Replicas(redis, tmp_path_factory.mktemp("eight"), n=8)
    try:
        for i in range(10):
            answers = burst(eight, f"eight{i}", chat())
            assert statuses(answers) == {200: 40, 429: 960}, (i, eight.output())
        assert "unreachable" not in eight.output()
    finally:
        eight.close()


def test_concurrency_is_exact_across_replicas(replicas, redis):
    answers = burst(replicas, "concurrent", chat("slow"))
    assert statuses(answers) == {200: 10, 429: 990}, replicas.output()
    refused = [a for a in answers if a.status == 429]
    admitted = [a for a in answers if a.status == 200]
    # All of them overlapped: every refusal came back while the 10 were still in flight.
    assert max(a.done for a in refused) < min(a.done for a in admitted)
    assert all(a.headers["retry-after"] == "1" and a.body["error"]["code"] == "rate_limit_exceeded" for a in refused)

    async def in_flight():
        async with Redis.from_url(redis.url) as r:
            return await r.zcard(f"gw:concurrent:key:{key_id(digest_of('sk-concurrent'))}")
    assert asyncio.run(_settled(in_flight, 0)) == 0      # every replica released its slots


def test_tpm_is_exact_across_replicas_and_reconciled_after(replicas, redis):
    answers = burst(replicas, "tpm", TOKENS_BODY)
    assert statuses(answers) == {200: 100, 429: 900}, replicas.output()
    # No estimate was corrected during the burst: every refusal came back before any answer.
    assert max(a.done for a in answers if a.status == 429) < min(a.done for a in answers if a.status == 200)
    for a in answers:
        assert a.headers["x-ratelimit-limit-tokens"] == str(100 * TOKENS_ESTIMATE)
        if a.status == 429:
            assert a.headers["x-ratelimit-remaining-tokens"] == "0" and a.body["error"]["type"] == "tokens"
    used = sum(a.body["usage"]["total_tokens"] for a in answers if a.status == 200)
    assert used < 100 * TOKENS_ESTIMATE

    async def counted():
        async with Redis.from_url(redis.url) as r:
            windows = await r.hgetall(f"gw:tpm:key:{key_id(digest_of('sk-tpm'))}")   # by the key's id
            buckets = sum(int(v) for k, v in windows.items() if k not in (b"n", b"o"))
            return buckets if int(windows[b"n"]) == buckets else (buckets, int(windows[b"n"]))   # the sum agrees
    # Every replica corrected its estimates to the real usage.
    assert asyncio.run(_settled(counted, used)) == used


def test_budget_is_exact_across_replicas_and_spend_adds_up(replicas, redis):
    answers = burst(replicas, "budget", chat())
    assert statuses(answers) == {200: 100, 429: 900}, replicas.output()
    assert all(a.body["error"]["code"] == "insufficient_quota" for a in answers if a.status == 429)
    costs = sum(round(float(a.headers["x-gateway-cost-usd"]) * NANO) for a in answers if a.status == 200)
    assert costs == NANO         # $1, to the nano-dollar

    async def ledger_total():
        store = RedisStore(redis.url, timeout_s=2.0)
        try:
            rows = await store.ledger.rows(today(), today())
            budget = key_id(digest_of("sk-budget"))     # counted by the key's id, not its name
            return sum(r.cost_nano for r in rows if r.key == budget), \
                await store.limits.budget_spent(f"budget:{budget}:{today()}:{today()}")
        finally:
            await store.close()
    assert asyncio.run(_settled(ledger_total, (costs, costs))) == (costs, costs)


def _request_path_commands(replicas: Replicas, redis: RedisServer, key: str, n: int) -> list[str]:
    """What one replica sends Redis while it answers `n` requests of `key` one after the other
    (after one request first: connections warm, its ledger row written)."""
    port = replicas.ports[0]
    assert httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=chat(),
                      headers={"authorization": f"Bearer sk-{key}"}).status_code == 200
    time.sleep(3 * LEDGER_FLUSH_S)

    async def watch() -> list[str]:
        seen: list[dict] = []
        async with Redis.from_url(redis.url) as r, r.monitor() as m:
            async def collect():
                while True:
                    seen.append(await m.next_command())
            collecting = asyncio.create_task(collect())
            async with httpx.AsyncClient() as client:
                for _ in range(n):
                    answer = await client.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=chat(),
                                               headers={"authorization": f"Bearer sk-{key}"})
                    assert answer.status_code == 200
            await asyncio.sleep(0.3)
            collecting.cancel()
        # Background work of every replica (following config versions, video queues, the
        # webhook outbox, the request log) has keys of its own; the request path is what is left.
        background = ("config", "queue:", "outbox", "workers:", "requests:")
        commands, in_multi = [], False
        for c in seen:
            command = c["command"]
            word = command.split()[0].upper().strip('"')
            in_multi = word == "MULTI" or (in_multi and word != "EXEC")
            if c.get("client_type") != "lua" and not in_multi and word != "EXEC" \
                    and not any(b in command for b in background):
                commands.append(command)
        return commands
    return asyncio.run(watch())


def test_one_redis_round_trip_to_admit_and_one_to_settle_near_the_limits(replicas, redis):
    sent = _request_path_commands(replicas, redis, "near", 1)
    # The request's own: admit, then settle (its lease); the ledger row (no budget) is added up
    # in the replica and written by the next flush, within LEDGER_FLUSH_S.
    assert [c.split()[0].upper() for c in sent] == ["EVALSHA", "EVALSHA", "EVALSHA"]
    assert "spend:" not in sent[0] and "spend:" not in sent[1] and "spend:" in sent[2]


def test_far_from_its_limits_a_key_is_admitted_from_grants(replicas, redis):
    """Far from every limit, a replica admits from room Redis set aside for it: one round trip
    per GRANT_N requests or per bucket, plus the ledger's flushes, not two per request."""
    n = 4 * GRANT_N
    sent = _request_path_commands(replicas, redis, "flow", n)
    # Decided by Redis, each request would send two (admit, settle). From grants: one asked and one
    # given back per GRANT_N requests or per one-second bucket, the ledger's flushes every
    # LEDGER_FLUSH_S, and a request alone now and then (in a bucket's last fiftieth no grant is given).
    assert all(c.split()[0].upper() == "EVALSHA" for c in sent), sent
    assert len(sent) <= n // 2, len(sent)

    async def in_flight():
        async with Redis.from_url(redis.url) as r:
            return await r.zcard(f"gw:concurrent:key:{key_id(digest_of('sk-flow'))}")
    assert asyncio.run(_settled(in_flight, 0)) == 0      # every slot given back once the grants ended


def test_redis_dying_mid_load_fails_open_and_limits_return_with_it(replicas, redis):
    async def load(seconds: float) -> list[tuple[float, int]]:
        out: list[tuple[float, int]] = []
        stop = time.monotonic() + seconds

        async def worker(i: int) -> None:
            while time.monotonic() < stop:
                a = await _send(session, replicas.ports[i % REPLICAS], "flow", chat())
                out.append((a.done, a.status))

        async def killer() -> float:
            await asyncio.sleep(seconds / 3)
            await asyncio.to_thread(redis.kill)
            return time.monotonic()

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            killed, *_ = await asyncio.gather(killer(), *(worker(i) for i in range(32)))
        return [(done - killed, status) for done, status in out]

    try:
        results = asyncio.run(load(1.5))
    finally:
        if not redis.running:
            redis.start()
    assert {status for _, status in results} == {200}, replicas.output()
    assert sum(1 for after, _ in results if after > 0.1) > 50        # it kept flowing without Redis
    # Redis is back (empty, on the same port): the limits apply again, exactly.
    answers = burst(replicas, "after", chat(), n=40)
    # (An answer admitted by failing open carries no x-ratelimit headers: None below.)
    assert statuses(answers) == {200: 5, 429: 35}, \
        [a.headers.get("x-ratelimit-remaining-requests") for a in answers if a.status == 200]
