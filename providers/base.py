"""The interface every provider adapter offers the router."""
from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Generic, TypeVar

from providers import video_fit
from providers.errors import BadRequest
from providers.options import ProviderConfig
from providers.redaction import secrets_of
from providers.video_fit import Plan, VideoFit


@dataclass(slots=True)
class Native:
    """The client's request in an API besides chat that some upstreams speak
    themselves (`op`: "responses"). A provider that speaks it sends `body` with
    only `model` changed and answers in that API, saying so in the reply's
    `extra["native"]`; every other provider sends the chat translation in
    `Call.body`. `holder`: the provider that keeps this conversation's state
    upstream (from an earlier native answer); then only it may answer natively."""
    op: str
    body: bytes
    data: dict[str, Any]
    holder: str | None = None
    headers: dict[str, str] = field(default_factory=dict)   # client headers that API defines (anthropic-beta)


@dataclass(slots=True)
class Call:
    """One attempt, as the router hands it to a provider."""
    op: str                  # "chat" | "embeddings" | "video" | "images" | "image_edits" | one of AUDIO_OPS
    body: bytes              # the client's JSON body, untouched (or its chat translation)
    data: dict[str, Any]     # the same body, parsed; read-only
    model: str               # the upstream model name for this target
    stream: bool = False
    request_id: str = ""
    video: VideoSpec | None = None   # op "video": the job to hand over
    native: Native | None = None     # the client's own request, where it spoke another API than chat


# OpenAI's Audio API: speech (text to audio), transcriptions and translations (audio to text).
AUDIO_OPS = frozenset({"speech", "transcriptions", "translations"})


@dataclass(frozen=True, slots=True)
class Upload:
    """A file a client sent (an image to edit, a mask): its name, media type (from its bytes) and bytes."""
    filename: str
    media_type: str
    data: bytes = field(repr=False)


@dataclass(slots=True)
class Usage:
    """Token counts in OpenAI's terms, whichever provider answered: what cost
    tracking reads. `prompt_tokens` includes cached ones (as OpenAI counts)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0          # prompt tokens read from the provider's cache
    cache_write_tokens: int = 0     # prompt tokens written to it (Anthropic, Bedrock)


@dataclass(slots=True)
class Reply:
    """A successful answer: a whole body, or SSE bytes that hold whole events."""
    body: bytes = b""
    chunks: AsyncIterator[bytes] | None = None
    content_type: bytes = b"application/json"
    close: Callable[[], Awaitable[None] | None] | None = None
    # A whole answer's usage is read with the parse that checks it (providers/http.py);
    # a stream's is filled in as it ends.
    usage: Usage | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # The model the upstream says answered (its answer's `model`), where the adapter parses the
    # whole answer anyway; a trace's `gen_ai.response.model`.
    model: str | None = None

    async def aclose(self) -> None:
        """Let go of the upstream answer, read to the end or not."""
        closer = getattr(self.chunks, "aclose", None)
        if closer is not None:
            await closer()
        if self.close is not None:
            res = self.close()
            if res is not None:
                await res


# --- video -------------------------------------------------------------------

# OpenAI's Sora values: what a video provider supports unless it says otherwise.
SORA_SIZES: frozenset[str] = frozenset({"720x1280", "1280x720", "1024x1792", "1792x1024"})
SORA_SECONDS: frozenset[str] = frozenset({"4", "8", "12"})

VIDEO_OPS = ("create", "remix", "edit", "extend")


@dataclass(slots=True)
class VideoSpec:
    """One video job as a provider sees it: what to generate, nothing of the
    gateway's own state. Rebuilt from the stored job on every run, so a job
    picked up again after a restart looks the same to the provider."""
    job_id: str
    model: str                     # the upstream model for this target
    prompt: str                    # as the client wrote it
    seconds: int                   # extend: the stitched total, source_seconds and the new footage
    width: int
    height: int
    op: str = "create"             # one of VIDEO_OPS
    negative_prompt: str | None = None
    seed: int | None = None
    style_preset: str | None = None
    camera_movement: str | None = None
    reference_image: bytes | None = field(default=None, repr=False)
    reference_media_type: str | None = None
    # remix / edit / extend: the source video's state on this provider (what its
    # `video_submit` returned), or None when it was made elsewhere.
    source_state: dict[str, Any] | None = None
    source_seconds: int = 0        # extend: how long the source is
    source_provider: str | None = None   # who made the source (the router hands source_state to it alone)
    # How the target makes this request (`video_fit: exact`): what it generates, when that is not
    # what was asked (providers/video_fit.py). width, height and seconds above are always the request's.
    fit: Plan | None = None

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def segmented(self) -> bool:
        """Made in segments: a first one, then extensions of it (`fit.segments`). Not a remix of the
        provider's own video: its remix is of the whole source, extensions and all, as long as it."""
        return self.fit is not None and self.fit.extended \
            and not (self.op == "remix" and self.source_state is not None)

    def generated(self) -> VideoSpec:
        """The spec a backend is asked for: the fitted size and length where the request is fitted
        (made in segments: the first segment)."""
        if self.fit is None or not self.fit.fitted:
            return self
        seconds = self.fit.segments[0] if self.segmented else self.fit.seconds
        return dataclasses.replace(self, width=self.fit.width, height=self.fit.height, seconds=seconds)

    def extension(self, made: list[dict[str, Any]]) -> VideoSpec:
        """The next segment of a video made in segments: an extension of the last one `made` (its
        state) by the next length, the same prompt. Its `seconds` are the segments' total so far."""
        assert self.fit is not None and 0 < len(made) < len(self.fit.segments)
        lengths = self.fit.segments[:len(made) + 1]
        return dataclasses.replace(self.generated(), op="extend", seconds=sum(lengths),
                                   source_seconds=sum(lengths[:-1]), source_state=made[-1],
                                   reference_image=None, reference_media_type=None)


