"""OpenAI's Audio API through the gateway with the SDK unchanged:
`client.audio.speech` on the mock (real WAV, decoded here) and on an OpenAI
upstream on loopback (streamed: the client has the first bytes while the
upstream is still speaking), `client.audio.transcriptions` and `.translations`
in every response_format with a real WAV made here, the request the upstream
gets, the cost of each, failover, and every bad input a 400."""
from __future__ import annotations

import io
import json
import math
import time
import wave

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.audio.protocol import MAX_FILE_BYTES, TranscriptionForm, speech
from gateway.config import ConfigError
from gateway.config.checks import check
from gateway.errors import ApiError
from providers.azure import api as azure_api
from providers.media import wav as wav_header
from providers.spool import Spool
from tests.harness import base_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")    # the SDK marks whisper-1's API deprecated


def speech_model(name: str, *targets: dict) -> dict:
    return {"name": name, "kind": "speech", "route": {"strategy": "fallback", "targets": list(targets)}}


def stt_model(name: str, *targets: dict) -> dict:
    return {"name": name, "kind": "transcription", "route": {"strategy": "fallback", "targets": list(targets)}}


def make_wav(seconds: float, rate: int = 16_000) -> bytes:
    """A 440 Hz tone, PCM16 mono, made with Python's wave module."""
    frames = round(seconds * rate)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(int(9000 * math.sin(2 * math.pi * 440 * i / rate)).to_bytes(2, "little", signed=True)
                               for i in range(frames)))
    return out.getvalue()


def decoded(data: bytes) -> wave.Wave_read:
    return wave.open(io.BytesIO(data), "rb")


@pytest.fixture
def mock_gateway(start_gateway):
    return start_gateway(base_config([{"name": "mock", "type": "mock"}],
                                     [speech_model("mock-tts", {"provider": "mock"}),
                                      stt_model("mock-stt", {"provider": "mock"})]))


# -- the mock ------------------------------------------------------------------

def test_speech_on_the_mock_is_a_real_wav(mock_gateway):
    client = mock_gateway.client()
    text = "Hello from the gateway"
    with client.audio.speech.with_streaming_response.create(model="mock-tts", voice="alloy", input=text,
                                                            response_format="wav") as resp:
        assert resp.headers["content-type"] == "audio/wav" and resp.headers["x-gateway-provider"] == "mock"
        audio = resp.read()
    w = decoded(audio)
    assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 24_000)
    assert w.getnframes() == round(24_000 * 0.06) * len(text)       # as long as the input is
    frames = w.readframes(w.getnframes())
    assert any(frames) and wav_header.seconds(audio) == pytest.approx(0.06 * len(text))

    again = client.audio.speech.create(model="mock-tts", voice="alloy", input=text, response_format="wav")
    assert again.content == audio                                       # the same request, the same bytes
    other = client.audio.speech.create(model="mock-tts", voice="alloy", input=text + "!", response_format="wav")
    assert decoded(other.content).getnframes() > w.getnframes()
    faster = client.audio.speech.create(model="mock-tts", voice="alloy", input=text, response_format="wav", speed=2)
    assert decoded(faster.content).getnframes() == w.getnframes() // 2
    pcm = client.audio.speech.create(model="mock-tts", voice="alloy", input=text, response_format="pcm")
    assert pcm.response.headers["content-type"] == "audio/pcm" and pcm.content == frames


@pytest.mark.parametrize("fmt,media_type,container", [
    ("mp3", "audio/mpeg", "mp3"), ("opus", "audio/opus", "ogg"), ("aac", "audio/aac", "aac"),
    ("flac", "audio/flac", "flac")])
def test_speech_on_the_mock_in_each_encoded_format(mock_gateway, fmt, media_type, container):
    import av

    reply = mock_gateway.client().audio.speech.create(model="mock-tts", voice="nova", input="One two three",
                                                      response_format=fmt)
    assert reply.response.headers["content-type"] == media_type
    with av.open(io.BytesIO(reply.content)) as played:
        assert container in played.format.name
        assert played.streams.audio[0].codec_context.sample_rate in (24_000, 48_000)
        assert sum(f.samples for f in played.decode(audio=0)) > 0


