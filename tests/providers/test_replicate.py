"""Replicate video adapter: translation on recorded payloads, then the provider
against a fake Replicate on loopback."""
from __future__ import annotations

import base64
from functools import partial

import orjson
import pytest

from providers import errors
from providers.base import VideoSpec
from providers.registry import TYPES
from providers.replicate import ReplicateProvider, translate
from tests.harness import DATA, closed_after
from tests.providers.video_runs import providers_made, run_job
from tests.upstreams.replicate_fake import FakeReplicate

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
VERSION = "a" * 64


def recorded(name: str) -> bytes:
    return (DATA / "replicate" / name).read_bytes()


def spec(**kw) -> VideoSpec:
    base = dict(job_id="video_1", model="kwaivgi/kling-v2.1", prompt="a red fox running through snow", seconds=5,
                width=1280, height=720)
    return VideoSpec(**{**base, **kw})


def options(**kw) -> translate.Options:
    return translate.Options(**{"name": "replicate", "type": "replicate", "api_key": "r8_test", **kw})


# -- translation ----------------------------------------------------------------

def test_official_model_request():
    req = translate.submit_request(options(), spec(negative_prompt="blur", seed=4))
    assert req.url == "https://api.replicate.com/v1/models/kwaivgi/kling-v2.1/predictions"
    assert req.headers["authorization"] == "Bearer r8_test"
    assert orjson.loads(req.body) == {"input": {"prompt": "a red fox running through snow", "negative_prompt": "blur",
                                                "duration": 5, "aspect_ratio": "16:9"}}


def test_pinned_version_request():
    for model in (f"lightricks/ltx-video:{VERSION}", VERSION):
        req = translate.submit_request(options(), spec(model=model, seed=4))
        assert req.url == "https://api.replicate.com/v1/predictions"
        body = orjson.loads(req.body)
        assert body["version"] == VERSION and body["input"]["seed"] == 4


def test_per_model_inputs():
    veo = translate.submit_input(spec(model="google/veo-3", seconds=8, seed=2, width=720, height=1280))
    assert veo == {"prompt": "a red fox running through snow", "seed": 2, "duration": 8, "aspect_ratio": "9:16",
                   "resolution": "720p"}
    hailuo = translate.submit_input(spec(model="minimax/hailuo-02", seconds=6, reference_image=PNG),
                                    {"prompt_optimizer": False})
    assert hailuo["first_frame_image"].startswith("data:image/png;base64,")
    assert {k: hailuo[k] for k in ("duration", "resolution", "prompt_optimizer")} == \
        {"duration": 6, "resolution": "768p", "prompt_optimizer": False}
    kling = translate.submit_input(spec(reference_image=PNG, reference_media_type="image/webp"))
    assert kling["start_image"] == "data:image/webp;base64," + base64.b64encode(PNG).decode()


def test_status():
    assert translate.read_status(recorded("prediction_starting.json"), provider="r").status == "queued"
    running = translate.read_status(recorded("prediction_processing.json"), provider="r")
    assert (running.status, running.progress) == ("in_progress", 36)
    done = translate.read_status(recorded("prediction_succeeded.json"), provider="r")
    assert done.status == "completed" and done.result.endswith("tmpu2ufsd8w.mp4")
    listed = translate.read_status(recorded("prediction_succeeded_list.json"), provider="r")
    assert listed.result.endswith("/out.mp4")


def test_log_progress():
    assert translate.log_progress("") is None and translate.log_progress("Loading...\nno bar") is None
    assert translate.log_progress(" 10%|#         | 5/50\n 20%|##        | 10/50 [00:01<00:08]") == 20


def test_failures():
    sensitive = translate.read_status(recorded("prediction_failed_sensitive.json"), provider="r").error
    assert isinstance(sensitive, errors.BadRequest) and sensitive.code == "moderation_blocked"
    assert "(E005)" in sensitive.message
    crashed = translate.read_status(recorded("prediction_failed.json"), provider="r").error
    assert isinstance(crashed, errors.UpstreamFault) and crashed.code == "video_generation_failed"
    assert "CUDA out of memory" in crashed.message
    assert translate.read_status(recorded("prediction_canceled.json"), provider="r").error.code == "video_cancelled"


