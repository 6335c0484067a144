"""A fake Gemini API (Generative Language, v1beta) on loopback: recorded bodies
from tests/data/gemini, the key checked as Gemini checks it, and knobs to fail
the ways the real one does. Images too: Imagen's `:predict` and Gemini's image
output (`generateContent` asking for the IMAGE modality) answer with real PNGs
at the aspect ratio asked for."""
from __future__ import annotations

import base64
import io
import re
from typing import Any

import orjson
from aiohttp import web
from PIL import Image

from tests.harness import DATA, Loop
from tests.upstreams.image_sample import png, ratio_size
from tests.upstreams.server import FakeServer, json_response

RECORDED = DATA / "gemini"
_EVENT = re.compile(rb".+?(?:\r\n\r\n|\n\n)", re.S)


def recorded(name: str) -> bytes:
    return (RECORDED / name).read_bytes()


class FakeGemini(FakeServer):
    def __init__(self, loop: Loop, name: str = "gemini", key: str = "gm-test-key") -> None:
        self.name = name
        self.key = key
        self.chat_body = recorded("generate_text.json")
        self.stream_body = recorded("stream_text.sse")
        self.image_answer: bytes | None = None     # set: the answer to every image call, as it is
        self.image_tokens = (12, 1290)             # Gemini image output's (prompt, candidates) tokens
        super().__init__(loop, "/v1beta")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._call)

    async def _call(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        body = await self.record(request, model=model, method=method)
        if request.headers.get("x-goog-api-key") != self.key:
            return json_response(400, recorded("error_400_api_key_invalid.json"))
        failed = await self.fail_or_wait()
        if failed is not None:
            return failed
        if method == "predict":
            return json_response(200, self.image_answer or _imagen(orjson.loads(body), model))
        if method == "generateContent" and _wants_image(body):
            return json_response(200, self.image_answer or _image_output(orjson.loads(body), self.image_tokens))
        if method == "generateContent":
            return json_response(200, self.chat_body)
        if method == "streamGenerateContent" and request.query.get("alt") == "sse":
            return await self.stream(request, _EVENT.findall(self.stream_body))
        if method == "countTokens":     # by size: Google's tokenizer stands behind the real one
            request = orjson.loads(body).get("generateContentRequest") or {}
            return json_response(200, orjson.dumps({"totalTokens": len(orjson.dumps(request.get("contents"))) // 4}))
        if method in ("embedContent", "batchEmbedContents"):
            return json_response(200, _embeddings(orjson.loads(body), method))
        return json_response(404, b'{"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}}')


def _embeddings(request: dict[str, Any], method: str) -> bytes:
    """One vector per request, cut to `outputDimensionality` as Gemini does."""
    values = orjson.loads(recorded("embed_content.json"))["embedding"]["values"]

    def one(req: dict[str, Any], i: int) -> dict[str, Any]:
        vector = [round(v + i / 100, 9) for v in values]
        return {"values": vector[: req.get("outputDimensionality") or len(vector)]}

    if method == "embedContent":
        return orjson.dumps({"embedding": one(request, 0)})
    return orjson.dumps({"embeddings": [one(r, i) for i, r in enumerate(request["requests"])]})


def _wants_image(body: bytes) -> bool:
    config = orjson.loads(body).get("generationConfig") or {}
    return "IMAGE" in (config.get("responseModalities") or [])


def _imagen(request: dict[str, Any], model: str) -> bytes:
    """`sampleCount` PNGs at the request's aspectRatio, as Imagen's predictions."""
    parameters = request.get("parameters") or {}
    prompt = request["instances"][0]["prompt"]
    w, h = ratio_size(parameters.get("aspectRatio"))
    return orjson.dumps({"predictions": [
        {"mimeType": "image/png", "bytesBase64Encoded": base64.b64encode(png(w, h, f"{model}{prompt}{i}")).decode(),
         "prompt": f"{prompt}, photographed"} for i in range(parameters.get("sampleCount") or 1)]})


def _image_output(request: dict[str, Any], tokens: tuple[int, int]) -> bytes:
    """One PNG at imageConfig's aspectRatio (an edit: the first image's size), with its tokens."""
    parts = request["contents"][0]["parts"]
    given = [p.get("inline_data") or p.get("inlineData") for p in parts if "inline_data" in p or "inlineData" in p]
    ratio = ((request.get("generationConfig") or {}).get("imageConfig") or {}).get("aspectRatio")
    if given and not ratio:
        w, h = Image.open(io.BytesIO(base64.b64decode(given[0]["data"]))).size
    else:
        w, h = ratio_size(ratio)
    image = png(w, h, orjson.dumps(parts).decode())
    return orjson.dumps({
        "candidates": [{"content": {"role": "model", "parts": [
            {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(image).decode()}}]},
            "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": tokens[0], "candidatesTokenCount": tokens[1],
                          "totalTokenCount": sum(tokens)},
        "modelVersion": "gemini-2.5-flash-image", "responseId": "fake-image"})
