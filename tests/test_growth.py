"""One client cannot grow the gateway without bound: metrics label sets are
capped with an `other` bucket, direct-name targets are kept in a bounded book,
the mock's answers have a size bound (400 past it), and nothing a request does
holds the event loop long enough to delay /healthz by 50 ms."""
from __future__ import annotations

import os
import threading
import time
import uuid

import httpx
import orjson
import pytest

from gateway import metrics, services
from gateway.metrics import OTHER, Counter, Counts, Histogram
from gateway.services import TargetBook
from providers.mock import answers
from providers.options import BreakerConfig
from tests.harness import base_config, chat_model, serve_config
from tests.test_metrics import Scrape


@pytest.fixture
def small_caps(monkeypatch):
    monkeypatch.setattr(metrics, "MAX_LABEL_SETS", 5)
    monkeypatch.setattr(services, "MAX_DIRECT_TARGETS", 4)


# --- the label cap --------------------------------------------------------------------

def test_counter_past_the_cap_counts_under_other(small_caps):
    c = Counter("t_total", "t", ("model", "status"))
    for i in range(5):
        c.inc((f"m{i}", "200"))
    c.inc(("m0", "200"), 2)                   # a kept label set still counts as itself
    for i in range(5, 50):
        c.inc((f"m{i}", "200"))
    assert len(c.values) == 6
    assert c.values[("m0", "200")] == 3
    assert c.values[(OTHER, OTHER)] == 45     # the total is kept: 5 + 2 + 45 counts in all
    assert sum(c.values.values()) == 52


def test_histogram_past_the_cap_observes_under_other(small_caps):
    h = Histogram("t_seconds", "t", ("model",), (0.1, 1.0))
    for i in range(20):
        h.observe((f"m{i}",), 0.5)
    assert len(h.values) == 6
    assert h.values[(OTHER,)] == [0, 15, 0, 7.5]


def test_a_family_without_labels_is_never_capped(small_caps):
    c = Counter("t_total", "t")
    for _ in range(10):
        c.inc()
    assert c.values == {(): 10.0}


def test_the_sum_over_processes_is_capped_too(small_caps):
    counts = Counts()
    counts.counter("t_total", "t", ("model",))
    # Each process kept its own 5 label sets; added up they would be 15.
    snaps = [{"t_total": [[[f"p{p}-m{i}"], 1.0] for i in range(5)]} for p in range(3)]
    (family,) = counts.summed(snaps)
    values = {tuple(s.labels.values()): s.value for s in family.samples}
    assert len(values) == 6 and values[(OTHER,)] == 10 and sum(values.values()) == 15


def test_a_new_label_set_costs_only_a_size_check():
    """The cap is looked at on the first count of a label set only: the hot path stays one dict update."""
    c = Counter("t_total", "t", ("model", "provider", "status"))
    key = ("m", "p", "200")
    c.inc(key)
    n = 200_000
    start = time.perf_counter()
    for _ in range(n):
        c.inc(key)
    per_inc_us = (time.perf_counter() - start) / n * 1e6
    assert per_inc_us < 2, per_inc_us        # ~0.15 µs on a quiet machine; generous for a shared one


# --- the target book --------------------------------------------------------------------

def test_direct_targets_are_bounded_least_recently_used_first(small_caps):
    book, breaker = TargetBook(), BreakerConfig()
    configured = book.get("mock/configured", breaker)
    for i in range(4):
        book.direct(f"mock/d{i}", breaker)
    kept = book.direct("mock/d0", breaker)     # used again: now the most recent
    for i in range(4, 40):
        book.direct(f"mock/d{i}", breaker)
        if i == 4:
            assert book.direct("mock/d0", breaker) is kept
    ids = [t for t, _ in book.items()]
    assert len(ids) == 1 + 4 and "mock/configured" in ids and "mock/d0" not in ids
    assert book.direct("mock/configured", breaker) is configured   # a configured target is never evicted


def test_a_direct_target_later_configured_keeps_what_it_learned(small_caps):
    book, breaker = TargetBook(), BreakerConfig()
    stats = book.direct("mock/x", breaker)
    stats.record_latency(0.5)
    assert book.get("mock/x", breaker) is stats
    assert [t for t, _ in book.items()] == ["mock/x"]     # once, under the configured part


