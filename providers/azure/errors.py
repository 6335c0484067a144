"""Azure OpenAI's error bodies: OpenAI's shape with Azure's codes (string
statuses like "429", `content_filter` with its filter results,
`DeploymentNotFound`)."""
from __future__ import annotations

from collections.abc import Mapping

import orjson

from providers import errors
from providers.openai.chat import parse_error as openai_error


def parse_error(status: int, body: bytes, headers: Mapping[str, str], *, provider: str,
                secret: str = "") -> errors.ProviderError:
    err = openai_error(status, body, headers, provider=provider, secret=secret)
    if err.code == "DeploymentNotFound":
        # The gateway's config names a deployment that does not exist: another target may serve.
        return errors.UpstreamFault(f"provider '{provider}': {err.message}", provider=provider,
                                    code="upstream_deployment_not_found", upstream_status=status)
    if isinstance(err, errors.BadRequest):
        if err.code == "content_filter":
            err.type = "invalid_request_error"
            err.message = _with_filter_result(err.message, body)
        elif err.code == str(status):      # Azure's numeric codes say nothing the status doesn't
            err.code = None
    return err


def _with_filter_result(message: str, body: bytes) -> str:
    """Name the categories Azure's content filter flagged, so the client knows why."""
    try:
        inner = orjson.loads(body)["error"]["innererror"]["content_filter_result"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return message
    flagged = sorted(k for k, v in inner.items() if isinstance(v, dict) and v.get("filtered"))
    return f"{message} (filtered: {', '.join(flagged)})" if flagged else message
