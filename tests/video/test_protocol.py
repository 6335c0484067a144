"""`POST /v1/videos` bodies, built by the official SDK, parsed by gateway.video.protocol."""
from __future__ import annotations

import base64
import io
import json
import warnings

import httpx
import openai
import pytest
from PIL import Image

from gateway.errors import ApiError
from gateway.video.protocol import (
    CAMERA_MOVEMENTS,
    MAX_PROMPT_CHARS,
    MAX_REFERENCE_BYTES,
    SORA_SECONDS,
    SORA_SIZES,
    STYLE_PRESETS,
    VideoRequest,
    parse_create,
    prompt_with_hints,
)


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 9), (200, 30, 60)).save(out, format=fmt)
    return out.getvalue()


PNG, JPEG, WEBP = _image("PNG"), _image("JPEG"), _image("WEBP")


def sdk_body(**kwargs) -> tuple[bytes, bytes]:
    """(content-type, body) exactly as `client.videos.create(**kwargs)` sends them."""
    sent: list[httpx.Request] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={"id": "video_1", "object": "video", "created_at": 0, "model": "sora-2",
                                         "progress": 0, "seconds": "4", "size": "720x1280", "status": "queued"})

    client = openai.OpenAI(api_key="sk-test", base_url="http://gateway.test/v1",
                           http_client=httpx.Client(transport=httpx.MockTransport(upstream)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks the Sora API deprecated
        client.videos.create(**kwargs)
    (request,) = sent
    assert request.method == "POST" and request.url.path == "/v1/videos"
    return request.headers["content-type"].encode(), request.read()


def parse_sdk(**kwargs) -> VideoRequest:
    return parse_create(*sdk_body(**kwargs))


def parse_json(data) -> VideoRequest:
    return parse_create(b"application/json", json.dumps(data).encode())


def refused(param: str | None, content_type: bytes, body: bytes, **sets) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_create(content_type, body, **sets)
    err = caught.value
    assert err.status == 400 and err.type == "invalid_request_error"
    assert err.param == param, err.message
    return err


def refused_sdk(param: str | None, **kwargs) -> ApiError:
    return refused(param, *sdk_body(**kwargs))


def refused_json(param: str | None, data) -> ApiError:
    return refused(param, b"application/json", json.dumps(data).encode())


# --- what the SDK sends ---------------------------------------------------------

def test_sdk_sends_multipart_with_the_reference_as_a_file_part(tmp_path):
    path = tmp_path / "ref.png"
    path.write_bytes(PNG)
    with open(path, "rb") as f:
        content_type, body = sdk_body(prompt="a red fox in snow", model="sora-2-pro", seconds="8",
                                      size="1280x720", input_reference=f)
    assert content_type.startswith(b"multipart/form-data; boundary=")
    assert b'name="input_reference"; filename="ref.png"\r\nContent-Type: image/png\r\n\r\n' in body
    req = parse_create(content_type, body)
    assert req == VideoRequest(prompt="a red fox in snow", model="sora-2-pro", seconds="8", size="1280x720",
                               width=1280, height=720, reference_image=PNG, reference_media_type="image/png")


def test_sdk_sends_multipart_even_without_a_file():
    content_type, body = sdk_body(prompt="waves")
    assert content_type.startswith(b"multipart/form-data; boundary=")
    req = parse_create(content_type, body)
    assert (req.prompt, req.model, req.seconds, req.size, req.width, req.height) == \
        ("waves", "sora-2", "4", "720x1280", 720, 1280)
    assert req.reference_image is None and req.reference_url is None


def test_every_seed_parameter_through_extra_body():
    req = parse_sdk(prompt="a lighthouse", extra_body={
        "duration": 12, "resolution": "1792X1024", "negative_prompt": "blurry, text", "seed": 4294967295,
        "style_preset": "Cinematic", "camera_movement": "pan_left", "callback_url": "https://hooks.example.com/v",
        "unknown_field": {"nested": [1, 2]}, "n": 3})
    assert (req.seconds, req.size, req.width, req.height) == ("12", "1792x1024", 1792, 1024)
    assert req.negative_prompt == "blurry, text" and req.seed == 4294967295
    assert (req.style_preset, req.camera_movement) == ("cinematic", "pan-left")
    assert req.callback_url == "https://hooks.example.com/v"


@pytest.mark.parametrize("shorthand, size", [("720p", "1280x720"), ("1080p", "1920x1080"), ("480P", "854x480")])
def test_resolution_shorthands(shorthand, size):
    sizes = {"1280x720", "1920x1080", "854x480"}
    req = parse_create(*sdk_body(prompt="p", extra_body={"resolution": shorthand}), sizes=sizes)
    assert req.size == size and f"{req.width}x{req.height}" == size
    assert parse_create(b"application/json", json.dumps({"prompt": "p", "size": shorthand}).encode(),
                        sizes=sizes).size == size


def test_aliases_that_agree_are_accepted():
    req = parse_sdk(prompt="p", seconds="8", size="1280x720", extra_body={"duration": 8, "resolution": "720p"})
    assert (req.seconds, req.size) == ("8", "1280x720")


@pytest.mark.parametrize("extra, param", [({"seconds": "4", "duration": "8"}, "duration"),
                                          ({"size": "720x1280", "resolution": "720p"}, "resolution")])
def test_aliases_that_disagree_are_refused(extra, param):
    err = refused_json(param, {"prompt": "p", **extra})
    assert "alias" in err.message


def test_alias_conflict_through_the_sdk():
    refused_sdk("duration", prompt="p", seconds="4", extra_body={"duration": 8})


def test_reference_url_object_sent_as_nested_form_fields():
    reference = {"image_url": "https://img.example/a.png"}
    content_type, body = sdk_body(prompt="p", extra_body={"input_reference": reference})
    assert b'name="input_reference[image_url]"' in body
    req = parse_create(content_type, body)
    assert req.reference_url == "https://img.example/a.png" and req.reference_image is None


def test_reference_url_as_a_plain_form_field():
    req = parse_sdk(prompt="p", extra_body={"input_reference": "https://img.example/b.jpg"})
    assert req.reference_url == "https://img.example/b.jpg"


def test_reference_file_id_is_refused():
    refused_sdk("input_reference", prompt="p", extra_body={"input_reference": {"file_id": "file_123"}})


@pytest.mark.parametrize("image, media_type", [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")])
def test_reference_images_by_magic_bytes(image, media_type):
    # The declared part type is ignored: the bytes decide.
    req = parse_sdk(prompt="p", input_reference=("ref.bin", image, "application/octet-stream"))
    assert req.reference_image == image and req.reference_media_type == media_type


def test_non_image_upload_is_refused():
    pdf = b"%PDF-1.7 not an image"
    err = refused_sdk("input_reference", prompt="p", input_reference=("ref.png", pdf, "image/png"))
    assert "PNG, JPEG or WEBP" in err.message


def test_empty_upload_is_refused():
    refused_sdk("input_reference", prompt="p", input_reference=("ref.png", b"", "image/png"))


def test_oversize_upload_is_refused():
    big = PNG + b"\0" * (MAX_REFERENCE_BYTES + 1 - len(PNG))
    err = refused_sdk("input_reference", prompt="p", input_reference=("big.png", big, "image/png"))
    assert "10 MB" in err.message


def test_upload_at_the_limit_is_accepted():
    exact = PNG + b"\0" * (MAX_REFERENCE_BYTES - len(PNG))
    assert parse_sdk(prompt="p", input_reference=("ok.png", exact, "image/png")).reference_image == exact


def test_body_past_the_backstop_is_refused():
    content_type, body = sdk_body(prompt="p",
                                  input_reference=("big.png", PNG + b"\0" * (12 * 1024 * 1024), "image/png"))
    with pytest.raises(ApiError) as caught:
        parse_create(content_type, body)
    assert caught.value.status == 413 and "at most" in caught.value.message


def test_two_uploads_are_refused():
    content_type, body = sdk_body(prompt="p", input_reference=("a.png", PNG, "image/png"))
    boundary = content_type.split(b"boundary=")[1]
    extra = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="input_reference"; filename="b.png"\r\n'
             b"Content-Type: image/png\r\n\r\n" + PNG + b"\r\n")
    body = body.replace(b"--" + boundary + b"--", extra + b"--" + boundary + b"--")
    refused("input_reference", content_type, body)


# --- prompt and model -----------------------------------------------------------

def test_prompt_is_required():
    refused_json("prompt", {"model": "sora-2"})


@pytest.mark.parametrize("prompt", ["", "   \n"])
def test_empty_prompt_is_refused(prompt):
    refused_sdk("prompt", prompt=prompt)


def test_100_kb_prompt_is_refused():
    err = refused_sdk("prompt", prompt="a" * 100_000)
    assert str(MAX_PROMPT_CHARS) in err.message


def test_prompt_at_the_limit_is_accepted_even_in_multibyte_utf8():
    prompt = "猫" * MAX_PROMPT_CHARS
    assert parse_sdk(prompt=prompt).prompt == prompt


def test_non_string_prompt_or_model_in_json_is_refused():
    refused_json("prompt", {"prompt": ["a"]})
    refused_json("model", {"prompt": "a", "model": 7})
    refused_json("model", {"prompt": "a", "model": ""})


# --- seconds and size -----------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "-4", "99999999999999999999", "four", "4.0", "4s", ""])
def test_bad_seconds_through_the_sdk(value):
    refused_sdk("seconds", prompt="p", seconds=value)


@pytest.mark.parametrize("value", [0, -8, 10**30, 4.0, True, "abc", [4]])
def test_bad_duration_in_json(value):
    refused_json("duration", {"prompt": "p", "duration": value})


def test_seconds_outside_the_model_set_lists_the_supported_values():
    err = refused_sdk("seconds", prompt="p", seconds="20")
    assert "'4', '8', '12'" in err.message


def test_seconds_as_int_and_string_in_json():
    assert parse_json({"prompt": "p", "seconds": 8}).seconds == "8"
    assert parse_json({"prompt": "p", "duration": "12"}).seconds == "12"


def test_unsupported_size_lists_the_supported_sizes():
    err = refused_sdk("size", prompt="p", size="1920x1080")
    assert "720x1280, 1280x720, 1024x1792, 1792x1024" in err.message
    refused_sdk("resolution", prompt="p", extra_body={"resolution": "1080p"})


@pytest.mark.parametrize("value", ["1280*720", "1280x", "0x720", "big", "1280x720x3"])
def test_malformed_size_is_refused(value):
    refused_sdk("size", prompt="p", size=value)


def test_model_sets_replace_the_sora_defaults():
    sets = {"sizes": {"768x512", "512x768"}, "seconds": {"2", "5"}}
    req = parse_create(*sdk_body(prompt="p", extra_body={"resolution": "768X512", "duration": 5}), **sets)
    assert (req.size, req.width, req.height, req.seconds) == ("768x512", 768, 512, "5")
    # Sora's defaults are not in these sets: the smallest supported values are chosen.
    req = parse_create(*sdk_body(prompt="p"), **sets)
    assert (req.size, req.seconds) == ("512x768", "2")
    err = refused("seconds", *sdk_body(prompt="p", seconds="4"), **sets)
    assert "'2', '5'" in err.message


def test_sora_sets():
    assert SORA_SIZES == {"720x1280", "1280x720", "1024x1792", "1792x1024"}
    assert SORA_SECONDS == {"4", "8", "12"}


# --- the other seed parameters --------------------------------------------------

@pytest.mark.parametrize("seed", ["-1", "4294967296", "1.5", "x"])
def test_bad_seed_is_refused(seed):
    refused_sdk("seed", prompt="p", extra_body={"seed": seed})


@pytest.mark.parametrize("seed", [-1, 2**32, 1.0, True, "x"])
def test_bad_seed_in_json_is_refused(seed):
    refused_json("seed", {"prompt": "p", "seed": seed})


def test_seed_bounds_are_accepted():
    assert parse_json({"prompt": "p", "seed": 0}).seed == 0
    assert parse_sdk(prompt="p", extra_body={"seed": 2**32 - 1}).seed == 2**32 - 1


def test_negative_prompt_length():
    assert parse_sdk(prompt="p", extra_body={"negative_prompt": "n" * 2000}).negative_prompt == "n" * 2000
    refused_sdk("negative_prompt", prompt="p", extra_body={"negative_prompt": "n" * 2001})
    refused_json("negative_prompt", {"prompt": "p", "negative_prompt": 3})


@pytest.mark.parametrize("name, table", [("style_preset", STYLE_PRESETS), ("camera_movement", CAMERA_MOVEMENTS)])
def test_every_documented_choice_is_accepted_and_others_list_them(name, table):
    for value in table:
        assert getattr(parse_sdk(prompt="p", extra_body={name: value}), name) == value
    err = refused_sdk(name, prompt="p", extra_body={name: "vaporwave"})
    assert ", ".join(table) in err.message
    refused_json(name, {"prompt": "p", name: 1})


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "example.com/hook", "https://", "https://exa mple.com/",
                                 "http://example.com:99999/", "javascript:alert(1)", "https://e.com/" + "a" * 3000])
def test_bad_callback_url_is_refused(url):
    refused_sdk("callback_url", prompt="p", extra_body={"callback_url": url})


def test_callback_url_is_syntax_checked_only():
    # Private addresses pass here: the SSRF guard runs later, where the network is.
    assert parse_json({"prompt": "p", "callback_url": "http://127.0.0.1:9/x"}).callback_url == "http://127.0.0.1:9/x"


# --- JSON bodies ----------------------------------------------------------------

def test_json_body_with_everything():
    req = parse_create(b"application/json; charset=utf-8", json.dumps({
        "prompt": "a city at night", "model": "sora-2", "seconds": 8, "resolution": "720p", "seed": 7,
        "negative_prompt": None, "style_preset": "3d-render", "camera_movement": "orbit",
        "input_reference": "https://img.example/ref.jpg", "ignored": {"x": 1}}).encode())
    assert (req.seconds, req.size, req.seed, req.style_preset, req.camera_movement) == \
        ("8", "1280x720", 7, "3d-render", "orbit")
    assert req.negative_prompt is None and req.reference_url == "https://img.example/ref.jpg"


def test_json_reference_as_object_and_data_url():
    assert parse_json({"prompt": "p", "input_reference": {"image_url": "http://i.example/a"}}).reference_url == \
        "http://i.example/a"
    data_url = "data:image/webp;base64," + base64.b64encode(WEBP).decode()
    req = parse_json({"prompt": "p", "input_reference": {"image_url": data_url}})
    assert req.reference_image == WEBP and req.reference_media_type == "image/webp" and req.reference_url is None


@pytest.mark.parametrize("ref", ["data:image/png;base64,!!!", "data:text/plain,hello",
                                 "data:image/png;base64," + base64.b64encode(b"GIF89a....").decode(),
                                 "file:///etc/passwd", 5, {"image_url": "https://a", "other": 1}, {}])
def test_bad_json_reference_is_refused(ref):
    refused_json("input_reference", {"prompt": "p", "input_reference": ref})


@pytest.mark.parametrize("body", [b"", b"[1, 2]", b'"prompt"', b"{not json", b"null"])
def test_json_that_is_not_an_object_is_refused(body):
    refused(None, b"application/json", body)


# --- the envelope ---------------------------------------------------------------

@pytest.mark.parametrize("content_type", [b"", b"text/plain", b"application/x-www-form-urlencoded"])
def test_wrong_content_type_is_refused(content_type):
    err = refused(None, content_type, b"prompt=hi")
    assert "multipart/form-data" in err.message and "application/json" in err.message


def _form(*parts: bytes, boundary: bytes = b"b0und") -> bytes:
    return b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts) + b"--" + boundary + b"--\r\n"


