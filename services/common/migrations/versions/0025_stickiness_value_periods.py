"""The stickiness histogram per breakdown value, kept by triggers, so `/v1/stickiness?breakdown=`
reads a row per value, period and number of days instead of grouping every person-day with a
value of its range into person-periods (at 1M events: gateway p95 71.6 ms against DuckDB's
5.6 ms over the raw events, the one read slower than DuckDB).

`stickiness_value_periods` holds, per (project, key, kind week or month, period, value, number of
active days): the persons who carried the value on exactly that many days of the period
(`person_day_values` rows). Like migration 0021's `activity_value_daily`, it is the image of
`person_day_values`, kept by statement-level triggers on it whatever writes it (batches, trait
recomputations, merges, breakdown backfill walks):
- INSERT: each (person, value, period) the statement gave k days, and which has n now, moves from
  the bucket n - k (none when 0) to the bucket n;
- DELETE: each one that lost k days and has n left moves from n + k to n (none when 0);
- UPDATE only changes `events` (the key columns are the primary key, never updated): nothing.
The person's days of the period are counted through the (project_id, person_id, day) index, one
range per changed (person, value, period): a lateral lookup, so the transition table is never
the inner side of a join (migration 0023 says what that cost).
A dropped key's values go through `drop_breakdown_values` (migration 0022), whose DELETE this
trigger skips like the others (the WHEN condition) and which now deletes the key's rows here too.

Revision ID: 0025
Revises: 0024
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def _migration_0022() -> ModuleType:
    """Migration 0022, from its own file (released migrations never change): the drop function
    this one extends, and its trigger condition."""
    path = Path(__file__).with_name("0022_breakdown_key_drops.py")
    spec = importlib.util.spec_from_file_location("migration_0022", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


M0022 = _migration_0022()

# The (person, value, period) groups of `rows` (the transition table), with the days each gained
# or lost (`changed`) and the days it has now (`now`).
PERIODS = """
    WITH changed AS (
        SELECT r.project_id, r.key, r.value, r.person_id, k.kind,
               CAST(date_trunc(k.kind, CAST(r.day AS timestamp)) AS date) AS period,
               count(*) AS days
        FROM {rows} r CROSS JOIN (VALUES ('week'), ('month')) AS k(kind)
        GROUP BY 1, 2, 3, 4, 5, 6
    ),
    counted AS (
        SELECT c.*, n.now
        FROM changed c CROSS JOIN LATERAL (
            SELECT count(*) AS now FROM person_day_values v
            WHERE v.project_id = c.project_id AND v.person_id = c.person_id
              AND v.day >= c.period
              AND v.day < CAST(c.period + CAST('1 ' || c.kind AS interval) AS date)
              AND v.key = c.key AND v.value = c.value
        ) n
    ),
    deltas AS (
        SELECT project_id, key, kind, period, value, {before} AS active_days, -1 AS persons
        FROM counted WHERE {before} > 0
        UNION ALL
        SELECT project_id, key, kind, period, value, now, 1 FROM counted WHERE now > 0
    )
    INSERT INTO stickiness_value_periods AS s
        (project_id, key, kind, period, value, active_days, persons)
    SELECT project_id, key, kind, period, value, active_days, sum(persons) FROM deltas
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(persons) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (project_id, key, kind, period, value, active_days)
    DO UPDATE SET persons = s.persons + excluded.persons;
"""

TRIGGER_FUNCTION = f"""
CREATE FUNCTION stickiness_values_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {PERIODS.format(rows="new_values", before="now - days")}
    ELSE
        {PERIODS.format(rows="old_values", before="now + days")}
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGERS = [
    ("insert", "NEW TABLE AS new_values", ""),
    ("delete", "OLD TABLE AS old_values", M0022.NOT_DROPPING),
]

FILL = """
INSERT INTO stickiness_value_periods (project_id, key, kind, period, value, active_days, persons)
SELECT project_id, key, kind, period, value, days, count(*)
FROM (
    SELECT v.project_id, v.key, v.value, v.person_id, k.kind,
           CAST(date_trunc(k.kind, CAST(v.day AS timestamp)) AS date) AS period, count(*) AS days
    FROM person_day_values v CROSS JOIN (VALUES ('week'), ('month')) AS k(kind)
    GROUP BY 1, 2, 3, 4, 5, 6
) AS person_periods
GROUP BY 1, 2, 3, 4, 5, 6
"""

# 0022's function, which also deletes the key's rows of this rollup.
ROLLUP_DELETES = "    DELETE FROM activity_value_daily WHERE project_id = p AND key = k;\n"
assert ROLLUP_DELETES in M0022.DROP_CHUNK
DROP_CHUNK = M0022.DROP_CHUNK.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION").replace(
    ROLLUP_DELETES,
    ROLLUP_DELETES + "    DELETE FROM stickiness_value_periods WHERE project_id = p AND key = k;\n",
)


def upgrade() -> None:
    op.create_table(
        "stickiness_value_periods",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("period", sa.Date, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("active_days", sa.Integer, nullable=False),
        sa.Column("persons", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id",
            "key",
            "kind",
            "period",
            "value",
            "active_days",
            name="pk_stickiness_value_periods",
        ),
    )
    op.execute(TRIGGER_FUNCTION)
    for operation, tables, when in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER person_day_values_{operation}_stickiness AFTER {operation.upper()}"
            f" ON person_day_values REFERENCING {tables} FOR EACH STATEMENT {when}"
            " EXECUTE FUNCTION stickiness_values_track()"
        )
    op.execute(DROP_CHUNK)
    op.execute(FILL)


def downgrade() -> None:
    op.execute(M0022.DROP_CHUNK.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"))
    for operation, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER person_day_values_{operation}_stickiness ON person_day_values")
    op.execute("DROP FUNCTION stickiness_values_track()")
    op.drop_table("stickiness_value_periods")
