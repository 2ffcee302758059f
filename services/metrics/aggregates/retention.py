"""The retention rollups, kept exact by deltas inside each batch (SPEC §4 Retention).

`retention_days[c, d]`: persons whose first active day is c and who were active on d, so N-day
retention of cohort c is row (c, c + k). `retention_spans[c, l]`: persons of cohort c whose last
active day is l, so unbounded retention ("on or after") of cohort c at k sums the rows with
l >= c + k. With them, /v1/retention by day reads O(cohorts x length) rows.

A batch's new person-days add +1 under the person's cohort. A late event that moves a person's
first day earlier moves all their days from the old cohort to the new one; one that moves the
first or last day moves the person's span. Identity merges subtract the merged persons' whole
contributions before the re-key and add the survivor's after it, like the activity rollup.

Runs before the batch's rows are written to person_days/persons: "old" means before the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import asyncpg

from services.metrics.aggregates.rollup import contribute

UPSERT_DAYS = """
INSERT INTO retention_days AS r (project_id, cohort, day, persons)
SELECT project_id, cohort, day, sum(persons) FROM day_deltas GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (project_id, cohort, day) DO UPDATE SET persons = r.persons + excluded.persons
"""

UPSERT_SPANS = """
INSERT INTO retention_spans AS r (project_id, cohort, last_day, persons)
SELECT project_id, cohort, last_day, sum(persons) FROM span_deltas
GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
ON CONFLICT (project_id, cohort, last_day) DO UPDATE SET persons = r.persons + excluded.persons
"""

ADD_BATCH = f"""
WITH b AS (
    SELECT * FROM unnest($1::int[], $2::text[], $3::date[]) AS t(project_id, person_id, day)
),
new_rows AS (
    SELECT b.* FROM b
    WHERE NOT EXISTS (SELECT 1 FROM person_days d WHERE d.project_id = b.project_id
                      AND d.day = b.day AND d.person_id = b.person_id)
),
state AS (
    SELECT n.project_id, n.person_id, min(n.day) AS lo, max(n.day) AS hi,
           p.first_day AS old_first, p.last_day AS old_last
    FROM new_rows n
    LEFT JOIN persons p ON p.project_id = n.project_id AND p.person_id = n.person_id
    GROUP BY n.project_id, n.person_id, p.first_day, p.last_day
),
moved AS (SELECT * FROM state WHERE lo < old_first),
day_deltas AS (
    SELECT n.project_id, LEAST(s.lo, coalesce(s.old_first, s.lo)) AS cohort, n.day, 1 AS persons
    FROM new_rows n JOIN state s ON s.project_id = n.project_id AND s.person_id = n.person_id
    UNION ALL
    SELECT d.project_id, c.cohort, d.day, c.sign
    FROM moved m
    CROSS JOIN LATERAL (VALUES (m.old_first, -1), (m.lo, 1)) AS c(cohort, sign)
    JOIN person_days d ON d.project_id = m.project_id AND d.person_id = m.person_id
),
span_deltas AS (
    SELECT project_id, old_first AS cohort, old_last AS last_day, -1 AS persons FROM state
    WHERE lo < old_first OR hi > old_last
    UNION ALL
    SELECT project_id, LEAST(lo, coalesce(old_first, lo)), GREATEST(hi, coalesce(old_last, hi)), 1
    FROM state WHERE old_first IS NULL OR lo < old_first OR hi > old_last
),
days_written AS ({UPSERT_DAYS})
{UPSERT_SPANS}
"""

# A set of persons' whole contribution, with a sign: -1 before a merge re-keys them, +1 after.
PERSONS_CONTRIBUTION = f"""
WITH people AS (
    SELECT p.project_id, p.person_id, p.first_day, p.last_day
    FROM unnest($1::int[], $2::text[]) AS t(project_id, person_id)
    JOIN persons p ON p.project_id = t.project_id AND p.person_id = t.person_id
),
day_deltas AS (
    SELECT d.project_id, p.first_day AS cohort, d.day, $3::int AS persons
    FROM people p JOIN person_days d ON d.project_id = p.project_id AND d.person_id = p.person_id
),
span_deltas AS (
    SELECT project_id, first_day AS cohort, last_day, $3::int AS persons FROM people
),
days_written AS ({UPSERT_DAYS})
{UPSERT_SPANS}
"""


async def add_batch(
    conn: asyncpg.Connection,
    project_ids: Sequence[int],
    person_ids: Sequence[str],
    days: Sequence[date],
) -> None:
    """Deltas for a batch's distinct person-days; call before writing them to person_days."""
    await conn.execute(ADD_BATCH, project_ids, person_ids, days)


async def persons_contribution(
    conn: asyncpg.Connection, people: Sequence[tuple[int, str]], sign: int
) -> None:
    await contribute(conn, PERSONS_CONTRIBUTION, people, sign)
