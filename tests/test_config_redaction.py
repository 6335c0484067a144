"""GET /admin/config hides every secret (issue 13, class 10): secret fields,
`headers:` values, `${VAR:-default}` defaults, URL user-info (a Redis password
holding "@" too) and secret query values; and a document read back with its
"***" markers keeps the secrets when sent back."""
from __future__ import annotations

import pytest

from gateway.config.edits import redact, restore_secrets
from tests.harness import base_config, chat_model

ADMIN = "admin-key-redaction"

DOC = {
    "server": {"host": "0.0.0.0", "metrics": {"auth": "token", "token": "mt-scrape-secret-1"}},
    "state": {"redis_url": "redis://:p@ss/w@rd-9@redis.internal:6379/0"},
    "auth": {"admin_key": "${GATEWAY_ADMIN_KEY:-adm-default-secret}",
             "keys": [{"name": "k", "key": "${K:-sk-key-default}", "models": ["*"]}]},
    "providers": [
        {"name": "a", "type": "openai", "api_key": "${OPENAI_API_KEY}",
         "headers": {"x-upstream-token": "hdr-secret-value", "x-ref": "${HDR}", "x-def": "${HDR:-hdr-default}"},
         "base_url": "https://user:url-pass-123@upstream.example/v1?api-version=2024-10-21&sig=sas-signature-1"},
        {"name": "b", "type": "openai_compatible", "base_url": "https://tok-in-userinfo-9@host.example/v1"},
        {"name": "c", "type": "openai_compatible",
         "base_url": "${C_URL:-https://u:default-url-pass@c.example/v1?token=query-token-77}"},
        {"name": "d", "type": "bedrock", "secret_access_key": "aws-secret-value", "session_token": "${T:-}"},
    ],
}
SECRETS = ["mt-scrape-secret-1", "p@ss/w@rd-9", "ss/w@rd-9", "adm-default-secret", "sk-key-default",
           "hdr-secret-value", "hdr-default", "url-pass-123", "sas-signature-1", "tok-in-userinfo-9",
           "default-url-pass", "query-token-77", "aws-secret-value"]


def test_every_kind_of_secret_is_hidden():
    shown = redact(DOC)
    text = repr(shown)
    assert [s for s in SECRETS if s in text] == []
    providers = {p["name"]: p for p in shown["providers"]}
    assert shown["state"]["redis_url"] == "redis://:***@redis.internal:6379/0"
    assert shown["auth"]["admin_key"] == "${GATEWAY_ADMIN_KEY:-***}"       # the variable's name stays visible
    assert providers["a"]["api_key"] == "${OPENAI_API_KEY}"                  # a bare reference holds no secret
    assert providers["a"]["headers"] == {"x-upstream-token": "***", "x-ref": "${HDR}", "x-def": "${HDR:-***}"}
    assert providers["a"]["base_url"] == "https://user:***@upstream.example/v1?api-version=2024-10-21&sig=***"
    assert providers["b"]["base_url"] == "https://***@host.example/v1"
    assert providers["c"]["base_url"] == "${C_URL:-https://u:***@c.example/v1?token=***}"
    assert providers["d"]["session_token"] == "${T:-}"
    assert shown["server"]["host"] == "0.0.0.0"                               # plain values as they are


def test_what_was_shown_sent_back_keeps_every_secret():
    shown = redact(DOC)
    assert restore_secrets(shown, DOC) == DOC
    # An edit beside the hidden values keeps them too; a new value replaces the old.
    shown["providers"][0]["headers"]["x-new"] = "plain"
    shown["providers"][2]["base_url"] = "https://c2.example/v1"
    back = restore_secrets(shown, DOC)
    assert back["providers"][0]["headers"] == {**DOC["providers"][0]["headers"], "x-new": "plain"}
    assert back["providers"][2]["base_url"] == "https://c2.example/v1"
    assert back["state"]["redis_url"] == DOC["state"]["redis_url"]


@pytest.mark.parametrize("url", ["redis://:a@b@c@r:6379/0", "rediss://default:p%40ss@r:6380", "redis://u:x:y@r/1"])
def test_redis_passwords_with_odd_characters(url):
    shown = redact({"state": {"redis_url": url}})["state"]["redis_url"]
    assert shown.endswith("@r:6379/0") or shown.endswith("@r:6380") or shown.endswith("@r/1")
    assert "***" in shown and "p%40ss" not in shown and "a@b" not in shown and "x:y" not in shown
    assert restore_secrets({"state": {"redis_url": shown}}, {"state": {"redis_url": url}})["state"]["redis_url"] == url


def test_admin_config_over_http_hides_and_round_trips(start_gateway):
    cfg = base_config(
        [{"name": "mock-a", "type": "mock"},
         {"name": "up", "type": "openai_compatible", "api_key": "sk-literal-up",
          "base_url": "http://user:basic-pass-55@127.0.0.1:9/v1?token=qs-token-55",
          "headers": {"x-upstream-token": "hdr-over-http"}}],
        [chat_model("m", {"provider": "mock-a"})],
        server={"metrics": {"auth": "token", "token": "metrics-token-55"}})
    cfg["auth"]["admin_key"] = ADMIN
    gw = start_gateway(cfg)
    a = gw.http(key=ADMIN)
    r = a.get("/admin/config")
    assert r.status_code == 200
    for secret in ("sk-literal-up", "basic-pass-55", "qs-token-55", "hdr-over-http", "metrics-token-55", ADMIN):
        assert secret not in r.text, secret
    doc = r.json()["config"]
    doc["models"][0]["timeout_s"] = 30
    assert a.put("/admin/config", json=doc).status_code == 200, "sent back as shown"
    up = gw.runtime.providers["up"].options
    assert up.headers == {"x-upstream-token": "hdr-over-http"} and up.api_key == "sk-literal-up"
    assert up.base_url == "http://user:basic-pass-55@127.0.0.1:9/v1?token=qs-token-55"
    assert gw.runtime.config.server.metrics.token == "metrics-token-55"
