"""Lifecycle per day/week/month (SPEC §4): new, returning, resurrecting and dormant persons.

new: first active in the period; returning: active in this and the previous period;
resurrecting: active now, not in the previous period, not new; dormant: active in the previous
period but not now (reported negative). Whole calendar periods overlapping the range, computed
from person_days (one row per person-day) and persons (first days).
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.queries.periods import Period, next_period, periods_between, previous_period

LIFECYCLE_SQL = text(
    """
WITH periods AS (
    SELECT * FROM unnest(CAST(:starts AS date[]), CAST(:prevs AS date[])) AS t(period, prev)
),
active AS (
    SELECT DISTINCT person_id, date_trunc(:period, day)::date AS period
    FROM person_days
    WHERE project_id = :project AND day >= :lo AND day < :hi
),
current AS (
    SELECT ps.period, a.person_id,
           date_trunc(:period, p.first_day)::date AS first_period,
           EXISTS (SELECT 1 FROM active b
                   WHERE b.person_id = a.person_id AND b.period = ps.prev) AS was_active
    FROM periods ps
    JOIN active a ON a.period = ps.period
    JOIN persons p ON p.project_id = :project AND p.person_id = a.person_id
),
gone AS (
    SELECT ps.period, count(*) AS dormant
    FROM periods ps JOIN active b ON b.period = ps.prev
    WHERE NOT EXISTS (SELECT 1 FROM active a
                      WHERE a.person_id = b.person_id AND a.period = ps.period)
    GROUP BY ps.period
)
SELECT ps.period,
       count(c.person_id) FILTER (WHERE c.first_period = ps.period) AS new,
       count(c.person_id) FILTER (WHERE c.was_active) AS returning,
       count(c.person_id) FILTER (WHERE NOT c.was_active AND c.first_period < ps.period)
           AS resurrecting,
       coalesce(max(g.dormant), 0) AS dormant
FROM periods ps
LEFT JOIN current c ON c.period = ps.period
LEFT JOIN gone g ON g.period = ps.period
GROUP BY ps.period
ORDER BY ps.period
"""
)


class LifecyclePeriod(BaseModel):
    start: date
    new: int
    returning: int
    resurrecting: int
    dormant: int  # negative: persons active in the previous period, not in this one


async def read_lifecycle(
    conn: AsyncConnection, project_id: int, start: date, stop: date, period: Period
) -> list[LifecyclePeriod]:
    starts = periods_between(start, stop, period)
    rows = await conn.execute(
        LIFECYCLE_SQL,
        {
            "project": project_id,
            "period": period,
            "starts": starts,
            "prevs": [previous_period(s, period) for s in starts],
            "lo": previous_period(starts[0], period),
            "hi": next_period(starts[-1], period),
        },
    )
    return [
        LifecyclePeriod(
            start=r.period,
            new=r.new,
            returning=r.returning,
            resurrecting=r.resurrecting,
            dormant=-r.dormant,
        )
        for r in rows
    ]
