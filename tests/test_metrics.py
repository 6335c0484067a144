"""GET /metrics against a real gateway: every family after real traffic (chat,
stream, embeddings, a 429, a failover, a retry, a cache hit, a 401, a video),
the text format itself, `gateway serve --workers 2` adding up its processes,
and the access log's line."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import base_config, chat_model, free_port
from tests.upstreams.openai_fake import recorded

ROOT = Path(__file__).resolve().parents[1]
MSG = [{"role": "user", "content": "hi"}]

# --- a small parser of the text format (0.0.4), strict enough to fail on a bad line ---

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


class Scrape:
    def __init__(self, text: str) -> None:
        self.types: dict[str, str] = {}
        self.helps: dict[str, str] = {}
        self.samples: list[tuple[str, dict[str, str], float]] = []
        assert text.endswith("\n")
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                _, what, name, rest = line.split(" ", 3)
                seen = self.helps if what == "HELP" else self.types
                assert name not in seen, f"{what} twice for {name}"
                seen[name] = rest
                continue
            assert not line.startswith("#") and line, f"unexpected line {line!r}"
            m = _SAMPLE.match(line)
            assert m, f"sample does not parse: {line!r}"
            name, label_text, value = m.groups()
            labels = {}
            if label_text:
                pos = 0
                for lm in _LABEL.finditer(label_text):
                    assert lm.start() == pos, f"bad labels in {line!r}"
                    labels[lm.group(1)] = lm.group(2)
                    pos = lm.end() + 1           # past the comma
                assert pos == len(label_text) + 1, f"bad labels in {line!r}"
            self.samples.append((name, labels, float(value)))
            family = self.family_of(name)
            assert family in self.types and family in self.helps, f"{name} without HELP/TYPE"
        assert set(self.types) == set(self.helps)
        assert set(self.types.values()) <= {"counter", "gauge", "histogram"}

    def family_of(self, name: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            base = name.removesuffix(suffix)
            if base != name and self.types.get(base) == "histogram":
                return base
        return name

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 when absent)."""
        found = [v for n, ls, v in self.samples if n == name and ls == labels]
        assert len(found) <= 1
        return found[0] if found else 0.0

    def series(self, name: str) -> list[tuple[dict[str, str], float]]:
        return [(ls, v) for n, ls, v in self.samples if n == name]

    def histogram(self, name: str, **labels: str) -> tuple[list[tuple[float, float]], float, float]:
        """(le, cumulative count) in order, the sum and the count; checks they agree."""
        buckets = [(float(ls["le"]), v) for ls, v in self.series(name + "_bucket")
                   if {k: x for k, x in ls.items() if k != "le"} == labels]
        count = self.value(name + "_count", **labels)
        assert buckets, f"no buckets for {name}{labels}"
        assert [le for le, _ in buckets] == sorted(le for le, _ in buckets) and buckets[-1][0] == float("inf")
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), f"buckets of {name}{labels} not cumulative: {counts}"
        assert counts[-1] == count
        return buckets, self.value(name + "_sum", **labels), count