FORM = b"multipart/form-data; boundary=b0und"
PROMPT = b'Content-Disposition: form-data; name="prompt"\r\n\r\nhello'


def test_hand_built_form_with_preamble_quoted_boundary_and_epilogue():
    body = b"preamble\r\n" + _form(PROMPT) + b"epilogue"
    assert parse_create(b'Multipart/Form-Data; boundary="b0und"', body).prompt == "hello"


@pytest.mark.parametrize("content_type, body", [
    (b"multipart/form-data", _form(PROMPT)),                                   # no boundary
    (b"multipart/form-data; boundary=" + b"x" * 71, _form(PROMPT)),              # boundary too long
    (FORM, b"no boundary anywhere"),
    (FORM, b"--b0und\r\n" + PROMPT + b"\r\n"),                                  # never closed
    (FORM, _form(b"Content-Disposition: form-data; name=\"prompt\"")),          # no blank line
    (FORM, _form(b"Content-Type: text/plain\r\n\r\nhello")),                    # no Content-Disposition
    (FORM, _form(b"Content-Disposition: attachment; name=\"prompt\"\r\n\r\nx")),
    (FORM, _form(b"Content-Disposition form-data\r\n\r\nx")),                   # header without colon
    (FORM, _form(*[PROMPT] * 65)),                                              # too many parts
    (FORM, b"--b0undjunk\r\n" + PROMPT + b"\r\n--b0und--"),
])
def test_malformed_multipart_is_refused(content_type, body):
    refused(None, content_type, body)


