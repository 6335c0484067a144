from __future__ import annotations

import pytest

from tests.harness import Gateway, Loop
from tests.upstreams.openai_fake import FakeOpenAI


@pytest.fixture(scope="session")
def loop():
    lp = Loop()
    yield lp
    lp.stop()


@pytest.fixture
def start_gateway(loop):
    """start_gateway(config) -> a running Gateway, closed after the test."""
    started: list[Gateway] = []

    def start(config) -> Gateway:
        gw = Gateway(loop, config)
        started.append(gw)
        return gw

    yield start
    for gw in started:
        gw.close()


@pytest.fixture
def fake_openai(loop):
    """fake_openai(name) -> a FakeOpenAI upstream on loopback, closed after the test."""
    made: list[FakeOpenAI] = []

    def make(name: str = "fake") -> FakeOpenAI:
        f = FakeOpenAI(loop, name)
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()
