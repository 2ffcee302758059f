"""Lifecycle and stickiness counts per calendar period, so `/v1/lifecycle` and `/v1/stickiness`
read a few rows per period instead of every person-day of their range.

Both reads grouped the range's person-days into person-periods at read time; lifecycle also
looked for each whether the person was active in the period before and after, and looked up
their first day: 300 ms for 30 days at 1M events (100,000 persons), DuckDB over the raw events
40 ms (`make bench`), growing with the range's persons. Now, per project and period:
- `lifecycle_periods` (kind day, week or month): `active`, the persons active in it, and
  `continuing`, those of them active in the period before too;
- `stickiness_periods` (kind week or month): per number of active days, the persons active on
  exactly that many days of it.
The metrics service keeps both by deltas in each batch and merge
(services/metrics/aggregates/periods.py); filled here from `person_days`.

`person_days`' index on (project_id, person_id) gains `day`. The batch statement reads each
person's days within a month of their new ones; with only the person in that index, once the
table's statistics lagged behind the newest days (which then look empty), PostgreSQL read them
by the primary key's (project_id, day) range instead, every person's days of those months for
each person: 22-24 s for each of two batches of 50,000 events of the 1M-event load. With the
day in it, this index is the cheaper one for any estimate of the range.

Revision ID: 0024
Revises: 0023
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

PERSON_PERIODS = """
WITH days AS (
    SELECT d.project_id, d.person_id, k.kind,
           date_trunc(k.kind, d.day::timestamp)::date AS period, count(*) AS days
    FROM person_days d CROSS JOIN (VALUES ('day'), ('week'), ('month')) AS k(kind)
    GROUP BY 1, 2, 3, 4
)
"""

FILL_LIFECYCLE = f"""
{PERSON_PERIODS},
sequenced AS (
    SELECT *, lag(period) OVER (PARTITION BY project_id, person_id, kind ORDER BY period)
                  AS before
    FROM days
)
INSERT INTO lifecycle_periods (project_id, kind, period, active, continuing)
SELECT project_id, kind, period, count(*),
       count(*) FILTER (WHERE before = (period - CAST('1 ' || kind AS interval))::date)
FROM sequenced
GROUP BY 1, 2, 3
"""

FILL_STICKINESS = f"""
{PERSON_PERIODS}
INSERT INTO stickiness_periods (project_id, kind, period, active_days, persons)
SELECT project_id, kind, period, days, count(*) FROM days WHERE kind <> 'day'
GROUP BY 1, 2, 3, 4
"""


def upgrade() -> None:
    op.create_table(
        "lifecycle_periods",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("period", sa.Date, nullable=False),
        sa.Column("active", sa.BigInteger, nullable=False),
        sa.Column("continuing", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "kind", "period", name="pk_lifecycle_periods"),
        sa.CheckConstraint("kind IN ('day', 'week', 'month')", name="ck_lifecycle_periods_kind"),
    )
    op.create_table(
        "stickiness_periods",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("period", sa.Date, nullable=False),
        sa.Column("active_days", sa.Integer, nullable=False),
        sa.Column("persons", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "kind", "period", "active_days", name="pk_stickiness_periods"
        ),
        sa.CheckConstraint("kind IN ('week', 'month')", name="ck_stickiness_periods_kind"),
    )
    op.execute(FILL_LIFECYCLE)
    op.execute(FILL_STICKINESS)
    op.create_index(
        "ix_person_days_project_id_person_id_day", "person_days", ["project_id", "person_id", "day"]
    )
    op.drop_index("ix_person_days_project_id_person_id", "person_days")


def downgrade() -> None:
    op.create_index(
        "ix_person_days_project_id_person_id", "person_days", ["project_id", "person_id"]
    )
    op.drop_index("ix_person_days_project_id_person_id_day", "person_days")
    op.drop_table("stickiness_periods")
    op.drop_table("lifecycle_periods")
