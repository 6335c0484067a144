"""The admin API's config edits: read (secrets hidden), validate, replace,
merge-patch, versions, rollback, keys and provider health; on one gateway
(embedded) and across two gateway processes sharing a real Redis."""
from __future__ import annotations

import threading
import time

import httpx
import openai
import pytest
import yaml

from tests.harness import base_config, chat_model, free_port, serve_process

ADMIN = "admin-secret"


def config(**extra) -> dict:
    cfg = base_config(
        [{"name": "mock-a", "type": "mock"}, {"name": "mock-b", "type": "mock"},
         {"name": "slow", "type": "mock", "stream_chunks": 10, "chunk_delay_ms": 150},
         {"name": "openai", "type": "openai", "api_key": "sk-real-secret"},
         {"name": "env", "type": "openai", "api_key": "${NOT_SET_ANYWHERE:-}"}],
        [chat_model("m", {"provider": "mock-a"}), chat_model("streamy", {"provider": "slow"})], **extra)
    cfg["auth"]["admin_key"] = ADMIN
    return cfg


def served_by(url: str, model: str = "m", key: str = "sk-test") -> str:
    r = httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                   json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    return r.headers["x-gateway-provider"]


def admin(gw) -> httpx.Client:
    return gw.http(key=ADMIN)


def to_b(doc: dict) -> dict:
    return {"models": [{**m, "route": {"targets": [{"provider": "mock-b"}]}} if m["name"] == "m" else m
                       for m in doc["models"]]}


def test_read_patch_and_roll_back(start_gateway):
    gw = start_gateway(config())
    a = admin(gw)
    assert gw.http().get("/admin/config").status_code == 401
    shown = a.get("/admin/config").json()
    assert shown["version"] == 1
    providers = {p["name"]: p for p in shown["config"]["providers"]}
    assert providers["openai"]["api_key"] == "***"                      # a literal secret is hidden
    assert providers["env"]["api_key"] == "${NOT_SET_ANYWHERE:-}"       # a reference is not a secret
    assert shown["config"]["auth"]["admin_key"] == "***"
    assert served_by(gw.url) == "mock-a"

    r = a.patch("/admin/config", json=to_b(shown["config"]))
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and "models[0].route.targets[0].provider" in r.json()["summary"]
    assert served_by(gw.url) == "mock-b"                                 # applied at once
    after = a.get("/admin/config").json()
    assert after["version"] == 2
    assert {p["name"]: p for p in after["config"]["providers"]}["openai"]["api_key"] == "***"
    assert gw.runtime.providers["openai"].options.api_key == "sk-real-secret"   # "***" kept the secret

    versions = a.get("/admin/config/versions").json()
    assert [v["version"] for v in versions["versions"]] == [2, 1]
    assert versions["versions"][0]["author"] == "admin" and versions["versions"][1]["author"] == "file"
    r = a.post("/admin/config/rollback", json={"version": 1})
    assert r.status_code == 200 and r.json()["version"] == 3
    assert served_by(gw.url) == "mock-a"
    assert a.post("/admin/config/rollback", json={"version": 99}).status_code == 404


