"""The deployment files in deploy/: the Docker Compose file and the Helm chart.

Compose: deploy/compose.yaml is validated against the Compose Specification's
JSON schema (vendored in tests/data/deploy/), as written and after compose's
`${VAR}` interpolation; then its cross-references: every mounted file exists,
the gateway config it mounts passes the gateway's own checker with the
environment compose gives it, Prometheus scrapes the gateway service with the
token compose hands it, Grafana is provisioned with the shipped dashboard.

Helm: the chart is linted and rendered by Helm's own Go engine (Helm v4, from
the helm-python-sdk wheel: no `helm` binary is packaged for Debian or PyPI),
with the default values and with ci/all-values.yaml, which turns every option
on. Every rendered object is validated against the Kubernetes JSON schemas of
the oldest and newest versions kubernetes-validate bundles (strict: no unknown
fields), ServiceMonitor and PrometheusRule against the Prometheus Operator's CRD
schemas (vendored); then the objects' references to each other are followed.

No Docker, no cluster: what runs only there (image builds, scheduling, GPUs) is
not checked here (deploy/README.md#what-ci-checks)."""
from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path
from typing import Any

import helm_python as helm  # Helm's Go engine (helm-python-sdk): lint, render, values schema
import jsonschema
import kubernetes_validate  # the Kubernetes JSON schemas, bundled per version
import pytest
import yaml

from gateway.config import parse
from tests.prometheus import DEPLOY, ROOT, promtool
from tests.test_deploy import METRICS, metric_names

COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "compose.env.example"
CHART = DEPLOY / "helm" / "gateway"
ALL_VALUES = CHART / "ci" / "all-values.yaml"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "gateway.json"
VENDORED = ROOT / "tests" / "data" / "deploy"

# What the gateway process reads from its environment besides the config's ${VAR}s (gateway/cli.py,
# gateway/config), and what the worker image's libraries read (torch and Hugging Face caches).
PROCESS_ENV = {"GATEWAY_CONFIG", "GATEWAY_DATA_DIR"}
WORKER_ENV = PROCESS_ENV | {"HOME", "HF_HUB_OFFLINE"}
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD")
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")        # the gateway's own ${VAR} syntax


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def config_vars(text: str) -> dict[str, bool]:
    """Each ${VAR} a gateway config reads -> whether it has a default."""
    return {m.group(1): m.group(2) is not None for m in _VAR.finditer(text)}


def alerts_job() -> str:
    job, = set(re.findall(r'up\{job="([^"]+)"\}', ALERTS.read_text()))
    return job


# --- compose ---------------------------------------------------------------------------------------------------

