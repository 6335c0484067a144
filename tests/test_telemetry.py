"""OpenTelemetry traces (issue 17): a real gateway, driven by the official
`openai` SDK, sends its spans over OTLP/HTTP to a real receiver on loopback
that decodes them with OpenTelemetry's protobuf types. A span per request, one
per upstream attempt under it, the GenAI attributes, a client's traceparent as
the parent; and with tracing off, nothing of OpenTelemetry loaded at all."""
from __future__ import annotations

import subprocess
import sys

import openai
import pytest
import yaml

from gateway import cli, telemetry
from gateway.auth import digest_of, key_id
from gateway.config import ConfigError, parse
from gateway.config.edits import redact
from providers.mock import MockProvider
from providers.trace import TRACEPARENT
from tests.harness import ROOT, base_config, chat_model
from tests.upstreams.openai_fake import recorded
from tests.upstreams.otlp_receiver import CLIENT, ERROR, SERVER, OtlpReceiver, Span

MSG = [{"role": "user", "content": "hi"}]
PRICES = {"a/gpt-4o-mini": {"input_per_mtok": 1, "output_per_mtok": 2}}
CLIENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


def upstream(fake, name):
    return {"name": name, "type": "openai_compatible", "base_url": fake.url, "api_key": f"sk-{name}"}


@pytest.fixture
def receiver():
    with OtlpReceiver() as r:
        yield r


