"""`make run` (deploy/local/run.py) stops the services before Kafka and PostgreSQL, so that the
metrics service's SIGTERM can still finish and commit its batch, and starts again a service that
exits, unless it keeps exiting."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
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


def _fake_start(lives: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A `_start` whose n-th start of a service runs the n-th of its Python snippets."""
    started: dict[str, int] = {}

    def start(name: str, _env: dict[str, str]) -> subprocess.Popen[bytes]:
        n = started.get(name, 0)
        started[name] = n + 1
        return subprocess.Popen([sys.executable, "-c", lives[name][min(n, len(lives[name]) - 1)]])

    return start, started


def test_a_service_that_exits_is_started_again_until_ctrl_c(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The metrics service exits twice (as after `Rewound`), then stays up; the ingest stays up.
    start, started = _fake_start(
        {
            "metrics": [
                "raise SystemExit(1)",
                "raise SystemExit(1)",
                "import time; time.sleep(60)",
            ],
            "ingest": ["import time; time.sleep(60)"],
        }  # fmt: skip
    )
    monkeypatch.setattr(run, "_start", start)
    monkeypatch.setattr(run, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(run, "RESTART_DELAY", 0.2)  # then 0.4 s: both within the 3 s watched
    procs = [(name, start(name, {})) for name in ("ingest", "metrics")]
    ticks = iter(range(60))
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        if next(ticks, None) == 59:  # about 3 s of watching: then Ctrl-C
            raise KeyboardInterrupt
        real_sleep(seconds)

    monkeypatch.setattr(run.time, "sleep", sleep)
    with pytest.raises(KeyboardInterrupt):
        run._watch(procs, {})
    try:
        assert started == {"ingest": 1, "metrics": 3}
        assert all(proc.poll() is None for _, proc in procs)  # both running at Ctrl-C
    finally:
        run._stop(procs)


def test_a_service_that_keeps_exiting_stops_the_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    start, started = _fake_start({"gateway": ["raise SystemExit(3)"]})
    monkeypatch.setattr(run, "_start", start)
    monkeypatch.setattr(run, "WATCH_SECONDS", 0.05)
    monkeypatch.setattr(run, "RESTART_LIMIT", 2)
    monkeypatch.setattr(run, "RESTART_DELAY", 0.2)
    procs = [("gateway", start("gateway", {}))]

    began = time.monotonic()
    assert run._watch(procs, {}) == 1
    assert started == {"gateway": 3}  # the first start and RESTART_LIMIT more
    assert time.monotonic() - began >= 0.2 + 0.4  # each restart waited, twice as long as before
