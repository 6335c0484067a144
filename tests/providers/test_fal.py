"""fal video adapter: translation on recorded payloads, then the provider
against a fake fal queue on loopback."""
from __future__ import annotations

import base64
from functools import partial

import orjson
import pytest

from providers import errors
from providers.base import VideoSpec
from providers.fal import FalProvider, translate
from providers.registry import TYPES
from tests.harness import DATA, closed_after
from tests.providers.video_runs import providers_made, run_job
from tests.upstreams.fal_fake import FakeFal

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
KLING = "fal-ai/kling-video/v2.1/standard/text-to-video"
KEY = "fal-key-id:fal-key-secret"


def recorded(name: str) -> bytes:
    return (DATA / "fal" / name).read_bytes()


def spec(**kw) -> VideoSpec:
    base = dict(job_id="video_1", model=KLING, prompt="a red fox running through snow", seconds=5,
                width=1280, height=720)
    return VideoSpec(**{**base, **kw})


def options(**kw) -> translate.Options:
    return translate.Options(**{"name": "fal", "type": "fal", "api_key": KEY, **kw})


# -- translation ----------------------------------------------------------------

def test_kling_request():
    req = translate.submit_request(options(), spec(negative_prompt="blur", seed=3))
    assert req.url == f"https://queue.fal.run/{KLING}" and req.headers["authorization"] == f"Key {KEY}"
    assert orjson.loads(req.body) == {"prompt": "a red fox running through snow", "negative_prompt": "blur",
                                      "duration": "5", "aspect_ratio": "16:9"}   # Kling on fal takes no seed


def test_per_model_inputs():
    veo = translate.submit_input(spec(model="fal-ai/veo3", seconds=8, width=720, height=1280, seed=9))
    assert veo == {"prompt": "a red fox running through snow", "seed": 9, "duration": "8s", "aspect_ratio": "9:16",
                   "resolution": "720p"}
    ltx = translate.submit_input(spec(model="fal-ai/ltx-video", seed=1, negative_prompt="low quality"))
    assert ltx == {"prompt": "a red fox running through snow", "negative_prompt": "low quality", "seed": 1}
    other = translate.submit_input(spec(model="fal-ai/wan-t2v", width=1024, height=1024),
                                   {"num_inference_steps": 30, "prompt": "overridden"})
    assert other == {"num_inference_steps": 30, "prompt": "a red fox running through snow", "duration": 5,
                     "aspect_ratio": "1:1", "resolution": "1024p"}


def test_aspect_ratio_names():
    assert translate.aspect_ratio(1280, 720) == "16:9" and translate.aspect_ratio(720, 1280) == "9:16"
    assert translate.aspect_ratio(1792, 1024) == "16:9" and translate.aspect_ratio(1024, 1792) == "9:16"


def test_image_goes_to_the_image_to_video_endpoint():
    req = translate.submit_request(options(), spec(reference_image=PNG, reference_media_type="image/jpeg"))
    assert req.url == "https://queue.fal.run/fal-ai/kling-video/v2.1/standard/image-to-video"
    body = orjson.loads(req.body)
    assert body["image_url"] == "data:image/jpeg;base64," + base64.b64encode(PNG).decode()
    assert "aspect_ratio" not in body      # image-to-video follows the image


def test_submit_state_keeps_the_urls():
    state = translate.submit_state(recorded("submit.json"), provider="fal")
    assert state["status_url"].endswith("/status") and state["cancel_url"].endswith("/cancel")
    assert state["request_id"] == "764cabcf-b745-4b3e-ae38-1200304cf45b"
    with pytest.raises(errors.UpstreamFault):
        translate.submit_state(b'{"detail": "?"}', provider="fal")
    assert translate.status_request(options(), state).url.endswith("/status?logs=1")


def test_status():
    assert translate.read_status(recorded("status_in_queue.json"), provider="fal").status == "queued"
    running = translate.read_status(recorded("status_in_progress.json"), provider="fal")
    assert (running.status, running.progress) == ("in_progress", 45)
    done = translate.read_status(recorded("status_completed.json"), provider="fal")
    assert done.status == "completed" and done.result is None    # the output is at the response URL


def test_results():
    ok = translate.read_result(200, recorded("result_video.json"), {}, provider="fal")
    assert ok.status == "completed" and ok.result.endswith("_output.mp4")
    moderated = translate.read_result(422, recorded("result_422_content_policy.json"), {}, provider="fal")
    assert moderated.status == "failed" and isinstance(moderated.error, errors.BadRequest)
    assert moderated.error.code == "moderation_blocked" and "content checker" in moderated.error.message
    timeout = translate.read_result(504, recorded("result_504_timeout.json"), {}, provider="fal")
    assert isinstance(timeout.error, errors.UpstreamFault) and timeout.error.code == "video_generation_failed"
    assert "request_timeout" in timeout.error.message
    with pytest.raises(errors.UpstreamFault):            # a proxy's page, not fal's answer: check again
        translate.read_result(502, b"<html>bad gateway</html>", {}, provider="fal")


