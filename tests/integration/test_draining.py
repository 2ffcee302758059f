"""A stop drains before it closes the port (services/common/serve.py): for PULSE_DRAIN_SECONDS
after SIGTERM, /readyz answers 503 (`"checks": {"draining": true}`) while requests are still
served, so a load balancer polling readiness stops sending first; a second signal, or a
SIGINT alone (Ctrl-C), stops at once."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.support.services import Pipeline, ServiceProcess

DRAIN_SECONDS = 4


@contextmanager
def _draining(pipeline: Pipeline, name: str) -> Iterator[ServiceProcess]:
    """A second service of the pipeline's (same topics), draining DRAIN_SECONDS on a stop;
    killed at the end if a failed test left it running."""
    base = pipeline.ingest if name == "ingest" else pipeline.gateway
    service = ServiceProcess(name, {**base.env, "PULSE_DRAIN_SECONDS": str(DRAIN_SECONDS)})
    service.start()
    try:
        yield service
    finally:
        if service.proc is not None and service.proc.poll() is None:
            service.kill()


def _wait_draining(service: ServiceProcess, signalled: float) -> httpx.Response:
    """/readyz once the signal was handled (on the service's loop, soon after it arrived)."""
    ready = httpx.get(f"{service.url}/readyz")
    while ready.status_code == 200 and time.monotonic() - signalled < 2:
        ready = httpx.get(f"{service.url}/readyz")
    return ready


def test_after_sigterm_readyz_says_draining_and_events_are_still_accepted(
    pipeline: Pipeline,
) -> None:
    project = pipeline.create_project("draining")
    with _draining(pipeline, "ingest") as service:
        assert service.proc is not None
        assert httpx.get(f"{service.url}/readyz").status_code == 200
        signalled = time.monotonic()
        service.proc.send_signal(signal.SIGTERM)
        ready = _wait_draining(service, signalled)
        assert (ready.status_code, ready.json()["checks"]) == (503, {"draining": True})
        assert httpx.get(f"{service.url}/livez").status_code == 200
        # Still served, and as durably as ever: counted by the pipeline's consumer.
        sent = httpx.post(
            f"{service.url}/v1/batch",
            json={"batch": [{"type": "track", "event": "e", "userId": "u", "messageId": "m1"}]},
            auth=(project["write_key"], ""),
        )
        assert (sent.status_code, sent.json()) == (200, {"success": True})
        # uvicorn ends the process by the signal it caught, once it has shut down.
        assert service.proc.wait(DRAIN_SECONDS + 20) == -signal.SIGTERM
        assert time.monotonic() - signalled >= DRAIN_SECONDS
    assert pipeline.wait_processed(project["read_key"], 1)["events_processed"] == 1


def test_a_second_signal_ends_the_drain(pipeline: Pipeline) -> None:
    with _draining(pipeline, "ingest") as service:
        assert service.proc is not None
        signalled = time.monotonic()
        service.proc.send_signal(signal.SIGTERM)
        assert _wait_draining(service, signalled).status_code == 503
        service.proc.send_signal(signal.SIGINT)
        assert service.proc.wait(DRAIN_SECONDS + 20) in (-signal.SIGINT, -signal.SIGTERM)
        assert time.monotonic() - signalled < DRAIN_SECONDS


def test_ctrl_c_stops_without_draining(pipeline: Pipeline) -> None:
    """SIGINT comes from a person at a terminal: nobody polls /readyz there."""
    with _draining(pipeline, "ingest") as service:
        assert service.proc is not None
        signalled = time.monotonic()
        service.proc.send_signal(signal.SIGINT)
        assert service.proc.wait(DRAIN_SECONDS + 20) == -signal.SIGINT
        assert time.monotonic() - signalled < DRAIN_SECONDS


def test_a_gateway_drains_too(pipeline: Pipeline) -> None:
    project = pipeline.create_project(f"draining-{uuid.uuid4().hex[:6]}")
    with _draining(pipeline, "gateway") as service:
        assert service.proc is not None
        signalled = time.monotonic()
        service.proc.send_signal(signal.SIGTERM)
        ready = _wait_draining(service, signalled)
        assert (ready.status_code, ready.json()["checks"]) == (503, {"draining": True})
        status = httpx.get(
            f"{service.url}/v1/status",
            headers={"Authorization": f"Bearer {project['read_key']}"},
        )
        assert status.status_code == 200, status.text
        assert service.proc.wait(DRAIN_SECONDS + 20) == -signal.SIGTERM
