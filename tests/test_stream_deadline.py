"""A model's `timeout_s` is the whole request's deadline, streams included:
a stream still running then is ended with an error event, and what it held
(the key's concurrency slot, the upstream connection) is given back."""
from __future__ import annotations

import time

import openai
import pytest

from tests.harness import base_config, chat_model

MSG = [{"role": "user", "content": "hi"}]


def _config(**model):
    cfg = base_config([{"name": "slow", "type": "mock", "stream_chunks": 40, "chunk_delay_ms": 100}],
                      [chat_model("m", {"provider": "slow"}, **model)])
    cfg["auth"]["keys"][0]["limits"] = {"concurrent": 1}
    return cfg


@pytest.mark.parametrize("timeout_s", [0.5, 1.0])
def test_a_stream_past_its_deadline_ends_with_an_error_event(start_gateway, timeout_s):
    gw = start_gateway(_config(timeout_s=timeout_s))
    started = time.monotonic()
    seen = 0
    with pytest.raises(openai.APIError) as e:
        for _ in gw.client().chat.completions.create(model="m", messages=MSG, stream=True):
            seen += 1
    took = time.monotonic() - started
    assert 1 <= seen < 30 and timeout_s <= took < timeout_s + 1.0
    assert "deadline" in str(e.value)


def test_the_slot_is_free_again_after_the_deadline(start_gateway):
    gw = start_gateway(_config(timeout_s=0.5))
    client = gw.client()
    for _ in range(3):              # concurrent: 1 — each must find the last one's slot given back
        with pytest.raises(openai.APIError):
            for _ in client.chat.completions.create(model="m", messages=MSG, stream=True):
                pass
    assert client.chat.completions.create(model="m", messages=MSG).choices[0].message.content


def test_a_stream_inside_its_deadline_is_untouched(start_gateway):
    gw = start_gateway(_config(timeout_s=30))
    chunks = list(gw.client().chat.completions.create(model="m", messages=MSG, stream=True))
    assert len(chunks) > 10 and chunks[-1].choices[0].finish_reason == "stop"
