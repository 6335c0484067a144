"""A Redis that comes back empty (restarted without its data, or flushed) while
two gateways run on it: the config versions are reseeded from the running
version, so edits, key creation and revocation work again within a second,
and both replicas agree on what follows."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from tests.harness import base_config, chat_model, free_port, serve_process
from tests.redis_server import RedisServer

ADMIN = "admin-secret"
MSG = [{"role": "user", "content": "hi"}]


@pytest.fixture
def own_redis():
    server = RedisServer()      # a server of its own: this test kills it
    yield server
    server.close()


@pytest.fixture
def replicas(start_gateway, own_redis, tmp_path):
    cfg = base_config([{"name": "mock-a", "type": "mock"}, {"name": "mock-b", "type": "mock"}],
                      [chat_model("m", {"provider": "mock-a"})])
    cfg["auth"]["admin_key"] = ADMIN
    cfg["state"] = {"redis_url": own_redis.url, "data_dir": str(tmp_path), "redis_timeout_ms": 2000}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    one = start_gateway(yaml.safe_load(path.read_text()))
    port = free_port()
    other = serve_process(path, port)
    yield one.url, f"http://127.0.0.1:{port}"
    other.terminate()
    other.wait(10)


def _admin(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=10)


def _chat(url: str, key: str) -> int:
    return httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                      json={"model": "m", "messages": MSG}, timeout=10).status_code


def _within(seconds: float, check) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the time allowed"
        time.sleep(0.05)


def _served_by(url: str) -> str:
    r = httpx.post(f"{url}/v1/chat/completions", headers={"authorization": "Bearer sk-test"},
                   json={"model": "m", "messages": MSG}, timeout=10)
    return r.headers.get("x-gateway-provider", "")


def _lose_redis(server: RedisServer, how: str) -> None:
    if how == "restart":
        server.kill()
        time.sleep(0.5)
        server.start()           # no persistence: it comes back empty
    else:
        server.flush()


def _first_ok(make, seconds: float = 1.5) -> httpx.Response:
    """The first answer that is not a 503 (the store reconnecting), within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        r = make()
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["restart", "flush"])
def test_keys_can_be_made_and_revoked_after_redis_comes_back_empty(replicas, own_redis, how):
    one, other = replicas
    leaked = _admin(one).post("/admin/keys", json={"name": "leaked"}).json()["key"]   # version 2
    _within(1.0, lambda: _chat(other, leaked) == 200)
    _lose_redis(own_redis, how)

    r = _first_ok(lambda: _admin(other).delete("/admin/keys/leaked"))                 # never a 409
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 3
    # pub/sub resubscribes after an outage; the 2 s look is the bound (5: room for a loaded machine)
    for url in (one, other):
        _within(5, lambda url=url: _chat(url, leaked) == 401)

    made = _admin(one).post("/admin/keys", json={"name": "fresh"})
    assert made.status_code == 200, made.text
    _within(5, lambda: _chat(other, made.json()["key"]) == 200)
    versions = _admin(other).get("/admin/config/versions").json()
    assert versions["current"] == 4 and [v["version"] for v in versions["versions"]][:3] == [4, 3, 2]


def test_config_edits_work_again_and_reach_the_other_replica(replicas, own_redis):
    one, other = replicas
    doc = _admin(one).get("/admin/config").json()["config"]
    _lose_redis(own_redis, "restart")
    to_b = {"models": [{**m, "route": {"targets": [{"provider": "mock-b"}]}} for m in doc["models"]]}
    r = _first_ok(lambda: _admin(one).patch("/admin/config", json=to_b))
    assert r.status_code == 200, r.text
    _within(5, lambda: _served_by(other) == "mock-b")
    shown = _admin(other).get("/admin/config").json()
    assert shown["version"] == r.json()["version"]


def test_an_idle_store_is_reseeded_without_an_edit(replicas, own_redis):
    one, other = replicas
    _lose_redis(own_redis, "restart")
    time.sleep(3)                # replicas look every 2 s: one of them puts the running version back
    versions = _admin(one).get("/admin/config/versions").json()
    assert versions["current"] == 1 and versions["versions"][0]["author"] == "gateway"


def test_an_outage_answers_503_then_both_replicas_edit_at_once_after_it(replicas, own_redis):
    one, other = replicas
    own_redis.kill()
    r = _admin(one).post("/admin/keys", json={"name": "during"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "store_unavailable"
    own_redis.start()                                      # back, empty

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda url: _first_ok(lambda: _admin(url).post(
            "/admin/keys", json={"name": f"k-{url[-5:]}"})), [one, other]))
    assert all(a.status_code in (200, 409) for a in answers) and any(a.status_code == 200 for a in answers)
    for url, a in zip([one, other], answers, strict=True):
        if a.status_code == 409:                               # lost the race: read again and retry, as told
            assert _admin(url).post("/admin/keys", json={"name": f"k-{url[-5:]}"}).status_code == 200
    # Both keys reach both replicas (read each until it has them: one replica's view may
    # trail the other's by a version while the edits settle).
    both = {f"k-{one[-5:]}", f"k-{other[-5:]}"}
    for url in (one, other):
        _within(5, lambda url=url: both <= {k["name"] for k in _admin(url).get("/admin/keys").json()["keys"]})
