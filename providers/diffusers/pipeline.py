"""Loading a diffusers video pipeline from a local folder and running one job
on it. Blocking (torch): called from a thread of its own, never on the event
loop. torch and diffusers are imported here only, so a gateway without the
`local` extra never loads them.

Progress: one report per denoising step (`callback_on_step_end`), scaled to
0..90; decoding and encoding fill in the rest. Cancellation: the same
callback sets the pipeline's `_interrupt` flag, which diffusers checks before
each step, and the run then raises `Cancelled` rather than encode a partial
video.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from providers.diffusers.families import FAMILIES, Family, detect, num_frames, pipeline_class

log = logging.getLogger("gateway.diffusers")

DENOISE_SHARE = 90      # percent of progress the denoising steps fill


class Cancelled(Exception):
    """The job was cancelled between two steps."""


@dataclass
class Loaded:
    family: Family
    pipe: Any                        # the text-to-video pipeline
    device: str
    load_s: float
    image_pipe: Any = None           # built on first use, sharing the pipe's components
    lock: threading.Lock = field(default_factory=threading.Lock)   # one generation at a time on one pipeline object


def read_family(path: str | Path, named: str | None = None) -> Family:
    """The family a config names, or the one model_index.json says."""
    if named:
        return FAMILIES[named]
    class_name = pipeline_class(path)
    family = detect(class_name)
    if family is None:
        raise ValueError(f"{Path(path) / 'model_index.json'} names {class_name}, which is not a video family "
                         "this gateway knows "
                         f"({', '.join(FAMILIES)}); set `family:` if it is one of them")
    return family


def _dtype(torch, name: str, device: str):
    if name == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def load(options) -> Loaded:
    """Load the pipeline the way `options` (providers/diffusers Options) say."""
    import diffusers
    import torch

    started = time.perf_counter()
    family = read_family(options.pipeline, options.family)
    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = _dtype(torch, options.dtype, device)
    if options.cpu_threads:
        torch.set_num_threads(options.cpu_threads)
    diffusers.utils.logging.disable_progress_bar()   # a worker's log is for its own lines
    try:
        import transformers
        transformers.utils.logging.disable_progress_bar()
    except ImportError:      # a pipeline without text encoders from transformers
        pass
    pipe = diffusers.DiffusionPipeline.from_pretrained(options.pipeline, dtype=dtype)
    if options.cpu_offload and device.startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        if options.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if options.vae_slicing and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
    if options.attention != "default":
        pipe.transformer.set_attention_backend(options.attention)
    if options.compile:
        # Compiles the denoiser, where nearly all the time goes; the first job pays for it.
        pipe.transformer.compile(mode=options.compile_mode, fullgraph=False)
    pipe.set_progress_bar_config(disable=True)
    loaded = Loaded(family, pipe, device, time.perf_counter() - started)
    log.info("loaded %s pipeline from %s on %s (%s) in %.1fs", family.name, options.pipeline, device, dtype,
             loaded.load_s)
    return loaded


def free_memory() -> None:
    """Give back what forgotten pipelines held: their tensors now, and CUDA's cached blocks,
    so the next pipeline loads into the memory the last one left."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def image_pipeline(loaded: Loaded):
    """The family's image-to-video pipeline over the loaded components (no second copy of the weights)."""
    if loaded.image_pipe is None:
        import diffusers
        if loaded.family.image_to_video is None:
            raise ValueError(f"{loaded.family.name} has no image-to-video pipeline")
        cls = getattr(diffusers, loaded.family.image_to_video)
        if type(loaded.pipe).__name__ == loaded.family.image_to_video:
            loaded.image_pipe = loaded.pipe
        else:
            loaded.image_pipe = cls(**loaded.pipe.components)
            loaded.image_pipe.set_progress_bar_config(disable=True)
    return loaded.image_pipe


@dataclass
class Job:
    """One generation, in the pipeline's terms."""
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    num_frames: int
    steps: int
    guidance: float
    seed: int | None
    image: Any = None                # PIL image for image-to-video


def job_for(family: Family, options, prompt: str, negative_prompt: str | None, width: int, height: int,
            seconds: int, seed: int | None, image: Any = None) -> Job:
    fps = options.fps or family.fps
    return Job(prompt, negative_prompt, width, height, num_frames(family, seconds, fps),
               options.steps or family.steps,
               family.guidance if options.guidance is None else options.guidance, seed, image)


def generate(loaded: Loaded, job: Job, fps: int, on_progress: Callable[[int], None],
             cancelled: threading.Event):
    """The video's frames as uint8 RGB, (frames, height, width, 3); raises Cancelled."""
    import numpy as np
    import torch

    pipe = image_pipeline(loaded) if job.image is not None else loaded.pipe

    def step_end(p, i, t, kw):
        on_progress(DENOISE_SHARE * (i + 1) // job.steps)
        if cancelled.is_set():
            p._interrupt = True
        return kw

    generator = torch.Generator(device="cpu" if loaded.device == "mps" else loaded.device)
    generator.manual_seed(job.seed if job.seed is not None else int(time.time_ns() % (2**32)))
    kwargs: dict[str, Any] = dict(
        prompt=job.prompt, height=job.height, width=job.width, num_frames=job.num_frames,
        num_inference_steps=job.steps, guidance_scale=job.guidance, generator=generator, output_type="np",
        callback_on_step_end=step_end, **loaded.family.call)
    if job.negative_prompt:
        kwargs["negative_prompt"] = job.negative_prompt
    if job.image is not None:
        kwargs["image"] = job.image
    if loaded.family.name == "ltx":
        kwargs["frame_rate"] = fps
    with loaded.lock, torch.inference_mode():
        if cancelled.is_set():
            raise Cancelled
        frames = pipe(**kwargs).frames[0]
    if cancelled.is_set():
        raise Cancelled
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = (np.clip(frames, 0.0, 1.0) * 255).round().astype(np.uint8)
    return frames
