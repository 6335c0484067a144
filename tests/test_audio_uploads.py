"""Audio uploads streamed through the gateway, never held whole: the official
SDK sends a WAV of megabytes made here over real HTTP on loopback; the gateway
spools it to a temp file as it arrives and sends it on from there to a fake
upstream that hashes it as it reads (so neither side of the test holds it
either). The upstream gets the same bytes, with a Content-Length, not chunked;
the test process's peak memory stays far below the file's size; a failover
sends it again from the start; and however the request ends (answered,
refused, the client gone, an attempt cut off mid-upload) the spool is gone."""
from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audio.protocol import MAX_BODY_BYTES
from gateway.errors import ApiError
from gateway.metrics import REQUESTS
from gateway.video import multipart
from providers.media import wav
from providers.openai import audio as openai_audio
from providers.openai.video import multipart as multipart_body
from providers.spool import Spool, SpooledUpload
from tests.harness import base_config
from tests.test_audio import stt_model
from tests.upstreams.openai_fake import Heard

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")    # the SDK marks whisper-1's API deprecated

RATE = 16_000      # PCM16 mono: 32,000 bytes a second


@pytest.fixture
def spools(tmp_path, monkeypatch) -> Path:
    """The temp dir the gateway spools uploads to, this test's own (tempfile.tempdir)."""
    folder = tmp_path / "spools"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def spooled(folder: Path) -> int:
    """Spools open in `folder`: files the process holds there (a spool has no name: only its
    descriptor says it exists), and any file left in it."""
    held = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        held += os.path.dirname(target.removesuffix(" (deleted)")) == str(folder)
    return held + sum(1 for p in folder.iterdir() if p.is_file())


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def noise_wav(path: Path, seconds: int) -> str:
    """A WAV of `seconds` of noise at 16 kHz (noise: a byte out of place would show in its hash),
    written to `path`; its sha256."""
    data = wav.wav(random.Random(seconds).randbytes(seconds * RATE * 2), RATE)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def statuses(before: Counter[str]) -> Counter[str]:
    """The statuses of transcriptions counted since `before` (a `statuses(Counter())`)."""
    now: Counter[str] = Counter()
    for (_, _, status, endpoint), n in REQUESTS.values.items():
        if endpoint == "transcriptions":
            now[status] += int(n)
    return now - before


def config(tmp_path: Path, *fakes: Any, **model: Any) -> dict:
    providers = [{"name": f"up{i}", "type": "openai", "base_url": fake.url, "api_key": "sk-upstream"}
                 for i, fake in enumerate(fakes)] + [{"name": "mock", "type": "mock"}]
    targets = [{"provider": f"up{i}", "model": "whisper-1"} for i in range(len(fakes))] or [{"provider": "mock"}]
    return base_config(providers, [{**stt_model("ears", *targets), **model}],
                       prices={f"up{i}/whisper-1": {"per_second": 0.0001} for i in range(len(fakes))},
                       state={"data_dir": str(tmp_path / "data")})


def hashing(fake: Any) -> Any:
    fake.hash_uploads = True
    return fake


def the_file(fake: Any) -> tuple[str, str, Heard]:
    return dict(fake.audio_forms[-1])["file"]


# -- a large upload ------------------------------------------------------------------

def test_a_large_upload_reaches_the_upstream_byte_for_byte_with_a_content_length(start_gateway, fake_openai,
                                                                                 spools, tmp_path):
    fake = hashing(fake_openai())
    gw = start_gateway(config(tmp_path, fake))
    path = tmp_path / "meeting.wav"
    digest = noise_wav(path, 320)          # 10 MB
    with path.open("rb") as f:
        raw = gw.client().audio.transcriptions.with_raw_response.create(model="ears", file=f, language="en")
    assert raw.parse().text == "The fake heard the audio."
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(320 * 0.0001)    # the WAV header's seconds
    sent = fake.seen[-1]
    assert int(sent.headers["Content-Length"]) > path.stat().st_size and "Transfer-Encoding" not in sent.headers
    parts = fake.audio_forms[-1]
    assert parts[0] == ("model", "whisper-1") and ("language", "en") in parts      # its own model first
    filename, media_type, heard = the_file(fake)
    assert (filename, media_type) == ("meeting.wav", "audio/wav")
    assert heard.size == path.stat().st_size and heard.sha256.hexdigest() == digest
    wait_until(lambda: spooled(spools) == 0)


