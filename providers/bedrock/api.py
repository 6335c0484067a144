"""Where Bedrock is called and how each call is signed: options, credentials
(config first, else the standard AWS environment variables), paths."""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote, urlsplit

from pydantic import field_validator

from providers.bedrock import sigv4
from providers.http import HttpOptions

SERVICE = "bedrock"          # the signing name; the host says bedrock-runtime
PATHS = {False: "converse", True: "converse-stream"}   # by `stream`


class Options(HttpOptions):
    region: str = ""                 # default: $AWS_REGION, else $AWS_DEFAULT_REGION
    access_key_id: str = ""          # with secret_access_key and session_token: default from $AWS_*
    secret_access_key: str = ""
    session_token: str = ""
    base_url: str = ""               # default: https://bedrock-runtime.{region}.amazonaws.com

    @field_validator("api_key")
    @classmethod
    def _no_api_key(cls, v: str) -> str:
        if v:
            raise ValueError("bedrock signs each call with AWS credentials: set access_key_id and "
                             "secret_access_key (or the AWS_* environment variables), not api_key")
        return v


@dataclass(frozen=True, slots=True)
class Target:
    """One provider's resolved place and identity."""
    region: str
    base_url: str
    host: str                        # the `host` header, signed and sent as is
    credentials: sigv4.Credentials


def region(options: Options, env: Mapping[str, str] = os.environ) -> str:
    return options.region or env.get("AWS_REGION", "") or env.get("AWS_DEFAULT_REGION", "")


def credentials(options: Options, env: Mapping[str, str] = os.environ) -> sigv4.Credentials:
    """The config's keys when it names any; else the environment's. Never a mix:
    a session token from the environment would not match keys from the config."""
    if options.access_key_id or options.secret_access_key:
        return sigv4.Credentials(options.access_key_id, options.secret_access_key, options.session_token)
    return sigv4.Credentials(env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", ""),
                             env.get("AWS_SESSION_TOKEN", ""))


def missing(options: Options, env: Mapping[str, str] = os.environ) -> str | None:
    """Why the provider cannot sign calls, or None."""
    creds = credentials(options, env)
    if not creds.secret_access_key:
        return "secret_access_key is empty and AWS_SECRET_ACCESS_KEY is not set"
    if not creds.access_key_id:
        return "access_key_id is empty and AWS_ACCESS_KEY_ID is not set"
    if not region(options, env):
        return "region is empty and AWS_REGION is not set"
    return None


def target(options: Options, env: Mapping[str, str] = os.environ) -> Target:
    where = region(options, env)
    base = (options.base_url or f"https://bedrock-runtime.{where}.amazonaws.com").rstrip("/")
    host = urlsplit(base).netloc.rpartition("@")[2]
    return Target(where, base, host, credentials(options, env))


def url(t: Target, model: str, stream: bool, paths: Mapping[bool, str] = PATHS) -> str:
    return f"{t.base_url}/model/{_segment(model)}/{paths[stream]}"


@lru_cache(maxsize=1024)
def _segment(model: str) -> str:
    # The model id is one path segment: ':' and '/' (inference profile ARNs) encoded.
    return quote(model, safe="")


@lru_cache(maxsize=1024)
def wire_path(url: str) -> str:
    """The path as it goes on the wire (the upstream client sends URLs as built,
    so `:` in a model id stays %3A, as AWS's own SDKs send it): what is signed."""
    return urlsplit(url).path


def headers(t: Target, path: str, body: bytes, extra: Mapping[str, str], now: datetime | None = None) -> dict[str, str]:
    """Every header of one call; signed afresh each time (x-amz-date)."""
    h = {"content-type": "application/json", **extra}
    h.update(sigv4.signed_headers(t.credentials, method="POST", host=t.host, path=path, body=body,
                                  region=t.region, service=SERVICE, now=now))
    return h
