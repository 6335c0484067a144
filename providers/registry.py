"""Provider `type:` names and the adapter class that serves each."""
from __future__ import annotations

from providers.base import Provider
from providers.mock import MockProvider
from providers.openai import OpenAICompatibleProvider, OpenAIProvider

TYPES: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "openai_compatible": OpenAICompatibleProvider,
    "mock": MockProvider,
}