def test_the_gateway_never_holds_the_upload_in_memory(start_gateway, fake_openai, spools, tmp_path):
    """tracemalloc's peak over the whole exchange, in this process (the SDK's client, the gateway
    and the upstream all run here), stays far below the file's 20 MB."""
    fake = hashing(fake_openai())
    gw = start_gateway(config(tmp_path, fake))
    client = gw.client()
    path = tmp_path / "long.wav"
    digest = noise_wav(path, 640)          # 20 MB: 10 minutes and 40 seconds
    size = path.stat().st_size
    tracemalloc.start()
    try:
        with path.open("rb") as f:
            text = client.audio.transcriptions.create(model="ears", file=f).text
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert text == "The fake heard the audio." and the_file(fake)[2].sha256.hexdigest() == digest
    assert peak < size / 4, f"peak {peak} bytes for a {size}-byte upload"
    wait_until(lambda: spooled(spools) == 0)


def test_the_upstream_form_in_pieces_is_the_form_made_whole():
    """providers/openai/audio.py's form: its pieces, joined, are the body `multipart` makes whole
    (the same boundary), and its length is said right."""
    spool = Spool()
    try:
        audio = wav.wav(random.Random(1).randbytes(200_000), RATE)
        for at in range(0, len(audio), 7_000):
            spool.write(audio[at:at + 7_000])
        data = {"file": SpooledUpload("a b\".wav", "audio/wav", spool), "fields": [("language", "en"),
                                                                                  ("include[]", "logprobs")]}
        body, content_type = openai_audio.form(data, "whisper-1")

        async def joined() -> bytes:
            return b"".join([piece async for piece in body.pieces()])
        sent = asyncio.run(joined())
        boundary = content_type.rpartition("boundary=")[2]
        whole, _ = multipart_body([("model", "whisper-1"), ("language", "en"), ("include[]", "logprobs"),
                                   ("file", ('a b".wav', "audio/wav", audio))], boundary)
        assert sent == whole and body.length == len(whole) and asyncio.run(joined()) == whole   # again, the same
    finally:
        spool.close()


# -- failover ---------------------------------------------------------------------------

def test_a_failover_sends_the_upload_again_from_the_start(start_gateway, fake_openai, spools, tmp_path):
    first, second = hashing(fake_openai("first")), hashing(fake_openai("second"))
    first.fail(500, '{"error": {"message": "The server had an error", "type": "server_error"}}')
    gw = start_gateway(config(tmp_path, first, second))
    path = tmp_path / "a.wav"
    digest = noise_wav(path, 100)          # 3.2 MB
    with path.open("rb") as f:
        raw = gw.client().audio.transcriptions.with_raw_response.create(model="ears", file=f)
    assert raw.headers["x-gateway-provider"] == "up1" and raw.headers["x-gateway-attempts"] == "2"
    for fake in (first, second):        # the first read it all before it failed
        assert the_file(fake)[2].sha256.hexdigest() == digest and the_file(fake)[2].size == path.stat().st_size
    wait_until(lambda: spooled(spools) == 0)


