"""Daily activity for a date range: DAU, WAU, MAU, new users, events, stickiness (SPEC §4).

All exact, from precomputed person-day rows (never raw events): DAU/WAU/MAU count distinct
persons over person_days, new users count first days in persons.
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


# WAU/MAU in one pass: each person-day row covers the days from itself up to (not including)
# the person's next active day, capped at 7 (30) days, so a person's coverage intervals never
# overlap. WAU(x)/MAU(x) = intervals covering x: a +1/-1 difference array and a running sum.
ACTIVITY_SQL = text(
    """
WITH window_rows AS (
    SELECT day, events,
           lead(day) OVER (PARTITION BY person_id ORDER BY day) AS next_day
    FROM person_days
    WHERE project_id = :project AND day BETWEEN CAST(:start AS date) - 29 AND :stop
),
deltas AS (
    SELECT day AS x, 1 AS dw, 1 AS dm FROM window_rows
    UNION ALL
    SELECT LEAST(day + 7, coalesce(next_day, day + 7)), -1, 0 FROM window_rows
    UNION ALL
    SELECT LEAST(day + 30, coalesce(next_day, day + 30)), 0, -1 FROM window_rows
),
running AS (
    SELECT x, sum(sum(dw)) OVER (ORDER BY x) AS wau, sum(sum(dm)) OVER (ORDER BY x) AS mau
    FROM deltas GROUP BY x
),
daily AS (
    SELECT day, count(*) AS dau, sum(events) AS events FROM window_rows
    WHERE day >= :start GROUP BY day
),
fresh AS (
    SELECT first_day AS day, count(*) AS new_users FROM persons
    WHERE project_id = :project AND first_day BETWEEN :start AND :stop GROUP BY first_day
)
SELECT d.day, coalesce(daily.dau, 0) AS dau, coalesce(r.wau, 0) AS wau, coalesce(r.mau, 0) AS mau,
       coalesce(fresh.new_users, 0) AS new_users, coalesce(daily.events, 0) AS events
FROM generate_series(CAST(:start AS date), CAST(:stop AS date), interval '1 day') AS g(d)
CROSS JOIN LATERAL (SELECT g.d::date AS day) d
LEFT JOIN daily USING (day)
LEFT JOIN fresh USING (day)
LEFT JOIN LATERAL (
    SELECT wau, mau FROM running WHERE running.x <= d.day ORDER BY running.x DESC LIMIT 1
) r ON true
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
