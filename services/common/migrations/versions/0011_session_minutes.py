"""Sessions per day at two grains, so /v1/sessions reads a few rows per day whatever its sessions.

`session_minutes` holds, per project, day and whole minute of duration (`seconds / 60`), the
sessions that start that day and last that long: their count, summed seconds, events and
bounces (one event). A day's count, mean, events per session and bounce rate are sums over its
minute rows (about a hundred a day for visit-shaped sessions, at most 1,440 under the default
24 h cap), and so is the minute that holds each middle position of its sorted durations.
`session_durations` (migration 0010) keeps only the count per exact second: the median reads it
within those one or two minutes (at most 60 rows each), no longer across the whole day.

The trigger of 0010 still calls `session_durations_add`; its new body writes both grains, so
they stay the exact image of `sessions` whatever writes it. Filled from the second grain here.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# (project, day, seconds, events, sign) deltas -> both grains, summed per key and written in key
# order; rows that fall to zero sessions are dropped.
ADD_DELTAS = """
CREATE OR REPLACE FUNCTION session_durations_add(
    p int[], d date[], s int[], e int[], sgn int[]
) RETURNS void LANGUAGE sql AS $$
    WITH t AS (
        SELECT * FROM unnest(p, d, s, e, sgn) AS t(project_id, day, seconds, events, sign)
    ),
    per_second AS (
        INSERT INTO session_durations AS h (project_id, day, seconds, sessions)
        SELECT project_id, day, seconds, sum(sign) FROM t
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        ON CONFLICT (project_id, day, seconds) DO UPDATE
        SET sessions = h.sessions + excluded.sessions
    )
    INSERT INTO session_minutes AS h (project_id, day, minute, sessions, seconds, events, bounces)
    SELECT project_id, day, seconds / 60, sum(sign), sum(sign * seconds), sum(sign * events),
           coalesce(sum(sign) FILTER (WHERE events = 1), 0)
    FROM t
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (project_id, day, minute) DO UPDATE
    SET sessions = h.sessions + excluded.sessions, seconds = h.seconds + excluded.seconds,
        events = h.events + excluded.events, bounces = h.bounces + excluded.bounces;
    DELETE FROM session_durations h
    USING (SELECT DISTINCT * FROM unnest(p, d, s) AS k(project_id, day, seconds)) k
    WHERE h.project_id = k.project_id AND h.day = k.day AND h.seconds = k.seconds
      AND h.sessions = 0;
    DELETE FROM session_minutes h
    USING (SELECT DISTINCT project_id, day, seconds / 60 AS minute
           FROM unnest(p, d, s) AS k(project_id, day, seconds)) k
    WHERE h.project_id = k.project_id AND h.day = k.day AND h.minute = k.minute
      AND h.sessions = 0;
$$
"""

# 0010's body, for the downgrade.
ADD_DELTAS_0010 = """
CREATE OR REPLACE FUNCTION session_durations_add(
    p int[], d date[], s int[], e int[], sgn int[]
) RETURNS void LANGUAGE sql AS $$
    INSERT INTO session_durations AS h (project_id, day, seconds, sessions, events, bounces)
    SELECT project_id, day, seconds, sum(sign), sum(sign * events),
           coalesce(sum(sign) FILTER (WHERE events = 1), 0)
    FROM unnest(p, d, s, e, sgn) AS t(project_id, day, seconds, events, sign)
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (project_id, day, seconds) DO UPDATE
    SET sessions = h.sessions + excluded.sessions, events = h.events + excluded.events,
        bounces = h.bounces + excluded.bounces;
    DELETE FROM session_durations h
    USING (SELECT DISTINCT * FROM unnest(p, d, s) AS k(project_id, day, seconds)) k
    WHERE h.project_id = k.project_id AND h.day = k.day AND h.seconds = k.seconds
      AND h.sessions = 0;
$$
"""


def upgrade() -> None:
    op.create_table(
        "session_minutes",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("minute", sa.Integer, nullable=False),
        sa.Column("sessions", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.BigInteger, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("bounces", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "day", "minute", name="pk_session_minutes"),
    )
    op.execute(
        """
        INSERT INTO session_minutes (project_id, day, minute, sessions, seconds, events, bounces)
        SELECT project_id, day, seconds / 60, sum(sessions), sum(sessions * seconds),
               sum(events), sum(bounces)
        FROM session_durations GROUP BY 1, 2, 3
        """
    )
    op.execute(ADD_DELTAS)
    op.execute("ALTER TABLE session_durations DROP COLUMN events, DROP COLUMN bounces")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE session_durations"
        " ADD COLUMN events bigint NOT NULL DEFAULT 0, ADD COLUMN bounces bigint NOT NULL DEFAULT 0"
    )
    op.execute(
        """
        UPDATE session_durations h SET events = s.events, bounces = s.bounces
        FROM (SELECT project_id, day, extract(epoch FROM end_ts - start_ts)::int AS seconds,
                     sum(events) AS events, count(*) FILTER (WHERE events = 1) AS bounces
              FROM sessions GROUP BY 1, 2, 3) s
        WHERE h.project_id = s.project_id AND h.day = s.day AND h.seconds = s.seconds
        """
    )
    op.execute(
        "ALTER TABLE session_durations"
        " ALTER COLUMN events DROP DEFAULT, ALTER COLUMN bounces DROP DEFAULT"
    )
    op.execute(ADD_DELTAS_0010)
    op.drop_table("session_minutes")
