"""/v1/responses through the official openai SDK over loopback: whole answers,
streams, tools round trips, stored responses and their errors, on mock-chat."""
from __future__ import annotations

import openai
import pytest

from tests.harness import base_config, chat_model

WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


@pytest.fixture
def gw(start_gateway):
    cfg = base_config([{"name": "mock", "type": "mock"}], [chat_model("mock-chat", {"provider": "mock"})])
    cfg["auth"]["keys"].append({"name": "other", "key": "sk-other", "models": ["*"]})
    return start_gateway(cfg)


def test_create_answers_a_response(gw):
    raw = gw.client().responses.with_raw_response.create(model="mock-chat", input="hello there")
    r = raw.parse()
    assert r.id.startswith("resp_") and r.object == "response" and r.status == "completed"
    assert r.model == "mock-chat"
    assert r.output_text.startswith("mock")
    assert r.usage is not None and r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert raw.headers["x-gateway-provider"] == "mock" and "x-gateway-overhead-ms" in raw.headers
    assert raw.headers["content-type"].startswith("application/json")


def test_a_list_of_items_and_instructions(gw):
    r = gw.client().responses.create(model="mock-chat", instructions="Answer briefly.", input=[
        {"role": "user", "content": "one"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "two"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "three"}]}])
    assert r.status == "completed" and r.output_text
    assert r.instructions == "Answer briefly."


def test_stream_has_the_typed_events_in_order(gw):
    with gw.client().responses.stream(model="mock-chat", input="stream me a few words") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.content_part.added", "response.output_text.delta",
                 "response.output_text.done", "response.content_part.done", "response.output_item.done"):
        assert kind in kinds, kinds
    assert final.output_text.startswith("mock") and final.status == "completed"
    assert gw.client().responses.retrieve(final.id).output_text == final.output_text


def test_stream_sequence_numbers_count_from_zero(gw):
    events = list(gw.client().responses.create(model="mock-chat", input="count", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_a_tool_round_trip_by_previous_response_id(gw):
    client = gw.client()
    first = client.responses.create(model="mock-chat", input="weather in Paris?", tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and calls[0].call_id
    second = client.responses.create(model="mock-chat", previous_response_id=first.id, tools=[WEATHER], input=[
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21C"}])
    assert second.previous_response_id == first.id
    assert second.output_text and not [i for i in second.output if i.type == "function_call"]


def test_a_tool_round_trip_sending_everything_back(gw):
    """Without state (store false), the client sends the call and its output itself."""
    client = gw.client()
    first = client.responses.create(model="mock-chat", input="weather?", tools=[WEATHER], store=False)
    call = next(item for item in first.output if item.type == "function_call")
    second = client.responses.create(model="mock-chat", tools=[WEATHER], store=False, input=[
        {"role": "user", "content": "weather?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "rain"}])
    assert second.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)          # store false: nothing kept


def test_stored_responses_are_read_listed_and_deleted(gw):
    client = gw.client()
    r = client.responses.create(model="mock-chat", input=[{"role": "user", "content": "a"},
                                                           {"role": "user", "content": "b"}])
    assert client.responses.retrieve(r.id).output_text == r.output_text
    items = client.responses.input_items.list(r.id)
    assert [i.content[0].text for i in items.data] == ["b", "a"]           # newest first, as OpenAI lists
    ascending = client.responses.input_items.list(r.id, order="asc", limit=1)
    assert [i.content[0].text for i in ascending.data] == ["a"] and ascending.has_more
    assert client.responses.delete(r.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(r.id)


def test_another_keys_response_does_not_exist(gw):
    mine = gw.client().responses.create(model="mock-chat", input="private")
    theirs = gw.client(key="sk-other")
    with pytest.raises(openai.NotFoundError):
        theirs.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.delete(mine.id)
    with pytest.raises(openai.BadRequestError) as err:
        theirs.responses.create(model="mock-chat", input="x", previous_response_id=mine.id)
    assert err.value.body["param"] == "previous_response_id"
    assert gw.client().responses.retrieve(mine.id).id == mine.id           # still there for its owner


@pytest.mark.parametrize("body, param", [
    ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0]"),
    ({"input": "x", "tools": [WEATHER, {"type": "file_search", "vector_store_ids": ["vs_1"]}]}, "tools[1]"),
    ({"input": "x", "previous_response_id": "resp_nope"}, "previous_response_id"),
    ({"input": [{"type": "function_call_output", "call_id": "call_x", "output": "y"}]}, None),
    ({"input": [{"type": "no_such_item"}]}, None),
    ({"input": 7}, "input"),
    ({"input": "x", "stream": "yes"}, "stream"),
    ({"input": "x", "background": True}, "background"),
])
def test_bad_input_is_a_400_in_openais_shape(gw, body, param):
    r = gw.http().post("/v1/responses", json={"model": "mock-chat", **body})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param is not None:
        assert error["param"] == param, error


def test_a_hosted_tool_is_named_in_the_refusal(gw):
    with pytest.raises(openai.BadRequestError) as err:
        gw.client().responses.create(model="mock-chat", input="x", tools=[{"type": "web_search"}])
    assert "web_search" in err.value.message


def test_unknown_paths_and_methods(gw):
    http = gw.http()
    assert http.get("/v1/responses/resp_nope").status_code == 404
    assert http.get("/v1/responses/resp_nope/nothing").status_code == 404
    assert http.put("/v1/responses/resp_nope").status_code == 405
    assert http.get("/v1/responses").status_code == 405
    assert gw.http(key="sk-wrong").get("/v1/responses/resp_x").status_code == 401


def test_input_tokens_counts_an_estimate(gw):
    r = gw.http().post("/v1/responses/input_tokens", json={"model": "mock-chat", "input": "hello " * 100})
    assert r.status_code == 200, r.text
    assert r.json()["object"] == "response.input_tokens" and r.json()["input_tokens"] > 100


def test_refused_requests_store_nothing(gw, loop):
    http = gw.http()
    for body in ({"input": "x", "tools": [{"type": "web_search"}]}, {"input": [{"type": "no_such_item"}]},
                 {"input": "x", "previous_response_id": "resp_nope"}, {"input": "x", "max_output_tokens": 0},
                 {"input": [{"type": "function_call_output", "call_id": "c", "output": "y"}]}):
        assert http.post("/v1/responses", json={"model": "mock-chat", **body}).status_code == 400
    store = gw.runtime.store
    count = loop.run(store._db.run(lambda db: db.execute("SELECT count(*) FROM responses").fetchone()[0]))
    assert count == 0
