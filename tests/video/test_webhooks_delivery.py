"""Webhook events for finished videos: delivered to a real receiver on
loopback, verified with the SDK's `webhooks.unwrap`, retried with backoff
when the receiver fails, each attempt recorded."""
from __future__ import annotations

import time

import openai
import pytest

from tests.video.conftest import SECRET, mock_video, video_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def _hooks(receiver_url: str, **kw) -> dict:
    return {"secret": SECRET, "endpoints": [{"url": receiver_url, **kw}], "allow_hosts": ["127.0.0.1"],
            "backoff_s": 0.1}


def test_completed_event_is_signed_and_retried_until_the_receiver_takes_it(start_gateway, receiver, loop):
    hook = receiver(fail_first=2)
    cfg = video_config(webhooks=_hooks(hook.url))
    cfg["auth"]["admin_key"] = "admin-secret"
    gw = start_gateway(cfg)
    client = gw.client()
    video = client.videos.create_and_poll(model="mock-video", prompt="p", size="320x180", seconds="1")
    _wait_for(lambda: len(hook.received) == 3)
    time.sleep(0.5)
    assert len(hook.received) == 3           # delivered once accepted: no more attempts

    bodies = {r.body for r in hook.received}
    assert len(bodies) == 1                  # the same event each time...
    ids = {r.headers["webhook-id"] for r in hook.received}
    assert len(ids) == 1                     # ...under the same id, re-signed per attempt
    last = hook.received[-1]
    event = openai.OpenAI(api_key="unused").webhooks.unwrap(last.body, last.headers, secret=SECRET)
    assert event.type == "video.completed" and event.data.id == video.id
    assert event.id == next(iter(ids)) and event.object == "event"

    deliveries = loop.run(gw.runtime.store.jobs.deliveries(video.id))
    assert len(deliveries) == 1
    d = deliveries[0]
    assert d.status == "delivered" and d.attempts == 3 and d.url == hook.url
    assert [a["status"] for a in d.history] == [500, 500, 200]

    # The admin API shows the job and every attempt.
    admin = gw.http(key="admin-secret").get(f"/admin/videos/{video.id}")
    assert admin.status_code == 200
    shown = admin.json()
    assert shown["job"]["status"] == "completed" and shown["job"]["provider"] == "mock"
    assert [a["status"] for a in shown["deliveries"][0]["history"]] == [500, 500, 200]
    assert shown["deliveries"][0]["event"]["type"] == "video.completed"
    assert gw.http().get(f"/admin/videos/{video.id}").status_code == 401


def test_a_forged_or_stale_signature_does_not_verify(start_gateway, receiver):
    hook = receiver()
    gw = start_gateway(video_config(webhooks=_hooks(hook.url)))
    gw.client().videos.create_and_poll(model="mock-video", prompt="p", size="320x180", seconds="1")
    _wait_for(lambda: hook.received)
    r = hook.received[0]
    client = openai.OpenAI(api_key="unused")
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(r.body + b" ", r.headers, secret=SECRET)
    from gateway.webhooks.signing import new_secret
    with pytest.raises(openai.InvalidWebhookSignatureError):
        client.webhooks.unwrap(r.body, r.headers, secret=new_secret())


def test_failed_event_goes_to_the_callback_url_and_subscribed_endpoints_only(start_gateway, receiver):
    only_completed = receiver()
    callback = receiver()
    hooks = {"secret": SECRET, "allow_hosts": ["127.0.0.1"], "backoff_s": 0.1,
             "endpoints": [{"url": only_completed.url, "events": ["video.completed"]}]}
    gw = start_gateway(video_config([mock_video("mock", video_fail_rate=1)], webhooks=hooks))
    client = gw.client()
    video = client.videos.create(model="mock-video", prompt="p", size="320x180", seconds="1",
                                 extra_body={"callback_url": callback.url})
    assert client.videos.poll(video.id).status == "failed"
    _wait_for(lambda: callback.received)
    time.sleep(0.3)
    assert only_completed.received == []
    event = openai.OpenAI(api_key="unused").webhooks.unwrap(callback.received[0].body, callback.received[0].headers,
                                                            secret=SECRET)
    assert event.type == "video.failed" and event.data.id == video.id


def test_a_delivery_is_given_up_after_max_attempts(start_gateway, receiver, loop):
    hook = receiver(fail_first=100)
    gw = start_gateway(video_config(webhooks={**_hooks(hook.url), "max_attempts": 3}))
    video = gw.client().videos.create_and_poll(model="mock-video", prompt="p", size="320x180", seconds="1")
    _wait_for(lambda: len(hook.received) == 3)
    _wait_for(lambda: loop.run(gw.runtime.store.jobs.deliveries(video.id))[0].status == "failed")
    time.sleep(0.5)
    assert len(hook.received) == 3


def test_private_endpoints_are_refused_at_delivery_unless_allowed(start_gateway, receiver, loop):
    hook = receiver()
    hooks = {**_hooks(hook.url), "allow_hosts": [], "max_attempts": 1}
    gw = start_gateway(video_config(webhooks=hooks))
    video = gw.client().videos.create_and_poll(model="mock-video", prompt="p", size="320x180", seconds="1")
    _wait_for(lambda: loop.run(gw.runtime.store.jobs.deliveries(video.id))[0].status == "failed")
    d = loop.run(gw.runtime.store.jobs.deliveries(video.id))[0]
    assert "loopback" in d.history[0]["error"] and hook.received == []
