"""Where Azure OpenAI is called: a deployment per model, an `api-version`, an
`api-key` header (or a Microsoft Entra token)."""
from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import Field

from providers.hosted_video import VideoHttpOptions

PATHS = {"chat": "chat/completions", "embeddings": "embeddings", "responses": "responses",
         "images": "images/generations", "image_edits": "images/edits", "speech": "audio/speech",
         "transcriptions": "audio/transcriptions", "translations": "audio/translations"}


class Options(VideoHttpOptions):
    base_url: str = Field(min_length=1)    # https://<resource>.openai.azure.com
    api_version: str = "2024-10-21"        # "v1": the versionless /openai/v1 API
    azure_ad_token: str = ""               # instead of api_key: sent as a bearer token
    stream_usage: bool = True              # see providers/openai/api.py
    # /v1/responses requests: "native" to the resource's own Responses API, "chat"
    # translated to chat completions; "auto": native on the v1 API, chat on dated versions.
    responses: Literal["auto", "native", "chat"] = "auto"


def url(options: Options, op: str, deployment: str) -> str:
    """Dated versions put the deployment in the path; `v1` takes it as the body's model."""
    base = options.base_url.rstrip("/")
    if not base.endswith("/openai"):
        base += "/openai"
    if options.api_version == "v1":
        return f"{base}/v1/{PATHS[op]}"
    if op == "responses":    # not per deployment: the deployment is the body's model
        return f"{base}/responses?api-version={options.api_version}"
    return f"{base}/deployments/{quote(deployment, safe='')}/{PATHS[op]}?api-version={options.api_version}"


def video_base(options: Options) -> str:
    """Videos (Sora) are served by the versionless v1 API only, whatever `api_version`
    says for chat: `<resource>/openai/v1/videos`, the deployment as the body's model."""
    base = options.base_url.rstrip("/")
    if not base.endswith("/openai"):
        base += "/openai"
    return f"{base}/v1"


def headers(options: Options) -> dict[str, str]:
    h = {"content-type": "application/json"}
    if options.api_key:
        h["api-key"] = options.api_key
    elif options.azure_ad_token:
        h["authorization"] = f"Bearer {options.azure_ad_token}"
    h.update(options.headers)
    return h
