"""Runway video adapter: translation on recorded payloads, then the provider
against a fake Runway on loopback."""
from __future__ import annotations

import base64
from functools import partial

import orjson
import pytest

from providers import errors
from providers.base import VideoSpec
from providers.registry import TYPES
from providers.runway import RunwayProvider, translate
from tests.harness import DATA, closed_after
from tests.providers.video_runs import providers_made, run_job
from tests.upstreams.runway_fake import FakeRunway

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def recorded(name: str) -> bytes:
    return (DATA / "runway" / name).read_bytes()


def spec(**kw) -> VideoSpec:
    base = dict(job_id="video_1", model="gen4.5", prompt="a red fox running through snow", seconds=5,
                width=1280, height=720)
    return VideoSpec(**{**base, **kw})


def options(**kw) -> translate.Options:
    return translate.Options(**{"name": "runway", "type": "runway", "api_key": "key_test", **kw})


# -- translation ----------------------------------------------------------------

def test_text_to_video_request():
    req = translate.submit_request(options(), spec(seed=42, negative_prompt="blur", style_preset=None))
    assert req.url == "https://api.dev.runwayml.com/v1/text_to_video" and req.method == "POST"
    assert req.headers["authorization"] == "Bearer key_test"
    assert req.headers["x-runway-version"] == "2024-11-06"
    # gen4.5 takes a seed and no negative prompt
    assert orjson.loads(req.body) == {"model": "gen4.5", "promptText": "a red fox running through snow",
                                      "ratio": "1280:720", "duration": 5, "seed": 42}


def test_veo_takes_a_negative_prompt_and_no_seed():
    body = translate.submit_body(spec(model="veo3.1", seconds=8, width=720, height=1280, seed=7,
                                      negative_prompt="text overlays"))
    assert body == {"model": "veo3.1", "promptText": "a red fox running through snow", "ratio": "720:1280",
                    "duration": 8, "negativePrompt": "text overlays"}


def test_image_to_video_sends_a_data_uri():
    req = translate.submit_request(options(base_url="https://example.test/v1/"),
                                   spec(model="gen4_turbo", reference_image=PNG, reference_media_type="image/png"))
    assert req.url == "https://example.test/v1/image_to_video"
    body = orjson.loads(req.body)
    assert body["promptImage"] == "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_style_and_camera_go_into_the_prompt():
    body = translate.submit_body(spec(style_preset="anime", camera_movement="pan-left"))
    assert body["promptText"].startswith("a red fox running through snow\n\n")
    assert "Style:" in body["promptText"] and "Camera:" in body["promptText"]


@pytest.mark.parametrize("name, status, progress", [
    ("task_pending.json", "queued", 0), ("task_throttled.json", "queued", 0),
    ("task_running.json", "in_progress", 40)])
def test_status_while_it_runs(name, status, progress):
    polled = translate.read_status(recorded(name), provider="runway")
    assert (polled.status, polled.progress) == (status, progress)


def test_status_succeeded():
    polled = translate.read_status(recorded("task_succeeded.json"), provider="runway")
    assert polled.status == "completed" and polled.result.startswith("https://dnznrvs05pmza.cloudfront.net/")


def test_task_failures():
    safety = translate.read_status(recorded("task_failed_safety.json"), provider="runway")
    assert safety.status == "failed" and isinstance(safety.error, errors.BadRequest)
    assert safety.error.code == "moderation_blocked" and "SAFETY.INPUT.TEXT" in safety.error.message
    internal = translate.read_status(recorded("task_failed_internal.json"), provider="runway").error
    assert isinstance(internal, errors.UpstreamFault) and internal.code == "video_generation_failed"
    assert "INTERNAL.BAD_OUTPUT.CODE01" in internal.message
    cancelled = translate.read_status(recorded("task_cancelled.json"), provider="runway")
    assert cancelled.status == "failed" and cancelled.error.code == "video_cancelled"


def test_errors():
    e = translate.parse_error(400, recorded("error_400_validation.json"), {}, provider="runway")
    assert isinstance(e, errors.BadRequest) and "ratio: Invalid enum value" in e.message
    assert isinstance(translate.parse_error(400, recorded("error_400_credits.json"), {}, provider="runway"),
                      errors.AuthFailed)
    assert isinstance(translate.parse_error(401, recorded("error_401.json"), {}, provider="runway"), errors.AuthFailed)
    limited = translate.parse_error(429, recorded("error_429.json"), {"retry-after": "7"}, provider="runway")
    assert isinstance(limited, errors.RateLimited) and limited.retry_after == 7
    assert isinstance(translate.parse_error(502, b"<html>bad gateway</html>", {}, provider="runway"),
                      errors.UpstreamFault)
    masked = translate.parse_error(400, b'{"error": "bad key key_secret"}', {}, provider="runway", secret="key_secret")
    assert "key_secret" not in masked.message


