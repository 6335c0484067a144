"""An OpenAI-compatible gateway for chat and video."""
__version__ = "0.1.0"
