"""YAML bodies of the admin API are parsed with bounded work, off the event
loop: alias bombs, too many aliases or nodes, and deep nesting answer 400 at
once, /healthz keeps answering meanwhile, and ordinary anchors still work."""
from __future__ import annotations

import threading
import time

import httpx
import pytest
import yaml

from tests.harness import base_config, chat_model

ADMIN = "admin-secret"
YAML = {"content-type": "application/yaml"}


def _laughs(levels: int, width: int) -> bytes:
    lines = [f"a: &a [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join([f'*{prev}'] * width)}]")
    return "\n".join(lines).encode()


BOMBS = {
    "billion laughs": _laughs(9, 9),
    "wide, under the alias cap": _laughs(10, 10),
    "too many aliases": b"x: &x 1\ny: [" + b", ".join([b"*x"] * 500) + b"]\n",
    "too many nodes": b"[" + b", ".join([b"1"] * 150_000) + b"]",
    "nested too deeply": b"[" * 3000 + b"]" * 3000,
    "block sequences nested too deeply": b"- " * 3000 + b"a",
    "a mapping merged into itself": b"a: &a {b: 1}\n" + b"".join(b"k%d: &k%d {<<: [*a], x: *a}\n" % (i, i)
                                                                  for i in range(50)),
}


@pytest.fixture
def gw(start_gateway):
    cfg = base_config([{"name": "mock-a", "type": "mock"}], [chat_model("m", {"provider": "mock-a"})])
    cfg["auth"]["admin_key"] = ADMIN
    return start_gateway(cfg)


@pytest.mark.parametrize("name", list(BOMBS))
@pytest.mark.parametrize("method, path", [("POST", "/admin/config/validate"), ("PUT", "/admin/config"),
                                          ("PATCH", "/admin/config")])
def test_yaml_bombs_are_refused_quickly(gw, name, method, path):
    body = BOMBS[name]
    started = time.monotonic()
    r = gw.http(key=ADMIN).request(method, path, content=body, headers=YAML)
    took = time.monotonic() - started
    if name == "a mapping merged into itself":       # small once expanded: an ordinary document
        assert r.status_code in (200, 400) and took < 2
        return
    assert r.status_code == 400, r.text
    assert "YAML" in r.json()["error"]["message"] and took < 2.5
    assert gw.runtime.version == 1


def test_the_event_loop_keeps_serving_while_yaml_is_parsed(gw):
    stop = threading.Event()
    worst = []

    def probe():
        with httpx.Client(base_url=gw.url) as c:
            while not stop.is_set():
                started = time.monotonic()
                assert c.get("/healthz").status_code == 200
                worst.append(time.monotonic() - started)
                time.sleep(0.01)

    t = threading.Thread(target=probe)
    t.start()
    try:
        for body in BOMBS.values():
            gw.http(key=ADMIN).post("/admin/config/validate", content=body, headers=YAML)
    finally:
        stop.set()
        t.join(5)
    assert worst and sorted(worst)[int(len(worst) * 0.9)] < 0.2   # a shared 2-core machine: generous


def test_ordinary_anchors_and_aliases_still_work(gw):
    a = gw.http(key=ADMIN)
    doc = a.get("/admin/config").json()["config"]
    doc["models"].append({"name": "m2", "kind": "chat", "route": doc["models"][0]["route"]})
    text = yaml.safe_dump(doc)
    assert "*id001" in text                     # the shared route is written once, as an anchor and an alias
    r = a.post("/admin/config/validate", content=text, headers=YAML)
    assert r.json() == {"valid": True, "errors": []}
    r = a.patch("/admin/config", content=b"auth:\n  keys:\n  - &k {name: one, key: sk-one}\n"
                b"  - {<<: *k, name: two, key: sk-two}\n", headers=YAML)
    assert r.status_code == 200, r.text
    assert httpx.post(f"{gw.url}/v1/chat/completions", headers={"authorization": "Bearer sk-two"},
                      json={"model": "m", "messages": [{"role": "user", "content": "x"}]}).status_code == 200
