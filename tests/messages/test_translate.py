"""The Messages dialect's request and whole-answer translation, checked against the official `anthropic` SDK's
models, with recorded chat answers from tests/data/messages/."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from anthropic import Anthropic
from anthropic.types import Message
from anthropic.types.shared import ErrorResponse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import ApiError
from gateway.messages.translate import (
    MessagesError,
    count_tokens_estimate,
    error_body,
    message_from_chat,
    new_id,
    to_chat,
)
from gateway.protocol import chat_request

DATA = Path(__file__).resolve().parents[1] / "data" / "messages"
CASES = ["text", "parallel_tool_calls", "text_then_tool_call", "length", "reasoning_content", "stop_sequence",
         "sequential_tool_calls"]
USER = {"role": "user", "content": "hi"}


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def chat(request: dict) -> dict:
    return to_chat({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [USER], **request})


def refused(request: dict) -> str:
    """The message of the 400 that the request gets, checked to be in Anthropic's envelope."""
    with pytest.raises(MessagesError) as caught:
        to_chat(request)
    err = caught.value
    assert (err.status, err.type) == (400, "invalid_request_error")
    body = orjson.loads(err.body())
    assert body == {"type": "error", "error": {"type": "invalid_request_error", "message": err.message}}
    ErrorResponse.model_validate(body)
    return err.message


def base(**fields: Any) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [USER], **fields}


# --- messages ---

def test_a_plain_request():
    assert to_chat(base()) == {"model": "claude-sonnet-4-5", "max_completion_tokens": 100,
                               "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("system, expected", [
    ("Be brief.", "Be brief."),
    ([{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
      {"type": "text", "text": "Be brief."}], "You are Claude Code.\nBe brief."),
])
def test_the_system_prompt_leads_as_a_system_message(system, expected):
    assert chat({"system": system})["messages"] == [{"role": "system", "content": expected},
                                                    {"role": "user", "content": "hi"}]
    assert chat({"system": ""})["messages"] == [{"role": "user", "content": "hi"}]


def test_content_blocks_map_to_chat_parts():
    content = [
        {"type": "text", "text": "What is in these?", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
         "title": "notes.pdf"},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "Plain notes."}},
    ]
    assert chat({"messages": [{"role": "user", "content": content}]})["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "file", "file": {"filename": "notes.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
        {"type": "file", "file": {"filename": "document.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
        {"type": "text", "text": "Plain notes."},
    ]


CONVERSATION = [
    {"role": "user", "content": "Weather in Paris and London?"},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Two cities: two calls.", "signature": "EqQBCkYIBRgCKkA"},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {"type": "text", "text": "Checking both."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"city": "London"}}]},
    {"role": "user", "content": [
        {"type": "text", "text": "Here they are."},
        {"type": "tool_result", "tool_use_id": "toolu_02", "content": [{"type": "text", "text": "12"},
                                                                       {"type": "text", "text": "C"}]},
        {"type": "tool_result", "tool_use_id": "toolu_01", "content": "Timed out", "is_error": True}]},
]


def test_tool_uses_become_tool_calls_and_results_tool_messages_before_the_rest_of_the_turn():
    assert chat({"messages": CONVERSATION})["messages"][1:] == [
        {"role": "assistant", "content": "Checking both.", "tool_calls": [
            {"id": "toolu_01", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_02", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"London"}'}}]},
        {"role": "tool", "tool_call_id": "toolu_02", "content": "12\nC"},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "Error: Timed out"},
        {"role": "user", "content": [{"type": "text", "text": "Here they are."}]},
    ]


def test_images_in_a_tool_result_follow_in_a_user_message():
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}}
    messages = [USER, {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read",
                                                         "input": {"file_path": "/a.jpg"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                              "content": [{"type": "text", "text": "Read it."}, image]}]}]
    assert chat({"messages": messages})["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "Read it."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]}]


def test_a_system_turn_stays_in_its_place():
    messages = [USER, {"role": "system", "content": [{"type": "text", "text": "Now in French."}]}]
    assert chat({"messages": messages})["messages"][1] == {"role": "system", "content": "Now in French."}


def test_an_assistant_turn_of_thinking_only_is_left_out_and_string_content_stays_a_string():
    messages = [USER, {"role": "assistant", "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}]},
                {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Go on"}]
    assert chat({"messages": messages})["messages"] == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Go on"}]


def test_a_tool_use_without_text_has_no_content():
    messages = [USER, {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]
    assert chat({"messages": messages})["messages"][1] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "t", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}


# --- tools and settings ---

TOOL = {"name": "get_weather", "description": "Weather now",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        "cache_control": {"type": "ephemeral"}}


def test_client_tools_become_chat_functions():
    out = chat({"tools": [TOOL, {"type": "custom", "name": "noop", "input_schema": {"type": "object"},
                                 "strict": True}]})
    assert out["tools"] == [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather now",
                                          "parameters": TOOL["input_schema"]}},
        {"type": "function", "function": {"name": "noop", "parameters": {"type": "object"}, "strict": True}}]


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, {"tool_choice": "auto"}),
    ({"type": "any"}, {"tool_choice": "required"}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "tool", "name": "get_weather"}, {"tool_choice": {"type": "function",
                                                               "function": {"name": "get_weather"}}}),
    ({"type": "any", "disable_parallel_tool_use": True}, {"tool_choice": "required", "parallel_tool_calls": False}),
    ({"type": "auto", "disable_parallel_tool_use": False}, {"tool_choice": "auto"}),
])
def test_tool_choice(choice, expected):
    out = chat({"tools": [TOOL], "tool_choice": choice})
    assert {k: v for k, v in out.items() if k in ("tool_choice", "parallel_tool_calls")} == expected
    assert "tool_choice" not in chat({"tool_choice": choice})   # chat backends refuse a choice without tools


