"""AWS Signature Version 4, as pure functions: how every Bedrock call proves
who sent it. Checked against AWS's published test suite (tests/data/bedrock)."""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from urllib.parse import quote, unquote

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str = ""

    def __repr__(self) -> str:       # never print the secret in a log or a traceback
        return f"Credentials(access_key_id={self.access_key_id!r}, secret_access_key='***')"


@dataclass(frozen=True, slots=True)
class Signature:
    canonical_request: str
    string_to_sign: str
    signature: str          # hex
    authorization: str      # the `authorization` header's value


def amz_date(now: datetime | None = None) -> str:
    """`x-amz-date`: UTC, basic ISO 8601 (20150830T123600Z)."""
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@lru_cache(maxsize=1024)     # urllib's quote walks every character; paths repeat
def canonical_uri(path: str) -> str:
    """The path as signed. For every service but S3, AWS normalizes the path
    and encodes it as sent once more, so `%3A` on the wire is `%253A` here
    (Bedrock model ids)."""
    return quote(_normalized(path), safe="/~")


def _normalized(path: str) -> str:
    """`.` and `..` segments resolved (RFC 3986 5.2.4) and empty ones dropped, as AWS
    (and botocore, the reference) sign every service's path but S3's."""
    kept: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(segment)
    return "/" + "/".join(kept) + ("/" if kept and path.endswith("/") else "")


def canonical_query(query: str) -> str:
    pairs = []
    for item in query.split("&") if query else ():
        key, _, value = item.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def _header_value(value: str) -> str:
    return " ".join(value.split())      # trimmed, inner runs of spaces collapsed


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      payload_sha256: str) -> tuple[str, str]:
    """(canonical request, signed header names) for signing every header given."""
    signed = sorted((name.lower(), _header_value(value)) for name, value in headers.items())
    names = ";".join(name for name, _ in signed)
    lines = "".join(f"{name}:{value}\n" for name, value in signed)
    return "\n".join([method.upper(), canonical_uri(path), canonical_query(query), lines, names,
                      payload_sha256]), names


def scope(date: str, region: str, service: str) -> str:
    return f"{date}/{region}/{service}/aws4_request"


@lru_cache(maxsize=16)
def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    """Derived once per day, region and service (four HMACs): cached."""
    key = ("AWS4" + secret_access_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def signature(credentials: Credentials, *, method: str, path: str, query: str, headers: Mapping[str, str],
              payload_sha256: str, region: str, service: str) -> Signature:
    """Sign a request whose `headers` (all of them signed) already hold
    `x-amz-date`; `path` as it goes on the wire."""
    when = next(v for k, v in headers.items() if k.lower() == "x-amz-date")
    date = when[:8]
    creq, names = canonical_request(method, path, query, headers, payload_sha256)
    sts = "\n".join([ALGORITHM, when, scope(date, region, service),
                     hashlib.sha256(creq.encode()).hexdigest()])
    sig = hmac.new(signing_key(credentials.secret_access_key, date, region, service), sts.encode(),
                   hashlib.sha256).hexdigest()
    authz = (f"{ALGORITHM} Credential={credentials.access_key_id}/{scope(date, region, service)}, "
             f"SignedHeaders={names}, Signature={sig}")
    return Signature(creq, sts, sig, authz)


def signed_headers(credentials: Credentials, *, method: str, host: str, path: str, body: bytes,
                   region: str, service: str, now: datetime | None = None) -> dict[str, str]:
    """The headers that authenticate one request: host, x-amz-date, the session
    token when there is one, and authorization. The body's hash is signed too."""
    headers = {"host": host, "x-amz-date": amz_date(now)}
    if credentials.session_token:
        headers["x-amz-security-token"] = credentials.session_token
    sig = signature(credentials, method=method, path=path, query="", headers=headers,
                    payload_sha256=hashlib.sha256(body).hexdigest(), region=region, service=service)
    headers["authorization"] = sig.authorization
    return headers
