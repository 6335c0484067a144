"""A fake OpenAI API on loopback: recorded bodies from tests/data/openai, and
knobs to make it fail the ways real upstreams do."""
from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import hashlib
import io
import math
import time
import wave
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from tests.harness import DATA, Loop
from tests.upstreams.image_sample import png
from tests.upstreams.server import FakeServer, Seen, sse_events

RECORDED = DATA / "openai"


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


class FakeOpenAI(FakeServer):
    def __init__(self, loop: Loop, name: str = "fake") -> None:
        self.name = name
        self.chat_body = recorded("chat_completion.json")
        self.stream_body = recorded("chat_stream.sse")
        self.responses_made: list[str] = []     # ids of the responses it answered (and so knows)
        self.images_answer: bytes | None = None
        # Audio: speech goes out in `speech_pieces` writes `speech_gap_s` apart, each write's time noted
        # in `speech_sent`; `speech_answer` / `transcript_answer`, when set, are sent instead (a hostile 200).
        self.speech_pieces, self.speech_gap_s = 4, 0.0
        self.speech_sent: list[float] = []
        self.speech_answer: tuple[bytes, str] | None = None
        self.transcript_answer: tuple[bytes, str] | None = None
        self.audio_forms: list[list[tuple[str, Any]]] = []    # each transcription's parts, in order
        # Uploads hashed as they are read, none kept (a file's part is (filename, media type, Heard)),
        # and noted in `audio_forms` once read; `upload_gap_s` between reads of 64 KiB (one that reads slowly).
        self.hash_uploads = False
        self.upload_gap_s = 0.0
        super().__init__(loop, "/v1")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/v1/responses", self._responses)
        app.router.add_post("/v1/images/generations", self._images)
        app.router.add_post("/v1/images/edits", self._images)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_post("/v1/audio/transcriptions", self._transcript)
        app.router.add_post("/v1/audio/translations", self._transcript)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        """Speech as OpenAI streams it: a WAV (for `wav`, else an MP3-looking body) in several writes."""
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if self.speech_answer is not None:
            return web.Response(body=self.speech_answer[0], headers={"content-type": self.speech_answer[1]})
        doc = orjson.loads(body)
        fmt = doc.get("response_format") or "mp3"
        audio = _wav(len(doc["input"])) if fmt == "wav" else b"ID3\x04\x00" + bytes(range(256)) * 40
        resp = web.StreamResponse(headers={"content-type": "audio/wav" if fmt == "wav" else "audio/mpeg"})
        await resp.prepare(request)
        step = -(-len(audio) // self.speech_pieces)
        for i in range(0, len(audio), step):
            if i and self.speech_gap_s:
                await asyncio.sleep(self.speech_gap_s)
            await resp.write(audio[i:i + step])
            self.speech_sent.append(time.monotonic())
        await resp.write_eof()
        return resp

    async def _transcript(self, request: web.Request) -> web.StreamResponse:
        """Transcriptions and translations in each response_format; gpt-4o models count tokens,
        whisper counts seconds."""
        if self.hash_uploads:       # noted once read, even where the fake then fails
            self.seen.append(Seen(request.path, dict(request.headers), b""))
            parts = await self._hashed_form(request)
            self.audio_forms.append(parts)
        else:
            body = await self.record(request)
            parts = form_parts(request.headers.get("content-type", ""), body)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if not self.hash_uploads:
            self.audio_forms.append(parts)
        if self.transcript_answer is not None:
            return web.Response(body=self.transcript_answer[0], headers={"content-type": self.transcript_answer[1]})
        fields = dict(parts)
        text = "The fake heard the audio."
        fmt = fields.get("response_format", "json")
        if fields.get("stream") == "true":     # gpt-4o-transcribe's events: a delta a word, then done
            words = text.split(" ")
            events = [{"type": "transcript.text.delta", "delta": (" " if i else "") + w} for i, w in enumerate(words)]
            events.append({"type": "transcript.text.done", "text": text, "usage": {
                "type": "tokens", "input_tokens": 120, "output_tokens": 30, "total_tokens": 150}})
            return await self.stream(request, [b"data: " + orjson.dumps(e) + b"\n\n" for e in events])
        if fmt in ("text", "srt", "vtt"):
            lines = {"text": f"{text}\n", "srt": f"1\n00:00:00,000 --> 00:00:07,500\n{text}\n\n",
                     "vtt": f"WEBVTT\n\n00:00:00.000 --> 00:00:07.500\n{text}\n\n"}
            return web.Response(text=lines[fmt], content_type="text/plain")
        usage = ({"type": "tokens", "input_tokens": 120, "output_tokens": 30, "total_tokens": 150,
                  "input_token_details": {"audio_tokens": 120, "text_tokens": 0}}
                 if str(fields.get("model")).startswith("gpt-4o") else {"type": "duration", "seconds": 8})
        doc: dict[str, Any] = {"text": text, "usage": usage}
        if fmt == "verbose_json":
            doc = {"task": "translate" if request.path.endswith("translations") else "transcribe",
                   "language": "english", "duration": 7.5, "text": text,
                   "segments": [{"id": 0, "seek": 0, "start": 0.0, "end": 7.5, "text": text, "tokens": [1, 2],
                                 "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.1,
                                 "no_speech_prob": 0.01}]}
        return web.Response(body=orjson.dumps(doc), content_type="application/json")

    async def _hashed_form(self, request: web.Request) -> list[tuple[str, Any]]:
        """A form read part by part as it arrives, its files hashed and let go of a piece at a time."""
        parts: list[tuple[str, Any]] = []
        reader = await request.multipart()
        async for part in reader:
            assert isinstance(part, BodyPartReader)
            if part.filename is None:
                parts.append((part.name or "", await part.text()))
                continue
            heard = Heard()
            while piece := await part.read_chunk(64 * 1024):
                heard.sha256.update(piece)
                heard.size += len(piece)
                if self.upload_gap_s:
                    await asyncio.sleep(self.upload_gap_s)
            parts.append((part.name or "", (part.filename, part.headers.get("content-type", ""), heard)))
        return parts

    async def _images(self, request: web.Request) -> web.StreamResponse:
        """The Images API as gpt-image-1 answers: a PNG of the asked size per image, and token usage.
        `images_answer`, when set, is sent instead (a hostile 200)."""
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if self.images_answer is not None:
            return web.Response(body=self.images_answer, content_type="application/json")
        if request.path.endswith("/edits"):
            from tests.upstreams.openai_video_fake import parse_form
            fields = parse_form(request.headers.get("content-type", ""), body)
        else:
            fields = orjson.loads(body)
        w, _, h = str(fields.get("size") or "1024x1024").partition("x")
        n = int(fields.get("n") or 1)
        return web.Response(content_type="application/json", body=orjson.dumps({
            "created": 1767225600, "background": "opaque", "output_format": "png", "quality": "high",
            "size": f"{w}x{h}", "data": [{"b64_json": base64.b64encode(png(int(w), int(h), f"openai-{i}")).decode()}
                                         for i in range(n)],
            "usage": {"input_tokens": 50, "output_tokens": 4160, "total_tokens": 4210,
                      "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}}}))

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        """The Responses API: recorded answers under a new id each time; a
        previous_response_id it did not make is a 400, as OpenAI answers."""
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        doc = orjson.loads(body)
        previous = doc.get("previous_response_id")
        if previous is not None and previous not in self.responses_made:
            return web.Response(status=400, content_type="application/json", body=orjson.dumps({"error": {
                "message": f"Previous response with id '{previous}' not found.", "type": "invalid_request_error",
                "param": "previous_response_id", "code": "previous_response_not_found"}}))
        made = f"resp_{self.name}{len(self.responses_made):04d}" + "0" * 40
        self.responses_made.append(made)
        if not doc.get("stream"):
            answer = orjson.loads(recorded("response.json"))
            answer.update(id=made, previous_response_id=previous)
            return web.Response(body=orjson.dumps(answer), content_type="application/json")
        stream = recorded("response_stream.sse").replace(b"resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654",
                                                         made.encode())
        return await self.stream(request, sse_events(stream))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if not orjson.loads(body).get("stream"):
            return web.Response(body=self.chat_body, content_type="application/json")
        return await self.stream(request, sse_events(self.stream_body))

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        failed = await self.fail_or_wait()
        return failed or web.Response(body=recorded("embeddings.json"), content_type="application/json")


@dataclass
class Heard:
    """A file as a hashing fake read it: its size and running sha256."""
    size: int = 0
    sha256: Any = field(default_factory=hashlib.sha256)


def form_parts(content_type: str, body: bytes) -> list[tuple[str, Any]]:
    """A multipart/form-data body's parts in order: text as str, files as (filename, media type, bytes)."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    out: list[tuple[str, Any]] = []
    for part in msg.iter_parts():
        data = part.get_payload(decode=True)
        filename = part.get_filename()
        out.append((part.get_param("name", header="content-disposition"),
                    (filename, part.get_content_type(), data) if filename else data.decode()))
    return out


def _wav(characters: int) -> bytes:
    """A 24 kHz mono tone, 50 ms a character."""
    frames = 1200 * characters
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(24_000)
        w.writeframes(b"".join(int(8000 * math.sin(i / 10)).to_bytes(2, "little", signed=True)
                               for i in range(240)) * (frames // 240))
    return out.getvalue()

