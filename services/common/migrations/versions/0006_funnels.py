"""Funnels: their definitions, each person's best attempt per entry day, and event properties
in the archive so funnels defined later can filter and break down over all history.

`active_events.props` is the event's properties over the traits its SDK attached (NULL when
both are empty); rows archived before this revision have none.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("active_events", sa.Column("props", JSONB, nullable=True))
    op.create_table(
        "funnels",
        sa.Column("id", sa.Integer, sa.Identity(), nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("definition", JSONB, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("backfill", sa.Text, nullable=False, server_default="running"),
        sa.Column("backfill_cursor", sa.Text, nullable=True),
        sa.Column("backfill_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_funnels"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_funnels_project_id_projects"
        ),
        sa.CheckConstraint("backfill IN ('running', 'complete')", name="ck_funnels_backfill"),
    )
    op.create_index("ix_funnels_project_id", "funnels", ["project_id"])
    op.create_table(
        "funnel_attempts",
        sa.Column("funnel_id", sa.Integer, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("entry_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("depth", sa.SmallInteger, nullable=False),
        sa.Column("seconds", ARRAY(sa.Integer), nullable=False),
        sa.Column("props", JSONB, nullable=True),
        sa.PrimaryKeyConstraint("funnel_id", "person_id", "day", name="pk_funnel_attempts"),
        sa.ForeignKeyConstraint(
            ["funnel_id"],
            ["funnels.id"],
            name="fk_funnel_attempts_funnel_id_funnels",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_funnel_attempts_funnel_id_day_person_id",
        "funnel_attempts",
        ["funnel_id", "day", "person_id"],
    )


def downgrade() -> None:
    op.drop_table("funnel_attempts")
    op.drop_table("funnels")
    op.drop_column("active_events", "props")
