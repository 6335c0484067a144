"""OpenAI's Videos API (Sora): the pure translation on recorded payloads, then
the provider against a fake on loopback (submit, poll, download, cancel)."""
from __future__ import annotations

from functools import partial

import orjson
import pytest

from providers import errors
from providers.azure import AzureOpenAIProvider
from providers.azure import api as azure_api
from providers.base import VideoSpec
from providers.openai import OpenAICompatibleProvider, OpenAIProvider, api, video
from providers.openai.chat import parse_error
from providers.registry import TYPES
from tests.harness import closed_after
from tests.providers.video_runs import providers_made
from tests.upstreams.openai_video_fake import FakeOpenAIVideo, parse_form, recorded
from tests.upstreams.video_sample import sample

BASE = "https://api.openai.com/v1"
HEADERS = {"authorization": "Bearer sk-x"}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def spec(**kw) -> VideoSpec:
    fields = dict(job_id="video_gw1", model="sora-2", prompt="A calico cat playing a piano on stage",
                  seconds=8, width=1280, height=720)
    return VideoSpec(**{**fields, **kw})


def form(req) -> dict:
    return parse_form(req.headers["content-type"], req.body)


# --- pure: requests -------------------------------------------------------------

def test_create_is_multipart_as_the_sdk_sends_it():
    req = video.submit_request(spec(), BASE, HEADERS, provider="up")
    assert (req.method, req.url) == ("POST", "https://api.openai.com/v1/videos")
    assert req.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert req.headers["authorization"] == "Bearer sk-x"
    assert form(req) == orjson.loads(recorded("create_fields.json"))


def test_create_sends_the_reference_image_as_a_file_part():
    req = video.submit_request(spec(reference_image=PNG, reference_media_type="image/png"), BASE, HEADERS,
                               provider="up")
    assert form(req)["input_reference"] == ("reference.png", "image/png", PNG)
    jpeg = video.submit_request(spec(reference_image=b"\xff\xd8jpeg", reference_media_type="image/jpeg"),
                                BASE, HEADERS, provider="up")
    assert form(jpeg)["input_reference"] == ("reference.jpg", "image/jpeg", b"\xff\xd8jpeg")


def test_style_and_camera_go_into_the_prompt_and_unknown_extras_stay_home():
    req = video.submit_request(spec(style_preset="anime", camera_movement="orbit", seed=7,
                                    negative_prompt="blurry"), BASE, HEADERS, provider="up")
    fields = form(req)
    assert set(fields) == {"prompt", "model", "seconds", "size"}     # OpenAI answers 400 for unknown fields
    assert fields["prompt"].startswith("A calico cat playing a piano on stage\n\n")
    assert "Style: anime" in fields["prompt"] and "Camera: the camera orbits" in fields["prompt"]


def test_remix_edit_and_extend_name_the_source_video():
    source = {"id": "video_src"}
    remix = video.submit_request(spec(op="remix", prompt="now at night", source_state=source), BASE, HEADERS,
                                 provider="up")
    assert remix.url == "https://api.openai.com/v1/videos/video_src/remix"
    assert remix.headers["content-type"] == "application/json"
    assert orjson.loads(remix.body) == {"prompt": "now at night"}

    edit = video.submit_request(spec(op="edit", prompt="make it red", source_state=source), BASE, HEADERS,
                                provider="up")
    assert edit.url == "https://api.openai.com/v1/videos/edits"
    assert form(edit) == {"prompt": "make it red", "video[id]": "video_src"}

    # The spec's seconds are the stitched total, as the job's are; OpenAI takes the new segment's length.
    extend = video.submit_request(spec(op="extend", prompt="and then", seconds=12, source_state=source,
                                       source_seconds=8), BASE, HEADERS, provider="up")
    assert extend.url == "https://api.openai.com/v1/videos/extensions"
    assert form(extend) == {"prompt": "and then", "seconds": "4", "video[id]": "video_src"}


@pytest.mark.parametrize("state", [None, {}, {"id": ""}, {"operation": "x"}])
def test_remix_of_a_video_made_elsewhere_is_made_from_the_prompt(state):
    req = video.submit_request(spec(op="remix", prompt="at night", source_state=state), BASE, HEADERS,
                               provider="up")
    assert req.url == "https://api.openai.com/v1/videos"
    assert form(req) == {"prompt": "at night", "model": "sora-2", "seconds": "8", "size": "1280x720"}


