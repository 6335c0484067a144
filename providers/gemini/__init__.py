"""`type: gemini`: Google's Generative Language API (Gemini), chat, embeddings and images
(Imagen, and Gemini's image output: images.py)."""
from __future__ import annotations

from collections.abc import Mapping

import orjson

from providers import hosted_images
from providers.base import Call, Reply, Usage
from providers.errors import BadRequest, ProviderError
from providers.gemini import api, chat, embeddings, images
from providers.gemini.answer import completion
from providers.gemini.batches import GeminiBatches
from providers.gemini.errors import parse_error
from providers.gemini.stream import GeminiStream
from providers.http import HttpProvider, UpstreamRequest, json_object


class GeminiProvider(HttpProvider[api.Options]):
    Options = api.Options
    secret_field = "api_key"
    operations = frozenset({"chat", "embeddings", "images"})

    def __init__(self, options: api.Options) -> None:
        super().__init__(options)
        self._headers = api.headers(options)

    def batch_client(self) -> GeminiBatches:
        return GeminiBatches(self)     # where a config says batch: native

    def request(self, call: Call) -> UpstreamRequest:
        o = self.options
        if call.op == "embeddings":
            return UpstreamRequest(api.url(o, call.model, embeddings.method(call.data)),
                                   embeddings.request_body(call.data, call.model), self._headers)
        method = "streamGenerateContent" if call.stream else "generateContent"
        return UpstreamRequest(api.url(o, call.model, method, stream=call.stream),
                               chat.generate_body(call.data), self._headers)

    def error(self, status: int, body: bytes, headers: Mapping[str, str]) -> ProviderError:
        return parse_error(status, body, headers, provider=self.name, secret=self.options.api_key)

    def answer(self, call: Call, body: bytes) -> Reply:
        try:
            if call.op == "embeddings":
                out, usage = embeddings.answer(call.data, body, call.model)
            else:
                out, usage = completion(body, call.model,
                                        single_call=call.data.get("parallel_tool_calls") is False)
        except ProviderError as e:
            e.provider = e.provider or self.name
            raise
        return Reply(body=out, usage=usage)

    def translator(self, call: Call) -> GeminiStream:
        return GeminiStream(call, provider=self.name, secret=self.options.api_key)

    async def count_tokens(self, call: Call, client_headers: dict[str, str]) -> int:
        """Gemini's own count (`countTokens`) for the chat form of a request: its
        contents, system instruction and tools, as generateContent would get them."""
        request = {"model": api.resource(call.model), **orjson.loads(chat.generate_body(call.data))}
        request.pop("generationConfig", None)      # countTokens counts the input only
        req = UpstreamRequest(api.url(self.options, call.model, "countTokens"),
                              orjson.dumps({"generateContentRequest": request}), self._headers)
        counted = json_object(await self.roundtrip(req), self.name).get("totalTokens")
        if not isinstance(counted, int) or isinstance(counted, bool) or counted < 0:
            raise self.upstream.malformed("answered countTokens without a 'totalTokens' count")
        return counted

    async def images(self, call: Call) -> Reply:
        """Imagen's `predict` (up to 4 images a call), or `generateContent` on an image output
        model (one image a call, `n` calls at once); either answered as OpenAI's images."""
        n = call.data.get("n") or 1
        edit = call.op == "image_edits"
        if images.is_imagen(call.model):
            if edit:
                raise BadRequest(f"provider '{self.name}' cannot edit images with Imagen model '{call.model}'; "
                                 "route edits to a Gemini image model such as gemini-2.5-flash-image",
                                 provider=self.name, param="model", code="unsupported_operation")
            url = api.url(self.options, call.model, "predict")
            person = self.options.person_generation
            bodies = await hosted_images.all_of(
                self.roundtrip(UpstreamRequest(url, images.imagen_body(call.data, call.model, count,
                                                                      person_generation=person), self._headers))
                for count in images.imagen_batches(call.model, n))
            made: list[bytes] = []
            prompts: list[str | None] = []
            for body in bodies:
                got, rewritten = images.read_imagen(body, provider=self.name)
                made += got
                prompts += rewritten
            return Reply(body=self._images_answer(made[:n], prompts[:n], None), usage=None)
        uploads = (call.data.get("image") or []) if edit else []
        if edit and call.data.get("mask") is not None:
            raise BadRequest(f"provider '{self.name}' (Gemini image output) edits by the prompt alone and takes "
                             "no mask", provider=self.name, param="mask", code="unsupported_operation")
        req = UpstreamRequest(api.url(self.options, call.model, "generateContent"),
                              images.generate_body(call.data, call.model, uploads), self._headers)
        bodies = await hosted_images.all_of(self.roundtrip(req) for _ in range(n))
        made = []
        usage = Usage()
        for body in bodies:
            got, counted = images.read_generated(body, provider=self.name)
            made += got
            usage.prompt_tokens += counted.prompt_tokens
            usage.completion_tokens += counted.completion_tokens
            usage.cached_tokens += counted.cached_tokens
        return Reply(body=self._images_answer(made[:n], [], images.usage_json(usage)), usage=usage)

    def _images_answer(self, made: list[bytes], prompts: list[str | None], usage: dict | None) -> bytes:
        if not made:
            raise self.upstream.malformed("answered 200 without any image")
        bad = hosted_images.not_images(made)
        if bad is not None:
            raise self.upstream.malformed(f"answered with image {bad + 1} not a PNG, JPEG, WEBP or GIF file")
        if max(len(m) for m in made) > hosted_images.MAX_IMAGE_BYTES:
            raise self.upstream.malformed(f"answered with an image over {hosted_images.MAX_IMAGE_BYTES} bytes")
        return hosted_images.answer(made, revised=prompts, usage=usage)
