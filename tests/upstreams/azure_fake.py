"""A fake Azure OpenAI resource: deployments in the path, `api-version`,
`api-key`, Azure's own error bodies."""
from __future__ import annotations

from aiohttp import web

from tests.harness import DATA, Loop
from tests.upstreams.openai_fake import FakeOpenAI
from tests.upstreams.server import json_response

RECORDED = DATA / "azure"


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


class FakeAzure(FakeOpenAI):
    def __init__(self, loop: Loop, key: str = "azure-key", name: str = "azure") -> None:
        self.key = key
        self.deployments_called: list[tuple[str, str]] = []   # (deployment, api-version)
        super().__init__(loop, name)
        self.chat_body = recorded("chat_completion.json")
        self.stream_body = recorded("chat_stream.sse")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._deployment(self._chat))
        app.router.add_post("/openai/deployments/{deployment}/embeddings", self._deployment(self._embeddings))
        app.router.add_post("/openai/v1/chat/completions", self._deployment(self._chat))
        app.router.add_post("/openai/v1/responses", self._deployment(self._responses))

    def _deployment(self, handler):
        async def checked(request: web.Request) -> web.StreamResponse:
            if request.headers.get("api-key") != self.key:
                await self.record(request)
                return json_response(401, recorded("error_401.json"))
            version = request.query.get("api-version", "")
            if "deployment" in request.match_info and not version:
                return json_response(404, b'{"error":{"code":"404","message":"Resource not found"}}')
            self.deployments_called.append((request.match_info.get("deployment", ""), version))
            return await handler(request)
        return checked
