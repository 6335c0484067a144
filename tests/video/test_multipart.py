"""gateway.video.multipart on its own: the limits it keeps, bodies that round-trip,
and (hypothesis) random and mangled bodies, which give parts or its 400, never
anything else."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import ApiError
from gateway.video.multipart import MAX_PART_HEADER_BYTES, MAX_PARTS, Part, content_type, split

BOUNDARY = b"----b0undary7MA4YWxk"


def encode(parts: list[Part], boundary: bytes = BOUNDARY) -> bytes:
    """RFC 7578 as clients write it: a delimiter line, headers, a blank line, the data."""
    out = []
    for p in parts:
        disposition = f'form-data; name="{p.name}"' + ("" if p.filename is None else f'; filename="{p.filename}"')
        out.append(b"--" + boundary + b"\r\nContent-Disposition: " + disposition.encode() + b"\r\n"
                   + (b"Content-Type: application/octet-stream\r\n" if p.filename is not None else b"")
                   + b"\r\n" + p.data + b"\r\n")
    return b"".join(out) + b"--" + boundary + b"--\r\n"


def refused(body: bytes, boundary: bytes = BOUNDARY) -> str:
    with pytest.raises(ApiError) as caught:
        split(body, boundary)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    assert caught.value.message.startswith("Malformed multipart/form-data body: ")
    return caught.value.message


def test_content_type():
    assert content_type(b'Multipart/Form-Data; Boundary="a b"; charset=utf-8') == \
        ("multipart/form-data", {"boundary": "a b", "charset": "utf-8"})
    assert content_type(b"application/json") == ("application/json", {})
    assert content_type(b"") == ("", {})


def test_parts_round_trip_with_preamble_and_epilogue():
    parts = [Part("prompt", None, "a fox, 狐".encode()), Part("input_reference", "ref.png", b"\x89PNG\r\n--\r\n"),
             Part("empty", None, b"")]
    assert split(encode(parts), BOUNDARY) == parts
    assert split(b"preamble\r\n" + encode(parts) + b"epilogue", BOUNDARY) == parts
    assert split(b"--" + BOUNDARY + b"--", BOUNDARY) == []


def test_at_most_max_parts():
    many = [Part(f"f{i}", None, b"x") for i in range(MAX_PARTS)]
    assert len(split(encode(many), BOUNDARY)) == MAX_PARTS
    assert f"more than {MAX_PARTS} parts" in refused(encode([*many, Part("one-more", None, b"x")]))


def test_part_headers_at_most_8_kib():
    def body(size: int) -> bytes:
        head = b'Content-Disposition: form-data; name="p"\r\nX-Pad: '
        head += b"a" * (size - len(head))
        return b"--" + BOUNDARY + b"\r\n" + head + b"\r\n\r\nx\r\n--" + BOUNDARY + b"--\r\n"
    assert split(body(MAX_PART_HEADER_BYTES), BOUNDARY) == [Part("p", None, b"x")]
    assert "headers are too long" in refused(body(MAX_PART_HEADER_BYTES + 1))


@pytest.mark.parametrize("body, says", [
    (b"no delimiter here", "does not occur"),
    (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=\"p\"\r\n\r\nx", "ends before"),
    (b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nx\r\n--" + BOUNDARY + b"--", "no Content-Disposition"),
    (b"--" + BOUNDARY + b"\r\nContent-Disposition: attachment\r\n\r\nx\r\n--" + BOUNDARY + b"--", "not form-data"),
    (b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data\r\n\r\nx\r\n--" + BOUNDARY + b"--", "with a name"),
])
def test_each_fault_says_what_it_is(body, says):
    assert says in refused(body)


def test_parser_warnings_stay_out_of_the_log(caplog):
    refused(b"--" + BOUNDARY + b"junk\r\n\r\n")
    assert not caplog.records


# --- properties ------------------------------------------------------------------------------------------------

_names = st.text(st.characters(codec="utf-8", exclude_characters='"\\\r\n'), min_size=1, max_size=12)
_parts = st.builds(Part, _names, st.none() | _names, st.binary(max_size=200))
_boundaries = st.text(st.sampled_from("abcXYZ019'()+_,-./:=?"), min_size=1, max_size=70).map(str.encode)
_fast = settings(max_examples=300, deadline=None, database=None,   # no .hypothesis/ folder in the checkout
                 suppress_health_check=[HealthCheck.too_slow])


def _split_or_400(body: bytes, boundary: bytes) -> list[Part] | None:
    try:
        return split(body, boundary)
    except ApiError as e:
        assert e.status == 400 and e.message.startswith("Malformed multipart/form-data body: "), e.message
        return None


@_fast
@given(st.lists(_parts, max_size=6), _boundaries)
def test_any_parts_round_trip(parts, boundary):
    body = encode(parts, boundary)
    if any(b"\r\n--" + boundary in p.data + b"\r\n--" for p in parts):
        return      # a client picks a boundary its data does not contain (RFC 2046 5.1.1)
    assert split(body, boundary) == parts


@_fast
@given(st.binary(max_size=400), _boundaries)
def test_random_bytes_give_parts_or_the_400(body, boundary):
    _split_or_400(body, boundary)


@_fast
@given(st.lists(_parts, min_size=1, max_size=4), st.data())
def test_mangled_bodies_give_parts_or_the_400(parts, data):
    body = bytearray(encode(parts))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(body)))
        how = data.draw(st.sampled_from(["cut", "drop", "insert", "flip"]))
        if how == "cut":
            del body[at:]
        elif how == "drop":
            del body[at:at + data.draw(st.integers(1, 8))]
        elif how == "insert":
            body[at:at] = data.draw(st.sampled_from([b"\r\n", b"--", b"\r\n--" + BOUNDARY, b":", b";", b'"', b"\0"]))
        elif at < len(body):
            body[at] ^= data.draw(st.integers(1, 255))
    _split_or_400(bytes(body), BOUNDARY)


@_fast
@given(st.binary(max_size=200))
def test_any_content_type_header_parses(raw):
    media_type, params = content_type(raw)
    assert isinstance(media_type, str) and all(isinstance(v, str) for v in params.values())
