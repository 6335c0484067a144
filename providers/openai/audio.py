"""OpenAI's Audio API upstream, as pure functions: a transcription's form rebuilt
for the target (its own model name, the client's other fields and file, the
file's bytes read from its spool as they are sent), and
what makes a 200 an answer. Speech must be audio (a JSON body or an HTML page
under a 200 is a failure, and fails over before the client gets a byte); a
transcript must be in the format asked for. Its usage: gpt-4o-transcribe
models count tokens (`usage: {"type": "tokens", "input_tokens", ...}`),
whisper-1 counts seconds (`{"type": "duration", "seconds"}`)."""
from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson

from providers import sse
from providers.base import Reply, Usage
from providers.connections import StreamedBody
from providers.openai.video import multipart
from providers.spool import SpooledUpload

# Each speech format and the media type OpenAI answers it with.
SPEECH_FORMATS = {"mp3": "audio/mpeg", "opus": "audio/opus", "aac": "audio/aac", "flac": "audio/flac",
                  "wav": "audio/wav", "pcm": "audio/pcm"}
TEXT_FORMATS = frozenset({"text", "srt", "vtt"})
_UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def form(data: dict[str, Any], model: str) -> tuple[StreamedBody, str]:
    """(body, content type) of a transcription or translation for the upstream: its model, the
    client's other fields, then the file, read from its spool as the body is sent."""
    upload: SpooledUpload = data["file"]
    parts: list[tuple[str, Any]] = [("model", model), *data["fields"],
                                    ("file", (upload.filename, upload.media_type, b""))]
    empty, content_type = multipart(parts)
    boundary = content_type.rpartition("boundary=")[2]
    end = f"\r\n--{boundary}--\r\n".encode()
    head = empty[:-len(end)]     # every part, and the file's headers: its bytes go between head and end

    async def pieces() -> AsyncGenerator[bytes, None]:
        yield head
        async for piece in upload.spool.pieces():
            yield piece
        yield end

    return StreamedBody(len(head) + upload.size + len(end), pieces), content_type


def speech_type(upstream: str, fmt: str) -> str | None:
    """The media type to relay speech under: the upstream's own where it says audio, the
    format's where it says nothing more than bytes; None where it is not audio."""
    if upstream.startswith("audio/"):
        return upstream
    if upstream in _UNTYPED:
        return SPEECH_FORMATS.get(fmt, "application/octet-stream")
    return None


def transcript(body: bytes, fmt: str, media_type: str = "") -> tuple[str | None, dict[str, Any] | None]:
    """(what is wrong with a 200's body, None if nothing; the JSON answer, for the JSON formats)."""
    if fmt in TEXT_FORMATS:
        if media_type == "text/html":
            return "answered a transcript with an HTML page", None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return f"answered a {fmt} transcript that is not UTF-8 text", None
        if fmt == "vtt" and not text.lstrip("\ufeff \r\n").startswith("WEBVTT"):
            return "answered a vtt transcript that does not begin with WEBVTT", None
        return None, None
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "answered 200 with a body that is not JSON", None
    if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
        return "answered 200 without the transcript's 'text'", None
    return None, doc


def usage_in(doc: dict[str, Any] | None) -> Usage | None:
    """Tokens, where the answer counts them (a duration is no tokens: None)."""
    usage = doc.get("usage") if doc is not None else None
    if not isinstance(usage, dict):
        return None
    tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
    if not isinstance(tokens_in, int) and not isinstance(tokens_out, int):
        return None
    return Usage(prompt_tokens=tokens_in if isinstance(tokens_in, int) else 0,
                 completion_tokens=tokens_out if isinstance(tokens_out, int) else 0)


def heard_seconds(doc: dict[str, Any] | None) -> float | None:
    """How long the audio was, as the answer says: `usage.seconds` (what whisper-1 bills), else a
    verbose answer's `duration`."""
    if doc is None:
        return None
    usage = doc.get("usage")
    for value in (usage.get("seconds") if isinstance(usage, dict) else None, doc.get("duration")):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 10**7:
            return float(value)
    return None


_DONE = b'"transcript.text.done"'


def watch_usage(reply: Reply) -> Callable[[bytes], bytes]:
    """A streamed transcript relayed untouched, its usage noted from its `transcript.text.done` event."""
    def watch(block: bytes) -> bytes:
        at = block.rfind(_DONE)
        if at >= 0:
            data = sse.lone_data_at(block, at)
            if data is not None:
                try:
                    doc = orjson.loads(data)
                except orjson.JSONDecodeError:
                    doc = None
                if isinstance(doc, dict):
                    reply.usage = usage_in(doc) or reply.usage
        return block
    return watch
