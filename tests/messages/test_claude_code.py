"""A Claude-Code-shaped session replayed through the gateway: system blocks
with cache_control, many tools with draft-07 schemas, Claude Code's headers
(anthropic-beta features, x-app, stainless), a streamed tool call, then the
turn carrying its result. On mock-chat and the OpenAI fake (translated) and
on the Anthropic fake (native, headers kept)."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import httpx
import orjson
import pytest

from tests.harness import base_config, chat_model, closed_after
from tests.upstreams.anthropic_fake import FakeAnthropic

SESSION = json.loads((Path(__file__).resolve().parents[1] / "data" / "messages" / "claude_code_session.json")
                     .read_text())


def _events(body: bytes) -> list[dict]:
    out = []
    for block in body.split(b"\n\n"):
        lines = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
        if b"data" in lines:
            out.append(orjson.loads(lines[b"data"]))
    return out


def _replay(url: str, model: str) -> tuple[list[dict], list[dict]]:
    """Both turns of the session, as Claude Code sends them; the events of each."""
    headers = {**SESSION["headers"], "x-api-key": "sk-test", "content-type": "application/json"}
    first = {**SESSION["first"], "model": model}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        one = http.post("/v1/messages", content=orjson.dumps(first))
        assert one.status_code == 200, one.text
        assert one.headers["content-type"].startswith("text/event-stream")
        first_events = _events(one.content)
        uses = {e["index"]: e["content_block"] for e in first_events
                if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use"}
        assistant = SESSION["second_assistant"]
        result = SESSION["second_tool_result"]
        if uses:        # answer every call the model made, as Claude Code would
            for index, use in uses.items():
                use["input"] = json.loads("".join(
                    e["delta"]["partial_json"] for e in first_events if e["type"] == "content_block_delta"
                    and e["index"] == index and e["delta"]["type"] == "input_json_delta") or "{}")
            assistant = list(uses.values())
            result = [*({**SESSION["second_tool_result"][0], "tool_use_id": use["id"]} for use in assistant),
                      SESSION["second_tool_result"][1]]
        second = {**first, "messages": [*first["messages"], {"role": "assistant", "content": assistant},
                                        {"role": "user", "content": result}]}
        two = http.post("/v1/messages", content=orjson.dumps(second))
        assert two.status_code == 200, two.text
        return first_events, _events(two.content)


def _well_formed(events: list[dict]) -> None:
    kinds = [e["type"] for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and kinds[-2] == "message_delta"
    assert events[-2]["delta"]["stop_reason"] in ("end_turn", "tool_use", "max_tokens")
    open_blocks = set()
    for e in events:
        if e["type"] == "content_block_start":
            assert e["index"] not in open_blocks and not open_blocks    # one block at a time, in order
            open_blocks.add(e["index"])
        elif e["type"] == "content_block_stop":
            open_blocks.remove(e["index"])
    assert not open_blocks


def test_the_session_on_mock_chat(start_gateway):
    gw = start_gateway(base_config([{"name": "mock", "type": "mock"}],
                                   [chat_model("claude-sonnet-4-5-20250929", {"provider": "mock"})]))
    first, second = _replay(gw.url, "claude-sonnet-4-5-20250929")
    _well_formed(first), _well_formed(second)
    assert first[-2]["delta"]["stop_reason"] == "tool_use"       # the mock calls the first tool
    assert second[-2]["delta"]["stop_reason"] == "end_turn"      # and answers once it has the result


def test_the_session_on_an_openai_upstream(start_gateway, fake_openai):
    fake = fake_openai("oa")
    gw = start_gateway(base_config([{"name": "oa", "type": "openai", "base_url": fake.url, "api_key": "k"}],
                                   [chat_model("sonnet", {"provider": "oa", "model": "gpt-4.1"})]))
    first, second = _replay(gw.url, "sonnet")
    _well_formed(first), _well_formed(second)
    sent = orjson.loads(fake.seen[-1].body)
    assert sent["messages"][0]["role"] == "system" and "Claude Code" in sent["messages"][0]["content"]
    assert len(sent["tools"]) == len(SESSION["first"]["tools"]) and sent["stream_options"] == {"include_usage": True}
    assert sent["user"] == SESSION["first"]["metadata"]["user_id"]
    assert [m["role"] for m in sent["messages"]][-2:] in (["tool", "user"], ["assistant", "user"])


@pytest.fixture
def anthropic_gw(start_gateway, loop):
    with closed_after(partial(FakeAnthropic, loop)) as make:
        fake = make()
        yield start_gateway(base_config(
            [{"name": "anthropic", "type": "anthropic", "base_url": fake.url, "api_key": fake.api_key,
              "beta": ["context-1m-2025-08-07"]}],
            [chat_model("claude-sonnet-4-5-20250929", {"provider": "anthropic"})])), fake


def test_the_session_natively_keeps_claude_codes_headers(anthropic_gw):
    gw, fake = anthropic_gw
    first, second = _replay(gw.url, "claude-sonnet-4-5-20250929")
    _well_formed(first), _well_formed(second)
    seen = fake.seen[-1]
    betas = seen.headers["anthropic-beta"].split(",")
    assert {"claude-code-20250219", "fine-grained-tool-streaming-2025-05-14", "context-1m-2025-08-07"} <= set(betas)
    assert seen.headers["anthropic-version"] == "2023-06-01" and seen.headers["x-api-key"] == fake.api_key
    sent = orjson.loads(seen.body)
    assert sent["system"] == SESSION["first"]["system"] and sent["tools"] == SESSION["first"]["tools"]
