"""The Anthropic Messages API dialect: `translate` maps a request to chat and a chat answer back; `events` maps a chat
stream."""
