"""What the admin API keeps besides the config: the console's sign-in
sessions, and the audit trail of every admin action and failed sign-in."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

MOST_AUDIT = 10_000     # entries kept; the oldest go first


@dataclass(slots=True)
class Session:
    admin: str          # the admin's id (gateway/admin/identity.py): checked again on every use
    name: str
    role: str
    expires_at: float   # unix seconds


@dataclass(slots=True)
class AuditEntry:
    at: float           # unix seconds
    actor: str          # the admin's name, or "" for a failed sign-in
    role: str
    action: str         # e.g. "POST /admin/keys", "sign-in"
    target: str         # what it acted on (a key's name, a config version), when known
    status: int
    source: str         # the client's address

    def shown(self) -> dict[str, object]:
        return {"at": self.at, "actor": self.actor, "role": self.role, "action": self.action,
                "target": self.target, "status": self.status, "from": self.source}


class Sessions(ABC):
    @abstractmethod
    async def put(self, token_hash: str, session: Session) -> None:
        """Keep a session until its expiry, under the SHA-256 of its token (never the token)."""

    @abstractmethod
    async def get(self, token_hash: str) -> Session | None:
        """The session, or None (unknown, signed out or expired)."""

    @abstractmethod
    async def delete(self, token_hash: str) -> None: ...


class Audit(ABC):
    @abstractmethod
    async def add(self, entry: AuditEntry) -> None:
        """Keep one entry (the newest MOST_AUDIT are kept)."""

    @abstractmethod
    async def recent(self, limit: int, before: float | None = None) -> list[AuditEntry]:
        """The newest entries first, older than `before` when given."""
