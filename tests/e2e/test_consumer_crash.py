"""SIGKILL of the metrics consumer during a load: no event lost, none counted twice.

Offsets are stored in the same PostgreSQL transaction as the aggregates, so a restarted consumer
resumes exactly after the last applied batch. `duplicates_dropped` must equal the duplicates we
really sent: if a batch were re-applied after the crash, dedup would hide it in the activity
numbers but not in that counter.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest

from tests.support import oracle
from tests.support.crash_load import random_events, segment_message
from tests.support.services import Pipeline

START = date(2026, 9, 1)
BATCHES = 40
BATCH_SIZE = 100


@pytest.fixture(scope="module")
def pipeline(stack_env: dict[str, str]) -> Iterator[Pipeline]:
    # Small, frequent batches so the kill lands between many of them.
    p = Pipeline.start(
        stack_env, "e2e-crash", PULSE_BATCH_MAX_EVENTS="200", PULSE_BATCH_MAX_SECONDS="0.05"
    )
    yield p
    p.stop()


def _settled_count(pipeline: Pipeline, read_key: str) -> int:
    """`events_processed` once it stops moving: a batch whose COMMIT reached PostgreSQL before
    the kill still lands, and the gateway may answer from a response up to its staleness bound
    (PULSE_READ_CACHE_STALENESS_SECONDS, 0.25 s) old, so the first read after the kill can be
    short of what was applied."""
    last = pipeline.read("/v1/status", read_key)["events_processed"]
    for _ in range(10):
        time.sleep(0.6)
        now = pipeline.read("/v1/status", read_key)["events_processed"]
        if now == last:
            return int(now)
        last = now
    raise AssertionError(f"events_processed still moving after the kill: {last}")


def test_sigkill_between_batches_changes_no_number(pipeline: Pipeline) -> None:
    project = pipeline.create_project("crash")
    rng = random.Random(11)
    sent: list[oracle.SentEvent] = []
    duplicates_sent = 0
    done = threading.Event()

    def send_all() -> None:
        nonlocal duplicates_sent
        with httpx.Client(auth=(project["write_key"], ""), timeout=15) as client:
            for n in range(BATCHES):
                batch = random_events(rng, BATCH_SIZE)
                if n % 10 == 5:  # a client retry of an already acknowledged batch
                    batch += sent[-20:]
                    duplicates_sent += 20
                response = client.post(
                    f"{pipeline.ingest.url}/v1/batch",
                    json={"batch": [segment_message(e) for e in batch]},
                )
                assert response.status_code == 200, response.text
                sent.extend(batch[:BATCH_SIZE])
                time.sleep(0.05)
        done.set()

    sender = threading.Thread(target=send_all)
    sender.start()
    # Kill once part of the load is applied, while more keeps arriving.
    deadline = time.monotonic() + 30
    while pipeline.read("/v1/status", project["read_key"])["events_processed"] < 600:
        assert time.monotonic() < deadline, "metrics never got going"
        time.sleep(0.05)
    pipeline.metrics.kill(signal.SIGKILL)
    processed_at_kill = _settled_count(pipeline, project["read_key"])
    sender.join(60)
    assert done.is_set()
    assert processed_at_kill < len(sent), "the kill came after everything was applied"
    # With the consumer down, the backlog shows as lag (records in Kafka not yet applied).
    backlog = pipeline.read("/v1/status", project["read_key"])
    assert backlog["events_processed"] == processed_at_kill
    assert backlog["lag"] >= len(sent) - processed_at_kill
    pipeline.metrics.start()

    status = pipeline.wait_processed(project["read_key"], len(sent))
    assert status["events_processed"] == len(sent)
    assert status["duplicates_dropped"] == duplicates_sent
    stop = START + timedelta(days=10)
    got = pipeline.read(
        "/v1/activity", project["read_key"], **{"from": START.isoformat(), "to": stop.isoformat()}
    )
    assert got["days"] == oracle.activity(sent, START, stop)
