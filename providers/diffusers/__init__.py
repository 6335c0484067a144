"""`type: diffusers`: text-to-video and image-to-video on local GPUs with a
Hugging Face diffusers pipeline (LTX-Video, Wan 2.x, CogVideoX, HunyuanVideo)
loaded from a local folder.

Jobs run where the pipeline is: in `gateway worker` processes next to the
GPUs when the gateway shares a Redis (`run_in_gateway: false`, the default
then), or inside `gateway serve` itself in embedded mode. The weights are
loaded once per process and kept across config versions.

Needs the `local` extra (torch, diffusers, transformers, accelerate); a
gateway without it still validates and routes such providers, it just
cannot run their jobs itself.
"""
from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from providers import errors
from providers.base import Progress, Provider, VideoFiles, VideoSpec
from providers.diffusers.families import FAMILIES, Family, frames_problem, size_problem
from providers.diffusers.pipeline import DENOISE_SHARE, Cancelled, Loaded, job_for, read_family
from providers.options import ProviderConfig
from providers.video_fit import Plan, VideoFit
from providers.video_hints import prompt_with_hints

log = logging.getLogger("gateway.diffusers")

_LOADED: dict[tuple, Loaded] = {}      # one copy of the weights per process, across config versions
_LOADING = threading.Lock()

# The options that decide what `pipeline.load` builds, and nothing else: a config version that
# changes one of them loads the weights again (`gateway worker` does so before its next job);
# every other option (steps, guidance, fps, sizes, limits...) applies to the next job as it is.
PIPELINE_FIELDS = ("pipeline", "family", "device", "dtype", "cpu_offload", "vae_tiling", "vae_slicing",
                   "compile", "compile_mode", "attention", "cpu_threads")


class Options(ProviderConfig):
    model_config = ConfigDict(extra="forbid")
    pipeline: str = Field(min_length=1)          # the pipeline's folder (what save_pretrained wrote)
    family: Literal["ltx", "wan", "cogvideox", "hunyuan"] | None = None   # default: from model_index.json
    device: str = "auto"                         # cuda, cuda:1, cpu; auto: cuda when there is one
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"   # auto: bfloat16 on GPUs, float32 on CPU
    steps: int | None = Field(None, ge=1)        # denoising steps; default: the family's
    guidance: float | None = Field(None, ge=0)   # guidance scale; default: the family's
    fps: int | None = Field(None, ge=1, le=120)  # output frame rate; default: the family's
    cpu_offload: bool = False                    # move idle parts to CPU: less GPU memory, slower
    vae_tiling: bool = False                     # decode in tiles: less memory at large sizes
    vae_slicing: bool = False
    compile: bool = False                        # torch.compile the denoiser (the first job pays for it)
    compile_mode: str = "default"
    attention: str = "default"                   # a diffusers attention backend, e.g. "flash", "_native_cudnn"
    cpu_threads: int | None = Field(None, ge=1)  # torch's CPU threads (device cpu), for the whole process
    max_concurrent: int = Field(1, ge=1)         # jobs at once per process (one pipeline runs one at a time)
    max_queue: int = Field(32, ge=1)             # jobs waiting or running; more are refused (failover)
    video_sizes: list[str] | None = None         # default: the family's sizes (see families.py)
    video_seconds: list[int] | None = None
    video_fit: VideoFit = "exact"                 # other sizes and lengths: fitted (providers/video_fit.py) or 400
    # The most frames one generation makes (default: the family's; less where longer videos run out of
    # memory): a longer request is this many, stretched (video_fit: exact). Rounded down to the family's step.
    max_frames: int | None = Field(None, ge=2)
    run_in_gateway: bool | None = None           # None: in `gateway serve` in embedded mode, else in workers

    @model_validator(mode="after")
    def _fits_the_family(self) -> Options:
        family = FAMILIES[self.family] if self.family else None
        if family is None:
            try:
                family = read_family(self.pipeline)
            except ValueError as e:
                raise ValueError(f"{e}; or name it with `family:` (needed where the folder is not readable, "
                                 "e.g. a gateway whose workers run elsewhere)") from None
        family = capped(family, self.max_frames)
        fps = self.fps or family.fps
        for size in self.video_sizes or ():
            if (why := size_problem(family, size)) is not None:
                raise ValueError(f"video_sizes: {why}")
        for seconds in self.video_seconds or ():
            if (why := frames_problem(family, seconds, fps)) is not None:
                raise ValueError(f"video_seconds: {why}")
        return self


