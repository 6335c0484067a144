"""The Responses dialect's request and whole-answer translation, checked against the official `openai` SDK's
models and OpenAI's OpenAPI schemas, with recorded chat answers from tests/data/responses/."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseItem
from pydantic import TypeAdapter

from gateway.errors import ApiError
from gateway.protocol import chat_request
from gateway.responses.answer import new_id, response_from_chat
from gateway.responses.translate import HOSTED_TOOLS, input_items, to_chat
from tests.responses.schema import validate

DATA = Path(__file__).resolve().parents[1] / "data" / "responses"
CASES = ["text", "parallel_tool_calls", "text_then_tool_call", "length", "reasoning_content", "refusal"]
ITEMS = TypeAdapter(list[ResponseItem])


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def chat(request: dict, history: list[dict] | None = None) -> dict:
    return to_chat({"model": "gpt-4o", **request}, history or [])


def refused(request: dict, history: list[dict] | None = None) -> ApiError:
    with pytest.raises(ApiError) as caught:
        chat(request, history)
    assert caught.value.status == 400
    body = orjson.loads(caught.value.body())["error"]
    assert set(body) == {"message", "type", "param", "code"} and body["type"] == "invalid_request_error"
    return caught.value


def check_response(response: dict) -> Response:
    """Valid by OpenAI's schema and the SDK's model, with no field the SDK does not know."""
    validate(response, "Response")
    # `store` is in OpenAI's real answers though neither its document nor the SDK declares it
    assert set(response) - {"store"} <= set(Response.model_fields)
    return Response.model_validate(response)


# --- input ---

def test_a_string_input_is_one_user_message():
    assert chat({"input": "hi"}) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def test_instructions_lead_as_a_system_message():
    assert chat({"input": "hi", "instructions": "Be brief."})["messages"] == [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


def test_messages_without_a_type_and_with_every_role():
    items = [{"role": role, "content": f"{role} says"} for role in ("developer", "system", "user", "assistant")]
    assert chat({"input": items})["messages"] == [{"role": i["role"], "content": i["content"]} for i in items]


def test_content_parts_map_to_chat_parts():
    item = {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "What is in this image and file?"},
        {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
        {"type": "input_file", "filename": "notes.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
    ]}
    assert chat({"input": [item]})["messages"][0]["content"] == [
        {"type": "text", "text": "What is in this image and file?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "notes.pdf"}},
    ]


@pytest.mark.parametrize("part, param", [
    ({"type": "input_file", "file_id": "file-abc"}, "input[0].content[1].file_id"),
    ({"type": "input_image", "file_id": "file-abc"}, "input[0].content[1].file_id"),
    ({"type": "input_file", "file_url": "https://example.com/a.pdf"}, "input[0].content[1].file_url"),
    ({"type": "output_text", "text": "x"}, "input[0].content[1].type"),
    ({"text": "x"}, "input[0].content[1].type"),
    ({"type": "input_text"}, "input[0].content[1].text"),
    ({"type": "input_text", "text": 3}, "input[0].content[1].text"),
    ("x", "input[0].content[1]"),
])
def test_parts_a_chat_backend_cannot_take_are_refused_by_place(part, param):
    item = {"role": "user", "content": [{"type": "input_text", "text": "hi"}, part]}
    assert refused({"input": [item]}).param == param


def test_assistant_parts_become_assistant_text():
    item = {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed", "content": [
        {"type": "output_text", "text": "Hello", "annotations": []}, {"type": "refusal", "refusal": " no."}]}
    assert chat({"input": [item, {"role": "user", "content": "why"}]})["messages"][0] == {
        "role": "assistant", "content": "Hello no."}


def test_function_calls_in_a_row_are_one_assistant_turn_and_outputs_are_tool_messages():
    items = [
        {"role": "user", "content": "Weather in Paris and London?"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"London"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "12"},
                                                                         {"type": "input_text", "text": "C"}]},
    ]
    assert chat({"input": items})["messages"][1:] == [
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"London"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "call_2", "content": "12C"},
    ]


def test_a_function_call_on_its_own_is_an_assistant_turn_without_text():
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    assert chat({"input": [{"role": "user", "content": "go"}, call]})["messages"][1] == {
        "role": "assistant", "content": None, "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


def test_a_function_call_output_needs_its_call_earlier():
    output = {"type": "function_call_output", "call_id": "call_9", "output": "x"}
    assert refused({"input": [{"role": "user", "content": "hi"}, output]}).param == "input[1].call_id"
    call = {"type": "function_call", "call_id": "call_9", "name": "f", "arguments": "{}"}
    assert chat({"input": [output]}, history=[{"role": "user", "content": "hi"}, call])["messages"][-1] == {
        "role": "tool", "tool_call_id": "call_9", "content": "x"}


def test_an_item_reference_is_resolved_from_history():
    history = [{"type": "message", "id": "msg_a", "role": "user", "content": [{"type": "input_text", "text": "A"}]}]
    assert chat({"input": [{"type": "item_reference", "id": "msg_a"}]}, history)["messages"][-1] == {
        "role": "user", "content": [{"type": "text", "text": "A"}]}
    assert refused({"input": [{"type": "item_reference", "id": "msg_b"}]}, history).param == "input[0].id"


@pytest.mark.parametrize("input, param", [
    ([{"role": "user", "content": "x"}, {"role": "user", "content": "y"}, {"type": "web_search_call"}],
     "input[2].type"),
    ([{"content": "x"}], "input[0].type"),
    ([{"role": "tool", "content": "x"}], "input[0].role"),
    ([{"role": "user"}], "input[0].content"),
    ([{"role": "user", "content": 5}], "input[0].content"),
    ([{"type": "function_call", "name": "f", "arguments": "{}"}], "input[0].call_id"),
    ([{"type": "function_call", "call_id": "c", "name": "f", "arguments": {}}], "input[0].arguments"),
    ([[]], "input[0]"),
    ({"role": "user"}, "input"),
    (3, "input"),
    ([], "input"),
    ([{"type": "reasoning", "summary": []}], "input"),
])
def test_wrong_input_is_refused_by_place(input, param):
    assert refused({"input": input}).param == param


def test_input_is_required_unless_there_is_history():
    assert refused({}).param == "input"
    assert chat({}, history=[{"role": "user", "content": "hi"}])["messages"] == [{"role": "user", "content": "hi"}]


def test_instructions_of_earlier_responses_are_not_carried_over():
    # history holds items only; the caller passes no earlier instructions, and this request's come first
    messages = chat({"input": "again", "instructions": "New rules."}, [{"role": "user", "content": "hi"}])["messages"]
    assert messages[0] == {"role": "system", "content": "New rules."} and len(messages) == 3


# --- tools and settings ---

def test_function_tools_and_choices_map_to_chat():
    tool = {"type": "function", "name": "get_weather", "description": "Weather now",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": False}
    out = chat({"input": "hi", "tools": [tool, {"type": "function", "name": "noop"}], "tool_choice": "required",
                "parallel_tool_calls": False})
    assert out["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                          "parameters": tool["parameters"], "strict": False}},
        {"type": "function", "function": {"name": "noop"}}]
    assert out["tool_choice"] == "required" and out["parallel_tool_calls"] is False


@pytest.mark.parametrize("choice, expected", [
    ("auto", "auto"), ("none", "none"),
    ({"type": "function", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ({"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "f"}]},
     {"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [
         {"type": "function", "function": {"name": "f"}}]}}),
])
def test_tool_choice(choice, expected):
    assert chat({"input": "hi", "tool_choice": choice})["tool_choice"] == expected


@pytest.mark.parametrize("choice, param", [
    ("any", "tool_choice"), ({"type": "web_search_preview"}, "tool_choice.type"), ({"name": "f"}, "tool_choice.type"),
    ({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "mcp", "server_label": "x"}]},
     "tool_choice.tools[0].type"),
    ({"type": "function"}, "tool_choice.name"), (3, "tool_choice"),
])
def test_tool_choices_a_chat_backend_cannot_follow_are_refused(choice, param):
    assert refused({"input": "hi", "tool_choice": choice}).param == param


@pytest.mark.parametrize("kind", sorted(HOSTED_TOOLS) + ["tool_search", "unheard_of"])
def test_tools_a_chat_backend_cannot_run_are_refused_by_name_and_place(kind):
    tools = [{"type": "function", "name": f"f{i}"} for i in range(3)] + [{"type": kind}]
    err = refused({"input": "hi", "tools": tools})
    assert err.param == "tools[3]" and kind in err.message


@pytest.mark.parametrize("tool, param", [
    ({"type": "custom"}, "tools[0].name"), ({"type": "namespace", "name": "ns"}, "tools[0].tools"),
    ({"type": "namespace", "name": "ns", "tools": [{"type": "web_search"}]}, "tools[0].tools[0]"),
    ({"type": "function", "name": 3}, "tools[0].name"),
])
def test_malformed_custom_and_namespace_tools_are_refused(tool, param):
    assert refused({"input": "hi", "tools": [tool]}).param == param


def test_text_formats():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    assert "response_format" not in chat({"input": "hi", "text": {"format": {"type": "text"}}})
    assert chat({"input": "hi", "text": {"format": {"type": "json_object"}}})["response_format"] == {
        "type": "json_object"}
    fmt = {"type": "json_schema", "name": "answer", "schema": schema, "strict": True, "description": "An answer"}
    assert chat({"input": "hi", "text": {"format": fmt}})["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True,
                                               "description": "An answer"}}
    assert refused({"input": "hi", "text": {"format": {"type": "json_schema", "schema": schema}}}).param == \
        "text.format.name"
    assert refused({"input": "hi", "text": {"format": {"type": "yaml"}}}).param == "text.format.type"


def test_settings_pass_under_their_chat_names_and_responses_only_ones_stay_behind():
    out = chat({"input": "hi", "reasoning": {"effort": "low", "summary": "auto"}, "max_output_tokens": 300,
                "temperature": 0.2, "top_p": 0.9, "user": "u-1", "top_logprobs": 3, "stream": True,
                "metadata": {"k": "v"}, "store": False, "previous_response_id": "resp_1", "include": [],
                "truncation": "auto", "background": False})
    assert out == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low",
                   "max_completion_tokens": 300, "temperature": 0.2, "top_p": 0.9, "user": "u-1", "top_logprobs": 3,
                   "logprobs": True, "stream": True, "stream_options": {"include_usage": True}}
    assert "stream" not in chat({"input": "hi", "stream": False})


@pytest.mark.parametrize("request_, param", [
    ({"background": True}, "background"), ({"prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"conversation": "conv_1"}, "conversation"), ({"temperature": "hot"}, "temperature"),
    ({"temperature": 3}, "temperature"), ({"max_output_tokens": True}, "max_output_tokens"),
    ({"max_output_tokens": 0}, "max_output_tokens"), ({"stream": "yes"}, "stream"),
    ({"reasoning": {"effort": 1}}, "reasoning.effort"), ({"metadata": []}, "metadata"),
    ({"truncation": "middle"}, "truncation"), ({"instructions": ["x"]}, "instructions"),
    ({"tools": [{"type": "function"}]}, "tools[0].name"), ({"tools": {}}, "tools"),
])
def test_unsupported_or_wrong_settings_are_refused(request_, param):
    assert refused({"input": "hi", **request_}).param == param


# --- any JSON: a chat request or a 400, never a crash ---

_TEXT = st.text(max_size=8)
_SCALARS = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | _TEXT
JSONISH = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=12)


def _mostly(valid: Any) -> Any:
    """Valid six times in seven, any JSON otherwise: deep paths get reached, and every check gets hit."""
    return st.integers(0, 6).flatmap(lambda k: JSONISH if k == 0 else valid)


def _dicts(required: dict[str, Any], optional: dict[str, Any]) -> Any:
    return _mostly(st.fixed_dictionaries(required, optional=optional))


_PART = _dicts({"type": _mostly(st.sampled_from(["input_text", "input_image", "input_file", "output_text"]))},
               {"text": _mostly(_TEXT), "image_url": _mostly(_TEXT), "file_data": _mostly(_TEXT),
                "file_id": JSONISH, "detail": _mostly(st.sampled_from(["low", "auto"])), "refusal": JSONISH})
_CALL_ID = _mostly(st.sampled_from(["c1", "c2"]))
_ITEM = _dicts({"type": _mostly(st.sampled_from(["message", "function_call", "function_call_output",
                                                  "reasoning", "item_reference"]))}, {
    "role": _mostly(st.sampled_from(["user", "assistant", "system", "developer"])),
    "content": _mostly(_TEXT | st.lists(_PART, max_size=3)), "call_id": _CALL_ID, "id": _CALL_ID,
    "name": _mostly(_TEXT), "arguments": _mostly(_TEXT), "output": _mostly(_TEXT | st.lists(_PART, max_size=2))})
_TOOL = _dicts({"type": _mostly(st.sampled_from(["function", "function", "web_search", "custom"]))},
               {"name": _mostly(_TEXT), "parameters": _mostly(st.just({"type": "object"})),
                "strict": _mostly(st.booleans()), "description": _mostly(_TEXT)})
_SETTINGS = {
    "reasoning": _dicts({}, {"effort": _mostly(st.sampled_from(["low", "high"]))}),
    "max_output_tokens": _mostly(st.integers(1, 10_000)), "temperature": _mostly(st.floats(0, 2)),
    "top_p": _mostly(st.floats(0, 1)), "top_logprobs": _mostly(st.integers(0, 20)), "user": _mostly(_TEXT),
    "stream": _mostly(st.booleans()), "parallel_tool_calls": _mostly(st.booleans()),
    "metadata": _mostly(st.just({})), "store": _mostly(st.booleans()), "include": _mostly(st.just([])),
    "previous_response_id": _mostly(_TEXT), "truncation": _mostly(st.sampled_from(["auto", "disabled"])),
    "background": _mostly(st.just(False)), "prompt": _mostly(st.none()), "conversation": _mostly(st.none()),
}
REQUESTS = st.fixed_dictionaries({"model": st.just("gpt-4o"), "input": _mostly(_TEXT | st.lists(_ITEM, max_size=4))},
                                 optional={
    "instructions": _mostly(_TEXT),
    "tools": _mostly(st.lists(_TOOL, max_size=3)),
    "tool_choice": st.sampled_from(["auto", "none", "required"]) | _dicts(
        {"type": _mostly(st.sampled_from(["function", "allowed_tools"]))},
        {"name": _mostly(_TEXT), "mode": _mostly(st.sampled_from(["auto", "required"])),
         "tools": _mostly(st.lists(_TOOL, max_size=2))}),
    "text": _dicts({}, {"format": _dicts({"type": _mostly(st.sampled_from(["text", "json_object", "json_schema"]))},
                                         {"name": _mostly(_TEXT), "schema": _mostly(st.just({})),
                                          "strict": _mostly(st.booleans())}),
                        "verbosity": _mostly(st.sampled_from(["low", "high"]))}),
    **_SETTINGS})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(REQUESTS, st.just([]) | st.lists(_ITEM, max_size=3))
def test_any_json_gives_a_chat_request_or_a_400(request, history):
    try:
        out = to_chat(request, history)
    except ApiError as err:
        assert err.status == 400 and err.param
        return
    # what comes out is a chat request the gateway's own chat surface takes
    chat_request(json.dumps(out).encode())     # json: orjson refuses the 65-bit integers hypothesis likes


# --- input items, as listed and stored ---

def test_input_items_are_listed_as_openai_lists_them():
    items = input_items({"model": "m", "input": "hi"})
    assert items == [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}],
                      "id": items[0]["id"], "status": "completed"}]
    assert re.fullmatch(r"msg_[0-9a-f]{48}", items[0]["id"])
    ITEMS.validate_python(items)


def test_input_items_keep_given_ids_and_name_the_rest_by_type():
    request = {"model": "m", "input": [
        {"role": "assistant", "content": "Checking."},
        {"type": "function_call", "id": "fc_given", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
    ]}
    items = input_items(request)
    assert [i["id"][:4] for i in items] == ["msg_", "fc_g", "fco_"]
    assert items[0]["content"] == [{"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}]
    assert all(i["status"] == "completed" for i in items)
    ITEMS.validate_python(items)


def test_a_conversation_continues_from_stored_items():
    first = {"model": "gpt-4o", "input": "Weather in Tokyo?", "instructions": "Be brief."}
    answer = response_from_chat(recorded("text_then_tool_call"), first, response_id="resp_1", created_at=1,
                                model="gpt-4o")
    history = input_items(first) + answer["output"]
    output = {"type": "function_call_output", "call_id": "call_Hn3Jk8Lm1Qw5Er7Ty9Ui2Op4", "output": "22C, sunny"}
    assert chat({"input": [output], "previous_response_id": "resp_1"}, history)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Tokyo?"}]},
        {"role": "assistant", "content": "Let me look up the current weather in Tokyo for you.", "tool_calls": [
            {"id": "call_Hn3Jk8Lm1Qw5Er7Ty9Ui2Op4", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Tokyo"}'}}]},
        {"role": "tool", "tool_call_id": "call_Hn3Jk8Lm1Qw5Er7Ty9Ui2Op4", "content": "22C, sunny"},
    ]


# --- whole answers ---

def test_new_ids_are_random_hex_after_the_prefix():
    a, b = new_id("resp_"), new_id("resp_")
    assert a != b and re.fullmatch(r"resp_[0-9a-f]{48}", a)


@pytest.mark.parametrize("name", CASES)
def test_recorded_answers_make_valid_responses(name):
    completion = recorded(name)
    response = response_from_chat(completion, {"model": "gpt-4o", "input": "hi"}, response_id="resp_x",
                                  created_at=1764640800, model=completion["model"])
    parsed = check_response(response)
    message = completion["choices"][0]["message"]
    assert parsed.output_text == (message.get("content") or "")
    usage = completion["usage"]
    assert response["usage"] == {
        "input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
        "input_tokens_details": {"cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
                                 "cache_write_tokens": 0},
        "output_tokens_details": {"reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"]}}
    assert [i["type"] for i in response["output"]] == (
        ["reasoning"] * bool(message.get("reasoning_content"))
        + ["message"] * bool(message.get("content") or message.get("refusal"))
        + ["function_call"] * len(message.get("tool_calls") or []))


def test_a_text_answer_in_full():
    request = {"model": "gpt-4o-mini", "input": "hi", "instructions": "Be kind.", "temperature": 0.5,
               "metadata": {"k": "v"}, "store": False}
    response = response_from_chat(recorded("text"), request, response_id="resp_x", created_at=7, model="gpt-4o-mini")
    message = response["output"][0]
    assert message == {"id": message["id"], "type": "message", "status": "completed", "role": "assistant",
                       "content": [{"type": "output_text", "text": "Hello! How can I help you today?",
                                    "annotations": [], "logprobs": []}]}
    assert {k: v for k, v in response.items() if k not in ("output", "usage")} == {
        "id": "resp_x", "object": "response", "created_at": 7, "status": "completed", "background": False,
        "error": None, "incomplete_details": None, "instructions": "Be kind.", "max_output_tokens": None,
        "max_tool_calls": None, "model": "gpt-4o-mini", "parallel_tool_calls": True, "previous_response_id": None,
        "prompt_cache_key": None, "reasoning": {"effort": None, "summary": None}, "safety_identifier": None,
        "store": False, "temperature": 0.5, "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto", "tools": [], "top_logprobs": 0, "top_p": 1.0, "truncation": "disabled",
        "user": None, "metadata": {"k": "v"}, "service_tier": "default"}


def test_tool_calls_become_function_call_items():
    response = response_from_chat(recorded("parallel_tool_calls"), {"model": "m", "input": "hi"},
                                  response_id="resp_x", created_at=1, model="m")
    calls = response["output"]
    assert [(c["call_id"], c["name"], c["arguments"], c["status"]) for c in calls] == [
        ("call_Qd8vTzWq2Lh5mN1xR7yK3pB0", "get_weather", '{"city": "Paris", "unit": "celsius"}', "completed"),
        ("call_Zx4cVb7nM2aS9dF1gH6jK8lP", "get_weather", '{"city": "London", "unit": "celsius"}', "completed")]
    assert all(re.fullmatch(r"fc_[0-9a-f]{48}", c["id"]) for c in calls)


def test_a_cut_answer_is_incomplete_with_its_reason():
    response = response_from_chat(recorded("length"), {"model": "m", "input": "hi", "max_output_tokens": 10},
                                  response_id="resp_x", created_at=1, model="m")
    assert response["status"] == "incomplete" and response["output"][0]["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"} and response["max_output_tokens"] == 10
    filtered = {**recorded("text"), "choices": [{**recorded("text")["choices"][0], "finish_reason": "content_filter"}]}
    response = response_from_chat(filtered, {"model": "m", "input": "hi"}, response_id="r", created_at=1, model="m")
    assert response["incomplete_details"] == {"reason": "content_filter"}
    check_response(response)


def test_reasoning_comes_first_as_a_summary_and_refusals_as_refusal_parts():
    response = response_from_chat(recorded("reasoning_content"), {"model": "m", "input": "hi"},
                                  response_id="resp_x", created_at=1, model="m")
    assert response["output"][0]["summary"] == [
        {"type": "summary_text", "text": recorded("reasoning_content")["choices"][0]["message"]["reasoning_content"]}]
    assert "service_tier" not in response
    response = response_from_chat(recorded("refusal"), {"model": "m", "input": "hi"},
                                  response_id="resp_x", created_at=1, model="m")
    assert response["output"][0]["content"] == [
        {"type": "refusal", "refusal": "I'm sorry, I can't help with that request."}]


def test_settings_are_echoed_as_given():
    tool = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}
    fmt = {"type": "json_schema", "name": "a", "schema": {"type": "object"}, "strict": True}
    request = {"model": "m", "input": "hi", "tools": [tool], "tool_choice": {"type": "function", "name": "f"},
               "text": {"format": fmt}, "reasoning": {"effort": "high"}, "truncation": "auto", "user": "u",
               "previous_response_id": "resp_0", "parallel_tool_calls": False, "top_p": 0.5}
    response = response_from_chat(recorded("text"), request, response_id="resp_x", created_at=1, model="m")
    check_response(response)
    assert response["tools"] == [{**tool, "description": None, "strict": None}]
    assert (response["tool_choice"], response["text"]["format"], response["reasoning"], response["truncation"]) == (
        {"type": "function", "name": "f"}, fmt, {"effort": "high", "summary": None}, "auto")
    assert (response["user"], response["previous_response_id"], response["parallel_tool_calls"],
            response["top_p"]) == ("u", "resp_0", False, 0.5)


def test_an_answer_without_usage_has_null_usage():
    completion = {**recorded("text")}
    del completion["usage"]
    response = response_from_chat(completion, {"model": "m", "input": "hi"}, response_id="r", created_at=1, model="m")
    assert response["usage"] is None
    check_response(response)


# --- Codex's tool shapes: custom tools, namespaces, additional_tools items ---

CODEX_TOOLS = [
    {"type": "custom", "name": "apply_patch", "description": "Apply a patch.",
     "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
    {"type": "namespace", "name": "mcp_github", "description": "GitHub.", "tools": [
        {"type": "function", "name": "create_issue", "parameters": {"type": "object", "properties": {}}},
        {"type": "custom", "name": "comment"}]},
]


def test_custom_and_namespaced_tools_become_chat_functions():
    sent = chat({"input": "hi", "tools": CODEX_TOOLS})
    assert [t["function"]["name"] for t in sent["tools"]] == ["apply_patch", "mcp_github__create_issue",
                                                               "mcp_github__comment"]
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["input"]


def test_additional_tools_items_declare_tools_and_the_first_name_wins():
    sent = chat({"input": [{"type": "additional_tools", "tools": CODEX_TOOLS},
                           {"role": "user", "content": "go"},
                           {"type": "additional_tools", "tools": [{"type": "function", "name": "apply_patch"}]}]})
    assert [m["role"] for m in sent["messages"]] == ["user"]
    assert [t["function"]["name"] for t in sent["tools"]] == ["apply_patch", "mcp_github__create_issue",
                                                               "mcp_github__comment"]
    assert refused({"input": [{"type": "additional_tools", "tools": [{"type": "web_search"}]},
                              {"role": "user", "content": "x"}]}).param == "input[0].tools[0]"


def test_calls_come_back_as_the_items_the_client_declared():
    request = {"model": "m", "input": "hi", "tools": CODEX_TOOLS}
    answer = {"choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant", "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "apply_patch",
                                                      "arguments": '{"input": "*** Begin Patch"}'}},
        {"id": "c2", "type": "function", "function": {"name": "mcp_github__create_issue", "arguments": "{}"}},
        {"id": "c3", "type": "function", "function": {"name": "mcp_github__comment", "arguments": "not json"}}]}}]}
    out = response_from_chat(answer, request, response_id="resp_1", created_at=1, model="m")["output"]
    assert [(i["type"], i["name"], i.get("namespace")) for i in out] == [
        ("custom_tool_call", "apply_patch", None), ("function_call", "create_issue", "mcp_github"),
        ("custom_tool_call", "comment", "mcp_github")]
    assert out[0]["input"] == "*** Begin Patch" and out[2]["input"] == "not json"
    # ...and sent back, they are the same chat calls again, with their outputs
    again = chat({"input": [*out, {"type": "custom_tool_call_output", "call_id": "c1", "output": "done"},
                            {"type": "function_call_output", "call_id": "c2", "output": "#1"},
                            {"type": "custom_tool_call_output", "call_id": "c3", "output": "ok"}],
                  "tools": CODEX_TOOLS})
    calls = again["messages"][0]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["apply_patch", "mcp_github__create_issue",
                                                      "mcp_github__comment"]
    assert orjson.loads(calls[0]["function"]["arguments"]) == {"input": "*** Begin Patch"}
    assert [m["role"] for m in again["messages"]] == ["assistant", "tool", "tool", "tool"]
