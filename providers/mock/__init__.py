"""`type: mock`: an in-process provider for trying the gateway out, tests and
load tests. Its knobs make it slow, flaky or cut off on purpose.

Video: a real MP4 rendered on CPU (providers/mock/video.py) from a hash of
the prompt and seed, at `video_fps`, with progress as frames are encoded."""
from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from pydantic import ConfigDict, Field

from providers import errors, video_fit
from providers.base import Call, Progress, Provider, Reply, Usage, VideoFiles, VideoSpec
from providers.mock.answers import BadFormat, ChatAnswer, TooLarge, embedding_answer
from providers.options import ProviderConfig
from providers.video_fit import Plan, VideoFit
from providers.video_hints import prompt_with_hints

T = TypeVar("T")


class Options(ProviderConfig):
    model_config = ConfigDict(extra="forbid")
    latency_ms: float = Field(0, ge=0)          # before the answer (or the first chunk)
    chunk_delay_ms: float = Field(0, ge=0)      # between stream chunks
    stream_chunks: int = Field(8, ge=1)         # content chunks per streamed answer
    reply_words: int = Field(16, ge=1)          # length of each answer
    fail_rate: float = Field(0, ge=0, le=1)     # share of calls that fail with fail_status
    fail_status: int = Field(503, ge=400, le=599)
    fail_after_chunks: int | None = Field(None, ge=0)  # cut every stream after this many chunks
    embedding_dim: int = Field(8, ge=1, le=4096)
    # video
    video_sizes: list[str] | None = None            # default: OpenAI's Sora sizes
    video_seconds: list[int] | None = None          # default: 4, 8, 12
    # exact: with no video_sizes/video_seconds set, renders any size and length within providers/video_fit.py's
    # bounds as asked; with them set, fits the others as every backend does. native: those (or Sora's) only.
    video_fit: VideoFit = "exact"
    video_fps: int = Field(8, ge=1, le=60)
    video_latency_ms: float = Field(0, ge=0)        # extra time per job, spread over its progress steps
    video_fail_rate: float = Field(0, ge=0, le=1)   # share of jobs that fail after starting
    max_concurrent: int = Field(2, ge=1)            # jobs rendered at once, per gateway process
    max_queue: int = Field(100, ge=1)               # jobs waiting or running; more are refused (failover)


class _Cancelled(Exception):
    pass


_LARGE_BODY = 64 * 1024     # past this, an answer is built on a thread, so /healthz and others go on meanwhile


def _values(data: dict[str, Any]) -> int:
    """About how many numbers an embeddings answer holds (inputs x dimensions)."""
    inputs, dims = data.get("input"), data.get("dimensions")
    return (len(inputs) if isinstance(inputs, list) else 1) * (dims if isinstance(dims, int) else 8)


def _wants_schema(data: dict[str, Any]) -> bool:
    """An instance of a schema is made on a thread: a hostile one takes up to ~40 ms to refuse."""
    fmt = data.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") == "json_schema"


async def _off_loop_if(large: bool, make: Callable[..., T], *args: Any) -> T:
    """`make(*args)`, on a thread when `large`: its Python-level work yields the GIL every few ms."""
    return await asyncio.to_thread(make, *args) if large else make(*args)


