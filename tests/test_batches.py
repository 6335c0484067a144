"""OpenAI's Batch API (/v1/batches) over real HTTP on loopback, with the official
SDK: files.create -> batches.create -> poll -> files.content of the output, on
the embedded store and on a real Redis; every request run through the
gateway's own routing, limits and cost; answers checked against OpenAI's
OpenAPI schemas; cancel mid-way; expiry; a batch of videos; webhooks; bad
requests refused in OpenAI's error shape; and a replica SIGKILLed mid-batch
whose work another replica finishes with every request answered exactly once."""
from __future__ import annotations

import asyncio
import os
import signal
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.batches import protocol
from tests.files_schema import validate
from tests.harness import Gateway, closed_after, free_port, serve_process
from tests.test_files import EMBEDDINGS, config, error_of, jsonl, line
from tests.video.conftest import SECRET, Receiver, decode_mp4, mock_video, video_model

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PRICES = {"mock/*": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}


def batch_config(tmp_path: Path, redis_url: str | None = None, *, latency_ms: float = 0,
                 **batches: Any) -> dict[str, Any]:
    cfg = config(tmp_path, redis_url)
    cfg["providers"] = [{"name": "mock", "type": "mock", "latency_ms": latency_ms}]
    cfg["models"].append({"name": "embed", "kind": "embedding", "route": {"targets": [{"provider": "mock"}]}})
    cfg["prices"] = PRICES
    cfg["batches"] = {"part_lines": 40, **batches}
    cfg.setdefault("videos", {})["job_lease_s"] = 2
    return cfg


def finished(client: openai.OpenAI, batch_id: str, timeout_s: float = 60) -> Any:
    deadline = time.time() + timeout_s
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "cancelled", "expired"):
            return batch
        assert time.time() < deadline, f"batch still {batch.status}: {batch.request_counts}"
        time.sleep(0.1)


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [orjson.loads(x) for x in client.files.content(file_id).read().splitlines()]


def submit(client: openai.OpenAI, data: bytes, endpoint: str = "/v1/chat/completions", **kw: Any) -> Any:
    made = client.files.create(file=("in.jsonl", data), purpose="batch")
    return client.batches.create(input_file_id=made.id, endpoint=endpoint, completion_window="24h", **kw)


@pytest.fixture(params=["embedded", "redis", "cluster"])
def store(request, tmp_path) -> dict[str, Any]:
    """The `state:` of a config, for each store."""
    if request.param == "embedded":
        return {"data_dir": str(tmp_path / "data")}
    if request.param == "redis":
        return {"data_dir": str(tmp_path / "data"), "redis_url": request.getfixturevalue("redis_url")}
    return {"data_dir": str(tmp_path / "data"), "redis_url": request.getfixturevalue("redis_cluster").url,
            "redis_cluster": True}


def test_the_sdk_flow_chat_and_embeddings(tmp_path, start_gateway, store):
    cfg = batch_config(tmp_path)
    cfg["state"] = store
    gw = start_gateway(cfg)
    client = gw.client()
    chats = submit(client, jsonl([line(i) for i in range(200)]), metadata={"job": "eval"})
    embeds = submit(client, jsonl([line(i, EMBEDDINGS) for i in range(50)]), EMBEDDINGS)
    assert chats.status == "validating" and chats.request_counts.total == 200
    validate(chats.model_dump(), "Batch")
    for made, total, obj in ((chats, 200, "chat.completion"), (embeds, 50, "list")):
        done = finished(client, made.id)
        assert done.status == "completed", done
        as_sent = client.with_raw_response.batches.retrieve(made.id).http_response.json()
        validate(as_sent, "Batch")
        assert done.request_counts.total == done.request_counts.completed == total
        assert done.request_counts.failed == 0 and done.error_file_id is None
        assert done.in_progress_at and done.finalizing_at and done.completed_at
        assert float(as_sent["cost_usd"]) > 0 and as_sent["usage"]["input_tokens"] > 0
        out = lines_of(client, done.output_file_id)
        assert [x["custom_id"] for x in out] == [f"r{i}" for i in range(total)]    # input order, once each
        for x in out:
            assert x["error"] is None and x["response"]["status_code"] == 200
            assert x["response"]["body"]["object"] == obj and x["id"].startswith("batch_req_")
            assert x["response"]["request_id"].startswith(made.id)
        output = client.files.retrieve(done.output_file_id)
        assert output.purpose == "batch_output" and output.filename == f"{made.id}_output.jsonl"
    assert client.batches.retrieve(chats.id).metadata == {"job": "eval"}
    listed = client.with_raw_response.batches.list(limit=1).http_response.json()
    validate(listed, "ListBatchesResponse")
    assert [b["id"] for b in listed["data"]] == [embeds.id] and listed["has_more"]
    assert [b.id for b in client.batches.list()] == [embeds.id, chats.id]
    assert list(gw.client("sk-other").batches.list()) == []                 # per key


