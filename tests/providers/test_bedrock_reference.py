"""The project's own SigV4 signer and event-stream decoder, checked against the
reference implementation: botocore signs the same requests (fixed credentials,
fixed clock) and decodes the same bytes."""
from __future__ import annotations

import hashlib
import struct
from binascii import crc32
from datetime import UTC, datetime
from urllib.parse import quote, urlencode, urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.eventstream import EventStreamBuffer, ParserError
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.bedrock import api, eventstream, sigv4
from providers.errors import UpstreamFault
from tests.upstreams.bedrock_fake import event_frame, exception_frame

NOW = datetime(2024, 3, 7, 9, 41, 5, tzinfo=UTC)
REGION = "us-west-2"
KEY_ID, SECRET = "AKIDEXAMPLEREFERENCE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzEXAMPLE/KEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLXdlc3QtMiJHMEUCIQD+session/token=="
MODELS = ["anthropic.claude-3-haiku-20240307-v1:0", "amazon.nova-lite-v1:0", "meta.llama3-8b-instruct-v1:0",
          "arn:aws:bedrock:us-west-2:123456789012:inference-profile/us.anthropic.claude-3-5-haiku-20241022-v1:0",
          "mistral.mistral-large-2407-v1:0"]
BODY = b'{"messages":[{"role":"user","content":[{"text":"hi \xc3\xa9"}]}],"inferenceConfig":{"maxTokens":64}}'