def test_repeated_field_is_refused():
    refused("prompt", FORM, _form(PROMPT, PROMPT))


def test_field_that_is_not_utf8_is_refused():
    refused("prompt", FORM, _form(b'Content-Disposition: form-data; name="prompt"\r\n\r\n\xff\xfe'))


def test_huge_text_part_is_refused():
    refused("prompt", FORM, _form(b'Content-Disposition: form-data; name="prompt"\r\n\r\n' + b"a" * 300_000))


def test_unknown_parts_and_files_are_ignored():
    body = _form(PROMPT, b'Content-Disposition: form-data; name="other"; filename="x.bin"\r\n\r\n\x00\x01',
                 b'Content-Disposition: form-data; name="user"\r\n\r\nsomeone')
    assert parse_create(FORM, body).prompt == "hello"


def test_binary_upload_containing_crlf_and_dashes_survives():
    image = PNG + b"\r\n--b0un\r\n--\r\n"
    body = _form(PROMPT, b'Content-Disposition: form-data; name="input_reference"; filename="a.png"\r\n'
                         b"Content-Type: image/png\r\n\r\n" + image)
    assert parse_create(FORM, body).reference_image == image


# --- prompt hints ---------------------------------------------------------------

def test_prompt_with_hints():
    req = parse_json({"prompt": "A fox.", "style_preset": "cinematic", "camera_movement": "pan-left"})
    assert prompt_with_hints(req) == ("A fox.\n\nStyle: cinematic film look, dramatic lighting, shallow depth of "
                                      "field. Camera: slow pan to the left.")
    assert prompt_with_hints(parse_json({"prompt": "A fox.", "camera_movement": "static"})) == \
        "A fox.\n\nCamera: static shot, the camera does not move."
    assert prompt_with_hints(parse_json({"prompt": "A fox."})) == "A fox."


def test_reference_image_is_left_out_of_repr():
    req = parse_sdk(prompt="p", input_reference=("a.png", PNG, "image/png"))
    assert "reference_image" not in repr(req) and "image/png" in repr(req)
