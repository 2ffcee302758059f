"""Drop the sessions' (project_id, day) index, which no statement reads any more.

It served /v1/sessions when that read scanned a day's session rows. Since migration 0010 the read
sums the duration histogram the sessions trigger keeps, and every statement that touches
`sessions` (the metrics service's window, append and chain-end statements) finds rows by the
primary key (project_id, person_id, start_ts). The index only cost an entry per inserted session.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sessions_project_id_day", table_name="sessions")


def downgrade() -> None:
    op.create_index("ix_sessions_project_id_day", "sessions", ["project_id", "day"])
