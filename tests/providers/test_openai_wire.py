"""OpenAI adapter translation, as pure functions on recorded payloads."""
from __future__ import annotations

import orjson
import pytest

from providers import errors
from providers.openai.chat import parse_error, with_model
from tests.upstreams.openai_fake import recorded


def swap(body: bytes, model: str) -> bytes:
    return with_model(body, orjson.loads(body), model)


def test_same_model_returns_the_very_bytes():
    body = b'{"model":"gpt-4o","messages":[]}'
    assert swap(body, "gpt-4o") is body


@pytest.mark.parametrize("body", [
    b'{"model":"a","messages":[{"role":"user","content":"hi"}]}',
    b'{ "messages": [], "model" : "a" }',
    b'{"model":"a","messages":[{"role":"user","content":"the \\"model\\": \\"a\\" text"}]}',
    '{"model":"a","messages":[{"role":"user","content":"é 🚀"}]}'.encode(),
])
def test_splice_changes_only_the_model(body):
    out = swap(body, "gpt-4.1-mini")
    assert orjson.loads(out) == {**orjson.loads(body), "model": "gpt-4.1-mini"}
    assert len(out) == len(body) + len("gpt-4.1-mini") - 1     # nothing else re-encoded


@pytest.mark.parametrize("body", [
    b'{"model":"a","metadata":{"model":"a"},"messages":[]}',   # two spellings: ambiguous
    b'{"model":"\\u0061","messages":[]}',                      # escaped spelling
    b'{"model":"x","model":"a","messages":[]}',                # duplicate keys: the last wins
])
def test_doubtful_bodies_are_re_encoded_correctly(body):
    data = orjson.loads(body)
    out = with_model(body, data, "b")
    assert orjson.loads(out) == {**data, "model": "b"}


def test_model_with_characters_that_need_escaping():
    body = b'{"model":"a","messages":[]}'
    assert orjson.loads(swap(body, 'we"ird\\name'))["model"] == 'we"ird\\name'


@pytest.mark.parametrize("status,file,kind,retryable", [
    (429, "error_429.json", errors.RateLimited, True),
    (500, "error_500.json", errors.UpstreamFault, True),
    (503, "error_500.json", errors.UpstreamFault, True),
    (401, "error_401.json", errors.AuthFailed, True),
    (400, "error_400_context.json", errors.BadRequest, False),
])
def test_error_kinds_from_recorded_bodies(status, file, kind, retryable):
    err = parse_error(status, recorded(file), {}, provider="up")
    assert type(err) is kind and err.retryable is retryable


def test_bad_request_keeps_upstream_fields():
    err = parse_error(400, recorded("error_400_context.json"), {}, provider="up")
    assert (err.status, err.param, err.code) == (400, "messages", "context_length_exceeded")
    assert err.message.startswith("This model's maximum context length")


def test_rate_limit_reads_retry_hints():
    assert parse_error(429, recorded("error_429.json"), {"retry-after": "20"}, provider="up").retry_after == 20
    assert parse_error(429, b"{}", {"retry-after-ms": "1500"}, provider="up").retry_after == 1.5


def test_secret_is_scrubbed_and_odd_bodies_survive():
    err = parse_error(422, b'{"error": {"message": "key sk-123 rejected"}}', {}, provider="up", secret="sk-123")
    assert "sk-123" not in err.message
    assert parse_error(400, b'{"object":"error","message":"vllm says no","type":"BadRequestError","code":400}', {},
                       provider="v").message == "vllm says no"
    assert parse_error(404, b'{"detail":"Not Found"}', {}, provider="v").message == "Not Found"
    assert parse_error(502, b"<html>Bad gateway</html>", {}, provider="v").message.endswith("<html>Bad gateway</html>")
    assert parse_error(400, b'{"error": "plain"}', {}, provider="v").message == "plain"
    assert parse_error(500, b"", {}, provider="v").message.endswith("HTTP 500")


def test_usage_from_recorded_answers():
    from providers.openai.chat import usage_of
    u = usage_of(recorded("chat_completion.json"))
    assert (u.prompt_tokens, u.completion_tokens, u.cached_tokens) == (19, 10, 0)
    assert usage_of(recorded("embeddings.json")).prompt_tokens == 8
    assert usage_of(b'{"usage": null}') is None and usage_of(b"not json") is None


def test_usage_noted_from_a_relayed_stream():
    from providers.base import Reply
    from providers.openai.chat import watch_usage

    stream = recorded("chat_stream.sse")
    cut = stream.index(b"\n\n", 300) + 2          # blocks hold whole events
    reply = Reply()
    watch = watch_usage(reply)
    out = b"".join(watch(b) for b in (stream[:cut], stream[cut:]))
    usage = reply.usage
    assert out == stream
    assert (usage.prompt_tokens, usage.completion_tokens) == (9, 4)
