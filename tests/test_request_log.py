"""The request log end to end: a real gateway (embedded, and on a real
redis-server), the official openai SDK as the client, and the admin API
reading the records back: one per request with its fields and each upstream
attempt, filters and pages, prompts only when asked for, pruning, the
Overview's stats, and nothing lost at shutdown."""
from __future__ import annotations

import time
from collections import deque
from urllib.parse import quote

import openai
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.admin.requests import parse_filter
from gateway.config import ConfigError, parse
from gateway.errors import ApiError
from gateway.metrics import REQUEST_LOG_DROPPED
from tests.harness import Gateway, base_config, chat_model
from tests.upstreams.openai_fake import recorded

MSG = [{"role": "user", "content": "hello there"}]
PRICES = {"paid/*": {"input_per_mtok": 1000, "output_per_mtok": 2000}, "cheap/*": {"input_per_mtok": 1,
                                                                                  "output_per_mtok": 1}}


@pytest.fixture(params=["embedded", "redis"])
def state(request, tmp_path):
    """The `state:` section of a gateway on each store."""
    if request.param == "embedded":
        return {"data_dir": str(tmp_path)}
    return {"data_dir": str(tmp_path), "redis_url": request.getfixturevalue("redis_url")}


def config(state, prompts=False, **requests):
    cfg = base_config([{"name": "paid", "type": "mock"}, {"name": "cheap", "type": "mock"},
                       {"name": "broken", "type": "mock", "fail_rate": 1.0}],
                      [chat_model("m", {"provider": "paid"}), chat_model("c", {"provider": "cheap"}),
                       chat_model("failover", {"provider": "broken"}, {"provider": "cheap"}),
                       chat_model("down", {"provider": "broken"}, retries=1),
                       {"name": "e", "kind": "embedding", "route": {"targets": [{"provider": "paid"}]}}],
                      prices=PRICES, state=dict(state),
                      logging={"prompts": prompts, "requests": {"flush_s": 0.05, **requests}})
    cfg["auth"]["admin_key"] = "sk-admin"
    cfg["auth"]["keys"] += [{"name": "other", "key": "sk-other"}, {"name": "tiny", "key": "sk-tiny",
                                                                     "limits": {"rpm": 1}}]
    return cfg


def listed(gw, **query):
    r = gw.http("sk-admin").get("/admin/requests", params=query)
    assert r.status_code == 200, r.text
    return r.json()


def record(gw, request_id):
    r = gw.http("sk-admin").get(f"/admin/requests/{quote(request_id, safe='')}")
    assert r.status_code == 200, r.text
    return r.json()


def test_a_record_per_request_with_its_fields(start_gateway, state):
    gw = start_gateway(config(state))
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    usage = raw.parse().usage
    r = record(gw, raw.headers["x-request-id"])
    assert {k: r[k] for k in ("object", "key", "endpoint", "model", "provider", "status", "error", "attempts",
                              "stream", "cache_hit", "tokens_in", "tokens_out")} == {
        "object": "request", "key": "test", "endpoint": "chat", "model": "m", "provider": "paid", "status": 200,
        "error": None, "attempts": 1, "stream": False, "cache_hit": False,
        "tokens_in": usage.prompt_tokens, "tokens_out": usage.completion_tokens}
    assert r["key_id"].startswith("key_") and "sk-test" not in str(r)
    assert r["cost_usd"] == pytest.approx(float(raw.headers["x-gateway-cost-usd"]))
    assert r["overhead_ms"] == pytest.approx(float(raw.headers["x-gateway-overhead-ms"]))
    assert r["latency_ms"] >= r["overhead_ms"] > 0
    assert abs(r["time_ms"] / 1000 - time.time()) < 30
    assert r["headers"]["x-gateway-provider"] == "paid" and r["headers"]["x-request-id"] == r["id"]
    assert r["headers"]["x-gateway-cost-usd"] == raw.headers["x-gateway-cost-usd"]
    assert "prompt" not in r and "answer" not in r
    [attempt] = r["attempt_log"]
    assert {k: attempt[k] for k in ("provider", "model", "status", "error")} == {
        "provider": "paid", "model": "m", "status": 200, "error": None}
    assert 0 < attempt["ms"] < r["latency_ms"]
    gw.client().embeddings.create(model="e", input="one two three")
    newest = listed(gw, limit=1)["data"][0]
    assert (newest["endpoint"], newest["model"], newest["tokens_in"]) == ("embeddings", "e", 3)
    assert "headers" not in newest and "attempt_log" not in newest     # a list shows no details


