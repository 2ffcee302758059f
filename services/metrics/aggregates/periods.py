"""The rollups per calendar period (SPEC §4 Lifecycle, Stickiness histogram), kept exact by
deltas inside each batch. Periods are days, ISO weeks (Monday first) and calendar months of the
project's timezone, as person_days holds them.

`lifecycle_periods`, per project, kind (day, week, month) and period P: `active` = persons with
an active day in P, `continuing` = those of them also active in the period before P. With
`new` (persons whose first active day is in P: activity_daily's new_users summed over P), the
read has every class without visiting a person: returning = continuing; resurrecting = active -
new - continuing; dormant = active(P - 1) - continuing(P).

`stickiness_periods`, per project, kind (week, month), period and number of active days n: the
persons active on exactly n days of the period.

A batch's new person-days make a person active in some periods (`became`): each adds 1 to its
period's `active`; 1 to its `continuing` when the period before was active already or became
so too; and 1 to the next period's `continuing` when that one was active already (when it became
active too, its own row counts the pair). A person with h days of a week or month already and n
new ones moves from bucket h to h + n. "Already" is read from the person's person_days around
the new ones: a month either side of theirs holds both neighbours of every period they touch.

Identity merges subtract the merged persons' whole contributions before the re-key and add the
survivor's after it, like the activity rollup (rollup.py).

Runs before the batch's rows are written to person_days: "already" means before the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

from services.metrics.aggregates.rollup import contribute

KINDS = "(VALUES ('day'), ('week'), ('month')) AS k(kind)"

# A period's start; the start of the one before it and after it. Days are the project's: no zone.
PERIOD = "date_trunc(k.kind, {day}::timestamp)::date"
BEFORE = "(period - CAST('1 ' || kind AS interval))::date"
AFTER = "(period + CAST('1 ' || kind AS interval))::date"

UPSERT_LIFECYCLE = """
INSERT INTO lifecycle_periods AS l (project_id, kind, period, active, continuing)
SELECT project_id, kind, period, sum(active), sum(continuing)
FROM lifecycle_deltas GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (project_id, kind, period) DO UPDATE
SET active = l.active + excluded.active, continuing = l.continuing + excluded.continuing
"""

UPSERT_STICKINESS = """
INSERT INTO stickiness_periods AS s (project_id, kind, period, active_days, persons)
SELECT project_id, kind, period, active_days, sum(persons)
FROM stickiness_deltas WHERE kind <> 'day' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
ON CONFLICT (project_id, kind, period, active_days) DO UPDATE
SET persons = s.persons + excluded.persons
"""

# The batch's (project, person, day) rows, days in the project's timezone. Sets of the batch's
# rows are taken apart by EXCEPT and combined by UNION and GROUP BY, and neighbours are found by
# window functions over a person's periods in order: no join of one set derived from the batch to
# another, which a misestimate can plan as a loop over rows with no index (migration 0023).
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
new_days AS (
    SELECT project_id, person_id, day FROM b
    EXCEPT
    SELECT project_id, person_id, day FROM held_days
),
-- Per person and period, the days held already and the new ones.
days AS (
    SELECT project_id, person_id, kind, period, sum(held) AS held, sum(new) AS new
    FROM (SELECT project_id, person_id, k.kind, {PERIOD.format(day="day")} AS period,
                 1 AS held, 0 AS new
          FROM held_days CROSS JOIN {KINDS}
          UNION ALL
          SELECT project_id, person_id, k.kind, {PERIOD.format(day="day")}, 0, 1
          FROM new_days CROSS JOIN {KINDS}) AS d
    GROUP BY 1, 2, 3, 4
),
sequenced AS (
    SELECT *, lag(period) OVER w AS before, lead(period) OVER w AS after,
           lead(held) OVER w AS after_held
    FROM days
    WINDOW w AS (PARTITION BY project_id, person_id, kind ORDER BY period)
),
lifecycle_deltas AS (
    SELECT project_id, kind, period, 1 AS active,
           CASE WHEN before = {BEFORE} THEN 1 ELSE 0 END AS continuing
    FROM sequenced WHERE held = 0
    UNION ALL
    SELECT project_id, kind, after, 0, 1
    FROM sequenced WHERE held = 0 AND after = {AFTER} AND after_held > 0
),
lifecycle AS ({UPSERT_LIFECYCLE}),
stickiness_deltas AS (
    SELECT project_id, kind, period, held AS active_days, -1 AS persons
    FROM days WHERE new > 0 AND held > 0
    UNION ALL
    SELECT project_id, kind, period, held + new, 1 FROM days WHERE new > 0
)
{UPSERT_STICKINESS}
"""

# A set of persons' whole contribution, with a sign: -1 before a merge re-keys them, +1 after.
PERSONS_CONTRIBUTION = f"""
WITH people AS (SELECT * FROM unnest($1::int[], $2::text[]) AS t(project_id, person_id)),
days AS (
    SELECT d.project_id, d.person_id, k.kind, {PERIOD.format(day="d.day")} AS period,
           count(*) AS days
    FROM person_days d
    JOIN people t ON t.project_id = d.project_id AND t.person_id = d.person_id
    CROSS JOIN {KINDS}
    GROUP BY 1, 2, 3, 4
),
sequenced AS (
    SELECT *, lag(period) OVER (PARTITION BY project_id, person_id, kind ORDER BY period)
                  AS before
    FROM days
),
lifecycle_deltas AS (
    SELECT project_id, kind, period, $3::int AS active,
           CASE WHEN before = {BEFORE} THEN $3::int ELSE 0 END AS continuing
    FROM sequenced
),
lifecycle AS ({UPSERT_LIFECYCLE}),
stickiness_deltas AS (
    SELECT project_id, kind, period, days AS active_days, $3::int AS persons FROM days
)
{UPSERT_STICKINESS}
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
    await contribute(conn, PERSONS_CONTRIBUTION, people, sign)
