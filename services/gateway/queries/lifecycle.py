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
dormant persons are those it lost to inactivity, not to another value. Computed from
person_day_values, whose cost grows with the persons of the periods read (0.35-0.5 s for a month
at 1M events), so a read stores each period it computed (`lifecycle_value_cache`, migration
0028) and the next one computes only the periods something changed since: a change of a day in
the period or the one before, or a first day moved from it (`lifecycle_value_changes`). Under
live traffic that is the current period; a late event or a merge adds the periods of its days.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.values import NO_VALUE, null_last, shown
from services.gateway.queries.breakdown import MAX_VALUES
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


# Under the (project, key) pair's lock, tried (migration 0028): the cached periods that a change
# committed since their snapshot touches go, with every committed change. True when this read
# holds the lock to its commit, and may store what it computes.
PRUNE_SQL = text("SELECT lifecycle_values_prune(:project, :key)")
ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")

# The range's cached periods that no change their snapshot does not see touches: a change of a
# day in the period or the one before it (migration 0028).
CACHED_SQL = text(
    """
SELECT c.period, c.vals, c.n_new, c.n_returning, c.n_resurrecting, c.n_dormant
FROM lifecycle_value_cache c
WHERE c.project_id = :project AND c.key = :key AND c.kind = :period
  AND c.period = ANY(CAST(:starts AS date[]))
  AND NOT EXISTS (
      SELECT 1 FROM lifecycle_value_changes g
      WHERE g.project_id = c.project_id AND g.key = c.key
        AND g.day >= CAST(c.period - CAST('1 ' || :period AS interval) AS date)
        AND g.day < CAST(c.period + CAST('1 ' || :period AS interval) AS date)
        AND NOT pg_visible_in_snapshot(g.xid, c.snapshot)
  )
"""
)

