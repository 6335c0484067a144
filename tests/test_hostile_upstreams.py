"""Upstreams that attack the gateway (tests/upstreams/hostile.py), driven
through the official `openai` SDK for each adapter kind: a redirect is never
followed (the attacker receives nothing), a malformed 200 or a broken stream
fails over to a healthy target, or is a clean 502 in OpenAI's shape when
there is none; never a 500."""
from __future__ import annotations

import asyncio
import io
import os

import openai
import pytest
import yaml
from PIL import Image

from gateway import config as config_loader
from gateway.config.checks import ConfigError
from providers import hosted_video
from providers.errors import UpstreamFault
from providers.http import Upstream, UpstreamRequest
from tests.harness import Gateway, base_config, chat_model
from tests.upstreams.hostile import BAD_STREAMS, MALFORMED, REDIRECTS, Attacker, Hostile
from tests.upstreams.openai_fake import FakeOpenAI
from tests.upstreams.veo_fake import FakeVeo

MSG = [{"role": "user", "content": "the prompt, which must not leave"}]
SECRETS = {"openai": "sk-openai-secret", "anthropic": "sk-ant-secret", "gemini": "goog-secret"}
HEADER_SECRET = "hdr-secret-123"
ADAPTERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini"}
SMALL = 512 * 1024     # the hostile providers' answer and event caps, so "huge" is cheap to send


@pytest.fixture(scope="module")
def rig(loop):
    """One gateway in front of every (adapter, behaviour) pair: model `<adapter>-<behaviour>`
    falls back to a healthy OpenAI fake; `...-alone` has no fallback."""
    attacker = Attacker(loop)
    hostile = Hostile(loop, attacker, huge_bytes=4 * SMALL)
    healthy = FakeOpenAI(loop, "healthy")
    providers = [{"name": "healthy", "type": "openai_compatible", "base_url": healthy.url}]
    models = []
    for adapter, kind in ADAPTERS.items():
        for behaviour in [*REDIRECTS, *MALFORMED, *BAD_STREAMS]:
            name = f"{adapter}-{behaviour}"
            providers.append({"name": name, "type": kind, "base_url": hostile.at(behaviour),
                              "api_key": SECRETS[adapter], "headers": {"x-tenant-token": HEADER_SECRET},
                              "max_answer_bytes": SMALL, "max_event_bytes": SMALL})
            models.append(chat_model(name, {"provider": name, "model": "m"}, {"provider": "healthy"}))
            models.append(chat_model(f"{name}-alone", {"provider": name, "model": "m"}))
    providers.append({"name": "later", "type": "openai", "base_url": hostile.at("stream-endless-later"),
                      "api_key": SECRETS["openai"], "max_event_bytes": SMALL})
    models.append(chat_model("stream-endless-later", {"provider": "later"}, {"provider": "healthy"}))
    gw = Gateway(loop, base_config(providers, models, breaker={"failures": 100000, "cooldown_s": 30}))
    yield gw, hostile, attacker
    gw.close()
    for server in (healthy, hostile, attacker):
        server.close()


def _cases(behaviours: list[str]) -> list[str]:
    return [f"{a}-{b}" for a in ADAPTERS for b in behaviours]


def _answered_by_healthy(raw) -> None:
    assert raw.headers["x-gateway-provider"] == "healthy"
    assert raw.headers["x-gateway-attempts"] == "2"


def _clean_502(e: pytest.ExceptionInfo) -> None:
    err = e.value
    assert isinstance(err, openai.APIStatusError)
    assert err.status_code == 502, (err.status_code, err.body)
    body = err.body
    assert isinstance(body, dict) and body["type"] == "server_error" and body["message"]
    for secret in (*SECRETS.values(), HEADER_SECRET):
        assert secret not in err.response.text


@pytest.mark.parametrize("model", _cases(REDIRECTS))
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_redirect_is_not_followed_and_fails_over(rig, model, stream):
    gw, hostile, attacker = rig
    client = gw.client()
    if stream:
        raw = client.chat.completions.with_raw_response.create(model=model, messages=MSG, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    else:
        raw = client.chat.completions.with_raw_response.create(model=model, messages=MSG)
        text = raw.parse().choices[0].message.content
    _answered_by_healthy(raw)
    assert "attacker" not in text
    assert attacker.seen == []
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=f"{model}-alone", messages=MSG)
    _clean_502(e)
    assert e.value.code == "upstream_redirect"
    assert attacker.seen == []


@pytest.mark.parametrize("model", _cases(MALFORMED))
def test_a_malformed_200_fails_over(rig, model):
    gw, _, attacker = rig
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MSG)
    _answered_by_healthy(raw)
    assert raw.parse().choices[0].message.content
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=f"{model}-alone", messages=MSG)
    _clean_502(e)
    assert attacker.seen == []


