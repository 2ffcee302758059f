"""PostgreSQL losing its last commits, and PostgreSQL down: no event lost, none counted twice.

Batches commit asynchronously (services/metrics/store.py): a database crash may lose the latest
commits, each whole with its consumer offsets, as a failover to a replica that was behind or a
restore from a backup does. Here the database is stopped and started again from a copy of its
files taken a load earlier, a loss the test controls (a crash loses what the WAL writer had not
written yet, which depends on its timing). The metrics service, idle through it, must not carry
on after the batches the database lost (offsets.py): it stops with `Rewound`, and when
restarted resumes from what PostgreSQL holds; Kafka still has every event after that. Then,
with the database stopped, the ingest still acknowledges events (common/projects.py), the
gateway answers reads with 503 (common/http.py), and the metrics service, retrying its batch
(metrics/runner.py), applies them once it is back. At the end every number equals the oracle's,
a client's retry of events whose batches were lost counted as duplicates only.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from deploy.local.stack import Postgres, free_port, postgres_bin
from services.common.settings import GatewaySettings
from tests.support import oracle
from tests.support.crash_load import random_events, segment_message
from tests.support.services import Pipeline, ServiceProcess

START = date(2026, 9, 1)
BATCH_SIZE = 100
GROUP = "e2e-dbcrash.metrics"
# How long the gateway may reuse a read of a project's version (the pipeline's default).
STALENESS_SECONDS = GatewaySettings.model_fields["read_cache_staleness_seconds"].default


def _psql(database: Postgres, sql: str) -> str:
    return subprocess.run(
        [str(postgres_bin() / "psql"), database.url, "-tAc", sql],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture(scope="module")
def database() -> Iterator[Postgres]:
    data_dir = Path(tempfile.mkdtemp(prefix="pulse-dbcrash-"))
    database = Postgres(data_dir, free_port())  # durable: fsync on
    database.start()
    try:
        subprocess.run(
            [str(Path(sys.executable).parent / "pulse"), "migrate"],
            env={**os.environ, "DATABASE_URL": database.url},
            check=True,
            capture_output=True,
        )
        yield database
    finally:
        database.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pipeline(stack_env: dict[str, str], database: Postgres) -> Iterator[Pipeline]:
    p = Pipeline.start(
        {**stack_env, "DATABASE_URL": database.url},
        "e2e-dbcrash",
        PULSE_BATCH_MAX_EVENTS="200",
        PULSE_BATCH_MAX_SECONDS="0.05",
    )
    yield p
    p.stop()


def _send(pipeline: Pipeline, write_key: str, events: list[oracle.SentEvent]) -> None:
    url = f"{pipeline.ingest.url}/v1/batch"
    with httpx.Client(auth=(write_key, ""), timeout=15) as client:
        for i in range(0, len(events), BATCH_SIZE):
            body = {"batch": [segment_message(e) for e in events[i : i + BATCH_SIZE]]}
            response = client.post(url, json=body)
            assert response.status_code == 200, response.text


def _copy_files(database: Postgres, source: str, target: str) -> None:
    """Copy the stopped database's data directory, owners and modes kept."""
    shutil.rmtree(database.data_dir / target, ignore_errors=True)
    subprocess.run(
        ["cp", "-a", str(database.data_dir / source), str(database.data_dir / target)], check=True
    )


