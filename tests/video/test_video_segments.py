"""Lengths past a backend's longest, made in segments where it extends its own videos (`video_fit:
exact`): a first native length, then extensions of it, each another native length, the whole trimmed
to the request. Against the OpenAI fake over real HTTP (it takes 4, 8 and 12 s only) and the mock,
through the official SDK and the article's path; the MP4 decoded back. A run taken over by another
gateway resumes at the segment in flight, never submitting a finished one again."""
from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers import video_fit
from providers.video_fit import Plan
from tests.upstreams.openai_video_fake import FakeOpenAIVideo
from tests.video.conftest import decode_mp4, mock_video, video_config, video_model
from tests.video.test_hosted_providers import PROVIDERS, _config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

CREATE, EXTEND = "/v1/videos", "/v1/videos/extensions"


# -- the plan (pure) -----------------------------------------------------------------

def _fewest(choices: list[int], most: int, top: int) -> dict[int, int]:
    """Every total up to `top` that at most `most` segments make, with the fewest that make it:
    breadth first, one more segment a level."""
    fewest, frontier = {0: 0}, {0}
    for n in range(1, most + 1):
        frontier = {t + c for t in frontier for c in choices if t + c <= top} - fewest.keys()
        fewest.update(dict.fromkeys(frontier, n))
    return fewest


@given(st.integers(1, 60), st.lists(st.integers(1, 20), min_size=1, max_size=4), st.integers(1, 15))
def test_segments_reach_the_length_with_the_least_overshoot(seconds, choices, most):
    parts = video_fit.segments(seconds, choices, most)
    assert 1 <= len(parts) <= most and set(parts) <= set(choices)
    assert list(parts) == sorted(parts, reverse=True)              # the longest first
    if max(choices) * most < seconds:                              # past the cap: its longest, stretched
        assert parts == (max(choices),) * most
        return
    fewest = _fewest(choices, most, seconds + max(choices))
    total = sum(parts)
    assert total == min(t for t in fewest if t >= seconds)         # reaches it, with the least overshoot
    assert len(parts) == fewest[total]                             # in the fewest segments that do


def test_segments_of_sora_lengths_and_the_cap():
    assert video_fit.segments(30, [4, 8, 12]) == (12, 12, 8)
    assert video_fit.segments(20, [4, 8, 12]) == (12, 8)
    assert video_fit.segments(10, [1, 2, 4]) == (4, 4, 2)
    assert video_fit.segments(60, [1]) == (1,) * video_fit.MAX_SEGMENTS == (1,) * 15


@given(st.integers(1, 60), st.lists(st.integers(1, 20), min_size=1, max_size=4), st.booleans())
def test_only_a_backend_that_extends_makes_a_length_past_its_longest_in_segments(seconds, choices, extends):
    plan = video_fit.plan("exact", ["1280x720"], [str(c) for c in choices], 640, 360, seconds, extends=extends)
    assert plan is not None and plan.fitted
    assert plan.extended == (extends and seconds > max(choices))
    if plan.extended:
        assert plan.seconds == sum(plan.segments) and len(plan.segments) <= video_fit.MAX_SEGMENTS
        assert plan.record()["segments"] == list(plan.segments) and "extended" in plan.record()["method"]
    else:
        assert plan.segments == () and "segments" not in plan.record()
    assert Plan.of(plan.record(), 640, 360, seconds) == plan       # what a job stores gives the plan back


def test_a_plan_in_segments_at_the_native_size_is_still_fitted():
    plan = video_fit.plan("exact", ["1280x720"], ["4", "8", "12"], 1280, 720, 24, extends=True)
    assert plan == Plan(1280, 720, 24, 1280, 720, 24, (12, 12))
    assert plan.fitted and plan.record() == {"generated_size": "1280x720", "generated_seconds": "24",
                                             "method": "extended", "segments": [12, 12]}
    assert video_fit.plan("native", ["1280x720"], ["4", "8", "12"], 1280, 720, 24, extends=True) is None


# -- OpenAI's extensions, over real HTTP ---------------------------------------------------

@pytest.fixture
def fake(loop):
    fake = FakeOpenAIVideo(loop)
    yield fake
    fake.close()


def _openai(fake, **extra) -> dict:
    cfg = _config(PROVIDERS["openai"], fake, **extra)
    cfg["providers"][0]["video_seconds"] = [4, 8, 12]
    return cfg


def _chained(fake) -> list[str]:
    """The upstream ids of the segments, in order, checking each extension extends the one before."""
    ids = [next(iter(fake.jobs))]
    for source, extension in fake.extended:
        assert source == ids[-1]
        ids.append(extension)
    return ids


