"""A fake Bedrock runtime on loopback: checks every call's SigV4 signature as
AWS does (403 with AWS's own error bodies when wrong), answers Converse with
recorded JSON and ConverseStream with binary event-stream frames, and fails
on purpose with Bedrock's recorded errors and exception frames."""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from providers.bedrock import sigv4
from tests.harness import DATA, Loop
from tests.upstreams.anthropic_fake import recorded as anthropic_recorded
from tests.upstreams.server import Behaviour, FakeServer, json_response, sse_events

RECORDED = DATA / "bedrock"
ACCESS_KEY_ID = "AKIDFAKEBEDROCK0001"
SECRET_ACCESS_KEY = "fAkE/SeCrEt+KeY/0123456789abcdefghijklm"
REGION = "us-east-1"
_AUTHZ = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                    r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


def recorded_events(name: str) -> list[tuple[str, dict[str, Any]]]:
    return [(e, p) for e, p in orjson.loads(recorded(name))]


# -- event-stream frames, built from the documented layout ----------------------

def frame(headers: dict[str, str], payload: bytes, *, raw_headers: bytes = b"") -> bytes:
    """One frame with string headers (type 7), plus any pre-encoded ones."""
    encoded = b"".join(bytes([len(k)]) + k.encode() + b"\x07" + struct.pack(">H", len(v.encode())) + v.encode()
                       for k, v in headers.items()) + raw_headers
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event_frame(event: str, payload: dict[str, Any]) -> bytes:
    return frame({":event-type": event, ":content-type": "application/json", ":message-type": "event"},
                 orjson.dumps(payload))


def exception_frame(exception: str, message: str) -> bytes:
    return frame({":exception-type": exception, ":content-type": "application/json",
                  ":message-type": "exception"}, orjson.dumps({"message": message}))


# -- the server -----------------------------------------------------------------

@dataclass
class BedrockBehaviour(Behaviour):
    exception_after: int | None = None    # stream: events sent before an exception frame
    exception: tuple[str, str] = ("modelStreamErrorException", "The model stream failed; retry the request.")
    corrupt_after: int | None = None      # stream: events sent before a frame with a bad checksum