# Per period from :first to :last and value: the persons who carried it, by status, and those
# who carried it in the period before and were not active in this one (dormant). Activity is
# read from the key's own rows: every active event has one per tracked key (its value, or the
# null group's), so a person-period with a row is an active one, and one read of
# person_day_values (ordered by person for the window) gives both; with person_days read beside
# it, 1M events took 0.43 s instead of 0.37 s (docs/performance.md, "Reads at the issues'
# scale"). The rows are read a value at a time (the values the days have in
# `activity_value_daily`, the image of person_day_values), as ranges of the primary key: one
# day's rows among a month's, in 3 ms instead of a 12 ms scan. Only those periods and the one
# before them are read: a person's status needs nothing else. Of a person-period with nothing
# before it in those, the `persons` table says whether it is the first. One row per period, its
# values sorted, all of them (the read picks the top ones over its whole range); with :store,
# the same rows go to the cache with the statement's own snapshot, so they claim to see exactly
# the changes they were computed from.
LIFECYCLE_BY_VALUE_SQL = text(
    """
WITH seen AS (  -- the values with rows on those days, each read below as a range of the primary key
    SELECT DISTINCT value FROM activity_value_daily
    WHERE project_id = :project AND key = :key AND day >= :lo AND day < :hi
),
carried AS (  -- per person and period: the values they carried
    SELECT v.person_id, date_trunc(:period, v.day::timestamp)::date AS period,
           array_agg(DISTINCT v.value) AS vals
    FROM seen JOIN person_day_values v
      ON v.project_id = :project AND v.key = :key AND v.value = seen.value
     AND v.day >= :lo AND v.day < :hi
    GROUP BY 1, 2
),
seq AS (  -- with the person's active periods before and after it
    SELECT person_id, period, vals,
           lag(period) OVER w AS before, lead(period) OVER w AS after,
           CAST(period + CAST('1 ' || :period AS interval) AS date) AS next
    FROM carried
    WINDOW w AS (PARTITION BY person_id ORDER BY period)
),
firsts AS (  -- the persons whose first active day is in the periods
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
    SELECT vals, next AS period FROM seq
    WHERE period < :last AND (after IS NULL OR after <> next)
),
counted AS (
    SELECT value, period, count(*) FILTER (WHERE status = 'new') AS n_new,
           count(*) FILTER (WHERE status = 'returning') AS n_returning,
           count(*) FILTER (WHERE status = 'resurrecting') AS n_resurrecting, 0 AS n_dormant
    FROM statuses, unnest(vals) AS value GROUP BY 1, 2
    UNION ALL
    SELECT value, period, 0, 0, 0, count(*) FROM gone, unnest(vals) AS value GROUP BY 1, 2
),
per_value AS (
    SELECT period, value, CAST(sum(n_new) AS bigint) AS n_new,
           CAST(sum(n_returning) AS bigint) AS n_returning,
           CAST(sum(n_resurrecting) AS bigint) AS n_resurrecting,
           CAST(sum(n_dormant) AS bigint) AS n_dormant
    FROM counted GROUP BY 1, 2
),
periods AS (
    SELECT CAST(generate_series(CAST(:first AS timestamp), CAST(:last AS timestamp),
                                CAST('1 ' || :period AS interval)) AS date) AS period
),
per_period AS (
    SELECT w.period,
           coalesce(array_agg(v.value ORDER BY v.value) FILTER (WHERE v.value IS NOT NULL),
                    '{}') AS vals,
           coalesce(array_agg(v.n_new ORDER BY v.value) FILTER (WHERE v.value IS NOT NULL),
                    '{}') AS n_new,
           coalesce(array_agg(v.n_returning ORDER BY v.value) FILTER (WHERE v.value IS NOT NULL),
                    '{}') AS n_returning,
           coalesce(array_agg(v.n_resurrecting ORDER BY v.value)
                        FILTER (WHERE v.value IS NOT NULL), '{}') AS n_resurrecting,
           coalesce(array_agg(v.n_dormant ORDER BY v.value) FILTER (WHERE v.value IS NOT NULL),
                    '{}') AS n_dormant
    FROM periods w LEFT JOIN per_value v ON v.period = w.period
    GROUP BY w.period
),
stored AS (
    INSERT INTO lifecycle_value_cache AS c (project_id, key, kind, period, snapshot, vals, n_new,
                                            n_returning, n_resurrecting, n_dormant)
    SELECT :project, :key, :period, period, pg_current_snapshot(), vals, n_new, n_returning,
           n_resurrecting, n_dormant
    FROM per_period WHERE :store
    ON CONFLICT (project_id, key, kind, period) DO UPDATE
    SET snapshot = excluded.snapshot, vals = excluded.vals, n_new = excluded.n_new,
        n_returning = excluded.n_returning, n_resurrecting = excluded.n_resurrecting,
        n_dormant = excluded.n_dormant
)
SELECT period, vals, n_new, n_returning, n_resurrecting, n_dormant FROM per_period
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
    """The split of the periods overlapping [start, stop]: the cached ones still current, the
    others computed (and stored, when this read holds the pair's lock; then committed). The
    values listed: the MAX_VALUES with the most persons counted (dormant ones too) summed over
    the periods, then the null group."""
    starts = periods_between(start, stop, period)
    pair = {"project": project_id, "key": key, "period": period}
    storing = bool(await conn.scalar(PRUNE_SQL, {"project": project_id, "key": key}))
    rows = list(await conn.execute(CACHED_SQL, {**pair, "starts": starts}))
    stale = sorted(set(starts) - {r.period for r in rows})
    for first, last in _runs(stale, period):
        rows += await conn.execute(
            LIFECYCLE_BY_VALUE_SQL,
            {
                **pair,
                "lo": previous_period(first, period),
                "first": first,
                "last": last,
                "hi": next_period(last, period),
                "store": storing,
            },
        )
    if storing:
        # Lost in a crash, the stored periods and the pruned changes go together: the next
        # read computes those periods again. No need to wait for the disk.
        await conn.execute(ASYNC_COMMIT)
        await conn.commit()
    # value -> period -> [new, returning, resurrecting, dormant]
    counts: dict[str, dict[date, list[int]]] = {}
    for r in rows:
        for i, value in enumerate(r.vals):
            counts.setdefault(value, {s: [0, 0, 0, 0] for s in starts})[r.period] = [
                r.n_new[i],
                r.n_returning[i],
                r.n_resurrecting[i],
                -r.n_dormant[i],
            ]
    return [
        LifecycleSeries(
            value=shown(value),
            periods=[
                LifecyclePeriod(start=s, new=n, returning=ret, resurrecting=res, dormant=d)
                for s, (n, ret, res, d) in counts[value].items()
            ],
        )
        for value in null_last(sorted(_listed(counts)))
    ]


def _runs(starts: list[date], period: Period) -> list[tuple[date, date]]:
    """The sorted period starts as runs of consecutive periods: (first, last) of each."""
    runs: list[tuple[date, date]] = []
    for start in starts:
        if runs and next_period(runs[-1][1], period) == start:
            runs[-1] = (runs[-1][0], start)
        else:
            runs.append((start, start))
    return runs


def _listed(counts: dict[str, dict[date, list[int]]]) -> list[str]:
    """The MAX_VALUES values with the most persons counted, largest first and ties in byte
    order (as every split's SQL orders them: COLLATE "C"), then the null group if there."""

    def persons(value: str) -> int:
        return sum(n + ret + res - d for n, ret, res, d in counts[value].values())

    ranked = sorted((v for v in counts if v != NO_VALUE), key=lambda v: (-persons(v), v.encode()))
    return ranked[:MAX_VALUES] + ([NO_VALUE] if NO_VALUE in counts else [])
