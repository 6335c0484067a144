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
from tests.upstreams.batch_runs import BatchKnobs, FakeBatch, look, new_id
from tests.upstreams.image_sample import png
from tests.upstreams.server import FakeServer, Seen, json_response, sse_events

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
        # The Batch API (files with purpose=batch, /batches): how its batches end, and what it holds.
        self.batch = BatchKnobs()
        self.files: dict[str, tuple[str, str, bytes]] = {}     # id -> (purpose, filename, bytes)
        self.batches: dict[str, FakeBatch] = {}
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
        app.router.add_post("/v1/files", self._file_upload)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._batch_create)
        app.router.add_get("/v1/batches/{batch_id}", self._batch_get)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self._batch_cancel)

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
            return web.Response(body=self.chat_answer(orjson.loads(body)), content_type="application/json")
        return await self.stream(request, sse_events(self.stream_body))

    def chat_answer(self, request: dict[str, Any]) -> bytes:
        """A whole (not streamed) chat completion for `request`: what /chat/completions and a batch answer."""
        return self.chat_body

    # -- the Batch API ---------------------------------------------------------------

    async def _batch_answer(self, request: web.Request) -> tuple[bytes, web.Response | None]:
        """The request's body noted; an answer in place of the real one where the knobs ask for it."""
        body = await self.record(request)
        failed = await self.fail_or_wait()
        if failed is None and self.batch.answer is not None:
            failed = web.Response(body=self.batch.answer, content_type="application/json")
        return body, failed

    async def _file_upload(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._batch_answer(request)
        if failed is not None:
            return failed
        fields = dict(form_parts(request.headers.get("content-type", ""), body))
        upload, purpose = fields.get("file"), fields.get("purpose")
        if not isinstance(upload, tuple) or purpose not in ("batch", "assistants", "fine-tune", "vision", "user_data",
                                                            "evals"):
            return _openai_error(400, "'file' and a valid 'purpose' are required", param="purpose")
        file_id = new_id("file-")
        self.files[file_id] = (purpose, upload[0], upload[2])
        return _json(_file_object(file_id, purpose, upload[0], len(upload[2])))

    async def _file_content(self, request: web.Request) -> web.StreamResponse:
        _, failed = await self._batch_answer(request)
        if failed is not None:
            return failed
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return _openai_error(404, f"No such File object: {request.match_info['file_id']}", param="id")
        return web.Response(body=found[2], content_type="application/octet-stream")

    async def _batch_create(self, request: web.Request) -> web.StreamResponse:
        body, failed = await self._batch_answer(request)
        if failed is not None:
            return failed
        doc = orjson.loads(body)
        found = self.files.get(doc.get("input_file_id") or "")
        if found is None or found[0] != "batch":
            return _openai_error(400, "input_file_id must be a file uploaded with purpose 'batch'",
                                 param="input_file_id")
        if doc.get("completion_window") != "24h" or doc.get("endpoint") not in ("/v1/chat/completions",
                                                                                "/v1/embeddings", "/v1/responses"):
            return _openai_error(400, "Invalid endpoint or completion_window", param="endpoint")
        requests, errors = _batch_lines(found[2], doc["endpoint"])
        batch = FakeBatch(new_id("batch_"), requests, extra={"input_file_id": doc["input_file_id"],
                                                              "endpoint": doc["endpoint"], "errors": errors})
        if errors:        # refused at validation: failed, nothing run
            batch.ended, batch.ended_at = "failed", time.time()
        self.batches[batch.id] = batch
        return _json(self._batch_object(batch))

    async def _batch_get(self, request: web.Request) -> web.StreamResponse:
        batch = await self._found_batch(request)
        if not isinstance(batch, FakeBatch):
            return batch
        look(batch, self.batch, lambda _, req: (200, orjson.loads(self.chat_answer(req))))
        return _json(self._batch_object(batch))

    async def _found_batch(self, request: web.Request) -> FakeBatch | web.StreamResponse:
        """The batch the path names, once the request passed `_batch_answer`; else the answer to give."""
        _, failed = await self._batch_answer(request)
        if failed is not None:
            return failed
        batch = self.batches.get(request.match_info["batch_id"])
        return batch or _openai_error(404, f"No batch found with id '{request.match_info['batch_id']}'.")

    async def _batch_cancel(self, request: web.Request) -> web.StreamResponse:
        batch = await self._found_batch(request)
        if not isinstance(batch, FakeBatch):
            return batch
        if batch.ended is not None:
            return _openai_error(400, f"Cannot cancel a batch with status '{_STATUS[batch.ended]}'.")
        batch.cancel_asked = batch.cancel_asked or time.time()
        return _json(self._batch_object(batch))

    def _batch_object(self, batch: FakeBatch) -> dict[str, Any]:
        """The batch as OpenAI describes it; an ended one's output and error files made (once)."""
        status = _STATUS[batch.ended] if batch.ended else "cancelling" if batch.cancel_asked else "in_progress"
        made = int(batch.created)
        ended = int(batch.ended_at or 0) or None
        out: dict[str, Any] = {
            "id": batch.id, "object": "batch", "endpoint": batch.extra["endpoint"], "model": None,
            "errors": None, "input_file_id": batch.extra["input_file_id"], "completion_window": "24h",
            "status": status, "output_file_id": None, "error_file_id": None, "created_at": made,
            "in_progress_at": made, "expires_at": made + 86400, "finalizing_at": ended, "completed_at": None,
            "failed_at": None, "expired_at": None, "cancelling_at": int(batch.cancel_asked or 0) or None,
            "cancelled_at": None, "metadata": None,
            "request_counts": {"total": len(batch.requests),
                               "completed": sum(1 for s, _ in batch.answers.values() if s == 200),
                               "failed": sum(1 for s, _ in batch.answers.values() if s != 200)}}
        if batch.ended is None:
            return out
        out[f"{status}_at"] = ended
        if batch.ended == "failed":
            errors = batch.extra["errors"] or [{"code": "batch_failed", "message": "The batch failed.",
                                                "param": None, "line": None}]
            out["errors"] = {"object": "list", "data": errors}
            return out
        if "files" not in batch.extra:
            batch.extra["files"] = self._result_files(batch)
        out["output_file_id"], out["error_file_id"] = batch.extra["files"]
        return out

    def _result_files(self, batch: FakeBatch) -> tuple[str | None, str | None]:
        """The output file (2xx answers) and the error file (the others, and the requests never run)."""
        output, errors = [], []
        for custom_id, _ in batch.requests:
            line: dict[str, Any] = {"id": new_id("batch_req_"), "custom_id": custom_id, "response": None,
                                    "error": None}
            if custom_id in batch.answers:
                status, body = batch.answers[custom_id]
                if body is None:
                    body = orjson.loads(_ERROR_BODIES.get(status, "error_500.json").read_bytes())
                line["response"] = {"status_code": status, "request_id": new_id("req_"), "body": body}
                (output if status == 200 else errors).append(line)
            elif self.batch.report_unrun:
                code = "batch_cancelled" if batch.ended == "cancelled" else "batch_expired"
                line["error"] = {"code": code, "message": "This request could not be executed before the "
                                 "completion window expired." if code == "batch_expired" else
                                 "This request was not executed because the batch was cancelled."}
                errors.append(line)
        ids: list[str | None] = []
        for lines in (output, errors):
            if not lines:
                ids.append(None)
                continue
            file_id = new_id("file-")
            self.files[file_id] = ("batch_output", f"{batch.id}_output.jsonl",
                                   b"".join(orjson.dumps(x) + b"\n" for x in lines))
            ids.append(file_id)
        return ids[0], ids[1]

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        failed = await self.fail_or_wait()
        return failed or web.Response(body=recorded("embeddings.json"), content_type="application/json")


_STATUS = {"completed": "completed", "expired": "expired", "cancelled": "cancelled", "failed": "failed"}
_ERROR_BODIES = {400: RECORDED / "error_400_context.json", 401: RECORDED / "error_401.json",
                 429: RECORDED / "error_429.json", 500: RECORDED / "error_500.json"}


def _batch_lines(data: bytes, endpoint: str) -> tuple[list[tuple[str, Any]], list[dict[str, Any]]]:
    """An input file's requests (custom id, body), and what validation finds wrong with it (by line)."""
    requests: list[tuple[str, Any]] = []
    errors: list[dict[str, Any]] = []
    models: set[str] = set()
    for number, raw in enumerate(data.splitlines(), 1):
        problem = _line_problem(raw, endpoint, {c for c, _ in requests})
        if problem is not None:
            errors.append({**problem, "line": number})
            continue
        line = orjson.loads(raw)
        models.add(line["body"]["model"])
        requests.append((line["custom_id"], line["body"]))
    if len(models) > 1:
        errors.append({"code": "mismatched_model", "message": "The provided model does not match the model "
                       "of the other requests in the batch.", "param": "body.model", "line": None})
    if not data.strip():
        errors.append({"code": "empty_file", "message": "The batch input file is empty.", "param": None,
                       "line": None})
    return requests, errors


def _line_problem(raw: bytes, endpoint: str, seen: set[str]) -> dict[str, Any] | None:
    """What OpenAI's validation refuses an input line for (None: nothing)."""
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.", "param": None}
    if not isinstance(line, dict):
        return {"code": "invalid_json_line", "message": "This line is not a JSON object.", "param": None}
    custom_id, body = line.get("custom_id"), line.get("body")
    if not isinstance(custom_id, str) or custom_id in seen:
        return {"code": "duplicate_custom_id", "param": "custom_id",
                "message": "The custom_id for this request is a duplicate of another request."}
    if line.get("method") != "POST" or line.get("url") != endpoint:
        return {"code": "invalid_url", "param": "url",
                "message": f"The url provided for this request does not match the batch endpoint {endpoint}."}
    if not isinstance(body, dict) or not isinstance(body.get("model"), str):
        return {"code": "missing_required_parameter", "message": "The request body must name a model.",
                "param": "body.model"}
    return None


def _file_object(file_id: str, purpose: str, filename: str, size: int) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "bytes": size, "created_at": int(time.time()), "filename": filename,
            "purpose": purpose, "status": "processed", "expires_at": None, "status_details": None}


def _json(doc: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(doc), content_type="application/json")


def _openai_error(status: int, message: str, *, param: str | None = None) -> web.Response:
    return json_response(status, orjson.dumps({"error": {"message": message, "type": "invalid_request_error",
                                                         "param": param, "code": None}}))


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