def botocore_signed(method: str, url: str, headers: dict[str, str], body: bytes, token: str,
                    monkeypatch: pytest.MonkeyPatch, params: dict | None = None) -> tuple[AWSRequest, str, str]:
    """(request as botocore signed it, its canonical request, its string to sign) at NOW."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: NOW.replace(tzinfo=None))
    signer = botocore.auth.SigV4Auth(BotoCredentials(KEY_ID, SECRET, token or None), api.SERVICE, REGION)
    request = AWSRequest(method=method, url=url, headers=headers, data=body, params=params or {})
    signer.add_auth(request)
    authorization = request.headers["Authorization"]
    del request.headers["Authorization"]                    # what was signed had none
    creq = signer.canonical_request(request)
    sts = signer.string_to_sign(request, creq)
    request.headers["Authorization"] = authorization
    return request, creq, sts


# -- SigV4 ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", ["", TOKEN], ids=["keys", "session-token"])
@pytest.mark.parametrize("stream", [False, True], ids=["converse", "converse-stream"])
@pytest.mark.parametrize("model", MODELS)
def test_a_bedrock_call_is_signed_as_botocore_signs_it(model, stream, token, monkeypatch):
    target = api.Target(REGION, f"https://bedrock-runtime.{REGION}.amazonaws.com",
                        f"bedrock-runtime.{REGION}.amazonaws.com", sigv4.Credentials(KEY_ID, SECRET, token))
    url = api.url(target, model, stream)
    path = api.wire_path(url)
    assert ":" not in path and path.endswith("/converse-stream" if stream else "/converse")
    ours = api.headers(target, path, BODY, {}, now=NOW)
    # botocore is given what goes on the wire, less what it adds itself (date, token, authorization);
    # content-type is sent unsigned by the gateway, so it is left out of the comparison here.
    request, creq, sts = botocore_signed("POST", url, {"host": ours["host"]}, BODY, token, monkeypatch)
    assert request.headers["X-Amz-Date"] == ours["x-amz-date"] == "20240307T094105Z"
    assert request.headers.get("X-Amz-Security-Token", "") == ours.get("x-amz-security-token", "")
    assert request.headers["Authorization"] == ours["authorization"]
    signed = {k: v for k, v in ours.items() if k not in ("authorization", "content-type")}
    mine = sigv4.signature(target.credentials, method="POST", path=path, query="", headers=signed,
                           payload_sha256=hashlib.sha256(BODY).hexdigest(), region=REGION,
                           service=api.SERVICE)
    assert mine.canonical_request == creq and mine.string_to_sign == sts
    assert "%253A" in creq.splitlines()[1]      # `:` is %3A on the wire and signed encoded once more


QUERIES = [
    {},
    {"b": "2", "a": "1"},
    {"maxResults": "10", "nextToken": "abc/def+ghi==", "byProvider": "Anthropic"},
    {"empty": "", "spaced": "a b", "unicode": "é猫", "tilde~": "-_.~", "colon": "x:y", "repeat": "z"},
]


@pytest.mark.parametrize("params", QUERIES, ids=lambda q: ",".join(q) or "none")
@pytest.mark.parametrize("method, body", [("GET", b""), ("POST", BODY)])
@pytest.mark.parametrize("token", ["", TOKEN], ids=["keys", "session-token"])
def test_query_strings_and_headers_are_signed_as_botocore_signs_them(params, method, body, token, monkeypatch):
    path = "/model/" + quote("anthropic.claude-3-haiku-20240307-v1:0", safe="") + "/converse"
    query = urlencode(params, quote_via=quote)     # as the query goes on the wire
    headers = {"host": "bedrock-runtime.us-west-2.amazonaws.com", "Content-Type": "application/json",
               "Accept": "application/vnd.amazon.eventstream", "X-Amzn-Bedrock-Trace": "  ENABLED   now  "}
    request, creq, sts = botocore_signed(method, f"https://{headers['host']}{path}", headers, body, token,
                                         monkeypatch, params=params)
    sent = {k: v for k, v in request.headers.items() if k != "Authorization"}
    mine = sigv4.signature(sigv4.Credentials(KEY_ID, SECRET, token), method=method, path=path, query=query,
                           headers=sent, payload_sha256=hashlib.sha256(body).hexdigest(), region=REGION,
                           service=api.SERVICE)
    assert mine.canonical_request == creq
    assert mine.string_to_sign == sts
    assert mine.authorization == request.headers["Authorization"]


def test_a_query_already_on_the_url_is_signed_as_botocore_signs_it(monkeypatch):
    url = "https://bedrock.us-west-2.amazonaws.com/foundation-models?byProvider=Anthropic&byOutputModality=TEXT"
    request, creq, _ = botocore_signed("GET", url, {}, b"", "", monkeypatch)
    sent = {k: v for k, v in request.headers.items() if k != "Authorization"}
    sent["host"] = urlsplit(url).netloc
    mine = sigv4.signature(sigv4.Credentials(KEY_ID, SECRET), method="GET", path="/foundation-models",
                           query=urlsplit(url).query, headers=sent, payload_sha256=sigv4.EMPTY_SHA256,
                           region=REGION, service=api.SERVICE)
    assert mine.canonical_request == creq
    assert mine.authorization == request.headers["Authorization"]


# -- event streams ------------------------------------------------------------------------------------------------

def encode(headers: list[tuple[str, int, object]], payload: bytes) -> bytes:
    """One frame per the event-stream spec; a header is (name, value type, value)."""
    raw = b""
    for name, kind, value in headers:
        raw += bytes([len(name.encode())]) + name.encode() + bytes([kind])
        if kind in (6, 7):
            data = value.encode() if kind == 7 else value
            raw += struct.pack(">H", len(data)) + data
        elif kind == 9:
            raw += value
        elif kind > 1:
            raw += struct.pack({2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}[kind], value)
    prelude = struct.pack(">II", 12 + len(raw) + len(payload) + 4, len(raw))
    prelude += struct.pack(">I", crc32(prelude))
    message = prelude + raw + payload
    return message + struct.pack(">I", crc32(message))


def reference(data: bytes, cuts: list[int] = ()) -> list[tuple[dict, bytes]]:
    buffer, out, at = EventStreamBuffer(), [], 0
    for cut in [*cuts, len(data)]:
        buffer.add_data(data[at:cut])
        out += [(m.headers, m.payload) for m in buffer]
        at = cut
    return out


def ours(data: bytes, cuts: list[int] = ()) -> list[tuple[dict, bytes]]:
    decoder, out, at = eventstream.Decoder("bedrock"), [], 0
    for cut in [*cuts, len(data)]:
        out += [(m.headers, m.payload) for m in decoder.feed(data[at:cut])]
        at = cut
    assert decoder.pending == 0
    return out


EVERY_TYPE = [(":event-type", 7, "contentBlockDelta"), (":content-type", 7, "application/json"),
              (":message-type", 7, "event"), ("yes", 0, True), ("no", 1, False), ("byte", 2, -7),
              ("short", 3, -30000), ("int", 4, 2_000_000_000), ("long", 5, -(2 ** 62)), ("raw", 6, b"\x00\xff"),
              ("when", 8, 1_709_804_465_000), ("id", 9, bytes(range(16)))]
STREAM = b"".join([
    event_frame("messageStart", {"role": "assistant"}),
    encode(EVERY_TYPE, b'{"contentBlockIndex":0,"delta":{"text":"\xc3\xa9 \xf0\x9f\x9a\x80"}}'),
    encode([(":event-type", 7, "ping")], b""),
    encode([], b"no headers"),
    event_frame("metadata", {"usage": {"inputTokens": 12, "outputTokens": 3}}),
    exception_frame("throttlingException", "Too many requests, please wait before trying again."),
])


def test_our_frames_are_what_botocore_decodes():
    expected = reference(STREAM)
    assert len(expected) == 6 and expected[1][0] == {name: value for name, _, value in EVERY_TYPE}
    assert ours(STREAM) == expected


def test_a_stream_cut_at_every_byte_decodes_as_botocore_decodes_it():
    expected = reference(STREAM)
    for cut in range(len(STREAM) + 1):
        assert ours(STREAM, [cut]) == expected, cut
    assert ours(STREAM, list(range(len(STREAM)))) == expected      # one byte at a time
    assert reference(STREAM, list(range(0, len(STREAM), 7))) == expected


def test_a_flipped_bit_anywhere_is_refused_by_both():
    frame = encode(EVERY_TYPE[:4], b'{"delta":{"text":"hi"}}')
    for i in range(len(frame)):
        bad = bytearray(frame)
        bad[i] ^= 1 << (i % 8)
        with pytest.raises(ParserError):
            reference(bytes(bad))
        with pytest.raises(UpstreamFault):
            ours(bytes(bad))


_header_names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=20).filter(
    lambda s: len(s.encode()) < 256)
_header = st.one_of(     # (value type, value) for each of the spec's ten types
    st.tuples(st.just(0), st.just(True)), st.tuples(st.just(1), st.just(False)),
    *(st.tuples(st.just(kind), st.integers(-2 ** (bits - 1), 2 ** (bits - 1) - 1))
      for kind, bits in ((2, 8), (3, 16), (4, 32), (5, 64), (8, 64))),
    st.tuples(st.just(6), st.binary(max_size=64)), st.tuples(st.just(7), st.text(max_size=64)),
    st.tuples(st.just(9), st.binary(min_size=16, max_size=16)),
)
_frames = st.lists(st.tuples(st.dictionaries(_header_names, _header, max_size=6), st.binary(max_size=200)),
                   min_size=1, max_size=4)


@settings(max_examples=200, deadline=None, database=None)
@given(_frames, st.lists(st.integers(0, 2000), max_size=5))
def test_any_frames_in_any_cuts_decode_as_botocore_decodes_them(frames, cuts):
    data = b"".join(encode([(n, k, v) for n, (k, v) in headers.items()], payload) for headers, payload in frames)
    cuts = sorted({c for c in cuts if c <= len(data)})
    assert ours(data, cuts) == reference(data, cuts) == reference(data)


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from([".", "..", "a:b/c"]) | st.text(st.characters(codec="utf-8"), min_size=1, max_size=60),
       st.booleans(), st.sampled_from(["", TOKEN]))
def test_any_model_id_is_signed_as_botocore_signs_it(model, stream, token):
    target = api.Target(REGION, f"https://bedrock-runtime.{REGION}.amazonaws.com",
                        f"bedrock-runtime.{REGION}.amazonaws.com", sigv4.Credentials(KEY_ID, SECRET, token))
    url = api.url(target, model, stream)
    ours = api.headers(target, api.wire_path(url), BODY, {}, now=NOW)
    with pytest.MonkeyPatch.context() as monkeypatch:
        request, _, _ = botocore_signed("POST", url, {"host": ours["host"]}, BODY, token, monkeypatch)
    assert request.headers["Authorization"] == ours["authorization"]


@pytest.mark.parametrize("path", ["/", "", "/model/./converse", "/model/../converse", "/a/b/../../..//c/", "//x//y/",
                                  "/model/m%3A0/./converse-stream/", "/example space/", "/ሴ/.."])
def test_paths_are_normalized_as_botocore_normalizes_them(path, monkeypatch):
    # AWS's own suite (get-relative, get-slash-dot-slash, get-slashes, ...): dot segments and repeated slashes go.
    url = "https://bedrock-runtime.us-west-2.amazonaws.com" + quote(path, safe="/%")
    request, creq, _ = botocore_signed("POST", url, {"host": "bedrock-runtime.us-west-2.amazonaws.com"}, BODY, "",
                                       monkeypatch)
    assert sigv4.canonical_uri(urlsplit(url).path) == creq.splitlines()[1]
