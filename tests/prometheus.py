"""A real Prometheus for tests: the `prometheus` binary (Debian's package,
which brings `promtool` too; `.ci/run` installs it) on a free loopback port,
scraping what the test points it at, with its TSDB in a temporary folder."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def missing_binaries() -> list[str]:
    return [name for name in ("prometheus", "promtool") if shutil.which(name) is None]


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


class Prometheus:
    """`prometheus` scraping `targets` (host:port) as job `gateway` every `interval`, evaluating `rule_files`."""

    def __init__(self, targets: list[str], rule_files: list[Path] = (), interval: str = "1s",
                 token: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="prometheus-test-"))
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": "gateway", "metrics_path": "/metrics",
                                "static_configs": [{"targets": targets}]}],
        }
        if token is not None:      # as deploy/prometheus/prometheus.yml sends the gateway's scrape token
            config["scrape_configs"][0]["authorization"] = {"type": "Bearer", "credentials": token}
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = open(self.dir / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            ["prometheus", f"--config.file={self.dir / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.dir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--log.level=warn"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir)
        self.http = httpx.Client(base_url=self.url, timeout=10)
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                if self.http.get("/-/ready").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus not ready after {timeout}s: {self.log()[-2000:]}")
            time.sleep(0.1)

    def log(self) -> str:
        self._log.flush()
        return (self.dir / "prometheus.log").read_text(errors="replace")

    def api(self, path: str, **params: Any) -> Any:
        r = self.http.get(f"/api/v1/{path}", params=params)
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {r.status_code} {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """An instant query's result (a vector's series; a scalar as one series)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return data["result"]

    def scrapes(self) -> int:
        """Successful scrapes of the job in the last 5 minutes (the smallest over its targets)."""
        result = self.query('min(sum_over_time(up{job="gateway"}[5m]))')
        return int(float(result[0]["value"][1])) if result else 0

    def wait_scrapes(self, more: int, timeout: float = 30) -> None:
        """Until `more` successful scrapes beyond those done so far."""
        want = self.scrapes() + more
        deadline = time.monotonic() + timeout
        while self.scrapes() < want:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {want} scrapes after {timeout}s; targets: {self.api('targets')}")
            time.sleep(0.2)

    def close(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)
