"""Native batches (providers/batching.py): OpenAI's Batch API, Anthropic's Message Batches and
Gemini's batch mode, each client driven directly against its fake on loopback: submit, poll,
results read back as the adapter reads a normal answer or error; cancel and expiry leave requests
not run; what the wire carries; credentials never sent to another origin; redirects not followed;
malformed answers are the provider's errors, never a crash."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from providers import errors
from providers.base import Call
from providers.batching import BatchResult, NativeBatches, jsonl, one_line
from providers.http import HttpProvider
from providers.registry import TYPES
from tests.upstreams.anthropic_fake import FakeAnthropic
from tests.upstreams.gemini_fake import FakeGemini
from tests.upstreams.openai_fake import FakeOpenAI, form_parts
from tests.upstreams.server import FakeServer

MODELS = {"openai": "gpt-4.1", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}
KINDS = list(MODELS)


@pytest.fixture
def made(loop) -> Iterator[Callable[..., Any]]:
    """made(kind, **options) -> (fake, provider): a fake of that provider and an adapter built from a
    config entry pointing at it, `batch: native`; both closed after the test."""
    fakes: list[FakeServer] = []
    providers: list[HttpProvider] = []

    def make(kind: str, **options: Any) -> tuple[Any, HttpProvider]:
        fake: Any = {"openai": FakeOpenAI, "anthropic": FakeAnthropic, "gemini": FakeGemini}[kind](loop)
        fakes.append(fake)
        key = {"openai": "sk-up", "anthropic": getattr(fake, "api_key", ""), "gemini": getattr(fake, "key", "")}[kind]
        entry = {"name": f"{kind}-up", "type": kind, "base_url": fake.url, "api_key": key, "batch": "native",
                 **options}
        cls = TYPES[kind]
        provider = cls(cls.Options.model_validate(entry))
        assert isinstance(provider, HttpProvider)
        providers.append(provider)
        return fake, provider

    yield make
    for p in providers:
        loop.run(p.close())
    for f in fakes:
        f.close()


def call(kind: str, text: str, **extra: Any) -> Call:
    data = {"model": "batch-model", "messages": [{"role": "user", "content": text}], **extra}
    return Call("chat", orjson.dumps(data), data, MODELS[kind])


def client(provider: HttpProvider) -> NativeBatches:
    found = provider.native_batches()
    assert found is not None
    return found


def until_ended(loop, batches: NativeBatches, state: dict[str, Any], looks: int = 20) -> int:
    """Polls until the batch ends; how many looks that took."""
    for n in range(1, looks + 1):
        if loop.run(batches.ended(state)):
            return n
    raise AssertionError("the batch never ended")


def submitted(loop, kind: str, provider: HttpProvider, *calls: Call) -> tuple[dict[str, Any], list[bytes]]:
    bodies = [provider.request(c).body for c in calls]
    state = loop.run(client(provider).submit(MODELS[kind], [(f"r{i}", b) for i, b in enumerate(bodies)]))
    return state, bodies


def by_id(results: list[BatchResult]) -> dict[str, BatchResult]:
    return {r.custom_id: r for r in results}


def provider_error(provider: HttpProvider, result: BatchResult) -> errors.ProviderError:
    return provider.error(result.status, result.body, {})


# -- the options ------------------------------------------------------------------

@pytest.mark.parametrize("kind", [*KINDS, "openai_compatible", "groq"])
def test_options_default_to_the_gateway_running_batches(kind):
    cls = TYPES[kind]
    entry = {"name": "p", "type": kind, "api_key": "k", "base_url": "https://api.example.com/v1"}
    options = cls.Options.model_validate(entry)
    assert (options.batch, options.batch_price, options.batch_poll_s) == ("gateway", 0.5, 30)
    provider = cls(options)
    assert isinstance(provider, HttpProvider) and provider.native_batches() is None
    native = cls(cls.Options.model_validate({**entry, "batch": "native", "batch_price": 0.25, "batch_poll_s": 5}))
    assert isinstance(native, HttpProvider)
    assert native.native_batches() is not None and native.native_batches() is native.native_batches()
    for bad in ({"batch": "sometimes"}, {"batch_price": 1.5}, {"batch_price": -0.1}, {"batch_poll_s": 0}):
        with pytest.raises(ValueError):
            cls.Options.model_validate({**entry, **bad})


def test_other_http_providers_have_no_native_batches():
    cls = TYPES["azure_openai"]
    options = cls.Options.model_validate({"name": "az", "type": "azure_openai", "api_key": "k",
                                          "base_url": "https://x.openai.azure.com"})
    provider = cls(options)
    assert isinstance(provider, HttpProvider) and provider.native_batches() is None


# -- OpenAI -----------------------------------------------------------------------

def test_openai_batch_runs_and_answers_as_chat_completions(loop, made):
    fake, provider = made("openai", organization="org-1")
    fake.batch.errors = {"r1": 429}
    pretty = Call("chat", b'{\n  "model": "x",\n  "messages": [{"role": "user", "content": "a\\nb"}]\n}',
                  {"model": "x", "messages": [{"role": "user", "content": "a\nb"}]}, MODELS["openai"])
    calls = [call("openai", "Hello é 🚀", temperature=0.2), call("openai", "Second"), pretty]
    state, bodies = submitted(loop, "openai", provider, *calls)
    assert state["id"].startswith("batch_") and state["ids"] == ["r0", "r1", "r2"]

    upload, create = fake.seen[0], fake.seen[1]
    assert upload.path == "/v1/files" and upload.headers["Authorization"] == "Bearer sk-up"
    assert upload.headers["openai-organization"] == "org-1"
    parts = dict(form_parts(upload.headers["Content-Type"], upload.body))
    assert parts["purpose"] == "batch"
    filename, _, jsonl_bytes = parts["file"]
    assert filename.endswith(".jsonl")
    lines = jsonl_bytes.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4          # one line a request, each ended by a line break
    for i, (line, body) in enumerate(zip(lines, bodies, strict=False)):
        assert line == (b'{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions","body":' % i
                        + one_line(body) + b"}")
    assert bodies[0] in jsonl_bytes                       # the body's very bytes, spliced in
    assert orjson.loads(lines[2])["body"] == orjson.loads(bodies[2])   # a pretty body made one line, same JSON
    assert create.path == "/v1/batches" and create.json == {
        "input_file_id": state["input_file_id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"}

    assert until_ended(loop, client(provider), state) == 2      # running at the first look, ended at the second
    results = loop.run(client(provider).results(state))
    assert [r.custom_id for r in results] == ["r0", "r1", "r2"]
    ok, limited, third = results
    assert ok.status == 200 and ok.not_run is None
    reply = provider.answer(calls[0], ok.body)
    assert orjson.loads(reply.body)["object"] == "chat.completion"
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (19, 10)
    assert third.status == 200
    assert limited.status == 429 and isinstance(provider_error(provider, limited), errors.RateLimited)
    assert all(s.path.startswith("/v1/") and "sk-up" not in s.path + s.query for s in fake.seen)


def test_openai_cancel_mid_way_leaves_requests_not_run(loop, made):
    fake, provider = made("openai")
    fake.batch.polls, fake.batch.run = 50, 1
    state, _ = submitted(loop, "openai", provider, call("openai", "a"), call("openai", "b"), call("openai", "c"))
    batches = client(provider)
    assert loop.run(batches.ended(state)) is False
    loop.run(batches.cancel(state))
    assert fake.seen[-1].path == f"/v1/batches/{state['id']}/cancel"
    until_ended(loop, batches, state)
    results = loop.run(batches.results(state))
    assert [(r.custom_id, r.status, r.not_run) for r in results] == [
        ("r0", 200, None), ("r1", 0, "cancelled"), ("r2", 0, "cancelled")]
    assert results[1].body == b""
    loop.run(batches.cancel(state))     # OpenAI refuses to cancel an ended batch: that is no failure


@pytest.mark.parametrize("reported", [True, False])
def test_openai_expired_batch(loop, made, reported):
    fake, provider = made("openai")
    fake.batch.end, fake.batch.run, fake.batch.report_unrun = "expired", 2, reported
    state, _ = submitted(loop, "openai", provider, *(call("openai", t) for t in "abc"))
    until_ended(loop, client(provider), state)
    results = loop.run(client(provider).results(state))
    assert [(r.status, r.not_run) for r in results] == [(200, None), (200, None), (0, "expired")]


def test_openai_batch_failed_at_validation(loop, made):
    fake, provider = made("openai")
    good = provider.request(call("openai", "a")).body
    state = loop.run(client(provider).submit("gpt-4.1", [("r0", good), ("r1", b'{"messages": []}'), ("r2", good)]))
    assert loop.run(client(provider).ended(state)) is True
    results = by_id(loop.run(client(provider).results(state)))
    refused = provider_error(provider, results["r1"])
    assert results["r1"].status == 400 and isinstance(refused, errors.BadRequest)
    assert refused.code == "missing_required_parameter" and refused.param == "body.model"
    for other in ("r0", "r2"):
        assert results[other].status == 500
        message = orjson.loads(results[other].body)["error"]["message"]
        assert "line 2 (r1)" in message and "must name a model" in message
        assert isinstance(provider_error(provider, results[other]), errors.UpstreamFault)


def test_openai_results_file_with_a_broken_line_is_malformed(loop, made):
    fake, provider = made("openai")
    state, _ = submitted(loop, "openai", provider, call("openai", "a"))
    until_ended(loop, client(provider), state)
    output = fake._batch_object(fake.batches[state["id"]])["output_file_id"]
    purpose, name, _ = fake.files[output]
    fake.files[output] = (purpose, name, b'{"custom_id": "r0", "response": {"status_code": 200, "body":')
    with pytest.raises(errors.UpstreamFault) as e:
        loop.run(client(provider).results(state))
    assert e.value.code == "upstream_malformed"


# -- Anthropic --------------------------------------------------------------------

def test_anthropic_batch_runs_and_answers_as_chat_completions(loop, made):
    fake, provider = made("anthropic", beta=["some-beta"])
    fake.batch.errors = {"r2": 529}
    calls = [call("anthropic", "Hello"), call("anthropic", "Second", max_tokens=20), call("anthropic", "Third")]
    state, bodies = submitted(loop, "anthropic", provider, *calls)
    # One request its params refuse (as /messages would): an errored result with a 400.
    state_bad = loop.run(client(provider).submit("claude-sonnet-4-5", [("bad", b'{"messages": []}')]))
    assert state["id"].startswith("msgbatch_") and state["ids"] == ["r0", "r1", "r2"]

    sent = fake.seen[0]
    assert sent.path == "/v1/messages/batches"
    assert sent.headers["x-api-key"] == fake.api_key and sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "some-beta"
    assert sent.body == b'{"requests":[' + b",".join(
        b'{"custom_id":"r%d","params":' % i + body + b"}" for i, body in enumerate(bodies)) + b"]}"

    assert until_ended(loop, client(provider), state) == 2
    results = loop.run(client(provider).results(state))
    got = fake.seen[-1]
    assert got.path == f"/v1/messages/batches/{state['id']}/results" and got.headers["x-api-key"] == fake.api_key
    assert [r.status for r in results] == [200, 200, 529]
    reply = provider.answer(calls[0], results[0].body)
    done = orjson.loads(reply.body)
    assert done["object"] == "chat.completion"
    assert done["choices"][0]["message"]["content"] == "Hello there, friend é 🚀"
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (1706, 50)
    overloaded = provider_error(provider, results[2])
    assert isinstance(overloaded, errors.UpstreamFault) and "overloaded" in overloaded.message
    assert orjson.loads(results[2].body)["type"] == "error"

    until_ended(loop, client(provider), state_bad)
    (bad,) = loop.run(client(provider).results(state_bad))
    assert bad.status == 400 and isinstance(provider_error(provider, bad), errors.BadRequest)
    assert "max_tokens" in provider_error(provider, bad).message


def test_anthropic_results_on_another_origin_are_refused_unsent(loop, made):
    fake, provider = made("anthropic")
    elsewhere = FakeAnthropic(loop)
    try:
        fake.batch.results_base = elsewhere.url      # another port on the same host: another origin
        state, _ = submitted(loop, "anthropic", provider, call("anthropic", "a"))
        until_ended(loop, client(provider), state)
        with pytest.raises(errors.UpstreamFault) as e:
            loop.run(client(provider).results(state))
        assert e.value.code == "upstream_foreign_url" and elsewhere.url not in e.value.message
        assert elsewhere.seen == []
        for foreign in ("https://evil.example/v1/messages/batches/x/results", "file:///etc/passwd",
                        fake.url.replace("http://", "https://")):
            fake.batch.results_base = foreign.rsplit("/messages", 1)[0]
            with pytest.raises(errors.UpstreamFault):
                loop.run(client(provider).results(state))
        fake.batch.results_base = fake.base + "/v1"        # its own origin, spelled out: fine
        assert loop.run(client(provider).results(state))[0].status == 200
    finally:
        elsewhere.close()


@pytest.mark.parametrize("end,reported", [("cancel", True), ("expired", True), ("expired", False)])
def test_anthropic_cancelled_and_expired_requests_are_not_run(loop, made, end, reported):
    fake, provider = made("anthropic")
    fake.batch.polls, fake.batch.run, fake.batch.report_unrun = (50 if end == "cancel" else 1), 1, reported
    if end == "expired":
        fake.batch.end = "expired"
    state, _ = submitted(loop, "anthropic", provider, call("anthropic", "a"), call("anthropic", "b"))
    batches = client(provider)
    if end == "cancel":
        assert loop.run(batches.ended(state)) is False
        loop.run(batches.cancel(state))
        assert fake.seen[-1].path == f"/v1/messages/batches/{state['id']}/cancel"
    until_ended(loop, batches, state)
    results = loop.run(batches.results(state))
    not_run = "cancelled" if end == "cancel" else "expired"
    assert [(r.status, r.not_run) for r in results] == [(200, None), (0, not_run)]
    loop.run(batches.cancel(state))     # refused by Anthropic once ended: no failure


# -- Gemini -----------------------------------------------------------------------

def test_gemini_batch_runs_and_answers_as_chat_completions(loop, made):
    fake, provider = made("gemini")
    fake.batch.errors = {"r1": 400}
    calls = [call("gemini", "Bonjour?", max_tokens=50), call("gemini", "Second"), call("gemini", "Third")]
    state, bodies = submitted(loop, "gemini", provider, *calls)
    assert state["id"].startswith("batches/") and state["ids"] == ["r0", "r1", "r2"]

    sent = fake.seen[0]
    assert (sent.path, sent.model, sent.method) == ("/v1beta/models/gemini-2.5-flash:batchGenerateContent",
                                                    "gemini-2.5-flash", "batchGenerateContent")
    assert sent.headers["x-goog-api-key"] == fake.key and fake.key not in sent.path + sent.query
    batch = sent.json["batch"]
    assert batch["displayName"].startswith("gateway-")
    items = batch["inputConfig"]["requests"]["requests"]
    assert [i["metadata"] for i in items] == [{"key": "r0"}, {"key": "r1"}, {"key": "r2"}]
    for body in bodies:
        assert b'{"request":' + body + b',"metadata":' in sent.body      # the bodies' very bytes

    assert until_ended(loop, client(provider), state) == 2
    assert fake.seen[-1].path == f"/v1beta/{state['id']}" and fake.seen[-1].headers["x-goog-api-key"] == fake.key
    results = loop.run(client(provider).results(state))
    assert [r.status for r in results] == [200, 400, 200]
    reply = provider.answer(calls[0], results[0].body)
    done = orjson.loads(reply.body)
    assert done["object"] == "chat.completion"
    assert done["choices"][0]["message"]["content"] == "Hello there, friend é 🚀"
    assert reply.usage is not None and (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (12, 37)
    refused = provider_error(provider, results[1])
    assert isinstance(refused, errors.BadRequest)
    assert orjson.loads(results[1].body)["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("output_at", ["metadata", "response"])
def test_gemini_responses_found_wherever_the_operation_holds_them(loop, made, output_at):
    fake, provider = made("gemini")
    fake.batch.output_at, fake.batch.keys = output_at, output_at == "metadata"
    fake.batch.errors = {"r0": 429}
    state, _ = submitted(loop, "gemini", provider, call("gemini", "a"), call("gemini", "b"))
    until_ended(loop, client(provider), state)
    results = loop.run(client(provider).results(state))      # without keys: by position
    assert [(r.custom_id, r.status) for r in results] == [("r0", 429), ("r1", 200)]
    assert isinstance(provider_error(provider, results[0]), errors.RateLimited)


def test_gemini_cancelled_and_failed_batches(loop, made):
    fake, provider = made("gemini")
    fake.batch.polls, fake.batch.run = 50, 1
    state, _ = submitted(loop, "gemini", provider, call("gemini", "a"), call("gemini", "b"))
    batches = client(provider)
    assert loop.run(batches.ended(state)) is False
    loop.run(batches.cancel(state))
    assert fake.seen[-1].path == f"/v1beta/{state['id']}:cancel" and fake.seen[-1].method == "cancel"
    until_ended(loop, batches, state)
    assert [(r.status, r.not_run) for r in loop.run(batches.results(state))] == [(200, None), (0, "cancelled")]
    loop.run(batches.cancel(state))     # FAILED_PRECONDITION once ended: no failure

    fake.batch.polls, fake.batch.end = 0, "failed"
    failed, _ = submitted(loop, "gemini", provider, call("gemini", "a"))
    until_ended(loop, batches, failed)
    (only,) = loop.run(batches.results(failed))
    assert only.status == 500 and "internal error" in orjson.loads(only.body)["error"]["message"]
    assert isinstance(provider_error(provider, only), errors.UpstreamFault)

    fake.batch.end, fake.batch.run = "expired", 0
    expired, _ = submitted(loop, "gemini", provider, call("gemini", "a"))
    until_ended(loop, batches, expired)
    assert [(r.status, r.not_run) for r in loop.run(batches.results(expired))] == [(0, "expired")]


# -- every provider ---------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_a_redirect_is_not_followed(loop, made, kind):
    fake, provider = made(kind)
    elsewhere = FakeOpenAI(loop)
    try:
        state, _ = submitted(loop, kind, provider, call(kind, "a"))
        fake.fail(302, b"", headers={"location": elsewhere.url + "/batches/x"})
        for attempt in (client(provider).ended(state), client(provider).results(state)):
            with pytest.raises(errors.UpstreamFault) as e:
                loop.run(attempt)
            assert e.value.code == "upstream_redirect"
        assert elsewhere.seen == []
    finally:
        elsewhere.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("answer", [b"not json", b"[1, 2]", b"{}", b'{"id": 5, "name": ["batches/x"]}',
                                    b'{"status": 7, "processing_status": null, "name": "files/x"}'])
def test_malformed_answers_are_provider_errors(loop, made, kind, answer):
    fake, provider = made(kind)
    state, _ = submitted(loop, kind, provider, call(kind, "a"))
    fake.batch.answer = answer
    for attempt in (client(provider).submit(MODELS[kind], [("r0", b"{}")]), client(provider).ended(state),
                    client(provider).results(state)):
        with pytest.raises(errors.ProviderError) as e:
            loop.run(attempt)
        assert isinstance(e.value, errors.UpstreamFault) and e.value.code == "upstream_malformed"


@pytest.mark.parametrize("kind", KINDS)
def test_answers_are_read_within_max_answer_bytes(loop, made, kind):
    fake, provider = made(kind, max_answer_bytes=2048)
    state, _ = submitted(loop, kind, provider, *(call(kind, str(i)) for i in range(8)))
    with pytest.raises(errors.UpstreamFault) as e:      # Gemini's ended batch holds its responses: polling fails
        until_ended(loop, client(provider), state)
        loop.run(client(provider).results(state))
    assert e.value.code == "upstream_malformed" and "2048 bytes" in e.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_bad_requests_and_states_fail_before_anything_is_sent(loop, made, kind):
    fake, provider = made(kind)
    batches = client(provider)
    for requests in ([], [("r 1", b"{}")], [("x" * 65, b"{}")], [("a", b"{}"), ("a", b"{}")]):
        with pytest.raises(errors.BadRequest):
            loop.run(batches.submit(MODELS[kind], requests))
    for state in ({}, {"id": ""}, {"id": 7}):
        for attempt in (batches.ended(state), batches.cancel(state)):
            with pytest.raises(errors.ProviderError) as e:
                loop.run(attempt)
            assert e.value.code == "batch_state_missing"
    assert fake.seen == []
    state, _ = submitted(loop, kind, provider, call(kind, "a"))
    fake.batch.polls = 50
    with pytest.raises(errors.ProviderError) as e:
        loop.run(batches.results(state))
    assert e.value.code == "batch_not_ended"
    with pytest.raises(errors.ProviderError) as e:
        loop.run(batches.results({"id": state["id"]}))      # no custom ids kept
    assert e.value.code == "batch_state_missing"


@pytest.mark.parametrize("kind", KINDS)
def test_state_is_json_and_finds_the_batch_after_a_restart(loop, made, kind):
    fake, provider = made(kind)
    state, _ = submitted(loop, kind, provider, call(kind, "a"))
    kept = orjson.loads(orjson.dumps(state))
    other = TYPES[kind](provider.options)        # a new process: a new adapter, the kept state
    assert isinstance(other, HttpProvider)
    try:
        until_ended(loop, client(other), kept)
        assert [r.status for r in loop.run(client(other).results(kept))] == [200]
    finally:
        loop.run(other.close())


def test_jsonl_reads_lines_and_refuses_what_is_not_an_object():
    malformed = errors.UpstreamFault
    assert list(jsonl(b'{"a": 1}\n\n{"b": 2}\r\n', malformed)) == [{"a": 1}, {"b": 2}]
    for bad in (b'{"a": 1}\n[1]\n', b"{\n", b'"x"'):
        with pytest.raises(errors.UpstreamFault):
            list(jsonl(bad, malformed))
    assert one_line(b'{"a":\r\n "b\\n"}') == b'{"a":   "b\\n"}'
