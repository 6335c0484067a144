"""The /v1/videos surface: request parsing, jobs, assets and the worker."""