def test_failed_requests_go_to_the_error_file_in_order(tmp_path, start_gateway):
    gw = start_gateway(batch_config(tmp_path))
    client = gw.client()
    data = [line(0), line(1, body={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}),
            line(2, body={"model": "chat", "messages": "not a list"}), line(3)]
    done = finished(client, submit(client, jsonl(data)).id)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 2)
    assert [x["custom_id"] for x in lines_of(client, done.output_file_id)] == ["r0", "r3"]
    errors = lines_of(client, done.error_file_id)
    assert [x["custom_id"] for x in errors] == ["r1", "r2"]
    assert [x["response"]["status_code"] for x in errors] == [404, 400]
    assert all("error" in x["response"]["body"] for x in errors)


def test_a_keys_rate_limit_is_waited_out_not_recorded(tmp_path, start_gateway):
    cfg = batch_config(tmp_path, latency_ms=30, concurrency=8)
    cfg["auth"]["keys"][0]["limits"] = {"concurrent": 2}
    gw = start_gateway(cfg)
    client = gw.client()
    done = finished(client, submit(client, jsonl([line(i) for i in range(12)])).id)
    assert (done.status, done.request_counts.completed, done.request_counts.failed) == ("completed", 12, 0)


def test_a_batch_leaves_the_key_its_share_of_the_limits(tmp_path, start_gateway, loop):
    """With `concurrent: 4` and key_share 0.5, the batch holds at most 2 of the key's slots: the
    key's own requests, two at once, are still admitted while it runs; with key_share 1 they are not."""
    for share, admitted in ((0.5, True), (1.0, False)):
        # Each request holds its slot 2 s: the batch's are all in flight when the key's own two come.
        cfg = batch_config(tmp_path / str(share), latency_ms=2000, concurrency=8, key_share=share)
        cfg["auth"]["keys"][0]["limits"] = {"concurrent": 4}
        gw = start_gateway(cfg)
        client = gw.client()
        made = submit(client, jsonl([line(i) for i in range(12)]))
        deadline = time.time() + 20
        while client.batches.retrieve(made.id).status != "in_progress":
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(0.3)     # the batch at its most in flight

        async def two_at_once(url: str) -> list[int]:
            async with httpx.AsyncClient(base_url=url, headers={"authorization": "Bearer sk-test"}) as http:
                body = {"model": "chat", "messages": [{"role": "user", "content": "now"}]}
                answers = await asyncio.gather(*(http.post("/v1/chat/completions", json=body) for _ in range(2)))
            return [a.status_code for a in answers]
        statuses = loop.run(two_at_once(gw.url))
        assert (statuses == [200, 200]) is admitted, (share, statuses)
        client.batches.cancel(made.id)


