"""A gateway killed mid-job (SIGKILL: no clean shutdown) and started again
on the same data_dir: the job is picked up, completes, and its webhook fires
once."""
from __future__ import annotations

import os
import signal
import time

import openai
import pytest
import yaml

from tests.harness import free_port, serve_process
from tests.video.conftest import SECRET, decode_mp4, mock_video, video_config

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")




def test_a_job_survives_the_gateway_being_killed(tmp_path, receiver):
    hook = receiver()
    cfg = video_config([mock_video(video_latency_ms=2500)],
                       webhooks={"secret": SECRET, "endpoints": [{"url": hook.url}], "allow_hosts": ["127.0.0.1"],
                                 "backoff_s": 0.1})
    cfg["videos"]["job_lease_s"] = 1
    cfg["state"] = {"data_dir": str(tmp_path / "data")}
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(cfg))
    port = free_port()
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)

    first = serve_process(config, port)
    try:
        video = client.videos.create(model="mock-video", prompt="survivor", size="320x180", seconds="2")
        deadline = time.time() + 10
        while client.videos.retrieve(video.id).progress < 10:
            assert time.time() < deadline
            time.sleep(0.05)
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    assert hook.received == []

    second = serve_process(config, port)
    try:
        done = client.videos.poll(video.id, poll_interval_ms=100)
        assert done.status == "completed", done.error
        decoded = decode_mp4(client.videos.download_content(video.id).read())
        assert (decoded.width, decoded.height, decoded.frames) == (320, 180, 8)
        deadline = time.time() + 5
        while not hook.received:
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(1.0)
        assert len(hook.received) == 1
        event = openai.OpenAI(api_key="unused").webhooks.unwrap(hook.received[0].body, hook.received[0].headers,
                                                                secret=SECRET)
        assert event.type == "video.completed" and event.data.id == video.id
    finally:
        second.terminate()
        second.wait(10)
