"""OpenAI's Images API through the gateway with the SDK unchanged:
`client.images.generate` and `client.images.edit` on the mock (real PNGs,
decoded here) and on an OpenAI upstream on loopback (the request it gets, the
cost of what it made), failover, and every bad input a 400."""
from __future__ import annotations

import base64
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from gateway.errors import ApiError
from gateway.images.protocol import CHOICES, edit, generation
from tests.harness import base_config
from tests.upstreams.openai_video_fake import parse_form


def image_model(name: str, *targets: dict) -> dict:
    return {"name": name, "kind": "image", "route": {"strategy": "fallback", "targets": list(targets)}}


def _decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def _png(width: int = 64, height: int = 64, colour=(200, 30, 30), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def mock_gateway(start_gateway):
    return start_gateway(base_config([{"name": "mock", "type": "mock"}],
                                     [image_model("mock-image", {"provider": "mock"})]))


def test_generate_on_the_mock_makes_real_images(mock_gateway):
    client = mock_gateway.client()
    raw = client.images.with_raw_response.generate(model="mock-image", prompt="a lighthouse", n=2, size="256x128")
    assert raw.headers["x-gateway-provider"] == "mock"
    result = raw.parse()
    assert len(result.data) == 2 and result.usage is not None
    pictures = [_decoded(d.b64_json) for d in result.data]
    assert [(p.format, p.size) for p in pictures] == [("PNG", (256, 128))] * 2
    assert pictures[0].tobytes() != pictures[1].tobytes()          # each of n differs
    again = client.images.generate(model="mock-image", prompt="a lighthouse", n=1, size="256x128")
    assert _decoded(again.data[0].b64_json).tobytes() == pictures[0].tobytes()     # the same request, the same
    jpeg = client.images.generate(model="mock-image", prompt="x", size="64x64", output_format="jpeg")
    assert _decoded(jpeg.data[0].b64_json).format == "JPEG"


def test_edit_on_the_mock_draws_over_the_image(mock_gateway):
    client = mock_gateway.client()
    red = _png(64, 64, (250, 0, 0))
    result = client.images.edit(model="mock-image", image=("red.png", red, "image/png"), prompt="make it blue",
                                size="128x128")
    picture = _decoded(result.data[0].b64_json)
    assert picture.size == (128, 128)
    r, g, b = picture.convert("RGB").getpixel((64, 64))
    assert r > 100                                       # the red image, tinted
    several = client.images.edit(model="mock-image", prompt="both", size="64x64", n=2,
                                 image=[("a.png", red, "image/png"), ("b.png", _png(32, 32, (0, 250, 0)), "image/png")])
    assert len(several.data) == 2
    masked = client.images.edit(model="mock-image", prompt="only the hole", size="64x64",
                                image=("red.png", red, "image/png"),
                                mask=("mask.png", _png(64, 64, (0, 0, 0, 255), "RGBA"), "image/png"))
    assert _decoded(masked.data[0].b64_json).convert("RGB").getpixel((10, 10)) == (250, 0, 0)   # opaque: kept


def test_url_answers_are_signed_links_on_the_gateway(mock_gateway, start_gateway, redis_url, tmp_path):
    result = mock_gateway.client().images.generate(model="mock-image", prompt="a kite", n=2, size="96x64",
                                                   response_format="url")
    assert all(d.b64_json is None and d.url.startswith(mock_gateway.url + "/v1/images/img_") for d in result.data)
    anyone = mock_gateway.http(key=None)
    got = anyone.get(result.data[0].url)                  # no key: the signature stands in for it
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(got.content)).size == (96, 64)
    assert anyone.get(result.data[1].url).content != got.content
    forged = result.data[0].url.replace(result.data[0].url.split("/")[5], result.data[1].url.split("/")[5])
    assert anyone.get(forged).status_code == 403          # one image's signature does not open another
    assert anyone.get(result.data[0].url.replace("signature=", "signature=0")).status_code == 403
    assert anyone.get(result.data[0].url.replace("expires=", "expires=1")).status_code == 403

    # On Redis, a link made by one replica opens on another.
    def replica():
        cfg = base_config([{"name": "mock", "type": "mock"}], [image_model("mock-image", {"provider": "mock"})])
        cfg["state"] = {"redis_url": redis_url, "data_dir": str(tmp_path / "data")}
        return start_gateway(cfg)
    a, b = replica(), replica()
    url = a.client().images.generate(model="mock-image", prompt="x", size="64x64", response_format="url").data[0].url
    assert b.http(key=None).get(url.replace(a.url, b.url)).status_code == 200


def _upstream_config(fake, *more_targets: dict, prices: dict | None = None) -> dict:
    return base_config(
        [{"name": "up", "type": "openai", "base_url": fake.url, "api_key": "sk-upstream"},
         {"name": "mock", "type": "mock"}],
        [image_model("pictures", {"provider": "up", "model": "gpt-image-1"}, *more_targets)],
        prices=prices or {"up/gpt-image-1": {"input_per_mtok": 5.0,
                                             "per_image": {"high/1024x1536": 0.25, "default": 0.04}}})