def test_failures_are_recorded_with_their_code_and_attempts(start_gateway, state):
    gw = start_gateway(config(state))
    raw = gw.client().chat.completions.with_raw_response.create(model="failover", messages=MSG)
    r = record(gw, raw.headers["x-request-id"])
    assert (r["status"], r["provider"], r["attempts"], r["error"]) == (200, "cheap", 2, None)
    assert [(a["provider"], a["status"]) for a in r["attempt_log"]] == [("broken", 503), ("cheap", 200)]

    with pytest.raises(openai.APIStatusError) as down:
        gw.client().chat.completions.create(model="down", messages=MSG)
    r = record(gw, down.value.response.headers["x-request-id"])
    assert (r["status"], r["attempts"], r["model"]) == (down.value.status_code, 2, "down") and r["status"] >= 500
    assert r["error"] == down.value.body["code"] and r["error"]
    assert [a["provider"] for a in r["attempt_log"]] == ["broken", "broken"]

    tiny = gw.client("sk-tiny")
    tiny.chat.completions.create(model="c", messages=MSG)
    with pytest.raises(openai.RateLimitError) as limited:
        tiny.chat.completions.create(model="c", messages=MSG)
    r = record(gw, limited.value.response.headers["x-request-id"])
    assert (r["status"], r["error"], r["key"], r["attempts"], r["tokens_in"]) == (429, "rate_limit_exceeded",
                                                                                   "tiny", 0, 0)
    assert r["attempt_log"] == []      # refused before any upstream was tried
    assert "retry-after" in r["headers"]

    bad = gw.http().post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400
    r = record(gw, bad.headers["x-request-id"])
    assert (r["status"], r["error"], r["model"]) == (400, bad.json()["error"]["code"] or bad.json()["error"]["type"],
                                                      "")
    nobody = gw.http("sk-wrong").post("/v1/chat/completions", json={"model": "m", "messages": MSG})
    r = record(gw, nobody.headers["x-request-id"])
    assert (r["status"], r["error"], r["key"], r["key_id"]) == (401, "invalid_api_key", "", "")


def test_each_attempt_with_its_target_outcome_and_time(start_gateway, fake_openai, state):
    """Real upstreams on loopback: one answering 429 (its message quoting the gateway's key, as some do),
    then 500, then too slowly; each attempt kept with its provider, upstream model, the upstream's status
    and the failure's code, and never a message."""
    a, b = fake_openai("a"), fake_openai("b")
    secret = "sk-upstream-a-0123456789abcdef"
    a.fail(429, orjson.dumps({"error": {"message": f"Rate limit reached for key {secret}.", "type": "requests",
                                        "param": None, "code": "rate_limit_exceeded"}}))
    cfg = config(state)
    cfg["providers"] += [{"name": "a", "type": "openai_compatible", "base_url": a.url, "api_key": secret},
                         {"name": "b", "type": "openai_compatible", "base_url": b.url, "api_key": "sk-b-key"}]
    cfg["models"].append(chat_model("over", {"provider": "a", "model": "gpt-a"}, {"provider": "b", "model": "gpt-b"},
                                    retries=1, attempt_timeout_s=0.5))
    cfg["breaker"] = {"failures": 1000, "cooldown_s": 30}       # every attempt goes to `a` first

    def attempts(r):
        assert all(x["ms"] > 0 for x in r["attempt_log"]) and secret not in str(r)
        return [(x["provider"], x["model"], x["status"], x["error"]) for x in r["attempt_log"]]

    gw = start_gateway(cfg)
    raw = gw.client().chat.completions.with_raw_response.create(model="over", messages=MSG)
    r = record(gw, raw.headers["x-request-id"])
    assert (r["status"], r["provider"], r["attempts"]) == (200, "b", 2)
    assert attempts(r) == [("a", "gpt-a", 429, "rate_limit_exceeded"), ("b", "gpt-b", 200, None)]
    assert sum(x["ms"] for x in r["attempt_log"]) < r["latency_ms"]

    b.fail(500, recorded("error_500.json"))
    with pytest.raises(openai.APIStatusError) as down:
        gw.client().chat.completions.create(model="over", messages=MSG)
    r = record(gw, down.value.response.headers["x-request-id"])
    assert (r["status"], r["provider"], r["attempts"]) == (down.value.status_code, "", 2)
    assert attempts(r) == [("a", "gpt-a", 429, "rate_limit_exceeded"), ("b", "gpt-b", 500, "upstream_error")]

    a.ok(delay_s=5)
    b.ok()
    raw = gw.client().chat.completions.with_raw_response.create(model="over", messages=MSG)
    r = record(gw, raw.headers["x-request-id"])
    assert attempts(r) == [("a", "gpt-a", None, "upstream_timeout"), ("b", "gpt-b", 200, None)]
    assert r["attempt_log"][0]["ms"] >= 450


