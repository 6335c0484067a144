"""What POST /v1/videos accepts beyond OpenAI's fields (the seed parameters),
and what it refuses: every bad input is a clear 400 (or 413) and leaves no
job, no queue entry and no file behind."""
from __future__ import annotations

import io

import openai
import pytest
from PIL import Image

from tests.video.conftest import decode_mp4, video_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _png(w: int = 32, h: int = 18) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (w, h), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_seed_aliases_and_extras_are_accepted(start_gateway):
    gw = start_gateway(video_config())
    client = gw.client()
    video = client.videos.create_and_poll(
        model="mock-video", prompt="a lighthouse",
        extra_body={"duration": 2, "resolution": "320x180", "negative_prompt": "blurry", "seed": 7,
                    "style_preset": "cinematic", "camera_movement": "pan_left"})
    assert video.status == "completed" and video.seconds == "2" and video.size == "320x180"
    decoded = decode_mp4(client.videos.download_content(video.id).read())
    assert (decoded.width, decoded.height, decoded.frames) == (320, 180, 8)


def test_same_prompt_and_seed_give_the_same_video_and_style_changes_it(start_gateway):
    gw = start_gateway(video_config())
    client = gw.client()

    def make(**extra) -> bytes:
        v = client.videos.create_and_poll(model="mock-video", prompt="waves", size="320x180", seconds="1",
                                          extra_body={"seed": 42, **extra})
        return client.videos.download_content(v.id).read()

    plain = make()
    assert make() == plain
    assert make(style_preset="anime") != plain
    assert make(camera_movement="zoom-in") != plain


def test_resolution_shorthand_maps_to_a_size(start_gateway):
    cfg = video_config()
    cfg["providers"][0]["video_sizes"] = ["1280x720", "320x180"]
    gw = start_gateway(cfg)
    video = gw.client().videos.create(model="mock-video", prompt="x", seconds="1", extra_body={"resolution": "720p"})
    assert video.size == "1280x720"


def test_image_to_video_with_an_uploaded_reference(start_gateway):
    gw = start_gateway(video_config())
    client = gw.client()
    video = client.videos.create_and_poll(model="mock-video", prompt="from a picture", size="320x180",
                                          seconds="1", input_reference=("ref.png", _png(), "image/png"))
    assert video.status == "completed"
    assert (gw.runtime.services.videos.assets.root / video.id / "reference.img").read_bytes() == _png()


BAD = [
    ({"seconds": "-4"}, "seconds", "positive"),
    ({"seconds": "0"}, "seconds", "positive"),
    ({"seconds": "99999999999999"}, "seconds", "too large"),
    ({"seconds": "61"}, "seconds", "1 to 60 seconds"),
    ({"seconds": "4.5"}, "seconds", "whole number"),
    ({"size": "333x333"}, "size", "even numbers"),
    ({"size": "4000x100"}, "size", "from 64 to 1920"),
    ({"size": "1920x1920"}, "size", "at most 1920x1080"),
    ({"size": "big"}, "size", "WIDTHxHEIGHT"),
    ({"extra_body": {"duration": -1}}, "duration", "positive"),
    ({"extra_body": {"duration": 2, "seconds": "4"}}, "duration", "alias"),
    ({"extra_body": {"resolution": "4k"}}, "resolution", "WIDTHxHEIGHT"),
    ({"prompt": "x" * 100_000}, "prompt", "maximum"),
    ({"prompt": "   "}, "prompt", "empty"),
    ({"extra_body": {"seed": -1}}, "seed", "integer"),
    ({"extra_body": {"style_preset": "vaporwave"}}, "style_preset", "Allowed values"),
    ({"extra_body": {"camera_movement": "spin"}}, "camera_movement", "Allowed values"),
    ({"extra_body": {"negative_prompt": "n" * 5000}}, "negative_prompt", "maximum"),
    ({"input_reference": ("notes.txt", b"just text", "text/plain")}, "input_reference", "PNG, JPEG or WEBP"),
    ({"input_reference": ("empty.png", b"", "image/png")}, "input_reference", "empty"),
    ({"extra_body": {"callback_url": "http://127.0.0.1:9/hook"}}, "callback_url", "loopback"),
    ({"extra_body": {"callback_url": "http://169.254.169.254/latest/meta-data"}}, "callback_url", "link-local"),
    ({"extra_body": {"callback_url": "http://10.0.0.5/hook"}}, "callback_url", "private"),
    ({"extra_body": {"callback_url": "ftp://example.com/hook"}}, "callback_url", "http or https"),
    ({"extra_body": {"input_reference": {"image_url": "http://127.0.0.1:9/x.png"}}}, "input_reference", "loopback"),
]


@pytest.mark.parametrize("args,param,says", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_a_400_and_creates_nothing(start_gateway, args, param, says):
    cfg = video_config()
    cfg["webhooks"]["allow_hosts"] = []      # the guard as shipped: nothing private allowed
    gw = start_gateway(cfg)
    client = gw.client()
    kw = {"model": "mock-video", "prompt": "a fox", "size": "320x180", "seconds": "1", **args}
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(**kw)
    err = e.value.body
    assert e.value.status_code == 400 and err["param"] == param and says in err["message"], err
    assert client.videos.list().data == []
    root = gw.runtime.services.videos.assets.root
    assert not root.exists() or not any(root.iterdir())


def test_raw_bad_bodies(start_gateway):
    gw = start_gateway(video_config())
    http = gw.http()
    cases = [
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"prompt": 5}', "application/json", 400),
        (b"prompt=x", "application/x-www-form-urlencoded", 400),
        (b"--b\r\nbroken", "multipart/form-data; boundary=b", 400),
        (b"x", "multipart/form-data", 400),
    ]
    for body, content_type, status in cases:
        r = http.post("/v1/videos", content=body, headers={"content-type": content_type})
        assert r.status_code == status, (body, r.text)
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}
    huge = http.post("/v1/videos", content=b"x" * (12 * 1024 * 1024), headers={"content-type": "application/json"})
    assert huge.status_code == 413
    assert gw.client().videos.list().data == []


def test_list_arguments_are_checked(start_gateway):
    gw = start_gateway(video_config())
    http = gw.http()
    for params in ({"limit": 0}, {"limit": 101}, {"limit": "x"}, {"order": "sideways"}):
        r = http.get("/v1/videos", params=params)
        assert r.status_code == 400, params
    assert http.get("/v1/videos/x/content", params={"variant": "poster"}).status_code == 400


def test_callback_url_needs_a_webhook_secret(start_gateway):
    cfg = video_config()
    cfg["webhooks"] = {}
    gw = start_gateway(cfg)
    with pytest.raises(openai.BadRequestError, match="webhooks.secret"):
        gw.client().videos.create(model="mock-video", prompt="x", size="320x180", seconds="1",
                                  extra_body={"callback_url": "https://example.com/hook"})
