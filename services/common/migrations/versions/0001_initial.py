"""Projects, dedup memory, daily activity, rejected events and consumer offsets.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False, server_default="UTC"),
        sa.Column("write_key", sa.Text, nullable=False),
        sa.Column("read_key", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name="pk_projects"),
        sa.UniqueConstraint("write_key", name="uq_projects_write_key"),
        sa.UniqueConstraint("read_key", name="uq_projects_read_key"),
    )
    op.create_table(
        "seen_messages",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "message_id", name="pk_seen_messages"),
    )
    op.create_index("ix_seen_messages_received_at", "seen_messages", ["received_at"])
    op.create_table(
        "person_days",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "day", "person_id", name="pk_person_days"),
    )
    op.create_table(
        "persons",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("first_day", sa.Date, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "person_id", name="pk_persons"),
    )
    op.create_index("ix_persons_project_id_first_day", "persons", ["project_id", "first_day"])
    op.create_table(
        "project_stats",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("events_processed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("duplicates_dropped", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("rejected", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("processed_through", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("project_id", name="pk_project_stats"),
    )
    op.create_table(
        "rejected_events",
        sa.Column("id", sa.BigInteger, autoincrement=True, nullable=False),
        sa.Column("project_id", sa.Integer),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rejected_events"),
    )
    op.create_index("ix_rejected_events_project_id_id", "rejected_events", ["project_id", "id"])
    op.create_table(
        "consumer_offsets",
        sa.Column("consumer_group", sa.Text, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("partition", sa.Integer, nullable=False),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "topic", "partition", name="pk_consumer_offsets"),
    )


def downgrade() -> None:
    for table in (
        "consumer_offsets",
        "rejected_events",
        "project_stats",
        "persons",
        "person_days",
        "seen_messages",
        "projects",
    ):
        op.drop_table(table)