@pytest.mark.parametrize("budget, effort", [(1024, "low"), (4095, "low"), (4096, "medium"), (16383, "medium"),
                                            (16384, "high"), (64000, "high")])
def test_a_thinking_budget_becomes_a_reasoning_effort(budget, effort):
    assert chat({"thinking": {"type": "enabled", "budget_tokens": budget}})["reasoning_effort"] == effort


@pytest.mark.parametrize("thinking", [{"type": "disabled"}, {"type": "adaptive"}])
def test_thinking_without_a_budget_leaves_the_effort_to_the_model(thinking):
    assert "reasoning_effort" not in chat({"thinking": thinking})


def test_settings_pass_under_their_chat_names_and_the_rest_stay_behind():
    out = chat({"stop_sequences": ["\n\nHuman:", "END"], "temperature": 0.2, "top_p": 0.9, "top_k": 40,
                "metadata": {"user_id": "u-1"}, "stream": True, "service_tier": "auto",
                "cache_control": {"type": "ephemeral"}, "max_tokens": 4096})
    assert out == {"model": "claude-sonnet-4-5", "max_completion_tokens": 4096,
                   "messages": [{"role": "user", "content": "hi"}], "stop": ["\n\nHuman:", "END"],
                   "temperature": 0.2, "top_p": 0.9, "user": "u-1", "stream": True,
                   "stream_options": {"include_usage": True}}
    assert "stream" not in chat({"stream": False}) and "stop" not in chat({"stop_sequences": []})
    assert "user" not in chat({"metadata": {"user_id": None}})


