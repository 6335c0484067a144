"""Where OpenAI (and any server that speaks its API) is called, and with what headers."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from providers.batching import BatchOptions
from providers.hosted_video import VideoHttpOptions

PATHS = {"chat": "/chat/completions", "embeddings": "/embeddings", "responses": "/responses",
         "images": "/images/generations", "image_edits": "/images/edits", "speech": "/audio/speech",
         "transcriptions": "/audio/transcriptions", "translations": "/audio/translations"}


class Options(VideoHttpOptions, BatchOptions):     # video_*, poll_*: hosted_video; batch*: batching
    base_url: str = "https://api.openai.com/v1"
    organization: str = ""
    project: str = ""
    # Ask for the usage chunk on every stream (and hide it from clients that did
    # not), so streams are charged what they used; off for servers that reject
    # `stream_options`.
    stream_usage: bool = True
    # How /v1/responses requests reach it: "native" sends them to its own /responses
    # as the client wrote them; "chat" translates them to chat completions.
    responses: Literal["native", "chat"] = "native"


class CompatibleOptions(Options):
    base_url: str = Field(min_length=1)      # no default: it is the point of this type
    stream_usage: bool = False               # not every OpenAI-like server knows stream_options
    responses: Literal["native", "chat"] = "chat"   # few OpenAI-like servers serve /responses


def url(options: Options, op: str) -> str:
    return options.base_url.rstrip("/") + PATHS[op]


def headers(options: Options) -> dict[str, str]:
    h = {"content-type": "application/json"}
    if options.api_key:
        h["authorization"] = f"Bearer {options.api_key}"
    if options.organization:
        h["openai-organization"] = options.organization
    if options.project:
        h["openai-project"] = options.project
    h.update(options.headers)
    return h


def video_headers(headers: dict[str, str]) -> dict[str, str]:
    """The headers for /videos calls: the same, less the JSON content type (set
    per request: multipart for uploads, none on GET and DELETE)."""
    return {k: v for k, v in headers.items() if k.lower() != "content-type"}
