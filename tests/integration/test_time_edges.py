"""Events at the first and last moments a record may hold (services/common/events.py), in the
timezones furthest ahead of and behind UTC, are counted and read back: no day arithmetic of the
consumer or of any read leaves the years a date can hold.

The ingest takes no event more than a day ahead of its clock, so the late edge comes from
another producer, straight to Kafka, as a replay could.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from services.common.events import EARLIEST_TIMESTAMP, LATEST_TIMESTAMP
from tests.support.services import Pipeline

EDGES = [EARLIEST_TIMESTAMP, LATEST_TIMESTAMP - timedelta(seconds=1)]


def _record(project_id: int, at_seconds: float, **fields: Any) -> bytes:
    at = (EDGES[0] + timedelta(seconds=at_seconds)).isoformat()
    return orjson.dumps(
        {
            "project_id": project_id,
            "message_id": str(uuid.uuid4()),
            "timestamp": at,
            "received_at": datetime.now(UTC).isoformat(),
            **fields,
        }
    )


async def _produce(pipeline: Pipeline, records: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=pipeline.metrics.env["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    for raw in records:  # one key: one partition, in this order
        await producer.send_and_wait(pipeline.metrics.env["PULSE_EVENTS_TOPIC"], raw, key=b"d")
    await producer.stop()


@pytest.mark.parametrize("timezone", ["Pacific/Kiritimati", "Etc/GMT+12"])
def test_events_at_the_edges_of_time_are_counted_and_read(
    pipeline: Pipeline, timezone: str
) -> None:
    # One project and one batch for both edges: 7,000 years apart, which the activity
    # rollup must not walk day by day (rollup.py).
    project = pipeline.create_project(f"time-edges-{timezone}", timezone)
    project_id = int(project["id"])
    funnel_id = pipeline.create_funnel(project["read_key"], "a", "b")
    records = []
    for edge in EDGES:
        offset = (edge - EDGES[0]).total_seconds()
        for n, name in enumerate(["a", "b", "a"]):  # a session, a path, a conversion
            at = offset + 60 * n - (120 if edge == EDGES[1] else 0)
            records.append(_record(project_id, at, type="track", event=name, anonymous_id="d"))
        records.append(_record(project_id, offset, type="identify", anonymous_id="d", user_id="u"))
    asyncio.run(_produce(pipeline, records))

    assert pipeline.wait_processed(project["read_key"], 8)["events_processed"] == 8
    for edge in EDGES:
        span = {
            "from": str(edge.date() - timedelta(days=3)),
            "to": str(edge.date() + timedelta(days=3)),
        }
        for path, extra in [
            ("activity", {}),
            ("events", {}),
            ("lifecycle", {"period": "month"}),
            ("stickiness", {"period": "month"}),
            ("retention", {"period": "week", "length": "90", "mode": "on_or_after"}),
            ("sessions", {}),
            ("paths", {"start_event": "a", "depth": "6"}),
            ("paths", {"end_event": "b"}),
            (f"funnels/{funnel_id}", {}),
        ]:
            response = httpx.get(
                f"{pipeline.gateway.url}/v1/{path}",
                params={**span, **extra},
                headers={"Authorization": f"Bearer {project['read_key']}"},
                timeout=30,
            )
            assert response.status_code == 200, (path, span, response.text)
        activity = pipeline.read("/v1/activity", project["read_key"], **span)
        assert sum(day["events"] for day in activity["days"]) == 3, activity
        # One person, active on one or two days of the span (the zone may split the edge).
        assert max(day["mau"] for day in activity["days"]) == 1, activity
