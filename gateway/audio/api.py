"""`POST /v1/audio/speech`, `/v1/audio/transcriptions` and `/v1/audio/translations`,
as OpenAI's Audio API and the SDK's `client.audio.speech`, `.transcriptions` and
`.translations` expect them: routed, limited, priced and failed over through the
same exchange as chat.

Speech is relayed as the backend makes it: the client has the first bytes while
the rest is still being spoken, under the audio's own content type, with its
cost in `x-gateway-cost-usd` already (it depends on the input alone). Until the
first byte a failure fails over; after it, the connection is closed (an error
event has no place in an audio file), so the client sees a cut-off body. A
transcription's upload is read as it arrives, its file spooled to a temp file
and sent on from there (providers/spool.py); its transcript is answered whole
in the asked `response_format` (the text formats as text/plain).

Cost: speech is the target's `per_mchar` price times the input's characters; a
transcript is its `per_second` price times the audio's seconds (from the WAV
header where the upload is a WAV, else as the backend reports them, else 0),
and either adds its token prices where the backend counts tokens."""
from __future__ import annotations

import logging
import tempfile
from collections.abc import AsyncGenerator
from contextlib import ExitStack, aclosing
from typing import Any

import orjson

from gateway import protocol as json_protocol
from gateway.asgi import AnswerCut, Request
from gateway.audio import protocol
from gateway.audio.pricing import heard_cost_nano, speech_cost_nano
from gateway.errors import ApiError
from gateway.exchange import COST_USD, AnswerDialect, Exchange, Inbound, Translation
from gateway.spend import cost_nano, usd
from providers.base import Reply, Usage
from providers.openai.audio import SPEECH_FORMATS, TEXT_FORMATS, heard_seconds, transcript
from providers.spool import Spool

log = logging.getLogger("gateway")

_TEXT = b"text/plain; charset=utf-8"


class Speech(AnswerDialect):
    """POST /v1/audio/speech"""
    kind = "speech"
    op = "speech"
    endpoint = "speech"
    cacheable = False

    def parse(self, body: bytes) -> Inbound:
        data = protocol.speech(body)
        return Inbound(data["model"], data, answer=SpeechAudio(data))


class Transcriptions(AnswerDialect):
    """POST /v1/audio/transcriptions"""
    kind = "transcription"
    op = "transcriptions"
    endpoint = "transcriptions"
    cacheable = False
    form = True
    form_max_body = protocol.MAX_BODY_BYTES

    def parse(self, body: bytes) -> Inbound:
        raise ApiError(400, f"POST /v1/audio/{self.op} takes multipart/form-data with the audio as a file.",
                       code="invalid_request_error")

    async def read_form(self, req: Request, limit: int, uploads: ExitStack) -> tuple[bytes, Inbound]:
        """The form as it arrives, its file spooled to disk (the spool closed when the request ends),
        at most MAX_BODY_BYTES of it, whatever `server.max_body_mb` says."""
        form = protocol.TranscriptionForm(req.headers.get(b"content-type", b""), self.op,
                                          lambda: uploads.enter_context(Spool()))
        try:
            async with aclosing(req.pieces(min(limit, protocol.MAX_BODY_BYTES))) as pieces:
                async for piece in pieces:
                    form.feed(piece)
            data = form.finish()
        except OSError as e:    # the temp dir is full or not writable: the gateway's to fix, not the client's
            log.warning("could not spool an audio upload to %s: %s", tempfile.gettempdir(), e)
            raise ApiError(503, "The gateway could not keep the upload for now; try again later.",
                           type="server_error", code="upload_not_kept") from None
        # Limits and budgets estimate a request's tokens from its body: here that is the form's
        # text, not the audio's bytes (what the audio counts is settled once the backend says).
        text = orjson.dumps({k: v for k, v in data.items() if isinstance(v, (str, float))})
        return text, Inbound(data["model"], data, stream=data["stream"], answer=Transcript(data))


class Translations(Transcriptions):
    """POST /v1/audio/translations"""
    op = "translations"
    endpoint = "translations"


SPEECH = Speech()
TRANSCRIPTIONS = Transcriptions()
TRANSLATIONS = Translations()


class SpeechAudio(Translation):
    """The backend's audio as it comes, under its media type; priced by the input's characters."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.characters = len(data["input"])
        self.events = protocol.as_events(data)     # stream_format "sse": the backend's events, relayed
        self.content_type = self.stream_content_type = \
            b"text/event-stream" if self.events else SPEECH_FORMATS[protocol.speech_format(data)].encode("latin-1")

    async def whole(self, x: Exchange, reply: Reply) -> bytes:
        """A backend that answers the audio whole (none here does yet)."""
        self.content_type = _audio_type(reply, self.content_type)
        x.cost += self.streamed_cost(x, reply)
        return reply.body

    async def stream(self, x: Exchange, reply: Reply, first: bytes) -> AsyncGenerator[bytes, None]:
        # Before the first byte goes out: its media type, and its cost, known from the input alone
        # (the audio counts no tokens), in the headers of the stream.
        if not self.events:
            self.stream_content_type = _audio_type(reply, self.stream_content_type)
        if reply.usage is None:
            reply.usage = Usage()
        price = x.target.price if x.target is not None else None
        x.headers.append((COST_USD, usd(cost_nano(price, reply.usage) + self.streamed_cost(x, reply)).encode()))
        yield first
        assert reply.chunks is not None
        async for chunk in reply.chunks:
            yield chunk

    def stream_error(self, message: str, type: str, code: str | None) -> bytes:
        if self.events:
            return json_protocol.stream_error(message, type, code)
        raise AnswerCut(f"the speech broke off after its first bytes: {message}")

    def streamed_cost(self, x: Exchange, reply: Reply) -> int:
        return speech_cost_nano(x.target.price if x.target is not None else None, self.characters)


def _audio_type(reply: Reply, otherwise: bytes) -> bytes:
    """The backend's media type where it says audio (adapters check), else the format's."""
    return reply.content_type if reply.content_type.startswith(b"audio/") else otherwise


class Transcript(Translation):
    """The backend's transcript as it is, checked, under its format's content type; priced by the seconds heard."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.format = data["response_format"]
        self.file_seconds: float | None = data["file_seconds"]
        if self.format in TEXT_FORMATS:
            self.content_type = _TEXT

    async def whole(self, x: Exchange, reply: Reply) -> bytes:
        problem, doc = transcript(reply.body, self.format)
        if problem is not None:      # adapters fail over on this already: the last guard
            raise ApiError(502, f"Provider '{x.provider}' {problem}.", type="server_error", code="upstream_malformed")
        seconds = self.file_seconds if self.file_seconds is not None else heard_seconds(doc)
        x.cost += heard_cost_nano(x.target.price if x.target is not None else None, seconds or 0.0)
        return reply.body

    async def stream(self, x: Exchange, reply: Reply, first: bytes) -> AsyncGenerator[bytes, None]:
        """`stream=true`: the backend's events (`transcript.text.delta`, then `transcript.text.done`
        with the text and its usage) relayed as they come."""
        yield first
        assert reply.chunks is not None
        async for chunk in reply.chunks:
            yield chunk

    def stream_error(self, message: str, type: str, code: str | None) -> bytes:
        return json_protocol.stream_error(message, type, code)

    def streamed_cost(self, x: Exchange, reply: Reply) -> int:
        """A streamed transcript's seconds, where the file's header says them (its tokens are priced
        from the last event's usage)."""
        return heard_cost_nano(x.target.price if x.target is not None else None, self.file_seconds or 0.0)
