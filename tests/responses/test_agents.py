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