def test_streams_are_recorded_without_their_answer(start_gateway, state):
    gw = start_gateway(config(state, prompts=True))
    with gw.client().chat.completions.with_streaming_response.create(model="m", messages=MSG, stream=True) as s:
        request_id = s.headers["x-request-id"]
        list(s.iter_lines())
    r = record(gw, request_id)
    assert (r["stream"], r["status"], r["tokens_out"], r["provider"]) == (True, 200, 16, "paid")
    assert "hello there" in r["prompt"] and "answer" not in r


def test_prompts_and_answers_only_with_logging_prompts(start_gateway, state):
    quiet = start_gateway(config(state))
    raw = quiet.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    r = record(quiet, raw.headers["x-request-id"])
    assert "prompt" not in r and "answer" not in r
    quiet.close()

    loud = start_gateway(config(state, prompts=True))
    raw = loud.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    r = record(loud, raw.headers["x-request-id"])
    assert '"hello there"' in r["prompt"] and '"chat.completion"' in r["answer"]
    long = [{"role": "user", "content": "x" * 40_000}]
    raw = loud.client().chat.completions.with_raw_response.create(model="m", messages=long)
    r = record(loud, raw.headers["x-request-id"])
    assert r["prompt"].endswith("more bytes]") and len(r["prompt"]) < 33_000


def test_filters_and_pages(start_gateway, state):
    gw = start_gateway(config(state))
    t0 = time.time()
    made = []
    for key, model in [("sk-test", "m"), ("sk-other", "m"), ("sk-test", "c"), ("sk-other", "c"), ("sk-test", "m")]:
        made.append(gw.client(key).chat.completions.with_raw_response.create(
            model=model, messages=MSG).headers["x-request-id"])
    assert gw.http("sk-wrong").post("/v1/chat/completions", json={"model": "m"}).status_code == 401
    ids = [r["id"] for r in listed(gw, limit=500)["data"]]
    assert ids[1:] == made[::-1]
    assert [r["id"] for r in listed(gw, key="other")["data"]] == [made[3], made[1]]
    key_id = listed(gw, key="other")["data"][0]["key_id"]
    assert [r["id"] for r in listed(gw, key=key_id)["data"]] == [made[3], made[1]]
    assert [r["id"] for r in listed(gw, model="c", provider="cheap")["data"]] == [made[3], made[2]]
    assert [r["status"] for r in listed(gw, status="4xx")["data"]] == [401]
    assert len(listed(gw, status="200")["data"]) == 5
    assert len(listed(gw, since=str(t0 - 1), until=str(time.time() + 1))["data"]) == 6
    assert listed(gw, until=str(t0 - 60))["data"] == []
    paged, before = [], None
    while True:
        page = listed(gw, limit=2, **({"before": before} if before else {}))
        paged += [r["id"] for r in page["data"]]
        before = page["next"]
        if before is None:
            break
        assert page["has_more"]
    assert paged == ids


