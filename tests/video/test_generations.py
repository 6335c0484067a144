"""`/v1/video/generations`, the video API as the founding article writes it:
its JSON body, its field names in the answers, the same jobs as `/v1/videos`
(seen, listed and deleted from either path), and webhook events that carry
`job_id`, `status` and `video_url`."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

import openai
import pytest

from tests.video.conftest import SECRET, decode_mp4, mock_video, video_config, video_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ARTICLE = {"model": "mock-video", "prompt": "a red kite over the dunes", "duration": 30,
           "resolution": "1920x1080", "style_preset": "cinematic", "camera_movement": "orbit", "seed": 42,
           "negative_prompt": "blurry"}


def _wait(api, job_id: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while (job := api.get(f"/v1/video/generations/{job_id}").json())["status"] in ("queued", "in_progress"):
        assert time.time() < deadline, job
        time.sleep(0.1)
    return job


def _path(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_the_articles_request_makes_its_video_on_both_paths(start_gateway, receiver):
    hook = receiver()
    gw = start_gateway(video_config([{"name": "mock", "type": "mock", "video_fps": 1}],
                                    [video_model("mock-video", "mock")],
                                    webhooks={"secret": SECRET, "allow_hosts": ["127.0.0.1"]}))
    api = gw.http()
    created = api.post("/v1/video/generations", json={**ARTICLE, "callback_url": hook.url})
    assert created.status_code == 200, created.text
    made = created.json()
    assert made["job_id"] == made["id"] and made["object"] == "video.generation"
    assert made["status"] in ("queued", "in_progress") and "video_url" not in made
    job = _wait(api, made["job_id"])
    assert job["status"] == "completed" and (job["duration"], job["resolution"]) == (30, "1920x1080")
    decoded = decode_mp4(api.get(_path(job["video_url"])).content)
    assert (decoded.width, decoded.height, decoded.frames) == (1920, 1080, 30)

    # The same job, as OpenAI's SDK sees it.
    video = gw.client().videos.retrieve(made["id"])
    assert (video.status, video.size, video.seconds) == ("completed", "1920x1080", "30")
    assert [v.id for v in gw.client().videos.list()] == [made["id"]]
    listed = api.get("/v1/video/generations", params={"limit": 5}).json()
    assert [g["job_id"] for g in listed["data"]] == [made["id"]] and listed["has_more"] is False

    # The webhook event: OpenAI's envelope, signed, with the article's fields in its data.
    deadline = time.time() + 10
    while not hook.received:
        assert time.time() < deadline
        time.sleep(0.05)
    received = hook.received[0]
    event = openai.OpenAI(api_key="unused").webhooks.unwrap(received.body, received.headers, secret=SECRET)
    assert event.type == "video.completed" and event.data.id == made["id"]
    data = event.data.model_extra
    assert data["job_id"] == made["id"] and data["status"] == "completed"
    assert decode_mp4(api.get(_path(data["video_url"])).content).frames == 30

    # Deleted from the article's path: gone from both.
    gone = api.delete(f"/v1/video/generations/{made['id']}").json()
    assert gone == {"id": made["id"], "job_id": made["id"], "object": "video.deleted", "deleted": True}
    assert api.get(f"/v1/video/generations/{made['id']}").status_code == 404
    with pytest.raises(openai.NotFoundError):
        gw.client().videos.retrieve(made["id"])


def test_a_failed_generation_says_why(start_gateway):
    gw = start_gateway(video_config([mock_video("mock", video_fail_rate=1.0)], [video_model("mock-video", "mock")]))
    api = gw.http()
    made = api.post("/v1/video/generations", json={"model": "mock-video", "prompt": "x", "duration": 1,
                                                   "resolution": "320x180"}).json()
    job = _wait(api, made["job_id"])
    assert job["status"] == "failed" and job["error_message"] and "video_url" not in job
    assert job["error_message"] == job["error"]["message"]


@pytest.mark.parametrize("body,param", [
    ({"prompt": "x", "duration": 61}, "duration"),
    ({"prompt": "x", "resolution": "4k"}, "resolution"),
    ({"prompt": "x", "resolution": "3840x2160"}, "resolution"),
    ({"prompt": "x", "style_preset": "noir"}, "style_preset"),
    ({"duration": 5}, "prompt"),
])
def test_bad_article_requests_are_a_400_and_create_nothing(start_gateway, body, param):
    gw = start_gateway(video_config([{"name": "mock", "type": "mock", "video_fps": 1}],
                                    [video_model("mock-video", "mock")]))
    api = gw.http()
    r = api.post("/v1/video/generations", json={"model": "mock-video", **body})
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    assert api.get("/v1/video/generations").json()["data"] == []


def test_unknown_paths_and_methods_under_generations(start_gateway):
    gw = start_gateway(video_config())
    api = gw.http()
    assert api.get("/v1/video/generations/video_0/content").status_code == 404
    assert api.put("/v1/video/generations/video_0").status_code == 405
    assert api.get("/v1/video/generations/video_0").status_code == 404
