"""Console sessions and the audit trail (gateway/store/admin.py), against both stores."""
from __future__ import annotations

import time

from gateway.store import AuditEntry, Session


async def test_a_session_is_kept_until_it_expires_or_is_deleted(open_store):
    async with open_store() as store:
        now = time.time()
        await store.sessions.put("h1", Session("key_0000000000000001", "ops", "viewer", now + 60))
        await store.sessions.put("h2", Session("admin_key_abcd1234", "admin key", "admin", now + 0.2))
        assert await store.sessions.get("h1") == Session("key_0000000000000001", "ops", "viewer", now + 60)
        assert (await store.sessions.get("h2")).role == "admin"
        assert await store.sessions.get("nope") is None
        await store.sessions.delete("h1")
        assert await store.sessions.get("h1") is None
        time.sleep(0.3)
        assert await store.sessions.get("h2") is None


async def test_the_audit_trail_is_newest_first_paged_and_bounded(open_store):
    async with open_store() as store:
        for i in range(30):
            await store.audit.add(AuditEntry(1000.0 + i, "admin key", "admin", f"POST /admin/keys {i}", f"k{i}", 200,
                                             "127.0.0.1"))
        got = await store.audit.recent(10)
        assert [e.at for e in got] == [1029.0 - i for i in range(10)]
        older = await store.audit.recent(5, before=got[-1].at)
        assert [e.at for e in older] == [1019.0 - i for i in range(5)]
        assert older[0].shown() == {"at": 1019.0, "actor": "admin key", "role": "admin",
                                    "action": "POST /admin/keys 19", "target": "k19", "status": 200,
                                    "from": "127.0.0.1"}
