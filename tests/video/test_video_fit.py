"""Sora's sizes and lengths on every backend (`video_fit: exact`, the default): a
backend generates its nearest native size and length, and the MP4 that comes
back is exactly the requested size and length, decoded and counted here. Local
families fit their own frames (through a `gateway worker` on a real Redis);
hosted backends and the mock acting as one are fitted by the job's runner."""
from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from providers import video_fit
from providers.video_fit import Plan
from tests.upstreams.video_sample import sample
from tests.video.conftest import decode_mp4, mock_video, video_config, video_model
from tests.video.test_hosted_providers import PROVIDERS, _config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SORA_SIZES = ["720x1280", "1280x720", "1024x1792", "1792x1024"]


# -- the plan (pure) ---------------------------------------------------------------

@pytest.mark.parametrize("want,sizes,expect", [
    ("1280x720", ["768x512", "704x480", "1216x704", "704x1216"], "1216x704"),   # LTX: the closest shape
    ("720x1280", ["768x512", "704x480", "1216x704", "704x1216"], "704x1216"),
    ("1792x1024", ["832x480", "480x832", "1280x720", "720x1280"], "1280x720"),  # Wan: 1.75 is nearest 1.78
    ("1024x1792", ["720x480"], "720x480"),                                       # CogVideoX: only one
    ("854x480", ["1280x720", "848x480", "960x544"], "848x480"),                  # same shape: nearest area
])
def test_the_nearest_native_size_is_the_nearest_shape(want, sizes, expect):
    assert video_fit.nearest_size(*video_fit.size_of(want), sizes) == expect


@pytest.mark.parametrize("seconds,choices,expect", [(4, [5, 10], 5), (12, [4, 6, 8], 8), (8, [4, 8], 8),
                                                    (1, [2, 4], 2), (60, [5], 5)])
def test_the_nearest_length_is_the_shortest_that_reaches_it(seconds, choices, expect):
    assert video_fit.nearest_seconds(seconds, choices) == expect


def test_a_plan_native_fitted_or_refused():
    assert not video_fit.plan("exact", ["1280x720"], ["4"], 1280, 720, 4).fitted
    fitted = video_fit.plan("exact", ["1280x720"], ["4"], 720, 1280, 12)
    assert fitted == Plan(1280, 720, 4, 720, 1280, 12)
    assert fitted.record() == {"generated_size": "1280x720", "generated_seconds": "4",
                               "method": "scaled and cropped, stretched"}
    assert Plan.of(fitted.record(), 720, 1280, 12) == fitted
    assert video_fit.plan("native", ["1280x720"], ["4"], 720, 1280, 4) is None
    assert video_fit.plan("exact", ["1280x720"], ["4"], 3840, 2160, 4) is None       # past the bounds
    assert video_fit.plan("exact", ["1280x720"], ["4"], 1280, 720, 61) is None


# -- frames --------------------------------------------------------------------------

def test_frames_are_scaled_to_cover_cropped_and_retimed():
    np = pytest.importorskip("numpy")
    from providers.media.fit import covered, retimed
    wide = np.zeros((90, 160, 3), np.uint8)
    wide[:, :80] = 255                                 # left half white
    tall = covered(wide, 90, 160)                      # the middle of it, scaled up
    assert tall.shape == (160, 90, 3)
    frames = [np.full((2, 2, 3), v, np.uint8) for v in (0, 100, 200)]
    assert [int(f[0, 0, 0]) for f in retimed(frames, 3, 2)] == [0, 100]                # trimmed
    assert [int(f[0, 0, 0]) for f in retimed(frames, 3, 5)] == [0, 50, 100, 150, 200]  # stretched: blends


# -- the mock acting as a backend of one size and length, fitted by the runner ----------

@pytest.mark.parametrize("size", SORA_SIZES)
def test_a_backend_of_one_size_serves_every_sora_size(start_gateway, size):
    """The mock extends its own videos: 4 s of a backend that makes 1 s is a second and three extensions."""
    gw = start_gateway(video_config([mock_video("mock", video_sizes=["320x180"], video_seconds=[1])],
                                    [video_model("mock-video", "mock")]))
    client = gw.client()
    video = client.videos.create_and_poll(model="mock-video", prompt="a lighthouse", size=size, seconds="4")
    assert video.status == "completed", video.error
    assert video.size == size and video.seconds == "4"
    assert video.model_extra["fit"] == {"generated_size": "320x180", "generated_seconds": "4",
                                        "method": "scaled and cropped, extended", "segments": [1, 1, 1, 1]}
    decoded = decode_mp4(client.videos.download_content(video.id).read())
    assert (decoded.width, decoded.height, decoded.frames) == (*video_fit.size_of(size), 4 * 4)   # 4 s at 4 fps


