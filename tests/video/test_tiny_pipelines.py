"""The tiny in-code diffusers video pipelines save, load back like a model folder, generate
frames of the asked shape, report progress per step and stop when interrupted."""
from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from tests.video.conftest import require_local_extra

require_local_extra()

from tests.video.tiny_pipelines import FAMILIES, SMALL_CALL, build_ltx  # noqa: E402

# (case id, family, builder kwargs, pipeline class written to model_index.json)
CASES = [
    ("ltx", "ltx", {}, "LTXPipeline"),
    ("ltx-i2v", "ltx", {"image_to_video": True}, "LTXImageToVideoPipeline"),
    ("wan", "wan", {}, "WanPipeline"),
    ("wan-i2v", "wan", {"image_to_video": True}, "WanImageToVideoPipeline"),
    ("cogvideox", "cogvideox", {}, "CogVideoXPipeline"),
    ("hunyuan", "hunyuan", {}, "HunyuanVideoPipeline"),
]


def _params():
    for case_id, family, kwargs, class_name in CASES:
        marks = []
        if case_id == "wan-i2v" and importlib.util.find_spec("ftfy") is None:
            # diffusers 0.42.1's WanImageToVideoPipeline calls ftfy.fix_text unconditionally.
            marks.append(pytest.mark.skip(reason="WanImageToVideoPipeline needs the ftfy package"))
        yield pytest.param((family, kwargs, class_name), id=case_id, marks=marks)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy 2-core machine torch's
    thread pool makes each call 10-30x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module", params=list(_params()))
def loaded(request, tmp_path_factory):
    """(pipeline loaded from its saved folder, family, image_to_video, folder)."""
    from diffusers import DiffusionPipeline

    family, kwargs, class_name = request.param
    folder = FAMILIES[family](tmp_path_factory.mktemp(class_name), **kwargs)
    index = json.loads((Path(folder) / "model_index.json").read_text())
    assert index["_class_name"] == class_name
    pipe = DiffusionPipeline.from_pretrained(folder)
    assert type(pipe).__name__ == class_name
    pipe.set_progress_bar_config(disable=True)
    return pipe, family, bool(kwargs.get("image_to_video")), folder


def _call(pipe, family, image_to_video, **extra):
    import torch
    from PIL import Image

    size = SMALL_CALL[family]
    kw = dict(prompt="a cat dancing on the beach", num_inference_steps=2, output_type="np",
              generator=torch.Generator().manual_seed(0), **size)
    if image_to_video:
        kw["image"] = Image.new("RGB", (size["width"], size["height"]), (200, 120, 40))
    kw.update(extra)
    return pipe(**kw).frames


def test_generates_frames_and_reports_each_step(loaded):
    pipe, family, i2v, _ = loaded
    steps = []

    def on_step_end(p, step, timestep, callback_kwargs):
        steps.append(step)
        return callback_kwargs

    frames = _call(pipe, family, i2v, callback_on_step_end=on_step_end)
    size = SMALL_CALL[family]
    assert frames.shape == (1, size["num_frames"], size["height"], size["width"], 3)
    assert frames.dtype == np.float32
    assert np.isfinite(frames).all()
    assert frames.min() >= 0.0 and frames.max() <= 1.0
    assert steps == [0, 1]


def test_interrupt_from_the_callback_stops_early(loaded):
    pipe, family, i2v, _ = loaded
    steps = []

    def on_step_end(p, step, timestep, callback_kwargs):
        steps.append(step)
        p._interrupt = True
        return callback_kwargs

    frames = _call(pipe, family, i2v, num_inference_steps=4, callback_on_step_end=on_step_end)
    # The remaining steps are skipped; the pipeline still decodes and returns frames.
    assert steps == [0]
    assert frames.shape[1:] == _call(pipe, family, i2v, num_inference_steps=1).shape[1:]
    # __call__ resets the flag, so the next request runs all its steps.
    assert pipe.interrupt is False


def test_building_is_deterministic(tmp_path):
    def digest(folder: Path) -> dict[str, str]:
        return {str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
                for f in sorted(folder.rglob("*.safetensors"))}

    first, second = digest(build_ltx(tmp_path / "a")), digest(build_ltx(tmp_path / "b"))
    assert first and first == second
