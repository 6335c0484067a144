"""OpenAI embeddings requests as Gemini `embedContent` / `batchEmbedContents`,
and their answers back as OpenAI's embeddings list (pure)."""
from __future__ import annotations

import base64
import struct
from typing import Any

import orjson

from providers.base import Usage
from providers.errors import BadRequest, UpstreamFault
from providers.gemini.api import resource


def inputs(data: dict[str, Any]) -> list[str]:
    value = data.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest("Gemini embeds text only: 'input' must be a string or an array of strings "
                         "(token arrays are not supported)", param="input", code="unsupported_parameter")
    return texts


def method(data: dict[str, Any]) -> str:
    """One text -> embedContent, several -> batchEmbedContents."""
    return "embedContent" if len(inputs(data)) == 1 else "batchEmbedContents"


def request_body(data: dict[str, Any], model: str) -> bytes:
    requests = [_request(text, data, model) for text in inputs(data)]
    return orjson.dumps(requests[0] if len(requests) == 1 else {"requests": requests})


def _request(text: str, data: dict[str, Any], model: str) -> dict[str, Any]:
    req: dict[str, Any] = {"model": resource(model), "content": {"parts": [{"text": text}]}}
    if data.get("dimensions") is not None:
        req["outputDimensionality"] = data["dimensions"]
    return req


def answer(data: dict[str, Any], body: bytes, model: str) -> tuple[bytes, Usage]:
    """OpenAI's `list` of embeddings: floats, or base64 of little-endian float32
    when `encoding_format` is "base64" (what the openai SDK asks for by default)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamFault("Gemini sent an embeddings answer that is not JSON") from None
    vectors = _vectors(doc)
    if len(vectors) != len(inputs(data)):
        raise UpstreamFault(f"Gemini returned {len(vectors)} embeddings for {len(inputs(data))} inputs")
    as_base64 = data.get("encoding_format") == "base64"
    items = [{"object": "embedding", "index": i, "embedding": _encoded(v) if as_base64 else v}
             for i, v in enumerate(vectors)]
    tokens = _prompt_tokens(doc)
    out = {"object": "list", "data": items, "model": model,
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    return orjson.dumps(out), Usage(prompt_tokens=tokens)


def _vectors(doc: Any) -> list[list[float]]:
    if isinstance(doc, dict) and isinstance(doc.get("embedding"), dict):
        found = [doc["embedding"]]
    elif isinstance(doc, dict) and isinstance(doc.get("embeddings"), list):
        found = doc["embeddings"]
    else:
        raise UpstreamFault("Gemini sent an embeddings answer without embeddings")
    vectors = [v for e in found if isinstance(e, dict) and isinstance(v := e.get("values"), list)]
    if len(vectors) != len(found):
        raise UpstreamFault("Gemini sent an embedding without values")
    return vectors


def _encoded(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _prompt_tokens(doc: dict[str, Any]) -> int:
    """What Gemini reported, if it did (it often does not for embeddings): else 0."""
    meta = doc.get("usageMetadata")
    if isinstance(meta, dict):
        return meta.get("promptTokenCount") or meta.get("totalTokenCount") or 0
    return 0
