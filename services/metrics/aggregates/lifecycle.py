"""The lifecycle rollup (lifecycle_periods), kept exact by deltas inside each batch (SPEC §4).

Per project, kind (day, week, month) and calendar period P (ISO weeks, Monday first):
`active` = persons with an active day in P, `continuing` = those of them also active in the
period before P. With `new` (persons whose first active day is in P: activity_daily's
new_users summed over P), the read has every class of SPEC §4 without visiting a person:
returning = continuing; resurrecting = active - new - continuing (neither new nor active just
before); dormant = active(P - 1) - continuing(P).

A batch's new person-days make a person active in some periods (`became`): each adds 1 to its
period's `active`; 1 to its `continuing` when the period before was active already or became
so too; and 1 to the next period's `continuing` when that one was active already (when it
became active too, its own row counts the pair). "Already" is read from the person's
person_days around the new ones: a month either side of theirs holds both neighbours of every
period they touch, whatever the kind.

Identity merges subtract the merged persons' whole contributions before the re-key and add the
survivor's after it, like the activity rollup (rollup.py).

Runs before the batch's rows are written to person_days: "already" means before the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

KINDS = "(VALUES ('day'), ('week'), ('month')) AS k(kind)"

# A period's start, and the start of the one before it; days are the project's, so no zone.
PERIOD = "date_trunc(k.kind, {day}::timestamp)::date"
BEFORE = "(period - CAST('1 ' || kind AS interval))::date"
AFTER = "(period + CAST('1 ' || kind AS interval))::date"

UPSERT = """
INSERT INTO lifecycle_periods AS l (project_id, kind, period, active, continuing)
SELECT project_id, kind, period, sum(active), sum(continuing)
FROM deltas GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (project_id, kind, period) DO UPDATE
SET active = l.active + excluded.active, continuing = l.continuing + excluded.continuing
"""

# The batch's (project, person, day) rows, aggregated, days in the project's timezone. The new
# person-days and the periods the persons already had are sets taken apart by EXCEPT, and their
# neighbours are found by window functions over the persons' periods in order: no join of one
# set of the batch's rows to another (see migration 0023).
ADD_BATCH = f"""
WITH b AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::date[]) AS t(project_id, person_id, day)
),
span AS (
    SELECT project_id, person_id, min(day) AS lo, max(day) AS hi FROM b GROUP BY 1, 2
),
held_days AS (
    SELECT s.project_id, s.person_id, d.day
    FROM span s CROSS JOIN LATERAL (
        SELECT d.day FROM person_days d
        WHERE d.project_id = s.project_id AND d.person_id = s.person_id
          AND d.day >= (date_trunc('month', s.lo::timestamp) - interval '1 month')::date
          AND d.day < (date_trunc('month', s.hi::timestamp) + interval '2 months')::date
        OFFSET 0
    ) d
),
held AS (
    SELECT DISTINCT project_id, person_id, kind, {PERIOD.format(day="day")} AS period
    FROM held_days CROSS JOIN {KINDS}
),
became AS (
    SELECT project_id, person_id, kind, {PERIOD.format(day="day")} AS period
    FROM (SELECT project_id, person_id, day FROM b
          EXCEPT
          SELECT project_id, person_id, day FROM held_days) AS new_days
    CROSS JOIN {KINDS}
    EXCEPT
    SELECT project_id, person_id, kind, period FROM held
),
sequenced AS (
    SELECT *, lag(period) OVER w AS before, lead(period) OVER w AS after,
           lead(is_new) OVER w AS after_is_new
    FROM (SELECT *, true AS is_new FROM became
          UNION ALL
          SELECT *, false FROM held) AS periods
    WINDOW w AS (PARTITION BY project_id, person_id, kind ORDER BY period)
),
deltas AS (
    SELECT project_id, kind, period, 1 AS active,
           CASE WHEN before = {BEFORE} THEN 1 ELSE 0 END AS continuing
    FROM sequenced WHERE is_new
    UNION ALL
    SELECT project_id, kind, after, 0, 1
    FROM sequenced WHERE is_new AND after = {AFTER} AND NOT after_is_new
)
{UPSERT}
"""

# A set of persons' whole contribution, with a sign: -1 before a merge re-keys them, +1 after.
PERSONS_CONTRIBUTION = f"""
WITH people AS (SELECT * FROM unnest($1::int[], $2::text[]) AS t(project_id, person_id)),
periods AS (
    SELECT DISTINCT d.project_id, d.person_id, k.kind, {PERIOD.format(day="d.day")} AS period
    FROM person_days d
    JOIN people t ON t.project_id = d.project_id AND t.person_id = d.person_id
    CROSS JOIN {KINDS}
),
sequenced AS (
    SELECT *, lag(period) OVER (PARTITION BY project_id, person_id, kind ORDER BY period)
                  AS before
    FROM periods
),
deltas AS (
    SELECT project_id, kind, period, $3::int AS active,
           CASE WHEN before = {BEFORE} THEN $3::int ELSE 0 END AS continuing
    FROM sequenced
)
{UPSERT}
"""


async def add_batch(
    conn: asyncpg.Connection,
    project_ids: Sequence[int],
    person_ids: Sequence[str],
    days: Sequence[date],
) -> None:
    """Deltas for a batch's person-days; call before writing them to person_days."""
    await conn.execute(ADD_BATCH, project_ids, person_ids, days)


async def persons_contribution(
    conn: asyncpg.Connection, people: Sequence[tuple[int, str]], sign: int
) -> None:
    if people:
        ordered = sorted(set(people))
        await conn.execute(
            PERSONS_CONTRIBUTION, [p[0] for p in ordered], [p[1] for p in ordered], sign
        )
