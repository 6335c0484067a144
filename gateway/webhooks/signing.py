"""Standard Webhooks signing, exactly as the `openai` SDK verifies it.

A receiver calls `openai.OpenAI(webhook_secret=secret).webhooks.unwrap(body, headers)`.
The SDK (openai/lib/_webhooks.py) checks:
- `webhook-timestamp` is integer seconds within 300 s of now, either way;
- `webhook-signature` holds space-separated `v1,<base64>` values, any may match;
- the key is base64-decoded from after `whsec_` (a secret without the prefix
  would be used as raw UTF-8 bytes, so we always issue the prefixed form);
- the MAC is HMAC-SHA256 over `"{webhook-id}.{webhook-timestamp}.{body}"`, with
  the body decoded as UTF-8, so the body must be UTF-8 (orjson's output is).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret must look like 'whsec_<base64>'")
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX):], validate=True)
    except ValueError:
        raise ValueError("a webhook secret must look like 'whsec_<base64>'") from None


def check_secret(secret: str) -> bool:
    try:
        return len(_key(secret)) > 0
    except ValueError:
        return False


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers that make `body` verifiable; `msg_id` stays the same across retries."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    mac = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


def event(type: str, video_id: str, created_at: int | None = None,
          more: dict[str, Any] | None = None) -> tuple[str, bytes]:
    """An event in OpenAI's shape, e.g. `video.completed`: its id and its JSON body. `more`
    goes into `data` beside the video's `id` (OpenAI's SDK reads `id`; the rest is the gateway's)."""
    event_id = "evt_" + secrets.token_hex(16)
    body = orjson.dumps({
        "id": event_id,
        "object": "event",
        "type": type,
        "created_at": int(time.time()) if created_at is None else created_at,
        "data": {"id": video_id, **(more or {})},
    })
    return event_id, body


if __name__ == "__main__":   # python -m gateway.webhooks.signing: print a new secret
    print(new_secret())