class MockProvider(Provider[Options]):
    Options = Options
    operations = frozenset({"chat", "embeddings", "video", "images", "speech", "transcriptions", "translations"})
    video_ops = frozenset({"create", "remix", "edit", "extend"})

    async def _before_answer(self) -> None:
        o = self.options
        if o.latency_ms:
            await asyncio.sleep(o.latency_ms / 1000)
        if o.fail_rate and random.random() < o.fail_rate:
            raise errors.from_status(o.fail_status, f"mock provider '{self.name}' failed on purpose",
                                     provider=self.name, retry_after=1.0)

    async def chat(self, call: Call) -> Reply:
        await self._before_answer()
        try:
            answer = await _off_loop_if(len(call.body) > _LARGE_BODY or _wants_schema(call.data), ChatAnswer,
                                        call.data, call.model, self.options.reply_words, call.request_id)
        except TooLarge as e:
            raise errors.BadRequest(str(e), provider=self.name, code="answer_too_large") from None
        except BadFormat as e:
            raise errors.BadRequest(str(e), provider=self.name, param="response_format") from None
        usage = Usage(answer.prompt_tokens, answer.completion_tokens)
        if call.stream:
            # Like a real stream, usage is known only once it ends: one cut short is
            # charged what was relayed (see gateway/api/routed.py), not the whole answer.
            reply = Reply(content_type=b"text/event-stream")
            reply.chunks = self._stream(answer, reply, usage)
            return reply
        return Reply(body=await _off_loop_if(len(call.body) > _LARGE_BODY or answer.n > 8, answer.body), usage=usage)

    async def _stream(self, answer: ChatAnswer, reply: Reply, usage: Usage) -> AsyncIterator[bytes]:
        delay = self.options.chunk_delay_ms / 1000
        cut = self.options.fail_after_chunks
        for i, event in enumerate(answer.events(self.options.stream_chunks)):
            if cut is not None and i >= cut:
                raise errors.UpstreamFault(f"mock provider '{self.name}' cut the stream off on purpose",
                                           provider=self.name)
            if delay and i:
                await asyncio.sleep(delay)
            yield event
        reply.usage = usage

    async def embeddings(self, call: Call) -> Reply:
        await self._before_answer()
        try:
            body, tokens = await _off_loop_if(len(call.body) > _LARGE_BODY or _values(call.data) > 4096,
                                              embedding_answer, call.data, call.model, self.options.embedding_dim)
        except TooLarge as e:
            raise errors.BadRequest(str(e), provider=self.name, param="input", code="answer_too_large") from None
        return Reply(body=body, usage=Usage(tokens, 0))

    # -- images ----------------------------------------------------------------

    async def images(self, call: Call) -> Reply:
        """PNG (or JPEG, WEBP) images drawn from the prompt; an edit tints the image it is given."""
        from providers.mock import image  # Pillow loads with the first image

        await self._before_answer()
        try:
            body, _ = await asyncio.to_thread(image.answer, call.data, call.op == "image_edits")
        except (ValueError, OSError) as e:    # a size past the mock's, an image Pillow cannot open
            raise errors.BadRequest(f"mock provider '{self.name}' cannot draw this: {e}", provider=self.name,
                                    param="image" if call.op == "image_edits" else "size") from None
        return Reply(body=body, usage=Usage(len(call.data["prompt"]) // 4 + 1, 0))

    # -- audio -----------------------------------------------------------------

    async def audio(self, call: Call) -> Reply:
        """Speech: a real audio file of a tone (providers/mock/audio.py), sent in `stream_chunks`
        pieces `chunk_delay_ms` apart. Transcriptions and translations: a deterministic text."""
        from providers.mock import audio  # numpy and PyAV load with the first speech
        from providers.openai.audio import SPEECH_FORMATS

        await self._before_answer()
        if call.op != "speech":
            body, _ = await asyncio.to_thread(audio.transcript, call.data, call.op == "translations")
            if call.stream:     # the text's words as `transcript.text.delta` events, then the whole
                reply = Reply(content_type=b"text/event-stream")
                events = audio.transcript_events(body, call.data)
                reply.chunks = self._events(events, reply, Usage(1, len(events) - 1))
                return reply
            return Reply(body=body)
        made = await asyncio.to_thread(audio.speech, call.data)
        if call.data.get("stream_format") == "sse":     # the audio in base64 events, then done
            reply = Reply(content_type=b"text/event-stream")
            reply.chunks = self._events(audio.speech_events(made, self.options.stream_chunks,
                                                            len(call.data["input"])), reply)
            return reply
        fmt = call.data.get("response_format") or "mp3"
        return Reply(chunks=self._pieces(made), content_type=SPEECH_FORMATS[fmt].encode())

    async def _events(self, events: list[bytes], reply: Reply, usage: Usage | None = None) -> AsyncIterator[bytes]:
        delay = self.options.chunk_delay_ms / 1000
        for i, event in enumerate(events):
            if delay and i:
                await asyncio.sleep(delay)
            yield event
        reply.usage = usage

    async def _pieces(self, made: bytes) -> AsyncIterator[bytes]:
        step = -(-len(made) // self.options.stream_chunks)
        delay = self.options.chunk_delay_ms / 1000
        cut = self.options.fail_after_chunks
        for i, start in enumerate(range(0, len(made), step)):
            if cut is not None and i >= cut:
                raise errors.UpstreamFault(f"mock provider '{self.name}' cut the audio off on purpose",
                                           provider=self.name)
            if delay and i:
                await asyncio.sleep(delay)
            yield made[start:start + step]

    # -- video -----------------------------------------------------------------

    def video_plan(self, op: str, width: int, height: int, seconds: int) -> Plan | None:
        """It draws any size and length as asked (within video_fit's bounds) unless it is told to act
        as a backend of a few sizes (video_sizes, video_seconds), or kept to Sora's (video_fit: native)."""
        o = self.options
        if o.video_fit == "exact" and o.video_sizes is None and o.video_seconds is None \
                and video_fit.bounds_problem(width, height) is None and 1 <= seconds <= video_fit.MAX_SECONDS:
            return video_fit.native(width, height, seconds)
        return super().video_plan(op, width, height, seconds)

    async def video_submit(self, spec: VideoSpec) -> dict[str, Any]:
        await self._before_answer()
        return {}

    async def video_run(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> VideoFiles:
        from providers.mock.video import render  # PyAV and numpy load with the first video

        o = self.options
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        pause_per_step = o.video_latency_ms / 1000 / 100

        last = 0

        def on_progress(percent: int) -> None:   # on the render thread
            nonlocal last
            if stop.is_set():
                raise _Cancelled
            if pause_per_step:
                time.sleep(pause_per_step * max(1, percent - last))
            last = percent
            # ensure_future: `Progress` promises an awaitable, not necessarily a coroutine
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(progress(percent), loop=loop))

        try:
            rendered = await asyncio.to_thread(render, prompt_with_hints(spec), spec.width, spec.height,
                                               spec.seconds, o.video_fps, spec.seed, on_progress)
        finally:
            stop.set()   # a cancelled job's thread stops at its next frame
        self._fail_on_purpose()
        return VideoFiles(rendered.mp4, rendered.thumbnail_webp, rendered.spritesheet_jpeg)

    async def video_wait(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> None:
        """A segment that the next extends: its time and its chance to fail, not its frames (the
        extension renders the whole video, this segment's frames included)."""
        await progress(0)
        if self.options.video_latency_ms:
            await asyncio.sleep(self.options.video_latency_ms / 1000)
        self._fail_on_purpose()
        await progress(100)

    def _fail_on_purpose(self) -> None:
        o = self.options
        if o.video_fail_rate and random.random() < o.video_fail_rate:
            raise errors.UpstreamFault(f"mock provider '{self.name}' failed the video on purpose",
                                       provider=self.name, code="video_generation_failed")