def test_errors():
    assert isinstance(translate.parse_error(401, recorded("error_401.json"), {}, provider="fal"), errors.AuthFailed)
    assert isinstance(translate.parse_error(403, recorded("error_403_locked.json"), {}, provider="fal"),
                      errors.AuthFailed)
    bad = translate.parse_error(422, recorded("error_422.json"), {}, provider="fal")
    assert isinstance(bad, errors.BadRequest) and "duration: unexpected value" in bad.message
    limited = translate.parse_error(429, recorded("error_429.json"), {"retry-after": "2"}, provider="fal")
    assert isinstance(limited, errors.RateLimited) and limited.retry_after == 2
    assert isinstance(translate.parse_error(500, recorded("error_500.json"), {}, provider="fal"), errors.UpstreamFault)


def test_options_defaults_and_registry():
    assert TYPES["fal"] is FalProvider
    assert FalProvider(options()).video_support() == (frozenset({"1280x720", "720x1280"}), frozenset({"5", "10"}))
    assert FalProvider.disabled_reason(options(api_key="")) == "api_key is empty"


# -- against the fake ------------------------------------------------------------

@pytest.fixture
def fake(loop):
    with closed_after(partial(FakeFal, loop)) as make:
        yield make()


@pytest.fixture
def provider(loop, fake):
    with providers_made(loop, lambda **kw: FalProvider(options(base_url=fake.url, poll_interval_s=0.01,
                                                               poll_max_interval_s=0.02, **kw))) as make:
        yield make



def test_completes_with_the_fakes_mp4(loop, fake, provider):
    fake.ok(queued_polls=2, running_polls=4)
    state, files, reported = run_job(loop, provider(), spec())
    assert files.mp4 == fake.mp4
    assert state["request_id"] in fake.jobs
    # the status URL names the app without the model's subpath, as fal's does
    assert state["status_url"] == f"{fake.base}/fal-ai/kling-video/requests/{state['request_id']}/status"
    assert reported == sorted(reported) and len(set(reported)) == len(reported)
    assert reported[0] == 0 and reported[-1] == 80
    submit = fake.submits[0]
    assert submit.path == f"/{KLING}" and submit.json["duration"] == "5"
    assert any(s.path.endswith(f"/requests/{state['request_id']}") and s.method == "GET" for s in fake.seen)


def test_resume_from_state_does_not_submit_again(loop, fake, provider):
    state = loop.run(provider().video_submit(spec()))
    _, files, _ = run_job(loop, provider(), spec(), state=orjson.loads(orjson.dumps(state)))
    assert files.mp4 == fake.mp4
    assert len(fake.submits) == 1


@pytest.mark.parametrize("status, name, headers, kind", [
    (429, "error_429.json", {"retry-after": "3"}, errors.RateLimited),
    (500, "error_500.json", {}, errors.UpstreamFault),
    (422, "error_422.json", {}, errors.BadRequest),
    (403, "error_403_locked.json", {}, errors.AuthFailed),
])
def test_submit_refused(loop, fake, provider, status, name, headers, kind):
    fake.fail(status, recorded(name), headers=headers)
    with pytest.raises(kind) as e:
        loop.run(provider().video_submit(spec()))
    if kind is errors.RateLimited:
        assert e.value.retry_after == 3


def test_job_failure_has_a_code(loop, fake, provider):
    fake.ok(job_fails=True)
    with pytest.raises(errors.BadRequest) as e:
        run_job(loop, provider(), spec())
    assert e.value.code == "moderation_blocked"
    fake.ok(job_fails=True, failure="result_504_timeout.json")
    with pytest.raises(errors.UpstreamFault) as e:
        run_job(loop, provider(), spec())
    assert e.value.code == "video_generation_failed" and "request_timeout" in e.value.message


def test_transient_poll_failure_is_retried(loop, fake, provider):
    fake.ok(poll_errors=[500])
    _, files, _ = run_job(loop, provider(), spec())
    assert files.mp4 == fake.mp4


def test_image_reference(loop, fake, provider):
    run_job(loop, provider(), spec(reference_image=PNG, reference_media_type="image/png"))
    submit = fake.submits[0]
    assert submit.path == "/fal-ai/kling-video/v2.1/standard/image-to-video"
    assert submit.json["image_url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_cancel(loop, fake, provider):
    p = provider()
    state = loop.run(p.video_submit(spec()))
    loop.run(p.video_cancel(spec(), state))
    cancel = fake.seen[-1]
    assert (cancel.method, cancel.path) == ("PUT", f"/fal-ai/kling-video/requests/{state['request_id']}/cancel")
    assert fake.jobs[state["request_id"]].cancelled
    loop.run(p.video_cancel(spec(), {**state, "cancel_url": state["cancel_url"].replace(state["request_id"], "x")}))
