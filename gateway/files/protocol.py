"""The wire shape of OpenAI's Files API: the upload's form (multipart, as the
SDK's `client.files.create` sends it), the File object, and the list's query.
Every bad value is a 400 naming its parameter. No I/O of its own: the file's
bytes go where the caller says as they arrive (gateway/files/service.py)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.errors import bad_request
from gateway.store import FileRecord
from gateway.video import multipart

# What a client may upload a file for, and what the gateway's own files are for (a batch's output).
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
PURPOSES = (*UPLOAD_PURPOSES, "assistants_output", "batch_output", "fine-tune-results")
MIN_EXPIRY_S, MAX_EXPIRY_S = 3600, 2_592_000      # expires_after[seconds]: an hour to 30 days, as OpenAI takes it
MAX_LIST = 10_000                                  # `limit` of a list, at most and by default
MAX_FILENAME_CHARS = 512
FORM_BYTES = 1024 * 1024      # what the form may add to its file (framing and text fields) before a 413
_MAX_FIELD_BYTES = 4096
_MAX_TEXT_BYTES = 64 * 1024   # all text fields together: what is held of a form, at most

PartSink = Callable[[bytes], None]


@dataclass(frozen=True, slots=True)
class Upload:
    """What the form said besides the file's bytes."""
    purpose: str
    filename: str
    expires_after_s: int | None


class UploadForm:
    """POST /v1/files's form read as it arrives: `feed` each piece of the body, then `finish`. Text
    fields are kept (small); the `file` part's bytes go to the sink `open_file(purpose)` returns when
    the part begins, `purpose` being None when the form has not said it yet (the SDK sends it first).
    Other file parts are dropped and unknown fields ignored, as OpenAI ignores them."""

    def __init__(self, content_type: bytes, open_file: Callable[[str | None], PartSink]) -> None:
        boundary = multipart.boundary_of(content_type, path="POST /v1/files", holding="the file")
        self._parts = multipart.FormStream(boundary, self._part)
        self._open_file = open_file
        self._fields: dict[str, bytearray] = {}
        self._filename: str | None = None
        self._text_bytes = 0

    def feed(self, data: bytes) -> None:
        self._parts.feed(data)

    def _part(self, name: str, filename: str | None) -> PartSink:
        if name == "file":
            if self._filename is not None:
                raise bad_request("'file' was given more than once.", param="file")
            if not filename:
                raise bad_request("'file' must be a file (a part with a filename), not a text field.", param="file")
            if len(filename) > MAX_FILENAME_CHARS:
                raise bad_request(f"The file's name is longer than {MAX_FILENAME_CHARS} characters.", param="file")
            self._filename = filename
            # The fields before the file have ended: a bad purpose is refused before the file is read.
            purpose = self._text("purpose")
            return self._open_file(None if purpose is None else _purpose(purpose))
        if filename is not None:
            return _dropped
        if name in self._fields:
            raise bad_request(f"'{name[:64]}' was given more than once.", param=name[:64])
        text = self._fields[name] = bytearray()

        def kept(data: bytes) -> None:      # refused as soon as it is too large: never held past the caps
            text.extend(data)
            self._text_bytes += len(data)
            if len(text) > _MAX_FIELD_BYTES:
                raise bad_request(f"'{name[:64]}' is larger than {_MAX_FIELD_BYTES} bytes.", param=name[:64])
            if self._text_bytes > _MAX_TEXT_BYTES:
                raise bad_request(f"The form's text fields are larger than {_MAX_TEXT_BYTES} bytes in all.")
        return kept

    def finish(self) -> Upload:
        """The form has ended: what it said, or the 400 that says what is wrong."""
        self._parts.end()
        purpose = self._text("purpose")
        if purpose is None:
            raise bad_request(f"Missing required parameter: 'purpose' (one of {', '.join(UPLOAD_PURPOSES)}).",
                              param="purpose")
        if self._filename is None:
            raise bad_request("Missing required parameter: 'file' (the file, as a file part).", param="file")
        return Upload(_purpose(purpose), self._filename, self._expires_after())

    def _text(self, name: str) -> str | None:
        raw = self._fields.get(name)
        if raw is None:
            return None
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_request(f"'{name}' is not valid UTF-8 text.", param=name) from None

    def _expires_after(self) -> int | None:
        anchor, seconds = self._text("expires_after[anchor]"), self._text("expires_after[seconds]")
        if anchor is None and seconds is None:
            return None
        if anchor != "created_at":
            raise bad_request("'expires_after[anchor]' must be 'created_at' (with expires_after[seconds]).",
                              param="expires_after.anchor")
        text = (seconds or "").strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 10
                and MIN_EXPIRY_S <= int(text) <= MAX_EXPIRY_S):
            raise bad_request(f"'expires_after[seconds]' must be an integer from {MIN_EXPIRY_S} (an hour) to "
                              f"{MAX_EXPIRY_S} (30 days).", param="expires_after.seconds")
        return int(text)


def _purpose(text: str) -> str:
    if text not in UPLOAD_PURPOSES:
        raise bad_request(f"Invalid value for 'purpose': '{text[:64]}'; must be one of {', '.join(UPLOAD_PURPOSES)}.",
                          param="purpose")
    return text


def _dropped(data: bytes) -> None:
    pass


# -- the File object, and lists of them ----------------------------------------------

def file_object(record: FileRecord) -> dict[str, Any]:
    """OpenAI's File object. Its deprecated `status` is always `processed`: a file is stored
    only once it is whole and, for batch input, checked."""
    return {"id": record.id, "object": "file", "bytes": record.size, "created_at": record.created_at,
            "expires_at": record.expires_at, "filename": record.filename, "purpose": record.purpose,
            "status": "processed", "status_details": None}


def deleted_object(file_id: str) -> dict[str, Any]:
    return {"id": file_id, "object": "file", "deleted": True}


@dataclass(frozen=True, slots=True)
class ListQuery:
    purpose: str | None
    after: str | None
    limit: int
    order: str


def list_query(q: dict[str, str]) -> ListQuery:
    """GET /v1/files's query: `purpose`, `after`, `limit` (1-10000, default 10000), `order` (default desc)."""
    order = q.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("'order' must be 'asc' or 'desc'.", param="order")
    limit_text = q.get("limit", str(MAX_LIST))
    # ASCII digits: str.isdigit() also accepts '²' and other scripts' digits, which int() refuses
    if not (limit_text.isascii() and limit_text.isdigit() and len(limit_text) <= 5
            and 1 <= int(limit_text) <= MAX_LIST):
        raise bad_request(f"'limit' must be an integer from 1 to {MAX_LIST}.", param="limit")
    purpose = q.get("purpose") or None
    if purpose is not None and purpose not in PURPOSES:
        raise bad_request(f"Invalid value for 'purpose': '{purpose[:64]}'; must be one of {', '.join(PURPOSES)}.",
                          param="purpose")
    after = q.get("after") or None
    if after is not None and len(after) > 128:
        raise bad_request("'after' must be a file id.", param="after")
    return ListQuery(purpose, after, int(limit_text), order)
