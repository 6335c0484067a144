"""The image pipeline families the `diffusers_image` provider knows, detected from
a saved pipeline's model_index.json `_class_name` as the video families are.
Pure: no torch, no diffusers.

| family | pipelines | sides | size by default | steps, guidance |
|---|---|---|---|---|
| sd | StableDiffusionPipeline (1.x, 2.x) | multiples of 8 | 512x512 | 30, 7.5 |
| sdxl | StableDiffusionXLPipeline | multiples of 8 | 1024x1024 | 30, 5.0 |
| sd3 | StableDiffusion3Pipeline (3, 3.5) | multiples of 16 | 1024x1024 | 28, 7.0 |
| flux | FluxPipeline (dev, schnell) | multiples of 16 | 1024x1024 | 28, 3.5 |

Edits use the family's image-to-image pipeline, or its inpainting one when a
mask is given, built over the same loaded weights (diffusers' `from_pipe`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from providers.diffusers.families import pipeline_class


@dataclass(frozen=True)
class ImageFamily:
    name: str
    classes: tuple[str, ...]        # model_index.json `_class_name`s that mean this family
    size_multiple: int
    default_size: tuple[int, int]
    steps: int
    guidance: float


IMAGE_FAMILIES: dict[str, ImageFamily] = {f.name: f for f in (
    ImageFamily("sd", ("StableDiffusionPipeline",), 8, (512, 512), 30, 7.5),
    ImageFamily("sdxl", ("StableDiffusionXLPipeline",), 8, (1024, 1024), 30, 5.0),
    ImageFamily("sd3", ("StableDiffusion3Pipeline",), 16, (1024, 1024), 28, 7.0),
    ImageFamily("flux", ("FluxPipeline",), 16, (1024, 1024), 28, 3.5),
)}


def read_image_family(path: str | Path, named: str | None = None) -> ImageFamily:
    """The family a config names, or the one the folder's model_index.json says (ValueError if neither)."""
    if named:
        return IMAGE_FAMILIES[named]
    class_name = pipeline_class(path)
    for family in IMAGE_FAMILIES.values():
        if class_name in family.classes:
            return family
    raise ValueError(f"{Path(path) / 'model_index.json'} names {class_name}, which is not an image family this "
                     "gateway knows "
                     f"({', '.join(IMAGE_FAMILIES)}); set `family:` if it is one of them")


def generated_size(family: ImageFamily, width: int, height: int) -> tuple[int, int]:
    """The size the family generates for a requested one: each side up to its multiple
    (the image is then cropped to the request)."""
    m = family.size_multiple
    return max(m, math.ceil(width / m) * m), max(m, math.ceil(height / m) * m)
