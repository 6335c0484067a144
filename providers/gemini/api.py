"""Where Google's Generative Language API (Gemini) is called, and with what headers."""
from __future__ import annotations

from typing import Literal

from providers.batching import BatchOptions
from providers.http import HttpOptions


class Options(HttpOptions, BatchOptions):     # batch*: providers/batching.py
    base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    # Imagen's personGeneration: whether its images may show people (unset: Google's default)
    person_generation: Literal["dont_allow", "allow_adult", "allow_all"] | None = None


def resource(model: str) -> str:
    """The model's resource name: `models/<model>`, or as given when already a path
    (`models/...`, `tunedModels/...`)."""
    return model if "/" in model else f"models/{model}"


def url(options: Options, model: str, method: str, *, stream: bool = False) -> str:
    base = f"{options.base_url.rstrip('/')}/{resource(model)}:{method}"
    return base + "?alt=sse" if stream else base


def headers(options: HttpOptions) -> dict[str, str]:   # Veo's options too
    # The key travels in a header, never in the URL, so it never shows in logs or errors.
    h = {"content-type": "application/json", "x-goog-api-key": options.api_key}
    h.update(options.headers)
    return h
