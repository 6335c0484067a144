"""The mock provider's audio, on CPU.

Speech: a tone whose pitch comes from a hash of (voice, input), sounding for
each character and silent for each space, 0.06 s a character at speed 1: real
WAV (PCM16 mono, 24 kHz), raw PCM, or MP3, Opus, AAC and FLAC encoded with
PyAV. The same request gives the same bytes.

Transcriptions and translations: any audio file becomes a deterministic text
naming its size, length and hash, in every response_format. Its length is the
WAV header's, else guessed from its size at 128 kbps. Pure: no gateway state."""
from __future__ import annotations

import base64
import hashlib
import io
import mmap
from typing import Any, cast

import orjson

from providers.media import wav
from providers.spool import SpooledUpload

RATE = 24_000                   # Hz, as OpenAI's pcm
SECONDS_PER_CHAR = 0.06
GUESSED_BYTES_PER_SECOND = 16_000     # 128 kbps, for a file that is not a WAV
_ENCODERS = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus"), "aac": ("adts", "aac"),
             "flac": ("flac", "flac")}


# -- speech --------------------------------------------------------------------

def pitch(text: str, voice: str) -> int:
    """The tone's frequency, 220 to 659 Hz."""
    digest = hashlib.sha256(f"{voice}\n{text}".encode()).digest()
    return 220 + int.from_bytes(digest[:2], "big") % 440


def _samples(text: str, voice: str, speed: float) -> Any:
    import numpy as np

    per_char = max(1, round(RATE * SECONDS_PER_CHAR / speed))
    t = np.arange(per_char * len(text), dtype=np.float64)
    tone = np.sin(2 * np.pi * pitch(text, voice) * t / RATE) * (0.3 * 32767)
    voiced = np.frombuffer(bytes(0 if c.isspace() else 1 for c in text), dtype=np.uint8).repeat(per_char)
    return (tone * voiced).astype("<i2")


def _encoded(samples: Any, fmt: str) -> bytes:
    import av

    container_format, codec = _ENCODERS[fmt]
    out = io.BytesIO()
    with av.open(out, mode="w", format=container_format) as container:
        stream: Any = container.add_stream(codec, rate=RATE)     # an AudioStream
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def speech(data: dict[str, Any]) -> bytes:
    """The audio for a speech request, in its response_format (default mp3)."""
    voice = data["voice"] if isinstance(data["voice"], str) else data["voice"]["id"]
    samples = _samples(data["input"], voice, float(data.get("speed") or 1.0))
    fmt = data.get("response_format") or "mp3"
    if fmt == "pcm":
        return samples.tobytes()
    if fmt == "wav":
        return wav.wav(samples.tobytes(), RATE)
    return _encoded(samples, fmt)


# -- transcriptions and translations -------------------------------------------

def seconds_of(audio: bytes | mmap.mmap) -> float:
    found = wav.seconds(cast(bytes, audio))      # an mmap slices as bytes do: all that seconds() reads
    return found if found is not None else len(audio) / GUESSED_BYTES_PER_SECOND


def transcript(data: dict[str, Any], translate: bool) -> tuple[bytes, float]:
    """(the answer in the asked response_format, the audio's length in seconds). Reads the upload's
    spool: call it from a thread."""
    upload: SpooledUpload = data["file"]
    with upload.spool.mapped() as audio:
        seconds = round(seconds_of(audio), 3)
        digest = hashlib.sha256(audio).hexdigest()[:12]
    text = (f"Mock {'translation' if translate else 'transcription'} of {upload.size} bytes of audio, "
            f"{seconds:.2f} seconds, sha256 {digest}.")
    fmt = data.get("response_format") or "json"
    usage = {"type": "duration", "seconds": seconds}
    if fmt == "text":
        return f"{text}\n".encode(), seconds
    if fmt == "srt":
        return f"1\n{_clock(0, ',')} --> {_clock(seconds, ',')}\n{text}\n\n".encode(), seconds
    if fmt == "vtt":
        return f"WEBVTT\n\n{_clock(0, '.')} --> {_clock(seconds, '.')}\n{text}\n\n".encode(), seconds
    if fmt == "diarized_json":
        return orjson.dumps({"task": "transcribe", "duration": seconds, "text": text, "usage": usage, "segments": [
            {"type": "transcript.text.segment", "id": "seg_0", "start": 0.0, "end": seconds, "text": text,
             "speaker": "A"}]}), seconds
    if fmt == "verbose_json":
        granularities = data.get("timestamp_granularities") or ["segment"]
        doc: dict[str, Any] = {"task": "translate" if translate else "transcribe",
                               "language": "english" if translate else data.get("language") or "english",
                               "duration": seconds, "text": text, "usage": usage}
        if "segment" in granularities:
            doc["segments"] = [{"id": 0, "seek": 0, "start": 0.0, "end": seconds, "text": text,
                                "tokens": list(range(50364, 50364 + len(text.split()))), "temperature": 0.0,
                                "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.0}]
        if "word" in granularities:
            words = text.split()
            step = seconds / len(words)
            doc["words"] = [{"word": w, "start": round(i * step, 3), "end": round((i + 1) * step, 3)}
                            for i, w in enumerate(words)]
        return orjson.dumps(doc), seconds
    return orjson.dumps({"text": text, "usage": usage}), seconds


def _clock(seconds: float, comma: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{comma}{ms % 1000:03d}"


def transcript_events(body: bytes, data: dict[str, Any]) -> list[bytes]:
    """A transcript as OpenAI streams one: a `transcript.text.delta` event a word, then
    `transcript.text.done` with the whole text and its usage (in tokens: a word each)."""
    text = body.decode() if data.get("response_format") == "text" else orjson.loads(body)["text"]
    words = text.split(" ")
    events = [{"type": "transcript.text.delta", "delta": w if i == 0 else " " + w} for i, w in enumerate(words)]
    events.append({"type": "transcript.text.done", "text": text,
                   "usage": {"type": "tokens", "input_tokens": 1, "output_tokens": len(words),
                             "total_tokens": 1 + len(words)}})
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events]


def speech_events(made: bytes, pieces: int, characters: int) -> list[bytes]:
    """Speech as OpenAI streams it with stream_format "sse": `speech.audio.delta` events of base64
    audio, then `speech.audio.done` with the usage."""
    step = -(-len(made) // max(1, pieces))
    events: list[dict[str, Any]] = [{"type": "speech.audio.delta", "audio": base64.b64encode(made[i:i + step]).decode()}
                                    for i in range(0, len(made), step)]
    events.append({"type": "speech.audio.done", "usage": {"input_tokens": characters, "output_tokens": 0,
                                                          "total_tokens": characters}})
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events]
