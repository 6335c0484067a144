"""GET /admin/keys shows each key's use of its rate limits this moment (`usage`), on both
stores (Redis: a real redis-server), with traffic from the official openai SDK through
the gateway to a fake OpenAI upstream on loopback that can hold a request open."""
from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiohttp import web

from tests.harness import base_config, chat_model, free_port
from tests.upstreams.openai_fake import FakeOpenAI

ADMIN = "admin-secret"
MSG = [{"role": "user", "content": "hello there"}]
TOKENS = 19 + 10        # the recorded answer's usage (tests/data/openai/chat_completion.json)
LIMITS = {"rpm": 50, "tpm": 10_000, "concurrent": 2, "videos_per_hour": 5}


class HeldOpenAI(FakeOpenAI):
    """Answers each request once `released` is set; `arrived` is set when one comes in."""

    def __init__(self, loop) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()
        self.released.set()
        super().__init__(loop)

    async def fail_or_wait(self) -> web.Response | None:
        self.arrived.set()
        await asyncio.get_running_loop().run_in_executor(None, self.released.wait, 20)
        return None


@pytest.fixture
def held_openai(loop):
    fake = HeldOpenAI(loop)
    yield fake
    fake.released.set()
    fake.close()


@pytest.fixture(params=["embedded", "redis"])
def state(request) -> dict:
    return {} if request.param == "embedded" else {"redis_url": request.getfixturevalue("redis_url")}


def config(upstream_url: str, state: dict) -> dict:
    cfg = base_config([{"name": "oa", "type": "openai", "base_url": upstream_url, "api_key": "sk-up"}],
                      [chat_model("m", {"provider": "oa"})])
    cfg["auth"]["admin_key"] = ADMIN
    cfg["auth"]["keys"][0]["limits"] = dict(LIMITS)
    cfg["auth"]["keys"].append({"name": "free", "key": "sk-free"})
    cfg["state"] = dict(state)
    return cfg


def listed(gw) -> dict[str, dict]:
    r = gw.http(key=ADMIN).get("/admin/keys")
    assert r.status_code == 200, r.text
    return {k["name"]: k for k in r.json()["keys"]}


def test_requests_tokens_and_requests_in_flight_show_against_each_limit(start_gateway, held_openai, state):
    gw = start_gateway(config(held_openai.url, state))
    client = gw.client()
    for _ in range(3):
        client.chat.completions.create(model="m", messages=MSG)
    keys = listed(gw)
    assert keys["test"]["usage"] == {"rpm": {"used": 3, "limit": 50}, "tpm": {"used": 3 * TOKENS, "limit": 10_000},
                                     "concurrent": {"used": 0, "limit": 2}, "videos_per_hour": {"used": 0, "limit": 5}}
    assert keys["free"]["usage"] == {}          # no limits, nothing to show

    # one request held open upstream: in flight until it is answered
    held_openai.arrived.clear()
    held_openai.released.clear()
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(client.chat.completions.create, model="m", messages=MSG)
        assert held_openai.arrived.wait(10)
        during = listed(gw)["test"]["usage"]
        held_openai.released.set()
        assert running.result(10).choices
    assert during["concurrent"] == {"used": 1, "limit": 2}
    assert during["rpm"]["used"] == 4
    deadline = time.monotonic() + 5      # the answer is out; its slot is freed as the request ends
    while (after := listed(gw)["test"]["usage"])["concurrent"]["used"] != 0:
        assert time.monotonic() < deadline, after
        time.sleep(0.05)
    assert after["rpm"]["used"] == 4 and after["tpm"]["used"] == 4 * TOKENS


def test_a_store_that_does_not_answer_leaves_usage_out(start_gateway):
    cfg = config("http://127.0.0.1:9/v1", {"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    keys = listed(start_gateway(cfg))
    assert keys["test"]["usage"] is None and keys["test"]["limits"] == LIMITS