_COMPOSE_VAR = re.compile(r"\$(?:\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<dollar>\$))")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation, the forms this file uses: ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}, and $$ for a literal $. A missing required variable raises KeyError."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        if m.group("dollar"):
            return "$"
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        present = name in env and (env[name] != "" or op not in (":-", ":?"))
        if present:
            return env[name]
        if op in (":?", "?"):
            raise KeyError(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    assert not re.search(r"\$(?![{$])", value.replace("$$", "")), f"unsupported interpolation in {value!r}"
    return _COMPOSE_VAR.sub(one, value)


def compose_vars() -> dict[str, str | None]:
    """Each variable compose.yaml interpolates -> its operator (None: plain ${VAR})."""
    return {m.group("name"): m.group("op") for m in _COMPOSE_VAR.finditer(COMPOSE.read_text()) if m.group("name")}


def example_env() -> dict[str, str]:
    """compose.env.example with every variable filled in, as an operator would."""
    names = [line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines()
             if line and not line.startswith("#")]
    return {name: f"value-of-{name.lower()}" for name in names} | {
        "GATEWAY_PORTS": "8080-8081", "GATEWAY_PUBLIC_URL": "https://gateway.example.com",
        "GATEWAY_LOG_LEVEL": "info", "GATEWAY_MODELS_DIR": "./models",
        "GATEWAY_WEBHOOK_SECRET": "whsec_" + base64.b64encode(b"a webhook secret for tests").decode(),
        "GATEWAY_IMAGE": "ai-gateway:test", "GATEWAY_WORKER_IMAGE": "ai-gateway-worker:test"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolate(_yaml(COMPOSE), example_env())


def compose_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((VENDORED / "compose-spec.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def bind_mounts(service: dict) -> list[tuple[str, str]]:
    """(source, target) of a service's short-syntax bind mounts (a source starting with . or /)."""
    out = []
    for v in service.get("volumes", []):
        source, target = v.split(":")[:2]
        if source.startswith((".", "/", "$")):
            out.append((source, target))
    return out


def mount_of(service: dict, target: str) -> str:
    """The source mounted at `target` (or at the folder holding it)."""
    for v in service.get("volumes", []):
        source, mounted = v.split(":")[:2]
        if target == mounted or target.startswith(mounted.rstrip("/") + "/"):
            return source
    raise AssertionError(f"nothing mounted at {target}")


def test_compose_file_is_valid_against_the_compose_specification(compose):
    validator = compose_schema()
    for doc in (_yaml(COMPOSE), compose):          # as written, and as compose reads it after interpolation
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == []
    # The schema does reject what compose rejects (so the check above can fail).
    bad = json.loads(json.dumps(compose))
    bad["services"]["gateway"]["ports"] = "8080:8080"        # a list, not a string
    bad["services"]["redis"]["helthcheck"] = {}
    assert len(list(validator.iter_errors(bad))) == 2


def test_compose_needs_every_secret_from_the_environment_and_inlines_none():
    used = compose_vars()
    listed = set(example_env())
    assert set(used) <= listed, f"not in compose.env.example: {set(used) - listed}"
    with pytest.raises(KeyError, match="GATEWAY_ADMIN_KEY"):
        interpolate(_yaml(COMPOSE), {})
    raw = _yaml(COMPOSE)
    for name, service in raw["services"].items():
        env = service.get("environment", {})
        for var, value in env.items():
            if var.endswith("__FILE"):                    # read from a file: a compose secret
                assert value.startswith("/run/secrets/") and value.rsplit("/", 1)[1] in service["secrets"], var
            elif _SECRET_NAME.search(var):
                form = r"\$\{" + var + r"(:\?[^}]*|:-)?\}"      # ${VAR}, ${VAR:?why}, ${VAR:-}: no default value
                assert re.fullmatch(form, value), f"{name}.{var} inlines {value!r}"
    for name, secret in raw["secrets"].items():      # file-mounted secrets come from the environment too
        assert set(secret) == {"environment"} and secret["environment"] in listed, name
    required = {n for n, op in used.items() if op in (":?", "?")}
    assert {"GATEWAY_ADMIN_KEY", "GATEWAY_APP_KEY", "GATEWAY_METRICS_TOKEN"} <= required


def test_compose_runs_replicas_redis_a_gpu_worker_and_monitoring(compose):
    services = compose["services"]
    assert {"gateway", "worker", "redis", "prometheus", "grafana"} <= set(services)
    gw = services["gateway"]
    replicas = gw["deploy"]["replicas"]
    assert replicas >= 2
    published, container = gw["ports"][0].rsplit(":", 1)
    low, high = map(int, published.split("-"))
    assert container == "8080" and high - low + 1 == replicas     # one host port per replica
    assert gw["command"][:2] == ["gateway", "serve"] and gw["command"][-4:] == ["--host", "0.0.0.0", "--port", "8080"]
    assert "/readyz" in " ".join(gw["healthcheck"]["test"])
    assert gw["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]
    assert gw["environment"]["REDIS_URL"].startswith("redis://redis:")

    worker = services["worker"]
    assert worker["command"][:2] == ["gateway", "worker"]
    device, = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["count"] == "all" or device["count"] >= 1
    assert worker["profiles"] == ["gpu"]           # `docker compose up` works on a host without a GPU

    # Same config and shared state for the gateways and the worker; data_dir is each container's own.
    for svc in (gw, worker):
        assert svc["read_only"] is True and {"/tmp", svc["environment"]["GATEWAY_DATA_DIR"]} <= set(svc["tmpfs"])
        assert mount_of(svc, svc["environment"]["GATEWAY_CONFIG"]) == "./compose/gateway.yaml"
    assert {k: v for k, v in worker["environment"].items() if k not in WORKER_ENV - PROCESS_ENV} == gw["environment"]
    for image in (services[s]["image"] for s in ("redis", "prometheus", "grafana")):
        assert re.search(r":v?\d+\.\d+", image), f"{image}: pin a version"


def test_compose_mounts_and_builds_files_that_exist(compose):
    for name, service in compose["services"].items():
        for source, target in bind_mounts(service):
            if source.startswith("$") or (name == "worker" and target == "/models"):
                continue                                   # the operator's weights folder
            assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
        if "build" in service:
            context = DEPLOY / service["build"]["context"]
            dockerfile = context / service["build"]["dockerfile"]
            assert dockerfile.is_file(), f"{name}: {dockerfile}"
            for line in dockerfile.read_text().splitlines():
                if line.startswith("COPY ") and "--from=" not in line:       # not from another stage
                    for source in [w for w in line.split()[1:-1] if not w.startswith("--")]:
                        assert (context / source).exists(), f"{dockerfile}: COPY {source}"
    raw = _yaml(COMPOSE)["services"]["worker"]["volumes"]
    models = next(v for v in raw if v.endswith(":/models:ro"))
    assert models.startswith("${GATEWAY_MODELS_DIR:-")    # defaulted: the file parses without it set


def test_compose_gateway_config_passes_the_gateway_check_with_the_compose_environment(compose):
    services = compose["services"]
    text = (DEPLOY / "compose" / "gateway.yaml").read_text()
    for name in ("gateway", "worker"):
        env = services[name]["environment"]
        wanted = config_vars(text)
        missing = [v for v, defaulted in wanted.items() if not defaulted and v not in env]
        assert missing == [], f"{name}: the config reads {missing}, which compose does not set"
        unused = set(env) - set(wanted) - WORKER_ENV
        assert unused == set(), f"{name}: sets {unused}, which nothing reads"
        checked = parse(text, env)
        config = checked.config
        assert config.state.redis_url == env["REDIS_URL"]
        assert config.server.metrics.auth == "token" and config.server.metrics.token == env["GATEWAY_METRICS_TOKEN"]
        assert mount_of(services[name], config.videos.assets_dir).startswith("videos")    # the shared volume
    # The worker serves the config's local providers, whose weights are under its /models mount.
    config = parse(text, services["worker"]["environment"]).config
    args = services["worker"]["command"]
    named = [args[i + 1] for i, a in enumerate(args) if a == "--provider"]
    local = {p.name: p for p in config.providers if p.type == "diffusers"}
    assert named and set(named) <= set(local)
    for name in named:
        assert local[name].model_dump()["pipeline"].startswith("/models/")


def test_compose_prometheus_scrapes_the_gateway_replicas_with_the_shipped_rules(compose, tmp_path):
    services = compose["services"]
    prom = services["prometheus"]
    config_file = next(a.split("=", 1)[1] for a in prom["command"] if a.startswith("--config.file="))
    source = DEPLOY / mount_of(prom, config_file)
    config = _yaml(source)
    job, = config["scrape_configs"]
    assert job["job_name"] == alerts_job() and job["metrics_path"] == "/metrics"
    sd, = job["dns_sd_configs"]
    assert sd["names"] == ["gateway"] and sd["type"] == "A"
    assert f"{sd['port']}" == services["gateway"]["ports"][0].rsplit(":", 1)[1]
    # The token: a compose secret from the variable the gateway config reads as server.metrics.token.
    secret = job["authorization"]["credentials_file"].removeprefix("/run/secrets/")
    assert secret in prom["secrets"]
    assert _yaml(COMPOSE)["secrets"][secret]["environment"] == "GATEWAY_METRICS_TOKEN"
    # rule_files resolve beside the config file, where compose mounts the shipped alerts.yml.
    rules, = config["rule_files"]
    assert DEPLOY / mount_of(prom, str(Path(config_file).parent / rules)) == DEPLOY / "prometheus" / "alerts.yml"
    if shutil.which("promtool"):           # .ci/run installs it (tests/test_deploy.py)
        token = tmp_path / "token"
        token.write_text("t")
        job["authorization"]["credentials_file"] = str(token)
        config["rule_files"] = [str(ALERTS)]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        r = promtool("check", "config", str(tmp_path / "prometheus.yml"))
        assert r.returncode == 0, r.stdout + r.stderr


def test_compose_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboard(compose):
    grafana = compose["services"]["grafana"]
    provisioning = DEPLOY / mount_of(grafana, "/etc/grafana/provisioning")
    datasource, = _yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus" and datasource["isDefault"]
    assert datasource["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in compose["services"]["prometheus"]["ports"]
    provider, = _yaml(provisioning / "dashboards" / "gateway.yml")["providers"]
    folder = provider["options"]["path"]
    assert DEPLOY / mount_of(grafana, f"{folder}/gateway.json") == DASHBOARD
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert "grafana_admin_password" in grafana["secrets"]


# --- helm ------------------------------------------------------------------------------------------------------

CRDS = {
    "ServiceMonitor": VENDORED / "monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": VENDORED / "monitoring.coreos.com_prometheusrules.yaml",
}
CASES = {"default": None, "all-options": ALL_VALUES}


def values_of(case: str) -> dict | None:
    path = CASES[case]
    return None if path is None else _yaml(path)


def render(values: dict | None) -> tuple[list[dict], str]:
    """The chart's objects and NOTES.txt, as `helm template` renders them."""
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values)
        files = chart.render(values, name="rel", namespace="ns", is_install=True)
    objects = []
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(d for d in yaml.safe_load_all(text) if d)
    notes = next(text for path, text in files.items() if path.endswith("NOTES.txt"))
    return objects, notes


@pytest.fixture(scope="module", params=list(CASES))
def rendered(request) -> tuple[str, list[dict], str]:
    objects, notes = render(values_of(request.param))
    return request.param, objects, notes


def by_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in by_kind(objects, kind) if name is None or o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def _strict(schema: Any) -> Any:
    """A CRD's structural schema as the API server's strict field validation applies it: no unknown fields."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    crd = _yaml(CRDS[kind])
    version, = (v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object", "required": ["name"]}
    return jsonschema.Draft7Validator(schema)


def kube_versions() -> list[str]:
    """The chart's oldest supported Kubernetes (Chart.yaml kubeVersion) and the newest bundled schemas."""
    oldest = re.search(r">=\s*(\d+\.\d+)", _yaml(CHART / "Chart.yaml")["kubeVersion"]).group(1)
    return [oldest, kubernetes_validate.latest_version()]


@pytest.mark.parametrize("case", list(CASES))
def test_helm_lint_is_clean(case):
    report = helm.lint(str(CHART), values_of(case), strict=True)
    problems = [m for m in report["messages"] if m["severity"] >= 2]      # 2 warning, 3 error; 1 is info
    assert (problems, report["errors"]) == ([], [])


def test_values_schema_refuses_wrong_values():
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    for bad in ({"replicaCount": "two"}, {"replicas": 2}, {"worker": {"enabled": "yes"}},
                {"redis": {"url": "http://redis:6379"}}, {"config": {"videos": {"assets_dir": "videos"}}}):
        with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError):
            chart.validate_schema(bad)


def test_every_rendered_object_is_a_valid_kubernetes_object(rendered):
    case, objects, _ = rendered
    kinds = {o["kind"] for o in objects}
    expected = {"ConfigMap", "Secret", "ServiceAccount", "Service", "Deployment", "PodDisruptionBudget"}
    if case == "all-options":
        expected |= {"HorizontalPodAutoscaler", "PersistentVolumeClaim", "ServiceMonitor", "PrometheusRule"}
    assert kinds == expected
    for obj in objects:
        where = f"{case}: {obj['kind']} {obj['metadata']['name']}"
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "rel", where
        if obj["kind"] in CRDS:
            errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                      for e in crd_validator(obj["kind"]).iter_errors(obj)]
            assert errors == [], where
            continue
        for version in kube_versions():
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as e:
                pytest.fail(f"{where} against Kubernetes {version}: {'.'.join(map(str, e.path))}: {e.message}")


def test_the_gateway_deployment_probes_runs_unprivileged_and_mounts_its_state(rendered):
    case, objects, _ = rendered
    deployment = one(objects, "Deployment", "ai-gateway" if case == "all-options" else "rel-gateway")
    pod = deployment["spec"]["template"]["spec"]
    container, = pod["containers"]
    assert container["args"][:2] == ["gateway", "serve"]
    port, = container["ports"]
    assert port["name"] == "http" and port["containerPort"] == 8080
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["resources"]["requests"]["cpu"]           # the HPA's utilisation needs a request
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and sc["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container["volumeMounts"]}
    env = {e["name"]: e for e in container["env"]}
    assert "emptyDir" in mounts["/tmp"] and "emptyDir" in mounts[env["GATEWAY_DATA_DIR"]["value"]]
    assert mounts["/app/config"]["configMap"]["name"] == one(objects, "ConfigMap", deployment["metadata"]["name"])[
        "metadata"]["name"]
    assert env["GATEWAY_CONFIG"]["value"] == "/app/config/gateway.yaml"
    config = yaml.safe_load(one(objects, "ConfigMap", deployment["metadata"]["name"])["data"]["gateway.yaml"])
    videos = mounts[config["videos"]["assets_dir"]]
    if case == "all-options":
        assert "replicas" not in deployment["spec"]                 # the HPA owns it
        claim = one(objects, "PersistentVolumeClaim")
        assert videos["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    else:
        assert deployment["spec"]["replicas"] == 1 and "emptyDir" in videos


def test_the_config_and_secret_give_the_gateway_a_config_it_accepts(rendered):
    case, objects, _ = rendered
    for deployment in by_kind(objects, "Deployment"):
        container, = deployment["spec"]["template"]["spec"]["containers"]
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        config_map = one(objects, "ConfigMap", volumes["config"]["configMap"]["name"])
        text = config_map["data"]["gateway.yaml"]
        secret_name = container["envFrom"][0]["secretRef"]["name"]
        secret = one(objects, "Secret", secret_name)
        env = dict(secret.get("stringData") or {})
        for e in container["env"]:
            env[e["name"]] = e.get("value", f"from {e.get('valueFrom')}")
        wanted = config_vars(text)
        assert [v for v, defaulted in wanted.items() if not defaulted and v not in env] == []
        checked = parse(text, env)
        assert bool(checked.config.state.redis_url) == (case == "all-options")
        if container["name"] == "worker":
            named = [container["args"][i + 1] for i, a in enumerate(container["args"]) if a == "--provider"]
            local = {p.name for p in checked.config.providers if p.type == "diffusers"}
            assert named and set(named) <= local
    # The config carries no secret: every secret-looking field is a ${VAR}.
    config = _yaml(CHART / "values.yaml")["config"]
    for path, value in _leaves(config):
        if re.search(r"key|token|secret|password", path[-1]) and path[-1] != "keys":
            assert _VAR.fullmatch(str(value)), f"config.{'.'.join(path)} inlines a value"
    assert _yaml(CHART / "values.yaml")["secrets"]["env"] == {}


def _leaves(tree: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    if isinstance(tree, dict):
        return [leaf for k, v in tree.items() for leaf in _leaves(v, (*path, str(k)))]
    if isinstance(tree, list):
        return [leaf for i, v in enumerate(tree) for leaf in _leaves(v, (*path, str(i)))]
    return [(path, tree)]


def test_service_hpa_pdb_and_servicemonitor_select_the_gateway_pods(rendered):
    case, objects, _ = rendered
    gateway = one(objects, "Deployment", "ai-gateway" if case == "all-options" else "rel-gateway")
    labels = gateway["spec"]["template"]["metadata"]["labels"]
    service = one(objects, "Service")
    assert service["spec"]["selector"].items() <= labels.items()
    assert gateway["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    for worker in by_kind(objects, "Deployment"):
        if worker is not gateway:      # the Service and the PDB never pick a worker pod
            assert not service["spec"]["selector"].items() <= worker["spec"]["template"]["metadata"]["labels"].items()
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
    if case != "all-options":
        return
    assert pdb["spec"].get("minAvailable") == 2 and "maxUnavailable" not in pdb["spec"]
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": gateway["metadata"]["name"]}
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"]} == {"cpu", "memory"}
    monitor = one(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    endpoint, = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] and endpoint["path"] == "/metrics"
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == alerts_job()     # job="gateway"
    credentials = endpoint["authorization"]["credentials"]
    secret = one(objects, "Secret", credentials["name"])
    assert credentials["key"] in secret["stringData"]
    config = yaml.safe_load(one(objects, "ConfigMap", gateway["metadata"]["name"])["data"]["gateway.yaml"])
    assert config["server"]["metrics"]["token"] == "${" + credentials["key"] + ":-}"


def test_the_gpu_worker_asks_for_a_gpu_and_shares_config_and_videos():
    objects, notes = render(values_of("all-options"))
    worker = one(objects, "Deployment", "ai-gateway-worker")
    gateway = one(objects, "Deployment", "ai-gateway")
    pod = worker["spec"]["template"]["spec"]
    container, = pod["containers"]
    assert container["args"] == ["gateway", "worker", "--provider", "ltx-local"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "readinessProbe" not in container              # a worker serves no HTTP
    assert pod["runtimeClassName"] == "nvidia"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/models"]["readOnly"] and volumes["models"]["persistentVolumeClaim"]["claimName"] == "video-models"
    gateway_pod = gateway["spec"]["template"]["spec"]
    gateway_volumes = {v["name"]: v for v in gateway_pod["volumes"]}
    for name in ("config", "videos"):
        assert volumes[name] == gateway_volumes[name]
    assert pod["securityContext"] == gateway_pod["securityContext"]
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert {e["name"]: e.get("value") for e in container["env"]}["HOME"] == "/tmp"
    assert "GPU workers: 2 pod(s)" in notes


def test_prometheus_rule_and_dashboard_are_the_shipped_files():
    files = CHART / "files"
    assert (files / "alerts.yml").resolve() == ALERTS.resolve()
    assert (files / "dashboard.json").resolve() == DASHBOARD.resolve()
    objects, _ = render(values_of("all-options"))
    rule = one(objects, "PrometheusRule")
    assert rule["spec"]["groups"] == _yaml(ALERTS)["groups"]
    dashboard = one(objects, "ConfigMap", "ai-gateway-dashboard")
    assert json.loads(dashboard["data"]["gateway.json"]) == json.loads(DASHBOARD.read_text())
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"


@pytest.mark.parametrize(("values", "message"), [
    ({"replicaCount": 2}, "need Redis"),
    ({"autoscaling": {"enabled": True}}, "need Redis"),
    ({"worker": {"enabled": True, "models": {"hostPath": "/models"}}}, "need Redis"),
    ({"redis": {"url": "redis://r:6379/0"}, "worker": {"enabled": True}}, "weights"),
    ({"secrets": {"existingSecret": "mine"}, "redis": {"url": "redis://r:6379/0"}}, "existingSecret"),
    ({"config": {"videos": {"assets_dir": None}}}, "assets_dir"),
])
def test_the_chart_refuses_values_it_cannot_serve(values, message):
    with helm.Chart.load(str(CHART)) as chart, pytest.raises(helm.HelmError, match=message):
        chart.render(values, name="rel", namespace="ns", is_install=True)


def test_existing_secrets_replace_the_charts_secret():
    objects, _ = render({"secrets": {"existingSecret": "mine"}, "replicaCount": 2,
                         "redis": {"existingSecret": "mine", "existingSecretKey": "REDIS_URL"}})
    assert by_kind(objects, "Secret") == []
    container, = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"secretRef": {"name": "mine"}}]
    redis, = (e for e in container["env"] if e["name"] == "REDIS_URL")
    assert redis["valueFrom"]["secretKeyRef"] == {"name": "mine", "key": "REDIS_URL"}


# --- metric names ----------------------------------------------------------------------------------------------

def test_deploy_files_name_only_metrics_the_gateway_exports():
    texts = [p.read_text() for p in (DEPLOY / "README.md", COMPOSE, DEPLOY / "compose" / "prometheus.yml",
                                     CHART / "templates" / "NOTES.txt", CHART / "values.yaml")]
    named = set().union(*(metric_names(t) for t in texts))
    assert named <= METRICS, named - METRICS
