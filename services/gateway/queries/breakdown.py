"""Activity split by a breakdown value (SPEC §4 Breakdowns): DAU, WAU, MAU and events per value.

Values come from person_day_values (the value each active event carried: its property, else the
trait its SDK attached). A person active with two values on a day counts under both, as in
peers' breakdowns. WAU/MAU use the same disjoint-interval count as the rollup, per value.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

MAX_VALUES = 50

Backfill = Literal["running", "complete"]

# Whether each key's values over the history before it was tracked are in
# (breakdown_backfill.py in the metrics service). No row: the metrics service has not had a batch
# of the project since it tracks the key (or does not track it), so the values miss what it had
# processed before; a project it processed nothing of has nothing to miss.
BACKFILL_SQL = text(
    """
SELECT k.key, coalesce(
    b.backfill,
    CASE WHEN EXISTS (SELECT 1 FROM project_stats
                      WHERE project_id = :project AND events_processed > 0)
         THEN 'running' ELSE 'complete' END) AS backfill
FROM unnest(CAST(:keys AS text[])) AS k(key)
LEFT JOIN breakdown_keys b ON b.project_id = :project AND b.key = k.key
"""
)


BREAKDOWN_SQL = text(
    """
WITH window_rows AS (
    SELECT value, day, events,
           lead(day) OVER (PARTITION BY value, person_id ORDER BY day) AS next_day
    FROM person_day_values
    WHERE project_id = :project AND key = :key
      AND day BETWEEN CAST(:start AS date) - 29 AND :stop
),
deltas AS (
    SELECT value, day AS x, 1 AS dw, 1 AS dm FROM window_rows
    UNION ALL
    SELECT value, LEAST(day + 7, coalesce(next_day, day + 7)), -1, 0 FROM window_rows
    UNION ALL
    SELECT value, LEAST(day + 30, coalesce(next_day, day + 30)), 0, -1 FROM window_rows
),
running AS (
    SELECT value, x,
           sum(sum(dw)) OVER (PARTITION BY value ORDER BY x) AS wau,
           sum(sum(dm)) OVER (PARTITION BY value ORDER BY x) AS mau
    FROM deltas GROUP BY value, x
),
daily AS (
    SELECT value, day, count(*) AS dau, sum(events) AS events FROM window_rows
    WHERE day >= :start GROUP BY value, day
),
top AS (
    SELECT value FROM window_rows GROUP BY value
    ORDER BY sum(events) DESC, value LIMIT :limit
)
SELECT t.value, g.d::date AS day, coalesce(daily.dau, 0) AS dau, coalesce(r.wau, 0) AS wau,
       coalesce(r.mau, 0) AS mau, coalesce(daily.events, 0) AS events
FROM top t
CROSS JOIN generate_series(CAST(:start AS date), CAST(:stop AS date), interval '1 day') AS g(d)
LEFT JOIN daily ON daily.value = t.value AND daily.day = g.d::date
LEFT JOIN LATERAL (
    SELECT wau, mau FROM running
    WHERE running.value = t.value AND running.x <= g.d::date ORDER BY running.x DESC LIMIT 1
) r ON true
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
    value: str
    days: list[ValueDay]


class BreakdownRow(BaseModel):
    """One CSV line of a breakdown."""

    value: str
    date: date
    dau: int
    wau: int
    mau: int
    events: int


async def read_breakdown(
    conn: AsyncConnection, project_id: int, key: str, start: date, stop: date
) -> list[BreakdownSeries]:
    rows = await conn.execute(
        BREAKDOWN_SQL,
        {"project": project_id, "key": key, "start": start, "stop": stop, "limit": MAX_VALUES},
    )
    series: dict[str, list[ValueDay]] = defaultdict(list)
    for r in rows:
        series[r.value].append(
            ValueDay(date=r.day, dau=r.dau, wau=r.wau, mau=r.mau, events=r.events)
        )
    return [BreakdownSeries(value=v, days=d) for v, d in series.items()]


async def read_backfills(
    conn: AsyncConnection, project_id: int, keys: list[str]
) -> dict[str, Backfill]:
    """Each key's backfill, in one statement."""
    rows = await conn.execute(BACKFILL_SQL, {"project": project_id, "keys": keys})
    return {r.key: "running" if r.backfill == "running" else "complete" for r in rows}


async def read_backfill(conn: AsyncConnection, project_id: int, key: str) -> Backfill:
    return (await read_backfills(conn, project_id, [key]))[key]
