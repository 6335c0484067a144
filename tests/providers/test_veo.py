"""Veo through the Gemini API: the pure translation on recorded payloads, then
the provider against a fake on loopback (submit, poll the operation, download)."""
from __future__ import annotations

import base64
from functools import partial

import orjson
import pytest

from providers import errors
from providers.base import VideoSpec
from providers.gemini.errors import parse_error
from providers.registry import TYPES
from providers.veo import Options, VeoProvider, translate
from tests.harness import closed_after
from tests.providers.video_runs import providers_made
from tests.upstreams.veo_fake import FakeVeo, recorded
from tests.upstreams.video_sample import sample

BASE = "https://generativelanguage.googleapis.com/v1beta"
HEADERS = {"content-type": "application/json", "x-goog-api-key": "gk"}
PROMPT = "A close up of two people staring at a cryptic drawing on a wall, torchlight flickering."


def spec(**kw) -> VideoSpec:
    fields = dict(job_id="video_gw1", model="veo-3.0-generate-001", prompt=PROMPT, seconds=8,
                  width=1280, height=720)
    return VideoSpec(**{**fields, **kw})


def recorded_image() -> tuple[bytes, dict]:
    body = orjson.loads(recorded("submit_request_image.json"))
    image = body["instances"][0]["image"]
    return base64.b64decode(image["bytesBase64Encoded"]), body


# --- pure: the submit -----------------------------------------------------------

def test_text_to_video_body():
    body = translate.submit_body(spec(negative_prompt="cartoon, drawing, low quality"))
    assert body == orjson.loads(recorded("submit_request.json"))


def test_image_to_video_body():
    png, expected = recorded_image()
    s = spec(prompt="Panning wide shot of a calico kitten sleeping in the sunshine", width=1080, height=1920,
             reference_image=png, reference_media_type="image/png")
    assert translate.submit_body(s) == expected


def test_seed_only_where_the_endpoint_takes_it_and_hints_in_the_prompt():
    assert "seed" not in translate.submit_body(spec(seed=42))["parameters"]
    assert translate.submit_body(spec(seed=42), send_seed=True)["parameters"]["seed"] == 42
    prompt = translate.submit_body(spec(style_preset="watercolor", camera_movement="zoom-in"))["instances"][0]["prompt"]
    assert prompt.startswith(PROMPT + "\n\n") and "Style: watercolor" in prompt and "Camera: slow zoom in" in prompt


@pytest.mark.parametrize("size,aspect,resolution", [
    ("1280x720", "16:9", "720p"), ("720x1280", "9:16", "720p"),
    ("1920x1080", "16:9", "1080p"), ("1080x1920", "9:16", "1080p"), ("3840x2160", "16:9", "4k"),
])
def test_sizes_map_to_aspect_and_resolution(size, aspect, resolution):
    w, h = map(int, size.split("x"))
    assert translate.shape(w, h) == (aspect, resolution)
    params = translate.submit_body(spec(width=w, height=h))["parameters"]
    assert (params["aspectRatio"], params["resolution"]) == (aspect, resolution)


@pytest.mark.parametrize("size", ["1024x1792", "720x720", "854x480", "1000x720"])
def test_sizes_veo_cannot_make_are_refused(size):
    w, h = map(int, size.split("x"))
    with pytest.raises(errors.BadRequest) as e:
        translate.submit_body(spec(width=w, height=h), provider="veo")
    assert e.value.param == "size"


def test_only_create_is_supported():
    with pytest.raises(errors.BadRequest) as e:
        translate.submit_body(spec(op="remix", source_state={"operation": "x"}))
    assert e.value.code == "unsupported_operation"


def test_submit_request_url_and_headers():
    req = translate.submit_request(spec(), BASE + "/", HEADERS)
    assert req.url == f"{BASE}/models/veo-3.0-generate-001:predictLongRunning"
    assert (req.method, req.headers["x-goog-api-key"]) == ("POST", "gk")
    assert translate.submit_request(spec(model="models/veo-2.0-generate-001"), BASE, HEADERS).url == \
        f"{BASE}/models/veo-2.0-generate-001:predictLongRunning"


def test_the_operation_is_the_state():
    assert translate.submitted(recorded("submit_response.json"), provider="v") == \
        {"operation": "models/veo-3.0-generate-001/operations/u7wvdpk4e1qa"}
    for bad in (b"{}", b"[]", b"nope", b'{"name": "/etc"}', b'{"name": "https://evil/x"}',
                b'{"name": "models/../../x"}'):
        with pytest.raises(errors.UpstreamFault):
            translate.submitted(bad, provider="v")


def test_operation_and_cancel_requests():
    name = "models/veo-3.0-generate-001/operations/u7wvdpk4e1qa"
    get = translate.operation_request(BASE, HEADERS, name)
    assert (get.method, get.url) == ("GET", f"{BASE}/{name}")
    assert "content-type" not in get.headers and get.headers["x-goog-api-key"] == "gk"
    cancel = translate.cancel_request(BASE, HEADERS, name)
    assert (cancel.method, cancel.url, cancel.body) == ("POST", f"{BASE}/{name}:cancel", b"")


