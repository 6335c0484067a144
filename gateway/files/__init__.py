"""OpenAI's Files API (`/v1/files`): files kept per key, their bytes in the
asset store, their records in the state store; batch input checked line by
line as it is uploaded."""
