"""Lifecycle per day/week/month (SPEC §4): new, returning, resurrecting and dormant persons.

new: first active in the period; returning: active in this and the previous period;
resurrecting: active now, not in the previous period, not new; dormant: active in the previous
period but not now (reported negative). Whole calendar periods overlapping the range, read from
the rollup the metrics service keeps per period (`lifecycle_periods`: persons active, and those
of them active in the period before too; services/metrics/aggregates/periods.py) and the new
users of `activity_daily`: a few rows per period, whatever its persons.
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
counts AS (
    SELECT period, active, continuing FROM lifecycle_periods
    WHERE project_id = :project AND kind = :period AND period >= :lo AND period < :hi
),
news AS (
    SELECT date_trunc(:period, day::timestamp)::date AS period, sum(new_users) AS new
    FROM activity_daily
    WHERE project_id = :project AND day >= :first AND day < :hi
    GROUP BY 1
)
SELECT ps.period, coalesce(n.new, 0) AS new, coalesce(c.continuing, 0) AS returning,
       coalesce(c.active, 0) - coalesce(n.new, 0) - coalesce(c.continuing, 0) AS resurrecting,
       coalesce(b.active, 0) - coalesce(c.continuing, 0) AS dormant
FROM periods ps
LEFT JOIN counts c ON c.period = ps.period
LEFT JOIN counts b ON b.period = ps.prev
LEFT JOIN news n ON n.period = ps.period
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
            "first": starts[0],
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
