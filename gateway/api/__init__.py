"""HTTP handlers: thin functions from a request to an answer."""
