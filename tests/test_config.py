"""Loading and checking the YAML config: every error with its path."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.config import ConfigError, load, parse
from gateway.config.envsubst import substitute
from providers.registry import TYPES

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
auth: {keys: [{name: k, key: sk-k}]}
providers:
  - {name: openai, type: openai, api_key: "${OPENAI_API_KEY:-}"}
  - {name: mock, type: mock}
models:
  - {name: m, route: {targets: [{provider: openai, model: gpt-4.1-mini}, {provider: mock}]}}
"""


def errors_of(text: str, env=None) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse(textwrap.dedent(text), env or {})
    return e.value.errors


def test_env_substitution():
    env = {"A": "x", "EMPTY": ""}
    assert substitute({"k": ["${A}", "${B:-dflt}", "${EMPTY:-d2}", "pre-${A}-post", "${MISSING}"]}, env) == \
        {"k": ["x", "dflt", "d2", "pre-x-post", ""]}
    assert substitute(5, env) == 5


def test_secret_with_yaml_characters_is_taken_verbatim():
    checked = parse(GOOD, {"OPENAI_API_KEY": "sk-a: b # {c}"})
    assert checked.config.providers[0].api_key == "sk-a: b # {c}"


def test_empty_secret_disables_the_provider_without_error():
    checked = parse(GOOD, {})
    assert checked.disabled == {"openai": "api_key is empty"}
    assert parse(GOOD, {"OPENAI_API_KEY": "sk-live"}).disabled == {}


def test_shipped_config_is_valid():
    checked = load(ROOT / "config" / "gateway.yaml")
    names = {m.name for m in checked.config.models}
    assert {"mock-chat", "mock-embed"} <= names
    assert checked.config.auth.keys[0].key in ("sk-demo",) or checked.config.auth.keys[0].key


def test_every_error_is_reported_with_its_path():
    errs = errors_of("""
        server: {port: -1}
        auth: {keys: [{name: a, key: x}, {name: a, key: x}, {name: b, key_hash: "md5:1"}]}
        providers:
          - {name: openai, type: openai, api_key: k}
          - {name: p2, type: nosuch}
          - {name: m, type: mock, fail_rate: 2, bogus: 1}
          - {name: openai, type: mock}
          - {name: claude, type: anthropic, api_key: k}
        models:
          - {name: a, route: {targets: [{provider: openai}]}}
          - {name: b, route: {strategy: weighted, targets: [{provider: openai, weight: 0}]}}
          - {name: c, route: {targets: [{provider: opnai}]}}
          - {name: d, route: {targets: [{strategy: fastest, targets: [{provider: openai}]}]}}
          - {name: e, route: {targets: [{targets: [{provider: ghost}]}]}}
          - {name: f, route: {targets: []}}
          - {name: a, route: {targets: [{provider: openai}]}}
          - {name: g, kind: video, route: {targets: [{provider: claude}]}}
        rules:
          - {match: {model: "gpt-*"}, model: nowhere}
          - {match: {key: ""}, model: a}
          - {match: {model: x}}
        prices:
          gpt-4o: {input_per_mtok: 1}
          openai/x: {input_per_mtok: -1}
        webhooks: {secret: nope, endpoints: [{url: "ftp://x"}]}
        surprise: {}
    """)
    expected = [
        "server.port: Input should be greater than or equal to 0",
        "auth.keys[1].name: duplicate key name 'a'",
        "auth.keys[1]: the same secret is already used by another key",
        "auth.keys[2].key_hash: expected 'sha256:' and 64 hex digits",
        f"providers[1].type: unknown provider type 'nosuch' (known: {', '.join(sorted(TYPES))})",
        "providers[2].fail_rate: Input should be less than or equal to 1",
        "providers[2].bogus: Extra inputs are not permitted",
        "providers[3].name: duplicate provider name 'openai'",
        "models[1].route.targets[0].weight: Input should be greater than 0",
        "models[2].route.targets[0].provider: unknown provider 'opnai'",
        "models[3].route.targets[0].strategy: Input should be "
        "'fallback', 'weighted', 'least_latency', 'least_cost' or 'least_busy'",
        "models[4].route.targets[0].targets[0].provider: unknown provider 'ghost'",
        "models[5].route.targets: List should have at least 1 item after validation, not 0",
        "models[6].name: duplicate model name 'a'",
        "models[7].route.targets[0].provider: provider 'claude' (type anthropic) cannot serve video models",
        "rules[0].model: unknown model 'nowhere'",
        "rules[1].match.key: String should have at least 1 character",
        "rules[2]: a rule must set 'model' or 'strategy'",
        "prices.gpt-4o: name prices as 'provider/model' (globs allowed)",
        "prices.openai/x.input_per_mtok: Input should be greater than or equal to 0",
        "webhooks.secret: must look like 'whsec_<base64>' (make one with: python -m gateway.webhooks.signing)",
        "webhooks.endpoints[0].url: must be an http or https URL",
        "surprise: unknown section",
    ]
    for line in expected:
        assert line in errs, f"missing: {line}\nall:\n" + "\n".join(errs)
    assert len(errs) == len(expected), "\n".join(errs)


def test_yaml_syntax_error_has_a_line():
    errs = errors_of("models: [\n  {name: a\n")
    assert len(errs) == 1 and errs[0].startswith("line ") and "invalid YAML" in errs[0]


def test_not_a_mapping():
    assert errors_of("- 1\n- 2\n") == ["(top): the config must be a mapping"]


def gateway_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)


def test_check_command_prints_every_error_and_exits_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: [{name: p, type: mock}]\nmodels:\n  - {name: a, route: {targets: [{provider: p}]}}\n"
                   "  - {name: b, route: {targets: [{provider: p}]}}\n"
                   "  - {name: c, route: {targets: [{provider: opnai}]}}\n"
                   "  - {name: d, retries: -1, route: {targets: [{provider: p}]}}\n")
    r = gateway_cli("check", "--config", str(bad))
    assert r.returncode == 1
    assert r.stdout.splitlines() == ["models[2].route.targets[0].provider: unknown provider 'opnai'",
                                     "models[3].retries: Input should be greater than or equal to 0"]
    assert "2 errors" in r.stderr


def test_check_command_ok_on_shipped_config():
    r = gateway_cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("config/gateway.yaml: OK:")


def test_check_command_missing_file():
    r = gateway_cli("check", "--config", "/nonexistent.yaml")
    assert r.returncode == 1 and "cannot read" in r.stdout


@pytest.mark.parametrize("path", sorted((ROOT / "config" / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_are_valid(path):
    assert load(path).config.models


def test_every_section_the_schema_has_is_accepted():
    # A section the schema defines but the checker did not list was refused as unknown
    # (it happened to `responses:`): each one, written empty, must pass.
    from gateway.config import schema
    for name in schema.Config.model_fields:
        if name in ("providers", "models", "rules", "prices"):
            continue
        parse(GOOD + f"{name}: {{}}\n", {})
    assert parse(GOOD + "responses: {keep_days: 3, max_chain: 10}\n", {}).config.responses.keep_days == 3
