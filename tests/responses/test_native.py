"""/v1/responses on providers that speak it themselves: the client's body goes
up with only `model` changed and the answer comes back untouched; state
follows the provider that holds it, and failover translates."""
from __future__ import annotations

import orjson
import pytest

from tests.harness import base_config, chat_model


def openai(fake, name: str, **extra) -> dict:
    return {"name": name, "type": "openai", "base_url": fake.url, "api_key": "sk-up", **extra}


@pytest.fixture
def two(start_gateway, fake_openai):
    """Model `gpt` on fake A; `gpt-b` on fake B; `gpt-then-mock`: A, then the mock."""
    a, b = fake_openai("a"), fake_openai("b")
    gw = start_gateway(base_config([openai(a, "oa"), openai(b, "ob"), {"name": "mock", "type": "mock"}], [
        chat_model("gpt", {"provider": "oa", "model": "gpt-4.1-mini"}, retries=0),
        chat_model("gpt-b", {"provider": "ob", "model": "gpt-4.1"}, retries=0),
        chat_model("gpt-then-mock", {"provider": "oa", "model": "gpt-4.1-mini"}, {"provider": "mock"}, retries=1)]))
    return gw, a, b


def test_the_body_goes_up_as_sent_and_the_answer_comes_back(two):
    gw, a, _ = two
    raw = gw.client().responses.with_raw_response.create(
        model="gpt", input="tell me a story", instructions="Be brief.", metadata={"k": "v"}, temperature=0.3)
    r = raw.parse()
    sent = a.seen[-1]
    assert sent.path == "/v1/responses"
    assert orjson.loads(sent.body) == {"model": "gpt-4.1-mini", "input": "tell me a story",
                                       "instructions": "Be brief.", "metadata": {"k": "v"}, "temperature": 0.3}
    assert r.id == a.responses_made[-1] and r.model == "gpt-4.1-mini-2025-04-14"    # the upstream's own
    assert r.output_text.startswith("In a peaceful grove")
    assert raw.headers["x-gateway-provider"] == "oa"
    assert gw.client().responses.retrieve(r.id).output_text == r.output_text       # kept by the gateway too


def test_a_native_stream_passes_through_and_is_kept(two):
    gw, a, _ = two
    with gw.client().responses.stream(model="gpt", input="hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.id == a.responses_made[-1] and final.output_text == "Hi there! How can I assist you today?"
    assert gw.client().responses.retrieve(final.id).output_text == final.output_text


def test_previous_response_id_goes_natively_to_the_provider_holding_it(two):
    gw, a, _ = two
    first = gw.client().responses.create(model="gpt", input="one")
    second = gw.client().responses.create(model="gpt", input="two", previous_response_id=first.id)
    assert orjson.loads(a.seen[-1].body)["previous_response_id"] == first.id     # as sent: the upstream knows it
    assert second.output_text


def test_another_provider_continues_a_native_conversation_by_translation(two):
    gw, a, b = two
    first = gw.client().responses.create(model="gpt", input="remember the word 'lantern'")
    second = gw.client().responses.create(model="gpt-b", input="which word?", previous_response_id=first.id)
    assert b.seen[-1].path == "/v1/chat/completions"          # b never saw that id: it gets the history
    messages = orjson.loads(b.seen[-1].body)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert "lantern" in messages[0]["content"] if isinstance(messages[0]["content"], str) \
        else "lantern" in orjson.dumps(messages[0]["content"]).decode()
    assert second.output_text


def test_failover_from_a_native_provider_translates_for_the_next(two):
    gw, a, _ = two
    a.fail(500, '{"error": {"message": "boom", "type": "server_error"}}')
    r = gw.client().responses.with_raw_response.create(model="gpt-then-mock", input="hi")
    assert r.headers["x-gateway-provider"] == "mock" and r.headers["x-gateway-attempts"] == "2"
    answered = r.parse()
    assert answered.id.startswith("resp_") and answered.output_text.startswith("mock")
    a.ok()
    # The mock's answer is held by no upstream: the next turn goes translated, even to OpenAI.
    gw.client().responses.create(model="gpt-then-mock", input="again", previous_response_id=answered.id)
    assert a.seen[-1].path == "/v1/chat/completions"


def test_openai_compatible_servers_get_chat_unless_told(start_gateway, fake_openai):
    fake = fake_openai("c")
    gw = start_gateway(base_config([
        {"name": "local", "type": "openai_compatible", "base_url": fake.url},
        {"name": "local-native", "type": "openai_compatible", "base_url": fake.url, "responses": "native"}], [
        chat_model("local", {"provider": "local", "model": "m"}),
        chat_model("local-native", {"provider": "local-native", "model": "m"})]))
    gw.client().responses.create(model="local", input="hi")
    assert fake.seen[-1].path == "/v1/chat/completions"
    gw.client().responses.create(model="local-native", input="hi")
    assert fake.seen[-1].path == "/v1/responses"


def test_openai_told_chat_translates(start_gateway, fake_openai):
    fake = fake_openai("d")
    gw = start_gateway(base_config([openai(fake, "oa", responses="chat")],
                                   [chat_model("gpt", {"provider": "oa", "model": "gpt-4.1-mini"})]))
    r = gw.client().responses.create(model="gpt", input="hi")
    assert fake.seen[-1].path == "/v1/chat/completions" and r.output_text
