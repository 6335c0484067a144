"""Finding the events of a stream block that matter (the usage chunk, a closing
event) by substring search: the same events a full split finds, whatever the
separators, comments and event names around them; and the usage chunk the
gateway asked for taken out of a block without touching the rest of its bytes."""
from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from providers import sse
from providers.base import Reply
from providers.openai.chat import watch_usage

MARK = (b'"usage":{', b'"usage": {')

_event = st.builds(
    lambda name, comment, payload, sep, with_usage, spaced: (
        (b": " + comment + b"\n" if comment else b"")
        + (b"event: " + name + b"\n" if name else b"")
        + b"data: " + orjson.dumps({"x": payload, "usage": {"prompt_tokens": 1} if with_usage else None},
                                   option=orjson.OPT_INDENT_2 if spaced else 0).replace(b"\n", b" ")
        + sep),
    st.sampled_from([b"", b"message", b"delta"]),
    st.sampled_from([b"", b"keep-alive", b'"usage":{ in a comment']),
    st.text(max_size=30),
    st.sampled_from([b"\n\n", b"\r\n\r\n"]),
    st.booleans(), st.booleans())


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=8))
def test_the_spans_are_the_events_that_hold_a_mark(events):
    block = b"".join(events)
    expected = [data for _, data in sse.events(block) if any(m in data for m in MARK)]
    spans = list(sse.spans_with(block, MARK))
    assert [data for _, _, data in spans] == expected
    for start, end, data in spans:                  # each span is its event's own bytes
        assert [d for _, d in sse.events(block[start:end])] == [data]


@settings(max_examples=300, deadline=None)
@given(st.lists(_event, max_size=8))
def test_the_usage_noted_is_the_last_usage_object_of_the_block(events):
    """The watch searches from the end and reads one event when it can; whatever the
    block, it notes what reading every event would (the last usage object) and relays it whole."""
    from providers.openai.chat import usage_of
    block = b"".join(events)
    expected = None
    for _, data in sse.events(block):
        if any(m in data for m in MARK):
            expected = usage_of(data) or expected
    out, reply = relayed([block], hide=False)
    assert out == block and reply.usage == expected


CHUNK = (b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"hi"}}],'
         b'"usage":null}\n\n')
USAGE = (b'data: {"id":"c","object":"chat.completion.chunk","choices":[],'
         b'"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}\n\n')
DONE = b"data: [DONE]\n\n"


def relayed(blocks: list[bytes], hide: bool) -> tuple[bytes, Reply]:
    reply = Reply()
    watch = watch_usage(reply, hide=hide)
    return b"".join(watch(b) for b in blocks), reply


def test_the_usage_chunk_asked_for_by_the_gateway_is_cut_out_of_a_whole_stream_in_one_block():
    for blocks in ([CHUNK * 3 + USAGE + DONE], [CHUNK, CHUNK * 2 + USAGE, DONE], [CHUNK * 3, USAGE, DONE],
                   [(CHUNK * 3 + USAGE + DONE).replace(b"\n\n", b"\r\n\r\n")]):
        out, reply = relayed(blocks, hide=True)
        assert out.replace(b"\r\n", b"\n") == CHUNK * 3 + DONE
        assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (7, 3)
        out, reply = relayed(blocks, hide=False)                  # the client asked: untouched
        assert out == b"".join(blocks) and reply.usage.prompt_tokens == 7


def test_a_usage_chunk_that_also_carries_a_choice_stays():
    both = USAGE.replace(b'"choices":[]', b'"choices":[{"index":0,"delta":{"content":"!"}}]')
    out, reply = relayed([CHUNK + both + DONE], hide=True)
    assert out == CHUNK + both + DONE and reply.usage.completion_tokens == 3


_chunk = st.builds(
    lambda choices, with_usage, spaced, sep: (
        b"data: " + orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": "x"}}] if choices else [],
                                  "usage": {"prompt_tokens": 7, "completion_tokens": 3} if with_usage else None},
                                 option=orjson.OPT_INDENT_2 if spaced else 0).replace(b"\n", b" ") + sep),
    st.booleans(), st.booleans(), st.booleans(), st.sampled_from([b"\n\n", b"\r\n\r\n"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(_chunk, max_size=6), st.booleans())
def test_the_usage_chunks_cut_out_are_those_a_full_read_finds(chunks, done):
    """Whatever the block, the watch that hides usage cuts exactly the usage-only chunks (those
    with a usage object and no choices) and leaves every other byte as it was."""
    from providers.openai.chat import usage_of
    block = b"".join(chunks) + (DONE if done else b"")
    kept, usage = [], None
    for chunk in chunks:
        data = next(d for _, d in sse.events(chunk))
        found = usage_of(data) if any(m in data for m in MARK) else None
        usage = found or usage
        if found is None or b'"choices":[]' not in data.replace(b" ", b""):
            kept.append(chunk)
    expected = b"".join(kept) + (DONE if done else b"")
    out, reply = relayed([block], hide=True)
    assert out == (expected if expected.strip() else b"")
    assert reply.usage == usage


def _events_by_split(block: bytes) -> list[tuple[str | None, bytes]]:
    """The events of a block the plain way: split it all, then each event's lines."""
    out = []
    for raw in block.replace(b"\r\n", b"\n").split(b"\n\n"):
        name, data = None, []
        for line in raw.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line.startswith(b"event:"):
                name = line[6:].strip().decode()
        if data:
            out.append((name, b"\n".join(data)))
    return out


_line = st.sampled_from([b"data: {}", b"data:x", b"data: a\nb", b"data: ", b"data:", b"event: delta", b": ping",
                         b"data: [DONE]", b"id: 7", b"  ", b"data: \xc3\xa9"])


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.lists(_line, min_size=1, max_size=4), st.sampled_from([b"\n\n", b"\r\n\r\n"])),
                max_size=8))
def test_events_read_one_at_a_time_are_the_events_of_a_full_split(parts):
    block = b"".join(b"\n".join(lines).replace(b"\n", sep[: len(sep) // 2]) + sep for lines, sep in parts)
    assert list(sse.events(block)) == _events_by_split(block)