def _wait_logged(service: ServiceProcess, since: int, needle: bytes, timeout: float = 30) -> None:
    """Wait until `service` logs `needle` after byte `since` of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in service.log_since(since):
            return
        time.sleep(0.2)
    raise AssertionError(f"{service.name} did not log {needle!r} within {timeout}s")


def _applied(database: Postgres) -> tuple[int, int]:
    """(events processed, sum of the stored offsets) as PostgreSQL holds them."""
    row = _psql(
        database,
        "SELECT (SELECT coalesce(sum(events_processed), 0) FROM project_stats),"
        " (SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"
        f"  WHERE consumer_group = '{GROUP}')",
    )
    processed, offsets = row.split("|")
    return int(processed), int(offsets)


def test_lost_commits_and_an_outage_change_no_number(
    pipeline: Pipeline, database: Postgres
) -> None:
    project = pipeline.create_project("dbcrash")
    rng = random.Random(5)
    first = random_events(rng, 1500)
    _send(pipeline, project["write_key"], first)
    pipeline.wait_processed(project["read_key"], len(first))
    database.stop()
    _copy_files(database, "pgdata", "pgdata.kept")
    database.start()

    second = random_events(rng, 700)
    _send(pipeline, project["write_key"], second)
    pipeline.wait_processed(project["read_key"], len(first) + len(second))
    before = _applied(database)
    # The database comes back without the batches of `second`.
    database.stop()
    _copy_files(database, "pgdata.kept", "pgdata")
    database.start()
    after = _applied(database)
    assert after[0] == len(first) and after[1] < before[1], (before, after)

    # New events, and a client retry of acknowledged ones whose batches were lost.
    logged = pipeline.metrics.log.stat().st_size
    third = random_events(rng, 500)
    retried = second[-150:]
    _send(pipeline, project["write_key"], third + retried)
    # The consumer finds PostgreSQL's offsets older than the ones it stored, and stops with
    # code 1 (a failure; a stop by SIGTERM ends by that signal)...
    assert pipeline.metrics.proc is not None
    assert pipeline.metrics.proc.wait(60) == 1
    assert b"Rewound" in pipeline.metrics.log_since(logged)
    pipeline.metrics.start()  # ...and, restarted (as a supervisor does), resumes from PostgreSQL
    applied = first + second + third
    pipeline.wait_processed(project["read_key"], len(applied))

    # PostgreSQL down: the ingest still acknowledges (the keys it loaded still authenticate,
    # and the events are durable in Kafka); the metrics service applies them once the database
    # is back. The gateway's reads answer 503 with Retry-After, never a 500.
    logged = pipeline.metrics.log.stat().st_size
    database.stop()
    stopped = time.monotonic()
    ingest_ready = httpx.get(f"{pipeline.ingest.url}/readyz")
    during = random_events(rng, 500)
    _send(pipeline, project["write_key"], during)
    day = {"from": START.isoformat(), "to": START.isoformat()}
    # The gateway may reuse a version it read before the stop for this long, and with it a
    # cached answer (the status polled just above): the reads come after that.
    time.sleep(max(0.0, stopped + STALENESS_SECONDS - time.monotonic()))
    reads = [
        httpx.get(
            f"{pipeline.gateway.url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {project['read_key']}"},
            timeout=10,
        )
        for path, params in (("/v1/activity", day), ("/v1/sessions", day), ("/v1/status", {}))
    ]
    # The running metrics service tries its batch again instead of exiting...
    _wait_logged(pipeline.metrics, logged, b'"during":"batch"')
    assert pipeline.metrics.proc.poll() is None, "the metrics service exited during the outage"
    # Stopped now, it leaves its batch to the next start: a stop, not a failure.
    pipeline.metrics.stop()
    stopping = pipeline.metrics.log_since(logged)
    assert b"stopped_with_batch_unapplied" in stopping
    assert b"consumer_failed" not in stopping
    # ...and one started while the database is down waits for it too, from its first claim.
    logged = pipeline.metrics.log.stat().st_size
    pipeline.metrics.start(ready=False)
    _wait_logged(pipeline.metrics, logged, b'"during":"claim"')
    metrics_ready = httpx.get(f"{pipeline.metrics.url}/readyz")
    database.start()
    assert ingest_ready.status_code == 200, ingest_ready.text
    assert ingest_ready.json()["checks"]["postgres"] is False
    assert metrics_ready.status_code == 503, metrics_ready.text
    assert metrics_ready.json()["checks"]["postgres"] is False
    for read in reads:
        assert read.status_code == 503, read.text
        assert read.json()["code"] == "database_unavailable"
        assert read.headers["Retry-After"] == "5"

    sent = applied + during
    status = pipeline.wait_processed(project["read_key"], len(sent))
    assert pipeline.metrics.proc.poll() is None, "the metrics service exited during the outage"
    assert status["events_processed"] == len(sent)
    assert status["duplicates_dropped"] == len(retried)
    stop = START + timedelta(days=10)
    got = pipeline.read(
        "/v1/activity", project["read_key"], **{"from": START.isoformat(), "to": stop.isoformat()}
    )
    assert got["days"] == oracle.activity(sent, START, stop)