def test_cancel_mid_way_keeps_what_was_answered(tmp_path, start_gateway):
    gw = start_gateway(batch_config(tmp_path, latency_ms=100, concurrency=2))
    client = gw.client()
    made = submit(client, jsonl([line(i) for i in range(100)]))
    deadline = time.time() + 20
    while client.batches.retrieve(made.id).request_counts.completed < 4:
        assert time.time() < deadline
        time.sleep(0.05)
    cancelling = client.batches.cancel(made.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    done = finished(client, made.id)
    assert done.status == "cancelled" and done.cancelled_at and done.cancelling_at
    answered = lines_of(client, done.output_file_id)
    unanswered = lines_of(client, done.error_file_id)
    assert 4 <= len(answered) < 100 and len(answered) == done.request_counts.completed
    assert sorted(x["custom_id"] for x in answered + unanswered) == sorted(f"r{i}" for i in range(100))
    assert {x["error"]["code"] for x in unanswered} == {"batch_cancelled"}
    assert all(x["response"] is None for x in unanswered)
    assert client.batches.cancel(made.id).status == "cancelled"              # once ended, it stays so


def test_an_input_file_deleted_mid_batch_ends_it_with_what_ran(tmp_path, start_gateway):
    gw = start_gateway(batch_config(tmp_path, latency_ms=100, part_lines=2, parts_at_once=1))
    client = gw.client()
    made = client.files.create(file=("in.jsonl", jsonl([line(i) for i in range(30)])), purpose="batch")
    batch = client.batches.create(input_file_id=made.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.time() + 20
    while client.batches.retrieve(batch.id).request_counts.completed < 2:
        assert time.time() < deadline
        time.sleep(0.05)
    client.files.delete(made.id)
    done = finished(client, batch.id)
    assert done.status == "completed" and done.request_counts.total == 30
    answered, failed = lines_of(client, done.output_file_id), lines_of(client, done.error_file_id)
    assert len(answered) >= 2 and len(answered) + len(failed) == 30
    assert {x["error"]["code"] for x in failed} == {"input_file_gone"}


def test_a_batch_past_its_window_expires(tmp_path, start_gateway, monkeypatch):
    monkeypatch.setitem(protocol.WINDOWS, "24h", 1)      # the window, shortened for the test
    gw = start_gateway(batch_config(tmp_path, latency_ms=200, concurrency=1))
    client = gw.client()
    done = finished(client, submit(client, jsonl([line(i) for i in range(40)])).id)
    assert done.status == "expired" and done.expired_at
    answered, unanswered = lines_of(client, done.output_file_id), lines_of(client, done.error_file_id)
    assert len(answered) < 40 and len(answered) + len(unanswered) == 40
    assert {x["error"]["code"] for x in unanswered} == {"batch_expired"}


def test_bad_requests_are_refused_in_openais_shape(tmp_path, start_gateway):
    gw = start_gateway(batch_config(tmp_path))
    client = gw.client()
    made = client.files.create(file=("in.jsonl", jsonl([line(0)])), purpose="batch")
    other = client.files.create(file=("notes.txt", b"hello"), purpose="user_data")
    theirs = gw.client("sk-other").files.create(file=("in.jsonl", jsonl([line(0)])), purpose="batch")
    good = {"input_file_id": made.id, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    with gw.http() as http:
        for body, status, param in [
            ({**good, "endpoint": "/v1/completions"}, 400, "endpoint"),
            ({**good, "endpoint": EMBEDDINGS}, 400, "endpoint"),
            ({**good, "completion_window": "48h"}, 400, "completion_window"),
            ({**good, "input_file_id": None}, 400, "input_file_id"),
            ({**good, "input_file_id": other.id}, 400, "input_file_id"),
            ({**good, "input_file_id": theirs.id}, 404, "input_file_id"),
            ({**good, "input_file_id": "file-nope"}, 404, "input_file_id"),
            ({**good, "metadata": {f"k{i}": "v" for i in range(17)}}, 400, "metadata"),
            ({**good, "metadata": {"k": 1}}, 400, "metadata"),
            ({**good, "output_expires_after": {"anchor": "created_at", "seconds": 10}}, 400,
             "output_expires_after.seconds"),
        ]:
            assert error_of(http.post("/v1/batches", json=body), status)["param"] == param, body
        assert error_of(http.post("/v1/batches", content=b"{nope"), 400)
        assert error_of(http.post("/v1/batches", content=b"x" * (protocol.MAX_BODY + 1)), 413)
        assert error_of(http.get("/v1/batches", params={"limit": 101}), 400)["param"] == "limit"
        assert error_of(http.get("/v1/batches/batch_nope"), 404)["code"] == "not_found"
        assert error_of(http.delete(f"/v1/batches/{'batch_' + '0' * 28}"), 405)
        assert error_of(http.post("/v1/batches/x/other"), 404)
    mine = client.batches.create(**good)
    with gw.http("sk-other") as http:
        assert error_of(http.get(f"/v1/batches/{mine.id}"), 404)            # another key's batch is not there
        assert error_of(http.post(f"/v1/batches/{mine.id}/cancel"), 404)
    with gw.http(None) as http:
        assert error_of(http.get("/v1/batches"), 401)


def test_a_batch_of_videos_makes_videos(tmp_path, start_gateway):
    cfg = batch_config(tmp_path, poll_s=0.05)
    cfg["providers"].append(mock_video("mockv"))
    cfg["models"].append(video_model("mock-video", "mockv"))
    gw = start_gateway(cfg)
    client = gw.client()
    prompts = [orjson.dumps({"custom_id": f"v{i}", "method": "POST", "url": "/v1/videos",
                             "body": {"model": "mock-video", "prompt": f"a boat {i}", "size": "320x180",
                                      "seconds": "1"}}) for i in range(3)]
    done = finished(client, submit(client, jsonl(prompts), "/v1/videos").id)
    assert done.status == "completed" and done.request_counts.completed == 3
    for x in lines_of(client, done.output_file_id):
        video = x["response"]["body"]
        assert video["object"] == "video" and video["status"] == "completed"
        decoded = decode_mp4(client.videos.download_content(video["id"]).read())
        assert (decoded.width, decoded.height) == (320, 180) and decoded.frames >= 1


@pytest.fixture
def hooks(loop):
    """hooks() -> a webhook Receiver on loopback, closed after the test."""
    with closed_after(partial(Receiver, loop)) as make:
        yield make


def test_a_finished_batch_sends_its_webhook(tmp_path, start_gateway, hooks):
    hook = hooks()
    cfg = batch_config(tmp_path)
    cfg["webhooks"] = {"secret": SECRET, "endpoints": [{"url": hook.url, "events": ["batch.completed"]}],
                       "allow_hosts": ["127.0.0.1"]}
    gw = start_gateway(cfg)
    client = gw.client()
    made = submit(client, jsonl([line(i) for i in range(3)]))
    assert finished(client, made.id).status == "completed"
    deadline = time.time() + 10
    while not hook.received:
        assert time.time() < deadline
        time.sleep(0.05)
    event = openai.OpenAI(api_key="unused").webhooks.unwrap(hook.received[0].body, hook.received[0].headers,
                                                            secret=SECRET)
    assert event.type == "batch.completed" and event.data.id == made.id


def test_a_replica_killed_mid_batch_loses_no_request_and_answers_none_twice(tmp_path, redis_url):
    """Two `gateway serve` processes on one redis-server share a batch's parts; one is SIGKILLed
    mid-batch; the other takes over its parts once their leases lapse and finishes the batch."""
    cfg = batch_config(tmp_path, redis_url, latency_ms=40, part_lines=10, concurrency=4, parts_at_once=2)
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ports = [free_port(), free_port()]
    procs = [serve_process(path, port) for port in ports]
    try:
        clients = [openai.OpenAI(base_url=f"http://127.0.0.1:{p}/v1", api_key="sk-test", max_retries=0)
                   for p in ports]
        made = submit(clients[0], jsonl([line(i) for i in range(200)]))
        deadline = time.time() + 30
        while clients[1].batches.retrieve(made.id).request_counts.completed < 40:
            assert time.time() < deadline
            time.sleep(0.05)
        os.kill(procs[0].pid, signal.SIGKILL)
        procs[0].wait()
        done = finished(clients[1], made.id, timeout_s=90)
        assert done.status == "completed", done
        assert (done.request_counts.completed, done.request_counts.failed) == (200, 0)
        out = lines_of(clients[1], done.output_file_id)
        assert [x["custom_id"] for x in out] == [f"r{i}" for i in range(200)]
        assert all(x["response"]["status_code"] == 200 for x in out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


# -- native pass-through: parts handed to the provider's own batch API --------------------

def native_config(tmp_path: Path, provider: dict[str, Any], upstream_model: str, **batches: Any) -> dict[str, Any]:
    cfg = batch_config(tmp_path, part_lines=10, **batches)
    cfg["providers"].append({**provider, "batch": "native", "batch_poll_s": 0.05})
    cfg["models"].append({"name": "big", "kind": "chat",
                          "route": {"targets": [{"provider": provider["name"], "model": upstream_model}]}})
    cfg["prices"] = {f"{provider['name']}/*": {"input_per_mtok": 3.0, "output_per_mtok": 15.0}}
    return cfg


def big_lines(n: int) -> bytes:
    return jsonl([line(i, body={"model": "big", "messages": [{"role": "user", "content": f"hello {i}"}]})
                  for i in range(n)])


def test_a_native_batch_goes_to_anthropics_message_batches(tmp_path, start_gateway, loop):
    from tests.upstreams.anthropic_fake import FakeAnthropic
    with closed_after(partial(FakeAnthropic, loop)) as make:
        fake = make()
        fake.batch.errors = {"r3": 400}
        provider = {"name": "claude", "type": "anthropic", "base_url": fake.url, "api_key": fake.api_key}
        gw = start_gateway(native_config(tmp_path, provider, "claude-sonnet-4-5"))
        client = gw.client()
        done = finished(client, submit(client, big_lines(25)).id)
        assert done.status == "completed" and (done.request_counts.completed, done.request_counts.failed) == (24, 1)
        submitted = [s for s in fake.seen if s.path == "/v1/messages/batches"]
        assert len(submitted) == 3                                   # parts of 10, 10 and 5
        assert sorted(len(s.json["requests"]) for s in submitted) == [5, 10, 10]
        assert submitted[0].json["requests"][0]["params"]["model"] == "claude-sonnet-4-5"
        assert not [s for s in fake.seen if s.path == "/v1/messages"]   # nothing went the normal way
        out = lines_of(client, done.output_file_id)
        assert [x["custom_id"] for x in out] == [f"r{i}" for i in range(25) if i != 3]
        body = out[0]["response"]["body"]
        assert body["object"] == "chat.completion" and body["usage"]["prompt_tokens"] > 0
        errors = lines_of(client, done.error_file_id)
        assert [(x["custom_id"], x["response"]["status_code"]) for x in errors] == [("r3", 400)]
        # At the provider's batch price: half of 3 + 15 per million tokens, in the ledger by key and model.
        from gateway.spend import today
        rows = [r for r in loop.run(gw.runtime.store.ledger.rows(today(), today())) if r.provider == "claude"]
        assert sum(r.requests for r in rows) == 24 and {r.model for r in rows} == {"big"}
        usage = client.with_raw_response.batches.retrieve(done.id).http_response.json()
        full = (rows[0].prompt_tokens * 3 + rows[0].completion_tokens * 15) / 1e6 * sum(
            r.requests for r in rows) / rows[0].requests
        assert abs(float(usage["cost_usd"]) - sum(r.cost_nano for r in rows) / 1e9) < 1e-9
        assert float(usage["cost_usd"]) < full


def test_a_native_batch_goes_to_openais_batch_api_and_cancels_there(tmp_path, start_gateway, fake_openai):
    fake = fake_openai()
    fake.batch.polls = 10_000        # runs until cancelled
    fake.batch.end = "cancelled"
    fake.batch.run = 2
    provider = {"name": "oai", "type": "openai", "base_url": fake.url, "api_key": "sk-up"}
    gw = start_gateway(native_config(tmp_path, provider, "gpt-4o-mini"))
    client = gw.client()
    made = submit(client, big_lines(10))
    deadline = time.time() + 20
    while not [s for s in fake.seen if s.path.endswith("/batches")]:
        assert time.time() < deadline
        time.sleep(0.05)
    assert client.batches.cancel(made.id).status == "cancelling"
    done = finished(client, made.id)
    assert done.status == "cancelled" and done.request_counts.completed == 2
    assert [s for s in fake.seen if s.path.endswith("/cancel")]
    answered, unanswered = lines_of(client, done.output_file_id), lines_of(client, done.error_file_id)
    assert [x["custom_id"] for x in answered] == ["r0", "r1"]
    assert {x["error"]["code"] for x in unanswered} == {"batch_cancelled"} and len(unanswered) == 8


def test_a_batch_of_several_models_is_run_by_the_gateway(tmp_path, start_gateway, fake_openai):
    fake = fake_openai()
    provider = {"name": "oai", "type": "openai", "base_url": fake.url, "api_key": "sk-up"}
    gw = start_gateway(native_config(tmp_path, provider, "gpt-4o-mini"))
    client = gw.client()
    data = jsonl([line(0, body={"model": "big", "messages": [{"role": "user", "content": "a"}]}), line(1)])
    done = finished(client, submit(client, data).id)
    assert done.status == "completed" and done.request_counts.completed == 2
    assert not [s for s in fake.seen if s.path.endswith("/batches")]


@pytest.fixture(scope="module")
def shared(loop, tmp_path_factory):
    """One gateway for the fuzzing below (each start costs ~0.3 s)."""
    gw = Gateway(loop, batch_config(tmp_path_factory.mktemp("shared")))
    yield gw
    gw.close()


_TEXT = st.text(max_size=12)
_VALUES = st.none() | st.booleans() | st.integers(-5, 10**7) | _TEXT | st.lists(_TEXT, max_size=2) | st.dictionaries(
    _TEXT, _TEXT | st.integers(-10**9, 10**9), max_size=20)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(["input_file_id", "endpoint", "completion_window", "metadata",
                                               "output_expires_after", "x"]), _VALUES, max_size=6),
       raw=st.none() | st.binary(max_size=40))
def test_create_requests_of_anything_are_answered_without_a_5xx(shared, fields, raw):
    with shared.http() as http:
        answer = http.post("/v1/batches", content=raw if raw is not None else orjson.dumps(fields))
        assert answer.status_code in (400, 404), answer.text
        error_of(answer, answer.status_code)
        listed = http.get("/v1/batches", params={k: str(v) for k, v in fields.items() if isinstance(v, str)})
        assert listed.status_code in (200, 400), listed.text
