"""OpenAI's Images API served by hosted backends that speak their own wire
formats: Gemini (Imagen's `predict`, Gemini's image output), fal's queue and
Replicate's predictions. The official SDK talks to the gateway over loopback;
fakes on loopback speak each backend's format and answer with real PNGs. For
each: what the backend was sent, the images decoded, edits reaching it intact,
a 429 and a 200 without images failing over, and the cost per the price."""
from __future__ import annotations

import base64
import io
import time

import pytest
from PIL import Image

from providers.gemini.images import GEMINI_RATIOS, IMAGEN_RATIOS
from providers.hosted_images import nearest_ratio
from tests.harness import base_config
from tests.test_images import image_model
from tests.upstreams.fal_fake import FakeFal
from tests.upstreams.gemini_fake import FakeGemini
from tests.upstreams.image_sample import png
from tests.upstreams.replicate_fake import FakeReplicate

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MOCK = {"name": "mock", "type": "mock"}
POLL = {"image_poll_interval_s": 0.02, "image_poll_max_interval_s": 0.05}
GEMINI_429 = (b'{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", '
              b'"status": "RESOURCE_EXHAUSTED"}}')
FAL_429 = b'{"detail": "Too many concurrent requests for this user. Please try again later."}'
REPLICATE_429 = b'{"title": "Request was throttled", "detail": "Request was throttled.", "status": 429}'


