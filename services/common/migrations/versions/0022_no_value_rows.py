"""Every split gets its "none" group: an active event that carries no value of a key is kept in
`person_day_values` under '' (services/metrics/aggregates/traits.py NO_VALUE, which no value can
be), so the per-value rollups (migrations 0020, 0021) and every split read it like a value.

The rows written so far have none of those rows. The breakdown backfill walk
(services/metrics/breakdown_backfill.py) recomputes each person's values of a key from the
archive, the way batches now keep them, so every key of a project that has processed events is
walked again from its first person: reads say `"breakdown_backfill": "running"` until it is
done. The downgrade drops the '' rows (the older code does not read them).

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE breakdown_keys k
        SET backfill = 'running', backfill_cursor = NULL, backfill_done_at = NULL
        WHERE EXISTS (SELECT 1 FROM project_stats s
                      WHERE s.project_id = k.project_id AND s.events_processed > 0)
        """
    )


def downgrade() -> None:
    op.execute("DELETE FROM person_day_values WHERE value = ''")
