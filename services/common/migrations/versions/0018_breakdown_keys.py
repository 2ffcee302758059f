"""Breakdown keys per project, so a key tracked later is filled in over the history before it.

`breakdown_keys` records which keys a project's `person_day_values` are kept for, and whether the
values of the history before a key was added are complete yet (services/metrics/
breakdown_backfill.py walks the archive for them). Identify calls now keep every trait in
`trait_changes`, not only the tracked keys', so such a walk has them; traits sent before this
revision were kept for the keys tracked then only.

A key that has values in a project already was tracked by the metrics service before this
revision, which kept its values from then on: it starts 'complete' (as before, no backfill), so an
upgrade does not walk every project's history again. A tracked key without any value yet gets
its row at the service's next start, 'running' (a walk that finds nothing to add).

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "breakdown_keys",
        sa.Column("id", sa.Integer, sa.Identity(), nullable=False),
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("backfill", sa.Text, nullable=False, server_default="running"),
        sa.Column("backfill_cursor", sa.Text, nullable=True),
        sa.Column("backfill_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_breakdown_keys"),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_breakdown_keys_project_id_projects"
        ),
        sa.UniqueConstraint("project_id", "key", name="uq_breakdown_keys_project_id_key"),
        sa.CheckConstraint(
            "backfill IN ('running', 'complete')", name="ck_breakdown_keys_backfill"
        ),
    )
    op.execute(
        "INSERT INTO breakdown_keys (project_id, key, backfill, backfill_done_at) "
        "SELECT DISTINCT project_id, key, 'complete', now() FROM person_day_values"
    )


def downgrade() -> None:
    op.drop_table("breakdown_keys")
