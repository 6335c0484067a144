"""OpenAI's Audio API: speech, transcriptions and translations (api.py), their bodies (protocol.py),
their prices (pricing.py)."""