def test_errors():
    assert isinstance(translate.parse_error(401, recorded("error_401.json"), {}, provider="r"), errors.AuthFailed)
    assert isinstance(translate.parse_error(402, recorded("error_402.json"), {}, provider="r"), errors.AuthFailed)
    missing = translate.parse_error(404, recorded("error_404.json"), {}, provider="r")
    assert isinstance(missing, errors.BadRequest) and missing.status == 404
    bad = translate.parse_error(422, recorded("error_422.json"), {}, provider="r")
    assert isinstance(bad, errors.BadRequest) and "input.duration" in bad.message
    limited = translate.parse_error(429, recorded("error_429.json"), {}, provider="r")
    assert isinstance(limited, errors.RateLimited) and limited.retry_after == 8   # from "resets in ~8s"
    assert translate.parse_error(429, recorded("error_429.json"), {"retry-after": "2"}, provider="r").retry_after == 2
    assert isinstance(translate.parse_error(500, recorded("error_500.json"), {}, provider="r"), errors.UpstreamFault)


def test_options_defaults_and_registry():
    assert TYPES["replicate"] is ReplicateProvider
    assert ReplicateProvider(options()).video_support() == (frozenset({"1280x720", "720x1280"}),
                                                            frozenset({"5", "10"}))
    assert ReplicateProvider.disabled_reason(options(api_key="")) == "api_key is empty"


# -- against the fake ------------------------------------------------------------

@pytest.fixture
def fake(loop):
    with closed_after(partial(FakeReplicate, loop)) as make:
        yield make()


@pytest.fixture
def provider(loop, fake):
    with providers_made(loop, lambda **kw: ReplicateProvider(
            options(base_url=fake.url, poll_interval_s=0.01, poll_max_interval_s=0.02, **kw))) as make:
        yield make



def test_completes_with_the_fakes_mp4(loop, fake, provider):
    fake.ok(queued_polls=2, running_polls=4)
    state, files, reported = run_job(loop, provider(), spec())
    assert files.mp4 == fake.mp4
    assert set(state) == {"id"} and state["id"] in fake.jobs
    assert reported == sorted(reported) and len(set(reported)) == len(reported)
    assert reported[0] == 0 and reported[-1] == 80
    submit = fake.submits[0]
    assert submit.path == "/v1/models/kwaivgi/kling-v2.1/predictions"
    assert submit.json == {"input": {"prompt": "a red fox running through snow", "duration": 5, "aspect_ratio": "16:9"}}


def test_pinned_version(loop, fake, provider):
    run_job(loop, provider(), spec(model=f"lightricks/ltx-video:{VERSION}"))
    assert fake.submits[0].path == "/v1/predictions" and fake.submits[0].json["version"] == VERSION


def test_resume_from_state_does_not_submit_again(loop, fake, provider):
    state = loop.run(provider().video_submit(spec()))
    _, files, _ = run_job(loop, provider(), spec(), state=dict(state))
    assert files.mp4 == fake.mp4
    assert len(fake.submits) == 1


@pytest.mark.parametrize("status, name, headers, kind", [
    (429, "error_429.json", {"retry-after": "3"}, errors.RateLimited),
    (500, "error_500.json", {}, errors.UpstreamFault),
    (422, "error_422.json", {}, errors.BadRequest),
    (402, "error_402.json", {}, errors.AuthFailed),
])
def test_submit_refused(loop, fake, provider, status, name, headers, kind):
    fake.fail(status, recorded(name), headers=headers)
    with pytest.raises(kind) as e:
        loop.run(provider().video_submit(spec()))
    if kind is errors.RateLimited:
        assert e.value.retry_after == 3


def test_job_failure_has_a_code(loop, fake, provider):
    fake.ok(job_fails=True, failure="prediction_failed.json")
    with pytest.raises(errors.UpstreamFault) as e:
        run_job(loop, provider(), spec())
    assert e.value.code == "video_generation_failed" and "CUDA" in e.value.message
    fake.ok(job_fails=True)
    with pytest.raises(errors.BadRequest) as e:
        run_job(loop, provider(), spec())
    assert e.value.code == "moderation_blocked"


def test_transient_poll_failure_is_retried(loop, fake, provider):
    fake.ok(poll_errors=[500, 502])
    _, files, _ = run_job(loop, provider(), spec())
    assert files.mp4 == fake.mp4


def test_image_reference(loop, fake, provider):
    run_job(loop, provider(), spec(reference_image=PNG, reference_media_type="image/png"))
    assert fake.submits[0].json["input"]["start_image"] == "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_cancel(loop, fake, provider):
    p = provider()
    state = loop.run(p.video_submit(spec()))
    loop.run(p.video_cancel(spec(), state))
    cancel = fake.seen[-1]
    assert (cancel.method, cancel.path) == ("POST", f"/v1/predictions/{state['id']}/cancel")
    assert fake.jobs[state["id"]].cancelled
    with pytest.raises(errors.UpstreamFault) as e:
        run_job(loop, p, spec(), state=state)
    assert e.value.code == "video_cancelled"
    loop.run(p.video_cancel(spec(), {"id": "gone"}))
