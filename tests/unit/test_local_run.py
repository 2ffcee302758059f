"""`make run` stops the services before Kafka and PostgreSQL, so that the metrics service's
SIGTERM can still finish and commit its batch (deploy/local/run.py)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from deploy.local import run


def test_ctrl_c_stops_the_services_while_the_stack_still_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alive_when_the_stack_stopped: list[bool] = []
    service: list[subprocess.Popen[bytes]] = []

    @contextlib.contextmanager
    def stack(_data_dir: object) -> Iterator[dict[str, str]]:
        try:
            yield {}
        finally:  # what local_stack does on the way out: stop Kafka and PostgreSQL
            alive_when_the_stack_stopped.append(service[0].poll() is None)

    def serve(
        _started: float, _env: dict[str, str], procs: list[tuple[str, subprocess.Popen[bytes]]]
    ) -> int:
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        service.append(proc)
        procs.append(("metrics", proc))
        raise KeyboardInterrupt  # Ctrl-C while the stack runs

    monkeypatch.setattr(run, "local_stack", stack)
    monkeypatch.setattr(run, "_serve", serve)

    assert run.main() == 0
    assert alive_when_the_stack_stopped == [False]
    assert service[0].returncode == -15  # SIGTERM, not the 20 s kill
