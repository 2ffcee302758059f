"""Sessions per day split by a breakdown value, kept by triggers like the unsplit histograms.

`/v1/sessions?breakdown=` counted a session under each value its person carried on the
session's day by joining `person_day_values` to `sessions` at read time: a primary-key lookup
per person-day with a value, 315 ms for a month at 1M events (DuckDB over the raw events: 168).
`session_value_minutes` and `session_value_durations` are the histograms of migrations
0010/0011 per (key, value): the split reads a few rows per value and day, as the unsplit read.

They are the image of the join `sessions` x `person_day_values` on (project, person, day), kept
by statement-level triggers on both tables: a statement that changes one of them adds the join
of its changed rows with the other one as it stands (+1 for new rows, -1 for old ones). So the
image stays exact after every statement that changes one of the two, whatever writes it:
batches, merges, the rebuild after a settings change, a breakdown backfill walk, a key dropped.
No statement changes both (a data-modifying CTE that did would count its rows twice).
- `sessions`: INSERT, DELETE, and UPDATE as the multiset difference of its new and old rows in
  the columns that count (the append path extends the latest session; the chain-end updates
  change nothing that counts, and add nothing).
- `person_day_values`: INSERT and DELETE. Its key columns are its primary key and are never
  updated (its upserts add to `events`, which no session figure uses): no UPDATE trigger here
  (migration 0021 adds one for the events per value).

`person_day_values`' index on (project_id, person_id) gains `day`: the sessions trigger looks up
the values of each changed session's person-day.

Revision ID: 0020
Revises: 0019
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# (project, key, value, day, seconds, events, sign) deltas -> both grains, as migration 0017's
# session_durations_add: summed per key, written in key order, rows left at zero dropped (only a
# negative delta can make one).
ADD_DELTAS = """
CREATE FUNCTION session_values_add(
    p int[], k text[], v text[], d date[], s int[], e int[], sgn int[]
) RETURNS void LANGUAGE sql AS $$
    WITH t AS (
        SELECT * FROM unnest(p, k, v, d, s, e, sgn)
            AS t(project_id, key, value, day, seconds, events, sign)
    ),
    per_second AS (
        INSERT INTO session_value_durations AS h (project_id, key, day, value, seconds, sessions)
        SELECT project_id, key, day, value, seconds, sum(sign) FROM t
        GROUP BY 1, 2, 3, 4, 5
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (project_id, key, day, value, seconds) DO UPDATE
        SET sessions = h.sessions + excluded.sessions
    )
    INSERT INTO session_value_minutes AS h (project_id, key, day, value, minute, sessions,
                                            seconds, events, bounces)
    SELECT project_id, key, day, value, seconds / 60, sum(sign), sum(sign * seconds),
           sum(sign * events), coalesce(sum(sign) FILTER (WHERE events = 1), 0)
    FROM t
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (project_id, key, day, value, minute) DO UPDATE
    SET sessions = h.sessions + excluded.sessions, seconds = h.seconds + excluded.seconds,
        events = h.events + excluded.events, bounces = h.bounces + excluded.bounces;
    DELETE FROM session_value_durations h
    USING (SELECT DISTINCT *
           FROM unnest(p, k, v, d, s) AS z(project_id, key, value, day, seconds)) z
    WHERE h.project_id = z.project_id AND h.key = z.key AND h.day = z.day
      AND h.value = z.value AND h.seconds = z.seconds AND h.sessions = 0 AND 0 > ANY(sgn);
    DELETE FROM session_value_minutes h
    USING (SELECT DISTINCT project_id, key, value, day, seconds / 60 AS minute
           FROM unnest(p, k, v, d, s) AS z(project_id, key, value, day, seconds)) z
    WHERE h.project_id = z.project_id AND h.key = z.key AND h.day = z.day
      AND h.value = z.value AND h.minute = z.minute AND h.sessions = 0 AND 0 > ANY(sgn);
$$
"""

# Changed sessions (`changed`: project_id, person_id, day, start_ts, end_ts, events, sign) joined
# to the values of their person-day.
SESSIONS_DELTAS = """
    PERFORM session_values_add(
        array_agg(v.project_id), array_agg(v.key), array_agg(v.value), array_agg(c.day),
        array_agg(extract(epoch FROM c.end_ts - c.start_ts)::int), array_agg(c.events),
        array_agg(c.sign))
    FROM ({changed}) AS c
    JOIN person_day_values v
      ON v.project_id = c.project_id AND v.person_id = c.person_id AND v.day = c.day;
"""
COUNTED = "project_id, person_id, day, start_ts, end_ts, events"

NEW_SESSIONS = f"SELECT {COUNTED}, 1 AS sign FROM new_sessions"
OLD_SESSIONS = f"SELECT {COUNTED}, -1 AS sign FROM old_sessions"
# An UPDATE's new rows minus its old ones, as multisets: only what changed in a counted column.
UPDATED_SESSIONS = (
    f"({NEW_SESSIONS} EXCEPT ALL SELECT {COUNTED}, 1 FROM old_sessions)"
    f" UNION ALL ({OLD_SESSIONS} EXCEPT ALL SELECT {COUNTED}, -1 FROM new_sessions)"
)

SESSIONS_TRIGGER_FUNCTION = f"""
CREATE FUNCTION session_values_track_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {SESSIONS_DELTAS.format(changed=NEW_SESSIONS)}
    ELSIF TG_OP = 'DELETE' THEN
        {SESSIONS_DELTAS.format(changed=OLD_SESSIONS)}
    ELSE
        {SESSIONS_DELTAS.format(changed=UPDATED_SESSIONS)}
    END IF;
    RETURN NULL;
