"""The operations artefacts in deploy/: the Grafana dashboard, the Prometheus
alerting rules and example config. promtool checks and unit-tests the rules;
then a real Prometheus scrapes a running gateway that has served chat, streams,
a 429, a cache hit, a failover, an open circuit and a video job with a webhook,
and every query of the dashboard must return at least one series."""
from __future__ import annotations

import json
import re
import time
from functools import partial

import openai
import orjson
import pytest
import yaml

from tests.harness import base_config, chat_model, closed_after
from tests.prometheus import DEPLOY, Prometheus, missing_binaries, promtool
from tests.video.conftest import SECRET, Receiver, mock_video, video_model

DASHBOARD = DEPLOY / "grafana" / "gateway.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERTS_TEST = DEPLOY / "prometheus" / "alerts_test.yml"
PROM_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"

# The metric names the gateway exports (gateway/metrics.py); histograms by their base name.
METRICS = {
    "gateway_requests_total", "gateway_tokens_total", "gateway_cost_usd_total", "gateway_rate_limited_total",
    "gateway_failovers_total", "gateway_retries_total", "gateway_cache_hits_total", "gateway_cache_misses_total",
    "gateway_video_jobs_total", "gateway_webhook_deliveries_total", "gateway_state_store_errors_total",
    "gateway_batches_total", "gateway_batch_requests_total",
    "gateway_unpriced_requests_total", "gateway_request_log_dropped_total",
    "gateway_request_duration_seconds", "gateway_overhead_seconds", "gateway_time_to_first_token_seconds",
    "gateway_video_generation_seconds",
    "gateway_circuit_state", "gateway_target_in_flight", "gateway_video_queue_depth",
    "gateway_video_oldest_job_age_seconds", "gateway_video_workers", "gateway_budget_used_ratio",
    "gateway_config_version", "gateway_build_info",
}
# Exported but not on the dashboard: unpriced requests are a config fault, seen in /metrics and the README;
# request log drops are a store outage's echo, which the state store panel shows already.
NOT_ON_DASHBOARD = {"gateway_unpriced_requests_total", "gateway_request_log_dropped_total"}

needs_prometheus = pytest.mark.skipif(
    bool(missing_binaries()),
    reason=f"{' and '.join(missing_binaries())} not on PATH: `apt-get install prometheus` (Debian; .ci/run does it)")

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels(dash: dict) -> list[dict]:
    out = []
    for p in dash["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))       # a collapsed row holds its panels
    return out


def dashboard_queries(dash: dict) -> list[tuple[str, str]]:
    """(panel title, expr) for every query target of the dashboard."""
    return [(p["title"], t["expr"]) for p in panels(dash) if p["type"] != "row" for t in p.get("targets", [])]


def concrete(expr: str, model: str = ".*") -> str:
    """What Grafana would send: template variables replaced."""
    for var, value in (("${model}", model), ("$model", model), ("$__rate_interval", "1m"),
                       ("$__interval", "30s"), ("$__range", "5m")):
        expr = expr.replace(var, value)
    return expr


def metric_names(expr: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", m) for m in re.findall(r"\bgateway_[a-z_]+", expr)}


def alert_rules() -> list[dict]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


# --- shape, without Prometheus -------------------------------------------------------------------------------

def test_dashboard_is_a_grafana_dashboard_over_a_prometheus_datasource_variable():
    dash = dashboard()
    assert 36 <= dash["schemaVersion"] <= 41 and dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    model = variables["model"]
    assert model["type"] == "query" and model["includeAll"] and model["allValue"] == ".*"
    assert "label_values(gateway_requests_total, model)" in json.dumps(model["query"])

    cells = {}                                          # no two panels on the same grid cell
    for p in panels(dash):
        g = p["gridPos"]
        for cell in ((x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])):
            assert cell not in cells, f"{p['title']} overlaps {cells[cell]}"
            cells[cell] = p["title"]
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids))
    for p in panels(dash):
        assert set(p["gridPos"]) == {"h", "w", "x", "y"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] == "row":
            continue
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert p["targets"], p["title"]
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs)), p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}" and t["expr"].strip(), p["title"]


def test_dashboard_and_alerts_use_only_the_exported_metric_names():
    used = set()
    for title, expr in dashboard_queries(dashboard()):
        names = metric_names(expr)
        assert names, f"{title}: no gateway metric in {expr}"
        assert names <= METRICS, f"{title}: unknown metric {names - METRICS}"
        used |= names
    assert used == METRICS - NOT_ON_DASHBOARD, f"not on the dashboard: {METRICS - NOT_ON_DASHBOARD - used}"
    for rule in alert_rules():
        assert metric_names(rule["expr"]) <= METRICS, rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]


