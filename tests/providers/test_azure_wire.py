"""Azure OpenAI: where calls go and what its error bodies mean."""
from __future__ import annotations

import pytest

from providers import errors
from providers.azure import api
from providers.azure.errors import parse_error
from tests.upstreams.azure_fake import recorded


def options(**kw):
    return api.Options(name="az", type="azure_openai", base_url="https://res.openai.azure.com", api_key="k", **kw)


def test_deployment_urls():
    assert api.url(options(), "chat", "gpt-4o prod") == \
        "https://res.openai.azure.com/openai/deployments/gpt-4o%20prod/chat/completions?api-version=2024-10-21"
    assert api.url(options(api_version="2025-04-01-preview"), "embeddings", "emb") == \
        "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=2025-04-01-preview"
    assert api.url(options(api_version="v1"), "chat", "gpt-4o") == "https://res.openai.azure.com/openai/v1/chat/completions"
    o = api.Options(name="az", type="azure_openai", base_url="https://res.openai.azure.com/openai/", api_key="k")
    assert api.url(o, "chat", "d").startswith("https://res.openai.azure.com/openai/deployments/d/")


def test_headers_key_or_entra_token():
    assert api.headers(options())["api-key"] == "k"
    token = api.Options(name="az", type="azure_openai", base_url="https://x", azure_ad_token="tok")
    h = api.headers(token)
    assert h["authorization"] == "Bearer tok" and "api-key" not in h


@pytest.mark.parametrize("status,file,kind", [
    (429, "error_429.json", errors.RateLimited),
    (401, "error_401.json", errors.AuthFailed),
    (404, "error_404_deployment.json", errors.UpstreamFault),
    (400, "error_400_context.json", errors.BadRequest),
    (400, "error_content_filter.json", errors.BadRequest),
])
def test_error_kinds(status, file, kind):
    assert type(parse_error(status, recorded(file), {}, provider="az")) is kind


def test_content_filter_error_names_the_categories():
    err = parse_error(400, recorded("error_content_filter.json"), {}, provider="az")
    assert err.code == "content_filter" and err.param == "prompt" and err.type == "invalid_request_error"
    assert err.message.endswith("(filtered: jailbreak, violence)")


def test_rate_limit_keeps_retry_hint_and_drops_numeric_code():
    err = parse_error(429, recorded("error_429.json"), {"retry-after": "6"}, provider="az")
    assert err.retry_after == 6 and "exceeded token rate limit" in err.message


def test_deployment_not_found_fails_over():
    err = parse_error(404, recorded("error_404_deployment.json"), {}, provider="az")
    assert err.retryable and err.code == "upstream_deployment_not_found"
