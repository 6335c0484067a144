"""Events signed by the gateway are verified by the official `openai` SDK."""
from __future__ import annotations

import base64
import time

import openai
import orjson
import pytest

from gateway.webhooks.signing import event, new_secret, sign


def _receiver(secret: str) -> openai.OpenAI:
    return openai.OpenAI(api_key="x", webhook_secret=secret)


def _signed(secret: str, *, timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    event_id, body = event("video.completed", "video_123", created_at=1_700_000_000)
    return body, sign(secret, event_id, int(time.time()) if timestamp is None else timestamp, body)


def test_sdk_unwraps_what_sign_produced():
    secret = new_secret()
    body, headers = _signed(secret)
    got = _receiver(secret).webhooks.unwrap(body, headers)
    # This SDK version has no video.* event class, so it picks some model: check fields, not class.
    assert got.type == "video.completed"
    assert got.object == "event"
    assert got.id == headers["webhook-id"]
    assert got.id.startswith("evt_")
    assert got.created_at == 1_700_000_000
    assert got.data.id == "video_123"


def test_sdk_accepts_str_body_and_explicit_secret():
    secret = new_secret()
    body, headers = _signed(secret)
    _receiver(new_secret()).webhooks.verify_signature(body.decode(), headers, secret=secret)


def test_event_shape():
    event_id, body = event("video.failed", "video_9")
    doc = orjson.loads(body)
    assert doc == {"id": event_id, "object": "event", "type": "video.failed",
                   "created_at": doc["created_at"], "data": {"id": "video_9"}}
    assert abs(doc["created_at"] - time.time()) < 5
    assert event("video.failed", "video_9")[0] != event_id


def test_new_secret_is_whsec_base64_of_32_bytes():
    s = new_secret()
    assert s.startswith("whsec_")
    assert len(base64.b64decode(s[6:], validate=True)) == 32
    assert new_secret() != s


def test_tampered_body_is_rejected():
    secret = new_secret()
    body, headers = _signed(secret)
    tampered = body.replace(b"video_123", b"video_124")
    with pytest.raises(openai.InvalidWebhookSignatureError):
        _receiver(secret).webhooks.unwrap(tampered, headers)


def test_wrong_secret_is_rejected():
    body, headers = _signed(new_secret())
    with pytest.raises(openai.InvalidWebhookSignatureError):
        _receiver(new_secret()).webhooks.unwrap(body, headers)


@pytest.mark.parametrize("skew", [-301, -3600, 3600])
def test_stale_or_future_timestamp_is_rejected(skew):
    secret = new_secret()
    body, headers = _signed(secret, timestamp=int(time.time()) + skew)
    with pytest.raises(openai.InvalidWebhookSignatureError):
        _receiver(secret).webhooks.unwrap(body, headers)


def test_changed_id_or_timestamp_header_is_rejected():
    secret = new_secret()
    body, headers = _signed(secret)
    earlier = str(int(headers["webhook-timestamp"]) - 1)
    for name, value in [("webhook-id", "evt_other"), ("webhook-timestamp", earlier)]:
        with pytest.raises(openai.InvalidWebhookSignatureError):
            _receiver(secret).webhooks.unwrap(body, {**headers, name: value})


@pytest.mark.parametrize("bad", ["not-a-secret", "whsec_***"])
def test_malformed_secret_is_refused_when_signing(bad):
    with pytest.raises(ValueError):
        sign(bad, "evt_1", int(time.time()), b"{}")