def test_the_metric_names_are_the_ones_the_gateway_counts():
    from gateway.metrics import REGISTRY
    counted = set(REGISTRY.families)               # counters and histograms; gauges are made per scrape
    assert counted <= METRICS, f"counted but unknown here: {counted - METRICS}"
    assert {"gateway_requests_total", "gateway_request_duration_seconds"} <= counted


def test_dashboard_covers_each_panel_asked_for():
    titles = " | ".join(p["title"].lower() for p in panels(dashboard()))
    for words in ["requests per second", "error rate", "request duration", "overhead", "first token",
                  "tokens per second", "cost per hour", "rate-limited", "failovers and retries", "cache hit",
                  "circuit state", "in-flight", "video jobs", "queue depth", "oldest", "generation time",
                  "workers", "budget", "webhook", "state store", "config version"]:
        assert words in titles, words


# --- promtool ------------------------------------------------------------------------------------------------

@needs_prometheus
def test_promtool_checks_the_rules_and_the_example_config(tmp_path):
    r = promtool("check", "rules", str(ALERTS))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout
    # The example config as shipped (rule_files resolve next to it)...
    r = promtool("check", "config", str(PROM_CONFIG))
    assert r.returncode == 0, r.stdout + r.stderr
    # ...and as a copy elsewhere pointing at the real rules file.
    config = yaml.safe_load(PROM_CONFIG.read_text())
    assert config["rule_files"] == ["alerts.yml"]
    job, = config["scrape_configs"]
    assert job["job_name"] == "gateway" and job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"        # the gateway's scrape token (server.metrics)
    config["rule_files"] = [str(ALERTS)]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    r = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 rule files found" in r.stdout


@needs_prometheus
def test_promtool_unit_tests_of_the_alerts_pass():
    r = promtool("test", "rules", ALERTS_TEST.name, cwd=ALERTS_TEST.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    tested = set(re.findall(r"alertname: (\w+)", ALERTS_TEST.read_text()))
    assert {"GatewayCircuitOpen", "GatewayHighErrorRate"} <= tested
    assert tested == {r["alert"] for r in alert_rules()}       # every alert has a unit test


# --- a real Prometheus scraping a real gateway ---------------------------------------------------------------

MSG = [{"role": "user", "content": "hello there"}]
SCRAPE_TOKEN = "scrape-token-for-prometheus"


def _gateway_config(hook_url: str) -> dict:
    cfg = base_config(
        [{"name": "mock", "type": "mock"},
         # fails every call; its circuit opens at the first failure and stays open
         {"name": "broken", "type": "mock", "fail_rate": 1.0, "breaker": {"failures": 1, "cooldown_s": 600}},
         # fails every call but never opens: retries land on it
         {"name": "flap", "type": "mock", "fail_rate": 1.0, "breaker": {"failures": 10_000, "cooldown_s": 1}},
         mock_video("mockv")],
        [chat_model("chat", {"provider": "mock"}, cache={"ttl_s": 600}),
         chat_model("plain", {"provider": "mock"}),
         chat_model("flaky", {"provider": "broken"}, {"provider": "mock"}),
         chat_model("down", {"provider": "flap"}, retries=2),
         video_model("mock-video", "mockv")],
        prices={"mock/*": {"input_per_mtok": 1000, "output_per_mtok": 2000},
                "mockv/*": {"per_second": 0.01}},
        videos={"poll_after_ms": 50, "job_lease_s": 2},
        webhooks={"secret": SECRET, "endpoints": [{"url": hook_url}], "allow_hosts": ["127.0.0.1"],
                  "backoff_s": 0.1})
    cfg["auth"]["keys"][0]["budget"] = {"usd": 100, "period": "month"}
    cfg["auth"]["keys"].append({"name": "limited", "key": "sk-limited", "models": ["*"], "limits": {"rpm": 1}})
    cfg["server"] = {**cfg.get("server", {}), "metrics": {"auth": "token", "token": SCRAPE_TOKEN}}
    return cfg


def _traffic(gw) -> None:
    c = gw.client()
    for _ in range(2):                                           # a cache miss, then a hit
        c.chat.completions.create(model="chat", messages=MSG)
    c.chat.completions.create(model="plain", messages=MSG, max_tokens=20)
    for _ in c.chat.completions.create(model="plain", messages=MSG, stream=True,
                                       stream_options={"include_usage": True}):
        pass
    c.chat.completions.create(model="flaky", messages=MSG)     # fails over from broken (whose circuit opens)
    with pytest.raises(openai.APIStatusError) as e:
        c.chat.completions.create(model="down", messages=MSG)   # three attempts on flap, then a 5xx
    assert e.value.status_code >= 500
    limited = gw.client(key="sk-limited")
    with pytest.raises(openai.RateLimitError):
        for _ in range(2):
            limited.chat.completions.create(model="plain", messages=MSG)
    video = c.videos.create_and_poll(model="mock-video", prompt="a lighthouse", size="320x180", seconds="1",
                                     poll_interval_ms=50)
    assert video.status == "completed"
    requests = b"".join(orjson.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                                      "body": {"model": "plain", "messages": MSG}}) + b"\n" for i in range(2))
    made = c.files.create(file=("in.jsonl", requests), purpose="batch")
    batch = c.batches.create(input_file_id=made.id, endpoint="/v1/chat/completions", completion_window="24h")
    _wait_for(lambda: c.batches.retrieve(batch.id).status == "completed")