def test_video_fit_native_refuses_what_the_backend_does_not_make(start_gateway):
    gw = start_gateway(video_config([mock_video("mock", video_sizes=["320x180"], video_seconds=[1],
                                                video_fit="native")], [video_model("mock-video", "mock")]))
    with pytest.raises(openai.BadRequestError, match="Supported sizes for model 'mock-video' are: 320x180"):
        gw.client().videos.create(model="mock-video", prompt="x", size="1280x720", seconds="1")


def test_a_native_target_is_chosen_over_one_that_would_fit(start_gateway):
    gw = start_gateway(video_config([mock_video("wide", video_sizes=["320x180"]),
                                     mock_video("tall", video_sizes=["180x320"])],
                                    [video_model("mock-video", "wide", "tall")]))
    raw = gw.client().videos.with_raw_response.create(model="mock-video", prompt="x", size="180x320", seconds="1")
    assert raw.headers["x-gateway-provider"] == "tall"
    raw = gw.client().videos.with_raw_response.create(model="mock-video", prompt="x", size="1280x720",
                                                      seconds="1")
    assert raw.headers["x-gateway-provider"] == "wide"       # neither makes it: the first fits it


def test_the_mock_renders_the_articles_lengths_and_sizes_as_asked(start_gateway):
    gw = start_gateway(video_config([{"name": "mock", "type": "mock", "video_fps": 1}],
                                    [video_model("mock-video", "mock")]))
    client = gw.client()
    video = client.videos.create_and_poll(model="mock-video", prompt="a long one", size="1920x1080",
                                          extra_body={"duration": 30})
    assert video.status == "completed", video.error
    assert "fit" not in video.model_extra
    decoded = decode_mp4(client.videos.download_content(video.id).read())
    assert (decoded.width, decoded.height, decoded.frames) == (1920, 1080, 30)


# -- every hosted provider --------------------------------------------------------------

def test_every_hosted_provider_serves_a_size_and_length_it_does_not_make(start_gateway, hosted):
    """The provider is asked for its own 1280x720 and 4 s; the client gets the 720x1280 and 8 s it asked for
    (the fake's video, 160x90 at 8 fps, scaled and stretched). OpenAI extends its own videos, so it makes
    8 s as 4 s and an extension of 4 (tests/video/test_video_segments.py); the others' 4 s are stretched."""
    p, fake = hosted
    gw = start_gateway(_config(p, fake))
    client = gw.client()
    video = client.videos.create_and_poll(model="hosted", prompt="a harbour", size="720x1280", seconds="8")
    assert video.status == "completed", video.error
    extends = p.type == "openai"
    assert video.model_extra["fit"] == {"generated_size": "1280x720", "generated_seconds": "8" if extends else "4",
                                        "method": "scaled and cropped, extended" if extends
                                        else "scaled and cropped, stretched",
                                        **({"segments": [4, 4]} if extends else {})}
    decoded = decode_mp4(client.videos.download_content(video.id).read())
    assert (decoded.width, decoded.height, decoded.frames) == (720, 1280, 8 * 8)
    assert sample().frames == 8


def test_a_video_that_cannot_be_fitted_fails_its_job(start_gateway, loop):
    """A hostile upstream's 'video' that does not decode: the job fails with invalid_video, nothing is kept."""
    from tests.upstreams.openai_video_fake import FakeOpenAIVideo
    fake = FakeOpenAIVideo(loop)
    try:
        fake.behaviour.video_bytes = b"\x00\x00\x00\x18ftypmp42" + b"\xff" * 4096
        gw = start_gateway(_config(PROVIDERS["openai"], fake))
        video = gw.client().videos.create_and_poll(model="hosted", prompt="p", size="720x1280", seconds="4")
        assert video.status == "failed" and video.error.code == "invalid_video", video
        assert "could not be fitted to 720x1280" in video.error.message
    finally:
        fake.close()


@pytest.mark.parametrize("make,why", [
    (lambda: b"not a video at all", "could not be read"),
    (lambda: __import__("providers.mock.video", fromlist=["render"]).render("wide", 4098, 64, 0.25).mp4,
     "at most 4096 a side"),
])
def test_refitting_refuses_what_it_cannot_or_must_not_decode(make, why):
    from providers.media.fit import refit_mp4
    with pytest.raises(ValueError, match=why):
        refit_mp4(make(), 320, 180, 1)


@given(st.integers(-10, 5000), st.integers(-10, 5000), st.integers(-5, 100),
       st.lists(st.sampled_from(["64x32", "32x64", "1280x720", "720x1280", "1024x1024", "832x480"]), max_size=4),
       st.lists(st.integers(1, 20), max_size=4), st.sampled_from(["exact", "native"]))
