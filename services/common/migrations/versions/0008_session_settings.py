"""Per-project session settings: the inactivity timeout and the cap that end a session, and the
state of the rebuild of a project's sessions after they change.

`session_timeout_seconds` (60 s to 24 h) and `session_cap_seconds` (the timeout to 7 days)
default to the 30 minutes and 24 h sessions were computed with before, so existing sessions stay
right. Changing them marks the project's sessions for a rebuild from the event archive:
`sessions_rebuild` is 'running' until the metrics service has walked every person,
`sessions_rebuild_cursor` the last person done (for a restart), and `sessions_generation` counts
the changes, so a rebuild restarted by a second change never repeats an earlier state.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "projects",
        sa.Column("session_timeout_seconds", sa.Integer, nullable=False, server_default="1800"),
    )
    op.add_column(
        "projects",
        sa.Column("session_cap_seconds", sa.Integer, nullable=False, server_default="86400"),
    )
    op.add_column(
        "projects",
        sa.Column("sessions_rebuild", sa.Text, nullable=False, server_default="complete"),
    )
    op.add_column("projects", sa.Column("sessions_rebuild_cursor", sa.Text, nullable=True))
    op.add_column(
        "projects",
        sa.Column("sessions_rebuild_done_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "projects",
        sa.Column("sessions_generation", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_check_constraint(
        "ck_projects_session_timeout",
        "projects",
        "session_timeout_seconds BETWEEN 60 AND 86400",
    )
    op.create_check_constraint(
        "ck_projects_session_cap",
        "projects",
        "session_cap_seconds >= session_timeout_seconds AND session_cap_seconds <= 604800",
    )
    op.create_check_constraint(
        "ck_projects_sessions_rebuild",
        "projects",
        "sessions_rebuild IN ('running', 'complete')",
    )


def downgrade() -> None:
    op.drop_constraint("ck_projects_sessions_rebuild", "projects", type_="check")
    op.drop_constraint("ck_projects_session_cap", "projects", type_="check")
    op.drop_constraint("ck_projects_session_timeout", "projects", type_="check")
    for column in (
        "sessions_generation",
        "sessions_rebuild_done_at",
        "sessions_rebuild_cursor",
        "sessions_rebuild",
        "session_cap_seconds",
        "session_timeout_seconds",
    ):
        op.drop_column("projects", column)
