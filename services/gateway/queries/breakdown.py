"""Activity split by a breakdown value (SPEC §4 Breakdowns): DAU, WAU, MAU and events per value.

Values come from person_day_values (the value each active event carried: its property, else the
trait its SDK attached, else its person's identify traits as of it). A person active with two
values on a day counts under both, as in peers' breakdowns. The figures are read from
`activity_value_daily`, which triggers keep per value as the rollup keeps `activity_daily`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db import PROJECT_LOCK_CLASS
from services.common.values import NO_VALUE, null_last, shown

# A split lists its MAX_VALUES most active values, then the null group (services/common/values.py).
MAX_VALUES = 50


def split_params(project_id: int, key: str | None) -> dict[str, Any]:
    """The parameters every split's SQL takes: the project and key, how many values it lists
    (`:limit`) and the value the null group is stored under (`:none`)."""
    return {"project": project_id, "key": key, "limit": MAX_VALUES, "none": NO_VALUE}


Backfill = Literal["running", "complete"]

# A key new to a project starts 'running' when events of the project were processed before (the
# metrics service's walk fills in their values), else 'complete' (services/metrics/store.py
# REGISTER_KEYS, for the keys it adds, says the same).
NEW_KEY_BACKFILL = """CASE WHEN EXISTS (SELECT 1 FROM project_stats
                         WHERE project_id = :project AND events_processed > 0)
    THEN 'running' ELSE 'complete' END"""

# A project's tracked keys: its `breakdown_keys` rows (services/metrics/breakdown_backfill.py),
# and the keys of this gateway's PULSE_BREAKDOWN_KEYS, first and in their order. A listed key
# without a row is one the metrics service has not added yet (it does on the project's next
# batch): its values miss what was processed before, if anything was.
TRACKED_SQL = text(
    f"""
WITH listed AS (
    SELECT key, n FROM unnest(CAST(:listed AS text[])) WITH ORDINALITY AS l(key, n)
)
SELECT k.key, coalesce(b.backfill, {NEW_KEY_BACKFILL}) AS backfill,
    coalesce(b.configured, true) AS configured
FROM (SELECT key FROM listed UNION SELECT key FROM breakdown_keys WHERE project_id = :project) k
LEFT JOIN breakdown_keys b ON b.project_id = :project AND b.key = k.key
LEFT JOIN listed l ON l.key = k.key
ORDER BY l.n NULLS LAST, b.id
"""
)

# A statement of its own, before the others: a statement sees what had committed when it
# began, and what commits while it waits for the lock must be seen by the next ones.
LOCK_PROJECT_SQL = text(f"SELECT pg_advisory_xact_lock({PROJECT_LOCK_CLASS}, :project)")

# Run under the project's lock (taken exclusively): every batch that read the project's keys
# before this has committed, so a project with no event processed misses none ('complete').
ADD_KEY_SQL = text(
    f"""
INSERT INTO breakdown_keys (project_id, key, backfill, configured)
SELECT :project, :key, {NEW_KEY_BACKFILL}, false
ON CONFLICT (project_id, key) DO NOTHING
RETURNING key
"""
)

# The row is locked first, then the project: the order a walk's chunk takes them in
# (services/metrics/walk.py). Under the project's lock no batch in flight can write the key's
# values any more: they go with the row.
LOCK_KEY_SQL = text(
    "SELECT configured FROM breakdown_keys WHERE project_id = :project AND key = :key FOR UPDATE"
)
DROP_KEY_SQL = text("DELETE FROM breakdown_keys WHERE project_id = :project AND key = :key")
# Its values are deleted in the background by the metrics service (services/metrics/
# key_drops.py, migration 0022): millions of rows for a large project, more than a request's
# statement timeout allows. Until they are gone the key cannot be tracked again.
QUEUE_DROP_SQL = text("INSERT INTO breakdown_key_drops (project_id, key) VALUES (:project, :key)")
DROPPING_SQL = text(
    "SELECT EXISTS (SELECT 1 FROM breakdown_key_drops WHERE project_id = :project AND key = :key)"
)


# Per value and day, from `activity_value_daily` (migration 0021: triggers keep it as the image of
# person_day_values): the 50 values with the most events carried on the range's days and the 29
# before them (the days its WAU and MAU look at), then the null group (:none, services/common/
# values.py) if it has any, a line per value over every day of the range.
BREAKDOWN_SQL = text(
    """
