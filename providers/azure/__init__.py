"""`type: azure_openai`: Azure OpenAI deployments. The wire format is OpenAI's,
so bodies pass through; only where to send and the error codes differ."""
from __future__ import annotations

from collections.abc import Mapping

from providers.azure import api
from providers.azure.errors import parse_error
from providers.base import Call
from providers.errors import ProviderError
from providers.http import UpstreamRequest
from providers.openai import OpenAIFormat, OpenAIVideos
from providers.openai.api import video_headers


class AzureOpenAIProvider(OpenAIFormat[api.Options], OpenAIVideos[api.Options]):
    Options = api.Options
    operations = frozenset({"chat", "embeddings", "video", "images", "speech", "transcriptions", "translations"})
    video_ops = frozenset({"create", "remix"})    # Azure's v1 /videos: no edits or extensions yet

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self._headers = api.headers(options)
        self._urls: dict[tuple[str, str], str] = {}
        self.video_base = api.video_base(options)
        self.video_headers = video_headers(self._headers)
        if options.responses == "native" or (options.responses == "auto" and options.api_version == "v1"):
            self.native_ops = frozenset({"responses"})

    @classmethod
    def disabled_reason(cls, options: api.Options) -> str | None:
        if not options.enabled:
            return "enabled: false"
        if not options.api_key and not options.azure_ad_token:
            return "api_key and azure_ad_token are empty"
        return None

    def request(self, call: Call) -> UpstreamRequest:
        op = "responses" if self.native(call) is not None else call.op
        url = self._urls.get((op, call.model))
        if url is None:
            url = self._urls[(op, call.model)] = api.url(self.options, op, call.model)
        return UpstreamRequest(url, self.body(call), self._headers)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        secret = self.options.api_key or self.options.azure_ad_token
        return parse_error(status, body, headers, provider=self.name, secret=secret)