@pytest.fixture
def traced(start_gateway, receiver, monkeypatch):
    """traced(providers, models, **telemetry) -> a gateway sending its spans to `receiver` every 50 ms."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")     # the SDK's batch delay (default 5 s)

    def make(providers, models, **more):
        return start_gateway(base_config(providers, models, prices=PRICES,
                                         telemetry={"otlp_endpoint": receiver.url, **more}))
    return make


def kinds(spans: list[Span], kind: int) -> list[Span]:
    return [s for s in spans if s.kind == kind]


def counted(servers: int, clients: int):
    return lambda spans: len(kinds(spans, SERVER)) >= servers and len(kinds(spans, CLIENT)) >= clients


def test_a_request_and_its_attempt(traced, fake_openai, receiver):
    a = fake_openai("a")
    gw = traced([upstream(a, "a")], [chat_model("m", {"provider": "a", "model": "gpt-4o-mini"})],
                service_name="gw-test", headers={"authorization": "Bearer collector-token"})
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    spans = receiver.wait_for(counted(1, 1))
    [request], [attempt] = kinds(spans, SERVER), kinds(spans, CLIENT)

    assert request.name == "chat m"
    assert request.attributes == request.attributes | {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "m",
        "gen_ai.provider.name": "openai_compatible", "gen_ai.system": "openai_compatible",
        "gen_ai.usage.input_tokens": 19, "gen_ai.usage.output_tokens": 10,
        "http.response.status_code": 200, "http.request.method": "POST", "url.path": "/v1/chat/completions",
        "gateway.key.id": key_id(digest_of("sk-test")), "gateway.key.name": "test",
        "gateway.provider": "a", "gateway.attempts": 1, "gateway.request_id": raw.headers["x-request-id"]}
    assert request.attributes["gateway.cost_usd"] == pytest.approx(float(raw.headers["x-gateway-cost-usd"]))
    assert request.attributes["gateway.cost_usd"] == pytest.approx((19 * 1 + 10 * 2) / 1e6)
    assert "error.type" not in request.attributes and request.status != ERROR
    assert "sk-test" not in repr(spans) and "sk-a" not in repr(spans)      # never a key's secret

    assert attempt.name == "chat gpt-4o-mini"
    assert (attempt.trace_id, attempt.parent_span_id) == (request.trace_id, request.span_id)
    assert attempt.attributes == attempt.attributes | {
        "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.provider.name": "openai_compatible", "gateway.provider": "a", "gateway.attempt": 1}
    assert request.parent_span_id == ""         # no traceparent came: a trace of its own
    assert request.resource["service.name"] == "gw-test"
    assert receiver.headers[0]["authorization"] == "Bearer collector-token"


def test_a_clients_traceparent_is_the_parent(traced, fake_openai, receiver):
    a = fake_openai("a")
    gw = traced([upstream(a, "a")], [chat_model("m", {"provider": "a"})])
    gw.client().chat.completions.create(model="m", messages=MSG, extra_headers={
        "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01", "tracestate": "vendor=opaque"})
    [request], [attempt] = (kinds(s, k) for s in [receiver.wait_for(counted(1, 1))] for k in (SERVER, CLIENT))
    assert (request.trace_id, request.parent_span_id) == (CLIENT_TRACE, CLIENT_SPAN)
    assert request.trace_state == "vendor=opaque"
    assert (attempt.trace_id, attempt.parent_span_id) == (CLIENT_TRACE, request.span_id)


def test_a_traceparent_that_does_not_parse_starts_a_new_trace(traced, fake_openai, receiver):
    a = fake_openai("a")
    gw = traced([upstream(a, "a")], [chat_model("m", {"provider": "a"})])
    gw.client().chat.completions.create(model="m", messages=MSG, extra_headers={"traceparent": "00-nonsense-01"})
    [request] = kinds(receiver.wait_for(counted(1, 1)), SERVER)
    assert request.parent_span_id == "" and len(request.trace_id) == 32


def test_failover_makes_a_span_per_attempt(traced, fake_openai, receiver):
    a, b = fake_openai("a"), fake_openai("b")
    a.fail(500, recorded("error_500.json"))
    gw = traced([upstream(a, "a"), upstream(b, "b")], [chat_model("m", {"provider": "a"}, {"provider": "b"})])
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.headers["x-gateway-attempts"] == "2"
    spans = receiver.wait_for(counted(1, 2))
    [request] = kinds(spans, SERVER)
    first, second = sorted(kinds(spans, CLIENT), key=lambda s: s.attributes["gateway.attempt"])
    assert {first.parent_span_id, second.parent_span_id} == {request.span_id}
    assert first.attributes["gateway.provider"] == "a" and second.attributes["gateway.provider"] == "b"
    assert first.status == ERROR and first.attributes["error.type"] == "UpstreamFault"
    assert first.attributes["http.response.status_code"] == 500 and first.status_message
    assert second.status != ERROR and "error.type" not in second.attributes
    assert request.attributes["gateway.attempts"] == 2 and request.attributes["gateway.provider"] == "b"
    assert request.status != ERROR


def test_refused_requests_say_why(traced, fake_openai, receiver):
    a = fake_openai("a")
    a.fail(500, recorded("error_500.json"))
    gw = traced([upstream(a, "a")], [chat_model("m", {"provider": "a"}, retries=0)])
    with pytest.raises(openai.InternalServerError):
        gw.client().chat.completions.create(model="m", messages=MSG)
    with pytest.raises(openai.NotFoundError):
        gw.client().chat.completions.create(model="no-such-model", messages=MSG)
    spans = receiver.wait_for(counted(2, 1))
    failed, missing = sorted(kinds(spans, SERVER), key=lambda s: s.attributes["http.response.status_code"])[::-1]
    assert failed.status == ERROR and failed.attributes["http.response.status_code"] == 502
    assert failed.attributes["error.type"] == "upstream_error"
    # A 4xx is the client's error: said, but the span is not failed.
    assert missing.attributes["http.response.status_code"] == 404 and missing.status != ERROR
    assert missing.attributes["error.type"] == "model_not_found" and missing.name == "chat"


def test_streams_and_embeddings(traced, fake_openai, receiver):
    a = fake_openai("a")
    gw = traced([upstream(a, "a")], [chat_model("m", {"provider": "a"}),
                                     {"name": "e", "kind": "embedding", "route": {"targets": [{"provider": "a"}]}}])
    stream = gw.client().chat.completions.create(model="m", messages=MSG, stream=True,
                                                 stream_options={"include_usage": True})
    assert list(stream)
    gw.client().embeddings.create(model="e", input="hi")
    spans = receiver.wait_for(counted(2, 2))
    by_name = {s.name: s for s in kinds(spans, SERVER)}
    assert by_name["chat m"].attributes["gen_ai.usage.input_tokens"] == 9      # read from the stream's end
    assert by_name["chat m"].attributes["gen_ai.usage.output_tokens"] == 4
    assert by_name["embeddings e"].attributes["gen_ai.operation.name"] == "embeddings"
    assert {s.name for s in kinds(spans, CLIENT)} == {"chat m", "embeddings e"}


@pytest.mark.filterwarnings("ignore::DeprecationWarning")    # client.videos is marked deprecated
def test_video_submissions(traced, receiver):
    gw = traced([{"name": "mock", "type": "mock", "video_sizes": ["320x180"], "video_seconds": [1], "video_fps": 4}],
                [{"name": "clip", "kind": "video", "route": {"targets": [{"provider": "mock"}]}}])
    video = gw.client().videos.create(model="clip", prompt="a cat", size="320x180", seconds="1")
    spans = receiver.wait_for(counted(1, 1))
    [request], [attempt] = kinds(spans, SERVER), kinds(spans, CLIENT)
    assert (request.name, attempt.name) == ("video clip", "video clip")
    assert request.attributes["http.response.status_code"] == 200 and video.id
    assert attempt.parent_span_id == request.span_id and attempt.attributes["gen_ai.provider.name"] == "mock"


def test_the_attempt_runs_with_its_traceparent(traced, receiver, monkeypatch):
    """What providers/http.py sends as the `traceparent` header: the attempt span's context."""
    seen: list[str | None] = []
    chat = MockProvider.chat

    async def recording(self, call):
        seen.append(TRACEPARENT.get())
        return await chat(self, call)

    monkeypatch.setattr(MockProvider, "chat", recording)
    gw = traced([{"name": "mock", "type": "mock"}], [chat_model("m", {"provider": "mock"})])
    gw.client().chat.completions.create(model="m", messages=MSG)
    [attempt] = kinds(receiver.wait_for(counted(1, 1)), CLIENT)
    [traceparent] = seen
    version, trace_id, span_id, flags = traceparent.split("-")
    assert (version, trace_id, span_id) == ("00", attempt.trace_id, attempt.span_id)
    assert int(flags, 16) & 1       # sampled (the SDK may set W3C level 2's "random" bit beside it)


