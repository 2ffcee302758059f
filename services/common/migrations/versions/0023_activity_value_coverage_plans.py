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
from types import ModuleType

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def _migration_0021() -> ModuleType:
    """Migration 0021, from its own file (released migrations never change): the statements
    this one keeps as they are, and the function its downgrade puts back."""
    path = Path(__file__).with_name("0021_activity_value_daily.py")
    spec = importlib.util.spec_from_file_location("migration_0021", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


M0021 = _migration_0021()

# 0021's coverage statement read the person's other days and dropped the changed rows from them
# by NOT EXISTS; the rest of the statement (the coverage computed as the activity rollup does)
# stays as 0021 wrote it.
OLD_ROWS_0021 = """    old_rows AS (
        SELECT v.project_id, v.key, v.value, v.person_id, v.day,
               lead(v.day) OVER (PARTITION BY v.project_id, v.key, v.value, v.person_id
                                 ORDER BY v.day) AS next_old
        FROM person_day_values v
        JOIN span s ON s.project_id = v.project_id AND s.person_id = v.person_id
                   AND s.key = v.key AND s.value = v.value
        WHERE v.day BETWEEN s.lo AND s.hi
          AND NOT EXISTS (SELECT 1 FROM changed c
                          WHERE c.project_id = v.project_id AND c.key = v.key
                            AND c.value = v.value AND c.person_id = v.person_id
                            AND c.day = v.day)
    ),"""
OLD_ROWS = """    old_days AS (
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
    ),"""
assert OLD_ROWS_0021 in M0021.COVERAGE_DELTAS
COVERAGE_DELTAS = M0021.COVERAGE_DELTAS.replace(OLD_ROWS_0021, OLD_ROWS)

TRIGGER_FUNCTION = f"""
CREATE OR REPLACE FUNCTION activity_values_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {COVERAGE_DELTAS.format(rows="SELECT * FROM new_values", sign="1")}
    ELSIF TG_OP = 'DELETE' THEN
        {COVERAGE_DELTAS.format(rows="SELECT * FROM old_values", sign="-1")}
        {M0021.DROP_EMPTY}
    ELSE
        {M0021.EVENT_DELTAS}
    END IF;
    RETURN NULL;
END
$$
"""

FUNCTION_OF_0021: str = M0021.TRIGGER_FUNCTION.replace(
    "CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1
)


def upgrade() -> None:
    op.execute(TRIGGER_FUNCTION)


def downgrade() -> None:
    op.execute(FUNCTION_OF_0021)
