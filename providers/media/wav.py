"""WAV files, read and written by hand: a file's length from its header (what an
audio upload is priced by) and PCM wrapped in a header (the mock's speech).
Pure and stdlib only: no PyAV, nothing decoded."""
from __future__ import annotations

MOST_CHUNKS = 64        # chunks looked through for `fmt ` and `data`: a header of many tiny ones is no WAV
MIN_RATE, MAX_RATE = 1000, 768_000    # samples a second
MIN_BYTE_RATE = 500                   # 4 kbit/s: below, a header claims hours for a few bytes
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)   # a streamed WAV's `data` size, written before its length was known


def seconds(data: bytes) -> float | None:
    """How long the WAV in `data` plays, from its `fmt ` byte rate and its `data`
    chunk (as much of it as is there); None when `data` is not a WAV or its header
    is broken."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    for _ in range(MOST_CHUNKS):
        if pos + 8 > len(data):
            return None
        chunk, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "little")
        body = pos + 8
        if chunk == b"fmt ":
            if size < 16 or body + 16 > len(data):
                return None
            rate = int.from_bytes(data[body + 4:body + 8], "little")
            byte_rate = int.from_bytes(data[body + 8:body + 12], "little")
            if not MIN_RATE <= rate <= MAX_RATE or byte_rate < MIN_BYTE_RATE:
                return None         # no audio plays like this: its length is not to be believed
        elif chunk == b"data":
            if byte_rate <= 0:
                return None
            there = len(data) - body
            return (there if size in _UNKNOWN_SIZES or size > there else size) / byte_rate
        pos = body + size + (size & 1)       # chunks are padded to an even length
    return None


def wav(pcm: bytes, rate: int, channels: int = 1, sample_bytes: int = 2) -> bytes:
    """Little-endian PCM samples as a WAV file."""
    block = channels * sample_bytes
    header = (b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVE"
              + b"fmt " + (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + channels.to_bytes(2, "little")
              + rate.to_bytes(4, "little") + (rate * block).to_bytes(4, "little") + block.to_bytes(2, "little")
              + (sample_bytes * 8).to_bytes(2, "little")
              + b"data" + len(pcm).to_bytes(4, "little"))
    return header + pcm