@pytest.mark.parametrize("query,param", [({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"),
                                         ({"limit": "ten"}, "limit"), ({"status": "6xx"}, "status"),
                                         ({"status": "20"}, "status"), ({"since": "yesterday"}, "since"),
                                         ({"since": "200", "until": "100"}, "since"), ({"until": "nan"}, "until"),
                                         ({"key": "nobody"}, "key"), ({"before": "12;34"}, "before"),
                                         ({"before": "1-2-3-4"}, "before"), ({"model": "m" * 300}, "model"),
                                         ({"colour": "red"}, "colour")])
def test_bad_queries_are_400(start_gateway, tmp_path, query, param):
    gw = start_gateway(config({"data_dir": str(tmp_path)}))
    r = gw.http("sk-admin").get("/admin/requests", params=query)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"


def test_admin_key_required_and_unknown_ids_404(start_gateway, tmp_path):
    gw = start_gateway(config({"data_dir": str(tmp_path)}))
    for path in ("/admin/requests", "/admin/requests/req_1", "/admin/stats"):
        assert gw.http("sk-test").get(path).status_code == 401
    r = gw.http("sk-admin").get("/admin/requests/req_nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "request_not_found"


def test_stats_for_the_overview(start_gateway, state):
    gw = start_gateway(config(state))
    costs = []
    for model in ("m", "m", "c"):
        costs.append(float(gw.client().chat.completions.with_raw_response.create(
            model=model, messages=MSG).headers["x-gateway-cost-usd"]))
    with pytest.raises(openai.APIStatusError):
        gw.client().chat.completions.create(model="down", messages=MSG)
    admin = gw.http("sk-admin")
    for name, bucket_s, count in [("hour", 60, 60), ("day", 900, 96), ("month", 86_400, 30)]:
        r = admin.get("/admin/stats", params={"range": name})
        assert r.status_code == 200, r.text
        s = r.json()
        assert (s["range"], s["bucket_s"], len(s["buckets"])) == (name, bucket_s, count)
        assert (s["totals"]["requests"], s["totals"]["errors"], s["totals"]["server_errors"]) == (4, 1, 1)
        assert s["totals"]["cost_usd"] == pytest.approx(sum(costs))
        assert s["buckets"][-1]["start_ms"] <= time.time() * 1000 < s["until_ms"]
        assert sum(b["requests"] for b in s["buckets"]) == 4
        assert s["totals"]["latency_ms"]["p50"] > 0 and s["totals"]["overhead_ms"]["p99"] > 0
        groups = {(g["model"], g["provider"]): g["requests"] for g in s["models"]}
        assert groups == {("m", "paid"): 2, ("c", "cheap"): 1, ("down", ""): 1}
        assert s["spend"]["today_usd"] == pytest.approx(sum(costs)) == s["spend"]["month_usd"]
    only = admin.get("/admin/stats", params={"range": "hour", "model": "m"}).json()
    assert only["totals"]["requests"] == 2 and only["spend"]["today_usd"] == pytest.approx(sum(costs[:2]))
    assert admin.get("/admin/stats", params={"range": "week"}).json()["error"]["param"] == "range"


def test_nothing_is_lost_at_shutdown(loop, state):
    cfg = config(state, flush_s=60)         # no timed flush comes before the close
    first = Gateway(loop, cfg)
    made = [first.client().chat.completions.with_raw_response.create(
        model="m", messages=MSG).headers["x-request-id"] for _ in range(3)]
    first.close()
    second = Gateway(loop, cfg)
    try:
        assert [r["id"] for r in listed(second)["data"]] == made[::-1]
    finally:
        second.close()


def test_records_wait_out_a_redis_outage(start_gateway, tmp_path):
    from tests.redis_server import RedisServer
    redis = RedisServer()
    try:
        gw = start_gateway(config({"data_dir": str(tmp_path), "redis_url": redis.url}))
        redis.kill()
        made = [gw.client().chat.completions.with_raw_response.create(     # admitted: on_redis_error is open
            model="m", messages=MSG).headers["x-request-id"] for _ in range(3)]
        time.sleep(0.3)         # flushes meanwhile fail: the records are kept
        down = gw.http("sk-admin").get("/admin/requests")
        assert down.status_code == 503 and down.json()["error"]["code"] == "store_unavailable"
        redis.start()
        deadline = time.monotonic() + 10
        while True:
            r = gw.http("sk-admin").get("/admin/requests")
            if r.status_code == 200 and [x["id"] for x in r.json()["data"]] == made[::-1]:
                break
            assert time.monotonic() < deadline, r.text
            time.sleep(0.1)
    finally:
        redis.close()


def test_the_size_cap_and_retention_prune(start_gateway, state, loop):
    gw = start_gateway(config(state, max_rows=3))
    for _ in range(5):
        gw.client().chat.completions.create(model="c", messages=MSG)
    request_log = gw.app.services.request_log
    loop.run(request_log.flush())
    assert loop.run(request_log.prune()) == 2
    assert len(listed(gw)["data"]) == 3


def test_a_full_log_drops_its_oldest_and_counts_them(start_gateway, tmp_path, loop):
    gw = start_gateway(config({"data_dir": str(tmp_path)}))
    request_log = gw.app.services.request_log

    async def hold() -> None:       # as if the store stopped taking records: none leave the process
        # Stopped as the log stops itself: a cancel can be lost in wait_for on Python 3.11 (its timer
        # firing at the same moment), and the timer then flushes what this test counts.
        request_log._stopping.set()
        await request_log._task
        request_log.most, request_log.pending = 2, deque(maxlen=2)
    loop.run(hold())
    before = REQUEST_LOG_DROPPED.values.get((), 0.0)
    made = [gw.client().chat.completions.with_raw_response.create(
        model="c", messages=MSG).headers["x-request-id"] for _ in range(5)]
    # A record is added as its request ends, which may be just after the client has its answer.
    deadline = time.monotonic() + 5
    while REQUEST_LOG_DROPPED.values[()] - before < 3:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert REQUEST_LOG_DROPPED.values[()] - before == 3
    assert [r["id"] for r in listed(gw)["data"]] == made[:2:-1]
    assert "gateway_request_log_dropped_total" in gw.http(None).get("/metrics").text


def test_off_means_no_records(start_gateway, tmp_path):
    gw = start_gateway(config({"data_dir": str(tmp_path)}, enabled=False))
    gw.client().chat.completions.create(model="m", messages=MSG)
    assert listed(gw)["data"] == []


@pytest.mark.parametrize("bad", [{"keep_days": 0}, {"keep_days": 366}, {"max_rows": 0}, {"flush_s": 0},
                                 {"flush_s": 61}, {"size": 3}])
def test_config_bounds(bad):
    with pytest.raises(ConfigError) as e:
        parse(f"logging: {{requests: {bad}}}".replace("'", ""))
    assert "logging.requests." in str(e.value)


# --- the query parser: never a 5xx --------------------------------------------------------

_PARAM = st.sampled_from(["key", "model", "provider", "status", "since", "until", "limit", "before", "x", ""])
_VALUE = (st.text(max_size=40) | st.sampled_from(["5xx", "4XX", "200", "1e400", "-1", "nan", "inf", "0", "500",
                                                  "2026-01-01", "2026-13-40T99:00", "20260101-1-1", "1-1",
                                                  "test", "key_00000000000000aa", "9" * 30])
          | st.integers(-10**20, 10**20).map(str) | st.floats().map(str))
QUERIES = st.dictionaries(_PARAM, _VALUE, max_size=6)


@settings(max_examples=400, deadline=None)
@given(QUERIES)
def test_the_parser_answers_a_filter_or_a_400(query):
    try:
        f = parse_filter({k: v for k, v in query.items() if k not in ("x", "")}, {"key_00000000000000aa": "test"})
    except ApiError as e:
        assert e.status == 400 and e.param in query
        return
    assert 1 <= f.limit <= 500


@pytest.fixture(scope="module")
def shared_gateway(loop, tmp_path_factory):
    gw = Gateway(loop, config({"data_dir": str(tmp_path_factory.mktemp("fuzz"))}))
    yield gw
    gw.close()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(QUERIES)
def test_the_admin_api_never_answers_5xx(shared_gateway, query):
    with shared_gateway.http("sk-admin") as http:
        r = http.get("/admin/requests", params=query)
    assert r.status_code in (200, 400), r.text
    assert "error" in r.json() if r.status_code == 400 else "data" in r.json()

