"""The bodies of `POST /v1/audio/speech` (JSON) and `/v1/audio/transcriptions`
and `/translations` (multipart/form-data, as the OpenAI SDK sends them: the
audio as a `file` part, and text fields), checked as OpenAI's Audio API checks
them. Every bad value is a 400 naming its parameter. No I/O of its own: an
upload's bytes go to, and are read back from, the spool it is given.

A transcription's form is read as it arrives (`TranscriptionForm`): its text
fields kept, its file spooled to disk, never held whole. Text fields the
gateway does not check (`include[]`, `chunking_strategy`, ones OpenAI adds
later) go to the backend as they came."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, cast

from gateway.errors import bad_request
from gateway.protocol import json_object
from gateway.video import multipart
from providers.media import wav
from providers.openai.audio import SPEECH_FORMATS
from providers.spool import Spool, SpooledUpload

MAX_INPUT_CHARS = 4096
MAX_INSTRUCTIONS_CHARS = 4096
MAX_VOICE_CHARS = 256
MIN_SPEED, MAX_SPEED = 0.25, 4.0
MAX_FILE_BYTES = 25 * 1024 * 1024           # as OpenAI takes them
MAX_BODY_BYTES = MAX_FILE_BYTES + 1024 * 1024   # the whole form: the file and its text fields (a larger one: 413)
_MAX_FIELD_BYTES = 256 * 1024
_MAX_TEXT_BYTES = 1024 * 1024       # all the text fields: what is held in memory of a form, at most

DEFAULT_SPEECH_FORMAT = "mp3"
TRANSCRIPTION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt", "diarized_json")
TRANSLATION_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")

# Audio files by their first bytes, then by their name: what OpenAI takes
# (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm) and a few more backends do.
_EXTENSIONS = {"flac": "audio/flac", "mp3": "audio/mpeg", "mpeg": "audio/mpeg", "mpga": "audio/mpeg",
               "mp4": "audio/mp4", "m4a": "audio/mp4", "ogg": "audio/ogg", "oga": "audio/ogg",
               "opus": "audio/ogg", "wav": "audio/wav", "webm": "audio/webm", "aac": "audio/aac"}
_NUMBER = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_LANGUAGE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")


# -- speech --------------------------------------------------------------------

def speech(body: bytes) -> dict[str, Any]:
    """A speech request: its fields, checked (the body goes upstream as it is, with the target's model)."""
    data = json_object(body)
    _model(data.get("model"))
    text = data.get("input")
    if not isinstance(text, str) or not text.strip():
        raise bad_request("Missing required parameter: 'input' (the text to speak, a non-empty string).",
                          param="input")
    if len(text) > MAX_INPUT_CHARS:
        raise bad_request(f"'input' is {len(text)} characters; the maximum is {MAX_INPUT_CHARS}.", param="input")
    voice = data.get("voice")
    if not (isinstance(voice, str) and 0 < len(voice.strip()) and len(voice) <= MAX_VOICE_CHARS) and not (
            isinstance(voice, dict) and isinstance(voice.get("id"), str) and 0 < len(voice["id"]) <= MAX_VOICE_CHARS):
        raise bad_request("Missing required parameter: 'voice' (a voice's name such as 'alloy', or {\"id\": ...}).",
                          param="voice")
    fmt = data.get("response_format")
    if fmt is not None and (not isinstance(fmt, str) or fmt not in SPEECH_FORMATS):
        raise bad_request(f"Invalid value for 'response_format': must be one of {', '.join(SPEECH_FORMATS)}.",
                          param="response_format")
    speed = data.get("speed")
    if speed is not None and (isinstance(speed, bool) or not isinstance(speed, (int, float))
                              or not MIN_SPEED <= speed <= MAX_SPEED):
        raise bad_request(f"'speed' must be a number from {MIN_SPEED} to {MAX_SPEED}.", param="speed")
    instructions = data.get("instructions")
    if instructions is not None and (not isinstance(instructions, str)
                                     or len(instructions) > MAX_INSTRUCTIONS_CHARS):
        raise bad_request(f"'instructions' must be a string of at most {MAX_INSTRUCTIONS_CHARS} characters.",
                          param="instructions")
    stream_format = data.get("stream_format")
    if stream_format is not None and stream_format not in ("audio", "sse"):
        raise bad_request("Invalid value for 'stream_format': must be 'audio' or 'sse'.", param="stream_format")
    return data


def as_events(data: dict[str, Any]) -> bool:
    """Whether speech is asked for as events (`speech.audio.delta`, base64 audio) rather than as audio."""
    return data.get("stream_format") == "sse"


def speech_format(data: dict[str, Any]) -> str:
    return data.get("response_format") or DEFAULT_SPEECH_FORMAT


# -- transcriptions and translations ------------------------------------------

class TranscriptionForm:
    """A transcription's (op "transcriptions") or translation's ("translations") form, read as it
    arrives: `feed` each piece of the body, then `finish`. Its text fields are kept (each at most
    _MAX_FIELD_BYTES, all at most _MAX_TEXT_BYTES); the `file` part's bytes go to the spool `spool()`
    makes, as they come; any other file is dropped, as OpenAI ignores unknown fields. A bad
    Content-Type is a 400 at once."""

    def __init__(self, content_type: bytes, op: str, spool: Callable[[], Spool]) -> None:
        self.op = op
        boundary = multipart.boundary_of(content_type, path=f"POST /v1/audio/{op}", holding="the audio")
        self._parts = multipart.FormStream(boundary, self._part)
        self._make_spool = spool
        self._fields: list[tuple[str, bytearray | None]] = []     # in order; None: where the file was
        self._file: tuple[str, Spool] | None = None                  # its filename and spool
        self._text_bytes = 0

    def feed(self, data: bytes) -> None:
        self._parts.feed(data)

    def _part(self, name: str, filename: str | None) -> Callable[[bytes], None]:
        if name == "file":
            if self._file is not None:
                raise bad_request("'file' was given more than once.", param="file")
            if filename is None:
                raise bad_request("'file' must be a file (a part with a filename), not a text field.", param="file")
            spool = self._make_spool()
            self._file = (filename, spool)
            self._fields.append((name, None))
            return spool.write
        if filename is not None:
            return _dropped         # no other part is a file: ignored, as OpenAI ignores unknown fields
        text = bytearray()
        self._fields.append((name, text))

        def kept(data: bytes) -> None:      # refused as soon as it is too large: never held past the caps
            text.extend(data)
            self._text_bytes += len(data)
            if len(text) > _MAX_FIELD_BYTES:
                raise bad_request(f"'{name}' is larger than {_MAX_FIELD_BYTES} bytes.", param=_param(name))
            if self._text_bytes > _MAX_TEXT_BYTES:
                raise bad_request(f"The form's text fields are larger than {_MAX_TEXT_BYTES} bytes in all.")
        return kept

    def finish(self) -> dict[str, Any]:
        """The whole form as one dict: `file` a SpooledUpload, its checked fields, `fields` every text
        part but `model` as sent (what the backend gets), and `file_seconds` the file's length where
        its header says it (a WAV), else None; or the 400 that says what is wrong."""
        self._parts.end()
        data: dict[str, Any] = {"fields": [], "timestamp_granularities": []}
        for name, value in self._fields:
            if value is None:
                assert self._file is not None
                data["file"] = _upload(*self._file)
                continue
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise bad_request(f"'{name}' is not valid UTF-8 text.", param=_param(name)) from None
            if name in ("timestamp_granularities[]", "timestamp_granularities"):
                data["timestamp_granularities"].append(text)
            elif name in ("model", "language", "prompt", "response_format", "temperature", "stream"):
                if name in data:
                    raise bad_request(f"'{name}' was given more than once.", param=name)
                data[name] = text
            if name != "model":
                data["fields"].append((name, text))
        if "file" not in data:
            raise bad_request("Missing required parameter: 'file' (the audio, as a file part).", param="file")
        _check_form(data, self.op)
        with data["file"].spool.mapped() as audio:     # a WAV's header, paged in alone
            data["file_seconds"] = wav.seconds(cast(bytes, audio))    # an mmap slices as bytes do
        return data


def _dropped(data: bytes) -> None:
    pass


def _param(name: str) -> str:
    return name.removesuffix("[]")


def _upload(filename: str, spool: Spool) -> SpooledUpload:
    size = spool.size
    if size == 0:
        raise bad_request("'file' is empty.", param="file")
    if size > MAX_FILE_BYTES:
        raise bad_request(f"'file' is {size} bytes; the maximum is {MAX_FILE_BYTES} (25 MB).", param="file")
    name = filename[:200] or "audio"
    media_type = audio_type_of(spool.read_at(0, 16)) or _EXTENSIONS.get(name.rpartition(".")[2].lower())
    if media_type is None:
        raise bad_request("'file' is not an audio file this API takes: flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav "
                          "or webm (told by its bytes, else by its name's extension).", param="file")
    return SpooledUpload(name, media_type, spool)


def audio_type_of(data: bytes) -> str | None:
    """An audio file's media type from its first bytes, or None."""
    if data[:4] in (b"RIFF", b"RF64") and data[8:12] == b"WAVE":
        return "audio/wav"
    if data.startswith(b"ID3"):
        return "audio/mpeg"
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0:
        return "audio/aac"          # ADTS
    if len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        return "audio/mpeg"         # an MPEG audio frame
    if data.startswith(b"OggS"):
        return "audio/ogg"
    if data.startswith(b"fLaC"):
        return "audio/flac"
    if data[4:8] == b"ftyp":
        return "audio/mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "audio/webm"
    return None


def _check_form(data: dict[str, Any], op: str) -> None:
    formats = TRANSLATION_FORMATS if op == "translations" else TRANSCRIPTION_FORMATS
    _model(data.get("model"))
    fmt = data.setdefault("response_format", "json")
    if fmt not in formats:
        raise bad_request(f"Invalid value for 'response_format': must be one of {', '.join(formats)}.",
                          param="response_format")
    temperature = data.get("temperature")
    if temperature is not None:
        value = float(temperature) if _NUMBER.fullmatch(temperature.strip()) else -1.0
        if not 0 <= value <= 1:
            raise bad_request("'temperature' must be a number from 0 to 1.", param="temperature")
        data["temperature"] = value
    language = data.get("language")
    if language is not None and not _LANGUAGE.fullmatch(language):
        raise bad_request("'language' must be a language code such as 'en' (ISO-639-1).", param="language")
    for granularity in data["timestamp_granularities"]:
        if granularity not in GRANULARITIES:
            raise bad_request("Invalid value for 'timestamp_granularities': each must be 'word' or 'segment'.",
                              param="timestamp_granularities")
    stream = data.pop("stream", None)
    data["stream"] = False
    if stream is not None:
        if stream.strip().lower() not in ("true", "false"):
            raise bad_request("'stream' must be true or false.", param="stream")
        data["stream"] = stream.strip().lower() == "true"
    if data["stream"] and (op != "transcriptions" or data["response_format"] not in ("json", "text")):
        raise bad_request("stream=true is for transcriptions in response_format 'json' or 'text' (its events "
                          "carry the text as it is heard).", param="stream")


def _model(model: Any) -> None:
    if not isinstance(model, str) or not model.strip():
        raise bad_request("Missing required parameter: 'model' (a non-empty string).", param="model")
