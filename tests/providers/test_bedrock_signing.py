"""Bedrock's transport, as pure functions: SigV4 against AWS's published test
suite, and the event-stream decoder against botocore's recorded frames and
frames built here from the documented layout."""
from __future__ import annotations

import hashlib
import json
import struct
import zlib
from datetime import UTC, datetime

import pytest

from providers.bedrock import api, eventstream, sigv4
from providers.errors import UpstreamFault
from tests.upstreams.bedrock_fake import RECORDED, event_frame, exception_frame, frame

VECTORS = json.loads((RECORDED / "sigv4_vectors.json").read_text())
FRAMES = json.loads((RECORDED / "eventstream_vectors.json").read_text())
CREDS = sigv4.Credentials(VECTORS["access_key_id"], VECTORS["secret_access_key"])


# -- SigV4 ----------------------------------------------------------------------

@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["name"] for c in VECTORS["cases"]])
def test_aws_sigv4_test_suite(case):
    sig = sigv4.signature(CREDS, method=case["method"], path=case["path"], query=case["query"],
                          headers=dict(case["headers"]),
                          payload_sha256=hashlib.sha256(case["body"].encode()).hexdigest(),
                          region=VECTORS["region"], service=VECTORS["service"])
    assert sig.canonical_request == case["canonical_request"]
    assert sig.string_to_sign == case["string_to_sign"]
    assert sig.authorization == case["authorization"]


def test_model_id_path_is_encoded_twice_when_signed():
    # What AWS itself echoes for a Bedrock model id: %3A on the wire, %253A signed.
    assert sigv4.canonical_uri("/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse") == \
        "/model/anthropic.claude-3-5-haiku-20241022-v1%253A0/converse"


def test_signed_headers_for_a_bedrock_call():
    now = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
    creds = sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
    h = sigv4.signed_headers(creds, method="POST", host="bedrock-runtime.us-east-1.amazonaws.com",
                             path="/model/m/converse", body=b"{}", region="us-east-1", service="bedrock", now=now)
    assert h["x-amz-date"] == "20150830T123600Z"
    assert h["x-amz-security-token"] == "session-token"
    assert h["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/"
                                         "aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=")
    # Recomputing from what was sent gives the same signature; another body does not.
    sent = {k: v for k, v in h.items() if k != "authorization"}
    again = sigv4.signature(creds, method="POST", path="/model/m/converse", query="", headers=sent,
                            payload_sha256=hashlib.sha256(b"{}").hexdigest(), region="us-east-1", service="bedrock")
    other = sigv4.signature(creds, method="POST", path="/model/m/converse", query="", headers=sent,
                            payload_sha256=hashlib.sha256(b"{ }").hexdigest(), region="us-east-1", service="bedrock")
    assert again.authorization == h["authorization"] != other.authorization


def test_the_secret_never_prints():
    assert "EXAMPLEKEY" not in repr(CREDS) and "EXAMPLEKEY" not in str(CREDS)


def test_request_path_is_signed_as_sent():
    t = api.Target("us-east-1", "https://bedrock-runtime.us-east-1.amazonaws.com",
                   "bedrock-runtime.us-east-1.amazonaws.com", CREDS)
    url = api.url(t, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/"
                     "us.anthropic.claude-3-5-haiku-20241022-v1:0",
                  stream=True)
    # The model id is one path segment: its ':' and '/' stay escaped on the wire, as AWS's SDKs send them.
    assert api.wire_path(url) == ("/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2F"
                                  "us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream")


def test_credentials_and_region_come_from_config_else_the_environment():
    env = {"AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-token",
           "AWS_REGION": "eu-west-1"}
    bare = api.Options(name="b", type="bedrock")
    assert api.credentials(bare, env) == sigv4.Credentials("AKENV", "env-secret", "env-token")
    assert api.region(bare, env) == "eu-west-1"
    assert api.missing(bare, env) is None
    t = api.target(bare, env)
    assert (t.base_url, t.host) == ("https://bedrock-runtime.eu-west-1.amazonaws.com",
                                    "bedrock-runtime.eu-west-1.amazonaws.com")
    own = api.Options(name="b", type="bedrock", region="us-west-2", access_key_id="AKCFG", secret_access_key="cfg")
    assert api.credentials(own, env) == sigv4.Credentials("AKCFG", "cfg", "")   # never the env's token with these keys
    assert api.region(own, env) == "us-west-2"
    assert api.missing(bare, {}) == "secret_access_key is empty and AWS_SECRET_ACCESS_KEY is not set"
    assert api.missing(bare, {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}).startswith("region is empty")
    assert api.target(api.Options(name="b", type="bedrock", base_url="http://127.0.0.1:9/"), env).host == "127.0.0.1:9"


