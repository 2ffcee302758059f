"""Daily activity rollup: DAU, WAU, MAU, new users and events per project and day.

Maintained incrementally by the metrics service (deltas in each batch's transaction), so the
activity read is O(days) whatever the number of persons. Backfilled here from person_days.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "activity_daily",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("dau", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("wau", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("mau", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("new_users", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("events", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("project_id", "day", name="pk_activity_daily"),
    )
    # Existing data: the same contributions the service adds per person, for everyone.
    op.execute(
        """
        INSERT INTO activity_daily (project_id, day, dau, wau, mau, new_users, events)
        SELECT project_id, day, sum(dau), sum(wau), sum(mau), sum(new_users), sum(events)
        FROM (
            SELECT project_id, x AS day, count(*) FILTER (WHERE gap = 0) AS dau,
                   count(*) FILTER (WHERE gap < 7) AS wau, count(*) AS mau,
                   0 AS new_users, 0 AS events
            FROM (
                SELECT d.project_id, d.person_id, g.x::date AS x, min(g.x::date - d.day) AS gap
                FROM person_days d,
                     generate_series(d.day, d.day + 29, interval '1 day') AS g(x)
                GROUP BY 1, 2, 3
            ) cover
            GROUP BY 1, 2
            UNION ALL
            SELECT project_id, day, 0, 0, 0, 0, sum(events) FROM person_days GROUP BY 1, 2
            UNION ALL
            SELECT project_id, first_day, 0, 0, 0, count(*), 0 FROM persons GROUP BY 1, 2
        ) parts
        GROUP BY 1, 2
        """
    )


def downgrade() -> None:
    op.drop_table("activity_daily")
