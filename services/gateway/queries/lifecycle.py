"""Lifecycle per day/week/month (SPEC §4): new, returning, resurrecting and dormant persons.

new: first active in the period; returning: active in this and the previous period;
resurrecting: active now, not in the previous period, not new; dormant: active in the previous
period but not now (reported negative). Whole calendar periods overlapping the range, read from
the rollup the metrics service keeps per period (`lifecycle_periods`: persons active, and those
of them active in the period before too; services/metrics/aggregates/periods.py) and the new
users of `activity_daily`: a few rows per period, whatever its persons.

Split by a breakdown value (`read_lifecycle_breakdown`): a person's status is their own, from all
their activity, and they count under each value they carried in the period (the values of their
active events, person_day_values): a VIP who was active last week as a free user is returning
under vip, and a VIP of last week who is active this week on the free plan is not dormant
anywhere. Dormant persons count under the values they carried in the period before, so a value's
dormant persons are those it lost to inactivity, not to another value. Read from
person_day_values at request time (no rollup keeps it yet), so its cost grows with the persons
of the range's periods: 0.35-0.5 s for a month at 1M events (docs/performance.md, "Reads at the
issues' scale").
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.values import null_last, shown
from services.gateway.queries.breakdown import split_params
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


# Per value and period of the range: the persons who carried it, by status, and those who carried
# it in the period before and were not active in this one (dormant). Activity is read from the
# key's own rows: every active event has one per tracked key (its value, or the null group's),
# so a person-period with a row is an active one, and one read of person_day_values (ordered by
# person for the window) gives both; with person_days read beside it, 1M events took 0.43 s
# instead of 0.37 s (docs/performance.md, "Reads at the issues' scale"). Of a person-period with
# nothing before it in the range, the `persons` table says whether it is the first. The values
# listed: the 50 with the most persons counted (dormant ones too) summed over the range's
# periods, then the null group (:none).
LIFECYCLE_BY_VALUE_SQL = text(
    """
WITH carried AS (  -- per person and period: the values they carried (the period before too)
    SELECT person_id, date_trunc(:period, day::timestamp)::date AS period,
           array_agg(DISTINCT value) AS vals
    FROM person_day_values
    WHERE project_id = :project AND key = :key AND day >= :lo AND day < :hi
    GROUP BY 1, 2
),
seq AS (  -- with the person's active periods before and after it
    SELECT person_id, period, vals,
           lag(period) OVER w AS before, lead(period) OVER w AS after
    FROM carried
    WINDOW w AS (PARTITION BY person_id ORDER BY period)
),
firsts AS (  -- the persons whose first active day is in the range's periods
    SELECT person_id, date_trunc(:period, first_day::timestamp)::date AS period FROM persons
    WHERE project_id = :project AND first_day >= :first AND first_day < :hi
),
statuses AS (
    SELECT s.vals, s.period,
           CASE WHEN s.before = (s.period - CAST('1 ' || :period AS interval))::date
                    THEN 'returning'
                WHEN f.period = s.period THEN 'new'
                ELSE 'resurrecting' END AS status
    FROM seq s LEFT JOIN firsts f ON f.person_id = s.person_id AND s.before IS NULL
    WHERE s.period >= :first
),
gone AS (  -- dormant in the period after: not active in it
    SELECT vals, (period + CAST('1 ' || :period AS interval))::date AS period FROM seq
    WHERE period < :last
      AND (after IS NULL OR after <> (period + CAST('1 ' || :period AS interval))::date)
),
counted AS (
    SELECT value, period, count(*) FILTER (WHERE status = 'new') AS n_new,
           count(*) FILTER (WHERE status = 'returning') AS n_returning,
           count(*) FILTER (WHERE status = 'resurrecting') AS n_resurrecting, 0 AS n_dormant,
           count(*) AS persons
    FROM statuses, unnest(vals) AS value GROUP BY 1, 2
    UNION ALL
    SELECT value, period, 0, 0, 0, count(*), count(*) FROM gone, unnest(vals) AS value GROUP BY 1, 2
),
top AS (
    (SELECT value FROM counted WHERE value <> :none GROUP BY value
     ORDER BY sum(persons) DESC, value COLLATE "C" LIMIT :limit)
    UNION ALL
    SELECT DISTINCT value FROM counted WHERE value = :none
)
SELECT value, period, n_new, n_returning, n_resurrecting, n_dormant FROM counted
WHERE value IN (SELECT value FROM top)
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


class LifecycleSeries(BaseModel):
    value: str | None  # None: the null group
    periods: list[LifecyclePeriod]


class LifecycleValueRow(BaseModel):
    """One CSV line of a breakdown."""

    value: str | None
    start: date
    new: int
    returning: int
    resurrecting: int
    dormant: int


async def read_lifecycle_breakdown(
    conn: AsyncConnection, project_id: int, key: str, start: date, stop: date, period: Period
) -> list[LifecycleSeries]:
    starts = periods_between(start, stop, period)
    params = {
        **split_params(project_id, key),
        "period": period,
        "lo": previous_period(starts[0], period),
        "first": starts[0],
        "last": starts[-1],
        "hi": next_period(starts[-1], period),
    }
    # value -> period -> [new, returning, resurrecting, dormant]
    counts: dict[str, dict[date, list[int]]] = {}
    for r in await conn.execute(LIFECYCLE_BY_VALUE_SQL, params):
        row = counts.setdefault(r.value, {s: [0, 0, 0, 0] for s in starts})[r.period]
        for i, n in enumerate((r.n_new, r.n_returning, r.n_resurrecting, -r.n_dormant)):
            row[i] += n
    return [
        LifecycleSeries(
            value=shown(value),
            periods=[
                LifecyclePeriod(start=s, new=n, returning=ret, resurrecting=res, dormant=d)
                for s, (n, ret, res, d) in counts[value].items()
            ],
        )
        for value in null_last(sorted(counts))
    ]
