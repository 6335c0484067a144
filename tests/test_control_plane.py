"""The control plane on FastAPI: its OpenAPI document, admin keys with roles,
console sessions and their CSRF rules, the audit trail, key edits, the video
gallery and the console's pages; on a real gateway over loopback HTTP."""
from __future__ import annotations

import base64
import hashlib
import re

import httpx
import openai
import pytest

from tests.harness import base_config, chat_model

ADMIN = "admin-secret"


def config() -> dict:
    cfg = base_config([{"name": "mock", "type": "mock"}], [chat_model("m", {"provider": "mock"})])
    cfg["auth"]["admin_key"] = ADMIN
    return cfg


def make_key(a: httpx.Client, name: str, **fields) -> dict:
    r = a.post("/admin/keys", json={"name": name, **fields})
    assert r.status_code == 200, r.text
    return r.json()


def test_the_openapi_document_describes_every_admin_path(start_gateway):
    gw = start_gateway(config())
    doc = httpx.get(f"{gw.url}/admin/openapi.json").json()
    paths = doc["paths"]
    for path, method in [("/admin/config", "get"), ("/admin/config", "patch"), ("/admin/keys", "post"),
                         ("/admin/keys/{ref}", "patch"), ("/admin/session", "post"), ("/admin/audit", "get"),
                         ("/admin/requests", "get"), ("/admin/stats", "get"), ("/admin/videos", "get")]:
        assert method in paths[path], (path, method)
    assert "role" in doc["paths"]["/admin/keys"]["post"]["requestBody"]["content"]["application/json"]["schema"][
        "properties"]
    # unknown paths and methods answer in the OpenAI error shape
    r = gw.http(key=ADMIN).get("/admin/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_url"
    r = gw.http(key=ADMIN).put("/admin/audit")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_the_api_docs_come_from_the_gateway_alone(start_gateway):
    """/admin/docs needs no sign-in (as the document it reads) and names no other host: Swagger UI's
    script, styles and icon are the gateway's own, cached for good (their URL names the version)."""
    gw = start_gateway(config())
    r = httpx.get(f"{gw.url}/admin/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Gateway admin API" in r.text and "'/admin/openapi.json'" in r.text
    assert not re.search(r"https?:|//[a-z]", r.text), "the page names another host"
    assets = re.findall(r'(?:src|href)="([^"]+)"', r.text)
    assert len(assets) == 3 and all(a.startswith("/admin/docs/assets/") for a in assets), assets
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png"}
    assert sorted(a[a.rindex("."):] for a in assets) == sorted(kinds)
    for asset in assets:
        kind = kinds[asset[asset.rindex("."):]]
        got = httpx.get(gw.url + asset)
        assert got.status_code == 200 and kind in got.headers["content-type"] and got.content, asset
        assert "immutable" in got.headers["cache-control"] and "max-age=31536000" in got.headers["cache-control"]
    # the page's policy: its own files, its one inline script by hash, calls to the gateway; nothing else
    policy = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    assert re.fullmatch(r"'self' 'sha256-[A-Za-z0-9+/]+=*'", policy["script-src"])
    assert policy["style-src"] == "'self'" and policy["img-src"] == "'self' data:"
    inline = re.search(r"<script>(.*?)</script>", r.text, re.S)
    assert inline and f"'sha256-{base64.b64encode(hashlib.sha256(inline.group(1).encode()).digest()).decode()}'" in \
        policy["script-src"]
    assert r.headers["x-frame-options"] == "DENY"
    # only what the page loads: not the rest of the package's folder
    base = assets[0].rsplit("/", 1)[0]
    for other in ("redoc.standalone.js", "nothing.js"):
        assert httpx.get(f"{gw.url}{base}/{other}").status_code == 404, other


def test_a_viewer_reads_but_changes_nothing_and_an_admin_key_is_no_client_key(start_gateway):
    gw = start_gateway(config())
    a = gw.http(key=ADMIN)
    viewer = make_key(a, "ops-viewer", role="viewer")
    second = make_key(a, "ops-admin", role="admin")
    v = gw.http(key=viewer["key"])
    assert v.get("/admin/keys").status_code == 200
    roles = {k["name"]: k["role"] for k in v.get("/admin/keys").json()["keys"]}
    assert roles["ops-viewer"] == "viewer" and roles["ops-admin"] == "admin"
    for method, path, body in [("POST", "/admin/keys", {"name": "x"}), ("PATCH", "/admin/config", {"rules": []}),
                               ("DELETE", "/admin/keys/ops-admin", None),
                               ("POST", "/admin/config/rollback", {"version": 1})]:
        r = v.request(method, path, json=body)
        assert r.status_code == 403 and r.json()["error"]["code"] == "read_only", (method, path, r.text)
    assert gw.http(key=second["key"]).post("/admin/keys", json={"name": "made-by-second"}).status_code == 200
    with pytest.raises(openai.AuthenticationError):      # an admin key never serves the API
        gw.client(key=viewer["key"]).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    r = a.post("/admin/keys", json={"name": "bad", "role": "owner"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "role"


def test_a_console_session_signs_in_is_held_to_csrf_and_signs_out(start_gateway):
    gw = start_gateway(config())
    c = httpx.Client(base_url=gw.url)
    assert c.get("/admin/session").status_code == 401
    r = c.post("/admin/session", json={"key": "wrong"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = c.post("/admin/session", json={"key": ADMIN})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and ADMIN not in cookie
    assert c.get("/admin/session").json()["name"] == "admin key"
    assert c.get("/admin/keys").status_code == 200
    # a change with the cookie needs the CSRF header, and the gateway's own origin
    assert c.post("/admin/keys", json={"name": "k1"}).json()["error"]["code"] == "csrf_check_failed"
    r = c.post("/admin/keys", json={"name": "k1"}, headers={"x-console-csrf": "1", "origin": "https://evil.example"})
    assert r.status_code == 403
    r = c.post("/admin/keys", json={"name": "k1"}, headers={"x-console-csrf": "1", "origin": gw.url})
    assert r.status_code == 200, r.text
    assert c.delete("/admin/session").status_code == 200
    assert c.get("/admin/keys").status_code == 401
    # a session ends with its key: an admin key revoked takes its sessions with it
    a = gw.http(key=ADMIN)
    ops = make_key(a, "ops", role="admin")
    s = httpx.Client(base_url=gw.url)
    assert s.post("/admin/session", json={"key": ops["key"]}).status_code == 200
    assert s.get("/admin/keys").status_code == 200
    assert a.delete("/admin/keys/ops").status_code == 200
    assert s.get("/admin/keys").status_code == 401


def test_every_change_and_failed_sign_in_is_in_the_audit_trail(start_gateway):
    gw = start_gateway(config())
    a = gw.http(key=ADMIN)
    make_key(a, "team-a")
    assert a.patch("/admin/keys/team-a", json={"limits": {"rpm": 5}}).status_code == 200
    assert gw.http(key="not-an-admin").get("/admin/keys").status_code == 401
    httpx.post(f"{gw.url}/admin/session", json={"key": "guess"})
    trail = a.get("/admin/audit").json()["data"]
    actions = [(e["action"], e["actor"], e["status"]) for e in trail]
    assert ("sign-in failed", "", 401) in actions
    assert ("sign-in failed: GET /admin/keys", "", 401) in actions
    assert ("PATCH /admin/keys/team-a", "admin key", 200) in actions
    assert ("POST /admin/keys", "admin key", 200) in actions
    assert all(e["from"] == "127.0.0.1" for e in trail)
    assert next(e for e in trail if e["action"] == "POST /admin/keys")["target"] == "team-a"
    assert a.get("/admin/audit", params={"limit": "0"}).status_code == 400


def test_a_key_edit_changes_what_it_may_do_at_once(start_gateway):
    gw = start_gateway(config())
    a = gw.http(key=ADMIN)
    made = make_key(a, "team-b")
    client = gw.client(key=made["key"])
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    r = a.patch(f"/admin/keys/{made['id']}", json={"models": ["other-*"]})
    assert r.status_code == 200, r.text
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert a.patch("/admin/keys/team-b", json={"name": "renamed"}).json()["error"]["param"] == "name"
    assert a.patch("/admin/keys/nobody", json={"models": ["*"]}).status_code == 404


def test_the_config_reads_as_yaml_for_the_editor(start_gateway):
    gw = start_gateway(config())
    r = gw.http(key=ADMIN).get("/admin/config", headers={"accept": "application/yaml"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/yaml")
    assert "models:" in r.text and r.headers["x-config-version"]
    assert ADMIN not in r.text


def test_the_console_pages_are_served_with_a_strict_policy(start_gateway):
    gw = start_gateway(config())
    r = httpx.get(f"{gw.url}/ui", follow_redirects=True)
    assert r.status_code == 200 and "<html" in r.text.lower()
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{gw.url}/ui/no-such-file.js").status_code == 404


def test_the_video_gallery_lists_every_keys_jobs_with_links(start_gateway):
    cfg = base_config([{"name": "mock", "type": "mock", "video_sizes": ["320x180"], "video_seconds": [1]}],
                      [chat_model("m", {"provider": "mock"}),
                       {"name": "mock-video", "kind": "video", "route": {"targets": [{"provider": "mock"}]}}])
    cfg["auth"]["admin_key"] = ADMIN
    gw = start_gateway(cfg)
    video = gw.client().videos.create_and_poll(model="mock-video", prompt="a boat", size="320x180", seconds="1",
                                               poll_interval_ms=100)
    assert video.status == "completed"
    a = gw.http(key=ADMIN)
    data = a.get("/admin/videos").json()["data"]
    shown = next(v for v in data if v["id"] == video.id)
    assert shown["key"] and shown["video_url"] and shown["thumbnail_url"]
    mp4 = httpx.get(a.get(f"/admin/videos/{video.id}/content").headers["location"])
    assert mp4.status_code == 200 and mp4.headers["content-type"] == "video/mp4"
    thumb = a.get(f"/admin/videos/{video.id}/content", params={"variant": "thumbnail"}, follow_redirects=True)
    assert thumb.status_code == 200 and thumb.headers["content-type"].startswith("image/")


def test_each_target_shows_its_recent_error_rate(start_gateway):
    cfg = base_config([{"name": "flaky", "type": "mock", "fail_rate": 1.0, "fail_status": 503},
                       {"name": "mock", "type": "mock"}],
                      [chat_model("m", {"provider": "flaky"}, {"provider": "mock"})])
    cfg["auth"]["admin_key"] = ADMIN
    gw = start_gateway(cfg)
    client = gw.client()
    for _ in range(3):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    rates = {t["target"].split("/")[0]: t["error_rate"] for p in gw.http(key=ADMIN).get("/admin/providers").json()[
        "providers"] for t in p["targets"]}
    assert rates["mock"] == 0.0 and rates["flaky"] > 0.3    # every attempt on it failed (a moving average)
