"""The per-value activity trigger (migration 0021) no longer plans a person's other days as a
nested loop over the statement's own rows.

To find the days a person already had around the changed ones, 0021's coverage statement read
them from `person_day_values` and dropped the changed rows themselves by `NOT EXISTS` over the
statement's rows, which have no index. When PostgreSQL expected few rows from the table (a
project its statistics did not know yet: a new project's first backlog, a key's first walk),
it checked every row read against every changed row: one INSERT of 25,000 person-day values
took 17 s, of 50,000 over 120 s (1.25 billion comparisons), holding the project's lock.
Now the changed rows are taken out by `EXCEPT`, a set operation, hashed or sorted, never a
loop; the join that reads the other days is left to the planner as before (read by an index
range per (person, value) instead, a LATERAL subquery, the 1M-event load of `make bench` took
135 s instead of 104 s: 3.5-4.2 s per batch in this trigger once trait changes came in).
The function also loses 0021's branches for a key dropped at once: since migration 0022 the
DELETE trigger does not fire while `pulse.dropping_key` is set, so they did nothing but read the
setting for every statement.

Revision ID: 0023
Revises: 0022
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# `rows`: the changed rows (project_id, key, value, person_id, day, events). With {sign} -1 (the
# deleted rows), the deltas are those of adding them to what is left, negated. Only `old_days`
# differs from 0021 (EXCEPT instead of NOT EXISTS); the rest computes the coverage as it did.
COVERAGE_DELTAS = """
    WITH changed AS ({rows}),
    span AS (
        SELECT project_id, key, value, person_id, min(day) - 30 AS lo, max(day) + 30 AS hi
        FROM changed GROUP BY 1, 2, 3, 4
    ),
    old_days AS (
        SELECT v.project_id, v.key, v.value, v.person_id, v.day
        FROM person_day_values v
        JOIN span s ON s.project_id = v.project_id AND s.person_id = v.person_id
                   AND s.key = v.key AND s.value = v.value
        WHERE v.day BETWEEN s.lo AND s.hi
        EXCEPT
        SELECT project_id, key, value, person_id, day FROM changed
    ),
    old_rows AS (
        SELECT project_id, key, value, person_id, day,
               lead(day) OVER (PARTITION BY project_id, key, value, person_id
                               ORDER BY day) AS next_old
        FROM old_days
    ),
    merged AS (
        SELECT project_id, key, value, person_id, day, next_old, false AS is_new FROM old_rows
        UNION ALL
        SELECT project_id, key, value, person_id, day, NULL, true FROM changed
    ),
    sequenced AS (
        SELECT *, lead(day) OVER (PARTITION BY project_id, key, value, person_id
                                  ORDER BY day) AS next_any
        FROM merged
    ),
    intervals AS (
        SELECT project_id, key, value, day AS lo,
               LEAST(day + w - 1, coalesce(next_any - 1, day + w - 1)) AS hi, 1 AS sign, w
        FROM sequenced CROSS JOIN (VALUES (7), (30)) AS win(w) WHERE is_new
        UNION ALL
        SELECT project_id, key, value, next_any,
               LEAST(day + w - 1, coalesce(next_old - 1, day + w - 1)), -1, w
        FROM sequenced CROSS JOIN (VALUES (7), (30)) AS win(w)
        WHERE NOT is_new AND next_any IS DISTINCT FROM next_old
    ),
    bounds AS (
        SELECT project_id, key, value, w, day, sum(sign) AS sign
        FROM (SELECT project_id, key, value, w, lo AS day, sign FROM intervals WHERE lo <= hi
              UNION ALL
              SELECT project_id, key, value, w, hi + 1, -sign FROM intervals WHERE lo <= hi) e
        GROUP BY 1, 2, 3, 4, 5
    ),
    steps AS (
        SELECT project_id, key, value, w, day,
               CAST(sum(sign) OVER (PARTITION BY project_id, key, value, w ORDER BY day)
                    AS bigint) AS change,
               lead(day) OVER (PARTITION BY project_id, key, value, w ORDER BY day) AS next_day
        FROM bounds
    ),
    deltas AS (
        SELECT s.project_id, s.key, s.value, g.x::date AS day, 0 AS dau,
               CASE WHEN s.w = 7 THEN s.change ELSE 0 END AS wau,
               CASE WHEN s.w = 30 THEN s.change ELSE 0 END AS mau, 0 AS events
        FROM steps s CROSS JOIN generate_series(s.day, s.next_day - 1, interval '1 day') AS g(x)
        WHERE s.change <> 0
        UNION ALL
        SELECT project_id, key, value, day, 1, 0, 0, events FROM changed
    )
    INSERT INTO activity_value_daily AS a (project_id, key, day, value, dau, wau, mau, events)
    SELECT project_id, key, day, value, {sign} * sum(dau), {sign} * sum(wau), {sign} * sum(mau),
           {sign} * sum(events)
    FROM deltas GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
    ON CONFLICT (project_id, key, day, value) DO UPDATE
    SET dau = a.dau + excluded.dau, wau = a.wau + excluded.wau, mau = a.mau + excluded.mau,
        events = a.events + excluded.events;
"""

# Rows that fell to nothing (only a deletion can make one), within the deleted rows' reach.
DROP_EMPTY = """
    DELETE FROM activity_value_daily a
    USING (SELECT DISTINCT project_id, key, value, day FROM old_values) c
    WHERE a.project_id = c.project_id AND a.key = c.key AND a.value = c.value
      AND a.day BETWEEN c.day AND c.day + 29
      AND a.dau = 0 AND a.wau = 0 AND a.mau = 0 AND a.events = 0;
"""

EVENT_DELTAS = """
    INSERT INTO activity_value_daily AS a (project_id, key, day, value, dau, wau, mau, events)
    SELECT n.project_id, n.key, n.day, n.value, 0, 0, 0, sum(n.events - o.events)
    FROM new_values n
    JOIN old_values o ON o.project_id = n.project_id AND o.key = n.key AND o.value = n.value
                     AND o.day = n.day AND o.person_id = n.person_id
    GROUP BY 1, 2, 3, 4
    HAVING sum(n.events - o.events) <> 0
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (project_id, key, day, value) DO UPDATE SET events = a.events + excluded.events;
"""

TRIGGER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION activity_values_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {COVERAGE_DELTAS.format(rows="SELECT * FROM new_values", sign="1")}
    ELSIF TG_OP = 'DELETE' THEN
        {COVERAGE_DELTAS.format(rows="SELECT * FROM old_values", sign="-1")}
        {DROP_EMPTY}
    ELSE
        {EVENT_DELTAS}
    END IF;
    RETURN NULL;
END
$$
"""


def _function_of_0021() -> str:
    """Migration 0021's function, from its own file (released migrations never change)."""
    path = Path(__file__).with_name("0021_activity_value_daily.py")
    spec = importlib.util.spec_from_file_location("migration_0021", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: str = module.TRIGGER_FUNCTION
    return function.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)


def upgrade() -> None:
    op.execute(TRIGGER_FUNCTION)


def downgrade() -> None:
    op.execute(_function_of_0021())