@pytest.mark.parametrize("model", _cases(BAD_STREAMS + ["html", "html-as-json", "json-array", "invalid-json"]))
def test_a_broken_stream_fails_over_before_its_first_byte(rig, model):
    gw, _, _ = rig
    client = gw.client()
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MSG, stream=True)
    _answered_by_healthy(raw)
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    with pytest.raises(openai.APIStatusError) as e:
        client.chat.completions.create(model=f"{model}-alone", messages=MSG, stream=True)
    _clean_502(e)


def test_an_endless_event_is_cut_at_the_cap_not_buffered(rig):
    gw, hostile, _ = rig
    hostile.endless_sent = 0
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="openai-stream-endless-event-alone", messages=MSG, stream=True)
    _clean_502(e)
    assert "over" in e.value.message
    assert hostile.endless_sent < 16 * SMALL     # the read stopped near the cap, not at the server's 64 MB


def test_an_endless_event_after_the_first_byte_ends_the_stream_with_an_error_event(rig):
    gw, hostile, _ = rig
    hostile.endless_sent = 0
    seen = []
    with pytest.raises(openai.APIError) as e:
        for chunk in gw.client().chat.completions.create(model="stream-endless-later", messages=MSG, stream=True):
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["first words"]
    assert "over" in e.value.message
    assert hostile.endless_sent < 16 * SMALL


def test_redirects_to_a_listed_origin_are_followed(loop, start_gateway):
    trusted = Attacker(loop)      # stands for the provider's own second host
    hostile = Hostile(loop, trusted)
    try:
        gw = start_gateway(base_config(
            [{"name": "moved", "type": "openai", "base_url": hostile.at("redirect-307"), "api_key": "sk-moved",
              "follow_redirects": [trusted.base]},
             {"name": "chain", "type": "openai", "base_url": hostile.at("redirect-chain"), "api_key": "sk-chain",
              "follow_redirects": [hostile.base]}],
            [chat_model("moved", {"provider": "moved"}), chat_model("chain", {"provider": "chain"})]))
        answer = gw.client().chat.completions.create(model="moved", messages=MSG)
        assert answer.choices[0].message.content == "served by the attacker"
        assert trusted.seen[-1].path == "/chat/completions" and trusted.seen[-1].json["messages"] == MSG
        # A chain may hop within the listed origin, and stops where it leaves it.
        seen = len(trusted.seen)
        with pytest.raises(openai.APIStatusError) as e:
            gw.client().chat.completions.create(model="chain", messages=MSG)
        _clean_502(e)
        assert len(trusted.seen) == seen
        assert [s.path for s in hostile.seen[-2:]] == ["/redirect-chain/chat/completions",
                                                       "/redirect-307/chat/completions"]
    finally:
        hostile.close()
        trusted.close()


@pytest.mark.parametrize("bad", ["ftp://x.example", "https://x.example/path", "x.example", "https://x.example/?q=1"])
def test_follow_redirects_takes_origins_only(bad):
    with pytest.raises(ConfigError) as e:
        config_loader.parse(yaml.safe_dump(base_config(
            [{"name": "p", "type": "openai", "api_key": "k", "follow_redirects": [bad]}],
            [chat_model("m", {"provider": "p"})])))
    assert "follow_redirects" in str(e.value) and "origin" in str(e.value)


# -- hosted video downloads: the file URL is the provider's choice ---------------------------------

def _download(loop, url: str, **kw) -> bytes:
    async def go() -> bytes:
        upstream = Upstream("hostile-video")
        try:
            req = UpstreamRequest(url, b"", {"x-goog-api-key": "goog-secret", "x-tenant-token": HEADER_SECRET}, "GET")
            return await hosted_video.fetch(upstream, req, lambda s, b, h: UpstreamFault(f"answered {s}"), **kw)
        finally:
            await upstream.close()
    return loop.run(go())


@pytest.mark.parametrize("behaviour", ["redirect-302", "redirect-307", "redirect-metadata", "redirect-chain",
                                       "redirect-protocol-relative"])
def test_a_download_redirected_inside_the_network_is_refused(loop, behaviour):
    attacker = Attacker(loop)
    hostile = Hostile(loop, attacker)
    try:
        with pytest.raises(UpstreamFault) as e:
            _download(loop, f"{hostile.at(behaviour)}/files/v.mp4", trusted=[hostile.base])
        assert e.value.code == "upstream_url_refused"
        assert attacker.seen == []
    finally:
        hostile.close()
        attacker.close()


def test_a_download_url_on_another_origin_is_checked_before_any_connection(loop):
    attacker = Attacker(loop)
    try:
        with pytest.raises(UpstreamFault):
            _download(loop, f"{attacker.base}/files/v.mp4", trusted=["https://api.example.com"])
        assert attacker.seen == []
    finally:
        attacker.close()


