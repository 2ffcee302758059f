"""Retention cohorts (SPEC §4), exact under late events and merges: by day over any activity
from the retention rollups, otherwise from person-day rows.

Cohort: persons whose first active day (or first `start_event`) falls in period c — over all
history, so a late event that moves a person's first day moves them to the right cohort.
retained[k]: cohort persons active (or doing `return_event`) in period c+k (`on`), or in period
c+k or any later one (`on_or_after`, unbounded retention). Periods are days or ISO weeks.

Breakdown by a key the project tracks (SPEC §4 Breakdowns): a cohort member's value is the
one they carried on their cohort-defining day — the first active day, or the day of their first
`start_event` (person_day_values is per day, not per event, so that is the value any of their
active events carried that day, not necessarily the start_event's own). A member who carried
several values that day belongs to each, as in the activity breakdown; one who carried none is
in the `null` group. Returns count as usual. The 50 values with the most cohort members over the
range are kept (ties by value), largest first, then the `null` group.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.gateway.queries.breakdown import split_params
from services.gateway.queries.periods import period_start, periods_between

RetentionPeriod = Literal["day", "week"]
RetentionMode = Literal["on", "on_or_after"]

# `starts` and `returns` are chosen by the caller: any activity (person_days) or one event's
# rows (person_event_days). {start_rows}/{return_rows} are fixed SQL fragments, never user text.
# `counted` holds the periods k at which a member counts: each return (`on`), or only their last
# one (`on_or_after`; read_retention turns those into suffix sums).
COHORT_CTES = """
WITH starts AS (
    SELECT person_id, min(day) AS first_day, date_trunc(:period, min(day))::date AS cohort
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
),
counted AS (
    SELECT cohort, person_id, k FROM offsets WHERE k <= :length AND :mode = 'on'
    UNION ALL
    SELECT cohort, person_id, LEAST(max(k), :length) FROM offsets
    WHERE :mode = 'on_or_after' GROUP BY cohort, person_id
)"""

# Members by the value they carried on their first day (one row per value; NULL: none). The rows
# of the events that carried none (:none, services/common/values.py) are left out: a member who
# carried a value that day belongs to its group only, unlike the activity split, where a person
# counts under the null group too on a day some of their events carried no value. The top
# values are ranked in code point order on ties (COLLATE "C"), as Python sorts them.
VALUE_CTES = """,
members AS (
    SELECT c.cohort, c.person_id, v.value
    FROM cohorts c
    LEFT JOIN person_day_values v
        ON v.project_id = :project AND v.key = :key
        AND v.person_id = c.person_id AND v.day = c.first_day AND v.value <> :none
),
top AS (
    SELECT value FROM members WHERE value IS NOT NULL
    GROUP BY value ORDER BY count(*) DESC, value COLLATE "C" LIMIT :limit
),
shown AS (SELECT * FROM members WHERE value IS NULL OR value IN (SELECT value FROM top))"""

# Rows: (split, value, cohort, k, persons); k NULL is the cohort's size. split false: everyone.
TOTALS = """
SELECT false AS split, NULL::text AS value, cohort, NULL::int AS k, count(*) AS persons
FROM cohorts GROUP BY cohort
UNION ALL
SELECT false, NULL, cohort, k, count(*) FROM counted GROUP BY cohort, k"""

BY_VALUE = """
UNION ALL
SELECT true, value, cohort, NULL, count(*) FROM shown GROUP BY value, cohort
UNION ALL
SELECT true, s.value, s.cohort, c.k, count(*)
FROM shown s JOIN counted c USING (cohort, person_id)
GROUP BY s.value, s.cohort, c.k"""

# By day, over any activity, without a breakdown: the rollups the metrics service keeps
# (services/metrics/aggregates/retention.py) give the same rows as the statement above — sizes
# with k NULL, then for `on` the persons active at k, for `on_or_after` the persons whose last
# active day is at k (capped at the length) — in O(cohorts x length).
ROLLUP_SQL = """
SELECT false AS split, NULL::text AS value, cohort, NULL::int AS k, sum(persons) AS persons
FROM retention_spans
WHERE project_id = :project AND cohort BETWEEN :first_cohort AND :last_cohort
GROUP BY cohort
UNION ALL
SELECT false, NULL, cohort, day - cohort, persons FROM retention_days
WHERE :mode = 'on' AND project_id = :project AND cohort BETWEEN :first_cohort AND :last_cohort
  AND day - cohort <= CAST(:length AS int)
