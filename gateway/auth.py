"""Gateway keys: who is calling, and which models they may use.

Keys are held only as SHA-256 digests; a request's key is hashed and looked up,
then compared in constant time. A key's id (`key_` + the first 16 hex digits of
its digest) is what owns its jobs, spend and limits: a name can be revoked and
given to a new key, a secret cannot.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from fnmatch import translate
from re import Pattern

from gateway.config.schema import Budget, KeyConfig, Limits
from gateway.errors import invalid_api_key


@dataclass(frozen=True, slots=True)
class Key:
    name: str                     # for rules and display; reusable once revoked
    id: str                       # owns jobs, spend and limits: key_id(digest)
    digest: bytes
    models: Pattern[str]          # the allow-list's globs as one regex
    limits: Limits
    budget: Budget | None

    def may_use(self, model: str) -> bool:
        return self.models.match(model) is not None


def digest_of(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def key_id(digest: bytes) -> str:
    """A stable id from the secret's digest: 64 bits say nothing usable about the secret."""
    return "key_" + digest[:8].hex()


def is_key_id(text: str) -> bool:
    return len(text) == 20 and text.startswith("key_") and all(c in "0123456789abcdef" for c in text[4:])


def digest_of_config(k: KeyConfig) -> bytes | None:
    """A configured key's digest; None when its secret came from an empty variable (that key is off)."""
    if k.key_hash:
        return bytes.fromhex(k.key_hash.removeprefix("sha256:"))
    if k.key:
        return digest_of(k.key)
    return None


def globs(patterns: list[str]) -> Pattern[str]:
    return re.compile("|".join(translate(p) for p in patterns) or r"(?!)")


class Keys:
    def __init__(self, configs: list[KeyConfig]) -> None:
        self._by_digest: dict[bytes, Key] = {}
        self._inside: dict[str, bytes] = {}               # key id -> its secret for requests made inside
        self._inside_by_digest: dict[bytes, Key] = {}
        for k in configs:
            digest = digest_of_config(k)
            if digest is not None and k.role is None:      # an admin key (with a role) is not a client key
                self._by_digest[digest] = Key(k.name, key_id(digest), digest, globs(k.models), k.limits, k.budget)

    def __len__(self) -> int:
        return len(self._by_digest)

    def all(self) -> list[Key]:
        return list(self._by_digest.values())

    def authenticate(self, headers: dict[bytes, bytes]) -> Key:
        """The caller's key from `Authorization: Bearer`, Azure's `api-key` or Anthropic's
        `x-api-key`; else 401."""
        raw = headers.get(b"authorization")
        if raw is not None:
            scheme, _, secret = raw.partition(b" ")
            if scheme.lower() != b"bearer":
                raise invalid_api_key()
            secret = secret.strip()
        else:
            secret = headers.get(b"x-api-key") or headers.get(b"api-key", b"")
        if not secret:
            raise invalid_api_key()
        digest = hashlib.sha256(secret).digest()
        key = self._by_digest.get(digest)
        if key is None:
            key = self._inside_by_digest.get(digest)    # looked at only once a client's key is not found
        if key is None or not hmac.compare_digest(key.digest, digest):
            raise invalid_api_key()
        return key

    def by_id(self, key_id: str) -> Key | None:
        """The key with id `key_id` in this config version (None once revoked): for work done on a
        key's behalf long after its request (a batch)."""
        return next((k for k in self._by_digest.values() if k.id == key_id), None)

    def inside(self, key_id: str, share: float = 1.0) -> bytes | None:
        """A secret that authenticates as the key with id `key_id`, for requests the gateway makes
        itself on the key's behalf (a batch's lines, which know their owner by id, never by secret);
        None when no key has that id in this config version. Random, this process's own and this
        config version's (a revoked key's goes with it), and never sent anywhere: a request made
        with it is answered inside the process.

        Its requests count in the key's own windows and slots, against `share` of the key's rate and
        concurrency limits: they are refused once the key is past that share, so the key's own
        requests keep the rest (limits.py decides each against the limit it is given)."""
        secret = self._inside.get(key_id)
        if secret is None:
            key = self.by_id(key_id)
            if key is None:
                return None
            secret = secrets.token_hex(32).encode()
            digest = hashlib.sha256(secret).digest()
            self._inside_by_digest[digest] = dataclasses.replace(key, digest=digest,
                                                                 limits=_shared(key.limits, share))
            self._inside[key_id] = secret
        return secret


def _shared(limits: Limits, share: float) -> Limits:
    """`share` of each rate and concurrency limit (at least 1 where it is not 0); videos_per_hour stays."""
    if share >= 1:
        return limits
    return limits.model_copy(update={name: int(value * share) or min(value, 1) for name in ("rpm", "tpm", "concurrent")
                                     if (value := getattr(limits, name)) is not None})