def test_transcriptions_on_the_mock_in_every_format(mock_gateway):
    client = mock_gateway.client()
    audio = make_wav(1.5)
    file = ("hello.wav", audio, "audio/wav")
    plain = client.audio.transcriptions.create(model="mock-stt", file=file)
    assert f"of {len(audio)} bytes of audio, 1.50 seconds" in plain.text
    assert client.audio.transcriptions.create(model="mock-stt", file=file).text == plain.text     # deterministic
    text = client.audio.transcriptions.with_raw_response.create(model="mock-stt", file=file, response_format="text")
    assert text.headers["content-type"].startswith("text/plain") and text.parse().strip() == plain.text
    srt = client.audio.transcriptions.create(model="mock-stt", file=file, response_format="srt")
    assert "00:00:00,000 --> 00:00:01,500" in srt and plain.text in srt
    vtt = client.audio.transcriptions.create(model="mock-stt", file=file, response_format="vtt")
    assert vtt.startswith("WEBVTT") and "00:00:01.500" in vtt
    verbose = client.audio.transcriptions.create(model="mock-stt", file=file, response_format="verbose_json",
                                                 timestamp_granularities=["word", "segment"], language="en")
    assert verbose.duration == 1.5 and verbose.text == plain.text and verbose.language == "en"
    assert verbose.segments[0].end == 1.5 and verbose.words[-1].end == pytest.approx(1.5)
    diarized = client.audio.transcriptions.create(model="mock-stt", file=file, response_format="diarized_json")
    assert diarized.segments[0].speaker == "A"
    translated = client.audio.translations.create(model="mock-stt", file=file, response_format="verbose_json")
    assert translated.task == "translate" and translated.text.startswith("Mock translation")
    # Not a WAV: the mock guesses its length from its size
    mp3 = client.audio.transcriptions.create(model="mock-stt", file=("a.mp3", b"ID3\x04" + bytes(31_996), "audio/mpeg"))
    assert "32000 bytes of audio, 2.00 seconds" in mp3.text


def test_a_speech_cut_after_its_first_bytes_closes_the_connection(start_gateway):
    gw = start_gateway(base_config([{"name": "mock", "type": "mock", "fail_after_chunks": 1, "stream_chunks": 4}],
                                   [speech_model("mock-tts", {"provider": "mock"})]))
    with gw.http().stream("POST", "/v1/audio/speech", json={"model": "mock-tts", "voice": "alloy", "input": "x" * 50,
                                                             "response_format": "wav"}) as r:
        assert r.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):      # a cut-off body, never a clean end
            r.read()


# -- an OpenAI upstream ----------------------------------------------------------

def _upstream_config(fake, *more_targets: dict, model: str = "tts-1", stt: str = "whisper-1") -> dict:
    return base_config(
        [{"name": "up", "type": "openai", "base_url": fake.url, "api_key": "sk-upstream"},
         {"name": "mock", "type": "mock"}],
        [speech_model("voices", {"provider": "up", "model": model}, *more_targets),
         stt_model("ears", {"provider": "up", "model": stt}, *more_targets)],
        prices={"up/tts-1": {"per_mchar": 15.0}, "up/whisper-1": {"per_second": 0.0001},
                "up/gpt-4o-transcribe": {"input_per_mtok": 6.0, "output_per_mtok": 10.0}})


