"""Video submissions are routed like chat: failover on refusals, targets that
cannot make the asked size passed over, and the key's videos_per_hour,
per-second cost and budget applied (with a refund when a job fails)."""
from __future__ import annotations

import time

import openai
import pytest

from tests.video.conftest import mock_video, video_config, video_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _create(gw, key: str = "sk-test", **kw):
    kw = {"model": "mock-video", "prompt": "p", "size": "320x180", "seconds": "2", **kw}
    return gw.client(key).videos.with_raw_response.create(**kw)


def test_a_refused_submission_fails_over_to_the_next_target(start_gateway):
    gw = start_gateway(video_config(
        [mock_video("down", fail_rate=1, fail_status=503), mock_video("mock")],
        [video_model("mock-video", "down", "mock")]))
    raw = _create(gw)
    assert raw.headers["x-gateway-provider"] == "mock" and raw.headers["x-gateway-attempts"] == "2"
    assert gw.client().videos.poll(raw.parse().id).status == "completed"


def test_a_429_upstream_also_fails_over_and_a_400_does_not(start_gateway):
    gw = start_gateway(video_config(
        [mock_video("busy", fail_rate=1, fail_status=429), mock_video("picky", fail_rate=1, fail_status=400),
         mock_video("mock")],
        [video_model("mock-video", "busy", "mock"), video_model("strict", "picky", "mock")]))
    assert _create(gw).headers["x-gateway-provider"] == "mock"
    with pytest.raises(openai.BadRequestError):
        gw.client().videos.create(model="strict", prompt="p", size="320x180", seconds="2")
    assert [v.model for v in gw.client().videos.list()] == ["mock-video"]


def test_every_target_refusing_is_an_error_and_no_job(start_gateway):
    gw = start_gateway(video_config([mock_video("down", fail_rate=1, fail_status=503)],
                                    [video_model("mock-video", "down", retries=0)]))
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().videos.create(model="mock-video", prompt="p", size="320x180", seconds="2")
    assert e.value.status_code == 502
    assert gw.client().videos.list().data == []


def test_a_full_queue_sends_the_job_to_the_next_target(start_gateway):
    gw = start_gateway(video_config(
        [mock_video("small", max_queue=1, max_concurrent=1, video_latency_ms=3000), mock_video("mock")],
        [video_model("mock-video", "small", "mock")]))
    assert _create(gw).headers["x-gateway-provider"] == "small"
    assert _create(gw).headers["x-gateway-provider"] == "mock"


def test_a_target_without_the_size_is_passed_over(start_gateway):
    """With `video_fit: native` (the default fits: tests/video/test_video_fit.py)."""
    gw = start_gateway(video_config(
        [mock_video("wide", video_sizes=["320x180"], video_fit="native"),
         mock_video("tall", video_sizes=["180x320"], video_fit="native")],
        [video_model("mock-video", "wide", "tall")]))
    assert _create(gw, size="320x180").headers["x-gateway-provider"] == "wide"
    raw = _create(gw, size="180x320")
    assert raw.headers["x-gateway-provider"] == "tall" and raw.headers["x-gateway-attempts"] == "1"
    with pytest.raises(openai.BadRequestError, match="Supported sizes"):
        gw.client().videos.create(model="mock-video", prompt="p", size="640x360", seconds="2")


def test_videos_per_hour(start_gateway):
    cfg = video_config()
    cfg["auth"]["keys"][0]["limits"] = {"videos_per_hour": 2}
    gw = start_gateway(cfg)
    _create(gw)
    _create(gw)
    with pytest.raises(openai.RateLimitError) as e:
        _create(gw)
    assert "videos per hour" in e.value.message and int(e.value.response.headers["retry-after"]) >= 1


def test_cost_is_per_second_and_budgets_hold(start_gateway):
    cfg = video_config(prices={"mock/*": {"per_second": 0.01}})
    cfg["auth"]["keys"][0]["budget"] = {"usd": 0.05, "period": "month"}
    gw = start_gateway(cfg)
    raw = _create(gw, seconds="2")
    assert raw.headers["x-gateway-cost-usd"] == "0.02"
    assert _create(gw, seconds="2").headers["x-gateway-cost-usd"] == "0.02"
    with pytest.raises(openai.RateLimitError) as e:
        _create(gw, seconds="2")
    assert e.value.code == "insufficient_quota"


def test_a_failed_job_is_refunded(start_gateway):
    cfg = video_config([mock_video("mock", video_fail_rate=1)], prices={"mock/*": {"per_second": 0.01}})
    cfg["auth"]["keys"][0]["budget"] = {"usd": 0.02, "period": "month"}
    gw = start_gateway(cfg)
    client = gw.client()
    failed = client.videos.poll(_create(gw).parse().id)
    assert failed.status == "failed"
    assert failed.error.code == "video_generation_failed" and "on purpose" in failed.error.message
    deadline = time.time() + 2
    while True:    # the refund lands just after the job is marked failed
        try:
            _create(gw)
            break
        except openai.RateLimitError:
            assert time.time() < deadline
            time.sleep(0.05)


def test_content_of_a_failed_video_is_refused(start_gateway):
    gw = start_gateway(video_config([mock_video("mock", video_fail_rate=1)]))
    failed = gw.client().videos.poll(_create(gw).parse().id)
    assert failed.status == "failed" and failed.model_extra.get("video_url") is None
    assert gw.http().get(f"/v1/videos/{failed.id}/content").status_code == 409


def test_a_provider_concurrency_slot_is_given_back_once_the_job_is_accepted(start_gateway):
    """`limits.concurrent` counts submissions in flight to the provider: each
    accepted job gives its slot back, so the next one can use it."""
    gw = start_gateway(video_config(
        [mock_video("small", limits={"concurrent": 1}), mock_video("mock")],
        [video_model("mock-video", "small", "mock")]))
    assert [_create(gw).headers["x-gateway-provider"] for _ in range(3)] == ["small"] * 3
