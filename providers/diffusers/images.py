"""`type: diffusers_image`: OpenAI's Images API on local GPUs, with a Hugging Face
diffusers pipeline (Stable Diffusion 1.x/2.x, SDXL, Stable Diffusion 3, Flux)
loaded from a local folder: generations with its text-to-image pipeline, edits
with its image-to-image one (inpainting where a mask is given) over the same
weights. The weights load once per process, on first use.

An image is made on a thread of its own in the process that runs the provider:
`gateway serve` in embedded mode (or with `run_in_gateway: true`), else the
`gateway worker` processes next to the GPUs, to which the gateway hands each
request (gateway/images/workers.py). `max_concurrent` at once, up to
`max_queue` more waiting their turn; past that the provider is refused as busy
(429), so the router tries the next target.
A size that is not a multiple of the family's is made at the next multiple up
and centre-cropped, so the image has the size asked for.

Needs the `local` extra (torch, diffusers, transformers, accelerate)."""
from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from pydantic import ConfigDict, Field, model_validator

from providers import errors
from providers.base import Call, Provider, Reply, Upload
from providers.diffusers.image_families import IMAGE_FAMILIES, ImageFamily, generated_size, read_image_family
from providers.options import ProviderConfig

EDIT_STRENGTH = 0.8       # how far an edit moves from the image it is given (1: nothing of it kept)
_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class Options(ProviderConfig):
    model_config = ConfigDict(extra="forbid")
    pipeline: str = Field(min_length=1)          # the pipeline's folder (what save_pretrained wrote)
    family: Literal["sd", "sdxl", "sd3", "flux"] | None = None   # default: from model_index.json
    device: str = "auto"                         # cuda, cuda:1, cpu; auto: cuda when there is one
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    steps: int | None = Field(None, ge=1)        # denoising steps; default: the family's
    guidance: float | None = Field(None, ge=0)   # guidance scale; default: the family's
    cpu_offload: bool = False
    vae_tiling: bool = False
    vae_slicing: bool = False
    cpu_threads: int | None = Field(None, ge=1)
    max_concurrent: int = Field(1, ge=1)         # requests generating at once in this process
    max_queue: int = Field(8, ge=0)              # requests waiting for their turn; more are refused (429)
    max_side: int = Field(2048, ge=64, le=4096)  # the largest side it makes; larger is a 400
    run_in_gateway: bool | None = None           # None: in `gateway serve` in embedded mode, else in workers

    @model_validator(mode="after")
    def _known_family(self) -> Options:
        if self.family is None:
            try:
                read_image_family(self.pipeline)
            except ValueError as e:
                raise ValueError(f"{e}; or name it with `family:`") from None
        return self


_Options = Options


@dataclass
class _Loaded:
    pipe: Any
    lock: threading.Lock = field(default_factory=threading.Lock)   # one call at a time on one pipeline
    derived: dict[str, Any] = field(default_factory=dict)          # image-to-image, inpainting


_LOADED: dict[tuple, _Loaded] = {}
_LOADING = threading.Lock()
_WEIGHTS = ("pipeline", "family", "device", "dtype", "cpu_offload", "vae_tiling", "vae_slicing", "cpu_threads")


