"""Sessions per day as a histogram of durations, kept by a trigger, so /v1/sessions reads no
session rows.

`session_durations` holds, per project, day and duration (whole seconds), the sessions that
start that day and last that long, their events and how many of them bounced (one event). A
day's count, mean, events per session and bounce rate are sums over its rows and its median
comes from the cumulative counts: a day reads as many rows as it has distinct durations (a few
thousand at most in practice, however many sessions it holds), not one per session.

A statement-level trigger on `sessions` adds every inserted row, subtracts every deleted one and
moves every updated one (the append path upserts the latest session), so the histogram is the
exact image of `sessions` whatever writes it: batches, merges, the rebuild after a settings
change. Deltas are summed per key and written in key order, one statement per sessions
statement; rows that fall to zero sessions are dropped. Filled from the existing sessions here.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# (project, day, seconds, events, sign) deltas -> the histogram.
ADD_DELTAS = """
CREATE FUNCTION session_durations_add(
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

# One trigger function for the three operations: each reads only its own transition tables.
TRIGGER_FUNCTION = """
CREATE FUNCTION session_durations_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM session_durations_add(
            array_agg(project_id), array_agg(day),
            array_agg(extract(epoch FROM end_ts - start_ts)::int), array_agg(events),
            array_agg(1))
        FROM new_sessions;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM session_durations_add(
            array_agg(project_id), array_agg(day),
            array_agg(extract(epoch FROM end_ts - start_ts)::int), array_agg(events),
            array_agg(-1))
        FROM old_sessions;
    ELSE
        PERFORM session_durations_add(
            array_agg(project_id), array_agg(day),
            array_agg(extract(epoch FROM end_ts - start_ts)::int), array_agg(events),
            array_agg(sign))
        FROM (SELECT *, 1 AS sign FROM new_sessions
              UNION ALL SELECT *, -1 FROM old_sessions) AS changed;
    END IF;
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "session_durations",
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),
        sa.Column("sessions", sa.BigInteger, nullable=False),
        sa.Column("events", sa.BigInteger, nullable=False),
        sa.Column("bounces", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("project_id", "day", "seconds", name="pk_session_durations"),
    )
    op.execute(ADD_DELTAS)
    op.execute(TRIGGER_FUNCTION)
    for operation, tables in [
        ("INSERT", "NEW TABLE AS new_sessions"),
        ("DELETE", "OLD TABLE AS old_sessions"),
        ("UPDATE", "OLD TABLE AS old_sessions NEW TABLE AS new_sessions"),
    ]:
        op.execute(
            f"CREATE TRIGGER sessions_{operation.lower()}_durations AFTER {operation} ON sessions"
            f" REFERENCING {tables} FOR EACH STATEMENT"
            " EXECUTE FUNCTION session_durations_track()"
        )
    op.execute(
        """
        INSERT INTO session_durations (project_id, day, seconds, sessions, events, bounces)
        SELECT project_id, day, extract(epoch FROM end_ts - start_ts)::int, count(*),
               sum(events), count(*) FILTER (WHERE events = 1)
        FROM sessions GROUP BY 1, 2, 3
        """
    )


def downgrade() -> None:
    for operation in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER sessions_{operation}_durations ON sessions")
    op.execute("DROP FUNCTION session_durations_track()")
    op.execute("DROP FUNCTION session_durations_add(int[], date[], int[], int[], int[])")
    op.drop_table("session_durations")