def _decoded(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def _from_data_uri(uri: str) -> tuple[str, bytes]:
    head, _, data = uri.partition(",")
    return head, base64.b64decode(data)


@pytest.fixture
def gemini(loop):
    fake = FakeGemini(loop)
    yield fake
    fake.close()


@pytest.fixture
def fal(loop):
    fake = FakeFal(loop)
    yield fake
    fake.close()


@pytest.fixture
def replicate(loop):
    fake = FakeReplicate(loop)
    yield fake
    fake.close()


def _gemini_config(fake, **prices) -> dict:
    return base_config(
        [{"name": "up", "type": "gemini", "base_url": fake.url, "api_key": fake.key}, MOCK],
        [image_model("imagen", {"provider": "up", "model": "imagen-4.0-generate-001"}, {"provider": "mock"}),
         image_model("nano", {"provider": "up", "model": "gemini-2.5-flash-image"}, {"provider": "mock"}),
         image_model("imagen-only", {"provider": "up", "model": "imagen-4.0-generate-001"})],
        **({"prices": prices} if prices else {}))


def _fal_config(fake) -> dict:
    return base_config(
        [{"name": "up", "type": "fal", "base_url": fake.url, "api_key": fake.key, **POLL}, MOCK],
        [image_model("flux", {"provider": "up", "model": "fal-ai/flux/dev"}, {"provider": "mock"}),
         image_model("kontext", {"provider": "up", "model": "fal-ai/flux-pro/kontext"}, {"provider": "mock"})],
        prices={"up/fal-ai/flux/dev": {"per_image": 0.025}, "up/fal-ai/flux-pro/kontext": {"per_image": 0.04}})


def _replicate_config(fake, **options) -> dict:
    return base_config(
        [{"name": "up", "type": "replicate", "base_url": fake.url, "api_key": fake.key, **POLL, **options}, MOCK],
        [image_model("schnell", {"provider": "up", "model": "black-forest-labs/flux-schnell"}, {"provider": "mock"}),
         image_model("kontext", {"provider": "up", "model": "black-forest-labs/flux-kontext-pro"})],
        prices={"up/black-forest-labs/flux-schnell": {"per_image": 0.003},
                "up/black-forest-labs/flux-kontext-pro": {"per_image": 0.04}})


# --- Gemini: Imagen -------------------------------------------------------------

def test_imagen_makes_the_images_at_the_nearest_aspect_ratio_priced_per_image(start_gateway, gemini):
    gw = start_gateway(_gemini_config(gemini))
    raw = gw.client().images.with_raw_response.generate(model="imagen", prompt="a lighthouse", n=2, size="1536x1024")
    assert raw.headers["x-gateway-provider"] == "up"
    result = raw.parse()
    assert [(_decoded(d.b64_json).format, _decoded(d.b64_json).size) for d in result.data] == [("PNG", (96, 72))] * 2
    assert result.data[0].revised_prompt == "a lighthouse, photographed"      # Imagen's rewritten prompt
    sent = gemini.seen[-1]
    assert (sent.model, sent.method, sent.headers["x-goog-api-key"]) == ("imagen-4.0-generate-001", "predict",
                                                                         gemini.key)
    assert sent.json["instances"] == [{"prompt": "a lighthouse"}]
    assert sent.json["parameters"] == {"sampleCount": 2, "aspectRatio": "4:3", "sampleImageSize": "2K",
                                       "includeRaiReason": True}
    # the built-in price: imagen-4.0-generate-001 at $0.04 an image
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(2 * 0.04)

    # More than Imagen makes in one call: several calls at once, 4 images at most each
    seen = len(gemini.seen)
    raw = gw.client().images.with_raw_response.generate(model="imagen", prompt="gulls", n=6, size="1024x1792")
    assert len(raw.parse().data) == 6
    calls = gemini.seen[seen:]
    assert sorted(c.json["parameters"]["sampleCount"] for c in calls) == [2, 4]
    assert {c.json["parameters"]["aspectRatio"] for c in calls} == {"9:16"}
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(6 * 0.04)


def test_imagen_does_not_edit_a_400_naming_the_provider(start_gateway, gemini):
    gw = start_gateway(_gemini_config(gemini))
    r = gw.http().post("/v1/images/edits", files={"model": (None, "imagen-only"), "prompt": (None, "x"),
                                                  "image": ("a.png", png(32, 32), "image/png")})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "unsupported_operation" and "'up'" in error["message"] and "Imagen" in error["message"]
    assert not gemini.seen                                       # nothing went upstream


@pytest.mark.parametrize("answer", [
    b'{"predictions": [{"raiFilteredReason": "The prompt could not be submitted: it may violate our policies."}]}',
    b'{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}}',
    b'{"candidates": [{"content": {"parts": []}, "finishReason": "IMAGE_SAFETY"}]}',
])
def test_an_image_gemini_withholds_is_the_prompts_fault_not_a_failover(start_gateway, gemini, answer):
    gemini.image_answer = answer
    gw = start_gateway(_gemini_config(gemini))
    r = gw.http().post("/v1/images/generations", json={"model": "imagen" if b"predictions" in answer else "nano",
                                                       "prompt": "something unsafe", "size": "64x64"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "content_filter", r.text
    assert r.json()["error"]["param"] == "prompt" and r.headers["x-gateway-attempts"] == "1"


@pytest.mark.parametrize("size,imagen,gemini_ratio", [
    ("1024x1024", "1:1", "1:1"), ("1536x1024", "4:3", "3:2"), ("1024x1536", "3:4", "2:3"),
    ("1792x1024", "16:9", "16:9"), ("1024x1792", "9:16", "9:16"), ("2520x1080", "16:9", "21:9"),
    ("1280x1024", "4:3", "5:4")])
def test_sizes_become_the_nearest_aspect_ratio(size, imagen, gemini_ratio):
    w, h = map(int, size.split("x"))
    assert (nearest_ratio(w, h, IMAGEN_RATIOS), nearest_ratio(w, h, GEMINI_RATIOS)) == (imagen, gemini_ratio)


# --- Gemini: image output ----------------------------------------------------------

def test_gemini_image_output_generates_priced_by_its_tokens(start_gateway, gemini):
    gw = start_gateway(_gemini_config(gemini))
    raw = gw.client().images.with_raw_response.generate(model="nano", prompt="a red kite", n=2, size="1024x1792")
    result = raw.parse()
    assert [_decoded(d.b64_json).size for d in result.data] == [(54, 96)] * 2       # 9:16
    assert result.usage.input_tokens == 24 and result.usage.output_tokens == 2 * 1290
    assert len(gemini.seen) == 2                                                   # one image a call
    for sent in gemini.seen:
        assert (sent.model, sent.method) == ("gemini-2.5-flash-image", "generateContent")
        assert sent.json["contents"] == [{"role": "user", "parts": [{"text": "a red kite"}]}]
        assert sent.json["generationConfig"] == {"responseModalities": ["IMAGE"],
                                                 "imageConfig": {"aspectRatio": "9:16"}}
    # the built-in price: $0.30 a million prompt tokens, $30 a million output (image) tokens
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(2 * (12 * 0.30 + 1290 * 30) / 1e6)


def test_gemini_image_output_edits_the_uploaded_images(start_gateway, gemini):
    gw = start_gateway(_gemini_config(gemini))
    boat, sea = png(80, 40, "boat"), png(20, 20, "sea")
    result = gw.client().images.edit(model="nano", prompt="add a sail",
                                     image=[("boat.png", boat, "image/png"), ("sea.png", sea, "image/png")])
    assert _decoded(result.data[0].b64_json).size == (80, 40)       # no size: the input's shape
    parts = gemini.seen[-1].json["contents"][0]["parts"]
    assert parts[0] == {"text": "add a sail"}
    assert [(p["inline_data"]["mime_type"], base64.b64decode(p["inline_data"]["data"])) for p in parts[1:]] == [
        ("image/png", boat), ("image/png", sea)]
    assert "imageConfig" not in gemini.seen[-1].json["generationConfig"]


# --- fal ---------------------------------------------------------------------------

def test_fal_queues_the_request_and_fetches_its_images(start_gateway, fal):
    gw = start_gateway(_fal_config(fal))
    raw = gw.client().images.with_raw_response.generate(model="flux", prompt="a harbour", n=2, size="1024x768")
    result = raw.parse()
    assert [_decoded(d.b64_json).size for d in result.data] == [(128, 96)] * 2     # the preset, as the fake draws it
    assert _decoded(result.data[0].b64_json).tobytes() != _decoded(result.data[1].b64_json).tobytes()
    submit = fal.submits[-1]
    assert submit.path == "/fal-ai/flux/dev" and submit.headers["Authorization"] == f"Key {fal.key}"
    assert submit.json == {"prompt": "a harbour", "num_images": 2, "image_size": "landscape_4_3"}
    assert any(s.path.endswith("/status") for s in fal.seen)                      # polled on the queue
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(2 * 0.025)

    odd = gw.client().images.generate(model="flux", prompt="a pier", size="320x200", output_format="png")
    assert _decoded(odd.data[0].b64_json).size == (320, 200)
    assert fal.submits[-1].json["image_size"] == {"width": 320, "height": 200}
    assert fal.submits[-1].json["output_format"] == "png"


def test_fal_edits_with_the_image_as_a_data_uri(start_gateway, fal):
    gw = start_gateway(_fal_config(fal))
    harbour = png(48, 48, "harbour")
    raw = gw.client().images.with_raw_response.edit(model="kontext", prompt="add a boat", size="1024x576",
                                                    image=("harbour.png", harbour, "image/png"))
    assert _decoded(raw.parse().data[0].b64_json).size == (96, 54)
    sent = fal.submits[-1]
    assert sent.path == "/fal-ai/flux-pro/kontext" and sent.json["aspect_ratio"] == "16:9"
    assert _from_data_uri(sent.json["image_url"]) == ("data:image/png;base64", harbour)
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(0.04)


# --- Replicate -----------------------------------------------------------------------

def test_replicate_waits_for_the_prediction_and_fetches_its_images(start_gateway, replicate):
    gw = start_gateway(_replicate_config(replicate))
    raw = gw.client().images.with_raw_response.generate(model="schnell", prompt="a fox", n=3, size="1792x1024",
                                                        output_format="jpeg")
    result = raw.parse()
    assert [_decoded(d.b64_json).size for d in result.data] == [(96, 54)] * 3
    sent = replicate.submits[-1]
    assert sent.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    headers = {k.lower(): v for k, v in sent.headers.items()}
    assert headers["prefer"] == "wait" and headers["authorization"] == f"Bearer {replicate.key}"
    assert sent.json == {"input": {"prompt": "a fox", "num_outputs": 3, "aspect_ratio": "16:9",
                                   "output_format": "jpg"}}
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(3 * 0.003)

    # Not finished within the wait: polled until it succeeds
    replicate.sync_images = False
    one = gw.client().images.generate(model="schnell", prompt="an owl", size="512x512")
    assert _decoded(one.data[0].b64_json).size == (96, 96)
    assert replicate.submits[-1].json == {"input": {"prompt": "an owl", "aspect_ratio": "1:1"}}
    assert any(s.method == "GET" and "/v1/predictions/" in s.path for s in replicate.seen)


def test_replicate_edits_with_the_image_in_the_configured_field(start_gateway, replicate):
    gw = start_gateway(_replicate_config(replicate, image_input_field="input_image", image_size_as="width_height"))
    fox = png(40, 30, "fox")
    raw = gw.client().images.with_raw_response.edit(model="kontext", prompt="make it night", size="200x100",
                                                    image=("fox.png", fox, "image/png"))
    assert _decoded(raw.parse().data[0].b64_json).size == (200, 100)
    inp = replicate.submits[-1].json["input"]
    assert (inp["prompt"], inp["width"], inp["height"]) == ("make it night", 200, 100)
    assert _from_data_uri(inp["input_image"]) == ("data:image/png;base64", fox)
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(0.04)


# --- every backend: failover -------------------------------------------------------------

def _refuse(backend: str, fake, failure: str) -> None:
    if failure == "429":
        body = {"imagen": GEMINI_429, "nano": GEMINI_429, "fal": FAL_429, "replicate": REPLICATE_429}[backend]
        fake.fail(429, body, headers={"retry-after": "1"})
    elif backend == "imagen":
        fake.image_answer = b'{"predictions": []}'
    elif backend == "nano":
        fake.image_answer = (b'{"candidates": [{"content": {"parts": [{"text": "Here is your picture!"}]}, '
                             b'"finishReason": "STOP"}]}')
    elif backend == "fal":
        fake.image_result = b'{"images": [], "seed": 1}'
    else:   # a prediction that succeeded, its output a video
        fake.image_output = [f"{fake.base}/files/clip.mp4"]


@pytest.mark.parametrize("failure", ["429", "200 without images"])
@pytest.mark.parametrize("backend", ["imagen", "nano", "fal", "replicate"])
def test_a_refusing_or_imageless_backend_fails_over(start_gateway, loop, backend, failure):
    fake = {"imagen": FakeGemini, "nano": FakeGemini, "fal": FakeFal, "replicate": FakeReplicate}[backend](loop)
    try:
        _refuse(backend, fake, failure)
        config = {"imagen": _gemini_config, "nano": _gemini_config, "fal": _fal_config,
                  "replicate": _replicate_config}[backend](fake)
        model = {"imagen": "imagen", "nano": "nano", "fal": "flux", "replicate": "schnell"}[backend]
        config["auth"]["admin_key"] = "sk-admin"
        config["logging"] = {"requests": {"flush_s": 0.05}}
        gw = start_gateway(config)
        raw = gw.client().images.with_raw_response.generate(model=model, prompt="p", size="64x64")
        assert raw.headers["x-gateway-provider"] == "mock" and raw.headers["x-gateway-attempts"] == "2"
        assert _decoded(raw.parse().data[0].b64_json).size == (64, 64)
        logged = gw.http("sk-admin").get(f"/admin/requests/{raw.headers['x-request-id']}").json()
        first = logged["attempt_log"][0]
        assert (first["provider"], first["status"], first["error"]) == (
            ("up", 429, "rate_limit_exceeded") if failure == "429" else ("up", None, "upstream_malformed"))
    finally:
        fake.close()


@pytest.mark.parametrize("backend", ["fal", "replicate"])
def test_a_job_past_the_deadline_ends_the_request_and_is_cancelled_upstream(start_gateway, loop, backend):
    fake = {"fal": FakeFal, "replicate": FakeReplicate}[backend](loop)
    try:
        fake.ok(running_polls=10_000)          # running until long past the model's 1 s
        if backend == "replicate":
            fake.sync_images = False
        config = _fal_config(fake) if backend == "fal" else _replicate_config(fake)
        config["models"][0]["timeout_s"] = 1.0
        config["models"][0]["route"]["targets"] = config["models"][0]["route"]["targets"][:1]
        gw = start_gateway(config)
        started = time.monotonic()
        r = gw.http().post("/v1/images/generations", json={"model": config["models"][0]["name"], "prompt": "p"})
        assert r.status_code == 504 and time.monotonic() - started < 5, r.text
        deadline = time.monotonic() + 5
        while not any("cancel" in s.path for s in fake.seen) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [s.method for s in fake.seen if "cancel" in s.path] == ["PUT" if backend == "fal" else "POST"]
    finally:
        fake.close()
