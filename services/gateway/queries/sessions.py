"""Sessions per day (SPEC §4): count, median and mean duration, events per session, bounce rate.

Read from the per-day histograms of session durations that a trigger keeps as the image of the
`sessions` table the metrics service maintains (migrations 0010 and 0011, services/metrics/
aggregates/sessions.py): `session_minutes` per whole minute of duration (count, seconds, events,
bounces) and `session_durations` per second (count). A day costs its minute rows (about a
hundred for visit-shaped sessions; 1,440 under the default 24 h cap) plus the second rows of the
one or two minutes that hold its median (at most 60 each), however many sessions it holds.

A session counts on the day it starts, in the project's timezone. Durations are whole seconds
(event times are archived to the second): last event time - first event time. The median is
that of `percentile_cont(0.5)` (the mean of the two middle durations for an even count);
figures are rounded to 3 decimals, the bounce rate to 4, like stickiness. While the sessions are
being rebuilt after a change of the project's session settings (services/metrics/
sessions_rebuild.py), persons not reached yet still have sessions cut with the old ones:
`read_rebuild` says so.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.values import null_last, shown
from services.gateway.queries.breakdown import split_params


class SessionsDay(BaseModel):
    date: date
    sessions: int
    median_seconds: float | None  # None on a day without sessions
    mean_seconds: float | None
    events_per_session: float | None
    bounce_rate: float | None  # sessions with exactly one active event / sessions


# A day's median: the durations at 0-based positions (n-1) div 2 and n div 2 of its sorted
# durations (one position twice for an odd n); their mean is what `percentile_cont(0.5)` gives.
# The minute rows' cumulative counts find the minute holding each position and how many
# durations come before it; within that minute, the smallest second whose cumulative count
# passes the position is the duration there.
SESSIONS_SQL = text(
    """
WITH m AS (
    SELECT day, minute, sessions, seconds, events, bounces,
           sum(sessions) OVER (PARTITION BY day ORDER BY minute) AS upto,
           sum(sessions) OVER (PARTITION BY day) AS n
    FROM session_minutes
    WHERE project_id = :project AND day BETWEEN :start AND :stop
),
middle AS (
    SELECT m.day, m.minute, m.upto - m.sessions AS before, p.pos
    FROM m CROSS JOIN LATERAL (VALUES ((m.n - 1) / 2), (m.n / 2)) AS p(pos)
    WHERE m.upto - m.sessions <= p.pos AND p.pos < m.upto
),
medians AS (
    SELECT middle.day, avg(at.seconds) AS median
    FROM middle CROSS JOIN LATERAL (
        SELECT h.seconds
        FROM (SELECT seconds, sum(sessions) OVER (ORDER BY seconds) AS upto
              FROM session_durations
              WHERE project_id = :project AND day = middle.day
                AND seconds >= middle.minute * 60 AND seconds < (middle.minute + 1) * 60) h
        WHERE middle.before + h.upto > middle.pos
        ORDER BY h.seconds
        LIMIT 1
    ) at
    GROUP BY middle.day
),
per_day AS (
    SELECT day, sum(sessions) AS sessions, sum(seconds) AS seconds, sum(events) AS events,
           sum(bounces) AS bounces
    FROM m GROUP BY day
)
SELECT g.d::date AS day, coalesce(p.sessions, 0) AS sessions, p.seconds, p.events, p.bounces,
       md.median
FROM generate_series(CAST(:start AS date), CAST(:stop AS date), interval '1 day') AS g(d)
LEFT JOIN per_day p ON p.day = g.d::date
LEFT JOIN medians md ON md.day = g.d::date
ORDER BY 1
"""
)


# Sessions split by a breakdown value (SPEC §4 Breakdowns): a session counts under each value its
# person carried on the session's day (person_day_values: the values of their active events that
# day), as a person counts under each in the activity breakdown; a person whose active events
# carried no value that day puts their sessions in the null group too (:none, services/common/
# values.py). Read like SESSIONS_SQL, from the same two grains per (key, value), which triggers
# keep as the image of that join (migration 0020): the 50 values with the most sessions in the
# range, then the null group, a line per value and day.
SESSIONS_BY_VALUE_SQL = text(
    """