@dataclass(slots=True)
class VideoFiles:
    """A finished video. Previews a provider does not make are made by the
    gateway from the MP4 (gateway/video/previews.py)."""
    mp4: bytes = field(repr=False)
    thumbnail_webp: bytes | None = field(default=None, repr=False)
    spritesheet_jpeg: bytes | None = field(default=None, repr=False)


Progress = Callable[[int], Awaitable[None]]

OptionsT = TypeVar("OptionsT", bound=ProviderConfig)


class Provider(Generic[OptionsT]):
    """An upstream the router can send calls to.

    Subclasses name their options twice: as the type parameter, which types
    `self.options` (`class MockProvider(Provider[Options])`), and as `Options`,
    the model `gateway check` validates the config entry with. They implement
    the operations they support; an unsupported one answers a clear 400
    through `BadRequest`.
    """
    Options: ClassVar[type[ProviderConfig]] = ProviderConfig
    secret_field: ClassVar[str | None] = None   # an option that must be non-empty, else disabled
    operations: ClassVar[frozenset[str]] = frozenset({"chat"})

    def __init__(self, options: OptionsT) -> None:
        self.options: OptionsT = options
        self.name = options.name

    @classmethod
    def disabled_reason(cls, options: OptionsT) -> str | None:
        if not options.enabled:
            return "enabled: false"
        if cls.secret_field and not getattr(options, cls.secret_field, ""):
            return f"{cls.secret_field} is empty"
        return None

    async def chat(self, call: Call) -> Reply:
        raise self.unsupported("chat")

    async def embeddings(self, call: Call) -> Reply:
        raise self.unsupported("embeddings")

    async def images(self, call: Call) -> Reply:
        """`call.op` "images" (`call.body` is the client's JSON) or "image_edits" (`call.data` holds the
        form's fields, and its `image` list and `mask` as `Upload`s: gateway/images/protocol.py).
        OpenAI's images answer in `body`; its usage, where the provider counts tokens."""
        raise self.unsupported("images")

    async def audio(self, call: Call) -> Reply:
        """`call.op` "speech": `call.body` is the client's JSON, and the audio comes back as
        `chunks` as it is made, with its media type as `content_type`. "transcriptions" and
        "translations": `call.data` holds the form (gateway/audio/protocol.py: `file` a
        `SpooledUpload`, its bytes in a temp file, read back as often as needed; `fields` the text
        parts to send on); the answer in `body`, in the asked `response_format`,
        with its usage where the backend counts tokens."""
        raise self.unsupported(call.op)

    # -- video: providers with "video" in `operations` implement these ---------

    video_ops: ClassVar[frozenset[str]] = frozenset({"create", "remix"})
    local: ClassVar[bool] = False    # generates on this machine's hardware (its jobs may run in workers)
    # Makes a fitted request's frames fit itself (from `spec.fit`); else it is handed `spec.generated()`
    # and the job's runner fits the MP4 it returns (providers/media/fit.py).
    fits_itself: ClassVar[bool] = False

    # A local provider whose requests are made by `gateway worker` processes: the gateway sets this
    # where the provider does not run in its own process (gateway/images/workers.py), and a worker
    # calls the provider's own `make`.
    hand_off: Callable[[str, Call], Awaitable[Reply]] | None = None

    def runs_in(self, embedded: bool) -> bool:
        """Whether `gateway serve` runs this provider's jobs itself (else `gateway worker` does)."""
        return True

    def prepare(self) -> None:
        """Load what the first job needs (a local pipeline's weights). Blocking: call from a thread."""
        return None

    def video_support(self) -> tuple[frozenset[str], frozenset[str]]:
        """(sizes, seconds) this provider can generate: options `video_sizes` and
        `video_seconds` where set, else OpenAI's Sora values."""
        sizes = getattr(self.options, "video_sizes", None)
        seconds = getattr(self.options, "video_seconds", None)
        return (frozenset(sizes) if sizes else SORA_SIZES,
                frozenset(str(s) for s in seconds) if seconds else SORA_SECONDS)

    def video_fit(self) -> VideoFit:
        return getattr(self.options, "video_fit", "native")

    def fits_any_size(self) -> bool:
        """Whether a size or length outside `video_support` is served (fitted) rather than refused."""
        return self.video_fit() == "exact"

    def video_plan(self, op: str, width: int, height: int, seconds: int) -> Plan | None:
        """How this provider serves a request of this size and length (None: it cannot). Only a new
        video (create, remix) is fitted: edit and extend work on their source's own size. A length
        past its longest is made in segments where it extends its own videos (the runner extends them)."""
        sizes, durations = self.video_support()
        return video_fit.plan(self.video_fit() if op in ("create", "remix") else "native", sizes, durations,
                              width, height, seconds, extends="extend" in self.video_ops and not self.fits_itself)

    async def video_submit(self, spec: VideoSpec) -> dict[str, Any]:
        """Hand a job over; returns what `video_run` needs to find it again (e.g.
        the upstream job id), stored with the job. Runs inside the client's
        POST, so a refusal (429, 5xx, queue full) fails over to the next target."""
        raise self.unsupported("video")

    async def video_run(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> VideoFiles:
        """Wait for the job to finish and return its files: hosted providers poll
        upstream (with backoff), local ones generate. `progress(0..100)` as it
        goes. May run again for the same job (after a restart): it must resume
        from `state`, not submit anew. A failure raises a ProviderError; the
        job fails with its code and message. Cancelled by task cancellation."""
        raise self.unsupported("video")

    async def video_wait(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> None:
        """Wait for the job to finish, as `video_run` does, without fetching its files: a segment that
        the next one extends (`extend` makes the whole video, the segments before it included).
        Providers whose files come with the finished job need not override it."""
        await self.video_run(spec, state, progress)

    async def video_cancel(self, spec: VideoSpec, state: dict[str, Any]) -> None:
        """Best effort: tell the upstream to stop (on DELETE)."""
        return None

    @cached_property
    def secrets(self) -> tuple[str, ...]:
        """Every secret this provider sends upstream, longest first: what the
        gateway hides from error texts, logs and admin views (see
        providers/redaction.py). Adapters with credentials from elsewhere (the
        environment) add them in `extra_secrets`."""
        return secrets_of(self.options, self.extra_secrets())

    @cached_property
    def secret_bytes(self) -> tuple[bytes, ...]:
        """The secrets looked for in answers relayed as they came (a stream's
        events, a whole body): credentials only, never a header value such as
        `x-title: My App` that an answer may hold as ordinary text."""
        return tuple(s.encode() for s in secrets_of(self.options, self.extra_secrets(), credentials_only=True))

    def extra_secrets(self) -> tuple[str, ...]:
        return ()

    def unsupported(self, op: str) -> BadRequest:
        return BadRequest(f"provider '{self.name}' does not support {op}", provider=self.name,
                          code="unsupported_operation")

    async def close(self) -> None:
        return None