class DiffusersImageProvider(Provider[Options]):
    Options = Options
    operations = frozenset({"images"})
    local = True

    def __init__(self, options: _Options) -> None:
        super().__init__(options)
        self.family: ImageFamily = IMAGE_FAMILIES[options.family] if options.family \
            else read_image_family(options.pipeline)
        self._slots = asyncio.Semaphore(options.max_concurrent)
        self._waiting = 0

    def runs_in(self, embedded: bool) -> bool:
        choice = self.options.run_in_gateway
        return embedded if choice is None else choice

    def prepare(self) -> None:
        self._loaded()

    async def images(self, call: Call) -> Reply:
        if self.hand_off is not None:      # made by a `gateway worker` next to the GPUs
            self._size(call.data.get("size"))
            return await self.hand_off(self.name, call)
        return await self.make(call)

    async def make(self, call: Call) -> Reply:
        """The images made in this process."""
        width, height = self._size(call.data.get("size"))
        if self._slots.locked() and self._waiting >= self.options.max_queue:
            raise errors.RateLimited(f"provider '{self.name}' is busy: {self.options.max_concurrent} generating "
                                     f"and {self._waiting} waiting", provider=self.name, retry_after=1.0)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            body = await asyncio.to_thread(self._generate, call.data, call.op == "image_edits", width, height)
        finally:
            self._slots.release()
        return Reply(body=body)

    def _size(self, size: Any) -> tuple[int, int]:
        if not isinstance(size, str) or size == "auto":
            return self.family.default_size
        w, _, h = size.partition("x")
        width, height = int(w), int(h)
        most = self.options.max_side
        if width > most or height > most:
            raise errors.BadRequest(f"provider '{self.name}' makes images of at most {most} pixels a side",
                                    provider=self.name, param="size")
        return width, height

    def _loaded(self) -> _Loaded:
        key = tuple(getattr(self.options, f) for f in _WEIGHTS) + (self.family.name,)
        with _LOADING:
            found = _LOADED.get(key)
            if found is None:
                found = _LOADED[key] = _Loaded(_load(self.options))
            return found

    def _generate(self, data: dict[str, Any], edit: bool, width: int, height: int) -> bytes:
        from providers.media.fit import covered
        try:
            loaded = self._loaded()
            gen_w, gen_h = generated_size(self.family, width, height)
            kwargs: dict[str, Any] = {
                "prompt": data["prompt"], "width": gen_w, "height": gen_h,
                "num_inference_steps": self.options.steps or self.family.steps,
                "guidance_scale": self.family.guidance if self.options.guidance is None else self.options.guidance,
                "num_images_per_prompt": data.get("n") or 1, "output_type": "np"}
            with loaded.lock:
                pipe = loaded.pipe
                if edit:
                    pipe = self._edit_pipe(loaded, data.get("mask") is not None)
                    kwargs["image"] = _picture(data["image"][0], gen_w, gen_h)
                    kwargs["strength"] = EDIT_STRENGTH
                    if data.get("mask") is not None:
                        kwargs["mask_image"] = _repaint(data["mask"], gen_w, gen_h)
                frames = pipe(**kwargs).images
        except errors.ProviderError:
            raise
        except Exception as e:   # torch's errors have no common base: each is this request's failure
            code = "out_of_memory" if "out of memory" in str(e).lower() else "generation_failed"
            raise errors.UpstreamFault(f"local image generation on '{self.name}' failed: {type(e).__name__}: "
                                       f"{e}"[:500], provider=self.name, code=code) from None
        fmt = data.get("output_format") or "png"
        items = []
        for frame in frames:
            rgb = (frame * 255).round().clip(0, 255).astype("uint8")
            items.append({"b64_json": base64.b64encode(_encoded(covered(rgb, width, height), fmt,
                                                                 data.get("output_compression"))).decode()})
        return orjson.dumps({"created": int(time.time()), "data": items, "output_format": fmt,
                             "size": f"{width}x{height}", "quality": data.get("quality") or "auto"})

    def _edit_pipe(self, loaded: _Loaded, masked: bool) -> Any:
        kind = "inpaint" if masked else "img2img"
        pipe = loaded.derived.get(kind)
        if pipe is None:
            import diffusers
            auto = diffusers.AutoPipelineForInpainting if masked else diffusers.AutoPipelineForImage2Image
            try:
                pipe = loaded.derived[kind] = auto.from_pipe(loaded.pipe)
            except (ValueError, KeyError) as e:
                raise errors.BadRequest(f"provider '{self.name}' ({self.family.name}) cannot "
                                        f"{'inpaint' if masked else 'edit images'}: {e}"[:300],
                                        provider=self.name, param="mask" if masked else "image") from None
            pipe.set_progress_bar_config(disable=True)
        return pipe


def _load(options: Options) -> Any:
    import diffusers
    import torch

    from providers.diffusers.pipeline import _dtype
    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if options.cpu_threads:
        torch.set_num_threads(options.cpu_threads)
    diffusers.utils.logging.disable_progress_bar()
    pipe = diffusers.DiffusionPipeline.from_pretrained(options.pipeline, dtype=_dtype(torch, options.dtype, device))
    if options.cpu_offload and device.startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    vae = getattr(pipe, "vae", None)
    if vae is not None and options.vae_tiling and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
    if vae is not None and options.vae_slicing and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _picture(upload: Upload, width: int, height: int) -> Any:
    from PIL import Image, ImageOps
    return ImageOps.fit(Image.open(io.BytesIO(upload.data)).convert("RGB"), (width, height))


def _repaint(mask: Upload, width: int, height: int) -> Any:
    """OpenAI's mask (transparent where the image is to change) as diffusers' (white where it is)."""
    from PIL import Image, ImageOps
    alpha = Image.open(io.BytesIO(mask.data)).convert("RGBA").getchannel("A")
    return ImageOps.invert(alpha.resize((width, height)))


def _encoded(rgb: Any, fmt: str, compression: int | None) -> bytes:
    from PIL import Image
    out = io.BytesIO()
    options = {"quality": compression} if compression is not None and fmt in ("jpeg", "webp") else {}
    Image.fromarray(rgb).save(out, format=_FORMATS.get(fmt, "PNG"), **options)
    return out.getvalue()
