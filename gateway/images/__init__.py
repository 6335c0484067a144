"""OpenAI's Images API: generations and edits (api.py), their bodies (protocol.py), their prices (pricing.py)."""