def test_speech_through_an_openai_upstream_arrives_as_it_is_made(start_gateway, fake_openai):
    fake = fake_openai()
    fake.speech_pieces, fake.speech_gap_s = 4, 0.3
    gw = start_gateway(_upstream_config(fake))
    text = "The quick brown fox jumps over the lazy dog."
    got, first_at = b"", None
    with gw.client().audio.speech.with_streaming_response.create(model="voices", voice="alloy", input=text,
                                                                 response_format="wav", speed=1.25) as resp:
        assert resp.headers["content-type"] == "audio/wav"
        assert float(resp.headers["x-gateway-cost-usd"]) == pytest.approx(len(text) * 15 / 1e6)
        for chunk in resp.iter_bytes():
            if first_at is None and chunk:
                first_at = time.monotonic()
            got += chunk
    assert len(fake.speech_sent) == 4
    assert first_at is not None and first_at < fake.speech_sent[-1] - 0.5     # before the upstream had finished
    assert decoded(got).getnframes() == 1200 * len(text)
    sent = fake.seen[-1]
    assert sent.path == "/v1/audio/speech" and sent.headers["Authorization"] == "Bearer sk-upstream"
    assert sent.json == {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "wav", "speed": 1.25}
    mp3 = gw.client().audio.speech.create(model="voices", voice="alloy", input="hi")
    assert mp3.response.headers["content-type"] == "audio/mpeg" and mp3.content.startswith(b"ID3")


def test_transcription_through_an_openai_upstream_in_every_format(start_gateway, fake_openai):
    fake = fake_openai()
    gw = start_gateway(_upstream_config(fake))
    client = gw.client()
    audio = make_wav(2.0)
    raw = client.audio.transcriptions.with_raw_response.create(
        model="ears", file=("meeting.wav", audio, "audio/wav"), language="en", prompt="A meeting.", temperature=0.2,
        response_format="verbose_json", timestamp_granularities=["word", "segment"])
    assert raw.parse().text == "The fake heard the audio."
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(2.0 * 0.0001)     # the WAV's own 2 seconds
    sent = fake.seen[-1]
    assert sent.path == "/v1/audio/transcriptions" and sent.headers["Authorization"] == "Bearer sk-upstream"
    parts = fake.audio_forms[-1]
    fields = dict(parts)
    assert fields["model"] == "whisper-1" and fields["file"] == ("meeting.wav", "audio/wav", audio)
    assert (fields["language"], fields["prompt"], float(fields["temperature"])) == ("en", "A meeting.", 0.2)
    assert [v for k, v in parts if k == "timestamp_granularities[]"] == ["word", "segment"]

    for fmt in ("text", "srt", "vtt"):
        answer = client.audio.transcriptions.with_raw_response.create(model="ears", file=("m.wav", audio),
                                                                      response_format=fmt)
        assert answer.headers["content-type"].startswith("text/plain") and "The fake heard" in answer.parse()
    # Not a WAV: the upstream's own figures price it (verbose_json's duration, json's usage.seconds)
    mp3 = ("talk.mp3", b"ID3\x04\x00" + bytes(5000), "audio/mpeg")
    verbose = client.audio.translations.with_raw_response.create(model="ears", file=mp3, response_format="verbose_json")
    assert fake.seen[-1].path == "/v1/audio/translations" and verbose.parse().task == "translate"
    assert float(verbose.headers["x-gateway-cost-usd"]) == pytest.approx(7.5 * 0.0001)
    plain = client.audio.transcriptions.with_raw_response.create(model="ears", file=mp3)
    assert float(plain.headers["x-gateway-cost-usd"]) == pytest.approx(8 * 0.0001)
    assert dict(fake.audio_forms[-1])["file"] == ("talk.mp3", "audio/mpeg", mp3[1])


def test_token_priced_transcription(start_gateway, fake_openai):
    fake = fake_openai()
    gw = start_gateway(_upstream_config(fake, stt="gpt-4o-transcribe"))
    raw = gw.client().audio.transcriptions.with_raw_response.create(model="ears", file=("a.wav", make_wav(0.5)))
    assert raw.parse().usage.input_tokens == 120
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx((120 * 6 + 30 * 10) / 1e6)