def test_options_defaults_and_registry():
    o = options()
    assert TYPES["runway"] is RunwayProvider
    provider = RunwayProvider(o)
    assert provider.video_support() == (frozenset({"1280x720", "720x1280"}), frozenset({"5", "10"}))
    assert "video" in RunwayProvider.operations
    assert RunwayProvider.disabled_reason(options(api_key="")) == "api_key is empty"


# -- against the fake ------------------------------------------------------------

@pytest.fixture
def fake(loop):
    with closed_after(partial(FakeRunway, loop)) as make:
        yield make()


@pytest.fixture
def provider(loop, fake):
    with providers_made(loop, lambda **kw: RunwayProvider(options(base_url=fake.url, poll_interval_s=0.01,
                                                                  poll_max_interval_s=0.02, **kw))) as make:
        yield make



def test_completes_with_the_fakes_mp4(loop, fake, provider):
    fake.ok(queued_polls=2, running_polls=4)
    state, files, reported = run_job(loop, provider(), spec())
    assert files.mp4 == fake.mp4 and files.mp4[4:8] == b"ftyp"
    assert set(state) == {"id"} and state["id"] in fake.jobs
    assert reported == sorted(reported) and len(set(reported)) == len(reported)
    assert reported[0] == 0 and reported[-1] == 80
    submit = fake.submits[0]
    assert submit.path == "/v1/text_to_video" and submit.json["ratio"] == "1280:720"
    assert submit.headers["x-runway-version"] == "2024-11-06"


def test_resume_from_state_does_not_submit_again(loop, fake, provider):
    state = loop.run(provider().video_submit(spec()))
    _, files, _ = run_job(loop, provider(), spec(), state=dict(state))   # another process, same state
    assert files.mp4 == fake.mp4
    assert len(fake.submits) == 1


@pytest.mark.parametrize("status, name, headers, kind", [
    (429, "error_429.json", {"retry-after": "3"}, errors.RateLimited),
    (500, "error_500.json", {}, errors.UpstreamFault),
    (503, "error_500.json", {}, errors.UpstreamFault),
    (400, "error_400_validation.json", {}, errors.BadRequest),
])
def test_submit_refused(loop, fake, provider, status, name, headers, kind):
    fake.fail(status, recorded(name), headers=headers)
    with pytest.raises(kind) as e:
        loop.run(provider().video_submit(spec()))
    if kind is errors.RateLimited:
        assert e.value.retry_after == 3
    assert e.value.provider == "runway"


def test_wrong_key_is_auth_failed(loop, fake, provider):
    with pytest.raises(errors.AuthFailed):
        loop.run(provider(api_key="key_other").video_submit(spec()))


def test_job_failure_has_a_code(loop, fake, provider):
    fake.ok(job_fails=True, failure="task_failed_internal.json")
    with pytest.raises(errors.UpstreamFault) as e:
        run_job(loop, provider(), spec())
    assert e.value.code == "video_generation_failed" and "INTERNAL.BAD_OUTPUT" in e.value.message
    fake.ok(job_fails=True)
    with pytest.raises(errors.BadRequest) as e:
        run_job(loop, provider(), spec())
    assert e.value.code == "moderation_blocked"


def test_transient_poll_failure_is_retried(loop, fake, provider):
    fake.ok(poll_errors=[500, 503])
    _, files, _ = run_job(loop, provider(), spec())
    assert files.mp4 == fake.mp4
    assert len(fake.submits) == 1


def test_image_reference(loop, fake, provider):
    run_job(loop, provider(), spec(model="gen4_turbo", reference_image=PNG, reference_media_type="image/png"))
    submit = fake.submits[0]
    assert submit.path == "/v1/image_to_video"
    assert submit.json["promptImage"] == "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_cancel(loop, fake, provider):
    p = provider()
    state = loop.run(p.video_submit(spec()))
    loop.run(p.video_cancel(spec(), state))
    cancel = fake.seen[-1]
    assert (cancel.method, cancel.path) == ("DELETE", f"/v1/tasks/{state['id']}")
    assert fake.jobs[state["id"]].cancelled
    with pytest.raises(errors.UpstreamFault) as e:      # its run then ends as cancelled
        run_job(loop, p, spec(), state=state)
    assert e.value.code == "video_cancelled"
    loop.run(p.video_cancel(spec(), {"id": "gone"}))      # best effort: a 404 is not raised
