"""AWS's binary event-stream framing (`application/vnd.amazon.eventstream`),
decoded incrementally: how ConverseStream delivers its events.

A frame: total length (u32), headers length (u32), CRC32 of those 8 bytes;
headers; payload; CRC32 of everything before it. Integers are big-endian.
Each header: name length (u8), name, value type (u8), value.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from providers.errors import UpstreamFault

HeaderValue = bool | int | bytes | str

_PRELUDE = 12
_MIN_FRAME = _PRELUDE + 4
_MAX_FRAME = 24 * 1024 * 1024 + 128 * 1024   # AWS's own caps: 24 MiB payload, 128 KiB headers
_FIXED = {2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}   # value type -> size: byte, short, int, long, timestamp, uuid


@dataclass(slots=True)
class Message:
    headers: dict[str, HeaderValue]
    payload: bytes


class Decoder:
    """Feed it bytes as they arrive, in any cuts; get whole, checked messages.
    A frame that fails its checks is an UpstreamFault: nothing after it can be trusted."""

    def __init__(self, provider: str = "") -> None:
        self.provider = provider
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame still held."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Message]:
        self._buf += data
        out: list[Message] = []
        while len(self._buf) >= _PRELUDE:
            total, headers_len, prelude_crc = struct.unpack_from(">III", self._buf)
            if zlib.crc32(self._buf[:8]) != prelude_crc:
                raise self._corrupt("prelude checksum mismatch")
            if not _MIN_FRAME <= total <= _MAX_FRAME or headers_len > total - _MIN_FRAME:
                raise self._corrupt(f"impossible lengths (total {total}, headers {headers_len})")
            if len(self._buf) < total:
                break
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != message_crc:
                raise self._corrupt("message checksum mismatch")
            headers_end = _PRELUDE + headers_len
            out.append(Message(self._headers(frame[_PRELUDE:headers_end]), frame[headers_end:-4]))
        return out

    def _headers(self, raw: bytes) -> dict[str, HeaderValue]:
        headers: dict[str, HeaderValue] = {}
        i, n = 0, len(raw)
        try:
            while i < n:
                name_len = raw[i]
                name = raw[i + 1:i + 1 + name_len].decode()
                i += 1 + name_len
                kind = raw[i]
                i += 1
                value: HeaderValue
                if kind in (0, 1):                       # booleans carry no bytes
                    value = kind == 0
                elif kind in (6, 7):                     # bytes, string: u16 length
                    (size,) = struct.unpack_from(">H", raw, i)
                    value = raw[i + 2:i + 2 + size]
                    if len(value) != size:
                        raise IndexError
                    i += 2 + size
                    if kind == 7:
                        value = value.decode()
                elif kind in _FIXED:                     # numbers, timestamps, uuids: skipped as raw ints/bytes
                    size = _FIXED[kind]
                    chunk = raw[i:i + size]
                    if len(chunk) != size:
                        raise IndexError
                    value = int.from_bytes(chunk, "big", signed=True) if kind != 9 else chunk
                    i += size
                else:
                    raise self._corrupt(f"unknown header value type {kind}")
                headers[name] = value
        except (IndexError, struct.error, UnicodeDecodeError):
            raise self._corrupt("malformed headers") from None
        return headers

    def _corrupt(self, why: str) -> UpstreamFault:
        who = f"provider '{self.provider}'" if self.provider else "the provider"
        return UpstreamFault(f"{who} sent a corrupt event-stream frame: {why}", provider=self.provider)
