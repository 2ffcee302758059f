"""Daily activity for a date range: DAU, WAU, MAU, new users, events, stickiness (SPEC §4).

All exact: DAU/WAU/MAU count distinct persons over person_days, new users count first days.
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
WITH days AS (
    SELECT d::date AS day FROM generate_series(CAST(:start AS date), CAST(:stop AS date),
                                               interval '1 day') AS d
),
window_rows AS (
    SELECT day, person_id, events FROM person_days
    WHERE project_id = :project AND day BETWEEN CAST(:start AS date) - 29 AND :stop
),
daily AS (
    SELECT day, count(*) AS dau, sum(events) AS events FROM window_rows
    WHERE day >= :start GROUP BY day
),
rolling AS (
    SELECT d.day,
           count(DISTINCT w.person_id) FILTER (WHERE w.day > d.day - 7) AS wau,
           count(DISTINCT w.person_id) AS mau
    FROM days d JOIN window_rows w ON w.day BETWEEN d.day - 29 AND d.day
    GROUP BY d.day
),
fresh AS (
    SELECT first_day AS day, count(*) AS new_users FROM persons
    WHERE project_id = :project AND first_day BETWEEN :start AND :stop GROUP BY first_day
)
SELECT d.day, coalesce(daily.dau, 0) AS dau, coalesce(rolling.wau, 0) AS wau,
       coalesce(rolling.mau, 0) AS mau, coalesce(fresh.new_users, 0) AS new_users,
       coalesce(daily.events, 0) AS events
FROM days d
LEFT JOIN daily USING (day)
LEFT JOIN rolling USING (day)
LEFT JOIN fresh USING (day)
ORDER BY d.day
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
