"""Retention cohorts (SPEC §4), from person-day rows, exact under late events and merges.

Cohort: persons whose first active day (or first `start_event`) falls in period c — over all
history, so a late event that moves a person's first day moves them to the right cohort.
retained[k]: cohort persons active (or doing `return_event`) in period c+k (`on`), or in period
c+k or any later one (`on_or_after`, unbounded retention). Periods are days or ISO weeks.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.queries.periods import period_start, periods_between

RetentionPeriod = Literal["day", "week"]
RetentionMode = Literal["on", "on_or_after"]

# `starts` and `returns` are chosen by the caller: any activity (person_days) or one event's
# rows (person_event_days). {start_rows}/{return_rows} are fixed SQL fragments, never user text.
RETENTION_SQL = """
WITH starts AS (
    SELECT person_id, date_trunc(:period, min(day))::date AS cohort
    FROM {start_rows}
    GROUP BY person_id
),
cohorts AS (SELECT * FROM starts WHERE cohort BETWEEN :first_cohort AND :last_cohort),
returns AS (
    SELECT DISTINCT person_id, date_trunc(:period, day)::date AS period
    FROM {return_rows} AND day >= :first_cohort
),
offsets AS (
    SELECT c.cohort, c.person_id, (r.period - c.cohort) / :step AS k
    FROM cohorts c JOIN returns r USING (person_id)
    WHERE r.period >= c.cohort
)
SELECT cohort, NULL::int AS k, count(*) AS persons FROM cohorts GROUP BY cohort
UNION ALL
SELECT cohort, k, count(*) FROM offsets WHERE k <= :length AND :mode = 'on' GROUP BY cohort, k
UNION ALL
SELECT cohort, LEAST(last_k, :length), count(*) FROM (
    SELECT cohort, person_id, max(k) AS last_k FROM offsets GROUP BY cohort, person_id
) last WHERE :mode = 'on_or_after' GROUP BY 1, 2
"""

ANY_ACTIVITY = "person_days WHERE project_id = :project"
ONE_EVENT = "person_event_days WHERE project_id = :project AND event = {param}"


class Cohort(BaseModel):
    date: date
    size: int
    retained: list[int]  # retained[k], k = 0..length


async def read_retention(
    conn: AsyncConnection,
    project_id: int,
    start: date,
    stop: date,
    length: int,
    period: RetentionPeriod,
    mode: RetentionMode,
    start_event: str | None,
    return_event: str | None,
) -> list[Cohort]:
    sql = RETENTION_SQL.format(
        start_rows=ONE_EVENT.format(param=":start_event") if start_event else ANY_ACTIVITY,
        return_rows=ONE_EVENT.format(param=":return_event") if return_event else ANY_ACTIVITY,
    )
    starts = periods_between(start, stop, period)
    rows = await conn.execute(
        text(sql),
        {
            "project": project_id,
            "period": period,
            "step": 7 if period == "week" else 1,
            "first_cohort": starts[0],
            "last_cohort": period_start(stop, period),
            "length": length,
            "mode": mode,
            "start_event": start_event,
            "return_event": return_event,
        },
    )
    sizes: dict[date, int] = {}
    counts: dict[date, list[int]] = defaultdict(lambda: [0] * (length + 1))
    for r in rows:
        if r.k is None:
            sizes[r.cohort] = r.persons
        else:
            counts[r.cohort][r.k] += r.persons
    cohorts = []
    for c in starts:
        retained = counts[c]
        if mode == "on_or_after":
            # Counted at each person's last period: active at k or later = suffix sums.
            for k in range(length - 1, -1, -1):
                retained[k] += retained[k + 1]
        cohorts.append(Cohort(date=c, size=sizes.get(c, 0), retained=retained))
    return cohorts