def test_api_key_is_refused_with_a_pointer_to_the_right_fields():
    with pytest.raises(ValueError, match="access_key_id"):
        api.Options(name="b", type="bedrock", api_key="sk-1")


# -- event-stream frames ---------------------------------------------------------

def _expected_headers(headers):
    return {k: bytes.fromhex(v["bytes_hex"]) if isinstance(v, dict) else v for k, v in headers.items()}


@pytest.mark.parametrize("case", FRAMES["frames"], ids=[c["name"] for c in FRAMES["frames"]])
def test_recorded_frames_decode(case):
    messages = eventstream.Decoder().feed(bytes.fromhex(case["hex"]))
    assert len(messages) == 1
    assert messages[0].headers == _expected_headers(case["headers"])
    assert messages[0].payload == case["payload"].encode()


@pytest.mark.parametrize("case", FRAMES["corrupt"], ids=[c["name"] for c in FRAMES["corrupt"]])
def test_corrupt_frames_are_upstream_faults(case):
    with pytest.raises(UpstreamFault, match="corrupt event-stream frame"):
        eventstream.Decoder("bedrock").feed(bytes.fromhex(case["hex"]))


def test_frames_cut_anywhere_decode_the_same():
    data = b"".join([event_frame("messageStart", {"role": "assistant"}),
                     event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "é 🚀"}}),
                     exception_frame("throttlingException", "slow down")])
    whole = eventstream.Decoder().feed(data)
    decoder = eventstream.Decoder()
    bytewise = [m for i in range(len(data)) for m in decoder.feed(data[i:i + 1])]
    assert decoder.pending == 0
    assert [(m.headers, m.payload) for m in bytewise] == [(m.headers, m.payload) for m in whole]
    assert [m.headers.get(":event-type") or m.headers[":exception-type"] for m in whole] == \
        ["messageStart", "contentBlockDelta", "throttlingException"]
    assert json.loads(whole[1].payload)["delta"]["text"] == "é 🚀"


def test_partial_frame_waits_and_is_counted():
    data = event_frame("messageStop", {"stopReason": "end_turn"})
    decoder = eventstream.Decoder()
    assert decoder.feed(data[:20]) == [] and decoder.pending == 20
    assert len(decoder.feed(data[20:])) == 1 and decoder.pending == 0


def test_payload_checksum_mismatch():
    data = bytearray(event_frame("contentBlockDelta", {"delta": {"text": "hi"}}))
    data[-6] ^= 0x01                          # one bit of the payload flipped
    with pytest.raises(UpstreamFault, match="message checksum mismatch"):
        eventstream.Decoder("bedrock").feed(bytes(data))


def test_prelude_checksum_mismatch_is_caught_before_waiting_for_the_body():
    data = bytearray(event_frame("contentBlockDelta", {"delta": {"text": "hi"}}))
    data[3] ^= 0x40                           # the length now lies
    with pytest.raises(UpstreamFault, match="prelude checksum mismatch"):
        eventstream.Decoder().feed(bytes(data[:12]))


def test_non_string_headers_are_skipped_over():
    raw = (b"\x05flag1\x00" + b"\x04time\x08" + struct.pack(">q", 1700000000000)
           + b"\x02id\x09" + bytes(range(16)) + b"\x03raw\x06\x00\x02ok")
    m = eventstream.Decoder().feed(frame({":event-type": "metadata"}, b"{}", raw_headers=raw))[0]
    assert m.headers == {":event-type": "metadata", "flag1": True, "time": 1700000000000, "id": bytes(range(16)),
                         "raw": b"ok"}


def test_headers_that_overrun_are_corrupt():
    raw = b"\x0a:event-typ"                   # a name that runs past the headers' end
    prelude = struct.pack(">II", 12 + len(raw) + 4, len(raw))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw
    with pytest.raises(UpstreamFault, match="malformed headers"):
        eventstream.Decoder().feed(body + struct.pack(">I", zlib.crc32(body)))