def scrape(url: str) -> Scrape:
    r = httpx.get(f"{url}/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Scrape(r.text)


# --- one gateway, every family --------------------------------------------------

def upstream(fake, name: str, **kw) -> dict:
    return {"name": name, "type": "openai_compatible", "base_url": fake.url, **kw}


def test_every_family_after_real_traffic(start_gateway, fake_openai, tmp_path):
    good, bad, flaky = fake_openai("good"), fake_openai("bad"), fake_openai("flaky")
    bad.fail(500, recorded("error_500.json"))
    flaky.fail(503, recorded("error_500.json"))
    cfg = base_config(
        [upstream(good, "mtup"), upstream(bad, "mtbad", breaker={"failures": 1, "cooldown_s": 60}),
         upstream(flaky, "mtflaky"),
         {"name": "mtmock", "type": "mock", "video_sizes": ["320x180"], "video_seconds": [1], "video_fps": 4}],
        [chat_model("mt-chat", {"provider": "mtup"}),
         chat_model("mt-fail", {"provider": "mtbad"}, {"provider": "mtup"}),
         chat_model("mt-retry", {"provider": "mtflaky"}, retries=1),
         chat_model("mt-cached", {"provider": "mtup"}, cache={"ttl_s": 60}),
         {"name": "mt-emb", "kind": "embedding", "route": {"targets": [{"provider": "mtup"}]}},
         {"name": "mt-video", "kind": "video", "route": {"targets": [{"provider": "mtmock"}]}}],
        prices={"mtup/*": {"input_per_mtok": 1, "output_per_mtok": 2}, "mtmock/*": {"per_second": 0.5}},
        breaker={"failures": 1000, "cooldown_s": 30}, state={"data_dir": str(tmp_path)})
    cfg["auth"]["keys"] += [{"name": "mt-tiny", "key": "sk-mt-tiny", "limits": {"rpm": 1}},
                            {"name": "mt-budget", "key": "sk-mt-budget", "budget": {"usd": 1}}]
    gw = start_gateway(cfg)
    before = scrape(gw.url)
    client = gw.client()

    client.chat.completions.create(model="mt-chat", messages=MSG)                        # 19 in, 10 out
    chunks = list(client.chat.completions.create(model="mt-chat", messages=MSG, stream=True))   # 9 in, 4 out
    assert chunks
    client.embeddings.create(model="mt-emb", input="hello")                             # 8 in
    gw.client("sk-mt-tiny").chat.completions.create(model="mt-chat", messages=MSG)
    assert gw.http("sk-mt-tiny").post("/v1/chat/completions",
                                      json={"model": "mt-chat", "messages": MSG}).status_code == 429
    failed_over = client.chat.completions.with_raw_response.create(model="mt-fail", messages=MSG)
    assert failed_over.headers["x-gateway-attempts"] == "2"
    retried = gw.http().post("/v1/chat/completions", json={"model": "mt-retry", "messages": MSG})
    assert retried.status_code >= 500 and retried.headers["x-gateway-attempts"] == "2"
    for _ in range(2):
        client.chat.completions.create(model="mt-cached", messages=MSG)
    assert gw.http("sk-wrong").post("/v1/chat/completions", json={"model": "mt-chat", "messages": MSG}) \
        .status_code == 401
    gw.client("sk-mt-budget").chat.completions.create(model="mt-chat", messages=MSG)    # 19 in, 10 out
    video = gw.http().post("/v1/videos", json={"model": "mt-video", "prompt": "a fox", "size": "320x180",
                                                "seconds": "1"})
    assert video.status_code == 200, video.text
    for _ in range(200):
        if gw.http().get(f"/v1/videos/{video.json()['id']}").json()["status"] in ("completed", "failed"):
            break
        time.sleep(0.05)

    for _ in range(40):     # the ledger reaches the store within ~0.2 s; the budget gauge reads it there
        m = scrape(gw.url)
        if m.value("gateway_budget_used_ratio", key="mt-budget") > 0:
            break
        time.sleep(0.05)

    req = "gateway_requests_total"
    assert m.value(req, endpoint="chat", model="mt-chat", provider="mtup", status="200") == 4
    assert m.value(req, endpoint="chat", model="mt-chat", provider="", status="429") == 1
    assert m.value(req, endpoint="embeddings", model="mt-emb", provider="mtup", status="200") == 1
    assert m.value(req, endpoint="chat", model="mt-fail", provider="mtup", status="200") == 1
    assert m.value(req, endpoint="chat", model="mt-retry", provider="", status=str(retried.status_code)) == 1
    assert m.value(req, endpoint="chat", model="mt-cached", provider="mtup", status="200") == 2
    assert m.value(req, endpoint="videos", model="mt-video", provider="mtmock", status="200") == 1
    assert m.value(req, endpoint="chat", model="", provider="", status="401") - before.value(
        req, endpoint="chat", model="", provider="", status="401") == 1

    tok = "gateway_tokens_total"
    assert m.value(tok, model="mt-chat", provider="mtup", direction="in") == 19 * 3 + 9
    assert m.value(tok, model="mt-chat", provider="mtup", direction="out") == 10 * 3 + 4
    assert m.value(tok, model="mt-emb", provider="mtup", direction="in") == 8
    assert m.value("gateway_cost_usd_total", model="mt-chat", provider="mtup") == \
        pytest.approx(((19 * 3 + 9) * 1 + (10 * 3 + 4) * 2) / 1e6)
    assert m.value("gateway_cost_usd_total", model="mt-video", provider="mtmock") == pytest.approx(0.5)

    assert m.value("gateway_rate_limited_total", reason="requests") - \
        before.value("gateway_rate_limited_total", reason="requests") == 1
    assert m.value("gateway_failovers_total", model="mt-fail") == 1
    assert m.value("gateway_retries_total", model="mt-retry") == 1
    assert m.value("gateway_failovers_total", model="mt-chat") == 0
    assert m.value("gateway_cache_hits_total", model="mt-cached") == 1
    assert m.value("gateway_cache_misses_total", model="mt-cached") == 1
    assert m.value("gateway_video_jobs_total", model="mt-video", provider="mtmock", status="accepted") == 1
    assert m.value("gateway_video_jobs_total", model="mt-video", provider="mtmock", status="completed") == 1
    assert m.types["gateway_state_store_errors_total"] == "counter"
    assert m.types["gateway_unpriced_requests_total"] == "counter"
    assert m.types["gateway_webhook_deliveries_total"] == "counter"

    buckets, total, count = m.histogram("gateway_request_duration_seconds", model="mt-chat")
    assert count == 5 and 0 < total < 5 and buckets[0][0] == 0.0005 and len(buckets) == 18
    _, overhead, count = m.histogram("gateway_overhead_seconds", model="mt-chat")
    assert count == 4 and 0 < overhead < total          # the 429 carries no overhead figure
    _, _, count = m.histogram("gateway_time_to_first_token_seconds", model="mt-chat")
    assert count == 1
    buckets, seconds, count = m.histogram("gateway_video_generation_seconds", provider="mtmock")
    assert count == 1 and seconds > 0 and buckets[0][0] == 1
    _, _, count = m.histogram("gateway_overhead_seconds", model="mt-cached")
    assert count == 2

    assert m.value("gateway_circuit_state", target="mtbad/mt-fail") == 2           # open after its failure
    assert m.value("gateway_circuit_state", target="mtup/mt-chat") == 0
    assert m.value("gateway_target_in_flight", target="mtup/mt-chat") == 0
    assert m.value("gateway_video_queue_depth", provider="mtmock") == 0
    assert m.value("gateway_video_oldest_job_age_seconds", provider="mtmock") == 0
    assert m.value("gateway_video_workers", provider="mtmock") == 0
    assert {ls["key"] for ls, _ in m.series("gateway_budget_used_ratio")} == {"mt-budget"}
    assert m.value("gateway_budget_used_ratio", key="mt-budget") == pytest.approx((19 + 10 * 2) / 1e6)
    assert m.value("gateway_config_version") >= 1
    assert [ls for ls, v in m.series("gateway_build_info") if v == 1][0]["version"]
    for name, kind in m.types.items():
        assert name.startswith("gateway_"), name
        if kind == "counter":
            assert name.endswith("_total"), name


def test_escaped_label_values_parse(start_gateway, fake_openai, tmp_path):
    fake = fake_openai()
    odd = 'mt-"odd"\\name'
    gw = start_gateway(base_config([upstream(fake, "mtesc")], [chat_model(odd, {"provider": "mtesc"})],
                                   state={"data_dir": str(tmp_path)}))
    gw.client().chat.completions.create(model=odd, messages=MSG)
    m = scrape(gw.url)
    assert m.value("gateway_requests_total", model='mt-\\"odd\\"\\\\name', provider="mtesc", status="200",
                   endpoint="chat") == 1


def test_the_scrape_reads_back_through_prometheus_client(start_gateway, fake_openai, tmp_path):
    fake = fake_openai()
    gw = start_gateway(base_config([upstream(fake, "mtpc")], [chat_model("mt-pc", {"provider": "mtpc"})],
                                   state={"data_dir": str(tmp_path)}))
    gw.client().chat.completions.create(model="mt-pc", messages=MSG)
    text = httpx.get(f"{gw.url}/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["gateway_requests"].type == "counter"         # the parser names a counter without _total
    assert families["gateway_request_duration_seconds"].type == "histogram"
    assert families["gateway_circuit_state"].type == "gauge"
    (sample,) = [s for s in families["gateway_requests"].samples if s.labels.get("model") == "mt-pc"]
    assert sample.value == 1 and sample.labels == {"model": "mt-pc", "provider": "mtpc", "status": "200",
                                                   "endpoint": "chat"}


# --- every process's snapshot, added up --------------------------------------------

def test_snapshots_add_up_and_foreign_rows_are_skipped():
    from gateway import metrics
    row = [1] + [0] * len(metrics.REQUEST_BUCKETS) + [0.0004]           # one observation in the first bucket
    one = {"gateway_requests_total": [[["m", "p", "200", "chat"], 2]],
           "gateway_request_duration_seconds": [[["m"], row]]}
    other = {"gateway_requests_total": [[["m", "p", "200", "chat"], 3], [["m", "p"], 9]],   # a row of other labels
             "gateway_request_duration_seconds": [[["m"], row], [["m"], [1, 0.1]]],  # a row of another layout
             "gateway_gone_total": [[["x"], 1]]}                                       # a family since removed
    m = Scrape(metrics.render([one, other]).decode())
    assert m.value("gateway_requests_total", model="m", provider="p", status="200", endpoint="chat") == 5
    buckets, total, count = m.histogram("gateway_request_duration_seconds", model="m")
    assert count == 2 and total == pytest.approx(0.0008) and buckets[0] == (0.0005, 2)
    assert m.value("gateway_state_store_errors_total") == 0                # no labels: a series from the start
    assert "gateway_gone_total" not in m.types


def test_a_gauge_cannot_take_a_counted_name():
    from prometheus_client.metrics_core import GaugeMetricFamily

    from gateway import metrics
    with pytest.raises(ValueError, match="Duplicated"):
        metrics.render([], [GaugeMetricFamily("gateway_requests_total", "clash", value=1)])


# --- gateway serve --workers 2 ----------------------------------------------------

def _serve(tmp_path: Path, workers: int, **logging_cfg) -> tuple[subprocess.Popen, str]:
    port = free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"workers": workers}, "state": {"data_dir": str(tmp_path / "data")},
        "auth": {"admin_key": "sk-mp-admin", "keys": [{"name": "mp", "key": "sk-mp-secret"}]},
        "providers": [{"name": "mock", "type": "mock"}],
        "models": [{"name": "mc", "kind": "chat", "route": {"targets": [{"provider": "mock"}]}}],
        "logging": {"access_log": True, **logging_cfg}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GATEWAY_"))}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "serve", "--config", str(config), "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    return proc, url


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    proc.terminate()
    out, err = proc.communicate(timeout=15)
    return out.decode(), err.decode()


def _ask(url: str, content: str = "hi") -> httpx.Response:
    # A new connection each time, so the kernel spreads them over the worker processes.
    return httpx.post(f"{url}/v1/chat/completions", headers={"authorization": "Bearer sk-mp-secret"},
                      json={"model": "mc", "messages": [{"role": "user", "content": content}]})


def test_workers_add_up(tmp_path):
    proc, url = _serve(tmp_path, workers=2, access_log=False)
    try:
        (tmp_path / "data" / "metrics").mkdir(parents=True, exist_ok=True)
        assert all(_ask(url).status_code == 200 for _ in range(50))
        totals = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:      # each process writes its snapshot every second
            totals.append(sum(v for _, v in scrape(url).series("gateway_requests_total")))
            if totals[-1] == 50:
                break
            time.sleep(0.2)
        assert totals[-1] == 50, totals
        for _ in range(10):     # whichever process answers, it adds up all of them
            assert sum(v for _, v in scrape(url).series("gateway_requests_total")) == 50
        assert len(list((tmp_path / "data" / "metrics").glob("*.json"))) == 2
        # Spend is one file both processes add to; whichever answers reports all of it.
        admin = {"authorization": "Bearer sk-mp-admin"}
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            spent = [httpx.get(f"{url}/admin/spend", headers=admin).json()["data"] for _ in range(6)]
            if all(sum(r["requests"] for r in d) == 50 for d in spent):
                break
            time.sleep(0.2)
        assert [sum(r["requests"] for r in d) for d in spent] == [50] * 6, spent
        keys = httpx.get(f"{url}/admin/keys", headers=admin).json()["keys"]
        assert next(k for k in keys if k["name"] == "mp")["this_month"]["requests"] == 50, keys
    finally:
        _, err = _stop(proc)
    assert "Traceback" not in err, err


def test_serve_clears_earlier_counts(tmp_path):
    folder = tmp_path / "data" / "metrics"
    folder.mkdir(parents=True)
    (folder / "1-1.json").write_bytes(orjson.dumps({"gateway_requests_total": [[["mc", "mock", "200", "chat"], 7]]}))
    proc, url = _serve(tmp_path, workers=1)
    try:
        assert scrape(url).value("gateway_requests_total", model="mc", provider="mock", status="200",
                                 endpoint="chat") == 0
    finally:
        _stop(proc)


# --- the access log -----------------------------------------------------------------

@pytest.mark.parametrize("prompts", [False, True])
def test_access_log_line(tmp_path, prompts):
    proc, url = _serve(tmp_path, workers=1, prompts=prompts)
    try:
        answer = _ask(url, "PROMPT-TEXT-42")
        assert answer.status_code == 200
        refused = httpx.post(f"{url}/v1/chat/completions", headers={"authorization": "Bearer sk-nope"},
                             json={"model": "mc", "messages": MSG})
        assert refused.status_code == 401
    finally:
        _, err = _stop(proc)
    lines = [orjson.loads(line) for line in err.splitlines() if line.startswith("{")]
    by_id = {line["request_id"]: line for line in lines}
    line = by_id[answer.headers["x-request-id"]]
    assert {"request_id", "key", "model", "provider", "attempts", "status", "latency_ms", "overhead_ms",
            "tokens_in", "tokens_out", "cost_usd", "path", "method"} <= set(line)
    assert (line["key"], line["model"], line["provider"], line["status"], line["attempts"]) == \
        ("mp", "mc", "mock", 200, 1)
    assert line["method"] == "POST" and line["path"] == "/v1/chat/completions"
    assert line["latency_ms"] >= line["overhead_ms"] >= 0 and line["tokens_out"] > 0
    assert ("PROMPT-TEXT-42" in err) is prompts
    if prompts:
        assert line["messages"] == [{"role": "user", "content": "PROMPT-TEXT-42"}]
    assert "sk-mp-secret" not in err and "sk-nope" not in err
    gone = by_id[refused.headers["x-request-id"]]
    assert (gone["status"], gone["key"], gone["model"]) == (401, "", "")
    assert len(lines) == 2
