"""The openai SDK → gateway → a fake Azure OpenAI resource."""
from __future__ import annotations

import openai
import pytest

from tests.harness import base_config, chat_model
from tests.upstreams.azure_fake import FakeAzure, recorded

MSG = [{"role": "user", "content": "Bonjour?"}]


@pytest.fixture
def azure(loop):
    with FakeAzure(loop) as fake:
        yield fake


def provider(fake, **kw):
    return {"name": "az", "type": "azure_openai", "base_url": fake.base, "api_key": fake.key, **kw}


def test_chat_through_a_deployment(start_gateway, azure):
    gw = start_gateway(base_config([provider(azure)],
                                   [chat_model("fast-chat", {"provider": "az", "model": "gpt4o-prod"})]))
    raw = gw.client().chat.completions.with_raw_response.create(model="fast-chat", messages=MSG)
    assert raw.http_response.content == recorded("chat_completion.json")
    assert raw.parse().choices[0].message.content == "Bonjour from Azure."
    assert raw.headers["x-gateway-provider"] == "az"
    assert azure.deployments_called == [("gpt4o-prod", "2024-10-21")]
    assert azure.seen[-1].headers["api-key"] == "azure-key"
    assert "Authorization" not in azure.seen[-1].headers


def test_stream_with_filter_results_and_usage(start_gateway, azure):
    gw = start_gateway(base_config([provider(azure)], [chat_model("fast-chat", {"provider": "az", "model": "dep"})]))
    chunks = list(gw.client().chat.completions.create(model="fast-chat", messages=MSG, stream=True,
                                                       stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Bonjour"
    assert chunks[-1].usage.total_tokens == 14


def test_v1_api(start_gateway, azure):
    gw = start_gateway(base_config([provider(azure, api_version="v1")],
                                   [chat_model("m", {"provider": "az", "model": "dep"})]))
    gw.client().chat.completions.create(model="m", messages=MSG)
    assert azure.seen[-1].path == "/openai/v1/chat/completions" and azure.seen[-1].json["model"] == "dep"


def test_content_filter_reaches_the_client_as_400(start_gateway, azure):
    gw = start_gateway(base_config([provider(azure)], [chat_model("m", {"provider": "az", "model": "dep"})]))
    azure.fail(400, recorded("error_content_filter.json"))
    with pytest.raises(openai.BadRequestError) as e:
        gw.client().chat.completions.create(model="m", messages=MSG)
    assert e.value.code == "content_filter" and "jailbreak" in e.value.message


def test_azure_429_fails_over_to_the_next_provider(start_gateway, azure):
    gw = start_gateway(base_config([provider(azure), {"name": "mock", "type": "mock"}],
                                   [chat_model("m", {"provider": "az", "model": "dep"}, {"provider": "mock"})]))
    azure.fail(429, recorded("error_429.json"), headers={"retry-after": "6"})
    raw = gw.client().chat.completions.with_raw_response.create(model="m", messages=MSG)
    assert raw.headers["x-gateway-provider"] == "mock" and raw.headers["x-gateway-attempts"] == "2"


def test_wrong_key_is_a_gateway_fault_not_the_clients(start_gateway, azure):
    gw = start_gateway(base_config([{**provider(azure), "api_key": "wrong"}],
                                   [chat_model("m", {"provider": "az"}, retries=0)]))
    with pytest.raises(openai.APIStatusError) as e:
        gw.client().chat.completions.create(model="m", messages=MSG)
    assert e.value.status_code == 502 and e.value.code == "upstream_auth_failed"
    assert "wrong" not in e.value.response.text


def test_embeddings(start_gateway, azure):
    gw = start_gateway(base_config([provider(azure)], [{"name": "emb", "kind": "embedding", "route": {
        "targets": [{"provider": "az", "model": "embed-dep"}]}}]))
    e = gw.client().embeddings.create(model="emb", input="x", encoding_format="float")
    assert len(e.data[0].embedding) == 3 and azure.deployments_called[-1][0] == "embed-dep"
