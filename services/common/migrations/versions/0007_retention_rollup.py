"""Retention rollups: cohort x day counts and cohort x last-day counts, plus each person's last
active day, so /v1/retention by day reads O(cohorts x length) rows instead of every person-day.

Filled from the existing person-day rows, so installations upgrade with their history.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("persons", sa.Column("last_day", sa.Date, nullable=True))
    op.execute(
        """
        UPDATE persons p SET last_day = d.last_day
        FROM (SELECT project_id, person_id, max(day) AS last_day FROM person_days
              GROUP BY 1, 2) d
        WHERE d.project_id = p.project_id AND d.person_id = p.person_id
        """
    )
    op.execute("UPDATE persons SET last_day = first_day WHERE last_day IS NULL")
    op.alter_column("persons", "last_day", nullable=False)
    op.create_table(
        "retention_days",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("cohort", sa.Date, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("persons", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "cohort", "day", name="pk_retention_days"),
    )
    op.create_table(
        "retention_spans",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("cohort", sa.Date, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("persons", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "cohort", "last_day", name="pk_retention_spans"),
    )
    op.execute(
        """
        INSERT INTO retention_days (project_id, cohort, day, persons)
        SELECT d.project_id, p.first_day, d.day, count(*)
        FROM person_days d
        JOIN persons p ON p.project_id = d.project_id AND p.person_id = d.person_id
        GROUP BY 1, 2, 3
        """
    )
    op.execute(
        """
        INSERT INTO retention_spans (project_id, cohort, last_day, persons)
        SELECT project_id, first_day, last_day, count(*) FROM persons GROUP BY 1, 2, 3
        """
    )


def downgrade() -> None:
    op.drop_table("retention_spans")
    op.drop_table("retention_days")
    op.drop_column("persons", "last_day")
