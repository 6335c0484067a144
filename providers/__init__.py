"""Provider adapters: one folder per provider, each a translation between
OpenAI's wire format and the provider's, plus where to send it."""
