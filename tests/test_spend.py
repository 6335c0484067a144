"""Cost of every request, recorded durably, reported at /admin/spend."""
from __future__ import annotations

import pytest

from tests.harness import base_config, chat_model

MSG = [{"role": "user", "content": "hello there"}]
PRICES = {"paid/*": {"input_per_mtok": 1000, "output_per_mtok": 2000, "cached_input_per_mtok": 100},
          "cheap/*": {"input_per_mtok": 1, "output_per_mtok": 1}}


def config(tmp_path, **extra):
    cfg = base_config([{"name": "paid", "type": "mock"}, {"name": "cheap", "type": "mock"},
                       {"name": "broken", "type": "mock", "fail_rate": 1.0}],
                      [chat_model("m", {"provider": "paid"}), chat_model("c", {"provider": "cheap"}),
                       chat_model("failover", {"provider": "broken"}, {"provider": "cheap"}),
                       {"name": "e", "kind": "embedding", "route": {"targets": [{"provider": "paid"}]}}],
                      prices=PRICES, state={"data_dir": str(tmp_path)}, **extra)
    cfg["auth"]["admin_key"] = "sk-admin"
    cfg["auth"]["keys"].append({"name": "other", "key": "sk-other"})
    return cfg


def report(gw, **query):
    r = gw.http("sk-admin").get("/admin/spend", params=query)
    assert r.status_code == 200, r.text
    return r.json()


def test_cost_header_and_ledger_agree(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    costs = []
    for model, key in [("m", "sk-test"), ("m", "sk-test"), ("c", "sk-test"), ("m", "sk-other")]:
        raw = gw.client(key).chat.completions.with_raw_response.create(model=model, messages=MSG)
        usage = raw.parse().usage
        expected = (usage.prompt_tokens * (1000 if model == "m" else 1)
                    + usage.completion_tokens * (2000 if model == "m" else 1)) / 1e6
        assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(expected)
        costs.append(float(raw.headers["x-gateway-cost-usd"]))
    spent = report(gw)
    assert spent["total_cost_usd"] == pytest.approx(sum(costs))
    by_key = {(r["key"], r["model"]): r for r in report(gw, group_by="key,model")["data"]}
    assert by_key[("test", "m")]["requests"] == 2 and by_key[("other", "m")]["requests"] == 1
    assert by_key[("test", "m")]["prompt_tokens"] == 2 * 6 and by_key[("test", "m")]["completion_tokens"] == 32
    only = report(gw, key="other")
    assert only["total_cost_usd"] == pytest.approx(costs[3])
    assert [r["day"] for r in report(gw, group_by="day")["data"]] == [spent["to"]]


def test_streams_and_embeddings_are_counted(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    c = gw.client()
    list(c.chat.completions.create(model="m", messages=MSG, stream=True))
    c.embeddings.create(model="e", input="one two three")
    rows = {r["model"]: r for r in report(gw, group_by="model")["data"]}
    assert rows["m"]["completion_tokens"] == 16 and rows["m"]["cost_usd"] > 0
    assert rows["e"]["prompt_tokens"] == 3


def test_failed_over_request_records_the_serving_attempt(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    gw.client().chat.completions.create(model="failover", messages=MSG)
    rows = report(gw, group_by="model,provider")["data"]
    assert [(r["model"], r["provider"], r["requests"]) for r in rows] == [("failover", "cheap", 1)]


def test_ledger_survives_a_restart(loop, tmp_path):
    from tests.harness import Gateway
    first = Gateway(loop, config(tmp_path))
    raw = first.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    cost = float(raw.headers["x-gateway-cost-usd"])
    first.close()
    second = Gateway(loop, config(tmp_path))
    try:
        assert report(second)["total_cost_usd"] == pytest.approx(cost)
    finally:
        second.close()


def test_unknown_price_costs_nothing(start_gateway, fake_openai, tmp_path):
    fake = fake_openai()
    cfg = config(tmp_path)
    cfg["providers"].append({"name": "somehost", "type": "openai_compatible", "base_url": fake.url})
    cfg["models"].append(chat_model("f", {"provider": "somehost", "model": "unpriced-model"}))
    gw = start_gateway(cfg)
    raw = gw.client().chat.completions.with_raw_response.create(model="f", messages=MSG)
    assert raw.headers["x-gateway-cost-usd"] == "0"
    rows = report(gw, model="f")["data"]
    assert rows[0]["requests"] == 1 and rows[0]["prompt_tokens"] == 19 and rows[0]["cost_usd"] == 0


@pytest.mark.parametrize("query,param", [({"from": "yesterday"}, "from"), ({"to": "2026-13-01"}, "to"),
                                         ({"from": "2026-11-20", "to": "2026-11-01"}, "from"),
                                         ({"group_by": "color"}, "group_by")])
def test_bad_report_queries_are_400(start_gateway, tmp_path, query, param):
    gw = start_gateway(config(tmp_path))
    r = gw.http("sk-admin").get("/admin/spend", params=query)
    assert r.status_code == 400 and r.json()["error"]["param"] == param


def test_admin_key_required(start_gateway, tmp_path):
    gw = start_gateway(config(tmp_path))
    assert gw.http("sk-test").get("/admin/spend").status_code == 401
    assert gw.http(None).get("/admin/spend").status_code == 401
    cfg = config(tmp_path)
    cfg["auth"]["admin_key"] = ""
    off = start_gateway(cfg)
    r = off.http("sk-admin").get("/admin/spend")
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"


def test_metrics_count_unpriced_and_refused_requests(start_gateway, fake_openai, tmp_path):
    fake = fake_openai()
    cfg = config(tmp_path)
    cfg["providers"].append({"name": "nopricehost", "type": "openai_compatible", "base_url": fake.url})
    cfg["models"].append(chat_model("np", {"provider": "nopricehost", "model": "mystery"}))
    cfg["auth"]["keys"].append({"name": "tiny", "key": "sk-tiny", "limits": {"rpm": 1}})
    gw = start_gateway(cfg)
    gw.client().chat.completions.create(model="np", messages=MSG)
    gw.client("sk-tiny").chat.completions.create(model="c", messages=MSG)
    assert gw.http("sk-tiny").post("/v1/chat/completions", json={"model": "c", "messages": MSG}).status_code == 429
    text = gw.http(None).get("/metrics").text
    assert 'gateway_unpriced_requests_total{model="mystery",provider="nopricehost"} ' in text
    assert 'gateway_rate_limited_total{reason="requests"} ' in text
    assert "# TYPE gateway_state_store_errors_total counter" in text