WITH m AS (
    SELECT value, day, minute, sessions, seconds, events, bounces,
           sum(sessions) OVER (PARTITION BY value, day ORDER BY minute) AS upto,
           sum(sessions) OVER (PARTITION BY value, day) AS n
    FROM session_value_minutes
    WHERE project_id = :project AND key = :key AND day BETWEEN :start AND :stop
),
top AS (
    (SELECT value FROM m WHERE value <> :none GROUP BY value
     ORDER BY sum(sessions) DESC, value COLLATE "C" LIMIT :limit)
    UNION ALL
    SELECT DISTINCT value FROM m WHERE value = :none
),
middle AS (
    SELECT m.value, m.day, m.minute, m.upto - m.sessions AS before, p.pos
    FROM m CROSS JOIN LATERAL (VALUES ((m.n - 1) / 2), (m.n / 2)) AS p(pos)
    WHERE m.value IN (SELECT value FROM top)
      AND m.upto - m.sessions <= p.pos AND p.pos < m.upto
),
medians AS (
    SELECT middle.value, middle.day, avg(at.seconds) AS median
    FROM middle CROSS JOIN LATERAL (
        SELECT h.seconds
        FROM (SELECT seconds, sum(sessions) OVER (ORDER BY seconds) AS upto
              FROM session_value_durations
              WHERE project_id = :project AND key = :key AND day = middle.day
                AND value = middle.value
                AND seconds >= middle.minute * 60 AND seconds < (middle.minute + 1) * 60) h
        WHERE middle.before + h.upto > middle.pos
        ORDER BY h.seconds
        LIMIT 1
    ) at
    GROUP BY middle.value, middle.day
),
per_day AS (
    SELECT value, day, sum(sessions) AS sessions, sum(seconds) AS seconds, sum(events) AS events,
           sum(bounces) AS bounces
    FROM m WHERE value IN (SELECT value FROM top)
    GROUP BY value, day
)
SELECT t.value, g.d::date AS day, coalesce(p.sessions, 0) AS sessions, p.seconds, p.events,
       p.bounces, md.median
FROM top t
CROSS JOIN generate_series(CAST(:start AS date), CAST(:stop AS date), interval '1 day') AS g(d)
LEFT JOIN per_day p ON p.value = t.value AND p.day = g.d::date
LEFT JOIN medians md ON md.value = t.value AND md.day = g.d::date
ORDER BY t.value COLLATE "C", day
"""
)


class SessionsSeries(BaseModel):
    value: str | None  # None: the null group
    days: list[SessionsDay]


class SessionsRow(BaseModel):
    """One CSV line of a breakdown."""

    value: str | None
    date: date
    sessions: int
    median_seconds: float | None
    mean_seconds: float | None
    events_per_session: float | None
    bounce_rate: float | None


REBUILD_SQL = text("SELECT sessions_rebuild FROM projects WHERE id = :project")

Rebuild = Literal["running", "complete"]


async def read_rebuild(conn: AsyncConnection, project_id: int) -> Rebuild:
    """'running' while the project's sessions are rebuilt after a settings change."""
    state = await conn.scalar(REBUILD_SQL, {"project": project_id})
    return "running" if state == "running" else "complete"


def _day(r: Any) -> SessionsDay:
    # Integer sums divided here: the same float a recomputation in Python gets. (SQL's sums come
    # back as Decimals, whose quotient rounds half to even: 93 / 80 gave 1.162.)
    n = int(r.sessions)
    return SessionsDay(
        date=r.day,
        sessions=n,
        median_seconds=round(r.median, 3) if n else None,
        mean_seconds=round(int(r.seconds) / n, 3) if n else None,
        events_per_session=round(int(r.events) / n, 3) if n else None,
        bounce_rate=round(int(r.bounces) / n, 4) if n else None,
    )


async def read_sessions(
    conn: AsyncConnection, project_id: int, start: date, stop: date
) -> list[SessionsDay]:
    rows = await conn.execute(SESSIONS_SQL, {"project": project_id, "start": start, "stop": stop})
    return [_day(r) for r in rows]


async def read_sessions_breakdown(
    conn: AsyncConnection, project_id: int, key: str, start: date, stop: date
) -> list[SessionsSeries]:
    rows = await conn.execute(
        SESSIONS_BY_VALUE_SQL, {**split_params(project_id, key), "start": start, "stop": stop}
    )
    series: dict[str, list[SessionsDay]] = defaultdict(list)
    for r in rows:
        series[r.value].append(_day(r))
    return [SessionsSeries(value=shown(v), days=series[v]) for v in null_last(list(series))]
