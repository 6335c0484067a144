"""Local image generation with `type: diffusers_image`, on CPU with tiny
random-weight pipelines of every family built in code and loaded through the
provider's own loading path: the SDK's generate and edit (with and without a
mask), the images decoded at the size asked for, and a busy provider failing
over."""
from __future__ import annotations

import base64
import io

import pytest
import yaml
from PIL import Image

from tests.harness import base_config
from tests.video.conftest import require_local_extra

require_local_extra()

from gateway import config as config_loader  # noqa: E402
from gateway.config.checks import ConfigError  # noqa: E402
from tests.images.tiny_pipelines import build_flux, build_sd, build_sd3, build_sdxl  # noqa: E402

FAMILIES = {"sd": build_sd, "sdxl": build_sdxl, "sd3": build_sd3, "flux": build_flux}


@pytest.fixture(scope="module")
def pipelines(tmp_path_factory):
    root = tmp_path_factory.mktemp("image-pipelines")
    return {name: build(root / name) for name, build in FAMILIES.items()}


def local(name: str, path, **kw) -> dict:
    return {"name": name, "type": "diffusers_image", "pipeline": str(path), "steps": 2, "cpu_threads": 1, **kw}


def image_model(name: str, *providers: str) -> dict:
    return {"name": name, "kind": "image",
            "route": {"strategy": "fallback", "targets": [{"provider": p} for p in providers]}}


def _decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def _png(width: int, height: int, colour, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_family_generates_and_edits_at_the_size_asked_for(start_gateway, pipelines, family):
    gw = start_gateway(base_config([local("gpu", pipelines[family])], [image_model("local-image", "gpu")]))
    client = gw.client()
    # 40x24 is no family's multiple: made at the next one up and cropped to it
    made = client.images.generate(model="local-image", prompt="a red cat", n=2, size="40x24")
    assert [(p.format, p.size) for p in map(_decoded, (d.b64_json for d in made.data))] == [("PNG", (40, 24))] * 2
    webp = client.images.generate(model="local-image", prompt="a red cat", size="32x32", output_format="webp")
    assert _decoded(webp.data[0].b64_json).format == "WEBP"

    edited = client.images.edit(model="local-image", prompt="make it blue", size="32x32",
                                image=("red.png", _png(32, 32, (250, 0, 0)), "image/png"))
    assert _decoded(edited.data[0].b64_json).size == (32, 32)
    masked = client.images.edit(model="local-image", prompt="a hole", size="32x32",
                                image=("red.png", _png(32, 32, (250, 0, 0)), "image/png"),
                                mask=("mask.png", _png(32, 32, (0, 0, 0, 0), "RGBA"), "image/png"))
    assert _decoded(masked.data[0].b64_json).size == (32, 32)


def test_a_busy_local_provider_fails_over_and_a_size_past_its_most_is_a_400(start_gateway, pipelines):
    import threading
    import time
    cfg = base_config([local("gpu", pipelines["sd"], max_queue=0, steps=150), {"name": "mock", "type": "mock"}],
                      [image_model("local-image", "gpu", "mock"), image_model("only-local", "gpu")])
    gw = start_gateway(cfg)
    client = gw.client()
    gw.client().images.generate(model="only-local", prompt="load the weights first", size="32x32")
    slow = threading.Thread(target=lambda: client.images.generate(model="only-local", prompt="slow", size="32x32"))
    slow.start()
    try:
        time.sleep(0.5)       # the slow one holds the only slot for seconds
        raw = client.images.with_raw_response.generate(model="local-image", prompt="now", size="32x32")
        assert raw.headers["x-gateway-provider"] == "mock"       # the GPU was busy: the next target answered
        r = gw.http().post("/v1/images/generations", json={"model": "only-local", "prompt": "now", "size": "32x32"})
        assert r.status_code == 429 and "busy" in r.json()["error"]["message"]
    finally:
        slow.join()
    r = gw.http().post("/v1/images/generations", json={"model": "only-local", "prompt": "x", "size": "4096x16"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "size"


def test_a_folder_that_is_no_image_pipeline_is_a_config_error(tmp_path, pipelines):
    from tests.video.tiny_pipelines import build_wan
    video = build_wan(tmp_path / "wan")
    with pytest.raises(ConfigError) as e:
        config_loader.parse(yaml.safe_dump(base_config([local("gpu", video)], [image_model("m", "gpu")])))
    assert any("not an image family" in line for line in e.value.errors)


def test_with_redis_the_images_are_made_by_a_worker(start_gateway, redis_url, tmp_path, pipelines, loop):
    """The gateway hands each request to the provider's `gateway worker` and waits for it; with none
    alive the provider is refused (429) and the router fails over."""
    from tests.video.test_diffusers import _start_worker, _wait_for_workers
    cfg = base_config([local("gpu", pipelines["sdxl"]), {"name": "mock", "type": "mock"}],
                      [image_model("local-image", "gpu"), image_model("local-or-mock", "gpu", "mock")])
    cfg["state"] = {"redis_url": redis_url, "data_dir": str(tmp_path / "data")}
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    gw = start_gateway(cfg)
    client = gw.client()
    raw = client.images.with_raw_response.generate(model="local-or-mock", prompt="x", size="32x32")
    assert raw.headers["x-gateway-provider"] == "mock"          # no worker yet
    worker = _start_worker(path, "gpu")
    try:
        _wait_for_workers(loop, gw.runtime.store, "gpu")
        made = client.images.generate(model="local-image", prompt="a red cat", n=2, size="40x24")
        assert [_decoded(d.b64_json).size for d in made.data] == [(40, 24)] * 2
        edited = client.images.edit(model="local-image", prompt="blue", size="32x32",
                                    image=("red.png", _png(32, 32, (250, 0, 0)), "image/png"),
                                    mask=("mask.png", _png(32, 32, (0, 0, 0, 0), "RGBA"), "image/png"))
        assert _decoded(edited.data[0].b64_json).size == (32, 32)
        # Nothing is left behind: the requests' jobs and files are gone, and no key lists them.
        assert loop.run(gw.runtime.store.jobs.page("image-requests", None, 10, "asc")) == ([], False)
        assert client.videos.list().data == []
    finally:
        worker.terminate()
        worker.wait(20)