def test_an_openai_upstream_gets_the_request_with_its_model_and_the_cost_is_per_image(start_gateway, fake_openai):
    fake = fake_openai()
    gw = start_gateway(_upstream_config(fake))
    raw = gw.client().images.with_raw_response.generate(model="pictures", prompt="a harbour", n=2,
                                                        size="1024x1536", quality="high")
    result = raw.parse()
    assert [_decoded(d.b64_json).size for d in result.data] == [(1024, 1536)] * 2
    sent = fake.seen[-1]
    assert sent.path == "/v1/images/generations" and sent.headers["Authorization"] == "Bearer sk-upstream"
    assert sent.json == {"model": "gpt-image-1", "prompt": "a harbour", "n": 2, "size": "1024x1536",
                         "quality": "high"}
    # 2 images at 0.25, and the prompt's 50 tokens at $5 a million
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(2 * 0.25 + 50 * 5 / 1e6)

    edited = gw.client().images.with_raw_response.edit(model="pictures", prompt="add a boat", size="256x256",
                                                       image=("harbour.png", _png(), "image/png"),
                                                       mask=("mask.png", _png(mode="RGBA", colour=(0, 0, 0, 0)),
                                                             "image/png"))
    assert _decoded(edited.parse().data[0].b64_json).size == (256, 256)
    form = parse_form(fake.seen[-1].headers["Content-Type"], fake.seen[-1].body)
    assert fake.seen[-1].path == "/v1/images/edits"
    assert form["model"] == "gpt-image-1" and form["prompt"] == "add a boat" and form["size"] == "256x256"
    assert form["image"][2] == _png() and form["mask"][1] == "image/png"
    assert float(edited.headers["x-gateway-cost-usd"]) == pytest.approx(0.04 + 50 * 5 / 1e6)


@pytest.mark.parametrize("failure", ["429", "malformed 200", "no images"])
def test_a_refusing_or_broken_upstream_fails_over(start_gateway, fake_openai, failure):
    fake = fake_openai()
    if failure == "429":
        fake.fail(429, '{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}}')
    else:
        fake.images_answer = b"<html>oops</html>" if failure == "malformed 200" else b'{"created": 1, "data": []}'
    gw = start_gateway(_upstream_config(fake, {"provider": "mock"}))
    raw = gw.client().images.with_raw_response.generate(model="pictures", prompt="p", size="64x64")
    assert raw.headers["x-gateway-provider"] == "mock" and raw.headers["x-gateway-attempts"] == "2"
    assert _decoded(raw.parse().data[0].b64_json).size == (64, 64)


@pytest.mark.parametrize("body,param", [
    ({"model": "mock-image"}, "prompt"),
    ({"model": "mock-image", "prompt": "x", "n": 0}, "n"),
    ({"model": "mock-image", "prompt": "x", "n": 11}, "n"),
    ({"model": "mock-image", "prompt": "x", "size": "big"}, "size"),
    ({"model": "mock-image", "prompt": "x", "size": "99999x2"}, "size"),
    ({"model": "mock-image", "prompt": "x", "quality": "ultra"}, "quality"),
    ({"model": "mock-image", "prompt": "x", "response_format": "link"}, "response_format"),
    ({"model": "mock-image", "prompt": "x", "output_format": "gif"}, "output_format"),
    ({"model": "mock-image", "prompt": "x", "output_compression": 101}, "output_compression"),
    ({"model": "mock-image", "prompt": "x" * 32_001}, "prompt"),
])
def test_bad_generations_are_a_400_naming_the_parameter(mock_gateway, body, param):
    r = mock_gateway.http().post("/v1/images/generations", json=body)
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text


def test_bad_edits_are_a_400(mock_gateway):
    http = mock_gateway.http()
    ok = {"prompt": (None, "x"), "model": (None, "mock-image")}
    cases = [
        (ok, "image"),                                                          # no image
        ({**ok, "image": ("a.txt", b"not an image", "text/plain")}, "image"),
        ({**ok, "image": ("a.png", _png(), "image/png"), "mask": ("m.txt", b"nope", "text/plain")}, "mask"),
        ({"image": ("a.png", _png(), "image/png"), "model": (None, "mock-image")}, "prompt"),
        ({**ok, "image": ("a.png", _png(), "image/png"), "n": (None, "many")}, "n"),
    ]
    for files, param in cases:
        r = http.post("/v1/images/edits", files=files)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (param, r.text)
    r = http.post("/v1/images/edits", json={"model": "mock-image", "prompt": "x"})
    assert r.status_code == 400
    assert http.post("/v1/images/generations", json={"model": "mock-chat-none", "prompt": "x"}).status_code == 404


def test_a_chat_model_is_not_an_image_model(start_gateway):
    gw = start_gateway(base_config([{"name": "mock", "type": "mock"}],
                                   [{"name": "talk", "kind": "chat", "route": {"targets": [{"provider": "mock"}]}}]))
    r = gw.http().post("/v1/images/generations", json={"model": "talk", "prompt": "x"})
    assert r.status_code == 404 and "v1/chat/completions" in r.json()["error"]["message"]


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=4), max_leaves=12)
FIELDS = st.fixed_dictionaries({}, optional={
    "prompt": JSONISH | st.text(max_size=40), "model": JSONISH, "n": JSONISH | st.integers(-2, 12),
    "size": JSONISH | st.from_regex(r"[0-9]{1,5}x[0-9]{1,5}", fullmatch=True),
    **{name: JSONISH | st.sampled_from([*allowed, "other"]) for name, allowed in CHOICES.items()}})


@settings(max_examples=200, deadline=None)
@given(FIELDS | JSONISH)
def test_the_generation_parser_answers_any_json_with_a_request_or_a_400(value):
    try:
        generation(json.dumps(value).encode())
    except ApiError as e:
        assert 400 <= e.status < 500


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["image", "image[]", "mask", "prompt", "n", "size", "x"]),
                          st.binary(max_size=40), st.booleans()), max_size=6), st.binary(max_size=30))
def test_the_edit_parser_answers_any_form_with_a_request_or_a_400(parts, tail):
    body = b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n%s\r\n'
                    % (name.encode(), b'; filename="f.png"' if is_file else b"", data)
                    for name, data, is_file in parts) + b"--b--\r\n" + tail
    try:
        edit(b"multipart/form-data; boundary=b", body)
    except ApiError as e:
        assert 400 <= e.status < 500