def test_streamed_transcription_events_on_the_mock_and_through_an_upstream(mock_gateway, start_gateway,
                                                                        fake_openai):
    """`stream=True`: the SDK's events, `transcript.text.delta` as the words come, then `done`."""
    for gw, model in ((mock_gateway, "mock-stt"), (None, "ears")):
        if gw is None:
            fake = fake_openai()
            cfg = _upstream_config(fake, stt="gpt-4o-transcribe")
            cfg["auth"]["admin_key"] = "admin-secret"
            gw = start_gateway(cfg)
        events = list(gw.client().audio.transcriptions.create(model=model, file=("a.wav", make_wav(0.5)),
                                                              stream=True))
        deltas = [e.delta for e in events if e.type == "transcript.text.delta"]
        assert len(deltas) > 1 and events[-1].type == "transcript.text.done"
        assert "".join(deltas) == events[-1].text
    assert ("stream", "true") in fake.audio_forms[-1]
    assert ("model", "gpt-4o-transcribe") in fake.audio_forms[-1]
    # Priced by the tokens of its last event: the request log has the cost
    deadline = time.time() + 5
    while True:
        logged = gw.http(key="admin-secret").get("/admin/requests", params={"limit": 1, "model": "ears"})
        records = logged.json().get("data", []) if logged.status_code == 200 else []
        if records and records[0].get("cost_usd"):
            break
        assert time.time() < deadline, logged.text
        time.sleep(0.1)
    assert float(records[0]["cost_usd"]) == pytest.approx((120 * 6 + 30 * 10) / 1e6)


@pytest.mark.parametrize("failure", ["429", "json 200", "html 200"])
def test_a_refusing_or_broken_upstream_fails_over(start_gateway, fake_openai, failure):
    fake = fake_openai()
    if failure == "429":
        fake.fail(429, '{"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit"}}')
    elif failure == "json 200":
        fake.speech_answer = (b'{"error": {"message": "oops"}}', "application/json")
        fake.transcript_answer = (b'{"status": "ok"}', "application/json")
    else:
        fake.speech_answer = fake.transcript_answer = (b"<html>busy</html>", "text/html")
    gw = start_gateway(_upstream_config(fake, {"provider": "mock"}))
    client = gw.client()
    speech_reply = client.audio.speech.with_raw_response.create(model="voices", voice="alloy", input="Hello",
                                                                response_format="wav")
    assert speech_reply.headers["x-gateway-provider"] == "mock" and speech_reply.headers["x-gateway-attempts"] == "2"
    assert decoded(speech_reply.content).getnframes() > 0
    heard = client.audio.transcriptions.with_raw_response.create(
        model="ears", file=("a.wav", make_wav(0.25)), response_format="json" if failure != "html 200" else "text")
    assert heard.headers["x-gateway-provider"] == "mock" and heard.headers["x-gateway-attempts"] == "2"
    assert "Mock transcription" in str(heard.parse())


def test_a_token_limit_counts_the_form_not_the_audio_bytes(start_gateway):
    cfg = base_config([{"name": "mock", "type": "mock"}], [stt_model("mock-stt", {"provider": "mock"})])
    cfg["auth"]["keys"][0]["limits"] = {"tpm": 1000}
    gw = start_gateway(cfg)
    big = make_wav(30.0)          # ~960 KB: a quarter of a million tokens, were its bytes counted as text
    result = gw.client().audio.transcriptions.create(model="mock-stt", file=("long.wav", big))
    assert "30.00 seconds" in result.text


# -- bad input -----------------------------------------------------------------

SPEECH_OK = {"model": "mock-tts", "voice": "alloy", "input": "Hello"}