def test_output_config_sets_effort_and_format():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    out = chat({"output_config": {"effort": "max", "format": {"type": "json_schema", "schema": schema}}})
    assert out["reasoning_effort"] == "high"
    assert out["response_format"] == {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


# --- what is refused, and how it says so ---

@pytest.mark.parametrize("request_, starts", [
    ({"model": "m", "messages": [USER]}, "max_tokens: Field required"),
    ({"model": "m", "max_tokens": 0, "messages": [USER]}, "max_tokens: Input should be greater than or equal to 1"),
    ({"model": "m", "max_tokens": True, "messages": [USER]}, "max_tokens: Input should be an integer"),
    ({"model": "m", "max_tokens": 1.5, "messages": [USER]}, "max_tokens: Input should be an integer"),
    ({"max_tokens": 1, "messages": [USER]}, "model: Field required"),
    ({"model": 3, "max_tokens": 1, "messages": [USER]}, "model: Input should be a string"),
    ({"model": "m", "max_tokens": 1}, "messages: Field required"),
    ({"model": "m", "max_tokens": 1, "messages": []}, "messages: at least one message"),
    ({"model": "m", "max_tokens": 1, "messages": {}}, "messages: Input should be an array"),
    (base(messages=[{"role": "tool", "content": "x"}]), "messages.0.role: Input should be 'user', 'assistant'"),
    (base(messages=[{"role": "user"}]), "messages.0.content: Field required"),
    (base(messages=[{"role": "user", "content": []}]), "messages.0.content: at least one content block"),
    (base(messages=[USER, {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "video"}]}]),
     "messages.1.content.1.type: block type 'video' is not supported"),
    (base(messages=[{"role": "user", "content": [{"text": "a"}]}]), "messages.0.content.0.type: Field required"),
    (base(messages=[{"role": "user", "content": [{"type": "text"}]}]), "messages.0.content.0.text: Field required"),
    (base(messages=[{"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]),
     "messages.0.content.0.type: block type 'tool_use' is not supported in a user message"),
    (base(messages=[USER, {"role": "assistant", "content": [{"type": "image", "source": {}}]}]),
     "messages.1.content.0.type: block type 'image' is not supported in a assistant message"),
    (base(messages=[{"role": "user", "content": [{"type": "search_result", "source": "x", "title": "t",
                                                  "content": []}]}]), "messages.0.content.0.type"),
    (base(messages=[USER, {"role": "assistant", "content": [{"type": "server_tool_use", "id": "s",
                                                             "name": "web_search", "input": {}}]}]),
     "messages.1.content.0.type: block type 'server_tool_use'"),
    (base(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9",
                                                  "content": "x"}]}]),
     "messages.0.content.0.tool_use_id: no earlier tool_use block has the id 'toolu_9'"),
    (base(messages=[USER, {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                                             "input": "{}"}]}]),
     "messages.1.content.0.input: Input should be an object"),
    (base(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "base64",
                                                                              "media_type": "image/bmp",
                                                                              "data": "x"}}]}]),
     "messages.0.content.0.source.media_type: Input should be one of image/jpeg"),
    (base(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]),
     "messages.0.content.0.source.type: An image source of type 'file' is not supported by this gateway"),
    (base(messages=[{"role": "user", "content": [{"type": "document", "source": {"type": "url",
                                                                                 "url": "https://a/b.pdf"}}]}]),
     "messages.0.content.0.source.type: A document source of type 'url' is not supported"),
    (base(system=[{"type": "image"}]), "system.0.type: Input should be 'text'"),
    (base(system=3), "system: Input should be an array"),
    (base(tools=[{"name": "f"}]), "tools.0.input_schema: Field required"),
    (base(tools=[{"input_schema": {}}]), "tools.0.name: Field required"),
    (base(tools={}), "tools: Input should be an array"),
    (base(tool_choice={"type": "required"}), "tool_choice.type: Input should be one of auto, any, tool, none"),
    (base(tool_choice={"type": "tool"}), "tool_choice.name: Field required"),
    (base(tool_choice="auto"), "tool_choice: Input should be an object"),
    (base(thinking={"type": "enabled"}), "thinking.budget_tokens: Field required"),
    (base(thinking={"type": "on"}), "thinking.type: Input should be one of"),
    (base(temperature=1.5), "temperature: Input should be between 0 and 1"),
    (base(top_k=-1), "top_k: Input should be greater than or equal to 0"),
    (base(stop_sequences="END"), "stop_sequences: Input should be an array"),
    (base(stop_sequences=["a", 1]), "stop_sequences.1: Input should be a string"),
    (base(metadata={"user_id": 3}), "metadata.user_id: Input should be a string"),
    (base(stream="yes"), "stream: Input should be a boolean"),
    (base(mcp_servers=[{"type": "url", "url": "https://mcp.example.com", "name": "x"}]), "mcp_servers:"),
])
def test_wrong_requests_are_a_400_naming_the_place(request_, starts):
    assert refused(request_).startswith(starts)


