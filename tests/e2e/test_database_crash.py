"""SIGKILL of PostgreSQL during a load: the last batches' commits are lost, no number changes.

Batches commit asynchronously (services/metrics/store.py): a database crash may lose the latest
commits, each whole with its consumer offsets. This database is durable (fsync on) and writes
its WAL late (`wal_writer_delay` 10 s, so the tail of a load stays in its WAL buffers): killed
right after a load, it comes back without the last batches, as a crash may leave any database.
The metrics service must not carry on after them (offsets.py): it stops, and when restarted
resumes from what PostgreSQL holds; Kafka still has every event after that. At the end every
number equals the oracle's, duplicates sent across the crash included.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.stack import Postgres, free_port, postgres_bin
from tests.support import oracle
from tests.support.services import Pipeline

START = date(2026, 9, 1)
BATCH_SIZE = 100
GROUP = "e2e-dbcrash.metrics"
# Write the WAL late, and leave nothing else that flushes it: a dirty page written out, a
# checkpoint or a transaction that commits synchronously flushes all WAL inserted before it.
LATE_WAL = {
    "wal_writer_delay": "10s",
    "wal_writer_flush_after": "1GB",
    "bgwriter_lru_maxpages": "0",
    "checkpoint_timeout": "1h",
    "autovacuum": "off",
}


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
    database = Postgres(data_dir, free_port())  # durable: fsync on, synchronous commit on
    database.start()
    try:
        for name, value in LATE_WAL.items():
            _psql(database, f"ALTER SYSTEM SET {name} = '{value}'")
        _psql(database, "SELECT pg_reload_conf()")
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


def _events(rng: random.Random, n: int) -> list[oracle.SentEvent]:
    return [
        oracle.SentEvent(
            str(uuid.uuid4()),
            rng.choice(["track", "page", "identify"]),
            f"person-{rng.randint(0, 300)}",
            datetime(2026, 9, 1, tzinfo=UTC)
            + timedelta(days=rng.randint(0, 9), hours=rng.randint(1, 22)),
        )
        for _ in range(n)
    ]


def _wire(e: oracle.SentEvent) -> dict[str, object]:
    message: dict[str, object] = {
        "type": e.type,
        "messageId": e.message_id,
        "userId": e.person,
        "timestamp": e.timestamp.isoformat(),
    }
    if e.type == "track":
        message["event"] = "clicked"
    return message


def _retried(call: Any, attempts: int = 50) -> httpx.Response:
    """Like an SDK: retry a 5xx (services whose database connections died answer with one
    until they reconnect)."""
    for _ in range(attempts):
        response: httpx.Response = call()
        if response.status_code < 500:
            return response
        time.sleep(0.2)
    return response


def _send(pipeline: Pipeline, write_key: str, events: list[oracle.SentEvent]) -> None:
    url = f"{pipeline.ingest.url}/v1/batch"
    with httpx.Client(auth=(write_key, ""), timeout=15) as client:
        for i in range(0, len(events), BATCH_SIZE):
            body = {"batch": [_wire(e) for e in events[i : i + BATCH_SIZE]]}
            response = _retried(lambda body=body: client.post(url, json=body))
            assert response.status_code == 200, response.text


def _crash(database: Postgres) -> None:
    """SIGKILL the postmaster and every process it started, and wait until they are gone."""
    assert database.proc is not None
    postmaster = int((database.data_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    found = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True)
    pids = [postmaster, *map(int, found.stdout.split())]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    database.proc.wait(30)
    deadline = time.monotonic() + 30
    while any(_alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "PostgreSQL's processes outlived SIGKILL"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _applied(database: Postgres) -> tuple[int, int]:
    """(events processed, sum of the stored offsets) as PostgreSQL holds them."""
    processed = _psql(database, "SELECT coalesce(sum(events_processed), 0) FROM project_stats")
    offsets = _psql(
        database,
        "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"
        f" WHERE consumer_group = '{GROUP}'",
    )
    return int(processed), int(offsets)


def test_a_database_crash_loses_commits_but_no_number(
    pipeline: Pipeline, database: Postgres
) -> None:
    project = pipeline.create_project("dbcrash")
    rng = random.Random(5)
    first = _events(rng, 1500)
    _send(pipeline, project["write_key"], first)
    pipeline.wait_processed(project["read_key"], len(first))
    before = _applied(database)
    assert before[0] == len(first)

    _crash(database)
    database.start()  # crash recovery replays the WAL that reached the disk
    after = _applied(database)
    assert after[0] < before[0] and after[1] < before[1], (before, after)

    # New events, and a client retry of acknowledged ones (some applied only in lost batches).
    second = _events(rng, 1000)
    retried = first[-150:]
    _send(pipeline, project["write_key"], second + retried)
    # The consumer finds its stored offsets gone (or its connection dead) and stops...
    assert pipeline.metrics.proc is not None
    assert pipeline.metrics.proc.wait(60) != 0
    pipeline.metrics.start()  # ...and, restarted (as a supervisor does), resumes from PostgreSQL

    sent = first + second
    status = pipeline.wait_processed(project["read_key"], len(sent))
    assert status["events_processed"] == len(sent)
    assert status["duplicates_dropped"] == len(retried)
    stop = START + timedelta(days=10)
    got = _retried(
        lambda: httpx.get(
            f"{pipeline.gateway.url}/v1/activity",
            params={"from": START.isoformat(), "to": stop.isoformat()},
            headers={"Authorization": f"Bearer {project['read_key']}"},
        )
    ).json()
    assert got["days"] == oracle.activity(sent, START, stop)
