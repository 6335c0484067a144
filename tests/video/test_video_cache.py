"""The video cache (`cache: {ttl_s, shared}` on a video model): an identical
request is answered at once with a completed video of its own, copied from the
kept one, without a generation or a charge; on the embedded store and across
two replicas on a real Redis."""
from __future__ import annotations

import time

import pytest

from tests.video.conftest import SECRET, mock_video, video_config, video_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ASK = {"model": "cached-video", "prompt": "a fox in the snow", "size": "320x180", "seconds": "2",
       "extra_body": {"seed": 3, "style_preset": "cinematic"}}


def _config(shared: bool = False, **extra) -> dict:
    cfg = video_config([mock_video("mock", video_latency_ms=300)],
                       [video_model("cached-video", "mock", cache={"ttl_s": 600, "shared": shared})], **extra)
    cfg["auth"]["keys"].append({"name": "other", "key": "sk-other", "models": ["*"]})
    return cfg


def _made(gw, key: str = "sk-test", headers: dict | None = None, **changes):
    raw = gw.client(key).videos.with_raw_response.create(**{**ASK, **changes}, extra_headers=headers or {})
    return raw.headers, raw.parse()


def _content(gw, video_id: str, key: str = "sk-test") -> bytes:
    return gw.client(key).videos.download_content(video_id).read()


def test_an_identical_request_is_a_completed_copy_at_once(start_gateway):
    gw = start_gateway(_config())
    headers, first = _made(gw)
    assert headers["x-gateway-cache"] == "miss" and first.status == "queued"
    done = gw.client().videos.poll(first.id)
    assert done.status == "completed"

    headers, again = _made(gw)
    assert headers["x-gateway-cache"] == "hit" and headers["x-gateway-cost-usd"] == "0"
    assert again.id != first.id and again.status == "completed" and again.progress == 100
    assert _content(gw, again.id) == _content(gw, first.id)
    assert [v.id for v in gw.client().videos.list()] == [again.id, first.id]

    # Anything that changes the video is another request.
    for change in ({"prompt": "a fox in the rain"}, {"size": "180x320"}, {"seconds": "1"},
                   {"extra_body": {"seed": 4, "style_preset": "cinematic"}},
                   {"extra_body": {"seed": 3, "style_preset": "anime"}}):
        assert _made(gw, **change)[0]["x-gateway-cache"] == "miss", change
    # no-cache asks for a new one; another key has its own.
    assert _made(gw, headers={"cache-control": "no-cache"})[0]["x-gateway-cache"] == "miss"
    assert _made(gw, key="sk-other")[0]["x-gateway-cache"] == "miss"


def test_a_shared_cache_answers_every_key_and_a_deleted_video_is_a_miss(start_gateway):
    gw = start_gateway(_config(shared=True))
    first = gw.client().videos.create_and_poll(**ASK)
    headers, theirs = _made(gw, key="sk-other")
    assert headers["x-gateway-cache"] == "hit"
    gw.client().videos.delete(first.id)
    # The copy has files of its own: it outlives the video it was copied from...
    assert len(_content(gw, theirs.id, key="sk-other")) > 0
    # ...but the entry named the deleted one: a miss, and the new video is kept instead.
    headers, mine = _made(gw)
    assert headers["x-gateway-cache"] == "miss"
    gw.client().videos.poll(mine.id)
    assert _made(gw, key="sk-other")[0]["x-gateway-cache"] == "hit"


def test_a_hit_sends_its_webhook_event(start_gateway, receiver):
    hook = receiver()
    gw = start_gateway(_config(webhooks={"secret": SECRET, "allow_hosts": ["127.0.0.1"]}))
    gw.client().videos.create_and_poll(**ASK)
    _, again = _made(gw, extra_body={**ASK["extra_body"], "callback_url": hook.url})
    deadline = time.time() + 10
    while not hook.received:
        assert time.time() < deadline
        time.sleep(0.05)
    import openai
    event = openai.OpenAI(api_key="unused").webhooks.unwrap(hook.received[0].body, hook.received[0].headers,
                                                            secret=SECRET)
    assert event.type == "video.completed" and event.data.id == again.id
    assert event.data.model_extra["status"] == "completed" and "video_url" in event.data.model_extra


def test_a_video_made_on_one_replica_answers_on_another(start_gateway, redis_url, tmp_path):
    def replica():
        cfg = _config()
        cfg["state"] = {"redis_url": redis_url, "data_dir": str(tmp_path / "data")}
        return start_gateway(cfg)

    a, b = replica(), replica()
    first = a.client().videos.create_and_poll(**ASK)
    headers, again = _made(b)
    assert headers["x-gateway-cache"] == "hit" and again.status == "completed"
    assert _content(a, again.id) == _content(b, first.id)