# --- pure: the operation --------------------------------------------------------

def test_a_pending_operation_reports_the_estimate():
    p = translate.polled(recorded("operation_pending.json"), provider="v", estimate=40)
    assert (p.status, p.progress, p.error) == ("in_progress", 40, None)


def test_progress_estimate_rises_and_never_claims_done():
    values = [translate.progress_estimate(t, 90) for t in (0, 10, 45, 89, 90, 1000)]
    assert values == sorted(values) and values[0] == 0 and values[2] == 50
    assert max(values) == translate.ESTIMATE_CEILING
    assert translate.progress_estimate(-5, 90) == 0 and translate.progress_estimate(5, 0) == 0


def test_a_done_operation_gives_the_video_uri():
    p = translate.polled(recorded("operation_done.json"), provider="v")
    assert (p.status, p.progress) == ("completed", 100)
    assert p.result == "https://generativelanguage.googleapis.com/v1beta/files/3g1xq8f0mi9a:download?alt=media"


def test_inline_video_bytes_are_the_result():
    mp4 = sample().mp4
    body = {"name": "op", "done": True, "response": {"generateVideoResponse": {"generatedSamples": [
        {"video": {"encodedVideo": base64.b64encode(mp4).decode(), "encoding": "video/mp4"}}]}}}
    assert translate.polled(orjson.dumps(body), provider="v").result == mp4


def test_rai_filtered_is_moderation_blocked():
    p = translate.polled(recorded("operation_rai_filtered.json"), provider="v")
    assert p.status == "failed"
    assert isinstance(p.error, errors.BadRequest) and p.error.code == "moderation_blocked"
    assert "may violate our policies" in p.error.message


def test_an_operation_error_says_why():
    p = translate.polled(recorded("operation_error.json"), provider="v")
    assert p.status == "failed" and type(p.error) is errors.UpstreamFault
    assert (p.error.code, p.error.message) == ("internal", "Video generation failed due to an internal error. "
                                                           "Please try again.")
    invalid = translate.job_error({"code": 3, "message": "bad image"}, provider="v")
    assert type(invalid) is errors.BadRequest and invalid.code == "invalid_argument"
    named = translate.job_error({"code": 9, "status": "FAILED_PRECONDITION"}, provider="v")
    assert named.code == "failed_precondition" and "FAILED_PRECONDITION" in named.message
    safety = translate.job_error({"code": 3, "message": "The prompt violates our usage guidelines."},
                                 provider="v")
    assert safety.code == "moderation_blocked"


def test_done_without_a_file_or_malformed():
    empty = translate.polled(b'{"name": "op", "done": true, "response": {}}', provider="v")
    assert empty.status == "failed" and empty.error.code == "video_generation_failed"
    with pytest.raises(errors.UpstreamFault):
        translate.polled(b"<html>", provider="v")


def test_the_key_goes_only_to_the_apis_own_host():
    uri = f"{BASE}/files/abc:download?alt=media"
    assert translate.download_request(uri, BASE, HEADERS).headers == {"x-goog-api-key": "gk"}
    assert translate.download_request("https://storage.example/abc.mp4", BASE, HEADERS).headers == {}


@pytest.mark.parametrize("status,file,kind", [
    (429, "error_429_quota.json", errors.RateLimited),
    (500, "error_500.json", errors.UpstreamFault),
    (400, "error_400_invalid.json", errors.BadRequest),
])
def test_refusal_bodies(status, file, kind):
    err = parse_error(status, recorded(file), {}, provider="v")
    assert type(err) is kind
    if kind is errors.RateLimited:
        assert err.retry_after == 17


def test_registered_with_veos_sizes_and_seconds():
    assert TYPES["veo"] is VeoProvider and VeoProvider.operations == {"video"}
    p = VeoProvider(Options(name="v", type="veo", api_key="k"))
    assert p.video_support() == (frozenset({"1280x720", "720x1280", "1920x1080", "1080x1920"}),
                                 frozenset({"4", "6", "8"}))
    assert p.video_ops == {"create"}
    custom = VeoProvider(Options(name="v", type="veo", api_key="k", video_sizes=["1280x720"], video_seconds=[8]))
    assert custom.video_support() == (frozenset({"1280x720"}), frozenset({"8"}))
    assert VeoProvider.disabled_reason(Options(name="v", type="veo")) == "api_key is empty"


# --- the provider against the fake ------------------------------------------------

@pytest.fixture
def fake(loop):
    with closed_after(partial(FakeVeo, loop)) as make:
        yield make()


@pytest.fixture
def provider(loop, fake):
    def build(**kw):
        o = Options(**{"name": "veo", "type": "veo", "base_url": fake.url, "api_key": fake.key,
                       "poll_interval_s": 0.01, "poll_max_interval_s": 0.02, "expected_s": 0.05, **kw})
        return VeoProvider(o)

    with providers_made(loop, build) as make:
        yield make


class Recorder:
    def __init__(self) -> None:
        self.seen: list[int] = []

    async def __call__(self, pct: int) -> None:
        self.seen.append(pct)