def _wait_for(check, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline
        time.sleep(0.02)


def test_openai_makes_30_seconds_as_a_video_and_two_extensions(start_gateway, fake):
    gw = start_gateway(_openai(fake, prices={"up/*": {"per_second": 0.01}}))
    client = gw.client()
    raw = client.videos.with_raw_response.create(model="hosted", prompt="a long harbour", size="640x360",
                                                 seconds="30")
    assert raw.headers["x-gateway-cost-usd"] == "0.3"         # the requested seconds, not the 32 made
    video = client.videos.poll(raw.parse().id)
    assert video.status == "completed", video.error
    assert (video.size, video.seconds) == ("640x360", "30")
    assert video.model_extra["fit"] == {"generated_size": "1280x720", "generated_seconds": "32",
                                        "method": "scaled and cropped, extended, trimmed", "segments": [12, 12, 8]}
    assert fake.posts() == [CREATE, EXTEND, EXTEND]
    assert [f["seconds"] for f in fake.forms] == ["12", "12", "8"]
    assert all(f["prompt"] == "a long harbour" for f in fake.forms)
    ids = _chained(fake)
    assert fake.jobs[ids[-1]]["seconds"] == "32"               # OpenAI's extension is the whole video
    # Only the last segment's video is fetched: the ones before it are in it.
    assert {s.path.split("/")[3] for s in fake.seen if s.path.endswith("/content")} == {ids[-1]}
    decoded = decode_mp4(client.videos.download_content(video.id).read())
    assert (decoded.width, decoded.height) == (640, 360)
    assert abs(decoded.frames - 30 * 8) <= 1                   # the fake's video is 8 fps


def test_a_runner_taken_over_resumes_at_the_segment_in_flight(start_gateway, fake, tmp_path):
    """The first gateway closes while the first extension runs; the second takes the job over once
    its lease lapses, waits on that extension and submits the last: one create, two extensions."""
    fake.ok(progress_polls=30)          # about 1.5 s a segment: the extension is still running at the close
    cfg = _openai(fake)
    cfg["state"] = {"data_dir": str(tmp_path)}
    cfg["videos"]["job_lease_s"] = 3
    first = start_gateway(cfg)
    video = first.client().videos.create(model="hosted", prompt="p", size="640x360", seconds="30")
    _wait_for(lambda: fake.extended and fake.status_checks(fake.extended[0][1]) > 0)   # stored, then polled
    at = first.client().videos.retrieve(video.id).progress
    first.close()
    second = start_gateway(cfg)
    done = second.client().videos.poll(video.id)
    assert done.status == "completed", done.error
    assert fake.posts() == [CREATE, EXTEND, EXTEND] and len(_chained(fake)) == 3
    assert at < 24 * 100 // 32 and done.progress == 100     # within the first two segments' share, then done
    assert abs(decode_mp4(second.client().videos.download_content(video.id).read()).frames - 30 * 8) <= 1


def test_a_segment_that_fails_fails_the_job_with_the_providers_error(start_gateway, fake):
    fake.ok(extension_error={"code": "moderation_blocked", "message": "The extension was blocked."})
    gw = start_gateway(_openai(fake))
    video = gw.client().videos.create_and_poll(model="hosted", prompt="p", size="1280x720", seconds="16")
    assert video.status == "failed"
    assert (video.error.code, video.error.message) == ("moderation_blocked", "The extension was blocked.")
    assert fake.posts() == [CREATE, EXTEND]


def test_deleting_a_job_mid_segments_cancels_the_segment_in_flight(start_gateway, fake):
    fake.ok(progress_polls=30)
    gw = start_gateway(_openai(fake))
    client = gw.client()
    video = client.videos.create(model="hosted", prompt="p", size="1280x720", seconds="20")
    _wait_for(lambda: fake.extended and fake.status_checks(fake.extended[0][1]) > 0)
    first, extension = fake.extended[0]
    client.videos.delete(video.id)
    _wait_for(lambda: fake.deleted)
    time.sleep(0.3)
    assert fake.deleted == [extension] and first in fake.jobs
    assert fake.posts() == [CREATE, EXTEND]


# -- the mock acting as a backend of a few lengths ------------------------------------------------

def test_the_mock_makes_the_articles_30_seconds_in_segments(start_gateway):
    gw = start_gateway(video_config([mock_video("mock")], [video_model("mock-video", "mock")]))
    api = gw.http()
    made = api.post("/v1/video/generations", json={"model": "mock-video", "prompt": "a long road", "duration": 30,
                                                   "resolution": "320x180"})
    assert made.status_code == 200, made.text
    video = gw.client().videos.poll(made.json()["id"])
    assert video.status == "completed", video.error
    assert video.model_extra["fit"] == {"generated_size": "320x180", "generated_seconds": "30",
                                        "method": "extended", "segments": [4, 4, 4, 4, 4, 4, 4, 2]}
    decoded = decode_mp4(gw.client().videos.download_content(video.id).read())
    assert (decoded.width, decoded.height, decoded.frames) == (320, 180, 30 * 4)     # 4 fps
