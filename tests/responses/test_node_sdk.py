"""/v1/responses through the official openai Node SDK (tests/node: `npm ci`
there; CI does it). Skipped, saying why, without Node or the package."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.harness import base_config, chat_model

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def test_node_sdk_creates_streams_and_reads_back(start_gateway):
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "openai").is_dir():
        pytest.skip("the openai Node SDK is not installed: npm ci --prefix tests/node")
    gw = start_gateway(base_config([{"name": "mock", "type": "mock"}], [chat_model("mock-chat", {"provider": "mock"})]))
    run = subprocess.run(["node", "responses.mjs", f"{gw.url}/v1", "sk-test", "mock-chat"], cwd=NODE_DIR,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["id"].startswith("resp_") and seen["status"] == "completed"
    assert seen["text"].startswith("mock") and seen["again"] == seen["text"]
    assert seen["kinds"][0] == "response.created" and seen["kinds"][-1] == "response.completed"
    assert "response.output_text.delta" in seen["kinds"] and seen["streamed"].startswith("mock")
    assert seen["missing"] == 404
