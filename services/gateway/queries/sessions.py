"""Sessions per day (SPEC §4): count, median and mean duration, events per session, bounce rate.

Read from the `sessions` table the metrics service maintains (services/metrics/aggregates/
sessions.py); a session counts on the day it starts, in the project's timezone. Durations are
whole seconds (event times are archived to the second): last event time - first event time.
The median is `percentile_cont(0.5)` (the mean of the two middle durations for an even count);
figures are rounded to 3 decimals, the bounce rate to 4, like stickiness. While the sessions are
being rebuilt after a change of the project's session settings (services/metrics/
sessions_rebuild.py), persons not reached yet still have sessions cut with the old ones:
`read_rebuild` says so.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


class SessionsDay(BaseModel):
    date: date
    sessions: int
    median_seconds: float | None  # None on a day without sessions
    mean_seconds: float | None
    events_per_session: float | None
    bounce_rate: float | None  # sessions with exactly one active event / sessions


SESSIONS_SQL = text(
    """
WITH s AS (
    SELECT day, events, extract(epoch FROM end_ts - start_ts)::bigint AS seconds
    FROM sessions
    WHERE project_id = :project AND day BETWEEN :start AND :stop
),
per_day AS (
    SELECT day, count(*) AS sessions, sum(seconds) AS seconds, sum(events) AS events,
           count(*) FILTER (WHERE events = 1) AS bounces,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY seconds) AS median
    FROM s GROUP BY day
)
SELECT g.d::date AS day, coalesce(p.sessions, 0) AS sessions, p.seconds, p.events, p.bounces,
       p.median
FROM generate_series(CAST(:start AS date), CAST(:stop AS date), interval '1 day') AS g(d)
LEFT JOIN per_day p ON p.day = g.d::date
ORDER BY 1
"""
)


REBUILD_SQL = text("SELECT sessions_rebuild FROM projects WHERE id = :project")

Rebuild = Literal["running", "complete"]


async def read_rebuild(conn: AsyncConnection, project_id: int) -> Rebuild:
    """'running' while the project's sessions are rebuilt after a settings change."""
    state = await conn.scalar(REBUILD_SQL, {"project": project_id})
    return "running" if state == "running" else "complete"


async def read_sessions(
    conn: AsyncConnection, project_id: int, start: date, stop: date
) -> list[SessionsDay]:
    rows = await conn.execute(SESSIONS_SQL, {"project": project_id, "start": start, "stop": stop})
    out = []
    for r in rows:
        n = r.sessions
        out.append(
            SessionsDay(
                date=r.day,
                sessions=n,
                median_seconds=round(r.median, 3) if n else None,
                # Integer sums divided here: the same float a recomputation in Python gets.
                mean_seconds=round(int(r.seconds) / n, 3) if n else None,
                events_per_session=round(int(r.events) / n, 3) if n else None,
                bounce_rate=round(r.bounces / n, 4) if n else None,
            )
        )
    return out
