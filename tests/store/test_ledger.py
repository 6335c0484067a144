"""The ledger contract (gateway/store/ledger.py), run against both stores: rows
written by settling requests, read back per day."""
from __future__ import annotations

from gateway.store import LedgerEntry, Settlement


def entry(day: str, cost: int, key: str = "alice", model: str = "m", provider: str = "p", **kw) -> LedgerEntry:
    return LedgerEntry(day, key, model, provider, cost_nano=cost, **kw)


async def test_ledger_rows_add_up_per_day_key_model_and_provider(open_store):
    async with open_store() as store:
        for e in [entry("2026-11-10", 100, prompt_tokens=3, completion_tokens=5),
                  entry("2026-11-10", 50, prompt_tokens=1, completion_tokens=2, cached_tokens=1),
                  entry("2026-11-10", 7, provider="q"),
                  entry("2026-11-10", 9, key="bob", model="odd\tname \"quoted\""),
                  entry("2026-11-11", 1000, cache_hits=1),
                  entry("2026-12-01", 5)]:
            await store.limits.settle(Settlement(entry=e))
        rows = {(r.day, r.key, r.model, r.provider): r for r in await store.ledger.rows("2026-11-01", "2026-11-30")}
    assert set(rows) == {("2026-11-10", "alice", "m", "p"), ("2026-11-10", "alice", "m", "q"),
                         ("2026-11-10", "bob", "odd\tname \"quoted\"", "p"), ("2026-11-11", "alice", "m", "p")}
    first = rows[("2026-11-10", "alice", "m", "p")]
    assert (first.requests, first.prompt_tokens, first.completion_tokens, first.cached_tokens, first.cost_nano) \
        == (2, 4, 7, 1, 150)
    assert rows[("2026-11-11", "alice", "m", "p")].cache_hits == 1


def test_an_entrys_counts_are_its_ledger_fields_in_order_and_add_field_by_field():
    import dataclasses

    from gateway.store import LEDGER_FIELDS
    assert tuple(f.name for f in dataclasses.fields(LedgerEntry))[4:] == LEDGER_FIELDS
    e = LedgerEntry("2026-11-10", "k", "m", "p", 1, 2, 3, 4, 5, 6)
    assert e.counts() == tuple(getattr(e, f) for f in LEDGER_FIELDS) == (1, 2, 3, 4, 5, 6)
    row = e.copy()
    row.add(LedgerEntry("2026-11-10", "k", "m", "p", 10, 20, 30, 40, 50, 60))
    assert row.counts() == (11, 22, 33, 44, 55, 66) and e.counts() == (1, 2, 3, 4, 5, 6)
    assert row.group == ("2026-11-10", "k", "m", "p")