WITH daily AS (
    SELECT value, day, dau, wau, mau, events FROM activity_value_daily
    WHERE project_id = :project AND key = :key
      AND day BETWEEN CAST(:start AS date) - 29 AND :stop
),
top AS (
    (SELECT value FROM daily WHERE dau > 0 AND value <> :none GROUP BY value
     ORDER BY sum(events) DESC, value LIMIT :limit)
    UNION ALL
    SELECT DISTINCT value FROM daily WHERE dau > 0 AND value = :none
)
SELECT t.value, g.d::date AS day, coalesce(d.dau, 0) AS dau, coalesce(d.wau, 0) AS wau,
       coalesce(d.mau, 0) AS mau, coalesce(d.events, 0) AS events
FROM top t
CROSS JOIN generate_series(CAST(:start AS date), CAST(:stop AS date), interval '1 day') AS g(d)
LEFT JOIN daily d ON d.value = t.value AND d.day = g.d::date
ORDER BY t.value, day
"""
)


class ValueDay(BaseModel):
    date: date
    dau: int
    wau: int
    mau: int
    events: int


class BreakdownSeries(BaseModel):
    value: str | None  # None: the events that carried no value (the null group)
    days: list[ValueDay]


class BreakdownRow(BaseModel):
    """One CSV line of a breakdown."""

    value: str | None
    date: date
    dau: int
    wau: int
    mau: int
    events: int


async def read_breakdown(
    conn: AsyncConnection, project_id: int, key: str, start: date, stop: date
) -> list[BreakdownSeries]:
    rows = await conn.execute(
        BREAKDOWN_SQL, {**split_params(project_id, key), "start": start, "stop": stop}
    )
    series: dict[str, list[ValueDay]] = defaultdict(list)
    for r in rows:
        series[r.value].append(
            ValueDay(date=r.day, dau=r.dau, wau=r.wau, mau=r.mau, events=r.events)
        )
    return [BreakdownSeries(value=shown(v), days=series[v]) for v in null_last(list(series))]


class TrackedKey(BaseModel):
    key: str
    backfill: Backfill
    configured: bool  # set by PULSE_BREAKDOWN_KEYS (else added by POST /v1/breakdowns)


async def read_tracked_keys(
    conn: AsyncConnection, project_id: int, listed: list[str]
) -> list[TrackedKey]:
    """The project's tracked keys with their backfill (TRACKED_SQL; `listed`: this gateway's
    PULSE_BREAKDOWN_KEYS)."""
    rows = await conn.execute(TRACKED_SQL, {"project": project_id, "listed": listed})
    return [TrackedKey(key=r.key, backfill=r.backfill, configured=r.configured) for r in rows]


async def lock_project(conn: AsyncConnection, project_id: int) -> None:
    """Take the project's lock exclusively until the transaction ends (after the batches in
    flight): what is read after it holds until then, such as the count of its keys."""
    await conn.execute(LOCK_PROJECT_SQL, {"project": project_id})


async def dropping(conn: AsyncConnection, project_id: int, key: str) -> bool:
    """Whether the values of `key`, dropped, are still being deleted (it cannot be tracked again
    until then); read under the project's lock, which each deleting chunk takes too."""
    params = {"project": project_id, "key": key}
    return bool((await conn.execute(DROPPING_SQL, params)).scalar_one())


async def add_key(conn: AsyncConnection, project_id: int, key: str) -> bool:
    """Track `key` in the project (in a transaction; the project's lock is taken again if it
    is held already); False when it is tracked already. The caller checks `dropping` first."""
    await conn.execute(LOCK_PROJECT_SQL, {"project": project_id})
    added = await conn.execute(ADD_KEY_SQL, {"project": project_id, "key": key})
    return added.first() is not None


async def drop_key(conn: AsyncConnection, project_id: int, key: str) -> bool | None:
    """Stop tracking a key the project added, its values deleted in the background (in a
    transaction): True when dropped, None when the project has no row of it, False when it is
    a configured key (left as it is)."""
    params = {"project": project_id, "key": key}
    configured = (await conn.execute(LOCK_KEY_SQL, params)).scalar_one_or_none()
    if configured is None:
        return None
    if configured:
        return False
    await conn.execute(LOCK_PROJECT_SQL, params)
    await conn.execute(DROP_KEY_SQL, params)
    await conn.execute(QUEUE_DROP_SQL, params)
    return True