def _wait_for(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def prometheus():
    """prometheus(targets, rule_files) -> a running Prometheus, stopped after the test."""
    with closed_after(Prometheus) as start:
        yield start


@pytest.fixture
def hooks(loop):
    """hooks(fail_first=0) -> a webhook Receiver on loopback, closed after the test."""
    with closed_after(partial(Receiver, loop)) as make:
        yield make


@pytest.fixture
def own_redis():
    """own_redis() -> a RedisServer of this test's own (it may kill it), closed after the test."""
    from tests.redis_server import RedisServer
    with closed_after(RedisServer) as start:
        yield start


@needs_prometheus
def test_prometheus_scraping_a_gateway_answers_every_dashboard_query(start_gateway, hooks, prometheus, own_redis):
    hook = hooks(fail_first=1)                         # the first delivery is retried
    gw = start_gateway(_gateway_config(hook.url))
    # A second gateway on a Redis of its own, which dies: its requests are admitted (fail-open) and
    # counted as state store errors.
    redis = own_redis()
    on_redis = start_gateway(base_config(
        [{"name": "mock", "type": "mock"}], [chat_model("plain", {"provider": "mock"})],
        state={"redis_url": redis.url, "on_redis_error": "open", "redis_timeout_ms": 100},
        server={"metrics": {"auth": "token", "token": SCRAPE_TOKEN}}))
    on_redis.client().chat.completions.create(model="plain", messages=MSG)
    assert gw.http(key=None).get("/metrics").status_code == 401       # the token is needed, even on loopback
    prom = prometheus([f"127.0.0.1:{gw.port}", f"127.0.0.1:{on_redis.port}"], rule_files=[ALERTS],
                      token=SCRAPE_TOKEN)
    prom.wait_scrapes(1)
    redis.kill()

    # Two rounds of traffic with scrapes between, so rate() sees counters move.
    for round_ in (1, 2):
        _traffic(gw)
        on_redis.client().chat.completions.create(model="plain", messages=MSG)
        _wait_for(lambda round_=round_: len(hook.received) >= 1 + round_)
        prom.wait_scrapes(2)

    assert [s["value"][1] for s in prom.query('up{job="gateway"}')] == ["1", "1"]
    report, empty = [], []
    for title, expr in dashboard_queries(dashboard()):
        try:
            series = prom.query(concrete(expr))
            if "$model" in expr:
                prom.query(concrete(expr, "chat|plain"))      # one or more models picked: still a valid query
        except AssertionError as error:                        # a query Prometheus refuses
            empty.append(f"{title}: {error}")
            continue
        values = [s["value"][1] for s in series]
        report.append(f"{len(series):3d} series {values[:3]!s:40.40} {title}: {concrete(expr)[:110]}")
        # Live workers are exported only for providers whose jobs wait for `gateway worker`
        # processes (tests/video/test_diffusers.py runs those); this gateway has none.
        if not series and "gateway_video_workers" not in expr:
            empty.append(f"{title}: {concrete(expr)}")
    print("\n".join(report))
    assert not empty, "dashboard queries with no series, or refused:\n" + "\n".join(empty)

    # Every alert rule evaluates without error against the real metrics...
    rules = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
    assert {r["name"] for r in rules} == {r["alert"] for r in alert_rules()}
    bad = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not bad, bad
    # ...and the open circuit and the failing model are already pending (each has a `for`).
    active = {(a["labels"]["alertname"], a["labels"].get("target") or a["labels"].get("model"))
              for a in prom.api("alerts")["alerts"]}
    assert any(name == "GatewayCircuitOpen" and "broken" in (what or "") for name, what in active), active
    assert ("GatewayHighErrorRate", "down") in active, active