def run(loop, p, s, state, progress=None):
    return loop.run(p.video_run(s, state, progress or Recorder()))


def test_a_job_runs_to_the_fakes_mp4_through_the_redirect(loop, fake, provider):
    p = provider()
    s = spec(negative_prompt="cartoon, drawing, low quality")
    state = loop.run(p.video_submit(s))
    assert state["operation"] == "models/veo-3.0-generate-001/operations/op0001"
    assert orjson.loads(orjson.dumps(state)) == state
    progress = Recorder()
    files = run(loop, p, s, state, progress)
    assert files.mp4 == sample().mp4
    assert files.thumbnail_webp is None and files.spritesheet_jpeg is None   # the gateway makes them
    assert progress.seen == sorted(set(progress.seen)) and progress.seen[-1] == 100
    [submit] = fake.submits()
    assert submit.json == orjson.loads(recorded("submit_request.json"))
    assert submit.headers["x-goog-api-key"] == fake.key
    download = [x for x in fake.seen if x.path.startswith("/download/")]
    assert len(download) == 1 and fake.operation_checks() == 4


def test_direct_and_inline_files(loop, fake, provider):
    p = provider()
    fake.ok(redirect_download=False)
    assert run(loop, p, spec(), loop.run(p.video_submit(spec()))).mp4 == sample().mp4
    fake.ok(inline_video=True, pending_polls=0)
    assert run(loop, p, spec(), loop.run(p.video_submit(spec()))).mp4 == sample().mp4


def test_a_restarted_run_resumes_without_submitting_again(loop, fake, provider):
    s = spec()
    state = loop.run(provider().video_submit(s))
    again = provider()
    assert run(loop, again, s, dict(state)).mp4 == sample().mp4
    assert run(loop, again, s, dict(state)).mp4 == sample().mp4
    assert len(fake.submits()) == 1


def test_progress_rises_while_the_operation_runs(loop, fake, provider):
    fake.ok(pending_polls=8)
    p = provider(poll_interval_s=0.01, poll_max_interval_s=0.01, expected_s=0.2)
    progress = Recorder()
    run(loop, p, spec(), loop.run(p.video_submit(spec())), progress)
    assert progress.seen == sorted(set(progress.seen)) and len(progress.seen) >= 3
    assert progress.seen[-2] <= translate.ESTIMATE_CEILING and progress.seen[-1] == 100


def test_submit_refusals_are_the_kinds_the_router_reads(loop, fake, provider):
    p = provider()
    fake.fail(429, recorded("error_429_quota.json"))
    with pytest.raises(errors.RateLimited) as limited:
        loop.run(p.video_submit(spec()))
    assert limited.value.retry_after == 17

    fake.fail(500, recorded("error_500.json"))
    with pytest.raises(errors.UpstreamFault):
        loop.run(p.video_submit(spec()))

    fake.fail(400, recorded("error_400_invalid.json"))
    with pytest.raises(errors.BadRequest) as bad:
        loop.run(p.video_submit(spec()))
    assert "durationSeconds" in bad.value.message and not bad.value.retryable
    assert fake.operations == {}


def test_wrong_key_is_an_auth_failure(loop, fake, provider):
    with pytest.raises(errors.AuthFailed):
        loop.run(provider(api_key="nope").video_submit(spec()))


def test_upstream_failures_fail_with_their_code(loop, fake, provider):
    p = provider()
    fake.ok(op_error=orjson.loads(recorded("operation_error.json"))["error"])
    with pytest.raises(errors.ProviderError) as e:
        run(loop, p, spec(), loop.run(p.video_submit(spec())))
    assert e.value.code == "internal" and "internal error" in e.value.message

    fake.ok(rai_filtered=True)
    with pytest.raises(errors.BadRequest) as blocked:
        run(loop, p, spec(), loop.run(p.video_submit(spec())))
    assert blocked.value.code == "moderation_blocked"


def test_transient_failures_while_polling_are_retried(loop, fake, provider):
    fake.ok(poll_failures=3, pending_polls=1)
    p = provider()
    assert run(loop, p, spec(), loop.run(p.video_submit(spec()))).mp4 == sample().mp4
    assert fake.operation_checks() == 3 + 2


def test_the_reference_image_reaches_the_upstream(loop, fake, provider):
    png, _ = recorded_image()
    p = provider()
    state = loop.run(p.video_submit(spec(width=720, height=1280, reference_image=png,
                                         reference_media_type="image/png")))
    body = fake.operations[state["operation"]]["body"]
    image = body["instances"][0]["image"]
    assert base64.b64decode(image["bytesBase64Encoded"]) == png and image["mimeType"] == "image/png"
    assert body["parameters"]["aspectRatio"] == "9:16"


def test_cancel_is_best_effort(loop, fake, provider):
    p = provider()
    state = loop.run(p.video_submit(spec()))
    loop.run(p.video_cancel(spec(), state))
    assert fake.operations[state["operation"]]["cancelled"]
    loop.run(p.video_cancel(spec(), {"operation": "models/veo/operations/unknown"}))   # 404: ignored
    loop.run(p.video_cancel(spec(), {}))
