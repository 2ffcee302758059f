"""Daily activity for a date range: DAU, WAU, MAU, new users, events, stickiness (SPEC §4).

All exact, read from the daily rollup that the metrics service keeps by deltas (see
services/metrics/aggregates/rollup.py): one row per day, whatever the number of persons.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


class ActivityDay(BaseModel):
    date: date
    dau: int
    wau: int
    mau: int
    new_users: int
    events: int
    stickiness: float | None  # DAU/MAU; None when nobody was active in the last 30 days


ACTIVITY_SQL = text(
    """
SELECT g.d::date AS day, coalesce(a.dau, 0) AS dau, coalesce(a.wau, 0) AS wau,
       coalesce(a.mau, 0) AS mau, coalesce(a.new_users, 0) AS new_users,
       coalesce(a.events, 0) AS events
FROM generate_series(CAST(:start AS date), CAST(:stop AS date), interval '1 day') AS g(d)
LEFT JOIN activity_daily a ON a.project_id = :project AND a.day = g.d::date
ORDER BY 1
"""
)


async def read_activity(
    conn: AsyncConnection, project_id: int, start: date, stop: date
) -> list[ActivityDay]:
    rows = await conn.execute(ACTIVITY_SQL, {"project": project_id, "start": start, "stop": stop})
    return [
        ActivityDay(
            date=r.day,
            dau=r.dau,
            wau=r.wau,
            mau=r.mau,
            new_users=r.new_users,
            events=r.events,
            stickiness=round(r.dau / r.mau, 4) if r.mau else None,
        )
        for r in rows
    ]
