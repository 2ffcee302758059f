"""Person traits set by identify, per distinct id and second, for breakdowns "as of the event".

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trait_changes",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("distinct_id", sa.Text, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "distinct_id", "key", "ts", name="pk_trait_changes"),
    )


def downgrade() -> None:
    op.drop_table("trait_changes")