def test_the_upstream_gets_the_attempts_traceparent(traced, fake_openai, receiver):
    a, b = fake_openai("a"), fake_openai("b")
    a.fail(503, recorded("error_500.json"))
    gw = traced([upstream(a, "a"), upstream(b, "b")], [chat_model("m", {"provider": "a"}, {"provider": "b"})])
    gw.client().chat.completions.create(model="m", messages=MSG, extra_headers={
        "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
    spans = receiver.wait_for(counted(1, 2))
    sent = {s.attributes["gateway.provider"]: f"00-{CLIENT_TRACE}-{s.span_id}-" for s in kinds(spans, CLIENT)}
    assert a.seen[0].headers.get("traceparent", "").startswith(sent["a"])
    assert b.seen[0].headers.get("traceparent", "").startswith(sent["b"])


def test_the_clients_tracestate_goes_upstream_unchanged(traced, fake_openai, receiver):
    a = fake_openai("a")
    gw = traced([upstream(a, "a")], [chat_model("m", {"provider": "a"})])
    parent = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
    state = "vendor=opaque, rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"     # as it came: spaces and all
    longest = ",".join(f"k{i}=" + "v" * 59 for i in range(8)) + ",z=" + "v" * 6   # 512 bytes: what W3C asks to keep
    assert len(longest) == 512

    def send(*headers: tuple[str, str]) -> None:
        r = gw.http().post("/v1/chat/completions", json={"model": "m", "messages": MSG}, headers=list(headers))
        assert r.status_code == 200, r.text

    send(("traceparent", parent), ("tracestate", state))
    send(("traceparent", parent), ("tracestate", longest))
    send(("traceparent", parent), ("tracestate", longest + "v"))           # over 512 bytes: dropped
    send(("traceparent", "00-nonsense-01"), ("tracestate", state))        # no parent that parses: dropped
    send(("traceparent", parent))
    send(("traceparent", parent), ("tracestate", "a=1"), ("tracestate", "b=2"))    # two lines: one list
    sent = [(r.headers.get("traceparent"), r.headers.get("tracestate")) for r in a.seen]
    assert [s for _, s in sent] == [state, longest, None, None, None, "a=1,b=2"]
    assert all(p is not None and p != parent for p, _ in sent)          # each attempt's own traceparent beside it
    # the request spans' parents had them too (as OpenTelemetry writes a tracestate: no spaces)
    spans = kinds(receiver.wait_for(counted(6, 6)), SERVER)
    assert sorted(s.trace_state for s in spans if s.trace_state) == sorted([state.replace(" ", ""), longest, "a=1,b=2"])


def test_the_model_that_answered_is_on_the_spans(traced, fake_openai, receiver):
    """`gen_ai.response.model`: the model the upstream says answered (a dated snapshot, say), on
    the attempt and the request; a stream's from its first chunk."""
    a = fake_openai("a")
    gw = traced([upstream(a, "a")], [
        chat_model("m", {"provider": "a", "model": "gpt-4.1"}), chat_model("s", {"provider": "a", "model": "gpt-4o"}),
        {"name": "e", "kind": "embedding", "route": {"targets": [{"provider": "a", "model": "text-embedding-3"}]}}])
    client = gw.client()
    client.chat.completions.create(model="m", messages=MSG)
    assert list(client.chat.completions.create(model="s", messages=MSG, stream=True))
    client.embeddings.create(model="e", input="hi")
    spans = receiver.wait_for(counted(3, 3))
    answered = {(s.kind, s.name): s.attributes.get("gen_ai.response.model") for s in spans}
    assert answered == {
        (SERVER, "chat m"): "gpt-4.1-2025-04-14", (CLIENT, "chat gpt-4.1"): "gpt-4.1-2025-04-14",
        (SERVER, "chat s"): "gpt-4o-mini", (CLIENT, "chat gpt-4o"): "gpt-4o-mini",
        (SERVER, "embeddings e"): "text-embedding-3-small", (CLIENT, "embeddings text-embedding-3"):
            "text-embedding-3-small"}


def test_sampling_keeps_a_share_of_new_traces_and_follows_the_client(traced, fake_openai, receiver):
    a = fake_openai("a")
    gw = traced([upstream(a, "a")], [chat_model("m", {"provider": "a"})], sample_ratio=0)
    client = gw.client()
    client.chat.completions.create(model="m", messages=MSG)       # a new trace, at ratio 0: not kept
    client.chat.completions.create(model="m", messages=MSG, extra_headers={      # the client decided: not kept
        "traceparent": f"00-{'1' * 32}-{CLIENT_SPAN}-00"})
    client.chat.completions.create(model="m", messages=MSG, extra_headers={      # the client decided: kept
        "traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"})
    receiver.wait_for(counted(1, 1))
    gw.close()      # sends whatever is still batched
    assert {s.trace_id for s in receiver.spans} == {CLIENT_TRACE} and len(receiver.spans) == 2


def test_spans_still_batched_are_sent_at_shutdown(start_gateway, receiver, monkeypatch):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")
    gw = start_gateway(base_config([{"name": "mock", "type": "mock"}], [chat_model("m", {"provider": "mock"})],
                                   telemetry={"otlp_endpoint": receiver.url}))
    gw.client().chat.completions.create(model="m", messages=MSG)
    assert receiver.spans == []
    gw.close()
    assert len(receiver.spans) == 2


def test_tracing_off_loads_no_opentelemetry():
    """A gateway with no `telemetry:` serves a request without importing anything of OpenTelemetry
    (a process of its own: other tests load it into this one)."""
    script = (
        "import sys\n"
        "from tests.harness import Gateway, Loop, base_config, chat_model\n"
        "loop = Loop()\n"
        "gw = Gateway(loop, base_config([{'name': 'mock', 'type': 'mock'}], [chat_model('m', {'provider': 'mock'})]))\n"
        "answer = gw.client().chat.completions.create(model='m', messages=[{'role': 'user', 'content': 'hi'}])\n"
        "gw.close()\n"
        "print(bool(answer.choices[0].message.content), gw.app.runtime.tracing)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'opentelemetry'))\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["True None", "[]"]


def test_missing_packages_are_named_with_the_extra(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(telemetry, "find_spec", lambda name: None)
    text = yaml.safe_dump({"telemetry": {"otlp_endpoint": "http://127.0.0.1:4318/v1/traces"}})
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert e.value.errors == ["telemetry.otlp_endpoint: tracing needs opentelemetry-sdk, "
                              "opentelemetry-exporter-otlp-proto-http; install the telemetry extra: "
                              "pip install 'gateway[telemetry]'"]
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    assert cli.main(["check", "--config", str(path)]) == 1
    out = capsys.readouterr()
    assert "pip install 'gateway[telemetry]'" in out.out and "Traceback" not in out.out + out.err


def test_endpoint_must_be_an_http_url():
    with pytest.raises(ConfigError) as e:
        parse(yaml.safe_dump({"telemetry": {"otlp_endpoint": "collector:4318", "sample_ratio": 2}}))
    assert [err.split(":")[0] for err in e.value.errors] == ["telemetry.sample_ratio"]
    with pytest.raises(ConfigError) as e:
        parse(yaml.safe_dump({"telemetry": {"otlp_endpoint": "collector:4318"}}))
    assert e.value.errors[0].startswith("telemetry.otlp_endpoint: must be the collector's OTLP/HTTP traces URL")
    assert parse(yaml.safe_dump({"telemetry": {"otlp_endpoint": ""}})).config.telemetry.otlp_endpoint == ""


def test_the_collectors_secrets_are_hidden_and_its_section_needs_a_restart(start_gateway):
    doc = {"telemetry": {"otlp_endpoint": "https://user:collector-pass@otlp.example/v1/traces?token=qs-secret",
                         "headers": {"authorization": "Bearer collector-secret", "x-ref": "${OTLP_TOKEN}"}}}
    shown = redact(doc)["telemetry"]
    assert shown["otlp_endpoint"] == "https://user:***@otlp.example/v1/traces?token=***"
    assert shown["headers"] == {"authorization": "***", "x-ref": "${OTLP_TOKEN}"}
    cfg = base_config([{"name": "mock", "type": "mock"}], [chat_model("m", {"provider": "mock"})])
    cfg["auth"]["admin_key"] = "admin-telemetry"
    gw = start_gateway(cfg)
    r = gw.http(key="admin-telemetry").patch("/admin/config", json={
        "telemetry": {"otlp_endpoint": "http://127.0.0.1:4318/v1/traces"}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "restart_required"
