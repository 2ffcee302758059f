"""Per-project session settings over real HTTP: `PATCH /v1/projects/{id}` (admin token,
validation naming the field, unknown projects), the settings in the project list, and
`/v1/sessions` reporting the rebuild the metrics service runs after a change, then the numbers
of the new settings."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support import oracle
from tests.support.services import ADMIN_TOKEN, Pipeline
from tests.support.store_db import Db

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
DAY = {"from": "2026-01-05", "to": "2026-01-05"}


def _patch(
    pipeline: Pipeline, project_id: Any, body: Any, token: str | None = ADMIN_TOKEN
) -> httpx.Response:
    return httpx.patch(
        f"{pipeline.gateway.url}/v1/projects/{project_id}",
        json=body,
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )


def _listed(pipeline: Pipeline, project_id: Any) -> dict[str, Any]:
    listed = httpx.get(f"{pipeline.gateway.url}/v1/projects", headers=ADMIN)
    assert listed.status_code == 200
    (project,) = [p for p in listed.json() if p["id"] == project_id]
    return project  # type: ignore[no-any-return]


async def _alisted(http: httpx.AsyncClient, project_id: Any) -> dict[str, Any]:
    listed = await http.get("/v1/projects", headers=ADMIN)
    assert listed.status_code == 200
    (project,) = [p for p in listed.json() if p["id"] == project_id]
    return project  # type: ignore[no-any-return]


def test_patch_needs_the_admin_token_a_known_project_and_valid_settings(
    pipeline: Pipeline,
) -> None:
    project = pipeline.create_project("session-settings")
    pid = project["id"]
    for token in (None, project["read_key"], "nope"):
        refused = _patch(pipeline, pid, {"session_timeout_seconds": 600}, token)
        assert refused.status_code == 401 and set(refused.json()) == {"code", "message"}
    missing = _patch(pipeline, 2_000_000_000, {"session_timeout_seconds": 600})
    assert missing.status_code == 404 and set(missing.json()) == {"code", "message"}

    for body, name in [
        ({"session_timeout_seconds": 59}, "session_timeout_seconds"),
        ({"session_timeout_seconds": 86401}, "session_timeout_seconds"),
        ({"session_timeout_seconds": "600"}, "session_timeout_seconds"),
        ({"session_timeout_seconds": 600.5}, "session_timeout_seconds"),
        ({"session_cap_seconds": 604801}, "session_cap_seconds"),
        # below the timeout in force (1800)
        ({"session_cap_seconds": 600}, "session_cap_seconds"),
        ({"session_timeout_seconds": 600, "session_cap_seconds": 599}, "session_cap_seconds"),
        ({"session_timeout": 600}, "session_timeout"),
        ({}, "session_timeout_seconds"),
    ]:
        bad = _patch(pipeline, pid, body)
        assert bad.status_code == 422, body
        assert bad.json()["code"] == "invalid_parameter"
        assert bad.json()["message"].startswith(name), (body, bad.json())
    # Nothing was changed by the refused requests.
    listed = _listed(pipeline, pid)
    assert (listed["session_timeout_seconds"], listed["session_cap_seconds"]) == (1800, 86400)
    assert listed["sessions_rebuild"] == "complete"

    capped = _patch(pipeline, pid, {"session_cap_seconds": 3600})
    assert capped.status_code == 200 and capped.headers["cache-control"] == "no-store"
    assert capped.json()["session_timeout_seconds"] == 1800
    assert capped.json()["session_cap_seconds"] == 3600
    assert capped.json()["sessions_rebuild"] == "running"
    # A timeout over the cap in force names the timeout.
    over = _patch(pipeline, pid, {"session_timeout_seconds": 7200})
    assert over.status_code == 422 and over.json()["message"].startswith("session_timeout_seconds")
    both = _patch(pipeline, pid, {"session_timeout_seconds": 7200, "session_cap_seconds": 7200})
    assert both.status_code == 200
    listed = _listed(pipeline, pid)
    assert (listed["session_timeout_seconds"], listed["session_cap_seconds"]) == (7200, 7200)
    assert {"write_key", "read_key", "timezone"} <= set(listed)


def _track(person: str, minutes: int) -> tuple[dict[str, Any], oracle.SentEvent]:
    at = T0 + timedelta(minutes=minutes)
    message_id = str(uuid.uuid4())
    sent = {
        "type": "track",
        "event": "tick",
        "userId": person,
        "timestamp": at.isoformat(),
        "messageId": message_id,
    }
    return sent, oracle.SentEvent(message_id, "track", person, at, event="tick")


async def _sessions(http: httpx.AsyncClient, key: str) -> dict[str, Any]:
    response = await http.get(
        "/v1/sessions", params=DAY, headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_sessions_report_the_rebuild_then_the_new_settings_numbers(
    pipeline: Pipeline, db: Db
) -> None:
    project = pipeline.create_project("session-settings-rebuild")
    pid, key = project["id"], project["read_key"]
    tag = uuid.uuid4().hex[:6]
    # Gaps of 15, 15, 20 and 25 minutes, and one of hours.
    made = [_track(f"u-{tag}", m) for m in (0, 15, 30, 50)]
    made += [_track(f"v-{tag}", m) for m in (0, 25, 180)]
    batch, sent = [b for b, _ in made], [s for _, s in made]
    async with httpx.AsyncClient(timeout=10) as ingest:
        response = await ingest.post(
            f"{pipeline.ingest.url}/v1/batch",
            json={"batch": batch, "writeKey": project["write_key"]},
        )
    assert response.status_code == 200
    pipeline.wait_processed(key, len(batch))
    day = T0.date()

    async with httpx.AsyncClient(base_url=pipeline.gateway.url, timeout=10) as http:
        before = await _sessions(http, key)
        assert before["rebuild"] == "complete"
        assert before["days"] == oracle.sessions(sent, day, day)
        assert before["days"][0]["sessions"] == 3

        # A batch in flight holds the project's lock shared: the rebuild cannot start, so the
        # change is seen running whatever the metrics service's timing.
        in_flight = await db.pool.acquire()
        try:
            async with in_flight.transaction():
                await in_flight.execute("SELECT pg_advisory_xact_lock_shared(1347, $1)", pid)
                changed = await http.patch(
                    f"/v1/projects/{pid}", json={"session_timeout_seconds": 600}, headers=ADMIN
                )
                assert changed.status_code == 200
                assert changed.json()["sessions_rebuild"] == "running"
                running = await _sessions(http, key)
                assert running["rebuild"] == "running"
                assert set(running) == {"days", "rebuild", "freshness"}
                assert (await _alisted(http, pid))["sessions_rebuild"] == "running"
        finally:
            await db.pool.release(in_flight)

        deadline = time.monotonic() + 30
        after = await _sessions(http, key)
        while after["rebuild"] != "complete":
            assert time.monotonic() < deadline, after
            await asyncio.sleep(0.1)
            after = await _sessions(http, key)
        expected = oracle.sessions(sent, day, day, gap=timedelta(minutes=10))
        assert after["days"] == expected
        assert expected[0]["sessions"] == 7  # every gap is over 10 minutes
        listed = await _alisted(http, pid)
        assert (listed["session_timeout_seconds"], listed["sessions_rebuild"]) == (600, "complete")

        csv = await http.get(
            "/v1/sessions",
            params={**DAY, "format": "csv"},
            headers={"Authorization": f"Bearer {key}"},
        )
    assert csv.text.splitlines() == [
        "date,sessions,median_seconds,mean_seconds,events_per_session,bounce_rate",
        "2026-01-05,7,0.0,0.0,1.0,1.0",
    ]
