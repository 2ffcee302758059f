"""Migrations 0020, 0021, 0024, 0025 and 0027 fill their rollups from the data already there: what
their upgrades compute from `sessions`, `person_day_values` and `person_days` equals what the
triggers and the batches kept, batch by batch, while the metrics Store wrote them (late events, a
merge, two keys, events without a value): the session histograms per value,
`activity_value_daily`, `lifecycle_periods`, `stickiness_periods`, `stickiness_value_periods`
and the null group's `person_day_values` rows.

A database of its own: the test downgrades and upgrades it.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from alembic import command

from services.common.events import EventRecord
from services.common.migrate import alembic_config
from services.common.settings import CommonSettings
from services.common.values import NO_VALUE
from services.metrics.parse import ParsedBatch
from services.metrics.store import Store
from tests.support.store_db import Db, new_project

pytestmark = pytest.mark.private_db

SNAPSHOT = """
SELECT 'minutes', project_id, key, day, value, minute, sessions, seconds, events, bounces
FROM session_value_minutes
UNION ALL
SELECT 'durations', project_id, key, day, value, seconds, sessions, 0, 0, 0
FROM session_value_durations
UNION ALL
SELECT 'activity', project_id, key, day, value, 0, dau, wau, mau, events
FROM activity_value_daily
UNION ALL
SELECT 'lifecycle', project_id, kind, period, '', 0, active, continuing, 0, 0
FROM lifecycle_periods WHERE active <> 0 OR continuing <> 0
UNION ALL
SELECT 'stickiness', project_id, kind, period, '', active_days, persons, 0, 0, 0
FROM stickiness_periods WHERE persons <> 0
UNION ALL
SELECT 'stickiness ' || key, project_id, kind, period, value, active_days, persons, 0, 0, 0
FROM stickiness_value_periods WHERE persons <> 0
ORDER BY 1, 2, 3, 4, 5, 6
"""

VALUES = "SELECT * FROM person_day_values ORDER BY project_id, key, value, day, person_id"


def _events(project_id: int, rng: random.Random) -> list[EventRecord]:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    now = datetime.now(UTC)
    # a fifth of the events without a plan: the null group
    plans = [{"plan": "free"}, {"plan": "vip"}, {"plan": "free"}, {"plan": "vip"}, {}]
    out = []
    for _ in range(600):  # in no time order: late and out-of-order events
        n = rng.randrange(12)
        # 60 days: persons with gaps of days, weeks and months between their active ones
        at = start + timedelta(days=rng.randrange(60), minutes=rng.randrange(0, 1440, 7))
        out.append(
            EventRecord(
                project_id=project_id,
                message_id=str(uuid.uuid4()),
                type="track",
                event=rng.choice(["view", "buy"]),
                anonymous_id=f"device-{n}",
                properties={"country": rng.choice("ab"), **plans[rng.randrange(len(plans))]},
                timestamp=at,
                received_at=now,
            )
        )
    # person 0's devices merge into user-0 in the last batch
    for device in ("device-0", "device-1"):
        out.append(
            EventRecord(
                project_id=project_id,
                message_id=str(uuid.uuid4()),
                type="identify",
                user_id="user-0",
                anonymous_id=device,
                timestamp=start + timedelta(days=2),
                received_at=now,
            )
        )
    return out


async def test_the_upgrade_fills_what_the_triggers_kept(
    db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_id = await new_project(db.pool, "America/New_York")
    events = _events(project_id, random.Random(3))
    store = Store(db.pool, f"migration-{uuid.uuid4()}", ["plan", "country"])
    for i in range(0, len(events), 150):
        await store.apply(ParsedBatch(events=events[i : i + 150]), {})

    kept = [tuple(r) for r in await db.pool.fetch(SNAPSHOT)]
    assert {(r[0], r[2]) for r in kept} == {
        (rollup, key)
        for rollup in ("minutes", "durations", "activity")
        for key in ("plan", "country")
    } | {("lifecycle", kind) for kind in ("day", "week", "month")} | {
        (f"stickiness{key}", kind)
        for key in ("", " plan", " country")
        for kind in ("week", "month")
    }
    values = [tuple(r) for r in await db.pool.fetch(VALUES)]
    # every rollup of `plan` has a null group (NO_VALUE); `country`, always set, has none
    for rollup in ("minutes", "durations", "activity"):
        assert {r[2] for r in kept if r[0] == rollup and r[4] == NO_VALUE} == {"plan"}, rollup
    stickiness = {r[0] for r in kept if r[0].startswith("stickiness ") and r[4] == NO_VALUE}
    assert stickiness == {"stickiness plan"}
    assert {r[1] for r in values if r[2] == NO_VALUE} == {"plan"}

    monkeypatch.setenv("DATABASE_URL", db.url)
    config = alembic_config(CommonSettings())
    await asyncio.to_thread(command.downgrade, config, "0019")
    await asyncio.to_thread(command.upgrade, config, "head")

    conn = await asyncpg.connect(db.url)  # no statement cached before the tables changed
    try:
        assert [tuple(r) for r in await conn.fetch(SNAPSHOT)] == kept
        assert [tuple(r) for r in await conn.fetch(VALUES)] == values
    finally:
        await conn.close()
