"""Identity map, per-event-name activity, re-keying indexes, partition epochs for fencing.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("distinct_id", sa.Text, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "distinct_id", name="pk_identities"),
    )
    op.create_index("ix_identities_project_id_person_id", "identities", ["project_id", "person_id"])
    op.create_table(
        "person_event_days",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "day", "event", "person_id", name="pk_person_event_days"
        ),
    )
    op.create_index(
        "ix_person_event_days_project_id_person_id",
        "person_event_days",
        ["project_id", "person_id"],
    )
    op.create_index(
        "ix_person_days_project_id_person_id", "person_days", ["project_id", "person_id"]
    )
    op.add_column(
        "consumer_offsets",
        sa.Column("epoch", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.alter_column("consumer_offsets", "next_offset", nullable=True)


def downgrade() -> None:
    op.alter_column("consumer_offsets", "next_offset", nullable=False)
    op.drop_column("consumer_offsets", "epoch")
    op.drop_index("ix_person_days_project_id_person_id", "person_days")
    op.drop_table("person_event_days")
    op.drop_table("identities")
