"""A breakdown key tracked later, end to end: the metrics service restarted with it fills in the
history it had processed without it, and the gateway says so (`breakdown_backfill`)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from tests.support.services import Pipeline, ServiceProcess
from tests.support.store_db import Db

# A database of its own: a metrics start adds its keys to every project of its database and the
# walk takes them in project order, so on the shared one it would walk every other test's
# projects first (and drop keys other pipelines track).
pytestmark = pytest.mark.private_db


def _event(kind: str, user: str, at: str, **extra: object) -> dict[str, object]:
    return {"type": kind, "userId": user, "timestamp": at, "messageId": str(uuid.uuid4()), **extra}


def _restarted(service: ServiceProcess, **env: str) -> ServiceProcess:
    service.stop()
    again = ServiceProcess(service.name, {**service.env, **env})
    again.start()
    return again


async def test_a_key_added_to_the_metrics_service_fills_in_the_history(
    db: Db, stack_env: dict[str, str]
) -> None:
    name = f"key-later-{uuid.uuid4().hex[:8]}"
    pipeline = Pipeline.start(stack_env, name, DATABASE_URL=db.url)
    try:
        # The gateway serves `country` already; the metrics service tracks only `plan`.
        pipeline.gateway = _restarted(pipeline.gateway, PULSE_BREAKDOWN_KEYS="plan,country")
        project = pipeline.create_project("key-later")
        batch = [
            # A server-side SDK: the country comes with identify only.
            _event("identify", "u1", "2026-05-04T08:00:00Z", traits={"country": "FR"}),
            _event("track", "u1", "2026-05-04T10:00:00Z", event="view"),
            _event("track", "u1", "2026-05-05T10:00:00Z", event="view"),
            _event(
                "track", "u2", "2026-05-04T10:00:00Z", event="view", properties={"country": "DE"}
            ),
        ]
        async with httpx.AsyncClient() as client:
            response = await client.post(
                f"{pipeline.ingest.url}/v1/batch",
                json={"batch": batch, "writeKey": project["write_key"]},
            )
        assert response.status_code == 200, response.text
        pipeline.wait_processed(project["read_key"], len(batch))
        query = {"from": "2026-05-04", "to": "2026-05-05", "breakdown": "country"}

        got = pipeline.read("/v1/activity", project["read_key"], **query)
        assert (got["breakdown"], got["breakdown_backfill"]) == ([], "running")
        keys = pipeline.read("/v1/breakdowns", project["read_key"])["keys"]
        assert keys == [
            {"key": "plan", "backfill": "complete"},
            {"key": "country", "backfill": "running"},
        ]

        pipeline.metrics = _restarted(pipeline.metrics, PULSE_BREAKDOWN_KEYS="plan,country")
        deadline = time.monotonic() + 30
        while got["breakdown_backfill"] == "running" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            got = pipeline.read("/v1/activity", project["read_key"], **query)
        assert got["breakdown_backfill"] == "complete"
        keys = pipeline.read("/v1/breakdowns", project["read_key"])["keys"]
        assert [k["backfill"] for k in keys] == ["complete", "complete"]
        dau = {(s["value"], d["date"]): d["dau"] for s in got["breakdown"] for d in s["days"]}
        assert dau == {
            ("DE", "2026-05-04"): 1,
            ("DE", "2026-05-05"): 0,
            ("FR", "2026-05-04"): 1,
            ("FR", "2026-05-05"): 1,
        }
        retention = pipeline.read("/v1/retention", project["read_key"], length="1", **query)
        assert retention["breakdown_backfill"] == "complete"
        groups = {g["value"]: g["cohorts"][0]["retained"] for g in retention["breakdown"]}
        assert groups == {"DE": [1, 0], "FR": [1, 1]}
    finally:
        pipeline.stop()
