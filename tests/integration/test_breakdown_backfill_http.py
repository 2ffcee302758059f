"""A breakdown key tracked later, end to end: the metrics service restarted with it, or the
project's POST /v1/breakdowns, fills in the history processed without it, and the gateway says
so (`breakdown_backfill`)."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from services.gateway.routes.breakdowns import SPLIT_FIELDS
from tests.support.services import Pipeline, ServiceProcess
from tests.support.store_db import Db

# A database of its own: a metrics start adds its keys to every project of its database and the
# walk takes them in project order, so on the shared one it would walk every other test's
# projects first (and drop keys other pipelines track).
pytestmark = pytest.mark.private_db


STATUSES = ("new", "returning", "resurrecting", "dormant")


def _event(kind: str, user: str, at: str, **extra: object) -> dict[str, object]:
    return {"type": kind, "userId": user, "timestamp": at, "messageId": str(uuid.uuid4()), **extra}


# DAU per country of `_batch`, worked out by hand: u1 (FR by identify) on both days, u2 (DE) on
# the 4th.
HISTORY_DAU = {
    ("DE", "2026-05-04"): 1,
    ("DE", "2026-05-05"): 0,
    ("FR", "2026-05-04"): 1,
    ("FR", "2026-05-05"): 1,
}


# A server-side SDK: the country comes with identify only for u1, as a property for u2.
def _batch() -> list[dict[str, object]]:
    return [
        _event("identify", "u1", "2026-05-04T08:00:00Z", traits={"country": "FR"}),
        _event("track", "u1", "2026-05-04T10:00:00Z", event="view"),
        _event("track", "u1", "2026-05-05T10:00:00Z", event="view"),
        _event("track", "u2", "2026-05-04T10:00:00Z", event="view", properties={"country": "DE"}),
    ]


async def _send(
    pipeline: Pipeline, project: dict[str, str], batch: list[dict[str, object]]
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{pipeline.ingest.url}/v1/batch",
            json={"batch": batch, "writeKey": project["write_key"]},
        )
    assert response.status_code == 200, response.text


async def _until_complete(
    pipeline: Pipeline, read_key: str, query: dict[str, str]
) -> dict[str, object]:
    got = pipeline.read("/v1/activity", read_key, **query)
    deadline = time.monotonic() + 30
    while got["breakdown_backfill"] == "running" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        got = pipeline.read("/v1/activity", read_key, **query)
    assert got["breakdown_backfill"] == "complete"
    return got


def _dau(got: dict) -> dict[tuple[str, str], int]:  # type: ignore[type-arg]
    return {(s["value"], d["date"]): d["dau"] for s in got["breakdown"] for d in s["days"]}


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
        batch = _batch()
        await _send(pipeline, project, batch)
        pipeline.wait_processed(project["read_key"], len(batch))
        query = {"from": "2026-05-04", "to": "2026-05-05", "breakdown": "country"}

        got = pipeline.read("/v1/activity", project["read_key"], **query)
        assert (got["breakdown"], got["breakdown_backfill"]) == ([], "running")
        keys = pipeline.read("/v1/breakdowns", project["read_key"])["keys"]
        assert keys == [
            {"key": "plan", "backfill": "complete", "configured": True},
            {"key": "country", "backfill": "running", "configured": True},
        ]

        pipeline.metrics = _restarted(pipeline.metrics, PULSE_BREAKDOWN_KEYS="plan,country")
        got = await _until_complete(pipeline, project["read_key"], query)
        keys = pipeline.read("/v1/breakdowns", project["read_key"])["keys"]
        assert [k["backfill"] for k in keys] == ["complete", "complete"]
        assert _dau(got) == HISTORY_DAU
        retention = pipeline.read("/v1/retention", project["read_key"], length="1", **query)
        assert retention["breakdown_backfill"] == "complete"
        groups = {g["value"]: g["cohorts"][0]["retained"] for g in retention["breakdown"]}
        assert groups == {"DE": [1, 0], "FR": [1, 1]}
    finally:
        pipeline.stop()


async def test_a_key_the_project_tracks_by_post_fills_in_and_goes_by_delete(
    db: Db, stack_env: dict[str, str]
) -> None:
    """POST /v1/breakdowns tracks `country` with no restart: its history is filled in, the
    next events keep it, and DELETE drops it (a configured key stays: 409)."""
    pipeline = Pipeline.start(stack_env, f"key-post-{uuid.uuid4().hex[:8]}", DATABASE_URL=db.url)
    try:
        project = pipeline.create_project("key-post")
        read_key = project["read_key"]
        await _send(pipeline, project, _batch())
        pipeline.wait_processed(read_key, 4)
        query = {"from": "2026-05-04", "to": "2026-05-05", "breakdown": "country"}
        url = f"{pipeline.gateway.url}/v1/breakdowns"
        auth = {"Authorization": f"Bearer {read_key}"}
        async with httpx.AsyncClient(headers=auth) as client:
            refused = await client.get(f"{pipeline.gateway.url}/v1/activity", params=query)
            assert refused.status_code == 422, refused.text
            assert "'country' is not tracked (tracked: plan;" in refused.json()["message"]
            for bad in [{}, {"key": ""}, {"key": "a\u0000b"}, {"key": "k" * 201}, {"key": 7}]:
                response = await client.post(url, json=bad)
                assert response.status_code == 422, (bad, response.text)

            added = await client.post(url, json={"key": "country"})
            assert (added.status_code, added.json()) == (
                201,
                {"key": "country", "backfill": "running", "configured": False},
            )
            again = await client.post(url, json={"key": "country"})
            assert again.status_code == 200, again.text
            got = await _until_complete(pipeline, read_key, query)
            assert _dau(got) == HISTORY_DAU
            # From now on the batches keep it: u2 comes back on the 5th, from Germany.
            await _send(
                pipeline,
                project,
                [
                    _event(
                        "track",
                        "u2",
                        "2026-05-05T09:00:00Z",
                        event="view",
                        properties={"country": "DE"},
                    )
                ],
            )
            pipeline.wait_processed(read_key, 5)
            got = pipeline.read("/v1/activity", read_key, **query)
            assert _dau(got)[("DE", "2026-05-05")] == 1
            # Sessions split the same way: each of these visits is a session of one event.
            sessions = pipeline.read("/v1/sessions", read_key, **query)
            assert sessions["breakdown_backfill"] == "complete"
            assert {
                (s["value"], d["date"]): (d["sessions"], d["bounce_rate"])
                for s in sessions["breakdown"]
                for d in s["days"]
            } == dict.fromkeys(HISTORY_DAU, (1, 1.0))
            # And stickiness: u1 (FR) and u2 (DE) each on 2 days of the week of May 4th. Without
            # `breakdown` both reads answer as before, with no breakdown fields.
            span = {k: v for k, v in query.items() if k != "breakdown"}
            for path in ("/v1/stickiness", "/v1/sessions", "/v1/lifecycle"):
                assert set(pipeline.read(path, read_key, **span)) & SPLIT_FIELDS == set(), path
            weeks = pipeline.read("/v1/stickiness", read_key, period="week", **query)
            assert weeks["breakdown_backfill"] == "complete"
            assert [(s["value"], s["periods"]) for s in weeks["breakdown"]] == [
                (value, [{"start": "2026-05-04", "histogram": [0, 1, 0, 0, 0, 0, 0]}])
                for value in ("DE", "FR")
            ]
            csv = await client.get(
                f"{pipeline.gateway.url}/v1/stickiness", params={**query, "format": "csv"}
            )
            assert csv.text.splitlines() == [
                "value,start,histogram",
                "DE,2026-05-04,0 1 0 0 0 0 0",
                "FR,2026-05-04,0 1 0 0 0 0 0",
            ]
            # And lifecycle: each new on the 4th and returning on the 5th, under their country.
            days = pipeline.read("/v1/lifecycle", read_key, period="day", **query)
            assert days["breakdown_backfill"] == "complete"
            assert [
                (s["value"], [[p[k] for k in STATUSES] for p in s["periods"]])
                for s in days["breakdown"]
            ] == [(value, [[1, 0, 0, 0], [0, 1, 0, 0]]) for value in ("DE", "FR")]
            csv = await client.get(
                f"{pipeline.gateway.url}/v1/lifecycle", params={**query, "format": "csv"}
            )
            assert csv.text.splitlines() == [
                "value,start,new,returning,resurrecting,dormant",
                "DE,2026-05-04,1,0,0,0",
                "DE,2026-05-05,0,1,0,0",
                "FR,2026-05-04,1,0,0,0",
                "FR,2026-05-05,0,1,0,0",
            ]
            csv = await client.get(
                f"{pipeline.gateway.url}/v1/sessions", params={**query, "format": "csv"}
            )
            assert csv.text.splitlines()[:2] == [
                "value,date,sessions,median_seconds,mean_seconds,events_per_session,bounce_rate",
                "DE,2026-05-04,1,0.0,0.0,1.0,1.0",
            ]
            assert pipeline.read("/v1/breakdowns", read_key)["keys"] == [
                {"key": "plan", "backfill": "complete", "configured": True},
                {"key": "country", "backfill": "complete", "configured": False},
            ]

            # At most 20 keys: plan, country and 18 more; the 21st is refused.
            for n in range(18):
                assert (await client.post(url, json={"key": f"k{n}"})).status_code == 201
            refused = await client.post(url, json={"key": "one-too-many"})
            assert (refused.status_code, refused.json()["code"]) == (422, "too_many_keys")
            assert len(pipeline.read("/v1/breakdowns", read_key)["keys"]) == 20

            configured = await client.delete(f"{url}/plan")
            assert configured.status_code == 409, configured.text
            # The metrics service stopped: the key goes at once, its values wait for it.
            pipeline.metrics.stop()
            dropped = await client.delete(f"{url}/country")
            assert dropped.status_code == 204, dropped.text
            assert (await client.delete(f"{url}/country")).status_code == 404
            refused = await client.get(f"{pipeline.gateway.url}/v1/activity", params=query)
            assert refused.status_code == 422, refused.text
            assert await _values(db, "country") > 0
            early = await client.post(url, json={"key": "country"})
            assert (early.status_code, early.json()["code"]) == (409, "key_being_dropped")
            pipeline.metrics = _restarted(pipeline.metrics)
            deadline = time.monotonic() + 30
            left = await _values(db, "country")
            while left and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                left = await _values(db, "country")
            assert left == 0
            # Gone (with the drop's row, by the chunk that found the last ones): tracked again,
            # from scratch, its history walked in again.
            again = await client.post(url, json={"key": "country"})
            assert again.status_code == 201, again.text
            assert _dau(await _until_complete(pipeline, read_key, query)) == {
                **HISTORY_DAU,
                ("DE", "2026-05-05"): 1,
            }
    finally:
        pipeline.stop()


async def _values(db: Db, key: str) -> int:
    """The key's person_day_values in the test's database."""
    count: int = await db.pool.fetchval(
        "SELECT count(*) FROM person_day_values WHERE key = $1", key
    )
    return count
