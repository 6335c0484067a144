"""A `purpose: batch` file checked as batch input, line by line as its bytes
arrive: every non-empty line one request, as OpenAI's Batch API reads it:

    {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions", "body": {"model": ..., ...}}

`custom_id` a non-empty string used once in the file, `method` POST, `url` an
endpoint batches serve here and the same on every line, `body` an object with
a string `model`. Every problem is kept with its line number (the first
MAX_SHOWN of them; all are counted), so one answer names them all.

Bounded whatever is sent: a line longer than `max_line_bytes` is refused
without being held past that, one whose parse would cost the event loop past
`max_parse_ms` is refused unparsed, nesting past orjson's 1024 levels is a
parse error, and past `max_lines` requests checking stops. What is kept per
request is a 64-bit digest of its custom_id and its line number, in a flat
table (`_Seen`): 50,000 requests hold 1.6 MB however large their bodies, 3 MB
while the table doubles (a dict of digests held 5.5 MB).

Checked on the event loop, as the pieces arrive: ~6 µs a short request line
(50,000 in 0.27-0.33 s), 0.1-0.2 s for 20 MB of 1 KB lines, so a 64 KB piece costs
the loop 0.3-3 ms.
"""
from __future__ import annotations

import hashlib
from array import array
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import ApiError
from gateway.protocol import ESTIMATE_FROM, parse_ns

ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses", "/v1/videos")
MAX_SHOWN = 20          # errors named in the answer; the rest are counted
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class LineError:
    """One problem of a line, in the shape of OpenAI's batch errors."""
    line: int
    code: str
    message: str
    param: str | None = None

    def shown(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


class BatchInput:
    """Feed the file's bytes in pieces of any size (`feed`), then `end`; `errors`, `error_count`,
    `requests` and `endpoint` say what was found."""

    def __init__(self, max_lines: int, max_line_bytes: int, max_parse_ms: float) -> None:
        self.max_lines = max_lines
        self.max_line_bytes = max_line_bytes
        self._max_parse_ns = max_parse_ms * 1e6
        self.errors: list[LineError] = []      # the first MAX_SHOWN
        self.error_count = 0
        self.requests = 0                      # non-empty lines
        self.endpoint: str | None = None       # the first line's url, which every line must name
        self._endpoint_line = 0
        self._number = 0                       # lines ended so far
        self._held = bytearray()               # the start of a line whose end has not come yet
        self._too_long = False                 # the line being read is past max_line_bytes: dropped to its end
        self._ids = _Seen()                    # custom_ids' digests, and the line each was first used on
        self._over = False                     # past max_lines: the rest is not checked

    def feed(self, data: bytes) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._hold(data, start, len(data))
                return
            if self._held or self._too_long:
                self._hold(data, start, end)
                line = bytes(self._held)
                self._held.clear()
            else:
                line = data[start:end]
            self._line(line)
            start = end + 1

    def end(self) -> None:
        """The file has ended: its last line, when it has no newline after it."""
        if self._held or self._too_long:
            line = bytes(self._held)
            self._held.clear()
            self._line(line)

    def problem(self) -> ApiError | None:
        """Once ended: the 400 that names the problems found (the first MAX_SHOWN, and how many in
        all), in its message and as OpenAI-shaped batch errors; None for good batch input."""
        if self.requests == 0 and not self.error_count:
            self._error(max(1, self._number), "empty_file", "the file holds no requests (no non-empty line)")
        if not self.error_count:
            return None
        listed = "; ".join(e.message for e in self.errors)
        more = self.error_count - len(self.errors)
        return ApiError(400, f"The file is not valid batch input: {self.error_count} "
                             f"error{'s' if self.error_count > 1 else ''}: {listed}"
                             f"{f'; and {more} more' if more else ''}.",
                        param="file", code="invalid_batch_file",
                        extra={"errors": [e.shown() for e in self.errors], "error_count": self.error_count})

    def _hold(self, data: bytes, start: int, end: int) -> None:
        if self._too_long:
            return
        if len(self._held) + end - start > self.max_line_bytes:
            self._too_long = True
            self._held.clear()
            return
        self._held += data[start:end]

    def _line(self, line: bytes) -> None:
        self._number += 1
        n = self._number
        too_long, self._too_long = self._too_long or len(line) > self.max_line_bytes, False
        if self._over:
            return
        if too_long:
            if self._count_request(n):
                self._error(n, "line_too_long", f"line {n}: longer than {self.max_line_bytes} bytes")
            return
        if n == 1 and line.startswith(_BOM):
            line = line[len(_BOM):]
        if not line.strip():
            return          # blank lines (and a CRLF file's "\r") are allowed and are not requests
        if not self._count_request(n):
            return
        if len(line) >= ESTIMATE_FROM and parse_ns(line) > self._max_parse_ns:
            self._error(n, "invalid_json_line", f"line {n}: holds too many JSON values to check")
            return
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            self._error(n, "invalid_json_line", f"line {n}: not valid JSON ({e.msg} at column {e.colno})")
            return
        if not isinstance(item, dict):
            self._error(n, "invalid_json_line", f"line {n}: a request must be a JSON object")
            return
        self._check_custom_id(n, item.get("custom_id"))
        self._check_method(n, item.get("method"))
        self._check_url(n, item.get("url"))
        self._check_body(n, item.get("body"))

    def _count_request(self, n: int) -> bool:
        """One more request; False past max_lines (said on the first line past, then nothing is checked)."""
        self.requests += 1
        if self.requests > self.max_lines:
            self._over = True
            self._error(n, "too_many_lines", f"line {n}: the file has more than {self.max_lines} requests, "
                                             f"the most one batch takes here")
            return False
        return True

    def _check_custom_id(self, n: int, custom_id: Any) -> None:
        if custom_id is None:
            self._error(n, "missing_required_parameter", f"line {n}: missing 'custom_id'", "custom_id")
            return
        if not isinstance(custom_id, str) or not custom_id:
            self._error(n, "invalid_value", f"line {n}: 'custom_id' must be a non-empty string", "custom_id")
            return
        first = self._ids.first(custom_id, n)
        if first != n:
            self._error(n, "duplicate_custom_id", f"line {n}: custom_id {_shown(custom_id)} was used on line "
                                                  f"{first}", "custom_id")

    def _check_method(self, n: int, method: Any) -> None:
        if method is None:
            self._error(n, "missing_required_parameter", f"line {n}: missing 'method' (POST)", "method")
        elif method != "POST":
            self._error(n, "invalid_value", f"line {n}: 'method' must be 'POST', not {_shown(method)}", "method")

    def _check_url(self, n: int, url: Any) -> None:
        if url is None:
            self._error(n, "missing_required_parameter", f"line {n}: missing 'url'", "url")
        elif url not in ENDPOINTS:
            self._error(n, "invalid_url", f"line {n}: url {_shown(url)} is not an endpoint batches serve here; "
                                          f"use one of {', '.join(ENDPOINTS)}", "url")
        elif self.endpoint is None:
            self.endpoint, self._endpoint_line = url, n
        elif url != self.endpoint:
            self._error(n, "mismatched_url", f"line {n}: url {_shown(url)} differs from line "
                                             f"{self._endpoint_line}'s '{self.endpoint}'; a batch's requests all "
                                             f"go to one endpoint", "url")

    def _check_body(self, n: int, body: Any) -> None:
        if body is None:
            self._error(n, "missing_required_parameter", f"line {n}: missing 'body'", "body")
        elif not isinstance(body, dict):
            self._error(n, "invalid_value", f"line {n}: 'body' must be a JSON object", "body")
        elif not isinstance(body.get("model"), str) or not body["model"]:
            self._error(n, "missing_required_parameter", f"line {n}: 'body' needs a 'model' (a non-empty string)",
                        "body.model")

    def _error(self, n: int, code: str, message: str, param: str | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_SHOWN:
            self.errors.append(LineError(n, code, message, param))


class _Seen:
    """custom_ids seen, as an open-addressing hash table of two flat arrays: 64-bit digests (0 for
    a free slot) and the line each was first seen on; 12 bytes a slot, at most half of them used.
    Two ids share a digest with odds of ~1e-10 in a file of 50,000: a false duplicate that rare is
    the price of not keeping the ids."""

    def __init__(self) -> None:
        self._digests = array("Q", bytes(8 * 1024))
        self._lines = array("I", bytes(4 * 1024))
        self._used = 0

    def first(self, custom_id: str, line: int) -> int:
        """The line `custom_id` was first seen on: `line` when it is new (and now seen)."""
        digest = int.from_bytes(hashlib.blake2b(custom_id.encode("utf-8", "surrogatepass"), digest_size=8).digest())
        digest = digest or 1
        at = self._slot(digest)
        if self._digests[at]:
            return self._lines[at]
        self._digests[at], self._lines[at] = digest, line
        self._used += 1
        if 2 * self._used > len(self._digests):
            self._grow()
        return line

    def _slot(self, digest: int) -> int:
        """Where `digest` is, or the free slot where it would go."""
        mask = len(self._digests) - 1
        at = digest & mask
        while self._digests[at] and self._digests[at] != digest:
            at = (at + 1) & mask
        return at

    def _grow(self) -> None:
        digests, lines = self._digests, self._lines
        self._digests = array("Q", bytes(16 * len(digests)))
        self._lines = array("I", bytes(8 * len(digests)))
        for digest, line in zip(digests, lines, strict=True):
            if digest:
                at = self._slot(digest)
                self._digests[at], self._lines[at] = digest, line


def _shown(value: Any) -> str:
    """A client's value in a message: quoted, cut short."""
    text = value if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    return "'" + (text if len(text) <= 64 else text[:64] + "...") + "'"
