"""A provider's secrets never leave the gateway (issue 13, class 3): a hostile
upstream on loopback echoes every header and the URL it was sent back in its
error bodies (JSON 401/500, an HTML page that puts a key across the 300th
character, error events inside a stream), and no configured secret (api key,
`headers:` values, a bearer token in a header, URL user-info and its Basic
form, a query token in base_url, Azure's AD token) reaches the client's
answer, the log, stderr or GET /admin/providers."""
from __future__ import annotations

import asyncio
import base64
import logging
import time

import orjson
import pytest
from aiohttp import web

from providers.errors import MESSAGE_LIMIT
from providers.redaction import scrub, secrets_of
from tests.harness import Loop, base_config, chat_model, free_port

ADMIN = "admin-key-for-secrets-test"
API_KEY = "sk-live-7Qm2vX9pL4tR8wZ1aa"
HEADER = "hv-9Jd3kT7qW2xN5bR8"
BEARER = "bt-4Fh8sK2mQ7vL1zP6"
USER, PASSWORD = "gwuser", "pw-6Rt1yU8iO3pA5sD2"
QUERY = "qt-8Gh5jK1lZ4xC7vB9"
AD_TOKEN = "ad-2Nm6bV9cX4zL8kJ3"
ACCESS_KEY_ID, SESSION = "AKIAECHO7TEST2KEY9ID", "st-3Zx8cV1bN6mQ4wE7"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
SECRETS = [API_KEY, HEADER, BEARER, PASSWORD, QUERY, AD_TOKEN, BASIC, ACCESS_KEY_ID, SESSION]
MSG = [{"role": "user", "content": "hi"}]


class EchoUpstream:
    """Answers every path by echoing what it was sent. The first path segment
    says how: `json400` (the echo in the error's type, param and code too), `json401`, `json500`,
    `html500` (the echo after 290 characters of
    page, so a key straddles the 300th), `stream-openai`, `stream-anthropic`,
    `stream-gemini` (one good event, then an error event carrying the echo)."""

    def __init__(self, loop: Loop) -> None:
        self.loop = loop
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        loop.run(self._start())

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)   # not 60 s for a slow answer
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        mode = request.path.strip("/").split("/")[0]
        # The key first, so the HTML page below puts it across the 300th character.
        values = sorted(request.headers.values(), key=lambda v: API_KEY not in v)
        echo = " | ".join([*values, request.path_qs])
        error = {"error": {"message": f"denied: {echo}", "type": "authentication_error", "code": 401,
                           "status": "UNAUTHENTICATED"},
                 "message": f"denied: {echo}"}       # Bedrock's shape
        if mode == "videofail":     # a job accepted, then failed upstream with the echo as its reason
            if request.method == "POST":
                return web.json_response({"id": "video_echo", "object": "video", "status": "queued"})
            return web.json_response({"id": "video_echo", "object": "video", "status": "failed",
                                      "error": {"code": "upstream_refused", "message": f"denied: {echo}"}})
        if mode == "video401":
            if request.method == "POST":
                return web.json_response({"id": "video_echo", "object": "video", "status": "queued"})
            return web.json_response(error, status=401)
        if mode == "okecho":     # a whole answer that repeats what it was sent
            return web.json_response({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                                      "choices": [{"index": 0, "finish_reason": "stop",
                                                   "message": {"role": "assistant", "content": echo}}]})
        if mode == "json401":
            return web.json_response(error, status=401)
        if mode == "json400":       # the echo in every field the client's error answer passes on
            fields = {"message": f"bad: {echo}", "type": f"invalid {echo}", "param": f"p {echo}", "code": f"c {echo}"}
            return web.json_response({"error": fields, "message": f"bad: {echo}"}, status=400)
        if mode == "json500":
            error["error"].update(type="api_error", code=500, status="INTERNAL")
            return web.json_response(error, status=500)
        if mode == "html500":
            key_at = echo.find(API_KEY)
            page = "<html><body>" + "x" * (290 - 12 - max(0, key_at)) + echo
            return web.Response(status=500, text=page, content_type="text/html")
        resp = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        if mode == "stream-openai":
            events = [{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                       "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hello"}}]},
                      {"error": {"message": f"broke: {echo}", "type": "server_error"}}]
            events = [b"data: " + orjson.dumps(e) + b"\n\n" for e in events]
        elif mode == "stream-anthropic":
            start = {"type": "message_start", "message": {
                "id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
                "stop_reason": None, "usage": {"input_tokens": 1, "output_tokens": 0}}}
            block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hello"}}
            err = {"type": "error", "error": {"type": "api_error", "message": f"broke: {echo}"}}
            events = [b"".join(f"event: {e['type']}\ndata: ".encode() + orjson.dumps(e) + b"\n\n"
                               for e in (start, block, delta)),
                      b"event: error\ndata: " + orjson.dumps(err) + b"\n\n"]
        else:
            chunk = {"candidates": [{"content": {"role": "model", "parts": [{"text": "hello"}]}, "index": 0}]}
            err = {"error": {"code": 500, "message": f"broke: {echo}", "status": "INTERNAL"}}
            events = [b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in (chunk, err)]
        for i, event in enumerate(events):
            if i:
                await asyncio.sleep(0.05)     # the good part is relayed first: the error comes after the first byte
            await resp.write(event)
        await resp.write_eof()
        return resp

    def base(self, mode: str, path: str = "", userinfo: bool = True) -> str:
        """A base_url carrying user-info and a query token (the other secrets travel as headers)."""
        who = f"{USER}:{PASSWORD}@" if userinfo else ""
        return f"http://{who}127.0.0.1:{self.port}/{mode}{path}?token={QUERY}"

    def close(self) -> None:
        if self._runner is not None:
            self.loop.run(self._runner.cleanup())


