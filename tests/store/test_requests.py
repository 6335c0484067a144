"""The request log contract (gateway/store/requests.py), run against both
stores: batches written, queried newest first with filters and pages, read by
id, pruned by age and by count, and summed into stats buckets."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.store import BadCursor, RequestFilter, RequestRecord, Retention
from gateway.store.request_stats import DAY, MINUTE, QUARTER, WIDTHS, bin_of, rollup

KEEP = Retention(30, 1_000_000)
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def record(n: int, at_ms: int, *, key: str = "key_00000000000000aa", model: str = "m", provider: str = "p",
           status: int = 200, latency_ms: float = 100.0, overhead_ms: float | None = 0.5, **kw) -> RequestRecord:
    return RequestRecord(at_ms, f"req_{n:06d}", key, "alice", model, provider, status, 1, latency_ms, overhead_ms,
                         10, 20, 3000, None if status < 400 else "boom", "chat", False, False,
                         {"x-gateway-provider": provider}, **kw)


def now_ms() -> int:
    return int(time.time() * 1000)


async def everything(store, f: RequestFilter) -> list[RequestRecord]:
    """Every page of a query, followed by its cursors."""
    out: list[RequestRecord] = []
    while True:
        page = await store.requests.query(f)
        out += page.records
        if page.next is None:
            return out
        f = RequestFilter(**{**{k: getattr(f, k) for k in f.__dataclass_fields__}, "before": page.next})


ATTEMPTS = [{"provider": "p", "model": "gpt-a", "status": 429, "error": "rate_limit_exceeded", "ms": 12.5},
            {"provider": "q", "model": "gpt-b", "status": None, "error": "upstream_timeout", "ms": 300.0},
            {"provider": "r", "model": "gpt-c", "status": 200, "error": None, "ms": 80.25}]


async def test_records_come_back_newest_first_with_every_field(open_store):
    t = now_ms()
    records = [record(i, t - 1000 * (10 - i), prompt='[{"role": "user"}]', answer="{}", attempt_log=ATTEMPTS[i % 3:])
               for i in range(10)]
    async with open_store() as store:
        await store.requests.add(records[:4], KEEP)
        await store.requests.add(records[4:], KEEP)
        page = await store.requests.query(RequestFilter(limit=500))
    assert [r.id for r in page.records] == [r.id for r in reversed(records)]
    assert page.records[0] == records[-1] and page.next is None


async def test_filters_and_pages(open_store):
    t = now_ms() - HOUR_MS
    records = [record(i, t + i * 1000, key="key_00000000000000aa" if i % 2 else "key_00000000000000bb",
                      model="m" if i % 3 else "n", provider="p" if i < 30 else "q",
                      status=(200, 429, 502)[i % 3]) for i in range(60)]
    async with open_store() as store:
        await store.requests.add(records, KEEP)
        cases = [RequestFilter(key="key_00000000000000aa"), RequestFilter(model="n"), RequestFilter(provider="q"),
                 RequestFilter(status=429), RequestFilter(status_class=5),
                 RequestFilter(since_ms=t + 10_000, until_ms=t + 20_000),
                 RequestFilter(key="key_00000000000000bb", status_class=4, provider="p")]
        for f in cases:
            for limit in (1, 7, 500):
                wanted = RequestFilter(**{**{k: getattr(f, k) for k in f.__dataclass_fields__}, "limit": limit})
                got = await everything(store, wanted)
                expected = [r.id for r in reversed(records) if f.matches(r)]
                assert [r.id for r in got] == expected, (f, limit)
        first = await store.requests.query(RequestFilter(limit=5))
        assert len(first.records) == 5 and first.next is not None
        with pytest.raises(BadCursor):
            await store.requests.query(RequestFilter(before="nonsense"))


def test_a_record_stored_before_a_field_was_added_reads_it_as_its_default():
    older = record(1, now_ms(), attempt_log=ATTEMPTS).packed()[:-1]      # as written before attempts were kept
    assert RequestRecord.unpacked(older).attempt_log == []
    assert RequestRecord.unpacked(record(2, now_ms(), attempt_log=ATTEMPTS).packed()).attempt_log == ATTEMPTS


async def test_get_by_request_id(open_store):
    t = now_ms()
    async with open_store() as store:
        await store.requests.add([record(1, t - 5000), record(2, t - 4000, answer='{"ok": true}')], KEEP)
        found = await store.requests.get("req_000002")
        assert found is not None and found.answer == '{"ok": true}' and found.headers == {"x-gateway-provider": "p"}
        assert await store.requests.get("req_999999") is None


async def test_records_outlive_the_store(open_store):
    t = now_ms()
    async with open_store() as store:
        await store.requests.add([record(1, t)], KEEP)
    async with open_store() as store:
        assert (await store.requests.get("req_000001")) == record(1, t)


async def test_prune_deletes_what_is_past_keep_days(open_store):
    t = now_ms()
    old = [record(i, t - 10 * DAY_MS + i) for i in range(5)]
    new = [record(10 + i, t - 1000 + i) for i in range(5)]
    async with open_store() as store:
        await store.requests.add(old + new, KEEP)
        assert await store.requests.prune(Retention(7, 1_000_000), t) == 5
        left = await everything(store, RequestFilter(limit=500))
        assert [r.id for r in left] == [r.id for r in reversed(new)]
        assert await store.requests.get("req_000000") is None


async def test_prune_keeps_the_newest_max_rows(open_store):
    t = now_ms()
    # three days of records: the oldest day goes whole, the next in part
    records = [record(i, t - (2 - i // 20) * DAY_MS + i) for i in range(60)]
    async with open_store() as store:
        await store.requests.add(records, KEEP)
        assert await store.requests.prune(Retention(7, 25), t) == 35
        left = await everything(store, RequestFilter(limit=500))
        assert [r.id for r in left] == [r.id for r in reversed(records[35:])]
        assert await store.requests.get(records[34].id) is None
        assert await store.requests.get(records[35].id) == records[35]
        assert await store.requests.prune(Retention(7, 25), t) == 0


async def test_stats_buckets_add_up(open_store):
    t = now_ms()
    minute = t - t % 60_000 - 10 * 60_000       # ten minutes ago, on a minute
    records = ([record(i, minute + i, latency_ms=10 * (i + 1)) for i in range(100)]            # 10..1000 ms
               + [record(100 + i, minute + 60_000 + i, status=503, provider="q", overhead_ms=None,
                         latency_ms=5.0) for i in range(4)]
               + [record(200, minute + 120_000, status=429, model="n")])
    async with open_store() as store:
        await store.requests.add(records[:50], KEEP)
        await store.requests.add(records[50:], KEEP)
        hour = await store.requests.stats(t - HOUR_MS, t, MINUTE, now_ms=t)
        day = await store.requests.stats(t - DAY_MS, t, QUARTER)
        month = await store.requests.stats(t - 30 * DAY_MS, t, DAY)
        only_q = await store.requests.stats(t - HOUR_MS, t, MINUTE, provider="q")
    buckets = {b["start_ms"]: b for b in hour.buckets}
    assert len(hour.buckets) in (60, 61) and hour.buckets[0]["start_ms"] % 60_000 == 0
    first = buckets[minute]
    assert (first["requests"], first["errors"], first["tokens_in"], first["tokens_out"], first["cost_nano"]) \
        == (100, 0, 1000, 2000, 300_000)
    assert first["latency_ms"]["p50"] == pytest.approx(500, rel=0.1)
    assert first["latency_ms"]["p99"] == pytest.approx(990, rel=0.1)
    assert first["overhead_ms"]["p50"] == pytest.approx(0.5, rel=0.1)
    assert first["requests_per_s"] == pytest.approx(100 / 60, rel=1e-3)
    second = buckets[minute + 60_000]
    assert (second["requests"], second["errors"], second["server_errors"], second["error_rate"]) == (4, 4, 4, 1.0)
    assert second["overhead_ms"]["p50"] is None
    assert buckets[minute + 120_000]["errors"] == 1
    assert sum(b["requests"] for b in hour.buckets) == 105
    groups = {(g["model"], g["provider"]): g for g in hour.groups}
    assert {k: g["requests"] for k, g in groups.items()} == {("m", "p"): 100, ("m", "q"): 4, ("n", "p"): 1}
    assert hour.groups[0]["model"] == "m" and hour.groups[0]["provider"] == "p"      # busiest first
    assert hour.totals["requests"] == 105 and hour.totals["cost_usd"] == pytest.approx(105 * 3e-6)
    for wider in (day, month):
        assert wider.totals["requests"] == 105 and wider.totals["errors"] == 5
        assert sum(1 for b in wider.buckets if b["requests"]) in (1, 2)      # the span may cross a bucket's edge
    assert len(day.buckets) in (96, 97) and len(month.buckets) in (30, 31)
    assert only_q.totals["requests"] == 4 and [g["provider"] for g in only_q.groups] == ["q"]


def _rollup_by_definition(records: list[RequestRecord]) -> dict:
    """Each record added into its bucket of each width, every counter that is not 0."""
    out: dict = {}
    for r in records:
        mine = {"requests": 1, "errors": int(r.status >= 400), "server_errors": int(r.status >= 500),
                "cache_hits": int(r.cache_hit), "tokens_in": r.tokens_in, "tokens_out": r.tokens_out,
                "cost_nano": r.cost_nano, f"lat:{bin_of(r.latency_ms)}": 1}
        if r.overhead_ms is not None:
            mine[f"ovh:{bin_of(r.overhead_ms)}"] = 1
        for width in WIDTHS:
            counts = out.setdefault((width, r.at_ms - r.at_ms % (width * 1000), r.model, r.provider), {})
            for name, n in mine.items():
                if n:
                    counts[name] = counts.get(name, 0) + n
    return out


_BATCH = st.lists(st.builds(
    lambda n, at, model, provider, status, latency, overhead, tokens, cost, hit: RequestRecord(
        at, f"req_{n}", "key_00000000000000aa", "alice", model, provider, status, 1, latency, overhead,
        tokens[0], tokens[1], cost, None, "chat", False, hit),
    st.integers(0, 10**6), st.integers(1_700_000_000_000, 1_700_000_000_000 + 3 * DAY_MS),
    st.sampled_from(["m", "n"]), st.sampled_from(["p", "q"]), st.sampled_from([200, 429, 503]),
    st.floats(0, 4e6), st.none() | st.floats(0, 100), st.tuples(st.integers(0, 10**5), st.integers(0, 10**5)),
    st.integers(0, 10**9), st.booleans()), max_size=60)


@settings(max_examples=200, deadline=None)
@given(_BATCH)
def test_a_batch_rolls_up_into_each_widths_buckets_as_record_by_record(records):
    """Counted per minute, then each minute folded into its quarter and its day: the same buckets,
    and the same counters in them, as every record added into every width."""
    assert rollup(records) == _rollup_by_definition(records)


def test_histogram_bins_are_ten_percent_wide():
    assert bin_of(0) == 0 and bin_of(0.01) == 0
    for ms in (0.05, 1, 3.3, 250, 59_000):
        low = 0.01 * 1.1 ** (bin_of(ms) - 1)
        assert low < ms <= low * 1.1 * (1 + 1e-9)


async def test_redis_forgets_the_ids_of_a_day_trimmed_past_max_rows(redis_url):
    from redis.asyncio import Redis

    from gateway.store.redis import RedisStore
    store = RedisStore(redis_url, timeout_s=2.0)
    await store.start()
    client = Redis.from_url(redis_url)
    try:
        t = now_ms()
        records = [record(i, t) for i in range(3000)]
        for i in range(0, len(records), 1000):
            await store.requests.add(records[i:i + 1000], Retention(7, 100))     # MAXLEN ~ 100: ids stay behind
        day = time.strftime("%Y-%m-%d", time.gmtime(t / 1000))
        assert await client.hlen(f"gw:requests:ids:{day}") == 3000
        await store.requests.prune(Retention(7, 100), t)
        assert await client.xlen(f"gw:requests:{day}") == 100
        assert await client.hlen(f"gw:requests:ids:{day}") == 100
        assert await store.requests.get(records[-1].id) == records[-1]
        assert await store.requests.get(records[0].id) is None
    finally:
        await client.aclose()
        await store.close()
