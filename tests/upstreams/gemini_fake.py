"""A fake Gemini API (Generative Language, v1beta) on loopback: recorded bodies
from tests/data/gemini, the key checked as Gemini checks it, and knobs to fail
the ways the real one does. Images too: Imagen's `:predict` and Gemini's image
output (`generateContent` asking for the IMAGE modality) answer with real PNGs
at the aspect ratio asked for."""
from __future__ import annotations

import base64
import io
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from PIL import Image

from tests.harness import DATA, Loop
from tests.upstreams.batch_runs import BatchKnobs, FakeBatch, look, new_id
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
        self.batch = BatchKnobs()                  # how batch mode's batches end (tests/upstreams/batch_runs.py)
        self.batches: dict[str, FakeBatch] = {}
        super().__init__(loop, "/v1beta")

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._call)
        app.router.add_get("/v1beta/batches/{target}", self._batch_get)
        app.router.add_post("/v1beta/batches/{target}", self._batch_cancel)

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
        if method == "generateContent":
            return json_response(200, self.generate_answer(orjson.loads(body)))
        if method == "batchGenerateContent":
            return self._batch_create(body, model)
        if method == "streamGenerateContent" and request.query.get("alt") == "sse":
            return await self.stream(request, _EVENT.findall(self.stream_body))
        if method == "countTokens":     # by size: Google's tokenizer stands behind the real one
            request = orjson.loads(body).get("generateContentRequest") or {}
            return json_response(200, orjson.dumps({"totalTokens": len(orjson.dumps(request.get("contents"))) // 4}))
        if method in ("embedContent", "batchEmbedContents"):
            return json_response(200, _embeddings(orjson.loads(body), method))
        return json_response(404, b'{"error": {"code": 404, "message": "Method not found.", "status": "NOT_FOUND"}}')


    def generate_answer(self, request: dict[str, Any]) -> bytes:
        """What generateContent answers `request` (an image, where it asks for the IMAGE modality):
        the answer of a call and of a batch's request alike."""
        if "IMAGE" in (((request.get("generationConfig") or {}).get("responseModalities")) or []):
            return self.image_answer or _image_output(request, self.image_tokens)
        return self.chat_body

    # -- batch mode ------------------------------------------------------------------

    def _batch_create(self, body: bytes, model: str) -> web.Response:
        if self.batch.answer is not None:
            return json_response(200, self.batch.answer)
        batch = orjson.loads(body).get("batch")
        config = (batch or {}).get("inputConfig") or (batch or {}).get("input_config") or {}
        inline = (config.get("requests") or {}).get("requests")
        if not isinstance(inline, list) or not inline:
            return _status_error(400, "batch.input_config: inlined requests are required")
        requests = []
        for i, item in enumerate(inline):
            if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
                return _status_error(400, f"batch.input_config.requests.requests[{i}].request: required")
            key = (item.get("metadata") or {}).get("key")
            requests.append((key if isinstance(key, str) else f"#{i}", item["request"]))
        made = FakeBatch("batches/" + new_id(""), requests, model=model,
                         extra={"displayName": (batch or {}).get("displayName") or (batch or {}).get("display_name")})
        self.batches[made.id] = made
        return json_response(200, orjson.dumps(self._operation(made)))

    async def _batch_request(self, request: web.Request) -> tuple[FakeBatch | None, str, web.Response | None]:
        """(the batch named, the method after ':', an answer in place of the real one)."""
        name, _, method = request.match_info["target"].partition(":")
        await self.record(request, method=method)
        if request.headers.get("x-goog-api-key") != self.key:
            return None, method, json_response(400, recorded("error_400_api_key_invalid.json"))
        failed = await self.fail_or_wait()
        if failed is None and self.batch.answer is not None:
            failed = json_response(200, self.batch.answer)
        batch = self.batches.get(f"batches/{name}")
        if failed is None and batch is None:
            failed = _status_error(404, f"Batch batches/{name} not found.")
        return batch, method, failed

    async def _batch_get(self, request: web.Request) -> web.StreamResponse:
        batch, method, failed = await self._batch_request(request)
        if failed is not None:
            return failed
        assert batch is not None
        if method:
            return _status_error(404, "Method not found.")
        look(batch, self.batch, lambda _, req: (200, orjson.loads(self.generate_answer(req))))
        return json_response(200, orjson.dumps(self._operation(batch)))

    async def _batch_cancel(self, request: web.Request) -> web.StreamResponse:
        batch, method, failed = await self._batch_request(request)
        if failed is not None:
            return failed
        assert batch is not None
        if method != "cancel":
            return _status_error(404, "Method not found.")
        if batch.ended is not None:
            return _status_error(400, f"Batch {batch.id} is already in a terminal state.",
                                 status="FAILED_PRECONDITION")
        batch.cancel_asked = batch.cancel_asked or time.time()
        return json_response(200, b"{}")

    def _operation(self, batch: FakeBatch) -> dict[str, Any]:
        """The batch as the long-running operation Gemini answers with: the batch in its metadata, and
        once it ended `done`, the output (in the metadata and as the operation's response) or the error."""
        state = {None: "BATCH_STATE_RUNNING" if batch.looks else "BATCH_STATE_PENDING",
                 "completed": "BATCH_STATE_SUCCEEDED", "failed": "BATCH_STATE_FAILED",
                 "cancelled": "BATCH_STATE_CANCELLED", "expired": "BATCH_STATE_EXPIRED"}[batch.ended]
        answered = len(batch.answers)
        failed = sum(1 for status, _ in batch.answers.values() if status != 200)
        meta: dict[str, Any] = {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": f"models/{batch.model}", "displayName": batch.extra["displayName"], "name": batch.id,
            "createTime": _time(batch.created), "updateTime": _time(batch.ended_at or batch.created),
            "batchStats": {"requestCount": str(len(batch.requests)),
                           "pendingRequestCount": str(0 if batch.ended else len(batch.requests)),
                           "successfulRequestCount": str(answered - failed),
                           "failedRequestCount": str(failed)},
            "state": state}
        op: dict[str, Any] = {"name": batch.id, "metadata": meta}
        if batch.ended is None:
            return op
        op["done"] = True
        meta["endTime"] = _time(batch.ended_at)
        if batch.ended == "failed":
            op["error"] = {"code": 13, "message": "The batch failed: an internal error occurred."}
            return op
        output = {"inlinedResponses": {"inlinedResponses": [self._inlined(batch, custom_id)
                                                            for custom_id, _ in batch.requests
                                                            if custom_id in batch.answers]}}
        if self.batch.output_at in ("metadata", "both"):
            meta["output"] = output
        if self.batch.output_at in ("response", "both"):
            op["response"] = {"@type": "type.googleapis.com/google.ai.generativelanguage.v1main."
                                       "GenerateContentBatchOutput", **output}
        return op

    def _inlined(self, batch: FakeBatch, custom_id: str) -> dict[str, Any]:
        status, body = batch.answers[custom_id]
        item: dict[str, Any] = {"response": body} if status == 200 else {"error": {
            "code": _RPC.get(status, (13, "INTERNAL"))[0], "message": f"The request failed with {status}.",
            "details": []}}
        if self.batch.keys:
            item["metadata"] = {"key": custom_id}
        return item


# HTTP status -> (google.rpc.Code, its name)
_RPC = {400: (3, "INVALID_ARGUMENT"), 401: (16, "UNAUTHENTICATED"), 403: (7, "PERMISSION_DENIED"),
        404: (5, "NOT_FOUND"), 429: (8, "RESOURCE_EXHAUSTED"), 500: (13, "INTERNAL"), 503: (14, "UNAVAILABLE"),
        504: (4, "DEADLINE_EXCEEDED")}


def _status_error(code: int, message: str, status: str | None = None) -> web.Response:
    return json_response(code, orjson.dumps({"error": {"code": code, "message": message,
                                                       "status": status or _RPC.get(code, (13, "INTERNAL"))[1]}}))


def _time(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _embeddings(request: dict[str, Any], method: str) -> bytes:
    """One vector per request, cut to `outputDimensionality` as Gemini does."""
    values = orjson.loads(recorded("embed_content.json"))["embedding"]["values"]

    def one(req: dict[str, Any], i: int) -> dict[str, Any]:
        vector = [round(v + i / 100, 9) for v in values]
        return {"values": vector[: req.get("outputDimensionality") or len(vector)]}

    if method == "embedContent":
        return orjson.dumps({"embedding": one(request, 0)})
    return orjson.dumps({"embeddings": [one(r, i) for i, r in enumerate(request["requests"])]})


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
