"""`type: openai` and `type: openai_compatible` (vLLM, llama.cpp, TGI, LM Studio ...)."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from providers import hosted_video, sse
from providers.base import VIDEO_OPS, Call, Native, Progress, Reply, VideoFiles, VideoSpec
from providers.chat_format import wants_usage_chunk
from providers.errors import ProviderError
from providers.hosted_video import VideoOptionsT
from providers.http import HttpOptionsT, HttpProvider, UpstreamRequest, json_object
from providers.openai import api, audio, chat, images, responses, video
from providers.openai.batches import OpenAIBatches
from providers.options import ProviderConfig

log = logging.getLogger("gateway.providers")

# The list a client reads an answer from, by operation. A JSON object without it
# (`{"object":"list"}`, a proxy's `{"status":"ok"}`) is no answer: relayed as a 200,
# the client would find nothing in it, so it fails over like any malformed 200.
_ANSWER_LIST = {"chat": "choices", "embeddings": "data", "images": "data", "image_edits": "data"}


class OpenAIFormat(HttpProvider[HttpOptionsT]):
    """Any provider whose answers are already in OpenAI's format: passed through
    untouched, with usage read from them. Where the upstream speaks the Responses
    API itself (`native_ops`), a Responses request goes up as the client sent it."""

    native_ops: frozenset[str] = frozenset()

    def native(self, call: Call) -> Native | None:
        """The client's own request, when this upstream takes it as it is."""
        n = call.native
        if n is not None and n.op in self.native_ops and n.holder in (None, self.name):
            return n
        return None

    def answer(self, call: Call, body: bytes) -> Reply:
        # Parsed here, once: a malformed 200 still fails over, and usage comes from the same parse.
        doc = json_object(body, self.name)
        model = doc.get("model")
        model = model if isinstance(model, str) else None
        n = self.native(call)
        if n is not None:
            if not isinstance(doc.get("output"), list):
                raise self.upstream.malformed("answered 200 without an 'output' list")
            return Reply(body=body, usage=responses.usage_in(doc), extra={"native": n.op, "response": doc},
                         model=model)
        field = _ANSWER_LIST.get(call.op)
        if field is not None and not isinstance(doc.get(field), list):
            raise self.upstream.malformed(f"answered 200 without a '{field}' list")
        if call.op in ("images", "image_edits"):
            if not images.has_images(doc):
                raise self.upstream.malformed("answered 200 without any image in its 'data'")
            return Reply(body=body, usage=images.usage_in(doc), model=model)
        return Reply(body=body, usage=chat.usage_in(doc), model=model)

    async def images(self, call: Call) -> Reply:
        """Generations go up as the client sent them (with the target's model); an edit's form
        is rebuilt for the target."""
        req = self.request(call)
        if call.op == "image_edits":
            body, content_type = images.edit_form(call.data, call.model)
            headers = {k: v for k, v in req.headers.items() if k.lower() != "content-type"}
            req = UpstreamRequest(req.url, body, {**headers, "content-type": content_type})
        return self.answer(call, await self.roundtrip(req))

    async def audio(self, call: Call) -> Reply:
        """Speech goes up as the client sent it (with the target's model) and its audio comes back
        as it is made; a transcription's or translation's form is rebuilt for the target, its file
        read from the spool as it is sent."""
        req = self.request(call)
        if call.op == "speech":
            resp = await self.upstream.send(req)
        else:
            form, content_type = audio.form(call.data, call.model)
            headers = {k: v for k, v in req.headers.items() if k.lower() != "content-type"}
            headers["content-type"] = content_type
            resp = await self.upstream.send_streamed(UpstreamRequest(req.url, b"", headers), form)
        if resp.status >= 300:
            raise self.error(resp.status, await self.upstream.read_error(resp), resp.headers)
        if call.op == "speech" and call.data.get("stream_format") == "sse":   # speech.audio.delta events
            reply = Reply(content_type=b"text/event-stream", close=resp.release)
            reply.chunks = self.upstream.sse_blocks(resp)
            return reply
        if call.op == "speech":
            media = audio.speech_type(resp.content_type, call.data.get("response_format") or "mp3")
            if media is None:
                resp.release()
                raise self.upstream.malformed(f"answered speech with {resp.content_type}, not audio")
            return Reply(chunks=self.upstream.chunks(resp), content_type=media.encode("latin-1"),
                         close=resp.release)
        if call.stream:      # transcript events; sse_blocks checks it is an event stream whose first event parses
            reply = Reply(content_type=b"text/event-stream", close=resp.release)
            reply.chunks = self.upstream.sse_blocks(resp, audio.watch_usage(reply))
            return reply
        media = resp.content_type
        body = await self.upstream.read(resp)
        problem, doc = audio.transcript(body, call.data.get("response_format") or "json", media)
        if problem is not None:
            raise self.upstream.malformed(problem)
        return Reply(body=body, usage=audio.usage_in(doc))

    def watch(self, call: Call, reply: Reply) -> sse.Watch | None:
        n = self.native(call)
        if n is not None:
            reply.extra["native"] = n.op
            return responses.watch(reply)
        asked = getattr(self.options, "stream_usage", False) and not wants_usage_chunk(call.data)
        return chat.watch_usage(reply, hide=asked)

    def body(self, call: Call) -> bytes:
        """What to send: the client's bytes with the target's model, and on streams
        the request for a usage chunk."""
        n = self.native(call)
        if n is not None:
            return chat.with_model(n.body, n.data, call.model)
        if call.op in ("image_edits", "transcriptions", "translations"):
            return b""      # a form, not JSON: `images` or `audio` makes it
        body = chat.with_model(call.body, call.data, call.model)
        if call.stream and getattr(self.options, "stream_usage", False) and not wants_usage_chunk(call.data):
            body = chat.with_usage_requested(body, call.data, call.model)
        return body