END
$$
"""

# Changed values (`changed`: project_id, key, value, day, person_id, sign) joined to the sessions
# of their person-day: the primary key's (project_id, person_id, start_ts) range of the day's
# instants a day wider on each side (in a zone whose clocks skip midnight, the local midnight is
# no instant), and `day` decides.
VALUES_DELTAS = """
    PERFORM session_values_add(
        array_agg(c.project_id), array_agg(c.key), array_agg(c.value), array_agg(c.day),
        array_agg(extract(epoch FROM s.end_ts - s.start_ts)::int), array_agg(s.events),
        array_agg(c.sign))
    FROM ({changed}) AS c
    JOIN projects p ON p.id = c.project_id
    JOIN sessions s ON s.project_id = c.project_id AND s.person_id = c.person_id
        AND s.start_ts >= (c.day - 1)::timestamp AT TIME ZONE p.timezone
        AND s.start_ts < (c.day + 2)::timestamp AT TIME ZONE p.timezone
        AND s.day = c.day;
"""

NEW_VALUES = "SELECT *, 1 AS sign FROM new_values"
# A key's values dropped all at once (drop_breakdown_values, migration 0021, names the key in
# `pulse.dropping_key` for its DELETE): its rows go wholesale instead of being subtracted one by
# one, which took a DELETE of 1M person-day values from 1.2 s to 27 s.
DROPPING = "current_setting('pulse.dropping_key', true)"
OLD_VALUES = f"SELECT *, -1 AS sign FROM old_values WHERE key IS DISTINCT FROM {DROPPING}"
DROP_DROPPED_KEY = "".join(
    f"""
    DELETE FROM {table} h USING (SELECT DISTINCT project_id FROM old_values) g
    WHERE h.project_id = g.project_id AND h.key = {DROPPING};"""
    for table in ("session_value_minutes", "session_value_durations")
)

VALUES_TRIGGER_FUNCTION = f"""
CREATE FUNCTION session_values_track_values() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        {VALUES_DELTAS.format(changed=NEW_VALUES)}
    ELSE
        {DROP_DROPPED_KEY}
        {VALUES_DELTAS.format(changed=OLD_VALUES)}
    END IF;
    RETURN NULL;
END
$$
"""

TRIGGERS = [
    ("sessions", "insert", "NEW TABLE AS new_sessions", "session_values_track_sessions"),
    ("sessions", "delete", "OLD TABLE AS old_sessions", "session_values_track_sessions"),
    (
        "sessions",
        "update",
        "OLD TABLE AS old_sessions NEW TABLE AS new_sessions",
        "session_values_track_sessions",
    ),
    ("person_day_values", "insert", "NEW TABLE AS new_values", "session_values_track_values"),
    ("person_day_values", "delete", "OLD TABLE AS old_values", "session_values_track_values"),
]


def _histogram(name: str, grain: list[sa.Column[int]], counts: list[sa.Column[int]]) -> None:
    op.create_table(
        name,
        sa.Column("project_id", sa.Integer, nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        *grain,
        *counts,
        sa.PrimaryKeyConstraint(
            "project_id", "key", "day", "value", grain[0].name, name=f"pk_{name}"
        ),
    )


def upgrade() -> None:
    _histogram(
        "session_value_durations",
        [sa.Column("seconds", sa.Integer, nullable=False)],
        [sa.Column("sessions", sa.BigInteger, nullable=False)],
    )
    _histogram(
        "session_value_minutes",
        [sa.Column("minute", sa.Integer, nullable=False)],
        [
            sa.Column(name, sa.BigInteger, nullable=False)
            for name in ("sessions", "seconds", "events", "bounces")
        ],
    )
    op.create_index(
        "ix_person_day_values_project_id_person_id_day",
        "person_day_values",
        ["project_id", "person_id", "day"],
    )
    op.drop_index("ix_person_day_values_project_id_person_id", "person_day_values")
    op.execute(ADD_DELTAS)
    op.execute(SESSIONS_TRIGGER_FUNCTION)
    op.execute(VALUES_TRIGGER_FUNCTION)
    for table, operation, tables, function in TRIGGERS:
        op.execute(
            f"CREATE TRIGGER {table}_{operation}_session_values AFTER {operation.upper()}"
            f" ON {table} REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )
    # The image of the join as it stands.
    op.execute(
        """
        WITH j AS (
            SELECT v.project_id, v.key, s.day, v.value,
                   extract(epoch FROM s.end_ts - s.start_ts)::int AS seconds, s.events
            FROM person_day_values v
            JOIN sessions s
              ON s.project_id = v.project_id AND s.person_id = v.person_id AND s.day = v.day
        ),
        per_second AS (
            INSERT INTO session_value_durations
            SELECT project_id, key, day, value, seconds, count(*) FROM j GROUP BY 1, 2, 3, 4, 5
        )
        INSERT INTO session_value_minutes
        SELECT project_id, key, day, value, seconds / 60, count(*), sum(seconds), sum(events),
               count(*) FILTER (WHERE events = 1)
        FROM j GROUP BY 1, 2, 3, 4, 5
        """
    )


def downgrade() -> None:
    for table, operation, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER {table}_{operation}_session_values ON {table}")
    op.execute("DROP FUNCTION session_values_track_values()")
    op.execute("DROP FUNCTION session_values_track_sessions()")
    op.execute(
        "DROP FUNCTION session_values_add(int[], text[], text[], date[], int[], int[], int[])"
    )
    op.create_index(
        "ix_person_day_values_project_id_person_id",
        "person_day_values",
        ["project_id", "person_id"],
    )
    op.drop_index("ix_person_day_values_project_id_person_id_day", "person_day_values")
    op.drop_table("session_value_minutes")
    op.drop_table("session_value_durations")
