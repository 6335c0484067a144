"""Conversation state shared by replicas through a real redis-server: a
response made on one is continued, read and deleted on the other."""
from __future__ import annotations

import openai
import pytest

from tests.harness import base_config, chat_model

WEATHER = {"type": "function", "name": "get_weather",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def test_previous_response_id_across_two_replicas(start_gateway, redis_url):
    def replica():
        return start_gateway(base_config([{"name": "mock", "type": "mock"}],
                                         [chat_model("mock-chat", {"provider": "mock"})],
                                         state={"redis_url": redis_url}))
    a, b = replica(), replica()
    first = a.client().responses.create(model="mock-chat", input="weather?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    second = b.client().responses.create(model="mock-chat", previous_response_id=first.id, tools=[WEATHER],
                                         input=[{"type": "function_call_output", "call_id": call.call_id,
                                                 "output": "sunny"}])
    assert second.output_text                       # b rebuilt the call and its result from what a stored
    assert a.client().responses.retrieve(second.id).output_text == second.output_text
    assert [i.type for i in b.client().responses.input_items.list(second.id).data] == ["function_call_output"]
    b.client().responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        a.client().responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError):     # the chain is broken: a clear 400, as OpenAI answers
        a.client().responses.create(model="mock-chat", previous_response_id=second.id, input="more")
