"""Stickiness histogram (SPEC §4): per week or month, persons active on exactly 1..7 (1..31) days.

Read from the rollup the metrics service keeps per period (`stickiness_periods`: persons by
number of active days; services/metrics/aggregates/periods.py). Split by a breakdown value, from
the per-value rollup triggers keep as the image of person_day_values (`stickiness_value_periods`,
migration 0025): per value, persons by the number of days of the period they were active
carrying it (a person who upgrades midweek counts under free with the days before, under vip
with the days after); the 50 values with the most persons summed over the range's periods (a
person active under a value in two weeks counts twice: the rollup holds no person), then the
null group: persons by the number of days they were active with an event that carried no value.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.values import null_last, shown
from services.gateway.queries.breakdown import split_params
from services.gateway.queries.periods import next_period, periods_between

StickinessPeriod = Literal["week", "month"]

STICKINESS_SQL = text(
    """
SELECT period, active_days, persons FROM stickiness_periods
WHERE project_id = :project AND kind = :period AND period >= :lo AND period < :hi
  AND persons <> 0
"""
)


STICKINESS_BY_VALUE_SQL = text(
    """
WITH buckets AS (
    SELECT value, period, active_days, persons FROM stickiness_value_periods
    WHERE project_id = :project AND key = :key AND kind = :period
      AND period >= :lo AND period < :hi AND persons <> 0
),
top AS (
    (SELECT value FROM buckets WHERE value <> :none GROUP BY value
     ORDER BY sum(persons) DESC, value COLLATE "C" LIMIT :limit)
    UNION ALL
    SELECT DISTINCT value FROM buckets WHERE value = :none
)
SELECT value, period, active_days, persons FROM buckets WHERE value IN (SELECT value FROM top)
"""
)


class StickinessRow(BaseModel):
    start: date
    histogram: list[int]  # histogram[i]: persons active on exactly i + 1 days of the period


class StickinessSeries(BaseModel):
    value: str | None  # None: the null group
    periods: list[StickinessRow]


class StickinessValueRow(BaseModel):
    """One CSV line of a breakdown."""

    value: str | None
    start: date
    histogram: list[int]


def _histograms(
    start: date, stop: date, period: StickinessPeriod
) -> tuple[dict[date, list[int]], dict[str, Any]]:
    """An empty histogram per period of the range, and the bounds of the statements."""
    starts = periods_between(start, stop, period)
    width = 7 if period == "week" else 31
    bounds = {"period": period, "lo": starts[0], "hi": next_period(starts[-1], period)}
    return {s: [0] * width for s in starts}, bounds


async def read_stickiness(
    conn: AsyncConnection, project_id: int, start: date, stop: date, period: StickinessPeriod
) -> list[StickinessRow]:
    out, bounds = _histograms(start, stop, period)
    rows = await conn.execute(STICKINESS_SQL, {"project": project_id, **bounds})
    for r in rows:
        out[r.period][r.active_days - 1] = r.persons
    return [StickinessRow(start=s, histogram=h) for s, h in out.items()]


async def read_stickiness_breakdown(
    conn: AsyncConnection,
    project_id: int,
    key: str,
    start: date,
    stop: date,
    period: StickinessPeriod,
) -> list[StickinessSeries]:
    empty, bounds = _histograms(start, stop, period)
    params = {**split_params(project_id, key), **bounds}
    by_value: dict[str, dict[date, list[int]]] = {}
    for r in await conn.execute(STICKINESS_BY_VALUE_SQL, params):
        out = by_value.setdefault(r.value, {s: list(h) for s, h in empty.items()})
        out[r.period][r.active_days - 1] = r.persons
    return [
        StickinessSeries(
            value=shown(v),
            periods=[StickinessRow(start=s, histogram=h) for s, h in by_value[v].items()],
        )
        for v in null_last(sorted(by_value))
    ]