@pytest.mark.parametrize("tool", [
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
    {"type": "bash_20250124", "name": "bash"},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
    {"type": "code_execution_20250825", "name": "code_execution"},
    {"type": "computer_20250124", "name": "computer", "display_width_px": 1024, "display_height_px": 768},
    {"type": "web_fetch_20250910", "name": "web_fetch"},
    {"type": "memory_20250818", "name": "memory"},
    {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
])
def test_server_tools_are_refused_by_name(tool):
    message = refused(base(tools=[TOOL, tool]))
    assert message.startswith("tools.1: server tool") and tool["type"] in message and repr(tool["name"]) in message


def test_error_body_is_anthropics_envelope():
    body = error_body("overloaded_error", "Overloaded")
    assert orjson.loads(body) == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    ErrorResponse.model_validate_json(body)


def test_what_the_anthropic_sdk_sends_is_taken():
    """A request as the official SDK puts it on the wire, with every kind of block this dialect serves."""
    sent: list[bytes] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.content)
        return httpx2.Response(200, json=message_from_chat(recorded("text"), message_id="msg_1", model="m"))

    client = Anthropic(api_key="x", base_url="http://gateway.test",
                       http_client=httpx2.Client(transport=httpx2.MockTransport(answer)))
    reply = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=512, system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": CONVERSATION[0]["content"]},
                  {"role": "assistant", "content": CONVERSATION[1]["content"]},
                  {"role": "user", "content": CONVERSATION[2]["content"]}],
        tools=[TOOL], tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        thinking={"type": "enabled", "budget_tokens": 2048}, stop_sequences=["END"], metadata={"user_id": "u"},
        extra_body={"temperature": 0.5, "top_k": 5})    # this SDK no longer declares them; older clients send them
    assert reply.content[0].type == "text"
    out = to_chat(orjson.loads(sent[0]))
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert (out["reasoning_effort"], out["parallel_tool_calls"], out["stop"], out["user"], out["temperature"]) == (
        "low", False, ["END"], "u", 0.5)


