"""End to end: the official Segment client -> ingest -> Kafka -> metrics -> Postgres -> gateway."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from segment.analytics import Client

from tests.support import oracle
from tests.support.services import Pipeline

START = date(2026, 10, 1)
DAYS = 6


@pytest.fixture(scope="module")
def pipeline(stack_env: dict[str, str]) -> Iterator[Pipeline]:
    p = Pipeline.start(stack_env, "e2e-segment")
    yield p
    p.stop()


def _history(rng: random.Random) -> list[oracle.SentEvent]:
    """A few hundred events for 40 users over six days, at hours safely inside each day."""
    events = []
    for n in range(40):
        person = f"user-{n}"
        for day in sorted(rng.sample(range(DAYS), rng.randint(1, 4))):
            for _ in range(rng.randint(1, 5)):
                at = datetime(2026, 10, 1, tzinfo=UTC) + timedelta(
                    days=day, hours=rng.randint(1, 22), minutes=rng.randint(0, 59)
                )
                events.append(oracle.SentEvent(str(uuid.uuid4()), "track", person, at))
    return events


def test_segment_client_numbers_equal_a_recomputation(pipeline: Pipeline) -> None:
    project = pipeline.create_project("segment-e2e")
    rng = random.Random(7)
    events = _history(rng)
    errors: list[object] = []
    client = Client(
        project["write_key"],
        host=pipeline.ingest.url,
        on_error=lambda error, batch: errors.append(error),
        max_retries=2,
    )
    for e in events:
        client.track(
            user_id=e.person, event="viewed", timestamp=e.timestamp, message_id=e.message_id
        )
    # Not activity: an identify must not count towards DAU or events.
    client.identify(user_id="user-0", traits={"plan": "vip"}, timestamp=events[0].timestamp)
    # A duplicate send of an already-sent messageId counts once.
    duplicate = events[0]
    client.track(
        user_id=duplicate.person,
        event="viewed",
        timestamp=duplicate.timestamp,
        message_id=duplicate.message_id,
    )
    client.flush()
    client.join()
    assert errors == []
    assert len(events) > 200

    status = pipeline.wait_processed(project["read_key"], len(events) + 1)  # + the identify
    assert status["events_processed"] == len(events) + 1
    assert status["duplicates_dropped"] == 1
    assert status["rejected"] == 0

    stop = START + timedelta(days=DAYS + 2)
    got = pipeline.read(
        "/v1/activity", project["read_key"], **{"from": START.isoformat(), "to": stop.isoformat()}
    )
    assert got["days"] == oracle.activity(events, START, stop)
    assert got["freshness"]["lag"] == 0
    assert got["freshness"]["processed_through"] is not None
