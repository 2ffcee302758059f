"""Stickiness histogram (SPEC §4): per week or month, persons active on exactly 1..7 (1..31) days.

Computed from person_days (one row per person-day).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.queries.periods import next_period, periods_between

StickinessPeriod = Literal["week", "month"]

STICKINESS_SQL = text(
    """
SELECT period, active_days, count(*) AS persons
FROM (
    SELECT date_trunc(:period, day)::date AS period, person_id, count(*) AS active_days
    FROM person_days
    WHERE project_id = :project AND day >= :lo AND day < :hi
    GROUP BY 1, 2
) per_person
GROUP BY 1, 2
"""
)


class StickinessRow(BaseModel):
    start: date
    histogram: list[int]  # histogram[i]: persons active on exactly i + 1 days of the period


async def read_stickiness(
    conn: AsyncConnection, project_id: int, start: date, stop: date, period: StickinessPeriod
) -> list[StickinessRow]:
    starts = periods_between(start, stop, period)
    width = 7 if period == "week" else 31
    out = {s: [0] * width for s in starts}
    rows = await conn.execute(
        STICKINESS_SQL,
        {
            "project": project_id,
            "period": period,
            "lo": starts[0],
            "hi": next_period(starts[-1], period),
        },
    )
    for r in rows:
        out[r.period][r.active_days - 1] = r.persons
    return [StickinessRow(start=s, histogram=h) for s, h in out.items()]