def test_count_tokens_estimate_is_about_four_bytes_a_token():
    request = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}], "tools": [TOOL]}
    chat_form = to_chat({**request, "max_tokens": 1})
    size = len(orjson.dumps({"messages": chat_form["messages"], "tools": chat_form["tools"]}))
    assert count_tokens_estimate(request) == -(-size // 4) and 100 < count_tokens_estimate(request) < 200
    assert count_tokens_estimate({"model": "m", "messages": [{"role": "user", "content": ""}]}) >= 1
    with pytest.raises(MessagesError, match="^messages: Field required"):
        count_tokens_estimate({"model": "m"})


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


_ID = _mostly(st.sampled_from(["t1", "t2"]))
_SOURCE = _dicts({"type": _mostly(st.sampled_from(["base64", "url", "text", "file"]))}, {
    "media_type": _mostly(st.sampled_from(["image/png", "application/pdf", "text/plain"])), "data": _mostly(_TEXT),
    "url": _mostly(_TEXT)})
_INNER = _dicts({"type": _mostly(st.sampled_from(["text", "image", "document"]))},
                {"text": _mostly(_TEXT), "source": _SOURCE, "title": _mostly(_TEXT)})
_BLOCK = _dicts({"type": _mostly(st.sampled_from(["text", "image", "document", "tool_use", "tool_result",
                                                   "thinking", "redacted_thinking", "search_result"]))}, {
    "text": _mostly(_TEXT), "source": _SOURCE, "id": _ID, "tool_use_id": _ID, "name": _mostly(_TEXT),
    "input": _mostly(st.dictionaries(_TEXT, _TEXT, max_size=2)), "is_error": _mostly(st.booleans()),
    "content": _mostly(_TEXT | st.lists(_INNER, max_size=2)), "thinking": _mostly(_TEXT)})
_MESSAGE = _dicts({"role": _mostly(st.sampled_from(["user", "assistant", "system"])),
                   "content": _mostly(_TEXT | st.lists(_BLOCK, min_size=1, max_size=3))}, {})
_TOOL = _dicts({"name": _mostly(st.sampled_from(["f", "g"]))}, {
    "input_schema": _mostly(st.just({"type": "object"})), "description": _mostly(_TEXT),
    "type": _mostly(st.sampled_from(["custom", "web_search_20250305"])), "strict": _mostly(st.booleans())})
REQUESTS = st.fixed_dictionaries({
    "model": _mostly(st.just("claude")), "max_tokens": _mostly(st.integers(1, 10_000)),
    "messages": _mostly(st.lists(_MESSAGE, min_size=1, max_size=4))}, optional={
    "system": _mostly(_TEXT | st.lists(_dicts({"type": st.just("text"), "text": _mostly(_TEXT)}, {}), max_size=2)),
    "tools": _mostly(st.lists(_TOOL, max_size=3)),
    "tool_choice": _dicts({"type": _mostly(st.sampled_from(["auto", "any", "tool", "none"]))},
                          {"name": _mostly(_TEXT), "disable_parallel_tool_use": _mostly(st.booleans())}),
    "thinking": _dicts({"type": _mostly(st.sampled_from(["enabled", "disabled", "adaptive"]))},
                       {"budget_tokens": _mostly(st.integers(1024, 40_000))}),
    "output_config": _dicts({}, {"effort": _mostly(st.sampled_from(["low", "max"])),
                                 "format": _dicts({"type": st.just("json_schema"), "schema": st.just({})}, {})}),
    "stop_sequences": _mostly(st.lists(_TEXT, max_size=2)), "temperature": _mostly(st.floats(0, 1)),
    "top_p": _mostly(st.floats(0, 1)), "top_k": _mostly(st.integers(0, 500)),
    "metadata": _dicts({}, {"user_id": _mostly(_TEXT)}), "stream": _mostly(st.booleans())})


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(REQUESTS, JSONISH))
def test_any_json_gives_a_chat_request_or_a_400(request):
    try:
        out = to_chat(request)
    except MessagesError as err:
        assert err.status == 400 and re.match(r"^[\w.]+: ", err.message)
        return
    try:     # what comes out is a chat request the gateway's own chat surface takes
        chat_request(json.dumps(out).encode())    # json: orjson refuses the 65-bit integers hypothesis likes
    except ApiError as err:   # pragma: no cover - the message says which check, should it ever happen
        raise AssertionError(f"{err.message}: {out}") from err
    count_tokens_estimate(request)


# --- whole answers ---

def test_new_ids_are_random_after_the_prefix():
    a, b = new_id("msg_"), new_id("msg_")
    assert a != b and re.fullmatch(r"msg_[A-Za-z0-9]{24}", a)


@pytest.mark.parametrize("name", CASES)
def test_recorded_answers_make_valid_messages(name):
    completion = recorded(name)
    message = message_from_chat(completion, message_id="msg_x", model="claude-sonnet-4-5")
    parsed = Message.model_validate(message)
    assert set(message) <= set(Message.model_fields)
    chat_message = completion["choices"][0]["message"]
    assert "".join(b.text for b in parsed.content if b.type == "text") == (chat_message.get("content") or "")
    assert [b["type"] for b in message["content"]] == (
        ["thinking"] * bool(chat_message.get("reasoning_content")) + ["text"] * bool(chat_message.get("content"))
        + ["tool_use"] * len(chat_message.get("tool_calls") or []))
    usage = completion["usage"]
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    assert message["usage"] == {"input_tokens": usage["prompt_tokens"] - cached,
                                "output_tokens": usage["completion_tokens"],
                                "cache_read_input_tokens": cached, "cache_creation_input_tokens": 0}


