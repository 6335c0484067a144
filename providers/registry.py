"""Provider `type:` names and the adapter class that serves each."""
from __future__ import annotations

from providers.anthropic import AnthropicProvider
from providers.azure import AzureOpenAIProvider
from providers.base import Provider
from providers.bedrock import BedrockProvider
from providers.diffusers import DiffusersProvider
from providers.diffusers.images import DiffusersImageProvider
from providers.fal import FalProvider
from providers.gemini import GeminiProvider
from providers.mock import MockProvider
from providers.openai import OpenAICompatibleProvider, OpenAIProvider
from providers.presets import PRESET_TYPES
from providers.replicate import ReplicateProvider
from providers.runway import RunwayProvider
from providers.veo import VeoProvider

TYPES: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "openai_compatible": OpenAICompatibleProvider,
    "mock": MockProvider,
    "gemini": GeminiProvider,
    "azure_openai": AzureOpenAIProvider,
    "anthropic": AnthropicProvider,
    "bedrock": BedrockProvider,
    "diffusers": DiffusersProvider,
    "diffusers_image": DiffusersImageProvider,
    "runway": RunwayProvider,
    "fal": FalProvider,
    "replicate": ReplicateProvider,
    "veo": VeoProvider,
    **PRESET_TYPES,
}
