"""The daily activity rollup (activity_daily), kept exact by deltas inside each batch.

WAU(x)/MAU(x) count persons with an active day in [x-6, x] / [x-29, x]. Give each of a person's
active days s the interval [s, min(s + W - 1, next(s) - 1)], next(s) being their next active
day: the intervals are disjoint and their union is the person's coverage, so WAU(x) is the
number of intervals covering x. A new active day d therefore changes only two things: d's own
interval (+1), and the interval of the old day just before it, which now ends before d (-1 on
the part d takes over). Both are found with window functions over the person's days near d.

Identity merges are rare: for them, the merged persons' whole contributions are subtracted
before the re-key and the surviving person's added after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

# The batch's (project, person, day, events) rows, aggregated, days in the project's timezone.
BATCH_DAYS = """
b AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::date[], $4::bigint[])
        AS t(project_id, person_id, day, events)
)"""

UPSERT = """
INSERT INTO activity_daily AS a (project_id, day, dau, wau, mau, new_users, events)
SELECT project_id, day, sum(dau), sum(wau), sum(mau), sum(new_users), sum(events)
FROM deltas GROUP BY 1, 2 ORDER BY 1, 2
ON CONFLICT (project_id, day) DO UPDATE SET
    dau = a.dau + excluded.dau, wau = a.wau + excluded.wau, mau = a.mau + excluded.mau,
    new_users = a.new_users + excluded.new_users, events = a.events + excluded.events