@pytest.mark.parametrize("name, reason, sequence", [
    ("text", "end_turn", None), ("length", "max_tokens", None), ("parallel_tool_calls", "tool_use", None),
    ("sequential_tool_calls", "tool_use", None),   # the backend said "stop", but the turn ends in tool calls
    ("stop_sequence", "stop_sequence", " 5"),
])
def test_stop_reasons(name, reason, sequence):
    message = message_from_chat(recorded(name), message_id="msg_x", model="m")
    assert (message["stop_reason"], message["stop_sequence"]) == (reason, sequence)


def test_a_text_answer_in_full():
    assert message_from_chat(recorded("text"), message_id="msg_x", model="claude-sonnet-4-5") == {
        "id": "msg_x", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Hello! How can I help you today?"}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 19, "output_tokens": 9, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0}}


def test_tool_calls_become_tool_use_blocks_after_the_text():
    message = message_from_chat(recorded("text_then_tool_call"), message_id="msg_x", model="m")
    assert message["content"] == [
        {"type": "text", "text": "Let me look up the current weather in Tokyo for you."},
        {"type": "tool_use", "id": "call_Hn3Jk8Lm1Qw5Er7Ty9Ui2Op4", "name": "get_weather", "input": {"city": "Tokyo"}}]


def test_reasoning_is_a_thinking_block_with_an_empty_signature():
    message = message_from_chat(recorded("reasoning_content"), message_id="msg_x", model="m")
    assert message["content"][0] == {"type": "thinking", "signature": "",
                                     "thinking": "The user asks for 17 * 23. 17 * 20 = 340, 17 * 3 = 51, so 391."}


@pytest.mark.parametrize("arguments, expected", [
    ('{"a": 1}', {"a": 1}), ("", {}), ("not json", {}), ("[1, 2]", {}), (None, {}),
])
def test_tool_arguments_that_are_not_an_object_become_an_empty_input(arguments, expected):
    answer = {"choices": [{"finish_reason": "tool_calls", "message": {"tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}]}}]}
    message = message_from_chat(answer, message_id="msg_x", model="m")
    assert message["content"] == [{"type": "tool_use", "id": "c1", "name": "f", "input": expected}]
    Message.model_validate(message)


def test_filtered_and_refused_answers_stop_with_refusal():
    filtered = {"choices": [{"finish_reason": "content_filter", "message": {"content": "I"}}]}
    assert message_from_chat(filtered, message_id="m", model="m")["stop_reason"] == "refusal"
    refusal = {"choices": [{"finish_reason": "stop", "message": {"content": None, "refusal": "I can't."}}]}
    message = message_from_chat(refusal, message_id="m", model="m")
    assert (message["stop_reason"], message["content"]) == ("refusal", [{"type": "text", "text": "I can't."}])


def test_cache_writes_are_counted_apart_from_input():
    usage = {"prompt_tokens": 1300, "completion_tokens": 5,
             "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 200}}
    message = message_from_chat({"choices": [{"message": {"content": "ok"}}], "usage": usage}, message_id="m",
                                model="m")
    assert message["usage"] == {"input_tokens": 100, "output_tokens": 5, "cache_creation_input_tokens": 200,
                                "cache_read_input_tokens": 1000}


@pytest.mark.parametrize("answer", [{}, {"choices": []}, {"choices": [None]}, {"choices": [{"message": 3}]},
                                    {"choices": [{"message": {"tool_calls": [None, {"function": 3}]}}]}])
def test_a_malformed_answer_still_makes_a_valid_message(answer):
    Message.model_validate(message_from_chat(answer, message_id="msg_x", model="m"))