def test_a_redirect_that_repeats_the_request_sends_the_upload_again_from_the_start(start_gateway, fake_openai,
                                                                                   spools, tmp_path):
    moved, second = hashing(fake_openai("moved")), hashing(fake_openai("second"))
    moved.fail(307, "", headers={"location": f"{second.url}/audio/transcriptions"})
    cfg = config(tmp_path, moved)
    cfg["providers"][0]["follow_redirects"] = [second.base]
    gw = start_gateway(cfg)
    path = tmp_path / "c.wav"
    digest = noise_wav(path, 50)
    with path.open("rb") as f:
        assert gw.client().audio.transcriptions.create(model="ears", file=f).text == "The fake heard the audio."
    for fake in (moved, second):
        assert the_file(fake)[2].sha256.hexdigest() == digest and "Transfer-Encoding" not in fake.seen[-1].headers
    wait_until(lambda: spooled(spools) == 0)


def test_an_attempt_cut_off_mid_upload_fails_over_and_the_next_gets_it_whole(start_gateway, fake_openai, spools,
                                                                             tmp_path):
    """The first upstream reads so slowly that its attempt's time runs out while the file is still
    going up (more of it than the sockets' buffers hold): that send is cancelled, and the next
    target gets the file from its start."""
    slow, second = hashing(fake_openai("slow")), hashing(fake_openai("second"))
    slow.upload_gap_s = 0.05
    gw = start_gateway(config(tmp_path, slow, second, attempt_timeout_s=0.5))
    path = tmp_path / "b.wav"
    digest = noise_wav(path, 400)          # 12.8 MB
    with path.open("rb") as f:
        raw = gw.client().audio.transcriptions.with_raw_response.create(model="ears", file=f)
    assert raw.headers["x-gateway-provider"] == "up1" and raw.headers["x-gateway-attempts"] == "2"
    assert the_file(second)[2].sha256.hexdigest() == digest and not slow.audio_forms
    wait_until(lambda: spooled(spools) == 0)


# -- the ways an upload goes wrong ---------------------------------------------------------

def _form(file: bytes, model: bytes = b"ears", closed: bool = True) -> bytes:
    return (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\n' + model + b"\r\n"
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
            b"Content-Type: audio/wav\r\n\r\n" + file + (b"\r\n--b--\r\n" if closed else b""))


def _field(name: bytes, value: bytes) -> bytes:
    return b'--b\r\nContent-Disposition: form-data; name="' + name + b'"\r\n\r\n' + value + b"\r\n"


def _head(length: int | None) -> bytes:
    framing = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
    return (f"POST /v1/audio/transcriptions HTTP/1.1\r\nhost: gateway\r\nauthorization: Bearer sk-test\r\n"
            f"content-type: multipart/form-data; boundary=b\r\n{framing}\r\n\r\n").encode()


