"""Config edits that would switch something off (the admin API, a configured
secret, a provider models route to, a key) are refused with a 400 saying why,
unless they carry ?confirm=disable; and the file given at start takes the
admin API back at a restart."""
from __future__ import annotations

import httpx
import pytest
import yaml

from tests.harness import base_config, chat_model

ADMIN = "admin-secret"


def config(tmp_path) -> dict:
    cfg = base_config(
        [{"name": "mock-a", "type": "mock"},
         {"name": "paid", "type": "openai", "api_key": "sk-upstream", "base_url": "http://127.0.0.1:9/v1"}],
        [chat_model("m", {"provider": "mock-a"}), chat_model("p", {"provider": "paid"}, {"provider": "mock-a"})])
    cfg["auth"]["admin_key"] = ADMIN
    cfg["webhooks"] = {"secret": "whsec_c2VjcmV0c2VjcmV0c2VjcmV0"}     # signs each job's callback_url
    cfg["state"] = {"data_dir": str(tmp_path)}
    return cfg


def admin(gw) -> httpx.Client:
    return gw.http(key=ADMIN)


@pytest.mark.parametrize("change, says", [
    ({"auth": {"admin_key": "${SURELY_UNSET_VAR}"}}, "admin API would be off"),
    ({"auth": {"admin_key": ""}}, "admin API would be off"),
    ({"auth": {"admin_key": None}}, "admin API would be off"),
    ({"webhooks": {"secret": "${SURELY_UNSET_VAR:-}"}}, "webhooks.secret would be empty"),
    ({"webhooks": {"secret": None}}, "webhooks.secret would be empty"),
    ({"providers": [{"name": "mock-a", "type": "mock"},
                    {"name": "paid", "type": "openai", "api_key": "${SURELY_UNSET_VAR}",
                     "base_url": "http://127.0.0.1:9/v1"}]}, "provider 'paid' would be off"),
    ({"auth": {"keys": [{"name": "test", "key": "${SURELY_UNSET_VAR:-}"}]}}, "key 'test' would be off"),
    ({"providers": [{"name": "mock-a", "type": "mock"},
                    {"name": "paid", "type": "openai", "base_url": "http://127.0.0.1:9/v1"}]},
     "provider 'paid' would be off"),
])
def test_an_edit_that_switches_something_off_needs_confirmation(start_gateway, tmp_path, change, says):
    gw = start_gateway(config(tmp_path))
    a = admin(gw)
    r = a.patch("/admin/config", json=change)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "confirmation_required" and says in error["message"]
    assert any(says in e for e in error["errors"])
    assert gw.runtime.version == 1 and a.get("/admin/config").status_code == 200   # nothing changed

    r = a.patch("/admin/config?confirm=disable", json=change)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2


def test_whole_documents_and_rollbacks_are_guarded_too(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    a = admin(gw)
    doc = a.get("/admin/config").json()["config"]
    off = {**doc, "webhooks": {**doc["webhooks"], "secret": ""}}
    assert a.put("/admin/config", json=off).json()["error"]["code"] == "confirmation_required"
    assert a.put("/admin/config", content=yaml.safe_dump(off), headers={"content-type": "application/yaml"}
                 ).status_code == 400
    assert a.put("/admin/config?confirm=disable", json=off).status_code == 200          # version 2
    assert a.post("/admin/config/rollback", json={"version": 1}).status_code == 200     # turning on: no question
    assert a.post("/admin/config/rollback", json={"version": 2}).json()["error"]["code"] == "confirmation_required"
    assert a.patch("/admin/config", json={"webhooks": {"max_attempts": 3}}).status_code == 200   # unrelated edits pass


def test_emptying_the_webhook_secret_with_endpoints_does_not_check_at_all(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    a = admin(gw)
    change = {"webhooks": {"secret": "${SURELY_UNSET_VAR}", "endpoints": [{"url": "https://hooks.example/x"}]}}
    for path in ("/admin/config", "/admin/config?confirm=disable"):
        r = a.patch(path, json=change)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_config"


def test_the_file_takes_the_admin_api_back_at_restart(start_gateway, tmp_path):
    cfg = config(tmp_path)
    first = start_gateway(cfg)
    r = admin(first).patch("/admin/config?confirm=disable", json={"auth": {"admin_key": "${SURELY_UNSET_VAR}"}})
    assert r.status_code == 200
    assert admin(first).get("/admin/config").status_code == 403                         # off, as confirmed
    first.close()

    again = start_gateway(cfg)                         # the same file, unchanged: its admin key comes back
    a = admin(again)
    assert a.get("/admin/config").status_code == 200
    versions = a.get("/admin/config/versions").json()["versions"]
    assert versions[0]["author"] == "file" and "admin_key" in versions[0]["summary"]
    again.close()

    cfg["auth"]["admin_key"] = "rotated-in-the-file"
    changed = start_gateway(cfg)                       # a changed file wins whole, as before
    assert changed.http(key="rotated-in-the-file").get("/admin/config").status_code == 200
    assert admin(changed).get("/admin/config").status_code == 401
