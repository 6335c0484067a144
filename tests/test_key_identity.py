"""Jobs, spend and budgets belong to a key's id, never its reusable name:
revoking a key and making another with the same name hands nothing over; a
key's id is stable (from its secret's digest); a name holding `/` or other
URL-special characters is revocable, by id or URL-encoded name."""
from __future__ import annotations

import hashlib
import time
from urllib.parse import quote

import httpx
import pytest

from gateway.auth import is_key_id
from gateway.store import JobRecord
from gateway.video.jobs import Job
from tests.harness import chat_model
from tests.video.conftest import video_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")   # client.videos is marked deprecated

ADMIN = "admin-secret"
MSG = [{"role": "user", "content": "hi"}]


def config(tmp_path) -> dict:
    cfg = video_config()
    cfg["providers"].append({"name": "chat", "type": "mock"})
    cfg["models"].append(chat_model("m", {"provider": "chat"}))
    cfg["models"].append(chat_model("cached", {"provider": "chat"}, cache={"ttl_s": 60}))
    cfg["auth"]["admin_key"] = ADMIN
    cfg["state"] = {"data_dir": str(tmp_path)}
    return cfg


def _make(a: httpx.Client, name: str, **extra) -> dict:
    r = a.post("/admin/keys", json={"name": name, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _chat(url: str, secret: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                      json={"model": "m", "messages": MSG}, timeout=10)


def test_a_reused_name_inherits_no_videos_and_no_spend(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    a = gw.http(key=ADMIN)
    old = _make(a, "team")
    assert is_key_id(old["id"])
    video = gw.client(old["key"]).videos.create(model="mock-video", prompt="mine", size="320x180", seconds="1")
    assert _chat(gw.url, old["key"]).status_code == 200
    assert a.delete("/admin/keys/team").json()["id"] == old["id"]

    new = _make(a, "team")
    assert new["id"] != old["id"]
    newcomer = gw.client(new["key"])
    assert newcomer.videos.list().data == []
    with pytest.raises(Exception) as e:
        newcomer.videos.retrieve(video.id)
    assert getattr(e.value, "status_code", None) == 404
    assert gw.http(key=new["key"]).get(f"/v1/videos/{video.id}/content").status_code == 404

    listed = {k["name"]: k for k in a.get("/admin/keys").json()["keys"]}
    assert listed["team"]["id"] == new["id"] and listed["team"]["this_month"]["requests"] == 0
    report = a.get("/admin/spend", params={"key": "team", "group_by": "key"}).json()["data"]
    assert report == []                                     # the old key's rows stay with its id
    by_old = a.get("/admin/spend", params={"key": old["id"], "group_by": "key"}).json()["data"]
    assert by_old and by_old[0]["key_id"] == old["id"] and by_old[0]["key"] == old["id"]   # no name now


def test_a_reused_name_starts_a_fresh_budget_and_rpm(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    a = gw.http(key=ADMIN)
    old = _make(a, "capped", limits={"rpm": 1})
    assert _chat(gw.url, old["key"]).status_code == 200
    assert _chat(gw.url, old["key"]).status_code == 429
    a.delete("/admin/keys/capped")
    new = _make(a, "capped", limits={"rpm": 1})
    assert _chat(gw.url, new["key"]).status_code == 200     # its own window, not the old key's


def test_a_reused_name_reads_none_of_the_old_keys_cached_answers(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    a = gw.http(key=ADMIN)

    def ask(secret: str) -> str:
        r = httpx.post(f"{gw.url}/v1/chat/completions", headers={"authorization": f"Bearer {secret}"},
                       json={"model": "cached", "messages": [{"role": "user", "content": "my secret plan"}]})
        assert r.status_code == 200, r.text
        return r.headers["x-gateway-cache"]

    old = _make(a, "cache-team")
    assert (ask(old["key"]), ask(old["key"])) == ("miss", "hit")
    a.delete("/admin/keys/cache-team")
    new = _make(a, "cache-team")
    assert ask(new["key"]) == "miss"


@pytest.mark.parametrize("name", ["team/a", "a/b/c", "with space", "café", "50%off", "q?x=1", "key_0123456789abcdef"])
def test_any_name_is_revocable_url_encoded_or_by_id(start_gateway, tmp_path, name):
    gw = start_gateway(config(tmp_path))
    a = gw.http(key=ADMIN)
    one = _make(a, name)
    r = a.delete("/admin/keys/" + quote(name, safe=""))
    assert r.status_code == 200, r.text
    assert r.json()["name"] == name and r.json()["id"] == one["id"]
    assert _chat(gw.url, one["key"]).status_code == 401

    two = _make(a, name)
    r = a.delete(f"/admin/keys/{two['id']}")
    assert r.status_code == 200 and r.json()["name"] == name
    assert _chat(gw.url, two["key"]).status_code == 401
    assert a.delete(f"/admin/keys/{two['id']}").status_code == 404


def test_a_file_key_has_an_id_from_its_secret_that_outlives_restarts(start_gateway, tmp_path):
    expected = "key_" + hashlib.sha256(b"sk-test").hexdigest()[:16]
    cfg = config(tmp_path)
    gw = start_gateway(cfg)
    listed = {k["name"]: k for k in gw.http(key=ADMIN).get("/admin/keys").json()["keys"]}
    assert listed["test"]["id"] == expected
    gw.close()
    cfg["auth"]["keys"][0]["name"] = "renamed"              # a rename keeps the id (same secret), and its jobs
    again = start_gateway(cfg)
    listed = {k["name"]: k for k in again.http(key=ADMIN).get("/admin/keys").json()["keys"]}
    assert listed["renamed"]["id"] == expected


def test_job_records_from_before_ids_belong_to_no_key(start_gateway, loop, tmp_path):
    gw = start_gateway(config(tmp_path))
    now = int(time.time())
    legacy = Job("video_000000000001aaaaaaaaaaaaaaaa", "test", "mock-video", "old", "1", "320x180", now,
                 status="failed", error={"code": "x", "message": "y"})
    by_id = Job("video_000000000002bbbbbbbbbbbbbbbb", "key_ffffffffffffffff", "mock-video", "theirs", "1",
                "320x180", now, status="failed", error={"code": "x", "message": "y"})
    for job in (legacy, by_id):
        record: JobRecord = job.record()
        loop.run(gw.runtime.store.jobs.create(record, "no-such-queue"))
    mine = gw.http()
    assert mine.get(f"/v1/videos/{legacy.id}").status_code == 404        # a name-only record: no key's
    assert gw.http(key=ADMIN).get(f"/admin/videos/{legacy.id}").status_code == 200    # the admin still sees it
    assert mine.get(f"/v1/videos/{by_id.id}").status_code == 404         # an id-owned record: only that id's