class OpenAIVideos(HttpProvider[VideoOptionsT]):
    """OpenAI's /videos API (Sora): the exchange around the pure parts in
    providers/openai/video.py. Subclasses say where it is (`video_base`) and
    with what headers (`video_headers`); errors are read by their `error`."""

    video_ops = frozenset(VIDEO_OPS)
    video_base: str = ""
    video_headers: dict[str, str] = {}


    async def video_submit(self, spec: VideoSpec) -> dict[str, Any]:
        req = video.submit_request(spec, self.video_base, self.video_headers, provider=self.name)
        return video.submitted(await self.roundtrip(req), provider=self.name)

    async def video_run(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> VideoFiles:
        vid = await self._finished(state, progress)
        mp4 = await hosted_video.fetch(self.upstream, self._content(vid, "video"), self.error,
                                       **hosted_video.download_policy(self.options))
        return VideoFiles(mp4=mp4, thumbnail_webp=await self._preview(vid, "thumbnail"),
                          spritesheet_jpeg=await self._preview(vid, "spritesheet"))

    async def video_wait(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> None:
        await self._finished(state, progress)

    async def _finished(self, state: dict[str, Any], progress: Progress) -> str:
        """The upstream job's id, once it has completed (polled until then)."""
        vid = state.get("id")
        if not isinstance(vid, str) or not vid:
            raise ProviderError(f"provider '{self.name}': the job's upstream id is missing", provider=self.name,
                                code="video_state_missing")
        status = video.status_request(self.video_base, self.video_headers, vid)

        async def check() -> hosted_video.Polled:
            return video.polled(await self.roundtrip(status), provider=self.name)

        await hosted_video.poll(check, progress, self.options, self.name)
        return vid

    async def _preview(self, vid: str, variant: str) -> bytes | None:
        """A preview OpenAI made, or None (404, or any failure: the gateway makes its own)."""
        try:
            return await hosted_video.fetch(self.upstream, self._content(vid, variant), self.error,
                                            max_bytes=64 * 1024 * 1024,
                                            **hosted_video.download_policy(self.options)) or None
        except ProviderError as e:
            log.debug("provider %s: no %s for video %s: %s", self.name, variant, vid, e.scrubbed(self.secrets).message)
            return None

    def _content(self, vid: str, variant: str) -> UpstreamRequest:
        return video.content_request(self.video_base, self.video_headers, vid, variant)

    async def video_cancel(self, spec: VideoSpec, state: dict[str, Any]) -> None:
        vid = state.get("id")
        if not vid:
            return
        try:
            await self.roundtrip(video.delete_request(self.video_base, self.video_headers, vid))
        except ProviderError as e:
            log.debug("provider %s: could not delete video %s: %s", self.name, vid,
                      e.scrubbed(self.secrets).message)


class OpenAIProvider(OpenAIFormat[api.Options], OpenAIVideos[api.Options]):
    # Annotated, or mypy holds the subclasses below (and presets) to these values' types.
    Options: ClassVar[type[ProviderConfig]] = api.Options
    secret_field: ClassVar[str | None] = "api_key"
    operations = frozenset({"chat", "embeddings", "video", "images", "speech", "transcriptions", "translations"})

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self._headers = api.headers(options)
        self._urls = {op: api.url(options, op) for op in api.PATHS}
        self.video_base = options.base_url
        self.video_headers = api.video_headers(self._headers)
        if options.responses == "native":
            self.native_ops = frozenset({"responses"})

    def batch_client(self) -> OpenAIBatches:
        return OpenAIBatches(self)     # where a config says batch: native

    def request(self, call: Call) -> UpstreamRequest:
        url = self._urls["responses" if self.native(call) is not None else call.op]
        return UpstreamRequest(url, self.body(call), self._headers)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return chat.parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)


class OpenAICompatibleProvider(OpenAIProvider):
    Options: ClassVar[type[ProviderConfig]] = api.CompatibleOptions   # annotated: presets set their own
    secret_field: ClassVar[str | None] = None       # local servers often need no key