@pytest.fixture
def echo(loop):
    upstream = EchoUpstream(loop)
    yield upstream
    upstream.close()


ADAPTERS = {
    "openai": ({"type": "openai", "api_key": API_KEY}, "/v1", "stream-openai"),
    "anthropic": ({"type": "anthropic", "api_key": API_KEY}, "/v1", "stream-anthropic"),
    "gemini": ({"type": "gemini", "api_key": API_KEY}, "/v1beta", "stream-gemini"),
    "azure": ({"type": "azure_openai", "api_key": API_KEY, "azure_ad_token": AD_TOKEN}, "", "stream-openai"),
    "bedrock": ({"type": "bedrock", "region": "us-east-1", "access_key_id": ACCESS_KEY_ID,
                 "secret_access_key": "sak-never-sent-1234", "session_token": SESSION}, "", ""),
}
MODES = ["json400", "json401", "json500", "html500", "stream"]
CASES = [(a, m) for a in sorted(ADAPTERS) for m in MODES if ADAPTERS[a][2] or m != "stream"]


def _gateway(start_gateway, echo: EchoUpstream, adapter: str, mode: str):
    options, path, stream_mode = ADAPTERS[adapter]
    # User-info becomes an Authorization header: only where the adapter sends none of its own.
    userinfo = adapter in ("anthropic", "gemini")
    base = echo.base(stream_mode if mode == "stream" else mode, path, userinfo)
    provider = {"name": "up", **options, "base_url": base, "breaker": {"failures": 1000, "cooldown_s": 1},
                "headers": {"x-upstream-token": HEADER, "x-gateway-auth": f"Bearer {BEARER}"}}
    cfg = base_config([provider], [chat_model("m", {"provider": "up", "model": "m"}, retries=0)])
    cfg["auth"]["admin_key"] = ADMIN
    return start_gateway(cfg)


def _leaks(text: str) -> list[str]:
    """The secrets in `text`, whole or as a head long enough to matter (a key cut in two)."""
    return [s for s in SECRETS if s[:10] in text]


@pytest.mark.parametrize(("adapter", "mode"), CASES)
def test_no_secret_reaches_the_client_the_log_or_the_admin_view(start_gateway, echo, caplog, capfd,
                                                                adapter, mode):
    caplog.set_level(logging.DEBUG)
    gw = _gateway(start_gateway, echo, adapter, mode)
    body = {"model": "m", "messages": MSG, "stream": mode == "stream"}
    r = gw.http().post("/v1/chat/completions", json=body)
    if mode == "stream":
        assert r.status_code == 200 and "hello" in r.text
    else:
        assert r.status_code >= 400
        assert len(r.json()["error"]["message"]) <= MESSAGE_LIMIT
    assert "***" in r.text, r.text                    # the echo came back, with the secrets hidden
    assert _leaks(r.text) == [], r.text

    shown = gw.http(key=ADMIN).get("/admin/providers").text
    assert _leaks(shown) == [], shown
    if mode in ("json401", "json500"):     # a target's failures (a 400 is the request's; a broken stream, neither)
        assert "***" in shown
    logged = caplog.text + "".join(capfd.readouterr())
    if mode != "json400" and not (mode == "stream" and ADAPTERS[adapter][2] == "stream-openai"):
        assert "***" in logged      # (a stream relayed as it came, scrubbed, is no failure; a 400 is the client's)
    if mode == "json400":       # the upstream's own type, param and code reach the client: hidden and bounded too
        error = r.json()["error"]
        assert all(len(error[f] or "") <= 128 for f in ("type", "param", "code")), error
    assert _leaks(logged) == [], logged