@pytest.mark.parametrize("op", ["edit", "extend"])
@pytest.mark.parametrize("state", [None, {}, {"id": ""}])
def test_edit_and_extend_need_the_source_here(op, state):
    with pytest.raises(errors.BadRequest) as e:
        video.submit_request(spec(op=op, source_state=state), BASE, HEADERS, provider="up")
    assert e.value.code == "unsupported_operation" and e.value.param == "video_id"


def test_status_content_and_delete_requests():
    vid = "video_68d7512d"
    assert video.status_request(BASE + "/", HEADERS, vid).url == f"{BASE}/videos/{vid}"
    assert video.status_request(BASE, HEADERS, vid).method == "GET"
    for variant in video.VARIANTS:
        req = video.content_request(BASE, HEADERS, vid, variant)
        assert req.url == f"{BASE}/videos/{vid}/content?variant={variant}"
        assert req.headers["accept"] == "application/binary"
    delete = video.delete_request(BASE, HEADERS, vid)
    assert (delete.method, delete.url) == ("DELETE", f"{BASE}/videos/{vid}")
    assert video.status_request(BASE, HEADERS, "a/b?c").url == f"{BASE}/videos/a%2Fb%3Fc"


def test_multipart_escapes_names_and_keeps_bytes():
    body, ctype = video.multipart([("a\"b", "x\r\ny"), ("f", ("n.bin", "application/octet-stream", b"\x00\xff"))],
                                  boundary="BOUND")
    assert ctype == "multipart/form-data; boundary=BOUND"
    assert parse_form(ctype, body) == {"a%22b": "x\r\ny", "f": ("n.bin", "application/octet-stream", b"\x00\xff")}


# --- pure: answers --------------------------------------------------------------

def test_submit_answer_gives_the_state_to_keep():
    assert video.submitted(recorded("video_queued.json"), provider="up") == \
        {"id": "video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5"}
    assert video.submitted(recorded("video_remix_queued.json"), provider="up")["id"].startswith("video_68d7562e")
    for bad in (b"", b"[]", b"<html>", b'{"object": "video"}'):
        with pytest.raises(errors.UpstreamFault):
            video.submitted(bad, provider="up")


@pytest.mark.parametrize("file,status,progress", [
    ("video_queued.json", "queued", 0),
    ("video_in_progress.json", "in_progress", 33),
    ("video_completed.json", "completed", 100),
])
def test_status_answers(file, status, progress):
    p = video.polled(recorded(file), provider="up")
    assert (p.status, p.progress, p.error) == (status, progress, None)
    if status == "completed":
        assert p.result == "video_68d7512d07848190b3e45da0ecbebcde004da08e1e0678d5"


def test_a_failed_job_says_why():
    p = video.polled(recorded("video_failed_moderation.json"), provider="up")
    assert p.status == "failed"
    assert isinstance(p.error, errors.BadRequest) and not p.error.retryable
    assert p.error.code == "moderation_blocked"
    assert p.error.message == "Your request was blocked by our moderation system."


def test_failure_codes_and_odd_status_answers():
    internal = video.job_error({"code": "internal_error", "message": "boom"}, provider="up")
    assert type(internal) is errors.UpstreamFault and internal.code == "internal_error"
    bare = video.job_error(None, provider="up")
    assert bare.code == "video_generation_failed" and "up" in bare.message
    assert video.polled(b'{"id": "v", "status": "processing"}', provider="up").status == "in_progress"
    assert video.polled(b'{"id": "v", "status": "cancelled"}', provider="up").status == "failed"
    assert video.polled(b'{"id": "v", "status": "in_progress", "progress": 41.7}', provider="up").progress == 41
    with pytest.raises(errors.UpstreamFault):
        video.polled(b"not json", provider="up")


@pytest.mark.parametrize("status,file,kind", [
    (429, "error_429.json", errors.RateLimited),
    (500, "error_500.json", errors.UpstreamFault),
    (400, "error_400_invalid_size.json", errors.BadRequest),
])
def test_refusal_bodies(status, file, kind):
    err = parse_error(status, recorded(file), {"retry-after": "20"}, provider="up")
    assert type(err) is kind
    if kind is errors.RateLimited:
        assert err.retry_after == 20
    if kind is errors.BadRequest:
        assert (err.param, err.code) == ("size", "invalid_value")


