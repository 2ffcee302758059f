"""Activity per breakdown value (event property or trait carried by the event).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person_day_values",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("events", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint(
            "project_id", "key", "value", "day", "person_id", name="pk_person_day_values"
        ),
    )
    op.create_index(
        "ix_person_day_values_project_id_person_id",
        "person_day_values",
        ["project_id", "person_id"],
    )


def downgrade() -> None:
    op.drop_table("person_day_values")