def capped(family: Family, max_frames: int | None) -> Family:
    """The family as this provider runs it: at most `max_frames` a generation (a whole number of steps)."""
    if max_frames is None or max_frames >= family.max_frames:
        return family
    steps = max(1, (max_frames - 1) // family.frame_step)
    return dataclasses.replace(family, max_frames=steps * family.frame_step + 1)


_Options = Options   # in DiffusersProvider's body `Options` is the class attribute, not a type


class DiffusersProvider(Provider[Options]):
    Options = Options
    operations = frozenset({"video"})
    video_ops = frozenset({"create", "remix"})
    local = True
    fits_itself = True      # its frames are scaled and retimed before they are encoded, once

    def __init__(self, options: _Options) -> None:
        super().__init__(options)
        self.family: Family = capped(FAMILIES[options.family] if options.family else read_family(options.pipeline),
                                     options.max_frames)

    def video_support(self) -> tuple[frozenset[str], frozenset[str]]:
        o = self.options
        return (frozenset(o.video_sizes or self.family.sizes),
                frozenset(str(s) for s in (o.video_seconds or self.family.seconds)))

    def video_plan(self, op: str, width: int, height: int, seconds: int) -> Plan | None:
        """Fitted (`video_fit: exact`): the listed size nearest in shape, and any length the
        family reaches at its frame rate; a longer one is its longest, stretched."""
        plan = super().video_plan(op, width, height, seconds)
        if plan is None or not plan.fitted:
            return plan
        fps = self.options.fps or self.family.fps
        reach = (self.family.max_frames - 1) // fps       # whole seconds the family makes at most
        return dataclasses.replace(plan, seconds=seconds if frames_problem(self.family, seconds, fps) is None
                                   else max(1, reach))

    def runs_in(self, embedded: bool) -> bool:
        """Whether `gateway serve` runs this provider's jobs itself."""
        choice = self.options.run_in_gateway
        return embedded if choice is None else choice

    async def video_submit(self, spec: VideoSpec) -> dict[str, Any]:
        if spec.reference_image is not None and self.family.image_to_video is None:
            raise errors.BadRequest(f"provider '{self.name}' ({self.family.name}) cannot start from an image; "
                                    "send the request without input_reference", param="input_reference",
                                    provider=self.name)
        if spec.reference_image is None and self._image_only():
            raise errors.BadRequest(f"provider '{self.name}' runs an image-to-video pipeline; send an "
                                    "input_reference image", param="input_reference", provider=self.name)
        return {}     # the job goes on this provider's queue; a worker takes it from there

    def _image_only(self) -> bool:
        try:
            index = json.loads((Path(self.options.pipeline) / "model_index.json").read_text())
        except (OSError, ValueError):
            return False     # the folder is on the workers' machines: they will say
        return index.get("_class_name") == self.family.image_to_video

    def prepare(self) -> None:
        self.loaded()

    def weights_key(self) -> tuple:
        """What the loaded pipeline is (PIPELINE_FIELDS, the family as detected): providers and
        config versions with equal keys share one copy of the weights."""
        o = self.options
        return tuple(self.family.name if f == "family" else getattr(o, f) for f in PIPELINE_FIELDS)

    def loaded(self) -> Loaded:
        """The pipeline, loaded on first use (blocking: call from a thread)."""
        from providers.diffusers import pipeline

        key = self.weights_key()
        with _LOADING:
            found = _LOADED.get(key)
            if found is None:
                found = _LOADED[key] = pipeline.load(self.options)
            return found

    def release(self) -> None:
        """Forget this provider's weights (a worker that reloads or drains it): their memory,
        GPU memory included, is freed once no run holds them."""
        with _LOADING:
            if _LOADED.pop(self.weights_key(), None) is None:
                return
        from providers.diffusers import pipeline
        pipeline.free_memory()

    async def video_run(self, spec: VideoSpec, state: dict[str, Any], progress: Progress) -> VideoFiles:
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()

        def report(percent: int) -> None:     # from the generating thread
            # ensure_future: `Progress` promises an awaitable, not necessarily a coroutine
            loop.call_soon_threadsafe(lambda: asyncio.ensure_future(progress(percent), loop=loop))

        try:
            return await asyncio.to_thread(self._generate, spec, report, cancelled)
        except Cancelled:
            raise asyncio.CancelledError from None
        finally:
            cancelled.set()     # a cancelled run stops before its next denoising step

    def _generate(self, spec: VideoSpec, report, cancelled: threading.Event) -> VideoFiles:
        from providers.diffusers import pipeline
        from providers.media.encode import encode_rgb

        o = self.options
        fps = o.fps or self.family.fps
        plan = spec.fit if spec.fit is not None and spec.fit.fitted else None
        made = spec.generated()
        try:
            loaded = self.loaded()
            job = job_for(self.family, o, prompt_with_hints(spec), spec.negative_prompt, made.width, made.height,
                          made.seconds, spec.seed, _image(made))
            if plan is not None and plan.retimed:      # longer than the family reaches: its longest, stretched
                job = dataclasses.replace(job, num_frames=self.family.max_frames)
            frames = pipeline.generate(loaded, job, fps, report, cancelled)
            count = want = len(frames)
            out: Iterable = iter(frames)
            if plan is not None:
                from providers.media.fit import fitted
                if plan.retimed:
                    want = round(spec.seconds * fps)
                out = fitted(out, count, spec.width, spec.height, want)
            mp4, thumbnail, sheet = encode_rgb(
                out, want, fps, on_frame=lambda i: report(DENOISE_SHARE + (99 - DENOISE_SHARE) * i // want))
        except Cancelled:
            raise
        except Exception as e:   # torch's errors have no common base: each is this job's failure
            log.exception("video %s failed on %s", spec.job_id, self.name)
            code = "out_of_memory" if "out of memory" in str(e).lower() else "generation_failed"
            raise errors.UpstreamFault(f"local generation on '{self.name}' failed: {type(e).__name__}: {e}"[:500],
                                       provider=self.name, code=code) from None
        return VideoFiles(mp4, thumbnail, sheet)


def _image(spec: VideoSpec):
    """The reference image as the pipeline takes it: RGB at the video's size."""
    if spec.reference_image is None:
        return None
    from PIL import Image, ImageOps

    image = Image.open(io.BytesIO(spec.reference_image)).convert("RGB")
    return ImageOps.fit(image, (spec.width, spec.height))   # cover, then centre-crop: no distortion
