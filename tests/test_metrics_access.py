"""Who may read /metrics and /readyz's details (issue 13, class 11): anyone on
this machine by default (loopback, no proxy headers), else the scrape token
or the admin key, as `server.metrics` says; /readyz tells anonymous callers
only its status; /healthz stays open."""
from __future__ import annotations

import httpx
import pytest

from gateway import config as loader
from tests.harness import base_config, chat_model

ADMIN = "admin-key-metrics"
TOKEN = "scrape-token-metrics"
REMOTE = ("203.0.113.7", 40000)     # a caller on another machine (TEST-NET-3)


def _gateway(start_gateway, metrics: dict | None, admin: bool = True):
    cfg = base_config([{"name": "mock", "type": "mock"}], [chat_model("m", {"provider": "mock"})])
    if metrics is not None:
        cfg["server"] = {"metrics": metrics}
    if admin:
        cfg["auth"]["admin_key"] = ADMIN
    return start_gateway(cfg)


def _get(loop, gw, path: str, bearer: str | None = None, client=REMOTE, **headers: str) -> httpx.Response:
    """GET through the gateway's ASGI app, as if from `client` (run on the gateway's own loop)."""
    if bearer:
        headers["authorization"] = f"Bearer {bearer}"

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=gw.app, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
            return await c.get(path, headers=headers)
    return loop.run(call())


def test_default_is_open_on_loopback_and_closed_to_other_machines(loop, start_gateway):
    gw = _gateway(start_gateway, None)
    local = gw.http(key=None)
    assert local.get("/metrics").status_code == 200                       # embedded mode, no keys: still works
    assert "gateway_build_info" in local.get("/metrics").text
    remote = _get(loop, gw, "/metrics")
    assert remote.status_code == 401 and remote.json()["error"]["code"] == "invalid_api_key"
    assert "gateway_" not in remote.text
    assert _get(loop, gw, "/metrics", bearer=ADMIN).status_code == 200    # the admin key always works
    assert _get(loop, gw, "/metrics", bearer="wrong").status_code == 401
    # Through a reverse proxy on this machine the peer is loopback, but the caller is not.
    proxied = _get(loop, gw, "/metrics", client=("127.0.0.1", 5000), **{"x-forwarded-for": "198.51.100.1"})
    assert proxied.status_code == 401
    assert _get(loop, gw, "/metrics", client=("::ffff:127.0.0.1", 5000)).status_code == 200
    assert _get(loop, gw, "/healthz").json() == {"status": "ok"}           # health stays open


def test_without_any_credential_the_remote_answer_says_how_to_open_it(loop, start_gateway):
    gw = _gateway(start_gateway, None, admin=False)
    r = _get(loop, gw, "/metrics")
    assert r.status_code == 403 and r.json()["error"]["code"] == "metrics_disabled"
    assert "server.metrics.token" in r.json()["error"]["message"]


@pytest.mark.parametrize("client", [REMOTE, ("127.0.0.1", 5000)])
def test_token_mode_wants_the_token_or_the_admin_key_from_anywhere(loop, start_gateway, client):
    gw = _gateway(start_gateway, {"auth": "token", "token": TOKEN})
    assert _get(loop, gw, "/metrics", client=client).status_code == 401
    assert _get(loop, gw, "/metrics", bearer=TOKEN, client=client).status_code == 200
    assert _get(loop, gw, "/metrics", bearer=ADMIN, client=client).status_code == 200
    assert _get(loop, gw, "/metrics", bearer=TOKEN + "x", client=client).status_code == 401
    assert _get(loop, gw, "/metrics", client=client, authorization=f"Basic {TOKEN}").status_code == 401
    assert _get(loop, gw, "/metrics", bearer="sk-test", client=client).status_code == 401   # a gateway key is not one


def test_admin_key_mode_refuses_the_token(loop, start_gateway):
    gw = _gateway(start_gateway, {"auth": "admin_key", "token": TOKEN})
    assert _get(loop, gw, "/metrics", bearer=TOKEN).status_code == 401
    assert _get(loop, gw, "/metrics", bearer=ADMIN).status_code == 200
    assert gw.http(key=None).get("/metrics").status_code == 401            # loopback too


def test_none_mode_is_open_to_anyone(loop, start_gateway):
    gw = _gateway(start_gateway, {"auth": "none"})
    assert _get(loop, gw, "/metrics").status_code == 200


@pytest.mark.parametrize("client", [REMOTE, ("127.0.0.1", 5000)])
def test_readyz_tells_anonymous_callers_only_its_status(loop, start_gateway, client):
    gw = _gateway(start_gateway, {"auth": "token", "token": TOKEN})
    anonymous = _get(loop, gw, "/readyz", client=client)
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ready"}
    for bearer in (ADMIN, TOKEN):
        detailed = _get(loop, gw, "/readyz", bearer=bearer, client=client).json()
        assert detailed["status"] == "ready" and detailed["providers"] == ["mock"] and detailed["keys"] == 1


def test_the_shipped_config_takes_the_token_from_the_environment():
    cfg = loader.parse(open(loader.default_path()).read(), env={"GATEWAY_METRICS_TOKEN": "from-env-token"}).config
    assert cfg.server.metrics.auth == "auto" and cfg.server.metrics.token == "from-env-token"