def test_random_direct_names_grow_neither_metrics_nor_the_book(start_gateway, small_caps):
    gw = start_gateway(base_config([{"name": "mock", "type": "mock"}], [chat_model("chat", {"provider": "mock"})]))
    before = sum(metrics.REQUESTS.values.values())      # the registry is the process's: other tests count too
    with gw.http() as http:
        for i in range(30):
            r = http.post("/v1/chat/completions", json={
                "model": f"mock/{uuid.uuid4()}", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            if i % 10 == 0:     # an unknown provider's names make no state at all
                assert http.post("/v1/chat/completions", json={
                    "model": f"nobody/{uuid.uuid4()}", "messages": [{"role": "user", "content": "hi"}]
                }).status_code == 404
        text = http.get("/metrics", headers={"authorization": "Bearer sk-test"}).text
    ids = [t for t, _ in gw.runtime.book.items()]
    assert len(ids) == 1 + 4 and ids[0] == "mock/chat"     # the configured target, then the 4 last direct ones
    assert len(gw.runtime._direct) <= 4         # the memo of direct names is bounded alike
    sets = [labels for name, labels, _ in Scrape(text).samples if name == "gateway_requests_total"]
    assert len(sets) <= 6 and {"model": OTHER, "provider": OTHER, "status": OTHER, "endpoint": OTHER} in sets
    assert sum(labels["model"].startswith("mock/") for labels in sets) <= 5     # of the 30 names sent
    assert sum(metrics.REQUESTS.values.values()) - before == 33     # nothing lost, only folded into `other`


# --- answer sizes -------------------------------------------------------------------

@pytest.fixture
def mock_gateway(start_gateway):
    return start_gateway(base_config(
        [{"name": "mock", "type": "mock"}],
        [chat_model("chat", {"provider": "mock"}),
         {"name": "embed", "kind": "embedding", "route": {"targets": [{"provider": "mock"}]}}]))


@pytest.mark.parametrize("body, bound", [
    ({"input": ["x"] * 200, "dimensions": 65536}, str(answers.MAX_EMBEDDING_DIMENSIONS)),
    ({"input": ["x"] * 200, "dimensions": 4096}, str(answers.MAX_EMBEDDING_VALUES)),
    ({"input": ["x"] * 200, "dimensions": 4096, "encoding_format": "base64"}, str(answers.MAX_EMBEDDING_VALUES)),
    ({"input": ["x"] * 3000}, str(answers.MAX_EMBEDDING_INPUTS)),
    ({"input": [[1, 2]] * 3000}, str(answers.MAX_EMBEDDING_INPUTS)),
])
def test_embeddings_past_the_bound_answer_400_saying_it(mock_gateway, body, bound):
    with mock_gateway.http() as http:
        r = http.post("/v1/embeddings", json={"model": "embed", **body})
    assert r.status_code == 400, r.text[:300]
    err = r.json()["error"]
    assert bound in err["message"] and err["code"] == "answer_too_large" and err["type"] == "invalid_request_error"
    assert len(r.content) < 2000


def test_embeddings_at_the_bound_are_served(mock_gateway):
    with mock_gateway.http() as http:
        r = http.post("/v1/embeddings", json={"model": "embed", "input": ["x"] * 16, "dimensions": 4096})
    assert r.status_code == 200 and len(r.json()["data"]) == 16 and len(r.json()["data"][0]["embedding"]) == 4096


def test_a_chat_answer_past_the_bound_answers_400(mock_gateway):
    props = {f"p{i}": {"type": "string", "enum": ["x" * 200]} for i in range(2000)}
    body = {"model": "chat", "n": 128, "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"properties": props}}}],
            "tool_choice": "required"}
    with mock_gateway.http() as http:
        r = http.post("/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text[:300]
    assert str(answers.MAX_ANSWER_BYTES) in r.json()["error"]["message"]


def test_word_count_in_slices_is_exact():
    for text in ["a b " * 40_000, "word" * 40_000, " x" * 70_000 + "y", "\n".join(["abc"] * 50_000) + "  "]:
        assert answers._word_count(text) == len(text.split())


# --- the event loop stays free ------------------------------------------------------------

# The gateway runs as a `gateway serve` process of its own, so nothing of the test's (its
# clients, the session's other threads and heap) shares its GIL. On a shared machine a
# process can wait for a CPU for 100+ ms whatever it does: a slow /healthz counts only as far
# as the gateway process was busy meanwhile (wall time, capped by its CPU time, all its
# threads), which is what a request holding the loop or the GIL costs.

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK       # utime + stime


def _poll_healthz(url: str, pid: int, stop: threading.Event, worst: list[float]) -> None:
    with httpx.Client(base_url=url) as c:
        c.get("/healthz")       # the connection is made before the measuring starts
        while not stop.is_set():
            wall_0, cpu_0 = time.perf_counter(), _cpu_s(pid)
            assert c.get("/healthz").status_code == 200
            worst.append(min(time.perf_counter() - wall_0, _cpu_s(pid) - cpu_0))
            time.sleep(0.005)


HEAVY = [
    ("/v1/embeddings", {"model": "embed", "input": ["x"] * 200, "dimensions": 65536}),   # was 288 MB
    ("/v1/embeddings", {"model": "embed", "input": ["x y z"] * 16, "dimensions": 4096}),  # the largest served
    ("/v1/embeddings", {"model": "embed", "input": ["x"] * 2048, "dimensions": 32}),
    ("/v1/chat/completions", {"model": "chat", "messages": [{"role": "user", "content": "word " * 3_000_000}]}),
    ("/v1/chat/completions", {"model": "chat", "n": 128, "messages": [{"role": "user", "content": "hi"}],
                              "tools": [{"type": "function", "function": {"name": "f", "parameters": {
                                  "properties": {f"p{i}": {"type": "string"} for i in range(20_000)}}}}]}),
]


def _many(value: bytes, size: int = 15 * 1024 * 1024) -> bytes:
    """A chat body padded to `size` with one value repeated: parse work, not bytes."""
    head = b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}], "metadata": {"x": ['
    return head + b",".join([value] * ((size - len(head)) // (len(value) + 1))) + b"]}}"


MANY_VALUES = [b"[]", b"{}", b'"ab"', b"1.5", b"[[1,2],{}]", b'{"a":"b"}']   # each took 0.2-1.4 s to parse


def test_heavy_requests_do_not_delay_healthz(tmp_path):
    """Each heavy request is sent while /healthz is polled on another connection: no answer
    to it waits on the gateway's own work for more than 100 ms (its CPU time, clock ticks of 10 ms).
    The bodies refused here took 0.2-1.4 s of the loop before the guards. The heaviest one served,
    15 MB of prose, is parsed on the loop: 27-36 ms here, and 70-90 ms seen on a loaded 2-core CI
    machine, hence twice the parse budget (`server.max_json_parse_ms`, 50) as the bound."""
    cfg = base_config([{"name": "mock", "type": "mock"}],
                      [chat_model("chat", {"provider": "mock"}),
                       {"name": "embed", "kind": "embedding", "route": {"targets": [{"provider": "mock"}]}}])
    proc, port = serve_config(tmp_path, cfg)
    url = f"http://127.0.0.1:{port}"
    bodies = [(path, orjson.dumps(body)) for path, body in HEAVY]
    bodies += [("/v1/chat/completions", _many(v)) for v in MANY_VALUES]
    stop, worst = threading.Event(), []
    poller = threading.Thread(target=_poll_healthz, args=(url, proc.pid, stop, worst))
    try:
        with httpx.Client(base_url=url, timeout=60, headers={"authorization": "Bearer sk-test"}) as http:
            poller.start()
            while not worst:
                time.sleep(0.005)
            for path, content in bodies:
                http.post(path, content=content, headers={"content-type": "application/json"})
    finally:
        stop.set()
        poller.join(10)
        proc.terminate()
        proc.wait(10)
    assert worst and max(worst) < 0.1, sorted(worst)[-5:]


@pytest.mark.parametrize("value", MANY_VALUES)
def test_a_body_of_many_values_answers_413_before_parsing(mock_gateway, value):
    for path in ("/v1/chat/completions", "/v1/embeddings"):
        r = mock_gateway.http().post(path, content=_many(value, 8 * 1024 * 1024),
                                     headers={"content-type": "application/json"})
        assert r.status_code == 413, r.text
        error = r.json()["error"]
        assert error["code"] == "request_too_large" and "too many JSON values" in error["message"]


def test_a_large_prompt_of_code_is_served(mock_gateway):
    """Braces, commas and quotes inside strings over-count only a little: a
    prompt of ~1M tokens of code (this project's own) is far under the budget."""
    from pathlib import Path

    from gateway.protocol import parse_ns
    sources = "".join(p.read_text() for p in sorted(Path(__file__).parents[1].glob("gateway/**/*.py")))
    code = (sources * (4_000_000 // len(sources) + 1))[:4_000_000]
    body = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": code}], "max_tokens": 1})
    assert parse_ns(body) < 25e6, parse_ns(body)
    r = mock_gateway.http().post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
