"""What the hostile-upstream suites share (test_hostile_connections.py,
test_hostile_embeddings_bedrock.py): a provider of any adapter pointed at the
hostile server, its models, and the checks every answer must pass: OpenAI's
error shape, and no traceback and no provider secret in any answer or log."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson

from tests.harness import Gateway, chat_model

MSG = [{"role": "user", "content": "the prompt, which must not leave"}]
HEADER_SECRET = "hdr-secret-123"
SECRETS = {"openai": "sk-openai-secret", "anthropic": "sk-ant-secret", "gemini": "goog-secret",
           "bedrock": "bedrock/Secret+Access0123456789", "bedrock-id": "AKIDHOSTILE0000001",
           "bedrock-token": "bedrock-session-token-xyz"}
MAX_ANSWER_BYTES = 512 * 1024      # each hostile provider's cap: "huge" answers are cheap to send


def provider_at(adapter: str, name: str, url: str, **options) -> dict:
    """A `type: adapter` provider at `url`, with its credentials and a secret header."""
    p = {"name": name, "type": adapter, "base_url": url, "headers": {"x-tenant-token": HEADER_SECRET},
         "max_answer_bytes": MAX_ANSWER_BYTES, **options}
    if adapter == "bedrock":
        p.update(region="us-east-1", access_key_id=SECRETS["bedrock-id"], secret_access_key=SECRETS["bedrock"],
                 session_token=SECRETS["bedrock-token"])
    else:
        p["api_key"] = SECRETS[adapter]
    return p


def models_for(name: str, provider: str, *, kind: str = "chat", attempt_s: float = 0.2,
               timeout_s: float = 0.5) -> list[dict]:
    """`name` fails over to the provider `healthy` after `attempt_s`; `name-alone`
    has no fallback, and a deadline of `timeout_s`."""
    def model(n: str, *targets: dict, **kw) -> dict:
        return {**chat_model(n, *targets, **kw), "kind": kind}
    return [model(name, {"provider": provider, "model": "m"}, {"provider": "healthy"},
                  timeout_s=10, attempt_timeout_s=attempt_s),
            model(f"{name}-alone", {"provider": provider, "model": "m"}, timeout_s=timeout_s)]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def log_records() -> Iterator[list[logging.LogRecord]]:
    """Every log record meanwhile, from any thread, uvicorn's own included (it does not propagate)."""
    handler = _Records()
    loggers = [logging.getLogger(), logging.getLogger("uvicorn"), logging.getLogger("uvicorn.error")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield handler.records
    finally:
        for lg in loggers:
            lg.removeHandler(handler)


def assert_clean(logged: list[logging.LogRecord], *texts: str) -> None:
    """No traceback, nothing at ERROR, and no secret in the log or in `texts`."""
    for r in logged:
        assert r.exc_info is None and r.levelno < logging.ERROR, (r.name, r.getMessage())
    said = "\n".join([*texts, *(r.getMessage() for r in logged)])
    for secret in (*SECRETS.values(), HEADER_SECRET):
        assert secret not in said


def chat(gw: Gateway, model: str, stream: bool) -> tuple[httpx.Response, str]:
    """The raw answer and its whole text (a stream's events, any error event among them).
    A stream not ended cleanly (chunked encoding cut) raises here."""
    with gw.http() as http:
        r = http.post("/v1/chat/completions", json={"model": model, "messages": MSG, "stream": stream})
        return r, r.text


def embed(gw: Gateway, model: str) -> httpx.Response:
    with gw.http() as http:
        return http.post("/v1/embeddings", json={"model": model, "input": "the text, which must not leave"})


def words(body: str) -> str:
    """The content a streamed body carried."""
    out = []
    for line in body.splitlines():
        if line.startswith("data: {"):
            out += [c["delta"].get("content") or "" for c in orjson.loads(line[6:]).get("choices", [])]
    return "".join(out)


def error_event(body: str) -> dict:
    """The stream's last event, which must be an OpenAI-shaped error (and no [DONE] after it)."""
    events = [line for line in body.splitlines() if line.startswith("data: ")]
    last = orjson.loads(events[-1][6:]) if events and events[-1] != "data: [DONE]" else {}
    assert "error" in last, body[-500:]
    err = last["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["type"] == "server_error", err
    return err


def openai_error(r: httpx.Response, status: int) -> dict:
    """`r` is a `status` answer with an OpenAI-shaped server error."""
    assert r.status_code == status, (r.status_code, r.text[:500])
    err = r.json()["error"]
    assert err["message"] and err["type"] == "server_error", err
    return err


def answered_by_healthy(r: httpx.Response) -> None:
    assert r.status_code == 200, r.text[:500]
    assert r.headers["x-gateway-provider"] == "healthy" and r.headers["x-gateway-attempts"] == "2"