class FakeBedrock(FakeServer):
    knobs = BedrockBehaviour

    def __init__(self, loop: Loop, *, session_token: str = "", region: str = REGION) -> None:
        self.session_token = session_token
        self.region = region
        self.rejected: list[str] = []         # why each refused signature was refused
        self.chat_body: bytes | None = None   # fixed answers instead of the recorded choice
        self.stream_events: list[tuple[str, dict[str, Any]]] | None = None
        super().__init__(loop)

    def provider(self, name: str = "bedrock", **kw: Any) -> dict[str, Any]:
        """This fake as a gateway provider entry, signing with the right keys."""
        cfg = {"name": name, "type": "bedrock", "region": self.region, "base_url": self.url,
               "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY}
        if self.session_token:
            cfg["session_token"] = self.session_token
        return {**cfg, **kw}

    def fail(self, error: str, **kw: Any) -> None:
        """Answer with `error`, a key of the recorded errors.json."""
        spec = orjson.loads(recorded("errors.json"))[error]
        kind, service = spec.get("type", error), spec.get("service", "com.amazon.bedrock")
        headers = {**_error_type(kind, service), **kw.pop("headers", {})}
        super().fail(spec["status"], orjson.dumps(spec["body"]), headers=headers, **kw)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{tail:.*}", self._call)

    async def _call(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        refused = self._check_signature(request, body)
        if refused is not None:
            return refused
        m = re.fullmatch(r"/model/([^/]+)/(converse|converse-stream|invoke|invoke-with-response-stream)",
                         request.raw_path)
        if m is None:
            return _error(404, "UnknownOperationException", "")
        await self.record(request, path=request.raw_path, model=unquote(m.group(1)))   # the path with its escapes
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if m.group(2).startswith("invoke"):
            return await self._invoke(request, orjson.loads(body), m.group(2) == "invoke")
        uses_tool = _wants_tool(orjson.loads(body))
        if m.group(2) == "converse":
            answer = self.chat_body or recorded("converse_tool_use.json" if uses_tool else "converse_text.json")
            return web.Response(body=answer, content_type="application/json")
        events = self.stream_events or recorded_events("stream_tool_use.json" if uses_tool else "stream_text.json")
        return await self.stream(request, self._frames(events), "application/vnd.amazon.eventstream")

    async def _invoke(self, request: web.Request, doc: dict[str, Any], whole: bool) -> web.StreamResponse:
        """InvokeModel for Anthropic's models: Anthropic's own body (with `anthropic_version`,
        without model or stream), answered with Anthropic's recorded message, or its recorded
        stream as `chunk` frames of base64 events."""
        if doc.get("anthropic_version") != "bedrock-2023-05-31" or "model" in doc or "stream" in doc:
            return _error(400, "ValidationException",
                          "Malformed input request, please reformat your input and try again.")
        uses_tool = bool(doc.get("tools"))
        if whole:
            return web.Response(body=anthropic_recorded("message_tool_use.json" if uses_tool else "message.json"),
                                content_type="application/json")
        stream = anthropic_recorded("stream_tool_use.sse" if uses_tool else "stream_text.sse")
        frames = []
        for block in sse_events(stream):
            data = next((line[6:] for line in block.split(b"\n") if line.startswith(b"data: ")), None)
            if data and orjson.loads(data).get("type") != "ping":
                frames.append(event_frame("chunk", {"bytes": base64.b64encode(data).decode()}))
        return await self.stream(request, frames, "application/vnd.amazon.eventstream")

    def _frames(self, events: list[tuple[str, dict[str, Any]]]) -> list[bytes]:
        b = self.behaviour
        frames = []
        for i, (event, payload) in enumerate(events):
            if b.exception_after is not None and i >= b.exception_after:
                return [*frames, exception_frame(*b.exception)]
            data = event_frame(event, payload)
            if b.corrupt_after is not None and i >= b.corrupt_after:
                data = data[:-1] + bytes([data[-1] ^ 0xFF])
            frames.append(data)
        return frames

    async def write_event(self, resp: web.StreamResponse, event: bytes) -> None:
        cut = len(event) // 2          # frames cut across writes, as networks do
        await resp.write(event[:cut])
        await resp.write(event[cut:])

    # -- SigV4, checked the way AWS checks it ------------------------------------

    def _check_signature(self, request: web.Request, body: bytes) -> web.Response | None:
        authz = request.headers.get("authorization")
        if not authz:
            return self._refuse(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        m = _AUTHZ.match(authz)
        if m is None:
            return self._refuse(403, "IncompleteSignatureException",
                                "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.")
        key_id, date, region, service, names, given = m.groups()
        if key_id != ACCESS_KEY_ID:
            return self._refuse(403, "UnrecognizedClientException",
                                "The security token included in the request is invalid.")
        token = request.headers.get("x-amz-security-token", "")
        if token != self.session_token or (token and "x-amz-security-token" not in names.split(";")):
            return self._refuse(403, "UnrecognizedClientException",
                                "The security token included in the request is invalid.")
        when = request.headers.get("x-amz-date", "")
        if not {"host", "x-amz-date"} <= set(names.split(";")) or not when.startswith(date):
            return self._refuse(403, "IncompleteSignatureException", "Date and host must be signed.")
        if region != self.region or service != "bedrock":
            return self._refuse(403, "InvalidSignatureException",
                                f"Credential should be scoped to a valid region and service ({region}/{service}).")
        sent = datetime.strptime(when, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        if abs((datetime.now(UTC) - sent).total_seconds()) > 300:
            return self._refuse(403, "InvalidSignatureException", f"Signature expired: {when} is now earlier "
                                "than the allowed window.")
        path, _, query = request.raw_path.partition("?")
        signed = {n: request.headers.get(n, "") for n in names.split(";")}
        expected = sigv4.signature(sigv4.Credentials(ACCESS_KEY_ID, SECRET_ACCESS_KEY, token), method=request.method,
                                   path=path, query=query, headers=signed,
                                   payload_sha256=hashlib.sha256(body).hexdigest(), region=region, service=service)
        if not hmac.compare_digest(expected.signature, given):
            return self._refuse(403, "InvalidSignatureException",
                                "The request signature we calculated does not match the signature you provided. "
                                "Check your AWS Secret Access Key and signing method. Consult the service "
                                "documentation for details.\n\nThe Canonical String for this request should have "
                                f"been\n'{expected.canonical_request}'\n\nThe String-to-Sign should have been\n"
                                f"'{expected.string_to_sign}'\n")
        return None

    def _refuse(self, status: int, kind: str, message: str) -> web.Response:
        self.rejected.append(kind)
        return _error(status, kind, message, "com.amazon.coral.service")


def _error(status: int, kind: str, message: str, service: str = "com.amazon.bedrock") -> web.Response:
    return json_response(status, orjson.dumps({"message": message}), _error_type(kind, service))


def _error_type(kind: str, service: str) -> dict[str, str]:
    return {"x-amzn-ErrorType": f"{kind}:http://internal.amazon.com/coral/{service}/"}


def _wants_tool(body: dict[str, Any]) -> bool:
    """Call a tool when tools are offered and no tool result has come back yet."""
    if "toolConfig" not in body:
        return False
    last = body["messages"][-1]["content"]
    return not any("toolResult" in block for block in last)