UNION ALL
SELECT false, NULL, cohort, LEAST(last_day - cohort, CAST(:length AS int)), sum(persons)
FROM retention_spans
WHERE :mode = 'on_or_after' AND project_id = :project
  AND cohort BETWEEN :first_cohort AND :last_cohort
GROUP BY 3, 4"""

ANY_ACTIVITY = "person_days WHERE project_id = :project"
ONE_EVENT = "person_event_days WHERE project_id = :project AND event = {param}"


def retention_sql(start_event: bool, return_event: bool, by_value: bool) -> str:
    """One statement: the cohorts, and with `by_value` the same cohorts per breakdown value."""
    ctes = COHORT_CTES.format(
        start_rows=ONE_EVENT.format(param=":start_event") if start_event else ANY_ACTIVITY,
        return_rows=ONE_EVENT.format(param=":return_event") if return_event else ANY_ACTIVITY,
    )
    if by_value:
        return ctes + VALUE_CTES + TOTALS + BY_VALUE
    return ctes + TOTALS


class Cohort(BaseModel):
    date: date
    size: int
    retained: list[int]  # retained[k], k = 0..length


class RetentionSplit(BaseModel):
    """The cohorts of the members who carried `value` on their cohort-defining day."""

    value: str | None  # None: members who carried no value that day
    cohorts: list[Cohort]


class RetentionSplitRow(BaseModel):
    """One CSV line of a retention breakdown."""

    value: str | None
    date: date
    size: int
    retained: list[int]


class _Counts:
    """Sizes and per-k counts of one group's cohorts, as the statement returns them."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.sizes: dict[date, int] = {}
        self.counts: dict[date, list[int]] = defaultdict(lambda: [0] * (length + 1))

    def cohorts(self, starts: list[date], mode: RetentionMode) -> list[Cohort]:
        out = []
        for c in starts:
            retained = list(self.counts.get(c, [0] * (self.length + 1)))
            if mode == "on_or_after":
                # Counted at each person's last period: active at k or later = suffix sums.
                for k in range(self.length - 1, -1, -1):
                    retained[k] += retained[k + 1]
            out.append(Cohort(date=c, size=self.sizes.get(c, 0), retained=retained))
        return out


async def _read(
    conn: AsyncConnection,
    project_id: int,
    start: date,
    stop: date,
    length: int,
    period: RetentionPeriod,
    mode: RetentionMode,
    start_event: str | None,
    return_event: str | None,
    key: str | None,
) -> tuple[list[Cohort], list[RetentionSplit]]:
    starts = periods_between(start, stop, period)
    params: dict[str, Any] = {
        **split_params(project_id, key),
        "period": period,
        "step": 7 if period == "week" else 1,
        "first_cohort": starts[0],
        "last_cohort": period_start(stop, period),
        "length": length,
        "mode": mode,
        "start_event": start_event,
        "return_event": return_event,
    }
    if period == "day" and start_event is None and return_event is None and key is None:
        sql = ROLLUP_SQL
    else:
        sql = retention_sql(start_event is not None, return_event is not None, key is not None)
    everyone = _Counts(length)
    by_value: dict[str | None, _Counts] = defaultdict(lambda: _Counts(length))
    for r in await conn.execute(text(sql), params):
        group = by_value[r.value] if r.split else everyone
        if r.k is None:
            group.sizes[r.cohort] = r.persons
        else:
            group.counts[r.cohort][r.k] += r.persons
    # Largest groups first (members over the whole range), ties by value, no value last.
    order = sorted(by_value, key=lambda v: (v is None, -sum(by_value[v].sizes.values()), v or ""))
    splits = [RetentionSplit(value=v, cohorts=by_value[v].cohorts(starts, mode)) for v in order]
    return everyone.cohorts(starts, mode), splits


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
    cohorts, _ = await _read(
        conn, project_id, start, stop, length, period, mode, start_event, return_event, None
    )
    return cohorts


async def read_retention_breakdown(
    conn: AsyncConnection,
    project_id: int,
    key: str,
    start: date,
    stop: date,
    length: int,
    period: RetentionPeriod,
    mode: RetentionMode,
    start_event: str | None,
    return_event: str | None,
) -> tuple[list[Cohort], list[RetentionSplit]]:
    """The cohorts, and the same cohorts split by `key`'s value, read in one statement (so the
    split and the totals describe the same moment)."""
    return await _read(
        conn, project_id, start, stop, length, period, mode, start_event, return_event, key
    )