def test_a_relayed_answer_hides_credentials_but_not_plain_header_values(start_gateway, echo):
    provider = {"name": "up", "type": "openai", "api_key": API_KEY, "base_url": echo.base("okecho", "/v1", False),
                "headers": {"x-upstream-token": HEADER, "x-title": "Example App Title"}}
    gw = start_gateway(base_config([provider], [chat_model("m", {"provider": "up", "model": "m"})]))
    r = gw.http().post("/v1/chat/completions", json={"model": "m", "messages": MSG})
    assert r.status_code == 200
    content = r.json()["choices"][0]["message"]["content"]
    assert "Example App Title" in content                 # ordinary text, left as it is
    assert _leaks(content) == [] and "***" in content


@pytest.mark.parametrize("mode", ["videofail", "video401"])
def test_a_failed_video_job_shows_no_secret(start_gateway, echo, caplog, capfd, mode):
    caplog.set_level(logging.DEBUG)
    provider = {"name": "up", "type": "openai", "api_key": API_KEY, "base_url": echo.base(mode, "/v1", False),
                "headers": {"x-upstream-token": HEADER, "x-gateway-auth": f"Bearer {BEARER}"},
                "poll_interval_s": 0.01, "poll_max_interval_s": 0.02}
    video = {"name": "v", "kind": "video", "route": {"targets": [{"provider": "up", "model": "sora-2"}]}}
    cfg = base_config([provider], [video], videos={"poll_after_ms": 50, "job_lease_s": 2})
    cfg["auth"]["admin_key"] = ADMIN
    gw = start_gateway(cfg)
    http = gw.http()
    job = http.post("/v1/videos", json={"model": "v", "prompt": "a lighthouse", "size": "1280x720", "seconds": "4"})
    assert job.status_code == 200, job.text
    deadline = time.monotonic() + 15
    while (shown := http.get(f"/v1/videos/{job.json()['id']}").json())["status"] not in ("failed", "completed"):
        assert time.monotonic() < deadline, shown
        time.sleep(0.05)
    assert shown["status"] == "failed" and shown["error"]
    text = orjson.dumps(shown).decode()
    assert "***" in text and _leaks(text) == [], text
    logged = caplog.text + "".join(capfd.readouterr())
    assert _leaks(logged) == [], logged


def test_secrets_are_found_in_every_option_and_form():
    options = {"name": "p", "type": "openai", "api_key": API_KEY, "azure_ad_token": AD_TOKEN,
               "headers": {"x-a": HEADER, "authorization": f"Bearer {BEARER}", "x-short": "on"},
               "base_url": f"https://{USER}:{PASSWORD}@host/v1?api-version=2024-10-21&sig={QUERY}",
               "video": {"client_secret": "cs-1234567890"}}
    found = secrets_of(options)
    for s in [API_KEY, HEADER, BEARER, PASSWORD, QUERY, AD_TOKEN, BASIC, "cs-1234567890", f"{USER}:{PASSWORD}"]:
        assert s in found, s
    assert "on" not in found and "2024-10-21" not in found     # short or plain values are not secrets
    relayed = secrets_of({**options, "headers": {**options["headers"], "x-title": "Example App"}},
                         credentials_only=True)
    assert "Example App" not in relayed and HEADER not in relayed and BEARER in relayed and API_KEY in relayed
    assert list(found) == sorted(found, key=len, reverse=True)   # longest first
    # Longest first: a secret that holds another is hidden whole, not left half shown.
    assert scrub(f"a {BEARER} b Bearer {BEARER} c", found) == "a *** b *** c"
    assert scrub(f"%22{PASSWORD}%22 {QUERY}", secrets_of({"base_url": f"https://u:{PASSWORD}@h?token={QUERY}"})) \
        == "%22***%22 ***"


def test_a_key_cut_by_truncation_is_still_hidden():
    from providers.errors import UpstreamFault, body_text
    page = ("<p>" + "x" * 290 + API_KEY + "y" * 2000).encode()
    err = UpstreamFault(f"provider 'p' answered 500: {body_text(page)}").scrubbed(secrets_of({"api_key": API_KEY}))
    assert API_KEY[:10] not in err.message and "***" in err.message
    assert len(err.message) <= MESSAGE_LIMIT and str(err) == err.message


@pytest.mark.parametrize("with_key", [True, False])
def test_credentials_in_base_url_never_give_a_500_or_show(start_gateway, fake_openai, with_key):
    """A base_url with user-info beside the provider's own Authorization header is a
    setting to fix: the call fails over (here: a 502 naming the provider), never a
    500, and the password is not in it."""
    up = fake_openai()
    url = up.url.replace("http://", "http://user:s3cret-in-url@")
    provider = {"name": "u", "type": "openai", "base_url": url}
    if with_key:
        provider["api_key"] = "sk-upstream-key-123"
    else:
        provider["type"] = "openai_compatible"
    gw = start_gateway(base_config([provider], [chat_model("m", {"provider": "u"})]))
    r = gw.http().post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code in (200, 502), r.text
    assert "s3cret-in-url" not in r.text
