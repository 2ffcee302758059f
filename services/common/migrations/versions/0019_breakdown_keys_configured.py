"""Breakdown keys a project tracks on request, beside the ones the deployment configures.

`breakdown_keys.configured`: true for a key of the metrics service's PULSE_BREAKDOWN_KEYS (it
adds those to every project, and drops the ones no longer listed, with their values, when it
starts), false for a key a project asked for (`POST /v1/breakdowns`; removed by
`DELETE /v1/breakdowns/{key}`). Every row so far came from PULSE_BREAKDOWN_KEYS.

Revision ID: 0019
Revises: 0018
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "breakdown_keys",
        sa.Column("configured", sa.Boolean, nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    op.drop_column("breakdown_keys", "configured")