def test_a_plan_is_within_the_backend_and_the_bounds_or_none(width, height, seconds, sizes, durations, fit):
    plan = video_fit.plan(fit, sizes, [str(d) for d in durations], width, height, seconds)
    if plan is None:
        return
    assert f"{plan.width}x{plan.height}" in sizes and plan.seconds in durations
    assert (plan.want_width, plan.want_height, plan.want_seconds) == (width, height, seconds)
    if plan.fitted:
        assert fit == "exact" and video_fit.bounds_problem(width, height) is None and 1 <= seconds <= 60


# -- every local family, through a worker --------------------------------------------------

def _local_config(tmp_path: Path, redis_url: str, pipelines: dict, families: list[str]) -> Path:
    from tests.video.test_diffusers import local, model
    # FPS frames a second: 4 s is 9 frames, each scaled to up to 1792x1024 and encoded (the test's cost)
    cfg = video_config([local(f, pipelines[f], video_sizes=["64x32", "32x64"], fps=FPS) for f in families],
                       [model(f"{f}-video", f) for f in families])
    cfg["state"] = {"redis_url": redis_url, "data_dir": str(tmp_path / "data")}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


FAMILIES = ["ltx", "wan", "cogvideox", "hunyuan"]
FPS = 2


def test_every_family_serves_every_sora_size_through_a_worker(start_gateway, redis_url, tmp_path, loop):
    from providers.diffusers.families import FAMILIES as KNOWN
    from providers.diffusers.families import num_frames
    from tests.video.conftest import require_local_extra
    require_local_extra()
    from tests.video.test_diffusers import _start_worker, _wait_for_workers
    from tests.video.tiny_pipelines import build_cogvideox, build_hunyuan, build_ltx, build_wan
    builders = {"ltx": build_ltx, "wan": build_wan, "cogvideox": build_cogvideox, "hunyuan": build_hunyuan}
    pipelines = {f: builders[f](tmp_path / f) for f in FAMILIES}
    config = _local_config(tmp_path, redis_url, pipelines, FAMILIES)
    gw = start_gateway(yaml.safe_load(config.read_text()))
    worker = _start_worker(config, *FAMILIES)
    try:
        for family in FAMILIES:
            _wait_for_workers(loop, gw.runtime.store, family)
        client = gw.client()
        jobs = [(family, size, client.videos.create(model=f"{family}-video", prompt="a kite", size=size,
                                                    seconds="4"))
                for family in FAMILIES for size in SORA_SIZES]
        deadline = time.time() + 600
        for family, size, video in jobs:
            while video.status in ("queued", "in_progress"):
                assert time.time() < deadline, (family, size)
                time.sleep(0.2)
                video = client.videos.retrieve(video.id)
            assert video.status == "completed", (family, size, video.error)
            shape = "32x64" if video_fit.size_of(size)[1] > video_fit.size_of(size)[0] else "64x32"
            assert video.model_extra["fit"] == {"generated_size": shape, "generated_seconds": "4",
                                                "method": "scaled and cropped"}
            decoded = decode_mp4(client.videos.download_content(video.id).read())
            step = KNOWN[family].frame_step
            assert (decoded.width, decoded.height) == video_fit.size_of(size), (family, size)
            assert decoded.frames == num_frames(KNOWN[family], 4, FPS) and abs(decoded.frames - 4 * FPS) <= step
    finally:
        worker.terminate()
        worker.wait(10)


def test_a_length_past_the_familys_reach_is_stretched_to_it(start_gateway, tmp_path):
    """Wan capped at 17 frames (`max_frames: 20`, rounded down to its step of 4) makes 2 s at 8 fps:
    5 s is its 17 frames, stretched to 40."""
    from tests.video.conftest import require_local_extra
    require_local_extra()
    from tests.video.test_diffusers import local, model
    from tests.video.tiny_pipelines import build_wan
    gw = start_gateway(video_config([local("gpu", build_wan(tmp_path / "wan"), video_sizes=["64x64"],
                                           max_frames=20)], [model("local-video", "gpu")]))
    client = gw.client()
    video = client.videos.create_and_poll(model="local-video", prompt="a slow river", size="128x128",
                                          seconds="5")
    assert video.status == "completed", video.error
    assert video.model_extra["fit"] == {"generated_size": "64x64", "generated_seconds": "2",
                                        "method": "scaled and cropped, stretched"}
    decoded = decode_mp4(client.videos.download_content(video.id).read())
    assert (decoded.width, decoded.height, decoded.frames) == (128, 128, 40)