def test_azure_videos_live_on_the_v1_api():
    o = azure_api.Options(name="az", type="azure_openai", base_url="https://res.openai.azure.com", api_key="k")
    assert azure_api.video_base(o) == "https://res.openai.azure.com/openai/v1"
    p = AzureOpenAIProvider(o)
    assert p.video_base == "https://res.openai.azure.com/openai/v1"
    assert p.video_headers == {"api-key": "k"}
    assert "video" in p.operations and p.video_ops == {"create", "remix"}


def test_types_that_serve_video():
    for name in ("openai", "openai_compatible", "azure_openai"):
        assert "video" in TYPES[name].operations
    assert OpenAIProvider.video_ops == {"create", "remix", "edit", "extend"}


# --- the provider against the fake ------------------------------------------------

@pytest.fixture
def fake(loop):
    with closed_after(partial(FakeOpenAIVideo, loop)) as make:
        yield make()


@pytest.fixture
def provider(loop, fake):
    def build(cls=OpenAIProvider, options=api.Options, **kw):
        return cls(options(**{"name": "sora", "type": "openai", "base_url": fake.url, "api_key": fake.key,
                              "poll_interval_s": 0.01, "poll_max_interval_s": 0.02, **kw}))

    with providers_made(loop, build) as make:
        yield make


class Recorder:
    def __init__(self) -> None:
        self.seen: list[int] = []

    async def __call__(self, pct: int) -> None:
        self.seen.append(pct)


def run(loop, p, s, state, progress=None):
    return loop.run(p.video_run(s, state, progress or Recorder()))


def test_a_job_runs_to_the_fakes_mp4(loop, fake, provider):
    p = provider()
    s = spec()
    state = loop.run(p.video_submit(s))
    assert state == {"id": next(iter(fake.jobs))}
    assert orjson.loads(orjson.dumps(state)) == state            # stored as JSON with the job
    progress = Recorder()
    files = run(loop, p, s, state, progress)
    assert files.mp4 == sample().mp4 and files.mp4[4:8] == b"ftyp"
    assert files.thumbnail_webp == sample().thumbnail_webp
    assert files.spritesheet_jpeg == sample().spritesheet_jpeg
    assert progress.seen == sorted(set(progress.seen)) and progress.seen[-1] == 100
    assert progress.seen[0] == 0 and len(progress.seen) >= 3     # queued, rising, done
    assert fake.posts() == ["/v1/videos"]
    assert fake.forms[0] == {"prompt": s.prompt, "model": "sora-2", "seconds": "8", "size": "1280x720"}
    queries = [x.query for x in fake.seen if x.path.endswith("/content")]
    assert queries == ["variant=video", "variant=thumbnail", "variant=spritesheet"]


def test_a_restarted_run_resumes_without_submitting_again(loop, fake, provider):
    s = spec()
    state = loop.run(provider().video_submit(s))
    fake.ok(queued_polls=2, progress_polls=2)
    again = provider()                                           # as another process would build it
    files = run(loop, again, s, dict(state))
    assert files.mp4 == sample().mp4
    assert fake.posts() == ["/v1/videos"]
    checks = fake.status_checks(state["id"])
    files = run(loop, again, s, dict(state))                     # and once more, already complete
    assert files.mp4 == sample().mp4
    assert fake.posts() == ["/v1/videos"] and fake.status_checks(state["id"]) == checks + 1


def test_missing_previews_and_redirected_downloads_are_fine(loop, fake, provider):
    fake.ok(previews=False, redirect_download=True)
    p = provider()
    files = run(loop, p, spec(), loop.run(p.video_submit(spec())))
    assert files.mp4 == sample().mp4
    assert files.thumbnail_webp is None and files.spritesheet_jpeg is None
    assert any(x.path.startswith("/v1/files/") for x in fake.seen)


def test_submit_refusals_are_the_kinds_the_router_reads(loop, fake, provider):
    p = provider()
    fake.fail(429, recorded("error_429.json"), headers={"retry-after": "20"})
    with pytest.raises(errors.RateLimited) as limited:
        loop.run(p.video_submit(spec()))
    assert limited.value.retry_after == 20 and limited.value.provider == "sora"

    fake.fail(500, recorded("error_500.json"))
    with pytest.raises(errors.UpstreamFault) as fault:
        loop.run(p.video_submit(spec()))
    assert fault.value.retryable and fault.value.upstream_status == 500

    fake.fail(400, recorded("error_400_invalid_size.json"))
    with pytest.raises(errors.BadRequest) as bad:
        loop.run(p.video_submit(spec()))
    assert (bad.value.status, bad.value.param, bad.value.code) == (400, "size", "invalid_value")
    assert not bad.value.retryable
    assert fake.jobs == {}


