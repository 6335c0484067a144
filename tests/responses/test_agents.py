"""The openai-agents package, with its default Responses model, running an
agent that calls a function tool through the gateway: whole and streamed."""
from __future__ import annotations

import asyncio

import openai
import pytest

from tests.harness import base_config, chat_model

agents = pytest.importorskip("agents")


@pytest.fixture
def gw(start_gateway):
    return start_gateway(base_config([{"name": "mock", "type": "mock"}],
                                     [chat_model("mock-chat", {"provider": "mock"})]))


def _agent(gw, asked: list[str]):
    agents.set_tracing_disabled(True)

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        asked.append(city)
        return f"sunny in {city}"

    client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="sk-test", max_retries=0)
    model = agents.OpenAIResponsesModel(model="mock-chat", openai_client=client)
    return agents.Agent(name="forecaster", instructions="Use the tool.", tools=[get_weather], model=model)


def test_an_agent_calls_its_tool_and_answers(gw):
    asked: list[str] = []
    result = asyncio.run(agents.Runner.run(_agent(gw, asked), "What is the weather in Paris?"))
    assert len(asked) == 1                      # the mock calls the first tool once, then answers
    assert isinstance(result.final_output, str) and result.final_output.startswith("mock")


def test_an_agent_streams(gw):
    asked: list[str] = []

    async def run() -> tuple[list[str], object]:
        streamed = agents.Runner.run_streamed(_agent(gw, asked), "Weather in Oslo?")
        kinds = [event.type async for event in streamed.stream_events()]
        return kinds, streamed.final_output
    kinds, final = asyncio.run(run())
    assert len(asked) == 1
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert isinstance(final, str) and final.startswith("mock")


def test_an_agent_keeps_state_on_the_gateway(gw):
    """With previous_response_id, each turn sends only what is new; the gateway rebuilds the rest."""
    asked: list[str] = []

    async def run() -> str:
        agent = _agent(gw, asked)
        first = await agents.Runner.run(agent, "Weather in Rome?", auto_previous_response_id=True)
        assert first.last_response_id
        again = await agents.Runner.run(agent, "And tomorrow?", previous_response_id=first.last_response_id)
        return str(again.final_output)
    assert asyncio.run(run()).startswith("mock")


def test_an_agent_on_claude_through_the_anthropic_fake(start_gateway, loop):
    """The fake answers a turn with tools with its recorded tool_use (get_weather for two cities),
    and the turn carrying their results with text: the agent runs both calls, then finishes."""
    from functools import partial

    from tests.harness import closed_after
    from tests.upstreams.anthropic_fake import FakeAnthropic
    with closed_after(partial(FakeAnthropic, loop)) as make:
        fake = make()
        gw = start_gateway(base_config(
            [{"name": "anthropic", "type": "anthropic", "base_url": fake.url, "api_key": fake.api_key}],
            [chat_model("claude", {"provider": "anthropic", "model": "claude-sonnet-4-5"}, retries=0)]))
        agents.set_tracing_disabled(True)
        asked: list[str] = []

        @agents.function_tool
        def get_weather(location: str, unit: str = "c") -> str:
            """The weather somewhere."""
            asked.append(location)
            return f"sunny in {location}"

        client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="sk-test", max_retries=0)
        agent = agents.Agent(name="forecaster", tools=[get_weather],
                             model=agents.OpenAIResponsesModel(model="claude", openai_client=client),
                             model_settings=agents.ModelSettings(max_tokens=512))
        result = asyncio.run(agents.Runner.run(agent, "Weather in Paris and Tokyo?"))
        assert len(asked) == 2 and isinstance(result.final_output, str) and result.final_output


def test_an_agent_streams_on_gemini(start_gateway, loop):
    from tests.upstreams.gemini_fake import FakeGemini
    with FakeGemini(loop) as fake:
        gw = start_gateway(base_config(
            [{"name": "gem", "type": "gemini", "base_url": fake.url, "api_key": fake.key}],
            [chat_model("flash", {"provider": "gem", "model": "gemini-2.5-flash"}, retries=0)]))
        agents.set_tracing_disabled(True)
        client = openai.AsyncOpenAI(base_url=f"{gw.url}/v1", api_key="sk-test", max_retries=0)
        agent = agents.Agent(name="plain", model=agents.OpenAIResponsesModel(model="flash", openai_client=client))

        async def run() -> object:
            streamed = agents.Runner.run_streamed(agent, "Say hello.")
            [event async for event in streamed.stream_events()]
            return streamed.final_output
        final = asyncio.run(run())
        assert isinstance(final, str) and final