@pytest.mark.parametrize("change,param", [
    ({"input": ""}, "input"),
    ({"input": "   "}, "input"),
    ({"input": None}, "input"),
    ({"input": "x" * 4097}, "input"),
    ({"voice": None}, "voice"),
    ({"voice": ""}, "voice"),
    ({"model": None}, "model"),
    ({"speed": 0.2}, "speed"),
    ({"speed": 4.5}, "speed"),
    ({"speed": "fast"}, "speed"),
    ({"response_format": "ogg"}, "response_format"),
    ({"stream_format": "events"}, "stream_format"),
    ({"instructions": 7}, "instructions"),
])
def test_bad_speech_is_a_400_naming_the_parameter(mock_gateway, change, param):
    body = {k: v for k, v in {**SPEECH_OK, **change}.items() if v is not None}
    r = mock_gateway.http().post("/v1/audio/speech", json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error" and error["message"]


def test_bad_transcriptions_are_a_400_naming_the_parameter(mock_gateway):
    http = mock_gateway.http()
    audio = ("a.wav", make_wav(0.1), "audio/wav")
    ok = {"model": (None, "mock-stt")}
    cases = [
        (ok, "file", "/v1/audio/transcriptions"),                                         # no file
        ({**ok, "file": ("a.txt", b"not audio at all", "text/plain")}, "file", "/v1/audio/transcriptions"),
        ({**ok, "file": ("a.wav", b"", "audio/wav")}, "file", "/v1/audio/transcriptions"),
        ({**ok, "file": ("big.mp3", b"ID3" + bytes(MAX_FILE_BYTES), "audio/mpeg")}, "file",
         "/v1/audio/transcriptions"),
        ({"file": audio}, "model", "/v1/audio/transcriptions"),
        ({**ok, "file": audio, "response_format": (None, "docx")}, "response_format", "/v1/audio/transcriptions"),
        ({**ok, "file": audio, "response_format": (None, "diarized_json")}, "response_format",
         "/v1/audio/translations"),
        ({**ok, "file": audio, "temperature": (None, "2")}, "temperature", "/v1/audio/transcriptions"),
        ({**ok, "file": audio, "timestamp_granularities[]": (None, "minute")}, "timestamp_granularities",
         "/v1/audio/transcriptions"),
        ({**ok, "file": audio, "stream": (None, "maybe")}, "stream", "/v1/audio/transcriptions"),
        ({**ok, "file": audio, "stream": (None, "true")}, "stream", "/v1/audio/translations"),
        ({**ok, "file": audio, "stream": (None, "true"), "response_format": (None, "srt")}, "stream",
         "/v1/audio/transcriptions"),
    ]
    for files, param, path in cases:
        r = http.post(path, files=files)
        assert r.status_code == 400 and r.json()["error"]["param"] == param, (param, r.text)
    assert http.post("/v1/audio/transcriptions", json={"model": "mock-stt"}).status_code == 400
    too_big = http.post("/v1/audio/transcriptions", files={**ok, "file": ("big.wav", bytes(27 * 1024 * 1024))})
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"


def test_a_model_of_one_kind_is_not_served_at_the_others_path(mock_gateway):
    http = mock_gateway.http()
    r = http.post("/v1/audio/transcriptions", files={"model": (None, "mock-tts"), "file": ("a.wav", make_wav(0.1))})
    assert r.status_code == 404 and "/v1/audio/speech" in r.json()["error"]["message"]
    r = http.post("/v1/audio/speech", json={**SPEECH_OK, "model": "mock-stt"})
    assert r.status_code == 404 and "/v1/audio/transcriptions" in r.json()["error"]["message"]


def test_the_config_check_knows_who_serves_audio():
    def cfg(provider_type: str, kind: str) -> dict:
        provider = {"name": "p", "type": provider_type, "api_key": "k"}
        return base_config([provider], [{"name": "m", "kind": kind, "route": {"targets": [{"provider": "p"}]}}])

    for provider_type in ("openai", "groq", "vllm"):
        check(cfg(provider_type, "transcription"))
    check(cfg("groq", "speech"))
    for provider_type, kind in (("together", "transcription"), ("vllm", "speech"), ("anthropic", "speech")):
        with pytest.raises(ConfigError, match=f"cannot serve {kind} models"):
            check(cfg(provider_type, kind))


def test_azure_audio_urls_are_per_deployment():
    options = azure_api.Options(name="az", type="azure_openai", base_url="https://r.openai.azure.com", api_key="k")
    assert azure_api.url(options, "transcriptions", "whisper") == \
        "https://r.openai.azure.com/openai/deployments/whisper/audio/transcriptions?api-version=2024-10-21"
    assert azure_api.url(options, "speech", "tts").endswith("/deployments/tts/audio/speech?api-version=2024-10-21")


# -- the parsers, fuzzed -----------------------------------------------------------

JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                       lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                   max_size=4), max_leaves=12)
SPEECH_FIELDS = st.fixed_dictionaries({}, optional={
    "model": JSONISH | st.just("tts-1"), "input": JSONISH | st.text(max_size=40), "voice": JSONISH | st.just("alloy"),
    "response_format": JSONISH | st.sampled_from(["mp3", "wav", "pcm", "ogg"]),
    "speed": JSONISH | st.floats(0, 5), "instructions": JSONISH,
    "stream_format": JSONISH | st.sampled_from(["audio", "sse"])})


