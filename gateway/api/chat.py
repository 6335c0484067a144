"""OpenAI's chat completions and embeddings: the gateway's native dialect,
passed to providers as the client sent it (`Call.body`) and answered as the
provider adapter made it."""
from __future__ import annotations

from gateway import protocol
from gateway.exchange import AnswerDialect, Inbound


class ChatCompletions(AnswerDialect):
    """POST /v1/chat/completions"""
    kind = "chat"
    op = "chat"

    def parse(self, body: bytes) -> Inbound:
        data, stream = protocol.chat_request(body)
        return Inbound(data["model"], data, stream)


class Embeddings(AnswerDialect):
    """POST /v1/embeddings"""
    kind = "embedding"
    endpoint = "embeddings"
    op = "embeddings"

    def parse(self, body: bytes) -> Inbound:
        data = protocol.embeddings_request(body)
        return Inbound(data["model"], data)


CHAT = ChatCompletions()
EMBEDDINGS = Embeddings()