def test_credentials_never_follow_a_download_to_another_origin(loop):
    storage = Attacker(loop)       # allowed (private addresses on), but another origin
    hostile = Hostile(loop, storage)
    try:
        _download(loop, f"{hostile.at('redirect-302')}/files/v.mp4", trusted=[hostile.base], allow_private=True)
        assert len(storage.seen) == 1
        sent = {k.lower(): v for k, v in storage.seen[0].headers.items()}
        assert "x-goog-api-key" not in sent and "x-tenant-token" not in sent and "authorization" not in sent
        assert hostile.seen[0].headers.get("x-goog-api-key") == "goog-secret"   # its own origin had them
    finally:
        hostile.close()
        storage.close()


def _veo_run(loop, fake: FakeVeo, **options) -> bytes:
    from providers.base import VideoSpec
    from providers.veo import Options, VeoProvider
    p = VeoProvider(Options(name="veo", type="veo", base_url=fake.url, api_key=fake.key, poll_interval_s=0.01,
                            poll_max_interval_s=0.02, expected_s=0.05, headers={"x-tenant-token": HEADER_SECRET},
                            **options))
    s = VideoSpec("job1", "veo-3.0-generate-001", "a lighthouse", 8, 1280, 720)

    async def noop(pct: int) -> None:
        return None

    async def go() -> bytes:
        try:
            return (await p.video_run(s, await p.video_submit(s), noop)).mp4
        finally:
            await p.close()
    return loop.run(go())


def test_veo_storage_redirect_inside_the_network_fails_the_job(loop):
    attacker = Attacker(loop)
    fake = FakeVeo(loop)
    try:
        fake.ok(storage=attacker.base)
        with pytest.raises(UpstreamFault) as e:
            _veo_run(loop, fake)
        assert e.value.code == "upstream_url_refused"
        assert attacker.seen == []
    finally:
        fake.close()
        attacker.close()


def test_veo_storage_gets_neither_the_key_nor_the_headers(loop):
    storage = Attacker(loop)      # private addresses allowed: it stands for Google's storage
    fake = FakeVeo(loop)
    try:
        fake.ok(storage=storage.base)
        _veo_run(loop, fake, allow_private_downloads=True)
        [got] = storage.seen
        assert got.path.startswith("/download/")
        sent = {k.lower() for k in got.headers}
        assert "x-goog-api-key" not in sent and "x-tenant-token" not in sent
    finally:
        fake.close()
        storage.close()


# -- input_reference downloads: read to the cap, refused past it ---------------------------------

def _noise_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, format="PNG", compress_level=0)
    return out.getvalue()


@pytest.mark.parametrize("behaviour", ["slow-file", "slow-file-sized"])
def test_a_reference_url_is_read_whole_and_refused_past_the_cap(loop, start_gateway, behaviour):
    from tests.video.conftest import video_config
    attacker = Attacker(loop)
    hostile = Hostile(loop, attacker)
    try:
        hostile.files["ref.png"] = big = _noise_png(1000)          # ~3 MB, many pieces
        hostile.files["huge.png"] = _noise_png(1900)               # ~10.8 MB: past the 10 MB cap
        assert 2_500_000 < len(big) < 10 * 1024 * 1024
        gw = start_gateway(video_config())
        client = gw.client()
        video = client.videos.create(model="mock-video", prompt="from a picture", size="320x180", seconds="1",
                                     extra_body={"input_reference": {"image_url": f"{hostile.at(behaviour)}/ref.png"}})
        stored = gw.runtime.services.videos.assets.root / video.id / "reference.img"
        for _ in range(100):
            if stored.exists():
                break
            loop.run(asyncio.sleep(0.02))
        assert stored.read_bytes() == big
        with pytest.raises(openai.BadRequestError) as e:
            client.videos.create(model="mock-video", prompt="x", size="320x180", seconds="1",
                                 extra_body={"input_reference": {"image_url": f"{hostile.at(behaviour)}/huge.png"}})
        assert e.value.param == "input_reference" and "10 MB" in e.value.message
    finally:
        hostile.close()
        attacker.close()



@pytest.mark.parametrize("field", ["status_url", "cancel_url"])
def test_a_job_url_on_another_origin_gets_no_credentials(loop, field):
    from providers.fal import FalProvider
    from providers.fal.translate import Options
    attacker = Attacker(loop)
    own = "https://queue.fal.run/fal-ai/x/requests/r1"
    state = {"request_id": "r1", "status_url": f"{own}/status", "response_url": own, "cancel_url": f"{own}/cancel",
             field: f"{attacker.base}/steal"}
    provider = FalProvider(Options(name="fal", type="fal", api_key="fal-secret-key"))

    async def status() -> None:
        await provider.check(state)

    async def cancel() -> None:      # best effort: refused quietly
        await provider.video_cancel(None, state)  # type: ignore[arg-type]

    try:
        if field == "status_url":
            with pytest.raises(UpstreamFault) as e:
                loop.run(status())
            assert e.value.code == "upstream_url_refused"
        else:
            loop.run(cancel())
        assert attacker.seen == []
    finally:
        loop.run(provider.close())
        attacker.close()
