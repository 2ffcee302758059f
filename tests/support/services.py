"""Real Pulse service processes for integration and end-to-end tests (no mocks of Kafka/PG)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.local.stack import free_port

BIN = Path(sys.executable).parent
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ADMIN_TOKEN = "test-admin-token"


def _default_interrupt() -> None:
    """Give the service SIGINT's default action, as a terminal or an orchestrator starts it.
    A test run started in the background (`make test &`, nohup) ignores SIGINT, and a child
    inherits that: uvicorn, ending by the signal it caught, would then exit 0 on Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class ServiceProcess:
    name: str  # ingest | metrics | gateway
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """Where the process writes (appended to across starts and test runs)."""
        return ARTIFACTS / f"{self.env.get('PULSE_EVENTS_TOPIC', 'events')}-{self.name}.log"

    def peak_rss_kb(self) -> int:
        """The most memory the running process has held (its VmHWM), in KB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def log_since(self, offset: int) -> bytes:
        """What the process wrote to its log after byte `offset` (a `log.stat().st_size`)."""
        with self.log.open("rb") as log:
            log.seek(offset)
            return log.read()

    def start(self, timeout: float = 60, ready: bool = True) -> None:
        """Start the process and wait until it is ready (`/readyz`), or only up (`/livez`)."""
        ARTIFACTS.mkdir(exist_ok=True)
        # No drain on stop (services/common/serve.py) unless a test asks for one.
        env = {
            "PULSE_DRAIN_SECONDS": "0",
            **os.environ,
            **self.env,
            f"PULSE_{self.name.upper()}_PORT": str(self.port),
        }
        log = self.log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(BIN / f"pulse-{self.name}")],
                env=env,
                stdout=out,
                stderr=out,
                preexec_fn=_default_interrupt,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {log}")
            try:
                probe = "/readyz" if ready else "/livez"
                if httpx.get(f"{self.url}{probe}", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {log}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill(signal.SIGTERM)


@dataclass
class Pipeline:
    """ingest + metrics + gateway on their own topics and consumer group, sharing the stack."""

    ingest: ServiceProcess
    metrics: ServiceProcess
    gateway: ServiceProcess

    @classmethod
    def start(cls, stack_env: dict[str, str], name: str, **extra: str) -> Pipeline:
        env = {
            **stack_env,
            "PULSE_ADMIN_TOKEN": ADMIN_TOKEN,
            "PULSE_EVENTS_TOPIC": f"{name}.events",
            "PULSE_REJECTED_TOPIC": f"{name}.rejected",
            "PULSE_DLQ_TOPIC": f"{name}.dlq",
            "PULSE_CONSUMER_GROUP": f"{name}.metrics",
            "PULSE_PROJECT_CACHE_SECONDS": "0.2",
            **extra,
        }
        pipeline = cls(*(ServiceProcess(n, env) for n in ("ingest", "metrics", "gateway")))
        for service in (pipeline.ingest, pipeline.metrics, pipeline.gateway):
            service.start()
        return pipeline

    def stop(self) -> None:
        for service in (self.ingest, self.metrics, self.gateway):
            service.stop()

    def create_project(self, name: str, timezone: str = "UTC") -> dict[str, str]:
        response = httpx.post(
            f"{self.gateway.url}/v1/projects",
            json={"name": name, "timezone": timezone},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert response.status_code == 201, response.text
        project: dict[str, str] = response.json()
        time.sleep(0.5)  # the services' key caches refresh every 0.2 s in tests
        return project

    def create_funnel(self, read_key: str, *events: str, window_seconds: int = 86400) -> int:
        """A funnel through `events` in order, in the read key's project; its id."""
        response = httpx.post(
            f"{self.gateway.url}/v1/funnels",
            json={
                "name": " -> ".join(events),
                "steps": [{"event": e} for e in events],
                "window_seconds": window_seconds,
            },
            headers={"Authorization": f"Bearer {read_key}"},
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def read(self, path: str, read_key: str, **params: str) -> dict:  # type: ignore[type-arg]
        response = httpx.get(
            f"{self.gateway.url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {read_key}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_processed(
        self, read_key: str, expected: int, timeout: float = 60, rejected: int = 0
    ) -> dict:  # type: ignore[type-arg]
        """Poll /v1/status until `expected` events and `rejected` rejections were applied and
        nothing is left in Kafka. A test that counts rejections names how many: the gateway
        reads the topics' end offsets at most once a second (freshness.py), so a record sent in
        the last second can be missing from a `lag` of 0, its rejection not applied yet."""
        deadline = time.monotonic() + timeout
        status: dict = {}  # type: ignore[type-arg]
        while time.monotonic() < deadline:
            status = self.read("/v1/status", read_key)
            applied = status["events_processed"] >= expected and status["rejected"] >= rejected
            if applied and status["lag"] == 0:
                return status
            time.sleep(0.2)
        raise AssertionError(
            f"only {status} after {timeout}s, expected {expected} events, {rejected} rejected"
        )