def test_a_client_that_leaves_mid_upload_leaves_no_spool(start_gateway, spools, tmp_path):
    gw = start_gateway(config(tmp_path))
    before = statuses(Counter())
    body = _form(wav.wav(bytes(8 * 1024 * 1024), RATE))
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(_head(len(body)) + body[:len(body) // 2])
        wait_until(lambda: spooled(spools) == 1)      # the file is being spooled
    wait_until(lambda: spooled(spools) == 0 and sum(statuses(before).values()) == 1)
    assert statuses(before) == {"499": 1}     # as nginx logs a client gone: no 5xx
    assert gw.client().audio.transcriptions.create(model="ears", file=("a.wav", wav.wav(bytes(3200), RATE))).text


def test_an_upload_past_the_cap_is_a_413_and_leaves_no_spool(start_gateway, spools, tmp_path):
    gw = start_gateway(config(tmp_path))
    declared = gw.http().post("/v1/audio/transcriptions", content=_form(bytes(MAX_BODY_BYTES)),
                              headers={"content-type": "multipart/form-data; boundary=b"})
    assert declared.status_code == 413 and declared.json()["error"]["code"] == "request_too_large"
    # Chunked, so its size is known only as it arrives: refused once past the cap, the spool let go of
    piece = b"\0" * (1024 * 1024)
    with socket.create_connection(("127.0.0.1", gw.port)) as s:
        s.sendall(_head(None) + b"%x\r\n%s\r\n" % (len(_form(b"", closed=False)), _form(b"", closed=False)))
        for _ in range(MAX_BODY_BYTES // len(piece) + 1):
            s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        s.settimeout(10)
        answer = b""
        while b"request_too_large" not in answer and (data := s.recv(65536)):
            answer += data
    assert answer.startswith(b"HTTP/1.1 413") and b'"type":"invalid_request_error"' in answer
    wait_until(lambda: spooled(spools) == 0)


@pytest.mark.parametrize("body,says", [
    (_form(b"RIFF" + bytes(300_000), closed=False), "ends before the closing boundary"),     # cut short
    (_form(b"RIFF" + bytes(300_000), closed=False) + b'\r\n--b\r\nContent-Disposition: form-data; name="file"; '
     b'filename="b.wav"\r\n\r\nRIFF\r\n--b--\r\n', "'file' was given more than once"),
    (_form(b"RIFF" + bytes(300_000), model=b""), "'model'"),
    (_form(b"RIFF" + bytes(300_000)).replace(b"--b--", b"--c--"), "ends before the closing boundary"),
    (_field(b"prompt", b"x" * 300_000) + _form(b"RIFF" + bytes(1000)), "'prompt' is larger than 262144 bytes"),
    (b"".join(_field(b"x%d" % i, b"x" * 250_000) for i in range(5)) + _form(b"RIFF" + bytes(1000)),
     "larger than 1048576 bytes in all"),
])
def test_a_bad_form_is_a_400_and_leaves_no_spool(start_gateway, spools, tmp_path, body, says):
    gw = start_gateway(config(tmp_path))
    r = gw.http().post("/v1/audio/transcriptions", content=body,
                       headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text
    assert r.json()["error"]["type"] == "invalid_request_error"
    wait_until(lambda: spooled(spools) == 0)


def test_a_temp_dir_that_cannot_keep_the_upload_is_a_clear_503(start_gateway, tmp_path, monkeypatch):
    gw = start_gateway(config(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    r = gw.http().post("/v1/audio/transcriptions", content=_form(wav.wav(bytes(3200), RATE)),
                       headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "upload_not_kept"
    assert r.json()["error"]["type"] == "server_error"


# -- the incremental parser, fuzzed ----------------------------------------------------------

PART = st.tuples(st.sampled_from(["file", "model", "prompt", "x"]), st.binary(max_size=60), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(PART, max_size=6), st.sampled_from([b"", b"preamble\r\n", b"\r\n", b"--", b"-"]),
       st.binary(max_size=20), st.lists(st.integers(0, 600), max_size=10), st.booleans())
def test_the_form_read_as_it_arrives_is_the_form_read_whole(parts, preamble, tail, cuts, closed):
    """In any pieces, FormStream finds the parts (or the 400) that `split` finds in the whole body."""
    body = preamble + b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n%s\r\n'
                               % (name.encode(), b'; filename="f.wav"' if is_file else b"", data)
                               for name, data, is_file in parts) + (b"--b--\r\n" if closed else b"") + tail
    try:
        whole: list[multipart.Part] | str = multipart.split(body, b"b")
    except ApiError as e:
        assert e.status == 400
        whole = e.message
    found: list[tuple[str, str | None, bytearray]] = []

    def part(name: str, filename: str | None) -> Callable[[bytes], None]:
        found.append((name, filename, bytearray()))
        return found[-1][2].extend

    stream = multipart.FormStream(b"b", part)
    try:
        at = 0
        for cut in sorted({min(c, len(body)) for c in cuts}) + [len(body)]:
            stream.feed(body[at:cut])
            at = cut
        stream.end()
    except ApiError as e:
        assert e.status == 400 and e.message == whole
    else:
        assert [(p.name, p.filename, p.data) for p in whole] == [(n, f, bytes(d)) for n, f, d in found]