"""

# Run before the batch's rows are written to person_days/persons: "old" means before the batch.
ADD_BATCH = f"""
WITH {BATCH_DAYS},
new_rows AS (
    SELECT b.project_id, b.person_id, b.day FROM b
    WHERE NOT EXISTS (SELECT 1 FROM person_days d WHERE d.project_id = b.project_id
                      AND d.day = b.day AND d.person_id = b.person_id)
),
span AS (
    SELECT project_id, person_id, min(day) - 30 AS lo, max(day) + 30 AS hi
    FROM new_rows GROUP BY 1, 2
),
old_rows AS (
    SELECT d.project_id, d.person_id, d.day,
           lead(d.day) OVER (PARTITION BY d.project_id, d.person_id ORDER BY d.day) AS next_old
    FROM person_days d JOIN span s ON s.project_id = d.project_id AND s.person_id = d.person_id
    WHERE d.day BETWEEN s.lo AND s.hi
),
merged AS (
    SELECT project_id, person_id, day, next_old, false AS is_new FROM old_rows
    UNION ALL
    SELECT project_id, person_id, day, NULL, true FROM new_rows
),
sequenced AS (
    SELECT *, lead(day) OVER (PARTITION BY project_id, person_id ORDER BY day) AS next_any
    FROM merged
),
intervals AS (
    -- A new day covers up to the next active day, old or new.
    SELECT project_id, day AS lo, LEAST(day + w - 1, coalesce(next_any - 1, day + w - 1)) AS hi,
           1 AS sign, w
    FROM sequenced CROSS JOIN (VALUES (7), (30)) AS win(w) WHERE is_new
    UNION ALL
    -- An old day now followed by a new one gives up the days from that new one on.
    SELECT project_id, next_any, LEAST(day + w - 1, coalesce(next_old - 1, day + w - 1)), -1, w
    FROM sequenced CROSS JOIN (VALUES (7), (30)) AS win(w)
    WHERE NOT is_new AND next_any IS DISTINCT FROM next_old
),
-- Each interval as +sign on its first day and -sign the day after its last, so the coverage
-- change of a day is a running sum over the interval ends, not a row per day of every interval.
bounds AS (
    SELECT project_id, w, day, sum(sign) AS sign
    FROM (SELECT project_id, w, lo AS day, sign FROM intervals WHERE lo <= hi
          UNION ALL
          SELECT project_id, w, hi + 1, -sign FROM intervals WHERE lo <= hi) AS ends
    GROUP BY 1, 2, 3
),
-- The change holds from one end to the next; it is nonzero only on days some interval covers,
-- so only those days are expanded: at most W per interval, however far apart the batch's days
-- are (expanding every day from the first end to the last, events in 2000 and in 8999 in one
-- batch made 2.5 million rows).
steps AS (
    SELECT project_id, w, day,
           CAST(sum(sign) OVER (PARTITION BY project_id, w ORDER BY day) AS bigint) AS change,
           lead(day) OVER (PARTITION BY project_id, w ORDER BY day) AS next_day
    FROM bounds
),
covered AS (
    SELECT s.project_id, s.w, g.x::date AS day, s.change
    FROM steps s CROSS JOIN generate_series(s.day, s.next_day - 1, interval '1 day') AS g(x)
    WHERE s.change <> 0
),
first_days AS (
    SELECT b.project_id, min(b.day) AS day, p.first_day AS old_day
    FROM b LEFT JOIN persons p ON p.project_id = b.project_id AND p.person_id = b.person_id
    GROUP BY b.project_id, b.person_id, p.first_day
),
deltas AS (
    SELECT project_id, day, 0 AS dau, CASE WHEN w = 7 THEN change ELSE 0 END AS wau,
           CASE WHEN w = 30 THEN change ELSE 0 END AS mau, 0 AS new_users, 0 AS events
    FROM covered WHERE change <> 0
    UNION ALL
    SELECT project_id, day, 1, 0, 0, 0, 0 FROM new_rows
    UNION ALL
    SELECT project_id, day, 0, 0, 0, 0, events FROM b
    UNION ALL
    SELECT project_id, day, 0, 0, 0, 1, 0 FROM first_days
    WHERE old_day IS NULL OR day < old_day
    UNION ALL
    SELECT project_id, old_day, 0, 0, 0, -1, 0 FROM first_days WHERE day < old_day
)
{UPSERT}
"""

# A set of persons' whole contribution, with a sign: -1 before a merge re-keys them, +1 after.
PERSONS_CONTRIBUTION = f"""
WITH people AS (SELECT * FROM unnest($1::int[], $2::text[]) AS t(project_id, person_id)),
rows AS (
    SELECT d.project_id, d.person_id, d.day, d.events FROM person_days d
    JOIN people t ON t.project_id = d.project_id AND t.person_id = d.person_id
),
cover AS (
    SELECT project_id, person_id, g.x::date AS x, min(g.x::date - day) AS gap
    FROM rows, generate_series(day, day + 29, interval '1 day') AS g(x)
    GROUP BY 1, 2, 3
),
deltas AS (
    SELECT project_id, x AS day, $3 * count(*) FILTER (WHERE gap = 0) AS dau,
           $3 * count(*) FILTER (WHERE gap < 7) AS wau, $3 * count(*) AS mau,
           0 AS new_users, 0 AS events
    FROM cover GROUP BY 1, 2
    UNION ALL
    SELECT p.project_id, p.first_day, 0, 0, 0, $3, 0 FROM persons p
    JOIN people t ON t.project_id = p.project_id AND t.person_id = p.person_id
)
{UPSERT}
"""


async def add_batch(
    conn: asyncpg.Connection,
    project_ids: Sequence[int],
    person_ids: Sequence[str],
    days: Sequence[date],
    events: Sequence[int],
) -> None:
    """Deltas for a batch's person-days; call before writing them to person_days/persons."""
    await conn.execute(ADD_BATCH, project_ids, person_ids, days, events)


async def contribute(
    conn: asyncpg.Connection, statement: str, people: Sequence[tuple[int, str]], sign: int
) -> None:
    """Run a rollup's whole-contribution `statement` ($1 project ids, $2 person labels, $3 the
    sign) for `people`, in key order (rows are written in the order concurrent batches take)."""
    if people:
        ordered = sorted(set(people))
        await conn.execute(statement, [p[0] for p in ordered], [p[1] for p in ordered], sign)


async def persons_contribution(
    conn: asyncpg.Connection, people: Sequence[tuple[int, str]], sign: int
) -> None:
    await contribute(conn, PERSONS_CONTRIBUTION, people, sign)