def test_a_bad_edit_lists_every_error_and_changes_nothing(start_gateway):
    gw = start_gateway(config())
    a = admin(gw)
    before = a.get("/admin/config").json()
    bad = {"models": [{"name": "m", "route": {"targets": [{"provider": "nope"}]}},
                      {"name": "x", "kind": "weird", "route": {"targets": [{"provider": "mock-a"}]}}],
           "breaker": {"failures": 0}}
    r = a.patch("/admin/config", json=bad)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_config" and err["type"] == "invalid_request_error"
    assert "models[0].route.targets[0].provider: unknown provider 'nope'" in err["errors"]
    assert any(e.startswith("models[1].kind") for e in err["errors"])
    assert any(e.startswith("breaker.failures") for e in err["errors"])
    assert a.get("/admin/config").json() == before
    assert served_by(gw.url) == "mock-a"

    check = a.post("/admin/config/validate", json={**before["config"], "models": bad["models"]}).json()
    assert check["valid"] is False and len(check["errors"]) == 2
    assert a.post("/admin/config/validate", json=before["config"]).json() == {"valid": True, "errors": []}
    assert a.patch("/admin/config", content=b"{nope").status_code == 400
    assert a.patch("/admin/config", json=[1]).status_code == 400
    r = a.patch("/admin/config", json={"state": {"data_dir": "/elsewhere"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "restart_required"


def test_replace_with_yaml(start_gateway):
    gw = start_gateway(config())
    a = admin(gw)
    doc = a.get("/admin/config").json()["config"]
    doc["models"] = to_b(doc)["models"]
    r = a.put("/admin/config", content=yaml.safe_dump(doc), headers={"content-type": "application/yaml"})
    assert r.status_code == 200, r.text
    assert served_by(gw.url) == "mock-b"


def test_keys_are_created_listed_and_revoked(start_gateway):
    gw = start_gateway(config())
    a = admin(gw)
    made = a.post("/admin/keys", json={"name": "team-x", "models": ["m"], "limits": {"rpm": 100},
                                       "budget": {"usd": 5}}).json()
    secret = made["key"]
    assert secret.startswith("sk-gw-") and made["version"] == 2
    assert served_by(gw.url, key=secret) == "mock-a"
    assert secret not in a.get("/admin/config").text                   # only the hash is kept
    listed = {k["name"]: k for k in a.get("/admin/keys").json()["keys"]}
    assert listed["team-x"]["limits"] == {"rpm": 100} and listed["team-x"]["this_month"]["requests"] == 1
    assert listed["team-x"]["budget"]["usd"] == 5
    assert a.post("/admin/keys", json={"name": "team-x"}).status_code == 409
    assert a.post("/admin/keys", json={"nom": "x"}).status_code == 400
    assert a.delete("/admin/keys/team-x").json()["revoked"] is True
    r = httpx.post(f"{gw.url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                   json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401
    assert a.delete("/admin/keys/team-x").status_code == 404


def test_providers_show_health(start_gateway):
    cfg = config()
    cfg["providers"].append({"name": "down", "type": "mock", "fail_rate": 1, "fail_status": 503})
    cfg["models"].append(chat_model("flaky", {"provider": "down"}, {"provider": "mock-a"}))
    gw = start_gateway(cfg)
    served_by(gw.url, "flaky")
    shown = {p["name"]: p for p in admin(gw).get("/admin/providers").json()["providers"]}
    assert shown["env"]["enabled"] is False and "api_key" in shown["env"]["disabled_because"]
    [down] = shown["down"]["targets"]
    assert down["target"] == "down/flaky" and down["consecutive_failures"] == 1 and "on purpose" in down["last_error"]
    assert shown["mock-a"]["targets"][0]["circuit"] == "closed"


def test_edits_outlive_a_restart_until_the_file_changes(start_gateway, tmp_path):
    cfg = config()
    cfg["state"] = {"data_dir": str(tmp_path)}
    first = start_gateway(cfg)
    admin(first).patch("/admin/config", json=to_b(admin(first).get("/admin/config").json()["config"]))
    first.close()
    again = start_gateway(cfg)                     # the same file: the edit stands
    assert served_by(again.url) == "mock-b" and again.runtime.version == 2
    again.close()
    cfg["models"].append(chat_model("extra", {"provider": "mock-a"}))
    changed = start_gateway(cfg)                   # an edited file wins, as a new version
    assert served_by(changed.url) == "mock-a" and changed.runtime.version == 3
    assert admin(changed).get("/admin/config/versions").json()["versions"][0]["author"] == "file"


# -- two gateway processes on one Redis ----------------------------------------------



def _within(seconds: float, check) -> float:
    started = time.time()
    while not check():
        assert time.time() - started < seconds, "not within the time allowed"
        time.sleep(0.02)
    return time.time() - started


@pytest.fixture(params=["redis", "redis-cluster"])
def two_replicas(request, start_gateway, tmp_path):
    """Two replicas on one Redis, or on a Redis Cluster (config versions and their pub/sub
    announcements in the cluster's `{config}` slot)."""
    cfg = config()
    if request.param == "redis":
        cfg["state"] = {"redis_url": request.getfixturevalue("redis_url"), "data_dir": str(tmp_path)}
    else:
        cfg["state"] = {"redis_url": request.getfixturevalue("redis_cluster").url, "redis_cluster": True,
                        "data_dir": str(tmp_path)}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    one = start_gateway(yaml.safe_load(path.read_text()))
    port = free_port()
    other = serve_process(path, port)
    yield one, f"http://127.0.0.1:{port}"
    other.terminate()
    other.wait(10)


def test_an_edit_on_one_replica_reaches_the_other_within_a_second(two_replicas):
    one, other = two_replicas
    assert served_by(other) == "mock-a"
    doc = admin(one).get("/admin/config").json()["config"]
    assert admin(one).patch("/admin/config", json=to_b(doc)).status_code == 200
    took = _within(1.0, lambda: served_by(other) == "mock-b")
    assert took < 1.0
    versions = httpx.get(f"{other}/admin/config/versions", headers={"authorization": f"Bearer {ADMIN}"}).json()
    assert versions["current"] == 2


def test_a_stream_in_flight_finishes_on_the_route_it_started_on(two_replicas):
    one, other = two_replicas
    client = openai.OpenAI(base_url=f"{other}/v1", api_key="sk-test", max_retries=0)
    chunks, providers = [], []

    def stream():
        raw = client.chat.completions.with_raw_response.create(
            model="streamy", stream=True, messages=[{"role": "user", "content": "tell me"}])
        providers.append(raw.headers["x-gateway-provider"])
        for chunk in raw.parse():
            chunks.append(chunk)

    t = threading.Thread(target=stream)
    t.start()
    time.sleep(0.4)      # the stream is under way
    doc = admin(one).get("/admin/config").json()["config"]
    removed = {"providers": [p for p in doc["providers"] if p["name"] != "slow"],
               "models": [m for m in doc["models"] if m["name"] != "streamy"]}
    assert admin(one).patch("/admin/config", json=removed).status_code == 200
    _within(1.0, lambda: httpx.post(f"{other}/v1/chat/completions", headers={"authorization": "Bearer sk-test"},
                                    json={"model": "streamy", "messages": [{"role": "user", "content": "x"}]})
            .status_code == 404)
    t.join(10)
    assert providers == ["slow"]
    assert chunks[-1].choices[0].finish_reason == "stop"                 # every chunk arrived
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_bad_edits_leave_both_unchanged_and_rollback_and_revoke_reach_both(two_replicas):
    one, other = two_replicas
    a = admin(one)
    r = a.patch("/admin/config", json={"models": [{"name": "m", "route": {"targets": [{"provider": "ghost"}]}}]})
    assert r.status_code == 400 and r.json()["error"]["errors"]
    time.sleep(0.5)
    assert served_by(other) == "mock-a" and served_by(one.url) == "mock-a"

    secret = a.post("/admin/keys", json={"name": "temp"}).json()["key"]
    _within(1.0, lambda: httpx.post(f"{other}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                                    json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
            .status_code == 200)
    a.delete("/admin/keys/temp")
    for url in (one.url, other):
        _within(1.0, lambda url=url: httpx.post(
            f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]}).status_code == 401)

    a.patch("/admin/config", json=to_b(a.get("/admin/config").json()["config"]))
    _within(1.0, lambda: served_by(other) == "mock-b")
    a.post("/admin/config/rollback", json={"version": 1})
    _within(1.0, lambda: served_by(other) == "mock-a")
    assert served_by(one.url) == "mock-a"
