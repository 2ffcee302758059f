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
    # A project per edge: one batch spanning 7,000 years is correct too, but its activity
    # rollup walks every day between (rollup.py), some 13 s here.
    projects = [pipeline.create_project(f"time-edges-{timezone}", timezone) for _ in EDGES]
    funnels = [pipeline.create_funnel(project["read_key"], "a", "b") for project in projects]
    records = []
    for edge, project in zip(EDGES, projects, strict=True):
        offset = (edge - EDGES[0]).total_seconds()
        project_id = int(project["id"])
        for n, name in enumerate(["a", "b", "a"]):  # a session, a path, a conversion
            at = offset + 60 * n - (120 if edge == EDGES[1] else 0)
            records.append(_record(project_id, at, type="track", event=name, anonymous_id="d"))
        records.append(_record(project_id, offset, type="identify", anonymous_id="d", user_id="u"))
    asyncio.run(_produce(pipeline, records))

    for edge, project, funnel_id in zip(EDGES, projects, funnels, strict=True):
        assert pipeline.wait_processed(project["read_key"], 4)["events_processed"] == 4
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