def test_wrong_key_is_an_auth_failure(loop, fake, provider):
    with pytest.raises(errors.AuthFailed) as e:
        loop.run(provider(api_key="sk-wrong").video_submit(spec()))
    assert "sk-wrong" not in e.value.message


def test_an_upstream_job_failure_fails_with_its_code(loop, fake, provider):
    fake.ok(job_error=orjson.loads(recorded("video_failed_moderation.json"))["error"])
    p = provider()
    state = loop.run(p.video_submit(spec()))
    with pytest.raises(errors.ProviderError) as e:
        run(loop, p, spec(), state)
    assert e.value.code == "moderation_blocked"
    assert e.value.message == "Your request was blocked by our moderation system."
    assert not any(x.path.endswith("/content") for x in fake.seen)


def test_transient_failures_while_polling_are_retried(loop, fake, provider):
    fake.ok(poll_failures=3)
    p = provider()
    state = loop.run(p.video_submit(spec()))
    assert run(loop, p, spec(), state).mp4 == sample().mp4
    assert fake.status_checks() >= 3 + 1 + 3 + 1


def test_the_reference_image_reaches_the_upstream(loop, fake, provider):
    p = provider()
    loop.run(p.video_submit(spec(reference_image=PNG, reference_media_type="image/png")))
    assert fake.forms[0]["input_reference"] == ("reference.png", "image/png", PNG)


def test_remix_edit_and_extend_against_the_fake(loop, fake, provider):
    p = provider()
    first = loop.run(p.video_submit(spec()))
    run(loop, p, spec(), first)
    remix = loop.run(p.video_submit(spec(op="remix", prompt="at night", source_state=first)))
    assert fake.jobs[remix["id"]]["remixed_from_video_id"] == first["id"]
    edit = loop.run(p.video_submit(spec(op="edit", prompt="in red", source_state=first)))
    extend = loop.run(p.video_submit(spec(op="extend", prompt="then", seconds=12, source_state=first,
                                          source_seconds=8)))
    assert fake.jobs[extend["id"]]["seconds"] == "12"
    assert fake.posts() == ["/v1/videos", f"/v1/videos/{first['id']}/remix", "/v1/videos/edits",
                            "/v1/videos/extensions"]
    assert fake.forms[2] == {"prompt": "in red", "video[id]": first["id"]}
    for state in (remix, edit, extend):
        assert run(loop, p, spec(), state).mp4 == sample().mp4


def test_waiting_on_a_segment_fetches_no_files(loop, fake, provider):
    """A segment that the next extends is waited on, not downloaded: the extension is the whole video."""
    p = provider()
    state = loop.run(p.video_submit(spec()))
    progress = Recorder()
    loop.run(p.video_wait(spec(), state, progress))
    assert fake.jobs[state["id"]]["status"] == "completed" and progress.seen[-1] == 100
    assert not [x for x in fake.seen if x.path.endswith("/content")]


def test_an_extension_of_a_length_openai_does_not_take_is_refused(loop, fake, provider):
    p = provider()
    first = loop.run(p.video_submit(spec()))
    with pytest.raises(errors.BadRequest, match="Invalid value: '5'"):
        loop.run(p.video_submit(spec(op="extend", seconds=13, source_state=first, source_seconds=8)))


def test_cancel_deletes_and_never_raises(loop, fake, provider):
    p = provider()
    state = loop.run(p.video_submit(spec()))
    loop.run(p.video_cancel(spec(), state))
    assert fake.deleted == [state["id"]]
    loop.run(p.video_cancel(spec(), state))                    # already gone: 404, ignored
    loop.run(p.video_cancel(spec(), {}))
    assert [x.method for x in fake.seen].count("DELETE") == 2


def test_openai_compatible_servers_serve_video_too(loop, fake, provider):
    p = provider(cls=OpenAICompatibleProvider, options=api.CompatibleOptions, type="openai_compatible")
    state = loop.run(p.video_submit(spec()))
    assert run(loop, p, spec(), state).mp4 == sample().mp4


def test_a_lost_state_fails_clearly(loop, provider):
    with pytest.raises(errors.ProviderError) as e:
        run(loop, provider(), spec(), {})
    assert e.value.code == "video_state_missing"