@settings(max_examples=200, deadline=None)
@given(SPEECH_FIELDS | JSONISH)
def test_the_speech_parser_answers_any_json_with_a_request_or_a_4xx(value):
    try:
        speech(json.dumps(value).encode())
    except ApiError as e:
        assert 400 <= e.status < 500


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_the_speech_parser_answers_any_bytes_with_a_request_or_a_4xx(body):
    try:
        speech(body)
    except ApiError as e:
        assert 400 <= e.status < 500


NAMES = ["file", "model", "response_format", "temperature", "language", "prompt", "stream",
         "timestamp_granularities[]", "include[]", "x"]


def read_form(content_type: bytes, body: bytes, op: str, cuts: list[int], spools: list[Spool]) -> dict:
    """The form as the gateway reads it: fed in the pieces `cuts` makes of `body` (as a client's
    packets arrive), its file spooled (each spool made is added to `spools`, for the caller to close)."""
    def spool() -> Spool:
        spools.append(Spool())
        return spools[-1]

    form = TranscriptionForm(content_type, op, spool)
    at = 0
    for cut in sorted({min(c, len(body)) for c in cuts}) + [len(body)]:
        form.feed(body[at:cut])
        at = cut
    return form.finish()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(NAMES), st.one_of(
    st.binary(max_size=40), st.sampled_from([b"RIFF\x24\x00\x00\x00WAVEfmt ", b"ID3\x04", b"json", b"0.5", b"mock",
                                             b"word", b"true"])), st.booleans()), max_size=7),
       st.binary(max_size=30), st.sampled_from([b"multipart/form-data; boundary=b", b"multipart/form-data",
                                                b"application/json", b"", b"multipart/form-data; boundary=\"b\""]),
       st.sampled_from(["transcriptions", "translations"]), st.lists(st.integers(0, 400), max_size=8),
       st.sampled_from([b"", b"a preamble\r\n", b"\r\n"]))
def test_the_transcription_parser_answers_any_form_with_a_request_or_a_4xx(parts, tail, content_type, op, cuts,
                                                                          preamble):
    """The form read as it arrives, in any pieces: a request, or a 4xx, never another exception."""
    body = preamble + b"".join(b'--b\r\nContent-Disposition: form-data; name="%s"%s\r\n\r\n%s\r\n'
                               % (name.encode(), b'; filename="f.wav"' if is_file else b"", data)
                               for name, data, is_file in parts) + b"--b--\r\n" + tail
    spools: list[Spool] = []
    try:
        data = read_form(content_type, body, op, cuts, spools)
    except ApiError as e:
        assert 400 <= e.status < 500
    else:
        file_part = next(d for n, d, f in parts if n == "file" and f)
        assert data["file"].size == len(file_part) and data["file"].spool.read_at(0, 100) == file_part
        assert data["model"].strip()
    finally:
        for spool in spools:
            spool.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_a_wav_header_is_read_or_refused_never_an_error(data):
    seconds = wav_header.seconds(b"RIFF\x00\x00\x00\x00WAVE" + data)
    assert seconds is None or 0 <= seconds < 10**7


def test_speech_as_events_on_the_mock(mock_gateway):
    """stream_format "sse": `speech.audio.delta` events whose base64 pieces make the whole audio."""
    import base64
    r = mock_gateway.http().post("/v1/audio/speech", json={
        "model": "mock-tts", "voice": "alloy", "input": "Hello there.", "response_format": "wav",
        "stream_format": "sse"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in r.text.split("\n") if line.startswith("data: ")]
    assert [e["type"] for e in events][-1] == "speech.audio.done" and len(events) > 2
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    with decoded(audio) as w:
        assert w.getnframes() > 0 and w.getnchannels() == 1
