"""/v1/messages through the official anthropic TypeScript SDK on Node
(tests/node: `npm ci` there; CI does it). Skipped, saying why, without Node
or the package."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import base_config, chat_model

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def test_node_sdk_creates_streams_counts_and_sees_errors(start_gateway):
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "@anthropic-ai" / "sdk").is_dir():
        pytest.skip("the anthropic Node SDK is not installed: npm ci --prefix tests/node")
    gw = start_gateway(base_config([{"name": "mock", "type": "mock"}], [chat_model("mock-chat", {"provider": "mock"})]))
    run = subprocess.run(["node", "messages.mjs", gw.url, "sk-test", "mock-chat"], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["text"].startswith("mock") and seen["stop"] == "end_turn"
    assert seen["kinds"][0] == "message_start" and seen["kinds"][-1] == "message_stop"
    assert "content_block_delta" in seen["kinds"] and seen["streamed"].startswith("mock")
    assert seen["counted"] > 0
    assert seen["error"] == {"status": 400, "type": "invalid_request_error"}
