"""Sessions and the archive of active events they (and paths and the live view) are read from.

`active_events` keeps one row per deduplicated active event under the distinct id that did it,
so identity merges never re-key it: a person's events are the rows of all their distinct ids.
`sessions` holds each person's sessions, maintained by the metrics service. Both start empty:
Pulse kept no per-event rows before this revision, so sessions cover events applied from now on.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "active_events",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("distinct_id", sa.Text, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_active_events_project_id_distinct_id_ts",
        "active_events",
        ["project_id", "distinct_id", "ts"],
    )
    op.create_index("ix_active_events_project_id_ts", "active_events", ["project_id", "ts"])
    op.create_table(
        "sessions",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("start_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("chain_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("chain_end", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "person_id", "start_ts", name="pk_sessions"),
    )
    op.create_index("ix_sessions_project_id_day", "sessions", ["project_id", "day"])


def downgrade() -> None:
    op.drop_table("sessions")
    op.drop_table("active_events")
