"""A generated product through the official Segment client, with duplicates, late deliveries,
identity merges, a consumer SIGKILLed mid-load and a second consumer joining and leaving.
Every day's numbers must equal the oracle's, and nothing may be counted twice.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from segment.analytics import Client

from tests.support import oracle, product
from tests.support.delivery import messy_order, send
from tests.support.services import Pipeline, ServiceProcess

START = datetime(2026, 8, 3, tzinfo=UTC)
DAYS = 28
PERSONS = 1500


@pytest.fixture(scope="module")
def pipeline(stack_env: dict[str, str]) -> Iterator[Pipeline]:
    p = Pipeline.start(
        stack_env, "e2e-product", PULSE_BATCH_MAX_EVENTS="500", PULSE_BATCH_MAX_SECONDS="0.1"
    )
    yield p
    p.stop()


def test_generated_product_equals_the_oracle_through_crash_and_rebalance(
    pipeline: Pipeline,
) -> None:
    project = pipeline.create_project("generated-product")
    rng = random.Random(2026)
    events = product.generate(rng, PERSONS, START, DAYS)
    # 5% of events delivered late (after all others), 3% sent twice.
    order, duplicates = messy_order(rng, events)

    errors: list[object] = []
    client = Client(
        project["write_key"],
        host=pipeline.ingest.url,
        max_queue_size=len(order) + 1,
        on_error=lambda error, batch: errors.append(error),
        upload_size=250,
    )
    sending = threading.Thread(target=lambda: [send(client, e) for e in order])
    sending.start()

    # Mid-load: a second consumer joins the group (rebalance), the first is SIGKILLed,
    # then comes back, and the second leaves.
    second = ServiceProcess("metrics", pipeline.metrics.env)
    _wait_processed_at_least(pipeline, project["read_key"], len(events) // 5)
    second.start()
    _wait_processed_at_least(pipeline, project["read_key"], len(events) // 3)
    pipeline.metrics.kill(signal.SIGKILL)
    sending.join(120)
    client.flush()
    client.join()
    pipeline.metrics.start()
    time.sleep(2)
    second.stop()

    assert errors == []
    status = pipeline.wait_processed(project["read_key"], len(events), timeout=120)
    assert status["events_processed"] == len(events)
    assert status["duplicates_dropped"] == len(duplicates)

    first, last = START.date(), START.date() + timedelta(days=DAYS + 3)
    query = {"from": first.isoformat(), "to": last.isoformat()}
    got = pipeline.read("/v1/activity", project["read_key"], **query)
    assert got["days"] == oracle.activity(events, first, last)
    for period in ("day", "week"):
        lifecycle = pipeline.read("/v1/lifecycle", project["read_key"], period=period, **query)
        assert lifecycle["periods"] == oracle.lifecycle(events, first, last, period)
    stickiness = pipeline.read("/v1/stickiness", project["read_key"], period="week", **query)
    assert stickiness["periods"] == oracle.stickiness(events, first, last, "week")
    top = pipeline.read("/v1/events", project["read_key"], **query)
    assert top["events"] == oracle.top_events(events, first, last)


def _wait_processed_at_least(pipeline: Pipeline, read_key: str, n: int) -> None:
    deadline = time.monotonic() + 60
    while pipeline.read("/v1/status", read_key)["events_processed"] < n:
        assert time.monotonic() < deadline, f"fewer than {n} events processed after 60 s"
        time.sleep(0.1)
